/* Policy versions and change control (CONSOLE.md, console_policy_versions): propose, approve,
 * reject, list, show, diff. A proposal must be a valid policy document for the agent's own
 * loader; approval needs another admin than the author (two-person rule, change_control.
 * two_person) and every permit in the PPS registry, unexpired. Every step is audited with the
 * certificate identity, refusals too. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "console.h"
#include "db.h"
#include "els/log.h"
#include "els/policy.h"

#define VERSION_COLS                                                                               \
	"id, grp AS \"group\", version, sha256, author, " API_TS(                                  \
	    "created_at") " AS created_at, "                                                       \
			  "approved_by, " API_TS(                                                  \
			      "approved_at") " AS approved_at, state, parent_id, comment"

/* The registry check of body against the registry now, as a JSON array of sentences; *loaded
 * says whether the document itself is valid. NULL: database down. */
static json_t *registry_problems(struct console *c, const char *body, bool *loaded)
{
	struct change_registry_entry *reg;
	struct change_problems pr = {0};
	PGresult *res;
	int n = api_registry_load(c, &res, &reg);

	if (n < 0)
		return NULL;
	change_registry_check(body, strlen(body), reg, (size_t)n, time(NULL), &pr, loaded);
	json_t *a = json_array();
	for (size_t i = 0; i < pr.n; i++)
		json_array_append_new(a, json_string(pr.v[i].text));
	change_problems_free(&pr);
	free(reg);
	PQclear(res);
	return a;
}

static void list_versions(struct console_http_ctx *ctx)
{
	char *g = console_http_query_param(ctx, "group");
	const char *p[] = {g};
	PGresult *r = console_db_query(ctx->c,
				       "SELECT " VERSION_COLS " FROM console_policy_versions "
				       "WHERE ($1::text IS NULL OR grp = $1) ORDER BY id DESC "
				       "LIMIT 1000",
				       1, p);
	free(g);
	if (!r)
		return api_reply_db_down(ctx);
	console_http_reply_json(ctx, 200, json_pack("{s:o}", "versions", api_rows_json(r)));
	PQclear(r);
}

/* The version row with its body (column "body"), or NULL (*missing tells a 404 from a
 * database failure). */
static PGresult *load_version(struct console *c, long long id, bool *missing)
{
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", id);
	const char *p[] = {ids};
	PGresult *r = console_db_query(
	    c, "SELECT " VERSION_COLS ", body FROM console_policy_versions WHERE id = $1::bigint",
	    1, p);
	*missing = r && PQntuples(r) == 0;
	if (r && *missing) {
		PQclear(r);
		return NULL;
	}
	return r;
}

static void show_version(struct console_http_ctx *ctx, long long id)
{
	bool missing;
	PGresult *r = load_version(ctx->c, id, &missing);
	char ids[24];

	if (!r)
		return missing ? console_http_reply_error(ctx, 404, "not_found",
							  "no policy version %lld", id)
			       : api_reply_db_down(ctx);
	json_t *v = api_row_json(r, 0);
	PQclear(r);
	snprintf(ids, sizeof(ids), "%lld", id);
	const char *p[] = {ids};
	r = console_db_query(
	    ctx->c,
	    "SELECT identity, role, decision, comment, " API_TS(
		"ts") " AS ts "
		      "FROM console_approvals WHERE version_id = $1::bigint ORDER BY ts",
	    1, p);
	json_t *probs =
	    registry_problems(ctx->c, json_string_value(json_object_get(v, "body")), NULL);
	if (!r || !probs) {
		json_decref(v);
		json_decref(probs);
		PQclear(r);
		return api_reply_db_down(ctx);
	}
	console_http_reply_json(ctx, 200,
				json_pack("{s:o, s:o, s:o}", "version", v, "approvals",
					  api_rows_json(r), "registry_problems", probs));
	PQclear(r);
}

