/* The management protocol's pure parts: framing, the request envelope and argument checks,
 * roles from certificates, and the `management` config section. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "els/mgmt.h"
#include "mgmt.h"

/* ---- framing ---- */

Test(frame, byte_by_byte_then_whole)
{
	const uint8_t in[] = {0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 1, 'z'};
	struct els_mgmt_frame f;
	size_t used, off = 0;
	int rc = 0;

	els_mgmt_frame_init(&f);
	while (off < 7) {
		rc = els_mgmt_frame_feed(&f, in + off, 1, &used);
		cr_assert_eq(used, 1);
		off += used;
		if (off < 7)
			cr_assert_eq(rc, ELS_FRAME_MORE);
	}
	cr_assert_eq(rc, ELS_FRAME_DONE);
	cr_assert_eq(f.len, 3);
	cr_assert_str_eq((char *)f.body, "abc");
	els_mgmt_frame_reset(&f);
	rc = els_mgmt_frame_feed(&f, in + off, sizeof(in) - off, &used);
	cr_assert_eq(rc, ELS_FRAME_DONE);
	cr_assert_eq(used, 5, "stops at the end of the frame");
	cr_assert_str_eq((char *)f.body, "z");
	els_mgmt_frame_free(&f);
}

Test(frame, zero_and_oversized_lengths_are_refused_before_allocating)
{
	struct els_mgmt_frame f;
	size_t used;
	const uint8_t zero[] = {0, 0, 0, 0};
	const uint8_t big[] = {0x01, 0x00, 0x00, 0x01, 'x'};
	const uint8_t max[] = {0x01, 0x00, 0x00, 0x00, 'x'};

	els_mgmt_frame_init(&f);
	cr_assert_eq(els_mgmt_frame_feed(&f, zero, 4, &used), ELS_FRAME_TOO_LARGE);
	els_mgmt_frame_free(&f);
	els_mgmt_frame_init(&f);
	cr_assert_eq(els_mgmt_frame_feed(&f, big, 5, &used), ELS_FRAME_TOO_LARGE);
	cr_assert_null(f.body);
	els_mgmt_frame_free(&f);
	els_mgmt_frame_init(&f);
	cr_assert_eq(els_mgmt_frame_feed(&f, max, 5, &used), ELS_FRAME_MORE, "16 MiB is allowed");
	cr_assert_leq(f.cap, 8192, "the buffer grows with the data, not the announced length");
	els_mgmt_frame_free(&f);
}

/* ---- requests ---- */

static const char *check(const char *body, int role)
{
	static char code[64];
	struct els_mgmt_req req;
	char *err;
	const char *c;
	if (els_mgmt_request_check(body, strlen(body), role, &req, &err, &c) == 0) {
		json_decref(req.json);
		return "ok";
	}
	cr_assert_not_null(err);
	json_t *j = json_loads(err, 0, NULL);
	cr_assert_not_null(j, "error responses are JSON: %s", err);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
			 c);
	cr_assert(json_is_array(json_object_get(json_object_get(j, "error"), "details")));
	snprintf(code, sizeof(code), "%s", c);
	json_decref(j);
	free(err);
	return code;
}

Test(request, envelope)
{
	cr_assert_str_eq(check("{\"v\":1,\"id\":1,\"cmd\":\"status\"}", ELS_ROLE_AUDITOR), "ok");
	cr_assert_str_eq(check("{\"v\":1,\"id\":1,\"cmd\":\"status\",\"args\":null}", 1), "ok");
	cr_assert_str_eq(check("{\"v\":1,\"id\":1,\"cmd\":\"status\",\"extra\":5}", 1), "ok",
			 "unknown top-level fields are ignored");
	cr_assert_str_eq(check("not json", 2), "bad_request");
	cr_assert_str_eq(check("[1,2]", 2), "bad_request");
	cr_assert_str_eq(check("{\"v\":1,\"cmd\":\"status\"}", 2), "bad_request", "no id");
	cr_assert_str_eq(check("{\"v\":1,\"id\":-1,\"cmd\":\"status\"}", 2), "bad_request");
	cr_assert_str_eq(check("{\"v\":2,\"id\":1,\"cmd\":\"status\"}", 2), "unsupported_version");
	cr_assert_str_eq(check("{\"id\":1,\"cmd\":\"status\"}", 2), "unsupported_version");
	cr_assert_str_eq(check("{\"v\":1,\"id\":1}", 2), "bad_request", "no cmd");
	cr_assert_str_eq(check("{\"v\":1,\"id\":1,\"cmd\":\"reboot\"}", 2), "unknown_command");
	cr_assert_str_eq(check("{\"v\":1,\"id\":1,\"cmd\":\"status\",\"cmd\":\"x\"}", 2),
			 "bad_request", "duplicate keys are refused");
	cr_assert_str_eq(check("{\"v\":1,\"id\":1,\"cmd\":\"status\",\"args\":[]}", 2),
			 "bad_request");
}

