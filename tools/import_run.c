/* SPDX-License-Identifier: MIT */
/*
 * import_run.c: run records, starting and resuming a run (import.h).
 */
#include "import.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- run records --------------------------------------------------------- */

int64_t imp_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *mode_name(int mode)
{
	return mode == MODE_UPSERT   ? "upsert"
	       : mode == MODE_UPDATE ? "update"
	                             : "insert";
}

/* A key as runs.c stores it: a string, or {"base64": ...}. */
static json_t *key_json(const void *k, size_t kl)
{
	json_t *o;
	sbuf b;
	if (cli_utf8_valid(k, kl))
		return json_stringn(k, kl);
	sb_init(&b);
	cli_b64_encode(&b, k, kl);
	o = json_pack("{s:s%}", "base64", b.p ? b.p : "", b.len);
	sb_free(&b);
	return o;
}

#define ASIDE_PER_RECORD 100000

/*
 * Put the run record into the open batch, which is about to commit: it
 * covers the lines since the last record up to last_line (`lines` records
 * of this batch among them), and goes on at end_off.
 */
int imp_run_put(imp *m, int final, uint64_t lines, uint64_t committed,
                uint64_t aside, uint64_t last_line, uint64_t end_off)
{
	uint64_t last = 0;
	run_rec r;
	char key[32], *text;
	size_t kl;
	int rc = lb_last_batch(m->db, &last);
	if (rc < 0)
		return cli_lberr(rc, "cannot read the last batch");
	memset(&r, 0, sizeof r);
	/* The open batch holds the writer lock: it commits as last + 1. */
	r.batch = last + 1;
	r.run = m->run.id ? m->run.id : r.batch;
	r.seq = m->run.seq + 1;
	r.prev = m->run.prev_batch;
	r.file = (char *)m->file;
	memcpy(r.sha256, m->run.sha256, sizeof r.sha256);
	r.size = m->run.size;
	r.started_ns = m->run.started_ns;
	r.time_ns = imp_now_ns();
	r.mode = (char *)mode_name(m->mode);
	r.on_error = m->on_error == ONERR_RECORD ? "record" : "batch";
	r.table = m->deftable ? m->deftable->name : NULL;
	r.keyfield = (char *)m->keyfield;
	r.from_rejects = m->from_rejects;
	r.allow_repeats = m->allow_repeats;
	r.batch_size = m->batch_size;
	r.first_line = m->run.cov_line;
	r.last_line = last_line;
	r.next_line = last_line + 1;
	r.next_offset = end_off;
	r.lines = m->run.p_lines + lines;
	r.committed = committed;
	r.set_aside = m->run.p_aside + aside;
	r.final = final;
	if (m->on_error == ONERR_RECORD && m->nak > m->ak_recorded) {
		r.aside = json_array();
		for (size_t i = m->ak_recorded; i < m->nak; i++) {
			const akey *a = &m->ak[i];
			if (json_array_size(r.aside) == ASIDE_PER_RECORD) {
				r.aside_truncated = 1;
				break;
			}
			json_array_append_new(
			        r.aside,
			        json_pack(
			                "[so I]", a->t->name,
			                key_json(m->akeys.p + a->koff, a->klen),
			                (json_int_t)a->line));
		}
	}
	text = run_rec_text(&r);
	json_decref(r.aside);
	kl = run_key(key, r.run, r.seq);
	rc = lb_put(m->b, RUNS_TABLE, key, kl, text, strlen(text));
	free(text);
	if (rc < 0)
		return cli_lberr(rc, "cannot write the run record");
	m->run.pending_batch = r.batch;
	return 0;
}

