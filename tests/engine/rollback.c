/* SPDX-License-Identifier: MIT */
/*
 * Rollback: lb_rollback() restores a batch's before-images in one new
 * logged batch (label, undoes, rolled_back_by, exact records); rolling back
 * an undo batch redoes what it undid, and the batches it undid stand again;
 * strict conflicts (one issue per key, naming the batch that last changed
 * it; a key changed and changed back is not one); cascade (the ordinary
 * batches standing on top of B's undo, never an undone batch nor an undo
 * batch, no key conflicts, newest first then B); force; dry run (the same
 * outcome as the real call); foreign keys (refused, never left dangling);
 * undoing a table creation; lb_rollback_to() (byte-for-byte state, records
 * in table and key order, every later batch undone, marks); and the errors
 * that write nothing. The model is docs/ROLLBACK.md's: a batch stands
 * unless a standing batch undoes it.
 */
#define _GNU_SOURCE
#include "_common.h"
#include "_hearings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FX(state) ((te_fx *)*(state))

/* ---- helpers ------------------------------------------------------------- */

/* lb_rollback asserted to return want (res.rc too); res is left filled. */
static void rb(lb_db *db, uint64_t id, unsigned flags, int want, lb_result *res)
{
	te_rc(want, lb_rollback(db, id, flags, res));
	assert_int_equal(res->rc, want);
	if (want != 0)
		assert_int_equal(res->batch_id, 0);
}

/* A successful rollback: returns the new batch id. */
static uint64_t rb_ok(lb_db *db, uint64_t id, unsigned flags)
{
	lb_result res;
	rb(db, id, flags, 0, &res);
	assert_int_equal(res.nissues, 0);
	uint64_t n = res.batch_id;
	lb_result_free(&res);
	return n;
}

/* rolled_back_by of every batch 1..last, as "0 0 6 0": the test states the
 * marks of the whole log, so a mark that moves anywhere is caught. */
static void assert_marks(lb_db *db, const char *want)
{
	char got[1024];
	size_t n = 0;
	uint64_t last = te_last(db);
	got[0] = 0;
	for (uint64_t id = 1; id <= last; id++) {
		n += (size_t)snprintf(
		        got + n, sizeof got - n, "%s%llu", id > 1 ? " " : "",
		        (unsigned long long)te_info(db, id).rolled_back_by);
		assert_true(n < sizeof got);
	}
	assert_string_equal(got, want);
}

/* The same issues, in the same order. */
static void assert_same_issues(const lb_result *a, const lb_result *b)
{
	assert_int_equal(a->nissues, b->nissues);
	assert_int_equal(a->nissues_total, b->nissues_total);
	for (size_t i = 0; i < a->nissues; i++) {
		const lb_issue *x = &a->issues[i], *y = &b->issues[i];
		assert_int_equal(x->kind, y->kind);
		assert_int_equal(x->batch, y->batch);
		assert_string_equal(x->table ? x->table : "",
		                    y->table ? y->table : "");
		assert_int_equal(x->klen, y->klen);
		if (x->klen)
			assert_memory_equal(x->key, y->key, x->klen);
		assert_string_equal(x->message ? x->message : "",
		                    y->message ? y->message : "");
	}
}

/* lb_rollback(db, id, flags) first with LB_DRYRUN, then for real: both
 * return want, with the same issues and the same record count; the dry
 * run writes nothing and marks nothing. res holds the real call's result. */
static void rb_dry_real(lb_db *db, uint64_t id, unsigned flags, int want,
                        lb_result *res)
{
	lb_result dry;
	uint64_t d = te_digest(db), last = te_last(db);
	uint64_t *marks = te_malloc((size_t)(last + 1) * sizeof *marks);
	for (uint64_t i = 1; i <= last; i++)
		marks[i] = te_info(db, i).rolled_back_by;
	rb(db, id, flags | LB_DRYRUN, want, &dry);
	assert_int_equal(dry.batch_id, 0);
	assert_int_equal(te_digest(db), d);
	assert_int_equal(te_last(db), last);
	for (uint64_t i = 1; i <= last; i++)
		assert_int_equal(te_info(db, i).rolled_back_by, marks[i]);
	free(marks);
	rb(db, id, flags, want, res);
	assert_int_equal(res->records, dry.records);
	assert_same_issues(&dry, res);
	lb_result_free(&dry);
}

/* rb_dry_real expecting success and nrec records: the new batch's id. */
static uint64_t rbd_ok(lb_db *db, uint64_t id, unsigned flags, uint64_t nrec)
{
	lb_result res;
	uint64_t last = te_last(db);
	rb_dry_real(db, id, flags, 0, &res);
	assert_int_equal(res.nissues, 0);
	assert_int_equal(res.records, nrec);
	uint64_t n = res.batch_id;
	assert_int_equal(n, nrec ? last + 1 : 0);
	lb_result_free(&res);
	if (n) {
		assert_int_equal(te_info(db, n).records, nrec);
		assert_int_equal(te_info(db, n).undoes, id);
	}
	return n;
}

/* lb_rollback_to, asserted to succeed with nrec records: the new batch. */
static uint64_t rbto_ok(lb_db *db, uint64_t x, uint64_t nrec)
{
	lb_result res;
	te_rc(0, lb_rollback_to(db, x, &res));
	assert_int_equal(res.rc, 0);
	assert_int_equal(res.nissues, 0);
	assert_int_equal(res.records, nrec);
	uint64_t n = res.batch_id;
	lb_result_free(&res);
	if (n)
		assert_int_equal(te_info(db, n).undoes, x);
	return n;
}

/* The full check, replay included, passes. */
static void verify_replay(lb_db *db)
{
	lb_verify_report rep;
	memset(&rep, 0, sizeof rep);
	te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.chain_ok);
	assert_true(rep.replay_ok);
	assert_int_equal(rep.bad_batch, 0);
}

/* Every table, key and value, in order, as one byte string (malloc). */
typedef struct dumpbuf {
	char *p;
	size_t n;
} dumpbuf;

static void dappend(dumpbuf *d, const void *p, size_t n)
{
	d->p = realloc(d->p, d->n + n + 8);
	assert_non_null(d->p);
	memcpy(d->p + d->n, &n, sizeof n < 8 ? sizeof n : 8);
	memcpy(d->p + d->n + 8, p, n);
	d->n += n + 8;
}

typedef struct tlist {
	char names[16][LB_TABLE_NAME_MAX + 1];
	int n;
} tlist;

static int tl_cb(void *ctx, const char *name, const lb_schema *s,
                 uint64_t records)
{
	tlist *tl = ctx;
	(void)s;
	(void)records;
	assert_true(tl->n < 16);
	snprintf(tl->names[tl->n++], sizeof tl->names[0], "%s", name);
	return 0;
}

static dumpbuf dump(lb_db *db)
{
	dumpbuf d = {NULL, 0};
	tlist tl;
	lb_snapshot *s = NULL;
	memset(&tl, 0, sizeof tl);
	te_rc(0, lb_tables(db, tl_cb, &tl));
	te_rc(0, lb_snapshot_open(db, &s));
	for (int i = 0; i < tl.n; i++) {
		lb_cursor *c = NULL;
		const void *k, *v;
		size_t kl, vl;
		int rc;
		dappend(&d, tl.names[i], strlen(tl.names[i]));
		te_rc(0, lb_cursor_open(s, tl.names[i], &c));
		while ((rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0) {
			dappend(&d, k, kl);
			dappend(&d, v, vl);
		}
		te_rc(LB_ENOTFOUND, rc);
		lb_cursor_close(c);
		dappend(&d, "", 0);
	}
	lb_snapshot_close(s);
	return d;
}

static void assert_dump_eq(const dumpbuf *a, const dumpbuf *b)
{
	assert_int_equal(a->n, b->n);
	assert_memory_equal(a->p, b->p, a->n);
}

static int has_table(lb_db *db, const char *name)
{
	tlist tl;
	memset(&tl, 0, sizeof tl);
	te_rc(0, lb_tables(db, tl_cb, &tl));
	for (int i = 0; i < tl.n; i++)
		if (strcmp(tl.names[i], name) == 0)
			return 1;
	return 0;
}

static void assert_contains(const char *s, const char *sub)
{
	if (!strstr(s, sub))
		fail_msg("'%s' does not contain '%s'", s, sub);
}

/* The issue of res about key (table "t" unless given). */
static const lb_issue *issue_for(const lb_result *res, const char *table,
                                 const char *key)
{
	for (size_t i = 0; i < res->nissues; i++)
		if (strcmp(res->issues[i].table, table) == 0 &&
		    res->issues[i].klen == strlen(key) &&
		    memcmp(res->issues[i].key, key, strlen(key)) == 0)
			return &res->issues[i];
	fail_msg("no issue for %s '%s'", table, key);
	return NULL;
}

/* ---- rolling back one batch ---------------------------------------------- */

static void test_engine_rollback__restores_before_images(void **state)
{
	lb_db *db = FX(state)->db;
	te_recs rs;
	lb_result res;

	uint64_t a = te_ops(db, "k1=a k2=b");
	uint64_t b = te_ops(db, "k1=A -k2 k3=C");
	rb(db, b, 0, 0, &res);
	uint64_t r = res.batch_id;
	assert_int_equal(r, b + 1);
	assert_int_equal(res.records, 3);
	assert_int_equal(res.nissues, 0);
	lb_result_free(&res);

	te_assert_get_s(db, "t", "k1", "a");
	te_assert_get_s(db, "t", "k2", "b");
	te_assert_absent_s(db, "t", "k3");

	lb_batch_info bi = te_info(db, r);
	assert_string_equal(bi.label, "rollback of batch 3");
	assert_int_equal(bi.undoes, b);
	assert_int_equal(bi.rolled_back_by, 0);
	assert_int_equal(bi.records, 3);
	assert_int_equal(te_info(db, b).rolled_back_by, r);
	assert_int_equal(te_info(db, a).rolled_back_by, 0);

	/* B's records, undone last first, with exact images */
	memset(&rs, 0, sizeof rs);
	te_changes(db, r, &rs);
	assert_int_equal(rs.n, 3);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "k3", "C", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "k2", NULL, "b");
	te_assert_rec_s(&rs.v[2], LB_OP_PUT, "t", "k1", "A", "a");
	te_recs_free(&rs);
}

