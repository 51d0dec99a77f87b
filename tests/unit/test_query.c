/* lib/query/: the time grammar, filter validation, CIDR and IPv6 matching, the SQL path and
 * the JSON path agreeing row for row, order and limit, the wire form, NDJSON and top. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "els/handler.h"
#include "els/monitor.h"
#include "els/query.h"

#define NS 1000000000LL
static const int64_t now = 1700000000LL * NS;
static char dir[64], path[96];
static sqlite3 *db;

/* seq, ts (s), kind, verdict, src, sport, dst, dport, handler, reason, rule_name, count */
static const char rows_sql[] =
    "INSERT INTO records(seq, ts_ns, kind, verdict, dir, family, proto, src, sport, dst, dport,"
    " handler, reason, rule, rule_name, count, detail) VALUES"
    " (1, 1699990000000000000, 'drop', 'drop', 'in', 4, 'tcp', '198.18.9.7', 40000,"
    "  '198.18.0.2', 22, 'header_filter', 'no_permit', NULL, NULL, 5, NULL),"
    " (2, 1699995000000000000, 'admit', 'accept', 'in', 4, 'tcp', '198.18.0.1', 40001,"
    "  '198.18.0.2', 443, 'header_filter', 'permit', 1, 'https-in', 1, NULL),"
    " (3, 1699999000000000000, 'drop', 'drop', 'in', 6, 'tcp', '2001:db8:1::1', 40002,"
    "  '2001:db8:1::2', 22, 'iplist', 'deny_list', NULL, NULL, 2, NULL),"
    " (4, 1699999500000000000, 'event', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    "  'mgmt', 'event', NULL, NULL, 1, 'mgmt alice/admin@198.18.0.1 status: ok gen 1'),"
    " (5, 1699999900000000000, 'flow_end', 'accept', 'in', 4, 'tcp', '198.18.0.1', 40001,"
    "  '198.18.0.2', 443, 'tracker', 'flow_closed', 1, 'https-in', 1, NULL),"
    " (6, 1699999950000000000, 'drop', 'drop', 'out', 6, 'udp', '2001:db8:1::2', 5353,"
    "  '2001:db8:ff::9', 4444, 'header_filter', 'no_permit', NULL, NULL, 7, NULL);";

static void setup(void)
{
	char sql[2048];

	snprintf(dir, sizeof(dir), "/tmp/els-query-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/monitor.db", dir);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(
	    sql, sizeof(sql),
	    "CREATE TABLE records(seq INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, kind TEXT,"
	    " verdict TEXT, dir TEXT, family INTEGER, proto TEXT, src TEXT, sport INTEGER,"
	    " dst TEXT, dport INTEGER, icmp_type INTEGER, icmp_code INTEGER, tcp_flags INTEGER,"
	    " handler TEXT, reason TEXT, rule INTEGER, rule_name TEXT, generation INTEGER,"
	    " count INTEGER NOT NULL DEFAULT 1, pkts_init INTEGER, pkts_resp INTEGER,"
	    " bytes_init INTEGER, bytes_resp INTEGER, duration_ns INTEGER, detail TEXT,"
	    " mac BLOB);");
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_exec(db, rows_sql, NULL, NULL, NULL), SQLITE_OK, "%s",
		     sqlite3_errmsg(db));
	sqlite3_close(db);
	char err[256];
	cr_assert_eq(els_query_open(path, &db, err, sizeof(err)), 0, "%s", err);
}

static void teardown(void)
{
	sqlite3_close(db);
	unlink(path);
	rmdir(dir);
}

TestSuite(query, .init = setup, .fini = teardown);

static void set_ok(struct els_query *q, const char *name, const char *v)
{
	char err[512];

	cr_assert_eq(els_query_set(q, name, v, now, err, sizeof(err)), 0, "--%s %s: %s", name, v,
		     err);
}

/* The query's seqs through SQL, as "1,3,", oldest first. */
static void sql_seqs(const struct els_query *q, char *out, size_t len)
{
	sqlite3_stmt *st;
	char err[256];

	out[0] = '\0';
	cr_assert_eq(els_query_prepare(db, q, false, 0, &st, err, sizeof(err)), 0, "%s", err);
	while (sqlite3_step(st) == SQLITE_ROW)
		snprintf(out + strlen(out), len - strlen(out), "%lld,",
			 (long long)sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
}

/* The same through the JSON predicate on every row (how elsctl filters). */
static void json_seqs(const struct els_query *q, char *out, size_t len)
{
	struct els_query all;
	sqlite3_stmt *st;
	char err[256];

	els_query_init(&all, els_handler_all());
	out[0] = '\0';
	cr_assert_eq(els_query_prepare(db, &all, false, 0, &st, err, sizeof(err)), 0);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *row = els_query_row_json(st);

		if (els_query_match_json(q, row))
			snprintf(out + strlen(out), len - strlen(out), "%lld,",
				 (long long)json_integer_value(json_object_get(row, "seq")));
		json_decref(row);
	}
	sqlite3_finalize(st);
}

