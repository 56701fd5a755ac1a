/* SPDX-License-Identifier: MIT */
/*
 * rollback.c: undoing committed batches (lb_rollback, lb_rollback_set,
 * lb_rollback_to).
 *
 * A rollback is one new batch whose records restore before-images. The
 * batch being undone is read from its own log: segments from last to first,
 * and each segment's records from last to first, so memory holds two
 * segments (plus one 4-byte offset per record of each) whatever the size
 * of the batch: the one being undone, and the one before it, which the
 * read-ahead thread checks and inflates meanwhile (readahead.c). The
 * records point into the reader's own copy of the segment, so the writes
 * of the rollback (which may move LMDB pages, and which add segments to
 * `_wal`) never disturb them.
 *
 * Undo modes, per batch undone:
 *  CHECK    strict: the first record met (in reverse) for a key carries the
 *           batch's final after-image of that key; if the key (in the
 *           transaction) holds anything else, that is a CONFLICT. Once a
 *           conflict is found nothing more is applied, but every key is
 *           still checked so that all conflicts are reported.
 *  FORCE    no check: every before-image is restored; the deletion of a
 *           key that is already absent writes nothing.
 *  CASCADE  the same restores, for every batch of a cascade: the cascade
 *           defines the result (docs/ROLLBACK.md), so keys are not
 *           checked; table states are, in every mode.
 *
 * lb_rollback_set undoes a set of batches in one new batch: each batch of
 * the set (and, with LB_CASCADE, of the cascade planned from each of them)
 * newest first, so that a newer batch of the set has put back what an older
 * one left before the older one is checked; a conflict names the last
 * changer outside the set.
 *
 * lb_rollback_to(X) does not undo record by record: it restores, for every
 * key and table changed after X, its value right after X (the before-image
 * of its first change after X), one record per key that differs. Undoing
 * every record would copy the records of earlier rollback_to batches into
 * each new one, and nested rollback_to batches would grow geometrically.
 * A rollback_to batch N to X' leaves the state exactly as after X', so the
 * batches X'+1..N are skipped when X' >= X.
 *
 * Finding conflicts never scans the log: the batch that last changed a key
 * is the head of its history (FORMAT.md §2.4: the writer of its value, or
 * `_gone`), and, when a set is undone, the walk down the history goes on
 * past the batches of the set (hist.c). Cascade planning also works from
 * the history (the batches after a given one that changed a key: the walk
 * stops there), from which batches stand (headers, and undo.c's notion of
 * who undoes whom, `_undo` and `_victims`) and from `_refs` (records that
 * reference a key the rollback removes); see docs/ROLLBACK.md for the
 * model it computes.
 *
 * A strict or cascading rollback writes a record for every record it
 * undoes (kind 1, b->implied; undo.c; FORMAT.md §2.5). A forced one may
 * skip a key (kind 2); lb_rollback_to writes one record per key that
 * differs (kind 3). Every record it writes is part of its key's history.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "wal/hset.h"

/* ---- rollback state ------------------------------------------------------ */

enum { UNDO_CHECK, UNDO_FORCE, UNDO_CASCADE };

typedef struct rb {
	lb_db *db;
	lb_batch *b;
	uint64_t target; /* the batch named by the caller */
	/* record offsets of the loaded segment */
	uint32_t *offs;
	size_t noffs, ocap;
	/* keys met in the batch being undone (CHECK, once a conflict is
	 * found: undo_data) and tables met */
	lb_hset seen;
	/* last table looked up by name */
	lb_table *tcache;
	char tcname[LB_TABLE_NAME_MAX + 1];
	uint64_t gen;     /* the batch's transaction (txn_gen) when
	                     last seen */
	MDB_cursor *refs; /* opened on first use, in txn */
	lb_segr hr;       /* reads batches of a key's history */
	size_t nconflicts;
	char first_conflict[256];
	/* cascade planning */
	lb_hset done;       /* ikey -> smallest "since" processed */
	lb_hset considered; /* batch ids already looked at */
	lb_hset hdrs;       /* batch id -> rolled_back_by, undoes */
	lb_hset mkeys;      /* ikeys met while collecting one batch's keys */
	lb_buf q;           /* queue: since u64 | tid u32 | klen u16 | key */
	uint64_t *S;        /* the later batches to undo first */
	size_t nS, Scap;
	uint64_t *ids; /* a key's history (expand), reused from key to key */
	size_t idcap;
	uint64_t collecting; /* batch whose keys are being collected */
	int collect_in_c;    /* ... and it is undone by the cascade */
	lb_buf vals;         /* rollback_to: values right after X */
	/* lb_rollback_set: the batches named, newest first (else NULL) */
	const uint64_t *set;
	size_t nset;
} rb;

/* After each write: growing the map (grow.c) replaces the transaction,
 * which closes its cursors and rebuilds the tables the batch created. */
static void after_write(rb *x)
{
	if (x->b->txn_gen != x->gen) {
		x->gen = x->b->txn_gen;
		x->refs = NULL;
		x->tcache = NULL;
	}
}

static void rb_free(rb *x)
{
	free(x->offs);
	lb__hset_free(&x->seen);
	lb__hset_free(&x->done);
	lb__hset_free(&x->considered);
	lb__hset_free(&x->hdrs);
	lb__hset_free(&x->mkeys);
	lb__buf_free(&x->q);
	lb__buf_free(&x->vals);
	free(x->S);
	free(x->ids);
	/* a transaction that ended closed its cursors itself */
	if (x->b->txn && x->b->txn_gen == x->gen && x->refs)
		mdb_cursor_close(x->refs);
	x->refs = NULL;
	lb__segr_free(&x->hr);
}

static void rb_init(rb *x, lb_db *db, lb_batch *b, uint64_t target)
{
	memset(x, 0, sizeof *x);
	x->db = db;
	x->b = b;
	x->target = target;
	x->gen = b->txn_gen;
	lb__buf_init(&x->vals);
	lb__hset_init(&x->seen);
	lb__hset_init(&x->done);
	lb__hset_init(&x->considered);
	lb__hset_init(&x->hdrs);
	lb__hset_init(&x->mkeys);
	lb__buf_init(&x->q);
	lb__segr_init(&x->hr);
}

/* The table named by a record, as the rollback batch sees it now. */
static lb_table *table_of(rb *x, const char *name, uint32_t len)
{
	if (len == 0 || len > LB_TABLE_NAME_MAX)
		return NULL;
	if (x->tcache && strlen(x->tcname) == len &&
	    memcmp(x->tcname, name, len) == 0)
		return x->tcache;
	memcpy(x->tcname, name, len);
	x->tcname[len] = 0;
	x->tcache = lb__batch_table(x->b, x->tcname);
	return x->tcache;
}

static int cursor(rb *x, MDB_dbi dbi, MDB_cursor **c, const char *what)
{
	after_write(x);
	if (*c)
		return 0;
	int mrc = mdb_cursor_open(x->b->txn, dbi, c);
	if (mrc) {
		*c = NULL;
		return lb__mdb_fail(mrc, what);
	}
	return 0;
}

/* Is id one of the batches lb_rollback_set() names (x->set, newest
 * first)? */
