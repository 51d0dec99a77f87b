/* Certificate -> role and identity, on arbitrary DER: the mapping the endpoint and the main
 * process both run (els_mgmt_cert_role), the notAfter read, and the main process's parse of a
 * forwarded certificate list (els_mgmt_trust_role without a store reaches only the parse).
 * Checks: the identity is printable and terminated, the role one of the three, and an OU or
 * role URI holding a NUL never yields a role by itself (the seeds hold such certificates). */
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mgmt.h"

/* True when some OU or els:role: URI holds a NUL: then that claim must not count. */
static bool has_nul_claim(X509 *x, bool *other_claim)
{
	X509_NAME *subj = X509_get_subject_name(x);
	bool nul = false;
	*other_claim = false;
	for (int i = -1;
	     (i = X509_NAME_get_index_by_NID(subj, NID_organizationalUnitName, i)) >= 0;) {
		const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
		if (memchr(ASN1_STRING_get0_data(s), 0, (size_t)ASN1_STRING_length(s)))
			nul = true;
		else
			*other_claim = true;
	}
	GENERAL_NAMES *san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int k = 0; san && k < sk_GENERAL_NAME_num(san); k++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, k);
		if (g->type != GEN_URI)
			continue;
		const ASN1_STRING *s = g->d.uniformResourceIdentifier;
		if (memchr(ASN1_STRING_get0_data(s), 0, (size_t)ASN1_STRING_length(s)))
			nul = true;
		else
			*other_claim = true;
	}
	GENERAL_NAMES_free(san);
	return nul;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	X509 *x = d2i_X509(NULL, &p, (long)size);
	if (!x)
		return 0;
	char id[65];
	memset(id, 0x55, sizeof(id));
	int role = els_mgmt_cert_role(x, id, sizeof(id));
	if (role != ELS_ROLE_NONE && role != ELS_ROLE_AUDITOR && role != ELS_ROLE_ADMIN)
		abort();
	size_t n = strnlen(id, sizeof(id));
	if (n == sizeof(id))
		abort();
	for (size_t i = 0; i < n; i++)
		if (id[i] < 0x20 || id[i] > 0x7e)
			abort();
	bool other;
	if (has_nul_claim(x, &other) && !other && role != ELS_ROLE_NONE)
		abort(); /* a role from nothing but NUL-holding claims */
	time_t t;
	(void)els_mgmt_cert_not_after(x, &t);
	X509_free(x);
	return 0;
}
