/* SPDX-License-Identifier: MIT */
/*
 * Batches: ids, commit and abort, validation issues (DUPLICATE, MISSING), the
 * batch's view of its own writes, the change records of lb_changes() with
 * their exact images, lb_batch_info_get(), segmentation of large batches and
 * compression accounting.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FX(state) ((te_fx *)*(state))

static lb_batch *begin(lb_db *db, const char *label)
{
	lb_batch *b = NULL;
	te_rc(0, lb_batch_begin(db, label, &b));
	assert_non_null(b);
	return b;
}

/* The encoded schema of an opaque table (FORMAT §6), shortest msgpack:
 * array(4) [1, 0, false, array(0)]. */
static const unsigned char opaque_schema[] = {0x95, 0x02, 0x00,
                                              0xc2, 0x90, 0xc0};

static void test_engine_batch__table_create_is_batch_1(void **state)
{
	lb_db *db = FX(state)->db;
	te_recs rs;
	lb_batch_info bi;

	assert_int_equal(te_last(db), 0);
	te_rc(0, lb_table_create(db, "t", NULL));
	assert_int_equal(te_last(db), 1);

	te_changes(db, 1, &rs);
	assert_int_equal(rs.n, 1);
	te_assert_rec(&rs.v[0], LB_OP_TABLE, "t", "t", 1, NULL, 0,
	              opaque_schema, sizeof opaque_schema);
	te_recs_free(&rs);

	memset(&bi, 0xa5, sizeof bi);
	te_rc(0, lb_batch_info_get(db, 1, &bi));
	assert_int_equal(bi.id, 1);
	assert_int_equal(bi.records, 1);
	assert_int_equal(bi.segments, 1);
	assert_int_equal(bi.undoes, 0);
	assert_int_equal(bi.rolled_back_by, 0);

	/* A second table is the next batch, logged the same way. */
	te_rc(0, lb_table_create(db, "Other.table-2_x", NULL));
	assert_int_equal(te_last(db), 2);
	te_changes(db, 2, &rs);
	assert_int_equal(rs.n, 1);
	te_assert_rec(&rs.v[0], LB_OP_TABLE, "Other.table-2_x",
	              "Other.table-2_x", 15, NULL, 0, opaque_schema,
	              sizeof opaque_schema);
	te_recs_free(&rs);
}

static void test_engine_batch__table_create_twice_is_eexist(void **state)
{
	lb_db *db = FX(state)->db;
	uint64_t d;

	te_put1(db, "t", "k", "v");
	d = te_digest(db);
	te_rc(LB_EEXIST, lb_table_create(db, "t", NULL));
	assert_int_equal(te_digest(db), d);
	assert_int_equal(te_last(db), 2);
}

static void test_engine_batch__ids_grow_by_one(void **state)
{
	lb_db *db = FX(state)->db;
	uint64_t i;

	for (i = 0; i < 20; i++) {
		char key[32];
		snprintf(key, sizeof key, "k%" PRIu64, i);
		/* te_put1 asserts res.batch_id == last + 1 and the new last */
		assert_int_equal(te_put1(db, "t", key, "v"), i + 2);
	}
	assert_int_equal(te_last(db), 21);
}

static void test_engine_batch__put_get_overwrite(void **state)
{
	lb_db *db = FX(state)->db;
	unsigned char bkey[] = {0x00, 0x01, 0x00, 0xff};
	unsigned char bval[] = {0xff, 0x00, 0x00, 0x7f, 0x00};
	char longkey[LB_KEY_MAX];

	te_put1(db, "t", "alpha", "one");
	te_assert_get_s(db, "t", "alpha", "one");
	te_put1(db, "t", "alpha", "two, longer than before");
	te_assert_get_s(db, "t", "alpha", "two, longer than before");

	/* Empty values are values. */
	te_put1n(db, "t", "empty", 5, "", 0);
	te_assert_get(db, "t", "empty", 5, "", 0);

	/* Keys and values are bytes, NULs included. */
	te_put1n(db, "t", bkey, sizeof bkey, bval, sizeof bval);
	te_assert_get(db, "t", bkey, sizeof bkey, bval, sizeof bval);
	te_assert_absent(db, "t", bkey, 1);

	/* The longest key is accepted. */
	memset(longkey, 'L', sizeof longkey);
	longkey[LB_KEY_MAX - 1] = 'z';
	te_put1n(db, "t", longkey, sizeof longkey, "max", 3);
	te_assert_get(db, "t", longkey, sizeof longkey, "max", 3);
	te_assert_absent(db, "t", longkey, sizeof longkey - 1);
}

