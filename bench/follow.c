/* SPDX-License-Identifier: MIT */
/*
 * follow.c: logbook's follow phase. Every batch of the committed W1
 * database is framed (lb_batch_raw) and applied to a new follower
 * (lb_batch_apply_raw), opened with the run's options (nosync unless
 * --sync), one transaction per batch as a follower fed by `logbook follow`
 * commits them. The time covers both calls, so it is the library's part
 * of the end-to-end follower rate (the transport is measured by
 * bench/replication.sh); its peer is logbook's commit rate. The follower
 * must end at the same head hash as the primary.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <stdlib.h>
#include <string.h>

#include "logbook.h"

void bk_follow_phase(const bk_ctx *c, struct lb_db *db, bk_meas *m)
{
	char *dir = bk_path(c->dir, "follower");
	lb_options o;
	lb_db *f = NULL;
	uint64_t last = 0, records = 0;
	lb_batch_info a, b;
	int rc;
	lb_options_init(&o);
	o.flags = LB_CREATE | (c->cfg->sync ? 0 : LB_NOSYNC);
	if ((rc = lb_last_batch(db, &last)) < 0 ||
	    (rc = lb_open(dir, &o, &f)) < 0)
		goto out;
	double t0 = bk_now(), c0 = bk_cpu_now();
	for (uint64_t id = 1; id <= last; id++) {
		void *buf;
		size_t len;
		if ((rc = lb_batch_raw(db, id, &buf, &len)) < 0)
			goto out;
		rc = lb_batch_apply_raw(f, buf, len, NULL);
		free(buf);
		if (rc < 0)
			goto out;
	}
	m->secs = bk_now() - t0;
	m->cpu = bk_cpu_now() - c0;
	for (uint64_t id = 1; id <= last; id++)
		if (lb_batch_info_get(db, id, &a) == 0)
			records += a.records;
	m->count = records;
	m->done = 1;
	if ((rc = lb_batch_info_get(db, last, &a)) < 0 ||
	    (rc = lb_batch_info_get(f, last, &b)) < 0)
		goto out;
	if (memcmp(a.hash, b.hash, 32) != 0) {
		m->failed = 1;
		bk_note(m, "the follower's head hash differs");
	}
out:
	if (rc < 0) {
		m->failed = 1;
		bk_note(m, "follow: %s %.60s", lb_strerror(rc), lb_errmsg());
	}
	lb_close(f);
	bk_rmrf(dir);
	free(dir);
}
