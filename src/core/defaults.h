/* defaults.h: the defaults several binaries must agree on, so that a parleyd
 * and a parley-gateway started in the same folder with no settings find each
 * other: the state folder, the database in it, parleyd's unix socket (the
 * gateway's default upstream) and, beside the database, the dev secret both
 * use in development mode (base/secrets.h). */
#ifndef PARLEY_DEFAULTS_H
#define PARLEY_DEFAULTS_H

#define PARLEY_STATE_DIR "var"
#define PARLEY_DB_DEFAULT PARLEY_STATE_DIR "/parley.db"
#define PARLEY_SOCKET_DEFAULT PARLEY_STATE_DIR "/parleyd.sock"

#endif
