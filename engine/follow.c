/* SPDX-License-Identifier: MIT */
/*
 * follow.c: database identity, batch frames, followers and promotion.
 *
 * IDENTITY. Every database has a random 16-byte id (`_meta` `id`), made
 * when it is created (an older database gets one at its first writable
 * open). A follower also holds `_meta` `primary`: the id of the database
 * whose frame it applied last. While `primary` is there, every batch of
 * the database's own is refused (lb__follower_check, called by
 * lb__batch_begin in the batch's own transaction, so that a follower
 * marked by another process counts at once); lb_promote removes it.
 *
 * FRAMES (docs/FORMAT.md §16). lb_batch_raw copies one batch as stored:
 * its header (`_batches`), what it undoes (`_victims`) and its segments
 * (`_wal`), after checking the header's hash and each segment's SHA-256,
 * so that damage is never shipped. The frame carries a CRC-32 over all of
 * it, which catches damage in transit before any decoding.
 *
 * APPLYING. lb_batch_apply_raw checks everything it can before touching
 * the database: the frame's structure and CRC, the header (decoded, its
 * hash recomputed), each segment against the header's SHA-256 and its
 * fixed header, the `_victims` entry. (Each segment's records are decoded
 * once, as they are applied: a record that does not decode aborts the
 * batch's transaction, so nothing of it is applied either.) Then, in one read
 * transaction, where the batch stands: already here with the same hash (a
 * duplicate or a redelivery: nothing to do), here with another hash (a
 * fork), past the next id (a gap), or next but not chained to the head (a
 * fork). Only then is the database marked a follower (its own transaction:
 * a crash after it leaves an empty follower, which is harmless), and the
 * batch applied as replay.c applies one: segments copied verbatim,
 * after-images applied, the header copied, in one transaction whose commit
 * checks the chain again under the writer lock (another process may have
 * applied the same frame meanwhile: that is then a no-op too).
 *
 * A checkpoint copy of the primary carries the primary's id. Applying a
 * frame of that id to it makes it a follower with an id of its own; this
 * is how a follower is bootstrapped once the stream no longer holds the
 * early batches.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "engine/internal.h"

/* The frame's fixed header (docs/FORMAT.md §16). On-disk (on-wire)
 * constants, apart from the in-memory enums. */
#define FR_MAGIC0 0x89
#define FR_VERSION 1
#define FR_HDR 48
#define FR_CRC 4
#define FR_SEG_MAX (24u + (48u << 20)) /* a segment's cap (§3, §9) */
#define FR_HEADER_MAX (1u << 20)       /* far above any valid header */
_Static_assert(FR_HDR == 4 + 2 + 2 + LB_ID_SIZE + 8 + 4 * 4,
               "frame header layout");

static const uint8_t fr_magic[4] = {FR_MAGIC0, 'L', 'B', 'F'};

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void hex(const uint8_t *id, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[id[i] >> 4];
		out[2 * i + 1] = d[id[i] & 15];
	}
	out[2 * n] = 0;
}

/* ---- identity ------------------------------------------------------------ */

static const MDB_val k_id = {2, "id"};
static const MDB_val k_primary = {7, "primary"};

/* 1 and out filled when db's `_meta` holds a 16-byte value under k, 0 when
 * it holds none; LB_ECORRUPT for another length. */
static int meta_id(lb_db *db, MDB_txn *txn, const MDB_val *k, uint8_t *out)
{
	MDB_val key = *k, v;
	int mrc = mdb_get(txn, db->meta, &key, &v);
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc)
		return lb__mdb_fail(mrc, "_meta");
	if (v.mv_size != LB_ID_SIZE)
		return lb__fail(LB_ECORRUPT, "%s: _meta %.*s is damaged",
		                db->path, (int)k->mv_size,
		                (const char *)k->mv_data);
	memcpy(out, v.mv_data, LB_ID_SIZE);
	return 1;
}

