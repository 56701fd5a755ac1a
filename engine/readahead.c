/* SPDX-License-Identifier: MIT */
/*
 * readahead.c: reading the next segment of a rollback or a replay on a
 * second thread.
 *
 * A rollback undoes a batch segment by segment, from the last to the first
 * (rollback.c). While it undoes the records of segment s, this worker reads
 * segment s - 1: the rollback copies its stored bytes out of `_wal` on its
 * own thread (the write transaction is that thread's alone, and the map
 * moves when it grows), hands them over, and the worker checks them against
 * the batch header's SHA-256, checks and inflates them
 * (lb__segment_check_load) and notes where each record starts
 * (lb__segment_index). Once done with segment s, the rollback collects
 * s - 1: the worker's reader and offsets and the rollback's are exchanged,
 * so nothing is copied back.
 *
 * A segment is handed out only once it is fully verified, as when the
 * rollback loads it itself. A failure (a missing segment, a hash mismatch,
 * a damaged stream, memory) is kept until that segment is collected, with
 * its detail: the rollback fails at the same point, after the same records
 * and with the same conflicts, as it would reading every segment itself.
 *
 * The worker then prefetches the rollback's segment: it looks up the key
 * of each record, last first as the rollback undoes them, and in `_gone`
 * the keys the rollback will delete, in a read transaction of its own, so
 * that the pages the rollback reads and changes are mapped (their page
 * faults taken on this thread) and in the caches when it gets to them.
 * On a database just opened, where the first touch of each page is a
 * fault, this took a rollback of the last batch of 1,000 records from
 * 1.06x to 0.92x-0.96x the time of its commit (bench/README.md). The
 * prefetch is a hint and changes nothing: what it finds is not used, a
 * table it cannot resolve or a key it cannot find is passed over, and it
 * stops as soon as the rollback collects the segment, so that the rollback
 * never waits for more than one look-up. Its transaction is a reader like
 * any other of the process: it holds maplock for reading (lb__read_begin),
 * so the map never grows under it, and a batch that must grow the map
 * waits until it ends (it is short: one segment's keys). Tables are
 * resolved by name under tlock (lb__table_dbi), in the lock order wlock,
 * maplock, tlock, among the committed tables the handle lists, whose LMDB
 * handles stay open while any reader holds maplock (catalog.c closes a
 * dropped table's handle under maplock for writing); a table the rollback
 * makes again is listed only once it commits, so its records are passed
 * over.
 *
 * A replay (replay.c) reads ahead the same way, first to last: while it
 * applies segment s of a batch, the worker checks and inflates s + 1, or
 * after the batch's last segment the next batch's first. Its segments are
 * not indexed (the replay walks each segment's records in order) nor
 * prefetched (the new database holds none of their keys yet), and the
 * worker is the new database's: the source is only read, through the
 * replay's read transaction, and other threads may roll back on it
 * meanwhile, with their own read-ahead.
 *
 * At most one segment is in flight, so a rollback holds two segments (the
 * one being undone and the next), and a replay two. The worker thread is
 * started when a first segment is handed over (by a rollback of a batch of
 * two segments or more, or a replay of more than one segment), and lives
 * until lb_close(). If it cannot be started, every segment is read on the
 * caller's thread.
 *
 * Threads: the job (stored bytes, reader, offsets) belongs to the worker
 * from submit until collect, and otherwise to the caller: the holder of
 * db->wlock, or the replay whose new database db is. A job the thread has not
 * started when it is collected is taken back and run on the caller's thread
 * (worker.c), so a thread that gets no processor in time (the second one busy
 * with other work) never makes the rollback wait for it to start.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

atomic_int lb__ra_mode;
atomic_ulong lb__ra_handed;
atomic_int lb__ra_prefetch = 1;
atomic_ulong lb__ra_prefetched;

struct lb_ra {
	lb_worker wk;
	/* the job */
	uint64_t id;
	uint32_t segno;
	uint8_t want[32]; /* the segment's SHA-256 in the batch header */
	lb_buf stored;    /* the segment as stored, copied */
	lb_segr r;        /* loads it */
	int index;        /* note where its records start (offs) */
	uint32_t *offs;   /* where its records start in r.raw */
	size_t noffs, ocap;
	lb_db *src;      /* whose map the keys are looked up in */
	atomic_int stop; /* the owner is collecting: prefetch no more */
};

/* Check, load and index the stored segment. */
static int ra_load(lb_ra *z)
{
	int rc = lb__segment_check_load(z->id, z->segno, z->want,
	                                z->stored.data, z->stored.len, &z->r);
	if (rc == 0 && z->index)
		rc = lb__segment_index(&z->r, &z->offs, &z->noffs, &z->ocap);
	return rc;
}

/* Read a byte of every 4 KiB of v, so that each of its pages is mapped. */
static void touch(const MDB_val *v)
{
	const volatile uint8_t *p = v->mv_data;
	for (size_t o = 0; o < v->mv_size; o += 4096)
		(void)p[o];
}

