/* The management audit's read limiter (agent/control_audit.c): a successful read of an
 * identity is recorded at most once per window, the next record says how many were left out,
 * identities and roles are apart, and a forgotten identity hands over its count. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "control_audit.h"

#define S 1000000000ull
static struct els_audit_reads a;
static char ev[256];
static int evrole;
static unsigned left, evn;

static bool due(const char *id, int role, uint64_t t)
{
	return els_audit_read_due(&a, id, role, t, &left, ev, &evrole, &evn);
}

TestSuite(control_audit, .init = NULL);

Test(control_audit, reads_and_the_rest)
{
	cr_assert(els_audit_is_read("status"));
	cr_assert(els_audit_is_read("stats"));
	cr_assert(els_audit_is_read("flows"));
	cr_assert(els_audit_is_read("log"));
	cr_assert(els_audit_is_read("policy.get"));
	cr_assert(els_audit_is_read("list.get"));
	cr_assert_not(els_audit_is_read("policy.apply"));
	cr_assert_not(els_audit_is_read("policy.rollback"));
	cr_assert_not(els_audit_is_read("policy.validate"));
	cr_assert_not(els_audit_is_read("list.add"));
	cr_assert_not(els_audit_is_read("list.del"));
	cr_assert_not(els_audit_is_read("sweep"));
	cr_assert_not(els_audit_is_read("nope"));
}

Test(control_audit, twenty_polls_one_record_then_a_count)
{
	memset(&a, 0, sizeof(a));
	unsigned recorded = 0;
	for (unsigned i = 0; i < 20; i++)
		recorded += due("monitoring", 2, 1000 * S + i * 5 * S);
	cr_assert_eq(recorded, 1, "20 polls 5 s apart: %u records", recorded);
	cr_assert_eq(left, 0);
	/* the window ends ten minutes after the recorded poll: the next says 19 were left out */
	cr_assert_not(due("monitoring", 2, 1000 * S + 599 * S));
	cr_assert(due("monitoring", 2, 1000 * S + 600 * S));
	cr_assert_eq(left, 20, "19 of the loop and the one just before: %u", left);
	cr_assert(!due("monitoring", 2, 1000 * S + 601 * S));
	cr_assert_eq(evn, 0);
}

Test(control_audit, identities_and_roles_apart)
{
	memset(&a, 0, sizeof(a));
	cr_assert(due("alice", 1, 10 * S));
	cr_assert(due("bob", 2, 10 * S));
	cr_assert(due("alice", 2, 10 * S), "the same CN with another role is another identity");
	cr_assert_not(due("alice", 1, 11 * S));
	cr_assert_not(due("bob", 2, 11 * S));
}

Test(control_audit, forgotten_identity_hands_over_its_count)
{
	memset(&a, 0, sizeof(a));
	char id[32];
	cr_assert(due("first", 1, 1 * S));
	cr_assert_not(due("first", 1, 2 * S));
	cr_assert_not(due("first", 1, 3 * S));
	for (unsigned i = 1; i < ELS_AUDIT_READ_SLOTS; i++) {
		snprintf(id, sizeof(id), "id%u", i);
		cr_assert(due(id, 1, (10 + i) * S));
		cr_assert_eq(evn, 0, "a free slot was there for %s", id);
	}
	/* the table is full: the oldest recorded ("first") gives way, with its 2 reads */
	cr_assert(due("newcomer", 1, 200 * S));
	cr_assert_eq(evn, 2);
	cr_assert_str_eq(ev, "first");
	cr_assert_eq(evrole, 1);
	/* forgotten without reads left out: nothing to hand over */
	cr_assert(due("later", 1, 201 * S));
	cr_assert_eq(evn, 0);
}
