/* The `sweep` management request: starts the forensic sweep (els-sweep) now, instead of
 * waiting for its timer. The sweep runs as a child of elsd's main process, never on the packet
 * path, and at most one at a time; its end is reaped on SIGCHLD and recorded. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "child.h"
#include "control.h"
#include "els/clock.h"
#include "worker.h"

int els_sweep_start(struct els_sweep_job *j, char *const argv[], const char *by)
{
	char *targv[66];
	pid_t pid;
	unsigned n = 0;

	if (j->pid > 0)
		return -EBUSY;
	/* Through elsd's clean trampoline (child.h): no capability, no inherited descriptor or
	 * signal mask, no NOTIFY_SOCKET; argv[0] is searched in a fixed PATH. stdout and stderr
	 * stay elsd's (the journal under systemd). */
	targv[n++] = "elsd-sweep";
	targv[n++] = ELS_CHILD_EXEC_CLEAN;
	for (unsigned i = 0; argv[i]; i++) {
		if (n == 65)
			return -E2BIG;
		targv[n++] = argv[i];
	}
	targv[n] = NULL;
	int rc = els_child_spawn(&pid, targv, -1, -1, false);
	if (rc < 0)
		return rc;
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
	unsigned secs = (unsigned)((els_now_mono() - j->started_ns) / ELS_NS_PER_S);
	if (WIFEXITED(status))
		snprintf(why, n, "sweep by %s finished after %u s: exit %d%s", j->by, secs,
			 WEXITSTATUS(status), WEXITSTATUS(status) == 0 ? " (ok)" : " (failed)");
	else
		snprintf(why, n, "sweep by %s killed by signal %d after %u s", j->by,
			 WTERMSIG(status), secs);
	j->pid = 0;
	return true;
}
