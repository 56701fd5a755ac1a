/* SPDX-License-Identifier: MIT */
/*
 * prune.c: lb_prune. It needs a checkpoint at or after the last batch it
 * prunes, still on disk; it drops those batches' segments and marks their
 * headers, changing no data and consuming no batch id; afterwards the chain
 * still verifies, verify's replay starts from the checkpoint, the pruned
 * batches answer LB_EPRUNED to lb_changes and rollback, replay from empty
 * is refused with LB_EPRUNED and replay from the checkpoint works. A
 * checkpoint of a pruned database keeps the registration of the checkpoint
 * it can be replayed from, so it verifies with replay too; so does a replay
 * from such a checkpoint, which registers a checkpoint it can be replayed
 * from.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Batches 2..n+1 (after the fixture's table "t"), each putting keys
 * p<batch>-0..9 and rewriting "shared". */
static void batches(lb_db *db, int n)
{
	for (int i = 0; i < n; i++) {
		lb_batch *b;
		uint64_t id = te_last(db) + 1;
		te_rc(0, lb_batch_begin(db, "p", &b));
		for (int j = 0; j < 10; j++) {
			char k[32], v[48];
			snprintf(k, sizeof k, "p%llu-%d",
			         (unsigned long long)id, j);
			snprintf(v, sizeof v, "value %d of batch %llu", j,
			         (unsigned long long)id);
			te_rc(0, lb_put(b, "t", k, strlen(k), v, strlen(v)));
		}
		char v[32];
		snprintf(v, sizeof v, "%llu", (unsigned long long)id);
		te_rc(0, lb_put(b, "t", "shared", 6, v, strlen(v)));
		te_rc(0, lb_batch_commit(b, NULL));
	}
}

static int count_cb(void *ctx, const lb_change *c)
{
	(void)c;
	(*(int *)ctx)++;
	return 0;
}

typedef struct hseen {
	uint64_t batch[64];
	int null[64];
	int n;
} hseen;

static int hist_cb(void *ctx, uint64_t batch, const lb_change *c)
{
	hseen *h = ctx;
	if (h->n < 64) {
		h->batch[h->n] = batch;
		h->null[h->n] = c == NULL;
	}
	h->n++;
	return 0;
}

static void test_engine_prune__needs_a_checkpoint(void **state)
{
	te_fx *fx = *state;
	char *base = th_tmpdir(), *c = th_path(base, "c");
	uint64_t at;
	batches(fx->db, 8); /* batches 2..9 */
	uint64_t d = te_digest(fx->db);
	te_rc(LB_EINVAL, lb_prune(fx->db, 5));
	assert_non_null(strstr(lb_errmsg(), "checkpoint"));
	lb_batch_info bi;
	te_rc(0, lb_batch_info_get(fx->db, 1, &bi));
	assert_false(bi.pruned);
	te_rc(0, lb_checkpoint(fx->db, c, &at));
	assert_int_equal(at, 9);
	te_rc(LB_EINVAL, lb_prune(fx->db, 11)); /* batch 10 does not exist */
	assert_int_equal(te_digest(fx->db), d);
	te_rc(0, lb_prune(fx->db, 10)); /* every batch */
	assert_int_equal(te_digest(fx->db), d);
	for (uint64_t id = 1; id <= 9; id++) {
		te_rc(0, lb_batch_info_get(fx->db, id, &bi));
		assert_true(bi.pruned);
	}
	th_rmrf(base);
	free(c);
	free(base);
}

/* The checkpoint's batch bounds what may be pruned. */
static void test_engine_prune__checkpoint_bounds_the_prune(void **state)
{
	te_fx *fx = *state;
	char *base = th_tmpdir(), *c = th_path(base, "c");
	uint64_t at;
	batches(fx->db, 4); /* 2..5 */
	te_rc(0, lb_checkpoint(fx->db, c, &at));
	assert_int_equal(at, 5);
	batches(fx->db, 4);                    /* 6..9 */
	te_rc(LB_EINVAL, lb_prune(fx->db, 8)); /* needs >= 7 */
	assert_non_null(strstr(lb_errmsg(), "batch 7"));
	te_rc(LB_EINVAL, lb_prune(fx->db, 7)); /* needs >= 6 */
	te_rc(0, lb_prune(fx->db, 6));         /* needs >= 5 */
	lb_batch_info bi;
	te_rc(0, lb_batch_info_get(fx->db, 5, &bi));
	assert_true(bi.pruned);
	te_rc(0, lb_batch_info_get(fx->db, 6, &bi));
	assert_false(bi.pruned);
	th_rmrf(base);
	free(c);
	free(base);
}

