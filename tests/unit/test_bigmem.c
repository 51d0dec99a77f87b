/* agent/bigmem.c: large tables on huge pages, small ones from the ordinary allocator. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "bigmem.h"

#define MIB ((size_t)1 << 20)

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif

static void fill_and_check(uint8_t *p, size_t size)
{
	memset(p, 0xa5, size);
	cr_assert_eq(p[0], 0xa5);
	cr_assert_eq(p[size / 2], 0xa5);
	cr_assert_eq(p[size - 1], 0xa5);
}

Test(bigmem, small_blocks_are_aligned_and_usable)
{
	size_t sizes[] = {1, 127, 128, 4096, 100000, 2 * MIB - 1};
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *p = els_big_alloc(sizes[i], 128);
		cr_assert_not_null(p, "size %zu", sizes[i]);
		cr_assert_eq((uintptr_t)p % 128, 0, "size %zu", sizes[i]);
		fill_and_check(p, sizes[i]);
		els_big_free(p, sizes[i]);
	}
}

Test(bigmem, large_blocks_are_usable_to_the_last_byte)
{
	/* Not multiples of 2 MiB: the mapping is rounded up, the caller's size is what counts. */
	size_t sizes[] = {2 * MIB, 2 * MIB + 1, 5 * MIB + 128, 64 * MIB};
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *p = els_big_alloc(sizes[i], 128);
		cr_assert_not_null(p, "size %zu", sizes[i]);
		cr_assert_eq((uintptr_t)p % 128, 0);
#ifndef ASAN
		/* huge-page aligned, so that the kernel can back it with 2 MiB pages */
		cr_assert_eq((uintptr_t)p % (2 * MIB), 0, "size %zu at %p", sizes[i], (void *)p);
#endif
		fill_and_check(p, sizes[i]);
		els_big_free(p, sizes[i]);
	}
}

Test(bigmem, free_of_null_is_harmless)
{
	els_big_free(NULL, 0);
	els_big_free(NULL, 64 * MIB);
}

Test(bigmem, absurd_size_fails_cleanly)
{
	cr_assert_null(els_big_alloc(SIZE_MAX - MIB, 128));
}
