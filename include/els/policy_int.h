/* Between policy.c (the host's config file) and policy_doc.c (policy documents from the
 * management channel). */
#ifndef ELS_POLICY_INT_H
#define ELS_POLICY_INT_H

#include <libconfig.h>

#include "els/policy.h"

/* Compiles `chain` of root and the sections it names into p->links, adding errors to d. With
 * env->policy_dir set (a console's document) unknown top-level keys are left to the caller. */
void els_policy_build_chain(const config_setting_t *root, struct els_policy *p,
			    const struct els_build_env *env, struct els_diag *d);

/* Builds p's chain from the managed document `managed` (NULL: ELS_POLICY_MANAGED) in
 * p->set.policy_dir and sets p->policy_file and p->hash. Returns 0 when there is no managed
 * document (NULL managed only: the caller builds the chain from the config file), 1 when it
 * built from one (errors, if any, are in d). */
int els_policy_managed_build(struct els_policy *p, const char *managed,
			     const struct els_build_env *env, struct els_diag *d);

int els_policy_hash_file(const char *path, char hex[65]);

#endif
