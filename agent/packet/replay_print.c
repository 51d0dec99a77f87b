/* --verdicts lines of `elsd --replay`: one per packet, as text or NDJSON (docs/replay.md,
 * "Verdict lines"). The packet is decoded a second time here, only for its addresses, ports
 * and protocol: replay is offline, so the copy costs nothing on any live path. */
#include <jansson.h>
#include <stdio.h>

#include "els/addr.h"
#include "els/pkt.h"
#include "replay_print.h"

/* "198.18.0.1:51234", "[2001:db8::1]:443", or the bare address without ports. */
static void endpoint(char *out, size_t n, const struct els_pkt *pk, const struct els_addr *a,
		     uint16_t port)
{
	char buf[ELS_ADDR_STRLEN];

	els_addr_str(a, pk->family, buf);
	if (!(pk->flags & ELS_PKT_HAS_PORTS))
		snprintf(out, n, "%s", buf);
	else if (pk->family == ELS_AF_INET6)
		snprintf(out, n, "[%s]:%u", buf, port);
	else
		snprintf(out, n, "%s:%u", buf, port);
}

static void print_text(FILE *f, const struct els_verdict_line *v)
{
	const struct els_pkt *pk = v->pkt;
	char pbuf[ELS_PROTO_STRLEN];

	fprintf(f, "%lu %s %s %s %s", v->n, v->dir, v->verdict, v->handler, v->reason);
	if (pk->family != ELS_AF_NONE) {
		char src[ELS_ADDR_STRLEN + 8], dst[ELS_ADDR_STRLEN + 8];

		endpoint(src, sizeof(src), pk, &pk->src, pk->sport);
		endpoint(dst, sizeof(dst), pk, &pk->dst, pk->dport);
		/* a later fragment carries no L4 header; its protocol is still the IP header's */
		fprintf(f, " proto=%s src=%s dst=%s", els_proto_name(pk->proto, pbuf), src, dst);
		if (pk->flags & ELS_PKT_HAS_ICMP)
			fprintf(f, " icmp_type=%u icmp_code=%u", pk->icmp_type, pk->icmp_code);
	}
	fprintf(f, " rule=%u%s%s\n", v->rule, v->rule_name[0] ? " rule_name=" : "", v->rule_name);
}

static json_t *u_or_null(bool valid, unsigned v)
{
	return valid ? json_integer(v) : json_null();
}

static void print_json(FILE *f, const struct els_verdict_line *v)
{
	const struct els_pkt *pk = v->pkt;
	bool ip = pk->family != ELS_AF_NONE, ports = ip && (pk->flags & ELS_PKT_HAS_PORTS),
	     icmp = ip && (pk->flags & ELS_PKT_HAS_ICMP);
	char pbuf[ELS_PROTO_STRLEN], src[ELS_ADDR_STRLEN], dst[ELS_ADDR_STRLEN];
	/* Every key in every object, null when it does not apply: a consumer never has to
	 * tell a missing key from an empty value. */
	json_t *o = json_object();

	if (!o)
		return;
	json_object_set_new(o, "packet", json_integer((json_int_t)v->n));
	json_object_set_new(o, "timestamp", json_integer((json_int_t)v->ts_ns));
	json_object_set_new(o, "dir", v->dir ? json_string(v->dir) : json_null());
	json_object_set_new(o, "verdict", json_string(v->verdict));
	json_object_set_new(o, "handler", v->handler ? json_string(v->handler) : json_null());
	json_object_set_new(o, "reason", json_string(v->reason));
	json_object_set_new(o, "proto",
			    ip ? json_string(els_proto_name(pk->proto, pbuf)) : json_null());
	json_object_set_new(
	    o, "src_ip", ip ? json_string(els_addr_str(&pk->src, pk->family, src)) : json_null());
	json_object_set_new(o, "src_port", u_or_null(ports, pk->sport));
	json_object_set_new(
	    o, "dest_ip", ip ? json_string(els_addr_str(&pk->dst, pk->family, dst)) : json_null());
	json_object_set_new(o, "dest_port", u_or_null(ports, pk->dport));
	json_object_set_new(o, "icmp_type", u_or_null(icmp, pk->icmp_type));
	json_object_set_new(o, "icmp_code", u_or_null(icmp, pk->icmp_code));
	json_object_set_new(o, "rule", v->handler ? json_integer(v->rule) : json_null());
	json_object_set_new(o, "rule_name",
			    v->rule_name[0] ? json_string(v->rule_name) : json_null());
	json_dumpf(o, f, JSON_COMPACT | JSON_PRESERVE_ORDER);
	fputc('\n', f);
	json_decref(o);
}

void els_verdict_line_print(FILE *f, bool json, const struct els_verdict_line *v)
{
	if (json)
		print_json(f, v);
	else if (!v->handler)
		fprintf(f, "%lu %s %s\n", v->n, v->verdict, v->reason); /* "N skip not-ip" */
	else
		print_text(f, v);
}
