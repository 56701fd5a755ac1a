/* SPDX-License-Identifier: MIT */
/*
 * verify.c: lb_verify, checking that the log is intact and that it explains
 * the tables.
 *
 * Everything is read from one read transaction, so the checks see one
 * consistent state while other threads go on committing.
 *
 * The log check walks `_batches` and `_wal` side by side, both in key order
 * (batch id, then segment number), and requires:
 *  - batch ids 1..last with no gap, each header decoding, naming its own
 *    id, its hash recomputing to the stored one, and its prev_hash equal to
 *    the previous batch's hash (zero for batch 1);
 *  - `undoes` earlier than the batch, `rolled_back_by` later and existing;
 *  - for a batch that is not pruned, exactly its segments 0..n-1 in `_wal`,
 *    each matching the header's SHA-256, decoding (CRC, lengths, every
 *    record well formed), and the records, raw bytes and stored bytes
 *    adding up to the header's;
 *  - no segment in `_wal` for a pruned batch, nor for a batch that does
 *    not exist.
 * It goes on past a failure (so the counts cover the whole log) but the
 * report keeps the first failure: `bad_batch` and `detail`.
 *
 * Then `_meta`'s `next_tid`, which no batch header covers: every table
 * creation (a TABLE record with an after-image) takes the id in `next_tid`
 * and increments it, and nothing else changes it (the drop that rolls a
 * creation back leaves it, so ids are never reused). So it is exactly 1 +
 * the creations in the log, which the segment walk counts; when a prefix of
 * the log is pruned, its creations are unknown and the count is a lower
 * bound (the replay below, which starts from a checkpoint's `next_tid`,
 * checks it exactly). It must also be above every table's id and at most
 * 2^31 (ids are below 2^31).
 *
 * Then who stands (FORMAT.md §2.5): `_victims` and `_undo` agree with each
 * other and with each undo batch's `undoes`, and every header's
 * rolled_back_by is the greatest standing batch that undoes it.
 *
 * Then the history (FORMAT.md §2.4): every value of a table is at least 8
 * bytes, and the batch its first 8 name exists and, unless its log is
 * pruned, left the rest as the value of that key by its last record of it,
 * and no later batch changed the key; every `_gone` entry names a batch
 * that exists and, unless its log is pruned, has a DELETE record of the
 * key, and no later batch deleted it; a key a batch left with a value and
 * that is absent was deleted by a later batch. This rides on the log walk
 * (fp_rec, fp_end: each batch decoded once, each key it changed looked up
 * once); check_writers then requires every value and `_gone` entry that
 * names a batch whose log is kept to have been matched by that batch.
 * Any finding or shortfall runs the slow pass, key by key through the
 * batch each names (the last few batches read are kept, VB_MAX), which
 * names the culprit as before; what only the log-driven pass sees (a later
 * batch that changed the key) is reported when the slow pass finds
 * nothing.
 *
 * With LB_VERIFY_REPLAY, the database is also replayed (replay.c) from the
 * same transaction into a temporary directory under $TMPDIR (or /tmp): from
 * empty, or, when a prefix of the log is pruned, from the oldest registered
 * checkpoint that covers the pruned part and still exists (replaying as
 * much of the log as is left). The replay and the live database are then
 * compared: the table list and schemas (`_meta` entries table/ and
 * schema/, and next_tid), every table, the `_refs`, `_gone`, `_undo` and
 * `_victims` indexes, each walked in key order side by side, byte for byte,
 * and every batch's rolled_back_by.
 * Both sides are LMDB trees with the same key order, so the walk is
 * order-independent in effect and cheaper than hashing; it also pins the
 * first differing key. A differing key is charged to the writer of its
 * value (FORMAT.md §2.4: the database's, or the replay's when the database
 * lacks the key), or to the last batch when there is none. The temporary copy
 * is removed afterwards.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/internal.h"
#include "engine/pagecheck.h"
#include "wal/hset.h"

typedef struct vf {
	lb_db *db;
	MDB_txn *txn;
	lb_verify_report *rep;
	int failed;
	uint64_t last, maxpruned;
	uint64_t creates; /* TABLE records that create, in unpruned batches */
	lb_segr r;
	struct vbatch *vb; /* the slow pass's batches, VB_MAX */
	uint64_t vtick;
	/* the log-driven pass over writers and `_gone` (fp_*), fed by the
	 * segment walk */
	lb_table **ts; /* the tables this handle knows, removed ones too */
	size_t nt;
	struct ftab *ft; /* the live ones */
	size_t nft;
	lb_hset names;     /* table name -> index in ft */
	lb_hset keys;      /* the batch being read: its keys (fp_rec) */
	uint8_t *pruned;   /* [last + 1]: the batch's log is pruned */
	uint64_t vmatched; /* values whose writer's log explains them */
	uint64_t gmatched; /* `_gone` entries whose batch deleted the key */
} vf;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
bad(vf *v, uint64_t batch, const char *fmt, ...)
{
	va_list ap;
	if (v->failed)
		return;
	v->failed = 1;
	v->rep->bad_batch = batch;
	va_start(ap, fmt);
	vsnprintf(v->rep->detail, sizeof v->rep->detail, fmt, ap);
	va_end(ap);
}

/* ---- writers and `_gone`, from the log (FORMAT.md §2.4) ------------------ */

/* The segment walk below hands every record of a batch that is not pruned
 * to fp_rec, then the batch to fp_end. A batch's keys are reduced to their
 * last record, and each is looked up once in its table (and `_gone` when
 * needed): a value whose writer is the batch must be what its last record
 * of the key left (one value matched); a value whose writer is an earlier
 * batch is wrong (the batch changed the key after it); a key the batch
 * left with a value but that the table lacks must have been deleted by a
 * later batch (`_gone` names one); and a key the batch deleted whose `_gone`
 * entry names it is one entry matched. check_writers then requires every
 * value written, and every `_gone` entry naming, a batch whose log is kept
 * to have been matched, so each is checked against the log with each batch
 * decoded once. A finding here (or a count that falls short) sends
 * check_writers to the slow pass, key by key, which names the culprit.
 *
 * Records name tables by name: they are mapped to the live tables this
 * handle knows (the records of any other name are skipped: a removed table
 * held nothing when removed). A table created again under the same name
 * has a new id, and its keys were all written after its last creation: a
 * creation record starts a new generation of the name (the keys read in
 * the batch before it are left out), and voids what was found of the name
 * before. */
typedef struct ftab {
	lb_table *t;
	uint32_t gen; /* creation records of its name seen so far */
	/* look-ups: c[0] for keys above the last it was given (hi, hlen),
	 * c[1] for the others, so that a run of rising keys stays on its
	 * leaf page (LMDB looks there first) */
	MDB_cursor *c[2];
	uint8_t hi[LB_KEY_MAX];
	size_t hlen;
	/* what was found since its last creation (batch 0: nothing): [0]
	 * the first value its writer does not explain; [1] the last DELETE
	 * that `_gone` does not cover (the last batch that deleted a key is
	 * the one whose entry is lost); [2] the last batch that left a value
	 * the table lacks, which [1] may explain */
	struct fpfind {
		uint64_t bad;
		char detail[sizeof(((lb_verify_report *)0)->detail)];
	} f[3];
} ftab;

/* A key's entry in vf.keys: its name is u32 BE the ftab index, u32 BE the
 * generation, the key; v[0] points at its value in the table (valid for
 * the transaction), v[1] holds the value's size and these flags. */
#define FP_PRESENT ((uint64_t)1 << 63) /* the table holds the key */
#define FP_LASTPUT ((uint64_t)1 << 62) /* the last record leaves a value */
#define FP_SAME ((uint64_t)1 << 61)    /* ... and it is the table's */
#define FP_DELETED ((uint64_t)1 << 60) /* a record of the key is a DELETE */
#define FP_SIZE (((uint64_t)1 << 60) - 1)

static int keycmp(const MDB_val *a, const MDB_val *b)
{
	size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
	int r = n ? memcmp(a->mv_data, b->mv_data, n) : 0;
	if (r)
		return r;
	return (a->mv_size > b->mv_size) - (a->mv_size < b->mv_size);
}

/* The tables this handle knows, removed ones included (NULL: none). */
static lb_table **tables_copy(lb_db *db, size_t *n)
{
	pthread_mutex_lock(&db->tlock);
	*n = db->ntables;
	lb_table **ts = malloc((*n ? *n : 1) * sizeof *ts);
	if (ts && *n)
		memcpy(ts, db->tables, *n * sizeof *ts);
	pthread_mutex_unlock(&db->tlock);
	return ts;
}

