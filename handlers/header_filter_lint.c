/* header_filter, lint half (include/els/lint.h): permits that load but are likely mistakes.
 * First match wins among permits, so a permit whose every packet an earlier one already
 * matches never decides anything: it is dead, and usually a sign that the earlier one is
 * broader than meant. Off the packet path. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "els/cfgerr.h"
#include "els/lint.h"
#include "els/policy.h"
#include "header_filter.h"

/* Every range of b lies inside one range of a (both normalized). */
static bool set_covers(const struct els_port_set *a, const struct els_port_set *b)
{
	for (uint32_t k = 0; k < b->n; k++) {
		bool in = false;
		for (uint32_t i = 0; i < a->n && !in; i++)
			in = a->r[i].lo <= b->r[k].lo && b->r[k].hi <= a->r[i].hi;
		if (!in)
			return false;
	}
	return true;
}

/* A permit without a port list matches every port but 0 (port 0 only when named). */
static bool ports_cover(bool a_has, const struct els_port_set *a, bool b_has,
			const struct els_port_set *b)
{
	if (!a_has)
		return !b_has || b->n == 0 || b->r[0].lo != 0;
	return b_has && set_covers(a, b);
}

/* NULL: any address. */
static bool cidrs_cover(const struct els_cidr *a, uint32_t na, const struct els_cidr *b,
			uint32_t nb)
{
	if (!a)
		return true;
	if (!b)
		return false;
	for (uint32_t k = 0; k < nb; k++) {
		bool in = false;
		for (uint32_t i = 0; i < na && !in; i++)
			in = a[i].family == b[k].family && a[i].plen <= b[k].plen &&
			     els_cidr_contains(&a[i], b[k].family, &b[k].addr);
		if (!in)
			return false;
	}
	return true;
}

/* Whether permit i matches every packet that permit j matches, whenever j would. */
static bool covers(const struct hf_conf *c, uint32_t i, uint32_t j)
{
	const struct hf_permit *a = &c->pm[i], *b = &c->pm[j];
	const struct hf_rule *ra = &c->rules[i], *rb = &c->rules[j];

	if (a->dir != b->dir || (b->protos & ~a->protos) || ra->observe != rb->observe)
		return false;
	/* a gate may be shut; an expiry may come first */
	if (ra->req_proto && (ra->req_proto != rb->req_proto || ra->req_port != rb->req_port ||
			      ra->grace_ns < rb->grace_ns))
		return false;
	if (ra->expires_s && (!rb->expires_s || ra->expires_s < rb->expires_s))
		return false;
	for (unsigned p = 0; p < HF_P_N; p++) {
		if (!(b->protos & (1u << p)))
			continue;
		if (p <= HF_P_UDP) {
			if (!ports_cover(a->has_lp, &a->lp[p], b->has_lp, &b->lp[p]) ||
			    !ports_cover(a->has_rp, &a->rp[p], b->has_rp, &b->rp[p]))
				return false;
		} else if (a->has_types &&
			   (!b->has_types ||
			    !set_covers(&a->types[p - HF_P_ICMP], &b->types[p - HF_P_ICMP]))) {
			return false;
		}
	}
	return cidrs_cover(a->remote, a->nremote, b->remote, b->nremote) &&
	       cidrs_cover(ra->local, ra->nlocal, rb->local, rb->nlocal);
}

struct lint {
	FILE *out;
	const char *path;
	unsigned n;
};

