/* SPDX-License-Identifier: MIT */
/*
 * replay.c: lb_replay. A random history (user batches, refused batches,
 * rollbacks of every kind, rollback_to, reopens with other segment sizes and
 * compression levels) is replayed to every one of its batches, from empty
 * and from a checkpoint; each replay must equal the model's state at that
 * batch, carry the same log (hashes, counts, labels, times; header state
 * as of that batch) and verify. Also: the result, the errors (destination
 * not empty, batch beyond the last, foreign or later checkpoint), big
 * multi-segment batches with schemas and foreign keys, a source that keeps
 * committing, a read-only source, and a replay killed at any instant
 * leaving nothing that looks complete.
 */
#define _GNU_SOURCE
#include "_common.h"
#include "_hearings.h"
#include "_model.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Assert that replayed database r carries src's log up to batch n, with
 * the header state src's batches had at n: from the model's record of
 * which batches stood then when there is one (m), else src's own state
 * when n is its last batch (in between, lb_verify of the replay checks
 * that its marks follow from its log). */
static void assert_same_log(lb_db *src, lb_db *r, uint64_t n, const tm_model *m)
{
	uint64_t *rbb = NULL;
	assert_int_equal(te_last(r), n);
	if (m) {
		rbb = te_malloc((n + 2) * sizeof *rbb);
		tm_marks_at(m, n, rbb);
	}
	for (uint64_t id = 1; id <= n; id++) {
		lb_batch_info a, b;
		te_rc(0, lb_batch_info_get(src, id, &a));
		te_rc(0, lb_batch_info_get(r, id, &b));
		assert_memory_equal(a.hash, b.hash, 32);
		assert_int_equal(a.time_ns, b.time_ns);
		assert_string_equal(a.label, b.label);
		assert_int_equal(a.records, b.records);
		assert_int_equal(a.segments, b.segments);
		assert_int_equal(a.raw_bytes, b.raw_bytes);
		assert_int_equal(a.stored_bytes, b.stored_bytes);
		assert_int_equal(a.undoes, b.undoes);
		if (rbb)
			assert_int_equal(b.rolled_back_by, rbb[id]);
		else if (n == te_last(src))
			assert_int_equal(b.rolled_back_by, a.rolled_back_by);
		assert_false(b.pruned);
	}
	free(rbb);
}

static void replay_ok(lb_db *src, const char *dest, uint64_t to,
                      const char *ckpt)
{
	lb_result res;
	memset(&res, 0xff, sizeof res);
	te_rc(0, lb_replay(src, dest, to, ckpt, &res));
	assert_int_equal(res.rc, 0);
	assert_int_equal(res.batch_id, to ? to : te_last(src));
	assert_int_equal(res.nissues, 0);
	assert_null(res.issues);
}

static void test_engine_replay__every_batch_matches_model(void **state)
{
	(void)state;
	uint64_t rng = th_seed(0x7e91a7);
	long target = th_env_long("LB_TEST_BATCHES", 24);
	char *dir = th_tmpdir(), *base = th_tmpdir();
	char *ckpt = th_path(base, "ckpt");
	lb_db *db = te_open(dir, LB_CREATE | LB_NOSYNC);
	tm_model *m = tm_new(1);
	uint64_t at = 0;
	tm_setup(m, db);
	for (long i = 0; (long)tm_last(m) < target && i < 100 * target; i++) {
		tm_step(m, &db, dir, &rng, TM_STEP_ALL);
		if (!at && (long)tm_last(m) >= target / 2)
			te_rc(0, lb_checkpoint(db, ckpt, &at));
	}
	tm_assert_db(m, db);
	uint64_t last = tm_last(m);
	th_assert_seeded(at > TM_SETUP && at < last);
	assert_true(m->stats.rollbacks > 0);

	for (uint64_t n = 1; n <= last; n++) {
		char name[32];
		snprintf(name, sizeof name, "e%llu", (unsigned long long)n);
		char *dest = th_path(base, name);
		replay_ok(db, dest, n, NULL);
		lb_db *r = te_open(dest, LB_NOSYNC);
		tm_assert_state(tm_state_at(m, n), r);
		assert_same_log(db, r, n, m);
		lb_verify_report rep;
		te_rc(0, lb_verify(r, n % 8 == 0 ? LB_VERIFY_REPLAY : 0, &rep));
		assert_int_equal(rep.batches, n);
		if (n == last)
			tm_assert_log(m, r);
		lb_close(r);
		th_rmrf(dest);
		free(dest);

		/* and from the checkpoint, to a few batches around it */
		if (n + 1 < at || (n > at + 2 && n + 2 < last && n % 4))
			continue;
		snprintf(name, sizeof name, "c%llu", (unsigned long long)n);
		dest = th_path(base, name);
		if (n < at) {
			lb_result res;
			te_rc(LB_EINVAL, lb_replay(db, dest, n, ckpt, &res));
			assert_int_equal(access(dest, F_OK), -1);
		} else {
			replay_ok(db, dest, n, ckpt);
			r = te_open(dest, LB_NOSYNC);
			tm_assert_state(tm_state_at(m, n), r);
			assert_same_log(db, r, n, m);
			te_rc(0, lb_verify(r, 0, &rep));
			lb_close(r);
		}
		th_rmrf(dest);
		free(dest);
	}
	/* replay to 0 means the last batch */
	char *dest = th_path(base, "last");
	replay_ok(db, dest, 0, NULL);
	lb_db *r = te_open(dest, LB_NOSYNC);
	tm_assert_db(m, r);
	lb_close(r);
	free(dest);
	tm_free(m);
	lb_close(db);
	th_rmrf(dir);
	th_rmrf(base);
	free(ckpt);
	free(dir);
	free(base);
}

