/* SPDX-License-Identifier: MIT */
/*
 * feed.c: the log as a feed: lb_wait, lb_get_asof and lb_diff.
 *
 * lb_wait returns at once when the log is already past `after`, answers
 * LB_EBUSY when the timeout passes, and wakes for a batch committed by
 * another thread and by another process (no timing is asserted: a wait
 * with a generous timeout must end with the new batch).
 *
 * lb_get_asof and lb_diff are checked by hand on small histories (updates,
 * deletes, an empty value, a table removed by a rollback and created
 * again, pruned batches), then against the brute-force model of
 * tests/engine/_model.c on seeded random histories with rollbacks,
 * cascades, forced rollbacks and rollback-tos: for every batch and every
 * key, the as-of value is the model's state right after that batch; for
 * random pairs of batches the diff turns one state into the other, names
 * only keys that differ, in table then key order; and for a few batches a
 * real lb_replay to that batch answers every key as lb_get_asof does.
 * Histories whose rollback-tos remove table "x", created again later, are
 * checked the same way against a replay to every batch (the as-of read of
 * a key of a removed table reads the log up to the removal).
 * lb_get_asof's cache of recent batches is driven past its size and
 * shared by threads (every answer checked), and a batch pruned after it
 * was cached answers LB_EPRUNED.
 * Environment: LB_TEST_SEED, LB_FEED_STEPS (steps per history, default
 * 150), LB_FEED_SEEDS (histories, default 3).
 */
#define _GNU_SOURCE
#include "_common.h"
#include "_model.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void assert_asof(lb_db *db, uint64_t batch, const char *table,
                        const char *key, const char *want)
{
	void *v = (void *)1;
	size_t vl = 7;
	int rc = lb_get_asof(db, batch, table, key, strlen(key), &v, &vl);
	if (!want) {
		if (rc != LB_ENOTFOUND)
			fprintf(stderr, "as of %llu, %s/%s: rc %d\n",
			        (unsigned long long)batch, table, key, rc);
		te_rc(LB_ENOTFOUND, rc);
		assert_null(v);
		assert_int_equal(vl, 0);
		return;
	}
	te_rc(0, rc);
	assert_int_equal(vl, strlen(want));
	assert_memory_equal(v, want, vl);
	free(v);
}

static void test_engine_feed__asof_follows_the_key(void **state)
{
	te_fx *fx = *state;
	lb_db *db = fx->db;
	uint64_t b2 = te_put1(db, "t", "k", "one");
	uint64_t b3 = te_put1(db, "t", "other", "x");
	uint64_t b4 = te_put1(db, "t", "k", "two");
	uint64_t b5 = te_del1(db, "t", "k");
	uint64_t b6 = te_put1(db, "t", "k", "");
	assert_asof(db, 0, "t", "k", NULL);
	assert_asof(db, 1, "t", "k", NULL);
	assert_asof(db, b2, "t", "k", "one");
	assert_asof(db, b3, "t", "k", "one");
	assert_asof(db, b4, "t", "k", "two");
	assert_asof(db, b5, "t", "k", NULL);
	assert_asof(db, b6, "t", "k", "");
	assert_asof(db, b2, "t", "other", NULL);
	assert_asof(db, b6, "t", "other", "x");
	assert_asof(db, b6, "t", "never", NULL);
	void *v;
	size_t vl;
	te_rc(LB_ENOTFOUND, lb_get_asof(db, b6 + 1, "t", "k", 1, &v, &vl));
	assert_non_null(strstr(lb_errmsg(), "no batch"));
	te_rc(LB_ENOTFOUND, lb_get_asof(db, b2, "nope", "k", 1, &v, &vl));
	te_rc(LB_EINVAL, lb_get_asof(NULL, 1, "t", "k", 1, &v, &vl));
	te_rc(LB_EINVAL, lb_get_asof(db, 1, "t", "k", 1, NULL, &vl));
	te_rc(LB_EINVAL, lb_get_asof(db, 1, "t", "k", 1, &v, NULL));
	te_rc(LB_EINVAL, lb_get_asof(db, 1, "", "k", 1, &v, &vl));
	te_rc(LB_EINVAL, lb_get_asof(db, 1, "t", "k", 0, &v, &vl));
	te_rc(LB_ETOOBIG,
	      lb_get_asof(db, 1, "t", "k", LB_KEY_MAX + 1, &v, &vl));
}

