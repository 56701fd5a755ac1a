/* SPDX-License-Identifier: MIT */
/*
 * verify.c: lb_verify. A clean log passes and is counted; each kind of
 * damage, made directly through LMDB with the database closed, is caught
 * and charged to the right batch: a changed byte in a segment, a deleted or
 * an extra segment, a changed header, two headers swapped, a missing
 * header, a segment with no batch, `_meta`'s next table id changed, a
 * value whose writer did not leave it, a `_gone` entry whose batch did not
 * delete its key, and (with LB_VERIFY_REPLAY) a user value changed, added
 * or removed behind the log's back.
 */
#define _GNU_SOURCE
#include "_common.h"
#include "engine/internal.h" /* lb__verify_busy */
#include "wal/wal.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct vx {
	char *dir;
	lb_db *db;
} vx;

/* Batch 1 creates "t", batch 2 creates "u"; then nb batches labelled
 * "batch-NNN" of 24 puts, updates and deletes of random-length values
 * over 64 keys of "t" and a few of "u". */
static void history(lb_db *db, int nb, uint64_t seed)
{
	uint64_t rng = seed;
	int present[64] = {0};
	uint8_t val[400];
	te_rc(0, lb_table_create(db, "t", NULL));
	te_rc(0, lb_table_create(db, "u", NULL));
	for (int i = 0; i < nb; i++) {
		lb_batch *b;
		char label[32];
		snprintf(label, sizeof label, "batch-%03llu",
		         (unsigned long long)(te_last(db) + 1));
		te_rc(0, lb_batch_begin(db, label, &b));
		for (int j = 0; j < 24; j++) {
			int k = (int)th_below(&rng, 64);
			char key[16];
			snprintf(key, sizeof key, "k%03d", k);
			if (present[k] && th_below(&rng, 5) == 0) {
				te_rc(0, lb_delete(b, "t", key, strlen(key)));
				present[k] = 0;
				continue;
			}
			size_t vl = 1 + th_below(&rng, sizeof val);
			te_fill(&rng, val, vl);
			te_rc(0, lb_put(b, "t", key, strlen(key), val, vl));
			present[k] = 1;
		}
		char uk[8];
		snprintf(uk, sizeof uk, "u%d", i % 5);
		te_rc(0, lb_put(b, "u", uk, strlen(uk), label, strlen(label)));
		te_rc(0, lb_batch_commit(b, NULL));
	}
}

static int vx_setup(void **state)
{
	vx *x = te_malloc(sizeof *x);
	x->dir = th_tmpdir();
	x->db = te_open_segments(x->dir, 512);
	history(x->db, 10, 0x5eed);
	*state = x;
	return 0;
}

static int vx_teardown(void **state)
{
	vx *x = *state;
	lb_close(x->db);
	th_rmrf(x->dir);
	free(x->dir);
	free(x);
	return 0;
}

/* ---- raw LMDB access, with the database closed ----------------------- */

typedef struct raw {
	MDB_env *env;
	MDB_txn *txn;
} raw;

