/* SPDX-License-Identifier: MIT */
/*
 * batch.c: write batches.
 *
 * A batch is one LMDB write transaction. Each op is validated, then written
 * to the table (the value behind the id of the batch that writes it), a
 * delete to `_gone` too, and for schema tables to `_refs`; its change
 * record [op, table, key, before, after, prev] is appended to the open
 * segment, prev being the key's writer before the op (FORMAT.md §2.4). When the
 * open segment reaches segment_size it is compressed and put into `_wal` inside
 * the same transaction, so the log buffer never holds more than one segment,
 * however large the batch.
 *
 * Commit runs the queued foreign-key checks, flushes the last segment,
 * writes the batch header (with the hash chained to the previous batch) and
 * commits the transaction: data, log and header become visible together or
 * not at all. A batch with any issue aborts the transaction, so a rejected
 * batch leaves no trace and consumes no id.
 *
 * Invariant: pointers LMDB returns into dirty pages are valid only until the
 * next write in the transaction (a write may spill or move pages). The
 * before-image is therefore copied into the segment before the data put.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/internal.h"

/* ---- issues (recorded by lb__issue, validate.c) ---------------------------
 */

static void issues_free(lb_issue *is, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(is[i].table);
		free(is[i].key);
		free(is[i].field);
		free(is[i].message);
	}
	free(is);
}

void lb_result_free(lb_result *r)
{
	if (!r)
		return;
	issues_free(r->issues, r->nissues);
	free(r->undone);
	memset(r, 0, sizeof *r);
}

void lb__batch_issues_to(lb_batch *b, lb_result *res)
{
	if (res) {
		res->issues = b->issues;
		res->nissues = b->nissues;
		res->nissues_total = b->nissues_total;
	} else {
		issues_free(b->issues, b->nissues);
	}
	b->issues = NULL;
	b->nissues = b->icap = 0;
}

/* ---- begin / end --------------------------------------------------------- */

static void batch_free(lb_batch *b)
{
	lb_db *db = b->db;
	if (b->txn)
		lb__wtxn_abort(db, b->txn);
	if (b->catlocked)
		pthread_mutex_unlock(&db->catlock);
	/* The segment writers are shared: clear this batch's records before
	 * the next batch may begin. */
	lb__zw_drain(db);
	lb__segw_reset(db->segw);
	lb__read_end(db);
	pthread_mutex_unlock(&db->wlock);
	issues_free(b->issues, b->nissues);
	lb__buf_free(&b->seghashes);
	lb__buf_free(&b->pending);
	lb__buf_free(&b->scratch);
	lb__journal_free(b);
	for (size_t i = 0; i < b->ntchanges; i++)
		if (!b->tchanges[i].drop)
			lb__table_free(b->tchanges[i].t);
	free(b->tchanges);
	free(b->marks);
	free(b->tcur); /* the cursors went with the transaction */
	free(b->tail);
	lb__hset_free(&b->own);
	free(b);
}

void lb__batch_reset(lb_batch *b)
{
	b->records = b->raw_bytes = b->stored_bytes = 0;
	b->nseg = 0;
	b->seghashes.len = 0;
	b->pending.len = 0;
	b->poisoned = 0;
	b->mapfull = 0;
	for (size_t i = 0; i < b->ntchanges; i++)
		if (!b->tchanges[i].drop)
			lb__table_free(b->tchanges[i].t);
	b->ntchanges = 0;
	b->catalog = 0;
	lb__zw_drain(b->db);
	lb__segw_reset(b->db->segw);
}

int lb__batch_txn(lb_batch *b)
{
	lb_db *db = b->db;
	int rc, mrc;
	b->txn_gen++;
	for (int reloads = 0;; reloads++) {
		int moved;
		mrc = lb__wtxn_begin(db, &b->txn);
		if (mrc == MDB_MAP_RESIZED && reloads < LB__CATALOG_TRIES) {
			/* another process grew the map past this one's: adopt
			 * its size, which needs no transaction of this process
			 * live, this batch's read hold included */
			b->txn = NULL;
			lb__read_end(db);
			rc = lb__map_adopt(db);
			lb__read_begin(db);
			if (rc < 0)
				return rc;
			if (!db->env)
				return lb__fail(LB_EIO,
				                "%s: the database could "
				                "not be mapped again",
				                db->path);
			continue;
		}
		if (mrc) {
			b->txn = NULL;
			return lb__mdb_fail(mrc, "beginning a batch");
		}
		/* the tables as committed, not as this handle last saw them
		 * (catalog.c) */
		if ((rc = lb__catalog_sync(db, b->txn, &moved)) < 0)
			return rc;
		if (!moved)
			break;
		lb__wtxn_abort(db, b->txn);
		b->txn = NULL;
		if (b->txn_gen > 1)
			return lb__fail(
			        LB_EBUSY,
			        "another process created or removed "
			        "tables while this batch grew the map: "
			        "nothing written; begin the batch again");
		if (reloads >= LB__CATALOG_TRIES)
			return lb__fail(
			        LB_EBUSY,
			        "%s: the tables keep changing (other "
			        "processes create and remove them); try "
			        "again",
			        db->path);
		rc = lb__catalog_reload(db);
		if (rc == LB__ERESIZED) {
			/* adopting needs this batch's read hold released */
			lb__read_end(db);
			rc = lb__map_adopt(db);
			lb__read_begin(db);
		}
		if (rc < 0)
			return rc;
	}
	if ((rc = lb__sync_last(db, b->txn)) < 0)
		return rc;
	b->id = db->last_id + 1;
	memcpy(b->chain_hash, db->last_hash, 32);
	lb__zw_drain(db);
	lb__segw_reset(db->segw);
	return 0;
}

/* A follower's batches come only from frames (follow.c): raw is 1 there,
 * and 0 for every batch of the database's own, which a follower refuses.
 * The mark is read in the batch's own transaction, so a promotion or a
 * first frame applied by another process counts at once. */
static int batch_begin(lb_db *db, const char *label, lb_batch **out, int raw)
{
	int rc;
	*out = NULL;
	if (db->flags & LB_RDONLY)
		return lb__fail(LB_EINVAL, "%s: database is open read-only",
		                db->path);
	if (label && strlen(label) > LB_LABEL_MAX)
		return lb__fail(LB_ETOOBIG, "batch label of %zu bytes (max %d)",
		                strlen(label), LB_LABEL_MAX);
	lb_batch *b = calloc(1, sizeof *b);
	if (!b)
		return lb__fail(LB_ENOMEM, "batch: out of memory");
	pthread_mutex_lock(&db->wlock);
	if ((rc = lb__grow_map_if_needed(db)) < 0) {
		pthread_mutex_unlock(&db->wlock);
		free(b);
		return rc;
	}
	lb__read_begin(db);
	b->db = db;
	b->owner = pthread_self();
	snprintf(b->label, sizeof b->label, "%s", label ? label : "");
	lb__buf_init(&b->seghashes);
	lb__buf_init(&b->pending);
	lb__buf_init(&b->scratch);
	lb__buf_init(&b->jbuf);
	if ((rc = lb__batch_txn(b)) < 0) {
		batch_free(b);
		return rc;
	}
	if (!raw && (rc = lb__follower_check(db, b->txn)) < 0) {
		batch_free(b);
		return rc;
	}
	*out = b;
	return 0;
}

int lb__batch_begin(lb_db *db, const char *label, lb_batch **out)
{
	return batch_begin(db, label, out, 0);
}

int lb__batch_begin_raw(lb_db *db, const char *label, lb_batch **out)
{
	return batch_begin(db, label, out, 1);
}

int lb_batch_begin(lb_db *db, const char *label, lb_batch **out)
{
	if (!out)
		return lb__fail(LB_EINVAL, "lb_batch_begin: b is NULL");
	*out = NULL;
	if (!db)
		return lb__fail(LB_EINVAL, "lb_batch_begin: db is NULL");
	return lb__batch_begin(db, label, out);
}

void lb_batch_abort(lb_batch *b)
{
	if (b)
		batch_free(b);
}

/* ---- segments ------------------------------------------------------------ */

