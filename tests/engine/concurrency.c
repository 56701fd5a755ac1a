/* SPDX-License-Identifier: MIT */
/*
 * Concurrency: reader threads take snapshots and walk cursors while one
 * thread commits, rolls back (strict and rollback_to), checkpoints and
 * replays, on a map that starts small and grows under the readers.
 *
 * Every batch writes all NKEYS keys of table "g" and the key "gen" with
 * one generation tag, so a snapshot that sees a batch only in part would
 * see two tags (a rollback restores a whole earlier generation, and a
 * rollback_to to the table's creation removes them all). Readers check,
 * in every snapshot: through a cursor and through lb_snapshot_get, either
 * no key at all or every key with the tag of "gen"; the last batch's
 * header and records; and, with lb_get, that a key's value is well formed.
 *
 * Built as usual it runs in `make test`; `make tsan` builds it with
 * -fsanitize=thread and runs it there, where any data race fails it.
 * LB_TSAN_MS sets how long the writer runs (default 1500 ms).
 *
 * cmocka's assertions belong to the main thread: workers record failures,
 * the main thread asserts after joining them.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 16
#define NREADERS 3

struct shared {
	lb_db *db;
	const char *root;
	atomic_int stop;
	atomic_int nerr;
	pthread_mutex_t mu;
	char first[512];
	atomic_ulong snapshots, mixed_seen, commits, rollbacks, rollback_tos,
	        checkpoints, replays, empty_seen;
};

static void err(struct shared *sh, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&sh->mu);
	if (atomic_fetch_add(&sh->nerr, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(sh->first, sizeof sh->first, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&sh->mu);
	atomic_store(&sh->stop, 1);
}

/* Value of key i in generation g: "g<g>-<i>-" then filler up to a size
 * that varies with g, so that the map keeps growing. */
static size_t value_of(uint64_t g, int i, char *v, size_t cap)
{
	int n = snprintf(v, cap, "g%" PRIu64 "-%d-", g, i);
	size_t len = (size_t)n + 200 + (size_t)((g * 131 + (uint64_t)i) % 3000);
	if (len > cap)
		len = cap;
	memset(v + n, 'a' + (int)(g % 26), len - (size_t)n);
	return len;
}

/* The tag of a value: the "g<g>-" prefix. 0 if malformed. */
static uint64_t tag_of(const void *v, size_t vl)
{
	const char *s = v;
	uint64_t g = 0;
	size_t i = 1;
	if (vl < 3 || s[0] != 'g')
		return 0;
	while (i < vl && s[i] >= '0' && s[i] <= '9')
		g = g * 10 + (uint64_t)(s[i++] - '0');
	return i < vl && s[i] == '-' ? g : 0;
}

/* ---- the writer ---------------------------------------------------------- */

static int commit_gen(struct shared *sh, uint64_t g)
{
	lb_batch *b = NULL;
	char v[4096], gv[32], label[32];
	int rc;
	snprintf(label, sizeof label, "gen %" PRIu64, g);
	if ((rc = lb_batch_begin(sh->db, label, &b)) != 0)
		return rc;
	for (int i = 0; i < NKEYS && rc == 0; i++) {
		char k[16];
		snprintf(k, sizeof k, "k%02d", i);
		rc = lb_put(b, "g", k, 3, v, value_of(g, i, v, sizeof v));
	}
	int gl = snprintf(gv, sizeof gv, "g%" PRIu64 "-", g);
	if (rc == 0)
		rc = lb_put(b, "g", "gen", 3, gv, (size_t)gl);
	if (rc != 0) {
		lb_batch_abort(b);
		return rc;
	}
	return lb_batch_commit(b, NULL);
}