static void diff_versions(struct console_http_ctx *ctx)
{
	char *as = console_http_query_param(ctx, "a"), *bs = console_http_query_param(ctx, "b");
	long long a = as ? api_parse_id(as) : 0, b = bs ? api_parse_id(bs) : 0;
	PGresult *ra = NULL, *rb = NULL;
	bool missing = false;
	char *out = NULL, na[64], nb[64];

	free(as);
	free(bs);
	if (!b) {
		console_http_reply_error(ctx, 400, "bad_request",
					 "b (a version id) is required; a defaults to b's parent");
		return;
	}
	rb = load_version(ctx->c, b, &missing);
	if (!rb)
		goto fail;
	if (!a && !PQgetisnull(rb, 0, PQfnumber(rb, "parent_id")))
		a = atoll(PQgetvalue(rb, 0, PQfnumber(rb, "parent_id")));
	if (a && !(ra = load_version(ctx->c, a, &missing))) {
		b = a;
		goto fail;
	}
	snprintf(na, sizeof(na), a ? "version %lld" : "(nothing)", a);
	snprintf(nb, sizeof(nb), "version %lld", b);
	if (change_diff(ra ? PQgetvalue(ra, 0, PQfnumber(ra, "body")) : "", na,
			PQgetvalue(rb, 0, PQfnumber(rb, "body")), nb, &out) < 0) {
		console_http_reply_error(ctx, 500, "internal", "out of memory");
	} else {
		json_t *o = json_pack("{s:o, s:I, s:s}", "a", a ? json_integer(a) : json_null(),
				      "b", (json_int_t)b, "diff", out);
		console_http_reply_json(ctx, 200, o);
	}
	free(out);
	PQclear(ra);
	PQclear(rb);
	return;
fail:
	PQclear(rb);
	if (missing)
		console_http_reply_error(ctx, 404, "not_found", "no policy version %lld", b);
	else
		api_reply_db_down(ctx);
}

static void get_policies(struct console_http_ctx *ctx)
{
	long long id;

	if (!*ctx->rest)
		return list_versions(ctx);
	if (strcmp(ctx->rest, "diff") == 0)
		return diff_versions(ctx);
	if ((id = api_parse_id(ctx->rest)))
		return show_version(ctx, id);
	console_http_reply_error(ctx, 404, "not_found", "no such resource: %s", ctx->path);
}

