/* SPDX-License-Identifier: MIT */
/*
 * lb_table_alter: a table's schema changes in a logged batch; loosening
 * always passes, tightening is checked against every record; the change
 * replays, verifies and rolls back (also with lb_rollback_to).
 */
#define _GNU_SOURCE
#include "_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* {"id": <s>} or {"id": <s>, "n": <n>} as msgpack. */
static size_t rec(uint8_t *out, const char *id, int n)
{
	size_t l = strlen(id), o = 0;
	out[o++] = n >= 0 ? 0x82 : 0x81;
	out[o++] = 0xa2;
	out[o++] = 'i';
	out[o++] = 'd';
	out[o++] = (uint8_t)(0xa0 | l);
	memcpy(out + o, id, l);
	o += l;
	if (n >= 0) {
		out[o++] = 0xa1;
		out[o++] = 'n';
		out[o++] = (uint8_t)n; /* positive fixint */
	}
	return o;
}

static void put_rec(lb_db *db, const char *t, const char *k, const char *id,
                    int n)
{
	uint8_t v[64];
	lb_batch *b;
	te_rc(0, lb_batch_begin(db, "put", &b));
	te_rc(0, lb_put(b, t, k, strlen(k), v, rec(v, id, n)));
	te_rc(0, lb_batch_commit(b, NULL));
}

