/* SPDX-License-Identifier: MIT */
/*
 * worker.c: the life of the library's helper threads, the compression
 * thread (zwork.c) and the read-ahead thread (readahead.c). Each waits on
 * its condition, under its lock, for a job or for quit; the handle starts
 * one the first time it needs it and stops it at lb_close().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>

#include "engine/internal.h"

int lb__worker_start(lb_worker *w, void *(*fn)(void *), void *arg)
{
	w->quit = 0;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->th, NULL, fn, arg) == 0)
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