static void test_engine_rollback__same_key_many_times(void **state)
{
	lb_db *db = FX(state)->db;
	te_recs rs;

	uint64_t b = te_ops(db, "k=1 k=2 -k k=3 j=");
	uint64_t r = rb_ok(db, b, 0);
	te_assert_absent_s(db, "t", "k");
	te_assert_absent_s(db, "t", "j");
	memset(&rs, 0, sizeof rs);
	te_changes(db, r, &rs);
	assert_int_equal(rs.n, 5);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "j", "", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_DELETE, "t", "k", "3", NULL);
	te_assert_rec_s(&rs.v[2], LB_OP_PUT, "t", "k", NULL, "2");
	te_assert_rec_s(&rs.v[3], LB_OP_PUT, "t", "k", "2", "1");
	te_assert_rec_s(&rs.v[4], LB_OP_DELETE, "t", "k", "1", NULL);
	te_recs_free(&rs);
}

static void test_engine_rollback__rollback_of_rollback_redoes(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;
	te_recs rs;

	te_ops(db, "k1=a k2=b");                  /* 2 */
	uint64_t b = te_ops(db, "k1=A -k2 k3=C"); /* 3 */
	dumpbuf after_b = dump(db);
	uint64_t r = rb_ok(db, b, 0);  /* 4: undoes 3 */
	uint64_t r2 = rb_ok(db, r, 0); /* 5: undoes 4, so 3 stands again */
	dumpbuf now = dump(db);
	assert_dump_eq(&after_b, &now);
	free(now.p);

	lb_batch_info bi = te_info(db, r2);
	assert_string_equal(bi.label, "rollback of batch 4");
	assert_int_equal(bi.undoes, r);
	assert_int_equal(te_info(db, r).rolled_back_by, r2);
	assert_int_equal(te_info(db, b).rolled_back_by, 0);
	assert_marks(db, "0 0 0 5 0");

	/* B stands again: it can be rolled back on its own, strictly */
	uint64_t r3 = rbd_ok(db, b, 0, 3); /* 6 */
	te_assert_get_s(db, "t", "k1", "a");
	te_assert_get_s(db, "t", "k2", "b");
	te_assert_absent_s(db, "t", "k3");
	memset(&rs, 0, sizeof rs);
	te_changes(db, r3, &rs);
	assert_int_equal(rs.n, 3);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "k3", "C", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "k2", NULL, "b");
	te_assert_rec_s(&rs.v[2], LB_OP_PUT, "t", "k1", "A", "a");
	te_recs_free(&rs);
	assert_marks(db, "0 0 6 5 0 0");

	/* undoing that undo: B stands again */
	rbd_ok(db, r3, 0, 3); /* 7 */
	now = dump(db);
	assert_dump_eq(&after_b, &now);
	free(now.p);
	assert_marks(db, "0 0 0 5 0 7 0");

	/* undoing the redo: 4 stands again, so B is rolled back by 4 (6,
	 * which undid B too, no longer stands) */
	rbd_ok(db, r2, 0, 3); /* 8 */
	te_assert_get_s(db, "t", "k1", "a");
	te_assert_get_s(db, "t", "k2", "b");
	te_assert_absent_s(db, "t", "k3");
	assert_marks(db, "0 0 4 0 8 7 0 0");
	uint64_t d = te_digest(db);
	rb(db, b, 0, LB_EINVAL, &res);
	assert_contains(lb_errmsg(), "batch 4");
	lb_result_free(&res);
	assert_int_equal(te_digest(db), d);
	verify_replay(db);
	free(after_b.p);
}

static void test_engine_rollback__persists_across_reopen(void **state)
{
	te_fx *fx = FX(state);
	lb_result res;

	uint64_t b = te_ops(fx->db, "k=1");
	uint64_t r = rb_ok(fx->db, b, 0);
	lb_close(fx->db);
	fx->db = te_open(fx->dir, LB_NOSYNC);
	te_assert_absent_s(fx->db, "t", "k");
	assert_int_equal(te_info(fx->db, b).rolled_back_by, r);
	assert_int_equal(te_info(fx->db, r).undoes, b);
	rb(fx->db, b, 0, LB_EINVAL, &res);
	lb_result_free(&res);
	/* and the rollback itself can be rolled back after reopening; B
	 * stands again, and stays so across the next reopening */
	uint64_t r2 = rb_ok(fx->db, r, 0);
	te_assert_get_s(fx->db, "t", "k", "1");
	lb_close(fx->db);
	fx->db = te_open(fx->dir, LB_NOSYNC);
	assert_int_equal(te_info(fx->db, b).rolled_back_by, 0);
	assert_int_equal(te_info(fx->db, r).rolled_back_by, r2);
	rb_ok(fx->db, b, 0);
	te_assert_absent_s(fx->db, "t", "k");
}

/* ---- conflicts ----------------------------------------------------------- */

static void test_engine_rollback__conflicts_name_the_later_batch(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;

	uint64_t b = te_ops(db, "k1=x k2=x k3=x");
	uint64_t c = te_ops(db, "k1=y");
	uint64_t d = te_ops(db, "k2=y k1=z");
	uint64_t dg = te_digest(db), last = te_last(db);

	rb(db, b, 0, LB_ECONFLICT, &res);
	assert_contains(lb_errmsg(), "conflict");
	assert_int_equal(res.nissues, 2);
	assert_int_equal(res.nissues_total, 2);
	assert_int_equal(res.records, 0);
	const lb_issue *i1 = issue_for(&res, "t", "k1");
	const lb_issue *i2 = issue_for(&res, "t", "k2");
	assert_int_equal(i1->kind, LB_ISSUE_CONFLICT);
	assert_int_equal(i2->kind, LB_ISSUE_CONFLICT);
	assert_int_equal(i1->batch, d); /* the last to change it */
	assert_int_equal(i2->batch, d);
	char want[32];
	snprintf(want, sizeof want, "batch %llu", (unsigned long long)d);
	assert_non_null(i1->message);
	assert_contains(i1->message, want);
	lb_result_free(&res);
	assert_int_equal(te_digest(db), dg);
	assert_int_equal(te_last(db), last);
	assert_int_equal(te_info(db, b).rolled_back_by, 0);

	/* once D is rolled back, only k1 (C's value again) is in the way;
	 * the batch that last changed it is D's rollback */
	uint64_t rd = rb_ok(db, d, 0);
	rb(db, b, 0, LB_ECONFLICT, &res);
	assert_int_equal(res.nissues, 1);
	assert_int_equal(issue_for(&res, "t", "k1")->batch, rd);
	lb_result_free(&res);
	/* with C undone too, B goes */
	rb_ok(db, c, 0);
	rb_ok(db, b, 0);
	te_assert_absent_s(db, "t", "k1");
	te_assert_absent_s(db, "t", "k2");
	te_assert_absent_s(db, "t", "k3");
}

/* A strict rollback of id refused with exactly two conflicts, on keys k1
 * and k2 of table "t", both last changed by batch by; nothing written. */
static void expect_two_conflicts(lb_db *db, uint64_t id, const char *k1,
                                 const char *k2, uint64_t by)
{
	lb_result res;
	uint64_t dg = te_digest(db);
	rb(db, id, 0, LB_ECONFLICT, &res);
	assert_int_equal(res.nissues, 2);
	assert_int_equal(res.nissues_total, 2);
	assert_int_equal(issue_for(&res, "t", k1)->batch, by);
	assert_int_equal(issue_for(&res, "t", k2)->batch, by);
	lb_result_free(&res);
	assert_int_equal(te_digest(db), dg);
}

/* A key the batch changed several times is reported once, whether its
 * conflict is found before or after another key's (records are undone last
 * first), and a key whose last value still stands is not reported, however
 * its earlier records fall around the conflicts. */
static void test_engine_rollback__key_changed_often_reported_once(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;

	/* a's conflict is found first, then k's */
	uint64_t b = te_ops(db, "k=1 j=1 k=2 j=2 a=1");
	uint64_t c = te_ops(db, "a=x k=y");
	expect_two_conflicts(db, b, "a", "k", c);

	/* m's last record is undone before the first conflict (n's); o's
	 * comes after it; m's and n's first records after both */
	uint64_t d = te_ops(db, "m=3 n=3 o=3 n=4 m=4");
	uint64_t e = te_ops(db, "o=z n=z");
	rb(db, d, LB_DRYRUN, LB_ECONFLICT, &res);
	assert_int_equal(res.nissues_total, 2);
	lb_result_free(&res);
	expect_two_conflicts(db, d, "n", "o", e);

	/* with the later batches undone, both go through */
	rb_ok(db, e, 0);
	rb_ok(db, d, 0);
	te_assert_absent_s(db, "t", "m");
	te_assert_absent_s(db, "t", "n");
	te_assert_absent_s(db, "t", "o");
	rb_ok(db, c, 0);
	rb_ok(db, b, 0);
	te_assert_absent_s(db, "t", "k");
	te_assert_absent_s(db, "t", "j");
	te_assert_absent_s(db, "t", "a");
}

