/* Records as EVE JSON lines (docs/events.md has the field mapping). Pure: no I/O, no locks, no
 * allocation, so the unit test and the fuzz target drive it directly. */
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "els/addr.h"
#include "els/clock.h"
#include "els/handler.h"
#include "els/reason.h"
#include "events.h"

/* Appends formatted text; a result that does not fit is cut, and the caller's final check
 * (pos < len - 1) keeps the object whole or shortens the last text field instead. */
static void put(char *buf, size_t len, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos + 1 >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	*pos = *pos + (size_t)n < len ? *pos + (size_t)n : len - 1;
}

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0 when it is not one:
 * overlong forms, surrogates and code points past U+10FFFF are invalid (RFC 3629). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0], cp, need;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		need = 2, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 3, cp = c & 0x07;
	else
		return 0;
	if (n < need + 1)
		return 0;
	for (unsigned i = 1; i <= need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return need + 1;
}

void els_json_str(char *buf, size_t len, size_t *pos, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t p = *pos;

	/* room for the closing quote and the NUL is kept at every step */
	if (len < 3 || p + 3 > len)
		return;
	buf[p++] = '"';
	for (size_t i = 0; i < n && u[i];) {
		char esc[8];
		size_t k = utf8_len(u + i, n - i), w;
		const char *out;

		if (k == 0) { /* an invalid byte: U+FFFD, and resynchronise on the next byte */
			out = "\\ufffd", w = 6, k = 1;
		} else if (u[i] == '"' || u[i] == '\\') {
			esc[0] = '\\', esc[1] = (char)u[i], out = esc, w = 2;
		} else if (u[i] < 0x20 || u[i] == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", u[i]);
			out = esc, w = 6;
		} else {
			out = s + i, w = k;
		}
		if (p + w + 2 > len)
			break; /* cut at a character boundary */
		memcpy(buf + p, out, w);
		p += w;
		i += k;
	}
	buf[p++] = '"';
	buf[p] = '\0';
	*pos = p;
}

/* "key":"value"; a value that cannot even start marks the line full (pos = len), which the
 * end of els_eve_format turns into its short fallback rather than broken JSON. */
static void put_str(char *buf, size_t len, size_t *pos, const char *key, const char *s, size_t n)
{
	size_t before;

	put(buf, len, pos, ",\"%s\":", key);
	before = *pos;
	els_json_str(buf, len, pos, s, n);
	if (*pos == before)
		*pos = len;
}

static const char *eve_proto(unsigned proto, char num[8])
{
	switch (proto) {
	case IPPROTO_TCP:
		return "TCP";
	case IPPROTO_UDP:
		return "UDP";
	case IPPROTO_ICMP:
		return "ICMP";
	case IPPROTO_ICMPV6:
		return "IPv6-ICMP";
	case IPPROTO_SCTP:
		return "SCTP";
	default:
		snprintf(num, 8, "%u", proto);
		return num;
	}
}

/* EVE's flow_id identifies a flow; here it is a 64-bit FNV-1a hash of the protocol and both
 * endpoints in a fixed order, so a flow's drops, admit and end share it in either direction.
 * Masked to 48 bits, as Suricata does, so JavaScript consumers keep it exact. */
static uint64_t flow_id(const struct els_record *r)
{
	const struct els_addr *a = &r->src, *b = &r->dst;
	uint16_t pa = r->sport, pb = r->dport;
	uint64_t h = 1469598103934665603ull;
	unsigned char key[2 + 2 * sizeof(struct els_addr) + 4];
	size_t n = 0;

	if (memcmp(a, b, sizeof(*a)) > 0 || (memcmp(a, b, sizeof(*a)) == 0 && pa > pb)) {
		const struct els_addr *t = a;
		uint16_t tp = pa;
		a = b, b = t, pa = pb, pb = tp;
	}
	key[n++] = r->family;
	key[n++] = r->proto;
	memcpy(key + n, a, sizeof(*a)), n += sizeof(*a);
	memcpy(key + n, b, sizeof(*b)), n += sizeof(*b);
	key[n++] = (unsigned char)(pa >> 8), key[n++] = (unsigned char)pa;
	key[n++] = (unsigned char)(pb >> 8), key[n++] = (unsigned char)pb;
	for (size_t i = 0; i < n; i++)
		h = (h ^ key[i]) * 1099511628211ull;
	return (h & 0x0000ffffffffffffull) ? (h & 0x0000ffffffffffffull) : 1;
}

