/* SPDX-License-Identifier: MIT */
/*
 * Persistence: close and reopen keep tables, data, the log and the batch ids;
 * the hash chain continues across reopens; LB_RDONLY reads but refuses
 * writes; LB_CREATE and its absence; the map grows on demand.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FX(state) ((te_fx *)*(state))

/* Everything the log says about batches 1..n, to compare across reopen. */
struct logcopy {
	uint64_t n;
	lb_batch_info *info;
	te_recs *recs;
};

static void log_take(lb_db *db, struct logcopy *lc)
{
	uint64_t i;
	lc->n = te_last(db);
	lc->info = te_malloc(lc->n * sizeof *lc->info);
	lc->recs = te_malloc(lc->n * sizeof *lc->recs);
	for (i = 0; i < lc->n; i++) {
		te_rc(0, lb_batch_info_get(db, i + 1, &lc->info[i]));
		te_changes(db, i + 1, &lc->recs[i]);
	}
}

static void log_free(struct logcopy *lc)
{
	uint64_t i;
	for (i = 0; i < lc->n; i++)
		te_recs_free(&lc->recs[i]);
	free(lc->info);
	free(lc->recs);
}

/* Assert the log of db equals lc, batch by batch, record by record. */
static void log_expect(lb_db *db, const struct logcopy *lc)
{
	uint64_t i;
	size_t j;
	for (i = 0; i < lc->n; i++) {
		const lb_batch_info *w = &lc->info[i];
		lb_batch_info g;
		te_recs rs;

		te_rc(0, lb_batch_info_get(db, i + 1, &g));
		assert_int_equal(g.id, w->id);
		assert_int_equal(g.time_ns, w->time_ns);
		assert_string_equal(g.label, w->label);
		assert_int_equal(g.records, w->records);
		assert_int_equal(g.segments, w->segments);
		assert_int_equal(g.raw_bytes, w->raw_bytes);
		assert_int_equal(g.stored_bytes, w->stored_bytes);
		assert_int_equal(g.undoes, w->undoes);
		assert_int_equal(g.rolled_back_by, w->rolled_back_by);
		assert_int_equal(g.pruned, w->pruned);
		assert_memory_equal(g.hash, w->hash, 32);

		te_changes(db, i + 1, &rs);
		assert_int_equal(rs.n, lc->recs[i].n);
		for (j = 0; j < rs.n; j++) {
			const te_rec *r = &lc->recs[i].v[j];
			te_assert_rec(&rs.v[j], r->op, r->table, r->key,
			              r->klen, r->has_before ? r->before : NULL,
			              r->blen, r->has_after ? r->after : NULL,
			              r->alen);
		}
		te_recs_free(&rs);
	}
}

/* Commit a batch of mixed ops over tables t and u with a label. */
static void mixed_batch(lb_db *db, int round)
{
	lb_batch *b = NULL;
	char label[32];
	int i;

	snprintf(label, sizeof label, "round %d", round);
	te_rc(0, lb_batch_begin(db, label, &b));
	for (i = 0; i < 20; i++) {
		char k[16], v[48];
		snprintf(k, sizeof k, "k%02d", (i * 7 + round) % 30);
		snprintf(v, sizeof v, "value %d of round %d", i, round);
		te_rc(0, lb_put(b, (i & 1) ? "u" : "t", k, strlen(k), v,
		                strlen(v)));
	}
	if (round > 0) {
		/* delete what the previous round surely wrote */
		char k[16];
		snprintf(k, sizeof k, "k%02d", (round - 1) % 30);
		te_rc(0, lb_delete(b, "t", k, strlen(k)));
	}
	te_rc(0, lb_batch_commit(b, NULL));
}

struct names {
	char v[4][LB_TABLE_NAME_MAX + 1];
	int n;
};

static int names_cb(void *ctx, const char *name, const lb_schema *s,
                    uint64_t records)
{
	struct names *ns = ctx;
	(void)s;
	(void)records;
	if (ns->n < 4)
		snprintf(ns->v[ns->n], sizeof ns->v[0], "%s", name);
	ns->n++;
	return 0;
}

