/* elsctl --console: the console URL (what the operator types reaches the TLS name check). */
#include <criterion/criterion.h>
#include <string.h>

#include "../../tools/elsctl/console/console_http.c"
#include "../../tools/elsctl/transport/tls.c"
#include "../../tools/elsctl/transport/tls_conn.c"
#include "../../tools/elsctl/transport/wire.c"

Test(console_url, https_host_and_port)
{
	struct ctl_console_url u;
	const char *why = NULL;

	cr_assert_eq(ctl_console_url_parse("https://console.example.net", &u, &why), 0);
	cr_assert_str_eq(u.host, "console.example.net");
	cr_assert_eq(u.port, 8443);
	cr_assert(!u.is_ip);
	cr_assert_eq(ctl_console_url_parse("https://198.18.0.2:9443/", &u, &why), 0);
	cr_assert_str_eq(u.host, "198.18.0.2");
	cr_assert_eq(u.port, 9443);
	cr_assert(u.is_ip);
	cr_assert_eq(ctl_console_url_parse("https://[2001:db8::2]:8443", &u, &why), 0);
	cr_assert_str_eq(u.host, "2001:db8::2");
	cr_assert(u.is_ip);
}

Test(console_url, refused_with_a_reason)
{
	static const char *const bad[] = {
	    "http://console:8443",	    "console:8443", "https://",
	    "https://console/api/registry", "ftp://x",	    ""};
	struct ctl_console_url u;

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;
		cr_assert_eq(ctl_console_url_parse(bad[i], &u, &why), -EINVAL, "%s", bad[i]);
		cr_assert_not_null(why, "%s", bad[i]);
	}
}

Test(console_role, only_a_console_certificate_passes)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);

	X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC, (const unsigned char *)"agent", -1, -1,
				   0);
	cr_assert_not(has_console_role(x));
	X509_EXTENSION *ext =
	    X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "URI:els:role:console");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	cr_assert(has_console_role(x));
	X509_free(x);
	x = X509_new();
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "URI:els:role:consoles");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	cr_assert_not(has_console_role(x), "a longer URI is not the role");
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "OU", MBSTRING_ASC,
				   (const unsigned char *)"console", -1, -1, 0);
	cr_assert(has_console_role(x));
	X509_free(x);
}
