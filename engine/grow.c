/* SPDX-License-Identifier: MIT */
/*
 * grow.c: growing the map in the middle of a batch.
 *
 * LMDB fixes the map size while any transaction of the process is live, and
 * a write transaction that runs out of map (MDB_MAP_FULL) can only be
 * aborted. So that LB_EFULL means the disk is full and nothing else, a batch
 * journals every op that succeeded; when the map fills, the transaction is
 * aborted, the map grown and the journal redone in a new transaction, and
 * the op that failed is tried again. The caller sees nothing of it.
 *
 * The journal holds the op's arguments (table, key, value), not the change
 * record: redoing the ops rebuilds records, segments, indexes and pending
 * foreign-key checks exactly as the first time, because the starting state
 * is the same (the batch holds the writer lock throughout). It lives in
 * memory up to LB__JOURNAL_MEM bytes, then in an unlinked temporary file,
 * so memory stays bounded however large the batch.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/internal.h"

#define LB__JOURNAL_MEM (8u << 20)
#define LB__GROW_TRIES 16

/* Entry: kind, mode, how, tlen (1 byte each), klen, vlen (u32 LE each,
 * vlen = UINT32_MAX for no value), then table, key, value. */
enum { JHDR = 12 };
/* in the how byte: the batch's history was implied (b->implied) when the
 * entry was made; a grouped replay changes it from batch to batch */
enum { JIMPLIED = 0x80 };

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static int spill(lb_batch *b)
{
	if (!b->jfile && !(b->jfile = tmpfile()))
		return lb__fail(LB_EIO, "batch journal: cannot create a "
		                        "temporary file");
	if (b->jbuf.len &&
	    fwrite(b->jbuf.data, 1, b->jbuf.len, b->jfile) != b->jbuf.len)
		return lb__fail(LB_EFULL, "batch journal: cannot write the "
		                          "temporary file");
	b->jbuf.len = 0;
	return 0;
}

int lb__journal(lb_batch *b, int kind, int mode, int how, const char *table,
                const void *key, size_t klen, const void *val, size_t vlen,
                int hasval)
{
	size_t tlen = strlen(table);
	size_t need = JHDR + tlen + klen + (hasval ? vlen : 0);
	uint8_t h[JHDR];
	int rc;
	h[0] = (uint8_t)kind;
	h[1] = (uint8_t)mode;
	h[2] = (uint8_t)(how | (b->implied ? JIMPLIED : 0));
	h[3] = (uint8_t)tlen;
	put32(h + 4, (uint32_t)klen);
	put32(h + 8, hasval ? (uint32_t)vlen : UINT32_MAX);
	if (b->jbuf.len + need > LB__JOURNAL_MEM && (rc = spill(b)) < 0)
		return rc;
	if ((rc = lb__buf_reserve(&b->jbuf, need)) < 0)
		return rc;
	uint8_t *p = b->jbuf.data + b->jbuf.len;
	memcpy(p, h, JHDR);
	memcpy(p + JHDR, table, tlen);
	if (klen)
		memcpy(p + JHDR + tlen, key, klen);
	if (hasval && vlen)
		memcpy(p + JHDR + tlen + klen, val, vlen);
	b->jbuf.len += need;
	return 0;
}

void lb__journal_free(lb_batch *b)
{
	lb__buf_free(&b->jbuf);
	if (b->jfile)
		fclose(b->jfile);
	b->jfile = NULL;
}

/* Redo one entry at p (whole, len bytes). */
static int redo(lb_batch *b, const uint8_t *p)
{
	int kind = p[0], mode = p[1], how = p[2] & ~JIMPLIED;
	size_t tlen = p[3];
	uint32_t klen = get32(p + 4), vlen = get32(p + 8);
	char table[LB_TABLE_NAME_MAX + 1];
	const uint8_t *key = p + JHDR + tlen;
	const uint8_t *val = key + klen;
	int hasval = vlen != UINT32_MAX;
	memcpy(table, p + JHDR, tlen);
	table[tlen] = 0;
	b->implied = (p[2] & JIMPLIED) != 0;
	switch (kind) {
	case LB__J_APPLY: {
		lb_table *t = lb__batch_table(b, table);
		if (!t)
			return lb__fail(LB_ECORRUPT,
			                "redoing the batch: table %s is gone",
			                table);
		return lb__apply_once(b, t, mode, key, klen,
		                      hasval ? val : NULL, hasval ? vlen : 0,
		                      how);
	}
	case LB__J_TABLE:
		if (mode == 2) /* a schema change */
			return lb__alter_table_once(b, table, val, vlen, how);
		return lb__apply_table_once(b, table, hasval ? val : NULL,
		                            hasval ? vlen : 0, mode, how);
	case LB__J_SEG:
		return lb__put_segment_once(b, lb__get_be32(key), val, vlen);
	case LB__J_HDR:
		return lb__chain_redo(b, key, klen / 8, val, vlen, mode);
	default:
		return lb__fail(LB_ECORRUPT, "redoing the batch: bad journal");
	}
}