static void *writer(void *arg)
{
	struct shared *sh = arg;
	uint64_t rng = th_seed(0xc0c0a), g = 1, last;
	int64_t until =
	        te_mono_ns() + th_env_long("LB_TSAN_MS", 1500) * 1000000LL;
	unsigned seq = 0;
	/* Past the time asked for, go on until a few batches are in: on a
	 * loaded machine, or under valgrind, which runs one thread at a
	 * time, the writer may have had little of it (bounded: 60 s). */
	int64_t hard = until + 60 * 1000000000LL;
	while (!atomic_load(&sh->stop) &&
	       (te_mono_ns() < until ||
	        (atomic_load(&sh->commits) <= 10 && te_mono_ns() < hard))) {
		uint64_t u = th_below(&rng, 100);
		lb_result res;
		int rc = 0;
		if (lb_last_batch(sh->db, &last) != 0) {
			err(sh, "lb_last_batch: %s", lb_errmsg());
			break;
		}
		if (u < 60 || last < 3) {
			rc = commit_gen(sh, ++g);
			atomic_fetch_add(&sh->commits, 1);
		} else if (u < 80) {
			/* undo the last batch (a rollback of a rollback
			 * redoes); the table's own batch stays */
			rc = lb_rollback(sh->db, last, 0, &res);
			lb_result_free(&res);
			if (rc == LB_EINVAL) /* already rolled back */
				rc = 0;
			atomic_fetch_add(&sh->rollbacks, 1);
		} else if (u < 88) {
			uint64_t x = 1 + th_below(&rng, last);
			rc = lb_rollback_to(sh->db, x, &res);
			lb_result_free(&res);
			atomic_fetch_add(&sh->rollback_tos, 1);
		} else if (u < 95) {
			char *d, name[32];
			snprintf(name, sizeof name, "ck%u", seq++);
			d = th_path(sh->root, name);
			rc = lb_checkpoint(sh->db, d, NULL);
			th_rmrf(d);
			free(d);
			atomic_fetch_add(&sh->checkpoints, 1);
		} else {
			char *d, name[32];
			snprintf(name, sizeof name, "rp%u", seq++);
			d = th_path(sh->root, name);
			rc = lb_replay(sh->db, d, 0, NULL, &res);
			lb_result_free(&res);
			th_rmrf(d);
			free(d);
			atomic_fetch_add(&sh->replays, 1);
		}
		if (rc != 0) {
			err(sh, "writer step %" PRIu64 ": %s (%s)", u,
			    lb_strerror(rc), lb_errmsg());
			break;
		}
	}
	atomic_store(&sh->stop, 1);
	return NULL;
}

/* ---- the readers ----------------------------------------------------------
 */

static int count_cb(void *ctx, const lb_change *c)
{
	(void)c;
	(*(uint64_t *)ctx)++;
	return 0;
}

