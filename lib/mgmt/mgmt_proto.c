/* The management protocol's framing and request envelope (docs/management-protocol.md).
 * The unprivileged endpoint runs all of this on untrusted bytes before anything reaches the
 * main process, and the main process runs the argument check again on what it receives, so
 * each side holds its own line. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "els/mgmt.h"
#include "els/monitor.h"

const char *els_mgmt_role_name(int role)
{
	switch (role) {
	case ELS_ROLE_ADMIN:
		return "admin";
	case ELS_ROLE_AUDITOR:
		return "auditor";
	default:
		return "none";
	}
}

int els_mgmt_role_parse(const char *s)
{
	if (s && strcmp(s, "admin") == 0)
		return ELS_ROLE_ADMIN;
	if (s && strcmp(s, "auditor") == 0)
		return ELS_ROLE_AUDITOR;
	return ELS_ROLE_NONE;
}

/* ---- commands and their arguments ---- */

enum arg_type { A_STR, A_ENUM, A_INT, A_BOOL, A_SHA256, A_STRS };

struct arg_spec {
	const char *name;
	enum arg_type type;
	bool required;
	long long lo, hi;	   /* A_INT range; A_STR/A_STRS: max length; A_STRS: count hi */
	const char *const *values; /* A_ENUM */
};

static const char *const lists[] = {"deny", "allow", NULL};
static const char *const verdicts[] = {"accept", "drop", NULL};

static const struct arg_spec no_args[] = {{0}};
static const struct arg_spec validate_args[] = {
    {"text", A_STR, true, 0, ELS_MGMT_MAX_FRAME, NULL},
    {0},
};
static const struct arg_spec apply_args[] = {
    {"text", A_STR, true, 0, ELS_MGMT_MAX_FRAME, NULL},
    {"expect_sha256", A_SHA256, false, 0, 0, NULL},
    {0},
};
static const struct arg_spec list_get_args[] = {
    {"list", A_ENUM, true, 0, 0, lists},
    {0},
};
static const struct arg_spec list_edit_args[] = {
    {"list", A_ENUM, true, 0, 0, lists},
    {"entries", A_STRS, true, 1, 4096, NULL},
    {"dry_run", A_BOOL, false, 0, 0, NULL},
    {0},
};
static const struct arg_spec flows_args[] = {
    {"limit", A_INT, false, 1, 10000, NULL},
    {0},
};
static const struct arg_spec log_args[] = {
    {"limit", A_INT, false, 1, 10000, NULL},
    {"kind", A_ENUM, false, 0, 0, els_rec_kind_names + 1},
    {"verdict", A_ENUM, false, 0, 0, verdicts},
    {"reason", A_STR, false, 0, 64, NULL},
    {"handler", A_STR, false, 0, 64, NULL},
    {"addr", A_STR, false, 0, 64, NULL},
    {"port", A_INT, false, 0, 65535, NULL},
    {"since_ns", A_INT, false, 0, INT64_MAX, NULL},
    {"until_ns", A_INT, false, 0, INT64_MAX, NULL},
    {"before_seq", A_INT, false, 0, INT64_MAX, NULL},
    {0},
};

struct cmd_spec {
	struct els_mgmt_cmd_info info;
	const struct arg_spec *args;
};

/* The one command table: names, roles, what each does, its arguments. */
#define READ	ELS_MGMT_CMD_READ
#define CHECKS	ELS_MGMT_CMD_CHECKS_POLICY
#define CHANGES ELS_MGMT_CMD_CHANGES_POLICY
static const struct cmd_spec cmds[] = {
    {{"status", ELS_ROLE_AUDITOR, READ}, no_args},
    {{"stats", ELS_ROLE_AUDITOR, READ}, no_args},
    {{"policy.get", ELS_ROLE_AUDITOR, READ}, no_args},
    {{"policy.validate", ELS_ROLE_AUDITOR, CHECKS}, validate_args},
    {{"list.get", ELS_ROLE_AUDITOR, READ}, list_get_args},
    {{"flows", ELS_ROLE_AUDITOR, READ}, flows_args},
    {{"log", ELS_ROLE_AUDITOR, READ}, log_args},
    {{"policy.apply", ELS_ROLE_ADMIN, CHECKS | CHANGES}, apply_args},
    {{"policy.rollback", ELS_ROLE_ADMIN, CHECKS | CHANGES}, no_args},
    {{"list.add", ELS_ROLE_ADMIN, CHANGES}, list_edit_args},
    {{"list.del", ELS_ROLE_ADMIN, CHANGES}, list_edit_args},
    {{"sweep", ELS_ROLE_ADMIN, 0}, no_args},
};
#undef READ
#undef CHECKS
#undef CHANGES
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

