/* els-console's pure pieces: hello/heartbeat/response classification and checks
 * (console/agents/hello.c), certificate roles with the console's vocabulary (console/core/cert.c), and the
 * HTTP routing table (console/core/http.c). */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "console.h"
#include "hello.h"
#include "http.h"
#include "tls.h"

static int parse(const char *body, const char *cn, json_t **row, char *why)
{
	return console_frame_parse(body, strlen(body), cn, row, why, 256);
}

Test(console_hello, full_hello_becomes_a_row)
{
	json_t *row;
	char why[256] = "";
	const char *h =
	    "{\"v\":1,\"type\":\"hello\",\"agent_id\":\"web-01\",\"host\":\"web-01.example\","
	    "\"version\":\"0.1\",\"group\":\"web\",\"policy_sha256\":\"" /* 64 hex */
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
	    "\"policy_generation\":12,\"managed\":true,\"rules_ok\":false,\"monitor_ok\":true,"
	    "\"listeners\":[{\"proto\":\"tcp\",\"addr\":\"0.0.0.0\",\"port\":443}],"
	    "\"permits\":[],\"counters\":{\"dropped\":5},\"time\":\"2026-12-05T01:00:00Z\","
	    "\"future_field\":1}";
	cr_assert_eq(parse(h, "web-01", &row, why), CONSOLE_FRAME_HELLO, "%s", why);
	cr_assert_str_eq(json_string_value(json_object_get(row, "grp")), "web");
	cr_assert_str_eq(json_string_value(json_object_get(row, "host")), "web-01.example");
	cr_assert_eq(json_integer_value(json_object_get(row, "policy_generation")), 12);
	cr_assert(json_is_false(json_object_get(row, "rules_ok")));
	cr_assert_float_eq(json_real_value(json_object_get(row, "agent_time_epoch")), 1796432400.0,
			   1e-6);
	cr_assert_null(json_object_get(row, "future_field"), "unknown fields do not reach SQL");
	json_decref(row);
}

Test(console_hello, heartbeat_with_few_fields)
{
	json_t *row;
	char why[256];
	cr_assert_eq(parse("{\"v\":1,\"type\":\"heartbeat\",\"agent_id\":\"a\"}", "a", &row, why),
		     CONSOLE_FRAME_HEARTBEAT);
	cr_assert_eq(json_object_size(row), 1);
	json_decref(row);
}

Test(console_hello, agent_id_must_be_the_certificate)
{
	json_t *row;
	char why[256];
	cr_assert_eq(
	    parse("{\"v\":1,\"type\":\"hello\",\"agent_id\":\"web-02\"}", "web-01", &row, why),
	    CONSOLE_FRAME_WRONG_ID);
	cr_assert_null(row);
	cr_assert_eq(parse("{\"v\":1,\"type\":\"hello\"}", "web-01", &row, why),
		     CONSOLE_FRAME_WRONG_ID);
}

Test(console_hello, bad_frames_refused_with_a_reason)
{
	const char *bad[] = {
	    "not json",
	    "[1]",
	    "{\"v\":2,\"type\":\"hello\",\"agent_id\":\"a\"}",
	    "{\"v\":1,\"type\":\"bye\",\"agent_id\":\"a\"}",
	    "{\"v\":1,\"type\":\"hello\",\"agent_id\":\"a\",\"host\":5}",
	    "{\"v\":1,\"type\":\"hello\",\"agent_id\":\"a\",\"host\":\"a\\u0001b\"}",
	    "{\"v\":1,\"type\":\"hello\",\"agent_id\":\"a\",\"policy_sha256\":\"ABC\"}",
	    "{\"v\":1,\"type\":\"hello\",\"agent_id\":\"a\",\"policy_generation\":-1}",
	    "{\"v\":1,\"type\":\"hello\",\"agent_id\":\"a\",\"managed\":\"yes\"}",
	    "{\"v\":1,\"type\":\"hello\",\"agent_id\":\"a\",\"listeners\":{}}",
	    "{\"v\":1,\"type\":\"hello\",\"agent_id\":\"a\",\"listeners\":[1]}",
	    "{\"v\":1,\"type\":\"hello\",\"agent_id\":\"a\",\"counters\":{\"x\":-1}}",
	    "{\"v\":1,\"type\":\"hello\",\"agent_id\":\"a\",\"time\":\"2026-02-30T00:00:00Z\"}",
	    "{\"v\":1,\"type\":\"hello\",\"agent_id\":\"a\",\"time\":\"yesterday\"}",
	    "{\"v\":1,\"type\":\"hello\",\"agent_id\":\"a\",\"agent_id\":\"a\"}",
	    "{\"v\":1,\"id\":\"1\",\"ok\":true}",
	    "{\"v\":1,\"id\":1}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *row = (void *)1;
		char why[256] = "";
		cr_assert_eq(parse(bad[i], "a", &row, why), CONSOLE_FRAME_BAD, "%s", bad[i]);
		cr_assert_null(row);
		cr_assert(why[0], "no reason for %s", bad[i]);
	}
}

