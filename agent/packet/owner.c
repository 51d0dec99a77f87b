/* Socket owners, worker side: the sock_diag lookup, the cache by socket inode, the rings to
 * and from the resolver thread (owner.h says why it is split this way). Packet path: no
 * allocation, no lock; two system calls (sock_diag request and answer) per new flow of a
 * service-bound permit. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "els/clock.h"
#include "owner_int.h"

#define OWNER_WAYS   4
#define OWNER_SETS   512		    /* 2048 sockets' owners per queue */
#define OWNER_TTL_NS (10ull * ELS_NS_PER_S) /* a cached owner older than this is refreshed */
#define OWNER_NEG_TTL_NS                                                                           \
	OWNER_TTL_NS			  /* "nobody holds it": the same socket stays so (a scan   \
					   that may not read other users' fds must not rerun per flow) */
#define OWNER_STALE_NS (3 * OWNER_TTL_NS) /* not refreshed by then: looked up afresh */

enum { E_EMPTY, E_PENDING, E_FOUND, E_UNKNOWN };

struct owner_entry {
	uint64_t inode;
	uint64_t since_ns; /* when resolved (or asked, while pending) */
	uint16_t tag;	   /* bumped when the slot is reused: stale references see it */
	uint8_t state;
	uint8_t refreshing; /* a background refresh is asked for */
	struct els_owner o;
};

struct els_owners {
	int diag_fd;
	uint32_t seq;
	uint16_t next_tag;
	struct owner_entry *tab; /* [OWNER_SETS * OWNER_WAYS] */
	struct owner_resolver res;
	struct els_owners_stats st;
	/* per packet (els_owners_begin) */
	uint32_t pkt_uid, pkt_gid;
	bool has_ids, can_wait, memo_valid;
	enum els_owner_res memo_res;
	unsigned memo_need; /* what the memoized answer covers: a light answer (ids only) does
			       not answer a permit that needs the process */
	const struct els_owner *last;
	uint32_t last_ref;
	struct els_owner scratch; /* the answer handed out: the cached owner with this packet's
				     socket uid (and, outbound, the kernel's gid) */
	uint8_t rx[8192] __attribute__((aligned(8)));
};

