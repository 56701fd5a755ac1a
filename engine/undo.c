/* SPDX-License-Identifier: MIT */
/*
 * undo.c: which batches stand (docs/ROLLBACK.md, "Which batches stand").
 *
 * Every undo batch N undoes a set of earlier batches, fixed when N commits:
 * `_victims` holds it under N (FORMAT.md §2.5), and `_undo` the reverse,
 * each undone batch -> every batch that undoes it. A batch is rolled back
 * when a standing batch undoes it; its header's `rolled_back_by` is the
 * greatest standing batch that undoes it, or 0.
 *
 * A new undo batch changes which batches stand only below it, and only by
 * a chain of undo batches: the batches it undoes may stop standing, and
 * when one of them is an undo batch, the batches that one undid may stand
 * again, and so on down. lb__undo_settle() follows that chain with a
 * max-heap of batch ids: since a batch is only undone by later batches,
 * every batch above the one taken from the heap is settled already, so
 * each is settled once, from its undoers' headers as they stand in the
 * transaction. Nothing else is read: the cost is that of the batches whose
 * standing is looked at, never the length of the log.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

/* ---- `_victims` and `_undo` ---------------------------------------------- */

int lb__victims_get(lb_db *db, MDB_txn *txn, uint64_t n, lb_victims *out)
{
	uint8_t kb[8];
	MDB_val k = {8, kb}, v;
	memset(out, 0, sizeof *out);
	lb__be64(kb, n);
	int mrc = mdb_get(txn, db->victims, &k, &v);
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc)
		return lb__mdb_fail(mrc, "_victims");
	return lb__victims_parse(v.mv_data, v.mv_size, n, out);
}

int lb__victims_parse(const void *val, size_t len, uint64_t n, lb_victims *out)
{
	const uint8_t *p = val;
	memset(out, 0, sizeof *out);
	int kind = len ? p[0] : 0;
	int ok = kind == LB__UNDO_TO ? len == 9 && lb__get_be64(p + 1) < n
	                             : (kind == LB__UNDO_ROLLBACK ||
	                                kind == LB__UNDO_LISTED) &&
	                                       len >= 9 && (len - 1) % 8 == 0;
	for (size_t i = 1; ok && kind != LB__UNDO_TO && i < len; i += 8) {
		uint64_t id = lb__get_be64(p + i);
		ok = id > 0 && id < n &&
		     (i == 1 || id > lb__get_be64(p + i - 8));
	}
	if (!ok)
		return lb__fail(LB_ECORRUPT,
		                "_victims: bad entry for batch %llu",
		                (unsigned long long)n);
	out->kind = kind;
	if (kind == LB__UNDO_TO) {
		out->lo = lb__get_be64(p + 1) + 1;
		out->hi = n - 1;
	} else {
		out->ids = p + 1;
		out->n = (len - 1) / 8;
	}
	return 0;
}

uint64_t lb__victims_count(const lb_victims *vs)
{
	if (vs->kind == LB__UNDO_TO)
		return vs->hi >= vs->lo ? vs->hi - vs->lo + 1 : 0;
	return vs->n;
}

uint64_t lb__victims_at(const lb_victims *vs, uint64_t i)
{
	if (vs->kind == LB__UNDO_TO)
		return vs->lo + i;
	return lb__get_be64(vs->ids + 8 * i);
}

int lb__undoers(lb_db *db, MDB_txn *txn, MDB_cursor *c, uint64_t z,
                uint64_t **ids, size_t *n, size_t *cap)
{
	uint8_t kb[8];
	MDB_val k = {8, kb}, v;
	int mrc;
	*n = 0;
	lb__be64(kb, z);
	(void)txn;
	(void)db;
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); mrc == 0;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
		uint64_t r = v.mv_size == 8 ? lb__get_be64(v.mv_data) : 0;
		if ((r & ~LB__UNDO_IMPLIED) <= z)
			return lb__fail(LB_ECORRUPT,
			                "_undo: bad entry for batch %llu",
			                (unsigned long long)z);
		int rc = lb__grow(ids, cap, *n + 1, sizeof **ids, 8);
		if (rc < 0)
			return rc;
		(*ids)[(*n)++] = r;
	}
	if (mrc != MDB_NOTFOUND)
		return lb__mdb_fail(mrc, "_undo");
	return 0;
}

/* ---- a max-heap of batch ids --------------------------------------------- */

int lb__heap_push(lb_heap *h, uint64_t x)
{
	int rc = lb__grow(&h->v, &h->cap, h->n + 1, sizeof *h->v, 64);
	if (rc < 0)
		return rc;
	size_t i = h->n++;
	while (i > 0 && h->v[(i - 1) / 2] < x) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = x;
	return 0;
}

