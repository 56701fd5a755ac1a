/* SPDX-License-Identifier: MIT */
/*
 * catalog.c: the tables a handle knows, and keeping them the committed ones.
 *
 * A handle keeps its tables in memory (lb_table: the decoded schema, the
 * resolved references, the LMDB handle of its sub-database). Another
 * process, or another handle, may create or remove tables at any time, so
 * the list is only a cache of the catalog as committed: `_meta`'s
 * `catalog` entry (FORMAT.md §2.1) is a generation that every table
 * creation or removal increments in its own transaction. Every read and
 * write transaction compares it with the generation the list was loaded
 * at (lb__catalog_sync; skipped when LMDB's transaction id has not moved
 * since the last check), and when it moved the list is loaded again from
 * `_meta` (lb__catalog_reload) before anything names a table.
 *
 * Tables are never freed before lb_close(): a reader may hold one. A
 * table the catalog no longer has (removed, or removed and created again
 * under a new id, or whose schema or referenced tables changed) is marked
 * dropped, and a new one takes its place. Loading opens the sub-databases
 * of new tables in a read-only transaction that then commits, which is how
 * LMDB makes handles opened in it usable by every transaction; opening
 * handles is serialised by db->catlock, as LMDB requires.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

/* ---- tables ------------------------------------------------------------- */

void lb__table_free(lb_table *t)
{
	if (!t)
		return;
	lb__schema_free(&t->schema);
	lb__buf_free(&t->encoded);
	free(t->pubfields);
	free(t->ref_field);
	free(t->ref_table);
	free(t);
}

/* db's table named by the len bytes at name, not dropped (NULL if none);
 * tlock held. */
static lb_table *find_locked(lb_db *db, const char *name, size_t len)
{
	for (size_t i = 0; i < db->ntables; i++) {
		lb_table *t = db->tables[i];
		if (!t->dropped && strncmp(t->name, name, len) == 0 &&
		    t->name[len] == 0)
			return t;
	}
	return NULL;
}

int lb__table_dbi(lb_db *db, const char *name, size_t len, MDB_dbi *dbi,
                  uint32_t *tid)
{
	pthread_mutex_lock(&db->tlock);
	lb_table *t = find_locked(db, name, len);
	if (t) {
		*dbi = t->dbi;
		*tid = t->tid;
	}
	pthread_mutex_unlock(&db->tlock);
	return t != NULL;
}

lb_table *lb__table_find(lb_db *db, const char *name)
{
	if (!name)
		return NULL;
	pthread_mutex_lock(&db->tlock);
	lb_table *t = find_locked(db, name, strlen(name));
	pthread_mutex_unlock(&db->tlock);
	return t;
}

int lb__table_make(lb_db *db, lb_batch *b, const char *name, uint32_t tid,
                   const void *enc, size_t enclen, lb_table **out)
{
	lb_table *t = calloc(1, sizeof *t);
	int rc;
	*out = NULL;
	if (!t)
		return lb__fail(LB_ENOMEM, "table %s: out of memory", name);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->tid = tid;
	lb__buf_init(&t->encoded);
	if ((rc = lb__buf_append(&t->encoded, enc, enclen)) < 0)
		goto fail;
	if ((rc = lb__schema_decode(enc, enclen, &t->schema)) < 0)
		goto fail;
	if (t->schema.has_schema) {
		uint32_t n = t->schema.nfields;
		t->pubfields = calloc(n ? n : 1, sizeof *t->pubfields);
		t->ref_field = calloc(n ? n : 1, sizeof *t->ref_field);
		t->ref_table = calloc(n ? n : 1, sizeof *t->ref_table);
		if (!t->pubfields || !t->ref_field || !t->ref_table) {
			rc = lb__fail(LB_ENOMEM, "table %s: out of memory",
			              name);
			goto fail;
		}
		for (uint32_t i = 0; i < n; i++) {
			lb_sfield *f = &t->schema.fields[i];
			t->pubfields[i].name = f->name;
			t->pubfields[i].type = f->type;
			t->pubfields[i].flags = f->flags;
			t->pubfields[i].max_len = f->max_len;
			t->pubfields[i].ref = f->ref;
			if (f->ref) {
				/* inside a batch, the tables it created count
				 */
				lb_table *r = strcmp(f->ref, name) == 0 ? t
				              : b ? lb__batch_table(b, f->ref)
				                  : lb__table_find(db, f->ref);
				if (!r) {
					rc = lb__fail(
					        LB_ECORRUPT,
					        "table %s: field '%s' "
					        "references missing table "
					        "%s",
					        name, f->name, f->ref);
					goto fail;
				}
				t->ref_field[t->nrefs] = i;
				t->ref_table[t->nrefs] = r;
				t->nrefs++;
			}
		}
		t->pub.fields = t->pubfields;
		t->pub.nfields = n;
		t->pub.closed = t->schema.closed;
	}
	*out = t;
	return 0;
fail:
	lb__table_free(t);
	return rc;
}

