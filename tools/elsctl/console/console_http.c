/* elsctl's HTTPS client for els-console's JSON API (docs/console-api.md): libevent's evhttp
 * over a bufferevent_openssl, with the same TLS context as the agent mode (TLS 1.3 only, our
 * certificate presented, the CA and CRL checked: ctl_tls_ctx_new). The console must prove its
 * name (DNS or IP subjectAltName matching the URL) and its role (URI els:role:console or
 * OU=console) before the request leaves: an agent's or an operator's certificate from the same
 * CA is refused during the handshake. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "console_client.h"

#define CONSOLE_DEFAULT_PORT 8443
#define CONSOLE_MAX_BODY     (64u << 20)

struct http_call {
	struct event_base *base;
	struct bufferevent *bev;
	SSL *ssl;
	struct ctl_http_resp *out;
	int error;	    /* enum evhttp_request_error + 1; 0: none */
	char role_err[256]; /* the console's certificate lacks the console role */
	bool done;
};

static int http_ssl_idx = -1;

/* The peer certificate names the console role: URI SAN "els:role:console" or OU=console, as
 * agents require of the console they dial (CONSOLE.md, "Certificates"). */
static bool has_console_role(X509 *x)
{
	GENERAL_NAMES *g = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	bool ok = false;

	for (int i = 0; g && i < sk_GENERAL_NAME_num(g) && !ok; i++) {
		const GENERAL_NAME *n = sk_GENERAL_NAME_value(g, i);
		if (n->type != GEN_URI)
			continue;
		const unsigned char *d = ASN1_STRING_get0_data(n->d.uniformResourceIdentifier);
		int len = ASN1_STRING_length(n->d.uniformResourceIdentifier);
		ok = len == 16 && memcmp(d, "els:role:console", 16) == 0;
	}
	GENERAL_NAMES_free(g);
	if (ok)
		return true;
	X509_NAME *s = X509_get_subject_name(x);
	for (int i = -1; (i = X509_NAME_get_index_by_NID(s, NID_organizationalUnitName, i)) >= 0;) {
		ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(s, i));
		if (ASN1_STRING_length(v) == 7 &&
		    memcmp(ASN1_STRING_get0_data(v), "console", 7) == 0)
			return true;
	}
	return false;
}

