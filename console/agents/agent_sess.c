/* One agent's session: TLS handshake, the role check, hello, heartbeats, and the requests the
 * console sends it (console_agent_request), answered in order. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "agents_int.h"
#include "deployer.h"
#include "els/log.h"
#include "hello.h"
#include "relay.h"
#include "tls.h"

#define OUTPUT_MAX (64u << 20) /* queued request bytes to one agent */

static double now_epoch(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static void sess_free(struct agent_sess *s)
{
	els_mgmt_frame_free(&s->fr);
	free(s);
}

/* Fails every request still waiting (the callbacks run now, from the loop). */
static void fail_pending(struct agent_sess *s, const char *why)
{
	struct pending_req *q = s->q_head;
	s->q_head = s->q_tail = NULL;
	while (q) {
		struct pending_req *next = q->next;
		if (q->timer)
			event_free(q->timer);
		if (!q->timed_out && q->cb)
			q->cb(s->c, q->arg, NULL, why);
		free(q);
		q = next;
	}
}

void sess_close(struct agent_sess *s, const char *why)
{
	struct console_agents *a = s->c->agents;
	if (s->closing)
		return;
	s->closing = true;
	if (s->hello) {
		els_log(ELS_LL_INFO, "agents: %s@%s disconnected: %s", s->id, s->peer, why);
		agents_unindex(a, s);
		agents_mark_gone(a, s);
	}
	agents_pre_del(a, s);
	if (s->prev)
		s->prev->next = s->next;
	else
		a->all = s->next;
	if (s->next)
		s->next->prev = s->prev;
	a->nall--;
	if (s->deadline)
		event_free(s->deadline);
	s->deadline = NULL;
	if (s->bev)
		bufferevent_free(s->bev);
	s->bev = NULL;
	s->busy++;
	fail_pending(s, why);
	s->busy--;
	if (!s->busy)
		sess_free(s);
}

static void refuse(struct agent_sess *s, const char *identity, const char *role,
		   const char *outcome)
{
	console_audit(s->c, identity, role, "agent.connect", s->peer, outcome, NULL);
	sess_close(s, outcome);
}

/* ---- requests ---- */

static int send_frame(struct agent_sess *s, json_t *o)
{
	char *body = json_dumps(o, JSON_COMPACT);
	if (!body)
		return -ENOMEM;
	size_t len = strlen(body);
	struct evbuffer *out = bufferevent_get_output(s->bev);
	if (len > ELS_MGMT_MAX_FRAME || evbuffer_get_length(out) + len > OUTPUT_MAX) {
		free(body);
		return -ENOBUFS;
	}
	uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			  (uint8_t)len};
	int rc = evbuffer_add(out, hdr, 4) == 0 && evbuffer_add(out, body, len) == 0 ? 0 : -ENOMEM;
	free(body);
	return rc;
}

static void on_req_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct pending_req *q = arg;
	q->timed_out = true;
	/* Kept in the queue: the agent's answer, if it comes, still arrives in its place. */
	q->cb(q->s->c, q->arg, NULL, "the agent did not answer in time");
}

int console_agent_request_local(struct console *c, const char *agent_id, const char *cmd,
				json_t *args, const struct console_principal *on_behalf_of,
				unsigned timeout_s, console_agent_cb cb, void *arg)
{
	struct agent_sess *s = agents_find(c->agents, agent_id);
	struct pending_req *q = NULL;
	json_t *frame = NULL;
	int rc = -ENOMEM;

	if (!s || s->closing) {
		json_decref(args);
		return -ENOENT;
	}
	if (!cb) {
		json_decref(args);
		return -EINVAL;
	}
	q = calloc(1, sizeof(*q));
	frame = json_pack("{s:i,s:I,s:s,s:o}", "v", ELS_MGMT_VERSION, "id",
			  (json_int_t)(s->next_id + 1), "cmd", cmd, "args",
			  args ? args : json_object());
	args = NULL;
	if (!q || !frame)
		goto fail;
	if (on_behalf_of && on_behalf_of->identity)
		json_object_set_new(frame, "on_behalf_of",
				    json_pack("{s:s,s:s}", "identity", on_behalf_of->identity,
					      "role", els_mgmt_role_name(on_behalf_of->role)));
	q->id = ++s->next_id;
	q->cb = cb;
	q->arg = arg;
	q->s = s;
	q->timer = evtimer_new(c->base, on_req_timeout, q);
	struct timeval tv = {timeout_s ? timeout_s : c->conf->request_timeout_s, 0};
	if (!q->timer || evtimer_add(q->timer, &tv) < 0)
		goto fail;
	rc = send_frame(s, frame);
	if (rc < 0)
		goto fail;
	json_decref(frame);
	if (s->q_tail)
		s->q_tail->next = q;
	else
		s->q_head = q;
	s->q_tail = q;
	els_log(ELS_LL_DEBUG, "agents: -> %s %s id %lld", s->id, cmd, (long long)q->id);
	return 0;
fail:
	json_decref(args);
	json_decref(frame);
	if (q && q->timer)
		event_free(q->timer);
	free(q);
	return rc;
}

