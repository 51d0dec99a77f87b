/* The console's TLS 1.3 client, its context: the CA, CRLs, our certificate and key, and the
 * verify and alert callbacks that record which certificate failed and why. The connection
 * itself (dial, handshake, requests) is in tls_conn.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "els/keyfile.h"
#include "els/mgmt.h"
#include "../elsctl.h"
#include "tls_int.h"

int conn_idx = -1, ctx_crl_idx = -1;

const char *ctl_alert_words(int desc)
{
	switch (desc) {
	case 0:
		return "connection closed (close_notify)";
	case 10:
		return "unexpected message";
	case 20:
		return "bad record MAC";
	case 22:
		return "record overflow";
	case 40:
		return "handshake failure";
	case 42:
		return "bad certificate";
	case 43:
		return "unsupported certificate";
	case 44:
		return "certificate revoked";
	case 45:
		return "certificate expired";
	case 46:
		return "certificate unknown (not valid for this use, or the CRL is missing or "
		       "expired)";
	case 47:
		return "illegal parameter";
	case 48:
		return "unknown CA (not issued by the agent's management CA)";
	case 49:
		return "access denied";
	case 50:
		return "decode error";
	case 51:
		return "decrypt error (signature check failed)";
	case 70:
		return "protocol version (the agent accepts TLS 1.3 only)";
	case 71:
		return "insufficient security";
	case 80:
		return "internal error";
	case 86:
		return "inappropriate fallback";
	case 90:
		return "user canceled";
	case 109:
		return "missing extension";
	case 110:
		return "unsupported extension";
	case 112:
		return "unrecognized name";
	case 116:
		return "certificate required (no client certificate was sent)";
	case 120:
		return "no application protocol";
	default:
		return "unknown alert";
	}
}

/* Alerts by which the agent says it did not accept our certificate. */
bool alert_about_us(int desc)
{
	return (desc >= 42 && desc <= 46) || desc == 48 || desc == 49 || desc == 51 || desc == 116;
}

/* "CN=alice, OU=admin": the parts of a subject an operator recognises. */
void name_brief(X509_NAME *name, char *buf, size_t len)
{
	char cn[128] = "", ou[128] = "";

	buf[0] = '\0';
	if (!name)
		return;
	X509_NAME_get_text_by_NID(name, NID_commonName, cn, sizeof(cn));
	X509_NAME_get_text_by_NID(name, NID_organizationalUnitName, ou, sizeof(ou));
	if (*cn && *ou)
		snprintf(buf, len, "CN=%s, OU=%s", cn, ou);
	else if (*cn)
		snprintf(buf, len, "CN=%s", cn);
	else
		X509_NAME_oneline(name, buf, (int)len);
}

/* The certificate's DNS and IP names, for a host-mismatch message. */
static void san_list(X509 *x, char *buf, size_t len)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && off < len; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char ip[64] = "";

		if (g->type == GEN_DNS) {
			off += (size_t)snprintf(buf + off, len - off, "%sDNS:%.*s", off ? ", " : "",
						ASN1_STRING_length(g->d.dNSName),
						(const char *)ASN1_STRING_get0_data(g->d.dNSName));
		} else if (g->type == GEN_IPADD) {
			const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
			int alen = ASN1_STRING_length(g->d.iPAddress);

			if (alen == 4 || alen == 16)
				inet_ntop(alen == 4 ? AF_INET : AF_INET6, a, ip, sizeof(ip));
			off +=
			    (size_t)snprintf(buf + off, len - off, "%sIP:%s", off ? ", " : "", ip);
		}
	}
	GENERAL_NAMES_free(gens);
	if (!*buf)
		snprintf(buf, len, "none");
}

static int verify_cb(int ok, X509_STORE_CTX *st)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(st, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct ctl_conn *c = ssl ? SSL_get_ex_data(ssl, conn_idx) : NULL;
	X509 *cur = X509_STORE_CTX_get_current_cert(st);
	int err = X509_STORE_CTX_get_error(st);

	if (ok || !c || c->verify_err)
		return ok;
	c->verify_err = err;
	c->verify_depth = X509_STORE_CTX_get_error_depth(st);
	/* Name the agent's own certificate; an issuer that failed is named after it. */
	name_brief(X509_STORE_CTX_get0_cert(st)
		       ? X509_get_subject_name(X509_STORE_CTX_get0_cert(st))
		       : NULL,
		   c->verify_subject, sizeof(c->verify_subject));
	if (c->verify_depth > 0 && cur) {
		char issuer[120];
		size_t n = strlen(c->verify_subject);

		name_brief(X509_get_subject_name(cur), issuer, sizeof(issuer));
		snprintf(c->verify_subject + n, sizeof(c->verify_subject) - n, "; at its issuer %s",
			 issuer);
	}
	if ((err == X509_V_ERR_HOSTNAME_MISMATCH || err == X509_V_ERR_IP_ADDRESS_MISMATCH) && cur) {
		char sans[200];
		size_t n = strlen(c->verify_subject);

		san_list(cur, sans, sizeof(sans));
		snprintf(c->verify_subject + n, sizeof(c->verify_subject) - n, "; it names %s",
			 sans);
	}
	return ok;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
	struct ctl_conn *c = SSL_get_ex_data(ssl, conn_idx);

	if (c && (where & SSL_CB_READ_ALERT) && (ret >> 8) == SSL3_AL_FATAL && c->alert < 0)
		c->alert = ret & 0xff;
}