static void raw_open(vx *x, raw *r)
{
	lb_close(x->db);
	x->db = NULL;
	assert_int_equal(mdb_env_create(&r->env), 0);
	assert_int_equal(mdb_env_set_maxdbs(r->env, 1024), 0);
	assert_int_equal(mdb_env_set_mapsize(r->env, (size_t)1 << 30), 0);
	assert_int_equal(mdb_env_open(r->env, x->dir, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(r->env, NULL, 0, &r->txn), 0);
}

static MDB_dbi raw_dbi(raw *r, const char *name)
{
	MDB_dbi d;
	assert_int_equal(mdb_dbi_open(r->txn, name, 0, &d), 0);
	return d;
}

static void raw_close(vx *x, raw *r)
{
	assert_int_equal(mdb_txn_commit(r->txn), 0);
	mdb_env_close(r->env);
	x->db = te_open(x->dir, LB_NOSYNC);
}

static void wal_key(uint8_t k[12], uint64_t id, uint32_t seg)
{
	for (int i = 0; i < 8; i++)
		k[i] = (uint8_t)(id >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		k[8 + i] = (uint8_t)(seg >> (24 - 8 * i));
}

static void batch_key(uint8_t k[8], uint64_t id)
{
	for (int i = 0; i < 8; i++)
		k[i] = (uint8_t)(id >> (56 - 8 * i));
}

/* A malloc'd copy of an LMDB value. */
static void *raw_get(raw *r, MDB_dbi d, const void *key, size_t klen,
                     size_t *len)
{
	MDB_val k = {klen, (void *)key}, v;
	assert_int_equal(mdb_get(r->txn, d, &k, &v), 0);
	void *p = te_malloc(v.mv_size);
	memcpy(p, v.mv_data, v.mv_size);
	*len = v.mv_size;
	return p;
}

static void raw_put(raw *r, MDB_dbi d, const void *key, size_t klen,
                    const void *val, size_t vlen)
{
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	assert_int_equal(mdb_put(r->txn, d, &k, &v, 0), 0);
}

static void raw_del(raw *r, MDB_dbi d, const void *key, size_t klen)
{
	MDB_val k = {klen, (void *)key};
	assert_int_equal(mdb_del(r->txn, d, &k, NULL), 0);
}

/* A u64 BE (a batch id as the database stores it). */
static uint64_t be64_of(const void *p)
{
	const uint8_t *b = p;
	uint64_t id = 0;
	for (int i = 0; i < 8; i++)
		id = id << 8 | b[i];
	return id;
}

/* ---- assertions ---------------------------------------------------------- */

static void expect_bad(lb_db *db, unsigned flags, uint64_t batch,
                       const char *word)
{
	lb_verify_report rep;
	memset(&rep, 0xff, sizeof rep);
	te_rc(LB_ECORRUPT, lb_verify(db, flags, &rep));
	if (rep.bad_batch != batch || !strstr(rep.detail, word)) {
		print_error("bad_batch %llu (want %llu), detail '%s' (want "
		            "'%s')\n",
		            (unsigned long long)rep.bad_batch,
		            (unsigned long long)batch, rep.detail, word);
		fail();
	}
	assert_false(rep.replay_ok);
}

static void expect_ok(lb_db *db, unsigned flags)
{
	lb_verify_report rep;
	memset(&rep, 0xff, sizeof rep);
	te_rc(0, lb_verify(db, flags, &rep));
	assert_true(rep.chain_ok);
	assert_int_equal(rep.bad_batch, 0);
	assert_string_equal(rep.detail, "");
	assert_int_equal(!!rep.replay_ok, !!(flags & LB_VERIFY_REPLAY));
}

/* ---- tests --------------------------------------------------------------- */

static void test_engine_verify__clean_log_is_counted(void **state)
{
	vx *x = *state;
	lb_verify_report rep;
	uint64_t last = te_last(x->db), records = 0, segments = 0;
	for (uint64_t id = 1; id <= last; id++) {
		lb_batch_info bi;
		te_rc(0, lb_batch_info_get(x->db, id, &bi));
		records += bi.records;
		segments += bi.segments;
	}
	assert_true(segments > last); /* some batches have several */
	memset(&rep, 0xff, sizeof rep);
	te_rc(0, lb_verify(x->db, 0, &rep));
	assert_int_equal(rep.batches, last);
	assert_int_equal(rep.segments, segments);
	assert_int_equal(rep.records, records);
	assert_true(rep.chain_ok);
	assert_false(rep.replay_ok);
	assert_int_equal(rep.bad_batch, 0);
	assert_string_equal(rep.detail, "");
	memset(&rep, 0, sizeof rep);
	te_rc(0, lb_verify(x->db, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.chain_ok);
	assert_true(rep.replay_ok);
	assert_int_equal(rep.records, records);
}

static void test_engine_verify__empty_database(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	lb_db *db = te_open(dir, LB_CREATE | LB_NOSYNC);
	lb_verify_report rep;
	te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
	assert_int_equal(rep.batches, 0);
	assert_true(rep.chain_ok);
	assert_true(rep.replay_ok);
	lb_close(db);
	th_rmrf(dir);
	free(dir);
}

/* A read-only handle verifies too (the replay goes to a temporary
 * directory, not next to the database). */
static void test_engine_verify__read_only_handle(void **state)
{
	vx *x = *state;
	lb_verify_report rep;
	lb_close(x->db);
	x->db = te_open(x->dir, LB_RDONLY);
	te_rc(0, lb_verify(x->db, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.chain_ok);
	assert_true(rep.replay_ok);
	assert_int_equal(rep.batches, te_last(x->db));
}

/* A check that another process disturbs (LB_EBUSY) starts again on a new
 * snapshot, up to 16 times, and reports the whole check; past that the
 * caller gets LB_EBUSY with its detail. */
static void test_engine_verify__busy_checks_again(void **state)
{
	vx *x = *state;
	lb_verify_report rep;
	lb__verify_busy = 15;
	te_rc(0, lb_verify(x->db, LB_VERIFY_REPLAY, &rep));
	assert_int_equal(lb__verify_busy, 0);
	assert_true(rep.chain_ok);
	assert_true(rep.replay_ok);
	assert_int_equal(rep.batches, te_last(x->db));
	lb__verify_busy = 17;
	te_rc(LB_EBUSY, lb_verify(x->db, 0, &rep));
	assert_int_equal(lb__verify_busy, 1);
	assert_non_null(strstr(lb_errmsg(), "another process grew"));
	lb__verify_busy = 0;
}

static void test_engine_verify__bad_arguments(void **state)
{
	vx *x = *state;
	lb_verify_report rep;
	te_rc(LB_EINVAL, lb_verify(NULL, 0, &rep));
	te_rc(LB_EINVAL, lb_verify(x->db, 0, NULL));
	te_rc(LB_EINVAL, lb_verify(x->db, 0x80, &rep));
}

static void test_engine_verify__segment_byte_changed(void **state)
{
	vx *x = *state;
	lb_batch_info bi;
	te_rc(0, lb_batch_info_get(x->db, 6, &bi));
	assert_true(bi.segments >= 2);
	/* every region of a segment: magic, lengths, CRC, payload, end */
	const size_t offs[] = {0, 5, 9, 17, 21, 24, 100, (size_t)-1};
	for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
		raw r;
		uint8_t k[12];
		size_t len;
		raw_open(x, &r);
		MDB_dbi wal = raw_dbi(&r, "_wal");
		wal_key(k, 6, 1);
		uint8_t *seg = raw_get(&r, wal, k, 12, &len);
		size_t off = offs[i] == (size_t)-1 ? len - 1 : offs[i];
		assert_true(off < len);
		seg[off] ^= 0x01;
		raw_put(&r, wal, k, 12, seg, len);
		raw_close(x, &r);
		expect_bad(x->db, 0, 6, "segment 1");
		expect_bad(x->db, LB_VERIFY_REPLAY, 6, "segment 1");
		/* a replay refuses the damaged log, and leaves nothing */
		char *rdir = th_tmpdir();
		char *dest = th_path(rdir, "replay");
		lb_result res;
		te_rc(LB_ECORRUPT, lb_replay(x->db, dest, 0, NULL, &res));
		assert_non_null(strstr(lb_errmsg(), "batch 6"));
		assert_int_equal(rmdir(rdir), 0); /* nothing was left */
		free(dest);
		free(rdir);
		/* put it back: the log verifies again */
		raw_open(x, &r);
		wal = raw_dbi(&r, "_wal");
		seg[off] ^= 0x01;
		raw_put(&r, wal, k, 12, seg, len);
		raw_close(x, &r);
		expect_ok(x->db, 0);
		free(seg);
	}
	expect_ok(x->db, LB_VERIFY_REPLAY);
}

static void test_engine_verify__segment_deleted(void **state)
{
	vx *x = *state;
	raw r;
	uint8_t k[12];
	raw_open(x, &r);
	wal_key(k, 5, 0);
	raw_del(&r, raw_dbi(&r, "_wal"), k, 12);
	raw_close(x, &r);
	expect_bad(x->db, 0, 5, "segment 0 is missing");
}

static void test_engine_verify__last_segment_deleted(void **state)
{
	vx *x = *state;
	lb_batch_info bi;
	raw r;
	uint8_t k[12];
	te_rc(0, lb_batch_info_get(x->db, 7, &bi));
	raw_open(x, &r);
	wal_key(k, 7, bi.segments - 1);
	raw_del(&r, raw_dbi(&r, "_wal"), k, 12);
	raw_close(x, &r);
	expect_bad(x->db, 0, 7, "is missing");
}

static void test_engine_verify__extra_segment(void **state)
{
	vx *x = *state;
	lb_batch_info bi;
	raw r;
	uint8_t k[12];
	size_t len;
	te_rc(0, lb_batch_info_get(x->db, 4, &bi));
	raw_open(x, &r);
	MDB_dbi wal = raw_dbi(&r, "_wal");
	wal_key(k, 4, 0);
	void *seg = raw_get(&r, wal, k, 12, &len);
	wal_key(k, 4, bi.segments);
	raw_put(&r, wal, k, 12, seg, len);
	free(seg);
	raw_close(x, &r);
	expect_bad(x->db, 0, 4, "header has");
}

static void test_engine_verify__segment_of_no_batch(void **state)
{
	vx *x = *state;
	uint64_t last = te_last(x->db);
	raw r;
	uint8_t k[12];
	size_t len;
	raw_open(x, &r);
	MDB_dbi wal = raw_dbi(&r, "_wal");
	wal_key(k, 3, 0);
	void *seg = raw_get(&r, wal, k, 12, &len);
	wal_key(k, last + 5, 0);
	raw_put(&r, wal, k, 12, seg, len);
	free(seg);
	raw_close(x, &r);
	expect_bad(x->db, 0, last + 5, "does not exist");
}

static void test_engine_verify__header_changed(void **state)
{
	vx *x = *state;
	raw r;
	uint8_t k[8];
	size_t len;
	raw_open(x, &r);
	MDB_dbi bt = raw_dbi(&r, "_batches");
	batch_key(k, 8);
	uint8_t *h = raw_get(&r, bt, k, 8, &len);
	uint8_t *lab = memmem(h, len, "batch-008", 9);
	assert_non_null(lab);
	lab[8] = '9'; /* the label now reads batch-009 */
	raw_put(&r, bt, k, 8, h, len);
	free(h);
	raw_close(x, &r);
	expect_bad(x->db, 0, 8, "does not match its hash");
}

static void test_engine_verify__header_undecodable(void **state)
{
	vx *x = *state;
	raw r;
	uint8_t k[8];
	raw_open(x, &r);
	batch_key(k, 5);
	raw_put(&r, raw_dbi(&r, "_batches"), k, 8, "\x93\x01\x02", 3);
	raw_close(x, &r);
	expect_bad(x->db, 0, 5, "does not decode");
}

static void test_engine_verify__batches_swapped(void **state)
{
	vx *x = *state;
	raw r;
	uint8_t k3[8], k4[8];
	size_t l3, l4;
	raw_open(x, &r);
	MDB_dbi bt = raw_dbi(&r, "_batches");
	batch_key(k3, 3);
	batch_key(k4, 4);
	void *h3 = raw_get(&r, bt, k3, 8, &l3);
	void *h4 = raw_get(&r, bt, k4, 8, &l4);
	raw_put(&r, bt, k3, 8, h4, l4);
	raw_put(&r, bt, k4, 8, h3, l3);
	free(h3);
	free(h4);
	raw_close(x, &r);
	expect_bad(x->db, 0, 3, "names batch 4");
}

static void test_engine_verify__segments_swapped(void **state)
{
	vx *x = *state;
	raw r;
	uint8_t k3[12], k4[12];
	size_t l3, l4;
	raw_open(x, &r);
	MDB_dbi wal = raw_dbi(&r, "_wal");
	wal_key(k3, 3, 0);
	wal_key(k4, 4, 0);
	void *s3 = raw_get(&r, wal, k3, 12, &l3);
	void *s4 = raw_get(&r, wal, k4, 12, &l4);
	raw_put(&r, wal, k3, 12, s4, l4);
	raw_put(&r, wal, k4, 12, s3, l3);
	free(s3);
	free(s4);
	raw_close(x, &r);
	expect_bad(x->db, 0, 3, "SHA-256");
}

static void test_engine_verify__header_missing(void **state)
{
	vx *x = *state;
	raw r;
	uint8_t k[8];
	raw_open(x, &r);
	batch_key(k, 6);
	raw_del(&r, raw_dbi(&r, "_batches"), k, 8);
	raw_close(x, &r);
	expect_bad(x->db, 0, 6, "batch 6 is missing");
}

static void test_engine_verify__last_header_missing(void **state)
{
	vx *x = *state;
	uint64_t last = te_last(x->db);
	raw r;
	uint8_t k[8];
	raw_open(x, &r);
	batch_key(k, last);
	raw_del(&r, raw_dbi(&r, "_batches"), k, 8);
	raw_close(x, &r);
	/* its segments now belong to no batch */
	expect_bad(x->db, 0, last, "does not exist");
}

/* The newest batch that wrote key "k%03d" of t, found through the log. */
typedef struct finder {
	const char *key;
	int hit;
} finder;

static int find_cb(void *ctx, const lb_change *c)
{
	finder *f = ctx;
	if (c->op != LB_OP_TABLE && strcmp(c->table, "t") == 0 &&
	    c->klen == strlen(f->key) && memcmp(c->key, f->key, c->klen) == 0)
		f->hit = 1;
	return 0;
}

static uint64_t newest_writer(lb_db *db, const char *key)
{
	for (uint64_t id = te_last(db); id > 0; id--) {
		finder f = {key, 0};
		te_rc(0, lb_changes(db, id, find_cb, &f));
		if (f.hit)
			return id;
	}
	return 0;
}

static void test_engine_verify__user_value_changed(void **state)
{
	vx *x = *state;
	void *v;
	size_t vl;
	char key[16] = "";
	/* a key that exists now */
	for (int i = 0; i < 64; i++) {
		snprintf(key, sizeof key, "k%03d", i);
		if (lb_get(x->db, "t", key, strlen(key), &v, &vl) == 0)
			break;
		key[0] = 0;
	}
	assert_true(key[0]);
	uint64_t writer = newest_writer(x->db, key);
	assert_true(writer > 2);
	free(v);
	raw r;
	raw_open(x, &r);
	/* the stored value: its writer (8 bytes), then the user's bytes */
	v = raw_get(&r, raw_dbi(&r, "t/t"), key, strlen(key), &vl);
	assert_true(vl > 8);
	assert_int_equal(be64_of(v), writer);
	((uint8_t *)v)[8] ^= 0x40;
	raw_put(&r, raw_dbi(&r, "t/t"), key, strlen(key), v, vl);
	free(v);
	raw_close(x, &r);
	/* the log is intact, but its writer did not leave that value */
	expect_bad(x->db, 0, writer, "another value");
	lb_verify_report rep;
	te_rc(LB_ECORRUPT, lb_verify(x->db, LB_VERIFY_REPLAY, &rep));
	assert_true(rep.chain_ok);
	assert_false(rep.replay_ok);
	assert_int_equal(rep.bad_batch, writer);
	assert_non_null(strstr(rep.detail, "table t"));
	assert_non_null(strstr(rep.detail, key));
	assert_non_null(strstr(rep.detail, "differs"));
}

static void test_engine_verify__user_key_added_and_removed(void **state)
{
	vx *x = *state;
	uint64_t last = te_last(x->db);
	raw r;
	/* a key no batch ever wrote: charged to the last batch */
	raw_open(x, &r);
	raw_put(&r, raw_dbi(&r, "t/t"), "zz-extra", 8, "x", 1);
	raw_close(x, &r);
	/* too short to name its writer */
	expect_bad(x->db, 0, last, "zz-extra");
	lb_verify_report rep;
	te_rc(LB_ECORRUPT, lb_verify(x->db, LB_VERIFY_REPLAY, &rep));
	assert_int_equal(rep.bad_batch, last);
	assert_non_null(strstr(rep.detail, "zz-extra"));
	assert_non_null(strstr(rep.detail, "not in the replay"));
	raw_open(x, &r);
	raw_del(&r, raw_dbi(&r, "t/t"), "zz-extra", 8);
	raw_close(x, &r);
	expect_ok(x->db, LB_VERIFY_REPLAY);

	/* a key of u removed: charged to the batch that last wrote it */
	void *v;
	size_t vl;
	te_rc(0, lb_get(x->db, "u", "u1", 2, &v, &vl));
	char label[16];
	assert_true(vl < sizeof label);
	memcpy(label, v, vl);
	label[vl] = 0;
	free(v);
	raw_open(x, &r);
	raw_del(&r, raw_dbi(&r, "t/u"), "u1", 2);
	raw_close(x, &r);
	te_rc(LB_ECORRUPT, lb_verify(x->db, LB_VERIFY_REPLAY, &rep));
	/* u1 holds the label of the batch that wrote it: batch-NNN */
	assert_int_equal(rep.bad_batch, strtoull(label + 6, NULL, 10));
	assert_non_null(strstr(rep.detail, "table u"));
	assert_non_null(strstr(rep.detail, "missing from the database"));
}

/* The first entry of sub-database name: its key (malloc'd) and value
 * (malloc'd), or 0 when it is empty. */
static int raw_first(raw *r, const char *name, void **k, size_t *kl, void **v,
                     size_t *vl)
{
	MDB_cursor *c;
	MDB_val mk, mv;
	assert_int_equal(mdb_cursor_open(r->txn, raw_dbi(r, name), &c), 0);
	int mrc = mdb_cursor_get(c, &mk, &mv, MDB_FIRST);
	mdb_cursor_close(c);
	if (mrc == MDB_NOTFOUND)
		return 0;
	assert_int_equal(mrc, 0);
	*k = te_malloc(mk.mv_size);
	memcpy(*k, mk.mv_data, mk.mv_size);
	*kl = mk.mv_size;
	*v = te_malloc(mv.mv_size);
	memcpy(*v, mv.mv_data, mv.mv_size);
	*vl = mv.mv_size;
	return 1;
}

/* A value's writer (its first 8 bytes) and a `_gone` entry are checked
 * without the replay, against the log of the batch they name; the replay
 * compares them too. */
static void test_engine_verify__index_changed(void **state)
{
	vx *x = *state;
	raw r;
	void *k, *v;
	size_t kl, vl;
	uint8_t one[8];
	batch_key(one, 1); /* created table t: changed no key */

	/* a value that names another writer */
	raw_open(x, &r);
	assert_true(raw_first(&r, "t/t", &k, &kl, &v, &vl));
	assert_true(vl >= 8);
	uint8_t *w = te_malloc(vl);
	memcpy(w, v, vl);
	memcpy(w, one, 8);
	raw_put(&r, raw_dbi(&r, "t/t"), k, kl, w, vl);
	raw_close(x, &r);
	expect_bad(x->db, 0, 1, "does not change it");
	expect_bad(x->db, LB_VERIFY_REPLAY, 1, "differs");
	/* one that names no batch at all */
	raw_open(x, &r);
	memset(w, 0xff, 8);
	raw_put(&r, raw_dbi(&r, "t/t"), k, kl, w, vl);
	raw_close(x, &r);
	expect_bad(x->db, 0, te_last(x->db), "does not exist");
	raw_open(x, &r);
	raw_put(&r, raw_dbi(&r, "t/t"), k, kl, v, vl);
	raw_close(x, &r);
	expect_ok(x->db, LB_VERIFY_REPLAY);
	free(w);
	free(k);
	free(v);

	/* a `_gone` entry that names a batch that did not delete the key */
	raw_open(x, &r);
	assert_true(raw_first(&r, "_gone", &k, &kl, &v, &vl));
	assert_int_equal(vl, 8);
	uint64_t id = be64_of(v);
	assert_true(id > 2);
	raw_put(&r, raw_dbi(&r, "_gone"), k, kl, one, 8);
	raw_close(x, &r);
	expect_bad(x->db, 0, 1, "_gone");
	expect_bad(x->db, LB_VERIFY_REPLAY, 1, "_gone");
	/* a `_gone` entry removed: the batch that deleted the key is
	 * named, from its DELETE record (and by the replay) */
	raw_open(x, &r);
	raw_del(&r, raw_dbi(&r, "_gone"), k, kl);
	raw_close(x, &r);
	expect_bad(x->db, 0, id, "deleted it, but _gone names batch 0");
	expect_bad(x->db, LB_VERIFY_REPLAY, id, "_gone");
	raw_open(x, &r);
	raw_put(&r, raw_dbi(&r, "_gone"), k, kl, v, vl);
	raw_close(x, &r);
	expect_ok(x->db, LB_VERIFY_REPLAY);
	free(k);
	free(v);
}

/* What the slow pass cannot see: a value naming an earlier batch that left
 * the same bytes (a later batch changed the key), and a key missing from
 * its table. */
static void test_engine_verify__later_change_and_missing_key(void **state)
{
	vx *x = *state;
	raw r;
	lb_batch *b;
	uint8_t val[9];
	for (int i = 0; i < 2; i++) {
		te_rc(0, lb_batch_begin(x->db, "same", &b));
		te_rc(0, lb_put(b, "u", "same", 4, "v", 1));
		te_rc(0, lb_batch_commit(b, NULL));
	}
	uint64_t last = te_last(x->db);
	expect_ok(x->db, 0);
	raw_open(x, &r);
	batch_key(val, last - 1);
	val[8] = 'v';
	raw_put(&r, raw_dbi(&r, "t/u"), "same", 4, val, sizeof val);
	raw_close(x, &r);
	expect_bad(x->db, 0, last - 1, "changed it later");
	raw_open(x, &r);
	raw_del(&r, raw_dbi(&r, "t/u"), "same", 4);
	raw_close(x, &r);
	expect_bad(x->db, 0, last, "does not hold it");
	expect_bad(x->db, LB_VERIFY_REPLAY, last, "missing");
}

/* A table removed by a rollback and created again: the records of the
 * first one are not checked against the second. */
static void test_engine_verify__table_created_again(void **state)
{
	vx *x = *state;
	lb_batch *b;
	lb_result res;
	uint64_t before = te_last(x->db);
	te_rc(0, lb_table_create(x->db, "x", NULL));
	te_rc(0, lb_batch_begin(x->db, "old", &b));
	te_rc(0, lb_put(b, "x", "k", 1, "old", 3));
	te_rc(0, lb_put(b, "x", "j", 1, "old", 3));
	te_rc(0, lb_batch_commit(b, NULL));
	te_rc(0, lb_batch_begin(x->db, "del", &b));
	te_rc(0, lb_delete(b, "x", "j", 1));
	te_rc(0, lb_batch_commit(b, NULL));
	expect_ok(x->db, 0);
	te_rc(0, lb_rollback_to(x->db, before, &res));
	lb_result_free(&res);
	te_rc(0, lb_table_create(x->db, "x", NULL));
	te_rc(0, lb_batch_begin(x->db, "new", &b));
	te_rc(0, lb_put(b, "x", "k", 1, "new", 3));
	te_rc(0, lb_batch_commit(b, NULL));
	expect_ok(x->db, 0);
	expect_ok(x->db, LB_VERIFY_REPLAY);
}

/* How many values (of t and u) and `_gone` entries name batch id. */
static size_t writes_of(raw *r, uint64_t id)
{
	static const char *const dbs[] = {"t/t", "t/u", "_gone"};
	size_t n = 0;
	for (size_t i = 0; i < 3; i++) {
		MDB_cursor *c;
		MDB_val k, v;
		int mrc;
		assert_int_equal(
		        mdb_cursor_open(r->txn, raw_dbi(r, dbs[i]), &c), 0);
		for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
		     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
			n += v.mv_size >= 8 && be64_of(v.mv_data) == id;
		assert_int_equal(mrc, MDB_NOTFOUND);
		mdb_cursor_close(c);
	}
	return n;
}

/* Is the `_undo` pair z -> val (an undoer id, with bit 63 when its
 * history is implied) there? */
static int undo_has(raw *r, uint64_t z, uint64_t val)
{
	uint8_t kb[8], vb[8];
	batch_key(kb, z);
	batch_key(vb, val);
	MDB_val k = {8, kb}, v = {8, vb};
	MDB_cursor *c;
	assert_int_equal(mdb_cursor_open(r->txn, raw_dbi(r, "_undo"), &c), 0);
	int mrc = mdb_cursor_get(c, &k, &v, MDB_GET_BOTH);
	mdb_cursor_close(c);
	if (mrc == MDB_NOTFOUND)
		return 0;
	assert_int_equal(mrc, 0);
	return 1;
}

/* Replace the `_undo` pair z -> from by z -> to behind the library's back. */
static void undo_swap(vx *x, uint64_t z, uint64_t from, uint64_t to)
{
	raw r;
	uint8_t kb[8], fb[8], tb[8];
	batch_key(kb, z);
	batch_key(fb, from);
	batch_key(tb, to);
	raw_open(x, &r);
	MDB_dbi d = raw_dbi(&r, "_undo");
	MDB_val k = {8, kb}, f = {8, fb}, t = {8, tb};
	assert_int_equal(mdb_del(r.txn, d, &k, &f), 0);
	assert_int_equal(mdb_put(r.txn, d, &k, &t, 0), 0);
	raw_close(x, &r);
}

/* Set batch id's rolled_back_by behind the library's back. */
static void set_rolled_back_by(vx *x, uint64_t id, uint64_t by)
{
	lb_wal_hdr h;
	lb_buf enc;
	raw r;
	size_t len;
	uint8_t kb[8];
	batch_key(kb, id);
	raw_open(x, &r);
	MDB_dbi d = raw_dbi(&r, "_batches");
	void *v = raw_get(&r, d, kb, 8, &len);
	te_rc(0, lb__hdr_decode(v, len, &h));
	free(v);
	h.rolled_back_by = by;
	lb__buf_init(&enc);
	te_rc(0, lb__hdr_encode(&h, &enc));
	raw_put(&r, d, kb, 8, enc.data, enc.len);
	lb__buf_free(&enc);
	lb__hdr_free(&h);
	raw_close(x, &r);
}

#define IMPLIED ((uint64_t)1 << 63)

/* A strict rollback adds an implied `_undo` entry per batch it undoes (a
 * forced one's is not implied); both are the writers of the keys they
 * restored. A wrong entry, or a header whose rolled_back_by disagrees with
 * who stands, is caught without a replay. */
static void test_engine_verify__undo_changed(void **state)
{
	vx *x = *state;
	raw r;
	uint64_t last = te_last(x->db);
	lb_result res;
	te_rc(0, lb_rollback(x->db, last, 0, &res)); /* strict */
	uint64_t r1 = res.batch_id;
	lb_result_free(&res);
	te_rc(0, lb_rollback(x->db, last - 1, LB_FORCE, &res));
	uint64_t r2 = res.batch_id;
	lb_result_free(&res);
	raw_open(x, &r);
	assert_true(writes_of(&r, r1) > 0);
	assert_true(undo_has(&r, last, r1 | IMPLIED));
	assert_true(writes_of(&r, r2) > 0);
	assert_true(undo_has(&r, last - 1, r2));
	assert_false(undo_has(&r, last - 1, r2 | IMPLIED));
	raw_close(x, &r);
	expect_ok(x->db, LB_VERIFY_REPLAY);

	/* the entry names another batch than _victims does */
	undo_swap(x, last, r1 | IMPLIED, r2 | IMPLIED);
	expect_bad(x->db, 0, r1, "_undo");
	undo_swap(x, last, r2 | IMPLIED, r1 | IMPLIED);
	expect_ok(x->db, LB_VERIFY_REPLAY);

	/* a header that says a batch stands when a standing batch undoes
	 * it, and one that names a batch that does not undo it */
	set_rolled_back_by(x, last, 0);
	expect_bad(x->db, 0, last, "rolled_back_by");
	set_rolled_back_by(x, last, r2);
	expect_bad(x->db, 0, last, "rolled_back_by");
	set_rolled_back_by(x, last, r1);
	expect_ok(x->db, LB_VERIFY_REPLAY);
}

/* A rollback_to undoes every later batch: one `_victims` entry naming its
 * target, an `_undo` entry for each batch after it; the standing it
 * settled is checked, and so is the replay's. */
static void
test_engine_verify__rollback_to_undoes_every_later_batch(void **state)
{
	vx *x = *state;
	uint64_t last = te_last(x->db);
	lb_result res;
	te_rc(0, lb_rollback(x->db, last - 1, LB_FORCE, &res));
	uint64_t f = res.batch_id;
	lb_result_free(&res);
	te_rc(0, lb_rollback_to(x->db, last - 3, &res));
	uint64_t t = res.batch_id;
	lb_result_free(&res);
	raw r;
	raw_open(x, &r);
	for (uint64_t id = last - 2; id < t; id++)
		assert_true(undo_has(&r, id, t));
	assert_false(undo_has(&r, last - 3, t));
	raw_close(x, &r);
	expect_ok(x->db, LB_VERIFY_REPLAY);
	lb_batch_info bi;
	te_rc(0, lb_batch_info_get(x->db, last - 1, &bi));
	assert_int_equal(bi.rolled_back_by, t); /* f undid it, and t f */
	te_rc(0, lb_batch_info_get(x->db, f, &bi));
	assert_int_equal(bi.rolled_back_by, t);

	/* the entry for batch last - 1 removed: the header says more */
	uint8_t kb[8], vb[8];
	batch_key(kb, last - 1);
	batch_key(vb, t);
	raw_open(x, &r);
	MDB_val k = {8, kb}, v = {8, vb};
	assert_int_equal(mdb_del(r.txn, raw_dbi(&r, "_undo"), &k, &v), 0);
	raw_close(x, &r);
	expect_bad(x->db, 0, t, "_undo");
}

/* A database of an earlier format is refused at open, read-only too, with
 * a message that says how to carry its data over, and left as it was. */
static void test_engine_verify__older_format_refused(void **state)
{
	vx *x = *state;
	raw r;
	raw_open(x, &r);
	uint8_t two[4] = {0, 0, 0, 2};
	raw_put(&r, raw_dbi(&r, "_meta"), "format", 6, two, 4);
	assert_int_equal(mdb_txn_commit(r.txn), 0);
	mdb_env_close(r.env);
	for (int ro = 0; ro < 2; ro++) {
		lb_options o;
		lb_db *db = NULL;
		lb_options_init(&o);
		o.flags = ro ? LB_RDONLY : 0;
		te_rc(LB_EVERSION, lb_open(x->dir, &o, &db));
		assert_null(db);
		assert_non_null(strstr(lb_errmsg(), "format version 2"));
		assert_non_null(strstr(lb_errmsg(), "logbook export"));
	}
	raw_open(x, &r);
	size_t len;
	uint8_t *f = raw_get(&r, raw_dbi(&r, "_meta"), "format", 6, &len);
	assert_int_equal(len, 4);
	assert_int_equal(f[3], 2);
	free(f);
	uint8_t cur[4] = {0, 0, 0, LB_FORMAT_VERSION};
	raw_put(&r, raw_dbi(&r, "_meta"), "format", 6, cur, 4);
	raw_close(x, &r);
	expect_ok(x->db, LB_VERIFY_REPLAY);
}

/* A record whose reference names a missing key (written behind the
 * library's back) is found by verify with replay, charged to the batch its
 * value names as its writer; without the replay, that batch's log is found
 * not to have written it. */
static void test_engine_verify__dangling_reference(void **state)
{
	vx *x = *state;
	lb_field f[] = {{"h", LB_STR, LB_REQUIRED, 0, "t"}};
	lb_schema s = {f, 1, 0};
	te_rc(0, lb_table_create(x->db, "w", &s));
	te_put1(x->db, "t", "a", "hearing");
	static const uint8_t ok[] = {0x81, 0xa1, 'h', 0xa1, 'a'};
	static const uint8_t bad[] = {0x81, 0xa1, 'h', 0xa2, 'z', 'z'};
	lb_batch *b;
	te_rc(0, lb_batch_begin(x->db, "w", &b));
	te_rc(0, lb_insert(b, "w", "w1", 2, ok, sizeof ok));
	te_rc(0, lb_batch_commit(b, NULL));
	expect_ok(x->db, LB_VERIFY_REPLAY);
	/* stored as written by the last batch (which did not write it) */
	uint64_t last = te_last(x->db);
	uint8_t stored[8 + sizeof bad];
	batch_key(stored, last);
	memcpy(stored + 8, bad, sizeof bad);
	raw r;
	raw_open(x, &r);
	raw_put(&r, raw_dbi(&r, "t/w"), "w2", 2, stored, sizeof stored);
	raw_close(x, &r);
	expect_bad(x->db, 0, last, "does not change it");
	expect_bad(x->db, LB_VERIFY_REPLAY, last, "does not hold");
}

/* _meta's next_tid, as stored. */
static uint32_t next_tid(vx *x)
{
	raw r;
	size_t len;
	raw_open(x, &r);
	uint8_t *v = raw_get(&r, raw_dbi(&r, "_meta"), "next_tid", 8, &len);
	assert_int_equal(len, 4);
	uint32_t n = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 |
	             (uint32_t)v[2] << 8 | v[3];
	free(v);
	raw_close(x, &r);
	return n;
}

static void set_next_tid(vx *x, uint32_t n)
{
	raw r;
	uint8_t v[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16),
	                (uint8_t)(n >> 8), (uint8_t)n};
	raw_open(x, &r);
	raw_put(&r, raw_dbi(&r, "_meta"), "next_tid", 8, v, 4);
	raw_close(x, &r);
}

/* next_tid is 1 + the tables the log creates (a rolled-back creation
 * included: ids are never reused), and any other value is reported, with
 * or without the replay. */
static void test_engine_verify__next_tid_changed(void **state)
{
	vx *x = *state;
	uint64_t last = te_last(x->db);
	/* t and u: the next table gets id 3 */
	assert_int_equal(next_tid(x), 3);
	const uint32_t wrong[] = {4, 2, 1, 0, 0x83, 0x80000000u, 0x80000001u};
	for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
		set_next_tid(x, wrong[i]);
		expect_bad(x->db, 0, last, "next_tid");
		expect_bad(x->db, LB_VERIFY_REPLAY, last, "next_tid");
	}
	/* the log itself is intact */
	lb_verify_report rep;
	te_rc(LB_ECORRUPT, lb_verify(x->db, 0, &rep));
	assert_true(rep.chain_ok);
	/* gone, or not 4 bytes */
	raw r;
	raw_open(x, &r);
	raw_del(&r, raw_dbi(&r, "_meta"), "next_tid", 8);
	raw_close(x, &r);
	expect_bad(x->db, 0, last, "next_tid is missing");
	raw_open(x, &r);
	raw_put(&r, raw_dbi(&r, "_meta"), "next_tid", 8, "\0\0\0\0\3", 5);
	raw_close(x, &r);
	expect_bad(x->db, 0, last, "next_tid is not 4 bytes");
	set_next_tid(x, 3);
	expect_ok(x->db, LB_VERIFY_REPLAY);

	/* a table created and rolled back keeps its id taken */
	te_rc(0, lb_table_create(x->db, "v", NULL));
	uint64_t made = te_last(x->db);
	lb_result res;
	te_rc(0, lb_rollback(x->db, made, 0, &res));
	lb_result_free(&res);
	last = te_last(x->db);
	assert_int_equal(next_tid(x), 4);
	expect_ok(x->db, LB_VERIFY_REPLAY);
	/* 3 is above every table's id, but not what the log implies */
	set_next_tid(x, 3);
	expect_bad(x->db, 0, last, "creates 3 tables");
	expect_bad(x->db, LB_VERIFY_REPLAY, last, "next_tid");
	set_next_tid(x, 4);
	/* v made again gets id 4, and next_tid goes on to 5 */
	te_rc(0, lb_table_create(x->db, "v", NULL));
	assert_int_equal(next_tid(x), 5);
	expect_ok(x->db, LB_VERIFY_REPLAY);
}

/* With a prefix of the log pruned, the tables it created are unknown to
 * the log check, which then only bounds next_tid; the replay, from the
 * checkpoint, checks it exactly. */
static void test_engine_verify__next_tid_changed_pruned(void **state)
{
	vx *x = *state;
	char *base = th_tmpdir(), *c = th_path(base, "c");
	uint64_t at;
	te_rc(0, lb_checkpoint(x->db, c, &at));
	te_rc(0, lb_table_create(x->db, "w", NULL));
	te_put1(x->db, "w", "k", "v");
	uint64_t last = te_last(x->db);
	te_rc(0, lb_prune(x->db, at + 1));
	expect_ok(x->db, LB_VERIFY_REPLAY);
	assert_int_equal(next_tid(x), 4);
	set_next_tid(x, 5);
	expect_bad(x->db, LB_VERIFY_REPLAY, last, "next_tid");
	/* below w's id, or below what the unpruned batches create */
	set_next_tid(x, 3);
	expect_bad(x->db, 0, last, "not below next_tid 3");
	set_next_tid(x, 1);
	expect_bad(x->db, 0, last, "next_tid");
	set_next_tid(x, 4);
	expect_ok(x->db, LB_VERIFY_REPLAY);
	th_rmrf(base);
	free(c);
	free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, vx_setup, vx_teardown)
	        T(test_engine_verify__clean_log_is_counted),
	        T(test_engine_verify__empty_database),
	        T(test_engine_verify__read_only_handle),
	        T(test_engine_verify__bad_arguments),
	        T(test_engine_verify__busy_checks_again),
	        T(test_engine_verify__segment_byte_changed),
	        T(test_engine_verify__segment_deleted),
	        T(test_engine_verify__last_segment_deleted),
	        T(test_engine_verify__extra_segment),
	        T(test_engine_verify__segment_of_no_batch),
	        T(test_engine_verify__header_changed),
	        T(test_engine_verify__header_undecodable),
	        T(test_engine_verify__batches_swapped),
	        T(test_engine_verify__segments_swapped),
	        T(test_engine_verify__header_missing),
	        T(test_engine_verify__last_header_missing),
	        T(test_engine_verify__user_value_changed),
	        T(test_engine_verify__user_key_added_and_removed),
	        T(test_engine_verify__index_changed),
	        T(test_engine_verify__later_change_and_missing_key),
	        T(test_engine_verify__table_created_again),
	        T(test_engine_verify__undo_changed),
	        T(test_engine_verify__rollback_to_undoes_every_later_batch),
	        T(test_engine_verify__older_format_refused),
	        T(test_engine_verify__dangling_reference),
	        T(test_engine_verify__next_tid_changed),
	        T(test_engine_verify__next_tid_changed_pruned),
#undef T
	};
	return cmocka_run_group_tests_name("engine_verify", tests, NULL, NULL);
}