static void on_response(struct agent_sess *s, json_t *resp)
{
	struct pending_req *q = s->q_head;
	json_t *id = json_object_get(resp, "id");
	/* In order: the answer is the oldest request's. An id of null is the agent's reply to
	 * a frame it could not read, which can only be that one too. */
	if (!q || (json_is_integer(id) && json_integer_value(id) != q->id)) {
		els_log(ELS_LL_WARNING,
			"agents: %s@%s answered a request it was not asked "
			"(id %lld): closing",
			s->id, s->peer,
			json_is_integer(id) ? (long long)json_integer_value(id) : -1LL);
		sess_close(s, "protocol error: unexpected response");
		return;
	}
	s->q_head = q->next;
	if (!s->q_head)
		s->q_tail = NULL;
	if (q->timer)
		event_free(q->timer);
	els_log(ELS_LL_DEBUG, "agents: <- %s id %lld%s", s->id, (long long)q->id,
		q->timed_out ? " (too late: timed out)" : "");
	if (!q->timed_out)
		q->cb(s->c, q->arg, resp, NULL);
	free(q);
}

/* ---- frames ---- */

static void on_hello(struct agent_sess *s, json_t *row)
{
	struct console_agents *a = s->c->agents;
	struct agent_sess *old = agents_find(a, s->id);
	/* The agent reconnected before its old session timed out: the new one is the agent. */
	if (old && old != s)
		sess_close(old, "replaced by a new session of the same agent");
	s->hello = true;
	agents_pre_del(a, s);
	agents_index(a, s);
	event_free(s->deadline);
	s->deadline = NULL;
	struct timeval hb = {s->c->conf->heartbeat_timeout_s, 0};
	bufferevent_set_timeouts(s->bev, &hb, &hb);
	agents_mark_state(a, s, row);
	els_log(ELS_LL_INFO, "agents: %s@%s connected", s->id, s->peer);
	/* The deployer's pass writes the new row first (console_agents_flush), then looks
	 * for this agent's pending targets. */
	console_deployer_kick(s->c);
}

static void on_frame(struct agent_sess *s, const char *body, size_t len)
{
	json_t *row = NULL;
	char why[256];
	int kind = console_frame_parse(body, len, s->id, &row, why, sizeof(why));

	switch (kind) {
	case CONSOLE_FRAME_HELLO:
		if (s->hello) {
			agents_mark_state(s->c->agents, s, row);
			break;
		}
		on_hello(s, row);
		break;
	case CONSOLE_FRAME_HEARTBEAT:
		if (!s->hello) {
			sess_close(s, "protocol error: heartbeat before hello");
			break;
		}
		agents_mark_state(s->c->agents, s, row);
		break;
	case CONSOLE_FRAME_RESPONSE:
		if (!s->hello)
			sess_close(s, "protocol error: a response before hello");
		else
			on_response(s, row);
		break;
	case CONSOLE_FRAME_WRONG_ID:
		refuse(s, s->id, "agent", "refused: hello agent_id differs from the certificate");
		break;
	default:
		els_log(ELS_LL_WARNING, "agents: %s@%s: bad frame (%s): closing", s->id, s->peer,
			why);
		sess_close(s, "protocol error");
		break;
	}
	json_decref(row);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct agent_sess *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	s->busy++;
	while (!s->closing && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		size_t used = 0;
		int r = els_mgmt_frame_feed(&s->fr, v.iov_base, v.iov_len, &used);
		evbuffer_drain(in, used);
		if (r == ELS_FRAME_MORE && s->fr.hdr_got == 4 && !s->hello &&
		    s->fr.len > CONSOLE_HELLO_MAX_FRAME)
			r = ELS_FRAME_TOO_LARGE;
		if (r == ELS_FRAME_TOO_LARGE || r < 0) {
			els_log(ELS_LL_WARNING,
				"agents: %s@%s: frame too large (%u bytes): closing", s->id,
				s->peer, s->fr.len);
			sess_close(s, "frame too large");
			break;
		}
		if (r == ELS_FRAME_DONE) {
			on_frame(s, (const char *)s->fr.body, s->fr.len);
			if (!s->closing)
				els_mgmt_frame_reset(&s->fr);
		}
	}
	s->busy--;
	if (s->closing && !s->busy)
		sess_free(s);
}