static void test_engine_replay__result_and_errors(void **state)
{
	te_fx *fx = *state;
	char *base = th_tmpdir();
	char *full = th_path(base, "full"), *inside = th_path(full, "f"),
	     *dest = th_path(base, "d"), *empty = th_path(base, "empty");
	lb_result res;
	te_put1(fx->db, "t", "a", "1");
	te_put1(fx->db, "t", "b", "2");
	te_del1(fx->db, "t", "a");
	uint64_t last = te_last(fx->db);

	assert_int_equal(mkdir(full, 0755), 0);
	FILE *f = fopen(inside, "w");
	assert_non_null(f);
	fclose(f);
	te_rc(LB_EEXIST, lb_replay(fx->db, full, 0, NULL, &res));
	assert_int_equal(res.rc, LB_EEXIST);
	te_rc(LB_EEXIST, lb_replay(fx->db, inside, 0, NULL, &res));
	te_rc(LB_ENOTFOUND, lb_replay(fx->db, dest, last + 1, NULL, &res));
	assert_int_equal(res.rc, LB_ENOTFOUND);
	assert_int_equal(access(dest, F_OK), -1);
	te_rc(LB_EINVAL, lb_replay(NULL, dest, 0, NULL, &res));
	te_rc(LB_EINVAL, lb_replay(fx->db, NULL, 0, NULL, &res));
	te_rc(LB_EINVAL, lb_replay(fx->db, "", 0, NULL, NULL));
	/* a checkpoint that is no database at all */
	te_rc(LB_EINVAL, lb_replay(fx->db, dest, 0, full, &res));
	assert_int_equal(access(dest, F_OK), -1);

	/* an empty directory is a fine destination; res counts records */
	assert_int_equal(mkdir(empty, 0755), 0);
	memset(&res, 0xff, sizeof res);
	te_rc(0, lb_replay(fx->db, empty, 0, NULL, NULL));
	th_rmrf(empty);
	te_rc(0, lb_replay(fx->db, empty, 0, NULL, &res));
	assert_int_equal(res.batch_id, last);
	assert_int_equal(res.records, 4); /* table, put, put, delete */
	lb_db *r = te_open(empty, LB_NOSYNC);
	te_assert_absent_s(r, "t", "a");
	te_assert_get_s(r, "t", "b", "2");
	assert_int_equal(te_digest(r), te_digest(fx->db));
	lb_close(r);
	/* nothing else was left in base */
	DIR *d = opendir(base);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	assert_int_equal(n, 2); /* full, empty */
	th_rmrf(base);
	free(full);
	free(inside);
	free(dest);
	free(empty);
	free(base);
}

static void test_engine_replay__empty_source(void **state)
{
	(void)state;
	char *dir = th_tmpdir(), *base = th_tmpdir();
	char *dest = th_path(base, "r");
	lb_db *db = te_open(dir, LB_CREATE | LB_NOSYNC);
	lb_result res;
	te_rc(0, lb_replay(db, dest, 0, NULL, &res));
	assert_int_equal(res.batch_id, 0);
	assert_int_equal(res.records, 0);
	lb_db *r = te_open(dest, LB_RDONLY);
	assert_int_equal(te_last(r), 0);
	lb_close(r);
	lb_close(db);
	th_rmrf(dir);
	th_rmrf(base);
	free(dest);
	free(dir);
	free(base);
}

