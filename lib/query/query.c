/* The record query: filters, the time grammar, the one match predicate, and its SQL form.
 * See include/els/query.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "els/clock.h"
#include "els/handler.h"
#include "els/monitor.h"
#include "els/query.h"
#include "els/reason.h"

#define NS_PER_S ((int64_t)ELS_NS_PER_S) /* the times here are int64_t */

/* Record sources that are not handlers of the chain, as elsd writes them in `handler`:
 * decoder and chain verdicts (agent/chain.c), elsd's own events (daemon.c), kernel queue
 * gaps, management audit (control.c), the monitor's gaps (monitor_txn.c). */
static const char *const other_sources[] = {"decode", "chain", "elsd", "queue", "mgmt", "monitor"};
#define NOTHER (sizeof(other_sources) / sizeof(other_sources[0]))

void els_query_init(struct els_query *q, const struct els_handler *const *handlers)
{
	memset(q, 0, sizeof(*q));
	q->since_ns = q->until_ns = q->before_seq = q->after_seq = -1;
	q->handlers = handlers;
}

/* ---- time ---- */

int els_time_parse(const char *s, int64_t now_ns, int64_t *out_ns, const char **why)
{
	static const char *const fmts[] = {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
					   "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"};
	char *end;
	long long v;

	*why = "not a time: use @EPOCH, an age (90s, 15m, 1h, 2d, 1w) or UTC "
	       "YYYY-MM-DD[THH:MM[:SS[.FFF]]][Z]";
	if (s[0] == '@') {
		errno = 0;
		v = strtoll(s + 1, &end, 10);
		if (errno || end == s + 1 || *end || !isdigit((unsigned char)s[1]) ||
		    v > INT64_MAX / NS_PER_S)
			return -EINVAL;
		*out_ns = v * NS_PER_S;
		return 0;
	}
	if (isdigit((unsigned char)s[0]) && strspn(s, "0123456789") == strlen(s) - 1 &&
	    strchr("smhdw", s[strlen(s) - 1])) {
		static const long long unit[] = {['s' - 'a'] = 1,
						 ['m' - 'a'] = 60,
						 ['h' - 'a'] = 3600,
						 ['d' - 'a'] = 86400,
						 ['w' - 'a'] = 604800};
		errno = 0;
		v = strtoll(s, &end, 10);
		if (errno || v > (now_ns / NS_PER_S) / unit[*end - 'a']) {
			*why = "an age before 1970";
			return -EINVAL;
		}
		*out_ns = now_ns - v * unit[*end - 'a'] * NS_PER_S;
		return 0;
	}
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		struct tm tm = {0};
		const char *rest = strptime(s, fmts[i], &tm);
		int64_t frac = 0, scale = NS_PER_S / 10;

		if (!rest)
			continue;
		/* fractions of a second after the seconds: 10:30:00.250 */
		if (rest[0] == '.' && strchr(fmts[i], 'S') && isdigit((unsigned char)rest[1]))
			for (rest++; isdigit((unsigned char)*rest); rest++, scale /= 10)
				frac += (*rest - '0') * scale;
		if (rest[0] == 'Z')
			rest++;
		if (*rest)
			continue;
		time_t t = timegm(&tm);
		if (t < 0) {
			*why = "a time before 1970";
			return -EINVAL;
		}
		/* ns since 1970 in 64 bits end in 2262 (found by fuzz_query) */
		if (t >= INT64_MAX / NS_PER_S) {
			*why = "a time after 2262";
			return -EINVAL;
		}
		*out_ns = (int64_t)t * NS_PER_S + frac;
		return 0;
	}
	return -EINVAL;
}

void els_time_format(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / NS_PER_S);
	struct tm tm;

	if (ns < 0 || !gmtime_r(&t, &tm)) {
		snprintf(buf, len, "-");
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ns % NS_PER_S / 1000000));
}

/* ---- filters ---- */

static int reason_index(const char *s)
{
	for (unsigned r = 0; r < ELS_R__COUNT; r++)
		if (strcmp(els_reason_name(r), s) == 0)
			return (int)r;
	return -1;
}

