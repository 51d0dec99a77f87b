/* header_filter: permit matching, port 0, fragments, ICMP, addresses, config errors, and the
 * compiled lookup checked against a brute-force reference (random policies, 100,000 permits). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "els/addr.h"
#include "els/handler.h"

extern const struct els_handler els_handler_header_filter;

static char svc_path[] = "/tmp/els_hf_services_XXXXXX";
static const char svc_text[] = "# test services\n"
			       "http 80/tcp www # WorldWideWeb\n"
			       "https 443/tcp\n"
			       "https 443/udp\n"
			       "domain 53/tcp\n"
			       "domain 53/udp\n"
			       "syslog 514/udp\n"
			       "ssh 22/tcp\n";

static void setup(void)
{
	int fd = mkstemp(svc_path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, svc_text, sizeof(svc_text) - 1), (ssize_t)sizeof(svc_text) - 1);
	close(fd);
}

static void teardown(void)
{
	unlink(svc_path);
}

TestSuite(header_filter, .init = setup, .fini = teardown);

struct built {
	config_t cfg;
	struct els_diag diag;
	void *conf;
	int rc;
};

static void build_text(struct built *b, const char *text)
{
	struct els_build_env env = {.config_path = "test.conf", .services_path = svc_path};
	config_init(&b->cfg);
	els_diag_init(&b->diag, "test.conf");
	cr_assert(config_read_string(&b->cfg, text), "libconfig: %s at line %d",
		  config_error_text(&b->cfg), config_error_line(&b->cfg));
	b->conf = NULL;
	b->rc = els_handler_header_filter.build(config_lookup(&b->cfg, "header_filter"), &env,
						&b->conf, &b->diag);
}

/* Builds a policy that must be valid. */
static void build_ok(struct built *b, const char *text)
{
	build_text(b, text);
	if (b->rc)
		els_diag_print(&b->diag, stderr);
	cr_assert_eq(b->rc, 0);
	cr_assert_not_null(b->conf);
	cr_assert_eq(b->diag.count, 0);
}

static void built_free(struct built *b)
{
	if (b->conf)
		els_handler_header_filter.destroy(b->conf);
	els_diag_free(&b->diag);
	config_destroy(&b->cfg);
}

static void addr_of(const char *text, struct els_addr *a, uint8_t *family)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, text, a->b) == 1) {
		*family = ELS_AF_INET;
		return;
	}
	cr_assert_eq(inet_pton(AF_INET6, text, a->b), 1, "bad test address %s", text);
	*family = ELS_AF_INET6;
}

/* A TCP (6) or UDP (17) packet; other protocol numbers get no ports. */
static struct els_pkt pkt(int dir, int proto, const char *src, int sport, const char *dst,
			  int dport)
{
	struct els_pkt p = {0};
	addr_of(src, &p.src, &p.family);
	addr_of(dst, &p.dst, &p.family);
	p.dir = (uint8_t)dir;
	p.proto = (uint8_t)proto;
	if (proto == 6 || proto == 17) {
		p.flags = ELS_PKT_HAS_PORTS;
		p.sport = (uint16_t)sport;
		p.dport = (uint16_t)dport;
	}
	return p;
}

static struct els_pkt icmp(int dir, const char *src, const char *dst, int type)
{
	struct els_pkt p = pkt(dir, 1, src, 0, dst, 0);
	p.proto = p.family == ELS_AF_INET ? 1 : 58;
	p.flags = ELS_PKT_HAS_ICMP;
	p.icmp_type = (uint8_t)type;
	return p;
}

static struct els_pkt later_frag(struct els_pkt p)
{
	p.flags = ELS_PKT_FRAGMENT | ELS_PKT_LATER_FRAG;
	p.sport = p.dport = 0;
	p.icmp_type = 0;
	return p;
}

static struct els_decision decide(const struct built *b, struct els_pkt p)
{
	struct els_ctx ctx = {.pkt = &p};
	struct els_decision d;
	memset(&d, 0xee, sizeof(d));
	enum els_action a = els_handler_header_filter.handle(b->conf, &ctx, &d);
	cr_assert_eq(a, (enum els_action)d.action);
	return d;
}

#define IN  ELS_DIR_IN
#define OUT ELS_DIR_OUT
#define L4  "198.18.0.2"
#define R4  "203.0.113.9"
#define L6  "2001:db8:1::2"
#define R6  "2001:db8:99::9"

static void accepts(const struct built *b, struct els_pkt p, unsigned rule)
{
	struct els_decision d = decide(b, p);
	cr_assert_eq(d.action, ELS_ACCEPT, "expected accept by rule %u, got reason %u", rule,
		     d.reason);
	cr_assert_eq(d.reason, ELS_R_PERMIT);
	cr_assert_eq(d.rule, rule);
}

static void drops(const struct built *b, struct els_pkt p, unsigned reason)
{
	struct els_decision d = decide(b, p);
	cr_assert_eq(d.action, ELS_DROP, "expected drop (%u), got accept by rule %u", reason,
		     d.rule);
	cr_assert_eq(d.reason, reason, "reason %u, expected %u", d.reason, reason);
	cr_assert_eq(d.rule, 0);
}