static void test_engine_replay__checkpoint_checks(void **state)
{
	te_fx *fx = *state;
	char *base = th_tmpdir(), *odir = th_tmpdir();
	char *ck = th_path(base, "ck"), *ock = th_path(base, "other"),
	     *dest = th_path(base, "d");
	uint64_t at;
	lb_result res;
	te_put1(fx->db, "t", "a", "1");
	te_rc(0, lb_checkpoint(fx->db, ck, &at));
	te_put1(fx->db, "t", "a", "2");
	/* a checkpoint after the target */
	te_rc(LB_EINVAL, lb_replay(fx->db, dest, at - 1, ck, &res));
	assert_non_null(strstr(lb_errmsg(), "after batch"));
	/* a checkpoint of another database, with the same batch count */
	lb_db *o = te_open(odir, LB_CREATE | LB_NOSYNC);
	te_rc(0, lb_table_create(o, "t", NULL));
	te_put1(o, "t", "a", "other");
	te_rc(0, lb_checkpoint(o, ock, NULL));
	lb_close(o);
	te_rc(LB_EINVAL, lb_replay(fx->db, dest, 0, ock, &res));
	assert_non_null(strstr(lb_errmsg(), "not of this database"));
	assert_int_equal(access(dest, F_OK), -1);
	/* the right one */
	te_rc(0, lb_replay(fx->db, dest, 0, ck, &res));
	assert_int_equal(res.records, 1);
	lb_db *r = te_open(dest, LB_NOSYNC);
	te_assert_get_s(r, "t", "a", "2");
	/* the copy lists no checkpoints of its own */
	lb_close(r);
	th_rmrf(odir);
	th_rmrf(base);
	free(ck);
	free(ock);
	free(dest);
	free(odir);
	free(base);
}

/* Batches far larger than a segment, values up to 64 KiB, a schema with
 * foreign keys, and rollbacks of them. */
static void test_engine_replay__big_batches_and_schemas(void **state)
{
	(void)state;
	uint64_t rng = th_seed(0xb16);
	char *dir = th_tmpdir(), *base = th_tmpdir();
	char *dest = th_path(base, "r"), *dest2 = th_path(base, "r2");
	lb_options o;
	lb_options_init(&o);
	o.flags = LB_CREATE | LB_NOSYNC;
	o.segment_size = 4096;
	lb_db *db = te_open_opts(dir, &o);
	uint8_t *big = te_malloc(65536);
	hg_create(db);
	te_rc(0, lb_table_create(db, "blobs", NULL));
	for (int i = 0; i < 6; i++) {
		lb_batch *b;
		te_rc(0, lb_batch_begin(db, "load", &b));
		for (int j = 0; j < 300; j++) {
			char id[32], wid[32];
			snprintf(id, sizeof id, "H%d-%d", i, j);
			snprintf(wid, sizeof wid, "W%d-%d", i, j);
			te_rc(0, hg_insert_hearing(b, id));
			te_rc(0, hg_put_witness(b, wid, id));
		}
		for (int j = 0; j < 4; j++) {
			char k[16];
			size_t n = th_below(&rng, 65536);
			te_fill(&rng, big, n);
			snprintf(k, sizeof k, "b%d", (int)th_below(&rng, 6));
			te_rc(0, lb_put(b, "blobs", k, strlen(k), big, n));
		}
		te_rc(0, lb_batch_commit(b, NULL));
	}
	lb_result res;
	uint64_t last = te_last(db);
	lb_batch_info bi;
	te_rc(0, lb_batch_info_get(db, last, &bi));
	assert_true(bi.segments > 10);
	te_rc(0, lb_rollback(db, last - 2, LB_CASCADE, &res));
	lb_result_free(&res);
	te_rc(0, lb_rollback(db, te_last(db), 0, &res)); /* redo */
	lb_result_free(&res);
	uint64_t d = te_digest(db);
	replay_ok(db, dest, 0, NULL);
	lb_db *r = te_open(dest, LB_NOSYNC);
	assert_int_equal(te_digest(r), d);
	assert_same_log(db, r, te_last(db), NULL);
	lb_verify_report rep;
	te_rc(0, lb_verify(r, LB_VERIFY_REPLAY, &rep));
	/* the replay behaves like the source: foreign keys hold */
	lb_batch *b;
	te_rc(0, lb_batch_begin(r, "del", &b));
	te_rc(0, lb_delete(b, HG_HEARINGS, "H0-0", 4));
	te_rc(LB_EVALIDATION, lb_batch_commit(b, &res));
	lb_result_free(&res);
	lb_close(r);
	/* replayed to before the rollbacks */
	replay_ok(db, dest2, last, NULL);
	r = te_open(dest2, LB_NOSYNC);
	assert_same_log(db, r, last, NULL);
	te_rc(0, lb_verify(r, LB_VERIFY_REPLAY, &rep));
	lb_close(r);
	free(big);
	lb_close(db);
	th_rmrf(dir);
	th_rmrf(base);
	free(dest);
	free(dest2);
	free(dir);
	free(base);
}