static int put_meta(lb_db *db, MDB_txn *txn, const MDB_val *k,
                    const uint8_t *val)
{
	MDB_val key = *k, v = {LB_ID_SIZE, (void *)val};
	int mrc = mdb_put(txn, db->meta, &key, &v, 0);
	return mrc ? lb__mdb_fail(mrc, "_meta") : 0;
}

static int random_id(uint8_t out[LB_ID_SIZE])
{
	size_t got = 0;
	while (got < LB_ID_SIZE) {
		ssize_t n = getrandom(out + got, LB_ID_SIZE - got, 0);
		if (n < 0)
			return lb__fail(LB_EIO, "getrandom failed");
		got += (size_t)n;
	}
	return 0;
}

int lb__identity_make(lb_db *db, MDB_txn *txn)
{
	uint8_t id[LB_ID_SIZE];
	int rc;
	if ((rc = random_id(id)) < 0 || (rc = put_meta(db, txn, &k_id, id)) < 0)
		return rc;
	MDB_val key = k_primary;
	int mrc = mdb_del(txn, db->meta, &key, NULL);
	return mrc && mrc != MDB_NOTFOUND ? lb__mdb_fail(mrc, "_meta") : 0;
}

int lb__follower_check(lb_db *db, MDB_txn *txn)
{
	uint8_t p[LB_ID_SIZE];
	char h[2 * LB_ID_SIZE + 1];
	int rc = meta_id(db, txn, &k_primary, p);
	if (rc <= 0)
		return rc;
	hex(p, LB_ID_SIZE, h);
	return lb__fail(LB_EINVAL, "%s follows %s; promote it first", db->path,
	                h);
}

int lb_identity_get(lb_db *db, lb_identity *out)
{
	MDB_txn *txn;
	if (out)
		memset(out, 0, sizeof *out);
	if (!db || !out)
		return lb__fail(LB_EINVAL, "lb_identity_get: NULL argument");
	int rc = lb__read_txn(db, &txn);
	if (rc < 0)
		return rc;
	rc = meta_id(db, txn, &k_id, out->id);
	if (rc == 0)
		rc = lb__fail(LB_ECORRUPT, "%s: _meta has no id", db->path);
	if (rc > 0 && (rc = meta_id(db, txn, &k_primary, out->primary)) > 0)
		out->follows = 1;
	lb__read_done(db, txn);
	if (rc < 0) {
		memset(out, 0, sizeof *out);
		return rc;
	}
	return 0;
}

static int promote_txn(lb_db *db, MDB_txn *txn, void *ctx)
{
	(void)ctx;
	MDB_val key = k_primary;
	int mrc = mdb_del(txn, db->meta, &key, NULL);
	if (mrc == MDB_NOTFOUND)
		return lb__fail(LB_EINVAL, "%s is not a follower", db->path);
	return mrc ? lb__mdb_fail(mrc, "_meta") : 0;
}

int lb_promote(lb_db *db)
{
	if (!db)
		return lb__fail(LB_EINVAL, "lb_promote: db is NULL");
	if (db->flags & LB_RDONLY)
		return lb__fail(LB_EINVAL, "%s: database is open read-only",
		                db->path);
	return lb__write_run(db, promote_txn, NULL, "promoting", "promoting");
}

/* ---- lb_batch_raw ---------------------------------------------------------
 */