Test(header_filter, inbound_and_outbound_permits)
{
	struct built b;
	build_ok(
	    &b,
	    "header_filter = { fail = \"closed\"; permits = (\n"
	    "  { id = \"https-in\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ \"https\" ]; "
	    "},\n"
	    "  { id = \"dns-out\"; dir = \"out\"; proto = \"udp\"; remote_ports = [ \"domain\" ];\n"
	    "    remote = [ \"198.18.0.53\" ]; }\n"
	    "); };\n");
	accepts(&b, pkt(IN, 6, R4, 40000, L4, 443), 1);
	accepts(&b, pkt(IN, 6, R6, 40000, L6, 443), 1);
	/* the same ports the other way round: an outbound connection to a remote 443 */
	drops(&b, pkt(OUT, 6, L4, 40000, R4, 443), ELS_R_NO_PERMIT);
	/* a reply from local 443 is the tracker's business, not a permit's */
	drops(&b, pkt(OUT, 6, L4, 443, R4, 40000), ELS_R_NO_PERMIT);
	drops(&b, pkt(IN, 6, R4, 40000, L4, 444), ELS_R_NO_PERMIT);
	accepts(&b, pkt(OUT, 17, L4, 5353, "198.18.0.53", 53), 2);
	drops(&b, pkt(OUT, 17, L4, 5353, "198.18.0.54", 53), ELS_R_NO_PERMIT);
	drops(&b, pkt(IN, 17, "198.18.0.53", 53, L4, 5353), ELS_R_NO_PERMIT);
	cr_assert_str_eq(els_handler_header_filter.rule_name(b.conf, 1), "https-in");
	cr_assert_str_eq(els_handler_header_filter.rule_name(b.conf, 2), "dns-out");
	cr_assert_null(els_handler_header_filter.rule_name(b.conf, 0));
	cr_assert_null(els_handler_header_filter.rule_name(b.conf, 3));
	built_free(&b);
}

Test(header_filter, no_section_and_no_permits_deny_everything)
{
	struct built b;
	build_ok(&b, "other = 1;\n");
	drops(&b, pkt(IN, 6, R4, 40000, L4, 443), ELS_R_NO_PERMIT);
	drops(&b, icmp(IN, R4, L4, 8), ELS_R_NO_PERMIT);
	drops(&b, pkt(IN, 6, R4, 0, L4, 443), ELS_R_PORT_ZERO);
	built_free(&b);
	build_ok(&b, "header_filter = { permits = (); };\n");
	drops(&b, pkt(OUT, 17, L4, 4000, R4, 53), ELS_R_NO_PERMIT);
	built_free(&b);
}

Test(header_filter, tcp_udp_and_any)
{
	struct built b;
	build_ok(&b, "header_filter = { permits = (\n"
		     "  { dir = \"in\"; proto = \"tcp\"; local_ports = ( 22 ); },\n"
		     "  { dir = \"in\"; proto = \"udp\"; local_ports = ( 514 ); },\n"
		     "  { dir = \"in\"; proto = \"any\"; local_ports = ( 7 ); },\n"
		     "  { dir = \"out\"; proto = \"any\"; remote = [ \"192.0.2.0/24\" ]; }\n"
		     "); };\n");
	accepts(&b, pkt(IN, 6, R4, 1234, L4, 22), 1);
	drops(&b, pkt(IN, 17, R4, 1234, L4, 22), ELS_R_NO_PERMIT);
	accepts(&b, pkt(IN, 17, R4, 1234, L4, 514), 2);
	drops(&b, pkt(IN, 6, R4, 1234, L4, 514), ELS_R_NO_PERMIT);
	accepts(&b, pkt(IN, 6, R4, 1234, L4, 7), 3);
	accepts(&b, pkt(IN, 17, R6, 1234, L6, 7), 3);
	/* "any" with ports means tcp and udp only */
	drops(&b, icmp(IN, R4, L4, 8), ELS_R_NO_PERMIT);
	/* "any" without ports covers ICMP and ICMPv6 too */
	accepts(&b, pkt(OUT, 6, L4, 1234, "192.0.2.7", 80), 4);
	accepts(&b, pkt(OUT, 17, L4, 1234, "192.0.2.7", 53), 4);
	accepts(&b, icmp(OUT, L4, "192.0.2.7", 8), 4);
	drops(&b, icmp(OUT, L4, "192.0.3.7", 8), ELS_R_NO_PERMIT);
	/* protocols other than tcp/udp/icmp/icmpv6 match nothing, not even "any" */
	drops(&b, pkt(OUT, 47, L4, 0, "192.0.2.7", 0), ELS_R_NO_PERMIT);
	drops(&b, pkt(OUT, 132, L4, 0, "192.0.2.7", 0), ELS_R_NO_PERMIT);
	cr_assert_str_eq(els_handler_header_filter.rule_name(b.conf, 4), "permit-4");
	built_free(&b);
}

Test(header_filter, service_names_per_protocol)
{
	struct built b;
	build_ok(&b,
		 "header_filter = { permits = (\n"
		 "  { dir = \"in\"; proto = \"tcp\"; local_ports = [ \"www\", \"ssh\" ]; },\n"
		 "  { dir = \"in\"; proto = \"any\"; local_ports = [ \"syslog\" ]; },\n"
		 "  { dir = \"out\"; proto = \"any\"; remote_ports = [ \"domain\", \"https\" ]; }\n"
		 "); };\n");
	accepts(&b, pkt(IN, 6, R4, 1234, L4, 80), 1);
	accepts(&b, pkt(IN, 6, R4, 1234, L4, 22), 1);
	/* syslog is udp only in the services file: proto any gets no tcp instance from it */
	accepts(&b, pkt(IN, 17, R4, 1234, L4, 514), 2);
	drops(&b, pkt(IN, 6, R4, 1234, L4, 514), ELS_R_NO_PERMIT);
	accepts(&b, pkt(OUT, 17, L4, 1234, R4, 53), 3);
	accepts(&b, pkt(OUT, 6, L4, 1234, R4, 53), 3);
	accepts(&b, pkt(OUT, 17, L4, 1234, R4, 443), 3);
	drops(&b, pkt(OUT, 17, L4, 1234, R4, 80), ELS_R_NO_PERMIT);
	built_free(&b);
}

