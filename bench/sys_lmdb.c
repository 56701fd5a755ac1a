/* SPDX-License-Identifier: MIT */
/*
 * sys_lmdb.c: the two LMDB peers.
 *
 * "lmdb" is the upper bound: the same puts as logbook in the same
 * transactions, into a named sub-database, with nothing logged.
 *
 * "naive" is what a straightforward reversible design costs: per batch,
 * every record reads its before-image (mdb_get), writes the after-image,
 * and appends [klen key blen before alen after] to a buffer (blen
 * 0xFFFFFFFF = no before-image); at the end of the batch the buffer is
 * deflated as one zlib stream (compress2 at --compression) and stored under
 * the batch number (u64 big-endian) in a second sub-database, in the same
 * transaction. Rollback reads the blob, inflates it and restores the
 * before-images in reverse order, without looking for later changes (it is
 * a forced rollback) and without logging itself. Replay inflates every blob
 * in order and applies the after-images to an empty environment, one
 * transaction per batch, without fsync until one at the end. Buffers are reused
 * across batches.
 *
 * Both use MDB_NOSYNC unless --sync, a 64 GiB map (sparse; LMDB never
 * grows the file beyond what it uses), and default LMDB flags otherwise.
 */
#include "bench.h"

#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define MAP_SIZE (64ull << 30)

static void check(int rc, const char *what)
{
	if (rc != 0)
		bk_die("lmdb: %s: %s", what, mdb_strerror(rc));
}

int bk_lmdb_env(const bk_cfg *cfg, const char *dir, MDB_env **env)
{
	if (bk_mkdir(dir) != 0)
		bk_die("mkdir %s failed", dir);
	check(mdb_env_create(env), "env_create");
	check(mdb_env_set_mapsize(*env, MAP_SIZE), "set_mapsize");
	check(mdb_env_set_maxdbs(*env, 4), "set_maxdbs");
	check(mdb_env_open(*env, dir, cfg->sync ? 0 : MDB_NOSYNC, 0600),
	      "env_open");
	return 0;
}

typedef struct lm {
	const bk_cfg *cfg;
	MDB_env *env;
	MDB_dbi t, log;
	int naive;
	uint64_t batches;
	uint8_t *buf, *z;
	size_t len, cap, zcap;
	uint64_t log_raw, log_stored;
} lm;

static MDB_dbi open_dbi(MDB_env *env, const char *name)
{
	MDB_txn *txn;
	MDB_dbi dbi;
	check(mdb_txn_begin(env, NULL, 0, &txn), "txn_begin");
	check(mdb_dbi_open(txn, name, MDB_CREATE, &dbi), "dbi_open");
	check(mdb_txn_commit(txn), "txn_commit");
	return dbi;
}

static int lm_open_common(const bk_cfg *cfg, const char *dir, int naive,
                          void **h)
{
	lm *s = bk_xmalloc(sizeof *s);
	memset(s, 0, sizeof *s);
	s->cfg = cfg;
	s->naive = naive;
	bk_lmdb_env(cfg, dir, &s->env);
	s->t = open_dbi(s->env, "t");
	if (naive)
		s->log = open_dbi(s->env, "log");
	*h = s;
	return 0;
}

static int lmdb_open(const bk_cfg *cfg, const char *dir, int schema, void **h)
{
	(void)schema;
	return lm_open_common(cfg, dir, 0, h);
}

static int naive_open(const bk_cfg *cfg, const char *dir, int schema, void **h)
{
	(void)schema;
	return lm_open_common(cfg, dir, 1, h);
}

static void lm_close(void *h)
{
	lm *s = h;
	if (!s)
		return;
	mdb_env_close(s->env);
	free(s->buf);
	free(s->z);
	free(s);
}

static int lmdb_commit(void *h, const bk_batch *b)
{
	lm *s = h;
	MDB_txn *txn;
	check(mdb_txn_begin(s->env, NULL, 0, &txn), "txn_begin");
	for (size_t i = 0; i < b->n; i++) {
		const bk_rec *r = &b->recs[i];
		MDB_val k = {BK_KEY_LEN, (void *)r->key};
		MDB_val v = {r->vlen, (void *)(b->arena + r->voff)};
		check(mdb_put(txn, s->t, &k, &v, 0), "put");
	}
	check(mdb_txn_commit(txn), "txn_commit");
	s->batches++;
	return 0;
}