static void warn(struct lint *l, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(struct lint *l, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(l->out, "%s:%d: warning: ", l->path, line);
	va_start(ap, fmt);
	vfprintf(l->out, fmt, ap);
	va_end(ap);
	fputc('\n', l->out);
	l->n++;
}

static void glued(void *arg, unsigned line, const char *a, size_t alen, const char *b, size_t blen)
{
	warn(arg, (int)line,
	     "\"%.*s\" \"%.*s\" are two strings with no ',' between them: libconfig joins them "
	     "into \"%.*s%.*s\"; put a ',' between two values",
	     (int)alen, a, (int)blen, b, (int)alen, a, (int)blen, b);
}

static void lint_permit(struct lint *l, const struct hf_conf *c, uint32_t j)
{
	const struct hf_permit *pm = &c->pm[j];
	const char *id = c->rules[j].id;

	if (!pm->has_id)
		warn(l, pm->line,
		     "permit %u has no id: records and reports call it '%s'; give it "
		     "id = \"...\"",
		     j + 1, id);
	if (pm->dir == ELS_DIR_IN && (pm->protos & HF_P_MASK_ANY) == HF_P_MASK_ANY)
		warn(
		    l, pm->line,
		    "permit '%s' admits every protocol and every port inbound (proto = \"any\")%s: "
		    "name the protocol and local_ports",
		    id, pm->remote ? "" : " from any address");
	else if (pm->dir == ELS_DIR_IN && (pm->protos & HF_P_MASK_PORTS) && !pm->has_lp)
		warn(l, pm->line,
		     "permit '%s' opens every local %s port inbound%s: name local_ports", id,
		     (pm->protos & HF_P_MASK_PORTS) == HF_P_MASK_PORTS ? "TCP and UDP"
		     : pm->protos & (1u << HF_P_TCP)		       ? "TCP"
								       : "UDP",
		     pm->remote ? "" : " to any address");
	if (c->rules[j].expired)
		return;
	for (uint32_t i = 0; i < j; i++) {
		if (c->rules[i].expired || !covers(c, i, j))
			continue;
		if (covers(c, j, i))
			warn(l, pm->line,
			     "permit '%s' matches exactly what permit '%s' (line %d) matches: a "
			     "duplicate; remove one",
			     id, c->rules[i].id, c->pm[i].line);
		else
			warn(l, pm->line,
			     "permit '%s' never matches: the broader permit '%s' (line %d) before "
			     "it matches all its traffic first; reorder or narrow them",
			     id, c->rules[i].id, c->pm[i].line);
		break;
	}
}

/* Whether permit j lets every source open TCP connections to local port `port`: inbound,
 * TCP, the port among its local ports, no remote list, not gated by a session, not expired. */
static bool opens_to_all(const struct hf_conf *c, uint32_t j, uint16_t port)
{
	const struct hf_permit *pm = &c->pm[j];
	const struct hf_rule *r = &c->rules[j];

	if (pm->dir != ELS_DIR_IN || !(pm->protos & (1u << HF_P_TCP)) || pm->remote ||
	    r->req_proto || r->expired)
		return false;
	if (!pm->has_lp)
		return true;
	const struct els_port_set *ps = &pm->lp[HF_P_TCP];
	for (uint32_t k = 0; k < ps->n; k++)
		if (ps->r[k].lo <= port && port <= ps->r[k].hi)
			return true;
	return false;
}

/* The SYN guard's SYNPROXY answers every source's SYN to a guarded port, so the port looks
 * open to all: meant only for ports that a permit opens to every source. */
static void lint_syn_guard(struct lint *l, const struct els_policy *p, const struct hf_conf *c)
{
	for (unsigned i = 0; i < p->set.nsyn_guard; i++) {
		uint16_t port = p->set.syn_guard[i];
		bool open = false;
		for (uint32_t j = 0; c && j < c->nrules && !open; j++)
			open = opens_to_all(c, j, port);
		if (!open)
			warn(l, p->set.syn_guard_line,
			     "syn_guard lists port %u, which no permit opens to every source: the "
			     "kernel's SYNPROXY answers every source's SYN there, so it looks open to "
			     "all; guard only ports permitted to everyone",
			     port);
	}
}

unsigned els_policy_lint(const struct els_policy *p, FILE *out)
{
	struct lint l = {.out = out, .path = p->path};
	const struct hf_conf *c = hf_of(p);
	size_t len = 0;
	char *buf = els_cfgerr_slurp(p->path, &len);

	for (uint32_t j = 0; c && j < c->nrules; j++)
		lint_permit(&l, c, j);
	lint_syn_guard(&l, p, c);
	els_cfgerr_glued(buf, len, glued, &l);
	free(buf);
	return l.n;
}
