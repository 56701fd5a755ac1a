/* SPDX-License-Identifier: MIT */
/*
 * consumer.c: named consumers of the log. Acknowledging registers a
 * consumer and only moves forward; lb_consumers lists them in name order;
 * lb_prune refuses (LB_EBUSY, naming it) to drop a batch a consumer has
 * not acknowledged, goes ahead once it has acknowledged or was dropped,
 * and, with consumer limits, marks a consumer past them lost, which then
 * answers LB_EPRUNED until dropped. Acknowledging consumes no batch id.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct seen {
	char names[8][LB_CONSUMER_NAME_MAX + 1];
	uint64_t acked[8];
	int lost[8];
	int n;
} seen;

static int list_cb(void *ctx, const lb_consumer_info *c)
{
	seen *s = ctx;
	if (s->n < 8) {
		strcpy(s->names[s->n], c->name);
		s->acked[s->n] = c->acked;
		s->lost[s->n] = c->lost;
	}
	s->n++;
	return 0;
}

/* Batches 2..n+1, each putting one key. */
static void batches(lb_db *db, int n)
{
	for (int i = 0; i < n; i++) {
		char k[32];
		snprintf(k, sizeof k, "k%d", i);
		te_put1(db, "t", k, "v");
	}
}

static void test_engine_consumer__ack_registers_and_moves_forward(void **state)
{
	te_fx *fx = *state;
	lb_db *db = fx->db;
	batches(db, 4); /* batches 2..5 */
	lb_consumer_info ci;
	te_rc(LB_ENOTFOUND, lb_consumer_get(db, "mail", &ci));
	te_rc(0, lb_consumer_ack(db, "mail", 0));
	te_rc(0, lb_consumer_ack(db, "audit", 3));
	assert_int_equal(te_last(db), 5); /* no batch id consumed */
	te_rc(0, lb_consumer_get(db, "mail", &ci));
	assert_string_equal(ci.name, "mail");
	assert_int_equal(ci.acked, 0);
	assert_false(ci.lost);
	assert_true(ci.time_ns > 0);
	te_rc(0, lb_consumer_ack(db, "mail", 4));
	te_rc(0, lb_consumer_ack(db, "mail", 4));
	te_rc(LB_EINVAL, lb_consumer_ack(db, "mail", 2));
	assert_non_null(strstr(lb_errmsg(), "cannot go back"));
	te_rc(LB_EINVAL, lb_consumer_ack(db, "mail", 6));
	te_rc(0, lb_consumer_get(db, "mail", &ci));
	assert_int_equal(ci.acked, 4);
	seen s = {0};
	te_rc(0, lb_consumers(db, list_cb, &s));
	assert_int_equal(s.n, 2);
	assert_string_equal(s.names[0], "audit");
	assert_int_equal(s.acked[0], 3);
	assert_string_equal(s.names[1], "mail");
	te_rc(0, lb_consumer_drop(db, "audit"));
	te_rc(LB_ENOTFOUND, lb_consumer_drop(db, "audit"));
	memset(&s, 0, sizeof s);
	te_rc(0, lb_consumers(db, list_cb, &s));
	assert_int_equal(s.n, 1);
}

static void test_engine_consumer__bad_names_and_arguments(void **state)
{
	te_fx *fx = *state;
	lb_db *db = fx->db;
	lb_consumer_info ci;
	char longname[LB_CONSUMER_NAME_MAX + 2];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	te_rc(LB_EINVAL, lb_consumer_ack(db, "", 0));
	te_rc(LB_EINVAL, lb_consumer_ack(db, NULL, 0));
	te_rc(LB_EINVAL, lb_consumer_ack(db, "a/b", 0));
	te_rc(LB_EINVAL, lb_consumer_ack(db, longname, 0));
	te_rc(LB_EINVAL, lb_consumer_ack(NULL, "a", 0));
	te_rc(LB_EINVAL, lb_consumer_get(db, "a", NULL));
	te_rc(LB_EINVAL, lb_consumer_get(NULL, "a", &ci));
	te_rc(LB_EINVAL, lb_consumer_drop(db, "a b"));
	te_rc(LB_EINVAL, lb_consumers(db, NULL, NULL));
	te_rc(LB_EINVAL, lb_consumer_limits_set(NULL, 1, 1));
	uint64_t a, b;
	te_rc(LB_EINVAL, lb_consumer_limits_get(db, NULL, &b));
	te_rc(0, lb_consumer_limits_get(db, &a, &b));
	assert_int_equal(a, 0);
	assert_int_equal(b, 0);
	te_rc(0, lb_consumer_ack(db, "ok.name_1-x", 1));
	lb_close(fx->db);
	fx->db = te_open(fx->dir, LB_RDONLY);
	te_rc(LB_EINVAL, lb_consumer_ack(fx->db, "ok.name_1-x", 1));
	te_rc(LB_EINVAL, lb_consumer_drop(fx->db, "ok.name_1-x"));
	te_rc(0, lb_consumer_get(fx->db, "ok.name_1-x", &ci));
	assert_int_equal(ci.acked, 1);
}