static void on_connected(struct agent_sess *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	char identity[128];
	if (!peer) {
		sess_close(s, "no certificate");
		return;
	}
	int role = console_cert_role(peer, identity, sizeof(identity));
	if (role != CONSOLE_ROLE_AGENT) {
		char outcome[96];
		snprintf(outcome, sizeof(outcome), "refused: role %s is not agent",
			 console_role_name(role));
		agents_log_refusal(s->c->agents, "%s@%s %s", identity, s->peer, outcome);
		refuse(s, identity, console_role_name(role), outcome);
		return;
	}
	snprintf(s->id, sizeof(s->id), "%s", identity);
	time_t na;
	if (console_cert_not_after(peer, &na) == 0)
		s->cert_not_after = (double)na;
	s->authed = true;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct agent_sess *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		on_connected(s);
		return;
	}
	if (!s->authed) {
		unsigned long e = bufferevent_get_openssl_error(s->bev);
		const char *r = e ? ERR_reason_error_string(e) : NULL;
		agents_log_refusal(s->c->agents, "handshake refused @%s: %s", s->peer,
				   r			    ? r
				   : (what & BEV_EVENT_EOF) ? "closed by the peer"
							    : "error");
		while (bufferevent_get_openssl_error(s->bev))
			;
		sess_close(s, "handshake failed");
		return;
	}
	const char *why = (what & BEV_EVENT_TIMEOUT) ? "silent past heartbeat_timeout_s"
			  : (what & BEV_EVENT_EOF)   ? "closed by the agent"
						     : "connection error";
	sess_close(s, why);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct agent_sess *s = arg;
	agents_log_refusal(s->c->agents, "%s @%s: no %s within handshake_timeout_s (%u s)",
			   s->authed ? s->id : "connection", s->peer,
			   s->authed ? "hello" : "TLS handshake", s->c->conf->handshake_timeout_s);
	sess_close(s, "handshake timeout");
}

void sess_start(struct console_agents *a, evutil_socket_t fd, const char *peer)
{
	struct console *c = a->c;
	struct agent_sess *s = calloc(1, sizeof(*s));
	SSL *ssl = NULL;

	if (!s || !(ssl = SSL_new(a->ctx))) {
		free(s);
		close(fd);
		return;
	}
	s->c = c;
	snprintf(s->peer, sizeof(s->peer), "%s", peer);
	snprintf(s->id, sizeof(s->id), "?");
	s->connected_since = now_epoch();
	els_mgmt_frame_init(&s->fr);
	s->bev = bufferevent_openssl_socket_new(c->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (!s->bev) {
		SSL_free(ssl);
		close(fd);
		free(s);
		return;
	}
	s->next = a->all;
	if (a->all)
		a->all->prev = s;
	a->all = s;
	a->nall++;
	agents_pre_add(a, s);
	s->deadline = evtimer_new(c->base, on_deadline, s);
	struct timeval hs = {c->conf->handshake_timeout_s, 0};
	if (!s->deadline || evtimer_add(s->deadline, &hs) < 0) {
		sess_close(s, "out of memory");
		return;
	}
	bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

int console_agent_request(struct console *c, const char *agent_id, const char *cmd, json_t *args,
			  const struct console_principal *on_behalf_of, unsigned timeout_s,
			  console_agent_cb cb, void *arg)
{
	if (agents_find(c->agents, agent_id))
		return console_agent_request_local(c, agent_id, cmd, args, on_behalf_of, timeout_s,
						   cb, arg);
	/* Held by another instance: through the database (relay.c). */
	return console_relay_request(c, agent_id, cmd, args, on_behalf_of, timeout_s, cb, arg);
}
