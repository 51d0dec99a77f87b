/* Management requests that change the policy: policy.get/validate/apply/rollback and the
 * managed allow/deny list files. A console's document is checked first by the confined
 * checker child (policy_check.h, driven from control.c); only a document it accepted is
 * built here, aside, and published whole (pf's add-aside-then-commit). Everything a console
 * writes lives in the policy directory (an agent setting): the managed policy, its previous
 * version, the managed list files. Files are replaced by rename after fsync, so a crash
 * leaves the old file or the new one; a temporary file is unlinked on every path, and stale
 * ones are removed at start (els_policy_dir_clean). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "els/mgmt.h"
#include "els/log.h"
#include "mgmt.h"
#include "els/policy_int.h"
#include "els/readfile.h"

#define TMP_MARK      ".tmp-" /* in every temporary name: ".<name>.tmp-XXXXXX" */

/* Directory part of path, malloc'd. */
static char *dir_of(const char *path)
{
	char *tmp = strdup(path);
	char *d = tmp ? strdup(dirname(tmp)) : NULL;
	free(tmp);
	return d;
}

static int fsync_dir(const char *path)
{
	char *d = dir_of(path);
	int fd = d ? open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	free(d);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* Writes text to a new temporary file beside `beside` (same directory, so a rename replaces
 * atomically), with the mode of mode_of when that exists (else 0600), fsynced. *tmp gets its
 * malloc'd path; on failure nothing is left behind. */
static int write_temp(const char *beside, const char *mode_of, const char *text, size_t len,
		      char **tmp)
{
	char *d = dir_of(beside);
	char *b = strdup(beside);
	char *path = NULL;
	int rc = 0, fd = -1;
	struct stat st;

	*tmp = NULL;
	if (!d || !b || asprintf(&path, "%s/.%s" TMP_MARK "XXXXXX", d, basename(b)) < 0) {
		path = NULL;
		rc = -ENOMEM;
		goto out;
	}
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (stat(mode_of, &st) == 0)
		fchmod(fd, st.st_mode & 07777);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = -errno;
			goto out;
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0)
		rc = -errno;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0 && fd >= 0)
		unlink(path);
	if (rc == 0) {
		*tmp = path;
		path = NULL;
	}
	free(path);
	free(d);
	free(b);
	return rc;
}

/* Replaces path with text: temporary file, fsync, rename, fsync of the directory. */
int els_edit_write_atomic(const char *path, const char *mode_of, const char *text, size_t len)
{
	char *tmp;
	int rc = write_temp(path, mode_of, text, len, &tmp);
	if (rc < 0)
		return rc;
	if (rename(tmp, path) < 0) {
		rc = -errno;
		unlink(tmp);
	} else {
		rc = fsync_dir(path);
	}
	free(tmp);
	return rc;
}

void els_policy_dir_clean(const char *dir)
{
	/* The directory consoles' policies go to: made here, so that a check or an apply
	 * never meets a missing one. */
	if (dir && mkdir(dir, 0750) < 0 && errno != EEXIST)
		els_log(ELS_LL_WARNING,
			"management: cannot create the policy directory %s: %s; policy changes "
			"will fail until it exists",
			dir, strerror(errno));
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d))) {
		/* Only our own temporary names: ".<file>.tmp-XXXXXX". */
		if (e->d_name[0] != '.' || !strstr(e->d_name, TMP_MARK))
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) == 0)
			els_log(ELS_LL_WARNING,
				"removed %s/%s, left by an interrupted management change", dir,
				e->d_name);
	}
	closedir(d);
}

/* Turns "file:line: message" lines into details; the temporary file's name becomes
 * "<policy>", since the lines count in the text the console sent. */
json_t *els_edit_diag_details(char *const *msgs, unsigned count, const char *tmp, const char *shown)
{
	json_t *arr = json_array();
	for (unsigned i = 0; arr && i < count; i++) {
		const char *m = msgs[i];
		const char *file_end = NULL, *msg = m;
		json_t *line = json_null();
		/* Find ":<digits>: " or ": " after the file name. */
		for (const char *p = m; *p; p++) {
			if (*p != ':')
				continue;
			const char *q = p + 1;
			while (*q >= '0' && *q <= '9')
				q++;
			if (q > p + 1 && q[0] == ':' && q[1] == ' ') {
				file_end = p;
				line = json_integer(strtol(p + 1, NULL, 10));
				msg = q + 2;
				break;
			}
			if (p[1] == ' ') {
				file_end = p;
				msg = p + 2;
				break;
			}
		}
		char *file = file_end ? strndup(m, (size_t)(file_end - m)) : NULL;
		const char *fname = !file ? shown : strcmp(file, tmp) == 0 ? shown : file;
		json_array_append_new(
		    arr, json_pack("{s:s,s:o,s:s}", "file", fname, "line", line, "message", msg));
		free(file);
	}
	return arr;
}

const char *els_edit_policy_dir(struct els_control *c)
{
	const struct els_control_env *env = els_control_env_of(c);
	const struct els_policy *p = env->running(env->arg);
	return p->set.policy_dir ? p->set.policy_dir : ELS_POLICY_DIR_DEFAULT;
}

