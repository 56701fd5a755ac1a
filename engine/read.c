/* SPDX-License-Identifier: MIT */
/*
 * read.c: lb_get, snapshots, cursors and the table list.
 *
 * Every read is an LMDB read-only transaction (MDB_NOTLS, so a thread may
 * hold several and they may move between threads). Readers do not wait for
 * the writer's transaction: LMDB's MVCC gives each the last committed
 * state. They may wait briefly while the map grows (at most 50 ms), or
 * while a failed environment is reopened (about 1 s; db.c).
 * A table created after a snapshot began is not visible in it: LMDB answers
 * such a handle with MDB_BAD_DBI, which is reported as LB_ENOTFOUND.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

struct lb_snapshot {
	lb_db *db;
	MDB_txn *txn;
	size_t ncursors;
};

struct lb_cursor {
	lb_snapshot *s;
	MDB_cursor *c;
	int state; /* 0 before the first key, 1 after a seek, 2 iterating */
	MDB_val seek;
	uint8_t seekbuf[LB_KEY_MAX];
};

static int get_in(lb_db *db, MDB_txn *txn, const char *table, const void *key,
                  size_t klen, MDB_val *v)
{
	lb_table *t = lb__table_find(db, table);
	if (!t)
		return lb__no_table(db, table);
	MDB_val k = {klen, (void *)key};
	int mrc = mdb_get(txn, t->dbi, &k, v);
	if (mrc == MDB_NOTFOUND || mrc == MDB_BAD_DBI || mrc == EINVAL) {
		char kt[96];
		if (mrc != MDB_NOTFOUND)
			return lb__fail(LB_ENOTFOUND,
			                "no table named %s in this snapshot",
			                table);
		return lb__fail(LB_ENOTFOUND, "%s: no key '%s'", table,
		                lb__key_text(key, klen, kt, sizeof kt));
	}
	if (mrc)
		return lb__mdb_fail(mrc, table);
	return lb__val_user(v, table);
}

int lb_get(lb_db *db, const char *table, const void *key, size_t klen,
           void **val, size_t *vlen)
{
	MDB_txn *txn;
	MDB_val v;
	int rc;
	if (val)
		*val = NULL;
	if (vlen)
		*vlen = 0;
	if (!db || !val || !vlen)
		return lb__fail(LB_EINVAL, "lb_get: NULL argument");
	if ((rc = lb__key_args(table, key, klen)) < 0)
		return rc;
	if ((rc = lb__read_txn(db, &txn)) < 0)
		return rc;
	rc = get_in(db, txn, table, key, klen, &v);
	if (rc == 0) {
		void *p = malloc(v.mv_size ? v.mv_size : 1);
		if (!p) {
			rc = lb__fail(LB_ENOMEM, "lb_get: out of memory");
		} else {
			memcpy(p, v.mv_data, v.mv_size);
			*val = p;
			*vlen = v.mv_size;
		}
	}
	lb__read_done(db, txn);
	return rc;
}

int lb_snapshot_open(lb_db *db, lb_snapshot **out)
{
	if (!out)
		return lb__fail(LB_EINVAL, "lb_snapshot_open: s is NULL");
	*out = NULL;
	if (!db)
		return lb__fail(LB_EINVAL, "lb_snapshot_open: db is NULL");
	lb_snapshot *s = calloc(1, sizeof *s);
	if (!s)
		return lb__fail(LB_ENOMEM, "snapshot: out of memory");
	int rc = lb__read_txn(db, &s->txn);
	if (rc < 0) {
		free(s);
		return rc;
	}
	s->db = db;
	*out = s;
	return 0;
}

int lb_snapshot_get(lb_snapshot *s, const char *table, const void *key,
                    size_t klen, const void **val, size_t *vlen)
{
	MDB_val v;
	int rc;
	if (val)
		*val = NULL;
	if (vlen)
		*vlen = 0;
	if (!s || !val || !vlen)
		return lb__fail(LB_EINVAL, "lb_snapshot_get: NULL argument");
	if ((rc = lb__key_args(table, key, klen)) < 0)
		return rc;
	if ((rc = get_in(s->db, s->txn, table, key, klen, &v)) < 0)
		return rc;
	*val = v.mv_data;
	*vlen = v.mv_size;
	return 0;
}

void lb_snapshot_close(lb_snapshot *s)
{
	if (!s)
		return;
	lb__read_done(s->db, s->txn);
	free(s);
}

