/* SPDX-License-Identifier: MIT */
/*
 * Model-based randomized test of rollback: thousands of random steps over a
 * small key space (so that conflicts are common) on a live database and on
 * the plain in-memory model of _model.h. Steps: batches of random puts,
 * inserts, updates and deletes (some refused: duplicates, missing keys,
 * schema and foreign-key violations); strict, cascade, force and dry-run
 * rollbacks of random past batches (and refused ones); rollback_to; close
 * and reopen with other segment sizes and compression levels. After every
 * step the tables are compared through cursors, as are the headers of the
 * recent batches; the whole log (every batch's header state and records) is
 * compared periodically and at the end.
 *
 * Seeded (LB_TEST_SEED, printed on failure); LB_MODEL_STEPS sets the number
 * of steps (default 3000).
 */
#define _GNU_SOURCE
#include "_common.h"
#include "_model.h"

#include <stdio.h>
#include <stdlib.h>

static lb_db *open_model_db(const char *dir, tm_model *m, uint64_t seed)
{
	lb_options o;
	lb_options_init(&o);
	o.flags = LB_CREATE | LB_NOSYNC;
	/* small segments: rollbacks of rollbacks span several segments */
	o.segment_size = (seed & 1) ? 256 : 0;
	o.compression = (seed & 2) ? 0 : -1;
	m->opts = o;
	m->opts.flags = LB_NOSYNC;
	return te_open_opts(dir, &o);
}

static void summary(const char *name, const tm_model *m)
{
	fprintf(stderr,
	        "%s: %llu steps, %llu batches: %lu user batches (%lu "
	        "refused), %lu rollbacks (%lu forced, %lu cascades "
	        "undoing %lu later batches), %lu conflicts, %lu refused "
	        "for foreign keys, %lu with nothing to restore, %lu dry "
	        "runs, %lu rollback_to, %lu reopens, %lu refused calls\n",
	        name, (unsigned long long)m->steps, (unsigned long long)m->nb,
	        m->stats.batches, m->stats.rejected, m->stats.rollbacks,
	        m->stats.forced, m->stats.cascades, m->stats.cascade_members,
	        m->stats.conflicts, m->stats.fk_refused, m->stats.noops,
	        m->stats.dryruns, m->stats.rollback_tos, m->stats.reopens,
	        m->stats.errors);
}

static void test_engine_model__random_history(void **state)
{
	(void)state;
	uint64_t seed = th_seed(0x6c6f67626f6f6b01ull), rng = seed;
	long steps = th_env_long("LB_MODEL_STEPS", 3000);
	char *dir = th_tmpdir();
	tm_model *m = tm_new(0);
	lb_db *db = open_model_db(dir, m, seed);

	tm_setup(m, db);
	for (long i = 0; i < steps; i++) {
		tm_step(m, &db, dir, &rng, TM_STEP_ALL);
		tm_assert_db(m, db);
		tm_assert_recent(m, db, 48);
		if (i % 250 == 249)
			tm_assert_log(m, db);
	}
	tm_assert_log(m, db);
	/* the model's random mix did exercise what it is for */
	if (steps >= 1000) {
		th_assert_seeded(m->stats.conflicts > 0);
		th_assert_seeded(m->stats.cascades > 0);
		th_assert_seeded(m->stats.forced > 0);
		th_assert_seeded(m->stats.rollback_tos > 0);
		th_assert_seeded(m->stats.reopens > 0);
	}
	summary("random_history", m);
	lb_close(db);
	tm_free(m);
	th_rmrf(dir);
	free(dir);
}

/* rollback_to(X) gives back exactly the state recorded right after X,
 * however much happened since (rollbacks and rollback_to included). */
static void test_engine_model__rollback_to_restores_recorded_state(void **state)
{
	(void)state;
	uint64_t seed = th_seed(0x6c6f67626f6f6b02ull), rng = seed;
	long rounds = th_env_long("LB_MODEL_STEPS", 3000) / 30;
	char *dir = th_tmpdir();
	tm_model *m = tm_new(1);
	lb_db *db = open_model_db(dir, m, seed);

	tm_setup(m, db);
	for (long r = 0; r < rounds; r++) {
		long n = 5 + (long)th_below(&rng, 30);
		for (long i = 0; i < n; i++)
			tm_step(m, &db, dir, &rng,
			        TM_STEP_BATCH | TM_STEP_ROLLBACK |
			                TM_STEP_REOPEN);
		uint64_t x =
		        TM_SETUP + th_below(&rng, tm_last(m) - TM_SETUP + 1);
		tm_state want = *tm_state_at(m, x);
		m->steps++;
		th_assert_seeded(tm_rollback_to(m, db, x) == 0);
		tm_assert_state(&want, db);
		tm_assert_db(m, db);
	}
	tm_assert_log(m, db);
	lb_close(db);
	tm_free(m);
	th_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_engine_model__random_history),
	        cmocka_unit_test(
	                test_engine_model__rollback_to_restores_recorded_state),
	};
	return cmocka_run_group_tests_name("engine_model", tests, NULL, NULL);
}
