/* The decoded view of one packet's headers. Filled by els_decode() (els/decode.h); read by
 * every handler. */
#ifndef ELS_PKT_H
#define ELS_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum els_family { ELS_AF_NONE = 0, ELS_AF_INET = 4, ELS_AF_INET6 = 6 };

/* Direction as seen from this host: IN = addressed to it, OUT = sent by it. */
enum els_dir { ELS_DIR_IN = 0, ELS_DIR_OUT = 1 };

/* IPv4 lives in b[0..3] with the rest zero, so one type serves both families. */
struct els_addr {
	uint8_t b[16];
};

/* pkt->flags */
#define ELS_PKT_FRAGMENT 0x01u  /* part of a fragmented datagram (first or later) */
#define ELS_PKT_LATER_FRAG 0x02u /* a non-first fragment: no L4 header, no ports */
#define ELS_PKT_HAS_PORTS 0x04u /* TCP or UDP header decoded: sport/dport are valid */
#define ELS_PKT_HAS_ICMP 0x08u  /* ICMP/ICMPv6 header decoded: icmp_type/code valid */
#define ELS_PKT_ICMP_ECHO 0x10u /* echo request/reply: icmp_id valid */
/* An IPv6 extension header type occurs more often than RFC 8200 4.1 allows (each once,
 * Destination Options twice). The packet still decodes ("should", not "must"): the anomaly
 * handler decides what to do with it. */
#define ELS_PKT_EXT_REPEAT 0x20u
/* Sent by a process's socket: NFQUEUE reported its owner (NFQA_UID). The kernel's own packets
 * (a listener's SYN-ACK, SYNPROXY's, a RST) have none; a raw socket's forgery has one. Set by
 * the queue, never by decoding. */
#define ELS_PKT_FROM_SOCKET 0x40u

/* pkt->std: what RFCs say a receiver discards, decoded but left to the anomaly handler, so
 * that it can be observed or turned off (docs/anomaly-rfc-audit.md). */
#define ELS_STD_RH0	     0x01u /* IPv6 routing header type 0 (RFC 5095) */
#define ELS_STD_RH_UNKNOWN   0x02u /* routing type a host does not know, segments left > 0
				      (RFC 8200 4.4) */
#define ELS_STD_FRAG_LENGTH  0x04u /* a fragment with more to follow whose data is not a
				      multiple of 8 bytes (RFC 8200 4.5, RFC 791) */
#define ELS_STD_FRAG_TOO_BIG 0x08u /* offset + length past the 65535-byte maximum
				      (RFC 8200 4.5, RFC 791: "ping of death") */

/* TCP flag bits as on the wire */
#define ELS_TCP_FIN 0x01u
#define ELS_TCP_SYN 0x02u
#define ELS_TCP_RST 0x04u
#define ELS_TCP_PSH 0x08u
#define ELS_TCP_ACK 0x10u
#define ELS_TCP_URG 0x20u

struct els_pkt {
	struct els_addr src, dst;
	uint32_t wire_len;  /* length of the whole packet on the wire (may exceed the capture) */
	uint32_t frag_id;   /* IPv4 id or IPv6 fragment header id, when ELS_PKT_FRAGMENT */
	uint16_t frag_off;  /* fragment offset in bytes */
	uint16_t sport, dport; /* host order; valid only with ELS_PKT_HAS_PORTS */
	uint16_t icmp_id;      /* host order; valid only with ELS_PKT_ICMP_ECHO */
	uint16_t reason;    /* enum els_reason: ELS_R_NONE if every header decoded cleanly */
	uint8_t family;     /* enum els_family */
	uint8_t dir;        /* enum els_dir, from the NFQUEUE hook or the replay's local set */
	uint8_t proto;      /* L4 protocol number after IPv6 extension headers */
	uint8_t flags;      /* ELS_PKT_* */
	uint8_t tcp_flags;  /* ELS_TCP_*, valid when proto is TCP and ELS_PKT_HAS_PORTS */
	uint8_t icmp_type, icmp_code;
	uint8_t ext_count;  /* IPv6 extension headers walked */
	uint8_t hop_limit;  /* IPv4 TTL or IPv6 hop limit */
	uint8_t std;        /* ELS_STD_* */
};

/* "tcp", "udp", "icmp", "icmpv6", or the number written into buf (ELS_PROTO_STRLEN bytes).
 * These are the names the monitor file and the config use. */
#define ELS_PROTO_STRLEN 4
const char *els_proto_name(unsigned proto, char buf[ELS_PROTO_STRLEN]);

static inline const struct els_addr *els_pkt_local(const struct els_pkt *p)
{
	return p->dir == ELS_DIR_IN ? &p->dst : &p->src;
}
static inline const struct els_addr *els_pkt_remote(const struct els_pkt *p)
{
	return p->dir == ELS_DIR_IN ? &p->src : &p->dst;
}
static inline uint16_t els_pkt_local_port(const struct els_pkt *p)
{
	return p->dir == ELS_DIR_IN ? p->dport : p->sport;
}
static inline uint16_t els_pkt_remote_port(const struct els_pkt *p)
{
	return p->dir == ELS_DIR_IN ? p->sport : p->dport;
}

#endif
