/* Addresses and CIDR prefixes: parsing and printing, shared by every handler. */
#ifndef ELS_ADDR_H
#define ELS_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "els/pkt.h"

struct els_cidr {
	struct els_addr addr; /* host bits beyond plen are cleared */
	uint8_t family;       /* ELS_AF_INET or ELS_AF_INET6 */
	uint8_t plen;         /* 0..32 or 0..128 */
};

/* "198.18.0.0/15", "2001:db8::1", "10.0.0.1" (a bare address is a /32 or /128).
 * Returns 0, or -EINVAL with a short reason in *why (static string). Host bits set past
 * the prefix ("198.18.0.1/15") are an error: they usually mean a typo. */
int els_cidr_parse(const char *text, struct els_cidr *out, const char **why);

/* Writes the address in its usual text form; returns buf. buf needs 46 bytes. */
#define ELS_ADDR_STRLEN 46
const char *els_addr_str(const struct els_addr *a, unsigned family, char *buf);

/* True when a lies inside c (same family). */
bool els_cidr_contains(const struct els_cidr *c, unsigned family, const struct els_addr *a);

/* A seeded hash of (family, address, extra) for the per-worker tables keyed by an address
 * (sessions, scan sources, fragment ranges): one key layout, padding zeroed, so that equal
 * keys hash equally. extra is the caller's (a port and protocol, a fragment id, a tag). */
uint64_t els_addr_hash(uint8_t family, const struct els_addr *a, uint32_t extra, uint64_t seed);

#endif
