/* Framing of docs/management-protocol.md: a 4-byte big-endian length, then one JSON object. */
#ifndef ELSCTL_WIRE_H
#define ELSCTL_WIRE_H

#define CTL_FRAME_HDR	  4
#define CTL_FRAME_MAX	  16777216u /* body bytes, both directions */
#define CTL_PROTO_VERSION 1

#endif
