/* anomaly: header combinations that no working stack sends, each with its own reason and a
 * configurable action ("drop", "observe": pass but record a would_drop, "off"):
 *   tcp_null, tcp_xmas, tcp_syn_fin, tcp_syn_rst   flag sets used to fingerprint and evade
 *   land               source address = destination address (loopback addresses excepted)
 *   port_zero          TCP/UDP from or to port 0 (seeds 000/001)
 *   fragment_overlap   a fragment that overlaps one of the same datagram (teardrop, RFC 5722)
 *   ext_chain          IPv6 extension header chain longer than max_ext_headers
 *   ext_repeat         an IPv6 extension header type more often than RFC 8200 4.1 allows
 *                      (each once, Destination Options twice): a way to hide a second
 *                      routing header or to make filters and hosts read a chain differently
 * and what the standards say a receiver discards (docs/anomaly-rfc-audit.md):
 *   rh0, rh_unknown    routing header type 0 (RFC 5095); an unknown type with segments left
 *   fragment_length    a non-last fragment not a multiple of 8 bytes (RFC 8200 4.5)
 *   fragment_too_big   a fragment reaching past 65535 bytes (RFC 8200 4.5, ping of death)
 *   nd_fragmented      Neighbor Discovery in a fragment (RFC 6980)
 *   nd_hop_limit       Neighbor Discovery with a hop limit other than 255 (RFC 4861)
 *   martian_source     multicast, broadcast, IPv4-mapped or off-node loopback source
 *   martian_destination unspecified, reserved-scope multicast, mapped or loopback destination
 * More are the decoder's, and always drop, because a filter must never guess at headers it
 * cannot read: tiny first fragments that hide the L4 header (tiny_fragment, RFC 1858; for
 * IPv6 ipv6_first_fragment_incomplete, RFC 7112), a Hop-by-Hop header that is not first
 * (ipv6_hbh_not_first, RFC 8200 4.1) and chains beyond its walking limit of 16
 * (ipv6_ext_chain_too_long).
 *
 * Place it early in the chain (before the tracker) so packets of admitted flows are checked too.
 * Every detection is alerted (rate-limited per reason) through the worker's alert ring. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly_frag.h"
#include "els/handler.h"
#include "els/monitor.h"
#include "els/worker_out.h"

enum an_check {
	AN_TCP_NULL,
	AN_TCP_XMAS,
	AN_TCP_SYN_FIN,
	AN_TCP_SYN_RST,
	AN_LAND,
	AN_PORT_ZERO,
	AN_FRAG_OVERLAP,
	AN_EXT_CHAIN,
	AN_EXT_REPEAT,
	AN_RH0,
	AN_RH_UNKNOWN,
	AN_FRAG_LENGTH,
	AN_FRAG_TOO_BIG,
	AN_ND_FRAGMENTED,
	AN_ND_HOP_LIMIT,
	AN_MARTIAN_SRC,
	AN_MARTIAN_DST,
	AN__COUNT
};

static const struct {
	const char *key;
	uint16_t reason;
} checks[AN__COUNT] = {
    [AN_TCP_NULL] = {"tcp_null", ELS_R_TCP_NULL},
    [AN_TCP_XMAS] = {"tcp_xmas", ELS_R_TCP_XMAS},
    [AN_TCP_SYN_FIN] = {"tcp_syn_fin", ELS_R_TCP_SYN_FIN},
    [AN_TCP_SYN_RST] = {"tcp_syn_rst", ELS_R_TCP_SYN_RST},
    [AN_LAND] = {"land", ELS_R_LAND},
    [AN_PORT_ZERO] = {"port_zero", ELS_R_PORT_ZERO},
    [AN_FRAG_OVERLAP] = {"fragment_overlap", ELS_R_FRAGMENT_OVERLAP},
    [AN_EXT_CHAIN] = {"ext_chain", ELS_R_EXT_CHAIN_TOO_LONG},
    [AN_EXT_REPEAT] = {"ext_repeat", ELS_R_EXT_REPEATED},
    [AN_RH0] = {"rh0", ELS_R_RH0},
    [AN_RH_UNKNOWN] = {"rh_unknown", ELS_R_RH_UNKNOWN},
    [AN_FRAG_LENGTH] = {"fragment_length", ELS_R_FRAG_BAD_LENGTH},
    [AN_FRAG_TOO_BIG] = {"fragment_too_big", ELS_R_FRAG_TOO_BIG},
    [AN_ND_FRAGMENTED] = {"nd_fragmented", ELS_R_ND_FRAGMENTED},
    [AN_ND_HOP_LIMIT] = {"nd_hop_limit", ELS_R_ND_HOP_LIMIT},
    [AN_MARTIAN_SRC] = {"martian_source", ELS_R_MARTIAN_SRC},
    [AN_MARTIAN_DST] = {"martian_destination", ELS_R_MARTIAN_DST},
};

enum an_action { AN_DROP, AN_OBSERVE, AN_OFF };
static const char *const actions[] = {"drop", "observe", "off", NULL};

#define DEFAULT_MAX_EXT 8 /* RFC 8200's recommended order has at most 8 kinds before L4 */

