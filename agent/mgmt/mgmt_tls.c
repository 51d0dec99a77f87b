/* TLS for the management endpoint: certificates, key, CA, CRL, and who a client is. Every
 * verification failure ends the handshake: there is no setting that lowers it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "els/cert_role.h"
#include "els/keyfile.h"
#include "els/readfile.h"
#include "mgmt.h"

int els_mgmt_read_file(const char *path, size_t max, char **out, size_t *len)
{
	return els_read_file_at(AT_FDCWD, path, 0, max, out, len);
}

static void ssl_error(char *err, size_t n, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	snprintf(err, n, "%s %s: %s", what, path, e ? ERR_reason_error_string(e) : "no PEM data");
	ERR_clear_error();
}

STACK_OF(X509) * els_mgmt_read_certs(const char *path, char *err, size_t n)
{
	char *pem;
	size_t len;
	int rc = els_mgmt_read_file(path, 4u << 20, &pem, &len);
	if (rc < 0) {
		snprintf(err, n, "cannot read %s: %s", path, strerror(-rc));
		return NULL;
	}
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *x;
	while (b && sk && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
		sk_X509_push(sk, x);
	ERR_clear_error();
	BIO_free(b);
	free(pem);
	if (!sk || sk_X509_num(sk) == 0) {
		snprintf(err, n, "%s holds no PEM certificate", path);
		sk_X509_pop_free(sk, X509_free);
		return NULL;
	}
	return sk;
}

X509_STORE *els_mgmt_store_new(STACK_OF(X509) * cas, const char *crl_pem, size_t crl_len,
				const char *crl_name, char *err, size_t n)
{
	X509_STORE *store = X509_STORE_new();
	BIO *b = BIO_new_mem_buf(crl_pem, (int)crl_len);
	unsigned ncrl = 0;
	X509_CRL *crl;

	if (!store || !b) {
		snprintf(err, n, "out of memory");
		goto fail;
	}
	while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL))) {
		X509_STORE_add_crl(store, crl);
		X509_CRL_free(crl);
		ncrl++;
	}
	ERR_clear_error();
	if (!ncrl) {
		snprintf(err, n, "%s holds no PEM CRL (create one with 'els-pki crl DIR')",
			 crl_name);
		goto fail;
	}
	for (int i = 0; i < sk_X509_num(cas); i++)
		X509_STORE_add_cert(store, sk_X509_value(cas, i));
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	BIO_free(b);
	return store;
fail:
	BIO_free(b);
	X509_STORE_free(store);
	return NULL;
}

static SSL_CTX *build_ctx(struct els_mgmt_tls *t, const char *crl_pem, size_t crl_len,
			  const char *crl_name, char *err, size_t n)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	X509_STORE *store = NULL;

	if (!ctx) {
		snprintf(err, n, "out of memory");
		goto fail;
	}
	store = els_mgmt_store_new(t->cas, crl_pem, crl_len, crl_name, err, n);
	if (!store)
		goto fail;
	SSL_CTX_set_cert_store(ctx, store);
	store = NULL;

	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 2);
	/* No resumption: a resumed session skips the certificate check, and so would skip a
	 * CRL that revoked it since. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
	for (int i = 0; names && i < sk_X509_num(t->cas); i++)
		sk_X509_NAME_push(names,
				  X509_NAME_dup(X509_get_subject_name(sk_X509_value(t->cas, i))));
	if (names)
		SSL_CTX_set_client_CA_list(ctx, names);
	if (SSL_CTX_use_certificate(ctx, t->cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, t->key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		ssl_error(err, n, "the agent certificate and key do not match:", "(cert/key)");
		goto fail;
	}
	for (int i = 0; t->chain && i < sk_X509_num(t->chain); i++)
		SSL_CTX_add1_chain_cert(ctx, sk_X509_value(t->chain, i));
	return ctx;
fail:
	X509_STORE_free(store);
	SSL_CTX_free(ctx);
	return NULL;
}

/* The context for dialling the console: TLS 1.3 only, the agent's certificate as the client's,
 * the console's checked against the console CA and CRL as a TLS server (its name is set per
 * connection, dialout.c), no resumption. */