static const char *kind_name(unsigned kind)
{
	return kind > 0 && kind < ELS_REC__END ? els_rec_kind_names[kind] : "unknown";
}

/* EVE event_type: drops are "drop", would_drops "alert" (allowed, as an IDS alert is), admits
 * and flow ends "flow" (flow.state tells them apart), the handlers' detections "alert", and
 * what concerns the agent itself (events, gaps, accepts under log = "all") "els". */
const char *els_eve_type(const struct els_record *r, enum els_eve_source src)
{
	if (src == ELS_EVE_ALERT)
		return "alert";
	switch (r->kind) {
	case ELS_REC_DROP:
		return "drop";
	case ELS_REC_WOULD_DROP:
		return "alert";
	case ELS_REC_ADMIT:
	case ELS_REC_FLOW_END:
		return "flow";
	default:
		return "els";
	}
}

unsigned els_eve_severity(const struct els_record *r, enum els_eve_source src)
{
	if (src == ELS_EVE_ALERT || r->kind == ELS_REC_DROP || r->kind == ELS_REC_WOULD_DROP)
		return 4;		       /* warning */
	return r->kind == ELS_REC_GAP ? 5 : 6; /* notice, info */
}

static void put_time(char *buf, size_t len, size_t *pos, const char *key, uint64_t ns)
{
	time_t sec = (time_t)(ns / ELS_NS_PER_S);
	struct tm tm;
	char t[40], z[8];

	localtime_r(&sec, &tm);
	strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
	strftime(z, sizeof(z), "%z", &tm);
	put(buf, len, pos, "\"%s\":\"%s.%06u%s\"", key, t, (unsigned)(ns % ELS_NS_PER_S / 1000u),
	    z);
}

