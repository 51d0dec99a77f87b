/* The main process's side of the trust boundary with the management endpoint, driven by a
 * fake (compromised) endpoint on a socketpair: the role comes only from a certificate the main
 * process verifies itself against its own CA and CRL files, at the time of each request. A
 * role string, a self-signed or foreign certificate claiming admin, a revoked or garbage one
 * get nothing; a CRL file replaced without SIGHUP counts at the next check. Certificates are
 * made with pki/els-pki, as an administrator would. */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.h"
#include "els/policy.h"
#include "ipc.h"
#include "mgmt.h"

static char dir[] = "/tmp/els-trust-XXXXXX";
static char ca[4096], other[4096];
static struct els_policy *policy;

static const struct els_policy *running(void *arg)
{
	(void)arg;
	return policy;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* The DER of a PEM certificate file (malloc'd). */
static uint8_t *der_of(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert_not_null(x);
	int n = i2d_X509(x, NULL);
	uint8_t *buf = malloc((size_t)n), *p = buf;
	i2d_X509(x, &p);
	X509_free(x);
	*len = (size_t)n;
	return buf;
}

static void setup(void)
{
	const char *pki = ELS_SOURCE_DIR "/pki/els-pki";
	cr_assert_not_null(mkdtemp(dir));
	snprintf(ca, sizeof(ca), "%s/ca", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	sh("{ %s init %s && %s init %s && %s console %s alice --role admin && "
	   "%s console %s bob --role auditor && %s console %s mallory --role admin && "
	   "%s console %s eve --role admin && %s revoke %s %s/consoles/mallory.crt; } >/dev/null "
	   "2>&1",
	   pki, ca, pki, other, pki, ca, pki, ca, pki, ca, pki, other, pki, ca, ca);
	/* Self-signed, claiming admin both ways: what a forger would make. */
	sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 "
	   "-subj /OU=admin/CN=forged -addext subjectAltName=URI:els:role:admin "
	   "-keyout %s/forged.key -out %s/forged.crt >/dev/null 2>&1",
	   dir, dir);
	struct els_diag d;
	els_diag_init(&d, "conf");
	policy = els_policy_load(ELS_SOURCE_DIR "/conf/elsd.conf", NULL, &d);
	els_diag_free(&d);
	cr_assert_not_null(policy);
}

static void teardown(void)
{
	els_policy_free(policy);
	sh("rm -rf %s", dir);
}

TestSuite(mgmt_trust, .init = setup, .fini = teardown, .timeout = 60);

static struct els_mgmt_trust *trust(void)
{
	char caf[4200], crlf[4200], err[256];
	snprintf(caf, sizeof(caf), "%s/ca.crt", ca);
	snprintf(crlf, sizeof(crlf), "%s/crl.pem", ca);
	struct els_mgmt_trust *t = els_mgmt_trust_new(caf, crlf, err, sizeof(err));
	cr_assert_not_null(t, "%s", err);
	return t;
}

static int role_of(struct els_mgmt_trust *t, const char *certfile, char *why, size_t n)
{
	size_t len;
	char id[65];
	uint8_t *der = der_of(certfile, &len);
	int role = els_mgmt_trust_role(t, der, len, id, sizeof(id), why, n);
	free(der);
	return role;
}

Test(mgmt_trust, roles_only_from_verified_certificates)
{
	struct els_mgmt_trust *t = trust();
	char path[4200], why[128];

	snprintf(path, sizeof(path), "%s/consoles/alice.crt", ca);
	cr_assert_eq(role_of(t, path, why, sizeof(why)), ELS_ROLE_ADMIN);
	snprintf(path, sizeof(path), "%s/consoles/bob.crt", ca);
	cr_assert_eq(role_of(t, path, why, sizeof(why)), ELS_ROLE_AUDITOR);
	snprintf(path, sizeof(path), "%s/consoles/mallory.crt", ca);
	cr_assert_eq(role_of(t, path, why, sizeof(why)), ELS_ROLE_NONE, "revoked");
	cr_assert(strstr(why, "revoked"), "%s", why);
	snprintf(path, sizeof(path), "%s/consoles/eve.crt", other);
	cr_assert_eq(role_of(t, path, why, sizeof(why)), ELS_ROLE_NONE, "another CA");
	snprintf(path, sizeof(path), "%s/forged.crt", dir);
	cr_assert_eq(role_of(t, path, why, sizeof(why)), ELS_ROLE_NONE, "self-signed");

	char id[65];
	cr_assert_eq(
	    els_mgmt_trust_role(t, (const uint8_t *)"admin", 5, id, sizeof(id), why, sizeof(why)),
	    ELS_ROLE_NONE);
	cr_assert(strstr(why, "DER"), "%s", why);
	cr_assert_eq(els_mgmt_trust_role(t, NULL, 0, id, sizeof(id), why, sizeof(why)),
		     ELS_ROLE_NONE);
	els_mgmt_trust_free(t);
}

/* ---- a fake endpoint on the socketpair ---- */

struct fake {
	struct els_ipc ep;
	struct els_control *c;
};

static void fake_start(struct fake *f)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
	struct els_control_env env = {
	    .config_path = ELS_SOURCE_DIR "/conf/elsd.conf",
	    .running = running,
	};
	f->c = els_control_new(&env, sv[0], 0, trust());
	cr_assert_not_null(f->c);
	els_ipc_init(&f->ep, sv[1]);
}

static void fake_stop(struct fake *f)
{
	els_control_free(f->c);
	els_ipc_close(&f->ep);
}

/* Sends a raw REQUEST body; returns the answer (malloc'd JSON) or NULL when none came. */
static char *ask_raw(struct fake *f, const void *body, size_t len)
{
	struct els_ipc_msg m;
	cr_assert_eq(els_ipc_send(&f->ep, ELS_IPC_REQUEST, 42, body, len), 0);
	els_control_io(f->c, POLLIN);
	for (int i = 0; i < 100; i++) {
		int rc = els_ipc_recv(&f->ep, &m);
		if (rc == 1) {
			cr_assert_eq(m.type, ELS_IPC_RESPONSE);
			cr_assert_eq(m.conn, 42);
			return (char *)m.body;
		}
		cr_assert_eq(rc, 0);
		usleep(1000);
	}
	return NULL;
}

/* A REQUEST as the endpoint builds it: the certificate file's DER (or raw bytes), peer, JSON. */
static char *ask_peer(struct fake *f, const uint8_t *der, size_t derlen, const char *peer,
		      const char *json)
{
	size_t lp = strlen(peer) + 1, lj = strlen(json);
	uint8_t *b = malloc(4 + derlen + lp + lj);
	b[0] = (uint8_t)(derlen >> 24);
	b[1] = (uint8_t)(derlen >> 16);
	b[2] = (uint8_t)(derlen >> 8);
	b[3] = (uint8_t)derlen;
	memcpy(b + 4, der, derlen);
	memcpy(b + 4 + derlen, peer, lp);
	memcpy(b + 4 + derlen + lp, json, lj);
	char *r = ask_raw(f, b, 4 + derlen + lp + lj);
	free(b);
	return r;
}

static char *ask(struct fake *f, const uint8_t *der, size_t derlen, const char *json)
{
	return ask_peer(f, der, derlen, "198.18.0.9", json);
}

static char *ask_as(struct fake *f, const char *certfile, const char *json)
{
	size_t len;
	uint8_t *der = der_of(certfile, &len);
	char *r = ask(f, der, len, json);
	free(der);
	return r;
}

/* "ok" or the error code of an answer, and the role status reports. */
static void answer(const char *resp, char *code, size_t n, char *role, size_t rn)
{
	json_t *r = json_loads(resp, 0, NULL);
	cr_assert_not_null(r, "%s", resp);
	json_t *err = json_object_get(r, "error");
	snprintf(code, n, "%s", err ? json_string_value(json_object_get(err, "code")) : "ok");
	const char *ro = json_string_value(
	    json_object_get(json_object_get(json_object_get(r, "result"), "client"), "role"));
	snprintf(role, rn, "%s", ro ? ro : "");
	json_decref(r);
}

#define STATUS "{\"v\":1,\"id\":1,\"cmd\":\"status\"}"
#define APPLY  "{\"v\":1,\"id\":2,\"cmd\":\"policy.rollback\"}"

Test(mgmt_trust, a_compromised_endpoint_cannot_claim_admin)
{
	struct fake f;
	char path[4200], code[64], role[16];
	fake_start(&f);

	/* The old wire format: identity, role string, peer, JSON. Not a request any more. */
	static const char old[] = "alice\0admin\0198.18.0.9\0" STATUS;
	char *r = ask_raw(&f, old, sizeof(old) - 1);
	cr_assert_null(r, "a role string got an answer: %s", r);

	/* A real auditor's certificate: auditor, whatever the endpoint would like. */
	snprintf(path, sizeof(path), "%s/consoles/bob.crt", ca);
	r = ask_as(&f, path, STATUS);
	answer(r, code, sizeof(code), role, sizeof(role));
	free(r);
	cr_assert_str_eq(code, "ok");
	cr_assert_str_eq(role, "auditor");
	r = ask_as(&f, path, APPLY);
	answer(r, code, sizeof(code), role, sizeof(role));
	free(r);
	cr_assert_str_eq(code, "forbidden", "an auditor's certificate ran an admin command");

	/* Forged, foreign, revoked, garbage: forbidden before any command runs. */
	const char *bad[] = {"forged.crt", "other/consoles/eve.crt", "ca/consoles/mallory.crt"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, bad[i]);
		r = ask_as(&f, path, APPLY);
		answer(r, code, sizeof(code), role, sizeof(role));
		free(r);
		cr_assert_str_eq(code, "forbidden", "%s", bad[i]);
	}
	r = ask(&f, (const uint8_t *)"admin", 5, APPLY);
	answer(r, code, sizeof(code), role, sizeof(role));
	free(r);
	cr_assert_str_eq(code, "forbidden");

	/* A real admin's certificate is admin (the channel itself works). */
	snprintf(path, sizeof(path), "%s/consoles/alice.crt", ca);
	r = ask_as(&f, path, STATUS);
	answer(r, code, sizeof(code), role, sizeof(role));
	free(r);
	cr_assert_str_eq(role, "admin");
	fake_stop(&f);
}

