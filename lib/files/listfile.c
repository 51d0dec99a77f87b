/* Address list file parser (see include/els/listfile.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* The message names the line and the reason, never what the line held: a list file can be
 * any file the loader was pointed at, and the messages go back to a remote auditor (a quoted
 * line once carried /etc/shadow and key material out). */
static void bad_line(struct els_listfile *lf, const char *why)
{
	if (lf->bad++ >= ELS_LISTFILE_MAX_MSGS)
		return;
	els_diag_file(lf->diag, lf->file, lf->line, "bad entry: %s", why);
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
			bad_line(lf, "contains a NUL byte");
			return;
		}
		if (is_space(text[i])) {
			bad_line(lf, "expected one address or CIDR per line");
			return;
		}
	}
	if (len >= sizeof(buf)) {
		bad_line(lf, "too long for an address or CIDR");
		return;
	}
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (els_cidr_parse(buf, &c, &why) != 0) {
		bad_line(lf, why ? why : "not an address or CIDR");
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

/* Feeds every line of the open file fd, reading at most max_bytes (checked while reading too,
 * since a regular file can grow after fstat). Memory stays at one small buffer whatever the
 * file holds: a line longer than it is no address, is reported once and skipped. */
static int feed_fd(struct els_listfile *lf, int fd, size_t max_bytes, const char *shown)
{
	enum { BUF = 4096 };
	char *buf = malloc(BUF);
	size_t have = 0, total = 0;
	bool skipping = false;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + have, BUF - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			els_diag_file(lf->diag, shown, 0, "cannot read list file: %s", strerror(-rc));
			break;
		}
		total += (size_t)n;
		if (total > max_bytes) {
			rc = -EFBIG;
			els_diag_file(lf->diag, shown, 0, "list file is larger than %zu bytes: refused",
				      max_bytes);
			break;
		}
		if (n == 0) {
			if (have && !skipping)
				els_listfile_feed(lf, buf, have);
			break;
		}
		have += (size_t)n;
		size_t off = 0;
		const char *nl;
		while ((nl = memchr(buf + off, '\n', have - off))) {
			size_t end = (size_t)(nl - buf) + 1;
			if (!skipping)
				els_listfile_feed(lf, buf + off, end - off);
			skipping = false;
			off = end;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
		if (have == BUF) {
			if (!skipping)
				els_listfile_feed(lf, buf, have);
			skipping = true;
			have = 0;
		}
	}
	free(buf);
	return rc;
}

int els_listfile_name_check(const char *name, const char **why)
{
	const char *w = NULL;
	size_t n = name ? strlen(name) : 0;
	if (n == 0)
		w = "an empty file name";
	else if (n > ELS_LISTFILE_NAME_MAX)
		w = "a file name longer than 128 bytes";
	else if (strchr(name, '/'))
		w = "a path: only a file name inside the policy directory is allowed (no '/', "
		    "no absolute path)";
	else if (name[0] == '.')
		w = "a name starting with '.' (\"..\", \".\" and hidden files are not allowed)";
	for (size_t i = 0; !w && i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			w = "a name with a control character";
	if (why)
		*why = w;
	return w ? -EINVAL : 0;
}

static int load(int dirfd, const char *name, const char *shown, size_t max_bytes, int follow,
		struct els_diag *diag, els_listfile_add_fn add, void *arg)
{
	struct els_listfile lf;
	struct stat st;
	int rc;

	/* O_NONBLOCK: a FIFO or a device never blocks the open or a read; O_NOFOLLOW: a symlink
	 * is refused rather than followed (ELOOP); O_NOCTTY: a tty never becomes ours. What it
	 * is gets checked on the open descriptor, so nothing can be swapped in between. */
	int fd = openat(dirfd, name,
			O_RDONLY | (follow ? 0 : O_NOFOLLOW) | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		els_diag_file(diag, shown, 0, "cannot open list file: %s",
			      rc == -ELOOP ? "it is a symbolic link (not followed)" : strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		els_diag_file(diag, shown, 0, "cannot read list file: %s", strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		els_diag_file(diag, shown, 0,
			      "not a regular file (a directory, device, FIFO or socket): refused");
		goto out;
	}
	if ((uint64_t)st.st_size > max_bytes) {
		rc = -EFBIG;
		els_diag_file(diag, shown, 0, "list file is larger than %zu bytes (%lld): refused",
			      max_bytes, (long long)st.st_size);
		goto out;
	}
	els_listfile_init(&lf, shown, diag, add, arg);
	rc = feed_fd(&lf, fd, max_bytes, shown);
	int frc = els_listfile_finish(&lf);
	if (rc == 0)
		rc = frc;
out:
	close(fd);
	return rc;
}

int els_listfile_load_at(int dirfd, const char *name, const char *shown, size_t max_bytes,
			 struct els_diag *diag, els_listfile_add_fn add, void *arg)
{
	return load(dirfd, name, shown, max_bytes, 0, diag, add, arg);
}

int els_listfile_load(const char *path, struct els_diag *diag, els_listfile_add_fn add, void *arg)
{
	return load(AT_FDCWD, path, path, ELS_LISTFILE_MAX_BYTES, 1, diag, add, arg);
}
