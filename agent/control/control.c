/* Management requests, main-process side: dispatch, audit, and the policy checker's pending
 * request (read commands in control_read.c, the channel to the endpoint in
 * control_channel.c). See control.h. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alert.h"
#include "control.h"
#include "control_int.h"
#include "els/mgmt.h"
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

void els_control_audit(struct els_control *c, const char *text)
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
	return els_mgmt_command_is(cmd, ELS_MGMT_CMD_CHANGES_POLICY);
}

/* Requests whose document goes through the policy checker child first. */
static bool checks_policy(const char *cmd)
{
	return els_mgmt_command_is(cmd, ELS_MGMT_CMD_CHECKS_POLICY);
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
			els_control_audit(c, text);
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
	els_control_audit(c, text);
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
		els_control_audit(c, text);
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

void els_control_pend_clear(struct els_control *c)
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
	els_control_pend_clear(c);
	c->identity = NULL;
	if (orphan)
		free(resp);
	else
		els_control_send(c, conn, resp);
}
