/* SPDX-License-Identifier: MIT */
/*
 * Read-ahead (engine/readahead.c): a rollback reads the next segment of the
 * batch it undoes on a second thread, and a replay the next segment of the
 * log. Whoever reads a segment, the outcome must be exactly the one of a
 * rollback or replay that reads every segment itself: the same records,
 * the same state, the same conflicts, and, when a segment is damaged or
 * missing, the same error with the same detail after the same conflicts.
 * Each scenario runs on a fresh database with the same history in five
 * ways: without the worker (as when it cannot start), with every segment
 * left to the worker, with every segment taken back by the caller's own
 * thread, with no constraint, and with every segment left to the worker
 * and every key of a rollback's segments looked up there (the prefetch,
 * which otherwise stops when the rollback collects the segment). Segments
 * of 256 bytes make the batches span dozens of them.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h" /* db->ra, db->ra_failed, lb__ra_* */

enum { INLINE, WORKER, CALLER, EITHER, PREFETCH, NWAYS };
static const char *const way_name[NWAYS] = {"inline", "worker", "caller",
                                            "either", "prefetch"};

/* What a scenario leaves, to compare across the ways. */
typedef struct outcome {
	int rc;
	char err[512];
	size_t nissues_total;
	char *issues;  /* every kept issue, as text */
	char *records; /* the records of the batches written, as text */
	uint64_t digest;
	int had_worker; /* a worker thread existed after the rollbacks */
} outcome;

static void outcome_free(outcome *o)
{
	free(o->issues);
	free(o->records);
	memset(o, 0, sizeof *o);
}

/* Append printf-style text to a malloc'd string. */
static void cat(char **s, const char *fmt, ...)
{
	va_list ap;
	char *add = NULL, *n = NULL;
	va_start(ap, fmt);
	assert_true(vasprintf(&add, fmt, ap) >= 0);
	va_end(ap);
	assert_true(asprintf(&n, "%s%s", *s ? *s : "", add) >= 0);
	free(add);
	free(*s);
	*s = n;
}

static void cat_bytes(char **s, const void *p, size_t n, int present)
{
	if (!present) {
		cat(s, " nil");
		return;
	}
	cat(s, " '%.*s'", (int)n, (const char *)p);
}

static void dump_batch(lb_db *db, uint64_t id, char **out)
{
	te_recs r = {0};
	te_changes(db, id, &r);
	cat(out, "batch %llu: %zu records\n", (unsigned long long)id, r.n);
	for (size_t i = 0; i < r.n; i++) {
		cat(out, "%d %s", r.v[i].op, r.v[i].table);
		cat_bytes(out, r.v[i].key, r.v[i].klen, 1);
		cat_bytes(out, r.v[i].before, r.v[i].blen, r.v[i].has_before);
		cat_bytes(out, r.v[i].after, r.v[i].alen, r.v[i].has_after);
		cat(out, "\n");
	}
	te_recs_free(&r);
}

/* The call's outcome, appended to o->issues; o->rc is the last call's,
 * o->err the first error's detail. */
static void keep_result(outcome *o, int rc, const lb_result *res)
{
	o->rc = rc;
	if (rc < 0 && !o->err[0])
		snprintf(o->err, sizeof o->err, "%s", lb_errmsg());
	o->nissues_total += res->nissues_total;
	cat(&o->issues, "rc %d (%s), %zu issues\n", rc,
	    rc < 0 ? lb_errmsg() : "", res->nissues_total);
	for (size_t i = 0; i < res->nissues; i++) {
		const lb_issue *is = &res->issues[i];
		cat(&o->issues, "%d %s '%.*s' %llu %s\n", (int)is->kind,
		    is->table, (int)is->klen, (const char *)is->key,
		    (unsigned long long)is->batch, is->message);
	}
}

/* ---- the history ----------------------------------------------------------
 */

static void put(lb_batch *b, const char *k, const char *v)
{
	te_rc(0, lb_put(b, "t", k, strlen(k), v, strlen(v)));
}

/* Batch 2 inserts k000..k199; batch 3, the one rolled back, updates
 * k000..k099 (k000..k019 twice), deletes k100..k149 and inserts
 * n000..n099, all mixed so that each segment holds several kinds. */
