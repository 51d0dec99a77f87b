/* NFQUEUE through libnetfilter_queue's libmnl interface.
 *
 * Each turn of the loop reads every packet the socket holds (up to a batch), judges them in
 * order, and answers them with as few verdict messages as possible: a run of equal verdicts on
 * consecutive ids becomes one NFQNL_MSG_VERDICT_BATCH, and all messages of a turn go to the
 * kernel in one sendto. Every packet read gets exactly one verdict; a packet that cannot be
 * parsed is dropped, not left queued.
 *
 * Within a turn, packets pass through a pipeline QUEUE_PIPE deep (agent/worker.h): each one is
 * decoded when it is read, its flow's bucket and then its flow are prefetched while the next
 * packets are received, and it is judged QUEUE_PIPE - 1 packets later. Under many flows the
 * flow table misses the cache on nearly every packet; this way the misses overlap the recv
 * system calls instead of stalling the chain. The pipeline is drained at the end of each turn,
 * so verdicts still go out every turn and in id order. */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "offload.h"
#include "owner.h"
#include "queue.h"

#define QUEUE_BATCH 128       /* packets judged per turn before verdicts go out */
#define QUEUE_RCVBUF (8u << 20) /* socket receive buffer: absorbs bursts while we judge */
#define QUEUE_POLL_MS 100     /* idle wake-up: generation pickup, timers, stop flag */
#define QUEUE_PIPE 3          /* decode -> prefetch the flow -> judge: see the top */
#define QUEUE_OFFLOAD_NS 20000000ull /* conntrack sockets read at least this often when busy */
#define QUEUE_HOLD 256        /* packets waiting for a socket owner lookup (owner.h) */
#define QUEUE_HOLD_NS 2000000000ull /* after this, a held packet is judged as owner unknown */

struct pending {
	uint32_t id;
	uint8_t verdict; /* NF_ACCEPT / NF_DROP, or NF_REPEAT to offload (see offload_verdict) */
	bool set_mark;	 /* the verdict carries NFQA_MARK = mark */
	uint32_t mark;
};

struct in_flight {
	uint32_t id;
	uint32_t mark; /* the packet's mark as queued (NFQA_MARK; 0 when absent) */
	bool mark_changed; /* verdict_mark_unsaved() took the offload bit out of mark */
	uint32_t uid, gid; /* the sending socket's, when has_ids (NFQA_CFG_F_UID_GID) */
	bool has_ids;
	struct els_decoded dec;
};

/* A packet whose verdict waits for its socket's owner (agent/packet/owner.h). */
struct held {
	struct in_flight f;
	uint64_t since_ns;
};

struct els_queue {
	struct mnl_socket *nl;
	unsigned num;
	unsigned portid;
	struct els_worker *w;
	struct pending pend[QUEUE_BATCH]; /* judged, verdict not yet sent */
	unsigned npend;
	struct in_flight pipe[QUEUE_PIPE]; /* read, not yet judged: [pipe_out, pipe_in) */
	unsigned pipe_in, pipe_out;
	char *rxbuf; /* one netlink message: the copied headers plus attributes */
	size_t rxlen;
	char *txbuf; /* the verdict batch */
	size_t txlen;
	struct els_offload *off; /* opened when a generation turns offload on */
	uint32_t gen;		 /* generation seen at the last turn */
	struct els_offload_req offq[QUEUE_BATCH]; /* flows to mark after this turn's verdicts */
	unsigned noffq;
	bool verdict_mark; /* offload by the verdict's packet mark (the rules save it), not ctnetlink */
	uint64_t now_mono, now_real; /* read once per turn: a turn lasts microseconds */
	uint64_t offload_read_ns;    /* when the conntrack sockets were last read */
	bool offload_busy;	     /* ... and that read found messages */
	struct els_owners *owners;
	struct held held[QUEUE_HOLD];
	unsigned nheld;
	uint64_t held_total; /* packets ever held for an owner lookup */
};

static int send_config(struct els_queue *q, struct nlmsghdr *nlh)
{
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	return 0;
}

struct els_queue *els_queue_open(const struct els_queue_opts *o, struct els_worker *w)
{
	struct els_queue *q = calloc(1, sizeof(*q));
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	int rc;

