/* elsctl --console URL ...: change control through els-console (docs/console-api.md): propose,
 * approve, reject, list, show and diff policy versions, deploy them in stages, roll a group
 * back, follow a deployment. The views (fleet, drift, registry, audit) are in console_views.c. */
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

/* Options of the console subcommands: long only (none may shadow a global short option). */
enum { O_GROUP = 300, O_COMMENT, O_CANARY, O_WAIT, O_HELP, O_PARENT };

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

static const char *jstr_safe(json_t *o, const char *k, char *buf, size_t len)
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
		       jstr_safe(v, "id", b1, sizeof(b1)), jstr_safe(v, "group", b2, sizeof(b2)),
		       jstr_safe(v, "version", b3, sizeof(b3)),
		       json_string_value(json_object_get(v, "sha256")) ?: "-");
		print_problems(json_object_get(res, "registry_problems"),
			       "approval is blocked until the registry covers every permit:");
	}
	json_decref(res);
	return CTL_EXIT_OK;
}

static int id_arg(const char *cmd, const char *s, long long *id)
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
	if ((rc = id_arg("policy", argv[optind], &id)))
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
		printf("version %lld: %s", id, jstr_safe(v, "state", b1, sizeof(b1)));
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
		const char *cells[8] = {
		    jstr_safe(v, "id", b[0], 160),	jstr_safe(v, "group", b[1], 160),
		    jstr_safe(v, "version", b[2], 160), jstr_safe(v, "state", b[3], 160),
		    jstr_safe(v, "author", b[4], 160),	jstr_safe(v, "approved_by", b[5], 160),
		    jstr_safe(v, "sha256", b[6], 13),	jstr_safe(v, "created_at", b[7], 160)};
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
	if ((rc = id_arg("policy", argv[optind], &id)))
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
			printf("%-12s %s\n", keys[k], jstr_safe(v, keys[k], b, sizeof(b)));
		json_array_foreach(json_object_get(res, "approvals"), i, a)
		{
			char b1[160], b2[160], b3[160];
			printf("%-12s %s by %s at %s\n", i ? "" : "decisions",
			       jstr_safe(a, "decision", b1, sizeof(b1)),
			       jstr_safe(a, "identity", b2, sizeof(b2)),
			       jstr_safe(a, "ts", b3, sizeof(b3)));
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
	if ((rc = id_arg("policy", argv[optind], &a)) ||
	    (argc - optind == 2 && (rc = id_arg("policy", argv[optind + 1], &b))))
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

static bool final_state(const char *s)
{
	return s && (!strcmp(s, "done") || !strcmp(s, "halted") || !strcmp(s, "rolled_back"));
}

static void show_deployment(json_t *d)
{
	char b[6][512];
	json_t *t;
	size_t i;

	printf("deployment %s: group %s version %s state %s canary %s\n",
	       jstr_safe(d, "id", b[0], 64), jstr_safe(d, "group", b[1], 160),
	       jstr_safe(d, "version_id", b[2], 64), jstr_safe(d, "state", b[3], 64),
	       jstr_safe(d, "canary", b[4], 64));
	if (json_is_string(json_object_get(d, "halt_reason")))
		printf("halted: %s\n", jstr_safe(d, "halt_reason", b[5], 512));
	if (json_is_string(json_object_get(d, "gate")))
		printf("health gate: %s\n", jstr_safe(d, "gate", b[5], 512));
	static const char *const hd[] = {"AGENT", "WAVE", "STATE", "DONE", "ERROR"};
	struct ctl_table *tab = ctl_table_new(5, hd);
	json_array_foreach(json_object_get(d, "targets"), i, t)
	{
		char c5[5][256];
		const char *cells[5] = {
		    jstr_safe(t, "agent_id", c5[0], 256), jstr_safe(t, "wave", c5[1], 256),
		    jstr_safe(t, "state", c5[2], 256), jstr_safe(t, "done_at", c5[3], 256),
		    jstr_safe(t, "error", c5[4], 256)};
		ctl_table_add(tab, cells);
	}
	ctl_table_print(tab, stdout);
	ctl_table_free(tab);
}

/* Follows deployment id until it is final or the time runs out; exit 0 when done. */
static int wait_deployment(struct ctl *c, long long id, unsigned wait_s)
{
	char path[96];
	json_t *res = NULL;
	int rc;

	snprintf(path, sizeof(path), "/api/deployments/%lld", id);
	for (unsigned t = 0;; t++) {
		if ((rc = ctl_console_api(c, "GET", path, NULL, &res)))
			return rc;
		const char *st =
		    json_string_value(json_object_get(json_object_get(res, "deployment"), "state"));
		if (final_state(st) || t >= wait_s) {
			if (c->json)
				ctl_print_json(res, stdout);
			else
				show_deployment(json_object_get(res, "deployment"));
			rc = st && !strcmp(st, "done") ? CTL_EXIT_OK : CTL_EXIT_FAILED;
			if (!final_state(st))
				fprintf(stderr, "elsctl: deployment %lld is still %s after %u s\n",
					id, st ? st : "?", wait_s);
			json_decref(res);
			return rc;
		}
		json_decref(res);
		sleep(1);
	}
}

static int deploy(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {{"canary", required_argument, NULL, O_CANARY},
					   {"wait", required_argument, NULL, O_WAIT},
					   {"help", no_argument, NULL, O_HELP},
					   {0}};
	const char *canary = NULL;
	long long id, wait_s = -1;
	int ch, rc;
	json_t *res;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch == O_CANARY)
			canary = optarg;
		else if (ch == O_WAIT) {
			if (ctl_parse_uint(optarg, 1, 86400, &wait_s) < 0)
				return ctl_usage_error("deploy", "--wait: seconds 1..86400, got %s",
						       optarg);
		} else if (ch == O_HELP)
			return fputs(ctl_console_cmd_find("deploy")->usage, stdout), CTL_EXIT_OK;
		else
			return ctl_bad_option("deploy");
	}
	if (argc - optind != 1)
		return ctl_usage_error("deploy", "deploy needs one approved version ID");
	if ((rc = id_arg("deploy", argv[optind], &id)))
		return rc;
	json_t *body = json_pack("{s:I}", "version_id", (json_int_t)id);
	if (canary)
		json_object_set_new(body, "canary", json_string(canary));
	rc = ctl_console_api(c, "POST", "/api/deployments", body, &res);
	json_decref(body);
	if (rc)
		return rc;
	long long dep =
	    json_integer_value(json_object_get(json_object_get(res, "deployment"), "id"));
	if (wait_s > 0) {
		json_decref(res);
		return wait_deployment(c, dep, (unsigned)wait_s);
	}
	if (c->json)
		ctl_print_json(res, stdout);
	else
		show_deployment(json_object_get(res, "deployment"));
	json_decref(res);
	return CTL_EXIT_OK;
}

