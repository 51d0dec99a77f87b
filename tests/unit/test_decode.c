/* els_decode: every reason with a hand-built packet, both families, every IPv6 extension
 * header, each truncation point of valid packets, fragments, direction and caplen/wire_len. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "els/decode.h"
#include "els/pkt.h"
#include "els/reason.h"

static const uint8_t src4[4] = {192, 0, 2, 1}, dst4[4] = {198, 51, 100, 7};
static const uint8_t src6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t dst6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

#define assert_reason(r, name) cr_assert_str_eq(els_reason_name(r), name)

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Decodes from an exact-size heap copy, so ASan traps any read past caplen. */
static unsigned dec(const uint8_t *b, size_t caplen, size_t wire, enum els_dir dir,
		    struct els_pkt *p)
{
	uint8_t *c = malloc(caplen ? caplen : 1);
	unsigned r;

	cr_assert_not_null(c);
	memcpy(c, b, caplen);
	r = els_decode(c, caplen, wire, dir, p);
	cr_assert_eq(r, p->reason);
	free(c);
	return r;
}

static unsigned dec_full(const uint8_t *b, size_t len, struct els_pkt *p)
{
	return dec(b, len, len, ELS_DIR_IN, p);
}

/* --- builders: each writes at h and returns the bytes written --- */

static size_t tcp(uint8_t *h, unsigned sport, unsigned dport, uint8_t flags, unsigned doff)
{
	memset(h, 0, 20);
	put16(h, sport);
	put16(h + 2, dport);
	h[12] = (uint8_t)(doff << 4);
	h[13] = flags;
	put16(h + 14, 65535);
	if (doff > 5)
		memset(h + 20, 1, (doff - 5) * 4); /* NOP options */
	return doff < 5 ? 20 : doff * 4;
}

static size_t udp(uint8_t *h, unsigned sport, unsigned dport, size_t payload)
{
	memset(h, 0, 8 + payload);
	put16(h, sport);
	put16(h + 2, dport);
	put16(h + 4, (unsigned)(8 + payload));
	return 8 + payload;
}

static size_t icmp(uint8_t *h, uint8_t type, uint8_t code, unsigned id)
{
	memset(h, 0, 8);
	h[0] = type;
	h[1] = code;
	put16(h + 4, id);
	put16(h + 6, 1);
	return 8;
}

/* Generic-layout extension header (hop-by-hop, routing, destination options, mobility). */
static size_t ext(uint8_t *h, uint8_t nh, uint8_t len)
{
	size_t n = ((size_t)len + 1) * 8;

	memset(h, 0, n);
	h[0] = nh;
	h[1] = len;
	h[2] = 1; /* PadN covering the rest */
	h[3] = (uint8_t)(n - 4);
	return n;
}

static size_t frag6(uint8_t *h, uint8_t nh, unsigned off_bytes, bool more, uint32_t id)
{
	h[0] = nh;
	h[1] = 0;
	put16(h + 2, (off_bytes & 0xfff8) | (more ? 1 : 0));
	h[4] = (uint8_t)(id >> 24);
	h[5] = (uint8_t)(id >> 16);
	h[6] = (uint8_t)(id >> 8);
	h[7] = (uint8_t)id;
	return 8;
}

static size_t ah(uint8_t *h, uint8_t nh, uint8_t len)
{
	size_t n = ((size_t)len + 2) * 4;

	memset(h, 0xaa, n);
	h[0] = nh;
	h[1] = len;
	return n;
}

/* IPv4 header (IHL 5) in front of l4len bytes already at b + 20; total length covers them. */
static size_t v4(uint8_t *b, uint8_t proto, size_t l4len)
{
	b[0] = 0x45;
	b[1] = 0;
	put16(b + 2, (unsigned)(20 + l4len));
	put16(b + 4, 0x1234);
	put16(b + 6, 0x4000); /* DF */
	b[8] = 64;
	b[9] = proto;
	put16(b + 10, 0);
	memcpy(b + 12, src4, 4);
	memcpy(b + 16, dst4, 4);
	return 20 + l4len;
}

/* IPv6 fixed header in front of plen bytes already at b + 40. */
static size_t v6(uint8_t *b, uint8_t nh, size_t plen)
{
	b[0] = 0x60;
	b[1] = b[2] = b[3] = 0;
	put16(b + 4, (unsigned)plen);
	b[6] = nh;
	b[7] = 64;
	memcpy(b + 8, src6, 16);
	memcpy(b + 24, dst6, 16);
	return 40 + plen;
}

/* --- valid packets --- */

Test(decode, v4_tcp_syn)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v4(b, 6, tcp(b + 20, 40000, 443, ELS_TCP_SYN, 5));

	assert_reason(dec(b, n, n, ELS_DIR_OUT, &p), "none");
	cr_assert_eq(p.family, ELS_AF_INET);
	cr_assert_eq(p.proto, 6);
	cr_assert_arr_eq(p.src.b, src4, 4);
	cr_assert_arr_eq(p.dst.b, dst4, 4);
	for (int i = 4; i < 16; i++)
		cr_assert_eq(p.src.b[i] | p.dst.b[i], 0);
	cr_assert_eq(p.sport, 40000);
	cr_assert_eq(p.dport, 443);
	cr_assert_eq(p.tcp_flags, ELS_TCP_SYN);
	cr_assert_eq(p.flags, ELS_PKT_HAS_PORTS);
	cr_assert_eq(p.wire_len, n);
	cr_assert_eq(p.frag_id, 0);
	cr_assert_eq(p.ext_count, 0);
}

Test(decode, v4_tcp_flags_are_the_wire_byte)
{
	uint8_t b[128];
	struct els_pkt p;
	/* ECN-setup SYN: SYN|ECE|CWR; the high bits are kept as sent */
	size_t n = v4(b, 6, tcp(b + 20, 1, 2, 0xc2, 5));

	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.tcp_flags, 0xc2);
}

