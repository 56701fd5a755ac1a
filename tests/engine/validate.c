/* SPDX-License-Identifier: MIT */
/*
 * Validation: every issue kind (FORMAT with each of its causes, DUPLICATE,
 * MISSING, FOREIGN_KEY), foreign keys checked at commit against the state
 * after the batch (either order inside a batch, across batches,
 * delete-restrict), batches mixing valid and invalid records (rejected as a
 * whole, nothing written, no id consumed), the issue cap, and the `_refs`
 * index: exact after any sequence of batches (checked against the tables by
 * reading the LMDB environment directly) and correct with 20,000 referrers.
 */
#define _GNU_SOURCE
#include "_common.h"
#include "_hearings.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FX(state) ((te_fx *)*(state))

static int setup(void **state)
{
	int rc = te_setup(state);
	if (rc == 0)
		hg_create(FX(state)->db);
	return rc;
}

/* ---- FORMAT -------------------------------------------------------------- */

static void test_engine_validate__format_not_a_map(void **state)
{
	lb_db *db = FX(state)->db;
	static const struct {
		const char *key;
		const char *val;
		size_t n;
	} cases[] = {
	        {"text", "plain text", 10},
	        {"empty", "", 0},
	        {"array", "\x91\x01", 2},
	        {"int", "\x05", 1},
	        {"str",
	         "\xa3"
	         "abc",
	         4},
	        {"nil", "\xc0", 1},
	        {"never-used", "\xc1", 1},
	        {"truncated", "\x82\xa2id", 4},
	        {"trailing", "\x80\x01", 2},
	};
	size_t n = sizeof cases / sizeof cases[0];
	uint64_t d = te_digest(db);
	lb_batch *b = hg_begin(db);
	for (size_t i = 0; i < n; i++)
		hg_refused(hg_put_raw(b, HG_HEARINGS, cases[i].key,
		                      cases[i].val, cases[i].n),
		           HG_HEARINGS);
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues, n);
	assert_int_equal(r.nissues_total, n);
	for (size_t i = 0; i < n; i++) {
		hg_assert_issue(&r.issues[i], LB_ISSUE_FORMAT, HG_HEARINGS,
		                cases[i].key, NULL);
		assert_int_equal(r.issues[i].batch, 0);
	}
	hg_assert_contains(r.issues[0].message, "not a msgpack map");
	hg_assert_contains(r.issues[7].message, "not valid msgpack");
	hg_assert_contains(r.issues[8].message, "follow");
	lb_result_free(&r);
	assert_int_equal(te_digest(db), d);
}

static void test_engine_validate__format_missing_required(void **state)
{
	lb_db *db = FX(state)->db;
	hg_val v;
	hg_init(&v);
	lb_batch *b = hg_begin(db);

	hg_hearing_but(&v, "title", 0);
	hg_refused(hg_putv(b, HG_HEARINGS, "h1", &v), "title");

	/* two missing: one issue each, in schema order */
	hg_reset(&v);
	hg_map(&v, 4);
	hg_kstr(&v, "id", "h2");
	hg_kstr(&v, "title", "t");
	hg_kstr(&v, "committee", "c");
	hg_kstr(&v, "chamber", "House");
	hg_refused(hg_putv(b, HG_HEARINGS, "h2", &v), "congress");

	/* an empty map misses all six */
	hg_refused(hg_put_raw(b, HG_HEARINGS, "h3", "\x80", 1), "congress");

	/* a witness without its reference */
	hg_reset(&v);
	hg_map(&v, 1);
	hg_kstr(&v, "name", "n");
	hg_refused(hg_putv(b, HG_WITNESSES, "w1", &v), "hearing_id");

	/* optional fields may be absent */
	te_rc(0, hg_put_hearing(b, "h4"));
	hg_reset(&v);
	hg_map(&v, 2);
	hg_kstr(&v, "hearing_id", "h4");
	hg_kstr(&v, "name", "n");
	te_rc(0, hg_putv(b, HG_WITNESSES, "w2", &v));

	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 1 + 2 + 6 + 1);
	assert_int_equal(r.nissues, r.nissues_total);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FORMAT, HG_HEARINGS, "h1",
	                "title");
	hg_assert_contains(r.issues[0].message, "missing required field");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FORMAT, HG_HEARINGS, "h2",
	                "date");
	hg_assert_issue(&r.issues[2], LB_ISSUE_FORMAT, HG_HEARINGS, "h2",
	                "congress");
	static const char *const all[] = {"id",        "title",   "date",
	                                  "committee", "chamber", "congress"};
	for (size_t i = 0; i < 6; i++)
		hg_assert_issue(&r.issues[3 + i], LB_ISSUE_FORMAT, HG_HEARINGS,
		                "h3", all[i]);
	hg_assert_issue(&r.issues[9], LB_ISSUE_FORMAT, HG_WITNESSES, "w1",
	                "hearing_id");
	lb_result_free(&r);
	hg_free(&v);
}

static void test_engine_validate__format_wrong_type(void **state)
{
	lb_db *db = FX(state)->db;
	hg_val v;
	hg_init(&v);
	lb_batch *b = hg_begin(db);

	hg_hearing_but(&v, "congress", 1);
	hg_kstr(&v, "congress", "118");
	hg_refused(hg_putv(b, HG_HEARINGS, "h1", &v), "congress");

	hg_hearing_but(&v, "title", 1);
	hg_kint(&v, "title", 7);
	hg_refused(hg_putv(b, HG_HEARINGS, "h2", &v), "title");

	/* a str ref holding an int, or nil */
	hg_reset(&v);
	hg_map(&v, 2);
	hg_kint(&v, "hearing_id", 1);
	hg_kstr(&v, "name", "n");
	hg_refused(hg_putv(b, HG_WITNESSES, "w1", &v), "hearing_id");
	hg_reset(&v);
	hg_map(&v, 2);
	hg_knil(&v, "hearing_id");
	hg_kstr(&v, "name", "n");
	hg_refused(hg_putv(b, HG_WITNESSES, "w2", &v), "hearing_id");

	/* an ANY ref takes a str, a bin or nil, nothing else */
	hg_reset(&v);
	hg_map(&v, 3);
	hg_key(&v, "hearing_id");
	assert_int_equal(msgpack_pack_true(&v.pk), 0);
	hg_kstr(&v, "type", "t");
	hg_kstr(&v, "url", "u");
	hg_refused(hg_putv(b, HG_DOCUMENTS, "d1", &v), "hearing_id");

	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues, 5);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FORMAT, HG_HEARINGS, "h1",
	                "congress");
	hg_assert_contains(r.issues[0].message, "must be int, not str");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FORMAT, HG_HEARINGS, "h2",
	                "title");
	hg_assert_contains(r.issues[1].message, "must be str, not int");
	hg_assert_issue(&r.issues[2], LB_ISSUE_FORMAT, HG_WITNESSES, "w1",
	                "hearing_id");
	hg_assert_issue(&r.issues[3], LB_ISSUE_FORMAT, HG_WITNESSES, "w2",
	                "hearing_id");
	hg_assert_contains(r.issues[3].message, "not nil");
	hg_assert_issue(&r.issues[4], LB_ISSUE_FORMAT, HG_DOCUMENTS, "d1",
	                "hearing_id");
	hg_assert_contains(r.issues[4].message, HG_HEARINGS);
	lb_result_free(&r);
	hg_free(&v);
}

/* Samples of every msgpack type, and which lb_type accepts each. */
static void test_engine_validate__format_unknown_field_closed(void **state)
{
	lb_db *db = FX(state)->db;
	hg_val v;
	hg_init(&v);
	lb_batch *b = hg_begin(db);

	hg_hearing_but(&v, NULL, 1);
	hg_kstr(&v, "extra", "x");
	hg_refused(hg_putv(b, HG_HEARINGS, "h1", &v), "extra");

	/* a long unknown name is named (cut to 255 bytes) */
	char longname[301];
	memset(longname, 'n', 300);
	longname[300] = 0;
	hg_hearing_but(&v, NULL, 1);
	hg_kint(&v, longname, 1);
	te_rc(LB_EVALIDATION, hg_putv(b, HG_HEARINGS, "h2", &v));

	/* an open schema takes unknown fields */
	hg_reset(&v);
	hg_map(&v, 4);
	hg_kstr(&v, "hearing_id", "h3");
	hg_kstr(&v, "type", "t");
	hg_kstr(&v, "url", "u");
	hg_kint(&v, "pages", 12);
	te_rc(0, hg_put_hearing(b, "h3"));
	te_rc(0, hg_putv(b, HG_DOCUMENTS, "d1", &v));

	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 2);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FORMAT, HG_HEARINGS, "h1",
	                "extra");
	hg_assert_contains(r.issues[0].message, "closed");
	assert_non_null(r.issues[1].field);
	assert_int_equal(strlen(r.issues[1].field), 255);
	assert_memory_equal(r.issues[1].field, longname, 255);
	lb_result_free(&r);

	/* the same document alone commits */
	b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h3"));
	te_rc(0, hg_putv(b, HG_DOCUMENTS, "d1", &v));
	hg_commit_ok(b);
	te_assert_get(db, HG_DOCUMENTS, "d1", 2, hg_data(&v), hg_len(&v));
	hg_free(&v);
}

static void test_engine_validate__format_twice_and_bad_names(void **state)
{
	lb_db *db = FX(state)->db;
	hg_val v;
	hg_init(&v);
	lb_batch *b = hg_begin(db);

	hg_hearing_but(&v, NULL, 1);
	hg_kstr(&v, "title", "again");
	hg_refused(hg_putv(b, HG_HEARINGS, "h1", &v), "twice");

	/* a map whose name is an int: valid msgpack, not a record */
	hg_hearing_but(&v, NULL, 1);
	assert_int_equal(msgpack_pack_int(&v.pk, 1), 0);
	hg_pstr(&v, "x");
	hg_refused(hg_putv(b, HG_HEARINGS, "h2", &v), "name");

	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 2);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FORMAT, HG_HEARINGS, "h1",
	                "title");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FORMAT, HG_HEARINGS, "h2", NULL);
	lb_result_free(&r);
	hg_free(&v);
}

