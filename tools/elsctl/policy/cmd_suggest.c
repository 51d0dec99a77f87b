/* elsctl suggest: learn a policy from a monitor file (paper VII: "a port-by-port and
 * protocol-by-protocol examination of the traffic ... The valid and necessary traffic can be
 * identified"). Runs locally, contacts no agent.
 *
 * Input: the `would_drop` records of an observe-mode run (what the current policy would have
 * dropped) and its `admit` records (what it admitted): the first packet of every flow, and
 * every packet that forms no flow. Grouped by direction, protocol and service port (the local
 * port inbound, the remote port outbound) or ICMP type, each with the remote addresses seen.
 * Remotes become CIDRs: up to 8 addresses are listed one by one; more are widened to their
 * /24 (IPv4) or /64 (IPv6); more than 16 such networks mean "any remote". Services with the
 * same direction, protocol and remote list share one permit. The result is written with
 * libconfig, so it parses; `elsd -n` checks the rest. A group whose every record names one
 * owner of its socket (the records' detail: observe mode asks) is bound to it: service (or exe)
 * inbound, user outbound.
 *
 * Traffic the chain flagged is never learnt: every record to or from a remote that the scan or
 * anomaly handler recorded, or that was dropped as deny-listed, or that the base's
 * iplist.deny names, or that probed more closed local ports than the scan threshold (an
 * observe run hides scans from the scan handler, which counts only real drops). The output
 * says what it left out, in comments and on stderr. */
#include <arpa/inet.h>
#include <getopt.h>
#include <libconfig.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "els/addr.h"
#include "els/handler.h"
#include "../elsctl.h"
#include "suggest_int.h"

static const char *const flag_names[FLAG__N] = {"scanning", "anomalies", "deny-listed"};

static int cidr_cmp(const void *a, const void *b)
{
	const struct remote *x = a, *y = b;
	if (x->c.family != y->c.family)
		return x->c.family - y->c.family;
	int m = memcmp(&x->c.addr, &y->c.addr, sizeof(x->c.addr));
	return m ? m : x->c.plen - y->c.plen;
}

/* Widens the remotes of g per the rule at the top and writes their canonical text. */
static void widen(struct group *g)
{
	if (g->nr > MAX_LISTED) {
		for (size_t i = 0; i < g->nr; i++) {
			struct els_cidr *c = &g->r[i].c;
			unsigned keep = c->family == ELS_AF_INET ? 24 : 64;
			c->plen = (uint8_t)keep;
			for (unsigned b = keep / 8; b < 16; b++)
				c->addr.b[b] = 0;
		}
	}
	qsort(g->r, g->nr, sizeof(*g->r), cidr_cmp);
	size_t k = 0;
	for (size_t i = 0; i < g->nr; i++) {
		if (k && !cidr_cmp(&g->r[k - 1], &g->r[i])) {
			g->r[k - 1].n += g->r[i].n;
			continue;
		}
		g->r[k++] = g->r[i];
	}
	g->nr = k;
	g->remotes[0] = '\0';
	if (g->nr > MAX_NETWORKS)
		return; /* any */
	for (size_t i = 0; i < g->nr; i++) {
		char a[ELS_ADDR_STRLEN];
		size_t len = strlen(g->remotes);
		snprintf(g->remotes + len, sizeof(g->remotes) - len, "%s%s/%u", i ? " " : "",
			 els_addr_str(&g->r[i].c.addr, g->r[i].c.family, a), g->r[i].c.plen);
	}
}

static config_setting_t *add_str(config_setting_t *g, const char *k, const char *v)
{
	config_setting_t *s = config_setting_add(g, k, CONFIG_TYPE_STRING);
	if (s)
		config_setting_set_string(s, v);
	return s;
}

