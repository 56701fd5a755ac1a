/* SPDX-License-Identifier: MIT */
/*
 * follow.c: batch frames and followers. lb_batch_raw on a primary and
 * lb_batch_apply_raw on a follower give a follower whose log (every
 * header's hash and state), tables and verify equal the primary's, through
 * a seeded random history of puts, deletes, table creations, rollbacks
 * (strict, cascading, forced) and rollback-to. Also: identities, a
 * duplicate frame is a no-op, gaps and forks are refused with the batch
 * named, every damaged byte of a frame and a forged frame (valid framing,
 * wrong hash) are refused with nothing applied, a follower refuses batches
 * of its own until promoted, a follower bootstrapped from a checkpoint,
 * a pruned batch is not framed.
 *
 * LB_FOLLOW_ROUNDS (default 3) sets the random histories' count.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pair {
	char *pd, *fd;
	lb_db *p, *f;
} pair;

static void pair_open(pair *x)
{
	x->pd = th_tmpdir();
	x->fd = th_tmpdir();
	x->p = te_open(x->pd, LB_CREATE | LB_NOSYNC);
	x->f = te_open(x->fd, LB_CREATE | LB_NOSYNC);
	te_rc(0, lb_table_create(x->p, "t", NULL)); /* batch 1 */
}

static void pair_close(pair *x)
{
	lb_close(x->p);
	lb_close(x->f);
	th_rmrf(x->pd);
	th_rmrf(x->fd);
	free(x->pd);
	free(x->fd);
}

static void frame_of(lb_db *db, uint64_t id, void **buf, size_t *len)
{
	te_rc(0, lb_batch_raw(db, id, buf, len));
	assert_non_null(*buf);
	assert_true(*len > 52);
}

/* Apply every batch of p that f lacks, one frame each. */
static void ship_all(lb_db *p, lb_db *f)
{
	uint64_t last = te_last(p), got;
	for (uint64_t id = te_last(f) + 1; id <= last; id++) {
		void *buf;
		size_t len;
		frame_of(p, id, &buf, &len);
		te_rc(0, lb_batch_apply_raw(f, buf, len, &got));
		assert_int_equal(got, id);
		free(buf);
	}
}

/* f holds p's log and tables: same headers (hash and state), same
 * content, and it verifies with replay. */
static void assert_same(lb_db *p, lb_db *f)
{
	uint64_t n = te_last(p);
	lb_verify_report rep;
	assert_int_equal(te_last(f), n);
	for (uint64_t id = 1; id <= n; id++) {
		lb_batch_info a, b;
		te_rc(0, lb_batch_info_get(p, id, &a));
		te_rc(0, lb_batch_info_get(f, id, &b));
		assert_memory_equal(a.hash, b.hash, 32);
		assert_string_equal(a.label, b.label);
		assert_int_equal(a.time_ns, b.time_ns);
		assert_int_equal(a.undoes, b.undoes);
		assert_int_equal(a.rolled_back_by, b.rolled_back_by);
	}
	assert_int_equal(te_digest(p), te_digest(f));
	te_rc(0, lb_verify(f, LB_VERIFY_REPLAY, &rep));
}

static void test_engine_follow__identity(void **st)
{
	pair x;
	lb_identity a, b, c;
	(void)st;
	pair_open(&x);
	te_rc(0, lb_identity_get(x.p, &a));
	te_rc(0, lb_identity_get(x.f, &b));
	assert_false(a.follows);
	assert_false(b.follows);
	assert_memory_not_equal(a.id, b.id, LB_ID_SIZE);
	lb_close(x.p);
	x.p = te_open(x.pd, 0);
	te_rc(0, lb_identity_get(x.p, &c));
	assert_memory_equal(a.id, c.id, LB_ID_SIZE);
	/* the first frame makes the empty database a follower of its origin */
	te_put1(x.p, "t", "k", "v");
	ship_all(x.p, x.f);
	te_rc(0, lb_identity_get(x.f, &c));
	assert_true(c.follows);
	assert_memory_equal(c.primary, a.id, LB_ID_SIZE);
	assert_memory_equal(c.id, b.id, LB_ID_SIZE);
	te_rc(LB_EINVAL, lb_identity_get(NULL, &c));
	te_rc(LB_EINVAL, lb_identity_get(x.f, NULL));
	pair_close(&x);
}

