/* events: the EVE JSON formatter (valid JSON whatever the text fields hold, EVE's field
 * names and forms), the spool reader's line parser, and the `events` settings. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "els/handler.h"
#include "els/reason.h"
#include "events.h"
#include "events_int.h"

static struct els_record drop4(void)
{
	struct els_record r = {.ts_ns = 1764886778123456789ull,
			       .count = 7,
			       .kind = ELS_REC_DROP,
			       .verdict = ELS_DROP,
			       .family = 4,
			       .proto = 6,
			       .dir = ELS_DIR_IN,
			       .sport = 40000,
			       .dport = 23,
			       .handler = "header_filter",
			       .reason = ELS_R_NO_PERMIT,
			       .generation = 3,
			       .tcp_flags = 0x02};
	inet_pton(AF_INET, "198.18.0.1", r.src.b);
	inet_pton(AF_INET, "198.18.0.2", r.dst.b);
	return r;
}

/* Formats r and parses it back (jansson refuses invalid JSON and invalid UTF-8). */
static json_t *fmt_flags(const struct els_record *r, enum els_eve_source src, const char *host,
			 size_t len, size_t flags)
{
	char *buf = malloc(len);
	json_error_t e;
	size_t n = els_eve_format(r, src, host, buf, len);

	cr_assert_eq(n, strlen(buf));
	cr_assert_lt(n, len);
	json_t *j = json_loadb(buf, n, flags, &e);
	cr_assert_not_null(j, "not JSON (%s at %d): %s", e.text, e.position, buf);
	free(buf);
	return j;
}

static json_t *fmt(const struct els_record *r, enum els_eve_source src, const char *host,
		   size_t len)
{
	return fmt_flags(r, src, host, len, 0);
}

static const char *str(json_t *j, const char *path)
{
	char key[64];
	const char *dot = strchr(path, '.');

	if (dot) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		return str(json_object_get(j, key), dot + 1);
	}
	return json_string_value(json_object_get(j, path));
}

static long long num(json_t *j, const char *path)
{
	char key[64];
	const char *dot = strchr(path, '.');

	if (dot) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		return num(json_object_get(j, key), dot + 1);
	}
	return json_integer_value(json_object_get(j, path));
}

Test(events, drop_has_eve_fields)
{
	struct els_record r = drop4();
	snprintf(r.rule_name, sizeof(r.rule_name), "deny-telnet");
	json_t *j = fmt(&r, ELS_EVE_RECORD, "web-01", ELS_EVE_MAX);

	cr_assert_str_eq(str(j, "event_type"), "drop");
	cr_assert_str_eq(str(j, "src_ip"), "198.18.0.1");
	cr_assert_str_eq(str(j, "dest_ip"), "198.18.0.2");
	cr_assert_eq(num(j, "src_port"), 40000);
	cr_assert_eq(num(j, "dest_port"), 23);
	cr_assert_str_eq(str(j, "proto"), "TCP");
	cr_assert_str_eq(str(j, "action"), "blocked");
	cr_assert_str_eq(str(j, "host"), "web-01");
	cr_assert_gt(num(j, "flow_id"), 0);
	cr_assert_lt(num(j, "flow_id"), 1ll << 48);
	cr_assert_str_eq(str(j, "els.handler"), "header_filter");
	cr_assert_str_eq(str(j, "els.reason"), "no_permit");
	cr_assert_str_eq(str(j, "els.permit"), "deny-telnet");
	cr_assert_str_eq(str(j, "els.dir"), "in");
	cr_assert_eq(num(j, "els.count"), 7);
	cr_assert_eq(num(j, "els.generation"), 3);
	/* Suricata's form: 2025-12-04T22:19:38.123456+0000 (local time and its offset) */
	const char *ts = str(j, "timestamp");
	cr_assert_eq(strlen(ts), 31, "%s", ts);
	cr_assert(ts[10] == 'T' && ts[19] == '.' && (ts[26] == '+' || ts[26] == '-'), "%s", ts);
	cr_assert_eq(strncmp(ts + 20, "123456", 6), 0, "%s", ts);
	json_decref(j);
}

Test(events, flow_id_is_the_same_both_ways)
{
	struct els_record a = drop4(), b = drop4();
	b.src = a.dst, b.dst = a.src, b.sport = a.dport, b.dport = a.sport;
	json_t *ja = fmt(&a, ELS_EVE_RECORD, NULL, ELS_EVE_MAX);
	json_t *jb = fmt(&b, ELS_EVE_RECORD, NULL, ELS_EVE_MAX);
	cr_assert_eq(num(ja, "flow_id"), num(jb, "flow_id"));
	json_decref(ja);
	json_decref(jb);
}

