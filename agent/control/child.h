/* Children of elsd get nothing: every program elsd starts (the forensic sweep, the policy
 * checker) goes through elsd's own hidden `--exec-clean` / `--check-policy-fd` entry, exec'd
 * fresh (never a fork of the multithreaded main process left running), with an empty
 * environment but PATH, the default signal mask and dispositions, stdin/stdout/stderr as the
 * caller says and no other descriptor (elsd opens everything with O_CLOEXEC), and, before it
 * runs anything else, no capability in any set and no_new_privs. */
#ifndef ELS_CHILD_H
#define ELS_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ELS_CHILD_EXEC_CLEAN   "--exec-clean"
#define ELS_CHILD_CHECK_POLICY "--check-policy-fd"

/* Starts /proc/self/exe with argv (argv[1] one of the modes above). in_fd becomes fd 0
 * (-1: /dev/null), out_fd fd 1 (-1: elsd's own stdout), err_null makes fd 2 /dev/null (else
 * elsd's stderr). 0 with *pid set, or -errno. Never blocks. */
int els_child_spawn(pid_t *pid, char *const argv[], int in_fd, int out_fd, bool err_null);

/* Closes every descriptor above 2. */
void els_child_close_inherited(void);

/* main() of the hidden modes: returns the process's exit status. */
int els_child_exec_main(int argc, char **argv);
int els_policy_check_main(int argc, char **argv);

#endif