static void history(lb_db *db)
{
	lb_batch *b;
	char k[16], v[64];
	te_rc(0, lb_table_create(db, "t", NULL));
	te_rc(0, lb_batch_begin(db, "base", &b));
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		snprintf(v, sizeof v, "value of %s, first version", k);
		put(b, k, v);
	}
	te_rc(0, lb_batch_commit(b, NULL));
	te_rc(0, lb_batch_begin(db, "target", &b));
	for (int i = 0; i < 100; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		snprintf(v, sizeof v, "value of %s, second version", k);
		put(b, k, v);
		if (i < 50) {
			snprintf(k, sizeof k, "k%03d", 100 + i);
			te_rc(0, lb_delete(b, "t", k, strlen(k)));
		}
		snprintf(k, sizeof k, "n%03d", i);
		snprintf(v, sizeof v, "new key %s", k);
		put(b, k, v);
		if (i < 20) {
			snprintf(k, sizeof k, "k%03d", i);
			snprintf(v, sizeof v, "value of %s, third version", k);
			put(b, k, v);
		}
	}
	te_rc(0, lb_batch_commit(b, NULL));
	assert_true(te_info(db, 3).segments >= 20);
}

/* ---- running a scenario in every way ---------------------------------------
 */

typedef void (*damage_fn)(const char *dir);
typedef void (*scenario_fn)(lb_db *db, outcome *o);

static void run_way(int way, damage_fn damage, scenario_fn fn, outcome *o)
{
	char *dir = th_tmpdir();
	lb_db *db = te_open_segments(dir, 256);
	history(db);
	if (damage) {
		lb_close(db);
		damage(dir);
		db = te_open_segments(dir, 256);
	}
	/* a replay's worker is its new database's: mode 3 turns it off */
	db->ra_failed = way == INLINE;
	lb__ra_mode = way == INLINE                      ? 3
	              : way == WORKER || way == PREFETCH ? 2
	              : way == CALLER                    ? 1
	                                                 : 0;
	lb__ra_prefetch = way == PREFETCH ? 2 : 1;
	unsigned long handed = lb__ra_handed;
	memset(o, 0, sizeof *o);
	fn(db, o);
	lb__ra_mode = 0;
	lb__ra_prefetch = 1;
	o->had_worker = db->ra != NULL || lb__ra_handed != handed;
	o->digest = te_digest(db);
	lb_close(db);
	th_rmrf(dir);
	free(dir);
}

static void same_every_way(damage_fn damage, scenario_fn fn, outcome *first)
{
	outcome o[NWAYS];
	for (int w = 0; w < NWAYS; w++)
		run_way(w, damage, fn, &o[w]);
	assert_false(o[INLINE].had_worker);
	for (int w = 1; w < NWAYS; w++) {
		if (!o[w].had_worker)
			fail_msg("%s: no read-ahead worker was started",
			         way_name[w]);
		if (o[w].rc != o[INLINE].rc || strcmp(o[w].err, o[INLINE].err))
			fail_msg("%s: %d (%s), inline %d (%s)", way_name[w],
			         o[w].rc, o[w].err, o[INLINE].rc,
			         o[INLINE].err);
		assert_int_equal(o[w].nissues_total, o[INLINE].nissues_total);
		assert_string_equal(o[w].issues ? o[w].issues : "",
		                    o[INLINE].issues ? o[INLINE].issues : "");
		assert_string_equal(o[w].records ? o[w].records : "",
		                    o[INLINE].records ? o[INLINE].records : "");
		assert_true(o[w].digest == o[INLINE].digest);
	}
	*first = o[INLINE];
	for (int w = 1; w < NWAYS; w++)
		outcome_free(&o[w]);
}

/* ---- scenarios ----------------------------------------------------------- */

/* Roll batch 3 back, then roll that back (which reads the rollback's own
 * segments the same way): the records of both, the state after each. */
static void undo_redo(lb_db *db, outcome *o)
{
	lb_result res;
	int rc = lb_rollback(db, 3, 0, &res);
	keep_result(o, rc, &res);
	uint64_t u = res.batch_id;
	lb_result_free(&res);
	if (rc != 0)
		return;
	dump_batch(db, u, &o->records);
	cat(&o->records, "after undo: %llx\n",
	    (unsigned long long)te_digest(db));
	rc = lb_rollback(db, u, 0, &res);
	keep_result(o, rc, &res);
	if (rc == 0)
		dump_batch(db, res.batch_id, &o->records);
	lb_result_free(&res);
}