static void propose(struct console_http_ctx *ctx)
{
	json_t *b = console_http_read_json(ctx, 0), *probs = NULL;
	const char *grp, *body, *comment;
	json_t *parent;
	bool loaded = false;
	char sha[65], parent_s[24] = "";

	if (!b)
		return;
	grp = json_string_value(json_object_get(b, "group"));
	body = json_string_value(json_object_get(b, "body"));
	comment = json_string_value(json_object_get(b, "comment"));
	parent = json_object_get(b, "parent_id");
	if (!api_group_valid(grp) || !body || (parent && !json_is_integer(parent))) {
		console_http_reply_error(
		    ctx, 400, "bad_request",
		    "need group (1..64 of A-Z a-z 0-9 . _ -), body (the policy "
		    "document) and optionally comment, parent_id (an integer)");
		goto out;
	}
	if (strlen(body) != json_string_length(json_object_get(b, "body")) ||
	    strlen(body) > ELS_POLICY_DOC_MAX) {
		console_http_reply_error(ctx, 400, "bad_request",
					 "body: a NUL byte, or more than %u bytes",
					 ELS_POLICY_DOC_MAX);
		goto out;
	}
	if (!(probs = registry_problems(ctx->c, body, &loaded)))
		return json_decref(b), api_reply_db_down(ctx);
	if (!loaded) {
		console_audit(ctx->c, ctx->identity, ctx->role_name, "policy.propose", grp,
			      "refused",
			      json_pack("{s:s,s:O}", "reason", "invalid policy", "errors", probs));
		api_reply_problem(ctx, 422, "invalid_policy",
				  "the policy document is not valid for the agent's loader",
				  json_incref(probs));
		goto out;
	}
	change_sha256_hex(body, strlen(body), sha);
	if (parent)
		snprintf(parent_s, sizeof(parent_s), "%lld", (long long)json_integer_value(parent));
	const char *p[] = {grp, body, sha, ctx->identity, parent_s[0] ? parent_s : NULL, comment};
	console_db_exec(ctx->c,
			"INSERT INTO console_groups (name) VALUES ($1) "
			"ON CONFLICT DO NOTHING",
			1, p);
	/* The parent, unless given: the group's newest approved version (what a reviewer
	 * compares against). The version number: one more than the group's highest; two
	 * proposals racing on one group meet the UNIQUE (grp, version) and one is told to
	 * retry. */
	PGresult *r = console_db_query(
	    ctx->c,
	    "INSERT INTO console_policy_versions (grp, version, body, sha256, author, parent_id, "
	    "comment) SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, "
	    "coalesce($5::bigint, (SELECT id FROM console_policy_versions WHERE grp = $1 AND "
	    "state = 'approved' ORDER BY id DESC LIMIT 1)), $6 "
	    "FROM console_policy_versions WHERE grp = $1 RETURNING " VERSION_COLS,
	    6, p);
	if (!r) {
		console_http_reply_error(ctx, 409, "conflict",
					 "the version could not be stored (a concurrent proposal, "
					 "or parent_id %s does not exist): retry",
					 parent_s[0] ? parent_s : "-");
		goto out;
	}
	json_t *v = api_row_json(r, 0);
	PQclear(r);
	console_audit(ctx->c, ctx->identity, ctx->role_name, "policy.propose",
		      json_string_value(json_object_get(v, "group")), "ok",
		      json_pack("{s:O, s:O, s:O, s:I}", "version_id", json_object_get(v, "id"),
				"version", json_object_get(v, "version"), "sha256",
				json_object_get(v, "sha256"), "registry_problems",
				(json_int_t)json_array_size(probs)));
	console_http_reply_json(ctx, 201,
				json_pack("{s:o, s:O}", "version", v, "registry_problems", probs));
out:
	json_decref(probs);
	json_decref(b);
}

/* A refused decision: audited, alerted in the log, answered 403 (the two-person rule) or 409. */
static void refuse(struct console_http_ctx *ctx, const char *action, const char *target, int rc,
		   const char *reason)
{
	console_audit(ctx->c, ctx->identity, ctx->role_name, action, target, "refused",
		      json_pack("{s:s}", "reason", reason));
	els_log(ELS_LL_WARNING, "%s of version %s by %s refused: %s", action, target, ctx->identity,
		reason);
	console_http_reply_error(ctx, rc == -EPERM ? 403 : 409,
				 rc == -EPERM ? "two_person" : "conflict", "%s", reason);
}

