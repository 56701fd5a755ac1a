/* SPDX-License-Identifier: MIT */
/*
 * lb_batch_check(): a value checked against its table's schema without
 * being written. Its issues are exactly those lb_put() of the value
 * records (kind, field, message, in order), every broken rule of every
 * field; the batch is left as it was (its own issues, its writes and its
 * outcome at commit); a table without a schema takes anything; bad
 * arguments answer their code and change nothing.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <stdlib.h>
#include <string.h>

#define FX(state) ((te_fx *)*(state))

/* h: name str (required, max 5 characters, pattern [a-z]+), kind str
 * (enum a|b), date str (format date), n int (1..10), note str nullable. */
static void make_table(lb_db *db)
{
	static const char *const kinds[] = {"a", "b"};
	lb_field f[] = {
	        {"name", LB_STR, LB_REQUIRED, 5, NULL, NULL, 0, "[a-z]+"},
	        {"kind", LB_STR, 0, 0, NULL, kinds, 2},
	        {"date", LB_STR, 0, 0, NULL, NULL, 0, NULL, LB_FMT_DATE},
	        {"n", LB_INT, 0, 0, NULL, NULL, 0, NULL, 0, 1, 10,
	         LB_HAS_MIN | LB_HAS_MAX},
	        {"note", LB_STR, LB_NULLABLE},
	};
	lb_schema s = {f, 5, 1};
	te_rc(0, lb_table_create(db, "h", &s));
	te_rc(0, lb_table_create(db, "opaque", NULL));
}

/* {"name":"Abcdefg","kind":"c","date":"2024-13-01","n":11,"note":nil,
 *  "x":1}: name breaks max_len and pattern, kind its enum, date its
 * format, n its max, x the closed schema; note is nil, which is fine. */
static const char bad[] = "\x86\xa4name\xa7"
                          "Abcdefg\xa4kind\xa1"
                          "c\xa4"
                          "date\xaa"
                          "2024-13-01\xa1n\x0b\xa4note\xc0\xa1x\x01";
/* {"name":"abc","n":3} */
static const char good[] = "\x82\xa4name\xa3"
                           "abc\xa1n\x03";

static void same_issues(const lb_result *a, const lb_result *b)
{
	assert_int_equal(a->nissues, b->nissues);
	assert_int_equal(a->nissues_total, b->nissues_total);
	for (size_t i = 0; i < a->nissues; i++) {
		assert_int_equal(a->issues[i].kind, b->issues[i].kind);
		assert_string_equal(a->issues[i].message, b->issues[i].message);
		assert_string_equal(
		        a->issues[i].field ? a->issues[i].field : "",
		        b->issues[i].field ? b->issues[i].field : "");
	}
}

static void test_engine_check__issues_are_those_of_put(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b;
	lb_result chk, put;
	make_table(db);

	te_rc(0, lb_batch_begin(db, "check", &b));
	te_rc(LB_EVALIDATION,
	      lb_batch_check(b, "h", "k", 1, bad, sizeof bad - 1, &chk));
	assert_int_equal(chk.rc, LB_EVALIDATION);
	assert_int_equal(chk.nissues, 6);
	for (size_t i = 0; i < chk.nissues; i++)
		assert_int_equal(chk.issues[i].kind, LB_ISSUE_FORMAT);
	te_rc(0, lb_batch_check(b, "h", "k", 1, good, sizeof good - 1, NULL));
	te_rc(0, lb_batch_check(b, "opaque", "k", 1, "\xff", 1, NULL));
	lb_batch_abort(b);

	/* the same value put: the same issues, word for word */
	te_rc(0, lb_batch_begin(db, "put", &b));
	te_rc(LB_EVALIDATION, lb_put(b, "h", "k", 1, bad, sizeof bad - 1));
	te_rc(LB_EVALIDATION, lb_batch_commit(b, &put));
	same_issues(&chk, &put);
	lb_result_free(&chk);
	lb_result_free(&put);
}

static void test_engine_check__batch_left_as_it_was(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b;
	lb_result chk, res;
	const void *v;
	size_t vl;
	make_table(db);
	uint64_t last = te_last(db);

	/* a batch with one refused op and one write */
	te_rc(0, lb_batch_begin(db, "mixed", &b));
	te_rc(0, lb_put(b, "h", "ok", 2, good, sizeof good - 1));
	te_rc(LB_EVALIDATION, lb_put(b, "h", "k", 1, "\x80", 1));
	te_rc(LB_EVALIDATION,
	      lb_batch_check(b, "h", "k", 1, bad, sizeof bad - 1, &chk));
	lb_result_free(&chk);
	te_rc(0, lb_batch_get(b, "h", "ok", 2, &v, &vl));
	te_rc(LB_ENOTFOUND, lb_batch_get(b, "h", "k", 1, &v, &vl));
	te_rc(LB_EVALIDATION, lb_batch_commit(b, &res));
	assert_int_equal(res.nissues, 1);
	assert_int_equal(res.nissues_total, 1);
	assert_string_equal(res.issues[0].message,
	                    "h: missing required field 'name'");
	lb_result_free(&res);
	assert_int_equal(te_last(db), last);

	/* a clean batch stays clean and commits */
	te_rc(0, lb_batch_begin(db, "clean", &b));
	te_rc(0, lb_put(b, "h", "ok", 2, good, sizeof good - 1));
	te_rc(LB_EVALIDATION,
	      lb_batch_check(b, "h", "k", 1, bad, sizeof bad - 1, NULL));
	te_rc(0, lb_batch_commit(b, &res));
	assert_int_equal(res.nissues, 0);
	lb_result_free(&res);
	te_assert_get(db, "h", "ok", 2, good, sizeof good - 1);
	te_assert_absent_s(db, "h", "k");
}

static void test_engine_check__bad_arguments(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b;
	lb_result res;
	char big[LB_KEY_MAX + 1];
	memset(big, 'k', sizeof big);
	make_table(db);
	te_rc(LB_EINVAL, lb_batch_check(NULL, "h", "k", 1, good, 1, &res));
	assert_int_equal(res.nissues, 0);
	te_rc(0, lb_batch_begin(db, "args", &b));
	te_rc(LB_EINVAL, lb_batch_check(b, NULL, "k", 1, good, 1, &res));
	te_rc(LB_EINVAL, lb_batch_check(b, "h", NULL, 1, good, 1, &res));
	te_rc(LB_EINVAL, lb_batch_check(b, "h", "k", 1, NULL, 1, &res));
	te_rc(LB_ETOOBIG,
	      lb_batch_check(b, "h", big, sizeof big, good, 1, &res));
	te_rc(LB_ETOOBIG,
	      lb_batch_check(b, "h", "k", 1, good, LB_VALUE_MAX + 1, &res));
	te_rc(LB_ENOTFOUND, lb_batch_check(b, "nope", "k", 1, good, 1, &res));
	te_rc(0, lb_batch_commit(b, &res));
	lb_result_free(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define E(name) cmocka_unit_test_setup_teardown(name, te_setup, te_teardown)
	        E(test_engine_check__issues_are_those_of_put),
	        E(test_engine_check__batch_left_as_it_was),
	        E(test_engine_check__bad_arguments),
#undef E
	};
	return cmocka_run_group_tests_name("engine_check", tests, NULL, NULL);
}
