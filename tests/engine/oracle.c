/* SPDX-License-Identifier: MIT */
/*
 * A brute-force oracle for rollback: many seeded random histories over the
 * small key space of _model.h, each run on a live database and on the
 * model side by side, and directed tests of the cases docs/ROLLBACK.md
 * works through.
 *
 * One history mixes commits (puts, inserts, updates, deletes, some
 * refused), strict, cascading and forced rollbacks (dry runs first half of
 * the time), rollbacks of undo batches (of rollbacks, cascades and
 * rollback-to batches), rollback_to, close and reopen with other segment
 * sizes and compression levels, checkpoints, replays to an earlier batch
 * (from empty or from a checkpoint) and lb_verify with replay. After every
 * step: the live tables equal the model's, every batch's header (undoes,
 * rolled_back_by, records) is the model's, and the model agrees with
 * itself (its records replay to its state, its marks recompute the same).
 * Every call's return code, issues, record count and batch id are checked
 * against the model's prediction as the step is taken.
 *
 * Each seed runs in a forked child, two or more at a time; a failing seed
 * is run again with shorter prefixes of its steps (bisecting, each in a
 * fresh directory) to find the shortest failing one, which is run once more
 * with a trace of every step: a reproducer.
 *
 * Environment: LB_TEST_SEED (the first seed; the others follow it),
 * LB_ORACLE_SEEDS (default 20; 4 under valgrind), LB_ORACLE_STEPS (steps
 * per seed, default 1000), LB_ORACLE_JOBS (children at a time, default
 * the CPUs, at most 4), LB_ORACLE_TRACE=1 (every child traces its steps to
 * stderr).
 */
#define _GNU_SOURCE
#include "_common.h"
#include "_model.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* ---- one seed ------------------------------------------------------------ */

typedef struct ostats {
	unsigned long steps, batches, commits, rollbacks, cascades,
	        cascades_of_undo, undo_targets, of_cascades, of_rollback_tos,
	        forced, rollback_tos, replays, replays_ckpt, verifies,
	        checkpoints, reopens, dryruns, conflicts, fk_refused, einval,
	        enotfound, noops, cascade_noops;
} ostats;

/* Shared with the parent: a child's progress and, when done, its figures.
 */
typedef struct oslot {
	volatile long step;  /* the step being taken; steps + 1: final checks */
	volatile int done;   /* every step and the final checks passed */
	volatile int ended;  /* the child's cmocka group ended ... */
	volatile int failed; /* ... with this many failures */
	ostats st;
} oslot;

#define NCKPT 6
/* lb_verify with replay, and a check of every batch's header against the
 * model, every so many steps (and at the end): both read the whole log, so
 * at every step they would take most of the time. At least every 16
 * steps, and about 64 times a seed in longer runs. Between them, each step
 * checks the last RECENT headers and those whose state the model changed.
 */
#define VERIFY_EVERY 16
#define VERIFIES 64
#define RECENT 16

typedef struct orun {
	tm_model *m;
	lb_db *db;
	char *root, *dir;
	uint64_t rng;
	char *ckpt[NCKPT];
	uint64_t ckpt_at[NCKPT];
	int nckpt;
	unsigned long replays, replays_ckpt, verifies, checkpoints;
	int nrep; /* replay directories made, for their names */
} orun;

/* The child's run, set before the nested cmocka group starts. */
static struct {
	uint64_t seed;
	long steps;
	oslot *slot;
	const char *root;
	int trace;
} g_child;

#define OR_CHECK(r, cond, ...)                                                 \
	do {                                                                   \
		if (!(cond)) {                                                 \
			th_seed_report();                                      \
			fprintf(stderr, "oracle step %llu: ",                  \
			        (unsigned long long)(r)->m->steps);            \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			fail();                                                \
		}                                                              \
	} while (0)

static void reopen(orun *r)
{
	static const size_t segs[] = {256, 1024, 0};
	static const int levels[] = {-1, 0, 6};
	lb_close(r->db);
	lb_options_init(&r->m->opts);
	r->m->opts.flags = LB_NOSYNC;
	r->m->opts.segment_size = segs[th_below(&r->rng, 3)];
	r->m->opts.compression = levels[th_below(&r->rng, 3)];
	r->db = te_open_opts(r->dir, &r->m->opts);
	r->m->stats.reopens++;
	if (r->m->trace)
		fprintf(stderr, "step %llu: close and reopen\n",
		        (unsigned long long)r->m->steps);
}

static void checkpoint(orun *r)
{
	char name[16];
	uint64_t at = 0;
	if (r->nckpt == NCKPT)
		return;
	snprintf(name, sizeof name, "ck%d", r->nckpt);
	char *path = th_path(r->root, name);
	te_rc(0, lb_checkpoint(r->db, path, &at));
	OR_CHECK(r, at == tm_last(r->m), "checkpoint at %llu, last is %llu",
	         (unsigned long long)at, (unsigned long long)tm_last(r->m));
	r->ckpt[r->nckpt] = path;
	r->ckpt_at[r->nckpt++] = at;
	r->checkpoints++;
	if (r->m->trace)
		fprintf(stderr, "step %llu: checkpoint at %llu\n",
		        (unsigned long long)r->m->steps,
		        (unsigned long long)at);
}

/* Replay to a random batch P (or 0 = the last), from empty or from a
 * checkpoint at or before P, into a fresh directory: the result holds the
 * model's state right after P, and every header shows the standing of
 * batches as it was right after P (the model's, from its first P batches
 * alone). */
static void replay(orun *r)
{
	uint64_t n = tm_last(r->m), p, arg;
	const char *from = NULL;
	char name[16];
	lb_result res;
	if (th_below(&r->rng, 10) == 0)
		p = n, arg = 0;
	else if (th_below(&r->rng, 2))
		p = n - th_below(&r->rng, n < 20 ? n : 20), arg = p;
	else
		p = 1 + th_below(&r->rng, n), arg = p;
	if (r->nckpt && th_below(&r->rng, 2)) {
		int c = (int)th_below(&r->rng, (uint64_t)r->nckpt);
		if (r->ckpt_at[c] <= p) {
			from = r->ckpt[c];
			r->replays_ckpt++;
		}
	}
	snprintf(name, sizeof name, "rp%d", r->nrep++);
	char *dest = th_path(r->root, name);
	if (r->m->trace)
		fprintf(stderr, "step %llu: replay to %llu%s\n",
		        (unsigned long long)r->m->steps, (unsigned long long)p,
		        from ? " from a checkpoint" : "");
	memset(&res, 0, sizeof res);
	te_rc(0, lb_replay(r->db, dest, arg, from, &res));
	OR_CHECK(r, res.rc == 0 && res.batch_id == p && res.nissues == 0,
	         "replay to %llu: rc %d, batch %llu, %zu issues",
	         (unsigned long long)p, res.rc,
	         (unsigned long long)res.batch_id, res.nissues);
	lb_result_free(&res);
	lb_db *rdb = te_open(dest, LB_NOSYNC);
	tm_assert_state(tm_state_at(r->m, p), rdb);
	tm_assert_log_at(r->m, rdb, p, th_below(&r->rng, 4) == 0);
	lb_verify_report rep;
	te_rc(0, lb_verify(rdb, 0, &rep));
	OR_CHECK(r, rep.chain_ok && rep.batches == p,
	         "the replay to %llu verifies %llu batches: %s",
	         (unsigned long long)p, (unsigned long long)rep.batches,
	         rep.detail);
	lb_close(rdb);
	th_rmrf(dest);
	free(dest);
	r->replays++;
}

