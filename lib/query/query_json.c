/* Records as JSON, NDJSON, CSV and the aligned table; elsd's side of the management `log`
 * request and the args elsctl sends for it. See include/els/query.h and docs/forensics.md,
 * "Record JSON". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "els/clock.h"
#include "els/monitor.h"
#include "els/query.h"
#include "els/reason.h"
#include "els/termsafe.h"

#define MAX_COLS 40
#define WIRE_STR 64 /* the management protocol's limit on a string argument */

/* The columns of `records` in schema order, split from els_mon_columns (the one list). */
static unsigned columns(char names[MAX_COLS][24])
{
	unsigned n = 0;

	for (const char *p = els_mon_columns; *p && n < MAX_COLS;) {
		size_t l = strcspn(p, ", ");

		if (l) {
			snprintf(names[n++], 24, "%.*s", (int)l, p);
			p += l;
		} else {
			p++;
		}
	}
	return n;
}

/* A JSON string of text that may not be UTF-8: each bad byte becomes U+FFFD. */
static json_t *text_json(const char *s, size_t len)
{
	json_t *j = json_stringn(s, len);
	char *out;
	size_t o = 0;

	if (j)
		return j;
	out = malloc(len * 3 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c && c < 0x80) {
			out[o++] = (char)c;
		} else {
			/* keep valid multi-byte sequences whole */
			size_t l = (c & 0xe0) == 0xc0	? 2
				   : (c & 0xf0) == 0xe0 ? 3
				   : (c & 0xf8) == 0xf0 ? 4
							: 0;
			json_t *t = l && i + l <= len ? json_stringn(s + i, l) : NULL;

			if (t) {
				memcpy(out + o, s + i, l);
				o += l;
				i += l - 1;
				json_decref(t);
			} else {
				memcpy(out + o, "\xef\xbf\xbd", 3);
				o += 3;
			}
		}
	}
	j = json_stringn(out, o);
	free(out);
	return j;
}

static void put_time(json_t *obj, json_t *ts)
{
	char t[40];

	if (json_is_integer(ts)) {
		els_time_format((int64_t)json_integer_value(ts), t, sizeof(t));
		json_object_set_new(obj, "time", json_string(t));
	} else {
		json_object_set_new(obj, "time", json_null());
	}
}

json_t *els_query_row_json(sqlite3_stmt *st)
{
	json_t *obj = json_object();

	if (!obj)
		return NULL;
	for (int i = 0; i < sqlite3_column_count(st); i++) {
		json_t *v;

		switch (sqlite3_column_type(st, i)) {
		case SQLITE_INTEGER:
			v = json_integer(sqlite3_column_int64(st, i));
			break;
		case SQLITE_FLOAT:
			v = json_real(sqlite3_column_double(st, i));
			break;
		case SQLITE_NULL:
			v = json_null();
			break;
		default:
			v = text_json((const char *)sqlite3_column_text(st, i),
				      (size_t)sqlite3_column_bytes(st, i));
		}
		if (!v || json_object_set_new(obj, sqlite3_column_name(st, i), v) < 0) {
			json_decref(obj);
			return NULL;
		}
		if (!strcmp(sqlite3_column_name(st, i), "ts_ns"))
			put_time(obj, json_object_get(obj, "ts_ns"));
	}
	return obj;
}

json_t *els_query_row_normal(json_t *row)
{
	char names[MAX_COLS][24];
	unsigned n = columns(names);
	json_t *obj = json_object();

	if (!obj)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		json_t *v = json_object_get(row, names[i]);

		json_object_set_new(obj, names[i], v ? json_incref(v) : json_null());
		if (!strcmp(names[i], "ts_ns"))
			put_time(obj, v);
	}
	return obj;
}

