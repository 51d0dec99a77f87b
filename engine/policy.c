/* Config file -> policy generation. Every error is collected (file:line: message) so that
 * `elsd -n` reports all of them at once; a policy is returned only when all of it is valid. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "els/cfgerr.h"
#include "els/mgmt.h"
#include "els/monitor.h"
#include "els/policy.h"
#include "els/policy_int.h"
#include "els/metrics_conf.h"
#include "els/events_conf.h"

/* Top-level keys that are not handler sections. */
static const char *const top_keys[] = {
	"queues",	 "fail_open", "copy_bytes", "queue_maxlen", "log_level",
	"local_addresses", "flows",	"monitor",    "chain",	      "user", "management", "agent_id",
	"offload", "syn_guard", "rules", "policy_dir", "metrics", "events", "console", NULL,
};

static bool name_in(const char *name, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(*list, name) == 0)
			return true;
	return false;
}

/* Checks that s, when present, is a group whose every child is named in allowed. */
static void check_keys(const config_setting_t *s, const char *what, const char *const *allowed,
		       struct els_diag *d)
{
	if (s && !config_setting_is_group(s)) {
		els_diag_at(d, s, "'%s' must be a group: %s = { ... };", what, what);
		return;
	}
	for (int i = 0; s && i < config_setting_length(s); i++) {
		const config_setting_t *c = config_setting_get_elem(s, (unsigned)i);
		if (!name_in(config_setting_name(c), allowed))
			els_diag_at(d, c, "unknown setting '%s' in %s", config_setting_name(c),
				    what);
	}
}

static const config_setting_t *member(const config_setting_t *group, const char *name)
{
	return group && config_setting_is_group(group) ? config_setting_get_member(group, name)
						       : NULL;
}

/* Reads an optional integer in [lo, hi]; keeps *out (the default) when absent. */
static void get_uint(const config_setting_t *group, const char *name, unsigned lo, unsigned hi,
		     unsigned *out, struct els_diag *d)
{
	const config_setting_t *s = member(group, name);
	if (!s)
		return;
	int t = config_setting_type(s);
	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
		els_diag_at(d, s, "'%s' must be an integer", name);
		return;
	}
	long long v = config_setting_get_int64(s);
	if (v < (long long)lo || v > (long long)hi) {
		els_diag_at(d, s, "'%s' = %lld is out of range %u..%u", name, v, lo, hi);
		return;
	}
	*out = (unsigned)v;
}

static const char *get_string(const config_setting_t *group, const char *name,
			      struct els_diag *d)
{
	const config_setting_t *s = member(group, name);
	if (!s)
		return NULL;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		els_diag_at(d, s, "'%s' must be a string", name);
		return NULL;
	}
	return config_setting_get_string(s);
}

/* Maps a string setting onto one of names[]; returns its index or def. */
static int get_choice(const config_setting_t *group, const char *name, const char *const *names,
		      int def, struct els_diag *d)
{
	const char *v = get_string(group, name, d);
	if (!v)
		return def;
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], v) == 0)
			return i;
	char list[160] = "";
	for (int i = 0; names[i]; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"",
			 i ? ", " : "", names[i]);
	els_diag_at(d, member(group, name), "'%s' = \"%s\" is not one of %s", name, v, list);
	return def;
}

/* syn_guard = [ 443 ]: TCP ports whose handshakes the kernel's SYNPROXY completes before
 * anything is queued (els-rules writes the rules; agent/packet/syn_guard.c judges the
 * connection at the server's SYN-ACK). A list, so that a typo cannot guard a range. */
