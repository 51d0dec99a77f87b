/* The management endpoint's Landlock sandbox: after it, no file can be opened (for reading or
 * writing), no TCP port bound or connected, no signal sent outside. Each check runs in a
 * forked child, because a sandbox cannot be undone. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"

static int abi; /* in the child: the Landlock ABI the sandbox used */

/* A child's exit status for "this kernel's Landlock ABI is below N, which the check needs": the
 * test is skipped, never passed, since nothing was checked. */
#define ABI_TOO_OLD(n) (80 + (n))

/* Runs fn in a sandboxed child; returns its exit status (0 = every check held), or 77 when the
 * kernel has no Landlock. */
static int in_sandbox(int (*fn)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		char err[128];
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		abi = els_sandbox_endpoint(err, sizeof(err));
		if (abi < 0)
			_exit(2);
		_exit(abi == 0 ? 77 : fn());
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

static int no_files(void)
{
	if (open("/etc/hostname", O_RDONLY) >= 0 || errno != EACCES)
		return 10;
	if (open("/tmp/els-sandbox-test", O_WRONLY | O_CREAT, 0600) >= 0)
		return 11;
	return 0;
}

static int no_tcp(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (s < 0)
		return 20;
	if (abi < 4)
		return ABI_TOO_OLD(4); /* TCP rules came with ABI 4 */
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) == 0)
		return 21;
	a.sin_port = htons(9);
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0 || errno != EACCES)
		return 22;
	return 0;
}

static int no_signals_out(void)
{
	/* The parent (the test runner) is outside the sandbox: ABI 6 scoping refuses it. */
	if (abi < 6)
		return ABI_TOO_OLD(6);
	if (kill(getppid(), 0) == 0 || errno != EPERM)
		return 30;
	return 0;
}

static void expect(int rc)
{
	if (rc == 77)
		cr_skip("no Landlock in this kernel");
	if (rc > ABI_TOO_OLD(0) && rc < ABI_TOO_OLD(10))
		cr_skip("this kernel's Landlock ABI is below %d, which this check needs",
			rc - ABI_TOO_OLD(0));
	cr_assert_eq(rc, 0, "check %d failed", rc);
}

Test(sandbox, no_file_can_be_opened)
{
	expect(in_sandbox(no_files));
	cr_assert_eq(access("/tmp/els-sandbox-test", F_OK), -1, "the file must not exist");
}

Test(sandbox, no_tcp_bind_or_connect)
{
	expect(in_sandbox(no_tcp));
}

Test(sandbox, no_signal_to_processes_outside)
{
	expect(in_sandbox(no_signals_out));
}
