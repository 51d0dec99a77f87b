/* Offload through conntrack: marks in verdicts, destroy events, refresh dumps, unmarking.
 * See offload.h. Requests are built with libmnl; conntrack messages are read with
 * libnetfilter_conntrack's parser. */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "offload.h"

#define OFFLOAD_BUF	   65536
#define OFFLOAD_RCVBUF	   (4u << 20)
#define OFFLOAD_BUDGET	   64			  /* datagrams read per turn and socket */
#define OFFLOAD_REFRESH_NS (5ull * 1000000000ull) /* well inside every flow timeout */
#define OFFLOAD_REFRESH_BUSY_NS (1ull * 1000000000ull) /* with the table a quarter offloaded */
#define OFFLOAD_CLOSED_MAX 1024 /* closed flows whose marks are cleared in one go */

struct els_offload {
	struct mnl_socket *ev;	/* destroy events of marked entries */
	struct mnl_socket *ctl; /* unmark requests and refresh dumps */
	unsigned ctl_portid;
	uint32_t seq;
	uint32_t dump_seq;     /* the refresh dump in progress, 0 when none */
	uint64_t last_refresh; /* mono ns of the last dump's start; 0 before the first */
	struct els_worker *w;  /* for the message callbacks */
	uint64_t mono_ns, real_ns;
	/* Offloaded TCP flows the last dump showed closed (TIME_WAIT, CLOSE): ended, and their
	 * mark cleared after the read (see ended_closed). */
	struct els_offload_req closed[OFFLOAD_CLOSED_MAX];
	unsigned nclosed;
	char buf[OFFLOAD_BUF];
};

static struct mnl_socket *open_sock(unsigned groups)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	int sz = (int)OFFLOAD_RCVBUF;

	if (!nl)
		return NULL;
	if (mnl_socket_bind(nl, groups, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(nl);
		return NULL;
	}
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	return nl;
}

struct els_offload *els_offload_open(unsigned queue)
{
	struct els_offload *o = calloc(1, sizeof(*o));
	struct nfct_filter *flt = nfct_filter_create();

	if (!o || !flt)
		goto fail;
	o->ev = open_sock(NF_NETLINK_CONNTRACK_DESTROY);
	o->ctl = open_sock(0);
	if (!o->ev || !o->ctl) {
		fprintf(stderr,
			"elsd: queue %u: offload: cannot open conntrack netlink: %s (is "
			"nf_conntrack_netlink available? elsd needs CAP_NET_ADMIN)\n",
			queue, strerror(errno));
		goto fail;
	}
	/* Only entries that carry our mark: the host's other connections are not our business,
	 * and a busy host destroys many. */
	struct nfct_filter_dump_mark m = {ELS_OFFLOAD_MARK, ELS_OFFLOAD_MARK};
	nfct_filter_add_attr(flt, NFCT_FILTER_MARK, &m);
	if (nfct_filter_attach(mnl_socket_get_fd(o->ev), flt) < 0) {
		fprintf(stderr, "elsd: queue %u: offload: cannot filter conntrack events: %s\n",
			queue, strerror(errno));
		goto fail;
	}
	nfct_filter_destroy(flt);
	o->ctl_portid = mnl_socket_get_portid(o->ctl);
	o->seq = 1;
	return o;
fail:
	if (flt)
		nfct_filter_destroy(flt);
	els_offload_close(o);
	return NULL;
}

void els_offload_close(struct els_offload *o)
{
	if (!o)
		return;
	if (o->ev)
		mnl_socket_close(o->ev);
	if (o->ctl)
		mnl_socket_close(o->ctl);
	free(o);
}

int els_offload_fd(const struct els_offload *o, unsigned which)
{
	struct mnl_socket *s = which == 0 ? o->ev : which == 1 ? o->ctl : NULL;
	return s ? mnl_socket_get_fd(s) : -1;
}

/* The flow of w's table a conntrack entry stands for, or NULL. */
static struct els_flow *flow_of(struct els_worker *w, const struct nf_conntrack *ct)
{
	struct els_pkt p;
	struct els_flow_key key;
	uint8_t side;