static void parse_syn_guard(const config_setting_t *g, struct els_settings *set,
			    struct els_diag *d)
{
	if (!g)
		return;
	set->syn_guard_line = (int)config_setting_source_line(g);
	if (config_setting_type(g) != CONFIG_TYPE_ARRAY && config_setting_type(g) != CONFIG_TYPE_LIST) {
		els_diag_at(d, g, "'syn_guard' must be a list of TCP ports, e.g. [ 443 ]");
		return;
	}
	int n = config_setting_length(g);
	if (n > ELS_SYN_GUARD_MAX) {
		els_diag_at(d, g, "'syn_guard' lists %d ports; at most %d", n, ELS_SYN_GUARD_MAX);
		return;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(g, (unsigned)i);
		int t = config_setting_type(e);
		long long v = (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
				  ? config_setting_get_int64(e) : -1;
		if (v < 1 || v > 65535) {
			els_diag_at(d, e, "'syn_guard' entry %d must be a TCP port from 1 to 65535", i + 1);
			continue;
		}
		bool dup = false;
		for (unsigned k = 0; k < set->nsyn_guard; k++)
			dup |= set->syn_guard[k] == (uint16_t)v;
		if (dup) {
			els_diag_at(d, e, "'syn_guard' lists port %lld twice", v);
			continue;
		}
		set->syn_guard[set->nsyn_guard++] = (uint16_t)v;
	}
}

static void parse_queues(const config_setting_t *root, struct els_settings *set,
			 struct els_diag *d)
{
	const config_setting_t *s = member(root, "queues");
	set->queue_first = set->queue_last = 0;
	if (!s)
		return;
	if (config_setting_type(s) == CONFIG_TYPE_INT) {
		int v = config_setting_get_int(s);
		if (v < 0 || v > 65535) {
			els_diag_at(d, s, "'queues' = %d is not a queue number 0..65535", v);
			return;
		}
		set->queue_first = set->queue_last = (unsigned)v;
		return;
	}
	const char *v = config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s)
								     : NULL;
	unsigned a, b;
	int n = 0;
	if (v && sscanf(v, "%u-%u%n", &a, &b, &n) == 2 && v[n] == '\0') {
		/* range */
	} else if (v && sscanf(v, "%u%n", &a, &n) == 1 && v[n] == '\0') {
		b = a;
	} else {
		els_diag_at(d, s, "'queues' must be a queue number or a range such as \"0-3\"");
		return;
	}
	if (a > b || b > 65535 || b - a >= 64) {
		els_diag_at(d, s, "'queues' = \"%s\": need first <= last <= 65535, at most 64 queues",
			    v);
		return;
	}
	set->queue_first = a;
	set->queue_last = b;
}

static void parse_local(const config_setting_t *root, struct els_settings *set,
			struct els_diag *d)
{
	const config_setting_t *s = member(root, "local_addresses");
	if (!s)
		return;
	if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
		els_diag_at(d, s, "'local_addresses' must be a list of addresses");
		return;
	}
	unsigned n = (unsigned)config_setting_length(s);
	set->local = calloc(n ? n : 1, sizeof(*set->local));
	if (!set->local) {
		els_diag_at(d, s, "out of memory");
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		const char *why = "not a string";
		const char *txt = config_setting_get_string(e);
		if (!txt || els_cidr_parse(txt, &set->local[set->nlocal], &why) < 0) {
			els_diag_at(d, e, "local_addresses: \"%s\": %s", txt ? txt : "?", why);
			continue;
		}
		set->nlocal++;
	}
}

static void parse_settings(const config_setting_t *root, struct els_settings *set,
			   struct els_diag *d)
{
	static const char *const levels[] = {"error", "warning", "info", "debug", NULL};
	static const char *const log_modes[] = {"default", "all", "drops", NULL};
	static const char *const flow_keys[] = {"capacity", NULL};
	static const char *const mon_keys[] = {"path",	    "log",	   "ring_size",
					       "key_file", "retention_days", "max_size_mb",
					       NULL};

	parse_queues(root, set, d);
	const config_setting_t *fo = member(root, "fail_open");
	if (fo) {
		if (config_setting_type(fo) != CONFIG_TYPE_BOOL)
			els_diag_at(d, fo, "'fail_open' must be true or false");
		else
			set->fail_open = config_setting_get_bool(fo);
	}
	const config_setting_t *off = member(root, "offload");
	if (off) {
		if (config_setting_type(off) != CONFIG_TYPE_BOOL)
			els_diag_at(d, off, "'offload' must be true or false");
		else
			set->offload = config_setting_get_bool(off);
	}
	parse_syn_guard(member(root, "syn_guard"), set, d);
	/* rules = { self_heal = true; heal_max = 10; heal_window_s = 10; }: agent/rulewatch.h */
	static const char *const rules_keys[] = {"self_heal", "heal_max", "heal_window_s", NULL};
	const config_setting_t *rules = member(root, "rules");
	check_keys(rules, "rules", rules_keys, d);
	set->rules_self_heal = true;
	const config_setting_t *heal = member(rules, "self_heal");
	if (heal) {
		if (config_setting_type(heal) != CONFIG_TYPE_BOOL)
			els_diag_at(d, heal, "'rules.self_heal' must be true or false");
		else
			set->rules_self_heal = config_setting_get_bool(heal);
	}
	set->rules_heal_max = 10;
	set->rules_heal_window_s = 10;
	get_uint(rules, "heal_max", 1, 1000, &set->rules_heal_max, d);
	get_uint(rules, "heal_window_s", 1, 3600, &set->rules_heal_window_s, d);
	const char *user = get_string(root, "user", d);
	if (user && *user && !getpwnam(user))
		els_diag_at(d, member(root, "user"),
			    "'user' = \"%s\": no such user (create it, or remove the setting)", user);
	set->user = user && *user ? strdup(user) : NULL;
	set->copy_bytes = 256;
	get_uint(root, "copy_bytes", 64, 65535, &set->copy_bytes, d);
	set->queue_maxlen = 4096;
	get_uint(root, "queue_maxlen", 16, 1u << 20, &set->queue_maxlen, d);
	set->log_level = get_choice(root, "log_level", levels, ELS_LL_INFO, d);
	parse_local(root, set, d);

