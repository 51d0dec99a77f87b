/* agent/control/control.c and its channel (control_channel.c), the main process's side of the
 * management requests: every command of the one table (els/mgmt.h) reaches its handler and
 * does what it says (a list edit changes the file, an apply commits a generation, a validate
 * runs the real policy checker child), an unknown command is refused naming the known ones, an
 * auditor is refused every admin-only command and nothing changes, garbled and oversize
 * requests are refused, and the dispatcher keeps answering after each refusal. Over the
 * socketpair: a request whose certificate is not trusted is refused and answered, a malformed
 * request is dropped and the channel serves on, a datagram that breaks the message protocol
 * closes the channel.
 *
 * The policy checker and the sweep are children exec'd from /proc/self/exe with elsd's hidden
 * entries (agent/control/child.h): main() below answers them, as elsd's main() does. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "control.h"
#include "els/mgmt.h"
#include "generation.h"
#include "ipc.h"
#include "worker.h"

int main(int argc, char *argv[])
{
	if (argc > 1 && strcmp(argv[1], ELS_CHILD_CHECK_POLICY) == 0)
		return els_policy_check_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], ELS_CHILD_EXEC_CLEAN) == 0)
		return els_child_exec_main(argc, argv);
	struct criterion_test_set *tests = criterion_initialize();
	int rc = 0;
	if (criterion_handle_args(argc, argv, true))
		rc = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return rc;
}

static char dir[] = "/tmp/els-control-XXXXXX";
static char conf[96], pdir[96], denyf[128], db[96];

/* The daemon around the control: one worker (a thread answering flow snapshots, as the
 * worker's loop does), the running policy, generations committed by requests. */
static struct els_worker w;
static struct els_ring *wring, *ctl;
static struct els_monitor *mon;
static struct els_policy *gens[8];
static unsigned ngens, commits;
static pthread_t snap_thread;
static _Atomic bool stop;
static struct els_control *c;
static int sv[2];
static struct els_ipc peer; /* the endpoint's end of the channel */

static const struct els_policy *running(void *arg)
{
	(void)arg;
	return gens[ngens - 1];
}

static uint32_t commit(void *arg, struct els_policy *np)
{
	(void)arg;
	cr_assert_lt(ngens, sizeof(gens) / sizeof(gens[0]));
	np->generation = gens[ngens - 1]->generation + 1;
	gens[ngens++] = np;
	commits++;
	return np->generation;
}

