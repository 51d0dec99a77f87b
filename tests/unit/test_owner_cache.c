/* agent/packet/owner.c against real sockets of this process: the sock_diag lookup, the
 * resolver thread's /proc answer, the cache by inode, the light (ids only) answers and the
 * per-packet memo, and the cases that must not wait (a fragment, a held packet's last try). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "owner.h"

static int listener(uint16_t *port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	cr_assert(s >= 0);
	cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(s, 4), 0);
	cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &l), 0);
	*port = ntohs(a.sin_port);
	return s;
}

static struct els_pkt syn_to(uint16_t port)
{
	struct els_pkt p = {.family = ELS_AF_INET,
			    .proto = 6,
			    .dir = ELS_DIR_IN,
			    .flags = ELS_PKT_HAS_PORTS,
			    .tcp_flags = 0x02,
			    .sport = 40000,
			    .dport = port};
	inet_pton(AF_INET, "127.0.0.1", p.src.b);
	inet_pton(AF_INET, "127.0.0.1", p.dst.b);
	return p;
}

static enum els_owner_res ask(struct els_owners *o, const struct els_pkt *p, unsigned need,
			      bool can_wait, const struct els_owner **w)
{
	els_owners_begin(o, 0, 0, false, can_wait);
	return els_owners_query(o, p, need, w);
}

Test(owner_cache, listener_owner_from_proc_then_cached)
{
	uint16_t port;
	int s = listener(&port);
	struct els_owners *o = els_owners_new(0);
	const struct els_owner *w = NULL;
	struct els_pkt p = syn_to(port);
	char self[ELS_OWNER_EXE_LEN];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	cr_assert(o && n > 0);
	self[n] = '\0';

	/* a held packet's last try never waits */
	cr_assert_eq(ask(o, &p, ELS_OWNER_NEED_PROC, false, &w), ELS_OWNER_UNKNOWN);
	/* a fragment is never held */
	struct els_pkt frag = p;
	frag.flags |= ELS_PKT_FRAGMENT;
	cr_assert_eq(ask(o, &frag, ELS_OWNER_NEED_PROC, true, &w), ELS_OWNER_UNKNOWN);

	cr_assert_eq(ask(o, &p, ELS_OWNER_NEED_PROC, true, &w), ELS_OWNER_PENDING);
	/* asked again while pending: still pending, one request */
	cr_assert_eq(ask(o, &p, ELS_OWNER_NEED_PROC, true, &w), ELS_OWNER_PENDING);
	for (int i = 0; i < 20000 && !els_owners_poll(o); i++)
		usleep(500);
	cr_assert_eq(ask(o, &p, ELS_OWNER_NEED_PROC, true, &w), ELS_OWNER_FOUND);
	cr_assert_eq(w->pid, (uint32_t)getpid());
	cr_assert_eq(w->uid, (uint32_t)geteuid());
	cr_assert_str_eq(w->exe, self);
	cr_assert(w->exe_ok, "the running file is the file at its name");
	cr_assert_neq(w->inode, 0);
	uint32_t ref;
	cr_assert_eq(els_owners_last(o, &ref), w);
	char d[96];
	els_owners_describe_ref(o, ref, w->pid, w->uid, d, sizeof(d));
	cr_assert(strstr(d, "exe=") && strstr(d, "pid="), "%s", d);
	/* the cache answers without the resolver, and a stale reference falls back to ids */
	cr_assert_eq(ask(o, &p, ELS_OWNER_NEED_PROC, false, &w), ELS_OWNER_FOUND);
	els_owners_describe_ref(o, ref ^ 1, 7, 8, d, sizeof(d));
	cr_assert_str_eq(d, "uid=8 pid=7");

	const struct els_owners_stats *st = els_owners_stats(o);
	cr_assert_eq(atomic_load(&st->misses), 1);
	cr_assert_geq(atomic_load(&st->hits), 2);
	els_owners_free(o);
	close(s);
}

Test(owner_cache, light_answers_and_the_memo)
{
	uint16_t port;
	int s = listener(&port);
	struct els_owners *o = els_owners_new(0);
	const struct els_owner *w = NULL;
	struct els_pkt p = syn_to(port);
	cr_assert(o);

	/* user alone: sock_diag's uid, no process, no waiting */
	els_owners_begin(o, 0, 0, false, true);
	cr_assert_eq(els_owners_query(o, &p, ELS_OWNER_NEED_UID, &w), ELS_OWNER_FOUND);
	cr_assert_eq(w->uid, (uint32_t)geteuid());
	cr_assert_eq(w->pid, 0);
	/* the same packet, a permit that needs the process: not answered from the light memo */
	cr_assert_eq(els_owners_query(o, &p, ELS_OWNER_NEED_PROC, &w), ELS_OWNER_PENDING);

	/* outbound with the kernel's ids: neither sock_diag nor /proc */
	struct els_pkt out = p;
	out.dir = ELS_DIR_OUT;
	els_owners_begin(o, 1234, 5678, true, true);
	cr_assert_eq(els_owners_query(o, &out, ELS_OWNER_NEED_UID | ELS_OWNER_NEED_GID, &w),
		     ELS_OWNER_FOUND);
	cr_assert_eq(w->uid, 1234);
	cr_assert_eq(w->gid, 5678);

	/* no socket at all: unknown at once */
	struct els_pkt none = syn_to(1); /* nothing listens on port 1 here */
	cr_assert_eq(ask(o, &none, ELS_OWNER_NEED_PROC, true, &w), ELS_OWNER_UNKNOWN);
	els_owners_free(o);
	close(s);
}

/* A SYN on the four numbers of a connection that just ended (the server closed first, so its
 * side waits in TIME_WAIT) still meets the listener: the TIME_WAIT socket has no process. */
Test(owner_cache, syn_on_a_reused_port_meets_the_listener)
{
	uint16_t port;
	int s = listener(&port);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				.sin_port = htons(port)},
			   me;
	socklen_t l = sizeof(me);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(c, (struct sockaddr *)&me, &l), 0);
	int acc = accept(s, NULL, NULL);
	cr_assert(acc >= 0);
	close(acc); /* the server closes first: its side goes to TIME_WAIT */
	char b;
	cr_assert_eq(read(c, &b, 1), 0);
	close(c);

	struct els_owners *o = els_owners_new(0);
	const struct els_owner *w = NULL;
	struct els_pkt p = syn_to(port);
	p.sport = ntohs(me.sin_port);
	cr_assert_eq(ask(o, &p, ELS_OWNER_NEED_UID, true, &w), ELS_OWNER_FOUND,
		     "the listener, not the TIME_WAIT socket");
	cr_assert_eq(w->uid, (uint32_t)geteuid());
	els_owners_free(o);
	close(s);
}
