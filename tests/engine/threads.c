/* SPDX-License-Identifier: MIT */
/*
 * Threads sharing one lb_db: readers never see a batch half-applied and are
 * never blocked by an open batch; lb_batch_begin() and lb_table_create() wait
 * while another thread's batch is open; concurrent writers serialize.
 *
 * cmocka's assertions must run on the main thread (they longjmp), so worker
 * threads record failures in a shared struct that the main thread asserts
 * on after joining them.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FX(state) ((te_fx *)*(state))

/* ---- failure collection from worker threads ---------------------------- */

struct errs {
	pthread_mutex_t mu;
	atomic_int count;
	char first[512];
};

static void errs_init(struct errs *e)
{
	pthread_mutex_init(&e->mu, NULL);
	atomic_init(&e->count, 0);
	e->first[0] = '\0';
}

static void errs_add(struct errs *e, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&e->mu);
	if (atomic_fetch_add(&e->count, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(e->first, sizeof e->first, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&e->mu);
}

static void errs_assert_none(struct errs *e)
{
	int n = atomic_load(&e->count);
	if (n) {
		print_error("%d failure(s) in worker threads; first: %s\n", n,
		            e->first);
		fail();
	}
	pthread_mutex_destroy(&e->mu);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* ---- readers see whole batches ------------------------------------------ */

#define NKEYS 32
#define VLEN 48

/* Value of key i written by batch round r: it names both. */
static void round_value(uint64_t r, int i, char *v)
{
	int n = snprintf(v, VLEN + 1, "round %010" PRIu64 " key %02d ", r, i);
	memset(v + n, '.', VLEN - n);
	v[VLEN] = '\0';
}

static void key_name(int i, char *k)
{
	snprintf(k, 8, "k%02d", i % 100);
}

/* Parse the round out of a value of key i; 0 if malformed. */
static uint64_t parse_round(const void *v, size_t vl, int i)
{
	char want[VLEN + 1], buf[VLEN + 1];
	uint64_t r;
	if (vl != VLEN)
		return 0;
	memcpy(buf, v, VLEN);
	buf[VLEN] = '\0';
	if (sscanf(buf, "round %" SCNu64, &r) != 1)
		return 0;
	round_value(r, i, want);
	return memcmp(want, buf, VLEN) == 0 ? r : 0;
}

struct shared {
	lb_db *db;
	atomic_int stop;
	struct errs errs;
	atomic_ulong iters[3];
	atomic_ulong distinct[3]; /* rounds seen change count */
};

static void *reader_snapshot(void *arg)
{
	struct shared *sh = arg;
	uint64_t last_seen = 0;
	while (!atomic_load(&sh->stop)) {
		lb_snapshot *s = NULL;
		uint64_t round = 0;
		int i, rc;
		if ((rc = lb_snapshot_open(sh->db, &s)) != 0) {
			errs_add(&sh->errs, "snapshot_open: %d %s", rc,
			         lb_errmsg());
			return NULL;
		}
		for (i = 0; i < NKEYS; i++) {
			char k[8];
			const void *v;
			size_t vl;
			uint64_t r;
			key_name(i, k);
			rc = lb_snapshot_get(s, "t", k, 3, &v, &vl);
			if (rc != 0) {
				errs_add(&sh->errs, "snapshot_get %s: %d %s", k,
				         rc, lb_errmsg());
				break;
			}
			r = parse_round(v, vl, i);
			if (r == 0 || (i > 0 && r != round)) {
				errs_add(&sh->errs,
				         "snapshot mixes batches: key %d round "
				         "%" PRIu64 ", key 0 round %" PRIu64,
				         i, r, round);
				break;
			}
			round = r;
		}
		lb_snapshot_close(s);
		if (round < last_seen)
			errs_add(&sh->errs,
			         "later snapshot went back from round %" PRIu64
			         " to %" PRIu64,
			         last_seen, round);
		if (round != last_seen)
			atomic_fetch_add(&sh->distinct[0], 1);
		last_seen = round;
		atomic_fetch_add(&sh->iters[0], 1);
	}
	return NULL;
}

static void *reader_cursor(void *arg)
{
	struct shared *sh = arg;
	uint64_t last_seen = 0;
	while (!atomic_load(&sh->stop)) {
		lb_snapshot *s = NULL;
		lb_cursor *c = NULL;
		const void *k, *v;
		size_t kl, vl;
		uint64_t round = 0;
		int i = 0, rc;
		if ((rc = lb_snapshot_open(sh->db, &s)) != 0 ||
		    (rc = lb_cursor_open(s, "t", &c)) != 0) {
			errs_add(&sh->errs, "cursor setup: %d %s", rc,
			         lb_errmsg());
			lb_snapshot_close(s);
			return NULL;
		}
		while ((rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0) {
			char want[8];
			uint64_t r;
			key_name(i, want);
			r = parse_round(v, vl, i);
			if (i >= NKEYS || kl != 3 || memcmp(k, want, 3) != 0 ||
			    r == 0 || (i > 0 && r != round)) {
				errs_add(&sh->errs,
				         "cursor entry %d wrong or mixed "
				         "(round %" PRIu64 " vs %" PRIu64 ")",
				         i, r, round);
				break;
			}
			round = r;
			i++;
		}
		if (rc == LB_ENOTFOUND && i != NKEYS)
			errs_add(&sh->errs, "cursor saw %d keys, not %d", i,
			         NKEYS);
		else if (rc != 0 && rc != LB_ENOTFOUND)
			errs_add(&sh->errs, "cursor_next: %d %s", rc,
			         lb_errmsg());
		lb_cursor_close(c);
		lb_snapshot_close(s);
		if (round < last_seen)
			errs_add(&sh->errs, "cursor went back in time");
		if (round != last_seen)
			atomic_fetch_add(&sh->distinct[1], 1);
		last_seen = round;
		atomic_fetch_add(&sh->iters[1], 1);
	}
	return NULL;
}

/* lb_get() reads are each consistent on their own; read in key order, the
 * rounds can only grow. */
static void *reader_get(void *arg)
{
	struct shared *sh = arg;
	uint64_t last_seen = 0, first_of_iter = 0;
	while (!atomic_load(&sh->stop)) {
		int i, rc;
		for (i = 0; i < NKEYS; i++) {
			char k[8];
			void *v = NULL;
			size_t vl;
			uint64_t r;
			key_name(i, k);
			rc = lb_get(sh->db, "t", k, 3, &v, &vl);
			if (rc != 0) {
				errs_add(&sh->errs, "lb_get %s: %d %s", k, rc,
				         lb_errmsg());
				return NULL;
			}
			r = parse_round(v, vl, i);
			free(v);
			if (r == 0 || r < last_seen) {
				errs_add(&sh->errs,
				         "lb_get %s: round %" PRIu64
				         " after seeing %" PRIu64,
				         k, r, last_seen);
				return NULL;
			}
			last_seen = r;
		}
		if (last_seen != first_of_iter)
			atomic_fetch_add(&sh->distinct[2], 1);
		first_of_iter = last_seen;
		atomic_fetch_add(&sh->iters[2], 1);
	}
	return NULL;
}

/* Commit round r; failures are recorded, not asserted, because reader
 * threads are running (a longjmp out of here would free their database). */
static int commit_round(lb_db *db, uint64_t r, struct errs *e)
{
	lb_batch *b = NULL;
	lb_result res;
	int i, rc;
	if ((rc = lb_batch_begin(db, NULL, &b)) != 0) {
		errs_add(e, "writer begin: %d %s", rc, lb_errmsg());
		return rc;
	}
	for (i = 0; i < NKEYS; i++) {
		char k[8], v[VLEN + 1];
		key_name(i, k);
		round_value(r, i, v);
		if ((rc = lb_put(b, "t", k, 3, v, VLEN)) != 0) {
			errs_add(e, "writer put: %d %s", rc, lb_errmsg());
			lb_batch_abort(b);
			return rc;
		}
	}
	memset(&res, 0, sizeof res);
	rc = lb_batch_commit(b, &res);
	if (rc != 0 || res.records != NKEYS || res.batch_id != r + 1) {
		errs_add(e,
		         "writer commit: rc %d records %" PRIu64 " id %" PRIu64
		         " %s",
		         rc, res.records, res.batch_id, lb_errmsg());
		rc = rc ? rc : -1000;
	}
	lb_result_free(&res);
	return rc;
}

static void test_engine_threads__readers_see_whole_batches(void **state)
{
	lb_db *db = FX(state)->db;
	struct shared sh;
	pthread_t th[3];
	void *(*fns[3])(void *) = {reader_snapshot, reader_cursor, reader_get};
	int64_t until;
	uint64_t r = 1;
	int i;

	memset(&sh, 0, sizeof sh);
	sh.db = db;
	atomic_init(&sh.stop, 0);
	errs_init(&sh.errs);
	for (i = 0; i < 3; i++) {
		atomic_init(&sh.iters[i], 0);
		atomic_init(&sh.distinct[i], 0);
	}
	assert_int_equal(commit_round(db, r, &sh.errs), 0);

	for (i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, fns[i], &sh), 0);
	/* Commit rounds for a fixed time so that readers overlap commits
	 * whatever the machine's speed. */
	until = te_mono_ns() + 1500000000LL;
	/* ... and past it, until a few rounds are in and every reader saw
	 * the data change (a loaded machine, or valgrind running one thread
	 * at a time, may give the writer little of that time; bounded). */
	int64_t hard = until + 60000000000LL;
	while (atomic_load(&sh.errs.count) == 0) {
		int64_t now = te_mono_ns();
		int enough = r > 10;
		for (i = 0; i < 3; i++)
			enough = enough && atomic_load(&sh.distinct[i]) >= 2;
		if (now >= hard || (now >= until && enough))
			break;
		if (commit_round(db, ++r, &sh.errs) != 0)
			break;
	}
	atomic_store(&sh.stop, 1);
	for (i = 0; i < 3; i++)
		pthread_join(th[i], NULL);

	errs_assert_none(&sh.errs);
	assert_true(r > 10);
	for (i = 0; i < 3; i++) {
		assert_true(atomic_load(&sh.iters[i]) > 0);
		/* each reader saw the data change under it */
		assert_true(atomic_load(&sh.distinct[i]) >= 2);
	}
	assert_int_equal(te_last(db), 1 + r);
}

/* ---- lb_batch_begin waits ------------------------------------------------ */

enum { SECOND_BATCH, SECOND_TABLE };

struct second {
	lb_db *db;
	int mode;
	atomic_int began, done;
	int rc_begin, rc_put, rc_commit;
	uint64_t id;
	char msg[256];
};

static void *second_writer(void *arg)
{
	struct second *sw = arg;
	lb_batch *b = NULL;
	lb_result res;

	if (sw->mode == SECOND_TABLE) {
		sw->rc_begin = lb_table_create(sw->db, "u", NULL);
		atomic_store(&sw->began, 1);
		atomic_store(&sw->done, 1);
		return NULL;
	}
	sw->rc_begin = lb_batch_begin(sw->db, "second", &b);
	atomic_store(&sw->began, 1);
	if (sw->rc_begin != 0) {
		snprintf(sw->msg, sizeof sw->msg, "%s", lb_errmsg());
		atomic_store(&sw->done, 1);
		return NULL;
	}
	sw->rc_put = lb_put(b, "t", "second", 6, "2", 1);
	memset(&res, 0, sizeof res);
	sw->rc_commit = lb_batch_commit(b, &res);
	sw->id = res.batch_id;
	lb_result_free(&res);
	atomic_store(&sw->done, 1);
	return NULL;
}

static int wait_flag(atomic_int *f, long ms)
{
	int64_t until = te_mono_ns() + ms * 1000000LL;
	while (!atomic_load(f) && te_mono_ns() < until)
		sleep_ms(1);
	return atomic_load(f);
}

static void run_second_writer(lb_db *db, int mode, int commit_first)
{
	struct second sw;
	pthread_t th;
	lb_batch *b = NULL;
	lb_result res;
	int began_early;

	memset(&sw, 0, sizeof sw);
	sw.db = db;
	sw.mode = mode;
	atomic_init(&sw.began, 0);
	atomic_init(&sw.done, 0);

	te_rc(0, lb_batch_begin(db, "first", &b));
	te_rc(0, lb_put(b, "t", "first", 5, "1", 1));
	assert_int_equal(pthread_create(&th, NULL, second_writer, &sw), 0);
	sleep_ms(300);
	/* Read the flag, but end our batch before asserting, so that a
	 * failure cannot leave the other thread blocked forever. */
	began_early = atomic_load(&sw.began);
	if (commit_first) {
		memset(&res, 0, sizeof res);
		te_rc(0, lb_batch_commit(b, &res));
		assert_int_equal(res.batch_id, 2);
		lb_result_free(&res);
	} else {
		lb_batch_abort(b);
	}
	assert_false(began_early);
	assert_true(wait_flag(&sw.done, 10000));
	pthread_join(th, NULL);

	assert_int_equal(sw.rc_begin, 0);
	if (mode == SECOND_BATCH) {
		assert_int_equal(sw.rc_put, 0);
		assert_int_equal(sw.rc_commit, 0);
		assert_int_equal(sw.id, commit_first ? 3 : 2);
		te_assert_get_s(db, "t", "second", "2");
	} else {
		te_recs rs;
		te_changes(db, te_last(db), &rs);
		assert_int_equal(rs.n, 1);
		assert_int_equal(rs.v[0].op, LB_OP_TABLE);
		assert_string_equal(rs.v[0].table, "u");
		te_recs_free(&rs);
	}
	if (commit_first)
		te_assert_get_s(db, "t", "first", "1");
	else
		te_assert_absent_s(db, "t", "first");
	assert_int_equal(te_last(db), commit_first ? 3 : 2);
}

static void test_engine_threads__begin_waits_for_commit(void **state)
{
	run_second_writer(FX(state)->db, SECOND_BATCH, 1);
}

static void test_engine_threads__begin_waits_for_abort(void **state)
{
	run_second_writer(FX(state)->db, SECOND_BATCH, 0);
}

static void test_engine_threads__table_create_waits(void **state)
{
	run_second_writer(FX(state)->db, SECOND_TABLE, 1);
}

/* ---- readers are not blocked by an open batch --------------------------- */

struct probe {
	lb_db *db;
	atomic_int done;
	char fail[256];
};

static void *probe_reader(void *arg)
{
	struct probe *p = arg;
	void *v = NULL;
	size_t vl;
	lb_snapshot *s = NULL;
	lb_cursor *c = NULL;
	const void *k, *sv;
	size_t kl, svl;
	uint64_t last = 0;
	int rc;

	if ((rc = lb_get(p->db, "t", "k", 1, &v, &vl)) != 0 || vl != 9 ||
	    memcmp(v, "committed", 9) != 0)
		snprintf(p->fail, sizeof p->fail,
		         "lb_get rc %d, or it returned the batch's "
		         "uncommitted value",
		         rc);
	free(v);
	if (!p->fail[0] &&
	    ((rc = lb_snapshot_open(p->db, &s)) != 0 ||
	     (rc = lb_cursor_open(s, "t", &c)) != 0 ||
	     (rc = lb_cursor_next(c, &k, &kl, &sv, &svl)) != 0 || kl != 1 ||
	     svl != 9 ||
	     (rc = lb_cursor_next(c, &k, &kl, &sv, &svl)) != LB_ENOTFOUND))
		snprintf(p->fail, sizeof p->fail,
		         "snapshot/cursor: rc %d (uncommitted key visible?)",
		         rc);
	lb_cursor_close(c);
	lb_snapshot_close(s);
	if (!p->fail[0] &&
	    ((rc = lb_last_batch(p->db, &last)) != 0 || last != 2))
		snprintf(p->fail, sizeof p->fail,
		         "lb_last_batch rc %d last %" PRIu64, rc, last);
	atomic_store(&p->done, 1);
	return NULL;
}

static void test_engine_threads__readers_not_blocked_by_batch(void **state)
{
	lb_db *db = FX(state)->db;
	struct probe p;
	pthread_t th;
	lb_batch *b = NULL;
	int done_in_time;

	memset(&p, 0, sizeof p);
	p.db = db;
	atomic_init(&p.done, 0);
	te_put1(db, "t", "k", "committed");
	te_rc(0, lb_batch_begin(db, NULL, &b));
	te_rc(0, lb_put(b, "t", "k", 1, "uncommitted", 11));
	te_rc(0, lb_put(b, "t", "new", 3, "x", 1));
	assert_int_equal(pthread_create(&th, NULL, probe_reader, &p), 0);
	done_in_time = wait_flag(&p.done, 5000);
	te_rc(0, lb_batch_commit(b, NULL));
	pthread_join(th, NULL);
	assert_true(done_in_time);
	if (p.fail[0])
		fail_msg("reader: %s", p.fail);
}

/* ---- concurrent writers serialize ---------------------------------------- */

#define WRITERS 4
#define PER_WRITER 50

struct writer {
	lb_db *db;
	int tid;
	struct errs *errs;
	uint64_t ids[PER_WRITER];
};

static void *counting_writer(void *arg)
{
	struct writer *w = arg;
	int i;
	for (i = 0; i < PER_WRITER; i++) {
		lb_batch *b = NULL;
		lb_result res;
		const void *v;
		size_t vl;
		char buf[32], mk[32];
		unsigned long n = 0;
		int rc;

		if ((rc = lb_batch_begin(w->db, NULL, &b)) != 0) {
			errs_add(w->errs, "begin: %d %s", rc, lb_errmsg());
			return NULL;
		}
		rc = lb_batch_get(b, "t", "counter", 7, &v, &vl);
		if (rc == 0 && vl < sizeof buf) {
			memcpy(buf, v, vl);
			buf[vl] = '\0';
			n = strtoul(buf, NULL, 10);
		} else if (rc != LB_ENOTFOUND) {
			errs_add(w->errs, "batch_get: %d", rc);
		}
		snprintf(buf, sizeof buf, "%lu", n + 1);
		snprintf(mk, sizeof mk, "w%d-%d", w->tid, i);
		if ((rc = lb_put(b, "t", "counter", 7, buf, strlen(buf))) ||
		    (rc = lb_insert(b, "t", mk, strlen(mk), buf, strlen(buf))))
			errs_add(w->errs, "put: %d %s", rc, lb_errmsg());
		memset(&res, 0, sizeof res);
		if ((rc = lb_batch_commit(b, &res)) != 0)
			errs_add(w->errs, "commit: %d %s", rc, lb_errmsg());
		w->ids[i] = res.batch_id;
		lb_result_free(&res);
	}
	return NULL;
}

static void test_engine_threads__writers_serialize(void **state)
{
	lb_db *db = FX(state)->db;
	struct errs errs;
	struct writer w[WRITERS];
	pthread_t th[WRITERS];
	unsigned char seen[1 + WRITERS * PER_WRITER + 1];
	lb_verify_report rep;
	char want[16];
	uint64_t id;
	int i, j;

	errs_init(&errs);
	for (i = 0; i < WRITERS; i++) {
		memset(&w[i], 0, sizeof w[i]);
		w[i].db = db;
		w[i].tid = i;
		w[i].errs = &errs;
		assert_int_equal(
		        pthread_create(&th[i], NULL, counting_writer, &w[i]),
		        0);
	}
	for (i = 0; i < WRITERS; i++)
		pthread_join(th[i], NULL);
	errs_assert_none(&errs);

	/* No lost update: every read-modify-write saw the previous one. */
	snprintf(want, sizeof want, "%d", WRITERS * PER_WRITER);
	te_assert_get_s(db, "t", "counter", want);
	assert_int_equal(te_last(db), 1 + WRITERS * PER_WRITER);

	/* Ids 2..201 were each handed out once, increasing per thread. */
	memset(seen, 0, sizeof seen);
	for (i = 0; i < WRITERS; i++) {
		for (j = 0; j < PER_WRITER; j++) {
			uint64_t id = w[i].ids[j];
			assert_true(id >= 2 && id <= 1 + WRITERS * PER_WRITER);
			assert_false(seen[id]);
			seen[id] = 1;
			if (j)
				assert_true(id > w[i].ids[j - 1]);
		}
	}
	/* Every batch logged exactly its two records, with the counter's
	 * before-image the previous batch's after-image. */
	for (id = 2; id <= 1 + WRITERS * PER_WRITER; id++) {
		char before[16], after[16];
		te_recs rs;
		snprintf(before, sizeof before, "%d", (int)id - 2);
		snprintf(after, sizeof after, "%d", (int)id - 1);
		te_changes(db, id, &rs);
		if (rs.n != 2)
			fail_msg("batch %d logged %zu records, not 2", (int)id,
			         rs.n);
		te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "counter",
		                id == 2 ? NULL : before, after);
		assert_int_equal(rs.v[1].op, LB_OP_PUT);
		assert_false(rs.v[1].has_before);
		assert_int_equal(rs.v[1].alen, strlen(after));
		assert_memory_equal(rs.v[1].after, after, strlen(after));
		te_recs_free(&rs);
	}
	memset(&rep, 0, sizeof rep);
	te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.chain_ok);
	assert_true(rep.replay_ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, te_setup_t, te_teardown)
	        T(test_engine_threads__readers_see_whole_batches),
	        T(test_engine_threads__begin_waits_for_commit),
	        T(test_engine_threads__begin_waits_for_abort),
	        T(test_engine_threads__table_create_waits),
	        T(test_engine_threads__readers_not_blocked_by_batch),
	        T(test_engine_threads__writers_serialize),
#undef T
	};
	return cmocka_run_group_tests_name("engine_threads", tests, NULL, NULL);
}
