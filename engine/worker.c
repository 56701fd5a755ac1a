/* SPDX-License-Identifier: MIT */
/*
 * worker.c: the library's helper threads, the compression thread (zwork.c)
 * and the read-ahead thread (readahead.c). Each runs one job at a time for
 * the thread that owns it, which submits the job, goes on with its own
 * work, and collects the result; the handle starts the thread the first
 * time it needs it and stops it at lb_close().
 *
 * A job goes IDLE -> QUEUED (submit) -> RUNNING (the thread takes it) ->
 * DONE -> IDLE (collect). A job still QUEUED when it is collected may be
 * taken back (QUEUED -> IDLE), so that an owner never waits for a thread
 * that has not got a processor yet; a poll collects a job only when it is
 * done or was never submitted; drain drops a job (QUEUED or DONE ->
 * IDLE, after RUNNING ends). A failure keeps its lb_errmsg() detail, which
 * is per thread, to hand it to the owner's thread at collect.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>

#include "engine/internal.h"

enum { WK_IDLE, WK_QUEUED, WK_RUNNING, WK_DONE };

/* Under w->mu: the job is done with rc. */
static void done(lb_worker *w, int rc)
{
	w->rc = rc;
	if (rc < 0)
		snprintf(w->err, sizeof w->err, "%s", lb_errmsg());
	w->state = WK_DONE;
	pthread_cond_broadcast(&w->cv);
}

static void *worker_main(void *p)
{
	lb_worker *w = p;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while ((w->state != WK_QUEUED || w->hold) && !w->quit)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->quit)
			break;
		w->state = WK_RUNNING;
		pthread_mutex_unlock(&w->mu);
		int rc = w->job(w->arg);
		pthread_mutex_lock(&w->mu);
		done(w, rc);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int lb__worker_start(lb_worker *w, int (*job)(void *), void *arg)
{
	w->job = job;
	w->arg = arg;
	w->state = WK_IDLE;
	w->hold = 0;
	w->quit = 0;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->th, NULL, worker_main, w) == 0)
		return 0;
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	return -1;
}

void lb__worker_stop(lb_worker *w)
{
	pthread_mutex_lock(&w->mu);
	w->quit = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->th, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
}

void lb__worker_submit(lb_worker *w, int hold)
{
	pthread_mutex_lock(&w->mu);
	w->hold = hold;
	w->state = WK_QUEUED;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void lb__worker_fail(lb_worker *w, int rc)
{
	pthread_mutex_lock(&w->mu);
	done(w, rc);
	pthread_mutex_unlock(&w->mu);
}

int lb__worker_collect(lb_worker *w, int how)
{
	int rc;
	pthread_mutex_lock(&w->mu);
	if (how == LB__WORKER_POLL &&
	    (w->state == WK_QUEUED || w->state == WK_RUNNING)) {
		pthread_mutex_unlock(&w->mu);
		return LB__WORKER_BUSY;
	}
	if (w->state == WK_QUEUED && how == LB__WORKER_TAKE_BACK) {
		rc = LB__WORKER_TAKEN;
	} else {
		while (w->state == WK_QUEUED || w->state == WK_RUNNING)
			pthread_cond_wait(&w->cv, &w->mu);
		rc = w->state == WK_DONE ? (w->rc < 0 ? w->rc : 1) : 0;
	}
	w->state = WK_IDLE;
	pthread_mutex_unlock(&w->mu);
	/* the detail, kept from the worker's thread, on this one */
	return rc < 0 ? lb__fail(rc, "%s", w->err) : rc;
}

void lb__worker_drain(lb_worker *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->state == WK_RUNNING)
		pthread_cond_wait(&w->cv, &w->mu);
	w->state = WK_IDLE;
	pthread_mutex_unlock(&w->mu);
}