int lb_cursor_open(lb_snapshot *s, const char *table, lb_cursor **out)
{
	if (!out)
		return lb__fail(LB_EINVAL, "lb_cursor_open: c is NULL");
	*out = NULL;
	if (!s)
		return lb__fail(LB_EINVAL, "lb_cursor_open: snapshot is NULL");
	if (!table || !*table)
		return lb__fail(LB_EINVAL, "table name is NULL or empty");
	lb_table *t = lb__table_find(s->db, table);
	if (!t)
		return lb__no_table(s->db, table);
	lb_cursor *c = calloc(1, sizeof *c);
	if (!c)
		return lb__fail(LB_ENOMEM, "cursor: out of memory");
	int mrc = mdb_cursor_open(s->txn, t->dbi, &c->c);
	if (mrc) {
		free(c);
		if (mrc == EINVAL || mrc == MDB_BAD_DBI)
			return lb__fail(LB_ENOTFOUND,
			                "no table named %s in this snapshot",
			                table);
		return lb__mdb_fail(mrc, table);
	}
	c->s = s;
	s->ncursors++;
	*out = c;
	return 0;
}

int lb_cursor_seek(lb_cursor *c, const void *key, size_t klen)
{
	if (!c)
		return lb__fail(LB_EINVAL, "lb_cursor_seek: cursor is NULL");
	if (klen && !key)
		return lb__fail(LB_EINVAL, "lb_cursor_seek: key is NULL");
	if (klen > LB_KEY_MAX)
		return lb__fail(LB_ETOOBIG, "seek key of %zu bytes (max %d)",
		                klen, LB_KEY_MAX);
	if (klen == 0) {
		c->state = 0;
		return 0;
	}
	memcpy(c->seekbuf, key, klen);
	c->seek.mv_data = c->seekbuf;
	c->seek.mv_size = klen;
	c->state = 1;
	return 0;
}

int lb_cursor_next(lb_cursor *c, const void **k, size_t *kl, const void **v,
                   size_t *vl)
{
	MDB_val key, val;
	int mrc;
	if (!c)
		return lb__fail(LB_EINVAL, "lb_cursor_next: cursor is NULL");
	switch (c->state) {
	case 0:
		mrc = mdb_cursor_get(c->c, &key, &val, MDB_FIRST);
		break;
	case 1:
		key = c->seek;
		mrc = mdb_cursor_get(c->c, &key, &val, MDB_SET_RANGE);
		break;
	default:
		mrc = mdb_cursor_get(c->c, &key, &val, MDB_NEXT);
		break;
	}
	if (mrc == MDB_NOTFOUND) {
		c->state = 2;
		/* stay at the end: later calls keep answering ENOTFOUND */
		mdb_cursor_get(c->c, &key, &val, MDB_LAST);
		return lb__fail(LB_ENOTFOUND, "end of table");
	}
	if (mrc)
		return lb__mdb_fail(mrc, "cursor");
	c->state = 2;
	int rc = lb__val_user(&val, "cursor");
	if (rc < 0)
		return rc;
	if (k)
		*k = key.mv_data;
	if (kl)
		*kl = key.mv_size;
	if (v)
		*v = val.mv_data;
	if (vl)
		*vl = val.mv_size;
	return 0;
}

void lb_cursor_close(lb_cursor *c)
{
	if (!c)
		return;
	mdb_cursor_close(c->c);
	c->s->ncursors--;
	free(c);
}

/* ---- lb_tables ------------------------------------------------------------
 */

static int by_name(const void *a, const void *b)
{
	return strcmp((*(lb_table *const *)a)->name,
	              (*(lb_table *const *)b)->name);
}

int lb_tables(lb_db *db, lb_table_fn fn, void *ctx)
{
	MDB_txn *txn;
	int rc;
	if (!db || !fn)
		return lb__fail(LB_EINVAL, "lb_tables: NULL argument");
	if ((rc = lb__read_txn(db, &txn)) < 0)
		return rc;
	pthread_mutex_lock(&db->tlock);
	size_t n = 0;
	lb_table **list =
	        malloc((db->ntables ? db->ntables : 1) * sizeof *list);
	if (list)
		for (size_t i = 0; i < db->ntables; i++)
			if (!db->tables[i]->dropped)
				list[n++] = db->tables[i];
	pthread_mutex_unlock(&db->tlock);
	if (!list) {
		lb__read_done(db, txn);
		return lb__fail(LB_ENOMEM, "lb_tables: out of memory");
	}
	qsort(list, n, sizeof *list, by_name);
	for (size_t i = 0; i < n; i++) {
		MDB_stat st;
		int mrc = mdb_stat(txn, list[i]->dbi, &st);
		if (mrc == EINVAL || mrc == MDB_BAD_DBI)
			continue; /* created after this snapshot */
		if (mrc) {
			rc = lb__mdb_fail(mrc, list[i]->name);
			break;
		}
		rc = fn(ctx, list[i]->name,
		        list[i]->schema.has_schema ? &list[i]->schema.view
		                                   : NULL,
		        (uint64_t)st.ms_entries);
		if (rc)
			break;
	}
	free(list);
	lb__read_done(db, txn);
	return rc;
}
