/* elsctl: the management console for elsd agents. Global options, then a subcommand from
 * the table in cmds.c. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console/console_client.h"
#include "elsctl.h"

#define DEFAULT_AGENT "127.0.0.1:" CTL_DEFAULT_PORT

static const char usage_head[] =
    "Usage: elsctl [OPTIONS] SUBCOMMAND [ARGS]\n"
    "       elsctl help SUBCOMMAND | elsctl SUBCOMMAND --help\n"
    "\n"
    "The console of the ELS agent (elsd): asks one agent, or a whole fleet at once, over\n"
    "mutually authenticated TLS 1.3 for its status, statistics, flows and monitor records,\n"
    "and changes its policy and its deny/allow lists.\n"
    "\n"
    "Subcommands:\n";

static const char usage_tail[] =
    "\n"
    "Options (before or after the subcommand):\n"
    "  -a, --agent HOST:PORT  the agent to ask (default $ELSCTL_AGENT, else " DEFAULT_AGENT ").\n"
    "                         HOST is a name or address; IPv6 as [ADDR]:PORT. The agent's\n"
    "                         certificate must name HOST (DNS or IP subjectAltName).\n"
    "  -A, --agents FILE      fleet mode: run the request against every agent in FILE, one\n"
    "                         HOST:PORT per line ('#' starts a comment), concurrently, and\n"
    "                         print one line per agent in file order:\n"
    "                           HOST:PORT ok SUMMARY\n"
    "                           HOST:PORT FAILED: REASON\n"
    "  -P, --parallel N       fleet mode: at most N agents at a time (1..256, default 16)\n"
    "      --console URL      speak to els-console at URL (https://HOST[:PORT], port 8443\n"
    "                         by default) instead of agents: fleet, drift, policy\n"
    "                         propose|approve|reject|list|show|diff|deploy|rollback, deploy,\n"
    "                         deployment, rollback GROUP, registry [add], audit (see\n"
    "                         `elsctl --console URL help` and docs/console-api.md). The\n"
    "                         console's certificate must name HOST and carry the console role.\n"
    "      --cert FILE        console certificate (default $ELSCTL_CERT, else\n"
    "                         ~/.config/elsctl/console.crt)\n"
    "      --key FILE         its private key, mode 0600 (default $ELSCTL_KEY, else\n"
    "                         ~/.config/elsctl/console.key)\n"
    "      --ca FILE          management CA certificate that issued the agents'\n"
    "                         certificates (default $ELSCTL_CA, else ~/.config/elsctl/ca.crt)\n"
    "      --crl FILE         the CA's revocation list: an agent whose certificate it lists is\n"
    "                         refused (default $ELSCTL_CRL, else crl.pem beside the --ca file\n"
    "                         when there is one; without a CRL, revocation is not checked).\n"
    "                         An unreadable or expired CRL stops elsctl before it dials.\n"
    "  -j, --json             print the result as JSON (fleet mode: one JSON object per\n"
    "                         line: {\"agent\", \"ok\", \"result\" or \"error\"})\n"
    "  -t, --timeout S        seconds to wait for the connection and for each answer\n"
    "                         (1..3600, default 10)\n"
    "  -V, --version          print the version and exit\n"
    "  -h, --help             print this help and exit\n"
    "\n"
    "Roles: an auditor certificate may run status, stats, policy get/check, list get, flows\n"
    "and log; policy apply/rollback and list add/del need an admin certificate.\n"
    "\n"
    "Exit status:\n"
    "  0  success (fleet mode: on every agent)\n"
    "  1  the agent refused or failed the request: invalid policy, forbidden, conflict, ...\n"
    "     (also: `policy check` found errors, `list add/del` had invalid entries)\n"
    "  2  usage error: bad option or argument, unreadable policy or fleet file\n"
    "  3  no answer: cannot connect, TLS or certificate failure (ours or the agent's),\n"
    "     timeout, malformed answer\n"
    "  4  fleet mode: some agents succeeded and some failed (when all fail: 1 if any agent\n"
    "     answered with an error, else 3)\n"
    "\n"
    "Examples:\n"
    "  elsctl --agent web1.example.net:" CTL_DEFAULT_PORT " status\n"
    "  elsctl --agents web.fleet policy apply web.conf\n"
    "  elsctl --agent 192.0.2.11:" CTL_DEFAULT_PORT " list add deny 198.51.100.0/24 203.0.113.9\n"
    "  elsctl --json log --kind drop --since 15m --limit 20\n"
    "\n"
    "See docs/elsctl.md and docs/management-protocol.md.\n";

void ctl_usage(FILE *out)
{
	fputs(usage_head, out);
	for (const struct ctl_cmd *t = ctl_cmds; t->name; t++)
		fprintf(out, "  %-10s %s\n", t->name, t->help);
	fputs(usage_tail, out);
}

static int usage_fail(const char *msg, const char *arg)
{
	fprintf(stderr, "elsctl: %s%s\nTry 'elsctl --help'.\n", msg, arg ? arg : "");
	return CTL_EXIT_USAGE;
}

/* $ELSCTL_x, else ~/.config/elsctl/NAME ($XDG_CONFIG_HOME honoured). */
static const char *default_path(const char *env, const char *name, char *buf, size_t len)
{
	const char *v = getenv(env), *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

	if (v && *v)
		return v;
	if (xdg && *xdg)
		snprintf(buf, len, "%s/elsctl/%s", xdg, name);
	else
		snprintf(buf, len, "%s/.config/elsctl/%s", home ? home : "", name);
	return buf;
}