/* A key changed several times in one batch: as of that batch it holds the
 * last value, as of the batch before it the first before-image. */
static void test_engine_feed__asof_many_changes_in_a_batch(void **state)
{
	te_fx *fx = *state;
	lb_db *db = fx->db;
	uint64_t b2 = te_put1(db, "t", "k", "a");
	lb_batch *b;
	te_rc(0, lb_batch_begin(db, "many", &b));
	te_rc(0, lb_put(b, "t", "k", 1, "b", 1));
	te_rc(0, lb_delete(b, "t", "k", 1));
	te_rc(0, lb_put(b, "t", "k", 1, "c", 1));
	te_rc(0, lb_batch_commit(b, NULL));
	assert_asof(db, b2, "t", "k", "a");
	assert_asof(db, b2 + 1, "t", "k", "c");
}

/* A rollback removes a table; a new table of the same name gets a new id,
 * so the key's value in the old one is found in the log. */
static void test_engine_feed__asof_table_removed_and_created_again(void **state)
{
	te_fx *fx = *state;
	lb_db *db = fx->db;
	uint64_t b2 = te_put1(db, "t", "base", "b");
	te_rc(0, lb_table_create(db, "x", NULL));
	uint64_t bx = te_last(db);
	uint64_t b4 = te_put1(db, "x", "k", "old");
	lb_result res;
	te_rc(0, lb_rollback_to(db, b2, &res));
	lb_result_free(&res);
	uint64_t gone = te_last(db);
	te_rc(0, lb_table_create(db, "x", NULL));
	uint64_t b7 = te_put1(db, "x", "k", "new");
	assert_asof(db, b2, "x", "k", NULL);
	assert_asof(db, bx, "x", "k", NULL);
	assert_asof(db, b4, "x", "k", "old");
	assert_asof(db, gone, "x", "k", NULL);
	assert_asof(db, b7, "x", "k", "new");
	assert_asof(db, b4, "t", "base", "b");
}

static void test_engine_feed__asof_and_diff_after_prune(void **state)
{
	te_fx *fx = *state;
	lb_db *db = fx->db;
	uint64_t b2 = te_put1(db, "t", "a", "1");
	uint64_t b3 = te_put1(db, "t", "b", "1");
	uint64_t b4 = te_put1(db, "t", "a", "2");
	char *base = th_tmpdir(), *c = th_path(base, "c");
	uint64_t at;
	te_rc(0, lb_checkpoint(db, c, &at));
	uint64_t b5 = te_put1(db, "t", "b", "2");
	te_rc(0, lb_prune(db, b5));
	/* a's value as of b2 is in b4's log, which is pruned */
	void *v;
	size_t vl;
	te_rc(LB_EPRUNED, lb_get_asof(db, b2, "t", "a", 1, &v, &vl));
	assert_null(v);
	/* b's first change after b3 is b5, which is whole */
	assert_asof(db, b3, "t", "b", "1");
	assert_asof(db, b4, "t", "a", "2");
	te_rc(LB_EPRUNED, lb_diff(db, b2, b5, te_collect, NULL));
	te_recs rs = {0};
	te_rc(0, lb_diff(db, b4, b5, te_collect, &rs));
	assert_int_equal(rs.n, 1);
	te_assert_rec(&rs.v[0], LB_OP_PUT, "t", "b", 1, "1", 1, "2", 1);
	te_recs_free(&rs);
	th_rmrf(base);
	free(c);
	free(base);
}

