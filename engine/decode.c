/* Decodes the IP and L4 headers of one packet into struct els_pkt (see include/els/pkt.h).
 *
 * Runs on the packet path for every queued packet: no allocation, no loop over payload (the
 * only loop is the IPv6 extension header walk, capped at ELS_DECODE_MAX_EXT), and every read
 * is bounds-checked against caplen first. Multi-byte fields are assembled byte by byte, so
 * nothing depends on the alignment of buf.
 *
 * Two lengths bound each packet:
 *  - claimed: what the IP header says (IPv4 total length, IPv6 40 + payload length). It may
 *    exceed caplen, because NFQUEUE copies only the first bytes, but never wire_len.
 *  - end: min(caplen, claimed), the bytes that are both present and part of the packet.
 * A header that does not fit in claimed is malformed; one that fits in claimed but not in
 * end was only cut by the capture (truncated / truncated_l4).
 */
#include <netinet/in.h>

#include "els/decode.h"
#include "els/pkt.h"
#include "els/reason.h"

/* Long enough for any sane chain (RFC 8200 recommends order and at most two destination
 * option headers); short enough that a crafted chain cannot make us spin. */
#define ELS_DECODE_MAX_EXT 16

/* Next-header values netinet/in.h does not name. */
enum {
	ELS_IPPROTO_HIP = 139,	 /* Host Identity Protocol, RFC 7401 */
	ELS_IPPROTO_SHIM6 = 140, /* RFC 5533 */
	ELS_IPPROTO_EXP1 = 253,	 /* experimentation and testing, RFC 3692 */
	ELS_IPPROTO_EXP2 = 254,
};

#define TCP_HDR_MIN  20u
#define UDP_HDR_LEN  8u
#define ICMP_HDR_LEN 8u /* type, code, checksum and the 4-byte rest (echo id/seq, MTU, ...) */

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline unsigned fail(struct els_pkt *p, enum els_reason r)
{
	p->reason = (uint16_t)r;
	return r;
}

/* RFC 1858 3.2: a TCP fragment at offset 8 can rewrite the flags of the first fragment after
 * the filter has read them; no legitimate stack sends one. */
static inline unsigned later_fragment(struct els_pkt *p)
{
	p->flags |= ELS_PKT_LATER_FRAG;
	if (p->proto == IPPROTO_TCP && p->frag_off == 8)
		return fail(p, ELS_R_TINY_FRAGMENT);
	return ELS_R_NONE;
}

/* A first fragment that does not hold the headers up to and including the L4 header: for IPv6
 * RFC 7112 requires the whole header chain in the first fragment; for IPv4, RFC 1858's tiny
 * fragment. Neither can be judged, since the ports or flags are in a later piece. */
static inline enum els_reason incomplete_first(const struct els_pkt *p)
{
	return p->family == ELS_AF_INET6 ? ELS_R_FIRST_FRAG_INCOMPLETE : ELS_R_TINY_FRAGMENT;
}

/* RFC 8200 4.5 and RFC 791 for a fragment whose data (len bytes after its headers) starts at
 * p->frag_off: every fragment but the last carries a multiple of 8 bytes, and the reassembled
 * packet (unfrag bytes of headers before the fragmentable part) stays within 65535 bytes. */
static inline void check_fragment(struct els_pkt *p, bool more, size_t unfrag, size_t len)
{
	if (more && len % 8)
		p->std |= ELS_STD_FRAG_LENGTH;
	if (unfrag + p->frag_off + len > 65535)
		p->std |= ELS_STD_FRAG_TOO_BIG;
}

/* Decodes the L4 header of p->proto at buf[off]; off <= end <= claimed. */
static unsigned decode_l4(const uint8_t *buf, size_t off, size_t end, size_t claimed,
			  struct els_pkt *p)
{
	bool frag = p->flags & ELS_PKT_FRAGMENT;
	const uint8_t *h = buf + off;
	size_t need;

	switch (p->proto) {
	case IPPROTO_TCP:
		need = TCP_HDR_MIN;
		break;
	case IPPROTO_UDP:
		need = UDP_HDR_LEN;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		need = ICMP_HDR_LEN;
		break;
	default:
		return fail(p, ELS_R_UNKNOWN_PROTO);
	}
	/* A first fragment is judged by its own claimed length: the capture may hold padding
	 * or nothing at all past the headers, neither says what the sender put in it. */
	if (claimed - off < need)
		return fail(p, !frag ? ELS_R_TRUNCATED_L4 : incomplete_first(p));
	if (end - off < need)
		return fail(p, ELS_R_TRUNCATED_L4);