static void ctr(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

struct els_owners *els_owners_new(unsigned queue)
{
	struct els_owners *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->diag_fd = -1;
	o->res.req_fd = o->res.ans_fd = -1;
	o->tab = calloc(OWNER_SETS * OWNER_WAYS, sizeof(*o->tab));
	o->res.req = calloc(1, sizeof(*o->res.req));
	o->res.ans = calloc(1, sizeof(*o->res.ans));
	if (!o->tab || !o->res.req || !o->res.ans)
		goto fail;
	o->diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	o->res.req_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	o->res.ans_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (o->diag_fd < 0 || o->res.req_fd < 0 || o->res.ans_fd < 0) {
		fprintf(stderr, "elsd: queue %u: socket owner lookups: %s\n", queue,
			strerror(errno));
		goto fail;
	}
	o->res.st = &o->st;
	o->res.queue = queue;
	if (owner_resolver_start(&o->res) < 0) {
		fprintf(stderr, "elsd: queue %u: cannot start the owner resolver thread\n", queue);
		goto fail;
	}
	return o;
fail:
	els_owners_free(o);
	return NULL;
}

void els_owners_free(struct els_owners *o)
{
	if (!o)
		return;
	owner_resolver_stop(&o->res);
	if (o->diag_fd >= 0)
		close(o->diag_fd);
	if (o->res.req_fd >= 0)
		close(o->res.req_fd);
	if (o->res.ans_fd >= 0)
		close(o->res.ans_fd);
	free(o->res.req);
	free(o->res.ans);
	free(o->tab);
	free(o);
}

int els_owners_fd(const struct els_owners *o)
{
	return o->res.ans_fd;
}

const struct els_owners_stats *els_owners_stats(const struct els_owners *o)
{
	return &o->st;
}

void els_owners_begin(struct els_owners *o, uint32_t uid, uint32_t gid, bool has_ids, bool can_wait)
{
	o->pkt_uid = uid;
	o->pkt_gid = gid;
	o->has_ids = has_ids;
	o->can_wait = can_wait;
	o->memo_valid = false;
	o->last = NULL;
}

/* sock_diag's exact lookup: the socket the kernel would hand this packet to (inbound) or that
 * sent it (outbound). TCP's request names the socket's own side as "src"; UDP's is swapped
 * ("for historical reasons", net/ipv4/udp_diag.c): the remote end is "src". */
static bool diag_lookup(struct els_owners *o, const struct els_pkt *p, int family, uint64_t *inode,
			uint32_t *uid)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req;
	static const struct els_addr any;
	const struct els_addr *local = els_pkt_local(p), *remote = els_pkt_remote(p);
	uint16_t lport = els_pkt_local_port(p), rport = els_pkt_remote_port(p);

	if (p->proto == IPPROTO_TCP && p->dir == ELS_DIR_IN) {
		/* A new inbound TCP flow goes to the listener. With the remote end given, the
		 * kernel's lookup first finds an older socket of the same four numbers (TIME_WAIT
		 * after a quick port reuse, a request socket for a retransmitted SYN), which no
		 * process holds. */
		remote = &any;
		rport = 0;
	}
	struct inet_diag_sockid *id = &req.r.id;

	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST;
	req.nlh.nlmsg_seq = ++o->seq;
	req.r.sdiag_family = (uint8_t)family;
	req.r.sdiag_protocol = p->proto;
	req.r.idiag_states = ~0u;
	id->idiag_cookie[0] = id->idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	const struct els_addr *a = p->proto == IPPROTO_TCP ? local : remote,
			      *b = p->proto == IPPROTO_TCP ? remote : local;
	id->idiag_sport = htons(p->proto == IPPROTO_TCP ? lport : rport);
	id->idiag_dport = htons(p->proto == IPPROTO_TCP ? rport : lport);
	if (family == AF_INET6 && p->family == ELS_AF_INET) {
		/* an IPv4 packet meeting a dual-stack IPv6 socket: v4-mapped addresses */
		((uint8_t *)id->idiag_src)[10] = ((uint8_t *)id->idiag_src)[11] = 0xff;
		((uint8_t *)id->idiag_dst)[10] = ((uint8_t *)id->idiag_dst)[11] = 0xff;
		memcpy((uint8_t *)id->idiag_src + 12, a->b, 4);
		memcpy((uint8_t *)id->idiag_dst + 12, b->b, 4);
	} else {
		size_t n = p->family == ELS_AF_INET ? 4 : 16;
		memcpy(id->idiag_src, a->b, n);
		memcpy(id->idiag_dst, b->b, n);
	}
	ctr(&o->st.diag);
	if (send(o->diag_fd, &req, sizeof(req), MSG_DONTWAIT) < 0)
		return false;
	/* The kernel answers within the send: the answer is queued already. Older answers (none
	 * are expected) are skipped by their sequence number. */
	for (int tries = 0; tries < 4; tries++) {
		ssize_t len = recv(o->diag_fd, o->rx, sizeof(o->rx), MSG_DONTWAIT);
		if (len <= 0)
			return false;
		int r = els_owner_diag_answer(o->rx, (size_t)len, o->seq, inode, uid);
		if (r >= 0)
			return r == 1;
	}
	return false;
}

static struct owner_entry *cache_find(struct els_owners *o, uint64_t inode)
{
	struct owner_entry *set =
	    &o->tab[(inode * 0x9E3779B97F4A7C15ull >> 40) % OWNER_SETS * OWNER_WAYS];
	for (unsigned i = 0; i < OWNER_WAYS; i++)
		if (set[i].state != E_EMPTY && set[i].inode == inode)
			return &set[i];
	return NULL;
}