static void test_engine_feed__diff_orders_and_reduces(void **state)
{
	te_fx *fx = *state;
	lb_db *db = fx->db;
	uint64_t b2 = te_put1(db, "t", "m", "1");
	te_put1(db, "t", "z", "1");
	lb_batch *b;
	te_rc(0, lb_batch_begin(db, "mix", &b));
	te_rc(0, lb_put(b, "t", "z", 1, "2", 1));
	te_rc(0, lb_put(b, "t", "a", 1, "1", 1));
	te_rc(0, lb_delete(b, "t", "m", 1));
	te_rc(0, lb_put(b, "t", "tmp", 3, "x", 1));
	te_rc(0, lb_delete(b, "t", "tmp", 3));
	te_rc(0, lb_batch_commit(b, NULL));
	te_rc(0, lb_table_create(db, "s", NULL));
	uint64_t last = te_put1(db, "s", "k", "v");
	/* a key set back to its value is no difference */
	te_put1(db, "t", "z", "1");
	te_put1(db, "t", "z", "2");
	last = te_last(db);

	te_recs rs = {0};
	te_rc(0, lb_diff(db, b2, last, te_collect, &rs));
	assert_int_equal(rs.n, 5);
	assert_int_equal(rs.v[0].op, LB_OP_TABLE);
	assert_string_equal(rs.v[0].table, "s");
	assert_false(rs.v[0].has_before);
	assert_true(rs.v[0].has_after);
	te_assert_rec(&rs.v[1], LB_OP_PUT, "s", "k", 1, NULL, 0, "v", 1);
	te_assert_rec(&rs.v[2], LB_OP_PUT, "t", "a", 1, NULL, 0, "1", 1);
	te_assert_rec(&rs.v[3], LB_OP_DELETE, "t", "m", 1, "1", 1, NULL, 0);
	te_assert_rec(&rs.v[4], LB_OP_PUT, "t", "z", 1, NULL, 0, "2", 1);
	te_recs_free(&rs);

	/* reversed: the images swap, a creation becomes a removal */
	memset(&rs, 0, sizeof rs);
	te_rc(0, lb_diff(db, last, b2, te_collect, &rs));
	assert_int_equal(rs.n, 5);
	assert_int_equal(rs.v[0].op, LB_OP_TABLE);
	assert_true(rs.v[0].has_before);
	assert_false(rs.v[0].has_after);
	te_assert_rec(&rs.v[1], LB_OP_DELETE, "s", "k", 1, "v", 1, NULL, 0);
	te_assert_rec(&rs.v[3], LB_OP_PUT, "t", "m", 1, NULL, 0, "1", 1);
	te_assert_rec(&rs.v[4], LB_OP_DELETE, "t", "z", 1, "2", 1, NULL, 0);
	te_recs_free(&rs);

	memset(&rs, 0, sizeof rs);
	te_rc(0, lb_diff(db, last, last, te_collect, &rs));
	assert_int_equal(rs.n, 0);
	te_rc(LB_ENOTFOUND, lb_diff(db, 1, last + 1, te_collect, &rs));
	te_rc(LB_EINVAL, lb_diff(NULL, 1, 2, te_collect, &rs));
	te_rc(LB_EINVAL, lb_diff(db, 1, 2, NULL, &rs));
}

static int stop_cb(void *ctx, const lb_change *c)
{
	(void)ctx;
	(void)c;
	return 7;
}

static void test_engine_feed__diff_callback_stops(void **state)
{
	te_fx *fx = *state;
	te_put1(fx->db, "t", "a", "1");
	te_put1(fx->db, "t", "b", "1");
	te_rc(7, lb_diff(fx->db, 0, te_last(fx->db), stop_cb, NULL));
}

/* Random histories where rollback-tos remove table "x" and it is created
 * again: for every batch and key, lb_get_asof and lb_diff from batch 0
 * agree with a replay to that batch. */