static void test_engine_batch__changes_exact_images(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b;
	lb_result res;
	te_recs rs;

	te_put1(db, "t", "gone", "old-gone"); /* batch 2 */

	/* Batch 3: every op is one record, in order, no coalescing. */
	b = begin(db, "images");
	te_rc(0, lb_put(b, "t", "a", 1, "1", 1));
	te_rc(0, lb_put(b, "t", "a", 1, "22", 2));
	te_rc(0, lb_insert(b, "t", "b", 1, "bee", 3));
	te_rc(0, lb_update(b, "t", "a", 1, "333", 3));
	te_rc(0, lb_delete(b, "t", "gone", 4));
	te_rc(0, lb_delete(b, "t", "a", 1));
	te_rc(0, lb_insert(b, "t", "a", 1, "", 0));
	te_rc(0, lb_put(b, "t", "gone", 4, "back", 4));
	memset(&res, 0, sizeof res);
	te_rc(0, lb_batch_commit(b, &res));
	assert_int_equal(res.rc, 0);
	assert_int_equal(res.batch_id, 3);
	assert_int_equal(res.records, 8);
	assert_int_equal(res.nissues, 0);
	assert_int_equal(res.nissues_total, 0);
	lb_result_free(&res);

	te_changes(db, 3, &rs);
	assert_int_equal(rs.n, 8);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "a", NULL, "1");
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "a", "1", "22");
	te_assert_rec_s(&rs.v[2], LB_OP_PUT, "t", "b", NULL, "bee");
	te_assert_rec_s(&rs.v[3], LB_OP_PUT, "t", "a", "22", "333");
	te_assert_rec_s(&rs.v[4], LB_OP_DELETE, "t", "gone", "old-gone", NULL);
	te_assert_rec_s(&rs.v[5], LB_OP_DELETE, "t", "a", "333", NULL);
	te_assert_rec(&rs.v[6], LB_OP_PUT, "t", "a", 1, NULL, 0, "", 0);
	te_assert_rec_s(&rs.v[7], LB_OP_PUT, "t", "gone", NULL, "back");
	te_recs_free(&rs);

	te_assert_get(db, "t", "a", 1, "", 0);
	te_assert_get_s(db, "t", "b", "bee");
	te_assert_get_s(db, "t", "gone", "back");

	/* Batch 4: an overwrite of an empty value has an empty before. */
	te_put1(db, "t", "a", "x");
	te_changes(db, 4, &rs);
	assert_int_equal(rs.n, 1);
	te_assert_rec(&rs.v[0], LB_OP_PUT, "t", "a", 1, "", 0, "x", 1);
	te_recs_free(&rs);

	/* Earlier batches keep their own records. */
	te_changes(db, 2, &rs);
	assert_int_equal(rs.n, 1);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "gone", NULL, "old-gone");
	te_recs_free(&rs);
}

struct stopper {
	int calls, stop_at, ret;
};

static int stop_cb(void *ctx, const lb_change *c)
{
	struct stopper *s = ctx;
	(void)c;
	s->calls++;
	return s->calls == s->stop_at ? s->ret : 0;
}

static void test_engine_batch__changes_callback_stops_walk(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = begin(db, NULL);
	struct stopper s = {0, 2, 7};
	int i;

	for (i = 0; i < 5; i++) {
		char k[16];
		snprintf(k, sizeof k, "k%d", i);
		te_rc(0, lb_put(b, "t", k, strlen(k), "v", 1));
	}
	te_rc(0, lb_batch_commit(b, NULL));
	assert_int_equal(lb_changes(db, 2, stop_cb, &s), 7);
	assert_int_equal(s.calls, 2);

	s.calls = 0;
	s.stop_at = 100;
	te_rc(0, lb_changes(db, 2, stop_cb, &s));
	assert_int_equal(s.calls, 5);

	te_rc(LB_ENOTFOUND, lb_changes(db, 3, stop_cb, &s));
}

/* Assert that res holds exactly one issue of kind on t/key. */
static void assert_one_issue(const lb_result *res, lb_issue_kind kind,
                             const char *key)
{
	assert_int_equal(res->rc, LB_EVALIDATION);
	assert_int_equal(res->batch_id, 0);
	assert_int_equal(res->nissues, 1);
	assert_int_equal(res->nissues_total, 1);
	assert_non_null(res->issues);
	assert_int_equal(res->issues[0].kind, kind);
	assert_non_null(res->issues[0].table);
	assert_string_equal(res->issues[0].table, "t");
	assert_int_equal(res->issues[0].klen, strlen(key));
	assert_memory_equal(res->issues[0].key, key, strlen(key));
	assert_non_null(res->issues[0].message);
	assert_true(res->issues[0].message[0] != '\0');
	assert_null(res->issues[0].field);
	assert_int_equal(res->issues[0].batch, 0);
}