	if (!q)
		return NULL;
	q->num = o->num;
	q->w = w;
	q->rxlen = o->copy_bytes + 4096; /* headers + netlink attributes */
	q->txlen = QUEUE_BATCH * 64 + 4096;
	q->rxbuf = malloc(q->rxlen);
	q->txbuf = malloc(q->txlen);
	/* CLOEXEC: a child (the sweep, the policy checker) must never hold the queue. */
	q->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!q->rxbuf || !q->txbuf || !q->nl) {
		fprintf(stderr, "elsd: queue %u: cannot open netlink socket: %s\n", o->num,
			strerror(errno));
		goto fail;
	}
	if (mnl_socket_bind(q->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		fprintf(stderr, "elsd: queue %u: netlink bind: %s\n", o->num, strerror(errno));
		goto fail;
	}
	q->portid = mnl_socket_get_portid(q->nl);

	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, o->num);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	if ((rc = send_config(q, nlh)) < 0) {
		fprintf(stderr,
			"elsd: queue %u: cannot bind: %s (is another program bound to it? elsd needs "
			"CAP_NET_ADMIN)\n",
			o->num, strerror(-rc));
		goto fail;
	}
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, o->num);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, (int)o->copy_bytes);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, o->maxlen);
	/* GSO: accept unsegmented super-packets rather than having the kernel split them for
	 * us; only headers are read, so their checksum state does not matter. FAIL_OPEN: what
	 * the kernel does when the queue is full. */
	uint32_t flags = NFQA_CFG_F_GSO | (o->fail_open ? NFQA_CFG_F_FAIL_OPEN : 0);
	/* UID_GID: the sending socket's ids come with each outbound packet (service-bound
	 * permits on user/group need no socket lookup then). */
	flags |= NFQA_CFG_F_UID_GID;
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK,
			 htonl(NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_UID_GID));
	if ((rc = send_config(q, nlh)) < 0) {
		fprintf(stderr, "elsd: queue %u: cannot configure: %s\n", o->num, strerror(-rc));
		goto fail;
	}
	int sz = (int)QUEUE_RCVBUF;
	int fd = mnl_socket_get_fd(q->nl);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	return q;
fail:
	els_queue_close(q);
	return NULL;
}

static uint8_t hook_dir(uint8_t hook)
{
	/* LOCAL_OUT and POST_ROUTING carry what this host sends; everything else is inbound
	 * (PRE_ROUTING, LOCAL_IN, and FORWARD, which a host agent treats as arriving). */
	return hook == NF_INET_LOCAL_OUT || hook == NF_INET_POST_ROUTING ? ELS_DIR_OUT
									 : ELS_DIR_IN;
}

static void flush_verdicts(struct els_queue *q);

/* A packet reached the queue with the offload bit in its packet mark while offload marks by
 * the verdict: either it is one elsd sent back with NF_REPEAT and the steering rules have no
 * rule that saves the bit into the connection (rules older than this elsd), or something
 * else set the bit. Either way the bit is not saved here: from now on this queue marks
 * connections by ctnetlink, starting with this packet's flow if elsd took it as offloaded.
 * The packet itself is judged like any other (never accepted for its mark alone), and its
 * verdict carries its mark without the bit. */
static void verdict_mark_unsaved(struct els_queue *q, struct in_flight *f)
{
	fprintf(stderr,
		"elsd: queue %u: offload: a queued packet carries mark bit 0x%08x: the steering "
		"rules do not save it into the connection (els-rules install puts that rule in); "
		"offloading by conntrack updates instead\n",
		q->num, ELS_OFFLOAD_MARK);
	q->verdict_mark = false;
	if (f->dec.has_flow) {
		const struct els_flow *fl = els_flow_lookup(q->w->flows, &f->dec.hint.key);
		if (fl && (fl->offload & ELS_FLOW_MARKED) && q->noffq < QUEUE_BATCH) {
			q->offq[q->noffq].key = fl->key;
			q->offq[q->noffq].init_side = fl->init_side;
			q->noffq++;
		}
	}
	f->mark &= ~ELS_OFFLOAD_MARK;
	f->mark_changed = true;
}

/* Queues the verdict of a judged packet (f: its id and mark). A packet whose flow the worker
 * offloads (w->offload_now) gets NF_REPEAT with ELS_OFFLOAD_MARK added to its packet mark: the
 * kernel runs the steering chain again, whose offload rule saves the bit into the connection's
 * mark, clears it from the packet and accepts. So the mark is in place before the flow's next
 * packet, with no conntrack message: offload costs a new connection nothing beyond the packets
 * it queues anyway. */
static void add_verdict(struct els_queue *q, const struct in_flight *f, enum els_action a)
{
	struct pending *p = &q->pend[q->npend++];

	p->id = f->id;
	p->verdict = a == ELS_ACCEPT ? NF_ACCEPT : NF_DROP;
	p->set_mark = f->mark_changed;
	p->mark = f->mark;
	if (!q->w->offload_now)
		return;
	if (q->verdict_mark && a == ELS_ACCEPT) {
		p->verdict = NF_REPEAT;
		p->set_mark = true;
		p->mark = f->mark | ELS_OFFLOAD_MARK;
		return;
	}
	q->offq[q->noffq].key = q->w->offload_now->key;
	q->offq[q->noffq].init_side = q->w->offload_now->init_side;
	q->noffq++;
}