static bool handler_known(const struct els_query *q, const char *s)
{
	for (const struct els_handler *const *h = q->handlers; h && *h; h++)
		if (strcmp((*h)->name, s) == 0)
			return true;
	for (size_t i = 0; i < NOTHER; i++)
		if (strcmp(other_sources[i], s) == 0)
			return true;
	return false;
}

static void handler_names(const struct els_query *q, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (const struct els_handler *const *h = q->handlers; h && *h && o < len; h++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "", (*h)->name);
	for (size_t i = 0; i < NOTHER && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "", other_sources[i]);
}

static int set_one(struct els_query *q, const char *name, const char *v, char *why, size_t wl)
{
	const char *w;
	char *end;
	unsigned long long u;
	int i;

	if (!*v) {
		snprintf(why, wl, "an empty value");
		return -EINVAL;
	}
	if (!strcmp(name, "kind")) {
		for (i = ELS_REC_DROP; i < ELS_REC__END; i++)
			if (!strcmp(els_rec_kind_names[i], v)) {
				q->kinds |= 1u << i;
				return 0;
			}
		snprintf(why, wl, "one of " ELS_REC_KIND_LIST);
		return -EINVAL;
	}
	if (!strcmp(name, "verdict")) {
		if (!strcmp(v, "accept") || !strcmp(v, "drop")) {
			q->verdicts |= !strcmp(v, "accept") ? 1 : 2;
			return 0;
		}
		snprintf(why, wl, "accept or drop");
		return -EINVAL;
	}
	if (!strcmp(name, "reason")) {
		i = reason_index(v);
		if (i < 0) {
			snprintf(why, wl,
				 "no such reason (elsd's reasons: no_permit, deny_list, "
				 "out_of_state, flow_timeout, ... see docs/monitor-schema.md)");
			return -EINVAL;
		}
		if (q->nreason == ELS_QUERY_MAX)
			goto full;
		q->reason[q->nreason++] = (uint16_t)i;
		return 0;
	}
	if (!strcmp(name, "handler")) {
		if (!handler_known(q, v)) {
			char names[400];

			handler_names(q, names, sizeof(names));
			snprintf(why, wl, "no such handler: one of %s", names);
			return -EINVAL;
		}
		if (q->nhandler == ELS_QUERY_MAX)
			goto full;
		snprintf(q->handler[q->nhandler++], ELS_QUERY_HANDLER_LEN, "%s", v);
		return 0;
	}
	if (!strcmp(name, "addr")) {
		if (q->naddr == ELS_QUERY_MAX)
			goto full;
		if (els_cidr_parse(v, &q->addr[q->naddr], &w) < 0) {
			snprintf(why, wl, "%s (an address or CIDR: 198.51.100.0/24, 2001:db8::/32)",
				 w);
			return -EINVAL;
		}
		q->naddr++;
		return 0;
	}
	if (!strcmp(name, "port")) {
		errno = 0;
		u = strtoull(v, &end, 10);
		if (errno || *end || !isdigit((unsigned char)v[0]) || u > 65535) {
			snprintf(why, wl, "a port number 0..65535");
			return -EINVAL;
		}
		if (q->nport == ELS_QUERY_MAX)
			goto full;
		q->port[q->nport++] = (uint16_t)u;
		return 0;
	}
	snprintf(why, wl, "unknown filter");
	return -EINVAL;
full:
	snprintf(why, wl, "at most %d values", ELS_QUERY_MAX);
	return -EINVAL;
}

static int parse_count(const char *v, unsigned long long lo, unsigned long long hi, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long u = strtoull(v, &end, 10);
	if (errno || *end || !isdigit((unsigned char)v[0]) || u < lo || u > hi)
		return -EINVAL;
	*out = u;
	return 0;
}

