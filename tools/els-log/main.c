/* els-log: queries the local monitor file (see docs/forensics.md, "Queries"): filters by time,
 * kind, verdict, address (CIDR, source or destination), port, reason and handler, and prints
 * an aligned table, JSON lines or CSV. Also verifies the file's chain (--verify).
 *
 * Read-only: it opens the file with SQLITE_OPEN_READONLY, so it can run beside elsd (WAL lets
 * readers and the writer go on together) and never changes what it reads. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "els/addr.h"
#include "els/monitor.h"

#define DEFAULT_MONITOR "/var/lib/elsd/monitor.db"
#define MAX_FILTERS	16

static const char usage_text[] =
    "Usage: els-log [OPTIONS] [FILE]\n"
    "       els-log --verify [FILE] [--key KEY]\n"
    "\n"
    "Prints the records of an elsd monitor file (default " DEFAULT_MONITOR "), oldest\n"
    "first, that match every filter given. Repeating a filter, or giving it a comma-separated\n"
    "list, matches any of the values.\n"
    "\n"
    "Filters:\n"
    "  -s, --since TIME     records at or after TIME\n"
    "  -u, --until TIME     records before TIME\n"
    "                       TIME: 2024-05-01, 2024-05-01T10:30[:00[.250]][Z] (UTC), @EPOCH,\n"
    "                       or an age: 90s, 15m, 1h, 2d, 1w (that long ago)\n"
    "  -k, --kind KIND      " ELS_REC_KIND_LIST "\n"
    "  -v, --verdict V      accept or drop\n"
    "  -a, --addr CIDR      source or destination in CIDR (198.51.100.0/24, 2001:db8::/32,\n"
    "                       or one address)\n"
    "  -p, --port N         source or destination port\n"
    "  -r, --reason R       why: no_permit, deny_list, out_of_state, flow_timeout, ...\n"
    "  -H, --handler H      which handler decided: iplist, header_filter, tracker, ...\n"
    "  -n, --last N         only the last N matching records\n"
    "\n"
    "Output:\n"
    "      --json           one JSON object per line, every non-NULL column\n"
    "      --csv            CSV with a header line, every column\n"
    "                       (default: an aligned table of the useful columns)\n"
    "\n"
    "Verification:\n"
    "      --verify         verify the chain of MACs of the whole file: reports the first\n"
    "                       altered, inserted or deleted record, or a truncated file\n"
    "  -K, --key FILE       the chain key (default: monitor.key beside FILE)\n"
    "\n"
    "  -V, --version        print the version and exit\n"
    "  -h, --help           print this help and exit\n"
    "\n"
    "Exit status: 0 success (records found or not; a clean file with --verify);\n"
    "1 --verify found tampering; 2 usage error or unreadable file.\n";

enum fmt { FMT_TABLE, FMT_JSON, FMT_CSV };

struct filter {
	const char *vals[MAX_FILTERS];
	unsigned n;
};

struct options {
	const char *file, *key;
	int64_t since, until; /* ns; -1: none */
	struct filter kind, verdict, reason, handler;
	struct els_cidr addr[MAX_FILTERS];
	unsigned naddr;
	long ports[MAX_FILTERS];
	unsigned nport;
	uint64_t last;
	enum fmt fmt;
	bool verify;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("els-log: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'els-log --help'.\n", stderr);
	exit(2);
}