/* Judges the oldest packet in the pipeline and queues its verdict, or holds it while its
 * socket's owner is looked up. */
static void judge_oldest(struct els_queue *q)
{
	struct in_flight *f = &q->pipe[q->pipe_out++ % QUEUE_PIPE];
	struct els_decision d;

	if ((f->mark & ELS_OFFLOAD_MARK) && q->verdict_mark)
		verdict_mark_unsaved(q, f);
	if (q->owners)
		els_owners_begin(q->owners, f->uid, f->gid, f->has_ids, q->nheld < QUEUE_HOLD);
	enum els_action a = els_worker_judge(q->w, &f->dec.pkt, f->dec.has_flow ? &f->dec.hint : NULL,
					     q->now_mono, q->now_real, &d);
	if (a == ELS_DEFER) {
		q->held[q->nheld].f = *f;
		q->held[q->nheld].since_ns = q->now_mono;
		q->nheld++;
		q->held_total++;
		return;
	}
	add_verdict(q, f, a);
}

/* Judges the held packets again once answers came (or they waited too long: then as owner
 * unknown); those still waiting stay. The flow table may have changed meanwhile, so no
 * hint. */
static void judge_held(struct els_queue *q)
{
	unsigned keep = 0;

	for (unsigned i = 0; i < q->nheld; i++) {
		struct held *h = &q->held[i];
		struct els_decision d;
		if (q->npend >= QUEUE_BATCH) {
			q->held[keep++] = *h;
			continue;
		}
		bool last_try = q->now_mono - h->since_ns >= QUEUE_HOLD_NS;
		els_owners_begin(q->owners, h->f.uid, h->f.gid, h->f.has_ids, !last_try);
		enum els_action a = els_worker_judge(q->w, &h->f.dec.pkt, NULL, q->now_mono,
						     q->now_real, &d);
		if (a == ELS_DEFER)
			q->held[keep++] = *h;
		else
			add_verdict(q, &h->f, a);
	}
	q->nheld = keep;
}

/* Judges everything still in the pipeline: at the end of each turn. The counters start again
 * from 0: left to run, they would wrap at 2^32, which is no multiple of QUEUE_PIPE, and two
 * packets would share a slot. */
static void drain_pipe(struct els_queue *q)
{
	while (q->pipe_out != q->pipe_in)
		judge_oldest(q);
	q->pipe_in = q->pipe_out = 0;
}

static int on_packet(const struct nlmsghdr *nlh, void *data)
{
	struct els_queue *q = data;
	struct nlattr *attr[NFQA_MAX + 1] = {0};

	if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR])
		return MNL_CB_OK; /* not a packet: nothing to answer */
	const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	uint32_t id = ntohl(ph->packet_id);
	const uint8_t *payload = NULL;
	size_t caplen = 0, wire = 0;
	if (attr[NFQA_PAYLOAD]) {
		payload = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
		caplen = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	}
	wire = attr[NFQA_CAP_LEN] ? ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) : caplen;
	/* The kernel sends one packet per datagram, so read_batch leaves room; should a datagram
	 * ever carry more, answer what is judged so far rather than overrun pend[]. */
	if (q->npend + (q->pipe_in - q->pipe_out) >= QUEUE_BATCH) {
		drain_pipe(q);
		flush_verdicts(q);
	}
	struct in_flight *f = &q->pipe[q->pipe_in++ % QUEUE_PIPE];
	f->id = id;
	f->mark = attr[NFQA_MARK] ? ntohl(mnl_attr_get_u32(attr[NFQA_MARK])) : 0;
	f->mark_changed = false;
	f->has_ids = attr[NFQA_UID] && attr[NFQA_GID];
	f->uid = f->has_ids ? ntohl(mnl_attr_get_u32(attr[NFQA_UID])) : 0;
	f->gid = f->has_ids ? ntohl(mnl_attr_get_u32(attr[NFQA_GID])) : 0;
	els_worker_decode(q->w, payload ? payload : (const uint8_t *)"", caplen, wire,
			  hook_dir(ph->hook), &f->dec);
	if (f->has_ids)
		f->dec.pkt.flags |= ELS_PKT_FROM_SOCKET;
	if (q->pipe_in - q->pipe_out >= 2) /* the previous packet's bucket has had a recv */
		els_worker_warm(q->w, &q->pipe[(q->pipe_in - 2) % QUEUE_PIPE].dec);
	if (q->pipe_in - q->pipe_out == QUEUE_PIPE)
		judge_oldest(q);
	return MNL_CB_OK;
}