struct an_conf {
	uint8_t action[AN__COUNT];
	unsigned max_ext;
};

static int an_build(const config_setting_t *section, const struct els_build_env *env, void **conf,
		    struct els_diag *diag)
{
	struct an_conf *c = calloc(1, sizeof(*c));
	unsigned before = diag->count;

	(void)env;
	*conf = NULL;
	if (!c)
		return -ENOMEM;
	c->max_ext = DEFAULT_MAX_EXT;
	for (int i = 0; section && i < config_setting_length(section); i++) {
		const config_setting_t *s = config_setting_get_elem(section, (unsigned)i);
		const char *name = config_setting_name(s);
		unsigned k;

		if (strcmp(name, "fail") == 0)
			continue; /* the chain's */
		if (strcmp(name, "max_ext_headers") == 0) {
			int t = config_setting_type(s);
			long long v = t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64
					  ? config_setting_get_int64(s)
					  : -1;
			if (v < 1 || v > 16)
				els_diag_at(diag, s,
					    "anomaly: 'max_ext_headers' must be 1..16 (the decoder "
					    "stops at 16)");
			else
				c->max_ext = (unsigned)v;
			continue;
		}
		for (k = 0; k < AN__COUNT && strcmp(name, checks[k].key) != 0; k++)
			;
		if (k == AN__COUNT) {
			els_diag_at(
			    diag, s,
			    "anomaly: unknown setting '%s' (known: tcp_null, tcp_xmas, "
			    "tcp_syn_fin, tcp_syn_rst, land, port_zero, fragment_overlap, "
			    "ext_chain, ext_repeat, rh0, rh_unknown, fragment_length, "
			    "fragment_too_big, nd_fragmented, nd_hop_limit, martian_source, "
			    "martian_destination, max_ext_headers, fail)",
			    name);
			continue;
		}
		const char *v = config_setting_get_string(s);
		int a = -1;
		for (int j = 0; v && actions[j]; j++)
			if (strcmp(v, actions[j]) == 0)
				a = j;
		if (a < 0)
			els_diag_at(diag, s,
				    "anomaly: '%s' must be \"drop\", \"observe\" or \"off\"", name);
		else
			c->action[k] = (uint8_t)a;
	}
	if (diag->count != before) {
		free(c);
		return -EINVAL;
	}
	*conf = c;
	return 0;
}

static void an_destroy(void *conf)
{
	free(conf);
}

/* Loopback and the unspecified address: equal source and destination there are no attack. */
static bool land_exempt(const struct els_pkt *p)
{
	static const uint8_t v6lo[16] = {[15] = 1}, zero[16];
	if (p->family == ELS_AF_INET && p->src.b[0] == 127)
		return true;
	return memcmp(p->src.b, v6lo, 16) == 0 || memcmp(p->src.b, zero, 16) == 0;
}