Test(events, kinds_map_to_event_types)
{
	struct els_record r = drop4();
	struct {
		uint8_t kind, verdict;
		const char *type, *action;
	} cases[] = {
	    {ELS_REC_DROP, ELS_DROP, "drop", "blocked"},
	    {ELS_REC_ADMIT, ELS_ACCEPT, "flow", "allowed"},
	    {ELS_REC_FLOW_END, ELS_ACCEPT, "flow", "allowed"},
	    {ELS_REC_WOULD_DROP, ELS_ACCEPT, "alert", "allowed"},
	    {ELS_REC_ACCEPT, ELS_ACCEPT, "els", "allowed"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r.kind = cases[i].kind, r.verdict = cases[i].verdict;
		json_t *j = fmt(&r, ELS_EVE_RECORD, NULL, ELS_EVE_MAX);
		cr_assert_str_eq(str(j, "event_type"), cases[i].type, "kind %u", r.kind);
		cr_assert_str_eq(str(j, "action"), cases[i].action, "kind %u", r.kind);
		cr_assert_str_eq(str(j, "els.kind"), els_rec_kind_names[r.kind]);
		json_decref(j);
	}
	r = drop4();
	r.kind = ELS_REC_FLOW_END, r.verdict = ELS_ACCEPT;
	r.pkts[0] = 5, r.pkts[1] = 4, r.bytes[0] = 300, r.bytes[1] = 2000;
	r.duration_ns = 2500000000ull;
	json_t *j = fmt(&r, ELS_EVE_RECORD, NULL, ELS_EVE_MAX);
	cr_assert_eq(num(j, "flow.pkts_toserver"), 5);
	cr_assert_eq(num(j, "flow.bytes_toclient"), 2000);
	cr_assert_eq(num(j, "flow.age"), 2);
	cr_assert_str_eq(str(j, "flow.state"), "closed");
	json_decref(j);
	/* an alert about a scanner: an address, no packet */
	struct els_record a = {.ts_ns = 1,
			       .kind = ELS_REC_DROP,
			       .family = 4,
			       .reason = ELS_R_SCAN_DETECTED,
			       .handler = "scan"};
	j = fmt(&a, ELS_EVE_ALERT, NULL, ELS_EVE_MAX);
	cr_assert_str_eq(str(j, "event_type"), "alert");
	cr_assert_str_eq(str(j, "alert.signature"), "scan_detected");
	cr_assert_str_eq(str(j, "alert.category"), "scan");
	json_decref(j);
}

Test(events, protocols_as_eve_writes_them)
{
	struct els_record r = drop4();
	const struct {
		uint8_t family, proto;
		const char *name;
	} cases[] = {
	    {4, 6, "TCP"}, {4, 17, "UDP"}, {4, 1, "ICMP"}, {6, 58, "IPv6-ICMP"}, {4, 47, "47"}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r.family = cases[i].family, r.proto = cases[i].proto;
		json_t *j = fmt(&r, ELS_EVE_RECORD, NULL, ELS_EVE_MAX);
		cr_assert_str_eq(str(j, "proto"), cases[i].name);
		cr_assert_eq(json_object_get(j, "src_port") != NULL, r.proto == 6 || r.proto == 17);
		json_decref(j);
	}
}

/* Permit ids, details and host names an attacker or a careless admin could write. */
Test(events, hostile_text_stays_valid_json)
{
	static const char *const hostile[] = {
	    "\"}, \"event_type\": \"forged",
	    "line\nbreak\r\n",
	    "tab\there\x01\x1f\x7f",
	    "back\\slash\\",
	    "\xff\xfe invalid",
	    "\xc0\xaf overlong",
	    "\xed\xa0\x80 surrogate",
	    "cut \xe2\x82",
	    "\xf4\x90\x80\x80 past U+10FFFF",
	    "ok \xe2\x82\xac euro",
	    "</script><!--",
	    "",
	};
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		struct els_record r = drop4();
		snprintf(r.rule_name, sizeof(r.rule_name), "%s", hostile[i]);
		snprintf(r.detail, sizeof(r.detail), "%s", hostile[i]);
		json_t *j = fmt(&r, ELS_EVE_RECORD, hostile[i], ELS_EVE_MAX);
		cr_assert_str_eq(str(j, "event_type"), "drop", "case %zu", i);
		if (i == 0) {
			cr_assert_str_eq(str(j, "els.permit"), hostile[0]);
		}
		if (i == 9)
			cr_assert_str_eq(str(j, "els.permit"), "ok \xe2\x82\xac euro");
		if (i == 4)
			cr_assert_eq(strncmp(str(j, "els.permit"), "\xef\xbf\xbd", 3), 0);
		json_decref(j);
	}
}