/* $ELSCTL_CRL, else crl.pem beside the CA file (the console's PKI directory, or an els-pki
 * CA directory), when it exists. A CRL named explicitly must exist: ctl_tls_ctx_new says so. */
static const char *default_crl(const char *ca, char *buf, size_t len)
{
	const char *v = getenv("ELSCTL_CRL"), *slash = strrchr(ca, '/');

	if (v && *v)
		return v;
	if (slash)
		snprintf(buf, len, "%.*s/crl.pem", (int)(slash - ca), ca);
	else
		snprintf(buf, len, "crl.pem");
	return access(buf, F_OK) == 0 ? buf : NULL;
}

static int parse_num(const char *s, long min, long max, unsigned *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

enum { OPT_CERT = 256, OPT_KEY, OPT_CA, OPT_CRL, OPT_CONSOLE };
static const struct option global_opts[] = {
    {"agent", required_argument, NULL, 'a'},
    {"agents", required_argument, NULL, 'A'},
    {"parallel", required_argument, NULL, 'P'},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"ca", required_argument, NULL, OPT_CA},
    {"crl", required_argument, NULL, OPT_CRL},
    {"console", required_argument, NULL, OPT_CONSOLE},
    {"json", no_argument, NULL, 'j'},
    {"timeout", required_argument, NULL, 't'},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {0},
};
#define GLOBAL_SHORT "a:A:P:jt:"

/* One global option: -1 to go on, else the exit status to return now. */
static int apply_global(struct ctl *c, int ch)
{
	switch (ch) {
	case 'a':
		c->agent = optarg;
		break;
	case 'A':
		c->agents_file = optarg;
		break;
	case 'P':
		if (parse_num(optarg, 1, CTL_MAX_PARALLEL, &c->parallel) < 0)
			return usage_fail("--parallel: need 1..256, got ", optarg);
		break;
	case OPT_CONSOLE:
		c->console = optarg;
		break;
	case OPT_CERT:
		c->tls.cert = optarg;
		break;
	case OPT_KEY:
		c->tls.key = optarg;
		break;
	case OPT_CA:
		c->tls.ca = optarg;
		break;
	case OPT_CRL:
		c->tls.crl = optarg;
		break;
	case 'j':
		c->json = true;
		break;
	case 't':
		if (parse_num(optarg, 1, 3600, &c->tls.timeout_s) < 0)
			return usage_fail("--timeout: need 1..3600 seconds, got ", optarg);
		break;
	case 'V':
		printf("elsctl %s (protocol 1)\n", ELS_VERSION);
		return CTL_EXIT_OK;
	case 'h':
		ctl_usage(stdout);
		return CTL_EXIT_OK;
	default:
		fputs("Try 'elsctl --help'.\n", stderr);
		return CTL_EXIT_USAGE;
	}
	return -1;
}

/* Which global option (other than --version and --help, which after a subcommand ask about
 * the subcommand) argv[i] is, and whether it takes its value from argv[i + 1]. 0: none. */
