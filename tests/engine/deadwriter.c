/* SPDX-License-Identifier: MIT */
/*
 * deadwriter.c: a writer stopped or killed between writing its commit's
 * meta page and publishing the commit.
 *
 * LMDB ends a commit by writing its meta page, then publishing the
 * commit's id in the lock file, from which readers take their snapshot. A
 * process killed between the two leaves a commit that is durable but that
 * the readers of other processes would not see until the next writer took
 * LMDB's lock: a process that reads after the writer died would act on
 * the state before it, then see the commit appear later without any new
 * write (a restarted feed consumer read its acknowledgement as one batch
 * behind, and delivered that batch twice).
 *
 * This binary's own pwrite stands in for the C library's (LMDB is a shared
 * library, so its calls come here): armed in a child, it raises a signal
 * right after the child's write of a meta page of data.mdb has returned,
 * that is, after the commit is durable and before it is published.
 *
 * - killed_writer_commit_is_read: the parent, whose handle stayed open,
 *   reads the value and the last batch of the killed child's commit.
 * - killed_consumer_ack_is_read: the same for a consumer's
 *   acknowledgement (lb_consumer_get).
 * - stopped_writer_is_not_waited_for: a writer stopped between the two
 *   lives, so its commit is not finished: a read returns at once, with the
 *   state before it; once the writer goes on, the commit is read.
 * - rdonly_handle_reads_published_state: a read-only handle cannot publish
 *   (LMDB refuses it the writer lock): it reads the state before the dead
 *   writer's commit until a read-write handle's read has published it.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* The signal to raise after the next meta page write (0: none). */
static volatile sig_atomic_t arm_signal;

static int is_meta_write(int fd, size_t n, off_t off)
{
	long page = sysconf(_SC_PAGESIZE);
	char link[64], path[PATH_MAX];
	if (page <= 0 || off < 0 || off >= 2 * page || n >= (size_t)page)
		return 0;
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t len = readlink(link, path, sizeof path - 1);
	if (len < 9)
		return 0;
	path[len] = '\0';
	return strcmp(path + len - 9, "/data.mdb") == 0;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	if (!real)
		real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(
		        RTLD_NEXT, "pwrite");
	ssize_t r = real(fd, buf, n, off);
	if (arm_signal && r == (ssize_t)n && is_meta_write(fd, n, off)) {
		int sig = arm_signal;
		arm_signal = 0;
		raise(sig);
	}
	return r;
}

/* The child's commit: put t/k = val, or acknowledge `ack` as consumer
 * "c" (ack != 0), raising sig after the meta page is written. Exits 0
 * when the commit returned, 2 if anything failed before. */
static pid_t child_commit(const char *dir, unsigned flags, const char *val,
                          uint64_t ack, int sig)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid > 0)
		return pid;
	lb_db *db = te_open_child(dir, flags);
	lb_batch *b;
	lb_result res;
	arm_signal = sig;
	if (ack) {
		if (lb_consumer_ack(db, "c", ack) != 0)
			_exit(2);
	} else {
		if (lb_batch_begin(db, "dying", &b) != 0 ||
		    lb_put(b, "t", "k", 1, val, strlen(val)) != 0 ||
		    lb_batch_commit(b, &res) != 0)
			_exit(2);
		lb_result_free(&res);
	}
	_exit(0);
}

/* Wait for the child to end by `sig`, or (sig SIGSTOP) to stop. */
static void expect_signalled(pid_t pid, int sig)
{
	int st;
	assert_int_equal(waitpid(pid, &st, sig == SIGSTOP ? WUNTRACED : 0),
	                 pid);
	if (sig == SIGSTOP) {
		assert_true(WIFSTOPPED(st));
		return;
	}
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), sig);
}

