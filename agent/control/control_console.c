/* Requests from the console connection, main-process side (docs/console-protocol.md). The
 * endpoint forwards the console's certificates with each request, as it does a client's; here
 * they are verified against the console CA and CRL this process reads itself, as a TLS server
 * certificate with the role console naming the host elsd dials. Only then is the request's
 * on_behalf_of believed: the role it states is the one the request runs with (missing:
 * auditor), and the monitor record names "WHO via CONSOLE". Everything after that is the
 * listener's path: els_control_execute, the same role table, checks and records. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "control_int.h"
#include "els/log.h"
#include "els/mgmt.h"
#include "mgmt.h"

void els_control_set_console(struct els_control *c, struct els_mgmt_trust *trust, const char *host)
{
	els_mgmt_trust_free(c->console_trust);
	free(c->console_host);
	c->console_trust = trust;
	c->console_host = host ? strdup(host) : NULL;
}

int els_control_send_dial(struct els_control *c, int fd, const char *addr)
{
	if (!c || !c->open)
		return -ENOTCONN;
	return els_ipc_send_fd(&c->ipc, ELS_IPC_DIAL, addr, strlen(addr), fd);
}

void els_control_send_state(struct els_control *c, const char *json)
{
	if (c && c->open)
		els_ipc_send(&c->ipc, ELS_IPC_DIAL_STATE, 0, json, strlen(json));
}

void els_control_dial_status(struct els_control *c, const char *text)
{
	char clean[200];
	size_t o = 0;
	/* From the endpoint: printable ASCII only into the log and the monitor. */
	for (const unsigned char *s = (const unsigned char *)text; *s && o + 1 < sizeof(clean); s++)
		clean[o++] = *s >= 0x20 && *s < 0x7f ? (char)*s : '?';
	clean[o] = 0;
	bool up = strncmp(clean, "up ", 3) == 0;
	if (c->env.dial_status)
		c->env.dial_status(c->env.arg, up, up ? clean + 3 : clean + (o > 5 ? 5 : o));
}

void els_control_console_request(struct els_control *c, struct els_ipc_msg *m)
{
	char cn[65] = "?", identity[65], why[128] = "";
	const char *outcome = "internal";

	if (m->len < 4) {
		els_log(ELS_LL_WARNING, "management: malformed console request from the endpoint");
		return;
	}
	size_t derlen = (size_t)m->body[0] << 24 | (size_t)m->body[1] << 16 |
			(size_t)m->body[2] << 8 | m->body[3];
	bool fits = derlen <= ELS_MGMT_PEER_MAX && derlen < m->len - 4;
	const char *peer = fits ? (const char *)m->body + 4 + derlen : NULL;
	const char *nul = fits ? memchr(peer, 0, m->len - 4 - derlen) : NULL;
	bool printable = nul && nul > peer;
	for (const char *q = peer; printable && q < nul; q++)
		printable = *q > 0x20 && *q < 0x7f;
	if (!nul || nul - peer > 63 || !printable) {
		els_log(ELS_LL_WARNING, "management: malformed console request from the endpoint");
		return;
	}
	const char *json = nul + 1;
	size_t jlen = m->len - (size_t)(json - (const char *)m->body);
	bool ok = c->console_trust && c->console_host &&
		  els_mgmt_trust_console(c->console_trust, m->body + 4, derlen, c->console_host, cn,
					 sizeof(cn), why, sizeof(why));
	char *resp;
	if (!ok) {
		char text[96], detail[80], id[128];
		outcome = "forbidden";
		snprintf(detail, sizeof(detail), " (%s)", why[0] ? why : "no console settings");
		els_mgmt_audit_text(text, sizeof(text), cn, "console", peer, "?", outcome, detail);
		els_control_audit(c, text);
		els_alert_limited(ELS_R_MGMT_REFUSED,
				  "identity=\"%s\" peer=%s outcome=%s why=\"%s\" via=console",
				  els_alert_clean(id, sizeof(id), cn), peer, outcome,
				  why[0] ? why : "no console settings");
		resp = els_mgmt_error(-1, "forbidden", NULL,
				      "the agent does not accept this console's certificate: %s",
				      why[0] ? why : "no console settings");
	} else {
		/* A role the agent does not know (or none stated with on_behalf_of) is
		 * ELS_ROLE_NONE: the request check refuses every command, as for a
		 * certificate without a role. */
		int role = els_mgmt_on_behalf(json, jlen, cn, identity, sizeof(identity));
		resp = els_control_execute(c, identity, role, peer, m->conn, json, jlen, &outcome);
		if (!resp && strcmp(outcome, "pending") == 0)
			return;
	}
	els_control_send(c, m->conn, resp);
}

void els_control_console_crl(struct els_control *c, bool force)
{
	char err[256];
	if (!c || !c->console_trust)
		return;
	int rc = els_mgmt_trust_reload_crl(c->console_trust, force, err, sizeof(err));
	if (rc < 0) {
		els_log(ELS_LL_ERROR, "console: %s; keeping the old CRL", err);
		return;
	}
	if (rc == 0)
		return;
	if (!force)
		els_control_audit(c, "mgmt: console CRL file changed, reloaded");
	size_t len;
	const char *pem = els_mgmt_trust_crl(c->console_trust, &len);
	int s = c->open ? els_ipc_send(&c->ipc, ELS_IPC_CONSOLE_CRL, 0, pem, len) : 0;
	if (s < 0)
		els_log(ELS_LL_ERROR, "console: cannot send the CRL to the endpoint: %s",
			strerror(-s));
}
