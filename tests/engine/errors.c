/* SPDX-License-Identifier: MIT */
/*
 * Error reporting: lb_strerror() names every code distinctly, the codes keep
 * their ABI values, lb_errmsg() is never NULL, names the object involved and
 * is per thread; lb_version() agrees with the header.
 */
#define _GNU_SOURCE
#include "_common.h"
#include "wal/format.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FX(state) ((te_fx *)*(state))

static void test_engine_errors__codes_keep_their_values(void **state)
{
	(void)state;
	/* Codes are ABI: a renumbering must fail here. */
	assert_int_equal(LB_OK, 0);
	assert_int_equal(LB_ENOTFOUND, -1);
	assert_int_equal(LB_EINVAL, -2);
	assert_int_equal(LB_EVALIDATION, -3);
	assert_int_equal(LB_ECONFLICT, -4);
	assert_int_equal(LB_ECORRUPT, -5);
	assert_int_equal(LB_EPRUNED, -6);
	assert_int_equal(LB_EFULL, -7);
	assert_int_equal(LB_EBUSY, -8);
	assert_int_equal(LB_ENOMEM, -9);
	assert_int_equal(LB_EIO, -10);
	assert_int_equal(LB_EVERSION, -11);
	assert_int_equal(LB_ETOOBIG, -12);
	assert_int_equal(LB_EEXIST, -13);
	assert_int_equal(LB_OP_PUT, 1);
	assert_int_equal(LB_OP_DELETE, 2);
	assert_int_equal(LB_OP_TABLE, 3);
}

static void test_engine_errors__strerror_table(void **state)
{
	const char *names[14];
	static const int unknown[] = {1,    2,    -14,     -15,
	                              -100, 1000, INT_MIN, INT_MAX};
	const char *u0;
	int rc, i, j;

	(void)state;
	for (rc = LB_OK; rc >= LB_EEXIST; rc--) {
		const char *s = lb_strerror(rc);
		assert_non_null(s);
		assert_true(s[0] != '\0');
		/* static: the same pointer every time */
		assert_ptr_equal(lb_strerror(rc), s);
		assert_null(strcasestr(s, "unknown error"));
		names[-rc] = s;
	}
	for (i = 0; i < 14; i++)
		for (j = i + 1; j < 14; j++)
			if (strcmp(names[i], names[j]) == 0)
				fail_msg("codes %d and %d share the string "
				         "\"%s\"",
				         -i, -j, names[i]);

	u0 = lb_strerror(unknown[0]);
	assert_non_null(u0);
	assert_non_null(strcasestr(u0, "unknown"));
	for (i = 0; i < (int)(sizeof unknown / sizeof unknown[0]); i++) {
		const char *s = lb_strerror(unknown[i]);
		assert_non_null(s);
		assert_string_equal(s, u0);
		for (j = 0; j < 14; j++)
			assert_string_not_equal(s, names[j]);
	}
}

static void test_engine_errors__version_matches_header(void **state)
{
	int ma = -1, mi = -1, pa = -1;
	const char *v;
	char want[32];

	(void)state;
	v = lb_version(&ma, &mi, &pa);
	assert_non_null(v);
	assert_int_equal(ma, LB_VERSION_MAJOR);
	assert_int_equal(mi, LB_VERSION_MINOR);
	assert_int_equal(pa, LB_VERSION_PATCH);
	snprintf(want, sizeof want, "%d.%d.%d", LB_VERSION_MAJOR,
	         LB_VERSION_MINOR, LB_VERSION_PATCH);
	assert_string_equal(v, want);
	assert_int_equal(LB_VERINT(ma, mi, pa), LB_VERSION_FULL);
	assert_true(LB_VERINT(0, 1, 0) < LB_VERINT(0, 1, 1));
	assert_true(LB_VERINT(0, 9, 9) < LB_VERINT(1, 0, 0));
	/* every output may be NULL */
	assert_string_equal(lb_version(NULL, NULL, NULL), want);
	mi = -1;
	assert_string_equal(lb_version(NULL, &mi, NULL), want);
	assert_int_equal(mi, LB_VERSION_MINOR);
	/* the public constant is the one the library writes */
	assert_int_equal(LB_FORMAT_VERSION, LB__FORMAT_VERSION);
}

