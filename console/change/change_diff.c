/* Policy diff for change control: what a proposal changes against its parent, as a unified
 * diff a reviewer reads before approving. Longest common subsequence over lines; a middle part
 * too large for the table is shown as removed and added whole (still a correct diff). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"

#define DIFF_CONTEXT   3
#define DIFF_MAX_CELLS (4u << 20) /* LCS table entries: 16 MiB at most */

struct lines {
	const char **p;
	size_t *len;
	size_t n;
};

static int split(const char *s, struct lines *l)
{
	size_t cap = 16;

	l->n = 0;
	l->p = malloc(cap * sizeof(*l->p));
	l->len = malloc(cap * sizeof(*l->len));
	if (!l->p || !l->len)
		return -ENOMEM;
	while (s && *s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		if (l->n == cap) {
			cap *= 2;
			const char **p = realloc(l->p, cap * sizeof(*p));
			if (p)
				l->p = p;
			size_t *ln = realloc(l->len, cap * sizeof(*ln));
			if (ln)
				l->len = ln;
			if (!p || !ln)
				return -ENOMEM;
		}
		l->p[l->n] = s;
		l->len[l->n++] = len;
		s += len + (nl ? 1 : 0);
	}
	return 0;
}

static bool same(const struct lines *a, size_t i, const struct lines *b, size_t j)
{
	return a->len[i] == b->len[j] && memcmp(a->p[i], b->p[j], a->len[i]) == 0;
}

struct op {
	char kind;     /* ' ', '-', '+' */
	size_t ai, bi; /* line index in a (for ' ' and '-') and b (for ' ' and '+') */
};

/* The edit script of a against b in ops (capacity a->n + b->n). Returns its length, or -1. */
static long script(const struct lines *a, const struct lines *b, struct op *ops)
{
	size_t pre = 0, suf = 0, n = 0;

	while (pre < a->n && pre < b->n && same(a, pre, b, pre))
		pre++;
	while (suf < a->n - pre && suf < b->n - pre && same(a, a->n - 1 - suf, b, b->n - 1 - suf))
		suf++;
	size_t na = a->n - pre - suf, nb = b->n - pre - suf;
	for (size_t i = 0; i < pre; i++)
		ops[n++] = (struct op){' ', i, i};
	if ((unsigned long long)(na + 1) * (nb + 1) <= DIFF_MAX_CELLS) {
		uint32_t *t = calloc((na + 1) * (nb + 1), sizeof(*t));
		if (!t)
			return -1;
#define T(i, j) t[(i) * (nb + 1) + (j)]
		for (size_t i = na; i-- > 0;)
			for (size_t j = nb; j-- > 0;)
				T(i, j) =
				    same(a, pre + i, b, pre + j)
					? T(i + 1, j + 1) + 1
					: (T(i + 1, j) >= T(i, j + 1) ? T(i + 1, j) : T(i, j + 1));
		size_t i = 0, j = 0;
		while (i < na || j < nb) {
			if (i < na && j < nb && same(a, pre + i, b, pre + j)) {
				ops[n++] = (struct op){' ', pre + i++, pre + j++};
			} else if (i < na && (j == nb || T(i + 1, j) >= T(i, j + 1))) {
				/* removals before additions, as diff -u shows a change */
				ops[n++] = (struct op){'-', pre + i++, pre + j};
			} else {
				ops[n++] = (struct op){'+', pre + i, pre + j++};
			}
		}
#undef T
		free(t);
	} else {
		for (size_t i = 0; i < na; i++)
			ops[n++] = (struct op){'-', pre + i, pre};
		for (size_t j = 0; j < nb; j++)
			ops[n++] = (struct op){'+', pre + na, pre + j};
	}
	for (size_t i = 0; i < suf; i++)
		ops[n++] = (struct op){' ', a->n - suf + i, b->n - suf + i};
	return (long)n;
}

static void print_hunk(FILE *f, const struct lines *a, const struct lines *b, const struct op *ops,
		       size_t from, size_t to)
{
	size_t as = 0, ac = 0, bs = 0, bc = 0;
	bool afirst = true, bfirst = true;

	for (size_t k = from; k < to; k++) {
		if (ops[k].kind != '+') {
			if (afirst)
				as = ops[k].ai + 1;
			afirst = false;
			ac++;
		}
		if (ops[k].kind != '-') {
			if (bfirst)
				bs = ops[k].bi + 1;
			bfirst = false;
			bc++;
		}
	}
	if (afirst)
		as = ops[from].ai; /* an empty side names the line before, as diff -u does */
	if (bfirst)
		bs = ops[from].bi;
	/* as diff -u: a count of 1 is left out */
	fprintf(f, "@@ -%zu", as);
	if (ac != 1)
		fprintf(f, ",%zu", ac);
	fprintf(f, " +%zu", bs);
	if (bc != 1)
		fprintf(f, ",%zu", bc);
	fputs(" @@\n", f);
	for (size_t k = from; k < to; k++) {
		const struct lines *l = ops[k].kind == '+' ? b : a;
		size_t i = ops[k].kind == '+' ? ops[k].bi : ops[k].ai;
		fprintf(f, "%c%.*s\n", ops[k].kind, (int)l->len[i], l->p[i]);
	}
}

int change_diff(const char *a, const char *name_a, const char *b, const char *name_b, char **out)
{
	struct lines la = {0}, lb = {0};
	struct op *ops = NULL;
	char *buf = NULL;
	size_t blen = 0;
	FILE *f = NULL;
	long n;
	int rc = -ENOMEM;

	*out = NULL;
	if (split(a, &la) < 0 || split(b, &lb) < 0)
		goto out;
	ops = malloc((la.n + lb.n + 1) * sizeof(*ops));
	if (!ops || (n = script(&la, &lb, ops)) < 0)
		goto out;
	f = open_memstream(&buf, &blen);
	if (!f)
		goto out;
	bool header = false;
	for (long k = 0; k < n;) {
		if (ops[k].kind == ' ') {
			k++;
			continue;
		}
		/* a hunk: from DIFF_CONTEXT before this change to DIFF_CONTEXT after the last
		 * change closer than 2 * DIFF_CONTEXT unchanged lines */
		long from = k - DIFF_CONTEXT < 0 ? 0 : k - DIFF_CONTEXT, end = k, same_run = 0;
		for (long j = k; j < n; j++) {
			if (ops[j].kind != ' ') {
				end = j;
				same_run = 0;
			} else if (++same_run > 2 * DIFF_CONTEXT) {
				break;
			}
		}
		long to = end + 1 + DIFF_CONTEXT > n ? n : end + 1 + DIFF_CONTEXT;
		if (!header)
			fprintf(f, "--- %s\n+++ %s\n", name_a, name_b);
		header = true;
		print_hunk(f, &la, &lb, ops, (size_t)from, (size_t)to);
		k = to;
	}
	if (fclose(f) == 0)
		rc = 0;
	f = NULL;
	*out = buf;
	buf = NULL;
out:
	if (f)
		fclose(f);
	free(buf);
	free(ops);
	free(la.p);
	free(la.len);
	free(lb.p);
	free(lb.len);
	return rc;
}
