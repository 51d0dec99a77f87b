/* Existing connections from conntrack (see import.h), with libnetfilter_conntrack: one dump
 * of the table, then an update for each entry that still carries elsd's offload mark. */
#include <errno.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_tcp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "import.h"
#include "offload.h"

struct ct_dump {
	struct els_import_list *l;
	const struct els_import_local *local;
	struct nf_conntrack **marked; /* clones to unmark after the dump */
	unsigned nmarked, capmarked;
	int added;
};

static void keep_marked(struct ct_dump *d, const struct nf_conntrack *ct)
{
	if (d->nmarked == d->capmarked) {
		unsigned cap = d->capmarked ? d->capmarked * 2 : 64;
		struct nf_conntrack **n = realloc(d->marked, cap * sizeof(*n));
		if (!n)
			return;
		d->marked = n;
		d->capmarked = cap;
	}
	struct nf_conntrack *c = nfct_clone(ct);
	if (c)
		d->marked[d->nmarked++] = c;
}

/* The connection as this host's hooks see it: the initiator is the original source; the
 * responder is the reply direction's source, which is the address the initiator's packets
 * carry once destination NAT (before the INPUT and at the OUTPUT hook) has rewritten them. */
static bool conn_of(const struct nf_conntrack *ct, const struct els_import_local *local,
		    struct els_import_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->proto = nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO);
	if (c->proto != IPPROTO_TCP && c->proto != IPPROTO_UDP)
		return false;
	switch (nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO)) {
	case AF_INET:
		c->family = ELS_AF_INET;
		memcpy(c->init_addr.b, nfct_get_attr(ct, ATTR_ORIG_IPV4_SRC), 4);
		memcpy(c->resp_addr.b, nfct_get_attr(ct, ATTR_REPL_IPV4_SRC), 4);
		break;
	case AF_INET6:
		c->family = ELS_AF_INET6;
		memcpy(c->init_addr.b, nfct_get_attr(ct, ATTR_ORIG_IPV6_SRC), 16);
		memcpy(c->resp_addr.b, nfct_get_attr(ct, ATTR_REPL_IPV6_SRC), 16);
		break;
	default:
		return false;
	}
	c->init_port = ntohs(nfct_get_attr_u16(ct, ATTR_ORIG_PORT_SRC));
	c->resp_port = ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC));
	/* A connection this host opened is outbound; one to it, inbound; one between two other
	 * hosts (forwarded) never meets the INPUT or OUTPUT hook. */
	if (els_import_is_local(local, c->family, &c->init_addr))
		c->dir = ELS_DIR_OUT;
	else if (els_import_is_local(local, c->family, &c->resp_addr))
		c->dir = ELS_DIR_IN;
	else
		return false;
	if (c->proto == IPPROTO_TCP) {
		switch (nfct_get_attr_u8(ct, ATTR_TCP_STATE)) {
		case TCP_CONNTRACK_ESTABLISHED:
			c->state = ELS_FS_ESTABLISHED;
			break;
		case TCP_CONNTRACK_FIN_WAIT:
		case TCP_CONNTRACK_CLOSE_WAIT:
		case TCP_CONNTRACK_LAST_ACK:
			c->state = ELS_FS_FIN_WAIT;
			break;
		default:
			return false; /* opening (its SYN is sent again) or closed */
		}
	} else {
		c->state = nfct_get_attr_u32(ct, ATTR_STATUS) & IPS_SEEN_REPLY ? ELS_FS_ESTABLISHED
									       : ELS_FS_UNREPLIED;
	}
	return true;
}

static int on_ct(enum nf_conntrack_msg_type type, struct nf_conntrack *ct, void *arg)
{
	struct ct_dump *d = arg;
	struct els_import_conn c;

	(void)type;
	if (nfct_attr_is_set(ct, ATTR_MARK) &&
	    (nfct_get_attr_u32(ct, ATTR_MARK) & ELS_OFFLOAD_MARK))
		keep_marked(d, ct);
	if (conn_of(ct, d->local, &c) && els_import_list_add(d->l, &c) == 0)
		d->added++;
	return NFCT_CB_CONTINUE;
}

int els_import_conntrack(struct els_import_list *l, const struct els_import_local *local,
			 unsigned *unmarked)
{
	struct ct_dump d = {.l = l, .local = local};
	struct nfct_handle *h = nfct_open(CONNTRACK, 0);
	uint32_t family = AF_UNSPEC;
	int rc;

	*unmarked = 0;
	if (!h)
		return -errno;
	nfct_callback_register(h, NFCT_T_ALL, on_ct, &d);
	rc = nfct_query(h, NFCT_Q_DUMP, &family);
	if (rc < 0) {
		rc = -errno;
		goto out;
	}
	/* A marked entry bypasses the queue (agent/offload.h): the mark was the old process's
	 * judgement. Cleared, the connection's next packet comes to the queue and meets the
	 * policy that runs now; elsd marks it again if it still qualifies. */
	nfct_callback_unregister(h);
	for (unsigned i = 0; i < d.nmarked; i++) {
		nfct_set_attr_u32(d.marked[i], ATTR_MARK,
				  nfct_get_attr_u32(d.marked[i], ATTR_MARK) & ~ELS_OFFLOAD_MARK);
		if (nfct_query(h, NFCT_Q_UPDATE, d.marked[i]) == 0)
			(*unmarked)++;
	}
	rc = d.added;
out:
	for (unsigned i = 0; i < d.nmarked; i++)
		nfct_destroy(d.marked[i]);
	free(d.marked);
	nfct_close(h);
	return rc;
}
