/* Address list file parser (see include/els/listfile.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "els/listfile.h"

void els_listfile_init(struct els_listfile *lf, const char *file, struct els_diag *diag,
		       els_listfile_add_fn add, void *arg)
{
	memset(lf, 0, sizeof(*lf));
	lf->file = file;
	lf->diag = diag;
	lf->add = add;
	lf->arg = arg;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Quotes at most 40 bytes of what the line held, with anything unprintable shown as '?', so
 * that a binary file or a terminal escape cannot garble the message. */
static void quote(char *out, size_t outsz, const char *s, size_t n)
{
	size_t max = outsz - 4, j = 0;

	for (size_t i = 0; i < n && j < max; i++)
		out[j++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (n > max && j >= 3)
		memcpy(out + j - 3, "...", 3);
	out[j] = '\0';
}

static void bad_line(struct els_listfile *lf, const char *s, size_t n, const char *why)
{
	char q[44];

	if (lf->bad++ >= ELS_LISTFILE_MAX_MSGS)
		return;
	quote(q, sizeof(q), s, n);
	els_diag_file(lf->diag, lf->file, lf->line, "bad entry \"%s\": %s", q, why);
}

void els_listfile_feed(struct els_listfile *lf, const char *text, size_t len)
{
	char buf[64];
	const char *why = NULL;
	struct els_cidr c;

	lf->line++;
	/* The comment ends the line's content; a '#' can never be part of an address. */
	const char *hash = memchr(text, '#', len);
	if (hash)
		len = (size_t)(hash - text);
	while (len && is_space(text[0])) {
		text++;
		len--;
	}
	while (len && is_space(text[len - 1]))
		len--;
	if (len == 0)
		return;

	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\0') {
			bad_line(lf, text, len, "contains a NUL byte");
			return;
		}
		if (is_space(text[i])) {
			bad_line(lf, text, len, "expected one address or CIDR per line");
			return;
		}
	}
	if (len >= sizeof(buf)) {
		bad_line(lf, text, len, "too long for an address or CIDR");
		return;
	}
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (els_cidr_parse(buf, &c, &why) != 0) {
		bad_line(lf, text, len, why ? why : "not an address or CIDR");
		return;
	}
	if (lf->err)
		return; /* the consumer already failed; keep checking syntax only */
	int rc = lf->add ? lf->add(&c, lf->file, lf->line, lf->arg) : 0;
	if (rc)
		lf->err = rc;
	else
		lf->entries++;
}

int els_listfile_finish(struct els_listfile *lf)
{
	if (lf->bad > ELS_LISTFILE_MAX_MSGS)
		els_diag_file(lf->diag, lf->file, 0, "... and %u more bad lines",
			      lf->bad - ELS_LISTFILE_MAX_MSGS);
	if (lf->err)
		return lf->err;
	return lf->bad ? -EINVAL : 0;
}

int els_listfile_load(const char *path, struct els_diag *diag, els_listfile_add_fn add, void *arg)
{
	struct els_listfile lf;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc;

	FILE *f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		els_diag_file(diag, path, 0, "cannot open list file: %s", strerror(-rc));
		return rc;
	}
	els_listfile_init(&lf, path, diag, add, arg);
	errno = 0;
	while ((n = getline(&line, &cap, f)) >= 0) {
		els_listfile_feed(&lf, line, (size_t)n);
		errno = 0;
	}
	if (ferror(f)) {
		/* e.g. EISDIR: a directory opens fine but cannot be read */
		rc = errno ? -errno : -EIO;
		els_diag_file(diag, path, 0, "cannot read list file: %s", strerror(-rc));
		els_listfile_finish(&lf);
		goto out;
	}
	rc = els_listfile_finish(&lf);
out:
	free(line);
	fclose(f);
	return rc;
}