static void test_engine_consumer__prune_waits_for_consumers(void **state)
{
	te_fx *fx = *state;
	lb_db *db = fx->db;
	char *base = th_tmpdir(), *c = th_path(base, "c");
	batches(db, 6); /* 2..7 */
	uint64_t at;
	te_rc(0, lb_checkpoint(db, c, &at));
	assert_int_equal(at, 7);
	te_rc(0, lb_consumer_ack(db, "slow", 3));
	te_rc(0, lb_consumer_ack(db, "fast", 7));
	/* pruning before 5 drops batch 4, which slow has not read */
	uint64_t d = te_digest(db);
	te_rc(LB_EBUSY, lb_prune(db, 5));
	assert_non_null(strstr(lb_errmsg(), "slow"));
	assert_int_equal(te_digest(db), d);
	lb_batch_info bi;
	te_rc(0, lb_batch_info_get(db, 2, &bi));
	assert_false(bi.pruned);
	/* before 4 only drops what slow has read */
	te_rc(0, lb_prune(db, 4));
	te_rc(0, lb_batch_info_get(db, 3, &bi));
	assert_true(bi.pruned);
	te_rc(0, lb_consumer_ack(db, "slow", 5));
	te_rc(LB_EBUSY, lb_prune(db, 7));
	te_rc(0, lb_consumer_drop(db, "slow"));
	te_rc(0, lb_prune(db, 7));
	te_rc(0, lb_batch_info_get(db, 6, &bi));
	assert_true(bi.pruned);
	lb_consumer_info ci;
	te_rc(0, lb_consumer_get(db, "fast", &ci));
	assert_false(ci.lost);
	th_rmrf(base);
	free(c);
	free(base);
}

static void test_engine_consumer__past_the_limits_is_lost(void **state)
{
	te_fx *fx = *state;
	lb_db *db = fx->db;
	char *base = th_tmpdir(), *c = th_path(base, "c");
	batches(db, 10); /* 2..11 */
	uint64_t at;
	te_rc(0, lb_checkpoint(db, c, &at));
	te_rc(0, lb_consumer_ack(db, "behind", 2)); /* lags 9 */
	te_rc(0, lb_consumer_ack(db, "near", 8));   /* lags 3 */
	te_rc(0, lb_consumer_limits_set(db, 5, 0));
	uint64_t lag, age;
	te_rc(0, lb_consumer_limits_get(db, &lag, &age));
	assert_int_equal(lag, 5);
	assert_int_equal(age, 0);
	/* near is within the limits: it still holds back the prune */
	te_rc(LB_EBUSY, lb_prune(db, 11));
	assert_non_null(strstr(lb_errmsg(), "near"));
	lb_consumer_info ci;
	te_rc(0, lb_consumer_get(db, "behind", &ci));
	assert_false(ci.lost); /* a refused prune marks nobody */
	te_rc(0, lb_prune(db, 9));
	te_rc(LB_EPRUNED, lb_consumer_get(db, "behind", &ci));
	assert_true(ci.lost);
	assert_int_equal(ci.acked, 2);
	te_rc(LB_EPRUNED, lb_consumer_ack(db, "behind", 11));
	te_rc(0, lb_consumer_get(db, "near", &ci));
	assert_false(ci.lost);
	seen s = {0};
	te_rc(0, lb_consumers(db, list_cb, &s));
	assert_int_equal(s.n, 2);
	assert_true(s.lost[0]);
	te_rc(0, lb_consumer_drop(db, "behind"));
	te_rc(0, lb_consumer_ack(db, "behind", 11));
	te_rc(0, lb_consumer_get(db, "behind", &ci));
	assert_false(ci.lost);
	/* an age limit: an acknowledgement older than a second */
	te_rc(0, lb_consumer_limits_set(db, 0, 1));
	te_rc(0, lb_consumer_limits_set(db, 0, 1));
	sleep(2);
	te_rc(0, lb_prune(db, 10));
	te_rc(LB_EPRUNED, lb_consumer_get(db, "near", &ci));
	te_rc(0, lb_consumer_get(db, "behind", &ci)); /* acked 11 */
	te_rc(0, lb_consumer_limits_set(db, 0, 0));
	te_rc(0, lb_consumer_limits_get(db, &lag, &age));
	assert_int_equal(lag + age, 0);
	th_rmrf(base);
	free(c);
	free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, te_setup_t, te_teardown)
	        T(test_engine_consumer__ack_registers_and_moves_forward),
	        T(test_engine_consumer__bad_names_and_arguments),
	        T(test_engine_consumer__prune_waits_for_consumers),
	        T(test_engine_consumer__past_the_limits_is_lost),
#undef T
	};
	return cmocka_run_group_tests_name("engine_consumer", tests, NULL,
	                                   NULL);
}
