/* header_filter, parse half: reads the config section into permits (struct hf_permit, kept for
 * reports) and their packet-path parts (struct hf_rule), collecting every error, then hands
 * them to hf_compile. Off the packet path. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "els/clock.h"
#include "header_filter.h"
#include "els/log.h"

#define MAX_GRACE_S 3600 /* els/sessions.h keeps ended sessions this long */

/* ---- config ---- */

static const char *const section_keys[] = {"permits", "fail", "mode", NULL};
static const char *const permit_keys[] = {
    "id",   "dir",	"proto", "local_ports", "remote_ports",	 "local", "remote",   "icmp_types",
    "mode", "requires", "grace", "expires",	"justification", "owner", "category", "mitigations",
    "service", "exe", "user", "group", NULL};
static const char *const modes[] = {"enforce", "observe", NULL};

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
	for (unsigned p = HF_P_TCP; p <= HF_P_UDP; p++) {
		int port = (mask & (1u << p)) ? els_services_port(b->svc, text, hf_proto_names[p])
					      : -ENOENT;
		if (port >= 0) {
			found = true;
			add_range(b, &sets[p], (unsigned)port, (unsigned)port);
		}
	}
	if (!found)
		els_diag_at(b->d, e, "%s: '%s': unknown service \"%s\" for %s in %s", b->where, key,
			    text,
			    mask == HF_P_MASK_PORTS	? "tcp or udp"
			    : (mask & (1u << HF_P_TCP)) ? "tcp"
							: "udp",
			    b->services_path);
}

/* Reads a port list (key "local_ports"/"remote_ports") into sets[HF_P_TCP], sets[HF_P_UDP] for the
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
		for (unsigned p = HF_P_TCP; p <= HF_P_UDP; p++)
			if (mask & (1u << p))
				add_range(b, &sets[p], lo, hi);
	}
	for (unsigned p = HF_P_TCP; p <= HF_P_UDP; p++)
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

int hf_parse_expiry(const char *text, int64_t *out_s)
{
	struct tm tm = {0}, chk;
	int y, mo, d, h = 0, mi = 0, s = 0, n = 0;
	bool day;

	if (sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return -EINVAL;
	day = text[10] == '\0';
	if (!day) {
		int m = 0;
		if (sscanf(text + 10, "T%2d:%2d:%2dZ%n", &h, &mi, &s, &m) != 3 || text[10 + m])
			return -EINVAL;
	}
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	chk = tm;
	time_t t = timegm(&chk);
	/* timegm normalises 2026-02-30 into March: a date that moved was not a date */
	if (t == (time_t)-1 || y < 1970 || chk.tm_mday != d || chk.tm_mon != mo - 1 ||
	    chk.tm_hour != h || chk.tm_min != mi || chk.tm_sec != s)
		return -EINVAL;
	*out_s = (int64_t)t + (day ? 86400 : 0); /* a bare date is valid through that day */
	return 0;
}

/* A text setting, copied: a string, or for list_ok a list of strings joined with "; ".
 * NULL when absent or wrong (after a message). */
static char *get_text(struct hf_build *b, const config_setting_t *g, const char *key, bool list_ok)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	char *out = NULL;
	size_t len = 0;

	if (!s)
		return NULL;
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		out = strdup(config_setting_get_string(s));
		goto done;
	}
	if (!list_ok || (!config_setting_is_array(s) && !config_setting_is_list(s))) {
		els_diag_at(b->d, s, "%s: '%s' must be a string%s", b->where, key,
			    list_ok ? " or a list of strings" : "");
		return NULL;
	}
	for (int i = 0; i < config_setting_length(s); i++) {
		const char *t = config_setting_get_string(config_setting_get_elem(s, (unsigned)i));
		if (!t) {
			els_diag_at(b->d, s, "%s: '%s' must be a list of strings", b->where, key);
			free(out);
			return NULL;
		}
		char *n = realloc(out, len + strlen(t) + 3);
		if (!n) {
			free(out);
			b->err = -ENOMEM;
			return NULL;
		}
		out = n;
		len += (size_t)sprintf(out + len, "%s%s", len ? "; " : "", t);
	}
	if (!out)
		out = strdup("");
