/* console_sim: thousands of simulated elsd agents per process against one els-console, each
 * with real TLS 1.3 (mutual), the real framing, hello and heartbeats as elsd sends them
 * (docs/console-protocol.md), answering policy.apply with ok. See bench/console-scale. */
#ifndef SIM_H
#define SIM_H

#include <openssl/ssl.h>
#include <openssl/x509.h>

struct sim_certs {
	X509 *ca;
	EVP_PKEY *ca_key;
	EVP_PKEY *key; /* shared by every simulated agent */
};

int sim_certs_load(struct sim_certs *c, const char *ca_crt, const char *ca_key);
X509 *sim_cert_issue(struct sim_certs *c, const char *cn, long serial);

#endif
