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
 * Threads: the writer being compressed belongs to the worker from submit
 * until collect (worker.c hands it over under its lock), the open one to
 * the batch (which holds db->wlock) throughout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

struct lb_zw {
	lb_worker wk;
	lb_segw w; /* the job's writer, or the spare one while idle */
	uint32_t segno;
	size_t raw;
	/* results, once collected */
	const uint8_t *seg;
	size_t seglen;
	uint8_t hash[32];
};

/* The job: deflate and hash the full segment. */
static int zw_job(void *p)
{
	lb_zw *z = p;
	int rc = lb__segw_finish(&z->w, &z->seg, &z->seglen);
	if (rc == 0)
		rc = lb__sha256(z->seg, z->seglen, z->hash);
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

int lb__zw_submit(lb_db *db, uint32_t segno)
{
	if (db->level == 0 || db->zw_failed)
		return 0; /* storing is a copy: not worth a hand-over */
	if (!db->zw && !(db->zw = zw_start(db))) {
		db->zw_failed = 1;
		return 0;
	}
	lb_zw *z = db->zw;
	/* The caller collected the previous job: the worker is idle. */
	lb_segw full = db->segw;
	db->segw = z->w;
	z->w = full;
	lb__segw_reset(&db->segw);
	z->segno = segno;
	z->raw = lb__segw_rawlen(&z->w);
	lb__worker_submit(&z->wk, 0);
	return 1;
}

int lb__zw_collect(lb_db *db, lb_zw_result *out)
{
	lb_zw *z = db->zw;
	memset(out, 0, sizeof *out);
	if (!z)
		return 0;
	int rc = lb__worker_collect(&z->wk, 0);
	if (rc <= 0)
		return rc;
	out->seg = z->seg; /* in z->w.out until the next submit */
	out->seglen = z->seglen;
	out->segno = z->segno;
	out->raw = z->raw;
	memcpy(out->hash, z->hash, 32);
	return 1;
}

void lb__zw_drain(lb_db *db)
{
	lb_zw *z = db->zw;
	if (!z)
		return;
	lb__worker_drain(&z->wk);
	lb__segw_reset(&z->w);
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
