/* The read-only subcommands: status, stats, flows, log. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../elsctl.h"

/* ---- status ---- */

static int show_status(json_t *r, FILE *out)
{
	char up[32], h[13];
	json_t *q, *mon = json_object_get(r, "monitor"), *cl = json_object_get(r, "client");
	size_t i;
	static const char *const hdr[] = {"QUEUE",	   "PACKETS", "ACCEPTED",      "DROPPED",
					  "DECODE_ERRORS", "ENOBUFS", "VERDICT_ERRORS"};
	static const char *const keys[] = {"queue",	    "packets", "accepted",	"dropped",
					   "decode_errors", "enobufs", "verdict_errors"};
	struct ctl_table *t = ctl_table_new(7, hdr);

	ctl_fmt_duration((double)ctl_jint(r, "uptime_s"), up, sizeof(up));
	fprintf(out, "agent:      %s (elsd %s, pid %" JSON_INTEGER_FORMAT "), up %s\n",
		ctl_jstr(r, "hostname"), ctl_jstr(r, "version"), ctl_jint(r, "pid"), up);
	fprintf(out, "policy:     generation %" JSON_INTEGER_FORMAT ", sha256 %s, %s\n",
		ctl_jint(r, "generation"), ctl_short_hash(ctl_jstr(r, "policy_sha256"), h),
		ctl_jstr(r, "policy_path"));
	fprintf(out, "fail_open:  %s\n",
		json_is_true(json_object_get(r, "fail_open")) ? "yes" : "no");
	fprintf(out,
		"monitor:    %" JSON_INTEGER_FORMAT " records written, %" JSON_INTEGER_FORMAT
		" lost (rings full), %" JSON_INTEGER_FORMAT " write errors (%" JSON_INTEGER_FORMAT
		" records lost)\n",
		ctl_jint(mon, "written"), ctl_jint(mon, "lost"), ctl_jint(mon, "write_errors"),
		ctl_jint(mon, "write_lost"));
	json_t *lr = json_object_get(r, "last_reload");
	if (json_is_object(lr)) {
		char when[32];
		time_t at = (time_t)ctl_jint(lr, "time");
		struct tm tm;
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&at, &tm));
		fprintf(out, "reload:     %s at %s: %s\n",
			strcmp(ctl_jstr(lr, "result"), "ok") == 0 ? "ok" : "FAILED", when,
			ctl_jstr(lr, "reason"));
	}
	if (cl)
		fprintf(out, "you:        %s (role %s)\n", ctl_jstr(cl, "identity"),
			ctl_jstr(cl, "role"));
	json_array_foreach(json_object_get(r, "queues"), i, q)
	{
		char cells[7][32];
		const char *row[7];

		for (int k = 0; k < 7; k++)
			row[k] = ctl_json_text(json_object_get(q, keys[k]), cells[k], 32);
		ctl_table_add(t, row);
	}
	fputc('\n', out);
	ctl_table_print(t, out);
	ctl_table_free(t);
	return CTL_EXIT_OK;
}

static void sum_status(json_t *r, char *buf, size_t len)
{
	char up[32], h[13];

	ctl_fmt_duration((double)ctl_jint(r, "uptime_s"), up, sizeof(up));
	snprintf(buf, len, "generation %" JSON_INTEGER_FORMAT " sha256 %s elsd %s up %s",
		 ctl_jint(r, "generation"), ctl_short_hash(ctl_jstr(r, "policy_sha256"), h),
		 ctl_jstr(r, "version"), up);
}

int cmd_status(struct ctl *c, int argc, char *argv[])
{
	struct ctl_req r = {.cmd = "status", .show = show_status, .summary = sum_status};
	int rc = ctl_no_options(ctl_cmd_find("status"), argc, argv, 0);

	return rc >= 0 ? rc : ctl_run(c, &r);
}

/* ---- stats ---- */

static int show_stats(json_t *r, FILE *out)
{
	static const char *const hdr[] = {"HANDLER", "IN_CHAIN", "ACCEPTED", "DROPPED"};
	struct ctl_table *t = ctl_table_new(4, hdr);
	json_t *h, *chain = json_object_get(r, "chain");
	size_t i;

	fprintf(out, "generation %" JSON_INTEGER_FORMAT ", chain:", ctl_jint(r, "generation"));
	json_array_foreach(chain, i, h)
	    fprintf(out, "%s%s", i ? " -> " : " ", json_string_value(h));
	fputs("\n\n", out);
	json_array_foreach(json_object_get(r, "handlers"), i, h)
	{
		char a[32], d[32];
		const char *row[] = {ctl_jstr(h, "name"),
				     json_is_true(json_object_get(h, "in_chain")) ? "yes" : "no",
				     ctl_json_text(json_object_get(h, "accepted"), a, sizeof(a)),
				     ctl_json_text(json_object_get(h, "dropped"), d, sizeof(d))};

		ctl_table_add(t, row);
	}
	ctl_table_print(t, out);
	ctl_table_free(t);
	return CTL_EXIT_OK;
}