static void test_engine_validate__format_several_in_one_record(void **state)
{
	lb_db *db = FX(state)->db;
	hg_val v;
	hg_init(&v);
	lb_batch *b = hg_begin(db);
	hg_map(&v, 6);
	hg_kstr(&v, "id", "h1");
	hg_kstr(&v, "congress", "x");            /* wrong type */
	hg_kstr(&v, "zz", "x");                  /* unknown */
	hg_kstr(&v, "date", "2024-01-01T00:00"); /* too long */
	hg_kstr(&v, "committee", "c");
	hg_kstr(&v, "chamber", "House");
	/* and no title */
	te_rc(LB_EVALIDATION, hg_putv(b, HG_HEARINGS, "h1", &v));
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 4);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FORMAT, HG_HEARINGS, "h1",
	                "congress");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FORMAT, HG_HEARINGS, "h1", "zz");
	hg_assert_issue(&r.issues[2], LB_ISSUE_FORMAT, HG_HEARINGS, "h1",
	                "date");
	hg_assert_issue(&r.issues[3], LB_ISSUE_FORMAT, HG_HEARINGS, "h1",
	                "title");
	lb_result_free(&r);
	hg_free(&v);
}

static void test_engine_validate__format_op_not_applied(void **state)
{
	lb_db *db = FX(state)->db;
	hg_val v;
	hg_init(&v);
	const void *p;
	size_t n;

	/* an update that breaks the schema leaves the old value in place */
	lb_batch *b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h0"));
	hg_commit_ok(b);

	b = hg_begin(db);
	hg_hearing_but(&v, "id", 0);
	hg_refused(lb_update(b, HG_HEARINGS, "h0", 2, hg_data(&v), hg_len(&v)),
	           "'id'");
	hg_hearing(&v, "h0");
	te_rc(0, lb_batch_get(b, HG_HEARINGS, "h0", 2, &p, &n));
	assert_int_equal(n, hg_len(&v));
	assert_memory_equal(p, hg_data(&v), n);

	hg_refused(lb_insert(b, HG_HEARINGS, "h1", 2, "\x90", 1), "map");
	te_rc(LB_ENOTFOUND, lb_batch_get(b, HG_HEARINGS, "h1", 2, &p, &n));
	/* later valid ops still apply inside the batch */
	te_rc(0, hg_put_hearing(b, "h2"));
	te_rc(0, lb_batch_get(b, HG_HEARINGS, "h2", 2, &p, &n));
	/* deletes carry no value to check */
	te_rc(0, hg_del(b, HG_HEARINGS, "h2"));
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 2);
	lb_result_free(&r);
	te_assert_get(db, HG_HEARINGS, "h0", 2, hg_data(&v), hg_len(&v));
	te_assert_absent_s(db, HG_HEARINGS, "h2");
	hg_free(&v);
}

/* ---- DUPLICATE and MISSING ----------------------------------------------- */

static void test_engine_validate__duplicate(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = hg_begin(db);
	te_rc(0, hg_insert_hearing(b, "h1"));
	hg_commit_ok(b);

	b = hg_begin(db);
	hg_refused(hg_insert_hearing(b, "h1"), "exists");
	te_rc(0, hg_insert_hearing(b, "h2"));
	hg_refused(hg_insert_hearing(b, "h2"), "h2");
	te_rc(0, hg_put_hearing(b, "h1")); /* put replaces */
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 2);
	hg_assert_issue(&r.issues[0], LB_ISSUE_DUPLICATE, HG_HEARINGS, "h1",
	                NULL);
	hg_assert_issue(&r.issues[1], LB_ISSUE_DUPLICATE, HG_HEARINGS, "h2",
	                NULL);
	assert_int_equal(r.issues[0].batch, 0);
	lb_result_free(&r);

	/* deleted earlier in the batch: the insert is fine */
	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_HEARINGS, "h1"));
	te_rc(0, hg_insert_hearing(b, "h1"));
	hg_commit_ok(b);
}

static void test_engine_validate__missing(void **state)
{
	lb_db *db = FX(state)->db;
	hg_val v;
	hg_init(&v);
	hg_hearing(&v, "h9");
	lb_batch *b = hg_begin(db);
	hg_refused(lb_update(b, HG_HEARINGS, "h9", 2, hg_data(&v), hg_len(&v)),
	           "no key");
	hg_refused(hg_del(b, HG_HEARINGS, "h8"), "h8");
	te_rc(0, hg_insert_hearing(b, "h3"));
	te_rc(0, hg_del(b, HG_HEARINGS, "h3"));
	hg_refused(hg_del(b, HG_HEARINGS, "h3"), "h3");
	hg_hearing(&v, "h3");
	hg_refused(lb_update(b, HG_HEARINGS, "h3", 2, hg_data(&v), hg_len(&v)),
	           "h3");
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 4);
	hg_assert_issue(&r.issues[0], LB_ISSUE_MISSING, HG_HEARINGS, "h9",
	                NULL);
	hg_assert_issue(&r.issues[1], LB_ISSUE_MISSING, HG_HEARINGS, "h8",
	                NULL);
	hg_assert_issue(&r.issues[2], LB_ISSUE_MISSING, HG_HEARINGS, "h3",
	                NULL);
	hg_assert_issue(&r.issues[3], LB_ISSUE_MISSING, HG_HEARINGS, "h3",
	                NULL);
	lb_result_free(&r);
	hg_free(&v);
}

/* ---- FOREIGN_KEY --------------------------------------------------------- */

static void test_engine_validate__fk_dangling(void **state)
{
	lb_db *db = FX(state)->db;
	uint64_t d = te_digest(db);
	lb_batch *b = hg_begin(db);
	/* the op itself passes: references are checked at commit */
	te_rc(0, hg_put_witness(b, "w1", "nope"));
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues, 1);
	assert_int_equal(r.nissues_total, 1);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FOREIGN_KEY, HG_WITNESSES, "w1",
	                "hearing_id");
	hg_assert_contains(r.issues[0].message, "nope");
	hg_assert_contains(r.issues[0].message, HG_HEARINGS);
	assert_int_equal(r.issues[0].batch, 0);
	lb_result_free(&r);
	assert_int_equal(te_digest(db), d);
	te_assert_absent_s(db, HG_WITNESSES, "w1");
}

static void test_engine_validate__fk_across_batches(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h1"));
	hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w1", "h1"));
	te_rc(0, hg_put_document(b, "d1", "h1"));
	hg_commit_ok(b);
	/* a later batch re-points the witness at a hearing it brings */
	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w1", "h2"));
	te_rc(0, hg_put_hearing(b, "h2"));
	hg_commit_ok(b);
	/* and one that re-points it at nothing is refused */
	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w1", "h3"));
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 1);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FOREIGN_KEY, HG_WITNESSES, "w1",
	                "hearing_id");
	lb_result_free(&r);
}

static void test_engine_validate__fk_same_batch_both_orders(void **state)
{
	lb_db *db = FX(state)->db;
	/* the witness before its hearing */
	lb_batch *b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w1", "h1"));
	te_rc(0, hg_put_document(b, "d1", "h1"));
	te_rc(0, hg_put_hearing(b, "h1"));
	hg_commit_ok(b);
	/* the hearing before its witness */
	b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h2"));
	te_rc(0, hg_put_witness(b, "w2", "h2"));
	hg_commit_ok(b);
	hg_val v;
	hg_init(&v);
	hg_witness(&v, "h1");
	te_assert_get(db, HG_WITNESSES, "w1", 2, hg_data(&v), hg_len(&v));
	hg_witness(&v, "h2");
	te_assert_get(db, HG_WITNESSES, "w2", 2, hg_data(&v), hg_len(&v));
	hg_free(&v);
}

static void test_engine_validate__fk_checked_after_the_batch(void **state)
{
	lb_db *db = FX(state)->db;
	/* the hearing comes and goes inside the batch: the witness is left
	 * dangling */
	lb_batch *b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h1"));
	te_rc(0, hg_put_witness(b, "w1", "h1"));
	te_rc(0, hg_del(b, HG_HEARINGS, "h1"));
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 2);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FOREIGN_KEY, HG_WITNESSES, "w1",
	                "hearing_id");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FOREIGN_KEY, HG_HEARINGS, "h1",
	                NULL);
	hg_assert_contains(r.issues[1].message, "witnesses 'w1'");
	lb_result_free(&r);

	/* a bad reference mended later in the batch passes */
	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w1", "nope"));
	te_rc(0, hg_put_witness(b, "w2", "nope"));
	te_rc(0, hg_put_document(b, "d1", "nope"));
	te_rc(0, hg_put_hearing(b, "h1"));
	te_rc(0, hg_put_witness(b, "w1", "h1"));
	te_rc(0, hg_del(b, HG_WITNESSES, "w2"));
	te_rc(0, hg_put_document(b, "d1", "h1"));
	hg_commit_ok(b);

	/* deleted, then put back: no issue */
	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_HEARINGS, "h1"));
	te_rc(0, hg_put_hearing(b, "h1"));
	hg_commit_ok(b);
}

static void test_engine_validate__fk_unindexable_values(void **state)
{
	lb_db *db = FX(state)->db;
	char big[600];
	memset(big, 'k', sizeof big);
	lb_batch *b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h1"));
	/* an empty str and one longer than any key can name no key */
	te_rc(0, hg_put_witness(b, "w1", ""));
	te_rc(0, hg_put_witnessn(b, "w2", 2, big, sizeof big));
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 2);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FOREIGN_KEY, HG_WITNESSES, "w1",
	                "hearing_id");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FOREIGN_KEY, HG_WITNESSES, "w2",
	                "hearing_id");
	lb_result_free(&r);

	/* ... but mended later in the batch, they are forgotten */
	b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h1"));
	te_rc(0, hg_put_witness(b, "w1", ""));
	te_rc(0, hg_put_witnessn(b, "w2", 2, big, sizeof big));
	te_rc(0, hg_put_witness(b, "w1", "h1"));
	te_rc(0, hg_put_witness(b, "w2", "h1"));
	hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w3", ""));
	te_rc(0, hg_del(b, HG_WITNESSES, "w3"));
	hg_commit_ok(b);
}

