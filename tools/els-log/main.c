/* els-log: queries the local monitor file with the query vocabulary it shares with `elsctl log`
 * (lib/query/, docs/forensics.md "Queries"): filters, the table, NDJSON or CSV, --follow and
 * `top`. Also verifies the file's chain (--verify).
 *
 * Read-only: it opens the file with SQLITE_OPEN_READONLY, so it can run beside elsd (WAL lets
 * readers and the writer go on together) and never changes what it reads. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "els/clock.h"
#include "els/handler.h"
#include "els/monitor.h"
#include "els/query.h"

#define DEFAULT_MONITOR	 "/var/lib/elsd/monitor.db"
#define FOLLOW_PERIOD_MS 500
#define TOP_DEFAULT	 10

static const char usage_text[] =
    "Usage: els-log [OPTIONS] [FILE]\n"
    "       els-log top --by port|src|reason|permit [OPTIONS] [FILE]\n"
    "       els-log --verify [FILE] [--key KEY]\n"
    "\n"
    "Prints the records of an elsd monitor file (default " DEFAULT_MONITOR "), oldest\n"
    "first, that match every filter given. Repeating a filter, or giving it a comma-separated\n"
    "list, matches any of the values. `elsctl log` takes the same filters for an agent's file.\n"
    "\n"
    "Filters:\n"
    "  -s, --since TIME     records at or after TIME\n"
    "  -u, --until TIME     records before TIME\n"
    "                       TIME: @EPOCH, an age (90s, 15m, 1h, 2d, 1w: that long ago), or\n"
    "                       UTC 2024-05-01, 2024-05-01T10:30[:00[.250]][Z]\n"
    "  -k, --kind KIND      " ELS_REC_KIND_LIST "\n"
    "  -v, --verdict V      accept or drop\n"
    "      --addr CIDR      source or destination inside CIDR (198.51.100.0/24, 2001:db8::/32,\n"
    "                       or one address, in any IPv6 spelling)\n"
    "  -p, --port N         source or destination port\n"
    "  -r, --reason R       why: no_permit, deny_list, out_of_state, flow_timeout, ...\n"
    "  -H, --handler H      which handler decided: iplist, header_filter, tracker, ..., or\n"
    "                       decode, chain, elsd, queue, mgmt, monitor\n"
    "  -l, --limit N        only the newest N matching records (still printed oldest first);\n"
    "                       with top: the N biggest entries (default 10)\n"
    "      --before-seq S, --after-seq S   records older / newer than record S\n"
    "\n"
    "Output:\n"
    "  -j, --json           NDJSON: one object per record, every column (null when empty);\n"
    "                       the schema is in docs/forensics.md, \"Record JSON\"\n"
    "      --csv            CSV with a header line, every column\n"
    "                       (default: an aligned table of the useful columns)\n"
    "  -f, --follow         after the matching records, wait for new ones and print them as\n"
    "                       elsd writes them, until interrupted\n"
    "\n"
    "top: packets and records per destination port, source, reason or permit over the\n"
    "records that match (e.g. els-log top --by port --kind drop --since 1h), biggest first;\n"
    "--json gives one {\"by\", \"value\", \"packets\", \"records\"} object per line.\n"
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

struct options {
	const char *file, *key;
	struct els_query q;
	enum fmt fmt;
	bool verify, follow, top;
	enum els_top_by by;
	bool by_set;
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

static void parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_CSV = 256, OPT_VERIFY, OPT_BY };
	/* --last: the old name of --limit */
	/* clang-format off */
	static const struct option own[] = {
	    {"last", required_argument, NULL, 'l'},
	    {"follow", no_argument, NULL, 'f'},
	    {"by", required_argument, NULL, OPT_BY},
	    {"json", no_argument, NULL, 'j'},
	    {"csv", no_argument, NULL, OPT_CSV},
	    {"verify", no_argument, NULL, OPT_VERIFY},
	    {"key", required_argument, NULL, 'K'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	/* clang-format on */
	struct option longopts[ELS_QUERY_NOPTS + sizeof(own) / sizeof(own[0]) + 1] = {0};
	unsigned nlo = els_query_longopts(longopts);
	char err[700];
	int64_t now = (int64_t)els_now_real();
	int c;

	for (size_t i = 0; own[i].name; i++)
		longopts[nlo++] = own[i];
	els_query_init(&o->q, els_handler_all());
	/* `top` first, or anywhere among the options (getopt moves operands to the end). */
	/* -a and -n are parsed only to name their new spelling: one letter means one thing in
	 * every tool (docs/cli.md, "Short options"), and these two mean --agent and dry run. */
	while ((c = getopt_long(argc, argv, ELS_QUERY_SHORTOPTS "a:n:fjK:Vh", longopts, NULL)) !=
	       -1) {
		const char *name = els_query_opt_name(c);

		switch (name ? 0 : c) {
		case 0:
			break;
		case 'a':
			die("-a is --agent in elsctl; the address filter is --addr %s", optarg);
		case 'n':
			die("-n is a dry run in every tool; the count is -l %s (--limit)", optarg);
		case 'f':
			o->follow = true;
			break;
		case OPT_BY:
			if (els_top_by_parse(optarg, &o->by) < 0)
				die("--by '%s': port, src, reason or permit", optarg);
			o->by_set = true;
			break;
		case 'j':
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
		if (name && els_query_set(&o->q, name, optarg, now, err, sizeof(err)) < 0)
			die("%s", err);
	}
	if (optind < argc && !strcmp(argv[optind], "top")) {
		o->top = true;
		optind++;
	}
	o->file = optind < argc ? argv[optind++] : DEFAULT_MONITOR;
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);
	if (o->top && !o->by_set)
		die("top needs --by port, src, reason or permit");
	if (!o->top && o->by_set)
		die("--by goes with top: els-log top --by port ...");
	if (o->top && (o->follow || o->fmt == FMT_CSV))
		die("top takes neither --follow nor --csv");
}

/* Prints the rows of q on db; the last seq seen goes to *last. 0, or 2 on an error. */
static int print_rows(sqlite3 *db, const struct options *o, const struct els_query *q,
		      struct els_query_table *t, int64_t *last)
{
	sqlite3_stmt *st = NULL;
	char err[512];
	int rc;

	if (els_query_prepare(db, q, false, 0, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "els-log: %s: %s\n", o->file, err);
		return 2;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *row = els_query_row_json(st);

		if (!row) {
			fputs("els-log: out of memory: use --limit or --json\n", stderr);
			break;
		}
		*last = (int64_t)json_integer_value(json_object_get(row, "seq"));
		if (o->fmt == FMT_JSON)
			els_query_print_ndjson(row, stdout);
		else if (o->fmt == FMT_CSV)
			els_query_print_csv(row, stdout);
		else if (els_query_table_add(t, row) < 0)
			rc = SQLITE_NOMEM;
		json_decref(row);
		if (rc == SQLITE_NOMEM)
			break;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "els-log: %s: %s\n", o->file,
			rc == SQLITE_NOMEM ? "out of memory: use --limit or --json"
					   : sqlite3_errmsg(db));
		return 2;
	}
	if (o->fmt == FMT_TABLE)
		els_query_table_flush(t, stdout);
	fflush(stdout);
	return 0;
}