static void test_engine_readahead__undo_and_redo(void **state)
{
	(void)state;
	outcome o;
	same_every_way(NULL, undo_redo, &o);
	assert_int_equal(o.rc, 0);
	/* the undo restored every before-image: batch 2's state */
	assert_non_null(strstr(o.records, "batch 4: 270 records\n"));
	assert_non_null(strstr(o.records, "batch 5: 270 records\n"));
	outcome_free(&o);
}

/* Batch 4 changes keys of batch 3 found in its first, middle and last
 * segments: a strict rollback of 3 reports each, in the same order, and
 * writes nothing; a forced one and a dry run agree too. */
static void later_changes(lb_db *db)
{
	lb_batch *b;
	te_rc(0, lb_batch_begin(db, "later", &b));
	put(b, "k000", "changed later");
	put(b, "n050", "changed later");
	put(b, "n099", "changed later");
	put(b, "k120", "made again later");
	te_rc(0, lb_batch_commit(b, NULL));
}

static void strict_conflicts(lb_db *db, outcome *o)
{
	lb_result res;
	later_changes(db);
	int rc = lb_rollback(db, 3, 0, &res);
	keep_result(o, rc, &res);
	lb_result_free(&res);
	rc = lb_rollback(db, 3, LB_FORCE | LB_DRYRUN, &res);
	keep_result(o, rc, &res);
	cat(&o->records, "dry run: %llu records\n",
	    (unsigned long long)res.records);
	lb_result_free(&res);
	rc = lb_rollback(db, 3, LB_FORCE, &res);
	keep_result(o, rc, &res);
	if (rc == 0)
		dump_batch(db, res.batch_id, &o->records);
	lb_result_free(&res);
}

static void test_engine_readahead__conflicts(void **state)
{
	(void)state;
	outcome o;
	same_every_way(NULL, strict_conflicts, &o);
	assert_int_equal(o.rc, 0); /* the forced one, last */
	assert_non_null(strstr(o.issues, "'k000' 4"));
	assert_non_null(strstr(o.issues, "'n050' 4"));
	assert_non_null(strstr(o.issues, "'n099' 4"));
	assert_non_null(strstr(o.issues, "'k120' 4"));
	outcome_free(&o);
}

/* ---- damaged segments ---------------------------------------------------- */

static uint32_t damaged_seg;