Test(console_hello, responses)
{
	json_t *row;
	char why[256];
	cr_assert_eq(parse("{\"v\":1,\"id\":3,\"ok\":true,\"result\":{}}", "a", &row, why),
		     CONSOLE_FRAME_RESPONSE);
	cr_assert_eq(json_integer_value(json_object_get(row, "id")), 3);
	json_decref(row);
	cr_assert_eq(parse("{\"v\":1,\"id\":null,\"ok\":false}", "a", &row, why),
		     CONSOLE_FRAME_RESPONSE);
	json_decref(row);
}

Test(console_hello, utc_times)
{
	double t;
	cr_assert_eq(console_parse_utc("1970-01-01T00:00:00Z", &t), 0);
	cr_assert_float_eq(t, 0.0, 1e-9);
	cr_assert_eq(console_parse_utc("2024-02-29T23:59:59.5Z", &t), 0);
	cr_assert_float_eq(t, 1709251199.5, 1e-6);
	const char *bad[] = {"2023-02-29T00:00:00Z",	"2026-12-05 01:00:00Z",
			     "2026-12-05T01:00:00",	"2026-12-05T24:00:00Z",
			     "2026-12-05T01:00:00.Z",	"1969-12-31T23:59:59Z",
			     "2026-12-05T01:00:00Zjunk"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_lt(console_parse_utc(bad[i], &t), 0, "%s", bad[i]);
}

/* ---- certificate roles ---- */

static X509 *make(const char *cn, const char *ou, size_t oulen, const char *uri, size_t urilen)
{
	static EVP_PKEY *key;
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);
	if (ou)
		X509_NAME_add_entry_by_NID(n, NID_organizationalUnitName, V_ASN1_UTF8STRING,
					   (const unsigned char *)ou, (int)oulen, -1, 0);
	X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_ASC, (const unsigned char *)cn, -1,
				   -1, 0);
	if (!key)
		key = EVP_EC_gen("P-256");
	X509_set_pubkey(x, key);
	ASN1_TIME_set(X509_getm_notAfter(x), 2000000000);
	if (uri) {
		GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();
		ASN1_STRING_set(s, uri, (int)urilen);
		GENERAL_NAME_set0_value(g, GEN_URI, s);
		sk_GENERAL_NAME_push(gens, g);
		X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0);
		GENERAL_NAMES_free(gens);
	}
	return x;
}

static int role_of(const char *ou, const char *uri, char *id)
{
	X509 *x = make("Web 01", ou, ou ? strlen(ou) : 0, uri, uri ? strlen(uri) : 0);
	int r = console_cert_role(x, id, 64);
	X509_free(x);
	return r;
}

