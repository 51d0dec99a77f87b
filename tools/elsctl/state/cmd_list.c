/* list get | add | del: the agent's managed deny and allow list files. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../elsctl.h"

/* ---- list ---- */

static int show_list_get(json_t *r, FILE *out)
{
	json_t *e, *entries = json_object_get(r, "entries");
	size_t i;

	/* A '#' header keeps the output a valid list file. */
	fprintf(out, "# %s list, %s, %zu entr%s\n", ctl_jstr(r, "list"), ctl_jstr(r, "file"),
		json_array_size(entries), json_array_size(entries) == 1 ? "y" : "ies");
	json_array_foreach(entries, i, e) fprintf(out, "%s\n", json_string_value(e));
	return CTL_EXIT_OK;
}

static void sum_list_get(json_t *r, char *buf, size_t len)
{
	snprintf(buf, len, "%zu entries", json_array_size(json_object_get(r, "entries")));
}

/* "added 198.19.1.0/24": one line per requested entry, as pfctl prints its table edits. */
static int show_list_edit(json_t *r, FILE *out)
{
	json_t *e;
	size_t i;
	int rc = CTL_EXIT_OK;

	json_array_foreach(json_object_get(r, "results"), i, e)
	{
		const char *st = ctl_jstr(e, "status");
		json_t *cidr = json_object_get(e, "cidr");
		const char *what =
		    json_is_string(cidr) ? json_string_value(cidr) : ctl_jstr(e, "entry");

		if (!strcmp(st, "invalid")) {
			fprintf(out, "invalid %s: %s\n", ctl_jstr(e, "entry"),
				ctl_jstr(e, "message"));
			rc = CTL_EXIT_FAILED;
		} else if (!strcmp(st, "not_found")) {
			fprintf(out, "not found %s\n", what);
		} else {
			fprintf(out, "%s %s\n", st, what);
		}
	}
	if (json_is_true(json_object_get(r, "changed")))
		fprintf(out, "%s list %s updated: generation %" JSON_INTEGER_FORMAT "\n",
			ctl_jstr(r, "list"), ctl_jstr(r, "file"), ctl_jint(r, "generation"));
	else
		fprintf(out, "%s list %s unchanged (generation %" JSON_INTEGER_FORMAT ")\n",
			ctl_jstr(r, "list"), ctl_jstr(r, "file"), ctl_jint(r, "generation"));
	return rc;
}

static void sum_list_edit(json_t *r, char *buf, size_t len)
{
	static const char *const names[] = {"added", "duplicate", "removed", "not_found",
					    "invalid"};
	unsigned counts[5] = {0};
	size_t off, i;
	json_t *e;

	json_array_foreach(json_object_get(r, "results"), i,
			   e) for (unsigned k = 0; k < 5;
				   k++) if (!strcmp(ctl_jstr(e, "status"), names[k])) counts[k]++;
	off = (size_t)snprintf(buf, len, "generation %" JSON_INTEGER_FORMAT "%s",
			       ctl_jint(r, "generation"),
			       json_is_true(json_object_get(r, "changed")) ? "" : " (unchanged)");
	for (unsigned k = 0; k < 5 && off < len; k++)
		if (counts[k])
			off +=
			    (size_t)snprintf(buf + off, len - off, " %s %u", names[k], counts[k]);
}

static int list_which(const char *s)
{
	return !strcmp(s, "deny") || !strcmp(s, "allow");
}

static int list_get(struct ctl *c, int argc, char *argv[])
{
	struct ctl_req r = {.cmd = "list.get", .show = show_list_get, .summary = sum_list_get};
	int rc = ctl_no_options(ctl_cmd_find("list"), argc, argv, 1);

	if (rc >= 0)
		return rc;
	if (argc - optind != 1 || !list_which(argv[optind]))
		return ctl_usage_error("list", "%s", "list get needs deny or allow");
	r.args = json_pack("{s:s}", "list", argv[optind]);
	rc = ctl_run(c, &r);
	json_decref(r.args);
	return rc;
}

static int list_edit(struct ctl *c, int argc, char *argv[], const char *cmd)
{
	static const struct option lo[] = {
	    {"dry-run", no_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'}, {0}};
	struct ctl_req r = {.cmd = cmd, .show = show_list_edit, .summary = sum_list_edit};
	bool dry = false;
	json_t *entries;
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "nh", lo, NULL)) != -1) {
		if (ch == 'n')
			dry = true;
		else if (ch == 'h')
			return fputs(ctl_cmd_find("list")->usage, stdout), CTL_EXIT_OK;
		else
			return ctl_bad_option("list");
	}
	if (argc - optind < 2 || !list_which(argv[optind]))
		return ctl_usage_error("list", "%s",
				       "list add/del needs deny or allow and at least one ADDR");
	if (argc - optind - 1 > 4096)
		return ctl_usage_error("list", "%s", "at most 4096 addresses per request");
	entries = json_array();
	for (int i = optind + 1; i < argc; i++)
		json_array_append_new(entries, json_string(argv[i]));
	r.args = json_pack("{s:s, s:o}", "list", argv[optind], "entries", entries);
	if (dry)
		json_object_set_new(r.args, "dry_run", json_true());
	rc = ctl_run(c, &r);
	json_decref(r.args);
	return rc;
}

static int list_add(struct ctl *c, int argc, char *argv[])
{
	return list_edit(c, argc, argv, "list.add");
}

static int list_del(struct ctl *c, int argc, char *argv[])
{
	return list_edit(c, argc, argv, "list.del");
}

static const struct ctl_cmd list_cmds[] = {
    {"get", list_get, "print the managed deny or allow list", NULL},
    {"add", list_add, "add addresses to a list and reload", NULL},
    {"del", list_del, "remove addresses from a list and reload", NULL},
    {0},
};

int cmd_list(struct ctl *c, int argc, char *argv[])
{
	return ctl_dispatch(list_cmds, "list", c, argc, argv);
}
