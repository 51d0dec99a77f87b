/* header_filter internals, shared by its files: header_filter.c (the packet path),
 * header_filter_parse.c (config -> permits), header_filter_build.c (permits -> lookup tables)
 * and header_filter_report.c (registry report, audit queries). Not a public interface. */
#ifndef ELS_HEADER_FILTER_H
#define ELS_HEADER_FILTER_H

#include <libconfig.h>
#include <stdbool.h>
#include <stdint.h>

#include "els/addr.h"
#include "els/handler.h"
#include "els/lpm.h"
#include "els/owner.h"
#include "portspec.h"

enum { HF_P_TCP, HF_P_UDP, HF_P_ICMP, HF_P_ICMP6, HF_P_N };
extern const char *const hf_proto_names[]; /* "tcp", "udp", "icmp", "icmpv6", "any", NULL */
#define HF_P_MASK_ANY	0x0fu
#define HF_P_MASK_PORTS ((1u << HF_P_TCP) | (1u << HF_P_UDP))

#define HF_NONE		UINT32_MAX
#define HF_LOCAL_LINEAR 8 /* above this many local prefixes a permit gets its own LPM */
#define HF_MAX_MAPS	16

struct hf_set {
	uint32_t off, len; /* into pool */
};

/* Interns sorted uint32 lists: equal lists get one id. */
struct hf_interner {
	uint32_t *pool;
	size_t npool, cpool;
	struct hf_set *sets;
	uint32_t nsets, csets;
	uint32_t *slot; /* open addressing: set id + 1, 0 = free */
	uint32_t nslot;
};

/* A service-bound permit's owner conditions (header_filter_service.c); absent = any. */
struct hf_svc {
	char *unit; /* "nginx.service" */
	char *exe;  /* absolute path */
	uint32_t uid, gid;
	bool has_uid, has_gid;
	unsigned need; /* ELS_OWNER_NEED_* */
};

struct hf_inst {
	uint32_t rule;	 /* 0-based permit index */
	uint32_t off, n; /* residual port ranges in conf->ranges; n == 0: nothing to check */
};

/* What the packet path needs of a permit. */
struct hf_rule {
	char *id;
	struct els_cidr *local; /* NULL: any local address */
	uint32_t nlocal;
	struct els_lpm *local_lpm;
	int64_t expires_s; /* CLOCK_REALTIME second from which it no longer matches; 0: never */
	uint64_t grace_ns; /* gate stays open this long after the last session ended */
	uint16_t req_port; /* requires = "proto/port": the session that opens the gate */
	uint8_t req_proto; /* 0: not gated */
	uint8_t observe;   /* mode = "observe": matches, but recorded as would_drop */
	uint8_t expired;   /* expired when built: compiled into no index */
	struct hf_svc *svc; /* NULL: any process may own the socket */
};

/* A permit as written, kept after the build for reports and audits. `s` is valid only while
 * building. */
struct hf_permit {
	const config_setting_t *s;
	uint8_t dir, protos; /* protos: bit per P_* */
	bool has_lp, has_rp, has_types;
	bool has_id; /* false: the id is the generated "permit-N" (lint warns) */
	struct els_port_set lp[2], rp[2]; /* [HF_P_TCP], [HF_P_UDP] */
	struct els_port_set types[2];	  /* [HF_P_ICMP - 2], [HF_P_ICMP6 - 2] */
	struct els_cidr *remote;	  /* NULL: any */
	uint32_t nremote;
	int line; /* config line, for reports */
	/* registry metadata (DoDI 8551.01 PPS registry); NULL when not given */
	char *justification, *owner, *category, *mitigations, *expires, *requires;
};

struct hf_index {
	const uint16_t *map; /* NULL: no instance in this index */
	uint32_t nclass;
	struct els_lpm **lpm; /* per class; NULL for a class without instances */
};

struct hf_table {
	struct hf_index side[2];
	struct els_lpm *any;
};

struct hf_conf {
	struct hf_table tab[2][HF_P_N];
	struct hf_rule *rules;
	struct hf_permit *pm; /* [nrules], parallel to rules */
	uint32_t nrules;
	bool observe;	  /* mode = "observe" for the whole section */
	bool fail_open;	  /* fail = "open": a service-bound permit whose socket owner cannot be
			     found matches (reason owner_unknown); else it does not */
	uint32_t *expiry; /* rule indexes with an expiry date, by date; [nexpiry] */
	uint32_t nexpiry;
	struct hf_inst *inst;
	uint32_t ninst, cinst;
	struct els_port_range *ranges;
	size_t nranges, cranges;
	struct hf_interner cand;
	uint16_t *maps[HF_MAX_MAPS];
	uint32_t map_dom[HF_MAX_MAPS];
	unsigned nmaps;
};

/* Build scratch, shared by the parse and compile halves. */
struct hf_build {
	struct hf_conf *c;
	struct els_diag *d;
	const char *services_path;
	struct els_services *svc;
	int svc_err; /* the services file could not be read: reported once */
	struct hf_permit *pm;
	const struct els_port_set **key; /* per instance: the list its side index is keyed on */
	uint32_t ckey;
	uint32_t *tmp, *tmp2; /* scratch of ninst entries */
	int err;	      /* first allocation failure */
	int64_t now_s;	      /* wall clock at build: permits expired by then are left out */
	char where[300];      /* "permit '<id>'", for messages */
};

/* header_filter_build.c */
void hf_compile(struct hf_build *b);
void hf_destroy(void *conf);

/* header_filter_parse.c */
int hf_build(const config_setting_t *section, const struct els_build_env *env, void **conf,
	     struct els_diag *d);
/* "2026-12-31" or "2026-12-31T18:00:00Z" (UTC) -> the first second it no longer covers
 * (the day after a bare date). 0 or -EINVAL. */
int hf_parse_expiry(const char *text, int64_t *out_s);

/* header_filter_report.c */
struct els_policy;
/* The header filter's configuration in p's chain, or NULL. */
const struct hf_conf *hf_of(const struct els_policy *p);

/* header_filter_service.c */
/* Reads service/exe/user/group of permit idx into its rule (NULL svc when none is given). */
void hf_parse_service(struct hf_build *b, uint32_t idx);
void hf_svc_free(struct hf_svc *s);
enum hf_svc_res { HF_SVC_OK, HF_SVC_WRONG, HF_SVC_UNKNOWN, HF_SVC_PENDING };
/* Packet path: whether the owner of the packet's local socket satisfies s. */
enum hf_svc_res hf_svc_check(const struct hf_svc *s, const struct els_ctx *ctx);
/* Whether owner o satisfies s (also for audits, off the packet path). */
bool hf_svc_match(const struct hf_svc *s, const struct els_owner *o);
/* "unit=nginx.service exe=... user=33", for reports. */
void hf_svc_describe(const struct hf_svc *s, char *buf, size_t size);

/* header_filter.c */
bool hf_rule_expired_now(const struct hf_rule *r, const struct els_ctx *ctx);

#endif
