/* Established TCP connections against a policy (see sessions.h). The kernel lists them over
 * NETLINK_SOCK_DIAG (inet_diag_req_v2), which works under the shipped unit's hardening where
 * /proc/net may be hidden. Each connection is judged as the SYN that opened it: inbound when
 * something listens on its local port, outbound otherwise. */
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alert.h"
#include "els/addr.h"
#include "els/clock.h"
#include "log.h"
#include "sessions.h"

#define TCP_ESTABLISHED_STATE 1
#define TCP_LISTEN_STATE      10

struct conn {
	uint8_t family; /* ELS_AF_INET or ELS_AF_INET6 */
	struct els_addr local, remote;
	uint16_t lport, rport;
};

struct conns {
	struct conn *c;
	size_t n, cap;
};

/* ::ffff:a.b.c.d, as a dual-stack socket reports an IPv4 peer, is IPv4 on the wire. */
static void unmap(struct conn *c)
{
	static const uint8_t prefix[12] = {[10] = 0xff, [11] = 0xff};
	if (c->family != ELS_AF_INET6 || memcmp(c->local.b, prefix, 12) ||
	    memcmp(c->remote.b, prefix, 12))
		return;
	c->family = ELS_AF_INET;
	memmove(c->local.b, c->local.b + 12, 4);
	memset(c->local.b + 4, 0, 12);
	memmove(c->remote.b, c->remote.b + 12, 4);
	memset(c->remote.b + 4, 0, 12);
}

static int dump(struct conns *out, uint8_t family, uint32_t states)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req = {
	    .nh = {.nlmsg_len = sizeof(req),
		   .nlmsg_type = SOCK_DIAG_BY_FAMILY,
		   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		   .nlmsg_seq = 1},
	    .r = {.sdiag_family = family, .sdiag_protocol = IPPROTO_TCP, .idiag_states = states},
	};
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	long buf[8192 / sizeof(long)];
	int rc = 0, fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	if (fd < 0)
		return -errno;
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				goto out;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				rc = e->error ? e->error : -EIO;
				goto out;
			}
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
				continue;
			const struct inet_diag_msg *m = NLMSG_DATA(h);
			if (out->n == out->cap) {
				size_t cap = out->cap ? out->cap * 2 : 64;
				struct conn *c = realloc(out->c, cap * sizeof(*c));
				if (!c) {
					rc = -ENOMEM;
					goto out;
				}
				out->c = c;
				out->cap = cap;
			}
			struct conn *c = &out->c[out->n++];
			size_t alen = family == AF_INET ? 4 : 16;
			memset(c, 0, sizeof(*c));
			c->family = family == AF_INET ? ELS_AF_INET : ELS_AF_INET6;
			memcpy(c->local.b, m->id.idiag_src, alen);
			memcpy(c->remote.b, m->id.idiag_dst, alen);
			c->lport = ntohs(m->id.idiag_sport);
			c->rport = ntohs(m->id.idiag_dport);
			unmap(c);
		}
	}
out:
	close(fd);
	return rc;
}

static bool loopback(uint8_t family, const struct els_addr *a)
{
	static const uint8_t v6lo[16] = {[15] = 1};
	return family == ELS_AF_INET ? a->b[0] == 127 : !memcmp(a->b, v6lo, 16);
}

static bool is_zero(const struct els_addr *a)
{
	static const struct els_addr zero;
	return !memcmp(a, &zero, sizeof(zero));
}

/* Inbound when a listener holds the connection's local port on its address or on any. */
static bool inbound(const struct conns *listen, const struct conn *c)
{
	for (size_t i = 0; i < listen->n; i++) {
		const struct conn *l = &listen->c[i];
		if (l->lport != c->lport)
			continue;
		if (is_zero(&l->local) ||
		    (l->family == c->family && !memcmp(&l->local, &c->local, sizeof(c->local))))
			return true;
	}
	return false;
}

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
	struct conns est = {0}, listen = {0};
	int rc = 0, cut = 0;
	static const uint8_t fams[] = {AF_INET, AF_INET6};

	for (size_t i = 0; i < sizeof(fams) && rc == 0; i++) {
		rc = dump(&est, fams[i], 1u << TCP_ESTABLISHED_STATE);
		if (rc == 0)
			rc = dump(&listen, fams[i], 1u << TCP_LISTEN_STATE);
	}
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < est.n; i++) {
		const struct conn *c = &est.c[i];
		if (loopback(c->family, &c->local) || loopback(c->family, &c->remote) ||
		    !memcmp(&c->local, &c->remote, sizeof(c->local)))
			continue; /* over lo, which the steering rules accept */
		bool in = inbound(&listen, c);
		struct els_pkt pkt = {.family = c->family,
				      .proto = 6,
				      .flags = ELS_PKT_HAS_PORTS,
				      .tcp_flags = ELS_TCP_SYN,
				      .wire_len = c->family == ELS_AF_INET ? 60 : 80};
		pkt.dir = in ? ELS_DIR_IN : ELS_DIR_OUT;
		pkt.src = in ? c->remote : c->local;
		pkt.dst = in ? c->local : c->remote;
		pkt.sport = in ? c->rport : c->lport;
		pkt.dport = in ? c->lport : c->rport;
		struct els_ctx ctx = {
		    .pkt = &pkt, .now_ns = els_now_mono(), .generation = p->generation};
		struct els_decision d;
		bool observe = false;
		if (els_chain_run(p, &ctx, &d) == ELS_ACCEPT) {
			if (!(d.flags & ELS_DEC_OBSERVE))
				continue;
			observe = true;
		}
		char rem[80], loc[80], svc[32], msg[400];
		endpoint(c->family, &c->remote, c->rport, rem, sizeof(rem));
		endpoint(c->family, &c->local, c->lport, loc, sizeof(loc));
		const char *end =
		    observe ? "would be cut once it enforces (it observes now)" : "will be cut";
		if (in)
			snprintf(msg, sizeof(msg),
				 "an established %s session from %s to port %u (%s) is not "
				 "permitted by %s and %s",
				 service(c->lport, svc, sizeof(svc)), rem, c->lport, loc, what,
				 end);
		else
			snprintf(msg, sizeof(msg),
				 "an established outbound %s connection from %s to %s is not "
				 "permitted by %s and %s",
				 service(c->rport, svc, sizeof(svc)), loc, rem, what, end);
		fn(arg, msg, observe);
		cut += !observe;
	}
out:
	free(est.c);
	free(listen.c);
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
