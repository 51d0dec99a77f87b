/* elsctl subcommands: the table, help, and what every subcommand shares (argument checks,
 * reading result fields). The subcommands themselves are in policy/cmd_*.c and
 * state/cmd_*.c: each turns its arguments into one protocol request and knows how to show the
 * answer to a person and summarise it on a fleet line. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "els/monitor.h"
#include "elsctl.h"

json_int_t ctl_jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? json_integer_value(v) : -1;
}

const char *ctl_jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "-";
}

/* The first 12 hex digits: enough to tell policies apart on a line. */
const char *ctl_short_hash(const char *h, char *buf)
{
	snprintf(buf, 13, "%s", h);
	return buf;
}

int ctl_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("elsctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'elsctl %s --help'.\n", cmd);
	return CTL_EXIT_USAGE;
}

/* getopt has said what was wrong with the option. */
int ctl_bad_option(const char *cmd)
{
	fprintf(stderr, "Try 'elsctl %s --help' or 'elsctl --help'.\n", cmd);
	return CTL_EXIT_USAGE;
}

/* Parses the options of a subcommand that has none but --help. Returns -1 to go on. */
int ctl_no_options(const struct ctl_cmd *cmd, int argc, char *argv[], int max_args)
{
	static const struct option lo[] = {{"help", no_argument, NULL, 'h'}, {0}};
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		if (ch == 'h') {
			fputs(cmd->usage, stdout);
			return CTL_EXIT_OK;
		}
		return ctl_bad_option(cmd->name);
	}
	if (argc - optind > max_args)
		return ctl_usage_error(cmd->name, "unexpected argument '%s'",
				       argv[optind + max_args]);
	return -1;
}

int ctl_parse_uint(const char *s, long long min, long long max, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return !errno && end != s && !*end && *out >= min && *out <= max ? 0 : -EINVAL;
}

int ctl_dispatch(const struct ctl_cmd *table, const char *group, struct ctl *c, int argc,
		 char *argv[])
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		fputs(ctl_cmd_find(group)->usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
	}
	for (const struct ctl_cmd *t = table; t->name; t++)
		if (!strcmp(t->name, argv[1]))
			return t->fn(c, argc - 1, argv + 1);
	return ctl_usage_error(group, "unknown subcommand '%s'", argv[1]);
}

/* ---- help ---- */

static int cmd_help(struct ctl *c, int argc, char *argv[]);

#define TARGETS "Runs against --agent, or every agent of --agents (one line per agent).\n"

