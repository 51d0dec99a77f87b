/* Who may hold one of the endpoint's slots, and for how long: admission before
 * authentication (per-address caps, the reserved slots, eviction of the handshake that has
 * made the least progress) and the re-check of live sessions against a new CRL. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>
#include <sys/ioctl.h>

#include "mgmt_int.h"

/* How far a pre-auth connection has got: bytes TLS has read plus bytes waiting. A console's
 * ClientHello arrives at once; a connection that was opened only to hold a slot has none. */
static size_t progress(const struct conn *k)
{
	int waiting = 0;
	if (ioctl(k->fd, FIONREAD, &waiting) < 0 || waiting < 0)
		waiting = 0;
	return (size_t)BIO_number_read(SSL_get_rbio(k->ssl)) + (size_t)waiting;
}

/* The pre-auth connection to give way (from peer, or from anyone when NULL): least progress,
 * then oldest. -1 when there is none. */
static int evictable(const struct endpoint *e, const char *peer)
{
	int best = -1;
	size_t best_p = 0;
	for (unsigned i = 0; i < e->nconns; i++) {
		const struct conn *k = e->conns[i];
		if (k->authed || (peer && strcmp(k->peer, peer) != 0))
			continue;
		size_t p = progress(k);
		if (best < 0 || p < best_p ||
		    (p == best_p && k->accepted < e->conns[best]->accepted)) {
			best = (int)i;
			best_p = p;
		}
	}
	return best;
}

/* Makes room for a new connection from peer: true when it may be taken. Pre-auth
 * connections are evicted rather than the new one refused, so that a flood of idle ones
 * cannot keep a console out; authenticated sessions are never evicted. */
bool els_mgmt_admit(struct endpoint *e, const char *peer)
{
	const struct els_mgmt_conf *c = e->c;
	unsigned src = 0, src_pre = 0, pre = 0;
	for (unsigned i = 0; i < e->nconns; i++) {
		const struct conn *k = e->conns[i];
		bool same = strcmp(k->peer, peer) == 0;
		src += same;
		src_pre += same && !k->authed;
		pre += !k->authed;
	}
	if (src_pre >= c->per_source_preauth || src >= c->per_source) {
		int v = evictable(e, peer);
		if (v < 0) {
			els_mgmt_audit_limited(
			    e, "mgmt connection refused @%s: per_source (%u) reached", peer,
			    c->per_source);
			return false;
		}
		els_mgmt_audit_limited(
		    e, "mgmt connection evicted @%s: per_source_preauth (%u) reached", peer,
		    c->per_source_preauth);
		els_mgmt_conn_free(e, (unsigned)v);
		pre--;
	}
	if (pre >= c->max_clients - c->reserved_slots || e->nconns >= c->max_clients) {
		int v = evictable(e, NULL);
		if (v < 0) {
			/* Accept-and-close rather than leave it in the backlog: the client learns
			 * at once, and the backlog stays free for when a slot opens. */
			els_mgmt_audit_limited(
			    e, "mgmt connection refused @%s: max_clients (%u) reached", peer,
			    c->max_clients);
			return false;
		}
		els_mgmt_audit_limited(e,
				       "mgmt connection evicted @%s: unauthenticated slots full "
				       "(max_clients %u - reserved_slots %u)",
				       e->conns[v]->peer, c->max_clients, c->reserved_slots);
		els_mgmt_conn_free(e, (unsigned)v);
	}
	return true;
}

/* A new CRL: every live session's certificate is checked against it again, as its handshake
 * was, and the sessions of certificates it revokes end now. */
void els_mgmt_recheck_sessions(struct endpoint *e)
{
	X509_STORE *store = SSL_CTX_get_cert_store(e->tls->ctx);
	for (unsigned i = 0; i < e->nconns;) {
		struct conn *k = e->conns[i];
		if (!k->authed) {
			i++;
			continue;
		}
		X509 *x = SSL_get1_peer_certificate(k->ssl);
		int v = x ? els_mgmt_cert_verify(store, x, SSL_get_peer_cert_chain(k->ssl))
			  : X509_V_ERR_UNSPECIFIED;
		X509_free(x);
		if (v == X509_V_OK) {
			i++;
			continue;
		}
		char why[96];
		snprintf(why, sizeof(why), "closed (%s)", X509_verify_cert_error_string(v));
		els_mgmt_audit_session(e, k, "session", why);
		els_mgmt_conn_free(e, i);
	}
}