static int in_set(const rb *x, uint64_t id)
{
	size_t lo = 0, hi = x->nset;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (x->set[mid] == id)
			return 1;
		if (x->set[mid] > id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* The last committed batch that changed key of t (0 if none): the
 * rollback batch's own change, if any, is skipped. When a set is undone,
 * its own newer batches were undone first in this transaction, so the
 * culprit of a conflict is the last changer outside the set (if any). */
static int last_change(rb *x, const lb_table *t, const void *key, size_t klen,
                       uint64_t *out)
{
	after_write(x);
	return lb__hist_last(x->db, x->b->txn, x->b, t, key, klen, x->set,
	                     x->nset, &x->hr, out);
}

/* ---- undoing one record -------------------------------------------------- */

static int same_image(int present, const void *p, size_t n, int has,
                      const void *q, size_t m)
{
	if (present != has)
		return 0;
	return !present || (n == m && (n == 0 || memcmp(p, q, n) == 0));
}

/* Is key first met now in the batch being undone? */
static int first_time(rb *x, int kind, const char *table, size_t tlen,
                      const void *key, size_t klen, int *first)
{
	uint8_t id[1 + 1 + LB_TABLE_NAME_MAX + LB_KEY_MAX];
	lb_hent *e;
	id[0] = (uint8_t)kind;
	id[1] = (uint8_t)tlen;
	memcpy(id + 2, table, tlen);
	memcpy(id + 2 + tlen, key, klen);
	return lb__hset_get(&x->seen, id, 2 + tlen + klen, first, &e);
}

static void note_conflict(rb *x, const char *msg)
{
	if (x->nconflicts++ == 0)
		snprintf(x->first_conflict, sizeof x->first_conflict, "%s",
		         msg);
}

static int data_conflict(rb *x, lb_table *t, const lb_wal_rec *r, uint64_t id)
{
	uint64_t last;
	char kt[96], msg[256];
	int rc = last_change(x, t, r->key, r->klen, &last);
	if (rc < 0)
		return rc;
	lb__key_text(r->key, r->klen, kt, sizeof kt);
	if (last > id)
		snprintf(msg, sizeof msg,
		         "%s '%s' was changed by batch %llu after batch %llu",
		         t->name, kt, (unsigned long long)last,
		         (unsigned long long)id);
	else
		snprintf(msg, sizeof msg,
		         "%s '%s' no longer holds what batch %llu left there",
		         t->name, kt, (unsigned long long)id);
	lb__issue(x->b, LB_ISSUE_CONFLICT, t->name, r->key, r->klen, NULL, last,
	          "%s", msg);
	note_conflict(x, msg);
	return 0;
}

/* Does r's key still hold r's after-image? If not, the conflict is
 * reported, and a first conflict's key noted as met (undo_data). */
static int check_record(rb *x, lb_table *t, size_t tlen, const lb_wal_rec *r,
                        uint64_t id)
{
	MDB_val cur = {0, NULL};
	int found = lb__batch_seek(x->b, t, r->key, r->klen, &cur), first, rc;
	if (found < 0)
		return found;
	if (same_image(found, cur.mv_data, cur.mv_size, r->has_after, r->after,
	               r->alen))
		return 0;
	if (!x->nconflicts &&
	    (rc = first_time(x, 0, t->name, tlen, r->key, r->klen, &first)) < 0)
		return rc;
	return data_conflict(x, t, r, id);
}

static int undo_data(rb *x, uint64_t id, const lb_wal_rec *r, int mode)
{
	lb_batch *b = x->b;
	lb_table *t = table_of(x, r->table, r->tlen);
	int rc;
	if (!t)
		return lb__fail(LB_EINVAL,
		                "batch %llu changed table %.*s, which no "
		                "longer exists (its creation was rolled back)",
		                (unsigned long long)id, (int)r->tlen, r->table);
	/* A strict undo checks that each key still holds what the batch left
	 * there. Records are undone last first, so once a key's last record
	 * is undone, the key holds the after-image of its record before: only
	 * the last can disagree, and while nothing conflicts every record is
	 * checked (no need to know which is a key's last). After a conflict
	 * nothing more is undone, and only the first record met of each key
	 * is checked, so that a key is reported once. */
	if (mode == UNDO_CHECK) {
		size_t tlen = strlen(t->name);
		int check = 1;
		if (x->nconflicts &&
		    (rc = first_time(x, 0, t->name, tlen, r->key, r->klen,
		                     &check)) < 0)
			return rc;
		if (check && (rc = check_record(x, t, tlen, r, id)) < 0)
			return rc;
	}
	if (x->nconflicts)
		return 0;
	if (r->has_before)
		rc = lb__apply(b, t, LB__MODE_PUT, r->key, r->klen, r->before,
		               r->blen, LB__HOW_RESTORE);
	else
		rc = lb__apply(b, t, LB__MODE_DELETE, r->key, r->klen, NULL, 0,
		               LB__HOW_RESTORE);
	after_write(x);
	return rc;
}

/* Does a table other than `name`, as the batch sees it, reference it? */
static int referrer_of(rb *x, const char *name, char *out, size_t cap)
{
	lb_db *db = x->db;
	lb_batch *b = x->b;
	char(*names)[LB_TABLE_NAME_MAX + 1] = NULL;
	size_t n = 0, i;
	int found = 0;
	pthread_mutex_lock(&db->tlock);
	names = malloc((db->ntables + b->ntchanges + 1) * sizeof *names);
	if (names) {
		for (i = 0; i < db->ntables; i++)
			if (!db->tables[i]->dropped && db->tables[i]->nrefs)
				memcpy(names[n++], db->tables[i]->name,
				       sizeof names[0]);
	}
	pthread_mutex_unlock(&db->tlock);
	if (!names)
		return lb__fail(LB_ENOMEM, "rollback: out of memory");
	for (i = 0; i < b->ntchanges; i++)
		if (!b->tchanges[i].drop && b->tchanges[i].t->nrefs)
			memcpy(names[n++], b->tchanges[i].t->name,
			       sizeof names[0]);
	for (i = 0; i < n && !found; i++) {
		if (strcmp(names[i], name) == 0)
			continue;
		lb_table *t = lb__batch_table(b, names[i]);
		for (uint32_t j = 0; t && j < t->nrefs && !found; j++)
			if (strcmp(t->ref_table[j]->name, name) == 0) {
				snprintf(out, cap, "%s", t->name);
				found = 1;
			}
	}
	free(names);
	return found;
}

static int undo_table(rb *x, uint64_t id, const lb_wal_rec *r)
{
	lb_batch *b = x->b;
	char name[LB_TABLE_NAME_MAX + 1];
	int rc;
	if (r->tlen == 0 || r->tlen > LB_TABLE_NAME_MAX)
		return lb__fail(LB_ECORRUPT, "batch %llu: bad table record",
		                (unsigned long long)id);
	memcpy(name, r->table, r->tlen);
	name[r->tlen] = 0;
	x->tcache = NULL; /* the table list may change below */
	lb_table *t = lb__batch_table(b, name);
	int now_as_after = same_image(t != NULL, t ? t->encoded.data : NULL,
	                              t ? t->encoded.len : 0, r->has_after,
	                              r->after, r->alen);
	/* Every mode checks the table's state (force restores values, not
	 * table states: a table created or removed since is a conflict). */
	int check;
	if ((rc = first_time(x, 1, name, r->tlen, "", 0, &check)) < 0)
		return rc;
	if (check && !now_as_after) {
		char msg[256];
		snprintf(msg, sizeof msg,
		         "table %s was %s by a later batch than %llu", name,
		         t ? (r->has_after ? "changed" : "created again")
		           : "removed",
		         (unsigned long long)id);
		lb__issue(b, LB_ISSUE_CONFLICT, name, name, r->tlen, NULL, 0,
		          "%s", msg);
		note_conflict(x, msg);
		return 0;
	}
	if (x->nconflicts)
		return 0;
	if (r->has_before && r->has_after) { /* undo a schema change */
		rc = lb__alter_table(b, name, r->before, r->blen,
		                     LB__HOW_RESTORE);
		after_write(x);
		if (rc == LB_EVALIDATION)
			return lb__fail(
			        LB_EVALIDATION,
			        "batch %llu changed the schema of table "
			        "%s, and records written since do not "
			        "fit the schema before it; roll them "
			        "back first",
			        (unsigned long long)id, name);
		return rc;
	}
	if (r->has_before) { /* undo a removal: create it again */
		rc = lb__apply_table(b, name, r->before, r->blen, 0,
		                     LB__HOW_RESTORE);
		after_write(x);
		return rc;
	}
	/* undo a creation: remove the table, which must be empty and which
	 * no other table may reference */
	char other[LB_TABLE_NAME_MAX + 1];
	if ((rc = referrer_of(x, name, other, sizeof other)) < 0)
		return rc;
	if (rc)
		return lb__fail(LB_EINVAL,
		                "batch %llu created table %s, which table %s "
		                "references: it cannot be removed",
		                (unsigned long long)id, name, other);
	rc = lb__apply_table(b, name, NULL, 0, 1, LB__HOW_RESTORE);
	after_write(x);
	if (rc == LB_EINVAL)
		return lb__rewrap(rc,
		                  "batch %llu created table %s, which is not "
		                  "empty; roll back the batches that wrote "
		                  "into it first",
		                  (unsigned long long)id, name);
	return rc;
}

/* ---- undoing one batch, in reverse, one segment at a time ---------------- */

/* Segment s of the batch whose header is h into db->segr, with x->offs
 * where its records start: collected from the read-ahead worker when it
 * has it (ahead), else read here. */
static int load_segment(rb *x, const lb_wal_hdr *h, uint32_t s, int ahead)
{
	lb_db *db = x->db;
	int rc;
	if (ahead)
		return lb__ra_collect(db, &db->segr, &x->offs, &x->noffs,
		                      &x->ocap);
	if ((rc = lb__segment_load(db, x->b->txn, h, s, &db->segr, NULL)) < 0)
		return rc;
	return lb__segment_index(&db->segr, &x->offs, &x->noffs, &x->ocap);
}

static int record_at(rb *x, size_t i, lb_wal_rec *rec)
{
	return lb__segment_rec_at(&x->db->segr, x->offs[i], rec);
}

static int undo_batch(rb *x, uint64_t id, int mode)
{
	lb_wal_hdr h;
	int rc = lb__hdr_get(x->db, x->b->txn, id, &h);
	if (rc < 0)
		return rc;
	if (h.pruned) {
		lb__hdr_free(&h);
		return lb__fail(LB_EPRUNED,
		                "batch %llu: its log was pruned, so it cannot "
		                "be undone",
		                (unsigned long long)id);
	}
	lb__hset_clear(&x->seen);
	x->tcache = NULL;
	uint64_t seen = 0;
	int ahead = 0; /* segment s is with the read-ahead worker */
	for (uint32_t s = h.segments; s-- > 0 && rc == 0;) {
		int mine = !ahead;
		if (ahead && (rc = load_segment(x, &h, s, 1)) < 0)
			break;
		/* segment s - 1 is read on the worker's thread while s is
		 * loaded (the batch's last) and undone here */
		ahead = s > 0 && lb__ra_submit(x->db, x->db, x->b->txn, &h,
		                               s - 1, 1, NULL);
		if (mine && (rc = load_segment(x, &h, s, 0)) < 0)
			break;
		seen += x->noffs;
		for (size_t i = x->noffs; i-- > 0 && rc == 0;) {
			lb_wal_rec rec;
			if ((rc = record_at(x, i, &rec)) < 0)
				break;
			rc = rec.op == LB_OP_TABLE
			             ? undo_table(x, id, &rec)
			             : undo_data(x, id, &rec, mode);
		}
	}
	lb__ra_drain(x->db); /* a failure left one in flight */
	if (rc == 0)
		rc = lb__records_counted(id, seen, h.records);
	lb__hdr_free(&h);
	return rc;
}

/* ---- cascade planning ---------------------------------------------------- */

/* Batch id as the cascade sees it, cached: whether it stands now (St),
 * whether it is an undo batch, and whether its standing would change if
 * the target alone were undone (St', set by moved_batches). */
typedef struct bstate {
	int stands, undo, flips;
} bstate;

static int batch_state(rb *x, uint64_t id, bstate *out)
{
	uint8_t kb[8];
	lb_hent *e;
	int added, rc;
	lb__be64(kb, id);
	if ((rc = lb__hset_get(&x->hdrs, kb, 8, &added, &e)) < 0)
		return rc;
	if (added) {
		lb_wal_hdr h;
		lb_victims vs;
		if ((rc = lb__hdr_get(x->db, x->b->txn, id, &h)) < 0)
			return rc; /* a harmless entry: the caller fails */
		e->v[0] = h.rolled_back_by == 0;
		lb__hdr_free(&h);
		if ((rc = lb__victims_get(x->db, x->b->txn, id, &vs)) < 0)
			return rc;
		e->v[0] |= vs.kind ? 2 : 0;
	}
	out->stands = (e->v[0] & 1) != 0;
	out->undo = (e->v[0] & 2) != 0;
	out->flips = (e->v[0] & 4) != 0;
	return 0;
}

static int set_flips(rb *x, uint64_t id)
{
	uint8_t kb[8];
	lb_hent *e;
	int added;
	lb__be64(kb, id);
	int rc = lb__hset_get(&x->hdrs, kb, 8, &added, &e);
	if (rc == 0)
		e->v[0] |= 4;
	return rc;
}

/* lb__standing_of's view of St': a batch that flips stands in St' when it
 * does not stand in St; the target does not stand. */
static int stands_after(void *ctx, uint64_t k)
{
	rb *x = ctx;
	bstate st;
	if (k == x->target || in_set(x, k))
		return 0;
	if (batch_state(x, k, &st) < 0)
		return -1;
	return st.flips ? !st.stands : st.stands;
}

static int enqueue(rb *x, uint32_t tid, const void *key, size_t klen,
                   uint64_t since)
{
	uint8_t h[14];
	int rc;
	lb__be64(h, since);
	lb__be32(h + 8, tid);
	h[12] = (uint8_t)(klen >> 8);
	h[13] = (uint8_t)klen;
	if ((rc = lb__buf_append(&x->q, h, sizeof h)) < 0 ||
	    (rc = lb__buf_append(&x->q, key, klen)) < 0)
		return rc;
	return 0;
}

/* Queue the records that reference ikey (they hold references that the
 * rollback would leave dangling). */
static int enqueue_referrers(rb *x, const uint8_t *ik, size_t iklen,
                             uint64_t since)
{
	MDB_val k = {iklen, (void *)ik}, v;
	uint8_t key[LB_KEY_MAX];
	size_t klen;
	int rc, mrc;
	if ((rc = cursor(x, x->db->refs, &x->refs, "_refs")) < 0)
		return rc;
	for (mrc = mdb_cursor_get(x->refs, &k, &v, MDB_SET_KEY); mrc == 0;
	     mrc = mdb_cursor_get(x->refs, &k, &v, MDB_NEXT_DUP)) {
		if (v.mv_size < 4 || v.mv_size > LB__IKEY_MAX)
			return lb__fail(LB_ECORRUPT, "_refs: bad entry");
		uint32_t tid = lb__get_be32(v.mv_data) & ~LB__TID_HASHED;
		lb_table *t = lb__batch_table_by_tid(x->b, tid);
		if (!t)
			continue;
		/* a key too long for its ikey is looked for in its table
		 * (the cursor stays valid: nothing is written meanwhile) */
		if ((rc = lb__ikey_key(x->b->txn, t, v.mv_data, v.mv_size, key,
		                       &klen)) < 0)
			return rc;
		if (rc == 0)
			continue;
		if ((rc = enqueue(x, tid, key, klen, since)) < 0)
			return rc;
	}
	if (mrc != MDB_NOTFOUND)
		return lb__mdb_fail(mrc, "_refs");
	return 0;
}

/* Walk callback: queue every key the batch changed, with since = the
 * batch, and the referrers of every key it made exist. */
static int collect_cb(void *ctx, const lb_wal_rec *r)
{
	rb *x = ctx;
	uint8_t ik[LB__IKEY_MAX];
	lb_hent *e;
	int added, rc;
	if (r->op == LB_OP_TABLE) {
		x->tcache = NULL;
		return 0;
	}
	lb_table *t = table_of(x, r->table, r->tlen);
	if (!t)
		return 0; /* the undo reports it */
	size_t n = lb__ikey(ik, t->tid, r->key, r->klen);
	if (!n)
		return LB_ENOMEM;
	if ((rc = lb__hset_get(&x->mkeys, ik, n, &added, &e)) < 0)
		return rc;
	if (!added)
		return 0;
	if ((rc = enqueue(x, t->tid, r->key, r->klen, x->collecting)) < 0)
		return rc;
	/* the first record of the key has no before-image: undoing a batch
	 * of the cascade removes the key, so whatever references it must go
	 * too */
	if (x->collect_in_c && !r->has_before && t->referenced)
		return enqueue_referrers(x, ik, n, x->collecting);
	return 0;
}

/* Queue batch id's keys (since = id), and with in_c (id is undone by the
 * cascade) the referrers of the keys it created. */
static int collect(rb *x, uint64_t id, int in_c)
{
	lb__hset_clear(&x->mkeys);
	x->collecting = id;
	x->collect_in_c = in_c;
	x->tcache = NULL;
	int rc = lb__walk_batch(x->db, x->b->txn, id, &x->db->segr, collect_cb,
	                        x);
	x->tcache = NULL;
	return rc;
}

static int add_to_S(rb *x, uint64_t id)
{
	int rc = lb__grow(&x->S, &x->Scap, x->nS + 1, sizeof *x->S, 16);
	if (rc < 0)
		return rc;
	x->S[x->nS++] = id;
	return collect(x, id, 1);
}

/* lb__hist_walk's callback of expand: the batches after `since`. */
typedef struct ids_ctx {
	rb *x;
	size_t n;
} ids_ctx;

static int ids_cb(void *p, uint64_t id)
{
	ids_ctx *c = p;
	int rc = lb__grow(&c->x->ids, &c->x->idcap, c->n + 1, sizeof *c->x->ids,
	                  16);
	if (rc < 0)
		return rc;
	c->x->ids[c->n++] = id;
	return 0;
}

/* Consider the batches after `since` that changed key of table tid: those
 * that stand in St and St' and are ordinary join the cascade. */
static int expand(rb *x, uint32_t tid, const uint8_t *key, size_t klen,
                  uint64_t since)
{
	ids_ctx ic = {x, 0};
	int rc;
	lb_table *t = lb__batch_table_by_tid(x->b, tid);
	if (!t)
		return 0; /* removed: its keys have no history now */
	/* The list is collected first: collect() below walks other batches
	 * (and expands no key, so x->ids stays this key's). A pruned batch
	 * ends it (and fails the cascade when it joins). */
	after_write(x);
	rc = lb__hist_walk(x->db, x->b->txn, x->b, t, key, klen, since, &x->hr,
	                   ids_cb, &ic, NULL);
	for (size_t i = 0; i < ic.n && rc == 0; i++) {
		uint64_t L = x->ids[i];
		uint8_t lk[8];
		lb_hent *e;
		bstate st;
		int added;
		if (L <= since || L == x->target || in_set(x, L))
			continue;
		lb__be64(lk, L);
		if ((rc = lb__hset_get(&x->considered, lk, 8, &added, &e)) < 0)
			break;
		if (!added)
			continue;
		if ((rc = batch_state(x, L, &st)) < 0)
			break;
		if (st.undo || !st.stands || st.flips)
			continue;
		rc = add_to_S(x, L);
	}
	return rc;
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : (x > y ? -1 : 0);
}

/* The moved batches (docs/ROLLBACK.md, "LB_CASCADE"): undoing the target
 * alone, which batches would change standing? Followed down the chain of
 * undo batches as undo.c settles a commit, with St' kept in x->hdrs; the
 * keys of each ordinary batch that flips are queued. */
static int moved_batches(rb *x)
{
	lb_heap hp = {0};
	uint64_t *buf = NULL;
	size_t cap = 0;
	MDB_cursor *uc = NULL;
	lb_victims vs;
	bstate st;
	int rc = batch_state(x, x->target, &st), mrc;
	if (rc < 0)
		return rc;
	if (!st.undo)
		return collect(x, x->target, 1);
	if ((mrc = mdb_cursor_open(x->b->txn, x->db->undo, &uc)))
		return lb__mdb_fail(mrc, "_undo");
	if ((rc = lb__victims_get(x->db, x->b->txn, x->target, &vs)) == 0)
		rc = lb__heap_push_victims(&hp, &vs);
	/* newest first: a batch's standing depends only on later ones */
	uint64_t last = UINT64_MAX;
	while (rc == 0 && hp.n) {
		uint64_t id = lb__heap_pop(&hp), rbb;
		if (id == last)
			continue;
		last = id;
		if ((rc = batch_state(x, id, &st)) < 0 ||
		    (rc = lb__standing_of(x->db, x->b->txn, uc, id, 0,
		                          stands_after, x, &buf, &cap, &rbb)) <
		            0)
			break;
		if ((rbb == 0) == st.stands)
			continue; /* unchanged */
		if ((rc = set_flips(x, id)) < 0)
			break;
		if (!st.undo)
			rc = collect(x, id, 0);
		else if ((rc = lb__victims_get(x->db, x->b->txn, id, &vs)) == 0)
			rc = lb__heap_push_victims(&hp, &vs);
	}
	mdb_cursor_close(uc);
	free(hp.v);
	free(buf);
	return rc;
}

/* C, the batches the cascade undoes besides the target (docs/ROLLBACK.md,
 * "LB_CASCADE"), into x->S newest first. */
static int plan_cascade(rb *x)
{
	int rc;
	size_t qoff = 0;
	uint8_t tk[8];
	lb_hent *e;
	int added;
	lb__be64(tk, x->target);
	if ((rc = lb__hset_get(&x->considered, tk, 8, &added, &e)) < 0)
		return rc;
	if ((rc = moved_batches(x)) < 0)
		return rc;
	while (qoff < x->q.len) {
		uint8_t key[LB_KEY_MAX], ik[LB__IKEY_MAX];
		const uint8_t *p = x->q.data + qoff;
		uint64_t since = lb__get_be64(p);
		uint32_t tid = lb__get_be32(p + 8);
		size_t klen = ((size_t)p[12] << 8) | p[13];
		memcpy(key, p + 14, klen); /* q may move */
		qoff += 14 + klen;
		size_t n = lb__ikey(ik, tid, key, klen);
		if (!n)
			return LB_ENOMEM;
		if ((rc = lb__hset_get(&x->done, ik, n, &added, &e)) < 0)
			return rc;
		if (!added && e->v[0] <= since)
			continue;
		e->v[0] = since;
		if ((rc = expand(x, tid, key, klen, since)) < 0)
			return rc;
	}
	if (x->nS)
		qsort(x->S, x->nS, sizeof *x->S, cmp_desc);
	return 0;
}

/* ---- entry points -------------------------------------------------------- */

static int set_res_rc(lb_result *res, int rc)
{
	if (res)
		res->rc = rc;
	return rc;
}

/* End the rollback batch: abort on error, conflict or dry run; else commit.
 */
static int cmp_desc(const void *a, const void *b);

/* The batches b undoes, newest first (*list NULL when none). */
static int undone_list(const lb_batch *b, uint64_t **list, size_t *n)
{
	size_t cnt =
	        b->undo_kind == LB__UNDO_TO ? b->id - 1 - b->undoes : b->nmarks;
	*list = NULL;
	*n = 0;
	if (cnt == 0 || b->records == 0)
		return 0;
	uint64_t *v = malloc(cnt * sizeof *v);
	if (!v)
		return lb__fail(LB_ENOMEM, "rollback: out of memory");
	for (size_t i = 0; i < cnt; i++)
		v[i] = b->undo_kind == LB__UNDO_TO ? b->id - 1 - i
		                                   : b->marks[i];
	if (b->undo_kind != LB__UNDO_TO) {
		qsort(v, cnt, sizeof *v, cmp_desc);
		size_t k = 0;
		for (size_t i = 0; i < cnt; i++)
			if (k == 0 || v[k - 1] != v[i])
				v[k++] = v[i];
		cnt = k;
	}
	*list = v;
	*n = cnt;
	return 0;
}

static int finish(rb *x, int rc, int dry, lb_result *res)
{
	lb_batch *b = x->b;
	uint64_t *undone = NULL;
	size_t nundone = 0;
	uint64_t target = x->target;
	size_t nconf = x->nconflicts;
	char first[sizeof x->first_conflict];
	memcpy(first, x->first_conflict, sizeof first);
	size_t nset = x->nset;
	rb_free(x);
	if (rc == 0 && nconf)
		rc = lb__fail(
		        LB_ECONFLICT,
		        "rollback of %s %llu%s: %zu conflict%s (%s%s); "
		        "nothing written",
		        nset > 1 ? "a set of batches, the newest" : "batch",
		        (unsigned long long)target, "", nconf,
		        nconf == 1 ? "" : "s", first, nconf > 1 ? ", ..." : "");
	if (rc == 0 && b->poisoned)
		rc = lb__fail(b->poisoned, "rollback failed (%s)",
		              lb_strerror(b->poisoned));
	if (rc == 0 && dry) {
		if (b->nissues_total == 0 && (rc = lb__fk_check(b)) < 0 &&
		    rc != LB_EVALIDATION) {
			lb_batch_abort(b);
			return set_res_rc(res, rc);
		}
		rc = 0;
		if (b->nissues_total)
			rc = lb__fail(LB_EVALIDATION,
			              "rollback refused with %zu issue%s: "
			              "nothing would be written",
			              b->nissues_total,
			              b->nissues_total == 1 ? "" : "s");
		if (res && rc == 0)
			res->records = b->records;
	}
	if (rc == 0 && res && (rc = undone_list(b, &undone, &nundone)) < 0)
		rc = set_res_rc(res, rc);
	if (rc < 0 || dry) {
		if (res) {
			res->rc = rc;
			lb__batch_issues_to(b, res);
			if (rc == 0) {
				res->undone = undone;
				res->nundone = nundone;
				undone = NULL;
			}
		}
		free(undone);
		lb_batch_abort(b);
		return rc;
	}
	rc = lb__batch_commit_at(b, 0, res);
	if (rc == 0 && res && res->batch_id) {
		res->undone = undone;
		res->nundone = nundone;
		undone = NULL;
	}
	free(undone);
	if (rc == LB_EVALIDATION)
		rc = lb__rewrap(rc, "rollback refused");
	return rc;
}

/* One attempt at lb_rollback. listed: an undo batch of kind 2 rather than
 * 1 (FORMAT.md §2.5). *again: a cascade found a key to delete absent
 * already (a forced rollback left it so) and wrote no record for it, so
 * it is not of kind 1: nothing was written, try listed. */
static int rollback_once(lb_db *db, uint64_t id, unsigned flags, int listed,
                         lb_result *res, int *again)
{
	lb_batch *b;
	rb x;
	int rc;
	char label[64];
	snprintf(label, sizeof label, "rollback of batch %llu",
	         (unsigned long long)id);
	if ((rc = lb__batch_begin(db, label, &b)) < 0)
		return set_res_rc(res, rc);
	b->undoes = id;
	b->fk_mode = 1;
	/* A strict or cascading undo writes a record for every record of the
	 * batches it undoes (kind 1, FORMAT.md §2.5); a forced one may skip
	 * keys (kind 2, and so is a cascade that had to skip one). */
	b->implied = !(flags & LB_FORCE) && !listed;
	b->undo_kind = b->implied ? LB__UNDO_ROLLBACK : LB__UNDO_LISTED;
	rb_init(&x, db, b, id);

	if (id > db->last_id) {
		rc = lb__fail(LB_ENOTFOUND, "no batch %llu (the last is %llu)",
		              (unsigned long long)id,
		              (unsigned long long)db->last_id);
		return finish(&x, rc, 1, res);
	}
	lb_wal_hdr h;
	if ((rc = lb__hdr_get(db, b->txn, id, &h)) < 0)
		return finish(&x, rc, 1, res);
	uint64_t by = h.rolled_back_by;
	int pruned = h.pruned;
	lb__hdr_free(&h);
	if (by)
		rc = lb__fail(LB_EINVAL,
		              "batch %llu was already rolled back by batch "
		              "%llu",
		              (unsigned long long)id, (unsigned long long)by);
	else if (pruned)
		rc = lb__fail(LB_EPRUNED,
		              "batch %llu: its log was pruned, so it cannot be "
		              "rolled back",
		              (unsigned long long)id);
	if (rc == 0 && (flags & LB_CASCADE))
		rc = plan_cascade(&x);
	/* the rest of the cascade newest first, then the target last, so
	 * that every key it changed ends with its before-image */
	for (size_t i = 0; rc == 0 && i < x.nS && !x.nconflicts; i++) {
		if ((rc = undo_batch(&x, x.S[i], UNDO_CASCADE)) == 0)
			rc = lb__batch_mark(b, x.S[i]);
	}
	if (rc == 0 && !x.nconflicts) {
		int mode = (flags & LB_FORCE)     ? UNDO_FORCE
		           : (flags & LB_CASCADE) ? UNDO_CASCADE
		                                  : UNDO_CHECK;
		if ((rc = undo_batch(&x, id, mode)) == 0)
			rc = lb__batch_mark(b, id);
	}
	if (rc == 0 && !x.nconflicts && b->implied && b->skipped) {
		*again = 1;
		rb_free(&x);
		lb_batch_abort(b);
		return 0;
	}
	return finish(&x, rc, (flags & LB_DRYRUN) != 0, res);
}

int lb_rollback(lb_db *db, uint64_t id, unsigned flags, lb_result *res)
{
	if (res)
		memset(res, 0, sizeof *res);
	if (!db)
		return set_res_rc(
		        res, lb__fail(LB_EINVAL, "lb_rollback: db is NULL"));
	if (flags & ~(unsigned)(LB_CASCADE | LB_FORCE | LB_DRYRUN))
		return set_res_rc(res, lb__fail(LB_EINVAL,
		                                "lb_rollback: unknown flags "
		                                "0x%x",
		                                flags));
	if ((flags & LB_CASCADE) && (flags & LB_FORCE))
		return set_res_rc(
		        res, lb__fail(LB_EINVAL,
		                      "lb_rollback: LB_CASCADE and LB_FORCE "
		                      "exclude each other"));
	if (id == 0)
		return set_res_rc(res, lb__fail(LB_ENOTFOUND,
		                                "no batch 0: ids start at 1"));
	int again = 0;
	int rc = rollback_once(db, id, flags, 0, res, &again);
	if (again)
		rc = rollback_once(db, id, flags, 1, res, &again);
	return rc;
}

/* ---- lb_rollback_set: several batches in one new batch ------------------ */

/* The label of a set's rollback: "rollback of batches 9, 7, 5" while it
 * fits, else "rollback of N batches (A..B)". */
static void set_label(char *out, size_t cap, const uint64_t *ids, size_t n)
{
	size_t len = (size_t)snprintf(out, cap, "rollback of batch%s",
	                              n == 1 ? "" : "es");
	for (size_t i = n; i-- > 0 && len < cap;)
		len += (size_t)snprintf(out + len, cap - len, "%s %llu",
		                        i == n - 1 ? "" : ",",
		                        (unsigned long long)ids[i]);
	if (len >= cap)
		snprintf(out, cap, "rollback of %zu batches (%llu..%llu)", n,
		         (unsigned long long)ids[n - 1],
		         (unsigned long long)ids[0]);
}

/* Every batch of the set must exist, stand and have its log. */
static int set_check(lb_db *db, lb_batch *b, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		lb_wal_hdr h;
		int rc;
		if (ids[i] > db->last_id)
			return lb__fail(LB_ENOTFOUND,
			                "no batch %llu (the last is %llu)",
			                (unsigned long long)ids[i],
			                (unsigned long long)db->last_id);
		if ((rc = lb__hdr_get(db, b->txn, ids[i], &h)) < 0)
			return rc;
		uint64_t by = h.rolled_back_by;
		int pruned = h.pruned;
		lb__hdr_free(&h);
		if (by)
			return lb__fail(LB_EINVAL,
			                "batch %llu was already rolled back by "
			                "batch %llu",
			                (unsigned long long)ids[i],
			                (unsigned long long)by);
		if (pruned)
			return lb__fail(LB_EPRUNED,
			                "batch %llu: its log was pruned, so it "
			                "cannot be rolled back",
			                (unsigned long long)ids[i]);
	}
	return 0;
}

/* With LB_CASCADE: the later standing batches that the set's batches
 * carry (docs/ROLLBACK.md, "LB_CASCADE"), planned from each batch of the
 * set in turn with the shared state (a batch or key met once is not met
 * again); the set's own batches never join x->S. */
static int plan_set(rb *x)
{
	int rc = 0;
	for (size_t i = 0; i < x->nset && rc == 0; i++) {
		uint8_t k[8];
		lb_hent *e;
		int added;
		lb__be64(k, x->set[i]);
		rc = lb__hset_get(&x->considered, k, 8, &added, &e);
	}
	for (size_t i = 0; i < x->nset && rc == 0; i++) {
		x->target = x->set[i];
		rc = plan_cascade(x);
	}
	x->target = x->set[0];
	return rc;
}

/* Undo the set and (cascade) x->S, newest first, marking each. */
static int undo_set(rb *x, unsigned flags)
{
	int mode = (flags & LB_FORCE)     ? UNDO_FORCE
	           : (flags & LB_CASCADE) ? UNDO_CASCADE
	                                  : UNDO_CHECK;
	size_t i = 0, j = 0;
	int rc = 0;
	while (rc == 0 && !x->nconflicts && (i < x->nset || j < x->nS)) {
		uint64_t id;
		int m;
		if (j == x->nS || (i < x->nset && x->set[i] > x->S[j])) {
			id = x->set[i++];
			m = mode;
		} else {
			id = x->S[j++];
			m = UNDO_CASCADE;
		}
		if ((rc = undo_batch(x, id, m)) == 0)
			rc = lb__batch_mark(x->b, id);
	}
	return rc;
}

/* One attempt at lb_rollback_set (ids: newest first, distinct); listed
 * and *again as for rollback_once(). */
static int rollback_set_once(lb_db *db, const uint64_t *ids, size_t n,
                             unsigned flags, int listed, lb_result *res,
                             int *again)
{
	lb_batch *b;
	rb x;
	int rc;
	char label[LB_LABEL_MAX + 1];
	set_label(label, sizeof label, ids, n);
	if ((rc = lb__batch_begin(db, label, &b)) < 0)
		return set_res_rc(res, rc);
	b->undoes = ids[0];
	b->fk_mode = 1;
	b->implied = !(flags & LB_FORCE) && !listed;
	b->undo_kind = b->implied ? LB__UNDO_ROLLBACK : LB__UNDO_LISTED;
	rb_init(&x, db, b, ids[0]);
	x.set = ids;
	x.nset = n;
	rc = set_check(db, b, ids, n);
	if (rc == 0 && (flags & LB_CASCADE))
		rc = plan_set(&x);
	if (rc == 0)
		rc = undo_set(&x, flags);
	if (rc == 0 && !x.nconflicts && b->implied && b->skipped) {
		*again = 1;
		rb_free(&x);
		lb_batch_abort(b);
		return 0;
	}
	return finish(&x, rc, (flags & LB_DRYRUN) != 0, res);
}

int lb_rollback_set(lb_db *db, const uint64_t *ids, size_t n, unsigned flags,
                    lb_result *res)
{
	uint64_t *v;
	size_t k = 0;
	int rc, again = 0;
	if (res)
		memset(res, 0, sizeof *res);
	if (!db)
		return set_res_rc(res, lb__fail(LB_EINVAL,
		                                "lb_rollback_set: db is NULL"));
	if (!ids || n == 0)
		return set_res_rc(res, lb__fail(LB_EINVAL,
		                                "lb_rollback_set: no batch "
		                                "given"));
	if (flags & ~(unsigned)(LB_CASCADE | LB_FORCE | LB_DRYRUN))
		return set_res_rc(res, lb__fail(LB_EINVAL,
		                                "lb_rollback_set: unknown "
		                                "flags 0x%x",
		                                flags));
	if ((flags & LB_CASCADE) && (flags & LB_FORCE))
		return set_res_rc(
		        res,
		        lb__fail(LB_EINVAL,
		                 "lb_rollback_set: LB_CASCADE and LB_FORCE "
		                 "exclude each other"));
	if (n > SIZE_MAX / sizeof *v || !(v = malloc(n * sizeof *v)))
		return set_res_rc(
		        res, lb__fail(LB_ENOMEM, "rollback: out of memory"));
	memcpy(v, ids, n * sizeof *v);
	qsort(v, n, sizeof *v, cmp_desc);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || v[k - 1] != v[i])
			v[k++] = v[i];
	if (v[k - 1] == 0) {
		free(v);
		return set_res_rc(res, lb__fail(LB_ENOTFOUND,
		                                "no batch 0: ids start at 1"));
	}
	rc = rollback_set_once(db, v, k, flags, 0, res, &again);
	if (again)
		rc = rollback_set_once(db, v, k, flags, 1, res, &again);
	free(v);
	return rc;
}

