/* The main process's own check of who sent a request. The endpoint forwards the client's
 * certificates, not a role: here they are verified against the CA and CRL files the main
 * process reads itself (never anything the endpoint sends), at the time of the request, and
 * only then mapped to an identity and a role. A compromised endpoint can therefore claim no
 * role that no valid, unrevoked, unexpired certificate of the CA carries (docs/management.md,
 * "What a compromised endpoint can do"). */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mgmt.h"

struct els_mgmt_trust {
	char *crl_path;
	STACK_OF(X509) * cas;
	X509_STORE *store;
	char *crl; /* the CRL text of store, for the endpoint */
	size_t crl_len;
	struct stat crl_st; /* of the file when it was read: the change check */
};

struct els_mgmt_trust *els_mgmt_trust_new(const char *ca_path, const char *crl_path, char *err,
					  size_t n)
{
	struct els_mgmt_trust *t = calloc(1, sizeof(*t));
	if (!t || !(t->crl_path = strdup(crl_path))) {
		snprintf(err, n, "out of memory");
		goto fail;
	}
	t->cas = els_mgmt_read_certs(ca_path, err, n);
	if (!t->cas || els_mgmt_trust_reload_crl(t, true, err, n) < 0)
		goto fail;
	return t;
fail:
	els_mgmt_trust_free(t);
	return NULL;
}

void els_mgmt_trust_free(struct els_mgmt_trust *t)
{
	if (!t)
		return;
	free(t->crl_path);
	sk_X509_pop_free(t->cas, X509_free);
	X509_STORE_free(t->store);
	free(t->crl);
	free(t);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int els_mgmt_trust_reload_crl(struct els_mgmt_trust *t, bool force, char *err, size_t n)
{
	struct stat st;
	char *pem;
	size_t len;

	if (stat(t->crl_path, &st) < 0) {
		snprintf(err, n, "cannot read the CRL %s: %s", t->crl_path, strerror(errno));
		return -errno;
	}
	if (!force && t->store && same_file(&st, &t->crl_st))
		return 0;
	/* Remember it before reading, so that a file being written is read again at the next
	 * check rather than every second while it stays broken. */
	t->crl_st = st;
	int rc = els_mgmt_read_file(t->crl_path, 4u << 20, &pem, &len);
	if (rc < 0) {
		snprintf(err, n, "cannot read the CRL %s: %s", t->crl_path, strerror(-rc));
		return rc;
	}
	X509_STORE *store = els_mgmt_store_new(t->cas, pem, len, t->crl_path, err, n);
	if (!store) {
		free(pem);
		return -EINVAL;
	}
	X509_STORE_free(t->store);
	free(t->crl);
	t->store = store;
	t->crl = pem;
	t->crl_len = len;
	return 1;
}

const char *els_mgmt_trust_crl(const struct els_mgmt_trust *t, size_t *len)
{
	*len = t->crl_len;
	return t->crl;
}

/* The forwarded DER certificates: the leaf and the rest, or false with why. */
static bool parse_der(const uint8_t *der, size_t len, X509 **leaf, STACK_OF(X509) * *chain,
		      char *why, size_t whyn)
{
	const uint8_t *p = der, *end = der + len;
	*leaf = NULL;
	*chain = sk_X509_new_null();
	while (*chain && p < end) {
		X509 *x = d2i_X509(NULL, &p, (long)(end - p));
		if (!x) {
			snprintf(why, whyn, "certificate data is not DER");
			return false;
		}
		if (!*leaf)
			*leaf = x;
		else
			sk_X509_push(*chain, x);
	}
	if (!*leaf) {
		snprintf(why, whyn, "no certificate");
		return false;
	}
	return true;
}

bool els_mgmt_trust_console(struct els_mgmt_trust *t, const uint8_t *der, size_t len,
			    const char *host, char *identity, size_t idn, char *why, size_t whyn)
{
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = NULL;
	bool ok = false;

	snprintf(identity, idn, "?");
	if (!parse_der(der, len, &leaf, &chain, why, whyn))
		goto out;
	els_mgmt_cert_role(leaf, identity, idn); /* the CN, for the record */
	/* As the agent's TLS client checked it: a server certificate of the console CA,
	 * unrevoked and unexpired now, for the role console and the address dialled. */
	int v = els_mgmt_cert_verify_purpose(t->store, leaf, chain, X509_PURPOSE_SSL_SERVER);
	if (v != X509_V_OK)
		snprintf(why, whyn, "%s", X509_verify_cert_error_string(v));
	else if (!els_mgmt_cert_is_console(leaf))
		snprintf(why, whyn, "the certificate has no role console");
	else if (!els_mgmt_cert_names_host(leaf, host))
		snprintf(why, whyn, "the certificate does not name %.64s", host);
	else
		ok = true;
out:
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	ERR_clear_error();
	return ok;
}

int els_mgmt_trust_role(struct els_mgmt_trust *t, const uint8_t *der, size_t len, char *identity,
			size_t idn, char *why, size_t whyn)
{
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = NULL;
	int role = ELS_ROLE_NONE;

	snprintf(identity, idn, "?");
	if (!parse_der(der, len, &leaf, &chain, why, whyn))
		goto out;
	/* The identity for the audit record even when the check fails: which certificate was
	 * tried matters most then. The role only counts once it passes. */
	int claimed = els_mgmt_cert_role(leaf, identity, idn);
	int v = els_mgmt_cert_verify(t->store, leaf, chain);
	if (v != X509_V_OK) {
		snprintf(why, whyn, "%s", X509_verify_cert_error_string(v));
		goto out;
	}
	role = claimed;
	if (role == ELS_ROLE_NONE)
		snprintf(why, whyn, "the certificate names no role");
out:
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
	ERR_clear_error();
	return role;
}