static bool is_loopback(const struct els_pkt *p, const struct els_addr *a)
{
	static const uint8_t v6lo[16] = {[15] = 1};
	return p->family == ELS_AF_INET ? a->b[0] == 127 : memcmp(a->b, v6lo, 16) == 0;
}

/* A source no packet may carry: multicast (RFC 1122 3.2.1.3, RFC 4291 2.7), the IPv4 limited
 * broadcast (RFC 1122 3.2.1.3), an IPv4-mapped IPv6 address, which stands for an IPv4 node and
 * never appears on the wire (RFC 4291 2.5.5.2), or loopback towards another address (RFC 1122
 * 3.2.1.3, RFC 4291 2.5.3: never outside one node). */
static bool martian_source(const struct els_pkt *p)
{
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
	const uint8_t *s = p->src.b;

	if (is_loopback(p, &p->src) && !is_loopback(p, &p->dst))
		return true;
	if (p->family == ELS_AF_INET)
		return (s[0] & 0xf0) == 0xe0 ||
		       (s[0] == 255 && s[1] == 255 && s[2] == 255 && s[3] == 255);
	return s[0] == 0xff || memcmp(s, mapped, 12) == 0;
}

/* A destination no packet may be sent to: the unspecified address (RFC 1122 3.2.1.3, RFC
 * 4291 2.5.2), an IPv6 multicast group of reserved scope 0 (RFC 4291 2.7: "silently
 * dropped"), one of interface-local scope from another node (RFC 7346 2), IPv4-mapped, or
 * loopback from another address. */
static bool martian_destination(const struct els_pkt *p)
{
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff}, zero[16];
	const uint8_t *d = p->dst.b;

	if (is_loopback(p, &p->dst) && !is_loopback(p, &p->src))
		return true;
	if (p->family == ELS_AF_INET)
		return memcmp(d, zero, 4) == 0;
	if (memcmp(d, zero, 16) == 0 || memcmp(d, mapped, 12) == 0)
		return true;
	return d[0] == 0xff && ((d[1] & 0x0f) == 0 || ((d[1] & 0x0f) == 1 && p->dir == ELS_DIR_IN));
}

/* Neighbor Discovery (RFC 4861: 133-137) and SEND's certification path messages (RFC 3971:
 * 148 solicitation, 149 advertisement), all sent with hop limit 255. A certification path
 * advertisement carries certificates and may be fragmented (RFC 6980 5): not with_cpa. */
static bool is_nd(const struct els_pkt *p, bool with_cpa)
{
	return p->proto == IPPROTO_ICMPV6 && (p->flags & ELS_PKT_HAS_ICMP) &&
	       ((p->icmp_type >= 133 && p->icmp_type <= 137) || p->icmp_type == 148 ||
		(with_cpa && p->icmp_type == 149));
}

