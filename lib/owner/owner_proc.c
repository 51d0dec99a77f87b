/* Who holds a socket, from /proc: the only place Linux says which process holds a socket
 * (include/els/owner.h). Off the packet path: a scan may take milliseconds on a busy host.
 * elsd runs it on a thread of its own (agent/packet/owner_proc.c), elsctl audit directly. The
 * texts it reads are parsed by owner_parse.c (fuzzed). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "els/log.h"
#include "els/owner.h"

static bool is_pid(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Reads a small /proc file at dirfd/name into buf (NUL-terminated); its length or -1. */
static ssize_t read_small(int dirfd, const char *name, char *buf, size_t size)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n = -1, r;
	size_t got = 0;

	if (fd < 0)
		return -1;
	while (got + 1 < size && (r = read(fd, buf + got, size - 1 - got)) > 0)
		got += (size_t)r;
	n = (ssize_t)got;
	buf[got] = '\0';
	close(fd);
	return n;
}

/* The rest of the owner, once its pid is known: exe (and whether the file at that name is the
 * running one), unit, effective gid. A process that exits meanwhile leaves fields empty. */
static void describe_dir(int pdir, struct els_owner *o)
{
	char buf[4096];
	ssize_t n;
	struct stat run, named;

	n = readlinkat(pdir, "exe", o->exe, sizeof(o->exe) - 1);
	o->exe[n > 0 ? n : 0] = '\0';
	if (n >= (ssize_t)sizeof(o->exe) - 1)
		o->exe[0] = '\0'; /* cut: not a name anything could match */
	/* "/proc/PID/exe" reaches the running file even when deleted; the name reaches whatever
	 * is at that path in our mount namespace now. */
	o->exe_ok = o->exe[0] == '/' && fstatat(pdir, "exe", &run, 0) == 0 &&
		    stat(o->exe, &named) == 0 && run.st_dev == named.st_dev &&
		    run.st_ino == named.st_ino;
	if ((n = read_small(pdir, "cgroup", buf, sizeof(buf))) > 0)
		els_owner_unit_parse(buf, (size_t)n, o->unit, sizeof(o->unit));
	uint32_t euid, egid;
	if ((n = read_small(pdir, "status", buf, sizeof(buf))) > 0 &&
	    els_owner_status_parse(buf, (size_t)n, &euid, &egid))
		o->gid = egid;
}

void els_owner_scan(struct els_owner *o, bool *found, unsigned n)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	unsigned left = n;
	static bool warned;

	for (unsigned i = 0; i < n; i++) {
		found[i] = false;
		o[i].pid = 0;
	}
	if (!proc)
		return;
	/* Every holder is seen, and the lowest pid kept: the process that opened the socket
	 * before it forked its workers, whatever order /proc lists them in. */
	while ((de = readdir(proc))) {
		if (!is_pid(de->d_name))
			continue;
		uint32_t pid = (uint32_t)strtoul(de->d_name, NULL, 10);
		char path[32];
		snprintf(path, sizeof(path), "%u/fd", pid);
		int fdd = openat(dirfd(proc), path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fdd < 0) {
			if (errno == EACCES && !warned) {
				warned = true;
				els_log(
				    ELS_LL_WARNING,
				    "service-bound permits: cannot read /proc/%u/fd: %s; sockets "
				    "of other users' processes have no known owner (elsd needs "
				    "CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE for them)",
				    pid, strerror(errno));
			}
			continue;
		}
		DIR *fds = fdopendir(fdd);
		if (!fds) {
			close(fdd);
			continue;
		}
		struct dirent *fe;
		while ((fe = readdir(fds))) {
			char link[64];
			uint64_t ino;
			if (fe->d_name[0] == '.')
				continue;
			ssize_t l = readlinkat(fdd, fe->d_name, link, sizeof(link));
			if (l <= 0 || !els_owner_socket_link(link, (size_t)l, &ino))
				continue;
			for (unsigned i = 0; i < n; i++)
				if (o[i].inode == ino && (!found[i] || pid < o[i].pid)) {
					if (!found[i])
						left--;
					found[i] = true;
					o[i].pid = pid;
				}
		}
		closedir(fds);
	}
	closedir(proc);
	(void)left;
	for (unsigned i = 0; i < n; i++)
		if (found[i])
			found[i] = els_owner_from_pid(o[i].pid, &o[i]); /* may have exited since */
}

bool els_owner_from_pid(uint32_t pid, struct els_owner *o)
{
	char path[32];
	snprintf(path, sizeof(path), "/proc/%u", pid);
	int pdir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pdir < 0)
		return false;
	o->pid = pid;
	describe_dir(pdir, o);
	close(pdir);
	return true;
}
