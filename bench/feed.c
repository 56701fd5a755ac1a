/* SPDX-License-Identifier: MIT */
/*
 * feed.c: logbook's feed phases, on the committed W1 database (read only)
 * and, for following, on a small database of their own:
 *  - asof: lb_get_asof of the point-read keys as of batch N, N within the
 *    last 1% of batches (most keys have no change after N: a look in the
 *    history index and a read of the current value); its peer is get;
 *  - asof-changed: lb_get_asof as of N of every key updated after N, in
 *    a seeded random order (each answer is the before-image of its first
 *    later change, from that batch's log: decoded once per batch, then
 *    from lb_get_asof's cache of recent batches);
 *  - feed: lb_changes of every batch in log order (records per second);
 *  - export-asof: the table as of N (a cursor scan merged with lb_diff of
 *    N..last, as `logbook export --as-of` does); its peer is scan;
 *  - wait: wake-up latency of lb_wait for batches committed by another
 *    process, median of 41 commits 20 ms apart (the committing child sends
 *    the CLOCK_MONOTONIC time at which each commit returned);
 *  - idle: CPU time this process spends in lb_wait over 2 s with no
 *    commit (ms of CPU).
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "logbook.h"

#define TABLE "hearings"
#define WAIT_COMMITS 41
#define IDLE_MS 2000

static void fail(bk_meas *m, const char *what, int rc)
{
	m->failed = 1;
	bk_note(m, "%s: %s %.60s", what, lb_strerror(rc), lb_errmsg());
}

/* The as-of batch: within the last 1% of the workload's batches. */
static uint64_t asof_batch(const bk_workload *w, uint64_t base)
{
	uint64_t back = w->nbatches / 100;
	if (back == 0)
		back = 1;
	if (back >= w->nbatches)
		back = w->nbatches - 1;
	return base + w->nbatches - 1 - back;
}

static void asof(lb_db *db, const bk_workload *w, uint64_t n, bk_meas *m)
{
	char key[BK_KEY_LEN];
	uint64_t sum = 0;
	double t0 = bk_now();
	for (uint64_t i = 0; i < w->nreads; i++) {
		void *v;
		size_t vl;
		bk_key_w(w, w->reads[i], key);
		int rc = lb_get_asof(db, n, TABLE, key, BK_KEY_LEN, &v, &vl);
		if (rc == LB_ENOTFOUND)
			continue; /* inserted after n */
		if (rc != 0) {
			fail(m, "lb_get_asof", rc);
			return;
		}
		sum += vl ? ((uint8_t *)v)[vl / 2] : 0;
		free(v);
	}
	bk_meas_set(m, bk_now() - t0, w->nreads, 0);
	bk_sink += sum;
}

static void asof_changed(lb_db *db, const bk_workload *w, uint64_t base,
                         uint64_t n, bk_meas *m)
{
	uint64_t from = (n - base + 1) * w->batch_size, cnt = 0, sum = 0;
	char key[BK_KEY_LEN];
	if (from >= w->n) {
		bk_note(m, "no change after the as-of batch");
		return;
	}
	/* the updated keys, in a seeded random order (not log order, which
	 * would ask the batches one after the other) */
	uint64_t *rs = bk_xmalloc((w->n - from) * sizeof *rs), nr = 0;
	for (uint64_t r = from; r < w->n; r++)
		if (w->recs[r].op == OP_UPDATE)
			rs[nr++] = r;
	uint64_t rng = 19;
	for (uint64_t i = nr; i > 1; i--) {
		uint64_t j = bk_splitmix(&rng) % i, t = rs[i - 1];
		rs[i - 1] = rs[j];
		rs[j] = t;
	}
	double t0 = bk_now();
	for (uint64_t i = 0; i < nr; i++) {
		void *v;
		size_t vl;
		memcpy(key, w->recs[rs[i]].key, BK_KEY_LEN);
		int rc = lb_get_asof(db, n, TABLE, key, BK_KEY_LEN, &v, &vl);
		if (rc == LB_ENOTFOUND)
			continue; /* inserted after n too */
		if (rc != 0) {
			fail(m, "lb_get_asof", rc);
			free(rs);
			return;
		}
		sum += vl ? ((uint8_t *)v)[vl / 2] : 0;
		free(v);
		cnt++;
	}
	bk_meas_set(m, bk_now() - t0, cnt, 0);
	bk_note(m, "%llu keys changed after batch %llu, random order",
	        (unsigned long long)cnt, (unsigned long long)n);
	bk_sink += sum;
	free(rs);
}

