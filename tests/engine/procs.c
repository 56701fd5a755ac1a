/* SPDX-License-Identifier: MIT */
/*
 * Many processes, one database: a handle opened before another process
 * changed the tables acts on the tables as committed, never on its stale
 * picture (docs/API.md, "Many processes"). Each test keeps a handle open in
 * this process and lets a forked child, which opens the database on its
 * own, do what another process would; the child never touches the
 * parent's handle.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The handle a forked child inherits and must leave alone (kept reachable
 * so that valgrind does not count it at the child's exit). */
static lb_db *volatile parent_handle;

typedef void (*child_fn)(lb_db *db);

/* Run fn in a child process on its own handle of dir; it reports failure
 * through its exit status. */
static void in_other_process(const char *dir, lb_db *mine, child_fn fn)
{
	parent_handle = mine;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		lb_db *db;
		lb_options o;
		lb_options_init(&o);
		o.flags = LB_NOSYNC;
		if (lb_open(dir, &o, &db) != 0) {
			fprintf(stderr, "child: open: %s\n", lb_errmsg());
			_exit(2);
		}
		fn(db);
		lb_close(db);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the other process failed (status %d)", status);
	parent_handle = NULL;
}

#define CHECK(call)                                                            \
	do {                                                                   \
		int rc_ = (call);                                              \
		if (rc_ != 0) {                                                \
			fprintf(stderr, "child: %s: %d %s\n", #call, rc_,      \
			        lb_errmsg());                                  \
			_exit(1);                                              \
		}                                                              \
	} while (0)

static void put_in(lb_db *db, const char *t, const char *k, const char *v)
{
	lb_batch *b;
	CHECK(lb_batch_begin(db, "child", &b));
	CHECK(lb_put(b, t, k, strlen(k), v, strlen(v)));
	CHECK(lb_batch_commit(b, NULL));
}

static void verified(lb_db *db)
{
	lb_verify_report rep;
	te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
}

static void create_x_and_put(lb_db *db)
{
	CHECK(lb_table_create(db, "x", NULL));
	put_in(db, "x", "k1", "A");
}

/* Re-creating a table another process created answers LB_EEXIST and
 * leaves its records alone. */
static void test_engine_procs__create_existing_table(void **state)
{
	te_fx *fx = *state;
	in_other_process(fx->dir, fx->db, create_x_and_put);
	te_rc(LB_EEXIST, lb_table_create(fx->db, "x", NULL));
	te_assert_get_s(fx->db, "x", "k1", "A");
	verified(fx->db);
}

static void drop_x(lb_db *db)
{
	uint64_t last;
	lb_batch_info bi;
	CHECK(lb_last_batch(db, &last));
	/* the batch that created x: the one before the last here */
	for (uint64_t id = last; id > 0; id--) {
		CHECK(lb_batch_info_get(db, id, &bi));
		if (strcmp(bi.label, "create table x") == 0) {
			lb_result res;
			CHECK(lb_rollback(db, id, 0, &res));
			lb_result_free(&res);
			return;
		}
	}
	_exit(3);
}

/* A handle that knows table x, which another process removed, cannot
 * write into it. */
static void test_engine_procs__write_into_removed_table(void **state)
{
	te_fx *fx = *state;
	lb_batch *b;
	te_rc(0, lb_table_create(fx->db, "x", NULL));
	in_other_process(fx->dir, fx->db, drop_x);
	te_rc(0, lb_batch_begin(fx->db, "late", &b));
	te_rc(LB_ENOTFOUND, lb_put(b, "x", "k", 1, "v", 1));
	/* the message says what happened, not only that x is unknown */
	assert_non_null(
	        strstr(lb_errmsg(), "no table named x: it was removed"));
	lb_batch_abort(b);
	void *v;
	size_t n;
	te_rc(LB_ENOTFOUND, lb_get(fx->db, "x", "k", 1, &v, &n));
	verified(fx->db);
}

static void create_referrer(lb_db *db)
{
	lb_field f[] = {{"h", LB_STR, LB_REQUIRED, 0, "t"}};
	lb_schema s = {f, 1, 0};
	CHECK(lb_table_create(db, "w", &s));
	/* {"h": "a"} */
	static const uint8_t val[] = {0x81, 0xa1, 'h', 0xa1, 'a'};
	lb_batch *b;
	CHECK(lb_batch_begin(db, "witness", &b));
	CHECK(lb_insert(b, "w", "w1", 2, val, sizeof val));
	CHECK(lb_batch_commit(b, NULL));
}

/* A handle opened before another process made a table that references t
 * keeps the reference: deleting the referenced key is a FOREIGN_KEY
 * issue. */