static void verify(orun *r)
{
	lb_verify_report rep;
	memset(&rep, 0, sizeof rep);
	int rc = lb_verify(r->db, LB_VERIFY_REPLAY, &rep);
	OR_CHECK(r, rc == 0 && rep.chain_ok && rep.replay_ok,
	         "lb_verify(LB_VERIFY_REPLAY) = %s: batch %llu: %s",
	         lb_strerror(rc), (unsigned long long)rep.bad_batch,
	         rep.detail);
	OR_CHECK(r, rep.batches == tm_last(r->m),
	         "lb_verify counted %llu batches, the model has %llu",
	         (unsigned long long)rep.batches,
	         (unsigned long long)tm_last(r->m));
	r->verifies++;
	if (r->m->trace)
		fprintf(stderr, "step %llu: verify with replay\n",
		        (unsigned long long)r->m->steps);
}

/* A standing undo batch, or 0. */
static uint64_t standing_undo(orun *r)
{
	uint64_t cand[32];
	size_t nc = 0;
	for (uint64_t id = tm_last(r->m); id > TM_SETUP && nc < 32; id--) {
		const tm_batch *b = tm_batch_at(r->m, id);
		if ((b->kind == TM_B_ROLLBACK || b->kind == TM_B_ROLLBACK_TO) &&
		    !b->rolled_back_by)
			cand[nc++] = id;
	}
	return nc ? cand[th_below(&r->rng, nc)] : 0;
}

/* lb_rollback: half of the time a dry run first, which must answer as the
 * real call does (both are checked against the same prediction). */
static void rollback(orun *r, uint64_t id, unsigned flags)
{
	if (!(flags & LB_DRYRUN) && th_below(&r->rng, 2))
		tm_rollback(r->m, r->db, id, flags | LB_DRYRUN);
	tm_rollback(r->m, r->db, id, flags);
}

static void step(orun *r)
{
	tm_model *m = r->m;
	uint64_t u = th_below(&r->rng, 100), n = tm_last(m);
	if (u < 44) {
		tm_user_batch(m, r->db, &r->rng);
	} else if (u < 71) {
		rollback(r, tm_pick_target(m, &r->rng), tm_pick_flags(&r->rng));
	} else if (u < 81) {
		/* an undo batch: strict, cascading or forced */
		static const unsigned fl[] = {0, LB_CASCADE, LB_CASCADE,
		                              LB_FORCE};
		uint64_t id = standing_undo(r);
		if (!id)
			id = tm_pick_target(m, &r->rng);
		rollback(r, id, fl[th_below(&r->rng, 4)]);
	} else if (u < 90) {
		uint64_t v = th_below(&r->rng, 100), x;
		if (v < 5)
			x = n;
		else if (v < 8)
			x = n + 1 + th_below(&r->rng, 2);
		else if (v < 75)
			x = n - th_below(&r->rng, 15);
		else
			x = TM_SETUP + th_below(&r->rng, n - TM_SETUP + 1);
		if (x < TM_SETUP)
			x = TM_SETUP;
		/* half of the time a dry run first; now and then flags that
		 * are refused */
		uint64_t f = th_below(&r->rng, 100);
		if (f < 50)
			tm_rollback_to_ex(m, r->db, x, LB_DRYRUN);
		else if (f < 53 && x <= n)
			tm_rollback_to_ex(m, r->db, x,
			                  f == 50 ? LB_CASCADE : 8u);
		tm_rollback_to(m, r->db, x);
	} else if (u < 93) {
		reopen(r);
	} else if (u < 95) {
		checkpoint(r);
	} else {
		replay(r);
	}
}

static void run_seed(uint64_t seed, long steps, oslot *slot, const char *root,
                     int trace)
{
	orun r;
	lb_options o;
	memset(&r, 0, sizeof r);
	r.rng = seed;
	r.root = (char *)root;
	r.dir = th_path(root, "db");
	r.m = tm_new(1);
	r.m->trace = trace;
	lb_options_init(&o);
	o.flags = LB_CREATE | LB_NOSYNC;
	o.segment_size = (seed & 1) ? 256 : 0;
	o.compression = (seed & 2) ? 0 : -1;
	r.m->opts = o;
	r.m->opts.flags = LB_NOSYNC;
	r.db = te_open_opts(r.dir, &o);
	if (trace)
		fprintf(stderr, "seed %llu, %ld steps\n",
		        (unsigned long long)seed, steps);
	tm_setup(r.m, r.db);
	long every = steps / VERIFIES > VERIFY_EVERY ? steps / VERIFIES
	                                             : VERIFY_EVERY;
	uint64_t *seen = NULL;
	size_t nseen = 0;
	for (long i = 1; i <= steps; i++) {
		slot->step = i;
		r.m->steps = (uint64_t)i;
		step(&r);
		tm_assert_db(r.m, r.db);
		tm_self_check(r.m);
		if (i % every == 0) {
			tm_assert_recent(r.m, r.db, tm_last(r.m));
			verify(&r);
		} else {
			tm_assert_changed(r.m, r.db, RECENT, &seen, &nseen);
		}
	}
	free(seen);
	/* the final checks: every batch's records, a replay of the whole
	 * log, and lb_verify with replay */
	slot->step = steps + 1;
	r.m->steps = (uint64_t)steps + 1;
	tm_assert_log(r.m, r.db);
	verify(&r);
	{
		char *dest = th_path(root, "final");
		te_rc(0, lb_replay(r.db, dest, 0, NULL, NULL));
		lb_db *rdb = te_open(dest, LB_NOSYNC);
		tm_assert_db(r.m, rdb);
		tm_assert_log_at(r.m, rdb, tm_last(r.m), 1);
		lb_close(rdb);
		th_rmrf(dest);
		free(dest);
	}
	ostats *st = &slot->st;
	memset(st, 0, sizeof *st);
	st->steps = (unsigned long)steps;
	st->batches = tm_last(r.m);
	st->commits = r.m->stats.batches;
	st->rollbacks = r.m->stats.rollbacks;
	st->cascades = r.m->stats.cascades;
	st->cascades_of_undo = r.m->stats.cascades_of_undo;
	st->undo_targets = r.m->stats.undo_targets;
	st->of_cascades = r.m->stats.of_cascades;
	st->of_rollback_tos = r.m->stats.of_rollback_tos;
	st->forced = r.m->stats.forced;
	st->rollback_tos = r.m->stats.rollback_tos;
	st->replays = r.replays;
	st->replays_ckpt = r.replays_ckpt;
	st->verifies = r.verifies;
	st->checkpoints = r.checkpoints;
	st->reopens = r.m->stats.reopens;
	st->dryruns = r.m->stats.dryruns;
	st->conflicts = r.m->stats.conflicts;
	st->fk_refused = r.m->stats.fk_refused;
	st->einval = r.m->stats.einval;
	st->enotfound = r.m->stats.enotfound;
	st->noops = r.m->stats.noops;
	st->cascade_noops = r.m->stats.cascade_noops;
	slot->done = 1;
	lb_close(r.db);
	tm_free(r.m);
	for (int i = 0; i < r.nckpt; i++)
		free(r.ckpt[i]);
	free(r.dir);
}

