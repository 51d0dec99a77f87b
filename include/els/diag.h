/* Collects configuration errors as "file:line: message", so that `elsd -n` can report every
 * error in one run instead of stopping at the first. Off the packet path only. */
#ifndef ELS_DIAG_H
#define ELS_DIAG_H

#include <libconfig.h>
#include <stdio.h>

struct els_diag {
	char **msgs; /* owned; each "file:line: message" */
	unsigned count, cap;
	const char *default_file; /* file name used when a setting carries none */
};

void els_diag_init(struct els_diag *d, const char *default_file);
void els_diag_free(struct els_diag *d);

/* Adds "<file of s>:<line of s>: <message>". s may be NULL: then the default file, no line. */
void els_diag_at(struct els_diag *d, const config_setting_t *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Adds "<file>:<line>: <message>" (line 0 omits the line), for files that are not libconfig,
 * such as allow/deny list files. */
void els_diag_file(struct els_diag *d, const char *file, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Writes every message, one per line. */
void els_diag_print(const struct els_diag *d, FILE *out);

#endif
