/* Private to tls.c (the TLS context and its callbacks) and tls_conn.c (the connection):
 * the connection state the callbacks fill in and the helpers both halves use. */
#ifndef ELSCTL_TLS_INT_H
#define ELSCTL_TLS_INT_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

#include "../elsctl.h"

struct ctl_conn {
	SSL *ssl;
	int fd;
	const struct ctl_endpoint *ep;
	unsigned timeout_s;
	/* First verification failure of the agent's chain (0: none). */
	int verify_err, verify_depth;
	char verify_subject[256];
	/* Fatal alert the agent sent us (-1: none). */
	int alert;
	bool answered; /* a whole answer arrived: the agent accepted our certificate */
	char our_identity[256];
};

/* ex_data indices: the ctl_conn on each SSL, the CRL path on the context. */
extern int conn_idx, ctx_crl_idx;

/* Alerts by which the agent says it did not accept our certificate. */
bool alert_about_us(int desc);
/* "CN=alice, OU=admin": the parts of a subject an operator recognises. */
void name_brief(X509_NAME *name, char *buf, size_t len);
/* The text of the newest OpenSSL error, without the library prefix noise. */
const char *ssl_err_text(char *buf, size_t len);

#endif
