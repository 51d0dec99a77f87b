/* header_filter, report half: the PPS registry (include/els/registry.h). Off the packet path. */
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "els/policy.h"
#include "els/registry.h"
#include "header_filter.h"

extern const struct els_handler els_handler_header_filter;

const struct hf_conf *hf_of(const struct els_policy *p)
{
	for (unsigned i = 0; i < p->nlinks; i++)
		if (p->links[i].h == &els_handler_header_filter)
			return p->links[i].conf;
	return NULL;
}

struct hits {
	char name[32];
	long long admits, would;
	long long last_ns;
};

/* Admissions per rule name from the monitor file. Returns the count (>= 0) with *out
 * allocated, or -1 with why in err. Record rule names are cut at 31 bytes: matched so. */
static int load_hits(const char *path, struct hits **out, char *err, size_t errlen)
{
	static const char q[] =
	    "SELECT rule_name, sum(kind = 'admit'), sum(kind = 'would_drop'), "
	    "max(CASE WHEN kind = 'admit' THEN ts_ns END) FROM records "
	    "WHERE handler = 'header_filter' AND kind IN ('admit', 'would_drop') "
	    "AND rule_name IS NOT NULL GROUP BY rule_name";
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct hits *h = NULL;
	int n = 0, cap = 0, rc;

	*out = NULL;
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		n = -1;
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			struct hits *g = realloc(h, (size_t)cap * sizeof(*h));
			if (!g) {
				snprintf(err, errlen, "out of memory");
				n = -1;
				goto out;
			}
			h = g;
		}
		snprintf(h[n].name, sizeof(h[n].name), "%s",
			 (const char *)sqlite3_column_text(st, 0));
		h[n].admits = sqlite3_column_int64(st, 1);
		h[n].would = sqlite3_column_int64(st, 2);
		h[n].last_ns = sqlite3_column_int64(st, 3);
		n++;
	}
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(db));
		n = -1;
	}
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (n < 0) {
		free(h);
		return -1;
	}
	*out = h;
	return n;
}

/* Admissions per permit and owning process (service-bound permits): the admit records' detail
 * without its pid, so that a service's restarts count as one owner. */
struct owner_hits {
	char name[32];
	char owner[96];
	long long n;
};

static void strip_pid(const char *d, char *out, size_t size)
{
	const char *p = strstr(d, " pid=");
	size_t n = 0;
	if (!p) {
		snprintf(out, size, "%s", d);
		return;
	}
	n = (size_t)(p - d);
	const char *rest = strchr(p + 1, ' ');
	snprintf(out, size, "%.*s%s", (int)n, d, rest ? rest : "");
}

static int load_owner_hits(const char *path, struct owner_hits **out)
{
	static const char q[] = "SELECT rule_name, detail, count(*) FROM records "
				"WHERE handler = 'header_filter' AND kind = 'admit' AND "
				"detail IS NOT NULL AND detail != '' GROUP BY rule_name, detail";
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	struct owner_hits *h = NULL;
	int n = 0, cap = 0;

	*out = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK)
		goto out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		char key[96];
		const char *rn = (const char *)sqlite3_column_text(st, 0);
		const char *d = (const char *)sqlite3_column_text(st, 1);
		if (!rn || !d)
			continue;
		strip_pid(d, key, sizeof(key));
		int k = 0;
		while (k < n && (strcmp(h[k].name, rn) != 0 || strcmp(h[k].owner, key) != 0))
			k++;
		if (k == n) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				struct owner_hits *g = realloc(h, (size_t)cap * sizeof(*h));
				if (!g)
					break;
				h = g;
			}
			snprintf(h[n].name, sizeof(h[n].name), "%s", rn);
			snprintf(h[n].owner, sizeof(h[n].owner), "%s", key);
			h[n].n = 0;
			n++;
		}
		h[k].n += sqlite3_column_int64(st, 2);
	}
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	*out = h;
	return n;
}

static void fmt_time(long long ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000LL);
	struct tm tm;
	if (!ns || !gmtime_r(&t, &tm))
		snprintf(buf, len, "never");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* "443 (https), 8000-8080" for one protocol's list, naming each single port that the services
 * file knows. */
static void print_ports(FILE *out, const struct els_port_set *s, const char *proto,
			const struct els_services *svc)
{
	for (uint32_t i = 0; i < s->n; i++) {
		const struct els_port_range *r = &s->r[i];
		const char *name = r->lo == r->hi ? els_services_name(svc, r->lo, proto) : NULL;
		fprintf(out, "%s%u", i ? ", " : "", r->lo);
		if (r->hi != r->lo)
			fprintf(out, "-%u", r->hi);
		if (name)
			fprintf(out, " (%s)", name);
	}
}

