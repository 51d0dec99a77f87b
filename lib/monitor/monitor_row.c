/* Monitor records -> the column values a row stores (see docs/monitor-schema.md). The same
 * values are bound and MACed, so what is written and what is chained cannot differ. */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "els/handler.h"
#include "els/reason.h"
#include "els/monitor_int.h"

#define KIND_NAME(id, value, name) [ELS_REC_##id] = name,
const char *const els_rec_kind_names[ELS_REC__END + 1] = {ELS_REC_KINDS(KIND_NAME, KIND_NAME)};
#undef KIND_NAME

bool els_rec_kind_known(const char *name)
{
	for (unsigned k = ELS_REC_DROP; name && k < ELS_REC__END; k++)
		if (strcmp(els_rec_kind_names[k], name) == 0)
			return true;
	return false;
}

static const char *kind_name(unsigned kind)
{
	return kind < ELS_REC__END ? els_rec_kind_names[kind] : NULL;
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

/* A name of static storage: mon_insert_rows may leave it bound from one row to the next. */
static void v_fixed(struct mon_row *w, unsigned col, const char *s)
{
	v_const(&w->v[col], s);
	if (s)
		w->fixed |= 1u << col;
}

/* inet_ntop's text for IPv4, without the sprintf it costs per byte: two addresses a row were
 * a tenth of the writer's instructions. */
static const char *v4_str(const struct els_addr *a, char *buf)
{
	char *p = buf;

	for (int i = 0; i < 4; i++) {
		unsigned b = a->b[i];

		if (b >= 100)
			*p++ = (char)('0' + b / 100);
		if (b >= 10)
			*p++ = (char)('0' + b / 10 % 10);
		*p++ = (char)('0' + b % 10);
		*p++ = '.';
	}
	p[-1] = '\0';
	return buf;
}

static const char *addr_str(const struct els_addr *a, unsigned family, char *buf)
{
	return family == ELS_AF_INET ? v4_str(a, buf) : els_addr_str(a, family, buf);
}

void mon_row_of(struct mon_row *w, uint64_t seq, const struct els_record *r)
{
	struct mon_val *v = w->v;
	const char *kind = kind_name(r->kind);
	bool pkt = r->kind != ELS_REC_GAP && r->kind != ELS_REC_EVENT;
	bool has_l3 = pkt && (r->family == ELS_AF_INET || r->family == ELS_AF_INET6);
	bool tcp = has_l3 && r->proto == IPPROTO_TCP, udp = has_l3 && r->proto == IPPROTO_UDP;
	bool icmp = has_l3 && (r->proto == IPPROTO_ICMP || r->proto == IPPROTO_ICMPV6);

	for (unsigned i = 0; i < ELS_MON_NCOLS; i++)
		v[i] = (struct mon_val){.type = SQLITE_NULL};
	w->fixed = 0;
	if (!kind) {
		snprintf(w->kbuf, sizeof(w->kbuf), "%u", r->kind);
		kind = w->kbuf;
	}
	v_int(&v[C_SEQ], seq);
	v_int(&v[C_TS], r->ts_ns);
	if (kind == w->kbuf)
		v_const(&v[C_KIND], kind);
	else
		v_fixed(w, C_KIND, kind);
	v_fixed(w, C_VERDICT,
		r->verdict == ELS_ACCEPT ? "accept"
		: r->verdict == ELS_DROP ? "drop"
					 : NULL);
	v_fixed(w, C_DIR, !pkt ? NULL : r->dir == ELS_DIR_OUT ? "out" : "in");
	if (has_l3) {
		const char *proto = els_proto_name(r->proto, w->pbuf);

		v_int(&v[C_FAMILY], r->family);
		if (proto == w->pbuf)
			v_const(&v[C_PROTO], proto);
		else
			v_fixed(w, C_PROTO, proto);
		/* half_open rows stand for flows from many sources (a spoofed flood's): none. A
		 * merged drop row (many_src) has no remote end: no source inbound, no
		 * destination outbound (lib/dropagg.c). */
		bool many_out = r->many_src && r->dir == ELS_DIR_OUT;
		if (r->kind != ELS_REC_HALF_OPEN && (!r->many_src || many_out))
			v_const(&v[C_SRC], addr_str(&r->src, r->family, w->sbuf));
		if (!many_out)
			v_const(&v[C_DST], addr_str(&r->dst, r->family, w->dbuf));
	}
	/* A record carries no "has ports" flag: zero ports on a protocol without ports mean none,
	 * while TCP/UDP keep a 0 so that port_zero drops read as what they are. */
	if (tcp || udp || (has_l3 && (r->sport || r->dport))) {
		bool many_out = r->many_src && r->dir == ELS_DIR_OUT;
		if (r->kind != ELS_REC_HALF_OPEN && (!r->many_src || many_out))
			v_int(&v[C_SPORT], r->sport);
		if (!many_out)
			v_int(&v[C_DPORT], r->dport);
	}
	if (icmp) {
		v_int(&v[C_ICMP_TYPE], r->icmp_type);
		v_int(&v[C_ICMP_CODE], r->icmp_code);
	}
	if (tcp)
		v_int(&v[C_TCP_FLAGS], r->tcp_flags);
	v_text(&v[C_HANDLER], r->handler, 64);
	v_fixed(w, C_REASON, r->reason != ELS_R_NONE ? els_reason_name(r->reason) : NULL);
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

void mon_pend_set(struct mon_pend *p, uint64_t seq, const struct els_record *r)
{
	p->r = *r;
	if (r->handler) {
		size_t n = strnlen(r->handler, sizeof(p->handler) - 1);

		memcpy(p->handler, r->handler, n);
		p->handler[n] = '\0';
		p->r.handler = p->handler;
	}
	mon_row_of(&p->w, seq, &p->r);
}

void mon_binds_reset(struct mon_binds *b)
{
	memset(b, 0, sizeof(*b));
	for (int r = 0; r < MON_INS_ROWS; r++)
		for (int i = 0; i < ELS_MON_NCOLS; i++)
			b->type[r][i] = SQLITE_NULL;
}

/* Row r's values go to parameters r * (ELS_MON_NCOLS + 1) + 1 .., its MAC last. */
static int bind_row(sqlite3_stmt *st, struct mon_binds *b, int r, const struct mon_pend *p)
{
	int base = r * (ELS_MON_NCOLS + 1) + 1, rc;

	for (int i = 0; i < ELS_MON_NCOLS; i++) {
		const struct mon_val *v = &p->w.v[i];
		bool fixed = p->w.fixed & (1u << i);

		switch (v->type) {
		case SQLITE_INTEGER:
			if (b->type[r][i] == SQLITE_INTEGER && b->i[r][i] == v->i)
				continue;
			rc = sqlite3_bind_int64(st, base + i, v->i);
			b->i[r][i] = v->i;
			break;
		case SQLITE_TEXT:
			if (fixed && b->type[r][i] == SQLITE_TEXT && b->s[r][i] == v->s)
				continue;
			rc = sqlite3_bind_text(st, base + i, v->s, (int)v->n, SQLITE_STATIC);
			b->s[r][i] = fixed ? v->s : NULL;
			break;
		default:
			if (b->type[r][i] == SQLITE_NULL)
				continue;
			rc = sqlite3_bind_null(st, base + i);
			break;
		}
		b->type[r][i] = rc == SQLITE_OK ? v->type : 0;
		if (rc != SQLITE_OK)
			return rc;
	}
	return sqlite3_bind_blob(st, base + ELS_MON_NCOLS, p->mac, ELS_MON_MAC_LEN, SQLITE_STATIC);
}

/* Strings are bound SQLITE_STATIC: they live in p, which outlives the step. Only fixed text
 * is trusted to still be the same value at the next call; everything else is bound again. A
 * failed bind leaves that parameter unknown, so the next call binds it again. */
int mon_insert_rows(sqlite3_stmt *st, struct mon_binds *b, const struct mon_pend *p, unsigned n)
{
	int rc;

	for (unsigned r = 0; r < n; r++) {
		rc = bind_row(st, b, (int)r, &p[r]);
		if (rc != SQLITE_OK)
			return rc;
	}
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}