static void test_engine_validate__fk_bin_and_nil_refs(void **state)
{
	lb_db *db = FX(state)->db;
	hg_val v;
	hg_init(&v);
	lb_result r;
	hg_hearing(&v, "bin");
	lb_batch *b = hg_begin(db);
	te_rc(0,
	      lb_put(b, HG_HEARINGS, "\x00\x01", 2, hg_data(&v), hg_len(&v)));
	/* a document naming its hearing by a bin key */
	hg_reset(&v);
	hg_map(&v, 3);
	hg_kbin(&v, "hearing_id", "\x00\x01", 2);
	hg_kstr(&v, "type", "t");
	hg_kstr(&v, "url", "u");
	te_rc(0, hg_putv(b, HG_DOCUMENTS, "d1", &v));
	/* and one with no hearing at all */
	hg_reset(&v);
	hg_map(&v, 3);
	hg_knil(&v, "hearing_id");
	hg_kstr(&v, "type", "t");
	hg_kstr(&v, "url", "u");
	te_rc(0, hg_putv(b, HG_DOCUMENTS, "d2", &v));
	hg_commit_ok(b);

	/* the bin reference restricts deletes */
	b = hg_begin(db);
	te_rc(0, lb_delete(b, HG_HEARINGS, "\x00\x01", 2));
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 1);
	hg_assert_issuen(&r.issues[0], LB_ISSUE_FOREIGN_KEY, HG_HEARINGS,
	                 "\x00\x01", 2, NULL);
	hg_assert_contains(r.issues[0].message, "d1");
	lb_result_free(&r);
	/* a bin key that names nothing */
	b = hg_begin(db);
	hg_reset(&v);
	hg_map(&v, 3);
	hg_kbin(&v, "hearing_id", "\x00\x02", 2);
	hg_kstr(&v, "type", "t");
	hg_kstr(&v, "url", "u");
	te_rc(0, hg_putv(b, HG_DOCUMENTS, "d3", &v));
	hg_commit_rejected(db, b, &r);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FOREIGN_KEY, HG_DOCUMENTS, "d3",
	                "hearing_id");
	lb_result_free(&r);
	hg_free(&v);
}

static void test_engine_validate__delete_restrict(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h1"));
	te_rc(0, hg_put_hearing(b, "h2"));
	te_rc(0, hg_put_witness(b, "w1", "h1"));
	te_rc(0, hg_put_document(b, "d2", "h2"));
	hg_commit_ok(b);
	uint64_t d = te_digest(db);

	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_HEARINGS, "h1")); /* checked at commit */
	te_rc(0, hg_del(b, HG_HEARINGS, "h2"));
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 2);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FOREIGN_KEY, HG_HEARINGS, "h1",
	                NULL);
	hg_assert_contains(r.issues[0].message, "witnesses 'w1'");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FOREIGN_KEY, HG_HEARINGS, "h2",
	                NULL);
	hg_assert_contains(r.issues[1].message, "documents 'd2'");
	assert_int_equal(r.issues[0].batch, 0);
	lb_result_free(&r);
	assert_int_equal(te_digest(db), d);

	/* the referrer goes too, in either order: passes */
	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_HEARINGS, "h1"));
	te_rc(0, hg_del(b, HG_WITNESSES, "w1"));
	hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_DOCUMENTS, "d2"));
	te_rc(0, hg_del(b, HG_HEARINGS, "h2"));
	hg_commit_ok(b);
	te_assert_absent_s(db, HG_HEARINGS, "h1");
	te_assert_absent_s(db, HG_HEARINGS, "h2");
}

static void test_engine_validate__delete_after_repointing(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h1"));
	te_rc(0, hg_put_hearing(b, "h2"));
	te_rc(0, hg_put_hearing(b, "h3"));
	te_rc(0, hg_put_witness(b, "w1", "h1"));
	te_rc(0, hg_put_witness(b, "w2", "h2"));
	hg_commit_ok(b);

	/* same batch: change the hearing_id away, then delete */
	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w1", "h3"));
	te_rc(0, hg_del(b, HG_HEARINGS, "h1"));
	hg_commit_ok(b);
	/* same batch, the other order */
	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_HEARINGS, "h2"));
	te_rc(0, hg_put_witness(b, "w2", "h3"));
	hg_commit_ok(b);
	/* across batches */
	b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h4"));
	te_rc(0, hg_put_witness(b, "w1", "h4"));
	hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_HEARINGS, "h3")); /* w2 still names it */
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 1);
	hg_assert_contains(r.issues[0].message, "'w2'");
	lb_result_free(&r);
	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w2", "h4"));
	hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_HEARINGS, "h3"));
	hg_commit_ok(b);
	/* re-pointed at a hearing deleted in the same batch: refused */
	b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h5"));
	hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w1", "h5"));
	te_rc(0, hg_del(b, HG_HEARINGS, "h5"));
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 2);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FOREIGN_KEY, HG_WITNESSES, "w1",
	                "hearing_id");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FOREIGN_KEY, HG_HEARINGS, "h5",
	                NULL);
	lb_result_free(&r);
}

static void put_long_hearing(lb_batch *b, const void *key, size_t klen)
{
	hg_val v;
	hg_init(&v);
	hg_hearing(&v, "long");
	te_rc(0, lb_put(b, HG_HEARINGS, key, klen, hg_data(&v), hg_len(&v)));
	hg_free(&v);
}

/* Keys over 507 bytes are hashed in `_refs` (FORMAT.md, ikey). */
static void test_engine_validate__fk_long_keys(void **state)
{
	lb_db *db = FX(state)->db;
	char hk[LB_KEY_MAX], wk[LB_KEY_MAX];
	memset(hk, 'H', sizeof hk);
	memset(wk, 'W', sizeof wk);
	lb_batch *b = hg_begin(db);
	put_long_hearing(b, hk, sizeof hk);
	put_long_hearing(b, hk, 508); /* hashed too, different key */
	te_rc(0, hg_put_hearing(b, "h1"));
	te_rc(0, hg_put_witnessn(b, "w1", 2, hk, sizeof hk));
	te_rc(0, hg_put_witnessn(b, wk, sizeof wk, "h1", 2));
	hg_commit_ok(b);

	b = hg_begin(db);
	te_rc(0, lb_delete(b, HG_HEARINGS, hk, sizeof hk));
	te_rc(0, lb_delete(b, HG_HEARINGS, hk, 508)); /* no referrer */
	te_rc(0, hg_del(b, HG_HEARINGS, "h1"));
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 2);
	hg_assert_issuen(&r.issues[0], LB_ISSUE_FOREIGN_KEY, HG_HEARINGS, hk,
	                 sizeof hk, NULL);
	hg_assert_contains(r.issues[0].message, "'w1'");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FOREIGN_KEY, HG_HEARINGS, "h1",
	                NULL);
	hg_assert_contains(r.issues[1].message, "witnesses");
	lb_result_free(&r);

	b = hg_begin(db);
	te_rc(0, lb_delete(b, HG_WITNESSES, wk, sizeof wk));
	te_rc(0, hg_del(b, HG_WITNESSES, "w1"));
	te_rc(0, lb_delete(b, HG_HEARINGS, hk, sizeof hk));
	te_rc(0, hg_del(b, HG_HEARINGS, "h1"));
	hg_commit_ok(b);
}

static void test_engine_validate__fk_self_reference(void **state)
{
	lb_db *db = FX(state)->db;
	static const lb_field f[] = {
	        {"name", LB_STR, LB_REQUIRED, 0, NULL},
	        {"parent", LB_STR, 0, 0, "people"},
	};
	lb_schema s = {f, 2, 1};
	te_rc(0, lb_table_create(db, "people", &s));
	hg_val v;
	hg_init(&v);
	lb_batch *b = hg_begin(db);
	hg_map(&v, 2);
	hg_kstr(&v, "name", "child");
	hg_kstr(&v, "parent", "p1");
	te_rc(0, hg_putv(b, "people", "p2", &v));
	hg_reset(&v);
	hg_map(&v, 1);
	hg_kstr(&v, "name", "root");
	te_rc(0, hg_putv(b, "people", "p1", &v));
	hg_reset(&v);
	hg_map(&v, 2);
	hg_kstr(&v, "name", "own parent");
	hg_kstr(&v, "parent", "p3");
	te_rc(0, hg_putv(b, "people", "p3", &v));
	hg_commit_ok(b);

	b = hg_begin(db);
	te_rc(0, hg_del(b, "people", "p1"));
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 1);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FOREIGN_KEY, "people", "p1",
	                NULL);
	hg_assert_contains(r.issues[0].message, "people 'p2'");
	lb_result_free(&r);

	/* a record naming itself can go; so can parent and child together */
	b = hg_begin(db);
	te_rc(0, hg_del(b, "people", "p3"));
	te_rc(0, hg_del(b, "people", "p1"));
	te_rc(0, hg_del(b, "people", "p2"));
	hg_commit_ok(b);
	hg_free(&v);
}

/* Two ref fields of one record naming the same key share one `_refs` pair:
 * it must stay while either field still names the key. */
