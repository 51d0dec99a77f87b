/* Longest-prefix match (see include/els/lpm.h).
 *
 * One path-compressed binary trie per family. Two kinds of node live in two growable arrays
 * and refer to each other by 32-bit references, not pointers, to keep the table compact:
 *   - prefix nodes hold a stored prefix: children, value, length and key bytes (20 bytes for
 *     IPv4, 32 for IPv6);
 *   - glue nodes (12 bytes) only branch, where two stored prefixes part ways without a stored
 *     prefix covering both. Every glue node has exactly two children, so there are fewer glue
 *     nodes than prefix nodes.
 * Removing a prefix that still has two children leaves its node in place, marked empty: it
 * branches like glue (and keeps a valid key), so a remove never needs to allocate.
 * A node of length n has all its descendants agreeing on their first n bits; child[b] holds
 * those whose bit n is b. Lookups therefore follow the address's bits and only compare whole
 * keys at prefix nodes, where a mismatch also ends the walk (nothing below can match).
 *
 * A trie walk costs one dependent memory access per level, and the levels grow with the
 * number of prefixes (about 20 at a million). So once a family holds more than
 * ELS_LPM_DIR_MIN prefixes it also gets a direct table (the directory) indexed by the first
 * DIR_BITS bits of the address: a slot names the first node at or past bit DIR_BITS on its
 * path (where the walk resumes) and the longest stored prefix shorter than DIR_BITS covering
 * the whole slot (a /8 is thus spread over its 256 slots). A lookup then walks only the few
 * levels below DIR_BITS. Every insert and remove recomputes the block of slots whose path
 * went through the part of the trie it changed, so lookups are exact at all times. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "els/lpm.h"

/* A reference: 0 is "none"; bit 31 says glue; the rest indexes the node's array, whose slot 0
 * is never used so that 0 can mean none. */
#define REF_NIL	    0u
#define REF_GLUE    0x80000000u
#define REF_IDX(r)  ((r) & ~REF_GLUE)
#define REF_MAX_IDX (REF_GLUE - 1)

struct pnode {
	uint32_t child[2];
	uint32_t value;
	uint8_t plen;
	uint8_t empty; /* removed, kept for branching: two children, no value */
	uint8_t key[]; /* 4 or 16 bytes, bits past plen cleared */
};

struct gnode {
	uint32_t child[2];
	uint8_t plen;
};

/* The directory: 2^DIR_BITS slots of 8 bytes (512 KiB) per family that has one. 16 bits for
 * IPv6 too: 24 would cost 128 MiB, and IPv6 lists are short. */
#ifndef ELS_LPM_DIR_BITS /* both overridable so that a fuzzer reaches the directory quickly */
#define ELS_LPM_DIR_BITS 16
#endif
#ifndef ELS_LPM_DIR_MIN
#define ELS_LPM_DIR_MIN 256
#endif
#define DIR_BITS  ((unsigned)ELS_LPM_DIR_BITS)
#define DIR_SLOTS (1u << DIR_BITS)
_Static_assert(DIR_BITS >= 1 && DIR_BITS <= 24, "directory of 2 to 16M slots");

struct dslot {
	uint32_t next; /* first node at or past bit DIR_BITS on the slot's path, or REF_NIL */
	uint32_t best; /* prefix node: longest prefix shorter than DIR_BITS covering the slot */
};

struct lpm_fam {
	uint32_t root;
	unsigned keylen, maxbits;
	size_t stride;		     /* bytes per prefix node */
	uint8_t *pbuf;		     /* prefix nodes */
	uint32_t pcap, pused, pfree; /* slots allocated, high-water mark, free list head */
	struct gnode *gbuf;
	uint32_t gcap, gused, gfree;
	size_t count;	   /* stored prefixes (empty prefix nodes not included) */
	struct dslot *dir; /* NULL while the family is small (or its allocation failed) */
};

struct els_lpm {
	struct lpm_fam fam[2]; /* IPv4, IPv6 */
};

static struct lpm_fam *fam_of(struct els_lpm *t, unsigned family)
{
	if (family == ELS_AF_INET)
		return &t->fam[0];
	if (family == ELS_AF_INET6)
		return &t->fam[1];
	return NULL;
}

static const struct lpm_fam *cfam_of(const struct els_lpm *t, unsigned family)
{
	return fam_of((struct els_lpm *)t, family);
}