	switch (p->proto) {
	case IPPROTO_TCP: {
		size_t doff = (size_t)(h[12] >> 4) * 4;

		/* Options need not be captured (we never read them), but must fit in the packet.
		 * A first fragment may legally end inside them. */
		if (doff < TCP_HDR_MIN || (!frag && doff > claimed - off))
			return fail(p, ELS_R_BAD_TCP_OFFSET);
		p->tcp_flags = h[13];
		break;
	}
	case IPPROTO_UDP: {
		size_t ulen = rd16(h + 4);

		/* In a first fragment the UDP length covers the whole datagram, not this piece. */
		if (ulen < UDP_HDR_LEN || (!frag && ulen > claimed - off))
			return fail(p, ELS_R_BAD_UDP_LENGTH);
		break;
	}
	default: {
		/* ICMP and ICMPv6 are told apart by protocol number, not by IP version. */
		bool echo =
		    p->proto == IPPROTO_ICMP ? h[0] == 8 || h[0] == 0 : h[0] == 128 || h[0] == 129;

		p->icmp_type = h[0];
		p->icmp_code = h[1];
		p->flags |= ELS_PKT_HAS_ICMP;
		if (echo) {
			p->icmp_id = rd16(h + 4);
			p->flags |= ELS_PKT_ICMP_ECHO;
		}
		return ELS_R_NONE;
	}
	}
	p->sport = rd16(h);
	p->dport = rd16(h + 2);
	p->flags |= ELS_PKT_HAS_PORTS;
	return ELS_R_NONE;
}

static unsigned decode_v4(const uint8_t *buf, size_t caplen, size_t wire, struct els_pkt *p)
{
	size_t ihl, tot, end;
	uint16_t fo;

	p->family = ELS_AF_INET;
	if (caplen < 20)
		return fail(p, ELS_R_TRUNCATED);
	memcpy(p->src.b, buf + 12, 4);
	memcpy(p->dst.b, buf + 16, 4);
	p->proto = buf[9];
	p->hop_limit = buf[8];
	ihl = (size_t)(buf[0] & 0x0f) * 4;
	tot = rd16(buf + 2);
	/* Options running past the whole packet are a bad IHL; past a partial capture only,
	 * a truncation (checked after the lengths, which can still be judged). */
	if (ihl < 20 || (ihl > caplen && caplen >= wire))
		return fail(p, ELS_R_BAD_IHL);
	if (tot < ihl || tot > wire)
		return fail(p, ELS_R_BAD_IP_LENGTH);
	if (ihl > caplen)
		return fail(p, ELS_R_TRUNCATED);

	fo = rd16(buf + 6);
	p->frag_off = (uint16_t)((fo & 0x1fff) * 8);
	if (fo & 0x3fff) { /* MF or an offset */
		p->flags |= ELS_PKT_FRAGMENT;
		p->frag_id = rd16(buf + 4);
		/* the reassembled length counts the first fragment's header: take this one's */
		check_fragment(p, fo & 0x2000, ihl, tot - ihl);
	}
	/* Never look for L4 in a later fragment: its first bytes are payload, not ports. */
	if (p->frag_off)
		return later_fragment(p);
	end = caplen < tot ? caplen : tot;
	return decode_l4(buf, ihl, end, tot, p);
}

/* Checks that an extension header of hlen bytes at off fits. In a first fragment the whole
 * chain must be there (RFC 7112), so running past the fragment is an incomplete first
 * fragment. */
static inline unsigned ext_fits(struct els_pkt *p, size_t off, size_t hlen, size_t end,
				size_t claimed)
{
	if (claimed - off < hlen)
		return fail(p, p->flags & ELS_PKT_FRAGMENT ? incomplete_first(p)
							   : ELS_R_BAD_EXT_HEADER);
	if (end - off < hlen)
		return fail(p, ELS_R_TRUNCATED);
	return ELS_R_NONE;
}

/* A bit per extension header type that may occur once (RFC 8200 4.1); the fragment header
 * has its own test and Destination Options may occur twice. */
static uint32_t once_bit(uint8_t nh)
{
	switch (nh) {
	case IPPROTO_HOPOPTS:
		return 1u << 0;
	case IPPROTO_ROUTING:
		return 1u << 1;
	case IPPROTO_MH:
		return 1u << 2;
	case ELS_IPPROTO_HIP:
		return 1u << 3;
	case ELS_IPPROTO_SHIM6:
		return 1u << 4;
	case ELS_IPPROTO_EXP1:
		return 1u << 5;
	case ELS_IPPROTO_EXP2:
		return 1u << 6;
	case IPPROTO_AH:
		return 1u << 7;
	default: return 0;
	}
}

/* RFC 5095 deprecates type 0 (a packet could bounce between hosts many times); RFC 8200 4.4
 * has a host discard a routing type it does not know while segments are left. Known: 2
 * (Mobile IPv6, RFC 6275), 3 (RPL, RFC 6554), 4 (segment routing, RFC 8754). */
static inline void routing_type(struct els_pkt *p, uint8_t type, uint8_t segments_left)
{
	if (type == 0)
		p->std |= ELS_STD_RH0;
	else if (segments_left && type != 2 && type != 3 && type != 4)
		p->std |= ELS_STD_RH_UNKNOWN;
}

