/* Ruleset integrity: a thread that watches the netfilter ruleset and checks that the steering
 * rules (packaging/els-rules: table inet elsd, or the ELSD-IN/ELSD-OUT chains jumped to first
 * from filter INPUT/OUTPUT) are present and first. nf_tables announces every ruleset change
 * on the NFNLGRP_NFTABLES multicast group of NETLINK_NETFILTER, whichever tool made it (nft,
 * iptables-nft, a firewall loader's `flush ruleset`); a change is checked after 20 ms of quiet,
 * and the ruleset is also checked every 10 s (iptables-legacy changes are not announced).
 *
 * The check and the restore run `els-rules verify` and `els-rules install --restore`, exec'd
 * with a clean environment and this config: one implementation of the rules for both backends
 * and for the unit, in the script that the administrator also runs, rather than a second one
 * in C that could drift from it. They run on this thread, never on the packet path or the main
 * loop. What they find is logged, recorded (a monitor EVENT with reason
 * steering_rules_altered or steering_rules_restored) and alerted (ELS_ALERT).
 *
 * Rules this elsd never saw in place are not put there (a start without els-rules, as in a
 * test or by hand); once seen, their removal or alteration is restored when self_heal is on
 * (rules.self_heal, default true), unless an administrator ran `els-rules remove`. */
#ifndef ELS_RULEWATCH_H
#define ELS_RULEWATCH_H

#include <stdbool.h>
#include <stdint.h>

struct els_ring;
struct els_rulewatch;

struct els_rulewatch_opts {
	const char *program;   /* els-rules; NULL: $ELS_RULES, else /usr/sbin/els-rules */
	const char *config;    /* passed as -c */
	struct els_ring *ring; /* a monitor ring this thread alone pushes to */
	bool self_heal;
	unsigned heal_max;	/* restores per window before pausing (0: 10) */
	unsigned heal_window_s; /* that window (0: 10 s) */
	uint32_t generation;
};

/* Starts the watch thread. NULL (after logging why) when the program cannot be run or the
 * netlink socket cannot be opened: elsd runs on without it. Stop with els_rulewatch_stop. */
struct els_rulewatch *els_rulewatch_start(const struct els_rulewatch_opts *o);
/* A reload's settings (o->self_heal, heal_max, heal_window_s and the generation recorded with
 * events; program, config and ring are ignored). Any thread. */
void els_rulewatch_update(struct els_rulewatch *w, const struct els_rulewatch_opts *o);
/* Stops the thread (waits for a running els-rules, at most its timeout) and frees w. NULL ok. */
void els_rulewatch_stop(struct els_rulewatch *w);

#endif