static struct pnode *pn(const struct lpm_fam *f, uint32_t ref)
{
	return (struct pnode *)(f->pbuf + (size_t)ref * f->stride);
}

static struct gnode *gn(const struct lpm_fam *f, uint32_t ref)
{
	return &f->gbuf[REF_IDX(ref)];
}

static uint32_t *children(const struct lpm_fam *f, uint32_t ref)
{
	return ref & REF_GLUE ? gn(f, ref)->child : pn(f, ref)->child;
}

static unsigned plen_of(const struct lpm_fam *f, uint32_t ref)
{
	return ref & REF_GLUE ? gn(f, ref)->plen : pn(f, ref)->plen;
}

static unsigned bit_at(const uint8_t *k, unsigned i)
{
	return (k[i >> 3] >> (7 - (i & 7))) & 1u;
}

static uint32_t load_be32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static uint64_t load_be64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* True when the first plen bits of a and k agree. Word compares rather than memcmp: this
 * runs at every stored prefix a lookup passes. */
static bool prefix_eq(const uint8_t *a, const uint8_t *k, unsigned plen, unsigned keylen)
{
	if (plen == 0)
		return true;
	if (keylen == 4)
		return ((load_be32(a) ^ load_be32(k)) >> (32 - plen)) == 0;
	uint64_t d0 = load_be64(a) ^ load_be64(k);
	if (plen <= 64)
		return (d0 >> (64 - plen)) == 0;
	uint64_t d1 = load_be64(a + 8) ^ load_be64(k + 8);
	return d0 == 0 && (d1 >> (128 - plen)) == 0;
}

/* Number of leading bits on which a and b agree, at most max. */
static unsigned common_bits(const uint8_t *a, const uint8_t *b, unsigned keylen, unsigned max)
{
	for (unsigned i = 0; i < keylen; i++) {
		uint8_t x = a[i] ^ b[i];
		if (x) {
			unsigned n = i * 8 + (unsigned)__builtin_clz(x) - 24;
			return n < max ? n : max;
		}
	}
	return max;
}

/* Grows an array to hold at least need slots (slot 0 included). Growth by half keeps the
 * slack, which els_lpm_bytes reports, under a third of the table. */
static int grow(void **buf, uint32_t *cap, uint32_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	if (need > REF_MAX_IDX)
		return -ENOMEM;
	uint64_t ncap = *cap < 16 ? 16 : (uint64_t)*cap + *cap / 2;
	if (ncap < need)
		ncap = need;
	if (ncap > REF_MAX_IDX)
		ncap = REF_MAX_IDX;
	void *p = realloc(*buf, (size_t)ncap * elem);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = (uint32_t)ncap;
	return 0;
}

/* Makes sure the next insert, which takes at most one prefix and one glue slot, cannot run
 * out of memory halfway through a change of shape. Slots on the free lists are not counted:
 * at worst this grows an array one step early. */
static int reserve(struct lpm_fam *f)
{
	void *pb = f->pbuf, *gb = f->gbuf;
	int err;

	if (f->pused >= REF_MAX_IDX - 1 || f->gused >= REF_MAX_IDX - 1)
		return -ENOMEM;
	err = grow(&pb, &f->pcap, f->pused + 2, f->stride);
	f->pbuf = pb;
	if (err)
		return err;
	err = grow(&gb, &f->gcap, f->gused + 2, sizeof(struct gnode));
	f->gbuf = gb;
	return err;
}

static uint32_t palloc(struct lpm_fam *f)
{
	uint32_t r = f->pfree;

	if (r != REF_NIL)
		f->pfree = pn(f, r)->child[0];
	else
		r = ++f->pused;
	return r;
}

static void pfree_slot(struct lpm_fam *f, uint32_t r)
{
	pn(f, r)->child[0] = f->pfree;
	f->pfree = r;
}

static uint32_t galloc(struct lpm_fam *f)
{
	uint32_t i = f->gfree;

	if (i != REF_NIL)
		f->gfree = f->gbuf[i].child[0];
	else
		i = ++f->gused;
	return i | REF_GLUE;
}

static void gfree_slot(struct lpm_fam *f, uint32_t r)
{
	uint32_t i = REF_IDX(r);

	f->gbuf[i].child[0] = f->gfree;
	f->gfree = i;
}

