/* SPDX-License-Identifier: MIT */
/*
 * tests/tools/runs.c: the import runs' machinery (tools/runs.c): run
 * records in logbook.runs read back and summed per run, batch id ranges,
 * the content hash, and the import lock as other processes see it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helpers.h"
#include "tools/cli.h"
#include "tools/runs.h"

static void test_tools_runs__ids_as_ranges(void **state)
{
	const uint64_t a[] = {5, 6, 7, 9, 11, 12, 20};
	sbuf b;
	(void)state;
	sb_init(&b);
	runs_ids(&b, a, 7);
	assert_string_equal(sb_str(&b), "5-7, 9, 11, 12, 20");
	b.len = 0;
	runs_ids(&b, a, 1);
	assert_string_equal(sb_str(&b), "5");
	b.len = 0;
	runs_ids(&b, a, 0);
	assert_string_equal(sb_str(&b), "");
	sb_free(&b);
}

static void test_tools_runs__sha256_of_a_file(void **state)
{
	char *dir = th_tmpdir(), *path = th_path(dir, "f"), hex[65];
	uint64_t size = 0;
	FILE *f = fopen(path, "w");
	int fd;
	(void)state;
	assert_non_null(f);
	fputs("abc", f);
	fclose(f);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(runs_sha256(fd, hex, &size), 0);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a3"
	                         "96177a9cb410ff61f20015ad");
	assert_int_equal(size, 3);
	/* it reads from offset 0 whatever the file offset */
	assert_int_equal(lseek(fd, 2, SEEK_SET), 2);
	assert_int_equal(runs_sha256(fd, hex, &size), 0);
	assert_int_equal(size, 3);
	close(fd);
	th_rmrf(dir);
	free(path);
	free(dir);
}

static void put_rec(lb_db *db, run_rec *r)
{
	lb_batch *b;
	char key[32], *text = run_rec_text(r);
	size_t kl = run_key(key, r->run, r->seq);
	assert_int_equal(lb_batch_begin(db, "x", &b), 0);
	assert_int_equal(lb_put(b, RUNS_TABLE, key, kl, text, strlen(text)), 0);
	assert_int_equal(lb_batch_commit(b, NULL), 0);
	free(text);
}

static void test_tools_runs__records_summed_per_run(void **state)
{
	char *dir = th_tmpdir();
	lb_db *db;
	run_info *runs;
	size_t n;
	run_rec r;
	(void)state;
	assert_int_equal(lb_open(dir, NULL, &db), 0);
	assert_int_equal(runs_table_exists(db), 0);
	assert_int_equal(runs_load(db, 0, &runs, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(lb_table_create(db, RUNS_TABLE, NULL), 0);
	assert_int_equal(runs_table_exists(db), 1);
	memset(&r, 0, sizeof r);
	r.run = 2;
	r.file = "day1.jsonl";
	memset(r.sha256, 'a', 64);
	r.mode = "insert";
	r.on_error = "record";
	r.keyfield = "id";
	for (uint64_t seq = 1; seq <= 3; seq++) {
		r.seq = seq;
		r.batch = seq + 1;
		r.first_line = (seq - 1) * 10 + 1;
		r.last_line = seq * 10;
		r.next_line = r.last_line + 1;
		r.next_offset = seq * 100;
		r.lines = 10;
		r.committed = 9;
		r.set_aside = 1;
		r.aside = json_pack("[[s s I]]", "t", "k", (json_int_t)seq);
		r.final = seq == 3;
		put_rec(db, &r);
		json_decref(r.aside);
	}
	r.run = 5;
	r.seq = 1;
	r.batch = 5;
	r.final = 0;
	r.aside = NULL;
	r.sha256[0] = '\0';
	r.file = "stdin";
	put_rec(db, &r);
	assert_int_equal(runs_load(db, 2, &runs, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(runs[0].id, 2);
	assert_string_equal(runs[0].first.file, "day1.jsonl");
	assert_int_equal(strlen(runs[0].first.sha256), 64);
	assert_int_equal(runs[0].lines, 30);
	assert_int_equal(runs[0].committed, 27);
	assert_int_equal(runs[0].set_aside, 3);
	assert_int_equal(runs[0].nbatches, 3);
	assert_int_equal(runs[0].batches[2], 4);
	assert_int_equal(runs[0].next_line, 31);
	assert_int_equal(runs[0].next_offset, 300);
	assert_true(runs[0].final);
	assert_string_equal(run_state(&runs[0]), "done");
	/* the aside lists of the run asked for, in order */
	assert_non_null(runs[0].aside);
	assert_int_equal(json_array_size(runs[0].aside), 3);
	assert_int_equal(json_integer_value(json_array_get(
	                         json_array_get(runs[0].aside, 2), 2)),
	                 3);
	assert_null(runs[1].aside);
	assert_int_equal(runs[1].id, 5);
	assert_string_equal(runs[1].first.sha256, "");
	assert_string_equal(run_state(&runs[1]), "interrupted");
	runs[1].running = 1;
	assert_string_equal(run_state(&runs[1]), "running");
	runs_free(runs, n);
	lb_close(db);
	th_rmrf(dir);
	free(dir);
}

static void test_tools_runs__the_lock_as_others_see_it(void **state)
{
	char *dir = th_tmpdir(), *data = th_path(dir, "data.mdb");
	FILE *f = fopen(data, "w");
	long pid;
	uint64_t run;
	int fd = -1, st;
	pid_t child;
	(void)state;
	assert_non_null(f);
	fclose(f);
	/* a directory without a database: nothing to lock */
	{
		char *empty = th_tmpdir();
		assert_int_equal(runs_lock(empty, 1, &fd), 0);
		assert_int_equal(fd, -1);
		th_rmrf(empty);
		free(empty);
	}
	assert_int_equal(runs_holder(dir, &pid, &run), 0);
	assert_int_equal(runs_lock(dir, 1, &fd), 0);
	assert_true(fd >= 0);
	runs_lock_note(fd, 42, "day1.jsonl");
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		int cfd = -1, ok;
		/* another process sees the holder, and cannot take it */
		ok = runs_holder(dir, &pid, &run) == 1 &&
		     pid == (long)getppid() && run == 42;
		ok = ok && runs_lock(dir, 1, &cfd) == CLI_FAIL && cfd == -1;
		_exit(ok ? 0 : 1);
	}
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(fd);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		int cfd = -1;
		_exit(runs_holder(dir, &pid, &run) == 0 &&
		                      runs_lock(dir, 1, &cfd) == 0 && cfd >= 0
		              ? 0
		              : 1);
	}
	assert_int_equal(waitpid(child, &st, 0), child);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	th_rmrf(dir);
	free(data);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_tools_runs__ids_as_ranges),
	        cmocka_unit_test(test_tools_runs__sha256_of_a_file),
	        cmocka_unit_test(test_tools_runs__records_summed_per_run),
	        cmocka_unit_test(test_tools_runs__the_lock_as_others_see_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
