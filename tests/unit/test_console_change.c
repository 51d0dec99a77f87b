/* els-console change control without a server (console/change_*.c): canary selection, the
 * health gate, the two-person rule, the registry check of a proposed policy, the drift rules
 * and the policy diff. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"

/* ---- canary ---- */

Test(canary, parse_counts_and_percentages)
{
	struct change_canary c;
	const char *why = NULL;

	cr_assert_eq(change_canary_parse("2", &c, &why), 0);
	cr_assert(!c.percent);
	cr_assert_eq(c.value, 2);
	cr_assert_eq(change_canary_parse("10%", &c, &why), 0);
	cr_assert(c.percent);
	cr_assert_eq(c.value, 10);
	const char *bad[] = {"", "0", "0%", "101%", "-1", "2x", "%", "x%", "1%%", "100001", NULL};
	for (int i = 0; bad[i]; i++) {
		why = NULL;
		cr_assert_eq(change_canary_parse(bad[i], &c, &why), -EINVAL, "%s", bad[i]);
		cr_assert_not_null(why, "%s", bad[i]);
	}
}

Test(canary, count_rounds_up_and_caps)
{
	struct change_canary n2 = {false, 2}, p10 = {true, 10}, p100 = {true, 100};

	cr_assert_eq(change_canary_count(&n2, 0), 0);
	cr_assert_eq(change_canary_count(&n2, 1), 1);
	cr_assert_eq(change_canary_count(&n2, 5), 2);
	cr_assert_eq(change_canary_count(&p10, 5), 1); /* 0.5 -> 1 */
	cr_assert_eq(change_canary_count(&p10, 20), 2);
	cr_assert_eq(change_canary_count(&p10, 21), 3); /* 2.1 -> 3 */
	cr_assert_eq(change_canary_count(&p100, 7), 7);
}

Test(canary, connected_agents_first_then_by_name)
{
	struct change_agent_pick a[] = {{"web-03", true, -1},
					{"web-01", false, -1},
					{"web-02", true, -1},
					{"web-04", true, -1}};
	struct change_canary c = {false, 2};

	change_canary_assign(&c, a, 4);
	cr_assert_str_eq(a[0].agent_id, "web-02");
	cr_assert_str_eq(a[1].agent_id, "web-03");
	cr_assert_eq(a[0].wave, 0);
	cr_assert_eq(a[1].wave, 0);
	cr_assert_eq(a[2].wave, 1);
	cr_assert_str_eq(a[3].agent_id, "web-01"); /* offline: never a canary when others can */
	cr_assert_eq(a[3].wave, 1);
}

/* ---- health gate ---- */

#define SHA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static struct change_gate_obs healthy(const char *id)
{
	return (struct change_gate_obs){
	    .agent_id = id,
	    .state = TARGET_OK,
	    .done_at = 1000,
	    .connected = true,
	    .last_seen = 1010,
	    .running_sha256 = SHA,
	    .have_base = true,
	    .have_mid = true,
	    .have_now = true,
	    .base_dropped = 100,
	    .base_at = 900,
	    .mid_dropped = 200, /* 1/s before */
	    .mid_at = 1000,
	    .now_dropped = 205,
	    .now_at = 1010,
	};
}

Test(gate, passes_when_all_canaries_healthy)
{
	struct change_gate_obs o[2] = {healthy("a"), healthy("b")};
	char why[CHANGE_REASON_LEN];

	cr_assert_eq(
	    change_gate_decide(o, 2, SHA, 990, 1011, &change_gate_defaults, why, sizeof(why)),
	    GATE_PASS, "%s", why);
}

Test(gate, failed_apply_fails_naming_the_agent)
{
	struct change_gate_obs o[2] = {healthy("a"), healthy("b")};
	char why[CHANGE_REASON_LEN];

	o[1].state = TARGET_FAILED;
	o[1].error = "invalid policy: policy:3: unknown setting";
	cr_assert_eq(
	    change_gate_decide(o, 2, SHA, 990, 1011, &change_gate_defaults, why, sizeof(why)),
	    GATE_FAIL);
	cr_assert(strstr(why, "canary agent b failed to apply: invalid policy"), "%s", why);
}

