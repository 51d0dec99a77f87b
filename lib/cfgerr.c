/* libconfig's parse errors in words a person can act on (include/els/cfgerr.h). A small lexer
 * of libconfig's syntax (strings, comments, brackets) finds what libconfig does not report:
 * where an unclosed string or bracket began, which token it stumbled on, and strings it
 * joined because a comma was missing. Off the packet path. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "els/cfgerr.h"

#define MAX_DEPTH 64

/* What the lexer learnt about the text up to a line. */
struct scan {
	unsigned lines;		 /* lines in the text */
	unsigned multiline_str;	 /* first string literal that spans lines: its line, else 0 */
	unsigned semi_in_list;	 /* first ';' directly inside ( ) or [ ]: its line, else 0 */
	unsigned bad_close_line; /* a closing bracket that does not match: its line, else 0 */
	char bad_close, bad_open;
	unsigned bad_open_line;
	char open[MAX_DEPTH]; /* brackets open at the stop line */
	unsigned open_line[MAX_DEPTH];
	unsigned depth;
};

static void say(struct els_cfgerr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct els_cfgerr *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

/* Skips a comment at *i if there is one; returns whether it did. Counts newlines. */
static bool skip_comment(const char *b, size_t len, size_t *i, unsigned *line)
{
	if (b[*i] == '#' || (b[*i] == '/' && *i + 1 < len && b[*i + 1] == '/')) {
		while (*i < len && b[*i] != '\n')
			(*i)++;
		return true;
	}
	if (b[*i] == '/' && *i + 1 < len && b[*i + 1] == '*') {
		for (*i += 2; *i < len && !(b[*i] == '*' && *i + 1 < len && b[*i + 1] == '/');
		     (*i)++)
			*line += b[*i] == '\n';
		*i = *i < len ? *i + 2 : len;
		return true;
	}
	return false;
}

/* Skips the string literal starting at b[*i] == '"'; *i ends after its closing quote (or at
 * len), *line on the line it ended. Returns whether it was closed. */
static bool skip_string(const char *b, size_t len, size_t *i, unsigned *line)
{
	for ((*i)++; *i < len && b[*i] != '"'; (*i)++) {
		if (b[*i] == '\\' && *i + 1 < len)
			(*i)++;
		*line += b[*i] == '\n';
	}
	if (*i >= len)
		return false;
	(*i)++;
	return true;
}

/* Lexes b[len] up to and including line `stop` (0: all of it). */
static void scan_text(const char *b, size_t len, unsigned stop, struct scan *s)
{
	static const char closer_of[] = {['{'] = '}', ['('] = ')', ['['] = ']'};
	unsigned line = 1;

	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < len && (!stop || line <= stop);) {
		char c = b[i];

		if (c == '\n') {
			line++;
			i++;
		} else if (skip_comment(b, len, &i, &line)) {
		} else if (c == '"') {
			unsigned start = line;
			skip_string(b, len, &i, &line);
			if (line != start && !s->multiline_str)
				s->multiline_str = start;
		} else if (c == '{' || c == '(' || c == '[') {
			if (s->depth < MAX_DEPTH) {
				s->open[s->depth] = c;
				s->open_line[s->depth] = line;
			}
			s->depth++;
			i++;
		} else if (c == ';') {
			if (!s->semi_in_list && s->depth && s->depth <= MAX_DEPTH &&
			    s->open[s->depth - 1] != '{')
				s->semi_in_list = line;
			i++;
		} else if (c == '}' || c == ')' || c == ']') {
			if (s->depth == 0 ||
			    (s->depth <= MAX_DEPTH &&
			     closer_of[(unsigned char)s->open[s->depth - 1]] != c)) {
				if (!s->bad_close_line) {
					s->bad_close_line = line;
					s->bad_close = c;
					s->bad_open = s->depth ? s->open[s->depth - 1] : 0;
					s->bad_open_line =
					    s->depth ? s->open_line[s->depth - 1] : 0;
				}
			}
			if (s->depth)
				s->depth--;
			i++;
		} else {
			i++;
		}
	}
	s->lines = line - (len && b[len - 1] == '\n');
}

/* Line n of b (1-based), trimmed, cut to fit out. Returns false when there is no such line. */
static bool line_text(const char *b, size_t len, unsigned n, char *out, size_t outlen)
{
	size_t i = 0, end;

	for (unsigned l = 1; l < n && i < len; i++)
		l += b[i] == '\n';
	if (i >= len || !b)
		return false;
	end = i;
	while (end < len && b[end] != '\n')
		end++;
	while (i < end && (b[i] == ' ' || b[i] == '\t'))
		i++;
	while (end > i && (b[end - 1] == ' ' || b[end - 1] == '\t' || b[end - 1] == '\r'))
		end--;
	snprintf(out, outlen, "%.*s%s", (int)(end - i > 60 ? 60 : end - i), b + i,
		 end - i > 60 ? "..." : "");
	return end > i;
}