static int http_verify_cb(int ok, X509_STORE_CTX *st)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(st, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct http_call *hc = ssl ? SSL_get_ex_data(ssl, http_ssl_idx) : NULL;

	if (!ok || X509_STORE_CTX_get_error_depth(st) != 0)
		return ok;
	if (!has_console_role(X509_STORE_CTX_get_current_cert(st))) {
		if (hc)
			snprintf(hc->role_err, sizeof(hc->role_err),
				 "the server's certificate is not a console's (no URI "
				 "els:role:console, no OU=console): refused before sending");
		X509_STORE_CTX_set_error(st, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	return 1;
}

static void http_on_error(enum evhttp_request_error e, void *arg)
{
	struct http_call *hc = arg;
	hc->error = (int)e + 1;
}

static void http_on_done(struct evhttp_request *req, void *arg)
{
	struct http_call *hc = arg;

	hc->done = true;
	if (req && evhttp_request_get_response_code(req) > 0) {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t len = evbuffer_get_length(in);
		hc->out->status = evhttp_request_get_response_code(req);
		hc->out->body = malloc(len + 1);
		if (hc->out->body) {
			evbuffer_remove(in, hc->out->body, len);
			hc->out->body[len] = 0;
			hc->out->len = len;
		}
	}
	event_base_loopexit(hc->base, NULL);
}

int ctl_console_url_parse(const char *url, struct ctl_console_url *u, const char **why)
{
	struct evhttp_uri *p = evhttp_uri_parse_with_flags(url, 0);
	int rc = -EINVAL;

	memset(u, 0, sizeof(*u));
	if (!p) {
		*why = "not a URL: use https://HOST[:PORT]";
	} else if (!evhttp_uri_get_scheme(p) || strcmp(evhttp_uri_get_scheme(p), "https") != 0) {
		*why = "only https:// is spoken";
	} else if (!evhttp_uri_get_host(p) || !*evhttp_uri_get_host(p)) {
		*why = "no host";
	} else if (strlen(evhttp_uri_get_host(p)) >= sizeof(u->host)) {
		*why = "host name too long";
	} else if (evhttp_uri_get_path(p) && *evhttp_uri_get_path(p) &&
		   strcmp(evhttp_uri_get_path(p), "/") != 0) {
		*why = "give the console's address only (https://HOST:PORT), no path";
	} else {
		const char *h = evhttp_uri_get_host(p);
		size_t hl = strlen(h);
		/* evhttp keeps an IPv6 literal's brackets: the name check wants the address */
		if (h[0] == '[' && hl > 2 && h[hl - 1] == ']')
			snprintf(u->host, sizeof(u->host), "%.*s", (int)(hl - 2), h + 1);
		else
			snprintf(u->host, sizeof(u->host), "%s", h);
		u->port =
		    evhttp_uri_get_port(p) > 0 ? evhttp_uri_get_port(p) : CONSOLE_DEFAULT_PORT;
		/* an IP literal is checked against the certificate's IP subjectAltName */
		struct in6_addr a;
		u->is_ip =
		    inet_pton(AF_INET, u->host, &a) == 1 || inet_pton(AF_INET6, u->host, &a) == 1;
		rc = 0;
	}
	if (p)
		evhttp_uri_free(p);
	return rc;
}

static const char *http_error_words(int e)
{
	switch (e - 1) {
	case EVREQ_HTTP_TIMEOUT:
		return "timed out";
	case EVREQ_HTTP_EOF:
		return "the console closed the connection";
	case EVREQ_HTTP_INVALID_HEADER:
		return "malformed HTTP answer";
	case EVREQ_HTTP_BUFFER_ERROR:
		return "connection or TLS failure";
	case EVREQ_HTTP_DATA_TOO_LONG:
		return "answer larger than 64 MiB";
	default:
		return "request failed";
	}
}

static void http_explain(struct http_call *hc, const struct ctl_console_url *u, char *err,
			 size_t errlen)
{
	unsigned long ssl_err = hc->bev ? bufferevent_get_openssl_error(hc->bev) : 0;
	long vr = hc->ssl ? SSL_get_verify_result(hc->ssl) : X509_V_OK;
	char why[256] = "";

	if (hc->role_err[0])
		snprintf(why, sizeof(why), "%s", hc->role_err);
	else if (vr != X509_V_OK)
		snprintf(why, sizeof(why), "the console's certificate: %s%s",
			 X509_verify_cert_error_string(vr),
			 vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH
			     ? " (it must name the host of --console)"
			     : "");
	else if (ssl_err) {
		const char *r = ERR_reason_error_string(ssl_err);
		int alert = ERR_GET_REASON(ssl_err) - SSL_AD_REASON_OFFSET;
		if (alert > 0 && alert < 256 && ctl_alert_words(alert))
			snprintf(why, sizeof(why), "TLS: the console sent alert: %s",
				 ctl_alert_words(alert));
		else
			snprintf(why, sizeof(why), "TLS: %s", r ? r : "handshake failed");
	} else {
		int se = EVUTIL_SOCKET_ERROR();
		snprintf(why, sizeof(why), "%s%s%s", http_error_words(hc->error), se ? ": " : "",
			 se ? evutil_socket_error_to_string(se) : "");
	}
	snprintf(err, errlen, "console %s:%u: %s", u->host, u->port, why);
}

int ctl_console_call(const struct ctl *c, SSL_CTX *ctx, const char *method, const char *path,
		     json_t *body, struct ctl_http_resp *out, char *err, size_t errlen)
{
	struct ctl_console_url u;
	struct http_call hc = {.out = out};
	struct evhttp_connection *conn = NULL;
	struct evhttp_request *req = NULL;
	const char *why;
	unsigned char rnd[16];
	char token[33], cookie[64], port[8];
	int rc = -EIO;

	memset(out, 0, sizeof(*out));
	if (ctl_console_url_parse(c->console, &u, &why) < 0) {
		snprintf(err, errlen, "--console %s: %s", c->console, why);
		return -EINVAL;
	}
	if (http_ssl_idx < 0)
		http_ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	hc.base = event_base_new();
	hc.ssl = SSL_new(ctx);
	if (!hc.base || !hc.ssl) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	SSL_set_ex_data(hc.ssl, http_ssl_idx, &hc);
	SSL_set_verify(hc.ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, http_verify_cb);
	if (u.is_ip) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(hc.ssl), u.host);
	} else {
		SSL_set_tlsext_host_name(hc.ssl, u.host);
		SSL_set1_host(hc.ssl, u.host);
	}
	/* the bufferevent owns the SSL from here */
	hc.bev = bufferevent_openssl_socket_new(hc.base, -1, hc.ssl, BUFFEREVENT_SSL_CONNECTING,
						BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!hc.bev) {
		SSL_free(hc.ssl);
		hc.ssl = NULL;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(hc.bev, 1);
	conn = evhttp_connection_base_bufferevent_new(hc.base, NULL, hc.bev, u.host,
						      (unsigned short)u.port);
	if (!conn) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	evhttp_connection_set_timeout(conn, (int)c->tls.timeout_s);
	evhttp_connection_set_max_body_size(conn, CONSOLE_MAX_BODY);
	req = evhttp_request_new(http_on_done, &hc);
	if (!req) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	evhttp_request_set_error_cb(req, http_on_error);
	/* The double-submit anti-CSRF pair: a browser page gets the cookie from the console; a
	 * program that is not a browser sends both halves itself (no other site can make a
	 * client-certificate holder's browser do that). */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		snprintf(err, errlen, "no random bytes for the anti-CSRF token");
		evhttp_request_free(req);
		goto out;
	}
	for (unsigned i = 0; i < sizeof(rnd); i++)
		snprintf(token + 2 * i, 3, "%02x", rnd[i]);
	snprintf(cookie, sizeof(cookie), "els_csrf=%s", token);
	snprintf(port, sizeof(port), "%u", u.port);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char hosthdr[300];
	snprintf(hosthdr, sizeof(hosthdr), strchr(u.host, ':') ? "[%s]:%s" : "%s:%s", u.host, port);
	evhttp_add_header(h, "Host", hosthdr);
	evhttp_add_header(h, "Accept", "application/json");
	evhttp_add_header(h, "User-Agent", "elsctl/" ELS_VERSION);
	evhttp_add_header(h, "Cookie", cookie);
	evhttp_add_header(h, "X-ELS-CSRF", token);
	if (body) {
		char *js = json_dumps(body, JSON_COMPACT);
		if (!js) {
			snprintf(err, errlen, "out of memory");
			evhttp_request_free(req);
			goto out;
		}
		evhttp_add_header(h, "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), js, strlen(js));
		free(js);
	}
	enum evhttp_cmd_type cmd = strcmp(method, "POST") == 0 ? EVHTTP_REQ_POST : EVHTTP_REQ_GET;
	if (evhttp_make_request(conn, req, cmd, path) != 0) {
		snprintf(err, errlen, "console %s:%u: cannot send the request", u.host, u.port);
		goto out; /* evhttp freed the request */
	}
	event_base_dispatch(hc.base);
	if (!out->status) {
		http_explain(&hc, &u, err, errlen);
		goto out;
	}
	out->json = json_loadb(out->body ? out->body : "", out->len, 0, NULL);
	if (!out->json) {
		snprintf(err, errlen, "console %s:%u answered HTTP %d with a body that is not JSON",
			 u.host, u.port, out->status);
		goto out;
	}
	rc = 0;
out:
	if (conn)
		evhttp_connection_free(conn); /* frees the bufferevent and the SSL */
	else if (hc.bev)
		bufferevent_free(hc.bev);
	if (hc.base)
		event_base_free(hc.base);
	if (rc < 0)
		ctl_http_resp_free(out);
	return rc;
}

void ctl_http_resp_free(struct ctl_http_resp *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}