static void test_engine_batch__insert_existing_is_duplicate(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b;
	lb_result res;
	uint64_t d;

	te_put1(db, "t", "a", "orig");
	d = te_digest(db);

	b = begin(db, NULL);
	te_rc(0, lb_put(b, "t", "x", 1, "new", 3));
	te_rc(LB_EVALIDATION, lb_insert(b, "t", "a", 1, "dup", 3));
	/* The refused op was not applied. */
	{
		const void *v;
		size_t vl;
		te_rc(0, lb_batch_get(b, "t", "a", 1, &v, &vl));
		assert_int_equal(vl, 4);
		assert_memory_equal(v, "orig", 4);
	}
	memset(&res, 0xff, sizeof res);
	te_rc(LB_EVALIDATION, lb_batch_commit(b, &res));
	assert_one_issue(&res, LB_ISSUE_DUPLICATE, "a");
	lb_result_free(&res);

	/* Nothing at all was written, not even the good op. */
	assert_int_equal(te_digest(db), d);
	te_assert_absent_s(db, "t", "x");
	te_assert_get_s(db, "t", "a", "orig");
	{
		te_recs rs = {NULL, 0, 0};
		te_rc(LB_ENOTFOUND, lb_changes(db, 3, te_collect, &rs));
		assert_int_equal(rs.n, 0);
		te_recs_free(&rs);
	}
}

static void test_engine_batch__insert_twice_in_batch_is_duplicate(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = begin(db, NULL);
	lb_result res;
	uint64_t d = te_digest(db);

	te_rc(0, lb_insert(b, "t", "k", 1, "one", 3));
	te_rc(LB_EVALIDATION, lb_insert(b, "t", "k", 1, "two", 3));
	memset(&res, 0, sizeof res);
	te_rc(LB_EVALIDATION, lb_batch_commit(b, &res));
	assert_one_issue(&res, LB_ISSUE_DUPLICATE, "k");
	lb_result_free(&res);
	assert_int_equal(te_digest(db), d);
	te_assert_absent_s(db, "t", "k");
}

static void test_engine_batch__insert_then_update_in_batch(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = begin(db, NULL);
	lb_result res;
	te_recs rs;

	te_rc(0, lb_insert(b, "t", "k", 1, "one", 3));
	te_rc(0, lb_update(b, "t", "k", 1, "two", 3));
	memset(&res, 0, sizeof res);
	te_rc(0, lb_batch_commit(b, &res));
	assert_int_equal(res.batch_id, 2);
	assert_int_equal(res.records, 2);
	lb_result_free(&res);
	te_assert_get_s(db, "t", "k", "two");

	te_changes(db, 2, &rs);
	assert_int_equal(rs.n, 2);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "k", NULL, "one");
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "k", "one", "two");
	te_recs_free(&rs);
}

static void test_engine_batch__update_missing_is_missing(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = begin(db, NULL);
	lb_result res;
	uint64_t d = te_digest(db);

	te_rc(LB_EVALIDATION, lb_update(b, "t", "nope", 4, "v", 1));
	memset(&res, 0, sizeof res);
	te_rc(LB_EVALIDATION, lb_batch_commit(b, &res));
	assert_one_issue(&res, LB_ISSUE_MISSING, "nope");
	lb_result_free(&res);
	assert_int_equal(te_digest(db), d);
	te_assert_absent_s(db, "t", "nope");
}

static void test_engine_batch__delete_missing_is_missing(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = begin(db, NULL);
	lb_result res;
	uint64_t d = te_digest(db);

	te_rc(LB_EVALIDATION, lb_delete(b, "t", "nope", 4));
	memset(&res, 0, sizeof res);
	te_rc(LB_EVALIDATION, lb_batch_commit(b, &res));
	assert_one_issue(&res, LB_ISSUE_MISSING, "nope");
	lb_result_free(&res);
	assert_int_equal(te_digest(db), d);
}

