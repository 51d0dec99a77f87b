/* Text that came from elsewhere (an agent's answer, a monitor file, a certificate) made safe to
 * print on a terminal: no control characters, no escape sequences, only valid UTF-8. A permit
 * id such as "web\x1b[2J" must not clear the operator's screen or forge lines. */
#ifndef ELS_TERMSAFE_H
#define ELS_TERMSAFE_H

#include <stdbool.h>
#include <stddef.h>

/* Copies s[0..len) into a new string (caller frees; NULL only when out of memory) in which
 * each escape sequence (ESC or a C1 introducer with its parameters, or a whole OSC/DCS/APC
 * string up to its terminator), each other C0 control, DEL, C1 control and each byte that is
 * not part of valid UTF-8 is replaced by one '?'. keep_lines keeps '\n' and '\t' (multi-line
 * text such as a config file); otherwise they become '?' too. A NUL byte inside len counts
 * as a control character. */
char *els_termsafe(const char *s, size_t len, bool keep_lines);

/* true when els_termsafe would change nothing. */
bool els_termsafe_clean(const char *s, size_t len, bool keep_lines);

#endif
