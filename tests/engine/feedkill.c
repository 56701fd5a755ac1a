/* SPDX-License-Identifier: MIT */
/*
 * feedkill.c: the feed is complete across processes and SIGKILLs.
 *
 * A writer process commits batches of 1..20 records (puts and deletes of a
 * small key space, so records have before-images) as fast as it can. A
 * consumer process follows the log with lb_wait, reads each new batch
 * with lb_changes, appends one line per record to its output file and then
 * acknowledges the batch as consumer "feed" (lb_consumer_ack). The parent
 * SIGKILLs the writer and the consumer at seeded random instants and
 * starts them again, several rounds.
 *
 * The consumer's output and its acknowledgement are not one transaction:
 * a consumer killed between the two has written lines of a batch it did
 * not acknowledge. Before each restart the parent therefore cuts the file
 * back to the batches acknowledged (as an application keeps its output
 * and its position together). Each start writes a "start N" line: N must
 * be the acknowledged batch + 1 (no gap, no batch delivered twice).
 *
 * At the end the writer stops, the consumer catches up with the last
 * batch, and the file must hold exactly every record of every batch, in
 * log order, as a fresh lb_changes of each batch gives them.
 * Environment: LB_TEST_SEED; LB_FEEDKILL_ROUNDS (default 6).
 */
#define _GNU_SOURCE
#include "_common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NAME "feed"

static void writer(const char *dir, uint64_t seed)
{
	lb_db *db = te_open_child(dir, LB_NOSYNC);
	uint64_t rng = seed;
	for (;;) {
		lb_batch *b;
		if (lb_batch_begin(db, "w", &b) != 0)
			_exit(3);
		int n = 1 + (int)th_below(&rng, 20);
		for (int i = 0; i < n; i++) {
			char k[16], v[32];
			snprintf(k, sizeof k, "k%02d", (int)th_below(&rng, 40));
			snprintf(v, sizeof v, "v%llu",
			         (unsigned long long)th_rand(&rng));
			int rc = th_below(&rng, 5) == 0
			                 ? lb_delete(b, "t", k, strlen(k))
			                 : lb_put(b, "t", k, strlen(k), v,
			                          strlen(v));
			if (rc != 0 && rc != LB_EVALIDATION)
				_exit(4);
		}
		lb_result res;
		int rc = lb_batch_commit(b, &res);
		lb_result_free(&res);
		if (rc != 0 && rc != LB_EVALIDATION)
			_exit(5);
	}
}

typedef struct line_ctx {
	FILE *f;
	uint64_t batch;
	unsigned i;
} line_ctx;

