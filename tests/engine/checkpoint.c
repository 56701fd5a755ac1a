/* SPDX-License-Identifier: MIT */
/*
 * checkpoint.c: lb_checkpoint and lb_checkpoints. A checkpoint opens as an
 * ordinary database at its batch, holding exactly that batch's state; it is
 * registered in the source (not in itself, and the source's registrations
 * are not copied while the log is not pruned: prune.c tests the copy of a
 * pruned database); the destination must be
 * missing or empty; a checkpoint taken while another thread commits, or
 * while a batch is open, is consistent; a checkpoint killed at any instant
 * leaves no destination that is not a complete checkpoint.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Commit nb batches of per random puts and deletes over 200 keys of "t"
 * (which must exist). */
static void commit_some(lb_db *db, int nb, int per, uint64_t *rng)
{
	uint8_t val[300];
	for (int i = 0; i < nb; i++) {
		lb_batch *b;
		te_rc(0, lb_batch_begin(db, "some", &b));
		for (int j = 0; j < per; j++) {
			char key[16];
			snprintf(key, sizeof key, "k%04d",
			         (int)th_below(rng, 200));
			const void *cur;
			size_t cl;
			if (th_below(rng, 6) == 0 &&
			    lb_batch_get(b, "t", key, strlen(key), &cur, &cl) ==
			            0) {
				te_rc(0, lb_delete(b, "t", key, strlen(key)));
				continue;
			}
			size_t vl = 1 + th_below(rng, sizeof val);
			te_fill(rng, val, vl);
			te_rc(0, lb_put(b, "t", key, strlen(key), val, vl));
		}
		te_rc(0, lb_batch_commit(b, NULL));
	}
}

/* Open a checkpoint, check it verifies (replay included) and return its
 * state digest and last batch. */
static uint64_t ckpt_digest(const char *dir, uint64_t *last)
{
	lb_db *c = te_open(dir, LB_NOSYNC);
	lb_verify_report rep;
	te_rc(0, lb_verify(c, LB_VERIFY_REPLAY, &rep));
	*last = te_last(c);
	uint64_t d = te_digest(c);
	lb_close(c);
	return d;
}

typedef struct clist {
	uint64_t at[8];
	char *path[8];
	int64_t t[8];
	int n, stop_at;
} clist;

static int list_cb(void *ctx, uint64_t batch, const char *path, int64_t time_ns)
{
	clist *l = ctx;
	if (l->n < 8) {
		l->at[l->n] = batch;
		l->path[l->n] = strdup(path);
		l->t[l->n] = time_ns;
	}
	l->n++;
	return l->stop_at && l->n == l->stop_at ? 42 : 0;
}

static void clist_free(clist *l)
{
	for (int i = 0; i < l->n && i < 8; i++)
		free(l->path[i]);
	memset(l, 0, sizeof *l);
}

/* The names in dir other than . and .. (at most 16, malloc'd). */
static int dir_names(const char *dir, char *names[16])
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && n < 16)
			names[n++] = strdup(e->d_name);
	closedir(d);
	return n;
}

static void test_engine_checkpoint__copy_opens_at_its_batch(void **state)
{
	te_fx *fx = *state;
	uint64_t rng = th_seed(11), at = 99, last;
	commit_some(fx->db, 20, 30, &rng);
	uint64_t want = te_digest(fx->db);
	char *base = th_tmpdir();
	char *dest = th_path(base, "a/b/ckpt"); /* parents are created */
	te_rc(0, lb_checkpoint(fx->db, dest, &at));
	assert_int_equal(at, te_last(fx->db));
	assert_int_equal(ckpt_digest(dest, &last), want);
	assert_int_equal(last, at);
	/* the copy lists no checkpoints; it holds data.mdb only */
	lb_db *c = te_open(dest, LB_RDONLY);
	clist l = {0};
	te_rc(0, lb_checkpoints(c, list_cb, &l));
	assert_int_equal(l.n, 0);
	lb_close(c);
	/* nothing else was left next to it */
	char *names[16], *parent = th_path(base, "a/b");
	assert_int_equal(dir_names(parent, names), 1);
	assert_string_equal(names[0], "ckpt");
	free(names[0]);
	/* later batches do not change it */
	commit_some(fx->db, 3, 10, &rng);
	assert_int_equal(ckpt_digest(dest, &last), want);
	th_rmrf(base);
	free(parent);
	free(dest);
	free(base);
}

