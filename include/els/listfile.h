/* Address list files: one IPv4/IPv6 address or CIDR per line, '#' starts a comment, blank
 * lines and surrounding whitespace ignored, CRLF line ends accepted. Duplicates are not an
 * error here: the consumer decides what a repeat means.
 *
 * The parser is shaped init / feed / finish so that a fuzzer or a test can drive it with
 * lines from memory; els_listfile_load() does the same from a file. Off the packet path. */
#ifndef ELS_LISTFILE_H
#define ELS_LISTFILE_H

#include <stddef.h>

#include "els/addr.h"
#include "els/diag.h"

/* At most this many bad-line messages per file; the rest are counted in one closing line. */
#define ELS_LISTFILE_MAX_MSGS 20

/* Called for every valid entry. file and line say where it came from (file is the name given
 * to init and lives as long as the caller keeps it). A non-zero return (e.g. -ENOMEM) stops
 * further entries and becomes finish()'s result. */
typedef int (*els_listfile_add_fn)(const struct els_cidr *c, const char *file, unsigned line,
				   void *arg);

struct els_listfile {
	const char *file; /* name used in messages; not owned */
	struct els_diag *diag;
	els_listfile_add_fn add;
	void *arg;
	unsigned line;	  /* lines fed so far */
	unsigned entries; /* valid entries passed to add */
	unsigned bad;	  /* bad lines seen */
	int err;	  /* first non-zero return of add */
};

void els_listfile_init(struct els_listfile *lf, const char *file, struct els_diag *diag,
		       els_listfile_add_fn add, void *arg);

/* Feeds the next line: len bytes, which may still carry the line end ("\n" or "\r\n") and
 * may hold any bytes at all. A bad line adds "file:line: message" to diag (up to
 * ELS_LISTFILE_MAX_MSGS of them). */
void els_listfile_feed(struct els_listfile *lf, const char *text, size_t len);

/* Ends the file: reports how many bad lines went unreported. Returns 0, -EINVAL if any line
 * was bad, or the add callback's error. */
int els_listfile_finish(struct els_listfile *lf);

/* Caps on list files: bytes per file, and the length of a file name in the policy directory. */
#define ELS_LISTFILE_MAX_BYTES (32u << 20)
#define ELS_LISTFILE_NAME_MAX  128

/* A list file name a remote policy may use: one path component inside the policy directory,
 * not empty, no '/', not starting with '.' (so no "..", no hidden or temporary files), no
 * control characters, at most ELS_LISTFILE_NAME_MAX bytes. 0, or -EINVAL with *why set. */
int els_listfile_name_check(const char *name, const char **why);

/* Opens name relative to dirfd (AT_FDCWD: the working directory, or an absolute path) with
 * O_NOFOLLOW|O_NONBLOCK, refuses anything but a regular file of at most max_bytes (checked on
 * the open descriptor, and again while reading), and feeds it line by line, naming it shown
 * in messages. Messages give line numbers and reasons, never the file's content. Returns as
 * finish() does, or a negative errno after adding a message to diag (-ELOOP: a symlink,
 * -EINVAL: not a regular file, -EFBIG: too large). Never blocks on a FIFO or a device. */
int els_listfile_load_at(int dirfd, const char *name, const char *shown, size_t max_bytes,
			 struct els_diag *diag, els_listfile_add_fn add, void *arg);

/* els_listfile_load_at(AT_FDCWD, path, path, ELS_LISTFILE_MAX_BYTES, ...): for the host's
 * own configuration, where any path (and a symbolic link) is allowed, but still only a
 * regular file is read. */
int els_listfile_load(const char *path, struct els_diag *diag, els_listfile_add_fn add, void *arg);

#endif