/* One random step of the primary's history. */
static void step(lb_db *db, uint64_t *rs, int *ntables)
{
	lb_result res;
	uint64_t last = te_last(db);
	unsigned what = (unsigned)th_below(rs, 10);
	if (*ntables == 0 || what == 0) {
		char name[16];
		snprintf(name, sizeof name, "t%d", (*ntables)++);
		te_rc(0, lb_table_create(db, name, NULL));
		return;
	}
	if (what <= 6 || last < 3) {
		lb_batch *b;
		char label[32], tname[16], key[16], val[64];
		snprintf(label, sizeof label, "b%llu",
		         (unsigned long long)last + 1);
		te_rc(0, lb_batch_begin(db, label, &b));
		unsigned n = 1 + (unsigned)th_below(rs, 40);
		for (unsigned i = 0; i < n; i++) {
			snprintf(tname, sizeof tname, "t%d",
			         (int)th_below(rs, (uint64_t)*ntables));
			snprintf(key, sizeof key, "k%02u",
			         (unsigned)th_below(rs, 30));
			int vl = snprintf(val, sizeof val, "v%llu",
			                  (unsigned long long)th_rand(rs));
			const void *cur;
			size_t cl;
			if (th_below(rs, 5) == 0 &&
			    lb_batch_get(b, tname, key, strlen(key), &cur,
			                 &cl) == 0) {
				te_rc(0, lb_delete(b, tname, key, strlen(key)));
			} else {
				/* a rollback may have removed the table */
				int rc = lb_put(b, tname, key, strlen(key), val,
				                (size_t)vl);
				assert_true(rc == 0 || rc == LB_ENOTFOUND);
			}
		}
		te_rc(0, lb_batch_commit(b, &res));
		lb_result_free(&res);
		return;
	}
	uint64_t target = 1 + th_below(rs, last);
	int rc;
	if (what == 7)
		rc = lb_rollback(db, target, LB_CASCADE, &res);
	else if (what == 8)
		rc = lb_rollback(db, target, LB_FORCE, &res);
	else
		rc = lb_rollback_to(db, last - th_below(rs, 3), &res);
	/* a rollback may be refused (a table it would remove holds keys
	 * that later batches need, nothing to undo...): any answer but
	 * damage is fine, as long as the log stays the same on both sides */
	assert_true(rc != LB_ECORRUPT && rc != LB_ENOMEM && rc != LB_EIO);
	lb_result_free(&res);
}

static void test_engine_follow__random_histories(void **st)
{
	long rounds = th_env_long("LB_FOLLOW_ROUNDS", 3);
	uint64_t seed = th_seed(20);
	(void)st;
	for (long r = 0; r < rounds; r++) {
		pair x;
		uint64_t rs = seed + (uint64_t)r;
		int ntables = 0;
		pair_open(&x);
		for (int i = 0; i < 60; i++) {
			step(x.p, &rs, &ntables);
			if (th_below(&rs, 4) == 0)
				ship_all(x.p, x.f);
		}
		ship_all(x.p, x.f);
		assert_same(x.p, x.f);
		pair_close(&x);
	}
}

