/* Management requests, main-process side: the channel to the endpoint, dispatch, audit, and
 * the read commands (status, stats, flows, log). See control.h. */
#include <errno.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "control.h"
#include "els/mgmt.h"
#include "els/query.h"
#include "ipc.h"
#include "log.h"
#include "metrics.h"
#include "mgmt.h"

#define SNAP_MAX     10000 /* flows per worker buffer: the protocol's limit */
#define SNAP_WAIT_MS 1000  /* workers turn their loop at least every 100 ms */
#define LOG_QUERY_MS 2000  /* a log query longer than this is cut */

struct els_control {
	struct els_control_env env;
	struct els_ipc ipc;
	bool open;
	pid_t pid;
	char *crl_path;
	char *monitor_path;   /* own copy: the policy that named it is freed at the next reload */
	const char *identity; /* of the request being executed */
	int role;
	struct els_flow **snap_bufs; /* per worker, allocated on first use, kept: see worker.h */
	struct els_sweep_job sweep;
};

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

/* ---- read commands ---- */

static json_t *cmd_status(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	const struct els_policy *p = c->env.running(c->env.arg);
	char host[256] = "";
	(void)args;
	(void)e;

	gethostname(host, sizeof(host) - 1);
	json_t *queues = json_array();
	for (unsigned i = 0; i < c->env.nq; i++) {
		const struct els_worker_stats *st = &c->env.workers[i].st;
		json_array_append_new(
		    queues, json_pack("{s:i,s:I,s:I,s:I,s:I,s:I,s:I}", "queue",
				      (json_int_t)c->env.workers[i].queue, "packets",
				      (json_int_t)atomic_load(&st->packets), "accepted",
				      (json_int_t)atomic_load(&st->accepted), "dropped",
				      (json_int_t)atomic_load(&st->dropped), "decode_errors",
				      (json_int_t)atomic_load(&st->decode_errors), "enobufs",
				      (json_int_t)atomic_load(&st->enobufs), "verdict_errors",
				      (json_int_t)atomic_load(&st->verdict_errors)));
	}
	struct els_monitor_stats ms = {0};
	if (c->env.mon)
		els_monitor_get_stats(c->env.mon, &ms);
	return json_pack(
	    "{s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:b,s:o,s:{s:I,s:I,s:I,s:I},s:{s:s,s:s}}", "version",
	    ELS_VERSION, "hostname", host, "pid", (json_int_t)getpid(), "uptime_s",
	    (json_int_t)((els_now_mono() - c->env.start_mono_ns) / 1000000000u), "generation",
	    (json_int_t)p->generation, "policy_path", c->env.config_path, "policy_sha256", p->hash,
	    "fail_open", p->set.fail_open, "queues", queues, "monitor", "written",
	    (json_int_t)ms.written, "lost", (json_int_t)ms.lost, "write_errors",
	    (json_int_t)ms.write_errors, "write_lost", (json_int_t)ms.write_lost, "client",
	    "identity", c->identity ? c->identity : "", "role", els_mgmt_role_name(c->role));
}

static json_t *cmd_stats(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	const struct els_policy *p = c->env.running(c->env.arg);
	const struct els_handler *const *all = els_handler_all();
	json_t *chain = json_array(), *hs = json_array();
	unsigned nreg = 0;
	(void)args;
	(void)e;

	while (all[nreg] && nreg < ELS_STATS_HANDLERS)
		nreg++;

	for (unsigned i = 0; i < p->nlinks; i++)
		json_array_append_new(chain, json_string(p->links[i].h->name));
	for (unsigned slot = 0; slot < ELS_STATS_HANDLERS + 2; slot++) {
		const char *name;
		bool in_chain = false;
		if (slot == ELS_STATS_DECODE) {
			name = "decode";
		} else if (slot == ELS_STATS_CHAIN) {
			name = "chain";
		} else {
			if (slot >= nreg)
				continue;
			name = all[slot]->name;
			for (unsigned i = 0; i < p->nlinks; i++)
				in_chain |= p->links[i].h == all[slot];
		}
		uint64_t acc = 0, drop = 0;
		for (unsigned w = 0; w < c->env.nq; w++) {
			acc += atomic_load_explicit(&c->env.workers[w].st.decided[slot][0],
						    memory_order_relaxed);
			drop += atomic_load_explicit(&c->env.workers[w].st.decided[slot][1],
						     memory_order_relaxed);
		}
		json_array_append_new(hs, json_pack("{s:s,s:b,s:I,s:I}", "name", name, "in_chain",
						    in_chain, "accepted", (json_int_t)acc,
						    "dropped", (json_int_t)drop));
	}
	return json_pack("{s:I,s:o,s:o}", "generation", (json_int_t)p->generation, "chain", chain,
			 "handlers", hs);
}