/* Splits a comma list into f (the strings stay in argv). */
static void add_values(struct filter *f, char *arg, const char *opt)
{
	for (char *save = NULL, *t = strtok_r(arg, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (f->n == MAX_FILTERS)
			die("%s: at most %d values", opt, MAX_FILTERS);
		f->vals[f->n++] = t;
	}
}

/* TIME as ns since the epoch (see the help). */
static int64_t parse_time(const char *s, const char *opt)
{
	static const char *const fmts[] = {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
					   "%Y-%m-%dT%H:%M",	"%Y-%m-%d %H:%M",
					   "%Y-%m-%d",		NULL};
	char *end;
	long long v;

	if (s[0] == '@') {
		errno = 0;
		v = strtoll(s + 1, &end, 10);
		if (!errno && end != s + 1 && !*end && v >= 0)
			return (int64_t)v * 1000000000;
		die("%s '%s': @ takes seconds since 1970", opt, s);
	}
	if (isdigit((unsigned char)s[0])) {
		errno = 0;
		v = strtoll(s, &end, 10);
		if (!errno && end != s && end[0] && !end[1] && strchr("smhdw", end[0])) {
			static const long long unit[] = {['s' - 'a'] = 1,
							 ['m' - 'a'] = 60,
							 ['h' - 'a'] = 3600,
							 ['d' - 'a'] = 86400,
							 ['w' - 'a'] = 604800};
			return ((int64_t)time(NULL) - v * unit[end[0] - 'a']) * 1000000000;
		}
	}
	for (const char *const *f = fmts; *f; f++) {
		struct tm tm = {0};
		const char *rest = strptime(s, *f, &tm);

		int64_t frac = 0, scale = 100000000;

		/* fractions of a second after the seconds: 10:30:00.250 */
		if (rest && rest[0] == '.' && strchr(*f, 'S'))
			for (rest++; isdigit((unsigned char)*rest); rest++, scale /= 10)
				frac += (*rest - '0') * scale;
		if (rest && (!*rest || (rest[0] == 'Z' && !rest[1])))
			return (int64_t)timegm(&tm) * 1000000000 + frac;
	}
	die("%s '%s': not a time (2024-05-01, 2024-05-01T10:30:00Z, @EPOCH, or an age: 90s, "
	    "15m, 1h, 2d, 1w)",
	    opt, s);
}

static void parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_JSON = 256, OPT_CSV, OPT_VERIFY };
	static const struct option longopts[] = {
	    {"since", required_argument, NULL, 's'},  {"until", required_argument, NULL, 'u'},
	    {"kind", required_argument, NULL, 'k'},   {"verdict", required_argument, NULL, 'v'},
	    {"addr", required_argument, NULL, 'a'},   {"port", required_argument, NULL, 'p'},
	    {"reason", required_argument, NULL, 'r'}, {"handler", required_argument, NULL, 'H'},
	    {"last", required_argument, NULL, 'n'},   {"json", no_argument, NULL, OPT_JSON},
	    {"csv", no_argument, NULL, OPT_CSV},      {"verify", no_argument, NULL, OPT_VERIFY},
	    {"key", required_argument, NULL, 'K'},    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},	      {0},
	};
	const char *why;
	char *end;
	int c;

	o->since = o->until = -1;
	while ((c = getopt_long(argc, argv, "s:u:k:v:a:p:r:H:n:K:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o->since = parse_time(optarg, "--since");
			break;
		case 'u':
			o->until = parse_time(optarg, "--until");
			break;
		case 'k':
			add_values(&o->kind, optarg, "--kind");
			for (unsigned i = 0; i < o->kind.n; i++)
				if (!els_rec_kind_known(o->kind.vals[i]))
					die("--kind '%s': one of " ELS_REC_KIND_LIST, o->kind.vals[i]);
			break;
		case 'v':
			add_values(&o->verdict, optarg, "--verdict");
			for (unsigned i = 0; i < o->verdict.n; i++)
				if (strcmp(o->verdict.vals[i], "accept") &&
				    strcmp(o->verdict.vals[i], "drop"))
					die("--verdict '%s': accept or drop", o->verdict.vals[i]);
			break;
		case 'a':
			for (char *save = NULL, *t = strtok_r(optarg, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				if (o->naddr == MAX_FILTERS)
					die("--addr: at most %d values", MAX_FILTERS);
				if (els_cidr_parse(t, &o->addr[o->naddr], &why) < 0)
					die("--addr '%s': %s", t, why);
				o->naddr++;
			}
			break;
		case 'p':
			for (char *save = NULL, *t = strtok_r(optarg, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				long v = strtol(t, &end, 10);

				if (end == t || *end || v < 0 || v > 65535)
					die("--port '%s': a port number 0..65535", t);
				if (o->nport == MAX_FILTERS)
					die("--port: at most %d values", MAX_FILTERS);
				o->ports[o->nport++] = v;
			}
			break;
		case 'r':
			add_values(&o->reason, optarg, "--reason");
			break;
		case 'H':
			add_values(&o->handler, optarg, "--handler");
			break;
		case 'n':
			o->last = strtoull(optarg, &end, 10);
			if (end == optarg || *end || o->last == 0 || optarg[0] == '-')
				die("--last '%s': a number > 0", optarg);
			break;
		case OPT_JSON:
			o->fmt = FMT_JSON;
			break;
		case OPT_CSV:
			o->fmt = FMT_CSV;
			break;
		case OPT_VERIFY:
			o->verify = true;
			break;
		case 'K':
			o->key = optarg;
			break;
		case 'V':
			printf("els-log %s\n", ELS_VERSION);
			exit(0);
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			fputs("Try 'els-log --help'.\n", stderr);
			exit(2);
		}
	}
	o->file = optind < argc ? argv[optind++] : DEFAULT_MONITOR;
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);
}

/* SQL function els_in_cidr(addr_text): is the address in one of the --addr prefixes? */
static void in_cidr(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const struct options *o = sqlite3_user_data(ctx);
	const char *txt = (const char *)sqlite3_value_text(argv[0]);
	struct els_addr a;
	unsigned fam;
	bool hit = false;

	(void)argc;
	memset(&a, 0, sizeof(a));
	if (txt) {
		fam = strchr(txt, ':') ? ELS_AF_INET6 : ELS_AF_INET;
		if (inet_pton(fam == ELS_AF_INET6 ? AF_INET6 : AF_INET, txt, a.b) == 1)
			for (unsigned i = 0; i < o->naddr && !hit; i++)
				hit = els_cidr_contains(&o->addr[i], fam, &a);
	}
	sqlite3_result_int(ctx, hit);
}

/* "col IN (?, ?, ...)" for a filter, binding order kept in *binds. */
static void add_in(char *sql, size_t len, const char *col, const struct filter *f,
		   const char **binds, unsigned *nb)
{
	if (!f->n)
		return;
	snprintf(sql + strlen(sql), len - strlen(sql), " AND %s IN (", col);
	for (unsigned i = 0; i < f->n; i++) {
		snprintf(sql + strlen(sql), len - strlen(sql), "%s?", i ? ", " : "");
		binds[(*nb)++] = f->vals[i];
	}
	snprintf(sql + strlen(sql), len - strlen(sql), ")");
}

static const char *const cols[] = {
    "seq",	 "ts_ns",      "kind",	     "verdict",	    "dir",	  "family",    "proto",
    "src",	 "sport",      "dst",	     "dport",	    "icmp_type",  "icmp_code", "tcp_flags",
    "handler",	 "reason",     "rule",	     "rule_name",   "generation", "count",     "pkts_init",
    "pkts_resp", "bytes_init", "bytes_resp", "duration_ns", "detail",
};
#define NCOLS (sizeof(cols) / sizeof(cols[0]))

static sqlite3_stmt *query(sqlite3 *db, const struct options *o)
{
	char sql[4096], inner[3600];
	const char *binds[4 * MAX_FILTERS];
	unsigned nb = 0;
	sqlite3_stmt *st;
	int b = 1;

	snprintf(inner, sizeof(inner), "SELECT %s FROM records WHERE 1", els_mon_columns);
	if (o->since >= 0)
		snprintf(inner + strlen(inner), sizeof(inner) - strlen(inner), " AND ts_ns >= %lld",
			 (long long)o->since);
	if (o->until >= 0)
		snprintf(inner + strlen(inner), sizeof(inner) - strlen(inner), " AND ts_ns < %lld",
			 (long long)o->until);
	add_in(inner, sizeof(inner), "kind", &o->kind, binds, &nb);
	add_in(inner, sizeof(inner), "verdict", &o->verdict, binds, &nb);
	add_in(inner, sizeof(inner), "reason", &o->reason, binds, &nb);
	add_in(inner, sizeof(inner), "handler", &o->handler, binds, &nb);
	if (o->naddr)
		snprintf(inner + strlen(inner), sizeof(inner) - strlen(inner),
			 " AND (els_in_cidr(src) OR els_in_cidr(dst))");
	if (o->nport) {
		snprintf(inner + strlen(inner), sizeof(inner) - strlen(inner),
			 " AND (sport IN (SELECT value FROM json_each(?)) OR"
			 " dport IN (SELECT value FROM json_each(?)))");
	}
	if (o->last)
		snprintf(sql, sizeof(sql),
			 "SELECT * FROM (%s ORDER BY seq DESC LIMIT %llu) ORDER BY seq", inner,
			 (unsigned long long)o->last);
	else
		snprintf(sql, sizeof(sql), "%s ORDER BY seq", inner);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "els-log: %s: cannot query: %s\n", o->file, sqlite3_errmsg(db));
		return NULL;
	}
	for (unsigned i = 0; i < nb; i++)
		sqlite3_bind_text(st, b++, binds[i], -1, SQLITE_STATIC);
	if (o->nport) {
		char list[MAX_FILTERS * 8 + 4] = "[";

		for (unsigned i = 0; i < o->nport; i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%ld",
				 i ? "," : "", o->ports[i]);
		strcat(list, "]");
		sqlite3_bind_text(st, b++, list, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, b++, list, -1, SQLITE_TRANSIENT);
	}
	return st;
}

