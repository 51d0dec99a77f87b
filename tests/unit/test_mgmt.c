/* agent/mgmt/mgmt.c, the management endpoint's serving loop, in a thread of this test: real
 * TLS 1.3 clients with certificates made by pki/els-pki (an admin and an auditor) on a
 * loopback listener, and a stand-in for the main process on the other end of the socketpair
 * that answers every request it is handed. Checked: every command of the table is passed on
 * for an admin, an auditor's admin-only requests are refused at the endpoint and never reach
 * the main process, an unknown command and garbled JSON are refused, a frame above
 * ELS_MGMT_MAX_FRAME is refused and its connection closed, every refusal goes to the main
 * process as an audit line, and the endpoint answers the next request on the same connection
 * (after a refusal) or a new one (after a close). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "els/policy.h"
#include "ipc.h"
#include "mgmt.h"

static char dir[] = "/tmp/els-mgmt-XXXXXX";
static char ca[128], conf[160];
static struct els_policy *pol;
static struct els_mgmt_tls tls;
static struct els_ipc ep_ipc, main_ipc;
static int sv[2], lfd;
static uint16_t port;
static pthread_t ep_thread, main_thread;
static _Atomic bool stop;

/* What the stand-in main process saw. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char forwarded[2048]; /* commands passed on, space-separated */
static char audits[8192];    /* audit lines from the endpoint */

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void *endpoint_main(void *arg)
{
	(void)arg;
	els_mgmt_serve(pol->set.mgmt, &tls, &ep_ipc, lfd);
	return NULL;
}

/* The main process, as far as the endpoint can tell: each request (certificates, peer, JSON)
 * is answered with its command, so the client sees that it went through. */
static void *main_process(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		struct pollfd p = {.fd = sv[0], .events = POLLIN};
		poll(&p, 1, 50);
		struct els_ipc_msg m;
		while (els_ipc_recv(&main_ipc, &m) == 1) {
			if (m.type == ELS_IPC_AUDIT || m.type == ELS_IPC_NOTE) {
				pthread_mutex_lock(&lock);
				strncat(audits, (const char *)m.body,
					sizeof(audits) - strlen(audits) - 2);
				strcat(audits, "\n");
				pthread_mutex_unlock(&lock);
			} else if (m.type == ELS_IPC_REQUEST && m.len > 4) {
				size_t der = (size_t)m.body[0] << 24 | (size_t)m.body[1] << 16 |
					     (size_t)m.body[2] << 8 | m.body[3];
				const char *peer = (const char *)m.body + 4 + der;
				const char *json = peer + strlen(peer) + 1;
				json_t *j = json_loads(json, 0, NULL);
				const char *cmd = json_string_value(json_object_get(j, "cmd"));
				json_int_t id = json_integer_value(json_object_get(j, "id"));
				pthread_mutex_lock(&lock);
				strncat(forwarded, cmd ? cmd : "?",
					sizeof(forwarded) - strlen(forwarded) - 2);
				strcat(forwarded, " ");
				pthread_mutex_unlock(&lock);
				json_t *r = json_pack("{s:i,s:I,s:b,s:{s:s}}", "v", 1, "id", id, "ok",
						      1, "result", "cmd", cmd ? cmd : "?");
				char *s = json_dumps(r, JSON_COMPACT);
				els_ipc_send(&main_ipc, ELS_IPC_RESPONSE, m.conn, s, strlen(s));
				free(s);
				json_decref(r);
				json_decref(j);
			}
			free(m.body);
		}
		els_ipc_flush(&main_ipc);
	}
	return NULL;
}