/* Appends permit groups[first] (and those merged into it) to list. */
static void emit(config_setting_t *list, struct learn *l, size_t first, int num, FILE *notes)
{
	struct group *g = &l->g[first];
	config_setting_t *p = config_setting_add(list, NULL, CONFIG_TYPE_GROUP);
	char id[64];
	long long flows = 0;
	bool icmp = g->proto == IPPROTO_ICMP || g->proto == IPPROTO_ICMPV6;

	snprintf(id, sizeof(id), "learn-%d-%s-%s", num, g->dir ? "out" : "in",
		 proto_name(g->proto));
	add_str(p, "id", id);
	add_str(p, "dir", g->dir ? "out" : "in");
	add_str(p, "proto", proto_name(g->proto));
	config_setting_t *ports = config_setting_add(p,
						     icmp     ? "icmp_types"
						     : g->dir ? "remote_ports"
							      : "local_ports",
						     CONFIG_TYPE_ARRAY);
	fprintf(notes, "#   %s:", id);
	for (size_t i = first; i < l->n; i++) {
		if (i != first && l->g[i].merged != (int)first + 1)
			continue;
		config_setting_set_int_elem(ports, -1, l->g[i].port);
		flows += l->g[i].n;
		fprintf(notes, " %s %d", icmp ? "type" : "port", l->g[i].port);
	}
	fprintf(notes, ": %lld %s from %zu remote%s%s\n", flows,
		icmp || g->proto == IPPROTO_UDP ? "flows or packets" : "flows", g->nr, g->nr == 1 ? "" : "s",
		g->remotes[0] ? "" : " (any)");
	if (g->remotes[0]) {
		config_setting_t *r = config_setting_add(p, "remote", CONFIG_TYPE_ARRAY);
		for (size_t i = 0; i < g->nr; i++) {
			char a[ELS_ADDR_STRLEN + 8], b[ELS_ADDR_STRLEN];
			snprintf(a, sizeof(a), "%s/%u",
				 els_addr_str(&g->r[i].c.addr, g->r[i].c.family, b),
				 g->r[i].c.plen);
			config_setting_set_string_elem(r, -1, a);
		}
	}
	if (g->bind_state == 1) {
		/* Every flow of it went to (or came from) one service: bind the permit to it. */
		const char *eq = strchr(g->bind, '=');
		char k[16];
		snprintf(k, sizeof(k), "%.*s", (int)(eq - g->bind), g->bind);
		if (strcmp(k, "user") == 0) {
			config_setting_t *u = config_setting_add(p, "user", CONFIG_TYPE_INT);
			config_setting_set_int(u, atoi(eq + 1));
		} else {
			add_str(p, k, eq + 1);
		}
		fprintf(notes, "#     bound to %s: every flow's socket belonged to it\n", g->bind);
	}
	add_str(p, "justification", "learnt from an observe-mode run: review before use");
}

/* IPv6 does not work without neighbour discovery, and its packets form no flows, so an
 * observe run may hold no record of them: always permitted when IPv6 was seen. */
static void emit_ndp(config_setting_t *list)
{
	static const int in[] = {134, 135, 136}, out[] = {133, 135, 136};
	for (int d = 0; d < 2; d++) {
		config_setting_t *p = config_setting_add(list, NULL, CONFIG_TYPE_GROUP);
		add_str(p, "id", d ? "ndp-out" : "ndp-in");
		add_str(p, "dir", d ? "out" : "in");
		add_str(p, "proto", "icmpv6");
		config_setting_t *t = config_setting_add(p, "icmp_types", CONFIG_TYPE_ARRAY);
		for (int i = 0; i < 3; i++)
			config_setting_set_int_elem(t, -1, d ? out[i] : in[i]);
		add_str(p, "justification", "IPv6 neighbour discovery");
	}
}

/* What the base says about flagged traffic: its deny list, and its scan threshold. */
static int base_flags(config_t *cfg, struct learn *l)
{
	const config_setting_t *deny = config_lookup(cfg, "iplist.deny");
	int ports;

	if (config_lookup_int(cfg, "scan.ports", &ports) && ports > 0)
		l->scan_ports = (unsigned)ports;
	for (int i = 0; deny && i < config_setting_length(deny); i++) {
		const char *t = config_setting_get_string_elem(deny, (unsigned)i);
		struct els_cidr c;
		const char *why;

		if (t && els_cidr_parse(t, &c, &why) == 0 && flag(l, &c, FLAG_DENY) < 0)
			return -1;
	}
	return 0;
}

/* "# Left out ..." lines: what was flagged and not learnt. Returns the records left out. */
static long long print_left_out(const struct learn *l, FILE *out)
{
	long long total = 0;

	for (int w = 0; w < FLAG__N; w++) {
		long long n = 0;
		size_t remotes = 0, shown = 0;
		char list[256] = "";

		for (size_t i = 0; i < l->nfl; i++) {
			const struct flagged *f = &l->fl[i];
			char a[ELS_ADDR_STRLEN];
			size_t len = strlen(list);

			if ((int)f->why != w || !f->left)
				continue;
			n += f->left;
			remotes++;
			if (shown++ < 5)
				snprintf(list + len, sizeof(list) - len, "%s%s/%u", len ? ", " : "",
					 els_addr_str(&f->c.addr, f->c.family, a), f->c.plen);
		}
		if (!n)
			continue;
		if (!total)
			fprintf(out,
				"# Left out, not learnt: traffic of remotes the chain flagged\n");
		fprintf(out, "#   %s: %lld records of %zu remote%s: %s%s\n", flag_names[w], n,
			remotes, remotes == 1 ? "" : "s", list, shown > 5 ? ", ..." : "");
		total += n;
	}
	return total;
}

