/* Large tables on transparent huge pages.
 *
 * A worker's flow table is tens of megabytes, and a packet of any of its flows lands on a
 * random entry. On 4 KiB pages nearly every such access also misses the TLB, and under a
 * hypervisor each miss is a two-level page walk. So a table of 2 MiB or more is mapped
 * 2 MiB-aligned and marked MADV_HUGEPAGE: with transparent huge pages set to "madvise" (the
 * common default) or "always", its pages fault in as 2 MiB pages; with "never" the advice is
 * ignored and it is ordinary memory. Pages are still faulted in only when first touched, so
 * an empty table costs address space, not RSS. The price: the packet that first touches a
 * 2 MiB page waits while the kernel zeroes it (and, with transparent_hugepage/defrag set to
 * "madvise", compacts memory to find one): once per 16,384 flow slots over the table's life.
 *
 * Smaller blocks, and every block in an AddressSanitizer build (which can only check the
 * bounds of heap blocks it allocated itself), come from the ordinary allocator. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bigmem.h"

#define HUGE_PAGE ((size_t)2 << 20)

#if defined(__SANITIZE_ADDRESS__)
#define ELS_BIGMEM_PLAIN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ELS_BIGMEM_PLAIN 1
#endif
#endif

static int use_mmap(size_t size)
{
#ifdef ELS_BIGMEM_PLAIN
	(void)size;
	return 0;
#else
	return size >= HUGE_PAGE;
#endif
}

static size_t round_up(size_t size)
{
	return (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
}

/* Far above any table elsd makes (a million flows are 128 MiB); a size beyond it is a bug
 * upstream, answered with NULL rather than an overflowing round-up. */
#define BIG_MAX ((size_t)1 << 40)

void *els_big_alloc(size_t size, size_t align)
{
	if (size > BIG_MAX)
		return NULL;
	if (!use_mmap(size)) {
		size_t rounded = (size + align - 1) & ~(align - 1); /* aligned_alloc wants a multiple */
		return aligned_alloc(align, rounded ? rounded : align);
	}
	size_t len = round_up(size);
	/* Map one huge page more than needed and trim both ends to a 2 MiB boundary. */
	uint8_t *raw = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	uintptr_t start = ((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
	size_t head = start - (uintptr_t)raw;
	if (head)
		munmap(raw, head);
	if (HUGE_PAGE - head)
		munmap((uint8_t *)start + len, HUGE_PAGE - head);
	/* Advice only: EINVAL where the kernel has no transparent huge pages. */
	(void)madvise((void *)start, len, MADV_HUGEPAGE);
	return (void *)start;
}

void els_big_free(void *p, size_t size)
{
	if (!p)
		return;
	if (!use_mmap(size)) {
		free(p);
		return;
	}
	munmap(p, round_up(size));
}