static void fp_free(vf *v)
{
	for (size_t i = 0; v->ft && i < v->nft; i++)
		for (int j = 0; j < 2; j++)
			if (v->ft[i].c[j])
				mdb_cursor_close(v->ft[i].c[j]);
	free(v->ts);
	free(v->ft);
	free(v->pruned);
	lb__hset_free(&v->names);
	lb__hset_free(&v->keys);
	v->ts = NULL;
	v->ft = NULL;
	v->pruned = NULL;
}

static int fp_init(vf *v)
{
	lb__hset_init(&v->names);
	lb__hset_init(&v->keys);
	if (!(v->ts = tables_copy(v->db, &v->nt)) ||
	    !(v->ft = calloc(v->nt ? v->nt : 1, sizeof *v->ft)))
		return lb__fail(LB_ENOMEM, "verify: out of memory");
	for (size_t i = 0; i < v->nt; i++) {
		lb_hent *e;
		int added, rc;
		if (v->ts[i]->dropped)
			continue;
		if ((rc = lb__hset_get(&v->names, v->ts[i]->name,
		                       strlen(v->ts[i]->name), &added, &e)) < 0)
			return rc;
		e->v[0] = v->nft;
		v->ft[v->nft++].t = v->ts[i];
	}
	return 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static void
fp_bad(ftab *ft, int kind, uint64_t batch, const char *fmt, ...)
{
	va_list ap;
	if (ft->f[kind].bad && kind == 0)
		return;
	ft->f[kind].bad = batch;
	va_start(ap, fmt);
	vsnprintf(ft->f[kind].detail, sizeof ft->f[kind].detail, fmt, ap);
	va_end(ap);
}

/* fp_bad about key of ft's table: the detail is "<table> '<key>'" and then
 * what fmt says (which starts with its own separator). */
#if defined(__GNUC__)
__attribute__((format(printf, 6, 7)))
#endif
static void
fp_bad_key(ftab *ft, int kind, uint64_t batch, const uint8_t *key, size_t klen,
           const char *fmt, ...)
{
	char kt[96], rest[sizeof ft->f[kind].detail];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rest, sizeof rest, fmt, ap);
	va_end(ap);
	fp_bad(ft, kind, batch, "%s '%s'%s", ft->t->name,
	       lb__key_text(key, klen, kt, sizeof kt), rest);
}

static int fp_rec(vf *v, const lb_wal_rec *r)
{
	uint8_t nm[8 + LB_KEY_MAX];
	lb_hent *e;
	int added, rc, mrc;
	if (r->tlen == 0 || r->tlen > LB_TABLE_NAME_MAX)
		return 0;
	if (!(e = lb__hset_find(&v->names, r->table, r->tlen)))
		return 0;
	size_t i = (size_t)e->v[0];
	ftab *ft = &v->ft[i];
	if (r->op == LB_OP_TABLE) {
		if (r->has_after && !r->has_before) {
			ft->gen++;
			ft->f[0].bad = ft->f[1].bad = ft->f[2].bad = 0;
		}
		return 0;
	}
	if (r->klen == 0 || r->klen > LB_KEY_MAX)
		return 0;
	lb__be32(nm, (uint32_t)i);
	lb__be32(nm + 4, ft->gen);
	memcpy(nm + 8, r->key, r->klen);
	if ((rc = lb__hset_get(&v->keys, nm, 8 + (size_t)r->klen, &added, &e)) <
	    0)
		return rc;
	if (added) {
		MDB_val k = {r->klen, (void *)r->key}, d;
		MDB_val h = {ft->hlen, ft->hi};
		int up = ft->hlen == 0 || keycmp(&k, &h) > 0;
		if (!ft->c[!up] &&
		    (mrc = mdb_cursor_open(v->txn, ft->t->dbi, &ft->c[!up])))
			return lb__mdb_fail(mrc, ft->t->name);
		if (up) {
			memcpy(ft->hi, r->key, r->klen);
			ft->hlen = r->klen;
		}
		mrc = mdb_cursor_get(ft->c[!up], &k, &d, MDB_SET_KEY);
		if (mrc == 0) {
			e->v[0] = (uint64_t)(uintptr_t)d.mv_data;
			e->v[1] = FP_PRESENT | ((uint64_t)d.mv_size & FP_SIZE);
		} else if (mrc != MDB_NOTFOUND) {
			return lb__mdb_fail(mrc, ft->t->name);
		}
	}
	uint64_t fl = e->v[1] & ~(FP_LASTPUT | FP_SAME);
	if (r->op == LB_OP_DELETE)
		fl |= FP_DELETED;
	if (r->op == LB_OP_PUT && r->has_after) {
		const uint8_t *val = (const uint8_t *)(uintptr_t)e->v[0];
		uint64_t sz = fl & FP_SIZE;
		fl |= FP_LASTPUT;
		if ((fl & FP_PRESENT) && sz >= LB__VPFX &&
		    sz - LB__VPFX == r->alen &&
		    (r->alen == 0 ||
		     memcmp(val + LB__VPFX, r->after, r->alen) == 0))
			fl |= FP_SAME;
	}
	e->v[1] = fl;
	return 0;
}

/* `_gone`'s entry for key of t: the batch, 0 if none. Not lb__gone_get:
 * a malformed entry is walk_gone's finding for the report, not a failure
 * of the verify, so it reads as none here. */
static int fp_gone(vf *v, const lb_table *t, const uint8_t *key, size_t klen,
                   uint64_t *id)
{
	uint8_t ik[LB__IKEY_MAX];
	size_t n = lb__ikey(ik, t->tid, key, klen);
	if (!n)
		return LB_ENOMEM;
	MDB_val k = {n, ik}, d;
	int mrc = mdb_get(v->txn, v->db->gone, &k, &d);
	*id = 0;
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc)
		return lb__mdb_fail(mrc, "_gone");
	if (d.mv_size == 8)
		*id = lb__get_be64(d.mv_data);
	return 0;
}

/* A key present in its table, that batch id changed: its writer must be
 * id with id's last value, or a later batch. */
static void fp_present(vf *v, ftab *ft, uint64_t id, const lb_hent *e,
                       const uint8_t *key, size_t klen)
{
	uint64_t fl = e->v[1], sz = fl & FP_SIZE;
	if (sz < LB__VPFX)
		return; /* the table scan names it */
	uint64_t w = lb__get_be64((const uint8_t *)(uintptr_t)e->v[0]);
	if (w == id && (fl & FP_SAME))
		v->vmatched++;
	else if (w == id)
		fp_bad_key(ft, 0, w, key, klen,
		           " names batch %llu as its writer, whose log leaves "
		           "it another value",
		           (unsigned long long)w);
	else if (w < id)
		fp_bad_key(ft, 0, w, key, klen,
		           " names batch %llu as its writer, but batch %llu "
		           "changed it later",
		           (unsigned long long)w, (unsigned long long)id);
}

/* Batch id has been read (every record through fp_rec): check its keys. */
static int fp_end(vf *v, uint64_t id)
{
	lb_hset *s = &v->keys;
	int rc = 0;
	for (size_t off = 0; off < s->arena.len && rc == 0;
	     off = lb__hset_next(s, off)) {
		lb_hent *e = lb__hset_at(s, off);
		const uint8_t *nm = lb__hent_key(e);
		ftab *ft = &v->ft[lb__get_be32(nm)];
		const uint8_t *key = nm + 8;
		size_t klen = e->len - 8;
		uint64_t fl = e->v[1], gone = 0;
		if (lb__get_be32(nm + 4) != ft->gen)
			continue; /* an earlier table of that name */
		if (fl & FP_PRESENT) {
			fp_present(v, ft, id, e, key, klen);
		} else if (fl & (FP_LASTPUT | FP_DELETED)) {
			/* absent now: `_gone` must name id or a later batch */
			if ((rc = fp_gone(v, ft->t, key, klen, &gone)) < 0)
				break;
			if ((fl & FP_LASTPUT) && gone <= id)
				fp_bad_key(
				        ft, 2, id, key, klen,
				        ": batch %llu leaves it a value, but "
				        "the table does not hold it and no "
				        "later batch deleted it",
				        (unsigned long long)id);
		}
		if (fl & FP_DELETED) {
			if ((fl & FP_PRESENT) &&
			    (rc = fp_gone(v, ft->t, key, klen, &gone)) < 0)
				break;
			if (gone == id)
				v->gmatched++;
			else if (gone < id)
				fp_bad_key(ft, 1, id, key, klen,
				           ": batch %llu deleted it, but _gone "
				           "names batch %llu",
				           (unsigned long long)id,
				           (unsigned long long)gone);
		}
	}
	lb__hset_clear(s);
	return rc;
}

