/* iplist: drops packets whose remote address is on a deny list, and optionally everything not
 * on an allow list. Both lists go into one longest-prefix-match table, so the most specific
 * entry decides: an allow /32 opens a hole in a denied /16, and a deny /32 closes one in an
 * allowed range. An allow match only means "not denied": the packet goes on to the next
 * handlers (the port policy still applies). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "els/path.h"
#include "els/handler.h"
#include "els/listfile.h"
#include "els/lpm.h"

enum { LIST_DENY = 0, LIST_ALLOW = 1 };
static const char *const list_names[] = {"deny", "allow"};

/* The LPM value: the rule id (1-based entry number in load order), with the list in the top
 * bit so that the packet path needs one lookup and no second array. */
#define VAL_ALLOW   0x80000000u
#define VAL_RULE(v) ((v) & ~VAL_ALLOW)
#define MAX_RULES   (VAL_ALLOW - 1)

struct iplist_conf {
	struct els_lpm *lpm; /* [I] built once, read-only afterwards */
	uint8_t default_drop;
	uint32_t nrules;
};

/* Where an entry was first seen, to name both places when a prefix is on both lists. */
struct origin {
	const char *file; /* NULL: the main config (libconfig gives no name for strings) */
	unsigned line;
};

struct iplist_build {
	struct iplist_conf *c;
	struct els_diag *diag;
	struct origin *orig; /* by rule id */
	uint32_t norig;
	int list;   /* LIST_* being loaded */
	int failed; /* -errno of the first failure that is not a bad entry */
};

static const char *where(const char *file, const struct els_diag *d)
{
	if (file)
		return file;
	return d->default_file ? d->default_file : "(config)";
}

/* Adds one entry; reports a prefix on both lists at the second place, naming the first. */
static int add_entry(const struct els_cidr *cidr, const char *file, unsigned line, void *arg)
{
	struct iplist_build *b = arg;
	struct iplist_conf *c = b->c;

	if (c->nrules == MAX_RULES)
		return b->failed = -E2BIG;
	uint32_t id = ++c->nrules;
	uint32_t old = els_lpm_get(c->lpm, cidr);
	if (old != ELS_LPM_NONE) {
		int old_list = old & VAL_ALLOW ? LIST_ALLOW : LIST_DENY;
		if (old_list != b->list) {
			char buf[ELS_ADDR_STRLEN];
			const struct origin *o = &b->orig[VAL_RULE(old)];
			els_diag_file(b->diag, file, line,
				      "%s/%u is on the %s list here and on the %s list at %s:%u: "
				      "remove one of them",
				      els_addr_str(&cidr->addr, cidr->family, buf), cidr->plen,
				      list_names[b->list], list_names[old_list],
				      where(o->file, b->diag), o->line);
		}
		return 0; /* a repeat on the same list is harmless; the first keeps its id */
	}
	if (id >= b->norig) {
		uint32_t n = b->norig ? b->norig * 2 : 64;
		struct origin *no = realloc(b->orig, (size_t)n * sizeof(*no));
		if (!no)
			return b->failed = -ENOMEM;
		b->orig = no;
		b->norig = n;
	}
	b->orig[id].file = file;
	b->orig[id].line = line;
	int rc = els_lpm_insert(c->lpm, cidr, id | (b->list == LIST_ALLOW ? VAL_ALLOW : 0));
	if (rc < 0)
		return b->failed = rc;
	return 0;
}

static bool is_list(const config_setting_t *s)
{
	return config_setting_is_array(s) || config_setting_is_list(s);
}

static void load_inline(struct iplist_build *b, const config_setting_t *s)
{
	if (!s)
		return;
	if (!is_list(s)) {
		els_diag_at(b->diag, s,
			    "iplist: '%s' must be a list of addresses or CIDRs, e.g. "
			    "[ \"198.51.100.0/24\" ]",
			    config_setting_name(s));
		return;
	}
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *txt = config_setting_get_string(e);
		const char *why = "not a string";
		struct els_cidr cidr;
		if (!txt || els_cidr_parse(txt, &cidr, &why) < 0) {
			els_diag_at(b->diag, e, "iplist: %s entry \"%s\": %s",
				    config_setting_name(s), txt ? txt : "?", why);
			continue;
		}
		if (b->failed)
			continue;
		add_entry(&cidr, config_setting_source_file(e),
			  (unsigned)config_setting_source_line(e), b);
	}
}

