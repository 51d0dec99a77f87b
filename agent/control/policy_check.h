/* Checking a policy document from a console where it cannot stall or kill elsd: a fresh
 * process (elsd --check-policy-fd, exec'd through child.h: clean environment, no
 * capabilities) with memory, CPU, file-size and descriptor limits, Landlock-confined to
 * reading the policy directory and the services file, fed the document on stdin
 * from a sealed memfd, answering on a pipe that the main thread polls from its supervise()
 * loop, and killed by the main thread at a wall-clock deadline. */
#ifndef ELS_POLICY_CHECK_H
#define ELS_POLICY_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "check_result.h"

#define ELS_CHECK_WALL_MS  5000		/* killed after this long, whatever it is doing */
#define ELS_CHECK_CPU_S	   10		/* RLIMIT_CPU */
#define ELS_CHECK_AS_BYTES (1ull << 30) /* RLIMIT_AS (not under AddressSanitizer) */
#define ELS_CHECK_NOFILE   16		/* RLIMIT_NOFILE */

struct els_check_job {
	pid_t pid; /* 0: none running */
	int out_fd;
	char *buf;
	size_t len;
	bool eof, reaped, overflow;
	int status;
	uint64_t deadline_ns;
};

/* Starts checking text (len bytes) against list files in policy_dir. 0, -EBUSY when a check
 * is running, or -errno. */
int els_check_start(struct els_check_job *j, const char *text, size_t len, const char *policy_dir,
		    const char *services_path);
bool els_check_running(const struct els_check_job *j);
/* The pipe to poll for POLLIN (-1: none) and the milliseconds until the deadline (-1: none). */
int els_check_fd(const struct els_check_job *j);
int els_check_timeout_ms(const struct els_check_job *j);
/* Reads what is there, reaps, enforces the deadline. Returns true once the check has ended:
 * then r holds the result, or (false r->ok) a message saying why it failed (killed at the
 * deadline, crashed, malformed answer). Never blocks. */
bool els_check_poll(struct els_check_job *j, struct els_check_result *r);
/* Kills and reaps a running check (shutdown). */
void els_check_abort(struct els_check_job *j);

#endif
