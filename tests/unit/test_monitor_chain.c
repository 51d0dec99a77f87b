/* Tamper evidence of the monitor file: the key file, the documented MAC format, and verify's
 * verdict on a clean file and on each kind of tampering done the way an attacker with the
 * sqlite3 tool would; migration from version 1; retention (only swept rows, never past a
 * tampered one, never on a forged sweep mark); the size cap's order of shedding. */
#include <criterion/criterion.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "els/handler.h"
#include "els/monitor.h"

static char dir[64], path[96], keypath[96];

static void rm(const char *suffix)
{
	char p[160];

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	unlink(p);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/els-chain-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/monitor.db", dir);
	snprintf(keypath, sizeof(keypath), "%s/monitor.key", dir);
}

static void teardown(void)
{
	char p[160];

	rm("");
	rm("-wal");
	rm("-shm");
	unlink(keypath);
	snprintf(p, sizeof(p), "%s/other.key", dir);
	unlink(p);
	rmdir(dir);
}

TestSuite(chain, .init = setup, .fini = teardown, .timeout = 60);

static struct els_monitor *open_opts(struct els_monitor_opts *o)
{
	struct els_diag d;
	struct els_monitor *m;

	o->path = path;
	if (!o->producers)
		o->producers = 1;
	if (!o->ring_size)
		o->ring_size = 8192;
	o->busy_timeout_ms = 200;
	els_diag_init(&d, NULL);
	m = els_monitor_open(o, &d);
	if (!m)
		els_diag_print(&d, stderr);
	els_diag_free(&d);
	cr_assert_not_null(m);
	return m;
}

static struct els_record rec(unsigned kind, uint64_t ts)
{
	struct els_record r;

	memset(&r, 0, sizeof(r));
	r.kind = (uint8_t)kind;
	r.ts_ns = ts;
	r.count = 1;
	if (kind == ELS_REC_DROP || kind == ELS_REC_ADMIT) {
		r.verdict = kind == ELS_REC_DROP ? ELS_DROP : ELS_ACCEPT;
		r.family = 4;
		r.proto = 6;
		r.src.b[0] = 198, r.src.b[1] = 51, r.src.b[2] = 100, r.src.b[3] = (uint8_t)ts;
		r.dst.b[0] = 192, r.dst.b[3] = 1;
		r.sport = 40000;
		r.dport = 443;
		r.handler = "header_filter";
	}
	snprintf(r.detail, sizeof(r.detail), "%s", kind == ELS_REC_EVENT ? "test event" : "");
	return r;
}

/* n events with ts_ns = ts0, ts0 + 1, ... in a new or existing file. */
static void write_events(unsigned n, uint64_t ts0)
{
	struct els_monitor_opts o = {.batch_max = 16};
	struct els_monitor *m = open_opts(&o);

	for (unsigned i = 0; i < n; i++) {
		struct els_record r = rec(i % 3 == 2 ? ELS_REC_DROP : ELS_REC_EVENT, ts0 + i);

		cr_assert(els_ring_push(els_monitor_ring(m, 0), &r));
	}
	els_monitor_close(m);
}

static void exec_sql(const char *sql)
{
	sqlite3 *db;
	char *err = NULL;

	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &err), SQLITE_OK, "%s: %s", sql, err);
	sqlite3_close(db);
}

