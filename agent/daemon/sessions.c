/* Established TCP connections against a policy (see sessions.h). The kernel lists them over
 * sock_diag (agent/import_sock.c, shared with the adoption at start), which works under the
 * shipped unit's hardening where /proc/net may be hidden. Each connection is judged as the SYN
 * that opened it: inbound when something listens on its local port, outbound otherwise. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alert.h"
#include "els/addr.h"
#include "els/chain.h"
#include "els/clock.h"
#include "els/flow.h"
#include "import.h"
#include "els/log.h"
#include "sessions.h"

static void endpoint(uint8_t family, const struct els_addr *a, uint16_t port, char *buf, size_t n)
{
	char s[ELS_ADDR_STRLEN];
	els_addr_str(a, family, s);
	snprintf(buf, n, family == ELS_AF_INET6 ? "[%s]:%u" : "%s:%u", s, port);
}

static const char *service(uint16_t port, char *buf, size_t n)
{
	const struct servent *se = getservbyport(htons(port), "tcp");
	snprintf(buf, n, "%s", se ? se->s_name : "TCP");
	return buf;
}

int els_sessions_check(const struct els_policy *p, const char *what, els_sessions_fn *fn, void *arg)
{
	/* The same view of the host's connections as the adoption at start (agent/import.h):
	 * loopback left out, the direction from the listening sockets. */
	struct els_import_list l = {.limit = UINT32_MAX};
	int rc = els_import_sockets(&l), cut = 0;

	for (uint32_t i = 0; rc >= 0 && i < l.n; i++) {
		const struct els_import_conn *c = &l.c[i];
		if (c->state != ELS_FS_ESTABLISHED)
			continue; /* closing: nothing left to cut */
		bool in = c->dir == ELS_DIR_IN;
		struct els_pkt pkt = {.family = c->family,
				      .proto = IPPROTO_TCP,
				      .dir = c->dir,
				      .flags = ELS_PKT_HAS_PORTS,
				      .tcp_flags = ELS_TCP_SYN,
				      .src = c->init_addr,
				      .dst = c->resp_addr,
				      .sport = c->init_port,
				      .dport = c->resp_port,
				      .wire_len = c->family == ELS_AF_INET ? 60 : 80};
		struct els_ctx ctx = {
		    .pkt = &pkt, .now_ns = els_now_mono(), .generation = p->generation, .origin = 1};
		struct els_decision d;
		bool observe = false;
		if (els_chain_run(p, &ctx, &d) == ELS_ACCEPT) {
			if (!(d.flags & ELS_DEC_OBSERVE))
				continue;
			observe = true;
		}
		const struct els_addr *local = in ? &c->resp_addr : &c->init_addr;
		const struct els_addr *remote = in ? &c->init_addr : &c->resp_addr;
		uint16_t lport = in ? c->resp_port : c->init_port;
		uint16_t rport = in ? c->init_port : c->resp_port;
		char rem[80], loc[80], svc[32], msg[400];
		endpoint(c->family, remote, rport, rem, sizeof(rem));
		endpoint(c->family, local, lport, loc, sizeof(loc));
		const char *end =
		    observe ? "would be cut once it enforces (it observes now)" : "will be cut";
		if (in)
			snprintf(msg, sizeof(msg),
				 "an established %s session from %s to port %u (%s) is not "
				 "permitted by %s and %s",
				 service(lport, svc, sizeof(svc)), rem, lport, loc, what, end);
		else
			snprintf(msg, sizeof(msg),
				 "an established outbound %s connection from %s to %s is not "
				 "permitted by %s and %s",
				 service(rport, svc, sizeof(svc)), loc, rem, what, end);
		fn(arg, msg, observe);
		cut += !observe;
	}
	free(l.c);
	return rc < 0 ? rc : cut;
}

/* A policy that cuts thousands of connections names the first few and counts the rest, so that
 * a reload never floods the journal. */
#define SESSIONS_NAMED 20

struct session_count {
	unsigned cut, observed;
};

static void session_warning(void *arg, const char *msg, bool observe)
{
	struct session_count *n = arg;
	char clean[400];

	if (observe) {
		if (n->observed++ < SESSIONS_NAMED)
			els_log(ELS_LL_INFO, "%s", msg);
		return;
	}
	if (n->cut++ >= SESSIONS_NAMED)
		return;
	els_log(ELS_LL_WARNING, "%s", msg);
	els_alert(ELS_R_SESSION_CUT, "detail=\"%s\"", els_alert_clean(clean, sizeof(clean), msg));
}

void els_sessions_warn(const struct els_policy *p, const char *what)
{
	struct session_count n = {0};
	int rc = els_sessions_check(p, what, session_warning, &n);
	if (rc < 0)
		els_log(ELS_LL_WARNING,
			"cannot list established connections (sock_diag: %s): sessions that %s "
			"cuts are not named",
			strerror(-rc), what);
	if (n.cut > SESSIONS_NAMED) {
		els_log(ELS_LL_WARNING, "... and %u more established connections %s will cut",
			n.cut - SESSIONS_NAMED, what);
		els_alert(ELS_R_SESSION_CUT, "count=%u detail=\"%u established connections cut\"",
			  n.cut, n.cut);
	}
	if (n.observed > SESSIONS_NAMED)
		els_log(ELS_LL_INFO, "... and %u more that %s would cut once it enforces",
			n.observed - SESSIONS_NAMED, what);
}
