/* The channel to the management endpoint, main-process side: the socketpair's typed messages
 * in and out, a restarted endpoint taken over, the CRL handed on, the endpoint reaped. The
 * requests that arrive are executed by control.c. See control.h. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alert.h"
#include "control.h"
#include "control_int.h"
#include "els/log.h"
#include "els/mgmt.h"
#include "ipc.h"
#include "metrics.h"
#include "mgmt.h"
#include "policy_check.h"

struct els_control *els_control_new(const struct els_control_env *env, int fd, pid_t pid,
				    struct els_mgmt_trust *trust)
{
	struct els_control *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->env = *env;
	c->pid = pid;
	c->trust = trust;
	c->monitor_path = env->monitor_path ? strdup(env->monitor_path) : NULL;
	c->env.monitor_path = c->monitor_path;
	c->check.out_fd = -1;
	const struct els_policy *p = env->running ? env->running(env->arg) : NULL;
	if (p)
		els_policy_dir_clean(p->set.policy_dir);
	els_ipc_init(&c->ipc, fd);
	c->open = fd >= 0;
	return c;
}

static void shut(struct els_control *c, const char *why)
{
	if (!c->open)
		return;
	if (why) {
		els_log(ELS_LL_ERROR,
			"management: %s; the endpoint is stopped, filtering goes on, and the "
			"endpoint will be started again",
			why);
		els_control_audit(c, why);
	}
	els_ipc_close(&c->ipc);
	c->open = false;
	/* A pending check's answer has no connection to go to any more (a restarted endpoint
	 * numbers its connections anew); the check still runs to its end. */
	if (c->pend.active)
		c->pend.orphan = true;
	if (c->pid > 0) {
		kill(c->pid, SIGTERM);
		waitpid(c->pid, NULL, 0);
		c->pid = 0;
	}
}

bool els_control_down(const struct els_control *c)
{
	return c && !c->open;
}

void els_control_attach(struct els_control *c, int fd, pid_t pid)
{
	els_ipc_init(&c->ipc, fd);
	c->pid = pid;
	c->open = true;
}

void els_control_free(struct els_control *c)
{
	if (!c)
		return;
	shut(c, NULL);
	els_check_abort(&c->check);
	els_control_pend_clear(c);
	for (unsigned i = 0; c->snap_bufs && i < c->env.nq; i++) {
		/* Only after the workers stopped (the caller joined them). */
		c->env.workers[i].snap.buf = NULL;
		free(c->snap_bufs[i]);
	}
	free(c->snap_bufs);
	els_mgmt_trust_free(c->trust);
	els_mgmt_trust_free(c->console_trust);
	free(c->console_host);
	free(c->monitor_path);
	free(c);
}

int els_control_fd(const struct els_control *c)
{
	return c && c->open ? c->ipc.fd : -1;
}

short els_control_events(const struct els_control *c)
{
	return (short)(POLLIN | (els_ipc_pending(&c->ipc) ? POLLOUT : 0));
}

/* The listener's clients: the role is the one their certificate carries, verified here. */
static bool client_verify(struct els_control *c, const uint8_t *der, size_t derlen,
			  const char *json, size_t jlen, char identity[65], int *role, char *why,
			  size_t whylen)
{
	(void)json;
	(void)jlen;
	*role = c->trust ? els_mgmt_trust_role(c->trust, der, derlen, identity, 65, why, whylen)
			 : ELS_ROLE_NONE;
	return *role != ELS_ROLE_NONE;
}

static const struct els_control_source client_source = {
    .what = "request",
    .role_name = "none",
    .whose = "client's",
    .via = "",
    .no_trust = "no trust anchors",
    .verify = client_verify,
};

/* A request from the endpoint: peer certificates, peer address, JSON (ipc.h). The role comes
 * from verifying the certificates here, never from the endpoint: a compromised endpoint can
 * only act as a valid certificate of the CA, at the time of the request. */
