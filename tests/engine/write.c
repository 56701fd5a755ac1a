/* SPDX-License-Identifier: MIT */
/*
 * The write path's shortcuts, each against a plain model: keys past a
 * table's last key are appended (LMDB's MDB_APPEND) rather than searched
 * for, every op searches its table once (the positioned cursor), and full
 * segments are compressed on a second thread while the batch goes on.
 * Each must leave exactly what the slow path would: the same keys in the
 * same order, the same values, segments in order, a log that verifies and
 * replays to the same database.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a sorted model of one table ----------------------------------------- */

typedef struct mkv {
	uint8_t k[64];
	size_t kl;
	uint8_t v[200];
	size_t vl;
} mkv;

typedef struct model {
	mkv *e;
	size_t n, cap;
} model;

static int kcmp(const void *a, size_t al, const void *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = memcmp(a, b, n);
	return c ? c : (al < bl ? -1 : al > bl);
}

static mkv *m_find(model *m, const void *k, size_t kl)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->e[i].kl == kl && memcmp(m->e[i].k, k, kl) == 0)
			return &m->e[i];
	return NULL;
}

static void m_put(model *m, const void *k, size_t kl, const void *v, size_t vl)
{
	mkv *e = m_find(m, k, kl);
	if (!e) {
		if (m->n == m->cap) {
			m->cap = m->cap ? 2 * m->cap : 64;
			m->e = realloc(m->e, m->cap * sizeof *m->e);
			assert_non_null(m->e);
		}
		e = &m->e[m->n++];
		memcpy(e->k, k, kl);
		e->kl = kl;
	}
	memcpy(e->v, v, vl);
	e->vl = vl;
}

static void m_del(model *m, const void *k, size_t kl)
{
	mkv *e = m_find(m, k, kl);
	if (e)
		*e = m->e[--m->n];
}

static int mkv_cmp(const void *a, const void *b)
{
	const mkv *x = a, *y = b;
	return kcmp(x->k, x->kl, y->k, y->kl);
}

/* The table holds exactly the model, in LMDB's key order. */
static void assert_table(lb_db *db, const char *table, model *m)
{
	lb_snapshot *s;
	lb_cursor *c;
	const void *k, *v;
	size_t kl, vl, i = 0;
	int rc;
	qsort(m->e, m->n, sizeof *m->e, mkv_cmp);
	te_rc(0, lb_snapshot_open(db, &s));
	te_rc(0, lb_cursor_open(s, table, &c));
	for (rc = lb_cursor_next(c, &k, &kl, &v, &vl); rc == 0;
	     rc = lb_cursor_next(c, &k, &kl, &v, &vl), i++) {
		assert_true(i < m->n);
		assert_int_equal(kl, m->e[i].kl);
		assert_memory_equal(k, m->e[i].k, kl);
		assert_int_equal(vl, m->e[i].vl);
		assert_memory_equal(v, m->e[i].v, vl);
	}
	assert_int_equal(rc, LB_ENOTFOUND);
	assert_int_equal(i, m->n);
	lb_cursor_close(c);
	lb_snapshot_close(s);
}

static void assert_verifies(lb_db *db)
{
	lb_verify_report rep;
	memset(&rep, 0, sizeof rep);
	te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
	assert_int_equal(rep.bad_batch, 0);
	assert_true(rep.chain_ok && rep.replay_ok);
}

static lb_batch *begin(lb_db *db)
{
	lb_batch *b = NULL;
	te_rc(0, lb_batch_begin(db, NULL, &b));
	return b;
}

static void commit(lb_batch *b)
{
	lb_result res;
	memset(&res, 0, sizeof res);
	te_rc(0, lb_batch_commit(b, &res));
	lb_result_free(&res);
}

/* ---- tail appends -------------------------------------------------------- */

/* Keys that are prefixes of one another, the empty-tail case, a deleted
 * tail, keys before the tail and past it in one batch: the append
 * shortcut's comparison must be LMDB's own order (shorter first on a tie).
 */
