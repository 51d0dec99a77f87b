/* Every reason a packet can be decided for, and every record kind, with its stable name.
 * The names are written to the monitor file and matched by queries: never rename one. */
#ifndef ELS_REASON_H
#define ELS_REASON_H

#include <stdint.h>

/* X(ENUM_SUFFIX, "name") */
#define ELS_REASON_LIST(X)                                                                         \
	X(NONE, "none")                                                                            \
	/* decoder: the packet could not be read as the headers it claims to carry */              \
	X(TRUNCATED, "truncated")                     /* capture shorter than the IP header */     \
	X(BAD_VERSION, "bad_ip_version")              /* neither IPv4 nor IPv6 */                  \
	X(BAD_IHL, "bad_ihl")                         /* IPv4 header length < 20 or past data */   \
	X(BAD_IP_LENGTH, "bad_ip_length")             /* total/payload length inconsistent */      \
	X(BAD_EXT_HEADER, "bad_ipv6_ext_header")      /* extension header runs past the data */    \
	X(EXT_CHAIN_TOO_LONG, "ipv6_ext_chain_too_long")                                           \
	X(TRUNCATED_L4, "truncated_l4")               /* TCP/UDP/ICMP header cut short */          \
	X(TINY_FRAGMENT, "tiny_fragment")             /* first fragment too short for L4 (RFC 1858) */ \
	X(BAD_TCP_OFFSET, "bad_tcp_data_offset")                                                   \
	X(BAD_UDP_LENGTH, "bad_udp_length")                                                        \
	X(UNKNOWN_PROTO, "unknown_protocol")          /* L4 protocol the agent does not decode */  \
	/* iplist */                                                                               \
	X(DENY_LIST, "deny_list")                                                                  \
	X(NOT_IN_ALLOW_LIST, "not_in_allow_list")                                                  \
	/* header_filter */                                                                        \
	X(PERMIT, "permit")                                                                        \
	X(NO_PERMIT, "no_permit")                     /* deny all, permit by exception */          \
	X(PORT_ZERO, "port_zero")                                                                  \
	X(FRAGMENT_NO_PORTS, "fragment_no_ports")     /* non-first fragment, no permit without ports */ \
	/* tracker */                                                                              \
	X(FLOW, "flow")                               /* belongs to an admitted flow */            \
	X(FRAGMENT_OF_FLOW, "fragment_of_admitted")   /* later fragment of an admitted datagram */ \
	X(OUT_OF_STATE, "out_of_state")               /* TCP non-SYN that belongs to no flow */    \
	X(BAD_TCP_STATE, "bad_tcp_transition")        /* e.g. SYN on an established flow */        \
	X(PERMIT_REVOKED, "permit_revoked")           /* new policy no longer grants the flow */   \
	X(FLOW_TABLE_FULL, "flow_table_full")                                                      \
	X(FLOW_CLOSED, "flow_closed")                 /* flow end: FIN/RST completed */            \
	X(FLOW_TIMEOUT, "flow_timeout")               /* flow end: idle timeout */                 \
	X(FLOW_EVICTED, "flow_evicted")               /* flow end: capacity eviction */            \
	X(FLOW_SHUTDOWN, "flow_shutdown")             /* flow end: elsd stopped */                 \
	X(ADOPTED, "adopted")                         /* admit: connection older than this elsd */ \
	X(NOT_PERMITTED_AT_START, "not_permitted_at_start") /* adopted, the policy refused it */   \
	/* chain */                                                                                \
	X(HANDLER_FAILED, "handler_failed")                                                        \
	X(DEFAULT_POLICY, "default_policy")           /* no handler decided */                     \
	X(MONITOR_GAP, "monitor_gap")                 /* records lost to a full ring */            \
	X(EVENT, "event")                             /* agent event: start, reload, stop */    \
	/* header_filter: session gates, registry (docs/els-policy.md) */                          \
	X(SESSION_REQUIRED, "session_required")       /* gated permit, no session held */          \
	X(PERMIT_EXPIRED, "permit_expired")           /* event/alert: a permit's date passed */    \
	/* anomaly */                                                                              \
	X(TCP_NULL, "tcp_null")                       /* no TCP flag set */                        \
	X(TCP_XMAS, "tcp_xmas")                       /* FIN+PSH+URG (nmap -sX) and worse */       \
	X(TCP_SYN_FIN, "tcp_syn_fin")                                                              \
	X(TCP_SYN_RST, "tcp_syn_rst")                                                              \
	X(LAND, "land")                               /* source address = destination address */  \
	X(FRAGMENT_OVERLAP, "fragment_overlap")       /* fragment overlaps one seen before */      \
	X(EXT_REPEATED, "ipv6_ext_repeated")          /* an extension header type repeated */     \
	/* anomaly: packets a standard says to discard (docs/anomaly-rfc-audit.md) */             \
	X(RH0, "ipv6_rh0")                            /* routing header type 0 (RFC 5095) */       \
	X(RH_UNKNOWN, "ipv6_rh_unknown")              /* unknown routing type, segments left */    \
	X(FRAG_BAD_LENGTH, "fragment_bad_length")     /* M set, length not 8-byte multiple */      \
	X(FRAG_TOO_BIG, "fragment_too_big")           /* offset + length past 65535 */             \
	X(ND_FRAGMENTED, "nd_fragmented")             /* Neighbor Discovery in a fragment (RFC 6980) */ \
	X(ND_HOP_LIMIT, "nd_hop_limit")               /* ND hop limit not 255 (RFC 4861) */         \
	X(MARTIAN_SRC, "martian_source")              /* multicast/broadcast/mapped source */      \
	X(MARTIAN_DST, "martian_destination")         /* unspecified/reserved-scope destination */ \
	X(HBH_NOT_FIRST, "ipv6_hbh_not_first")        /* decoder: RFC 8200 4.1 */                  \
	X(FIRST_FRAG_INCOMPLETE, "ipv6_first_fragment_incomplete") /* decoder: RFC 7112 */         \
	/* scan */                                                                                 \
	X(SCAN_DETECTED, "scan_detected")             /* the probe that crossed the threshold */   \
	X(SCAN_DENY, "scan_deny")                     /* source on the runtime deny set */ \
	/* queue */                                                                                \
	X(QUEUE_OVERFLOW, "queue_overflow")           /* gap: the kernel dropped packets unjudged */ \
	/* alerts about the agent itself (agent/alert.h) */                                        \
	X(POLICY_CHANGED, "policy_changed")           /* a new generation: reload, apply, list */ \
	X(POLICY_REJECTED, "policy_rejected")         /* a reload or apply that failed */          \
	X(MGMT_REFUSED, "mgmt_refused")               /* a console refused: handshake, role, cap */ \
	/* the steering rules (agent/rulewatch.h) */                                               \
	X(RULES_ALTERED, "steering_rules_altered")    /* removed, or a rule put ahead of them */   \
	X(RULES_RESTORED, "steering_rules_restored")  /* put back by elsd (rules.self_heal) */     \
	X(SESSION_CUT, "session_cut")                 /* alert: a new policy cuts a live session */ \
	/* header_filter: service-bound permits (docs/els-policy.md) */                            \
	X(WRONG_SERVICE, "wrong_service")             /* the local socket belongs to another process */ \
	X(OWNER_UNKNOWN, "owner_unknown")             /* no process owns the local socket */

enum els_reason {
#define ELS_X_ENUM(e, s) ELS_R_##e,
	ELS_REASON_LIST(ELS_X_ENUM)
#undef ELS_X_ENUM
	ELS_R__COUNT
};

/* The stable name of a reason; "?" for an out-of-range value. */
const char *els_reason_name(unsigned reason);

#endif
