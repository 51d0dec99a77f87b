/* CIDR parsing and address printing. inet_pton does the address grammar; this file adds the
 * prefix length and the host-bits check. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "els/addr.h"

static void clear_host_bits(struct els_addr *a, unsigned plen, unsigned bits, bool *had_bits)
{
	for (unsigned i = plen; i < bits; i++) {
		uint8_t mask = (uint8_t)(0x80u >> (i % 8));
		if (a->b[i / 8] & mask) {
			*had_bits = true;
			a->b[i / 8] &= (uint8_t)~mask;
		}
	}
}

int els_cidr_parse(const char *text, struct els_cidr *out, const char **why)
{
	char buf[64];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	static const char *ignored;

	if (!why)
		why = &ignored;
	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(buf)) {
		*why = "not an address";
		return -EINVAL;
	}
	memcpy(buf, text, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, out->addr.b) == 1) {
		out->family = ELS_AF_INET;
	} else if (inet_pton(AF_INET6, buf, out->addr.b) == 1) {
		out->family = ELS_AF_INET6;
	} else {
		*why = "not an IPv4 or IPv6 address";
		return -EINVAL;
	}
	unsigned bits = out->family == ELS_AF_INET ? 32 : 128;
	unsigned long plen = bits;
	if (slash) {
		char *end;
		if (slash[1] < '0' || slash[1] > '9') {
			*why = "prefix length is not a number";
			return -EINVAL;
		}
		errno = 0;
		plen = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || errno) {
			*why = "prefix length is not a number";
			return -EINVAL;
		}
		if (plen > bits) {
			*why = out->family == ELS_AF_INET ? "IPv4 prefix length above 32"
							   : "IPv6 prefix length above 128";
			return -EINVAL;
		}
	}
	out->plen = (uint8_t)plen;
	bool had_bits = false;
	clear_host_bits(&out->addr, out->plen, bits, &had_bits);
	if (had_bits) {
		*why = "address has bits set beyond the prefix length";
		return -EINVAL;
	}
	*why = NULL;
	return 0;
}

const char *els_addr_str(const struct els_addr *a, unsigned family, char *buf)
{
	if (!inet_ntop(family == ELS_AF_INET ? AF_INET : AF_INET6, a->b, buf, ELS_ADDR_STRLEN))
		strcpy(buf, "?");
	return buf;
}

const char *els_proto_name(unsigned proto, char buf[ELS_PROTO_STRLEN])
{
	switch (proto) {
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMPV6:
		return "icmpv6";
	default:
		snprintf(buf, ELS_PROTO_STRLEN, "%u", proto & 0xffu);
		return buf;
	}
}

bool els_cidr_contains(const struct els_cidr *c, unsigned family, const struct els_addr *a)
{
	if (c->family != family)
		return false;
	unsigned full = c->plen / 8, rest = c->plen % 8;
	if (memcmp(c->addr.b, a->b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xffu << (8 - rest));
	return (a->b[full] & mask) == c->addr.b[full];
}

uint64_t els_addr_hash(uint8_t family, const struct els_addr *a, uint32_t extra, uint64_t seed)
{
	struct {
		struct els_addr a;
		uint32_t extra;
		uint8_t family, pad[3];
	} k;
	memset(&k, 0, sizeof(k));
	k.a = *a;
	k.extra = extra;
	k.family = family;
	return XXH3_64bits_withSeed(&k, sizeof(k), seed);
}
