/* Becoming an unprivileged user that keeps CAP_NET_ADMIN.
 *
 * Capabilities, keepcaps and the bounding set are per thread, while glibc applies setgroups,
 * setresgid and setresuid to every thread of the process. So the calling thread (the one that
 * goes on to start the packet workers) keeps CAP_NET_ADMIN through PR_SET_KEEPCAPS, and any
 * thread already running (the monitor writer) loses every capability when its uids stop being
 * 0, which is what it should have anyway. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "els/monitor.h"
#include "els/log.h"
#include "privdrop.h"

/* Looks the user up; the buffer holds the strings pw points into. */
static int lookup(const char *user, struct passwd *pw, char *buf, size_t len)
{
	struct passwd *res = NULL;
	int e = getpwnam_r(user, pw, buf, len, &res);

	if (res)
		return 0;
	if (e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM) {
		els_log(ELS_LL_ERROR,
			"config 'user' = \"%s\": no such user; create it (useradd --system "
			"--no-create-home --shell /usr/sbin/nologin %s) or remove the setting",
			user, user);
		return -ENOENT;
	}
	els_log(ELS_LL_ERROR, "config 'user' = \"%s\": cannot look it up: %s", user, strerror(e));
	return -e;
}

/* The monitor's directory may be writable by that user: a link planted there must not make
 * root give away the file it points to, so only a plain file with one name is given.
 * O_PATH, not a real open: SQLite already has these files open with POSIX locks, and closing
 * any ordinary descriptor of a file drops every such lock the process holds on it. Without
 * them, the next reader (sqlite3, els-log, els-sweep) believes it is the last connection,
 * deletes the -wal and -shm files, and elsd dies of SIGBUS on its mapping of the -shm file. */
static int give_file(const char *path, const struct passwd *pw)
{
	struct stat st;
	int rc = 0;
	int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 || fstat(fd, &st) < 0)
		rc = -errno;
	else if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
		rc = -EPERM;
	else if (fchownat(fd, "", pw->pw_uid, pw->pw_gid, AT_EMPTY_PATH) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		els_log(ELS_LL_ERROR, "privilege drop: cannot give %s to user %s: %s", path,
			pw->pw_name,
			rc == -EPERM || rc == -ELOOP ? "not a plain file with a single name"
						     : strerror(-rc));
	return rc;
}

static int give_files(const char *monitor, const char *key, const struct passwd *pw)
{
	static const char *const suffixes[] = {"", "-wal", "-shm"};
	char path[4096];
	int rc = 0;

	if (!monitor)
		return 0;
	for (unsigned i = 0; rc == 0 && i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (snprintf(path, sizeof(path), "%s%s", monitor, suffixes[i]) >= (int)sizeof(path))
			return -ENAMETOOLONG;
		rc = give_file(path, pw);
	}
	char *beside = key ? NULL : els_mon_key_path(monitor);
	if (rc == 0 && (key || beside))
		rc = give_file(key ? key : beside, pw);
	free(beside);
	return rc;
}

unsigned els_privdrop_bounding(int keep)
{
	unsigned kept = 0;

	for (cap_value_t c = 0; c < (cap_value_t)cap_max_bits(); c++) {
		if (c == keep || CAP_IS_SUPPORTED(c) == 0)
			continue;
		if (cap_drop_bound(c) < 0)
			kept++;
	}
	return kept;
}

int els_privdrop_become(uid_t uid, gid_t gid, const char **step)
{
	*step = "setgroups";
	if (setgroups(0, NULL) < 0)
		return -errno;
	*step = "setresgid";
	if (setresgid(gid, gid, gid) < 0)
		return -errno;
	*step = "setresuid";
	if (setresuid(uid, uid, uid) < 0)
		return -errno;
	return 0;
}