static int poison(lb_batch *b, int rc)
{
	if (rc != LB_EVALIDATION && rc != LB_EINVAL && !b->poisoned) {
		b->poisoned = rc;
		b->mapfull = rc == LB_EFULL && lb__mapfull;
	}
	return rc;
}

/* Account for a finished segment and put it into _wal. */
static int put_finished(lb_batch *b, uint32_t segno, const uint8_t *seg,
                        size_t seglen, const uint8_t hash[32], size_t raw)
{
	int rc;
	if ((rc = lb__buf_reserve(&b->seghashes, 32)) < 0)
		return poison(b, rc);
	memcpy(b->seghashes.data + (size_t)segno * 32, hash, 32);
	b->seghashes.len = ((size_t)segno + 1) * 32;
	if ((rc = lb__put_segment_once(b, segno, seg, seglen)) < 0)
		return rc;
	b->raw_bytes += raw;
	b->stored_bytes += seglen;
	return 0;
}

/* A segment the worker finished (zwork.c), put in order. */
static int put_result(void *ctx, const lb_zw_result *z)
{
	return put_finished(ctx, z->segno, z->seg, z->seglen, z->hash, z->raw);
}

/* Compress the open segment on this thread (not yet put: segments reach
 * `_wal` in order, and the worker may hold the one before it). */
typedef struct {
	const uint8_t *seg; /* in db->segw until its next reset */
	size_t seglen, raw;
	uint8_t hash[32];
} lb_done;

static int finish_open(lb_batch *b, lb_done *d)
{
	lb_segw *w = b->db->segw;
	int rc;
	d->raw = lb__segw_rawlen(w);
	if ((rc = lb__segw_finish(w, &d->seg, &d->seglen)) < 0 ||
	    (rc = lb__sha256(d->seg, d->seglen, d->hash)) < 0)
		return poison(b, rc);
	return 0;
}

static int put_done(lb_batch *b, const lb_done *d)
{
	int rc = put_finished(b, b->nseg, d->seg, d->seglen, d->hash, d->raw);
	if (rc == 0)
		b->nseg++;
	return rc;
}

/* The open segment is full: hand it to the worker (zwork.c), else finish
 * it here. */
static int flush_segment(lb_batch *b)
{
	lb_done d;
	int rc = lb__zw_close(b->db, b->nseg, put_result, b);
	if (rc < 0)
		return poison(b, rc);
	if (rc == 1) {
		b->nseg++;
		return 0;
	}
	if ((rc = finish_open(b, &d)) < 0)
		return rc;
	return put_done(b, &d);
}

/* Commit: every segment in, in order. The last one is finished by the
 * worker when it is feeding it already, else here while the worker
 * finishes the one before it, if any. */
static int flush_all(lb_batch *b)
{
	lb_db *db = b->db;
	lb_done d;
	int rc, last = db->segw->count != 0;
	if (last && lb__zw_on_open(db)) {
		if ((rc = flush_segment(b)) < 0)
			return rc;
		last = 0;
	} else if (last && (rc = finish_open(b, &d)) < 0) {
		return rc;
	}
	if ((rc = lb__zw_wait(db, put_result, b)) < 0)
		return poison(b, rc);
	return last ? put_done(b, &d) : 0;
}

/* Before r is added to the open segment: room for it, flushing the segment
 * when r does not fit, and no feed in flight when adding r grows the
 * segment's buffer. */
static int segw_room(lb_batch *b, const lb_wal_rec *r)
{
	lb_db *db = b->db;
	int rc;
	if (db->segw->count && !lb__segw_fits(db->segw, r) &&
	    (rc = flush_segment(b)) < 0)
		return rc;
	if (lb__zw_on_open(db) && lb__segw_grows(db->segw, r) &&
	    (rc = lb__zw_wait(db, put_result, b)) < 0)
		return poison(b, rc);
	return 0;
}

/* After a record was added: flush the segment when it is full, else, at
 * each chunk boundary, offer the worker the chunks ready for its stream.
 * An undo batch does not: a rollback keeps the second core for reading
 * ahead the segments it undoes (readahead.c), and feeding its own log
 * there too made a rollback on a freshly opened handle a tenth slower; its
 * full segments still go to the worker. */
static int segw_added(lb_batch *b)
{
	lb_segw *w = b->db->segw;
	int rc;
	size_t raw = lb__segw_rawlen(w);
	if (raw >= b->db->segsize)
		return flush_segment(b);
	if (!w->zs || raw < w->offer || b->undoes)
		return 0;
	w->offer = (raw / LB__SEGW_CHUNK + 1) * LB__SEGW_CHUNK;
	if ((rc = lb__zw_offer(b->db, put_result, b)) < 0)
		return poison(b, rc);
	return 0;
}

static int log_record(lb_batch *b, const lb_wal_rec *r)
{
	lb_db *db = b->db;
	int rc = segw_room(b, r);
	if (rc < 0)
		return rc;
	rc = lb__segw_add(db->segw, r);
	if (rc < 0)
		return poison(b, rc);
	b->records++;
	return segw_added(b);
}

/* ---- ops ----------------------------------------------------------------- */

static int check_args(lb_batch *b, const char *table, const void *key,
                      size_t klen, const void *val, size_t vlen, int hasval,
                      lb_table **t)
{
	if (!b)
		return lb__fail(LB_EINVAL, "batch is NULL");
	if (!pthread_equal(b->owner, pthread_self()))
		return lb__fail(LB_EINVAL,
		                "batch %llu used from a thread that did not "
		                "begin it",
		                (unsigned long long)b->id);
	if (b->poisoned)
		return lb__fail(
		        b->poisoned, "batch %llu failed earlier (%s); abort it",
		        (unsigned long long)b->id, lb_strerror(b->poisoned));
	int rc = lb__key_args(table, key, klen);
	if (rc < 0)
		return rc;
	if (hasval && !val && vlen)
		return lb__fail(LB_EINVAL, "table %s: value is NULL", table);
	if (hasval && vlen > LB_VALUE_MAX)
		return lb__fail(LB_ETOOBIG,
		                "table %s: value of %zu bytes (max %u)", table,
		                vlen, (unsigned)LB_VALUE_MAX);
	*t = lb__table_find(b->db, table);
	if (!*t)
		return lb__no_table(b->db, table);
	return 0;
}

int lb__op_args(lb_batch *b, const char *table, const void *key, size_t klen,
                const void *val, size_t vlen, lb_table **t)
{
	return check_args(b, table, key, klen, val, vlen, 1, t);
}

/* The batch's cursors (on its tables and on `_gone`) and tails belong to
 * one transaction: on a new one (begin, or redo after growing the map)
 * none is open or known. */
static void txn_fresh(lb_batch *b)
{
	if (b->tcur_gen == b->txn_gen)
		return;
	if (b->tcur)
		memset(b->tcur, 0, b->ntcur * sizeof *b->tcur);
	if (b->tail)
		memset(b->tail, 0, b->ntcur * sizeof *b->tail);
	b->gone_cur = NULL;
	b->tcur_gen = b->txn_gen;
	b->seek_t = NULL;
}

/* The batch's cursor on t (see struct lb_batch). */
static int table_cursor(lb_batch *b, lb_table *t, MDB_cursor **out)
{
	txn_fresh(b);
	if (t->tid >= b->ntcur) {
		size_t n = t->tid + 8;
		MDB_cursor **nc = realloc(b->tcur, n * sizeof *nc);
		if (!nc)
			return lb__fail(LB_ENOMEM, "batch: out of memory");
		memset(nc + b->ntcur, 0, (n - b->ntcur) * sizeof *nc);
		b->tcur = nc;
		if (b->tail) {
			lb_tail *nt = realloc(b->tail, n * sizeof *nt);
			if (!nt)
				return lb__fail(LB_ENOMEM,
				                "batch: out of memory");
			memset(nt + b->ntcur, 0, (n - b->ntcur) * sizeof *nt);
			b->tail = nt;
		}
		b->ntcur = n;
	}
	MDB_cursor **c = &b->tcur[t->tid];
	if (*c && mdb_cursor_dbi(*c) != t->dbi) {
		mdb_cursor_close(*c);
		*c = NULL;
		if (b->tail)
			b->tail[t->tid].known = 0;
	}
	if (!*c) {
		int mrc = mdb_cursor_open(b->txn, t->dbi, c);
		if (mrc) {
			*c = NULL;
			return lb__mdb_fail(mrc, t->name);
		}
	}
	*out = *c;
	return 0;
}

