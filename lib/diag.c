/* Configuration error collector (see include/els/diag.h). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "els/diag.h"

void els_diag_init(struct els_diag *d, const char *default_file)
{
	memset(d, 0, sizeof(*d));
	d->default_file = default_file;
}

void els_diag_free(struct els_diag *d)
{
	for (unsigned i = 0; i < d->count; i++)
		free(d->msgs[i]);
	free(d->msgs);
	memset(d, 0, sizeof(*d));
}

__attribute__((format(printf, 4, 0))) static void diag_push(struct els_diag *d, const char *file,
						      unsigned line, const char *fmt,
		      va_list ap)
{
	char msg[1024];
	char *full = NULL;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!file)
		file = d->default_file ? d->default_file : "(config)";
	int n = line ? asprintf(&full, "%s:%u: %s", file, line, msg)
		     : asprintf(&full, "%s: %s", file, msg);
	if (n < 0)
		return; /* out of memory while reporting an error: the count still says it failed */
	if (d->count == d->cap) {
		unsigned cap = d->cap ? d->cap * 2 : 8;
		char **m = realloc(d->msgs, cap * sizeof(*m));
		if (!m) {
			free(full);
			return;
		}
		d->msgs = m;
		d->cap = cap;
	}
	d->msgs[d->count++] = full;
}

void els_diag_at(struct els_diag *d, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;
	const char *file = s ? config_setting_source_file(s) : NULL;
	unsigned line = s ? config_setting_source_line(s) : 0;

	va_start(ap, fmt);
	diag_push(d, file, line, fmt, ap);
	va_end(ap);
}

void els_diag_file(struct els_diag *d, const char *file, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_push(d, file, line, fmt, ap);
	va_end(ap);
}

void els_diag_print(const struct els_diag *d, FILE *out)
{
	for (unsigned i = 0; i < d->count; i++)
		fprintf(out, "%s\n", d->msgs[i]);
}
