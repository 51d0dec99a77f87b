/* The console's TLS 1.3 connection to an agent: dial with a timeout, handshake with the
 * agent's name checked, framed requests and answers, and errors that say which certificate
 * failed and why. The context it runs on is built in tls.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "els/keyfile.h"
#include "els/mgmt.h"
#include "../elsctl.h"
#include "tls_int.h"

static int connect_timeout(const struct ctl_endpoint *ep, unsigned timeout_s, char *err,
			   size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
	struct addrinfo *res = NULL;
	struct timeval tv = {.tv_sec = timeout_s};
	int fd = -1, rc, last = ETIMEDOUT;

	if (ep->is_ip)
		hints.ai_flags = AI_NUMERICHOST;
	rc = getaddrinfo(ep->host, ep->port, &hints, &res);
	if (rc) {
		snprintf(err, errlen, "%s: cannot resolve %s: %s", ep->label, ep->host,
			 gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t sl = sizeof(last);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			last = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			goto connected;
		if (errno != EINPROGRESS) {
			last = errno;
			goto next;
		}
		pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
		rc = poll(&pfd, 1, (int)timeout_s * 1000);
		if (rc == 0) {
			last = ETIMEDOUT;
			goto next;
		}
		if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &last, &sl) < 0)
			last = errno;
		if (last == 0)
			goto connected;
	next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	snprintf(err, errlen, "%s: cannot connect: %s", ep->label,
		 last == ETIMEDOUT ? "timed out" : strerror(last));
	return -last;
connected:
	freeaddrinfo(res);
	/* Blocking from here on; every read and write is bounded by the timeout. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Explains a failed SSL call in terms of certificates, alerts or the connection. */
static void explain(struct ctl_conn *c, int ret, const char *when, char *err, size_t errlen)
{
	int e = SSL_get_error(c->ssl, ret);
	int saved = errno;
	char why[160];

	if (c->verify_err) {
		const char *crl = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(c->ssl), ctx_crl_idx);
		char hint[300] = "";

		if (c->verify_err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		    c->verify_err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
		    c->verify_err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN)
			snprintf(hint, sizeof(hint), " (was it issued by the CA in --ca?)");
		else if (c->verify_err == X509_V_ERR_CERT_REVOKED)
			snprintf(hint, sizeof(hint),
				 " (listed in the CRL %s): do not trust this agent; reissue its "
				 "certificate",
				 crl ? crl : "");
		else if (c->verify_err == X509_V_ERR_UNABLE_TO_GET_CRL)
			snprintf(hint, sizeof(hint),
				 " (the CRL %s is not from the CA that issued it: use that CA's "
				 "crl.pem)",
				 crl ? crl : "");
		else if (c->verify_err == X509_V_ERR_CRL_HAS_EXPIRED ||
			 c->verify_err == X509_V_ERR_CRL_NOT_YET_VALID)
			snprintf(hint, sizeof(hint), " (%s: refresh it with els-pki crl)",
				 crl ? crl : "");
		snprintf(err, errlen, "agent certificate for %s (%s): %s%s", c->ep->host,
			 c->verify_subject, X509_verify_cert_error_string(c->verify_err), hint);
	} else if (c->alert >= 0 && alert_about_us(c->alert)) {
		snprintf(err, errlen, "the agent %s refused our certificate (%s): %s", c->ep->label,
			 c->our_identity, ctl_alert_words(c->alert));
	} else if (c->alert >= 0) {
		snprintf(err, errlen, "the agent %s ended the connection %s: %s", c->ep->label,
			 when, ctl_alert_words(c->alert));
	} else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN ||
		   (e == SSL_ERROR_SSL && ERR_peek_last_error() == 0)) {
		if (e == SSL_ERROR_SYSCALL && (saved == EAGAIN || saved == EWOULDBLOCK))
			snprintf(err, errlen, "%s: no answer %s within %us (--timeout)",
				 c->ep->label, when, c->timeout_s);
		else if (!SSL_is_init_finished(c->ssl))
			/* The agent drops connections over its cap before the handshake. */
			snprintf(err, errlen,
				 "%s: the agent closed the connection %s (agent busy: too many "
				 "management connections?)",
				 c->ep->label, when);
		else if (!c->answered && (e != SSL_ERROR_SYSCALL || !saved || saved == EPIPE ||
					  saved == ECONNRESET))
			/* TLS 1.3: the agent judges our certificate after our handshake is done.
			 * Its alert is lost when the reset overtakes it, so say what it means. */
			snprintf(err, errlen,
				 "%s: the agent closed the connection %s, before any answer: it "
				 "most likely refused our certificate (%s); check that it is from "
				 "the agent's CA, not expired and not revoked",
				 c->ep->label, when, c->our_identity);
		else if (e == SSL_ERROR_SYSCALL && saved && saved != EPIPE)
			snprintf(err, errlen, "%s: connection lost %s: %s", c->ep->label, when,
				 strerror(saved));
		else
			snprintf(err, errlen, "%s: the agent closed the connection %s",
				 c->ep->label, when);
	} else {
		snprintf(err, errlen, "%s: TLS error %s: %s", c->ep->label, when,
			 ssl_err_text(why, sizeof(why)));
	}
}