int lb__tables_reserve(lb_db *db, size_t n)
{
	int rc = 0;
	pthread_mutex_lock(&db->tlock);
	if (db->tcap - db->ntables < n) {
		size_t nc = db->tcap ? db->tcap : 16;
		while (nc - db->ntables < n)
			nc *= 2;
		lb_table **nt = realloc(db->tables, nc * sizeof *nt);
		if (!nt) {
			rc = lb__fail(LB_ENOMEM, "table list: out of memory");
		} else {
			db->tables = nt;
			db->tcap = nc;
		}
	}
	pthread_mutex_unlock(&db->tlock);
	return rc;
}

int lb__tables_publish(lb_db *db, lb_table *t)
{
	pthread_mutex_lock(&db->tlock);
	int rc = lb__grow(&db->tables, &db->tcap, db->ntables + 1,
	                  sizeof *db->tables, 16);
	if (rc < 0) {
		pthread_mutex_unlock(&db->tlock);
		return rc;
	}
	db->tables[db->ntables++] = t;
	for (uint32_t i = 0; i < t->nrefs; i++)
		t->ref_table[i]->referenced = 1;
	pthread_mutex_unlock(&db->tlock);
	return 0;
}

/* ---- the catalog generation -------------------------------------------- */

int lb__catalog_get(lb_db *db, MDB_txn *txn, uint64_t *gen)
{
	MDB_val k = {7, "catalog"}, v;
	int mrc = mdb_get(txn, db->meta, &k, &v);
	*gen = 0;
	if (mrc == MDB_NOTFOUND || (mrc == 0 && v.mv_size != 8))
		return lb__fail(LB_ECORRUPT,
		                "%s: _meta has no valid catalog "
		                "entry",
		                db->path);
	if (mrc)
		return lb__mdb_fail(mrc, "_meta");
	*gen = lb__get_be64(v.mv_data);
	return 0;
}

int lb__catalog_bump(lb_batch *b)
{
	uint64_t gen;
	uint8_t v[8];
	int rc = lb__catalog_get(b->db, b->txn, &gen);
	if (rc < 0)
		return rc;
	lb__be64(v, gen + 1);
	MDB_val k = {7, "catalog"}, d = {8, v};
	int mrc = mdb_put(b->txn, b->db->meta, &k, &d, 0);
	if (mrc)
		return lb__mdb_fail(mrc, "_meta");
	b->catalog = gen + 1;
	return 0;
}

/* ---- loading ------------------------------------------------------------- */

typedef struct tent {
	uint32_t tid;
	char name[LB_TABLE_NAME_MAX + 1];
} tent;

static int tent_cmp(const void *a, const void *b)
{
	uint32_t x = ((const tent *)a)->tid, y = ((const tent *)b)->tid;
	return x < y ? -1 : x > y;
}

/* The catalog's tables in txn, in id order (references point at earlier
 * tables, or at the table itself). */
static int read_entries(lb_db *db, MDB_txn *txn, tent **out, size_t *n)
{
	MDB_cursor *c;
	MDB_val k = {6, "table/"}, d;
	size_t cap = 0;
	int rc = 0, mrc;
	*out = NULL;
	*n = 0;
	if ((mrc = mdb_cursor_open(txn, db->meta, &c)))
		return lb__mdb_fail(mrc, "_meta");
	for (mrc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); mrc == 0;
	     mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		if (k.mv_size < 6 || memcmp(k.mv_data, "table/", 6))
			break;
		size_t nl = k.mv_size - 6;
		if (nl == 0 || nl > LB_TABLE_NAME_MAX || d.mv_size != 4 ||
		    memchr((const char *)k.mv_data + 6, 0, nl)) {
			rc = lb__fail(LB_ECORRUPT,
			              "%s: bad table entry in _meta", db->path);
			break;
		}
		if ((rc = lb__grow(out, &cap, *n + 1, sizeof **out, 16)) < 0)
			break;
		memcpy((*out)[*n].name, (char *)k.mv_data + 6, nl);
		(*out)[*n].name[nl] = 0;
		(*out)[*n].tid = lb__get_be32(d.mv_data);
		(*n)++;
	}
	mdb_cursor_close(c);
	if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
		rc = lb__mdb_fail(mrc, "_meta");
	if (rc == 0 && *n > 1)
		qsort(*out, *n, sizeof **out, tent_cmp);
	return rc;
}