/* ---- rollback_to: the net change back to the state right after X ------- */

/* Record callback: remember each key's and table's first before-image. */
static int net_cb(void *ctx, const lb_wal_rec *r)
{
	rb *x = ctx;
	uint8_t id[2 + LB_TABLE_NAME_MAX + LB_KEY_MAX];
	int table = r->op == LB_OP_TABLE, added, rc;
	lb_hent *e;
	if (r->tlen == 0 || r->tlen > LB_TABLE_NAME_MAX)
		return lb__fail(LB_ECORRUPT, "bad table name in the log");
	id[0] = (uint8_t)table;
	id[1] = (uint8_t)r->tlen;
	memcpy(id + 2, r->table, r->tlen);
	size_t n = 2 + r->tlen;
	if (!table) {
		memcpy(id + n, r->key, r->klen);
		n += r->klen;
	}
	if (table && r->has_before != r->has_after) {
		/* created or removed after X (not only its schema changed):
		 * it is made again, not changed in place */
		lb_hent *te;
		int tadded;
		if ((rc = lb__hset_get(&x->mkeys, id, n, &tadded, &te)) < 0)
			return rc;
	}
	if ((rc = lb__hset_get(&x->seen, id, n, &added, &e)) < 0)
		return rc;
	if (!added)
		return 0;
	if (r->has_before) {
		size_t off = x->vals.len;
		if ((rc = lb__buf_append(&x->vals, r->before, r->blen)) < 0)
			return rc;
		e->v[0] = off + 1;
		e->v[1] = r->blen;
	}
	return 0;
}