/* Look up the largest key of c's sub-database into tl. */
static int tail_load(MDB_cursor *c, lb_tail *tl)
{
	MDB_val k, v;
	int mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	if (mrc && mrc != MDB_NOTFOUND)
		return lb__mdb_fail(mrc, "finding the last key");
	tl->known = 1;
	tl->empty = mrc == MDB_NOTFOUND;
	tl->len = 0;
	if (!tl->empty) {
		if (k.mv_size > sizeof tl->key)
			return lb__fail(LB_ECORRUPT, "key of %zu bytes",
			                k.mv_size);
		tl->len = k.mv_size;
		memcpy(tl->key, k.mv_data, k.mv_size);
	}
	return 0;
}

/* Is key past the tail (so absent, and appendable)? LMDB's default
 * order: memcmp over the shorter length, then the shorter first. */
static int past_tail(const lb_tail *tl, const void *key, size_t klen)
{
	if (tl->empty)
		return 1;
	size_t n = klen < tl->len ? klen : tl->len;
	int c = memcmp(key, tl->key, n);
	return c > 0 || (c == 0 && klen > tl->len);
}

static void tail_set(lb_tail *tl, const void *key, size_t klen)
{
	if (past_tail(tl, key, klen)) {
		tl->empty = 0;
		tl->len = klen;
		memcpy(tl->key, key, klen);
	}
}

/* The tail of t in this transaction (NULL: out of memory, go without). */
static lb_tail *table_tail(lb_batch *b, lb_table *t, MDB_cursor *c)
{
	if (!b->tail) {
		b->tail = calloc(b->ntcur, sizeof *b->tail);
		if (!b->tail)
			return NULL;
	}
	lb_tail *tl = &b->tail[t->tid];
	if (!tl->known && tail_load(c, tl) < 0)
		return NULL;
	return tl;
}

int lb__batch_seek(lb_batch *b, lb_table *t, const void *key, size_t klen,
                   MDB_val *cur)
{
	MDB_cursor *c;
	int rc = table_cursor(b, t, &c);
	if (rc < 0)
		return rc;
	MDB_val k = {klen, (void *)key};
	int mrc = mdb_cursor_get(c, &k, cur, MDB_SET);
	b->seek_t = NULL;
	if (mrc && mrc != MDB_NOTFOUND)
		return lb__mdb_fail(mrc, t->name);
	/* keys reach here checked: klen <= LB_KEY_MAX == sizeof seek_key */
	if (mrc == 0 && (rc = lb__val_user(cur, t->name)) < 0)
		return rc;
	b->seek_t = t;
	b->seek_found = mrc == 0;
	b->seek_val = mrc == 0 ? (MDB_val){cur->mv_size + LB__VPFX,
	                                   (uint8_t *)cur->mv_data - LB__VPFX}
	                       : (MDB_val){0, NULL};
	b->seek_klen = klen;
	memcpy(b->seek_key, key, klen);
	return mrc == 0;
}

/* Did lb__batch_seek just look up this key (cursor still on it)? */
static int seek_hit(const lb_batch *b, const lb_table *t, const void *key,
                    size_t klen)
{
	return b->seek_t == t && b->tcur_gen == b->txn_gen &&
	       b->seek_klen == klen && memcmp(b->seek_key, key, klen) == 0;
}

/*
 * An op goes through three steps, shared by its three callers (user ops,
 * rollback restores, replay):
 *  locate  the table is searched once: through lb__batch_seek's answer, or
 *          by a put with MDB_NOOVERWRITE that either inserts the absent key
 *          or returns its current value with the cursor on it, or by a
 *          cursor lookup;
 *  check   user ops only: duplicate, missing key, schema;
 *  write   the change record is logged (not by replay), then the write goes
 *          through the positioned cursor (MDB_CURRENT | MDB_RESERVE, the
 *          writer filled in before the bytes, or mdb_cursor_del) instead
 *          of a second descent, and `_gone` and _refs follow.
 */
typedef struct {
	MDB_cursor *c; /* on the key once located */
	MDB_val cur;   /* its current value as stored (writer first) */
	int exists;    /* the key was there before the op */
	int written;   /* the lookup inserted the value already */
} lb_spot;

/* Fill a value reserved by LMDB: the writer (this batch), then the bytes. */
static void fill(const lb_batch *b, MDB_val *d, const void *val, size_t vlen)
{
	lb__be64(d->mv_data, b->id);
	if (vlen)
		memcpy((uint8_t *)d->mv_data + LB__VPFX, val, vlen);
}

/* Insert the value if the key is absent (appending a key past the table's
 * last one), else leave the cursor on the key and its current value. */
static int insert_if_absent(lb_batch *b, lb_table *t, MDB_val *k,
                            const MDB_val *v, lb_spot *s)
{
	MDB_val d = {v->mv_size + LB__VPFX, NULL};
	lb_tail *tl = table_tail(b, t, s->c);
	int mrc = MDB_KEYEXIST;
	if (tl && past_tail(tl, k->mv_data, k->mv_size)) {
		mrc = mdb_cursor_put(s->c, k, &d, MDB_APPEND | MDB_RESERVE);
		if (mrc == MDB_KEYEXIST) /* the tail was stale */
			tl->known = 0;
	}
	if (mrc == MDB_KEYEXIST) {
		d = (MDB_val){v->mv_size + LB__VPFX, NULL};
		mrc = mdb_cursor_put(s->c, k, &d,
		                     MDB_NOOVERWRITE | MDB_RESERVE);
	}
	if (mrc && mrc != MDB_KEYEXIST)
		return poison(b, lb__mdb_fail(mrc, t->name));
	s->written = mrc == 0;
	if (s->written) {
		fill(b, &d, v->mv_data, v->mv_size);
		if (tl && tl->known)
			tail_set(tl, k->mv_data, k->mv_size);
	}
	s->exists = !s->written;
	if (s->exists)
		s->cur = d;
	return 0;
}

/* Find key in t; with insert != 0 an absent key gets val at once (there is
 * nothing to check before writing). */
static int locate(lb_batch *b, lb_table *t, const void *key, size_t klen,
                  const void *val, size_t vlen, int insert, lb_spot *s)
{
	MDB_val k = {klen, (void *)key};
	MDB_val v = {vlen, (void *)(val ? val : "")};
	int rc, mrc;
	*s = (lb_spot){0};
	if ((rc = table_cursor(b, t, &s->c)) < 0)
		return poison(b, rc);
	if (seek_hit(b, t, key, klen)) {
		s->exists = b->seek_found;
		s->cur = b->seek_val;
	} else if (insert) {
		if ((rc = insert_if_absent(b, t, &k, &v, s)) < 0)
			return rc;
	} else {
		mrc = mdb_cursor_get(s->c, &k, &s->cur, MDB_SET);
		if (mrc && mrc != MDB_NOTFOUND)
			return poison(b, lb__mdb_fail(mrc, t->name));
		s->exists = mrc == 0;
	}
	b->seek_t = NULL;
	return 0;
}

/* A user op's issues, every one reported: its key's and its value's.
 * 0 when there is none. */
static int check_op(lb_batch *b, lb_table *t, int mode, const void *key,
                    size_t klen, const void *val, size_t vlen, int exists)
{
	char kt[96];
	int bad = 0, rc, del = mode == LB__MODE_DELETE;
	if (mode == LB__MODE_INSERT && exists)
		bad = lb__issue(b, LB_ISSUE_DUPLICATE, t->name, key, klen, NULL,
		                0, "%s: key '%s' exists already", t->name,
		                lb__key_text(key, klen, kt, sizeof kt));
	if ((mode == LB__MODE_UPDATE || del) && !exists)
		bad = lb__issue(b, LB_ISSUE_MISSING, t->name, key, klen, NULL,
		                0, "%s: no key '%s'", t->name,
		                lb__key_text(key, klen, kt, sizeof kt));
	if (!del && t->schema.has_schema &&
	    (rc = lb__validate_value(b, t, key, klen, val, vlen)) < 0)
		bad = rc;
	return bad;
}