/* ---- the log ------------------------------------------------------------- */

/* A cursor over _wal with its key decoded. */
typedef struct wcur {
	MDB_cursor *c;
	MDB_val k, d;
	int valid;
	int malformed; /* key is not 12 bytes */
	uint64_t id;
	uint32_t seg;
} wcur;

static int wstep(wcur *w, MDB_cursor_op op)
{
	int mrc = mdb_cursor_get(w->c, &w->k, &w->d, op);
	w->valid = mrc == 0;
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc)
		return lb__mdb_fail(mrc, "_wal");
	const uint8_t *p = w->k.mv_data;
	w->malformed = w->k.mv_size != 12;
	w->id = w->k.mv_size >= 8 ? lb__get_be64(p) : 0;
	w->seg = w->k.mv_size == 12 ? lb__get_be32(p + 8) : 0;
	return 0;
}

/* Step past every _wal entry of batch id. */
static int wskip(wcur *w, uint64_t id)
{
	int rc = 0;
	while (rc == 0 && w->valid && w->id == id)
		rc = wstep(w, MDB_NEXT);
	return rc;
}

static int check_segments(vf *v, wcur *w, const lb_wal_hdr *h)
{
	uint64_t id = h->id, recs = 0, raw = 0, stored = 0;
	int segbad = 0, rc;
	for (uint32_t s = 0; s < h->segments; s++) {
		uint8_t sha[32];
		if (!w->valid || w->id != id || w->malformed || w->seg != s) {
			bad(v, id, "batch %llu: segment %u is missing",
			    (unsigned long long)id, s);
			segbad = 1;
			break;
		}
		v->rep->segments++;
		stored += w->d.mv_size;
		if ((rc = lb__sha256(w->d.mv_data, w->d.mv_size, sha)) < 0)
			return rc;
		if (memcmp(sha, h->seg_hashes + 32 * (size_t)s, 32) != 0) {
			bad(v, id,
			    "batch %llu: segment %u does not match the "
			    "header's SHA-256",
			    (unsigned long long)id, s);
			segbad = 1;
		} else if ((rc = lb__segr_load(&v->r, w->d.mv_data,
		                               w->d.mv_size)) < 0) {
			if (rc == LB_ENOMEM)
				return rc;
			bad(v, id, "batch %llu: segment %u: %s",
			    (unsigned long long)id, s, lb_errmsg());
			segbad = 1;
		} else {
			lb_seg_hdr sh;
			lb_wal_rec rec;
			int got;
			recs += v->r.left;
			if (lb__seg_header(w->d.mv_data, w->d.mv_size, &sh) ==
			    0)
				raw += sh.raw_len;
			while ((got = lb__segr_next(&v->r, &rec)) == 1) {
				if (rec.op == LB_OP_TABLE && rec.has_after &&
				    !rec.has_before)
					v->creates++;
				if (!segbad && (rc = fp_rec(v, &rec)) < 0)
					return rc;
			}
			if (got < 0) {
				if (got == LB_ENOMEM)
					return got;
				bad(v, id, "batch %llu: segment %u: %s",
				    (unsigned long long)id, s, lb_errmsg());
				segbad = 1;
			}
		}
		if ((rc = wstep(w, MDB_NEXT)) < 0)
			return rc;
	}
	if (w->valid && w->id == id) {
		if (w->malformed)
			bad(v, id, "batch %llu: _wal holds a malformed key",
			    (unsigned long long)id);
		else
			bad(v, id,
			    "batch %llu: segment %u is in _wal but the "
			    "header has %u segments",
			    (unsigned long long)id, w->seg, h->segments);
		segbad = 1;
		if ((rc = wskip(w, id)) < 0)
			return rc;
	}
	v->rep->records += recs;
	if (segbad) {
		lb__hset_clear(&v->keys);
		return 0;
	}
	if ((rc = fp_end(v, id)) < 0)
		return rc;
	if (recs != h->records)
		bad(v, id,
		    "batch %llu: segments hold %llu records, the header "
		    "says %llu",
		    (unsigned long long)id, (unsigned long long)recs,
		    (unsigned long long)h->records);
	else if (raw != h->raw_bytes)
		bad(v, id,
		    "batch %llu: segments hold %llu raw bytes, the "
		    "header says %llu",
		    (unsigned long long)id, (unsigned long long)raw,
		    (unsigned long long)h->raw_bytes);
	else if (stored != h->stored_bytes)
		bad(v, id,
		    "batch %llu: segments take %llu bytes, the header "
		    "says %llu",
		    (unsigned long long)id, (unsigned long long)stored,
		    (unsigned long long)h->stored_bytes);
	return 0;
}

/* The chain and the links of batch id's decoded header h. prev is the hash
 * of the batch before (compared when prev_ok), and becomes h's. */
static int check_hdr(vf *v, const lb_wal_hdr *h, uint64_t id, uint8_t prev[32],
                     int prev_ok)
{
	uint8_t hash[32];
	int rc;
	if (h->id != id)
		bad(v, id, "the header of batch %llu names batch %llu",
		    (unsigned long long)id, (unsigned long long)h->id);
	if ((rc = lb__hdr_hash(h, hash)) < 0)
		return rc;
	if (memcmp(hash, h->hash, 32) != 0)
		bad(v, id, "batch %llu: the header does not match its hash",
		    (unsigned long long)id);
	if (prev_ok && memcmp(h->prev_hash, prev, 32) != 0) {
		if (id == 1)
			bad(v, id, "batch 1: prev_hash is not zero");
		else
			bad(v, id,
			    "batch %llu: prev_hash is not batch %llu's hash",
			    (unsigned long long)id,
			    (unsigned long long)(id - 1));
	}
	memcpy(prev, h->hash, 32);
	if (h->undoes >= id)
		bad(v, id, "batch %llu: undoes batch %llu, not an earlier one",
		    (unsigned long long)id, (unsigned long long)h->undoes);
	if (h->rolled_back_by &&
	    (h->rolled_back_by <= id || h->rolled_back_by > v->last))
		bad(v, id,
		    "batch %llu: rolled back by batch %llu, which is not a "
		    "later batch",
		    (unsigned long long)id,
		    (unsigned long long)h->rolled_back_by);
	return 0;
}

/* Batch id, header bytes bd: the header decoded and checked, then its
 * segments at w (a pruned batch: that none is left). *prev_ok says whether
 * prev holds the hash of the batch before. */
static int check_batch(vf *v, wcur *w, uint64_t id, const MDB_val *bd,
                       uint8_t prev[32], int *prev_ok)
{
	lb_wal_hdr h;
	int rc = lb__hdr_decode(bd->mv_data, bd->mv_size, &h);
	if (rc == LB_ENOMEM)
		return rc;
	if (rc < 0) {
		bad(v, id, "batch %llu: the header does not decode: %s",
		    (unsigned long long)id, lb_errmsg());
		*prev_ok = 0;
		return wskip(w, id);
	}
	if ((rc = check_hdr(v, &h, id, prev, *prev_ok)) < 0) {
		lb__hdr_free(&h);
		return rc;
	}
	*prev_ok = 1;
	if (h.pruned) {
		v->maxpruned = id;
		if (v->pruned)
			v->pruned[id] = 1;
		if (w->valid && w->id == id)
			bad(v, id,
			    "batch %llu is pruned but its segment %u is still "
			    "in _wal",
			    (unsigned long long)id, w->seg);
		rc = wskip(w, id);
	} else {
		rc = check_segments(v, w, &h);
	}
	lb__hdr_free(&h);
	return rc;
}

/* Every batch in order, from 1 without a gap, and every segment in _wal
 * belonging to one. */