void els_query_print_ndjson(json_t *row, FILE *out)
{
	json_dumpf(row, out, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	fputc('\n', out);
}

void els_query_csv_header(FILE *out)
{
	char names[MAX_COLS][24];
	unsigned n = columns(names);

	for (unsigned i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? "," : "",
			!strcmp(names[i], "ts_ns") ? "ts_ns,time" : names[i]);
	fputc('\n', out);
}

static void csv_field(json_t *v, FILE *out)
{
	const char *s;

	if (!v || json_is_null(v))
		return;
	if (json_is_integer(v)) {
		fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return;
	}
	if (json_is_real(v)) {
		fprintf(out, "%.17g", json_real_value(v));
		return;
	}
	s = json_string_value(v);
	if (!s)
		return;
	/* Quoted when it must be (RFC 4180); a leading = + - @ is left as is: this is data
	 * for scripts, not a spreadsheet. */
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

void els_query_print_csv(json_t *row, FILE *out)
{
	const char *k;
	json_t *v;
	bool first = true;

	json_object_foreach(row, k, v)
	{
		if (!first)
			fputc(',', out);
		first = false;
		csv_field(v, out);
	}
	fputc('\n', out);
}

/* ---- the table ---- */

#define TCOLS 13
static const char *const theads[TCOLS] = {"TIME",  "SEQ",    "KIND",	    "VERDICT", "DIR",
					  "PROTO", "SOURCE", "DESTINATION", "HANDLER", "REASON",
					  "RULE",  "COUNT",  "DETAIL"};

struct els_query_table {
	char **cells; /* TCOLS per row */
	size_t rows, cap;
	size_t width[TCOLS];
	bool header_done;
};

struct els_query_table *els_query_table_new(void)
{
	return calloc(1, sizeof(struct els_query_table));
}

static char *cell_text(json_t *v, const char *none)
{
	char buf[32];

	if (!v || json_is_null(v))
		return strdup(none);
	if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return strdup(buf);
	}
	if (json_is_string(v))
		return els_termsafe(json_string_value(v), json_string_length(v), false);
	return strdup("?");
}

static char *endpoint(json_t *row, const char *a, const char *p)
{
	const char *addr = json_string_value(json_object_get(row, a));
	json_t *port = json_object_get(row, p);
	char *out = NULL, *safe;

	if (!addr)
		return strdup("");
	safe = els_termsafe(addr, strlen(addr), false);
	if (!safe || !json_is_integer(port))
		return safe;
	if (asprintf(&out,
		     strchr(safe, ':') ? "[%s]:%" JSON_INTEGER_FORMAT : "%s:%" JSON_INTEGER_FORMAT,
		     safe, json_integer_value(port)) < 0)
		out = NULL;
	free(safe);
	return out;
}

int els_query_table_add(struct els_query_table *t, json_t *row)
{
	char **c, buf[40];
	json_t *rn = json_object_get(row, "rule_name"), *rule = json_object_get(row, "rule");

	if (t->rows == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		char **n = realloc(t->cells, cap * TCOLS * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->cells = n;
		t->cap = cap;
	}
	c = &t->cells[t->rows * TCOLS];
	els_time_format(json_is_integer(json_object_get(row, "ts_ns"))
			    ? (int64_t)json_integer_value(json_object_get(row, "ts_ns"))
			    : -1,
			buf, sizeof(buf));
	c[0] = strdup(buf);
	c[1] = cell_text(json_object_get(row, "seq"), "");
	c[2] = cell_text(json_object_get(row, "kind"), "");
	c[3] = cell_text(json_object_get(row, "verdict"), "-");
	c[4] = cell_text(json_object_get(row, "dir"), "-");
	c[5] = cell_text(json_object_get(row, "proto"), "-");
	c[6] = endpoint(row, "src", "sport");
	c[7] = endpoint(row, "dst", "dport");
	c[8] = cell_text(json_object_get(row, "handler"), "-");
	c[9] = cell_text(json_object_get(row, "reason"), "-");
	if (json_is_string(rn) && json_string_length(rn))
		c[10] = cell_text(rn, "-");
	else if (json_is_integer(rule))
		c[10] =
		    (snprintf(buf, sizeof(buf), "#%" JSON_INTEGER_FORMAT, json_integer_value(rule)),
		     strdup(buf));
	else
		c[10] = strdup("-");
	c[11] = cell_text(json_object_get(row, "count"), "");
	c[12] = cell_text(json_object_get(row, "detail"), "");
	for (unsigned i = 0; i < TCOLS; i++)
		if (!c[i]) {
			for (unsigned k = 0; k < TCOLS; k++)
				free(c[k]);
			return -ENOMEM;
		}
	for (unsigned i = 0; i < TCOLS; i++)
		if (strlen(c[i]) > t->width[i])
			t->width[i] = strlen(c[i]);
	t->rows++;
	return 0;
}

void els_query_table_flush(struct els_query_table *t, FILE *out)
{
	if (!t->rows)
		return;
	for (unsigned i = 0; i < TCOLS; i++)
		if (strlen(theads[i]) > t->width[i])
			t->width[i] = strlen(theads[i]);
	if (!t->header_done) {
		for (unsigned i = 0; i + 1 < TCOLS; i++)
			fprintf(out, "%-*s  ", (int)t->width[i], theads[i]);
		fprintf(out, "%s\n", theads[TCOLS - 1]);
		t->header_done = true;
	}
	for (size_t r = 0; r < t->rows; r++) {
		char **c = &t->cells[r * TCOLS];

		for (unsigned i = 0; i + 1 < TCOLS; i++)
			/* numbers right-aligned, text left */
			fprintf(out, i == 1 || i == 11 ? "%*s  " : "%-*s  ", (int)t->width[i],
				c[i]);
		fprintf(out, "%s\n", c[TCOLS - 1]);
		for (unsigned i = 0; i < TCOLS; i++)
			free(c[i]);
	}
	t->rows = 0;
	fflush(out);
}

void els_query_table_free(struct els_query_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->rows * TCOLS; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

/* ---- the management `log` request ---- */

static int deadline_passed(void *arg)
{
	return els_now_mono() > *(uint64_t *)arg;
}

/* The args as a query; each string goes through els_query_set, so the agent checks them as
 * the tools do. */
static int wire_query(json_t *args, const struct els_handler *const *handlers, struct els_query *q,
		      char *msg, size_t msglen)
{
	static const char *const strs[] = {"kind", "verdict", "reason", "handler", "addr"};
	json_t *v;
	int64_t now_ns = (int64_t)els_now_real();

	els_query_init(q, handlers);
	v = json_object_get(args, "limit");
	q->limit =
	    json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 50;
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		const char *s = json_string_value(json_object_get(args, strs[i]));

		if (s && els_query_set(q, strs[i], s, now_ns, msg, msglen) < 0)
			return -EINVAL;
	}
	v = json_object_get(args, "port");
	if (json_is_integer(v)) {
		char p[24];

		snprintf(p, sizeof(p), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		if (els_query_set(q, "port", p, now_ns, msg, msglen) < 0)
			return -EINVAL;
	}
	v = json_object_get(args, "since_ns");
	if (json_is_integer(v))
		q->since_ns = (int64_t)json_integer_value(v);
	v = json_object_get(args, "until_ns");
	if (json_is_integer(v))
		q->until_ns = (int64_t)json_integer_value(v);
	v = json_object_get(args, "before_seq");
	if (json_is_integer(v))
		q->before_seq = (int64_t)json_integer_value(v);
	return 0;
}

json_t *els_query_wire(const char *path, json_t *args, const struct els_handler *const *handlers,
		       unsigned max_ms, const char **code, char *msg, size_t msglen)
{
	struct els_query q;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	json_t *rows = NULL, *out = NULL;
	uint64_t deadline, n = 0;
	bool truncated = false;
	int rc;

	*code = "bad_request";
	if (wire_query(args, handlers, &q, msg, msglen) < 0)
		return NULL;
	*code = "internal";
	if (els_query_open(path, &db, msg, msglen) < 0)
		return NULL;
	deadline = els_now_mono() + max_ms * ELS_NS_PER_MS;
	sqlite3_progress_handler(db, 1000, deadline_passed, &deadline);
	if (els_query_prepare(db, &q, true, 1, &st, msg, msglen) < 0)
		goto out;
	rows = json_array();
	if (!rows)
		goto nomem;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *row;

		if (n++ == q.limit) {
			truncated = true;
			break;
		}
		row = els_query_row_json(st);
		if (!row || json_array_append_new(rows, row) < 0)
			goto nomem;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		snprintf(msg, msglen, "monitor query failed: %s%s", sqlite3_errmsg(db),
			 rc == SQLITE_INTERRUPT ? " (took too long: narrow the filters)" : "");
		goto out;
	}
	out = json_pack("{s:O,s:b}", "rows", rows, "truncated", truncated);
	if (!out)
		goto nomem;
	goto out;
nomem:
	snprintf(msg, msglen, "out of memory");
out:
	json_decref(rows);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

static int one_bit(uint32_t v)
{
	return v && !(v & (v - 1)) ? __builtin_ctz(v) : -1;
}

/* "a,b,c" of n names; false when it does not fit the protocol's string limit. */
static bool join(char *buf, size_t len, unsigned n,
		 const char *(*name)(const struct els_query *, unsigned, char *),
		 const struct els_query *q)
{
	size_t o = 0;
	char tmp[64];

	buf[0] = '\0';
	for (unsigned i = 0; i < n; i++) {
		int w = snprintf(buf + o, len - o, "%s%s", i ? "," : "", name(q, i, tmp));

		if (w < 0 || (size_t)w >= len - o)
			return false;
		o += (size_t)w;
	}
	return o <= WIRE_STR;
}

static const char *reason_at(const struct els_query *q, unsigned i, char *tmp)
{
	(void)tmp;
	return els_reason_name(q->reason[i]);
}

static const char *handler_at(const struct els_query *q, unsigned i, char *tmp)
{
	(void)tmp;
	return q->handler[i];
}

static const char *addr_at(const struct els_query *q, unsigned i, char *tmp)
{
	char a[ELS_ADDR_STRLEN];

	snprintf(tmp, 64, "%s/%u", els_addr_str(&q->addr[i].addr, q->addr[i].family, a),
		 q->addr[i].plen);
	return tmp;
}

json_t *els_query_wire_args(const struct els_query *q, unsigned limit)
{
	json_t *a = json_object();
	char buf[WIRE_STR * 4];
	int k;

	if (!a)
		return NULL;
	json_object_set_new(a, "limit", json_integer(limit));
	if ((k = one_bit(q->kinds)) >= 0)
		json_object_set_new(a, "kind", json_string(els_rec_kind_names[k]));
	if ((k = one_bit(q->verdicts)) >= 0)
		json_object_set_new(a, "verdict", json_string(k ? "drop" : "accept"));
	if (q->nport == 1)
		json_object_set_new(a, "port", json_integer(q->port[0]));
	if (q->nreason && join(buf, sizeof(buf), q->nreason, reason_at, q))
		json_object_set_new(a, "reason", json_string(buf));
	if (q->nhandler && join(buf, sizeof(buf), q->nhandler, handler_at, q))
		json_object_set_new(a, "handler", json_string(buf));
	if (q->naddr && join(buf, sizeof(buf), q->naddr, addr_at, q))
		json_object_set_new(a, "addr", json_string(buf));
	if (q->since_ns >= 0)
		json_object_set_new(a, "since_ns", json_integer(q->since_ns));
	if (q->until_ns >= 0)
		json_object_set_new(a, "until_ns", json_integer(q->until_ns));
	if (q->before_seq >= 0)
		json_object_set_new(a, "before_seq", json_integer(q->before_seq));
	return a;
}
