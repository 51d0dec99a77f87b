/* sweep: ask the agent to run its forensic sweep (els-sweep) now. */
#include <stdio.h>

#include "../elsctl.h"

static int show_sweep(json_t *r, FILE *out)
{
	fprintf(out, "sweep started: %s, pid %" JSON_INTEGER_FORMAT
		     " (its end is a monitor event: elsctl log --kind event)\n",
		ctl_jstr(r, "command"), ctl_jint(r, "pid"));
	return CTL_EXIT_OK;
}

static void sum_sweep(json_t *r, char *buf, size_t len)
{
	snprintf(buf, len, "sweep started pid %" JSON_INTEGER_FORMAT, ctl_jint(r, "pid"));
}

int cmd_sweep(struct ctl *c, int argc, char *argv[])
{
	struct ctl_req r = {.cmd = "sweep", .show = show_sweep, .summary = sum_sweep};
	int rc = ctl_no_options(ctl_cmd_find("sweep"), argc, argv, 0);

	return rc >= 0 ? rc : ctl_run(c, &r);
}
