#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "els/log.h"

static int max_level = ELS_LL_INFO;
static const char *program = "elsd";

void els_log_set_program(const char *name)
{
	program = name;
}

void els_log_set_level(int level)
{
	max_level = level;
}

void els_log(int level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	static const int syslog_prio[] = {3, 4, 6, 7};
	char line[2048];
	va_list ap;

	if (level > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (getenv("JOURNAL_STREAM"))
		fprintf(stderr, "<%d>%s\n", syslog_prio[level], line);
	else
		fprintf(stderr, "%s: %s: %s\n", program, names[level], line);
}