	const config_setting_t *flows = member(root, "flows");
	check_keys(flows, "flows", flow_keys, d);
	set->flow_capacity = 262144;
	get_uint(flows, "capacity", 1, 1u << 26, &set->flow_capacity, d);

	const config_setting_t *mon = member(root, "monitor");
	check_keys(mon, "monitor", mon_keys, d);
	const char *path = get_string(mon, "path", d);
	set->monitor_path = strdup(path ? path : "/var/lib/elsd/monitor.db");
	set->log_mode = get_choice(mon, "log", log_modes, ELS_LOG_DEFAULT, d);
	set->monitor_ring = 65536;
	get_uint(mon, "ring_size", 1024, 1u << 24, &set->monitor_ring, d);
	const char *key = get_string(mon, "key_file", d);
	set->monitor_key = key ? strdup(key) : NULL;
	const char *agent = get_string(root, "agent_id", d);
	set->agent_id = agent ? strdup(agent) : NULL;
	set->monitor_retention_days = 30;
	get_uint(mon, "retention_days", 0, 36500, &set->monitor_retention_days, d);
	set->monitor_max_mb = ELS_MONITOR_MAX_MB_AUTO; /* unset: sized to the disk at start */
	get_uint(mon, "max_size_mb", 0, 1u << 24, &set->monitor_max_mb, d);
	set->policy_dir = strdup(ELS_POLICY_DIR_DEFAULT);
	const char *pd = get_string(root, "policy_dir", d);
	if (pd && pd[0] != '/')
		els_diag_at(d, member(root, "policy_dir"),
			    "'policy_dir' must be an absolute path, e.g. \"%s\"",
			    ELS_POLICY_DIR_DEFAULT);
	else if (pd) {
		free(set->policy_dir);
		set->policy_dir = strdup(pd);
	}
}

