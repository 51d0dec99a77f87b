/* Verification of a monitor file's chain (see include/els/monitor.h and docs/forensics.md):
 * rows are fed in seq order from the anchor, each must chain on the one before, and the last
 * must be the authenticated head. What breaks first is reported as altered, inserted, deleted
 * or truncated, with the seq concerned. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "els/monitor_int.h"

void els_mon_verify_init(struct els_mon_verifier *v, const struct els_mon_key *key,
			 const struct els_mon_pos *from, uint64_t head_seq)
{
	memset(v, 0, sizeof(*v));
	v->key = key;
	v->seq = from->seq;
	memcpy(v->mac, from->mac, sizeof(v->mac));
	v->head_seq = head_seq;
}

static bool found(struct els_mon_verifier *v, int what, uint64_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool found(struct els_mon_verifier *v, int what, uint64_t at, const char *fmt, ...)
{
	va_list ap;

	v->finding = what;
	v->at = at;
	va_start(ap, fmt);
	vsnprintf(v->msg, sizeof(v->msg), fmt, ap);
	va_end(ap);
	return false;
}

bool els_mon_verify_row(struct els_mon_verifier *v, sqlite3_stmt *st, int first)
{
	uint64_t s = (uint64_t)sqlite3_column_int64(st, first);
	const void *stored = sqlite3_column_blob(st, first + ELS_MON_NCOLS);
	int stored_len = sqlite3_column_bytes(st, first + ELS_MON_NCOLS);
	unsigned char mac[ELS_MON_MAC_LEN];

	if (v->finding)
		return false;
	if (s <= v->seq)
		return found(v, ELS_MF_INSERTED, s,
			     "record %" PRIu64 " was inserted: it lies at or before the anchor "
			     "(records up to %" PRIu64 " were deleted by retention)",
			     s, v->seq);
	if (s > v->head_seq)
		return found(v, ELS_MF_INSERTED, s,
			     "record %" PRIu64
			     " was inserted: it lies beyond the chain head (%" PRIu64 ")",
			     s, v->head_seq);
	if (!stored || stored_len != ELS_MON_MAC_LEN)
		return found(v, ELS_MF_INSERTED, s,
			     "record %" PRIu64 " was inserted: it has no MAC", s);
	if (els_mon_row_mac(v->key, v->mac, st, first, mac) != 0)
		return found(v, ELS_MF_ALTERED, s, "record %" PRIu64 ": cannot compute its MAC", s);
	if (memcmp(mac, stored, sizeof(mac)) != 0) {
		if (s == v->seq + 1)
			return found(v, ELS_MF_ALTERED, s,
				     "record %" PRIu64 " was altered: its columns or MAC do not "
				     "match the chain",
				     s);
		if (s == v->seq + 2)
			return found(v, ELS_MF_DELETED, v->seq + 1,
				     "record %" PRIu64 " was deleted", v->seq + 1);
		return found(v, ELS_MF_DELETED, v->seq + 1,
			     "records %" PRIu64 "..%" PRIu64 " were deleted", v->seq + 1, s - 1);
	}
	/* A seq that jumps with a MAC that chains is one the writer made so: holes in a
	 * migrated version 1 file. Deleting rows later breaks the MAC, not just the seq. */
	v->seq = s;
	memcpy(v->mac, mac, sizeof(mac));
	v->rows++;
	return true;
}

bool els_mon_verify_end(struct els_mon_verifier *v, const struct els_mon_pos *head)
{
	if (v->finding)
		return false;
	if (v->seq < head->seq)
		return found(v, ELS_MF_TRUNCATED, v->seq + 1,
			     "the file was truncated: records %" PRIu64 "..%" PRIu64
			     " are missing at the end (the chain head is %" PRIu64 ")",
			     v->seq + 1, head->seq, head->seq);
	if (v->seq != head->seq || memcmp(v->mac, head->mac, sizeof(v->mac)) != 0)
		return found(v, ELS_MF_META, v->seq,
			     "the chain head in meta (%" PRIu64 ") does not match the last record",
			     head->seq);
	return true;
}

