/* Service-bound permits: the header filter's service/exe/user/group (parse errors, matching
 * against an owner, the fail policy, deferral while the owner is looked up) and the /proc and
 * sock_diag parsers of lib/owner/owner_parse.c. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <string.h>

#include "els/handler.h"
#include "els/owner.h"

extern const struct els_handler els_handler_header_filter;

struct built {
	config_t cfg;
	struct els_diag diag;
	void *conf;
	int rc;
};

static void build_text(struct built *b, const char *text)
{
	struct els_build_env env = {.config_path = "test.conf", .services_path = "/dev/null"};
	config_init(&b->cfg);
	els_diag_init(&b->diag, "test.conf");
	cr_assert(config_read_string(&b->cfg, text), "libconfig: %s at line %d",
		  config_error_text(&b->cfg), config_error_line(&b->cfg));
	b->conf = NULL;
	b->rc = els_handler_header_filter.build(config_lookup(&b->cfg, "header_filter"), &env,
						&b->conf, &b->diag);
}

static void built_free(struct built *b)
{
	if (b->conf)
		els_handler_header_filter.destroy(b->conf);
	els_diag_free(&b->diag);
	config_destroy(&b->cfg);
}

/* The owner the fake lookup hands back, and what it answers. */
static struct els_owner fake;
static enum els_owner_res fake_res;
static unsigned fake_calls, fake_need;

static enum els_owner_res fake_owner(void *arg, const struct els_pkt *p, unsigned need,
				     const struct els_owner **out)
{
	(void)arg;
	(void)p;
	fake_calls++;
	fake_need |= need;
	*out = &fake;
	return fake_res;
}

static struct els_decision decide_ctx(const struct built *b, int dir, int lport, bool origin,
				      bool with_owner)
{
	struct els_pkt p = {
	    .family = ELS_AF_INET, .proto = 6, .dir = (uint8_t)dir, .flags = ELS_PKT_HAS_PORTS};
	inet_pton(AF_INET, "198.18.0.2", dir == ELS_DIR_IN ? p.dst.b : p.src.b);
	inet_pton(AF_INET, "198.18.0.1", dir == ELS_DIR_IN ? p.src.b : p.dst.b);
	p.dport = (uint16_t)(dir == ELS_DIR_IN ? lport : 5432);
	p.sport = (uint16_t)(dir == ELS_DIR_IN ? 40000 : lport);
	struct els_ctx ctx = {.pkt = &p, .origin = origin, .owner = with_owner ? fake_owner : NULL};
	struct els_decision d;
	memset(&d, 0xee, sizeof(d));
	enum els_action a = els_handler_header_filter.handle(b->conf, &ctx, &d);
	cr_assert_eq(a, (enum els_action)d.action);
	return d;
}

static struct els_decision decide(const struct built *b, int lport)
{
	return decide_ctx(b, ELS_DIR_IN, lport, false, true);
}

static void set_owner(const char *unit, const char *exe, bool exe_ok, uint32_t uid, uint32_t gid)
{
	memset(&fake, 0, sizeof(fake));
	snprintf(fake.unit, sizeof(fake.unit), "%s", unit);
	snprintf(fake.exe, sizeof(fake.exe), "%s", exe);
	fake.exe_ok = exe_ok;
	fake.uid = uid;
	fake.gid = gid;
	fake.pid = 4242;
	fake_res = ELS_OWNER_FOUND;
	fake_calls = fake_need = 0;
}

#define POLICY(extra, fail)                                                                        \
	"header_filter = { " fail " permits = ( "                                                  \
	"{ id = \"web\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 443 ]; "                   \
	"service = \"nginx\"; exe = \"/usr/sbin/nginx\"; user = 33; group = 33; }, "               \
	"{ id = \"plain\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 22 ]; } " extra " ); };"

Test(service_permit, matches_only_the_named_owner)
{
	struct built b;
	build_text(&b, POLICY("", ""));
	cr_assert_eq(b.rc, 0);

	set_owner("nginx.service", "/usr/sbin/nginx", true, 33, 33);
	struct els_decision d = decide(&b, 443);
	cr_assert_eq(d.action, ELS_ACCEPT);
	cr_assert_eq(d.reason, ELS_R_PERMIT);
	cr_assert_eq(d.rule, 1);
	cr_assert_eq(fake_need, ELS_OWNER_NEED_UID | ELS_OWNER_NEED_GID | ELS_OWNER_NEED_PROC);

	/* each condition alone refuses, and the drop names the permit */
	const struct {
		const char *unit, *exe;
		bool ok;
		uint32_t uid, gid;
	} bad[] = {
	    {"apache2.service", "/usr/sbin/nginx", true, 33, 33},
	    {"nginx.service", "/tmp/nginx", true, 33, 33},
	    {"nginx.service", "/usr/sbin/nginx", false, 33, 33}, /* another file by that name */
	    {"nginx.service", "/usr/sbin/nginx", true, 0, 33},
	    {"nginx.service", "/usr/sbin/nginx", true, 33, 0}};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set_owner(bad[i].unit, bad[i].exe, bad[i].ok, bad[i].uid, bad[i].gid);
		d = decide(&b, 443);
		cr_assert_eq(d.action, ELS_DROP, "case %u", i);
		cr_assert_eq(d.reason, ELS_R_WRONG_SERVICE, "case %u", i);
		cr_assert_eq(d.rule, 1, "case %u", i);
	}
	/* a permit without a service never asks */
	set_owner("x.service", "/x", true, 1, 1);
	d = decide(&b, 22);
	cr_assert_eq(d.action, ELS_ACCEPT);
	cr_assert_eq(fake_calls, 0);
	built_free(&b);
}

