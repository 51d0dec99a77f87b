/* Diagnostics to stderr. Under systemd (JOURNAL_STREAM set) each line carries a "<N>" syslog
 * priority prefix, so the journal files it at the right level. */
#ifndef ELS_LOG_H
#define ELS_LOG_H

#include "els/policy.h"

void els_log_set_level(int level);
/* The name before each line when not under systemd (default "elsd"); name is kept, not copied. */
void els_log_set_program(const char *name);
void els_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