static void setup(void)
{
	const char *pki = ELS_SOURCE_DIR "/pki/els-pki";
	char text[1024], err[256];
	struct els_diag d;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(ca, sizeof(ca), "%s/ca", dir);
	sh("{ %s init %s && %s agent %s agent1 --host localhost --ip 127.0.0.1 && "
	   "%s console %s alice --role admin && %s console %s bob --role auditor; } "
	   ">/dev/null 2>&1",
	   pki, ca, pki, ca, pki, ca, pki, ca);
	snprintf(conf, sizeof(conf), "%s/elsd.conf", dir);
	snprintf(text, sizeof(text),
		 "management = { listen = \"127.0.0.1:7443\"; ca = \"%s/ca.crt\";\n"
		 "  cert = \"%s/agents/agent1.crt\"; key = \"%s/agents/agent1.key\";\n"
		 "  crl = \"%s/crl.pem\"; max_clients = 8; timeout_s = 10; };\n"
		 "chain = [ \"header_filter\" ];\nheader_filter = { permits = ( ); };\n",
		 ca, ca, ca, ca);
	FILE *f = fopen(conf, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	els_diag_init(&d, conf);
	pol = els_policy_load(conf, "/dev/null", &d);
	cr_assert_not_null(pol, "%s", d.count ? d.msgs[0] : "?");
	els_diag_free(&d);
	cr_assert_not_null(pol->set.mgmt);
	cr_assert_eq(els_mgmt_tls_load(&tls, pol->set.mgmt, err, sizeof(err)), 0, "%s", err);

	/* the listener elsd would have made before dropping its privileges */
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	cr_assert_geq(lfd, 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(lfd, 16), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
	port = ntohs(a.sin_port);

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	els_ipc_init(&main_ipc, sv[0]);
	els_ipc_init(&ep_ipc, sv[1]);
	forwarded[0] = audits[0] = '\0';
	atomic_store(&stop, false);
	cr_assert_eq(pthread_create(&ep_thread, NULL, endpoint_main, NULL), 0);
	cr_assert_eq(pthread_create(&main_thread, NULL, main_process, NULL), 0);
}

static void teardown(void)
{
	/* The channel closes: the endpoint's loop ends, as when elsd's main process goes. */
	atomic_store(&stop, true);
	pthread_join(main_thread, NULL);
	els_ipc_close(&main_ipc);
	pthread_join(ep_thread, NULL);
	els_ipc_close(&ep_ipc);
	close(lfd);
	els_mgmt_tls_free(&tls);
	els_policy_free(pol);
	sh("rm -rf -- %s", dir);
}

TestSuite(mgmt, .init = setup, .fini = teardown, .timeout = 60);

/* ---- a client ---- */

struct client {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
};

static void client_open(struct client *c, const char *who)
{
	char crt[256], key[256], caf[160];
	snprintf(crt, sizeof(crt), "%s/consoles/%s.crt", ca, who);
	snprintf(key, sizeof(key), "%s/consoles/%s.key", ca, who);
	snprintf(caf, sizeof(caf), "%s/ca.crt", ca);
	c->ctx = SSL_CTX_new(TLS_client_method());
	cr_assert_not_null(c->ctx);
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION);
	cr_assert_eq(SSL_CTX_use_certificate_chain_file(c->ctx, crt), 1, "%s", crt);
	cr_assert_eq(SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM), 1, "%s", key);
	cr_assert_eq(SSL_CTX_load_verify_locations(c->ctx, caf, NULL), 1);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = 5}; /* an answer that does not come is a failure */
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	c->ssl = SSL_new(c->ctx);
	SSL_set_fd(c->ssl, c->fd);
	SSL_set1_host(c->ssl, "127.0.0.1");
	cr_assert_eq(SSL_connect(c->ssl), 1, "handshake as %s", who);
}

static void client_close(struct client *c)
{
	SSL_free(c->ssl);
	close(c->fd);
	SSL_CTX_free(c->ctx);
}

