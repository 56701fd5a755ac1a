/* SPDX-License-Identifier: MIT */
/*
 * Reads: lb_get() copies, snapshots (isolation from later commits, pointer
 * stability), cursors (byte order with shorter keys first, seek semantics,
 * end of table, isolation) compared against a sorted model.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FX(state) ((te_fx *)*(state))

static lb_snapshot *snap(lb_db *db)
{
	lb_snapshot *s = NULL;
	te_rc(0, lb_snapshot_open(db, &s));
	assert_non_null(s);
	return s;
}

static lb_cursor *cur(lb_snapshot *s, const char *table)
{
	lb_cursor *c = NULL;
	te_rc(0, lb_cursor_open(s, table, &c));
	assert_non_null(c);
	return c;
}

/* Assert that the snapshot reads table/key as val (NULL = absent). */
static void snap_expect(lb_snapshot *s, const char *table, const char *key,
                        const char *val)
{
	const void *v = (const void *)1;
	size_t vl = 12345;
	if (!val) {
		te_rc(LB_ENOTFOUND,
		      lb_snapshot_get(s, table, key, strlen(key), &v, &vl));
		assert_null(v);
		return;
	}
	te_rc(0, lb_snapshot_get(s, table, key, strlen(key), &v, &vl));
	assert_int_equal(vl, strlen(val));
	assert_memory_equal(v, val, vl);
}

/* Assert the next cursor entry is key/val (strings). */
static void next_expect(lb_cursor *c, const void *key, size_t klen,
                        const char *val)
{
	const void *k, *v;
	size_t kl, vl;
	te_rc(0, lb_cursor_next(c, &k, &kl, &v, &vl));
	assert_int_equal(kl, klen);
	assert_memory_equal(k, key, klen);
	if (val) {
		assert_int_equal(vl, strlen(val));
		assert_memory_equal(v, val, vl);
	}
}

static void next_end(lb_cursor *c)
{
	const void *k, *v;
	size_t kl, vl;
	te_rc(LB_ENOTFOUND, lb_cursor_next(c, &k, &kl, &v, &vl));
}

static void test_engine_read__get_returns_private_copy(void **state)
{
	lb_db *db = FX(state)->db;
	void *v = NULL;
	size_t vl = 0;

	te_put1(db, "t", "k", "value");
	te_rc(0, lb_get(db, "t", "k", 1, &v, &vl));
	assert_int_equal(vl, 5);
	assert_memory_equal(v, "value", 5);
	memset(v, 'X', vl); /* ours to scribble on */
	free(v);
	te_assert_get_s(db, "t", "k", "value");

	/* An empty value reads back as length 0; free() of whatever is
	 * returned is allowed. */
	te_put1n(db, "t", "e", 1, "", 0);
	v = (void *)1;
	vl = 99;
	te_rc(0, lb_get(db, "t", "e", 1, &v, &vl));
	assert_int_equal(vl, 0);
	free(v);
}

static void test_engine_read__get_missing(void **state)
{
	lb_db *db = FX(state)->db;
	void *v = (void *)1;
	size_t vl;

	te_rc(LB_ENOTFOUND, lb_get(db, "t", "nope", 4, &v, &vl));
	assert_null(v);
	v = (void *)1;
	te_rc(LB_ENOTFOUND, lb_get(db, "no-such-table", "k", 1, &v, &vl));
	assert_null(v);

	/* Deleted keys are gone; a prefix of a key is another key. */
	te_put1(db, "t", "abc", "1");
	te_assert_absent_s(db, "t", "ab");
	te_assert_absent_s(db, "t", "abcd");
	te_del1(db, "t", "abc");
	te_assert_absent_s(db, "t", "abc");
}