static void one_snapshot(struct shared *sh, uint64_t *rng)
{
	lb_snapshot *s = NULL;
	lb_cursor *c = NULL;
	const void *k, *v;
	size_t kl, vl;
	uint64_t want = 0;
	int rc, n = 0;
	if ((rc = lb_snapshot_open(sh->db, &s)) != 0) {
		err(sh, "lb_snapshot_open: %s", lb_errmsg());
		return;
	}
	rc = lb_snapshot_get(s, "g", "gen", 3, &v, &vl);
	if (rc == 0)
		want = tag_of(v, vl);
	else if (rc != LB_ENOTFOUND)
		err(sh, "lb_snapshot_get(gen): %s", lb_errmsg());
	if (rc == 0 && want == 0)
		err(sh, "gen is malformed");
	if ((rc = lb_cursor_open(s, "g", &c)) != 0) {
		err(sh, "lb_cursor_open: %s", lb_errmsg());
		lb_snapshot_close(s);
		return;
	}
	if (th_below(rng, 2))
		lb_cursor_seek(c, "k05", 3);
	while ((rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0) {
		n++;
		if (tag_of(v, vl) != want) {
			atomic_fetch_add(&sh->mixed_seen, 1);
			err(sh,
			    "snapshot mixes batches: %.*s has tag %" PRIu64
			    ", gen is %" PRIu64,
			    (int)kl, (const char *)k, tag_of(v, vl), want);
			break;
		}
	}
	if (rc != 0 && rc != LB_ENOTFOUND)
		err(sh, "lb_cursor_next: %s", lb_errmsg());
	lb_cursor_close(c);
	if (!want)
		atomic_fetch_add(&sh->empty_seen, 1);
	/* the same through point reads */
	for (int i = 0; i < NKEYS; i++) {
		char key[16];
		snprintf(key, sizeof key, "k%02d", i);
		rc = lb_snapshot_get(s, "g", key, 3, &v, &vl);
		if (want ? rc != 0 || tag_of(v, vl) != want
		         : rc != LB_ENOTFOUND) {
			err(sh, "lb_snapshot_get(%s) disagrees with gen", key);
			break;
		}
	}
	lb_snapshot_close(s);
	atomic_fetch_add(&sh->snapshots, 1);
}

static void *reader(void *arg)
{
	struct shared *sh = arg;
	uint64_t rng = (uint64_t)(uintptr_t)&rng;
	while (!atomic_load(&sh->stop)) {
		uint64_t u = th_below(&rng, 10), last;
		if (u < 7) {
			one_snapshot(sh, &rng);
		} else if (u < 9) {
			/* the log, read while it grows */
			lb_batch_info bi;
			uint64_t n = 0;
			int rc;
			if (lb_last_batch(sh->db, &last) != 0) {
				err(sh, "lb_last_batch: %s", lb_errmsg());
				break;
			}
			uint64_t id = 1 + th_below(&rng, last);
			if ((rc = lb_batch_info_get(sh->db, id, &bi)) != 0) {
				err(sh, "lb_batch_info_get(%" PRIu64 "): %s",
				    id, lb_errmsg());
				break;
			}
			rc = lb_changes(sh->db, id, count_cb, &n);
			if (rc != 0 || n != bi.records) {
				err(sh,
				    "lb_changes(%" PRIu64 "): %s, %" PRIu64
				    " records of %" PRIu64,
				    id, lb_strerror(rc), n, bi.records);
				break;
			}
		} else {
			void *v = NULL;
			size_t vl;
			int rc = lb_get(sh->db, "g", "k07", 3, &v, &vl);
			if (rc == 0 && !tag_of(v, vl))
				err(sh, "lb_get: a malformed value");
			else if (rc != 0 && rc != LB_ENOTFOUND)
				err(sh, "lb_get: %s", lb_errmsg());
			free(v);
		}
	}
	return NULL;
}

static void test_engine_concurrency__snapshots_see_whole_batches(void **state)
{
	char *root = th_tmpdir(), *dir = th_path(root, "db");
	lb_options o;
	lb_db *db;
	pthread_t w, r[NREADERS];
	struct shared sh;
	lb_verify_report rep;
	(void)state;

	lb_options_init(&o);
	o.flags = LB_CREATE | LB_NOSYNC;
	o.map_size = 256u << 10; /* grows while readers hold snapshots */
	db = te_open_opts(dir, &o);
	te_rc(0, lb_table_create(db, "g", NULL));

	memset(&sh, 0, sizeof sh);
	sh.db = db;
	sh.root = root;
	pthread_mutex_init(&sh.mu, NULL);
	for (int i = 0; i < NREADERS; i++)
		assert_int_equal(pthread_create(&r[i], NULL, reader, &sh), 0);
	assert_int_equal(pthread_create(&w, NULL, writer, &sh), 0);
	pthread_join(w, NULL);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(r[i], NULL);
	if (atomic_load(&sh.nerr))
		fail_msg("%d failures; the first: %s", atomic_load(&sh.nerr),
		         sh.first);
	printf("concurrency: %lu commits, %lu rollbacks, %lu rollback_tos, "
	       "%lu checkpoints, %lu replays; %lu snapshots checked (%lu "
	       "empty)\n",
	       atomic_load(&sh.commits), atomic_load(&sh.rollbacks),
	       atomic_load(&sh.rollback_tos), atomic_load(&sh.checkpoints),
	       atomic_load(&sh.replays), atomic_load(&sh.snapshots),
	       atomic_load(&sh.empty_seen));
	assert_true(atomic_load(&sh.commits) > 5);
	assert_true(atomic_load(&sh.snapshots) > 5);
	te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
	lb_close(db);
	pthread_mutex_destroy(&sh.mu);
	th_rmrf(root);
	free(dir);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(
	                test_engine_concurrency__snapshots_see_whole_batches),
	};
	return cmocka_run_group_tests_name("engine_concurrency", tests, NULL,
	                                   NULL);
}
