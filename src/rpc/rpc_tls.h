/* rpc_tls.h: TLS for parley's gRPC, both ends, on the grpc C core's SSL
 * credentials. The server side reads its certificate chain, key and
 * (for mutual TLS) client CA from files, and reloads them when they change:
 * grpc asks for the current config at every handshake, so a renewed
 * certificate is served to new connections while open ones go on. The
 * client side verifies the server against a CA file and can present a
 * certificate of its own (mutual TLS). A key file other users can read is
 * refused. Plaintext stays for loopback and the unix socket. */
#ifndef PARLEY_RPC_TLS_H
#define PARLEY_RPC_TLS_H

#include <stddef.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

typedef struct rpc_tls_files {
    const char *cert; /* PEM certificate chain (leaf first) */
    const char *key;  /* PEM private key, mode 600 */
    const char *ca;   /* server: client CA (mutual TLS); client: server CA */
} rpc_tls_files;

/* The reloading state of one server's files (owned by whoever creates the
 * server, freed after it). */
typedef struct rpc_tls_watch rpc_tls_watch;

/* Server credentials from files: the certificate and key are required;
 * with a CA every client must present a certificate it signed. NULL with
 * the reason in err when a file is missing, unreadable or (the key)
 * readable by others. *watch receives the reload state. */
grpc_server_credentials *rpc_tls_server_creds(const rpc_tls_files *f,
                                              rpc_tls_watch **watch, char *err,
                                              size_t errlen);
void rpc_tls_watch_free(rpc_tls_watch *w);
/* How many times new certificates were loaded after the first. */
int rpc_tls_reloads(const rpc_tls_watch *w);

/* Channel credentials: verify the server against f->ca (NULL: the system's
 * roots); f->cert and f->key, if set, are this client's certificate for
 * mutual TLS. NULL with the reason in err. */
grpc_channel_credentials *rpc_tls_client_creds(const rpc_tls_files *f,
                                               char *err, size_t errlen);

/* 1 if a grpc address is the unix socket or a loopback TCP address
 * (127.0.0.0/8, [::1], localhost), where plaintext is allowed. */
int rpc_addr_is_local(const char *addr);

#endif