/* Sends the verdicts of the packets judged this turn, in id order. */
static void flush_verdicts(struct els_queue *q)
{
	struct mnl_nlmsg_batch *b;
	unsigned i = 0;

	if (!q->npend)
		return;
	b = mnl_nlmsg_batch_start(q->txbuf, q->txlen);
	while (i < q->npend) {
		unsigned j = i;
		/* Extend a run while the verdict is the same and the ids are consecutive, so the
		 * batch verdict covers exactly the packets of the run. */
		/* A batch verdict answers every queued id up to its last, held ones too: none
		 * while a packet is held. */
		while (!q->nheld && !q->pend[i].set_mark && j + 1 < q->npend &&
		       !q->pend[j + 1].set_mark && q->pend[j + 1].verdict == q->pend[i].verdict &&
		       q->pend[j + 1].id == q->pend[j].id + 1)
			j++;
		int type = j > i ? NFQNL_MSG_VERDICT_BATCH : NFQNL_MSG_VERDICT;
		struct nlmsghdr *nlh = nfq_nlmsg_put(mnl_nlmsg_batch_current(b), type, q->num);
		nfq_nlmsg_verdict_put(nlh, (int)q->pend[j].id, q->pend[i].verdict);
		if (q->pend[i].set_mark) /* a packet of its own: the mark is per packet */
			nfq_nlmsg_verdict_put_mark(nlh, q->pend[i].mark);
		mnl_nlmsg_batch_next(b);
		i = j + 1;
	}
	if (mnl_socket_sendto(q->nl, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b)) < 0)
		atomic_fetch_add_explicit(&q->w->st.verdict_errors, 1, memory_order_relaxed);
	mnl_nlmsg_batch_stop(b);
	q->npend = 0;
	/* After the verdicts, so the packet that completed the flow is on its way already. */
	if (q->noffq && q->off)
		els_offload_mark(q->off, q->offq, q->noffq);
	q->noffq = 0;
}

/* Reads and judges up to QUEUE_BATCH packets without blocking. Returns how many messages
 * were read, or -1 when the socket is broken. */
static int read_batch(struct els_queue *q)
{
	int fd = mnl_socket_get_fd(q->nl);
	int n = 0;

	q->now_mono = els_now_mono();
	q->now_real = els_now_real();
	while (q->npend + (q->pipe_in - q->pipe_out) < QUEUE_BATCH) {
		ssize_t len = recv(fd, q->rxbuf, q->rxlen, MSG_DONTWAIT);
		if (len < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == ENOBUFS) {
				/* The kernel dropped messages for us: count and go on. */
				atomic_fetch_add_explicit(&q->w->st.enobufs, 1,
							  memory_order_relaxed);
				continue;
			}
			if (errno == EINTR)
				continue;
			drain_pipe(q);
			return -1;
		}
		n++;
		mnl_cb_run(q->rxbuf, (size_t)len, 0, q->portid, on_packet, q);
	}
	drain_pipe(q);
	return n;
}

/* Offload between batches: on a new generation, every marked flow comes back to the queue to
 * be judged again (and offload is opened when the generation turns it on); then conntrack's
 * news. A conntrack socket that fails ends offload, not the queue. */
static void offload_turn(struct els_queue *q, struct pollfd *pfd)
{
	struct els_worker *w = q->w;

	if (w->pol->generation != q->gen) {
		q->gen = w->pol->generation;
		if (q->off)
			els_offload_unmark_all(q->off, w);
		if (w->pol->set.offload && !q->off) {
			q->off = els_offload_open(q->num);
			q->verdict_mark = q->off != NULL;
		}
		w->offload_on = q->off && w->pol->set.offload;
	}
	/* After a read that found nothing, the conntrack sockets are read again when poll finds
	 * them readable, or QUEUE_OFFLOAD_NS later: under a stream of new connections the queue
	 * never sleeps in poll, and two empty reads per turn were a third of the worker's
	 * system calls. Nothing there is urgent (flow ends, refresh answers); while there is
	 * something, every turn reads. */
	bool ready = (pfd[1].revents | pfd[2].revents) & POLLIN;
	pfd[1].revents = pfd[2].revents = 0;
	if (q->off && !ready && !q->offload_busy &&
	    q->now_mono - q->offload_read_ns < QUEUE_OFFLOAD_NS && q->now_mono >= q->offload_read_ns)
		goto fds;
	int got = 0;
	if (q->off) {
		q->offload_read_ns = q->now_mono;
		got = els_offload_run(q->off, w, els_now_mono(), els_now_real());
		q->offload_busy = got > 0;
	}
	if (got < 0) {
		fprintf(stderr, "elsd: queue %u: offload: conntrack socket failed: %s; offload off\n",
			q->num, strerror(errno));
		els_offload_unmark_all(q->off, w);
		els_offload_close(q->off);
		q->off = NULL;
		w->offload_on = false;
	}
fds:
	pfd[1].fd = q->off ? els_offload_fd(q->off, 0) : -1;
	pfd[2].fd = q->off ? els_offload_fd(q->off, 1) : -1;
}

