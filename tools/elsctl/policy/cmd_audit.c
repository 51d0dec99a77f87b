/* elsctl audit: the host's attack surface against its policy (paper VII: "a network scan for
 * open ports will reveal other open ports that are not being used"). Runs locally, in the
 * network namespace elsd filters, and contacts no agent.
 *
 * Listening sockets come from the kernel over netlink sock_diag (NETLINK_SOCK_DIAG,
 * inet_diag_req_v2): TCP in LISTEN and unconnected UDP sockets, IPv4 and IPv6. The owning
 * process is found by matching socket inodes with the links in /proc/PID/fd, where this user
 * may read them (as root: all). Each listener is then checked against the policy's enforcing
 * inbound permits (include/els/registry.h):
 *   NOT-PERMITTED  listening, but no permit lets a new flow reach it: close it or permit it
 *   permitted      reachable (restricted: only from some remotes or after a session)
 *   loopback       bound to 127.0.0.0/8 or ::1: not reachable from the network
 *   WRONG-SERVICE  permitted by a service-bound permit, but the listener belongs to another
 *                  process (unit, executable or user): a stand-in on the service's port
 * and every port an inbound permit names where nothing listens is listed as UNUSED-PERMIT.
 * Exit: 0 when nothing is flagged, 1 when something is. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "els/addr.h"
#include "els/diag.h"
#include "els/policy.h"
#include "els/owner.h"
#include "els/registry.h"
#include "../elsctl.h"

#define TCP_LISTEN_STATE 10
#define UDP_UNCONN_STATE 7 /* TCP_CLOSE: a UDP socket with no peer */

struct listener {
	uint8_t proto, family;
	struct els_addr addr;
	uint16_t port;
	uint32_t ino;
	uint32_t uid; /* the socket's */
	uint32_t pid; /* 0: not found */
	char owner[64];
};

struct audit {
	struct listener *l;
	size_t n, cap;
	int flagged;
	bool json;
};

static int add_listener(struct audit *a, const struct listener *x)
{
	for (size_t i = 0; i < a->n; i++) /* dual-stack and SO_REUSEPORT duplicates */
		if (a->l[i].proto == x->proto && a->l[i].family == x->family &&
		    a->l[i].port == x->port && !memcmp(&a->l[i].addr, &x->addr, sizeof(x->addr)))
			return 0;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct listener *l = realloc(a->l, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		a->l = l;
		a->cap = cap;
	}
	a->l[a->n++] = *x;
	return 0;
}

/* One sock_diag dump: family AF_INET/AF_INET6, protocol IPPROTO_TCP/UDP, states bitmask. */
static int dump(struct audit *a, uint8_t family, uint8_t proto, uint32_t states)
{
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req = {
	    .nh = {.nlmsg_len = sizeof(req),
		   .nlmsg_type = SOCK_DIAG_BY_FAMILY,
		   .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		   .nlmsg_seq = 1},
	    .r = {.sdiag_family = family, .sdiag_protocol = proto, .idiag_states = states},
	};
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	long buf[8192 / sizeof(long)];
	int rc = 0, fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	if (fd < 0)
		return -errno;
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				goto out;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				rc = e->error ? e->error : -EIO;
				goto out;
			}
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
				continue;
			const struct inet_diag_msg *m = NLMSG_DATA(h);
			struct listener x = {.proto = proto,
					     .family =
						 family == AF_INET ? ELS_AF_INET : ELS_AF_INET6,
					     .port = ntohs(m->id.idiag_sport),
					     .ino = m->idiag_inode,
					     .uid = m->idiag_uid};
			memcpy(x.addr.b, m->id.idiag_src, family == AF_INET ? 4 : 16);
			/* a UDP socket with a peer is a client's, not a service */
			static const uint32_t nopeer[4];
			if (proto == IPPROTO_UDP &&
			    (m->id.idiag_dport || memcmp(m->id.idiag_dst, nopeer, sizeof(nopeer))))
				continue;
			if (add_listener(a, &x) < 0) {
				rc = -ENOMEM;
				goto out;
			}
		}
	}
out:
	close(fd);
	return rc;
}

/* "name[pid]" of the process holding each socket inode, where /proc lets us look. */
static void find_owners(struct audit *a)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;

	if (!proc)
		return;
	while ((de = readdir(proc))) {
		char path[300], link[64], comm[32] = "?";
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%.200s/comm", de->d_name);
		FILE *f = fopen(path, "re");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		snprintf(path, sizeof(path), "/proc/%.200s/fd", de->d_name);
		DIR *fds = opendir(path);
		struct dirent *fe;
		if (!fds)
			continue; /* not ours to read */
		while ((fe = readdir(fds))) {
			char fp[600];
			unsigned long ino;
			snprintf(fp, sizeof(fp), "%.300s/%.255s", path, fe->d_name);
			ssize_t n = readlink(fp, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (sscanf(link, "socket:[%lu]", &ino) != 1)
				continue;
			for (size_t i = 0; i < a->n; i++)
				if (a->l[i].ino == ino && !a->l[i].owner[0]) {
					snprintf(a->l[i].owner, sizeof(a->l[i].owner),
						 "%.31s[%.20s]", comm, de->d_name);
					a->l[i].pid = (uint32_t)strtoul(de->d_name, NULL, 10);
				}
		}
		closedir(fds);
	}
	closedir(proc);
}

static bool loopback(const struct listener *l)
{
	static const uint8_t v6lo[16] = {[15] = 1};
	return l->family == ELS_AF_INET ? l->addr.b[0] == 127 : !memcmp(l->addr.b, v6lo, 16);
}

struct unused_arg {
	struct audit *a;
	json_t *arr;
};