static long long q_int(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	long long v;

	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void load_key(struct els_mon_key *k)
{
	char err[256];

	cr_assert_eq(els_mon_key_load(keypath, false, k, err, sizeof(err)), 0, "%s", err);
}

/* Verifies the file; returns the finding and the seq it names. */
static int verify(uint64_t *at, char *msg, size_t msglen)
{
	struct els_mon_key k;
	struct els_mon_verifier v;
	struct els_mon_meta meta;
	char err[256];

	load_key(&k);
	cr_assert_eq(els_mon_verify_file(path, &k, &v, &meta, NULL, err, sizeof(err)), 0, "%s",
		     err);
	els_mon_key_wipe(&k);
	if (at)
		*at = v.at;
	if (msg)
		snprintf(msg, msglen, "%s", v.msg);
	return v.finding;
}

static void expect(int finding, uint64_t at, const char *words)
{
	uint64_t got_at = 0;
	char msg[256];
	int got = verify(&got_at, msg, sizeof(msg));

	cr_assert_eq(got, finding, "finding %d, expected %d: %s", got, finding, msg);
	cr_assert_eq(got_at, at, "at %lu, expected %lu: %s", (unsigned long)got_at,
		     (unsigned long)at, msg);
	if (words)
		cr_assert(strstr(msg, words), "'%s' lacks '%s'", msg, words);
}

/* ---- the key ---- */

Test(chain, key_is_created_private_and_reused)
{
	struct els_mon_key a, b;
	char err[256];
	struct stat sb;

	cr_assert_eq(els_mon_key_load(keypath, true, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(stat(keypath, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	cr_assert_eq(sb.st_size, ELS_MON_KEY_LEN);
	cr_assert_eq(strlen(a.id), 16);
	cr_assert_eq(els_mon_key_load(keypath, true, &b, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(a.id, b.id);
	cr_assert_eq(memcmp(a.k, b.k, sizeof(a.k)), 0);
	els_mon_key_wipe(&a);
	els_mon_key_wipe(&b);
}

Test(chain, key_others_can_read_is_refused)
{
	struct els_mon_key k;
	char err[256];

	cr_assert_eq(els_mon_key_load(keypath, true, &k, err, sizeof(err)), 0);
	els_mon_key_wipe(&k);
	cr_assert_eq(chmod(keypath, 0640), 0);
	cr_assert_eq(els_mon_key_load(keypath, true, &k, err, sizeof(err)), -EPERM);
	cr_assert(strstr(err, "chmod 600") && strstr(err, keypath), "%s", err);
	cr_assert_eq(chmod(keypath, 0604), 0);
	cr_assert_eq(els_mon_key_load(keypath, false, &k, err, sizeof(err)), -EPERM);
	/* and the monitor will not open with it either */
	{
		struct els_monitor_opts o = {.path = path, .producers = 1};
		struct els_diag d;

		els_diag_init(&d, NULL);
		cr_assert_null(els_monitor_open(&o, &d));
		cr_assert_eq(d.count, 1);
		cr_assert(strstr(d.msgs[0], "accessible by group or others"), "%s", d.msgs[0]);
		els_diag_free(&d);
	}
}

Test(chain, key_of_wrong_size_or_missing_is_refused)
{
	struct els_mon_key k;
	char err[256];
	FILE *f = fopen(keypath, "w");

	fputs("short", f);
	fclose(f);
	chmod(keypath, 0600);
	cr_assert_eq(els_mon_key_load(keypath, true, &k, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "exactly 32 bytes"), "%s", err);
	unlink(keypath);
	cr_assert_eq(els_mon_key_load(keypath, false, &k, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, keypath), "%s", err);
}

/* ---- the format, computed independently from docs/forensics.md ---- */

static void put_u64(unsigned char **p, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
		*(*p)++ = (unsigned char)(v >> (8 * i));
}

static void put_text(unsigned char **p, const char *s)
{
	uint32_t n = (uint32_t)strlen(s);

	*(*p)++ = 3; /* SQLITE_TEXT */
	for (int i = 3; i >= 0; i--)
		*(*p)++ = (unsigned char)(n >> (8 * i));
	memcpy(*p, s, n);
	*p += n;
}

Test(chain, mac_follows_the_documented_format)
{
	struct els_mon_key k;
	unsigned char g[32], mac[32], buf[1024], *p = buf;
	unsigned len = 0;
	char chain_id[17] = "";
	sqlite3 *db;
	sqlite3_stmt *st;
	struct els_record r = rec(ELS_REC_EVENT, 1234567890123ull);

	{
		struct els_monitor_opts o = {0};
		struct els_monitor *m = open_opts(&o);

		r.handler = "elsd";
		r.reason = ELS_R_EVENT;
		r.generation = 7;
		cr_assert(els_ring_push(els_monitor_ring(m, 0), &r));
		els_monitor_close(m);
	}
	load_key(&k);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(
	    sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'chain_id'", -1, &st, NULL),
	    SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	snprintf(chain_id, sizeof(chain_id), "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	/* genesis = HMAC(key, "els-genesis\0" || chain_id) */
	memcpy(buf, "els-genesis", 12);
	memcpy(buf + 12, chain_id, 16);
	cr_assert_not_null(HMAC(EVP_sha256(), k.k, 32, buf, 28, g, &len));
	/* row 1 = HMAC(key, genesis || 0x02 || columns) */
	memcpy(p, g, 32);
	p += 32;
	*p++ = 2;
	*p++ = 1, put_u64(&p, 1);		 /* seq */
	*p++ = 1, put_u64(&p, 1234567890123ull); /* ts_ns */
	put_text(&p, "event");			 /* kind */
	for (int i = 0; i < 11; i++)		 /* verdict .. tcp_flags */
		*p++ = 5;			 /* NULL */
	put_text(&p, "elsd");			 /* handler */
	put_text(&p, "event");			 /* reason */
	*p++ = 5, *p++ = 5;			 /* rule, rule_name */
	*p++ = 1, put_u64(&p, 7);		 /* generation */
	*p++ = 1, put_u64(&p, 1);		 /* count */
	for (int i = 0; i < 5; i++)		 /* pkts, bytes, duration */
		*p++ = 5;
	put_text(&p, "test event"); /* detail */
	cr_assert_not_null(HMAC(EVP_sha256(), k.k, 32, buf, (size_t)(p - buf), mac, &len));
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT mac FROM records WHERE seq = 1", -1, &st, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_bytes(st, 0), 32);
	cr_assert_eq(memcmp(sqlite3_column_blob(st, 0), mac, 32), 0,
		     "the stored MAC is not HMAC-SHA256 over the documented canonical form");
	sqlite3_finalize(st);
	sqlite3_close(db);
	els_mon_key_wipe(&k);
}

/* ---- verify ---- */

Test(chain, clean_file_verifies_with_gaps_and_reopens)
{
	struct els_monitor_opts o = {.ring_size = 4};
	struct els_monitor *m = open_opts(&o);

	/* not started: a ring of 4 loses 6 of 10, a gap row is chained like any other */
	for (unsigned i = 0; i < 10; i++) {
		struct els_record r = rec(ELS_REC_DROP, 100 + i);

		els_ring_push(els_monitor_ring(m, 0), &r);
	}
	els_monitor_close(m);
	write_events(40, 1000);
	cr_assert_eq(q_int("SELECT count(*) FROM records WHERE kind = 'gap'"), 1);
	cr_assert_eq(q_int("SELECT count(*) FROM records"), 45);
	cr_assert_eq(q_int("SELECT max(seq) - min(seq) + 1 FROM records"), 45);
	expect(ELS_MF_NONE, 0, NULL);
}

Test(chain, edited_row_is_found)
{
	write_events(30, 1000);
	exec_sql("UPDATE records SET dport = 22 WHERE seq = 12");
	expect(ELS_MF_ALTERED, 12, "record 12 was altered");
}

Test(chain, edited_mac_is_found)
{
	write_events(30, 1000);
	exec_sql("UPDATE records SET mac = randomblob(32) WHERE seq = 7");
	expect(ELS_MF_ALTERED, 7, "altered");
}

Test(chain, renumbered_row_is_found)
{
	write_events(30, 1000);
	exec_sql("DELETE FROM records WHERE seq = 9; UPDATE records SET seq = 9 WHERE seq = 10");
	expect(ELS_MF_ALTERED, 9, NULL);
}

Test(chain, deleted_rows_are_found)
{
	write_events(30, 1000);
	exec_sql("DELETE FROM records WHERE seq = 17");
	expect(ELS_MF_DELETED, 17, "record 17 was deleted");
	exec_sql("DELETE FROM records WHERE seq BETWEEN 3 AND 5");
	expect(ELS_MF_DELETED, 3, "records 3..5 were deleted");
}

Test(chain, deleted_first_rows_are_found)
{
	write_events(30, 1000);
	exec_sql("DELETE FROM records WHERE seq <= 2");
	expect(ELS_MF_DELETED, 1, "records 1..2");
}

Test(chain, inserted_rows_are_found)
{
	write_events(30, 1000);
	/* as the sqlite3 tool would: seq = max + 1, no MAC */
	exec_sql("INSERT INTO records(ts_ns, kind, count) VALUES(5, 'event', 1)");
	expect(ELS_MF_INSERTED, 31, "inserted");
}

Test(chain, inserted_copy_with_a_mac_is_found)
{
	write_events(30, 1000);
	exec_sql("INSERT INTO records SELECT 31, ts_ns, kind, verdict, dir, family, proto, src,"
		 " sport, dst, dport, icmp_type, icmp_code, tcp_flags, handler, reason, rule,"
		 " rule_name, generation, count, pkts_init, pkts_resp, bytes_init, bytes_resp,"
		 " duration_ns, detail, mac FROM records WHERE seq = 30");
	expect(ELS_MF_INSERTED, 31, "beyond the chain head");
}

Test(chain, forged_row_in_a_hole_is_found)
{
	write_events(30, 1000);
	exec_sql("DELETE FROM records WHERE seq = 20;"
		 "INSERT INTO records(seq, ts_ns, kind, count, mac) VALUES(20, 1, 'event', 1,"
		 " (SELECT mac FROM records WHERE seq = 19))");
	expect(ELS_MF_ALTERED, 20, NULL);
}

Test(chain, truncated_tail_is_found)
{
	write_events(30, 1000);
	exec_sql("DELETE FROM records WHERE seq > 26");
	expect(ELS_MF_TRUNCATED, 27, "records 27..30 are missing at the end");
}

Test(chain, moved_head_is_found)
{
	write_events(30, 1000);
	/* delete the tail and point the head at the new last row: its tag cannot be made */
	exec_sql("DELETE FROM records WHERE seq > 26;"
		 "UPDATE meta SET value = '26 ' || lower(hex((SELECT mac FROM records WHERE"
		 " seq = 26))) || ' ' || substr(value, -64) WHERE key = 'head'");
	expect(ELS_MF_META, 0, "chain head in meta was altered");
	exec_sql("DELETE FROM meta WHERE key = 'head'");
	expect(ELS_MF_META, 0, "removed");
}

Test(chain, wrong_key_cannot_verify)
{
	struct els_mon_key k;
	struct els_mon_verifier v;
	struct els_mon_meta meta;
	char err[256], other[160];

	write_events(5, 1000);
	snprintf(other, sizeof(other), "%s/other.key", dir);
	cr_assert_eq(els_mon_key_load(other, true, &k, err, sizeof(err)), 0);
	cr_assert_eq(els_mon_verify_file(path, &k, &v, &meta, NULL, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "key id"), "%s", err);
	els_mon_key_wipe(&k);
}

Test(chain, writer_after_truncation_keeps_the_evidence)
{
	uint64_t at;
	char msg[256];

	write_events(30, 1000);
	exec_sql("DELETE FROM records WHERE seq > 26");
	write_events(3, 5000);
	/* the new rows continue after the old head, and say what elsd found */
	cr_assert_eq(q_int("SELECT min(seq) FROM records WHERE ts_ns >= 5000 OR "
			   "detail LIKE 'at open:%'"),
		     31);
	cr_assert_eq(q_int("SELECT count(*) FROM records WHERE kind = 'event' AND "
			   "detail LIKE 'at open: records 27..30 missing at the end'"),
		     1);
	cr_assert_eq(verify(&at, msg, sizeof(msg)), ELS_MF_DELETED, "%s", msg);
	cr_assert_eq(at, 27, "%s", msg);
}

/* ---- migration ---- */

Test(chain, version_1_file_is_migrated)
{
	exec_sql("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
		 "CREATE TABLE records(seq INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL,"
		 " kind TEXT NOT NULL, verdict TEXT, dir TEXT, family INTEGER, proto TEXT,"
		 " src TEXT, sport INTEGER, dst TEXT, dport INTEGER, icmp_type INTEGER,"
		 " icmp_code INTEGER, tcp_flags INTEGER, handler TEXT, reason TEXT, rule INTEGER,"
		 " rule_name TEXT, generation INTEGER, count INTEGER NOT NULL DEFAULT 1,"
		 " pkts_init INTEGER, pkts_resp INTEGER, bytes_init INTEGER, bytes_resp INTEGER,"
		 " duration_ns INTEGER, detail TEXT);"
		 "CREATE INDEX records_ts ON records(ts_ns);"
		 "INSERT INTO meta VALUES('schema_version', '1');"
		 "INSERT INTO records(seq, ts_ns, kind, count) VALUES(5, 1, 'event', 1),"
		 " (6, 2, 'drop', 3), (9, 3, 'event', 1);");
	write_events(4, 1000);
	cr_assert_eq(q_int("SELECT value FROM meta WHERE key = 'schema_version'"), 2);
	cr_assert_eq(q_int("SELECT value FROM meta WHERE key = 'migrated_v1'"), 9);
	cr_assert_eq(q_int("SELECT count(*) FROM records WHERE detail LIKE 'migrated from%'"), 1);
	cr_assert_eq(q_int("SELECT min(seq) FROM records WHERE ts_ns = 1000"), 11);
	expect(ELS_MF_NONE, 0, NULL);
	exec_sql("UPDATE records SET count = 4 WHERE seq = 6");
	expect(ELS_MF_ALTERED, 6, NULL);
}

/* ---- retention ---- */

/* Marks everything up to seq as swept, as els-sweep does (good: with a valid tag). */
static void mark_swept(uint64_t seq, bool good)
{
	struct els_mon_key k;
	struct els_mon_meta meta;
	sqlite3 *db;
	sqlite3_stmt *st;
	unsigned char mac[32];
	char err[256];

	load_key(&k);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(els_mon_meta_read(db, &k, &meta, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(
	    sqlite3_prepare_v2(db, "SELECT mac FROM records WHERE seq = ?1", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
	memcpy(mac, sqlite3_column_blob(st, 0), 32);
	sqlite3_finalize(st);
	cr_assert_eq(els_mon_meta_put_pos(db, &k, meta.chain_id, "swept", seq, mac), SQLITE_OK);
	if (!good)
		cr_assert_eq(sqlite3_exec(db,
					  "UPDATE meta SET value = substr(value, 1, length(value)"
					  " - 64) || printf('%064d', 0) WHERE key = 'swept'",
					  NULL, NULL, NULL),
			     SQLITE_OK);
	sqlite3_close(db);
	els_mon_key_wipe(&k);
}

static void run_retention(unsigned days)
{
	struct els_monitor_opts o = {.retention_days = days, .retention_period_ms = 10};
	struct els_monitor *m = open_opts(&o);

	cr_assert_eq(els_monitor_start(m), 0);
	els_monitor_close(m); /* a first retention run always completes */
}

#define OLD_NS 1577836800000000000ull /* 2020-01-01 */

Test(chain, retention_deletes_only_swept_old_records)
{
	write_events(2500, OLD_NS);
	write_events(20, (uint64_t)time(NULL) * 1000000000ull);
	mark_swept(2400, true);
	run_retention(30);
	/* 2400 swept and old rows deleted (in several steps); unswept old rows stay */
	cr_assert_eq(q_int("SELECT min(seq) FROM records"), 2401);
	cr_assert_eq(q_int("SELECT count(*) FROM records WHERE ts_ns < 1600000000000000000"), 100);
	cr_assert_eq(q_int("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'anchor'"), 2400);
	expect(ELS_MF_NONE, 0, NULL);
	/* swept but young rows stay too */
	mark_swept(2520, true);
	run_retention(30);
	cr_assert_eq(q_int("SELECT min(seq) FROM records"), 2501);
	expect(ELS_MF_NONE, 0, NULL);
}

Test(chain, retention_ignores_a_forged_sweep_mark)
{
	write_events(50, OLD_NS);
	mark_swept(40, false);
	run_retention(1);
	cr_assert_eq(q_int("SELECT count(*) FROM records"), 50);
	expect(ELS_MF_NONE, 0, NULL);
}

Test(chain, retention_keeps_a_tampered_record)
{
	write_events(50, OLD_NS);
	mark_swept(40, true);
	exec_sql("UPDATE records SET ts_ns = 5 WHERE seq = 30");
	run_retention(1);
	cr_assert_eq(q_int("SELECT min(seq) FROM records"), 30);
	expect(ELS_MF_ALTERED, 30, NULL);
}

/* ---- size cap ---- */

Test(chain, size_cap_sheds_admits_before_drops_and_reports)
{
	struct els_monitor_opts o = {.max_size = 160 * 1024, .batch_max = 64};
	struct els_monitor *m = open_opts(&o);
	struct els_monitor_stats s;
	const unsigned n = 6000;
	long long soft, full, last_admit, last_drop, shed_gaps;

	cr_assert_eq(els_monitor_start(m), 0);
	for (unsigned i = 0; i < n; i++) {
		struct els_record r = rec(i % 2 ? ELS_REC_DROP : ELS_REC_ADMIT, 1000 + i);

		cr_assert(els_ring_push(els_monitor_ring(m, 0), &r));
		if (i % 64 == 63)
			cr_assert_eq(els_monitor_sync(m, 5000), 0);
	}
	cr_assert_eq(els_monitor_sync(m, 5000), 0);
	els_monitor_get_stats(m, &s);
	cr_assert_eq(s.cap_level, 2, "the file never filled");
	els_monitor_close(m);
	soft = q_int("SELECT min(seq) FROM records WHERE detail LIKE '%not writing admits%'");
	full = q_int("SELECT min(seq) FROM records WHERE detail LIKE '%full: not writing drops%'");
	last_admit = q_int("SELECT max(seq) FROM records WHERE kind = 'admit'");
	last_drop = q_int("SELECT max(seq) FROM records WHERE kind = 'drop'");
	shed_gaps = q_int("SELECT coalesce(sum(count), 0) FROM records WHERE kind = 'gap' AND "
			  "detail LIKE 'size cap:%'");
	cr_assert(soft > 0 && full > soft, "soft %lld full %lld", soft, full);
	cr_assert_lt(last_admit, soft, "admits are shed first");
	cr_assert(last_drop > soft && last_drop < full, "drops go on until the file is full");
	cr_assert_eq((uint64_t)shed_gaps, s.shed, "gap rows account for every shed record");
	cr_assert_eq(q_int("SELECT count(*) FROM records WHERE kind IN ('admit', 'drop')") +
			 shed_gaps,
		     n, "every record is in the file or in a size-cap gap");
	expect(ELS_MF_NONE, 0, NULL);
}

Test(chain, swept_rows_make_room_under_the_cap)
{
	struct els_monitor_opts o = {.max_size = 160 * 1024, .batch_max = 64};
	struct els_monitor *m = open_opts(&o);
	struct els_monitor_stats s;

	cr_assert_eq(els_monitor_start(m), 0);
	for (unsigned i = 0; i < 4000; i++) {
		struct els_record r = rec(ELS_REC_DROP, 1000 + i);

		cr_assert(els_ring_push(els_monitor_ring(m, 0), &r));
		if (i % 64 == 63)
			cr_assert_eq(els_monitor_sync(m, 5000), 0);
	}
	cr_assert_eq(els_monitor_sync(m, 5000), 0);
	els_monitor_get_stats(m, &s);
	cr_assert_eq(s.cap_level, 2);
	els_monitor_close(m);
	/* once swept, rows of any age go when the cap is reached (retention_days = 0 here) */
	mark_swept((uint64_t)q_int("SELECT max(seq) FROM records"), true);
	m = open_opts(&o);
	cr_assert_eq(els_monitor_start(m), 0);
	for (int tries = 0; tries < 500; tries++) {
		struct els_record r = rec(ELS_REC_DROP, 9000);

		cr_assert(els_ring_push(els_monitor_ring(m, 0), &r));
		cr_assert_eq(els_monitor_sync(m, 5000), 0);
		els_monitor_get_stats(m, &s);
		if (s.cap_level == 0)
			break;
		usleep(10000);
	}
	cr_assert_eq(s.cap_level, 0, "retention did not make room");
	cr_assert_gt(s.retained, 500, "retained %lu", (unsigned long)s.retained);
	els_monitor_close(m);
	cr_assert_eq(q_int("SELECT count(*) FROM records WHERE detail LIKE "
			   "'%writing every record again'"),
		     1);
	expect(ELS_MF_NONE, 0, NULL);
}