static void test_engine_rollback__changed_back_is_no_conflict(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;

	te_ops(db, "k=v0");
	uint64_t b = te_ops(db, "k=v1");
	te_ops(db, "k=v2");
	te_ops(db, "k=v1");
	rb_ok(db, b, 0);
	te_assert_get_s(db, "t", "k", "v0");

	/* deleted and put back with the same value: no conflict either */
	uint64_t e = te_ops(db, "j=1");
	te_ops(db, "-j");
	te_ops(db, "j=1");
	rb_ok(db, e, 0);
	te_assert_absent_s(db, "t", "j");

	/* an empty value is not an absent one */
	uint64_t f = te_ops(db, "m=");
	uint64_t g = te_ops(db, "-m");
	rb(db, f, 0, LB_ECONFLICT, &res);
	assert_int_equal(res.nissues, 1);
	assert_int_equal(issue_for(&res, "t", "m")->batch, g);
	lb_result_free(&res);
}

static void test_engine_rollback__conflicts_capped_but_counted(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = NULL;
	lb_result res;
	char k[16];
	int n = LB_ISSUES_MAX + 200;

	for (int pass = 0; pass < 2; pass++) {
		te_rc(0, lb_batch_begin(db, "many", &b));
		for (int i = 0; i < n; i++) {
			snprintf(k, sizeof k, "k%05d", i);
			te_rc(0, lb_put(b, "t", k, strlen(k), pass ? "b" : "a",
			                1));
		}
		te_rc(0, lb_batch_commit(b, NULL));
	}
	uint64_t d = te_digest(db);
	rb(db, 2, 0, LB_ECONFLICT, &res);
	assert_int_equal(res.nissues, LB_ISSUES_MAX);
	assert_int_equal(res.nissues_total, (size_t)n);
	for (size_t i = 0; i < res.nissues; i++) {
		assert_int_equal(res.issues[i].kind, LB_ISSUE_CONFLICT);
		assert_int_equal(res.issues[i].batch, 3);
	}
	lb_result_free(&res);
	assert_int_equal(te_digest(db), d);
}

/* ---- cascade ------------------------------------------------------------- */

static void test_engine_rollback__cascade_transitive_chain(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res, dry;
	te_recs rs;

	uint64_t b = te_ops(db, "k1=b");
	uint64_t c = te_ops(db, "k1=c k2=c");
	uint64_t d = te_ops(db, "k2=d k3=d");
	uint64_t e = te_ops(db, "k9=e");
	uint64_t dg = te_digest(db);

	rb(db, b, 0, LB_ECONFLICT, &res);
	assert_int_equal(res.nissues, 1);
	assert_int_equal(issue_for(&res, "t", "k1")->batch, c);
	lb_result_free(&res);

	rb(db, b, LB_CASCADE | LB_DRYRUN, 0, &dry);
	assert_int_equal(dry.batch_id, 0);
	assert_int_equal(dry.records, 5);
	lb_result_free(&dry);
	assert_int_equal(te_digest(db), dg);
	assert_int_equal(te_info(db, d).rolled_back_by, 0);

	rb(db, b, LB_CASCADE, 0, &res);
	uint64_t n = res.batch_id;
	assert_int_equal(n, e + 1);
	assert_int_equal(res.records, 5);
	lb_result_free(&res);
	te_assert_absent_s(db, "t", "k1");
	te_assert_absent_s(db, "t", "k2");
	te_assert_absent_s(db, "t", "k3");
	te_assert_get_s(db, "t", "k9", "e");
	assert_int_equal(te_info(db, b).rolled_back_by, n);
	assert_int_equal(te_info(db, c).rolled_back_by, n);
	assert_int_equal(te_info(db, d).rolled_back_by, n);
	assert_int_equal(te_info(db, e).rolled_back_by, 0);
	assert_int_equal(te_info(db, n).undoes, b);
	assert_string_equal(te_info(db, n).label, "rollback of batch 2");

	/* newest first: D's records, then C's, then B's, each reversed */
	memset(&rs, 0, sizeof rs);
	te_changes(db, n, &rs);
	assert_int_equal(rs.n, 5);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "k3", "d", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "k2", "d", "c");
	te_assert_rec_s(&rs.v[2], LB_OP_DELETE, "t", "k2", "c", NULL);
	te_assert_rec_s(&rs.v[3], LB_OP_PUT, "t", "k1", "c", "b");
	te_assert_rec_s(&rs.v[4], LB_OP_DELETE, "t", "k1", "b", NULL);
	te_recs_free(&rs);

	/* one rollback of the cascade batch brings all three back, and
	 * each of them stands again */
	uint64_t r = rb_ok(db, n, 0);
	te_assert_get_s(db, "t", "k1", "c");
	te_assert_get_s(db, "t", "k2", "d");
	te_assert_get_s(db, "t", "k3", "d");
	assert_int_equal(te_info(db, n).rolled_back_by, r);
	assert_marks(db, "0 0 0 0 0 7 0");
}

static void test_engine_rollback__cascade_skips_undone_batches(void **state)
{
	lb_db *db = FX(state)->db;

	uint64_t b = te_ops(db, "k=1");
	uint64_t c = te_ops(db, "k=2");
	uint64_t r = rb_ok(db, c, 0); /* k=1 again: C and R cancel out */
	uint64_t n = rb_ok(db, b, LB_CASCADE);
	te_assert_absent_s(db, "t", "k");
	assert_int_equal(te_info(db, b).rolled_back_by, n);
	assert_int_equal(te_info(db, c).rolled_back_by, r);
	assert_int_equal(te_info(db, r).rolled_back_by, 0);
	assert_int_equal(te_info(db, n).records, 1);
	assert_marks(db, "0 5 4 0 0");
}

/* docs/ROLLBACK.md's redo example: the cascade follows the redo to the
 * batch it brought back, and undoes that batch, not the redo. */
static void test_engine_rollback__cascade_follows_a_redo(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;
	te_recs rs;

	uint64_t b = te_ops(db, "k=1");     /* 2 */
	uint64_t u = te_ops(db, "k=2 j=2"); /* 3 */
	uint64_t r = rb_ok(db, u, 0);       /* 4: undoes U */
	uint64_t r2 = rb_ok(db, r, 0);      /* 5: undoes 4, U stands again */
	te_assert_get_s(db, "t", "k", "2");
	te_assert_get_s(db, "t", "j", "2");
	assert_marks(db, "0 0 0 5 0");
	rb_dry_real(db, b, 0, LB_ECONFLICT, &res);
	assert_int_equal(res.nissues, 1);
	assert_int_equal(issue_for(&res, "t", "k")->batch, r2);
	lb_result_free(&res);

	uint64_t n = rbd_ok(db, b, LB_CASCADE, 3); /* 6: undoes 3, then 2 */
	te_assert_absent_s(db, "t", "k");
	te_assert_absent_s(db, "t", "j");
	assert_int_equal(te_info(db, u).rolled_back_by, n);
	assert_int_equal(te_info(db, b).rolled_back_by, n);
	assert_int_equal(te_info(db, r).rolled_back_by, r2);
	assert_int_equal(te_info(db, r2).rolled_back_by, 0);
	assert_marks(db, "0 6 6 5 0 0");
	memset(&rs, 0, sizeof rs);
	te_changes(db, n, &rs);
	assert_int_equal(rs.n, 3);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "j", "2", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "k", "2", "1");
	te_assert_rec_s(&rs.v[2], LB_OP_DELETE, "t", "k", "1", NULL);
	te_recs_free(&rs);
	verify_replay(db);
}

static void test_engine_rollback__cascade_without_later_batches(void **state)
{
	lb_db *db = FX(state)->db;
	uint64_t b = te_ops(db, "k=1");
	te_ops(db, "other=1");
	uint64_t n = rb_ok(db, b, LB_CASCADE);
	assert_int_equal(te_info(db, n).records, 1);
	assert_int_equal(te_info(db, b + 1).rolled_back_by, 0);
	te_assert_get_s(db, "t", "other", "1");
}

/* (a) docs/ROLLBACK.md's "a batch that a rollback took away stays away":
 * after a cascade undid 5 and 3, cascading 4 undoes 4 alone; neither the
 * undone 5 nor the undo batch 6 joins, so 3 is not redone. */
static void
test_engine_rollback__cascade_never_redoes_an_undone_batch(void **state)
{
	lb_db *db = FX(state)->db;
	te_recs rs;

	te_ops(db, "k=1");                         /* 2 */
	uint64_t u = te_ops(db, "j=1");            /* 3 */
	uint64_t b = te_ops(db, "k=2");            /* 4 */
	te_ops(db, "j=2 k=3");                     /* 5 */
	uint64_t c = rbd_ok(db, u, LB_CASCADE, 3); /* 6: undoes 5, then 3 */
	assert_int_equal(c, 6);
	te_assert_get_s(db, "t", "k", "2");
	te_assert_absent_s(db, "t", "j");
	assert_marks(db, "0 0 6 0 6 0");
	memset(&rs, 0, sizeof rs);
	te_changes(db, c, &rs);
	assert_int_equal(rs.n, 3);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "k", "3", "2");
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "j", "2", "1");
	te_assert_rec_s(&rs.v[2], LB_OP_DELETE, "t", "j", "1", NULL);
	te_recs_free(&rs);

	/* k holds 4's after-image again: a strict rollback of 4 would do */
	lb_result dry;
	rb(db, b, LB_DRYRUN, 0, &dry);
	assert_int_equal(dry.records, 1);
	assert_int_equal(dry.nissues, 0);
	lb_result_free(&dry);

	uint64_t n = rbd_ok(db, b, LB_CASCADE, 1); /* 7: undoes 4 only */
	assert_int_equal(n, 7);
	te_assert_get_s(db, "t", "k", "1");
	te_assert_absent_s(db, "t", "j");
	assert_marks(db, "0 0 6 7 6 0 0");
	memset(&rs, 0, sizeof rs);
	te_changes(db, n, &rs);
	assert_int_equal(rs.n, 1);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "k", "2", "1");
	te_recs_free(&rs);
	verify_replay(db);
}

