/* Tamper evidence for the monitor file (see include/els/monitor.h and docs/forensics.md): the
 * key, the canonical form of a row, its chained MAC, the tagged positions in meta, and the
 * verifier that tells an altered record from an inserted or deleted one.
 *
 * The canonical form is defined on the values as SQLite stores them, not on struct
 * els_record, so that a verifier that only has the file computes exactly what the writer did:
 * a version byte, then per column its SQLite type byte and its value (INTEGER: 8 bytes big
 * endian; FLOAT: the IEEE bits, 8 bytes big endian; TEXT and BLOB: a 4-byte big-endian length
 * and the bytes; NULL: nothing). A value that changes type (the text '80' where 80 was) changes
 * the MAC even where SQLite would compare it equal. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "els/keyfile.h"
#include "els/monitor_int.h"

#define CANON_VERSION 2

#define COLUMN(name, decl)	#name ", "
#define LAST_COLUMN(name, decl) #name
const char els_mon_columns[] = ELS_MON_COLUMNS(COLUMN, LAST_COLUMN);
#undef COLUMN
#undef LAST_COLUMN

#define ONE(name, decl) +1
_Static_assert(0 ELS_MON_COLUMNS(ONE, ONE) == ELS_MON_NCOLS, "ELS_MON_NCOLS is the column count");
#undef ONE

/* ---- HMAC ---- */

struct mac_buf {
	EVP_MAC_CTX *ctx;
	size_t len;
	unsigned char b[768]; /* a writer's row fits: one EVP_MAC_update per row */
	bool bad;
};

static void mb_flush(struct mac_buf *m)
{
	if (m->len && !EVP_MAC_update(m->ctx, m->b, m->len))
		m->bad = true;
	m->len = 0;
}

static void mb_put(struct mac_buf *m, const void *p, size_t n)
{
	if (n == 0)
		return; /* p may be NULL for an empty value: memcpy(.., NULL, 0) is undefined */
	if (n > sizeof(m->b) - m->len) {
		mb_flush(m);
		if (n > sizeof(m->b)) {
			if (!EVP_MAC_update(m->ctx, p, n))
				m->bad = true;
			return;
		}
	}
	memcpy(m->b + m->len, p, n);
	m->len += n;
}

static void be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static void mb_u64(struct mac_buf *m, uint64_t v)
{
	unsigned char b[8];

	be64(b, v);
	mb_put(m, b, 8);
}

/* Starts a MAC with the key set at load: EVP_MAC_init with a NULL key reuses it. */
static int mb_begin(struct mac_buf *m, const struct els_mon_key *key)
{
	m->ctx = key->mac_ctx;
	m->len = 0;
	m->bad = !m->ctx || !EVP_MAC_init(m->ctx, NULL, 0, NULL);
	return m->bad ? -ENOMEM : 0;
}

static int mb_end(struct mac_buf *m, unsigned char out[ELS_MON_MAC_LEN])
{
	size_t outl = 0;

	mb_flush(m);
	if (m->bad || !EVP_MAC_final(m->ctx, out, &outl, ELS_MON_MAC_LEN) ||
	    outl != ELS_MON_MAC_LEN) {
		memset(out, 0, ELS_MON_MAC_LEN);
		return -ENOMEM;
	}
	return 0;
}

/* A column's type byte and its integer or length go straight into the buffer: this runs 26
 * times a row, and a call per piece cost the writer about a tenth of its instructions. */
static void mb_val(struct mac_buf *m, const struct mon_val *v)
{
	unsigned char *p;

	if (sizeof(m->b) - m->len < 9)
		mb_flush(m);
	p = m->b + m->len;
	*p = (unsigned char)v->type;
	switch (v->type) {
	case SQLITE_INTEGER:
	case SQLITE_FLOAT:
		be64(p + 1, (uint64_t)v->i);
		m->len += 9;
		break;
	case SQLITE_TEXT:
	case SQLITE_BLOB:
		p[1] = (unsigned char)(v->n >> 24);
		p[2] = (unsigned char)(v->n >> 16);
		p[3] = (unsigned char)(v->n >> 8);
		p[4] = (unsigned char)v->n;
		m->len += 5;
		mb_put(m, v->s, v->n);
		break;
	default:
		m->len += 1;
		break;
	}
}

int mon_mac_vals(const struct els_mon_key *key, const unsigned char prev[ELS_MON_MAC_LEN],
		 const struct mon_val *v, unsigned char out[ELS_MON_MAC_LEN])
{
	struct mac_buf m;
	unsigned char ver = CANON_VERSION;

	if (mb_begin(&m, key))
		return -ENOMEM;
	mb_put(&m, prev, ELS_MON_MAC_LEN);
	mb_put(&m, &ver, 1);
	for (unsigned i = 0; i < ELS_MON_NCOLS; i++)
		mb_val(&m, &v[i]);
	return mb_end(&m, out);
}