/* A slot for inode: an empty way, else the oldest that is not pending. NULL: all pending. */
static struct owner_entry *cache_slot(struct els_owners *o, uint64_t inode)
{
	struct owner_entry *set =
	    &o->tab[(inode * 0x9E3779B97F4A7C15ull >> 40) % OWNER_SETS * OWNER_WAYS];
	struct owner_entry *best = NULL;
	for (unsigned i = 0; i < OWNER_WAYS; i++) {
		if (set[i].state == E_EMPTY)
			return &set[i];
		if (set[i].state != E_PENDING && (!best || set[i].since_ns < best->since_ns))
			best = &set[i];
	}
	return best;
}

static bool request(struct els_owners *o, uint64_t inode, uint32_t uid)
{
	struct owner_req_ring *r = o->res.req;
	uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);

	if (h - atomic_load_explicit(&r->tail, memory_order_acquire) >= OWNER_RING)
		return false;
	r->e[h % OWNER_RING] = (struct owner_req){.inode = inode, .uid = uid};
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
	uint64_t one = 1;
	if (write(o->res.req_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, the resolver is awake anyway */
	}
	return true;
}

static enum els_owner_res answer(struct els_owners *o, enum els_owner_res res,
				 const struct els_owner **out)
{
	o->memo_valid = true;
	o->memo_res = res;
	o->memo_need = res == ELS_OWNER_FOUND && !o->scratch.pid ? ELS_OWNER_NEED_UID : ~0u;
	if (res == ELS_OWNER_FOUND) {
		*out = &o->scratch;
		o->last = &o->scratch;
	} else if (res == ELS_OWNER_UNKNOWN)
		ctr(&o->st.unknown);
	else if (res == ELS_OWNER_PENDING)
		ctr(&o->st.deferred);
	return res;
}

enum els_owner_res els_owners_query(void *arg, const struct els_pkt *pkt, unsigned need,
				    const struct els_owner **out)
{
	struct els_owners *o = arg;
	uint64_t inode = 0;
	uint32_t uid = 0;

	if (o->memo_valid && !(need & ~o->memo_need)) { /* several permits may ask */
		if (o->memo_res == ELS_OWNER_FOUND)
			*out = &o->scratch;
		return o->memo_res;
	}
	if (!(pkt->flags & ELS_PKT_HAS_PORTS) ||
	    (pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP))
		return answer(o, ELS_OWNER_UNKNOWN, out);
	if (pkt->dir == ELS_DIR_OUT && o->has_ids && !(need & ELS_OWNER_NEED_PROC)) {
		/* user/group only: the kernel gave the sending socket's ids with the packet */
		memset(&o->scratch, 0, sizeof(o->scratch));
		o->scratch.uid = o->pkt_uid;
		o->scratch.gid = o->pkt_gid;
		o->last_ref = 0;
		return answer(o, ELS_OWNER_FOUND, out);
	}
	int fam = pkt->family == ELS_AF_INET ? AF_INET : AF_INET6;
	bool found = diag_lookup(o, pkt, fam, &inode, &uid);
	if (!found && fam == AF_INET)
		found = diag_lookup(o, pkt, AF_INET6, &inode, &uid);
	if (!found)
		return answer(o, ELS_OWNER_UNKNOWN, out); /* no socket: a raw one, the kernel */
	ctr(&o->st.diag_found);
	if (!(need & ~ELS_OWNER_NEED_UID)) {
		/* user alone: the socket's uid is the answer, no process needed */
		memset(&o->scratch, 0, sizeof(o->scratch));
		o->scratch.inode = inode;
		o->scratch.uid = uid;
		o->last_ref = 0;
		return answer(o, ELS_OWNER_FOUND, out);
	}

	uint64_t now = els_now_mono();
	struct owner_entry *e = cache_find(o, inode);
	/* An entry much older than its refresh period, or one whose socket now has another uid,
	 * is not trusted: a socket inode number can come back after 2^32 sockets. */
	if (e && e->state == E_FOUND && (now - e->since_ns > OWNER_STALE_NS || e->o.uid != uid)) {
		e->state = E_UNKNOWN;
		e->since_ns = 0; /* expired at once: looked up again below */
	}
	if (e && e->state == E_FOUND) {
		ctr(&o->st.hits);
		if (now - e->since_ns > OWNER_TTL_NS && !e->refreshing && request(o, inode, uid)) {
			e->refreshing = 1; /* the answer replaces it; until then it stands */
			ctr(&o->st.refreshed);
		}
		o->scratch = e->o;
		o->scratch.uid = uid;
		if (pkt->dir == ELS_DIR_OUT && o->has_ids)
			o->scratch.gid = o->pkt_gid;
		o->last_ref = (uint32_t)(e - o->tab) << 16 | e->tag;
		return answer(o, ELS_OWNER_FOUND, out);
	}
	if (e && e->state == E_UNKNOWN && now - e->since_ns < OWNER_NEG_TTL_NS)
		return answer(o, ELS_OWNER_UNKNOWN, out);
	/* A fragment is never held: judged twice, the anomaly handler would take its second
	 * judging for an overlap. */
	if (!o->can_wait || (pkt->flags & ELS_PKT_FRAGMENT))
		return answer(o, ELS_OWNER_UNKNOWN, out);
	if (e && e->state == E_PENDING)
		return answer(o, ELS_OWNER_PENDING, out);
	ctr(&o->st.misses);
	if (!e)
		e = cache_slot(o, inode);
	if (!e || !request(o, inode, uid))
		return answer(o, ELS_OWNER_UNKNOWN, out); /* every slot or the ring is waiting */
	e->inode = inode;
	e->state = E_PENDING;
	e->refreshing = 0;
	e->since_ns = now;
	e->tag = ++o->next_tag;
	return answer(o, ELS_OWNER_PENDING, out);
}