static void iso_time(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	gmtime_r(&t, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03dZ", (int)(ns % 1000000000 / 1000000));
}

/* ---- output ---- */

static void print_json(sqlite3_stmt *st)
{
	json_t *obj = json_object();
	char t[40];
	char *line;

	iso_time(sqlite3_column_int64(st, 1), t, sizeof(t));
	for (unsigned i = 0; i < NCOLS; i++) {
		if (sqlite3_column_type(st, (int)i) == SQLITE_NULL)
			continue;
		if (i == 1)
			json_object_set_new(obj, "time", json_string(t));
		if (sqlite3_column_type(st, (int)i) == SQLITE_INTEGER)
			json_object_set_new(obj, cols[i],
					    json_integer(sqlite3_column_int64(st, (int)i)));
		else
			json_object_set_new(
			    obj, cols[i],
			    json_stringn((const char *)sqlite3_column_text(st, (int)i),
					 (size_t)sqlite3_column_bytes(st, (int)i)));
	}
	line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	if (line)
		puts(line);
	free(line);
	json_decref(obj);
}

static void csv_field(const char *s)
{
	if (!s)
		return;
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, stdout);
		return;
	}
	putchar('"');
	for (; *s; s++) {
		if (*s == '"')
			putchar('"');
		putchar(*s);
	}
	putchar('"');
}