Test(header_filter, classes_and_ranges)
{
	struct built b;
	build_ok(&b, "header_filter = { permits = (\n"
		     "  { dir = \"in\"; proto = \"tcp\"; local_ports = [ \"well-known\" ]; },\n"
		     "  { dir = \"in\"; proto = \"udp\"; local_ports = [ \"registered\" ]; },\n"
		     "  { dir = \"out\"; proto = \"tcp\"; local_ports = [ \"dynamic\" ];\n"
		     "    remote_ports = ( \"8000-8080\", 9000 ); }\n"
		     "); };\n");
	accepts(&b, pkt(IN, 6, R4, 50000, L4, 1), 1);
	accepts(&b, pkt(IN, 6, R4, 50000, L4, 1023), 1);
	drops(&b, pkt(IN, 6, R4, 50000, L4, 1024), ELS_R_NO_PERMIT);
	drops(&b, pkt(IN, 17, R4, 50000, L4, 1023), ELS_R_NO_PERMIT);
	accepts(&b, pkt(IN, 17, R4, 50000, L4, 1024), 2);
	accepts(&b, pkt(IN, 17, R4, 50000, L4, 49151), 2);
	drops(&b, pkt(IN, 17, R4, 50000, L4, 49152), ELS_R_NO_PERMIT);
	accepts(&b, pkt(OUT, 6, L4, 49152, R4, 8000), 3);
	accepts(&b, pkt(OUT, 6, L4, 65535, R4, 8080), 3);
	accepts(&b, pkt(OUT, 6, L4, 60000, R4, 9000), 3);
	drops(&b, pkt(OUT, 6, L4, 60000, R4, 7999), ELS_R_NO_PERMIT);
	drops(&b, pkt(OUT, 6, L4, 60000, R4, 8081), ELS_R_NO_PERMIT);
	drops(&b, pkt(OUT, 6, L4, 49151, R4, 8000), ELS_R_NO_PERMIT);
	built_free(&b);
}

Test(header_filter, port_zero_dropped_unless_named)
{
	struct built b;
	build_ok(
	    &b,
	    "header_filter = { permits = (\n"
	    "  { dir = \"in\"; proto = \"tcp\"; local_ports = [ 80 ]; },\n"
	    "  { dir = \"in\"; proto = \"tcp\"; },\n"
	    "  { dir = \"in\"; proto = \"udp\"; local_ports = [ 53 ]; remote_ports = [ 0 ]; },\n"
	    "  { dir = \"in\"; proto = \"udp\"; local_ports = [ \"0-10\" ]; },\n"
	    "  { dir = \"out\"; proto = \"udp\"; local_ports = [ \"well-known\" ]; }\n"
	    "); };\n");
	accepts(&b, pkt(IN, 6, R4, 1234, L4, 80), 1);
	accepts(&b, pkt(IN, 6, R4, 1234, L4, 81), 2);
	/* neither "any port" nor a permit naming 80 covers a remote port 0 */
	drops(&b, pkt(IN, 6, R4, 0, L4, 80), ELS_R_PORT_ZERO);
	drops(&b, pkt(IN, 6, R4, 1234, L4, 0), ELS_R_PORT_ZERO);
	drops(&b, pkt(IN, 6, R6, 0, L6, 0), ELS_R_PORT_ZERO);
	/* named explicitly: 0 passes */
	accepts(&b, pkt(IN, 17, R4, 0, L4, 53), 3);
	drops(&b, pkt(IN, 17, R4, 0, L4, 54), ELS_R_PORT_ZERO);
	accepts(&b, pkt(IN, 17, R4, 1234, L4, 0), 4);
	accepts(&b, pkt(IN, 17, R4, 1234, L4, 10), 4);
	drops(&b, pkt(IN, 17, R4, 0, L4, 0), ELS_R_PORT_ZERO);
	/* classes start at 1 */
	drops(&b, pkt(OUT, 17, L4, 0, R4, 53), ELS_R_PORT_ZERO);
	accepts(&b, pkt(OUT, 17, L4, 1, R4, 53), 5);
	built_free(&b);
}

Test(header_filter, later_fragments_need_a_permit_without_ports)
{
	struct built b;
	build_ok(&b, "header_filter = { permits = (\n"
		     "  { dir = \"in\"; proto = \"udp\"; local_ports = [ 53 ]; },\n"
		     "  { dir = \"in\"; proto = \"icmp\"; icmp_types = [ \"echo-request\" ]; },\n"
		     "  { dir = \"out\"; proto = \"udp\"; remote = [ \"192.0.2.0/24\" ]; },\n"
		     "  { dir = \"out\"; proto = \"icmpv6\"; }\n"
		     "); };\n");
	struct els_pkt first = pkt(IN, 17, R4, 1234, L4, 53);
	first.flags |= ELS_PKT_FRAGMENT;
	accepts(&b, first, 1);
	drops(&b, later_frag(first), ELS_R_FRAGMENT_NO_PORTS);
	drops(&b, later_frag(icmp(IN, R4, L4, 8)), ELS_R_FRAGMENT_NO_PORTS);
	accepts(&b, later_frag(pkt(OUT, 17, L4, 1234, "192.0.2.1", 53)), 3);
	drops(&b, later_frag(pkt(OUT, 17, L4, 1234, "192.0.3.1", 53)), ELS_R_FRAGMENT_NO_PORTS);
	drops(&b, later_frag(pkt(OUT, 6, L4, 1234, "192.0.2.1", 53)), ELS_R_FRAGMENT_NO_PORTS);
	accepts(&b, later_frag(icmp(OUT, L6, R6, 128)), 4);
	built_free(&b);
}