int lb_batch_raw(lb_db *db, uint64_t id, void **buf, size_t *len)
{
	MDB_txn *txn;
	lb_wal_hdr h;
	uint8_t kb[12], sha[32], self[LB_ID_SIZE];
	MDB_val k = {8, kb}, hv, vv = {0, NULL}, v;
	uint8_t *out = NULL;
	int rc, mrc;
	if (buf)
		*buf = NULL;
	if (len)
		*len = 0;
	if (!db || !buf || !len)
		return lb__fail(LB_EINVAL, "lb_batch_raw: NULL argument");
	if (id == 0)
		return lb__fail(LB_ENOTFOUND, "no batch 0: ids start at 1");
	if ((rc = lb__read_txn(db, &txn)) < 0)
		return rc;
	memset(&h, 0, sizeof h);
	if ((rc = meta_id(db, txn, &k_id, self)) == 0)
		rc = lb__fail(LB_ECORRUPT, "%s: _meta has no id", db->path);
	if (rc < 0)
		goto out;
	if ((rc = lb__hdr_get(db, txn, id, &h)) < 0)
		goto out;
	if (h.pruned) {
		rc = lb__fail(LB_EPRUNED, "batch %llu: its log was pruned",
		              (unsigned long long)id);
		goto out;
	}
	if ((rc = lb__hdr_intact(&h, id)) < 0)
		goto out;
	lb__be64(kb, id);
	if ((mrc = mdb_get(txn, db->batches, &k, &hv))) {
		rc = lb__mdb_fail(mrc, "_batches");
		goto out;
	}
	mrc = mdb_get(txn, db->victims, &k, &vv);
	if (mrc && mrc != MDB_NOTFOUND) {
		rc = lb__mdb_fail(mrc, "_victims");
		goto out;
	}
	if (mrc == MDB_NOTFOUND)
		vv.mv_size = 0;
	size_t total = FR_HDR + hv.mv_size + vv.mv_size + FR_CRC;
	k.mv_size = 12;
	for (uint32_t s = 0; s < h.segments; s++) {
		lb__be32(kb + 8, s);
		if ((mrc = mdb_get(txn, db->wal, &k, &v))) {
			rc = mrc == MDB_NOTFOUND
			             ? lb__fail(LB_ECORRUPT,
			                        "batch %llu: segment %u is "
			                        "missing",
			                        (unsigned long long)id, s)
			             : lb__mdb_fail(mrc, "_wal");
			goto out;
		}
		total += 4 + v.mv_size;
	}
	if (!(out = malloc(total))) {
		rc = lb__fail(LB_ENOMEM, "batch %llu: frame of %zu bytes",
		              (unsigned long long)id, total);
		goto out;
	}
	memcpy(out, fr_magic, 4);
	put_le16(out + 4, FR_VERSION);
	put_le16(out + 6, 0);
	memcpy(out + 8, self, LB_ID_SIZE);
	put_le64(out + 24, id);
	put_le32(out + 32, (uint32_t)hv.mv_size);
	put_le32(out + 36, (uint32_t)vv.mv_size);
	put_le32(out + 40, h.segments);
	put_le32(out + 44, 0);
	size_t at = FR_HDR;
	memcpy(out + at, hv.mv_data, hv.mv_size);
	at += hv.mv_size;
	if (vv.mv_size)
		memcpy(out + at, vv.mv_data, vv.mv_size);
	at += vv.mv_size;
	for (uint32_t s = 0; s < h.segments; s++) {
		lb__be32(kb + 8, s);
		if ((mrc = mdb_get(txn, db->wal, &k, &v))) {
			rc = lb__mdb_fail(mrc, "_wal");
			goto out;
		}
		if ((rc = lb__sha256(v.mv_data, v.mv_size, sha)) < 0)
			goto out;
		if (memcmp(sha, h.seg_hashes + 32 * (size_t)s, 32) != 0) {
			rc = lb__fail(LB_ECORRUPT,
			              "batch %llu: segment %u does not match "
			              "its hash",
			              (unsigned long long)id, s);
			goto out;
		}
		put_le32(out + at, (uint32_t)v.mv_size);
		memcpy(out + at + 4, v.mv_data, v.mv_size);
		at += 4 + v.mv_size;
	}
	put_le32(out + at, (uint32_t)libdeflate_crc32(0, out, at));
	*buf = out;
	*len = total;
	out = NULL;
out:
	free(out);
	lb__hdr_free(&h);
	lb__read_done(db, txn);
	return rc;
}

/* ---- lb_batch_apply_raw ---------------------------------------------------
 */

typedef struct frame {
	uint8_t origin[LB_ID_SIZE];
	uint64_t id;
	const uint8_t *hdr, *victims, *segs;
	size_t hlen, vlen;
	uint32_t nseg;
	lb_wal_hdr h;
	lb_victims vs;
} frame;

