/* elsctl --console URL policy ...: change control through els-console (docs/console-api.md):
 * propose, approve, reject, list, show and diff policy versions; and what every console
 * subcommand shares (the API call with its refusals in words, cells, ids). Deployments are in
 * console_deploy.c, the views in console_views.c, the table in console_main.c. */
#include <errno.h>
#include <event2/http.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console_client.h"
#include "els/termsafe.h"

static SSL_CTX *console_ctx;

char *ctl_console_enc(const char *s)
{
	return evhttp_uriencode(s, -1, 0);
}

int ctl_console_print_json(json_t *v)
{
	ctl_print_json(v, stdout);
	return CTL_EXIT_OK;
}

/* The console's refusal, in words: {"error": CODE, "message": ..., "details": [...]}. */
static void print_refusal(const struct ctl_http_resp *r)
{
	const char *msg = json_string_value(json_object_get(r->json, "message"));
	const char *code = json_string_value(json_object_get(r->json, "error"));
	json_t *det = json_object_get(r->json, "details"), *d;
	size_t i;
	char *safe =
	    els_termsafe(msg ? msg : "(no message)", strlen(msg ? msg : "(no message)"), false);

	fprintf(stderr, "elsctl: the console refused (HTTP %d%s%s): %s\n", r->status,
		code ? ", " : "", code ? code : "", safe ? safe : "?");
	free(safe);
	json_array_foreach(det, i, d)
	{
		const char *t = json_string_value(d);
		if (!t)
			continue;
		fputs("  ", stderr);
		ctl_fputs_safe(t, stderr);
		fputc('\n', stderr);
	}
}

int ctl_console_api(struct ctl *c, const char *method, const char *path, json_t *body,
		    json_t **result)
{
	struct ctl_http_resp r;
	char err[CTL_ERR_LEN];

	*result = NULL;
	struct ctl_console_url u;
	const char *why;
	if (ctl_console_url_parse(c->console, &u, &why) < 0) {
		fprintf(stderr, "elsctl: --console %s: %s\n", c->console, why);
		return CTL_EXIT_USAGE;
	}
	if (!console_ctx) {
		console_ctx = ctl_tls_ctx_new(&c->tls, err, sizeof(err));
		if (!console_ctx) {
			fprintf(stderr, "elsctl: %s\n", err);
			return CTL_EXIT_USAGE;
		}
	}
	if (ctl_console_call(c, console_ctx, method, path, body, &r, err, sizeof(err)) < 0) {
		fputs("elsctl: ", stderr);
		ctl_fputs_safe(err, stderr);
		fputc('\n', stderr);
		return CTL_EXIT_CONN;
	}
	if (r.status < 200 || r.status > 299) {
		if (c->json)
			ctl_print_json(r.json, stdout);
		print_refusal(&r);
		ctl_http_resp_free(&r);
		return CTL_EXIT_FAILED;
	}
	*result = json_incref(r.json);
	ctl_http_resp_free(&r);
	return 0;
}

/* Frees what ctl_console_api kept between calls (the TLS context). */
void ctl_console_done(void)
{
	if (console_ctx)
		SSL_CTX_free(console_ctx);
	console_ctx = NULL;
}

/* Options of the console subcommands: long only (none may shadow a global short option). */
enum { O_GROUP = 300, O_COMMENT, O_HELP, O_PARENT };

static int read_file(const char *path, char **text, size_t *len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char buf[65536];
	size_t n;
	FILE *m = open_memstream(text, len);
	if (!m) {
		fclose(f);
		return -ENOMEM;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, m);
	int bad = ferror(f);
	fclose(f);
	fclose(m);
	return bad ? -EIO : 0;
}

const char *ctl_console_text(json_t *o, const char *k, char *buf, size_t len)
{
	json_t *v = json_object_get(o, k);
	char *s;

	ctl_json_text(v, buf, len);
	s = els_termsafe(buf, strlen(buf), false);
	if (s) {
		snprintf(buf, len, "%s", s);
		free(s);
	}
	return buf;
}

static void print_problems(json_t *v, const char *head)
{
	json_t *p;
	size_t i;

	if (!json_array_size(v))
		return;
	fprintf(stdout, "%s\n", head);
	json_array_foreach(v, i, p)
	{
		fputs("  ", stdout);
		ctl_fputs_safe(json_string_value(p) ? json_string_value(p) : "?", stdout);
		fputc('\n', stdout);
	}
}