/* The live table named name, or NULL (under tlock). */
static lb_table *live_named(lb_db *db, const char *name)
{
	for (size_t i = 0; i < db->ntables; i++)
		if (!db->tables[i]->dropped &&
		    strcmp(db->tables[i]->name, name) == 0)
			return db->tables[i];
	return NULL;
}

/* Can the handle's table t stand for catalog table e with schema enc? */
static int still_same(const lb_table *t, const tent *e, const MDB_val *enc)
{
	if (t->tid != e->tid || t->encoded.len != enc->mv_size ||
	    memcmp(t->encoded.data, enc->mv_data, enc->mv_size) != 0)
		return 0;
	for (uint32_t i = 0; i < t->nrefs; i++)
		if (t->ref_table[i] != t && t->ref_table[i]->dropped)
			return 0;
	return 1;
}

static void mark_dropped(lb_db *db, lb_table *t)
{
	pthread_mutex_lock(&db->tlock);
	t->dropped = 1;
	pthread_mutex_unlock(&db->tlock);
}

/* A table as batch b sees it: created or removed in b, else published. */
lb_table *lb__batch_table(lb_batch *b, const char *name)
{
	for (size_t i = b->ntchanges; i-- > 0;)
		if (strcmp(b->tchanges[i].t->name, name) == 0)
			return b->tchanges[i].drop ? NULL : b->tchanges[i].t;
	return lb__table_find(b->db, name);
}

lb_table *lb__batch_table_by_tid(lb_batch *b, uint32_t tid)
{
	lb_db *db = b->db;
	for (size_t i = b->ntchanges; i-- > 0;)
		if (b->tchanges[i].t->tid == tid)
			return b->tchanges[i].drop ? NULL : b->tchanges[i].t;
	lb_table *found = NULL;
	pthread_mutex_lock(&db->tlock);
	for (size_t i = 0; i < db->ntables; i++)
		if (db->tables[i]->tid == tid && !db->tables[i]->dropped)
			found = db->tables[i];
	pthread_mutex_unlock(&db->tlock);
	return found;
}

int lb__catalog_load(lb_db *db, MDB_txn *txn, size_t *first_new)
{
	tent *e = NULL;
	size_t n = 0;
	uint64_t gen;
	int rc = lb__catalog_get(db, txn, &gen), mrc;
	if (first_new)
		*first_new = db->ntables; /* the list only grows */
	if (rc == 0)
		rc = read_entries(db, txn, &e, &n);
	/* tables the catalog no longer has */
	for (size_t i = 0; rc == 0 && i < db->ntables; i++) {
		lb_table *t = db->tables[i];
		int keep = 0;
		for (size_t j = 0; j < n && !keep && !t->dropped; j++)
			keep = e[j].tid == t->tid &&
			       strcmp(e[j].name, t->name) == 0;
		if (!keep && !t->dropped)
			mark_dropped(db, t);
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char key[7 + LB_TABLE_NAME_MAX + 1];
		int kl = snprintf(key, sizeof key, "schema/%s", e[i].name);
		MDB_val sk = {(size_t)kl, key}, sd;
		char dname[2 + LB_TABLE_NAME_MAX + 1];
		lb_table *t;
		if ((mrc = mdb_get(txn, db->meta, &sk, &sd))) {
			rc = mrc == MDB_NOTFOUND ? lb__fail(LB_ECORRUPT,
			                                    "%s: table %s has "
			                                    "no schema entry",
			                                    db->path, e[i].name)
			                         : lb__mdb_fail(mrc, "_meta");
			break;
		}
		pthread_mutex_lock(&db->tlock);
		t = live_named(db, e[i].name);
		pthread_mutex_unlock(&db->tlock);
		if (t && still_same(t, &e[i], &sd))
			continue;
		if (t)
			mark_dropped(db, t);
		if ((rc = lb__table_make(db, NULL, e[i].name, e[i].tid,
		                         sd.mv_data, sd.mv_size, &t)) < 0)
			break;
		snprintf(dname, sizeof dname, "t/%s", e[i].name);
		if ((mrc = mdb_dbi_open(txn, dname, 0, &t->dbi))) {
			lb__table_free(t);
			rc = mrc == MDB_NOTFOUND
			             ? lb__fail(LB_ECORRUPT,
			                        "%s: table %s has no data",
			                        db->path, e[i].name)
			             : lb__mdb_fail(mrc, dname);
			break;
		}
		if ((rc = lb__tables_publish(db, t)) < 0) {
			lb__table_free(t);
			break;
		}
	}
	free(e);
	if (rc == 0) {
		pthread_mutex_lock(&db->tlock);
		db->catalog = gen;
		pthread_mutex_unlock(&db->tlock);
	}
	return rc;
}