/* Every key and value of table h (te_digest also counts the last batch). */
static uint64_t content(lb_db *db)
{
	lb_snapshot *s;
	lb_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	uint64_t h = 0xcbf29ce484222325ull;
	int rc;
	te_rc(0, lb_snapshot_open(db, &s));
	te_rc(0, lb_cursor_open(s, "h", &c));
	while ((rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0) {
		for (size_t i = 0; i < kl; i++)
			h = (h ^ ((const uint8_t *)k)[i]) * 0x100000001b3ull;
		h = (h ^ kl) * 0x100000001b3ull;
		for (size_t i = 0; i < vl; i++)
			h = (h ^ ((const uint8_t *)v)[i]) * 0x100000001b3ull;
		h = (h ^ vl) * 0x100000001b3ull;
	}
	te_rc(LB_ENOTFOUND, rc);
	lb_cursor_close(c);
	lb_snapshot_close(s);
	return h;
}

static const lb_field f_id10[] = {{"id", LB_STR, LB_REQUIRED, 10, NULL}};
static const lb_field f_loose[] = {{"id", LB_STR, 0, 20, NULL},
                                   {"n", LB_INT, 0, 0, NULL}};
static const lb_field f_tight[] = {{"id", LB_STR, LB_REQUIRED, 2, NULL}};

static void verified(lb_db *db)
{
	lb_verify_report rep;
	te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
}

static int schema_of(void *ctx, const char *name, const lb_schema *s,
                     uint64_t records)
{
	(void)records;
	if (strcmp(name, "h") == 0)
		*(size_t *)ctx = s ? s->nfields : (size_t)-1;
	return 0;
}

static size_t nfields(lb_db *db)
{
	size_t n = 0;
	te_rc(0, lb_tables(db, schema_of, &n));
	return n;
}

static void test_engine_alter__loosen_tighten_and_back(void **state)
{
	te_fx *fx = *state;
	lb_db *db = fx->db;
	lb_result res;
	lb_schema s10 = {f_id10, 1, 1}, loose = {f_loose, 2, 0},
	          tight = {f_tight, 1, 1};
	te_rc(0, lb_table_create(db, "h", &s10));
	for (int i = 0; i < 1200; i++) {
		char k[16], id[16];
		snprintf(k, sizeof k, "k%04d", i);
		snprintf(id, sizeof id, "id%04d", i);
		put_rec(db, "h", k, id, -1);
	}
	uint64_t before = te_last(db), d = te_digest(db), cd = content(db);

	/* tightening that 1,200 records break: nothing written, the first
	 * LB_ISSUES_MAX issues kept, all counted */
	te_rc(LB_EVALIDATION, lb_table_alter(db, "h", &tight, &res));
	assert_int_equal(res.nissues, LB_ISSUES_MAX);
	assert_true(res.nissues_total >= LB_ISSUES_MAX);
	assert_int_equal(res.issues[0].kind, LB_ISSUE_FORMAT);
	assert_string_equal(res.issues[0].table, "h");
	assert_string_equal(res.issues[0].field, "id");
	lb_result_free(&res);
	assert_int_equal(te_last(db), before);
	assert_int_equal(te_digest(db), d);
	assert_int_equal(nfields(db), 1);

	/* loosening: a new optional field, a higher limit, open */
	te_rc(0, lb_table_alter(db, "h", &loose, &res));
	uint64_t alter = res.batch_id;
	assert_int_equal(alter, before + 1);
	lb_result_free(&res);
	assert_int_equal(nfields(db), 2);
	te_recs r;
	memset(&r, 0, sizeof r);
	te_changes(db, alter, &r);
	assert_int_equal(r.n, 1); /* one TABLE record, both schemas */
	assert_int_equal(r.v[0].op, LB_OP_TABLE);
	assert_true(r.v[0].has_before && r.v[0].has_after);
	te_recs_free(&r);
	put_rec(db, "h", "new", "a-much-longer-id", 7);
	verified(db);

	/* the same schema again: nothing to write */
	te_rc(0, lb_table_alter(db, "h", &loose, &res));
	assert_int_equal(res.batch_id, 0);
	lb_result_free(&res);

	/* rolling the change back needs the records to fit the old one */
	te_rc(LB_EVALIDATION, lb_rollback(db, alter, 0, &res));
	lb_result_free(&res);
	te_rc(0, lb_rollback(db, te_last(db), 0, &res)); /* the put */
	lb_result_free(&res);
	te_rc(0, lb_rollback(db, alter, 0, &res));
	lb_result_free(&res);
	assert_int_equal(nfields(db), 1);
	void *v;
	size_t vn;
	te_rc(0, lb_get(db, "h", "k0001", 5, &v, &vn)); /* still there */
	free(v);
	verified(db);

	/* and back once more with rollback_to: in place, records kept */
	te_rc(0, lb_table_alter(db, "h", &loose, &res));
	lb_result_free(&res);
	put_rec(db, "h", "k0002", "x", 1);
	te_rc(0, lb_rollback_to(db, before, &res));
	lb_result_free(&res);
	assert_int_equal(nfields(db), 1);
	assert_int_equal(content(db), cd);
	verified(db);
}

/* A reference added by a schema change must name existing keys, and is
 * then enforced; one removed stops being. */
static void test_engine_alter__references(void **state)
{
	te_fx *fx = *state;
	lb_db *db = fx->db;
	lb_result res;
	static const lb_field plain[] = {{"id", LB_STR, 0, 0, NULL}};
	static const lb_field refd[] = {{"id", LB_STR, 0, 0, "t"}};
	lb_schema sp = {plain, 1, 0}, sr = {refd, 1, 0};
	te_rc(0, lb_table_create(db, "w", &sp));
	te_put1(db, "t", "a", "hearing");
	put_rec(db, "w", "w1", "a", -1);
	put_rec(db, "w", "w2", "zz", -1);
	te_rc(LB_EVALIDATION, lb_table_alter(db, "w", &sr, &res));
	assert_true(res.nissues >= 1);
	assert_int_equal(res.issues[0].kind, LB_ISSUE_FOREIGN_KEY);
	lb_result_free(&res);
	lb_batch *b;
	te_rc(0, lb_batch_begin(db, "drop w2", &b));
	te_rc(0, lb_delete(b, "w", "w2", 2));
	te_rc(0, lb_batch_commit(b, NULL));
	te_rc(0, lb_table_alter(db, "w", &sr, &res));
	lb_result_free(&res);
	/* now enforced: t/a is referenced */
	te_rc(0, lb_batch_begin(db, "delete a", &b));
	te_rc(0, lb_delete(b, "t", "a", 1));
	te_rc(LB_EVALIDATION, lb_batch_commit(b, &res));
	lb_result_free(&res);
	verified(db);
	/* and loosened again: t/a may go */
	te_rc(0, lb_table_alter(db, "w", &sp, &res));
	lb_result_free(&res);
	te_del1(db, "t", "a");
	verified(db);
	/* replayed elsewhere, the same */
	char *rp = th_path(fx->dir, "../rp-alter");
	te_rc(0, lb_replay(db, rp, 0, NULL, &res));
	lb_result_free(&res);
	lb_db *r = te_open(rp, 0);
	assert_int_equal(te_digest(r), te_digest(db));
	verified(r);
	lb_close(r);
	th_rmrf(rp);
	free(rp);
}

static void test_engine_alter__errors(void **state)
{
	te_fx *fx = *state;
	lb_result res;
	static const lb_field f[] = {{"x", LB_STR, 0, 0, "nope"}};
	lb_schema bad = {f, 1, 0};
	te_rc(LB_ENOTFOUND, lb_table_alter(fx->db, "missing", NULL, &res));
	lb_result_free(&res);
	te_rc(LB_EINVAL, lb_table_alter(fx->db, "t", &bad, &res));
	lb_result_free(&res);
	te_rc(LB_EINVAL, lb_table_alter(NULL, "t", NULL, &res));
	te_rc(LB_EINVAL, lb_table_alter(fx->db, "", NULL, &res));
	/* opaque to opaque: nothing */
	te_rc(0, lb_table_alter(fx->db, "t", NULL, &res));
	assert_int_equal(res.batch_id, 0);
	lb_result_free(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, te_setup_t, te_teardown)
	        T(test_engine_alter__loosen_tighten_and_back),
	        T(test_engine_alter__references),
	        T(test_engine_alter__errors),
#undef T
	};
	return cmocka_run_group_tests_name("engine_alter", tests, NULL, NULL);
}