/* Paths of the files loaded, kept until the build ends because origins point at them. */
struct pathlist {
	char **v;
	unsigned n, cap;
};

static char *keep_path(struct pathlist *pl, char *p)
{
	if (!p)
		return NULL;
	if (pl->n == pl->cap) {
		unsigned cap = pl->cap ? pl->cap * 2 : 8;
		char **v = realloc(pl->v, cap * sizeof(*v));
		if (!v) {
			free(p);
			return NULL;
		}
		pl->v = v;
		pl->cap = cap;
	}
	return pl->v[pl->n++] = p;
}

static void load_files(struct iplist_build *b, const config_setting_t *s,
		       const struct els_build_env *env, struct pathlist *pl)
{
	if (!s)
		return;
	if (!is_list(s)) {
		els_diag_at(b->diag, s, "iplist: '%s' must be a list of file paths",
			    config_setting_name(s));
		return;
	}
	for (int i = 0; i < config_setting_length(s); i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *txt = config_setting_get_string(e);
		if (!txt || !txt[0]) {
			els_diag_at(b->diag, e, "iplist: %s: each entry must be a file path",
				    config_setting_name(s));
			continue;
		}
		bool remote = env && env->policy_dir;
		const char *why;
		if (remote && els_listfile_name_check(txt, &why) < 0) {
			els_diag_at(b->diag, e,
				    "iplist: %s: \"%s\" is %s; a policy from the management "
				    "channel names list files inside %s only",
				    config_setting_name(s), txt, why, env->policy_dir);
			continue;
		}
		char *path = NULL;
		if (!remote)
			/* from the main config file's directory (els/path.h) */
			path = els_path_beside(txt, env ? env->config_path : NULL);
		else if (asprintf(&path, "%s/%s", env->policy_dir, txt) < 0)
			path = NULL;
		if (!path) {
			b->failed = -ENOMEM;
			return;
		}
		/* Once each: a file named N times is read and inserted N times, and every later
		 * list.add (which rebuilds the policy on elsd's main thread, with no checker)
		 * would pay N times for the file it grows. */
		bool again = false;
		for (unsigned k = 0; k < pl->n && !again; k++)
			again = strcmp(pl->v[k], path) == 0;
		if (again) {
			els_diag_at(b->diag, e, "iplist: %s names \"%s\" a second time (a list file is "
						"loaded once: name it in one place only)",
				    config_setting_name(s), txt);
			free(path);
			continue;
		}
		path = keep_path(pl, path);
		if (!path) {
			b->failed = -ENOMEM;
			return;
		}
		int failed = b->failed;
		els_listfile_add_fn add = failed ? NULL : add_entry;
		int rc = remote ? els_listfile_load_at(env->policy_dirfd, txt, path,
						       ELS_LISTFILE_MAX_BYTES, b->diag, add, b)
				: els_listfile_load(path, b->diag, add, b);
		if (rc < 0 && rc != -EINVAL && b->failed == failed)
			/* Not bad lines, not our own failure: the file could not be read. The
			 * message names the file; this one names the setting that led there. */
			els_diag_at(b->diag, e, "iplist: %s names \"%s\", which cannot be read",
				    config_setting_name(s), txt);
	}
}

static const char *const iplist_keys[] = {"deny",    "allow", "deny_files", "allow_files",
					  "default", "fail",  NULL};

