/* Feeds arbitrary config text to the libconfig error explainer and the glued-string finder,
 * with each kind of libconfig error at a line taken from the input: nothing may read out of
 * bounds, and every message must be a terminated string. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "els/cfgerr.h"

static void on_glued(void *arg, unsigned line, const char *a, size_t alen, const char *b,
		     size_t blen)
{
	const char *lo = ((const char **)arg)[0], *hi = ((const char **)arg)[1];
	if (line == 0 || a < lo || a + alen > hi || b < lo || b + blen > hi)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const texts[] = {"syntax error", "mismatched element type in array",
					    "cannot open include file", "other"};
	char *buf = malloc(size + 1);
	unsigned line = size ? data[0] : 1;
	const char *bounds[2];
	struct els_cfgerr e;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (unsigned i = 0; i < 4; i++) {
		els_cfgerr_explain(buf, size, line, texts[i], "/nonexistent", &e);
		if (memchr(e.msg, '\0', sizeof(e.msg)) == NULL)
			abort();
	}
	bounds[0] = buf;
	bounds[1] = buf + size;
	els_cfgerr_glued(buf, size, on_glued, bounds);
	free(buf);
	return 0;
}