static int count_cb(void *ctx, const lb_change *c)
{
	uint64_t *n = ctx;
	*n += 1 + (c->alen ? ((const uint8_t *)c->after)[0] & 0 : 0);
	return 0;
}

static void feed(lb_db *db, bk_meas *m)
{
	uint64_t last, n = 0;
	int rc = lb_last_batch(db, &last);
	if (rc != 0) {
		fail(m, "lb_last_batch", rc);
		return;
	}
	double t0 = bk_now();
	for (uint64_t id = 1; id <= last; id++)
		if ((rc = lb_changes(db, id, count_cb, &n)) != 0) {
			fail(m, "lb_changes", rc);
			return;
		}
	bk_meas_set(m, bk_now() - t0, n, 0);
}

/* The keys of TABLE that differ since n, with their values then. */
typedef struct dkeys {
	struct dk {
		char key[BK_KEY_LEN];
		size_t klen;
		void *val;
		size_t vlen;
		int has;
	} * v;
	size_t n, cap;
} dkeys;

static int dkey_cb(void *ctx, const lb_change *c)
{
	dkeys *d = ctx;
	if (c->op == LB_OP_TABLE || c->klen > BK_KEY_LEN)
		return 0;
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 256;
		d->v = bk_xrealloc(d->v, d->cap * sizeof *d->v);
	}
	struct dk *k = &d->v[d->n++];
	memcpy(k->key, c->key, c->klen);
	k->klen = c->klen;
	k->has = c->has_before;
	k->vlen = c->has_before ? c->blen : 0;
	k->val = bk_xmalloc(k->vlen ? k->vlen : 1);
	if (k->vlen)
		memcpy(k->val, c->before, k->vlen);
	return 0;
}

