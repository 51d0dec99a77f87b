/* Port lists, IANA classes, services(5) parsing and ICMP type names. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../handlers/portspec.h"

static void port_ok(const char *text, unsigned lo, unsigned hi)
{
	uint16_t a = 1, b = 1;
	const char *why = "unset";
	cr_assert_eq(els_port_parse(text, &a, &b, &why), 0, "%s: %s", text, why);
	cr_assert_eq(a, lo, "%s lo", text);
	cr_assert_eq(b, hi, "%s hi", text);
	cr_assert_null(why);
}

static void port_bad(const char *text, int rc, const char *why_part)
{
	uint16_t a, b;
	const char *why = NULL;
	cr_assert_eq(els_port_parse(text, &a, &b, &why), rc, "%s", text);
	if (why_part)
		cr_assert(why && strstr(why, why_part), "%s: %s", text, why ? why : "(null)");
}

Test(portspec, numbers_ranges_and_classes)
{
	port_ok("0", 0, 0);
	port_ok("443", 443, 443);
	port_ok("65535", 65535, 65535);
	port_ok("8000-8080", 8000, 8080);
	port_ok("0-0", 0, 0);
	port_ok("well-known", 1, 1023);
	port_ok("registered", 1024, 49151);
	port_ok("dynamic", 49152, 65535);
}

Test(portspec, bad_ports)
{
	port_bad("65536", -EINVAL, "above 65535");
	port_bad("99999999999999999999", -EINVAL, "above 65535");
	port_bad("10-70000", -EINVAL, "above 65535");
	port_bad("90-80", -EINVAL, "lo above hi");
	port_bad("80-", -EINVAL, "not a port");
	port_bad("8x", -EINVAL, "not a port");
	port_bad("1-2-3", -EINVAL, "not a port");
	/* not numbers: left to the services lookup */
	port_bad("https", -ENOENT, NULL);
	port_bad("-5", -ENOENT, NULL);
	port_bad("", -ENOENT, NULL);
}

Test(portspec, set_normalize_merges_overlaps_and_neighbours)
{
	struct els_port_set s = {0};
	cr_assert_eq(els_portset_add(&s, 90, 99), 0);
	cr_assert_eq(els_portset_add(&s, 80, 89), 0);
	cr_assert_eq(els_portset_add(&s, 443, 443), 0);
	cr_assert_eq(els_portset_add(&s, 85, 95), 0);
	cr_assert_eq(els_portset_add(&s, 0, 0), 0);
	cr_assert_eq(els_portset_add(&s, 443, 443), 0);
	cr_assert_eq(els_portset_add(&s, 65535, 65535), 0);
	els_portset_normalize(&s);
	cr_assert_eq(s.n, 4);
	cr_assert_eq(s.r[0].lo, 0);
	cr_assert_eq(s.r[1].lo, 80);
	cr_assert_eq(s.r[1].hi, 99);
	cr_assert_eq(s.r[2].lo, 443);
	cr_assert_eq(s.r[3].hi, 65535);
	cr_assert(els_ranges_has(s.r, s.n, 0));
	cr_assert(!els_ranges_has(s.r, s.n, 1));
	cr_assert(!els_ranges_has(s.r, s.n, 79));
	cr_assert(els_ranges_has(s.r, s.n, 80));
	cr_assert(els_ranges_has(s.r, s.n, 99));
	cr_assert(!els_ranges_has(s.r, s.n, 100));
	cr_assert(els_ranges_has(s.r, s.n, 443));
	cr_assert(!els_ranges_has(s.r, s.n, 65534));
	cr_assert(els_ranges_has(s.r, s.n, 65535));
	cr_assert(!els_ranges_has(s.r, 0, 80));
	els_portset_free(&s);
	cr_assert_null(s.r);
}

Test(portspec, icmp_type_names_differ_per_family)
{
	const char *why;
	cr_assert_eq(els_icmp_type_parse("echo-request", false, &why), 8);
	cr_assert_eq(els_icmp_type_parse("echo-request", true, &why), 128);
	cr_assert_eq(els_icmp_type_parse("echo-reply", false, &why), 0);
	cr_assert_eq(els_icmp_type_parse("echo-reply", true, &why), 129);
	cr_assert_eq(els_icmp_type_parse("destination-unreachable", false, &why), 3);
	cr_assert_eq(els_icmp_type_parse("destination-unreachable", true, &why), 1);
	cr_assert_eq(els_icmp_type_parse("time-exceeded", true, &why), 3);
	cr_assert_eq(els_icmp_type_parse("packet-too-big", true, &why), 2);
	cr_assert_eq(els_icmp_type_parse("parameter-problem", false, &why), 12);
	cr_assert_eq(els_icmp_type_parse("neighbor-solicitation", true, &why), 135);
	cr_assert_eq(els_icmp_type_parse("neighbor-advertisement", true, &why), 136);
	cr_assert_eq(els_icmp_type_parse("router-solicitation", true, &why), 133);
	cr_assert_eq(els_icmp_type_parse("router-advertisement", true, &why), 134);
	cr_assert_eq(els_icmp_type_parse("router-advertisement", false, &why), 9);
	cr_assert_eq(els_icmp_type_parse("255", false, &why), 255);
	cr_assert_eq(els_icmp_type_parse("0", true, &why), 0);

	cr_assert_eq(els_icmp_type_parse("packet-too-big", false, &why), -EINVAL);
	cr_assert(strstr(why, "only in ICMPv6"));
	cr_assert_eq(els_icmp_type_parse("neighbor-solicitation", false, &why), -EINVAL);
	cr_assert_eq(els_icmp_type_parse("256", false, &why), -EINVAL);
	cr_assert(strstr(why, "0..255"));
	cr_assert_eq(els_icmp_type_parse("ping", true, &why), -EINVAL);
	cr_assert(strstr(why, "unknown"));
}

