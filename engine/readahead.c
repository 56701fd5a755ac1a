/* SPDX-License-Identifier: MIT */
/*
 * readahead.c: reading a rollback's next segment on a second thread.
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
 * At most one segment is in flight, so a rollback holds two segments (the
 * one being undone and the next). The worker thread is started by the first
 * batch undone that has two segments or more, and lives until lb_close().
 * If it cannot be started, rollbacks read every segment on their own
 * thread.
 *
 * Locking: wk.mu protects state and the job's result; the job (stored bytes,
 * reader, offsets) belongs to the worker while it runs it (RUNNING), and
 * to the caller, who holds db->wlock, otherwise: a job still QUEUED when
 * it is collected is taken back under mu, so the worker never starts it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

/* A job is QUEUED from submit until the worker takes it (RUNNING), then
 * DONE; one still QUEUED when it is collected is taken back and done on
 * the caller's thread, so a worker that gets no processor in time (the
 * second processor busy with other work) never makes the rollback wait
 * for it to start. */
enum { RA_IDLE, RA_QUEUED, RA_RUNNING, RA_DONE };

atomic_int lb__ra_mode;

struct lb_ra {
	lb_worker wk;
	int state;
	/* the job */
	uint64_t id;
	uint32_t segno;
	uint8_t want[32]; /* the segment's SHA-256 in the batch header */
	lb_buf stored;    /* the segment as stored, copied */
	lb_segr r;        /* loads it */
	uint32_t *offs;   /* where its records start in r.raw */
	size_t noffs, ocap;
	/* its result, valid in RA_DONE */
	int rc;
	char err[512]; /* the detail of a failure */
};

/* The job itself: check, load and index the stored segment. */
static int ra_job(lb_ra *z)
{
	int rc = lb__segment_check_load(z->id, z->segno, z->want,
	                                z->stored.data, z->stored.len, &z->r);
	if (rc == 0)
		rc = lb__segment_index(&z->r, &z->offs, &z->noffs, &z->ocap);
	return rc;
}

static void *ra_main(void *p)
{
	lb_ra *z = p;
	pthread_mutex_lock(&z->wk.mu);
	for (;;) {
		while ((z->state != RA_QUEUED || lb__ra_mode == 1) &&
		       !z->wk.quit)
			pthread_cond_wait(&z->wk.cv, &z->wk.mu);
		if (z->wk.quit)
			break;
		z->state = RA_RUNNING;
		pthread_mutex_unlock(&z->wk.mu);
		int rc = ra_job(z);
		pthread_mutex_lock(&z->wk.mu);
		z->rc = rc;
		if (rc < 0)
			snprintf(z->err, sizeof z->err, "%s", lb_errmsg());
		z->state = RA_DONE;
		pthread_cond_broadcast(&z->wk.cv);
	}
	pthread_mutex_unlock(&z->wk.mu);
	return NULL;
}

static lb_ra *ra_start(void)
{
	lb_ra *z = calloc(1, sizeof *z);
	if (!z)
		return NULL;
	lb__buf_init(&z->stored);
	lb__segr_init(&z->r);
	if (lb__worker_start(&z->wk, ra_main, z) < 0) {
		free(z);
		return NULL;
	}
	return z;
}

int lb__ra_submit(lb_db *db, MDB_txn *txn, const lb_wal_hdr *h, uint32_t s)
{
	if (db->ra_failed)
		return 0;
	if (!db->ra && !(db->ra = ra_start())) {
		db->ra_failed = 1;
		return 0;
	}
	lb_ra *z = db->ra;
	/* The caller collected the previous job: the worker is idle, and the
	 * job is the caller's to fill. */
	MDB_val v;
	int rc = lb__segment_get(db, txn, h->id, s, &v);
	z->stored.len = 0;
	if (rc == 0)
		rc = lb__buf_append(&z->stored, v.mv_data, v.mv_size);
	z->id = h->id;
	z->segno = s;
	memcpy(z->want, h->seg_hashes + 32 * (size_t)s, 32);
	pthread_mutex_lock(&z->wk.mu);
	if (rc < 0) {
		z->rc = rc;
		snprintf(z->err, sizeof z->err, "%s", lb_errmsg());
		z->state = RA_DONE;
	} else {
		z->state = RA_QUEUED;
		pthread_cond_broadcast(&z->wk.cv);
	}
	pthread_mutex_unlock(&z->wk.mu);
	return 1;
}

int lb__ra_collect(lb_db *db, lb_segr *r, uint32_t **offs, size_t *n,
                   size_t *cap)
{
	lb_ra *z = db->ra;
	int rc, here;
	pthread_mutex_lock(&z->wk.mu);
	while (lb__ra_mode == 2 && z->state == RA_QUEUED)
		pthread_cond_wait(&z->wk.cv, &z->wk.mu);
	here = z->state == RA_QUEUED;
	while (z->state == RA_RUNNING)
		pthread_cond_wait(&z->wk.cv, &z->wk.mu);
	rc = z->state == RA_DONE ? z->rc : 0;
	z->state = RA_IDLE;
	pthread_mutex_unlock(&z->wk.mu);
	if (here && (rc = ra_job(z)) < 0)
		return rc; /* its detail is this thread's already */
	if (rc < 0)
		return lb__fail(rc, "%s", z->err);
	lb_segr tr = *r;
	*r = z->r;
	z->r = tr;
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
	lb_ra *z = db->ra;
	if (!z)
		return;
	pthread_mutex_lock(&z->wk.mu);
	while (z->state == RA_RUNNING)
		pthread_cond_wait(&z->wk.cv, &z->wk.mu);
	z->state = RA_IDLE;
	pthread_mutex_unlock(&z->wk.mu);
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