unsigned els_owners_poll(struct els_owners *o)
{
	struct owner_ans_ring *r = o->res.ans;
	uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint32_t h = atomic_load_explicit(&r->head, memory_order_acquire);
	unsigned n = 0;
	uint64_t v, now = els_now_mono();

	if (read(o->res.ans_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing signalled; the ring is read anyway */
	}
	for (; t != h; t++, n++) {
		const struct owner_ans *a = &r->e[t % OWNER_RING];
		struct owner_entry *e = cache_find(o, a->o.inode);
		if (!e && !(e = cache_slot(o, a->o.inode)))
			continue;
		if (e->inode != a->o.inode || e->state == E_EMPTY)
			e->tag = ++o->next_tag;
		e->inode = a->o.inode;
		e->state = a->found ? E_FOUND : E_UNKNOWN;
		e->refreshing = 0;
		e->since_ns = now;
		e->o = a->o;
		ctr(&o->st.resolved);
	}
	atomic_store_explicit(&r->tail, t, memory_order_release);
	return n;
}

const struct els_owner *els_owners_last(const struct els_owners *o, uint32_t *ref)
{
	if (ref)
		*ref = o->last ? o->last_ref : 0;
	return o->last;
}

void els_owners_describe_ref(const struct els_owners *o, uint32_t ref, uint32_t pid, uint32_t uid,
			     char *buf, size_t size)
{
	uint32_t slot = ref >> 16;
	if (o && slot < OWNER_SETS * OWNER_WAYS) {
		const struct owner_entry *e = &o->tab[slot];
		if (e->state == E_FOUND && e->tag == (ref & 0xffff) && e->o.pid == pid) {
			struct els_owner x = e->o;
			x.uid = uid;
			els_owner_describe(&x, buf, size);
			return;
		}
	}
	snprintf(buf, size, "uid=%u pid=%u", uid, pid);
}