Test(decode, v4_udp)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v4(b, 17, udp(b + 20, 5353, 53, 12));

	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.proto, 17);
	cr_assert_eq(p.sport, 5353);
	cr_assert_eq(p.dport, 53);
	cr_assert_eq(p.flags, ELS_PKT_HAS_PORTS);
	cr_assert_eq(p.tcp_flags, 0);
}

Test(decode, v4_options_are_skipped)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t l4 = udp(b + 24, 1000, 2000, 0);
	size_t n;

	v4(b, 17, l4 + 4);
	b[0] = 0x46;
	memset(b + 20, 1, 4); /* NOP options */
	n = 24 + l4;
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.sport, 1000);
	cr_assert_eq(p.dport, 2000);
}

Test(decode, v4_icmp)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v4(b, 1, icmp(b + 20, 8, 0, 0xbeef));

	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.icmp_type, 8);
	cr_assert_eq(p.icmp_id, 0xbeef);
	cr_assert_eq(p.flags, ELS_PKT_HAS_ICMP | ELS_PKT_ICMP_ECHO);

	n = v4(b, 1, icmp(b + 20, 0, 0, 0x0102)); /* echo reply */
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.flags, ELS_PKT_HAS_ICMP | ELS_PKT_ICMP_ECHO);
	cr_assert_eq(p.icmp_id, 0x0102);

	n = v4(b, 1, icmp(b + 20, 3, 4, 0x0102)); /* frag needed: not echo, no id */
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.flags, ELS_PKT_HAS_ICMP);
	cr_assert_eq(p.icmp_type, 3);
	cr_assert_eq(p.icmp_code, 4);
	cr_assert_eq(p.icmp_id, 0);
	cr_assert_eq(p.sport | p.dport, 0);
}

Test(decode, v6_tcp)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v6(b, 6, tcp(b + 40, 51000, 22, ELS_TCP_ACK | ELS_TCP_PSH, 8));

	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.family, ELS_AF_INET6);
	cr_assert_arr_eq(p.src.b, src6, 16);
	cr_assert_arr_eq(p.dst.b, dst6, 16);
	cr_assert_eq(p.proto, 6);
	cr_assert_eq(p.sport, 51000);
	cr_assert_eq(p.dport, 22);
	cr_assert_eq(p.tcp_flags, ELS_TCP_ACK | ELS_TCP_PSH);
	cr_assert_eq(p.flags, ELS_PKT_HAS_PORTS);
	cr_assert_eq(p.ext_count, 0);
}

Test(decode, v6_udp)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v6(b, 17, udp(b + 40, 546, 547, 20));

	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.sport, 546);
	cr_assert_eq(p.dport, 547);
}

Test(decode, v6_icmpv6)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v6(b, 58, icmp(b + 40, 128, 0, 77));

	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.flags, ELS_PKT_HAS_ICMP | ELS_PKT_ICMP_ECHO);
	cr_assert_eq(p.icmp_id, 77);

	n = v6(b, 58, icmp(b + 40, 129, 0, 78));
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.flags, ELS_PKT_HAS_ICMP | ELS_PKT_ICMP_ECHO);

	/* neighbour solicitation: 8 header bytes + 16 target */
	icmp(b + 40, 135, 0, 0);
	memset(b + 48, 0xfe, 16);
	n = v6(b, 58, 24);
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.icmp_type, 135);
	cr_assert_eq(p.flags, ELS_PKT_HAS_ICMP);

	/* ICMPv4 echo type 8 in IPv6 is not an ICMPv6 echo */
	n = v6(b, 58, icmp(b + 40, 8, 0, 5));
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.flags, ELS_PKT_HAS_ICMP);
}

Test(decode, icmp_decodes_by_protocol_number)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v6(b, 1, icmp(b + 40, 8, 0, 9)); /* ICMP (v4) inside IPv6 */

	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.proto, 1);
	cr_assert_eq(p.flags, ELS_PKT_HAS_ICMP | ELS_PKT_ICMP_ECHO);
	cr_assert_eq(p.icmp_id, 9);

	n = v4(b, 58, icmp(b + 20, 129, 0, 10)); /* ICMPv6 inside IPv4 */
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.proto, 58);
	cr_assert_eq(p.flags, ELS_PKT_HAS_ICMP | ELS_PKT_ICMP_ECHO);
	cr_assert_eq(p.icmp_id, 10);

	n = v4(b, 58, icmp(b + 20, 8, 0, 10)); /* v4 echo number under proto 58 */
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.flags, ELS_PKT_HAS_ICMP);
}

/* --- pkt handling: zeroing, direction, wire_len --- */

Test(decode, zeroes_pkt_and_passes_direction)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v4(b, 1, icmp(b + 20, 3, 1, 0));

	memset(&p, 0xff, sizeof(p));
	assert_reason(dec(b, n, n, ELS_DIR_IN, &p), "none");
	cr_assert_eq(p.dir, ELS_DIR_IN);
	cr_assert_eq(p.sport | p.dport | p.icmp_id | p.frag_off, 0);
	cr_assert_eq(p.frag_id, 0);
	cr_assert_eq(p.tcp_flags | p.ext_count, 0);
	cr_assert_eq(els_pkt_local(&p), &p.dst);
	cr_assert_eq(els_pkt_remote(&p), &p.src);

	n = v4(b, 6, tcp(b + 20, 1111, 2222, ELS_TCP_SYN, 5));
	memset(&p, 0xff, sizeof(p));
	assert_reason(dec(b, n, n, ELS_DIR_OUT, &p), "none");
	cr_assert_eq(p.dir, ELS_DIR_OUT);
	cr_assert_eq(els_pkt_local(&p), &p.src);
	cr_assert_eq(els_pkt_local_port(&p), 1111);
	cr_assert_eq(els_pkt_remote_port(&p), 2222);
	cr_assert_eq(p.icmp_type | p.icmp_code, 0);

	/* even a packet refused at once keeps dir and wire_len */
	memset(&p, 0xff, sizeof(p));
	assert_reason(els_decode(NULL, 0, 1500, ELS_DIR_OUT, &p), "truncated");
	cr_assert_eq(p.dir, ELS_DIR_OUT);
	cr_assert_eq(p.wire_len, 1500);
	cr_assert_eq(p.family, ELS_AF_NONE);
	cr_assert_eq(p.flags, 0);
}

