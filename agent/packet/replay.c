/* pcap replay: link-layer framing -> IP packet -> els_worker_packet_decision. Flow timeouts
 * follow the capture's clock, so a replay gives the same verdicts however fast it runs. */
#include <pcap/pcap.h>
#include <stdio.h>
#include <string.h>

#include "els/chain.h"
#include "els/decode.h"
#include "replay.h"
#include "replay_print.h"

/* Records one packet can cause at most: a drop, an admit, flow ends of evicted/expired
 * flows; with a margin for the drop aggregator's flush. */
#define REPLAY_RING_RESERVE 512

/* Offset of the IP header for a link type, or -1 when the frame carries no IP. */
static long ip_offset(int dlt, const uint8_t *p, size_t len)
{
	size_t off;
	uint16_t type;

	switch (dlt) {
	case DLT_RAW:
	case DLT_IPV4:
	case DLT_IPV6:
		return 0;
	case DLT_NULL:
	case DLT_LOOP:
		return len >= 4 ? 4 : -1;
	case DLT_LINUX_SLL:
		if (len < 16)
			return -1;
		type = (uint16_t)(p[14] << 8 | p[15]);
		off = 16;
		break;
	case DLT_LINUX_SLL2:
		if (len < 20)
			return -1;
		type = (uint16_t)(p[0] << 8 | p[1]);
		off = 20;
		break;
	case DLT_EN10MB:
		if (len < 14)
			return -1;
		type = (uint16_t)(p[12] << 8 | p[13]);
		off = 14;
		/* 802.1Q / 802.1ad tags, at most two */
		for (int tags = 0; (type == 0x8100 || type == 0x88a8) && tags < 2; tags++) {
			if (len < off + 4)
				return -1;
			type = (uint16_t)(p[off + 2] << 8 | p[off + 3]);
			off += 4;
		}
		break;
	default:
		return -1;
	}
	return type == 0x0800 || type == 0x86dd ? (long)off : -1;
}

static bool is_local(const struct els_replay_opts *o, unsigned family, const struct els_addr *a)
{
	for (unsigned i = 0; i < o->nlocal; i++)
		if (els_cidr_contains(&o->local[i], family, a))
			return true;
	return false;
}

/* Inbound when the destination is ours; outbound when only the source is. *local: either is
 * (a capture where none is was judged all inbound, which replay warns about). */
static enum els_dir direction(const struct els_replay_opts *o, const uint8_t *ip, size_t len,
			      bool *local)
{
	struct els_addr src = {0}, dst = {0};
	unsigned family;

	if (len >= 20 && ip[0] >> 4 == 4) {
		family = ELS_AF_INET;
		memcpy(src.b, ip + 12, 4);
		memcpy(dst.b, ip + 16, 4);
	} else if (len >= 40 && ip[0] >> 4 == 6) {
		family = ELS_AF_INET6;
		memcpy(src.b, ip + 8, 16);
		memcpy(dst.b, ip + 24, 16);
	} else {
		*local = false;
		return ELS_DIR_IN;
	}
	*local = true;
	if (is_local(o, family, &dst))
		return ELS_DIR_IN;
	if (is_local(o, family, &src))
		return ELS_DIR_OUT;
	*local = false;
	return ELS_DIR_IN;
}

int els_replay_run(const struct els_replay_opts *o, struct els_worker *w,
		   struct els_replay_result *res)
{
	char err[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *data;
	int rc;
	pcap_t *pc = pcap_open_offline_with_tstamp_precision(o->path, PCAP_TSTAMP_PRECISION_NANO,
							     err);

	memset(res, 0, sizeof(*res));
	if (!pc) {
		fprintf(stderr, "elsd: --replay %s: %s\n", o->path, err);
		return -1;
	}
	int dlt = pcap_datalink(pc);
	if (ip_offset(dlt, (const uint8_t *)"", 0) == -1 && dlt != DLT_EN10MB &&
	    dlt != DLT_LINUX_SLL && dlt != DLT_LINUX_SLL2 && dlt != DLT_NULL && dlt != DLT_LOOP) {
		fprintf(stderr,
			"elsd: --replay %s: link type %s is not supported (use Ethernet, raw IP "
			"or Linux cooked captures)\n",
			o->path, pcap_datalink_val_to_name(dlt) ? pcap_datalink_val_to_name(dlt)
								: "?");
		pcap_close(pc);
		return -1;
	}
	els_worker_refresh(w);
	while ((rc = pcap_next_ex(pc, &h, &data)) == 1) {
		long off = ip_offset(dlt, data, h->caplen);
		/* opened with nanosecond precision: tv_usec holds nanoseconds */
		uint64_t ts = (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec;
		res->packets++;
		if (off < 0) {
			res->skipped++;
			static const struct els_pkt none; /* nothing decoded */

			if (o->verdicts)
				els_verdict_line_print(
				    o->verdicts, o->verdicts_json,
				    &(struct els_verdict_line){.n = res->packets, .ts_ns = ts,
							       .verdict = "skip",
							       .reason = "not-ip",
							       .rule_name = "",
							       .pkt = &none});
			continue;
		}
		const uint8_t *ip = data + off;
		size_t cap = h->caplen - (size_t)off;
		size_t wire = h->len > (size_t)off ? h->len - (size_t)off : cap;
		bool local;
		enum els_dir dir = direction(o, ip, cap, &local);
		res->local_matched += local;
		if (o->drain && els_ring_space(w->ring) < REPLAY_RING_RESERVE)
			o->drain(o->drain_arg);
		els_worker_tick(w, ts, ts);
		struct els_decision d;
		enum els_action a = els_worker_packet_decision(w, ip, cap, wire, dir, ts, ts, &d);
		if (a == ELS_ACCEPT)
			res->accepted++;
		else
			res->dropped++;
		/* rule_name: the one the packet's record names (for a packet of a known flow, the
		 * permit that admitted the flow, as its generation named it) */
		if (o->verdicts) {
			/* decoded again for the addresses and ports only: offline, no cost that
			 * matters (the worker's own decode is internal to the chain) */
			struct els_pkt pk;

			els_decode(ip, cap, wire, dir, &pk);
			els_verdict_line_print(
			    o->verdicts, o->verdicts_json,
			    &(struct els_verdict_line){
				.n = res->packets,
				.ts_ns = ts,
				.dir = dir == ELS_DIR_IN ? "in" : "out",
				.verdict = a == ELS_ACCEPT ? "accept" : "drop",
				.handler = els_chain_handler_name(w->pol, d.handler),
				.reason = els_reason_name(d.reason),
				.rule = d.rule,
				.rule_name = w->permit_name,
				.pkt = &pk,
			    });
		}
	}
	if (rc == -1) {
		fprintf(stderr, "elsd: --replay %s: packet %lu: %s\n", o->path, res->packets + 1,
			pcap_geterr(pc));
		pcap_close(pc);
		return -1;
	}
	pcap_close(pc);
	return 0;
}
