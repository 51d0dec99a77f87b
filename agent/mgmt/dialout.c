/* The console connection, endpoint side (docs/console-protocol.md). The main process connects
 * the TCP socket (this process may make none: seccomp) and passes it over the socketpair; here
 * it becomes a TLS 1.3 client connection that checks the console's certificate (console CA
 * and CRL, role console, the name or address dialled), sends hello and then a heartbeat every
 * heartbeat_s, and serves the console's requests exactly as the listener's (mgmt.c): the same
 * request check, then to the main process, which verifies the console's certificate itself
 * and takes the role from on_behalf_of. */
#include <arpa/inet.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "mgmt.h"
#include "mgmt_int.h"

#define MISSED_BEATS	  3 /* heartbeat intervals a write may stall before the link is lost */

static void status(struct endpoint *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void status(struct endpoint *e, const char *fmt, ...)
{
	char text[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	els_ipc_send(e->ipc, ELS_IPC_DIAL_STATUS, 0, text, strlen(text));
}

void els_dial_close(struct endpoint *e, const char *why)
{
	struct conn *k = e->dial;
	if (!k)
		return;
	e->dial = NULL;
	status(e, "down %s", why ? why : k->dial_why[0] ? k->dial_why : "closed by the console");
	if (k->ssl) {
		SSL_shutdown(k->ssl);
		SSL_free(k->ssl);
	}
	close(k->fd);
	e->held -= k->held;
	els_mgmt_frame_free(&k->fr);
	free(k->out);
	free(k->der);
	free(k->push);
	free(k);
	ERR_clear_error();
}

void els_dial_start(struct endpoint *e, int fd, const char *addr)
{
	if (fd < 0)
		return;
	if (e->dial)
		els_dial_close(e, "replaced by a new connection");
	struct conn *k = calloc(1, sizeof(*k));
	SSL *ssl = k && e->tls->cctx ? SSL_new(e->tls->cctx) : NULL;
	if (!ssl || SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		free(k);
		close(fd);
		status(e, "down cannot start TLS (out of memory or no console settings)");
		return;
	}
	/* The console must be the one dialled: its certificate names console.address's host
	 * (a DNS name, or an IP address in the SAN), checked by OpenSSL in the handshake. */
	const char *host = e->c->console_host;
	unsigned char tmp[16];
	X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
	bool ip = inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
	if (ip)
		X509_VERIFY_PARAM_set1_ip_asc(vp, host);
	else {
		SSL_set_tlsext_host_name(ssl, host);
		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		X509_VERIFY_PARAM_set1_host(vp, host, 0);
	}
	SSL_set_connect_state(ssl);
	k->fd = fd;
	k->ssl = ssl;
	k->dial = true;
	k->st = C_HANDSHAKE;
	k->accepted = els_mgmt_now_ms();
	k->deadline = k->accepted + e->c->handshake_timeout_s * 1000ull;
	snprintf(k->identity, sizeof(k->identity), "?");
	/* The peer as the monitor records it: the address dialled (printable, no spaces). */
	snprintf(k->peer, sizeof(k->peer), "%.63s", host);
	els_mgmt_frame_init(&k->fr);
	e->dial = k;
	(void)addr;
	if (!els_mgmt_conn_step(e, k))
		els_dial_close(e, NULL);
}

/* Queues a hello or heartbeat: the main process's state with type and time added. */
static void queue_beat(struct endpoint *e, struct conn *k, const char *type)
{
	if (!e->state || k->pushlen)
		return; /* no state yet (hello waits for it), or the last one is still going */
	json_t *j = json_loads(e->state, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return;
	}
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(j, "v", json_integer(ELS_MGMT_VERSION));
	json_object_set_new(j, "type", json_string(type));
	json_object_set_new(j, "time", json_string(ts));
	char *body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	size_t len = body ? strlen(body) : 0;
	uint8_t *f = body ? malloc(len + 4) : NULL;
	if (f) {
		f[0] = (uint8_t)(len >> 24);
		f[1] = (uint8_t)(len >> 16);
		f[2] = (uint8_t)(len >> 8);
		f[3] = (uint8_t)len;
		memcpy(f + 4, body, len);
		k->push = f;
		k->pushlen = len + 4;
		k->pushoff = 0;
		k->push_since = els_mgmt_now_ms();
	}
	free(body);
	k->next_beat = els_mgmt_now_ms() + e->c->heartbeat_s * 1000ull;
	if (strcmp(type, "hello") == 0)
		k->hello_sent = true;
}

bool els_dial_authenticated(struct endpoint *e, struct conn *k)
{
	X509 *x = SSL_get1_peer_certificate(k->ssl);
	bool console = x && els_mgmt_cert_is_console(x);
	X509_free(x);
	if (!console) {
		/* A certificate of the CA for the right name, but not a console's (an agent's,
		 * an operator's): the agent says nothing to it. */
		snprintf(k->dial_why, sizeof(k->dial_why),
			 "the console's certificate (%s) has no role console", k->identity);
		return false;
	}
	status(e, "up %s", k->identity);
	queue_beat(e, k, "hello");
	return true;
}

int els_dial_push(struct conn *k)
{
	while (k->pushoff < k->pushlen) {
		ERR_clear_error();
		int r = SSL_write(k->ssl, k->push + k->pushoff, (int)(k->pushlen - k->pushoff));
		if (r <= 0) {
			int err = SSL_get_error(k->ssl, r);
			if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
				k->events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
				return 0;
			}
			snprintf(k->dial_why, sizeof(k->dial_why), "write failed");
			return -1;
		}
		k->pushoff += (size_t)r;
	}
	free(k->push);
	k->push = NULL;
	k->pushlen = k->pushoff = 0;
	return 1;
}

void els_dial_state(struct endpoint *e, char *json)
{
	free(e->state);
	e->state = json;
	struct conn *k = e->dial;
	/* A connection that authenticated before the first state arrived says hello now. */
	if (k && k->authed && !k->hello_sent) {
		queue_beat(e, k, "hello");
		if (!els_mgmt_conn_step(e, k))
			els_dial_close(e, NULL);
	}
}

void els_dial_tick(struct endpoint *e)
{
	struct conn *k = e->dial;
	if (!k)
		return;
	uint64_t now = els_mgmt_now_ms();
	if (k->authed && time(NULL) >= k->not_after) {
		els_dial_close(e, "the console's certificate has expired");
		return;
	}
	/* The console sends nothing between requests: an idle connection is the normal case,
	 * so the request deadline starts with a frame's first byte (kept ahead meanwhile). */
	if (k->st == C_READING && k->fr.hdr_got == 0 && !k->skip)
		k->deadline = now + e->c->timeout_s * 1000ull;
	if (k->deadline && now >= k->deadline) {
		els_dial_close(e, k->st == C_HANDSHAKE ? "handshake timed out"
				  : k->st == C_WAITING ? "the agent did not answer in time"
						       : "the console was too slow");
		return;
	}
	if (k->pushlen && now - k->push_since >= MISSED_BEATS * e->c->heartbeat_s * 1000ull) {
		els_dial_close(e, "heartbeats could not be written for 3 intervals");
		return;
	}
	if (k->authed && k->hello_sent && now >= k->next_beat && !k->pushlen) {
		queue_beat(e, k, "heartbeat");
		if (!els_mgmt_conn_step(e, k))
			els_dial_close(e, NULL);
	}
}

void els_dial_request(struct endpoint *e, struct conn *k)
{
	struct els_mgmt_req req;
	char *err, identity[65], text[96];
	const char *code;
	int role = els_mgmt_on_behalf((const char *)k->fr.body, k->fr.len, k->identity, identity,
				      sizeof(identity));

	if (els_mgmt_request_check((const char *)k->fr.body, k->fr.len, role, &req, &err, &code) <
	    0) {
		els_mgmt_audit_text(text, sizeof(text), identity, els_mgmt_role_name(role), k->peer,
				    req.cmd_name, code, "");
		els_ipc_send(e->ipc, ELS_IPC_AUDIT, 0, text, strlen(text));
		els_mgmt_respond(e, k, err);
		return;
	}
	els_mgmt_forward(e, k, &req, ELS_IPC_CONSOLE_REQUEST);
}

void els_dial_recheck(struct endpoint *e)
{
	struct conn *k = e->dial;
	if (!k || !k->authed || !e->tls->cctx)
		return;
	X509 *x = SSL_get1_peer_certificate(k->ssl);
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(k->ssl); /* with the leaf, client side */
	int v = x ? els_mgmt_cert_verify_purpose(SSL_CTX_get_cert_store(e->tls->cctx), x, chain,
						 X509_PURPOSE_SSL_SERVER)
		  : X509_V_ERR_UNSPECIFIED;
	X509_free(x);
	if (v != X509_V_OK) {
		char why[160];
		snprintf(why, sizeof(why), "the console's certificate: %s",
			 X509_verify_cert_error_string(v));
		els_dial_close(e, why);
	}
}