static void test_engine_replay__read_only_source(void **state)
{
	te_fx *fx = *state;
	char *base = th_tmpdir(), *dest = th_path(base, "r");
	te_put1(fx->db, "t", "k", "v");
	uint64_t d = te_digest(fx->db);
	lb_close(fx->db);
	fx->db = te_open(fx->dir, LB_RDONLY);
	replay_ok(fx->db, dest, 0, NULL);
	lb_db *r = te_open(dest, LB_RDONLY);
	assert_int_equal(te_digest(r), d);
	lb_close(r);
	th_rmrf(base);
	free(dest);
	free(base);
}

/* ---- a source that keeps committing --------------------------------------
 */

enum { MAXB = 4096 };

typedef struct writer {
	lb_db *db;
	uint64_t digest[MAXB];
	volatile int stop, failed;
	volatile uint64_t last;
	uint64_t rng;
} writer;

static void *writer_main(void *p)
{
	writer *w = p;
	uint8_t val[100];
	while (!w->stop) {
		lb_batch *b;
		lb_result res;
		if (lb_batch_begin(w->db, "w", &b) < 0) {
			w->failed = 1;
			break;
		}
		for (int j = 0; j < 30; j++) {
			char key[16];
			snprintf(key, sizeof key, "w%04d",
			         (int)th_below(&w->rng, 3000));
			size_t vl = th_below(&w->rng, sizeof val);
			te_fill(&w->rng, val, vl);
			if (lb_put(b, "t", key, strlen(key), val, vl) < 0)
				w->failed = 1;
		}
		if (w->failed || lb_batch_commit(b, &res) < 0 ||
		    res.batch_id >= MAXB) {
			w->failed = w->failed || res.batch_id < MAXB;
			break;
		}
		w->digest[res.batch_id] = te_digest(w->db);
		w->last = res.batch_id;
	}
	return NULL;
}

static void test_engine_replay__while_source_commits(void **state)
{
	te_fx *fx = *state;
	writer *w = calloc(1, sizeof *w);
	char *base = th_tmpdir();
	pthread_t th;
	assert_non_null(w);
	w->db = fx->db;
	w->rng = th_seed(0xc0);
	w->last = te_last(fx->db);
	w->digest[w->last] = te_digest(fx->db);
	assert_int_equal(pthread_create(&th, NULL, writer_main, w), 0);
	uint64_t got[3];
	for (int i = 0; i < 3; i++) {
		char name[16];
		uint64_t seen = w->last;
		while (w->last < seen + 20 && !w->failed)
			usleep(1000);
		snprintf(name, sizeof name, "r%d", i);
		char *dest = th_path(base, name);
		lb_result res;
		te_rc(0, lb_replay(fx->db, dest, 0, NULL, &res));
		got[i] = res.batch_id;
		free(dest);
	}
	w->stop = 1;
	pthread_join(th, NULL);
	assert_false(w->failed);
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof name, "r%d", i);
		char *dest = th_path(base, name);
		lb_db *r = te_open(dest, LB_NOSYNC);
		assert_int_equal(te_last(r), got[i]);
		assert_int_equal(te_digest(r), w->digest[got[i]]);
		lb_close(r);
		free(dest);
	}
	th_rmrf(base);
	free(base);
	free(w);
}

/* A replay killed at any instant leaves no destination, or a complete one.
 */