static void test_engine_errors__errmsg_never_null(void **state)
{
	lb_db *db = FX(state)->db;
	void *v;
	size_t vl;

	assert_non_null(lb_errmsg());
	te_rc(LB_ENOTFOUND, lb_get(db, "t", "missing", 7, &v, &vl));
	assert_non_null(lb_errmsg());
	assert_true(lb_errmsg()[0] != '\0');
}

/* The detail names the object involved. */
static void test_engine_errors__errmsg_names_the_object(void **state)
{
	te_fx *fx = *state;
	lb_db *db = fx->db;
	char *missing = th_path(fx->dir, "no-database-here");
	lb_options o;
	lb_db *other = NULL;
	lb_batch *b = NULL;
	void *v;
	size_t vl;

	te_rc(LB_ENOTFOUND, lb_get(db, "table_xyzzy", "k", 1, &v, &vl));
	assert_non_null(strstr(lb_errmsg(), "table_xyzzy"));

	te_rc(0, lb_table_create(db, "dup_table_q", NULL));
	te_rc(LB_EEXIST, lb_table_create(db, "dup_table_q", NULL));
	assert_non_null(strstr(lb_errmsg(), "dup_table_q"));

	lb_options_init(&o);
	te_rc(LB_ENOTFOUND, lb_open(missing, &o, &other));
	assert_non_null(strstr(lb_errmsg(), "no-database-here"));

	te_rc(0, lb_batch_begin(db, NULL, &b));
	te_rc(LB_ENOTFOUND, lb_put(b, "other_plugh", "k", 1, "v", 1));
	assert_non_null(strstr(lb_errmsg(), "other_plugh"));
	lb_batch_abort(b);
	free(missing);
}

struct errthread {
	const char *path;
	int rc;
	char msg[256];
};

static void *fail_in_thread(void *arg)
{
	struct errthread *et = arg;
	lb_db *db = NULL;
	lb_options o;
	lb_options_init(&o);
	et->rc = lb_open(et->path, &o, &db);
	snprintf(et->msg, sizeof et->msg, "%s", lb_errmsg());
	return NULL;
}

static void test_engine_errors__errmsg_is_per_thread(void **state)
{
	te_fx *fx = *state;
	struct errthread et;
	pthread_t th;
	char mine[256];
	void *v;
	size_t vl;

	memset(&et, 0, sizeof et);
	et.path = th_path(fx->dir, "thread-missing-db");

	te_rc(LB_ENOTFOUND, lb_get(fx->db, "t", "main-key", 8, &v, &vl));
	snprintf(mine, sizeof mine, "%s", lb_errmsg());

	assert_int_equal(pthread_create(&th, NULL, fail_in_thread, &et), 0);
	pthread_join(th, NULL);

	/* The other thread failed with its own detail ... */
	assert_int_equal(et.rc, LB_ENOTFOUND);
	assert_true(et.msg[0] != '\0');
	assert_string_not_equal(et.msg, mine);
	/* ... and ours did not change. */
	assert_string_equal(lb_errmsg(), mine);
	free((char *)et.path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_engine_errors__codes_keep_their_values),
	        cmocka_unit_test(test_engine_errors__strerror_table),
	        cmocka_unit_test(test_engine_errors__version_matches_header),
	        cmocka_unit_test_setup_teardown(
	                test_engine_errors__errmsg_never_null, te_setup_t,
	                te_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_engine_errors__errmsg_names_the_object, te_setup_t,
	                te_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_engine_errors__errmsg_is_per_thread, te_setup_t,
	                te_teardown),
	};
	return cmocka_run_group_tests_name("engine_errors", tests, NULL, NULL);
}