/* Log the change record r (logged != 0) before the write: a full open
 * segment is flushed first, which writes, so a before-image still in a page
 * is copied to b->scratch. The before-image is copied too when the table
 * holds references (the old ones are dropped after the write). */
static int log_op(lb_batch *b, lb_table *t, lb_wal_rec *r, const lb_spot *s,
                  int logged)
{
	lb_db *db = b->db;
	int rc;
	int flush = logged && db->segw->count && !lb__segw_fits(db->segw, r);
	if (s->exists && (t->nrefs || flush)) {
		b->scratch.len = 0;
		if ((rc = lb__buf_append(&b->scratch, r->before, r->blen)) < 0)
			return poison(b, rc);
		r->before = b->scratch.data;
	}
	if (!logged)
		return 0;
	if ((rc = segw_room(b, r)) < 0)
		return rc;
	if ((rc = lb__segw_add(db->segw, r)) < 0)
		return poison(b, rc);
	b->records++;
	return 0;
}

/* ---- the writer of a key (FORMAT.md §2.4) --------------------------------
 */

/* The batch that deleted ikey last (`_gone`), 0 if none; no look-up while
 * `_gone` is empty (most databases never delete). */
static int gone_get(lb_batch *b, const uint8_t *ik, size_t iklen, uint64_t *id)
{
	MDB_stat st;
	int mrc;
	*id = 0;
	if (b->gone_gen != b->txn_gen) {
		if ((mrc = mdb_stat(b->txn, b->db->gone, &st)))
			return lb__mdb_fail(mrc, "_gone");
		b->gone_any = st.ms_entries > 0;
		b->gone_gen = b->txn_gen;
	}
	return b->gone_any ? lb__gone_get(b->db, b->txn, ik, iklen, id) : 0;
}

static int gone_put(lb_batch *b, const uint8_t *ik, size_t iklen)
{
	uint8_t id[8];
	MDB_val k = {iklen, (void *)ik}, v = {8, id};
	lb__be64(id, b->id);
	int mrc = 0;
	txn_fresh(b);
	if (!b->gone_cur &&
	    (mrc = mdb_cursor_open(b->txn, b->db->gone, &b->gone_cur)))
		b->gone_cur = NULL;
	if (mrc == 0)
		mrc = mdb_cursor_put(b->gone_cur, &k, &v, 0);
	if (mrc)
		return lb__mdb_fail(mrc, "_gone");
	b->gone_any = 1;
	b->gone_gen = b->txn_gen;
	return 0;
}

static void own_fresh(lb_batch *b)
{
	if (b->own_gen != b->txn_gen || b->own_id != b->id) {
		lb__hset_clear(&b->own);
		b->own_gen = b->txn_gen;
		b->own_id = b->id;
	}
}

uint64_t lb__batch_own_prev(lb_batch *b, const void *ik, size_t iklen)
{
	own_fresh(b);
	lb_hent *e = lb__hset_find(&b->own, ik, iklen);
	return e ? e->v[0] : 0;
}

/* The prev of the record about to change the located key (FORMAT.md §4):
 * the writer of its value, else the batch that deleted it, else 0. The
 * batch's first change of a key that had a prev is noted for
 * lb__batch_own_prev (most changes of most batches have none: inserts). */
static int prev_of(lb_batch *b, lb_table *t, const uint8_t *ik, size_t iklen,
                   const lb_spot *s, uint64_t *prev)
{
	int rc, added;
	lb_hent *e;
	rc = s->exists ? lb__val_writer(&s->cur, t->name, prev)
	               : gone_get(b, ik, iklen, prev);
	if (rc < 0)
		return rc;
	if (*prev == b->id || *prev == 0)
		return 0;
	if (*prev > b->id)
		return lb__fail(LB_ECORRUPT,
		                "%s: a key last changed by batch %" PRIu64
		                ", after batch %" PRIu64,
		                t->name, *prev, b->id);
	own_fresh(b);
	if ((rc = lb__hset_get(&b->own, ik, iklen, &added, &e)) < 0)
		return rc;
	if (added)
		e->v[0] = *prev;
	return 0;
}

/* A replayed record's prev must be the key's last change (lb__replay_rec). */
static int check_prev(lb_batch *b, lb_table *t, const void *key, size_t klen,
                      uint64_t prev)
{
	char kt[96];
	if (!b->check_prev || prev == b->want_prev)
		return 0;
	return lb__fail(LB_ECORRUPT,
	                "%s: the record of key '%s' says batch %" PRIu64
	                " changed it last, but batch %" PRIu64 " did",
	                t->name, lb__key_text(key, klen, kt, sizeof kt),
	                b->want_prev, prev);
}

/* Write the located op (a put of val, or with del a delete), logged unless
 * replayed, then `_gone` and _refs. */
static int write_op(lb_batch *b, lb_table *t, int del, const void *key,
                    size_t klen, const void *val, size_t vlen, lb_spot *s,
                    int logged)
{
	MDB_val k = {klen, (void *)key};
	MDB_val v = {vlen + LB__VPFX, NULL};
	int rc, mrc, exists = s->exists;
	uint8_t ik[LB__IKEY_MAX];
	size_t ikn = lb__ikey(ik, t->tid, key, klen);
	uint64_t prev = 0;
	if (!ikn)
		return poison(b, LB_ENOMEM);
	if ((rc = prev_of(b, t, ik, ikn, s, &prev)) < 0 ||
	    (!logged && (rc = check_prev(b, t, key, klen, prev)) < 0))
		return poison(b, rc);
	lb_wal_rec r = {
	        .op = del ? LB_OP_DELETE : LB_OP_PUT,
	        .table = t->name,
	        .tlen = (uint32_t)strlen(t->name),
	        .key = key,
	        .klen = (uint32_t)klen,
	        .before = exists ? (uint8_t *)s->cur.mv_data + LB__VPFX : NULL,
	        .blen = exists ? (uint32_t)(s->cur.mv_size - LB__VPFX) : 0,
	        .has_before = exists,
	        .after = del ? NULL : (val ? val : ""),
	        .alen = del ? 0 : (uint32_t)vlen,
	        .has_after = !del,
	        .prev = prev};
	int refs = t->nrefs || t->referenced;
	if ((rc = log_op(b, t, &r, s, logged)) < 0)
		return rc;

	/* The cursor is still on the key: a put into _wal (another dbi)
	 * does not move it. */
	if (del)
		mrc = mdb_cursor_del(s->c, 0);
	else if (s->written)
		mrc = 0;
	else if ((mrc = mdb_cursor_put(s->c, &k, &v,
	                               (exists ? MDB_CURRENT : 0) |
	                                       MDB_RESERVE)) == 0)
		fill(b, &v, val, vlen);
	if (mrc)
		return poison(b, lb__mdb_fail(mrc, t->name));
	if (!exists && !del && !s->written && b->tail && b->tail[t->tid].known)
		tail_set(&b->tail[t->tid], key, klen);

	if (del && (rc = gone_put(b, ik, ikn)) < 0)
		return poison(b, rc);

	int old = t->nrefs && exists;
	if (refs && (rc = lb__refs_update(
	                     b, t, key, klen, old ? b->scratch.data : NULL,
	                     old ? s->cur.mv_size - LB__VPFX : 0,
	                     del ? NULL : (val ? val : ""), vlen, logged)) < 0)
		return poison(b, rc);

	return logged ? segw_added(b) : 0;
}

