/* elsd: the ELS endpoint agent. Options, --check, --get, --report, --replay; the daemon itself
 * is agent/daemon.c. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libconfig.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "ctlsock.h"
#include "daemon.h"
#include "els/lint.h"
#include "els/policy.h"
#include "els/registry.h"
#include "generation.h"
#include "mgmt.h"
#include "owner_caps.h"
#include "replay.h"
#include "sessions.h"
#include "worker.h"

#define DEFAULT_CONFIG "/etc/elsd/elsd.conf"
#define MAX_LOCAL      64

static const char usage_text[] =
    "Usage: elsd [OPTIONS]\n"
    "       elsd -n [--strict] [-c FILE]\n"
    "       elsd --reload [--control-socket PATH]\n"
    "       elsd --replay CAPTURE [-c FILE] [--local CIDR]... [--verdicts]\n"
    "\n"
    "The ELS endpoint agent: judges every packet that netfilter steers to its NFQUEUE\n"
    "queues against an allow/deny list, a ports-and-protocols policy (deny all, permit by\n"
    "exception, inbound and outbound) and a stateful flow tracker, and records its verdicts\n"
    "in a SQLite monitor file. Only headers are read; payloads never are.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE     configuration file (default " DEFAULT_CONFIG ")\n"
    "  -n, --check           check the configuration, print every error as\n"
    "                        FILE:LINE: message, and exit: 0 if valid, 1 if not.\n"
    "                        Also warns (FILE:LINE: warning: ...) about permits that\n"
    "                        are valid but likely mistakes: inbound proto \"any\" or\n"
    "                        any local port, duplicates, permits an earlier one shadows,\n"
    "                        permits without an id, strings joined for want of a comma,\n"
    "                        service/exe-bound permits elsd lacks the capabilities for;\n"
    "                        and names each established TCP connection of this host\n"
    "                        that the policy would cut (\"warning: ...\")\n"
    "      --strict          with -n: warnings make the check fail (exit 1)\n"
    "      --reload          ask the running elsd to reload its configuration and wait\n"
    "                        for the outcome: print the new generation and exit 0, or\n"
    "                        print why the file was rejected (FILE:LINE: message) on\n"
    "                        stderr and exit 1 (the running policy stays); exit 3 when\n"
    "                        no elsd answers. Root only. systemctl reload runs this.\n"
    "      --control-socket PATH\n"
    "                        the local control socket elsd creates and --reload uses\n"
    "                        (default " ELS_CTLSOCK_DEFAULT "; \"none\": no socket)\n"
    "      --monitor FILE    write records to FILE instead of the config's monitor.path\n"
    "      --replay CAPTURE  judge the packets of a pcap file (Ethernet, raw IP or Linux\n"
    "                        cooked) instead of live queues, recording them as for live\n"
    "                        traffic in replay-NAME.db in the current directory (NAME: the\n"
    "                        capture's name without its extension; key monitor.key beside\n"
    "                        it), or in --monitor FILE; never in the config's monitor.path\n"
    "                        nor a file a running elsd writes. Needs no privileges.\n"
    "      --local CIDR      with --replay: this host's addresses (repeatable), to tell\n"
    "                        inbound from outbound; default: the config's local_addresses\n"
    "      --verdicts        with --replay: print one line per packet:\n"
    "                        N DIR VERDICT HANDLER REASON proto=P src=ADDR[:PORT]\n"
    "                        dst=ADDR[:PORT] rule=ID [rule_name=NAME]; with -j: one JSON\n"
    "                        object per packet (docs/replay.md, \"Verdict lines\")\n"
    "      --services FILE   services database for port names (default /etc/services)\n"
    "      --handlers        list the handlers a chain may name, and exit (with -j: as\n"
    "                        a JSON array of {name, summary})\n"
    "      --report          check the configuration, then print the PPS registry: every\n"
    "                        permit with its IANA service names, metadata, expiry, and\n"
    "                        hits from the monitor file (--monitor or monitor.path); exit\n"
    "                        0, or 4 when a permit has expired (docs/els-policy.md)\n"
    "  -j, --json            with --report: print the registry as one JSON object;\n"
    "                        with --handlers: the list as JSON; with --verdicts: NDJSON\n"
    "      --get SETTING     check the configuration, then print one setting's value\n"
    "                        (queues, fail_open, offload and syn_guard with their defaults\n"
    "                        applied; others, such as management.listen, as written,\n"
    "                        nothing if absent) and exit; for scripts such as els-rules.\n"
    "                        A name that is no setting of elsd.conf is an error (exit 1)\n"
    "  -V, --version         print the version and exit\n"
    "  -h, --help            print this help and exit\n"
    "\n"
    "Signals: SIGHUP reloads the configuration (a bad file keeps the running policy and logs\n"
    "why; --reload also reports it); SIGTERM and SIGINT stop cleanly, answering every\n"
    "queued packet first.\n"
    "\n"
    "Exit status: 0 on a clean stop or a valid check, 1 on a configuration error,\n"
    "2 on a usage error, 3 when the queues or the monitor cannot be opened.\n";

struct options {
	const char *config;
	const char *monitor;
	const char *replay;
	const char *services;
	const char *get;
	const char *control; /* the control socket; NULL: none */
	struct els_cidr local[MAX_LOCAL];
	unsigned nlocal;
	bool check, verdicts, report, json, strict, handlers, reload;
};

