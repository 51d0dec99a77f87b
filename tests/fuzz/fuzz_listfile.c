/* Feeds arbitrary bytes to the list file parser, split into lines at '\n' as getline would,
 * and loads the entries into an LPM table as the iplist handler does. Checks the parser's
 * own bookkeeping: line count, message cap, and that every entry it passed on is in the
 * table. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "els/listfile.h"
#include "els/lpm.h"

static int add(const struct els_cidr *c, const char *file, unsigned line, void *arg)
{
	(void)file;
	struct els_lpm *t = arg;
	if (line == 0 || els_lpm_insert(t, c, line) < 0)
		abort();
	if (els_lpm_get(t, c) != line)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct els_diag d;
	struct els_listfile lf;
	struct els_lpm *t = els_lpm_new();
	unsigned lines = 0;

	if (!t)
		return 0;
	els_diag_init(&d, NULL);
	els_listfile_init(&lf, "fuzz.txt", &d, add, t);
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		els_listfile_feed(&lf, p, n);
		lines++;
		p += n;
	}
	int rc = els_listfile_finish(&lf);
	if (lf.line != lines)
		abort();
	if ((rc == 0) != (lf.bad == 0) || (rc != 0 && rc != -EINVAL))
		abort();
	unsigned want_msgs = lf.bad > ELS_LISTFILE_MAX_MSGS ? ELS_LISTFILE_MAX_MSGS + 1 : lf.bad;
	if (d.count != want_msgs)
		abort();
	if (els_lpm_count(t) > lf.entries)
		abort();
	els_diag_free(&d);
	els_lpm_free(t);
	return 0;
}