static bool read_all(struct client *c, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		int r = SSL_read(c->ssl, (uint8_t *)buf + got, (int)(n - got));
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

/* One frame out (a 4-byte big-endian length, then body) and the answer's body back, or NULL
 * when the endpoint closed the connection. */
static char *ask_frame(struct client *c, uint32_t len_field, const char *body, size_t n)
{
	uint8_t h[4] = {(uint8_t)(len_field >> 24), (uint8_t)(len_field >> 16),
			(uint8_t)(len_field >> 8), (uint8_t)len_field};
	cr_assert_eq(SSL_write(c->ssl, h, 4), 4);
	if (n)
		cr_assert_eq(SSL_write(c->ssl, body, (int)n), (int)n);
	if (!read_all(c, h, 4))
		return NULL;
	uint32_t l = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	cr_assert_leq(l, ELS_MGMT_MAX_FRAME);
	char *out = malloc(l + 1);
	cr_assert(read_all(c, out, l));
	out[l] = '\0';
	return out;
}

static char *ask(struct client *c, const char *json)
{
	return ask_frame(c, (uint32_t)strlen(json), json, strlen(json));
}

/* The answer's error code, or "ok". */
static const char *code_of(const char *resp)
{
	static char code[64];
	json_t *j = json_loads(resp, 0, NULL);
	cr_assert_not_null(j, "%s", resp);
	json_t *e = json_object_get(json_object_get(j, "error"), "code");
	snprintf(code, sizeof(code), "%s",
		 json_is_true(json_object_get(j, "ok")) ? "ok" : e ? json_string_value(e) : "?");
	json_decref(j);
	return code;
}

static bool seen(const char *buf, const char *what)
{
	pthread_mutex_lock(&lock);
	bool r = strstr(buf, what) != NULL;
	pthread_mutex_unlock(&lock);
	return r;
}

/* The audit line arrives from the endpoint's thread shortly after the answer. */
static bool audited(const char *what)
{
	for (int i = 0; i < 200; i++) {
		if (seen(audits, what))
			return true;
		usleep(10000);
	}
	return false;
}

/* A valid request of each command (arguments as the table wants them). */
static void request_of(char *out, size_t n, const char *cmd)
{
	const char *args = "{}";
	if (!strcmp(cmd, "policy.validate") || !strcmp(cmd, "policy.apply"))
		args = "{\"text\":\"chain = [ ];\"}";
	else if (!strcmp(cmd, "list.get"))
		args = "{\"list\":\"deny\"}";
	else if (!strcmp(cmd, "list.add") || !strcmp(cmd, "list.del"))
		args = "{\"list\":\"deny\",\"entries\":[\"198.19.66.1\"]}";
	snprintf(out, n, "{\"v\":1,\"id\":3,\"cmd\":\"%s\",\"args\":%s}", cmd, args);
}

/* ---- the tests ---- */

Test(mgmt, every_command_is_passed_on_for_an_admin)
{
	struct client c;
	char req[256], want[64];
	unsigned n = 0;

	client_open(&c, "alice");
	for (const struct els_mgmt_cmd_info *k = els_mgmt_commands(); k->name; k++, n++) {
		request_of(req, sizeof(req), k->name);
		char *resp = ask(&c, req);
		cr_assert_not_null(resp, "%s: connection closed", k->name);
		cr_assert_str_eq(code_of(resp), "ok", "%s: %s", k->name, resp);
		snprintf(want, sizeof(want), "\"cmd\":\"%s\"", k->name);
		cr_assert(strstr(resp, want), "%s: the main process's answer: %s", k->name, resp);
		free(resp);
		snprintf(want, sizeof(want), "%s ", k->name);
		cr_assert(seen(forwarded, want), "%s reached the main process", k->name);
	}
	cr_assert_eq(n, 12);
	client_close(&c);
}

Test(mgmt, auditor_refused_admin_commands_at_the_endpoint)
{
	struct client c;
	char req[256], want[64];
	unsigned refused = 0;

	client_open(&c, "bob");
	for (const struct els_mgmt_cmd_info *k = els_mgmt_commands(); k->name; k++) {
		request_of(req, sizeof(req), k->name);
		char *resp = ask(&c, req);
		cr_assert_not_null(resp, "%s: the connection stays open after a refusal", k->name);
		snprintf(want, sizeof(want), "%s ", k->name);
		if (k->role == ELS_ROLE_ADMIN) {
			cr_assert_str_eq(code_of(resp), "forbidden", "%s: %s", k->name, resp);
			cr_assert_not(seen(forwarded, want), "%s never reaches the main process",
				      k->name);
			snprintf(want, sizeof(want), "%s: forbidden", k->name);
			cr_assert(audited(want), "%s: the refusal is audited: %s", k->name, audits);
			refused++;
		} else {
			cr_assert_str_eq(code_of(resp), "ok", "%s: %s", k->name, resp);
			cr_assert(seen(forwarded, want), "%s", k->name);
		}
		free(resp);
	}
	cr_assert_eq(refused, 5);
	client_close(&c);
}

Test(mgmt, unknown_and_garbled_requests_refused_then_served_on)
{
	struct client c;
	static const char *const bad[][2] = {
	    {"{\"v\":1,\"id\":1,\"cmd\":\"reboot\"}", "unknown_command"},
	    {"not json", "bad_request"},
	    {"{\"v\":1,\"id\":1,\"cmd\":\"status\",\"cmd\":\"sweep\"}", "bad_request"},
	    {"{\"v\":9,\"id\":1,\"cmd\":\"status\"}", "unsupported_version"},
	    {"{\"v\":1,\"id\":1,\"cmd\":\"flows\",\"args\":{\"limit\":0}}", "bad_request"},
	};

	client_open(&c, "alice");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *resp = ask(&c, bad[i][0]);
		cr_assert_not_null(resp, "%s: connection closed", bad[i][0]);
		cr_assert_str_eq(code_of(resp), bad[i][1], "%s: %s", bad[i][0], resp);
		free(resp);
		cr_assert(audited(bad[i][1]), "%s: audited", bad[i][1]);
		/* the same connection is answered next */
		char *ok = ask(&c, "{\"v\":1,\"id\":2,\"cmd\":\"status\"}");
		cr_assert_not_null(ok);
		cr_assert_str_eq(code_of(ok), "ok", "%s", ok);
		free(ok);
	}
	cr_assert_not(seen(forwarded, "reboot"), "refused requests stay at the endpoint");
	client_close(&c);
}

