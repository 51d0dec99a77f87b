/* The Prometheus text exposition format (version 0.0.4), written into a growing buffer: the
 * one place that knows its escaping rules. See agent/metrics.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

void els_mbuf_free(struct els_mbuf *b)
{
	free(b->p);
	*b = (struct els_mbuf){0};
}

static bool reserve(struct els_mbuf *b, size_t more)
{
	if (b->oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void append(struct els_mbuf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

void els_mbuf_printf(struct els_mbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	if (s[0] < 0x80)
		return 1;
	/* lead bytes: c2..df two, e0..ef three, f0..f4 four; the rest start nothing */
	size_t len = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
		     : s[0] >= 0xe0 && s[0] <= 0xef ? 3
		     : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
						    : 0;
	if (!len || len > n)
		return 0;
	uint32_t cp = len == 2 ? (s[0] & 0x1fu) : len == 3 ? (s[0] & 0x0fu) : (s[0] & 0x07u);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void els_mbuf_label_value(struct els_mbuf *b, const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t l;
		if (c == '\\') {
			append(b, "\\\\", 2);
			i++;
		} else if (c == '"') {
			append(b, "\\\"", 2);
			i++;
		} else if (c == '\n') {
			append(b, "\\n", 2);
			i++;
		} else if ((l = utf8_len((const unsigned char *)s + i, n - i)) != 0) {
			append(b, s + i, l);
			i += l;
		} else {
			append(b, "\xef\xbf\xbd", 3);
			i++;
		}
	}
}

void els_metric_family(struct els_mbuf *b, const char *name, const char *type, const char *help)
{
	els_mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_head(struct els_mbuf *b, const char *name, const char *const *labels)
{
	append(b, name, strlen(name));
	if (!labels || !labels[0])
		return;
	append(b, "{", 1);
	for (unsigned i = 0; labels[i] && labels[i + 1]; i += 2) {
		if (i)
			append(b, ",", 1);
		append(b, labels[i], strlen(labels[i])); /* keys are ours, never input */
		append(b, "=\"", 2);
		els_mbuf_label_value(b, labels[i + 1]);
		append(b, "\"", 1);
	}
	append(b, "}", 1);
}

void els_metric_u64(struct els_mbuf *b, const char *name, const char *const *labels, uint64_t v)
{
	sample_head(b, name, labels);
	els_mbuf_printf(b, " %llu\n", (unsigned long long)v);
}

void els_metric_f64(struct els_mbuf *b, const char *name, const char *const *labels, double v)
{
	sample_head(b, name, labels);
	els_mbuf_printf(b, " %.17g\n", v);
}