static void expect_exit0(pid_t pid)
{
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_engine_deadwriter__killed_writer_commit_is_read(void **state)
{
	te_fx *fx = *state;
	for (int sync = 0; sync < 2; sync++) {
		char one[16], two[16];
		snprintf(one, sizeof one, "one%d", sync);
		snprintf(two, sizeof two, "two%d", sync);
		uint64_t before = te_put1(fx->db, "t", "k", one);
		te_assert_get(fx->db, "t", "k", 1, one, strlen(one));
		pid_t pid = child_commit(fx->dir, sync ? 0 : LB_NOSYNC, two, 0,
		                         SIGKILL);
		expect_signalled(pid, SIGKILL);
		/* the child's batch, whole, though nobody wrote since */
		te_assert_get(fx->db, "t", "k", 1, two, strlen(two));
		assert_int_equal(te_last(fx->db), before + 1);
		lb_batch_info bi = te_info(fx->db, before + 1);
		assert_string_equal(bi.label, "dying");
	}
	lb_verify_report rep;
	te_rc(0, lb_verify(fx->db, 0, &rep));
	assert_true(rep.chain_ok);
}

static void test_engine_deadwriter__killed_consumer_ack_is_read(void **state)
{
	te_fx *fx = *state;
	uint64_t last = 0;
	for (int i = 0; i < 3; i++)
		last = te_put1(fx->db, "t", "k", "v");
	te_rc(0, lb_consumer_ack(fx->db, "c", last - 1));
	lb_consumer_info ci;
	te_rc(0, lb_consumer_get(fx->db, "c", &ci));
	assert_int_equal(ci.acked, last - 1);
	pid_t pid = child_commit(fx->dir, LB_NOSYNC, NULL, last, SIGKILL);
	expect_signalled(pid, SIGKILL);
	te_rc(0, lb_consumer_get(fx->db, "c", &ci));
	assert_int_equal(ci.acked, last);
}

/* The stopped writer, ended by the watchdog below. */
static volatile pid_t stopped;

static void watchdog(int sig)
{
	static const char msg[] = "deadwriter: a read waited for a stopped "
	                          "writer\n";
	(void)sig;
	if (stopped > 0)
		kill(stopped, SIGKILL);
	if (write(2, msg, sizeof msg - 1) < 0)
		_exit(1);
	_exit(1);
}

static void
test_engine_deadwriter__stopped_writer_is_not_waited_for(void **state)
{
	te_fx *fx = *state;
	uint64_t before = te_put1(fx->db, "t", "k", "old");
	pid_t pid = child_commit(fx->dir, LB_NOSYNC, "new", 0, SIGSTOP);
	expect_signalled(pid, SIGSTOP);
	/* The stopped child holds LMDB's writer lock: publishing its commit
	 * by taking that lock would wait for it, and a read must not. A
	 * watchdog fails the test if it does. */
	stopped = pid;
	signal(SIGALRM, watchdog);
	alarm(20);
	te_assert_get(fx->db, "t", "k", 1, "old", 3);
	assert_int_equal(te_last(fx->db), before);
	alarm(0);
	stopped = 0;
	assert_int_equal(kill(pid, SIGCONT), 0);
	expect_exit0(pid);
	te_assert_get(fx->db, "t", "k", 1, "new", 3);
	assert_int_equal(te_last(fx->db), before + 1);
}

/* A child reading t/k through a read-only handle: exit 0 if it reads
 * `want`, 1 if something else, 2 if it fails. */
static void expect_rdonly_reads(const char *dir, const char *want)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		lb_db *db = te_open_child(dir, LB_RDONLY);
		void *v = NULL;
		size_t vlen;
		if (lb_get(db, "t", "k", 1, &v, &vlen) != 0)
			_exit(2);
		_exit(vlen == strlen(want) && memcmp(v, want, vlen) == 0 ? 0
		                                                         : 1);
	}
	expect_exit0(pid);
}

static void
test_engine_deadwriter__rdonly_handle_reads_published_state(void **state)
{
	te_fx *fx = *state;
	te_put1(fx->db, "t", "k", "old");
	pid_t pid = child_commit(fx->dir, LB_NOSYNC, "new", 0, SIGKILL);
	expect_signalled(pid, SIGKILL);
	expect_rdonly_reads(fx->dir, "old");
	te_assert_get(fx->db, "t", "k", 1, "new", 3);
	expect_rdonly_reads(fx->dir, "new");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(
	                test_engine_deadwriter__killed_writer_commit_is_read,
	                te_setup_t, te_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_engine_deadwriter__killed_consumer_ack_is_read,
	                te_setup_t, te_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_engine_deadwriter__stopped_writer_is_not_waited_for,
	                te_setup_t, te_teardown),
	        cmocka_unit_test_setup_teardown(
	                test_engine_deadwriter__rdonly_handle_reads_published_state,
	                te_setup_t, te_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
