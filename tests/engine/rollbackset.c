/* SPDX-License-Identifier: MIT */
/*
 * lb_rollback_set(): several batches undone in one new batch. A set whose
 * newer batches changed the keys of its older ones goes through in strict
 * mode (newest first, all in one batch), where one lb_rollback() per batch
 * would conflict; a batch outside the set that changed a key is a CONFLICT
 * naming it, and nothing is written; LB_CASCADE takes that batch along;
 * LB_FORCE restores over it; LB_DRYRUN reports the same as the real call
 * and writes nothing; every batch of the set (and of the cascade) is
 * marked rolled back by the one new batch; foreign keys hold; rolling the
 * new batch back redoes the set; and bad arguments write nothing.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FX(state) ((te_fx *)*(state))

/* lb_rollback_set first with LB_DRYRUN, then for real: both return want
 * with the same record count and issues; the dry run writes nothing. */
static void set_dry_real(lb_db *db, const uint64_t *ids, size_t n,
                         unsigned flags, int want, lb_result *res)
{
	lb_result dry;
	uint64_t d = te_digest(db), last = te_last(db);
	te_rc(want, lb_rollback_set(db, ids, n, flags | LB_DRYRUN, &dry));
	assert_int_equal(dry.rc, want);
	assert_int_equal(dry.batch_id, 0);
	assert_int_equal(te_digest(db), d);
	assert_int_equal(te_last(db), last);
	te_rc(want, lb_rollback_set(db, ids, n, flags, res));
	assert_int_equal(res->rc, want);
	assert_int_equal(res->records, dry.records);
	assert_int_equal(res->nissues, dry.nissues);
	assert_int_equal(res->nundone, dry.nundone);
	for (size_t i = 0; i < dry.nundone; i++)
		assert_int_equal(res->undone[i], dry.undone[i]);
	for (size_t i = 0; i < dry.nissues; i++) {
		assert_int_equal(res->issues[i].kind, dry.issues[i].kind);
		assert_int_equal(res->issues[i].batch, dry.issues[i].batch);
	}
	if (want != 0) {
		assert_int_equal(res->batch_id, 0);
		assert_int_equal(te_digest(db), d);
		assert_int_equal(te_last(db), last);
	}
	lb_result_free(&dry);
}

/* A set whose batches change each other's keys: strict lb_rollback() of
 * the oldest conflicts, the set goes in one batch, newest first. */
static void test_engine_rollbackset__chained_set_in_one_batch(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;
	te_recs rs;

	uint64_t a = te_ops(db, "k0=base");
	uint64_t b1 = te_ops(db, "k1=a k2=a k0=b1");
	uint64_t b2 = te_ops(db, "k1=b -k2 k3=b");
	uint64_t b3 = te_ops(db, "k3=c k0=b3");

	/* one at a time, the oldest conflicts with its own run */
	te_rc(LB_ECONFLICT, lb_rollback(db, b1, LB_DRYRUN, &res));
	lb_result_free(&res);

	uint64_t ids[] = {b2, b1, b3, b2}; /* any order, repeats count once */
	set_dry_real(db, ids, 4, 0, 0, &res);
	uint64_t r = res.batch_id;
	assert_int_equal(r, b3 + 1);
	assert_int_equal(res.nissues, 0);
	assert_int_equal(res.records, 3 + 3 + 2);
	assert_int_equal(res.nundone, 3);
	assert_int_equal(res.undone[0], b3);
	assert_int_equal(res.undone[1], b2);
	assert_int_equal(res.undone[2], b1);
	lb_result_free(&res);

	te_assert_get_s(db, "t", "k0", "base");
	te_assert_absent_s(db, "t", "k1");
	te_assert_absent_s(db, "t", "k2");
	te_assert_absent_s(db, "t", "k3");

	lb_batch_info bi = te_info(db, r);
	assert_int_equal(bi.undoes, b3);
	assert_int_equal(bi.records, 8);
	char want[64];
	snprintf(want, sizeof want, "rollback of batches %llu, %llu, %llu",
	         (unsigned long long)b1, (unsigned long long)b2,
	         (unsigned long long)b3);
	assert_string_equal(bi.label, want);
	assert_int_equal(te_info(db, b1).rolled_back_by, r);
	assert_int_equal(te_info(db, b2).rolled_back_by, r);
	assert_int_equal(te_info(db, b3).rolled_back_by, r);
	assert_int_equal(te_info(db, a).rolled_back_by, 0);

	/* newest first: b3's records come first, b1's last */
	memset(&rs, 0, sizeof rs);
	te_changes(db, r, &rs);
	assert_int_equal(rs.n, 8);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "k0", "b3", "b1");
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "k3", "c", "b");
	te_assert_rec_s(&rs.v[7], LB_OP_DELETE, "t", "k1", "a", NULL);
	te_recs_free(&rs);

	/* undoing the new batch redoes the whole set */
	te_rc(0, lb_rollback(db, r, 0, &res));
	lb_result_free(&res);
	te_assert_get_s(db, "t", "k0", "b3");
	te_assert_get_s(db, "t", "k1", "b");
	te_assert_get_s(db, "t", "k3", "c");
	te_assert_absent_s(db, "t", "k2");
	assert_int_equal(te_info(db, b1).rolled_back_by, 0);
	assert_int_equal(te_info(db, b3).rolled_back_by, 0);
}