/* The first anomaly of p, or AN__COUNT. */
static unsigned classify(const struct an_conf *c, struct els_ctx *ctx)
{
	const struct els_pkt *p = ctx->pkt;
	unsigned found = AN__COUNT;

	/* Every fragment goes into the range memory, whatever else is wrong with it, so a later
	 * fragment is compared with all of its predecessors. */
	if ((p->flags & ELS_PKT_FRAGMENT) && ctx->hstate && c->action[AN_FRAG_OVERLAP] != AN_OFF &&
	    an_frags_overlap(ctx->hstate, p, ctx->now_ns))
		found = AN_FRAG_OVERLAP;
	if (memcmp(&p->src, &p->dst, sizeof(p->src)) == 0 && !land_exempt(p))
		return AN_LAND;
	if (martian_source(p))
		return AN_MARTIAN_SRC;
	if (martian_destination(p))
		return AN_MARTIAN_DST;
	if (p->std & ELS_STD_RH0)
		return AN_RH0;
	if (p->std & ELS_STD_RH_UNKNOWN)
		return AN_RH_UNKNOWN;
	if (p->std & ELS_STD_FRAG_TOO_BIG)
		return AN_FRAG_TOO_BIG;
	if (p->std & ELS_STD_FRAG_LENGTH)
		return AN_FRAG_LENGTH;
	/* RFC 6980: ND in a fragment is ignored (fragments hide options from RA guards).
	 * RFC 4861: ND comes with hop limit 255, so it cannot have crossed a router. */
	if (is_nd(p, false) && (p->flags & ELS_PKT_FRAGMENT))
		return AN_ND_FRAGMENTED;
	if (is_nd(p, true) && p->hop_limit != 255)
		return AN_ND_HOP_LIMIT;
	if (p->proto == IPPROTO_TCP && (p->flags & ELS_PKT_HAS_PORTS)) {
		uint8_t fl = p->tcp_flags & 0x3f; /* ECE and CWR are congestion bits, not shape */
		const uint8_t xmas = ELS_TCP_FIN | ELS_TCP_PSH | ELS_TCP_URG;
		if (fl == 0)
			return AN_TCP_NULL;
		if ((fl & xmas) == xmas)
			return AN_TCP_XMAS;
		if ((fl & (ELS_TCP_SYN | ELS_TCP_FIN)) == (ELS_TCP_SYN | ELS_TCP_FIN))
			return AN_TCP_SYN_FIN;
		if ((fl & (ELS_TCP_SYN | ELS_TCP_RST)) == (ELS_TCP_SYN | ELS_TCP_RST))
			return AN_TCP_SYN_RST;
	}
	if ((p->flags & ELS_PKT_HAS_PORTS) && (p->sport == 0 || p->dport == 0))
		return AN_PORT_ZERO;
	if (p->family == ELS_AF_INET6 && p->ext_count > c->max_ext)
		return AN_EXT_CHAIN;
	if (p->flags & ELS_PKT_EXT_REPEAT)
		return AN_EXT_REPEAT;
	return found;
}

static void report(struct els_ctx *ctx, uint16_t reason, uint8_t kind)
{
	const struct els_pkt *p = ctx->pkt;
	struct els_record r = {.kind = kind,
			       .ts_ns = ctx->real_ns,
			       .count = 1,
			       .src = p->src,
			       .dst = p->dst,
			       .handler = "anomaly",
			       .reason = reason,
			       .generation = ctx->generation,
			       .verdict = ELS_ACCEPT,
			       .family = p->family,
			       .dir = p->dir,
			       .proto = p->proto};
	if (p->flags & ELS_PKT_HAS_PORTS) {
		r.sport = p->sport;
		r.dport = p->dport;
		r.tcp_flags = p->tcp_flags;
	}
	if (kind == ELS_REC_WOULD_DROP)
		els_worker_out_record(ctx->out, &r);
	els_worker_out_alert(ctx->out, &r, true, ctx->now_ns);
}

static enum els_action an_handle(const void *conf, struct els_ctx *ctx, struct els_decision *out)
{
	const struct an_conf *c = conf;
	unsigned k = classify(c, ctx);

	if (k == AN__COUNT || c->action[k] == AN_OFF)
		return ELS_CONTINUE;
	if (c->action[k] == AN_OBSERVE) {
		if (ctx->out)
			report(ctx, checks[k].reason, ELS_REC_WOULD_DROP);
		return ELS_CONTINUE;
	}
	if (ctx->out)
		report(ctx, checks[k].reason, ELS_REC_EVENT); /* the worker records the drop */
	out->action = ELS_DROP;
	out->reason = checks[k].reason;
	out->rule = k + 1;
	return ELS_DROP;
}

static const char *an_rule_name(const void *conf, uint32_t rule)
{
	(void)conf;
	return rule >= 1 && rule <= AN__COUNT ? checks[rule - 1].key : NULL;
}

const struct els_handler els_handler_anomaly = {
    .name = "anomaly",
    .summary = "drops TCP flag sets no stack sends, land packets, port 0, overlapping fragments, "
	       "long IPv6 header chains, and what RFCs say to discard (RH0, bad fragments, "
	       "fragmented ND, martians)",
    .build = an_build,
    .destroy = an_destroy,
    .handle = an_handle,
    .rule_name = an_rule_name,
    .worker_init = an_frags_new,
    .worker_free = an_frags_free,
};