/* Builds the chain: handler names in order, each compiled from its section. */
void els_policy_build_chain(const config_setting_t *root, struct els_policy *p,
			    const struct els_build_env *env, struct els_diag *d)
{
	const config_setting_t *chain = member(root, "chain");
	if (!chain) {
		els_diag_at(d, NULL, "no 'chain' list: name the handlers every packet passes, "
				     "e.g. chain = [ \"iplist\", \"tracker\", \"header_filter\" ];");
		return;
	}
	if (!config_setting_is_array(chain) && !config_setting_is_list(chain)) {
		els_diag_at(d, chain, "'chain' must be a list of handler names");
		return;
	}
	/* The flow stage by its flag (ELS_HANDLER_FLOW_STAGE), never by its name: where it stands
	 * splits the chain into screens and admitting handlers (docs/design-flow-stage.md). */
	const struct els_handler *flow_stage = NULL, *after_flow = NULL;
	for (int i = 0; i < config_setting_length(chain); i++) {
		const config_setting_t *e = config_setting_get_elem(chain, (unsigned)i);
		const char *name = config_setting_get_string(e);
		const struct els_handler *h = name ? els_handler_find(name) : NULL;
		if (!h) {
			char known[256] = "";
			for (const struct els_handler *const *k = els_handler_all(); *k; k++)
				snprintf(known + strlen(known), sizeof(known) - strlen(known),
					 "%s%s", known[0] ? ", " : "", (*k)->name);
			els_diag_at(d, e, "unknown handler '%s' in chain (known: %s)",
				    name ? name : "(not a string)", known);
			continue;
		}
		bool dup = false;
		for (unsigned j = 0; j < p->nlinks; j++)
			dup |= p->links[j].h == h;
		if (dup) {
			els_diag_at(d, e, "handler '%s' appears twice in chain", name);
			continue;
		}
		if (p->nlinks == ELS_CHAIN_MAX) {
			els_diag_at(d, e, "chain has more than %d handlers", ELS_CHAIN_MAX);
			break;
		}
		if (h->flags & ELS_HANDLER_FLOW_STAGE)
			flow_stage = h;
		else if ((h->flags & ELS_HANDLER_AFTER_FLOW) && !flow_stage && !after_flow)
			after_flow = h; /* before the flow stage, if the chain has one further on */

		const config_setting_t *sec = member(root, name);
		if (sec && !config_setting_is_group(sec)) {
			els_diag_at(d, sec, "'%s' must be a group { ... }", name);
			continue;
		}
		static const char *const fails[] = {"closed", "open", NULL};
		struct els_chain_link *l = &p->links[p->nlinks];
		l->h = h;
		for (unsigned k = 0; els_handler_all()[k]; k++)
			if (els_handler_all()[k] == h)
				l->stat_slot = (uint8_t)k;
		l->fail_open = get_choice(sec, "fail", fails, 0, d) == 1;
		if (h->build(sec, env, &l->conf, d) == 0)
			p->nlinks++;
	}
	if (flow_stage && after_flow)
		els_diag_at(d, chain,
			    "'%s' must come before '%s' in chain, or replies of admitted flows "
			    "meet the %s's default deny",
			    flow_stage->name, after_flow->name, after_flow->name);
	/* A handler section whose handler is not in the chain is kept (it may be switched on
	 * later), but a section named after no handler at all is a typo worth reporting. A
	 * management document has its own check (policy_doc.c). */
	for (int i = 0; !env->policy_dir && i < config_setting_length(root); i++) {
		const config_setting_t *c = config_setting_get_elem(root, (unsigned)i);
		const char *n = config_setting_name(c);
		if (!name_in(n, top_keys) && !els_handler_find(n))
			els_diag_at(d, c, "unknown setting '%s' (not a setting and not a handler)",
				    n);
	}
}

