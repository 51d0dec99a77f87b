#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox.h"

/* The kernel's Landlock ABI (stable, see Documentation/userspace-api/landlock.rst), written
 * out here because Debian 12's headers describe only its first two versions. */
struct ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net; /* ABI 4 */
	uint64_t scoped;             /* ABI 6 */
};
#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_FS_ABI1 ((1ull << 13) - 1) /* EXECUTE .. MAKE_SYM */
#define LL_FS_REFER (1ull << 13)      /* ABI 2 */
#define LL_FS_TRUNCATE (1ull << 14)   /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ull << 15)  /* ABI 5 */
#define LL_NET_BIND_TCP (1ull << 0)
#define LL_NET_CONNECT_TCP (1ull << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ull << 0)
#define LL_SCOPE_SIGNAL (1ull << 1)

/* Asking for a right the kernel does not know is an error, so the set grows with the ABI. */
static uint64_t fs_rights(int abi)
{
	uint64_t r = LL_FS_ABI1;
	if (abi >= 2)
		r |= LL_FS_REFER;
	if (abi >= 3)
		r |= LL_FS_TRUNCATE;
	if (abi >= 5)
		r |= LL_FS_IOCTL_DEV;
	return r;
}

int els_sandbox_endpoint(char *err, size_t n)
{
	int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	if (abi < 0) {
		if (errno == ENOSYS || errno == EOPNOTSUPP)
			return 0;
		snprintf(err, n, "landlock: %s", strerror(errno));
		return -1;
	}
	struct ruleset_attr attr = {.handled_access_fs = fs_rights(abi)};
	size_t size = offsetof(struct ruleset_attr, handled_access_net);
	if (abi >= 4) {
		attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
		size = offsetof(struct ruleset_attr, scoped);
	}
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	/* No rules: every handled right is denied everywhere. */
	int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (fd < 0) {
		snprintf(err, n, "landlock ruleset (ABI %d): %s", abi, strerror(errno));
		return -1;
	}
	int rc = (int)syscall(SYS_landlock_restrict_self, fd, 0);
	int saved = errno;
	close(fd);
	if (rc < 0) {
		snprintf(err, n, "landlock restrict: %s", strerror(saved));
		return -1;
	}
	return abi;
}