done:
	if (!out)
		b->err = -ENOMEM;
	return out;
}

/* requires = "tcp/443" or "tcp/https": the local service a remote must hold an established
 * session with (a flow it opened) before this permit matches for it. */
static void parse_requires(struct hf_build *b, const config_setting_t *s, struct hf_rule *r)
{
	const char *text = config_setting_get_string(s), *slash, *why = "";
	char proto[8];
	uint16_t lo, hi;
	int port = -1;

	if (!text || !(slash = strchr(text, '/')) || (size_t)(slash - text) >= sizeof(proto)) {
		els_diag_at(b->d, s, "%s: 'requires' must be \"PROTO/PORT\", e.g. \"tcp/443\"",
			    b->where);
		return;
	}
	memcpy(proto, text, (size_t)(slash - text));
	proto[slash - text] = '\0';
	if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0) {
		els_diag_at(b->d, s, "%s: 'requires': protocol \"%s\" is not tcp or udp", b->where,
			    proto);
		return;
	}
	int rc = els_port_parse(slash + 1, &lo, &hi, &why);
	if (rc == 0 && lo == hi && lo != 0) {
		port = lo;
	} else if (rc == -ENOENT) {
		if (!b->svc && !b->svc_err)
			b->svc_err = els_services_load(b->services_path, &b->svc);
		port = b->svc ? els_services_port(b->svc, slash + 1, proto) : -ENOENT;
	}
	if (port <= 0) {
		els_diag_at(b->d, s,
			    "%s: 'requires': \"%s\" is not one port (1-65535) or a %s "
			    "service name",
			    b->where, slash + 1, proto);
		return;
	}
	r->req_proto = proto[0] == 't' ? IPPROTO_TCP : IPPROTO_UDP;
	r->req_port = (uint16_t)port;
}

