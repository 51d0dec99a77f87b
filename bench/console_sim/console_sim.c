/* console_sim: N simulated elsd agents in one process (libevent + bufferevent_openssl), each a
 * real TLS 1.3 client with its own certificate (sim_certs.c), speaking the agent side of
 * docs/console-protocol.md: hello after the handshake, a heartbeat every --heartbeat seconds
 * (spread over the interval), and every policy.apply answered ok with the sha256 of its text,
 * which later heartbeats report. Lost connections are made again after 1-5 s.
 *
 *   console_sim --console HOST:PORT --ca CA.crt --ca-key CA.key --agents N [--prefix P]
 *               [--group G] [--heartbeat S] [--rate CONNECTS_PER_S] [--inflight N]
 *               [--duration S]
 *               [--applies FILE] [--stats FILE]
 *
 * --stats gets one JSON line a second: {"t":unix_s,"connected":n,"hello":n,"applies":n,
 * "failures":n,"disconnects":n}; --applies one line per policy.apply received:
 * "AGENT_ID UNIX_NS SHA256". Stops after --duration seconds (default: never) or SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

struct agent {
	struct bufferevent *bev;
	X509 *cert;
	unsigned idx;
	bool up, hello;
	unsigned gen;
	char sha[65];
	char id[48];
};

static struct {
	struct event_base *base;
	SSL_CTX *ctx;
	struct sim_certs certs;
	struct sockaddr_storage sa;
	socklen_t salen;
	const char *host, *prefix, *group;
	unsigned n, heartbeat, rate;
	struct agent *agents;
	unsigned next_connect; /* agents [next_connect, n) have not been started yet */
	unsigned *retry;       /* agents waiting to reconnect: a ring, in order of loss */
	uint64_t *retry_at;    /* ns (monotonic) when each ring entry may connect again */
	unsigned retry_head, retry_tail;
	unsigned inflight, max_inflight; /* handshakes under way, and the cap */
	unsigned long connected, hellos, applies, failures, disconnects;
	unsigned tick;
	FILE *applies_f, *stats_f;
} S;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sha256_hex(const char *s, size_t n, char out[65])
{
	unsigned char md[32];
	unsigned mdlen;
	EVP_Digest(s, n, md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static void send_json(struct agent *a, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		return;
	uint32_t len = (uint32_t)strlen(s), be = htonl(len);
	bufferevent_write(a->bev, &be, 4);
	bufferevent_write(a->bev, s, len);
	free(s);
}

static void send_state(struct agent *a, const char *type)
{
	char ts[32];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *j = json_pack(
	    "{s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:b,s:b,s:b,s:[{s:s,s:s,s:i}],s:[{s:s,s:s,s:s,s:s}],"
	    "s:{s:i,s:i},s:s}",
	    "v", 1, "type", type, "agent_id", a->id, "host", a->id, "version", "console_sim",
	    "group", S.group, "policy_sha256", a->sha, "policy_generation", (int)a->gen, "managed",
	    1, "rules_ok", 1, "monitor_ok", 1, "listeners", "proto", "tcp", "addr", "0.0.0.0",
	    "port", 443, "permits", "id", "https", "proto", "tcp", "port", "443", "dir", "in",
	    "counters", "dropped", 0, "admitted", 0, "time", ts);
	send_json(a, j);
}

static void start_agent(struct agent *a);

static void lost(struct agent *a, bool failed)
{
	if (a->up)
		S.connected--;
	else
		S.inflight--;
	if (failed)
		S.failures++;
	else
		S.disconnects++;
	a->up = a->hello = false;
	if (a->bev)
		bufferevent_free(a->bev);
	a->bev = NULL;
	/* Again after 1 s (jitter comes from the order of losses). */
	S.retry_at[S.retry_tail % S.n] = mono_ns() + 1000000000ull;
	S.retry[S.retry_tail++ % S.n] = a->idx;
}

static void on_request(struct agent *a, json_t *req)
{
	json_t *id = json_object_get(req, "id");
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	json_t *args = json_object_get(req, "args");
	if (!json_is_integer(id) || !cmd)
		return;
	if (strcmp(cmd, "policy.apply") == 0) {
		const char *text = json_string_value(json_object_get(args, "text"));
		char prev[65];
		memcpy(prev, a->sha, sizeof(prev));
		if (text)
			sha256_hex(text, strlen(text), a->sha);
		a->gen++;
		S.applies++;
		if (S.applies_f)
			fprintf(S.applies_f, "%s %llu %s\n", a->id, (unsigned long long)now_ns(),
				a->sha);
		send_json(a, json_pack("{s:i,s:O,s:b,s:{s:i,s:s,s:s,s:b,s:[]}}", "v", 1, "id", id,
				       "ok", 1, "result", "generation", (int)a->gen, "sha256",
				       a->sha, "previous_sha256", prev, "changed", 1, "warnings"));
	} else if (strcmp(cmd, "status") == 0) {
		send_json(a,
			  json_pack("{s:i,s:O,s:b,s:{s:i,s:s}}", "v", 1, "id", id, "ok", 1,
				    "result", "generation", (int)a->gen, "policy_sha256", a->sha));
	} else {
		send_json(a, json_pack("{s:i,s:O,s:b,s:{s:s,s:s,s:[]}}", "v", 1, "id", id, "ok", 0,
				       "error", "code", "unknown_command", "message",
				       "the simulator answers policy.apply and status", "details"));
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct agent *a = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		uint32_t be;
		size_t have = evbuffer_get_length(in);
		if (have < 4 || evbuffer_copyout(in, &be, 4) != 4)
			return;
		uint32_t len = ntohl(be);
		if (len == 0 || len > (16u << 20)) {
			lost(a, false);
			return;
		}
		if (have < 4 + (size_t)len)
			return;
		evbuffer_drain(in, 4);
		char *body = malloc(len);
		if (!body)
			return;
		evbuffer_remove(in, body, len);
		json_t *j = json_loadb(body, len, 0, NULL);
		free(body);
		if (json_is_object(j))
			on_request(a, j);
		json_decref(j);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct agent *a = arg;
	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		a->up = true;
		S.inflight--;
		S.connected++;
		send_state(a, "hello");
		if (!a->hello)
			S.hellos++;
		a->hello = true;
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		lost(a, !a->up);
}

static void start_agent(struct agent *a)
{
	SSL *ssl = SSL_new(S.ctx);
	S.inflight++; /* until connected or lost */
	if (!ssl) {
		lost(a, true);
		return;
	}
	SSL_use_certificate(ssl, a->cert);
	SSL_use_PrivateKey(ssl, S.certs.key);
	unsigned char tmp[16];
	if (inet_pton(AF_INET, S.host, tmp) == 1 || inet_pton(AF_INET6, S.host, tmp) == 1)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), S.host);
	else
		SSL_set1_host(ssl, S.host);
	a->bev = bufferevent_openssl_socket_new(S.base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (!a->bev) {
		SSL_free(ssl);
		lost(a, true);
		return;
	}
	bufferevent_setcb(a->bev, on_read, NULL, on_event, a);
	bufferevent_enable(a->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(a->bev, (struct sockaddr *)&S.sa, (int)S.salen) < 0)
		lost(a, true);
}

/* Every 10 ms: new connections up to --rate a second and at most --inflight handshakes
 * under way (so the console's own handshake rate is what is measured, not its refusals of a
 * flood), reconnections of agents lost at least 1 s ago, and the heartbeats of the agents
 * whose turn it is (each agent once per --heartbeat seconds). */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what, (void)arg;
	unsigned budget = S.rate / 100 ? S.rate / 100 : 1;
	uint64_t now = mono_ns();
	while (budget && S.inflight < S.max_inflight && S.retry_head != S.retry_tail &&
	       S.retry_at[S.retry_head % S.n] <= now) {
		start_agent(&S.agents[S.retry[S.retry_head++ % S.n]]);
		budget--;
	}
	while (budget && S.inflight < S.max_inflight && S.next_connect < S.n) {
		start_agent(&S.agents[S.next_connect++]);
		budget--;
	}
	unsigned slots = S.heartbeat * 100;
	for (unsigned i = S.tick % slots; i < S.n; i += slots)
		if (S.agents[i].up)
			send_state(&S.agents[i], "heartbeat");
	if (++S.tick % 100 == 0 && S.stats_f) {
		fprintf(
		    S.stats_f,
		    "{\"t\":%.3f,\"connected\":%lu,\"hello\":%lu,\"applies\":%lu,\"failures\":%lu,"
		    "\"disconnects\":%lu,\"inflight\":%u}\n",
		    (double)now_ns() / 1e9, S.connected, S.hellos, S.applies, S.failures,
		    S.disconnects, S.inflight);
		fflush(S.stats_f);
		if (S.applies_f)
			fflush(S.applies_f);
	}
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	event_base_loopbreak(arg);
}

static int parse_addr(const char *s)
{
	static char host[256];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	char *h = host;
	if (h[0] == '[') {
		h++;
		h[strlen(h) - 1] = 0;
	}
	S.host = h;
	int port = atoi(colon + 1);
	struct sockaddr_in *s4 = (struct sockaddr_in *)&S.sa;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&S.sa;
	if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		S.salen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		S.salen = sizeof(*s6);
	} else {
		return -1; /* a numeric address: the simulator resolves nothing */
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: console_sim --console ADDR:PORT --ca CA.crt --ca-key CA.key "
		"--agents N [--prefix P] [--group G] [--heartbeat S] [--rate N] [--inflight N] "
		"[--duration S] [--applies FILE] [--stats FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *console = NULL, *ca = NULL, *ca_key = NULL, *applies = NULL, *stats = NULL;
	unsigned duration = 0;
	S.prefix = "sim";
	S.group = "sim";
	S.heartbeat = 10;
	S.rate = 2000;
	S.max_inflight = 256;
	static const struct option opts[] = {{"console", 1, 0, 'c'},
					     {"ca", 1, 0, 'a'},
					     {"ca-key", 1, 0, 'k'},
					     {"agents", 1, 0, 'n'},
					     {"prefix", 1, 0, 'p'},
					     {"group", 1, 0, 'g'},
					     {"heartbeat", 1, 0, 'h'},
					     {"rate", 1, 0, 'r'},
					     {"duration", 1, 0, 'd'},
					     {"applies", 1, 0, 'A'},
					     {"stats", 1, 0, 'S'},
					     {"inflight", 1, 0, 'i'},
					     {0, 0, 0, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			console = optarg;
			break;
		case 'a':
			ca = optarg;
			break;
		case 'k':
			ca_key = optarg;
			break;
		case 'n':
			S.n = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'p':
			S.prefix = optarg;
			break;
		case 'g':
			S.group = optarg;
			break;
		case 'h':
			S.heartbeat = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'r':
			S.rate = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			duration = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'A':
			applies = optarg;
			break;
		case 'S':
			stats = optarg;
			break;
		case 'i':
			S.max_inflight = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (!console || !ca || !ca_key || !S.n || !S.heartbeat || !S.rate ||
	    parse_addr(console) < 0)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (sim_certs_load(&S.certs, ca, ca_key) < 0) {
		fprintf(stderr, "console_sim: cannot load %s / %s\n", ca, ca_key);
		return 1;
	}
	S.ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(S.ctx, TLS1_3_VERSION);
	SSL_CTX_set_mode(S.ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(S.ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(S.ctx, ca, NULL) != 1) {
		fprintf(stderr, "console_sim: cannot load the CA %s\n", ca);
		return 1;
	}
	S.agents = calloc(S.n, sizeof(*S.agents));
	S.retry = calloc(S.n, sizeof(*S.retry));
	S.retry_at = calloc(S.n, sizeof(*S.retry_at));
	char zero[65];
	sha256_hex("", 0, zero);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < S.n; i++) {
		struct agent *a = &S.agents[i];
		a->idx = i;
		snprintf(a->id, sizeof(a->id), "%s-%05u", S.prefix, i);
		memcpy(a->sha, zero, sizeof(zero));
		a->cert = sim_cert_issue(&S.certs, a->id, 100000 + (long)i);
		if (!a->cert) {
			fprintf(stderr, "console_sim: cannot issue a certificate for %s\n", a->id);
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "console_sim: %u certificates issued in %.2f s\n", S.n,
		(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	S.applies_f = applies ? fopen(applies, "w") : NULL;
	S.stats_f = stats ? fopen(stats, "w") : stderr;
	S.base = event_base_new();
	struct event *tick = event_new(S.base, -1, EV_PERSIST, on_tick, NULL);
	event_add(tick, &(struct timeval){0, 10000});
	struct event *term = evsignal_new(S.base, SIGTERM, on_stop, S.base);
	struct event *intr = evsignal_new(S.base, SIGINT, on_stop, S.base);
	event_add(term, NULL);
	event_add(intr, NULL);
	struct event *end = NULL;
	if (duration) {
		end = evtimer_new(S.base, on_stop, S.base);
		event_add(end, &(struct timeval){duration, 0});
	}
	event_base_dispatch(S.base);
	fprintf(stderr, "console_sim: stopping: %lu connected, %lu applies, %lu failures\n",
		S.connected, S.applies, S.failures);
	if (S.applies_f)
		fclose(S.applies_f);
	return 0;
}