static void test_engine_write__append_past_tail_in_key_order(void **state)
{
	te_fx *fx = *state;
	model m = {0};
	static const struct {
		const char *k;
		size_t kl;
		int del;
	} ops[] = {
	        {"b", 1, 0},    {"b\0", 2, 0},      {"ba", 2, 0},
	        {"a", 1, 0},    {"bb", 2, 0},       {"bb", 2, 1},
	        {"bab", 3, 0},  {"c", 1, 0},        {"c\xff", 2, 0},
	        {"c", 1, 1},    {"c\xff", 2, 1},    {"c\x01", 2, 0},
	        {"\xff", 1, 0}, {"\xff\xff", 2, 0}, {"", 0, 0},
	};
	/* one op per batch (the tail is looked up afresh), then all again
	 * in one batch (the tail carried along inside it) */
	for (int round = 0; round < 2; round++) {
		lb_batch *b = round ? begin(fx->db) : NULL;
		for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
			char v[32];
			int vl = snprintf(v, sizeof v, "r%d-%zu", round, i);
			if (ops[i].kl == 0)
				continue; /* an empty key is refused */
			if (!round)
				b = begin(fx->db);
			if (ops[i].del) {
				te_rc(0,
				      lb_delete(b, "t", ops[i].k, ops[i].kl));
				m_del(&m, ops[i].k, ops[i].kl);
			} else {
				te_rc(0, lb_put(b, "t", ops[i].k, ops[i].kl, v,
				                (size_t)vl));
				m_put(&m, ops[i].k, ops[i].kl, v, (size_t)vl);
			}
			if (!round)
				commit(b);
		}
		if (round)
			commit(b);
		assert_table(fx->db, "t", &m);
	}
	assert_verifies(fx->db);
	free(m.e);
}

/* Ascending inserts (all appended), then inserts into the middle and
 * updates, then a rollback of the ascending batch and of the rollback:
 * the table is the model at each step. */
static void test_engine_write__ascending_then_middle(void **state)
{
	te_fx *fx = *state;
	model m = {0};
	lb_batch *b = begin(fx->db);
	for (int i = 0; i < 3000; i += 2) {
		char k[16], v[16];
		int kl = snprintf(k, sizeof k, "k%06d", i);
		int vl = snprintf(v, sizeof v, "a%d", i);
		te_rc(0, lb_insert(b, "t", k, (size_t)kl, v, (size_t)vl));
		m_put(&m, k, (size_t)kl, v, (size_t)vl);
	}
	commit(b);
	uint64_t asc = te_last(fx->db);
	assert_table(fx->db, "t", &m);

	model m0 = {0};
	m0.e = malloc(m.n * sizeof *m.e);
	assert_non_null(m0.e);
	memcpy(m0.e, m.e, m.n * sizeof *m.e);
	m0.n = m0.cap = m.n;

	b = begin(fx->db);
	for (int i = 1; i < 3000; i += 4) { /* between existing keys */
		char k[16], v[16];
		int kl = snprintf(k, sizeof k, "k%06d", i);
		int vl = snprintf(v, sizeof v, "m%d", i);
		te_rc(0, lb_insert(b, "t", k, (size_t)kl, v, (size_t)vl));
		m_put(&m, k, (size_t)kl, v, (size_t)vl);
	}
	for (int i = 3000; i < 3100; i++) { /* past the tail again */
		char k[16], v[16];
		int kl = snprintf(k, sizeof k, "k%06d", i);
		int vl = snprintf(v, sizeof v, "t%d", i);
		te_rc(0, lb_insert(b, "t", k, (size_t)kl, v, (size_t)vl));
		m_put(&m, k, (size_t)kl, v, (size_t)vl);
	}
	commit(b);
	uint64_t mid = te_last(fx->db);
	assert_table(fx->db, "t", &m);

	/* undo the middle batch: back to m0; redo it: back to m */
	lb_result res;
	memset(&res, 0, sizeof res);
	te_rc(0, lb_rollback(fx->db, mid, 0, &res));
	uint64_t r = res.batch_id;
	lb_result_free(&res);
	assert_table(fx->db, "t", &m0);
	te_rc(0, lb_rollback(fx->db, r, 0, &res));
	lb_result_free(&res);
	assert_table(fx->db, "t", &m);
	assert_true(asc < mid);
	assert_verifies(fx->db);
	free(m.e);
	free(m0.e);
}