/* (b) docs/ROLLBACK.md's "cascading an undo batch": a rollback-to makes 4
 * stand again; cascading 3 (which undid 2) brings 2 back and undoes 4,
 * which changed k on top of 2. */
static void test_engine_rollback__cascade_of_an_undo_batch(void **state)
{
	lb_db *db = FX(state)->db;
	te_recs rs;

	uint64_t a = te_ops(db, "k=a");    /* 2 */
	uint64_t ra = rbd_ok(db, a, 0, 1); /* 3 */
	uint64_t c = te_ops(db, "k=b");    /* 4 */
	uint64_t rc = rbd_ok(db, c, 0, 1); /* 5 */
	te_assert_absent_s(db, "t", "k");
	assert_marks(db, "0 3 0 5 0");

	uint64_t to = rbto_ok(db, c, 1); /* 6: undoes 5 */
	assert_int_equal(to, 6);
	te_assert_get_s(db, "t", "k", "b");
	assert_int_equal(te_info(db, c).rolled_back_by, 0);
	assert_int_equal(te_info(db, rc).rolled_back_by, to);
	assert_marks(db, "0 3 0 0 6 0");

	uint64_t n = rbd_ok(db, ra, LB_CASCADE, 2); /* 7: undoes 4, then 3 */
	assert_int_equal(n, 7);
	te_assert_get_s(db, "t", "k", "a");
	memset(&rs, 0, sizeof rs);
	te_changes(db, n, &rs);
	assert_int_equal(rs.n, 2);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "k", "b", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "k", NULL, "a");
	te_recs_free(&rs);
	assert_int_equal(te_info(db, ra).rolled_back_by, n);
	assert_int_equal(te_info(db, c).rolled_back_by, n);
	assert_int_equal(te_info(db, a).rolled_back_by, 0);
	assert_int_equal(te_info(db, to).rolled_back_by, 0);
	assert_marks(db, "0 0 7 7 6 0 0");
	verify_replay(db);
}

/* (c) 3 is undone strictly although 4 rewrote k with the same value (k
 * changed back is no conflict); the cascade of 2 then undoes 4, which
 * stands and changed k after 2, and skips 3, which does not stand. */
static void
test_engine_rollback__cascade_past_a_same_value_rewrite(void **state)
{
	lb_db *db = FX(state)->db;
	te_recs rs;

	uint64_t b = te_ops(db, "k=b"); /* 2 */
	uint64_t u = te_ops(db, "k=u"); /* 3 */
	te_ops(db, "k=u");              /* 4 */
	rbd_ok(db, u, 0, 1);            /* 5 */
	te_assert_get_s(db, "t", "k", "b");
	assert_marks(db, "0 0 5 0 0");

	uint64_t n = rbd_ok(db, b, LB_CASCADE, 2); /* 6: undoes 4, then 2 */
	te_assert_absent_s(db, "t", "k");
	memset(&rs, 0, sizeof rs);
	te_changes(db, n, &rs);
	assert_int_equal(rs.n, 2);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "k", "b", "u");
	te_assert_rec_s(&rs.v[1], LB_OP_DELETE, "t", "k", "u", NULL);
	te_recs_free(&rs);
	assert_marks(db, "0 6 5 6 0 0");
	verify_replay(db);
}

/* (d) undo, redo, undo again of 3: 3 is rolled back by 4 (standing again
 * once 5 is undone), so the cascade of 2 undoes 2 alone. */
static void test_engine_rollback__cascade_after_undo_redo_undo(void **state)
{
	lb_db *db = FX(state)->db;
	te_recs rs;

	uint64_t b = te_ops(db, "k=1");     /* 2 */
	uint64_t c = te_ops(db, "k=2");     /* 3 */
	uint64_t r4 = rbd_ok(db, c, 0, 1);  /* 4: k=1 */
	uint64_t r5 = rbd_ok(db, r4, 0, 1); /* 5: k=2, 3 stands */
	assert_marks(db, "0 0 0 5 0");
	rbd_ok(db, r5, 0, 1); /* 6: k=1, 4 stands */
	te_assert_get_s(db, "t", "k", "1");
	assert_marks(db, "0 0 4 0 6 0");

	uint64_t n = rbd_ok(db, b, LB_CASCADE, 1); /* 7: undoes 2 */
	te_assert_absent_s(db, "t", "k");
	memset(&rs, 0, sizeof rs);
	te_changes(db, n, &rs);
	assert_int_equal(rs.n, 1);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "k", "1", NULL);
	te_recs_free(&rs);
	assert_marks(db, "0 7 4 0 6 0 0");
	verify_replay(db);
}

/* (e) a rollback-to brings 3 back (it undoes 4, which undid 3): 3 stands
 * again, so the cascade of 2 undoes 3 too. */
static void test_engine_rollback__cascade_after_rollback_to_redid(void **state)
{
	lb_db *db = FX(state)->db;
	te_recs rs;

	uint64_t b = te_ops(db, "k=b"); /* 2 */
	uint64_t c = te_ops(db, "k=m"); /* 3 */
	rbd_ok(db, c, 0, 1);            /* 4: k=b */
	rbto_ok(db, c, 1);              /* 5: k=m, undoes 4 */
	te_assert_get_s(db, "t", "k", "m");
	assert_marks(db, "0 0 0 5 0");

	uint64_t n = rbd_ok(db, b, LB_CASCADE, 2); /* 6: undoes 3, then 2 */
	te_assert_absent_s(db, "t", "k");
	memset(&rs, 0, sizeof rs);
	te_changes(db, n, &rs);
	assert_int_equal(rs.n, 2);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "k", "m", "b");
	te_assert_rec_s(&rs.v[1], LB_OP_DELETE, "t", "k", "b", NULL);
	te_recs_free(&rs);
	assert_marks(db, "0 6 6 5 0 0");
	verify_replay(db);
}

/* (g) Rolling back a cascade batch: each batch it undid stands again, and
 * each can then be rolled back on its own, strictly, newest first. */
static void test_engine_rollback__undone_cascade_frees_each_batch(void **state)
{
	lb_db *db = FX(state)->db;
	te_recs rs;

	uint64_t b = te_ops(db, "k1=b");           /* 2 */
	uint64_t c = te_ops(db, "k1=c k2=c");      /* 3 */
	uint64_t d = te_ops(db, "k2=d k3=d");      /* 4 */
	uint64_t n = rbd_ok(db, b, LB_CASCADE, 5); /* 5 */
	assert_marks(db, "0 5 5 5 0");
	rbd_ok(db, n, 0, 5); /* 6 */
	assert_marks(db, "0 0 0 0 6 0");
	te_assert_get_s(db, "t", "k1", "c");

	uint64_t rd = rbd_ok(db, d, 0, 2); /* 7 */
	memset(&rs, 0, sizeof rs);
	te_changes(db, rd, &rs);
	assert_int_equal(rs.n, 2);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "k3", "d", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "k2", "d", "c");
	te_recs_free(&rs);
	te_assert_get_s(db, "t", "k2", "c");
	te_assert_absent_s(db, "t", "k3");
	assert_marks(db, "0 0 0 7 6 0 0");
	rbd_ok(db, c, 0, 2); /* 8 */
	rbd_ok(db, b, 0, 1); /* 9 */
	te_assert_absent_s(db, "t", "k1");
	te_assert_absent_s(db, "t", "k2");
	assert_marks(db, "0 9 8 7 6 0 0 0 0");
	verify_replay(db);
}

/* A cascade has no conflict check on keys: after a forced rollback of 2
 * left k absent, strictly undoing 3 conflicts, its cascade writes 3's
 * before-image. */
static void test_engine_rollback__cascade_meets_no_key_conflict(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;

	uint64_t b = te_ops(db, "k=1");          /* 2 */
	uint64_t c = te_ops(db, "k=2");          /* 3 */
	uint64_t f = rbd_ok(db, b, LB_FORCE, 1); /* 4: k absent */
	te_assert_absent_s(db, "t", "k");
	assert_marks(db, "0 4 0 0");

	rb_dry_real(db, c, 0, LB_ECONFLICT, &res);
	assert_int_equal(res.nissues, 1);
	assert_int_equal(issue_for(&res, "t", "k")->batch, f);
	lb_result_free(&res);

	uint64_t n = rbd_ok(db, c, LB_CASCADE, 1); /* 5: undoes 3 alone */
	te_assert_get_s(db, "t", "k", "1");
	te_recs rs;
	memset(&rs, 0, sizeof rs);
	te_changes(db, n, &rs);
	assert_int_equal(rs.n, 1);
	te_assert_rec_s(&rs.v[0], LB_OP_PUT, "t", "k", NULL, "1");
	te_recs_free(&rs);
	assert_marks(db, "0 4 5 0 0");
	verify_replay(db);
}

/* A cascade's DELETE restore of a key that is absent by then writes
 * nothing; the batch still undoes every batch of the cascade, and undoing
 * it puts back what it took away. */