Test(decode, headers_only_capture_is_fine_when_wire_len_covers_it)
{
	uint8_t b[2048];
	struct els_pkt p;
	size_t n = v4(b, 6, tcp(b + 20, 1, 80, ELS_TCP_ACK, 5) + 1400);

	/* only 40 of 1440 bytes copied */
	assert_reason(dec(b, 40, n, ELS_DIR_IN, &p), "none");
	cr_assert_eq(p.wire_len, 1440);
	cr_assert_eq(p.dport, 80);
	assert_reason(dec(b, 40, n - 1, ELS_DIR_IN, &p), "bad_ip_length");
	cr_assert_arr_eq(p.src.b, src4, 4, "addresses survive a decode failure");
	cr_assert_eq(p.family, ELS_AF_INET);
	cr_assert_eq(p.flags & ELS_PKT_HAS_PORTS, 0);

	n = v6(b, 17, udp(b + 40, 53, 5353, 1200));
	assert_reason(dec(b, 48, n, ELS_DIR_IN, &p), "none");
	cr_assert_eq(p.sport, 53);
	assert_reason(dec(b, 48, n - 1, ELS_DIR_IN, &p), "bad_ip_length");
	cr_assert_arr_eq(p.dst.b, dst6, 16);

	/* TCP options need not be captured, only claimed */
	n = v4(b, 6, tcp(b + 20, 1, 80, ELS_TCP_SYN, 15));
	assert_reason(dec(b, 40, n, ELS_DIR_IN, &p), "none");
	cr_assert_eq(p.tcp_flags, ELS_TCP_SYN);
}

Test(decode, wire_len_below_caplen_is_taken_as_caplen)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v4(b, 17, udp(b + 20, 7, 9, 4));

	assert_reason(dec(b, n, 0, ELS_DIR_IN, &p), "none");
	cr_assert_eq(p.wire_len, n);
}

Test(decode, padding_past_total_length_is_not_l4)
{
	uint8_t b[128];
	struct els_pkt p;

	/* 10 bytes of TCP claimed, 30 more captured (e.g. Ethernet padding in a replay) */
	tcp(b + 20, 1, 2, ELS_TCP_SYN, 5);
	v4(b, 6, 10);
	assert_reason(dec(b, 60, 60, ELS_DIR_IN, &p), "truncated_l4");
	cr_assert_eq(p.flags & ELS_PKT_HAS_PORTS, 0);

	tcp(b + 40, 1, 2, ELS_TCP_SYN, 5);
	v6(b, 6, 10);
	assert_reason(dec(b, 80, 80, ELS_DIR_IN, &p), "truncated_l4");

	/* UDP shorter than the padded capture is fine */
	udp(b + 20, 1, 2, 0);
	v4(b, 17, 8);
	memset(b + 28, 0, 18);
	assert_reason(dec(b, 46, 46, ELS_DIR_IN, &p), "none");
	cr_assert_eq(p.dport, 2);
}

/* --- every decoder reason --- */

Test(decode, truncated)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v4(b, 6, tcp(b + 20, 1, 2, 0, 5));

	assert_reason(dec(b, 0, n, ELS_DIR_IN, &p), "truncated");
	assert_reason(dec(b, 19, n, ELS_DIR_IN, &p), "truncated");
	cr_assert_eq(p.family, ELS_AF_INET);
	n = v6(b, 6, tcp(b + 40, 1, 2, 0, 5));
	assert_reason(dec(b, 39, n, ELS_DIR_IN, &p), "truncated");
	cr_assert_eq(p.family, ELS_AF_INET6);

	/* IPv4 options cut by the capture, the packet itself fine */
	v4(b, 17, 4 + udp(b + 24, 1, 2, 0));
	b[0] = 0x46;
	assert_reason(dec(b, 22, 32, ELS_DIR_IN, &p), "truncated");
	cr_assert_arr_eq(p.dst.b, dst4, 4);
}

Test(decode, bad_version)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v4(b, 6, tcp(b + 20, 1, 2, 0, 5));

	b[0] = 0x55;
	assert_reason(dec_full(b, n, &p), "bad_ip_version");
	cr_assert_eq(p.family, ELS_AF_NONE);
	b[0] = 0x05;
	assert_reason(dec_full(b, n, &p), "bad_ip_version");
	b[0] = 0x60;
	assert_reason(dec(b, 1, 1, ELS_DIR_IN, &p), "truncated");
	b[0] = 0xf0;
	assert_reason(dec(b, 1, 1, ELS_DIR_IN, &p), "bad_ip_version");
}

Test(decode, bad_ihl)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v4(b, 6, tcp(b + 20, 1, 2, 0, 5));

	b[0] = 0x44;
	assert_reason(dec_full(b, n, &p), "bad_ihl");
	b[0] = 0x40;
	assert_reason(dec_full(b, n, &p), "bad_ihl");
	/* 60-byte header claimed in a 40-byte packet that was captured whole */
	b[0] = 0x4f;
	assert_reason(dec_full(b, n, &p), "bad_ihl");
	cr_assert_arr_eq(p.src.b, src4, 4);
}

