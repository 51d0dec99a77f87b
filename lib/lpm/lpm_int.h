/* The longest-prefix-match table's insides, shared by the trie (lpm.c) and its directory
 * (lpm_dir.c); lpm.c's opening comment describes both. Private to lib/. */
#ifndef ELS_LPM_INT_H
#define ELS_LPM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

static inline struct pnode *pn(const struct lpm_fam *f, uint32_t ref)
{
	return (struct pnode *)(f->pbuf + (size_t)ref * f->stride);
}

static inline struct gnode *gn(const struct lpm_fam *f, uint32_t ref)
{
	return &f->gbuf[REF_IDX(ref)];
}

static inline uint32_t *children(const struct lpm_fam *f, uint32_t ref)
{
	return ref & REF_GLUE ? gn(f, ref)->child : pn(f, ref)->child;
}

static inline unsigned plen_of(const struct lpm_fam *f, uint32_t ref)
{
	return ref & REF_GLUE ? gn(f, ref)->plen : pn(f, ref)->plen;
}

static inline unsigned bit_at(const uint8_t *k, unsigned i)
{
	return (k[i >> 3] >> (7 - (i & 7))) & 1u;
}

static inline uint32_t load_be32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static inline uint64_t load_be64(const uint8_t *p)
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
static inline bool prefix_eq(const uint8_t *a, const uint8_t *k, unsigned plen, unsigned keylen)
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

/* The slot of a key: its first DIR_BITS bits. */
static inline uint32_t dir_index(const uint8_t *k)
{
	return load_be32(k) >> (32 - DIR_BITS);
}

/* Gives the family its directory once it holds more than ELS_LPM_DIR_MIN prefixes. Failing
 * to allocate is no error: lookups walk from the root as before, and a later insert or trim
 * tries again. (lpm_dir.c) */
void lpm_dir_build(struct lpm_fam *f);
/* Recomputes the slots sharing their first m bits with k (m <= DIR_BITS), after a change at a
 * node of length m on k's path; nothing without a directory. (lpm_dir.c) */
void lpm_dir_refresh(struct lpm_fam *f, const uint8_t *k, unsigned m);

#endif