static void sum_stats(json_t *r, char *buf, size_t len)
{
	json_int_t acc = 0, drop = 0;
	json_t *h;
	size_t i;

	json_array_foreach(json_object_get(r, "handlers"), i, h)
	{
		acc += ctl_jint(h, "accepted") > 0 ? ctl_jint(h, "accepted") : 0;
		drop += ctl_jint(h, "dropped") > 0 ? ctl_jint(h, "dropped") : 0;
	}
	snprintf(buf, len,
		 "generation %" JSON_INTEGER_FORMAT " accepted %" JSON_INTEGER_FORMAT
		 " dropped %" JSON_INTEGER_FORMAT,
		 ctl_jint(r, "generation"), acc, drop);
}

int cmd_stats(struct ctl *c, int argc, char *argv[])
{
	struct ctl_req r = {.cmd = "stats", .show = show_stats, .summary = sum_stats};
	int rc = ctl_no_options(ctl_cmd_find("stats"), argc, argv, 0);

	return rc >= 0 ? rc : ctl_run(c, &r);
}

/* ---- flows ---- */

static void fmt_pair(json_t *o, const char *a, const char *b, char *buf, size_t len)
{
	snprintf(buf, len, "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT, ctl_jint(o, a),
		 ctl_jint(o, b));
}

static int show_flows(json_t *r, FILE *out)
{
	static const char *const hdr[] = {"PROTO", "SRC",   "SPORT", "DST",   "DPORT",
					  "DIR",   "STATE", "AGE",   "IDLE",  "PKTS",
					  "BYTES", "RULE",  "Q",     "PERMIT"};
	struct ctl_table *t = ctl_table_new(14, hdr);
	json_t *f, *flows = json_object_get(r, "flows");
	size_t i;

	json_array_foreach(flows, i, f)
	{
		char sp[16], dp[16], age[32], idle[32], pk[48], by[48], rule[16], q[16];
		const char *row[14];

		ctl_fmt_duration((double)ctl_jint(f, "age_ms") / 1000, age, sizeof(age));
		ctl_fmt_duration((double)ctl_jint(f, "idle_ms") / 1000, idle, sizeof(idle));
		fmt_pair(f, "pkts_init", "pkts_resp", pk, sizeof(pk));
		fmt_pair(f, "bytes_init", "bytes_resp", by, sizeof(by));
		row[0] = ctl_jstr(f, "proto");
		row[1] = ctl_jstr(f, "src");
		row[2] = ctl_json_text(json_object_get(f, "sport"), sp, sizeof(sp));
		row[3] = ctl_jstr(f, "dst");
		row[4] = ctl_json_text(json_object_get(f, "dport"), dp, sizeof(dp));
		row[5] = ctl_jstr(f, "dir");
		row[6] = ctl_jstr(f, "state");
		row[7] = age;
		row[8] = idle;
		row[9] = pk;
		row[10] = by;
		row[11] = ctl_json_text(json_object_get(f, "rule"), rule, sizeof(rule));
		row[12] = ctl_json_text(json_object_get(f, "queue"), q, sizeof(q));
		/* the permit that admitted the flow, as its generation named it */
		row[13] = ctl_jstr(f, "permit");
		ctl_table_add(t, row);
	}
	ctl_table_print(t, out);
	ctl_table_free(t);
	fprintf(out,
		"%zu of %" JSON_INTEGER_FORMAT " flows%s (generation %" JSON_INTEGER_FORMAT
		"; PKTS and BYTES are initiator/responder)\n",
		json_array_size(flows), ctl_jint(r, "total"),
		json_is_true(json_object_get(r, "truncated")) ? ", more with --limit" : "",
		ctl_jint(r, "generation"));
	return CTL_EXIT_OK;
}

static void sum_flows(json_t *r, char *buf, size_t len)
{
	snprintf(buf, len, "%" JSON_INTEGER_FORMAT " flows generation %" JSON_INTEGER_FORMAT,
		 ctl_jint(r, "total"), ctl_jint(r, "generation"));
}

int cmd_flows(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {
	    {"limit", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'}, {0}};
	struct ctl_req r = {.cmd = "flows", .show = show_flows, .summary = sum_flows};
	long long limit = 0;
	int ch, rc;

	optind = 0;
	/* -n is parsed only to name the new spelling: it means a dry run in every tool. */
	while ((ch = getopt_long(argc, argv, "l:n:h", lo, NULL)) != -1) {
		if (ch == 'n') {
			return ctl_usage_error(
			    "flows", "-n is a dry run in every tool; the count is -l %s (--limit)",
			    optarg);
		} else if (ch == 'l') {
			if (ctl_parse_uint(optarg, 1, 10000, &limit) < 0)
				return ctl_usage_error("flows", "--limit %s: need 1..10000",
						       optarg);
		} else if (ch == 'h') {
			return fputs(ctl_cmd_find("flows")->usage, stdout), CTL_EXIT_OK;
		} else {
			return ctl_bad_option("flows");
		}
	}
	if (optind < argc)
		return ctl_usage_error("flows", "unexpected argument '%s'", argv[optind]);
	r.args = limit ? json_pack("{s:I}", "limit", (json_int_t)limit) : NULL;
	rc = ctl_run(c, &r);
	json_decref(r.args);
	return rc;
}
