/* elsctl --console URL SUBCOMMAND: the table of the console's subcommands, their help, and
 * the dispatch from main.c. */
#include <errno.h>
#include <event2/http.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console_client.h"
#include "els/termsafe.h"

static int help(struct ctl *c, int argc, char *argv[]);

/* The --console table: same shape as ctl_cmds, its own help texts. */
static const struct ctl_cmd console_cmds[] = {
    {"fleet", console_fleet, "agents the console knows, with state and policy",
     "Usage: elsctl --console URL fleet [--group GROUP] [--state ok|drift|silent]\n\n"
     "Every agent the console has heard from (at most 10000): group, state, whether it is\n"
     "connected, last heartbeat, running policy (version of its group and sha256 prefix),\n"
     "elsd version; then the counts per state. Role: auditor.\n"},
    {"drift", console_drift, "agents that drift from the approved policy",
     "Usage: elsctl --console URL drift [--all]\n\n"
     "Open drift: agents running another policy than their group's approved deployed\n"
     "version, steering rules missing, listening on a port their policy does not permit,\n"
     "monitor chain not verifying, a permit whose registry entry expired, or silent longer\n"
     "than drift.silent_after_s. --all: also drift that has been resolved. Role: auditor.\n"
     "Exit 0 when nothing is open, 1 otherwise.\n"},
    {"policy", ctl_console_policy,
     "propose, approve, reject, list, show, diff, deploy policy versions",
     "Usage: elsctl --console URL policy propose --group GROUP [--comment TEXT]\n"
     "                                         [--parent ID] FILE\n"
     "       elsctl --console URL policy approve|reject [--comment TEXT] ID\n"
     "       elsctl --console URL policy list [--group GROUP]\n"
     "       elsctl --console URL policy show ID\n"
     "       elsctl --console URL policy diff ID [ID2]\n"
     "       elsctl --console URL policy deploy [--canary N|P%] [--wait S] ID\n"
     "       elsctl --console URL policy rollback GROUP\n\n"
     "propose  FILE becomes a new version of GROUP (the console checks it with the agent's\n"
     "         own loader; its permits are checked against the PPS registry, and problems\n"
     "         are listed: they block approval). Role: admin.\n"
     "approve  Approve version ID. The two-person rule (change.two_person) refuses the\n"
     "         author; every permit must be in the registry and unexpired. Role: admin.\n"
     "reject   Reject version ID. Role: admin.\n"
     "list     Versions, newest first. show: one version with its decisions and body.\n"
     "diff     Unified diff of ID2 against ID, or of ID against its parent. Role: auditor.\n"
     "deploy   Same as `elsctl --console URL deploy`. rollback: as `rollback`.\n"},
    {"deploy", ctl_console_deploy, "deploy an approved version: canary, health gate, then the rest",
     "Usage: elsctl --console URL deploy [--canary N|P%] [--wait S] VERSION_ID\n\n"
     "Deploys approved version VERSION_ID to its group: first the canary (N agents or P\n"
     "percent, default the group's canary setting, else 1), then, once the health gate\n"
     "passed (every canary applied it, still heartbeats, runs it, and its drop rate did not\n"
     "explode), the rest. A failure halts the deployment. --wait S: follow it until it is\n"
     "done or halted (at most S seconds); exit 0 when done, 1 otherwise. Role: admin.\n"},
    {"deployment", ctl_console_deployment, "show a deployment and its per-agent results",
     "Usage: elsctl --console URL deployment [--wait S] ID\n\n"
     "State, health gate and each agent's result. --wait S: until done or halted.\n"
     "Role: auditor.\n"},
    {"rollback", ctl_console_rollback, "roll a group back to its previous approved version",
     "Usage: elsctl --console URL rollback GROUP\n\n"
     "Halts the group's deployment in progress, if any, and deploys the approved version\n"
     "that ran before the current one to every agent of GROUP at once. Role: admin.\n"},
    {"registry", console_registry, "the enterprise PPS registry: list or add an entry",
     "Usage: elsctl --console URL registry [list]\n"
     "       elsctl --console URL registry add ID --proto P [--port PORTS] [--dir in|out]\n"
     "              --justification TEXT --owner TEXT [--service S] [--category C]\n"
     "              [--mitigations TEXT] [--reviewed YYYY-MM-DD] [--expires YYYY-MM-DD]\n\n"
     "list  Every approved permit: id, protocol, ports, direction, owner, expiry (EXPIRED when\n"
     "      past). Role: auditor.\n"
     "add   Adds or replaces entry ID (the permit id policies use). PORTS: \"443\",\n"
     "      \"8000-8080\" or \"80,443\". Role: admin.\n"},
    {"audit", console_audit, "the console's audit trail",
     "Usage: elsctl --console URL audit [--limit N]\n\n"
     "The newest N (default 50) console actions and refusals: time, identity, role, action,\n"
     "target, outcome. Role: auditor.\n"},
    {"help", help, "help on a subcommand", "Usage: elsctl --console URL help [SUBCOMMAND]\n"},
    {0},
};

static int help(struct ctl *c, int argc, char *argv[])
{
	(void)c;
	if (argc >= 2)
		for (const struct ctl_cmd *t = console_cmds; t->name; t++)
			if (!strcmp(t->name, argv[1]))
				return fputs(t->usage, stdout), CTL_EXIT_OK;
	puts("Subcommands with --console URL:");
	for (const struct ctl_cmd *t = console_cmds; t->name; t++)
		printf("  %-10s %s\n", t->name, t->help);
	return CTL_EXIT_OK;
}

/* The entry of the --console table named name, or NULL. */
const struct ctl_cmd *ctl_console_cmd_find(const char *name)
{
	for (const struct ctl_cmd *t = console_cmds; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

int ctl_console_main(struct ctl *c, int argc, char *argv[])
{
	const struct ctl_cmd *t = ctl_console_cmd_find(argv[0]);
	int rc;

	if (!t) {
		fprintf(stderr,
			"elsctl: '%s' is not a --console subcommand\nTry 'elsctl --console URL "
			"help'.\n",
			argv[0]);
		return CTL_EXIT_USAGE;
	}
	rc = t->fn(c, argc, argv);
	ctl_console_done();
	return rc;
}