static void test_engine_checkpoint__listed_in_source(void **state)
{
	te_fx *fx = *state;
	uint64_t rng = th_seed(12), at1, at2, at3;
	char *base = th_tmpdir();
	char *d1 = th_path(base, "one"), *d2 = th_path(base, "two"),
	     *d3 = th_path(base, "three");
	int64_t t0 = te_now_ns();
	commit_some(fx->db, 4, 10, &rng);
	te_rc(0, lb_checkpoint(fx->db, d2, &at2));
	commit_some(fx->db, 4, 10, &rng);
	te_rc(0, lb_checkpoint(fx->db, d1, &at1));
	int64_t t1 = te_now_ns();
	assert_true(at1 > at2);
	clist l = {0};
	te_rc(0, lb_checkpoints(fx->db, list_cb, &l));
	assert_int_equal(l.n, 2);
	/* oldest first, absolute paths, times of the calls */
	assert_int_equal(l.at[0], at2);
	assert_int_equal(l.at[1], at1);
	char *r1 = realpath(d1, NULL), *r2 = realpath(d2, NULL);
	assert_string_equal(l.path[0], r2);
	assert_string_equal(l.path[1], r1);
	for (int i = 0; i < 2; i++)
		assert_true(l.t[i] >= t0 && l.t[i] <= t1);
	clist_free(&l);
	/* a second checkpoint at the same batch replaces the entry */
	te_rc(0, lb_checkpoint(fx->db, d3, &at3));
	assert_int_equal(at3, at1);
	te_rc(0, lb_checkpoints(fx->db, list_cb, &l));
	assert_int_equal(l.n, 2);
	char *r3 = realpath(d3, NULL);
	assert_string_equal(l.path[1], r3);
	clist_free(&l);
	/* the source's registrations are not the copy's (its log is not
	 * pruned: it needs no base to replay from) */
	lb_db *c = te_open(d3, LB_RDONLY);
	te_rc(0, lb_checkpoints(c, list_cb, &l));
	assert_int_equal(l.n, 0);
	lb_close(c);
	/* a callback's non-zero value stops the walk and is returned */
	l.stop_at = 1;
	assert_int_equal(lb_checkpoints(fx->db, list_cb, &l), 42);
	assert_int_equal(l.n, 1);
	clist_free(&l);
	/* registering consumed no batch id */
	uint64_t before = te_last(fx->db);
	assert_int_equal(te_put1(fx->db, "t", "x", "y"), before + 1);
	free(r1);
	free(r2);
	free(r3);
	free(d1);
	free(d2);
	free(d3);
	th_rmrf(base);
	free(base);
}

static void test_engine_checkpoint__destination_must_be_empty(void **state)
{
	te_fx *fx = *state;
	char *base = th_tmpdir();
	char *full = th_path(base, "full"), *file = th_path(base, "file"),
	     *empty = th_path(base, "empty"), *inside = th_path(full, "x");
	uint64_t at = 7;
	assert_int_equal(mkdir(full, 0755), 0);
	FILE *f = fopen(inside, "w");
	assert_non_null(f);
	fputs("keep me", f);
	fclose(f);
	f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	te_rc(LB_EEXIST, lb_checkpoint(fx->db, full, &at));
	assert_int_equal(at, 0);
	te_rc(LB_EEXIST, lb_checkpoint(fx->db, file, NULL));
	/* untouched, and nothing was left beside them */
	char *names[16];
	int n = dir_names(full, names);
	assert_int_equal(n, 1);
	free(names[0]);
	n = dir_names(base, names);
	assert_int_equal(n, 2);
	for (int i = 0; i < n; i++)
		free(names[i]);
	/* an empty directory is fine */
	assert_int_equal(mkdir(empty, 0755), 0);
	te_rc(0, lb_checkpoint(fx->db, empty, &at));
	assert_int_equal(at, te_last(fx->db));
	/* and the checkpoint itself is now a non-empty destination */
	te_rc(LB_EEXIST, lb_checkpoint(fx->db, empty, NULL));
	th_rmrf(base);
	free(full);
	free(file);
	free(empty);
	free(inside);
	free(base);
}

static void test_engine_checkpoint__bad_arguments(void **state)
{
	te_fx *fx = *state;
	uint64_t at = 5;
	te_rc(LB_EINVAL, lb_checkpoint(NULL, "/nonexistent/x", &at));
	assert_int_equal(at, 0);
	te_rc(LB_EINVAL, lb_checkpoint(fx->db, NULL, &at));
	te_rc(LB_EINVAL, lb_checkpoint(fx->db, "", &at));
	te_rc(LB_EINVAL, lb_checkpoints(NULL, list_cb, NULL));
	te_rc(LB_EINVAL, lb_checkpoints(fx->db, NULL, NULL));
}

