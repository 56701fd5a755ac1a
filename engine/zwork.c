/* SPDX-License-Identifier: MIT */
/*
 * zwork.c: compressing a batch's full segments on a second thread.
 *
 * A batch fills the open segment (db->segw) with change records. When it is
 * full, the batch hands the whole writer to this worker, takes the worker's
 * spare writer in exchange, and goes on with its next records while the
 * worker deflates and hashes the full one. The batch collects the result
 * (and puts it into `_wal`, in its own transaction and thread) before it
 * hands over the next segment and before commit, so at most one segment is
 * in flight and segments reach `_wal` in order. The bytes written are those
 * lb__segw_finish() writes on the batch's thread: only the thread differs.
 *
 * The worker thread is started at the first full segment of the first
 * batch that has one and lives until lb_close(). If it cannot be started,
 * batches compress every segment on their own thread.
 *
 * Locking: wk.mu protects state and the job's results; the writer being
 * compressed belongs to the worker from submit until collect, the open one
 * to the batch (which holds db->wlock) throughout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

enum { ZW_IDLE, ZW_BUSY, ZW_DONE };

struct lb_zw {
	lb_worker wk;
	int state;
	lb_segw w; /* the job's writer, or the spare one while idle */
	uint32_t segno;
	size_t raw;
	/* results, valid in ZW_DONE */
	int rc;
	char err[512]; /* the detail of a failure, from the worker */
	const uint8_t *seg;
	size_t seglen;
	uint8_t hash[32];
};

static void *zw_main(void *p)
{
	lb_zw *z = p;
	pthread_mutex_lock(&z->wk.mu);
	for (;;) {
		while (z->state != ZW_BUSY && !z->wk.quit)
			pthread_cond_wait(&z->wk.cv, &z->wk.mu);
		if (z->wk.quit)
			break;
		pthread_mutex_unlock(&z->wk.mu);
		const uint8_t *seg = NULL;
		size_t len = 0;
		uint8_t hash[32];
		int rc = lb__segw_finish(&z->w, &seg, &len);
		if (rc == 0)
			rc = lb__sha256(seg, len, hash);
		pthread_mutex_lock(&z->wk.mu);
		z->rc = rc;
		if (rc < 0) {
			snprintf(z->err, sizeof z->err, "%s", lb_errmsg());
		} else {
			z->seg = seg;
			z->seglen = len;
			memcpy(z->hash, hash, 32);
		}
		z->state = ZW_DONE;
		pthread_cond_broadcast(&z->wk.cv);
	}
	pthread_mutex_unlock(&z->wk.mu);
	return NULL;
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
	if (lb__worker_start(&z->wk, zw_main, z) < 0) {
		lb__segw_free(&z->w);
		free(z);
		return NULL;
	}
	return z;
}

int lb__zw_submit(lb_db *db, uint32_t segno)
{
	if (db->level == 0 || db->zw_failed)
		return 0; /* storing is a copy: not worth a hand-over */
	if (!db->zw && !(db->zw = zw_start(db))) {
		db->zw_failed = 1;
		return 0;
	}
	lb_zw *z = db->zw;
	pthread_mutex_lock(&z->wk.mu);
	/* The caller collected the previous job: the worker is idle. */
	lb_segw full = db->segw;
	db->segw = z->w;
	z->w = full;
	lb__segw_reset(&db->segw);
	z->segno = segno;
	z->raw = lb__segw_rawlen(&z->w);
	z->state = ZW_BUSY;
	pthread_cond_broadcast(&z->wk.cv);
	pthread_mutex_unlock(&z->wk.mu);
	return 1;
}

int lb__zw_collect(lb_db *db, lb_zw_result *out)
{
	lb_zw *z = db->zw;
	memset(out, 0, sizeof *out);
	if (!z)
		return 0;
	pthread_mutex_lock(&z->wk.mu);
	if (z->state == ZW_IDLE) {
		pthread_mutex_unlock(&z->wk.mu);
		return 0;
	}
	while (z->state != ZW_DONE)
		pthread_cond_wait(&z->wk.cv, &z->wk.mu);
	z->state = ZW_IDLE;
	int rc = z->rc;
	if (rc == 0) {
		out->seg = z->seg; /* in z->w.out until the next submit */
		out->seglen = z->seglen;
		out->segno = z->segno;
		out->raw = z->raw;
		memcpy(out->hash, z->hash, 32);
	}
	pthread_mutex_unlock(&z->wk.mu);
	if (rc < 0)
		return lb__fail(rc, "%s", z->err);
	return 1;
}

void lb__zw_drain(lb_db *db)
{
	lb_zw *z = db->zw;
	if (!z)
		return;
	pthread_mutex_lock(&z->wk.mu);
	while (z->state == ZW_BUSY)
		pthread_cond_wait(&z->wk.cv, &z->wk.mu);
	z->state = ZW_IDLE;
	lb__segw_reset(&z->w);
	pthread_mutex_unlock(&z->wk.mu);
}

void lb__zw_free(lb_db *db)
{
	lb_zw *z = db->zw;
	if (!z)
		return;
	lb__worker_stop(&z->wk);
	lb__segw_free(&z->w);
	free(z);
	db->zw = NULL;
}