static void buf_add(lm *s, const void *p, size_t n)
{
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : 1 << 16;
		while (cap < s->len + n)
			cap *= 2;
		s->buf = bk_xrealloc(s->buf, cap);
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

static void buf_u32(lm *s, uint32_t v)
{
	buf_add(s, &v, 4); /* native order: the log never leaves the host */
}

static void be64(uint8_t out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (uint8_t)v;
}

static int naive_commit(void *h, const bk_batch *b)
{
	lm *s = h;
	MDB_txn *txn;
	check(mdb_txn_begin(s->env, NULL, 0, &txn), "txn_begin");
	s->len = 0;
	for (size_t i = 0; i < b->n; i++) {
		const bk_rec *r = &b->recs[i];
		MDB_val k = {BK_KEY_LEN, (void *)r->key}, old;
		MDB_val v = {r->vlen, (void *)(b->arena + r->voff)};
		buf_u32(s, BK_KEY_LEN);
		buf_add(s, r->key, BK_KEY_LEN);
		int rc = mdb_get(txn, s->t, &k, &old);
		if (rc == 0) {
			/* Copied before the put can change the page. */
			buf_u32(s, (uint32_t)old.mv_size);
			buf_add(s, old.mv_data, old.mv_size);
		} else {
			if (rc != MDB_NOTFOUND)
				check(rc, "get");
			buf_u32(s, 0xFFFFFFFFu);
		}
		buf_u32(s, r->vlen);
		buf_add(s, v.mv_data, v.mv_size);
		check(mdb_put(txn, s->t, &k, &v, 0), "put");
	}
	uLongf zlen = compressBound((uLong)s->len) + 4;
	if (zlen > s->zcap) {
		s->z = bk_xrealloc(s->z, zlen);
		s->zcap = zlen;
	}
	uint32_t raw = (uint32_t)s->len;
	memcpy(s->z, &raw, 4);
	zlen -= 4;
	if (compress2(s->z + 4, &zlen, s->buf, (uLong)s->len,
	              s->cfg->compression) != Z_OK)
		bk_die("naive: compress2 failed");
	uint8_t kb[8];
	be64(kb, ++s->batches);
	MDB_val k = {8, kb}, v = {zlen + 4, s->z};
	check(mdb_put(txn, s->log, &k, &v, 0), "put log");
	check(mdb_txn_commit(txn), "txn_commit");
	s->log_raw += s->len;
	s->log_stored += zlen + 4;
	return 0;
}

/* Inflate one blob into s->buf; returns its raw length. */
static size_t inflate_blob(lm *s, const MDB_val *v)
{
	uint32_t raw;
	memcpy(&raw, v->mv_data, 4);
	if (raw > s->cap) {
		s->buf = bk_xrealloc(s->buf, raw);
		s->cap = raw;
	}
	uLongf out = raw;
	if (uncompress(s->buf, &out, (const Bytef *)v->mv_data + 4,
	               (uLong)v->mv_size - 4) != Z_OK ||
	    out != raw)
		bk_die("naive: bad log blob");
	return raw;
}

typedef struct nrec {
	MDB_val key, before, after;
	int has_before, has_after;
} nrec;

static size_t parse_blob(const uint8_t *p, size_t len, nrec **out, size_t *cap)
{
	size_t n = 0, off = 0;
	while (off < len) {
		if (n == *cap) {
			*cap = *cap ? *cap * 2 : 1024;
			*out = bk_xrealloc(*out, sizeof **out * *cap);
		}
		nrec *r = &(*out)[n++];
		uint32_t l;
		memcpy(&l, p + off, 4);
		r->key.mv_size = l;
		r->key.mv_data = (void *)(p + off + 4);
		off += 4 + l;
		memcpy(&l, p + off, 4);
		r->has_before = l != 0xFFFFFFFFu;
		r->before.mv_size = r->has_before ? l : 0;
		r->before.mv_data = (void *)(p + off + 4);
		off += 4 + r->before.mv_size;
		memcpy(&l, p + off, 4);
		r->has_after = l != 0xFFFFFFFFu;
		r->after.mv_size = r->has_after ? l : 0;
		r->after.mv_data = (void *)(p + off + 4);
		off += 4 + r->after.mv_size;
	}
	return n;
}

/* Forced rollback of batch number id (1-based): one transaction. */
static uint64_t naive_rollback(lm *s, uint64_t id)
{
	MDB_txn *txn;
	uint8_t kb[8];
	nrec *recs = NULL;
	size_t cap = 0;
	be64(kb, id);
	MDB_val k = {8, kb}, v;
	check(mdb_txn_begin(s->env, NULL, 0, &txn), "txn_begin");
	check(mdb_get(txn, s->log, &k, &v), "get log");
	size_t raw = inflate_blob(s, &v);
	size_t n = parse_blob(s->buf, raw, &recs, &cap);
	for (size_t i = n; i-- > 0;) {
		if (recs[i].has_before) {
			check(mdb_put(txn, s->t, &recs[i].key, &recs[i].before,
			              0),
			      "put");
		} else {
			int rc = mdb_del(txn, s->t, &recs[i].key, NULL);
			if (rc != MDB_NOTFOUND)
				check(rc, "del");
		}
	}
	check(mdb_txn_commit(txn), "txn_commit");
	free(recs);
	return n;
}

/* Replay every blob of s into an empty environment at dir. */
static uint64_t naive_replay(lm *s, const char *dir)
{
	lm *d;
	MDB_txn *rtxn;
	MDB_cursor *cur;
	MDB_val k, v;
	nrec *recs = NULL;
	size_t cap = 0;
	uint64_t total = 0;
	/* A replay builds a new store: no fsync per batch, one at the end. */
	bk_cfg nosync = *s->cfg;
	nosync.sync = 0;
	lm_open_common(&nosync, dir, 0, (void **)&d);
	check(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &rtxn), "txn_begin");
	check(mdb_cursor_open(rtxn, s->log, &cur), "cursor_open");
	int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		size_t raw = inflate_blob(s, &v);
		size_t n = parse_blob(s->buf, raw, &recs, &cap);
		MDB_txn *txn;
		check(mdb_txn_begin(d->env, NULL, 0, &txn), "txn_begin");
		for (size_t i = 0; i < n; i++) {
			if (recs[i].has_after)
				check(mdb_put(txn, d->t, &recs[i].key,
				              &recs[i].after, 0),
				      "put");
			else if ((rc = mdb_del(txn, d->t, &recs[i].key,
			                       NULL)) != MDB_NOTFOUND)
				check(rc, "del");
		}
		check(mdb_txn_commit(txn), "txn_commit");
		total += n;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc != MDB_NOTFOUND)
		check(rc, "cursor_get");
	mdb_cursor_close(cur);
	mdb_txn_abort(rtxn);
	check(mdb_env_sync(d->env, 1), "env_sync");
	lm_close(d);
	free(recs);
	return total;
}