Test(gate, waits_for_pending_then_times_out)
{
	struct change_gate_obs o[1] = {healthy("a")};
	char why[CHANGE_REASON_LEN];
	struct change_gate_params p = change_gate_defaults;

	o[0].state = TARGET_SENT;
	cr_assert_eq(change_gate_decide(o, 1, SHA, 990, 1000, &p, why, sizeof(why)), GATE_WAIT);
	cr_assert(strstr(why, "waiting for canary agent a"), "%s", why);
	cr_assert_eq(
	    change_gate_decide(o, 1, SHA, 990, 990 + p.timeout_s + 1, &p, why, sizeof(why)),
	    GATE_FAIL);
	cr_assert(strstr(why, "has not applied within"), "%s", why);
}

Test(gate, no_heartbeat_after_apply_is_a_lockout)
{
	struct change_gate_obs o[1] = {healthy("a")};
	char why[CHANGE_REASON_LEN];
	struct change_gate_params p = change_gate_defaults;

	o[0].last_seen = 999; /* last heartbeat before the apply */
	o[0].connected = false;
	cr_assert_eq(change_gate_decide(o, 1, SHA, 990, 1005, &p, why, sizeof(why)), GATE_WAIT);
	cr_assert_eq(
	    change_gate_decide(o, 1, SHA, 990, 1000 + p.lockout_s + 1, &p, why, sizeof(why)),
	    GATE_FAIL);
	cr_assert(strstr(why, "management lockout"), "%s", why);
}

Test(gate, other_policy_after_apply_fails)
{
	struct change_gate_obs o[1] = {healthy("a")};
	char why[CHANGE_REASON_LEN];

	o[0].running_sha256 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
	cr_assert_eq(
	    change_gate_decide(o, 1, SHA, 990, 1011, &change_gate_defaults, why, sizeof(why)),
	    GATE_FAIL);
	cr_assert(strstr(why, "not the deployed version"), "%s", why);
}

Test(gate, exploding_drop_rate_fails_a_steady_one_passes)
{
	struct change_gate_obs o[1] = {healthy("a")};
	char why[CHANGE_REASON_LEN];
	struct change_gate_params p = change_gate_defaults;

	/* before: 100 drops in 100 s (1/s); after: 10000 in 10 s (1000/s) */
	o[0].now_dropped = o[0].mid_dropped + 10000;
	cr_assert_eq(change_gate_decide(o, 1, SHA, 990, 1011, &p, why, sizeof(why)), GATE_FAIL);
	cr_assert(strstr(why, "drop rate exploding"), "%s", why);
	/* under the floor (50/s) it is noise, not an explosion */
	o[0].now_dropped = o[0].mid_dropped + 400;
	cr_assert_eq(change_gate_decide(o, 1, SHA, 990, 1011, &p, why, sizeof(why)), GATE_PASS,
		     "%s", why);
	/* a counter that went back (agent restarted) tells nothing: not a failure */
	o[0].now_dropped = 3;
	cr_assert_eq(change_gate_decide(o, 1, SHA, 990, 1011, &p, why, sizeof(why)), GATE_PASS,
		     "%s", why);
}

Test(gate, settles_before_passing)
{
	struct change_gate_obs o[1] = {healthy("a")};
	char why[CHANGE_REASON_LEN];

	o[0].last_seen = 1001; /* heartbeat 1 s after the apply, settle is 5 s */
	cr_assert_eq(
	    change_gate_decide(o, 1, SHA, 990, 1002, &change_gate_defaults, why, sizeof(why)),
	    GATE_WAIT);
	cr_assert(strstr(why, "settling"), "%s", why);
}

Test(gate, empty_canary_fails)
{
	char why[CHANGE_REASON_LEN];
	cr_assert_eq(
	    change_gate_decide(NULL, 0, SHA, 0, 1, &change_gate_defaults, why, sizeof(why)),
	    GATE_FAIL);
}

/* ---- two-person rule ---- */

Test(rule, author_may_not_approve_own_version)
{
	struct change_rules r = {.two_person = true, .approvals = 1};
	char why[CHANGE_REASON_LEN];

	cr_assert_eq(
	    change_may_approve(&r, "proposed", "alice", "alice", NULL, 0, why, sizeof(why)),
	    -EPERM);
	cr_assert(strstr(why, "two-person rule"), "%s", why);
	cr_assert_eq(change_may_approve(&r, "proposed", "alice", "bob", NULL, 0, why, sizeof(why)),
		     0);
	cr_assert(change_approved_enough(&r, 1));
}