static int base_config(config_t *cfg, const char *base)
{
	if (base) {
		if (!config_read_file(cfg, base)) {
			fprintf(stderr, "elsctl: suggest: %s:%d: %s\n",
				config_error_file(cfg) ? config_error_file(cfg) : base,
				config_error_line(cfg), config_error_text(cfg));
			return -1;
		}
		return 0;
	}
	config_setting_t *root = config_root_setting(cfg);
	add_str(root, "queues", "0");
	config_setting_t *chain = config_setting_add(root, "chain", CONFIG_TYPE_ARRAY);
	/* the flow stage, then the admitting handler (docs/design-flow-stage.md) */
	config_setting_set_string_elem(chain, -1, els_handler_flow_stage()->name);
	config_setting_set_string_elem(chain, -1, "header_filter");
	return 0;
}

int cmd_suggest(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {
	    {"base", required_argument, NULL, 'b'}, {"help", no_argument, NULL, 'h'}, {0}};
	const char *base = NULL;
	struct learn l = {.scan_ports = 20}; /* the scan handler's default */
	config_t cfg;
	int ch, rc = CTL_EXIT_FAILED, num = 0;

	(void)c;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "b:h", lo, NULL)) != -1) {
		if (ch == 'b')
			base = optarg;
		else if (ch == 'h')
			return fputs(ctl_cmd_find("suggest")->usage, stdout), CTL_EXIT_OK;
		else
			return ctl_bad_option("suggest");
	}
	if (argc - optind != 1)
		return ctl_usage_error("suggest", "suggest needs one MONITOR file");
	config_init(&cfg);
	if (base_config(&cfg, base) < 0) {
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	if (base_flags(&cfg, &l) < 0) {
		fprintf(stderr, "elsctl: suggest: out of memory\n");
		goto out;
	}
	if (read_monitor(argv[optind], &l) < 0)
		goto out;
	for (size_t i = 0; i < l.n; i++)
		widen(&l.g[i]);
	/* services with the same direction, protocol and remotes share a permit */
	for (size_t i = 0; i < l.n; i++)
		for (size_t j = 0; j < i && !l.g[i].merged; j++)
			if (!l.g[j].merged && l.g[j].dir == l.g[i].dir &&
			    l.g[j].proto == l.g[i].proto && !strcmp(l.g[j].remotes, l.g[i].remotes) &&
			    l.g[j].bind_state == l.g[i].bind_state &&
			    (l.g[i].bind_state != 1 || !strcmp(l.g[j].bind, l.g[i].bind)))
				l.g[i].merged = (int)j + 1;

	config_setting_t *root = config_root_setting(&cfg);
	config_setting_t *hf = config_setting_get_member(root, "header_filter");
	if (!hf)
		hf = config_setting_add(root, "header_filter", CONFIG_TYPE_GROUP);
	if (config_setting_get_member(hf, "mode"))
		config_setting_remove(hf, "mode"); /* the suggestion is meant to be enforced */
	if (config_setting_get_member(hf, "permits"))
		config_setting_remove(hf, "permits");
	config_setting_t *list = config_setting_add(hf, "permits", CONFIG_TYPE_LIST);
	if (!list) {
		fprintf(stderr, "elsctl: suggest: 'header_filter' in the base is not a group\n");
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	printf("# Suggested by `elsctl suggest` from %s: %lld records, %zu services.\n",
	       argv[optind], l.records, l.n);
	printf("# Review every permit (add owner, category, mitigations) before enforcing it.\n");
	long long left = print_left_out(&l, stdout);
	if (left)
		fprintf(stderr,
			"elsctl: suggest: left out %lld records of remotes flagged as scanning, "
			"anomalous or deny-listed (listed in the output's comments)\n",
			left);
	for (size_t i = 0; i < l.n; i++)
		if (!l.g[i].merged)
			emit(list, &l, i, ++num, stdout);
	if (l.v6)
		emit_ndp(list);
	fflush(stdout);
	config_write(&cfg, stdout);
	rc = CTL_EXIT_OK;
out:
	for (size_t i = 0; i < l.n; i++)
		free(l.g[i].r);
	free(l.g);
	free(l.fl);
	config_destroy(&cfg);
	return rc;
}
