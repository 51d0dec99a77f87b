/* header_filter: the ELS ports-and-protocols policy. Deny all, permit by exception, inbound and
 * outbound: a packet passes when a permit names its direction, protocol, ports (or ICMP type)
 * and addresses; otherwise it is dropped (no_permit, port_zero or fragment_no_ports).
 *
 * Lookup structure. build() compiles the permits so that a packet's cost does not depend on
 * how many there are. Each permit becomes one "instance" per protocol it covers (proto "any"
 * gives up to four), and each instance lands in one table per (direction, protocol), in one
 * of three indexes chosen by what it constrains:
 *   side[0]  local port given (TCP/UDP), or icmp_types given (ICMP): keyed by local port/type;
 *   side[1]  only the remote port given: keyed by remote port;
 *   any      no port or type constraint: the only index a later fragment can match.
 * A side index is a map port (65536 entries; ICMP type: 256) -> uint16 class id, where a class
 * is the set of instances whose port list contains that port (so at most 65536 classes; maps
 * that come out identical, e.g. tcp and udp for proto "any" permits, are shared). Each class,
 * and the any index, has a longest-prefix-match table over the remote prefixes of its
 * instances. An LPM value names an interned, sorted "candidate set": the instances whose
 * remote list holds that prefix or any shorter prefix covering it (propagated at build time),
 * cut after the first instance that has nothing left to check, since first match wins.
 * Candidates then need only their residual checks: the other side's port when an instance
 * constrains both, and local addresses (normally 1-2 candidates). Instance ids grow in config
 * order, so the first candidate that passes is the first permit that matches, and the answer
 * is the smallest over the (at most three) indexes consulted.
 *
 * Port 0 is in no implicit list ("any port" is 1-65535, the IANA classes start at 1), so a
 * packet from or to port 0 matches only permits that list 0 explicitly and is otherwise
 * dropped as port_zero.
 *
 * Memory: 100,000 permits cost a few tens of MB. A pathological policy where many permits
 * share a port class, list many nested remote prefixes and all need residual checks can grow
 * the candidate sets quadratically; real policies do not look like that. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "els/addr.h"
#include "els/handler.h"
#include "els/lpm.h"
#include "portspec.h"

enum { P_TCP, P_UDP, P_ICMP, P_ICMP6, P_N };
static const char *const proto_names[] = {"tcp", "udp", "icmp", "icmpv6", "any", NULL};
#define P_MASK_ANY   0x0fu
#define P_MASK_PORTS ((1u << P_TCP) | (1u << P_UDP))

#define NONE	     UINT32_MAX
#define LOCAL_LINEAR 8 /* above this many local prefixes a permit gets its own LPM */
#define MAX_MAPS     16

struct hf_set {
	uint32_t off, len; /* into pool */
};

/* Interns sorted uint32 lists: equal lists get one id. */
struct hf_interner {
	uint32_t *pool;
	size_t npool, cpool;
	struct hf_set *sets;
	uint32_t nsets, csets;
	uint32_t *slot; /* open addressing: set id + 1, 0 = free */
	uint32_t nslot;
};

struct hf_inst {
	uint32_t rule;	 /* 0-based permit index */
	uint32_t off, n; /* residual port ranges in conf->ranges; n == 0: nothing to check */
};

struct hf_rule {
	char *id;
	struct els_cidr *local; /* NULL: any local address */
	uint32_t nlocal;
	struct els_lpm *local_lpm;
};

struct hf_index {
	const uint16_t *map; /* NULL: no instance in this index */
	uint32_t nclass;
	struct els_lpm **lpm; /* per class; NULL for a class without instances */
};

struct hf_table {
	struct hf_index side[2];
	struct els_lpm *any;
};

struct hf_conf {
	struct hf_table tab[2][P_N];
	struct hf_rule *rules;
	uint32_t nrules;
	struct hf_inst *inst;
	uint32_t ninst, cinst;
	struct els_port_range *ranges;
	size_t nranges, cranges;
	struct hf_interner cand;
	uint16_t *maps[MAX_MAPS];
	uint32_t map_dom[MAX_MAPS];
	unsigned nmaps;
};

/* ---- interner ---- */

static uint32_t set_hash(const uint32_t *v, uint32_t n)
{
	return (uint32_t)XXH3_64bits(v, (size_t)n * sizeof(*v));
}