/* The ELS settings of a permit: registry metadata, expiry, session gate, mode. */
static void parse_els(struct hf_build *b, uint32_t idx)
{
	struct hf_permit *pm = &b->pm[idx];
	struct hf_rule *r = &b->c->rules[idx];
	const config_setting_t *g = pm->s, *s;

	pm->justification = get_text(b, g, "justification", false);
	pm->owner = get_text(b, g, "owner", false);
	pm->category = get_text(b, g, "category", false);
	pm->mitigations = get_text(b, g, "mitigations", true);
	if ((s = config_setting_get_member(g, "mode"))) {
		const char *v = config_setting_get_string(s);
		int m = v ? choice(v, modes) : -1;
		if (m < 0)
			els_diag_at(b->d, s, "%s: 'mode' must be \"enforce\" or \"observe\"",
				    b->where);
		r->observe = m == 1;
	}
	if ((s = config_setting_get_member(g, "expires"))) {
		pm->expires = get_text(b, g, "expires", false);
		if (pm->expires && hf_parse_expiry(pm->expires, &r->expires_s) < 0) {
			els_diag_at(b->d, s,
				    "%s: 'expires' = \"%s\" is not a date YYYY-MM-DD or "
				    "YYYY-MM-DDTHH:MM:SSZ (UTC)",
				    b->where, pm->expires);
		} else if (pm->expires && r->expires_s <= b->now_s) {
			/* Not an error: the policy stays valid, the exception is over. */
			r->expired = 1;
			els_log(ELS_LL_WARNING,
				"%s (line %d) expired on %s: it no longer matches (owner %s)",
				b->where, config_setting_source_line(g), pm->expires,
				pm->owner ? pm->owner : "not given");
		}
	}
	if ((s = config_setting_get_member(g, "requires"))) {
		pm->requires = get_text(b, g, "requires", false);
		if (pm->requires)
			parse_requires(b, s, r);
	}
	if ((s = config_setting_get_member(g, "grace"))) {
		long long v = is_int(s) ? config_setting_get_int64(s) : -1;
		if (!pm->requires)
			els_diag_at(b->d, s, "%s: 'grace' needs 'requires'", b->where);
		else if (v < 0 || v > MAX_GRACE_S)
			els_diag_at(b->d, s, "%s: 'grace' must be whole seconds 0..%d", b->where,
				    MAX_GRACE_S);
		else
			r->grace_ns = (uint64_t)v * ELS_NS_PER_S;
	}
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
	int proto = get_choice(b, g, "proto", hf_proto_names,
			       "\"tcp\", \"udp\", \"icmp\", \"icmpv6\" or \"any\"", r->id);
	pm->dir = dir == 1 ? ELS_DIR_OUT : ELS_DIR_IN;
	const config_setting_t *lps = config_setting_get_member(g, "local_ports");
	const config_setting_t *rps = config_setting_get_member(g, "remote_ports");
	const config_setting_t *ts = config_setting_get_member(g, "icmp_types");
	if (proto >= 0) {
		pm->protos = proto == HF_P_N ? HF_P_MASK_ANY : (uint8_t)(1u << proto);
		if ((lps || rps) && proto == HF_P_N)
			pm->protos = HF_P_MASK_PORTS; /* ports mean tcp and udp, not ICMP */
		if ((lps || rps) && (proto == HF_P_ICMP || proto == HF_P_ICMP6))
			els_diag_at(b->d, lps ? lps : rps,
				    "%s: ports do not apply to %s; use "
				    "'icmp_types'",
				    where, hf_proto_names[proto]);
		else if (lps || rps) {
			if (lps)
				parse_ports(b, lps, "local_ports", pm->protos, pm->lp);
			if (rps)
				parse_ports(b, rps, "remote_ports", pm->protos, pm->rp);
			pm->has_lp = lps != NULL;
			pm->has_rp = rps != NULL;
		}
		if (ts && proto != HF_P_ICMP && proto != HF_P_ICMP6)
			els_diag_at(b->d, ts,
				    "%s: 'icmp_types' needs proto \"icmp\" or "
				    "\"icmpv6\"",
				    where);
		else if (ts) {
			parse_types(b, ts, proto == HF_P_ICMP6, &pm->types[proto - HF_P_ICMP]);
			pm->has_types = true;
		}
	}
	if ((s = config_setting_get_member(g, "local")))
		parse_cidrs(b, s, "local", &r->local, &r->nlocal);
	if ((s = config_setting_get_member(g, "remote")))
		parse_cidrs(b, s, "remote", &pm->remote, &pm->nremote);
	pm->line = config_setting_source_line(g);
	pm->has_id = config_setting_get_member(g, "id") != NULL;
	parse_els(b, idx);
	hf_parse_service(b, idx);
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

static void build_free(struct hf_build *b)
{
	/* the permits (b->pm) belong to the conf: reports read them after the build */
	free(b->key);
	free(b->tmp);
	free(b->tmp2);
	els_services_free(b->svc);
}

int hf_build(const config_setting_t *section, const struct els_build_env *env, void **conf,
	     struct els_diag *d)
{
	struct hf_build b = {.d = d};
	const config_setting_t *list = NULL;
	unsigned before = d->count;
	uint32_t n = 0;
	int rc;

	b.services_path = env && env->services_path ? env->services_path : "/etc/services";
	b.now_s = (int64_t)time(NULL);
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
		const config_setting_t *m = config_setting_get_member(section, "mode");
		const char *mv = m ? config_setting_get_string(m) : NULL;
		if (m && (!mv || choice(mv, modes) < 0))
			els_diag_at(d, m,
				    "header_filter: 'mode' must be \"enforce\" or \"observe\"");
		b.c->observe = mv && strcmp(mv, "observe") == 0;
		const config_setting_t *f = config_setting_get_member(section, "fail");
		const char *fv = f ? config_setting_get_string(f) : NULL;
		b.c->fail_open = fv && strcmp(fv, "open") == 0; /* engine/policy.c checks it */
		list = config_setting_get_member(section, "permits");
		if (list && !config_setting_is_list(list) &&
		    !(config_setting_is_array(list) && config_setting_length(list) == 0)) {
			els_diag_at(d, list, "'permits' must be a list ( { ... }, ... )");
			list = NULL;
		}
	}
	n = list ? (uint32_t)config_setting_length(list) : 0;
	b.pm = b.c->pm = calloc((size_t)n + 1, sizeof(*b.pm));
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
		hf_compile(&b);
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
