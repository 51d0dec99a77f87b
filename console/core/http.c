/* The HTTPS server's routing table, replies and request dispatch (http.h states the rules);
 * the TLS listener and its connections are in http_conn.c. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "els/log.h"
#include "http.h"
#include "http_int.h"
#include "tls.h"

struct console_http *http_of(struct console *c)
{
	if (!c->http)
		c->http = calloc(1, sizeof(*c->http));
	return c->http;
}

int console_http_route(struct console *c, const char *method, const char *path_prefix,
		       console_http_handler handler, int min_role, bool state_changing)
{
	struct console_http *h = http_of(c);
	if (!h)
		return -ENOMEM;
	if (!method || strlen(method) >= sizeof(h->routes->method) || !path_prefix ||
	    path_prefix[0] != '/' || !handler ||
	    (min_role != ELS_ROLE_AUDITOR && min_role != ELS_ROLE_ADMIN))
		return -EINVAL;
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->routes[i].method, method) == 0 &&
		    strcmp(h->routes[i].prefix, path_prefix) == 0) {
			els_log(ELS_LL_ERROR, "http: route %s %s registered twice", method,
				path_prefix);
			return -EEXIST;
		}
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 32;
		struct route *r = realloc(h->routes, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		h->routes = r;
		h->cap = cap;
	}
	struct route *r = &h->routes[h->n];
	memset(r, 0, sizeof(*r));
	snprintf(r->method, sizeof(r->method), "%s", method);
	if (!(r->prefix = strdup(path_prefix)))
		return -ENOMEM;
	r->prefix_len = strlen(path_prefix);
	r->handler = handler;
	r->min_role = min_role;
	r->state_changing = state_changing;
	h->n++;
	return 0;
}

/* Whether prefix covers path: "/api/x/" covers everything below it; "/api/x" covers itself
 * and "/api/x/..." but not "/api/xy". */
static bool prefix_matches(const struct route *r, const char *path, const char **rest)
{
	if (strncmp(path, r->prefix, r->prefix_len) != 0)
		return false;
	const char *after = path + r->prefix_len;
	if (r->prefix[r->prefix_len - 1] == '/') {
		*rest = after;
		return true;
	}
	if (*after == 0) {
		*rest = after;
		return true;
	}
	if (*after == '/') {
		*rest = after + 1;
		return true;
	}
	return false;
}

console_http_handler console_http_lookup(struct console *c, const char *method, const char *path,
					 const char **rest, int *min_role, bool *state_changing,
					 bool *path_known)
{
	struct console_http *h = c->http;
	const struct route *best = NULL;
	const char *best_rest = NULL;

	*path_known = false;
	for (size_t i = 0; h && i < h->n; i++) {
		const char *r;
		if (!prefix_matches(&h->routes[i], path, &r))
			continue;
		*path_known = true;
		if (strcmp(h->routes[i].method, method) != 0)
			continue;
		if (!best || h->routes[i].prefix_len > best->prefix_len) {
			best = &h->routes[i];
			best_rest = r;
		}
	}
	if (!best)
		return NULL;
	*rest = best_rest;
	*min_role = best->min_role;
	*state_changing = best->state_changing;
	return best->handler;
}

/* ---- replies ---- */

static void security_headers(struct evhttp_request *req)
{
	struct evkeyvalq *o = evhttp_request_get_output_headers(req);
	evhttp_add_header(o, "Content-Security-Policy",
			  "default-src 'self'; script-src 'self'; object-src 'none'; "
			  "frame-ancestors 'none'");
	evhttp_add_header(o, "Strict-Transport-Security", "max-age=31536000");
	evhttp_add_header(o, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(o, "X-Frame-Options", "DENY");
	evhttp_add_header(o, "Referrer-Policy", "no-referrer");
	evhttp_add_header(o, "Cache-Control", "no-store");
}

static const char *reason(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Entity";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return code < 400 ? "OK" : code < 500 ? "Bad Request" : "Internal Server Error";
	}
}

static void send_bytes(struct evhttp_request *req, int code, const char *type, const void *data,
		       size_t len)
{
	struct evbuffer *b = evbuffer_new();
	if (b && len)
		evbuffer_add(b, data, len);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_send_reply(req, code, reason(code), b);
	if (b)
		evbuffer_free(b);
}

void console_http_reply_bytes(struct console_http_ctx *ctx, int code, const char *content_type,
			      const void *data, size_t len)
{
	send_bytes(ctx->req, code, content_type, data, len);
}