/* Point reads as lb_get does them: a read transaction per call (reset and
 * renewed, not recreated) and a malloc'd copy of the value. */
static int lm_gets(lm *s, const bk_workload *w, bk_meas *m)
{
	MDB_txn *txn;
	char key[BK_KEY_LEN];
	uint64_t sum = 0;
	check(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn), "txn_begin");
	mdb_txn_reset(txn);
	double t0 = bk_now();
	for (uint64_t i = 0; i < w->nreads; i++) {
		bk_key_w(w, w->reads[i], key);
		MDB_val k = {BK_KEY_LEN, key}, v;
		check(mdb_txn_renew(txn), "txn_renew");
		check(mdb_get(txn, s->t, &k, &v), "get");
		void *copy = malloc(v.mv_size);
		memcpy(copy, v.mv_data, v.mv_size);
		sum += ((uint8_t *)copy)[v.mv_size / 2];
		free(copy);
		mdb_txn_reset(txn);
	}
	double t1 = bk_now();
	mdb_txn_abort(txn);
	bk_meas_set(m, t1 - t0, w->nreads, 0);
	bk_sink += sum;
	return 0;
}

static int lm_scan(lm *s, const bk_workload *w, bk_meas *m)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t n = 0, bytes = 0;
	double t0 = bk_now();
	check(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn), "txn_begin");
	check(mdb_cursor_open(txn, s->t, &cur), "cursor_open");
	int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		n++;
		bytes +=
		        k.mv_size + v.mv_size + ((const uint8_t *)v.mv_data)[0];
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	double t1 = bk_now();
	bk_meas_set(m, t1 - t0, n, bytes);
	if (n != w->keys)
		bk_note(m, "scan saw %llu keys, expected %llu",
		        (unsigned long long)n, (unsigned long long)w->keys);
	return 0;
}