static unsigned decode_v6(const uint8_t *buf, size_t caplen, size_t wire, struct els_pkt *p)
{
	size_t claimed, end, off = 40, hlen;
	bool seen_frag = false;
	uint32_t seen_once = 0;
	unsigned dst_opts = 0;
	unsigned r;
	uint8_t nh;

	p->family = ELS_AF_INET6;
	if (caplen < 40)
		return fail(p, ELS_R_TRUNCATED);
	memcpy(p->src.b, buf + 8, 16);
	memcpy(p->dst.b, buf + 24, 16);
	p->hop_limit = buf[7];
	nh = buf[6];
	p->proto = nh;
	claimed = 40 + (size_t)rd16(buf + 4);
	/* Payload length 0 with hop-by-hop options is a jumbogram (RFC 2675): not supported,
	 * and a hop-by-hop header would not fit in a zero-length payload anyway. */
	if (claimed > wire || (claimed == 40 && nh == IPPROTO_HOPOPTS))
		return fail(p, ELS_R_BAD_IP_LENGTH);
	end = caplen < claimed ? caplen : claimed;

	for (;;) {
		switch (nh) {
		case IPPROTO_HOPOPTS:
			/* RFC 8200 4.1: only directly after the fixed header; Linux drops it
			 * anywhere else, so a filter must not read the chain differently. */
			if (p->ext_count)
				return fail(p, ELS_R_HBH_NOT_FIRST);
			/* fall through */
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
		case IPPROTO_MH:
		case ELS_IPPROTO_HIP:
		case ELS_IPPROTO_SHIM6:
		case ELS_IPPROTO_EXP1:
		case ELS_IPPROTO_EXP2:
		case IPPROTO_AH:
		case IPPROTO_FRAGMENT:
			break;
		case IPPROTO_NONE:
			return ELS_R_NONE; /* nothing follows: no L4 to decode */
		default:
			/* TCP, UDP, ICMP; ESP and the rest are unknown_protocol */
			return decode_l4(buf, off, end, claimed, p);
		}
		if (p->ext_count >= ELS_DECODE_MAX_EXT)
			return fail(p, ELS_R_EXT_CHAIN_TOO_LONG);
		/* next header and length bytes first, then the whole header */
		r = ext_fits(p, off, nh == IPPROTO_FRAGMENT ? 8 : 2, end, claimed);
		if (r)
			return r;
		if (nh == IPPROTO_FRAGMENT) {
			uint16_t fo = rd16(buf + off + 2);

			/* two fragment headers would mean fragments of fragments */
			if (seen_frag)
				return fail(p, ELS_R_BAD_EXT_HEADER);
			seen_frag = true;
			hlen = 8;
			p->frag_off = fo & 0xfff8;
			/* An atomic fragment (offset 0, no M) is a whole packet (RFC 6946). */
			if (fo & 0xfff9) {
				p->flags |= ELS_PKT_FRAGMENT;
				p->frag_id = rd32(buf + off + 4);
				check_fragment(p, fo & 1, off - 40, claimed - off - 8);
			}
		} else {
			if (nh == IPPROTO_AH) /* RFC 4302: length in 4-octet units, minus 2 */
				hlen = ((size_t)buf[off + 1] + 2) * 4;
			else
				hlen = ((size_t)buf[off + 1] + 1) * 8;
			r = ext_fits(p, off, hlen, end, claimed);
			if (r)
				return r;
			if (nh == IPPROTO_ROUTING)
				routing_type(p, buf[off + 2], buf[off + 3]);
			if (nh == IPPROTO_DSTOPTS ? ++dst_opts > 2
						  : (seen_once & once_bit(nh)) != 0)
				p->flags |= ELS_PKT_EXT_REPEAT;
			seen_once |= once_bit(nh);
		}
		p->ext_count++;
		nh = buf[off];
		p->proto = nh;
		off += hlen;
		if (p->frag_off)
			return later_fragment(p);
	}
}

unsigned els_decode(const uint8_t *buf, size_t caplen, size_t wire_len, enum els_dir dir,
		    struct els_pkt *pkt)
{
	memset(pkt, 0, sizeof(*pkt));
	pkt->dir = (uint8_t)dir;
	/* The caller promises wire_len >= caplen; if not, the bytes in hand were on the wire. */
	if (wire_len < caplen)
		wire_len = caplen;
	pkt->wire_len = wire_len > UINT32_MAX ? UINT32_MAX : (uint32_t)wire_len;
	if (caplen < 1)
		return fail(pkt, ELS_R_TRUNCATED);
	switch (buf[0] >> 4) {
	case 4:
		return decode_v4(buf, caplen, wire_len, pkt);
	case 6:
		return decode_v6(buf, caplen, wire_len, pkt);
	default:
		return fail(pkt, ELS_R_BAD_VERSION);
	}
}