static void print_cidrs(FILE *out, const struct els_cidr *c, uint32_t n)
{
	char a[ELS_ADDR_STRLEN];
	if (!c) {
		fputs("any", out);
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		fprintf(out, "%s%s/%u", i ? ", " : "", els_addr_str(&c[i].addr, c[i].family, a),
			c[i].plen);
}

static void print_what(FILE *out, const struct hf_permit *pm, const struct els_services *svc)
{
	bool any = (pm->protos & HF_P_MASK_ANY) == HF_P_MASK_ANY;
	bool first = true;

	for (unsigned p = 0; p < HF_P_N; p++) {
		if (!(pm->protos & (1u << p)))
			continue;
		fprintf(out, "%s%s", first ? "" : " + ", hf_proto_names[p]);
		first = false;
		if (p <= HF_P_UDP && (pm->has_lp || pm->has_rp)) {
			if (pm->has_lp) {
				fputs(" local ", out);
				print_ports(out, &pm->lp[p], hf_proto_names[p], svc);
			}
			if (pm->has_rp) {
				fputs(" remote ", out);
				print_ports(out, &pm->rp[p], hf_proto_names[p], svc);
			}
		} else if (p <= HF_P_UDP && !any) {
			fputs(" any port", out);
		} else if (p > HF_P_UDP && pm->has_types) {
			const struct els_port_set *t = &pm->types[p - HF_P_ICMP];
			fputs(" types", out);
			for (uint32_t i = 0; i < t->n; i++) {
				fprintf(out, "%s%u", i ? "," : " ", t->r[i].lo);
				if (t->r[i].hi != t->r[i].lo)
					fprintf(out, "-%u", t->r[i].hi);
			}
		}
	}
}

int els_registry_report(const struct els_policy *p, const char *monitor_path,
			const char *services_path, FILE *out)
{
	const struct hf_conf *c = hf_of(p);
	struct els_services *svc = NULL;
	struct hits *h = NULL;
	char err[256] = "", t[32];
	int nh = -1, expired = 0;
	time_t now = time(NULL);

	if (!c)
		return -ENOENT;
	els_services_load(services_path ? services_path : "/etc/services", &svc);
	struct owner_hits *oh = NULL;
	int no = 0;
	if (monitor_path)
		nh = load_hits(monitor_path, &h, err, sizeof(err));
	if (nh >= 0)
		no = load_owner_hits(monitor_path, &oh);
	fprintf(out, "PPS registry of %s (sha256 %.16s): %u permits, %s mode\n", p->path, p->hash,
		c->nrules, c->observe ? "observe" : "enforce");
	if (nh < 0)
		fprintf(out, "hits unknown: monitor %s: %s\n",
			monitor_path ? monitor_path : "(none)", monitor_path ? err : "not given");
	else
		fprintf(out, "hits: flows admitted, from the admit records of %s\n", monitor_path);
	for (uint32_t i = 0; i < c->nrules; i++) {
		const struct hf_rule *r = &c->rules[i];
		const struct hf_permit *pm = &c->pm[i];
		bool gone = r->expires_s && r->expires_s <= (int64_t)now;
		expired += gone;
		fprintf(out, "\npermit %s (line %d)%s\n", r->id, pm->line, gone ? " EXPIRED" : "");
		fprintf(out, "  %s ", pm->dir == ELS_DIR_OUT ? "out" : "in");
		print_what(out, pm, svc);
		fputs("\n  remote: ", out);
		print_cidrs(out, pm->remote, pm->nremote);
		fputs("  local: ", out);
		print_cidrs(out, r->local, r->nlocal);
		fprintf(out, "\n  mode: %s  requires: %s",
			r->observe || c->observe ? "observe" : "enforce",
			pm->requires ? pm->requires : "-");
		if (pm->requires)
			fprintf(out, " (grace %llus)",
				(unsigned long long)(r->grace_ns / 1000000000ull));
		fprintf(out, "  expires: %s%s\n", pm->expires ? pm->expires : "never",
			gone ? " (passed: no longer matches)" : "");
		fprintf(out, "  justification: %s\n", pm->justification ? pm->justification : "-");
		fprintf(out, "  owner: %s  category: %s\n", pm->owner ? pm->owner : "-",
			pm->category ? pm->category : "-");
		fprintf(out, "  mitigations: %s\n", pm->mitigations ? pm->mitigations : "-");
		if (r->svc) {
			char d[256];
			hf_svc_describe(r->svc, d, sizeof(d));
			fprintf(out, "  bound to: %s\n", d);
		}
		if (nh >= 0) {
			const struct hits *x = NULL;
			for (int k = 0; k < nh && !x; k++)
				if (strncmp(h[k].name, r->id, sizeof(h[k].name) - 1) == 0)
					x = &h[k];
			fmt_time(x ? x->last_ns : 0, t, sizeof(t));
			fprintf(out, "  hits: %lld  last hit: %s", x ? x->admits : 0LL, t);
			if (x && x->would)
				fprintf(out, "  would_drop: %lld", x->would);
			fputc('\n', out);
			for (int k = 0; k < no; k++)
				if (strncmp(oh[k].name, r->id, sizeof(oh[k].name) - 1) == 0)
					fprintf(out, "  hits by owner: %s: %lld\n", oh[k].owner,
						oh[k].n);
		}
	}
	free(oh);
	free(h);
	els_services_free(svc);
	return expired;
}

/* "10.0.0.0/8" strings, or null for any. */
static json_t *cidrs_json(const struct els_cidr *c, uint32_t n)
{
	char a[ELS_ADDR_STRLEN], buf[ELS_ADDR_STRLEN + 8];
	json_t *arr;

	if (!c)
		return json_null();
	arr = json_array();
	for (uint32_t i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "%s/%u", els_addr_str(&c[i].addr, c[i].family, a),
			 c[i].plen);
		json_array_append_new(arr, json_string(buf));
	}
	return arr;
}

