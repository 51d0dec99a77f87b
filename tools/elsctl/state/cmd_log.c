/* elsctl log: the agent's monitor records with els-log's vocabulary (lib/query/): the same
 * filters and errors, the same table, NDJSON and order, `top` and --follow.
 *
 * The management `log` request carries one kind, one verdict and one port, and strings of 64
 * bytes. What it cannot carry is left out of the request, which makes the agent's answer wider,
 * never narrower; the rows are then filtered here with the same predicate the agent and els-log
 * use (els_query_match_json), paging back with before_seq until enough rows match. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "els/clock.h"
#include "els/handler.h"
#include "els/monitor.h"
#include "els/query.h"
#include "../elsctl.h"

#define PAGE_ROWS	10000 /* the protocol's largest limit */
#define MAX_PAGES	100   /* a million rows scanned at most per answer */
#define DEFAULT_ROWS	50
#define TOP_DEFAULT	10
#define FOLLOW_PERIOD_S 2
#define FOLLOW_SLACK_NS (60 * (int64_t)ELS_NS_PER_S) /* records reach the file up to ~1 s late */

struct log_job {
	struct els_query q;
	uint64_t want; /* rows to collect; 0: every one (top, follow) */
	bool json, top;
	enum els_top_by by;
	unsigned shown; /* top: entries to print */
};

/* The job of this run, for show_log (a show callback has no data argument). */
static const struct log_job *log_job;

static bool popcount_le1(uint32_t v)
{
	return !(v & (v - 1));
}

/* Can the request carry every filter of q? Then the agent's rows are the answer itself. */
static bool wire_exact(const struct els_query *q, json_t *args)
{
	return popcount_le1(q->kinds) && popcount_le1(q->verdicts) && q->nport <= 1 &&
	       q->after_seq < 0 && (!q->nreason || json_object_get(args, "reason")) &&
	       (!q->nhandler || json_object_get(args, "handler")) &&
	       (!q->naddr || json_object_get(args, "addr"));
}

/* The rows of j->q on the agent, newest first, in a synthesized `log` answer
 * {"rows": [...oldest first...], "truncated", "scanned"}. */
