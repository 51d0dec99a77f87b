/* Security alerts (tenet 13: log, alert, notify): anomalies, scans, expired permits and the
 * like go to syslog(3), facility daemon, ident "elsd", as one line of key=value fields:
 *
 *   ELS_ALERT event=scan_detected src=198.18.0.1 dst=198.18.0.2 proto=tcp dport=1723 ...
 *
 * Under systemd the journal stores syslog lines with SYSLOG_IDENTIFIER=elsd and PRIORITY, and
 * the fields stay greppable (journalctl -t elsd | grep event=scan_detected). syslog(3) rather
 * than sd_journal_send: no new library, and the same text reaches rsyslog on hosts without a
 * journal. When stderr is not the journal (no JOURNAL_STREAM), each alert is also logged to
 * stderr, so a foreground elsd shows it.
 *
 * Workers never do I/O: they push alert records onto their own ring (els/worker_out.h), and
 * one thread here drains every registered ring every 200 ms. */
#ifndef ELS_ALERT_H
#define ELS_ALERT_H

#include <stddef.h>

#include "els/monitor.h"

/* Off the packet path: sends "ELS_ALERT event=<reason name> " followed by the formatted
 * fields. Policy changes and rejections use it: each one is alerted. The handlers'
 * detections go through their alert rings instead (below). */
void els_alert(unsigned reason, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for what a remote party or a flood can repeat at will (management refusals,
 * monitor and queue gaps): per reason, bursts of 20 and then 5 a second; the next one that
 * goes out says how many were held back. */
void els_alert_limited(unsigned reason, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Copies s into buf (n bytes) for use inside a double-quoted alert value: a double quote,
 * a backslash or a control character becomes '_', so text from a certificate or an error
 * message cannot end the value or forge another field. Returns buf. */
const char *els_alert_clean(char *buf, size_t n, const char *s);

/* Hands a worker's alert ring to the drain thread (started with the first ring). 0 or -errno.
 * The caller keeps ownership and must unregister before freeing it. */
int els_alert_register(struct els_ring *r);
/* Drains what is left in r, stops reading it; stops the thread with the last ring. */
void els_alert_unregister(struct els_ring *r);

/* The key=value text of an alert record (without the ELS_ALERT prefix). */
void els_alert_format(const struct els_record *r, char *buf, size_t len);

#endif