static void test_engine_persist__reopen_keeps_everything(void **state)
{
	te_fx *fx = *state;
	struct logcopy lc;
	struct names ns;
	uint64_t digest, last;
	int i;

	te_rc(0, lb_table_create(fx->db, "u", NULL));
	for (i = 0; i < 10; i++)
		mixed_batch(fx->db, i);
	digest = te_digest(fx->db);
	last = te_last(fx->db);
	assert_int_equal(last, 12);
	log_take(fx->db, &lc);
	lb_close(fx->db);
	fx->db = NULL;

	fx->db = te_open(fx->dir, 0);
	assert_int_equal(te_last(fx->db), last);
	assert_int_equal(te_digest(fx->db), digest);
	log_expect(fx->db, &lc);
	memset(&ns, 0, sizeof ns);
	te_rc(0, lb_tables(fx->db, names_cb, &ns));
	assert_int_equal(ns.n, 2);
	assert_string_equal(ns.v[0], "t");
	assert_string_equal(ns.v[1], "u");
	/* The tables are usable, the next id follows. */
	assert_int_equal(te_put1(fx->db, "u", "after", "reopen"), last + 1);
	te_rc(LB_EEXIST, lb_table_create(fx->db, "u", NULL));
	log_free(&lc);
}

static void test_engine_persist__chain_verifies_across_reopens(void **state)
{
	te_fx *fx = *state;
	lb_verify_report rep;
	uint64_t records = 0, segments = 0, i;
	int cycle;

	te_rc(0, lb_table_create(fx->db, "u", NULL));
	for (cycle = 0; cycle < 12; cycle++) {
		uint64_t before = te_last(fx->db);
		mixed_batch(fx->db, cycle);
		assert_int_equal(te_last(fx->db), before + 1);
		lb_close(fx->db);
		fx->db = NULL;
		/* alternate durable and nosync opens */
		fx->db = te_open(fx->dir, (cycle & 1) ? LB_NOSYNC : 0);
		assert_int_equal(te_last(fx->db), before + 1);
	}
	for (i = 1; i <= te_last(fx->db); i++) {
		lb_batch_info bi;
		te_rc(0, lb_batch_info_get(fx->db, i, &bi));
		records += bi.records;
		segments += bi.segments;
	}

	memset(&rep, 0xff, sizeof rep);
	te_rc(0, lb_verify(fx->db, 0, &rep));
	assert_true(rep.chain_ok);
	assert_int_equal(rep.bad_batch, 0);
	assert_int_equal(rep.batches, te_last(fx->db));
	assert_int_equal(rep.records, records);
	assert_int_equal(rep.segments, segments);
	assert_string_equal(rep.detail, "");

	memset(&rep, 0, sizeof rep);
	te_rc(0, lb_verify(fx->db, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.chain_ok);
	assert_true(rep.replay_ok);
}

static void test_engine_persist__rdonly_reads_refuses_writes(void **state)
{
	te_fx *fx = *state;
	lb_batch *b = (lb_batch *)1;
	lb_snapshot *s = NULL;
	uint64_t digest;
	te_recs rs;

	te_put1(fx->db, "t", "k", "v");
	digest = te_digest(fx->db);
	lb_close(fx->db);
	fx->db = NULL;

	fx->db = te_open(fx->dir, LB_RDONLY);
	te_assert_get_s(fx->db, "t", "k", "v");
	assert_int_equal(te_digest(fx->db), digest);
	te_rc(0, lb_snapshot_open(fx->db, &s));
	lb_snapshot_close(s);
	te_changes(fx->db, 2, &rs);
	assert_int_equal(rs.n, 1);
	te_recs_free(&rs);

	te_rc(LB_EINVAL, lb_batch_begin(fx->db, NULL, &b));
	assert_null(b);
	te_rc(LB_EINVAL, lb_table_create(fx->db, "new", NULL));
	assert_int_equal(te_digest(fx->db), digest);
	lb_close(fx->db);
	fx->db = NULL;

	/* LB_RDONLY never creates. */
	{
		char *missing = th_path(fx->dir, "missing");
		lb_db *db = (lb_db *)1;
		lb_options o;
		lb_options_init(&o);
		o.flags = LB_RDONLY;
		te_rc(LB_ENOTFOUND, lb_open(missing, &o, &db));
		assert_null(db);
		free(missing);
	}

	/* Writable again, same content. */
	fx->db = te_open(fx->dir, LB_NOSYNC);
	assert_int_equal(te_digest(fx->db), digest);
	assert_int_equal(te_put1(fx->db, "t", "k2", "v2"), 3);
}

static int exists(const char *path, int dir)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return 0;
	return dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
}