static void test_engine_validate__fk_two_fields_one_target(void **state)
{
	lb_db *db = FX(state)->db;
	static const lb_field f[] = {
	        {"a", LB_STR, 0, 0, HG_HEARINGS},
	        {"b", LB_STR, 0, 0, HG_HEARINGS},
	};
	lb_schema s = {f, 2, 1};
	te_rc(0, lb_table_create(db, "links", &s));
	hg_val v;
	hg_init(&v);
	lb_batch *b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h1"));
	te_rc(0, hg_put_hearing(b, "h2"));
	hg_map(&v, 2);
	hg_kstr(&v, "a", "h1");
	hg_kstr(&v, "b", "h1");
	te_rc(0, hg_putv(b, "links", "l1", &v));
	hg_commit_ok(b);

	/* a moves away, b still names h1 */
	b = hg_begin(db);
	hg_reset(&v);
	hg_map(&v, 2);
	hg_kstr(&v, "a", "h2");
	hg_kstr(&v, "b", "h1");
	te_rc(0, hg_putv(b, "links", "l1", &v));
	hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_HEARINGS, "h1"));
	lb_result r;
	hg_commit_rejected(db, b, &r);
	hg_assert_contains(r.issues[0].message, "links 'l1'");
	lb_result_free(&r);

	/* both on h2 now: h1 can go, h2 cannot */
	b = hg_begin(db);
	hg_reset(&v);
	hg_map(&v, 2);
	hg_kstr(&v, "a", "h2");
	hg_kstr(&v, "b", "h2");
	te_rc(0, hg_putv(b, "links", "l1", &v));
	te_rc(0, hg_del(b, HG_HEARINGS, "h1"));
	hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_HEARINGS, "h2"));
	hg_commit_rejected(db, b, &r);
	lb_result_free(&r);

	/* dropping one of the two keeps the pair; dropping both frees h2 */
	b = hg_begin(db);
	hg_reset(&v);
	hg_map(&v, 1);
	hg_kstr(&v, "b", "h2");
	te_rc(0, hg_putv(b, "links", "l1", &v));
	hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_HEARINGS, "h2"));
	hg_commit_rejected(db, b, &r);
	lb_result_free(&r);
	b = hg_begin(db);
	te_rc(0, hg_put_raw(b, "links", "l1", "\x80", 1));
	te_rc(0, hg_del(b, HG_HEARINGS, "h2"));
	hg_commit_ok(b);
	hg_free(&v);
}

/* ---- batches as a whole -------------------------------------------------- */

static void test_engine_validate__mixed_batch_rejected_whole(void **state)
{
	lb_db *db = FX(state)->db;
	hg_val v;
	hg_init(&v);
	lb_batch *b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h1"));
	hg_commit_ok(b);
	uint64_t last = te_last(db);
	uint64_t d = te_digest(db);

	b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h2"));
	te_rc(0, hg_put_witness(b, "w1", "h1"));
	hg_hearing_but(&v, "title", 0);
	te_rc(LB_EVALIDATION, hg_putv(b, HG_HEARINGS, "hbad", &v));
	te_rc(LB_EVALIDATION, hg_insert_hearing(b, "h1"));
	hg_hearing(&v, "h9");
	te_rc(LB_EVALIDATION,
	      lb_update(b, HG_HEARINGS, "h9", 2, hg_data(&v), hg_len(&v)));
	te_rc(0, hg_put_witness(b, "w2", "h2"));
	hg_reset(&v);
	hg_map(&v, 2);
	hg_kstr(&v, "hearing_id", "h2");
	char longname[82];
	memset(longname, 'a', 80);
	longname[80] = 0;
	hg_kstr(&v, "name", longname); /* 80 fits */
	te_rc(0, hg_putv(b, HG_WITNESSES, "w3", &v));
	hg_reset(&v);
	hg_map(&v, 2);
	hg_kstr(&v, "hearing_id", "h2");
	memset(longname, 'b', 81);
	longname[81] = 0;
	hg_kstr(&v, "name", longname); /* 81 characters: one too many */
	te_rc(LB_EVALIDATION, hg_putv(b, HG_WITNESSES, "wbad", &v));
	te_rc(LB_EVALIDATION, hg_del(b, HG_WITNESSES, "wnone"));

	lb_result r;
	memset(&r, 0xa5, sizeof r);
	te_rc(LB_EVALIDATION, lb_batch_commit(b, &r));
	hg_assert_contains(lb_errmsg(), "5 issues");
	assert_int_equal(r.rc, LB_EVALIDATION);
	assert_int_equal(r.batch_id, 0);
	assert_int_equal(r.nissues, 5);
	assert_int_equal(r.nissues_total, 5);
	assert_int_equal(r.records, 0);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FORMAT, HG_HEARINGS, "hbad",
	                "title");
	hg_assert_issue(&r.issues[1], LB_ISSUE_DUPLICATE, HG_HEARINGS, "h1",
	                NULL);
	hg_assert_issue(&r.issues[2], LB_ISSUE_MISSING, HG_HEARINGS, "h9",
	                NULL);
	hg_assert_issue(&r.issues[3], LB_ISSUE_FORMAT, HG_WITNESSES, "wbad",
	                "name");
	hg_assert_contains(r.issues[3].message, "81 characters");
	hg_assert_issue(&r.issues[4], LB_ISSUE_MISSING, HG_WITNESSES, "wnone",
	                NULL);
	lb_result_free(&r);

	/* nothing written: data, log, ids */
	assert_int_equal(te_digest(db), d);
	assert_int_equal(te_last(db), last);
	te_assert_absent_s(db, HG_HEARINGS, "h2");
	te_assert_absent_s(db, HG_WITNESSES, "w1");
	te_rc(LB_ENOTFOUND,
	      lb_batch_info_get(db, last + 1, &(lb_batch_info){0}));

	/* nor `_refs`: w1 -> h1 was never committed, so h1 can go; and the
	 * next batch takes the id the rejected one would have had */
	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_HEARINGS, "h1"));
	assert_int_equal(hg_commit_ok(b), last + 1);
	hg_free(&v);
}

static void test_engine_validate__mixed_fk_only(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h1"));
	hg_commit_ok(b);
	uint64_t last = te_last(db);

	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w1", "h1"));
	te_rc(0, hg_put_witness(b, "w2", "hX"));
	te_rc(0, hg_put_witness(b, "w3", "h1"));
	te_rc(0, hg_put_witness(b, "w4", "hY"));
	te_rc(0, hg_put_document(b, "d1", "hZ"));
	te_rc(0, hg_put_document(b, "d2", "h1"));
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 3);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FOREIGN_KEY, HG_WITNESSES, "w2",
	                "hearing_id");
	hg_assert_contains(r.issues[0].message, "'hX'");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FOREIGN_KEY, HG_WITNESSES, "w4",
	                "hearing_id");
	hg_assert_issue(&r.issues[2], LB_ISSUE_FOREIGN_KEY, HG_DOCUMENTS, "d1",
	                "hearing_id");
	lb_result_free(&r);
	te_assert_absent_s(db, HG_WITNESSES, "w1");
	te_assert_absent_s(db, HG_DOCUMENTS, "d2");
	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w1", "h1"));
	assert_int_equal(hg_commit_ok(b), last + 1);
}

static void test_engine_validate__thousands_of_issues(void **state)
{
	lb_db *db = FX(state)->db;
	hg_val v;
	hg_init(&v);
	uint64_t last = te_last(db);
	lb_batch *b = hg_begin(db);
	/* 2,500 records with one issue, 250 with two, 500 valid */
	size_t want = 0;
	for (int i = 0; i < 3250; i++) {
		char key[16];
		snprintf(key, sizeof key, "h%05d", i);
		if (i % 13 == 0) {
			hg_hearing(&v, key);
			te_rc(0, hg_putv(b, HG_HEARINGS, key, &v));
		} else if (i % 13 == 1) {
			hg_hearing_but(&v, "date", 1);
			hg_kint(&v, "more", 1);
			te_rc(LB_EVALIDATION, hg_putv(b, HG_HEARINGS, key, &v));
			want += 2;
		} else {
			hg_hearing_but(&v, "date", 0);
			te_rc(LB_EVALIDATION, hg_putv(b, HG_HEARINGS, key, &v));
			hg_assert_contains(lb_errmsg(), "date");
			want++;
		}
	}
	assert_true(want > 3 * LB_ISSUES_MAX);
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues, LB_ISSUES_MAX);
	assert_int_equal(r.nissues_total, want);
	/* the kept issues are the first ones, in order */
	size_t k = 0;
	for (int i = 0; k < LB_ISSUES_MAX; i++) {
		char key[16];
		snprintf(key, sizeof key, "h%05d", i);
		if (i % 13 == 0)
			continue;
		if (i % 13 == 1) {
			hg_assert_issue(&r.issues[k], LB_ISSUE_FORMAT,
			                HG_HEARINGS, key, "more");
			k++;
			if (k == LB_ISSUES_MAX)
				break;
		}
		hg_assert_issue(&r.issues[k], LB_ISSUE_FORMAT, HG_HEARINGS, key,
		                "date");
		k++;
	}
	lb_result_free(&r);
	assert_int_equal(te_last(db), last);
	te_assert_absent_s(db, HG_HEARINGS, "h00000");
	hg_free(&v);
}

static void test_engine_validate__thousands_of_fk_issues(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h"));
	for (int i = 0; i < 2500; i++) {
		char key[16], hid[16];
		snprintf(key, sizeof key, "w%05d", i);
		snprintf(hid, sizeof hid, "m%d", i);
		te_rc(0, hg_put_witness(b, key, i % 5 == 0 ? "h" : hid));
	}
	lb_result r;
	memset(&r, 0, sizeof r);
	te_rc(LB_EVALIDATION, lb_batch_commit(b, &r));
	hg_assert_contains(lb_errmsg(), "2000 issues");
	assert_int_equal(r.nissues, LB_ISSUES_MAX);
	assert_int_equal(r.nissues_total, 2000);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FOREIGN_KEY, HG_WITNESSES,
	                "w00001", "hearing_id");
	hg_assert_issue(&r.issues[LB_ISSUES_MAX - 1], LB_ISSUE_FOREIGN_KEY,
	                HG_WITNESSES, "w01249", "hearing_id");
	lb_result_free(&r);
}