int els_mon_verify_file(const char *path, const struct els_mon_key *key, struct els_mon_verifier *v,
			struct els_mon_meta *meta, void (*progress)(uint64_t done, uint64_t total),
			char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char sql[512];
	uint64_t total = 0;
	int rc, ret = -EIO;

	memset(v, 0, sizeof(*v));
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		sqlite3_busy_timeout(db, 5000);
	/* one read transaction: a consistent snapshot while elsd goes on writing */
	if (rc != SQLITE_OK || sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
			 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		goto out;
	}
	ret = els_mon_meta_read(db, key, meta, err, errlen);
	if (ret)
		goto out;
	ret = -EINVAL;
	if (meta->version == 1) {
		snprintf(err, errlen,
			 "%s: schema version 1 has no MACs; elsd migrates the file to version 2 "
			 "when it next opens it",
			 path);
		goto out;
	}
	if (meta->version != ELS_MONITOR_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: schema version %d is not one this program knows (%d)",
			 path, meta->version, ELS_MONITOR_SCHEMA_VERSION);
		goto out;
	}
	if (strcmp(meta->key_id, key->id) != 0) {
		snprintf(err, errlen,
			 "%s: was written with key id %s, but the key given has id %s: use that "
			 "agent's key",
			 path, meta->key_id, key->id);
		goto out;
	}
	ret = 0;
	if (!meta->anchor.present || !meta->anchor.ok) {
		found(v, ELS_MF_META, 0, "the anchor in meta was %s",
		      meta->anchor.present ? "altered" : "removed");
		goto out;
	}
	if (!meta->head.present || !meta->head.ok) {
		found(v, ELS_MF_META, 0, "the chain head in meta was %s",
		      meta->head.present ? "altered" : "removed");
		goto out;
	}
	els_mon_verify_init(v, key, &meta->anchor, meta->head.seq);
	if (progress) {
		total = meta->head.seq - meta->anchor.seq;
		progress(0, total);
	}
	snprintf(sql, sizeof(sql), "SELECT %s, mac FROM records ORDER BY seq", els_mon_columns);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot read records: %s", path, sqlite3_errmsg(db));
		ret = -EIO;
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!els_mon_verify_row(v, st, 0))
			goto out;
		if (progress && (v->rows & 0xffff) == 0)
			progress(v->rows, total);
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "%s: cannot read records: %s", path, sqlite3_errmsg(db));
		ret = -EIO;
		goto out;
	}
	if (progress)
		progress(v->rows, total);
	els_mon_verify_end(v, &meta->head);
out:
	sqlite3_finalize(st);
	if (db) {
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		sqlite3_close(db);
	}
	return ret;
}

static const char *finding_name(int f)
{
	static const char *const names[] = {
	    [ELS_MF_NONE] = "ok",
	    [ELS_MF_ALTERED] = "altered",
	    [ELS_MF_INSERTED] = "inserted",
	    [ELS_MF_DELETED] = "deleted",
	    [ELS_MF_TRUNCATED] = "truncated",
	    [ELS_MF_META] = "meta",
	};
	return f >= 0 && f <= ELS_MF_META ? names[f] : "unknown";
}

const char *els_mon_finding_name(int finding)
{
	return finding_name(finding);
}

static void show_progress(uint64_t done, uint64_t total)
{
	fprintf(stderr, "\rverifying: %" PRIu64 " of %" PRIu64 " records", done, total);
	if (done >= total)
		fputs("\r\033[K", stderr);
}

int els_mon_verify_cli(const char *prog, const char *path, const char *key_path, bool progress)
{
	struct els_mon_key key;
	struct els_mon_verifier v;
	struct els_mon_meta meta;
	char err[512], *kp = key_path ? strdup(key_path) : els_mon_key_path(path);
	int rc;

	if (!kp || els_mon_key_load(kp, false, &key, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", prog, kp ? err : "out of memory");
		free(kp);
		return 2;
	}
	free(kp);
	rc = els_mon_verify_file(path, &key, &v, &meta, progress ? show_progress : NULL, err,
				 sizeof(err));
	els_mon_key_wipe(&key);
	if (rc) {
		fprintf(stderr, "%s: %s\n", prog, err);
		return 2;
	}
	if (v.finding == ELS_MF_NONE) {
		printf("%s: OK: %" PRIu64 " records verified (seq %" PRIu64 "..%" PRIu64
		       "), agent %s, chain %s, key id %s\n",
		       path, v.rows, meta.anchor.seq + (v.rows ? 1 : 0), meta.head.seq,
		       meta.agent_id, meta.chain_id, meta.key_id);
		return 0;
	}
	printf("%s: TAMPERED (%s) at seq %" PRIu64 ": %s\n", path, finding_name(v.finding), v.at,
	       v.msg);
	printf("%s: %" PRIu64 " records before it verified; agent %s, chain %s\n", path, v.rows,
	       meta.agent_id, meta.chain_id);
	return 1;
}