static size_t entry_len(const uint8_t *p)
{
	uint32_t vlen = get32(p + 8);
	return JHDR + p[3] + get32(p + 4) + (vlen == UINT32_MAX ? 0 : vlen);
}

static int redo_all(lb_batch *b)
{
	int rc;
	if (b->jfile) {
		lb_buf e;
		lb__buf_init(&e);
		rewind(b->jfile);
		for (;;) {
			uint8_t h[JHDR];
			size_t got = fread(h, 1, JHDR, b->jfile);
			if (got == 0)
				break;
			if (got != JHDR) {
				rc = lb__fail(LB_EIO,
				              "batch journal: short read");
				break;
			}
			size_t n = entry_len(h);
			e.len = 0;
			if ((rc = lb__buf_reserve(&e, n)) < 0)
				break;
			memcpy(e.data, h, JHDR);
			if (fread(e.data + JHDR, 1, n - JHDR, b->jfile) !=
			    n - JHDR) {
				rc = lb__fail(LB_EIO,
				              "batch journal: short read");
				break;
			}
			if ((rc = redo(b, e.data)) < 0)
				break;
			rc = 0;
		}
		lb__buf_free(&e);
		fseek(b->jfile, 0, SEEK_END);
		if (rc < 0)
			return rc;
	}
	for (size_t off = 0; off < b->jbuf.len;
	     off += entry_len(b->jbuf.data + off))
		if ((rc = redo(b, b->jbuf.data + off)) < 0)
			return rc;
	return 0;
}

static int regrow(lb_batch *b)
{
	lb_db *db = b->db;
	int rc = LB_EFULL;
	for (int tries = 0; tries < LB__GROW_TRIES; tries++) {
		MDB_envinfo info;
		if (b->txn)
			lb__wtxn_abort(db, b->txn);
		b->txn = NULL;
		/* the transaction that opened table handles has ended: let
		 * go of catlock (the redo takes it again), which is never
		 * held while maplock is waited for (lock order) */
		if (b->catlocked) {
			pthread_mutex_unlock(&db->catlock);
			b->catlocked = 0;
		}
		lb__batch_reset(b);
		mdb_env_info(db->env, &info);
		uint64_t nsize = (uint64_t)info.me_mapsize * 2;
		/* No transaction of this process may be live while the map
		 * changes: drop this batch's read hold, then wait (bounded)
		 * for readers to finish. */
		lb__read_end(db);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 10;
		int lrc = lb__maplock_write(db, &until);
		int grc = lrc ? 0 : lb__map_resize(db, nsize);
		if (!lrc)
			pthread_rwlock_unlock(&db->maplock);
		lb__read_begin(db);
		if (lrc)
			return lb__fail(
			        LB_EFULL,
			        "the database map is full and snapshots "
			        "held by other threads keep it from "
			        "growing");
		if (grc)
			return grc;
		if ((rc = lb__batch_txn(b)) < 0)
			return rc;
		/* the redo sets these entry by entry (a grouped replay's
		 * headers), so the batch's own are put back afterwards */
		int implied = b->implied, kind = b->undo_kind;
		uint64_t undoes = b->undoes, *marks = NULL;
		size_t nmarks = b->nmarks;
		if (nmarks && !(marks = malloc(nmarks * sizeof *marks)))
			return lb__fail(LB_ENOMEM, "out of memory");
		if (nmarks)
			memcpy(marks, b->marks, nmarks * sizeof *marks);
		rc = redo_all(b);
		b->implied = implied;
		b->undo_kind = kind;
		b->undoes = undoes;
		b->nmarks = 0;
		for (size_t i = 0; i < nmarks && rc == 0; i++)
			rc = lb__batch_mark(b, marks[i]);
		free(marks);
		if (rc == 0)
			return 0;
		if (!(rc == LB_EFULL && b->mapfull))
			return rc;
	}
	return rc;
}

int lb__regrow(lb_batch *b)
{
	int rc = regrow(b);
	if (rc < 0) {
		/* The batch's transaction is gone (aborted before growing, or
		 * the redo failed): the batch is over. Its cached cursors went
		 * with the transaction; no later op may use them. */
		if (b->txn) {
			lb__wtxn_abort(b->db, b->txn);
			b->txn = NULL;
		}
		b->txn_gen++;
		b->seek_t = NULL;
		b->poisoned =
		        rc == LB_EVALIDATION || rc == LB_EINVAL ? LB_EFULL : rc;
		b->mapfull = 0;
	}
	return rc;
}