static void test_engine_follow__duplicates_gaps_forks(void **st)
{
	pair x;
	char *od = th_tmpdir();
	lb_db *o = te_open(od, LB_CREATE | LB_NOSYNC);
	void *f1, *f2, *f3, *o1;
	size_t l1, l2, l3, lo;
	uint64_t got;
	(void)st;
	pair_open(&x);
	te_put1(x.p, "t", "a", "1");
	te_put1(x.p, "t", "b", "2");
	te_put1(x.p, "t", "c", "3");
	te_rc(0, lb_table_create(o, "t", NULL));
	te_put1(o, "t", "a", "other");
	frame_of(x.p, 1, &f1, &l1);
	frame_of(x.p, 2, &f2, &l2);
	frame_of(x.p, 3, &f3, &l3);
	frame_of(o, 1, &o1, &lo);
	/* a gap: batch 2 first */
	te_rc(LB_ECONFLICT, lb_batch_apply_raw(x.f, f2, l2, &got));
	assert_int_equal(got, 0);
	assert_non_null(strstr(lb_errmsg(), "gap"));
	assert_non_null(strstr(lb_errmsg(), "batch 2"));
	te_rc(0, lb_batch_apply_raw(x.f, f1, l1, &got));
	/* a duplicate, a redelivery: nothing to do */
	te_rc(0, lb_batch_apply_raw(x.f, f1, l1, &got));
	assert_int_equal(got, 1);
	assert_int_equal(te_last(x.f), 1);
	/* a fork: another batch 1 */
	te_rc(LB_ECONFLICT, lb_batch_apply_raw(x.f, o1, lo, &got));
	assert_non_null(strstr(lb_errmsg(), "fork at batch 1"));
	te_rc(LB_ECONFLICT, lb_batch_apply_raw(x.f, f3, l3, &got));
	te_rc(0, lb_batch_apply_raw(x.f, f2, l2, &got));
	te_rc(0, lb_batch_apply_raw(x.f, f3, l3, &got));
	te_rc(0, lb_batch_apply_raw(x.f, f2, l2, &got));
	ship_all(x.p, x.f);
	assert_same(x.p, x.f);
	/* a primary applies no frame of another database */
	te_rc(LB_EINVAL, lb_batch_apply_raw(o, f2, l2, &got));
	assert_non_null(strstr(lb_errmsg(), "is a primary"));
	free(f1);
	free(f2);
	free(f3);
	free(o1);
	lb_close(o);
	th_rmrf(od);
	free(od);
	pair_close(&x);
}

/* Recompute a frame's trailing CRC-32 (FORMAT.md §16), as a forger would;
 * zlib's crc32 is the same CRC-32/ISO-HDLC. */