static json_t *opt_str(const char *s)
{
	return s ? json_string(s) : json_null();
}

int els_registry_report_json(const struct els_policy *p, const char *monitor_path,
			     const char *services_path, FILE *out)
{
	const struct hf_conf *c = hf_of(p);
	struct els_services *svc = NULL;
	struct hits *h = NULL;
	char err[256] = "", t[32];
	int nh = -1, expired = 0;
	time_t now = time(NULL);
	json_t *root, *permits;

	if (!c)
		return -ENOENT;
	els_services_load(services_path ? services_path : "/etc/services", &svc);
	struct owner_hits *oh = NULL;
	int no = 0;
	if (monitor_path)
		nh = load_hits(monitor_path, &h, err, sizeof(err));
	if (nh >= 0)
		no = load_owner_hits(monitor_path, &oh);
	permits = json_array();
	root = json_pack("{s:s, s:s, s:s, s:o, s:o}", "path", p->path, "sha256", p->hash, "mode",
			 c->observe ? "observe" : "enforce", "hits_source",
			 nh >= 0 ? json_string(monitor_path) : json_null(), "hits_error",
			 nh >= 0 ? json_null()
				 : json_string(monitor_path ? err : "no monitor file given"));
	for (uint32_t i = 0; i < c->nrules; i++) {
		const struct hf_rule *r = &c->rules[i];
		const struct hf_permit *pm = &c->pm[i];
		bool gone = r->expires_s && r->expires_s <= (int64_t)now;
		char *what = NULL;
		size_t wlen = 0;
		FILE *w = open_memstream(&what, &wlen);
		json_t *o;

		expired += gone;
		if (w) {
			print_what(w, pm, svc);
			fclose(w);
		}
		o = json_pack("{s:s, s:i, s:s, s:s, s:o, s:o, s:s, s:o, s:I, s:o, s:b, s:o, s:o, "
			      "s:o, s:o}",
			      "id", r->id, "line", pm->line, "dir",
			      pm->dir == ELS_DIR_OUT ? "out" : "in", "what", what ? what : "",
			      "remote", cidrs_json(pm->remote, pm->nremote), "local",
			      cidrs_json(r->local, r->nlocal), "mode",
			      r->observe || c->observe ? "observe" : "enforce", "requires",
			      opt_str(pm->requires), "grace_s",
			      (json_int_t)(pm->requires ? r->grace_ns / 1000000000ull : 0),
			      "expires", opt_str(pm->expires), "expired", gone, "justification",
			      opt_str(pm->justification), "owner", opt_str(pm->owner), "category",
			      opt_str(pm->category), "mitigations", opt_str(pm->mitigations));
		free(what);
		if (nh >= 0 && o) {
			const struct hits *x = NULL;
			for (int k = 0; k < nh && !x; k++)
				if (strncmp(h[k].name, r->id, sizeof(h[k].name) - 1) == 0)
					x = &h[k];
			fmt_time(x ? x->last_ns : 0, t, sizeof(t));
			json_object_set_new(o, "hits", json_integer(x ? x->admits : 0));
			json_object_set_new(o, "last_hit",
					    x && x->last_ns ? json_string(t) : json_null());
			json_object_set_new(o, "would_drop", json_integer(x ? x->would : 0));
			json_t *by = json_array();
			for (int k = 0; k < no; k++)
				if (strncmp(oh[k].name, r->id, sizeof(oh[k].name) - 1) == 0)
					json_array_append_new(by, json_pack("{s:s, s:I}", "owner",
									    oh[k].owner, "hits",
									    (json_int_t)oh[k].n));
			json_object_set_new(o, "hits_by_owner", by);
		}
		if (o) {
			char d[256];
			hf_svc_describe(r->svc, d, sizeof(d));
			json_object_set_new(o, "bound_to", r->svc ? json_string(d) : json_null());
		}
		json_array_append_new(permits, o);
	}
	json_object_set_new(root, "permits", permits);
	json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', out);
	json_decref(root);
	free(oh);
	free(h);
	els_services_free(svc);
	return expired;
}

