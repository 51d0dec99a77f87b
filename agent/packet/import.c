/* The import at start (see import.h): gather, judge, build the adoption set. */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "els/addr.h"
#include "els/chain.h"
#include "els/clock.h"
#include "els/log.h"
#include "els/sessions.h"
#include "els/worker_out.h"
#include "import.h"

int els_import_list_add(struct els_import_list *l, const struct els_import_conn *c)
{
	if (l->n >= l->limit) {
		l->dropped++;
		return -ENOSPC;
	}
	if (l->n == l->cap) {
		uint32_t cap = l->cap ? l->cap * 2 : 256;
		struct els_import_conn *nc = realloc(l->c, (size_t)cap * sizeof(*nc));
		if (!nc)
			return -ENOMEM;
		l->c = nc;
		l->cap = cap;
	}
	l->c[l->n++] = *c;
	return 0;
}

int els_import_local_load(struct els_import_local *l)
{
	struct ifaddrs *ifs, *i;
	unsigned n = 0;

	memset(l, 0, sizeof(*l));
	if (getifaddrs(&ifs) < 0)
		return -errno;
	for (i = ifs; i; i = i->ifa_next)
		n += i->ifa_addr &&
		     (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6);
	l->a = calloc(n ? n : 1, sizeof(*l->a));
	l->family = calloc(n ? n : 1, 1);
	if (!l->a || !l->family) {
		freeifaddrs(ifs);
		els_import_local_free(l);
		return -ENOMEM;
	}
	for (i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			memcpy(l->a[l->n].b, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
			l->family[l->n++] = ELS_AF_INET;
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			memcpy(l->a[l->n].b, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
			l->family[l->n++] = ELS_AF_INET6;
		}
	}
	freeifaddrs(ifs);
	return 0;
}

void els_import_local_free(struct els_import_local *l)
{
	free(l->a);
	free(l->family);
	memset(l, 0, sizeof(*l));
}

bool els_import_is_local(const struct els_import_local *l, uint8_t family, const struct els_addr *a)
{
	for (unsigned i = 0; i < l->n; i++)
		if (l->family[i] == family && memcmp(&l->a[i], a, sizeof(*a)) == 0)
			return true;
	return false;
}

/* The first packet of c as the initiator sent it: a SYN for TCP. */
static void first_packet(const struct els_import_conn *c, struct els_pkt *p)
{
	memset(p, 0, sizeof(*p));
	p->family = c->family;
	p->proto = c->proto;
	p->dir = c->dir;
	p->src = c->init_addr;
	p->dst = c->resp_addr;
	p->sport = c->init_port;
	p->dport = c->resp_port;
	p->flags = ELS_PKT_HAS_PORTS;
	p->tcp_flags = c->proto == IPPROTO_TCP ? ELS_TCP_SYN : 0;
	p->wire_len = c->family == ELS_AF_INET ? 60 : 80;
}

/* The flow c would be in a worker's table, before any packet (for the session index). */
static void flow_of(const struct els_import_conn *c, struct els_flow *f)
{
	struct els_pkt p;

	memset(f, 0, sizeof(*f));
	first_packet(c, &p);
	els_flow_key_of(&p, &f->key, &f->init_side);
	f->init_dir = c->dir;
	f->state = c->state;
}

struct tally {
	unsigned granted, cut, observed;
};

/* Scratch per-worker state for the judgement: it keeps what the judgement touches (session
 * counts, scan counts, alerts) out of the workers'. */
struct scratch {
	struct els_sessions *sessions;
	struct els_worker_out *out;
	void **hstates;
	uint64_t now_ns, real_ns;
};

/* Judges c with p's chain as its first packet would be judged and adds it to set. */
static void judge(const struct els_policy *p, const struct scratch *ws,
		  const struct els_import_conn *c, struct els_adopt *set, struct tally *t)
{
	struct els_pkt pkt;
	struct els_decision d;
	struct els_adopt_entry e;
	struct els_flow f;
	/* No flow table: the tracker stands aside, as for any first packet. */
	struct els_ctx ctx = {.pkt = &pkt,
			      .sessions = ws->sessions,
			      .out = ws->out,
			      .hstates = ws->hstates,
			      .now_ns = ws->now_ns,
			      .real_ns = ws->real_ns,
			      .generation = p->generation,
			      .origin = 1};
	char a[64], b[64]; /* INET6_ADDRSTRLEN fits */

	first_packet(c, &pkt);
	els_chain_run(p, &ctx, &d);
	flow_of(c, &f);
	memset(&e, 0, sizeof(e));
	e.key = f.key;
	e.init_side = f.init_side;
	e.init_dir = c->dir;
	e.state = c->state;
	e.handler = d.handler;
	e.why = d.reason;
	e.generation = p->generation;
	if (d.action == ELS_ACCEPT && !(d.flags & ELS_DEC_OBSERVE)) {
		e.verdict = ELS_ADOPT_GRANT;
		e.rule = d.rule;
		if (d.flags & ELS_DEC_GATED)
			e.generation = 0; /* judged packet by packet, as the tracker does */
	} else {
		e.verdict = d.action == ELS_ACCEPT ? ELS_ADOPT_CUT_OBSERVE : ELS_ADOPT_CUT;
	}
	if (els_adopt_add(set, &e) < 0)
		return; /* the same connection from a second source */
	if (e.verdict == ELS_ADOPT_GRANT)
		t->granted++;
	else if (e.verdict == ELS_ADOPT_CUT)
		t->cut++;
	else
		t->observed++;
	if (e.verdict != ELS_ADOPT_GRANT) {
		els_addr_str(&c->init_addr, c->family, a);
		els_addr_str(&c->resp_addr, c->family, b);
		els_log(ELS_LL_DEBUG, "start: %s connection %s %s:%u -> %s:%u not permitted (%s)%s",
			c->proto == IPPROTO_TCP ? "tcp" : "udp",
			c->dir == ELS_DIR_IN ? "in" : "out", a, c->init_port, b, c->resp_port,
			els_reason_name(d.reason),
			e.verdict == ELS_ADOPT_CUT ? ": cut at its next packet"
						   : ": observe mode, passes");
	}
}

struct els_adopt *els_import_flows(const struct els_policy *p, struct els_ring *ring,
				   uint32_t limit)
{
	struct els_import_list l = {.limit = limit};
	struct els_import_local local;
	struct els_adopt *set = NULL;
	struct scratch ws = {0};
	struct tally t = {0};
	unsigned unmarked = 0;
	int nsock, nct = -ENOENT;
	uint64_t seed;

	nsock = els_import_sockets(&l);
	if (nsock < 0)
		els_log(ELS_LL_WARNING,
			"start: cannot read this host's TCP sockets (sock_diag): %s",
			strerror(-nsock));
	int rc = els_import_local_load(&local);
	if (rc < 0) {
		els_log(ELS_LL_WARNING,
			"start: cannot list local addresses: %s; conntrack "
			"entries are not adopted",
			strerror(-rc));
	} else {
		nct = els_import_conntrack(&l, &local, &unmarked);
		els_import_local_free(&local);
		if (nct < 0)
			els_log(ELS_LL_INFO,
				"start: conntrack not readable (%s): only TCP "
				"connections from sockets are adopted",
				strerror(-nct));
	}
	if (l.dropped)
		els_log(ELS_LL_WARNING,
			"start: %u existing connections beyond the flow capacity "
			"(%u) are not adopted: their packets meet an empty table",
			l.dropped, limit);
	if (!l.n)
		goto out;
	if (getentropy(&seed, sizeof(seed)) < 0)
		seed = els_now_real();
	set = els_adopt_new(l.n, seed);
	ws.sessions = els_sessions_new(l.n);
	ws.out = els_worker_out_new(NULL, false);
	ws.hstates = els_handler_states_new(&(struct els_worker_env){.flow_capacity = l.n});
	if (!set || !ws.sessions || !ws.out || !ws.hstates) {
		els_log(ELS_LL_ERROR,
			"start: out of memory for %u existing connections: none "
			"adopted",
			l.n);
		els_adopt_free(set);
		set = NULL;
		goto out;
	}
	set->start_ns = els_now_mono();
	set->generation = p->generation;
	/* Session-gated permits ask whether the remote holds an established session: the
	 * sessions that exist now are the connections found. */
	for (uint32_t i = 0; i < l.n; i++) {
		struct els_flow f;
		if (l.c[i].state != ELS_FS_ESTABLISHED)
			continue;
		flow_of(&l.c[i], &f);
		els_sessions_change(ws.sessions, &f, 1, set->start_ns);
	}
	ws.now_ns = set->start_ns;
	ws.real_ns = els_now_real();
	for (uint32_t i = 0; i < l.n; i++)
		judge(p, &ws, &l.c[i], set, &t);
out:
	els_log(ELS_LL_INFO,
		"start: adopted %u existing connections (%d from sockets, %d from conntrack, %u "
		"offload marks cleared): %u permitted, %u cut at their next packet, %u passed "
		"by observe mode",
		t.granted + t.cut + t.observed, nsock < 0 ? 0 : nsock, nct < 0 ? 0 : nct, unmarked,
		t.granted, t.cut, t.observed);
	if (ring)
		els_push_event(ring, p->generation,
			       "adopt: %u connections, %u permitted, %u cut, %u observed",
			       t.granted + t.cut + t.observed, t.granted, t.cut, t.observed);
	els_handler_states_free(ws.hstates);
	els_worker_out_free(ws.out);
	els_sessions_free(ws.sessions);
	free(l.c);
	return set;
}