static int bad(uint64_t id, const char *what)
{
	if (id)
		return lb__fail(LB_ECORRUPT, "frame of batch %llu: %s",
		                (unsigned long long)id, what);
	return lb__fail(LB_ECORRUPT, "frame: %s", what);
}

/* Check the frame's structure and CRC, decode and check its header (the
 * hash recomputed), its segments (SHA-256 against the header, then every
 * record) and its `_victims` entry. Touches no database. */
static int frame_check(const uint8_t *p, size_t len, frame *f, lb_segr *r)
{
	uint8_t hash[32];
	int rc;
	memset(f, 0, sizeof *f);
	if (len < FR_HDR + FR_CRC)
		return bad(0, "shorter than its fixed header");
	if (memcmp(p, fr_magic, 4) != 0)
		return bad(0, "bad magic (not a logbook batch frame)");
	uint16_t ver = (uint16_t)(p[4] | p[5] << 8);
	if (ver > FR_VERSION)
		return lb__fail(LB_EVERSION,
		                "frame version %u is newer than this "
		                "library's %u",
		                ver, FR_VERSION);
	f->id = get_le64(p + 24);
	if (ver == 0)
		return bad(f->id, "version 0");
	if (p[6] || p[7] || get_le32(p + 44))
		return bad(f->id, "reserved bytes are not 0");
	if (f->id == 0)
		return bad(0, "batch id 0");
	uint32_t crc = (uint32_t)libdeflate_crc32(0, p, len - FR_CRC);
	if (crc != get_le32(p + len - FR_CRC))
		return bad(f->id, "CRC mismatch");
	memcpy(f->origin, p + 8, LB_ID_SIZE);
	f->hlen = get_le32(p + 32);
	f->vlen = get_le32(p + 36);
	f->nseg = get_le32(p + 40);
	size_t body = len - FR_HDR - FR_CRC;
	if (f->hlen == 0 || f->hlen > FR_HEADER_MAX || f->hlen > body ||
	    f->vlen > body - f->hlen)
		return bad(f->id, "bad header or victims length");
	f->hdr = p + FR_HDR;
	f->victims = f->hdr + f->hlen;
	f->segs = f->victims + f->vlen;
	if ((rc = lb__hdr_decode(f->hdr, f->hlen, &f->h)) < 0)
		return rc == LB_ECORRUPT
		               ? bad(f->id, "damaged batch header")
		               : lb__rewrap(rc, "frame of batch %llu",
		                            (unsigned long long)f->id);
	if (f->h.id != f->id)
		return bad(f->id, "its header names another batch");
	if (f->h.segments != f->nseg)
		return bad(f->id, "segment count differs from the header's");
	if ((rc = lb__hdr_hash(&f->h, hash)) < 0)
		return rc;
	if (memcmp(hash, f->h.hash, 32) != 0)
		return bad(f->id, "the header does not match its hash");
	if (f->vlen &&
	    lb__victims_parse(f->victims, f->vlen, f->id, &f->vs) < 0)
		return bad(f->id, "damaged _victims entry");
	if (!f->vlen && f->h.undoes)
		return bad(f->id, "an undo batch without its _victims entry");
	const uint8_t *q = f->segs, *end = p + len - FR_CRC;
	for (uint32_t s = 0; s < f->nseg; s++) {
		if ((size_t)(end - q) < 4)
			return bad(f->id, "truncated segment list");
		uint32_t sl = get_le32(q);
		q += 4;
		if (sl > FR_SEG_MAX || sl > (size_t)(end - q))
			return bad(f->id, "bad segment length");
		if ((rc = lb__sha256(q, sl, hash)) < 0)
			return rc;
		if (memcmp(hash, f->h.seg_hashes + 32 * (size_t)s, 32) != 0)
			return lb__fail(LB_ECORRUPT,
			                "frame of batch %llu: segment %u does "
			                "not match its hash",
			                (unsigned long long)f->id, s);
		/* the segment's records are decoded (and counted) as they
		 * are applied: one inflate, not two; a failure there aborts
		 * the batch's transaction, so nothing is applied either */
		lb_seg_hdr sh;
		if ((rc = lb__seg_header(q, sl, &sh)) < 0)
			return lb__rewrap(rc, "frame of batch %llu: segment %u",
			                  (unsigned long long)f->id, s);
		q += sl;
	}
	if (q != end)
		return bad(f->id, "bytes after the last segment");
	(void)r;
	return 0;
}

