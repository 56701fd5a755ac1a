/* SPDX-License-Identifier: MIT */
/*
 * log.c: reading the batch log: headers, change records, the head of the
 * chain (the history of a key is hist.c).
 *
 * Records are decoded one segment at a time, so a walk needs memory for one
 * segment whatever the size of the batch. A segment is fully verified (CRC,
 * exact length and record count) before its first record is handed out, so
 * a caller never acts on part of a damaged segment.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

int lb__hdr_get(lb_db *db, MDB_txn *txn, uint64_t id, lb_wal_hdr *h)
{
	uint8_t kb[8];
	lb__be64(kb, id);
	MDB_val k = {8, kb}, v;
	int mrc = mdb_get(txn, db->batches, &k, &v);
	if (mrc == MDB_NOTFOUND)
		return lb__fail(LB_ENOTFOUND, "no batch %llu",
		                (unsigned long long)id);
	if (mrc)
		return lb__mdb_fail(mrc, "_batches");
	int rc = lb__hdr_decode(v.mv_data, v.mv_size, h);
	if (rc < 0)
		return lb__rewrap(rc, "batch %llu: header",
		                  (unsigned long long)id);
	if (h->id != id) {
		lb__hdr_free(h);
		return lb__fail(
		        LB_ECORRUPT, "batch %llu: header names batch %llu",
		        (unsigned long long)id, (unsigned long long)h->id);
	}
	return 0;
}

int lb__segment_get(lb_db *db, MDB_txn *txn, uint64_t id, uint32_t s,
                    MDB_val *stored)
{
	uint8_t kb[12];
	lb__be64(kb, id);
	lb__be32(kb + 8, s);
	MDB_val k = {12, kb};
	int mrc = mdb_get(txn, db->wal, &k, stored);
	if (mrc == MDB_NOTFOUND)
		return lb__fail(LB_ECORRUPT,
		                "batch %llu: segment %u is missing",
		                (unsigned long long)id, s);
	if (mrc)
		return lb__mdb_fail(mrc, "_wal");
	return 0;
}

int lb__segment_check_load(uint64_t id, uint32_t s, const uint8_t want[32],
                           const void *seg, size_t len, lb_segr *r)
{
	uint8_t sha[32];
	int rc;
	if ((rc = lb__sha256(seg, len, sha)) < 0)
		return rc;
	if (memcmp(sha, want, 32) != 0)
		return lb__fail(LB_ECORRUPT,
		                "batch %llu: segment %u does not match its "
		                "hash",
		                (unsigned long long)id, s);
	/* lb__segr_load copies the records into the reader's own buffer */
	if ((rc = lb__segr_load(r, seg, len)) < 0)
		return lb__rewrap(rc, "batch %llu: segment %u",
		                  (unsigned long long)id, s);
	return 0;
}

int lb__segment_load(lb_db *db, MDB_txn *txn, const lb_wal_hdr *h, uint32_t s,
                     lb_segr *r, MDB_val *stored)
{
	MDB_val v;
	int rc = lb__segment_get(db, txn, h->id, s, &v);
	if (rc == 0)
		rc = lb__segment_check_load(h->id, s,
		                            h->seg_hashes + 32 * (size_t)s,
		                            v.mv_data, v.mv_size, r);
	if (rc == 0 && stored)
		*stored = v;
	return rc;
}

int lb__segment_index(lb_segr *r, uint32_t **offs, size_t *n, size_t *cap)
{
	lb_wal_rec rec;
	int rc;
	*n = 0;
	for (;;) {
		uint32_t off = (uint32_t)(r->mp.p - r->raw.data);
		if ((rc = lb__segr_next(r, &rec)) <= 0)
			break;
		if ((rc = lb__grow(offs, cap, *n + 1, sizeof **offs, 1024)) < 0)
			return rc;
		(*offs)[(*n)++] = off;
	}
	return rc;
}

int lb__segment_rec_at(const lb_segr *r, uint32_t off, lb_wal_rec *rec)
{
	lb_segr one = *r;
	one.mp.p = r->raw.data + off;
	one.left = 1;
	int rc = lb__segr_next(&one, rec);
	return rc == 1 ? 0 : (rc < 0 ? rc : lb__fail(LB_ECORRUPT, "segment"));
}

int lb__hdr_intact(const lb_wal_hdr *h, uint64_t id)
{
	uint8_t hash[32];
	int rc = lb__hdr_hash(h, hash);
	if (rc < 0)
		return rc;
	if (memcmp(hash, h->hash, 32) != 0)
		return lb__fail(
		        LB_ECORRUPT,
		        "batch %llu: the header does not match its hash",
		        (unsigned long long)id);
	return 0;
}

int lb__records_counted(uint64_t id, uint64_t seen, uint64_t want)
{
	if (seen != want)
		return lb__fail(LB_ECORRUPT,
		                "batch %llu: %llu records, header says %llu",
		                (unsigned long long)id,
		                (unsigned long long)seen,
		                (unsigned long long)want);
	return 0;
}