static SSL_CTX *build_client_ctx(struct els_mgmt_tls *t, const char *crl_pem, size_t crl_len,
				 const char *crl_name, char *err, size_t n)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	X509_STORE *store = NULL;

	if (!ctx) {
		snprintf(err, n, "out of memory");
		goto fail;
	}
	store = els_mgmt_store_new(t->ccas, crl_pem, crl_len, crl_name, err, n);
	if (!store)
		goto fail;
	SSL_CTX_set_cert_store(ctx, store);
	store = NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_verify_depth(ctx, 2);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate(ctx, t->ccert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, t->ckey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		ssl_error(err, n, "the console certificate and key do not match:",
			  "(console.cert/console.key)");
		goto fail;
	}
	for (int i = 0; t->cchain && i < sk_X509_num(t->cchain); i++)
		SSL_CTX_add1_chain_cert(ctx, sk_X509_value(t->cchain, i));
	return ctx;
fail:
	X509_STORE_free(store);
	SSL_CTX_free(ctx);
	return NULL;
}

static int load_console(struct els_mgmt_tls *t, const struct els_mgmt_conf *c, char *err, size_t n)
{
	char *crl = NULL;
	size_t crl_len;

	t->ccas = els_mgmt_read_certs(c->console_ca, err, n);
	if (!t->ccas)
		return -EINVAL;
	t->cchain = els_mgmt_read_certs(c->console_cert, err, n);
	if (!t->cchain)
		return -EINVAL;
	t->ccert = sk_X509_shift(t->cchain);
	t->ckey = els_keyfile_read_pkey("the console connection key", c->console_key, err, n);
	if (!t->ckey)
		return -EINVAL;
	int rc = els_mgmt_read_file(c->console_crl, 4u << 20, &crl, &crl_len);
	if (rc < 0) {
		snprintf(err, n, "cannot read the CRL %s: %s", c->console_crl, strerror(-rc));
		return rc;
	}
	t->cctx = build_client_ctx(t, crl, crl_len, c->console_crl, err, n);
	free(crl);
	return t->cctx ? 0 : -EINVAL;
}

int els_mgmt_tls_load(struct els_mgmt_tls *t, const struct els_mgmt_conf *c, char *err, size_t n)
{
	char *crl = NULL;
	size_t crl_len;
	int rc;

	memset(t, 0, sizeof(*t));
	if (c->console_address && load_console(t, c, err, n) < 0)
		goto fail;
	/* An endpoint that only dials its console needs no server material (its files need
	 * not exist). Any other caller (the listener; the metrics endpoint, which passes only
	 * the four files) gets the server context. */
	if (!c->listen && c->console_address)
		return 0;
	t->cas = els_mgmt_read_certs(c->ca, err, n);
	if (!t->cas)
		goto fail;
	t->chain = els_mgmt_read_certs(c->cert, err, n);
	if (!t->chain)
		goto fail;
	t->cert = sk_X509_shift(t->chain);
	/* The agent's key must be its own (els/keyfile.h): refused rather than used when someone
	 * else owns it or group or others may read it. */
	t->key = els_keyfile_read_pkey("the agent key", c->key, err, n);
	if (!t->key)
		goto fail;
	rc = els_mgmt_read_file(c->crl, 4u << 20, &crl, &crl_len);
	if (rc < 0) {
		snprintf(err, n, "cannot read the CRL %s: %s", c->crl, strerror(-rc));
		goto fail;
	}
	t->ctx = build_ctx(t, crl, crl_len, c->crl, err, n);
	free(crl);
	if (!t->ctx)
		goto fail;
	return 0;
fail:
	els_mgmt_tls_free(t);
	return -EINVAL;
}

int els_mgmt_tls_set_crl(struct els_mgmt_tls *t, const char *pem, size_t len, char *err, size_t n)
{
	if (!t->cas)
		return 0; /* no listener */
	SSL_CTX *ctx = build_ctx(t, pem, len, "the new CRL", err, n);
	if (!ctx)
		return -EINVAL;
	SSL_CTX_free(t->ctx); /* connections in progress keep their own reference */
	t->ctx = ctx;
	return 0;
}

