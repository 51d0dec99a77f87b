/* Longest-prefix-match table: small exact cases, then a million random prefixes checked
 * against an independent reference (a hash of every stored prefix, probed at each length). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "els/addr.h"
#include "els/lpm.h"

struct walk_acc {
	char out[512];
	int stop_after;
	int seen;
};

static int walk_cb(const struct els_cidr *c, uint32_t value, void *arg);

static struct els_cidr C(const char *text) {
	struct els_cidr c;
	const char *why = NULL;
	int rc = els_cidr_parse(text, &c, &why);
	cr_assert_eq(rc, 0, "bad test cidr %s: %s", text, why ? why : "");
	return c;
}

/* Looks up a bare address given as text. */
static uint32_t
L(const struct els_lpm *t, const char *addr, unsigned *plen)
{
	struct els_cidr c = C(addr);
	return els_lpm_lookup(t, c.family, &c.addr, plen);
}

Test(lpm, empty_table)
{
	struct els_lpm *t = els_lpm_new();
	unsigned plen = 99;
	cr_assert_eq(L(t, "10.0.0.1", &plen), ELS_LPM_NONE);
	cr_assert_eq(plen, 0);
	cr_assert_eq(L(t, "2001:db8::1", NULL), ELS_LPM_NONE);
	cr_assert_eq(els_lpm_count(t), 0);
	struct els_cidr c = C("10.0.0.0/8");
	cr_assert_eq(els_lpm_remove(t, &c), 0);
	cr_assert_eq(els_lpm_get(t, &c), ELS_LPM_NONE);
	els_lpm_free(t);
}

Test(lpm, exact_and_longest)
{
	struct els_lpm *t = els_lpm_new();
	struct els_cidr a = C("10.0.0.0/8"), b = C("10.1.0.0/16"), c = C("10.1.2.0/24"),
			d = C("10.1.2.3");
	cr_assert_eq(els_lpm_insert(t, &b, 2), 1);
	cr_assert_eq(els_lpm_insert(t, &d, 4), 1);
	cr_assert_eq(els_lpm_insert(t, &a, 1), 1);
	cr_assert_eq(els_lpm_insert(t, &c, 3), 1);
	cr_assert_eq(els_lpm_count(t), 4);

	unsigned plen;
	cr_assert_eq(L(t, "10.1.2.3", &plen), 4);
	cr_assert_eq(plen, 32);
	cr_assert_eq(L(t, "10.1.2.4", &plen), 3);
	cr_assert_eq(plen, 24);
	cr_assert_eq(L(t, "10.1.3.4", &plen), 2);
	cr_assert_eq(plen, 16);
	cr_assert_eq(L(t, "10.2.3.4", &plen), 1);
	cr_assert_eq(plen, 8);
	cr_assert_eq(L(t, "11.0.0.0", &plen), ELS_LPM_NONE);
	cr_assert_eq(L(t, "9.255.255.255", NULL), ELS_LPM_NONE);

	/* Re-inserting replaces the value and reports it was there. */
	cr_assert_eq(els_lpm_insert(t, &c, 33), 0);
	cr_assert_eq(els_lpm_count(t), 4);
	cr_assert_eq(L(t, "10.1.2.200", NULL), 33);
	cr_assert_eq(els_lpm_get(t, &c), 33);
	struct els_cidr e = C("10.1.2.0/23");
	cr_assert_eq(els_lpm_get(t, &e), ELS_LPM_NONE);
	els_lpm_free(t);
}