static int policy_propose(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {{"group", required_argument, NULL, O_GROUP},
					   {"comment", required_argument, NULL, O_COMMENT},
					   {"parent", required_argument, NULL, O_PARENT},
					   {"help", no_argument, NULL, O_HELP},
					   {0}};
	const char *group = NULL, *comment = NULL;
	long long parent = 0;
	char *text = NULL;
	size_t len = 0;
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch == O_GROUP)
			group = optarg;
		else if (ch == O_COMMENT)
			comment = optarg;
		else if (ch == O_PARENT) {
			if (ctl_parse_uint(optarg, 1, INT64_MAX, &parent) < 0)
				return ctl_usage_error("policy", "--parent: not a version id: %s",
						       optarg);
		} else if (ch == O_HELP)
			return fputs(ctl_console_cmd_find("policy")->usage, stdout), CTL_EXIT_OK;
		else
			return ctl_bad_option("policy");
	}
	if (!group || argc - optind != 1)
		return ctl_usage_error("policy", "propose needs --group GROUP and one FILE");
	if ((rc = read_file(argv[optind], &text, &len)) < 0) {
		fprintf(stderr, "elsctl: %s: %s\n", argv[optind], strerror(-rc));
		return CTL_EXIT_USAGE;
	}
	json_t *body = json_pack("{s:s, s:s%}", "group", group, "body", text, len), *res;
	if (comment)
		json_object_set_new(body, "comment", json_string(comment));
	if (parent)
		json_object_set_new(body, "parent_id", json_integer(parent));
	free(text);
	rc = ctl_console_api(c, "POST", "/api/policies", body, &res);
	json_decref(body);
	if (rc)
		return rc;
	if (c->json) {
		ctl_print_json(res, stdout);
	} else {
		json_t *v = json_object_get(res, "version");
		char b1[64], b2[128], b3[80];
		printf("proposed version %s: group %s version %s sha256 %.12s\n",
		       ctl_console_text(v, "id", b1, sizeof(b1)),
		       ctl_console_text(v, "group", b2, sizeof(b2)),
		       ctl_console_text(v, "version", b3, sizeof(b3)),
		       json_string_value(json_object_get(v, "sha256")) ?: "-");
		print_problems(json_object_get(res, "registry_problems"),
			       "approval is blocked until the registry covers every permit:");
	}
	json_decref(res);
	return CTL_EXIT_OK;
}

int ctl_console_id_arg(const char *cmd, const char *s, long long *id)
{
	if (ctl_parse_uint(s, 1, INT64_MAX, id) < 0)
		return ctl_usage_error(cmd, "not a version id: '%s'", s);
	return 0;
}

/* approve ID / reject ID [--comment TEXT] */
static int policy_decide(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {{"comment", required_argument, NULL, O_COMMENT},
					   {"help", no_argument, NULL, O_HELP},
					   {0}};
	const char *comment = NULL, *what = argv[0];
	long long id;
	char path[96];
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch == O_COMMENT)
			comment = optarg;
		else if (ch == O_HELP)
			return fputs(ctl_console_cmd_find("policy")->usage, stdout), CTL_EXIT_OK;
		else
			return ctl_bad_option("policy");
	}
	if (argc - optind != 1)
		return ctl_usage_error("policy", "%s needs one version ID", what);
	if ((rc = ctl_console_id_arg("policy", argv[optind], &id)))
		return rc;
	snprintf(path, sizeof(path), "/api/policies/%lld/%s", id, what);
	json_t *body = json_object(), *res;
	if (comment)
		json_object_set_new(body, "comment", json_string(comment));
	rc = ctl_console_api(c, "POST", path, body, &res);
	json_decref(body);
	if (rc)
		return rc;
	if (c->json) {
		ctl_print_json(res, stdout);
	} else {
		json_t *v = json_object_get(res, "version");
		char b1[64];
		printf("version %lld: %s", id, ctl_console_text(v, "state", b1, sizeof(b1)));
		if (json_is_integer(json_object_get(res, "approvals_needed")))
			printf(" (%lld of %lld approvals)",
			       (long long)json_integer_value(json_object_get(res, "approvals")),
			       (long long)json_integer_value(
				   json_object_get(res, "approvals_needed")));
		putchar('\n');
	}
	json_decref(res);
	return CTL_EXIT_OK;
}

static int policy_list(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {
	    {"group", required_argument, NULL, O_GROUP}, {"help", no_argument, NULL, O_HELP}, {0}};
	const char *group = NULL;
	char path[512] = "/api/policies";
	int ch, rc;
	json_t *res;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch == O_GROUP)
			group = optarg;
		else if (ch == O_HELP)
			return fputs(ctl_console_cmd_find("policy")->usage, stdout), CTL_EXIT_OK;
		else
			return ctl_bad_option("policy");
	}
	if (argc != optind)
		return ctl_usage_error("policy", "unexpected argument '%s'", argv[optind]);
	if (group) {
		char *e = ctl_console_enc(group);
		snprintf(path, sizeof(path), "/api/policies?group=%s", e ? e : "");
		free(e);
	}
	if ((rc = ctl_console_api(c, "GET", path, NULL, &res)))
		return rc;
	if (c->json) {
		ctl_print_json(res, stdout);
		json_decref(res);
		return CTL_EXIT_OK;
	}
	static const char *const hd[] = {"ID",	   "GROUP",	  "VERSION", "STATE",
					 "AUTHOR", "APPROVED_BY", "SHA256",  "CREATED"};
	struct ctl_table *t = ctl_table_new(8, hd);
	json_t *v;
	size_t i;
	json_array_foreach(json_object_get(res, "versions"), i, v)
	{
		char b[8][160];
		const char *cells[8] = {ctl_console_text(v, "id", b[0], 160),
					ctl_console_text(v, "group", b[1], 160),
					ctl_console_text(v, "version", b[2], 160),
					ctl_console_text(v, "state", b[3], 160),
					ctl_console_text(v, "author", b[4], 160),
					ctl_console_text(v, "approved_by", b[5], 160),
					ctl_console_text(v, "sha256", b[6], 13),
					ctl_console_text(v, "created_at", b[7], 160)};
		ctl_table_add(t, cells);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
	json_decref(res);
	return CTL_EXIT_OK;
}