/* Where the frame's batch stands in db: 1 already here (same hash), 0 next
 * and chained; LB_ECONFLICT for a gap or a fork; *become set when db must
 * first be made a follower (or switch primary). */
static int frame_place(lb_db *db, const frame *f, int *become, int *newid)
{
	MDB_txn *txn;
	uint8_t self[LB_ID_SIZE], prim[LB_ID_SIZE];
	uint64_t last = 0;
	int rc, follows = 0;
	*become = *newid = 0;
	if ((rc = lb__read_txn(db, &txn)) < 0)
		return rc;
	if ((rc = lb__last_in(db, txn, &last)) < 0)
		goto out;
	/* whose frame: a primary takes none of another database's */
	if ((rc = meta_id(db, txn, &k_id, self)) < 0 ||
	    (rc = meta_id(db, txn, &k_primary, prim)) < 0)
		goto out;
	follows = rc == 1;
	rc = 0;
	if (follows) {
		*become = memcmp(prim, f->origin, LB_ID_SIZE) != 0;
	} else if (memcmp(self, f->origin, LB_ID_SIZE) == 0) {
		*become = *newid = 1; /* a copy of the frame's database */
	} else if (last == 0) {
		*become = 1;
	} else {
		char h[2 * LB_ID_SIZE + 1];
		hex(self, LB_ID_SIZE, h);
		rc = lb__fail(LB_EINVAL,
		              "%s is a primary (id %s) with batches of its "
		              "own, not a follower",
		              db->path, h);
		goto out;
	}
	if (f->id <= last) {
		lb_wal_hdr h;
		if ((rc = lb__hdr_get(db, txn, f->id, &h)) < 0)
			goto out;
		int same = memcmp(h.hash, f->h.hash, 32) == 0;
		lb__hdr_free(&h);
		rc = same ? 1
		          : lb__fail(LB_ECONFLICT,
		                     "fork at batch %llu: this database holds "
		                     "another batch %llu (other hash)",
		                     (unsigned long long)f->id,
		                     (unsigned long long)f->id);
		goto out;
	}
	if (f->id > last + 1) {
		rc = lb__fail(LB_ECONFLICT,
		              "gap: frame of batch %llu, but the next batch "
		              "here is %llu",
		              (unsigned long long)f->id,
		              (unsigned long long)last + 1);
		goto out;
	}
	if (last > 0) {
		lb_wal_hdr h;
		if ((rc = lb__hdr_get(db, txn, last, &h)) < 0)
			goto out;
		int chained = memcmp(h.hash, f->h.prev_hash, 32) == 0;
		lb__hdr_free(&h);
		if (!chained) {
			rc = lb__fail(LB_ECONFLICT,
			              "fork at batch %llu: it does not follow "
			              "this database's batch %llu (previous "
			              "hash differs)",
			              (unsigned long long)f->id,
			              (unsigned long long)last);
			goto out;
		}
	} else {
		static const uint8_t zero[32];
		if (memcmp(f->h.prev_hash, zero, 32) != 0) {
			rc = lb__fail(LB_ECONFLICT,
			              "fork at batch 1: its previous hash is "
			              "not zero");
			goto out;
		}
	}
out:
	lb__read_done(db, txn);
	return rc;
}

typedef struct become_ctx {
	const uint8_t *origin;
	int newid;
} become_ctx;

static int become_txn(lb_db *db, MDB_txn *txn, void *ctx)
{
	become_ctx *c = ctx;
	int rc;
	if (c->newid && (rc = lb__identity_make(db, txn)) < 0)
		return rc;
	return put_meta(db, txn, &k_primary, c->origin);
}

