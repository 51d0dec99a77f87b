/* The monitor file's schema and chain state (see docs/monitor-schema.md): creating a file,
 * migrating a version 1 file, finding where the chain continues in an existing one, and
 * retention. Called by the writer thread (or the opener before it starts), always inside a
 * transaction it controls, except mon_retain_step which is one transaction of its own. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "els/monitor_int.h"

#define MIGRATE_CHUNK 4096

/* The records table from the one column list (els/monitor.h). */
#define COLUMN_DECL(name, decl) " " #name " " decl ","
#define RECORDS_TABLE                                                                              \
	"CREATE TABLE records(" ELS_MON_COLUMNS(COLUMN_DECL, COLUMN_DECL) " mac BLOB);"

static const char schema_sql[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);" RECORDS_TABLE
    "CREATE INDEX records_ts ON records(ts_ns);"
    "CREATE VIEW records_v AS SELECT seq,"
    " strftime('%Y-%m-%dT%H:%M:%fZ', ts_ns/1e9, 'unixepoch') AS time, kind, verdict, dir,"
    " proto, src, sport, dst, dport, handler, reason, rule_name, count, detail FROM records;"
    "INSERT INTO meta(key, value) VALUES('schema_version', '2');";

int mon_insert_sql(char *buf, size_t len, unsigned n)
{
	size_t off =
	    (size_t)snprintf(buf, len, "INSERT INTO records(%s, mac) VALUES", els_mon_columns);

	for (unsigned r = 0; r < n && off < len; r++) {
		off += (size_t)snprintf(buf + off, len - off, "%s(", r ? "," : "");
		for (unsigned c = 0; c <= ELS_MON_NCOLS && off < len; c++)
			off += (size_t)snprintf(buf + off, len - off, "%s?", c ? "," : "");
		if (off < len)
			off += (size_t)snprintf(buf + off, len - off, ")");
	}
	return off < len ? 0 : -ENOMEM;
}

static int meta_put(sqlite3 *db, const char *k, const char *v)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
				    -1, &st, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, v, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
	}
	sqlite3_finalize(st);
	return rc;
}

static void host_name(char *buf, size_t len)
{
	if (gethostname(buf, len) != 0 || !buf[0])
		snprintf(buf, len, "unknown");
	buf[len - 1] = '\0';
}

/* Identity of a new chain: agent, host, a random chain id, the key's id, the time. */
static int new_identity(sqlite3 *db, const struct els_mon_key *key, const char *agent_id,
			struct mon_file_state *st)
{
	unsigned char id[8];
	char host[128], now[32];
	time_t t = time(NULL);
	struct tm tm;

	if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
		return SQLITE_IOERR;
	els_mon_hex(id, sizeof(id), st->chain_id);
	host_name(host, sizeof(host));
	snprintf(st->agent_id, sizeof(st->agent_id), "%s", agent_id && *agent_id ? agent_id : host);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	int rc = meta_put(db, "agent_id", st->agent_id);
	if (rc == SQLITE_OK)
		rc = meta_put(db, "host", host);
	if (rc == SQLITE_OK)
		rc = meta_put(db, "chain_id", st->chain_id);
	if (rc == SQLITE_OK)
		rc = meta_put(db, "key_id", key->id);
	if (rc == SQLITE_OK)
		rc = meta_put(db, "created", now);
	return rc;
}

static int create_file(sqlite3 *db, const struct els_mon_key *key, const char *agent_id,
		       struct mon_file_state *st)
{
	int rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);

	if (rc == SQLITE_OK)
		rc = new_identity(db, key, agent_id, st);
	st->head_seq = 0;
	els_mon_genesis(key, st->chain_id, st->head_mac);
	if (rc == SQLITE_OK)
		rc = els_mon_meta_put_pos(db, key, st->chain_id, "anchor", 0, st->head_mac);
	if (rc == SQLITE_OK)
		rc = els_mon_meta_put_pos(db, key, st->chain_id, "head", 0, st->head_mac);
	return rc;
}