static void explain_syntax(const char *b, size_t len, unsigned line, struct els_cfgerr *e)
{
	struct scan s;
	char text[80] = "";

	if (!b) {
		say(e, "syntax error (the file could not be read again to say more)");
		return;
	}
	scan_text(b, len, 0, &s);
	if (s.multiline_str && s.multiline_str <= line) {
		e->line = s.multiline_str;
		say(e, "syntax error: the string that starts on this line runs onto the next: a "
		       "closing '\"' is missing");
		return;
	}
	if (s.semi_in_list && s.semi_in_list <= line) {
		e->line = s.semi_in_list;
		line_text(b, len, e->line, text, sizeof(text));
		say(e,
		    "syntax error%s%s%s: entries of a list ( ) or array [ ] are separated by ',', "
		    "not ';' (a ';' ends a setting)",
		    *text ? " in '" : "", text, *text ? "'" : "");
		return;
	}
	if (s.bad_close_line && s.bad_close_line <= line) {
		e->line = s.bad_close_line;
		if (s.bad_open)
			say(e, "syntax error: '%c' here closes the '%c' opened on line %u",
			    s.bad_close, s.bad_open, s.bad_open_line);
		else
			say(e, "syntax error: '%c' here closes nothing", s.bad_close);
		return;
	}
	if (line > s.lines && s.depth) {
		unsigned k = s.depth <= MAX_DEPTH ? s.depth - 1 : MAX_DEPTH - 1;
		e->line = s.open_line[k];
		say(e,
		    "syntax error: the file ends inside the '%c' opened on this line: a '%c' is "
		    "missing",
		    s.open[k],
		    s.open[k] == '{'   ? '}'
		    : s.open[k] == '(' ? ')'
				       : ']');
		return;
	}
	if (line_text(b, len, line, text, sizeof(text)))
		say(e,
		    "syntax error in '%s': write settings as name = value; groups as { ... }, "
		    "arrays as [ a, b ], lists as ( a, b ); strings in double quotes",
		    text);
	else
		say(e, "syntax error at the end of the file: a setting, group or list is not "
		       "finished");
}

/* The path of the @include on line n, into out. */
static bool include_path(const char *b, size_t len, unsigned n, char *out, size_t outlen)
{
	char text[512];
	const char *q, *r;
	size_t i = 0, end;

	for (unsigned l = 1; l < n && i < len; i++)
		l += b[i] == '\n';
	for (end = i; end < len && b[end] != '\n'; end++)
		;
	snprintf(text, sizeof(text), "%.*s", (int)(end - i), b + i);
	if (!(q = strstr(text, "@include")) || !(q = strchr(q, '"')) || !(r = strchr(q + 1, '"')))
		return false;
	snprintf(out, outlen, "%.*s", (int)(r - q - 1), q + 1);
	return true;
}

static void explain_include(const char *b, size_t len, unsigned line, const char *dir,
			    struct els_cfgerr *e)
{
	char name[256], full[512];

	if (!b || !include_path(b, len, line, name, sizeof(name))) {
		say(e, "cannot open include file (check the @include lines: their paths are "
		       "relative to this file's directory)");
		return;
	}
	if (name[0] == '/' || !dir)
		snprintf(full, sizeof(full), "%s", name);
	else
		snprintf(full, sizeof(full), "%s/%s", dir, name);
	/* access(), not open(): a FIFO named by a hostile file must not block us */
	if (access(full, R_OK) == 0) {
		say(e,
		    "cannot open include file \"%s\" (%s) when it was read; it opens now: "
		    "check it again",
		    name, full);
		return;
	}
	say(e, "cannot open include file \"%s\" (%s): %s%s", name, full, strerror(errno),
	    name[0] == '/' ? "" : " (relative paths are taken from this file's directory)");
}

void els_cfgerr_explain(const char *buf, size_t len, unsigned line, const char *text,
			const char *include_dir, struct els_cfgerr *e)
{
	char t[80];

	e->line = line;
	if (!text)
		text = "unknown error";
	if (strstr(text, "mismatched element type in array")) {
		bool groups = buf && line_text(buf, len, line, t, sizeof(t)) && strchr(t, '{');
		say(e,
		    "%s: an array [ ] holds scalars of one type; write a list of %s with ( ) "
		    "instead, e.g. local_ports = ( \"https\", 8443 ); permits = ( { ... }, { ... } "
		    ")",
		    text, groups ? "groups" : "groups or of mixed values (numbers and strings)");
	} else if (strstr(text, "syntax error")) {
		explain_syntax(buf, len, line, e);
	} else if (strstr(text, "cannot open include file")) {
		explain_include(buf, len, line, include_dir, e);
	} else {
		say(e, "%s", text);
	}
}

unsigned els_cfgerr_glued(const char *b, size_t len,
			  void (*fn)(void *arg, unsigned line, const char *first, size_t flen,
				     const char *second, size_t slen),
			  void *arg)
{
	const char *prev = NULL;
	size_t prev_len = 0;
	unsigned line = 1, n = 0;

	for (size_t i = 0; b && i < len;) {
		char c = b[i];

		if (c == '\n') {
			line++;
			i++;
		} else if (c == ' ' || c == '\t' || c == '\r') {
			i++;
		} else if (skip_comment(b, len, &i, &line)) {
		} else if (c == '"') {
			size_t start = i + 1;
			unsigned at = line;
			size_t slen = skip_string(b, len, &i, &line) ? i - start - 1 : i - start;
			if (prev) {
				n++;
				if (fn)
					fn(arg, at, prev, prev_len, b + start, slen);
			}
			prev = b + start;
			prev_len = slen;
		} else {
			prev = NULL;
			i++;
		}
	}
	return n;
}

char *els_cfgerr_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (!f)
		return NULL;
	do {
		if (cap - n < 4096) {
			char *g = realloc(buf, cap ? cap * 2 : 8192);
			if (!g) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = g;
			cap = cap ? cap * 2 : 8192;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
	} while (got > 0);
	if (ferror(f)) {
		free(buf);
		fclose(f);
		errno = EIO;
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}