const struct ctl_cmd ctl_cmds[] = {
    {"status", cmd_status, "version, uptime, policy generation and hash, queue counters",
     "Usage: elsctl [OPTIONS] status\n\n"
     "Shows the agent's host name, elsd version and uptime, the running policy generation\n"
     "and the SHA-256 of its file, the monitor's counters, who the agent thinks you are, and\n"
     "a table of per-queue packet counters. Role: auditor.\n" TARGETS
     "Fleet line: generation N sha256 PREFIX elsd VERSION up UPTIME\n"},
    {"stats", cmd_stats, "packets accepted and dropped per handler",
     "Usage: elsctl [OPTIONS] stats\n\n"
     "Shows the running chain and, for each handler, how many packets' final verdict it\n"
     "decided since elsd started (\"decode\": rejected by the decoder; \"chain\": no handler\n"
     "decided). Role: auditor.\n" TARGETS "Fleet line: generation N accepted A dropped D\n"},
    {"policy", cmd_policy, "get, check, apply or roll back the policy file",
     "Usage: elsctl [OPTIONS] policy get\n"
     "       elsctl [OPTIONS] policy check [--remote] FILE\n"
     "       elsctl [OPTIONS] policy apply [--expect-sha256 HASH] FILE\n"
     "       elsctl [OPTIONS] policy rollback\n"
     "       elsctl policy suggest ...   (= elsctl suggest: see `elsctl help suggest`)\n"
     "       elsctl policy report ...    (= elsctl registry: see `elsctl help registry`)\n\n"
     "get       Print the agent's config file as it is on disk (redirect it to a file to\n"
     "          edit it). A note on stderr says if the file differs from the running policy.\n"
     "          Role: auditor.\n"
     "check     Validate FILE here with the same loader elsd uses, printing every error as\n"
     "          FILE:LINE: message (no agent is contacted; list files resolve from FILE's\n"
     "          directory). Exit 0 if valid, 1 if not.\n"
     "          --remote: send FILE to the agent(s) instead (policy.validate), which load it\n"
     "          as a reload would, with the agent's list files. Role: auditor.\n"
     "apply     Send FILE to the agent(s). Each builds the new policy aside; only if all of it\n"
     "          is valid does it keep the old file as <config>.prev, write FILE atomically as\n"
     "          its config (so it survives a restart) and switch to it. Errors are listed as\n"
     "          FILE:LINE: message and nothing changes. Role: admin.\n"
     "          --expect-sha256 HASH: apply only where the agent's file still has this hash\n"
     "          (from `policy get --json`); otherwise that agent answers \"conflict\".\n"
     "rollback  Make <config>.prev the running policy again (a second rollback undoes the\n"
     "          first). Same as `elsctl rollback`. Role: admin.\n\n" TARGETS
     "Fleet lines: apply and rollback: generation N sha256 PREFIX [(unchanged)];\n"
     "check --remote: valid sha256 PREFIX; get: generation N sha256 PREFIX.\n"},
    {"rollback", cmd_rollback, "same as `policy rollback`",
     "Usage: elsctl [OPTIONS] rollback\n\n"
     "Makes the agent's previous policy (<config>.prev) the running policy and config file\n"
     "again, keeping the replaced one as <config>.prev. Role: admin.\n" TARGETS},
    {"list", cmd_list, "show or edit the managed deny/allow list",
     "Usage: elsctl [OPTIONS] list get deny|allow\n"
     "       elsctl [OPTIONS] list add [--dry-run] deny|allow ADDR...\n"
     "       elsctl [OPTIONS] list del [--dry-run] deny|allow ADDR...\n\n"
     "The managed list file is the first of iplist.deny_files (or allow_files) in the\n"
     "agent's config; entries written inline in the config are not managed here.\n"
     "get   Print the file's entries in canonical form after a '#' header line, so the\n"
     "      output is itself a valid list file. Role: auditor.\n"
     "add   Add each ADDR (an address or CIDR) and reload, as one step. One line per ADDR:\n"
     "      \"added 198.19.1.0/24\", \"duplicate 198.19.1.0/24\" or \"invalid ADDR: why\".\n"
     "del   Remove each ADDR and reload: \"removed ADDR\" or \"not found ADDR\".\n"
     "      Role for add and del: admin. Invalid entries do not stop the valid ones, but\n"
     "      make elsctl exit 1.\n"
     "--dry-run  report what would happen; change nothing.\n\n" TARGETS
     "Fleet line: generation N added A duplicate D ... (counts per outcome).\n"},
    {"flows", cmd_flows, "live flows in the agent's flow tables",
     "Usage: elsctl [OPTIONS] flows [-l, --limit N]\n\n"
     "A snapshot of live flows: protocol, initiator (SRC, SPORT), responder (DST, DPORT),\n"
     "direction of the first packet, state, age, idle time, packets and bytes (initiator/\n"
     "responder), the permit rule that admitted it and the queue. At most N flows\n"
     "(1..10000, default 100). Role: auditor.\n" TARGETS "Fleet line: N flows generation G\n"},
    {"log", cmd_log, "query the agent's monitor file (as els-log does a local one)",
     "Usage: elsctl [OPTIONS] log [FILTERS] [--limit N] [--follow] [--json]\n"
     "       elsctl [OPTIONS] log top --by port|src|reason|permit [FILTERS] [--limit N]\n\n"
     "Prints the newest N (default 50) monitor records of the agent that match every filter,\n"
     "oldest first so the newest is last, as tail(1) does: the same rows, order, table and\n"
     "JSON as `els-log` on that file (docs/forensics.md, \"Queries\"). Role: auditor.\n"
     "Filters (a comma list or a repeated option matches any value):\n"
     "  -k, --kind K       " ELS_REC_KIND_LIST "\n"
     "  -v, --verdict V    accept or drop\n"
     "      --addr CIDR    source or destination inside CIDR (or one address; IPv6 in any\n"
     "                     spelling)\n"
     "  -p, --port N       source or destination port\n"
     "  -r, --reason R     a reason elsd records (no_permit, deny_list, out_of_state, ...)\n"
     "  -H, --handler H    iplist, tracker, header_filter, anomaly, scan, or decode, chain,\n"
     "                     elsd, queue, mgmt, monitor\n"
     "  -s, --since TIME, -u, --until TIME\n"
     "                     @EPOCH, an age (90s, 15m, 1h, 2d, 1w), or UTC\n"
     "                     YYYY-MM-DD[THH:MM[:SS[.FFF]]][Z]; --until is exclusive\n"
     "      --before-seq S, --after-seq S   records older / newer than record S\n"
     "  -l, --limit N      the newest N matching records; with top: N entries (default 10)\n"
     "  -f, --follow       then print new records as they come (asks every 2 s; one agent)\n"
     "  -j, --json         NDJSON, one record per line, every column (also: elsctl --json log)\n"
     "top: packets and records per destination port, source, reason or permit, biggest\n"
     "first. A bad value is a usage error naming it (exit 2).\n" TARGETS "Fleet line: N rows\n"},
    {"registry", cmd_registry, "PPS registry report of a local config (no agent)",
     "Usage: elsctl registry [-c CONF] [--monitor FILE] [--json]\n\n"
     "Prints every permit of CONF (default /etc/elsd/elsd.conf) with its ports and their\n"
     "IANA service names, addresses, mode, session gate, expiry, justification, owner,\n"
     "category, mitigations, and hits (flows admitted, last admission) from the monitor\n"
     "file (--monitor, default the config's monitor.path). Same as `elsd --report`.\n"
     "--json (before or after the subcommand): one JSON object, as `elsd --report --json`.\n"
     "Exit 0, or 1 when a permit has expired. See docs/els-policy.md.\n"},
    {"suggest", cmd_suggest, "propose a policy from an observe-mode monitor file (no agent)",
     "Usage: elsctl suggest [--base CONF] MONITOR\n\n"
     "Reads the would_drop and admit records of MONITOR (a run with header_filter\n"
     "mode = \"observe\") and prints a config whose permits admit that traffic: grouped by\n"
     "direction, protocol and service port (or ICMP type), remotes widened to networks,\n"
     "with counts in comments. --base: take every other setting from CONF. Remotes the\n"
     "chain flagged (scan or anomaly records, deny_list drops, the base's iplist.deny, more\n"
     "closed ports probed than scan.ports) are left out, and comments say which. Check the\n"
     "result with `elsd -n -c FILE`. See docs/els-policy.md.\n"},
    {"audit", cmd_audit, "listening sockets against the policy (no agent)",
     "Usage: elsctl audit [-c CONF]\n\n"
     "Lists this host's listening TCP and UDP sockets (IPv4 and IPv6, via netlink\n"
     "sock_diag, with the owning process where /proc is readable) against the inbound\n"
     "permits of CONF: NOT-PERMITTED (listening, no permit reaches it), permitted, loopback,\n"
     "and UNUSED-PERMIT (a permitted port where nothing listens). Run it in the network\n"
     "namespace elsd filters. Exit 0 when nothing is flagged, 1 otherwise. --json before the\n"
     "subcommand gives a JSON array.\n"},
    {"sweep", cmd_sweep, "run the agent's forensic sweep to PostgreSQL now",
     "Usage: elsctl [OPTIONS] sweep\n\n"
     "Asks the agent to start its sweep (management.sweep_command, default els-sweep) now\n"
     "instead of at the next timer run. Answers busy while a sweep runs. The sweep's end and\n"
     "exit status become a monitor event. Role: admin.\n" TARGETS
     "Fleet line: sweep started pid N\n"},
    {"help", cmd_help, "help on a subcommand", "Usage: elsctl help [SUBCOMMAND]\n"},
    {0},
};

const struct ctl_cmd *ctl_cmd_find(const char *name)
{
	for (const struct ctl_cmd *t = ctl_cmds; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

static int cmd_help(struct ctl *c, int argc, char *argv[])
{
	const struct ctl_cmd *t;

	(void)c;
	if (argc < 2) {
		ctl_usage(stdout);
		return CTL_EXIT_OK;
	}
	t = ctl_cmd_find(argv[1]);
	if (!t)
		return ctl_usage_error("help", "no subcommand '%s'", argv[1]);
	fputs(t->usage, stdout);
	return CTL_EXIT_OK;
}
