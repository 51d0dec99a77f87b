/* The policy checker: the child's main and the parent's job (see policy_check.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "els/clock.h"
#include "policy_check.h"
#include "privdrop.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* ---- the child: elsd --check-policy-fd POLICY_DIR SERVICES ---- */

/* Landlock (written out as in sandbox.c: Debian 12's headers know only ABI 1 and 2). The
 * checker may read the policy directory and the services file, and nothing else: no write,
 * no exec, nowhere. */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
};
struct ll_path_beneath {
	uint64_t allowed_access;
	int32_t parent_fd;
} __attribute__((packed));
#define LL_CREATE_RULESET_VERSION (1u << 0)
#define LL_RULE_PATH_BENEATH	  1
#define LL_FS_READ_FILE		  (1ull << 2)
#define LL_FS_READ_DIR		  (1ull << 3)

static int allow(int ruleset, const char *path, uint64_t access)
{
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	struct stat st;
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		access &= LL_FS_READ_FILE; /* a file takes file rights only */
	struct ll_path_beneath pb = {.allowed_access = access, .parent_fd = fd};
	int rc = (int)syscall(SYS_landlock_add_rule, ruleset, LL_RULE_PATH_BENEATH, &pb, 0);
	close(fd);
	return rc;
}

/* 1 when confined, 0 when the kernel has no Landlock (the other limits still hold), -1 on
 * failure. */
static int confine_fs(const char *policy_dir, const char *services)
{
	int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
	if (abi < 0)
		return errno == ENOSYS || errno == EOPNOTSUPP ? 0 : -1;
	uint64_t all = (1ull << 13) - 1; /* ABI 1: EXECUTE .. MAKE_SYM */
	if (abi >= 2)
		all |= 1ull << 13; /* REFER */
	if (abi >= 3)
		all |= 1ull << 14; /* TRUNCATE */
	if (abi >= 5)
		all |= 1ull << 15; /* IOCTL_DEV */
	struct ll_ruleset_attr attr = {.handled_access_fs = all};
	int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
	if (rs < 0)
		return -1;
	int rc = allow(rs, policy_dir, LL_FS_READ_FILE | LL_FS_READ_DIR);
	if (rc == 0)
		rc = allow(rs, services, LL_FS_READ_FILE);
#ifdef UNDER_ASAN
	if (rc == 0) /* LeakSanitizer reads /proc/self/maps at exit */
		rc = allow(rs, "/proc", LL_FS_READ_FILE | LL_FS_READ_DIR);
#endif
	if (rc == 0)
		rc = (int)syscall(SYS_landlock_restrict_self, rs, 0);
	close(rs);
	return rc < 0 ? -1 : 1;
}

static void limit(int res, rlim_t v)
{
	struct rlimit rl = {v, v};
	setrlimit(res, &rl);
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

int els_policy_check_main(int argc, char **argv)
{
	char err[160];
	struct els_diag d;
	char *text = NULL, *out = NULL;
	size_t len = 0;
	int status = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: elsd %s POLICY_DIR SERVICES < DOCUMENT\n",
			ELS_CHILD_CHECK_POLICY);
		return 2;
	}
	/* Limits and privileges first, before a byte of the document is read. */
	els_child_close_inherited();
	if (els_privdrop_confine(err, sizeof(err)) < 0)
		return 3;
#ifndef UNDER_ASAN
	limit(RLIMIT_AS, ELS_CHECK_AS_BYTES); /* ASan reserves terabytes of address space */
#endif
	limit(RLIMIT_CPU, ELS_CHECK_CPU_S);
	limit(RLIMIT_FSIZE, 0);
	limit(RLIMIT_CORE, 0);
	limit(RLIMIT_NOFILE, ELS_CHECK_NOFILE);
	if (confine_fs(argv[2], argv[3]) < 0)
		return 3;

	els_diag_init(&d, "<policy>");
	text = malloc(ELS_POLICY_DOC_MAX + 1);
	out = malloc(ELS_CHECK_MAX_OUT);
	if (!text || !out)
		return 3;
	for (;;) {
		ssize_t n = read(0, text + len, ELS_POLICY_DOC_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > ELS_POLICY_DOC_MAX)
			break;
	}
	struct els_policy *p = NULL;
	int dfd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		els_diag_file(&d, argv[2], 0, "cannot open the policy directory: %s",
			      strerror(errno));
	else
		p = els_policy_load_document(text, len, "<policy>", dfd, argv[2], argv[3], &d);
	size_t n = els_check_result_format(out, p, &d);
	if (write_all(1, out, n) < 0)
		status = 3;
	els_policy_free(p);
	els_diag_free(&d);
	if (dfd >= 0)
		close(dfd);
	free(text);
	free(out);
	return status;
}

/* ---- the parent ---- */