/* Apply the checked frame as replay.c applies a batch. */
static int frame_apply(lb_db *db, frame *f, lb_segr *r)
{
	lb_batch *b;
	lb_table *tcache = NULL;
	int rc = lb__batch_begin_raw(db, f->h.label, &b);
	if (rc < 0)
		return rc;
	if (b->id == f->id + 1 && memcmp(b->chain_hash, f->h.hash, 32) == 0) {
		/* applied by another process meanwhile */
		lb_batch_abort(b);
		return 1;
	}
	if (b->id != f->id || memcmp(b->chain_hash, f->h.prev_hash, 32) != 0) {
		lb_batch_abort(b);
		return lb__fail(LB_ECONFLICT,
		                "batch %llu no longer follows this database's "
		                "head (batch %llu): another writer",
		                (unsigned long long)f->id,
		                (unsigned long long)b->id - 1);
	}
	b->nmarks = 0;
	b->undo_kind = f->vs.kind;
	b->implied = b->undo_kind == LB__UNDO_ROLLBACK;
	for (size_t i = 0;
	     f->vs.kind && f->vs.kind != LB__UNDO_TO && i < f->vs.n && rc == 0;
	     i++)
		rc = lb__batch_mark(b, lb__victims_at(&f->vs, i));
	b->undoes = f->h.undoes;
	const uint8_t *q = f->segs;
	uint64_t records = 0;
	for (uint32_t s = 0; s < f->nseg && rc == 0; s++) {
		uint32_t sl = get_le32(q);
		q += 4;
		if ((rc = lb__segr_load(r, q, sl)) < 0) {
			rc = lb__rewrap(rc, "frame of batch %llu: segment %u",
			                (unsigned long long)f->id, s);
			break;
		}
		if ((rc = lb__batch_put_segment(b, s, q, sl)) < 0)
			break;
		lb_wal_rec rec;
		int got;
		while ((got = lb__segr_next(r, &rec)) == 1) {
			if ((rc = lb__replay_rec(b, &rec, &tcache)) < 0)
				break;
			records++;
		}
		if (rc == 0 && got < 0)
			rc = lb__rewrap(LB_ECORRUPT,
			                "frame of batch %llu: segment %u",
			                (unsigned long long)f->id, s);
		q += sl;
	}
	if (rc == 0 && records != f->h.records)
		rc = bad(f->id, "record count differs from the header's");
	if (rc < 0) {
		lb_batch_abort(b);
		return rc;
	}
	f->h.rolled_back_by = 0;
	f->h.pruned = 0;
	return lb__batch_commit_hdr(b, &f->h); /* frees b */
}

int lb_batch_apply_raw(lb_db *db, const void *buf, size_t len, uint64_t *id)
{
	frame f;
	lb_segr r;
	int become, newid, rc;
	if (id)
		*id = 0;
	if (!db || !buf)
		return lb__fail(LB_EINVAL, "lb_batch_apply_raw: NULL argument");
	if (db->flags & LB_RDONLY)
		return lb__fail(LB_EINVAL, "%s: database is open read-only",
		                db->path);
	lb__segr_init(&r);
	if ((rc = frame_check(buf, len, &f, &r)) < 0)
		goto out;
	if ((rc = frame_place(db, &f, &become, &newid)) < 0)
		goto out;
	if (rc == 0 && become) {
		become_ctx c = {f.origin, newid};
		rc = lb__write_run(db, become_txn, &c, "making a follower",
		                   "making a follower");
	}
	if (rc == 0)
		rc = frame_apply(db, &f, &r);
	if (rc >= 0) {
		rc = 0;
		if (id)
			*id = f.id;
	} else {
		rc = lb__rewrap(rc, "applying batch %llu",
		                (unsigned long long)f.id);
	}
out:
	lb__hdr_free(&f.h);
	lb__segr_free(&r);
	return rc;
}