uint64_t lb__heap_pop(lb_heap *h)
{
	uint64_t top = h->v[0], x = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1] > h->v[c])
			c++;
		if (h->v[c] <= x)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = x;
	return top;
}

int lb__heap_push_victims(lb_heap *h, const lb_victims *vs)
{
	uint64_t n = lb__victims_count(vs);
	int rc = 0;
	for (uint64_t i = 0; i < n && rc == 0; i++)
		rc = lb__heap_push(h, lb__victims_at(vs, i));
	return rc;
}

/* ---- settling ------------------------------------------------------------ */

int lb__standing_of(lb_db *db, MDB_txn *txn, MDB_cursor *uc, uint64_t id,
                    uint64_t self, lb__standing_fn over, void *ctx,
                    uint64_t **buf, size_t *cap, uint64_t *rbb)
{
	size_t n;
	int rc = lb__undoers(db, txn, uc, id, buf, &n, cap);
	*rbb = 0;
	for (size_t i = n; i-- > 0 && rc == 0;) {
		uint64_t k = (*buf)[i] & ~LB__UNDO_IMPLIED;
		int stands;
		if (k <= *rbb)
			continue;
		if (k == self) {
			stands = 1;
		} else if (!over || (stands = over(ctx, k)) < 0) {
			lb_wal_hdr h;
			if ((rc = lb__hdr_get(db, txn, k, &h)) < 0)
				break;
			stands = h.rolled_back_by == 0;
			lb__hdr_free(&h);
		}
		if (stands)
			*rbb = k;
	}
	return rc;
}

/* Rewrite batch id's header with rolled_back_by = rbb. */
static int put_state(lb_batch *b, lb_wal_hdr *h, uint64_t rbb, lb_buf *enc)
{
	uint8_t kb[8];
	h->rolled_back_by = rbb;
	enc->len = 0;
	int rc = lb__hdr_encode(h, enc);
	if (rc < 0)
		return rc;
	lb__be64(kb, h->id);
	MDB_val k = {8, kb}, v = {enc->len, enc->data};
	int mrc = mdb_put(b->txn, b->db->batches, &k, &v, 0);
	return mrc ? lb__mdb_fail(mrc, "_batches") : 0;
}

/* The i-th batch b undoes (the range of a rollback-to, or b->marks). */
static uint64_t victim(const lb_batch *b, uint64_t i)
{
	return b->undo_kind == LB__UNDO_TO ? b->undoes + 1 + i : b->marks[i];
}

static uint64_t nvictims(const lb_batch *b)
{
	return b->undo_kind == LB__UNDO_TO ? b->id - 1 - b->undoes : b->nmarks;
}