/* A batch outside the set in the way: strict conflicts naming it (not a
 * batch of the set), cascade takes it along, force restores over it. */
static void test_engine_rollbackset__outside_batch(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;

	uint64_t b1 = te_ops(db, "k1=a");
	uint64_t o = te_ops(db, "k1=o k9=o");
	uint64_t b2 = te_ops(db, "k1=b k2=b");
	uint64_t ids[] = {b1, b2};

	set_dry_real(db, ids, 2, 0, LB_ECONFLICT, &res);
	assert_int_equal(res.nissues, 1);
	assert_int_equal(res.issues[0].kind, LB_ISSUE_CONFLICT);
	assert_int_equal(res.issues[0].batch, o);
	assert_non_null(strstr(res.issues[0].message, "batch 2"));
	lb_result_free(&res);
	assert_int_equal(te_info(db, b1).rolled_back_by, 0);

	set_dry_real(db, ids, 2, LB_CASCADE, 0, &res);
	uint64_t r = res.batch_id;
	assert_int_equal(res.nundone, 3);
	assert_int_equal(res.undone[0], b2);
	assert_int_equal(res.undone[1], o);
	assert_int_equal(res.undone[2], b1);
	lb_result_free(&res);
	te_assert_absent_s(db, "t", "k1");
	te_assert_absent_s(db, "t", "k2");
	te_assert_absent_s(db, "t", "k9");
	assert_int_equal(te_info(db, o).rolled_back_by, r);

	/* redo, then force: k1 gets b1's before-image, o's k9 stays */
	te_rc(0, lb_rollback(db, r, 0, &res));
	lb_result_free(&res);
	set_dry_real(db, ids, 2, LB_FORCE, 0, &res);
	r = res.batch_id;
	lb_result_free(&res);
	te_assert_absent_s(db, "t", "k1");
	te_assert_absent_s(db, "t", "k2");
	te_assert_get_s(db, "t", "k9", "o");
	assert_int_equal(te_info(db, o).rolled_back_by, 0);
	assert_int_equal(te_info(db, b1).rolled_back_by, r);
}

/* Foreign keys hold: a set that removes a referenced key while a batch
 * outside it still refers to it is refused; with that batch in the set it
 * goes. */
