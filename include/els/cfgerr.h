/* libconfig's parse errors, translated into what to do (agent/cfgerr.c). libconfig says
 * "syntax error", "mismatched element type in array" or "cannot open include file" and a
 * line; these functions read the file's text to say which token, which string or bracket was
 * left open, which include file and why, and how to write it instead. They also find what
 * libconfig accepts silently but almost never means: two strings with no comma between them,
 * which it joins into one. Pure functions of the text: no libconfig state, fuzzable. */
#ifndef ELS_CFGERR_H
#define ELS_CFGERR_H

#include <stddef.h>

struct els_cfgerr {
	unsigned line; /* where the person should look (may differ from libconfig's line) */
	char msg[640]; /* the whole message, without "file:line: " */
};

/* Explains libconfig's error `text` reported at `line` of the file whose text is buf[len]
 * (buf may be NULL when it cannot be read: then only the text is translated). include_dir is
 * where @include paths are relative to (NULL: the current directory). Always fills *e. */
void els_cfgerr_explain(const char *buf, size_t len, unsigned line, const char *text,
			const char *include_dir, struct els_cfgerr *e);

/* Calls fn for every pair of string literals in buf[len] with nothing but blanks or comments
 * between them ("https" "8443"), which libconfig joins into one string: line is the second
 * string's, first and second point into buf (not terminated; lengths given, quotes
 * excluded). Returns the number of pairs. */
unsigned els_cfgerr_glued(const char *buf, size_t len,
			  void (*fn)(void *arg, unsigned line, const char *first, size_t flen,
				     const char *second, size_t slen),
			  void *arg);

/* Reads a whole file into a NUL-terminated buffer (for the functions above). NULL on error,
 * with errno set. The caller frees it. */
char *els_cfgerr_slurp(const char *path, size_t *len);

#endif