/* Run in a forked child, inside its own cmocka group. */
static void test_engine_oracle__one_seed(void **state)
{
	(void)state;
	run_seed(g_child.seed, g_child.steps, g_child.slot, g_child.root,
	         g_child.trace);
}

/* Fork a child that runs `steps` steps of seed in a fresh directory under
 * root, its output going to log (or to ours when log is NULL). */
static pid_t spawn(uint64_t seed, long steps, oslot *slot, const char *root,
                   const char *log, int trace)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid > 0)
		return pid;
	if (log) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
			fprintf(stderr, "oracle: %s: %s\n", log,
			        strerror(errno));
			_exit(2);
		}
		close(fd);
	}
	char s[32];
	snprintf(s, sizeof s, "%llu", (unsigned long long)seed);
	setenv("LB_TEST_SEED", s, 1);
	th_seed(seed);
	g_child.seed = seed;
	g_child.steps = steps;
	g_child.slot = slot;
	g_child.root = root;
	g_child.trace = trace;
	const struct CMUnitTest t[] = {
	        cmocka_unit_test(test_engine_oracle__one_seed),
	};
	slot->failed =
	        cmocka_run_group_tests_name("oracle_seed", t, NULL, NULL);
	slot->ended = 1;
	fflush(stdout);
	fflush(stderr);
	/* nothing runs at the child's exit (under valgrind: no leak check
	 * of the memory the parent held when it forked) */
	kill(getpid(), SIGKILL);
	_exit(100);
}

/* Did the child of slot pass: its group ended without a failure, after
 * every step and the final checks? (A child that crashed never ends.) */
static int passed(const oslot *slot)
{
	return slot->ended && !slot->failed && slot->done;
}

static void reap(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0)
		assert_int_equal(errno, EINTR);
}

/* Run `steps` steps of seed in a child and a fresh directory; did every
 * check pass? */
static int run_quiet(uint64_t seed, long steps, oslot *slot, const char *log)
{
	char *root = th_tmpdir();
	memset((void *)slot, 0, sizeof *slot);
	reap(spawn(seed, steps, slot, root, log, 0));
	int ok = passed(slot);
	th_rmrf(root);
	free(root);
	return ok;
}

static void print_tail(const char *path, int lines)
{
	FILE *f = fopen(path, "r");
	char **ring = calloc((size_t)lines, sizeof *ring), *line = NULL;
	size_t cap = 0;
	long n = 0;
	if (!f || !ring) {
		fprintf(stderr, "oracle: no log %s\n", path);
		if (f)
			fclose(f);
		free(ring);
		return;
	}
	while (getline(&line, &cap, f) > 0) {
		free(ring[n % lines]);
		ring[n % lines] = strdup(line);
		n++;
	}
	for (long i = n > lines ? n - lines : 0; i < n; i++)
		fputs(ring[i % lines], stderr);
	for (int i = 0; i < lines; i++)
		free(ring[i]);
	free(ring);
	free(line);
	fclose(f);
}

/* Seed failed at step `at` (of steps): find the shortest failing prefix by
 * bisection (each run a fresh child in a fresh directory), then run it
 * once more with every step traced. */
static void shortest_prefix(uint64_t seed, long steps, long at, oslot *slot,
                            const char *log)
{
	long lo = 0, hi = at < 1 ? 1 : (at > steps ? steps : at);
	if (!run_quiet(seed, hi, slot, log)) {
		/* as expected: the prefix up to the failing step fails */
	} else if (run_quiet(seed, steps, slot, log)) {
		fprintf(stderr,
		        "oracle: seed %llu passes when run again: not "
		        "reproducible\n",
		        (unsigned long long)seed);
		return;
	} else
		hi = steps;
	if (!run_quiet(seed, 0, slot, log))
		hi = 0;
	while (hi - lo > 1) {
		long mid = lo + (hi - lo) / 2;
		if (run_quiet(seed, mid, slot, log))
			lo = mid;
		else
			hi = mid;
	}
	fprintf(stderr,
	        "oracle: shortest failing prefix of seed %llu: %ld steps "
	        "(rerun: LB_TEST_SEED=%llu LB_ORACLE_SEEDS=1 "
	        "LB_ORACLE_STEPS=%ld); its trace:\n",
	        (unsigned long long)seed, hi, (unsigned long long)seed, hi);
	char *root = th_tmpdir();
	memset((void *)slot, 0, sizeof *slot);
	reap(spawn(seed, hi, slot, root, NULL, 1));
	if (passed(slot))
		fprintf(stderr,
		        "oracle: the traced run passed: seed %llu "
		        "does not fail the same way twice\n",
		        (unsigned long long)seed);
	th_rmrf(root);
	free(root);
}