static int top(sqlite3 *db, const struct options *o)
{
	struct els_query q = o->q;
	struct els_top *t = els_top_new(o->by);
	sqlite3_stmt *st = NULL;
	char err[512];
	int rc = 2, s;

	q.limit = 0; /* --limit is how many entries to show; every matching row counts */
	if (!t || els_query_prepare(db, &q, false, 0, &st, err, sizeof(err)) < 0) {
		fprintf(stderr, "els-log: %s: %s\n", o->file, t ? err : "out of memory");
		goto out;
	}
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *row = els_query_row_json(st);

		if (!row || els_top_add(t, row) < 0) {
			json_decref(row);
			fputs("els-log: out of memory\n", stderr);
			goto out;
		}
		json_decref(row);
	}
	if (s != SQLITE_DONE) {
		fprintf(stderr, "els-log: %s: %s\n", o->file, sqlite3_errmsg(db));
		goto out;
	}
	els_top_print(t, o->q.limit ? (unsigned)o->q.limit : TOP_DEFAULT, o->fmt == FMT_JSON,
		      stdout);
	rc = 0;
out:
	sqlite3_finalize(st);
	els_top_free(t);
	return rc;
}

int main(int argc, char **argv)
{
	struct options o;
	struct els_query_table *t = NULL;
	sqlite3 *db = NULL;
	char err[512];
	int64_t last = -1;
	int ret = 2;

	memset(&o, 0, sizeof(o));
	parse_args(argc, argv, &o);
	if (o.verify)
		return els_mon_verify_cli("els-log", o.file, o.key, isatty(STDERR_FILENO));
	if (access(o.file, R_OK) != 0) {
		fprintf(stderr, "els-log: %s: %s\n", o.file, strerror(errno));
		return 2;
	}
	if (els_query_open(o.file, &db, err, sizeof(err)) < 0) {
		fprintf(stderr, "els-log: %s\n", err);
		return 2;
	}
	if (o.top) {
		ret = top(db, &o);
		goto out;
	}
	t = els_query_table_new();
	if (!t) {
		fputs("els-log: out of memory\n", stderr);
		goto out;
	}
	if (o.fmt == FMT_CSV)
		els_query_csv_header(stdout);
	ret = print_rows(db, &o, &o.q, t, &last);
	if (ret == 0 && !o.follow && last < 0 && o.fmt == FMT_TABLE)
		fprintf(stderr, "els-log: no matching records in %s\n", o.file);
	while (ret == 0 && o.follow) {
		/* Every later record: those after the last one printed, oldest first. Each query
		 * is a new read transaction, so it sees what elsd committed meanwhile. */
		struct els_query next = o.q;
		struct timespec nap = {.tv_nsec = FOLLOW_PERIOD_MS * (long)ELS_NS_PER_MS};

		next.limit = 0;
		if (last >= 0)
			next.after_seq = last > next.after_seq ? last : next.after_seq;
		nanosleep(&nap, NULL);
		ret = print_rows(db, &o, &next, t, &last);
	}
out:
	els_query_table_free(t);
	sqlite3_close(db);
	return ret;
}
