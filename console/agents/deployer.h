/* The deployer: sends policy.apply to the agents connected to this instance whose deployment
 * target is pending in an open wave, on NOTIFY els_deploy, every deploy.interval_ms, and when
 * an agent says hello. Results go to console_deployment_targets (sent, ok, failed). */
#ifndef ELS_CONSOLE_DEPLOYER_H
#define ELS_CONSOLE_DEPLOYER_H

struct console;

int console_deployer_start(struct console *c);
void console_deployer_free(struct console *c);
/* Runs a pass soon (coalesced): an agent connected, a target changed. */
void console_deployer_kick(struct console *c);

#endif