Test(decode, bad_ip_length)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v4(b, 6, tcp(b + 20, 1, 2, 0, 5));

	put16(b + 2, 19);
	assert_reason(dec_full(b, n, &p), "bad_ip_length");
	put16(b + 2, 0);
	assert_reason(dec_full(b, n, &p), "bad_ip_length");
	b[0] = 0x46; /* 24-byte header, total length 22 */
	put16(b + 2, 22);
	assert_reason(dec_full(b, n, &p), "bad_ip_length");
	b[0] = 0x45;
	put16(b + 2, (unsigned)n + 1); /* longer than the wire */
	assert_reason(dec_full(b, n, &p), "bad_ip_length");

	n = v6(b, 6, tcp(b + 40, 1, 2, 0, 5));
	put16(b + 4, 21);
	assert_reason(dec_full(b, n, &p), "bad_ip_length");
	cr_assert_arr_eq(p.src.b, src6, 16);
}

Test(decode, v6_jumbo_payload_is_bad_ip_length)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n;

	/* hop-by-hop with a Jumbo Payload option (type 0xc2), payload length 0 */
	ext(b + 40, 6, 0);
	b[42] = 0xc2;
	b[43] = 4;
	b[44] = 0;
	b[45] = 1;
	b[46] = 0;
	b[47] = 28;
	tcp(b + 48, 1, 2, 0, 5);
	n = v6(b, 0, 28);
	put16(b + 4, 0);
	assert_reason(dec_full(b, n, &p), "bad_ip_length");

	/* payload length 0 with nothing to follow is a legal empty packet */
	n = v6(b, 59, 0);
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.proto, 59);
}

Test(decode, truncated_l4)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n;

	tcp(b + 20, 1, 2, ELS_TCP_SYN, 5);
	n = v4(b, 6, 19);
	assert_reason(dec_full(b, n, &p), "truncated_l4");
	cr_assert_eq(p.flags, 0);
	cr_assert_eq(p.sport | p.dport, 0);
	udp(b + 20, 1, 2, 0);
	n = v4(b, 17, 7);
	assert_reason(dec_full(b, n, &p), "truncated_l4");
	icmp(b + 20, 8, 0, 1);
	n = v4(b, 1, 7);
	assert_reason(dec_full(b, n, &p), "truncated_l4");
	cr_assert_eq(p.flags, 0);

	/* claimed whole, capture cut inside the TCP header */
	n = v4(b, 6, tcp(b + 20, 1, 2, 0, 5) + 100);
	assert_reason(dec(b, 39, n, ELS_DIR_IN, &p), "truncated_l4");

	n = v6(b, 58, 4);
	assert_reason(dec_full(b, n, &p), "truncated_l4");
	n = v6(b, 17, 0);
	assert_reason(dec_full(b, n, &p), "truncated_l4");
}

Test(decode, bad_tcp_data_offset)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v4(b, 6, tcp(b + 20, 1, 2, ELS_TCP_SYN, 4));

	assert_reason(dec_full(b, n, &p), "bad_tcp_data_offset");
	cr_assert_eq(p.flags & ELS_PKT_HAS_PORTS, 0);
	b[32] = 0x00;
	assert_reason(dec_full(b, n, &p), "bad_tcp_data_offset");
	b[32] = 0x60; /* 24 bytes of header in a 20-byte segment */
	assert_reason(dec_full(b, n, &p), "bad_tcp_data_offset");

	n = v6(b, 6, tcp(b + 40, 1, 2, ELS_TCP_SYN, 5));
	b[52] = 0xf0;
	assert_reason(dec_full(b, n, &p), "bad_tcp_data_offset");
	b[52] = 0x50;
	assert_reason(dec_full(b, n, &p), "none");
}

Test(decode, bad_udp_length)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v4(b, 17, udp(b + 20, 1, 2, 4));

	put16(b + 24, 7);
	assert_reason(dec_full(b, n, &p), "bad_udp_length");
	cr_assert_eq(p.flags, 0);
	put16(b + 24, 0);
	assert_reason(dec_full(b, n, &p), "bad_udp_length");
	put16(b + 24, 13); /* longer than the IP payload */
	assert_reason(dec_full(b, n, &p), "bad_udp_length");
	put16(b + 24, 12);
	assert_reason(dec_full(b, n, &p), "none");
	put16(b + 24, 8); /* shorter than the IP payload: trailing bytes, accepted */
	assert_reason(dec_full(b, n, &p), "none");

	n = v6(b, 17, udp(b + 40, 1, 2, 0));
	put16(b + 44, 3);
	assert_reason(dec_full(b, n, &p), "bad_udp_length");
}

Test(decode, unknown_protocol)
{
	static const uint8_t protos4[] = {
	    132 /* SCTP */, 47 /* GRE */, 50 /* ESP */, 51 /* AH */, 0, 43, 4 /* IPIP */, 255};
	uint8_t b[128];
	struct els_pkt p;
	size_t n;

	for (size_t i = 0; i < sizeof(protos4); i++) {
		memset(b + 20, 0x11, 32);
		n = v4(b, protos4[i], 32);
		assert_reason(dec_full(b, n, &p), "unknown_protocol");
		cr_assert_eq(p.proto, protos4[i]);
		cr_assert_arr_eq(p.src.b, src4, 4);
		cr_assert_eq(p.flags, 0);
	}
	memset(b + 40, 0x11, 32);
	n = v6(b, 132, 32);
	assert_reason(dec_full(b, n, &p), "unknown_protocol");
	cr_assert_eq(p.proto, 132);
	cr_assert_arr_eq(p.dst.b, dst6, 16);
	n = v6(b, 50, 32); /* ESP ends the walk */
	assert_reason(dec_full(b, n, &p), "unknown_protocol");
	cr_assert_eq(p.proto, 50);

	memset(b + 48, 0x11, 32);
	n = v6(b, 60, ext(b + 40, 50, 0) + 32);
	assert_reason(dec_full(b, n, &p), "unknown_protocol");
	cr_assert_eq(p.proto, 50);
	cr_assert_eq(p.ext_count, 1);
}

/* --- IPv4 fragments --- */