int els_query_set(struct els_query *q, const char *name, const char *value, int64_t now_ns,
		  char *err, size_t errlen)
{
	char why[512], *copy, *save = NULL;
	const char *w;
	uint64_t u;
	int rc = 0;

	why[0] = '\0';
	if (!strcmp(name, "since") || !strcmp(name, "until")) {
		int64_t ns;

		rc = els_time_parse(value, now_ns, &ns, &w);
		if (rc == 0)
			*(name[0] == 's' ? &q->since_ns : &q->until_ns) = ns;
		else
			snprintf(why, sizeof(why), "%s", w);
	} else if (!strcmp(name, "limit")) {
		rc = parse_count(value, 1, UINT32_MAX, &u);
		if (rc == 0)
			q->limit = u;
		else
			snprintf(why, sizeof(why), "a number of rows, 1 or more");
	} else if (!strcmp(name, "before-seq") || !strcmp(name, "after-seq")) {
		rc = parse_count(value, 0, INT64_MAX, &u);
		if (rc == 0)
			*(name[0] == 'b' ? &q->before_seq : &q->after_seq) = (int64_t)u;
		else
			snprintf(why, sizeof(why), "a record's seq");
	} else {
		copy = strdup(value);
		if (!copy) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		/* Every value of a list is checked: "drop,nosuch" is an error, not "drop". */
		unsigned n = 0;

		for (char *t = strtok_r(copy, ",", &save); t && rc == 0;
		     t = strtok_r(NULL, ",", &save), n++) {
			rc = set_one(q, name, t, why, sizeof(why));
			if (rc < 0)
				snprintf(err, errlen, "--%s '%s': %s", name, t, why);
		}
		free(copy);
		if (rc == 0 && n == 0) {
			snprintf(err, errlen, "--%s '%s': no value", name, value);
			rc = -EINVAL;
		}
		return rc;
	}
	if (rc < 0)
		snprintf(err, errlen, "--%s '%s': %s", name, value, why);
	return rc;
}

/* ---- the predicate ---- */

static bool addr_in(const struct els_query *q, const char *txt)
{
	struct els_addr a;
	unsigned fam;

	if (!txt)
		return false;
	memset(&a, 0, sizeof(a));
	fam = strchr(txt, ':') ? ELS_AF_INET6 : ELS_AF_INET;
	/* Parsed, not compared as text: 2001:db8::1 and 2001:0db8:0:0::1 are one address. */
	if (inet_pton(fam == ELS_AF_INET6 ? AF_INET6 : AF_INET, txt, a.b) != 1)
		return false;
	for (unsigned i = 0; i < q->naddr; i++)
		if (els_cidr_contains(&q->addr[i], fam, &a))
			return true;
	return false;
}

static bool port_in(const struct els_query *q, int32_t p)
{
	for (unsigned i = 0; p >= 0 && i < q->nport; i++)
		if (q->port[i] == p)
			return true;
	return false;
}

/* Every filter but time and seq. */
static bool match_fields(const struct els_query *q, const struct els_query_rec *r)
{
	if (q->kinds) {
		bool hit = false;

		for (int k = ELS_REC_DROP; r->kind && k < ELS_REC__END && !hit; k++)
			hit = (q->kinds & (1u << k)) && !strcmp(r->kind, els_rec_kind_names[k]);
		if (!hit)
			return false;
	}
	if (q->verdicts && !(r->verdict && ((q->verdicts & 1 && !strcmp(r->verdict, "accept")) ||
					    (q->verdicts & 2 && !strcmp(r->verdict, "drop")))))
		return false;
	if (q->nreason) {
		bool hit = false;

		for (unsigned i = 0; r->reason && i < q->nreason && !hit; i++)
			hit = !strcmp(r->reason, els_reason_name(q->reason[i]));
		if (!hit)
			return false;
	}
	if (q->nhandler) {
		bool hit = false;

		for (unsigned i = 0; r->handler && i < q->nhandler && !hit; i++)
			hit = !strcmp(r->handler, q->handler[i]);
		if (!hit)
			return false;
	}
	if (q->naddr && !addr_in(q, r->src) && !addr_in(q, r->dst))
		return false;
	if (q->nport && !port_in(q, r->sport) && !port_in(q, r->dport))
		return false;
	return true;
}

bool els_query_match(const struct els_query *q, const struct els_query_rec *r)
{
	if (q->since_ns >= 0 && r->ts_ns < q->since_ns)
		return false;
	if (q->until_ns >= 0 && r->ts_ns >= q->until_ns)
		return false;
	if (q->before_seq >= 0 && r->seq >= q->before_seq)
		return false;
	if (q->after_seq >= 0 && r->seq <= q->after_seq)
		return false;
	return match_fields(q, r);
}