static int find_key(void *ctx, const lb_change *c)
{
	const char **want = ctx;
	if (c->op != LB_OP_TABLE && strcmp(c->table, want[0]) == 0 &&
	    c->klen == strlen(want[1]) &&
	    memcmp(c->key, want[1], c->klen) == 0) {
		want[2] = c->has_after ? "present" : "absent";
		if (c->has_after && c->alen < 32) {
			memcpy((char *)want[3], c->after, c->alen);
			((char *)want[3])[c->alen] = 0;
		}
	}
	return 0;
}

static void
test_engine_feed__asof_with_tables_removed_against_replay(void **state)
{
	te_fx *fx = *state;
	lb_db *db = fx->db;
	uint64_t rng = th_seed(1905);
	long steps = th_env_long("LB_FEED_STEPS", 150) / 3, creations = 0;
	uint64_t xborn = 0;
	for (long i = 0; i < steps; i++) {
		uint64_t last = te_last(db);
		unsigned what = (unsigned)th_below(&rng, 10);
		if (what == 0 && last > 2) {
			/* half the time back to right before "x" was
			 * created, which removes it */
			uint64_t to = xborn > 1 && th_below(&rng, 2)
			                      ? xborn - 1
			                      : 1 + th_below(&rng, last - 1);
			lb_result res;
			int rc = lb_rollback_to(db, to, &res);
			lb_result_free(&res);
			th_assert_seeded(rc == 0 || rc == LB_EVALIDATION);
			continue;
		}
		lb_batch *b;
		void *v;
		size_t vl;
		int grc = lb_get(db, "x", "k0", 2, &v, &vl);
		if (grc == 0)
			free(v);
		int have_x =
		        grc == 0 || strstr(lb_errmsg(), "no table") == NULL;
		if (!have_x) {
			te_rc(0, lb_table_create(db, "x", NULL));
			xborn = te_last(db);
			creations++;
			continue;
		}
		te_rc(0, lb_batch_begin(db, "r", &b));
		for (int j = 0; j < 3; j++) {
			char k[16], val[48];
			const char *t = th_below(&rng, 2) ? "x" : "t";
			snprintf(k, sizeof k, "k%d", (int)th_below(&rng, 4));
			snprintf(val, sizeof val, "v%ld-%d", i, j);
			if (th_below(&rng, 4) == 0) {
				int rc = lb_delete(b, t, k, strlen(k));
				th_assert_seeded(rc == 0 ||
				                 rc == LB_EVALIDATION);
			} else {
				te_rc(0, lb_put(b, t, k, strlen(k), val,
				                strlen(val)));
			}
		}
		lb_result res;
		int rc = lb_batch_commit(b, &res);
		lb_result_free(&res);
		th_assert_seeded(rc == 0 || rc == LB_EVALIDATION);
	}
	/* "x" was removed and created again at least once */
	th_assert_seeded(creations >= 2);
	uint64_t last = te_last(db);
	char *base = th_tmpdir();
	for (uint64_t n = 1; n <= last; n++) {
		char name[32];
		snprintf(name, sizeof name, "r%llu", (unsigned long long)n);
		char *dest = th_path(base, name);
		lb_result res;
		te_rc(0, lb_replay(db, dest, n, NULL, &res));
		lb_result_free(&res);
		lb_db *r = te_open(dest, 0);
		for (int t = 0; t < 2; t++)
			for (int k = 0; k < 4; k++) {
				const char *tn = t ? "x" : "t";
				char key[16], dv[32] = "";
				snprintf(key, sizeof key, "k%d", k);
				void *v1 = NULL, *v2 = NULL;
				size_t l1 = 0, l2 = 0;
				int r1 = lb_get(r, tn, key, 2, &v1, &l1);
				int r2 = lb_get_asof(db, n, tn, key, 2, &v2,
				                     &l2);
				if (r1 != r2)
					fprintf(stderr,
					        "as of %llu %s/%s: replay %d, "
					        "as-of %d (%s)\n",
					        (unsigned long long)n, tn, key,
					        r1, r2, lb_errmsg());
				th_assert_seeded(r1 == r2);
				th_assert_seeded(l1 == l2);
				th_assert_seeded(!l1 ||
				                 memcmp(v1, v2, l1) == 0);
				/* the diff from the empty database says the
				 * same */
				const char *want[4] = {tn, key, "absent", dv};
				te_rc(0, lb_diff(db, 0, n, find_key, want));
				th_assert_seeded(
				        (r1 == 0) ==
				        (strcmp(want[2], "present") == 0));
				th_assert_seeded(r1 != 0 || strlen(dv) == l1);
				th_assert_seeded(r1 != 0 ||
				                 memcmp(dv, v1, l1) == 0);
				free(v1);
				free(v2);
			}
		lb_close(r);
		th_rmrf(dest);
		free(dest);
	}
	th_rmrf(base);
	free(base);
}

