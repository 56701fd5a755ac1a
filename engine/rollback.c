/* SPDX-License-Identifier: MIT */
/*
 * rollback.c: undoing committed batches (lb_rollback, lb_rollback_to).
 *
 * A rollback is one new batch whose records restore before-images. The
 * batch being undone is read from its own log: segments from last to first,
 * and each segment's records from last to first, so memory holds one
 * segment (plus one 4-byte offset per record of it) whatever the size of
 * the batch. The records point into the reader's own copy of the segment,
 * so the writes of the rollback (which may move LMDB pages, and which add
 * segments to `_wal`) never disturb them.
 *
 * Undo modes, per batch undone:
 *  CHECK  strict: the first record met (in reverse) for a key carries the
 *         batch's final after-image of that key; if the key (in the
 *         transaction) holds anything else, that is a CONFLICT. Once a
 *         conflict is found nothing more is applied, but every key is still
 *         checked so that all conflicts are reported.
 *  FORCE  no check: every before-image is restored; the deletion of a key
 *         that is already absent writes nothing.
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
 * is the last of its history (`_hist` closed under `_implied`,
 * lb__hist_ids). Cascade planning also works from the history (later
 * batches that changed a key) and `_refs` (records that reference a key the
 * rollback removes); see docs/ROLLBACK.md for the rule.
 *
 * A strict or cascading rollback adds nothing to `_hist`: it writes a
 * record for every record it undoes, so the keys it changed are those of
 * the batches it marks, and its commit maps each of them to it in
 * `_implied` (b->implied; FORMAT.md §2.5). A forced one may skip a key and
 * lists its own; so does lb_rollback_to.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

/* ---- a hash set of byte strings, each with two u64 values ---------------- *
 * Entries live in one arena (no allocation per entry); slots hold arena
 * offsets + 1 (0 = empty). Open addressing, linear probing, load <= 1/2. */

typedef struct bent {
	uint64_t v[2];
	uint32_t hash, len;
	/* len bytes follow, then padding to 8 */
} bent;

typedef struct bset {
	lb_buf arena;
	size_t *slot;
	size_t cap, n;
} bset;

static uint32_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *s = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

static void bset_init(bset *s)
{
	memset(s, 0, sizeof *s);
	lb__buf_init(&s->arena);
}

static void bset_free(bset *s)
{
	lb__buf_free(&s->arena);
	free(s->slot);
	memset(s, 0, sizeof *s);
}

static void bset_clear(bset *s)
{
	s->arena.len = 0;
	s->n = 0;
	if (s->slot)
		memset(s->slot, 0, s->cap * sizeof *s->slot);
}

static bent *bset_at(const bset *s, size_t off)
{
	return (bent *)(void *)(s->arena.data + off);
}

static int bset_grow(bset *s)
{
	size_t nc = s->cap ? s->cap * 2 : 64;
	size_t *ns = calloc(nc, sizeof *ns);
	if (!ns)
		return lb__fail(LB_ENOMEM, "rollback: out of memory");
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->slot[i])
			continue;
		size_t j = bset_at(s, s->slot[i] - 1)->hash & (nc - 1);
		while (ns[j])
			j = (j + 1) & (nc - 1);
		ns[j] = s->slot[i];
	}
	free(s->slot);
	s->slot = ns;
	s->cap = nc;
	return 0;
}

/* Find p/n, adding it (values 0) if absent. *e points into the arena: valid
 * until the next add. */
static int bset_get(bset *s, const void *p, size_t n, int *added, bent **e)
{
	uint32_t h = hash_bytes(p, n);
	int rc;
	if ((s->n + 1) * 2 > s->cap && (rc = bset_grow(s)) < 0)
		return rc;
	size_t j = h & (s->cap - 1);
	while (s->slot[j]) {
		bent *x = bset_at(s, s->slot[j] - 1);
		if (x->hash == h && x->len == n &&
		    memcmp((const uint8_t *)(x + 1), p, n) == 0) {
			*added = 0;
			*e = x;
			return 0;
		}
		j = (j + 1) & (s->cap - 1);
	}
	size_t need = (sizeof(bent) + n + 7) & ~(size_t)7;
	if ((rc = lb__buf_reserve(&s->arena, need)) < 0)
		return rc;
	size_t off = s->arena.len;
	bent *x = bset_at(s, off);
	x->v[0] = x->v[1] = 0;
	x->hash = h;
	x->len = (uint32_t)n;
	if (n)
		memcpy((uint8_t *)(x + 1), p, n);
	s->arena.len += need;
	s->slot[j] = off + 1;
	s->n++;
	*added = 1;
	*e = x;
	return 0;
}