static int policy_show(struct ctl *c, int argc, char *argv[])
{
	long long id;
	char path[96];
	int rc;
	json_t *res;

	if ((rc = ctl_no_options(ctl_console_cmd_find("policy"), argc, argv, 1)) >= 0)
		return rc;
	if (argc - optind != 1)
		return ctl_usage_error("policy", "show needs one version ID");
	if ((rc = ctl_console_id_arg("policy", argv[optind], &id)))
		return rc;
	snprintf(path, sizeof(path), "/api/policies/%lld", id);
	if ((rc = ctl_console_api(c, "GET", path, NULL, &res)))
		return rc;
	if (c->json) {
		ctl_print_json(res, stdout);
	} else {
		json_t *v = json_object_get(res, "version"), *a;
		static const char *const keys[] = {
		    "id",	   "group",	  "version",   "state",	 "author",  "created_at",
		    "approved_by", "approved_at", "parent_id", "sha256", "comment", NULL};
		char b[512];
		size_t i;
		for (int k = 0; keys[k]; k++)
			printf("%-12s %s\n", keys[k], ctl_console_text(v, keys[k], b, sizeof(b)));
		json_array_foreach(json_object_get(res, "approvals"), i, a)
		{
			char b1[160], b2[160], b3[160];
			printf("%-12s %s by %s at %s\n", i ? "" : "decisions",
			       ctl_console_text(a, "decision", b1, sizeof(b1)),
			       ctl_console_text(a, "identity", b2, sizeof(b2)),
			       ctl_console_text(a, "ts", b3, sizeof(b3)));
		}
		print_problems(json_object_get(res, "registry_problems"),
			       "registry check (blocks approval):");
		puts("--- body");
		ctl_fputs_safe(json_string_value(json_object_get(v, "body")) ?: "", stdout);
	}
	json_decref(res);
	return CTL_EXIT_OK;
}

static int policy_diff(struct ctl *c, int argc, char *argv[])
{
	long long a, b = 0;
	char path[128];
	int rc;
	json_t *res;

	if ((rc = ctl_no_options(ctl_console_cmd_find("policy"), argc, argv, 2)) >= 0)
		return rc;
	if (argc - optind < 1)
		return ctl_usage_error("policy",
				       "diff needs a version ID (and optionally a second)");
	if ((rc = ctl_console_id_arg("policy", argv[optind], &a)) ||
	    (argc - optind == 2 && (rc = ctl_console_id_arg("policy", argv[optind + 1], &b))))
		return rc;
	if (b)
		snprintf(path, sizeof(path), "/api/policies/diff?a=%lld&b=%lld", a, b);
	else
		snprintf(path, sizeof(path), "/api/policies/diff?b=%lld", a);
	if ((rc = ctl_console_api(c, "GET", path, NULL, &res)))
		return rc;
	if (c->json)
		ctl_print_json(res, stdout);
	else
		ctl_fputs_safe(json_string_value(json_object_get(res, "diff")) ?: "", stdout);
	json_decref(res);
	return CTL_EXIT_OK;
}

static const struct ctl_cmd policy_cmds[] = {
    {"propose", policy_propose, NULL, NULL},
    {"approve", policy_decide, NULL, NULL},
    {"reject", policy_decide, NULL, NULL},
    {"list", policy_list, NULL, NULL},
    {"show", policy_show, NULL, NULL},
    {"diff", policy_diff, NULL, NULL},
    {"deploy", ctl_console_deploy, NULL, NULL},
    {"rollback", ctl_console_rollback, NULL, NULL},
    {0},
};

int ctl_console_policy(struct ctl *c, int argc, char *argv[])
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		fputs(ctl_console_cmd_find("policy")->usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
	}
	for (const struct ctl_cmd *t = policy_cmds; t->name; t++)
		if (!strcmp(t->name, argv[1]))
			return t->fn(c, argc - 1, argv + 1);
	return ctl_usage_error("policy", "unknown --console policy subcommand '%s'", argv[1]);
}