Test(rule, rule_off_lets_the_author_approve)
{
	struct change_rules r = {.two_person = false, .approvals = 1};
	char why[CHANGE_REASON_LEN];

	cr_assert_eq(
	    change_may_approve(&r, "proposed", "alice", "alice", NULL, 0, why, sizeof(why)), 0);
}

Test(rule, several_approvers_and_no_double_vote)
{
	struct change_rules r = {.two_person = true, .approvals = 2};
	const char *done[] = {"bob"};
	char why[CHANGE_REASON_LEN];

	cr_assert_not(change_approved_enough(&r, 1));
	cr_assert_eq(change_may_approve(&r, "proposed", "alice", "bob", done, 1, why, sizeof(why)),
		     -EALREADY);
	cr_assert_eq(
	    change_may_approve(&r, "proposed", "alice", "carol", done, 1, why, sizeof(why)), 0);
	cr_assert(change_approved_enough(&r, 2));
	cr_assert_eq(
	    change_may_approve(&r, "approved", "alice", "carol", NULL, 0, why, sizeof(why)),
	    -ESTALE);
	cr_assert_eq(
	    change_may_approve(&r, "rejected", "alice", "carol", NULL, 0, why, sizeof(why)),
	    -ESTALE);
}

/* ---- registry check ---- */

static const char policy_ok[] =
    "chain = [\"header_filter\"];\n"
    "header_filter: {\n"
    "  permits = (\n"
    "    { id = \"https\"; dir = \"in\"; proto = \"tcp\"; local_ports = [443]; },\n"
    "    { id = \"dns-out\"; dir = \"out\"; proto = \"udp\"; remote_ports = [53]; }\n"
    "  );\n"
    "};\n";

static struct change_registry_entry reg[] = {
    {"https", "tcp", "443", "in", 0},
    {"dns-out", "udp", "53", "out", 0},
};

static int check(const char *doc, struct change_registry_entry *r, size_t n, time_t now,
		 struct change_problems *out)
{
	bool loaded = false;
	int rc = change_registry_check(doc, strlen(doc), r, n, now, out, &loaded);
	cr_assert_eq(loaded, strstr(doc, "management") == NULL && strstr(doc, "[;") == NULL);
	return rc;
}

Test(registry, policy_within_registry_passes)
{
	struct change_problems p = {0};

	cr_assert_eq(check(policy_ok, reg, 2, 1700000000, &p), 0, "%s", p.n ? p.v[0].text : "");
	change_problems_free(&p);
}

Test(registry, permit_outside_registry_is_named)
{
	struct change_problems p = {0};

	cr_assert_eq(check(policy_ok, reg, 1, 1700000000, &p), 1);
	cr_assert(strstr(p.v[0].text, "permit 'dns-out' is not in the PPS registry"), "%s",
		  p.v[0].text);
	cr_assert(strstr(p.v[0].text, "policy:5:"), "%s", p.v[0].text);
	change_problems_free(&p);
}

Test(registry, expired_entry_blocks)
{
	struct change_registry_entry r[2] = {reg[0], reg[1]};
	struct change_problems p = {0};
	time_t end;

	cr_assert_eq(change_date_end("2026-01-31", &end), 0);
	r[0].expires_s = end;
	cr_assert_eq(check(policy_ok, r, 2, end - 1, &p), 0); /* valid through that day */
	cr_assert_eq(check(policy_ok, r, 2, end, &p), 1);
	cr_assert(strstr(p.v[0].text, "permit 'https': its registry entry has expired"), "%s",
		  p.v[0].text);
	change_problems_free(&p);
}