struct els_lpm *els_lpm_new(void)
{
	struct els_lpm *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	for (unsigned i = 0; i < 2; i++) {
		struct lpm_fam *f = &t->fam[i];
		f->keylen = i == 0 ? 4 : 16;
		f->maxbits = f->keylen * 8;
		f->stride = (offsetof(struct pnode, key) + f->keylen + 3) & ~(size_t)3;
	}
	return t;
}

void els_lpm_free(struct els_lpm *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < 2; i++) {
		free(t->fam[i].pbuf);
		free(t->fam[i].gbuf);
		free(t->fam[i].dir);
	}
	free(t);
}

/* Copies c's key with the bits past its length cleared, whatever the caller left there. */
static void masked_key(const struct lpm_fam *f, const struct els_cidr *c, uint8_t *k)
{
	memcpy(k, c->addr.b, f->keylen);
	for (unsigned i = c->plen; i < f->maxbits; i++)
		k[i >> 3] &= (uint8_t) ~(0x80u >> (i & 7));
}

static uint32_t new_prefix(struct lpm_fam *f, const uint8_t *k, unsigned plen, uint32_t value)
{
	uint32_t r = palloc(f);
	struct pnode *p = pn(f, r);

	p->child[0] = p->child[1] = REF_NIL;
	p->value = value;
	p->plen = (uint8_t)plen;
	p->empty = 0;
	memcpy(p->key, k, f->keylen);
	f->count++;
	return r;
}

/* The slot of a key: its first DIR_BITS bits. */
static uint32_t dir_index(const uint8_t *k)
{
	return load_be32(k) >> (32 - DIR_BITS);
}

/* Slot indexes whose first n bits (n <= DIR_BITS) are fixed. */
static uint32_t dir_mask(unsigned n)
{
	return n == 0 ? 0 : (DIR_SLOTS - 1) & ~((1u << (DIR_BITS - n)) - 1);
}

/* A key standing for everything below ref: all of it agrees with this key on ref's length.
 * Glue nodes and empty prefix nodes have two children, so the walk always ends. */
static const uint8_t *rep_key(const struct lpm_fam *f, uint32_t ref)
{
	while (ref & REF_GLUE)
		ref = gn(f, ref)->child[0];
	return pn(f, ref)->key;
}

static void dir_set(struct lpm_fam *f, uint32_t from, uint32_t to, uint32_t next, uint32_t best)
{
	for (uint32_t i = from; i < to; i++) {
		f->dir[i].next = next;
		f->dir[i].best = best;
	}
}

/* Fills the block of slots sharing their first m bits with q from the subtrie cur, which is
 * the first node at or past bit m on the block's path (or REF_NIL); best is the longest
 * stored prefix shorter than m covering the block. Recursion depth is at most DIR_BITS. */
static void dir_fill(struct lpm_fam *f, uint32_t cur, uint32_t q, unsigned m, uint32_t best)
{
	uint32_t end = q + (1u << (DIR_BITS - m));

	if (cur == REF_NIL) {
		dir_set(f, q, end, REF_NIL, best);
		return;
	}
	unsigned n = plen_of(f, cur);
	unsigned fixed = n < DIR_BITS ? n : DIR_BITS;
	/* Only slots sharing cur's first bits can meet anything below cur (path compression
	 * may have skipped bits between m and n); the rest of the block ends here. */
	uint32_t lo = dir_index(rep_key(f, cur)) & dir_mask(fixed);
	uint32_t hi = lo + (1u << (DIR_BITS - fixed));
	if (lo < q || hi > end) {
		dir_set(f, q, end, REF_NIL, best);
		return;
	}
	dir_set(f, q, lo, REF_NIL, best);
	dir_set(f, hi, end, REF_NIL, best);
	if (n >= DIR_BITS) {
		f->dir[lo].next = cur;
		f->dir[lo].best = best;
		return;
	}
	if (!(cur & REF_GLUE) && !pn(f, cur)->empty)
		best = cur;
	const uint32_t *ch = children(f, cur);
	dir_fill(f, ch[0], lo, n + 1, best);
	dir_fill(f, ch[1], lo + (1u << (DIR_BITS - 1 - n)), n + 1, best);
}

/* Recomputes the slots sharing their first m bits with k (m <= DIR_BITS): a change at a node
 * of length d on k's path can only move the slots sharing k's first min(d, DIR_BITS) bits. */
