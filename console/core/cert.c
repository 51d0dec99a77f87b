/* Who a peer is: identity and role from its certificate, read as elsd reads it
 * (els/cert_role.h) with the console's wider role vocabulary: elsd passes its own parser, so
 * it never accepts "agent" or "console" as a role of its own clients. */
#include <errno.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "els/cert_role.h"
#include "tls.h"

int console_role_parse(const char *s)
{
	if (!s)
		return ELS_ROLE_NONE;
	if (strcmp(s, "agent") == 0)
		return CONSOLE_ROLE_AGENT;
	if (strcmp(s, "console") == 0)
		return CONSOLE_ROLE_CONSOLE;
	return els_mgmt_role_parse(s);
}

const char *console_role_name(int role)
{
	switch (role) {
	case CONSOLE_ROLE_AGENT:
		return "agent";
	case CONSOLE_ROLE_CONSOLE:
		return "console";
	default:
		return els_mgmt_role_name(role);
	}
}

int console_cert_role(X509 *x, char *identity, size_t n)
{
	return els_cert_role(x, console_role_parse, identity, n);
}

int console_cert_not_after(X509 *x, time_t *out)
{
	return els_cert_not_after(x, out);
}
