/* defaults.h: the defaults several binaries must agree on, so that a parleyd
 * and a parley-gateway started in the same folder with no settings find each
 * other: the state folder, the database in it, parleyd's unix socket (the
 * gateway's default upstream) and, beside the database, the dev secret both
 * use in development mode (base/secrets.h); and the message size both hops
 * of a history page agree on. */
#ifndef PARLEY_DEFAULTS_H
#define PARLEY_DEFAULTS_H

#define PARLEY_STATE_DIR "var"
#define PARLEY_DB_DEFAULT PARLEY_STATE_DIR "/parley.db"
#define PARLEY_SOCKET_DEFAULT PARLEY_STATE_DIR "/parleyd.sock"

/* The largest answer the core encodes (a ListMessages page is cut short of
 * it, has_more set) and what every client of the core must accept: the two
 * hops agree, so a page of 1,000 long bodies never fails in between. */
#define PARLEY_ANSWER_BYTES_MAX (3u << 20)
#define PARLEY_CLIENT_RECV_MAX (PARLEY_ANSWER_BYTES_MAX + (1u << 20))

#endif