static void
test_engine_rollback__cascade_deletes_an_absent_key_silently(void **state)
{
	lb_db *db = FX(state)->db;
	te_recs rs;

	uint64_t b = te_ops(db, "k=1"); /* 2 */
	uint64_t c = te_ops(db, "-k");  /* 3 */
	te_ops(db, "k=2");              /* 4 */
	rbd_ok(db, c, LB_FORCE, 1);     /* 5: k=1 */
	te_assert_get_s(db, "t", "k", "1");
	assert_marks(db, "0 0 5 0 0");

	/* C = {2, 4}: undoing 4 deletes k, undoing 2 finds it gone */
	uint64_t n = rbd_ok(db, b, LB_CASCADE, 1); /* 6 */
	te_assert_absent_s(db, "t", "k");
	memset(&rs, 0, sizeof rs);
	te_changes(db, n, &rs);
	assert_int_equal(rs.n, 1);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "k", "1", NULL);
	te_recs_free(&rs);
	assert_marks(db, "0 6 5 6 0 0");
	verify_replay(db);

	rbd_ok(db, n, 0, 1); /* 7 */
	te_assert_get_s(db, "t", "k", "1");
	assert_marks(db, "0 0 5 0 0 7 0");
	verify_replay(db);
}

/* ---- force --------------------------------------------------------------- */

static void
test_engine_rollback__force_restores_over_later_changes(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;

	te_ops(db, "k=0");
	uint64_t b = te_ops(db, "k=1");
	uint64_t c = te_ops(db, "k=2 j=5");
	rb(db, b, LB_FORCE, 0, &res);
	assert_int_equal(res.records, 1);
	uint64_t n = res.batch_id;
	lb_result_free(&res);
	te_assert_get_s(db, "t", "k", "0");
	te_assert_get_s(db, "t", "j", "5");
	assert_int_equal(te_info(db, b).rolled_back_by, n);
	assert_int_equal(te_info(db, c).rolled_back_by, 0);

	/* nothing left to restore (the key is gone already): no batch */
	uint64_t e = te_ops(db, "x=1");
	te_ops(db, "-x");
	uint64_t d = te_digest(db);
	rb(db, e, LB_FORCE, 0, &res);
	assert_int_equal(res.batch_id, 0);
	assert_int_equal(res.records, 0);
	lb_result_free(&res);
	assert_int_equal(te_digest(db), d);
	assert_int_equal(te_info(db, e).rolled_back_by, 0);
}

/* ---- foreign keys -------------------------------------------------------- */

static void test_engine_rollback__foreign_keys_hold(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res, dry;
	lb_batch *b;

	hg_create(db); /* batches 1..3 */
	b = hg_begin(db);
	te_rc(0, hg_insert_hearing(b, "h1"));
	uint64_t hb = hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w1", "h1"));
	uint64_t wb = hg_commit_ok(b);
	uint64_t d = te_digest(db);

	/* strict: h1 itself was not changed since, but a witness names it */
	rb(db, hb, 0, LB_EVALIDATION, &res);
	assert_int_equal(res.nissues, 1);
	hg_assert_issue(&res.issues[0], LB_ISSUE_FOREIGN_KEY, HG_HEARINGS, "h1",
	                NULL);
	assert_int_equal(res.issues[0].batch, wb); /* the referrer's batch */
	rb(db, hb, LB_DRYRUN, LB_EVALIDATION, &dry);
	assert_int_equal(dry.nissues, res.nissues);
	assert_int_equal(dry.issues[0].kind, res.issues[0].kind);
	assert_int_equal(dry.issues[0].batch, res.issues[0].batch);
	assert_int_equal(dry.records, 0);
	lb_result_free(&dry);
	lb_result_free(&res);

	/* force never leaves a dangling reference: refused the same way */
	rb(db, hb, LB_FORCE, LB_EVALIDATION, &res);
	assert_int_equal(res.nissues, 1);
	assert_int_equal(res.issues[0].kind, LB_ISSUE_FOREIGN_KEY);
	lb_result_free(&res);
	assert_int_equal(te_digest(db), d);
	assert_int_equal(te_info(db, hb).rolled_back_by, 0);

	/* cascade takes the witness's batch along */
	uint64_t n = rb_ok(db, hb, LB_CASCADE);
	te_assert_absent_s(db, HG_HEARINGS, "h1");
	te_assert_absent_s(db, HG_WITNESSES, "w1");
	assert_int_equal(te_info(db, hb).rolled_back_by, n);
	assert_int_equal(te_info(db, wb).rolled_back_by, n);
}

/* A referrer whose key is too long for its ikey (FORMAT.md §2.2): `_refs`
 * holds its hash, yet the referrer's batch is named and taken along. */
static void test_engine_rollback__foreign_keys_hold_long_referrer(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;
	lb_batch *b;
	char wk[LB_KEY_MAX + 1];
	memset(wk, 'w', LB_KEY_MAX);
	wk[LB_KEY_MAX] = 0;

	hg_create(db);
	b = hg_begin(db);
	te_rc(0, hg_insert_hearing(b, "h1"));
	uint64_t hb = hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, wk, "h1"));
	uint64_t wb = hg_commit_ok(b);
	b = hg_begin(db); /* a later batch of another key */
	te_rc(0, hg_insert_hearing(b, "h2"));
	hg_commit_ok(b);

	rb(db, hb, 0, LB_EVALIDATION, &res);
	assert_int_equal(res.nissues, 1);
	assert_int_equal(res.issues[0].kind, LB_ISSUE_FOREIGN_KEY);
	assert_int_equal(res.issues[0].batch, wb);
	lb_result_free(&res);

	uint64_t n = rb_ok(db, hb, LB_CASCADE);
	te_assert_absent_s(db, HG_HEARINGS, "h1");
	te_assert_absent_s(db, HG_WITNESSES, wk);
	assert_int_equal(te_info(db, hb).rolled_back_by, n);
	assert_int_equal(te_info(db, wb).rolled_back_by, n);
}

static void test_engine_rollback__reference_moved_elsewhere(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b;

	hg_create(db);
	b = hg_begin(db);
	te_rc(0, hg_insert_hearing(b, "h2"));
	hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_insert_hearing(b, "h1"));
	uint64_t hb = hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w1", "h1"));
	uint64_t c = hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w1", "h2"));
	uint64_t d = hg_commit_ok(b);
	/* nothing references h1 any more: plain rollback works */
	rb_ok(db, hb, 0);
	te_assert_absent_s(db, HG_HEARINGS, "h1");
	assert_int_equal(te_info(db, c).rolled_back_by, 0);
	assert_int_equal(te_info(db, d).rolled_back_by, 0);
}

/* ---- dry run ------------------------------------------------------------- */

static void test_engine_rollback__dry_run_writes_nothing(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result dry, real;

	uint64_t b = te_ops(db, "k1=1 k2=2 k3=3");
	uint64_t d = te_digest(db);
	rb(db, b, LB_DRYRUN, 0, &dry);
	assert_int_equal(dry.batch_id, 0);
	assert_int_equal(dry.records, 3);
	assert_int_equal(dry.nissues, 0);
	lb_result_free(&dry);
	rb(db, b, LB_FORCE | LB_DRYRUN, 0, &dry);
	assert_int_equal(dry.records, 3);
	lb_result_free(&dry);
	assert_int_equal(te_digest(db), d);
	assert_int_equal(te_info(db, b).rolled_back_by, 0);

	/* conflicts: the same issues as a real run */
	uint64_t c = te_ops(db, "k2=x k3=y");
	d = te_digest(db);
	rb(db, b, LB_DRYRUN, LB_ECONFLICT, &dry);
	rb(db, b, 0, LB_ECONFLICT, &real);
	assert_int_equal(dry.nissues, 2);
	assert_int_equal(dry.nissues, real.nissues);
	for (size_t i = 0; i < dry.nissues; i++) {
		assert_int_equal(dry.issues[i].kind, real.issues[i].kind);
		assert_int_equal(dry.issues[i].batch, c);
		assert_int_equal(dry.issues[i].klen, real.issues[i].klen);
		assert_memory_equal(dry.issues[i].key, real.issues[i].key,
		                    dry.issues[i].klen);
		assert_string_equal(dry.issues[i].message,
		                    real.issues[i].message);
	}
	lb_result_free(&dry);
	lb_result_free(&real);
	assert_int_equal(te_digest(db), d);

	/* then the real run writes exactly what the dry run announced */
	rb(db, b, LB_CASCADE | LB_DRYRUN, 0, &dry);
	rb(db, b, LB_CASCADE, 0, &real);
	assert_int_equal(dry.records, real.records);
	assert_int_equal(real.records, 5);
	assert_int_equal(real.batch_id, c + 1);
	lb_result_free(&dry);
	lb_result_free(&real);
}

/* ---- tables -------------------------------------------------------------- */

static const unsigned char opaque_schema[] = {0x95, 0x02, 0x00,
                                              0xc2, 0x90, 0xc0};