/* The id of the set v[0..n), adding it if new; NONE on allocation failure. */
static uint32_t intern(struct hf_interner *in, const uint32_t *v, uint32_t n)
{
	if ((in->nsets + 1) * 2 > in->nslot) {
		uint32_t ns = in->nslot ? in->nslot * 2 : 1024;
		uint32_t *slot = calloc(ns, sizeof(*slot));
		if (!slot)
			return NONE;
		for (uint32_t i = 0; i < in->nsets; i++) {
			uint32_t h =
			    set_hash(in->pool + in->sets[i].off, in->sets[i].len) & (ns - 1);
			while (slot[h])
				h = (h + 1) & (ns - 1);
			slot[h] = i + 1;
		}
		free(in->slot);
		in->slot = slot;
		in->nslot = ns;
	}
	uint32_t h = set_hash(v, n) & (in->nslot - 1);
	for (; in->slot[h]; h = (h + 1) & (in->nslot - 1)) {
		const struct hf_set *s = &in->sets[in->slot[h] - 1];
		if (s->len == n && memcmp(in->pool + s->off, v, (size_t)n * sizeof(*v)) == 0)
			return in->slot[h] - 1;
	}
	if (in->nsets == in->csets) {
		uint32_t c = in->csets ? in->csets * 2 : 256;
		struct hf_set *s = realloc(in->sets, c * sizeof(*s));
		if (!s)
			return NONE;
		in->sets = s;
		in->csets = c;
	}
	if (in->npool + n > in->cpool) {
		size_t c = in->cpool ? in->cpool : 1024;
		while (c < in->npool + n)
			c *= 2;
		uint32_t *p = realloc(in->pool, c * sizeof(*p));
		if (!p)
			return NONE;
		in->pool = p;
		in->cpool = c;
	}
	if (n)
		memcpy(in->pool + in->npool, v, (size_t)n * sizeof(*v));
	in->sets[in->nsets] = (struct hf_set){(uint32_t)in->npool, n};
	in->npool += n;
	in->slot[h] = in->nsets + 1;
	return in->nsets++;
}

static void interner_free(struct hf_interner *in)
{
	free(in->pool);
	free(in->sets);
	free(in->slot);
	memset(in, 0, sizeof(*in));
}

/* ---- packet path ---- */

static bool local_ok(const struct hf_rule *r, const struct els_pkt *p)
{
	const struct els_addr *a = els_pkt_local(p);

	if (!r->local)
		return true;
	if (r->local_lpm)
		return els_lpm_lookup(r->local_lpm, p->family, a, NULL) != ELS_LPM_NONE;
	for (uint32_t i = 0; i < r->nlocal; i++)
		if (els_cidr_contains(&r->local[i], p->family, a))
			return true;
	return false;
}

/* The first permit among lpm's candidates for the packet's remote address that passes its
 * residual checks (other = the port of the side the index is not keyed on), or NONE. */
static uint32_t first_match(const struct hf_conf *c, const struct els_lpm *lpm,
			    const struct els_pkt *p, uint16_t other)
{
	if (!lpm)
		return NONE;
	uint32_t sid = els_lpm_lookup(lpm, p->family, els_pkt_remote(p), NULL);
	if (sid == ELS_LPM_NONE)
		return NONE;
	const struct hf_set *s = &c->cand.sets[sid];
	for (uint32_t i = 0; i < s->len; i++) {
		const struct hf_inst *in = &c->inst[c->cand.pool[s->off + i]];
		if (in->n && !els_ranges_has(c->ranges + in->off, in->n, other))
			continue;
		if (local_ok(&c->rules[in->rule], p))
			return in->rule;
	}
	return NONE;
}

