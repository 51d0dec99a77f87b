/* els-console's HTTPS server (CONSOLE.md, "HTTPS API"): evhttp over bufferevent_openssl, TLS
 * 1.3 only, a client certificate from the API CA required (a client without one never gets a
 * byte of HTTP), role from the certificate's OU / "els:role:" URI as elsd maps it, identity
 * its CN. The api_* (c-api) and web_* (c-web) files register their routes here.
 *
 * Every response carries the security headers (CSP, HSTS, nosniff, no-store for JSON). A
 * route registered state_changing is refused (403, audited) unless the request's X-ELS-CSRF
 * header equals its els_csrf cookie (double submit); every GET answer sets that cookie when
 * the request has none. A client whose role is below a route's min_role gets 403 and an audit
 * row. An unknown path is 404, a known path with another method 405. */
#ifndef ELS_CONSOLE_HTTP_H
#define ELS_CONSOLE_HTTP_H

#include <event2/http.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "els/mgmt.h" /* ELS_ROLE_AUDITOR, ELS_ROLE_ADMIN, els_mgmt_role_name() */

struct console;

/* One request, as a handler sees it. Valid during the handler call only (copy what is kept:
 * a handler that answers later must keep req and send through evhttp itself). */
struct console_http_ctx {
	struct evhttp_request *req;
	const char *identity; /* certificate CN, printable */
	int role;	      /* ELS_ROLE_AUDITOR or ELS_ROLE_ADMIN */
	struct console *c;
	/* Added by c-core beyond the contract, for convenience: */
	const char *path;  /* decoded path, without the query ("/api/policies/12/approve") */
	const char *rest;  /* path after the route's prefix ("12/approve"; "" when equal) */
	const char *query; /* raw query string after '?', or "" */
	const char *role_name;
};

typedef void (*console_http_handler)(struct console_http_ctx *ctx);

/* Registers handler for method ("GET", "POST", "PUT", "DELETE") on every path starting with
 * path_prefix; the longest matching prefix wins. A prefix ending in '/' matches below it; one
 * without matches that exact path and below it after a '/'. min_role: ELS_ROLE_AUDITOR or
 * ELS_ROLE_ADMIN. Call before the loop runs (from the module's init function). 0, -EEXIST
 * for the same method and prefix twice, -EINVAL or -ENOMEM. */
int console_http_route(struct console *c, const char *method, const char *path_prefix,
		       console_http_handler handler, int min_role, bool state_changing);

/* Replies with body as JSON (application/json); body is stolen (may be NULL: "{}"). */
void console_http_reply_json(struct console_http_ctx *ctx, int code, json_t *body);
/* Replies {"error": code_name, "message": ...}. */
void console_http_reply_error(struct console_http_ctx *ctx, int code, const char *code_name,
			      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Replies with bytes of the given type (HTML, CSS, JS, CSV). */
void console_http_reply_bytes(struct console_http_ctx *ctx, int code, const char *content_type,
			      const void *data, size_t len);

/* The request body as a JSON object, at most max bytes (0: api.body_max_kb). Returns the
 * object (caller json_decref()s), or NULL after replying 413 (too large), 415 (not JSON
 * Content-Type) or 400 (not a JSON object, with the parser's line and column). */
json_t *console_http_read_json(struct console_http_ctx *ctx, size_t max);

/* For a handler that answers later (e.g. after an agent's answer, console_agent_request):
 * takes the request over. Exactly one console_http_deferred_json() or _error() must follow
 * (it frees the handle); if the client went away meanwhile, the answer is dropped. */
struct console_http_deferred;
struct console_http_deferred *console_http_defer(struct console_http_ctx *ctx);
void console_http_deferred_json(struct console_http_deferred *d, int code, json_t *body);
void console_http_deferred_error(struct console_http_deferred *d, int code, const char *code_name,
				 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Same, with bytes of the given type (the web pages' JSON from PostgreSQL, CSV), and one more
 * header when header is not NULL (e.g. "Content-Disposition"). */
void console_http_deferred_bytes(struct console_http_deferred *d, int code, const char *type,
				 const void *data, size_t len, const char *header,
				 const char *value);

/* The value of query parameter name, decoded, malloc'd (caller frees); NULL when absent. */
char *console_http_query_param(struct console_http_ctx *ctx, const char *name);

/* Starts listening on conf->api (called by main after every module registered its routes).
 * 0 or -errno with the reason logged. */
int console_http_start(struct console *c);
void console_http_free(struct console *c);
/* SIGHUP: reads the API's CA, certificate, key and CRL again for new connections (the old ones
 * stay on failure). 0 or -errno logged. */
int console_http_reload(struct console *c);

/* For tests and the fuzz target: the route lookup alone. Returns the handler registered for
 * method and path (NULL if none) and sets *rest, *min_role, *state_changing; *method_known
 * is false when path matched a prefix under another method only (405). */
console_http_handler console_http_lookup(struct console *c, const char *method, const char *path,
					 const char **rest, int *min_role, bool *state_changing,
					 bool *path_known);

/* The value of cookie name in a Cookie header (h may be NULL), copied into out; empty when
 * absent or longer than n - 1. */
void console_http_cookie_value(const char *h, const char *name, char *out, size_t n);

#endif