static void expect_rows(const struct els_query *q, const char *want)
{
	char a[128], b[128];

	sql_seqs(q, a, sizeof(a));
	cr_expect_str_eq(a, want, "SQL path: %s, want %s", a, want);
	if (!q->limit) {
		json_seqs(q, b, sizeof(b));
		cr_expect_str_eq(b, want, "JSON path: %s, want %s", b, want);
	}
}

#define Q(...)                                                                                     \
	do {                                                                                       \
		struct els_query q;                                                                \
		const char *args[] = {__VA_ARGS__};                                                \
		els_query_init(&q, els_handler_all());                                             \
		for (size_t i = 0; i + 2 < sizeof(args) / sizeof(args[0]); i += 2)                 \
			set_ok(&q, args[i], args[i + 1]);                                          \
		expect_rows(&q, args[sizeof(args) / sizeof(args[0]) - 1]);                         \
	} while (0)

Test(query, kinds_verdicts_reasons_handlers_lists)
{
	Q("", "1,2,3,4,5,6,");
	Q("kind", "drop", "1,3,6,");
	Q("kind", "drop,admit", "1,2,3,6,");
	Q("kind", "admit", "kind", "event", "2,4,");
	Q("verdict", "accept", "2,5,");
	Q("reason", "deny_list,permit", "2,3,");
	Q("handler", "mgmt", "4,");
	Q("handler", "iplist,tracker", "3,5,");
	Q("kind", "drop", "handler", "header_filter", "1,6,");
}

Test(query, cidr_and_ipv6_in_any_spelling)
{
	Q("addr", "198.18.9.0/24", "1,");
	Q("addr", "198.18.0.0/16", "1,2,5,");
	Q("addr", "198.18.0.2", "1,2,5,");
	Q("addr", "2001:db8:1::/48", "3,6,");
	/* non-canonical input matches the canonical stored text */
	Q("addr", "2001:0DB8:0001:0000:0000:0000:0000:0001", "3,");
	Q("addr", "2001:db8:0:0::0/32", "3,6,");
	Q("addr", "2001:db8:ff::9/128,198.18.9.7", "1,6,");
	Q("addr", "::/0", "3,6,");
}

Test(query, ports_and_times)
{
	Q("port", "22", "1,3,");
	Q("port", "443,4444", "2,5,6,");
	Q("port", "40001", "2,5,");
	Q("since", "@1699999000", "3,4,5,6,");
	Q("until", "@1699999000", "1,2,");
	Q("since", "1h", "3,4,5,6,"); /* now - 3600 = 1699996400 */
	Q("since", "2023-11-14T21:30:00Z", "3,4,5,6,");
	Q("since", "2023-11-14 21:58:20.5", "4,5,6,");
	Q("since", "1d", "until", "2023-11-14T22:00Z", "1,2,3,");
}

Test(query, limit_is_the_newest_rows_oldest_first)
{
	Q("limit", "2", "5,6,");
	Q("kind", "drop", "limit", "2", "3,6,");
	Q("before-seq", "4", "1,2,3,");
	Q("after-seq", "4", "5,6,");
}

Test(query, newest_first_with_extra)
{
	struct els_query q;
	sqlite3_stmt *st;
	char err[256], got[64] = "";

	els_query_init(&q, els_handler_all());
	set_ok(&q, "kind", "drop");
	set_ok(&q, "limit", "1");
	cr_assert_eq(els_query_prepare(db, &q, true, 1, &st, err, sizeof(err)), 0);
	while (sqlite3_step(st) == SQLITE_ROW)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%lld,",
			 (long long)sqlite3_column_int64(st, 0));
	sqlite3_finalize(st);
	cr_assert_str_eq(got, "6,3,");
}

/* A bad value is an error naming the option and the value, never an empty result. */
static void set_fails(const char *name, const char *v, const char *want)
{
	struct els_query q;
	char err[512];

	els_query_init(&q, els_handler_all());
	cr_expect_eq(els_query_set(&q, name, v, now, err, sizeof(err)), -EINVAL, "--%s %s accepted",
		     name, v);
	cr_expect(strstr(err, want), "--%s %s: '%s' lacks '%s'", name, v, err, want);
}

