/* els-console change control on arbitrary input (console/change_*.c): what an admin's request
 * carries reaches these parsers: the canary spec, a registry entry's port list and dates, a
 * proposed policy document checked against the registry (the engine's loader, then the
 * permits' ids, directions, protocols and ports), and two policy bodies diffed. Input: the
 * bytes up to the first NUL are one text, the rest a second one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"

/* libconfig 1.5 (Debian 12) leaks scanner buffers on some syntax errors (as fuzz_policy and
 * fuzz_header_filter say); not ours, and the document goes through it first. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\n"
	       "leak:libconfig_yylex\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct change_registry_entry reg[] = {
	    {"https", "tcp", "443", "in", 0},
	    {"dns", "udp", "53", "out", 1},
	    {"web", "any", "80,8000-8080", "in", 0},
	};
	char *a = malloc(size + 1), *b;
	struct change_canary cn;
	const char *why;
	time_t t;

	if (!a)
		return 0;
	memcpy(a, data, size);
	a[size] = 0;
	b = a + strlen(a);
	if (b < a + size)
		b++;
	if (change_canary_parse(a, &cn, &why) == 0) {
		unsigned k = change_canary_count(&cn, 1000);
		if (k < 1 || k > 1000)
			abort();
	}
	(void)change_ports_cover(a, 443, 443);
	(void)change_date_end(a, &t);
	struct change_problems pr = {0};
	bool loaded;
	if (change_registry_check(a, strlen(a), reg, 3, 1700000000, &pr, &loaded) < 0)
		abort();
	for (size_t i = 0; i < pr.n; i++)
		if (!pr.v[i].text)
			abort();
	change_problems_free(&pr);
	char *diff = NULL;
	if (change_diff(a, "a", b, "b", &diff) == 0 && strcmp(a, b) == 0 && diff[0])
		abort(); /* equal texts give an empty diff */
	free(diff);
	free(a);
	return 0;
}