static void test_engine_replay__killed_leaves_nothing_partial(void **state)
{
	te_fx *fx = *state;
	uint64_t rng = th_seed(0xdead);
	char *base = th_tmpdir();
	uint8_t val[200];
	for (int i = 0; i < 40; i++) {
		lb_batch *b;
		te_rc(0, lb_batch_begin(fx->db, "bulk", &b));
		for (int j = 0; j < 250; j++) {
			char key[16];
			snprintf(key, sizeof key, "k%06d", i * 250 + j);
			size_t vl = 1 + th_below(&rng, sizeof val);
			te_fill(&rng, val, vl);
			te_rc(0, lb_put(b, "t", key, strlen(key), val, vl));
		}
		te_rc(0, lb_batch_commit(b, NULL));
	}
	uint64_t want = te_digest(fx->db), last = te_last(fx->db);
	char *ref = th_path(base, "ref");
	int64_t t0 = te_mono_ns();
	te_rc(0, lb_replay(fx->db, ref, 0, NULL, NULL));
	int64_t took = te_mono_ns() - t0;
	th_rmrf(ref);
	free(ref);
	lb_close(fx->db);
	fx->db = NULL;
	for (int i = 0; i < 8; i++) {
		char name[16];
		snprintf(name, sizeof name, "k%d", i);
		char *dest = th_path(base, name);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			lb_db *db;
			lb_options o;
			lb_options_init(&o);
			o.flags = LB_RDONLY;
			if (lb_open(fx->dir, &o, &db) < 0)
				_exit(2);
			int rc = lb_replay(db, dest, 0, NULL, NULL);
			/* free what the child holds, for valgrind's leak
			 * check at its exit */
			lb_close(db);
			free(dest);
			_exit(rc < 0 ? 3 : 0);
		}
		int64_t wait = took * i / 4 + (int64_t)th_below(&rng, 1000000);
		usleep((useconds_t)(wait / 1000));
		kill(pid, SIGKILL);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st) || WEXITSTATUS(st) == 0);
		if (access(dest, F_OK) == 0) {
			lb_db *r = te_open(dest, LB_NOSYNC);
			assert_int_equal(te_last(r), last);
			assert_int_equal(te_digest(r), want);
			lb_verify_report rep;
			te_rc(0, lb_verify(r, 0, &rep));
			lb_close(r);
		}
		free(dest);
	}
	fx->db = te_open(fx->dir, LB_NOSYNC);
	th_rmrf(base);
	free(base);
}

/* Hundreds of tables created, then all removed by a rollback-to: the
 * replay opens and verifies (its file once held fewer pages than its meta
 * page counted, which the open check took for damage); and a removed
 * table frees its slot among LMDB's handles, so tables can be made again
 * past the limit of tables open at once. */
static void test_engine_replay__many_tables_removed(void **state)
{
	te_fx *fx = *state;
	lb_result res;
	lb_verify_report rep;
	char name[16];
	uint64_t base = te_last(fx->db);
	int n = 0;
	for (;; n++) {
		snprintf(name, sizeof name, "u%04d", n);
		int rc = lb_table_create(fx->db, name, NULL);
		if (rc == LB_EFULL)
			break; /* every slot taken */
		te_rc(0, rc);
		assert_true(n < 2000);
	}
	assert_true(n > 900);
	/* remove the last one: its slot serves a new table */
	te_rc(0, lb_rollback(fx->db, te_last(fx->db), 0, &res));
	lb_result_free(&res);
	te_rc(0, lb_table_create(fx->db, "fresh", NULL));
	te_put1(fx->db, "fresh", "k", "v");
	te_rc(0, lb_rollback_to(fx->db, base, &res));
	lb_result_free(&res);
	te_rc(0, lb_table_create(fx->db, "after", NULL));
	te_rc(0, lb_verify(fx->db, LB_VERIFY_REPLAY, &rep));
	char *rp = th_path(fx->dir, "../rp-many");
	te_rc(0, lb_replay(fx->db, rp, 0, NULL, &res));
	lb_result_free(&res);
	lb_db *r = te_open(rp, 0);
	te_rc(0, lb_verify(r, LB_VERIFY_REPLAY, &rep));
	assert_int_equal(te_last(r), te_last(fx->db));
	lb_close(r);
	th_rmrf(rp);
	free(rp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, te_setup_t, te_teardown)
	        cmocka_unit_test(test_engine_replay__every_batch_matches_model),
	        T(test_engine_replay__result_and_errors),
	        cmocka_unit_test(test_engine_replay__empty_source),
	        T(test_engine_replay__checkpoint_checks),
	        cmocka_unit_test(test_engine_replay__big_batches_and_schemas),
	        T(test_engine_replay__read_only_source),
	        T(test_engine_replay__while_source_commits),
	        T(test_engine_replay__killed_leaves_nothing_partial),
	        T(test_engine_replay__many_tables_removed),
#undef T
	};
	return cmocka_run_group_tests_name("engine_replay", tests, NULL, NULL);
}