Test(header_filter, icmp_types)
{
	struct built b;
	build_ok(&b, "header_filter = { permits = (\n"
		     "  { dir = \"in\"; proto = \"icmp\"; icmp_types = [ \"echo-request\" ]; },\n"
		     "  { dir = \"in\"; proto = \"icmpv6\";\n"
		     "    icmp_types = ( \"echo-request\", \"neighbor-solicitation\", 2 ); },\n"
		     "  { dir = \"out\"; proto = \"icmp\"; icmp_types = [ 0, 3, 11 ]; },\n"
		     "  { dir = \"out\"; proto = \"icmpv6\"; }\n"
		     "); };\n");
	accepts(&b, icmp(IN, R4, L4, 8), 1);
	drops(&b, icmp(IN, R4, L4, 0), ELS_R_NO_PERMIT);
	drops(&b, icmp(IN, R4, L4, 128), ELS_R_NO_PERMIT);
	accepts(&b, icmp(IN, R6, L6, 128), 2);
	accepts(&b, icmp(IN, R6, L6, 135), 2);
	accepts(&b, icmp(IN, R6, L6, 2), 2);
	drops(&b, icmp(IN, R6, L6, 8), ELS_R_NO_PERMIT);
	drops(&b, icmp(IN, R6, L6, 136), ELS_R_NO_PERMIT);
	accepts(&b, icmp(OUT, L4, R4, 0), 3);
	accepts(&b, icmp(OUT, L4, R4, 11), 3);
	drops(&b, icmp(OUT, L4, R4, 8), ELS_R_NO_PERMIT);
	accepts(&b, icmp(OUT, L6, R6, 255), 4);
	/* protocol 1 inside IPv6 is not ICMPv6, and protocol 58 inside IPv4 is not ICMP */
	struct els_pkt odd = icmp(OUT, L6, R6, 0);
	odd.proto = 1;
	drops(&b, odd, ELS_R_NO_PERMIT);
	odd = icmp(IN, R4, L4, 8);
	odd.proto = 58;
	drops(&b, odd, ELS_R_NO_PERMIT);
	built_free(&b);
}

Test(header_filter, address_constraints_v4_v6_in_out)
{
	struct built b;
	build_ok(
	    &b,
	    "header_filter = { permits = (\n"
	    "  { dir = \"in\"; proto = \"tcp\"; local_ports = [ 443 ];\n"
	    "    local = [ \"198.18.0.2/32\", \"2001:db8:1::/48\" ];\n"
	    "    remote = [ \"10.0.0.0/8\", \"2001:db8:aa::/48\" ]; },\n"
	    "  { dir = \"out\"; proto = \"tcp\"; remote_ports = [ 25 ];\n"
	    "    local = [ \"198.18.0.2\" ]; remote = [ \"10.1.0.0/16\" ]; },\n"
	    "  { dir = \"in\"; proto = \"tcp\"; local_ports = [ 22 ]; local = [\n"
	    "    \"198.18.1.1\", \"198.18.1.2\", \"198.18.1.3\", \"198.18.1.4\", \"198.18.1.5\",\n"
	    "    \"198.18.1.6\", \"198.18.1.7\", \"198.18.1.8\", \"198.18.1.9\", "
	    "\"198.18.2.0/24\",\n"
	    "    \"2001:db8:2::/64\" ]; }\n"
	    "); };\n");
	accepts(&b, pkt(IN, 6, "10.9.9.9", 1234, "198.18.0.2", 443), 1);
	accepts(&b, pkt(IN, 6, "2001:db8:aa:1::1", 1234, "2001:db8:1::77", 443), 1);
	drops(&b, pkt(IN, 6, "11.9.9.9", 1234, "198.18.0.2", 443), ELS_R_NO_PERMIT);
	drops(&b, pkt(IN, 6, "10.9.9.9", 1234, "198.18.0.3", 443), ELS_R_NO_PERMIT);
	drops(&b, pkt(IN, 6, "2001:db8:ab::1", 1234, "2001:db8:1::77", 443), ELS_R_NO_PERMIT);
	drops(&b, pkt(IN, 6, "2001:db8:aa::1", 1234, "2001:db8:3::77", 443), ELS_R_NO_PERMIT);
	/* outbound: local is the source, remote the destination */
	accepts(&b, pkt(OUT, 6, "198.18.0.2", 40000, "10.1.2.3", 25), 2);
	drops(&b, pkt(OUT, 6, "10.1.2.3", 40000, "198.18.0.2", 25), ELS_R_NO_PERMIT);
	drops(&b, pkt(OUT, 6, "198.18.0.2", 40000, "10.2.2.3", 25), ELS_R_NO_PERMIT);
	/* long local lists (own LPM) */
	accepts(&b, pkt(IN, 6, R4, 1234, "198.18.1.9", 22), 3);
	accepts(&b, pkt(IN, 6, R4, 1234, "198.18.2.200", 22), 3);
	accepts(&b, pkt(IN, 6, R6, 1234, "2001:db8:2::1", 22), 3);
	drops(&b, pkt(IN, 6, R4, 1234, "198.18.1.10", 22), ELS_R_NO_PERMIT);
	drops(&b, pkt(IN, 6, R6, 1234, "2001:db8:3::1", 22), ELS_R_NO_PERMIT);
	built_free(&b);
}