static void test_engine_prune__afterwards(void **state)
{
	te_fx *fx = *state;
	char *base = th_tmpdir(), *c = th_path(base, "c"),
	     *r1 = th_path(base, "r1"), *r2 = th_path(base, "r2"),
	     *r3 = th_path(base, "r3");
	uint64_t at;
	lb_result res;
	lb_verify_report rep;
	batches(fx->db, 5); /* 2..6 */
	te_rc(0, lb_checkpoint(fx->db, c, &at));
	assert_int_equal(at, 6);
	uint64_t d6 = te_digest(fx->db);
	batches(fx->db, 4); /* 7..10 */
	uint64_t d = te_digest(fx->db), last = te_last(fx->db);
	uint64_t segs_after = 0;
	for (uint64_t id = 7; id <= last; id++) {
		lb_batch_info bi;
		te_rc(0, lb_batch_info_get(fx->db, id, &bi));
		segs_after += bi.segments;
	}

	te_rc(0, lb_prune(fx->db, 7));
	/* no data changed, no batch id consumed */
	assert_int_equal(te_digest(fx->db), d);
	assert_int_equal(te_last(fx->db), last);
	for (uint64_t id = 1; id <= last; id++) {
		lb_batch_info bi;
		int n = 0;
		te_rc(0, lb_batch_info_get(fx->db, id, &bi));
		assert_int_equal(!!bi.pruned, id < 7);
		if (id < 7) {
			te_rc(LB_EPRUNED, lb_changes(fx->db, id, count_cb, &n));
			assert_int_equal(n, 0);
			te_rc(LB_EPRUNED, lb_rollback(fx->db, id, 0, &res));
			lb_result_free(&res);
			te_rc(LB_EPRUNED,
			      lb_rollback(fx->db, id, LB_FORCE, &res));
			lb_result_free(&res);
		} else {
			te_rc(0, lb_changes(fx->db, id, count_cb, &n));
			assert_int_equal(n, 11);
		}
	}
	te_rc(LB_EPRUNED, lb_rollback_to(fx->db, 3, &res));
	lb_result_free(&res);
	assert_int_equal(te_digest(fx->db), d);
	/* history of "shared": the newest pruned batch is reported without
	 * records, and ends it (nothing older can be found) */
	hseen h = {0};
	te_rc(0, lb_history(fx->db, "t", "shared", 6, hist_cb, &h));
	assert_int_equal(h.n, (int)last - 5);
	for (int i = 0; i < h.n; i++) {
		assert_int_equal(h.batch[i], last - (uint64_t)i);
		assert_int_equal(h.null[i], h.batch[i] < 7);
	}
	assert_int_equal(h.batch[h.n - 1], 6);

	/* the chain still verifies; only standing segments are counted */
	te_rc(0, lb_verify(fx->db, 0, &rep));
	assert_true(rep.chain_ok);
	assert_int_equal(rep.batches, last);
	assert_int_equal(rep.segments, segs_after);
	/* verify's replay starts from the checkpoint */
	te_rc(0, lb_verify(fx->db, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.replay_ok);

	/* replay from empty is refused, naming what would do */
	te_rc(LB_EPRUNED, lb_replay(fx->db, r1, 0, NULL, &res));
	assert_non_null(strstr(lb_errmsg(), "checkpoint"));
	assert_non_null(strstr(lb_errmsg(), "batch 6"));
	assert_int_equal(access(r1, F_OK), -1);
	te_rc(LB_EPRUNED, lb_replay(fx->db, r1, 3, NULL, &res));
	/* from the checkpoint it works, to the last batch or to the
	 * checkpoint's own */
	te_rc(0, lb_replay(fx->db, r2, 0, c, &res));
	assert_int_equal(res.batch_id, last);
	assert_int_equal(res.records, 44);
	lb_db *r = te_open(r2, LB_NOSYNC);
	assert_int_equal(te_digest(r), d);
	te_rc(0, lb_verify(r, LB_VERIFY_REPLAY, &rep));
	lb_close(r);
	te_rc(0, lb_replay(fx->db, r3, 6, c, &res));
	assert_int_equal(res.records, 0);
	r = te_open(r3, LB_NOSYNC);
	assert_int_equal(te_digest(r), d6);
	lb_close(r);

	/* pruning again, or less, changes nothing */
	te_rc(0, lb_prune(fx->db, 7));
	te_rc(0, lb_prune(fx->db, 4));
	te_rc(0, lb_prune(fx->db, 1));
	te_rc(0, lb_prune(fx->db, 0));
	te_rc(0, lb_verify(fx->db, LB_VERIFY_REPLAY, &rep));
	assert_int_equal(te_digest(fx->db), d);
	/* and the database goes on */
	assert_int_equal(te_put1(fx->db, "t", "more", "x"), last + 1);
	te_rc(0, lb_verify(fx->db, LB_VERIFY_REPLAY, &rep));
	th_rmrf(base);
	free(c);
	free(r1);
	free(r2);
	free(r3);
	free(base);
}

static void test_engine_prune__checkpoint_gone_from_disk(void **state)
{
	te_fx *fx = *state;
	char *base = th_tmpdir(), *c = th_path(base, "c");
	uint64_t at;
	lb_verify_report rep;
	batches(fx->db, 3);
	te_rc(0, lb_checkpoint(fx->db, c, &at));
	th_rmrf(c);
	te_rc(LB_EINVAL, lb_prune(fx->db, at));
	assert_non_null(strstr(lb_errmsg(), "checkpoint"));
	lb_batch_info bi;
	te_rc(0, lb_batch_info_get(fx->db, 1, &bi));
	assert_false(bi.pruned);

	/* pruned while it existed, then removed: verify's replay has no
	 * base left and says so, charging the last pruned batch */
	te_rc(0, lb_checkpoint(fx->db, c, &at));
	te_rc(0, lb_prune(fx->db, at));
	te_rc(0, lb_verify(fx->db, 0, &rep));
	th_rmrf(c);
	te_rc(0, lb_verify(fx->db, 0, &rep));
	te_rc(LB_ECORRUPT, lb_verify(fx->db, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.chain_ok);
	assert_false(rep.replay_ok);
	assert_int_equal(rep.bad_batch, at - 1);
	assert_non_null(strstr(rep.detail, "checkpoint"));
	th_rmrf(base);
	free(c);
	free(base);
}

typedef struct reglist {
	uint64_t at[4];
	char path[4][PATH_MAX];
	int64_t t[4];
	int n;
} reglist;

static int reg_cb(void *ctx, uint64_t batch, const char *path, int64_t t)
{
	reglist *l = ctx;
	if (l->n < 4) {
		l->at[l->n] = batch;
		snprintf(l->path[l->n], sizeof l->path[l->n], "%s", path);
		l->t[l->n] = t;
	}
	l->n++;
	return 0;
}

/* A checkpoint of a pruned database keeps the registration of the newest
 * checkpoint it can be replayed from (at or after its last pruned batch,
 * on disk), and of no other: it verifies with replay, and its replay from
 * that checkpoint equals it. So does a checkpoint of that checkpoint. */
static void test_engine_prune__checkpoint_of_pruned_verifies(void **state)
{
	te_fx *fx = *state;
	char *base = th_tmpdir(), *c0 = th_path(base, "c0"),
	     *c1 = th_path(base, "c1"), *c2 = th_path(base, "c2"),
	     *cp = th_path(base, "cp"), *cpp = th_path(base, "cpp"),
	     *r = th_path(base, "r");
	uint64_t at0, at1, at2, atp, atpp;
	lb_verify_report rep;
	lb_result res;
	reglist l;
	batches(fx->db, 3); /* 2..4 */
	te_rc(0, lb_checkpoint(fx->db, c0, &at0));
	batches(fx->db, 2); /* 5..6 */
	te_rc(0, lb_checkpoint(fx->db, c1, &at1));
	te_rc(0, lb_table_create(fx->db, "u", NULL));
	batches(fx->db, 1);
	te_rc(0, lb_checkpoint(fx->db, c2, &at2));
	batches(fx->db, 2);
	assert_true(at0 < at1 && at1 < at2);
	te_rc(0, lb_prune(fx->db, at1 + 1));

	te_rc(0, lb_checkpoint(fx->db, cp, &atp));
	assert_int_equal(atp, te_last(fx->db));
	lb_db *p = te_open(cp, LB_NOSYNC);
	uint64_t d = te_digest(p);
	/* c0 is below the prune, c1 and c2 are bases: the newest is kept */
	memset(&l, 0, sizeof l);
	te_rc(0, lb_checkpoints(p, reg_cb, &l));
	assert_int_equal(l.n, 1);
	assert_int_equal(l.at[0], at2);
	char *real2 = realpath(c2, NULL);
	assert_string_equal(l.path[0], real2);
	memset(&rep, 0, sizeof rep);
	te_rc(0, lb_verify(p, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.chain_ok);
	assert_true(rep.replay_ok);
	assert_int_equal(rep.batches, atp);
	/* replay from empty is refused; from the kept checkpoint it is the
	 * copy again */
	te_rc(LB_EPRUNED, lb_replay(p, r, 0, NULL, &res));
	te_rc(0, lb_replay(p, r, 0, l.path[0], &res));
	assert_int_equal(res.batch_id, atp);
	lb_db *q = te_open(r, LB_NOSYNC);
	assert_int_equal(te_digest(q), d);
	te_rc(0, lb_verify(q, 0, &rep));
	lb_close(q);

	/* a checkpoint of the checkpoint keeps the same base */
	te_rc(0, lb_checkpoint(p, cpp, &atpp));
	assert_int_equal(atpp, atp);
	lb_close(p);
	p = te_open(cpp, LB_RDONLY);
	memset(&l, 0, sizeof l);
	te_rc(0, lb_checkpoints(p, reg_cb, &l));
	assert_int_equal(l.n, 1);
	assert_int_equal(l.at[0], at2);
	te_rc(0, lb_verify(p, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.replay_ok);
	assert_int_equal(te_digest(p), d);
	lb_close(p);

	/* cp, a checkpoint of the source too, is now its newest base; with
	 * it and c2 gone from disk, c1 is the base a new copy keeps */
	th_rmrf(c2);
	th_rmrf(cp);
	th_rmrf(cpp);
	te_rc(0, lb_checkpoint(fx->db, cpp, &atpp));
	p = te_open(cpp, LB_RDONLY);
	memset(&l, 0, sizeof l);
	te_rc(0, lb_checkpoints(p, reg_cb, &l));
	assert_int_equal(l.n, 1);
	assert_int_equal(l.at[0], at1);
	te_rc(0, lb_verify(p, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.replay_ok);
	lb_close(p);
	/* with no base left, a copy keeps nothing, and its replay check
	 * says why (the source has the copy itself as a base now) */
	th_rmrf(c1);
	th_rmrf(cpp);
	te_rc(0, lb_checkpoint(fx->db, cpp, &atpp));
	p = te_open(cpp, LB_RDONLY);
	memset(&l, 0, sizeof l);
	te_rc(0, lb_checkpoints(p, reg_cb, &l));
	assert_int_equal(l.n, 0);
	te_rc(0, lb_verify(p, 0, &rep));
	te_rc(LB_ECORRUPT, lb_verify(p, LB_VERIFY_REPLAY, &rep));
	assert_non_null(strstr(rep.detail, "cannot replay"));
	assert_int_equal(rep.bad_batch, at1);
	lb_close(p);

	free(real2);
	th_rmrf(base);
	free(c0);
	free(c1);
	free(c2);
	free(cp);
	free(cpp);
	free(r);
	free(base);
}

/* Assert that db registers exactly one checkpoint: want's entry i, batch,
 * path and time. */
static void assert_one_reg(lb_db *db, const reglist *want, int i)
{
	reglist l;
	memset(&l, 0, sizeof l);
	te_rc(0, lb_checkpoints(db, reg_cb, &l));
	assert_int_equal(l.n, 1);
	assert_int_equal(l.at[0], want->at[i]);
	assert_string_equal(l.path[0], want->path[i]);
	assert_int_equal(l.t[0], want->t[i]);
}

/* A replay from a checkpoint of a pruned database keeps the checkpoint's
 * pruned batches, so it needs a checkpoint to be replayed from: it gets
 * the base itself (the source's registration of it, unchanged) when the
 * source registers that directory, else the base's own registration, and
 * it verifies with replay; its content is the source's at the batch
 * replayed to. */
static void
test_engine_prune__replay_of_pruned_checkpoint_verifies(void **state)
{
	te_fx *fx = *state;
	char *base = th_tmpdir(), *c1 = th_path(base, "c1"),
	     *cp = th_path(base, "cp"), *cpm = th_path(base, "cp-moved"),
	     *cr = th_path(base, "cr"), *ln = th_path(base, "cp-link"),
	     *r1 = th_path(base, "r1"), *r1b = th_path(base, "r1b"),
	     *r2 = th_path(base, "r2"), *r3 = th_path(base, "r3");
	uint64_t at1, atp, atr, to;
	lb_verify_report rep;
	lb_result res;
	reglist src;
	lb_db *q;
	batches(fx->db, 3); /* 2..4 */
	te_rc(0, lb_checkpoint(fx->db, c1, &at1));
	batches(fx->db, 2);
	te_rc(0, lb_prune(fx->db, at1 + 1));
	te_rc(0, lb_table_create(fx->db, "u", NULL));
	batches(fx->db, 1);
	te_rc(0, lb_checkpoint(fx->db, cp, &atp));
	/* batches after the checkpoint, a table creation among them, up to
	 * the batch replayed to; then more that the replay leaves out */
	te_rc(0, lb_table_create(fx->db, "w", NULL));
	batches(fx->db, 2);
	to = te_last(fx->db);
	uint64_t d = te_digest(fx->db);
	batches(fx->db, 2);
	memset(&src, 0, sizeof src);
	te_rc(0, lb_checkpoints(fx->db, reg_cb, &src));
	assert_int_equal(src.n, 2);
	assert_int_equal(src.at[0], at1);
	assert_int_equal(src.at[1], atp);

	/* cp is registered in the source: the replay registers cp */
	te_rc(0, lb_replay(fx->db, r1, to, cp, &res));
	assert_int_equal(res.batch_id, to);
	assert_true(res.records > 0);
	q = te_open(r1, LB_NOSYNC);
	assert_int_equal(te_last(q), to);
	assert_int_equal(te_digest(q), d);
	lb_batch_info bi;
	te_rc(0, lb_batch_info_get(q, at1, &bi));
	assert_true(bi.pruned);
	te_rc(0, lb_batch_info_get(q, at1 + 1, &bi));
	assert_false(bi.pruned);
	assert_one_reg(q, &src, 1);
	memset(&rep, 0, sizeof rep);
	te_rc(0, lb_verify(q, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.chain_ok);
	assert_true(rep.replay_ok);
	assert_int_equal(rep.batches, to);
	/* a checkpoint of the replay keeps cp in turn, and verifies */
	te_rc(0, lb_checkpoint(q, cr, &atr));
	assert_int_equal(atr, to);
	lb_close(q);
	q = te_open(cr, LB_RDONLY);
	assert_one_reg(q, &src, 1);
	te_rc(0, lb_verify(q, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.replay_ok);
	assert_int_equal(te_digest(q), d);
	lb_close(q);

	/* another path to cp is the same directory */
	assert_int_equal(symlink(cp, ln), 0);
	te_rc(0, lb_replay(fx->db, r1b, to, ln, &res));
	q = te_open(r1b, LB_RDONLY);
	assert_one_reg(q, &src, 1);
	assert_int_equal(te_digest(q), d);
	lb_close(q);

	/* moved, cp is no longer the directory the source registers: the
	 * replay keeps cp's own registration of c1 */
	assert_int_equal(rename(cp, cpm), 0);
	te_rc(0, lb_replay(fx->db, r2, to, cpm, &res));
	q = te_open(r2, LB_RDONLY);
	assert_int_equal(te_digest(q), d);
	assert_one_reg(q, &src, 0);
	memset(&rep, 0, sizeof rep);
	te_rc(0, lb_verify(q, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.replay_ok);
	lb_close(q);

	/* with c1 gone too, nothing is left to register: the replay is
	 * right but cannot be verified with replay, and verify says why */
	th_rmrf(c1);
	te_rc(0, lb_replay(fx->db, r3, to, cpm, &res));
	q = te_open(r3, LB_RDONLY);
	assert_int_equal(te_digest(q), d);
	memset(&src, 0, sizeof src);
	te_rc(0, lb_checkpoints(q, reg_cb, &src));
	assert_int_equal(src.n, 0);
	te_rc(0, lb_verify(q, 0, &rep));
	te_rc(LB_ECORRUPT, lb_verify(q, LB_VERIFY_REPLAY, &rep));
	assert_non_null(strstr(rep.detail, "cannot replay"));
	assert_int_equal(rep.bad_batch, at1);
	lb_close(q);

	th_rmrf(base);
	free(c1);
	free(cp);
	free(cpm);
	free(cr);
	free(ln);
	free(r1);
	free(r1b);
	free(r2);
	free(r3);
	free(base);
}

static void test_engine_prune__read_only_and_null(void **state)
{
	te_fx *fx = *state;
	te_rc(LB_EINVAL, lb_prune(NULL, 2));
	lb_close(fx->db);
	fx->db = te_open(fx->dir, LB_RDONLY);
	te_rc(LB_EINVAL, lb_prune(fx->db, 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, te_setup_t, te_teardown)
	        T(test_engine_prune__needs_a_checkpoint),
	        T(test_engine_prune__checkpoint_bounds_the_prune),
	        T(test_engine_prune__afterwards),
	        T(test_engine_prune__checkpoint_gone_from_disk),
	        T(test_engine_prune__checkpoint_of_pruned_verifies),
	        T(test_engine_prune__replay_of_pruned_checkpoint_verifies),
	        T(test_engine_prune__read_only_and_null),
#undef T
	};
	return cmocka_run_group_tests_name("engine_prune", tests, NULL, NULL);
}
