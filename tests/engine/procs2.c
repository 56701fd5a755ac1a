/* SPDX-License-Identifier: MIT */
/*
 * Many processes, one database: regressions found by the stress test
 * (tests/engine/stress.c) and its kind, each with real processes.
 *
 * open_beside_commits: lb_open in a loop while another process commits
 * with LB_NOSYNC as fast as it can. Every open must succeed: the open
 * check once answered a spurious LB_ECORRUPT ("meta page: last page N,
 * the file holds N pages", 5 times in 10,500 opens) when it read the
 * file's size before the meta page of a commit that had just grown it.
 * LB_OPEN_SECONDS sets how long the loop runs (default 4). One failure is
 * still seen, and tolerated while TOLERATE_RDONLY_OPEN_MAP_RESIZED (below)
 * is 1.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEC 1000000000LL

/* Known gap: a read-only lb_open beside a committing process sometimes
 * answers LB_EIO, "page check: renewing a read: MDB_MAP_RESIZED" (about
 * once in 10,000 to 50,000 opens; read-write opens with a small map_size
 * meet it too): the open check renews its read when two commits replaced
 * both meta pages, and the new snapshot lies past the map, which a
 * read-only handle sizes to the file at open; the growth is not adopted
 * there. While this is 1, such failures are counted and printed but do
 * not fail the test; 0 makes it strict. */
#define TOLERATE_RDONLY_OPEN_MAP_RESIZED 0

/* What a forked child inherits from the parent's frames, kept reachable
 * so that valgrind's leak check does not count it at the child's exit. */
static char *volatile parent_dir;

static int known_gap(int ro, int rc, const char *msg)
{
	return TOLERATE_RDONLY_OPEN_MAP_RESIZED && ro && rc == LB_EIO &&
	       strstr(msg, "renewing a read: MDB_MAP_RESIZED") != NULL;
}

/* The committer: batches of puts and deletes of varying sizes, so that
 * pages are taken, freed and the file grows, until `until`. Exits 0, or
 * 1 after printing why. */
static void committer(const char *dir, int64_t until, int ready_fd)
{
	lb_options o;
	lb_db *db;
	uint64_t rng = 0xc0ffee, n = 0;
	static unsigned char val[40000];
	lb_options_init(&o);
	o.flags = LB_NOSYNC;
	o.map_size = 256u << 10; /* it grows too */
	if (lb_open(dir, &o, &db) != 0) {
		fprintf(stderr, "committer: lb_open: %s\n", lb_errmsg());
		_exit(1);
	}
	if (write(ready_fd, "r", 1) != 1)
		_exit(1);
	static char present[300];
	while (te_mono_ns() < until) {
		lb_batch *b;
		char key[16];
		int rc = lb_batch_begin(db, "c", &b);
		for (int i = 0, m = 1 + (int)th_below(&rng, 8);
		     rc == 0 && i < m; i++) {
			unsigned k = (unsigned)th_below(&rng, sizeof present);
			size_t kl =
			        (size_t)snprintf(key, sizeof key, "k%03u", k);
			if (present[k] && th_below(&rng, 3) == 0) {
				rc = lb_delete(b, "t", key, kl);
				present[k] = 0;
				continue;
			}
			size_t vl = 1 + th_below(&rng, th_below(&rng, 20) == 0
			                                       ? sizeof val
			                                       : 2000);
			te_fill(&rng, val, vl);
			rc = lb_put(b, "t", key, kl, val, vl);
			present[k] = 1;
		}
		if (rc == 0)
			rc = lb_batch_commit(b, NULL);
		else
			lb_batch_abort(b);
		if (rc != 0) {
			fprintf(stderr, "committer: %s: %s\n", lb_strerror(rc),
			        lb_errmsg());
			_exit(1);
		}
		n++;
	}
	lb_close(db);
	printf("open_beside_commits: the other process committed %" PRIu64
	       " batches\n",
	       n);
	fflush(stdout);
	_exit(0);
}

static void test_engine_procs2__open_beside_commits(void **state)
{
	(void)state;
	char *dir = parent_dir = th_tmpdir();
	long secs = th_env_long("LB_OPEN_SECONDS", 4);
	lb_db *db = te_open(dir, LB_CREATE | LB_NOSYNC);
	int ready[2];
	te_rc(0, lb_table_create(db, "t", NULL));
	lb_close(db);
	assert_int_equal(pipe(ready), 0);

	int64_t until = te_mono_ns() + secs * SEC;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		committer(dir, until, ready[1]);
	}
	close(ready[1]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);

	/* open, read, close; read-write and read-only in turn */
	uint64_t opens = 0, rdonly = 0, failed = 0, gaps = 0, last = 0,
	         prev = 0;
	char first[512] = "";
	while (te_mono_ns() < until) {
		lb_options o;
		int ro = opens & 1;
		lb_options_init(&o);
		o.flags = ro ? LB_RDONLY : LB_NOSYNC;
		db = NULL;
		int rc = lb_open(dir, &o, &db);
		opens++;
		rdonly += (uint64_t)ro;
		if (rc != 0 && known_gap(ro, rc, lb_errmsg())) {
			if (gaps++ < 5)
				fprintf(stderr,
				        "open %" PRIu64 " (read-only): %s "
				        "(tolerated: TOLERATE_RDONLY_OPEN_MAP_"
				        "RESIZED)\n",
				        opens, lb_errmsg());
			continue;
		}
		if (rc != 0) {
			if (failed++ < 5)
				fprintf(stderr,
				        "open %" PRIu64 " (%s): %s: %s\n",
				        opens, ro ? "read-only" : "read-write",
				        lb_strerror(rc), lb_errmsg());
			if (!first[0])
				snprintf(first, sizeof first, "%s: %s",
				         lb_strerror(rc), lb_errmsg());
			continue;
		}
		rc = lb_last_batch(db, &last);
		if (rc != 0 || last < prev) {
			failed++;
			if (!first[0])
				snprintf(first, sizeof first,
				         "lb_last_batch: %s, %" PRIu64
				         " after %" PRIu64,
				         lb_strerror(rc), last, prev);
		}
		prev = last;
		lb_close(db);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	printf("open_beside_commits: %" PRIu64 " opens (%" PRIu64
	       " read-only) in %ld s beside the commits, up to batch %" PRIu64
	       "; %" PRIu64 " failed, %" PRIu64
	       " read-only opens failed with the known gap (LB_EIO, "
	       "MDB_MAP_RESIZED)\n",
	       opens, rdonly, secs, last, failed, gaps);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the committing process failed (status %d)", status);
	if (failed)
		fail_msg("%" PRIu64 " of %" PRIu64
		         " opens failed; the first: %s",
		         failed, opens, first);
	assert_true(opens > 10);
	assert_true(last > 1);
	lb_verify_report rep;
	db = te_open(dir, 0);
	te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
	lb_close(db);
	th_rmrf(dir);
	free(dir);
	parent_dir = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_engine_procs2__open_beside_commits),
	};
	return cmocka_run_group_tests_name("engine_procs2", tests, NULL, NULL);
}