/* One remembered key or table, read back from the set's arena. */
typedef struct netent {
	int table;
	char name[LB_TABLE_NAME_MAX + 1];
	const uint8_t *key;
	size_t klen;
	int present; /* its value right after X */
	const uint8_t *val;
	size_t vlen;
} netent;

static size_t net_next(const rb *x, size_t off, netent *ne)
{
	const lb_hent *e = lb__hset_at(&x->seen, off);
	const uint8_t *id = lb__hent_key(e);
	ne->table = id[0];
	memcpy(ne->name, id + 2, id[1]);
	ne->name[id[1]] = 0;
	ne->key = id + 2 + id[1];
	ne->klen = e->len - 2 - id[1];
	ne->present = e->v[0] != 0;
	/* an empty value stored first may sit in a buffer never allocated */
	ne->val = !ne->present ? NULL
	          : e->v[1]    ? x->vals.data + e->v[0] - 1
	                       : (const uint8_t *)"";
	ne->vlen = (size_t)e->v[1];
	return lb__hset_next(&x->seen, off);
}

/* Can a table with this schema be created now (the tables it references
 * exist)? */
static int refs_ready(rb *x, const char *name, const void *enc, size_t n)
{
	lb_wal_schema s;
	int ok = 1;
	if (lb__schema_decode(enc, n, &s) < 0)
		return 1; /* let the creation report it */
	for (uint32_t i = 0; i < s.nfields && ok; i++)
		if (s.fields[i].ref && strcmp(s.fields[i].ref, name) != 0)
			ok = lb__table_find(x->db, s.fields[i].ref) != NULL;
	lb__schema_free(&s);
	return ok;
}

