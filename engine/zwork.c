/* SPDX-License-Identifier: MIT */
/*
 * zwork.c: compressing a batch's segments on a second thread.
 *
 * A batch writes change records into the open segment, db->segw, one of
 * two writers used in turn (db->segw0 and the worker's). At levels 1..3
 * (igzip, a stream) the batch offers the worker each chunk of records as
 * it completes (LB__SEGW_CHUNK raw bytes): a feed deflates them while the
 * batch adds records behind them, and goes on as long as the batch raises
 * its limit. When the segment is complete (full, or at commit), the batch
 * closes it: the job on it, or a new one, deflates what is left, ends the
 * stream and hashes the segment, while the batch goes on in the other
 * writer. At levels 4..9 a closed segment is deflated whole.
 *
 * One job is in flight at a time, on one writer; the batch collects it
 * (and puts a finished segment into `_wal`, in its own transaction and
 * thread) before it submits the next, so segments reach `_wal` in order.
 * A segment's bytes do not depend on which thread deflated which of its
 * chunks (wal.h), so they are those lb__segw_finish() writes on the
 * batch's thread.
 *
 * The worker thread is started at the first job of the first batch that
 * has one and lives until lb_close(). If it cannot be started, batches
 * compress every segment on their own thread.
 *
 * Threads: a writer with a job belongs to the worker from submit until
 * collect (worker.c hands it over under its lock), but a feed's writer is
 * the open one: the batch goes on appending records to it, within the
 * buffer it has (lb__segw_grows()), and publishes each new limit with a
 * release store that the job's acquire load pairs with; the job touches
 * only the stream and the output. Closing a writer whose feed is running
 * is a release store too, after the batch's last append.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/internal.h"

struct lb_zw {
	lb_worker wk;
	lb_segw w;      /* the second writer */
	lb_segw *job;   /* the writer of the job submitted, until collected */
	uint32_t segno; /* the job's writer's segment number, once closed */
	/* read by the job: the raw length it may feed up to, and whether
	 * the writer is complete (finish it; only the batch sets it) */
	_Atomic size_t upto;
	atomic_int close;
	/* written by the job when it finished the writer */
	int finished;
	size_t raw;
	const uint8_t *seg; /* in job->out until the writer is reused */
	size_t seglen;
	uint8_t hash[32];
};

atomic_int lb__zw_mode;

/* The job: feed whole chunks while there are some below the limit and
 * the writer is open; finish and hash it once it is closed. */
static int zw_job(void *p)
{
	lb_zw *z = p;
	lb_segw *w = z->job;
	int rc, mode = atomic_load_explicit(&lb__zw_mode, memory_order_relaxed);
	while (!atomic_load_explicit(&z->close, memory_order_acquire)) {
		size_t upto =
		        atomic_load_explicit(&z->upto, memory_order_acquire);
		if (lb__segw_unfed(w, upto) == 0)
			return 0;
		if (mode == 1)
			nanosleep(&(struct timespec){0, 300000}, NULL);
		if ((rc = lb__segw_feed(w, w->fed + LB__SEGW_CHUNK)) < 0)
			return rc;
		if (mode == 2)
			return 0;
	}
	z->raw = lb__segw_rawlen(w);
	rc = lb__segw_finish(w, &z->seg, &z->seglen);
	if (rc == 0)
		rc = lb__sha256(z->seg, z->seglen, z->hash);
	z->finished = rc == 0;
	return rc;
}

static lb_zw *zw_start(lb_db *db)
{
	lb_zw *z = calloc(1, sizeof *z);
	if (!z)
		return NULL;
	if (lb__segw_init(&z->w, db->level) < 0) {
		free(z);
		return NULL;
	}
	if (lb__worker_start(&z->wk, zw_job, z) < 0) {
		lb__segw_free(&z->w);
		free(z);
		return NULL;
	}
	return z;
}

/* The worker, started on first use; NULL when storing (a copy: not worth
 * a hand-over) or when it cannot be started. */