static int global_at(char *argv[], int i, bool *takes_next)
{
	const char *a = argv[i];

	*takes_next = false;
	if (a[0] == '-' && a[1] == '-' && a[2]) {
		size_t n = strcspn(a + 2, "=");
		for (const struct option *o = global_opts; o->name; o++) {
			if (o->val == 'V' || o->val == 'h' || strlen(o->name) != n ||
			    strncmp(o->name, a + 2, n))
				continue;
			*takes_next = o->has_arg == required_argument && !a[2 + n];
			return o->val;
		}
		return 0;
	}
	if (a[0] == '-' && a[1] && a[1] != '-' && strchr(GLOBAL_SHORT, a[1]) && a[1] != ':') {
		*takes_next = a[1] != 'j' && !a[2];
		return a[1] == 'j' && a[2] ? 0 : a[1];
	}
	return 0;
}

/* Options after the subcommand: the global ones (--json, --agent, ...) move in front of it, so
 * `elsctl status --agent X` means `elsctl --agent X status`. No subcommand has a short option
 * among a, A, P, j, t. Stops at "--". Returns the new index of the subcommand. */
static int hoist_globals(int argc, char *argv[], int sub)
{
	for (int i = sub + 1; i < argc && strcmp(argv[i], "--"); i++) {
		bool next;
		int n;

		if (!global_at(argv, i, &next))
			continue;
		n = next && i + 1 < argc ? 2 : 1;
		/* rotate argv[sub .. i+n-1] so that the n option words come first */
		for (int k = 0; k < n; k++) {
			char *w = argv[i + k];
			memmove(&argv[sub + k + 1], &argv[sub + k],
				(size_t)(i - sub) * sizeof(*argv));
			argv[sub + k] = w;
		}
		sub += n;
		i += n - 1;
	}
	return sub;
}

int main(int argc, char *argv[])
{
	struct ctl c = {
	    .default_port = CTL_DEFAULT_PORT,
	    .parallel = CTL_DEFAULT_PARALLEL,
	    .tls.timeout_s = CTL_DEFAULT_TIMEOUT,
	};
	const struct ctl_cmd *cmd;
	int ch, rc;

	/* A dropped connection must be an error message, not a silent death by SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	/* '+': stop at the subcommand; its own options are its business. */
	while ((ch = getopt_long(argc, argv, "+" GLOBAL_SHORT "Vh", global_opts, NULL)) != -1)
		if ((rc = apply_global(&c, ch)) >= 0)
			return rc;
	if (optind < argc) {
		/* Global options after the subcommand: moved before it, then parsed as if they
		 * had been there, with argv[sub - 1] standing in for argv[0]. */
		int sub = optind, end = hoist_globals(argc, argv, sub);
		char *saved = argv[sub - 1];

		argv[sub - 1] = argv[0];
		optind = 0;
		while ((ch = getopt_long(end - sub + 1, argv + sub - 1, "+" GLOBAL_SHORT "Vh",
					 global_opts, NULL)) != -1)
			if ((rc = apply_global(&c, ch)) >= 0)
				return rc;
		argv[sub - 1] = saved;
		optind = end;
	}
	if (optind >= argc)
		return usage_fail("no subcommand given", NULL);
	if (c.agent && c.agents_file)
		return usage_fail("--agent and --agents exclude each other", NULL);
	if (c.console && (c.agent || c.agents_file))
		return usage_fail("--console and --agent/--agents exclude each other", NULL);
	if (!c.agent && !c.agents_file && !c.console) {
		c.agent = getenv("ELSCTL_AGENT");
		if (!c.agent || !*c.agent)
			c.agent = DEFAULT_AGENT;
	}
	if (!c.tls.cert)
		c.tls.cert =
		    default_path("ELSCTL_CERT", "console.crt", c.cert_buf, sizeof(c.cert_buf));
	if (!c.tls.key)
		c.tls.key = default_path("ELSCTL_KEY", "console.key", c.key_buf, sizeof(c.key_buf));
	if (!c.tls.ca)
		c.tls.ca = default_path("ELSCTL_CA", "ca.crt", c.ca_buf, sizeof(c.ca_buf));
	if (!c.tls.crl)
		c.tls.crl = default_crl(c.tls.ca, c.crl_buf, sizeof(c.crl_buf));
	if (c.console)
		return ctl_console_main(&c, argc - optind, argv + optind);
	cmd = ctl_cmd_find(argv[optind]);
	if (!cmd) {
		fprintf(stderr, "elsctl: unknown subcommand '%s'\nTry 'elsctl --help'.\n",
			argv[optind]);
		return CTL_EXIT_USAGE;
	}
	return cmd->fn(&c, argc - optind, argv + optind);
}