static int check_log(vf *v)
{
	MDB_cursor *cb = NULL;
	MDB_val bk, bd;
	wcur w;
	uint8_t prev[32];
	int prev_ok = 1, complete = 1, rc = 0, mrc;
	uint64_t expect = 1;

	memset(&w, 0, sizeof w);
	memset(prev, 0, sizeof prev);
	if ((mrc = mdb_cursor_open(v->txn, v->db->batches, &cb)) ||
	    (mrc = mdb_cursor_open(v->txn, v->db->wal, &w.c))) {
		rc = lb__mdb_fail(mrc, "opening the log");
		goto out;
	}
	mrc = mdb_cursor_get(cb, &bk, &bd, MDB_LAST);
	if (mrc == 0 && bk.mv_size == 8)
		v->last = lb__get_be64(bk.mv_data);
	else if (mrc && mrc != MDB_NOTFOUND) {
		rc = lb__mdb_fail(mrc, "_batches");
		goto out;
	}
	if (v->last >= SIZE_MAX ||
	    !(v->pruned = calloc((size_t)v->last + 1, 1))) {
		rc = lb__fail(LB_ENOMEM, "verify: out of memory");
		goto out;
	}
	if ((rc = wstep(&w, MDB_FIRST)) < 0)
		goto out;
	for (mrc = mdb_cursor_get(cb, &bk, &bd, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(cb, &bk, &bd, MDB_NEXT), expect++) {
		if (bk.mv_size != 8) {
			bad(v, expect,
			    "_batches holds a malformed key where batch %llu "
			    "should be",
			    (unsigned long long)expect);
			complete = 0;
			break;
		}
		uint64_t id = lb__get_be64(bk.mv_data);
		if (id != expect) {
			bad(v, expect,
			    "batch %llu is missing from the log (the next "
			    "header is batch %llu)",
			    (unsigned long long)expect, (unsigned long long)id);
			complete = 0;
			break;
		}
		v->rep->batches++;
		if (w.valid && w.id < id) {
			bad(v, id,
			    "_wal holds a segment (key of %zu bytes) that "
			    "belongs to no batch",
			    w.k.mv_size);
			while (w.valid && w.id < id)
				if ((rc = wstep(&w, MDB_NEXT)) < 0)
					goto out;
		}
		if ((rc = check_batch(v, &w, id, &bd, prev, &prev_ok)) < 0)
			goto out;
	}
	if (mrc && mrc != MDB_NOTFOUND) {
		rc = lb__mdb_fail(mrc, "_batches");
		goto out;
	}
	if (complete && w.valid)
		bad(v, w.id,
		    "_wal holds segment %u of batch %llu, which does not "
		    "exist",
		    w.seg, (unsigned long long)w.id);
out:
	if (w.c)
		mdb_cursor_close(w.c);
	if (cb)
		mdb_cursor_close(cb);
	return rc;
}

/* ---- who stands: _victims, _undo and rolled_back_by ---------------------- */

/* Is the `_undo` pair z -> val in txn? */
static int has_undo(vf *v, MDB_cursor *uc, uint64_t z, uint64_t val)
{
	uint8_t kb[8], vb[8];
	lb__be64(kb, z);
	lb__be64(vb, val);
	MDB_val k = {8, kb}, d = {8, vb};
	int mrc = mdb_cursor_get(uc, &k, &d, MDB_GET_BOTH);
	(void)v;
	if (mrc == MDB_NOTFOUND)
		return 0;
	return mrc ? lb__mdb_fail(mrc, "_undo") : 1;
}

/* Every `_victims` entry N (FORMAT.md §2.5) decodes, names earlier
 * batches, agrees with N's `undoes`, and each batch it lists has its
 * `_undo` entry to N (implied exactly for a strict or cascading rollback);
 * every `_undo` entry is one of those. */
static int check_victims(vf *v, MDB_cursor *uc)
{
	MDB_cursor *c;
	MDB_val k, d;
	uint64_t pairs = 0;
	int rc = 0, mrc;
	if ((mrc = mdb_cursor_open(v->txn, v->db->victims, &c)))
		return lb__mdb_fail(mrc, "_victims");
	for (mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST); mrc == 0 && !v->failed;
	     mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		uint64_t n = k.mv_size == 8 ? lb__get_be64(k.mv_data) : 0;
		lb_victims vs;
		lb_wal_hdr h;
		if (n == 0 || n > v->last) {
			bad(v, v->last, "_victims: an entry for no batch");
			break;
		}
		if ((rc = lb__victims_get(v->db, v->txn, n, &vs)) < 0) {
			if (rc != LB_ECORRUPT)
				break;
			rc = 0;
			bad(v, n, "%s", lb_errmsg());
			break;
		}
		if ((rc = lb__hdr_get(v->db, v->txn, n, &h)) < 0)
			break;
		uint64_t undoes = h.undoes, cnt = lb__victims_count(&vs);
		lb__hdr_free(&h);
		int named = vs.kind == LB__UNDO_TO ? vs.lo == undoes + 1 : 0;
		uint64_t val =
		        n |
		        (vs.kind == LB__UNDO_ROLLBACK ? LB__UNDO_IMPLIED : 0);
		for (uint64_t i = 0; i < cnt && rc == 0 && !v->failed; i++) {
			uint64_t z = lb__victims_at(&vs, i);
			named |= z == undoes;
			if ((rc = has_undo(v, uc, z, val)) == 0)
				bad(v, n,
				    "_undo: batch %llu undoes batch %llu, "
				    "which has no entry for it",
				    (unsigned long long)n,
				    (unsigned long long)z);
			rc = rc < 0 ? rc : 0;
			pairs++;
		}
		if (rc == 0 && !v->failed && !named)
			bad(v, n,
			    "batch %llu: undoes batch %llu, which is not "
			    "among the batches it undoes (_victims)",
			    (unsigned long long)n, (unsigned long long)undoes);
		if (rc < 0)
			break;
	}
	mdb_cursor_close(c);
	if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
		return lb__mdb_fail(mrc, "_victims");
	if (rc < 0 || v->failed)
		return rc;
	MDB_stat st;
	if ((mrc = mdb_stat(v->txn, v->db->undo, &st)))
		return lb__mdb_fail(mrc, "_undo");
	if (st.ms_entries != pairs)
		bad(v, v->last, "_undo holds %llu entries, _victims names %llu",
		    (unsigned long long)st.ms_entries,
		    (unsigned long long)pairs);
	return 0;
}

/* Every header's rolled_back_by is the greatest standing batch that undoes
 * it (docs/ROLLBACK.md), computed from the newest batch down. */
static int check_standing(vf *v, MDB_cursor *uc)
{
	uint8_t *stands = NULL;
	uint64_t *buf = NULL;
	size_t cap = 0, n;
	int rc = 0;
	if (v->last == 0)
		return 0;
	if (!(stands = calloc((size_t)v->last + 1, 1)))
		return lb__fail(LB_ENOMEM, "out of memory");
	for (uint64_t id = v->last; id >= 1 && rc == 0 && !v->failed; id--) {
		uint64_t rbb = 0;
		lb_wal_hdr h;
		if ((rc = lb__undoers(v->db, v->txn, uc, id, &buf, &n, &cap)) <
		    0)
			break;
		for (size_t i = 0; i < n; i++) {
			uint64_t k = buf[i] & ~LB__UNDO_IMPLIED;
			if (k <= v->last && stands[k] && k > rbb)
				rbb = k;
		}
		stands[id] = rbb == 0;
		if ((rc = lb__hdr_get(v->db, v->txn, id, &h)) < 0)
			break;
		if (h.rolled_back_by != rbb)
			bad(v, id,
			    "batch %llu: rolled_back_by is %llu, but the "
			    "greatest standing batch that undoes it is %llu",
			    (unsigned long long)id,
			    (unsigned long long)h.rolled_back_by,
			    (unsigned long long)rbb);
		lb__hdr_free(&h);
	}
	if (rc == LB_ECORRUPT) {
		bad(v, v->last, "%s", lb_errmsg());
		rc = 0;
	}
	free(stands);
	free(buf);
	return rc;
}

static int check_undo(vf *v)
{
	MDB_cursor *uc;
	int mrc = mdb_cursor_open(v->txn, v->db->undo, &uc);
	if (mrc)
		return lb__mdb_fail(mrc, "_undo");
	int rc = check_victims(v, uc);
	if (rc == 0 && !v->failed)
		rc = check_standing(v, uc);
	mdb_cursor_close(uc);
	return rc;
}

/* ---- _meta's next_tid ---------------------------------------------------- */

/* The first (op MDB_SET_RANGE) or next (MDB_NEXT) `table/<name>` entry of
 * _meta through c; MDB_NOTFOUND past the last. */
static int table_entry(MDB_cursor *c, MDB_val *k, MDB_val *d, MDB_cursor_op op)
{
	if (op == MDB_SET_RANGE) {
		k->mv_size = 6;
		k->mv_data = "table/";
	}
	int mrc = mdb_cursor_get(c, k, d, op);
	if (mrc == 0 && (k->mv_size < 6 || memcmp(k->mv_data, "table/", 6)))
		mrc = MDB_NOTFOUND;
	return mrc;
}