Test(lpm, siblings_need_glue)
{
	/* Two prefixes with no stored prefix covering both: the trie needs a branch node. */
	struct els_lpm *t = els_lpm_new();
	struct els_cidr a = C("192.168.1.0/24"), b = C("192.168.2.0/24"), c = C("192.168.0.0/16");
	cr_assert_eq(els_lpm_insert(t, &a, 1), 1);
	cr_assert_eq(els_lpm_insert(t, &b, 2), 1);
	cr_assert_eq(L(t, "192.168.1.9", NULL), 1);
	cr_assert_eq(L(t, "192.168.2.9", NULL), 2);
	cr_assert_eq(L(t, "192.168.3.9", NULL), ELS_LPM_NONE);
	/* A prefix that lands exactly on the branch point. */
	struct els_cidr g = C("192.168.0.0/22");
	cr_assert_eq(els_lpm_insert(t, &g, 7), 1);
	cr_assert_eq(L(t, "192.168.3.9", NULL), 7);
	cr_assert_eq(els_lpm_insert(t, &c, 3), 1);
	cr_assert_eq(L(t, "192.168.4.9", NULL), 3);
	cr_assert_eq(els_lpm_remove(t, &g), 1);
	cr_assert_eq(L(t, "192.168.3.9", NULL), 3);
	cr_assert_eq(L(t, "192.168.1.9", NULL), 1);
	cr_assert_eq(L(t, "192.168.2.9", NULL), 2);
	cr_assert_eq(els_lpm_remove(t, &a), 1);
	cr_assert_eq(L(t, "192.168.1.9", NULL), 3);
	cr_assert_eq(els_lpm_remove(t, &c), 1);
	cr_assert_eq(L(t, "192.168.1.9", NULL), ELS_LPM_NONE);
	cr_assert_eq(L(t, "192.168.2.9", NULL), 2);
	cr_assert_eq(els_lpm_count(t), 1);
	els_lpm_free(t);
}

Test(lpm, remove_branching_prefix_then_reinsert)
{
	/* A removed prefix that still separates two others stays behind as a branch point; the
	 * table must neither match it nor lose it when it comes back. */
	struct els_lpm *t = els_lpm_new();
	struct els_cidr top = C("2001:db8::/32"), l = C("2001:db8::/48"),
			r = C("2001:db8:8000::/33");
	cr_assert_eq(els_lpm_insert(t, &top, 1), 1);
	cr_assert_eq(els_lpm_insert(t, &l, 2), 1);
	cr_assert_eq(els_lpm_insert(t, &r, 3), 1);
	cr_assert_eq(els_lpm_remove(t, &top), 1);
	cr_assert_eq(els_lpm_count(t), 2);
	cr_assert_eq(els_lpm_get(t, &top), ELS_LPM_NONE);
	cr_assert_eq(L(t, "2001:db8:1::1", NULL), ELS_LPM_NONE);
	cr_assert_eq(L(t, "2001:db8::1", NULL), 2);
	cr_assert_eq(L(t, "2001:db8:8000::1", NULL), 3);
	struct walk_acc w = {.stop_after = -1};
	cr_assert_eq(els_lpm_walk(t, walk_cb, &w), 0);
	cr_assert_str_eq(w.out, "2001:db8::/48=2 2001:db8:8000::/33=3 ");
	cr_assert_eq(els_lpm_remove(t, &top), 0);
	cr_assert_eq(els_lpm_insert(t, &top, 11), 1, "re-adding a removed prefix adds it");
	cr_assert_eq(els_lpm_count(t), 3);
	cr_assert_eq(L(t, "2001:db8:1::1", NULL), 11);
	/* Remove it again, then a child: the branch point goes with it. */
	cr_assert_eq(els_lpm_remove(t, &top), 1);
	cr_assert_eq(els_lpm_remove(t, &l), 1);
	cr_assert_eq(L(t, "2001:db8::1", NULL), ELS_LPM_NONE);
	cr_assert_eq(L(t, "2001:db8:8000::1", NULL), 3);
	cr_assert_eq(els_lpm_count(t), 1);
	/* Trimming keeps the table working and growable. */
	els_lpm_trim(t);
	cr_assert_eq(els_lpm_insert(t, &l, 4), 1);
	cr_assert_eq(L(t, "2001:db8::1", NULL), 4);
	cr_assert_eq(L(t, "2001:db8:8000::1", NULL), 3);
	els_lpm_free(t);
}

