/* The registry check of change control: every permit of a proposed policy must be an approved,
 * unexpired entry of the enterprise PPS registry. The document is read with the engine's own
 * loader (engine/policy_doc.c, the header filter's parser), exactly as an agent would read it,
 * and its permits through the registry view (include/els/registry.h). */
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"
#include "els/diag.h"
#include "els/policy.h"
#include "els/registry.h"

void change_problems_free(struct change_problems *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].text);
	free(p->v);
	p->v = NULL;
	p->n = p->cap = 0;
}

void change_problem_add(struct change_problems *p, const char *fmt, ...)
{
	va_list ap;
	char *t = NULL;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		struct change_problem *v = realloc(p->v, cap * sizeof(*v));
		if (!v)
			return;
		p->v = v;
		p->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&t, fmt, ap) < 0)
		t = NULL;
	va_end(ap);
	if (t)
		p->v[p->n++].text = t;
}

void change_sha256_hex(const char *body, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned mdlen = 0;

	EVP_Digest(body, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[64] = 0;
}

/* A registry date is valid through that day (UTC), as a permit's own `expires` is. */
int change_date_end(const char *date, time_t *out)
{
	struct tm tm = {0}, chk;
	int y, mo, d, n = 0;

	if (!date || sscanf(date, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10 || date[10])
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	chk = tm;
	time_t t = timegm(&chk);
	if (t == (time_t)-1 || y < 1970 || chk.tm_mday != d || chk.tm_mon != mo - 1)
		return -EINVAL; /* 2026-02-30 moved into March: not a date */
	*out = t + 86400;
	return 0;
}

int change_ports_cover(const char *text, unsigned lo, unsigned hi)
{
	const char *p = text;

	if (!text || !*text)
		return 1;
	while (*p) {
		char *end;
		unsigned long a, b;
		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9')
			return -1;
		a = b = strtoul(p, &end, 10);
		if (*end == '-') {
			p = end + 1;
			if (*p < '0' || *p > '9')
				return -1;
			b = strtoul(p, &end, 10);
		}
		if (a > 65535 || b > 65535 || b < a)
			return -1;
		if (lo >= a && hi <= b)
			return 1;
		p = end;
		while (*p == ' ')
			p++;
		if (*p == ',')
			p++;
		else if (*p)
			return -1;
	}
	return 0;
}

static const struct change_registry_entry *find(const struct change_registry_entry *reg, size_t n,
						const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(reg[i].id, id) == 0)
			return &reg[i];
	return NULL;
}

/* The protocols a permit's "what" text names: "tcp local 443 + udp local 53" -> tcp, udp. */
static bool what_has_proto(const char *what, const char *proto)
{
	size_t n = strlen(proto);
	const char *p = what;

	while (p && *p) {
		if (strncmp(p, proto, n) == 0 && (p[n] == ' ' || p[n] == 0))
			return true;
		p = strstr(p, " + ");
		if (p)
			p += 3;
	}
	return false;
}

static bool proto_allowed(const char *reg_proto, const char *what, char *bad, size_t len)
{
	static const char *const protos[] = {"tcp", "udp", "icmp", "icmpv6"};

	if (!reg_proto || strcmp(reg_proto, "any") == 0)
		return true;
	for (unsigned i = 0; i < 4; i++)
		if (what_has_proto(what, protos[i]) && strcmp(protos[i], reg_proto) != 0) {
			snprintf(bad, len, "%s", protos[i]);
			return false;
		}
	return true;
}

struct port_walk {
	const struct change_registry_entry *reg;
	size_t nreg;
	struct change_problems *out;
};

static void check_port(void *arg, const char *id, uint8_t proto, uint16_t lo, uint16_t hi)
{
	struct port_walk *w = arg;
	const struct change_registry_entry *e = find(w->reg, w->nreg, id);
	const char *pn = proto == IPPROTO_TCP ? "tcp" : "udp";

	if (!e)
		return; /* reported as not in the registry */
	int c = change_ports_cover(e->port, lo, hi);
	if (c == 1)
		return;
	if (lo == hi)
		change_problem_add(w->out,
				   "permit '%s' opens %s port %u, which registry entry '%s' does "
				   "not approve (it approves port %s)",
				   id, pn, lo, id, e->port);
	else
		change_problem_add(w->out,
				   "permit '%s' opens %s ports %u-%u, which registry entry '%s' "
				   "does not approve (it approves port %s)",
				   id, pn, lo, hi, id, e->port);
}

static void check_permits(json_t *permits, const struct change_registry_entry *reg, size_t nreg,
			  time_t now, struct change_problems *out)
{
	size_t i;
	json_t *pm;

	json_array_foreach(permits, i, pm)
	{
		const char *id = json_string_value(json_object_get(pm, "id"));
		const char *dir = json_string_value(json_object_get(pm, "dir"));
		const char *what = json_string_value(json_object_get(pm, "what"));
		const char *exp = json_string_value(json_object_get(pm, "expires"));
		json_int_t line = json_integer_value(json_object_get(pm, "line"));
		char bad[16];

		if (!id)
			continue;
		const struct change_registry_entry *e = find(reg, nreg, id);
		if (!e) {
			change_problem_add(
			    out,
			    "policy:%lld: permit '%s' is not in the PPS registry: add "
			    "a registry entry '%s' (justification, owner) before "
			    "approving",
			    (long long)line, id, id);
			continue;
		}
		if (e->expires_s && e->expires_s <= now)
			change_problem_add(out,
					   "policy:%lld: permit '%s': its registry entry has "
					   "expired: review and renew it before approving",
					   (long long)line, id);
		if (json_is_true(json_object_get(pm, "expired")))
			change_problem_add(out,
					   "policy:%lld: permit '%s' expired on %s (its 'expires' "
					   "setting): remove it or renew it",
					   (long long)line, id, exp ? exp : "?");
		if (dir && e->direction && strcmp(dir, e->direction) != 0)
			change_problem_add(out,
					   "policy:%lld: permit '%s' is dir \"%s\" but registry "
					   "entry '%s' approves \"%s\"",
					   (long long)line, id, dir, id, e->direction);
		if (what && !proto_allowed(e->proto, what, bad, sizeof(bad)))
			change_problem_add(out,
					   "policy:%lld: permit '%s' admits %s but registry entry "
					   "'%s' approves %s only",
					   (long long)line, id, bad, id, e->proto);
	}
}

int change_registry_check(const char *body, size_t len, const struct change_registry_entry *reg,
			  size_t nreg, time_t now, struct change_problems *out, bool *loaded)
{
	struct els_diag d;
	struct els_policy *p;
	size_t before = out->n;
	char *js = NULL;
	size_t jlen = 0;

	els_diag_init(&d, "policy");
	/* No list files here: the console holds none of the agents' (dirfd -1 makes any list
	 * file the document names a problem, said by the loader). */
	p = els_policy_load_document(body, len, "policy", -1, "the agent's policy_dir", NULL, &d);
	for (unsigned i = 0; i < d.count; i++)
		change_problem_add(out, "%s", d.msgs[i]);
	els_diag_free(&d);
	if (loaded)
		*loaded = p != NULL;
	if (!p)
		return (int)(out->n - before);
	p->path = strdup("policy");
	FILE *f = open_memstream(&js, &jlen);
	int rc = f && p->path ? els_registry_report_json(p, NULL, NULL, f) : -ENOMEM;
	if (f)
		fclose(f);
	if (rc >= 0) {
		json_t *root = json_loadb(js, jlen, 0, NULL);
		check_permits(json_object_get(root, "permits"), reg, nreg, now, out);
		json_decref(root);
		struct port_walk w = {reg, nreg, out};
		els_registry_inbound_ports(p, check_port, &w);
	} else if (rc != -ENOENT) {
		free(js);
		els_policy_free(p);
		return -ENOMEM;
	}
	free(js);
	els_policy_free(p);
	return (int)(out->n - before);
}