/* A table changed after X: its schema right after X, and whether it must
 * be removed (it did not exist then, or it was made again since with
 * another schema) or created. */
typedef struct nettab {
	netent e;
	int drop, create, alter;
} nettab;

static int net_tables(rb *x, nettab **out, size_t *n)
{
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	for (size_t off = 0; off < x->seen.arena.len;) {
		netent ne;
		off = net_next(x, off, &ne);
		if (!ne.table)
			continue;
		int grc = lb__grow(out, &cap, *n + 1, sizeof **out, 8);
		if (grc < 0)
			return grc;
		nettab *tt = &(*out)[(*n)++];
		lb_table *t = lb__batch_table(x->b, ne.name);
		uint8_t id[2 + LB_TABLE_NAME_MAX];
		size_t idn = 2 + strlen(ne.name);
		lb_hent *te;
		int fresh, rc;
		id[0] = 1;
		id[1] = (uint8_t)strlen(ne.name);
		memcpy(id + 2, ne.name, id[1]);
		/* look up without adding: the set only grows, so a miss adds
		 * an entry that nothing reads */
		if ((rc = lb__hset_get(&x->mkeys, id, idn, &fresh, &te)) < 0)
			return rc;
		tt->e = ne;
		tt->alter = 0;
		tt->drop = t && !same_image(1, t->encoded.data, t->encoded.len,
		                            ne.present, ne.val, ne.vlen);
		if (tt->drop && ne.present && fresh) {
			/* only its schema changed since X: change it back in
			 * place, its records stay */
			tt->drop = 0;
			tt->alter = 1;
		}
		tt->create = ne.present && (!t || tt->drop);
	}
	return 0;
}