static void test_engine_rollback__table_creation(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;
	lb_batch *b;
	te_recs rs;

	te_rc(0, lb_table_create(db, "x", NULL)); /* 1 */
	te_rc(0, lb_table_create(db, "y", NULL)); /* 2 */
	te_put1(db, "y", "k", "v");               /* 3 */

	/* an empty table: its creation is undone, the table is gone */
	uint64_t r = rb_ok(db, 1, 0);
	assert_false(has_table(db, "x"));
	assert_true(has_table(db, "y"));
	te_rc(0, lb_batch_begin(db, NULL, &b));
	te_rc(LB_ENOTFOUND, lb_put(b, "x", "k", 1, "v", 1));
	lb_batch_abort(b);
	memset(&rs, 0, sizeof rs);
	te_changes(db, r, &rs);
	assert_int_equal(rs.n, 1);
	te_assert_rec(&rs.v[0], LB_OP_TABLE, "x", "x", 1, opaque_schema,
	              sizeof opaque_schema, NULL, 0);
	te_recs_free(&rs);
	assert_int_equal(te_info(db, 1).rolled_back_by, r);

	/* undoing that brings it back, empty and usable; batch 1 stands
	 * again */
	rb_ok(db, r, 0);
	assert_true(has_table(db, "x"));
	assert_int_equal(te_info(db, 1).rolled_back_by, 0);
	te_put1(db, "x", "k", "v");
	te_assert_get_s(db, "x", "k", "v");

	/* a table that holds records: a clear error, nothing written */
	uint64_t d = te_digest(db);
	rb(db, 2, 0, LB_EINVAL, &res);
	assert_contains(lb_errmsg(), "not empty");
	lb_result_free(&res);
	rb(db, 2, LB_FORCE, LB_EINVAL, &res);
	lb_result_free(&res);
	assert_int_equal(te_digest(db), d);
	assert_true(has_table(db, "y"));

	/* emptied by undoing what wrote into it, it can go */
	rb_ok(db, 3, 0);
	rb_ok(db, 2, 0);
	assert_false(has_table(db, "y"));
}

static void test_engine_rollback__referenced_table_stays(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;
	hg_create(db);
	uint64_t d = te_digest(db);
	rb(db, 1, 0, LB_EINVAL, &res);
	assert_contains(lb_errmsg(), "references");
	lb_result_free(&res);
	assert_int_equal(te_digest(db), d);
	assert_true(has_table(db, HG_HEARINGS));
	/* the referring tables first, then it */
	rb_ok(db, 3, 0);
	rb_ok(db, 2, 0);
	rb_ok(db, 1, 0);
	assert_false(has_table(db, HG_HEARINGS));
}

/* ---- rollback_to --------------------------------------------------------- */

static void test_engine_rollback__rollback_to_byte_for_byte(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;

	te_rc(0, lb_table_create(db, "u", NULL)); /* 2 */
	te_ops(db, "a=1 b=2 c=3 e=");             /* 3 */
	uint64_t x = te_put1(db, "u", "x", "1");  /* 4 */
	dumpbuf at_x = dump(db);

	uint64_t b1 = te_ops(db, "a=9 -b d=4");   /* 5 */
	uint64_t b2 = te_ops(db, "c=7 e=x");      /* 6 */
	uint64_t r1 = rb_ok(db, b2, 0);           /* 7 */
	te_rc(0, lb_table_create(db, "v", NULL)); /* 8 */
	te_put1(db, "v", "k", "v");               /* 9 */
	te_put1(db, "u", "y", "2");               /* 10 */
	te_ops(db, "a=10 f=6");                   /* 11 */
	uint64_t rx = rb_ok(db, x, 0);            /* 12: undoes batch x */
	uint64_t last = te_last(db);
	dumpbuf before = dump(db);

	te_rc(0, lb_rollback_to(db, x, &res));
	uint64_t n = res.batch_id;
	assert_int_equal(n, last + 1);
	assert_int_equal(res.rc, 0);
	lb_result_free(&res);
	dumpbuf now = dump(db);
	assert_dump_eq(&at_x, &now);
	free(now.p);
	assert_false(has_table(db, "v"));
	te_assert_get_s(db, "u", "x", "1");

	lb_batch_info bi = te_info(db, n);
	assert_string_equal(bi.label, "rollback to batch 4");
	assert_int_equal(bi.undoes, x);
	/* every batch after x is undone by n, standing or not (b2 was
	 * rolled back by r1); x stands again, as it stood right after x:
	 * rx, which undid it, is rolled back now */
	for (uint64_t id = x + 1; id <= last; id++)
		assert_int_equal(te_info(db, id).rolled_back_by, n);
	assert_int_equal(te_info(db, b1).rolled_back_by, n);
	assert_int_equal(te_info(db, b2).rolled_back_by, n);
	assert_int_equal(te_info(db, rx).rolled_back_by, n);
	assert_int_equal(te_info(db, x).rolled_back_by, 0);
	assert_int_equal(te_info(db, x - 1).rolled_back_by, 0);
	assert_marks(db, "0 0 0 0 13 13 13 13 13 13 13 13 0");

	/* net records: deletions (v's keys among them), the removal of v,
	 * then puts; deletions and puts in (table, key) order */
	te_recs rs;
	memset(&rs, 0, sizeof rs);
	te_changes(db, n, &rs);
	assert_int_equal(rs.n, 8);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "d", "4", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_DELETE, "t", "f", "6", NULL);
	te_assert_rec_s(&rs.v[2], LB_OP_DELETE, "u", "y", "2", NULL);
	te_assert_rec_s(&rs.v[3], LB_OP_DELETE, "v", "k", "v", NULL);
	te_assert_rec(&rs.v[4], LB_OP_TABLE, "v", "v", 1, opaque_schema,
	              sizeof opaque_schema, NULL, 0);
	te_assert_rec_s(&rs.v[5], LB_OP_PUT, "t", "a", "10", "1");
	te_assert_rec_s(&rs.v[6], LB_OP_PUT, "t", "b", NULL, "2");
	te_assert_rec_s(&rs.v[7], LB_OP_PUT, "u", "x", NULL, "1");
	te_recs_free(&rs);
	verify_replay(db);

	/* rolling the rollback_to back returns to where it started, marks
	 * included: b2 rolled back by r1 again, x by rx */
	rb_ok(db, n, 0);
	now = dump(db);
	assert_dump_eq(&before, &now);
	free(now.p);
	assert_true(has_table(db, "v"));
	assert_int_equal(te_info(db, b2).rolled_back_by, r1);
	assert_int_equal(te_info(db, x).rolled_back_by, rx);
	assert_marks(db, "0 0 0 12 0 7 0 0 0 0 0 0 14 0");
	verify_replay(db);
	free(before.p);
	free(at_x.p);
}

/* docs/ROLLBACK.md's example: batch 3, already rolled back by 4, is
 * undone by the rollback-to as well, and 6 is its greatest standing
 * undoer. */
static void
test_engine_rollback__rollback_to_undoes_every_later_batch(void **state)
{
	lb_db *db = FX(state)->db;
	te_recs rs;

	te_ops(db, "a=1 b=2");                 /* 2 */
	uint64_t c = te_ops(db, "a=9 -b d=4"); /* 3 */
	rbd_ok(db, c, 0, 3);                   /* 4 */
	te_ops(db, "a=10 f=6");                /* 5 */
	assert_marks(db, "0 0 4 0 0");
	uint64_t n = rbto_ok(db, 2, 2); /* 6 */
	assert_int_equal(n, 6);
	assert_string_equal(te_info(db, n).label, "rollback to batch 2");
	memset(&rs, 0, sizeof rs);
	te_changes(db, n, &rs);
	assert_int_equal(rs.n, 2);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "f", "6", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "a", "10", "1");
	te_recs_free(&rs);
	te_assert_get_s(db, "t", "a", "1");
	te_assert_get_s(db, "t", "b", "2");
	te_assert_absent_s(db, "t", "d");
	te_assert_absent_s(db, "t", "f");
	assert_marks(db, "0 0 6 6 6 0");
	verify_replay(db);
}

/* (f) The net records come deletions first, then puts, each in key order,
 * not in the order the keys were first changed after X (m, k, j). The
 * rollback-to to 3 that 8 crosses is undone with the rest. */
static void
test_engine_rollback__rollback_to_orders_records_by_key(void **state)
{
	lb_db *db = FX(state)->db;
	te_recs rs;

	uint64_t x = te_ops(db, "k=0 j=0"); /* 2 */
	te_ops(db, "m=1");                  /* 3 */
	te_ops(db, "k=1");                  /* 4 */
	rbto_ok(db, 3, 1);                  /* 5: k=0 */
	te_ops(db, "j=1");                  /* 6 */
	te_ops(db, "k=2");                  /* 7 */
	assert_marks(db, "0 0 0 5 0 0 0");
	dumpbuf before = dump(db);

	uint64_t n = rbto_ok(db, x, 3); /* 8 */
	memset(&rs, 0, sizeof rs);
	te_changes(db, n, &rs);
	assert_int_equal(rs.n, 3);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "m", "1", NULL);
	te_assert_rec_s(&rs.v[1], LB_OP_PUT, "t", "j", "1", "0");
	te_assert_rec_s(&rs.v[2], LB_OP_PUT, "t", "k", "2", "0");
	te_recs_free(&rs);
	te_assert_get_s(db, "t", "k", "0");
	te_assert_get_s(db, "t", "j", "0");
	te_assert_absent_s(db, "t", "m");
	assert_marks(db, "0 0 8 8 8 8 8 0");
	verify_replay(db);

	/* undone, it puts back the state and the marks it found */
	rbd_ok(db, n, 0, 3); /* 9 */
	dumpbuf now = dump(db);
	assert_dump_eq(&before, &now);
	free(now.p);
	free(before.p);
	assert_marks(db, "0 0 0 5 0 0 0 9 0");
	verify_replay(db);
}

