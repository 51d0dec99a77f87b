/* The event stream (docs/events.md): every record the monitor writer takes off the workers'
 * rings, and every alert, as one line of EVE-compatible JSON, to a file (reopened on SIGUSR1)
 * and/or RFC 5424 syslog over mutually authenticated TLS (RFC 5425) to a collector.
 *
 * Nothing here runs on the packet path. The monitor writer and the alert drain call the taps
 * below; each tap formats the line once and copies it into a bounded in-memory queue per
 * output, under a mutex that the sender threads hold only to copy lines out. A full queue
 * sheds the line and counts it. The syslog sender spools what it cannot send to a bounded file
 * beside the monitor, sends the spool first when the collector is back, and reports what it
 * shed as a `gap` event. */
#ifndef ELS_EVENTS_H
#define ELS_EVENTS_H

#include <libconfig.h>
#include <stddef.h>
#include <stdint.h>

#include "els/diag.h"
#include "els/events_conf.h"
#include "els/monitor.h"

/* Starts the outputs c names (c NULL: nothing to do, 0). monitor_path places the default
 * spool; host fills EVE's `host` field. Loads the TLS credentials and opens the file now, so a
 * mistake stops the start; the collector itself may be down. 0, or -errno after logging. */
int els_events_start(const struct els_events_conf *c, const char *monitor_path, const char *host);
/* Sends what is queued (the syslog output for at most a few seconds, then spools the rest),
 * stops the threads, frees everything. */
void els_events_stop(void);
/* Reopens the file output (SIGUSR1: after logrotate moved it). Async-signal-unsafe: call it
 * from the main loop. */
void els_events_reopen(void);

/* Taps. Each returns at once whether or not a stream runs; never blocks on I/O. */
void els_events_record(const struct els_record *r);	       /* monitor writer */
void els_events_alert(const struct els_record *r);	       /* alert drain */
void els_events_alert_text(unsigned reason, const char *text); /* els_alert() */

/* ---- the formatter (events_json.c), pure, for the unit test and the taps ---- */

#define ELS_EVE_MAX 2560 /* longest line: the longest record with every text escaped */

enum els_eve_source { ELS_EVE_RECORD = 0, ELS_EVE_ALERT = 1 };

/* One EVE JSON object (no newline) for r into buf; always valid JSON and NUL-terminated, even
 * when r's text fields hold quotes, control characters or invalid UTF-8 (text that does not
 * fit is cut at a character boundary; with ELS_EVE_MAX bytes nothing is cut). host may be
 * NULL; its first ELS_EVE_HOST_MAX bytes are used. Returns the length. */
#define ELS_EVE_HOST_MAX 64
size_t els_eve_format(const struct els_record *r, enum els_eve_source src, const char *host,
		      char *buf, size_t len);
/* Appends the JSON string literal of s[0..n) (quotes included) at buf + *pos, keeping the
 * result within len - 1 bytes and NUL-terminated; invalid UTF-8 becomes U+FFFD. */
void els_json_str(char *buf, size_t len, size_t *pos, const char *s, size_t n);
/* The RFC 5424 severity an event carries: warning for drops and alerts, notice for gaps,
 * info otherwise. */
unsigned els_eve_severity(const struct els_record *r, enum els_eve_source src);
/* Its EVE event_type: "drop", "alert", "flow" or "els" (a static string). */
const char *els_eve_type(const struct els_record *r, enum els_eve_source src);

#endif