static uint32_t side_match(const struct hf_conf *c, const struct hf_index *ix,
			   const struct els_pkt *p, uint16_t key, uint16_t other)
{
	if (!ix->map)
		return NONE;
	return first_match(c, ix->lpm[ix->map[key]], p, other);
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* ICMP counts only over IPv4 and ICMPv6 only over IPv6. Every other protocol (SCTP, GRE,
 * ESP, ...) matches no permit, not even proto "any": the policy speaks of ports and ICMP types,
 * and a protocol the agent does not decode cannot be checked against either. */
static int table_of(const struct els_pkt *p)
{
	switch (p->proto) {
	case 6:
		return P_TCP;
	case 17:
		return P_UDP;
	case 1:
		return p->family == ELS_AF_INET ? P_ICMP : -1;
	case 58:
		return p->family == ELS_AF_INET6 ? P_ICMP6 : -1;
	}
	return -1;
}

static enum els_action hf_handle(const void *conf, struct els_ctx *ctx, struct els_decision *out)
{
	const struct hf_conf *c = conf;
	const struct els_pkt *p = ctx->pkt;
	int ti = table_of(p);
	uint32_t best = NONE;
	unsigned reason = ELS_R_NO_PERMIT;

	if (ti >= 0 && p->dir <= ELS_DIR_OUT &&
	    (p->family == ELS_AF_INET || p->family == ELS_AF_INET6)) {
		const struct hf_table *t = &c->tab[p->dir][ti];
		bool later = p->flags & ELS_PKT_LATER_FRAG;
		unsigned has = ti <= P_UDP ? ELS_PKT_HAS_PORTS : ELS_PKT_HAS_ICMP;
		if (later || !(p->flags & has)) {
			best = first_match(c, t->any, p, 0);
			if (later)
				reason = ELS_R_FRAGMENT_NO_PORTS;
		} else if (ti <= P_UDP) {
			uint16_t lp = els_pkt_local_port(p), rp = els_pkt_remote_port(p);
			best = side_match(c, &t->side[0], p, lp, rp);
			best = min_u32(best, side_match(c, &t->side[1], p, rp, lp));
			if (lp && rp)
				best = min_u32(best, first_match(c, t->any, p, 0));
			else
				reason = ELS_R_PORT_ZERO;
		} else {
			best = side_match(c, &t->side[0], p, p->icmp_type, 0);
			best = min_u32(best, first_match(c, t->any, p, 0));
		}
	}
	if (best == NONE) {
		out->action = ELS_DROP;
		out->reason = (uint16_t)reason;
		out->rule = 0;
	} else {
		out->action = ELS_ACCEPT;
		out->reason = ELS_R_PERMIT;
		out->rule = best + 1;
	}
	return (enum els_action)out->action;
}

static const char *hf_rule_name(const void *conf, uint32_t rule)
{
	const struct hf_conf *c = conf;
	return rule >= 1 && rule <= c->nrules ? c->rules[rule - 1].id : NULL;
}

static void hf_destroy(void *conf)
{
	struct hf_conf *c = conf;

	if (!c)
		return;
	for (unsigned d = 0; d < 2; d++) {
		for (unsigned p = 0; p < P_N; p++) {
			struct hf_table *t = &c->tab[d][p];
			for (unsigned s = 0; s < 2; s++) {
				for (uint32_t k = 0; t->side[s].lpm && k < t->side[s].nclass; k++)
					els_lpm_free(t->side[s].lpm[k]);
				free(t->side[s].lpm);
			}
			els_lpm_free(t->any);
		}
	}
	for (uint32_t i = 0; i < c->nrules; i++) {
		free(c->rules[i].id);
		free(c->rules[i].local);
		els_lpm_free(c->rules[i].local_lpm);
	}
	for (unsigned i = 0; i < c->nmaps; i++)
		free(c->maps[i]);
	free(c->rules);
	free(c->inst);
	free(c->ranges);
	interner_free(&c->cand);
	free(c);
}

/* ---- config ---- */

/* A permit as read from the config, before compilation. */
struct hf_permit {
	const config_setting_t *s;
	uint8_t dir, protos; /* protos: bit per P_* */
	bool has_lp, has_rp, has_types;
	struct els_port_set lp[2], rp[2]; /* [P_TCP], [P_UDP] */
	struct els_port_set types[2];	  /* [P_ICMP - 2], [P_ICMP6 - 2] */
	struct els_cidr *remote;	  /* NULL: any */
	uint32_t nremote;
};

struct hf_build {
	struct hf_conf *c;
	struct els_diag *d;
	const char *services_path;
	struct els_services *svc;
	int svc_err; /* the services file could not be read: reported once */
	struct hf_permit *pm;
	const struct els_port_set **key; /* per instance: the list its side index is keyed on */
	uint32_t ckey;
	uint32_t *tmp, *tmp2; /* scratch of ninst entries */
	int err;	      /* first allocation failure */
	char where[300];      /* "permit '<id>'", for messages */
};

static const char *const section_keys[] = {"permits", "fail", NULL};
static const char *const permit_keys[] = {
    "id", "dir", "proto", "local_ports", "remote_ports", "local", "remote", "icmp_types", NULL};

static int choice(const char *v, const char *const *list)
{
	for (int i = 0; list[i]; i++)
		if (strcmp(v, list[i]) == 0)
			return i;
	return -1;
}

static void check_keys(struct hf_build *b, const config_setting_t *g, const char *const *allowed,
		       const char *where)
{
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		if (choice(config_setting_name(m), allowed) < 0)
			els_diag_at(b->d, m, "unknown setting '%s' in %s", config_setting_name(m),
				    where);
	}
}

/* Elements of a list value: an array, a list, or a single scalar standing for itself. */
static int elem_count(const config_setting_t *s)
{
	int t = config_setting_type(s);
	return t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST ? config_setting_length(s) : 1;
}

static const config_setting_t *elem_at(const config_setting_t *s, int i)
{
	int t = config_setting_type(s);
	return t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST
		   ? config_setting_get_elem(s, (unsigned)i)
		   : s;
}