/* ---- rollback state ------------------------------------------------------ */

enum { UNDO_CHECK, UNDO_FORCE };

typedef struct rb {
	lb_db *db;
	lb_batch *b;
	uint64_t target; /* the batch named by the caller */
	/* record offsets of the loaded segment */
	uint32_t *offs;
	size_t noffs, ocap;
	bset seen; /* keys met in the batch being undone (CHECK) */
	/* last table looked up by name */
	lb_table *tcache;
	char tcname[LB_TABLE_NAME_MAX + 1];
	uint64_t gen;            /* the batch's transaction (txn_gen) when
	                            last seen */
	MDB_cursor *hist, *refs; /* opened on first use, in txn */
	size_t nconflicts;
	char first_conflict[256];
	/* cascade planning */
	bset done;       /* ikey -> smallest "since" processed */
	bset considered; /* batch ids already looked at */
	bset hdrs;       /* batch id -> rolled_back_by, undoes */
	bset mkeys;      /* ikeys met while collecting one batch's keys */
	lb_buf q;        /* queue: since u64 | iklen u16 | ikey */
	uint64_t *S;     /* the later batches to undo first */
	size_t nS, Scap;
	uint64_t *ids; /* a key's history (expand), reused from key to key */
	size_t idcap;
	uint64_t collecting; /* batch whose keys are being collected */
	lb_buf vals;         /* rollback_to: values right after X */
} rb;

/* After each write: growing the map (grow.c) replaces the transaction,
 * which closes its cursors and rebuilds the tables the batch created. */
static void after_write(rb *x)
{
	if (x->b->txn_gen != x->gen) {
		x->gen = x->b->txn_gen;
		x->hist = x->refs = NULL;
		x->tcache = NULL;
	}
}

static void rb_free(rb *x)
{
	free(x->offs);
	bset_free(&x->seen);
	bset_free(&x->done);
	bset_free(&x->considered);
	bset_free(&x->hdrs);
	bset_free(&x->mkeys);
	lb__buf_free(&x->q);
	lb__buf_free(&x->vals);
	free(x->S);
	free(x->ids);
	/* a transaction that ended closed its cursors itself */
	if (x->b->txn && x->b->txn_gen == x->gen) {
		if (x->hist)
			mdb_cursor_close(x->hist);
		if (x->refs)
			mdb_cursor_close(x->refs);
	}
	x->hist = x->refs = NULL;
}

