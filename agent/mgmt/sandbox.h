/* Landlock sandbox for the management endpoint: after it has opened everything it needs, the
 * endpoint gives up the filesystem entirely (no file can be opened, read or written), new TCP
 * binds and connects, and signals or abstract unix sockets outside itself. This is what keeps
 * it away from the policy files even when it runs under the same uid as elsd (under systemd,
 * where switching users is not allowed). */
#ifndef ELS_SANDBOX_H
#define ELS_SANDBOX_H

#include <stddef.h>

/* Needs no_new_privs set first. Returns the Landlock ABI version applied (>= 1), 0 when the
 * kernel has no Landlock (nothing applied), or -1 with a message in err. */
int els_sandbox_endpoint(char *err, size_t n);

#endif
