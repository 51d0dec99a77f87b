/* Fuzzes the header filter. The first byte picks the mode:
 *   0: the rest is a raw struct els_pkt, decided by a handler built from a fixed policy;
 *   1: the rest is libconfig text fed to build() (errors are fine; crashes and leaks are not),
 *      and a policy that builds then decides a few packets made from the same bytes;
 *   2: the rest is services(5) text fed to the services parser.
 * Every decision is checked for consistency: a drop has no rule and one of the filter's drop
 * reasons, an accept names a rule that exists. */
#include <libconfig.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../handlers/portspec.h"
#include "els/handler.h"

extern const struct els_handler els_handler_header_filter;

static const char services[] = "http 80/tcp www\nhttps 443/tcp\nhttps 443/udp\n"
			       "domain 53/tcp\ndomain 53/udp\nssh 22/tcp\nsyslog 514/udp\n";

static const char policy[] =
    "header_filter = { fail = \"closed\"; permits = (\n"
    "  { id = \"https-in\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ \"https\" ]; },\n"
    "  { id = \"ping-in\"; dir = \"in\"; proto = \"icmp\"; icmp_types = [ \"echo-request\" ]; },\n"
    "  { id = \"ndp-in\"; dir = \"in\"; proto = \"icmpv6\";\n"
    "    icmp_types = [ \"neighbor-solicitation\", \"neighbor-advertisement\" ]; },\n"
    "  { id = \"dns-out\"; dir = \"out\"; proto = \"any\"; remote_ports = [ \"domain\" ];\n"
    "    remote = [ \"198.18.0.53\", \"2001:db8::53\" ]; },\n"
    "  { id = \"zero\"; dir = \"in\"; proto = \"udp\"; local_ports = ( \"0-10\", 4000 );\n"
    "    remote_ports = ( 0, \"dynamic\" ); },\n"
    "  { id = \"frag\"; dir = \"out\"; proto = \"any\"; remote = [ \"10.0.0.0/8\", \"::/0\" ]; },\n"
    "  { id = \"locals\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ \"well-known\" ];\n"
    "    local = [ \"0.0.0.1\", \"0.0.0.2\", \"0.0.0.3\", \"0.0.0.4\", \"0.0.0.5\", \"0.0.0.6\",\n"
    "              \"0.0.0.7\", \"0.0.0.8\", \"0.0.0.0/30\", \"::/1\" ]; }\n"
    "); };\n";

/* libconfig 1.5 (Debian 12) leaks scanner buffers (strbuf_append, libconfig_yylex) on some
 * syntax errors; config_read_string alone shows it. Not ours to fix here. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\n"
	       "leak:libconfig_yylex\n";
}

static char svc_path[64];
static void *fixed;
static uint32_t fixed_rules = 7;

static void *build(const char *text, struct els_diag *d)
{
	struct els_build_env env = {.config_path = "fuzz.conf", .services_path = svc_path};
	config_t cfg;
	void *conf = NULL;

	config_init(&cfg);
	if (config_read_string(&cfg, text)) {
		const config_setting_t *s = config_lookup(&cfg, "header_filter");
		int rc = els_handler_header_filter.build(s, &env, &conf, d);
		if (rc != 0 && (conf || d->count == 0))
			abort(); /* a failed build leaves nothing behind and says why */
		if (rc == 0 && !conf)
			abort();
	}
	config_destroy(&cfg);
	return conf;
}

static void remove_services(void)
{
	unlink(svc_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct els_diag d;
	(void)argc;
	(void)argv;
	snprintf(svc_path, sizeof(svc_path), "/tmp/els_fuzz_services_XXXXXX");
	int fd = mkstemp(svc_path);
	if (fd < 0 || write(fd, services, sizeof(services) - 1) != (ssize_t)sizeof(services) - 1)
		abort();
	close(fd);
	atexit(remove_services);
	els_diag_init(&d, "fixed.conf");
	fixed = build(policy, &d);
	if (!fixed) {
		els_diag_print(&d, stderr);
		abort();
	}
	els_diag_free(&d);
	return 0;
}

static void decide(const void *conf, uint32_t nrules, const struct els_pkt *p)
{
	struct els_ctx ctx = {.pkt = p};
	struct els_decision out = {0};
	enum els_action a = els_handler_header_filter.handle(conf, &ctx, &out);

	if (a != out.action)
		abort();
	bool drop_reason = out.reason == ELS_R_NO_PERMIT || out.reason == ELS_R_PORT_ZERO ||
			   out.reason == ELS_R_FRAGMENT_NO_PORTS ||
			   out.reason == ELS_R_SESSION_REQUIRED;
	if (out.flags & ~(ELS_DEC_OBSERVE | ELS_DEC_GATED))
		abort();
	if (a == ELS_DROP) {
		if (out.rule != 0 || !drop_reason || out.flags)
			abort();
	} else if (a == ELS_ACCEPT && (out.flags & ELS_DEC_OBSERVE) && !out.rule) {
		/* observe mode for the whole section: the reason is the drop it would be */
		if (!drop_reason)
			abort();
	} else if (a == ELS_ACCEPT) {
		/* an observe permit reports no_permit: without it the packet would not pass */
		bool want = (out.flags & ELS_DEC_OBSERVE) ? out.reason == ELS_R_NO_PERMIT
							  : out.reason == ELS_R_PERMIT;
		if (!want || out.rule == 0 || out.rule > nrules ||
		    !els_handler_header_filter.rule_name(conf, out.rule))
			abort();
	} else {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	uint8_t mode = data[0] % 3;
	data++;
	size--;
	if (mode == 0) {
		struct els_pkt p;
		memset(&p, 0, sizeof(p));
		memcpy(&p, data, size < sizeof(p) ? size : sizeof(p));
		decide(fixed, fixed_rules, &p);
	} else if (mode == 1) {
		char *text = malloc(size + 1);
		struct els_diag d;
		if (!text)
			return 0;
		memcpy(text, data, size);
		text[size] = '\0';
		els_diag_init(&d, "fuzz.conf");
		void *conf = build(text, &d);
		if (conf) {
			/* packets cut from the same bytes: they name the policy's ports and
			 * addresses only by luck, but they run every index the policy built */
			for (size_t off = 0; off < size; off += 16) {
				struct els_pkt p;
				memset(&p, 0, sizeof(p));
				size_t n = size - off < sizeof(p) ? size - off : sizeof(p);
				memcpy(&p, data + off, n);
				decide(conf, UINT32_MAX, &p);
			}
			els_handler_header_filter.destroy(conf);
		}
		els_diag_free(&d);
		free(text);
	} else {
		struct els_services *s = els_services_parse((const char *)data, size);
		if (s) {
			els_services_port(s, "http", "tcp");
			els_services_port(s, "domain", "udp");
			els_services_free(s);
		}
	}
	return 0;
}
