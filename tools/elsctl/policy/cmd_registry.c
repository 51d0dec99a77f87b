/* elsctl registry: the PPS registry report of a local config, as `elsd --report` prints it
 * (include/els/registry.h). Contacts no agent. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "els/diag.h"
#include "els/policy.h"
#include "els/registry.h"
#include "../elsctl.h"

/* `elsctl registry`: the PPS registry report, as `elsd --report` prints it. */
int cmd_registry(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {{"config", required_argument, NULL, 'c'},
					   {"monitor", required_argument, NULL, 'm'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};
	const char *conf = "/etc/elsd/elsd.conf", *mon = NULL;
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "c:m:h", lo, NULL)) != -1) {
		if (ch == 'c')
			conf = optarg;
		else if (ch == 'm')
			mon = optarg;
		else if (ch == 'h')
			return fputs(ctl_cmd_find("registry")->usage, stdout), CTL_EXIT_OK;
		else
			return ctl_bad_option("registry");
	}
	if (argc != optind)
		return ctl_usage_error("registry", "unexpected argument '%s'", argv[optind]);
	struct els_policy *p = els_policy_load_report(conf, NULL, stderr);
	if (!p)
		return CTL_EXIT_USAGE;
	mon = mon ? mon : p->set.monitor_path;
	int n;
	if (c->json) {
		/* jansson escapes every control character: safe on a terminal as it is. */
		n = els_registry_report_json(p, mon, NULL, stdout);
	} else {
		/* Permit ids, owners and justifications are the config author's text: print
		 * them through the terminal-safe filter, like everything an agent sends. */
		char *text = NULL;
		size_t len = 0;
		FILE *buf = open_memstream(&text, &len);

		n = buf ? els_registry_report(p, mon, NULL, buf) : -ENOMEM;
		if (buf)
			fclose(buf);
		if (text)
			ctl_fputs_safe(text, stdout);
		free(text);
	}
	els_policy_free(p);
	if (n == -ENOENT)
		fprintf(stderr, "elsctl: registry: %s has no header_filter in its chain\n", conf);
	return n < 0 ? CTL_EXIT_USAGE : n > 0 ? CTL_EXIT_FAILED : CTL_EXIT_OK;
}