Test(request, roles)
{
	const char *apply = "{\"v\":1,\"id\":1,\"cmd\":\"policy.apply\",\"args\":{\"text\":\"\"}}";
	cr_assert_str_eq(check(apply, ELS_ROLE_ADMIN), "ok");
	cr_assert_str_eq(check(apply, ELS_ROLE_AUDITOR), "forbidden");
	cr_assert_str_eq(check(apply, ELS_ROLE_NONE), "forbidden");
	cr_assert_str_eq(check("{\"v\":1,\"id\":1,\"cmd\":\"status\"}", ELS_ROLE_NONE),
			 "forbidden");
	cr_assert_str_eq(check("{\"v\":1,\"id\":1,\"cmd\":\"policy.apply\",\"args\":{\"bad\":1}}",
			       ELS_ROLE_AUDITOR),
			 "forbidden", "the role is checked before the arguments");
	for (const struct els_mgmt_cmd_info *c = els_mgmt_commands(); c->name; c++) {
		bool write = strcmp(c->name, "policy.apply") == 0 ||
			     strcmp(c->name, "policy.rollback") == 0 ||
			     strcmp(c->name, "list.add") == 0 || strcmp(c->name, "list.del") == 0 ||
			     strcmp(c->name, "sweep") == 0;
		cr_assert_eq(c->role, write ? ELS_ROLE_ADMIN : ELS_ROLE_AUDITOR, "%s", c->name);
		/* what changes the policy needs admin; a read that is audited once per window
		 * changes nothing */
		if (c->flags & ELS_MGMT_CMD_CHANGES_POLICY)
			cr_assert_eq(c->role, ELS_ROLE_ADMIN, "%s", c->name);
		if (c->flags & ELS_MGMT_CMD_READ)
			cr_assert_eq(c->flags, ELS_MGMT_CMD_READ, "%s", c->name);
		cr_assert_str_eq(els_mgmt_command(c->name)->name, c->name);
	}
	cr_assert_null(els_mgmt_command("policy.delete"));
	cr_assert(!els_mgmt_command_is("policy.delete", ELS_MGMT_CMD_READ));
	cr_assert(els_mgmt_command_is("policy.validate", ELS_MGMT_CMD_CHECKS_POLICY));
	cr_assert(!els_mgmt_command_is("policy.validate", ELS_MGMT_CMD_CHANGES_POLICY));
}

/* An unknown command is answered with the list of the known ones, from the one table. */
Test(request, unknown_command_names_every_command)
{
	const char *code = NULL;
	char *resp = NULL;
	struct els_mgmt_req req;
	const char *body = "{\"v\":1,\"id\":1,\"cmd\":\"policy.delete\"}";

	cr_assert_lt(els_mgmt_request_check(body, strlen(body), ELS_ROLE_ADMIN, &req, &resp, &code),
		     0);
	cr_assert_str_eq(code, "unknown_command");
	for (const struct els_mgmt_cmd_info *c = els_mgmt_commands(); c->name; c++)
		cr_assert(strstr(resp, c->name), "%s missing from %s", c->name, resp);
	free(resp);
}