Test(header_filter, first_match_in_config_order)
{
	struct built b;
	build_ok(
	    &b,
	    "header_filter = { permits = (\n"
	    "  { id = \"narrow\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 443 ];\n"
	    "    remote = [ \"10.1.2.3\" ]; local = [ \"198.18.0.9\" ]; },\n"
	    "  { id = \"mid\"; dir = \"in\"; proto = \"tcp\"; remote_ports = [ \"dynamic\" ];\n"
	    "    remote = [ \"10.1.0.0/16\" ]; },\n"
	    "  { id = \"wide\"; dir = \"in\"; proto = \"any\"; remote = [ \"10.0.0.0/8\" ]; },\n"
	    "  { id = \"https\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 443 ]; }\n"
	    "); };\n");
	accepts(&b, pkt(IN, 6, "10.1.2.3", 50000, "198.18.0.9", 443), 1);
	accepts(&b, pkt(IN, 6, "10.1.2.3", 50000, "198.18.0.2", 443), 2);
	accepts(&b, pkt(IN, 6, "10.1.2.3", 1000, "198.18.0.2", 443), 3);
	accepts(&b, pkt(IN, 6, "10.2.2.3", 50000, "198.18.0.2", 443), 3);
	accepts(&b, pkt(IN, 6, "11.2.2.3", 50000, "198.18.0.2", 443), 4);
	accepts(&b, pkt(IN, 17, "10.2.2.3", 50000, "198.18.0.2", 53), 3);
	cr_assert_str_eq(els_handler_header_filter.rule_name(b.conf, 3), "wide");
	built_free(&b);
}

static bool has_msg(const struct els_diag *d, const char *where, const char *what)
{
	for (unsigned i = 0; i < d->count; i++)
		if (strncmp(d->msgs[i], where, strlen(where)) == 0 && strstr(d->msgs[i], what))
			return true;
	return false;
}

#define ASSERT_MSG(b, where, what)                                                                 \
	cr_assert(has_msg(&(b).diag, where, what), "no message \"%s ... %s\"", where, what)

Test(header_filter, every_config_error_with_its_line)
{
	struct built b;
	build_text(
	    &b, "header_filter = {\n"							  /* 1 */
		"  fail = \"closed\";\n"						  /* 2 */
		"  colour = \"red\";\n"							  /* 3 */
		"  permits = (\n"							  /* 4 */
		"    { dir = \"in\"; proto = \"tcp\"; lcoal_ports = [ 1 ]; },\n"	  /* 5 */
		"    { proto = \"tcp\"; },\n"						  /* 6 */
		"    { dir = \"in\"; },\n"						  /* 7 */
		"    { dir = \"sideways\"; proto = \"sctp\"; },\n"			  /* 8 */
		"    { id = \"a\"; dir = \"in\"; proto = \"tcp\"; },\n"			  /* 9 */
		"    { id = \"a\"; dir = \"in\"; proto = \"udp\"; },\n"			  /* 10 */
		"    { dir = \"in\"; proto = \"tcp\"; local_ports = [ \"gopher\" ]; },\n" /* 11 */
		"    { dir = \"in\"; proto = \"udp\"; local_ports = [ \"ssh\" ]; },\n"	  /* 12 */
		"    { dir = \"in\"; proto = \"tcp\"; local_ports = [ 70000 ]; },\n"	  /* 13 */
		"    { dir = \"in\"; proto = \"tcp\"; remote_ports = [ \"90-80\" ]; },\n" /* 14 */
		"    { dir = \"in\"; proto = \"icmp\"; local_ports = [ 1 ]; },\n"	  /* 15 */
		"    { dir = \"in\"; proto = \"tcp\"; icmp_types = [ 8 ]; },\n"		  /* 16 */
		"    { dir = \"in\"; proto = \"icmp\"; icmp_types = [ \"packet-too-big\" ]; },\n"
		"    { dir = \"in\"; proto = \"icmpv6\"; icmp_types = [ 256 ]; },\n"	 /* 18 */
		"    { dir = \"in\"; proto = \"tcp\"; remote = [ \"10.0.0.1/8\" ]; },\n" /* 19 */
		"    { dir = \"in\"; proto = \"tcp\"; local = [ \"nowhere\" ]; },\n"	 /* 20 */
		"    { dir = \"in\"; proto = \"tcp\"; local_ports = [ ]; },\n"		 /* 21 */
		"    { dir = \"in\"; proto = \"tcp\"; remote = [ ]; },\n"		 /* 22 */
		"    { dir = \"in\"; proto = \"tcp\"; id = 5; },\n"			 /* 23 */
		"    \"not a group\",\n"						 /* 24 */
		"    { dir = \"in\"; proto = \"tcp\"; local_ports = ( 1.5 ); },\n"	 /* 25 */
		"    { id = \"permit-23\"; dir = \"in\"; proto = \"tcp\"; },\n"		 /* 26 */
		"    { dir = \"in\"; proto = \"tcp\"; }\n"				 /* 27 */
		"  );\n"
		"};\n");
	cr_assert_neq(b.rc, 0);
	cr_assert_null(b.conf);
	ASSERT_MSG(b, "test.conf:3:", "unknown setting 'colour' in header_filter");
	ASSERT_MSG(b, "test.conf:5:", "unknown setting 'lcoal_ports' in permit 'permit-1'");
	ASSERT_MSG(b, "test.conf:6:", "permit 'permit-2' has no 'dir'");
	ASSERT_MSG(b, "test.conf:7:", "permit 'permit-3' has no 'proto'");
	ASSERT_MSG(b, "test.conf:8:", "'dir' must be \"in\" or \"out\"");
	ASSERT_MSG(b, "test.conf:8:", "'proto' must be");
	ASSERT_MSG(b, "test.conf:10:", "duplicate permit id 'a' (also on line 9)");
	ASSERT_MSG(b, "test.conf:11:", "unknown service \"gopher\" for tcp");
	ASSERT_MSG(b, "test.conf:12:", "unknown service \"ssh\" for udp");
	ASSERT_MSG(b,
		   "test.conf:13:", "permit 'permit-9': 'local_ports': port 70000 is out of range");
	ASSERT_MSG(b, "test.conf:14:", "lo above hi");
	ASSERT_MSG(b, "test.conf:15:", "ports do not apply to icmp");
	ASSERT_MSG(b, "test.conf:16:", "'icmp_types' needs proto");
	ASSERT_MSG(b, "test.conf:17:", "only in ICMPv6");
	ASSERT_MSG(b, "test.conf:18:", "256 is out of range 0..255");
	ASSERT_MSG(b, "test.conf:19:", "bits set beyond the prefix");
	ASSERT_MSG(b, "test.conf:20:", "\"nowhere\"");
	ASSERT_MSG(b, "test.conf:21:", "'local_ports' is empty");
	ASSERT_MSG(b, "test.conf:22:", "'remote' is empty");
	ASSERT_MSG(b, "test.conf:23:", "'id' must be a non-empty string");
	ASSERT_MSG(b, "test.conf:24:", "permit 20 must be a group");
	ASSERT_MSG(b, "test.conf:25:", "ports are numbers or strings");
	ASSERT_MSG(b, "test.conf:27:", "duplicate permit id 'permit-23' (also on line 26)");
	cr_assert_eq(b.diag.count, 23, "%u messages", b.diag.count);
	built_free(&b);
}

