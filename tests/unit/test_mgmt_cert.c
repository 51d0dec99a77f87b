/* Certificate -> role mapping (els_mgmt_cert_role): OU and "els:role:" URIs, their agreement,
 * and bytes that only look like a role: an OU or URI with an embedded NUL ("admin\0x") must not
 * count as the role its first bytes spell. Certificates are built in memory; signatures do
 * not matter here (the mapping runs on verified certificates). With ELS_WRITE_SEEDS=DIR set,
 * the certificates are also written there as DER: the fuzz target's seed corpus. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgmt.h"

/* A certificate with CN cn, the given OU bytes (NULL: none) and role URI bytes (NULL: none). */
static X509 *make(const char *cn, const char *ou, size_t oulen, const char *uri, size_t urilen)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);
	if (ou)
		X509_NAME_add_entry_by_NID(n, NID_organizationalUnitName, V_ASN1_UTF8STRING,
					   (const unsigned char *)ou, (int)oulen, -1, 0);
	X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_ASC, (const unsigned char *)cn, -1,
				   -1, 0);
	ASN1_TIME_set(X509_getm_notBefore(x), 0);
	ASN1_TIME_set(X509_getm_notAfter(x), 2000000000);
	static EVP_PKEY *key;
	if (!key)
		key = EVP_EC_gen("P-256");
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, key);
	if (uri) {
		GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();
		ASN1_STRING_set(s, uri, (int)urilen);
		GENERAL_NAME_set0_value(g, GEN_URI, s);
		sk_GENERAL_NAME_push(gens, g);
		X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0);
		GENERAL_NAMES_free(gens);
	}
	X509_sign(x, key, EVP_sha256());
	/* Written as DER and read back, as the fuzz target and the main process see it. */
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der);
	X509_free(x);
	const unsigned char *p = der;
	x = d2i_X509(NULL, &p, len);
	const char *seeds = getenv("ELS_WRITE_SEEDS");
	if (seeds) {
		char path[512];
		static unsigned seq;
		snprintf(path, sizeof(path), "%s/cert-%02u.der", seeds, ++seq);
		FILE *f = fopen(path, "wb");
		if (f) {
			fwrite(der, 1, (size_t)len, f);
			fclose(f);
		}
	}
	OPENSSL_free(der);
	cr_assert_not_null(x);
	return x;
}

static int role(const char *cn, const char *ou, size_t oulen, const char *uri, size_t urilen,
		char *id, size_t idn)
{
	X509 *x = make(cn, ou, oulen, uri, urilen);
	int r = els_mgmt_cert_role(x, id, idn);
	X509_free(x);
	return r;
}

#define S(s) s, sizeof(s) - 1

Test(mgmt_cert, ou_and_uri)
{
	char id[65];
	cr_assert_eq(role("ou-admin", S("admin"), NULL, 0, id, sizeof(id)), ELS_ROLE_ADMIN);
	cr_assert_str_eq(id, "ou-admin");
	cr_assert_eq(role("uri-auditor", NULL, 0, S("els:role:auditor"), id, sizeof(id)),
		     ELS_ROLE_AUDITOR);
	cr_assert_eq(role("both", S("admin"), S("els:role:admin"), id, sizeof(id)), ELS_ROLE_ADMIN);
	cr_assert_eq(role("disagree", S("admin"), S("els:role:auditor"), id, sizeof(id)),
		     ELS_ROLE_NONE);
	cr_assert_eq(role("unknown-uri", S("admin"), S("els:role:root"), id, sizeof(id)),
		     ELS_ROLE_NONE, "an unknown role URI is not outvoted by the OU");
	cr_assert_eq(role("none", S("sales"), NULL, 0, id, sizeof(id)), ELS_ROLE_NONE);
}

Test(mgmt_cert, embedded_nul_is_not_a_prefix)
{
	char id[65];
	cr_assert_eq(role("nul-ou", S("admin\0x"), NULL, 0, id, sizeof(id)), ELS_ROLE_NONE);
	cr_assert_eq(role("nul-ou-end", S("admin\0"), NULL, 0, id, sizeof(id)), ELS_ROLE_NONE);
	cr_assert_eq(role("nul-uri", NULL, 0, S("els:role:admin\0x"), id, sizeof(id)),
		     ELS_ROLE_NONE);
	/* A NUL URI claim spoils an OU claim too, as any bad role URI does. */
	cr_assert_eq(role("nul-uri-ou", S("admin"), S("els:role:admin\0"), id, sizeof(id)),
		     ELS_ROLE_NONE);
	cr_assert_eq(role("nul-ou-uri", S("auditor\0admin"), S("els:role:admin"), id, sizeof(id)),
		     ELS_ROLE_ADMIN, "the NUL OU is no claim; the URI alone decides");
}

Test(mgmt_cert, identity_is_printable_and_cut)
{
	char id[16];
	cr_assert_eq(role("a\x1b[2Jb\ncd-long-long-long-name", S("admin"), NULL, 0, id, sizeof(id)),
		     ELS_ROLE_ADMIN);
	cr_assert_str_eq(id, "a??2Jb?cd-long-");
}

Test(mgmt_cert, not_after)
{
	X509 *x = make("t", S("admin"), NULL, 0);
	time_t t;
	cr_assert_eq(els_mgmt_cert_not_after(x, &t), 0);
	cr_assert_eq(t, 2000000000);
	X509_free(x);
}

Test(mgmt_cert, audit_text_keeps_the_outcome)
{
	char t[96], cn[300];
	memset(cn, 'A', sizeof(cn) - 1);
	cn[sizeof(cn) - 1] = 0;
	els_mgmt_audit_text(t, sizeof(t), cn, "admin", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
			    "policy.rollback", "invalid_policy", " gen 4294967295");
	cr_assert_lt(strlen(t), sizeof(t));
	cr_assert(strstr(t, "policy.rollback: invalid_policy gen 4294967295"), "%s", t);
	cr_assert(strstr(t, "~/admin@"), "the cut is marked: %s", t);
	els_mgmt_audit_text(t, sizeof(t), "alice", "admin", "127.0.0.1", "status", "ok", " gen 3");
	cr_assert_str_eq(t, "mgmt alice/admin@127.0.0.1 status: ok gen 3");
}