static int iplist_build(const config_setting_t *section, const struct els_build_env *env,
			void **conf, struct els_diag *diag)
{
	struct iplist_build b = {.diag = diag};
	struct pathlist pl = {0};
	unsigned errors_before = diag->count;
	int rc = 0;

	*conf = NULL;
	b.c = calloc(1, sizeof(*b.c));
	if (b.c)
		b.c->lpm = els_lpm_new();
	if (!b.c || !b.c->lpm) {
		els_diag_at(diag, section, "iplist: out of memory");
		rc = -ENOMEM;
		goto out;
	}

	for (int i = 0; section && i < config_setting_length(section); i++) {
		const config_setting_t *s = config_setting_get_elem(section, (unsigned)i);
		const char *name = config_setting_name(s);
		bool known = false;
		for (const char *const *k = iplist_keys; *k; k++)
			known |= strcmp(*k, name) == 0;
		if (!known)
			els_diag_at(
			    diag, s,
			    "unknown setting '%s' in iplist (known: deny, allow, deny_files, "
			    "allow_files, default, fail)",
			    name);
	}

	const config_setting_t *def =
	    section ? config_setting_get_member(section, "default") : NULL;
	if (def) {
		const char *v = config_setting_get_string(def);
		if (v && strcmp(v, "drop") == 0)
			b.c->default_drop = 1;
		else if (!v || strcmp(v, "continue") != 0)
			els_diag_at(diag, def,
				    "iplist: 'default' must be \"continue\" (addresses on neither "
				    "list go on to the next handler) or \"drop\"");
	}

	/* The order fixes the rule ids: inline deny, deny files, inline allow, allow files. */
	const char *const parts[][2] = {{"deny", "deny_files"}, {"allow", "allow_files"}};
	for (int list = LIST_DENY; list <= LIST_ALLOW; list++) {
		b.list = list;
		if (!section)
			break;
		load_inline(&b, config_setting_get_member(section, parts[list][0]));
		load_files(&b, config_setting_get_member(section, parts[list][1]), env, &pl);
	}

	if (b.failed) {
		els_diag_at(diag, section, "iplist: %s",
			    b.failed == -E2BIG ? "too many entries" : strerror(-b.failed));
		rc = b.failed == -ENOMEM ? -ENOMEM : -EINVAL;
	} else if (diag->count != errors_before) {
		rc = -EINVAL;
	}
out:
	for (unsigned i = 0; i < pl.n; i++)
		free(pl.v[i]);
	free(pl.v);
	free(b.orig);
	if (rc) {
		if (b.c)
			els_lpm_free(b.c->lpm);
		free(b.c);
		return rc;
	}
	els_lpm_trim(b.c->lpm);
	*conf = b.c;
	return 0;
}

static void iplist_destroy(void *conf)
{
	struct iplist_conf *c = conf;

	if (!c)
		return;
	els_lpm_free(c->lpm);
	free(c);
}

static enum els_action iplist_handle(const void *conf, struct els_ctx *ctx,
				     struct els_decision *out)
{
	const struct iplist_conf *c = conf;
	const struct els_pkt *p = ctx->pkt;
	uint32_t v = els_lpm_lookup(c->lpm, p->family, els_pkt_remote(p), NULL);

	if (v == ELS_LPM_NONE) {
		out->rule = 0;
		if (c->default_drop) {
			out->action = ELS_DROP;
			out->reason = ELS_R_NOT_IN_ALLOW_LIST;
			return ELS_DROP;
		}
		out->action = ELS_CONTINUE;
		out->reason = ELS_R_NONE;
		return ELS_CONTINUE;
	}
	out->rule = VAL_RULE(v);
	if (v & VAL_ALLOW) {
		out->action = ELS_CONTINUE;
		out->reason = ELS_R_NONE;
		return ELS_CONTINUE;
	}
	out->action = ELS_DROP;
	out->reason = ELS_R_DENY_LIST;
	return ELS_DROP;
}

/* Entries have no names of their own, and keeping each one's text for the rare lookup by id
 * would double the table's memory. */
static const char *iplist_rule_name(const void *conf, uint32_t rule)
{
	(void)conf;
	(void)rule;
	return NULL;
}

const struct els_handler els_handler_iplist = {
    .name = "iplist",
    .summary = "drop remote addresses on a deny list, or not on an allow list (longest "
	       "prefix wins)",
    .build = iplist_build,
    .destroy = iplist_destroy,
    .handle = iplist_handle,
    .rule_name = iplist_rule_name,
};
