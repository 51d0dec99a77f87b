/* Port and ICMP-type lists as the header filter's config writes them: numbers, "lo-hi" ranges,
 * IANA classes, /etc/services names and ICMP type names. Off the packet path only, except
 * els_portset_has(), which allocates nothing and may run per packet. */
#ifndef ELS_PORTSPEC_H
#define ELS_PORTSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct els_port_range {
	uint16_t lo, hi; /* inclusive */
};

/* A growable list of ranges; after els_portset_normalize() sorted, merged and disjoint. */
struct els_port_set {
	struct els_port_range *r;
	uint32_t n, cap;
};

void els_portset_free(struct els_port_set *s);
/* Appends [lo, hi]. 0 or -ENOMEM. */
int els_portset_add(struct els_port_set *s, uint16_t lo, uint16_t hi);
/* Sorts and merges overlapping or adjacent ranges. */
void els_portset_normalize(struct els_port_set *s);
/* Whether v lies in one of n normalized ranges (binary search). */
bool els_ranges_has(const struct els_port_range *r, uint32_t n, uint16_t v);

/* Parses a port written as text that needs no services file: "443", "8000-8080",
 * "well-known" (1-1023), "registered" (1024-49151), "dynamic" (49152-65535).
 * Returns 0, -ENOENT when the text is none of those (it may be a service name), or -EINVAL
 * with a static reason in *why (bad range, number above 65535). */
int els_port_parse(const char *text, uint16_t *lo, uint16_t *hi, const char **why);

/* An ICMP (v6 = false) or ICMPv6 type by name ("echo-request") or number ("8").
 * Returns the type 0..255, or -EINVAL with a static reason in *why. */
int els_icmp_type_parse(const char *text, bool v6, const char **why);

/* A parsed services(5) file. */
struct els_services;

/* Parses services(5) text: "name port/proto [aliases...] [# comment]". Lines it cannot read
 * are skipped, as the C library does. Returns NULL on allocation failure. */
struct els_services *els_services_parse(const char *text, size_t len);
/* Reads and parses a file. Returns 0 or -errno (*out untouched then). */
int els_services_load(const char *path, struct els_services **out);
void els_services_free(struct els_services *s);
/* The port of name (or alias) for proto ("tcp", "udp"), as the file's first matching line says;
 * -ENOENT when there is none. */
int els_services_port(const struct els_services *s, const char *name, const char *proto);
/* The name the file gives port for proto ("tcp", "udp"): its first line's service name, not an
 * alias. NULL when none (or s is NULL). Points into s. */
const char *els_services_name(const struct els_services *s, unsigned port, const char *proto);

#endif
