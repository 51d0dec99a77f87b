/* The chain's contract with fake handlers: order, first final decision wins, fail policies,
 * decode failures, default deny, commit sees (and may veto) the final decision, and the
 * recheck of a flow admitted under an older generation. */
#include <criterion/criterion.h>
#include <string.h>

#include "els/chain.h"
#include "els/flow.h"
#include "els/policy.h"

struct fake {
	enum els_action action;
	uint16_t reason;
	uint32_t rule;
	int calls;
	int commits;
	bool veto;
	bool set_recheck;
};

static enum els_action fake_handle(const void *conf, struct els_ctx *ctx,
				   struct els_decision *out)
{
	struct fake *f = (struct fake *)conf;
	f->calls++;
	out->reason = f->reason;
	out->rule = f->rule;
	if (f->set_recheck && ctx->flow)
		ctx->recheck = 1;
	return f->action;
}

static void fake_commit(const void *conf, struct els_ctx *ctx, struct els_decision *final)
{
	struct fake *f = (struct fake *)conf;
	(void)ctx;
	f->commits++;
	if (f->veto && final->action == ELS_ACCEPT) {
		final->action = ELS_DROP;
		final->reason = ELS_R_FLOW_TABLE_FULL;
	}
}

static const char *fake_rule_name(const void *conf, uint32_t rule)
{
	(void)conf;
	return rule == 7 ? "seven" : NULL;
}

static const struct els_handler fake_h = {
	.name = "fake", .handle = fake_handle, .commit = fake_commit,
	.rule_name = fake_rule_name,
};

/* The same fake, registered as the worker's flow stage (what the tracker is). */
static const struct els_handler fake_flow_h = {
	.name = "fake_flow", .flags = ELS_HANDLER_FLOW_STAGE, .handle = fake_handle,
	.commit = fake_commit,
};

static struct els_policy pol;
static struct fake fk[4];
static struct els_pkt pkt;
static struct els_ctx ctx;

static void setup(unsigned n)
{
	memset(&pol, 0, sizeof(pol));
	memset(fk, 0, sizeof(fk));
	memset(&pkt, 0, sizeof(pkt));
	memset(&ctx, 0, sizeof(ctx));
	pol.nlinks = n;
	for (unsigned i = 0; i < n; i++) {
		pol.links[i].h = &fake_h;
		pol.links[i].conf = &fk[i];
	}
	pkt.family = ELS_AF_INET;
	ctx.pkt = &pkt;
	ctx.generation = 2;
}

Test(chain, first_final_decision_wins_and_later_handlers_do_not_run)
{
	struct els_decision d;
	setup(3);
	fk[0].action = ELS_CONTINUE;
	fk[1].action = ELS_DROP;
	fk[1].reason = ELS_R_NO_PERMIT;
	fk[1].rule = 3;
	fk[2].action = ELS_ACCEPT;
	cr_assert_eq(els_chain_run(&pol, &ctx, &d), ELS_DROP);
	cr_assert_eq(d.handler, 1);
	cr_assert_eq(d.reason, ELS_R_NO_PERMIT);
	cr_assert_eq(d.rule, 3);
	cr_assert_eq(fk[2].calls, 0);
	/* every handler's commit sees the final decision, even those that did not run */
	cr_assert_eq(fk[0].commits + fk[1].commits + fk[2].commits, 3);
}

Test(chain, nobody_decides_means_default_deny)
{
	struct els_decision d;
	setup(2);
	cr_assert_eq(els_chain_run(&pol, &ctx, &d), ELS_DROP);
	cr_assert_eq(d.handler, ELS_HANDLER_CHAIN);
	cr_assert_eq(d.reason, ELS_R_DEFAULT_POLICY);
	cr_assert_str_eq(els_chain_handler_name(&pol, d.handler), "chain");
}

Test(chain, decode_failure_drops_before_any_handler)
{
	struct els_decision d;
	setup(1);
	fk[0].action = ELS_ACCEPT;
	pkt.reason = ELS_R_BAD_IHL;
	cr_assert_eq(els_chain_run(&pol, &ctx, &d), ELS_DROP);
	cr_assert_eq(fk[0].calls, 0);
	cr_assert_eq(d.reason, ELS_R_BAD_IHL);
	cr_assert_str_eq(els_chain_handler_name(&pol, d.handler), "decode");
}