int els_privdrop_confine(char *err, size_t n)
{
	/* The bounding set bounds what an exec of a setuid or root program regains: empty it
	 * where the process may (CAP_SETPCAP; under systemd's User=elsd it may not, and then
	 * the process has no capability to regain in the first place). */
	els_privdrop_bounding(-1);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	cap_t none = cap_init();
	if (!none || cap_set_proc(none) < 0) {
		snprintf(err, n, "cannot clear capabilities: %s", strerror(errno));
		cap_free(none);
		return -1;
	}
	cap_free(none);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, n, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Everything but CAP_NET_ADMIN leaves the bounding set, so that nothing this process execs
 * could gain more. Needs CAP_SETPCAP, hence before setuid; where the kernel refuses (a
 * container without it), the capabilities are still gone from the permitted set. */
static void shrink_bounding_set(void)
{
	unsigned kept = els_privdrop_bounding(CAP_NET_ADMIN);

	if (kept)
		els_log(
		    ELS_LL_WARNING,
		    "privilege drop: %u capabilities stay in the bounding set (no CAP_SETPCAP); "
		    "none of them is held",
		    kept);
}

static int keep_net_admin(void)
{
	const cap_value_t want[] = {CAP_NET_ADMIN};
	cap_t caps = cap_init();
	int rc = 0;

	if (!caps)
		return -ENOMEM;
	if (cap_set_flag(caps, CAP_PERMITTED, 1, want, CAP_SET) < 0 ||
	    cap_set_flag(caps, CAP_EFFECTIVE, 1, want, CAP_SET) < 0 || cap_set_proc(caps) < 0)
		rc = -errno;
	cap_free(caps);
	if (rc == 0 && CAP_AMBIENT_SUPPORTED())
		cap_reset_ambient(); /* already empty: the inheritable set is */
	return rc;
}

/* Belt and braces: the drop is only done when root can no longer be regained. */
static int verify(const struct passwd *pw)
{
	uid_t r, e, s;
	gid_t gr, ge, gs;
	cap_flag_value_t v = CAP_CLEAR;
	cap_t caps = cap_get_proc();
	int held = 0;

	if (!caps)
		return -errno;
	for (cap_value_t c = 0; c < (cap_value_t)cap_max_bits(); c++) {
		if (c != CAP_NET_ADMIN && cap_get_flag(caps, c, CAP_PERMITTED, &v) == 0 &&
		    v == CAP_SET)
			held++;
	}
	cap_free(caps);
	if (getresuid(&r, &e, &s) < 0 || getresgid(&gr, &ge, &gs) < 0)
		return -errno;
	if (held || r != pw->pw_uid || e != pw->pw_uid || s != pw->pw_uid || gr != pw->pw_gid ||
	    ge != pw->pw_gid || gs != pw->pw_gid || getgroups(0, NULL) != 0 || setuid(0) == 0)
		return -EPERM;
	return 0;
}

int els_privdrop(const char *user, const char *monitor, const char *key)
{
	struct passwd pw;
	char buf[4096];
	int rc;

	if (!user || !*user)
		return 0;
	rc = lookup(user, &pw, buf, sizeof(buf));
	if (rc < 0)
		return rc;
	if (geteuid() == pw.pw_uid && getuid() == pw.pw_uid) {
		els_log(ELS_LL_INFO, "running as user %s already (systemd User=?): no drop needed",
			user);
		return 0;
	}
	if (geteuid() != 0) {
		els_log(ELS_LL_ERROR,
			"config 'user' = \"%s\" but elsd runs as uid %u, not root: it cannot "
			"switch; start it as root or as %s, or remove the setting",
			user, (unsigned)geteuid(), user);
		return -EPERM;
	}
	rc = give_files(monitor, key, &pw);
	if (rc < 0)
		return rc;
	shrink_bounding_set();
	const char *step = "prctl(PR_SET_KEEPCAPS)";
	if (prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) < 0)
		goto fail;
	rc = els_privdrop_become(pw.pw_uid, pw.pw_gid, &step);
	if (rc < 0) {
		errno = -rc;
		goto fail;
	}
	step = "prctl(PR_SET_KEEPCAPS, 0)";
	if (prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L) < 0)
		goto fail;
	step = "cap_set_proc(CAP_NET_ADMIN)";
	rc = keep_net_admin();
	if (rc < 0) {
		errno = -rc;
		goto fail;
	}
	step = "prctl(PR_SET_NO_NEW_PRIVS)";
	if (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) < 0)
		goto fail;
	rc = verify(&pw);
	if (rc < 0) {
		els_log(ELS_LL_ERROR, "privilege drop to %s: the process still holds privileges",
			user);
		return rc;
	}
	els_log(ELS_LL_INFO, "dropped privileges: user %s (uid %u, gid %u), only CAP_NET_ADMIN",
		user, (unsigned)pw.pw_uid, (unsigned)pw.pw_gid);
	return 0;
fail:
	rc = -errno;
	els_log(ELS_LL_ERROR, "privilege drop to %s: %s failed: %s", user, step, strerror(errno));
	return rc;
}
