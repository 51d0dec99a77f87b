/* Feeds arbitrary bytes to els_policy_load_document, as a console's policy.validate would,
 * with an empty policy directory: whatever it holds, the loader either returns a policy or
 * reports at least one error, never reads a file outside the directory, and leaks nothing. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "els/policy.h"

/* libconfig 1.5 (Debian 12) leaks scanner buffers on some syntax errors; not ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[] = "/tmp/els_fuzz_pd_XXXXXX";
	static int dfd = -1;
	struct els_diag d;

	if (dfd < 0) {
		if (!mkdtemp(dir))
			abort();
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (size > 65536)
		return 0; /* libconfig's group scan is quadratic: the wall-clock cap's job */
	els_diag_init(&d, NULL);
	struct els_policy *p = els_policy_load_document((const char *)data, size, "<policy>", dfd,
							dir, "/dev/null", &d);
	if (!p && d.count == 0)
		abort();
	if (p && d.count != 0)
		abort();
	els_policy_free(p);
	els_diag_free(&d);
	return 0;
}
