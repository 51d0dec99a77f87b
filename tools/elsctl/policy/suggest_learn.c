/* elsctl suggest, the learning half: reads a monitor file's would_drop and admit records
 * into groups by direction, protocol and service port, with their remotes and the owner of
 * their sockets, and marks the remotes the chain flagged (cmd_suggest.c states the rules and
 * writes the policy). */
#include <arpa/inet.h>
#include <getopt.h>
#include <libconfig.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "els/addr.h"
#include "../elsctl.h"
#include "suggest_int.h"

static struct group *group_of(struct learn *l, int dir, int proto, int port)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->g[i].dir == dir && l->g[i].proto == proto && l->g[i].port == port)
			return &l->g[i];
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct group *g = realloc(l->g, cap * sizeof(*g));
		if (!g)
			return NULL;
		l->g = g;
		l->cap = cap;
	}
	struct group *g = &l->g[l->n++];
	memset(g, 0, sizeof(*g));
	g->dir = dir;
	g->proto = proto;
	g->port = port;
	return g;
}

static int add_remote(struct group *g, const struct els_cidr *c, long long n)
{
	for (size_t i = 0; i < g->nr; i++)
		if (g->r[i].c.family == c->family && g->r[i].c.plen == c->plen &&
		    !memcmp(&g->r[i].c.addr, &c->addr, sizeof(c->addr))) {
			g->r[i].n += n;
			return 0;
		}
	if (g->nr == g->cr) {
		size_t cap = g->cr ? g->cr * 2 : 8;
		struct remote *r = realloc(g->r, cap * sizeof(*r));
		if (!r)
			return -1;
		g->r = r;
		g->cr = cap;
	}
	g->r[g->nr].c = *c;
	g->r[g->nr++].n = n;
	return 0;
}

static int proto_num(const char *p)
{
	if (!strcmp(p, "tcp"))
		return IPPROTO_TCP;
	if (!strcmp(p, "udp"))
		return IPPROTO_UDP;
	if (!strcmp(p, "icmp"))
		return IPPROTO_ICMP;
	if (!strcmp(p, "icmpv6"))
		return IPPROTO_ICMPV6;
	return -1;
}

const char *proto_name(int p)
{
	static char buf[ELS_PROTO_STRLEN]; /* single-threaded tool */
	return els_proto_name((unsigned)p, buf);
}

int flag(struct learn *l, const struct els_cidr *c, enum flag_why why)
{
	for (size_t i = 0; i < l->nfl; i++)
		if (l->fl[i].c.family == c->family && l->fl[i].c.plen == c->plen &&
		    !memcmp(&l->fl[i].c.addr, &c->addr, sizeof(c->addr)))
			return 0; /* the first reason found stays */
	if (l->nfl == l->cfl) {
		size_t cap = l->cfl ? l->cfl * 2 : 16;
		struct flagged *f = realloc(l->fl, cap * sizeof(*f));
		if (!f)
			return -1;
		l->fl = f;
		l->cfl = cap;
	}
	l->fl[l->nfl++] = (struct flagged){.c = *c, .why = why};
	return 0;
}

static struct flagged *flagged_of(struct learn *l, const struct els_cidr *remote)
{
	for (size_t i = 0; i < l->nfl; i++)
		if (l->fl[i].c.family == remote->family &&
		    els_cidr_contains(&l->fl[i].c, remote->family, &remote->addr))
			return &l->fl[i];
	return NULL;
}

/* Remotes the chain flagged: recorded by the scan or anomaly handler, dropped as deny-listed,
 * or probing more closed local ports than the scan threshold. */
static int read_flagged(sqlite3 *db, const char *path, struct learn *l)
{
	static const char q[] =
	    "SELECT CASE WHEN dir = 'out' THEN dst ELSE src END, "
	    "CASE WHEN reason = 'deny_list' THEN 2 WHEN handler = 'anomaly' THEN 1 ELSE 0 END "
	    "FROM records WHERE handler IN ('scan', 'anomaly') OR reason IN ('deny_list', "
	    "'scan_detected', 'scan_deny') GROUP BY 1, 2 "
	    "UNION ALL "
	    "SELECT src, 0 FROM records WHERE dir = 'in' AND kind IN ('drop', 'would_drop') AND "
	    "reason IN ('no_permit', 'session_required', 'port_zero', 'out_of_state') AND "
	    "proto IN ('tcp', 'udp') GROUP BY src HAVING count(DISTINCT dport) > ?";
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_bind_int(st, 1, (int)l->scan_ports);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *remote = (const char *)sqlite3_column_text(st, 0);
		struct els_cidr c;
		const char *why;

		if (remote && els_cidr_parse(remote, &c, &why) == 0 &&
		    flag(l, &c, (enum flag_why)sqlite3_column_int(st, 1)) < 0)
			rc = SQLITE_NOMEM;
		else
			rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_OK) {
		fprintf(stderr, "elsctl: suggest: %s: %s\n", path,
			rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* The value of "name=" in a record's owner detail ("unit=U uid=N pid=P exe=E"), or "". */
static void detail_field(const char *d, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name);
	out[0] = '\0';
	for (const char *p = d; p && *p; p = strchr(p, ' ') ? strchr(p, ' ') + 1 : NULL) {
		if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
			size_t n = strcspn(p + nl + 1, " ");
			snprintf(out, size, "%.*s", (int)n, p + nl + 1);
			return;
		}
	}
}