static int check_next_tid(vf *v)
{
	MDB_cursor *c;
	MDB_val k = {8, "next_tid"}, d;
	char kt[96];
	int mrc = mdb_get(v->txn, v->db->meta, &k, &d);
	if (mrc && mrc != MDB_NOTFOUND)
		return lb__mdb_fail(mrc, "_meta");
	if (mrc || d.mv_size != 4) {
		bad(v, v->last, "_meta: next_tid is %s",
		    mrc ? "missing" : "not 4 bytes");
		return 0;
	}
	uint32_t next = lb__get_be32(d.mv_data);
	uint64_t want = v->creates + 1;
	if (next == 0 || next > LB__TID_HASHED) {
		bad(v, v->last, "_meta: next_tid %u is out of range", next);
		return 0;
	}
	if (v->maxpruned == 0 && next != want) {
		bad(v, v->last,
		    "_meta: next_tid is %u, but the log creates %llu tables "
		    "(it should be %llu)",
		    next, (unsigned long long)v->creates,
		    (unsigned long long)want);
		return 0;
	}
	if (next < want) {
		bad(v, v->last,
		    "_meta: next_tid is %u, but the unpruned log alone "
		    "creates %llu tables",
		    next, (unsigned long long)v->creates);
		return 0;
	}
	/* Every table's id was taken from next_tid: it lies below. */
	if ((mrc = mdb_cursor_open(v->txn, v->db->meta, &c)))
		return lb__mdb_fail(mrc, "_meta");
	for (mrc = table_entry(c, &k, &d, MDB_SET_RANGE); mrc == 0;
	     mrc = table_entry(c, &k, &d, MDB_NEXT)) {
		if (d.mv_size != 4 || lb__get_be32(d.mv_data) < next)
			continue;
		bad(v, v->last,
		    "_meta: table %s has id %u, not below next_tid %u",
		    lb__key_text((const char *)k.mv_data + 6, k.mv_size - 6, kt,
		                 sizeof kt),
		    lb__get_be32(d.mv_data), next);
		break;
	}
	mdb_cursor_close(c);
	if (mrc && mrc != MDB_NOTFOUND)
		return lb__mdb_fail(mrc, "_meta");
	return 0;
}

/* ---- writers and `_gone` (FORMAT.md §2.4) -------------------------------- */

/* A batch's keys as check_writers reads them: (table, key) -> the last
 * record's after-image (v[0] its arena offset, v[1] its length, with
 * VB_NOAFTER when the last record has none, VB_DELETED when a record of
 * the key is a DELETE). Batches above VB_BIG raw bytes are not kept: each
 * look-up walks them. */
#define VB_MAX 8
#define VB_BIG ((uint64_t)32 << 20)
#define VB_NOAFTER ((uint64_t)1 << 63)
#define VB_DELETED ((uint64_t)1 << 62)

typedef struct vbatch {
	uint64_t id; /* 0: free */
	uint64_t lru;
	lb_hset keys;
	lb_buf arena;
} vbatch;

static void vb_free(vf *v)
{
	if (!v->vb)
		return;
	for (int i = 0; i < VB_MAX; i++) {
		lb__hset_free(&v->vb[i].keys);
		lb__buf_free(&v->vb[i].arena);
	}
	free(v->vb);
	v->vb = NULL;
}

/* (table, key) as a set entry: tlen u8 | table | key. */
static size_t vb_name(uint8_t *out, const char *t, size_t tlen, const void *k,
                      size_t klen)
{
	out[0] = (uint8_t)tlen;
	memcpy(out + 1, t, tlen);
	memcpy(out + 1 + tlen, k, klen);
	return 1 + tlen + klen;
}

static int vb_add(void *p, const lb_wal_rec *r)
{
	vbatch *e = p;
	uint8_t nm[1 + LB_TABLE_NAME_MAX + LB_KEY_MAX];
	lb_hent *h;
	int added, rc;
	if (r->op == LB_OP_TABLE || r->tlen == 0 ||
	    r->tlen > LB_TABLE_NAME_MAX || r->klen > LB_KEY_MAX)
		return 0;
	size_t n = vb_name(nm, r->table, r->tlen, r->key, r->klen);
	if ((rc = lb__hset_get(&e->keys, nm, n, &added, &h)) < 0)
		return rc;
	uint64_t del = (h->v[1] & VB_DELETED) |
	               (r->op == LB_OP_DELETE ? VB_DELETED : 0);
	if (!r->has_after) {
		h->v[0] = 0;
		h->v[1] = del | VB_NOAFTER;
		return 0;
	}
	h->v[0] = e->arena.len;
	h->v[1] = del | r->alen;
	return r->alen ? lb__buf_append(&e->arena, r->after, r->alen) : 0;
}

/* One look-up in a batch too big to keep. */
typedef struct vb_one {
	const char *t;
	size_t tlen;
	const void *k;
	size_t klen;
	int found, deleted, has_after;
	const void *want; /* the after-image wanted, and whether it is so */
	size_t wlen;
	int same;
} vb_one;

static int vb_one_cb(void *p, const lb_wal_rec *r)
{
	vb_one *o = p;
	if (r->op == LB_OP_TABLE || r->tlen != o->tlen || r->klen != o->klen ||
	    memcmp(r->table, o->t, o->tlen) || memcmp(r->key, o->k, o->klen))
		return 0;
	o->found = 1;
	o->deleted |= r->op == LB_OP_DELETE;
	o->has_after = r->has_after != 0;
	o->same = r->has_after && o->want && r->alen == o->wlen &&
	          (o->wlen == 0 || memcmp(r->after, o->want, o->wlen) == 0);
	return 0;
}

/* What batch id did to (table, key): 0 and *found, *deleted (a DELETE
 * record of it), *same (its last record's after-image is want/wlen, want
 * NULL: never); 1 when the batch's log is pruned (nothing can be said); or
 * a negative code. */
static int vb_lookup(vf *v, uint64_t id, const char *t, const void *k,
                     size_t klen, const void *want, size_t wlen, int *found,
                     int *deleted, int *same)
{
	lb_wal_hdr h;
	size_t tlen = strlen(t);
	int rc, big = 0;
	vbatch *e = NULL;
	*found = *deleted = *same = 0;
	for (int i = 0; v->vb && i < VB_MAX && !e; i++)
		if (v->vb[i].id == id)
			e = &v->vb[i];
	if (!e) {
		if ((rc = lb__hdr_get(v->db, v->txn, id, &h)) < 0)
			return rc;
		int pruned = h.pruned;
		big = h.raw_bytes > VB_BIG;
		lb__hdr_free(&h);
		if (pruned)
			return 1;
	}
	if (!big && !v->vb && !(v->vb = calloc(VB_MAX, sizeof *v->vb)))
		return lb__fail(LB_ENOMEM, "verify: out of memory");
	if (big) {
		vb_one o = {t, tlen, k, klen, 0, 0, 0, want, wlen, 0};
		rc = lb__walk_batch(v->db, v->txn, id, &v->r, vb_one_cb, &o);
		if (rc == LB_EPRUNED)
			return 1;
		if (rc < 0)
			return rc;
		*found = o.found;
		*deleted = o.deleted;
		*same = o.same;
		return 0;
	}
	if (!e) {
		e = &v->vb[0];
		for (int i = 1; i < VB_MAX; i++)
			if (v->vb[i].lru < e->lru)
				e = &v->vb[i];
		if (e->id) {
			lb__hset_free(&e->keys);
			lb__buf_free(&e->arena);
		}
		memset(e, 0, sizeof *e);
		lb__hset_init(&e->keys);
		lb__buf_init(&e->arena);
		rc = lb__walk_batch(v->db, v->txn, id, &v->r, vb_add, e);
		if (rc < 0) {
			lb__hset_free(&e->keys);
			lb__buf_free(&e->arena);
			memset(e, 0, sizeof *e);
			return rc == LB_EPRUNED ? 1 : rc;
		}
		e->id = id;
	}
	e->lru = ++v->vtick;
	uint8_t nm[1 + LB_TABLE_NAME_MAX + LB_KEY_MAX];
	lb_hent *x = lb__hset_find(&e->keys, nm, vb_name(nm, t, tlen, k, klen));
	if (!x)
		return 0;
	*found = 1;
	*deleted = (x->v[1] & VB_DELETED) != 0;
	uint64_t alen = x->v[1] & ~(VB_DELETED | VB_NOAFTER);
	*same = want && !(x->v[1] & VB_NOAFTER) && alen == wlen &&
	        (wlen == 0 || memcmp(e->arena.data + x->v[0], want, wlen) == 0);
	return 0;
}

