/* header_filter, compile half: turns the parsed permits into the lookup tables that
 * header_filter.c reads (the structure is described at the top of that file). Off the packet
 * path: runs when a policy generation is built. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "header_filter.h"

/* ---- interner ---- */

static uint32_t set_hash(const uint32_t *v, uint32_t n)
{
	return (uint32_t)XXH3_64bits(v, (size_t)n * sizeof(*v));
}

/* The id of the set v[0..n), adding it if new; HF_NONE on allocation failure. */
static uint32_t intern(struct hf_interner *in, const uint32_t *v, uint32_t n)
{
	if ((in->nsets + 1) * 2 > in->nslot) {
		uint32_t ns = in->nslot ? in->nslot * 2 : 1024;
		uint32_t *slot = calloc(ns, sizeof(*slot));
		if (!slot)
			return HF_NONE;
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
			return HF_NONE;
		in->sets = s;
		in->csets = c;
	}
	if (in->npool + n > in->cpool) {
		size_t c = in->cpool ? in->cpool : 1024;
		while (c < in->npool + n)
			c *= 2;
		uint32_t *p = realloc(in->pool, c * sizeof(*p));
		if (!p)
			return HF_NONE;
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
void hf_destroy(void *conf)
{
	struct hf_conf *c = conf;

	if (!c)
		return;
	for (unsigned d = 0; d < 2; d++) {
		for (unsigned p = 0; p < HF_P_N; p++) {
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
		hf_svc_free(c->rules[i].svc);
		free(c->rules[i].local);
		els_lpm_free(c->rules[i].local_lpm);
	}
	for (uint32_t i = 0; c->pm && i < c->nrules; i++) {
		struct hf_permit *pm = &c->pm[i];
		for (unsigned k = 0; k < 2; k++) {
			els_portset_free(&pm->lp[k]);
			els_portset_free(&pm->rp[k]);
			els_portset_free(&pm->types[k]);
		}
		free(pm->remote);
		free(pm->justification);
		free(pm->owner);
		free(pm->category);
		free(pm->mitigations);
		free(pm->expires);
		free(pm->requires);
	}
	free(c->pm);
	free(c->expiry);
	for (unsigned i = 0; i < c->nmaps; i++)
		free(c->maps[i]);
	free(c->rules);
	free(c->inst);
	free(c->ranges);
	interner_free(&c->cand);
	free(c);
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
 * the list its side index is keyed on. Returns its id, or HF_NONE. */
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
	return HF_NONE;
}

/* Nothing left to check once the remote address matched: later candidates can never win. */
static bool unconditional(const struct hf_conf *c, uint32_t inst)
{
	const struct hf_rule *r = &c->rules[c->inst[inst].rule];
	return c->inst[inst].n == 0 && !r->local && !r->req_proto && !r->expires_s;
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
		if (sid == HF_NONE || els_lpm_insert(t, &pf[i].c, sid) < 0)
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
	c->maps[c->nmaps] = map; /* at most 2 directions x 6 side indexes = 12 < HF_MAX_MAPS */
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
		if (cid == HF_NONE)
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

static int expiry_cmp(const void *a, const void *b, void *arg)
{
	const struct hf_rule *r = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	if (r[x].expires_s != r[y].expires_s)
		return r[x].expires_s < r[y].expires_s ? -1 : 1;
	return (x > y) - (x < y);
}

/* The permits with an expiry date, by date, for the tick that alerts them (those expired at
 * build time too: the tick alerts each date once per process). */
static void build_expiry(struct hf_build *b)
{
	struct hf_conf *c = b->c;
	uint32_t n = 0;

	for (uint32_t r = 0; r < c->nrules; r++)
		n += c->rules[r].expires_s != 0;
	if (!n)
		return;
	c->expiry = malloc(n * sizeof(*c->expiry));
	if (!c->expiry) {
		b->err = -ENOMEM;
		return;
	}
	for (uint32_t r = 0; r < c->nrules; r++)
		if (c->rules[r].expires_s)
			c->expiry[c->nexpiry++] = r;
	qsort_r(c->expiry, n, sizeof(*c->expiry), expiry_cmp, c->rules);
}

void hf_compile(struct hf_build *b)
{
	struct hf_conf *c = b->c;
	struct vec lists[2][HF_P_N][3];

	memset(lists, 0, sizeof(lists));
	for (uint32_t r = 0; r < c->nrules && !b->err; r++) {
		const struct hf_permit *pm = &b->pm[r];
		if (c->rules[r].expired)
			continue; /* stops matching: compiled into no index */
		for (unsigned p = 0; p < HF_P_N && !b->err; p++) {
			const struct els_port_set *key = NULL;
			const struct els_port_range *res = NULL;
			uint32_t nres = 0;
			unsigned kind = 2;
			if (!(pm->protos & (1u << p)))
				continue;
			if (p <= HF_P_UDP) {
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
				key = &pm->types[p - HF_P_ICMP];
			}
			uint32_t id = new_inst(b, r, res, nres, key);
			if (id != HF_NONE)
				vec_push(b, &lists[pm->dir][p][kind], id);
		}
		if (c->rules[r].nlocal > HF_LOCAL_LINEAR)
			build_local_lpm(b, &c->rules[r]);
	}
	b->tmp = malloc(((size_t)c->ninst + 1) * sizeof(*b->tmp));
	b->tmp2 = malloc(((size_t)c->ninst + 1) * sizeof(*b->tmp2));
	if (!b->tmp || !b->tmp2)
		b->err = -ENOMEM;
	for (unsigned d = 0; d < 2; d++) {
		for (unsigned p = 0; p < HF_P_N; p++) {
			struct hf_table *t = &c->tab[d][p];
			struct vec *l = lists[d][p];
			build_side(b, &t->side[0], p <= HF_P_UDP ? 65536 : 256, l[0].v, l[0].n);
			build_side(b, &t->side[1], 65536, l[1].v, l[1].n);
			t->any = build_lpm(b, l[2].v, l[2].n);
			for (unsigned k = 0; k < 3; k++)
				free(l[k].v);
		}
	}
	build_expiry(b);
	/* the lookup table is built: drop the interner's hash, only sets and pool are read */
	free(c->cand.slot);
	c->cand.slot = NULL;
	c->cand.nslot = 0;
}

/* Frees the build scratch; the conf goes with hf_destroy when the build failed. */