Test(query, bad_values_are_errors)
{
	set_fails("addr", "foo", "--addr 'foo': ");
	set_fails("addr", "198.18.9.1/24", "--addr '198.18.9.1/24'");
	set_fails("addr", "198.18.0.0/33", "--addr");
	set_fails("kind", "drop,nosuch", "--kind 'nosuch': one of drop, admit");
	set_fails("reason", "nosuch", "--reason 'nosuch': no such reason");
	set_fails("handler", "nosuch", "--handler 'nosuch': no such handler: one of iplist");
	set_fails("verdict", "maybe", "--verdict 'maybe': accept or drop");
	set_fails("port", "65536", "--port '65536': a port number");
	set_fails("port", "-1", "--port '-1'");
	set_fails("port", "", "--port '': ");
	set_fails("limit", "0", "--limit '0'");
	set_fails("since", "yesterday", "--since 'yesterday': not a time");
	set_fails("since", "1.5h", "not a time");
	set_fails("kind", ",", "--kind");
}

Test(query, handler_list_knows_handlers_and_other_sources)
{
	struct els_query q;

	els_query_init(&q, els_handler_all());
	set_ok(&q, "handler", "iplist,header_filter,tracker,anomaly,scan");
	set_ok(&q, "handler", "decode,chain,elsd,queue,mgmt,monitor");
	cr_assert_eq(q.nhandler, 11);
}

Test(time, grammar)
{
	int64_t ns;
	const char *why;

	cr_assert_eq(els_time_parse("@1700000000", now, &ns, &why), 0);
	cr_assert_eq(ns, now);
	cr_assert_eq(els_time_parse("90s", now, &ns, &why), 0);
	cr_assert_eq(ns, now - 90 * NS);
	cr_assert_eq(els_time_parse("15m", now, &ns, &why), 0);
	cr_assert_eq(ns, now - 900 * NS);
	cr_assert_eq(els_time_parse("2h", now, &ns, &why), 0);
	cr_assert_eq(ns, now - 7200 * NS);
	cr_assert_eq(els_time_parse("7d", now, &ns, &why), 0);
	cr_assert_eq(ns, now - 7 * 86400 * NS);
	cr_assert_eq(els_time_parse("1w", now, &ns, &why), 0);
	cr_assert_eq(ns, now - 604800 * NS);
	cr_assert_eq(els_time_parse("2023-11-14T22:13:20Z", now, &ns, &why), 0);
	cr_assert_eq(ns, now);
	cr_assert_eq(els_time_parse("2023-11-14T22:13:20.250", now, &ns, &why), 0);
	cr_assert_eq(ns, now + 250000000);
	cr_assert_eq(els_time_parse("2023-11-14 22:13", now, &ns, &why), 0);
	cr_assert_eq(ns, now - 20 * NS);
	cr_assert_eq(els_time_parse("2023-11-14", now, &ns, &why), 0);
	cr_assert_eq(ns, now - 80000 * NS);
}

Test(time, rejects)
{
	static const char *const bad[] = {"",
					  "@",
					  "@-1",
					  "m",
					  "15",
					  "15x",
					  "2023-13-01",
					  "2023-11-14x",
					  "1.5h",
					  "@12a",
					  "99999999999999w",
					  "4046-04-26",
					  "@9223372037"};
	int64_t ns;
	const char *why;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(els_time_parse(bad[i], now, &ns, &why), -EINVAL, "'%s' accepted",
			     bad[i]);
}

Test(time, format)
{
	char buf[40];

	els_time_format(1700000000123456789LL, buf, sizeof(buf));
	cr_assert_str_eq(buf, "2023-11-14T22:13:20.123Z");
}

Test(query, json_rows_have_every_column_in_order_with_nulls)
{
	struct els_query q;
	sqlite3_stmt *st;
	char err[256], *line = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&line, &len);

	els_query_init(&q, els_handler_all());
	set_ok(&q, "kind", "event");
	cr_assert_eq(els_query_prepare(db, &q, false, 0, &st, err, sizeof(err)), 0);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	json_t *row = els_query_row_json(st);
	sqlite3_finalize(st);
	els_query_print_ndjson(row, f);
	fclose(f);
	cr_assert_str_eq(
	    line, "{\"seq\":4,\"ts_ns\":1699999500000000000,\"time\":\"2023-11-14T22:05:00.000Z\","
		  "\"kind\":\"event\",\"verdict\":null,\"dir\":null,\"family\":null,"
		  "\"proto\":null,\"src\":null,\"sport\":null,\"dst\":null,\"dport\":null,"
		  "\"icmp_type\":null,\"icmp_code\":null,\"tcp_flags\":null,\"handler\":\"mgmt\","
		  "\"reason\":\"event\",\"rule\":null,\"rule_name\":null,\"generation\":null,"
		  "\"count\":1,\"pkts_init\":null,\"pkts_resp\":null,\"bytes_init\":null,"
		  "\"bytes_resp\":null,\"duration_ns\":null,"
		  "\"detail\":\"mgmt alice/admin@198.18.0.1 status: ok gen 1\"}\n");
	/* an answer's row with keys missing or out of order comes out the same */
	json_t *partial =
	    json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:I}", "detail",
		      "mgmt alice/admin@198.18.0.1 status: ok gen 1", "kind", "event", "seq",
		      (json_int_t)4, "ts_ns", (json_int_t)1699999500000000000LL, "handler", "mgmt",
		      "reason", "event", "count", (json_int_t)1);
	json_t *norm = els_query_row_normal(partial);
	char *a = json_dumps(norm, JSON_COMPACT | JSON_PRESERVE_ORDER);
	char *b = json_dumps(row, JSON_COMPACT | JSON_PRESERVE_ORDER);
	cr_assert_str_eq(a, b);
	free(a);
	free(b);
	free(line);
	json_decref(norm);
	json_decref(partial);
	json_decref(row);
}

