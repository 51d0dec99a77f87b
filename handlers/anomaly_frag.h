/* anomaly's per-worker state: recent fragment ranges, for the overlap check
 * (handlers/anomaly_frag.c). Private to the handler and its unit test. */
#ifndef ELS_HANDLERS_ANOMALY_FRAG_H
#define ELS_HANDLERS_ANOMALY_FRAG_H

#include <stdbool.h>
#include <stdint.h>

#include "els/handler.h"
#include "els/pkt.h"

struct an_frags;

void *an_frags_new(const struct els_worker_env *env);
void an_frags_free(void *hstate);

/* Remembers p's byte range and says whether it overlaps a fragment of the same datagram seen
 * in the last 30 s (of now_ns). Only fragments (ELS_PKT_FRAGMENT). */
bool an_frags_overlap(struct an_frags *fr, const struct els_pkt *p, uint64_t now_ns);

#endif