Test(request, arguments)
{
#define R(cmd, args) "{\"v\":1,\"id\":1,\"cmd\":\"" cmd "\",\"args\":" args "}"
	cr_assert_str_eq(check(R("policy.apply", "{}"), 2), "bad_request", "text required");
	cr_assert_str_eq(check(R("policy.apply", "{\"text\":1}"), 2), "bad_request");
	cr_assert_str_eq(check(R("policy.apply", "{\"text\":\"a\\u0000b\"}"), 2), "bad_request",
			 "NUL in text");
	cr_assert_str_eq(check(R("policy.apply", "{\"text\":\"\",\"expect_sha256\":\"ab\"}"), 2),
			 "bad_request");
	cr_assert_str_eq(check(R("status", "{\"x\":1}"), 2), "bad_request", "unknown argument");
	cr_assert_str_eq(check(R("list.add", "{\"list\":\"deny\",\"entries\":[\"1.2.3.4\"]}"), 2),
			 "ok");
	cr_assert_str_eq(check(R("list.add", "{\"list\":\"grey\",\"entries\":[\"1.2.3.4\"]}"), 2),
			 "bad_request");
	cr_assert_str_eq(check(R("list.add", "{\"list\":\"deny\",\"entries\":[]}"), 2),
			 "bad_request");
	cr_assert_str_eq(check(R("list.add", "{\"list\":\"deny\",\"entries\":[5]}"), 2),
			 "bad_request");
	cr_assert_str_eq(check(R("list.del", "{\"list\":\"deny\",\"entries\":[\"a\"],"
					     "\"dry_run\":\"yes\"}"),
			       2),
			 "bad_request");
	cr_assert_str_eq(check(R("flows", "{\"limit\":10000}"), 1), "ok");
	cr_assert_str_eq(check(R("flows", "{\"limit\":10001}"), 1), "bad_request");
	cr_assert_str_eq(check(R("flows", "{\"limit\":0}"), 1), "bad_request");
	cr_assert_str_eq(
	    check(R("log", "{\"kind\":\"drop\",\"port\":443,\"addr\":\"1.2.3.4\"}"), 1), "ok");
	cr_assert_str_eq(check(R("log", "{\"kind\":\"drops\"}"), 1), "bad_request");
	cr_assert_str_eq(check(R("log", "{\"port\":65536}"), 1), "bad_request");
#undef R
}

/* ---- roles from certificates ---- */

static X509 *make_cert(const char *ou, const char *ou2, const char *cn, const char *san)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME *n = X509_get_subject_name(x);
	if (ou)
		X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC, (const unsigned char *)ou, -1, -1,
					   0);
	if (ou2)
		X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC, (const unsigned char *)ou2, -1,
					   -1, 0);
	if (cn)
		X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					   -1, 0);
	X509_set_issuer_name(x, n);
	if (san) {
		X509V3_CTX ctx;
		X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
		cr_assert_not_null(e);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	X509_sign(x, k, EVP_sha256());
	EVP_PKEY_free(k);
	return x;
}

static int role_of(const char *ou, const char *ou2, const char *cn, const char *san, char *id)
{
	X509 *x = make_cert(ou, ou2, cn, san);
	int r = els_mgmt_cert_role(x, id, 65);
	X509_free(x);
	return r;
}

Test(cert, role_mapping)
{
	char id[65];
	cr_assert_eq(role_of("admin", NULL, "alice", "URI:els:role:admin", id), ELS_ROLE_ADMIN);
	cr_assert_str_eq(id, "alice");
	cr_assert_eq(role_of("auditor", NULL, "bob", NULL, id), ELS_ROLE_AUDITOR, "OU alone");
	cr_assert_eq(role_of(NULL, NULL, "c", "URI:els:role:auditor", id), ELS_ROLE_AUDITOR,
		     "URI alone");
	cr_assert_eq(role_of("admin", NULL, "d", "URI:els:role:auditor", id), ELS_ROLE_NONE,
		     "OU and URI disagree");
	cr_assert_eq(role_of("admin", "auditor", "e", NULL, id), ELS_ROLE_NONE, "two OUs disagree");
	cr_assert_eq(role_of("agent", NULL, "f", NULL, id), ELS_ROLE_NONE, "agent certificate");
	cr_assert_eq(role_of("admin", NULL, "g", "URI:els:role:root", id), ELS_ROLE_NONE,
		     "an unknown role URI is not outvoted");
	cr_assert_eq(role_of("Admin", NULL, "h", NULL, id), ELS_ROLE_NONE, "case matters");
	cr_assert_eq(role_of("admin", NULL, "x\ny z/\xc3\xa9", NULL, id), ELS_ROLE_ADMIN);
	cr_assert_str_eq(id, "x?y?z???", "identity keeps only safe characters for logs");
	role_of("admin", NULL, NULL, NULL, id);
	cr_assert_str_eq(id, "(no CN)");
}

/* ---- config ---- */

static int parse(const char *text, struct els_mgmt_conf **out, struct els_diag *d)
{
	config_t cfg;
	config_init(&cfg);
	cr_assert(config_read_string(&cfg, text), "%s", config_error_text(&cfg));
	els_diag_init(d, "/etc/elsd/elsd.conf");
	int rc = els_mgmt_config_parse(config_root_setting(&cfg), "/etc/elsd/elsd.conf", out, d);
	config_destroy(&cfg);
	return rc;
}