static void test_engine_rollbackset__foreign_keys_hold(void **state)
{
	lb_db *db = FX(state)->db;
	lb_field pf[] = {{"name", LB_STR, 0, 0, NULL}};
	lb_field cf[] = {{"p", LB_STR, LB_REQUIRED, 0, "p"}};
	lb_schema ps = {pf, 1, 0}, cs = {cf, 1, 0};
	lb_batch *b;
	lb_result res;
	/* msgpack {"name":"x"} and {"p":"k"} */
	static const char pv[] = "\x81\xa4name\xa1x", cv[] = "\x81\xa1p\xa1k";

	te_rc(0, lb_table_create(db, "p", &ps));
	te_rc(0, lb_table_create(db, "c", &cs));
	te_rc(0, lb_batch_begin(db, "parent", &b));
	te_rc(0, lb_put(b, "p", "k", 1, pv, sizeof pv - 1));
	te_rc(0, lb_batch_commit(b, &res));
	uint64_t bp = res.batch_id;
	lb_result_free(&res);
	te_rc(0, lb_batch_begin(db, "other", &b));
	te_rc(0, lb_put(b, "p", "z", 1, pv, sizeof pv - 1));
	te_rc(0, lb_batch_commit(b, &res));
	uint64_t bo = res.batch_id;
	lb_result_free(&res);
	te_rc(0, lb_batch_begin(db, "child", &b));
	te_rc(0, lb_put(b, "c", "c1", 2, cv, sizeof cv - 1));
	te_rc(0, lb_batch_commit(b, &res));
	uint64_t bc = res.batch_id;
	lb_result_free(&res);

	uint64_t alone[] = {bp, bo};
	set_dry_real(db, alone, 2, 0, LB_EVALIDATION, &res);
	assert_true(res.nissues >= 1);
	assert_int_equal(res.issues[0].kind, LB_ISSUE_FOREIGN_KEY);
	lb_result_free(&res);
	te_assert_get(db, "p", "k", 1, pv, sizeof pv - 1);

	uint64_t both[] = {bc, bp};
	set_dry_real(db, both, 2, 0, 0, &res);
	lb_result_free(&res);
	te_assert_absent_s(db, "p", "k");
	te_assert_absent_s(db, "c", "c1");
	te_assert_get(db, "p", "z", 1, pv, sizeof pv - 1);
}

/* Bad arguments and states answer their code and write nothing. */
static void test_engine_rollbackset__errors_write_nothing(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;
	uint64_t b1 = te_ops(db, "k1=a");
	uint64_t b2 = te_ops(db, "k2=a");
	uint64_t d = te_digest(db), last = te_last(db);
	uint64_t ok[] = {b1, b2}, zero[] = {b1, 0}, past[] = {b2, b2 + 5};

	te_rc(LB_EINVAL, lb_rollback_set(NULL, ok, 2, 0, &res));
	assert_int_equal(res.rc, LB_EINVAL);
	lb_result_free(&res);
	te_rc(LB_EINVAL, lb_rollback_set(db, NULL, 2, 0, &res));
	lb_result_free(&res);
	te_rc(LB_EINVAL, lb_rollback_set(db, ok, 0, 0, &res));
	lb_result_free(&res);
	te_rc(LB_EINVAL, lb_rollback_set(db, ok, 2, 0x80, &res));
	lb_result_free(&res);
	te_rc(LB_EINVAL,
	      lb_rollback_set(db, ok, 2, LB_CASCADE | LB_FORCE, &res));
	lb_result_free(&res);
	te_rc(LB_ENOTFOUND, lb_rollback_set(db, zero, 2, 0, &res));
	lb_result_free(&res);
	te_rc(LB_ENOTFOUND, lb_rollback_set(db, past, 2, 0, NULL));
	assert_int_equal(te_digest(db), d);
	assert_int_equal(te_last(db), last);

	/* a batch that no longer stands */
	te_rc(0, lb_rollback(db, b2, 0, &res));
	lb_result_free(&res);
	d = te_digest(db);
	last = te_last(db);
	te_rc(LB_EINVAL, lb_rollback_set(db, ok, 2, 0, &res));
	assert_non_null(strstr(lb_errmsg(), "already rolled back"));
	lb_result_free(&res);
	assert_int_equal(te_digest(db), d);
	assert_int_equal(te_last(db), last);
	assert_int_equal(te_info(db, b1).rolled_back_by, 0);
}