static void print_csv(sqlite3_stmt *st)
{
	char t[40];

	iso_time(sqlite3_column_int64(st, 1), t, sizeof(t));
	for (unsigned i = 0; i < NCOLS; i++) {
		if (i)
			putchar(',');
		if (i == 1) {
			fputs(t, stdout);
			putchar(',');
		}
		csv_field((const char *)sqlite3_column_text(st, (int)i));
	}
	putchar('\n');
}

/* The table: buffered, so that every column is as wide as its widest value. */
#define TCOLS 12
static const char *const theads[TCOLS] = {"TIME",    "SEQ",    "KIND",	 "VERDICT",
					  "DIR",     "PROTO",  "SOURCE", "DESTINATION",
					  "HANDLER", "REASON", "RULE",	 "COUNT"};

struct table {
	char **cells; /* TCOLS per row, then the detail */
	size_t rows, cap;
	size_t width[TCOLS];
};

static char *endpoint(sqlite3_stmt *st, int addr, int port)
{
	const char *a = (const char *)sqlite3_column_text(st, addr);
	char *out = NULL;

	if (!a)
		return strdup("");
	if (sqlite3_column_type(st, port) == SQLITE_NULL)
		return strdup(a);
	if (asprintf(&out, strchr(a, ':') ? "[%s]:%lld" : "%s:%lld", a,
		     (long long)sqlite3_column_int64(st, port)) < 0)
		return NULL;
	return out;
}

static char *text_or(sqlite3_stmt *st, int i, const char *none)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return strdup(s ? s : none);
}