static void test_engine_validate__refs_20000_witnesses(void **state)
{
	te_fx *fx = FX(state);
	lb_db *db = fx->db;
	enum { NH = 200, NW = 20000 };
	char key[16], hid[16];
	lb_batch *b = hg_begin(db);
	for (int i = 0; i < NH; i++) {
		snprintf(key, sizeof key, "h%03d", i);
		te_rc(0, hg_put_hearing(b, key));
	}
	for (int i = 0; i < NW; i++) {
		snprintf(key, sizeof key, "w%05d", i);
		snprintf(hid, sizeof hid, "h%03d", i % NH);
		te_rc(0, hg_put_witness(b, key, hid));
	}
	hg_commit_ok(b);

	/* h000 with all 100 of its witnesses: passes */
	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_HEARINGS, "h000"));
	for (int i = 0; i < NW; i += NH) {
		snprintf(key, sizeof key, "w%05d", i);
		te_rc(0, hg_del(b, HG_WITNESSES, key));
	}
	hg_commit_ok(b);

	/* h001 with 99 of its 100: the one left is named, alone */
	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_HEARINGS, "h001"));
	for (int i = 1; i < NW; i += NH) {
		snprintf(key, sizeof key, "w%05d", i);
		if (i != 12001)
			te_rc(0, hg_del(b, HG_WITNESSES, key));
	}
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 1);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FOREIGN_KEY, HG_HEARINGS, "h001",
	                NULL);
	hg_assert_contains(r.issues[0].message, "witnesses 'w12001'");
	assert_null(strstr(r.issues[0].message, "others"));
	lb_result_free(&r);

	/* h002 alone: named by its first witness, "and others" */
	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_HEARINGS, "h002"));
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 1);
	hg_assert_contains(r.issues[0].message, "'w00002' and others");
	lb_result_free(&r);

	/* every witness of h003 re-pointed at h004, then h003 deleted */
	b = hg_begin(db);
	for (int i = 3; i < NW; i += NH) {
		snprintf(key, sizeof key, "w%05d", i);
		te_rc(0, hg_put_witness(b, key, "h004"));
	}
	te_rc(0, hg_del(b, HG_HEARINGS, "h003"));
	hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_del(b, HG_HEARINGS, "h004"));
	hg_commit_rejected(db, b, &r);
	hg_assert_contains(r.issues[0].message, "'w00003' and others");
	lb_result_free(&r);

	/* one witness re-pointed at a hearing that does not exist */
	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w19999", "h999"));
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 1);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FOREIGN_KEY, HG_WITNESSES,
	                "w19999", "hearing_id");
	lb_result_free(&r);

	lb_close(db);
	fx->db = NULL;
	assert_int_equal(hg_assert_refs_exact(fx->dir, hg_refs, 2), NW - 100);
}

/* Random batches of puts and deletes of hearings, witnesses and documents,
 * against a model: a batch must commit exactly when every reference holds
 * after it, each issue must point at a real violation and every violation
 * must be reported; in the end the tables equal the model and `_refs` is
 * exact. */
enum { RH = 12, RW = 40, RD = 20, RX = 3 /* hearing ids that never exist */ };

typedef struct model {
	int h[RH];        /* hearing exists */
	int w[RW], d[RD]; /* -1 absent, -2 nil (documents), else a hearing
	                    index (>= RH: never exists) */
} model;

static int ref_ok(const model *m, int r)
{
	return r == -2 || (r >= 0 && r < RH && m->h[r]);
}

static void hid_name(char *buf, size_t cap, int r)
{
	snprintf(buf, cap, "h%02d", r);
}

static void test_engine_validate__refs_exact_random(void **state)
{
	te_fx *fx = FX(state);
	lb_db *db = fx->db;
	uint64_t seed = th_seed(20240314), st = seed;
	long steps = th_env_long("LB_TEST_STEPS", 400);
	model m, w;
	memset(&m, 0, sizeof m);
	for (int i = 0; i < RW; i++)
		m.w[i] = -1;
	for (int i = 0; i < RD; i++)
		m.d[i] = -1;
	hg_val v;
	hg_init(&v);
	char key[16], hid[16];
	size_t commits = 0, rejects = 0;

	for (long step = 0; step < steps; step++) {
		w = m;
		lb_batch *b = hg_begin(db);
		int nops = 1 + (int)th_below(&st, 8);
		for (int o = 0; o < nops; o++) {
			int kind = (int)th_below(&st, 6);
			int i, r;
			switch (kind) {
			case 0:
				i = (int)th_below(&st, RH);
				hid_name(key, sizeof key, i);
				te_rc(0, hg_put_hearing(b, key));
				w.h[i] = 1;
				break;
			case 1:
				i = (int)th_below(&st, RH);
				if (!w.h[i])
					break;
				hid_name(key, sizeof key, i);
				te_rc(0, hg_del(b, HG_HEARINGS, key));
				w.h[i] = 0;
				break;
			case 2:
				i = (int)th_below(&st, RW);
				r = (int)th_below(&st, RH + RX);
				snprintf(key, sizeof key, "w%02d", i);
				hid_name(hid, sizeof hid, r);
				te_rc(0, hg_put_witness(b, key, hid));
				w.w[i] = r;
				break;
			case 3:
				i = (int)th_below(&st, RW);
				if (w.w[i] == -1)
					break;
				snprintf(key, sizeof key, "w%02d", i);
				te_rc(0, hg_del(b, HG_WITNESSES, key));
				w.w[i] = -1;
				break;
			case 4:
				i = (int)th_below(&st, RD);
				r = (int)th_below(&st, RH + RX + 1) - 1;
				snprintf(key, sizeof key, "d%02d", i);
				hg_reset(&v);
				hg_map(&v, 3);
				if (r < 0) {
					hg_knil(&v, "hearing_id");
					r = -2;
				} else {
					hid_name(hid, sizeof hid, r);
					hg_kstr(&v, "hearing_id", hid);
				}
				hg_kstr(&v, "type", "t");
				hg_kstr(&v, "url", "u");
				te_rc(0, hg_putv(b, HG_DOCUMENTS, key, &v));
				w.d[i] = r;
				break;
			default:
				i = (int)th_below(&st, RD);
				if (w.d[i] == -1)
					break;
				snprintf(key, sizeof key, "d%02d", i);
				te_rc(0, hg_del(b, HG_DOCUMENTS, key));
				w.d[i] = -1;
				break;
			}
		}
		int ok = 1;
		for (int i = 0; i < RW; i++)
			if (w.w[i] != -1 && !ref_ok(&w, w.w[i]))
				ok = 0;
		for (int i = 0; i < RD; i++)
			if (w.d[i] != -1 && !ref_ok(&w, w.d[i]))
				ok = 0;
		lb_result r;
		memset(&r, 0, sizeof r);
		int rc = lb_batch_commit(b, &r);
		th_assert_seeded(rc == (ok ? 0 : LB_EVALIDATION));
		if (ok) {
			m = w;
			commits++;
			lb_result_free(&r);
			continue;
		}
		rejects++;
		th_assert_seeded(r.nissues > 0);
		/* each issue is a real violation */
		for (size_t k = 0; k < r.nissues; k++) {
			const lb_issue *is = &r.issues[k];
			int idx;
			th_assert_seeded(is->kind == LB_ISSUE_FOREIGN_KEY);
			th_assert_seeded(is->klen == 3);
			idx = (((const char *)is->key)[1] - '0') * 10 +
			      (((const char *)is->key)[2] - '0');
			if (strcmp(is->table, HG_WITNESSES) == 0) {
				th_assert_seeded(w.w[idx] >= 0 &&
				                 !ref_ok(&w, w.w[idx]));
			} else if (strcmp(is->table, HG_DOCUMENTS) == 0) {
				th_assert_seeded(w.d[idx] >= 0 &&
				                 !ref_ok(&w, w.d[idx]));
			} else {
				/* a deleted hearing still referenced */
				th_assert_seeded(
				        strcmp(is->table, HG_HEARINGS) == 0);
				th_assert_seeded(idx < RH && !w.h[idx]);
				int named = 0;
				for (int i = 0; i < RW; i++)
					named |= w.w[i] == idx;
				for (int i = 0; i < RD; i++)
					named |= w.d[i] == idx;
				th_assert_seeded(named);
			}
		}
		/* every violation is reported: as its referrer, or as the
		 * deleted hearing it names */
		for (int t = 0; t < 2; t++) {
			int n = t ? RD : RW;
			const int *refs = t ? w.d : w.w;
			for (int i = 0; i < n; i++) {
				if (refs[i] == -1 || ref_ok(&w, refs[i]))
					continue;
				int seen = 0;
				for (size_t k = 0; k < r.nissues; k++) {
					const lb_issue *is = &r.issues[k];
					const char *ks = is->key;
					int idx = (ks[1] - '0') * 10 +
					          (ks[2] - '0');
					if (strcmp(is->table, HG_HEARINGS) == 0)
						seen |= idx == refs[i];
					else
						seen |= (strcmp(is->table,
						                t ? HG_DOCUMENTS
						                  : HG_WITNESSES) ==
						         0) &&
						        idx == i;
				}
				th_assert_seeded(seen);
			}
		}
		lb_result_free(&r);
	}
	/* both outcomes were exercised */
	th_assert_seeded(commits > 10 && rejects > 10);

	for (int i = 0; i < RH; i++) {
		hid_name(key, sizeof key, i);
		if (m.h[i]) {
			void *p;
			size_t n;
			te_rc(0, lb_get(db, HG_HEARINGS, key, 3, &p, &n));
			free(p);
		} else {
			te_assert_absent(db, HG_HEARINGS, key, 3);
		}
	}
	for (int i = 0; i < RW; i++) {
		snprintf(key, sizeof key, "w%02d", i);
		if (m.w[i] == -1) {
			te_assert_absent(db, HG_WITNESSES, key, 3);
			continue;
		}
		hid_name(hid, sizeof hid, m.w[i]);
		hg_witness(&v, hid);
		te_assert_get(db, HG_WITNESSES, key, 3, hg_data(&v),
		              hg_len(&v));
	}
	size_t want = 0;
	for (int i = 0; i < RW; i++)
		want += m.w[i] >= 0;
	for (int i = 0; i < RD; i++)
		want += m.d[i] >= 0;
	lb_close(db);
	fx->db = NULL;
	th_assert_seeded(hg_assert_refs_exact(fx->dir, hg_refs, 2) == want);
	hg_free(&v);
	(void)seed;
}

/* ---- rules: enum, pattern, format, min/max, nullable, key_field --------- */

