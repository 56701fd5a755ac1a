/* SPDX-License-Identifier: MIT */
/*
 * helpers.h: shared by every test binary. Temporary directories, a seeded
 * PRNG whose seed is printed when a test fails, and small conveniences.
 */
#ifndef LB_TESTS_HELPERS_H
#define LB_TESTS_HELPERS_H

#include <stddef.h>
#include <stdint.h>

/* A fresh directory "logbook-test-XXXXXX" under $TMPDIR (or /tmp);
 * malloc'd path. Aborts the test on failure. */
char *th_tmpdir(void);
/* Remove a file or a directory tree; missing paths are fine. */
void th_rmrf(const char *path);
/* path joined with name, malloc'd. */
char *th_path(const char *dir, const char *name);

/* The seed for randomized tests: $LB_TEST_SEED if set, else dflt. The seed
 * is remembered and printed by th_seed_report() (called from cmocka's
 * failure path through th_fail_hook) so every failure can be rerun. */
uint64_t th_seed(uint64_t dflt);
/* Print "seed: N (rerun with LB_TEST_SEED=N)" to stderr. */
void th_seed_report(void);
/* An integer scale from the environment (e.g. LB_TEST_STEPS), else dflt. */
long th_env_long(const char *name, long dflt);

/* msgpack's unsigned integer at each width boundary (FORMAT.md §1, the
 * shortest form): the value, its encoded size and its first byte. */
typedef struct th_uint_width {
	uint64_t v;
	size_t size;
	uint8_t first;
} th_uint_width;
extern const th_uint_width th_uint_widths[];
extern const size_t th_nuint_widths;

/* splitmix64 */
static inline uint64_t th_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}
static inline uint64_t th_below(uint64_t *state, uint64_t n)
{
	return n ? th_rand(state) % n : 0;
}

/* Assert with the seed printed on failure (use in randomized tests). */
#define th_assert_seeded(cond)                                                 \
	do {                                                                   \
		int th_ok_ = !!(cond);                                         \
		if (!th_ok_)                                                   \
			th_seed_report();                                      \
		assert_true(th_ok_);                                           \
	} while (0)

#endif
