/* Large, long-lived tables (the flow table) on transparent huge pages where the host allows. */
#ifndef ELS_BIGMEM_H
#define ELS_BIGMEM_H

#include <stddef.h>

/* size bytes, aligned to at least `align` (a power of two up to 2 MiB), not zeroed; pages
 * become resident as they are first touched. NULL when out of memory. Free with
 * els_big_free and the same size. */
void *els_big_alloc(size_t size, size_t align);
void els_big_free(void *p, size_t size);

#endif