/* A seeded random history: a random set rolled back with LB_CASCADE in
 * one batch marks every batch it lists, newest first, and rolling that
 * batch back gives the tables back exactly. Bounded; LB_TEST_LONG=1 runs
 * more rounds. */
static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Table "t" as text, "k=v;" in key order (malloc'd). */
static char *dump_t(lb_db *db)
{
	lb_snapshot *sn;
	lb_cursor *c;
	const void *k, *v;
	size_t kl, vl, len = 0;
	char *out = calloc(1, 1);
	assert_non_null(out);
	te_rc(0, lb_snapshot_open(db, &sn));
	te_rc(0, lb_cursor_open(sn, "t", &c));
	while (lb_cursor_next(c, &k, &kl, &v, &vl) == 0) {
		out = realloc(out, len + kl + vl + 3);
		assert_non_null(out);
		memcpy(out + len, k, kl);
		out[len + kl] = '=';
		memcpy(out + len + kl + 1, v, vl);
		len += kl + vl + 1;
		out[len++] = ';';
		out[len] = 0;
	}
	lb_cursor_close(c);
	lb_snapshot_close(sn);
	return out;
}

static void test_engine_rollbackset__random_sets_redo_exactly(void **state)
{
	lb_db *db = FX(state)->db;
	const char *lg = getenv("LB_TEST_LONG");
	int rounds = lg && *lg ? 40 : 8;
	uint64_t seed = 20261206;
	for (int round = 0; round < rounds; round++) {
		uint64_t s = seed + (uint64_t)round, first = te_last(db) + 1;
		uint64_t ids[8];
		size_t n = 0;
		lb_result res;
		for (int i = 0; i < 8; i++) {
			char spec[128];
			size_t len = 0;
			for (int j = 0; j < 3; j++)
				len += (size_t)snprintf(
				        spec + len, sizeof spec - len,
				        "%sr%02u=%u", j ? " " : "",
				        (unsigned)(splitmix(&s) % 12),
				        (unsigned)(splitmix(&s) % 100));
			uint64_t id = te_ops(db, spec);
			if (splitmix(&s) % 2)
				ids[n++] = id;
		}
		if (!n)
			ids[n++] = first;
		char *before = dump_t(db);
		int rc = lb_rollback_set(db, ids, n, LB_CASCADE, &res);
		if (rc != 0)
			fail_msg("seed %llu: rollback_set returned %d (%s)",
			         (unsigned long long)(seed + (uint64_t)round),
			         rc, lb_errmsg());
		uint64_t r = res.batch_id;
		for (size_t i = 0; i < n; i++)
			assert_int_equal(te_info(db, ids[i]).rolled_back_by, r);
		assert_true(res.nundone >= n);
		for (size_t i = 1; i < res.nundone; i++)
			assert_true(res.undone[i - 1] > res.undone[i]);
		lb_result_free(&res);
		/* rolling the rollback back restores the state exactly */
		te_rc(0, lb_rollback(db, r, 0, &res));
		lb_result_free(&res);
		char *after = dump_t(db);
		if (strcmp(after, before))
			fail_msg("seed %llu: redo differs",
			         (unsigned long long)(seed + (uint64_t)round));
		free(after);
		free(before);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, te_setup_t, te_teardown)
#define E(name) cmocka_unit_test_setup_teardown(name, te_setup, te_teardown)
	        T(test_engine_rollbackset__chained_set_in_one_batch),
	        T(test_engine_rollbackset__outside_batch),
	        E(test_engine_rollbackset__foreign_keys_hold),
	        T(test_engine_rollbackset__errors_write_nothing),
	        T(test_engine_rollbackset__random_sets_redo_exactly),
#undef T
#undef E
	};
	return cmocka_run_group_tests_name("engine_rollbackset", tests, NULL,
	                                   NULL);
}