static bool is_int(const config_setting_t *s)
{
	int t = config_setting_type(s);
	return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

static void add_range(struct hf_build *b, struct els_port_set *set, unsigned lo, unsigned hi)
{
	if (els_portset_add(set, (uint16_t)lo, (uint16_t)hi) && !b->err)
		b->err = -ENOMEM;
}

/* Adds the port of service name text, looked up per protocol in mask. */
static void add_service(struct hf_build *b, const config_setting_t *e, const char *key,
			const char *text, unsigned mask, struct els_port_set *sets)
{
	bool found = false;

	if (!b->svc && !b->svc_err) {
		b->svc_err = els_services_load(b->services_path, &b->svc);
		if (b->svc_err)
			els_diag_at(b->d, e, "cannot read services file %s to look up \"%s\": %s",
				    b->services_path, text, strerror(-b->svc_err));
	}
	if (b->svc_err)
		return; /* reported once, at the first name */
	for (unsigned p = P_TCP; p <= P_UDP; p++) {
		int port =
		    (mask & (1u << p)) ? els_services_port(b->svc, text, proto_names[p]) : -ENOENT;
		if (port >= 0) {
			found = true;
			add_range(b, &sets[p], (unsigned)port, (unsigned)port);
		}
	}
	if (!found)
		els_diag_at(b->d, e, "%s: '%s': unknown service \"%s\" for %s in %s", b->where, key,
			    text,
			    mask == P_MASK_PORTS     ? "tcp or udp"
			    : (mask & (1u << P_TCP)) ? "tcp"
						     : "udp",
			    b->services_path);
}

/* Reads a port list (key "local_ports"/"remote_ports") into sets[P_TCP], sets[P_UDP] for the
 * protocols in mask. Service names are looked up per protocol, so a name only udp knows adds
 * nothing to the tcp list. */
static void parse_ports(struct hf_build *b, const config_setting_t *s, const char *key,
			unsigned mask, struct els_port_set *sets)
{
	int n = elem_count(s);

	if (n == 0)
		els_diag_at(b->d, s,
			    "%s: '%s' is empty and would match nothing; leave it out to "
			    "allow any port but 0",
			    b->where, key);
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = elem_at(s, i);
		uint16_t lo, hi;
		const char *why, *text;
		if (is_int(e)) {
			long long v = config_setting_get_int64(e);
			if (v < 0 || v > 65535) {
				els_diag_at(b->d, e, "%s: '%s': port %lld is out of range 0..65535",
					    b->where, key, v);
				continue;
			}
			lo = hi = (uint16_t)v;
		} else if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			els_diag_at(b->d, e, "%s: '%s': ports are numbers or strings", b->where,
				    key);
			continue;
		} else {
			text = config_setting_get_string(e);
			int rc = els_port_parse(text, &lo, &hi, &why);
			if (rc == -EINVAL) {
				els_diag_at(b->d, e, "%s: '%s': \"%s\": %s", b->where, key, text,
					    why);
				continue;
			}
			if (rc == -ENOENT) {
				add_service(b, e, key, text, mask, sets);
				continue;
			}
		}
		for (unsigned p = P_TCP; p <= P_UDP; p++)
			if (mask & (1u << p))
				add_range(b, &sets[p], lo, hi);
	}
	for (unsigned p = P_TCP; p <= P_UDP; p++)
		els_portset_normalize(&sets[p]);
}

static void parse_types(struct hf_build *b, const config_setting_t *s, bool v6,
			struct els_port_set *set)
{
	int n = elem_count(s);

	if (n == 0)
		els_diag_at(b->d, s,
			    "%s: 'icmp_types' is empty and would match nothing; leave it out "
			    "to allow every type",
			    b->where);
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = elem_at(s, i);
		long long t;
		if (is_int(e)) {
			t = config_setting_get_int64(e);
			if (t < 0 || t > 255) {
				els_diag_at(b->d, e,
					    "%s: 'icmp_types': %lld is out of range 0..255",
					    b->where, t);
				continue;
			}
		} else if (config_setting_type(e) == CONFIG_TYPE_STRING) {
			const char *why, *text = config_setting_get_string(e);
			t = els_icmp_type_parse(text, v6, &why);
			if (t < 0) {
				els_diag_at(b->d, e, "%s: 'icmp_types': \"%s\": %s", b->where, text,
					    why);
				continue;
			}
		} else {
			els_diag_at(b->d, e, "%s: 'icmp_types': types are numbers or names",
				    b->where);
			continue;
		}
		add_range(b, set, (unsigned)t, (unsigned)t);
	}
	els_portset_normalize(set);
}

static void parse_cidrs(struct hf_build *b, const config_setting_t *s, const char *key,
			struct els_cidr **out, uint32_t *nout)
{
	int n = elem_count(s);

	if (n == 0) {
		els_diag_at(b->d, s,
			    "%s: '%s' is empty and would match nothing; leave it out to allow "
			    "any address",
			    b->where, key);
		return;
	}
	*out = calloc((size_t)n, sizeof(**out));
	if (!*out) {
		b->err = -ENOMEM;
		return;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = elem_at(s, i);
		const char *why, *text = config_setting_get_string(e);
		if (!text) {
			els_diag_at(b->d, e,
				    "%s: '%s': addresses are strings such as \"192.0.2.0/24\"",
				    b->where, key);
			continue;
		}
		if (els_cidr_parse(text, &(*out)[*nout], &why) < 0) {
			els_diag_at(b->d, e, "%s: '%s': \"%s\": %s", b->where, key, text, why);
			continue;
		}
		(*nout)++;
	}
}

/* A string setting's value as one of list, or -1 after an error (missing counts as one). */
static int get_choice(struct hf_build *b, const config_setting_t *g, const char *key,
		      const char *const *list, const char *expect, const char *who)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	const char *v = s ? config_setting_get_string(s) : NULL;
	int i = v ? choice(v, list) : -1;

	if (!s)
		els_diag_at(b->d, g, "permit '%s' has no '%s' (%s)", who, key, expect);
	else if (i < 0)
		els_diag_at(b->d, s, "permit '%s': '%s' must be %s", who, key, expect);
	return i;
}