static void with_wal(const char *dir, void (*fn)(MDB_txn *, MDB_dbi))
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi wal;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 1024), 0);
	assert_int_equal(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "_wal", 0, &wal), 0);
	fn(txn, wal);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void seg_key(uint8_t k[12], uint64_t id, uint32_t s)
{
	for (int i = 0; i < 8; i++)
		k[i] = (uint8_t)(id >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		k[8 + i] = (uint8_t)(s >> (24 - 8 * i));
}

static void flip_byte(MDB_txn *txn, MDB_dbi wal)
{
	uint8_t k[12];
	seg_key(k, 3, damaged_seg);
	MDB_val key = {12, k}, v;
	assert_int_equal(mdb_get(txn, wal, &key, &v), 0);
	uint8_t *copy = te_malloc(v.mv_size);
	memcpy(copy, v.mv_data, v.mv_size);
	copy[v.mv_size - 1] ^= 0x20;
	MDB_val nv = {v.mv_size, copy};
	assert_int_equal(mdb_put(txn, wal, &key, &nv, 0), 0);
	free(copy);
}

static void drop_segment(MDB_txn *txn, MDB_dbi wal)
{
	uint8_t k[12];
	seg_key(k, 3, damaged_seg);
	MDB_val key = {12, k};
	assert_int_equal(mdb_del(txn, wal, &key, NULL), 0);
}

static void flipped(const char *dir)
{
	with_wal(dir, flip_byte);
}

static void dropped(const char *dir)
{
	with_wal(dir, drop_segment);
}

/* A strict rollback that meets a later change in the last segment, then
 * the damaged one: the error, its detail, the conflicts found before it. */
static void damaged_rollback(lb_db *db, outcome *o)
{
	lb_result res;
	later_changes(db);
	int rc = lb_rollback(db, 3, 0, &res);
	keep_result(o, rc, &res);
	lb_result_free(&res);
	/* the handle goes on: a rollback of batch 4 (intact) succeeds */
	rc = lb_rollback(db, 4, 0, &res);
	keep_result(o, rc, &res);
	if (rc == 0)
		dump_batch(db, res.batch_id, &o->records);
	lb_result_free(&res);
}

/* Batch 3 of the history: how many segments it has. */
static lb_batch_info target_info(void)
{
	lb_batch_info bi;
	char *dir = th_tmpdir();
	lb_db *db = te_open_segments(dir, 256);
	history(db);
	te_rc(0, lb_batch_info_get(db, 3, &bi));
	lb_close(db);
	th_rmrf(dir);
	free(dir);
	return bi;
}

static void test_engine_readahead__damaged_segments(void **state)
{
	(void)state;
	lb_batch_info bi = target_info();
	/* the last segment (read by the rollback itself), the one before it
	 * (the first read ahead), one in the middle and the first */
	const uint32_t segs[] = {bi.segments - 1, bi.segments - 2,
	                         bi.segments / 2, 0};
	for (size_t i = 0; i < sizeof segs / sizeof segs[0]; i++) {
		for (int d = 0; d < 2; d++) {
			outcome o;
			char want[64];
			damaged_seg = segs[i];
			same_every_way(d ? dropped : flipped, damaged_rollback,
			               &o);
			/* refused with the damaged segment named, after the
			 * conflict in the last segment (unless it is the one
			 * damaged); then the intact batch 4 is undone */
			snprintf(want, sizeof want, "batch 3: segment %u ",
			         segs[i]);
			if (!strstr(o.err, want))
				fail_msg("segment %u %s: %s", segs[i],
				         d ? "dropped" : "flipped", o.err);
			assert_non_null(strstr(o.issues, "rc -"));
			if (segs[i] != bi.segments - 1)
				assert_non_null(strstr(o.issues, "'n099' 4"));
			assert_int_equal(o.rc, 0);
			outcome_free(&o);
		}
	}
}

/* ---- replay ---------------------------------------------------------------
 */

/* db replayed from empty to batch `to` in a new directory: the outcome,
 * and, if it succeeded, every batch of the new database's log, its state,
 * and that it verifies. The new database's digest, 0 if it failed. */
static uint64_t replay_to(lb_db *db, uint64_t to, outcome *o)
{
	uint64_t digest = 0;
	lb_result res;
	lb_verify_report rep;
	char *parent = th_tmpdir(), *dest = NULL;
	assert_true(asprintf(&dest, "%s/replay", parent) >= 0);
	int rc = lb_replay(db, dest, to, NULL, &res);
	keep_result(o, rc, &res);
	lb_result_free(&res);
	if (rc == 0) {
		lb_db *r = te_open(dest, LB_NOSYNC);
		for (uint64_t id = 1; id <= to; id++)
			dump_batch(r, id, &o->records);
		digest = te_digest(r);
		cat(&o->records, "replayed to %llu: %llx\n",
		    (unsigned long long)to, (unsigned long long)digest);
		te_rc(0, lb_verify(r, 0, &rep));
		lb_close(r);
	}
	th_rmrf(parent);
	free(dest);
	free(parent);
	return digest;
}

/* Batch 3 rolled back (batch 4), a later batch (5): the database replayed
 * from empty to every batch, each new database's log and state, and that
 * it verifies. */
static void replays(lb_db *db, outcome *o)
{
	lb_result res;
	uint64_t last;
	int rc = lb_rollback(db, 3, 0, &res);
	keep_result(o, rc, &res);
	lb_result_free(&res);
	later_changes(db);
	te_rc(0, lb_last_batch(db, &last));
	unsigned long handed = lb__ra_handed;
	for (uint64_t to = 1; to < last; to++)
		replay_to(db, to, o);
	/* replayed to its last batch, the database is the source's */
	assert_true(replay_to(db, last, o) == te_digest(db));
	/* the rollback's read-ahead does not count: the replays' must */
	if ((lb__ra_handed != handed) != (lb__ra_mode != 3))
		fail_msg("mode %d: %lu segments read ahead by the replays",
		         (int)lb__ra_mode, lb__ra_handed - handed);
}

static void test_engine_readahead__replay(void **state)
{
	(void)state;
	outcome o;
	same_every_way(NULL, replays, &o);
	assert_int_equal(o.rc, 0);
	/* the replays of batches 3 and 4 hold what the source's hold */
	assert_non_null(strstr(o.records, "batch 3: 270 records\n"));
	assert_non_null(strstr(o.records, "batch 4: 270 records\n"));
	outcome_free(&o);
}

/* The damaged batch 3 replayed to: refused, naming the segment; the
 * replays to batch 2 (which stops before it) succeed. */
static void damaged_replay(lb_db *db, outcome *o)
{
	assert_true(replay_to(db, 3, o) == 0);
	assert_true(replay_to(db, 2, o) != 0);
}

static void test_engine_readahead__damaged_replay(void **state)
{
	(void)state;
	lb_batch_info bi = target_info();
	/* the first (read ahead with batch 2's last), one in the middle, and
	 * the last */
	const uint32_t segs[] = {0, bi.segments / 2, bi.segments - 1};
	for (size_t i = 0; i < sizeof segs / sizeof segs[0]; i++) {
		for (int d = 0; d < 2; d++) {
			outcome o;
			char want[64];
			damaged_seg = segs[i];
			same_every_way(d ? dropped : flipped, damaged_replay,
			               &o);
			snprintf(want, sizeof want, "segment %u", segs[i]);
			if (!strstr(o.err, "batch 3") || !strstr(o.err, want))
				fail_msg("segment %u %s: %s", segs[i],
				         d ? "dropped" : "flipped", o.err);
			assert_int_equal(o.rc, 0); /* to batch 2 */
			assert_non_null(strstr(o.records, "batch 2: 200"));
			outcome_free(&o);
		}
	}
}

/* ---- the prefetch ---------------------------------------------------------
 */

/* The records of batch id's last segment: the one a rollback reads itself,
 * first. */
static size_t last_segment_records(lb_db *db, uint64_t id)
{
	MDB_txn *txn;
	lb_wal_hdr h;
	lb_segr r;
	uint32_t *offs = NULL;
	size_t n = 0, cap = 0;
	assert_int_equal(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn), 0);
	te_rc(0, lb__hdr_get(db, txn, id, &h));
	lb__segr_init(&r);
	te_rc(0, lb__segment_load(db, txn, &h, h.segments - 1, &r, NULL));
	te_rc(0, lb__segment_index(&r, &offs, &n, &cap));
	free(offs);
	lb__segr_free(&r);
	lb__hdr_free(&h);
	mdb_txn_abort(txn);
	return n;
}