static void test_engine_checkpoint__read_only_refused(void **state)
{
	te_fx *fx = *state;
	char *base = th_tmpdir(), *dest = th_path(base, "c");
	lb_close(fx->db);
	fx->db = te_open(fx->dir, LB_RDONLY);
	te_rc(LB_EINVAL, lb_checkpoint(fx->db, dest, NULL));
	assert_int_equal(access(dest, F_OK), -1);
	th_rmrf(base);
	free(dest);
	free(base);
}

static void test_engine_checkpoint__empty_database(void **state)
{
	(void)state;
	char *dir = th_tmpdir(), *base = th_tmpdir();
	char *dest = th_path(base, "c");
	lb_db *db = te_open(dir, LB_CREATE | LB_NOSYNC);
	uint64_t at = 9, last;
	te_rc(0, lb_checkpoint(db, dest, &at));
	assert_int_equal(at, 0);
	lb_close(db);
	uint64_t d = ckpt_digest(dest, &last);
	(void)d;
	assert_int_equal(last, 0);
	th_rmrf(dir);
	th_rmrf(base);
	free(dest);
	free(dir);
	free(base);
}

/* ---- concurrency --------------------------------------------------------- */

enum { MAXB = 4096 };

typedef struct writer {
	lb_db *db;
	uint64_t digest[MAXB];
	volatile int stop;
	volatile uint64_t last;
	int failed;
	uint64_t rng;
} writer;

static void *writer_main(void *p)
{
	writer *w = p;
	uint8_t val[200];
	while (!w->stop && !w->failed) {
		lb_batch *b;
		if (lb_batch_begin(w->db, "w", &b) < 0) {
			w->failed = 1;
			break;
		}
		for (int j = 0; j < 40 && !w->failed; j++) {
			char key[16];
			snprintf(key, sizeof key, "w%05d",
			         (int)th_below(&w->rng, 5000));
			size_t vl = 1 + th_below(&w->rng, sizeof val);
			te_fill(&w->rng, val, vl);
			if (lb_put(b, "t", key, strlen(key), val, vl) < 0)
				w->failed = 1;
		}
		lb_result res;
		if (w->failed || lb_batch_commit(b, &res) < 0) {
			w->failed = 1;
			break;
		}
		if (res.batch_id >= MAXB) {
			w->stop = 1;
			break;
		}
		/* only this thread commits: the snapshot is res.batch_id's */
		w->digest[res.batch_id] = te_digest(w->db);
		w->last = res.batch_id;
	}
	return NULL;
}

static void test_engine_checkpoint__taken_while_committing(void **state)
{
	te_fx *fx = *state;
	writer *w = calloc(1, sizeof *w);
	pthread_t th;
	char *base = th_tmpdir();
	uint64_t rng = th_seed(13), at[4];
	assert_non_null(w);
	/* some bulk, so that a copy takes a while */
	commit_some(fx->db, 30, 100, &rng);
	w->db = fx->db;
	w->rng = rng;
	w->digest[te_last(fx->db)] = te_digest(fx->db);
	w->last = te_last(fx->db);
	assert_int_equal(pthread_create(&th, NULL, writer_main, w), 0);
	for (int i = 0; i < 4; i++) {
		char name[16];
		uint64_t seen = w->last;
		while (w->last < seen + 3 && !w->failed && !w->stop)
			usleep(1000);
		snprintf(name, sizeof name, "c%d", i);
		char *dest = th_path(base, name);
		te_rc(0, lb_checkpoint(fx->db, dest, &at[i]));
		free(dest);
	}
	w->stop = 1;
	pthread_join(th, NULL);
	assert_false(w->failed);
	for (int i = 0; i < 4; i++) {
		char name[16];
		uint64_t last;
		snprintf(name, sizeof name, "c%d", i);
		char *dest = th_path(base, name);
		assert_true(at[i] > 0 && at[i] <= w->last);
		assert_int_equal(ckpt_digest(dest, &last), w->digest[at[i]]);
		assert_int_equal(last, at[i]);
		free(dest);
	}
	th_rmrf(base);
	free(base);
	free(w);
}

typedef struct opener {
	lb_db *db;
	int phase; /* 1 batch open, 2 go on */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int rc;
} opener;

