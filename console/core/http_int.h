/* Private to http.c (routes, replies, dispatch) and http_conn.c (listener, connections). */
#ifndef ELS_CONSOLE_HTTP_INT_H
#define ELS_CONSOLE_HTTP_INT_H

#include <event2/http.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "http.h"

struct route {
	char method[8];
	char *prefix;
	size_t prefix_len;
	console_http_handler handler;
	int min_role;
	bool state_changing;
};

struct console_http {
	struct route *routes;
	size_t n, cap;
	struct evhttp *http;
	SSL_CTX *ctx;
	SSL_CTX *refuse_ctx; /* over the connection limit: the handshake fails at once */
	unsigned conns;	     /* live TLS connections (SSL objects) */
};

/* c->http, allocated on first use (routes are registered before the server starts). */
struct console_http *http_of(struct console *c);
/* evhttp's generic callback: finds the route, checks role and CSRF, calls the handler. */
void on_request(struct evhttp_request *req, void *arg);

#endif
