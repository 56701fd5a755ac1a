/* SPDX-License-Identifier: MIT */
/*
 * hist.c: the history of a key: the batches that changed it, found by its
 * chain (FORMAT.md §2.4): the last batch that changed the key is the
 * writer of its value, or, when it is absent, the batch `_gone` names; each
 * batch's first record of the key names, in its prev, the batch that
 * changed it before; prev 0 ends the chain. And lb_history over them.
 *
 * Finding a batch's first record of a key decodes the batch: feed.c's
 * batch cache (lb__batch_first) keeps the batches asked about again.
 *
 * Above log.c (it walks batches) and feed.c (the batch cache).
 */
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

static int bad_chain(const lb_table *t, const void *key, size_t klen,
                     uint64_t id, uint64_t prev)
{
	char kt[96];
	lb__key_text(key, klen, kt, sizeof kt);
	if (prev)
		return lb__fail(LB_ECORRUPT,
		                "batch %llu: its record of %s '%s' names batch "
		                "%llu as the key's previous change",
		                (unsigned long long)id, t->name, kt,
		                (unsigned long long)prev);
	return lb__fail(LB_ECORRUPT,
	                "the history of %s '%s' names batch %llu, whose log "
	                "does not change it",
	                t->name, kt, (unsigned long long)id);
}

int lb__hist_walk(lb_db *db, MDB_txn *txn, lb_batch *b, const lb_table *t,
                  const void *key, size_t klen, uint64_t floor, lb_segr *r,
                  lb__hist_fn fn, void *ctx, uint64_t *pruned)
{
	uint64_t cur, limit = b ? b->id : UINT64_MAX;
	int rc = lb__key_head(db, txn, t, key, klen, &cur);
	if (pruned)
		*pruned = 0;
	if (rc < 0)
		return rc;
	if (b && cur == b->id) {
		/* the batch being written changed the key: its first record
		 * names the last committed change */
		uint8_t ik[LB__IKEY_MAX];
		size_t iklen = lb__ikey(ik, t->tid, key, klen);
		if (!iklen)
			return LB_ENOMEM;
		cur = lb__batch_own_prev(b, ik, iklen);
	}
	while (cur > floor) {
		uint64_t prev;
		if (cur >= limit)
			return bad_chain(t, key, klen, limit, cur);
		if ((rc = fn(ctx, cur)) != 0)
			return rc < 0 ? rc : 0;
		rc = lb__batch_first(db, txn, cur, r, t->name, key, klen,
		                     &prev);
		if (rc == LB_EPRUNED) {
			/* a prefix of the log is pruned: nothing older can
			 * be found */
			if (pruned)
				*pruned = cur;
			return 0;
		}
		if (rc < 0)
			return rc;
		if (rc == 0)
			return bad_chain(t, key, klen, cur, 0);
		if (prev >= cur)
			return bad_chain(t, key, klen, cur, prev);
		cur = prev;
	}
	return 0;
}

/* lb__hist_last's walk: the first batch met not in the set. */
typedef struct last_ctx {
	const uint64_t *set;
	size_t nset;
	uint64_t found;
} last_ctx;

static int in_desc(const uint64_t *set, size_t n, uint64_t id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (set[mid] == id)
			return 1;
		if (set[mid] > id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int last_cb(void *p, uint64_t id)
{
	last_ctx *c = p;
	if (c->set && in_desc(c->set, c->nset, id))
		return 0;
	c->found = id;
	return 1;
}

int lb__hist_last(lb_db *db, MDB_txn *txn, lb_batch *b, const lb_table *t,
                  const void *key, size_t klen, const uint64_t *set,
                  size_t nset, lb_segr *r, uint64_t *out)
{
	last_ctx c = {set, nset, 0};
	lb_segr own;
	int rc;
	*out = 0;
	if (!nset)
		c.set = NULL;
	if (!r) {
		lb__segr_init(&own);
		r = &own;
	}
	rc = lb__hist_walk(db, txn, b, t, key, klen, 0, r, last_cb, &c, NULL);
	if (r == &own)
		lb__segr_free(&own);
	if (rc == 0)
		*out = c.found;
	return rc;
}

/* A key of t whose hashed ikey is ik: the table is read until a key of
 * more than LB_KEY_MAX - 4 bytes hashes to it. */
static int hashed_key(MDB_txn *txn, const lb_table *t, const uint8_t *ik,
                      uint8_t *key, size_t *klen)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = 0, mrc = mdb_cursor_open(txn, t->dbi, &c);
	if (mrc)
		return lb__mdb_fail(mrc, t->name);
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint8_t h[32];
		if (k.mv_size <= LB_KEY_MAX - 4 || k.mv_size > LB_KEY_MAX)
			continue;
		if ((rc = lb__sha256(k.mv_data, k.mv_size, h)) < 0)
			break;
		if (memcmp(h, ik + 4, 32) == 0) {
			memcpy(key, k.mv_data, k.mv_size);
			*klen = k.mv_size;
			rc = 1;
			break;
		}
	}
	if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
		rc = lb__mdb_fail(mrc, t->name);
	mdb_cursor_close(c);
	return rc;
}