Test(console_cert, roles)
{
	char id[64];
	cr_assert_eq(role_of("agent", NULL, id), CONSOLE_ROLE_AGENT);
	cr_assert_str_eq(id, "Web?01", "identity keeps printable characters only");
	cr_assert_eq(role_of(NULL, "els:role:console", id), CONSOLE_ROLE_CONSOLE);
	cr_assert_eq(role_of("admin", "els:role:admin", id), ELS_ROLE_ADMIN);
	cr_assert_eq(role_of("auditor", NULL, id), ELS_ROLE_AUDITOR);
	cr_assert_eq(role_of("agent", "els:role:admin", id), ELS_ROLE_NONE, "contradiction");
	cr_assert_eq(role_of("admin", "els:role:root", id), ELS_ROLE_NONE, "unknown URI role");
	cr_assert_eq(role_of("web", NULL, id), ELS_ROLE_NONE);
	cr_assert_eq(role_of(NULL, NULL, id), ELS_ROLE_NONE);
	X509 *x = make("a", "agent\0x", 7, NULL, 0);
	cr_assert_eq(console_cert_role(x, id, sizeof(id)), ELS_ROLE_NONE, "NUL inside the OU");
	X509_free(x);
	x = make("a", NULL, 0, "els:role:agent\0x", 16);
	cr_assert_eq(console_cert_role(x, id, sizeof(id)), ELS_ROLE_NONE, "NUL inside the URI");
	time_t t;
	cr_assert_eq(console_cert_not_after(x, &t), 0);
	cr_assert_eq(t, 2000000000);
	X509_free(x);
	cr_assert_str_eq(console_role_name(CONSOLE_ROLE_AGENT), "agent");
	cr_assert_str_eq(console_role_name(ELS_ROLE_ADMIN), "admin");
}

/* ---- routes ---- */

static void h1(struct console_http_ctx *ctx)
{
	(void)ctx;
}
static void h2(struct console_http_ctx *ctx)
{
	(void)ctx;
}
static void h3(struct console_http_ctx *ctx)
{
	(void)ctx;
}

Test(console_http, longest_prefix_wins_and_methods_are_separate)
{
	struct console c = {0};
	cr_assert_eq(console_http_route(&c, "GET", "/api/policies", h1, ELS_ROLE_AUDITOR, false),
		     0);
	cr_assert_eq(console_http_route(&c, "POST", "/api/policies/", h2, ELS_ROLE_ADMIN, true), 0);
	cr_assert_eq(
	    console_http_route(&c, "GET", "/api/policies/diff", h3, ELS_ROLE_AUDITOR, false), 0);
	cr_assert_eq(console_http_route(&c, "GET", "/api/policies", h1, ELS_ROLE_AUDITOR, false),
		     -EEXIST);
	cr_assert_eq(console_http_route(&c, "GET", "api", h1, ELS_ROLE_AUDITOR, false), -EINVAL);
	cr_assert_eq(console_http_route(&c, "GET", "/x", h1, 0, false), -EINVAL);

	const char *rest;
	int role;
	bool sc, known;
	cr_assert_eq(console_http_lookup(&c, "GET", "/api/policies", &rest, &role, &sc, &known),
		     h1);
	cr_assert_str_eq(rest, "");
	cr_assert_eq(console_http_lookup(&c, "GET", "/api/policies/12", &rest, &role, &sc, &known),
		     h1);
	cr_assert_str_eq(rest, "12");
	cr_assert_eq(
	    console_http_lookup(&c, "GET", "/api/policies/diff", &rest, &role, &sc, &known), h3);
	cr_assert_eq(
	    console_http_lookup(&c, "POST", "/api/policies/7/approve", &rest, &role, &sc, &known),
	    h2);
	cr_assert_str_eq(rest, "7/approve");
	cr_assert_eq(role, ELS_ROLE_ADMIN);
	cr_assert(sc);
	cr_assert_null(console_http_lookup(&c, "GET", "/api/policiesx", &rest, &role, &sc, &known));
	cr_assert_not(known, "a prefix is not a word prefix");
	cr_assert_null(
	    console_http_lookup(&c, "DELETE", "/api/policies/1", &rest, &role, &sc, &known));
	cr_assert(known, "405, not 404");
	cr_assert_null(console_http_lookup(&c, "POST", "/api/policies", &rest, &role, &sc, &known));
	console_http_free(&c);
}
