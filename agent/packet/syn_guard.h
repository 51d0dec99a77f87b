/* SYN guard (`syn_guard` in elsd.conf, docs/performance.md "SYN guard"): for the listed TCP
 * ports, els-rules puts the kernel's SYNPROXY ahead of the queue. The kernel answers every SYN
 * with a cookie and queues nothing until a client's ACK proves its address; only then does
 * SYNPROXY open the connection to the server (over loopback, unqueued). So the first packet of
 * such a connection that elsd sees is the server's SYN-ACK, outbound.
 *
 * elsd judges that connection there, as if it had seen the whole handshake: the client's SYN
 * (which the chain judges like any inbound SYN: lists, permits, scan handler), the server's
 * SYN-ACK, and the client's ACK that SYNPROXY has already checked. A SYN the chain refuses
 * drops the SYN-ACK, so the server never completes the connection and no byte of it reaches
 * the client or the server. */
#ifndef ELS_SYN_GUARD_H
#define ELS_SYN_GUARD_H

#include <stdbool.h>

#include "els/pkt.h"
#include "els/policy.h"

/* True for an outbound SYN-ACK (no FIN, RST, PSH or URG) from one of the guarded ports, sent
 * by the kernel rather than a process's socket (ELS_PKT_FROM_SOCKET). The caller checks that
 * it opens a connection: a live flow's SYN-ACK (a retransmission) is its own. */
bool els_syn_guard_synack(const struct els_settings *set, const struct els_pkt *p);

/* The handshake packets the kernel handled for elsd, made from the server's SYN-ACK: the
 * client's SYN and the client's ACK, inbound, with the SYN-ACK's addresses and ports swapped. */
void els_syn_guard_handshake(const struct els_pkt *synack, struct els_pkt *syn,
			     struct els_pkt *ack);

#endif