static const char *jstr(json_t *row, const char *k)
{
	return json_string_value(json_object_get(row, k));
}

static int64_t jint(json_t *row, const char *k, int64_t none)
{
	json_t *v = json_object_get(row, k);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : none;
}

bool els_query_match_json(const struct els_query *q, json_t *row)
{
	struct els_query_rec r = {
	    .seq = jint(row, "seq", 0),
	    .ts_ns = jint(row, "ts_ns", 0),
	    .kind = jstr(row, "kind"),
	    .verdict = jstr(row, "verdict"),
	    .src = jstr(row, "src"),
	    .dst = jstr(row, "dst"),
	    .reason = jstr(row, "reason"),
	    .handler = jstr(row, "handler"),
	    .sport = (int32_t)jint(row, "sport", -1),
	    .dport = (int32_t)jint(row, "dport", -1),
	};

	return els_query_match(q, &r);
}

/* ---- SQL ---- */

/* els_match(kind, verdict, src, dst, sport, dport, reason, handler): els_query_match on the
 * row, so the SQL path and the JSON path are one predicate. */
static void sql_match(sqlite3_context *ctx, int argc, sqlite3_value **v)
{
	const struct els_query *q = sqlite3_user_data(ctx);
	struct els_query_rec r = {
	    .seq = -1,
	    .ts_ns = -1,
	    .kind = (const char *)sqlite3_value_text(v[0]),
	    .verdict = (const char *)sqlite3_value_text(v[1]),
	    .src = (const char *)sqlite3_value_text(v[2]),
	    .dst = (const char *)sqlite3_value_text(v[3]),
	    .sport = sqlite3_value_type(v[4]) == SQLITE_NULL ? -1 : sqlite3_value_int(v[4]),
	    .dport = sqlite3_value_type(v[5]) == SQLITE_NULL ? -1 : sqlite3_value_int(v[5]),
	    .reason = (const char *)sqlite3_value_text(v[6]),
	    .handler = (const char *)sqlite3_value_text(v[7]),
	};
	(void)argc;
	/* time and seq are bound in the WHERE clause, where the index can use them */
	sqlite3_result_int(ctx, match_fields(q, &r));
}

int els_query_open(const char *path, sqlite3 **db, char *err, size_t errlen)
{
	*db = NULL;
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
			 *db ? sqlite3_errmsg(*db) : "out of memory");
		sqlite3_close(*db);
		*db = NULL;
		return -EIO;
	}
	sqlite3_busy_timeout(*db, 2000);
	return 0;
}

int els_query_prepare(sqlite3 *db, const struct els_query *q, bool newest_first, unsigned extra,
		      sqlite3_stmt **st, char *err, size_t errlen)
{
	char inner[1024], sql[1400];
	const char *order = newest_first ? "DESC" : "ASC";

	*st = NULL;
	if (sqlite3_create_function(db, "els_match", 8, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
				    (void *)q, sql_match, NULL, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot register the query function: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	snprintf(inner, sizeof(inner),
		 "SELECT %s FROM records WHERE ts_ns >= ?1 AND ts_ns < ?2 AND seq < ?3 AND "
		 "seq > ?4 AND els_match(kind, verdict, src, dst, sport, dport, reason, handler)",
		 els_mon_columns);
	if (q->limit)
		/* the newest rows that match, then in the order asked for */
		snprintf(sql, sizeof(sql),
			 "SELECT * FROM (%s ORDER BY seq DESC LIMIT %" PRIu64 ") ORDER BY seq %s",
			 inner, q->limit + extra, order);
	else
		snprintf(sql, sizeof(sql), "%s ORDER BY seq %s", inner, order);
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot query: %s", sqlite3_errmsg(db));
		return -EIO;
	}
	sqlite3_bind_int64(*st, 1, q->since_ns >= 0 ? q->since_ns : INT64_MIN);
	sqlite3_bind_int64(*st, 2, q->until_ns >= 0 ? q->until_ns : INT64_MAX);
	sqlite3_bind_int64(*st, 3, q->before_seq >= 0 ? q->before_seq : INT64_MAX);
	sqlite3_bind_int64(*st, 4, q->after_seq >= 0 ? q->after_seq : -1);
	return 0;
}