Test(mgmt, oversize_frame_refused_closed_and_the_endpoint_serves_on)
{
	struct client c;

	client_open(&c, "alice");
	char *resp = ask_frame(&c, ELS_MGMT_MAX_FRAME + 1, NULL, 0);
	cr_assert_not_null(resp, "an answer before the close");
	cr_assert_str_eq(code_of(resp), "frame_too_large", "%s", resp);
	free(resp);
	/* then the endpoint closes the connection: end of stream, not a read timing out */
	uint8_t b;
	int r = SSL_read(c.ssl, &b, 1);
	int err = SSL_get_error(c.ssl, r);
	cr_assert_leq(r, 0);
	cr_assert(err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && errno != EAGAIN),
		  "closed by the endpoint (SSL error %d, errno %d)", err, errno);
	client_close(&c);
	cr_assert(audited("frame_too_large"));

	client_open(&c, "alice");
	resp = ask_frame(&c, 0, NULL, 0);
	cr_assert_not_null(resp);
	cr_assert_str_eq(code_of(resp), "frame_too_large", "a zero length: %s", resp);
	free(resp);
	client_close(&c);

	/* a new connection is served */
	client_open(&c, "bob");
	resp = ask(&c, "{\"v\":1,\"id\":5,\"cmd\":\"stats\"}");
	cr_assert_not_null(resp);
	cr_assert_str_eq(code_of(resp), "ok", "%s", resp);
	free(resp);
	client_close(&c);
}
