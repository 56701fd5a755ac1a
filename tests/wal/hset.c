/* SPDX-License-Identifier: MIT */
/*
 * The hash set (wal/hset.h): a seeded random workload of adds and finds
 * checked against a plain array model (present or not, the values kept,
 * empty and binary keys, keys that differ in one byte or in length); the
 * arena walk visits every entry once, in the order of adds; clear empties
 * it and it fills again. Bounded; LB_TEST_LONG=1 runs 20 times as many
 * operations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wal/hset.h"

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Key number i: 0..7 bytes, some bytes 0, so that keys differ in length
 * alone ("" vs "\0") or in one byte. */
static size_t key_of(uint64_t i, uint8_t *k)
{
	size_t n = (size_t)(i % 8);
	for (size_t j = 0; j < n; j++)
		k[j] = (uint8_t)((i >> (3 + 2 * j)) & 3);
	return n;
}

#define NKEYS 4096

static void test_wal_hset__matches_a_model(void **state)
{
	(void)state;
	const char *lg = getenv("LB_TEST_LONG");
	int rounds = lg && *lg ? 200000 : 10000;
	uint64_t seed = 4242, s = seed;
	uint64_t *model =
	        calloc(NKEYS, sizeof *model); /* value + 1, 0 absent */
	lb_hset h;
	assert_non_null(model);
	lb__hset_init(&h);
	for (int r = 0; r < rounds; r++) {
		uint64_t i = splitmix(&s) % NKEYS;
		uint8_t k[8];
		size_t n = key_of(i, k);
		/* keys of equal bytes share a model slot: the first such i */
		uint64_t id = i;
		for (uint64_t j = 0; j < i; j++) {
			uint8_t k2[8];
			size_t n2 = key_of(j, k2);
			if (n2 == n && !memcmp(k, k2, n)) {
				id = j;
				break;
			}
		}
		if (splitmix(&s) % 3) {
			lb_hent *e;
			int added;
			assert_int_equal(lb__hset_get(&h, k, n, &added, &e), 0);
			if (added != (model[id] == 0))
				fail_msg("seed %llu round %d: added %d",
				         (unsigned long long)seed, r, added);
			if (!added)
				assert_int_equal(e->v[0], model[id] - 1);
			e->v[0] = (uint64_t)r;
			model[id] = (uint64_t)r + 1;
		} else {
			lb_hent *e = lb__hset_find(&h, k, n);
			if ((e != NULL) != (model[id] != 0))
				fail_msg("seed %llu round %d: find",
				         (unsigned long long)seed, r);
			if (e) {
				assert_int_equal(e->len, n);
				assert_memory_equal(lb__hent_key(e), k, n);
				assert_int_equal(e->v[0], model[id] - 1);
			}
		}
	}
	size_t present = 0, walked = 0;
	for (size_t i = 0; i < NKEYS; i++)
		present += model[i] != 0;
	assert_int_equal(h.n, present);
	for (size_t off = 0; off < h.arena.len; off = lb__hset_next(&h, off)) {
		lb_hent *e = lb__hset_at(&h, off);
		assert_ptr_equal(lb__hset_find(&h, lb__hent_key(e), e->len), e);
		assert_int_equal(lb__hset_off(&h, e), off);
		walked++;
	}
	assert_int_equal(walked, present);
	lb__hset_clear(&h);
	assert_int_equal(h.n, 0);
	assert_null(lb__hset_find(&h, "", 0));
	lb_hent *e;
	int added;
	assert_int_equal(lb__hset_get(&h, "", 0, &added, &e), 0);
	assert_true(added);
	assert_int_equal(e->v[0], 0);
	assert_non_null(lb__hset_find(&h, "", 0));
	assert_null(lb__hset_find(&h, "\0", 1));
	lb__hset_free(&h);
	free(model);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_wal_hset__matches_a_model),
	};
	return cmocka_run_group_tests_name("wal_hset", tests, NULL, NULL);
}