static void put_bytes(FILE *f, const void *p, size_t n, int has)
{
	if (!has) {
		fputs("-", f);
		return;
	}
	fputc('=', f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", ((const unsigned char *)p)[i]);
}

static int line_cb(void *ctx, const lb_change *c)
{
	line_ctx *x = ctx;
	fprintf(x->f, "%llu %u %d %s ", (unsigned long long)x->batch, x->i++,
	        c->op, c->table);
	put_bytes(x->f, c->key, c->klen, c->op != LB_OP_TABLE);
	fputc(' ', x->f);
	put_bytes(x->f, c->before, c->blen, c->has_before);
	fputc(' ', x->f);
	put_bytes(x->f, c->after, c->alen, c->has_after);
	fputc('\n', x->f);
	return 0;
}

/* Follow until batch `until` (0: forever). */
static void consumer(const char *dir, const char *out, uint64_t until)
{
	lb_db *db = te_open_child(dir, LB_NOSYNC);
	lb_consumer_info ci;
	int rc = lb_consumer_get(db, NAME, &ci);
	if (rc != 0)
		_exit(3);
	FILE *f = fopen(out, "a");
	if (!f)
		_exit(4);
	uint64_t id = ci.acked;
	fprintf(f, "start %llu\n", (unsigned long long)id + 1);
	fflush(f);
	for (;;) {
		uint64_t last;
		if (until && id >= until)
			break;
		rc = lb_wait(db, id, 1000, &last);
		if (rc == LB_EBUSY)
			continue;
		if (rc != 0)
			_exit(5);
		while (id < last) {
			line_ctx x = {f, ++id, 0};
			if (lb_changes(db, id, line_cb, &x) != 0)
				_exit(6);
			if (fflush(f) != 0)
				_exit(7);
			if (lb_consumer_ack(db, NAME, id) != 0)
				_exit(8);
		}
	}
	fclose(f);
	lb_close(db);
	_exit(0);
}

static pid_t spawn_writer(const char *dir, uint64_t seed)
{
	pid_t p = fork();
	assert_true(p >= 0);
	if (p == 0)
		writer(dir, seed);
	return p;
}

static pid_t spawn_consumer(const char *dir, const char *out, uint64_t until)
{
	pid_t p = fork();
	assert_true(p >= 0);
	if (p == 0)
		consumer(dir, out, until);
	return p;
}

static void kill_wait(pid_t p)
{
	int st;
	kill(p, SIGKILL);
	assert_int_equal(waitpid(p, &st, 0), p);
}

static uint64_t acked(lb_db *db)
{
	lb_consumer_info ci;
	te_rc(0, lb_consumer_get(db, NAME, &ci));
	return ci.acked;
}

/* Cut the output back to the lines of batches <= upto ("start" lines are
 * kept). */
static void cut_to(const char *out, uint64_t upto)
{
	FILE *f = fopen(out, "r");
	if (!f)
		return;
	char *tmp = NULL;
	assert_true(asprintf(&tmp, "%s.tmp", out) > 0);
	FILE *g = fopen(tmp, "w");
	assert_non_null(g);
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		unsigned long long b;
		if (strncmp(line, "start ", 6) == 0 ||
		    (sscanf(line, "%llu", &b) == 1 && b <= upto))
			fputs(line, g);
	}
	free(line);
	fclose(f);
	fclose(g);
	assert_int_equal(rename(tmp, out), 0);
	free(tmp);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void test_engine_feedkill__complete_across_kills(void **state)
{
	te_fx *fx = *state;
	uint64_t rng = th_seed(1919);
	long rounds = th_env_long("LB_FEEDKILL_ROUNDS", 6);
	char *out = th_path(fx->dir, "feed.out");
	te_rc(0, lb_consumer_ack(fx->db, NAME, 0));
	pid_t w = spawn_writer(fx->dir, th_rand(&rng));
	pid_t c = spawn_consumer(fx->dir, out, 0);
	for (long r = 0; r < rounds; r++) {
		sleep_ms(20 + (long)th_below(&rng, 150));
		if (th_below(&rng, 2)) {
			kill_wait(w);
			w = spawn_writer(fx->dir, th_rand(&rng));
		} else {
			kill_wait(c);
			cut_to(out, acked(fx->db));
			c = spawn_consumer(fx->dir, out, 0);
		}
	}
	sleep_ms(50);
	kill_wait(w);
	kill_wait(c);
	cut_to(out, acked(fx->db));
	uint64_t last = te_last(fx->db);
	th_assert_seeded(last > 10);
	/* catch up, then stop */
	c = spawn_consumer(fx->dir, out, last);
	int st;
	assert_int_equal(waitpid(c, &st, 0), c);
	th_assert_seeded(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	th_assert_seeded(acked(fx->db) == last);

	/* what the file must hold: every record of every batch, in order */
	char *want = th_path(fx->dir, "want.out");
	FILE *f = fopen(want, "w");
	assert_non_null(f);
	for (uint64_t id = 1; id <= last; id++) {
		line_ctx x = {f, id, 0};
		te_rc(0, lb_changes(fx->db, id, line_cb, &x));
	}
	fclose(f);
	FILE *a = fopen(out, "r"), *b = fopen(want, "r");
	assert_non_null(a);
	assert_non_null(b);
	char *la = NULL, *lb = NULL;
	size_t ca = 0, cb = 0;
	uint64_t expect_start = 1, seen_batch = 0, lines = 0;
	int starts = 0;
	for (;;) {
		ssize_t na = getline(&la, &ca, a);
		if (na > 0 && strncmp(la, "start ", 6) == 0) {
			unsigned long long s = strtoull(la + 6, NULL, 10);
			/* a start resumes right after the last batch whole in
			 * the file: no gap, no batch twice */
			th_assert_seeded(s == seen_batch + 1);
			th_assert_seeded(s >= expect_start);
			expect_start = s;
			starts++;
			continue;
		}
		ssize_t nb = getline(&lb, &cb, b);
		th_assert_seeded((na > 0) == (nb > 0));
		if (na <= 0)
			break;
		if (strcmp(la, lb) != 0)
			fprintf(stderr, "got  %swant %s", la, lb);
		th_assert_seeded(strcmp(la, lb) == 0);
		seen_batch = strtoull(la, NULL, 10);
		lines++;
	}
	th_assert_seeded(starts >= 2);
	th_assert_seeded(seen_batch == last);
	if (getenv("LB_TEST_VERBOSE"))
		fprintf(stderr, "%llu batches, %llu records, %d starts\n",
		        (unsigned long long)last, (unsigned long long)lines,
		        starts);
	free(la);
	free(lb);
	fclose(a);
	fclose(b);
	free(want);
	free(out);
	(void)lines;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(
	                test_engine_feedkill__complete_across_kills, te_setup_t,
	                te_teardown),
	};
	return cmocka_run_group_tests_name("engine_feedkill", tests, NULL,
	                                   NULL);
}
