/* The metrics label escaper (agent/metrics_text.c) on any bytes: what comes out holds no raw
 * newline, only the three escapes the exposition format defines, never a quote that would end
 * the label, only valid UTF-8; and unescaping it gives back the input whenever the input was
 * valid UTF-8 (nothing an admin wrote is lost, only made safe). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static int valid_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
					 : c >= 0xf0 && c <= 0xf4	     ? 4
									     : 0;
		if (!len || i + len > n)
			return 0;
		uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1);
	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = 0;
	size_t inlen = strlen(in); /* a C string ends at its first NUL, as a permit id does */

	struct els_mbuf b = {0};
	els_mbuf_label_value(&b, in);
	if (b.oom) {
		free(in);
		return 0;
	}
	const char *out = b.p ? b.p : "";
	size_t n = b.len;
	if (!valid_utf8((const unsigned char *)out, n))
		abort();
	char *back = malloc(n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (out[i] == '\n' || out[i] == '"')
			abort(); /* a raw newline or quote would end the sample or the label */
		if (out[i] != '\\') {
			back[k++] = out[i];
			continue;
		}
		if (++i == n)
			abort(); /* a lone backslash at the end */
		if (out[i] == '\\' || out[i] == '"')
			back[k++] = out[i];
		else if (out[i] == 'n')
			back[k++] = '\n';
		else
			abort(); /* an escape the format does not define */
	}
	if (valid_utf8((const unsigned char *)in, inlen) && (k != inlen || memcmp(back, in, k)))
		abort();
	free(back);
	els_mbuf_free(&b);
	free(in);
	return 0;
}