static void test_engine_read__snapshot_isolated_from_commits(void **state)
{
	lb_db *db = FX(state)->db;
	lb_snapshot *s1, *s2;
	lb_batch *b = NULL;

	te_put1(db, "t", "upd", "old");
	te_put1(db, "t", "del", "here");
	s1 = snap(db);

	b = NULL;
	te_rc(0, lb_batch_begin(db, NULL, &b));
	te_rc(0, lb_put(b, "t", "upd", 3, "new", 3));
	te_rc(0, lb_delete(b, "t", "del", 3));
	te_rc(0, lb_put(b, "t", "add", 3, "fresh", 5));
	/* An open batch is invisible to snapshots. */
	snap_expect(s1, "t", "upd", "old");
	s2 = snap(db);
	snap_expect(s2, "t", "add", NULL);
	lb_snapshot_close(s2);
	te_rc(0, lb_batch_commit(b, NULL));

	/* The old snapshot still sees the state it was opened on. */
	snap_expect(s1, "t", "upd", "old");
	snap_expect(s1, "t", "del", "here");
	snap_expect(s1, "t", "add", NULL);

	/* A new snapshot and lb_get see the commit. */
	s2 = snap(db);
	snap_expect(s2, "t", "upd", "new");
	snap_expect(s2, "t", "del", NULL);
	snap_expect(s2, "t", "add", "fresh");
	te_assert_get_s(db, "t", "upd", "new");
	te_assert_absent_s(db, "t", "del");

	/* Tables created later are unknown to the old snapshot. */
	te_rc(0, lb_table_create(db, "later", NULL));
	te_put1(db, "later", "k", "v");
	{
		const void *v;
		size_t vl;
		lb_cursor *c = (lb_cursor *)1;
		te_rc(LB_ENOTFOUND,
		      lb_snapshot_get(s1, "later", "k", 1, &v, &vl));
		te_rc(LB_ENOTFOUND, lb_cursor_open(s1, "later", &c));
		assert_null(c);
	}
	lb_snapshot_close(s1);
	lb_snapshot_close(s2);
}

static void test_engine_read__snapshot_pointers_stable(void **state)
{
	lb_db *db = FX(state)->db;
	lb_snapshot *s;
	const void *v;
	size_t vl;
	int i;

	te_put1(db, "t", "k", "first value, kept stable");
	s = snap(db);
	te_rc(0, lb_snapshot_get(s, "t", "k", 1, &v, &vl));
	/* Later commits overwrite and delete the key many times over;
	 * pages the snapshot uses must not be reused meanwhile. */
	for (i = 0; i < 200; i++) {
		char val[64];
		snprintf(val, sizeof val, "overwrite %d ...................",
		         i);
		te_put1(db, "t", "k", val);
		if (i % 50 == 49)
			te_del1(db, "t", "k");
	}
	assert_int_equal(vl, strlen("first value, kept stable"));
	assert_memory_equal(v, "first value, kept stable", vl);
	lb_snapshot_close(s);
}

static void test_engine_read__cursor_byte_order(void **state)
{
	lb_db *db = FX(state)->db;
	/* Inserted out of order; the expected walk is memcmp order with
	 * shorter keys first on a common prefix. */
	static const struct {
		const char *k;
		size_t kl;
	} in[] = {{"b", 1},   {"a\0", 2},      {"ab", 2},   {"\xff", 1},
	          {"a", 1},   {"\x00", 1},     {"aa", 2},   {"B", 1},
	          {"abc", 3}, {"\x7f\x80", 2}, {"\x80", 1}, {"\0\0", 2}},
	  want[] = {{"\0", 1},  {"\0\0", 2},     {"B", 1},    {"a", 1},
	            {"a\0", 2}, {"aa", 2},       {"ab", 2},   {"abc", 3},
	            {"b", 1},   {"\x7f\x80", 2}, {"\x80", 1}, {"\xff", 1}};
	size_t n = sizeof in / sizeof in[0], i;
	lb_batch *b = NULL;
	lb_snapshot *s;
	lb_cursor *c;

	te_rc(0, lb_batch_begin(db, NULL, &b));
	for (i = 0; i < n; i++) {
		char v[8];
		snprintf(v, sizeof v, "v%zu", i);
		te_rc(0, lb_put(b, "t", in[i].k, in[i].kl, v, strlen(v)));
	}
	te_rc(0, lb_batch_commit(b, NULL));

	s = snap(db);
	c = cur(s, "t");
	for (i = 0; i < n; i++)
		next_expect(c, want[i].k, want[i].kl, NULL);
	next_end(c);
	next_end(c); /* the end stays the end */
	lb_cursor_close(c);
	lb_snapshot_close(s);
}