/*
 * A run of single-field values against one table, in one batch: each good
 * value is accepted, each bad one refused with a message holding `want`;
 * at the end the batch is rejected with exactly one FORMAT issue per bad
 * value, naming the field and the value's key.
 */
typedef struct rt {
	lb_db *db;
	lb_batch *b;
	const char *table, *field;
	hg_val v;
	int n, nbad;
	char keys[96][32];
	size_t klens[96];
} rt;

static void rt_begin(rt *x, lb_db *db, const char *table, const char *field)
{
	memset(x, 0, sizeof *x);
	x->db = db;
	x->table = table;
	x->field = field;
	hg_init(&x->v);
	x->b = hg_begin(db);
}

/* Start the value {field: ...}: the caller packs the value with x->v.pk. */
static msgpack_packer *rt_val(rt *x)
{
	hg_reset(&x->v);
	hg_map(&x->v, 1);
	hg_key(&x->v, x->field);
	return &x->v.pk;
}

static int rt_putk(rt *x, const void *key, size_t klen)
{
	return lb_put(x->b, x->table, key, klen, hg_data(&x->v), hg_len(&x->v));
}

static void rt_goodk(rt *x, const void *key, size_t klen)
{
	int rc = rt_putk(x, key, klen);
	if (rc != 0)
		fail_msg("%s: value %d refused: %s", x->table, x->n,
		         lb_errmsg());
	x->n++;
}

static void rt_badk(rt *x, const void *key, size_t klen, const char *want)
{
	te_rc(LB_EVALIDATION, rt_putk(x, key, klen));
	hg_assert_contains(lb_errmsg(), want);
	assert_true(x->nbad < 96 && klen < 32);
	memcpy(x->keys[x->nbad], key, klen);
	x->klens[x->nbad++] = klen;
	x->n++;
}

static void rt_good(rt *x)
{
	char k[16];
	snprintf(k, sizeof k, "k%d", x->n);
	rt_goodk(x, k, strlen(k));
}

static void rt_bad(rt *x, const char *want)
{
	char k[16];
	snprintf(k, sizeof k, "k%d", x->n);
	rt_badk(x, k, strlen(k), want);
}

static void rt_end(rt *x)
{
	lb_result r;
	hg_commit_rejected(x->db, x->b, &r);
	assert_int_equal(r.nissues_total, x->nbad);
	for (int i = 0; i < x->nbad; i++)
		hg_assert_issuen(&r.issues[i], LB_ISSUE_FORMAT, x->table,
		                 x->keys[i], x->klens[i], x->field);
	lb_result_free(&r);
	hg_free(&x->v);
}

static void make_table(lb_db *db, const char *name, const lb_field *f, size_t n,
                       const char *key_field)
{
	lb_schema s = {f, n, 0, key_field};
	te_rc(0, lb_table_create(db, name, &s));
}

static void pk_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	assert_int_equal(msgpack_pack_str(pk, n), 0);
	assert_int_equal(msgpack_pack_str_body(pk, s, n), 0);
}

static void test_engine_validate__rule_enum_str(void **state)
{
	lb_db *db = FX(state)->db;
	static const char *const vals[] = {"House", "Senate", "Joint", "",
	                                   "\xc3\xa9t\xc3\xa9"};
	static const lb_field f[] = {{"chamber", LB_STR, 0, 0, NULL, vals, 5}};
	static const char *const bad[] = {
	        "house", "House ",       "Hous",     "Housee",
	        "x",     "S\xc3\xa9nat", "Senate\n", "\xc3\xa9t\xc3\xa9 "};
	rt x;
	make_table(db, "e", f, 1, NULL);
	rt_begin(&x, db, "e", "chamber");
	for (size_t i = 0; i < 5; i++) {
		pk_str(rt_val(&x), vals[i]);
		rt_good(&x);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pk_str(rt_val(&x), bad[i]);
		rt_bad(&x, "not one of the allowed values");
	}
	/* the whole message, once: the value, then the list */
	pk_str(rt_val(&x), "Senat");
	rt_bad(&x,
	       "e: field 'chamber' is 'Senat', not one of the allowed "
	       "values 'House', 'Senate', 'Joint', '', '\xc3\xa9t\xc3\xa9'");
	/* control bytes and quotes are escaped */
	pk_str(rt_val(&x), "it's\n");
	rt_bad(&x, "is 'it\\x27s\\x0a'");
	rt_end(&x);
}

/* 1024 values, given in no order: every one is found, nothing else is. */
static void test_engine_validate__rule_enum_big(void **state)
{
	lb_db *db = FX(state)->db;
	enum { N = LB_SCHEMA_ENUM_MAX };
	static char text[N][16];
	static const char *vals[N];
	uint64_t seed = th_seed(5);
	for (int i = 0; i < N; i++) {
		snprintf(text[i], sizeof text[i], "v%d", i);
		vals[i] = text[i];
	}
	for (int i = N - 1; i > 0; i--) {
		int j = (int)th_below(&seed, (uint64_t)i + 1);
		const char *t = vals[i];
		vals[i] = vals[j];
		vals[j] = t;
	}
	lb_field f[1] = {{"v", LB_STR, 0, 0, NULL, vals, N}};
	rt x;
	make_table(db, "big", f, 1, NULL);
	rt_begin(&x, db, "big", "v");
	for (int i = 0; i < N; i++) {
		pk_str(rt_val(&x), text[i]);
		rt_good(&x);
	}
	static const char *const bad[] = {"v1024",  "v",  "",     "v01",
	                                  "v10000", "w0", "u1023"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pk_str(rt_val(&x), bad[i]);
		rt_bad(&x, "values)");
	}
	pk_str(rt_val(&x), "nope");
	rt_bad(&x, "... (1024 values)");
	rt_end(&x);
}

static void test_engine_validate__rule_enum_int(void **state)
{
	lb_db *db = FX(state)->db;
	static const char *const vals[] = {"-9223372036854775808", "-1", "0",
	                                   "7", "9223372036854775807"};
	static const lb_field f[] = {{"n", LB_INT, 0, 0, NULL, vals, 5}};
	rt x;
	make_table(db, "ei", f, 1, NULL);
	rt_begin(&x, db, "ei", "n");
	assert_int_equal(msgpack_pack_int64(rt_val(&x), INT64_MIN), 0);
	rt_good(&x);
	assert_int_equal(msgpack_pack_int8(rt_val(&x), -1), 0);
	rt_good(&x);
	assert_int_equal(msgpack_pack_uint8(rt_val(&x), 0), 0);
	rt_good(&x);
	/* 7 in every width a writer may choose */
	static const uint8_t sevens[][10] = {{1, 0x07},
	                                     {2, 0xcc, 7},
	                                     {3, 0xcd, 0, 7},
	                                     {5, 0xce, 0, 0, 0, 7},
	                                     {9, 0xcf, 0, 0, 0, 0, 0, 0, 0, 7},
	                                     {2, 0xd0, 7},
	                                     {9, 0xd3, 0, 0, 0, 0, 0, 0, 0, 7}};
	for (size_t i = 0; i < sizeof sevens / sizeof sevens[0]; i++) {
		rt_val(&x);
		assert_int_equal(msgpack_sbuffer_write(
		                         &x.v.sb, (const char *)sevens[i] + 1,
		                         sevens[i][0]),
		                 0);
		rt_good(&x);
	}
	assert_int_equal(msgpack_pack_uint64(rt_val(&x), INT64_MAX), 0);
	rt_good(&x);
	static const int64_t bad[] = {
	        1, 8, -2, 6, INT64_MIN + 1, INT64_MAX - 1};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(msgpack_pack_int64(rt_val(&x), bad[i]), 0);
		rt_bad(&x, "not one of the allowed values");
	}
	assert_int_equal(
	        msgpack_pack_uint64(rt_val(&x), (uint64_t)INT64_MAX + 1), 0);
	rt_bad(&x, "is 9223372036854775808, not one of");
	assert_int_equal(msgpack_pack_uint64(rt_val(&x), UINT64_MAX), 0);
	rt_bad(&x, "is 18446744073709551615, not one of");
	assert_int_equal(msgpack_pack_int64(rt_val(&x), 8), 0);
	rt_bad(&x, "ei: field 'n' is 8, not one of the allowed values "
	           "-9223372036854775808, -1, 0, 7, 9223372036854775807");
	rt_end(&x);
}

static void test_engine_validate__rule_pattern(void **state)
{
	lb_db *db = FX(state)->db;
	static const lb_field f[] = {
	        {"id", LB_STR, 0, 0, NULL, NULL, 0, "[A-Z]{2}-[0-9]{1,4}"}};
	static const char *const good[] = {"HR-1", "SB-1234", "ZZ-0000"};
	static const char *const bad[] = {"hr-1",    "HR-12345", "HR-1 ",
	                                  " HR-1",   "HR1",      "",
	                                  "HR-1\nX", "H-1",      "HRS-1"};
	rt x;
	make_table(db, "p", f, 1, NULL);
	rt_begin(&x, db, "p", "id");
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		pk_str(rt_val(&x), good[i]);
		rt_good(&x);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pk_str(rt_val(&x), bad[i]);
		rt_bad(&x, "does not match the pattern");
	}
	pk_str(rt_val(&x), "hr-1");
	rt_bad(&x, "p: field 'id' is 'hr-1', which does not match the pattern "
	           "'[A-Z]{2}-[0-9]{1,4}' (the whole value must match)");
	/* a value holding a NUL byte is matched whole */
	rt_val(&x);
	assert_int_equal(msgpack_pack_str(&x.v.pk, 6), 0);
	assert_int_equal(msgpack_pack_str_body(&x.v.pk, "HR-1\0X", 6), 0);
	rt_bad(&x, "is 'HR-1\\x00X'");
	rt_end(&x);
}