/* A user op (lb_put, lb_insert, lb_update, lb_delete): checked, logged. */
static int apply_user(lb_batch *b, lb_table *t, int mode, const void *key,
                      size_t klen, const void *val, size_t vlen)
{
	lb_spot s;
	int del = mode == LB__MODE_DELETE, rc;
	int insert = !del && mode != LB__MODE_UPDATE && !t->schema.has_schema;
	if ((rc = locate(b, t, key, klen, val, vlen, insert, &s)) < 0)
		return rc;
	if ((rc = check_op(b, t, mode, key, klen, val, vlen, s.exists)))
		return rc; /* an issue: nothing was written */
	return write_op(b, t, del, key, klen, val, vlen, &s, 1);
}

/* A rollback's restore: unchecked, logged. A delete that finds the key
 * absent already writes nothing (a forced undo; a cascade over a key a
 * forced one left) and sets b->skipped. */
static int apply_restore(lb_batch *b, lb_table *t, int del, const void *key,
                         size_t klen, const void *val, size_t vlen)
{
	lb_spot s;
	int rc = locate(b, t, key, klen, val, vlen, !del, &s);
	if (rc < 0)
		return rc;
	if (del && !s.exists) {
		b->skipped = 1;
		return 0;
	}
	return write_op(b, t, del, key, klen, val, vlen, &s, 1);
}

/* A replayed record: unchecked and not logged (the caller copies the
 * source's segments verbatim); a delete of a missing key is corrupt. */
static int apply_replay(lb_batch *b, lb_table *t, int del, const void *key,
                        size_t klen, const void *val, size_t vlen)
{
	lb_spot s;
	int rc = locate(b, t, key, klen, val, vlen, !del, &s);
	if (rc < 0)
		return rc;
	if (del && !s.exists)
		return poison(b,
		              lb__fail(LB_ECORRUPT,
		                       "%s: replayed delete of a missing key",
		                       t->name));
	return write_op(b, t, del, key, klen, val, vlen, &s, 0);
}

/* One attempt at an op: to the form its caller needs. The journal keeps
 * mode and how, so that grow.c redoes each op in its own form. */
int lb__apply_once(lb_batch *b, lb_table *t, int mode, const void *key,
                   size_t klen, const void *val, size_t vlen, int how)
{
	int del = mode == LB__MODE_DELETE;
	switch (how) {
	case LB__HOW_CHECK:
		return apply_user(b, t, mode, key, klen, val, vlen);
	case LB__HOW_RESTORE:
		return apply_restore(b, t, del, key, klen, val, vlen);
	default:
		return apply_replay(b, t, del, key, klen, val, vlen);
	}
}

/*
 * The journaled forms: on a full map (b->mapfull), grow it and redo the
 * batch so far (grow.c), then try the op once more. An op is journaled only
 * once it succeeded, so the journal holds exactly the applied ops.
 */
int lb__apply(lb_batch *b, lb_table *t, int mode, const void *key, size_t klen,
              const void *val, size_t vlen, int how)
{
	int rc = lb__apply_once(b, t, mode, key, klen, val, vlen, how);
	if (rc == LB_EFULL && b->mapfull) {
		/* Redoing the batch makes the tables it created anew: find
		 * t again by name after each regrow. */
		char name[LB_TABLE_NAME_MAX + 1];
		snprintf(name, sizeof name, "%s", t->name);
		int cp = b->check_prev;
		while (rc == LB_EFULL && b->mapfull) {
			/* the redone ops are checked already */
			b->check_prev = 0;
			rc = lb__regrow(b);
			b->check_prev = cp;
			if (rc < 0)
				break;
			if (!(t = lb__batch_table(b, name)))
				return lb__fail(
				        LB_ECORRUPT,
				        "redoing the batch: table %s is "
				        "gone",
				        name);
			rc = lb__apply_once(b, t, mode, key, klen, val, vlen,
			                    how);
		}
	}
	if (rc == 0)
		rc = lb__journal(b, LB__J_APPLY, mode, how, t->name, key, klen,
		                 val, vlen, mode != LB__MODE_DELETE);
	return rc;
}

int lb__apply_table(lb_batch *b, const char *name, const void *enc,
                    size_t enclen, int drop, int how)
{
	int rc = lb__apply_table_once(b, name, enc, enclen, drop, how);
	while (rc == LB_EFULL && b->mapfull && (rc = lb__regrow(b)) == 0)
		rc = lb__apply_table_once(b, name, enc, enclen, drop, how);
	if (rc == 0)
		rc = lb__journal(b, LB__J_TABLE, drop, how, name, name,
		                 strlen(name), enc, enclen, !drop);
	return rc;
}

int lb__put_segment_once(lb_batch *b, uint32_t segno, const void *seg,
                         size_t len)
{
	uint8_t k[12];
	lb__be64(k, b->id);
	lb__be32(k + 8, segno);
	MDB_val key = {12, k}, val = {len, (void *)seg};
	int mrc = mdb_put(b->txn, b->db->wal, &key, &val, MDB_APPEND);
	if (mrc)
		return poison(b, lb__mdb_fail(mrc, "writing a segment"));
	return 0;
}

int lb__batch_put_segment(lb_batch *b, uint32_t segno, const void *seg,
                          size_t len)
{
	uint8_t k[4];
	int rc = lb__put_segment_once(b, segno, seg, len);
	while (rc == LB_EFULL && b->mapfull && (rc = lb__regrow(b)) == 0)
		rc = lb__put_segment_once(b, segno, seg, len);
	lb__be32(k, segno);
	if (rc == 0)
		rc = lb__journal(b, LB__J_SEG, 0, 0, "", k, 4, seg, len, 1);
	return rc;
}

static int op(lb_batch *b, int mode, const char *table, const void *key,
              size_t klen, const void *val, size_t vlen)
{
	lb_table *t;
	int rc = check_args(b, table, key, klen, val, vlen,
	                    mode != LB__MODE_DELETE, &t);
	if (rc < 0)
		return rc;
	return lb__apply(b, t, mode, key, klen, val, vlen, LB__HOW_CHECK);
}

int lb_put(lb_batch *b, const char *table, const void *key, size_t klen,
           const void *val, size_t vlen)
{
	return op(b, LB__MODE_PUT, table, key, klen, val, vlen);
}

int lb_insert(lb_batch *b, const char *table, const void *key, size_t klen,
              const void *val, size_t vlen)
{
	return op(b, LB__MODE_INSERT, table, key, klen, val, vlen);
}

int lb_update(lb_batch *b, const char *table, const void *key, size_t klen,
              const void *val, size_t vlen)
{
	return op(b, LB__MODE_UPDATE, table, key, klen, val, vlen);
}

int lb_delete(lb_batch *b, const char *table, const void *key, size_t klen)
{
	return op(b, LB__MODE_DELETE, table, key, klen, NULL, 0);
}

int lb_batch_get(lb_batch *b, const char *table, const void *key, size_t klen,
                 const void **val, size_t *vlen)
{
	lb_table *t;
	if (val)
		*val = NULL;
	if (!val || !vlen)
		return lb__fail(LB_EINVAL, "lb_batch_get: NULL output");
	int rc = check_args(b, table, key, klen, NULL, 0, 0, &t);
	if (rc < 0)
		return rc;
	MDB_val k = {klen, (void *)key}, v;
	int mrc = mdb_get(b->txn, t->dbi, &k, &v);
	if (mrc == MDB_NOTFOUND) {
		char kt[96];
		return lb__fail(LB_ENOTFOUND, "%s: no key '%s'", table,
		                lb__key_text(key, klen, kt, sizeof kt));
	}
	if (mrc)
		return lb__mdb_fail(mrc, table);
	if ((rc = lb__val_user(&v, table)) < 0)
		return rc;
	*val = v.mv_data;
	*vlen = v.mv_size;
	return 0;
}

/* ---- tables -------------------------------------------------------------- */

static int tchange_add(lb_batch *b, lb_table *t, int drop)
{
	struct lb_tchange *n =
	        realloc(b->tchanges, (b->ntchanges + 1) * sizeof *n);
	if (!n)
		return lb__fail(LB_ENOMEM, "out of memory");
	b->tchanges = n;
	n[b->ntchanges].t = t;
	n[b->ntchanges].drop = drop;
	b->ntchanges++;
	return 0;
}