/* The writer of value d of key k of t, or 0 after reporting a value too
 * short to hold one or naming a batch that does not exist. */
static uint64_t value_writer(vf *v, const lb_table *t, const MDB_val *k,
                             const MDB_val *d)
{
	char kt[96];
	if (d->mv_size < LB__VPFX) {
		bad(v, v->last,
		    "%s '%s': a value of %zu bytes, without the batch that "
		    "wrote it",
		    t->name,
		    lb__key_text(k->mv_data, k->mv_size, kt, sizeof kt),
		    d->mv_size);
		return 0;
	}
	uint64_t w = lb__get_be64(d->mv_data);
	if (w == 0 || w > v->last) {
		bad(v, v->last,
		    "%s '%s' names batch %llu as its writer, which does not "
		    "exist",
		    t->name,
		    lb__key_text(k->mv_data, k->mv_size, kt, sizeof kt),
		    (unsigned long long)w);
		return 0;
	}
	return w;
}

/* The batch of a `_gone` entry, or 0 after reporting a malformed entry or
 * one naming a batch that does not exist. */
static uint64_t gone_entry(vf *v, const MDB_val *k, const MDB_val *d)
{
	if (d->mv_size != 8 || k->mv_size < 5 || k->mv_size > LB__IKEY_MAX) {
		bad(v, v->last, "_gone holds a malformed entry");
		return 0;
	}
	uint64_t id = lb__get_be64(d->mv_data);
	if (id == 0 || id > v->last) {
		bad(v, v->last, "_gone names batch %llu, which does not exist",
		    (unsigned long long)id);
		return 0;
	}
	return id;
}

/* `_gone` says batch id deleted key of t: its log must have a DELETE of
 * it (reported, not returned: < 0 only when the log cannot be read). */
static int gone_entry_check(vf *v, uint64_t id, const lb_table *t,
                            const uint8_t *key, size_t klen)
{
	int found, deleted, same;
	int rc = vb_lookup(v, id, t->name, key, klen, NULL, 0, &found, &deleted,
	                   &same);
	if (rc == 0 && !deleted) {
		char kt[96];
		bad(v, id,
		    "_gone says batch %llu deleted %s '%s', which its log does "
		    "not",
		    (unsigned long long)id, t->name,
		    lb__key_text(key, klen, kt, sizeof kt));
	}
	return rc < 0 ? rc : 0;
}

/* Every value of t starts with its writer: a batch whose last record of
 * the key left that value. */
static int check_table_writers(vf *v, lb_table *t)
{
	MDB_cursor *c;
	MDB_val k, d;
	char kt[96];
	int rc = 0, mrc = mdb_cursor_open(v->txn, t->dbi, &c);
	if (mrc)
		return lb__mdb_fail(mrc, t->name);
	for (mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST); mrc == 0 && !v->failed;
	     mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		int found, deleted, same;
		uint64_t w = value_writer(v, t, &k, &d);
		if (!w)
			break;
		rc = vb_lookup(v, w, t->name, k.mv_data, k.mv_size,
		               (const uint8_t *)d.mv_data + LB__VPFX,
		               d.mv_size - LB__VPFX, &found, &deleted, &same);
		if (rc < 0)
			break;
		if (rc == 0 && !same)
			bad(v, w,
			    "%s '%s' names batch %llu as its writer, whose "
			    "log %s",
			    t->name,
			    lb__key_text(k.mv_data, k.mv_size, kt, sizeof kt),
			    (unsigned long long)w,
			    found ? "leaves it another value"
			          : "does not change it");
		rc = 0;
	}
	if (rc == 0 && mrc && mrc != MDB_NOTFOUND && !v->failed)
		rc = lb__mdb_fail(mrc, t->name);
	mdb_cursor_close(c);
	return rc;
}

/* Every `_gone` entry is well formed and names a batch that exists
 * (gone_entry). With kept (the log-driven pass), an entry of a live table
 * is only counted into *kept when its batch's log is kept (fp_end matched
 * it); every other entry of a table this handle knows is looked up in its
 * batch's log, which must delete the key. An entry of a removed table this
 * handle never knew, or of a key too long to be in it, is left to the
 * replay. */
static int walk_gone(vf *v, uint64_t *kept)
{
	MDB_cursor *c;
	MDB_val k, d;
	int rc = 0, mrc = mdb_cursor_open(v->txn, v->db->gone, &c);
	if (mrc)
		return lb__mdb_fail(mrc, "_gone");
	for (mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST); mrc == 0 && !v->failed;
	     mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		uint64_t id = gone_entry(v, &k, &d);
		if (!id)
			break;
		uint32_t tid = lb__get_be32(k.mv_data);
		lb_table *t = NULL;
		for (size_t i = 0; i < v->nt; i++)
			if (v->ts[i]->tid == (tid & ~LB__TID_HASHED))
				t = v->ts[i];
		if (kept && t && !t->dropped) {
			*kept += !v->pruned[id];
			continue;
		}
		if (!t || (tid & LB__TID_HASHED))
			continue;
		uint8_t key[LB_KEY_MAX];
		size_t klen = k.mv_size - 4;
		memcpy(key, (const uint8_t *)k.mv_data + 4, klen);
		if ((rc = gone_entry_check(v, id, t, key, klen)) < 0)
			break;
		rc = 0;
	}
	if (rc == 0 && mrc && mrc != MDB_NOTFOUND && !v->failed)
		rc = lb__mdb_fail(mrc, "_gone");
	mdb_cursor_close(c);
	return rc;
}

/* The slow pass, key by key: names what the log-driven pass found. */
static int check_writers_slow(vf *v)
{
	int rc = 0;
	for (size_t i = 0; i < v->nt && rc == 0 && !v->failed; i++)
		if (!v->ts[i]->dropped)
			rc = check_table_writers(v, v->ts[i]);
	if (rc == 0 && !v->failed)
		rc = walk_gone(v, NULL);
	vb_free(v);
	return rc;
}

/* Every value of t is at least 8 bytes and names a batch that exists; the
 * values whose writer's log is kept are counted into *kept. */
static int scan_table(vf *v, lb_table *t, uint64_t *kept)
{
	MDB_cursor *c;
	MDB_val k, d;
	int mrc = mdb_cursor_open(v->txn, t->dbi, &c);
	if (mrc)
		return lb__mdb_fail(mrc, t->name);
	for (mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		uint64_t w = value_writer(v, t, &k, &d);
		if (!w)
			break;
		*kept += !v->pruned[w];
	}
	mdb_cursor_close(c);
	if (mrc && mrc != MDB_NOTFOUND && !v->failed)
		return lb__mdb_fail(mrc, t->name);
	return 0;
}

/* What the log-driven pass found (fp_end), against the tables and
 * `_gone`: every value and entry it should have matched, it matched. */
static int check_writers(vf *v)
{
	uint64_t vkept = 0, gkept = 0;
	int rc = 0;
	const struct fpfind *first = NULL;
	for (size_t i = 0; i < v->nt && rc == 0 && !v->failed; i++)
		if (!v->ts[i]->dropped)
			rc = scan_table(v, v->ts[i], &vkept);
	if (rc == 0 && !v->failed) {
		rc = walk_gone(v, &gkept);
		vb_free(v);
	}
	if (rc < 0 || v->failed)
		return rc;
	/* the earliest finding, by kind (ftab) */
	for (int j = 0; j < 3 && !first; j++)
		for (size_t i = 0; i < v->nft; i++)
			if (v->ft[i].f[j].bad &&
			    (!first || v->ft[i].f[j].bad < first->bad))
				first = &v->ft[i].f[j];
	if (!first && vkept == v->vmatched && gkept == v->gmatched)
		return 0;
	if ((rc = check_writers_slow(v)) < 0 || v->failed)
		return rc;
	if (first)
		bad(v, first->bad, "%s", first->detail);
	else if (vkept != v->vmatched)
		bad(v, v->last,
		    "the log explains %llu of the %llu values written by "
		    "batches whose log is kept",
		    (unsigned long long)v->vmatched, (unsigned long long)vkept);
	else
		bad(v, v->last,
		    "the log explains %llu of the %llu _gone entries naming "
		    "batches whose log is kept",
		    (unsigned long long)v->gmatched, (unsigned long long)gkept);
	return 0;
}

/* ---- replay and compare -------------------------------------------------- */

static int meta_kept(const MDB_val *k)
{
	return (k->mv_size > 6 && memcmp(k->mv_data, "table/", 6) == 0) ||
	       (k->mv_size > 7 && memcmp(k->mv_data, "schema/", 7) == 0) ||
	       (k->mv_size == 8 && memcmp(k->mv_data, "next_tid", 8) == 0);
}