/* An expired console certificate is refused by every agent: say so before dialling. */
static bool check_validity(X509 *x, const char *path, char *err, size_t errlen)
{
	const ASN1_TIME *na = X509_get0_notAfter(x), *nb = X509_get0_notBefore(x);
	char who[256], when[64] = "?";
	BIO *b;

	if (X509_cmp_current_time(na) > 0 && X509_cmp_current_time(nb) < 0)
		return true;
	b = BIO_new(BIO_s_mem());
	if (b && ASN1_TIME_print(b, X509_cmp_current_time(na) <= 0 ? na : nb)) {
		int n = BIO_read(b, when, sizeof(when) - 1);

		when[n > 0 ? n : 0] = '\0';
	}
	BIO_free(b);
	name_brief(X509_get_subject_name(x), who, sizeof(who));
	snprintf(err, errlen,
		 "console certificate %s (%s) %s %s: ask for a new one (els-pki console)", path,
		 who, X509_cmp_current_time(na) <= 0 ? "expired on" : "is not valid before", when);
	return false;
}

/* Loads every CRL in o->crl into the context's store and turns on the check of the agent's
 * certificate against them. An expired CRL is refused here, before dialling, with what to do:
 * OpenSSL would only say "CRL has expired" about each agent. */
static bool load_crls(SSL_CTX *ctx, const struct ctl_tls_opts *o, char *err, size_t errlen)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	BIO *b = BIO_new_file(o->crl, "r");
	X509_CRL *crl;
	int n = 0;
	char why[160];

	if (!b) {
		snprintf(err, errlen, "CRL file %s: %s (set --crl or ELSCTL_CRL)", o->crl,
			 strerror(errno));
		return false;
	}
	while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL))) {
		const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);

		if (next && X509_cmp_current_time(next) <= 0) {
			char when[64] = "?";
			BIO *m = BIO_new(BIO_s_mem());

			if (m && ASN1_TIME_print(m, next)) {
				int k = BIO_read(m, when, sizeof(when) - 1);

				when[k > 0 ? k : 0] = '\0';
			}
			BIO_free(m);
			snprintf(
			    err, errlen,
			    "CRL file %s expired on %s: refresh it on the CA host (els-pki crl "
			    "DIR) and copy DIR/crl.pem here",
			    o->crl, when);
			X509_CRL_free(crl);
			BIO_free(b);
			return false;
		}
		if (X509_STORE_add_crl(store, crl) != 1) {
			snprintf(err, errlen, "CRL file %s: %s", o->crl,
				 ssl_err_text(why, sizeof(why)));
			X509_CRL_free(crl);
			BIO_free(b);
			return false;
		}
		X509_CRL_free(crl); /* the store holds its own reference */
		n++;
	}
	BIO_free(b);
	if (n == 0) {
		snprintf(err, errlen, "CRL file %s: no PEM CRL in it (X509 CRL)", o->crl);
		return false;
	}
	ERR_clear_error(); /* the end of the file shows up as a PEM "no start line" */
	/* The agent's own certificate; the CA is our trust anchor. */
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	SSL_CTX_set_ex_data(ctx, ctx_crl_idx, (void *)o->crl);
	return true;
}

/* The text of the newest OpenSSL error, without the library prefix noise. */
const char *ssl_err_text(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	snprintf(buf, len, "%s", r ? r : "unknown TLS error");
	return buf;
}

SSL_CTX *ctl_tls_ctx_new(const struct ctl_tls_opts *o, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	EVP_PKEY *key = NULL;
	char why[160];

	if (conn_idx < 0)
		conn_idx = SSL_get_ex_new_index(0, "elsctl conn", NULL, NULL, NULL);
	if (ctx_crl_idx < 0)
		ctx_crl_idx = SSL_CTX_get_ex_new_index(0, "elsctl crl", NULL, NULL, NULL);
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		snprintf(err, errlen, "cannot create a TLS context: %s",
			 ssl_err_text(why, sizeof(why)));
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
		snprintf(err, errlen, "this OpenSSL cannot do TLS 1.3");
		goto fail;
	}
	/* Fall secure: the agent must show a certificate from our CA. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_info_callback(ctx, info_cb);
	if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
		snprintf(err, errlen, "CA file %s: %s (set --ca or ELSCTL_CA)", o->ca,
			 access(o->ca, R_OK) ? strerror(errno) : ssl_err_text(why, sizeof(why)));
		goto fail;
	}
	if (o->crl && !load_crls(ctx, o, err, errlen))
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
		snprintf(err, errlen, "console certificate %s: %s (set --cert or ELSCTL_CERT)",
			 o->cert,
			 access(o->cert, R_OK) ? strerror(errno) : ssl_err_text(why, sizeof(why)));
		goto fail;
	}
	/* Refused when group or others can read it (els/keyfile.h), on the descriptor read. */
	key = els_keyfile_read_pkey("console key", o->key, err, errlen);
	if (!key)
		goto fail;
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1) {
		snprintf(err, errlen, "console key %s: %s (set --key or ELSCTL_KEY)", o->key,
			 ssl_err_text(why, sizeof(why)));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "console key %s does not belong to certificate %s", o->key,
			 o->cert);
		goto fail;
	}
	if (!check_validity(SSL_CTX_get0_certificate(ctx), o->cert, err, errlen))
		goto fail;
	EVP_PKEY_free(key); /* the context holds its own reference */
	return ctx;
fail:
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	return NULL;
}