/* A table created earlier in this batch is not published yet. */
int lb__apply_table_once(lb_batch *b, const char *name, const void *enc,
                         size_t enclen, int drop, int how)
{
	lb_db *db = b->db;
	int rc, mrc;
	char mk[7 + LB_TABLE_NAME_MAX + 1];
	lb_table *t = lb__batch_table(b, name);
	uint8_t tv[4];

	if (!drop && t)
		return lb__fail(LB_EEXIST, "table %s exists already", name);
	if (drop && !t)
		return lb__no_table(db, name);
	if (drop) {
		MDB_stat st;
		if ((mrc = mdb_stat(b->txn, t->dbi, &st)))
			return poison(b, lb__mdb_fail(mrc, name));
		if (st.ms_entries)
			return lb__fail(LB_EINVAL,
			                "table %s holds %zu records: only an "
			                "empty table can be removed",
			                name, (size_t)st.ms_entries);
		enc = t->encoded.data;
		enclen = t->encoded.len;
	}
	lb_wal_rec r = {.op = LB_OP_TABLE,
	                .table = name,
	                .tlen = (uint32_t)strlen(name),
	                .key = name,
	                .klen = (uint32_t)strlen(name),
	                .before = drop ? enc : NULL,
	                .blen = drop ? (uint32_t)enclen : 0,
	                .has_before = drop,
	                .after = drop ? NULL : enc,
	                .alen = drop ? 0 : (uint32_t)enclen,
	                .has_after = !drop};
	if (how != LB__HOW_REPLAY && (rc = log_record(b, &r)) < 0)
		return rc;
	if ((rc = lb__catalog_bump(b)) < 0)
		return poison(b, rc);

	int kl = snprintf(mk, sizeof mk, "table/%s", name);
	MDB_val tk = {(size_t)kl, mk};
	if (drop) {
		if ((mrc = mdb_del(b->txn, db->meta, &tk, NULL)))
			return poison(b, lb__mdb_fail(mrc, "_meta"));
		kl = snprintf(mk, sizeof mk, "schema/%s", name);
		MDB_val sk = {(size_t)kl, mk};
		if ((mrc = mdb_del(b->txn, db->meta, &sk, NULL)))
			return poison(b, lb__mdb_fail(mrc, "_meta"));
		if ((rc = tchange_add(b, t, 1)) < 0)
			return poison(b, rc);
		return 0;
	}

	MDB_val nk = {8, "next_tid"}, nv;
	if ((mrc = mdb_get(b->txn, db->meta, &nk, &nv)) || nv.mv_size != 4)
		return poison(b, lb__fail(LB_ECORRUPT, "_meta: no next_tid"));
	uint32_t tid = lb__get_be32(nv.mv_data);
	if (tid == 0 || tid >= LB__TID_HASHED)
		return poison(b, lb__fail(LB_ECORRUPT, "_meta: bad next_tid"));
	lb__be32(tv, tid + 1);
	MDB_val nv2 = {4, tv};
	if ((mrc = mdb_put(b->txn, db->meta, &nk, &nv2, 0)))
		return poison(b, lb__mdb_fail(mrc, "_meta"));
	lb__be32(tv, tid);
	MDB_val tvv = {4, tv};
	if ((mrc = mdb_put(b->txn, db->meta, &tk, &tvv, 0)))
		return poison(b, lb__mdb_fail(mrc, "_meta"));
	kl = snprintf(mk, sizeof mk, "schema/%s", name);
	MDB_val sk = {(size_t)kl, mk}, sv = {enclen, (void *)enc};
	if ((mrc = mdb_put(b->txn, db->meta, &sk, &sv, 0)))
		return poison(b, lb__mdb_fail(mrc, "_meta"));
	if ((rc = lb__table_make(db, b, name, tid, enc, enclen, &t)) < 0)
		return poison(b, rc);
	char dname[2 + LB_TABLE_NAME_MAX + 1];
	snprintf(dname, sizeof dname, "t/%s", name);
	/* LMDB: a transaction that opens a handle must end before another
	 * one opens any (catalog.c's loads wait for this batch) */
	if (!b->catlocked) {
		pthread_mutex_lock(&db->catlock);
		b->catlocked = 1;
	}
	if ((mrc = mdb_dbi_open(b->txn, dname, MDB_CREATE, &t->dbi))) {
		lb__table_free(t);
		return poison(b, lb__mdb_fail(mrc, dname));
	}
	/* A table dropped and made again keeps its sub-database: empty it
	 * in case an older process left records behind. */
	if ((mrc = mdb_drop(b->txn, t->dbi, 0))) {
		lb__table_free(t);
		return poison(b, lb__mdb_fail(mrc, dname));
	}
	if ((rc = tchange_add(b, t, 0)) < 0) {
		lb__table_free(t);
		return poison(b, rc);
	}
	return 0;
}

/* ---- changing a table's schema --------------------------------------------
 * One TABLE record with both images (FORMAT.md §4.2). The table keeps its id
 * and its records; a new lb_table (the new schema, its references) takes
 * the old one's place at commit. Every record is checked against the new
 * schema (not in a replay, which applies what the log says), and the
 * reverse references of `_refs` are rebuilt for the table's ref fields. */

/* Rebuild t's references for nt and check each record against nt. */
static int alter_records(lb_batch *b, lb_table *t, lb_table *nt, int how)
{
	MDB_cursor *c;
	MDB_val k, v;
	lb_buf key, val;
	int rc = 0, mrc;
	int refs = t->nrefs || nt->nrefs;
	int check = how != LB__HOW_REPLAY && nt->schema.has_schema;
	if (!refs && !check)
		return 0;
	if ((mrc = mdb_cursor_open(b->txn, t->dbi, &c)))
		return lb__mdb_fail(mrc, t->name);
	lb__buf_init(&key);
	lb__buf_init(&val);
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0 && rc == 0;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		/* the writes to _refs may move the page under v */
		key.len = val.len = 0;
		if ((rc = lb__val_user(&v, t->name)) < 0)
			break;
		if ((rc = lb__buf_append(&key, k.mv_data, k.mv_size)) < 0 ||
		    (rc = lb__buf_append(&val, v.mv_data, v.mv_size)) < 0)
			break;
		if (check && b->nissues_total < LB_ISSUES_MAX &&
		    (rc = lb__validate_value(b, nt, key.data, key.len, val.data,
		                             val.len)) == LB_EVALIDATION)
			rc = 0;
		if (rc == 0 && refs && t->nrefs)
			rc = lb__refs_update(b, t, key.data, key.len, val.data,
			                     val.len, NULL, 0, 0);
		if (rc == 0 && refs && nt->nrefs)
			rc = lb__refs_update(b, nt, key.data, key.len, NULL, 0,
			                     val.data, val.len,
			                     how != LB__HOW_REPLAY);
		/* the cursor itself stays on its key across writes to other
		 * sub-databases */
	}
	if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
		rc = lb__mdb_fail(mrc, t->name);
	mdb_cursor_close(c);
	lb__buf_free(&key);
	lb__buf_free(&val);
	return rc;
}

int lb__alter_table_once(lb_batch *b, const char *name, const void *enc,
                         size_t enclen, int how)
{
	lb_db *db = b->db;
	lb_table *t = lb__batch_table(b, name), *nt;
	char mk[7 + LB_TABLE_NAME_MAX + 1];
	int rc, mrc;
	if (!t)
		return lb__no_table(db, name);
	if (t->encoded.len == enclen &&
	    (enclen == 0 || memcmp(t->encoded.data, enc, enclen) == 0))
		return 0; /* the same schema: nothing to change */
	lb_wal_rec r = {.op = LB_OP_TABLE,
	                .table = name,
	                .tlen = (uint32_t)strlen(name),
	                .key = name,
	                .klen = (uint32_t)strlen(name),
	                .before = t->encoded.data,
	                .blen = (uint32_t)t->encoded.len,
	                .has_before = 1,
	                .after = enc,
	                .alen = (uint32_t)enclen,
	                .has_after = 1};
	if ((rc = lb__table_make(db, b, name, t->tid, enc, enclen, &nt)) < 0)
		return rc; /* a bad schema or a missing referenced table */
	nt->dbi = t->dbi;
	if ((how != LB__HOW_REPLAY && (rc = log_record(b, &r)) < 0) ||
	    (rc = lb__catalog_bump(b)) < 0) {
		lb__table_free(nt);
		return poison(b, rc);
	}
	int kl = snprintf(mk, sizeof mk, "schema/%s", name);
	MDB_val sk = {(size_t)kl, mk}, sv = {enclen, (void *)enc};
	if ((mrc = mdb_put(b->txn, db->meta, &sk, &sv, 0))) {
		lb__table_free(nt);
		return poison(b, lb__mdb_fail(mrc, "_meta"));
	}
	if ((rc = alter_records(b, t, nt, how)) < 0 && rc != LB_EVALIDATION) {
		lb__table_free(nt);
		return poison(b, rc);
	}
	if ((rc = tchange_add(b, t, 1)) < 0 ||
	    (rc = tchange_add(b, nt, 0)) < 0) {
		if (b->ntchanges == 0 || b->tchanges[b->ntchanges - 1].t != nt)
			lb__table_free(nt);
		return poison(b, rc);
	}
	return b->nissues_total ? LB_EVALIDATION : 0;
}