Test(chain, failing_handler_closed_drops_open_continues)
{
	struct els_decision d;
	setup(2);
	fk[0].action = ELS_FAIL;
	fk[1].action = ELS_ACCEPT;
	cr_assert_eq(els_chain_run(&pol, &ctx, &d), ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_HANDLER_FAILED);
	cr_assert_eq(d.handler, 0);
	pol.links[0].fail_open = true;
	cr_assert_eq(els_chain_run(&pol, &ctx, &d), ELS_ACCEPT);
	cr_assert_eq(d.handler, 1);
}

Test(chain, commit_can_veto_an_accept)
{
	struct els_decision d;
	setup(2);
	fk[0].action = ELS_ACCEPT;
	fk[1].veto = true;
	cr_assert_eq(els_chain_run(&pol, &ctx, &d), ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_FLOW_TABLE_FULL);
}

Test(chain, rule_names_come_from_the_deciding_handler)
{
	struct els_decision d;
	setup(1);
	fk[0].action = ELS_ACCEPT;
	fk[0].rule = 7;
	els_chain_run(&pol, &ctx, &d);
	cr_assert_str_eq(els_chain_rule_name(&pol, &d), "seven");
	fk[0].rule = 8;
	els_chain_run(&pol, &ctx, &d);
	cr_assert_null(els_chain_rule_name(&pol, &d));
}

static struct els_flow flow;

static void recheck_setup(enum els_action later)
{
	setup(2);
	memset(&flow, 0, sizeof(flow));
	flow.key.family = ELS_AF_INET;
	flow.key.proto = 6;
	flow.key.port[0] = 443;
	flow.key.port[1] = 40000;
	flow.init_side = 1;
	flow.rule = 4;
	ctx.flow = &flow;
	pol.links[0].h = &fake_flow_h;
	fk[0].action = ELS_CONTINUE;
	fk[0].set_recheck = true;
	fk[1].action = later;
	fk[1].rule = 9;
}

Test(chain, recheck_confirms_a_flow_the_new_policy_still_permits)
{
	struct els_decision d;
	recheck_setup(ELS_ACCEPT);
	cr_assert_eq(els_chain_run(&pol, &ctx, &d), ELS_ACCEPT);
	cr_assert_eq(d.handler, 0);
	cr_assert_eq(d.reason, ELS_R_FLOW);
	cr_assert_eq(d.rule, 9);
	cr_assert_eq(fk[1].calls, 1); /* judged the flow's first packet */
}

Test(chain, recheck_cuts_a_flow_the_new_policy_revoked)
{
	struct els_decision d;
	recheck_setup(ELS_DROP);
	cr_assert_eq(els_chain_run(&pol, &ctx, &d), ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_PERMIT_REVOKED);
	cr_assert_eq(d.rule, 4);
}

Test(chain, only_the_flow_stage_asks_for_a_recheck)
{
	struct els_decision d;
	recheck_setup(ELS_ACCEPT);
	pol.links[0].h = &fake_h; /* an ordinary handler setting recheck is not the flow stage */
	cr_assert_eq(els_chain_run(&pol, &ctx, &d), ELS_ACCEPT);
	cr_assert_eq(d.handler, 1);
	cr_assert_eq(d.reason, ELS_R_NONE);
	cr_assert_eq(d.rule, 9);
}

Test(chain, a_flow_stage_decision_takes_its_rule_name_from_the_admitting_handler)
{
	struct els_decision d;
	setup(2);
	pol.links[0].h = &fake_flow_h; /* no rule names of its own */
	fk[0].action = ELS_ACCEPT;
	fk[0].reason = ELS_R_FLOW;
	fk[0].rule = 7;
	els_chain_run(&pol, &ctx, &d);
	cr_assert_eq(d.handler, 0);
	cr_assert_str_eq(els_chain_rule_name(&pol, &d), "seven");
	pol.links[0].h = &fake_h; /* an ordinary handler's rule is its own */
	fk[0].rule = 8;
	els_chain_run(&pol, &ctx, &d);
	cr_assert_null(els_chain_rule_name(&pol, &d));
}

Test(chain, the_registry_knows_one_flow_stage)
{
	const struct els_handler *fs = els_handler_flow_stage();
	unsigned n = 0;
	cr_assert_not_null(fs);
	for (const struct els_handler *const *h = els_handler_all(); *h; h++)
		n += ((*h)->flags & ELS_HANDLER_FLOW_STAGE) != 0;
	cr_assert_eq(n, 1);
	cr_assert_eq(els_handler_find(fs->name), fs);
}