/* Version 1 -> 2: a mac column, and a chain over the rows as they are now. Those rows were not
 * protected before, so the chain vouches only for what the file held at migration; meta says
 * up to which seq (migrated_v1). Chunked: the scan does not read rows it is updating. */
static int migrate_v1(sqlite3 *db, const struct els_mon_key *key, const char *agent_id,
		      struct mon_file_state *st)
{
	sqlite3_stmt *sel = NULL, *upd = NULL;
	uint64_t *seqs = NULL, last = 0, first = 0;
	unsigned char(*macs)[ELS_MON_MAC_LEN] = NULL;
	unsigned char prev[ELS_MON_MAC_LEN];
	char sql[512], num[24];
	bool any = false;
	int rc;

	rc = sqlite3_exec(db, "ALTER TABLE records ADD COLUMN mac BLOB", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = new_identity(db, key, agent_id, st);
	if (rc != SQLITE_OK)
		return rc;
	els_mon_genesis(key, st->chain_id, prev);
	seqs = calloc(MIGRATE_CHUNK, sizeof(*seqs));
	macs = calloc(MIGRATE_CHUNK, sizeof(*macs));
	snprintf(sql, sizeof(sql), "SELECT %s FROM records WHERE seq > ?1 ORDER BY seq LIMIT %d",
		 els_mon_columns, MIGRATE_CHUNK);
	if (!seqs || !macs) {
		rc = SQLITE_NOMEM;
		goto out;
	}
	rc = sqlite3_prepare_v2(db, sql, -1, &sel, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "UPDATE records SET mac = ?1 WHERE seq = ?2", -1, &upd,
					NULL);
	for (unsigned n = MIGRATE_CHUNK; rc == SQLITE_OK && n == MIGRATE_CHUNK;) {
		n = 0;
		sqlite3_bind_int64(sel, 1, (sqlite3_int64)last);
		while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
			seqs[n] = (uint64_t)sqlite3_column_int64(sel, 0);
			if (!any)
				first = seqs[n];
			any = true;
			if (els_mon_row_mac(key, prev, sel, 0, macs[n]) != 0) {
				rc = SQLITE_NOMEM;
				break;
			}
			memcpy(prev, macs[n], sizeof(prev));
			last = seqs[n++];
		}
		sqlite3_reset(sel);
		if (rc != SQLITE_DONE)
			break;
		rc = SQLITE_OK;
		for (unsigned i = 0; i < n && rc == SQLITE_OK; i++) {
			sqlite3_bind_blob(upd, 1, macs[i], ELS_MON_MAC_LEN, SQLITE_STATIC);
			sqlite3_bind_int64(upd, 2, (sqlite3_int64)seqs[i]);
			rc = sqlite3_step(upd) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
			sqlite3_reset(upd);
		}
	}
	if (rc != SQLITE_OK)
		goto out;
	/* the anchor sits just before the oldest row, chained on genesis */
	{
		unsigned char g[ELS_MON_MAC_LEN];

		els_mon_genesis(key, st->chain_id, g);
		rc = els_mon_meta_put_pos(db, key, st->chain_id, "anchor", any ? first - 1 : 0, g);
	}
	st->head_seq = last;
	memcpy(st->head_mac, prev, sizeof(prev));
	snprintf(num, sizeof(num), "%" PRIu64, last);
	if (rc == SQLITE_OK)
		rc = els_mon_meta_put_pos(db, key, st->chain_id, "head", last, prev);
	if (rc == SQLITE_OK)
		rc = meta_put(db, "migrated_v1", num);
	if (rc == SQLITE_OK)
		rc = meta_put(db, "schema_version", "2");
	snprintf(st->note, sizeof(st->note),
		 "migrated from schema version 1: records up to %" PRIu64 " chained at migration",
		 last);
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	free(seqs);
	free(macs);
	return rc;
}

/* Where an existing chain continues. The writer keeps going whatever it finds (filtering and
 * recording matter more than a clean file), but what does not add up goes into the file as
 * an event, inside the chain, where nobody without the key can remove it unseen. */