Test(decode, v4_first_fragment)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n = v4(b, 6, tcp(b + 20, 1234, 80, ELS_TCP_ACK, 5) + 20);

	put16(b + 6, 0x2000); /* MF */
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.flags, ELS_PKT_FRAGMENT | ELS_PKT_HAS_PORTS);
	cr_assert_eq(p.frag_id, 0x1234);
	cr_assert_eq(p.frag_off, 0);
	cr_assert_eq(p.dport, 80);

	/* a first fragment's UDP length covers the whole datagram */
	n = v4(b, 17, udp(b + 20, 53, 53, 8));
	put16(b + 24, 3000);
	put16(b + 6, 0x2000);
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.flags, ELS_PKT_FRAGMENT | ELS_PKT_HAS_PORTS);
	put16(b + 6, 0);
	assert_reason(dec_full(b, n, &p), "bad_udp_length");

	/* DF alone is not a fragment */
	n = v4(b, 17, udp(b + 20, 53, 53, 8));
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.flags, ELS_PKT_HAS_PORTS);
	cr_assert_eq(p.frag_id, 0);
}

Test(decode, v4_later_fragments_never_have_ports)
{
	static const uint8_t protos[] = {6, 17, 1, 58, 132};
	uint8_t b[128];
	struct els_pkt p;

	for (size_t i = 0; i < sizeof(protos); i++) {
		for (int mf = 0; mf <= 1; mf++) {
			/* payload that would decode perfectly well as a header */
			size_t n = v4(b, protos[i], tcp(b + 20, 1, 2, ELS_TCP_SYN, 5));

			put16(b + 6, (mf ? 0x2000 : 0) | 185); /* offset 1480 */
			memset(&p, 0xff, sizeof(p));
			assert_reason(dec_full(b, n, &p), "none");
			cr_assert_eq(p.flags, ELS_PKT_FRAGMENT | ELS_PKT_LATER_FRAG);
			cr_assert_eq(p.frag_off, 1480);
			cr_assert_eq(p.frag_id, 0x1234);
			cr_assert_eq(p.proto, protos[i]);
			cr_assert_eq(p.sport | p.dport | p.icmp_id, 0);
			cr_assert_eq(p.tcp_flags | p.icmp_type | p.icmp_code, 0);
		}
	}
	/* a later fragment with no payload captured is still just a later fragment */
	size_t n = v4(b, 6, 0);
	put16(b + 6, 0x1fff);
	assert_reason(dec(b, 20, 1500, ELS_DIR_IN, &p), "none");
	cr_assert_eq(p.frag_off, 0x1fff * 8);
	cr_assert_eq(n, 20);
}

Test(decode, v4_tiny_fragment)
{
	uint8_t b[128];
	struct els_pkt p;
	size_t n;

	/* 8 bytes of TCP claimed, more captured: judged on the claim */
	tcp(b + 20, 1, 2, ELS_TCP_SYN, 5);
	n = v4(b, 6, 8);
	put16(b + 6, 0x2000);
	assert_reason(dec(b, n + 32, n + 32, ELS_DIR_IN, &p), "tiny_fragment");
	cr_assert_eq(p.flags, ELS_PKT_FRAGMENT);
	cr_assert_eq(p.sport | p.dport, 0);
	n = v4(b, 6, 19);
	put16(b + 6, 0x2000);
	assert_reason(dec_full(b, n, &p), "tiny_fragment");

	udp(b + 20, 1, 2, 0);
	n = v4(b, 17, 4);
	put16(b + 6, 0x2000);
	assert_reason(dec_full(b, n, &p), "tiny_fragment");
	icmp(b + 20, 8, 0, 1);
	n = v4(b, 1, 4);
	put16(b + 6, 0x2000);
	assert_reason(dec_full(b, n, &p), "tiny_fragment");

	/* enough claimed, but the capture stopped short: a truncation, not an attack */
	n = v4(b, 6, tcp(b + 20, 1, 2, ELS_TCP_SYN, 5) + 100);
	put16(b + 6, 0x2000);
	assert_reason(dec(b, 30, n, ELS_DIR_IN, &p), "truncated_l4");

	/* RFC 1858: TCP at offset 8 could rewrite the flags */
	n = v4(b, 6, 32);
	put16(b + 6, 1);
	assert_reason(dec_full(b, n, &p), "tiny_fragment");
	cr_assert_eq(p.flags, ELS_PKT_FRAGMENT | ELS_PKT_LATER_FRAG);
	n = v4(b, 17, 32);
	put16(b + 6, 1);
	assert_reason(dec_full(b, n, &p), "none");
	n = v4(b, 6, 32);
	put16(b + 6, 2);
	assert_reason(dec_full(b, n, &p), "none");
}

/* --- IPv6 extension headers and fragments --- */

Test(decode, v6_every_extension_header)
{
	uint8_t b[512];
	struct els_pkt p;
	size_t off = 40, n;

	off += ext(b + off, 60, 0);			/* hop-by-hop -> dst opts */
	off += ext(b + off, 43, 1);			/* dst opts -> routing */
	off += ext(b + off, 44, 2);			/* routing -> fragment */
	off += frag6(b + off, 51, 0, true, 0xdeadbeef); /* fragment -> AH */
	off += ah(b + off, 135, 4);			/* AH -> mobility */
	off += ext(b + off, 139, 0);			/* mobility -> HIP */
	off += ext(b + off, 140, 0);			/* HIP -> shim6 */
	off += ext(b + off, 60, 1);			/* shim6 -> dst opts */
	off += ext(b + off, 6, 0);			/* dst opts -> TCP */
	off += tcp(b + off, 3000, 4000, ELS_TCP_SYN, 5);
	n = v6(b, 0, off - 40);

	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.ext_count, 9);
	cr_assert_eq(p.proto, 6);
	cr_assert_eq(p.sport, 3000);
	cr_assert_eq(p.dport, 4000);
	cr_assert_eq(p.flags, ELS_PKT_FRAGMENT | ELS_PKT_HAS_PORTS);
	cr_assert_eq(p.frag_id, 0xdeadbeef);
	cr_assert_eq(p.frag_off, 0);
}