void els_control_request(struct els_control *c, struct els_ipc_msg *m,
			 const struct els_control_source *src)
{
	char identity[65] = "?", why[128] = "";
	const char *outcome = "internal";
	char *resp = NULL;
	int role = ELS_ROLE_NONE;

	if (m->len < 4) {
		els_log(ELS_LL_WARNING, "management: malformed %s from the endpoint", src->what);
		return;
	}
	size_t derlen = (size_t)m->body[0] << 24 | (size_t)m->body[1] << 16 |
			(size_t)m->body[2] << 8 | m->body[3];
	bool fits = derlen <= ELS_MGMT_PEER_MAX && derlen < m->len - 4;
	const char *peer = fits ? (const char *)m->body + 4 + derlen : NULL;
	const char *nul = fits ? memchr(peer, 0, m->len - 4 - derlen) : NULL;
	/* The peer address goes into alerts, the log and the monitor as it is: from a
	 * compromised endpoint a newline in it would forge a line of its own. An address is
	 * printable ASCII without spaces; anything else is a malformed request. */
	bool printable = nul && nul > peer;
	for (const char *q = peer; printable && q < nul; q++)
		printable = *q > 0x20 && *q < 0x7f;
	if (!nul || nul - peer > 63 || !printable) {
		els_log(ELS_LL_WARNING, "management: malformed %s from the endpoint", src->what);
		return;
	}
	const char *json = nul + 1;
	size_t jlen = m->len - (size_t)(json - (const char *)m->body);
	if (!src->verify(c, m->body + 4, derlen, json, jlen, identity, &role, why, sizeof(why))) {
		char text[96], detail[80], id[128];
		outcome = "forbidden";
		snprintf(detail, sizeof(detail), " (%s)", why[0] ? why : src->no_trust);
		els_mgmt_audit_text(text, sizeof(text), identity, src->role_name, peer, "?",
				    outcome, detail);
		els_control_audit(c, text);
		els_alert_limited(ELS_R_MGMT_REFUSED,
				  "identity=\"%s\" peer=%s outcome=%s why=\"%s\"%s",
				  els_alert_clean(id, sizeof(id), identity), peer, outcome,
				  why[0] ? why : src->no_trust, src->via);
		resp = els_mgmt_error(-1, "forbidden", NULL,
				      "the agent does not accept this %s certificate: %s",
				      src->whose, why[0] ? why : src->no_trust);
	} else {
		resp = els_control_execute(c, identity, role, peer, m->conn, json, jlen,
					   &outcome);
		if (!resp && strcmp(outcome, "pending") == 0)
			return; /* answered by els_control_check_io() */
	}
	els_control_send(c, m->conn, resp);
}

static void on_message(struct els_control *c, struct els_ipc_msg *m)
{
	if (m->type == ELS_IPC_AUDIT || m->type == ELS_IPC_NOTE) {
		els_control_audit(c, (const char *)m->body);
		/* An audit is a refusal the endpoint made itself (a handshake, a role, a
		 * malformed request, max_clients), alerted with its text as one quoted value:
		 * the identity in it comes from a certificate, so it is not split into fields. */
		if (m->type == ELS_IPC_AUDIT) {
			char clean[512];
			els_metrics_note_mgmt_refusal();
			els_alert_limited(ELS_R_MGMT_REFUSED, "detail=\"%s\"",
					  els_alert_clean(clean, sizeof(clean),
							  (const char *)m->body));
		}
		return;
	}
	if (m->type == ELS_IPC_LOG) {
		els_mgmt_log_line((const char *)m->body);
		return;
	}
	if (m->type == ELS_IPC_DIAL_STATUS) {
		els_control_dial_status(c, (const char *)m->body);
		return;
	}
	if (m->type == ELS_IPC_CONSOLE_REQUEST) {
		els_control_console_request(c, m);
		return;
	}
	if (m->type != ELS_IPC_REQUEST) {
		els_log(ELS_LL_WARNING, "management: ignoring message type %u from the endpoint",
			m->type);
		return;
	}
	els_control_request(c, m, &client_source);
}

