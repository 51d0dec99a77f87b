/* The management endpoint's seccomp filter: after it, no socket of any kind can be made (UDP,
 * netlink, unix), no datagram sent to an address, no unix path connected, no namespace
 * entered, no process traced, no program run; what the endpoint needs (send/recv on the
 * sockets it has, fork-less work, memory) still works. Each check runs in a forked child,
 * because a filter cannot be removed. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/netlink.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mgmt.h"

/* Runs fn in a filtered child; returns its exit status (0 = every check held). */
static int filtered(int (*fn)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		char err[256];
		if (els_mgmt_seccomp(err, sizeof(err)) < 0)
			_exit(2);
		_exit(fn());
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static bool eperm(long rc)
{
	return rc == -1 && errno == EPERM;
}

static int no_new_sockets(void)
{
	if (!eperm(socket(AF_INET, SOCK_DGRAM, 0)))
		return 10;
	if (!eperm(socket(AF_INET6, SOCK_DGRAM, 0)))
		return 11;
	if (!eperm(socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)))
		return 12;
	if (!eperm(socket(AF_UNIX, SOCK_STREAM, 0)))
		return 13;
	if (!eperm(socket(AF_INET, SOCK_STREAM, 0)))
		return 14;
	int sv[2];
	if (!eperm(socketpair(AF_UNIX, SOCK_STREAM, 0, sv)))
		return 15;
	return 0;
}

Test(mgmt_seccomp, no_socket_of_any_kind)
{
	cr_assert_eq(filtered(no_new_sockets), 0);
}

static int udp, unixsock, pair[2];

static int no_new_peers(void)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(53)};
	inet_pton(AF_INET, "198.18.0.1", &to.sin_addr);
	if (!eperm(sendto(udp, "x", 1, 0, (struct sockaddr *)&to, sizeof(to))))
		return 20;
	struct msghdr mh = {.msg_name = &to, .msg_namelen = sizeof(to)};
	if (!eperm(sendmsg(udp, &mh, 0)))
		return 21;
	if (!eperm(connect(udp, (struct sockaddr *)&to, sizeof(to))))
		return 22;
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	strcpy(un.sun_path, "/run/systemd/notify");
	if (!eperm(connect(unixsock, (struct sockaddr *)&un, sizeof(un))))
		return 23;
	if (!eperm(bind(udp, (struct sockaddr *)&to, sizeof(to))))
		return 24;
	/* What the endpoint does use: send() on a connected socket, and reading. */
	char c;
	if (send(pair[0], "y", 1, 0) != 1 || recv(pair[1], &c, 1, 0) != 1 || c != 'y')
		return 25;
	if (write(pair[0], "z", 1) != 1 || read(pair[1], &c, 1) != 1)
		return 26;
	return 0;
}

Test(mgmt_seccomp, no_datagram_to_an_address_no_connect_but_send_works)
{
	udp = socket(AF_INET, SOCK_DGRAM, 0);
	unixsock = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair), 0);
	cr_assert(udp >= 0 && unixsock >= 0);
	cr_assert_eq(filtered(no_new_peers), 0);
}

static int no_escape(void)
{
	if (!eperm(unshare(CLONE_NEWUSER)))
		return 30;
	if (!eperm(unshare(CLONE_NEWNET)))
		return 31;
	if (!eperm(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)))
		return 32;
	if (!eperm(setns(0, 0)))
		return 33;
	if (!eperm(ptrace(PTRACE_ATTACH, getppid(), 0, 0)))
		return 34;
	char *argv[] = {"/bin/true", NULL};
	if (!eperm(execve("/bin/true", argv, argv + 1)))
		return 35;
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
		return 36;
	/* A plain fork (clone without namespace flags) is no escape and still works. */
	pid_t p = fork();
	if (p == 0)
		_exit(7);
	int st;
	if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
		return 37;
	return 0;
}

Test(mgmt_seccomp, no_namespaces_ptrace_or_exec)
{
	cr_assert_eq(filtered(no_escape), 0);
}