static void add_stats(ostats *a, const ostats *b)
{
	unsigned long *x = (unsigned long *)a;
	const unsigned long *y = (const unsigned long *)b;
	for (size_t i = 0; i < sizeof *a / sizeof *x; i++)
		x[i] += y[i];
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_engine_oracle__random_histories(void **state)
{
	(void)state;
	uint64_t base = th_seed(0x6f7261636c650001ull);
	/* under valgrind (make valgrind), a few seeds find what it looks for
	 * in a fraction of the time */
	long nseeds = th_env_long("LB_ORACLE_SEEDS",
	                          RUNNING_ON_VALGRIND ? 4 : 20),
	     steps = th_env_long("LB_ORACLE_STEPS", 1000);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	long jobs = th_env_long("LB_ORACLE_JOBS",
	                        cpus < 1 ? 1 : (cpus > 4 ? 4 : cpus));
	int trace = th_env_long("LB_ORACLE_TRACE", 0) != 0;
	assert_true(nseeds >= 1 && steps >= 0 && jobs >= 1);
	oslot *slots =
	        mmap(NULL, (size_t)nseeds * sizeof *slots,
	             PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(slots != MAP_FAILED);
	memset(slots, 0, (size_t)nseeds * sizeof *slots);
	char *logs = th_tmpdir();
	pid_t *pids = calloc((size_t)nseeds, sizeof *pids);
	char **roots = calloc((size_t)nseeds, sizeof *roots);
	int *ok = calloc((size_t)nseeds, sizeof *ok);
	assert_true(pids && roots && ok);
	double t0 = now_s();
	long next = 0, running = 0, failed = 0;
	while (next < nseeds || running > 0) {
		if (next < nseeds && running < jobs) {
			char name[32];
			snprintf(name, sizeof name, "seed%ld.log", next);
			char *log = th_path(logs, name);
			roots[next] = th_tmpdir();
			pids[next] = spawn(base + (uint64_t)next, steps,
			                   &slots[next], roots[next],
			                   trace ? NULL : log, trace);
			free(log);
			next++;
			running++;
			continue;
		}
		int status;
		pid_t pid = wait(&status);
		if (pid < 0) {
			assert_int_equal(errno, EINTR);
			continue;
		}
		for (long i = 0; i < next; i++)
			if (pids[i] == pid) {
				ok[i] = passed(&slots[i]);
				th_rmrf(roots[i]);
				free(roots[i]);
				roots[i] = NULL;
				pids[i] = 0;
				running--;
			}
	}
	double took = now_s() - t0;
	ostats sum;
	memset(&sum, 0, sizeof sum);
	for (long i = 0; i < nseeds; i++) {
		if (ok[i]) {
			add_stats(&sum, &slots[i].st);
			continue;
		}
		uint64_t seed = base + (uint64_t)i;
		long at = slots[i].step;
		char name[32];
		snprintf(name, sizeof name, "seed%ld.log", i);
		char *log = th_path(logs, name);
		fprintf(stderr,
		        "oracle: seed %llu failed at step %ld of %ld%s (rerun: "
		        "LB_TEST_SEED=%llu LB_ORACLE_SEEDS=1 "
		        "LB_ORACLE_STEPS=%ld):\n",
		        (unsigned long long)seed, at > steps ? steps : at,
		        steps, at > steps ? " (final checks)" : "",
		        (unsigned long long)seed, steps);
		if (!trace)
			print_tail(log, 40);
		if (failed++ == 0)
			shortest_prefix(seed, steps, at, &slots[i], log);
		free(log);
	}
	fprintf(stderr,
	        "oracle: %ld seeds x %ld steps in %.1f s (%ld at a time): "
	        "%lu batches: %lu commits, %lu rollbacks (%lu of undo "
	        "batches: %lu of cascades, %lu of rollback_to), %lu cascades "
	        "(%lu of undo batches), %lu forced, "
	        "%lu rollback_to; %lu with nothing to write (%lu cascades); "
	        "%lu dry runs, %lu replays (%lu from checkpoints), %lu "
	        "verifies, %lu checkpoints, %lu reopens; refused: %lu "
	        "ECONFLICT, %lu EVALIDATION, %lu EINVAL, %lu ENOTFOUND\n",
	        nseeds, steps, took, jobs, sum.batches, sum.commits,
	        sum.rollbacks, sum.undo_targets, sum.of_cascades,
	        sum.of_rollback_tos, sum.cascades, sum.cascades_of_undo,
	        sum.forced, sum.rollback_tos, sum.noops, sum.cascade_noops,
	        sum.dryruns, sum.replays, sum.replays_ckpt, sum.verifies,
	        sum.checkpoints, sum.reopens, sum.conflicts, sum.fk_refused,
	        sum.einval, sum.enotfound);
	th_rmrf(logs);
	free(logs);
	free(pids);
	free(roots);
	free(ok);
	munmap(slots, (size_t)nseeds * sizeof *slots);
	if (failed)
		th_seed_report();
	assert_int_equal(failed, 0);
	/* the random mix did exercise what it is for */
	if (nseeds * steps >= 5000) {
		th_assert_seeded(sum.cascades_of_undo > 0);
		th_assert_seeded(sum.undo_targets > sum.cascades_of_undo);
		th_assert_seeded(sum.of_cascades > 0);
		th_assert_seeded(sum.of_rollback_tos > 0);
		th_assert_seeded(sum.forced > 0);
		th_assert_seeded(sum.rollback_tos > 0);
		th_assert_seeded(sum.replays_ckpt > 0);
		th_assert_seeded(sum.verifies > 0);
		th_assert_seeded(sum.conflicts > 0 && sum.fk_refused > 0);
		th_assert_seeded(sum.einval > 0 && sum.enotfound > 0);
	}
}

/* ---- directed tests --------------------------------------------------------
 * The cases docs/ROLLBACK.md works through, on table t (batch 1, opaque).
 * Every expected value below was worked out by hand from the document. */

/* Commit one batch of puts to t: key, value, key, value, ..., NULL. Returns
 * its id. */
static uint64_t commit(lb_db *db, const char *key, ...)
{
	lb_batch *b = NULL;
	lb_result res;
	va_list ap;
	uint64_t n = 0, last = te_last(db);
	te_rc(0, lb_batch_begin(db, NULL, &b));
	va_start(ap, key);
	for (const char *k = key; k; k = va_arg(ap, const char *)) {
		const char *v = va_arg(ap, const char *);
		te_rc(0, lb_put(b, "t", k, strlen(k), v, strlen(v)));
		n++;
	}
	va_end(ap);
	memset(&res, 0, sizeof res);
	te_rc(0, lb_batch_commit(b, &res));
	assert_int_equal(res.batch_id, last + 1);
	assert_int_equal(res.records, n);
	lb_result_free(&res);
	return last + 1;
}

/* res->undone lists exactly the batches of want (newest first, ending in
 * 0). */
static void undone_are(const lb_result *res, const uint64_t *want)
{
	size_t n = 0;
	while (want[n])
		n++;
	assert_int_equal(res->nundone, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(res->undone[i], want[i]);
}

static const uint64_t none[] = {0};

/* lb_rollback with LB_DRYRUN added: returns want, with `records` records on
 * success, and changes nothing. The result is left in *res. */
static void dry(lb_db *db, uint64_t id, unsigned flags, int want,
                uint64_t records, lb_result *res)
{
	uint64_t last = te_last(db), dig = te_digest(db);
	lb_batch_info before, after;
	te_rc(0, lb_batch_info_get(db, id, &before));
	te_rc(want, lb_rollback(db, id, flags | LB_DRYRUN, res));
	assert_int_equal(res->rc, want);
	assert_int_equal(res->batch_id, 0);
	assert_int_equal(res->records, want == 0 ? records : 0);
	assert_int_equal(te_last(db), last);
	assert_true(te_digest(db) == dig);
	te_rc(0, lb_batch_info_get(db, id, &after));
	assert_int_equal(after.rolled_back_by, before.rolled_back_by);
}

/* The same rollback as a dry run, then for real: both return want, with
 * the same issues, and on success `records` records and the batches
 * `undone` (newest first, ending in 0) undone (the real call in a new
 * batch, whose id it returns; 0 when nothing is written). */
static uint64_t rb(lb_db *db, uint64_t id, unsigned flags, int want,
                   uint64_t records, const uint64_t *undone)
{
	lb_result d, res;
	uint64_t last = te_last(db);
	dry(db, id, flags, want, records, &d);
	undone_are(&d, undone);
	te_rc(want, lb_rollback(db, id, flags, &res));
	undone_are(&res, undone);
	assert_int_equal(res.rc, want);
	assert_int_equal(res.records, want == 0 ? records : 0);
	assert_int_equal(res.batch_id, want == 0 && records ? last + 1 : 0);
	assert_int_equal(te_last(db), res.batch_id ? last + 1 : last);
	assert_int_equal(res.nissues, d.nissues);
	assert_int_equal(res.nissues_total, d.nissues_total);
	for (size_t i = 0; i < res.nissues; i++) {
		assert_int_equal(res.issues[i].kind, d.issues[i].kind);
		assert_string_equal(res.issues[i].table, d.issues[i].table);
		assert_int_equal(res.issues[i].klen, d.issues[i].klen);
		assert_memory_equal(res.issues[i].key, d.issues[i].key,
		                    d.issues[i].klen);
		assert_int_equal(res.issues[i].batch, d.issues[i].batch);
	}
	uint64_t n = res.batch_id;
	lb_result_free(&d);
	lb_result_free(&res);
	if (n) {
		lb_batch_info bi;
		te_rc(0, lb_batch_info_get(db, n, &bi));
		assert_int_equal(bi.undoes, id);
		assert_int_equal(bi.records, records);
		assert_int_equal(bi.rolled_back_by, 0);
	}
	return n;
}

/* lb_rollback_to(x), as a dry run (lb_rollback_to_ex), then for real: 0,
 * `records` records, undoing the batches of `undone` (newest first, ending
 * in 0); the real call in a new batch whose undoes is x. */
static uint64_t rb_to(lb_db *db, uint64_t x, uint64_t records,
                      const uint64_t *undone)
{
	lb_result res;
	uint64_t last = te_last(db), dig = te_digest(db);
	te_rc(0, lb_rollback_to_ex(db, x, LB_DRYRUN, &res));
	assert_int_equal(res.rc, 0);
	assert_int_equal(res.records, records);
	assert_int_equal(res.batch_id, 0);
	undone_are(&res, undone);
	lb_result_free(&res);
	assert_int_equal(te_last(db), last);
	assert_true(te_digest(db) == dig);
	te_rc(0, lb_rollback_to(db, x, &res));
	assert_int_equal(res.rc, 0);
	assert_int_equal(res.records, records);
	assert_int_equal(res.batch_id, records ? last + 1 : 0);
	undone_are(&res, undone);
	lb_result_free(&res);
	if (records) {
		lb_batch_info bi;
		te_rc(0, lb_batch_info_get(db, last + 1, &bi));
		assert_int_equal(bi.undoes, x);
		assert_int_equal(bi.records, records);
	}
	return records ? last + 1 : 0;
}

/* Batches 1..n have rolled_back_by want[1..n] (want[0] unused). */
static void marks_are(lb_db *db, uint64_t n, const uint64_t *want)
{
	assert_int_equal(te_last(db), n);
	for (uint64_t id = 1; id <= n; id++) {
		lb_batch_info bi;
		te_rc(0, lb_batch_info_get(db, id, &bi));
		if (bi.rolled_back_by != want[id])
			fprintf(stderr,
			        "batch %llu: rolled back by %llu, not "
			        "%llu\n",
			        (unsigned long long)id,
			        (unsigned long long)bi.rolled_back_by,
			        (unsigned long long)want[id]);
		assert_int_equal(bi.rolled_back_by, want[id]);
	}
}

static void verify_ok(lb_db *db)
{
	lb_verify_report rep;
	te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.chain_ok && rep.replay_ok);
	assert_int_equal(rep.batches, te_last(db));
}

/* 2: k="1"; 3: j="1"; 4: k="2"; 5: j="2" k="3". A cascade of 3 undoes 5
 * too (5 changed j after 3), leaving k="2" and j absent. A strict rollback
 * of 4 then meets k="2" again, its own after-image: no conflict. And a
 * cascade of 4 undoes 4 alone: 5 does not stand and 6 is an undo batch,
 * so neither joins, and 3 is not redone. */
static void
test_engine_oracle__cascade_keeps_away_what_a_rollback_took(void **state)
{
	lb_db *db = ((te_fx *)*state)->db;
	te_recs rs;
	lb_result res;
	assert_int_equal(commit(db, "k", "1", NULL), 2);
	assert_int_equal(commit(db, "j", "1", NULL), 3);
	assert_int_equal(commit(db, "k", "2", NULL), 4);
	assert_int_equal(commit(db, "j", "2", "k", "3", NULL), 5);

	assert_int_equal(
	        rb(db, 3, LB_CASCADE, 0, 3, (const uint64_t[]){5, 3, 0}), 6);
	te_changes(db, 6, &rs);
	assert_int_equal(rs.n, 3);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "k", "3", "2");
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "j", "2", "1");
	te_assert_rec_s(&rs.v[2], LB_OP_DELETE, "t", "j", "1", NULL);
	te_recs_free(&rs);
	te_assert_get_s(db, "t", "k", "2");
	te_assert_absent_s(db, "t", "j");
	marks_are(db, 6, (const uint64_t[]){0, 0, 0, 6, 0, 6, 0});

	dry(db, 4, 0, 0, 1, &res);
	undone_are(&res, (const uint64_t[]){4, 0});
	lb_result_free(&res);

	assert_int_equal(rb(db, 4, LB_CASCADE, 0, 1, (const uint64_t[]){4, 0}),
	                 7);
	te_changes(db, 7, &rs);
	assert_int_equal(rs.n, 1);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "k", "2", "1");
	te_recs_free(&rs);
	te_assert_get_s(db, "t", "k", "1");
	te_assert_absent_s(db, "t", "j");
	marks_are(db, 7, (const uint64_t[]){0, 0, 0, 6, 7, 6, 0, 0});
	verify_ok(db);
}

