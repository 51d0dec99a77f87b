/* The HTTPS server's listener: the TLS 1.3 context, one SSL per connection up to api.max
 * (beyond it the handshake fails at once), the evhttp setup and the certificate reload. The
 * routes and replies are in http.c. */
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <string.h>

#include "console.h"
#include "els/log.h"
#include "http.h"
#include "http_int.h"
#include "tls.h"

/* SSL ex_data: the connection counter to decrement when freed */
static int conn_index = -1;

static void conn_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			 void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	unsigned *count = ptr;
	if (count && *count)
		(*count)--;
}

static int refuse_hello(SSL *s, int *al, void *arg)
{
	(void)s;
	(void)arg;
	*al = SSL_AD_INTERNAL_ERROR;
	return SSL_CLIENT_HELLO_ERROR;
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
	struct console *c = arg;
	struct console_http *h = c->http;
	bool over = h->conns >= c->conf->api_max;
	SSL *ssl = SSL_new(over ? h->refuse_ctx : h->ctx);
	if (!ssl)
		return NULL;
	if (!over) {
		SSL_set_ex_data(ssl, conn_index, &h->conns);
		h->conns++;
	}
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					      BEV_OPT_CLOSE_ON_FREE);
}

int console_http_start(struct console *c)
{
	struct console_http *h = http_of(c);
	char err[512];

	if (!h)
		return -ENOMEM;
	if (conn_index < 0)
		conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free_cb);
	h->ctx = console_tls_server_ctx(&c->conf->api, err, sizeof(err));
	if (!h->ctx) {
		els_log(ELS_LL_ERROR, "api: %s", err);
		return -EINVAL;
	}
	h->refuse_ctx = SSL_CTX_new(TLS_server_method());
	if (!h->refuse_ctx)
		return -ENOMEM;
	SSL_CTX_set_client_hello_cb(h->refuse_ctx, refuse_hello, NULL);
	h->http = evhttp_new(c->base);
	if (!h->http)
		return -ENOMEM;
	evhttp_set_bevcb(h->http, make_bev, c);
	evhttp_set_gencb(h->http, on_request, c);
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
						EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
	evhttp_set_max_body_size(h->http, (ev_ssize_t)c->conf->api_body_max_kb * 1024);
	evhttp_set_max_headers_size(h->http, 16 * 1024);
	evhttp_set_timeout(h->http, 30);
	if (!evhttp_bind_socket_with_handle(h->http, c->conf->api.host, c->conf->api.port)) {
		els_log(ELS_LL_ERROR, "api: cannot listen on %s: %s", c->conf->api.listen,
			strerror(errno));
		return -EADDRINUSE;
	}
	els_log(ELS_LL_INFO, "api: listening on %s (%zu routes)", c->conf->api.listen, h->n);
	return 0;
}

int console_http_reload(struct console *c)
{
	struct console_http *h = c->http;
	char err[512];
	SSL_CTX *ctx = console_tls_server_ctx(&c->conf->api, err, sizeof(err));
	if (!ctx) {
		els_log(ELS_LL_ERROR, "api: reload: %s (the previous certificates and CRL stay)",
			err);
		return -EINVAL;
	}
	SSL_CTX_free(h->ctx); /* connections keep a reference to theirs */
	h->ctx = ctx;
	els_log(ELS_LL_INFO, "api: certificates and CRL read again");
	return 0;
}