Test(service_permit, owner_unknown_follows_the_fail_policy)
{
	struct built b;
	build_text(&b, POLICY("", ""));
	cr_assert_eq(b.rc, 0);
	set_owner("", "", false, 0, 0);
	fake_res = ELS_OWNER_UNKNOWN;
	struct els_decision d = decide(&b, 443);
	cr_assert_eq(d.action, ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_OWNER_UNKNOWN);
	/* no sockets to ask (a replayed capture): the ports decide */
	d = decide_ctx(&b, ELS_DIR_IN, 443, false, false);
	cr_assert_eq(d.action, ELS_ACCEPT);
	cr_assert_eq(d.reason, ELS_R_PERMIT);
	built_free(&b);

	build_text(&b, POLICY("", "fail = \"open\";"));
	cr_assert_eq(b.rc, 0);
	fake_res = ELS_OWNER_UNKNOWN;
	d = decide(&b, 443);
	cr_assert_eq(d.action, ELS_ACCEPT);
	cr_assert_eq(d.reason, ELS_R_OWNER_UNKNOWN);
	cr_assert_eq(d.rule, 1);
	/* fail open does not admit a known wrong owner */
	set_owner("evil.service", "/usr/sbin/nginx", true, 33, 33);
	d = decide(&b, 443);
	cr_assert_eq(d.action, ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_WRONG_SERVICE);
	built_free(&b);
}

Test(service_permit, pending_defers_unless_an_earlier_permit_matches)
{
	struct built b;
	build_text(
	    &b, "header_filter = { permits = ( "
		"{ id = \"any443\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 443 ]; "
		"  remote = [ \"198.18.0.9\" ]; },"
		"{ id = \"web\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 443 ]; "
		"  service = \"nginx.service\"; },"
		"{ id = \"late\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 443 ]; } ); };");
	cr_assert_eq(b.rc, 0);
	set_owner("", "", false, 0, 0);
	fake_res = ELS_OWNER_PENDING;
	struct els_decision d = decide(&b, 443);
	cr_assert_eq(d.action, ELS_DEFER, "a later permit must not decide while an earlier waits");
	/* a flow re-judged after a reload or adopted at start is not asked about */
	d = decide_ctx(&b, ELS_DIR_IN, 443, true, true);
	cr_assert_eq(d.action, ELS_ACCEPT);
	cr_assert_eq(d.rule, 2);
	built_free(&b);
}

Test(service_permit, outbound_user_only_needs_ids)
{
	struct built b;
	build_text(&b,
		   "header_filter = { permits = ( { id = \"db\"; dir = \"out\"; proto = \"tcp\"; "
		   "remote_ports = [ 5432 ]; user = \"root\"; } ); };");
	cr_assert_eq(b.rc, 0);
	set_owner("", "", false, 0, 0);
	struct els_decision d = decide_ctx(&b, ELS_DIR_OUT, 40000, false, true);
	cr_assert_eq(d.action, ELS_ACCEPT);
	cr_assert_eq(fake_need, ELS_OWNER_NEED_UID);
	built_free(&b);
}

static void build_err(const char *permit, const char *msg)
{
	struct built b;
	char text[1024];
	snprintf(text, sizeof(text), "header_filter = { permits = ( { id = \"p\"; %s } ); };",
		 permit);
	build_text(&b, text);
	cr_assert_neq(b.rc, 0, "accepted: %s", permit);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	els_diag_print(&b.diag, f);
	fclose(f);
	cr_assert(strstr(out, msg), "'%s' not in: %s", msg, out);
	free(out);
	built_free(&b);
}