static int table_add(struct table *t, sqlite3_stmt *st)
{
	char buf[64], **c;

	if (t->rows == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 256;
		char **n = realloc(t->cells, cap * (TCOLS + 1) * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->cells = n;
		t->cap = cap;
	}
	c = &t->cells[t->rows * (TCOLS + 1)];
	iso_time(sqlite3_column_int64(st, 1), buf, sizeof(buf));
	c[0] = strdup(buf);
	c[1] = text_or(st, 0, "");
	c[2] = text_or(st, 2, "");
	c[3] = text_or(st, 3, "-");
	c[4] = text_or(st, 4, "-");
	c[5] = text_or(st, 6, "-");
	c[6] = endpoint(st, 7, 8);
	c[7] = endpoint(st, 9, 10);
	c[8] = text_or(st, 14, "-");
	c[9] = text_or(st, 15, "-");
	if (sqlite3_column_type(st, 17) != SQLITE_NULL)
		c[10] = text_or(st, 17, "");
	else if (sqlite3_column_type(st, 16) != SQLITE_NULL)
		c[10] =
		    (snprintf(buf, sizeof(buf), "#%lld", (long long)sqlite3_column_int64(st, 16)),
		     strdup(buf));
	else
		c[10] = strdup("-");
	c[11] = text_or(st, 19, "");
	c[12] = text_or(st, 25, "");
	for (unsigned i = 0; i <= TCOLS; i++)
		if (!c[i])
			return -ENOMEM;
	for (unsigned i = 0; i < TCOLS; i++)
		if (strlen(c[i]) > t->width[i])
			t->width[i] = strlen(c[i]);
	t->rows++;
	return 0;
}

static void table_print(struct table *t)
{
	for (unsigned i = 0; i < TCOLS; i++)
		if (strlen(theads[i]) > t->width[i])
			t->width[i] = strlen(theads[i]);
	for (unsigned i = 0; i < TCOLS; i++)
		printf("%-*s  ", (int)t->width[i], theads[i]);
	puts("DETAIL");
	for (size_t r = 0; r < t->rows; r++) {
		char **c = &t->cells[r * (TCOLS + 1)];

		for (unsigned i = 0; i < TCOLS; i++)
			/* numbers right-aligned, text left */
			printf(i == 1 || i == 11 ? "%*s  " : "%-*s  ", (int)t->width[i], c[i]);
		puts(c[TCOLS]);
	}
	for (size_t i = 0; i < t->rows * (TCOLS + 1); i++)
		free(t->cells[i]);
	free(t->cells);
}

int main(int argc, char **argv)
{
	struct options o;
	struct table t = {0};
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	unsigned long rows = 0;
	int rc, ret = 2;

	memset(&o, 0, sizeof(o));
	parse_args(argc, argv, &o);
	if (o.verify)
		return els_mon_verify_cli("els-log", o.file, o.key, isatty(STDERR_FILENO));
	if (access(o.file, R_OK) != 0) {
		fprintf(stderr, "els-log: %s: %s\n", o.file, strerror(errno));
		return 2;
	}
	if (sqlite3_open_v2(o.file, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		fprintf(stderr, "els-log: %s: cannot open: %s\n", o.file, sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_busy_timeout(db, 5000);
	sqlite3_create_function(db, "els_in_cidr", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, &o,
				in_cidr, NULL, NULL);
	st = query(db, &o);
	if (!st)
		goto out;
	if (o.fmt == FMT_CSV) {
		for (unsigned i = 0; i < NCOLS; i++)
			printf("%s%s", i ? "," : "", i == 1 ? "time,ts_ns" : cols[i]);
		putchar('\n');
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rows++;
		if (o.fmt == FMT_JSON)
			print_json(st);
		else if (o.fmt == FMT_CSV)
			print_csv(st);
		else if (table_add(&t, st) != 0) {
			fputs("els-log: out of memory: use --last or --json\n", stderr);
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "els-log: %s: %s\n", o.file, sqlite3_errmsg(db));
		goto out;
	}
	if (o.fmt == FMT_TABLE) {
		if (rows)
			table_print(&t);
		else
			fprintf(stderr, "els-log: no matching records in %s\n", o.file);
		t.cells = NULL;
	}
	ret = 0;
out:
	if (t.cells) {
		for (size_t i = 0; i < t.rows * (TCOLS + 1); i++)
			free(t.cells[i]);
		free(t.cells);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ret;
}
