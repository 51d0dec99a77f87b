/* Agent certificates for the simulator: one key for all (a benchmark, not a fleet), and one
 * certificate per agent with its own CN (els-console takes the agent's identity from the CN
 * and replaces a session when the same identity connects again, so 10,000 agents need 10,000
 * names). Signed here with the CA's key, as `els-pki agent` would sign them (OU=agent, EKU
 * serverAuth+clientAuth), at tens of microseconds each instead of two openssl processes. */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!e)
		return -1;
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	return 0;
}

int sim_certs_load(struct sim_certs *c, const char *ca_crt, const char *ca_key)
{
	FILE *f = fopen(ca_crt, "r");
	if (!f)
		return -1;
	c->ca = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	f = fopen(ca_key, "r");
	if (!f)
		return -1;
	c->ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	c->key = EVP_EC_gen("P-256");
	return c->ca && c->ca_key && c->key ? 0 : -1;
}

X509 *sim_cert_issue(struct sim_certs *c, const char *cn, long serial)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	if (!x || !n)
		goto fail;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 7 * 86400);
	X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC, (const unsigned char *)"agent", -1, -1,
				   0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, X509_get_subject_name(c->ca));
	X509_set_pubkey(x, c->key);
	char san[96];
	snprintf(san, sizeof(san), "DNS:%s.sim.test", cn);
	if (add_ext(x, c->ca, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(x, c->ca, NID_key_usage, "critical,digitalSignature") ||
	    add_ext(x, c->ca, NID_ext_key_usage, "serverAuth,clientAuth") ||
	    add_ext(x, c->ca, NID_authority_key_identifier, "keyid:always") ||
	    add_ext(x, c->ca, NID_subject_alt_name, san) || !X509_sign(x, c->ca_key, EVP_sha256()))
		goto fail;
	X509_NAME_free(n);
	return x;
fail:
	X509_NAME_free(n);
	X509_free(x);
	return NULL;
}