/* ---- segments compressed on the worker ----------------------------------- */

static void reopen(te_fx *fx, size_t segsize, uint64_t map)
{
	lb_options o;
	lb_close(fx->db);
	lb_options_init(&o);
	o.flags = LB_NOSYNC;
	o.segment_size = segsize;
	o.map_size = map;
	fx->db = te_open_opts(fx->dir, &o);
}

static size_t val_of(uint64_t *rng, unsigned i, char *v, size_t cap)
{
	size_t n = 40 + th_below(rng, 120);
	if (n > cap)
		n = cap;
	for (size_t j = 0; j < n; j++)
		v[j] = (char)('a' + (i + j * 7 + th_below(rng, 3)) % 26);
	return n;
}

/* Many small segments per batch: they reach the log in order (the change
 * records come back in op order), the counts add up, and the log verifies
 * and replays. */
static void test_engine_write__many_segments_in_order(void **state)
{
	te_fx *fx = *state;
	uint64_t rng = th_seed(0x5e65);
	model m = {0};
	reopen(fx, 256, 0);
	for (int batch = 0; batch < 4; batch++) {
		lb_batch *b = begin(fx->db);
		unsigned n = 500 + (unsigned)th_below(&rng, 1000);
		for (unsigned i = 0; i < n; i++) {
			char k[16], v[200];
			int kl = snprintf(k, sizeof k, "s%05u",
			                  (unsigned)th_below(&rng, 3000));
			size_t vl = val_of(&rng, i, v, sizeof v);
			te_rc(0, lb_put(b, "t", k, (size_t)kl, v, vl));
			m_put(&m, k, (size_t)kl, v, vl);
		}
		commit(b);
		uint64_t id = te_last(fx->db);
		lb_batch_info bi;
		te_rc(0, lb_batch_info_get(fx->db, id, &bi));
		assert_int_equal(bi.records, n);
		assert_true(bi.segments >= bi.raw_bytes / 2048);
		te_recs recs;
		memset(&recs, 0, sizeof recs);
		te_changes(fx->db, id, &recs);
		assert_int_equal(recs.n, n);
		te_recs_free(&recs);
	}
	assert_table(fx->db, "t", &m);
	assert_verifies(fx->db);
	free(m.e);
}

/* A batch aborted while a segment is being compressed leaves nothing, and
 * the next batch (reusing the writers) commits whole. */
static void test_engine_write__abort_with_segment_in_flight(void **state)
{
	te_fx *fx = *state;
	uint64_t rng = th_seed(0xab07);
	reopen(fx, 256, 0);
	uint64_t before = te_digest(fx->db), last = te_last(fx->db);
	for (int round = 0; round < 20; round++) {
		lb_batch *b = begin(fx->db);
		unsigned n = 1 + (unsigned)th_below(&rng, 300);
		for (unsigned i = 0; i < n; i++) {
			char k[16], v[200];
			int kl = snprintf(k, sizeof k, "x%05u", i);
			size_t vl = val_of(&rng, i, v, sizeof v);
			te_rc(0, lb_put(b, "t", k, (size_t)kl, v, vl));
		}
		lb_batch_abort(b);
		assert_int_equal(te_digest(fx->db), before);
		assert_int_equal(te_last(fx->db), last);
	}
	model m = {0};
	lb_batch *b = begin(fx->db);
	for (unsigned i = 0; i < 400; i++) {
		char k[16], v[200];
		int kl = snprintf(k, sizeof k, "y%05u", i);
		size_t vl = val_of(&rng, i, v, sizeof v);
		te_rc(0, lb_put(b, "t", k, (size_t)kl, v, vl));
		m_put(&m, k, (size_t)kl, v, vl);
	}
	commit(b);
	assert_table(fx->db, "t", &m);
	assert_verifies(fx->db);
	free(m.e);
}