Test(decode, v6_single_extension_headers)
{
	static const uint8_t types[] = {0, 43, 60, 135, 139, 140, 253, 254};
	uint8_t b[256];
	struct els_pkt p;
	size_t n;

	for (size_t i = 0; i < sizeof(types); i++) {
		size_t e = ext(b + 40, 17, 2);

		n = v6(b, types[i], e + udp(b + 40 + e, 10, 20, 3));
		assert_reason(dec_full(b, n, &p), "none");
		cr_assert_eq(p.ext_count, 1, "type %u", types[i]);
		cr_assert_eq(p.dport, 20);
	}
	/* AH counts its length in 4-octet units */
	n = ah(b + 40, 58, 1);
	cr_assert_eq(n, 12);
	n = v6(b, 51, n + icmp(b + 40 + n, 128, 0, 42));
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.icmp_id, 42);
	cr_assert_eq(p.ext_count, 1);

	/* no next header after an extension */
	n = v6(b, 60, ext(b + 40, 59, 0) + 16);
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.proto, 59);
	cr_assert_eq(p.flags, 0);
	cr_assert_eq(p.ext_count, 1);
}

Test(decode, v6_fragments)
{
	uint8_t b[256];
	struct els_pkt p;
	size_t n, f;

	/* later fragment: payload that looks like a TCP header is never read as one */
	f = frag6(b + 40, 6, 1448, true, 0x01020304);
	n = v6(b, 44, f + tcp(b + 48, 1, 2, ELS_TCP_SYN, 5));
	memset(&p, 0xff, sizeof(p));
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.flags, ELS_PKT_FRAGMENT | ELS_PKT_LATER_FRAG);
	cr_assert_eq(p.frag_off, 1448);
	cr_assert_eq(p.frag_id, 0x01020304);
	cr_assert_eq(p.proto, 6);
	cr_assert_eq(p.ext_count, 1);
	cr_assert_eq(p.sport | p.dport | p.tcp_flags, 0);

	/* last fragment (M clear), behind a hop-by-hop header */
	f = ext(b + 40, 44, 0);
	f += frag6(b + 48, 17, 2896, false, 7);
	n = v6(b, 0, f + udp(b + 40 + f, 1, 2, 0));
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.flags, ELS_PKT_FRAGMENT | ELS_PKT_LATER_FRAG);
	cr_assert_eq(p.ext_count, 2);
	cr_assert_eq(p.proto, 17);
	cr_assert_eq(p.sport | p.dport, 0);

	/* atomic fragment (RFC 6946): a whole packet */
	f = frag6(b + 40, 17, 0, false, 9);
	n = v6(b, 44, f + udp(b + 48, 5, 6, 0));
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.flags, ELS_PKT_HAS_PORTS);
	cr_assert_eq(p.frag_id, 0);
	cr_assert_eq(p.dport, 6);

	/* RFC 1858 offset-8 TCP fragment */
	f = frag6(b + 40, 6, 8, true, 9);
	n = v6(b, 44, f + 32);
	assert_reason(dec_full(b, n, &p), "tiny_fragment");
	cr_assert_eq(p.flags & ELS_PKT_HAS_PORTS, 0);
}

Test(decode, v6_tiny_fragment)
{
	uint8_t b[256];
	struct els_pkt p;
	size_t n, f;

	f = frag6(b + 40, 6, 0, true, 1);
	tcp(b + 48, 1, 2, ELS_TCP_SYN, 5);
	n = v6(b, 44, f + 12);
	assert_reason(dec(b, n + 20, n + 20, ELS_DIR_IN, &p), "ipv6_first_fragment_incomplete");
	cr_assert_eq(p.flags, ELS_PKT_FRAGMENT);

	/* RFC 7112: the rest of the chain runs past the first fragment */
	f = frag6(b + 40, 60, 0, true, 1);
	ext(b + 48, 6, 3); /* 32 bytes */
	n = v6(b, 44, f + 16);
	assert_reason(dec(b, 100, 100, ELS_DIR_IN, &p), "ipv6_first_fragment_incomplete");

	/* the same chain in a whole packet is a bad extension header */
	f = frag6(b + 40, 60, 0, false, 1);
	n = v6(b, 44, f + 16);
	assert_reason(dec(b, 100, 100, ELS_DIR_IN, &p), "bad_ipv6_ext_header");
}

Test(decode, bad_ipv6_ext_header)
{
	uint8_t b[256];
	struct els_pkt p;
	size_t n, e;

	/* routing header of 24 bytes in a 16-byte payload */
	e = ext(b + 40, 6, 2);
	n = v6(b, 43, 16);
	assert_reason(dec(b, 40 + e, 40 + e, ELS_DIR_IN, &p), "bad_ipv6_ext_header");
	cr_assert_arr_eq(p.src.b, src6, 16);
	cr_assert_eq(p.ext_count, 0);
	cr_assert_eq(n, 56);

	/* not even the length byte fits */
	n = v6(b, 60, 1);
	assert_reason(dec_full(b, n, &p), "bad_ipv6_ext_header");
	n = v6(b, 44, 7); /* fragment header needs 8 */
	assert_reason(dec_full(b, n, &p), "bad_ipv6_ext_header");

	/* hop-by-hop anywhere but first */
	e = ext(b + 40, 0, 0);
	e += ext(b + 48, 6, 0);
	n = v6(b, 60, e + tcp(b + 56, 1, 2, 0, 5));
	assert_reason(dec_full(b, n, &p), "ipv6_hbh_not_first");
	cr_assert_eq(p.ext_count, 1);

	/* two fragment headers */
	e = frag6(b + 40, 44, 0, true, 1);
	e += frag6(b + 48, 6, 0, true, 2);
	n = v6(b, 44, e + tcp(b + 56, 1, 2, 0, 5));
	assert_reason(dec_full(b, n, &p), "bad_ipv6_ext_header");

	/* claimed whole, cut by the capture: a truncation */
	e = ext(b + 40, 6, 3);
	n = v6(b, 43, e + tcp(b + 40 + e, 1, 2, 0, 5));
	assert_reason(dec(b, 60, n, ELS_DIR_IN, &p), "truncated");
	assert_reason(dec(b, 41, n, ELS_DIR_IN, &p), "truncated");
}