static unsigned long prefetched_by(lb_db *db, uint64_t id, int mode,
                                   int prefetch, uint64_t *undo)
{
	lb_result res;
	unsigned long before = lb__ra_prefetched;
	lb__ra_mode = mode;
	lb__ra_prefetch = prefetch;
	te_rc(0, lb_rollback(db, id, 0, &res));
	lb__ra_mode = 0;
	lb__ra_prefetch = 1;
	*undo = res.batch_id;
	lb_result_free(&res);
	return lb__ra_prefetched - before;
}

/* A rollback's worker looks up the key of every record of each segment it
 * reads ahead (all but the last), and nothing else does: a rollback that
 * reads its segments on its own thread, one with the prefetch off, a
 * replay. */
static void test_engine_readahead__prefetch_every_key(void **state)
{
	(void)state;
	char *dir = th_tmpdir(), *to = th_tmpdir();
	lb_db *db = te_open_segments(dir, 256);
	uint64_t u, r, again;
	history(db);
	size_t want = te_info(db, 3).records - last_segment_records(db, 3);
	assert_true(want > 200);
	assert_int_equal(prefetched_by(db, 3, 2, 2, &u), want);
	/* the undo batch's own segments, the same way */
	want = te_info(db, u).records - last_segment_records(db, u);
	assert_int_equal(prefetched_by(db, u, 2, 2, &r), want);
	assert_int_equal(prefetched_by(db, r, 1, 2, &again), 0);
	assert_int_equal(prefetched_by(db, again, 2, 0, &r), 0);
	/* a replay reads ahead, and looks up no key */
	unsigned long before = lb__ra_prefetched, handed = lb__ra_handed;
	lb__ra_mode = 2;
	lb__ra_prefetch = 2;
	lb_result res;
	th_rmrf(to);
	int rc = lb_replay(db, to, r, NULL, &res);
	lb_result_free(&res);
	lb__ra_mode = 0;
	lb__ra_prefetch = 1;
	te_rc(0, rc);
	assert_true(lb__ra_handed > handed);
	assert_int_equal(lb__ra_prefetched, before);
	lb_close(db);
	th_rmrf(dir);
	th_rmrf(to);
	free(dir);
	free(to);
}

