/* Who owns a local socket: the process behind a service-bound permit (docs/els-policy.md,
 * "Service-bound permits"). The header filter asks through els_ctx.owner; elsd answers from its
 * per-worker cache (agent/packet/owner*.c); the pure parsers of what the kernel and /proc say
 * (lib/owner/owner_parse.c) are here too, so that fuzzers and tools reach them. */
#ifndef ELS_OWNER_H
#define ELS_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "els/pkt.h"

#define ELS_OWNER_EXE_LEN  96
#define ELS_OWNER_UNIT_LEN 64

/* What a service-bound permit is compared with. Filled off the packet path. */
struct els_owner {
	uint64_t inode; /* the socket's inode */
	uint32_t pid;	/* the process holding the socket (the lowest pid among holders) */
	uint32_t uid;	/* the socket's owner (sock_diag; NFQUEUE's uid for outbound) */
	uint32_t gid;	/* the holder's effective gid (NFQUEUE's gid for outbound) */
	uint8_t exe_ok; /* the file at exe is the very file the process runs (same device and
			   inode): false for a deleted or replaced binary, or another mount's */
	char exe[ELS_OWNER_EXE_LEN];   /* /proc/PID/exe, "" when unreadable */
	char unit[ELS_OWNER_UNIT_LEN]; /* systemd unit from /proc/PID/cgroup, "" when none */
};

/* Answers of els_ctx.owner. */
enum els_owner_res {
	ELS_OWNER_FOUND = 0,   /* *out is the owner */
	ELS_OWNER_UNKNOWN = 1, /* no socket, or no process holds it (exited, kernel-originated,
				  a raw socket): the handler's fail policy decides */
	ELS_OWNER_PENDING = 2, /* being looked up off the worker thread: the packet waits */
};

/* What a permit needs of the owner. The socket's uid comes from sock_diag (inbound) or with
 * the packet (outbound, with its gid): a permit on user alone, or outbound on user and group,
 * needs no process, hence no /proc (and no privilege to read other users' processes). */
#define ELS_OWNER_NEED_UID  0x01u
#define ELS_OWNER_NEED_PROC 0x02u /* exe or unit: the owning process */
#define ELS_OWNER_NEED_GID  0x04u /* inbound: the process's effective gid, from /proc */

/* Looks up the owner of the local socket of pkt (inbound: the one that receives it; outbound:
 * the one that sent it). Packet path: no allocation, no lock, no blocking. */
typedef enum els_owner_res (*els_owner_fn)(void *arg, const struct els_pkt *pkt, unsigned need,
					   const struct els_owner **out);

/* ---- parsers (lib/owner/owner_parse.c): input from /proc and the kernel, fuzzed ---- */

/* The systemd unit of a /proc/PID/cgroup text (len bytes, not NUL-terminated): from the
 * named systemd hierarchy of cgroup v1 ("N:name=systemd:/PATH") or else the unified one
 * ("0::/PATH"); the deepest path component that names a unit (a known unit suffix, not
 * ".slice"). Writes "" and returns false when there is none. */
bool els_owner_unit_parse(const char *text, size_t len, char *unit, size_t unit_size);

/* The effective uid and gid from a /proc/PID/status text ("Uid:\tR E S F", "Gid:" alike).
 * False when either line is missing or malformed. */
bool els_owner_status_parse(const char *text, size_t len, uint32_t *euid, uint32_t *egid);

/* The inode of a "socket:[N]" link text (len bytes): true and *inode, else false. */
bool els_owner_socket_link(const char *text, size_t len, uint64_t *inode);

/* One sock_diag answer (a netlink message payload of len bytes, struct inet_diag_msg and
 * attributes): the socket's inode and uid. False when it is too short for one. */
bool els_owner_diag_parse(const void *payload, size_t len, uint64_t *inode, uint32_t *uid);

/* A buffer of netlink messages read from a sock_diag socket: 1 and the socket's inode and uid
 * when the answer to seq names one, 0 when it says there is none (an error message, or no
 * inode), -1 when the buffer holds no answer to seq. */
int els_owner_diag_answer(const void *buf, size_t len, uint32_t seq, uint64_t *inode,
			  uint32_t *uid);

/* "unit=U exe=E pid=P uid=N" (fields that are empty left out) into buf: the text records carry
 * in their detail. */
void els_owner_describe(const struct els_owner *o, char *buf, size_t size);

/* ---- /proc (lib/owner/owner_proc.c): off the packet path ---- */

/* For each of n sockets (o[i].inode set, o[i].uid kept): found[i] and the rest of o[i] when a
 * process holds it, the lowest pid among holders (the one that opened it before forking its
 * workers). One scan of /proc for all. Sockets of processes this user may not inspect
 * (another user's, without CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE) are not found; a warning is
 * logged once. */
void els_owner_scan(struct els_owner *o, bool *found, unsigned n);
/* pid's exe (exe_ok: the file at that name is the running one), unit and effective gid into o;
 * false when the process is gone. */
bool els_owner_from_pid(uint32_t pid, struct els_owner *o);

#endif