int lb__walk_batch(lb_db *db, MDB_txn *txn, uint64_t id, lb_segr *r,
                   lb__rec_fn fn, void *ctx)
{
	lb_wal_hdr h;
	int rc = lb__hdr_get(db, txn, id, &h);
	if (rc < 0)
		return rc;
	if (h.pruned) {
		lb__hdr_free(&h);
		return lb__fail(LB_EPRUNED, "batch %llu: its log was pruned",
		                (unsigned long long)id);
	}
	uint64_t seen = 0;
	for (uint32_t s = 0; s < h.segments && rc == 0; s++) {
		if ((rc = lb__segment_load(db, txn, &h, s, r, NULL)) < 0)
			break;
		lb_wal_rec rec;
		int got;
		while ((got = lb__segr_next(r, &rec)) == 1) {
			seen++;
			if ((rc = fn(ctx, &rec)) != 0)
				break;
		}
		if (got < 0)
			rc = got;
	}
	if (rc == 0)
		rc = lb__records_counted(id, seen, h.records);
	lb__hdr_free(&h);
	return rc;
}

int lb__last_in(lb_db *db, MDB_txn *txn, uint64_t *id)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc = 0;
	*id = 0;
	int mrc = mdb_cursor_open(txn, db->batches, &c);
	if (mrc == 0) {
		mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		mdb_cursor_close(c);
	}
	if (mrc == 0 && k.mv_size == 8)
		*id = lb__get_be64(k.mv_data);
	else if (mrc == 0)
		rc = lb__fail(LB_ECORRUPT, "_batches: bad key");
	else if (mrc != MDB_NOTFOUND)
		rc = lb__mdb_fail(mrc, "_batches");
	return rc;
}

int lb_last_batch(lb_db *db, uint64_t *id)
{
	MDB_txn *txn;
	if (id)
		*id = 0;
	if (!db || !id)
		return lb__fail(LB_EINVAL, "lb_last_batch: NULL argument");
	int rc = lb__read_txn(db, &txn);
	if (rc < 0)
		return rc;
	rc = lb__last_in(db, txn, id);
	lb__read_done(db, txn);
	return rc;
}

int lb_batch_info_get(lb_db *db, uint64_t id, lb_batch_info *out)
{
	MDB_txn *txn;
	lb_wal_hdr h;
	if (!db || !out)
		return lb__fail(LB_EINVAL, "lb_batch_info_get: NULL argument");
	memset(out, 0, sizeof *out);
	if (id == 0)
		return lb__fail(LB_ENOTFOUND, "no batch 0: ids start at 1");
	int rc = lb__read_txn(db, &txn);
	if (rc < 0)
		return rc;
	rc = lb__hdr_get(db, txn, id, &h);
	lb__read_done(db, txn);
	if (rc < 0)
		return rc;
	out->id = h.id;
	out->time_ns = h.time_ns;
	memcpy(out->label, h.label, sizeof out->label);
	out->records = h.records;
	out->segments = h.segments;
	out->raw_bytes = h.raw_bytes;
	out->stored_bytes = h.stored_bytes;
	out->undoes = h.undoes;
	out->rolled_back_by = h.rolled_back_by;
	out->pruned = h.pruned;
	memcpy(out->hash, h.hash, 32);
	lb__hdr_free(&h);
	return 0;
}

/* Change records handed to users carry a NUL-terminated table name. */
void lb__to_change(const lb_wal_rec *r, char *tname, lb_change *c)
{
	memcpy(tname, r->table, r->tlen);
	tname[r->tlen] = 0;
	c->op = r->op;
	c->table = tname;
	c->key = r->key;
	c->klen = r->klen;
	c->before = r->before;
	c->blen = r->blen;
	c->has_before = r->has_before;
	c->after = r->after;
	c->alen = r->alen;
	c->has_after = r->has_after;
}

typedef struct {
	lb_change_fn fn;
	void *ctx;
	int stopped;
} changes_ctx;

static int changes_cb(void *p, const lb_wal_rec *r)
{
	changes_ctx *cc = p;
	char tname[LB_TABLE_NAME_MAX + 1];
	lb_change c;
	lb__to_change(r, tname, &c);
	int rc = cc->fn(cc->ctx, &c);
	if (rc)
		cc->stopped = 1;
	return rc;
}

int lb_changes(lb_db *db, uint64_t id, lb_change_fn fn, void *ctx)
{
	MDB_txn *txn;
	lb_segr r;
	if (!db || !fn)
		return lb__fail(LB_EINVAL, "lb_changes: NULL argument");
	if (id == 0)
		return lb__fail(LB_ENOTFOUND, "no batch 0: ids start at 1");
	int rc = lb__read_txn(db, &txn);
	if (rc < 0)
		return rc;
	changes_ctx cc = {fn, ctx, 0};
	lb__segr_init(&r);
	rc = lb__walk_batch(db, txn, id, &r, changes_cb, &cc);
	lb__segr_free(&r);
	lb__read_done(db, txn);
	return rc;
}

/* Read the last batch from the log itself: another process may have
 * committed since this one last looked. */
int lb__sync_last(lb_db *db, MDB_txn *txn)
{
	uint64_t last;
	int rc = lb__last_in(db, txn, &last);
	if (rc < 0)
		return rc;
	if (last == 0) {
		db->last_id = 0;
		memset(db->last_hash, 0, 32);
	} else if (last != db->last_id || db->last_id == 0) {
		lb_wal_hdr h;
		if ((rc = lb__hdr_get(db, txn, last, &h)) < 0)
			return rc;
		db->last_id = h.id;
		memcpy(db->last_hash, h.hash, 32);
		lb__hdr_free(&h);
	}
	return 0;
}
