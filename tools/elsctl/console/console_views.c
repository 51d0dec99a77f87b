/* elsctl --console URL fleet|drift|registry|audit: what the console knows, as tables (or the
 * API's JSON with --json). Every string is the console's or an agent's text: printed through
 * the terminal-safe filter. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console_client.h"
#include "els/termsafe.h"

enum {
	O_GROUP = 400,
	O_STATE,
	O_ALL,
	O_LIMIT,
	O_HELP,
	O_PROTO,
	O_PORT,
	O_DIR,
	O_JUST,
	O_OWNER,
	O_SERVICE,
	O_CATEGORY,
	O_MITIG,
	O_REVIEWED,
	O_EXPIRES
};

/* One cell: the member k of o as text, terminal-safe, cut to len. */
static const char *cell(json_t *o, const char *k, char *buf, size_t len)
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

/* Prints the array res[member] as a table of the given keys (header = key in capitals). */
static void table(json_t *arr, const char *const *keys, const char *const *heads, unsigned n,
		  const unsigned *widths)
{
	struct ctl_table *t = ctl_table_new(n, heads);
	json_t *o;
	size_t i;

	json_array_foreach(arr, i, o)
	{
		char b[12][512];
		const char *cells[12];
		for (unsigned k = 0; k < n && k < 12; k++)
			cells[k] = cell(o, keys[k], b[k],
					widths && widths[k] ? widths[k] + 1 : sizeof(b[k]));
		ctl_table_add(t, cells);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static int only_help(const char *name, int argc, char *argv[], const struct option *lo,
		     int (*each)(int ch, void *arg), void *arg)
{
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch == O_HELP) {
			fputs(ctl_console_cmd_find(name)->usage, stdout);
			return CTL_EXIT_OK;
		}
		if (ch == '?' || !each || each(ch, arg) < 0)
			return ctl_bad_option(name);
	}
	if (argc != optind)
		return ctl_usage_error(name, "unexpected argument '%s'", argv[optind]);
	return -1;
}

static int set_str(int ch, void *arg)
{
	(void)ch;
	*(const char **)arg = optarg;
	return 0;
}

static int set_flag(int ch, void *arg)
{
	(void)ch;
	*(bool *)arg = true;
	return 0;
}

struct fleet_opts {
	const char *group, *state;
};

static int set_fleet(int ch, void *arg)
{
	struct fleet_opts *o = arg;
	if (ch == O_GROUP)
		o->group = optarg;
	else if (ch == O_STATE)
		o->state = optarg;
	else
		return -1;
	return 0;
}

/* GET /api/fleet (c-web's read endpoint): {"total", "counts", "agents": [{id, host, group,
 * version, last_seen, connected, policy_sha256, policy_version, state, drift}]}. */
int console_fleet(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {{"group", required_argument, NULL, O_GROUP},
					   {"state", required_argument, NULL, O_STATE},
					   {"help", no_argument, NULL, O_HELP},
					   {0}};
	struct fleet_opts o = {0};
	char path[700] = "/api/fleet?limit=10000";
	json_t *res;
	int rc;

	if ((rc = only_help("fleet", argc, argv, lo, set_fleet, &o)) >= 0)
		return rc;
	for (int k = 0; k < 2; k++) {
		const char *v = k ? o.state : o.group;
		char *e = v ? ctl_console_enc(v) : NULL;
		if (e)
			snprintf(path + strlen(path), sizeof(path) - strlen(path), "&%s=%s",
				 k ? "state" : "group", e);
		free(e);
	}
	if ((rc = ctl_console_api(c, "GET", path, NULL, &res)))
		return rc;
	if (c->json)
		return ctl_console_print_json(res), json_decref(res), CTL_EXIT_OK;
	static const char *const keys[] = {
	    "id",	 "group",	   "state",	    "connected",
	    "last_seen", "policy_version", "policy_sha256", "version"};
	static const char *const heads[] = {"AGENT",	 "GROUP",      "STATE",	 "CONNECTED",
					    "LAST_SEEN", "POLICY_VER", "POLICY", "VERSION"};
	static const unsigned w[] = {0, 0, 0, 0, 0, 0, 12, 0};
	table(json_object_get(res, "agents"), keys, heads, 8, w);
	json_t *counts = json_object_get(res, "counts"), *v;
	const char *k;
	printf("%lld agents", (long long)json_integer_value(json_object_get(res, "total")));
	json_object_foreach(counts, k, v)
	{
		char *sk = els_termsafe(k, strlen(k), false);
		printf(", %lld %s", (long long)json_integer_value(v), sk ? sk : "?");
		free(sk);
	}
	putchar('\n');
	json_decref(res);
	return CTL_EXIT_OK;
}