Test(query, wire_args_carry_what_fits_and_nothing_narrower)
{
	struct els_query q;
	json_t *a;

	els_query_init(&q, els_handler_all());
	set_ok(&q, "kind", "drop");
	set_ok(&q, "addr", "2001:0db8::/32,198.18.9.0/24");
	set_ok(&q, "port", "22");
	set_ok(&q, "reason", "no_permit");
	a = els_query_wire_args(&q, 100);
	cr_assert_str_eq(json_string_value(json_object_get(a, "kind")), "drop");
	cr_assert_str_eq(json_string_value(json_object_get(a, "addr")),
			 "2001:db8::/32,198.18.9.0/24");
	cr_assert_eq(json_integer_value(json_object_get(a, "port")), 22);
	cr_assert_eq(json_integer_value(json_object_get(a, "limit")), 100);
	json_decref(a);
	/* two kinds, two ports: left out, the caller filters */
	set_ok(&q, "kind", "admit");
	set_ok(&q, "port", "443");
	a = els_query_wire_args(&q, 100);
	cr_assert_null(json_object_get(a, "kind"));
	cr_assert_null(json_object_get(a, "port"));
	json_decref(a);
}

Test(query, the_agent_side_checks_and_runs_the_same_query)
{
	const char *code;
	char msg[512];
	json_t *args = json_pack("{s:s, s:i}", "addr", "2001:db8::/32", "limit", 1);
	json_t *r = els_query_wire(path, args, els_handler_all(), 2000, &code, msg, sizeof(msg));

	cr_assert_not_null(r, "%s", msg);
	cr_assert_eq(json_array_size(json_object_get(r, "rows")), 1);
	cr_assert_eq(json_integer_value(
			 json_object_get(json_array_get(json_object_get(r, "rows"), 0), "seq")),
		     6, "newest first");
	cr_assert(json_is_true(json_object_get(r, "truncated")));
	json_decref(r);
	json_decref(args);
	args = json_pack("{s:s}", "addr", "foo");
	cr_assert_null(
	    els_query_wire(path, args, els_handler_all(), 2000, &code, msg, sizeof(msg)));
	cr_assert_str_eq(code, "bad_request");
	cr_assert(strstr(msg, "--addr 'foo'"), "%s", msg);
	json_decref(args);
	args = json_pack("{s:s}", "reason", "nosuch");
	cr_assert_null(
	    els_query_wire(path, args, els_handler_all(), 2000, &code, msg, sizeof(msg)));
	cr_assert_str_eq(code, "bad_request");
	json_decref(args);
}

Test(query, top_counts_packets_per_key)
{
	struct els_query q;
	struct els_top *t;
	sqlite3_stmt *st;
	enum els_top_by by;
	char err[256], *out = NULL;
	size_t len = 0;
	FILE *f;

	cr_assert_eq(els_top_by_parse("port", &by), 0);
	cr_assert_eq(els_top_by_parse("nosuch", &by), -EINVAL);
	els_query_init(&q, els_handler_all());
	set_ok(&q, "kind", "drop");
	t = els_top_new(ELS_TOP_PORT);
	cr_assert_eq(els_query_prepare(db, &q, false, 0, &st, err, sizeof(err)), 0);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *row = els_query_row_json(st);

		cr_assert_eq(els_top_add(t, row), 0);
		json_decref(row);
	}
	sqlite3_finalize(st);
	f = open_memstream(&out, &len);
	els_top_print(t, 10, false, f);
	fclose(f);
	cr_assert_str_eq(out, "PORT       PACKETS   RECORDS\n"
			      "22               7         2\n"
			      "4444             7         1\n");
	free(out);
	out = NULL;
	f = open_memstream(&out, &len);
	els_top_print(t, 1, true, f);
	fclose(f);
	cr_assert_str_eq(out, "{\"by\":\"port\",\"value\":22,\"packets\":7,\"records\":2}\n");
	free(out);
	els_top_free(t);
}
