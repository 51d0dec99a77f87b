/* A certificate's identity and role (els/cert_role.h). */
#include <errno.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "els/cert_role.h"

static void copy_printable(char *out, size_t n, const unsigned char *s, int len)
{
	size_t o = 0;
	for (int i = 0; i < len && o + 1 < n; i++) {
		unsigned char ch = s[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
		out[o++] = ok ? (char)ch : '?';
	}
	out[o] = 0;
}

/* Adds role r to the set; a second, different role makes the set contradictory (-1). */
static void add_role(int *role, int r)
{
	if (*role == -1 || r == 0)
		return;
	if (*role == 0)
		*role = r;
	else if (*role != r)
		*role = -1;
}

int els_cert_role(X509 *x, els_role_parse_fn parse, char *identity, size_t n)
{
	X509_NAME *subj = X509_get_subject_name(x);
	int role = 0, i;

	snprintf(identity, n, "(no CN)");
	i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (i >= 0) {
		const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
		copy_printable(identity, n, ASN1_STRING_get0_data(s), ASN1_STRING_length(s));
	}
	for (i = -1; (i = X509_NAME_get_index_by_NID(subj, NID_organizationalUnitName, i)) >= 0;) {
		const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
		char ou[16];
		/* An OU with a NUL in it ("admin\0x") is not a role name: compared as a C
		 * string it would read as its prefix. */
		if (ASN1_STRING_length(s) >= (int)sizeof(ou) ||
		    memchr(ASN1_STRING_get0_data(s), 0, (size_t)ASN1_STRING_length(s)))
			continue;
		memcpy(ou, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
		ou[ASN1_STRING_length(s)] = 0;
		add_role(&role, parse(ou));
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
			char r[32] = "";
			/* Too long, or a NUL inside ("els:role:admin\0x"): no known role. */
			if (len < 32 && !memchr(d, 0, (size_t)len)) {
				memcpy(r, d + 9, (size_t)len - 9);
				r[len - 9] = 0;
			}
			int pr = parse(r);
			/* An els:role: URI naming no known role is a bad certificate, not "no
			 * claim": it must not be outvoted by the OU. */
			add_role(&role, pr == 0 ? -1 : pr);
		}
	}
	GENERAL_NAMES_free(san);
	return role < 0 ? 0 : role;
}

int els_cert_not_after(X509 *x, time_t *out)
{
	struct tm tm;
	const ASN1_TIME *t = X509_get0_notAfter(x);
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return -EINVAL;
	*out = timegm(&tm);
	return 0;
}