static int deployment(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {
	    {"wait", required_argument, NULL, O_WAIT}, {"help", no_argument, NULL, O_HELP}, {0}};
	long long id, wait_s = 0;
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch == O_WAIT) {
			if (ctl_parse_uint(optarg, 1, 86400, &wait_s) < 0)
				return ctl_usage_error("deployment",
						       "--wait: seconds 1..86400, got %s", optarg);
		} else if (ch == O_HELP)
			return fputs(ctl_console_cmd_find("deployment")->usage, stdout),
			       CTL_EXIT_OK;
		else
			return ctl_bad_option("deployment");
	}
	if (argc - optind != 1)
		return ctl_usage_error("deployment", "needs one deployment ID");
	if ((rc = id_arg("deployment", argv[optind], &id)))
		return rc;
	if (wait_s)
		return wait_deployment(c, id, (unsigned)wait_s);
	char path[96];
	json_t *res;
	snprintf(path, sizeof(path), "/api/deployments/%lld", id);
	if ((rc = ctl_console_api(c, "GET", path, NULL, &res)))
		return rc;
	if (c->json)
		ctl_print_json(res, stdout);
	else
		show_deployment(json_object_get(res, "deployment"));
	json_decref(res);
	return CTL_EXIT_OK;
}

static int rollback(struct ctl *c, int argc, char *argv[])
{
	char path[600];
	int rc;
	json_t *res;

	if ((rc = ctl_no_options(ctl_console_cmd_find("rollback"), argc, argv, 1)) >= 0)
		return rc;
	if (argc - optind != 1)
		return ctl_usage_error("rollback", "with --console: rollback GROUP");
	char *g = ctl_console_enc(argv[optind]);
	snprintf(path, sizeof(path), "/api/groups/%s/rollback", g ? g : "");
	free(g);
	json_t *body = json_object();
	rc = ctl_console_api(c, "POST", path, body, &res);
	json_decref(body);
	if (rc)
		return rc;
	if (c->json)
		ctl_print_json(res, stdout);
	else
		show_deployment(json_object_get(res, "deployment"));
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
    {"deploy", deploy, NULL, NULL},
    {"rollback", rollback, NULL, NULL},
    {0},
};

static int policy(struct ctl *c, int argc, char *argv[])
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

static int help(struct ctl *c, int argc, char *argv[]);