size_t els_eve_format(const struct els_record *r, enum els_eve_source src, const char *host,
		      char *buf, size_t len)
{
	bool packet = r->family == 4 || r->family == 6;
	bool ports = packet && (r->proto == IPPROTO_TCP || r->proto == IPPROTO_UDP ||
				r->proto == IPPROTO_SCTP);
	bool icmp = packet && (r->proto == IPPROTO_ICMP || r->proto == IPPROTO_ICMPV6);
	size_t pos = 0;
	char num[8];

	if (len < 64) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	put(buf, len, &pos, "{");
	put_time(buf, len, &pos, "timestamp", r->ts_ns);
	if (packet && r->proto)
		put(buf, len, &pos, ",\"flow_id\":%llu", (unsigned long long)flow_id(r));
	put(buf, len, &pos, ",\"event_type\":\"%s\"", els_eve_type(r, src));
	if (packet) {
		char a[ELS_ADDR_STRLEN], b[ELS_ADDR_STRLEN];

		els_addr_str(&r->src, r->family, a);
		put(buf, len, &pos, ",\"src_ip\":\"%s\"", a);
		if (ports)
			put(buf, len, &pos, ",\"src_port\":%u", r->sport);
		if (r->proto || src != ELS_EVE_ALERT) {
			els_addr_str(&r->dst, r->family, b);
			put(buf, len, &pos, ",\"dest_ip\":\"%s\"", b);
			if (ports)
				put(buf, len, &pos, ",\"dest_port\":%u", r->dport);
			put(buf, len, &pos, ",\"proto\":\"%s\"", eve_proto(r->proto, num));
		}
		if (icmp)
			put(buf, len, &pos, ",\"icmp_type\":%u,\"icmp_code\":%u", r->icmp_type,
			    r->icmp_code);
	}
	if (r->verdict == ELS_DROP || r->verdict == ELS_ACCEPT)
		put(buf, len, &pos, ",\"action\":\"%s\"",
		    r->verdict == ELS_DROP ? "blocked" : "allowed");
	if (host && *host) {
		put_str(buf, len, &pos, "host", host, strnlen(host, ELS_EVE_HOST_MAX));
	}
	if (src == ELS_EVE_ALERT || r->kind == ELS_REC_WOULD_DROP) {
		/* Suricata's alert object: signature is the reason's stable name */
		put(buf, len, &pos,
		    ",\"alert\":{\"action\":\"%s\",\"signature_id\":%u,\"signature\":\"%s\","
		    "\"category\":\"%s\",\"severity\":2}",
		    r->verdict == ELS_DROP ? "blocked" : "allowed", r->reason,
		    els_reason_name(r->reason), r->handler ? r->handler : "agent");
	}
	if (r->kind == ELS_REC_ADMIT)
		put(buf, len, &pos, ",\"flow\":{\"state\":\"new\"}");
	if (r->kind == ELS_REC_FLOW_END) {
		uint64_t start = r->ts_ns > r->duration_ns ? r->ts_ns - r->duration_ns : 0;

		put(buf, len, &pos,
		    ",\"flow\":{\"pkts_toserver\":%llu,\"pkts_toclient\":%llu,"
		    "\"bytes_toserver\":%llu,\"bytes_toclient\":%llu,",
		    (unsigned long long)r->pkts[0], (unsigned long long)r->pkts[1],
		    (unsigned long long)r->bytes[0], (unsigned long long)r->bytes[1]);
		put_time(buf, len, &pos, "start", start);
		put(buf, len, &pos, ",");
		put_time(buf, len, &pos, "end", r->ts_ns);
		put(buf, len, &pos, ",\"age\":%llu,\"state\":\"closed\"}",
		    (unsigned long long)(r->duration_ns / ELS_NS_PER_S));
	}
	/* elsd's own fields */
	put(buf, len, &pos, ",\"els\":{\"kind\":\"%s\"",
	    src == ELS_EVE_ALERT ? "alert" : kind_name(r->kind));
	if (r->handler) {
		put_str(buf, len, &pos, "handler", r->handler, strlen(r->handler));
	}
	if (r->reason)
		put(buf, len, &pos, ",\"reason\":\"%s\"", els_reason_name(r->reason));
	if (r->rule_name[0]) {
		put_str(buf, len, &pos, "permit", r->rule_name,
			strnlen(r->rule_name, sizeof(r->rule_name)));
	}
	if (r->rule)
		put(buf, len, &pos, ",\"rule\":%u", r->rule);
	if (r->generation)
		put(buf, len, &pos, ",\"generation\":%u", r->generation);
	put(buf, len, &pos, ",\"count\":%llu", (unsigned long long)(r->count ? r->count : 1));
	if (packet && r->proto)
		put(buf, len, &pos, ",\"dir\":\"%s\"", r->dir == ELS_DIR_OUT ? "out" : "in");
	if (packet && r->proto == IPPROTO_TCP && r->tcp_flags)
		put(buf, len, &pos, ",\"tcp_flags\":\"%02x\"", r->tcp_flags);
	if (r->kind == ELS_REC_FLOW_END)
		put(buf, len, &pos, ",\"duration_ms\":%llu",
		    (unsigned long long)(r->duration_ns / 1000000u));
	if (r->detail[0]) {
		/* the last field: what is cut when the line is full (a closing "}}" is kept) */
		put_str(buf, len - 2, &pos, "detail", r->detail,
			strnlen(r->detail, sizeof(r->detail)));
	}
	if (pos + 3 > len || pos + 1 >= len - 2) {
		/* cannot happen with ELS_EVE_MAX: every fixed part is short. Keep JSON valid. */
		snprintf(buf, len, "{\"event_type\":\"els\",\"els\":{\"kind\":\"%s\"}}",
			 kind_name(r->kind));
		return strlen(buf);
	}
	buf[pos++] = '}';
	buf[pos++] = '}';
	buf[pos] = '\0';
	return pos;
}