static void print_handlers(bool json)
{
	json_t *a = json ? json_array() : NULL;

	for (const struct els_handler *const *h = els_handler_all(); *h; h++)
		if (a)
			json_array_append_new(a, json_pack("{s:s, s:s}", "name", (*h)->name,
							   "summary", (*h)->summary));
		else
			printf("%-14s %s\n", (*h)->name, (*h)->summary);
	if (a) {
		json_dumpf(a, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(a);
	}
}

static void parse_args(int argc, char **argv, struct options *o)
{
	enum {
		OPT_MONITOR = 256,
		OPT_REPLAY,
		OPT_LOCAL,
		OPT_VERDICTS,
		OPT_SERVICES,
		OPT_HANDLERS,
		OPT_GET,
		OPT_REPORT,
		OPT_STRICT,
		OPT_RELOAD,
		OPT_CONTROL
	};
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check", no_argument, NULL, 'n'},
	    {"strict", no_argument, NULL, OPT_STRICT},
	    {"monitor", required_argument, NULL, OPT_MONITOR},
	    {"replay", required_argument, NULL, OPT_REPLAY},
	    {"local", required_argument, NULL, OPT_LOCAL},
	    {"verdicts", no_argument, NULL, OPT_VERDICTS},
	    {"services", required_argument, NULL, OPT_SERVICES},
	    {"handlers", no_argument, NULL, OPT_HANDLERS},
	    {"get", required_argument, NULL, OPT_GET},
	    {"report", no_argument, NULL, OPT_REPORT},
	    {"json", no_argument, NULL, 'j'},
	    {"reload", no_argument, NULL, OPT_RELOAD},
	    {"control-socket", required_argument, NULL, OPT_CONTROL},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	int c;
	const char *why;

	o->config = DEFAULT_CONFIG;
	o->control = ELS_CTLSOCK_DEFAULT;
	while ((c = getopt_long(argc, argv, "c:njVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'n':
			o->check = true;
			break;
		case OPT_STRICT:
			o->strict = true;
			break;
		case OPT_MONITOR:
			o->monitor = optarg;
			break;
		case OPT_REPLAY:
			o->replay = optarg;
			break;
		case OPT_LOCAL:
			if (o->nlocal == MAX_LOCAL) {
				fprintf(stderr, "elsd: at most %d --local options\n", MAX_LOCAL);
				exit(2);
			}
			if (els_cidr_parse(optarg, &o->local[o->nlocal], &why) < 0) {
				fprintf(stderr, "elsd: --local %s: %s\n", optarg, why);
				exit(2);
			}
			o->nlocal++;
			break;
		case OPT_VERDICTS:
			o->verdicts = true;
			break;
		case OPT_SERVICES:
			o->services = optarg;
			break;
		case OPT_REPORT:
			o->report = true;
			break;
		case 'j':
			o->json = true;
			break;
		case OPT_GET:
			o->get = optarg;
			break;
		case OPT_RELOAD:
			o->reload = true;
			break;
		case OPT_CONTROL:
			o->control = strcmp(optarg, "none") == 0 ? NULL : optarg;
			break;
		case OPT_HANDLERS:
			o->handlers = true;
			break;
		case 'V':
			printf("elsd %s\n", ELS_VERSION);
			exit(0);
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			fputs("Try 'elsd --help'.\n", stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "elsd: unexpected argument '%s'\nTry 'elsd --help'.\n",
			argv[optind]);
		exit(2);
	}
	if (o->reload && (o->check || o->replay || o->report || o->get)) {
		fprintf(stderr, "elsd: --reload goes alone (with --control-socket)\n");
		exit(2);
	}
	if (o->reload && !o->control) {
		fprintf(stderr, "elsd: --reload needs a control socket\n");
		exit(2);
	}
	if ((o->nlocal || o->verdicts) && !o->replay) {
		fprintf(stderr, "elsd: --local and --verdicts only apply to --replay\n");
		exit(2);
	}
	if (o->strict && !o->check) {
		fprintf(stderr, "elsd: --strict only applies to -n\nTry 'elsd --help'.\n");
		exit(2);
	}
	if (o->json && !o->report && !o->handlers && !o->verdicts) {
		fprintf(stderr, "elsd: --json only applies to --report, --handlers and "
				"--verdicts\nTry 'elsd --help'.\n");
		exit(2);
	}
	if (o->handlers) {
		print_handlers(o->json);
		exit(0);
	}
}

static struct els_policy *load(const struct options *o)
{
	return els_policy_load_report(o->config, o->services, stderr);
}

/* --get: one value for a shell script. queues, fail_open, offload and syn_guard come from the checked
 * policy, so that their defaults live in one place; anything else is read as written. */
static int print_setting(const struct els_policy *p, const char *name)
{
	if (strcmp(name, "queues") == 0) {
		printf("%u", p->set.queue_first);
		if (p->set.queue_last != p->set.queue_first)
			printf("-%u", p->set.queue_last);
		putchar('\n');
		return 0;
	}
	if (strcmp(name, "fail_open") == 0) {
		puts(p->set.fail_open ? "true" : "false");
		return 0;
	}
	if (strcmp(name, "offload") == 0) {
		puts(p->set.offload ? "true" : "false");
		return 0;
	}
	if (strcmp(name, "syn_guard") == 0) {
		/* "443,8443" (empty: none), the form els-rules writes into its rules */
		for (unsigned i = 0; i < p->set.nsyn_guard; i++)
			printf("%s%u", i ? "," : "", p->set.syn_guard[i]);
		putchar('\n');
		return 0;
	}
	config_t cfg;
	char *dir = strdup(p->path);
	int rc = 1;
	config_init(&cfg);
	if (!dir)
		goto out;
	config_set_include_dir(&cfg, dirname(dir));
	if (!config_read_file(&cfg, p->path))
		goto out;
	const config_setting_t *s = config_lookup(&cfg, name);
	rc = 0;
	if (!s) {
		/* Absent: its default applies, and a script reads nothing. A misspelt name is
		 * the caller's mistake, not a setting left at its default. */
		char top[64];
		snprintf(top, sizeof(top), "%.*s", (int)strcspn(name, "."), name);
		if (!els_policy_key_known(top)) {
			fprintf(stderr,
				"elsd: --get %s: no such setting in elsd.conf (see elsd.conf(5))\n",
				name);
			rc = 1;
		}
		goto out;
	}
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		printf("%lld\n", config_setting_get_int64(s));
		break;
	case CONFIG_TYPE_FLOAT:
		printf("%g\n", config_setting_get_float(s));
		break;
	case CONFIG_TYPE_BOOL:
		puts(config_setting_get_bool(s) ? "true" : "false");
		break;
	case CONFIG_TYPE_STRING:
		puts(config_setting_get_string(s));
		break;
	default:
		fprintf(stderr, "elsd: --get %s: not a single value\n", name);
		rc = 1;
	}
out:
	if (rc && !dir)
		fprintf(stderr, "elsd: out of memory\n");
	config_destroy(&cfg);
	free(dir);
	return rc;
}

/* The file a replay records into: --monitor, or replay-NAME.db here. Caller frees. */
static char *replay_monitor_path(const struct options *o)
{
	char *copy, *name, *dot, *out = NULL;

	if (o->monitor)
		return strdup(o->monitor);
	copy = strdup(o->replay);
	if (!copy)
		return NULL;
	name = basename(copy);
	dot = strrchr(name, '.');
	if (dot && dot != name)
		*dot = '\0';
	if (asprintf(&out, "replay-%s.db", name) < 0)
		out = NULL;
	free(copy);
	return out;
}

/* Same file: same inode when both exist, else the same path as written. */
static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
		return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	return strcmp(a, b) == 0;
}

/* --reload: the running elsd reloads and says how it went (agent/ctlsock.h). A reload waits
 * for the workers to take the new generation (up to 5 s each), hence the generous wait. */
static int request_reload(const char *socket_path)
{
	char ans[ELS_CTLSOCK_ANSWER_MAX];
	int rc = els_ctlsock_request(socket_path, "reload", ans, sizeof(ans), 60000);

	if (rc < 0) {
		fprintf(stderr, "elsd: --reload: no answer from elsd at %s: %s\n", socket_path,
			strerror(-rc));
		return 3;
	}
	if (strncmp(ans, "ok ", 3) == 0) {
		fputs(ans + 3, stdout);
		return 0;
	}
	fprintf(stderr, "elsd: %s", strncmp(ans, "error ", 6) == 0 ? ans + 6 : ans);
	return 1;
}

#define SESSIONS_PRINTED 50

struct session_print {
	const char *config;
	unsigned n;
};

/* elsd -n: names the connections the policy would cut (the first 50; then a count). */
static void print_session(void *arg, const char *msg, bool observe)
{
	struct session_print *sp = arg;
	if (sp->n++ < SESSIONS_PRINTED)
		printf("%s: %s: %s\n", sp->config, observe ? "note" : "warning", msg);
}

static int run_replay(const struct options *o, struct els_policy *p)
{
	struct els_worker w;
	struct els_replay_result res;
	struct els_monitor *m = NULL;
	char *path = replay_monitor_path(o);
	int rc = 3;

	if (!path) {
		fprintf(stderr, "elsd: out of memory\n");
		goto out;
	}
	/* A replay's packets are not this host's traffic: they never go into the live monitor,
	 * whose admits are the registry's hits (--report) and which the daemon alone writes. */
	if (same_file(path, p->set.monitor_path)) {
		fprintf(stderr,
			"elsd: --replay: %s is the live monitor (monitor.path in %s); a replay "
			"records elsewhere: --monitor OTHER.db, or no --monitor for replay-NAME.db "
			"here\n",
			path, o->config);
		goto out;
	}
	/* Its own key beside its own file, whatever monitor.key_file says: the live chain's key
	 * signs only what the daemon saw. */
	free(p->set.monitor_key);
	p->set.monitor_key = NULL;
	m = els_open_monitor(&(struct els_run_opts){o->config, o->services, path}, p, 2);
	if (!m)
		goto out;
	fprintf(stderr, "elsd: replay records go to %s\n", path);
	if (els_worker_init(&w, 0, p->set.flow_capacity, els_monitor_ring(m, 0)) < 0) {
		fprintf(stderr, "elsd: out of memory for %u flows\n", p->set.flow_capacity);
		goto out;
	}
	w.name_verdicts = o->verdicts;
	els_gen_publish(p);
	els_push_event(els_monitor_ring(m, 1), p->generation, "replay %s", o->replay);
	struct els_replay_opts ro = {
	    .path = o->replay,
	    .local = o->nlocal ? o->local : p->set.local,
	    .nlocal = o->nlocal ? o->nlocal : p->set.nlocal,
	    .verdicts = o->verdicts ? stdout : NULL,
	    .verdicts_json = o->json,
	    .drain = els_drain_monitor,
	    .drain_arg = m,
	};
	if (els_replay_run(&ro, &w, &res) == 0) {
		rc = 0;
		fprintf(stderr,
			"elsd: replayed %lu packets: %lu accepted, %lu dropped, %lu not IP\n",
			res.packets, res.accepted, res.dropped, res.skipped);
		/* Direction decides which permits apply: a capture judged all inbound by
		 * accident gives verdicts that look plausible and are wrong. */
		if (res.packets > res.skipped && !res.local_matched)
			fprintf(stderr,
				"elsd: warning: no packet matched a local address: every packet "
				"was judged as inbound; give --local CIDR (or local_addresses "
				"in %s)\n",
				o->config);
	}
	els_worker_finish(&w, els_now_real(), els_drain_monitor, m);
	els_worker_fini(&w);
out:
	if (m)
		els_monitor_close(m);
	els_policy_free(p);
	free(path);
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = {0};

	/* Hidden entries for elsd's own children (agent/child.h), never in --help: exec'd
	 * fresh by the daemon, they take no other option. */
	if (argc > 1 && strcmp(argv[1], ELS_CHILD_CHECK_POLICY) == 0)
		return els_policy_check_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], ELS_CHILD_EXEC_CLEAN) == 0)
		return els_child_exec_main(argc, argv);
	/* The management endpoint, started by elsd itself (agent/mgmt_exec.c): not an option
	 * for users, so neither in --help nor in getopt's table. */
	if (argc == 2 && strcmp(argv[1], ELS_MGMT_ENDPOINT_FLAG) == 0)
		return els_mgmt_endpoint_main();
	parse_args(argc, argv, &o);
	if (o.reload)
		return request_reload(o.control);
	/* The monitor file names every peer of this host: not for other users to read. */
	umask(027);
	struct els_policy *p = load(&o);
	if (!p)
		return 1;
	if (o.check) {
		/* Warnings go to stderr beside the errors' FILE:LINE form; the OK line to stdout.
		 */
		unsigned warnings = els_policy_lint(p, stderr) + els_owner_caps_lint(p, stderr);
		if (warnings && o.strict) {
			fprintf(stderr, "%s: %u warning%s, and --strict: not accepted\n", o.config,
				warnings, warnings == 1 ? "" : "s");
			els_policy_free(p);
			return 1;
		}
		printf("%s: OK: %u handlers (", o.config, p->nlinks);
		for (unsigned i = 0; i < p->nlinks; i++)
			printf("%s%s", i ? ", " : "", p->links[i].h->name);
		printf("), queues %u-%u, sha256 %s", p->set.queue_first, p->set.queue_last,
		       p->hash);
		if (warnings)
			printf(", %u warning%s", warnings, warnings == 1 ? "" : "s");
		putchar('\n');
		struct session_print sp = {o.config, 0};
		if (els_sessions_check(p, "this policy", print_session, &sp) < 0)
			printf("%s: note: cannot list this host's established connections\n",
			       o.config);
		if (sp.n > SESSIONS_PRINTED)
			printf("%s: ... and %u more established connections like these\n", o.config,
			       sp.n - SESSIONS_PRINTED);
		els_policy_free(p);
		return 0;
	}
	if (o.report) {
		const char *mon = o.monitor ? o.monitor : p->set.monitor_path;
		int n = o.json ? els_registry_report_json(p, mon, o.services, stdout)
			       : els_registry_report(p, mon, o.services, stdout);
		if (n == -ENOENT)
			fprintf(stderr, "elsd: %s: no header_filter in the chain\n", o.config);
		els_policy_free(p);
		return n < 0 ? 1 : n > 0 ? 4 : 0;
	}
	if (o.get) {
		int rc = print_setting(p, o.get);
		els_policy_free(p);
		return rc;
	}
	if (o.replay)
		return run_replay(&o, p);
	return els_daemon_run(&(struct els_run_opts){o.config, o.services, o.monitor, o.control},
			      p);
}