static void test_engine_batch__ops_see_own_delete(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b;
	lb_result res;
	uint64_t d;
	te_recs rs;

	te_put1(db, "t", "k", "v0");
	d = te_digest(db);

	/* update and delete after the batch's own delete are MISSING */
	b = begin(db, NULL);
	te_rc(0, lb_delete(b, "t", "k", 1));
	te_rc(LB_EVALIDATION, lb_update(b, "t", "k", 1, "v1", 2));
	memset(&res, 0, sizeof res);
	te_rc(LB_EVALIDATION, lb_batch_commit(b, &res));
	assert_one_issue(&res, LB_ISSUE_MISSING, "k");
	lb_result_free(&res);
	assert_int_equal(te_digest(db), d);

	b = begin(db, NULL);
	te_rc(0, lb_delete(b, "t", "k", 1));
	te_rc(LB_EVALIDATION, lb_delete(b, "t", "k", 1));
	te_rc(LB_EVALIDATION, lb_batch_commit(b, NULL));
	assert_int_equal(te_digest(db), d);

	/* insert after the batch's own delete is fine */
	b = begin(db, NULL);
	te_rc(0, lb_delete(b, "t", "k", 1));
	te_rc(0, lb_insert(b, "t", "k", 1, "v2", 2));
	memset(&res, 0, sizeof res);
	te_rc(0, lb_batch_commit(b, &res));
	assert_int_equal(res.batch_id, 3);
	lb_result_free(&res);
	te_assert_get_s(db, "t", "k", "v2");
	te_changes(db, 3, &rs);
	assert_int_equal(rs.n, 2);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "k", "v0", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "k", NULL, "v2");
	te_recs_free(&rs);
}

static int has_issue(const lb_result *r, lb_issue_kind kind, const char *key)
{
	size_t i;
	for (i = 0; i < r->nissues; i++)
		if (r->issues[i].kind == kind &&
		    r->issues[i].klen == strlen(key) &&
		    memcmp(r->issues[i].key, key, strlen(key)) == 0 &&
		    r->issues[i].message && r->issues[i].message[0])
			return 1;
	return 0;
}

static void test_engine_batch__all_issues_reported_no_id_used(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b;
	lb_result res;
	uint64_t d;

	te_put1(db, "t", "e1", "x");
	te_put1(db, "t", "e2", "x");
	d = te_digest(db);

	b = begin(db, "bad");
	te_rc(0, lb_put(b, "t", "good1", 5, "g", 1));
	te_rc(LB_EVALIDATION, lb_insert(b, "t", "e1", 2, "d", 1));
	te_rc(LB_EVALIDATION, lb_update(b, "t", "m1", 2, "u", 1));
	te_rc(0, lb_update(b, "t", "e2", 2, "u", 1));
	te_rc(LB_EVALIDATION, lb_delete(b, "t", "m2", 2));
	te_rc(0, lb_insert(b, "t", "good2", 5, "g", 1));
	memset(&res, 0, sizeof res);
	te_rc(LB_EVALIDATION, lb_batch_commit(b, &res));
	assert_int_equal(res.rc, LB_EVALIDATION);
	assert_int_equal(res.batch_id, 0);
	assert_int_equal(res.nissues, 3);
	assert_int_equal(res.nissues_total, 3);
	assert_true(has_issue(&res, LB_ISSUE_DUPLICATE, "e1"));
	assert_true(has_issue(&res, LB_ISSUE_MISSING, "m1"));
	assert_true(has_issue(&res, LB_ISSUE_MISSING, "m2"));
	lb_result_free(&res);
	assert_int_equal(te_digest(db), d);
	te_assert_get_s(db, "t", "e2", "x");

	/* The rejected batch consumed no id. */
	assert_int_equal(te_put1(db, "t", "after", "ok"), 4);
}

static void test_engine_batch__issues_capped_but_counted(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = begin(db, NULL);
	lb_result res;
	size_t i, n = LB_ISSUES_MAX + 5;

	for (i = 0; i < n; i++) {
		char k[16];
		snprintf(k, sizeof k, "m%05zu", i);
		te_rc(LB_EVALIDATION, lb_delete(b, "t", k, strlen(k)));
	}
	memset(&res, 0, sizeof res);
	te_rc(LB_EVALIDATION, lb_batch_commit(b, &res));
	assert_int_equal(res.nissues, LB_ISSUES_MAX);
	assert_int_equal(res.nissues_total, n);
	for (i = 0; i < res.nissues; i++)
		assert_int_equal(res.issues[i].kind, LB_ISSUE_MISSING);
	lb_result_free(&res);
	assert_int_equal(te_last(db), 1);
}

static void test_engine_batch__result_free_zeroes(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = begin(db, NULL);
	lb_result res;

	te_rc(LB_EVALIDATION, lb_delete(b, "t", "m", 1));
	memset(&res, 0, sizeof res);
	te_rc(LB_EVALIDATION, lb_batch_commit(b, &res));
	assert_non_null(res.issues);
	lb_result_free(&res);
	assert_null(res.issues);
	assert_int_equal(res.nissues, 0);
	assert_int_equal(res.nissues_total, 0);
	assert_int_equal(res.rc, 0);
	assert_int_equal(res.batch_id, 0);
	lb_result_free(&res); /* a zeroed result frees again harmlessly */
}