static void parse_permit(struct hf_build *b, uint32_t idx)
{
	struct hf_permit *pm = &b->pm[idx];
	struct hf_rule *r = &b->c->rules[idx];
	const config_setting_t *g = pm->s, *s;
	static const char *const dirs[] = {"in", "out", NULL};

	s = config_setting_get_member(g, "id");
	if (s && (!config_setting_get_string(s) || !*config_setting_get_string(s)))
		els_diag_at(b->d, s, "permit 'id' must be a non-empty string");
	if (s && config_setting_get_string(s) && *config_setting_get_string(s))
		r->id = strdup(config_setting_get_string(s));
	else if (asprintf(&r->id, "permit-%u", idx + 1) < 0)
		r->id = NULL;
	if (!r->id) {
		b->err = -ENOMEM;
		return;
	}
	const char *where = b->where;
	snprintf(b->where, sizeof(b->where), "permit '%s'", r->id);
	check_keys(b, g, permit_keys, where);

	int dir = get_choice(b, g, "dir", dirs, "\"in\" or \"out\"", r->id);
	int proto = get_choice(b, g, "proto", proto_names,
			       "\"tcp\", \"udp\", \"icmp\", \"icmpv6\" or \"any\"", r->id);
	pm->dir = dir == 1 ? ELS_DIR_OUT : ELS_DIR_IN;
	const config_setting_t *lps = config_setting_get_member(g, "local_ports");
	const config_setting_t *rps = config_setting_get_member(g, "remote_ports");
	const config_setting_t *ts = config_setting_get_member(g, "icmp_types");
	if (proto >= 0) {
		pm->protos = proto == P_N ? P_MASK_ANY : (uint8_t)(1u << proto);
		if ((lps || rps) && proto == P_N)
			pm->protos = P_MASK_PORTS; /* ports mean tcp and udp, not ICMP */
		if ((lps || rps) && (proto == P_ICMP || proto == P_ICMP6))
			els_diag_at(b->d, lps ? lps : rps,
				    "%s: ports do not apply to %s; use "
				    "'icmp_types'",
				    where, proto_names[proto]);
		else if (lps || rps) {
			if (lps)
				parse_ports(b, lps, "local_ports", pm->protos, pm->lp);
			if (rps)
				parse_ports(b, rps, "remote_ports", pm->protos, pm->rp);
			pm->has_lp = lps != NULL;
			pm->has_rp = rps != NULL;
		}
		if (ts && proto != P_ICMP && proto != P_ICMP6)
			els_diag_at(b->d, ts,
				    "%s: 'icmp_types' needs proto \"icmp\" or "
				    "\"icmpv6\"",
				    where);
		else if (ts) {
			parse_types(b, ts, proto == P_ICMP6, &pm->types[proto - P_ICMP]);
			pm->has_types = true;
		}
	}
	if ((s = config_setting_get_member(g, "local")))
		parse_cidrs(b, s, "local", &r->local, &r->nlocal);
	if ((s = config_setting_get_member(g, "remote")))
		parse_cidrs(b, s, "remote", &pm->remote, &pm->nremote);
}

static int id_cmp(const void *a, const void *b, void *arg)
{
	const struct hf_rule *rules = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int c = strcmp(rules[x].id, rules[y].id);
	return c ? c : (x > y) - (x < y);
}