static void test_engine_read__cursor_seek(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch *b = NULL;
	lb_snapshot *s;
	lb_cursor *c;

	te_rc(0, lb_batch_begin(db, NULL, &b));
	te_rc(0, lb_put(b, "t", "b", 1, "vb", 2));
	te_rc(0, lb_put(b, "t", "bb", 2, "vbb", 3));
	te_rc(0, lb_put(b, "t", "d", 1, "vd", 2));
	te_rc(0, lb_put(b, "t", "f", 1, "vf", 2));
	te_rc(0, lb_batch_commit(b, NULL));

	s = snap(db);
	c = cur(s, "t");
	/* exact key */
	te_rc(0, lb_cursor_seek(c, "d", 1));
	next_expect(c, "d", 1, "vd");
	next_expect(c, "f", 1, "vf");
	next_end(c);
	/* between keys: the next greater one; a prefix comes first */
	te_rc(0, lb_cursor_seek(c, "c", 1));
	next_expect(c, "d", 1, "vd");
	te_rc(0, lb_cursor_seek(c, "b\x01", 2));
	next_expect(c, "bb", 2, "vbb");
	te_rc(0, lb_cursor_seek(c, "ba", 2));
	next_expect(c, "bb", 2, "vbb");
	te_rc(0, lb_cursor_seek(c, "bbb", 3));
	next_expect(c, "d", 1, "vd");
	/* before the first key */
	te_rc(0, lb_cursor_seek(c, "A", 1));
	next_expect(c, "b", 1, "vb");
	/* past the last key */
	te_rc(0, lb_cursor_seek(c, "g", 1));
	next_end(c);
	te_rc(0, lb_cursor_seek(c, "\xff\xff", 2));
	next_end(c);
	/* klen 0 rewinds to the first key, also after reaching the end */
	te_rc(0, lb_cursor_seek(c, NULL, 0));
	next_expect(c, "b", 1, "vb");
	next_expect(c, "bb", 2, "vbb");
	te_rc(0, lb_cursor_seek(c, "", 0));
	next_expect(c, "b", 1, "vb");
	lb_cursor_close(c);

	/* A fresh cursor starts before the first key. */
	c = cur(s, "t");
	next_expect(c, "b", 1, "vb");
	lb_cursor_close(c);
	lb_snapshot_close(s);
}

static void test_engine_read__cursor_empty_and_unknown_table(void **state)
{
	lb_db *db = FX(state)->db;
	lb_snapshot *s = snap(db);
	lb_cursor *c = (lb_cursor *)1;

	c = cur(s, "t");
	next_end(c);
	te_rc(0, lb_cursor_seek(c, "x", 1));
	next_end(c);
	lb_cursor_close(c);

	c = (lb_cursor *)1;
	te_rc(LB_ENOTFOUND, lb_cursor_open(s, "nope", &c));
	assert_null(c);
	lb_snapshot_close(s);
}

