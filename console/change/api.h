/* The change-control API's modules (api_*.c, c-api): registry, policy versions, deployments
 * with their health gate, drift, audit. Shared helpers between them. docs/console-api.md is
 * the reference of the routes. */
#ifndef ELS_CONSOLE_API_H
#define ELS_CONSOLE_API_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "change.h"
#include "http.h"

struct console;

/* SQL text for a timestamptz column as ISO 8601 UTC ("2026-12-05T01:00:00Z"). */
#define API_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* ---- api_util.c ---- */

/* Row i of r as a JSON object keyed by column name: NULL -> null, int2/4/8 -> integer, bool ->
 * true/false, json/jsonb -> parsed, anything else a string. */
json_t *api_row_json(const PGresult *r, int i);
/* Every row, as an array of api_row_json objects. */
json_t *api_rows_json(const PGresult *r);
/* Replies {"error": code_name, "message": msg, "details": details} (details stolen, may be
 * NULL). */
void api_reply_problem(struct console_http_ctx *ctx, int code, const char *code_name,
		       const char *msg, json_t *details);
/* 503 "the database is not reachable": after a failed query. */
void api_reply_db_down(struct console_http_ctx *ctx);
/* A positive decimal id from text; 0 when it is not one. */
long long api_parse_id(const char *s);
/* A group name: 1..64 of [A-Za-z0-9._-]. */
bool api_group_valid(const char *g);
/* Loads the registry for the checks. *out malloc'd (strings point into *res: keep it until
 * done; PQclear it after). Returns the count, or -1 (database down). */
int api_registry_load(struct console *c, PGresult **res, struct change_registry_entry **out);
/* The two-person rule as configured. */
struct change_rules api_change_rules(const struct console *c);
/* v as a PostgreSQL text[] literal ({"a","b\"c"}), for a $n::text[] parameter; malloc'd,
 * NULL when out of memory. */
char *api_text_array(const char *const *v, size_t n);
/* NOTIFY els_deploy: every console instance's deployer looks for pending targets. */
void api_notify_deploy(struct console *c);

/* ---- api_registry.c, api_policy.c, api_deploy.c, api_drift.c, api_audit.c ---- */
int api_registry_routes(struct console *c);
int api_policy_routes(struct console *c);
int api_deploy_routes(struct console *c);
int api_drift_routes(struct console *c);
int api_audit_routes(struct console *c);

/* api_deploy.c: one pass of every live deployment's health gate and completion. */
void api_deploy_tick(struct console *c);
/* api_drift.c: one pass of the drift rules over every agent. */
void api_drift_tick(struct console *c);

#endif