static int count_t(void *ctx, const char *name, const lb_schema *schema,
                   uint64_t records)
{
	(void)schema;
	if (strcmp(name, "t") == 0)
		*(uint64_t *)ctx = records;
	return 0;
}

/* A rollback that fills the map in the middle (grown and redone,
 * grow.c) while the worker looks keys up in it: the map grows once the
 * worker's read transaction has ended, and the rollback removes every key
 * the batch inserted, and verifies. The batch inserts 3000 long
 * random keys with empty values: its rollback writes each key three
 * times (its own log, `_gone`, and the table's pages it deletes them
 * from), more than the map has room for (twice the file, lb_open). */
static void test_engine_readahead__prefetch_while_the_map_grows(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	uint8_t k[400];
	uint64_t rng = th_seed(0x9ef3);
	lb_batch *b;
	lb_result res;
	lb_options o;
	MDB_envinfo info;
	lb_db *db = te_open_segments(dir, 1024);
	te_rc(0, lb_table_create(db, "t", NULL));
	te_rc(0, lb_batch_begin(db, "long keys", &b));
	for (int i = 0; i < 3000; i++) {
		for (size_t j = 0; j < sizeof k; j++)
			k[j] = (uint8_t)th_below(&rng, 256);
		te_rc(0, lb_put(b, "t", k, sizeof k, "", 0));
	}
	te_rc(0, lb_batch_commit(b, NULL));
	uint64_t id = te_last(db);
	lb_close(db);
	lb_options_init(&o);
	o.flags = LB_NOSYNC;
	o.segment_size = 1024;
	o.map_size = 64u << 10; /* the smallest: twice the file */
	db = te_open_opts(dir, &o);
	assert_int_equal(mdb_env_info(db->env, &info), 0);
	size_t map = info.me_mapsize;
	/* at most half of it in use: the map does not grow before the
	 * rollback's batch begins (lb__grow_map_if_needed) */
	assert_true((info.me_last_pgno + 1) * 4096 <= map / 2);
	unsigned long pf = lb__ra_prefetched;
	lb__ra_mode = 2;
	lb__ra_prefetch = 2;
	int rc = lb_rollback(db, id, 0, &res);
	lb__ra_mode = 0;
	lb__ra_prefetch = 1;
	te_rc(0, rc);
	assert_int_equal(res.records, 3000);
	lb_result_free(&res);
	/* so grown in the middle of the rollback */
	assert_int_equal(mdb_env_info(db->env, &info), 0);
	if (info.me_mapsize <= map)
		fail_msg("the map stayed at %zu bytes (%zu): the rollback "
		         "did not fill it",
		         map, info.me_mapsize);
	assert_true(lb__ra_prefetched - pf >= 2900);
	uint64_t left = UINT64_MAX;
	te_rc(0, lb_tables(db, count_t, &left));
	assert_int_equal(left, 0);
	lb_verify_report rep;
	te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.chain_ok && rep.replay_ok);
	lb_close(db);
	th_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_engine_readahead__undo_and_redo),
	        cmocka_unit_test(test_engine_readahead__conflicts),
	        cmocka_unit_test(test_engine_readahead__damaged_segments),
	        cmocka_unit_test(test_engine_readahead__replay),
	        cmocka_unit_test(test_engine_readahead__damaged_replay),
	        cmocka_unit_test(test_engine_readahead__prefetch_every_key),
	        cmocka_unit_test(
	                test_engine_readahead__prefetch_while_the_map_grows),
	};
	return cmocka_run_group_tests_name("engine_readahead", tests, NULL,
	                                   NULL);
}