static void test_engine_read__cursor_isolated_and_per_table(void **state)
{
	lb_db *db = FX(state)->db;
	lb_snapshot *s;
	lb_cursor *ct, *cu;

	te_rc(0, lb_table_create(db, "u", NULL));
	/* "t" sorts right before "u": the tables' key ranges must not
	 * bleed into each other. */
	te_put1(db, "t", "k1", "t1");
	te_put1(db, "t", "k2", "t2");
	te_put1(db, "u", "k0", "u0");
	te_put1(db, "u", "k3", "u3");
	s = snap(db);
	te_put1(db, "t", "k15", "later");
	te_del1(db, "t", "k2");

	ct = cur(s, "t");
	cu = cur(s, "u");
	next_expect(ct, "k1", 2, "t1");
	next_expect(cu, "k0", 2, "u0");
	next_expect(ct, "k2", 2, "t2");
	next_end(ct);
	next_expect(cu, "k3", 2, "u3");
	next_end(cu);
	lb_cursor_close(ct);
	lb_cursor_close(cu);
	lb_snapshot_close(s);

	s = snap(db);
	ct = cur(s, "t");
	next_expect(ct, "k1", 2, "t1");
	next_expect(ct, "k15", 3, "later");
	next_end(ct);
	lb_cursor_close(ct);
	lb_snapshot_close(s);
}

/* Model for the randomized walk: keys as (len, bytes), sorted by memcmp
 * then length. */
struct mkey {
	unsigned char k[24];
	size_t kl;
};

static const unsigned char alphabet[] = {0x00, 0x01, 'a', 'b', 0xfe, 0xff};

static int mkey_cmp(const void *a, const void *b)
{
	const struct mkey *x = a, *y = b;
	size_t n = x->kl < y->kl ? x->kl : y->kl;
	int c = memcmp(x->k, y->k, n);
	if (c)
		return c;
	return (x->kl > y->kl) - (x->kl < y->kl);
}