static void decide(struct console_http_ctx *ctx, long long id, bool approve)
{
	json_t *b = console_http_read_json(ctx, 0);
	const char *action = approve ? "policy.approve" : "policy.reject";
	char target[32], reason[CHANGE_REASON_LEN];
	bool missing;

	if (!b)
		return;
	const char *comment = json_string_value(json_object_get(b, "comment"));
	snprintf(target, sizeof(target), "%lld", id);
	PGresult *r = load_version(ctx->c, id, &missing);
	if (!r) {
		json_decref(b);
		if (!missing)
			return api_reply_db_down(ctx);
		console_audit(ctx->c, ctx->identity, ctx->role_name, action, target, "refused",
			      json_pack("{s:s}", "reason", "no such version"));
		return console_http_reply_error(ctx, 404, "not_found", "no policy version %lld",
						id);
	}
	const char *state = PQgetvalue(r, 0, PQfnumber(r, "state"));
	const char *author = PQgetvalue(r, 0, PQfnumber(r, "author"));
	struct change_rules rules = api_change_rules(ctx->c);
	int rc = approve ? change_may_approve(&rules, state, author, ctx->identity, NULL, 0, reason,
					      sizeof(reason))
		 : strcmp(state, "proposed") == 0
		     ? 0
		     : (snprintf(reason, sizeof(reason),
				 "the version is %s, not proposed: only a proposal is "
				 "rejected",
				 state),
			-1);
	if (rc < 0) {
		refuse(ctx, action, target, rc, reason);
		PQclear(r);
		json_decref(b);
		return;
	}
	if (approve) {
		bool loaded;
		json_t *probs =
		    registry_problems(ctx->c, PQgetvalue(r, 0, PQfnumber(r, "body")), &loaded);
		if (!probs) {
			PQclear(r);
			json_decref(b);
			return api_reply_db_down(ctx);
		}
		if (json_array_size(probs)) {
			snprintf(reason, sizeof(reason), "%s",
				 json_string_value(json_array_get(probs, 0)));
			console_audit(
			    ctx->c, ctx->identity, ctx->role_name, action, target, "refused",
			    json_pack("{s:s, s:O}", "reason", "registry check", "problems", probs));
			els_log(ELS_LL_WARNING, "approval of version %lld by %s refused: %s", id,
				ctx->identity, reason);
			api_reply_problem(ctx, 422, "registry",
					  "the registry check blocks approval: a permit is not "
					  "in the PPS registry, or it expired",
					  probs);
			PQclear(r);
			json_decref(b);
			return;
		}
		json_decref(probs);
	}
	PQclear(r);
	const char *p[] = {target, ctx->identity, ctx->role_name, approve ? "approve" : "reject",
			   comment};
	console_db_exec(ctx->c,
			"INSERT INTO console_approvals (version_id, identity, role, decision, "
			"comment) VALUES ($1::bigint, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
			5, p);
	/* Conditional on the state: two admins deciding at once, on two consoles, cannot both
	 * move it. */
	r = console_db_query(ctx->c,
			     approve ? "UPDATE console_policy_versions SET state = 'approved', "
				       "approved_by = $2, approved_at = now() WHERE id = "
				       "$1::bigint AND state = 'proposed' RETURNING " VERSION_COLS
				     : "UPDATE console_policy_versions SET state = 'rejected' "
				       "WHERE id = $1::bigint AND state = 'proposed' AND "
				       "$2::text IS NOT NULL RETURNING " VERSION_COLS,
			     2, p);
	if (!r || PQntuples(r) != 1) {
		snprintf(reason, sizeof(reason), "version %lld was decided meanwhile", id);
		if (r)
			refuse(ctx, action, target, -ESTALE, reason);
		else
			api_reply_db_down(ctx);
		PQclear(r);
		json_decref(b);
		return;
	}
	json_t *v = api_row_json(r, 0);
	PQclear(r);
	console_audit(ctx->c, ctx->identity, ctx->role_name, action, target, "ok",
		      comment ? json_pack("{s:s}", "comment", comment) : NULL);
	console_http_reply_json(ctx, 200,
				json_pack("{s:o, s:i, s:i}", "version", v, "approvals",
					  approve ? 1 : 0, "approvals_needed",
					  (int)rules.approvals));
	json_decref(b);
}

static void post_policies(struct console_http_ctx *ctx)
{
	const char *slash = strchr(ctx->rest, '/');
	char idbuf[24] = "";
	if (slash && (size_t)(slash - ctx->rest) < sizeof(idbuf))
		memcpy(idbuf, ctx->rest, (size_t)(slash - ctx->rest));
	long long id = api_parse_id(idbuf);

	if (!*ctx->rest)
		return propose(ctx);
	if (id && slash && strcmp(slash, "/approve") == 0)
		return decide(ctx, id, true);
	if (id && slash && strcmp(slash, "/reject") == 0)
		return decide(ctx, id, false);
	console_http_reply_error(ctx, 404, "not_found", "no such resource: %s", ctx->path);
}

int api_policy_routes(struct console *c)
{
	int rc =
	    console_http_route(c, "GET", "/api/policies", get_policies, ELS_ROLE_AUDITOR, false);
	if (rc == 0)
		rc = console_http_route(c, "POST", "/api/policies", post_policies, ELS_ROLE_ADMIN,
					true);
	return rc;
}