Test(lpm, default_routes_and_host_routes)
{
	struct els_lpm *t = els_lpm_new();
	struct els_cidr z4 = C("0.0.0.0/0"), z6 = C("::/0"), h4 = C("255.255.255.255/32"),
			h6 = C("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), l6 = C("::/128");
	cr_assert_eq(els_lpm_insert(t, &z4, 40), 1);
	cr_assert_eq(L(t, "1.2.3.4", NULL), 40);
	cr_assert_eq(L(t, "2001:db8::1", NULL), ELS_LPM_NONE, "v4 /0 must not cover IPv6");
	cr_assert_eq(els_lpm_insert(t, &z6, 60), 1);
	cr_assert_eq(els_lpm_insert(t, &h4, 32), 1);
	cr_assert_eq(els_lpm_insert(t, &h6, 128), 1);
	cr_assert_eq(els_lpm_insert(t, &l6, 1280), 1);
	unsigned plen;
	cr_assert_eq(L(t, "255.255.255.255", &plen), 32);
	cr_assert_eq(plen, 32);
	cr_assert_eq(L(t, "255.255.255.254", &plen), 40);
	cr_assert_eq(plen, 0);
	cr_assert_eq(L(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &plen), 128);
	cr_assert_eq(plen, 128);
	cr_assert_eq(L(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", NULL), 60);
	cr_assert_eq(L(t, "::", NULL), 1280);
	cr_assert_eq(L(t, "::1", NULL), 60);
	cr_assert_eq(els_lpm_remove(t, &z4), 1);
	cr_assert_eq(els_lpm_remove(t, &z4), 0);
	cr_assert_eq(L(t, "1.2.3.4", NULL), ELS_LPM_NONE);
	cr_assert_eq(L(t, "255.255.255.255", NULL), 32);
	cr_assert_eq(els_lpm_count(t), 4);
	els_lpm_free(t);
}

Test(lpm, families_are_separate)
{
	/* 10.0.0.0/8 and 0a00::/8 have the same leading bits. */
	struct els_lpm *t = els_lpm_new();
	struct els_cidr v4 = C("10.0.0.0/8"), v6 = C("a00::/8");
	cr_assert_eq(els_lpm_insert(t, &v4, 4), 1);
	cr_assert_eq(L(t, "a00::1", NULL), ELS_LPM_NONE);
	cr_assert_eq(els_lpm_insert(t, &v6, 6), 1);
	cr_assert_eq(L(t, "10.9.9.9", NULL), 4);
	cr_assert_eq(L(t, "a00::1", NULL), 6);
	cr_assert_eq(els_lpm_remove(t, &v6), 1);
	cr_assert_eq(L(t, "10.9.9.9", NULL), 4);
	/* An unknown family matches nothing and is refused. */
	struct els_addr zero = {{0}};
	cr_assert_eq(els_lpm_lookup(t, 0, &zero, NULL), ELS_LPM_NONE);
	struct els_cidr bad = v4;
	bad.family = 0;
	cr_assert_lt(els_lpm_insert(t, &bad, 1), 0);
	cr_assert_eq(els_lpm_remove(t, &bad), 0);
	els_lpm_free(t);
}

Test(lpm, host_bits_ignored_on_insert)
{
	struct els_lpm *t = els_lpm_new();
	struct els_cidr c = C("10.0.0.0/8");
	c.addr.b[3] = 7; /* a caller that did not clear host bits */
	cr_assert_eq(els_lpm_insert(t, &c, 1), 1);
	cr_assert_eq(L(t, "10.200.0.1", NULL), 1);
	struct els_cidr clean = C("10.0.0.0/8");
	cr_assert_eq(els_lpm_get(t, &clean), 1);
	els_lpm_free(t);
}

static int walk_cb(const struct els_cidr *c, uint32_t value, void *arg)
{
	struct walk_acc *w = arg;
	char buf[ELS_ADDR_STRLEN];
	size_t len = strlen(w->out);
	snprintf(w->out + len, sizeof(w->out) - len, "%s/%u=%u ",
		 els_addr_str(&c->addr, c->family, buf), c->plen, value);
	return ++w->seen == w->stop_after ? 42 : 0;
}

Test(lpm, walk_in_address_order)
{
	struct els_lpm *t = els_lpm_new();
	const char *in[] = {"2001:db8::/32", "10.1.0.0/16", "10.0.0.0/8",  "9.0.0.0/8",
			    "10.0.0.0/16",   "::/0",	    "10.128.0.0/9"};
	for (unsigned i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct els_cidr c = C(in[i]);
		cr_assert_eq(els_lpm_insert(t, &c, i), 1);
	}
	struct walk_acc w = {.stop_after = -1};
	cr_assert_eq(els_lpm_walk(t, walk_cb, &w), 0);
	cr_assert_str_eq(w.out, "9.0.0.0/8=3 10.0.0.0/8=2 10.0.0.0/16=4 10.1.0.0/16=1 "
				"10.128.0.0/9=6 ::/0=5 2001:db8::/32=0 ");
	struct walk_acc w2 = {.stop_after = 2};
	cr_assert_eq(els_lpm_walk(t, walk_cb, &w2), 42);
	cr_assert_str_eq(w2.out, "9.0.0.0/8=3 10.0.0.0/8=2 ");
	els_lpm_free(t);
}

/* ---- a million random prefixes against a reference ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic across runs */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void mask(struct els_addr *a, unsigned plen, unsigned bits)
{
	for (unsigned i = plen; i < bits; i++)
		a->b[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
}

static void random_cidr(struct els_cidr *c)
{
	memset(c, 0, sizeof(*c));
	uint64_t r = rnd();
	if (r & 1) {
		c->family = ELS_AF_INET;
		c->plen = (uint8_t)(8 + (r >> 8) % 25); /* 8..32 */
		uint32_t v = (uint32_t)rnd();
		memcpy(c->addr.b, &v, 4);
		mask(&c->addr, c->plen, 32);
	} else {
		c->family = ELS_AF_INET6;
		c->plen = (uint8_t)(16 + (r >> 8) % 113); /* 16..128 */
		uint64_t hi = rnd(), lo = rnd();
		memcpy(c->addr.b, &hi, 8);
		memcpy(c->addr.b + 8, &lo, 8);
		/* Mostly inside 2000::/3 so that prefixes nest and share paths, as real lists do.
		 */
		c->addr.b[0] = (uint8_t)(0x20 | (c->addr.b[0] & 0x01));
		mask(&c->addr, c->plen, 128);
	}
}

/* Reference: open addressing on (family, plen, key); the latest value wins, like the table. */
struct ref_slot {
	struct els_cidr c;
	uint32_t value;
	uint8_t used, removed;
};

struct ref {
	struct ref_slot *s;
	size_t mask;
};

static size_t ref_hash(const struct els_cidr *c)
{
	uint64_t h = 1469598103934665603ull;
	for (unsigned i = 0; i < 16; i++)
		h = (h ^ c->addr.b[i]) * 1099511628211ull;
	h = (h ^ c->plen) * 1099511628211ull;
	h = (h ^ c->family) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
}

static struct ref_slot *ref_find(struct ref *r, const struct els_cidr *c, bool create)
{
	for (size_t i = ref_hash(c) & r->mask;; i = (i + 1) & r->mask) {
		struct ref_slot *s = &r->s[i];
		if (!s->used) {
			if (!create)
				return NULL;
			s->used = 1;
			s->c = *c;
			return s;
		}
		if (s->c.family == c->family && s->c.plen == c->plen &&
		    memcmp(s->c.addr.b, c->addr.b, 16) == 0)
			return s;
	}
}

static uint32_t ref_lookup(struct ref *r, unsigned family, const struct els_addr *a, unsigned *plen)
{
	unsigned bits = family == ELS_AF_INET ? 32 : 128;
	struct els_cidr c;
	memset(&c, 0, sizeof(c));
	c.family = (uint8_t)family;
	c.addr = *a;
	for (int l = (int)bits; l >= 0; l--) {
		/* Clear one more host bit per step: c holds a's first l bits. */
		if (l < (int)bits)
			c.addr.b[l / 8] &= (uint8_t) ~(0x80u >> (l % 8));
		c.plen = (uint8_t)l;
		struct ref_slot *s = ref_find(r, &c, false);
		if (s && !s->removed) {
			*plen = (unsigned)l;
			return s->value;
		}
	}
	*plen = 0;
	return ELS_LPM_NONE;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Checks n lookups: half at random addresses, half inside stored prefixes so that long
 * matches are exercised too. */
static void check_sample(struct els_lpm *t, struct ref *r, const struct els_cidr *all, size_t nall,
			 unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct els_addr a;
		unsigned family;
		if (i & 1) {
			const struct els_cidr *c = &all[rnd() % nall];
			a = c->addr;
			family = c->family;
			unsigned bits = family == ELS_AF_INET ? 32 : 128;
			for (unsigned b = c->plen; b < bits; b++)
				if (rnd() & 1)
					a.b[b / 8] |= (uint8_t)(0x80u >> (b % 8));
		} else {
			struct els_cidr c;
			random_cidr(&c);
			a = c.addr;
			family = c.family;
			if (family == ELS_AF_INET)
				memset(a.b + 4, 0, 12);
		}
		unsigned got_len = 0, want_len = 0;
		uint32_t got = els_lpm_lookup(t, family, &a, &got_len);
		uint32_t want = ref_lookup(r, family, &a, &want_len);
		char buf[ELS_ADDR_STRLEN];
		cr_assert_eq(got, want, "lookup %s: got %u/%u want %u/%u",
			     els_addr_str(&a, family, buf), got, got_len, want, want_len);
		cr_assert_eq(got_len, want_len);
	}
}

Test(lpm, million_random_prefixes, .timeout = 60)
{
	const size_t n = 1000000;
	struct els_cidr *all = malloc(n * sizeof(*all));
	struct ref r = {.mask = (1u << 21) - 1};
	r.s = calloc(r.mask + 1, sizeof(*r.s));
	cr_assert(all && r.s);
	for (size_t i = 0; i < n; i++)
		random_cidr(&all[i]);

	struct els_lpm *t = els_lpm_new();
	double t0 = now_s();
	size_t added = 0;
	for (size_t i = 0; i < n; i++) {
		int rc = els_lpm_insert(t, &all[i], (uint32_t)i);
		cr_assert_geq(rc, 0);
		added += (size_t)rc;
	}
	double t1 = now_s();

	for (size_t i = 0; i < n; i++) {
		struct ref_slot *s = ref_find(&r, &all[i], true);
		s->value = (uint32_t)i;
	}
	size_t distinct = 0;
	for (size_t i = 0; i <= r.mask; i++)
		distinct += r.s[i].used;
	cr_assert_eq(els_lpm_count(t), distinct);
	cr_assert_eq(added, distinct);

	els_lpm_trim(t);
	size_t bytes = els_lpm_bytes(t);
	printf("lpm: %zu prefixes (%zu distinct) loaded in %.3f s, %zu bytes held, %.1f "
	       "bytes/prefix\n",
	       n, distinct, t1 - t0, bytes, (double)bytes / (double)distinct);
	/* Loose bound: a regression to pointer-per-node layouts would blow well past it. */
	cr_assert_lt(bytes / distinct, 64);

	check_sample(t, &r, all, n, 20000);

	/* Remove every other prefix and check again: exercises glue conversion and splicing. */
	size_t removed = 0;
	for (size_t i = 0; i < n; i += 2) {
		struct ref_slot *s = ref_find(&r, &all[i], false);
		int rc = els_lpm_remove(t, &all[i]);
		cr_assert_eq(rc, s->removed ? 0 : 1);
		if (!s->removed) {
			s->removed = 1;
			removed++;
		}
	}
	cr_assert_eq(els_lpm_count(t), distinct - removed);
	check_sample(t, &r, all, n, 20000);

	els_lpm_free(t);
	free(r.s);
	free(all);
}

/* Fills a family past the size at which the table adds its direct first-level table (256
 * prefixes), with host routes away from the prefixes under test. */
static void add_fillers(struct els_lpm *t, unsigned family, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char text[64];
		if (family == ELS_AF_INET)
			snprintf(text, sizeof(text), "198.51.%u.%u", 100 + i / 256, i % 256);
		else
			snprintf(text, sizeof(text), "fd00::%x", i);
		struct els_cidr c = C(text);
		cr_assert_eq(els_lpm_insert(t, &c, 100000 + i), 1);
	}
}

static void expect(const struct els_lpm *t, const char *addr, uint32_t value, unsigned plen)
{
	unsigned got_len = 99;
	uint32_t got = L(t, addr, &got_len);
	cr_assert_eq(got, value, "%s: got %u, want %u", addr, got, value);
	cr_assert_eq(got_len, plen, "%s: got /%u, want /%u", addr, got_len, plen);
}

static void put(struct els_lpm *t, const char *text, uint32_t value)
{
	struct els_cidr c = C(text);
	cr_assert_eq(els_lpm_insert(t, &c, value), 1, "insert %s", text);
}

static void del(struct els_lpm *t, const char *text)
{
	struct els_cidr c = C(text);
	cr_assert_eq(els_lpm_remove(t, &c), 1, "remove %s", text);
}

/* The direct table takes the first 16 bits: prefixes shorter than that are spread over many
 * of its slots, and removing one must take it out of every slot again. */
Test(lpm, direct_table_v4_edges)
{
	struct els_lpm *t = els_lpm_new();
	add_fillers(t, ELS_AF_INET, 256);
	size_t small = els_lpm_bytes(t);
	cr_assert_lt(small, 65536, "no direct table for 256 prefixes");
	add_fillers(t, ELS_AF_INET6, 0);
	put(t, "198.51.200.0/24", 999); /* the 257th */
	cr_assert_geq(els_lpm_bytes(t), small + 65536 * 8, "direct table past 256 prefixes");

	put(t, "0.0.0.0/0", 1);
	put(t, "10.0.0.0/8", 2);  /* 256 slots */
	put(t, "10.1.0.0/16", 3); /* exactly one slot */
	put(t, "10.1.2.0/24", 4); /* below a slot */
	put(t, "10.1.2.3/32", 5);
	put(t, "10.0.0.0/15", 6); /* one bit short of the stride */
	put(t, "10.2.0.0/17", 7); /* one bit past it */
	expect(t, "10.1.2.3", 5, 32);
	expect(t, "10.1.2.4", 4, 24);
	expect(t, "10.1.3.1", 3, 16);
	expect(t, "10.0.5.5", 6, 15);
	expect(t, "10.2.0.1", 7, 17);
	expect(t, "10.2.128.1", 2, 8);
	expect(t, "10.255.255.255", 2, 8);
	expect(t, "11.0.0.0", 1, 0);
	expect(t, "198.51.100.5", 100005, 32);
	expect(t, "198.51.100.255", 100255, 32);
	expect(t, "198.51.101.0", 1, 0);
	expect(t, "198.51.200.77", 999, 24);

	del(t, "10.0.0.0/8");
	expect(t, "10.2.128.1", 1, 0);
	expect(t, "10.255.0.1", 1, 0);
	expect(t, "10.2.0.1", 7, 17);
	expect(t, "10.1.2.4", 4, 24);
	del(t, "0.0.0.0/0");
	expect(t, "10.255.0.1", ELS_LPM_NONE, 0);
	expect(t, "11.0.0.0", ELS_LPM_NONE, 0);
	expect(t, "10.0.5.5", 6, 15);
	del(t, "10.0.0.0/15");
	expect(t, "10.0.5.5", ELS_LPM_NONE, 0);
	expect(t, "10.1.3.1", 3, 16);
	put(t, "10.0.0.0/8", 8);
	expect(t, "10.255.0.1", 8, 8);
	expect(t, "10.0.5.5", 8, 8);
	/* A stride-long prefix with a longer one below: it stays to branch, empty. */
	del(t, "10.1.0.0/16");
	expect(t, "10.1.3.1", 8, 8);
	expect(t, "10.1.2.3", 5, 32);
	del(t, "10.1.2.0/24");
	expect(t, "10.1.2.4", 8, 8);
	expect(t, "10.1.2.3", 5, 32);
	/* Back under the threshold, trim drops the direct table; lookups do not notice. */
	for (unsigned i = 0; i < 200; i++) {
		char text[32];
		snprintf(text, sizeof(text), "198.51.100.%u", i);
		del(t, text);
	}
	els_lpm_trim(t);
	cr_assert_lt(els_lpm_bytes(t), 65536);
	expect(t, "10.1.2.3", 5, 32);
	expect(t, "10.200.0.1", 8, 8);
	expect(t, "198.51.100.5", ELS_LPM_NONE, 0);
	expect(t, "198.51.100.205", 100205, 32);
	els_lpm_free(t);
}

Test(lpm, direct_table_v6_edges)
{
	struct els_lpm *t = els_lpm_new();
	add_fillers(t, ELS_AF_INET6, 300);
	add_fillers(t, ELS_AF_INET, 10); /* IPv4 stays small: its own table is not needed */
	cr_assert_geq(els_lpm_bytes(t), 65536 * 8);
	cr_assert_lt(els_lpm_bytes(t), 65536 * 8 * 2);

	put(t, "::/0", 1);
	put(t, "2000::/3", 2);
	put(t, "2001::/16", 3);
	put(t, "2001:db8::/32", 4);
	put(t, "2001:db8::1/128", 5);
	put(t, "2001:8000::/17", 6);
	expect(t, "2001:db8::1", 5, 128);
	expect(t, "2001:db8::2", 4, 32);
	expect(t, "2001:dead::1", 6, 17);
	expect(t, "2001:1::1", 3, 16);
	expect(t, "2002::1", 2, 3);
	expect(t, "3fff:ffff::1", 2, 3);
	expect(t, "4000::1", 1, 0);
	expect(t, "fd00::5", 100005, 128);
	expect(t, "fd00::1:0", 1, 0);
	expect(t, "10.0.0.1", ELS_LPM_NONE, 0); /* the v6 /0 covers no IPv4 */
	expect(t, "198.51.100.9", 100009, 32);

	del(t, "2000::/3");
	expect(t, "2002::1", 1, 0);
	expect(t, "2001:1::1", 3, 16);
	del(t, "::/0");
	expect(t, "2002::1", ELS_LPM_NONE, 0);
	expect(t, "fd00::1:0", ELS_LPM_NONE, 0);
	del(t, "2001::/16");
	expect(t, "2001:1::1", ELS_LPM_NONE, 0);
	expect(t, "2001:db8::2", 4, 32);
	expect(t, "2001:dead::1", 6, 17);
	put(t, "2000::/15", 7);
	expect(t, "2001:1::1", 7, 15);
	expect(t, "2000:1::1", 7, 15);
	expect(t, "2001:db8::1", 5, 128);
	els_lpm_free(t);
}

/* Random nested prefixes in a few /8s, the count rising past the threshold and falling back
 * under it, with every lookup checked against a scan of all stored prefixes. */
Test(lpm, direct_table_churn_against_scan)
{
	enum { MAXN = 2048 };
	static struct els_cidr set[MAXN];
	static uint32_t val[MAXN];
	unsigned n = 0;
	bool big = false, small_again = false;
	struct els_lpm *t = els_lpm_new();

	for (unsigned op = 0; op < 12000; op++) {
		bool growing = (op / 3000) % 2 == 0;
		struct els_cidr c;
		memset(&c, 0, sizeof(c));
		uint64_t r = rnd();
		c.family = r & 1 ? ELS_AF_INET : ELS_AF_INET6;
		unsigned bits = c.family == ELS_AF_INET ? 32 : 128;
		c.plen = (uint8_t)((r >> 8) % (bits + 1));
		uint64_t k = rnd();
		c.addr.b[0] = (uint8_t)(10 + (k & 1));
		c.addr.b[1] = (uint8_t)((k >> 1) & 3);
		c.addr.b[2] = (uint8_t)(k >> 8);
		c.addr.b[3] = (uint8_t)(k >> 16);
		if (c.family == ELS_AF_INET6)
			c.addr.b[15] = (uint8_t)(k >> 24);
		mask(&c.addr, c.plen, bits);
		if (!growing && n && (r >> 24) % 8 != 0)
			c = set[rnd() % n]; /* random keys would seldom be there to remove */
		int at = -1;
		for (unsigned i = 0; i < n; i++)
			if (set[i].family == c.family && set[i].plen == c.plen &&
			    memcmp(set[i].addr.b, c.addr.b, 16) == 0)
				at = (int)i;
		if (((r >> 20) % 4 != 0) == growing) {
			if (at < 0 && n == MAXN)
				continue;
			cr_assert_eq(els_lpm_insert(t, &c, op), at < 0 ? 1 : 0);
			if (at < 0) {
				at = (int)n++;
				set[at] = c;
			}
			val[at] = op;
		} else {
			cr_assert_eq(els_lpm_remove(t, &c), at >= 0 ? 1 : 0);
			if (at >= 0) {
				set[at] = set[--n];
				val[at] = val[n];
			}
		}
		if (op % 1000 == 999) {
			els_lpm_trim(t);
			size_t bytes = els_lpm_bytes(t);
			big |= bytes >= 65536 * 8;
			small_again |= big && bytes < 65536;
		}
		if (op % 50 != 0)
			continue;
		cr_assert_eq(els_lpm_count(t), n);
		for (unsigned q = 0; q < 64; q++) {
			struct els_addr a;
			unsigned fam = q & 1 ? ELS_AF_INET : ELS_AF_INET6;
			memset(&a, 0, sizeof(a));
			if (n && q % 4 < 2) { /* inside a stored prefix, host bits random */
				const struct els_cidr *s = &set[rnd() % n];
				fam = s->family;
				a = s->addr;
				for (unsigned b = s->plen; b < (fam == ELS_AF_INET ? 32u : 128u);
				     b++)
					if (rnd() & 1)
						a.b[b / 8] |= (uint8_t)(0x80u >> (b % 8));
			} else {
				uint64_t x = rnd();
				memcpy(a.b, &x, sizeof(x));
				a.b[0] = (uint8_t)(9 + a.b[0] % 4);
				a.b[1] &= 3;
			}
			if (fam == ELS_AF_INET)
				memset(a.b + 4, 0, 12);
			uint32_t want = ELS_LPM_NONE;
			int want_len = -1;
			for (unsigned i = 0; i < n; i++)
				if (els_cidr_contains(&set[i], fam, &a) && set[i].plen > want_len) {
					want_len = set[i].plen;
					want = val[i];
				}
			unsigned got_len;
			uint32_t got = els_lpm_lookup(t, fam, &a, &got_len);
			char buf[ELS_ADDR_STRLEN];
			cr_assert_eq(got, want, "op %u, %u prefixes, %s: got %u want %u", op, n,
				     els_addr_str(&a, fam, buf), got, want);
			cr_assert_eq(got_len, want_len < 0 ? 0u : (unsigned)want_len);
		}
	}
	cr_assert(big && small_again, "the direct table came and went");
	els_lpm_free(t);
}
