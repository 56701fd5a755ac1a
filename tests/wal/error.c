/* SPDX-License-Identifier: MIT */
/*
 * tests/wal/error.c: return-code names, the per-thread detail and the
 * version (wal/error.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "../helpers.h"
#include "wal/wal.h"

static void test_wal_error__strerror_every_code(void **state)
{
	static const int codes[] = {
	        LB_OK,        LB_ENOTFOUND, LB_EINVAL,  LB_EVALIDATION,
	        LB_ECONFLICT, LB_ECORRUPT,  LB_EPRUNED, LB_EFULL,
	        LB_EBUSY,     LB_ENOMEM,    LB_EIO,     LB_EVERSION,
	        LB_ETOOBIG,   LB_EEXIST,
	};
	size_t i, j, n = sizeof codes / sizeof codes[0];
	(void)state;

	/* Codes are ABI: 0, then -1 .. -13 with no gaps. */
	for (i = 0; i < n; i++)
		assert_int_equal(codes[i], -(int)i);
	for (i = 0; i < n; i++) {
		const char *s = lb_strerror(codes[i]);
		assert_non_null(s);
		assert_true(s[0] != '\0');
		assert_string_not_equal(s, "unknown error");
		for (j = 0; j < i; j++)
			assert_string_not_equal(s, lb_strerror(codes[j]));
	}
	assert_string_equal(lb_strerror(LB_OK), "success");
	assert_string_equal(lb_strerror(LB_ECORRUPT), "data is corrupt");
	assert_string_equal(lb_strerror(-14), "unknown error");
	assert_string_equal(lb_strerror(1), "unknown error");
	assert_string_equal(lb_strerror(-2147483647 - 1), "unknown error");
}

static void test_wal_error__fail_sets_detail(void **state)
{
	char longer[2000];
	(void)state;

	assert_non_null(lb_errmsg());
	assert_int_equal(
	        lb__fail(LB_ECORRUPT, "segment %d of batch %s", 3, "7"),
	        LB_ECORRUPT);
	assert_string_equal(lb_errmsg(), "segment 3 of batch 7");
	assert_int_equal(lb__fail(LB_EINVAL, "%s", "second"), LB_EINVAL);
	assert_string_equal(lb_errmsg(), "second");
	/* Long details are cut, never overflow. */
	memset(longer, 'x', sizeof longer - 1);
	longer[sizeof longer - 1] = 0;
	assert_int_equal(lb__fail(LB_EIO, "%s", longer), LB_EIO);
	assert_int_equal(strlen(lb_errmsg()), 511);
	/* The detail may be an argument of the next one. */
	lb__fail(LB_ECORRUPT, "bad crc");
	assert_int_equal(lb__fail(LB_ECORRUPT, "batch %d: %s", 7, lb_errmsg()),
	                 LB_ECORRUPT);
	assert_string_equal(lb_errmsg(), "batch 7: bad crc");
	lb__clear_error();
	assert_string_equal(lb_errmsg(), "");
}

static void *other_thread(void *arg)
{
	char *seen = arg;

	/* A new thread starts with an empty detail... */
	strcpy(seen, lb_errmsg());
	/* ...and its failures stay its own. */
	lb__fail(LB_EBUSY, "from the other thread");
	return NULL;
}

static void test_wal_error__detail_is_per_thread(void **state)
{
	char seen[600] = "unset";
	pthread_t t;
	(void)state;

	lb__fail(LB_EIO, "from the main thread");
	assert_int_equal(pthread_create(&t, NULL, other_thread, seen), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(seen, "");
	assert_string_equal(lb_errmsg(), "from the main thread");
}

static void test_wal_error__version(void **state)
{
	int major = -1, minor = -1, patch = -1;
	char want[64];
	(void)state;

	snprintf(want, sizeof want, "%d.%d.%d", LB_VERSION_MAJOR,
	         LB_VERSION_MINOR, LB_VERSION_PATCH);
	assert_string_equal(lb_version(&major, &minor, &patch), want);
	assert_int_equal(major, LB_VERSION_MAJOR);
	assert_int_equal(minor, LB_VERSION_MINOR);
	assert_int_equal(patch, LB_VERSION_PATCH);
	assert_string_equal(lb_version(NULL, NULL, NULL), want);
	assert_int_equal(LB_VERINT(major, minor, patch), LB_VERSION_FULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_wal_error__strerror_every_code),
	        cmocka_unit_test(test_wal_error__fail_sets_detail),
	        cmocka_unit_test(test_wal_error__detail_is_per_thread),
	        cmocka_unit_test(test_wal_error__version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