int lb__alter_table(lb_batch *b, const char *name, const void *enc,
                    size_t enclen, int how)
{
	int rc = lb__alter_table_once(b, name, enc, enclen, how);
	while (rc == LB_EFULL && b->mapfull && (rc = lb__regrow(b)) == 0)
		rc = lb__alter_table_once(b, name, enc, enclen, how);
	if (rc == 0 || rc == LB_EVALIDATION) {
		int jrc = lb__journal(b, LB__J_TABLE, 2, how, name, name,
		                      strlen(name), enc, enclen, 1);
		if (jrc < 0)
			rc = jrc;
	}
	return rc;
}

/* Begin the batch of a table's creation or schema change ("<verb> table
 * NAME"), with s encoded into *enc: the name checked, and the tables s
 * references checked against the tables as committed (the batch loaded
 * them). On failure nothing is left to release. */
static int table_batch(lb_db *db, const char *verb, const char *name,
                       const lb_schema *s, lb_buf *enc, lb_batch **out)
{
	lb_batch *b;
	int rc;
	*out = NULL;
	lb__buf_init(enc);
	if (!db)
		return lb__fail(LB_EINVAL, "table %s: db is NULL", verb);
	if (!name || !*name)
		return lb__fail(LB_EINVAL, "table name is NULL or empty");
	if (strlen(name) > LB_TABLE_NAME_MAX)
		return lb__fail(LB_ETOOBIG, "table name of %zu bytes (max %d)",
		                strlen(name), LB_TABLE_NAME_MAX);
	if (!lb__table_name_ok(name, strlen(name)))
		return lb__fail(LB_EINVAL,
		                "table name '%s': use 1..%d of "
		                "[A-Za-z0-9_.-]",
		                name, LB_TABLE_NAME_MAX);
	if ((rc = lb__schema_encode(s, enc)) < 0) {
		lb__buf_free(enc);
		return rc;
	}
	char label[32 + LB_TABLE_NAME_MAX];
	snprintf(label, sizeof label, "%s table %s", verb, name);
	if ((rc = lb__batch_begin(db, label, &b)) < 0) {
		lb__buf_free(enc);
		return rc;
	}
	for (size_t i = 0; s && i < s->nfields && rc == 0; i++) {
		const char *ref = s->fields[i].ref;
		if (ref && strcmp(ref, name) != 0 && !lb__batch_table(b, ref))
			rc = lb__fail(LB_EINVAL,
			              "table %s: field '%s' references missing "
			              "table %s",
			              name, s->fields[i].name, ref);
	}
	if (rc < 0) {
		lb_batch_abort(b);
		lb__buf_free(enc);
		return rc;
	}
	*out = b;
	return 0;
}

int lb_table_alter(lb_db *db, const char *name, const lb_schema *s,
                   lb_result *res)
{
	lb_buf enc;
	lb_batch *b;
	if (res)
		memset(res, 0, sizeof *res);
	int rc = table_batch(db, "alter", name, s, &enc, &b);
	if (rc < 0)
		return rc;
	rc = lb__alter_table(b, name, enc.data, enc.len, LB__HOW_CHECK);
	lb__buf_free(&enc);
	if (rc < 0 && rc != LB_EVALIDATION) {
		lb_batch_abort(b);
		return rc;
	}
	rc = lb_batch_commit(b, res);
	if (rc == LB_EVALIDATION)
		rc = lb__rewrap(rc,
		                "the records of table %s do not all fit the "
		                "new schema",
		                name);
	return rc;
}

int lb_table_create(lb_db *db, const char *name, const lb_schema *s)
{
	lb_buf enc;
	lb_batch *b;
	if (db)
		lb__catalog_free_slots(db);
	int rc = table_batch(db, "create", name, s, &enc, &b);
	if (rc < 0)
		return rc;
	rc = lb__apply_table(b, name, enc.data, enc.len, 0, LB__HOW_CHECK);
	lb__buf_free(&enc);
	if (rc < 0) {
		lb_batch_abort(b);
		return rc;
	}
	return lb_batch_commit(b, NULL);
}

int lb__batch_drops(const lb_batch *b)
{
	for (size_t i = 0; i < b->ntchanges; i++)
		if (b->tchanges[i].drop)
			return 1;
	return 0;
}

/* ---- commit -------------------------------------------------------------- */

int lb__batch_mark(lb_batch *b, uint64_t id)
{
	int rc = lb__grow(&b->marks, &b->mcap, b->nmarks + 1, sizeof *b->marks,
	                  8);
	if (rc < 0)
		return rc;
	b->marks[b->nmarks++] = id;
	return 0;
}

static int write_marks(lb_batch *b)
{
	return lb__undo_settle(b);
}

/* Put batch b->id's encoded header into _batches (ids only grow). */
static int put_header(lb_batch *b, const void *enc, size_t len)
{
	uint8_t kb[8];
	lb__be64(kb, b->id);
	MDB_val k = {8, kb}, v = {len, (void *)enc};
	int mrc = mdb_put(b->txn, b->db->batches, &k, &v, MDB_APPEND);
	if (mrc)
		return poison(b, lb__mdb_fail(mrc, "writing the batch header"));
	return 0;
}

/* Replay: may the copied header h be written as batch b->id, after the
 * batch before it in this transaction's chain? */
static int chain_check(const lb_batch *b, const lb_wal_hdr *h)
{
	if (b->poisoned)
		return lb__fail(b->poisoned, "replaying batch %llu failed (%s)",
		                (unsigned long long)b->id,
		                lb_strerror(b->poisoned));
	if (h->id != b->id || memcmp(h->prev_hash, b->chain_hash, 32) != 0)
		return lb__fail(LB_ECORRUPT,
		                "batch %llu does not follow batch %llu in the "
		                "chain",
		                (unsigned long long)h->id,
		                (unsigned long long)b->id - 1);
	return 0;
}

/* Does a live table other than t, or one b creates, use t's handle (the
 * same name made again)? Under tlock. */
static int dbi_in_use(const lb_db *db, const lb_batch *b, const lb_table *t)
{
	for (size_t i = 0; i < db->ntables; i++)
		if (db->tables[i] != t && !db->tables[i]->dropped &&
		    db->tables[i]->dbi == t->dbi)
			return 1;
	for (size_t i = 0; i < b->ntchanges; i++)
		if (!b->tchanges[i].drop && b->tchanges[i].t != t &&
		    b->tchanges[i].t->dbi == t->dbi)
			return 1;
	return 0;
}

/* After the transaction committed: remember the chain head and publish the
 * batch's table changes. */