static void test_engine_read__cursor_matches_model(void **state)
{
	lb_db *db = FX(state)->db;
	uint64_t rng = th_seed(20240601);
	size_t n = 3000, i, m = 0;
	struct mkey *keys = te_malloc(n * sizeof *keys);
	lb_batch *b = NULL;
	lb_snapshot *s;
	lb_cursor *c;
	const void *k, *v;
	size_t kl, vl;

	/* Short keys over a small alphabet give many shared prefixes and
	 * some duplicates (the last put wins). */
	te_rc(0, lb_batch_begin(db, NULL, &b));
	for (i = 0; i < n; i++) {
		struct mkey mk;
		size_t j;
		mk.kl = 1 + th_below(&rng, 6);
		for (j = 0; j < mk.kl; j++)
			mk.k[j] = alphabet[th_below(&rng, sizeof alphabet)];
		te_rc(0, lb_put(b, "t", mk.k, mk.kl, mk.k, mk.kl));
		keys[m++] = mk;
	}
	te_rc(0, lb_batch_commit(b, NULL));
	qsort(keys, m, sizeof *keys, mkey_cmp);
	for (i = 0, n = 0; i < m; i++)
		if (n == 0 || mkey_cmp(&keys[n - 1], &keys[i]) != 0)
			keys[n++] = keys[i];

	s = snap(db);
	c = cur(s, "t");
	for (i = 0; i < n; i++) {
		te_rc(0, lb_cursor_next(c, &k, &kl, &v, &vl));
		th_assert_seeded(kl == keys[i].kl &&
		                 memcmp(k, keys[i].k, kl) == 0);
		th_assert_seeded(vl == kl && memcmp(v, k, kl) == 0);
	}
	next_end(c);

	/* Seeks to random probes land on the first model key >= probe. */
	for (i = 0; i < 500; i++) {
		struct mkey p;
		size_t j, lo = 0, hi = n;
		p.kl = th_below(&rng, 7);
		for (j = 0; j < p.kl; j++)
			p.k[j] = alphabet[th_below(&rng, sizeof alphabet)];
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (mkey_cmp(&keys[mid], &p) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		te_rc(0, lb_cursor_seek(c, p.kl ? p.k : NULL, p.kl));
		if (lo == n) {
			te_rc(LB_ENOTFOUND,
			      lb_cursor_next(c, &k, &kl, &v, &vl));
			continue;
		}
		te_rc(0, lb_cursor_next(c, &k, &kl, &v, &vl));
		th_assert_seeded(kl == keys[lo].kl &&
		                 memcmp(k, keys[lo].k, kl) == 0);
	}
	lb_cursor_close(c);
	lb_snapshot_close(s);
	free(keys);
}

static void test_engine_read__many_snapshots_at_once(void **state)
{
	lb_db *db = FX(state)->db;
	lb_snapshot *s[20];
	int i;

	/* Snapshot i was opened after i+1 commits of key "n". */
	for (i = 0; i < 20; i++) {
		char v[16];
		snprintf(v, sizeof v, "%d", i);
		te_put1(db, "t", "n", v);
		s[i] = snap(db);
	}
	for (i = 0; i < 20; i++) {
		char v[16];
		snprintf(v, sizeof v, "%d", i);
		snap_expect(s[i], "t", "n", v);
	}
	for (i = 0; i < 20; i++)
		lb_snapshot_close(s[i]);
}

/* A read renews the read-only transaction the last read left: it must
 * still see every commit made since, through map growth (which drops the
 * kept transaction), with snapshots taking and leaving it in any order. */
static void test_engine_read__reused_reads_see_later_commits(void **state)
{
	lb_options o;
	char key[32], val[600], dir[4096];
	snprintf(dir, sizeof dir, "%s/small", FX(state)->dir);
	lb_options_init(&o);
	o.flags = LB_CREATE | LB_NOSYNC;
	o.map_size = 1 << 20; /* grows several times below */
	lb_db *db = te_open_opts(dir, &o);
	te_rc(0, lb_table_create(db, "t", NULL));

	/* The same key read after each commit: never a stale value. */
	for (int i = 0; i < 50; i++) {
		snprintf(val, sizeof val, "v%d", i);
		te_put1(db, "t", "same", val);
		te_assert_get_s(db, "t", "same", val);
	}
	/* Batches of ~300 KiB grow the map from 1 MiB; a get between
	 * batches keeps a transaction across each growth. */
	memset(val, 'x', sizeof val - 1);
	val[sizeof val - 1] = 0;
	for (int b = 0; b < 40; b++) {
		lb_batch *bt = NULL;
		te_rc(0, lb_batch_begin(db, "grow", &bt));
		for (int i = 0; i < 500; i++) {
			snprintf(key, sizeof key, "b%03d-%04d", b, i);
			te_rc(0, lb_put(bt, "t", key, strlen(key), val,
			                strlen(val)));
		}
		te_rc(0, lb_batch_commit(bt, NULL));
		snprintf(key, sizeof key, "b%03d-%04d", b, 499);
		te_assert_get_s(db, "t", key, val);
	}
	/* Two snapshots at once (one renews the kept transaction, the other
	 * begins one), closed in either order, then reads again. */
	lb_snapshot *s1 = snap(db), *s2 = snap(db);
	te_put1(db, "t", "same", "after");
	snap_expect(s1, "t", "same", "v49");
	snap_expect(s2, "t", "same", "v49");
	lb_snapshot_close(s2);
	te_assert_get_s(db, "t", "same", "after");
	lb_snapshot_close(s1);
	te_assert_get_s(db, "t", "same", "after");
	for (int b = 0; b < 40; b++) {
		snprintf(key, sizeof key, "b%03d-%04d", b, b * 7);
		te_assert_get_s(db, "t", key, val);
	}
	lb_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, te_setup_t, te_teardown)
	        T(test_engine_read__get_returns_private_copy),
	        T(test_engine_read__get_missing),
	        T(test_engine_read__snapshot_isolated_from_commits),
	        T(test_engine_read__snapshot_pointers_stable),
	        T(test_engine_read__cursor_byte_order),
	        T(test_engine_read__cursor_seek),
	        T(test_engine_read__cursor_empty_and_unknown_table),
	        T(test_engine_read__cursor_isolated_and_per_table),
	        T(test_engine_read__cursor_matches_model),
	        T(test_engine_read__many_snapshots_at_once),
	        T(test_engine_read__reused_reads_see_later_commits),
#undef T
	};
	return cmocka_run_group_tests_name("engine_read", tests, NULL, NULL);
}