int els_mon_row_mac(const struct els_mon_key *key, const unsigned char prev[ELS_MON_MAC_LEN],
		    sqlite3_stmt *st, int first, unsigned char out[ELS_MON_MAC_LEN])
{
	struct mon_val v[ELS_MON_NCOLS];

	for (int i = 0; i < ELS_MON_NCOLS; i++) {
		int c = first + i;
		double d;

		v[i].type = sqlite3_column_type(st, c);
		v[i].i = 0;
		v[i].s = NULL;
		v[i].n = 0;
		switch (v[i].type) {
		case SQLITE_INTEGER:
			v[i].i = sqlite3_column_int64(st, c);
			break;
		case SQLITE_FLOAT:
			d = sqlite3_column_double(st, c);
			memcpy(&v[i].i, &d, sizeof(d));
			break;
		case SQLITE_TEXT:
			v[i].s = (const char *)sqlite3_column_text(st, c);
			v[i].n = (size_t)sqlite3_column_bytes(st, c);
			break;
		case SQLITE_BLOB:
			v[i].s = sqlite3_column_blob(st, c);
			v[i].n = (size_t)sqlite3_column_bytes(st, c);
			break;
		default:
			break;
		}
	}
	return mon_mac_vals(key, prev, v, out);
}

void els_mon_genesis(const struct els_mon_key *key, const char *chain_id,
		     unsigned char out[ELS_MON_MAC_LEN])
{
	struct mac_buf m;

	if (mb_begin(&m, key) == 0) {
		mb_put(&m, "els-genesis", 12);
		mb_put(&m, chain_id, strlen(chain_id));
	}
	mb_end(&m, out);
}

void els_mon_tag(const struct els_mon_key *key, const char *what, const char *chain_id,
		 uint64_t seq, const unsigned char mac[ELS_MON_MAC_LEN], char hex[65])
{
	struct mac_buf m;
	unsigned char t[ELS_MON_MAC_LEN];

	if (mb_begin(&m, key) == 0) {
		mb_put(&m, "els-tag", 8);
		mb_put(&m, what, strlen(what) + 1);
		mb_put(&m, chain_id, strlen(chain_id) + 1);
		mb_u64(&m, seq);
		mb_put(&m, mac, ELS_MON_MAC_LEN);
	}
	mb_end(&m, t);
	els_mon_hex(t, sizeof(t), hex);
}

void els_mon_hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int els_mon_unhex(const char *s, unsigned char *b, size_t n)
{
	if (strlen(s) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		b[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* ---- the key ---- */

char *els_mon_key_path(const char *monitor_path)
{
	char *copy = strdup(monitor_path), *out = NULL;

	if (copy && asprintf(&out, "%s/monitor.key", dirname(copy)) < 0)
		out = NULL;
	free(copy);
	return out;
}

/* Writes a new key file; EEXIST when another process made one first. */
static int key_create(const char *path, char *err, size_t errlen)
{
	unsigned char k[ELS_MON_KEY_LEN];
	int fd, ret = -EIO;

	if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k)) {
		snprintf(err, errlen, "%s: cannot get random bytes for a new key: %s", path,
			 strerror(errno));
		return -EIO;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		if (errno == ENOENT) {
			char *copy = strdup(path);

			snprintf(err, errlen,
				 "%s: cannot create the key file: directory %s does not "
				 "exist",
				 path, copy ? dirname(copy) : "?");
			free(copy);
		} else if (errno != EEXIST) {
			snprintf(err, errlen, "%s: cannot create the key file: %s", path,
				 strerror(errno));
		}
		goto out;
	}
	if (write(fd, k, sizeof(k)) != (ssize_t)sizeof(k) || fsync(fd) != 0) {
		snprintf(err, errlen, "%s: cannot write the key file: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		goto out;
	}
	close(fd);
	ret = 0;
out:
	explicit_bzero(k, sizeof(k));
	return ret;
}

int els_mon_key_load(const char *path, bool create, struct els_mon_key *key, char *err,
		     size_t errlen)
{
	unsigned char md[32];
	unsigned mdlen = 0;
	struct stat sb;
	ssize_t n;
	int fd, ret = -EINVAL;
	EVP_MAC *mac = NULL;
	OSSL_PARAM params[2];

	memset(key, 0, sizeof(*key));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		ret = key_create(path, err, errlen);
		if (ret && ret != -EEXIST)
			return ret;
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: cannot open the monitor key: %s%s", path,
			 strerror(errno),
			 errno == ENOENT ? " (elsd creates it on its first start; name another "
					   "with --key or monitor.key_file)"
					 : "");
		return ret;
	}
	/* A key others can read lets them recompute the chain; one others can write lets them
	 * choose it (els/keyfile.h). */
	ret = els_keyfile_check(fd, "the monitor key", path, err, errlen);
	if (ret < 0)
		goto out;
	ret = -EINVAL;
	if (fstat(fd, &sb) != 0) {
		snprintf(err, errlen, "%s: cannot stat the monitor key: %s", path, strerror(errno));
		goto out;
	}
	n = sb.st_size == (off_t)sizeof(key->k) ? read(fd, key->k, sizeof(key->k)) : -1;
	if (n != (ssize_t)sizeof(key->k)) {
		snprintf(err, errlen, "%s: the monitor key must be exactly %d bytes, not %lld",
			 path, ELS_MON_KEY_LEN, (long long)sb.st_size);
		goto out;
	}
	{
		EVP_MD_CTX *h = EVP_MD_CTX_new();
		bool ok = h && EVP_DigestInit_ex(h, EVP_sha256(), NULL) &&
			  EVP_DigestUpdate(h, "els-key-id", 11) &&
			  EVP_DigestUpdate(h, key->k, sizeof(key->k)) &&
			  EVP_DigestFinal_ex(h, md, &mdlen);

		EVP_MD_CTX_free(h);
		if (!ok) {
			snprintf(err, errlen, "%s: SHA-256 failed", path);
			ret = -ENOMEM;
			goto out;
		}
	}
	els_mon_hex(md, 8, key->id);
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	key->mac_ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!key->mac_ctx || !EVP_MAC_init(key->mac_ctx, key->k, sizeof(key->k), params)) {
		snprintf(err, errlen, "%s: OpenSSL has no HMAC-SHA256", path);
		ret = -ENOMEM;
		goto out;
	}
	ret = 0;