const struct els_mgmt_cmd_info *els_mgmt_commands(void)
{
	static struct els_mgmt_cmd_info out[NCMDS + 1];

	for (size_t i = 0; i < NCMDS; i++)
		out[i] = cmds[i].info;
	return out;
}

static const struct cmd_spec *find_cmd(const char *name)
{
	for (size_t i = 0; name && i < NCMDS; i++)
		if (strcmp(cmds[i].info.name, name) == 0)
			return &cmds[i];
	return NULL;
}

const struct els_mgmt_cmd_info *els_mgmt_command(const char *name)
{
	const struct cmd_spec *cs = find_cmd(name);

	return cs ? &cs->info : NULL;
}

bool els_mgmt_command_is(const char *name, unsigned flag)
{
	const struct cmd_spec *cs = find_cmd(name);

	return cs && (cs->info.flags & flag);
}

char *els_mgmt_error(int64_t id, const char *code, void *details, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *d = details ? details : json_array();
	json_t *r = json_pack("{s:i,s:o,s:b,s:{s:s,s:s,s:o}}", "v", ELS_MGMT_VERSION, "id",
			      id < 0 ? json_null() : json_integer(id), "ok", 0, "error", "code",
			      code, "message", msg, "details", d);
	if (!r)
		return NULL;
	char *s = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	return s;
}

/* Copies s for logs: printable ASCII only, so a client cannot forge log lines. */
static void printable(char *out, size_t n, const char *s)
{
	size_t i = 0;
	for (; s[i] && i + 1 < n; i++)
		out[i] = s[i] > 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = 0;
}

