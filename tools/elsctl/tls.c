/* The console's TLS 1.3 client: mutual authentication against the management CA, with
 * errors that say which certificate failed and why. */
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
#include "elsctl.h"

struct ctl_conn {
	SSL *ssl;
	int fd;
	const struct ctl_endpoint *ep;
	unsigned timeout_s;
	/* First verification failure of the agent's chain (0: none). */
	int verify_err, verify_depth;
	char verify_subject[256];
	/* Fatal alert the agent sent us (-1: none). */
	int alert;
	bool answered; /* a whole answer arrived: the agent accepted our certificate */
	char our_identity[256];
};

static int conn_idx = -1, ctx_crl_idx = -1;

const char *ctl_alert_words(int desc)
{
	switch (desc) {
	case 0:
		return "connection closed (close_notify)";
	case 10:
		return "unexpected message";
	case 20:
		return "bad record MAC";
	case 22:
		return "record overflow";
	case 40:
		return "handshake failure";
	case 42:
		return "bad certificate";
	case 43:
		return "unsupported certificate";
	case 44:
		return "certificate revoked";
	case 45:
		return "certificate expired";
	case 46:
		return "certificate unknown (not valid for this use, or the CRL is missing or "
		       "expired)";
	case 47:
		return "illegal parameter";
	case 48:
		return "unknown CA (not issued by the agent's management CA)";
	case 49:
		return "access denied";
	case 50:
		return "decode error";
	case 51:
		return "decrypt error (signature check failed)";
	case 70:
		return "protocol version (the agent accepts TLS 1.3 only)";
	case 71:
		return "insufficient security";
	case 80:
		return "internal error";
	case 86:
		return "inappropriate fallback";
	case 90:
		return "user canceled";
	case 109:
		return "missing extension";
	case 110:
		return "unsupported extension";
	case 112:
		return "unrecognized name";
	case 116:
		return "certificate required (no client certificate was sent)";
	case 120:
		return "no application protocol";
	default:
		return "unknown alert";
	}
}

/* Alerts by which the agent says it did not accept our certificate. */
static bool alert_about_us(int desc)
{
	return (desc >= 42 && desc <= 46) || desc == 48 || desc == 49 || desc == 51 || desc == 116;
}

/* "CN=alice, OU=admin": the parts of a subject an operator recognises. */
static void name_brief(X509_NAME *name, char *buf, size_t len)
{
	char cn[128] = "", ou[128] = "";

	buf[0] = '\0';
	if (!name)
		return;
	X509_NAME_get_text_by_NID(name, NID_commonName, cn, sizeof(cn));
	X509_NAME_get_text_by_NID(name, NID_organizationalUnitName, ou, sizeof(ou));
	if (*cn && *ou)
		snprintf(buf, len, "CN=%s, OU=%s", cn, ou);
	else if (*cn)
		snprintf(buf, len, "CN=%s", cn);
	else
		X509_NAME_oneline(name, buf, (int)len);
}

/* The certificate's DNS and IP names, for a host-mismatch message. */
static void san_list(X509 *x, char *buf, size_t len)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && off < len; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		char ip[64] = "";

		if (g->type == GEN_DNS) {
			off += (size_t)snprintf(buf + off, len - off, "%sDNS:%.*s", off ? ", " : "",
						ASN1_STRING_length(g->d.dNSName),
						(const char *)ASN1_STRING_get0_data(g->d.dNSName));
		} else if (g->type == GEN_IPADD) {
			const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
			int alen = ASN1_STRING_length(g->d.iPAddress);

			if (alen == 4 || alen == 16)
				inet_ntop(alen == 4 ? AF_INET : AF_INET6, a, ip, sizeof(ip));
			off +=
			    (size_t)snprintf(buf + off, len - off, "%sIP:%s", off ? ", " : "", ip);
		}
	}
	GENERAL_NAMES_free(gens);
	if (!*buf)
		snprintf(buf, len, "none");
}

static int verify_cb(int ok, X509_STORE_CTX *st)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(st, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct ctl_conn *c = ssl ? SSL_get_ex_data(ssl, conn_idx) : NULL;
	X509 *cur = X509_STORE_CTX_get_current_cert(st);
	int err = X509_STORE_CTX_get_error(st);

	if (ok || !c || c->verify_err)
		return ok;
	c->verify_err = err;
	c->verify_depth = X509_STORE_CTX_get_error_depth(st);
	/* Name the agent's own certificate; an issuer that failed is named after it. */
	name_brief(X509_STORE_CTX_get0_cert(st)
		       ? X509_get_subject_name(X509_STORE_CTX_get0_cert(st))
		       : NULL,
		   c->verify_subject, sizeof(c->verify_subject));
	if (c->verify_depth > 0 && cur) {
		char issuer[120];
		size_t n = strlen(c->verify_subject);

		name_brief(X509_get_subject_name(cur), issuer, sizeof(issuer));
		snprintf(c->verify_subject + n, sizeof(c->verify_subject) - n, "; at its issuer %s",
			 issuer);
	}
	if ((err == X509_V_ERR_HOSTNAME_MISMATCH || err == X509_V_ERR_IP_ADDRESS_MISMATCH) && cur) {
		char sans[200];
		size_t n = strlen(c->verify_subject);

		san_list(cur, sans, sizeof(sans));
		snprintf(c->verify_subject + n, sizeof(c->verify_subject) - n, "; it names %s",
			 sans);
	}
	return ok;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
	struct ctl_conn *c = SSL_get_ex_data(ssl, conn_idx);

	if (c && (where & SSL_CB_READ_ALERT) && (ret >> 8) == SSL3_AL_FATAL && c->alert < 0)
		c->alert = ret & 0xff;
}