static void *serve_snapshots(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		els_worker_snapshot_serve(&w);
		usleep(500);
	}
	return NULL;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static char *read_text(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

#define POLICY_TEXT                                                                                \
	"chain = [ \"iplist\", \"header_filter\" ];\n"                                             \
	"iplist = { deny = [ ]; allow = [ ]; deny_files = [ \"%s\" ]; allow_files = [ ];\n"        \
	"  default = \"continue\"; };\n"                                                           \
	"header_filter = { permits = (\n"                                                          \
	"  { id = \"web-in\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 8443 ]; }\n"          \
	"); };\n"

static void setup(void)
{
	struct els_diag d;
	char text[1024];

	cr_assert_not_null(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/elsd.conf", dir);
	/* the managed deny list: first in deny_files, directly inside the policy directory */
	snprintf(pdir, sizeof(pdir), "%s/policy.d", dir);
	snprintf(denyf, sizeof(denyf), "%s/deny.list", pdir);
	snprintf(db, sizeof(db), "%s/monitor.db", dir);
	cr_assert_eq(mkdir(pdir, 0700), 0);
	write_file(denyf, "198.19.66.1\n");
	snprintf(text, sizeof(text),
		 "policy_dir = \"%s\";\nmonitor = { path = \"%s\"; };\nflows = { capacity = 64; "
		 "};\n"
		 /* the sweep: a program that does nothing, whatever is installed */
		 "management = { listen = \"127.0.0.1:1\"; ca = \"ca.crt\"; cert = \"a.crt\";\n"
		 "  key = \"a.key\"; sweep_command = [ \"true\" ]; };\n" POLICY_TEXT,
		 pdir, db, denyf);
	write_file(conf, text);

	els_diag_init(&d, conf);
	gens[0] = els_policy_load(conf, "/dev/null", &d);
	cr_assert_not_null(gens[0], "%s", d.count ? d.msgs[0] : "?");
	els_diag_free(&d);
	gens[0]->generation = 1;
	ngens = 1;
	commits = 0;

	struct els_monitor_opts mo = {.path = db, .producers = 1};
	els_diag_init(&d, "monitor");
	mon = els_monitor_open(&mo, &d);
	cr_assert_not_null(mon, "%s", d.count ? d.msgs[0] : "?");
	els_diag_free(&d);
	wring = els_ring_new(256);
	ctl = els_ring_new(256);
	cr_assert_eq(els_worker_init(&w, 0, 64, wring), 0);
	w.pol = gens[0];
	atomic_store(&stop, false);
	cr_assert_eq(pthread_create(&snap_thread, NULL, serve_snapshots, NULL), 0);

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
	struct els_control_env env = {
	    .config_path = conf,
	    .services_path = "/dev/null",
	    .monitor_path = db,
	    .workers = &w,
	    .nq = 1,
	    .ctl = ctl,
	    .running = running,
	    .commit = commit,
	};
	c = els_control_new(&env, sv[0], 0, NULL);
	cr_assert_not_null(c);
	els_ipc_init(&peer, sv[1]);
}

static void teardown(void)
{

	els_control_free(c);
	els_ipc_close(&peer);
	atomic_store(&stop, true);
	pthread_join(snap_thread, NULL);
	els_worker_fini(&w);
	els_ring_free(wring);
	els_ring_free(ctl);
	els_monitor_close(mon);
	for (unsigned i = 0; i < ngens; i++)
		els_policy_free(gens[i]);
	/* the config, lists, monitor files and what applies left in the policy directory */
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(control, .init = setup, .fini = teardown);

/* ---- helpers ---- */

/* The audit records the control wrote since the last call, joined by newlines. */
static const char *audit(void)
{
	static char all[4096];
	const struct els_record *r;
	uint64_t lost;
	size_t o = 0;

	all[0] = '\0';
	while ((r = els_ring_peek(ctl, &lost))) {
		cr_assert_eq(r->kind, ELS_REC_EVENT);
		o += (size_t)snprintf(all + o, sizeof(all) - o, "%s\n", r->detail);
		cr_assert_lt(o, sizeof(all));
		els_ring_consume(ctl);
	}
	return all;
}

/* The answer on the endpoint's end of the channel, waiting up to 10 s while driving the
 * policy checker as the main loop does. */
static char *answer_from_channel(uint32_t *conn)
{
	struct els_ipc_msg m;
	for (int i = 0; i < 1000; i++) {
		els_control_check_io(c);
		if (els_control_events(c) & POLLOUT)
			els_control_io(c, POLLOUT);
		int rc = els_ipc_recv(&peer, &m);
		cr_assert_geq(rc, 0, "recv: %s", strerror(-rc));
		if (rc == 1) {
			cr_assert_eq(m.type, ELS_IPC_RESPONSE);
			if (conn)
				*conn = m.conn;
			return (char *)m.body;
		}
		struct pollfd p[2] = {{.fd = sv[1], .events = POLLIN},
				      {.fd = els_control_check_fd(c), .events = POLLIN}};
		poll(p, p[1].fd >= 0 ? 2 : 1, 10);
	}
	cr_assert_fail("no answer within 10 s");
	return NULL;
}

struct result {
	const char *outcome;
	json_t *resp; /* the whole answer */
};

/* Executes one request as the channel does once the certificate gave role; a request that
 * went to the policy checker is answered through the channel. */
static struct result exec_req(int role, const char *json)
{
	struct result r = {0};
	static uint32_t next_conn = 100;
	uint32_t conn = next_conn++, got = 0;
	char *resp = els_control_execute(c, "tester", role, "198.18.0.9:4000", conn, json,
					 strlen(json), &r.outcome);
	if (!resp) {
		cr_assert_str_eq(r.outcome, "pending", "no answer, so it waits for the checker");
		resp = answer_from_channel(&got);
		cr_assert_eq(got, conn, "the checker's answer goes to the connection that asked");
		json_t *j = json_loads(resp, 0, NULL);
		cr_assert_not_null(j, "%s", resp);
		json_t *err = json_object_get(json_object_get(j, "error"), "code");
		static char code[64];
		snprintf(code, sizeof(code), "%s", err ? json_string_value(err) : "?");
		r.outcome = json_is_true(json_object_get(j, "ok")) ? "ok" : code;
		json_decref(j);
	}
	r.resp = json_loads(resp, 0, NULL);
	cr_assert_not_null(r.resp, "%s", resp);
	free(resp);
	return r;
}

static json_t *result_of(const struct result *r)
{
	return json_object_get(r->resp, "result");
}

static char *dump(const struct result *r)
{
	static char buf[2048];
	char *s = json_dumps(r->resp, JSON_COMPACT);
	snprintf(buf, sizeof(buf), "%s", s ? s : "?");
	free(s);
	return buf;
}

#define REQ(cmd, args) "{\"v\":1,\"id\":7,\"cmd\":\"" cmd "\",\"args\":" args "}"

/* A valid request of every command in the table, and what its handler must have done. */
static const char *request_of(const char *cmd)
{
	static const struct {
		const char *cmd, *json;
	} reqs[] = {
	    {"status", REQ("status", "{}")},
	    {"stats", REQ("stats", "{}")},
	    {"policy.get", REQ("policy.get", "{}")},
	    {"policy.validate",
	     REQ("policy.validate", "{\"text\":\"chain = [ \\\"header_filter\\\" ];\\n"
				    "header_filter = { permits = ( ); };\\n\"}")},
	    {"list.get", REQ("list.get", "{\"list\":\"deny\"}")},
	    {"flows", REQ("flows", "{\"limit\":10}")},
	    {"log", REQ("log", "{\"kind\":\"drop\"}")},
	    {"policy.apply",
	     REQ("policy.apply", "{\"text\":\"chain = [ \\\"header_filter\\\" ];\\n"
				 "header_filter = { permits = ( { id = \\\"new-in\\\"; dir = "
				 "\\\"in\\\"; proto = \\\"tcp\\\"; local_ports = [ 9443 ]; } ); "
				 "};\\n\"}")},
	    {"policy.rollback", REQ("policy.rollback", "{}")},
	    {"list.add", REQ("list.add", "{\"list\":\"deny\",\"entries\":[\"198.19.66.2\"]}")},
	    {"list.del", REQ("list.del", "{\"list\":\"deny\",\"entries\":[\"198.19.66.1\"]}")},
	    {"sweep", REQ("sweep", "{}")},
	};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		if (strcmp(reqs[i].cmd, cmd) == 0)
			return reqs[i].json;
	return NULL;
}

/* ---- dispatch ---- */

Test(control, every_command_reaches_its_handler)
{
	unsigned n = 0;

	for (const struct els_mgmt_cmd_info *k = els_mgmt_commands(); k->name; k++, n++) {
		const char *json = request_of(k->name);
		cr_assert_not_null(json, "a command this test does not know: %s", k->name);
		struct result r = exec_req(ELS_ROLE_ADMIN, json);
		cr_assert_str_eq(r.outcome, "ok", "%s: %s", k->name, dump(&r));
		cr_assert_eq(json_integer_value(json_object_get(r.resp, "id")), 7, "%s", k->name);
		json_t *res = result_of(&r);
		cr_assert(json_is_object(res), "%s: %s", k->name, dump(&r));
		/* what each handler did, as the daemon would see it */
		if (strcmp(k->name, "policy.get") == 0)
			cr_assert(strstr(dump(&r), "web-in"), "%s", dump(&r));
		else if (strcmp(k->name, "list.get") == 0)
			cr_assert(strstr(dump(&r), "198.19.66.1"), "%s", dump(&r));
		else if (strcmp(k->name, "list.add") == 0)
			cr_assert(strstr(read_text(denyf), "198.19.66.2"), "%s", read_text(denyf));
		else if (strcmp(k->name, "list.del") == 0)
			cr_assert_null(strstr(read_text(denyf), "198.19.66.1\n"), "%s",
				       read_text(denyf));
		else if (strcmp(k->name, "policy.apply") == 0)
			cr_assert_eq(commits, 1, "the applied document is a new generation");
		else if (strcmp(k->name, "policy.rollback") == 0)
			cr_assert_eq(commits, 2, "the rolled-back policy is a new generation");
		else if (strcmp(k->name, "sweep") == 0)
			cr_assert(json_is_true(json_object_get(res, "started")) &&
				      strcmp(json_string_value(json_object_get(res, "command")),
					     "true") == 0,
				  "%s", dump(&r));
		json_decref(r.resp);
		const char *a = audit();
		/* reads of one identity are recorded once per window; everything else always */
		if (!(k->flags & ELS_MGMT_CMD_READ) || n == 0)
			cr_assert(strstr(a, k->name) && strstr(a, ": ok"), "%s: audit %s",
				  k->name, a);
	}
	cr_assert_eq(n, 12, "the table has %u commands; this test checks each", n);
	/* apply, list.add, list.del and rollback each made a generation */
	cr_assert_eq(commits, 4, "commits %u", commits);
	int status;
	while (waitpid(-1, &status, 0) > 0) {
	}
}

Test(control, unknown_command_refused_naming_the_known_ones)
{
	struct result r = exec_req(ELS_ROLE_ADMIN, REQ("reboot", "{}"));
	cr_assert_str_eq(r.outcome, "unknown_command");
	cr_assert_not(json_is_true(json_object_get(r.resp, "ok")));
	for (const struct els_mgmt_cmd_info *k = els_mgmt_commands(); k->name; k++)
		cr_assert(strstr(dump(&r), k->name), "%s missing from %s", k->name, dump(&r));
	json_decref(r.resp);
	cr_assert(strstr(audit(), "unknown_command"));
	/* and the next request is served */
	r = exec_req(ELS_ROLE_AUDITOR, REQ("status", "{}"));
	cr_assert_str_eq(r.outcome, "ok");
	json_decref(r.resp);
}

Test(control, auditor_refused_every_admin_command_and_nothing_changes)
{
	char before[4096];
	unsigned refused = 0;

	snprintf(before, sizeof(before), "%s", read_text(denyf));
	for (const struct els_mgmt_cmd_info *k = els_mgmt_commands(); k->name; k++) {
		struct result r = exec_req(ELS_ROLE_AUDITOR, request_of(k->name));
		if (k->role == ELS_ROLE_ADMIN) {
			cr_assert_str_eq(r.outcome, "forbidden", "%s: %s", k->name, dump(&r));
			cr_assert(strstr(audit(), "forbidden"), "%s: the refusal is recorded",
				  k->name);
			refused++;
		} else {
			cr_assert_str_eq(r.outcome, "ok", "%s: %s", k->name, dump(&r));
			audit();
		}
		json_decref(r.resp);
	}
	cr_assert_eq(refused, 5, "policy.apply, policy.rollback, list.add, list.del, sweep");
	cr_assert_str_eq(read_text(denyf), before, "the list file is untouched");
	cr_assert_eq(commits, 0, "no generation was made");
	cr_assert_eq(ngens, 1);
	/* no role at all: even reads are refused */
	struct result r = exec_req(ELS_ROLE_NONE, REQ("status", "{}"));
	cr_assert_str_eq(r.outcome, "forbidden");
	json_decref(r.resp);
}

Test(control, garbled_and_oversize_requests_refused_then_served_on)
{
	static const char *const bad[] = {
	    "not json",
	    "{\"v\":1,\"id\":1,\"cmd\":\"status\"",		     /* cut short */
	    "{\"v\":1,\"id\":1,\"cmd\":\"status\",\"cmd\":\"sweep\"}", /* a second cmd */
	    "[\"status\"]",
	    "{\"v\":1,\"id\":1,\"cmd\":\"list.add\",\"args\":{\"list\":\"deny\",\"entries\":[5]}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct result r = exec_req(ELS_ROLE_ADMIN, bad[i]);
		cr_assert_str_eq(r.outcome, "bad_request", "%s: %s", bad[i], dump(&r));
		json_decref(r.resp);
	}
	/* A request larger than a frame: the endpoint never passes one on, and the dispatcher
	 * refuses it too. */
	size_t big = ELS_MGMT_MAX_FRAME + 64;
	char *s = malloc(big + 1);
	cr_assert_not_null(s);
	int o = snprintf(s, big, "{\"v\":1,\"id\":1,\"cmd\":\"list.add\",\"args\":{\"list\":"
				 "\"deny\",\"entries\":[\"");
	memset(s + o, 'a', big - (size_t)o - 4);
	memcpy(s + big - 4, "\"]}}", 5);
	struct result r = exec_req(ELS_ROLE_ADMIN, s);
	free(s);
	cr_assert_neq(strcmp(r.outcome, "ok"), 0, "a request over %u bytes", ELS_MGMT_MAX_FRAME);
	json_decref(r.resp);
	cr_assert_null(strstr(read_text(denyf), "aaaa"));
	/* every refusal was recorded, and the next request is served */
	cr_assert(strstr(audit(), "bad_request"));
	r = exec_req(ELS_ROLE_ADMIN, request_of("list.add"));
	cr_assert_str_eq(r.outcome, "ok", "%s", dump(&r));
	json_decref(r.resp);
}

/* ---- the channel from the endpoint ---- */

/* An ELS_IPC_REQUEST body: 4-byte length, the peer's DER certificates, peer address, NUL,
 * JSON (agent/mgmt/ipc.h). */
static void send_request(uint32_t conn, const char *der, const char *peer_addr, const char *json)
{
	uint8_t body[512];
	size_t dl = strlen(der), pl = strlen(peer_addr) + 1, jl = strlen(json);
	body[0] = 0, body[1] = 0, body[2] = (uint8_t)(dl >> 8), body[3] = (uint8_t)dl;
	memcpy(body + 4, der, dl);
	memcpy(body + 4 + dl, peer_addr, pl);
	memcpy(body + 4 + dl + pl, json, jl);
	cr_assert_eq(els_ipc_send(&peer, ELS_IPC_REQUEST, conn, body, 4 + dl + pl + jl), 0);
	els_control_io(c, POLLIN);
}

Test(control, channel_refuses_untrusted_and_serves_on_until_the_protocol_breaks)
{
	uint32_t conn = 0;

	/* no trust anchors (trust NULL): every certificate is refused, and answered */
	send_request(41, "not a certificate", "198.18.0.9:4000", REQ("status", "{}"));
	char *resp = answer_from_channel(&conn);
	cr_assert_eq(conn, 41);
	cr_assert(strstr(resp, "\"forbidden\""), "%s", resp);
	free(resp);
	cr_assert(strstr(audit(), "forbidden"));

	/* a malformed request (a peer address with a newline) is dropped, unanswered */
	send_request(42, "x", "198.18.0.9\n:4000", REQ("status", "{}"));
	cr_assert_not(els_control_down(c));
	struct els_ipc_msg m;
	cr_assert_eq(els_ipc_recv(&peer, &m), 0, "no answer to a malformed request");

	/* the channel serves on */
	send_request(43, "again", "198.18.0.9:4001", REQ("sweep", "{}"));
	resp = answer_from_channel(&conn);
	cr_assert_eq(conn, 43);
	cr_assert(strstr(resp, "\"forbidden\""), "%s", resp);
	free(resp);
	cr_assert_not(els_control_down(c));

	/* a datagram that breaks the message protocol (a header of an unknown type) closes the
	 * channel: the main process stops the endpoint and starts another */
	struct els_ipc_hdr h = {.type = 999, .len = 4, .total = 4};
	uint8_t dg[sizeof(h) + 4];
	memcpy(dg, &h, sizeof(h));
	memcpy(dg + sizeof(h), "junk", 4);
	cr_assert_eq(send(sv[1], dg, sizeof(dg), 0), (ssize_t)sizeof(dg));
	els_control_io(c, POLLIN);
	cr_assert(els_control_down(c));
	cr_assert(strstr(audit(), "broke the message protocol"));
}