static bool is_sha256(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* Checks one argument value; on failure writes why into buf. */
static bool check_arg(const struct arg_spec *a, const json_t *v, char *buf, size_t n)
{
	switch (a->type) {
	case A_STR:
		if (!json_is_string(v) || json_string_length(v) > (size_t)a->hi) {
			snprintf(buf, n, "'%s' must be a string of at most %lld bytes", a->name,
				 a->hi);
			return false;
		}
		if (strlen(json_string_value(v)) != json_string_length(v)) {
			snprintf(buf, n, "'%s' must not contain NUL characters", a->name);
			return false;
		}
		return true;
	case A_ENUM:
		if (json_is_string(v))
			for (const char *const *e = a->values; *e; e++)
				if (strcmp(*e, json_string_value(v)) == 0)
					return true;
		snprintf(buf, n, "'%s' must be one of:", a->name);
		for (const char *const *e = a->values; *e; e++) {
			size_t l = strlen(buf);
			snprintf(buf + l, n - l, " \"%s\"", *e);
		}
		return false;
	case A_INT:
		if (!json_is_integer(v) || json_integer_value(v) < a->lo ||
		    json_integer_value(v) > a->hi) {
			snprintf(buf, n, "'%s' must be an integer in %lld..%lld", a->name, a->lo,
				 a->hi);
			return false;
		}
		return true;
	case A_BOOL:
		if (!json_is_boolean(v)) {
			snprintf(buf, n, "'%s' must be true or false", a->name);
			return false;
		}
		return true;
	case A_SHA256:
		if (!json_is_string(v) || !is_sha256(json_string_value(v))) {
			snprintf(buf, n, "'%s' must be 64 lowercase hex digits (a SHA-256)",
				 a->name);
			return false;
		}
		return true;
	case A_STRS:
		if (!json_is_array(v) || json_array_size(v) < (size_t)a->lo ||
		    json_array_size(v) > (size_t)a->hi) {
			snprintf(buf, n, "'%s' must be an array of %lld..%lld strings", a->name,
				 a->lo, a->hi);
			return false;
		}
		for (size_t i = 0; i < json_array_size(v); i++) {
			const json_t *e = json_array_get(v, i);
			if (!json_is_string(e) || json_string_length(e) > 128 ||
			    strlen(json_string_value(e)) != json_string_length(e)) {
				snprintf(buf, n, "'%s'[%zu] must be a string of at most 128 bytes",
					 a->name, i);
				return false;
			}
		}
		return true;
	}
	return false;
}

int els_mgmt_request_check(const char *body, size_t len, int role, struct els_mgmt_req *req,
			   char **err_response, const char **code)
{
	json_error_t jerr;
	char why[256];
	int64_t id = -1;

	memset(req, 0, sizeof(*req));
	strcpy(req->cmd_name, "?");
	*err_response = NULL;
	*code = "bad_request";
	/* JSON_REJECT_DUPLICATES: two "cmd" keys must not mean one thing to the endpoint's
	 * role check and another to the main process. */
	json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		*err_response =
		    els_mgmt_error(-1, *code, NULL, "request is not valid JSON: %s", jerr.text);
		return -EINVAL;
	}
	if (!json_is_object(j)) {
		*err_response = els_mgmt_error(-1, *code, NULL, "request must be a JSON object");
		goto fail;
	}
	json_t *jid = json_object_get(j, "id");
	if (!json_is_integer(jid) || json_integer_value(jid) < 0 ||
	    json_integer_value(jid) > (1ll << 53) - 1) {
		*err_response =
		    els_mgmt_error(-1, *code, NULL, "'id' is required: an integer 0..2^53-1");
		goto fail;
	}
	id = json_integer_value(jid);
	json_t *jcmd = json_object_get(j, "cmd");
	if (json_is_string(jcmd))
		printable(req->cmd_name, sizeof(req->cmd_name), json_string_value(jcmd));
	json_t *jv = json_object_get(j, "v");
	if (!json_is_integer(jv) || json_integer_value(jv) != ELS_MGMT_VERSION) {
		*code = "unsupported_version";
		*err_response =
		    els_mgmt_error(id, *code, json_pack("[{s:[i]}]", "supported", ELS_MGMT_VERSION),
				   "this agent speaks protocol version %d only ('v' must be %d)",
				   ELS_MGMT_VERSION, ELS_MGMT_VERSION);
		goto fail;
	}
	if (!json_is_string(jcmd)) {
		*err_response = els_mgmt_error(id, *code, NULL, "'cmd' is required: a string");
		goto fail;
	}
	const char *cmd = json_string_value(jcmd);
	const struct cmd_spec *cs = find_cmd(cmd);
	if (!cs) {
		char known[256];
		size_t o = 0;

		for (size_t i = 0; i < NCMDS && o < sizeof(known); i++)
			o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "",
					      cmds[i].info.name);
		*code = "unknown_command";
		*err_response = els_mgmt_error(
		    id, *code, NULL, "unknown command \"%.64s\" (this agent knows: %s)", cmd, known);
		goto fail;
	}
	/* The role before the arguments: a forbidden client learns nothing about them. */
	if (role < cs->info.role) {
		*code = "forbidden";
		*err_response = els_mgmt_error(
		    id, *code, NULL, "role %s may not run %s: it needs role %s",
		    els_mgmt_role_name(role), cs->info.name, els_mgmt_role_name(cs->info.role));
		goto fail;
	}
	json_t *args = json_object_get(j, "args");
	if (args && !json_is_object(args) && !json_is_null(args)) {
		*err_response = els_mgmt_error(id, *code, NULL, "'args' must be an object");
		goto fail;
	}
	if (!args || json_is_null(args)) {
		args = json_object();
		if (!args || json_object_set_new(j, "args", args) < 0)
			goto nomem;
	}
	const char *key;
	json_t *val;
	json_object_foreach(args, key, val)
	{
		const struct arg_spec *a = cs->args;
		while (a->name && strcmp(a->name, key) != 0)
			a++;
		if (!a->name) {
			*err_response = els_mgmt_error(id, *code, NULL,
						       "%s: unknown argument \"%.64s\"", cmd, key);
			goto fail;
		}
		if (!check_arg(a, val, why, sizeof(why))) {
			*err_response = els_mgmt_error(id, *code, NULL, "%s: %s", cmd, why);
			goto fail;
		}
	}
	for (const struct arg_spec *a = cs->args; a->name; a++)
		if (a->required && !json_object_get(args, a->name)) {
			*err_response = els_mgmt_error(
			    id, *code, NULL, "%s: argument '%s' is required", cmd, a->name);
			goto fail;
		}
	req->id = id;
	req->has_id = true;
	req->cmd = cs->info.name;
	req->role_needed = cs->info.role;
	req->json = j;
	req->args = args;
	return 0;
