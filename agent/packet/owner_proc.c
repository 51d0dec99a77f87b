/* Socket owners, resolver side: a thread per queue that turns socket inodes into processes by
 * reading /proc (the only place Linux says which process holds a socket). Off the packet path:
 * it may take milliseconds on a busy host, and the packets that wait for it are held by their
 * queue meanwhile (owner.h). The text it reads is parsed by lib/owner_parse.c (fuzzed). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "els/log.h"
#include "owner_int.h"

#define RESOLVE_BATCH 64

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
static void describe_pid(int pdir, struct els_owner *o)
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

void owner_proc_resolve(struct owner_ans *a, unsigned n)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	unsigned left = n;
	static bool warned;

	for (unsigned i = 0; i < n; i++) {
		a[i].found = false;
		a[i].o.pid = 0;
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
				els_log(ELS_LL_WARNING,
					"service-bound permits: cannot read /proc/%u/fd: %s; sockets "
					"of other users' processes have no known owner (elsd needs "
					"CAP_SYS_PTRACE for them)",
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
				if (a[i].o.inode == ino && (!a[i].found || pid < a[i].o.pid)) {
					if (!a[i].found)
						left--;
					a[i].found = true;
					a[i].o.pid = pid;
				}
		}
		closedir(fds);
	}
	closedir(proc);
	(void)left;
	for (unsigned i = 0; i < n; i++) {
		if (!a[i].found)
			continue;
		char path[32];
		snprintf(path, sizeof(path), "/proc/%u", a[i].o.pid);
		int pdir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pdir < 0) {
			a[i].found = false; /* exited between the scan and now */
			continue;
		}
		describe_pid(pdir, &a[i].o);
		close(pdir);
	}
}

static void *resolver_main(void *arg)
{
	struct owner_resolver *r = arg;
	struct owner_ans batch[RESOLVE_BATCH];
	struct pollfd pfd = {.fd = r->req_fd, .events = POLLIN};

	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		uint64_t v;
		uint32_t t = atomic_load_explicit(&r->req->tail, memory_order_relaxed);
		uint32_t h = atomic_load_explicit(&r->req->head, memory_order_acquire);
		if (t == h) {
			poll(&pfd, 1, 200);
			if (read(r->req_fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: woken by the timeout */
			}
			continue;
		}
		unsigned n = 0;
		for (; t != h && n < RESOLVE_BATCH; t++) {
			const struct owner_req *q = &r->req->e[t % OWNER_RING];
			memset(&batch[n], 0, sizeof(batch[n]));
			batch[n].o.inode = q->inode;
			batch[n].o.uid = q->uid;
			n++;
		}
		atomic_store_explicit(&r->req->tail, t, memory_order_release);
		owner_proc_resolve(batch, n);
		/* The answer ring has the request ring's size, and the worker asks only while it
		 * has a free slot, so this waits only when the worker is stopping. */
		for (unsigned i = 0; i < n; i++) {
			struct owner_ans_ring *a = r->ans;
			uint32_t ah = atomic_load_explicit(&a->head, memory_order_relaxed);
			while (ah - atomic_load_explicit(&a->tail, memory_order_acquire) >=
				   OWNER_RING &&
			       !atomic_load_explicit(&r->stop, memory_order_relaxed))
				usleep(1000);
			a->e[ah % OWNER_RING] = batch[i];
			atomic_store_explicit(&a->head, ah + 1, memory_order_release);
		}
		uint64_t one = 1;
		if (write(r->ans_fd, &one, sizeof(one)) < 0) {
			/* EAGAIN: already signalled */
		}
	}
	return NULL;
}

int owner_resolver_start(struct owner_resolver *r)
{
	atomic_store(&r->stop, false);
	if (pthread_create(&r->thread, NULL, resolver_main, r) != 0)
		return -1;
	char name[16];
	snprintf(name, sizeof(name), "els-owner%u", r->queue);
	pthread_setname_np(r->thread, name);
	r->started = true;
	return 0;
}

void owner_resolver_stop(struct owner_resolver *r)
{
	if (!r->started)
		return;
	atomic_store(&r->stop, true);
	uint64_t one = 1;
	if (write(r->req_fd, &one, sizeof(one)) < 0) {
		/* the thread's poll times out within 200 ms anyway */
	}
	pthread_join(r->thread, NULL);
	r->started = false;
}
