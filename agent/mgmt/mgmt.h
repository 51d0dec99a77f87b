/* The management endpoint: a separate program (elsd re-executed with a hidden option, see
 * agent/mgmt_exec.c) that serves TLS clients (agent/mgmt.c) and hands checked requests to the
 * main process over a socketpair (agent/ipc.h). The main process calls els_mgmt_spawn() and
 * verifies, for each request, the client certificate the endpoint forwards (mgmt_peer.c). */
#ifndef ELS_AGENT_MGMT_H
#define ELS_AGENT_MGMT_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "els/mgmt.h"
#include "ipc.h"

struct els_mgmt_tls;

/* The hidden option that makes elsd the endpoint (agent/main.c). */
#define ELS_MGMT_ENDPOINT_FLAG "--mgmt-endpoint"
#define ELS_MGMT_ENDPOINT_FD   3 /* its end of the socketpair */

/* ---- mgmt_exec.c ---- */

/* Starts the endpoint as a fresh program (/proc/self/exe --mgmt-endpoint, empty environment,
 * fd 3 the socketpair, 0-2 /dev/null, nothing else open), sends it c's endpoint settings and
 * waits for it to listen. Returns 0 with *pid and *fd (the main process's end, non-blocking);
 * otherwise logs why (the endpoint's own message) and returns -errno. */
int els_mgmt_spawn(const struct els_mgmt_conf *c, pid_t *pid, int *fd);
/* Logs a line the endpoint sent (ELS_IPC_LOG), prefixed, with every control or non-ASCII
 * byte replaced and at most 20 a second. */
void els_mgmt_log_line(const char *line);
/* main() of `elsd --mgmt-endpoint`; returns the exit status. */
int els_mgmt_endpoint_main(void);
/* The endpoint settings as one ELS_IPC_CONFIG body (NUL-separated key=value), and back.
 * pack: malloc'd in *out, 0 or -ENOMEM. unpack: fills c (free with els_mgmt_config_free's
 * fields), 0 or -EINVAL with the bad field in err. */
int els_mgmt_conf_pack(const struct els_mgmt_conf *c, char **out, size_t *len);
int els_mgmt_conf_unpack(const char *buf, size_t len, struct els_mgmt_conf *c, char *err, size_t n);

/* ---- mgmt_seccomp.c ---- */

/* The endpoint's system-call filter, applied after start-up (needs no_new_privs): no new
 * sockets of any kind, no connect/bind/listen, no sendto to an address, no sendmsg, no
 * namespaces (unshare, setns, clone with CLONE_NEW*), no ptrace or process_vm_*, no execve,
 * no mount, keyring, bpf, io_uring or module calls. Each fails with EPERM (clone3 with
 * ENOSYS, so libc falls back to clone); a call from another architecture's ABI kills.
 * Returns 0, or -errno with a message in err (also on an architecture it does not know). */
int els_mgmt_seccomp(char *err, size_t n);

/* ---- mgmt.c ---- */

/* Serves clients on lfd until the channel to the main process closes. */
void els_mgmt_serve(const struct els_mgmt_conf *c, struct els_mgmt_tls *tls, struct els_ipc *ipc,
		    int lfd);