int els_check_start(struct els_check_job *j, const char *text, size_t len, const char *policy_dir,
		    const char *services_path)
{
	int pfd[2] = {-1, -1}, mfd = -1, rc = 0;
	pid_t pid;

	if (j->pid > 0)
		return -EBUSY;
	/* The document goes in through a memfd: written whole now, so the main thread never
	 * waits for the child to read a pipe; sealed, so the child reads exactly this. */
	mfd = memfd_create("els-policy", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return -errno;
	for (size_t off = 0; off < len;) {
		ssize_t w = write(mfd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = -errno;
			goto out;
		}
		off += (size_t)w;
	}
	fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
	if (lseek(mfd, 0, SEEK_SET) < 0 || pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = -errno;
		goto out;
	}
	char *argv[] = {"elsd-check", ELS_CHILD_CHECK_POLICY, (char *)policy_dir,
			(char *)(services_path ? services_path : "/etc/services"), NULL};
	rc = els_child_spawn(&pid, argv, mfd, pfd[1], true);
	if (rc < 0)
		goto out;
	j->buf = malloc(ELS_CHECK_MAX_OUT + 1);
	if (!j->buf) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		rc = -ENOMEM;
		goto out;
	}
	j->pid = pid;
	j->out_fd = pfd[0];
	pfd[0] = -1;
	j->len = 0;
	j->eof = j->reaped = j->overflow = false;
	j->status = 0;
	j->deadline_ns = els_now_mono() + (uint64_t)ELS_CHECK_WALL_MS * 1000000u;
out:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	close(mfd);
	return rc;
}

bool els_check_running(const struct els_check_job *j)
{
	return j->pid > 0;
}

int els_check_fd(const struct els_check_job *j)
{
	return j->pid > 0 && !j->eof ? j->out_fd : -1;
}

int els_check_timeout_ms(const struct els_check_job *j)
{
	if (j->pid <= 0)
		return -1;
	uint64_t now = els_now_mono();
	if (now >= j->deadline_ns)
		return 0;
	/* While the pipe is closed but the child is not yet reaped, look again soon (the
	 * SIGCHLD that wakes the loop may have been consumed before the pipe's EOF). */
	uint64_t ms = (j->deadline_ns - now + 999999) / 1000000;
	return j->eof && ms > 20 ? 20 : (int)ms;
}

static void finish(struct els_check_job *j)
{
	if (j->out_fd >= 0)
		close(j->out_fd);
	j->out_fd = -1;
	free(j->buf);
	j->buf = NULL;
	j->pid = 0;
}

void els_check_abort(struct els_check_job *j)
{
	if (j->pid <= 0)
		return;
	if (!j->reaped) {
		kill(j->pid, SIGKILL);
		waitpid(j->pid, NULL, 0);
	}
	finish(j);
}

static void fail(struct els_check_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(struct els_check_result *r, const char *fmt, ...)
{
	va_list ap;
	memset(r, 0, sizeof(*r));
	va_start(ap, fmt);
	vsnprintf(r->msgs[0], sizeof(r->msgs[0]), fmt, ap);
	va_end(ap);
	r->nmsgs = 1;
	r->errors = 1;
}

bool els_check_poll(struct els_check_job *j, struct els_check_result *r)
{
	if (j->pid <= 0)
		return false;
	while (!j->eof) {
		char tmp[4096];
		ssize_t n = read(j->out_fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			j->eof = true;
			break;
		}
		size_t take = (size_t)n;
		if (j->len + take > ELS_CHECK_MAX_OUT) {
			j->overflow = true;
			take = ELS_CHECK_MAX_OUT - j->len;
		}
		memcpy(j->buf + j->len, tmp, take);
		j->len += take;
	}
	if (!j->reaped && waitpid(j->pid, &j->status, WNOHANG) == j->pid)
		j->reaped = true;
	bool late = els_now_mono() >= j->deadline_ns;
	if (late && !j->reaped) {
		kill(j->pid, SIGKILL);
		waitpid(j->pid, &j->status, 0);
		j->reaped = true;
		fail(r,
		     "<policy>: refused: checking the document took longer than %u ms and was "
		     "stopped (simplify it: is a group very large?)",
		     ELS_CHECK_WALL_MS);
		finish(j);
		return true;
	}
	if (!j->reaped || (!j->eof && !late))
		return false;
	/* Reaped; the pipe may still hold the last bytes if it was not at EOF yet. */
	if (WIFSIGNALED(j->status))
		fail(r, "<policy>: refused: the policy checker was killed by signal %d (%s)",
		     WTERMSIG(j->status),
		     WTERMSIG(j->status) == SIGXCPU || WTERMSIG(j->status) == SIGKILL
			 ? "its CPU limit"
			 : "a resource limit or a crash");
	else if (WEXITSTATUS(j->status) != 0)
		fail(r, "<policy>: refused: the policy checker failed (exit %d: out of memory?)",
		     WEXITSTATUS(j->status));
	else if (j->overflow || els_check_result_parse(j->buf, j->len, r) < 0)
		fail(r, "<policy>: refused: the policy checker gave a malformed answer");
	finish(j);
	return true;
}