static void test_engine_validate__rule_formats(void **state)
{
	lb_db *db = FX(state)->db;
	static const lb_field f[] = {
	        {"d", LB_STR, 0, 0, NULL, NULL, 0, NULL, LB_FMT_DATE},
	        {"t", LB_STR, 0, 0, NULL, NULL, 0, NULL, LB_FMT_DATETIME}};
	static const char *const dgood[] = {"2024-02-29", "2023-12-31"};
	static const char *const dbad[] = {"2023-02-29", "2024-13-01",
	                                   "2024-1-01", "20240101",
	                                   "2024-01-01T00:00:00Z"};
	static const char *const tgood[] = {"2024-03-14T09:30:00Z",
	                                    "2024-03-14T09:30:00.25-05:00"};
	static const char *const tbad[] = {
	        "2024-03-14T09:30:00", "2024-03-14 09:30:00Z",
	        "2024-03-14T25:30:00Z", "2024-03-14"};
	rt x;
	make_table(db, "f", f, 2, NULL);
	rt_begin(&x, db, "f", "d");
	for (size_t i = 0; i < 2; i++) {
		pk_str(rt_val(&x), dgood[i]);
		rt_good(&x);
	}
	for (size_t i = 0; i < sizeof dbad / sizeof dbad[0]; i++) {
		pk_str(rt_val(&x), dbad[i]);
		rt_bad(&x, "not a date (YYYY-MM-DD)");
	}
	pk_str(rt_val(&x), "2024-04-31");
	rt_bad(&x, "f: field 'd' is '2024-04-31', not a date (YYYY-MM-DD): "
	           "the day is past the end of the month");
	rt_end(&x);
	rt_begin(&x, db, "f", "t");
	for (size_t i = 0; i < 2; i++) {
		pk_str(rt_val(&x), tgood[i]);
		rt_good(&x);
	}
	for (size_t i = 0; i < sizeof tbad / sizeof tbad[0]; i++) {
		pk_str(rt_val(&x), tbad[i]);
		rt_bad(&x, "not a date-time (RFC 3339, like "
		           "2024-03-14T09:30:00Z)");
	}
	pk_str(rt_val(&x), "2024-03-14T09:30:00");
	rt_bad(&x, "is '2024-03-14T09:30:00', not a date-time (RFC 3339, like "
	           "2024-03-14T09:30:00Z): no time zone (end with Z or "
	           "+hh:mm)");
	rt_end(&x);
}

static void test_engine_validate__rule_min_max_int(void **state)
{
	lb_db *db = FX(state)->db;
	static const lb_field f[] = {
	        {"a", LB_INT, 0, 0, NULL, NULL, 0, NULL, 0, -5, 10,
	         LB_HAS_MIN | LB_HAS_MAX},
	        {"b", LB_INT, 0, 0, NULL, NULL, 0, NULL, 0, 1.5, 0, LB_HAS_MIN},
	        {"c", LB_INT, 0, 0, NULL, NULL, 0, NULL, 0,
	         -9223372036854775808.0, 9223372036854775808.0,
	         LB_HAS_MIN | LB_HAS_MAX},
	        {"d", LB_INT, 0, 0, NULL, NULL, 0, NULL, 0, 0, -2.5,
	         LB_HAS_MAX},
	        {"e", LB_INT, 0, 0, NULL, NULL, 0, NULL, 0, 1e19, 0,
	         LB_HAS_MIN},
	};
	rt x;
	make_table(db, "mm", f, 5, NULL);
	/* a: [-5, 10], inclusive, whatever the width */
	rt_begin(&x, db, "mm", "a");
	static const int64_t agood[] = {-5, 0, 10, -4, 9};
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(msgpack_pack_int64(rt_val(&x), agood[i]), 0);
		rt_good(&x);
	}
	assert_int_equal(msgpack_pack_uint16(rt_val(&x), 10), 0);
	rt_good(&x);
	assert_int_equal(msgpack_pack_int64(rt_val(&x), -6), 0);
	rt_bad(&x, "mm: field 'a' is -6, below the minimum -5");
	assert_int_equal(msgpack_pack_int64(rt_val(&x), 11), 0);
	rt_bad(&x, "mm: field 'a' is 11, above the maximum 10");
	assert_int_equal(msgpack_pack_int64(rt_val(&x), INT64_MIN), 0);
	rt_bad(&x, "below the minimum -5");
	assert_int_equal(msgpack_pack_uint64(rt_val(&x), UINT64_MAX), 0);
	rt_bad(&x, "is 18446744073709551615, above the maximum 10");
	rt_end(&x);
	/* b: at least 1.5, so 2 and not 1 */
	rt_begin(&x, db, "mm", "b");
	assert_int_equal(msgpack_pack_int64(rt_val(&x), 2), 0);
	rt_good(&x);
	assert_int_equal(msgpack_pack_uint64(rt_val(&x), UINT64_MAX), 0);
	rt_good(&x);
	assert_int_equal(msgpack_pack_int64(rt_val(&x), 1), 0);
	rt_bad(&x, "is 1, below the minimum 1.5");
	rt_end(&x);
	/* c: [-2^63, 2^63]: every int64, and 2^63 itself, but not 2^63 + 1 */
	rt_begin(&x, db, "mm", "c");
	assert_int_equal(msgpack_pack_int64(rt_val(&x), INT64_MIN), 0);
	rt_good(&x);
	assert_int_equal(msgpack_pack_int64(rt_val(&x), INT64_MAX), 0);
	rt_good(&x);
	assert_int_equal(msgpack_pack_uint64(rt_val(&x), 1ull << 63), 0);
	rt_good(&x);
	assert_int_equal(msgpack_pack_uint64(rt_val(&x), (1ull << 63) + 1), 0);
	rt_bad(&x, "above the maximum 9223372036854775808");
	rt_end(&x);
	/* d: at most -2.5, so -3 and not -2 */
	rt_begin(&x, db, "mm", "d");
	assert_int_equal(msgpack_pack_int64(rt_val(&x), -3), 0);
	rt_good(&x);
	assert_int_equal(msgpack_pack_int64(rt_val(&x), -2), 0);
	rt_bad(&x, "is -2, above the maximum -2.5");
	rt_end(&x);
	/* e: at least 1e19, above every int64 */
	rt_begin(&x, db, "mm", "e");
	assert_int_equal(
	        msgpack_pack_uint64(rt_val(&x), 10000000000000000000ull), 0);
	rt_good(&x);
	assert_int_equal(
	        msgpack_pack_uint64(rt_val(&x), 9999999999999999999ull), 0);
	rt_bad(&x, "below the minimum 1e+19");
	assert_int_equal(msgpack_pack_int64(rt_val(&x), INT64_MAX), 0);
	rt_bad(&x, "below the minimum");
	rt_end(&x);
}

static void test_engine_validate__rule_min_max_float(void **state)
{
	lb_db *db = FX(state)->db;
	static const lb_field f[] = {{"x", LB_FLOAT, 0, 0, NULL, NULL, 0, NULL,
	                              0, -1.5, 2.25, LB_HAS_MIN | LB_HAS_MAX}};
	rt x;
	make_table(db, "fl", f, 1, NULL);
	rt_begin(&x, db, "fl", "x");
	static const double good[] = {-1.5, 0, 2.25, -0.0, 1e-300};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		assert_int_equal(msgpack_pack_double(rt_val(&x), good[i]), 0);
		rt_good(&x);
	}
	assert_int_equal(msgpack_pack_float(rt_val(&x), 2.25f), 0);
	rt_good(&x);
	assert_int_equal(msgpack_pack_float(rt_val(&x), -1.5f), 0);
	rt_good(&x);
	assert_int_equal(msgpack_pack_double(rt_val(&x), 2.2500000000000004),
	                 0);
	rt_bad(&x, "fl: field 'x' is 2.2500000000000004, above the maximum "
	           "2.25");
	assert_int_equal(msgpack_pack_double(rt_val(&x), -1.5000000000000002),
	                 0);
	rt_bad(&x, "is -1.5000000000000002, below the minimum -1.5");
	assert_int_equal(msgpack_pack_float(rt_val(&x), 3.0f), 0);
	rt_bad(&x, "is 3, above the maximum 2.25");
	assert_int_equal(msgpack_pack_double(rt_val(&x), INFINITY), 0);
	rt_bad(&x, "is inf, above the maximum 2.25");
	assert_int_equal(msgpack_pack_double(rt_val(&x), -INFINITY), 0);
	rt_bad(&x, "is -inf, below the minimum -1.5");
	assert_int_equal(msgpack_pack_double(rt_val(&x), NAN), 0);
	rt_bad(&x, "fl: field 'x' is NaN, which is within no minimum or "
	           "maximum");
	assert_int_equal(msgpack_pack_float(rt_val(&x), NAN), 0);
	rt_bad(&x, "is NaN");
	rt_end(&x);
}