/* Prefetch a rollback's segment (see the top of this file). */
static void ra_prefetch(lb_ra *z)
{
	lb_db *db = z->src;
	MDB_txn *rt;
	char name[LB_TABLE_NAME_MAX]; /* the table last resolved */
	size_t nlen = 0;              /* 0: none yet */
	MDB_dbi dbi = 0;
	uint32_t tid = 0;
	int known = 0, every = atomic_load(&lb__ra_prefetch) == 2;
	unsigned long n = 0;
	lb__read_begin(db);
	if (mdb_txn_begin(db->env, NULL, MDB_RDONLY, &rt) != 0) {
		lb__read_end(db);
		return;
	}
	for (size_t i = z->noffs; i-- > 0;) {
		if (!every && atomic_load(&z->stop))
			break;
		lb_wal_rec rec;
		if (lb__segment_rec_at(&z->r, z->offs[i], &rec) < 0 ||
		    rec.op == LB_OP_TABLE || rec.tlen > LB_TABLE_NAME_MAX)
			continue;
		if (rec.tlen != nlen || memcmp(name, rec.table, nlen) != 0) {
			nlen = rec.tlen;
			memcpy(name, rec.table, nlen);
			known = lb__table_dbi(db, name, nlen, &dbi, &tid);
		}
		if (!known)
			continue;
		MDB_val k = {rec.klen, (void *)rec.key}, v;
		if (mdb_get(rt, dbi, &k, &v) == 0)
			touch(&v);
		if (!rec.has_before) {
			uint8_t ik[LB__IKEY_MAX];
			MDB_val g = {lb__ikey(ik, tid, rec.key, rec.klen), ik};
			if (g.mv_size)
				(void)mdb_get(rt, db->gone, &g, &v);
		}
		n++;
	}
	mdb_txn_abort(rt);
	lb__read_end(db);
	atomic_fetch_add_explicit(&lb__ra_prefetched, n, memory_order_relaxed);
}

/* The job on the worker's thread: load, then prefetch a rollback's. */
static int ra_job(void *p)
{
	lb_ra *z = p;
	int rc = ra_load(z);
	if (rc == 0 && z->index && atomic_load(&lb__ra_prefetch))
		ra_prefetch(z);
	return rc;
}

static lb_ra *ra_start(void)
{
	lb_ra *z = calloc(1, sizeof *z);
	if (!z)
		return NULL;
	lb__buf_init(&z->stored);
	lb__segr_init(&z->r);
	if (lb__worker_start(&z->wk, ra_job, z) < 0) {
		free(z);
		return NULL;
	}
	return z;
}

int lb__ra_submit(lb_db *db, lb_db *src, MDB_txn *txn, const lb_wal_hdr *h,
                  uint32_t s, int index, MDB_val *stored)
{
	if (db->ra_failed || lb__ra_mode == 3)
		return 0;
	if (!db->ra && !(db->ra = ra_start())) {
		db->ra_failed = 1;
		return 0;
	}
	lb_ra *z = db->ra;
	/* The caller collected the previous job: the worker is idle, and the
	 * job is the caller's to fill. */
	MDB_val v = {0, NULL};
	int rc = lb__segment_get(src, txn, h->id, s, &v);
	if (stored)
		*stored = v;
	z->stored.len = 0;
	if (rc == 0)
		rc = lb__buf_append(&z->stored, v.mv_data, v.mv_size);
	z->id = h->id;
	z->segno = s;
	z->src = src;
	atomic_store(&z->stop, 0);
	z->index = index;
	memcpy(z->want, h->seg_hashes + 32 * (size_t)s, 32);
	if (rc < 0)
		lb__worker_fail(&z->wk, rc);
	else
		lb__worker_submit(&z->wk, lb__ra_mode == 1);
	return 1;
}

int lb__ra_collect(lb_db *db, lb_segr *r, uint32_t **offs, size_t *n,
                   size_t *cap)
{
	lb_ra *z = db->ra;
	atomic_store(&z->stop, 1);
	int rc = lb__worker_collect(&z->wk, lb__ra_mode != 2
	                                            ? LB__WORKER_TAKE_BACK
	                                            : LB__WORKER_WAIT);
	if (rc == LB__WORKER_TAKEN)
		rc = ra_load(z);
	if (rc < 0)
		return rc;
	atomic_fetch_add_explicit(&lb__ra_handed, 1, memory_order_relaxed);
	lb_segr tr = *r;
	*r = z->r;
	z->r = tr;
	if (!offs)
		return 0;
	uint32_t *to = *offs;
	size_t tn = *n, tc = *cap;
	*offs = z->offs;
	*n = z->noffs;
	*cap = z->ocap;
	z->offs = to;
	z->noffs = tn;
	z->ocap = tc;
	return 0;
}

void lb__ra_drain(lb_db *db)
{
	if (db->ra)
		lb__worker_drain(&db->ra->wk);
}

void lb__ra_free(lb_db *db)
{
	lb_ra *z = db->ra;
	if (!z)
		return;
	lb__worker_stop(&z->wk);
	lb__buf_free(&z->stored);
	lb__segr_free(&z->r);
	free(z->offs);
	free(z);
	db->ra = NULL;
}