/* The --console table: same shape as ctl_cmds, its own help texts. */
static const struct ctl_cmd console_cmds[] = {
    {"fleet", console_fleet, "agents the console knows, with state and policy",
     "Usage: elsctl --console URL fleet [--group GROUP] [--state ok|drift|silent]\n\n"
     "Every agent the console has heard from (at most 10000): group, state, whether it is\n"
     "connected, last heartbeat, running policy (version of its group and sha256 prefix),\n"
     "elsd version; then the counts per state. Role: auditor.\n"},
    {"drift", console_drift, "agents that drift from the approved policy",
     "Usage: elsctl --console URL drift [--all]\n\n"
     "Open drift: agents running another policy than their group's approved deployed\n"
     "version, steering rules missing, listening on a port their policy does not permit,\n"
     "monitor chain not verifying, a permit whose registry entry expired, or silent longer\n"
     "than drift.silent_after_s. --all: also drift that has been resolved. Role: auditor.\n"
     "Exit 0 when nothing is open, 1 otherwise.\n"},
    {"policy", policy, "propose, approve, reject, list, show, diff, deploy policy versions",
     "Usage: elsctl --console URL policy propose --group GROUP [--comment TEXT]\n"
     "                                         [--parent ID] FILE\n"
     "       elsctl --console URL policy approve|reject [--comment TEXT] ID\n"
     "       elsctl --console URL policy list [--group GROUP]\n"
     "       elsctl --console URL policy show ID\n"
     "       elsctl --console URL policy diff ID [ID2]\n"
     "       elsctl --console URL policy deploy [--canary N|P%] [--wait S] ID\n"
     "       elsctl --console URL policy rollback GROUP\n\n"
     "propose  FILE becomes a new version of GROUP (the console checks it with the agent's\n"
     "         own loader; its permits are checked against the PPS registry, and problems\n"
     "         are listed: they block approval). Role: admin.\n"
     "approve  Approve version ID. The two-person rule (change.two_person) refuses the\n"
     "         author; every permit must be in the registry and unexpired. Role: admin.\n"
     "reject   Reject version ID. Role: admin.\n"
     "list     Versions, newest first. show: one version with its decisions and body.\n"
     "diff     Unified diff of ID2 against ID, or of ID against its parent. Role: auditor.\n"
     "deploy   Same as `elsctl --console URL deploy`. rollback: as `rollback`.\n"},
    {"deploy", deploy, "deploy an approved version: canary, health gate, then the rest",
     "Usage: elsctl --console URL deploy [--canary N|P%] [--wait S] VERSION_ID\n\n"
     "Deploys approved version VERSION_ID to its group: first the canary (N agents or P\n"
     "percent, default the group's canary setting, else 1), then, once the health gate\n"
     "passed (every canary applied it, still heartbeats, runs it, and its drop rate did not\n"
     "explode), the rest. A failure halts the deployment. --wait S: follow it until it is\n"
     "done or halted (at most S seconds); exit 0 when done, 1 otherwise. Role: admin.\n"},
    {"deployment", deployment, "show a deployment and its per-agent results",
     "Usage: elsctl --console URL deployment [--wait S] ID\n\n"
     "State, health gate and each agent's result. --wait S: until done or halted.\n"
     "Role: auditor.\n"},
    {"rollback", rollback, "roll a group back to its previous approved version",
     "Usage: elsctl --console URL rollback GROUP\n\n"
     "Halts the group's deployment in progress, if any, and deploys the approved version\n"
     "that ran before the current one to every agent of GROUP at once. Role: admin.\n"},
    {"registry", console_registry, "the enterprise PPS registry: list or add an entry",
     "Usage: elsctl --console URL registry [list]\n"
     "       elsctl --console URL registry add ID --proto P [--port PORTS] [--dir in|out]\n"
     "              --justification TEXT --owner TEXT [--service S] [--category C]\n"
     "              [--mitigations TEXT] [--reviewed YYYY-MM-DD] [--expires YYYY-MM-DD]\n\n"
     "list  Every approved permit: id, protocol, ports, direction, owner, expiry (EXPIRED when\n"
     "      past). Role: auditor.\n"
     "add   Adds or replaces entry ID (the permit id policies use). PORTS: \"443\",\n"
     "      \"8000-8080\" or \"80,443\". Role: admin.\n"},
    {"audit", console_audit, "the console's audit trail",
     "Usage: elsctl --console URL audit [--limit N]\n\n"
     "The newest N (default 50) console actions and refusals: time, identity, role, action,\n"
     "target, outcome. Role: auditor.\n"},
    {"help", help, "help on a subcommand", "Usage: elsctl --console URL help [SUBCOMMAND]\n"},
    {0},
};

static int help(struct ctl *c, int argc, char *argv[])
{
	(void)c;
	if (argc >= 2)
		for (const struct ctl_cmd *t = console_cmds; t->name; t++)
			if (!strcmp(t->name, argv[1]))
				return fputs(t->usage, stdout), CTL_EXIT_OK;
	puts("Subcommands with --console URL:");
	for (const struct ctl_cmd *t = console_cmds; t->name; t++)
		printf("  %-10s %s\n", t->name, t->help);
	return CTL_EXIT_OK;
}

/* The entry of the --console table named name, or NULL. */
const struct ctl_cmd *ctl_console_cmd_find(const char *name)
{
	for (const struct ctl_cmd *t = console_cmds; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

int ctl_console_main(struct ctl *c, int argc, char *argv[])
{
	const struct ctl_cmd *t = ctl_console_cmd_find(argv[0]);
	int rc;

	if (!t) {
		fprintf(stderr,
			"elsctl: '%s' is not a --console subcommand\nTry 'elsctl --console URL "
			"help'.\n",
			argv[0]);
		return CTL_EXIT_USAGE;
	}
	rc = t->fn(c, argc, argv);
	if (console_ctx)
		SSL_CTX_free(console_ctx);
	console_ctx = NULL;
	return rc;
}