static void test_engine_rollback__rollback_to_edges(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;

	te_ops(db, "a=1");
	uint64_t last = te_last(db), d = te_digest(db);
	/* to the last batch: nothing to do */
	te_rc(0, lb_rollback_to(db, last, &res));
	assert_int_equal(res.rc, 0);
	assert_int_equal(res.batch_id, 0);
	assert_int_equal(res.records, 0);
	lb_result_free(&res);
	te_rc(LB_ENOTFOUND, lb_rollback_to(db, last + 1, &res));
	assert_int_equal(res.rc, LB_ENOTFOUND);
	lb_result_free(&res);
	te_rc(LB_EINVAL, lb_rollback_to(NULL, 1, &res));
	lb_result_free(&res);
	assert_int_equal(te_digest(db), d);

	/* to 0: every table and record goes, keys first */
	te_rc(0, lb_rollback_to(db, 0, NULL));
	assert_false(has_table(db, "t"));
	assert_int_equal(te_info(db, last + 1).undoes, 0);
	assert_string_equal(te_info(db, last + 1).label, "rollback to batch 0");
	assert_int_equal(te_info(db, 1).rolled_back_by, last + 1);
	assert_marks(db, "3 3 0");
	te_recs rs;
	memset(&rs, 0, sizeof rs);
	te_changes(db, last + 1, &rs);
	assert_int_equal(rs.n, 2);
	te_assert_rec_s(&rs.v[0], LB_OP_DELETE, "t", "a", "1", NULL);
	te_assert_rec(&rs.v[1], LB_OP_TABLE, "t", "t", 1, opaque_schema,
	              sizeof opaque_schema, NULL, 0);
	te_recs_free(&rs);
	verify_replay(db);
}

/* Nested rollback_to batches stay small: each holds one record per key
 * that differs, not the records of the rollback_to batches it crosses. */
static void test_engine_rollback__rollback_to_nested_stays_small(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;
	char spec[64];
	uint64_t x0 = te_last(db);
	dumpbuf at0 = dump(db);

	for (int round = 0; round < 12; round++) {
		for (int i = 0; i < 4; i++) {
			snprintf(spec, sizeof spec, "k%d=%d k%d=%d", i,
			         round * 10 + i, (i + round) % 6, round);
			te_ops(db, spec);
		}
		uint64_t last = te_last(db);
		te_rc(0, lb_rollback_to(db, last - 3 - (round % 3), &res));
		assert_true(res.records <= 6); /* k0..k5 */
		lb_result_free(&res);
	}
	te_rc(0, lb_rollback_to(db, x0, &res));
	assert_true(res.records <= 6);
	lb_result_free(&res);
	dumpbuf now = dump(db);
	assert_dump_eq(&at0, &now);
	free(now.p);
	free(at0.p);
}

/* ---- large batches ------------------------------------------------------- */

static void large_batch(int compression)
{
	lb_options o;
	lb_db *db;
	lb_batch *b = NULL;
	te_recs before, undo;
	char k[16], v[32], *dir = th_tmpdir();
	unsigned char exists[1000];

	lb_options_init(&o);
	o.flags = LB_CREATE | LB_NOSYNC;
	o.segment_size = 1024;
	o.compression = compression;
	db = te_open_opts(dir, &o);
	te_rc(0, lb_table_create(db, "t", NULL));
	te_ops(db, "k00001=old k00002=old");
	memset(exists, 0, sizeof exists);
	exists[1] = exists[2] = 1;
	dumpbuf d0 = dump(db);
	te_rc(0, lb_batch_begin(db, "big", &b));
	for (int i = 0; i < 3000; i++) {
		int key = (i * 7) % 1000;
		snprintf(k, sizeof k, "k%05d", key);
		snprintf(v, sizeof v, "value %d", i);
		if (i % 11 == 5 && exists[key]) {
			te_rc(0, lb_delete(b, "t", k, strlen(k)));
			exists[key] = 0;
		} else {
			te_rc(0, lb_put(b, "t", k, strlen(k), v, strlen(v)));
			exists[key] = 1;
		}
	}
	te_rc(0, lb_batch_commit(b, NULL));
	uint64_t big = te_last(db);
	assert_true(te_info(db, big).segments > 10);
	uint64_t r = rb_ok(db, big, 0);
	assert_true(te_info(db, r).segments > 10);
	dumpbuf now = dump(db);
	assert_dump_eq(&d0, &now);
	free(now.p);
	free(d0.p);

	/* record i of the rollback undoes record n-1-i of the batch */
	memset(&before, 0, sizeof before);
	memset(&undo, 0, sizeof undo);
	te_changes(db, big, &before);
	te_changes(db, r, &undo);
	assert_int_equal(undo.n, before.n);
	for (size_t i = 0; i < undo.n; i++) {
		const te_rec *u = &undo.v[i], *o2 = &before.v[before.n - 1 - i];
		assert_int_equal(u->klen, o2->klen);
		assert_memory_equal(u->key, o2->key, u->klen);
		assert_int_equal(u->has_after, o2->has_before);
		assert_int_equal(u->alen, o2->blen);
		if (u->alen)
			assert_memory_equal(u->after, o2->before, u->alen);
		assert_int_equal(u->has_before, o2->has_after);
		assert_int_equal(u->blen, o2->alen);
		if (u->blen)
			assert_memory_equal(u->before, o2->after, u->blen);
	}
	te_recs_free(&before);
	te_recs_free(&undo);
	lb_close(db);
	th_rmrf(dir);
	free(dir);
}

/* A key's history as "batch:before>after" words, newest batch first, each
 * batch's records in log order ("-" for absent). */
typedef struct histbuf {
	char s[512];
} histbuf;

static int hist_word(void *ctx, uint64_t batch, const lb_change *c)
{
	histbuf *h = ctx;
	size_t n = strlen(h->s);
	assert_non_null(c);
	assert_int_equal(c->op, c->has_after ? LB_OP_PUT : LB_OP_DELETE);
	snprintf(h->s + n, sizeof h->s - n, "%s%llu:%.*s>%.*s", n ? " " : "",
	         (unsigned long long)batch, c->has_before ? (int)c->blen : 1,
	         c->has_before ? (const char *)c->before : "-",
	         c->has_after ? (int)c->alen : 1,
	         c->has_after ? (const char *)c->after : "-");
	return 0;
}

static void assert_history(lb_db *db, const char *key, const char *want)
{
	histbuf h = {{0}};
	te_rc(0, lb_history(db, "t", key, strlen(key), hist_word, &h));
	assert_string_equal(h.s, want);
}

/* Every kind of undoing batch is in the history of each key it changed:
 * strict and cascading ones (whose history the index implies from the
 * batches they undo), a redo of one, a forced one and a rollback_to (whose
 * history is listed); the same after reopening and in a replay, which
 * verifies against the database. */
static void test_engine_rollback__history_lists_undoing_batches(void **state)
{
	te_fx *fx = FX(state);
	lb_db *db = fx->db;
	lb_result res;

	uint64_t b2 = te_ops(db, "a=1 b=1");     /* 2 */
	uint64_t b3 = te_ops(db, "a=2 c=3");     /* 3 */
	uint64_t r4 = rb_ok(db, b3, 0);          /* 4: strict */
	uint64_t r5 = rb_ok(db, r4, 0);          /* 5: redoes 3 */
	uint64_t b6 = te_ops(db, "b=6");         /* 6 */
	uint64_t f7 = rb_ok(db, b6, LB_FORCE);   /* 7: forced */
	uint64_t b8 = te_ops(db, "a=8");         /* 8 */
	uint64_t c9 = rb_ok(db, b2, LB_CASCADE); /* 9: undoes 8, 3, 2 */
	assert_int_equal(r4, 4);
	assert_int_equal(r5, 5);
	assert_int_equal(f7, 7);
	assert_int_equal(c9, 9);
	assert_int_equal(te_info(db, b8).rolled_back_by, c9);
	assert_int_equal(te_info(db, b3).rolled_back_by, c9);
	assert_int_equal(te_info(db, b2).rolled_back_by, c9);
	assert_int_equal(te_info(db, r5).rolled_back_by, 0);
	assert_marks(db, "0 9 9 5 0 7 0 9 0");
	te_rc(0, lb_rollback_to(db, r5, &res)); /* 10: undoes 6 to 9 */
	assert_int_equal(res.batch_id, 10);
	lb_result_free(&res);
	te_assert_get_s(db, "t", "a", "2");
	te_assert_get_s(db, "t", "b", "1");
	te_assert_get_s(db, "t", "c", "3");
	/* 2 and 3 stand again, as they stood right after 5 */
	assert_marks(db, "0 0 0 5 0 10 10 10 10 0");

	const char *ha = "10:->2 9:8>2 9:2>1 9:1>- 8:2>8 5:1>2 4:2>1 3:1>2 "
	                 "2:->1";
	const char *hb = "10:->1 9:1>- 7:6>1 6:1>6 2:->1";
	const char *hc = "10:->3 9:3>- 5:->3 4:3>- 3:->3";
	for (int round = 0; round < 2; round++) {
		assert_history(db, "a", ha);
		assert_history(db, "b", hb);
		assert_history(db, "c", hc);
		lb_close(db);
		db = fx->db = te_open(fx->dir, LB_NOSYNC);
	}
	lb_verify_report rep;
	te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.replay_ok);

	/* a replay holds the same history, and it, too, verifies */
	char *dest = th_path(fx->dir, "replayed");
	te_rc(0, lb_replay(db, dest, 0, NULL, &res));
	lb_result_free(&res);
	lb_db *r = te_open(dest, LB_NOSYNC);
	assert_marks(r, "0 0 0 5 0 10 10 10 10 0");
	assert_history(r, "a", ha);
	assert_history(r, "b", hb);
	assert_history(r, "c", hc);
	te_rc(0, lb_verify(r, LB_VERIFY_REPLAY, &rep));
	/* and a replay that stops before the cascade: 9 is not there, so
	 * 8, 3 and 2 stand, and their histories end with 8 */
	lb_close(r);
	th_rmrf(dest);
	te_rc(0, lb_replay(db, dest, b8, NULL, &res));
	lb_result_free(&res);
	r = te_open(dest, LB_NOSYNC);
	assert_int_equal(te_info(r, b2).rolled_back_by, 0);
	assert_int_equal(te_info(r, b3).rolled_back_by, 0);
	assert_int_equal(te_info(r, r4).rolled_back_by, r5);
	assert_marks(r, "0 0 0 5 0 7 0 0");
	assert_history(r, "a", "8:2>8 5:1>2 4:2>1 3:1>2 2:->1");
	assert_history(r, "c", "5:->3 4:3>- 3:->3");
	te_rc(0, lb_verify(r, LB_VERIFY_REPLAY, &rep));
	lb_close(r);
	th_rmrf(dest);
	free(dest);
}