static const char svc_text[] = "# Network services, Internet style\n"
			       "\n"
			       "tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer\n"
			       "http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP\n"
			       "https\t\t443/tcp\n"
			       "https\t\t443/udp\t\t\t\t# HTTP/3\n"
			       "domain\t\t53/tcp\n"
			       "domain\t\t53/udp\n"
			       "syslog\t\t514/udp\n"
			       "shell\t\t514/tcp\t\tcmd\tsyslog-ish\n"
			       "alt\t\t8080/tcp\n"
			       "alt\t\t8081/tcp\t\t# a later duplicate: the first line wins\n"
			       "broken\t\t99999/tcp\n"
			       "nosuchproto\t7/sctp\n"
			       "noport\n"
			       "weird   12/tcp\r\n"
			       "  # indented comment 13/tcp\n"
			       "last\t\t4242/udp"; /* no final newline */

Test(portspec, services_parse_names_aliases_comments)
{
	struct els_services *s = els_services_parse(svc_text, sizeof(svc_text) - 1);
	cr_assert_not_null(s);
	cr_assert_eq(els_services_port(s, "http", "tcp"), 80);
	cr_assert_eq(els_services_port(s, "www", "tcp"), 80);
	cr_assert_eq(els_services_port(s, "http", "udp"), -ENOENT);
	cr_assert_eq(els_services_port(s, "https", "udp"), 443);
	cr_assert_eq(els_services_port(s, "syslog", "udp"), 514);
	cr_assert_eq(els_services_port(s, "syslog", "tcp"), -ENOENT);
	cr_assert_eq(els_services_port(s, "cmd", "tcp"), 514);
	cr_assert_eq(els_services_port(s, "syslog-ish", "tcp"), 514);
	cr_assert_eq(els_services_port(s, "alt", "tcp"), 8080);
	cr_assert_eq(els_services_port(s, "broken", "tcp"), -ENOENT);
	cr_assert_eq(els_services_port(s, "nosuchproto", "tcp"), -ENOENT);
	cr_assert_eq(els_services_port(s, "noport", "tcp"), -ENOENT);
	cr_assert_eq(els_services_port(s, "weird", "tcp"), 12);
	cr_assert_eq(els_services_port(s, "indented", "tcp"), -ENOENT);
	cr_assert_eq(els_services_port(s, "last", "udp"), 4242);
	cr_assert_eq(els_services_port(s, "tcpmux", "tcp"), 1);
	cr_assert_eq(els_services_port(s, "HTTP", "tcp"), -ENOENT);
	cr_assert_eq(els_services_port(s, "http", "sctp"), -ENOENT);
	els_services_free(s);
}

Test(portspec, services_load_file_and_missing_file)
{
	char path[] = "/tmp/els_test_services_XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, svc_text, sizeof(svc_text) - 1), (ssize_t)sizeof(svc_text) - 1);
	close(fd);
	struct els_services *s = NULL;
	cr_assert_eq(els_services_load(path, &s), 0);
	cr_assert_eq(els_services_port(s, "domain", "udp"), 53);
	els_services_free(s);
	unlink(path);
	s = NULL;
	cr_assert_eq(els_services_load(path, &s), -ENOENT);
	cr_assert_null(s);
}

Test(portspec, services_empty_and_embedded_nul)
{
	struct els_services *s = els_services_parse("", 0);
	cr_assert_not_null(s);
	cr_assert_eq(els_services_port(s, "http", "tcp"), -ENOENT);
	els_services_free(s);
	static const char nul[] = "a 1/tcp\nb\0 2/tcp\nc 3/tcp\n";
	s = els_services_parse(nul, sizeof(nul) - 1);
	cr_assert_eq(els_services_port(s, "a", "tcp"), 1);
	cr_assert_eq(els_services_port(s, "b", "tcp"), -ENOENT);
	cr_assert_eq(els_services_port(s, "c", "tcp"), 3);
	els_services_free(s);
}