/* Where two sub-databases first differ. */
typedef struct vdiff {
	int kind;     /* 1 only in the database, 2 only in the replay, 3 the
	                 value differs */
	MDB_val k, d; /* the key (and, for 1 and 3, the database's value) */
} vdiff;

static int step(MDB_cursor *c, MDB_val *k, MDB_val *d, int *valid,
                MDB_cursor_op op, int (*keep)(const MDB_val *))
{
	int mrc;
	for (;;) {
		mrc = mdb_cursor_get(c, k, d, op);
		if (mrc)
			break;
		if (!keep || keep(k))
			break;
		op = MDB_NEXT;
	}
	*valid = mrc == 0;
	if (mrc == MDB_NOTFOUND)
		return 0;
	return mrc ? lb__mdb_fail(mrc, "comparing with the replay") : 0;
}

/* Walk sub-database da (in ta) and dbr (in tb) side by side. 0 when equal,
 * 1 with *df filled at the first difference, or a negative code. Entries
 * are (key, value) pairs in order, duplicates included. */
static int diff_dbi(MDB_txn *ta, MDB_dbi da, MDB_txn *tb, MDB_dbi dbr, int dups,
                    int (*keep)(const MDB_val *), vdiff *df)
{
	MDB_cursor *ca = NULL, *cb = NULL;
	MDB_val ka, va, kb, vb;
	int a_ok, b_ok, rc, mrc;
	if ((mrc = mdb_cursor_open(ta, da, &ca)) ||
	    (mrc = mdb_cursor_open(tb, dbr, &cb))) {
		rc = lb__mdb_fail(mrc, "comparing with the replay");
		goto out;
	}
	if ((rc = step(ca, &ka, &va, &a_ok, MDB_FIRST, keep)) < 0 ||
	    (rc = step(cb, &kb, &vb, &b_ok, MDB_FIRST, keep)) < 0)
		goto out;
	while (a_ok || b_ok) {
		/* c < 0: the entry is only in the database; c > 0: only in
		 * the replay. For duplicates, the value orders the entries
		 * of a key like a key does. */
		int c = !a_ok ? 1 : !b_ok ? -1 : keycmp(&ka, &kb), vd = 0;
		if (c == 0 && (vd = keycmp(&va, &vb)) != 0 && dups) {
			c = vd;
			vd = 0;
		}
		if (c || vd) {
			df->kind = vd ? 3 : c < 0 ? 1 : 2;
			df->k = c > 0 ? kb : ka;
			df->d = c > 0 ? vb : va;
			rc = 1;
			goto out;
		}
		if ((rc = step(ca, &ka, &va, &a_ok, MDB_NEXT, keep)) < 0 ||
		    (rc = step(cb, &kb, &vb, &b_ok, MDB_NEXT, keep)) < 0)
			goto out;
	}
	rc = 0;
out:
	if (ca)
		mdb_cursor_close(ca);
	if (cb)
		mdb_cursor_close(cb);
	return rc;
}

/* The live table of that name as this handle knows it, dropped or not
 * (a dropped table keeps its LMDB sub-database and handle). */
static lb_table *live_table(lb_db *db, const char *name)
{
	lb_table *t = lb__table_find(db, name);
	if (t)
		return t;
	pthread_mutex_lock(&db->tlock);
	for (size_t i = 0; i < db->ntables && !t; i++)
		if (strcmp(db->tables[i]->name, name) == 0)
			t = db->tables[i];
	pthread_mutex_unlock(&db->tlock);
	return t;
}

/* The writer of a stored value (FORMAT.md §2.4); v->last if it has
 * none. */
static uint64_t val_batch(vf *v, const MDB_val *val)
{
	if (!val || val->mv_size < LB__VPFX)
		return v->last;
	uint64_t w = lb__get_be64(val->mv_data);
	return w && w <= v->last ? w : v->last;
}

/* The last batch that changed (t, key): the writer of its value; v->last
 * if none. */
static uint64_t key_batch(vf *v, lb_table *t, const MDB_val *key)
{
	MDB_val k = *key, d;
	if (key->mv_size == 0 || key->mv_size > LB_KEY_MAX ||
	    mdb_get(v->txn, t->dbi, &k, &d) != 0)
		return v->last;
	return val_batch(v, &d);
}

static const char *kind_text(int kind)
{
	return kind == 1   ? "is not in the replay"
	       : kind == 2 ? "is missing from the database"
	                   : "differs from the replay";
}

/* Compare an index whose values are batch ids with the replay's; a
 * difference is charged to the batch id it holds. 1 if they differ. */
static int diff_ids(vf *v, MDB_dbi mine, MDB_txn *rt, MDB_dbi theirs, int dups,
                    const char *name)
{
	vdiff df;
	int rc = diff_dbi(v->txn, mine, rt, theirs, dups, NULL, &df);
	if (rc <= 0)
		return rc;
	bad(v, df.d.mv_size == 8 ? lb__get_be64(df.d.mv_data) : v->last,
	    "replay: the index %s differs", name);
	return 1;
}

/* No record names, in a ref field, a key its table does not hold: a
 * reference left dangling (a replay has the same references, so comparing
 * cannot tell). Charged to the last batch that changed the record. */
static int check_refs(vf *v)
{
	int rc = 0;
	pthread_mutex_lock(&v->db->tlock);
	size_t n = v->db->ntables;
	lb_table **ts = malloc((n ? n : 1) * sizeof *ts);
	if (ts && n)
		memcpy(ts, v->db->tables, n * sizeof *ts);
	pthread_mutex_unlock(&v->db->tlock);
	if (!ts)
		return lb__fail(LB_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && rc == 0 && !v->failed; i++) {
		lb_table *t = ts[i];
		MDB_cursor *c;
		MDB_val k, d;
		int mrc;
		if (t->dropped || !t->nrefs)
			continue;
		if ((mrc = mdb_cursor_open(v->txn, t->dbi, &c))) {
			rc = lb__mdb_fail(mrc, t->name);
			break;
		}
		for (mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST); mrc == 0;
		     mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
			uint32_t f;
			char kt[96];
			if ((rc = lb__val_user(&d, t->name)) < 0 ||
			    (rc = lb__refs_dangling(v->txn, t, d.mv_data,
			                            d.mv_size, &f)) < 0)
				break;
			if (rc == 0)
				continue;
			rc = 0;
			bad(v, key_batch(v, t, &k),
			    "%s '%s': field '%s' names a key that table %s "
			    "does not hold",
			    t->name,
			    lb__key_text(k.mv_data, k.mv_size, kt, sizeof kt),
			    t->schema.fields[f].name, t->schema.fields[f].ref);
			break;
		}
		if (rc == 0 && mrc && mrc != MDB_NOTFOUND && !v->failed)
			rc = lb__mdb_fail(mrc, t->name);
		mdb_cursor_close(c);
	}
	free(ts);
	return rc;
}