/* The policy in effect as a document: the managed file, or the policy part of the config
 * file while no console applied one. *path names where it lives. */
int els_edit_current_text(struct els_control *c, char **text, size_t *len, char **path)
{
	const struct els_control_env *env = els_control_env_of(c);
	const char *dir = els_edit_policy_dir(c);
	int rc = -ENOENT;
	*path = NULL;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		rc = els_read_file_at(dfd, ELS_POLICY_MANAGED, O_NOFOLLOW, ELS_POLICY_DOC_MAX, text,
				      len);
		close(dfd);
	}
	if (rc == 0) {
		if (asprintf(path, "%s/%s", dir, ELS_POLICY_MANAGED) < 0)
			*path = NULL;
		return *path ? 0 : -ENOMEM;
	}
	if (rc != -ENOENT)
		return rc;
	*path = strdup(env->config_path);
	rc = els_policy_local_text(env->config_path, text, len);
	return rc < 0 ? rc : *path ? 0 : -ENOMEM;
}

json_t *els_cmd_policy_get(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	const struct els_control_env *env = els_control_env_of(c);
	const struct els_policy *p = env->running(env->arg);
	char *text, *path, *prev = NULL, hex[65];
	size_t len;
	(void)args;

	int rc = els_edit_current_text(c, &text, &len, &path);
	if (rc < 0) {
		els_cmd_fail(e, "internal", "cannot read the policy: %s", strerror(-rc));
		free(path);
		return NULL;
	}
	els_sha256_hex(text, len, hex);
	bool has_prev = asprintf(&prev, "%s/%s.prev", els_edit_policy_dir(c), ELS_POLICY_MANAGED) >= 0 &&
			access(prev, F_OK) == 0;
	json_t *r = json_pack("{s:s,s:o,s:s,s:s,s:I,s:b,s:b}", "path", path, "text",
			      els_json_text(text, len), "sha256", hex, "running_sha256", p->hash,
			      "generation", (json_int_t)p->generation, "rollback_available",
			      has_prev, "managed", p->policy_file != NULL);
	free(prev);
	free(path);
	free(text);
	return r;
}

static json_t *refused_details(const struct els_check_result *r)
{
	char *msgs[ELS_CHECK_MAX_MSGS];
	for (unsigned i = 0; i < r->nmsgs; i++)
		msgs[i] = (char *)r->msgs[i];
	return els_edit_diag_details(msgs, r->nmsgs, "<policy>", "<policy>");
}

