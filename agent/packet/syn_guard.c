/* See syn_guard.h. */
#include <netinet/in.h>

#include "syn_guard.h"

bool els_syn_guard_synack(const struct els_settings *set, const struct els_pkt *p)
{
	/* exactly SYN and ACK among the six classic flags (ECN's two may be there) */
	const uint8_t classic = ELS_TCP_FIN | ELS_TCP_SYN | ELS_TCP_RST | ELS_TCP_PSH |
				ELS_TCP_ACK | ELS_TCP_URG;
	/* A server's SYN-ACK leaves from the kernel (a request or no socket, never a process's):
	 * one sent by a process's socket is a raw socket's forgery, and opens nothing, even
	 * where the guard's rules that drop it are missing (the config changed, the rules not). */
	if (!set->nsyn_guard || p->dir != ELS_DIR_OUT || p->proto != IPPROTO_TCP ||
	    (p->flags & (ELS_PKT_HAS_PORTS | ELS_PKT_FROM_SOCKET)) != ELS_PKT_HAS_PORTS ||
	    (p->tcp_flags & classic) != (ELS_TCP_SYN | ELS_TCP_ACK))
		return false;
	for (unsigned i = 0; i < set->nsyn_guard; i++)
		if (set->syn_guard[i] == p->sport)
			return true;
	return false;
}

void els_syn_guard_handshake(const struct els_pkt *synack, struct els_pkt *syn,
			     struct els_pkt *ack)
{
	*syn = *synack;
	syn->src = synack->dst;
	syn->dst = synack->src;
	syn->sport = synack->dport;
	syn->dport = synack->sport;
	syn->dir = ELS_DIR_IN;
	/* a bare SYN with no options beyond what the SYN-ACK had: the same length is near
	 * enough for the byte counters, and nothing judges on it */
	syn->tcp_flags = ELS_TCP_SYN;
	*ack = *syn;
	ack->tcp_flags = ELS_TCP_ACK;
}