/* The batch holding a run record committed as batch_id. */
void imp_run_committed(imp *m, uint64_t batch_id, int final, uint64_t last_line)
{
	if (batch_id != m->run.pending_batch)
		cli_err("warning: batch %" PRIu64 " committed as %" PRIu64
		        "; the run record names %" PRIu64,
		        m->run.pending_batch, batch_id, m->run.pending_batch);
	if (!m->run.id) {
		m->run.id = m->run.pending_batch;
		runs_lock_note(m->run.lockfd, m->run.id, m->file);
	}
	m->run.seq++;
	m->run.prev_batch = batch_id;
	m->run.cov_line = last_line + 1;
	m->run.p_lines = m->run.p_aside = 0;
	m->ak_recorded = m->nak;
	m->run.final_written = final;
	m->run.batches = cli_xrealloc(m->run.batches,
	                              (m->run.nbatches + 1) * sizeof(uint64_t));
	m->run.batches[m->run.nbatches++] = batch_id;
}

/* An ended batch whose lines no record covers yet (nothing committed). */
void imp_run_pending(imp *m, uint64_t lines, uint64_t aside)
{
	m->run.p_lines += lines;
	m->run.p_aside += aside;
}

/* Create logbook.runs before the run's first commit: the open batch (no
 * issue in it) is put aside, the table created (a batch of its own), and
 * the batch written again from its kept lines. */
int imp_ensure_table(imp *m)
{
	int rc;
	if (!m->run.on || m->run.table_ok)
		return 0;
	lb_batch_abort(m->b);
	m->b = NULL;
	rc = lb_table_create(m->db, RUNS_TABLE, NULL);
	if (rc < 0 && rc != LB_EEXIST)
		return cli_lberr(rc, "cannot create table %s", RUNS_TABLE);
	m->run.table_ok = 1;
	if (rc == 0) {
		/* which batch that was: the newest so labelled (another
		 * process may have committed one since) */
		uint64_t id = 0;
		lb_last_batch(m->db, &id);
		for (unsigned i = 0; id > 0 && i < 64; i++, id--) {
			lb_batch_info bi;
			if (lb_batch_info_get(m->db, id, &bi) == 0 &&
			    !strcmp(bi.label, "create table " RUNS_TABLE)) {
				m->run.table_batch = id;
				break;
			}
		}
	}
	if ((rc = imp_begin(m, m->first_line)) != 0)
		return rc;
	return imp_replay(m);
}

/*
 * After the last batch (end of input, --stop-on-error, or a signal): if
 * lines were read since the run's last record (batches that committed
 * nothing), or the end of the input was not recorded yet, commit a batch
 * that holds only the run record, so that the run's state is exact. A run
 * that never committed anything is not recorded at all.
 */
int imp_run_finish(imp *m, int eof)
{
	char label[LB_LABEL_MAX + 1];
	const char *base;
	lb_result res;
	int rc;
	if (!m->run.on || !m->run.id)
		return 0;
	if (!m->run.p_lines && (!eof || m->run.final_written))
		return 0;
	base = strrchr(m->file, '/');
	base = base ? base + 1 : m->file;
	snprintf(label, sizeof label,
	         "import %.150s: run %" PRIu64 " %s at line %" PRIu64, base,
	         m->run.id, eof ? "ends" : "stops", m->run.end_line);
	rc = lb_batch_begin(m->db, label, &m->b);
	if (rc < 0)
		return cli_lberr(rc, "cannot begin a batch");
	rc = imp_run_put(m, eof, 0, 0, 0, m->run.end_line, m->run.end_off);
	if (rc)
		return rc;
	memset(&res, 0, sizeof res);
	rc = lb_batch_commit(m->b, &res);
	m->b = NULL;
	if (rc < 0) {
		lb_result_free(&res);
		return cli_lberr(rc, "cannot commit the run record");
	}
	imp_run_committed(m, res.batch_id, eof, m->run.end_line);
	lb_result_free(&res);
	return 0;
}