Test(header_filter, unreadable_services_file_is_reported_once)
{
	struct built b;
	unlink(svc_path);
	build_text(&b, "header_filter = { permits = (\n"
		       "  { dir = \"in\"; proto = \"tcp\"; local_ports = [ \"http\", \"ssh\" ]; }\n"
		       "); };\n");
	cr_assert_eq(b.rc, -EINVAL);
	cr_assert_eq(b.diag.count, 1);
	ASSERT_MSG(b, "test.conf:2:", "cannot read services file");
	built_free(&b);
}

Test(header_filter, permits_must_be_a_list)
{
	struct built b;
	build_text(&b, "header_filter = {\n  permits = { dir = \"in\"; proto = \"tcp\"; };\n};\n");
	cr_assert_eq(b.rc, -EINVAL);
	ASSERT_MSG(b, "test.conf:2:", "'permits' must be a list");
	built_free(&b);
}

/* ---- brute-force reference ---- */

struct rr {
	unsigned lo, hi;
};

struct ref_permit {
	int dir;
	unsigned protos;		       /* bit 0 tcp, 1 udp, 2 icmp, 3 icmpv6 */
	int nlp, nrp, ntypes, nremote, nlocal; /* -1: key left out */
	struct rr lp[3], rp[3], types[3];
	struct els_cidr remote[3], local[12];
};

static bool in_ranges(int n, const struct rr *rv, unsigned v, bool missing_excludes_zero)
{
	const struct rr *r = rv;
	if (n < 0)
		return !missing_excludes_zero || v != 0;
	for (int i = 0; i < n; i++)
		if (v >= r[i].lo && v <= r[i].hi)
			return true;
	return false;
}

static bool in_cidrs(int n, const struct els_cidr *c, unsigned family, const struct els_addr *a)
{
	if (n < 0)
		return true;
	for (int i = 0; i < n; i++)
		if (els_cidr_contains(&c[i], family, a))
			return true;
	return false;
}

static bool ref_match(const struct ref_permit *r, const struct els_pkt *p)
{
	int t = p->proto == 6	 ? 0
		: p->proto == 17 ? 1
		: p->proto == 1	 ? 2
		: p->proto == 58 ? 3
				 : -1;
	if (t < 0 || r->dir != p->dir || !(r->protos & (1u << t)))
		return false;
	if ((t == 2 && p->family != ELS_AF_INET) || (t == 3 && p->family != ELS_AF_INET6))
		return false;
	if (p->flags & ELS_PKT_LATER_FRAG) {
		if (r->nlp >= 0 || r->nrp >= 0 || r->ntypes >= 0)
			return false;
	} else if (t <= 1) {
		if (!in_ranges(r->nlp, r->lp, els_pkt_local_port(p), true) ||
		    !in_ranges(r->nrp, r->rp, els_pkt_remote_port(p), true))
			return false;
	} else if (!in_ranges(r->ntypes, r->types, p->icmp_type, false)) {
		return false;
	}
	return in_cidrs(r->nremote, r->remote, p->family, els_pkt_remote(p)) &&
	       in_cidrs(r->nlocal, r->local, p->family, els_pkt_local(p));
}

static struct els_decision ref_decide(const struct ref_permit *rs, unsigned n,
				      const struct els_pkt *p)
{
	struct els_decision d = {.action = ELS_DROP, .reason = ELS_R_NO_PERMIT};
	for (unsigned i = 0; i < n; i++) {
		if (ref_match(&rs[i], p)) {
			d.action = ELS_ACCEPT;
			d.reason = ELS_R_PERMIT;
			d.rule = i + 1;
			return d;
		}
	}
	/* other protocols (and ICMP in the wrong family) have no permits at all: no_permit */
	bool known = p->proto == 6 || p->proto == 17 ||
		     (p->proto == 1 && p->family == ELS_AF_INET) ||
		     (p->proto == 58 && p->family == ELS_AF_INET6);
	if (known && (p->flags & ELS_PKT_LATER_FRAG))
		d.reason = ELS_R_FRAGMENT_NO_PORTS;
	else if ((p->proto == 6 || p->proto == 17) && (p->sport == 0 || p->dport == 0))
		d.reason = ELS_R_PORT_ZERO;
	return d;
}