static void test_engine_persist__create_flag(void **state)
{
	te_fx *fx = *state;
	char *sub = th_path(fx->dir, "made-by-open");
	char *data = th_path(sub, "data.mdb");
	lb_db *db;

	/* LB_CREATE makes the missing directory and the database. */
	assert_false(exists(sub, 1));
	db = te_open(sub, LB_CREATE);
	assert_true(exists(sub, 1));
	assert_true(exists(data, 0));
	assert_int_equal(te_last(db), 0);
	te_rc(0, lb_table_create(db, "x", NULL));
	te_put1(db, "x", "k", "v");
	lb_close(db);

	/* LB_CREATE on an existing database opens it as it is. */
	db = te_open(sub, LB_CREATE);
	assert_int_equal(te_last(db), 2);
	te_assert_get_s(db, "x", "k", "v");
	lb_close(db);

	/* NULL options mean defaults with LB_CREATE. */
	free(data);
	free(sub);
	sub = th_path(fx->dir, "null-options");
	db = NULL;
	te_rc(0, lb_open(sub, NULL, &db));
	assert_non_null(db);
	assert_int_equal(te_last(db), 0);
	te_rc(0, lb_table_create(db, "y", NULL));
	lb_close(db);
	db = te_open(sub, 0);
	assert_int_equal(te_last(db), 1);
	lb_close(db);
	free(sub);
}

static void test_engine_persist__no_create_flag(void **state)
{
	te_fx *fx = *state;
	char *missing = th_path(fx->dir, "missing");
	char *empty = th_path(fx->dir, "empty");
	char *data = th_path(empty, "data.mdb");
	lb_db *db = (lb_db *)1;

	te_rc(LB_ENOTFOUND, lb_open(missing, &(lb_options){0, -1, 0, 0}, &db));
	assert_null(db);
	assert_false(exists(missing, 1));

	/* An existing empty directory holds no database either, and a failed
	 * open leaves no files behind. */
	assert_int_equal(mkdir(empty, 0755), 0);
	db = (lb_db *)1;
	te_rc(LB_ENOTFOUND, lb_open(empty, &(lb_options){0, -1, 0, 0}, &db));
	assert_null(db);
	assert_false(exists(data, 0));

	free(missing);
	free(empty);
	free(data);
}

static void test_engine_persist__nosync_close_reopen(void **state)
{
	te_fx *fx = *state;
	uint64_t digest;
	int i;

	/* The fixture's handle is LB_NOSYNC. */
	for (i = 0; i < 50; i++) {
		char k[16];
		snprintf(k, sizeof k, "n%d", i);
		te_put1(fx->db, "t", k, k);
	}
	digest = te_digest(fx->db);
	lb_close(fx->db);
	fx->db = NULL;
	fx->db = te_open(fx->dir, 0);
	assert_int_equal(te_last(fx->db), 51);
	assert_int_equal(te_digest(fx->db), digest);
	te_assert_get_s(fx->db, "t", "n49", "n49");
}

static void test_engine_persist__map_grows_on_demand(void **state)
{
	te_fx *fx = *state;
	const size_t vsize = 1u << 20;
	unsigned char *v = te_malloc(vsize);
	uint64_t rng = 77, check;
	lb_options o;
	int i;

	lb_close(fx->db);
	fx->db = NULL;
	lb_options_init(&o);
	o.flags = LB_NOSYNC;
	o.map_size = 1u << 20; /* far smaller than what follows */
	fx->db = te_open_opts(fx->dir, &o);

	/* 24 batches of 1 MiB of incompressible data, each also logged. */
	for (i = 0; i < 24; i++) {
		char k[16];
		te_fill(&rng, v, vsize);
		snprintf(k, sizeof k, "blob%02d", i);
		te_put1n(fx->db, "t", k, strlen(k), v, vsize);
	}
	/* Reading back the last one also checks its content. */
	te_assert_get(fx->db, "t", "blob23", 6, v, vsize);
	check = te_digest(fx->db);
	lb_close(fx->db);
	fx->db = NULL;

	/* Reopening with the small map size adopts the file's size. */
	fx->db = te_open_opts(fx->dir, &o);
	assert_int_equal(te_digest(fx->db), check);
	rng = 77;
	for (i = 0; i < 24; i++) {
		char k[16];
		te_fill(&rng, v, vsize);
		snprintf(k, sizeof k, "blob%02d", i);
		te_assert_get(fx->db, "t", k, strlen(k), v, vsize);
	}
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, te_setup_t, te_teardown)
	        T(test_engine_persist__reopen_keeps_everything),
	        T(test_engine_persist__chain_verifies_across_reopens),
	        T(test_engine_persist__rdonly_reads_refuses_writes),
	        T(test_engine_persist__create_flag),
	        T(test_engine_persist__no_create_flag),
	        T(test_engine_persist__nosync_close_reopen),
	        T(test_engine_persist__map_grows_on_demand),
#undef T
	};
	return cmocka_run_group_tests_name("engine_persist", tests, NULL, NULL);
}