static void rb_init(rb *x, lb_db *db, lb_batch *b, uint64_t target)
{
	memset(x, 0, sizeof *x);
	x->db = db;
	x->b = b;
	x->target = target;
	x->gen = b->txn_gen;
	lb__buf_init(&x->vals);
	bset_init(&x->seen);
	bset_init(&x->done);
	bset_init(&x->considered);
	bset_init(&x->hdrs);
	bset_init(&x->mkeys);
	lb__buf_init(&x->q);
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

/* The last committed batch that changed ikey (0 if none): the rollback
 * batch's own entry, if any, is skipped. */
static int last_change(rb *x, const uint8_t *ik, size_t iklen, uint64_t *out)
{
	int rc = cursor(x, x->db->hist, &x->hist, "_hist");
	if (rc < 0)
		return rc;
	return lb__hist_last(x->db, x->b->txn, x->hist, ik, iklen, x->b->id,
	                     out);
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
	bent *e;
	id[0] = (uint8_t)kind;
	id[1] = (uint8_t)tlen;
	memcpy(id + 2, table, tlen);
	memcpy(id + 2 + tlen, key, klen);
	return bset_get(&x->seen, id, 2 + tlen + klen, first, &e);
}

static void note_conflict(rb *x, const char *msg)
{
	if (x->nconflicts++ == 0)
		snprintf(x->first_conflict, sizeof x->first_conflict, "%s",
		         msg);
}

static int data_conflict(rb *x, lb_table *t, const lb_wal_rec *r, uint64_t id)
{
	uint8_t ik[LB__IKEY_MAX];
	uint64_t last;
	char kt[96], msg[256];
	int rc = last_change(x, ik, lb__ikey(ik, t->tid, r->key, r->klen),
	                     &last);
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
	int check = 0;
	if (mode == UNDO_CHECK) {
		if ((rc = first_time(x, 0, t->name, strlen(t->name), r->key,
		                     r->klen, &check)) < 0)
			return rc;
	}
	if (check) {
		MDB_val cur = {0, NULL};
		int found = lb__batch_seek(b, t, r->key, r->klen, &cur);
		if (found < 0)
			return found;
		if (!same_image(found, cur.mv_data, cur.mv_size, r->has_after,
		                r->after, r->alen))
			return data_conflict(x, t, r, id);
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

static int load_segment(rb *x, uint64_t id, const lb_wal_hdr *h, uint32_t s)
{
	lb_db *db = x->db;
	uint8_t kb[12], sha[32];
	lb__be64(kb, id);
	lb__be32(kb + 8, s);
	MDB_val k = {12, kb}, v;
	int rc, mrc = mdb_get(x->b->txn, db->wal, &k, &v);
	if (mrc == MDB_NOTFOUND)
		return lb__fail(LB_ECORRUPT,
		                "batch %llu: segment %u is missing",
		                (unsigned long long)id, s);
	if (mrc)
		return lb__mdb_fail(mrc, "_wal");
	if ((rc = lb__sha256(v.mv_data, v.mv_size, sha)) < 0)
		return rc;
	if (memcmp(sha, h->seg_hashes + 32 * (size_t)s, 32) != 0)
		return lb__fail(LB_ECORRUPT,
		                "batch %llu: segment %u does not match its "
		                "hash",
		                (unsigned long long)id, s);
	/* lb__segr_load copies the records into the reader's own buffer */
	if ((rc = lb__segr_load(&db->segr, v.mv_data, v.mv_size)) < 0)
		return lb__rewrap(rc, "batch %llu: segment %u",
		                  (unsigned long long)id, s);
	/* note where each record starts, to visit them backwards */
	lb_segr *r = &db->segr;
	lb_wal_rec rec;
	x->noffs = 0;
	for (;;) {
		uint32_t off = (uint32_t)(r->mp.p - r->raw.data);
		if ((rc = lb__segr_next(r, &rec)) <= 0)
			break;
		if (x->noffs == x->ocap) {
			size_t nc = x->ocap ? x->ocap * 2 : 1024;
			uint32_t *no = realloc(x->offs, nc * sizeof *no);
			if (!no)
				return lb__fail(LB_ENOMEM,
				                "rollback: out of memory");
			x->offs = no;
			x->ocap = nc;
		}
		x->offs[x->noffs++] = off;
	}
	return rc;
}

static int record_at(rb *x, size_t i, lb_wal_rec *rec)
{
	lb_segr one = x->db->segr;
	one.mp.p = x->db->segr.raw.data + x->offs[i];
	one.left = 1;
	int rc = lb__segr_next(&one, rec);
	return rc == 1 ? 0 : (rc < 0 ? rc : lb__fail(LB_ECORRUPT, "segment"));
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
	bset_clear(&x->seen);
	x->tcache = NULL;
	uint64_t seen = 0;
	for (uint32_t s = h.segments; s-- > 0 && rc == 0;) {
		if ((rc = load_segment(x, id, &h, s)) < 0)
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
	if (rc == 0 && seen != h.records)
		rc = lb__fail(LB_ECORRUPT,
		              "batch %llu: %llu records, header says %llu",
		              (unsigned long long)id, (unsigned long long)seen,
		              (unsigned long long)h.records);
	lb__hdr_free(&h);
	return rc;
}

/* ---- cascade planning ---------------------------------------------------- */

/* rolled_back_by and undoes of batch id, cached. */
static int hdr_state(rb *x, uint64_t id, uint64_t *rbb, uint64_t *undoes)
{
	uint8_t kb[8];
	bent *e;
	int added, rc;
	lb__be64(kb, id);
	if ((rc = bset_get(&x->hdrs, kb, 8, &added, &e)) < 0)
		return rc;
	if (added) {
		lb_wal_hdr h;
		if ((rc = lb__hdr_get(x->db, x->b->txn, id, &h)) < 0) {
			/* leave a harmless entry; the caller fails anyway */
			return rc;
		}
		e->v[0] = h.rolled_back_by;
		e->v[1] = h.undoes;
		lb__hdr_free(&h);
	}
	*rbb = e->v[0];
	*undoes = e->v[1];
	return 0;
}

/* Does standing batch L only cancel changes made after the target B (so
 * that, together with what it undid, it changed nothing B depends on)?
 *  - L = lb_rollback(U) (U's rolled_back_by is L): yes if U > B and U is
 *    an ordinary batch (undoing a rollback redoes, which is a change);
 *  - L = lb_rollback_to(X) (undoes X, X not rolled back by L): yes if
 *    X >= B. */
static int cancels(rb *x, uint64_t L, uint64_t undoes, int *yes)
{
	uint64_t urbb, uundoes;
	int rc;
	*yes = 0;
	if (undoes == 0)
		return 0;
	if ((rc = hdr_state(x, undoes, &urbb, &uundoes)) < 0)
		return rc;
	if (urbb == L)
		*yes = undoes > x->target && uundoes == 0;
	else
		*yes = undoes >= x->target;
	return 0;
}

static int enqueue(rb *x, const void *ik, size_t iklen, uint64_t since)
{
	uint8_t h[10];
	int rc;
	lb__be64(h, since);
	h[8] = (uint8_t)(iklen >> 8);
	h[9] = (uint8_t)iklen;
	if ((rc = lb__buf_append(&x->q, h, sizeof h)) < 0 ||
	    (rc = lb__buf_append(&x->q, ik, iklen)) < 0)
		return rc;
	return 0;
}

/* Queue the records that reference ikey (they hold references that the
 * rollback would leave dangling). */
static int enqueue_referrers(rb *x, const uint8_t *ik, size_t iklen,
                             uint64_t since)
{
	MDB_val k = {iklen, (void *)ik}, v;
	int rc, mrc;
	if ((rc = cursor(x, x->db->refs, &x->refs, "_refs")) < 0)
		return rc;
	for (mrc = mdb_cursor_get(x->refs, &k, &v, MDB_SET_KEY); mrc == 0;
	     mrc = mdb_cursor_get(x->refs, &k, &v, MDB_NEXT_DUP)) {
		if (v.mv_size < 4 || v.mv_size > LB__IKEY_MAX)
			return lb__fail(LB_ECORRUPT, "_refs: bad entry");
		if ((rc = enqueue(x, v.mv_data, v.mv_size, since)) < 0)
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
	bent *e;
	int added, rc;
	if (r->op == LB_OP_TABLE) {
		x->tcache = NULL;
		return 0;
	}
	lb_table *t = table_of(x, r->table, r->tlen);
	if (!t)
		return 0; /* the undo reports it */
	size_t n = lb__ikey(ik, t->tid, r->key, r->klen);
	if ((rc = bset_get(&x->mkeys, ik, n, &added, &e)) < 0)
		return rc;
	if (!added)
		return 0;
	if ((rc = enqueue(x, ik, n, x->collecting)) < 0)
		return rc;
	/* the first record of the key has no before-image: the undo removes
	 * the key, so whatever references it must go too */
	if (!r->has_before && t->referenced)
		return enqueue_referrers(x, ik, n, x->collecting);
	return 0;
}

static int collect(rb *x, uint64_t id)
{
	bset_clear(&x->mkeys);
	x->collecting = id;
	x->tcache = NULL;
	int rc = lb__walk_batch(x->db, x->b->txn, id, &x->db->segr, collect_cb,
	                        x);
	x->tcache = NULL;
	return rc;
}

static int add_to_S(rb *x, uint64_t id)
{
	if (x->nS == x->Scap) {
		size_t nc = x->Scap ? x->Scap * 2 : 16;
		uint64_t *ns = realloc(x->S, nc * sizeof *ns);
		if (!ns)
			return lb__fail(LB_ENOMEM, "rollback: out of memory");
		x->S = ns;
		x->Scap = nc;
	}
	x->S[x->nS++] = id;
	return collect(x, id);
}

/* Consider the batches after `since` that changed ikey. */
static int expand(rb *x, const uint8_t *ik, size_t iklen, uint64_t since)
{
	size_t n = 0;
	int rc;
	/* The list is copied out: collect() below walks other batches (and
	 * expands no key, so x->ids stays this key's). */
	if ((rc = cursor(x, x->db->hist, &x->hist, "_hist")) < 0)
		return rc;
	rc = lb__hist_ids(x->db, x->b->txn, x->hist, ik, iklen, x->b->id,
	                  &x->ids, &n, &x->idcap);
	for (size_t i = 0; i < n && rc == 0; i++) {
		uint64_t L = x->ids[i], rbb, undoes;
		uint8_t lk[8];
		bent *e;
		int added, yes;
		if (L <= since)
			continue;
		lb__be64(lk, L);
		if ((rc = bset_get(&x->considered, lk, 8, &added, &e)) < 0)
			break;
		if (!added)
			continue;
		if ((rc = hdr_state(x, L, &rbb, &undoes)) < 0)
			break;
		if (rbb)
			continue; /* not standing */
		if ((rc = cancels(x, L, undoes, &yes)) < 0)
			break;
		if (yes)
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

/* S: the standing later batches that the rollback of the target depends
 * on (docs/ROLLBACK.md, "Cascade"), newest first. */
static int plan_cascade(rb *x)
{
	int rc;
	size_t qoff = 0;
	uint8_t tk[8];
	bent *e;
	int added;
	lb__be64(tk, x->target);
	if ((rc = bset_get(&x->considered, tk, 8, &added, &e)) < 0)
		return rc;
	if ((rc = collect(x, x->target)) < 0)
		return rc;
	while (qoff < x->q.len) {
		uint8_t ik[LB__IKEY_MAX];
		uint64_t since = lb__get_be64(x->q.data + qoff);
		size_t n = ((size_t)x->q.data[qoff + 8] << 8) |
		           x->q.data[qoff + 9];
		memcpy(ik, x->q.data + qoff + 10, n); /* q may move */
		qoff += 10 + n;
		if ((rc = bset_get(&x->done, ik, n, &added, &e)) < 0)
			return rc;
		if (!added && e->v[0] <= since)
			continue;
		e->v[0] = since;
		if ((rc = expand(x, ik, n, since)) < 0)
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
static int finish(rb *x, int rc, int dry, lb_result *res)
{
	lb_batch *b = x->b;
	uint64_t target = x->target;
	size_t nconf = x->nconflicts;
	char first[sizeof x->first_conflict];
	memcpy(first, x->first_conflict, sizeof first);
	rb_free(x);
	if (rc == 0 && nconf)
		rc = lb__fail(LB_ECONFLICT,
		              "rollback of batch %llu: %zu conflict%s (%s%s); "
		              "nothing written",
		              (unsigned long long)target, nconf,
		              nconf == 1 ? "" : "s", first,
		              nconf > 1 ? ", ..." : "");
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
	if (rc < 0 || dry) {
		if (res) {
			res->rc = rc;
			lb__batch_issues_to(b, res);
		}
		lb_batch_abort(b);
		return rc;
	}
	rc = lb__batch_commit_at(b, 0, res);
	if (rc == LB_EVALIDATION)
		rc = lb__rewrap(rc, "rollback refused");
	return rc;
}

int lb_rollback(lb_db *db, uint64_t id, unsigned flags, lb_result *res)
{
	lb_batch *b;
	rb x;
	int rc;
	char label[64];
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
	snprintf(label, sizeof label, "rollback of batch %llu",
	         (unsigned long long)id);
	if ((rc = lb__batch_begin(db, label, &b)) < 0)
		return set_res_rc(res, rc);
	b->undoes = id;
	b->fk_mode = 1;
	/* A strict or cascading undo writes a record for every key of the
	 * batches it undoes, so their history is its own (FORMAT.md §2.4); a
	 * forced one may skip keys, and lists its own in _hist. */
	b->implied = !(flags & LB_FORCE);
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
	for (size_t i = 0; rc == 0 && i < x.nS && !x.nconflicts; i++) {
		if ((rc = undo_batch(&x, x.S[i], UNDO_CHECK)) == 0)
			rc = lb__batch_mark(b, x.S[i]);
	}
	if (rc == 0 && !x.nconflicts) {
		rc = undo_batch(&x, id,
		                (flags & LB_FORCE) ? UNDO_FORCE : UNDO_CHECK);
		if (rc == 0)
			rc = lb__batch_mark(b, id);
	}
	return finish(&x, rc, (flags & LB_DRYRUN) != 0, res);
}

/* ---- rollback_to: the net change back to the state right after X ------- */

/* Record callback: remember each key's and table's first before-image. */
static int net_cb(void *ctx, const lb_wal_rec *r)
{
	rb *x = ctx;
	uint8_t id[2 + LB_TABLE_NAME_MAX + LB_KEY_MAX];
	int table = r->op == LB_OP_TABLE, added, rc;
	bent *e;
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
	if ((rc = bset_get(&x->seen, id, n, &added, &e)) < 0)
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
	const bent *e = bset_at(&x->seen, off);
	const uint8_t *id = (const uint8_t *)(e + 1);
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
	return off + ((sizeof(bent) + e->len + 7) & ~(size_t)7);
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
	int drop, create;
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
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			nettab *nt = realloc(*out, cap * sizeof *nt);
			if (!nt)
				return lb__fail(LB_ENOMEM,
				                "rollback: out of memory");
			*out = nt;
		}
		nettab *tt = &(*out)[(*n)++];
		lb_table *t = lb__batch_table(x->b, ne.name);
		tt->e = ne;
		tt->drop = t && !same_image(1, t->encoded.data, t->encoded.len,
		                            ne.present, ne.val, ne.vlen);
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

/* Bring every remembered key and table to its value right after X:
 * deletions first (with every key of a table to be removed), then table
 * removals (referring tables first), creations (referenced tables first),
 * then the values to put. Foreign keys are checked at commit. */
static int net_apply(rb *x)
{
	lb_batch *b = x->b;
	nettab *tt;
	size_t ntt, off, i;
	netent ne;
	int rc = net_tables(x, &tt, &ntt);
	for (off = 0; off < x->seen.arena.len && rc == 0;) {
		off = net_next(x, off, &ne);
		if (ne.table || (ne.present && !net_drops(tt, ntt, ne.name)))
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
	free(tt);
	for (off = 0; off < x->seen.arena.len && rc == 0;) {
		off = net_next(x, off, &ne);
		if (ne.table || !ne.present)
			continue;
		lb_table *t = table_of(x, ne.name, (uint32_t)strlen(ne.name));
		if (!t)
			return lb__fail(LB_ECORRUPT,
			                "rollback_to: table %s is missing",
			                ne.name);
		MDB_val cur = {0, NULL};
		int found = lb__batch_seek(b, t, ne.key, ne.klen, &cur);
		if (found < 0)
			return found;
		if (same_image(found, cur.mv_data, cur.mv_size, 1, ne.val,
		               ne.vlen))
			continue;
		rc = lb__apply(b, t, LB__MODE_PUT, ne.key, ne.klen, ne.val,
		               ne.vlen, LB__HOW_RESTORE);
		after_write(x);
	}
	return rc;
}

int lb_rollback_to(lb_db *db, uint64_t id, lb_result *res)
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
	snprintf(label, sizeof label, "rollback to batch %llu",
	         (unsigned long long)id);
	if ((rc = lb__batch_begin(db, label, &b)) < 0)
		return set_res_rc(res, rc);
	b->undoes = id;
	b->fk_mode = 1;
	rb_init(&x, db, b, id);
	uint64_t last = db->last_id;
	if (id > last) {
		rc = lb__fail(LB_ENOTFOUND, "no batch %llu (the last is %llu)",
		              (unsigned long long)id, (unsigned long long)last);
		return finish(&x, rc, 1, res);
	}
	if (id == last) /* nothing after it: nothing to do */
		return finish(&x, 0, 1, res);
	/* Refuse before writing anything if any log is gone; every standing
	 * batch after id is marked as undone by this one. */
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
		else if (h.rolled_back_by == 0)
			rc = lb__batch_mark(b, L);
		lb__hdr_free(&h);
	}
	/* The batches to read, newest first: a rollback_to batch N to
	 * X' >= id left the state as after X', so X'+1..N are skipped. */
	for (uint64_t L = last; L > id && rc == 0;) {
		uint64_t rbb, undoes, urbb, uundoes;
		if ((rc = hdr_state(&x, L, &rbb, &undoes)) < 0)
			break;
		if (undoes && undoes >= id &&
		    (rc = hdr_state(&x, undoes, &urbb, &uundoes)) == 0 &&
		    urbb != L) {
			L = undoes;
			continue;
		}
		if (rc == 0 && nwalk % 64 == 0) {
			uint64_t *nw = realloc(walk, (nwalk + 64) * sizeof *nw);
			if (!nw)
				rc = lb__fail(LB_ENOMEM,
				              "rollback: out of memory");
			else
				walk = nw;
		}
		if (rc == 0)
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
	return finish(&x, rc, 0, res);
}