static void test_engine_procs__foreign_key_made_elsewhere(void **state)
{
	te_fx *fx = *state;
	lb_result res;
	lb_batch *b;
	te_put1(fx->db, "t", "a", "hearing");
	in_other_process(fx->dir, fx->db, create_referrer);
	te_rc(0, lb_batch_begin(fx->db, "delete a", &b));
	te_rc(0, lb_delete(b, "t", "a", 1));
	te_rc(LB_EVALIDATION, lb_batch_commit(b, &res));
	assert_int_equal(res.nissues, 1);
	assert_int_equal(res.issues[0].kind, LB_ISSUE_FOREIGN_KEY);
	lb_result_free(&res);
	te_assert_get_s(fx->db, "t", "a", "hearing");
	verified(fx->db);
}

static void create_y_and_fill(lb_db *db)
{
	CHECK(lb_table_create(db, "y", NULL));
	put_in(db, "y", "k", "1");
	put_in(db, "t", "late", "2");
}

/* lb_rollback_to from a handle that never saw table y undoes y too. */
static void test_engine_procs__rollback_to_unknown_tables(void **state)
{
	te_fx *fx = *state;
	lb_result res;
	uint64_t before = te_put1(fx->db, "t", "early", "1");
	in_other_process(fx->dir, fx->db, create_y_and_fill);
	te_rc(0, lb_rollback_to(fx->db, before, &res));
	assert_int_equal(res.records, 3); /* y/k, t/late, table y */
	lb_result_free(&res);
	void *v;
	size_t n;
	te_rc(LB_ENOTFOUND, lb_get(fx->db, "y", "k", 1, &v, &n));
	te_assert_absent_s(fx->db, "t", "late");
	te_assert_get_s(fx->db, "t", "early", "1");
	uint64_t last = te_last(fx->db);
	for (uint64_t id = before + 1; id < last; id++) {
		lb_batch_info bi;
		te_rc(0, lb_batch_info_get(fx->db, id, &bi));
		assert_int_equal(bi.rolled_back_by, last);
	}
	verified(fx->db);
}

static void create_z(lb_db *db)
{
	CHECK(lb_table_create(db, "z", NULL));
	put_in(db, "z", "k", "zv");
}

/* A table created elsewhere is visible at once: no reopen. */
static void test_engine_procs__new_table_visible_at_once(void **state)
{
	te_fx *fx = *state;
	lb_snapshot *s;
	lb_cursor *c;
	in_other_process(fx->dir, fx->db, create_z);
	te_assert_get_s(fx->db, "z", "k", "zv");
	te_rc(0, lb_snapshot_open(fx->db, &s));
	te_rc(0, lb_cursor_open(s, "z", &c));
	const void *k, *v;
	size_t kl, vl;
	te_rc(0, lb_cursor_next(c, &k, &kl, &v, &vl));
	assert_int_equal(vl, 2);
	lb_cursor_close(c);
	lb_snapshot_close(s);
	verified(fx->db);
}

static void grow_a_lot(lb_db *db)
{
	static char big[100000];
	memset(big, 'g', sizeof big);
	for (int i = 0; i < 20; i++) {
		lb_batch *b;
		char k[16];
		snprintf(k, sizeof k, "big%02d", i);
		CHECK(lb_batch_begin(db, "big", &b));
		CHECK(lb_put(b, "t", k, strlen(k), big, sizeof big));
		CHECK(lb_batch_commit(b, NULL));
	}
}

/* The reads a handle opened before the growth must still answer. */
static int reads_after_growth(lb_db *h)
{
	uint64_t last;
	lb_snapshot *s;
	void *v;
	const void *sv;
	size_t n;
	if (lb_last_batch(h, &last) || last != 22)
		return 1;
	if (lb_get(h, "t", "big19", 5, &v, &n) || n != 100000)
		return 2;
	free(v);
	if (lb_snapshot_open(h, &s))
		return 3;
	int rc = lb_snapshot_get(s, "t", "k", 1, &sv, &n) ? 4 : 0;
	lb_snapshot_close(s);
	return rc;
}

/* Another process grew the map far past this handle's: reads, snapshots
 * and the next batch adopt the new size; so does a read-only handle in a
 * third process, opened before the growth. */
static void test_engine_procs__map_grown_elsewhere(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	lb_options o;
	int go[2], ready[2];
	lb_options_init(&o);
	o.flags = LB_CREATE | LB_NOSYNC;
	o.map_size = 256u << 10;
	lb_db *db = te_open_opts(dir, &o);
	te_rc(0, lb_table_create(db, "t", NULL));
	te_put1(db, "t", "k", "v");
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(ready), 0);
	parent_handle = db;
	fflush(NULL);
	pid_t reader = fork();
	assert_true(reader >= 0);
	if (reader == 0) {
		lb_db *ro;
		char c;
		o.flags = LB_RDONLY;
		if (lb_open(dir, &o, &ro) != 0)
			_exit(10);
		void *v;
		size_t n;
		int rc = lb_get(ro, "t", "k", 1, &v, &n);
		if (rc == 0)
			free(v);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(11);
		rc = rc ? 12 : reads_after_growth(ro);
		lb_close(ro);
		_exit(rc);
	}
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1);
	in_other_process(dir, db, grow_a_lot);
	assert_int_equal(write(go[1], "g", 1), 1);
	int status;
	assert_int_equal(waitpid(reader, &status, 0), reader);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the read-only process failed (status %d)", status);
	assert_int_equal(reads_after_growth(db), 0);
	te_put1(db, "t", "after", "1");
	verified(db);
	lb_close(db);
	for (int i = 0; i < 2; i++) {
		close(go[i]);
		close(ready[i]);
	}
	th_rmrf(dir);
	free(dir);
}