static void dir_refresh(struct lpm_fam *f, const uint8_t *k, unsigned m)
{
	uint32_t cur = f->root, best = REF_NIL;

	if (!f->dir)
		return;
	if (m > DIR_BITS)
		m = DIR_BITS;
	while (cur != REF_NIL) {
		unsigned n = plen_of(f, cur);
		if (n >= m)
			break;
		if (!(cur & REF_GLUE)) {
			const struct pnode *p = pn(f, cur);
			if (!prefix_eq(k, p->key, n, f->keylen)) {
				cur = REF_NIL; /* nothing below covers the block */
				break;
			}
			if (!p->empty)
				best = cur;
		}
		cur = children(f, cur)[bit_at(k, n)];
	}
	dir_fill(f, cur, dir_index(k) & dir_mask(m), m, best);
}

/* Gives the family its directory once it is big enough to pay for it. Failing to allocate
 * is no error: lookups walk from the root as before, and a later insert or trim tries again. */
static void dir_build(struct lpm_fam *f)
{
	if (f->dir || f->count <= ELS_LPM_DIR_MIN)
		return;
	f->dir = malloc(DIR_SLOTS * sizeof(*f->dir));
	if (f->dir)
		dir_fill(f, f->root, 0, 0, REF_NIL);
}

#define NO_CHANGE UINT_MAX

/* What an insert changed, for the directory. */
struct change {
	unsigned depth; /* length of the shallowest node added or changed, or NO_CHANGE */
	uint32_t *link; /* the reference rewritten to the node added at that depth */
	int up;		/* length of the node holding link; -1 for the root */
};

static int trie_insert(struct lpm_fam *f, const uint8_t *k, unsigned plen, uint32_t value,
		       struct change *ch)
{
	ch->depth = plen;
	ch->link = &f->root;
	ch->up = -1;
	if (f->root == REF_NIL) {
		f->root = new_prefix(f, k, plen, value);
		return 1;
	}

	/* Pass 1: follow k's bits as far as they go, to some stored prefix whose key tells where
	 * k parts from the trie (all keys below a node agree up to its length). */
	uint32_t cur = f->root;
	for (;;) {
		unsigned n = plen_of(f, cur);
		if (n >= plen)
			break;
		uint32_t next = children(f, cur)[bit_at(k, n)];
		if (next == REF_NIL)
			break;
		cur = next;
	}
	while (cur & REF_GLUE)
		cur = gn(f, cur)->child[0];
	const struct pnode *near = pn(f, cur);
	unsigned d = common_bits(k, near->key, f->keylen, plen < near->plen ? plen : near->plen);
	ch->depth = d;

	/* Pass 2: walk down again to the first node at or past bit d, where k's node belongs. */
	uint32_t *link = &f->root;
	cur = *link;
	while (cur != REF_NIL) {
		unsigned n = plen_of(f, cur);
		if (n > d || (n == d && n == plen))
			break;
		ch->up = (int)n;
		link = &children(f, cur)[bit_at(k, n)];
		cur = *link;
	}
	ch->link = link;

	if (cur == REF_NIL) {
		*link = new_prefix(f, k, plen, value);
		return 1;
	}
	unsigned n = plen_of(f, cur);
	if (n == d) { /* the walk stops at n == d only when d == plen: cur is k's prefix */
		if (!(cur & REF_GLUE)) {
			struct pnode *p = pn(f, cur);
			int added = p->empty;
			p->value = value;
			p->empty = 0;
			f->count += (size_t)added;
			if (!added) /* slots name nodes, not values: none moves */
				ch->depth = NO_CHANGE;
			return added;
		}
		uint32_t r = new_prefix(f, k, plen, value);
		memcpy(pn(f, r)->child, gn(f, cur)->child, sizeof(pn(f, r)->child));
		gfree_slot(f, cur);
		*link = r;
		return 1;
	}
	/* n > d: cur's subtree agrees with near on its first n bits, so near's key stands for
	 * it. (near stays valid: reserve() grew the arrays before anything was taken.) */
	uint32_t r = new_prefix(f, k, plen, value);
	if (d == plen) { /* k covers cur */
		pn(f, r)->child[bit_at(near->key, plen)] = cur;
		*link = r;
		return 1;
	}
	/* k and cur part at bit d: a glue node joins them. */
	uint32_t g = galloc(f);
	struct gnode *gp = gn(f, g);
	gp->plen = (uint8_t)d;
	gp->child[bit_at(k, d)] = r;
	gp->child[!bit_at(k, d)] = cur;
	*link = g;
	return 1;
}