out:
	EVP_MAC_free(mac); /* the context keeps its own reference */
	close(fd);
	if (ret)
		els_mon_key_wipe(key);
	return ret;
}

void els_mon_key_wipe(struct els_mon_key *key)
{
	EVP_MAC_CTX_free(key->mac_ctx);
	explicit_bzero(key, sizeof(*key));
}

/* ---- meta ---- */

static void parse_pos(const char *v, const struct els_mon_key *key, const char *what,
		      const char *chain_id, struct els_mon_pos *p)
{
	char mac[80], tag[80], want[65];
	int used = 0;

	memset(p, 0, sizeof(*p));
	if (sscanf(v, "%" SCNu64 " %79s %79s%n", &p->seq, mac, tag, &used) != 3 || v[used] ||
	    els_mon_unhex(mac, p->mac, sizeof(p->mac)) != 0)
		return;
	p->present = true;
	if (key) {
		els_mon_tag(key, what, chain_id, p->seq, p->mac, want);
		p->ok = strcmp(want, tag) == 0;
	}
}

int els_mon_meta_read(sqlite3 *db, const struct els_mon_key *key, struct els_mon_meta *out,
		      char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char head[200] = "", anchor[200] = "", swept[200] = "";
	int rc;

	memset(out, 0, sizeof(*out));
	rc = sqlite3_prepare_v2(db, "SELECT key, value FROM meta", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "not an els monitor file (no meta table): %s",
			 sqlite3_errmsg(db));
		return -EINVAL;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		const char *v = (const char *)sqlite3_column_text(st, 1);

		if (!k || !v)
			continue;
		if (strcmp(k, "schema_version") == 0)
			out->version = atoi(v);
		else if (strcmp(k, "agent_id") == 0)
			snprintf(out->agent_id, sizeof(out->agent_id), "%s", v);
		else if (strcmp(k, "host") == 0)
			snprintf(out->host, sizeof(out->host), "%s", v);
		else if (strcmp(k, "chain_id") == 0)
			snprintf(out->chain_id, sizeof(out->chain_id), "%s", v);
		else if (strcmp(k, "key_id") == 0)
			snprintf(out->key_id, sizeof(out->key_id), "%s", v);
		else if (strcmp(k, "head") == 0)
			snprintf(head, sizeof(head), "%s", v);
		else if (strcmp(k, "anchor") == 0)
			snprintf(anchor, sizeof(anchor), "%s", v);
		else if (strcmp(k, "swept") == 0)
			snprintf(swept, sizeof(swept), "%s", v);
		else if (strcmp(k, "migrated_v1") == 0)
			out->migrated_v1 = strtoull(v, NULL, 10);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "cannot read meta: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	if (out->version == 0) {
		snprintf(err, errlen, "not an els monitor file (no schema_version in meta)");
		return -EINVAL;
	}
	parse_pos(head, key, "head", out->chain_id, &out->head);
	parse_pos(anchor, key, "anchor", out->chain_id, &out->anchor);
	parse_pos(swept, key, "swept", out->chain_id, &out->swept);
	return 0;
}

int els_mon_meta_put_pos(sqlite3 *db, const struct els_mon_key *key, const char *chain_id,
			 const char *what, uint64_t seq, const unsigned char mac[ELS_MON_MAC_LEN])
{
	char hex[2 * ELS_MON_MAC_LEN + 1], tag[65], val[160];
	sqlite3_stmt *st = NULL;
	int rc;

	els_mon_hex(mac, ELS_MON_MAC_LEN, hex);
	els_mon_tag(key, what, chain_id, seq, mac, tag);
	snprintf(val, sizeof(val), "%" PRIu64 " %s %s", seq, hex, tag);
	rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)", -1,
				&st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, what, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, val, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	sqlite3_finalize(st);
	return rc;
}