static void *open_batch_main(void *p)
{
	opener *o = p;
	lb_batch *b;
	o->rc = lb_batch_begin(o->db, "open", &b);
	if (o->rc == 0)
		o->rc = lb_put(b, "t", "during", 6, "x", 1);
	pthread_mutex_lock(&o->mu);
	o->phase = 1;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	/* hold the batch (and the writer lock) a while */
	usleep(100 * 1000);
	if (o->rc == 0)
		o->rc = lb_batch_commit(b, NULL);
	return NULL;
}

static void test_engine_checkpoint__open_batch_not_included(void **state)
{
	te_fx *fx = *state;
	opener o = {fx->db, 0, PTHREAD_MUTEX_INITIALIZER,
	            PTHREAD_COND_INITIALIZER, 0};
	pthread_t th;
	char *base = th_tmpdir(), *dest = th_path(base, "c");
	te_put1(fx->db, "t", "before", "y");
	uint64_t want = te_digest(fx->db), at, last;
	assert_int_equal(pthread_create(&th, NULL, open_batch_main, &o), 0);
	pthread_mutex_lock(&o.mu);
	while (o.phase == 0)
		pthread_cond_wait(&o.cv, &o.mu);
	pthread_mutex_unlock(&o.mu);
	/* readers are not blocked by the open batch, nor is the copy */
	lb_snapshot *s;
	te_rc(0, lb_snapshot_open(fx->db, &s));
	te_rc(0, lb_checkpoint(fx->db, dest, &at));
	lb_snapshot_close(s);
	pthread_join(th, NULL);
	te_rc(0, o.rc);
	assert_int_equal(at, te_last(fx->db) - 1);
	assert_int_equal(ckpt_digest(dest, &last), want);
	assert_int_equal(last, at);
	th_rmrf(base);
	free(dest);
	free(base);
}

/* A checkpoint killed at any instant leaves no destination, or a complete
 * one. */
static void test_engine_checkpoint__killed_leaves_nothing_partial(void **state)
{
	te_fx *fx = *state;
	uint64_t rng = th_seed(14);
	char *base = th_tmpdir();
	commit_some(fx->db, 60, 400, &rng); /* some MB */
	uint64_t want = te_digest(fx->db), last_src = te_last(fx->db);
	/* how long one takes here, to spread the kills over it */
	char *ref = th_path(base, "ref");
	int64_t t0 = te_mono_ns();
	te_rc(0, lb_checkpoint(fx->db, ref, NULL));
	int64_t took = te_mono_ns() - t0;
	th_rmrf(ref);
	free(ref);
	lb_close(fx->db);
	fx->db = NULL;
	int complete = 0, absent = 0;
	for (int i = 0; i < 8; i++) {
		char name[16];
		snprintf(name, sizeof name, "k%d", i);
		char *dest = th_path(base, name);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			lb_db *db;
			if (lb_open(fx->dir, NULL, &db) < 0)
				_exit(2);
			_exit(lb_checkpoint(db, dest, NULL) < 0 ? 3 : 0);
		}
		/* from at once to well after it would have finished */
		int64_t wait = took * i / 4 + (int64_t)th_below(&rng, 1000000);
		usleep((useconds_t)(wait / 1000));
		kill(pid, SIGKILL);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st) || WEXITSTATUS(st) == 0);
		if (access(dest, F_OK) == 0) {
			uint64_t last;
			assert_int_equal(ckpt_digest(dest, &last), want);
			assert_int_equal(last, last_src);
			complete++;
		} else {
			absent++;
		}
		free(dest);
	}
	/* only hidden temporaries may be left besides */
	char *names[16];
	int n = dir_names(base, names);
	for (int i = 0; i < n; i++) {
		if (names[i][0] != '.')
			assert_int_equal(names[i][0], 'k');
		free(names[i]);
	}
	assert_int_equal(complete + absent, 8);
	fx->db = te_open(fx->dir, LB_NOSYNC);
	th_rmrf(base);
	free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, te_setup_t, te_teardown)
	        T(test_engine_checkpoint__copy_opens_at_its_batch),
	        T(test_engine_checkpoint__listed_in_source),
	        T(test_engine_checkpoint__destination_must_be_empty),
	        T(test_engine_checkpoint__bad_arguments),
	        T(test_engine_checkpoint__read_only_refused),
	        T(test_engine_checkpoint__empty_database),
	        T(test_engine_checkpoint__taken_while_committing),
	        T(test_engine_checkpoint__open_batch_not_included),
	        T(test_engine_checkpoint__killed_leaves_nothing_partial),
#undef T
	};
	return cmocka_run_group_tests_name("engine_checkpoint", tests, NULL,
	                                   NULL);
}
