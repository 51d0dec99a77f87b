/* Between elsctl suggest's learning (suggest_learn.c: monitor records into groups) and its
 * writing (cmd_suggest.c: groups into permits, the report of what was left out). */
#ifndef ELSCTL_SUGGEST_INT_H
#define ELSCTL_SUGGEST_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "els/addr.h"

#define MAX_LISTED   8
#define MAX_NETWORKS 16

struct remote {
	struct els_cidr c;
	long long n;
};

struct group {
	int dir;     /* 0 in, 1 out */
	int proto;   /* 6, 17, 1, 58 */
	int port;    /* service port or ICMP type */
	long long n; /* flows (or packets without a flow) */
	struct remote *r;
	size_t nr, cr;
	char remotes[1024]; /* canonical text of the remote list after widening ("" = any) */
	int merged;	    /* index + 1 of the permit it joined */
	/* Service binding: what every record of the group said owned its socket ("service=U",
	 * "exe=E" or "user=N"), when they all agree; bind_state 0 nothing seen yet, 1 all agree,
	 * 2 they differ or some record named no owner. */
	char bind[128];
	int bind_state;
};

enum flag_why { FLAG_SCAN, FLAG_ANOMALY, FLAG_DENY, FLAG__N };

/* A remote the chain (or the base's deny list) flagged. */
struct flagged {
	struct els_cidr c;
	enum flag_why why;
	long long left; /* records of it left out */
};

struct learn {
	struct group *g;
	size_t n, cap;
	bool v6;
	long long records;
	struct flagged *fl;
	size_t nfl, cfl;
	unsigned scan_ports; /* more distinct closed local ports than this: a scanner */
};

/* The protocol's name as els_proto_name() gives it, in a static buffer (single-threaded). */
const char *proto_name(int p);
/* Records remote c as flagged for why (the first reason stays). 0, or -1 out of memory. */
int flag(struct learn *l, const struct els_cidr *c, enum flag_why why);
/* Reads the monitor file at path into l: its flagged remotes, then its records. 0, or -1
 * (said on stderr unless memory ran out). */
int read_monitor(const char *path, struct learn *l);

#endif
