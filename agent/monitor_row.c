/* Monitor records -> the column values a row stores (see docs/monitor-schema.md). The same
 * values are bound and MACed, so what is written and what is chained cannot differ. */
#include <stdio.h>
#include <string.h>

#include "els/handler.h"
#include "els/reason.h"
#include "monitor_int.h"

static const char *kind_name(unsigned kind)
{
	static const char *const names[] = {
	    [ELS_REC_DROP] = "drop",	 [ELS_REC_ADMIT] = "admit", [ELS_REC_FLOW_END] = "flow_end",
	    [ELS_REC_ACCEPT] = "accept", [ELS_REC_GAP] = "gap",	    [ELS_REC_EVENT] = "event",
	    [ELS_REC_WOULD_DROP] = "would_drop",
	};
	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : NULL;
}

/* Column indexes, in els_mon_columns order. */
enum {
	C_SEQ,
	C_TS,
	C_KIND,
	C_VERDICT,
	C_DIR,
	C_FAMILY,
	C_PROTO,
	C_SRC,
	C_SPORT,
	C_DST,
	C_DPORT,
	C_ICMP_TYPE,
	C_ICMP_CODE,
	C_TCP_FLAGS,
	C_HANDLER,
	C_REASON,
	C_RULE,
	C_RULE_NAME,
	C_GEN,
	C_COUNT,
	C_PKTS_I,
	C_PKTS_R,
	C_BYTES_I,
	C_BYTES_R,
	C_DURATION,
	C_DETAIL,
};

static void v_int(struct mon_val *v, uint64_t i)
{
	v->type = SQLITE_INTEGER;
	v->i = (int64_t)i;
}

/* NULL or empty is NULL: the schema never stores an empty string for "none". */
static void v_text(struct mon_val *v, const char *s, size_t max)
{
	size_t n = s ? strnlen(s, max) : 0;

	if (n) {
		v->type = SQLITE_TEXT;
		v->s = s;
		v->n = n;
	}
}

/* For constant strings and the row's own buffers: NULL is NULL. */
static void v_const(struct mon_val *v, const char *s)
{
	if (s) {
		v->type = SQLITE_TEXT;
		v->s = s;
		v->n = strlen(s);
	}
}

void mon_row_of(struct mon_row *w, uint64_t seq, const struct els_record *r)
{
	struct mon_val *v = w->v;
	const char *kind = kind_name(r->kind);
	bool pkt = r->kind != ELS_REC_GAP && r->kind != ELS_REC_EVENT;
	bool has_l3 = pkt && (r->family == ELS_AF_INET || r->family == ELS_AF_INET6);
	bool tcp = has_l3 && r->proto == 6, udp = has_l3 && r->proto == 17;
	bool icmp = has_l3 && (r->proto == 1 || r->proto == 58);

	for (unsigned i = 0; i < ELS_MON_NCOLS; i++)
		v[i] = (struct mon_val){.type = SQLITE_NULL};
	if (!kind) {
		snprintf(w->kbuf, sizeof(w->kbuf), "%u", r->kind);
		kind = w->kbuf;
	}
	v_int(&v[C_SEQ], seq);
	v_int(&v[C_TS], r->ts_ns);
	v_const(&v[C_KIND], kind);
	v_const(&v[C_VERDICT], r->verdict == ELS_ACCEPT ? "accept"
			       : r->verdict == ELS_DROP ? "drop"
							: NULL);
	v_const(&v[C_DIR], !pkt ? NULL : r->dir == ELS_DIR_OUT ? "out" : "in");
	if (has_l3) {
		v_int(&v[C_FAMILY], r->family);
		v_const(&v[C_PROTO], els_proto_name(r->proto, w->pbuf));
		v_const(&v[C_SRC], els_addr_str(&r->src, r->family, w->sbuf));
		v_const(&v[C_DST], els_addr_str(&r->dst, r->family, w->dbuf));
	}
	/* A record carries no "has ports" flag: zero ports on a protocol without ports mean none,
	 * while TCP/UDP keep a 0 so that port_zero drops read as what they are. */
	if (tcp || udp || (has_l3 && (r->sport || r->dport))) {
		v_int(&v[C_SPORT], r->sport);
		v_int(&v[C_DPORT], r->dport);
	}
	if (icmp) {
		v_int(&v[C_ICMP_TYPE], r->icmp_type);
		v_int(&v[C_ICMP_CODE], r->icmp_code);
	}
	if (tcp)
		v_int(&v[C_TCP_FLAGS], r->tcp_flags);
	v_text(&v[C_HANDLER], r->handler, 64);
	v_const(&v[C_REASON], r->reason != ELS_R_NONE ? els_reason_name(r->reason) : NULL);
	if (r->rule)
		v_int(&v[C_RULE], r->rule);
	v_text(&v[C_RULE_NAME], r->rule_name, sizeof(r->rule_name));
	if (r->kind != ELS_REC_GAP)
		v_int(&v[C_GEN], r->generation);
	v_int(&v[C_COUNT], r->count ? r->count : 1);
	if (r->kind == ELS_REC_FLOW_END) {
		v_int(&v[C_PKTS_I], r->pkts[0]);
		v_int(&v[C_PKTS_R], r->pkts[1]);
		v_int(&v[C_BYTES_I], r->bytes[0]);
		v_int(&v[C_BYTES_R], r->bytes[1]);
		v_int(&v[C_DURATION], r->duration_ns);
	}
	v_text(&v[C_DETAIL], r->detail, sizeof(r->detail));
}

/* Binds and steps one row with its MAC. Strings are bound SQLITE_STATIC: the step copies them
 * before this function returns and the buffers go away. Returns an SQLite result code. */
int mon_insert_row(sqlite3_stmt *st, const struct mon_row *w, const unsigned char *mac)
{
	int rc;

	for (int i = 0; i < ELS_MON_NCOLS; i++) {
		const struct mon_val *v = &w->v[i];

		if (v->type == SQLITE_INTEGER)
			sqlite3_bind_int64(st, i + 1, v->i);
		else if (v->type == SQLITE_TEXT)
			sqlite3_bind_text(st, i + 1, v->s, (int)v->n, SQLITE_STATIC);
	}
	sqlite3_bind_blob(st, ELS_MON_NCOLS + 1, mac, ELS_MON_MAC_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}