/* 2: k="a"; 3: rollback of 2; 4: k="b"; 5: rollback of 4. rollback_to(4)
 * (6) undoes 5, so 4 stands again and k="b". A cascade of 3 brings 2 back
 * (moved), and 4 changed k after 2 and stands with or without 3: batch 7
 * undoes 3 and 4, k="a", and 2 stands again; 6 still stands (it undid 5,
 * which still does not stand). */
static void
test_engine_oracle__cascade_of_a_rollback_after_rollback_to(void **state)
{
	lb_db *db = ((te_fx *)*state)->db;
	te_recs rs;
	assert_int_equal(commit(db, "k", "a", NULL), 2);
	assert_int_equal(rb(db, 2, 0, 0, 1, (const uint64_t[]){2, 0}), 3);
	assert_int_equal(commit(db, "k", "b", NULL), 4);
	assert_int_equal(rb(db, 4, 0, 0, 1, (const uint64_t[]){4, 0}), 5);
	te_assert_absent_s(db, "t", "k");

	assert_int_equal(rb_to(db, 4, 1, (const uint64_t[]){5, 0}), 6);
	te_changes(db, 6, &rs);
	assert_int_equal(rs.n, 1);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "k", NULL, "b");
	te_recs_free(&rs);
	te_assert_get_s(db, "t", "k", "b");
	marks_are(db, 6, (const uint64_t[]){0, 0, 3, 0, 0, 6, 0});

	assert_int_equal(
	        rb(db, 3, LB_CASCADE, 0, 2, (const uint64_t[]){4, 3, 0}), 7);
	te_changes(db, 7, &rs);
	assert_int_equal(rs.n, 2);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "k", "b", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "k", NULL, "a");
	te_recs_free(&rs);
	te_assert_get_s(db, "t", "k", "a");
	marks_are(db, 7, (const uint64_t[]){0, 0, 0, 7, 7, 6, 0, 0});
	verify_ok(db);
}

