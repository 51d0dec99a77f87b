/* What the agent tells its console in hello and each heartbeat (docs/console-protocol.md):
 * identity, running policy, ruleset and monitor health, listening sockets, the permits of the
 * policy and the packet counters. Built on the main thread every heartbeat_s; nothing here is
 * on the packet path. */
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dialout.h"
#include "els/policy.h"
#include "els/registry.h"
#include "worker.h"

/* Listening TCP sockets and bound UDP sockets of this network namespace, from /proc/net
 * (readable without privilege). Where /proc/net is hidden (systemd's ProcSubset=pid) the list
 * is left out rather than sent empty: "nothing listens" would be a false statement. */
static bool add_listeners(json_t *arr, const char *file, const char *proto, bool v6, bool tcp)
{
	FILE *f = fopen(file, "re");
	char line[512];
	if (!f)
		return false;
	if (!fgets(line, sizeof(line), f)) { /* header */
		fclose(f);
		return false;
	}
	while (fgets(line, sizeof(line), f) && json_array_size(arr) < 1024) {
		char local[64];
		unsigned st;
		if (sscanf(line, "%*d: %63s %*s %x", local, &st) != 2)
			continue;
		if ((tcp && st != 0x0A) || (!tcp && st != 0x07)) /* LISTEN; UDP: unconnected */
			continue;
		char *colon = strchr(local, ':');
		if (!colon)
			continue;
		*colon = 0;
		unsigned port = (unsigned)strtoul(colon + 1, NULL, 16);
		char addr[64] = "?";
		if (!v6) {
			unsigned a = (unsigned)strtoul(local, NULL, 16); /* host order as printed */
			unsigned char b[4] = {(unsigned char)a, (unsigned char)(a >> 8),
					      (unsigned char)(a >> 16), (unsigned char)(a >> 24)};
			snprintf(addr, sizeof(addr), "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
		} else if (strlen(local) == 32) {
			unsigned char b[16];
			for (int w = 0; w < 4; w++) {
				char word[9];
				memcpy(word, local + 8 * w, 8);
				word[8] = 0;
				unsigned v = (unsigned)strtoul(word, NULL, 16);
				for (int k = 0; k < 4; k++)
					b[4 * w + k] = (unsigned char)(v >> (8 * k));
			}
			char *o = addr;
			for (int i = 0; i < 16; i += 2)
				o += sprintf(o, i ? ":%x" : "%x", b[i] << 8 | b[i + 1]);
		}
		json_array_append_new(arr, json_pack("{s:s,s:s,s:i}", "proto", proto, "addr", addr,
						     "port", (json_int_t)port));
	}
	fclose(f);
	return true;
}

static void add_permit(void *arg, const char *id, uint8_t proto, uint16_t lo, uint16_t hi)
{
	char port[16];
	if (lo == hi)
		snprintf(port, sizeof(port), "%u", lo);
	else
		snprintf(port, sizeof(port), "%u-%u", lo, hi);
	json_array_append_new((json_t *)arg,
			      json_pack("{s:s,s:s,s:s,s:s}", "id", id ? id : "", "proto",
					proto == IPPROTO_TCP ? "tcp" : "udp", "port", port, "dir",
					"in"));
}

char *els_dialout_state_json(const struct els_dialout_state_in *in)
{
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	const struct els_policy *p = in->p;
	const char *id = p->set.agent_id ? p->set.agent_id : host;
	uint64_t accepted = 0, dropped = 0;
	for (unsigned i = 0; i < in->nq; i++) {
		accepted += atomic_load(&in->workers[i].st.accepted);
		dropped += atomic_load(&in->workers[i].st.dropped);
	}
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:I,s:b,s:b}", "agent_id", id, "host", host,
			      "version", ELS_VERSION, "policy_sha256", p->hash, "policy_generation",
			      (json_int_t)p->generation, "managed", p->policy_file != NULL,
			      "monitor_ok", in->monitor_ok);
	if (!j)
		return NULL;
	if (in->group)
		json_object_set_new(j, "group", json_string(in->group));
	json_object_set_new(j, "rules_ok",
			    in->rules_ok < 0 ? json_null() : json_boolean(in->rules_ok));
	json_t *ls = json_array();
	bool ok = add_listeners(ls, "/proc/net/tcp", "tcp", false, true);
	ok |= add_listeners(ls, "/proc/net/tcp6", "tcp", true, true);
	ok |= add_listeners(ls, "/proc/net/udp", "udp", false, false);
	ok |= add_listeners(ls, "/proc/net/udp6", "udp", true, false);
	if (ok)
		json_object_set_new(j, "listeners", ls);
	else
		json_decref(ls);
	json_t *permits = json_array();
	els_registry_inbound_ports(p, add_permit, permits);
	json_object_set_new(j, "permits", permits);
	json_object_set_new(j, "counters",
			    json_pack("{s:I,s:I}", "dropped", (json_int_t)dropped, "admitted",
				      (json_int_t)accepted));
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}