/* ---- the as-of cache ----------------------------------------------------- */

/* Batches 2..25 each set k0..k9 to "b<batch>-<key>": more batches than
 * the cache holds (16). */
static void many_batches(lb_db *db)
{
	for (int b = 2; b <= 25; b++) {
		lb_batch *bt;
		te_rc(0, lb_batch_begin(db, "c", &bt));
		for (int k = 0; k < 10; k++) {
			char key[16], v[32];
			snprintf(key, sizeof key, "k%d", k);
			snprintf(v, sizeof v, "b%d-%d", b, k);
			te_rc(0,
			      lb_put(bt, "t", key, strlen(key), v, strlen(v)));
		}
		te_rc(0, lb_batch_commit(bt, NULL));
	}
}

static void want_of(int batch, int k, char *out, size_t cap)
{
	if (batch < 2)
		out[0] = 0;
	else
		snprintf(out, cap, "b%d-%d", batch > 25 ? 25 : batch, k);
}

/* More batches than the cache holds, asked twice in different orders. */
static void test_engine_feed__asof_cache_evicts_and_stays_right(void **state)
{
	te_fx *fx = *state;
	many_batches(fx->db);
	uint64_t rng = th_seed(7);
	for (int pass = 0; pass < 3; pass++)
		for (int i = 0; i < 200; i++) {
			int b = 1 + (int)th_below(&rng, 25),
			    k = (int)th_below(&rng, 10);
			char key[16], w[32];
			snprintf(key, sizeof key, "k%d", k);
			want_of(b, k, w, sizeof w);
			assert_asof(fx->db, (uint64_t)b, "t", key,
			            b < 2 ? NULL : w);
		}
	/* a pruned batch answers LB_EPRUNED even when it was cached */
	char *base = th_tmpdir(), *c = th_path(base, "c");
	uint64_t at;
	assert_asof(fx->db, 3, "t", "k1", "b3-1"); /* caches batch 4 */
	te_rc(0, lb_checkpoint(fx->db, c, &at));
	te_rc(0, lb_prune(fx->db, 6));
	void *v;
	size_t vl;
	te_rc(LB_EPRUNED, lb_get_asof(fx->db, 3, "t", "k1", 2, &v, &vl));
	assert_asof(fx->db, 6, "t", "k1", "b6-1");
	th_rmrf(base);
	free(c);
	free(base);
}

typedef struct asker {
	lb_db *db;
	uint64_t seed;
	int bad;
} asker;

static void *ask_thread(void *p)
{
	asker *a = p;
	uint64_t rng = a->seed;
	for (int i = 0; i < 400; i++) {
		int b = 2 + (int)th_below(&rng, 24),
		    k = (int)th_below(&rng, 10);
		char key[16], w[32];
		snprintf(key, sizeof key, "k%d", k);
		want_of(b, k, w, sizeof w);
		void *v = NULL;
		size_t vl = 0;
		int rc = lb_get_asof(a->db, (uint64_t)b, "t", key, strlen(key),
		                     &v, &vl);
		if (rc != 0 || vl != strlen(w) || memcmp(v, w, vl) != 0)
			a->bad++;
		free(v);
	}
	return NULL;
}