Test(config, absent_and_defaults)
{
	struct els_mgmt_conf *c;
	struct els_diag d;
	cr_assert_eq(parse("queues = \"0\";", &c, &d), 0);
	cr_assert_null(c);
	els_diag_free(&d);
	/* No listen and no console: nothing could reach the agent, and the old default
	 * (127.0.0.1:7443) is gone, so the file is refused with the way to get it back. */
	cr_assert_eq(parse("management = { crl = \"tls/crl.pem\"; };", &c, &d), -EINVAL);
	cr_assert_null(c);
	cr_assert(strstr(d.msgs[0], "neither 'listen' nor a 'console' section"), "%s", d.msgs[0]);
	els_diag_free(&d);
	cr_assert_eq(parse("management = { listen = \"127.0.0.1:7443\"; crl = \"tls/crl.pem\"; };",
			   &c, &d), 0);
	cr_assert_not_null(c);
	cr_assert_str_eq(c->host, "127.0.0.1");
	cr_assert_eq(c->port, 7443);
	cr_assert_null(c->console_address);
	cr_assert_str_eq(c->crl, "/etc/elsd/tls/crl.pem", "relative to the config file");
	cr_assert_str_eq(c->key, "/etc/elsd/tls/agent.key");
	cr_assert_str_eq(c->user, "nobody");
	cr_assert_eq(c->max_clients, 32);
	cr_assert_eq(c->timeout_s, 10);
	els_mgmt_config_free(c);
	els_diag_free(&d);
	cr_assert_eq(parse("management = { listen = \"[::1]:9\"; };", &c, &d), 0);
	cr_assert_str_eq(c->host, "::1");
	cr_assert_eq(c->port, 9);
	els_mgmt_config_free(c);
	els_diag_free(&d);
}

Test(config, console_alone_dials_and_listens_nowhere)
{
	struct els_mgmt_conf *c;
	struct els_diag d;
	cr_assert_eq(parse("console = { address = \"console.example.net:7444\"; group = \"web\"; };",
			   &c, &d), 0);
	cr_assert_not_null(c);
	cr_assert_null(c->listen, "a console section alone opens no port");
	cr_assert_str_eq(c->console_host, "console.example.net");
	cr_assert_eq(c->console_port, 7444);
	cr_assert_str_eq(c->console_group, "web");
	cr_assert_eq(c->heartbeat_s, 10);
	cr_assert_str_eq(c->console_ca, "/etc/elsd/tls/ca.crt", "the management defaults");
	cr_assert_str_eq(c->user, "nobody");
	els_mgmt_config_free(c);
	els_diag_free(&d);
	cr_assert_eq(parse("management = { ca = \"m/ca.crt\"; };\n"
			   "console = { address = \"[2001:db8::5]:7444\"; crl = \"c/crl.pem\"; "
			   "heartbeat_s = 2; };",
			   &c, &d), 0);
	cr_assert_str_eq(c->console_host, "2001:db8::5");
	cr_assert_str_eq(c->console_ca, "/etc/elsd/m/ca.crt", "inherited from management");
	cr_assert_str_eq(c->console_crl, "/etc/elsd/c/crl.pem", "its own, beside the config");
	cr_assert_eq(c->heartbeat_s, 2);
	els_mgmt_config_free(c);
	els_diag_free(&d);
}

Test(config, console_errors_with_their_line)
{
	struct els_mgmt_conf *c;
	struct els_diag d;
	cr_assert_eq(parse("console = {\n group = \"web\";\n};", &c, &d), -EINVAL);
	cr_assert(strstr(d.msgs[0], "'address' is required"), "%s", d.msgs[0]);
	els_diag_free(&d);
	cr_assert_eq(parse("console = {\n address = \"console.example.net\";\n};", &c, &d), -EINVAL);
	cr_assert(strstr(d.msgs[0], ":2:") && strstr(d.msgs[0], "expected HOST:PORT"), "%s",
		  d.msgs[0]);
	els_diag_free(&d);
	cr_assert_eq(parse("console = {\n address = \"bad_host!:7444\";\n};", &c, &d), -EINVAL);
	cr_assert(strstr(d.msgs[0], "an IPv4 address, [IPv6] or a DNS name"), "%s", d.msgs[0]);
	els_diag_free(&d);
	cr_assert_eq(parse("console = {\n address = \"c.example:0\";\n};", &c, &d), -EINVAL);
	cr_assert(strstr(d.msgs[0], "port must be"), "%s", d.msgs[0]);
	els_diag_free(&d);
	cr_assert_eq(parse("console = { address = \"c.example:1\";\n heartbeat_s = 0;\n "
			   "group = \"a b\";\n bogus = 1; };",
			   &c, &d), -EINVAL);
	cr_assert_eq(d.count, 3, "every error: %u", d.count);
	els_diag_free(&d);
}

