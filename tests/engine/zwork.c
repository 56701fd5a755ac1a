/* SPDX-License-Identifier: MIT */
/*
 * Compression on the worker (engine/zwork.c): whichever chunks of a
 * segment the worker deflated ahead, and whether its job was running, had
 * ended or was not there when the batch closed the segment or committed,
 * every segment of every batch must be byte for byte the one the batch's
 * own thread writes alone. Each history runs on a fresh database in four
 * ways: without the worker (as when it cannot start), with the worker as
 * it is, with its feeds slowed so that they still run at each close, and
 * with feeds that end after one chunk so that a close finds them ended.
 * Segments of 40,000 bytes hold two chunks and a half, so closes fall at
 * every point of a chunk.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h" /* db->zw, db->zw_failed, lb__zw_mode */

enum { INLINE, WORKER, SLOW, SHORT, NWAYS };
static const char *const way_name[NWAYS] = {"inline", "worker", "slow feeds",
                                            "one-chunk feeds"};

#define SEGSIZE 40000

/* Every segment of every batch, concatenated with their lengths. */
typedef struct segs {
	uint8_t *p;
	size_t len, cap;
	uint64_t digest;
	int had_worker;
} segs;

static void segs_add(segs *s, const void *p, size_t n)
{
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2;
		s->p = realloc(s->p, s->cap);
		assert_non_null(s->p);
	}
	memcpy(s->p + s->len, p, n);
	s->len += n;
}

static void collect_segments(lb_db *db, segs *out)
{
	MDB_txn *txn;
	assert_int_equal(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn), 0);
	for (uint64_t id = 1; id <= te_last(db); id++) {
		lb_batch_info bi = te_info(db, id);
		for (uint32_t s = 0; s < bi.segments; s++) {
			MDB_val v;
			te_rc(0, lb__segment_get(db, txn, id, s, &v));
			uint64_t n = v.mv_size;
			segs_add(out, &n, sizeof n);
			segs_add(out, v.mv_data, v.mv_size);
		}
	}
	mdb_txn_abort(txn);
}

/* A value of n bytes: words drawn by a seeded generator, compressible
 * like the text of records. */
static size_t value(uint64_t *rng, char *v, size_t n)
{
	static const char *const words[] = {
	        "hearing", "witness", "document", "committee", "of",
	        "the",     "budget",  "energy",   "2024",      "oversight"};
	size_t len = 0;
	while (len < n) {
		*rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
		const char *w = words[(*rng >> 33) % 10];
		size_t wl = strlen(w);
		if (len + wl + 1 > n)
			wl = n - len - 1;
		memcpy(v + len, w, wl);
		len += wl;
		v[len++] = ' ';
	}
	return n;
}

static void puts_n(lb_batch *b, uint64_t *rng, const char *prefix, int from,
                   int n, size_t vmax)
{
	char k[32];
	char *v = malloc(vmax);
	assert_non_null(v);
	for (int i = from; i < from + n; i++) {
		snprintf(k, sizeof k, "%s%06d", prefix, i);
		size_t vl = 100 + (size_t)(*rng >> 40) % (vmax - 100);
		value(rng, v, vl);
		te_rc(0, lb_put(b, "t", k, strlen(k), v, vl));
	}
	free(v);
}

/* The history: many segments per batch; a record far larger than the
 * segment, which grows the writer's buffer while a feed may run; a batch
 * abandoned half-way; a rollback, whose records come through the other
 * path to the log; batches of one record and of exactly one segment. */
static void history(lb_db *db)
{
	uint64_t rng = 42;
	lb_batch *b;
	lb_result res;
	te_rc(0, lb_table_create(db, "t", NULL));

	te_rc(0, lb_batch_begin(db, "many segments", &b));
	puts_n(b, &rng, "a", 0, 3000, 400);
	te_rc(0, lb_batch_commit(b, NULL));
	assert_true(te_info(db, te_last(db)).segments >= 10);

	te_rc(0, lb_batch_begin(db, "a large record", &b));
	puts_n(b, &rng, "b", 0, 150, 400);
	puts_n(b, &rng, "c", 0, 1, 300000);
	puts_n(b, &rng, "b", 150, 150, 400);
	te_rc(0, lb_batch_commit(b, NULL));

	te_rc(0, lb_batch_begin(db, "abandoned", &b));
	puts_n(b, &rng, "d", 0, 500, 400);
	lb_batch_abort(b);

	te_rc(0, lb_batch_begin(db, "after the abandoned one", &b));
	puts_n(b, &rng, "a", 100, 700, 400);
	te_rc(0, lb_batch_commit(b, NULL));

	te_rc(0, lb_rollback(db, 2, LB_FORCE, &res));
	lb_result_free(&res);

	te_rc(0, lb_batch_begin(db, "one record", &b));
	puts_n(b, &rng, "e", 0, 1, 400);
	te_rc(0, lb_batch_commit(b, NULL));

	te_rc(0, lb_batch_begin(db, "one segment", &b));
	puts_n(b, &rng, "f", 0, 110, 400);
	te_rc(0, lb_batch_commit(b, NULL));
}

static void run_way(int way, segs *out)
{
	char *dir = th_tmpdir();
	lb_db *db = te_open_segments(dir, SEGSIZE);
	db->zw_failed = way == INLINE;
	lb__zw_mode = way == SLOW ? 1 : way == SHORT ? 2 : 0;
	history(db);
	lb__zw_mode = 0;
	memset(out, 0, sizeof *out);
	out->had_worker = db->zw != NULL;
	collect_segments(db, out);
	out->digest = te_digest(db);
	lb_verify_report rep;
	te_rc(0, lb_verify(db, 0, &rep));
	lb_close(db);
	th_rmrf(dir);
	free(dir);
}

static void test_engine_zwork__same_segments_every_way(void **state)
{
	(void)state;
	segs s[NWAYS];
	for (int w = 0; w < NWAYS; w++)
		run_way(w, &s[w]);
	assert_false(s[INLINE].had_worker);
	for (int w = 1; w < NWAYS; w++) {
		if (!s[w].had_worker)
			fail_msg("%s: no compression worker was started",
			         way_name[w]);
		if (s[w].len != s[INLINE].len ||
		    memcmp(s[w].p, s[INLINE].p, s[w].len) != 0)
			fail_msg("%s: the segments differ from those written "
			         "inline (%zu against %zu bytes)",
			         way_name[w], s[w].len, s[INLINE].len);
		assert_true(s[w].digest == s[INLINE].digest);
	}
	for (int w = 0; w < NWAYS; w++)
		free(s[w].p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_engine_zwork__same_segments_every_way),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