Test(service_permit, bad_settings_are_named)
{
	build_err("dir = \"in\"; proto = \"tcp\"; exe = \"nginx\";",
		  "'exe' = \"nginx\" must be an absolute");
	build_err("dir = \"in\"; proto = \"tcp\"; user = \"no-such-user-x\";",
		  "no user \"no-such-user-x\"");
	build_err("dir = \"in\"; proto = \"tcp\"; group = \"no-such-group-x\";",
		  "no group \"no-such-group-x\"");
	build_err("dir = \"in\"; proto = \"icmp\"; service = \"a.service\";", "ICMP has no socket");
	build_err("dir = \"in\"; proto = \"tcp\"; service = \"a/b.service\";",
		  "is not a systemd unit");
	build_err("dir = \"in\"; proto = \"tcp\"; service = \"\";",
		  "'service' must be a non-empty");
}

Test(owner_parse, cgroup_units)
{
	char u[ELS_OWNER_UNIT_LEN];
	const char *v1 = "12:pids:/system.slice/other.service\n"
			 "1:name=systemd:/system.slice/nginx.service\n0::/\n";
	cr_assert(els_owner_unit_parse(v1, strlen(v1), u, sizeof(u)));
	cr_assert_str_eq(u, "nginx.service");
	const char *v2 = "0::/system.slice/postgresql@15-main.service\n";
	cr_assert(els_owner_unit_parse(v2, strlen(v2), u, sizeof(u)));
	cr_assert_str_eq(u, "postgresql@15-main.service");
	const char *deep = "0::/system.slice/nginx.service/worker/sub\n";
	cr_assert(els_owner_unit_parse(deep, strlen(deep), u, sizeof(u)));
	cr_assert_str_eq(u, "nginx.service");
	const char *user = "0::/user.slice/user-1000.slice/session-3.scope";
	cr_assert(els_owner_unit_parse(user, strlen(user), u, sizeof(u)));
	cr_assert_str_eq(u, "session-3.scope");
	const char *none = "0::/\n1:name=systemd:/\n";
	cr_assert_not(els_owner_unit_parse(none, strlen(none), u, sizeof(u)));
	cr_assert_str_eq(u, "");
	const char *odd = "0::/system.slice/a b.service\n"; /* not a name systemd makes */
	cr_assert_not(els_owner_unit_parse(odd, strlen(odd), u, sizeof(u)));
	/* a v1 named hierarchy at "/" falls back to the unified one */
	const char *hyb = "1:name=systemd:/\n0::/system.slice/x.service\n";
	cr_assert(els_owner_unit_parse(hyb, strlen(hyb), u, sizeof(u)));
	cr_assert_str_eq(u, "x.service");
}

Test(owner_parse, status_and_links)
{
	uint32_t uid = 1, gid = 1;
	const char *st = "Name:\tnginx\nUid:\t0\t33\t33\t33\nGid:\t0\t34\t34\t34\n";
	cr_assert(els_owner_status_parse(st, strlen(st), &uid, &gid));
	cr_assert_eq(uid, 33);
	cr_assert_eq(gid, 34);
	const char *bad = "Uid:\t0\n";
	cr_assert_not(els_owner_status_parse(bad, strlen(bad), &uid, &gid));
	const char *big = "Uid:\t0\t99999999999\t0\t0\nGid:\t0\t0\t0\t0\n";
	cr_assert_not(els_owner_status_parse(big, strlen(big), &uid, &gid));
	uint64_t ino = 0;
	cr_assert(els_owner_socket_link("socket:[123456]", 15, &ino));
	cr_assert_eq(ino, 123456);
	cr_assert_not(els_owner_socket_link("socket:[]", 9, &ino));
	cr_assert_not(els_owner_socket_link("pipe:[12]", 9, &ino));
	cr_assert_not(els_owner_socket_link("socket:[12", 10, &ino));
}

Test(owner_parse, diag_answers)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_msg m;
	} a = {0};
	a.h.nlmsg_len = sizeof(a);
	a.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	a.h.nlmsg_seq = 7;
	a.m.idiag_uid = 33;
	a.m.idiag_inode = 98765;
	uint64_t ino = 0;
	uint32_t uid = 0;
	cr_assert_eq(els_owner_diag_answer(&a, sizeof(a), 7, &ino, &uid), 1);
	cr_assert_eq(ino, 98765);
	cr_assert_eq(uid, 33);
	cr_assert_eq(els_owner_diag_answer(&a, sizeof(a), 8, &ino, &uid), -1, "another request's");
	cr_assert_eq(els_owner_diag_answer(&a, sizeof(a) - 1, 7, &ino, &uid), -1, "cut short");
	a.h.nlmsg_type = NLMSG_ERROR;
	cr_assert_eq(els_owner_diag_answer(&a, sizeof(a), 7, &ino, &uid), 0);
	char d[96];
	struct els_owner o = {
	    .pid = 12, .uid = 33, .unit = "nginx.service", .exe = "/usr/sbin/nginx"};
	els_owner_describe(&o, d, sizeof(d));
	cr_assert_str_eq(d, "unit=nginx.service uid=33 pid=12 exe=/usr/sbin/nginx");
}