static json_t *cmd_flows(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	json_t *jl = json_object_get(args, "limit");
	uint32_t limit = jl ? (uint32_t)json_integer_value(jl) : 100;
	const struct els_policy *p = c->env.running(c->env.arg);
	bool asked[c->env.nq ? c->env.nq : 1];

	if (!c->snap_bufs)
		c->snap_bufs = calloc(c->env.nq, sizeof(*c->snap_bufs));
	if (!c->snap_bufs) {
		els_cmd_fail(e, "internal", "out of memory");
		return NULL;
	}
	for (unsigned i = 0; i < c->env.nq; i++) {
		struct els_worker *w = &c->env.workers[i];
		uint32_t done = atomic_load_explicit(&w->snap.done, memory_order_acquire);
		asked[i] = false;
		/* A worker that has not answered an earlier request may still write into its
		 * buffer: leave it alone. */
		if (atomic_load_explicit(&w->snap.req, memory_order_relaxed) != done)
			continue;
		if (!c->snap_bufs[i])
			c->snap_bufs[i] = malloc(SNAP_MAX * sizeof(struct els_flow));
		if (!c->snap_bufs[i])
			continue;
		w->snap.buf = c->snap_bufs[i];
		w->snap.max = limit;
		atomic_store_explicit(&w->snap.req, done + 1, memory_order_release);
		asked[i] = true;
	}
	for (unsigned waited = 0; waited < SNAP_WAIT_MS; waited++) {
		bool all = true;
		for (unsigned i = 0; i < c->env.nq; i++)
			if (asked[i] && atomic_load_explicit(&c->env.workers[i].snap.done,
							     memory_order_acquire) !=
					    atomic_load_explicit(&c->env.workers[i].snap.req,
								 memory_order_relaxed))
				all = false;
		if (all)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	uint64_t now = els_now_mono(), total = 0;
	uint32_t n = 0;
	bool missing = false;
	json_t *flows = json_array();
	for (unsigned i = 0; i < c->env.nq; i++) {
		struct els_worker *w = &c->env.workers[i];
		if (!asked[i] || atomic_load_explicit(&w->snap.done, memory_order_acquire) !=
				     atomic_load_explicit(&w->snap.req, memory_order_relaxed)) {
			missing = true;
			continue;
		}
		total += w->snap.total;
		for (uint32_t k = 0; k < w->snap.count && n < limit; k++, n++) {
			const struct els_flow *f = &w->snap.buf[k];
			unsigned is = f->init_side & 1, rs = is ^ 1;
			char a[ELS_ADDR_STRLEN], b[ELS_ADDR_STRLEN], pb[8];
			json_array_append_new(
			    flows,
			    json_pack(
				"{s:i,s:i,s:s,s:s,s:i,s:s,s:i,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,"
				"s:I,s:I}",
				"queue", (int)w->queue, "family", (int)f->key.family, "proto",
				els_proto_name(f->key.proto, pb), "src",
				els_addr_str(&f->key.addr[is], f->key.family, a), "sport",
				(int)f->key.port[is], "dst",
				els_addr_str(&f->key.addr[rs], f->key.family, b), "dport",
				(int)f->key.port[rs], "dir",
				f->init_dir == ELS_DIR_OUT ? "out" : "in", "state",
				els_flow_state_name(f->state), "age_ms",
				(json_int_t)(now > f->first_ns ? (now - f->first_ns) / 1000000 : 0),
				"idle_ms",
				(json_int_t)(now > f->last_ns ? (now - f->last_ns) / 1000000 : 0),
				"pkts_init", (json_int_t)f->pkts[0], "pkts_resp",
				(json_int_t)f->pkts[1], "bytes_init", (json_int_t)f->bytes[0],
				"bytes_resp", (json_int_t)f->bytes[1], "rule", (json_int_t)f->rule,
				"generation", (json_int_t)f->generation));
		}
	}
	if (missing && c->env.nq)
		els_log(ELS_LL_WARNING,
			"management: a worker did not answer the flows request "
			"in %d ms; its flows are missing from the answer",
			SNAP_WAIT_MS);
	return json_pack("{s:I,s:I,s:b,s:o}", "generation", (json_int_t)p->generation, "total",
			 (json_int_t)total, "truncated", total > n || missing, "flows", flows);
}

/* The query is lib/query.c's, the one els-log and elsctl use (include/els/query.h). */
static json_t *cmd_log(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	return els_query_wire(c->env.monitor_path, args, LOG_QUERY_MS, &e->code, e->msg,
			      sizeof(e->msg));
}

static json_t *cmd_sweep(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	static char *const fallback[] = {"els-sweep", NULL};
	const struct els_policy *p = c->env.running(c->env.arg);
	char *const *argv = p->set.mgmt && p->set.mgmt->sweep_argv ? p->set.mgmt->sweep_argv
								 : fallback;
	(void)args;
	int rc = els_sweep_start(&c->sweep, argv, c->identity);
	if (rc == -EBUSY) {
		els_cmd_fail(e, "busy", "a sweep started by %s is still running (pid %d)",
			     c->sweep.by, (int)c->sweep.pid);
		return NULL;
	}
	if (rc < 0) {
		els_cmd_fail(e, "internal", "cannot start %s: %s", argv[0], strerror(-rc));
		return NULL;
	}
	els_log(ELS_LL_INFO, "sweep started by %s: %s (pid %d)", c->identity, argv[0],
		(int)c->sweep.pid);
	return json_pack("{s:b,s:i,s:s}", "started", 1, "pid", (int)c->sweep.pid, "command",
			 argv[0]);
}

/* ---- dispatch ---- */

static const struct {
	const char *name;
	json_t *(*fn)(struct els_control *c, json_t *args, struct els_cmd_err *e);
} cmd_table[] = {
    {"status", cmd_status},
    {"stats", cmd_stats},
    {"flows", cmd_flows},
    {"log", cmd_log},
    {"policy.get", els_cmd_policy_get},
    {"policy.validate", els_cmd_policy_validate},
    {"policy.apply", els_cmd_policy_apply},
    {"policy.rollback", els_cmd_policy_rollback},
    {"list.get", els_cmd_list_get},
    {"list.add", els_cmd_list_add},
    {"list.del", els_cmd_list_del},
    {"sweep", cmd_sweep},
};

/* Requests that make a new policy generation when they succeed (alerted either way). */
static bool changes_policy(const char *cmd)
{
	return strcmp(cmd, "policy.apply") == 0 || strcmp(cmd, "policy.rollback") == 0 ||
	       strcmp(cmd, "list.add") == 0 || strcmp(cmd, "list.del") == 0;
}

char *els_control_execute(struct els_control *c, const char *identity, int role, const char *peer,
			  const char *json, size_t len, const char **outcome)
{
	struct els_mgmt_req req;
	struct els_cmd_err e = {0};
	char *resp = NULL;
	char text[256];

	/* The endpoint checked all of this; checking again costs little and means a bug or a
	 * compromise there cannot widen what a role may do here. */
	if (els_mgmt_request_check(json, len, role, &req, &resp, outcome) < 0) {
		snprintf(text, sizeof(text), "mgmt %s/%s@%s %s: %s", identity,
			 els_mgmt_role_name(role), peer, req.cmd_name, *outcome);
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
	for (size_t i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++)
		if (strcmp(cmd_table[i].name, req.cmd) == 0) {
			result = cmd_table[i].fn(c, req.args, &e);
			break;
		}
	if (!result && !e.code)
		els_cmd_fail(&e, "internal", "out of memory");
	if (result) {
		json_t *r = json_pack("{s:i,s:I,s:b,s:o}", "v", ELS_MGMT_VERSION, "id",
				      (json_int_t)req.id, "ok", 1, "result", result);
		resp = r ? json_dumps(r, JSON_COMPACT) : NULL;
		json_decref(r);
		if (resp && strlen(resp) > ELS_MGMT_MAX_FRAME) {
			free(resp);
			resp = NULL;
			els_cmd_fail(&e, "internal",
				     "the answer is larger than %u bytes: ask for "
				     "fewer rows (limit)",
				     ELS_MGMT_MAX_FRAME);
		} else if (resp) {
			*outcome = "ok";
		} else {
			els_cmd_fail(&e, "internal", "out of memory");
		}
	}
	if (!resp) {
		resp = els_mgmt_error(req.id, e.code, e.details, "%s", e.msg);
		e.details = NULL;
		*outcome = e.code;
	}
	json_decref(e.details);
	json_decref(req.json);
	const struct els_policy *p = c->env.running(c->env.arg);
	snprintf(text, sizeof(text), "mgmt %s/%s@%s %s: %s gen %u", identity,
		 els_mgmt_role_name(role), peer, req.cmd, *outcome, p ? p->generation : 0);
	audit_push(c, text);
	if (changes_policy(req.cmd)) {
		char id[128];
		els_alert(strcmp(*outcome, "ok") == 0 ? ELS_R_POLICY_CHANGED : ELS_R_POLICY_REJECTED,
			  "generation=%u by=\"%s\" peer=%s cmd=%s outcome=%s",
			  p ? p->generation : 0, els_alert_clean(id, sizeof(id), identity), peer,
			  req.cmd, *outcome);
	}
	return resp;
}

/* ---- channel ---- */

struct els_control *els_control_new(const struct els_control_env *env, int fd, pid_t pid,
				    const char *crl_path)
{
	struct els_control *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->env = *env;
	c->pid = pid;
	c->crl_path = crl_path ? strdup(crl_path) : NULL;
	c->monitor_path = env->monitor_path ? strdup(env->monitor_path) : NULL;
	c->env.monitor_path = c->monitor_path;
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
	for (unsigned i = 0; c->snap_bufs && i < c->env.nq; i++) {
		/* Only after the workers stopped (the caller joined them). */
		c->env.workers[i].snap.buf = NULL;
		free(c->snap_bufs[i]);
	}
	free(c->snap_bufs);
	free(c->crl_path);
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
	if (m->type != ELS_IPC_REQUEST) {
		els_log(ELS_LL_WARNING, "management: ignoring message type %u from the endpoint",
			m->type);
		return;
	}
	/* identity \0 role \0 peer \0 json: each part checked, never trusted to be there. */
	const char *parts[3];
	size_t off = 0;
	for (int i = 0; i < 3; i++) {
		const char *nul = memchr(m->body + off, 0, m->len - off);
		if (!nul || nul - (const char *)m->body - off > 255) {
			els_log(ELS_LL_WARNING, "management: malformed request from the endpoint");
			return;
		}
		parts[i] = (const char *)m->body + off;
		off = (size_t)(nul - (const char *)m->body) + 1;
	}
	const char *outcome = "internal";
	char *resp = els_control_execute(c, parts[0], els_mgmt_role_parse(parts[1]), parts[2],
					 (const char *)m->body + off, m->len - off, &outcome);
	if (!resp)
		resp = els_mgmt_error(-1, "internal", NULL, "out of memory");
	int rc =
	    resp ? els_ipc_send(&c->ipc, ELS_IPC_RESPONSE, m->conn, resp, strlen(resp)) : -ENOMEM;
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
		free(m.body);
	}
}

void els_control_reload_crl(struct els_control *c)
{
	char *pem;
	size_t len;
	if (!c || !c->open || !c->crl_path)
		return;
	int rc = els_mgmt_read_file(c->crl_path, els_ipc_max_body(ELS_IPC_CRL), &pem, &len);
	if (rc < 0) {
		els_log(ELS_LL_ERROR, "management: cannot read the CRL %s: %s; keeping the old one",
			c->crl_path, strerror(-rc));
		return;
	}
	rc = els_ipc_send(&c->ipc, ELS_IPC_CRL, 0, pem, len);
	free(pem);
	if (rc < 0)
		els_log(ELS_LL_ERROR, "management: cannot send the CRL to the endpoint: %s",
			strerror(-rc));
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
