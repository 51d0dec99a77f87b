/* The policy checker's result format (see check_result.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_result.h"

static size_t put_clean(char *out, size_t room, const char *s)
{
	size_t j = 0;
	for (; *s && j < room && j < ELS_CHECK_MAX_MSG; s++)
		out[j++] = *s >= 0x20 && *s < 0x7f ? *s : '?';
	return j;
}

size_t els_check_result_format(char *buf, const struct els_policy *p, const struct els_diag *d)
{
	size_t n = 0, cap = ELS_CHECK_MAX_OUT;
	n += (size_t)snprintf(buf + n, cap - n, "els-check 1\n");
	if (p) {
		n += (size_t)snprintf(buf + n, cap - n, "ok %s", p->hash);
		for (unsigned i = 0; i < p->nlinks && n < cap; i++)
			n += (size_t)snprintf(buf + n, cap - n, " %s", p->links[i].h->name);
		n += (size_t)snprintf(buf + n, cap - n, "\n");
		return n < cap ? n : cap - 1;
	}
	for (unsigned i = 0; i < d->count && i < ELS_CHECK_MAX_MSGS; i++) {
		n += (size_t)snprintf(buf + n, cap - n, "msg ");
		n += put_clean(buf + n, cap - n - 2, d->msgs[i]);
		buf[n++] = '\n';
	}
	n += (size_t)snprintf(buf + n, cap - n, "fail %u\n", d->count ? d->count : 1);
	return n < cap ? n : cap - 1;
}

static bool is_hex64(const char *s, size_t n)
{
	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int els_check_result_parse(const char *buf, size_t len, struct els_check_result *r)
{
	size_t off = 0;
	bool header = false, done = false;

	memset(r, 0, sizeof(*r));
	if (len > ELS_CHECK_MAX_OUT)
		return -EINVAL;
	while (off < len) {
		const char *line = buf + off;
		const char *nl = memchr(line, '\n', len - off);
		if (!nl || done)
			return -EINVAL; /* every line ends in \n; nothing after ok/fail */
		size_t n = (size_t)(nl - line);
		off += n + 1;
		for (size_t i = 0; i < n; i++)
			if (line[i] < 0x20 || line[i] >= 0x7f)
				return -EINVAL;
		if (!header) {
			if (n != 11 || memcmp(line, "els-check 1", 11) != 0)
				return -EINVAL;
			header = true;
		} else if (n >= 4 && memcmp(line, "msg ", 4) == 0) {
			if (r->nmsgs == ELS_CHECK_MAX_MSGS || n - 4 > ELS_CHECK_MAX_MSG)
				return -EINVAL;
			memcpy(r->msgs[r->nmsgs], line + 4, n - 4);
			r->msgs[r->nmsgs++][n - 4] = 0;
		} else if (n >= 5 && memcmp(line, "fail ", 5) == 0) {
			char num[12];
			char *end;
			if (n - 5 == 0 || n - 5 >= sizeof(num))
				return -EINVAL;
			memcpy(num, line + 5, n - 5);
			num[n - 5] = 0;
			unsigned long v = strtoul(num, &end, 10);
			if (*end || num[0] < '0' || num[0] > '9' || v == 0 || v > 100000000ul ||
			    v < r->nmsgs)
				return -EINVAL;
			r->errors = (unsigned)v;
			done = true;
		} else if (n >= 3 && memcmp(line, "ok ", 3) == 0) {
			if (r->nmsgs || n < 3 + 64 || !is_hex64(line + 3, 64))
				return -EINVAL;
			memcpy(r->sha256, line + 3, 64);
			r->sha256[64] = 0;
			const char *p = line + 3 + 64, *e = line + n;
			while (p < e) {
				if (*p != ' ')
					return -EINVAL;
				p++;
				const char *w = p;
				while (p < e && *p != ' ')
					p++;
				size_t wl = (size_t)(p - w);
				if (!wl || wl >= sizeof(r->chain[0]) || r->nchain == ELS_CHAIN_MAX)
					return -EINVAL;
				memcpy(r->chain[r->nchain], w, wl);
				r->chain[r->nchain++][wl] = 0;
			}
			r->ok = true;
			done = true;
		} else {
			return -EINVAL;
		}
	}
	return done ? 0 : -EINVAL;
}
