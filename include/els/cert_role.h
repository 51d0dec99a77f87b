/* Who a management peer is, from its certificate: the identity (subject CN, printable) and
 * the role it states (subject OU and subjectAltName URIs "els:role:ROLE"). One reading of the
 * certificate for elsd's endpoint and metrics listener and for els-console's ports; each
 * caller names the roles it knows, so elsd never takes the console's "agent" or "console" as
 * a role of its own clients. */
#ifndef ELS_CERT_ROLE_H
#define ELS_CERT_ROLE_H

#include <openssl/x509.h>
#include <stddef.h>
#include <time.h>

/* Maps a role name to a role (> 0), or 0 (ELS_ROLE_NONE) for a name the caller does not know. */
typedef int (*els_role_parse_fn)(const char *name);

/* identity gets the CN (letters, digits, '.', '_', '-'; others '?'; "(no CN)" without one).
 * Returns the one role the certificate states, or 0 when it states none, two that disagree,
 * an OU or URI with an embedded NUL, or an els:role: URI naming a role parse does not know
 * (which is a bad certificate, not "no claim": the OU must not outvote it). */
int els_cert_role(X509 *x, els_role_parse_fn parse, char *identity, size_t n);

/* The certificate's notAfter as a time_t (UTC), or -EINVAL. */
int els_cert_not_after(X509 *x, time_t *out);

#endif
