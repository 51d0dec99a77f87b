/* The directory of a longest-prefix-match table: a direct table on the first DIR_BITS address
 * bits that lets a lookup skip the trie's top levels (lpm.c's opening comment). Rebuilt in
 * blocks, off the packet path, by every insert and remove. */
#include <stdlib.h>

#include "lpm_int.h"

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
void lpm_dir_refresh(struct lpm_fam *f, const uint8_t *k, unsigned m)
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
void lpm_dir_build(struct lpm_fam *f)
{
	if (f->dir || f->count <= ELS_LPM_DIR_MIN)
		return;
	f->dir = malloc(DIR_SLOTS * sizeof(*f->dir));
	if (f->dir)
		dir_fill(f, f->root, 0, 0, REF_NIL);
}