int console_drift(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {
	    {"all", no_argument, NULL, O_ALL}, {"help", no_argument, NULL, O_HELP}, {0}};
	bool want_all = false;
	json_t *res;
	int rc;

	if ((rc = only_help("drift", argc, argv, lo, set_flag, &want_all)) >= 0)
		return rc;
	if ((rc = ctl_console_api(c, "GET", want_all ? "/api/drift?all=1" : "/api/drift", NULL,
				  &res)))
		return rc;
	json_t *arr = json_object_get(res, "drift");
	size_t open = 0, i;
	json_t *o;
	json_array_foreach(arr, i, o) open += json_is_null(json_object_get(o, "resolved_at"));
	if (c->json) {
		ctl_print_json(res, stdout);
	} else {
		static const char *const keys[] = {"agent_id", "kind", "since", "resolved_at",
						   "detail"};
		static const char *const heads[] = {"AGENT", "KIND", "SINCE", "RESOLVED", "DETAIL"};
		table(arr, keys, heads, 5, NULL);
		printf("%zu open\n", open);
	}
	json_decref(res);
	return open ? CTL_EXIT_FAILED : CTL_EXIT_OK;
}

int console_audit(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {
	    {"limit", required_argument, NULL, O_LIMIT}, {"help", no_argument, NULL, O_HELP}, {0}};
	const char *limit = NULL;
	long long n = 50;
	char path[64];
	json_t *res;
	int rc;

	if ((rc = only_help("audit", argc, argv, lo, set_str, &limit)) >= 0)
		return rc;
	if (limit && ctl_parse_uint(limit, 1, 10000, &n) < 0)
		return ctl_usage_error("audit", "--limit: 1..10000, got %s", limit);
	snprintf(path, sizeof(path), "/api/audit?limit=%lld", n);
	if ((rc = ctl_console_api(c, "GET", path, NULL, &res)))
		return rc;
	if (c->json)
		return ctl_console_print_json(res), json_decref(res), CTL_EXIT_OK;
	static const char *const keys[] = {"ts",     "identity", "role",   "console",
					   "action", "target",	 "outcome"};
	static const char *const heads[] = {"TIME",   "IDENTITY", "ROLE",   "CONSOLE",
					    "ACTION", "TARGET",	  "OUTCOME"};
	table(json_object_get(res, "audit"), keys, heads, 7, NULL);
	json_decref(res);
	return CTL_EXIT_OK;
}

struct reg_opts {
	const char *v[O_EXPIRES - O_PROTO + 1];
};

static int set_reg(int ch, void *arg)
{
	struct reg_opts *o = arg;
	if (ch < O_PROTO || ch > O_EXPIRES)
		return -1;
	o->v[ch - O_PROTO] = optarg;
	return 0;
}

static int registry_add(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {{"proto", required_argument, NULL, O_PROTO},
					   {"port", required_argument, NULL, O_PORT},
					   {"dir", required_argument, NULL, O_DIR},
					   {"justification", required_argument, NULL, O_JUST},
					   {"owner", required_argument, NULL, O_OWNER},
					   {"service", required_argument, NULL, O_SERVICE},
					   {"category", required_argument, NULL, O_CATEGORY},
					   {"mitigations", required_argument, NULL, O_MITIG},
					   {"reviewed", required_argument, NULL, O_REVIEWED},
					   {"expires", required_argument, NULL, O_EXPIRES},
					   {"help", no_argument, NULL, O_HELP},
					   {0}};
	static const char *const names[] = {
	    "proto",   "port",	   "direction",	  "justification", "owner",
	    "service", "category", "mitigations", "reviewed_at",   "expires_at"};
	struct reg_opts o = {0};
	int ch;
	json_t *res;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch == O_HELP)
			return fputs(ctl_console_cmd_find("registry")->usage, stdout), CTL_EXIT_OK;
		if (set_reg(ch, &o) < 0)
			return ctl_bad_option("registry");
	}
	if (argc - optind != 1)
		return ctl_usage_error("registry", "add needs one entry ID");
	json_t *body = json_pack("{s:s}", "id", argv[optind]);
	for (unsigned k = 0; k < sizeof(names) / sizeof(names[0]); k++)
		if (o.v[k])
			json_object_set_new(body, names[k], json_string(o.v[k]));
	int rc = ctl_console_api(c, "POST", "/api/registry", body, &res);
	json_decref(body);
	if (rc)
		return rc;
	if (c->json) {
		ctl_print_json(res, stdout);
	} else {
		char b[300];
		printf("registry entry %s saved\n",
		       cell(json_object_get(res, "entry"), "id", b, sizeof(b)));
	}
	json_decref(res);
	return CTL_EXIT_OK;
}

int console_registry(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {{"help", no_argument, NULL, O_HELP}, {0}};
	json_t *res;
	int rc;

	if (argc >= 2 && !strcmp(argv[1], "add"))
		return registry_add(c, argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "list")) {
		argc--;
		argv++;
	}
	if ((rc = only_help("registry", argc, argv, lo, NULL, NULL)) >= 0)
		return rc;
	if ((rc = ctl_console_api(c, "GET", "/api/registry", NULL, &res)))
		return rc;
	if (c->json)
		return ctl_console_print_json(res), json_decref(res), CTL_EXIT_OK;
	static const char *const keys[] = {"id",    "proto",	  "port",    "direction",
					   "owner", "expires_at", "expired", "justification"};
	static const char *const heads[] = {"ID",    "PROTO",	"PORT",	   "DIR",
					    "OWNER", "EXPIRES", "EXPIRED", "JUSTIFICATION"};
	table(json_object_get(res, "entries"), keys, heads, 8, NULL);
	json_decref(res);
	return CTL_EXIT_OK;
}
