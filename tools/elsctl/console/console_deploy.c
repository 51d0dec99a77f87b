/* elsctl --console URL deploy|deployment|rollback: staged deployments through els-console
 * (docs/console-api.md, "Staged deployment"), with --wait to follow one to its end. */
#include <errno.h>
#include <event2/http.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console_client.h"
#include "els/termsafe.h"

enum { O_CANARY = 350, O_WAIT, O_HELP };

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
	       ctl_console_text(d, "id", b[0], 64), ctl_console_text(d, "group", b[1], 160),
	       ctl_console_text(d, "version_id", b[2], 64), ctl_console_text(d, "state", b[3], 64),
	       ctl_console_text(d, "canary", b[4], 64));
	if (json_is_string(json_object_get(d, "halt_reason")))
		printf("halted: %s\n", ctl_console_text(d, "halt_reason", b[5], 512));
	if (json_is_string(json_object_get(d, "gate")))
		printf("health gate: %s\n", ctl_console_text(d, "gate", b[5], 512));
	static const char *const hd[] = {"AGENT", "WAVE", "STATE", "DONE", "ERROR"};
	struct ctl_table *tab = ctl_table_new(5, hd);
	json_array_foreach(json_object_get(d, "targets"), i, t)
	{
		char c5[5][256];
		const char *cells[5] = {ctl_console_text(t, "agent_id", c5[0], 256),
					ctl_console_text(t, "wave", c5[1], 256),
					ctl_console_text(t, "state", c5[2], 256),
					ctl_console_text(t, "done_at", c5[3], 256),
					ctl_console_text(t, "error", c5[4], 256)};
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

int ctl_console_deploy(struct ctl *c, int argc, char *argv[])
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
	if ((rc = ctl_console_id_arg("deploy", argv[optind], &id)))
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

int ctl_console_deployment(struct ctl *c, int argc, char *argv[])
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
	if ((rc = ctl_console_id_arg("deployment", argv[optind], &id)))
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

int ctl_console_rollback(struct ctl *c, int argc, char *argv[])
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