static void test_engine_batch__empty_batch_commits_nothing(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = begin(db, "empty");
	lb_result res;
	uint64_t d = te_digest(db);

	memset(&res, 0xff, sizeof res);
	te_rc(0, lb_batch_commit(b, &res));
	assert_int_equal(res.rc, 0);
	assert_int_equal(res.batch_id, 0);
	assert_int_equal(res.records, 0);
	assert_int_equal(res.nissues, 0);
	assert_int_equal(res.nissues_total, 0);
	lb_result_free(&res);
	assert_int_equal(te_last(db), 1);
	assert_int_equal(te_digest(db), d);

	b = begin(db, NULL);
	te_rc(0, lb_batch_commit(b, NULL));
	assert_int_equal(te_last(db), 1);
	{
		lb_batch_info bi;
		te_rc(LB_ENOTFOUND, lb_batch_info_get(db, 2, &bi));
	}
	assert_int_equal(te_put1(db, "t", "k", "v"), 2);
}

static void test_engine_batch__abort_writes_nothing(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b;
	uint64_t d;

	te_put1(db, "t", "keep", "v");
	d = te_digest(db);
	b = begin(db, "aborted");
	te_rc(0, lb_put(b, "t", "new", 3, "v", 1));
	te_rc(0, lb_delete(b, "t", "keep", 4));
	lb_batch_abort(b);
	assert_int_equal(te_digest(db), d);
	te_assert_absent_s(db, "t", "new");
	te_assert_get_s(db, "t", "keep", "v");

	/* The write lock was released: the next batch begins and gets the
	 * next id. */
	assert_int_equal(te_put1(db, "t", "new", "w"), 3);

	/* Aborting a batch that had refused ops also works. */
	b = begin(db, NULL);
	te_rc(LB_EVALIDATION, lb_delete(b, "t", "missing", 7));
	lb_batch_abort(b);
	assert_int_equal(te_put1(db, "t", "x", "y"), 4);
}

static void test_engine_batch__batch_get_sees_own_writes(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b;
	const void *v;
	size_t vl;

	te_put1(db, "t", "a", "committed");
	b = begin(db, NULL);
	te_rc(0, lb_batch_get(b, "t", "a", 1, &v, &vl));
	assert_int_equal(vl, 9);
	assert_memory_equal(v, "committed", 9);

	te_rc(0, lb_put(b, "t", "a", 1, "pending", 7));
	te_rc(0, lb_batch_get(b, "t", "a", 1, &v, &vl));
	assert_int_equal(vl, 7);
	assert_memory_equal(v, "pending", 7);
	/* Readers outside the batch see committed data only. */
	te_assert_get_s(db, "t", "a", "committed");

	te_rc(0, lb_put(b, "t", "b", 1, "bee", 3));
	te_rc(0, lb_batch_get(b, "t", "b", 1, &v, &vl));
	assert_int_equal(vl, 3);
	assert_memory_equal(v, "bee", 3);
	te_assert_absent_s(db, "t", "b");

	te_rc(0, lb_delete(b, "t", "a", 1));
	v = (const void *)1;
	te_rc(LB_ENOTFOUND, lb_batch_get(b, "t", "a", 1, &v, &vl));
	assert_null(v);
	te_rc(LB_ENOTFOUND, lb_batch_get(b, "t", "zzz", 3, &v, &vl));
	te_rc(LB_ENOTFOUND, lb_batch_get(b, "nosuch", "a", 1, &v, &vl));
	te_rc(0, lb_batch_commit(b, NULL));

	te_assert_absent_s(db, "t", "a");
	te_assert_get_s(db, "t", "b", "bee");
}

static int hash_is_zero(const uint8_t h[32])
{
	int i;
	for (i = 0; i < 32; i++)
		if (h[i])
			return 0;
	return 1;
}

