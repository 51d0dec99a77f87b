/* The main process's half of dialling the console: resolve, connect, back off (dialout.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dialout.h"
#include "els/log.h"

#define BACKOFF_MIN_MS	   1000u
#define BACKOFF_MAX_MS	   60000u
#define CONNECT_TIMEOUT_MS 10000u
#define RESOLVE_POLL_MS	   100

enum dial_state { D_WAIT, D_RESOLVING, D_CONNECTING, D_HANDED, D_UP };

/* What it needs of console.*, copied: the policy that held the settings is freed at the next
 * reload (a console's policy.apply), while this lives as long as elsd. */
struct dial_conf {
	char address[300];
	char host[256];
	char group[72]; /* "" when none */
	uint16_t port;
	unsigned heartbeat_s;
};

struct els_dialout {
	struct dial_conf cf;
	const struct dial_conf *c;
	enum dial_state st;
	uint64_t due_ms;   /* D_WAIT: the next attempt; D_CONNECTING: the connect deadline */
	unsigned fails;	   /* failures in a row: the back-off's exponent */
	bool was_up;	   /* the last report was up (a down then is worth a monitor record) */
	bool told_failing; /* a failure after the last up was recorded */
	int fd;
	struct gaicb gcb;
	struct addrinfo hints;
	char port[8];
	uint64_t next_state_ms;
	char addr[300]; /* what we connect to, for messages */
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct els_dialout *els_dialout_new(const struct els_mgmt_conf *c)
{
	if (!c || !c->console_address)
		return NULL;
	struct els_dialout *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	snprintf(d->cf.address, sizeof(d->cf.address), "%s", c->console_address);
	snprintf(d->cf.host, sizeof(d->cf.host), "%s", c->console_host);
	snprintf(d->cf.group, sizeof(d->cf.group), "%s", c->console_group ? c->console_group : "");
	d->cf.port = c->console_port;
	d->cf.heartbeat_s = c->heartbeat_s;
	d->c = &d->cf;
	d->fd = -1;
	d->st = D_WAIT;
	d->due_ms = now_ms(); /* the first attempt at once */
	snprintf(d->port, sizeof(d->port), "%u", c->console_port);
	snprintf(d->addr, sizeof(d->addr), "%s", c->console_address);
	return d;
}

static void cancel_resolve(struct els_dialout *d)
{
	if (d->st != D_RESOLVING)
		return;
	gai_cancel(&d->gcb);
	/* A lookup that could not be cancelled finishes on its own thread; wait for it, since
	 * gcb lives here. Bounded by the resolver's own timeouts, at stop only. */
	const struct gaicb *l[1] = {&d->gcb};
	while (gai_error(&d->gcb) == EAI_INPROGRESS)
		gai_suspend(l, 1, &(struct timespec){0, 100000000});
	if (d->gcb.ar_result)
		freeaddrinfo(d->gcb.ar_result);
	d->gcb.ar_result = NULL;
}

void els_dialout_free(struct els_dialout *d)
{
	if (!d)
		return;
	cancel_resolve(d);
	if (d->fd >= 0)
		close(d->fd);
	free(d);
}

/* Full jitter: uniform in [1 s, cap], cap = 1 s * 2^fails up to 60 s. */
static void schedule_retry(struct els_dialout *d, const char *why)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	unsigned cap = BACKOFF_MIN_MS;
	for (unsigned i = 0; i < d->fails && cap < BACKOFF_MAX_MS; i++)
		cap *= 2;
	if (cap > BACKOFF_MAX_MS)
		cap = BACKOFF_MAX_MS;
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)now_ms() * 2654435761u;
	unsigned delay =
	    BACKOFF_MIN_MS + (cap > BACKOFF_MIN_MS ? r % (cap - BACKOFF_MIN_MS + 1) : 0);
	d->fails++;
	d->st = D_WAIT;
	d->due_ms = now_ms() + delay;
	els_log(ELS_LL_INFO, "console: %s: %s; next try in %u.%03u s", d->addr, why, delay / 1000,
		delay % 1000);
}

int els_dialout_fd(const struct els_dialout *d)
{
	return d && d->st == D_CONNECTING ? d->fd : -1;
}

short els_dialout_events(const struct els_dialout *d)
{
	(void)d;
	return POLLOUT;
}

int els_dialout_timeout_ms(const struct els_dialout *d)
{
	if (!d)
		return -1;
	uint64_t now = now_ms();
	switch (d->st) {
	case D_RESOLVING:
		return RESOLVE_POLL_MS;
	case D_WAIT:
	case D_CONNECTING:
		return d->due_ms > now ? (int)(d->due_ms - now) : 0;
	default:
		return d->next_state_ms > now ? (int)(d->next_state_ms - now) : 0;
	}
}