static void test_engine_feed__asof_cache_shared_by_threads(void **state)
{
	te_fx *fx = *state;
	many_batches(fx->db);
	uint64_t seed = th_seed(11);
	pthread_t th[4];
	asker a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (asker){fx->db, seed + (uint64_t)i, 0};
		assert_int_equal(
		        pthread_create(&th[i], NULL, ask_thread, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		th_assert_seeded(a[i].bad == 0);
	}
}

/* ---- lb_wait ------------------------------------------------------------- */

static void test_engine_feed__wait_now_and_timeout(void **state)
{
	te_fx *fx = *state;
	uint64_t last = 99;
	te_rc(0, lb_wait(fx->db, 0, 0, &last));
	assert_int_equal(last, 1);
	te_rc(LB_EBUSY, lb_wait(fx->db, 1, 0, &last));
	assert_int_equal(last, 1);
	te_rc(LB_EBUSY, lb_wait(fx->db, 1, 20, &last));
	assert_int_equal(last, 1);
	te_rc(LB_EINVAL, lb_wait(NULL, 1, 0, &last));
	te_rc(LB_EINVAL, lb_wait(fx->db, 1, 0, NULL));
	te_rc(LB_EINVAL, lb_wait(fx->db, 1, -2, &last));
}

typedef struct waiter {
	lb_db *db;
	uint64_t after, last;
	int rc;
} waiter;

static void *wait_thread(void *p)
{
	waiter *w = p;
	w->rc = lb_wait(w->db, w->after, 60000, &w->last);
	return NULL;
}

static void test_engine_feed__wait_wakes_for_another_thread(void **state)
{
	te_fx *fx = *state;
	waiter w = {fx->db, 1, 0, -100};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
	usleep(20000);
	te_put1(fx->db, "t", "k", "v");
	pthread_join(th, NULL);
	te_rc(0, w.rc);
	assert_int_equal(w.last, 2);
}

static void test_engine_feed__wait_wakes_for_another_process(void **state)
{
	te_fx *fx = *state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		lb_db *db;
		usleep(50000);
		if (lb_open(fx->dir, NULL, &db) != 0)
			_exit(2);
		lb_batch *b;
		int rc = lb_batch_begin(db, "child", &b);
		if (rc == 0)
			rc = lb_put(b, "t", "c", 1, "v", 1);
		if (rc == 0)
			rc = lb_batch_commit(b, NULL);
		lb_close(db);
		_exit(rc == 0 ? 0 : 3);
	}
	uint64_t last = 0;
	int rc = lb_wait(fx->db, 1, 60000, &last);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	te_rc(0, rc);
	assert_int_equal(last, 2);
}

/* ---- against the model --------------------------------------------------- */

static void state_val(const tm_state *s, int t, int k, const void **v,
                      size_t *vl, int *present)
{
	*present = t < s->ntables && s->v[t][k].present;
	*v = s->v[t][k].b;
	*vl = s->v[t][k].len;
}

static void check_asof_all(lb_db *db, const tm_model *m, uint64_t x,
                           const tm_state *s)
{
	for (int t = 0; t < TM_NT; t++)
		for (int k = 0; k < TM_NK; k++) {
			char key[3];
			tm_key(t, k, key);
			void *v = NULL;
			size_t vl = 0;
			int rc = lb_get_asof(db, x, tm_table_name[t], key, 2,
			                     &v, &vl);
			const void *w;
			size_t wl;
			int present;
			state_val(s, t, k, &w, &wl, &present);
			if (present ? rc != 0 || vl != wl ||
			                      (wl && memcmp(v, w, wl) != 0)
			            : rc != LB_ENOTFOUND)
				fprintf(stderr,
				        "as of %llu (of %llu): %s/%s rc %d "
				        "(%s)\n",
				        (unsigned long long)x,
				        (unsigned long long)tm_last(m),
				        tm_table_name[t], key, rc, lb_errmsg());
			th_assert_seeded(present ? rc == 0
			                         : rc == LB_ENOTFOUND);
			if (present) {
				th_assert_seeded(vl == wl);
				th_assert_seeded(!wl || memcmp(v, w, wl) == 0);
			}
			free(v);
		}
}