static void check_unused(void *arg, const char *id, uint8_t proto, uint16_t lo, uint16_t hi)
{
	struct unused_arg *u = arg;
	struct audit *a = u->a;

	if ((unsigned)hi - lo > 16)
		return; /* a range (e.g. "dynamic") is for clients, not a service to look for */
	for (unsigned port = lo; port <= hi; port++) {
		bool found = false;
		for (size_t i = 0; i < a->n && !found; i++)
			found =
			    a->l[i].proto == proto && a->l[i].port == port && !loopback(&a->l[i]);
		if (found)
			continue;
		a->flagged++;
		if (u->arr)
			json_array_append_new(u->arr, json_pack("{s:s,s:s,s:i,s:s}", "finding",
								"unused_permit", "proto",
								proto == IPPROTO_TCP ? "tcp" : "udp", "port",
								(int)port, "permit", id));
		else
			printf("UNUSED-PERMIT  %-4s %-28u %-20s permit %s: nothing listens\n",
			       proto == IPPROTO_TCP ? "tcp" : "udp", port, "-", id);
	}
}

int cmd_audit(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {
	    {"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'}, {0}};
	const char *conf = "/etc/elsd/elsd.conf";
	struct audit a = {.json = c->json};
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "+c:h", lo, NULL)) != -1) {
		if (ch == 'c')
			conf = optarg;
		else if (ch == 'h')
			return fputs(ctl_cmd_find("audit")->usage, stdout), CTL_EXIT_OK;
		else
			return ctl_bad_option("audit");
	}
	if (argc != optind)
		return ctl_usage_error("audit", "unexpected argument '%s'", argv[optind]);
	struct els_policy *p = els_policy_load_report(conf, NULL, stderr);
	if (!p)
		return CTL_EXIT_USAGE;
	static const struct {
		uint8_t fam, proto;
		uint32_t states;
	} q[] = {{AF_INET, IPPROTO_TCP, 1u << TCP_LISTEN_STATE},
		 {AF_INET6, IPPROTO_TCP, 1u << TCP_LISTEN_STATE},
		 {AF_INET, IPPROTO_UDP, 1u << UDP_UNCONN_STATE},
		 {AF_INET6, IPPROTO_UDP, 1u << UDP_UNCONN_STATE}};
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		rc = dump(&a, q[i].fam, q[i].proto, q[i].states);
		if (rc < 0) {
			fprintf(stderr, "elsctl: audit: sock_diag %s/%s: %s\n",
				q[i].fam == AF_INET ? "ipv4" : "ipv6",
				q[i].proto == IPPROTO_TCP ? "tcp" : "udp", strerror(-rc));
			rc = CTL_EXIT_FAILED;
			goto out;
		}
	}
	find_owners(&a);
	json_t *arr = a.json ? json_array() : NULL;
	if (!arr)
		printf("%-14s %-4s %-28s %-20s %s\n", "FINDING", "PROTO", "LISTEN", "PROCESS",
		       "POLICY");
	for (size_t i = 0; i < a.n; i++) {
		const struct listener *l = &a.l[i];
		char addr[ELS_ADDR_STRLEN], where[80], why[256];
		bool restricted = false;
		const char *id = NULL, *finding;
		els_addr_str(&l->addr, l->family, addr);
		snprintf(where, sizeof(where), l->family == ELS_AF_INET6 ? "[%s]:%u" : "%s:%u",
			 addr, l->port);
		if (loopback(l)) {
			finding = "loopback";
			snprintf(why, sizeof(why), "not reachable from the network");
		} else if ((id = els_registry_inbound(p, l->proto, l->family, &l->addr, l->port,
						      &restricted))) {
			finding = "permitted";
			snprintf(why, sizeof(why), "permit %s%s", id,
				 restricted ? " (some remotes or after a session)" : "");
			struct els_owner o = {.uid = l->uid};
			char want[160], have[96];
			bool known = l->pid && els_owner_from_pid(l->pid, &o);
			if (!known)
				o.pid = 0;
			int svc = els_registry_service_check(p, id, &o, want, sizeof(want));
			if (svc < 0) {
				/* A stand-in on a service's port: the permit will refuse its flows,
				 * and the service it names is not running there. */
				finding = "WRONG-SERVICE";
				if (known)
					els_owner_describe(&o, have, sizeof(have));
				else
					snprintf(have, sizeof(have), "an owner this user cannot see");
				snprintf(why, sizeof(why), "permit %.30s wants %.60s; owned by %.90s",
					 id, want, have);
				a.flagged++;
			}
		} else {
			finding = "NOT-PERMITTED";
			snprintf(why, sizeof(why), "no inbound permit: close it, or permit it");
			a.flagged++;
		}
		if (arr)
			json_array_append_new(
			    arr, json_pack("{s:s,s:s,s:s,s:i,s:s,s:s*}", "finding", finding,
					   "proto", l->proto == IPPROTO_TCP ? "tcp" : "udp", "address", addr,
					   "port", (int)l->port, "process",
					   l->owner[0] ? l->owner : "?", "permit", id));
		else
			printf("%-14s %-4s %-28s %-20s %s\n", finding,
			       l->proto == IPPROTO_TCP ? "tcp" : "udp", where, l->owner[0] ? l->owner : "?",
			       why);
	}
	struct unused_arg u = {&a, arr};
	els_registry_inbound_ports(p, check_unused, &u);
	if (arr) {
		ctl_print_json(arr, stdout);
		json_decref(arr);
	}
	rc = a.flagged ? CTL_EXIT_FAILED : CTL_EXIT_OK;
out:
	free(a.l);
	els_policy_free(p);
	return rc;
}
