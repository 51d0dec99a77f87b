/* Clean children (see child.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"
#include "privdrop.h"

/* The whole environment a child gets: no NOTIFY_SOCKET, WATCHDOG_USEC, LISTEN_FDS, LD_*. */
static char *const clean_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", NULL};

int els_child_spawn(pid_t *pid, char *const argv[], int in_fd, int out_fd, bool err_null)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int rc;

	if (posix_spawn_file_actions_init(&fa) != 0)
		return -ENOMEM;
	if (posix_spawnattr_init(&at) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -ENOMEM;
	}
	if (in_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (out_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	if (err_null)
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	/* elsd's main thread blocks the signals it reads through signalfd: the child must not
	 * inherit that mask, nor any disposition. */
	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(pid, "/proc/self/exe", &fa, &at, argv, clean_env);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return -rc;
}

/* posix_spawn's POSIX_SPAWN_SETSIGDEF leaves out the signals glibc keeps for itself (32 and
 * 33), and an ignored disposition survives exec: whoever started elsd may have ignored them.
 * The trampoline is single-threaded and about to exec, so the kernel call is safe here. */
static void reset_all_signals(void)
{
	struct {
		void *handler;
		unsigned long flags;
		void *restorer;
		uint64_t mask;
	} sa = {.handler = SIG_DFL};
	for (int sig = 1; sig <= 64; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &sa, NULL, sizeof(sa.mask));
	uint64_t none = 0;
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
}

void els_child_close_inherited(void)
{
	/* elsd opens everything CLOEXEC, but whoever started elsd may have leaked descriptors
	 * to it (a test harness, a shell): none of them goes further. */
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0)
		return;
#endif
	for (int fd = 3; fd < 65536; fd++)
		close(fd);
}

/* elsd --exec-clean PROGRAM [ARGS...]: the sweep's trampoline. */
int els_child_exec_main(int argc, char **argv)
{
	char err[160];
	if (argc < 3) {
		fprintf(stderr, "elsd %s: no program\n", ELS_CHILD_EXEC_CLEAN);
		return 127;
	}
	if (els_privdrop_confine(err, sizeof(err)) < 0) {
		fprintf(stderr, "elsd %s: %s\n", ELS_CHILD_EXEC_CLEAN, err);
		return 127;
	}
	reset_all_signals();
	els_child_close_inherited();
	execvp(argv[2], argv + 2);
	fprintf(stderr, "elsd %s: cannot run %s: %s\n", ELS_CHILD_EXEC_CLEAN, argv[2],
		strerror(errno));
	return 127;
}