/* 2: k="b"; 3: k="u"; 4: k="u" again; 5: rollback of 3 (k holds "u", 3's
 * after-image: no conflict; k="b"). A cascade of 2 undoes 4 (standing, it
 * changed k after 2) and 2, without a conflict: k ends absent. */
static void test_engine_oracle__cascade_over_a_key_put_back(void **state)
{
	lb_db *db = ((te_fx *)*state)->db;
	te_recs rs;
	assert_int_equal(commit(db, "k", "b", NULL), 2);
	assert_int_equal(commit(db, "k", "u", NULL), 3);
	assert_int_equal(commit(db, "k", "u", NULL), 4);
	assert_int_equal(rb(db, 3, 0, 0, 1, (const uint64_t[]){3, 0}), 5);
	te_assert_get_s(db, "t", "k", "b");

	assert_int_equal(
	        rb(db, 2, LB_CASCADE, 0, 2, (const uint64_t[]){4, 2, 0}), 6);
	te_changes(db, 6, &rs);
	assert_int_equal(rs.n, 2);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "k", "b", "u");
	te_assert_rec_s(&rs.v[1], LB_OP_DELETE, "t", "k", "u", NULL);
	te_recs_free(&rs);
	te_assert_absent_s(db, "t", "k");
	marks_are(db, 6, (const uint64_t[]){0, 0, 6, 5, 6, 0, 0});
	verify_ok(db);
}

/* 2: k="1"; 3: k="2"; 4: rollback of 3; 5: rollback of 4; 6: rollback of
 * 5. 6 stands, so 5 does not, so 4 stands, so 3 does not: a cascade of 2
 * finds no standing batch on top of it and undoes 2 alone. */
static void test_engine_oracle__cascade_under_a_chain_of_rollbacks(void **state)
{
	lb_db *db = ((te_fx *)*state)->db;
	te_recs rs;
	assert_int_equal(commit(db, "k", "1", NULL), 2);
	assert_int_equal(commit(db, "k", "2", NULL), 3);
	assert_int_equal(rb(db, 3, 0, 0, 1, (const uint64_t[]){3, 0}), 4);
	assert_int_equal(rb(db, 4, 0, 0, 1, (const uint64_t[]){4, 0}), 5);
	marks_are(db, 5, (const uint64_t[]){0, 0, 0, 0, 5, 0});
	assert_int_equal(rb(db, 5, 0, 0, 1, (const uint64_t[]){5, 0}), 6);
	marks_are(db, 6, (const uint64_t[]){0, 0, 0, 4, 0, 6, 0});
	te_assert_get_s(db, "t", "k", "1");

	assert_int_equal(rb(db, 2, LB_CASCADE, 0, 1, (const uint64_t[]){2, 0}),
	                 7);
	te_changes(db, 7, &rs);
	assert_int_equal(rs.n, 1);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "k", "1", NULL);
	te_recs_free(&rs);
	te_assert_absent_s(db, "t", "k");
	marks_are(db, 7, (const uint64_t[]){0, 0, 7, 4, 0, 6, 0, 0});
	verify_ok(db);
}

/* 2: k="b"; 3: k="m"; 4: rollback of 3; 5: rollback_to(3), which undoes
 * 4, so 3 stands again (k="m"). A cascade of 2 undoes 3 (standing, on top
 * of 2) and then 2. */
static void test_engine_oracle__cascade_after_rollback_to_redid(void **state)
{
	lb_db *db = ((te_fx *)*state)->db;
	te_recs rs;
	assert_int_equal(commit(db, "k", "b", NULL), 2);
	assert_int_equal(commit(db, "k", "m", NULL), 3);
	assert_int_equal(rb(db, 3, 0, 0, 1, (const uint64_t[]){3, 0}), 4);
	assert_int_equal(rb_to(db, 3, 1, (const uint64_t[]){4, 0}), 5);
	te_changes(db, 5, &rs);
	assert_int_equal(rs.n, 1);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "k", "b", "m");
	te_recs_free(&rs);
	marks_are(db, 5, (const uint64_t[]){0, 0, 0, 0, 5, 0});

	assert_int_equal(
	        rb(db, 2, LB_CASCADE, 0, 2, (const uint64_t[]){3, 2, 0}), 6);
	te_changes(db, 6, &rs);
	assert_int_equal(rs.n, 2);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "k", "m", "b");
	te_assert_rec_s(&rs.v[1], LB_OP_DELETE, "t", "k", "b", NULL);
	te_recs_free(&rs);
	te_assert_absent_s(db, "t", "k");
	marks_are(db, 6, (const uint64_t[]){0, 0, 6, 6, 5, 0, 0});
	verify_ok(db);
}

