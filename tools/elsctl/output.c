/* Output helpers: aligned tables, error responses, durations. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "els/termsafe.h"
#include "elsctl.h"

void ctl_print_json(json_t *v, FILE *out)
{
	/* ENSURE_ASCII: control characters an agent put in a string come out as \u escapes,
	 * exact for a program and harmless on a terminal (jansson escapes C0 anyway; this also
	 * covers DEL and C1). */
	json_dumpf(v, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	fputc('\n', out);
}

void ctl_json_termsafe(json_t *v)
{
	const char *k;
	json_t *e;
	size_t i;

	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		char *safe;

		if (els_termsafe_clean(s, n, true))
			return;
		safe = els_termsafe(s, n, true);
		if (safe)
			json_string_set(v, safe);
		else
			json_string_set(v, "?"); /* out of memory: lose the text, not the safety */
		free(safe);
	} else if (json_is_object(v)) {
		json_object_foreach(v, k, e) ctl_json_termsafe(e);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e) ctl_json_termsafe(e);
	}
}

void ctl_fputs_safe(const char *s, FILE *out)
{
	char *safe = els_termsafe(s, strlen(s), true);

	fputs(safe ? safe : "?", out);
	free(safe);
}

const char *ctl_json_text(json_t *v, char *buf, size_t len)
{
	if (!v || json_is_null(v))
		snprintf(buf, len, "-");
	else if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%g", json_real_value(v));
	else if (json_is_true(v))
		snprintf(buf, len, "yes");
	else if (json_is_false(v))
		snprintf(buf, len, "no");
	else {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		snprintf(buf, len, "%s", s ? s : "?");
		free(s);
	}
	return buf;
}

void ctl_fmt_duration(double s, char *buf, size_t len)
{
	unsigned long long t = s < 0 ? 0 : (unsigned long long)s;

	if (s < 1 && s > 0)
		snprintf(buf, len, "%.0fms", s * 1000);
	else if (t < 60)
		snprintf(buf, len, "%llus", t);
	else if (t < 3600)
		snprintf(buf, len, "%llum%02llus", t / 60, t % 60);
	else if (t < 86400)
		snprintf(buf, len, "%lluh%02llum", t / 3600, t % 3600 / 60);
	else
		snprintf(buf, len, "%llud%02lluh", t / 86400, t % 86400 / 3600);
}

/* "<policy>" in an error's file field means the submitted text: name it as the user did. */
static const char *detail_file(json_t *d, const char *text_name)
{
	const char *f = json_string_value(json_object_get(d, "file"));

	if (!f)
		return NULL;
	if (text_name && !strcmp(f, "<policy>"))
		return text_name;
	return f;
}

static void detail_text(json_t *d, const char *text_name, char *buf, size_t len)
{
	const char *file = detail_file(d, text_name);
	json_t *line = json_object_get(d, "line");
	const char *msg = json_string_value(json_object_get(d, "message"));

	if (file && json_is_integer(line))
		snprintf(buf, len, "%s:%" JSON_INTEGER_FORMAT ": %s", file,
			 json_integer_value(line), msg ? msg : "");
	else if (file)
		snprintf(buf, len, "%s: %s", file, msg ? msg : "");
	else if (msg)
		snprintf(buf, len, "%s", msg);
	else
		ctl_json_text(d, buf, len);
}

void ctl_print_error(const char *who, json_t *error, const char *text_name, FILE *out)
{
	const char *code = json_string_value(json_object_get(error, "code"));
	const char *msg = json_string_value(json_object_get(error, "message"));
	json_t *details = json_object_get(error, "details"), *d;
	size_t i;

	if (!code)
		code = "internal";
	/* The agent's message says what to do; prefix the code so scripts can grep it. */
	fprintf(out, "elsctl: %s%s%s: %s\n", who ? who : "", who ? ": " : "", code,
		msg ? msg : "(no message)");
	if (!json_is_array(details))
		return;
	json_array_foreach(details, i, d)
	{
		char line[1024];

		detail_text(d, text_name, line, sizeof(line));
		fprintf(out, "  %s\n", line);
	}
}

void ctl_error_line(json_t *error, const char *text_name, char *buf, size_t len)
{
	const char *code = json_string_value(json_object_get(error, "code"));
	const char *msg = json_string_value(json_object_get(error, "message"));
	json_t *details = json_object_get(error, "details");
	char first[512];

	if (!code)
		code = "internal";
	if (json_is_array(details) && json_array_size(details) > 0 &&
	    json_is_object(json_array_get(details, 0)) &&
	    json_object_get(json_array_get(details, 0), "message")) {
		detail_text(json_array_get(details, 0), text_name, first, sizeof(first));
		snprintf(buf, len, "%s: %s (first: %s)", code, msg ? msg : "", first);
	} else {
		snprintf(buf, len, "%s: %s", code, msg ? msg : "");
	}
}

struct ctl_table {
	unsigned ncols;
	size_t nrows, cap;
	char **cells; /* nrows * ncols, row 0 the headers */
};

struct ctl_table *ctl_table_new(unsigned ncols, const char *const *headers)
{
	struct ctl_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = ncols;
	ctl_table_add(t, headers);
	return t;
}

void ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	if (!t)
		return;
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **nc = realloc(t->cells, cap * t->ncols * sizeof(*nc));

		if (!nc)
			return; /* a short table beats a crash; the row is dropped */
		t->cells = nc;
		t->cap = cap;
	}
	/* One line per row, whatever the cells hold: no newlines, tabs or escapes. */
	for (unsigned i = 0; i < t->ncols; i++) {
		const char *s = cells[i] ? cells[i] : "-";

		t->cells[t->nrows * t->ncols + i] = els_termsafe(s, strlen(s), false);
	}
	t->nrows++;
}

void ctl_table_print(const struct ctl_table *t, FILE *out)
{
	size_t w[32] = {0};

	if (!t || t->ncols > 32)
		return;
	for (size_t r = 0; r < t->nrows; r++)
		for (unsigned i = 0; i < t->ncols; i++) {
			const char *s = t->cells[r * t->ncols + i];
			size_t n = s ? strlen(s) : 1;

			if (n > w[i])
				w[i] = n;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (unsigned i = 0; i < t->ncols; i++) {
			const char *s = t->cells[r * t->ncols + i];

			if (i + 1 == t->ncols)
				fprintf(out, "%s\n", s ? s : "-");
			else
				fprintf(out, "%-*s  ", (int)w[i], s ? s : "-");
		}
	}
}

void ctl_table_free(struct ctl_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}