Test(registry, port_proto_and_direction_must_match_the_entry)
{
	static const char doc[] =
	    "chain = [\"header_filter\"];\n"
	    "header_filter: { permits = (\n"
	    "  { id = \"https\"; dir = \"in\"; proto = \"tcp\"; local_ports = [443, 8443]; },\n"
	    "  { id = \"dns-out\"; dir = \"in\"; proto = \"tcp\"; local_ports = [53]; }\n"
	    "); };\n";
	struct change_problems p = {0};
	int n = check(doc, reg, 2, 1700000000, &p);
	char all[4096] = "";

	for (size_t i = 0; i < p.n; i++)
		strncat(all, p.v[i].text, sizeof(all) - strlen(all) - 2), strcat(all, "\n");
	cr_assert_eq(n, 3, "%s", all);
	cr_assert(strstr(all, "permit 'https' opens tcp port 8443"), "%s", all);
	cr_assert(strstr(all, "permit 'dns-out' is dir \"in\""), "%s", all);
	cr_assert(strstr(all, "permit 'dns-out' admits tcp"), "%s", all);
	/* port 53 is the entry's port: the protocol is what is wrong, said once */
	cr_assert_null(strstr(all, "opens tcp port 53"), "%s", all);
	change_problems_free(&p);
}

Test(registry, permit_past_its_own_expiry_blocks)
{
	static const char doc[] = "chain = [\"header_filter\"];\n"
				  "header_filter: { permits = (\n"
				  "  { id = \"https\"; dir = \"in\"; proto = \"tcp\"; "
				  "local_ports = [443]; expires = \"2020-01-01\"; }\n"
				  "); };\n";
	struct change_problems p = {0};

	cr_assert_eq(check(doc, reg, 1, 1700000000, &p), 1);
	cr_assert(strstr(p.v[0].text, "permit 'https' expired on 2020-01-01"), "%s", p.v[0].text);
	change_problems_free(&p);
}

Test(registry, document_errors_and_agent_settings_are_problems)
{
	struct change_problems p = {0};

	cr_assert_geq(check("chain = [\"header_filter\"];\nmanagement: { listen = \"x\"; };\n", reg,
			    2, 1700000000, &p),
		      1);
	cr_assert(strstr(p.v[0].text, "agent setting"), "%s", p.v[0].text);
	change_problems_free(&p);
	cr_assert_geq(check("chain = [;\n", reg, 2, 1700000000, &p), 1);
	change_problems_free(&p);
}

Test(registry, port_lists_and_dates)
{
	time_t t;

	cr_assert_eq(change_ports_cover("443", 443, 443), 1);
	cr_assert_eq(change_ports_cover("80, 443", 443, 443), 1);
	cr_assert_eq(change_ports_cover("8000-8080", 8000, 8080), 1);
	cr_assert_eq(change_ports_cover("8000-8080", 7999, 8000), 0);
	cr_assert_eq(change_ports_cover(NULL, 1, 65535), 1);
	cr_assert_eq(change_ports_cover("https", 443, 443), -1);
	cr_assert_eq(change_ports_cover("80,", 80, 80), 1);
	cr_assert_eq(change_ports_cover("9-1", 5, 5), -1);
	cr_assert_eq(change_date_end("2026-02-30", &t), -EINVAL);
	cr_assert_eq(change_date_end("2026-12-31x", &t), -EINVAL);
	cr_assert_eq(change_date_end("2026-12-31", &t), 0);
	cr_assert_eq(t, 1798761600); /* 2027-01-01T00:00:00Z */
}

/* ---- drift ---- */

Test(drift, clean_agent_has_no_drift)
{
	struct change_listener l[] = {{"tcp", "0.0.0.0", 443}, {"tcp", "127.0.0.1", 5432}};
	struct change_permit pm[] = {{"https", "tcp", "443", "in"}};
	struct change_drift_input in = {.agent_id = "web-01",
					.approved_sha256 = SHA,
					.running_sha256 = SHA,
					.rules_ok = true,
					.monitor_ok = true,
					.have_state = true,
					.last_seen = 1000,
					.listeners = l,
					.nlisteners = 2,
					.permits = pm,
					.npermits = 1,
					.registry = reg,
					.nregistry = 2};
	char d[DRIFT_NKINDS][CHANGE_REASON_LEN];

	cr_assert_eq(change_drift_eval(&in, 1005, 60, d), 0);
}

