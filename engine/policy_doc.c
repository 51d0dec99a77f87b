/* Policy documents from the management channel: the trust boundary between what a console
 * may change (the chain and the handler sections) and what only the host's administrator may
 * (every agent setting: management trust anchors, programs to run, monitor files, user,
 * queues...). See docs/management.md, "The trust boundary". */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "els/handler.h"
#include "els/listfile.h"
#include "els/policy.h"
#include "els/policy_int.h"
#include "els/readfile.h"

/* Top-level settings only the host's own config file may hold. A console that sends one is
 * told which, and where, rather than "unknown setting". */
static const char *const agent_keys[] = {
    "queues",	  "fail_open",	   "copy_bytes", "queue_maxlen", "log_level", "local_addresses",
    "flows",	  "monitor",	   "user",	 "management",	 "agent_id",  "offload",
    "syn_guard",
    "policy_dir", "sweep_command", "rules",	 "metrics",	 "events",    "console",
    NULL,
};

static bool is_agent_key(const char *name)
{
	for (const char *const *k = agent_keys; *k; k++)
		if (strcmp(*k, name) == 0)
			return true;
	return false;
}

static bool is_policy_key(const char *name)
{
	return strcmp(name, "chain") == 0 || els_handler_find(name) != NULL;
}

static void sha256_hex(const char *buf, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned mdlen = 0;
	EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[64] = 0;
}

/* What libconfig must never see from a console: a NUL (it would end the text early, so the
 * checked text would not be the stored one) and a directive line (@include reads any file). */
static void prescan(const char *text, size_t len, const char *shown, struct els_diag *d)
{
	unsigned line = 1;
	bool line_start = true;
	for (size_t i = 0; i < len; i++) {
		char ch = text[i];
		if (ch == '\0') {
			els_diag_file(d, shown, line, "the document holds a NUL byte: refused");
			return;
		}
		if (ch == '\n') {
			line++;
			line_start = true;
		} else if (line_start && ch == '@') {
			els_diag_file(
			    d, shown, line,
			    "directives such as @include are refused in a policy from the "
			    "management channel: it may not name other files");
			line_start = false;
		} else if (ch != ' ' && ch != '\t' && ch != '\r') {
			line_start = false;
		}
	}
}

static void check_keys(const config_setting_t *root, struct els_diag *d)
{
	for (int i = 0; i < config_setting_length(root); i++) {
		const config_setting_t *c = config_setting_get_elem(root, (unsigned)i);
		const char *n = config_setting_name(c);
		if (is_policy_key(n))
			continue;
		if (!is_agent_key(n)) {
			els_diag_at(d, c,
				    "unknown setting '%s' (a policy holds only 'chain' and handler "
				    "sections)",
				    n);
			continue;
		}
		els_diag_at(d, c,
			    "'%s' is an agent setting: only the host's own config file may set it; "
			    "a policy from the management channel holds only 'chain' and handler "
			    "sections",
			    n);
		/* Name what is inside too (management.sweep_command runs a program as root). */
		for (int k = 0; config_setting_is_group(c) && k < config_setting_length(c); k++) {
			const config_setting_t *m = config_setting_get_elem(c, (unsigned)k);
			els_diag_at(d, m, "'%s.%s' is an agent setting: refused", n,
				    config_setting_name(m));
		}
	}
}

struct els_policy *els_policy_load_document(const char *text, size_t len, const char *shown,
					    int policy_dirfd, const char *policy_dir,
					    const char *services_path, struct els_diag *d)
{
	unsigned before = d->count;
	const char *saved_default = d->default_file;
	struct els_policy *p = NULL;
	char *z = NULL;
	config_t cfg;

	config_init(&cfg);
	if (len > ELS_POLICY_DOC_MAX) {
		els_diag_file(d, shown, 0,
			      "the document is %zu bytes, more than the %u a policy may have: "
			      "refused (put long address lists in list files)",
			      len, ELS_POLICY_DOC_MAX);
		goto out;
	}
	prescan(text, len, shown, d);
	if (d->count != before)
		goto out;
	z = malloc(len + 1);
	p = calloc(1, sizeof(*p));
	if (!z || !p) {
		els_diag_file(d, shown, 0, "out of memory");
		goto out;
	}
	memcpy(z, text, len);
	z[len] = 0;
	if (!config_read_string(&cfg, z)) {
		els_diag_file(d, shown, (unsigned)config_error_line(&cfg), "%s",
			      config_error_text(&cfg));
		goto out;
	}
	const config_setting_t *root = config_root_setting(&cfg);
	d->default_file = shown; /* settings read from a string carry no file name */
	check_keys(root, d);
	struct els_build_env env = {
	    .config_path = shown,
	    .services_path = services_path ? services_path : "/etc/services",
	    .policy_dirfd = policy_dirfd,
	    .policy_dir = policy_dir,
	};
	els_policy_build_chain(root, p, &env, d);
	sha256_hex(text, len, p->hash);
out:
	d->default_file = saved_default;
	config_destroy(&cfg);
	free(z);
	if (d->count != before || !p) {
		if (p && d->count == before)
			els_diag_file(d, shown, 0, "invalid policy");
		els_policy_free(p);
		return NULL;
	}
	return p;
}

