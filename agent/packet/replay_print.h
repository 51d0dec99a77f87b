/* The --verdicts line of one replayed packet (agent/replay_print.c). */
#ifndef ELS_REPLAY_PRINT_H
#define ELS_REPLAY_PRINT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "els/pkt.h"

struct els_verdict_line {
	unsigned long n;     /* the packet's number in the capture, from 1 */
	uint64_t ts_ns;	     /* the capture's timestamp */
	const char *dir;     /* "in", "out"; NULL for a frame that is not IP */
	const char *verdict; /* "accept", "drop", "skip" */
	const char *handler; /* NULL for a skipped frame */
	const char *reason;
	unsigned rule;
	const char *rule_name;	   /* "" when none */
	const struct els_pkt *pkt; /* family ELS_AF_NONE: nothing decoded */
};

/* Text: "N DIR VERDICT HANDLER REASON proto=P src=A[:PORT] dst=A[:PORT] rule=ID
 * [rule_name=NAME]"; a skipped frame "N skip not-ip". JSON: one object per line. */
void els_verdict_line_print(FILE *f, bool json, const struct els_verdict_line *v);

#endif