static void test_engine_batch__batch_info_fields(void **state)
{
	lb_db *db = FX(state)->db;
	const char *label = "nightly load: hearings 2024-01-02";
	lb_batch_info bi, b1;
	lb_batch *b;
	int64_t t0, t1;
	int i;

	t0 = te_now_ns();
	b = begin(db, label);
	for (i = 0; i < 200; i++) {
		char k[16], v[128];
		snprintf(k, sizeof k, "h%05d", i);
		snprintf(v, sizeof v,
		         "{\"title\":\"Hearing on appropriations %d\","
		         "\"chamber\":\"house\",\"congress\":118}",
		         i % 7);
		te_rc(0, lb_put(b, "t", k, strlen(k), v, strlen(v)));
	}
	te_rc(0, lb_batch_commit(b, NULL));
	t1 = te_now_ns();

	memset(&bi, 0x5a, sizeof bi);
	te_rc(0, lb_batch_info_get(db, 2, &bi));
	assert_int_equal(bi.id, 2);
	assert_string_equal(bi.label, label);
	assert_int_equal(bi.records, 200);
	assert_true(bi.segments >= 1);
	assert_true(bi.raw_bytes > 200 * 60);
	assert_true(bi.stored_bytes > 0);
	/* Default compression (zlib 1) shrinks repetitive records. */
	assert_true(bi.stored_bytes < bi.raw_bytes);
	assert_int_equal(bi.undoes, 0);
	assert_int_equal(bi.rolled_back_by, 0);
	assert_int_equal(bi.pruned, 0);
	assert_false(hash_is_zero(bi.hash));
	/* Commit time lies within the call, give or take a coarse clock. */
	assert_true(bi.time_ns >= t0 - 50000000);
	assert_true(bi.time_ns <= t1 + 50000000);

	/* The chain hash differs from batch to batch. */
	te_rc(0, lb_batch_info_get(db, 1, &b1));
	assert_int_equal(b1.id, 1);
	assert_false(hash_is_zero(b1.hash));
	assert_memory_not_equal(b1.hash, bi.hash, 32);

	te_rc(LB_ENOTFOUND, lb_batch_info_get(db, 3, &bi));
	te_rc(LB_ENOTFOUND, lb_batch_info_get(db, UINT64_MAX, &bi));
}

static void test_engine_batch__labels(void **state)
{
	lb_db *db = FX(state)->db;
	char label[LB_LABEL_MAX + 1];
	lb_batch_info bi;
	lb_batch *b;

	b = begin(db, NULL);
	te_rc(0, lb_put(b, "t", "k", 1, "v", 1));
	te_rc(0, lb_batch_commit(b, NULL));
	te_rc(0, lb_batch_info_get(db, 2, &bi));
	assert_string_equal(bi.label, "");

	memset(label, 'x', LB_LABEL_MAX);
	label[0] = 'A';
	label[LB_LABEL_MAX - 1] = 'Z';
	label[LB_LABEL_MAX] = '\0';
	b = begin(db, label);
	te_rc(0, lb_put(b, "t", "k", 1, "w", 1));
	te_rc(0, lb_batch_commit(b, NULL));
	te_rc(0, lb_batch_info_get(db, 3, &bi));
	assert_string_equal(bi.label, label);

	b = begin(db, "utf-8 \xc3\xa9t\xc3\xa9");
	te_rc(0, lb_put(b, "t", "k", 1, "z", 1));
	te_rc(0, lb_batch_commit(b, NULL));
	te_rc(0, lb_batch_info_get(db, 4, &bi));
	assert_string_equal(bi.label, "utf-8 \xc3\xa9t\xc3\xa9");
}

/* The big batch: deterministic key and value of record i. */
#define BIG_N 100000
static void big_kv(unsigned i, char *k, size_t *kl, char *v, size_t *vl)
{
	*kl = (size_t)sprintf(k, "key-%06u", i);
	*vl = (size_t)sprintf(v, "value %06u of the big batch; %s", i * 7u,
	                      (i % 3) ? "repetitive filler text" : "other");
}

struct big_ctx {
	unsigned next;
	unsigned bad;
};

static int big_cb(void *ctx, const lb_change *c)
{
	struct big_ctx *bc = ctx;
	char k[32], v[96];
	size_t kl, vl;

	big_kv(bc->next, k, &kl, v, &vl);
	if (c->op != LB_OP_PUT || strcmp(c->table, "t") != 0 || c->klen != kl ||
	    memcmp(c->key, k, kl) != 0 || c->has_before || !c->has_after ||
	    c->alen != vl || memcmp(c->after, v, vl) != 0) {
		if (!bc->bad)
			print_error("record %u differs\n", bc->next);
		bc->bad++;
	}
	bc->next++;
	return 0;
}