static void run_text(sbuf *b, const run_info *r)
{
	sb_printf(b, "run %" PRIu64 " (%s, started ", r->id,
	          r->first.file ? r->first.file : "?");
	cli_time(b, r->first.started_ns);
	sb_printf(b,
	          ": %" PRIu64 " records, %" PRIu64 " committed, %" PRIu64
	          " set aside, %s",
	          r->lines, r->committed, r->set_aside, run_state(r));
	if (!r->final)
		sb_printf(b, " after line %" PRIu64, r->next_line - 1);
	sb_putc(b, ')');
}

/* A run's stored option against the one given: the stored one unless they
 * differ (a usage error: a resumed run keeps its options). */
static int same_opt(const char *what, const char *stored, const char *given,
                    uint64_t run)
{
	if (!given || (stored && !strcmp(stored, given)))
		return 0;
	return cli_usage("%s: run %" PRIu64 " was imported with %s %s; a "
	                 "resumed run keeps its options",
	                 what, run, what, stored ? stored : "(none)");
}

/* --resume in record mode: the keys run r set aside, for their
 * dependents in the lines to come. */
static int load_aside(imp *m, const char *dir, const run_info *r)
{
	run_info *ra = NULL;
	size_t na = 0;
	int rc = runs_load(m->db, r->id, &ra, &na);
	if (rc < 0) {
		return cli_lberr(rc, "%s: cannot read run %" PRIu64, dir,
		                 r->id);
	}
	for (size_t i = 0; i < na; i++) {
		size_t j;
		json_t *e;
		if (ra[i].id != r->id || !ra[i].aside)
			continue;
		json_array_foreach(ra[i].aside, j, e)
		{
			char err[64];
			const char *tn =
			        json_string_value(json_array_get(e, 0));
			cli_table *t =
			        tn ? cli_catalog_find(&m->cat, tn) : NULL;
			sbuf k;
			sb_init(&k);
			if (t && cli_key_json(json_array_get(e, 1), &k, err,
			                      sizeof err) == 0)
				imp_aside_add(m, t, k.p, k.len,
				              (uint64_t)json_integer_value(
				                      json_array_get(e, 2)));
			sb_free(&k);
		}
	}
	runs_free(ra, na);
	m->ak_recorded = m->nak;
	return 0;
}

/*
 * --resume: go on with run r from its first line not done, with its
 * options (those given must agree), its counts and (record mode) the keys
 * it set aside. *line: the last line done. Returns 0 or an exit code.
 */
static int resume_run(imp *m, const char *dir, const given *g,
                      const run_info *r, uint64_t *line)
{
	int rc;
	const char *stored_table = r->first.table;
	if ((rc = same_opt("--mode", r->first.mode, g->mode, r->id)) ||
	    (rc = same_opt("--on-error", r->first.on_error, g->on_error,
	                   r->id)) ||
	    (rc = same_opt("--table", stored_table, g->table, r->id)) ||
	    (rc = same_opt("--key", r->first.keyfield, g->key, r->id)))
		return rc;
	if (r->first.from_rejects != m->from_rejects) {
		return cli_usage("run %" PRIu64 " was imported %s "
		                 "--from-rejects",
		                 r->id,
		                 r->first.from_rejects ? "with" : "without");
	}
	if (m->allow_repeats && !r->first.allow_repeats) {
		return cli_usage("run %" PRIu64 " was imported without "
		                 "--allow-repeats",
		                 r->id);
	}
	m->allow_repeats = r->first.allow_repeats;
	m->mode = !r->first.mode || !strcmp(r->first.mode, "insert")
	                  ? MODE_INSERT
	          : !strcmp(r->first.mode, "upsert") ? MODE_UPSERT
	                                             : MODE_UPDATE;
	m->on_error = r->first.on_error && !strcmp(r->first.on_error, "record")
	                      ? ONERR_RECORD
	                      : ONERR_BATCH;
	if (stored_table) {
		m->deftable = cli_catalog_find(&m->cat, stored_table);
		if (!m->deftable) {
			return cli_err("%s: run %" PRIu64
			               " wrote to table '%s', which is no "
			               "longer there",
			               dir, r->id, stored_table);
		}
	}
	if (r->first.keyfield && !g->key) {
		static char kf[256];
		snprintf(kf, sizeof kf, "%s", r->first.keyfield);
		m->keyfield = kf;
	}
	if (lseek(m->rd.fd, (off_t)r->next_offset, SEEK_SET) < 0) {
		return cli_err("%s: cannot seek to line %" PRIu64 ": %s",
		               m->file, r->next_line, strerror(errno));
	}
	m->rd.consumed = r->next_offset;
	*line = r->next_line - 1;
	m->run.id = r->id;
	m->run.seq = r->last_seq;
	m->run.prev_batch = r->last_batch;
	m->run.started_ns = r->first.started_ns;
	m->run.cov_line = r->next_line;
	m->run.end_line = r->next_line - 1;
	m->run.end_off = r->next_offset;
	m->run.resumed = 1;
	m->run.prior_first = r->next_line;
	m->run.prior_lines = r->lines;
	m->run.prior_committed = r->committed;
	m->run.prior_aside = r->set_aside;
	runs_lock_note(m->run.lockfd, r->id, m->file);
	if (m->on_error == ONERR_RECORD && (rc = load_aside(m, dir, r)) != 0)
		return rc;
	return 0;
}

