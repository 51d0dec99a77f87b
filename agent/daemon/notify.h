/* systemd's notification protocol (sd_notify(3)), spoken directly: one datagram to the unix
 * socket named by $NOTIFY_SOCKET. Without that variable every call does nothing, so elsd
 * behaves the same under any supervisor. */
#ifndef ELS_NOTIFY_H
#define ELS_NOTIFY_H

#include <stdint.h>

/* Sends a message such as "READY=1\nSTATUS=..." Returns 0, or -errno (also when
 * $NOTIFY_SOCKET is unset: -ENOENT). */
int els_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog interval systemd asked for ($WATCHDOG_USEC, honouring $WATCHDOG_PID), in
 * microseconds, or 0 when there is none. */
uint64_t els_notify_watchdog_usec(void);

#endif