static void test_engine_rollback__large_batch_many_segments(void **state)
{
	(void)state;
	large_batch(-1); /* zlib segments */
	large_batch(0);  /* stored segments */
}

/* ---- errors -------------------------------------------------------------- */

static void refused(lb_db *db, uint64_t id, unsigned flags, int want,
                    const char *msg)
{
	lb_result res;
	uint64_t d = te_digest(db), last = te_last(db);
	memset(&res, 0xa5, sizeof res);
	te_rc(want, lb_rollback(db, id, flags, &res));
	assert_int_equal(res.rc, want);
	assert_int_equal(res.batch_id, 0);
	assert_int_equal(res.records, 0);
	assert_int_equal(res.nissues, 0);
	if (msg)
		assert_contains(lb_errmsg(), msg);
	lb_result_free(&res);
	te_rc(want, lb_rollback(db, id, flags, NULL));
	assert_int_equal(te_digest(db), d);
	assert_int_equal(te_last(db), last);
}

static void test_engine_rollback__errors_write_nothing(void **state)
{
	te_fx *fx = FX(state);
	lb_result res;
	uint64_t b = te_ops(fx->db, "k=1");
	uint64_t r = rb_ok(fx->db, b, 0);

	refused(fx->db, 0, 0, LB_ENOTFOUND, "batch 0");
	refused(fx->db, r + 1, 0, LB_ENOTFOUND, "no batch 4");
	refused(fx->db, 1000, LB_CASCADE, LB_ENOTFOUND, NULL);
	refused(fx->db, b, 0, LB_EINVAL, "batch 3");
	refused(fx->db, b, LB_FORCE | LB_DRYRUN, LB_EINVAL, "batch 3");
	refused(fx->db, r, 8u, LB_EINVAL, "flags");
	refused(fx->db, r, LB_CASCADE | LB_FORCE, LB_EINVAL, "LB_FORCE");
	te_rc(LB_EINVAL, lb_rollback(NULL, 1, 0, &res));
	assert_int_equal(res.rc, LB_EINVAL);
	lb_result_free(&res);

	/* a read-only database refuses, naming the reason */
	lb_close(fx->db);
	fx->db = te_open(fx->dir, LB_RDONLY);
	refused(fx->db, r, 0, LB_EINVAL, "read-only");
	te_rc(LB_EINVAL, lb_rollback_to(fx->db, 1, NULL));
}

static void test_engine_rollback__pruned_batches(void **state)
{
	te_fx *fx = FX(state);
	lb_result res;
	char *base = th_tmpdir(), *ck = th_path(base, "ck");
	te_ops(fx->db, "k=1");
	te_ops(fx->db, "k=2");
	te_rc(0, lb_checkpoint(fx->db, ck, NULL));
	te_ops(fx->db, "k=3");
	te_rc(0, lb_prune(fx->db, 3));
	uint64_t d = te_digest(fx->db);
	te_rc(LB_EPRUNED, lb_rollback(fx->db, 2, 0, &res));
	assert_int_equal(res.rc, LB_EPRUNED);
	lb_result_free(&res);
	te_rc(LB_EPRUNED, lb_rollback(fx->db, 2, LB_CASCADE, &res));
	lb_result_free(&res);
	te_rc(LB_EPRUNED, lb_rollback_to(fx->db, 1, &res));
	lb_result_free(&res);
	assert_int_equal(te_digest(fx->db), d);
	/* later batches still roll back */
	rb_ok(fx->db, 4, 0);
	te_assert_get_s(fx->db, "t", "k", "2");
	th_rmrf(base);
	free(base);
	free(ck);
}

/* res->undone names the batches a rollback undoes (or, on a dry run,
 * would), newest first, in every mode; lb_rollback_to_ex's dry run answers
 * as the real call does and writes nothing. */
static void test_engine_rollback__result_names_undone_batches(void **state)
{
	lb_db *db = FX(state)->db;
	lb_result res;
	te_ops(db, "k=1");     /* 2 */
	te_ops(db, "j=1");     /* 3 */
	te_ops(db, "k=2");     /* 4 */
	te_ops(db, "j=2 k=3"); /* 5 */
	te_rc(0, lb_rollback(db, 3, LB_CASCADE | LB_DRYRUN, &res));
	assert_int_equal(res.batch_id, 0);
	assert_int_equal(res.nundone, 2);
	assert_int_equal(res.undone[0], 5);
	assert_int_equal(res.undone[1], 3);
	lb_result_free(&res);
	te_rc(0, lb_rollback(db, 3, LB_CASCADE, &res)); /* 6 */
	assert_int_equal(res.batch_id, 6);
	assert_int_equal(res.nundone, 2);
	assert_int_equal(res.undone[0], 5);
	assert_int_equal(res.undone[1], 3);
	lb_result_free(&res);
	assert_null(res.undone);
	te_rc(0, lb_rollback(db, 4, 0, &res)); /* 7 */
	assert_int_equal(res.nundone, 1);
	assert_int_equal(res.undone[0], 4);
	lb_result_free(&res);
	/* a refusal names nothing */
	te_rc(LB_EINVAL, lb_rollback(db, 4, 0, &res));
	assert_null(res.undone);
	lb_result_free(&res);
	uint64_t d = te_digest(db);
	lb_result dry;
	/* k="1" now, as right after batch 2: going back there writes
	 * nothing and undoes nothing */
	te_rc(0, lb_rollback_to_ex(db, 2, 0, &res));
	assert_int_equal(res.batch_id, 0);
	assert_null(res.undone);
	lb_result_free(&res);
	te_rc(0, lb_rollback_to_ex(db, 1, LB_DRYRUN, &dry));
	assert_int_equal(dry.batch_id, 0);
	assert_int_equal(dry.records, 1);
	assert_int_equal(te_digest(db), d);
	assert_int_equal(te_last(db), 7);
	te_rc(0, lb_rollback_to_ex(db, 1, 0, &res)); /* 8 */
	assert_int_equal(res.batch_id, 8);
	assert_int_equal(dry.records, res.records);
	assert_int_equal(dry.nundone, 6);
	assert_int_equal(res.nundone, 6);
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(res.undone[i], 7 - i);
		assert_int_equal(dry.undone[i], res.undone[i]);
	}
	lb_result_free(&res);
	lb_result_free(&dry);
	te_rc(LB_EINVAL, lb_rollback_to_ex(db, 2, LB_CASCADE, &res));
	lb_result_free(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, te_setup_t, te_teardown)
#define E(name) cmocka_unit_test_setup_teardown(name, te_setup, te_teardown)
	        T(test_engine_rollback__restores_before_images),
	        T(test_engine_rollback__same_key_many_times),
	        T(test_engine_rollback__rollback_of_rollback_redoes),
	        T(test_engine_rollback__persists_across_reopen),
	        T(test_engine_rollback__conflicts_name_the_later_batch),
	        T(test_engine_rollback__key_changed_often_reported_once),
	        T(test_engine_rollback__changed_back_is_no_conflict),
	        T(test_engine_rollback__conflicts_capped_but_counted),
	        T(test_engine_rollback__cascade_transitive_chain),
	        T(test_engine_rollback__cascade_skips_undone_batches),
	        T(test_engine_rollback__cascade_follows_a_redo),
	        T(test_engine_rollback__cascade_without_later_batches),
	        T(test_engine_rollback__cascade_never_redoes_an_undone_batch),
	        T(test_engine_rollback__cascade_of_an_undo_batch),
	        T(test_engine_rollback__cascade_past_a_same_value_rewrite),
	        T(test_engine_rollback__cascade_after_undo_redo_undo),
	        T(test_engine_rollback__cascade_after_rollback_to_redid),
	        T(test_engine_rollback__undone_cascade_frees_each_batch),
	        T(test_engine_rollback__cascade_meets_no_key_conflict),
	        T(test_engine_rollback__cascade_deletes_an_absent_key_silently),
	        T(test_engine_rollback__force_restores_over_later_changes),
	        E(test_engine_rollback__foreign_keys_hold),
	        E(test_engine_rollback__foreign_keys_hold_long_referrer),
	        E(test_engine_rollback__reference_moved_elsewhere),
	        T(test_engine_rollback__dry_run_writes_nothing),
	        E(test_engine_rollback__table_creation),
	        E(test_engine_rollback__referenced_table_stays),
	        T(test_engine_rollback__rollback_to_byte_for_byte),
	        T(test_engine_rollback__rollback_to_undoes_every_later_batch),
	        T(test_engine_rollback__rollback_to_orders_records_by_key),
	        T(test_engine_rollback__rollback_to_edges),
	        T(test_engine_rollback__rollback_to_nested_stays_small),
	        T(test_engine_rollback__history_lists_undoing_batches),
	        E(test_engine_rollback__large_batch_many_segments),
	        T(test_engine_rollback__errors_write_nothing),
	        T(test_engine_rollback__pruned_batches),
	        T(test_engine_rollback__result_names_undone_batches),
#undef T
#undef E
	};
	return cmocka_run_group_tests_name("engine_rollback", tests, NULL,
	                                   NULL);
}
