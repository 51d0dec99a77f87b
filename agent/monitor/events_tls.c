/* RFC 5425 transport for the event stream: a TLS client with a certificate of its own that
 * verifies the collector's certificate chain and name. The socket is non-blocking and every
 * wait is bounded, so a collector that stops reading costs the sender thread a timeout, never
 * the monitor writer or a worker. TLS 1.2 is the lowest version RFC 5425 allows; 1.3 is
 * preferred (OpenSSL offers the highest both sides speak). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "els/keyfile.h"
#include "events_int.h"

static void ssl_err(char *err, size_t n, const char *what)
{
	unsigned long e = ERR_get_error();
	char b[200] = "unknown error";

	if (e)
		ERR_error_string_n(e, b, sizeof(b));
	snprintf(err, n, "%s: %s", what, b);
	ERR_clear_error();
}

int ev_tls_init(struct ev_tls *t, const struct els_events_conf *c, char *err, size_t n)
{
	EVP_PKEY *key;

	memset(t, 0, sizeof(*t));
	t->fd = -1;
	t->c = c;
	/* The client key must be the agent's own, as the management endpoint's is
	 * (els/keyfile.h); it is checked on the descriptor it is read from. */
	key = els_keyfile_read_pkey("events.syslog.key", c->key, err, n);
	if (!key)
		return -1;
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ctx) {
		ssl_err(err, n, "TLS context");
		goto fail;
	}
	SSL_CTX_set_min_proto_version(t->ctx, c->tls_min == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(t->ctx, c->ca, NULL) != 1) {
		ssl_err(err, n, "events.syslog.ca");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(t->ctx, c->cert) != 1) {
		ssl_err(err, n, "events.syslog.cert");
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey(t->ctx, key) != 1) {
		ssl_err(err, n, "events.syslog.key");
		goto fail;
	}
	if (SSL_CTX_check_private_key(t->ctx) != 1) {
		ssl_err(err, n, "events.syslog.key does not match events.syslog.cert");
		goto fail;
	}
	EVP_PKEY_free(key); /* the context holds its own reference */
	return 0;
fail:
	EVP_PKEY_free(key);
	SSL_CTX_free(t->ctx);
	t->ctx = NULL;
	return -1;
}

void ev_tls_free(struct ev_tls *t)
{
	ev_tls_close(t);
	SSL_CTX_free(t->ctx);
	t->ctx = NULL;
}

void ev_tls_close(struct ev_tls *t)
{
	if (t->ssl) {
		SSL_free(t->ssl); /* no close_notify: the peer may be gone, and we never wait */
		t->ssl = NULL;
	}
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

/* Waits until fd is ready for what SSL asked (err: SSL_ERROR_WANT_*) or the deadline. */
static int wait_io(int fd, int ssl_error, uint64_t deadline)
{
	uint64_t now = els_now_mono_ms();
	struct pollfd p = {.fd = fd, .events = ssl_error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT};

	if (ssl_error != SSL_ERROR_WANT_READ && ssl_error != SSL_ERROR_WANT_WRITE)
		return -1;
	if (now >= deadline)
		return -1;
	return poll(&p, 1, (int)(deadline - now)) > 0 ? 0 : -1;
}

static int tcp_connect(const struct els_events_conf *c, uint64_t deadline, char *err, size_t n)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int rc = getaddrinfo(c->host, c->port, &hints, &res), fd = -1;

	if (rc) {
		snprintf(err, n, "%s: %s", c->host, gai_strerror(rc));
		return -1;
	}
	snprintf(err, n, "%s:%s: no address", c->host, c->port);
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    a->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			uint64_t now = els_now_mono_ms();
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			int soerr = 0;
			socklen_t sl = sizeof(soerr);

			if (now < deadline && poll(&p, 1, (int)(deadline - now)) > 0 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
				break;
			snprintf(err, n, "connect %s:%s: %s", c->host, c->port,
				 soerr ? strerror(soerr) : "timed out");
		} else {
			snprintf(err, n, "connect %s:%s: %s", c->host, c->port, strerror(errno));
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

int ev_tls_connect(struct ev_tls *t, unsigned timeout_ms, char *err, size_t n)
{
	const struct els_events_conf *c = t->c;
	uint64_t deadline = els_now_mono_ms() + timeout_ms;
	const char *name = c->name ? c->name : c->host;
	unsigned char tmp[16];
	bool ip = inet_pton(AF_INET, name, tmp) == 1 || inet_pton(AF_INET6, name, tmp) == 1;
	X509_VERIFY_PARAM *vp;

	ev_tls_close(t);
	t->fd = tcp_connect(c, deadline, err, n);
	if (t->fd < 0)
		return -1;
	t->ssl = SSL_new(t->ctx);
	if (!t->ssl) {
		ssl_err(err, n, "TLS session");
		goto fail;
	}
	SSL_set_fd(t->ssl, t->fd);
	vp = SSL_get0_param(t->ssl);
	X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1
	       : (X509_VERIFY_PARAM_set1_host(vp, name, 0) != 1 ||
		  SSL_set_tlsext_host_name(t->ssl, name) != 1)) {
		ssl_err(err, n, "collector name");
		goto fail;
	}
	for (;;) {
		int r = SSL_connect(t->ssl);
		if (r == 1)
			break;
		int e = SSL_get_error(t->ssl, r);
		if (wait_io(t->fd, e, deadline) == 0)
			continue;
		long v = SSL_get_verify_result(t->ssl);
		if (v != X509_V_OK)
			snprintf(err, n, "TLS handshake with %s:%s: certificate: %s", c->host,
				 c->port, X509_verify_cert_error_string(v));
		else if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			snprintf(err, n, "TLS handshake with %s:%s: timed out", c->host, c->port);
		else
			ssl_err(err, n, "TLS handshake");
		goto fail;
	}
	return 0;
fail:
	ERR_clear_error();
	ev_tls_close(t);
	return -1;
}

int ev_tls_send(struct ev_tls *t, const char *buf, size_t n, unsigned timeout_ms)
{
	uint64_t deadline = els_now_mono_ms() + timeout_ms;
	size_t off = 0;

	if (!t->ssl)
		return -1;
	while (off < n) {
		size_t w = 0;
		int r = SSL_write_ex(t->ssl, buf + off, n - off, &w);
		if (r == 1) {
			off += w;
			continue;
		}
		if (wait_io(t->fd, SSL_get_error(t->ssl, r), deadline) < 0) {
			ERR_clear_error();
			ev_tls_close(t);
			return -1;
		}
	}
	return 0;
}

bool ev_tls_alive(struct ev_tls *t)
{
	struct pollfd p = {.fd = t->fd, .events = POLLIN | POLLRDHUP};
	char b[512];

	if (!t->ssl)
		return false;
	if (poll(&p, 1, 0) <= 0)
		return true;
	if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL))
		goto dead;
	/* readable: TLS 1.3 session tickets arrive after the handshake; a close_notify or an
	 * alert means the collector is going away */
	for (;;) {
		int r = SSL_read(t->ssl, b, sizeof(b));
		if (r > 0)
			continue; /* a collector has nothing to say; ignore it */
		int e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return true;
		goto dead;
	}
dead:
	ERR_clear_error();
	ev_tls_close(t);
	return false;
}
