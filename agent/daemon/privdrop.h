/* Privilege drop for elsd started as root outside systemd: after the queues are bound, the
 * daemon becomes the configured user and keeps only CAP_NET_ADMIN, which nfnetlink checks on
 * every verdict it receives. Under systemd (User=elsd, AmbientCapabilities=CAP_NET_ADMIN) the
 * process already is that user, and the drop does nothing. */
#ifndef ELS_PRIVDROP_H
#define ELS_PRIVDROP_H

#include <sys/types.h>

/* Switches the whole process to user `user`: its primary group, no supplementary groups, uid
 * and gid (real, effective, saved) changed for every thread, CAP_NET_ADMIN alone permitted and
 * effective in the calling thread (threads it starts afterwards inherit that), every other
 * capability removed from the bounding set where the kernel allows, no_new_privs set.
 * Before switching, the monitor file `monitor` (may be NULL), its -wal and -shm companions and
 * its chain key `key` (NULL: monitor.key beside the monitor), where they exist, are given to
 * the user, so that a later start as that user (systemd User=elsd) can still open what was
 * created as root.
 * Does nothing and returns 0 when user is NULL or empty, or when the process already runs as
 * that user. Returns -ENOENT when the user does not exist, -EPERM when the process is neither
 * root nor that user, another -errno when a step fails; each failure is logged with what to do.
 * A failure may leave the process half-changed: the caller must exit. */
int els_privdrop(const char *user, const char *monitor, const char *key);

/* The steps the three confined processes share: elsd above, the management endpoint
 * (agent/mgmt/mgmt_exec.c) and the policy-check child (agent/control/child.c). */

/* Removes every capability but `keep` (-1: none) from the calling thread's bounding set, as
 * far as the kernel allows (it needs CAP_SETPCAP, so before leaving root). Returns how many
 * stayed. */
unsigned els_privdrop_bounding(int keep);
/* No supplementary groups, then gid and uid (real, effective, saved) for every thread. 0, or
 * -errno with *step naming the call that failed. */
int els_privdrop_become(uid_t uid, gid_t gid, const char **step);
/* For good: every capability given up (ambient, bounding as far as the kernel allows,
 * inheritable, permitted, effective) and no_new_privs set, so an exec gains nothing. 0, or -1
 * with a message in err. */
int els_privdrop_confine(char *err, size_t n);

#endif