/* One environment per database per process: a second open of the same
 * directory, or of another path to it, answers LB_EBUSY; a data.mdb that
 * is a symbolic or a hard link is refused. */
static void test_engine_procs__one_handle_per_process(void **state)
{
	te_fx *fx = *state;
	lb_db *second = NULL;
	lb_options o;
	lb_options_init(&o);
	te_put1(fx->db, "t", "k", "v");
	te_rc(LB_EBUSY, lb_open(fx->dir, &o, &second));
	assert_null(second);
	o.flags = LB_RDONLY;
	te_rc(LB_EBUSY, lb_open(fx->dir, &o, &second));
	char *alias = th_tmpdir();
	char *lnk = th_path(alias, "db");
	assert_int_equal(symlink(fx->dir, lnk), 0);
	te_rc(LB_EBUSY, lb_open(lnk, &o, &second));
	/* after close, the directory opens again */
	lb_close(fx->db);
	fx->db = te_open(lnk, LB_NOSYNC);
	lb_close(fx->db);
	fx->db = NULL;
	/* data.mdb as a link to another database's file */
	char *other = th_path(alias, "other"),
	     *f = th_path(fx->dir, "data.mdb");
	char *of = th_path(other, "data.mdb");
	assert_int_equal(mkdir(other, 0755), 0);
	assert_int_equal(symlink(f, of), 0);
	o.flags = 0;
	te_rc(LB_EINVAL, lb_open(other, &o, &second));
	assert_non_null(strstr(lb_errmsg(), "symbolic link"));
	assert_int_equal(unlink(of), 0);
	assert_int_equal(link(f, of), 0);
	te_rc(LB_EINVAL, lb_open(other, &o, &second));
	assert_non_null(strstr(lb_errmsg(), "hard link"));
	te_rc(LB_EINVAL, lb_open(fx->dir, &o, &second));
	assert_int_equal(unlink(of), 0);
	fx->db = te_open(fx->dir, LB_NOSYNC);
	te_assert_get_s(fx->db, "t", "k", "v");
	th_rmrf(alias);
	free(alias);
	free(lnk);
	free(other);
	free(f);
	free(of);
}

/* A file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored, as a shell's
 * ulimit -f leaves it) answers LB_EFULL, not LB_EIO, and loses nothing. */
static void test_engine_procs__file_size_limit(void **state)
{
	te_fx *fx = *state;
	te_put1(fx->db, "t", "before", "1");
	lb_close(fx->db);
	fx->db = NULL;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		lb_db *db;
		struct stat st;
		char *f = th_path(fx->dir, "data.mdb");
		if (stat(f, &st) != 0 || lb_open(fx->dir, NULL, &db) != 0)
			_exit(2);
		signal(SIGXFSZ, SIG_IGN);
		struct rlimit rl = {(rlim_t)st.st_size + (256u << 10),
		                    (rlim_t)st.st_size + (256u << 10)};
		if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
			_exit(3);
		static char big[60000];
		memset(big, 'b', sizeof big);
		int rc = 0;
		for (int i = 0; i < 100 && rc == 0; i++) {
			lb_batch *b;
			char k[16];
			snprintf(k, sizeof k, "big%03d", i);
			if ((rc = lb_batch_begin(db, "big", &b)) != 0)
				break;
			if ((rc = lb_put(b, "t", k, strlen(k), big,
			                 sizeof big)) != 0) {
				lb_batch_abort(b);
				break;
			}
			rc = lb_batch_commit(b, NULL);
		}
		fprintf(stderr, "file size limit: %d %s\n", rc, lb_errmsg());
		lb_close(db);
		_exit(rc == LB_EFULL ? 0 : 4);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	fx->db = te_open(fx->dir, LB_NOSYNC);
	te_assert_get_s(fx->db, "t", "before", "1");
	lb_verify_report rep;
	te_rc(0, lb_verify(fx->db, LB_VERIFY_REPLAY, &rep));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, te_setup_t, te_teardown)
	        T(test_engine_procs__create_existing_table),
	        T(test_engine_procs__write_into_removed_table),
	        T(test_engine_procs__foreign_key_made_elsewhere),
	        T(test_engine_procs__rollback_to_unknown_tables),
	        T(test_engine_procs__new_table_visible_at_once),
	        T(test_engine_procs__one_handle_per_process),
	        T(test_engine_procs__file_size_limit),
#undef T
	        cmocka_unit_test(test_engine_procs__map_grown_elsewhere),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
