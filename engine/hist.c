/* SPDX-License-Identifier: MIT */
/*
 * hist.c: the history of a key: the batches that changed it, as `_hist`
 * lists them, closed under what `_undo` implies (an undo batch whose
 * history is implied changed every key the batch it undid changed;
 * FORMAT.md §2.4), and lb_history over them.
 *
 * Above log.c (it walks batches) and undo.c (it asks who undid a batch).
 */
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

/* Does `_undo` hold anything (1), or nothing (0: most databases never roll
 * back)? */
static int any_undo(lb_db *db, MDB_txn *txn)
{
	MDB_stat st;
	return mdb_stat(txn, db->undo, &st) != 0 || st.ms_entries > 0;
}

static int ids_put(uint64_t **ids, size_t *n, size_t *cap, size_t at,
                   uint64_t id)
{
	int rc = lb__grow(ids, cap, *n + 1, sizeof **ids, 16);
	if (rc < 0)
		return rc;
	memmove(*ids + at + 1, *ids + at, (*n - at) * sizeof **ids);
	(*ids)[at] = id;
	(*n)++;
	return 0;
}

int lb__hist_ids(lb_db *db, MDB_txn *txn, MDB_cursor *c, const void *ik,
                 size_t iklen, uint64_t below, uint64_t **ids, size_t *n,
                 size_t *cap)
{
	MDB_val k = {iklen, (void *)ik}, v;
	int rc = 0, mrc;
	*n = 0;
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); mrc == 0;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
		if (v.mv_size != 8)
			return lb__fail(LB_ECORRUPT, "_hist: bad entry");
		uint64_t id = lb__get_be64(v.mv_data);
		if (id >= below)
			break;
		if ((rc = ids_put(ids, n, cap, *n, id)) < 0)
			return rc;
	}
	if (mrc && mrc != MDB_NOTFOUND)
		return lb__mdb_fail(mrc, "_hist");
	if (*n == 0 || !any_undo(db, txn))
		return rc;
	/* Close the list under `_undo`'s implied entries: batch Z of the list
	 * was undone by R, which changed every key Z changed. R > Z goes in
	 * order after Z, so it is visited in turn (R may have been undone
	 * too). */
	MDB_cursor *uc;
	uint64_t *rs = NULL;
	size_t nr = 0, rcap = 0;
	if ((mrc = mdb_cursor_open(txn, db->undo, &uc)))
		return lb__mdb_fail(mrc, "_undo");
	for (size_t i = 0; i < *n && rc == 0; i++) {
		if ((rc = lb__undoers(db, txn, uc, (*ids)[i], &rs, &nr,
		                      &rcap)) < 0)
			break;
		for (size_t j = 0; j < nr && rc == 0; j++) {
			if (!(rs[j] & LB__UNDO_IMPLIED))
				continue;
			uint64_t r = rs[j] & ~LB__UNDO_IMPLIED;
			if (r >= below)
				continue;
			size_t lo = i + 1, hi = *n;
			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;
				if ((*ids)[mid] < r)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo < *n && (*ids)[lo] == r)
				continue;
			rc = ids_put(ids, n, cap, lo, r);
		}
	}
	mdb_cursor_close(uc);
	free(rs);
	return rc;
}

int lb__hist_last(lb_db *db, MDB_txn *txn, MDB_cursor *c, const void *ik,
                  size_t iklen, uint64_t below, uint64_t *out)
{
	uint64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int rc = lb__hist_ids(db, txn, c, ik, iklen, below, &ids, &n, &cap);
	*out = rc == 0 && n ? ids[n - 1] : 0;
	free(ids);
	return rc;
}

/* ---- lb_history -------------------------------------------------------------
 */

typedef struct {
	const char *table;
	size_t tlen;
	const void *key;
	size_t klen;
	uint64_t batch;
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
	char tname[LB_TABLE_NAME_MAX + 1];
	lb_change c;
	lb__to_change(r, tname, &c);
	return hc->fn(hc->ctx, hc->batch, &c);
}

int lb_history(lb_db *db, const char *table, const void *key, size_t klen,
               lb_history_fn fn, void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *c = NULL;
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
	uint8_t ik[LB__IKEY_MAX];
	size_t iklen = lb__ikey(ik, t->tid, key, klen);
	uint64_t *ids = NULL;
	size_t nids = 0, cap = 0;
	hist_ctx hc = {table, strlen(table), key, klen, 0, fn, ctx};
	lb__segr_init(&r);
	int mrc = iklen ? mdb_cursor_open(txn, db->hist, &c) : 0;
	if (!iklen) {
		rc = LB_ENOMEM;
		goto out;
	}
	if (mrc) {
		rc = lb__mdb_fail(mrc, "_hist");
		goto out;
	}
	if ((rc = lb__hist_ids(db, txn, c, ik, iklen, UINT64_MAX, &ids, &nids,
	                       &cap)) < 0)
		goto out;
	/* newest first */
	for (size_t i = nids; i-- > 0;) {
		hc.batch = ids[i];
		rc = lb__walk_batch(db, txn, hc.batch, &r, hist_cb, &hc);
		if (rc == LB_EPRUNED)
			rc = fn(ctx, hc.batch, NULL);
		if (rc)
			goto out;
	}
out:
	free(ids);
	if (c)
		mdb_cursor_close(c);
	lb__segr_free(&r);
	lb__read_done(db, txn);
	return rc;
}
