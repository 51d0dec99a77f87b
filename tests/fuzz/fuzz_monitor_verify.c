/* The monitor verifier reads files an attacker may have written: meta entries of any shape,
 * columns of any SQLite type and length, seqs in any order. This builds such a file in memory
 * from the input and verifies it; the verifier must give an answer without crashing or
 * leaking, and every finding must say what it is.
 *
 * Input: a mode byte, two NUL-terminated strings (the head and anchor meta values, used
 * unless the mode's bit 0 / bit 1 asks for genuine, tagged ones: the anchor at genesis, the
 * head at the last genuinely chained row), then rows; each row is 27 values (26 columns and
 * the mac), each a type byte (value % 5: NULL, INTEGER from 8 bytes, FLOAT from 8 bytes, TEXT
 * or BLOB of the next byte's length). A mac type byte of 0xff stores the row's genuine MAC
 * instead, so that inputs reach deep into a valid chain and then break it. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "els/monitor.h"

static struct els_mon_key key;

static void init(void)
{
	char path[] = "/tmp/els-fuzz-key-XXXXXX", err[256];
	int fd = mkstemp(path);
	unsigned char k[ELS_MON_KEY_LEN];

	for (unsigned i = 0; i < sizeof(k); i++)
		k[i] = (unsigned char)(i * 7 + 1);
	if (fd < 0 || write(fd, k, sizeof(k)) != (ssize_t)sizeof(k) || fchmod(fd, 0600) != 0)
		abort();
	close(fd);
	if (els_mon_key_load(path, false, &key, err, sizeof(err)) != 0)
		abort();
	unlink(path);
}

static const char *take_str(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *z = memchr(*p, 0, (size_t)(end - *p));
	const char *s = (const char *)*p;

	if (!z)
		return NULL;
	*p = z + 1;
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	const uint8_t *p = data, *end = data + size;
	const char *head, *anchor;
	uint8_t mode;
	uint64_t chained = 0;
	sqlite3 *db = NULL;
	sqlite3_stmt *ins = NULL, *q = NULL;
	struct els_mon_meta meta;
	struct els_mon_verifier v;
	unsigned char prev[ELS_MON_MAC_LEN];
	char sql[512], err[256];
	int rc;

	if (!ready) {
		init();
		ready = true;
	}
	if (p == end)
		return 0;
	mode = *p++;
	head = take_str(&p, end);
	anchor = head ? take_str(&p, end) : NULL;
	if (!anchor)
		return 0;
	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		abort();
	snprintf(
	    sql, sizeof(sql),
	    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	    "CREATE TABLE records(seq INTEGER PRIMARY KEY, ts_ns, kind, verdict, dir, family,"
	    " proto, src, sport, dst, dport, icmp_type, icmp_code, tcp_flags, handler, reason,"
	    " rule, rule_name, generation, count, pkts_init, pkts_resp, bytes_init, bytes_resp,"
	    " duration_ns, detail, mac);"
	    "INSERT INTO meta VALUES('schema_version', '2'), ('chain_id', '0011223344556677'),"
	    " ('key_id', '%s');",
	    key.id);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		abort();
	sqlite3_prepare_v2(db, "INSERT INTO meta VALUES('head', ?1), ('anchor', ?2)", -1, &ins,
			   NULL);
	sqlite3_bind_text(ins, 1, head, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 2, anchor, -1, SQLITE_STATIC);
	sqlite3_step(ins);
	sqlite3_finalize(ins);
	sqlite3_prepare_v2(
	    db,
	    "INSERT INTO records VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
	    " ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25,"
	    " ?26, ?27)",
	    -1, &ins, NULL);
	els_mon_genesis(&key, "0011223344556677", prev);
	while (p < end) {
		bool want_mac = false;

		for (int c = 1; c <= ELS_MON_NCOLS + 1; c++) {
			uint8_t t = p < end ? *p++ : 0;
			uint64_t u = 0;
			double d;
			size_t n;

			if (t == 0xff && c == ELS_MON_NCOLS + 1) {
				want_mac = true;
				continue;
			}
			switch (t % 5) {
			case 1:
			case 2:
				n = end - p < 8 ? (size_t)(end - p) : 8;
				memcpy(&u, p, n);
				p += n;
				if (t % 5 == 1) {
					sqlite3_bind_int64(ins, c, (sqlite3_int64)u);
				} else {
					memcpy(&d, &u, sizeof(d));
					sqlite3_bind_double(ins, c, d);
				}
				break;
			case 3:
			case 4:
				n = p < end ? *p++ : 0;
				if (n > (size_t)(end - p))
					n = (size_t)(end - p);
				if (t % 5 == 3)
					sqlite3_bind_text(ins, c, (const char *)p, (int)n,
							  SQLITE_TRANSIENT);
				else
					sqlite3_bind_blob(ins, c, p, (int)n, SQLITE_TRANSIENT);
				p += n;
				break;
			default:
				sqlite3_bind_null(ins, c);
			}
		}
		rc = sqlite3_step(ins);
		sqlite3_reset(ins);
		sqlite3_clear_bindings(ins);
		if (want_mac && rc == SQLITE_DONE) {
			/* fill in the correct MAC for the row just inserted */
			sqlite3_int64 seq = sqlite3_last_insert_rowid(db);
			unsigned char mac[ELS_MON_MAC_LEN];

			snprintf(sql, sizeof(sql), "SELECT %s FROM records WHERE seq = %lld",
				 els_mon_columns, (long long)seq);
			if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK &&
			    sqlite3_step(q) == SQLITE_ROW &&
			    els_mon_row_mac(&key, prev, q, 0, mac) == 0) {
				sqlite3_finalize(q);
				q = NULL;
				memcpy(prev, mac, sizeof(prev));
				chained = (uint64_t)seq;
				sqlite3_prepare_v2(db, "UPDATE records SET mac = ?1 WHERE seq = ?2",
						   -1, &q, NULL);
				sqlite3_bind_blob(q, 1, mac, sizeof(mac), SQLITE_STATIC);
				sqlite3_bind_int64(q, 2, seq);
				sqlite3_step(q);
			}
			sqlite3_finalize(q);
			q = NULL;
		}
	}
	sqlite3_finalize(ins);
	if (mode & 1) {
		unsigned char g[ELS_MON_MAC_LEN];

		els_mon_genesis(&key, "0011223344556677", g);
		els_mon_meta_put_pos(db, &key, "0011223344556677", "anchor", 0, g);
	}
	if (mode & 2)
		els_mon_meta_put_pos(db, &key, "0011223344556677", "head", chained, prev);

	if (els_mon_meta_read(db, &key, &meta, err, sizeof(err)) == 0 && meta.head.ok &&
	    meta.anchor.ok) {
		snprintf(sql, sizeof(sql), "SELECT %s, mac FROM records ORDER BY seq",
			 els_mon_columns);
		els_mon_verify_init(&v, &key, &meta.anchor, meta.head.seq);
		sqlite3_prepare_v2(db, sql, -1, &q, NULL);
		while (sqlite3_step(q) == SQLITE_ROW && els_mon_verify_row(&v, q, 0))
			;
		sqlite3_finalize(q);
		q = NULL;
		if (!v.finding)
			els_mon_verify_end(&v, &meta.head);
		if (v.finding && !v.msg[0])
			abort(); /* every finding says what it is */
	}
	sqlite3_close(db);
	return 0;
}