static void print_ranges(FILE *f, const char *key, int n, const struct rr *rv)
{
	const struct rr *r = rv;
	if (n < 0)
		return;
	fprintf(f, " %s = (", key);
	for (int i = 0; i < n; i++) {
		if (r[i].lo == r[i].hi)
			fprintf(f, "%s%u", i ? ", " : " ", r[i].lo);
		else
			fprintf(f, "%s\"%u-%u\"", i ? ", " : " ", r[i].lo, r[i].hi);
	}
	fprintf(f, " );");
}

static void print_cidrs(FILE *f, const char *key, int n, const struct els_cidr *c)
{
	char buf[ELS_ADDR_STRLEN];
	if (n < 0)
		return;
	fprintf(f, " %s = [", key);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s\"%s/%u\"", i ? ", " : " ",
			els_addr_str(&c[i].addr, c[i].family, buf), c[i].plen);
	fprintf(f, " ];");
}

static char *ref_config(const struct ref_permit *rs, unsigned n)
{
	static const char *const pn[] = {"tcp", "udp", "icmp", "icmpv6"};
	char *text;
	size_t len;
	FILE *f = open_memstream(&text, &len);
	fprintf(f, "header_filter = { permits = (\n");
	for (unsigned i = 0; i < n; i++) {
		const struct ref_permit *r = &rs[i];
		const char *proto = "any";
		for (int k = 0; k < 4; k++)
			if (r->protos == 1u << k)
				proto = pn[k];
		fprintf(f, "%s{ dir = \"%s\"; proto = \"%s\";", i ? ",\n" : "",
			r->dir ? "out" : "in", proto);
		print_ranges(f, "local_ports", r->nlp, r->lp);
		print_ranges(f, "remote_ports", r->nrp, r->rp);
		print_ranges(f, "icmp_types", r->ntypes, r->types);
		print_cidrs(f, "remote", r->nremote, r->remote);
		print_cidrs(f, "local", r->nlocal, r->local);
		fprintf(f, " }");
	}
	fprintf(f, "\n); };\n");
	fclose(f);
	return text;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static struct els_cidr cidr(const char *text)
{
	struct els_cidr c;
	cr_assert_eq(els_cidr_parse(text, &c, NULL), 0, "%s", text);
	return c;
}

static const char *const remote_pool[] = {
    "10.0.0.0/8",      "10.1.0.0/16",	    "10.1.2.0/24", "10.1.2.3/32",
    "10.1.2.4/31",     "192.0.2.0/24",	    "0.0.0.0/0",   "2001:db8::/32",
    "2001:db8:1::/48", "2001:db8:1::5/128", "::/0",	   "2001:db8:1::/64",
};
static const char *const remote_addrs[] = {"10.1.2.3",	      "10.1.2.4",      "10.1.2.5",
					   "10.1.3.1",	      "10.2.0.1",      "192.0.2.7",
					   "203.0.113.1",     "2001:db8:1::5", "2001:db8:1::6",
					   "2001:db8:1:1::1", "2001:db8:2::1", "2001:db9::1"};
static const char *const local_pool[] = {"198.18.0.0/15", "198.18.0.2/32", "198.18.0.3/32",
					 "2001:db8:ff::/48", "2001:db8:ff::1/128"};
static const char *const local_addrs[] = {"198.18.0.2",	    "198.18.0.3",     "198.19.0.1",
					  "2001:db8:ff::1", "2001:db8:ff::2", "2001:db8:fe::1"};
static const unsigned port_pool[] = {0, 1, 22, 53, 80, 443, 1023, 1024, 8080, 50000, 65535};

static void rand_ranges(int *n, struct rr *rv, unsigned max)
{
	struct rr *r = rv;
	*n = (int)rnd(3) + 1;
	for (int i = 0; i < *n; i++) {
		unsigned a = port_pool[rnd(11)] % (max + 1), b = port_pool[rnd(11)] % (max + 1);
		if (rnd(2))
			b = a;
		r[i].lo = a < b ? a : b;
		r[i].hi = a < b ? b : a;
	}
}

static void rand_permit(struct ref_permit *r)
{
	memset(r, 0, sizeof(*r));
	r->dir = (int)rnd(2);
	r->nlp = r->nrp = r->ntypes = r->nremote = r->nlocal = -1;
	unsigned k = rnd(5);
	r->protos = k == 4 ? 0xf : 1u << k;
	if (k == 0 || k == 1 || k == 4) {
		if (rnd(2))
			rand_ranges(&r->nlp, r->lp, 65535);
		if (rnd(3) == 0)
			rand_ranges(&r->nrp, r->rp, 65535);
		if (k == 4 && (r->nlp >= 0 || r->nrp >= 0))
			r->protos = 3;
	} else if (rnd(2)) {
		rand_ranges(&r->ntypes, r->types, 255);
		for (int i = 0; i < r->ntypes; i++)
			r->types[i].hi = r->types[i].lo; /* types are single numbers */
	}
	if (rnd(5) < 3) {
		r->nremote = (int)rnd(3) + 1;
		for (int i = 0; i < r->nremote; i++)
			r->remote[i] = cidr(remote_pool[rnd(12)]);
	}
	if (rnd(10) < 3) {
		r->nlocal = rnd(4) ? (int)rnd(2) + 1 : 12; /* sometimes past the linear scan */
		for (int i = 0; i < r->nlocal; i++)
			r->local[i] = cidr(local_pool[rnd(5)]);
	}
}

static struct els_pkt rand_pkt(void)
{
	static const int protos[] = {6, 17, 1, 58, 47};
	struct els_pkt p;
	bool v6 = rnd(2);
	const char *ra, *la;
	do
		ra = remote_addrs[rnd(12)];
	while ((strchr(ra, ':') != NULL) != v6);
	do
		la = local_addrs[rnd(6)];
	while ((strchr(la, ':') != NULL) != v6);
	int dir = (int)rnd(2), proto = protos[rnd(5)];
	if (proto == 1 || proto == 58)
		proto = rnd(8) ? (v6 ? 58 : 1) : proto; /* mostly the family's own ICMP */
	unsigned lp = port_pool[rnd(11)], rp = port_pool[rnd(11)];
	if (dir == IN)
		p = pkt(dir, proto, ra, (int)rp, la, (int)lp);
	else
		p = pkt(dir, proto, la, (int)lp, ra, (int)rp);
	if (proto == 1 || proto == 58) {
		p.flags = ELS_PKT_HAS_ICMP;
		p.icmp_type = (uint8_t)(rnd(2) ? port_pool[rnd(11)] : rnd(256));
	}
	if (rnd(10) == 0)
		p = later_frag(p);
	return p;
}

/* Returns whether the packet was accepted, so callers can check the sample saw both. */
static bool check_against_ref(const struct built *b, const struct ref_permit *rs, unsigned n,
			      const struct els_pkt *p)
{
	struct els_decision want = ref_decide(rs, n, p), got = decide(b, *p);
	char s[ELS_ADDR_STRLEN], d[ELS_ADDR_STRLEN];
	cr_assert(
	    got.action == want.action && got.reason == want.reason && got.rule == want.rule,
	    "pkt dir %u proto %u %s:%u -> %s:%u type %u flags %#x: got %u/%u/%u want %u/%u/%u",
	    p->dir, p->proto, els_addr_str(&p->src, p->family, s), p->sport,
	    els_addr_str(&p->dst, p->family, d), p->dport, p->icmp_type, p->flags, got.action,
	    got.reason, got.rule, want.action, want.reason, want.rule);
	return got.action == ELS_ACCEPT;
}

Test(header_filter, random_policies_match_brute_force)
{
	unsigned accepted = 0;
	for (int round = 0; round < 60; round++) {
		unsigned n = 1 + rnd(round < 30 ? 8 : 120);
		struct ref_permit *rs = calloc(n, sizeof(*rs));
		for (unsigned i = 0; i < n; i++)
			rand_permit(&rs[i]);
		char *text = ref_config(rs, n);
		struct built b;
		build_ok(&b, text);
		for (int k = 0; k < 3000; k++) {
			struct els_pkt p = rand_pkt();
			accepted += check_against_ref(&b, rs, n, &p);
		}
		built_free(&b);
		free(text);
		free(rs);
	}
	cr_assert(accepted > 5000 && accepted < 60 * 3000 - 5000, "accepted %u", accepted);
}

Test(header_filter, hundred_thousand_permits_match_brute_force, .timeout = 120)
{
	enum { N = 100000 };
	struct ref_permit *rs = calloc(N, sizeof(*rs));
	char buf[64];
	for (unsigned i = 0; i < N; i++) {
		struct ref_permit *r = &rs[i];
		r->nlp = r->nrp = r->ntypes = r->nremote = r->nlocal = -1;
		r->dir = (int)(i % 2);
		r->protos = i % 3 == 2 ? 3 : 1u << (i % 3 == 0 ? 0 : 1);
		r->nremote = 1;
		snprintf(buf, sizeof(buf), "10.%u.%u.%u/32", i >> 16, (i >> 8) & 255, i & 255);
		r->remote[0] = cidr(buf);
		if (i % 7 == 0) {
			r->nlp = 1;
			r->lp[0].lo = r->lp[0].hi = 1000 + i % 5000; /* many distinct ports */
		} else if (i % 7 == 1) {
			r->nrp = 1;
			r->rp[0].lo = 20000 + i % 3000;
			r->rp[0].hi = r->rp[0].lo + i % 50;
		} else if (i % 1000 == 2) {
			r->remote[0] = cidr(i % 2000 == 2 ? "10.0.0.0/8" : "10.1.0.0/16");
			r->nlp = 1;
			r->lp[0].lo = r->lp[0].hi = 443;
		} else if (i % 500 == 3) {
			r->nlocal = 1;
			r->local[0] = cidr("198.18.0.2/32");
		}
	}
	char *text = ref_config(rs, N);
	struct built b;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	build_ok(&b, text);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "header_filter: parsed and built %d permits in %.3f s\n", N,
		(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	unsigned accepted = 0;
	for (int k = 0; k < 500; k++) {
		unsigned i = rnd(N + N / 10); /* some remotes no permit names */
		snprintf(buf, sizeof(buf), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
		static const unsigned ports[] = {0, 443, 1000, 1007, 20001, 20040, 50000};
		unsigned lp = rnd(2) ? ports[rnd(7)] : 1000 + i % 5000;
		unsigned rp = rnd(2) ? ports[rnd(7)] : 20000 + i % 3000 + rnd(60);
		int dir = (int)rnd(2), proto = rnd(2) ? 6 : 17;
		const char *la = rnd(4) ? "198.18.0.2" : "198.18.0.3";
		struct els_pkt p = dir == IN ? pkt(dir, proto, buf, (int)rp, la, (int)lp)
					     : pkt(dir, proto, la, (int)lp, buf, (int)rp);
		if (rnd(20) == 0)
			p = later_frag(p);
		accepted += check_against_ref(&b, rs, N, &p);
	}
	cr_assert(accepted > 50 && accepted < 450, "accepted %u of 500", accepted);
	built_free(&b);
	free(text);
	free(rs);
}