/* A log line for the main process's log (ELS_IPC_LOG): the endpoint's fd 2 is /dev/null. */
void els_mgmt_log(struct els_ipc *ipc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- mgmt_tls.c ---- */

/* TLS material, read once while the process may still read the key. */
struct els_mgmt_tls {
	X509 *cert;
	STACK_OF(X509) * chain; /* extra certificates of the cert file */
	EVP_PKEY *key;
	STACK_OF(X509) * cas;
	SSL_CTX *ctx; /* for new connections; live ones hold a reference to theirs; NULL
		       * without a listener */
	/* Dialling the console (console.*): the agent is the TLS client. */
	X509 *ccert;
	STACK_OF(X509) * cchain;
	EVP_PKEY *ckey;
	STACK_OF(X509) * ccas;
	SSL_CTX *cctx; /* NULL without console.address */
};

/* Reads ca, cert, key and crl of c and builds the context: TLS 1.3 only, client certificate
 * required and checked against the CA and the CRL, no session resumption (so a revocation
 * counts at the next connection); skipped when c has a console address and no listen. With a
 * console address, also the console client context from console_* (cctx). Refuses a key file that group or others may read. 0, or
 * -errno with a message naming the file in err. */
int els_mgmt_tls_load(struct els_mgmt_tls *t, const struct els_mgmt_conf *c, char *err, size_t n);
/* Replaces the CRL (PEM text, one or more CRLs) for new connections. 0 or -errno + err. */
int els_mgmt_tls_set_crl(struct els_mgmt_tls *t, const char *pem, size_t len, char *err, size_t n);
/* The same for the console connection's context. */
int els_mgmt_tls_set_console_crl(struct els_mgmt_tls *t, const char *pem, size_t len, char *err,
				 size_t n);
void els_mgmt_tls_free(struct els_mgmt_tls *t);

/* The certificates of a PEM file (at least one), or NULL with err. */
STACK_OF(X509) * els_mgmt_read_certs(const char *path, char *err, size_t n);
/* A store trusting cas (each one's reference is taken) that checks the CRLs of crl_pem; NULL
 * with err when there is none. */
X509_STORE *els_mgmt_store_new(STACK_OF(X509) * cas, const char *crl_pem, size_t crl_len,
			       const char *crl_name, char *err, size_t n);
/* Verifies leaf (with untrusted intermediates, may be NULL) against store now, as the TLS
 * handshake does: X509_V_OK or the X509_V_ERR_* code (e.g. CERT_REVOKED, CERT_HAS_EXPIRED). */
int els_mgmt_cert_verify(X509_STORE *store, X509 *leaf, STACK_OF(X509) * untrusted);
/* The same for another purpose (X509_PURPOSE_SSL_SERVER for a console the agent dialled). */
int els_mgmt_cert_verify_purpose(X509_STORE *store, X509 *leaf, STACK_OF(X509) * untrusted,
				 int purpose);
/* An els-console's certificate: its OU and els:role: URIs state the role console and nothing
 * else (els-pki console-server). */
bool els_mgmt_cert_is_console(X509 *x);
/* The certificate names host (a DNS name, no partial wildcards, or an IP address in the SAN). */
bool els_mgmt_cert_names_host(X509 *x, const char *host);
/* The certificate's notAfter as a time_t: 0 or -EINVAL. */
int els_mgmt_cert_not_after(X509 *x, time_t *out);

/* Identity (subject CN, printable characters only) and role of a verified client certificate:
 * the role comes from the OU and from subjectAltName URIs "els:role:ROLE"; none, an unknown
 * one, or two that disagree give ELS_ROLE_NONE. An OU or URI with a NUL in it never counts as
 * the role its first bytes spell. */
int els_mgmt_cert_role(X509 *x, char *identity, size_t n);

/* Reads a whole file (at most max bytes) into a malloc'd NUL-terminated buffer: els/readfile.h
 * on a path. */
int els_mgmt_read_file(const char *path, size_t max, char **out, size_t *len);

/* ---- mgmt_peer.c (main process) ---- */

/* What the main process trusts a request's certificate with: its own copy of the CA and CRL,
 * read from the files, never from the endpoint. */
struct els_mgmt_trust;

/* Reads ca_path and crl_path. NULL with err on a bad file. */
struct els_mgmt_trust *els_mgmt_trust_new(const char *ca_path, const char *crl_path, char *err,
					  size_t n);
void els_mgmt_trust_free(struct els_mgmt_trust *t);
/* Re-reads the CRL file: 1 when it was replaced, 0 when force is false and the file has not
 * changed since the last read (same inode, size, mtime and ctime), -errno with err when it
 * cannot be read or holds no CRL (the old one stays). */
int els_mgmt_trust_reload_crl(struct els_mgmt_trust *t, bool force, char *err, size_t n);
/* The CRL text last read (for the endpoint), borrowed. */
const char *els_mgmt_trust_crl(const struct els_mgmt_trust *t, size_t *len);

/* A request's peer certificate as the endpoint forwards it: a 4-byte big-endian length, then
 * that many bytes of DER certificates (the client's first, then the chain it sent). */
#define ELS_MGMT_PEER_MAX (64u * 1024)

/* Verifies the forwarded DER certificates (der[0..len)) against t now and maps the leaf to
 * identity and role. Returns the role (ELS_ROLE_NONE on any failure) and writes to why, when
 * it fails, the reason ("certificate revoked", "not DER", ...). */
int els_mgmt_trust_role(struct els_mgmt_trust *t, const uint8_t *der, size_t len, char *identity,
			size_t idn, char *why, size_t whyn);
/* For a request from the console connection: the forwarded certificates are an els-console's
 * (verified now as a TLS server of t's CA and CRL, role console, naming host, the address
 * elsd dials). identity gets the CN. False with why otherwise. */
bool els_mgmt_trust_console(struct els_mgmt_trust *t, const uint8_t *der, size_t len,
			    const char *host, char *identity, size_t idn, char *why, size_t whyn);

#endif