	memset(&p, 0, sizeof(p));
	p.proto = nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO);
	if (p.proto != IPPROTO_TCP && p.proto != IPPROTO_UDP)
		return NULL;
	switch (nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO)) {
	case AF_INET:
		p.family = ELS_AF_INET;
		memcpy(p.src.b, nfct_get_attr(ct, ATTR_ORIG_IPV4_SRC), 4);
		memcpy(p.dst.b, nfct_get_attr(ct, ATTR_ORIG_IPV4_DST), 4);
		break;
	case AF_INET6:
		p.family = ELS_AF_INET6;
		memcpy(p.src.b, nfct_get_attr(ct, ATTR_ORIG_IPV6_SRC), 16);
		memcpy(p.dst.b, nfct_get_attr(ct, ATTR_ORIG_IPV6_DST), 16);
		break;
	default:
		return NULL;
	}
	p.sport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC));
	p.dport = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_DST));
	p.flags = ELS_PKT_HAS_PORTS;
	if (!els_flow_key_of(&p, &key, &side))
		return NULL;
	struct els_flow *f = els_flow_lookup(w->flows, &key);
	return f && (f->offload & ELS_FLOW_OFFLOADED) ? f : NULL;
}

/* The kernel counted every packet of the connection, the ones elsd saw included: its counts
 * replace ours when it has them (nf_conntrack_acct=1). The original direction is the
 * initiator's, as in the flow. */
static void take_counters(struct els_flow *f, const struct nf_conntrack *ct)
{
	static const int attr[2][2] = {{ATTR_ORIG_COUNTER_PACKETS, ATTR_ORIG_COUNTER_BYTES},
				       {ATTR_REPL_COUNTER_PACKETS, ATTR_REPL_COUNTER_BYTES}};
	for (unsigned d = 0; d < 2; d++) {
		if (!nfct_attr_is_set(ct, attr[d][0]))
			continue;
		uint64_t p = nfct_get_attr_u64(ct, attr[d][0]);
		uint64_t b = nfct_get_attr_u64(ct, attr[d][1]);
		if (p > f->pkts[d])
			f->pkts[d] = p;
		if (b > f->bytes[d])
			f->bytes[d] = b;
	}
}

static void put_marks(struct els_offload *o, const struct els_offload_req *r, unsigned n,
		      uint32_t mark);

/* A TCP entry whose connection both sides have closed (or a RST ended). */
static bool closed_in_kernel(const struct nf_conntrack *ct)
{
	if (nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != 6 || !nfct_attr_is_set(ct, ATTR_TCP_STATE))
		return false;
	uint8_t st = nfct_get_attr_u8(ct, ATTR_TCP_STATE);
	return st == TCP_CONNTRACK_TIME_WAIT || st == TCP_CONNTRACK_CLOSE;
}

