/* Management requests, main-process side: the channel to the endpoint, dispatch, audit, and
 * the policy checker's pending request (read commands in control_read.c). See control.h. */
#include <errno.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alert.h"
#include "control.h"
#include "control_int.h"
#include "els/mgmt.h"
#include "ipc.h"
#include "els/log.h"
#include "metrics.h"
#include "mgmt.h"
#include "policy_check.h"

const struct els_control_env *els_control_env_of(const struct els_control *c)
{
	return &c->env;
}

void els_cmd_fail(struct els_cmd_err *e, const char *code, const char *fmt, ...)
{
	va_list ap;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

void els_sha256_hex(const void *buf, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[64] = 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	if (s[0] < 0x80)
		return 1;
	size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	if (!len || len > n || (s[0] >= 0xf8))
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	uint32_t cp = len == 2 ? (s[0] & 0x1fu) : len == 3 ? (s[0] & 0x0fu) : (s[0] & 0x07u);
	for (size_t i = 1; i < len; i++)
		cp = cp << 6 | (s[i] & 0x3fu);
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

json_t *els_json_text(const char *buf, size_t len)
{
	json_t *j = json_stringn(buf, len);
	if (j)
		return j;
	/* Not UTF-8 (or holds NUL): replace each bad byte so the rest stays readable. */
	char *out = malloc(len * 3 + 1);
	size_t o = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t l = buf[i] ? utf8_seq((const unsigned char *)buf + i, len - i) : 0;
		if (l) {
			memcpy(out + o, buf + i, l);
			o += l;
			i += l;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	j = json_stringn(out, o);
	free(out);
	return j;
}

/* ---- audit ---- */

static void audit_push(struct els_control *c, const char *text);
void els_control_audit_push(struct els_control *c, const char *text)
{
	audit_push(c, text);
}

static void audit_push(struct els_control *c, const char *text)
{
	if (!c->env.ctl)
		return;
	const struct els_policy *p = c->env.running(c->env.arg);
	struct els_record r = {.kind = ELS_REC_EVENT,
			       .ts_ns = els_now_real(),
			       .count = 1,
			       .reason = ELS_R_EVENT,
			       .generation = p ? p->generation : 0,
			       .handler = "mgmt"};
	snprintf(r.detail, sizeof(r.detail), "%s", text);
	els_ring_push(c->env.ctl, &r);
}

/* ---- dispatch ---- */

static const struct {
	const char *name;
	json_t *(*fn)(struct els_control *c, json_t *args, struct els_cmd_err *e);
} cmd_table[] = {
    {"status", els_cmd_status},
    {"stats", els_cmd_stats},
    {"flows", els_cmd_flows},
    {"log", els_cmd_log},
    {"policy.get", els_cmd_policy_get},
    {"list.get", els_cmd_list_get},
    {"list.add", els_cmd_list_add},
    {"list.del", els_cmd_list_del},
    {"sweep", els_cmd_sweep},
};

/* Requests that make a new policy generation when they succeed (alerted either way). */
static bool changes_policy(const char *cmd)
{
	return strcmp(cmd, "policy.apply") == 0 || strcmp(cmd, "policy.rollback") == 0 ||
	       strcmp(cmd, "list.add") == 0 || strcmp(cmd, "list.del") == 0;
}

/* Requests whose document goes through the policy checker child first. */
static bool checks_policy(const char *cmd)
{
	return strcmp(cmd, "policy.validate") == 0 || strcmp(cmd, "policy.apply") == 0 ||
	       strcmp(cmd, "policy.rollback") == 0;
}

/* The answer to a request whose command ran (result, or e): response JSON, audit record and
 * alert. Takes result. */
static char *finish_request(struct els_control *c, const char *identity, int role,
			    const char *peer, const char *cmd, int64_t id, json_t *result,
			    struct els_cmd_err *e, const char **outcome)
{
	char *resp = NULL;
	char text[256];

	if (!result && !e->code)
		els_cmd_fail(e, "internal", "out of memory");
	if (result) {
		json_t *r = json_pack("{s:i,s:I,s:b,s:o}", "v", ELS_MGMT_VERSION, "id",
				      (json_int_t)id, "ok", 1, "result", result);
		resp = r ? json_dumps(r, JSON_COMPACT) : NULL;
		json_decref(r);
		if (resp && strlen(resp) > ELS_MGMT_MAX_FRAME) {
			free(resp);
			resp = NULL;
			els_cmd_fail(e, "internal",
				     "the answer is larger than %u bytes: ask for "
				     "fewer rows (limit)",
				     ELS_MGMT_MAX_FRAME);
		} else if (resp) {
			*outcome = "ok";
		} else {
			els_cmd_fail(e, "internal", "out of memory");
		}
	}
	if (!resp) {
		resp = els_mgmt_error(id, e->code, e->details, "%s", e->msg);
		e->details = NULL;
		*outcome = e->code;
	}
	json_decref(e->details);
	e->details = NULL;
	const struct els_policy *p = c->env.running(c->env.arg);
	char gen[48];
	snprintf(gen, sizeof(gen), " gen %u", p ? p->generation : 0);
	if (strcmp(*outcome, "ok") == 0 && els_audit_is_read(cmd)) {
		char evicted[256];
		int evicted_role = 0;
		unsigned left_out, evicted_count;
		bool due = els_audit_read_due(&c->reads, identity, role, els_now_mono(),
					      &left_out, evicted, &evicted_role, &evicted_count);

		if (evicted_count) {
			/* the limiter forgot an identity to make room: its count goes now */
			char n[40];

			snprintf(n, sizeof(n), "%u not recorded", evicted_count);
			els_mgmt_audit_text(text, sizeof(((struct els_record *)0)->detail),
					    evicted, els_mgmt_role_name(evicted_role), "-", "reads",
					    n, "");
			audit_push(c, text);
		}
		if (!due)
			return resp; /* counted; the next recorded read says how many */
		if (left_out)
			snprintf(gen + strlen(gen), sizeof(gen) - strlen(gen), " (+%u reads)",
				 left_out);
	}
	/* The outcome always fits: a long CN or peer is shortened first (mgmt.h). */
	els_mgmt_audit_text(text, sizeof(((struct els_record *)0)->detail), identity,
			    els_mgmt_role_name(role), peer, cmd, *outcome, gen);
	audit_push(c, text);
	if (changes_policy(cmd)) {
		char idc[128];
		els_alert(strcmp(*outcome, "ok") == 0 ? ELS_R_POLICY_CHANGED : ELS_R_POLICY_REJECTED,
			  "generation=%u by=\"%s\" peer=%s cmd=%s outcome=%s",
			  p ? p->generation : 0, els_alert_clean(idc, sizeof(idc), identity), peer,
			  cmd, *outcome);
	} else if (strcmp(cmd, "policy.validate") == 0 && strcmp(*outcome, "invalid_policy") == 0) {
		/* A refused validate changes nothing, but it is how an auditor would probe the
		 * boundary (files outside the policy directory, devices, agent settings): it is
		 * alerted too, rate-limited, since a console checking a draft is no attack. */
		char idc[128];
		els_alert_limited(ELS_R_POLICY_REJECTED,
				  "generation=%u by=\"%s\" peer=%s cmd=%s outcome=%s",
				  p ? p->generation : 0, els_alert_clean(idc, sizeof(idc), identity),
				  peer, cmd, *outcome);
	}
	return resp;
}

/* Hands the document of a checked request to the checker child; the request waits in
 * c->pend. 0, or -1 with e set (answered at once). */
static int start_check(struct els_control *c, const char *identity, int role, const char *peer,
		       uint32_t conn, const struct els_mgmt_req *req, struct els_cmd_err *e)
{
	char *text;
	size_t len;

	if (c->pend.active) {
		els_cmd_fail(e, "busy",
			     "%s by %s is still being checked: one policy check runs at a time, "
			     "retry in a few seconds",
			     c->pend.cmd, c->pend.identity);
		return -1;
	}
	if (els_cmd_policy_document(c, req->cmd, req->args, &text, &len, e) < 0)
		return -1;
	const struct els_policy *p = c->env.running(c->env.arg);
	int rc = els_check_start(&c->check, text, len,
				 p->set.policy_dir ? p->set.policy_dir : ELS_POLICY_DIR_DEFAULT,
				 c->env.services_path);
	if (rc < 0) {
		free(text);
		els_cmd_fail(e, "internal", "cannot start the policy checker: %s", strerror(-rc));
		return -1;
	}
	c->pend.active = true;
	c->pend.orphan = false;
	c->pend.conn = conn;
	c->pend.id = req->id;
	c->pend.role = role;
	snprintf(c->pend.identity, sizeof(c->pend.identity), "%s", identity);
	snprintf(c->pend.peer, sizeof(c->pend.peer), "%s", peer);
	snprintf(c->pend.cmd, sizeof(c->pend.cmd), "%s", req->cmd);
	c->pend.args = json_incref(req->args);
	c->pend.text = text;
	c->pend.len = len;
	return 0;
}

char *els_control_execute(struct els_control *c, const char *identity, int role, const char *peer,
			  uint32_t conn, const char *json, size_t len, const char **outcome)
{
	struct els_mgmt_req req;
	struct els_cmd_err e = {0};
	char *resp = NULL;
	char text[256];

	/* The endpoint checked all of this; checking again costs little and means a bug or a
	 * compromise there cannot widen what a role may do here. */
	if (els_mgmt_request_check(json, len, role, &req, &resp, outcome) < 0) {
		els_mgmt_audit_text(text, sizeof(((struct els_record *)0)->detail), identity,
				    els_mgmt_role_name(role), peer, req.cmd_name, *outcome, "");
		audit_push(c, text);
		els_metrics_note_mgmt_refusal();
		char id[128];
		els_alert_limited(ELS_R_MGMT_REFUSED,
				  "identity=\"%s\" role=%s peer=%s cmd=%s outcome=%s",
				  els_alert_clean(id, sizeof(id), identity), els_mgmt_role_name(role),
				  peer, req.cmd_name, *outcome);
		return resp;
	}
	json_t *result = NULL;
	c->identity = identity;
	c->role = role;
	if (checks_policy(req.cmd)) {
		if (start_check(c, identity, role, peer, conn, &req, &e) == 0) {
			json_decref(req.json);
			*outcome = "pending";
			return NULL;
		}
	} else {
		for (size_t i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++)
			if (strcmp(cmd_table[i].name, req.cmd) == 0) {
				result = cmd_table[i].fn(c, req.args, &e);
				break;
			}
	}
	resp = finish_request(c, identity, role, peer, req.cmd, req.id, result, &e, outcome);
	json_decref(req.json);
	return resp;
}

static void send_response(struct els_control *c, uint32_t conn, char *resp);
void els_control_send_response(struct els_control *c, uint32_t conn, char *resp)
{
	send_response(c, conn, resp);
}

static void pend_clear(struct els_control *c)
{
	json_decref(c->pend.args);
	free(c->pend.text);
	memset(&c->pend, 0, sizeof(c->pend));
}

int els_control_check_fd(const struct els_control *c)
{
	return c ? els_check_fd(&c->check) : -1;
}

int els_control_check_timeout_ms(const struct els_control *c)
{
	return c ? els_check_timeout_ms(&c->check) : -1;
}

void els_control_check_io(struct els_control *c)
{
	struct els_check_result *r;
	struct els_cmd_err e = {0};
	const char *outcome = "internal";

	if (!c || !c->pend.active)
		return;
	r = malloc(sizeof(*r));
	if (!r)
		return; /* tried again on the next turn */
	if (!els_check_poll(&c->check, r)) {
		free(r);
		return;
	}
	c->identity = c->pend.identity;
	c->role = c->pend.role;
	json_t *result = els_cmd_policy_checked(c, c->pend.cmd, c->pend.args, c->pend.text,
						c->pend.len, r, &e);
	free(r);
	char *resp = finish_request(c, c->pend.identity, c->pend.role, c->pend.peer, c->pend.cmd,
				    c->pend.id, result, &e, &outcome);
	uint32_t conn = c->pend.conn;
	bool orphan = c->pend.orphan;
	pend_clear(c);
	c->identity = NULL;
	if (orphan)
		free(resp);
	else
		send_response(c, conn, resp);
}

/* ---- channel ---- */

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
		audit_push(c, why);
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
	pend_clear(c);
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

/* A request from the endpoint: peer certificates, peer address, JSON (ipc.h). The role comes
 * from verifying the certificates here, never from the endpoint: a compromised endpoint can
 * only act as a valid certificate of the CA, at the time of the request. */
static void on_request(struct els_control *c, struct els_ipc_msg *m)
{
	char identity[65] = "?", why[128] = "";
	const char *outcome = "internal";
	char *resp = NULL;

	if (m->len < 4) {
		els_log(ELS_LL_WARNING, "management: malformed request from the endpoint");
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
		els_log(ELS_LL_WARNING, "management: malformed request from the endpoint");
		return;
	}
	const char *json = nul + 1;
	size_t jlen = m->len - (size_t)(json - (const char *)m->body);
	int role = c->trust ? els_mgmt_trust_role(c->trust, m->body + 4, derlen, identity,
						  sizeof(identity), why, sizeof(why))
			    : ELS_ROLE_NONE;
	if (role == ELS_ROLE_NONE) {
		char text[96], detail[80], id[128];
		outcome = "forbidden";
		snprintf(detail, sizeof(detail), " (%s)", why[0] ? why : "no trust anchors");
		els_mgmt_audit_text(text, sizeof(text), identity, "none", peer, "?", outcome,
				    detail);
		audit_push(c, text);
		els_alert_limited(ELS_R_MGMT_REFUSED, "identity=\"%s\" peer=%s outcome=%s why=\"%s\"",
				  els_alert_clean(id, sizeof(id), identity), peer, outcome,
				  why[0] ? why : "no trust anchors");
		resp = els_mgmt_error(-1, "forbidden", NULL,
				      "the agent does not accept this client's certificate: %s",
				      why[0] ? why : "no trust anchors");
	} else {
		resp = els_control_execute(c, identity, role, peer, m->conn, json, jlen,
					   &outcome);
		if (!resp && strcmp(outcome, "pending") == 0)
			return; /* answered by els_control_check_io() */
	}
	send_response(c, m->conn, resp);
}

static void on_message(struct els_control *c, struct els_ipc_msg *m)
{
	if (m->type == ELS_IPC_AUDIT || m->type == ELS_IPC_NOTE) {
		audit_push(c, (const char *)m->body);
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
	on_request(c, m);
}

/* Sends resp (taken; NULL: out of memory) to the endpoint for connection conn. */
static void send_response(struct els_control *c, uint32_t conn, char *resp)
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
		audit_push(c, "mgmt: CRL file changed, reloaded");
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
		audit_push(c, done);
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
