/* Typed, length-checked messages between elsd's main process and its unprivileged management
 * endpoint, over a SOCK_SEQPACKET socketpair (one datagram per fragment, so a message boundary
 * can never be lost or forged by a short read). Each type has a maximum body size that the
 * receiver checks before it allocates anything (relayd's IMSG_SIZE_CHECK), and the sender
 * checks too. A message larger than one fragment is sent as consecutive fragments.
 *
 * Sending never blocks: what the socket does not take is queued (up to a cap) and goes out
 * when els_ipc_flush() is called on POLLOUT. One thread per channel end. */
#ifndef ELS_IPC_H
#define ELS_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum els_ipc_type {
	ELS_IPC_READY = 1, /* endpoint -> main: listening; body: the listen address */
	ELS_IPC_FATAL,	   /* endpoint -> main: start-up failed; body: the message */
	ELS_IPC_REQUEST,   /* endpoint -> main: peer certificates (see ELS_MGMT_PEER_MAX in
			    * mgmt.h), peer address \0, request JSON. No role: the main process
			    * verifies the certificate and maps it to a role itself. */
	ELS_IPC_RESPONSE,  /* main -> endpoint: response JSON for request token `conn` */
	ELS_IPC_AUDIT,	   /* endpoint -> main: text of a monitor event (refusals) */
	ELS_IPC_CRL,	   /* main -> endpoint: PEM CRL replacing the current one */
	ELS_IPC_NOTE,	   /* endpoint -> main: text of a monitor event that is no refusal */
	ELS_IPC_CONFIG,	   /* main -> endpoint, first message: its settings (mgmt_exec.c) */
	ELS_IPC_LOG,	   /* endpoint -> main: a line for elsd's log (cleaned, rate-limited) */
	ELS_IPC__COUNT
};

#define ELS_IPC_FRAG_MAX  (32u * 1024) /* body bytes per datagram */
#define ELS_IPC_QUEUE_MAX (64u << 20)  /* queued unsent bytes before a send fails */

struct els_ipc_hdr {
	uint16_t type;
	uint16_t flags; /* ELS_IPC_F_MORE: another fragment of this message follows */
	uint32_t conn;	/* request token (REQUEST/RESPONSE), else 0 */
	uint32_t len;	/* body bytes in this fragment */
	uint32_t total; /* body bytes of the whole message, the same in every fragment */
};
#define ELS_IPC_F_MORE 1u

struct els_ipc_msg {
	unsigned type;
	uint32_t conn;
	uint8_t *body; /* owned by the receiver of the message: free() it; NUL-terminated */
	size_t len;
};

struct els_ipc_out;

struct els_ipc {
	int fd;
	struct els_ipc_out *head, *tail; /* unsent datagrams */
	size_t queued;
	/* reassembly of the message being received */
	struct els_ipc_hdr cur;
	uint8_t *buf;
	size_t got;
};

/* Largest body allowed for a type (0 for an unknown type). */
size_t els_ipc_max_body(unsigned type);

void els_ipc_init(struct els_ipc *c, int fd);
/* Frees queued data and the reassembly buffer; closes fd. */
void els_ipc_close(struct els_ipc *c);

/* Queues one message and tries to send it. 0, -EMSGSIZE (body above the type's maximum),
 * -ENOBUFS (queue full: the peer is not reading), -ENOMEM, or the socket's -errno. */
int els_ipc_send(struct els_ipc *c, unsigned type, uint32_t conn, const void *body, size_t len);
/* Sends what is queued. 0 when everything went, 1 when some remains (poll for POLLOUT),
 * -errno when the socket failed. */
int els_ipc_flush(struct els_ipc *c);
bool els_ipc_pending(const struct els_ipc *c);

/* Receives datagrams until one message is complete or the socket has nothing more.
 * 1: *m holds a message (caller frees m->body); 0: nothing complete yet (EAGAIN);
 * -EPIPE: the peer closed; -EBADMSG: the peer broke the protocol (close the channel);
 * -errno otherwise. */
int els_ipc_recv(struct els_ipc *c, struct els_ipc_msg *m);

/* The checks behind els_ipc_recv on one datagram (for the fuzzer and unit tests): consumes it
 * into c's reassembly state. Returns as els_ipc_recv, never 0 for a complete message. */
int els_ipc_accept(struct els_ipc *c, const uint8_t *dgram, size_t n, struct els_ipc_msg *m);

#endif
