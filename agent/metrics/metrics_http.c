/* The metrics endpoint's server: libevent's evhttp on a thread of its own, plain on loopback
 * or a UNIX socket, or over mutual TLS 1.3 (bufferevent_openssl with the management
 * endpoint's TLS context). Why libevent: agent/metrics.h. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "els/clock.h"
#include "els/log.h"
#include "metrics_int.h"

#define METRICS_TIMEOUT_S   10	 /* a client that sends nothing is dropped after this */
#define METRICS_MAX_HEADERS 8192 /* request line and headers: a scraper sends a few hundred */

/* With tls, true only on a TLS connection whose client certificate was verified and states an
 * operator role (admin or auditor). The handshake already refuses everyone else but agents:
 * their certificates are TLS clients too (they dial els-console), so the role is what keeps
 * one agent's key from reading another agent's metrics. This is also the second lock because
 * evhttp serves a connection in plain text when tls_bev() cannot create one (out of memory). */
static bool peer_verified(struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	char identity[65];
	return peer && SSL_is_init_finished(ssl) && SSL_get_verify_result(ssl) == X509_V_OK &&
	       els_mgmt_cert_role(peer, identity, sizeof(identity)) != ELS_ROLE_NONE;
}

/* Only GET /metrics, exactly: the request line is all that is read from a client. */
static void on_request(struct evhttp_request *req, void *arg)
{
	struct els_metrics *m = arg;
	const char *uri = evhttp_request_get_uri(req);

	if (m->tls.ctx && !peer_verified(req)) {
		evhttp_send_error(req, 403, "client certificate required");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_send_error(req, 405, "only GET /metrics");
		return;
	}
	if (!uri || strcmp(uri, "/metrics") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, "only GET /metrics");
		return;
	}
	struct els_mbuf b = {0};
	els_metrics_render(m, &b);
	struct evbuffer *out = evbuffer_new();
	if (b.oom || !out || evbuffer_add(out, b.p, b.len) < 0) {
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
	} else {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  "text/plain; version=0.0.4; charset=utf-8");
		evhttp_send_reply(req, HTTP_OK, "OK", out);
	}
	if (out)
		evbuffer_free(out);
	els_mbuf_free(&b);
}

/* Every connection starts with a TLS handshake: a client without a certificate from `ca`
 * (or with a revoked one) is cut before evhttp reads a byte from it. */
static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
	struct els_metrics *m = arg;
	pthread_mutex_lock(&m->mu);
	SSL *ssl = SSL_new(m->tls.ctx); /* holds its own reference to the context */
	pthread_mutex_unlock(&m->mu);
	if (!ssl)
		return NULL; /* evhttp then makes a plain connection: on_request refuses it */
	struct bufferevent *bev = bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static int bind_unix(struct els_metrics *m, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	/* A socket left by an elsd that died is replaced; anything else at the path is not. */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	mode_t old = umask(0117); /* srw-rw----: the owner and its group may scrape */
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || listen(fd, 16) < 0 || evhttp_accept_socket(m->http, fd) < 0) {
		rc = -errno;
		close(fd);
		return rc ? rc : -EINVAL;
	}
	m->unix_path = strdup(path);
	return 0;
}

static void threads_once(void)
{
	evthread_use_pthreads(); /* so the main thread may break the serving loop */
}

struct els_metrics *els_metrics_open(const struct els_metrics_conf *c,
				     const struct els_metrics_src *src)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct els_metrics *m = calloc(1, sizeof(*m));
	char err[512] = "";

	if (!m)
		return NULL;
	pthread_once(&once, threads_once);
	m->src = *src;
	m->start_real_ns = els_now_real();
	pthread_mutex_init(&m->mu, NULL);
	els_kdrops_init(&m->kd, src->queue_first, src->queue_last);
	if (c->cert) {
		struct els_mgmt_conf mc = {
		    .ca = c->ca, .cert = c->cert, .key = c->key, .crl = c->crl};
		if (els_mgmt_tls_load(&m->tls, &mc, err, sizeof(err)) < 0) {
			els_log(ELS_LL_ERROR, "metrics: %s", err);
			goto fail;
		}
		m->crl_path = strdup(c->crl);
		if (!m->crl_path)
			goto fail;
	}
	m->base = event_base_new();
	m->http = m->base ? evhttp_new(m->base) : NULL;
	if (!m->http) {
		els_log(ELS_LL_ERROR, "metrics: out of memory");
		goto fail;
	}
	evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET);
	evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(m->http, 0);
	evhttp_set_timeout(m->http, METRICS_TIMEOUT_S);
	evhttp_set_gencb(m->http, on_request, m);
	if (m->tls.ctx)
		evhttp_set_bevcb(m->http, tls_bev, m);
	if (c->unix_path) {
		int rc = bind_unix(m, c->unix_path);
		if (rc < 0) {
			els_log(ELS_LL_ERROR, "metrics: cannot listen on %s: %s", c->unix_path,
				strerror(-rc));
			goto fail;
		}
	} else if (evhttp_bind_socket(m->http, c->host, c->port) < 0) {
		els_log(ELS_LL_ERROR, "metrics: cannot listen on %s: %s", c->listen,
			strerror(errno));
		goto fail;
	}
	els_log(ELS_LL_INFO, "metrics: serving GET /metrics on %s%s", c->listen,
		m->tls.ctx ? " (TLS 1.3, client certificate required)" : "");
	return m;
fail:
	els_metrics_free(m);
	return NULL;
}

void els_metrics_reload_crl(struct els_metrics *m)
{
	char *pem, err[512];
	size_t len;

	if (!m || !m->crl_path)
		return;
	int rc = els_mgmt_read_file(m->crl_path, 4u << 20, &pem, &len);
	if (rc < 0) {
		els_log(ELS_LL_ERROR, "metrics: cannot read the CRL %s: %s; keeping the old one",
			m->crl_path, strerror(-rc));
		return;
	}
	pthread_mutex_lock(&m->mu);
	rc = els_mgmt_tls_set_crl(&m->tls, pem, len, err, sizeof(err));
	pthread_mutex_unlock(&m->mu);
	free(pem);
	if (rc < 0)
		els_log(ELS_LL_ERROR, "metrics: new CRL refused, keeping the old one: %s", err);
}

static void *serve(void *arg)
{
	struct els_metrics *m = arg;
	pthread_setname_np(pthread_self(), "elsd-metrics");
	event_base_dispatch(m->base);
	return NULL;
}

int els_metrics_start(struct els_metrics *m)
{
	if (!m)
		return 0;
	int rc = pthread_create(&m->thread, NULL, serve, m);
	if (rc) {
		els_log(ELS_LL_ERROR, "metrics: cannot start the thread: %s", strerror(rc));
		return -rc;
	}
	m->started = true;
	return 0;
}

void els_metrics_free(struct els_metrics *m)
{
	if (!m)
		return;
	if (m->started) {
		event_base_loopbreak(m->base);
		pthread_join(m->thread, NULL);
	}
	if (m->http)
		evhttp_free(m->http);
	if (m->base)
		event_base_free(m->base);
	if (m->unix_path)
		unlink(m->unix_path);
	free(m->unix_path);
	free(m->crl_path);
	els_mgmt_tls_free(&m->tls);
	els_mbuf_free(&m->policy_text);
	els_metrics_permits_free(m);
	pthread_mutex_destroy(&m->mu);
	free(m);
}