void console_http_reply_json(struct console_http_ctx *ctx, int code, json_t *body)
{
	char *s = json_dumps(body ? body : json_object(), JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(body);
	if (!s) {
		send_bytes(ctx->req, 500, "application/json", "{\"error\":\"internal\"}", 20);
		return;
	}
	send_bytes(ctx->req, code, "application/json", s, strlen(s));
	free(s);
}

static void reply_error_v(struct evhttp_request *req, int code, const char *code_name,
			  const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
static void reply_error_v(struct evhttp_request *req, int code, const char *code_name,
			  const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	json_t *o = json_pack("{s:s,s:s}", "error", code_name, "message", msg);
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(o);
	send_bytes(req, code, "application/json", s ? s : "{}", s ? strlen(s) : 2);
	free(s);
}

static void reply_error(struct evhttp_request *req, int code, const char *code_name,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void reply_error(struct evhttp_request *req, int code, const char *code_name,
			const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	reply_error_v(req, code, code_name, fmt, ap);
	va_end(ap);
}

void console_http_reply_error(struct console_http_ctx *ctx, int code, const char *code_name,
			      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	reply_error_v(ctx->req, code, code_name, fmt, ap);
	va_end(ap);
}

json_t *console_http_read_json(struct console_http_ctx *ctx, size_t max)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(ctx->req);
	size_t len = evbuffer_get_length(in);
	if (!max)
		max = (size_t)ctx->c->conf->api_body_max_kb * 1024;
	if (len > max) {
		reply_error(ctx->req, 413, "too_large", "the body is %zu bytes; at most %zu", len,
			    max);
		return NULL;
	}
	const char *type =
	    evhttp_find_header(evhttp_request_get_input_headers(ctx->req), "Content-Type");
	if (!type || strncasecmp(type, "application/json", 16) != 0) {
		reply_error(ctx->req, 415, "not_json", "Content-Type must be application/json");
		return NULL;
	}
	json_error_t e;
	unsigned char *p = evbuffer_pullup(in, -1);
	json_t *o = json_loadb((const char *)(p ? p : (unsigned char *)""), len,
			       JSON_REJECT_DUPLICATES, &e);
	if (!o || !json_is_object(o)) {
		if (o)
			reply_error(ctx->req, 400, "bad_json", "the body must be a JSON object");
		else
			reply_error(ctx->req, 400, "bad_json", "line %d column %d: %s", e.line,
				    e.column, e.text);
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- answers that come later ---- */

struct console_http_deferred {
	struct evhttp_request *req; /* NULL once the client's connection closed */
	struct evhttp_connection *conn;
};

static void on_deferred_close(struct evhttp_connection *conn, void *arg)
{
	(void)conn;
	struct console_http_deferred *d = arg;
	d->req = NULL; /* freed by evhttp right after this */
}

struct console_http_deferred *console_http_defer(struct console_http_ctx *ctx)
{
	struct console_http_deferred *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->req = ctx->req;
	d->conn = evhttp_request_get_connection(ctx->req);
	if (d->conn)
		evhttp_connection_set_closecb(d->conn, on_deferred_close, d);
	return d;
}

static bool deferred_take(struct console_http_deferred *d, struct evhttp_request **req)
{
	*req = d->req;
	if (d->req && d->conn)
		evhttp_connection_set_closecb(d->conn, NULL, NULL);
	free(d);
	return *req != NULL;
}

void console_http_deferred_json(struct console_http_deferred *d, int code, json_t *body)
{
	struct evhttp_request *req;
	if (!deferred_take(d, &req)) {
		json_decref(body);
		return;
	}
	struct console_http_ctx ctx = {.req = req};
	console_http_reply_json(&ctx, code, body);
}

void console_http_deferred_bytes(struct console_http_deferred *d, int code, const char *type,
				 const void *data, size_t len, const char *header,
				 const char *value)
{
	struct evhttp_request *req;
	if (!deferred_take(d, &req))
		return;
	if (header)
		evhttp_add_header(evhttp_request_get_output_headers(req), header, value);
	send_bytes(req, code, type, data, len);
}

void console_http_deferred_error(struct console_http_deferred *d, int code, const char *code_name,
				 const char *fmt, ...)
{
	struct evhttp_request *req;
	va_list ap;
	if (!deferred_take(d, &req))
		return;
	va_start(ap, fmt);
	reply_error_v(req, code, code_name, fmt, ap);
	va_end(ap);
}

char *console_http_query_param(struct console_http_ctx *ctx, const char *name)
{
	struct evkeyvalq q;
	char *v = NULL;
	if (!ctx->query || !*ctx->query)
		return NULL;
	if (evhttp_parse_query_str(ctx->query, &q) < 0)
		return NULL;
	const char *s = evhttp_find_header(&q, name);
	if (s)
		v = strdup(s);
	evhttp_clear_headers(&q);
	return v;
}

/* ---- requests ---- */

static const char *method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	default:
		return "?";
	}
}

void console_http_cookie_value(const char *h, const char *name, char *out, size_t n)
{
	size_t nl = strlen(name);
	out[0] = 0;
	for (const char *p = h; p && *p;) {
		while (*p == ' ' || *p == ';')
			p++;
		if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
			const char *v = p + nl + 1;
			size_t l = strcspn(v, ";");
			if (l < n) {
				memcpy(out, v, l);
				out[l] = 0;
			}
			return;
		}
		p = strchr(p, ';');
	}
}

static void cookie_value(struct evhttp_request *req, const char *name, char *out, size_t n)
{
	console_http_cookie_value(
	    evhttp_find_header(evhttp_request_get_input_headers(req), "Cookie"), name, out, n);
}

/* Double submit: a page of this origin can read the cookie and echo it in a header; another
 * site can make the browser send the cookie but cannot read it to set the header. */
static bool csrf_ok(struct evhttp_request *req)
{
	char cookie[80];
	cookie_value(req, "els_csrf", cookie, sizeof(cookie));
	const char *hdr = evhttp_find_header(evhttp_request_get_input_headers(req), "X-ELS-CSRF");
	size_t cl = strlen(cookie);
	return hdr && cl >= 16 && strlen(hdr) == cl && CRYPTO_memcmp(hdr, cookie, cl) == 0;
}

static void set_csrf_cookie(struct evhttp_request *req)
{
	char have[80];
	cookie_value(req, "els_csrf", have, sizeof(have));
	if (strlen(have) >= 16)
		return;
	unsigned char rnd[16];
	char hex[33], hdr[160];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	snprintf(hdr, sizeof(hdr), "els_csrf=%s; Path=/; Secure; SameSite=Strict", hex);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", hdr);
}

static SSL *request_ssl(struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
	return bev ? bufferevent_openssl_get_ssl(bev) : NULL;
}

void on_request(struct evhttp_request *req, void *arg)
{
	struct console *c = arg;
	struct console_http_ctx ctx = {.req = req, .c = c, .query = ""};
	char identity[128] = "?", *path = NULL;
	const char *method = method_name(evhttp_request_get_command(req));
	char action[160];

	security_headers(req);
	SSL *ssl = request_ssl(req);
	X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	/* The handshake required and verified a certificate; this is the second line. */
	if (!peer || SSL_get_verify_result(ssl) != X509_V_OK) {
		reply_error(req, 403, "no_certificate", "a client certificate is required");
		return;
	}
	int role = console_cert_role(peer, identity, sizeof(identity));
	ctx.identity = identity;
	ctx.role = role;
	ctx.role_name = console_role_name(role);

	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
	size_t plen = 0;
	path = raw ? evhttp_uridecode(raw, 0, &plen) : NULL;
	if (!path || plen != strlen(path) || path[0] != '/' || strstr(path, "/../") ||
	    (plen >= 3 && strcmp(path + plen - 3, "/..") == 0)) {
		reply_error(req, 400, "bad_path", "the request path is not valid");
		goto out;
	}
	ctx.path = path;
	ctx.query = uri && evhttp_uri_get_query(uri) ? evhttp_uri_get_query(uri) : "";
	snprintf(action, sizeof(action), "http %s %.120s", method, path);

	if (role != ELS_ROLE_ADMIN && role != ELS_ROLE_AUDITOR) {
		console_audit(c, identity, ctx.role_name, action, path, "refused: not an operator",
			      NULL);
		reply_error(req, 403, "forbidden",
			    "this certificate's role (%s) may not use the console API",
			    ctx.role_name);
		goto out;
	}
	int min_role = 0;
	bool state_changing = false, path_known = false;
	const char *lookup_method = strcmp(method, "HEAD") == 0 ? "GET" : method;
	console_http_handler fn = console_http_lookup(c, lookup_method, path, &ctx.rest, &min_role,
						      &state_changing, &path_known);
	if (!fn) {
		if (path_known)
			reply_error(req, 405, "method_not_allowed", "%s is not served on %s",
				    method, path);
		else
			reply_error(req, 404, "not_found", "no such resource: %s", path);
		goto out;
	}
	if (role < min_role) {
		console_audit(c, identity, ctx.role_name, action, path,
			      "refused: needs the admin role", NULL);
		reply_error(req, 403, "forbidden", "%s %s needs the %s role", method, path,
			    els_mgmt_role_name(min_role));
		goto out;
	}
	if (state_changing && !csrf_ok(req)) {
		console_audit(c, identity, ctx.role_name, action, path,
			      "refused: anti-CSRF check failed", NULL);
		reply_error(req, 403, "csrf",
			    "a state-changing request needs header X-ELS-CSRF equal to cookie "
			    "els_csrf");
		goto out;
	}
	if (strcmp(lookup_method, "GET") == 0)
		set_csrf_cookie(req);
	fn(&ctx);
out:
	free(path);
}

void console_http_free(struct console *c)
{
	struct console_http *h = c->http;
	if (!h)
		return;
	if (h->http)
		evhttp_free(h->http);
	SSL_CTX_free(h->ctx);
	SSL_CTX_free(h->refuse_ctx);
	for (size_t i = 0; i < h->n; i++)
		free(h->routes[i].prefix);
	free(h->routes);
	free(h);
	c->http = NULL;
}
