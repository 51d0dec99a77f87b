/* Requests from the console connection, main-process side (docs/console-protocol.md). The
 * endpoint forwards the console's certificates with each request, as it does a client's; here
 * they are verified against the console CA and CRL this process reads itself, as a TLS server
 * certificate with the role console naming the host elsd dials. Only then is the request's
 * on_behalf_of believed: the role it states is the one the request runs with (missing:
 * auditor), and the monitor record names "WHO via CONSOLE". Everything after that is the
 * listener's path: els_control_execute, the same role table, checks and records. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

/* The console's certificates, as a TLS server naming the host dialled; then the role and
 * identity its request states on_behalf_of (a role the agent does not know, or none stated
 * with on_behalf_of, is ELS_ROLE_NONE: the request check refuses every command, as for a
 * certificate without a role). Refused: identity is the console's CN. */
static bool console_verify(struct els_control *c, const uint8_t *der, size_t derlen,
			   const char *json, size_t jlen, char identity[65], int *role, char *why,
			   size_t whylen)
{
	char cn[65] = "?";
	bool ok = c->console_trust && c->console_host &&
		  els_mgmt_trust_console(c->console_trust, der, derlen, c->console_host, cn,
					 sizeof(cn), why, whylen);
	if (!ok) {
		memcpy(identity, cn, sizeof(cn));
		return false;
	}
	*role = els_mgmt_on_behalf(json, jlen, cn, identity, 65);
	return true;
}

static const struct els_control_source console_source = {
    .what = "console request",
    .role_name = "console",
    .whose = "console's",
    .via = " via=console",
    .no_trust = "no console settings",
    .verify = console_verify,
};

void els_control_console_request(struct els_control *c, struct els_ipc_msg *m)
{
	els_control_request(c, m, &console_source);
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