nomem:
	*code = "internal";
	*err_response = els_mgmt_error(id, *code, NULL, "out of memory");
fail:
	json_decref(j);
	return -EINVAL;
}

/* ---- audit text ---- */

void els_mgmt_audit_text(char *out, size_t n, const char *identity, const char *role,
			 const char *peer, const char *cmd, const char *outcome, const char *tail)
{
	/* Everything but the identity and the peer must fit; those two share what is left,
	 * the identity giving way first, since a certificate's CN is the long, free part. */
	int fixed = snprintf(NULL, 0, "mgmt /%s@ %s: %s%s", role, cmd, outcome, tail);
	size_t room = (size_t)fixed < n ? n - 1 - (size_t)fixed : 0;
	size_t li = strlen(identity), lp = strlen(peer);
	int ci = (int)li, cp = (int)lp;
	const char *mi = "", *mp = "";

	if (li + lp > room) {
		/* The identity keeps at least a dozen characters, the peer what it needs of
		 * the rest, the identity the remainder. */
		size_t min_i = li < 12 ? li : 12;
		if (min_i > room)
			min_i = room;
		size_t keep_p = lp < room - min_i ? lp : room - min_i;
		size_t keep_i = li < room - keep_p ? li : room - keep_p;
		if (keep_i < li) {
			/* room for the '~' that says the CN was cut */
			ci = keep_i ? (int)keep_i - 1 : 0;
			mi = keep_i ? "~" : "";
		}
		if (keep_p < lp) {
			cp = keep_p ? (int)keep_p - 1 : 0;
			mp = keep_p ? "~" : "";
		}
	}
	snprintf(out, n, "mgmt %.*s%s/%s@%.*s%s %s: %s%s", ci, identity, mi, role, cp, peer, mp, cmd,
		 outcome, tail);
}

void els_mgmt_console_identity(char *out, size_t n, const char *who, const char *console_cn)
{
	char w[33];
	size_t o = 0;
	for (const char *p = who ? who : ""; *p && o + 1 < sizeof(w); p++) {
		char ch = *p;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' || ch == '@';
		w[o++] = ok ? ch : '?';
	}
	w[o] = 0;
	snprintf(out, n, "%s via %s", o ? w : "?", console_cn);
}

int els_mgmt_on_behalf(const char *json, size_t len, const char *console_cn, char *identity,
		       size_t n)
{
	json_t *j = json_loadb(json, len, 0, NULL);
	json_t *ob = json_is_object(j) ? json_object_get(j, "on_behalf_of") : NULL;
	const char *who = json_string_value(json_object_get(ob, "identity"));
	const char *role = json_string_value(json_object_get(ob, "role"));
	/* No on_behalf_of: the console asks for itself, and may only read. One that states no
	 * known role gets none (every command forbidden), as a certificate without one. */
	int r = ob ? (role ? els_mgmt_role_parse(role) : ELS_ROLE_NONE) : ELS_ROLE_AUDITOR;
	els_mgmt_console_identity(identity, n, who, console_cn);
	json_decref(j);
	return r;
}
