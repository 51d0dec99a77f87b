/* The `sweep` management request: starts the forensic sweep (els-sweep) now, instead of
 * waiting for its timer. The sweep runs as a child of elsd's main process, never on the packet
 * path, and at most one at a time; its end is reaped on SIGCHLD and recorded. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "control.h"
#include "worker.h"

extern char **environ;

int els_sweep_start(struct els_sweep_job *j, char *const argv[], const char *by)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;

	if (j->pid > 0)
		return -EBUSY;
	if (posix_spawn_file_actions_init(&fa) != 0)
		return -ENOMEM;
	/* stdout and stderr stay elsd's (the journal under systemd); nothing to read. */
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return -rc;
	j->pid = pid;
	j->started_ns = els_now_mono();
	snprintf(j->by, sizeof(j->by), "%s", by ? by : "?");
	return 0;
}

bool els_sweep_reap(struct els_sweep_job *j, char *why, size_t n)
{
	int status;

	if (j->pid <= 0 || waitpid(j->pid, &status, WNOHANG) != j->pid)
		return false;
	unsigned secs = (unsigned)((els_now_mono() - j->started_ns) / 1000000000u);
	if (WIFEXITED(status))
		snprintf(why, n, "sweep by %s finished after %u s: exit %d%s", j->by, secs,
			 WEXITSTATUS(status), WEXITSTATUS(status) == 0 ? " (ok)" : " (failed)");
	else
		snprintf(why, n, "sweep by %s killed by signal %d after %u s", j->by,
			 WTERMSIG(status), secs);
	j->pid = 0;
	return true;
}