static int net_drops(const nettab *tt, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (tt[i].drop && strcmp(tt[i].e.name, name) == 0)
			return 1;
	return 0;
}

/* The remembered keys (not tables), in table name then key order (the
 * order of lb_rollback_to's deletions and puts): their arena offsets. */
static _Thread_local const rb *sort_x;

static int cmp_net(const void *a, const void *b)
{
	netent x, y;
	net_next(sort_x, *(const size_t *)a, &x);
	net_next(sort_x, *(const size_t *)b, &y);
	int c = strcmp(x.name, y.name);
	if (c)
		return c;
	size_t n = x.klen < y.klen ? x.klen : y.klen;
	c = n ? memcmp(x.key, y.key, n) : 0;
	return c ? c : (x.klen > y.klen) - (x.klen < y.klen);
}

static int net_sorted(const rb *x, size_t **out, size_t *n)
{
	size_t cap = 0;
	netent ne;
	*out = NULL;
	*n = 0;
	for (size_t off = 0, next; off < x->seen.arena.len; off = next) {
		next = net_next(x, off, &ne);
		if (ne.table)
			continue;
		int rc = lb__grow(out, &cap, *n + 1, sizeof **out, 64);
		if (rc < 0)
			return rc;
		(*out)[(*n)++] = off;
	}
	/* qsort's comparator has no context argument: the rollback holds
	 * the writer lock, so one rollback sorts at a time per handle; the
	 * pointer is per thread for the handles of other threads */
	sort_x = x;
	if (*n > 1)
		qsort(*out, *n, sizeof **out, cmp_net);
	return 0;
}

