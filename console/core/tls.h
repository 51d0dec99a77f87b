/* TLS for both of els-console's listeners: TLS 1.3 only, a client certificate from the
 * listener's CA required and checked against its CRL during the handshake, no session
 * resumption (a revocation counts at the next connection). Certificates map to an identity
 * (subject CN, printable characters only) and a role, as elsd maps its clients
 * (agent/mgmt/mgmt_tls.c, els_mgmt_cert_role): OU and subjectAltName URIs "els:role:ROLE",
 * where none, an unknown els:role: URI, a NUL inside, or two that disagree give no role. The
 * console knows two more roles than elsd: "agent" (its agent port) and "console". */
#ifndef ELS_CONSOLE_TLS_H
#define ELS_CONSOLE_TLS_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <time.h>

#include "conf.h"
#include "els/mgmt.h"

enum { CONSOLE_ROLE_AGENT = 16, CONSOLE_ROLE_CONSOLE = 17 };

/* "admin", "auditor", "agent", "console" -> role; anything else ELS_ROLE_NONE. */
int console_role_parse(const char *s);
const char *console_role_name(int role);

/* The identity and role of a certificate (not verified here: the handshake did that). */
int console_cert_role(X509 *x, char *identity, size_t n);
/* notAfter as time_t: 0 or -EINVAL. */
int console_cert_not_after(X509 *x, time_t *out);

/* Verifies a live peer's certificate (with the chain it sent) against ctx's store now, as the
 * handshake did: X509_V_OK or the X509_V_ERR_* code (CERT_REVOKED after a new CRL,
 * CERT_HAS_EXPIRED once it expired during the session). */
int console_tls_verify_peer(SSL_CTX *ctx, SSL *ssl);

/* A server context for t (ca, cert, key, crl). The key file must be mode 0600 or stricter.
 * NULL with a message naming the file in err. */
SSL_CTX *console_tls_server_ctx(const struct console_tls_conf *t, char *err, size_t n);

#endif