/* What a service-bound permit would name for a record's owner: inbound the unit (or, outside
 * any unit, the executable), outbound the user (the kernel's ids with the packet; no process
 * is looked up for outbound flows while learning). "" when the record names none. */
static void owner_key(const char *detail, int out, char *key, size_t size)
{
	char v[100];
	key[0] = '\0';
	if (!detail || !*detail)
		return;
	if (out) {
		detail_field(detail, "uid", v, sizeof(v));
		if (v[0])
			snprintf(key, size, "user=%s", v);
		return;
	}
	detail_field(detail, "unit", v, sizeof(v));
	if (v[0] && strcmp(v, "-") != 0) {
		snprintf(key, size, "service=%s", v);
		return;
	}
	detail_field(detail, "exe", v, sizeof(v));
	if (v[0] == '/')
		snprintf(key, size, "exe=%s", v);
}

int read_monitor(const char *path, struct learn *l)
{
	/* would_drop rows of the header filter say what the policy lacks; admit rows what it
	 * had. Anomalies and port 0 are never learnt. */
	static const char q[] =
	    "SELECT dir, proto, src, dst, dport, icmp_type, count(*), detail FROM records "
	    "WHERE (kind = 'admit' OR (kind = 'would_drop' AND handler = 'header_filter' AND "
	    "reason IN ('no_permit', 'session_required'))) AND proto IN ('tcp', 'udp', 'icmp', "
	    "'icmpv6') GROUP BY dir, proto, src, dst, dport, icmp_type, detail";
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "elsctl: suggest: %s: %s\n", path,
			db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return -1;
	}
	if (read_flagged(db, path, l) < 0) {
		sqlite3_finalize(st);
		sqlite3_close(db);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *dir = (const char *)sqlite3_column_text(st, 0);
		int proto = proto_num((const char *)sqlite3_column_text(st, 1));
		int out = dir && !strcmp(dir, "out");
		const char *remote = (const char *)sqlite3_column_text(st, out ? 3 : 2);
		long long n = sqlite3_column_int64(st, 6);
		int port;
		struct els_cidr c;
		const char *why;

		if (proto < 0 || !remote || els_cidr_parse(remote, &c, &why) < 0)
			continue;
		struct flagged *f = flagged_of(l, &c);
		if (f) {
			f->left += n;
			continue;
		}
		if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
			if (sqlite3_column_type(st, 4) == SQLITE_NULL)
				continue;
			port = sqlite3_column_int(st, 4);
			if (port == 0)
				continue;
		} else {
			if (sqlite3_column_type(st, 5) == SQLITE_NULL)
				continue;
			port = sqlite3_column_int(st, 5);
		}
		struct group *g = group_of(l, out, proto, port);
		if (!g || add_remote(g, &c, n) < 0) {
			fprintf(stderr, "elsctl: suggest: out of memory\n");
			rc = SQLITE_NOMEM;
			break;
		}
		if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
			char key[128];
			owner_key((const char *)sqlite3_column_text(st, 7), out, key, sizeof(key));
			if (!g->bind_state) {
				snprintf(g->bind, sizeof(g->bind), "%s", key);
				g->bind_state = key[0] ? 1 : 2;
			} else if (strcmp(g->bind, key) != 0) {
				g->bind_state = 2;
			}
		}
		g->n += n;
		l->records += n;
		l->v6 |= c.family == ELS_AF_INET6;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (rc != SQLITE_DONE) {
		if (rc != SQLITE_NOMEM)
			fprintf(stderr, "elsctl: suggest: %s: cannot read records\n", path);
		return -1;
	}
	return 0;
}