Test(decode, ipv6_ext_chain_too_long)
{
	uint8_t b[512];
	struct els_pkt p;
	size_t off = 40, n;

	for (int i = 0; i < 16; i++)
		off += ext(b + off, i == 15 ? 17 : 60, 0);
	off += udp(b + off, 1, 2, 0);
	n = v6(b, 60, off - 40);
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.ext_count, 16);
	cr_assert_eq(p.dport, 2);

	off = 40;
	for (int i = 0; i < 17; i++)
		off += ext(b + off, i == 16 ? 17 : 60, 0);
	off += udp(b + off, 1, 2, 0);
	n = v6(b, 60, off - 40);
	assert_reason(dec_full(b, n, &p), "ipv6_ext_chain_too_long");
	cr_assert_eq(p.flags & ELS_PKT_HAS_PORTS, 0);
}

/* RFC 8200 4.1: each extension header type once, Destination Options twice. A repeat still
 * decodes (the anomaly handler decides), with ELS_PKT_EXT_REPEAT set. */
static unsigned chain(const uint8_t *types, int n, struct els_pkt *p)
{
	uint8_t b[512];
	size_t off = 40;

	for (int i = 0; i < n; i++)
		off += ext(b + off, i + 1 < n ? types[i + 1] : 17, 0);
	off += udp(b + off, 1, 2, 0);
	return dec_full(b, v6(b, types[0], off - 40), p);
}

Test(decode, ipv6_ext_repeated)
{
	struct els_pkt p;
	static const uint8_t ok[] = {0, 60, 43, 60}, two_rt[] = {43, 60, 43},
			     three_dst[] = {60, 43, 60, 60}, two_mh[] = {135, 135};

	assert_reason(chain(ok, 4, &p), "none");
	cr_assert_eq(p.flags & ELS_PKT_EXT_REPEAT, 0, "hop, dst, routing, dst is the RFC's order");
	cr_assert_eq(p.dport, 2);
	assert_reason(chain(two_rt, 3, &p), "none");
	cr_assert_neq(p.flags & ELS_PKT_EXT_REPEAT, 0, "two routing headers");
	cr_assert_eq(p.dport, 2, "still decoded to the ports");
	assert_reason(chain(three_dst, 4, &p), "none");
	cr_assert_neq(p.flags & ELS_PKT_EXT_REPEAT, 0, "three destination options headers");
	assert_reason(chain(two_mh, 2, &p), "none");
	cr_assert_neq(p.flags & ELS_PKT_EXT_REPEAT, 0, "two mobility headers");
}

/* --- each truncation point of valid packets --- */

struct sample {
	const char *name;
	uint8_t b[256];
	size_t len;
	size_t need; /* bytes the decoder must see to succeed */
};

static void samples(struct sample *s, size_t *count)
{
	size_t i = 0, off;

	s[i].name = "v4 tcp with options";
	s[i].len = v4(s[i].b, 6, tcp(s[i].b + 20, 1, 2, ELS_TCP_SYN, 10) + 5);
	s[i++].need = 40;

	s[i].name = "v4 with ip options, udp";
	off = udp(s[i].b + 28, 3, 4, 6);
	s[i].len = v4(s[i].b, 17, off + 8);
	s[i].b[0] = 0x47;
	memset(s[i].b + 20, 1, 8);
	s[i++].need = 36;

	s[i].name = "v4 icmp echo";
	s[i].len = v4(s[i].b, 1, icmp(s[i].b + 20, 8, 0, 1) + 56);
	s[i++].need = 28;

	s[i].name = "v4 later fragment";
	s[i].len = v4(s[i].b, 17, 64);
	put16(s[i].b + 6, 0x2000 | 10);
	s[i++].need = 20;

	s[i].name = "v4 gre";
	s[i].len = v4(s[i].b, 47, 24);
	s[i++].need = 0; /* never none */

	s[i].name = "v6 full chain tcp";
	off = 40;
	off += ext(s[i].b + off, 43, 0);
	off += ext(s[i].b + off, 44, 1);
	off += frag6(s[i].b + off, 51, 0, true, 5);
	off += ah(s[i].b + off, 60, 2);
	off += ext(s[i].b + off, 6, 0);
	off += tcp(s[i].b + off, 5, 6, ELS_TCP_SYN, 6);
	s[i].len = v6(s[i].b, 0, off - 40);
	s[i++].need = off - 4;

	s[i].name = "v6 neighbour solicitation";
	s[i].len = v6(s[i].b, 58, icmp(s[i].b + 40, 135, 0, 0) + 16);
	s[i++].need = 48;

	s[i].name = "v6 later fragment";
	off = 40 + frag6(s[i].b + 40, 17, 1232, true, 77);
	s[i].len = v6(s[i].b, 44, off - 40 + 30);
	s[i++].need = 48;

	s[i].name = "v6 no next header";
	s[i].len = v6(s[i].b, 60, ext(s[i].b + 40, 59, 1));
	s[i++].need = 56;
	*count = i;
}

