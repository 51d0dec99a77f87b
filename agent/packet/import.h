/* Learning at start the connections that already exist, so that a restart, an upgrade or a
 * crash does not cut them (include/els/adopt.h says what happens to them afterwards).
 *
 * Sources, both read from the kernel at start (there is no saved flow table: the kernel's own
 * view is exact after a clean stop, an upgrade and a crash alike, nothing stale survives in it,
 * and there is no file for an attacker to plant connections in):
 *  - sock_diag (NETLINK_SOCK_DIAG, inet_diag): every TCP socket of this host's network
 *    namespace that is established or closing. Always available, needs no privilege, and
 *    independent of conntrack, which the kernel runs in a namespace only once some rule needs
 *    it (plain NFQUEUE rules do not). Who opened the connection: the remote end when a
 *    listening socket holds the local port, else this host.
 *  - conntrack (ctnetlink, libnetfilter_conntrack): when it tracks (offload's connmark rule,
 *    NAT, a `ct state` rule), TCP and UDP entries with their real original direction; adds
 *    what the sockets do not show (UDP). Entries that carry elsd's offload mark are unmarked,
 *    so their next packet comes back to the queue and meets the new policy.
 * The first source to name a connection wins. */
#ifndef ELS_IMPORT_H
#define ELS_IMPORT_H

#include <stdint.h>

#include "els/adopt.h"
#include "els/monitor.h"
#include "els/policy.h"

/* One existing connection as a source reports it: the initiator's and the responder's
 * address and port as the packets on this host's hooks carry them. */
struct els_import_conn {
	struct els_addr init_addr, resp_addr;
	uint16_t init_port, resp_port;
	uint8_t family; /* enum els_family */
	uint8_t proto;	/* IPPROTO_TCP or IPPROTO_UDP */
	uint8_t state;	/* ELS_FS_ESTABLISHED, ELS_FS_FIN_WAIT or ELS_FS_UNREPLIED */
	uint8_t dir;	/* enum els_dir of the initiator's packets */
};

/* A growing list of connections (off the packet path). */
struct els_import_list {
	struct els_import_conn *c;
	uint32_t n, cap;
	uint32_t limit; /* more are counted in dropped, not kept */
	uint32_t dropped;
};
int els_import_list_add(struct els_import_list *l, const struct els_import_conn *c);

/* This host's addresses (getifaddrs), to tell the direction of a conntrack entry. */
struct els_import_local {
	struct els_addr *a;
	uint8_t *family;
	unsigned n;
};
int els_import_local_load(struct els_import_local *l);
void els_import_local_free(struct els_import_local *l);
bool els_import_is_local(const struct els_import_local *l, uint8_t family,
			 const struct els_addr *a);

/* import_sock.c: adds the TCP connections of this namespace's sockets. Returns how many it
 * added, or a negative errno when the dump failed. */
int els_import_sockets(struct els_import_list *l);

/* import_ct.c: adds conntrack's TCP and UDP entries that start or end on this host, and
 * clears the offload mark of those that carry it (*unmarked counts them). Returns how many it
 * added, or a negative errno when conntrack cannot be read (no nf_conntrack_netlink). */
int els_import_conntrack(struct els_import_list *l, const struct els_import_local *local,
			 unsigned *unmarked);

/* The whole import, at start, before the workers run (p is published, so its generation is
 * set): reads both sources, judges each connection with p's chain as its first packet would
 * be judged, logs and records a summary event on ring, and returns the set to publish (NULL when
 * there is nothing to adopt or on failure, which is logged: elsd then starts as before, with an
 * empty table). The caller frees the set after the workers are joined. */
struct els_adopt *els_import_flows(const struct els_policy *p, struct els_ring *ring,
				   uint32_t limit);

#endif