static int resume(sqlite3 *db, const struct els_mon_key *key, const struct els_mon_meta *meta,
		  struct mon_file_state *st)
{
	sqlite3_stmt *q = NULL;
	uint64_t last = 0;
	unsigned char last_mac[ELS_MON_MAC_LEN];
	bool have_last = false, last_mac_ok = false;
	char host[128];
	int rc;

	snprintf(st->chain_id, sizeof(st->chain_id), "%s", meta->chain_id);
	snprintf(st->agent_id, sizeof(st->agent_id), "%s", meta->agent_id);
	rc = sqlite3_prepare_v2(db, "SELECT seq, mac FROM records ORDER BY seq DESC LIMIT 1", -1,
				&q, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		have_last = true;
		last = (uint64_t)sqlite3_column_int64(q, 0);
		last_mac_ok = sqlite3_column_bytes(q, 1) == ELS_MON_MAC_LEN;
		if (last_mac_ok)
			memcpy(last_mac, sqlite3_column_blob(q, 1), sizeof(last_mac));
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return rc;
	if (meta->head.present && meta->head.ok) {
		st->head_seq = meta->head.seq;
		memcpy(st->head_mac, meta->head.mac, sizeof(st->head_mac));
		if (have_last && last < meta->head.seq)
			snprintf(st->note, sizeof(st->note),
				 "at open: records %" PRIu64 "..%" PRIu64 " missing at the end",
				 last + 1, meta->head.seq);
		else if (!have_last && meta->head.seq > meta->anchor.seq)
			snprintf(st->note, sizeof(st->note),
				 "at open: records %" PRIu64 "..%" PRIu64 " are missing",
				 meta->anchor.seq + 1, meta->head.seq);
		else if (have_last && last > meta->head.seq) {
			snprintf(st->note, sizeof(st->note),
				 "at open: records %" PRIu64 "..%" PRIu64 " beyond the chain head",
				 meta->head.seq + 1, last);
			st->head_seq = last; /* new seqs must not collide; the MAC still chains on
						the head, so verify points at the foreign rows */
		}
	} else {
		snprintf(st->note, sizeof(st->note),
			 "at open: the chain head in meta was %s; continuing after record %" PRIu64,
			 meta->head.present ? "altered" : "removed", last);
		st->head_seq = last;
		if (have_last && last_mac_ok)
			memcpy(st->head_mac, last_mac, sizeof(st->head_mac));
		else
			els_mon_genesis(key, st->chain_id, st->head_mac);
	}
	host_name(host, sizeof(host));
	if (strcmp(host, meta->host) != 0)
		return meta_put(db, "host", host);
	return SQLITE_OK;
}

int mon_file_prepare(sqlite3 *db, const struct els_mon_key *key, const char *agent_id,
		     struct mon_file_state *st, char *err, size_t errlen)
{
	struct els_mon_meta meta;
	sqlite3_stmt *q = NULL;
	int rc, n, ret;