/* Bring every remembered key and table to its value right after X:
 * deletions first (with every key of a table to be removed), then table
 * removals (referring tables first), creations (referenced tables first),
 * then the values to put. Foreign keys are checked at commit. */
static int net_apply(rb *x)
{
	lb_batch *b = x->b;
	nettab *tt = NULL;
	size_t ntt = 0, i, *offs = NULL, noffs = 0;
	netent ne;
	int rc = net_tables(x, &tt, &ntt);
	if (rc == 0)
		rc = net_sorted(x, &offs, &noffs);
	for (i = 0; i < noffs && rc == 0; i++) {
		net_next(x, offs[i], &ne);
		if (ne.present && !net_drops(tt, ntt, ne.name))
			continue;
		lb_table *t = table_of(x, ne.name, (uint32_t)strlen(ne.name));
		if (!t)
			continue;
		MDB_val cur;
		int found = lb__batch_seek(b, t, ne.key, ne.klen, &cur);
		if (found == 0)
			continue;
		if (found < 0) {
			rc = found;
			break;
		}
		rc = lb__apply(b, t, LB__MODE_DELETE, ne.key, ne.klen, NULL, 0,
		               LB__HOW_RESTORE);
		after_write(x);
	}
	for (int left = 1; left && rc == 0;) {
		int done = 0;
		left = 0;
		for (i = 0; i < ntt && rc == 0; i++) {
			char other[LB_TABLE_NAME_MAX + 1];
			if (!tt[i].drop || !lb__batch_table(b, tt[i].e.name))
				continue;
			if ((rc = referrer_of(x, tt[i].e.name, other,
			                      sizeof other)) < 0)
				break;
			if (rc) {
				rc = 0;
				left++;
				continue;
			}
			rc = lb__apply_table(b, tt[i].e.name, NULL, 0, 1,
			                     LB__HOW_RESTORE);
			after_write(x);
			x->tcache = NULL;
			done++;
		}
		if (rc == 0 && left && !done)
			rc = lb__fail(LB_EINVAL,
			              "rollback_to: tables that reference each "
			              "other cannot be removed");
	}
	for (int left = 1; left && rc == 0;) {
		int done = 0;
		left = 0;
		for (i = 0; i < ntt && rc == 0; i++) {
			if (!tt[i].create || lb__batch_table(b, tt[i].e.name))
				continue;
			if (!refs_ready(x, tt[i].e.name, tt[i].e.val,
			                tt[i].e.vlen)) {
				left++;
				continue;
			}
			rc = lb__apply_table(b, tt[i].e.name, tt[i].e.val,
			                     tt[i].e.vlen, 0, LB__HOW_RESTORE);
			after_write(x);
			x->tcache = NULL;
			done++;
		}
		if (rc == 0 && left && !done)
			rc = lb__fail(LB_EINVAL,
			              "rollback_to: a table to create again "
			              "references another one created again; "
			              "roll back in two steps");
	}
	for (i = 0; i < noffs && rc == 0; i++) {
		net_next(x, offs[i], &ne);
		if (!ne.present)
			continue;
		lb_table *t = table_of(x, ne.name, (uint32_t)strlen(ne.name));
		if (!t) {
			rc = lb__fail(LB_ECORRUPT,
			              "rollback_to: table %s is missing",
			              ne.name);
			break;
		}
		MDB_val cur = {0, NULL};
		int found = lb__batch_seek(b, t, ne.key, ne.klen, &cur);
		if (found < 0) {
			rc = found;
			break;
		}
		if (same_image(found, cur.mv_data, cur.mv_size, 1, ne.val,
		               ne.vlen))
			continue;
		rc = lb__apply(b, t, LB__MODE_PUT, ne.key, ne.klen, ne.val,
		               ne.vlen, LB__HOW_RESTORE);
		after_write(x);
	}
	free(offs);
	/* schemas back, once the records are (they fitted then) */
	for (i = 0; i < ntt && rc == 0; i++) {
		if (!tt[i].alter)
			continue;
		rc = lb__alter_table(b, tt[i].e.name, tt[i].e.val, tt[i].e.vlen,
		                     LB__HOW_RESTORE);
		after_write(x);
		x->tcache = NULL;
	}
	free(tt);
	return rc;
}

