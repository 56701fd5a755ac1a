/* SPDX-License-Identifier: MIT */
/*
 * Crash test: a child process commits batches in a loop and reports each id
 * through a pipe once lb_batch_commit() has returned; the parent SIGKILLs it
 * at a random instant, reopens the database and checks that
 *  - every reported batch is there with exactly its records (lb_changes and
 *    lb_get), and at most one more (the one in flight) landed;
 *  - every batch present is whole: all its keys, the right values;
 *  - lb_verify() passes (hash chain intact).
 * Kill instants: a delay after fork (possibly during lb_open), right after
 * the child reported some ids (usually inside the next commit), or a delay
 * after its first id.
 * The database persists across rounds, so recovery is exercised on a
 * database that has been killed many times.
 *
 * Batch content is a pure function of its id, so the parent knows what each
 * batch must hold without hearing from the child.
 *
 * Randomized: the seed is printed on failure (LB_TEST_SEED reruns it; the
 * kill instants still vary with scheduling). LB_CRASH_ROUNDS sets the number
 * of rounds of the durable test (default 50).
 */
#define _GNU_SOURCE
#include "_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the deterministic content of batch id (id >= 2) -------------------- */

static unsigned nkeys_of(uint64_t id)
{
	return 1 + (unsigned)((id * 2654435761u) % 50);
}

/* Every batch also overwrites "counter" with its id: a record with a
 * before-image that depends on the previous batch. */
static size_t counter_of(uint64_t id, char *v)
{
	return (size_t)sprintf(v, "%" PRIu64, id);
}

/* ---- the child ------------------------------------------------------------
 */

/* Commit batches forever; report each id after its commit returned. Exit
 * codes name the failing step (the parent reports them). */
static void child_main(const char *dir, unsigned flags, int fd)
{
	lb_options o;
	lb_db *db = NULL;

	lb_options_init(&o);
	o.flags = flags;
	if (lb_open(dir, &o, &db) != 0)
		_exit(10);
	for (;;) {
		uint64_t last, id;
		lb_batch *b = NULL;
		lb_result res;
		char k[64], v[128], l[64];
		unsigned i, n;

		if (lb_last_batch(db, &last) != 0)
			_exit(11);
		id = last + 1;
		te_crash_label(id, l);
		if (lb_batch_begin(db, l, &b) != 0)
			_exit(12);
		n = nkeys_of(id);
		for (i = 0; i < n; i++) {
			size_t kl = te_crash_key(id, i, k),
			       vl = te_crash_val(id, i, 60, v);
			if (lb_insert(b, "t", k, kl, v, vl) != 0)
				_exit(13);
		}
		if (lb_put(b, "t", "counter", 7, v, counter_of(id, v)) != 0)
			_exit(13);
		memset(&res, 0, sizeof res);
		if (lb_batch_commit(b, &res) != 0 || res.batch_id != id)
			_exit(14);
		if (write(fd, &id, sizeof id) != (ssize_t)sizeof id)
			_exit(15);
		if (id > 1000000)
			_exit(16); /* the parent is gone */
	}
}

/* ---- the parent -----------------------------------------------------------
 */

struct round {
	int no;
	int mode;          /* 0: kill a delay after fork (maybe while the
	                      child opens); 1: after some ids; 2: a delay
	                      after the first id (mid-stream) */
	long delay_us;     /* modes 0 and 2 */
	unsigned after;    /* mode 1 */
	uint64_t prev;     /* last batch before the round */
	uint64_t reported; /* highest id the child reported (or prev) */
	unsigned nreported;
};

static void round_report(const struct round *r)
{
	th_seed_report();
	print_error("round %d: mode %d, delay %ld us, after %u ids; last "
	            "before %" PRIu64 ", reported %u up to %" PRIu64 "\n",
	            r->no, r->mode, r->delay_us, r->after, r->prev,
	            r->nreported, r->reported);
}

#define CK(r, cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			round_report(r);                                       \
		assert_true(cond);                                             \
	} while (0)

/* Read one id; 1 = got one, 0 = EOF, -1 = timeout. */
static int read_id(int fd, uint64_t *id, int timeout_ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	size_t got = 0;
	while (got < sizeof *id) {
		ssize_t n;
		int pr = poll(&p, 1, timeout_ms);
		if (pr == 0)
			return -1;
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		n = read(fd, (char *)id + got, sizeof *id - got);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		got += (size_t)n;
	}
	return 1;
}

static void note_id(struct round *r, uint64_t id)
{
	/* A sequential child reports consecutive ids, starting right after
	 * the state it opened. */
	CK(r, id == r->reported + 1);
	r->reported = id;
	r->nreported++;
}

