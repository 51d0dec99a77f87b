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
	/* Dialling out to an els-console (agent/mgmt/dialout*.c, docs/console-protocol.md). */
	ELS_IPC_DIAL,	     /* main -> endpoint: a connected TCP socket to console.address,
			      * passed with SCM_RIGHTS (the endpoint can make none); body: the
			      * address it is connected to, for the log */
	ELS_IPC_DIAL_STATE,  /* main -> endpoint: the agent's state as a JSON object, the
			      * body of the next hello/heartbeat */
	ELS_IPC_DIAL_STATUS, /* endpoint -> main: "up CN" once the console's certificate was
			      * accepted, "down REASON" when the connection ended or failed */
	ELS_IPC_CONSOLE_REQUEST, /* endpoint -> main: as REQUEST, from the console connection:
				  * the console's certificates, its address, the request with
				  * on_behalf_of */
	ELS_IPC_CONSOLE_CRL,	 /* main -> endpoint: PEM CRL for console certificates */
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
	int fd; /* a descriptor passed with the message (ELS_IPC_DIAL only), else -1; owned by
		 * the receiver */
	uint8_t *body; /* owned by the receiver of the message: free() it; NUL-terminated */
	size_t len;
};

struct els_ipc_out;

struct els_ipc {
	int fd;
	int rfd; /* a descriptor received with the message being reassembled, or -1 */
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
/* The same with a descriptor (a copy is taken, passed with SCM_RIGHTS; the body must fit one
 * fragment). Only ELS_IPC_DIAL carries one. */
int els_ipc_send_fd(struct els_ipc *c, unsigned type, const void *body, size_t len, int fd);
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