int ctl_conn_open(SSL_CTX *ctx, const struct ctl_endpoint *ep, unsigned timeout_s,
		  struct ctl_conn **out, char *err, size_t errlen)
{
	struct ctl_conn *c = calloc(1, sizeof(*c));
	X509 *ours = SSL_CTX_get0_certificate(ctx);
	int ret;

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->ep = ep;
	c->alert = -1;
	c->timeout_s = timeout_s;
	name_brief(ours ? X509_get_subject_name(ours) : NULL, c->our_identity,
		   sizeof(c->our_identity));
	c->fd = connect_timeout(ep, timeout_s, err, errlen);
	if (c->fd < 0) {
		ret = c->fd;
		free(c);
		return ret;
	}
	ERR_clear_error();
	c->ssl = SSL_new(ctx);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) || !SSL_set_ex_data(c->ssl, conn_idx, c))
		goto tls_fail;
	if (ep->is_ip) {
		if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), ep->host))
			goto tls_fail;
	} else {
		if (!SSL_set_tlsext_host_name(c->ssl, ep->host) || !SSL_set1_host(c->ssl, ep->host))
			goto tls_fail;
		/* Only the whole name may match: no partial or multi-label wildcards. */
		SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	}
	ret = SSL_connect(c->ssl);
	if (ret != 1) {
		explain(c, ret, "during the TLS handshake", err, errlen);
		ctl_conn_close(c);
		return -EPROTO;
	}
	/* Belt and braces: the callback let nothing through, but say so if it ever did. */
	if (SSL_get_verify_result(c->ssl) != X509_V_OK || !SSL_get0_peer_certificate(c->ssl)) {
		snprintf(err, errlen, "agent certificate for %s: not verified", ep->host);
		ctl_conn_close(c);
		return -EPROTO;
	}
	*out = c;
	return 0;
tls_fail:
	snprintf(err, errlen, "%s: cannot set up TLS: %s", ep->label,
		 ssl_err_text((char[160]){0}, 160));
	ctl_conn_close(c);
	return -EPROTO;
}

static int write_all(struct ctl_conn *c, const unsigned char *p, size_t len, char *err,
		     size_t errlen)
{
	while (len) {
		size_t n = 0;
		int ret = SSL_write_ex(c->ssl, p, len, &n);

		if (ret != 1) {
			int e = SSL_get_error(c->ssl, ret), saved = errno;
			unsigned char b;

			/* The agent may have refused our certificate and reset the connection:
			 * its alert can still wait in the receive queue, so read it for explain. */
			if (c->alert < 0 && !c->answered && e == SSL_ERROR_SYSCALL)
				SSL_read(c->ssl, &b, 1);
			errno = saved;
			explain(c, ret, "while sending the request", err, errlen);
			return -EIO;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static int read_all(struct ctl_conn *c, unsigned char *p, size_t len, char *err, size_t errlen)
{
	while (len) {
		size_t n = 0;
		int ret = SSL_read_ex(c->ssl, p, len, &n);

		if (ret != 1) {
			explain(c, ret, "while waiting for the answer", err, errlen);
			return -EIO;
		}
		p += n;
		len -= n;
	}
	return 0;
}

int ctl_conn_call(struct ctl_conn *c, json_t *req, json_t **resp, char *err, size_t errlen)
{
	unsigned char *frame = NULL, hdr[ELS_MGMT_FRAME_HDR], *body = NULL;
	size_t flen;
	long blen;
	json_error_t jerr;
	int rc;

	ERR_clear_error();
	rc = ctl_frame_encode(req, &frame, &flen, err, errlen);
	if (rc < 0)
		return rc;
	rc = write_all(c, frame, flen, err, errlen);
	free(frame);
	if (rc < 0)
		return rc;
	rc = read_all(c, hdr, sizeof(hdr), err, errlen);
	if (rc < 0)
		return rc;
	blen = els_mgmt_frame_get_len(hdr);
	if (blen < 0) {
		snprintf(err, errlen, "%s: answer frame is malformed or larger than %u bytes",
			 c->ep->label, ELS_MGMT_MAX_FRAME);
		return -EMSGSIZE;
	}
	body = malloc((size_t)blen + 1);
	if (!body) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = read_all(c, body, (size_t)blen, err, errlen);
	if (rc < 0)
		goto out;
	c->answered = true;
	*resp = json_loadb((const char *)body, (size_t)blen, JSON_REJECT_DUPLICATES, &jerr);
	if (!*resp || !json_is_object(*resp)) {
		snprintf(err, errlen, "%s: answer is not a JSON object: %s", c->ep->label,
			 *resp ? "wrong type" : jerr.text);
		json_decref(*resp);
		*resp = NULL;
		rc = -EBADMSG;
	}
out:
	free(body);
	return rc;
}

void ctl_conn_close(struct ctl_conn *c)
{
	if (!c)
		return;
	if (c->ssl) {
		/* A polite close_notify; the agent does not need to answer it. */
		if (SSL_is_init_finished(c->ssl) && c->alert < 0)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}