Test(mgmt_trust, a_crl_file_change_counts_without_a_reload)
{
	struct fake f;
	struct els_ipc_msg m;
	char path[4200], code[64], role[16];
	fake_start(&f);
	snprintf(path, sizeof(path), "%s/consoles/alice.crt", ca);

	els_control_watch_crl(f.c);
	cr_assert_eq(els_ipc_recv(&f.ep, &m), 0, "an unchanged CRL file is not sent again");

	sh("%s/pki/els-pki revoke %s %s >/dev/null 2>&1", ELS_SOURCE_DIR, ca, path);
	els_control_watch_crl(f.c);
	cr_assert_eq(els_ipc_recv(&f.ep, &m), 1, "the changed CRL goes to the endpoint");
	cr_assert_eq(m.type, ELS_IPC_CRL);
	free(m.body);

	char *r = ask_as(&f, path, STATUS);
	answer(r, code, sizeof(code), role, sizeof(role));
	cr_assert_str_eq(code, "forbidden", "a revoked admin's request ran: %s", r);
	cr_assert(strstr(r, "revoked"), "%s", r);
	free(r);
	fake_stop(&f);
}

Test(mgmt_trust, malformed_requests_get_nothing_and_keep_the_channel)
{
	struct fake f;
	fake_start(&f);
	cr_assert_null(ask_raw(&f, "ab", 2));
	/* A derlen beyond the message: malformed, no answer, the channel stays. */
	cr_assert_null(ask_raw(&f,
			       "\xff\xff\xff\xff"
			       "x",
			       5));
	cr_assert_not(els_control_down(f.c));

	/* A peer address that would forge a line of elsd's log, its alerts or the monitor's
	 * detail (the address goes into each as it is): malformed, with a valid certificate
	 * (an admin's: policy.rollback is alerted with the peer) or with none. */
	char path[4200];
	size_t len;
	snprintf(path, sizeof(path), "%s/consoles/alice.crt", ca);
	uint8_t *der = der_of(path, &len);
	const char *forged[] = {"198.18.0.9\nelsd: warning: alert: event=forged", "198.18.0.9 x",
				"\x1b[2J", "", "198.18.0.9\x7f"};
	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		cr_assert_null(ask_peer(&f, der, len, forged[i], APPLY), "peer %zu answered", i);
		cr_assert_null(ask_peer(&f, (const uint8_t *)"admin", 5, forged[i], APPLY),
			       "peer %zu answered without a certificate", i);
	}
	/* The same certificate with a plain address is still served. */
	char *r = ask_peer(&f, der, len, "2001:db8::9", STATUS);
	char code[64], role[16];
	cr_assert_not_null(r);
	answer(r, code, sizeof(code), role, sizeof(role));
	free(r);
	cr_assert_str_eq(code, "ok");
	cr_assert_str_eq(role, "admin");
	free(der);
	cr_assert_not(els_control_down(f.c));
	fake_stop(&f);
}