typedef struct dstate {
	tm_state s; /* the state being turned into the other */
	int last_t;
	char last_k[3];
	int n, bad, tables;
} dstate;

static int table_index(const char *name)
{
	for (int t = 0; t < TM_NT; t++)
		if (strcmp(tm_table_name[t], name) == 0)
			return t;
	return -1;
}

static int apply_diff(void *ctx, const lb_change *c)
{
	dstate *d = ctx;
	int t = table_index(c->table);
	if (t >= 0 && c->op == LB_OP_TABLE) {
		/* the model's tables are created and never changed: a table
		 * that exists on one side only, before its keys */
		int ok =
		        c->has_before == (t < d->s.ntables) &&
		        c->has_after != c->has_before &&
		        (d->last_t < 0 || strcmp(tm_table_name[t],
		                                 tm_table_name[d->last_t]) > 0);
		d->bad += !ok;
		d->tables++;
		return 0;
	}
	d->n++;
	if (t < 0 || c->op == LB_OP_TABLE || c->klen != 2) {
		d->bad++;
		return 0;
	}
	int k = c->key ? ((const char *)c->key)[1] - '0' : -1;
	if (k < 0 || k >= TM_NK) {
		d->bad++;
		return 0;
	}
	/* in table order (names), then key order */
	int cmp = d->last_t < 0
	                  ? 1
	                  : strcmp(tm_table_name[t], tm_table_name[d->last_t]);
	if (cmp < 0 || (cmp == 0 && memcmp(c->key, d->last_k, 2) <= 0))
		d->bad++;
	d->last_t = t;
	memcpy(d->last_k, c->key, 2);
	tm_val *v = &d->s.v[t][k];
	/* before is the first state's value */
	if (c->has_before != v->present ||
	    (v->present &&
	     (c->blen != v->len || memcmp(c->before, v->b, v->len) != 0)))
		d->bad++;
	v->present = (uint8_t)(c->has_after != 0);
	v->len = (uint8_t)(c->has_after ? c->alen : 0);
	if (c->has_after && c->alen <= TM_VMAX)
		memcpy(v->b, c->after, c->alen);
	if (c->op != (c->has_after ? LB_OP_PUT : LB_OP_DELETE))
		d->bad++;
	return 0;
}

static int states_equal(const tm_state *a, const tm_state *b)
{
	for (int t = 0; t < TM_NT; t++)
		for (int k = 0; k < TM_NK; k++) {
			const tm_val *x = &a->v[t][k], *y = &b->v[t][k];
			if (x->present != y->present ||
			    (x->present && (x->len != y->len ||
			                    memcmp(x->b, y->b, x->len) != 0)))
				return 0;
		}
	return 1;
}

static int count_differences(const tm_state *a, const tm_state *b)
{
	int n = 0;
	for (int t = 0; t < TM_NT; t++)
		for (int k = 0; k < TM_NK; k++) {
			tm_state x = {0}, y = {0};
			x.v[0][0] = a->v[t][k];
			y.v[0][0] = b->v[t][k];
			n += !states_equal(&x, &y);
		}
	return n;
}

static void check_diff(lb_db *db, const tm_model *m, uint64_t a, uint64_t b)
{
	dstate d;
	memset(&d, 0, sizeof d);
	d.s = *tm_state_at(m, a);
	d.last_t = -1;
	const tm_state *want = tm_state_at(m, b);
	int rc = lb_diff(db, a, b, apply_diff, &d);
	th_assert_seeded(rc == 0);
	if (d.bad || !states_equal(&d.s, want))
		fprintf(stderr, "diff %llu -> %llu: %d bad of %d\n",
		        (unsigned long long)a, (unsigned long long)b, d.bad,
		        d.n);
	th_assert_seeded(d.bad == 0);
	th_assert_seeded(states_equal(&d.s, want));
	th_assert_seeded(d.n == count_differences(tm_state_at(m, a), want));
	int nt = tm_state_at(m, a)->ntables - want->ntables;
	th_assert_seeded(d.tables == (nt < 0 ? -nt : nt));
}