	memset(st, 0, sizeof(*st));
	rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &q, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(q);
	if (rc != SQLITE_ROW) {
		snprintf(err, errlen, "cannot read: %s", sqlite3_errmsg(db));
		sqlite3_finalize(q);
		return -EIO;
	}
	n = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	if (n == 0) {
		if (create_file(db, key, agent_id, st) != SQLITE_OK) {
			snprintf(err, errlen, "cannot create the schema: %s", sqlite3_errmsg(db));
			return -EIO;
		}
		return 0;
	}
	ret = els_mon_meta_read(db, key, &meta, err, errlen);
	if (ret == -EINVAL)
		snprintf(err, errlen,
			 "not an els monitor file (no schema_version in a meta table): "
			 "point monitor path at a new file");
	if (ret)
		return ret;
	if (meta.version > ELS_MONITOR_SCHEMA_VERSION) {
		snprintf(err, errlen,
			 "schema version %d is newer than this elsd understands (%d): "
			 "use a newer elsd or another file",
			 meta.version, ELS_MONITOR_SCHEMA_VERSION);
		return -EINVAL;
	}
	if (meta.version == 1) {
		if (migrate_v1(db, key, agent_id, st) != SQLITE_OK) {
			snprintf(err, errlen, "cannot migrate from schema version 1: %s",
				 sqlite3_errmsg(db));
			return -EIO;
		}
		return 0;
	}
	if (meta.version != ELS_MONITOR_SCHEMA_VERSION) {
		snprintf(err, errlen, "unknown schema version %d", meta.version);
		return -EINVAL;
	}
	if (strcmp(meta.key_id, key->id) != 0) {
		snprintf(err, errlen,
			 "was written with key id %s, but the key file has id %s: restore that "
			 "key, or move the monitor file away to start a new one",
			 meta.key_id, key->id);
		return -EKEYREJECTED;
	}
	if (!meta.chain_id[0]) {
		snprintf(err, errlen, "has no chain_id in meta: not written by elsd");
		return -EINVAL;
	}
	if (resume(db, key, &meta, st) != SQLITE_OK) {
		snprintf(err, errlen, "cannot read: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	return 0;
}

long mon_retain_step(sqlite3 *db, const struct els_mon_key *key, const char *chain_id,
		     uint64_t cutoff_ns, bool any_age, unsigned max_rows, char *err, size_t errlen)
{
	struct els_mon_meta meta;
	struct els_mon_verifier v;
	sqlite3_stmt *q = NULL, *del = NULL;
	char sql[512];
	long n = 0;
	int rc;

	err[0] = '\0';
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (els_mon_meta_read(db, key, &meta, err, errlen) != 0 ||
	    strcmp(meta.chain_id, chain_id) != 0)
		goto done;
	/* Only what a sweep vouched for (its tag) leaves the file, and only from an anchor that
	 * verifies: an attacker who writes meta cannot make elsd delete evidence. */
	if (!meta.swept.ok || !meta.anchor.ok || meta.swept.seq <= meta.anchor.seq)
		goto done;
	els_mon_verify_init(&v, key, &meta.anchor, meta.swept.seq);
	snprintf(sql, sizeof(sql),
		 "SELECT %s, mac FROM records WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3",
		 els_mon_columns);
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)meta.anchor.seq);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)meta.swept.seq);
	sqlite3_bind_int64(q, 3, max_rows);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (!any_age && (uint64_t)sqlite3_column_int64(q, 1) >= cutoff_ns)
			break;
		/* a record that fails verification stays, with everything after it */
		if (!els_mon_verify_row(&v, q, 0)) {
			snprintf(err, errlen, "retention stops before record %" PRIu64 ": %s", v.at,
				 v.msg);
			break;
		}
		n++;
	}
	sqlite3_finalize(q);
	q = NULL;
	if (n == 0)
		goto done;
	if (sqlite3_prepare_v2(db, "DELETE FROM records WHERE seq > ?1 AND seq <= ?2", -1, &del,
			       NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(del, 1, (sqlite3_int64)meta.anchor.seq);
	sqlite3_bind_int64(del, 2, (sqlite3_int64)v.seq);
	if (sqlite3_step(del) != SQLITE_DONE ||
	    els_mon_meta_put_pos(db, key, chain_id, "anchor", v.seq, v.mac) != SQLITE_OK)
		goto fail;
	sqlite3_finalize(del);
	del = NULL;
done:
	if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	return n;
fail:
	snprintf(err, errlen, "retention: %s", sqlite3_errmsg(db));
	sqlite3_finalize(q);
	sqlite3_finalize(del);
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int64_t mon_used_bytes(sqlite3 *db)
{
	static const char *const pragmas[] = {"PRAGMA page_count", "PRAGMA freelist_count",
					      "PRAGMA page_size"};
	int64_t v[3] = {0, 0, 0};

	for (int i = 0; i < 3; i++) {
		sqlite3_stmt *st = NULL;

		if (sqlite3_prepare_v2(db, pragmas[i], -1, &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			v[i] = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return (v[0] - v[1]) * v[2];
}