int els_cmd_policy_document(struct els_control *c, const char *cmd, json_t *args, char **text,
			    size_t *len, struct els_cmd_err *e)
{
	*text = NULL;
	if (strcmp(cmd, "policy.rollback") != 0) {
		json_t *jt = json_object_get(args, "text");
		*len = json_string_length(jt);
		*text = malloc(*len + 1);
		if (!*text) {
			els_cmd_fail(e, "internal", "out of memory");
			return -ENOMEM;
		}
		memcpy(*text, json_string_value(jt), *len);
		(*text)[*len] = 0;
	} else {
		char *prev = NULL;
		int rc = -ENOMEM, dfd = open(els_edit_policy_dir(c), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (asprintf(&prev, "%s/%s.prev", els_edit_policy_dir(c), ELS_POLICY_MANAGED) < 0)
			prev = NULL;
		if (dfd >= 0) {
			rc = els_read_file_at(dfd, ELS_POLICY_MANAGED ".prev", O_NOFOLLOW,
					      ELS_POLICY_DOC_MAX, text, len);
			close(dfd);
		} else {
			rc = -errno;
		}
		if (rc == -ENOENT)
			els_cmd_fail(e, "not_found",
				     "there is no previous policy (%s) to roll back to",
				     prev ? prev : ELS_POLICY_MANAGED ".prev");
		else if (rc < 0)
			els_cmd_fail(e, "internal", "cannot read %s: %s",
				     prev ? prev : ELS_POLICY_MANAGED ".prev", strerror(-rc));
		free(prev);
		if (rc < 0)
			return rc;
	}
	if (*len > ELS_POLICY_DOC_MAX) {
		/* Refused before any process starts or any byte is parsed. */
		els_cmd_fail(e, "invalid_policy",
			     "the document is %zu bytes, more than the %u a policy may have; "
			     "nothing was changed",
			     *len, ELS_POLICY_DOC_MAX);
		e->details = json_pack("[{s:s,s:n,s:s}]", "file", "<policy>", "line", "message",
				       "the document is larger than the policy size cap");
		free(*text);
		*text = NULL;
		return -EFBIG;
	}
	return 0;
}

/* The core of apply and rollback, once the checker accepted text: it becomes the managed
 * policy and the running one. */
static json_t *apply_text(struct els_control *c, const char *text, size_t len, const char *expect,
			  struct els_cmd_err *e)
{
	const struct els_control_env *env = els_control_env_of(c);
	const struct els_policy *old = env->running(env->arg);
	const char *dir = els_edit_policy_dir(c);
	char *cur = NULL, *cur_path = NULL, *tmp = NULL, *managed = NULL, *prev = NULL;
	char cur_hex[65];
	size_t cur_len;
	struct els_policy *np = NULL;
	json_t *r = NULL;
	struct els_diag d;

	els_diag_init(&d, "<policy>");
	int rc = els_edit_current_text(c, &cur, &cur_len, &cur_path);
	if (rc < 0) {
		els_cmd_fail(e, "internal", "cannot read the running policy: %s", strerror(-rc));
		goto out;
	}
	els_sha256_hex(cur, cur_len, cur_hex);
	if (expect && strcmp(expect, cur_hex) != 0) {
		els_cmd_fail(e, "conflict",
			     "%s changed since you read it (sha256 %.16s..., you expected "
			     "%.16s...): get it again and retry",
			     cur_path, cur_hex, expect);
		goto out;
	}
	if (len == cur_len && memcmp(text, cur, len) == 0 && strcmp(old->hash, cur_hex) == 0) {
		r = json_pack("{s:I,s:s,s:s,s:b,s:[]}", "generation", (json_int_t)old->generation,
			      "sha256", cur_hex, "previous_sha256", cur_hex, "changed", 0,
			      "warnings");
		goto out;
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		els_cmd_fail(e, "internal", "cannot create the policy directory %s: %s", dir,
			     strerror(errno));
		goto out;
	}
	if (asprintf(&managed, "%s/%s", dir, ELS_POLICY_MANAGED) < 0 ||
	    asprintf(&prev, "%s/%s.prev", dir, ELS_POLICY_MANAGED) < 0) {
		els_cmd_fail(e, "internal", "out of memory");
		goto out;
	}
	rc = write_temp(managed, managed, text, len, &tmp);
	if (rc < 0) {
		els_cmd_fail(e, "internal", "cannot write a temporary file in %s: %s", dir,
			     strerror(-rc));
		goto out;
	}
	/* The whole configuration as a restart would load it, with the new document in place
	 * of the managed one: the host's settings and the console's policy, checked again. */
	const char *slash = strrchr(tmp, '/');
	np = els_policy_load_with(env->config_path, env->services_path, slash ? slash + 1 : tmp,
				  &d);
	if (!np) {
		e->details = els_edit_diag_details(d.msgs, d.count, tmp, "<policy>");
		els_cmd_fail(e, "invalid_policy", "the policy has %u error%s; nothing was changed",
			     d.count, d.count == 1 ? "" : "s");
		goto out;
	}
	/* Keep what is being replaced, then swap the file in; only then publish, so that what
	 * runs is always what a restart would load. */
	rc = els_edit_write_atomic(prev, managed, cur, cur_len);
	if (rc == 0 && rename(tmp, managed) < 0)
		rc = -errno;
	if (rc == 0) {
		free(tmp);
		tmp = NULL;
		rc = fsync_dir(managed);
	}
	if (rc < 0) {
		els_cmd_fail(e, "internal", "cannot replace %s: %s; the running policy is unchanged",
			     managed, strerror(-rc));
		goto out;
	}
	/* Nothing a document holds needs a restart: agent settings never come from one. */
	json_t *warnings = json_array();
	if (!old->policy_file)
		els_log(ELS_LL_INFO,
			"management: the policy now comes from %s; the chain and handler sections "
			"of %s are not used while it exists",
			managed, env->config_path);
	char new_hex[65];
	memcpy(new_hex, np->hash, sizeof(new_hex));
	uint32_t gen = env->commit(env->arg, np);
	np = NULL;
	r = json_pack("{s:I,s:s,s:s,s:b,s:o}", "generation", (json_int_t)gen, "sha256", new_hex,
		      "previous_sha256", cur_hex, "changed", 1, "warnings", warnings);
out:
	if (tmp)
		unlink(tmp);
	els_diag_free(&d);
	els_policy_free(np);
	free(tmp);
	free(managed);
	free(prev);
	free(cur);
	free(cur_path);
	return r;
}

json_t *els_cmd_policy_checked(struct els_control *c, const char *cmd, json_t *args,
			       const char *text, size_t len, const struct els_check_result *r,
			       struct els_cmd_err *e)
{
	if (!r->ok) {
		e->details = refused_details(r);
		els_cmd_fail(e, "invalid_policy", "the policy has %u error%s; nothing was changed",
			     r->errors, r->errors == 1 ? "" : "s");
		return NULL;
	}
	if (strcmp(cmd, "policy.validate") == 0) {
		json_t *chain = json_array();
		for (unsigned i = 0; i < r->nchain; i++)
			json_array_append_new(chain, json_string(r->chain[i]));
		return json_pack("{s:b,s:s,s:o}", "valid", 1, "sha256", r->sha256, "chain", chain);
	}
	json_t *je = strcmp(cmd, "policy.apply") == 0 ? json_object_get(args, "expect_sha256") : NULL;
	return apply_text(c, text, len, je ? json_string_value(je) : NULL, e);
}
