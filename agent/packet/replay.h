/* Offline mode: judge the packets of a capture file with the same chain and records as live
 * traffic, for testing a policy before deploying it and for deterministic benchmarks. */
#ifndef ELS_REPLAY_H
#define ELS_REPLAY_H

#include <stdbool.h>
#include <stdio.h>

#include "worker.h"

struct els_replay_opts {
	const char *path;
	const struct els_cidr *local; /* this host's addresses: decide direction */
	unsigned nlocal;
	FILE *verdicts;               /* if non-NULL, one line per packet */
	bool verdicts_json;           /* ... as NDJSON (agent/replay_print.h) */
	/* Called when the worker's monitor ring is nearly full: replay runs faster than any
	 * writer, and unlike live traffic it can wait, so it never loses a record. */
	void (*drain)(void *arg);
	void *drain_arg;
};

struct els_replay_result {
	unsigned long packets, accepted, dropped, skipped; /* skipped: not IP */
	unsigned long local_matched; /* IP packets whose source or destination is local */
};

/* 0, or -1 with a message on stderr (file unreadable, unsupported link type). */
int els_replay_run(const struct els_replay_opts *o, struct els_worker *w,
		   struct els_replay_result *res);

#endif
