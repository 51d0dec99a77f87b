/* Offload: the kernel fast path for flows elsd has nothing more to learn from (what Suricata
 * calls bypass). Once the tracker has admitted a TCP or UDP flow, it is established, its
 * permit is confirmed under the running generation, and the logging policy needs no more of
 * its packets (monitor.log is not "all"), elsd sets ELS_OFFLOAD_MARK in the flow's conntrack
 * entry. It does so with that packet's verdict (agent/packet/queue.c): NF_REPEAT, with the
 * bit added to the packet mark; the kernel runs the steering chain again, where a rule
 * copies the bit into the connection's mark and clears it from the packet. (The verdict's
 * NFQA_CT attribute would set the connection mark directly, but needs
 * CONFIG_NETFILTER_NETLINK_GLUE_CT, which kernels often lack.) When the rules lack that copy,
 * the packet comes back to the queue with the bit; the queue then marks by a ctnetlink update
 * after the verdicts (els_offload_mark) from then on. A steering rule ahead of the NFQUEUE rule
 * accepts connections that carry the mark, so the rest of the flow never leaves the kernel:
 *
 *   iptables -A INPUT -m mark --mark 0x40000000/0x40000000 -j CONNMARK --set-xmark 0x40000000/0x40000000
 *   iptables -A INPUT -m mark --mark 0x40000000/0x40000000 -j MARK --set-xmark 0/0x40000000
 *   iptables -A INPUT -m connmark --mark 0x40000000/0x40000000 -j ACCEPT   (and OUTPUT)
 *
 * elsd then learns about the flow from conntrack instead (nf_conntrack_acct=1 gives the
 * counters): destroy events end it with the kernel's packet and byte counts, and a dump of the
 * marked entries every few seconds keeps it fresh in the flow table (so it does not time out
 * there while the kernel carries it) with live counters; a TCP flow the dump shows closed
 * (TIME_WAIT, CLOSE) ends then, and its mark is cleared, rather than living on until conntrack
 * destroys the entry after TIME_WAIT. On a new policy generation every
 * marked flow is unmarked: its next packet comes back through the queue and is judged again,
 * and a flow whose permit was revoked is dropped (permit_revoked) instead of being re-marked.
 * One per queue worker; everything here runs in the worker thread, between batches. */
#ifndef ELS_OFFLOAD_H
#define ELS_OFFLOAD_H

#include <stdint.h>

#include "worker.h"

/* The conntrack mark bit elsd owns; other bits of the mark are left alone. */
#define ELS_OFFLOAD_MARK 0x40000000u

struct els_offload;

/* Opens the conntrack sockets (needs CAP_NET_ADMIN and nf_conntrack_netlink). NULL with a
 * message on stderr on failure. Freed with els_offload_close. */
struct els_offload *els_offload_open(unsigned queue);
void els_offload_close(struct els_offload *o);

/* The fds to poll for input (-1 when absent). */
int els_offload_fd(const struct els_offload *o, unsigned which);

/* A flow to hand to the kernel: its key and which key side initiated it (the conntrack
 * entry's original direction). */
struct els_offload_req {
	struct els_flow_key key;
	uint8_t init_side;
};

/* Sets ELS_OFFLOAD_MARK on the conntrack entries of n flows, in one netlink batch, without
 * waiting for answers (an entry that is gone already is no error). */
void els_offload_mark(struct els_offload *o, const struct els_offload_req *r, unsigned n);

/* Reads what the conntrack sockets hold, without blocking: destroy events end offloaded flows
 * of w's table with the kernel's counters; dump answers refresh them. Starts a refresh dump
 * when one is due. Returns the number of messages handled, or -1 when a socket failed. */
int els_offload_run(struct els_offload *o, struct els_worker *w, uint64_t mono_ns,
		    uint64_t real_ns);

/* Clears the mark of every flow of w that carries it, so that their packets come back to the
 * queue (after a new generation). Returns how many flows were unmarked. */
unsigned els_offload_unmark_all(struct els_offload *o, struct els_worker *w);

#endif