static void committed(lb_batch *b, const uint8_t hash[32])
{
	lb_db *db = b->db;
	db->last_id = b->id;
	memcpy(db->last_hash, hash, 32);

	for (size_t i = 0; i < b->ntchanges; i++) {
		lb_table *t = b->tchanges[i].t;
		if (b->tchanges[i].drop) {
			pthread_mutex_lock(&db->tlock);
			t->dropped = 1;
			if (b->private_db && !t->dbi_closed &&
			    !dbi_in_use(db, b, t)) {
				mdb_dbi_close(db->env, t->dbi);
				t->dbi_closed = 1;
			}
			pthread_mutex_unlock(&db->tlock);
		} else if (lb__tables_publish(db, t) == 0) {
			b->tchanges[i].drop = 1; /* now owned by db */
		} else {
			/* out of memory (finish_txn reserved the room, so
			 * never): the table is on disk, and the next
			 * transaction loads the list again; batch_free
			 * releases this copy */
			b->catalog = UINT64_MAX;
		}
	}
	if (b->catalog) {
		/* the list was the catalog when the batch began, and the
		 * writer lock kept it so: with the batch's own changes just
		 * published it is the new one */
		pthread_mutex_lock(&db->tlock);
		db->catalog = b->catalog;
		pthread_mutex_unlock(&db->tlock);
	}
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Put the header (given, for replay; else built from the batch) and
 * commit the transaction. */
static int finish_txn(lb_batch *b, int64_t time_ns, const lb_wal_hdr *given,
                      uint8_t hash[32])
{
	lb_db *db = b->db;
	lb_wal_hdr h;
	lb_buf enc;
	int rc, mrc;
	if (!given && (rc = flush_all(b)) < 0)
		return rc;
	if ((rc = write_marks(b)) < 0)
		return poison(b, rc);
	if (given) {
		h = *given;
	} else {
		memset(&h, 0, sizeof h);
		h.id = b->id;
		h.time_ns = time_ns ? time_ns : now_ns();
		snprintf(h.label, sizeof h.label, "%s", b->label);
		h.records = b->records;
		h.segments = b->nseg;
		h.raw_bytes = b->raw_bytes;
		h.stored_bytes = b->stored_bytes;
		h.undoes = b->undoes;
		h.seg_hashes = b->seghashes.data;
		memcpy(h.prev_hash, db->last_hash, 32);
		if ((rc = lb__hdr_hash(&h, h.hash)) < 0)
			return poison(b, rc);
	}
	lb__buf_init(&enc);
	if ((rc = lb__hdr_encode(&h, &enc)) < 0) {
		lb__buf_free(&enc);
		return poison(b, rc);
	}
	rc = put_header(b, enc.data, enc.len);
	lb__buf_free(&enc);
	if (rc < 0)
		return rc;
	/* room for the tables the batch creates, so that publishing them
	 * once it committed (committed()) cannot fail */
	size_t made = 0;
	for (size_t i = 0; i < b->ntchanges; i++)
		made += !b->tchanges[i].drop;
	if (made && (rc = lb__tables_reserve(db, made)) < 0)
		return poison(b, rc);
	mrc = lb__wtxn_commit(db, b->txn);
	b->txn = NULL;
	if (mrc)
		return poison(
		        b, lb__full_or_io(db, lb__mdb_fail(mrc, "committing")));
	memcpy(hash, h.hash, 32);
	return 0;
}

/* finish_txn, growing the map and redoing the batch while it is full. */
static int finish_grow(lb_batch *b, int64_t time_ns, const lb_wal_hdr *given,
                       uint8_t hash[32])
{
	int rc = finish_txn(b, time_ns, given, hash);
	while (rc == LB_EFULL && b->mapfull && (rc = lb__regrow(b)) == 0)
		rc = finish_txn(b, time_ns, given, hash);
	return rc;
}

int lb__batch_commit_at(lb_batch *b, int64_t time_ns, lb_result *res)
{
	uint8_t hash[32];
	int rc;
	if (res)
		memset(res, 0, sizeof *res);
	if (b->poisoned) {
		rc = lb__fail(b->poisoned,
		              "batch %llu failed earlier (%s): nothing written",
		              (unsigned long long)b->id,
		              lb_strerror(b->poisoned));
		goto done;
	}
	/* Foreign keys are checked even when ops had issues, so that the
	 * result holds every issue of the batch. */
	if ((rc = lb__fk_check(b)) < 0 && rc != LB_EVALIDATION)
		goto done;
	if (b->nissues_total) {
		rc = lb__fail(LB_EVALIDATION,
		              "batch rejected with %zu issue%s: nothing "
		              "written",
		              b->nissues_total,
		              b->nissues_total == 1 ? "" : "s");
		goto done;
	}
	if (b->records == 0) {
		rc = 0;
		goto done;
	}
	if ((rc = finish_grow(b, time_ns, NULL, hash)) < 0)
		goto done;
	committed(b, hash);
	if (res) {
		res->batch_id = b->id;
		res->records = b->records;
	}
done:
	if (res) {
		res->rc = rc;
		lb__batch_issues_to(b, res);
	}
	batch_free(b);
	return rc;
}

int lb_batch_commit(lb_batch *b, lb_result *res)
{
	if (res)
		memset(res, 0, sizeof *res);
	if (!b)
		return lb__fail(LB_EINVAL, "lb_batch_commit: batch is NULL");
	if (!pthread_equal(b->owner, pthread_self()))
		return lb__fail(LB_EINVAL,
		                "batch %llu committed from a thread that did "
		                "not begin it",
		                (unsigned long long)b->id);
	return lb__batch_commit_at(b, 0, res);
}

int lb__batch_commit_hdr(lb_batch *b, const lb_wal_hdr *h)
{
	uint8_t hash[32];
	int rc = chain_check(b, h);
	if (rc == 0 && (rc = finish_grow(b, 0, h, hash)) == 0)
		committed(b, hash);
	batch_free(b);
	return rc;
}

/* ---- chained headers (grouped replay) ------------------------------------ */

/* Settle what the batch undoes, write its header h, then move the batch
 * on to the next id. */
static int chain_step(lb_batch *b, const void *enc, size_t enclen,
                      const uint8_t hash[32])
{
	int rc;
	if ((rc = write_marks(b)) < 0)
		return poison(b, rc);
	if ((rc = put_header(b, enc, enclen)) < 0)
		return rc;
	memcpy(b->chain_hash, hash, 32);
	b->id++;
	b->undo_kind = 0;
	b->undoes = 0;
	b->nmarks = 0;
	b->records = b->raw_bytes = b->stored_bytes = 0;
	b->nseg = 0;
	b->seghashes.len = 0;
	return 0;
}

int lb__chain_redo(lb_batch *b, const uint8_t *marks, size_t nmarks,
                   const void *enc, size_t enclen, int kind)
{
	lb_wal_hdr h;
	int rc = lb__hdr_decode(enc, enclen, &h);
	if (rc < 0)
		return rc;
	b->nmarks = 0;
	b->undo_kind = kind;
	b->undoes = h.undoes;
	for (size_t i = 0; i < nmarks && rc == 0; i++)
		rc = lb__batch_mark(b, lb__get_be64(marks + 8 * i));
	if (rc == 0)
		rc = chain_step(b, enc, enclen, h.hash);
	lb__hdr_free(&h);
	return rc;
}

int lb__batch_chain_hdr(lb_batch *b, const lb_wal_hdr *h)
{
	lb_buf enc, mk;
	int rc = chain_check(b, h);
	if (rc < 0)
		return rc;
	lb__buf_init(&enc);
	lb__buf_init(&mk);
	if ((rc = lb__hdr_encode(h, &enc)) < 0)
		goto out;
	for (size_t i = 0; i < b->nmarks && rc == 0; i++)
		if ((rc = lb__buf_reserve(&mk, 8)) == 0) {
			lb__be64(mk.data + mk.len, b->marks[i]);
			mk.len += 8;
		}
	if (rc < 0)
		goto out;
	int kind = b->undo_kind;
	rc = chain_step(b, enc.data, enc.len, h->hash);
	while (rc == LB_EFULL && b->mapfull && (rc = lb__regrow(b)) == 0)
		rc = chain_step(b, enc.data, enc.len, h->hash);
	if (rc == 0)
		rc = lb__journal(b, LB__J_HDR, kind, 0, "", mk.data, mk.len,
		                 enc.data, enc.len, 1);
out:
	lb__buf_free(&enc);
	lb__buf_free(&mk);
	return rc;
}