/* 2: k="0" j="0"; 3: m="1"; 4: k="1"; 5: rollback_to(3) (k="0"); 6: j="1";
 * 7: k="2". rollback_to(2) writes the net change back to the state after
 * 2: deletions first (m), then puts in key order (j, then k), and undoes
 * every batch after 2, standing or not. */
static void test_engine_oracle__rollback_to_record_order(void **state)
{
	lb_db *db = ((te_fx *)*state)->db;
	te_recs rs;
	assert_int_equal(commit(db, "k", "0", "j", "0", NULL), 2);
	assert_int_equal(commit(db, "m", "1", NULL), 3);
	assert_int_equal(commit(db, "k", "1", NULL), 4);
	assert_int_equal(rb_to(db, 3, 1, (const uint64_t[]){4, 0}), 5);
	te_assert_get_s(db, "t", "k", "0");
	assert_int_equal(commit(db, "j", "1", NULL), 6);
	assert_int_equal(commit(db, "k", "2", NULL), 7);
	marks_are(db, 7, (const uint64_t[]){0, 0, 0, 0, 5, 0, 0, 0});

	assert_int_equal(rb_to(db, 2, 3, (const uint64_t[]){7, 6, 5, 4, 3, 0}),
	                 8);
	te_changes(db, 8, &rs);
	assert_int_equal(rs.n, 3);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "m", "1", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "j", "1", "0");
	te_assert_rec_s(&rs.v[2], LB_OP_PUT, "t", "k", "2", "0");
	te_recs_free(&rs);
	te_assert_get_s(db, "t", "k", "0");
	te_assert_get_s(db, "t", "j", "0");
	te_assert_absent_s(db, "t", "m");
	marks_are(db, 8, (const uint64_t[]){0, 0, 0, 8, 8, 8, 8, 8, 0});
	verify_ok(db);
}

/* docs/ROLLBACK.md's cascade: 2: k1="b"; 3: k1="c" k2="c"; 4: k2="d"
 * k3="d"; 5: k9="e". A cascade of 2 (6) undoes 4, 3 and 2. Rolling 6 back
 * (7) redoes them: 2, 3 and 4 stand again, and each can then be rolled
 * back on its own, strictly: 4, then 3, then 2. */
static void
test_engine_oracle__undone_by_a_rolled_back_cascade_stand(void **state)
{
	lb_db *db = ((te_fx *)*state)->db;
	te_recs rs;
	assert_int_equal(commit(db, "k1", "b", NULL), 2);
	assert_int_equal(commit(db, "k1", "c", "k2", "c", NULL), 3);
	assert_int_equal(commit(db, "k2", "d", "k3", "d", NULL), 4);
	assert_int_equal(commit(db, "k9", "e", NULL), 5);
	assert_int_equal(rb(db, 2, 0, LB_ECONFLICT, 0, none), 0);

	assert_int_equal(
	        rb(db, 2, LB_CASCADE, 0, 5, (const uint64_t[]){4, 3, 2, 0}), 6);
	te_changes(db, 6, &rs);
	assert_int_equal(rs.n, 5);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "k3", "d", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "k2", "d", "c");
	te_assert_rec_s(&rs.v[2], LB_OP_DELETE, "t", "k2", "c", NULL);
	te_assert_rec_s(&rs.v[3], LB_OP_PUT, "t", "k1", "c", "b");
	te_assert_rec_s(&rs.v[4], LB_OP_DELETE, "t", "k1", "b", NULL);
	te_recs_free(&rs);
	marks_are(db, 6, (const uint64_t[]){0, 0, 6, 6, 6, 0, 0});

	assert_int_equal(rb(db, 6, 0, 0, 5, (const uint64_t[]){6, 0}), 7);
	te_assert_get_s(db, "t", "k1", "c");
	te_assert_get_s(db, "t", "k2", "d");
	te_assert_get_s(db, "t", "k3", "d");
	te_assert_get_s(db, "t", "k9", "e");
	marks_are(db, 7, (const uint64_t[]){0, 0, 0, 0, 0, 0, 7, 0});

	assert_int_equal(rb(db, 4, 0, 0, 2, (const uint64_t[]){4, 0}), 8);
	te_changes(db, 8, &rs);
	assert_int_equal(rs.n, 2);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "k3", "d", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "k2", "d", "c");
	te_recs_free(&rs);
	assert_int_equal(rb(db, 3, 0, 0, 2, (const uint64_t[]){3, 0}), 9);
	te_changes(db, 9, &rs);
	assert_int_equal(rs.n, 2);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "k2", "c", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "k1", "c", "b");
	te_recs_free(&rs);
	assert_int_equal(rb(db, 2, 0, 0, 1, (const uint64_t[]){2, 0}), 10);
	te_assert_absent_s(db, "t", "k1");
	te_assert_absent_s(db, "t", "k2");
	te_assert_absent_s(db, "t", "k3");
	te_assert_get_s(db, "t", "k9", "e");
	marks_are(db, 10, (const uint64_t[]){0, 0, 10, 9, 8, 0, 7, 0, 0, 0, 0});
	verify_ok(db);
}

/* docs/ROLLBACK.md, "A redo is followed to the batch it brought back": 2:
 * k="1"; 3: k="2" j="2"; 4: rollback of 3; 5: rollback of 4 (3 stands
 * again). A cascade of 2 undoes 3, then 2; 4 stays rolled back by 5, and 5
 * stands. */
static void test_engine_oracle__cascade_follows_a_redo(void **state)
{
	lb_db *db = ((te_fx *)*state)->db;
	te_recs rs;
	assert_int_equal(commit(db, "k", "1", NULL), 2);
	assert_int_equal(commit(db, "k", "2", "j", "2", NULL), 3);
	assert_int_equal(rb(db, 3, 0, 0, 2, (const uint64_t[]){3, 0}), 4);
	assert_int_equal(rb(db, 4, 0, 0, 2, (const uint64_t[]){4, 0}), 5);
	marks_are(db, 5, (const uint64_t[]){0, 0, 0, 0, 5, 0});

	assert_int_equal(
	        rb(db, 2, LB_CASCADE, 0, 3, (const uint64_t[]){3, 2, 0}), 6);
	te_changes(db, 6, &rs);
	assert_int_equal(rs.n, 3);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "j", "2", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "k", "2", "1");
	te_assert_rec_s(&rs.v[2], LB_OP_DELETE, "t", "k", "1", NULL);
	te_recs_free(&rs);
	te_assert_absent_s(db, "t", "k");
	te_assert_absent_s(db, "t", "j");
	marks_are(db, 6, (const uint64_t[]){0, 0, 6, 6, 5, 0, 0});
	verify_ok(db);
}