static lb_zw *zw_get(lb_db *db)
{
	if (db->level == 0 || db->zw_failed)
		return NULL;
	if (!db->zw && !(db->zw = zw_start(db)))
		db->zw_failed = 1;
	return db->zw;
}

static void submit(lb_zw *z, lb_segw *w, int close)
{
	z->job = w;
	z->finished = 0;
	atomic_store_explicit(&z->upto, lb__segw_rawlen(w),
	                      memory_order_relaxed);
	atomic_store_explicit(&z->close, close, memory_order_relaxed);
	lb__worker_submit(&z->wk, 0); /* its lock publishes the above */
}

/* Collect the job (how: LB__WORKER_WAIT or _POLL) and put the segment it
 * finished. A closed writer whose feed ended before it saw the close is
 * submitted again, and waited for again unless polling. 0,
 * LB__WORKER_BUSY (a poll) or < 0. */
static int settle(lb_zw *z, int how, lb_zw_put put, void *ctx)
{
	while (z->job) {
		int rc = lb__worker_collect(&z->wk, how);
		if (rc == LB__WORKER_BUSY)
			return rc;
		lb_segw *w = z->job;
		z->job = NULL;
		if (rc < 0)
			return rc;
		if (z->finished) {
			lb_zw_result r = {
			        z->seg, z->seglen, z->raw, z->segno, {0}};
			memcpy(r.hash, z->hash, 32);
			return put(ctx, &r);
		}
		if (!atomic_load_explicit(&z->close, memory_order_relaxed))
			return 0; /* a feed that caught up */
		submit(z, w, 1);
		if (how == LB__WORKER_POLL)
			return 0;
	}
	return 0;
}

int lb__zw_offer(lb_db *db, lb_zw_put put, void *ctx)
{
	lb_segw *w = db->segw;
	lb_zw *z;
	if (!w->zs || !(z = zw_get(db)))
		return 0;
	if (z->job == w)
		atomic_store_explicit(&z->upto, lb__segw_rawlen(w),
		                      memory_order_release);
	int rc = settle(z, LB__WORKER_POLL, put, ctx);
	if (rc < 0)
		return rc;
	if (rc != LB__WORKER_BUSY && !z->job &&
	    lb__segw_unfed(w, lb__segw_rawlen(w)) != 0)
		submit(z, w, 0);
	return 0;
}

int lb__zw_close(lb_db *db, uint32_t segno, lb_zw_put put, void *ctx)
{
	lb_zw *z = zw_get(db);
	if (!z)
		return 0;
	lb_segw *w = db->segw, *other = w == &db->segw0 ? &z->w : &db->segw0;
	if (z->job == w) {
		/* fed meanwhile: the same job finishes it (or, if it ended
		 * first, the next settle submits it again) */
		z->segno = segno;
		atomic_store_explicit(&z->close, 1, memory_order_release);
	} else {
		int rc = settle(z, LB__WORKER_WAIT, put, ctx);
		if (rc < 0)
			return rc;
		z->segno = segno;
		submit(z, w, 1);
	}
	db->segw = other;
	lb__segw_reset(other);
	return 1;
}

int lb__zw_on_open(const lb_db *db)
{
	return db->zw && db->zw->job == db->segw;
}

int lb__zw_wait(lb_db *db, lb_zw_put put, void *ctx)
{
	return db->zw ? settle(db->zw, LB__WORKER_WAIT, put, ctx) : 0;
}

void lb__zw_drain(lb_db *db)
{
	lb_zw *z = db->zw;
	if (!z)
		return;
	lb__worker_drain(&z->wk);
	z->job = NULL;
	lb__segw_reset(&db->segw0);
	lb__segw_reset(&z->w);
}

void lb__zw_free(lb_db *db)
{
	lb_zw *z = db->zw;
	if (!z)
		return;
	lb__worker_stop(&z->wk);
	if (db->segw == &z->w) {
		db->segw = &db->segw0;
		lb__segw_reset(db->segw);
	}
	lb__segw_free(&z->w);
	free(z);
	db->zw = NULL;
}