int els_policy_managed_build(struct els_policy *p, const char *managed,
			     const struct els_build_env *base, struct els_diag *d)
{
	const char *dir = p->set.policy_dir;
	const char *name = managed ? managed : ELS_POLICY_MANAGED;
	char *text = NULL, *shown = NULL;
	size_t len = 0;
	int dfd;

	if (!dir)
		return 0;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT && !managed)
			return 0;
		els_diag_file(d, dir, 0, "cannot open the policy directory: %s", strerror(errno));
		return 1;
	}
	int rc = els_read_file_at(dfd, name, O_NOFOLLOW, ELS_POLICY_DOC_MAX, &text, &len);
	if (rc == -ENOENT && !managed) {
		close(dfd);
		return 0;
	}
	if (asprintf(&shown, "%s/%s", dir, name) < 0)
		shown = NULL;
	if (!shown) {
		els_diag_file(d, dir, 0, "out of memory");
	} else if (rc < 0) {
		els_diag_file(d, shown, 0, "cannot read the managed policy: %s",
			      rc == -ELOOP    ? "it is a symbolic link (not followed)"
			      : rc == -EINVAL ? "not a regular file"
			      : rc == -EFBIG  ? "larger than the policy size cap"
					      : strerror(-rc));
	} else {
		struct els_policy *dp =
		    els_policy_load_document(text, len, shown, dfd, dir, base->services_path, d);
		if (dp) {
			memcpy(p->links, dp->links, sizeof(p->links));
			p->nlinks = dp->nlinks;
			dp->nlinks = 0;
			memcpy(p->hash, dp->hash, sizeof(p->hash));
			els_policy_free(dp);
			if (asprintf(&p->policy_file, "%s/%s", dir, ELS_POLICY_MANAGED) < 0)
				p->policy_file = NULL;
		}
	}
	free(shown);
	free(text);
	close(dfd);
	return 1;
}

/* ---- the host's own policy, as a document ---- */

static int copy_setting(config_setting_t *parent, const config_setting_t *src)
{
	int type = config_setting_type(src);
	config_setting_t *n = config_setting_add(parent, config_setting_name(src), type);
	if (!n)
		return -EINVAL;
	switch (type) {
	case CONFIG_TYPE_INT:
		config_setting_set_int(n, config_setting_get_int(src));
		break;
	case CONFIG_TYPE_INT64:
		config_setting_set_int64(n, config_setting_get_int64(src));
		break;
	case CONFIG_TYPE_FLOAT:
		config_setting_set_float(n, config_setting_get_float(src));
		break;
	case CONFIG_TYPE_BOOL:
		config_setting_set_bool(n, config_setting_get_bool(src));
		break;
	case CONFIG_TYPE_STRING:
		config_setting_set_string(n, config_setting_get_string(src));
		break;
	default:
		for (int i = 0; i < config_setting_length(src); i++)
			if (copy_setting(n, config_setting_get_elem(src, (unsigned)i)) < 0)
				return -EINVAL;
	}
	return 0;
}

/* A list file the host's config names (relative to its directory, or absolute) becomes its
 * plain name when it lies directly inside policy_dir: the name a console's document uses for
 * the same file. Others stay as they are (a console could not apply them back). */
static void rename_lists(config_t *out, const char *conf_dir, const char *policy_dir)
{
	static const char *const keys[] = {"iplist.deny_files", "iplist.allow_files"};
	char rp_pd[PATH_MAX];
	if (!policy_dir || !realpath(policy_dir, rp_pd))
		return;
	for (unsigned k = 0; k < 2; k++) {
		config_setting_t *s = config_lookup(out, keys[k]);
		for (int i = 0; s && i < config_setting_length(s); i++) {
			config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
			const char *v = config_setting_get_string(e);
			char *full = NULL, rp[PATH_MAX];
			if (!v || !v[0])
				continue;
			if (v[0] == '/' ? !(full = strdup(v))
					: asprintf(&full, "%s/%s", conf_dir, v) < 0) {
				full = NULL;
				continue;
			}
			char *slash = strrchr(full, '/');
			*slash = 0;
			if (realpath(full[0] ? full : "/", rp) && strcmp(rp, rp_pd) == 0 &&
			    els_listfile_name_check(slash + 1, NULL) == 0) {
				char *name = strdup(slash + 1);
				if (name)
					config_setting_set_string(e, name);
				free(name);
			}
			free(full);
		}
	}
}

int els_policy_local_text(const char *config_path, char **text, size_t *len)
{
	config_t in, out;
	char *dir = strdup(config_path), *slash;
	FILE *f = NULL;
	int rc = 0;

	*text = NULL;
	config_init(&in);
	config_init(&out);
	if (!dir) {
		rc = -ENOMEM;
		goto done;
	}
	slash = strrchr(dir, '/');
	if (slash) {
		*slash = 0;
		config_set_include_dir(&in, dir);
	}
	if (!config_read_file(&in, config_path)) {
		rc = -EINVAL;
		goto done;
	}
	const config_setting_t *root = config_root_setting(&in);
	for (int i = 0; i < config_setting_length(root); i++) {
		const config_setting_t *c = config_setting_get_elem(root, (unsigned)i);
		if (is_policy_key(config_setting_name(c)) &&
		    copy_setting(config_root_setting(&out), c) < 0) {
			rc = -EINVAL;
			goto done;
		}
	}
	const config_setting_t *pd = config_lookup(&in, "policy_dir");
	rename_lists(&out, slash ? dir : ".",
		     pd && config_setting_get_string(pd) ? config_setting_get_string(pd)
							 : ELS_POLICY_DIR_DEFAULT);
	f = open_memstream(text, len);
	if (!f) {
		rc = -ENOMEM;
		goto done;
	}
	config_write(&out, f);
	if (fclose(f) != 0)
		rc = -EIO;
done:
	if (rc < 0) {
		free(*text);
		*text = NULL;
	}
	config_destroy(&in);
	config_destroy(&out);
	free(dir);
	return rc;
}