/* A batch that fills a tiny map is redone after the map grows (grow.c),
 * with segments in flight and tails and cursors of the first transaction
 * dropped: the result is exactly the batch. */
static void test_engine_write__regrow_mid_batch(void **state)
{
	te_fx *fx = *state;
	uint64_t rng = th_seed(0x6e0b);
	model m = {0};
	reopen(fx, 1024, 64u << 10);
	for (int batch = 0; batch < 3; batch++) {
		lb_batch *b = begin(fx->db);
		for (unsigned i = 0; i < 3000; i++) {
			char k[16], v[200];
			/* ascending (appended) and scattered keys */
			unsigned key = i % 3 ? (unsigned)batch * 3000 + i
			                     : (unsigned)th_below(&rng, 9000);
			int kl = snprintf(k, sizeof k, "g%06u", key);
			size_t vl = val_of(&rng, i, v, sizeof v);
			te_rc(0, lb_put(b, "t", k, (size_t)kl, v, vl));
			m_put(&m, k, (size_t)kl, v, vl);
		}
		commit(b);
		assert_table(fx->db, "t", &m);
	}
	assert_verifies(fx->db);
	free(m.e);
}

/* lb_history callback: the first change met (the newest batch's first
 * record of the key), then stop. */
typedef struct first_change {
	uint64_t batch;
	int op;
} first_change;

static int first_of(void *ctx, uint64_t batch, const lb_change *c)
{
	first_change *f = ctx;
	f->batch = batch;
	f->op = c->op;
	return 1;
}

/* Deletions note the key in `_gone` through a cursor the batch keeps for
 * its transaction. A batch that deletes thousands of keys, last first (as
 * a rollback of their inserts does), puts some back and deletes some of
 * those again, among new keys, on a map too small for it (grown and redone
 * mid-batch, which ends the transaction and its cursors): the table holds
 * exactly what is left, the history of every key starts at the batch (through
 * `_gone` for those it left deleted), and the log verifies and replays. */
static void test_engine_write__deletes_regrow_mid_batch(void **state)
{
	te_fx *fx = *state;
	uint64_t rng = th_seed(0xde1e);
	model m = {0};
	char k[16], v[200];
	lb_batch *b = begin(fx->db);
	for (unsigned i = 0; i < 3000; i++) {
		int kl = snprintf(k, sizeof k, "d%05u", i);
		size_t vl = val_of(&rng, i, v, sizeof v);
		te_rc(0, lb_put(b, "t", k, (size_t)kl, v, vl));
		m_put(&m, k, (size_t)kl, v, vl);
	}
	commit(b);
	reopen(fx, 1024, 64u << 10);
	b = begin(fx->db);
	for (unsigned i = 3000; i-- > 0;) {
		int kl = snprintf(k, sizeof k, "d%05u", i);
		te_rc(0, lb_delete(b, "t", k, (size_t)kl));
		m_del(&m, k, (size_t)kl);
		/* and new keys, so that the map fills in the middle */
		for (unsigned j = 0; j < 3; j++) {
			char nk[16];
			int nl = snprintf(nk, sizeof nk, "e%05u", 3 * i + j);
			size_t vl = val_of(&rng, i, v, sizeof v);
			te_rc(0, lb_put(b, "t", nk, (size_t)nl, v, vl));
			m_put(&m, nk, (size_t)nl, v, vl);
		}
		if (i % 10 == 0) {
			size_t vl = val_of(&rng, i, v, sizeof v);
			te_rc(0, lb_put(b, "t", k, (size_t)kl, v, vl));
			m_put(&m, k, (size_t)kl, v, vl);
		}
		if (i % 20 == 0) {
			te_rc(0, lb_delete(b, "t", k, (size_t)kl));
			m_del(&m, k, (size_t)kl);
		}
	}
	commit(b);
	uint64_t id = te_last(fx->db);
	assert_table(fx->db, "t", &m);
	for (unsigned i = 0; i < 3000; i += 7) {
		first_change f = {0, 0};
		int kl = snprintf(k, sizeof k, "d%05u", i);
		te_rc(1, lb_history(fx->db, "t", k, (size_t)kl, first_of, &f));
		assert_int_equal(f.batch, id);
		assert_int_equal(f.op, LB_OP_DELETE); /* its first record */
	}
	assert_verifies(fx->db);
	free(m.e);
}