/* Whether b undoes id itself (b->marks is sorted by then). */
static int direct_victim(const lb_batch *b, uint64_t id)
{
	if (b->undo_kind == LB__UNDO_TO)
		return id > b->undoes && id < b->id;
	size_t lo = 0, hi = b->nmarks;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->marks[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < b->nmarks && b->marks[lo] == id;
}

/* Write `_victims` for b and `_undo` for each batch b undoes. */
static int put_entries(lb_batch *b)
{
	lb_db *db = b->db;
	lb_buf val;
	uint8_t kb[8], rb[8];
	int rc, mrc;
	lb__buf_init(&val);
	uint8_t kind = (uint8_t)b->undo_kind;
	if ((rc = lb__buf_append(&val, &kind, 1)) < 0)
		goto out;
	if (b->undo_kind == LB__UNDO_TO) {
		lb__be64(rb, b->undoes);
		rc = lb__buf_append(&val, rb, 8);
	} else {
		rc = 0;
		for (size_t i = 0; i < b->nmarks && rc == 0; i++) {
			lb__be64(rb, b->marks[i]);
			rc = lb__buf_append(&val, rb, 8);
		}
	}
	if (rc < 0)
		goto out;
	lb__be64(kb, b->id);
	MDB_val k = {8, kb}, v = {val.len, val.data};
	if ((mrc = mdb_put(b->txn, db->victims, &k, &v, 0))) {
		rc = lb__mdb_fail(mrc, "_victims");
		goto out;
	}
	lb__be64(rb,
	         b->id | (b->undo_kind == LB__UNDO_ROLLBACK ? LB__UNDO_IMPLIED
	                                                    : 0));
	MDB_val uv = {8, rb};
	uint64_t n = nvictims(b);
	for (uint64_t i = 0; i < n && rc == 0; i++) {
		lb__be64(kb, victim(b, i));
		MDB_val uk = {8, kb};
		if ((mrc = mdb_put(b->txn, db->undo, &uk, &uv, 0)))
			rc = lb__mdb_fail(mrc, "_undo");
	}
out:
	lb__buf_free(&val);
	return rc;
}

/* What settling knows of whether batch k stands: 0 not read yet, 1 it
 * stands, 2 it does not. Settling takes ids from its heap in decreasing
 * order and asks only about undoers, which are greater than the batch
 * being settled: a batch asked about is settled for good, so what its
 * header says may be kept for the rest of the settling. A rollback-to
 * undoes a range whose batches share their undoers: each is read once. */
typedef struct stand_cache {
	uint8_t *v;
	uint64_t n;
} stand_cache;

/* lb__standing_of() for settling, with the answers kept in sc. */
static int settled_rbb(lb_batch *b, MDB_cursor *uc, stand_cache *sc,
                       uint64_t id, uint64_t **buf, size_t *cap, uint64_t *rbb)
{
	size_t n;
	int rc = lb__undoers(b->db, b->txn, uc, id, buf, &n, cap);
	*rbb = 0;
	if (rc == 0 && !sc->v) {
		sc->n = b->id;
		if (!(sc->v = calloc(sc->n, 1)))
			rc = lb__fail(LB_ENOMEM, "out of memory");
	}
	for (size_t i = n; i-- > 0 && rc == 0;) {
		uint64_t k = (*buf)[i] & ~LB__UNDO_IMPLIED;
		if (k <= *rbb)
			continue;
		int stands = k >= sc->n ? k == b->id : sc->v[k] == 1;
		if (k < sc->n && !sc->v[k]) {
			lb_wal_hdr h;
			if ((rc = lb__hdr_get(b->db, b->txn, k, &h)) < 0)
				break;
			stands = h.rolled_back_by == 0;
			sc->v[k] = stands ? 1 : 2;
			lb__hdr_free(&h);
		}
		if (stands)
			*rbb = k;
	}
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int lb__undo_settle(lb_batch *b)
{
	lb_db *db = b->db;
	lb_heap h = {0};
	stand_cache sc = {0};
	lb_buf enc;
	uint64_t *buf = NULL;
	size_t cap = 0;
	MDB_cursor *uc = NULL;
	int rc = 0, mrc;
	if (!b->undo_kind)
		return 0;
	if (b->undo_kind != LB__UNDO_TO) {
		/* ascending and unique, as `_victims` keeps them */
		size_t n = 0;
		if (b->nmarks > 1)
			qsort(b->marks, b->nmarks, sizeof *b->marks, cmp_u64);
		for (size_t i = 0; i < b->nmarks; i++)
			if (n == 0 || b->marks[n - 1] != b->marks[i])
				b->marks[n++] = b->marks[i];
		b->nmarks = n;
		if (n == 0)
			return lb__fail(LB_EINVAL, "an undo batch undoes "
			                           "nothing");
	}
	lb__buf_init(&enc);
	if ((rc = put_entries(b)) < 0)
		goto out;
	if ((mrc = mdb_cursor_open(b->txn, db->undo, &uc))) {
		uc = NULL;
		rc = lb__mdb_fail(mrc, "_undo");
		goto out;
	}
	for (uint64_t i = 0, n = nvictims(b); i < n && rc == 0; i++)
		rc = lb__heap_push(&h, victim(b, i));
	uint64_t last = UINT64_MAX;
	while (rc == 0 && h.n) {
		uint64_t id = lb__heap_pop(&h), rbb;
		if (id == last)
			continue;
		last = id;
		lb_wal_hdr hd;
		/* b is the newest batch and stands, so what it undoes itself
		 * is rolled back by b: no need to read its undoers */
		if (direct_victim(b, id))
			rbb = b->id;
		else if ((rc = settled_rbb(b, uc, &sc, id, &buf, &cap, &rbb)) <
		         0)
			break;
		if ((rc = lb__hdr_get(db, b->txn, id, &hd)) < 0)
			break;
		int flipped = (hd.rolled_back_by == 0) != (rbb == 0);
		if (hd.rolled_back_by != rbb)
			rc = put_state(b, &hd, rbb, &enc);
		lb__hdr_free(&hd);
		if (rc < 0 || !flipped)
			continue;
		/* an undo batch that stopped or started standing: what it
		 * undid may stand again, or stop standing */
		lb_victims uv;
		if ((rc = lb__victims_get(db, b->txn, id, &uv)) == 0 && uv.kind)
			rc = lb__heap_push_victims(&h, &uv);
	}
out:
	if (uc)
		mdb_cursor_close(uc);
	free(h.v);
	free(sc.v);
	free(buf);
	lb__buf_free(&enc);
	return rc;
}