int els_policy_hash_file(const char *path, char hex[65])
{
	unsigned char md[32];
	unsigned mdlen = 0;
	char buf[65536];
	size_t n;
	int rc = -EIO;
	FILE *f = fopen(path, "rbe");
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!f || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		goto out;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (!EVP_DigestUpdate(ctx, buf, n))
			goto out;
	if (ferror(f) || !EVP_DigestFinal_ex(ctx, md, &mdlen))
		goto out;
	for (unsigned i = 0; i < mdlen; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	if (f)
		fclose(f);
	return rc;
}

/* libconfig's error, as agent/cfgerr.c explains it. */
static void explain_parse_error(const config_t *cfg, const char *path, struct els_diag *d)
{
	const char *file = config_error_file(cfg) ? config_error_file(cfg) : path;
	char *dir = strdup(path);
	size_t len = 0;
	char *buf = els_cfgerr_slurp(file, &len);
	struct els_cfgerr e;

	els_cfgerr_explain(buf, len, (unsigned)config_error_line(cfg), config_error_text(cfg),
			   dir ? dirname(dir) : NULL, &e);
	els_diag_file(d, file, e.line, "%s", e.msg);
	free(buf);
	free(dir);
}

static void glued_note(void *arg, unsigned line, const char *a, size_t alen, const char *b,
		       size_t blen)
{
	void **ctx = arg;

	els_diag_file(ctx[0], ctx[1], line,
		      "note: \"%.*s\" \"%.*s\" are two strings with no ',' between them: "
		      "libconfig joins them into \"%.*s%.*s\"; put a ',' between two values",
		      (int)alen, a, (int)blen, b, (int)alen, a, (int)blen, b);
}

/* A config with errors: strings joined for want of a comma are a likely cause. */
static void note_glued_strings(const char *path, struct els_diag *d)
{
	size_t len = 0;
	char *buf = els_cfgerr_slurp(path, &len);
	void *ctx[2] = {d, (void *)path};

	els_cfgerr_glued(buf, len, glued_note, ctx);
	free(buf);
}

struct els_policy *els_policy_load(const char *path, const char *services_path,
				   struct els_diag *d)
{
	return els_policy_load_with(path, services_path, NULL, d);
}

struct els_policy *els_policy_load_with(const char *path, const char *services_path,
					const char *managed, struct els_diag *d)
{
	config_t cfg;
	struct els_policy *p = calloc(1, sizeof(*p));
	unsigned errors_before = d->count;
	char *dir_copy = strdup(path);

	config_init(&cfg);
	if (!p || !dir_copy) {
		els_diag_file(d, path, 0, "out of memory");
		goto fail;
	}
	/* @include paths are relative to the config file's directory. */
	const char *conf_dir = dirname(dir_copy);
	config_set_include_dir(&cfg, conf_dir);
	if (!config_read_file(&cfg, path)) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
			els_diag_file(d, path, 0, "cannot read: %s", strerror(errno ? errno : EIO));
		else
			explain_parse_error(&cfg, path, d);
		goto fail;
	}
	p->path = strdup(path);
	if (!p->path || els_policy_hash_file(path, p->hash) < 0) {
		els_diag_file(d, path, 0, "cannot read: %s", strerror(errno ? errno : EIO));
		goto fail;
	}
	const config_setting_t *root = config_root_setting(&cfg);
	struct els_build_env env = {
		.config_path = path,
		.services_path = services_path ? services_path : "/etc/services",
	};
	parse_settings(root, &p->set, d);
	els_mgmt_config_parse(root, path, &p->set.mgmt, d);
	/* The management port is accepted ahead of the guard's rules: listed, it would look
	 * guarded and not be. */
	for (unsigned i = 0; p->set.mgmt && p->set.mgmt->listen && i < p->set.nsyn_guard; i++)
		if (p->set.syn_guard[i] == p->set.mgmt->port)
			els_diag_at(d, config_setting_get_member(root, "syn_guard"),
				    "'syn_guard' lists %u, the management port (management.listen): "
				    "it is accepted before the guard; remove it from syn_guard",
				    p->set.mgmt->port);
	els_metrics_config_parse(root, path, &p->set.metrics, d);
	els_events_conf_parse(root, path, &p->set.events, d);
	/* Everything in policy_dir is a console's to name (as list files): the host's own
	 * config, keys and certificates must not be there. */
	char rp_dir[PATH_MAX], rp_conf[PATH_MAX];
	if (p->set.policy_dir && realpath(p->set.policy_dir, rp_dir) &&
	    realpath(conf_dir, rp_conf) && strcmp(rp_dir, rp_conf) == 0)
		els_diag_at(d, config_setting_get_member(root, "policy_dir"),
			    "'policy_dir' = \"%s\" is the config file's own directory: give the "
			    "console's policy and list files a directory of their own",
			    p->set.policy_dir);
	/* The policy: the managed document in policy_dir when there is one (what consoles
	 * applied, checked as untrusted), else the chain and sections of this file. */
	int m = els_policy_managed_build(p, managed, &env, d);
	if (m == 0)
		els_policy_build_chain(root, p, &env, d);
	if (d->count != errors_before) {
		note_glued_strings(path, d);
		goto fail;
	}
	config_destroy(&cfg);
	free(dir_copy);
	return p;
fail:
	config_destroy(&cfg);
	free(dir_copy);
	els_policy_free(p);
	if (d->count == errors_before)
		els_diag_file(d, path, 0, "invalid configuration");
	return NULL;
}

struct els_policy *els_policy_load_report(const char *path, const char *services_path,
					  FILE *err)
{
	struct els_diag d;
	els_diag_init(&d, path);
	struct els_policy *p = els_policy_load(path, services_path, &d);
	if (!p)
		els_diag_print(&d, err);
	els_diag_free(&d);
	return p;
}

bool els_policy_key_known(const char *name)
{
	return name_in(name, top_keys) || els_handler_find(name);
}

void els_policy_free(struct els_policy *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->nlinks; i++)
		p->links[i].h->destroy(p->links[i].conf);
	free(p->set.monitor_path);
	free(p->set.monitor_key);
	free(p->set.agent_id);
	free(p->set.user);
	free(p->set.policy_dir);
	free(p->policy_file);
	els_mgmt_config_free(p->set.mgmt);
	els_metrics_config_free(p->set.metrics);
	els_events_conf_free(p->set.events);
	free(p->set.local);
	free(p->path);
	free(p);
}