/* Compare a sample of keys with their final values. */
static int lm_verify_values(lm *s, const bk_workload *w)
{
	MDB_txn *txn;
	char key[BK_KEY_LEN];
	int bad = 0;
	check(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn), "txn_begin");
	uint64_t step = w->keys / 1000 + 1;
	for (uint64_t i = 0; i < w->keys; i += step) {
		bk_key_w(w, i, key);
		MDB_val k = {BK_KEY_LEN, key}, v;
		if (mdb_get(txn, s->t, &k, &v) != 0 ||
		    bk_workload_check(w, i, v.mv_data, v.mv_size) != 0)
			bad++;
	}
	mdb_txn_abort(txn);
	return bad;
}

static int lm_run(const bk_ctx *c, bk_run *out, int naive)
{
	const bk_workload *w = c->w;
	char *db = bk_path(c->dir, "db");
	lm *s;
	lm_open_common(c->cfg, db, naive, (void **)&s);
	const bk_system *sys = naive ? &bk_sys_naive : &bk_sys_lmdb;
	if (bk_commit_all(sys, s, w, out, NULL, NULL) != 0)
		bk_die("%s: commit failed", bk_sys_name(sys->id));
	if (lm_verify_values(s, w) != 0)
		bk_note(&out->ph[PH_COMMIT], "WRONG VALUES after commit");
	out->has_log = naive;
	out->log_raw = s->log_raw;
	out->log_stored = s->log_stored;
	lm_close(s);
	out->disk_bytes = bk_du(db);

	lm_open_common(c->cfg, db, naive, (void **)&s);
	if (c->phases & 1u << PH_GET)
		lm_gets(s, w, &out->ph[PH_GET]);
	if (c->phases & 1u << PH_SCAN)
		lm_scan(s, w, &out->ph[PH_SCAN]);
	if (naive && (c->phases & 1u << PH_REPLAY)) {
		char *rd = bk_path(c->dir, "replay");
		double t0 = bk_now();
		uint64_t n = naive_replay(s, rd);
		bk_meas_set(&out->ph[PH_REPLAY], bk_now() - t0, n, 0);
		bk_rmrf(rd);
		free(rd);
	}
	lm_close(s);

	/* Rollbacks, each on a fresh copy of the committed store. */
	static const int rb[2] = {PH_RB_LAST, PH_RB_FORCE};
	for (int i = 0; naive && i < 2; i++) {
		if (!(c->phases & 1u << rb[i]))
			continue;
		char *cp = bk_path(c->dir, "copy");
		if (bk_copy_dir(db, cp) != 0)
			bk_die("copy of %s failed", db);
		lm_open_common(c->cfg, cp, 1, (void **)&s);
		uint64_t id = rb[i] == PH_RB_LAST ? w->nbatches : w->mid + 1;
		double t0 = bk_now();
		uint64_t n = naive_rollback(s, id);
		bk_meas_set(&out->ph[rb[i]], bk_now() - t0, n, 0);
		lm_close(s);
		bk_rmrf(cp);
		free(cp);
	}
	if (!c->cfg->keep)
		bk_rmrf(db);
	free(db);
	return 0;
}

static int lmdb_run(const bk_ctx *c, bk_run *out)
{
	return lm_run(c, out, 0);
}

static int naive_run(const bk_ctx *c, bk_run *out)
{
	return lm_run(c, out, 1);
}

const bk_system bk_sys_lmdb = {
        .id = SYS_LMDB,
        .phases = 1u << PH_COMMIT | 1u << PH_GET | 1u << PH_SCAN | 1u << PH_RSS,
        .open = lmdb_open,
        .commit = lmdb_commit,
        .close = lm_close,
        .run = lmdb_run,
};

const bk_system bk_sys_naive = {
        .id = SYS_NAIVE,
        .phases = 1u << PH_COMMIT | 1u << PH_RB_LAST | 1u << PH_RB_FORCE |
                  1u << PH_REPLAY | 1u << PH_GET | 1u << PH_SCAN | 1u << PH_RSS,
        .open = naive_open,
        .commit = naive_commit,
        .close = lm_close,
        .run = naive_run,
};