static uint32_t crc32_of(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

static void recrc(uint8_t *p, size_t len)
{
	uint32_t c = crc32_of(p, len - 4);
	for (int i = 0; i < 4; i++)
		p[len - 4 + i] = (uint8_t)(c >> (8 * i));
}

static void test_engine_follow__damaged_and_forged_frames(void **st)
{
	pair x;
	void *buf;
	size_t len;
	uint64_t got, dig;
	(void)st;
	pair_open(&x);
	te_put1(x.p, "t", "a", "1");
	te_put1(x.p, "t", "b", "value of b");
	ship_all(x.p, x.f);
	te_put1(x.p, "t", "c", "3");
	frame_of(x.p, 4, &buf, &len);
	dig = te_digest(x.f);
	uint8_t *p = buf, *copy = malloc(len);
	assert_non_null(copy);
	/* every byte, one bit flipped: refused, nothing applied */
	for (size_t i = 0; i < len; i++) {
		memcpy(copy, p, len);
		copy[i] ^= (uint8_t)(1u << (i % 8));
		int rc = lb_batch_apply_raw(x.f, copy, len, &got);
		if (rc != LB_ECORRUPT && rc != LB_EVERSION)
			fail_msg("byte %zu flipped: rc %d (%s)", i, rc,
			         lb_errmsg());
		assert_int_equal(te_last(x.f), 3);
	}
	/* truncated anywhere */
	for (size_t n = 0; n < len; n += 7)
		te_rc(LB_ECORRUPT, lb_batch_apply_raw(x.f, p, n, &got));
	/* forged: a segment byte changed and the CRC made right again (the
	 * segment's SHA-256 in the header no longer matches) */
	memcpy(copy, p, len);
	copy[len - 10] ^= 0x20;
	recrc(copy, len);
	te_rc(LB_ECORRUPT, lb_batch_apply_raw(x.f, copy, len, &got));
	assert_non_null(strstr(lb_errmsg(), "batch 4"));
	/* forged: the label in the header changed (the hash no longer
	 * matches) */
	memcpy(copy, p, len);
	copy[48 + 12] ^= 0x01;
	recrc(copy, len);
	te_rc(LB_ECORRUPT, lb_batch_apply_raw(x.f, copy, len, &got));
	assert_int_equal(te_last(x.f), 3);
	assert_int_equal(te_digest(x.f), dig);
	te_rc(LB_EINVAL, lb_batch_apply_raw(x.f, NULL, len, &got));
	te_rc(LB_EINVAL, lb_batch_apply_raw(NULL, p, len, &got));
	/* the genuine frame still applies */
	te_rc(0, lb_batch_apply_raw(x.f, p, len, &got));
	assert_same(x.p, x.f);
	free(copy);
	free(buf);
	pair_close(&x);
}

static void test_engine_follow__refuses_own_batches_until_promoted(void **st)
{
	pair x;
	lb_batch *b;
	lb_result res;
	lb_identity id;
	void *buf;
	size_t len;
	uint64_t got;
	(void)st;
	pair_open(&x);
	te_put1(x.p, "t", "a", "1");
	ship_all(x.p, x.f);
	te_rc(LB_EINVAL, lb_batch_begin(x.f, "mine", &b));
	assert_null(b);
	assert_non_null(strstr(lb_errmsg(), "promote it first"));
	te_rc(LB_EINVAL, lb_table_create(x.f, "u", NULL));
	te_rc(LB_EINVAL, lb_rollback(x.f, 1, 0, &res));
	lb_result_free(&res);
	/* still so after a reopen */
	lb_close(x.f);
	x.f = te_open(x.fd, 0);
	te_rc(LB_EINVAL, lb_batch_begin(x.f, "mine", &b));
	te_rc(0, lb_promote(x.f));
	te_rc(0, lb_identity_get(x.f, &id));
	assert_false(id.follows);
	te_rc(LB_EINVAL, lb_promote(x.f));
	te_put1(x.f, "t", "b", "mine");
	/* the old primary's next batch now forks */
	te_put1(x.p, "t", "c", "theirs");
	frame_of(x.p, 3, &buf, &len);
	te_rc(LB_EINVAL, lb_batch_apply_raw(x.f, buf, len, &got));
	assert_non_null(strstr(lb_errmsg(), "is a primary"));
	free(buf);
	pair_close(&x);
}

static void test_engine_follow__checkpoint_bootstrap(void **st)
{
	pair x;
	char *ck = th_tmpdir(), *ckd;
	lb_identity pid, fid;
	uint64_t at;
	(void)st;
	pair_open(&x);
	for (int i = 0; i < 5; i++)
		te_put1(x.p, "t", "k", i % 2 ? "odd" : "even");
	th_rmrf(ck);
	ckd = ck;
	te_rc(0, lb_checkpoint(x.p, ckd, &at));
	assert_int_equal(at, 6);
	te_rc(0, lb_table_create(x.p, "u", NULL));
	for (int i = 0; i < 5; i++)
		te_put1(x.p, "u", "k", i % 2 ? "odd" : "even");
	te_rc(0, lb_prune(x.p, 6));
	void *buf;
	size_t len;
	te_rc(LB_EPRUNED, lb_batch_raw(x.p, 2, &buf, &len));
	assert_null(buf);
	/* the follower starts from the checkpoint copy */
	lb_close(x.f);
	th_rmrf(x.fd);
	free(x.fd);
	x.fd = ck;
	x.f = te_open(x.fd, 0);
	ship_all(x.p, x.f);
	te_rc(0, lb_identity_get(x.p, &pid));
	te_rc(0, lb_identity_get(x.f, &fid));
	assert_true(fid.follows);
	assert_memory_equal(fid.primary, pid.id, LB_ID_SIZE);
	assert_memory_not_equal(fid.id, pid.id, LB_ID_SIZE);
	assert_int_equal(te_last(x.f), 12);
	for (uint64_t id = 1; id <= 12; id++) {
		lb_batch_info a, b;
		te_rc(0, lb_batch_info_get(x.p, id, &a));
		te_rc(0, lb_batch_info_get(x.f, id, &b));
		assert_memory_equal(a.hash, b.hash, 32);
	}
	assert_int_equal(te_digest(x.p), te_digest(x.f));
	pair_close(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_engine_follow__identity),
	        cmocka_unit_test(test_engine_follow__random_histories),
	        cmocka_unit_test(test_engine_follow__duplicates_gaps_forks),
	        cmocka_unit_test(test_engine_follow__damaged_and_forged_frames),
	        cmocka_unit_test(
	                test_engine_follow__refuses_own_batches_until_promoted),
	        cmocka_unit_test(test_engine_follow__checkpoint_bootstrap),
	};
	return cmocka_run_group_tests_name("engine_follow", tests, NULL, NULL);
}