static int compare(vf *v, lb_db *rdb, MDB_txn *rt)
{
	MDB_cursor *c;
	MDB_val k, d;
	vdiff df;
	char kt[96];
	int rc, mrc;

	/* No reference dangles (a replay would have the same ones). */
	if ((rc = check_refs(v)) < 0 || v->failed)
		return rc < 0 ? rc : 0;
	/* The table list and schemas. */
	rc = diff_dbi(v->txn, v->db->meta, rt, rdb->meta, 0, meta_kept, &df);
	if (rc < 0)
		return rc;
	if (rc) {
		bad(v, v->last, "replay: _meta entry '%s' %s",
		    lb__key_text(df.k.mv_data, df.k.mv_size, kt, sizeof kt),
		    kind_text(df.kind));
		return 0;
	}
	/* Every table, named by the snapshot's _meta. */
	if ((mrc = mdb_cursor_open(v->txn, v->db->meta, &c)))
		return lb__mdb_fail(mrc, "_meta");
	for (mrc = table_entry(c, &k, &d, MDB_SET_RANGE); mrc == 0;
	     mrc = table_entry(c, &k, &d, MDB_NEXT)) {
		char name[LB_TABLE_NAME_MAX + 1];
		size_t nl = k.mv_size - 6;
		if (nl == 0 || nl > LB_TABLE_NAME_MAX) {
			bad(v, v->last, "_meta holds a malformed table entry");
			break;
		}
		memcpy(name, (const char *)k.mv_data + 6, nl);
		name[nl] = 0;
		lb_table *lt = live_table(v->db, name);
		lb_table *rtab = lb__table_find(rdb, name);
		if (!lt) {
			mdb_cursor_close(c);
			return lb__fail(LB_EBUSY,
			                "table %s was created by another "
			                "process during the check: verify "
			                "again",
			                name);
		}
		if (!rtab) {
			bad(v, v->last, "replay: table %s is missing", name);
			break;
		}
		rc = diff_dbi(v->txn, lt->dbi, rt, rtab->dbi, 0, NULL, &df);
		if (rc < 0)
			break;
		if (rc) {
			rc = 0;
			/* a key missing from the database: its writer in
			 * the replay */
			bad(v,
			    df.kind == 2 ? val_batch(v, &df.d)
			                 : key_batch(v, lt, &df.k),
			    "replay: table %s: key '%s' %s", name,
			    lb__key_text(df.k.mv_data, df.k.mv_size, kt,
			                 sizeof kt),
			    kind_text(df.kind));
			break;
		}
	}
	mdb_cursor_close(c);
	if (rc < 0)
		return rc;
	if (mrc && mrc != MDB_NOTFOUND)
		return lb__mdb_fail(mrc, "_meta");
	if (v->failed)
		return 0;
	/* The indexes. */
	if ((rc = diff_dbi(v->txn, v->db->refs, rt, rdb->refs, 1, NULL, &df)) <
	    0)
		return rc;
	if (rc) {
		bad(v, v->last, "replay: the foreign-key index _refs differs");
		return 0;
	}
	if ((rc = diff_ids(v, v->db->gone, rt, rdb->gone, 0, "_gone")) != 0)
		return rc < 0 ? rc : 0;
	if ((rc = diff_ids(v, v->db->undo, rt, rdb->undo, 1, "_undo")) != 0)
		return rc < 0 ? rc : 0;
	if ((rc = diff_ids(v, v->db->victims, rt, rdb->victims, 0,
	                   "_victims")) != 0)
		return rc < 0 ? rc : 0;
	/* Who stands: the replay settled it batch by batch (undo.c). */
	for (uint64_t id = 1; id <= v->last && !v->failed; id++) {
		lb_wal_hdr a, b;
		if ((rc = lb__hdr_get(v->db, v->txn, id, &a)) < 0)
			return rc;
		if ((rc = lb__hdr_get(rdb, rt, id, &b)) < 0) {
			lb__hdr_free(&a);
			return rc;
		}
		if (a.rolled_back_by != b.rolled_back_by)
			bad(v, id,
			    "replay: batch %llu is rolled back by batch %llu, "
			    "the replay says by %llu",
			    (unsigned long long)id,
			    (unsigned long long)a.rolled_back_by,
			    (unsigned long long)b.rolled_back_by);
		lb__hdr_free(&a);
		lb__hdr_free(&b);
	}
	return 0;
}

static int check_replay(vf *v)
{
	char *ckpt = NULL, *tmp = NULL, *dest = NULL;
	uint64_t at = 0, records = 0, failed = 0;
	const char *base;
	lb_db *rdb = NULL;
	int rc;

	if (v->maxpruned) {
		rc = lb__checkpoint_find(v->db, v->txn, v->maxpruned, v->last,
		                         &at, &ckpt);
		if (rc == LB_ENOTFOUND) {
			bad(v, v->maxpruned,
			    "cannot replay: the log is pruned up to batch %llu "
			    "and no registered checkpoint at or after it "
			    "exists on disk",
			    (unsigned long long)v->maxpruned);
			return 0;
		}
		if (rc == LB_ECORRUPT) {
			bad(v, v->last, "%s", lb_errmsg());
			return 0;
		}
		if (rc < 0)
			return rc;
	}
	base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&tmp, "%s/logbook-verify-XXXXXX", base) < 0) {
		free(ckpt);
		return lb__fail(LB_ENOMEM, "out of memory");
	}
	if (!mkdtemp(tmp)) {
		rc = lb__fail(errno == ENOSPC ? LB_EFULL : LB_EIO,
		              "cannot create a directory for the replay in %s: "
		              "%s",
		              base, strerror(errno));
		goto out;
	}
	if (asprintf(&dest, "%s/replay", tmp) < 0) {
		dest = NULL;
		rc = lb__fail(LB_ENOMEM, "out of memory");
		goto out;
	}
	rc = lb__replay_txn(v->db, v->txn, dest, v->last, ckpt, &records,
	                    &failed);
	/* what the machine or another handle did, not damage */
	if (rc == LB_ENOMEM || rc == LB_EIO || rc == LB_EFULL ||
	    rc == LB_EVERSION || rc == LB_EBUSY)
		goto out;
	if (rc < 0) {
		bad(v, failed ? failed : v->last, "replay failed: %s",
		    lb_errmsg());
		rc = 0;
		goto out;
	}
	lb_options o;
	lb_options_init(&o);
	o.flags = LB_RDONLY;
	if ((rc = lb_open(dest, &o, &rdb)) < 0)
		goto out;
	MDB_txn *rt;
	if ((rc = lb__read_txn(rdb, &rt)) < 0)
		goto out;
	rc = compare(v, rdb, rt);
	lb__read_done(rdb, rt);
	if (rc == 0 && !v->failed)
		v->rep->replay_ok = 1;
out:
	if (rdb)
		lb_close(rdb);
	if (dest)
		lb__rmdir_files(dest);
	if (tmp)
		rmdir(tmp);
	free(dest);
	free(tmp);
	free(ckpt);
	return rc;
}

atomic_int lb__verify_busy;

/* One check, on one snapshot. */
static int verify_once(lb_db *db, unsigned flags, lb_verify_report *rep)
{
	vf v;
	int rc;
	memset(rep, 0, sizeof *rep);
	if (atomic_load_explicit(&lb__verify_busy, memory_order_relaxed) > 0) {
		atomic_fetch_sub(&lb__verify_busy, 1);
		return lb__fail(LB_EBUSY, "page check: another process grew "
		                          "the database during the check "
		                          "(test)");
	}
	memset(&v, 0, sizeof v);
	v.db = db;
	v.rep = rep;
	lb__segr_init(&v.r);
	if ((rc = lb__read_txn(db, &v.txn)) < 0) {
		lb__segr_free(&v.r);
		return rc;
	}
	if ((rc = fp_init(&v)) < 0) {
		fp_free(&v);
		lb__read_done(db, v.txn);
		lb__segr_free(&v.r);
		return rc;
	}
	/* Every page's structure first: LMDB trusts its pages, and the
	 * walks below would read a damaged one out of bounds. */
	rc = lb__pagecheck(db->env, v.txn, LB__PAGECHECK_FULL);
	if (rc == LB_ECORRUPT) {
		bad(&v, 0, "%s", lb_errmsg());
		rc = 0;
	} else if (rc == 0) {
		rc = check_log(&v);
	}
	if (rc == 0) {
		rep->chain_ok = !v.failed;
		if (!v.failed)
			rc = check_next_tid(&v);
		if (rc == 0 && !v.failed)
			rc = check_undo(&v);
		/* the replay first, when asked: it names what differs */
		if (rc == 0 && (flags & LB_VERIFY_REPLAY) && !v.failed)
			rc = check_replay(&v);
		if (rc == 0 && !v.failed)
			rc = check_writers(&v);
	}
	fp_free(&v); /* its cursors, before the transaction ends */
	lb__read_done(db, v.txn);
	lb__segr_free(&v.r);
	if (rc < 0)
		return rc;
	if (v.failed)
		return lb__fail(LB_ECORRUPT, "verify: batch %llu: %s",
		                (unsigned long long)rep->bad_batch,
		                rep->detail);
	return 0;
}

int lb_verify(lb_db *db, unsigned flags, lb_verify_report *rep)
{
	int rc;
	if (rep)
		memset(rep, 0, sizeof *rep);
	if (!db || !rep)
		return lb__fail(LB_EINVAL, "lb_verify: NULL argument");
	if (flags & ~(unsigned)LB_VERIFY_REPLAY)
		return lb__fail(LB_EINVAL, "lb_verify: unknown flags 0x%x",
		                flags);
	/* Another process growing the database under the page check, or
	 * creating a table under the replay's comparison, makes a check give
	 * up (LB_EBUSY): check again, on a new snapshot (which follows the
	 * map), as a checkpoint copies again. */
	for (int tries = 0;; tries++) {
		rc = verify_once(db, flags, rep);
		if (rc != LB_EBUSY || tries + 1 >= LB__CATALOG_TRIES)
			return rc;
	}
}