static bool rule_live(const struct hf_conf *c, uint32_t i, time_t now)
{
	const struct hf_rule *r = &c->rules[i];
	return !r->expired && !r->observe && !c->observe &&
	       !(r->expires_s && r->expires_s <= (int64_t)now);
}

const char *els_registry_inbound(const struct els_policy *p, uint8_t proto, uint8_t family,
				 const struct els_addr *local, uint16_t port, bool *restricted)
{
	const struct hf_conf *c = hf_of(p);
	static const struct els_addr zero;
	unsigned pi = proto == IPPROTO_TCP ? HF_P_TCP : HF_P_UDP;
	time_t now = time(NULL);

	if (!c || (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
		return NULL;
	for (uint32_t i = 0; i < c->nrules; i++) {
		const struct hf_rule *r = &c->rules[i];
		const struct hf_permit *pm = &c->pm[i];
		if (pm->dir != ELS_DIR_IN || !(pm->protos & (1u << pi)) || !rule_live(c, i, now))
			continue;
		if (pm->has_lp ? !els_ranges_has(pm->lp[pi].r, pm->lp[pi].n, port) : port == 0)
			continue;
		/* a wildcard listener is reachable through any local address a permit names */
		if (r->local && memcmp(local, &zero, sizeof(zero)) != 0) {
			bool ok = false;
			for (uint32_t k = 0; k < r->nlocal && !ok; k++)
				ok = els_cidr_contains(&r->local[k], family, local);
			if (!ok)
				continue;
		}
		if (restricted)
			*restricted = pm->remote || pm->has_rp || r->req_proto;
		return r->id;
	}
	return NULL;
}

void els_registry_inbound_ports(const struct els_policy *p,
				void (*fn)(void *arg, const char *id, uint8_t proto, uint16_t lo,
					   uint16_t hi),
				void *arg)
{
	const struct hf_conf *c = hf_of(p);
	time_t now = time(NULL);

	for (uint32_t i = 0; c && i < c->nrules; i++) {
		const struct hf_permit *pm = &c->pm[i];
		if (pm->dir != ELS_DIR_IN || !pm->has_lp || !rule_live(c, i, now))
			continue;
		for (unsigned pi = HF_P_TCP; pi <= HF_P_UDP; pi++) {
			if (!(pm->protos & (1u << pi)))
				continue;
			for (uint32_t k = 0; k < pm->lp[pi].n; k++)
				fn(arg, c->rules[i].id, pi == HF_P_TCP ? IPPROTO_TCP : IPPROTO_UDP,
				   pm->lp[pi].r[k].lo, pm->lp[pi].r[k].hi);
		}
	}
}

int els_registry_service_check(const struct els_policy *p, const char *id,
			       const struct els_owner *o, char *want, size_t wlen)
{
	const struct hf_conf *c = hf_of(p);

	for (uint32_t i = 0; c && i < c->nrules; i++) {
		const struct hf_rule *r = &c->rules[i];
		if (strcmp(r->id, id) != 0)
			continue;
		if (!r->svc)
			return 0;
		if (want)
			hf_svc_describe(r->svc, want, wlen);
		return hf_svc_match(r->svc, o) ? 1 : -1;
	}
	return 0;
}
