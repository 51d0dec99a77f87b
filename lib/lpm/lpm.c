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
 * went through the part of the trie it changed, so lookups are exact at all times. The
 * directory is lpm_dir.c, the structures both files share lpm_int.h. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "els/lpm.h"
#include "lpm_int.h"

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
		lpm_dir_build(f);
	else if (ch.depth < DIR_BITS)
		lpm_dir_refresh(f, k, ch.depth);
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
		lpm_dir_refresh(f, k, changed);
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
	lpm_dir_refresh(f, k, changed);
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
		lpm_dir_build(f); /* in case an allocation failed while building */
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
