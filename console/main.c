/* els-console: the fleet's management console (docs/console-admin.md). One process, one event
 * loop: the agent port (agents_port.c), the HTTPS API (http.c, with the routes of api_*.c and
 * web_*.c), the deployer (deployer.c), PostgreSQL (db.c). */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agents.h"
#include "console.h"
#include "db.h"
#include "deployer.h"
#include "els/log.h"
#include "http.h"
#include "routes.h"
#include "tls.h"

static const char usage_text[] =
    "Usage: els-console [-c FILE] [-d]\n"
    "       els-console -n [-c FILE]\n"
    "\n"
    "The ELS management console: agents (elsd with console.address set) dial in over mutual\n"
    "TLS 1.3; operators use its HTTPS API and pages with their client certificates; its\n"
    "state (agents, policies, deployments, the PPS registry, the audit trail) is in\n"
    "PostgreSQL, which several instances may share.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   configuration file (default " ELS_CONSOLE_CONF ")\n"
    "  -n, --check         check the configuration and the files it names (certificates,\n"
    "                      keys, CRLs), print every error as FILE:LINE: message, and exit:\n"
    "                      0 if valid, 1 if not. Does not connect to the database.\n"
    "  -d, --debug         log debug messages\n"
    "  -V, --version       print the version and exit\n"
    "  -h, --help          print this help and exit\n"
    "\n"
    "Signals: SIGTERM and SIGINT stop it (agents reconnect to another instance or to this\n"
    "one when it is back). Exit status: 0 after a stop, 1 on a configuration error, 3 when\n"
    "the database or a listener cannot be opened, 2 on a usage error.\n";

static void notify_systemd(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(sa.sun_path))
		return;
	size_t len = strlen(path);
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = 0;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
	       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	close(fd);
}

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct console *c = arg;
	els_log(ELS_LL_INFO, "signal %d: stopping", (int)sig);
	notify_systemd("STOPPING=1");
	event_base_loopexit(c->base, NULL);
}

/* -n: the file, then the TLS material it names (so a wrong key path is found before a
 * restart, not by it). */
static int check_tls(const struct console_conf *conf)
{
	const struct console_tls_conf *t[] = {&conf->agents, &conf->api};
	const char *names[] = {"agents", "api"};
	int rc = 0;
	for (size_t i = 0; i < 2; i++) {
		char err[512];
		SSL_CTX *ctx = console_tls_server_ctx(t[i], err, sizeof(err));
		if (!ctx) {
			fprintf(stderr, "%s: %s: %s\n", conf->path, names[i], err);
			rc = -1;
		}
		SSL_CTX_free(ctx);
	}
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'n'},
	    {"debug", no_argument, NULL, 'd'},	      {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},	      {0},
	};
	const char *config = ELS_CONSOLE_CONF;
	bool check = false;
	int opt, status = 0;

	els_log_set_program("els-console");
	while ((opt = getopt_long(argc, argv, "c:ndVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'n':
			check = true;
			break;
		case 'd':
			els_log_set_level(ELS_LL_DEBUG);
			break;
		case 'V':
			printf("els-console %s\n", ELS_VERSION);
			return 0;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			fputs("Try 'els-console --help'.\n", stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "els-console: unexpected argument '%s'\nTry 'els-console --help'.\n",
			argv[optind]);
		return 2;
	}

	struct els_diag d;
	struct console_conf *conf = NULL;
	els_diag_init(&d, config);
	int rc = console_conf_load(config, &conf, &d);
	els_diag_print(&d, stderr);
	els_diag_free(&d);
	if (rc < 0)
		return 1;
	if (check) {
		rc = check_tls(conf);
		if (rc == 0)
			printf("%s: configuration valid\n", config);
		console_conf_free(conf);
		return rc < 0 ? 1 : 0;
	}

	signal(SIGPIPE, SIG_IGN);
	struct console c = {.conf = conf, .name = conf->name};
	struct event *sigs[3] = {0};
	c.base = event_base_new();
	if (!c.base) {
		els_log(ELS_LL_ERROR, "cannot create the event loop");
		status = 3;
		goto out;
	}
	if (console_db_open(&c) < 0 || console_routes_register(&c) < 0 ||
	    console_agents_start(&c) < 0 || console_http_start(&c) < 0 ||
	    console_deployer_start(&c) < 0) {
		status = 3;
		goto out;
	}
	int signums[] = {SIGTERM, SIGINT};
	for (size_t i = 0; i < 2; i++) {
		sigs[i] = evsignal_new(c.base, signums[i], on_stop, &c);
		if (sigs[i])
			event_add(sigs[i], NULL);
	}
	els_log(ELS_LL_INFO, "console %s running (agents %s, api %s)", c.name,
		conf->agents.listen, conf->api.listen);
	notify_systemd("READY=1");
	event_base_dispatch(c.base);
out:
	for (size_t i = 0; i < 3; i++)
		if (sigs[i])
			event_free(sigs[i]);
	console_deployer_free(&c);
	console_http_free(&c);
	console_agents_free(&c);
	console_db_close(&c);
	if (c.base)
		event_base_free(c.base);
	console_conf_free(conf);
	return status;
}