static void check_ids(struct hf_build *b)
{
	uint32_t n = b->c->nrules;
	uint32_t *ix = malloc((size_t)n * sizeof(*ix) + 1);

	if (!ix) {
		b->err = -ENOMEM;
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		ix[i] = i;
	qsort_r(ix, n, sizeof(*ix), id_cmp, b->c->rules);
	for (uint32_t i = 1; i < n; i++) {
		const struct hf_rule *r = b->c->rules;
		if (strcmp(r[ix[i]].id, r[ix[i - 1]].id) == 0)
			els_diag_at(b->d, b->pm[ix[i]].s,
				    "duplicate permit id '%s' (also on line %d)", r[ix[i]].id,
				    config_setting_source_line(b->pm[ix[i - 1]].s));
	}
	free(ix);
}

/* ---- compile ---- */

static const struct els_port_range any_port = {1, 65535};

struct vec {
	uint32_t *v;
	uint32_t n, cap;
};

static void vec_push(struct hf_build *b, struct vec *v, uint32_t x)
{
	if (v->n == v->cap) {
		uint32_t cap = v->cap ? v->cap * 2 : 16;
		uint32_t *n = realloc(v->v, cap * sizeof(*n));
		if (!n) {
			b->err = -ENOMEM;
			return;
		}
		v->v = n;
		v->cap = cap;
	}
	v->v[v->n++] = x;
}

/* Adds an instance of permit rule; res[0..nres) are the ports its residual check allows, key
 * the list its side index is keyed on. Returns its id, or NONE. */
static uint32_t new_inst(struct hf_build *b, uint32_t rule, const struct els_port_range *res,
			 uint32_t nres, const struct els_port_set *key)
{
	struct hf_conf *c = b->c;

	if (c->ninst == c->cinst) {
		uint32_t cap = c->cinst ? c->cinst * 2 : 64;
		struct hf_inst *in = realloc(c->inst, cap * sizeof(*in));
		if (!in)
			goto nomem;
		c->inst = in;
		const struct els_port_set **k = realloc(b->key, cap * sizeof(*k));
		if (!k)
			goto nomem;
		b->key = k;
		c->cinst = cap;
	}
	if (c->nranges + nres > c->cranges) {
		size_t cap = c->cranges ? c->cranges : 64;
		while (cap < c->nranges + nres)
			cap *= 2;
		struct els_port_range *r = realloc(c->ranges, cap * sizeof(*r));
		if (!r)
			goto nomem;
		c->ranges = r;
		c->cranges = cap;
	}
	if (nres)
		memcpy(c->ranges + c->nranges, res, nres * sizeof(*res));
	c->inst[c->ninst] = (struct hf_inst){rule, (uint32_t)c->nranges, nres};
	c->nranges += nres;
	b->key[c->ninst] = key;
	return c->ninst++;
nomem:
	b->err = -ENOMEM;
	return NONE;
}

/* Nothing left to check once the remote address matched: later candidates can never win. */
static bool unconditional(const struct hf_conf *c, uint32_t inst)
{
	return c->inst[inst].n == 0 && !c->rules[c->inst[inst].rule].local;
}

/* Sorted union of a and x into out, cut after the first unconditional instance. */
static uint32_t merge(const struct hf_conf *c, const uint32_t *a, uint32_t na, const uint32_t *x,
		      uint32_t nx, uint32_t *out)
{
	uint32_t i = 0, j = 0, k = 0;

	while (i < na || j < nx) {
		uint32_t v;
		if (j >= nx || (i < na && a[i] < x[j]))
			v = a[i++];
		else if (i >= na || x[j] < a[i])
			v = x[j++];
		else
			v = a[i++], j++;
		out[k++] = v;
		if (unconditional(c, v))
			break;
	}
	return k;
}

struct pfx {
	struct els_cidr c;
	uint32_t inst;
};

static int pfx_cmp(const void *a, const void *b)
{
	const struct pfx *x = a, *y = b;
	if (x->c.family != y->c.family)
		return x->c.family - y->c.family;
	int m = memcmp(x->c.addr.b, y->c.addr.b, sizeof(x->c.addr.b));
	if (m)
		return m;
	if (x->c.plen != y->c.plen)
		return x->c.plen - y->c.plen;
	return (x->inst > y->inst) - (x->inst < y->inst);
}

static bool same_prefix(const struct els_cidr *a, const struct els_cidr *x)
{
	return a->family == x->family && a->plen == x->plen &&
	       memcmp(a->addr.b, x->addr.b, sizeof(a->addr.b)) == 0;
}

static bool covers(const struct els_cidr *a, const struct els_cidr *x)
{
	return a->family == x->family && a->plen <= x->plen &&
	       els_cidr_contains(a, x->family, &x->addr);
}

/* The remote-address LPM of a set of instances (sorted ids), or NULL when there are none.
 * Sorting the prefixes by (address, length) puts every covering prefix before the ones it
 * covers, so one pass with a stack of the current chain of covering prefixes propagates each
 * prefix's candidates to the prefixes inside it. */
static struct els_lpm *build_lpm(struct hf_build *b, const uint32_t *insts, uint32_t n)
{
	static const struct els_cidr any[2] = {{.family = ELS_AF_INET}, {.family = ELS_AF_INET6}};
	struct hf_conf *c = b->c;
	struct els_lpm *t = NULL;
	struct pfx *pf = NULL;
	size_t np = 0, k = 0;
	struct {
		struct els_cidr c;
		uint32_t sid;
	} stack[129 + 1];
	unsigned depth = 0;

	if (!n || b->err)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		const struct hf_permit *pm = &b->pm[c->inst[insts[i]].rule];
		np += pm->remote ? pm->nremote : 2;
	}
	pf = malloc(np * sizeof(*pf));
	t = els_lpm_new();
	if (!pf || !t)
		goto nomem;
	for (uint32_t i = 0; i < n; i++) {
		const struct hf_permit *pm = &b->pm[c->inst[insts[i]].rule];
		const struct els_cidr *list = pm->remote ? pm->remote : any;
		for (uint32_t j = 0; j < (pm->remote ? pm->nremote : 2); j++)
			pf[k++] = (struct pfx){list[j], insts[i]};
	}
	qsort(pf, np, sizeof(*pf), pfx_cmp);
	for (size_t i = 0, j; i < np; i = j) {
		uint32_t own = 0;
		for (j = i; j < np && same_prefix(&pf[j].c, &pf[i].c); j++)
			if (!own || b->tmp[own - 1] != pf[j].inst)
				b->tmp[own++] = pf[j].inst;
		while (depth && !covers(&stack[depth - 1].c, &pf[i].c))
			depth--;
		uint32_t m = own;
		if (depth) {
			const struct hf_set *ps = &c->cand.sets[stack[depth - 1].sid];
			m = merge(c, c->cand.pool + ps->off, ps->len, b->tmp, own, b->tmp2);
		} else {
			m = merge(c, NULL, 0, b->tmp, own, b->tmp2);
		}
		uint32_t sid = intern(&c->cand, b->tmp2, m);
		if (sid == NONE || els_lpm_insert(t, &pf[i].c, sid) < 0)
			goto nomem;
		/* nested prefixes of one family have distinct lengths: at most 129 deep */
		stack[depth].c = pf[i].c;
		stack[depth++].sid = sid;
	}
	free(pf);
	return t;
nomem:
	b->err = -ENOMEM;
	free(pf);
	els_lpm_free(t);
	return NULL;
}