/* Check that batch id (>= 2) is present and whole. */
static void check_batch(lb_db *db, uint64_t id, const struct round *r)
{
	unsigned n = nkeys_of(id), i;
	char k[64], v[128], c[32], cb[32], l[64];
	size_t kl, vl, cl, cbl = 0;
	lb_batch_info bi;
	te_recs rs;

	te_rc(0, lb_batch_info_get(db, id, &bi));
	te_crash_label(id, l);
	CK(r, strcmp(bi.label, l) == 0);
	CK(r, bi.records == n + 1);

	te_changes(db, id, &rs);
	CK(r, rs.n == n + 1);
	for (i = 0; i < n; i++) {
		kl = te_crash_key(id, i, k);
		vl = te_crash_val(id, i, 60, v);
		te_assert_rec(&rs.v[i], LB_OP_PUT, "t", k, kl, NULL, 0, v, vl);
		te_assert_get(db, "t", k, kl, v, vl);
	}
	cl = counter_of(id, c);
	if (id > 2)
		cbl = counter_of(id - 1, cb);
	te_assert_rec(&rs.v[n], LB_OP_PUT, "t", "counter", 7,
	              id > 2 ? cb : NULL, cbl, c, cl);
	te_recs_free(&rs);
}

static int count_t(void *ctx, const char *name, const lb_schema *s,
                   uint64_t records)
{
	(void)s;
	if (strcmp(name, "t") == 0)
		*(uint64_t *)ctx = records;
	return 0;
}

static void check_db(const char *dir, struct round *r, int durable)
{
	lb_db *db = te_open(dir, 0);
	lb_verify_report rep;
	uint64_t last = te_last(db), id, want = 0, got = UINT64_MAX;

	if (durable)
		CK(r, last >= r->reported);
	/* Only the batch in flight may have landed unreported. */
	CK(r, last <= r->reported + 1);
	for (id = r->prev + 1; id <= last; id++)
		check_batch(db, id, r);
	if (last >= 2) {
		char c[32];
		size_t cl = counter_of(last, c);
		te_assert_get(db, "t", "counter", 7, c, cl);
	}
	/* Nothing but those batches' keys: a torn commit that left data
	 * without its log would show up here. */
	for (id = 2; id <= last; id++)
		want += nkeys_of(id);
	want += last >= 2;
	te_rc(0, lb_tables(db, count_t, &got));
	CK(r, got == want);
	/* Nothing past the last batch. */
	{
		lb_batch_info bi;
		te_rc(LB_ENOTFOUND, lb_batch_info_get(db, last + 1, &bi));
	}
	memset(&rep, 0, sizeof rep);
	te_rc(0, lb_verify(db, 0, &rep));
	CK(r, rep.chain_ok);
	CK(r, rep.batches == last);
	lb_close(db);
	r->prev = last;
}

static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void crash_rounds(long rounds, unsigned flags, int durable)
{
	char *dir = th_tmpdir();
	uint64_t rng = th_seed(0x10cb00c);
	int64_t start = te_mono_ns();
	struct round r;
	lb_db *db;
	long done;

	memset(&r, 0, sizeof r);
	db = te_open(dir, LB_CREATE);
	te_rc(0, lb_table_create(db, "t", NULL));
	r.prev = te_last(db);
	lb_close(db);

	for (done = 0; done < rounds; done++) {
		int fds[2], status = 0;
		uint64_t id;
		pid_t pid;
		int got;

		r.no = (int)done;
		r.mode = (int)th_below(&rng, 3);
		r.delay_us = (long)th_below(&rng, 30001);
		r.after = (unsigned)th_below(&rng, 20);
		r.reported = r.prev;
		r.nreported = 0;

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			child_main(dir, flags, fds[1]);
			_exit(99);
		}
		close(fds[1]);

		if (r.mode == 1) {
			while (r.nreported < r.after &&
			       (got = read_id(fds[0], &id, 20000)) == 1)
				note_id(&r, id);
		} else {
			if (r.mode == 2 && read_id(fds[0], &id, 20000) == 1)
				note_id(&r, id);
			sleep_us(r.delay_us);
		}
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		/* Collect what the child reported before it died. */
		while ((got = read_id(fds[0], &id, 5000)) == 1)
			note_id(&r, id);
		close(fds[0]);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
			round_report(&r);
			fail_msg(
			        "the child stopped by itself (exit status %d): "
			        "a logbook call failed in it",
			        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		}
		check_db(dir, &r, durable);

		/* Unless asked for a number of rounds, stay within budget on
		 * slow disks (fsync per commit). */
		if (!getenv("LB_CRASH_ROUNDS") &&
		    te_mono_ns() - start > 45000000000LL && done >= 10)
			break;
	}
	th_rmrf(dir);
	free(dir);
}

static void test_engine_crash__kill_during_durable_commits(void **state)
{
	(void)state;
	crash_rounds(th_env_long("LB_CRASH_ROUNDS", 50), 0, 1);
}

/* With LB_NOSYNC a crash may lose the last batches but never consistency:
 * whatever is there is whole and verifies. */
static void test_engine_crash__kill_during_nosync_commits(void **state)
{
	(void)state;
	crash_rounds(20, LB_NOSYNC, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(
	                test_engine_crash__kill_during_durable_commits),
	        cmocka_unit_test(test_engine_crash__kill_during_nosync_commits),
	};
	/* A dead child must not kill the parent through the pipe. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("engine_crash", tests, NULL, NULL);
}