static void test_engine_batch__large_batch_many_segments(void **state)
{
	te_fx *fx = *state;
	lb_options o;
	lb_batch *b;
	lb_result res;
	lb_batch_info bi;
	struct big_ctx bc = {0, 0};
	unsigned i;

	/* Reopen the fixture's database with small segments. */
	lb_close(fx->db);
	fx->db = NULL;
	lb_options_init(&o);
	o.flags = LB_NOSYNC;
	o.segment_size = 4096;
	fx->db = te_open_opts(fx->dir, &o);

	b = begin(fx->db, "big");
	for (i = 0; i < BIG_N; i++) {
		char k[32], v[96];
		size_t kl, vl;
		big_kv(i, k, &kl, v, &vl);
		te_rc(0, lb_put(b, "t", k, kl, v, vl));
	}
	memset(&res, 0, sizeof res);
	te_rc(0, lb_batch_commit(b, &res));
	assert_int_equal(res.batch_id, 2);
	assert_int_equal(res.records, BIG_N);
	lb_result_free(&res);

	te_rc(0, lb_batch_info_get(fx->db, 2, &bi));
	assert_int_equal(bi.records, BIG_N);
	assert_true(bi.segments >= 100);
	/* Each segment holds about segment_size raw bytes: one record may
	 * push it past the threshold, never much more. */
	assert_true(bi.raw_bytes <= (uint64_t)bi.segments * (4096 + 1024));
	assert_true(bi.raw_bytes > (uint64_t)BIG_N * 40);
	assert_true(bi.stored_bytes < bi.raw_bytes);

	te_rc(0, lb_changes(fx->db, 2, big_cb, &bc));
	assert_int_equal(bc.bad, 0);
	assert_int_equal(bc.next, BIG_N);

	for (i = 0; i < BIG_N; i += 9973) {
		char k[32], v[96];
		size_t kl, vl;
		big_kv(i, k, &kl, v, &vl);
		te_assert_get(fx->db, "t", k, kl, v, vl);
	}
}

static void open_with_compression(te_fx *fx, int level)
{
	lb_options o;
	lb_close(fx->db);
	fx->db = NULL;
	lb_options_init(&o);
	o.flags = LB_NOSYNC;
	o.compression = level;
	fx->db = te_open_opts(fx->dir, &o);
}

static uint64_t commit_compressible(lb_db *db, int n)
{
	lb_batch *b = begin(db, NULL);
	lb_result res;
	uint64_t id;
	int i;

	for (i = 0; i < n; i++) {
		char k[16], v[200];
		snprintf(k, sizeof k, "c%04d", i);
		memset(v, 'a' + i % 3, sizeof v);
		te_rc(0, lb_put(b, "t", k, strlen(k), v, sizeof v));
	}
	memset(&res, 0, sizeof res);
	te_rc(0, lb_batch_commit(b, &res));
	id = res.batch_id;
	lb_result_free(&res);
	return id;
}

static void test_engine_batch__compression_levels(void **state)
{
	te_fx *fx = *state;
	lb_batch_info stored, z1, z9;
	uint64_t id;

	/* Level 0 stores records: stored = raw + one 24-byte header per
	 * segment (FORMAT §3, codec 0). */
	open_with_compression(fx, 0);
	id = commit_compressible(fx->db, 300);
	te_rc(0, lb_batch_info_get(fx->db, id, &stored));
	assert_int_equal(stored.stored_bytes,
	                 stored.raw_bytes + 24ull * stored.segments);

	open_with_compression(fx, 1);
	id = commit_compressible(fx->db, 300);
	te_rc(0, lb_batch_info_get(fx->db, id, &z1));
	/* The overwrites carry before-images, so raw grew. */
	assert_true(z1.raw_bytes > stored.raw_bytes);
	assert_true(z1.stored_bytes * 4 < z1.raw_bytes);

	open_with_compression(fx, 9);
	id = commit_compressible(fx->db, 300);
	te_rc(0, lb_batch_info_get(fx->db, id, &z9));
	assert_int_equal(z9.raw_bytes, z1.raw_bytes);
	assert_true(z9.stored_bytes * 4 < z9.raw_bytes);

	/* The log reads back whatever the codec. */
	{
		te_recs rs;
		te_changes(fx->db, id, &rs);
		assert_int_equal(rs.n, 300);
		te_recs_free(&rs);
		te_changes(fx->db, id - 2, &rs);
		assert_int_equal(rs.n, 300);
		te_recs_free(&rs);
	}
}

static void test_engine_batch__tables_are_separate(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b;
	te_recs rs;

	te_rc(0, lb_table_create(db, "u", NULL));
	b = begin(db, NULL);
	te_rc(0, lb_put(b, "t", "k", 1, "in-t", 4));
	te_rc(0, lb_put(b, "u", "k", 1, "in-u", 4));
	te_rc(0, lb_insert(b, "u", "only-u", 6, "x", 1));
	te_rc(0, lb_batch_commit(b, NULL));
	te_assert_get_s(db, "t", "k", "in-t");
	te_assert_get_s(db, "u", "k", "in-u");
	te_assert_absent_s(db, "t", "only-u");

	te_changes(db, 3, &rs);
	assert_int_equal(rs.n, 3);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "k", NULL, "in-t");
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "u", "k", NULL, "in-u");
	te_assert_rec_s(&rs.v[2], LB_OP_PUT, "u", "only-u", NULL, "x");
	te_recs_free(&rs);

	te_del1(db, "u", "k");
	te_assert_get_s(db, "t", "k", "in-t");
	te_assert_absent_s(db, "u", "k");
}