Test(config, every_error_with_its_line)
{
	struct els_mgmt_conf *c;
	struct els_diag d;
	cr_assert_eq(parse("management = {\n listen = \"host.example:7443\";\n user = "
			   "\"no-such-user-xyz\";\n max_clients = 0;\n colour = 1;\n};",
			   &c, &d),
		     -EINVAL);
	cr_assert_null(c);
	cr_assert_eq(d.count, 4, "got %u", d.count);
	bool lines[6] = {0};
	for (unsigned i = 0; i < d.count; i++)
		for (int l = 2; l <= 5; l++) {
			char pre[32];
			snprintf(pre, sizeof(pre), "elsd.conf:%d: ", l);
			lines[l] |= strstr(d.msgs[i], pre) != NULL;
		}
	for (int l = 2; l <= 5; l++)
		cr_assert(lines[l], "an error at line %d", l);
	bool named = false; /* the field as section.key, from engine/settings.c */
	for (unsigned i = 0; i < d.count; i++)
		named |= strstr(d.msgs[i], "elsd.conf:4: 'management.max_clients' = 0 is out of "
					   "range 1..1024") != NULL;
	cr_assert(named, "the out-of-range field is named with its line");
	els_diag_free(&d);
	cr_assert_eq(parse("management = { listen = \"1.2.3.4:70000\"; };", &c, &d), -EINVAL);
	els_diag_free(&d);
	cr_assert_eq(parse("management = { user = \"root\"; };", &c, &d), -EINVAL);
	els_diag_free(&d);
	cr_assert_eq(parse("management = 5;", &c, &d), -EINVAL);
	els_diag_free(&d);
}

/* ---- the console connection's on_behalf_of ---- */

static int ob(const char *json, char *id)
{
	return els_mgmt_on_behalf(json, strlen(json), "console-1", id, 65);
}

Test(console, on_behalf_of_gives_role_and_identity)
{
	char id[65];
	cr_assert_eq(ob("{\"v\":1,\"id\":1,\"cmd\":\"status\"}", id), ELS_ROLE_AUDITOR,
		     "none stated: the console may only read");
	cr_assert_str_eq(id, "? via console-1");
	cr_assert_eq(ob("{\"on_behalf_of\":{\"identity\":\"alice\",\"role\":\"admin\"}}", id),
		     ELS_ROLE_ADMIN);
	cr_assert_str_eq(id, "alice via console-1");
	cr_assert_eq(ob("{\"on_behalf_of\":{\"identity\":\"bob\",\"role\":\"auditor\"}}", id),
		     ELS_ROLE_AUDITOR);
	cr_assert_eq(ob("{\"on_behalf_of\":{\"identity\":\"eve\",\"role\":\"root\"}}", id),
		     ELS_ROLE_NONE, "an unknown role is none, not the default");
	cr_assert_eq(ob("{\"on_behalf_of\":{\"identity\":\"eve\"}}", id), ELS_ROLE_NONE);
	cr_assert_eq(ob("{\"on_behalf_of\":{\"identity\":\"eve\",\"role\":\"Admin\"}}", id),
		     ELS_ROLE_NONE, "case matters");
	cr_assert_eq(ob("{\"on_behalf_of\":\"admin\"}", id), ELS_ROLE_NONE);
	cr_assert_eq(ob("not json", id), ELS_ROLE_AUDITOR, "the request check refuses it anyway");
	ob("{\"on_behalf_of\":{\"identity\":\"a b\\nalert: x\",\"role\":\"admin\"}}", id);
	cr_assert_str_eq(id, "a?b?alert??x via console-1", "nothing that could forge a line");
	ob("{\"on_behalf_of\":{\"identity\":\"0123456789012345678901234567890123456789\","
	   "\"role\":\"admin\"}}",
	   id);
	cr_assert_str_eq(id, "01234567890123456789012345678901 via console-1", "cut at 32");
}
