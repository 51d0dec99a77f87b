/* Drives the LPM table with a byte-coded sequence of insert/remove/get/lookup operations and
 * checks every answer against a brute-force model (a flat array scanned in full).
 *
 * Each operation takes 6 bytes: op, prefix length, and 4 key bytes. op bits 0-1 pick the
 * operation, bit 2 the family; the value stored is the operation's index. IPv6 keys put the
 * 4 bytes at positions 0, 1, 8 and 15 so that short and long prefixes both collide often. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "els/lpm.h"

#define MAX_MODEL 4096

struct entry {
	struct els_cidr c;
	uint32_t value;
};

static struct entry model[MAX_MODEL];
static unsigned nmodel;

static void die(void)
{
	abort();
}

static int find(const struct els_cidr *c)
{
	for (unsigned i = 0; i < nmodel; i++)
		if (model[i].c.family == c->family && model[i].c.plen == c->plen &&
		    memcmp(model[i].c.addr.b, c->addr.b, 16) == 0)
			return (int)i;
	return -1;
}

static uint32_t model_lookup(unsigned family, const struct els_addr *a, unsigned *plen)
{
	uint32_t best = ELS_LPM_NONE;
	int best_len = -1;
	for (unsigned i = 0; i < nmodel; i++)
		if (els_cidr_contains(&model[i].c, family, a) && (int)model[i].c.plen > best_len) {
			best_len = model[i].c.plen;
			best = model[i].value;
		}
	*plen = best_len < 0 ? 0 : (unsigned)best_len;
	return best;
}

struct walk_state {
	unsigned n;
	struct els_cidr prev;
	int have_prev;
};

static int walk_check(const struct els_cidr *c, uint32_t value, void *arg)
{
	struct walk_state *w = arg;
	int i = find(c);
	if (i < 0 || model[i].value != value)
		die();
	if (w->have_prev) {
		/* Address order per family, IPv4 first; a prefix before the longer ones it
		 * covers. */
		int fam = (w->prev.family == ELS_AF_INET6) - (c->family == ELS_AF_INET6);
		int cmp = memcmp(w->prev.addr.b, c->addr.b, 16);
		if (fam > 0 || (fam == 0 && (cmp > 0 || (cmp == 0 && w->prev.plen >= c->plen))))
			die();
	}
	w->prev = *c;
	w->have_prev = 1;
	w->n++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct els_lpm *t = els_lpm_new();
	if (!t)
		return 0;
	nmodel = 0;
	for (size_t off = 0, idx = 0; off + 6 <= size; off += 6, idx++) {
		const uint8_t *d = data + off;
		struct els_cidr c;
		memset(&c, 0, sizeof(c));
		int v6 = (d[0] >> 2) & 1;
		c.family = v6 ? ELS_AF_INET6 : ELS_AF_INET;
		unsigned bits = v6 ? 128 : 32;
		c.plen = (uint8_t)(d[1] % (bits + 1));
		if (v6) {
			c.addr.b[0] = d[2];
			c.addr.b[1] = d[3];
			c.addr.b[8] = d[4];
			c.addr.b[15] = d[5];
		} else {
			memcpy(c.addr.b, d + 2, 4);
		}
		/* The address before masking is the lookup key. */
		struct els_addr a = c.addr;
		for (unsigned i = c.plen; i < bits; i++)
			c.addr.b[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));

		int at = find(&c);
		switch (d[0] & 3) {
		case 0: { /* insert */
			if (at < 0 && nmodel == MAX_MODEL)
				break;
			int rc = els_lpm_insert(t, &c, (uint32_t)idx);
			if (rc != (at < 0 ? 1 : 0))
				die();
			if (at < 0)
				model[at = (int)nmodel++].c = c;
			model[at].value = (uint32_t)idx;
			break;
		}
		case 1: { /* remove */
			int rc = els_lpm_remove(t, &c);
			if (rc != (at >= 0))
				die();
			if (at >= 0)
				model[at] = model[--nmodel];
			break;
		}
		case 2: /* exact get */
			if (els_lpm_get(t, &c) != (at >= 0 ? model[at].value : ELS_LPM_NONE))
				die();
			break;
		case 3: { /* longest match */
			unsigned got_len = 0, want_len = 0;
			uint32_t got = els_lpm_lookup(t, c.family, &a, &got_len);
			uint32_t want = model_lookup(c.family, &a, &want_len);
			if (got != want || got_len != want_len)
				die();
			break;
		}
		}
		if (els_lpm_count(t) != nmodel)
			die();
	}
	struct walk_state w = {0};
	if (els_lpm_walk(t, walk_check, &w) != 0 || w.n != nmodel)
		die();
	els_lpm_free(t);
	return 0;
}