/* An expired console certificate is refused by every agent: say so before dialling. */
static bool check_validity(X509 *x, const char *path, char *err, size_t errlen)
{
	const ASN1_TIME *na = X509_get0_notAfter(x), *nb = X509_get0_notBefore(x);
	char who[256], when[64] = "?";
	BIO *b;

	if (X509_cmp_current_time(na) > 0 && X509_cmp_current_time(nb) < 0)
		return true;
	b = BIO_new(BIO_s_mem());
	if (b && ASN1_TIME_print(b, X509_cmp_current_time(na) <= 0 ? na : nb)) {
		int n = BIO_read(b, when, sizeof(when) - 1);

		when[n > 0 ? n : 0] = '\0';
	}
	BIO_free(b);
	name_brief(X509_get_subject_name(x), who, sizeof(who));
	snprintf(err, errlen,
		 "console certificate %s (%s) %s %s: ask for a new one (els-pki console)", path,
		 who, X509_cmp_current_time(na) <= 0 ? "expired on" : "is not valid before", when);
	return false;
}

static const char *ssl_err_text(char *buf, size_t len);

/* Loads every CRL in o->crl into the context's store and turns on the check of the agent's
 * certificate against them. An expired CRL is refused here, before dialling, with what to do:
 * OpenSSL would only say "CRL has expired" about each agent. */
static bool load_crls(SSL_CTX *ctx, const struct ctl_tls_opts *o, char *err, size_t errlen)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	BIO *b = BIO_new_file(o->crl, "r");
	X509_CRL *crl;
	int n = 0;
	char why[160];

	if (!b) {
		snprintf(err, errlen, "CRL file %s: %s (set --crl or ELSCTL_CRL)", o->crl,
			 strerror(errno));
		return false;
	}
	while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL))) {
		const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);

		if (next && X509_cmp_current_time(next) <= 0) {
			char when[64] = "?";
			BIO *m = BIO_new(BIO_s_mem());

			if (m && ASN1_TIME_print(m, next)) {
				int k = BIO_read(m, when, sizeof(when) - 1);

				when[k > 0 ? k : 0] = '\0';
			}
			BIO_free(m);
			snprintf(
			    err, errlen,
			    "CRL file %s expired on %s: refresh it on the CA host (els-pki crl "
			    "DIR) and copy DIR/crl.pem here",
			    o->crl, when);
			X509_CRL_free(crl);
			BIO_free(b);
			return false;
		}
		if (X509_STORE_add_crl(store, crl) != 1) {
			snprintf(err, errlen, "CRL file %s: %s", o->crl,
				 ssl_err_text(why, sizeof(why)));
			X509_CRL_free(crl);
			BIO_free(b);
			return false;
		}
		X509_CRL_free(crl); /* the store holds its own reference */
		n++;
	}
	BIO_free(b);
	if (n == 0) {
		snprintf(err, errlen, "CRL file %s: no PEM CRL in it (X509 CRL)", o->crl);
		return false;
	}
	ERR_clear_error(); /* the end of the file shows up as a PEM "no start line" */
	/* The agent's own certificate; the CA is our trust anchor. */
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	SSL_CTX_set_ex_data(ctx, ctx_crl_idx, (void *)o->crl);
	return true;
}

/* The text of the newest OpenSSL error, without the library prefix noise. */
static const char *ssl_err_text(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	snprintf(buf, len, "%s", r ? r : "unknown TLS error");
	return buf;
}

SSL_CTX *ctl_tls_ctx_new(const struct ctl_tls_opts *o, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	EVP_PKEY *key = NULL;
	char why[160];

	if (conn_idx < 0)
		conn_idx = SSL_get_ex_new_index(0, "elsctl conn", NULL, NULL, NULL);
	if (ctx_crl_idx < 0)
		ctx_crl_idx = SSL_CTX_get_ex_new_index(0, "elsctl crl", NULL, NULL, NULL);
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		snprintf(err, errlen, "cannot create a TLS context: %s",
			 ssl_err_text(why, sizeof(why)));
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
		snprintf(err, errlen, "this OpenSSL cannot do TLS 1.3");
		goto fail;
	}
	/* Fall secure: the agent must show a certificate from our CA. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_info_callback(ctx, info_cb);
	if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
		snprintf(err, errlen, "CA file %s: %s (set --ca or ELSCTL_CA)", o->ca,
			 access(o->ca, R_OK) ? strerror(errno) : ssl_err_text(why, sizeof(why)));
		goto fail;
	}
	if (o->crl && !load_crls(ctx, o, err, errlen))
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
		snprintf(err, errlen, "console certificate %s: %s (set --cert or ELSCTL_CERT)",
			 o->cert,
			 access(o->cert, R_OK) ? strerror(errno) : ssl_err_text(why, sizeof(why)));
		goto fail;
	}
	/* Refused when group or others can read it (els/keyfile.h), on the descriptor read. */
	key = els_keyfile_read_pkey("console key", o->key, err, errlen);
	if (!key)
		goto fail;
	if (SSL_CTX_use_PrivateKey(ctx, key) != 1) {
		snprintf(err, errlen, "console key %s: %s (set --key or ELSCTL_KEY)", o->key,
			 ssl_err_text(why, sizeof(why)));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "console key %s does not belong to certificate %s", o->key,
			 o->cert);
		goto fail;
	}
	if (!check_validity(SSL_CTX_get0_certificate(ctx), o->cert, err, errlen))
		goto fail;
	EVP_PKEY_free(key); /* the context holds its own reference */
	return ctx;
fail:
	EVP_PKEY_free(key);
	SSL_CTX_free(ctx);
	return NULL;
}

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