Test(decode, every_truncation_point)
{
	static struct sample s[16];
	size_t count;

	samples(s, &count);
	for (size_t i = 0; i < count; i++) {
		struct els_pkt full, p;
		unsigned fr = dec(s[i].b, s[i].len, s[i].len, ELS_DIR_OUT, &full);

		if (!s[i].need) {
			cr_assert_neq(fr, ELS_R_NONE, "%s", s[i].name);
		} else {
			assert_reason(fr, "none");
			cr_assert_leq(s[i].need, s[i].len);
		}
		for (size_t cap = 0; cap <= s[i].len; cap++) {
			/* headers-only capture: the wire carried the whole packet */
			unsigned r = dec(s[i].b, cap, s[i].len, ELS_DIR_OUT, &p);

			cr_assert_eq(p.dir, ELS_DIR_OUT);
			cr_assert_eq(p.wire_len, s[i].len);
			if (s[i].need && cap >= s[i].need) {
				cr_assert_eq(r, ELS_R_NONE, "%s cap %zu: %s", s[i].name, cap,
					     els_reason_name(r));
				cr_assert_eq(memcmp(&p, &full, sizeof(p)), 0, "%s cap %zu",
					     s[i].name, cap);
			} else if (s[i].need) {
				cr_assert(r == ELS_R_TRUNCATED || r == ELS_R_TRUNCATED_L4,
					  "%s cap %zu: %s", s[i].name, cap, els_reason_name(r));
				cr_assert_eq(p.flags & (ELS_PKT_HAS_PORTS | ELS_PKT_HAS_ICMP), 0);
			} else {
				cr_assert(r == fr || r == ELS_R_TRUNCATED, "%s cap %zu: %s",
					  s[i].name, cap, els_reason_name(r));
			}
			/* the packet really was cut: its own length now exceeds the wire */
			r = dec(s[i].b, cap, cap, ELS_DIR_IN, &p);
			if (cap < s[i].len)
				cr_assert(r == ELS_R_TRUNCATED || r == ELS_R_BAD_IP_LENGTH ||
					      r == ELS_R_BAD_IHL,
					  "%s cap %zu wire %zu: %s", s[i].name, cap, cap,
					  els_reason_name(r));
			cr_assert_eq(p.flags & ELS_PKT_HAS_PORTS && p.flags & ELS_PKT_LATER_FRAG,
				     0);
		}
	}
}

/* --- what RFCs say to discard: flagged in pkt->std for the anomaly handler --- */

/* A routing header of 8 bytes with its type and segments left. */
static size_t rh(uint8_t *h, uint8_t nh, uint8_t type, uint8_t segments_left)
{
	memset(h, 0, 8);
	h[0] = nh;
	h[2] = type;
	h[3] = segments_left;
	return 8;
}

Test(decode, routing_header_types)
{
	static const struct {
		uint8_t type, sl, std;
	} cases[] = {
	    {0, 1, ELS_STD_RH0},	 /* RFC 5095 */
	    {0, 0, ELS_STD_RH0},	 /* deprecated whatever is left */
	    {1, 2, ELS_STD_RH_UNKNOWN},	 /* Nimrod, long gone */
	    {200, 1, ELS_STD_RH_UNKNOWN}, /* RFC 8200 4.4: unknown with segments left */
	    {200, 0, 0},		 /* ... ignored when none are left */
	    {2, 1, 0},			 /* Mobile IPv6 */
	    {3, 2, 0},			 /* RPL */
	    {4, 3, 0},			 /* segment routing */
	};
	uint8_t b[256];
	struct els_pkt p;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t e = rh(b + 40, 6, cases[i].type, cases[i].sl);
		size_t n = v6(b, 43, e + tcp(b + 48, 1000, 443, ELS_TCP_SYN, 5));
		assert_reason(dec_full(b, n, &p), "none");
		cr_assert_eq(p.std, cases[i].std, "type %u sl %u: std %#x", cases[i].type,
			     cases[i].sl, p.std);
		cr_assert_eq(p.dport, 443, "the packet still decodes: the handler decides");
	}
}

Test(decode, fragment_lengths_v6)
{
	uint8_t b[256];
	struct els_pkt p;
	size_t n, f;

	/* more to follow, 13 bytes of data: not a multiple of 8 */
	f = frag6(b + 40, 17, 0, true, 1);
	n = v6(b, 44, f + udp(b + 48, 1, 2, 5));
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.std, ELS_STD_FRAG_LENGTH);
	/* the same as the last fragment is fine; 16 bytes with more to follow too */
	f = frag6(b + 40, 17, 8, false, 1);
	n = v6(b, 44, f + 13);
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.std, 0);
	f = frag6(b + 40, 17, 0, true, 1);
	n = v6(b, 44, f + udp(b + 48, 1, 2, 8));
	dec_full(b, n, &p);
	cr_assert_eq(p.std, 0);
	/* offset 65528 + 16 bytes: past 65535 once reassembled */
	f = frag6(b + 40, 17, 65528, false, 1);
	memset(b + 48, 0, 16);
	n = v6(b, 44, f + 16);
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.std, ELS_STD_FRAG_TOO_BIG);
	cr_assert_eq(p.hop_limit, 64);
}

Test(decode, fragment_lengths_v4)
{
	uint8_t b[256];
	struct els_pkt p;
	size_t n;

	/* first fragment, MF, 13 bytes of UDP */
	n = v4(b, 17, udp(b + 20, 1, 2, 5));
	put16(b + 6, 0x2000);
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.std, ELS_STD_FRAG_LENGTH);
	/* ping of death: offset 65528 with 40 bytes */
	memset(b + 20, 0, 40);
	n = v4(b, 17, 40);
	put16(b + 6, 0x1fff);
	assert_reason(dec_full(b, n, &p), "none");
	cr_assert_eq(p.std, ELS_STD_FRAG_TOO_BIG);
	cr_assert_eq(p.frag_off, 65528);
	/* an unfragmented packet of odd length is no fragment at all */
	n = v4(b, 17, udp(b + 20, 1, 2, 5));
	dec_full(b, n, &p);
	cr_assert_eq(p.std, 0);
	cr_assert_eq(p.hop_limit, 64);
}