static int on_ct(const struct nlmsghdr *nlh, void *data)
{
	struct els_offload *o = data;
	struct nf_conntrack *ct = nfct_new(); /* off the packet path: events and dumps */
	unsigned type = NFNL_MSG_TYPE(nlh->nlmsg_type);

	if (!ct)
		return MNL_CB_OK;
	if (nfct_nlmsg_parse(nlh, ct) < 0)
		goto out;
	struct els_flow *f = flow_of(o->w, ct);
	if (!f)
		goto out;
	take_counters(f, ct);
	if (type != IPCTNL_MSG_CT_DELETE && closed_in_kernel(ct) && (f->offload & ELS_FLOW_MARKED)) {
		/* Both sides have closed: the flow ends now, as it would when elsd sees the
		 * FINs, rather than when conntrack destroys the entry (TIME_WAIT, 120 s by
		 * default). Kept, such flows would fill the table at a high rate of new
		 * connections (offloaded flows are established: never evicted), and a new
		 * connection reusing the ports would pass on the old one's mark without being
		 * judged. So the mark goes too (after this read), and the entry's destroy is
		 * no event of ours. */
		if (o->nclosed == OFFLOAD_CLOSED_MAX) { /* a dump's datagrams hold thousands */
			put_marks(o, o->closed, o->nclosed, 0);
			o->nclosed = 0;
		}
		o->closed[o->nclosed].key = f->key;
		o->closed[o->nclosed].init_side = f->init_side;
		o->nclosed++;
		f->offload &= (uint8_t)~ELS_FLOW_MARKED;
		o->w->offloaded--;
		f->last_ns = o->mono_ns;
		els_worker_flow_end(o->w, f, ELS_R_FLOW_CLOSED, o->real_ns);
	} else if (type == IPCTNL_MSG_CT_DELETE) {
		if (f->offload & ELS_FLOW_MARKED)
			o->w->offloaded--;
		f->last_ns = o->mono_ns;
		els_worker_flow_end(
		    o->w, f, f->key.proto == IPPROTO_TCP ? ELS_R_FLOW_CLOSED : ELS_R_FLOW_TIMEOUT,
		    o->real_ns);
	} else if (f->offload & ELS_FLOW_MARKED) {
		/* Alive in the kernel: alive here, with the timeout it already had, so the
		 * expiry list keeps its order. */
		els_flow_touch(o->w->flows, f, f->state, o->mono_ns, f->expire_ns - f->last_ns);
	}
out:
	nfct_destroy(ct);
	return MNL_CB_OK;
}

/* Reads up to OFFLOAD_BUDGET datagrams. -1 on a broken socket. */
static int drain(struct els_offload *o, struct mnl_socket *nl, bool is_ctl)
{
	int n = 0;

	while (n < OFFLOAD_BUDGET) {
		ssize_t len = recv(mnl_socket_get_fd(nl), o->buf, sizeof(o->buf), MSG_DONTWAIT);
		if (len < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == ENOBUFS || errno == EINTR) {
				/* Lost events: the refresh dump and the flow timeouts catch up. */
				if (is_ctl)
					o->dump_seq = 0;
				continue;
			}
			return -1;
		}
		n++;
		int rc = mnl_cb_run(o->buf, (size_t)len, 0, 0, on_ct, o);
		/* A dump ends with NLMSG_DONE (STOP); an error answers an unmark whose entry
		 * is already gone: neither is a failure. */
		if (is_ctl && rc <= MNL_CB_STOP)
			o->dump_seq = rc == MNL_CB_STOP ? 0 : o->dump_seq;
	}
	return n;
}

static void start_dump(struct els_offload *o)
{
	char req[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++o->seq;
	struct nfgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	mnl_attr_put_u32(nlh, CTA_MARK, htonl(ELS_OFFLOAD_MARK));
	mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(ELS_OFFLOAD_MARK));
	if (mnl_socket_sendto(o->ctl, nlh, nlh->nlmsg_len) >= 0)
		o->dump_seq = o->seq;
}

int els_offload_run(struct els_offload *o, struct els_worker *w, uint64_t mono_ns, uint64_t real_ns)
{
	o->w = w;
	o->mono_ns = mono_ns;
	o->real_ns = real_ns;
	int a = drain(o, o->ev, false);
	int b = drain(o, o->ctl, true);
	if (a < 0 || b < 0)
		return -1;
	if (o->nclosed) { /* after the read, once per turn: one batch for all of them */
		put_marks(o, o->closed, o->nclosed, 0);
		o->nclosed = 0;
	}
	/* Closed flows leave the table at a dump: once a quarter of the table is offloaded (a
	 * high rate of short connections), a dump every second, so that the table holds about
	 * a second's connections rather than five seconds' worth of closed ones. */
	bool busy = w->offloaded > els_flow_capacity(w->flows) / 4;
	uint64_t every = busy ? OFFLOAD_REFRESH_BUSY_NS : OFFLOAD_REFRESH_NS;
	if (!o->dump_seq && w->offloaded && (!o->last_refresh || mono_ns - o->last_refresh >= every)) {
		o->last_refresh = mono_ns;
		start_dump(o);
	}
	return a + b;
}