static void start_connect(struct els_dialout *d, const struct addrinfo *ai)
{
	char why[160];
	int fd = -1;
	for (; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		/* A peer that stops acknowledging is given up after 3 heartbeat intervals of
		 * unacknowledged data, and an idle one is probed, so a console that vanished
		 * (power, NAT state) is noticed without its help. */
		unsigned ut = 3 * d->c->heartbeat_s * 1000;
		int one = 1, idle = (int)d->c->heartbeat_s, cnt = 3;
		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof(ut));
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS)
			break;
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		snprintf(why, sizeof(why), "cannot connect: %s", strerror(errno));
		schedule_retry(d, why);
		return;
	}
	d->fd = fd;
	d->st = D_CONNECTING;
	d->due_ms = now_ms() + CONNECT_TIMEOUT_MS;
}

static void start_attempt(struct els_dialout *d)
{
	unsigned char tmp[16];
	const char *h = d->c->host;
	memset(&d->hints, 0, sizeof(d->hints));
	d->hints.ai_socktype = SOCK_STREAM;
	d->hints.ai_protocol = IPPROTO_TCP;
	if (inet_pton(AF_INET, h, tmp) == 1 || inet_pton(AF_INET6, h, tmp) == 1) {
		struct addrinfo *res = NULL;
		d->hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
		int rc = getaddrinfo(h, d->port, &d->hints, &res); /* numeric: no lookup */
		if (rc != 0) {
			schedule_retry(d, gai_strerror(rc));
			return;
		}
		start_connect(d, res);
		freeaddrinfo(res);
		return;
	}
	/* A name: looked up on the resolver's own thread, polled from the loop. */
	d->hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	memset(&d->gcb, 0, sizeof(d->gcb));
	d->gcb.ar_name = h;
	d->gcb.ar_service = d->port;
	d->gcb.ar_request = &d->hints;
	struct gaicb *list[1] = {&d->gcb};
	struct sigevent sev = {.sigev_notify = SIGEV_NONE};
	int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, &sev);
	if (rc != 0) {
		schedule_retry(d, gai_strerror(rc));
		return;
	}
	d->st = D_RESOLVING;
}

int els_dialout_step(struct els_dialout *d, short revents)
{
	if (!d)
		return -1;
	uint64_t now = now_ms();
	if (d->st == D_WAIT && now >= d->due_ms)
		start_attempt(d);
	if (d->st == D_RESOLVING) {
		int rc = gai_error(&d->gcb);
		if (rc == EAI_INPROGRESS)
			return -1;
		d->st = D_WAIT;
		if (rc != 0) {
			char why[160];
			snprintf(why, sizeof(why), "cannot resolve %.64s: %s", d->c->host,
				 gai_strerror(rc));
			schedule_retry(d, why);
			return -1;
		}
		struct addrinfo *res = d->gcb.ar_result;
		d->gcb.ar_result = NULL;
		start_connect(d, res);
		freeaddrinfo(res);
	}
	if (d->st != D_CONNECTING)
		return -1;
	if (!(revents & (POLLOUT | POLLERR | POLLHUP))) {
		if (now >= d->due_ms)
			schedule_retry(d, "connect timed out");
		return -1;
	}
	int err = 0;
	socklen_t el = sizeof(err);
	if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		err = errno;
	if (err) {
		char why[160];
		snprintf(why, sizeof(why), "cannot connect: %s", strerror(err));
		schedule_retry(d, why);
		return -1;
	}
	int fd = d->fd;
	d->fd = -1;
	d->st = D_HANDED;
	d->next_state_ms = 0; /* the state goes first, so that hello carries it */
	return fd;
}

void els_dialout_handed(struct els_dialout *d, bool ok)
{
	if (d && !ok)
		schedule_retry(d, "the management endpoint is not running");
}

bool els_dialout_report(struct els_dialout *d, bool up, const char *why)
{
	if (!d)
		return false;
	if (up) {
		d->st = D_UP;
		d->fails = 0;
		d->was_up = true;
		d->told_failing = false;
		els_log(ELS_LL_INFO, "console: connected to %s (%s)", d->addr, why);
		return true; /* every connection is recorded: they are rare */
	}
	if (d->st != D_HANDED && d->st != D_UP)
		return false; /* not ours (an old connection's late word) */
	bool record = d->was_up || !d->told_failing;
	d->was_up = false;
	d->told_failing = true;
	schedule_retry(d, why);
	return record;
}

bool els_dialout_state_due(struct els_dialout *d)
{
	if (!d || (d->st != D_HANDED && d->st != D_UP))
		return false;
	uint64_t now = now_ms();
	if (now < d->next_state_ms)
		return false;
	d->next_state_ms = now + d->c->heartbeat_s * 1000ull;
	return true;
}

const char *els_dialout_address(const struct els_dialout *d)
{
	return d->c->address;
}

const char *els_dialout_group(const struct els_dialout *d)
{
	return d->c->group[0] ? d->c->group : NULL;
}

bool els_dialout_connected(const struct els_dialout *d)
{
	return d && (d->st == D_UP || d->st == D_HANDED);
}