static int kcmp(const void *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

static void export_asof(lb_db *db, uint64_t n, bk_meas *m)
{
	uint64_t last, out = 0, bytes = 0;
	lb_snapshot *s;
	lb_cursor *c;
	dkeys d = {NULL, 0, 0};
	double t0 = bk_now();
	int rc = lb_last_batch(db, &last);
	if (rc == 0)
		rc = lb_snapshot_open(db, &s);
	if (rc != 0) {
		fail(m, "snapshot", rc);
		return;
	}
	if ((rc = lb_diff(db, n, last, dkey_cb, &d)) != 0 ||
	    (rc = lb_cursor_open(s, TABLE, &c)) != 0) {
		lb_snapshot_close(s);
		fail(m, "lb_diff", rc);
		goto out;
	}
	const void *k = NULL, *v = NULL;
	size_t kl = 0, vl = 0, i = 0;
	int more = (rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0;
	while (more || i < d.n) {
		int cmp = !more     ? 1
		          : i < d.n ? kcmp(k, kl, d.v[i].key, d.v[i].klen)
		                    : -1;
		if (cmp < 0) {
			out++;
			bytes += kl + vl + (vl ? ((const uint8_t *)v)[0] : 0);
		} else {
			out += d.v[i].has;
			bytes += d.v[i].vlen;
			i++;
		}
		if (cmp <= 0)
			more = (rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0;
	}
	lb_cursor_close(c);
	lb_snapshot_close(s);
	if (rc != LB_ENOTFOUND)
		fail(m, "lb_cursor_next", rc);
	else
		bk_meas_set(m, bk_now() - t0, out, bytes);
out:
	for (size_t j = 0; j < d.n; j++)
		free(d.v[j].val);
	free(d.v);
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The committing child: a batch every 20 ms; after each commit returns,
 * its CLOCK_MONOTONIC time goes down the pipe. */
static void committer(const char *dir, int fd)
{
	lb_db *db;
	lb_options o;
	lb_options_init(&o);
	o.flags = LB_NOSYNC;
	if (lb_open(dir, &o, &db) != 0)
		_exit(2);
	for (int i = 0; i < WAIT_COMMITS; i++) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
		lb_batch *b;
		char k[16];
		snprintf(k, sizeof k, "k%d", i);
		if (lb_batch_begin(db, "w", &b) != 0 ||
		    lb_put(b, TABLE, k, strlen(k), "v", 1) != 0 ||
		    lb_batch_commit(b, NULL) != 0)
			_exit(3);
		double t = mono();
		if (write(fd, &t, sizeof t) != sizeof t)
			_exit(4);
	}
	lb_close(db);
	_exit(0);
}

static void wait_phases(const bk_ctx *c, bk_meas *wm, bk_meas *im)
{
	char *dir = bk_path(c->dir, "wait");
	lb_db *db;
	lb_options o;
	lb_options_init(&o);
	o.flags = LB_CREATE | LB_NOSYNC;
	int rc = lb_open(dir, &o, &db);
	if (rc == 0)
		rc = lb_table_create(db, TABLE, NULL);
	if (rc != 0) {
		fail(wm, "open", rc);
		goto out;
	}
	uint64_t last;
	if (c->phases & 1u << PH_IDLE) {
		double c0 = bk_cpu_now(), t0 = bk_now();
		lb_last_batch(db, &last);
		rc = lb_wait(db, last, IDLE_MS, &last);
		double cpu = bk_cpu_now() - c0, secs = bk_now() - t0;
		if (rc != LB_EBUSY)
			fail(im, "lb_wait (idle)", rc);
		else
			bk_meas_set(im, cpu, 1, 0);
		bk_note(im, "%.0f ms of CPU in %.1f s idle", cpu * 1e3, secs);
	}
	if (c->phases & 1u << PH_WAIT) {
		int p[2];
		if (pipe(p) != 0) {
			bk_note(wm, "pipe: %s", strerror(errno));
			wm->failed = 1;
			goto close;
		}
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			close(p[0]);
			committer(dir, p[1]);
		}
		close(p[1]);
		double lat[WAIT_COMMITS];
		int n = 0;
		lb_last_batch(db, &last);
		while (n < WAIT_COMMITS) {
			uint64_t now;
			rc = lb_wait(db, last, 5000, &now);
			double woke = mono();
			if (rc != 0) {
				fail(wm, "lb_wait", rc);
				break;
			}
			/* one commit time per batch seen (several batches
			 * may have come at once: the first is the latest) */
			for (uint64_t b = last; b < now && n < WAIT_COMMITS;
			     b++) {
				double t;
				if (read(p[0], &t, sizeof t) != sizeof t)
					break;
				lat[n++] = woke - t;
			}
			last = now;
		}
		int st;
		waitpid(pid, &st, 0);
		close(p[0]);
		if (n == WAIT_COMMITS) {
			double med = bk_median(lat, n);
			bk_meas_set(wm, med, 1, 0);
			bk_note(wm, "median of %d wake-ups", n);
		}
	}
close:
	lb_close(db);
out:
	bk_rmrf(dir);
	free(dir);
}

void bk_feed_phases(const bk_ctx *c, lb_db *db, uint64_t base, bk_run *out)
{
	const bk_workload *w = c->w;
	uint64_t n = asof_batch(w, base);
	if (c->phases & 1u << PH_ASOF)
		asof(db, w, n, &out->ph[PH_ASOF]);
	if (c->phases & 1u << PH_ASOF_CHG)
		asof_changed(db, w, base, n, &out->ph[PH_ASOF_CHG]);
	if (c->phases & 1u << PH_FEED)
		feed(db, &out->ph[PH_FEED]);
	if (c->phases & 1u << PH_EXPORT_ASOF)
		export_asof(db, n, &out->ph[PH_EXPORT_ASOF]);
	if (c->phases & (1u << PH_WAIT | 1u << PH_IDLE))
		wait_phases(c, &out->ph[PH_WAIT], &out->ph[PH_IDLE]);
}
