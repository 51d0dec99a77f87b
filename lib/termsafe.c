/* Terminal-safe copies of untrusted text. See include/els/termsafe.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "els/termsafe.h"

/* Length of the valid UTF-8 sequence at s (at most n bytes) and its code point, or 0 when the
 * bytes there are not valid UTF-8 (overlong forms, surrogates and values above U+10FFFF are
 * invalid too). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c, min;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2, c = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, c = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* Skips a control string (OSC, DCS, SOS, PM, APC) from s[i], just after its introducer, up to
 * and including its terminator: BEL, ESC \ or the C1 ST (U+009C). */
static size_t skip_string(const unsigned char *s, size_t n, size_t i)
{
	while (i < n) {
		uint32_t cp;
		size_t l = utf8_decode(s + i, n - i, &cp);

		if (!l)
			l = 1, cp = 0xfffd;
		if (cp == 0x07 || cp == 0x9c)
			return i + l;
		if (cp == 0x1b && i + 1 < n && s[i + 1] == '\\')
			return i + 2;
		i += l;
	}
	return n;
}

/* Skips the parameters of a CSI sequence from s[i], up to and including its final byte. */
static size_t skip_csi(const unsigned char *s, size_t n, size_t i)
{
	while (i < n && s[i] >= 0x30 && s[i] <= 0x3f)
		i++;
	while (i < n && s[i] >= 0x20 && s[i] <= 0x2f)
		i++;
	if (i < n && s[i] >= 0x40 && s[i] <= 0x7e)
		i++;
	return i;
}

/* Where the escape sequence introduced by code point cp (ESC or C1) at s[i..i+l) ends. */
static size_t skip_escape(const unsigned char *s, size_t n, size_t i, size_t l, uint32_t cp)
{
	size_t j = i + l;

	if (cp == 0x9b)
		return skip_csi(s, n, j);
	if (cp == 0x90 || cp == 0x98 || cp == 0x9d || cp == 0x9e || cp == 0x9f)
		return skip_string(s, n, j);
	if (cp != 0x1b || j >= n)
		return j;
	if (s[j] == '[')
		return skip_csi(s, n, j + 1);
	if (s[j] == ']' || s[j] == 'P' || s[j] == 'X' || s[j] == '^' || s[j] == '_')
		return skip_string(s, n, j + 1);
	/* nF and Fp/Fe/Fs forms: intermediates, then one final byte */
	while (j < n && s[j] >= 0x20 && s[j] <= 0x2f)
		j++;
	if (j < n && s[j] >= 0x30 && s[j] <= 0x7e)
		j++;
	return j;
}

static bool is_control(uint32_t cp, bool keep_lines)
{
	if (keep_lines && (cp == '\n' || cp == '\t'))
		return false;
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* Walks s; writes the safe form into out (when not NULL) and returns its length. */
static size_t clean(const unsigned char *s, size_t n, bool keep_lines, char *out)
{
	size_t i = 0, o = 0;

	while (i < n) {
		uint32_t cp;
		size_t l = utf8_decode(s + i, n - i, &cp);

		if (!l) {
			i++;
		} else if (cp == 0x1b || (cp >= 0x80 && cp <= 0x9f)) {
			i = skip_escape(s, n, i, l, cp);
		} else if (is_control(cp, keep_lines)) {
			i += l;
		} else {
			if (out)
				memcpy(out + o, s + i, l);
			o += l;
			i += l;
			continue;
		}
		if (out)
			out[o] = '?';
		o++;
	}
	return o;
}

char *els_termsafe(const char *s, size_t len, bool keep_lines)
{
	size_t n = clean((const unsigned char *)s, len, keep_lines, NULL);
	char *out = malloc(n + 1);

	if (!out)
		return NULL;
	clean((const unsigned char *)s, len, keep_lines, out);
	out[n] = '\0';
	return out;
}

bool els_termsafe_clean(const char *s, size_t len, bool keep_lines)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t l = utf8_decode(u + i, len - i, &cp);

		if (!l || cp == 0x1b || is_control(cp, keep_lines))
			return false;
		i += l;
	}
	return true;
}