int els_lpm_insert(struct els_lpm *t, const struct els_cidr *c, uint32_t value)
{
	struct lpm_fam *f = fam_of(t, c->family);
	uint8_t k[16];
	struct change ch;

	if (!f || c->plen > f->maxbits)
		return -EINVAL;
	int err = reserve(f);
	if (err)
		return err;
	masked_key(f, c, k);
	int rc = trie_insert(f, k, c->plen, value, &ch);
	if (!f->dir)
		dir_build(f);
	else if (ch.depth < DIR_BITS)
		dir_refresh(f, k, ch.depth);
	else if (ch.depth != NO_CHANGE && ch.up < (int)DIR_BITS)
		/* The common case in a big table, and cheaper than a refresh from the root: only
		 * k's slot can move, and its first node past DIR_BITS is now the one added. */
		f->dir[dir_index(k)].next = *ch.link;
	/* else the change lies below the slot's first node: the slot stays as it is */
	return rc;
}

/* Finds the exact prefix; *linkp receives the reference pointing to it and *parentp the
 * node holding that reference (REF_NIL for the root). */
static uint32_t find_exact(const struct lpm_fam *f, const uint8_t *k, unsigned plen,
			   uint32_t **linkp, uint32_t **parent_linkp)
{
	uint32_t *link = (uint32_t *)&f->root, *plink = NULL;
	uint32_t cur = *link;

	while (cur != REF_NIL) {
		unsigned n = plen_of(f, cur);
		if (n >= plen)
			break;
		plink = link;
		link = &children(f, cur)[bit_at(k, n)];
		cur = *link;
	}
	if (cur == REF_NIL || (cur & REF_GLUE) || pn(f, cur)->plen != plen || pn(f, cur)->empty ||
	    !prefix_eq(k, pn(f, cur)->key, plen, f->keylen))
		return REF_NIL;
	if (linkp)
		*linkp = link;
	if (parent_linkp)
		*parent_linkp = plink;
	return cur;
}

int els_lpm_remove(struct els_lpm *t, const struct els_cidr *c)
{
	struct lpm_fam *f = fam_of(t, c->family);
	uint32_t *link, *plink;
	uint8_t k[16];

	if (!f || c->plen > f->maxbits)
		return 0;
	masked_key(f, c, k);
	uint32_t cur = find_exact(f, k, c->plen, &link, &plink);
	if (cur == REF_NIL)
		return 0;
	struct pnode *p = pn(f, cur);
	uint32_t c0 = p->child[0], c1 = p->child[1];

	unsigned changed = c->plen;
	f->count--;
	if (c0 != REF_NIL && c1 != REF_NIL) {
		p->empty = 1; /* still needed for branching */
		dir_refresh(f, k, changed);
		return 1;
	}
	*link = c0 != REF_NIL ? c0 : c1;
	pfree_slot(f, cur);
	/* A parent that only branches (glue or empty), left with one child, has no reason to
	 * exist any more: splice it out. */
	uint32_t up = plink ? *plink : REF_NIL;
	if (*link == REF_NIL && up != REF_NIL && ((up & REF_GLUE) || pn(f, up)->empty)) {
		const uint32_t *uc = children(f, up);
		changed = plen_of(f, up);
		*plink = uc[0] != REF_NIL ? uc[0] : uc[1];
		if (up & REF_GLUE)
			gfree_slot(f, up);
		else
			pfree_slot(f, up);
	}
	/* Slots may still name the freed nodes until this: it runs before anyone can look. */
	dir_refresh(f, k, changed);
	return 1;
}