/* ---- grouped replay ------------------------------------------------------ */

extern uint64_t lb__replay_map; /* engine/replay.c, for tests */

/* A replay commits many batches per transaction. On a tiny map it must
 * grow and redo the group, headers, table creations and rollback marks
 * included: the result equals the source and verifies. */
static void test_engine_write__grouped_replay_grows_and_redoes(void **state)
{
	te_fx *fx = *state;
	uint64_t rng = th_seed(0x9e91);
	lb_result res;
	for (int batch = 0; batch < 40; batch++) {
		if (batch == 10)
			te_rc(0, lb_table_create(fx->db, "u", NULL));
		lb_batch *b = begin(fx->db);
		for (unsigned i = 0; i < 200; i++) {
			char k[16], v[200];
			int kl = snprintf(k, sizeof k, "r%05u",
			                  (unsigned)th_below(&rng, 4000));
			size_t vl = val_of(&rng, i, v, sizeof v);
			const char *t = batch >= 10 && i % 2 ? "u" : "t";
			te_rc(0, lb_put(b, t, k, (size_t)kl, v, vl));
		}
		commit(b);
		/* undo it: a mark inside the replay; strict rollbacks'
		 * histories are implied (_undo), forced ones' listed, and
		 * the journal of a group redone after growth keeps which */
		if (batch % 7 == 6 || batch % 7 == 3) {
			memset(&res, 0, sizeof res);
			te_rc(0,
			      lb_rollback(fx->db, te_last(fx->db),
			                  batch % 7 == 3 ? LB_FORCE : 0, &res));
			lb_result_free(&res);
		}
	}
	uint64_t want = te_digest(fx->db);
	char *dst = th_path(fx->dir, "replayed");
	lb__replay_map = 64u << 10;
	memset(&res, 0, sizeof res);
	int rc = lb_replay(fx->db, dst, 0, NULL, &res);
	lb__replay_map = 0;
	te_rc(0, rc);
	lb_result_free(&res);
	lb_options o;
	lb_options_init(&o);
	o.flags = LB_NOSYNC;
	lb_db *r = te_open_opts(dst, &o);
	assert_int_equal(te_digest(r), want);
	for (uint64_t id = 1; id <= te_last(fx->db); id++) {
		lb_batch_info a, c;
		te_rc(0, lb_batch_info_get(fx->db, id, &a));
		te_rc(0, lb_batch_info_get(r, id, &c));
		assert_memory_equal(a.hash, c.hash, 32);
		assert_int_equal(a.rolled_back_by, c.rolled_back_by);
	}
	assert_verifies(r);
	lb_close(r);
	th_rmrf(dst);
	free(dst);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, te_setup_t, te_teardown)
	const struct CMUnitTest tests[] = {
	        T(test_engine_write__append_past_tail_in_key_order),
	        T(test_engine_write__ascending_then_middle),
	        T(test_engine_write__many_segments_in_order),
	        T(test_engine_write__abort_with_segment_in_flight),
	        T(test_engine_write__regrow_mid_batch),
	        T(test_engine_write__deletes_regrow_mid_batch),
	        T(test_engine_write__grouped_replay_grows_and_redoes),
#undef T
	};
	return cmocka_run_group_tests_name("engine_write", tests, NULL, NULL);
}