struct ev {
	uint32_t pos, k;
	int add;
};

static int ev_cmp(const void *a, const void *b)
{
	const struct ev *x = a, *y = b;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Shares map with an identical one built before (freeing it), or keeps it. */
static const uint16_t *share_map(struct hf_conf *c, uint16_t *map, uint32_t dom)
{
	for (unsigned i = 0; i < c->nmaps; i++) {
		if (c->map_dom[i] == dom && memcmp(c->maps[i], map, dom * sizeof(*map)) == 0) {
			free(map);
			return c->maps[i];
		}
	}
	c->maps[c->nmaps] = map; /* at most 2 directions x 6 side indexes = 12 < MAX_MAPS */
	c->map_dom[c->nmaps++] = dom;
	return map;
}

/* Builds a side index over the instances list[0..n) (sorted), keyed on b->key[inst]: a sweep
 * over the port range boundaries yields each stretch of ports with the same instance set,
 * interned so that equal sets (e.g. ports 80 and 443 of one permit) become one class. */
static void build_side(struct hf_build *b, struct hf_index *ix, uint32_t dom, const uint32_t *list,
		       uint32_t n)
{
	struct hf_interner cls = {0};
	struct ev *ev = NULL;
	uint32_t *act = NULL, *where = NULL, nev = 0, nact = 0;
	uint16_t *map = NULL;

	if (!n || b->err)
		return;
	for (uint32_t k = 0; k < n; k++)
		nev += 2 * b->key[list[k]]->n;
	ev = malloc(nev * sizeof(*ev));
	act = malloc(n * sizeof(*act));
	where = malloc(n * sizeof(*where));
	map = malloc(dom * sizeof(*map));
	if (!ev || !act || !where || !map)
		goto nomem;
	nev = 0;
	for (uint32_t k = 0; k < n; k++) {
		const struct els_port_set *s = b->key[list[k]];
		for (uint32_t i = 0; i < s->n; i++) {
			ev[nev++] = (struct ev){s->r[i].lo, k, 1};
			if ((uint32_t)s->r[i].hi + 1 < dom)
				ev[nev++] = (struct ev){(uint32_t)s->r[i].hi + 1, k, 0};
		}
	}
	qsort(ev, nev, sizeof(*ev), ev_cmp);
	for (uint32_t pos = 0, e = 0; pos < dom;) {
		/* a normalized list never ends a range where the next begins, so the adds and
		 * removes at one position concern different instances: their order is free */
		for (; e < nev && ev[e].pos == pos; e++) {
			uint32_t k = ev[e].k;
			if (ev[e].add) {
				where[k] = nact;
				act[nact++] = k;
			} else {
				uint32_t last = act[--nact];
				act[where[k]] = last;
				where[last] = where[k];
			}
		}
		uint32_t next = e < nev ? ev[e].pos : dom;
		for (uint32_t i = 0; i < nact; i++)
			b->tmp[i] = list[act[i]];
		qsort(b->tmp, nact, sizeof(*b->tmp), u32_cmp);
		uint32_t cid = intern(&cls, b->tmp, nact);
		if (cid == NONE)
			goto nomem;
		for (uint32_t p = pos; p < next; p++)
			map[p] = (uint16_t)cid; /* one class per port at most: ids < 65536 */
		pos = next;
	}
	ix->nclass = cls.nsets;
	ix->lpm = calloc(cls.nsets, sizeof(*ix->lpm));
	if (!ix->lpm)
		goto nomem;
	for (uint32_t k = 0; k < cls.nsets && !b->err; k++)
		ix->lpm[k] = build_lpm(b, cls.pool + cls.sets[k].off, cls.sets[k].len);
	ix->map = share_map(b->c, map, dom);
	map = NULL;
	goto out;
nomem:
	b->err = -ENOMEM;
out:
	free(map);
	free(ev);
	free(act);
	free(where);
	interner_free(&cls);
}

static void build_local_lpm(struct hf_build *b, struct hf_rule *r)
{
	r->local_lpm = els_lpm_new();
	if (!r->local_lpm)
		b->err = -ENOMEM;
	for (uint32_t i = 0; r->local_lpm && i < r->nlocal && !b->err; i++)
		if (els_lpm_insert(r->local_lpm, &r->local[i], 0) < 0)
			b->err = -ENOMEM;
}

static void compile(struct hf_build *b)
{
	struct hf_conf *c = b->c;
	struct vec lists[2][P_N][3];

	memset(lists, 0, sizeof(lists));
	for (uint32_t r = 0; r < c->nrules && !b->err; r++) {
		const struct hf_permit *pm = &b->pm[r];
		for (unsigned p = 0; p < P_N && !b->err; p++) {
			const struct els_port_set *key = NULL;
			const struct els_port_range *res = NULL;
			uint32_t nres = 0;
			unsigned kind = 2;
			if (!(pm->protos & (1u << p)))
				continue;
			if (p <= P_UDP) {
				/* a list of service names this protocol does not know */
				if ((pm->has_lp && !pm->lp[p].n) || (pm->has_rp && !pm->rp[p].n))
					continue;
				if (pm->has_lp) {
					kind = 0;
					key = &pm->lp[p];
					res = pm->has_rp ? pm->rp[p].r : &any_port;
					nres = pm->has_rp ? pm->rp[p].n : 1;
				} else if (pm->has_rp) {
					kind = 1;
					key = &pm->rp[p];
					res = &any_port;
					nres = 1;
				}
			} else if (pm->has_types) {
				kind = 0;
				key = &pm->types[p - P_ICMP];
			}
			uint32_t id = new_inst(b, r, res, nres, key);
			if (id != NONE)
				vec_push(b, &lists[pm->dir][p][kind], id);
		}
		if (c->rules[r].nlocal > LOCAL_LINEAR)
			build_local_lpm(b, &c->rules[r]);
	}
	b->tmp = malloc(((size_t)c->ninst + 1) * sizeof(*b->tmp));
	b->tmp2 = malloc(((size_t)c->ninst + 1) * sizeof(*b->tmp2));
	if (!b->tmp || !b->tmp2)
		b->err = -ENOMEM;
	for (unsigned d = 0; d < 2; d++) {
		for (unsigned p = 0; p < P_N; p++) {
			struct hf_table *t = &c->tab[d][p];
			struct vec *l = lists[d][p];
			build_side(b, &t->side[0], p <= P_UDP ? 65536 : 256, l[0].v, l[0].n);
			build_side(b, &t->side[1], 65536, l[1].v, l[1].n);
			t->any = build_lpm(b, l[2].v, l[2].n);
			for (unsigned k = 0; k < 3; k++)
				free(l[k].v);
		}
	}
	/* the lookup table is built: drop the interner's hash, only sets and pool are read */
	free(c->cand.slot);
	c->cand.slot = NULL;
	c->cand.nslot = 0;
}

/* Frees the build scratch; the conf goes with hf_destroy when the build failed. */
static void build_free(struct hf_build *b)
{
	for (uint32_t i = 0; b->pm && i < b->c->nrules; i++) {
		struct hf_permit *pm = &b->pm[i];
		for (unsigned k = 0; k < 2; k++) {
			els_portset_free(&pm->lp[k]);
			els_portset_free(&pm->rp[k]);
			els_portset_free(&pm->types[k]);
		}
		free(pm->remote);
	}
	free(b->pm);
	free(b->key);
	free(b->tmp);
	free(b->tmp2);
	els_services_free(b->svc);
}

static int hf_build(const config_setting_t *section, const struct els_build_env *env, void **conf,
		    struct els_diag *d)
{
	struct hf_build b = {.d = d};
	const config_setting_t *list = NULL;
	unsigned before = d->count;
	uint32_t n = 0;
	int rc;

	b.services_path = env && env->services_path ? env->services_path : "/etc/services";
	*conf = NULL;
	b.c = calloc(1, sizeof(*b.c));
	if (!b.c) {
		els_diag_at(d, section, "header_filter: out of memory");
		return -ENOMEM;
	}
	if (section && !config_setting_is_group(section)) {
		els_diag_at(d, section, "'header_filter' must be a group { permits = (...); }");
		section = NULL;
	}
	if (section) {
		check_keys(&b, section, section_keys, "header_filter");
		list = config_setting_get_member(section, "permits");
		if (list && !config_setting_is_list(list) &&
		    !(config_setting_is_array(list) && config_setting_length(list) == 0)) {
			els_diag_at(d, list, "'permits' must be a list ( { ... }, ... )");
			list = NULL;
		}
	}
	n = list ? (uint32_t)config_setting_length(list) : 0;
	b.pm = calloc((size_t)n + 1, sizeof(*b.pm));
	b.c->rules = calloc((size_t)n + 1, sizeof(*b.c->rules));
	if (!b.pm || !b.c->rules) {
		b.err = -ENOMEM;
		goto out;
	}
	b.c->nrules = n;
	for (uint32_t i = 0; i < n && !b.err; i++) {
		b.pm[i].s = config_setting_get_elem(list, i);
		if (config_setting_is_group(b.pm[i].s)) {
			parse_permit(&b, i);
			continue;
		}
		els_diag_at(d, b.pm[i].s, "permit %u must be a group { dir = ...; proto = ...; }",
			    i + 1);
		if (asprintf(&b.c->rules[i].id, "permit-%u", i + 1) < 0) {
			b.c->rules[i].id = NULL;
			b.err = -ENOMEM;
		}
	}
	if (!b.err)
		check_ids(&b);
	if (!b.err && d->count == before)
		compile(&b);
out:
	if (b.err)
		els_diag_at(d, section, "header_filter: out of memory");
	rc = b.err ? b.err : d->count > before ? -EINVAL : 0;
	build_free(&b);
	if (rc) {
		hf_destroy(b.c);
		return rc;
	}
	*conf = b.c;
	return 0;
}

const struct els_handler els_handler_header_filter = {
    .name = "header_filter",
    .summary = "ports-and-protocols policy: deny all, permit by exception, in and out",
    .build = hf_build,
    .destroy = hf_destroy,
    .handle = hf_handle,
    .rule_name = hf_rule_name,
};