int lb__catalog_sync(lb_db *db, MDB_txn *txn, int *moved)
{
	uint64_t gen, known;
	size_t tid = mdb_txn_id(txn);
	*moved = 0;
	if (atomic_load(&db->cat_txnid) == tid)
		return 0;
	int rc = lb__catalog_get(db, txn, &gen);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&db->tlock);
	known = db->catalog;
	pthread_mutex_unlock(&db->tlock);
	if (gen != known) {
		*moved = 1;
		return 0;
	}
	atomic_store(&db->cat_txnid, tid);
	return 0;
}

int lb__catalog_reload(lb_db *db)
{
	MDB_txn *txn;
	int rc, mrc;
	pthread_mutex_lock(&db->catlock);
	lb__read_begin(db);
	mrc = db->env ? mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn)
	              : MDB_PANIC;
	if (mrc) {
		lb__read_end(db);
		pthread_mutex_unlock(&db->catlock);
		/* the caller adopts the map (it may hold a read itself) */
		if (mrc == MDB_MAP_RESIZED)
			return LB__ERESIZED;
		return lb__mdb_fail(mrc, "reading the catalog");
	}
	size_t first = 0;
	rc = lb__catalog_load(db, txn, &first);
	/* a read-only transaction commits so that the sub-databases it
	 * opened stay open for every later transaction */
	if (rc == 0 && (mrc = mdb_txn_commit(txn)))
		rc = lb__mdb_fail(mrc, "reading the catalog");
	else if (rc < 0)
		mdb_txn_abort(txn);
	if (rc < 0) {
		/* their sub-database handles closed with the transaction */
		pthread_mutex_lock(&db->tlock);
		for (size_t i = first; i < db->ntables; i++)
			db->tables[i]->dropped = 1;
		db->catalog = UINT64_MAX; /* load again next time */
		pthread_mutex_unlock(&db->tlock);
	}
	lb__read_end(db);
	pthread_mutex_unlock(&db->catlock);
	return rc;
}

/* ---- slots of removed tables --------------------------------------------- */

void lb__catalog_free_slots(lb_db *db)
{
	/* LMDB numbers handles after its two own (CORE_DBS) */
	enum { NDBI = LB__MAXDBS + 2 };
	uint8_t live[NDBI] = {0}, dead[NDBI] = {0};
	size_t used = 0;
	pthread_mutex_lock(&db->tlock);
	for (size_t i = 0; i < db->ntables; i++) {
		lb_table *t = db->tables[i];
		if (t->dbi_closed || t->dbi >= NDBI)
			continue;
		if (t->dropped)
			dead[t->dbi] = 1;
		else
			live[t->dbi] = 1;
	}
	for (size_t d = 0; d < NDBI; d++)
		used += live[d] || dead[d];
	pthread_mutex_unlock(&db->tlock);
	/* the engine's own sub-databases and the main one take the rest */
	if (used + 16 < LB__MAXDBS)
		return;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 1;
	if (lb__maplock_write(db, &until) != 0)
		return; /* readers are live: the creation may fail, LB_EFULL */
	pthread_mutex_lock(&db->catlock);
	pthread_mutex_lock(&db->tlock);
	for (size_t i = 0; i < db->ntables; i++) {
		lb_table *t = db->tables[i];
		if (!t->dropped || t->dbi_closed || t->dbi >= NDBI ||
		    live[t->dbi])
			continue;
		if (dead[t->dbi] && db->env)
			mdb_dbi_close(db->env, t->dbi);
		dead[t->dbi] = 0;
		t->dbi_closed = 1;
	}
	pthread_mutex_unlock(&db->tlock);
	pthread_mutex_unlock(&db->catlock);
	pthread_rwlock_unlock(&db->maplock);
}

int lb__no_table(lb_db *db, const char *name)
{
	int gone = 0;
	pthread_mutex_lock(&db->tlock);
	for (size_t i = 0; i < db->ntables && !gone; i++)
		gone = db->tables[i]->dropped &&
		       strcmp(db->tables[i]->name, name) == 0;
	pthread_mutex_unlock(&db->tlock);
	if (gone)
		return lb__fail(LB_ENOTFOUND,
		                "no table named %s: it was removed (the batch "
		                "that created it was rolled back)",
		                name);
	return lb__fail(LB_ENOTFOUND, "no table named %s", name);
}