int els_queue_run(struct els_queue *q, const atomic_bool *stop)
{
	int rc = 0;

	struct els_worker *w = q->w;

	/* Here, on the worker's own thread, so that the resolver thread it starts has the
	 * worker's privileges, as dropped (agent/daemon/privdrop.c), not the opener's. Without
	 * it service-bound permits see no owner (their fail policy), and filtering goes on. */
	if (!q->owners && !(q->owners = els_owners_new(q->num)))
		fprintf(stderr, "elsd: queue %u: service-bound permits will find no socket owner\n",
			q->num);
	/* Published to the metrics thread, which may already be reading the workers. */
	__atomic_store_n(&w->owners, q->owners, __ATOMIC_RELEASE);
	w->live = true;
	struct pollfd pfd[4] = {{.fd = mnl_socket_get_fd(q->nl), .events = POLLIN},
				{.fd = -1, .events = POLLIN},
				{.fd = -1, .events = POLLIN},
				{.fd = q->owners ? els_owners_fd(q->owners) : -1, .events = POLLIN}};

	while (!atomic_load_explicit(stop, memory_order_relaxed)) {
		els_worker_refresh(w);
		els_ctr_inc(&w->heartbeat);
		int r = read_batch(q);
		if ((q->owners && els_owners_poll(q->owners)) || (q->nheld && q->now_mono - q->held[0].since_ns >=
								       QUEUE_HOLD_NS))
			judge_held(q);
		flush_verdicts(q);
		els_worker_tick(w, q->now_mono, q->now_real); /* the turn's clock: microseconds old */
		els_worker_snapshot_serve(w); /* management `flows` request, if any */
		offload_turn(q, pfd);
		if (r < 0) {
			fprintf(stderr, "elsd: queue %u: netlink receive failed: %s\n", q->num,
				strerror(errno));
			rc = -1;
			break;
		}
		if (r == 0)
			poll(pfd, 4, q->nheld ? 50 : QUEUE_POLL_MS);
	}
	/* Answer what is already queued before unbinding, so nothing waits for a verdict that
	 * will never come. */
	els_worker_refresh(w);
	while (read_batch(q) > 0)
		flush_verdicts(q);
	while (q->nheld) { /* as owner unknown: the resolver's answer will not be waited for */
		for (unsigned i = 0; i < q->nheld; i++)
			q->held[i].since_ns = 0;
		q->now_mono = els_now_mono();
		judge_held(q);
		flush_verdicts(q);
	}
	flush_verdicts(q);
	/* Offloaded flows come back to the queue: whoever judges next (a restarted elsd, or the
	 * fail-open/closed policy) sees them, rather than the kernel passing them unwatched. */
	if (q->off)
		els_offload_unmark_all(q->off, w);
	w->offload_on = false;
	if (q->owners) {
		const struct els_owners_stats *st = els_owners_stats(q->owners);
		unsigned long long d = atomic_load(&st->diag);
		if (d)
			fprintf(stderr,
				"elsd: info: queue %u: socket owners: %llu lookups, %llu cached, %llu "
				"from /proc (%llu packets held meanwhile), %llu unknown\n",
				q->num, d, (unsigned long long)atomic_load(&st->hits),
				(unsigned long long)atomic_load(&st->misses),
				(unsigned long long)q->held_total,
				(unsigned long long)atomic_load(&st->unknown));
	}
	return rc;
}

void els_queue_close(struct els_queue *q)
{
	if (!q)
		return;
	if (q->nl) {
		char buf[MNL_SOCKET_BUFFER_SIZE];
		struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->num);
		nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_UNBIND);
		mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len);
		mnl_socket_close(q->nl);
	}
	els_offload_close(q->off);
	if (q->w && q->w->owners == q->owners)
		q->w->owners = NULL;
	els_owners_free(q->owners); /* stops its resolver thread */
	free(q->rxbuf);
	free(q->txbuf);
	free(q);
}