static void test_engine_validate__rule_nullable(void **state)
{
	lb_db *db = FX(state)->db;
	static const char *const a[] = {"a"};
	static const lb_field f[] = {
	        {"n", LB_INT, LB_REQUIRED | LB_NULLABLE, 0, NULL, NULL, 0, NULL,
	         0, 0, 0, LB_HAS_MIN},
	        {"s", LB_STR, LB_NULLABLE, 1, NULL, a, 1, "a", LB_FMT_DATE},
	        {"r", LB_STR, LB_NULLABLE, 0, "nul"},
	        {"p", LB_STR, 0, 0, NULL},
	};
	hg_val v;
	lb_result r;
	hg_init(&v);
	make_table(db, "nul", f, 4, NULL);
	lb_batch *b = hg_begin(db);
	/* nil stands for an int, a str held to four rules, a reference */
	hg_map(&v, 1);
	hg_knil(&v, "n");
	te_rc(0, hg_putv(b, "nul", "k1", &v));
	hg_reset(&v);
	hg_map(&v, 3);
	hg_knil(&v, "n");
	hg_knil(&v, "s");
	hg_knil(&v, "r");
	te_rc(0, hg_putv(b, "nul", "k2", &v));
	hg_reset(&v);
	hg_map(&v, 2);
	hg_kint(&v, "n", 0);
	hg_kstr(&v, "r", "k1"); /* a real reference */
	te_rc(0, hg_putv(b, "nul", "k3", &v));
	/* but not where the field is not nullable */
	hg_reset(&v);
	hg_map(&v, 2);
	hg_knil(&v, "n");
	hg_knil(&v, "p");
	hg_refused(hg_putv(b, "nul", "k4", &v),
	           "nul: field 'p' must be str, not nil");
	/* another type is still refused, and named with nil */
	hg_reset(&v);
	hg_map(&v, 2);
	hg_knil(&v, "n");
	hg_kint(&v, "s", 1);
	hg_refused(hg_putv(b, "nul", "k5", &v),
	           "nul: field 's' must be str or nil, not int");
	hg_reset(&v);
	hg_map(&v, 2);
	hg_knil(&v, "n");
	hg_kint(&v, "r", 1);
	hg_refused(hg_putv(b, "nul", "k6", &v),
	           "nul: field 'r' must be a key of nul (str or nil), not int");
	/* required and nullable: nil is present, absence is not */
	hg_reset(&v);
	hg_map(&v, 0);
	hg_refused(hg_putv(b, "nul", "k7", &v), "missing required field 'n'");
	/* a value is held to every rule: "b" breaks four of them */
	hg_reset(&v);
	hg_map(&v, 2);
	hg_kint(&v, "n", -1);
	hg_kstr(&v, "s", "bb");
	hg_refused(hg_putv(b, "nul", "k8", &v), "is 2 characters long (max 1)");
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 4 + 1 + 4);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FORMAT, "nul", "k4", "p");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FORMAT, "nul", "k5", "s");
	hg_assert_issue(&r.issues[2], LB_ISSUE_FORMAT, "nul", "k6", "r");
	hg_assert_issue(&r.issues[3], LB_ISSUE_FORMAT, "nul", "k7", "n");
	hg_assert_issue(&r.issues[4], LB_ISSUE_FORMAT, "nul", "k8", "n");
	hg_assert_contains(r.issues[4].message, "is -1, below the minimum 0");
	static const char *const broke[] = {"allowed values", "pattern 'a'",
	                                    "not a date", "(max 1)"};
	for (int i = 0; i < 4; i++) {
		hg_assert_issue(&r.issues[5 + i], LB_ISSUE_FORMAT, "nul", "k8",
		                "s");
		hg_assert_contains(r.issues[5 + i].message, broke[i]);
	}
	lb_result_free(&r);
	/* the good ones commit, the nil reference names nothing */
	b = hg_begin(db);
	hg_reset(&v);
	hg_map(&v, 3);
	hg_knil(&v, "n");
	hg_knil(&v, "s");
	hg_knil(&v, "r");
	te_rc(0, hg_putv(b, "nul", "k2", &v));
	hg_commit_ok(b);
	hg_free(&v);
}

static void test_engine_validate__rule_key_field(void **state)
{
	lb_db *db = FX(state)->db;
	static const lb_field fs[] = {{"id", LB_STR, 0, 0, NULL}};
	static const lb_field fb[] = {{"id", LB_BIN, 0, 0, NULL}};
	static const lb_field fi[] = {{"id", LB_INT, LB_NULLABLE, 0, NULL}};
	static const lb_field fa[] = {{"x", LB_INT, 0, 0, NULL},
	                              {"id", LB_ANY, 0, 0, NULL}};
	rt x;
	make_table(db, "ks", fs, 1, "id");
	make_table(db, "kb", fb, 1, "id");
	make_table(db, "ki", fi, 1, "id");
	make_table(db, "ka", fa, 2, "id");
	/* str: the bytes of the key */
	rt_begin(&x, db, "ks", "id");
	pk_str(rt_val(&x), "a");
	rt_goodk(&x, "a", 1);
	pk_str(rt_val(&x), "\xc3\xa9");
	rt_goodk(&x, "\xc3\xa9", 2);
	pk_str(rt_val(&x), "b");
	rt_badk(&x, "a", 1,
	        "ks: field 'id' is 'b' but the record's key is 'a' (the "
	        "table's key_field)");
	pk_str(rt_val(&x), "a");
	rt_badk(&x, "ab", 2, "is 'a' but the record's key is 'ab'");
	pk_str(rt_val(&x), "ab");
	rt_badk(&x, "a", 1, "is 'ab' but");
	rt_val(&x);
	assert_int_equal(msgpack_pack_str(&x.v.pk, 2), 0);
	assert_int_equal(msgpack_pack_str_body(&x.v.pk, "a\0", 2), 0);
	rt_badk(&x, "a", 1, "is 'a\\x00' but");
	rt_end(&x);
	/* absent: nothing to compare */
	{
		lb_batch *b = hg_begin(db);
		te_rc(0, hg_put_raw(b, "ks", "zz", "\x80", 1));
		hg_commit_ok(b);
	}
	/* bin: its bytes */
	rt_begin(&x, db, "kb", "id");
	assert_int_equal(msgpack_pack_bin(rt_val(&x), 2), 0);
	assert_int_equal(msgpack_pack_bin_body(&x.v.pk, "\x01\x02", 2), 0);
	rt_goodk(&x, "\x01\x02", 2);
	assert_int_equal(msgpack_pack_bin(rt_val(&x), 1), 0);
	assert_int_equal(msgpack_pack_bin_body(&x.v.pk, "\x01", 1), 0);
	rt_badk(&x, "\x01\x02", 2,
	        "is '\\x01' but the record's key is "
	        "'\\x01\\x02'");
	rt_end(&x);
	/* int: its decimal text, as keys given as integers are */
	rt_begin(&x, db, "ki", "id");
	assert_int_equal(msgpack_pack_int64(rt_val(&x), 42), 0);
	rt_goodk(&x, "42", 2);
	assert_int_equal(msgpack_pack_int64(rt_val(&x), -7), 0);
	rt_goodk(&x, "-7", 2);
	assert_int_equal(msgpack_pack_uint64(rt_val(&x), UINT64_MAX), 0);
	rt_goodk(&x, "18446744073709551615", 20);
	assert_int_equal(msgpack_pack_nil(rt_val(&x)), 0);
	rt_goodk(&x, "anything", 8);
	assert_int_equal(msgpack_pack_int64(rt_val(&x), 42), 0);
	rt_badk(&x, "042", 3, "is '42' but the record's key is '042'");
	assert_int_equal(msgpack_pack_int64(rt_val(&x), 43), 0);
	rt_badk(&x, "42", 2, "is '43' but");
	assert_int_equal(msgpack_pack_int64(rt_val(&x), 42), 0);
	rt_badk(&x, "42 ", 3, "but the record's key is '42 '");
	rt_end(&x);
	/* any: a str, bin or int as above; nil is nothing; others never */
	rt_begin(&x, db, "ka", "id");
	pk_str(rt_val(&x), "k");
	rt_goodk(&x, "k", 1);
	assert_int_equal(msgpack_pack_uint8(rt_val(&x), 5), 0);
	rt_goodk(&x, "5", 1);
	assert_int_equal(msgpack_pack_bin(rt_val(&x), 1), 0);
	assert_int_equal(msgpack_pack_bin_body(&x.v.pk, "b", 1), 0);
	rt_goodk(&x, "b", 1);
	assert_int_equal(msgpack_pack_nil(rt_val(&x)), 0);
	rt_goodk(&x, "n", 1);
	assert_int_equal(msgpack_pack_double(rt_val(&x), 1.5), 0);
	rt_badk(&x, "k", 1,
	        "ka: field 'id' must be the record's key (a str, bin or int), "
	        "not float");
	assert_int_equal(msgpack_pack_true(rt_val(&x)), 0);
	rt_badk(&x, "k", 1, "not bool");
	assert_int_equal(msgpack_pack_array(rt_val(&x), 0), 0);
	rt_badk(&x, "k", 1, "not array");
	pk_str(rt_val(&x), "j");
	rt_badk(&x, "k", 1, "is 'j' but the record's key is 'k'");
	rt_end(&x);
	/* lb_insert and lb_update hold to it as lb_put does */
	{
		hg_val v;
		lb_result r;
		hg_init(&v);
		hg_map(&v, 1);
		hg_kstr(&v, "id", "q");
		lb_batch *b = hg_begin(db);
		hg_refused(lb_insert(b, "ks", "p", 1, hg_data(&v), hg_len(&v)),
		           "key_field");
		te_rc(0, lb_insert(b, "ks", "q", 1, hg_data(&v), hg_len(&v)));
		hg_refused(lb_update(b, "ks", "zz", 2, hg_data(&v), hg_len(&v)),
		           "key_field");
		hg_commit_rejected(db, b, &r);
		assert_int_equal(r.nissues_total, 2);
		hg_assert_issue(&r.issues[0], LB_ISSUE_FORMAT, "ks", "p", "id");
		hg_assert_issue(&r.issues[1], LB_ISSUE_FORMAT, "ks", "zz",
		                "id");
		lb_result_free(&r);
		hg_free(&v);
	}
}

#define T(name)                                                                \
	cmocka_unit_test_setup_teardown(test_engine_validate__##name, setup,   \
	                                te_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(format_not_a_map),
	        T(format_missing_required),
	        T(format_wrong_type),
	        T(format_unknown_field_closed),
	        T(format_twice_and_bad_names),
	        T(format_several_in_one_record),
	        T(format_op_not_applied),
	        T(duplicate),
	        T(missing),
	        T(fk_dangling),
	        T(fk_across_batches),
	        T(fk_same_batch_both_orders),
	        T(fk_checked_after_the_batch),
	        T(fk_unindexable_values),
	        T(fk_bin_and_nil_refs),
	        T(delete_restrict),
	        T(delete_after_repointing),
	        T(fk_long_keys),
	        T(fk_self_reference),
	        T(fk_two_fields_one_target),
	        T(mixed_batch_rejected_whole),
	        T(mixed_fk_only),
	        T(thousands_of_issues),
	        T(thousands_of_fk_issues),
	        T(refs_20000_witnesses),
	        T(refs_exact_random),
	        T(rule_enum_str),
	        T(rule_enum_big),
	        T(rule_enum_int),
	        T(rule_pattern),
	        T(rule_formats),
	        T(rule_min_max_int),
	        T(rule_min_max_float),
	        T(rule_nullable),
	        T(rule_key_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
