/* Management requests that change the policy: policy.get/validate/apply/rollback and the
 * managed allow/deny list files. Every change is built aside and checked whole before
 * anything is published (pf's add-aside-then-commit); files are replaced by rename, after
 * fsync, so a crash leaves the old file or the new one, never half of one. */
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
#include "log.h"
#include "mgmt.h"

#define POLICY_FILE_MAX (ELS_MGMT_MAX_FRAME - 4096)
#define LIST_FILE_MAX	(64u << 20)

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
 * malloc'd path. */
static int write_temp(const char *beside, const char *mode_of, const char *text, size_t len,
		      char **tmp)
{
	char *d = dir_of(beside);
	char *b = strdup(beside);
	char *path = NULL;
	int rc = 0, fd = -1;
	struct stat st;

	*tmp = NULL;
	if (!d || !b || asprintf(&path, "%s/.%s.mgmt-XXXXXX", d, basename(b)) < 0) {
		path = NULL;
		rc = -ENOMEM;
		goto out;
	}
	fd = mkstemp(path);
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
static int write_atomic(const char *path, const char *mode_of, const char *text, size_t len)
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

/* Turns the loader's "file:line: message" lines into details; the temporary file's name
 * becomes "<policy>", since the lines count in the text the console sent. */
static json_t *diag_details(const struct els_diag *d, const char *tmp, const char *shown)
{
	json_t *arr = json_array();
	for (unsigned i = 0; arr && i < d->count; i++) {
		const char *m = d->msgs[i];
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

/* Loads a policy from text placed beside the config file (so relative list paths and
 * @include resolve as for the real file). On success *np is the policy and *tmp the file it
 * was loaded from, which the caller renames into place or unlinks. */
static int load_text(struct els_control *c, const char *text, size_t len, struct els_policy **np,
		     char **tmp, struct els_cmd_err *e)
{
	const struct els_control_env *env = els_control_env_of(c);
	struct els_diag d;
	int rc = write_temp(env->config_path, env->config_path, text, len, tmp);

	*np = NULL;
	if (rc < 0) {
		els_cmd_fail(e, "internal", "cannot write a temporary file beside %s: %s",
			     env->config_path, strerror(-rc));
		return rc;
	}
	els_diag_init(&d, *tmp);
	*np = els_policy_load(*tmp, env->services_path, &d);
	if (!*np) {
		e->details = diag_details(&d, *tmp, "<policy>");
		els_cmd_fail(e, "invalid_policy", "the policy has %u error%s; nothing was changed",
			     d.count, d.count == 1 ? "" : "s");
		unlink(*tmp);
		free(*tmp);
		*tmp = NULL;
		rc = -EINVAL;
	}
	els_diag_free(&d);
	return rc;
}

json_t *els_cmd_policy_get(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	const struct els_control_env *env = els_control_env_of(c);
	const struct els_policy *p = env->running(env->arg);
	char *text, *prev, hex[65];
	size_t len;
	(void)args;

	int rc = els_mgmt_read_file(env->config_path, POLICY_FILE_MAX, &text, &len);
	if (rc < 0) {
		els_cmd_fail(e, "internal", "cannot read %s: %s", env->config_path, strerror(-rc));
		return NULL;
	}
	els_sha256_hex(text, len, hex);
	bool has_prev =
	    asprintf(&prev, "%s.prev", env->config_path) >= 0 && access(prev, F_OK) == 0;
	json_t *r =
	    json_pack("{s:s,s:o,s:s,s:s,s:I,s:b}", "path", env->config_path, "text",
		      els_json_text(text, len), "sha256", hex, "running_sha256", p->hash,
		      "generation", (json_int_t)p->generation, "rollback_available", has_prev);
	free(prev);
	free(text);
	return r;
}

json_t *els_cmd_policy_validate(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	json_t *jt = json_object_get(args, "text");
	struct els_policy *np;
	char *tmp;

	if (load_text(c, json_string_value(jt), json_string_length(jt), &np, &tmp, e) < 0)
		return NULL;
	unlink(tmp);
	free(tmp);
	json_t *chain = json_array();
	for (unsigned i = 0; i < np->nlinks; i++)
		json_array_append_new(chain, json_string(np->links[i].h->name));
	json_t *r = json_pack("{s:b,s:s,s:o}", "valid", 1, "sha256", np->hash, "chain", chain);
	els_policy_free(np);
	return r;
}

static bool str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* Settings a reload keeps at their running value (main.c keep_start_settings, and the
 * endpoint's own configuration): the console is told, not left to guess. */
static json_t *restart_warnings(const struct els_settings *o, const struct els_settings *n)
{
	json_t *w = json_array();
	if (n->queue_first != o->queue_first || n->queue_last != o->queue_last)
		json_array_append_new(w, json_string("'queues' changed: takes effect on restart"));
	if (n->fail_open != o->fail_open)
		json_array_append_new(w,
				      json_string("'fail_open' changed: takes effect on restart"));
	if (n->copy_bytes != o->copy_bytes || n->queue_maxlen != o->queue_maxlen)
		json_array_append_new(
		    w, json_string("'copy_bytes'/'queue_maxlen' changed: take effect on restart"));
	if (n->flow_capacity != o->flow_capacity)
		json_array_append_new(
		    w, json_string("'flows.capacity' changed: takes effect on restart"));
	if (str_differs(n->monitor_path, o->monitor_path))
		json_array_append_new(
		    w, json_string("'monitor.path' changed: takes effect on restart"));
	const struct els_mgmt_conf *a = o->mgmt, *b = n->mgmt;
	if ((a == NULL) != (b == NULL) ||
	    (a && (str_differs(a->listen, b->listen) || str_differs(a->ca, b->ca) ||
		   str_differs(a->cert, b->cert) || str_differs(a->key, b->key) ||
		   str_differs(a->crl, b->crl) || str_differs(a->user, b->user) ||
		   a->max_clients != b->max_clients || a->timeout_s != b->timeout_s)))
		json_array_append_new(
		    w, json_string("'management' changed: takes effect on restart (the CRL file "
				   "is re-read on SIGHUP)"));
	return w;
}

/* The core of apply and rollback: text becomes the config file and the running policy. */
static json_t *apply_text(struct els_control *c, const char *text, size_t len, const char *expect,
			  struct els_cmd_err *e)
{
	const struct els_control_env *env = els_control_env_of(c);
	const struct els_policy *old = env->running(env->arg);
	char *cur = NULL, *tmp = NULL, *prev = NULL, cur_hex[65];
	size_t cur_len;
	struct els_policy *np = NULL;
	json_t *r = NULL;

	int rc = els_mgmt_read_file(env->config_path, POLICY_FILE_MAX, &cur, &cur_len);
	if (rc < 0) {
		els_cmd_fail(e, "internal", "cannot read %s: %s", env->config_path, strerror(-rc));
		return NULL;
	}
	els_sha256_hex(cur, cur_len, cur_hex);
	if (expect && strcmp(expect, cur_hex) != 0) {
		els_cmd_fail(e, "conflict",
			     "%s changed since you read it (sha256 %.16s..., you expected "
			     "%.16s...): get it again and retry",
			     env->config_path, cur_hex, expect);
		goto out;
	}
	if (len == cur_len && memcmp(text, cur, len) == 0 && strcmp(old->hash, cur_hex) == 0) {
		r = json_pack("{s:I,s:s,s:s,s:b,s:[]}", "generation", (json_int_t)old->generation,
			      "sha256", cur_hex, "previous_sha256", cur_hex, "changed", 0,
			      "warnings");
		goto out;
	}
	if (load_text(c, text, len, &np, &tmp, e) < 0)
		goto out;
	/* Keep what is being replaced, then swap the file in; only then publish, so that what
	 * runs is always what a restart would load. */
	if (asprintf(&prev, "%s.prev", env->config_path) < 0) {
		prev = NULL;
		els_cmd_fail(e, "internal", "out of memory");
		goto out;
	}
	rc = write_atomic(prev, env->config_path, cur, cur_len);
	if (rc == 0 && rename(tmp, env->config_path) < 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_dir(env->config_path);
	if (rc < 0) {
		els_cmd_fail(e, "internal",
			     "cannot replace %s: %s; the running policy is unchanged",
			     env->config_path, strerror(-rc));
		unlink(tmp);
		goto out;
	}
	free(np->path);
	np->path = strdup(env->config_path);
	json_t *warnings = restart_warnings(&old->set, &np->set);
	char new_hex[65];
	memcpy(new_hex, np->hash, sizeof(new_hex));
	uint32_t gen = env->commit(env->arg, np);
	np = NULL;
	r = json_pack("{s:I,s:s,s:s,s:b,s:o}", "generation", (json_int_t)gen, "sha256", new_hex,
		      "previous_sha256", cur_hex, "changed", 1, "warnings", warnings);
out:
	els_policy_free(np);
	free(tmp);
	free(prev);
	free(cur);
	return r;
}

json_t *els_cmd_policy_apply(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	json_t *jt = json_object_get(args, "text");
	json_t *je = json_object_get(args, "expect_sha256");
	return apply_text(c, json_string_value(jt), json_string_length(jt),
			  je ? json_string_value(je) : NULL, e);
}

json_t *els_cmd_policy_rollback(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	const struct els_control_env *env = els_control_env_of(c);
	char *prev = NULL, *text = NULL;
	size_t len;
	json_t *r = NULL;
	(void)args;

	if (asprintf(&prev, "%s.prev", env->config_path) < 0) {
		els_cmd_fail(e, "internal", "out of memory");
		return NULL;
	}
	int rc = els_mgmt_read_file(prev, POLICY_FILE_MAX, &text, &len);
	if (rc == -ENOENT)
		els_cmd_fail(e, "not_found", "there is no previous policy (%s) to roll back to",
			     prev);
	else if (rc < 0)
		els_cmd_fail(e, "internal", "cannot read %s: %s", prev, strerror(-rc));
	else
		r = apply_text(c, text, len, NULL, e);
	free(text);
	free(prev);
	return r;
}

/* ---- managed list files ---- */

/* The managed file of a list: the first entry of iplist.deny_files / allow_files in the
 * config file, resolved from its directory. malloc'd, or NULL with e set. */
static char *managed_file(struct els_control *c, const char *list, struct els_cmd_err *e)
{
	const struct els_control_env *env = els_control_env_of(c);
	config_t cfg;
	char *out = NULL, *dir = NULL;
	char key[32];

	config_init(&cfg);
	dir = dir_of(env->config_path);
	if (dir)
		config_set_include_dir(&cfg, dir);
	if (!config_read_file(&cfg, env->config_path)) {
		els_cmd_fail(e, "internal", "cannot read %s: %s", env->config_path,
			     config_error_text(&cfg) ? config_error_text(&cfg) : "I/O error");
		goto out;
	}
	snprintf(key, sizeof(key), "iplist.%s_files", list);
	const config_setting_t *s = config_lookup(&cfg, key);
	const config_setting_t *first = s ? config_setting_get_elem(s, 0) : NULL;
	const char *path = first ? config_setting_get_string(first) : NULL;
	if (!path || !path[0]) {
		els_cmd_fail(e, "not_configured",
			     "no managed %s list: name a file first in iplist.%s_files of %s", list,
			     list, env->config_path);
		goto out;
	}
	if (path[0] == '/' || !dir)
		out = strdup(path);
	else if (asprintf(&out, "%s/%s", dir, path) < 0)
		out = NULL;
	if (!out)
		els_cmd_fail(e, "internal", "out of memory");
out:
	config_destroy(&cfg);
	free(dir);
	return out;
}

/* One line of a list file: its canonical entry ("addr/plen"), or "" for blank, comment or
 * bad lines. Same rules as agent/listfile.c: '#' starts a comment, whitespace around. */
static void line_entry(const char *line, size_t len, char *out, size_t n)
{
	char buf[256];
	const char *hash = memchr(line, '#', len);
	if (hash)
		len = (size_t)(hash - line);
	while (len && (line[0] == ' ' || line[0] == '\t')) {
		line++;
		len--;
	}
	while (len && strchr(" \t\r\n", line[len - 1]))
		len--;
	out[0] = 0;
	if (!len || len >= sizeof(buf))
		return;
	memcpy(buf, line, len);
	buf[len] = 0;
	struct els_cidr cidr;
	if (els_cidr_parse(buf, &cidr, NULL) == 0) {
		char a[ELS_ADDR_STRLEN];
		snprintf(out, n, "%s/%u", els_addr_str(&cidr.addr, cidr.family, a), cidr.plen);
	}
}

struct listfile {
	char *text;
	size_t len;
	size_t nlines;
	size_t *start, *llen; /* per line, into text (line end included) */
	char (*entry)[64];
};

static void listfile_free(struct listfile *l)
{
	free(l->text);
	free(l->start);
	free(l->llen);
	free(l->entry);
}

static int listfile_read(const char *path, struct listfile *l)
{
	memset(l, 0, sizeof(*l));
	int rc = els_mgmt_read_file(path, LIST_FILE_MAX, &l->text, &l->len);
	if (rc < 0)
		return rc;
	size_t cap = 1;
	for (size_t i = 0; i < l->len; i++)
		cap += l->text[i] == '\n';
	l->start = calloc(cap, sizeof(*l->start));
	l->llen = calloc(cap, sizeof(*l->llen));
	l->entry = calloc(cap, sizeof(*l->entry));
	if (!l->start || !l->llen || !l->entry)
		return -ENOMEM;
	for (size_t off = 0; off < l->len;) {
		const char *nl = memchr(l->text + off, '\n', l->len - off);
		size_t end = nl ? (size_t)(nl - l->text) + 1 : l->len;
		l->start[l->nlines] = off;
		l->llen[l->nlines] = end - off;
		line_entry(l->text + off, end - off, l->entry[l->nlines], sizeof(l->entry[0]));
		l->nlines++;
		off = end;
	}
	return 0;
}

json_t *els_cmd_list_get(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	const char *list = json_string_value(json_object_get(args, "list"));
	struct listfile l;
	char *path = managed_file(c, list, e);
	if (!path)
		return NULL;
	json_t *r = NULL;
	int rc = listfile_read(path, &l);
	if (rc < 0) {
		els_cmd_fail(e, "internal", "cannot read %s: %s", path, strerror(-rc));
	} else {
		json_t *entries = json_array();
		for (size_t i = 0; i < l.nlines; i++)
			if (l.entry[i][0])
				json_array_append_new(entries, json_string(l.entry[i]));
		r = json_pack("{s:s,s:s,s:o}", "list", list, "file", path, "entries", entries);
	}
	listfile_free(&l);
	free(path);
	return r;
}

static json_t *list_edit(struct els_control *c, json_t *args, bool add, struct els_cmd_err *e)
{
	const struct els_control_env *env = els_control_env_of(c);
	const char *list = json_string_value(json_object_get(args, "list"));
	json_t *entries = json_object_get(args, "entries");
	bool dry = json_is_true(json_object_get(args, "dry_run"));
	size_t n = json_array_size(entries);
	struct listfile l = {0};
	char(*canon)[64] = calloc(n ? n : 1, sizeof(*canon));
	bool *app = calloc(n ? n : 1, sizeof(*app)); /* entry i is appended */
	bool *drop_line = NULL;
	char *path = managed_file(c, list, e);
	char *newtext = NULL;
	json_t *results = json_array(), *r = NULL;
	size_t changes = 0, nlen = 0, appended = 0;

	if (!path || !canon || !app || !results)
		goto out;
	int rc = listfile_read(path, &l);
	if (rc < 0) {
		els_cmd_fail(e, "internal", "cannot read %s: %s", path, strerror(-rc));
		goto out;
	}
	drop_line = calloc(l.nlines ? l.nlines : 1, sizeof(*drop_line));
	if (!drop_line)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		const char *txt = json_string_value(json_array_get(entries, i));
		struct els_cidr cidr;
		const char *why = "invalid";
		if (els_cidr_parse(txt, &cidr, &why) < 0) {
			json_array_append_new(results,
					      json_pack("{s:s,s:n,s:s,s:s}", "entry", txt, "cidr",
							"status", "invalid", "message", why));
			continue;
		}
		char a[ELS_ADDR_STRLEN];
		snprintf(canon[i], sizeof(canon[i]), "%s/%u",
			 els_addr_str(&cidr.addr, cidr.family, a), cidr.plen);
		bool in_file = false, earlier = false;
		for (size_t k = 0; k < l.nlines; k++)
			if (!drop_line[k] && strcmp(l.entry[k], canon[i]) == 0) {
				in_file = true;
				if (!add)
					drop_line[k] = true;
			}
		for (size_t k = 0; add && k < i; k++)
			earlier |= strcmp(canon[k], canon[i]) == 0;
		const char *status;
		if (add) {
			status = in_file || earlier ? "duplicate" : "added";
			app[i] = !in_file && !earlier;
			appended += app[i];
		} else {
			status = in_file ? "removed" : "not_found";
		}
		changes += strcmp(status, "added") == 0 || strcmp(status, "removed") == 0;
		json_array_append_new(results, json_pack("{s:s,s:s,s:s}", "entry", txt, "cidr",
							 canon[i], "status", status));
	}
	const struct els_policy *p = env->running(env->arg);
	if (!changes || dry) {
		r = json_pack("{s:s,s:s,s:b,s:I,s:O}", "list", list, "file", path, "changed", 0,
			      "generation", (json_int_t)p->generation, "results", results);
		goto out;
	}
	newtext = malloc(l.len + 1 + appended * 64 + 1);
	if (!newtext)
		goto nomem;
	for (size_t k = 0; k < l.nlines; k++)
		if (!drop_line[k]) {
			memcpy(newtext + nlen, l.text + l.start[k], l.llen[k]);
			nlen += l.llen[k];
		}
	if (nlen && newtext[nlen - 1] != '\n' && appended)
		newtext[nlen++] = '\n';
	for (size_t i = 0; add && i < n; i++)
		if (app[i])
			nlen += (size_t)sprintf(newtext + nlen, "%s\n", canon[i]);
	/* Edit and reload as one step: the new file goes in, the policy is built with it, and
	 * if that fails the old content goes back before anything was published. */
	rc = write_atomic(path, path, newtext, nlen);
	if (rc < 0) {
		els_cmd_fail(e, "internal", "cannot write %s: %s; nothing was changed", path,
			     strerror(-rc));
		goto out;
	}
	struct els_diag d;
	els_diag_init(&d, env->config_path);
	struct els_policy *np = els_policy_load(env->config_path, env->services_path, &d);
	if (!np) {
		e->details = diag_details(&d, "", "<policy>");
		els_cmd_fail(e, "invalid_policy",
			     "the policy does not load with this change (%u error%s); %s is "
			     "restored and nothing was changed",
			     d.count, d.count == 1 ? "" : "s", path);
		els_diag_free(&d);
		if (write_atomic(path, path, l.text, l.len) < 0)
			els_log(ELS_LL_ERROR,
				"management: cannot restore %s after a failed list "
				"change: fix it by hand",
				path);
		goto out;
	}
	els_diag_free(&d);
	uint32_t gen = env->commit(env->arg, np);
	r = json_pack("{s:s,s:s,s:b,s:I,s:O}", "list", list, "file", path, "changed", 1,
		      "generation", (json_int_t)gen, "results", results);
	goto out;
nomem:
	els_cmd_fail(e, "internal", "out of memory");
out:
	json_decref(results);
	free(newtext);
	free(drop_line);
	listfile_free(&l);
	free(canon);
	free(app);
	free(path);
	return r;
}

json_t *els_cmd_list_add(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	return list_edit(c, args, true, e);
}

json_t *els_cmd_list_del(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	return list_edit(c, args, false, e);
}
