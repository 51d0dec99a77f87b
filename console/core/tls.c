/* Server TLS contexts for the agent port and the API (tls.h). Every verification failure ends
 * the handshake: there is no setting that lowers it. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "console.h"
#include "els/keyfile.h"
#include "tls.h"

static void ssl_error(char *err, size_t n, const char *what, const char *path)
{
	unsigned long e = ERR_get_error();
	snprintf(err, n, "%s %s: %s", what, path, e ? ERR_reason_error_string(e) : "no PEM data");
	ERR_clear_error();
}

/* The console's key passes the secrecy check every secret file of the product passes. */
static EVP_PKEY *read_key(const char *path, char *err, size_t n)
{
	return els_keyfile_read_pkey("the console key", path, err, n);
}

/* Every CRL in the PEM file into store; at least one is required, so that a missing CRL is
 * an error at start rather than an unchecked revocation later. */
static int add_crls(X509_STORE *store, const char *path, char *err, size_t n)
{
	char *pem;
	size_t len;
	int rc = console_read_file(path, 16u << 20, &pem, &len), count = 0;
	if (rc < 0) {
		snprintf(err, n, "cannot read the CRL %s: %s", path, strerror(-rc));
		return rc;
	}
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509_CRL *crl;
	while (b && (crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL))) {
		X509_STORE_add_crl(store, crl);
		X509_CRL_free(crl);
		count++;
	}
	ERR_clear_error();
	BIO_free(b);
	free(pem);
	if (count == 0) {
		snprintf(err, n, "%s holds no PEM CRL (els-pki writes crl.pem)", path);
		return -EINVAL;
	}
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	return 0;
}

SSL_CTX *console_tls_server_ctx(const struct console_tls_conf *t, char *err, size_t n)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key = NULL;

	if (!ctx) {
		snprintf(err, n, "out of memory");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 2);
	/* No resumption: a resumed session skips the certificate check, and so would skip a
	 * CRL that revoked it since. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);

	if (SSL_CTX_load_verify_locations(ctx, t->ca, NULL) != 1) {
		ssl_error(err, n, "cannot read the CA", t->ca);
		goto fail;
	}
	STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->ca);
	if (!names) {
		ssl_error(err, n, "cannot read the CA", t->ca);
		goto fail;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	if (add_crls(SSL_CTX_get_cert_store(ctx), t->crl, err, n) < 0)
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
		ssl_error(err, n, "cannot read the certificate", t->cert);
		goto fail;
	}
	if (!(key = read_key(t->key, err, n)))
		goto fail;
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		ssl_error(err, n, "the certificate and key do not match:", t->key);
		goto fail;
	}
	EVP_PKEY_free(key);
	return ctx;
fail:
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	return NULL;
}

int console_tls_verify_peer(SSL_CTX *ctx, SSL *ssl)
{
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	X509_STORE_CTX *sc = X509_STORE_CTX_new();
	int rc = X509_V_ERR_OUT_OF_MEM;
	if (!leaf) {
		X509_STORE_CTX_free(sc);
		return X509_V_ERR_UNSPECIFIED;
	}
	if (sc && X509_STORE_CTX_init(sc, SSL_CTX_get_cert_store(ctx), leaf,
				      SSL_get_peer_cert_chain(ssl)) == 1) {
		X509_STORE_CTX_set_purpose(sc, X509_PURPOSE_SSL_CLIENT);
		X509_VERIFY_PARAM_set_depth(X509_STORE_CTX_get0_param(sc), 2);
		rc = X509_verify_cert(sc) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(sc);
	}
	X509_STORE_CTX_free(sc);
	ERR_clear_error();
	return rc;
}