/*
 * Before the first batch: refuse a file whose content a standing run
 * imported already (unless --again), or with --resume set up the run to
 * go on with: its options, its counts, where to read from, and (record
 * mode) the keys it set aside. Returns 0 or an exit code.
 */
int imp_run_start(imp *m, const char *dir, const given *g, int resume,
                  int again, uint64_t *line)
{
	run_info *runs = NULL, *match = NULL, *open_run = NULL, *renamed = NULL;
	size_t n = 0;
	int rc;
	sbuf b;

	rc = runs_table_exists(m->db);
	if (rc < 0)
		return cli_lberr(rc, "%s: cannot list tables", dir);
	m->run.table_ok = rc;
	if (!m->run.table_ok || !m->run.sha256[0])
		goto fresh;
	rc = runs_load(m->db, 0, &runs, &n);
	if (rc < 0)
		return cli_lberr(rc, "%s: cannot read the runs", dir);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(runs[i].first.sha256, m->run.sha256)) {
			/* an unfinished run of a file of that name */
			if (!runs[i].final && runs[i].first.sha256[0] &&
			    runs[i].first.file &&
			    !strcmp(runs[i].first.file, m->file))
				renamed = &runs[i];
			continue;
		}
		match = &runs[i];
		if (!runs[i].final)
			open_run = &runs[i];
	}
	sb_init(&b);
	if (resume && !open_run && !match && renamed) {
		/* going on from line 1 would import its first lines again */
		run_text(&b, renamed);
		cli_err("%s: the content is not that of %s (it changed since); "
		        "nothing written. Use --again to import it as a new "
		        "run",
		        m->file, sb_str(&b));
		rc = CLI_DATA;
		goto out;
	}
	if (resume && open_run) {
		rc = resume_run(m, dir, g, open_run, line);
		goto out;
	}
	if (match && !again) {
		run_text(&b, open_run ? open_run : match);
		if (open_run)
			cli_err("%s: this content is the file of %s; nothing "
			        "written. Use --resume to go on with it, or "
			        "--again to import it anew",
			        m->file, sb_str(&b));
		else
			cli_err("%s: this content was imported already: %s; "
			        "nothing written. Use --again to import it "
			        "again",
			        m->file, sb_str(&b));
		rc = CLI_DATA;
		goto out;
	}
	sb_free(&b);
	runs_free(runs, n);
fresh:
	if (resume)
		fprintf(stderr,
		        "logbook: import: %s: no interrupted run of this "
		        "content; importing from line 1\n",
		        m->file);
	m->run.cov_line = 1;
	return 0;
out:
	sb_free(&b);
	runs_free(runs, n);
	return rc;
}