/* Every key of a replay to x, read with lb_get, equals lb_get_asof. */
static void check_replay(lb_db *db, uint64_t x, const char *base)
{
	char name[64];
	snprintf(name, sizeof name, "replay-%llu", (unsigned long long)x);
	char *dest = th_path(base, name);
	lb_result res;
	te_rc(0, lb_replay(db, dest, x, NULL, &res));
	lb_result_free(&res);
	lb_db *r = te_open(dest, 0);
	for (int t = 0; t < TM_NT; t++)
		for (int k = 0; k < TM_NK; k++) {
			char key[3];
			tm_key(t, k, key);
			void *v1 = NULL, *v2 = NULL;
			size_t l1 = 0, l2 = 0;
			int r1 = lb_get(r, tm_table_name[t], key, 2, &v1, &l1);
			int r2 = lb_get_asof(db, x, tm_table_name[t], key, 2,
			                     &v2, &l2);
			th_assert_seeded(r1 == r2);
			th_assert_seeded(l1 == l2);
			th_assert_seeded(!l1 || memcmp(v1, v2, l1) == 0);
			free(v1);
			free(v2);
		}
	lb_close(r);
	th_rmrf(dest);
	free(dest);
}

static void test_engine_feed__asof_and_diff_against_the_model(void **state)
{
	(void)state;
	long steps = th_env_long("LB_FEED_STEPS", 150);
	long seeds = th_env_long("LB_FEED_SEEDS", 3);
	uint64_t seed0 = th_seed(19);
	for (long s = 0; s < seeds; s++) {
		uint64_t rng = seed0 + (uint64_t)s;
		char *dir = th_tmpdir();
		lb_db *db = te_open(dir, LB_CREATE | LB_NOSYNC);
		tm_model *m = tm_new(1);
		tm_setup(m, db);
		for (long i = 0; i < steps; i++)
			tm_step(m, &db, dir, &rng,
			        TM_STEP_BATCH | TM_STEP_ROLLBACK |
			                TM_STEP_ROLLBACK_TO);
		tm_assert_db(m, db);
		uint64_t last = tm_last(m);
		for (uint64_t x = 0; x <= last; x++)
			check_asof_all(db, m, x, tm_state_at(m, x));
		for (int i = 0; i < 40; i++) {
			uint64_t a = th_below(&rng, last + 1);
			uint64_t b = th_below(&rng, last + 1);
			check_diff(db, m, a, b);
		}
		check_diff(db, m, 0, last);
		char *base = th_tmpdir();
		for (int i = 0; i < 3; i++)
			check_replay(db, 1 + th_below(&rng, last), base);
		th_rmrf(base);
		free(base);
		tm_free(m);
		lb_close(db);
		th_rmrf(dir);
		free(dir);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, te_setup_t, te_teardown)
	        T(test_engine_feed__asof_follows_the_key),
	        T(test_engine_feed__asof_many_changes_in_a_batch),
	        T(test_engine_feed__asof_table_removed_and_created_again),
	        T(test_engine_feed__asof_and_diff_after_prune),
	        T(test_engine_feed__diff_orders_and_reduces),
	        T(test_engine_feed__diff_callback_stops),
	        T(test_engine_feed__asof_cache_evicts_and_stays_right),
	        T(test_engine_feed__asof_cache_shared_by_threads),
	        T(test_engine_feed__wait_now_and_timeout),
	        T(test_engine_feed__wait_wakes_for_another_thread),
	        T(test_engine_feed__wait_wakes_for_another_process),
	        T(test_engine_feed__asof_and_diff_against_the_model),
	        T(test_engine_feed__asof_with_tables_removed_against_replay),
#undef T
	};
	return cmocka_run_group_tests_name("engine_feed", tests, NULL, NULL);
}