/* Sends resp (taken; NULL: out of memory) to the endpoint for connection conn. */
void els_control_send(struct els_control *c, uint32_t conn, char *resp)
{
	if (!resp)
		resp = els_mgmt_error(-1, "internal", NULL, "out of memory");
	if (!c->open) {
		free(resp); /* the endpoint went away while the checker ran */
		return;
	}
	/* Every request gets an answer the endpoint can pass on: one too large for a frame
	 * (an error with huge details) becomes a short error with the same id. */
	if (resp && strlen(resp) > ELS_MGMT_MAX_FRAME) {
		json_t *r = json_loads(resp, 0, NULL);
		json_t *id = r ? json_object_get(r, "id") : NULL;
		size_t was = strlen(resp);
		free(resp);
		resp = els_mgmt_error(json_is_integer(id) ? (int64_t)json_integer_value(id) : -1,
				      "internal", NULL,
				      "the answer (%zu bytes) is larger than a frame (%u bytes): "
				      "ask for less (limit) or split the document",
				      was, ELS_MGMT_MAX_FRAME);
		json_decref(r);
	}
	int rc =
	    resp ? els_ipc_send(&c->ipc, ELS_IPC_RESPONSE, conn, resp, strlen(resp)) : -ENOMEM;
	free(resp);
	if (rc == -ENOBUFS)
		shut(c, "the endpoint does not read its answers");
}

void els_control_io(struct els_control *c, short revents)
{
	if (!c->open)
		return;
	if (revents & POLLOUT && els_ipc_flush(&c->ipc) < 0) {
		shut(c, "the channel to the endpoint failed");
		return;
	}
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	struct els_ipc_msg m;
	int rc;
	/* A bounded number per call, so a busy endpoint cannot starve signals and the
	 * watchdog in the same loop. */
	for (int i = 0; i < 16 && c->open; i++) {
		rc = els_ipc_recv(&c->ipc, &m);
		if (rc == 0)
			return;
		if (rc < 0) {
			shut(c, rc == -EPIPE ? "the endpoint process exited"
					     : "the endpoint broke the message protocol");
			return;
		}
		on_message(c, &m);
		if (m.fd >= 0)
			close(m.fd); /* the endpoint sends none: never keep one */
		free(m.body);
	}
}

/* Sends the CRL (as read by the trust) to the endpoint, which re-checks its sessions. */
static void send_crl(struct els_control *c)
{
	size_t len;
	const char *pem = els_mgmt_trust_crl(c->trust, &len);
	int rc = c->open ? els_ipc_send(&c->ipc, ELS_IPC_CRL, 0, pem, len) : 0;
	if (rc < 0)
		els_log(ELS_LL_ERROR, "management: cannot send the CRL to the endpoint: %s",
			strerror(-rc));
}

static void crl_check(struct els_control *c, bool force)
{
	char err[256];
	if (!c || !c->trust)
		return;
	int rc = els_mgmt_trust_reload_crl(c->trust, force, err, sizeof(err));
	if (rc < 0) {
		els_log(ELS_LL_ERROR, "management: %s; keeping the old CRL", err);
		return;
	}
	if (rc == 0)
		return;
	if (!force) {
		els_log(ELS_LL_INFO, "management: the CRL file changed; sessions are checked again");
		els_control_audit(c, "mgmt: CRL file changed, reloaded");
	}
	send_crl(c);
}

void els_control_reload_crl(struct els_control *c)
{
	crl_check(c, true);
	els_control_console_crl(c, true);
}

void els_control_watch_crl(struct els_control *c)
{
	crl_check(c, false);
	els_control_console_crl(c, false);
}

void els_control_reap(struct els_control *c)
{
	int status;
	char done[160];
	if (c && els_sweep_reap(&c->sweep, done, sizeof(done))) {
		els_log(ELS_LL_INFO, "%s", done);
		els_control_audit(c, done);
	}
	if (!c || c->pid <= 0)
		return;
	pid_t r = waitpid(c->pid, &status, WNOHANG);
	if (r != c->pid)
		return;
	c->pid = 0;
	char why[96];
	if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "the endpoint process was killed by signal %d",
			 WTERMSIG(status));
	else
		snprintf(why, sizeof(why), "the endpoint process exited with status %d",
			 WEXITSTATUS(status));
	shut(c, why);
}