Test(drift, every_kind_is_flagged)
{
	struct change_listener l[] = {
	    {"tcp", "0.0.0.0", 443}, {"tcp", "0.0.0.0", 22}, {"udp", "::", 53}};
	struct change_permit pm[] = {{"https", "tcp", "443", "in"}, {"dns", "udp", "53", "out"}};
	struct change_registry_entry r[] = {{"https", "tcp", "443", "in", 500}};
	struct change_drift_input in = {.agent_id = "web-01",
					.approved_sha256 = SHA,
					.running_sha256 = "bbbb",
					.rules_ok = false,
					.monitor_ok = false,
					.have_state = true,
					.last_seen = 1000,
					.listeners = l,
					.nlisteners = 3,
					.permits = pm,
					.npermits = 2,
					.registry = r,
					.nregistry = 1};
	char d[DRIFT_NKINDS][CHANGE_REASON_LEN];

	cr_assert_eq(change_drift_eval(&in, 1100, 60, d), (1u << DRIFT_NKINDS) - 1);
	cr_assert(strstr(d[DRIFT_LISTENER], "tcp 0.0.0.0:22"), "%s", d[DRIFT_LISTENER]);
	cr_assert(strstr(d[DRIFT_LISTENER], "udp :::53"), "%s", d[DRIFT_LISTENER]);
	cr_assert_null(strstr(d[DRIFT_LISTENER], ":443"), "%s", d[DRIFT_LISTENER]);
	cr_assert(strstr(d[DRIFT_EXPIRED_PERMIT], "'https'"), "%s", d[DRIFT_EXPIRED_PERMIT]);
	cr_assert(strstr(d[DRIFT_SILENT], "silent for 100 s"), "%s", d[DRIFT_SILENT]);
	cr_assert(strstr(d[DRIFT_POLICY], "approved deployed version is aaaaaaaaaaaa"), "%s",
		  d[DRIFT_POLICY]);
}

Test(drift, no_approved_version_no_policy_drift_and_no_hello_nothing)
{
	struct change_drift_input in = {.agent_id = "x",
					.running_sha256 = SHA,
					.rules_ok = true,
					.monitor_ok = true,
					.have_state = true,
					.last_seen = 10};
	char d[DRIFT_NKINDS][CHANGE_REASON_LEN];

	cr_assert_eq(change_drift_eval(&in, 20, 60, d), 0);
	in.have_state = false;
	in.rules_ok = false;
	cr_assert_eq(change_drift_eval(&in, 2000, 60, d), 0);
}

/* ---- diff ---- */

Test(diff, equal_texts_give_nothing)
{
	char *out;
	cr_assert_eq(change_diff("a\nb\n", "v1", "a\nb\n", "v2", &out), 0);
	cr_assert_str_eq(out, "");
	free(out);
}

Test(diff, one_changed_line_with_context)
{
	char *out;
	const char *a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
	const char *b = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n";

	cr_assert_eq(change_diff(a, "v1", b, "v2", &out), 0);
	cr_assert_str_eq(out,
			 "--- v1\n+++ v2\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n");
	free(out);
}

Test(diff, insert_delete_and_two_hunks)
{
	char *out;
	const char *a = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n";
	const char *b = "new\na\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n";

	cr_assert_eq(change_diff(a, "a", b, "b", &out), 0);
	/* as GNU diff -u prints it */
	cr_assert_str_eq(out,
			 "--- a\n+++ b\n@@ -1,3 +1,4 @@\n+new\n a\n b\n c\n"
			 "@@ -9,4 +10,3 @@\n i\n j\n k\n-l\n",
			 "%s", out);
	free(out);
	cr_assert_eq(change_diff("", "a", "x\n", "b", &out), 0);
	cr_assert_str_eq(out, "--- a\n+++ b\n@@ -0,0 +1 @@\n+x\n");
	free(out);
}

/* ---- api_util.c: the canary's ids as one text[] parameter ---- */
#include "api.h"

Test(api, text_array_quotes_and_escapes)
{
	const char *v[] = {"web-01", "a\"b", "c\\d", "x,y", "{z}"};
	char *s = api_text_array(v, 5);

	cr_assert_str_eq(s, "{\"web-01\",\"a\\\"b\",\"c\\\\d\",\"x,y\",\"{z}\"}");
	free(s);
	s = api_text_array(v, 0);
	cr_assert_str_eq(s, "{}");
	free(s);
}
