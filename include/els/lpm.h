/* Longest-prefix-match table over IPv4 and IPv6 prefixes (a path-compressed binary trie per
 * family). Built off the packet path, then read-only: lookups take no lock and allocate
 * nothing, and cost O(prefix length) whatever the number of entries. A family with more than
 * 256 prefixes also gets a 512 KiB direct table on the first 16 address bits, so a lookup
 * there costs one table access plus the few trie levels below it: nearly flat in size. */
#ifndef ELS_LPM_H
#define ELS_LPM_H

#include <stddef.h>
#include <stdint.h>

#include "els/addr.h"

struct els_lpm;

#define ELS_LPM_NONE UINT32_MAX /* lookup found no covering prefix */

/* An empty table. NULL on allocation failure. Caller frees with els_lpm_free(). */
struct els_lpm *els_lpm_new(void);
void els_lpm_free(struct els_lpm *t);

/* Sets the value of an exact prefix. Returns 1 if added, 0 if the prefix was already
 * present (its value is then replaced by the one given), -ENOMEM on allocation failure
 * (the table is then unchanged), -EINVAL for a family other than IPv4/IPv6 or a prefix
 * length past the address. Host bits past the prefix length are ignored. */
int els_lpm_insert(struct els_lpm *t, const struct els_cidr *c, uint32_t value);

/* Removes an exact prefix. Returns 1 if removed, 0 if it was not present. Never allocates,
 * so it cannot fail. */
int els_lpm_remove(struct els_lpm *t, const struct els_cidr *c);

/* The value of the longest prefix covering a, or ELS_LPM_NONE. If plen_out is non-NULL it
 * receives the matched prefix length. */
uint32_t els_lpm_lookup(const struct els_lpm *t, unsigned family, const struct els_addr *a,
			unsigned *plen_out);

/* Value of an exact prefix, or ELS_LPM_NONE. */
uint32_t els_lpm_get(const struct els_lpm *t, const struct els_cidr *c);

/* Gives back the spare room that growing the table left, once it is built (and the direct
 * table of a family back to 256 prefixes or fewer). Lookups and later changes work as before
 * (the next insert grows it again). */
void els_lpm_trim(struct els_lpm *t);

/* Number of prefixes stored, and bytes of memory the table holds. */
size_t els_lpm_count(const struct els_lpm *t);
size_t els_lpm_bytes(const struct els_lpm *t);

/* Calls fn for every stored prefix, in address order per family (IPv4 first). Stops and
 * returns fn's value when it is non-zero. */
int els_lpm_walk(const struct els_lpm *t,
		 int (*fn)(const struct els_cidr *c, uint32_t value, void *arg), void *arg);

#endif