/* An update of the entry whose original tuple is the flow's, setting our mark bit to mark. */
static void put_mark(struct els_offload *o, struct nlmsghdr *nlh, const struct els_flow_key *k,
		     unsigned side, uint32_t mark)
{
	unsigned i = side, r = !side;
	bool v4 = k->family == ELS_AF_INET;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
	nlh->nlmsg_flags = NLM_F_REQUEST; /* no CREATE: update the entry if it is still there */
	nlh->nlmsg_seq = ++o->seq;
	struct nfgenmsg *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = v4 ? AF_INET : AF_INET6;
	g->version = NFNETLINK_V0;
	struct nlattr *t = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
	struct nlattr *ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put(nlh, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, v4 ? 4 : 16, k->addr[i].b);
	mnl_attr_put(nlh, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, v4 ? 4 : 16, k->addr[r].b);
	mnl_attr_nest_end(nlh, ip);
	struct nlattr *pr = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, k->proto);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(k->port[i]));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(k->port[r]));
	mnl_attr_nest_end(nlh, pr);
	mnl_attr_nest_end(nlh, t);
	mnl_attr_put_u32(nlh, CTA_MARK, htonl(mark));
	mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(ELS_OFFLOAD_MARK));
}

struct unmark_arg {
	struct els_offload *o;
	struct els_worker *w;
	struct mnl_nlmsg_batch *b;
	unsigned n;
};

static void flush_batch(struct unmark_arg *a)
{
	if (mnl_nlmsg_batch_size(a->b))
		mnl_socket_sendto(a->o->ctl, mnl_nlmsg_batch_head(a->b),
				  mnl_nlmsg_batch_size(a->b));
	mnl_nlmsg_batch_reset(a->b);
}

static void unmark_one(const struct els_flow *cf, void *arg)
{
	struct unmark_arg *a = arg;

	if (!(cf->offload & ELS_FLOW_MARKED))
		return;
	/* foreach hands out const flows; this one is ours to change, found by its key */
	struct els_flow *f = els_flow_lookup(a->w->flows, &cf->key);
	if (!f)
		return;
	f->offload &= (uint8_t)~ELS_FLOW_MARKED;
	put_mark(a->o, mnl_nlmsg_put_header(mnl_nlmsg_batch_current(a->b)), &f->key, f->init_side,
		 0);
	if (!mnl_nlmsg_batch_next(a->b))
		flush_batch(a); /* the message that did not fit stays at the head */
	a->n++;
}

unsigned els_offload_unmark_all(struct els_offload *o, struct els_worker *w)
{
	char *buf = malloc(OFFLOAD_BUF * 2); /* at a reload, not per packet */
	struct unmark_arg a = {o, w, NULL, 0};

	if (!buf)
		return 0;
	a.b = mnl_nlmsg_batch_start(buf, OFFLOAD_BUF);
	els_flow_foreach(w->flows, unmark_one, &a);
	flush_batch(&a);
	mnl_nlmsg_batch_stop(a.b);
	free(buf);
	w->offloaded = 0;
	return a.n;
}

void els_offload_mark(struct els_offload *o, const struct els_offload_req *r, unsigned n)
{
	put_marks(o, r, n, ELS_OFFLOAD_MARK);
}

/* Sets our bit of the mark of n entries to mark, in one netlink batch per 16 KiB. */
static void put_marks(struct els_offload *o, const struct els_offload_req *r, unsigned n,
		      uint32_t mark)
{
	/* 128 updates of at most ~100 bytes each: one datagram per batch of packets */
	char buf[2 * 16384];
	struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, sizeof(buf) / 2);

	for (unsigned i = 0; i < n; i++) {
		put_mark(o, mnl_nlmsg_put_header(mnl_nlmsg_batch_current(b)), &r[i].key,
			 r[i].init_side, mark);
		if (!mnl_nlmsg_batch_next(b)) {
			mnl_socket_sendto(o->ctl, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b));
			mnl_nlmsg_batch_reset(b);
		}
	}
	if (mnl_nlmsg_batch_size(b))
		mnl_socket_sendto(o->ctl, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b));
	mnl_nlmsg_batch_stop(b);
}