/* docs/ROLLBACK.md's rollback_to: 2: a="1" b="2"; 3: a="9", b deleted,
 * d="4"; 4: rollback of 3; 5: a="10" f="6". rollback_to(2) deletes f and
 * puts a back to "1" (b and d hold their values of batch 2 already); 3, 4
 * and 5 are rolled back by 6. */
static void test_engine_oracle__rollback_to_example(void **state)
{
	lb_db *db = ((te_fx *)*state)->db;
	lb_batch *b = NULL;
	te_recs rs;
	assert_int_equal(commit(db, "a", "1", "b", "2", NULL), 2);
	te_rc(0, lb_batch_begin(db, NULL, &b));
	te_rc(0, lb_put(b, "t", "a", 1, "9", 1));
	te_rc(0, lb_delete(b, "t", "b", 1));
	te_rc(0, lb_put(b, "t", "d", 1, "4", 1));
	te_rc(0, lb_batch_commit(b, NULL));
	assert_int_equal(rb(db, 3, 0, 0, 3, (const uint64_t[]){3, 0}), 4);
	assert_int_equal(commit(db, "a", "10", "f", "6", NULL), 5);

	assert_int_equal(rb_to(db, 2, 2, (const uint64_t[]){5, 4, 3, 0}), 6);
	te_changes(db, 6, &rs);
	assert_int_equal(rs.n, 2);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "f", "6", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "a", "10", "1");
	te_recs_free(&rs);
	te_assert_get_s(db, "t", "a", "1");
	te_assert_get_s(db, "t", "b", "2");
	te_assert_absent_s(db, "t", "d");
	te_assert_absent_s(db, "t", "f");
	marks_are(db, 6, (const uint64_t[]){0, 0, 0, 6, 6, 6, 0});
	verify_ok(db);
}

/* docs/ROLLBACK.md, LB_FORCE: a batch that only created keys, all of them
 * gone already, leaves nothing to write: 0, no batch, no record, nothing
 * undone, and it still stands. */
static void test_engine_oracle__force_with_nothing_to_write(void **state)
{
	lb_db *db = ((te_fx *)*state)->db;
	assert_int_equal(commit(db, "k", "1", "j", "1", NULL), 2);
	assert_int_equal(te_del1(db, "t", "k"), 3);
	assert_int_equal(te_del1(db, "t", "j"), 4);
	assert_int_equal(rb(db, 2, LB_FORCE, 0, 0, none), 0);
	marks_are(db, 4, (const uint64_t[]){0, 0, 0, 0, 0});
	/* with one of them back, force deletes that one alone */
	assert_int_equal(commit(db, "j", "2", NULL), 5);
	assert_int_equal(rb(db, 2, LB_FORCE, 0, 1, (const uint64_t[]){2, 0}),
	                 6);
	te_recs rs;
	te_changes(db, 6, &rs);
	assert_int_equal(rs.n, 1);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "j", "2", NULL);
	te_recs_free(&rs);
	marks_are(db, 6, (const uint64_t[]){0, 0, 6, 0, 0, 0, 0});
	verify_ok(db);
}

/* docs/ROLLBACK.md, "Foreign keys": 4 inserts hearing h1, 5 a witness
 * naming it. Undoing 4 alone, strictly or by force, would leave w1
 * dangling: LB_EVALIDATION, one FOREIGN_KEY issue on hearings 'h1' naming
 * batch 5. A cascade undoes 5, then 4. */
static void test_engine_oracle__foreign_keys_example(void **state)
{
	lb_db *db = ((te_fx *)*state)->db;
	static const lb_field wf[] = {
	        {"hearing_id", LB_STR, LB_REQUIRED, 0, "hearings"}};
	static const lb_schema ws = {wf, 1, 0};
	static const uint8_t w1[] = {0x81, 0xaa, 'h', 'e', 'a',  'r', 'i', 'n',
	                             'g',  '_',  'i', 'd', 0xa2, 'h', '1'};
	lb_batch *b = NULL;
	lb_result res;
	te_rc(0, lb_table_create(db, "hearings", NULL));
	te_rc(0, lb_table_create(db, "witnesses", &ws));
	te_rc(0, lb_batch_begin(db, NULL, &b));
	te_rc(0, lb_insert(b, "hearings", "h1", 2, "x", 1));
	te_rc(0, lb_batch_commit(b, NULL));
	te_rc(0, lb_batch_begin(db, NULL, &b));
	te_rc(0, lb_insert(b, "witnesses", "w1", 2, w1, sizeof w1));
	te_rc(0, lb_batch_commit(b, NULL));
	assert_int_equal(te_last(db), 5);

	for (int force = 0; force < 2; force++) {
		assert_int_equal(rb(db, 4, force ? LB_FORCE : 0, LB_EVALIDATION,
		                    0, none),
		                 0);
		dry(db, 4, force ? LB_FORCE : 0, LB_EVALIDATION, 0, &res);
		assert_int_equal(res.nissues, 1);
		assert_int_equal(res.issues[0].kind, LB_ISSUE_FOREIGN_KEY);
		assert_string_equal(res.issues[0].table, "hearings");
		assert_int_equal(res.issues[0].klen, 2);
		assert_memory_equal(res.issues[0].key, "h1", 2);
		assert_int_equal(res.issues[0].batch, 5);
		lb_result_free(&res);
	}
	assert_int_equal(
	        rb(db, 4, LB_CASCADE, 0, 2, (const uint64_t[]){5, 4, 0}), 6);
	te_assert_absent_s(db, "hearings", "h1");
	te_assert_absent_s(db, "witnesses", "w1");
	marks_are(db, 6, (const uint64_t[]){0, 0, 0, 0, 6, 6, 0});
	verify_ok(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_engine_oracle__random_histories),
	        cmocka_unit_test_setup_teardown(
	                test_engine_oracle__cascade_keeps_away_what_a_rollback_took,
	                te_setup_t, te_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_engine_oracle__cascade_of_a_rollback_after_rollback_to,
	                te_setup_t, te_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_engine_oracle__cascade_over_a_key_put_back,
	                te_setup_t, te_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_engine_oracle__cascade_under_a_chain_of_rollbacks,
	                te_setup_t, te_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_engine_oracle__cascade_after_rollback_to_redid,
	                te_setup_t, te_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_engine_oracle__rollback_to_record_order,
	                te_setup_t, te_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_engine_oracle__undone_by_a_rolled_back_cascade_stand,
	                te_setup_t, te_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_engine_oracle__cascade_follows_a_redo, te_setup_t,
	                te_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_engine_oracle__rollback_to_example, te_setup_t,
	                te_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_engine_oracle__force_with_nothing_to_write,
	                te_setup_t, te_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_engine_oracle__foreign_keys_example, te_setup_t,
	                te_teardown),
	};
	return cmocka_run_group_tests_name("engine_oracle", tests, NULL, NULL);
}