struct listing {
	char names[8][LB_TABLE_NAME_MAX + 1];
	uint64_t records[8];
	int schema_null[8];
	int n, stop_after, ret;
};

static int list_cb(void *ctx, const char *name, const lb_schema *schema,
                   uint64_t records)
{
	struct listing *l = ctx;
	if (l->n < 8) {
		snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
		l->records[l->n] = records;
		l->schema_null[l->n] = schema == NULL;
	}
	l->n++;
	return l->n == l->stop_after ? l->ret : 0;
}

static void test_engine_batch__tables_listed_in_name_order(void **state)
{
	lb_db *db = FX(state)->db;
	struct listing l;
	lb_batch *b;

	memset(&l, 0, sizeof l);
	te_rc(0, lb_tables(db, list_cb, &l));
	assert_int_equal(l.n, 0);

	te_rc(0, lb_table_create(db, "b", NULL));
	te_rc(0, lb_table_create(db, "a", NULL));
	te_rc(0, lb_table_create(db, "c", NULL));
	b = begin(db, NULL);
	te_rc(0, lb_put(b, "a", "1", 1, "", 0));
	te_rc(0, lb_put(b, "a", "2", 1, "", 0));
	te_rc(0, lb_put(b, "a", "3", 1, "", 0));
	te_rc(0, lb_put(b, "c", "1", 1, "", 0));
	te_rc(0, lb_batch_commit(b, NULL));

	memset(&l, 0, sizeof l);
	te_rc(0, lb_tables(db, list_cb, &l));
	assert_int_equal(l.n, 3);
	assert_string_equal(l.names[0], "a");
	assert_string_equal(l.names[1], "b");
	assert_string_equal(l.names[2], "c");
	assert_int_equal(l.records[0], 3);
	assert_int_equal(l.records[1], 0);
	assert_int_equal(l.records[2], 1);
	assert_true(l.schema_null[0] && l.schema_null[1] && l.schema_null[2]);

	memset(&l, 0, sizeof l);
	l.stop_after = 1;
	l.ret = 5;
	assert_int_equal(lb_tables(db, list_cb, &l), 5);
	assert_int_equal(l.n, 1);
}

static void test_engine_batch__largest_value_round_trips(void **state)
{
	lb_db *db = FX(state)->db;
	size_t n = LB_VALUE_MAX;
	unsigned char *v = te_malloc(n);
	uint64_t rng = 1234;
	te_recs rs;
	size_t i;

	/* Half random (incompressible), half text. */
	te_fill(&rng, v, n / 2);
	for (i = n / 2; i < n; i++)
		v[i] = (unsigned char)('a' + i % 26);
	te_put1n(db, "t", "big", 3, v, n);
	te_assert_get(db, "t", "big", 3, v, n);

	te_changes(db, 2, &rs);
	assert_int_equal(rs.n, 1);
	te_assert_rec(&rs.v[0], LB_OP_PUT, "t", "big", 3, NULL, 0, v, n);
	te_recs_free(&rs);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, te_setup_t, te_teardown)
	        cmocka_unit_test_setup_teardown(
	                test_engine_batch__table_create_is_batch_1, te_setup,
	                te_teardown),
	        T(test_engine_batch__table_create_twice_is_eexist),
	        T(test_engine_batch__ids_grow_by_one),
	        T(test_engine_batch__put_get_overwrite),
	        T(test_engine_batch__changes_exact_images),
	        T(test_engine_batch__changes_callback_stops_walk),
	        T(test_engine_batch__insert_existing_is_duplicate),
	        T(test_engine_batch__insert_twice_in_batch_is_duplicate),
	        T(test_engine_batch__insert_then_update_in_batch),
	        T(test_engine_batch__update_missing_is_missing),
	        T(test_engine_batch__delete_missing_is_missing),
	        T(test_engine_batch__ops_see_own_delete),
	        T(test_engine_batch__all_issues_reported_no_id_used),
	        T(test_engine_batch__issues_capped_but_counted),
	        T(test_engine_batch__result_free_zeroes),
	        T(test_engine_batch__empty_batch_commits_nothing),
	        T(test_engine_batch__abort_writes_nothing),
	        T(test_engine_batch__batch_get_sees_own_writes),
	        T(test_engine_batch__batch_info_fields),
	        T(test_engine_batch__labels),
	        T(test_engine_batch__large_batch_many_segments),
	        T(test_engine_batch__compression_levels),
	        T(test_engine_batch__tables_are_separate),
	        cmocka_unit_test_setup_teardown(
	                test_engine_batch__tables_listed_in_name_order,
	                te_setup, te_teardown),
	        T(test_engine_batch__largest_value_round_trips),
#undef T
	};
	return cmocka_run_group_tests_name("engine_batch", tests, NULL, NULL);
}