Test(events, full_fields_without_nul_and_every_buffer_size)
{
	struct els_record r = drop4();
	char host[300];

	memset(r.rule_name, '\x01', sizeof(r.rule_name)); /* no NUL: the field is full */
	memset(r.detail, '"', sizeof(r.detail) - 1);
	r.detail[sizeof(r.detail) - 1] = '\0';
	memset(host, '\x02', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	r.kind = ELS_REC_FLOW_END;
	json_t *j = fmt(&r, ELS_EVE_RECORD, host, ELS_EVE_MAX);
	cr_assert_eq(strlen(str(j, "els.permit")), sizeof(r.rule_name));
	cr_assert_eq(strlen(str(j, "els.detail")), sizeof(r.detail) - 1, "detail kept whole");
	cr_assert_eq(strlen(str(j, "host")), ELS_EVE_HOST_MAX);
	json_decref(j);
	for (size_t len = 64; len <= ELS_EVE_MAX; len++)
		json_decref(fmt(&r, ELS_EVE_RECORD, host, len));
}

Test(events, random_records_are_valid_json)
{
	unsigned seed = 1;
	for (int i = 0; i < 20000; i++) {
		struct els_record r;
		unsigned char *p = (unsigned char *)&r;
		for (size_t k = 0; k < sizeof(r); k++)
			p[k] = (unsigned char)rand_r(&seed);
		r.handler = (i & 1) ? "tracker" : NULL;
		/* counters past 2^63 are valid JSON; jansson reads them only as reals */
		json_decref(fmt_flags(&r, (enum els_eve_source)(i & 1), "h", ELS_EVE_MAX,
				      JSON_DECODE_INT_AS_REAL));
	}
}

Test(events, json_str_escapes)
{
	char buf[64];
	size_t pos = 0;

	els_json_str(buf, sizeof(buf), &pos, "a\"b\\c\n\x01", 7);
	cr_assert_str_eq(buf, "\"a\\\"b\\\\c\\u000a\\u0001\"");
	pos = 0;
	els_json_str(buf, 8, &pos, "abcdefghij", 10); /* cut, still closed */
	cr_assert_str_eq(buf, "\"abcde\"");
	pos = 0;
	els_json_str(buf, 9, &pos, "\xe2\x82\xac\xe2\x82\xac", 6); /* never half a character */
	cr_assert_str_eq(buf, "\"\xe2\x82\xac\xe2\x82\xac\"");
	pos = 0;
	els_json_str(buf, 8, &pos, "\xe2\x82\xac\xe2\x82\xac", 6);
	cr_assert_str_eq(buf, "\"\xe2\x82\xac\"");
}

Test(events, spool_lines)
{
	size_t m, u;
	const char ok[] = "<28>1 2026-01-01T00:00:00.000000Z h elsd 1 drop - {}\nrest";

	cr_assert_eq(ev_spool_next(ok, sizeof(ok) - 1, &m, &u), 1);
	cr_assert_eq(u, m + 1);
	cr_assert_eq(ev_spool_next("<28>1 partial", 13, &m, &u), 0);
	cr_assert_eq(u, 0);
	cr_assert_eq(ev_spool_next("garbage\n", 8, &m, &u), -1);
	cr_assert_eq(u, 8);
	cr_assert_eq(ev_spool_next("<999>1 x\n", 9, &m, &u), -1);
	cr_assert_eq(ev_spool_next("<28>1 ctl\x01\n", 11, &m, &u), -1);
	cr_assert_eq(ev_spool_next("<>1 x\n", 6, &m, &u), -1);
	char big[EV_SPOOL_LINE_MAX + 10];
	memset(big, 'a', sizeof(big));
	cr_assert_eq(ev_spool_next(big, sizeof(big), &m, &u), -1);
	cr_assert_eq(u, sizeof(big));
}

static int collect(void *ctx, const char *msg, size_t n)
{
	FILE *f = ctx;
	fprintf(f, "%.*s|", (int)n, msg);
	return 0;
}

Test(events, spool_roundtrip_skips_bad_lines_and_caps)
{
	char path[] = "/tmp/test_events_spool.XXXXXX";
	int fd = mkstemp(path);
	const char *bad = "not a syslog line\n<28>1 cut at the end";
	struct ev_spool s;
	uint64_t nbad = 0;
	char out[256] = "";
	FILE *f = fmemopen(out, sizeof(out), "w");

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
	close(fd);
	/* a file an earlier run (or a crash) left: kept, and what is not ours is skipped */
	cr_assert_eq(ev_spool_open(&s, path, 200), 0);
	cr_assert_eq(ev_spool_append(&s, "<30>1 a", 7), 0);
	cr_assert_eq(ev_spool_append(&s, "<30>1 b", 7), 0);
	char longmsg[190];
	memset(longmsg, 'x', sizeof(longmsg));
	memcpy(longmsg, "<30>1 ", 6);
	cr_assert_eq(ev_spool_append(&s, longmsg, sizeof(longmsg)), -ENOSPC, "the cap holds");
	cr_assert_eq(ev_spool_send(&s, 1 << 20, collect, f, &nbad), 0);
	fclose(f);
	/* the partial last line was cut at open (so "a" did not glue onto it): two bad */
	cr_assert_eq(nbad, 2);
	cr_assert_str_eq(out, "<30>1 a|<30>1 b|");
	cr_assert(ev_spool_empty(&s));
	cr_assert_eq(s.size, 0, "emptied once sent");
	ev_spool_close(&s);
	unlink(path);
}

static int parse(const char *text, struct els_events_conf **c)
{
	config_t cfg;
	struct els_diag d;
	int rc;

	config_init(&cfg);
	els_diag_init(&d, "t");
	cr_assert(config_read_string(&cfg, text), "%s", text);
	rc = els_events_conf_parse(config_root_setting(&cfg), "/etc/elsd/elsd.conf", c, &d);
	if (rc == 0)
		cr_assert_eq(d.count, 0);
	els_diag_free(&d);
	config_destroy(&cfg);
	return rc;
}

Test(events, settings)
{
	struct els_events_conf *c = NULL;

	cr_assert_eq(parse("x = 1;", &c), 0);
	cr_assert_null(c, "no events group: no stream");
	cr_assert_eq(parse("events = { file = \"eve.json\"; queue = 100; };", &c), 0);
	cr_assert_str_eq(c->file, "/etc/elsd/eve.json", "relative to the config file");
	cr_assert_eq(c->queue, 100);
	struct els_events_conf *d = els_events_conf_dup(c);
	cr_assert_str_eq(d->file, c->file);
	els_events_conf_free(d);
	els_events_conf_free(c);
	cr_assert_lt(parse("events = { };", &c), 0, "no output named");
	cr_assert_lt(parse("events = { file = \"x\"; rotate = 1; };", &c), 0, "unknown key");
	cr_assert_lt(parse("events = { file = \"x\"; queue = 1; };", &c), 0, "queue too small");
	cr_assert_lt(parse("events = { syslog = { server = \"h:6514\"; ca = \"/nonexistent\"; "
			   "cert = \"/nonexistent\"; key = \"/nonexistent\"; }; };",
			   &c),
		     0, "unreadable credentials");
	cr_assert_lt(parse("events = { syslog = { server = \"h\"; ca = \"/dev/null\"; "
			   "cert = \"/dev/null\"; key = \"/dev/null\"; }; };",
			   &c),
		     0, "no port");
	cr_assert_lt(parse("events = { syslog = { server = \"h:6514\"; }; };", &c), 0,
		     "TLS without credentials");
	cr_assert_eq(parse("events = { syslog = { server = \"[2001:db8::1]:6514\"; "
			   "ca = \"/dev/null\"; cert = \"/dev/null\"; key = \"/dev/null\"; "
			   "tls = \"1.3\"; spool_max_mb = 2; }; };",
			   &c),
		     0);
	cr_assert_str_eq(c->host, "2001:db8::1");
	cr_assert_str_eq(c->port, "6514");
	cr_assert_eq(c->tls_min, 13);
	cr_assert_eq(c->spool_max, 2u << 20);
	els_events_conf_free(c);
}