int lb__ikey_key(MDB_txn *txn, const lb_table *t, const uint8_t *ik,
                 size_t iklen, uint8_t *key, size_t *klen)
{
	if (iklen < 4)
		return 0;
	if (!(lb__get_be32(ik) & LB__TID_HASHED)) {
		if (iklen - 4 == 0 || iklen - 4 > LB_KEY_MAX)
			return 0;
		memcpy(key, ik + 4, iklen - 4);
		*klen = iklen - 4;
		return 1;
	}
	if (iklen != 36)
		return 0;
	return hashed_key(txn, t, ik, key, klen);
}

/* ---- lb_history -------------------------------------------------------------
 */

typedef struct hist_ctx {
	const char *table;
	size_t tlen;
	const void *key;
	size_t klen;
	uint64_t batch;
	int found;
	uint64_t prev; /* the prev of the batch's first record of the key */
	lb_history_fn fn;
	void *ctx;
} hist_ctx;

static int hist_cb(void *p, const lb_wal_rec *r)
{
	hist_ctx *hc = p;
	if (r->op == LB_OP_TABLE || r->tlen != hc->tlen ||
	    memcmp(r->table, hc->table, hc->tlen) != 0 || r->klen != hc->klen ||
	    memcmp(r->key, hc->key, hc->klen) != 0)
		return 0;
	if (!hc->found) {
		hc->found = 1;
		hc->prev = r->prev;
	}
	char tname[LB_TABLE_NAME_MAX + 1];
	lb_change c;
	lb__to_change(r, tname, &c);
	return hc->fn(hc->ctx, hc->batch, &c);
}

int lb_history(lb_db *db, const char *table, const void *key, size_t klen,
               lb_history_fn fn, void *ctx)
{
	MDB_txn *txn;
	lb_segr r;
	if (!db || !fn)
		return lb__fail(LB_EINVAL, "lb_history: NULL argument");
	if (!table || !*table || !key || klen == 0)
		return lb__fail(LB_EINVAL, "lb_history: empty table or key");
	if (klen > LB_KEY_MAX)
		return lb__fail(LB_ETOOBIG, "key of %zu bytes (max %d)", klen,
		                LB_KEY_MAX);
	/* the transaction first: it brings the table list up to date */
	int rc = lb__read_txn(db, &txn);
	if (rc < 0)
		return rc;
	lb_table *t = lb__table_find(db, table);
	if (!t) {
		lb__read_done(db, txn);
		return lb__no_table(db, table);
	}
	hist_ctx hc = {table, strlen(table), key, klen, 0, 0, 0, fn, ctx};
	uint64_t cur;
	lb__segr_init(&r);
	if ((rc = lb__key_head(db, txn, t, key, klen, &cur)) < 0)
		goto out;
	/* newest first, each batch's records in log order */
	while (cur) {
		hc.batch = cur;
		hc.found = 0;
		hc.prev = 0;
		rc = lb__walk_batch(db, txn, cur, &r, hist_cb, &hc);
		if (rc == LB_EPRUNED) {
			/* nothing older can be found (FORMAT.md §2.4) */
			rc = fn(ctx, cur, NULL);
			break;
		}
		if (rc)
			break;
		if (!hc.found || hc.prev >= cur) {
			rc = bad_chain(t, key, klen, cur,
			               hc.found ? hc.prev : 0);
			break;
		}
		cur = hc.prev;
	}
out:
	lb__segr_free(&r);
	lb__read_done(db, txn);
	return rc;
}