int lb_rollback_to(lb_db *db, uint64_t id, lb_result *res)
{
	return lb_rollback_to_ex(db, id, 0, res);
}

int lb_rollback_to_ex(lb_db *db, uint64_t id, unsigned flags, lb_result *res)
{
	lb_batch *b;
	rb x;
	int rc;
	char label[64];
	uint64_t *walk = NULL;
	size_t nwalk = 0;
	if (res)
		memset(res, 0, sizeof *res);
	if (!db)
		return set_res_rc(
		        res, lb__fail(LB_EINVAL, "lb_rollback_to: db is NULL"));
	if (flags & ~(unsigned)LB_DRYRUN)
		return set_res_rc(res, lb__fail(LB_EINVAL,
		                                "lb_rollback_to: unknown flags "
		                                "0x%x",
		                                flags));
	snprintf(label, sizeof label, "rollback to batch %llu",
	         (unsigned long long)id);
	if ((rc = lb__batch_begin(db, label, &b)) < 0)
		return set_res_rc(res, rc);
	b->undoes = id;
	b->fk_mode = 1;
	/* it undoes every batch after id (undo.c marks them at commit) */
	b->undo_kind = LB__UNDO_TO;
	rb_init(&x, db, b, id);
	uint64_t last = db->last_id;
	if (id > last) {
		rc = lb__fail(LB_ENOTFOUND, "no batch %llu (the last is %llu)",
		              (unsigned long long)id, (unsigned long long)last);
		return finish(&x, rc, 1, res);
	}
	if (id == last) /* nothing after it: nothing to do */
		return finish(&x, 0, 1, res);
	/* Refuse before writing anything if any log is gone. */
	for (uint64_t L = id + 1; L <= last && rc == 0; L++) {
		lb_wal_hdr h;
		if ((rc = lb__hdr_get(db, b->txn, L, &h)) < 0)
			break;
		if (h.pruned)
			rc = lb__fail(LB_EPRUNED,
			              "batch %llu: its log was pruned, so the "
			              "database cannot go back to batch %llu",
			              (unsigned long long)L,
			              (unsigned long long)id);
		lb__hdr_free(&h);
	}
	/* The batches to read, newest first: a rollback_to batch N to
	 * X' >= id left the state as after X', so X'+1..N are skipped. */
	for (uint64_t L = last; L > id && rc == 0;) {
		lb_victims vs;
		if ((rc = lb__victims_get(db, b->txn, L, &vs)) < 0)
			break;
		if (vs.kind == LB__UNDO_TO && vs.lo - 1 >= id) {
			L = vs.lo - 1;
			continue;
		}
		if (nwalk % 64 == 0) {
			uint64_t *nw = realloc(walk, (nwalk + 64) * sizeof *nw);
			if (!nw) {
				rc = lb__fail(LB_ENOMEM,
				              "rollback: out of memory");
				break;
			}
			walk = nw;
		}
		walk[nwalk++] = L--;
	}
	/* oldest first: the first change after id of each key holds, as its
	 * before-image, the key's value right after id */
	for (size_t i = nwalk; i-- > 0 && rc == 0;) {
		x.tcache = NULL;
		rc = lb__walk_batch(db, b->txn, walk[i], &db->segr, net_cb, &x);
	}
	free(walk);
	x.tcache = NULL;
	if (rc == 0)
		rc = net_apply(&x);
	return finish(&x, rc, (flags & LB_DRYRUN) != 0, res);
}