uint32_t els_lpm_lookup(const struct els_lpm *t, unsigned family, const struct els_addr *a,
			unsigned *plen_out)
{
	const struct lpm_fam *f = cfam_of(t, family);
	uint32_t best = ELS_LPM_NONE;
	unsigned best_len = 0;

	if (!f)
		return ELS_LPM_NONE;
	uint32_t cur = f->root, short_best = REF_NIL;
	bool hit = false;
	if (f->dir) {
		const struct dslot *s = &f->dir[dir_index(a->b)];
		cur = s->next;
		short_best = s->best;
	}
	while (cur != REF_NIL) {
		unsigned n;
		const uint32_t *ch;
		if (cur & REF_GLUE) {
			const struct gnode *g = gn(f, cur);
			n = g->plen;
			ch = g->child;
		} else {
			const struct pnode *p = pn(f, cur);
			if (!prefix_eq(a->b, p->key, p->plen, f->keylen))
				break; /* every key below shares this one's bits: none matches */
			if (!p->empty) {
				best = p->value;
				best_len = p->plen;
				hit = true;
			}
			n = p->plen;
			ch = p->child;
		}
		if (n >= f->maxbits)
			break;
		cur = ch[bit_at(a->b, n)];
	}
	if (!hit && short_best != REF_NIL) { /* anything found below the slot is longer */
		const struct pnode *p = pn(f, short_best);
		best = p->value;
		best_len = p->plen;
	}
	if (plen_out)
		*plen_out = best == ELS_LPM_NONE ? 0 : best_len;
	return best;
}

uint32_t els_lpm_get(const struct els_lpm *t, const struct els_cidr *c)
{
	const struct lpm_fam *f = cfam_of(t, c->family);
	uint8_t k[16];

	if (!f || c->plen > f->maxbits)
		return ELS_LPM_NONE;
	masked_key(f, c, k);
	uint32_t r = find_exact(f, k, c->plen, NULL, NULL);
	return r == REF_NIL ? ELS_LPM_NONE : pn(f, r)->value;
}

static void shrink(void **buf, uint32_t *cap, uint32_t used, size_t elem)
{
	if (*cap <= used + 1)
		return;
	void *p = realloc(*buf, (size_t)(used + 1) * elem);
	if (p) { /* on failure the larger block simply stays */
		*buf = p;
		*cap = used + 1;
	}
}

void els_lpm_trim(struct els_lpm *t)
{
	for (unsigned i = 0; i < 2; i++) {
		struct lpm_fam *f = &t->fam[i];
		void *pb = f->pbuf, *gb = f->gbuf;
		if (f->dir && f->count <= ELS_LPM_DIR_MIN) {
			free(f->dir); /* shrank since: the walk from the root is short again */
			f->dir = NULL;
		}
		dir_build(f); /* in case an allocation failed while building */
		if (f->pused == 0 && f->gused == 0)
			continue;
		shrink(&pb, &f->pcap, f->pused, f->stride);
		shrink(&gb, &f->gcap, f->gused, sizeof(struct gnode));
		f->pbuf = pb;
		f->gbuf = gb;
	}
}

size_t els_lpm_count(const struct els_lpm *t)
{
	return t->fam[0].count + t->fam[1].count;
}

size_t els_lpm_bytes(const struct els_lpm *t)
{
	size_t n = sizeof(*t);

	for (unsigned i = 0; i < 2; i++) {
		const struct lpm_fam *f = &t->fam[i];
		n += (size_t)f->pcap * f->stride + (size_t)f->gcap * sizeof(struct gnode);
		if (f->dir)
			n += DIR_SLOTS * sizeof(*f->dir);
	}
	return n;
}

/* Pre-order: a prefix before the longer ones it covers, child 0 before child 1, which is
 * address order. Recursion depth is bounded by the key length (129 levels at most). */
static int walk(const struct lpm_fam *f, unsigned family, uint32_t ref,
		int (*fn)(const struct els_cidr *c, uint32_t value, void *arg), void *arg)
{
	if (ref == REF_NIL)
		return 0;
	const uint32_t *ch = children(f, ref);
	if (!(ref & REF_GLUE) && !pn(f, ref)->empty) {
		const struct pnode *p = pn(f, ref);
		struct els_cidr c;
		memset(&c, 0, sizeof(c));
		memcpy(c.addr.b, p->key, f->keylen);
		c.family = (uint8_t)family;
		c.plen = p->plen;
		int rc = fn(&c, p->value, arg);
		if (rc)
			return rc;
	}
	int rc = walk(f, family, ch[0], fn, arg);
	return rc ? rc : walk(f, family, ch[1], fn, arg);
}

int els_lpm_walk(const struct els_lpm *t,
		 int (*fn)(const struct els_cidr *c, uint32_t value, void *arg), void *arg)
{
	int rc = walk(&t->fam[0], ELS_AF_INET, t->fam[0].root, fn, arg);
	return rc ? rc : walk(&t->fam[1], ELS_AF_INET6, t->fam[1].root, fn, arg);
}