int els_mgmt_tls_set_console_crl(struct els_mgmt_tls *t, const char *pem, size_t len, char *err,
				 size_t n)
{
	if (!t->ccas)
		return 0;
	SSL_CTX *ctx = build_client_ctx(t, pem, len, "the new console CRL", err, n);
	if (!ctx)
		return -EINVAL;
	SSL_CTX_free(t->cctx);
	t->cctx = ctx;
	return 0;
}

void els_mgmt_tls_free(struct els_mgmt_tls *t)
{
	SSL_CTX_free(t->ctx);
	EVP_PKEY_free(t->key);
	X509_free(t->cert);
	sk_X509_pop_free(t->chain, X509_free);
	sk_X509_pop_free(t->cas, X509_free);
	SSL_CTX_free(t->cctx);
	EVP_PKEY_free(t->ckey);
	X509_free(t->ccert);
	sk_X509_pop_free(t->cchain, X509_free);
	sk_X509_pop_free(t->ccas, X509_free);
	memset(t, 0, sizeof(*t));
}

int els_mgmt_cert_role(X509 *x, char *identity, size_t n)
{
	return els_cert_role(x, els_mgmt_role_parse, identity, n);
}

int els_mgmt_cert_not_after(X509 *x, time_t *out)
{
	return els_cert_not_after(x, out);
}

int els_mgmt_cert_verify(X509_STORE *store, X509 *leaf, STACK_OF(X509) * untrusted)
{
	return els_mgmt_cert_verify_purpose(store, leaf, untrusted, X509_PURPOSE_SSL_CLIENT);
}

bool els_mgmt_cert_is_console(X509 *x)
{
	X509_NAME *subj = X509_get_subject_name(x);
	unsigned console = 0, other = 0;

	for (int i = -1; (i = X509_NAME_get_index_by_NID(subj, NID_organizationalUnitName, i)) >= 0;) {
		const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
		if (ASN1_STRING_length(s) == 7 && !memcmp(ASN1_STRING_get0_data(s), "console", 7))
			console++;
		else
			other++;
	}
	GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int k = 0; san && k < sk_GENERAL_NAME_num(san); k++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, k);
		if (g->type != GEN_URI)
			continue;
		const ASN1_STRING *s = g->d.uniformResourceIdentifier;
		int len = ASN1_STRING_length(s);
		const unsigned char *d = ASN1_STRING_get0_data(s);
		if (len >= 9 && memcmp(d, "els:role:", 9) == 0) {
			if (len == 16 && !memcmp(d + 9, "console", 7))
				console++;
			else
				other++;
		}
	}
	GENERAL_NAMES_free(san);
	/* Every role the certificate states must be console: one that also says admin (or
	 * anything else) is contradictory, as for operators. */
	return console > 0 && other == 0;
}

bool els_mgmt_cert_names_host(X509 *x, const char *host)
{
	unsigned char tmp[16];
	bool ip = inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
	int r = ip ? X509_check_ip_asc(x, host, 0)
		   : X509_check_host(x, host, strlen(host), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
				     NULL);
	ERR_clear_error();
	return r == 1;
}

int els_mgmt_cert_verify_purpose(X509_STORE *store, X509 *leaf, STACK_OF(X509) * untrusted,
				 int purpose)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = X509_V_ERR_OUT_OF_MEM;
	if (ctx && X509_STORE_CTX_init(ctx, store, leaf, untrusted) == 1) {
		/* As the TLS handshake checks a client: same purpose, depth and CRL flag (the
		 * store carries X509_V_FLAG_CRL_CHECK). */
		X509_STORE_CTX_set_purpose(ctx, purpose);
		X509_VERIFY_PARAM_set_depth(X509_STORE_CTX_get0_param(ctx), 2);
		rc = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
		if (rc == X509_V_OK && X509_STORE_CTX_get_error(ctx) != X509_V_OK)
			rc = X509_STORE_CTX_get_error(ctx);
	}
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}
