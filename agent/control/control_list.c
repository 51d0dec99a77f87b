/* The managed allow/deny list files, edited by list.add / list.del (see control_edit.c for
 * the policy documents). A list edit may only touch a file inside the policy directory:
 * opened relative to it, never through a symlink, never a FIFO or a device. */
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "els/listfile.h"
#include "els/log.h"
#include "els/policy_int.h"
#include "els/readfile.h"

#define LIST_FILE_MAX ELS_LISTFILE_MAX_BYTES

/* The managed file of a list: the first entry of iplist.<list>_files of the policy in effect,
 * which must be a file directly inside the policy directory. Returns its name there
 * (malloc'd) and sets *path (malloc'd, for messages), or NULL with e set. */
static char *managed_file(struct els_control *c, const char *list, char **path,
			  struct els_cmd_err *e)
{
	const char *pdir = els_edit_policy_dir(c);
	config_t cfg;
	char *out = NULL, *text = NULL, *where = NULL, key[32];
	size_t len;
	const char *why = NULL;

	*path = NULL;
	config_init(&cfg);
	int rc = els_edit_current_text(c, &text, &len, &where);
	if (rc < 0 || !config_read_string(&cfg, text)) {
		els_cmd_fail(e, "internal", "cannot read the policy: %s",
			     rc < 0 ? strerror(-rc) : config_error_text(&cfg));
		goto out;
	}
	snprintf(key, sizeof(key), "iplist.%s_files", list);
	const config_setting_t *s = config_lookup(&cfg, key);
	const config_setting_t *first = s ? config_setting_get_elem(s, 0) : NULL;
	const char *name = first ? config_setting_get_string(first) : NULL;
	if (!name || !name[0]) {
		els_cmd_fail(e, "not_configured",
			     "no managed %s list: name a file first in iplist.%s_files of %s", list,
			     list, where);
		goto out;
	}
	/* The host's own list files come as plain names when they lie in the policy
	 * directory (els_policy_local_text); any other path fails this check. */
	if (els_listfile_name_check(name, &why) == 0)
		out = strdup(name);
	if (!out && why) {
		els_cmd_fail(e, "not_configured",
			     "the managed %s list \"%s\" (first in iplist.%s_files of %s) is %s (%s): "
			     "list edits only change files in the policy directory",
			     list, name, list, where, why, pdir);
		goto out;
	}
	if (!out || asprintf(path, "%s/%s", pdir, out) < 0) {
		free(out);
		out = NULL;
		*path = NULL;
		els_cmd_fail(e, "internal", "out of memory");
	}
out:
	config_destroy(&cfg);
	free(text);
	free(where);
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

/* The file's entries in order, for lookups: comparing every request entry with every line
 * kept the main thread for 20 s on 4096 entries against a 2-million-line file (the size cap
 * allows that), long enough for the watchdog to end elsd. */
struct entry_ref {
	const char *entry;
	size_t line;
};

static int entry_ref_cmp(const void *a, const void *b)
{
	const struct entry_ref *x = a, *y = b;
	int c = strcmp(x->entry, y->entry);
	return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* The sorted entries of l (blank, comment and bad lines left out); NULL if out of memory. */
static struct entry_ref *listfile_index(const struct listfile *l, size_t *n)
{
	struct entry_ref *v = malloc((l->nlines ? l->nlines : 1) * sizeof(*v));
	*n = 0;
	if (!v)
		return NULL;
	for (size_t k = 0; k < l->nlines; k++)
		if (l->entry[k][0])
			v[(*n)++] = (struct entry_ref){l->entry[k], k};
	qsort(v, *n, sizeof(*v), entry_ref_cmp);
	return v;
}

/* The first index of v[0..n) whose entry is not below e. */
static size_t lower_bound(const struct entry_ref *v, size_t n, const char *e)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(v[mid].entry, e) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int listfile_read(struct els_control *c, const char *name, struct listfile *l)
{
	memset(l, 0, sizeof(*l));
	int dfd = open(els_edit_policy_dir(c), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	int rc = els_read_file_at(dfd, name, O_NOFOLLOW, LIST_FILE_MAX, &l->text, &l->len);
	close(dfd);
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
	char *path = NULL;
	char *name = managed_file(c, list, &path, e);
	if (!name)
		return NULL;
	json_t *r = NULL;
	int rc = listfile_read(c, name, &l);
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
	free(name);
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
	struct entry_ref *index = NULL;
	size_t nindex = 0;
	char *path = NULL;
	char *name = managed_file(c, list, &path, e);
	char *newtext = NULL;
	json_t *results = json_array(), *r = NULL;
	size_t changes = 0, nlen = 0, appended = 0;

	if (!name || !canon || !app || !results)
		goto out;
	int rc = listfile_read(c, name, &l);
	if (rc < 0) {
		els_cmd_fail(e, "internal", "cannot read %s: %s", path, strerror(-rc));
		goto out;
	}
	drop_line = calloc(l.nlines ? l.nlines : 1, sizeof(*drop_line));
	index = listfile_index(&l, &nindex);
	if (!drop_line || !index)
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
		for (size_t x = lower_bound(index, nindex, canon[i]);
		     x < nindex && strcmp(index[x].entry, canon[i]) == 0; x++)
			if (!drop_line[index[x].line]) {
				in_file = true;
				if (!add)
					drop_line[index[x].line] = true;
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
	rc = els_edit_write_atomic(path, path, newtext, nlen);
	if (rc < 0) {
		els_cmd_fail(e, "internal", "cannot write %s: %s; nothing was changed", path,
			     strerror(-rc));
		goto out;
	}
	struct els_diag d;
	els_diag_init(&d, env->config_path);
	struct els_policy *np = els_policy_load(env->config_path, env->services_path, &d);
	if (!np) {
		e->details = els_edit_diag_details(d.msgs, d.count, "", "<policy>");
		els_cmd_fail(e, "invalid_policy",
			     "the policy does not load with this change (%u error%s); %s is "
			     "restored and nothing was changed",
			     d.count, d.count == 1 ? "" : "s", path);
		els_diag_free(&d);
		if (els_edit_write_atomic(path, path, l.text, l.len) < 0)
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
	free(index);
	free(drop_line);
	listfile_free(&l);
	free(canon);
	free(app);
	free(path);
	free(name);
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
