/* The management endpoint process (agent/mgmt.c) and its TLS setup (agent/mgmt_tls.c).
 * The main process only calls els_mgmt_spawn(); the rest is the child's, and tests'. */
#ifndef ELS_AGENT_MGMT_H
#define ELS_AGENT_MGMT_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <sys/types.h>

#include "els/mgmt.h"

/* Forks the endpoint: the child closes every other descriptor, loads the TLS material, binds
 * c->listen, drops to c->user for good and serves. Returns 0 once the child reported that it
 * listens, with *pid and *fd (the main process's end of the socketpair, non-blocking);
 * otherwise logs why (the child's own message) and returns -errno. */
int els_mgmt_spawn(const struct els_mgmt_conf *c, pid_t *pid, int *fd);

/* TLS material, read once while the process may still read the key. */
struct els_mgmt_tls {
	X509 *cert;
	STACK_OF(X509) * chain; /* extra certificates of the cert file */
	EVP_PKEY *key;
	STACK_OF(X509) * cas;
	SSL_CTX *ctx; /* for new connections; live ones hold a reference to theirs */
};

/* Reads ca, cert, key and crl of c and builds the context: TLS 1.3 only, client certificate
 * required and checked against the CA and the CRL, no session resumption (so a revocation
 * counts at the next connection). Refuses a key file that group or others may read. 0, or
 * -errno with a message naming the file in err. */
int els_mgmt_tls_load(struct els_mgmt_tls *t, const struct els_mgmt_conf *c, char *err, size_t n);
/* Replaces the CRL (PEM text, one or more CRLs) for new connections. 0 or -errno + err. */
int els_mgmt_tls_set_crl(struct els_mgmt_tls *t, const char *pem, size_t len, char *err, size_t n);
void els_mgmt_tls_free(struct els_mgmt_tls *t);

/* Identity (subject CN, printable characters only) and role of a verified client certificate:
 * the role comes from the OU and from subjectAltName URIs "els:role:ROLE"; none, an unknown
 * one, or two that disagree give ELS_ROLE_NONE. */
int els_mgmt_cert_role(X509 *x, char *identity, size_t n);

/* Reads a whole file (at most max bytes) into a malloc'd NUL-terminated buffer. */
int els_mgmt_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