static int log_call(struct ctl_conn *conn, const struct ctl_req *r, const char *label,
		    json_t **resp, char *err, size_t errlen)
{
	const struct log_job *j = r->data;
	struct els_query q = j->q;
	json_t *rows = json_array(), *page = NULL, *result;
	uint64_t scanned = 0;
	bool more = false;
	int rc = 0;

	*resp = NULL;
	if (!rows)
		return -ENOMEM;
	for (unsigned pages = 0;; pages++) {
		json_t *args = els_query_wire_args(&q, PAGE_ROWS), *got, *row;
		bool exact = args && wire_exact(&q, args), stop = false;
		size_t i;

		if (!args) {
			rc = -ENOMEM;
			break;
		}
		if (exact && j->want && j->want - json_array_size(rows) < PAGE_ROWS)
			json_object_set_new(
			    args, "limit",
			    json_integer((json_int_t)(j->want - json_array_size(rows))));
		rc = ctl_request(conn, label, "log", args, &page, err, errlen);
		json_decref(args);
		if (rc < 0)
			break;
		if (!json_is_true(json_object_get(page, "ok"))) {
			*resp = page; /* the agent's error, as it sent it */
			json_decref(rows);
			return 0;
		}
		got = json_object_get(json_object_get(page, "result"), "rows");
		json_array_foreach(got, i, row)
		{
			json_t *seq = json_object_get(row, "seq");

			scanned++;
			if (j->q.after_seq >= 0 && json_integer_value(seq) <= j->q.after_seq) {
				stop = true; /* older than what --follow has printed */
				break;
			}
			if (!els_query_match_json(&j->q, row))
				continue;
			if (j->want && json_array_size(rows) == j->want) {
				more = true;
				stop = true;
				break;
			}
			json_array_append(rows, row);
		}
		bool truncated =
		    json_is_true(json_object_get(json_object_get(page, "result"), "truncated"));
		size_t n = json_array_size(got);
		json_int_t last =
		    n ? json_integer_value(json_object_get(json_array_get(got, n - 1), "seq")) : 0;

		json_decref(page);
		page = NULL;
		if (stop || !truncated || !n)
			break;
		if (j->want && json_array_size(rows) == j->want) {
			more = true;
			break;
		}
		if (pages + 1 == MAX_PAGES) {
			more = true;
			fprintf(
			    stderr,
			    "elsctl: %s: stopped after %llu records scanned: narrow the filters "
			    "(--since, --kind, ...)\n",
			    label, (unsigned long long)scanned);
			break;
		}
		q.before_seq = last;
	}
	if (rc < 0) {
		json_decref(rows);
		if (rc == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		return rc;
	}
	/* oldest first, every column, as els-log prints them */
	json_t *ordered = json_array();
	for (size_t i = json_array_size(rows); ordered && i-- > 0;)
		json_array_append_new(ordered, els_query_row_normal(json_array_get(rows, i)));
	json_decref(rows);
	result = json_pack("{s:o,s:b,s:I}", "rows", ordered, "truncated", more, "scanned",
			   (json_int_t)scanned);
	*resp = json_pack("{s:i,s:b,s:o}", "v", 1, "ok", 1, "result", result);
	if (!*resp) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int show_log(json_t *r, FILE *out)
{
	const struct log_job *j = log_job;
	json_t *rows = json_object_get(r, "rows"), *row;
	size_t i;

	if (j->top) {
		struct els_top *t = els_top_new(j->by);

		if (!t)
			return CTL_EXIT_CONN;
		json_array_foreach(rows, i, row) els_top_add(t, row);
		els_top_print(t, j->shown, j->json, out);
		els_top_free(t);
		if (json_is_true(json_object_get(r, "truncated")))
			fprintf(stderr,
				"elsctl: partial: only the newest %zu matching records were "
				"counted\n",
				json_array_size(rows));
		return CTL_EXIT_OK;
	}
	if (j->json) {
		json_array_foreach(rows, i, row) els_query_print_ndjson(row, out);
	} else {
		struct els_query_table *t = els_query_table_new();

		json_array_foreach(rows, i, row) if (t) els_query_table_add(t, row);
		if (t)
			els_query_table_flush(t, out);
		els_query_table_free(t);
		if (!json_array_size(rows))
			fprintf(stderr, "elsctl: no matching records\n");
	}
	if (json_is_true(json_object_get(r, "truncated")) && json_array_size(rows))
		fprintf(stderr,
			"elsctl: more records match: --limit, or --before-seq %" JSON_INTEGER_FORMAT
			"\n",
			json_integer_value(json_object_get(json_array_get(rows, 0), "seq")));
	fflush(out);
	return CTL_EXIT_OK;
}

static void sum_log(json_t *r, char *buf, size_t len)
{
	snprintf(buf, len, "%zu rows%s", json_array_size(json_object_get(r, "rows")),
		 json_is_true(json_object_get(r, "truncated")) ? " (more)" : "");
}

static volatile sig_atomic_t stop_follow;

static void on_signal(int sig)
{
	(void)sig;
	stop_follow = 1;
}

/* --follow: the matching rows, then every new one, one poll every FOLLOW_PERIOD_S seconds on a
 * connection of its own, until interrupted or the agent stops answering. */
static int follow(struct ctl *c, struct ctl_req *r, struct log_job *j)
{
	struct ctl_endpoint ep;
	const char *why;
	char err[CTL_ERR_LEN];
	SSL_CTX *ctx;
	struct els_query_table *t = els_query_table_new();
	int rc = CTL_EXIT_OK;
	bool first = true;

	if (c->agents_file)
		return ctl_usage_error("log", "--follow asks one agent: use --agent");
	if (ctl_endpoint_parse(c->agent, c->default_port, &ep, &why) < 0)
		return ctl_usage_error("log", "--agent %s: %s", c->agent, why);
	ctx = ctl_tls_ctx_new(&c->tls, err, sizeof(err));
	if (!ctx || !t) {
		fprintf(stderr, "elsctl: %s\n", ctx ? "out of memory" : err);
		SSL_CTX_free(ctx);
		els_query_table_free(t);
		return CTL_EXIT_CONN;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!stop_follow) {
		struct ctl_conn *conn = NULL;
		json_t *resp = NULL, *rows, *row;
		size_t i;

		if (ctl_conn_open(ctx, &ep, c->tls.timeout_s, &conn, err, sizeof(err)) < 0 ||
		    log_call(conn, r, ep.label, &resp, err, sizeof(err)) < 0) {
			ctl_conn_close(conn);
			fputs("elsctl: ", stderr);
			ctl_fputs_safe(err, stderr);
			fputc('\n', stderr);
			rc = CTL_EXIT_CONN;
			break;
		}
		ctl_conn_close(conn);
		if (!json_is_true(json_object_get(resp, "ok"))) {
			ctl_json_termsafe(resp);
			ctl_print_error(NULL, json_object_get(resp, "error"), NULL, stderr);
			json_decref(resp);
			rc = CTL_EXIT_FAILED;
			break;
		}
		rows = json_object_get(json_object_get(resp, "result"), "rows");
		json_array_foreach(rows, i, row)
		{
			json_int_t seq = json_integer_value(json_object_get(row, "seq"));
			json_int_t ts = json_integer_value(json_object_get(row, "ts_ns"));

			if (j->json)
				els_query_print_ndjson(row, stdout);
			else if (t)
				els_query_table_add(t, row);
			if (seq > j->q.after_seq)
				j->q.after_seq = seq;
			/* narrow the next request; the slack keeps late-written records */
			if (ts - FOLLOW_SLACK_NS > j->q.since_ns)
				j->q.since_ns = ts - FOLLOW_SLACK_NS;
		}
		if (!j->json)
			els_query_table_flush(t, stdout);
		fflush(stdout);
		json_decref(resp);
		if (first) {
			/* from here on every new row, however many */
			j->want = 0;
			j->q.limit = 0;
			if (j->q.after_seq < 0)
				j->q.after_seq = 0;
			first = false;
		}
		for (int s = 0; s < FOLLOW_PERIOD_S * 10 && !stop_follow; s++)
			nanosleep(&(struct timespec){.tv_nsec = 100000000L}, NULL);
	}
	SSL_CTX_free(ctx);
	els_query_table_free(t);
	return rc;
}

int cmd_log(struct ctl *c, int argc, char *argv[])
{
	enum { O_BY = 256, O_JSON };
	static const struct option own[] = {
	    {"follow", no_argument, NULL, 'f'},
	    {"by", required_argument, NULL, O_BY},
	    {"json", no_argument, NULL, O_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	struct option lo[ELS_QUERY_NOPTS + sizeof(own) / sizeof(own[0]) + 1] = {0};
	unsigned nlo = els_query_longopts(lo);
	static struct log_job j;
	struct ctl_req r = {.cmd = "log",
			    .show = show_log,
			    .summary = sum_log,
			    .call = log_call,
			    .data = &j,
			    .show_json = true};
	int64_t now = (int64_t)els_now_real();
	char err[700];
	bool follow_on = false, by_set = false;
	int ch;

	for (size_t i = 0; own[i].name; i++)
		lo[nlo++] = own[i];
	els_query_init(&j.q, els_handler_all());
	j.json = c->json;
	log_job = &j;
	if (argc > 1 && !strcmp(argv[1], "top")) {
		j.top = true;
		argc--;
		argv++;
	}
	optind = 0;
	/* -n is parsed only to name the new spelling: it means a dry run in every tool. */
	while ((ch = getopt_long(argc, argv, "+" ELS_QUERY_SHORTOPTS "n:fh", lo, NULL)) != -1) {
		const char *name = els_query_opt_name(ch);

		switch (name ? 0 : ch) {
		case 0:
			break;
		case 'n':
			return ctl_usage_error(
			    "log", "-n is a dry run in every tool; the count is -l %s (--limit)",
			    optarg);
		case 'f':
			follow_on = true;
			break;
		case O_BY:
			if (els_top_by_parse(optarg, &j.by) < 0)
				return ctl_usage_error(
				    "log", "--by '%s': port, src, reason or permit", optarg);
			by_set = true;
			break;
		case O_JSON:
			j.json = c->json = true;
			break;
		case 'h':
			fputs(ctl_cmd_find("log")->usage, stdout);
			return CTL_EXIT_OK;
		default:
			return ctl_bad_option("log");
		}
		if (name && els_query_set(&j.q, name, optarg, now, err, sizeof(err)) < 0)
			return ctl_usage_error("log", "%s", err);
	}
	if (optind < argc)
		return ctl_usage_error("log", "unexpected argument '%s'", argv[optind]);
	if (j.top && !by_set)
		return ctl_usage_error("log", "top needs --by port, src, reason or permit");
	if (!j.top && by_set)
		return ctl_usage_error("log", "--by goes with top: elsctl log top --by ...");
	if (j.top && follow_on)
		return ctl_usage_error("log", "top does not --follow");
	/* top: --limit is how many entries to show, and every matching row counts */
	j.want = j.top ? 0 : j.q.limit ? j.q.limit : DEFAULT_ROWS;
	if (j.top) {
		j.shown = j.q.limit ? (unsigned)j.q.limit : TOP_DEFAULT;
		j.q.limit = 0;
		return ctl_run(c, &r);
	}
	return follow_on ? follow(c, &r, &j) : ctl_run(c, &r);
}
