/* SPDX-License-Identifier: MIT */
/*
 * import_report.c: progress, batch reports, rejects, the summary (import.h).
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

/* ---- progress ------------------------------------------------------------ */

void imp_progress(imp *m, int final)
{
	double now = cli_now(), el = now - m->t0;
	uint64_t recs = m->rec_ok + m->rec_failed + m->brecs;
	char eta[32] = "";
	char bar[32];
	double frac = 0;
	if (!m->progress)
		return;
	if (!final && now - m->last_draw < 0.2)
		return;
	m->last_draw = now;
	if (final) {
		fputs("\r\033[K", stderr);
		return;
	}
	if (m->in_size) {
		frac = (double)m->rd.consumed / (double)m->in_size;
		if (frac > 1)
			frac = 1;
		if (frac > 0.001 && el > 0.5)
			snprintf(eta, sizeof eta, "  ETA %.0fs",
			         el / frac - el);
		int w = (int)(frac * 20 + 0.5);
		for (int i = 0; i < 20; i++)
			bar[i] = i < w ? '#' : '.';
		bar[20] = '\0';
		fprintf(stderr, "\r\033[K[%s] %3.0f%% ", bar, frac * 100);
	} else {
		fputs("\r\033[K", stderr);
	}
	fprintf(stderr,
	        "%" PRIu64 " records  batches %" PRIu64 " ok / %" PRIu64
	        " failed  %.0f rec/s%s",
	        recs, m->ok, m->failed, el > 0 ? (double)recs / el : 0.0, eta);
	fflush(stderr);
}

/* ---- reporting ----------------------------------------------------------- */

/* A name or text that may not be UTF-8. */
static void jw_text(sbuf *b, const char *s)
{
	jw_bytes(b, s, strlen(s));
}

/*
 * One issue. With cli_json (or as a reject file's reason) a JSON object:
 * {"file", "line", "kind", "table", "key", "field", "message"} (a reason
 * leaves out file and line; "depends_on" is the line a dependency needs);
 * else a human line "  FILE:LINE: kind table key field F: message".
 */
void imp_issue_fmt(const imp *m, sbuf *b, const issue *is, int reason)
{
	if (cli_json || reason) {
		sb_putc(b, '{');
		if (!reason) {
			sb_puts(b, "\"file\":");
			jw_text(b, m->file);
			sb_puts(b, ",\"line\":");
			jw_u64_or_null(b, is->line);
			sb_putc(b, ',');
		}
		sb_puts(b, "\"kind\":");
		jw_cstr(b, is->kind);
		sb_puts(b, ",\"table\":");
		if (is->table)
			jw_text(b, is->table);
		else
			sb_puts(b, "null");
		sb_puts(b, ",\"key\":");
		if (is->key && is->klen)
			jw_bytes(b, is->key, is->klen);
		else
			sb_puts(b, "null");
		sb_puts(b, ",\"field\":");
		if (is->field)
			jw_text(b, is->field);
		else
			sb_puts(b, "null");
		sb_puts(b, ",\"message\":");
		jw_text(b, is->msg ? is->msg : "");
		if (is->dep)
			sb_printf(b, ",\"depends_on\":%" PRIu64, is->dep);
		sb_putc(b, '}');
		return;
	}
	sb_printf(b, "  %s:", m->file);
	if (is->line)
		sb_printf(b, "%" PRIu64 ":", is->line);
	sb_printf(b, " %s", is->kind);
	if (is->table)
		sb_printf(b, " %s", is->table);
	if (is->key && is->klen) {
		sb_putc(b, ' ');
		cli_key_human(b, is->key, is->klen);
	}
	if (is->field)
		sb_printf(b, " field %s", is->field);
	if (is->msg && *is->msg)
		sb_printf(b, ": %s", is->msg);
}

/* "batch 7 committed: lines 1-500, 500 records" (7: the database's batch
 * id), with ", 3 set aside" when lines of it were. */
void imp_committed_line(imp *m, uint64_t batch_id, uint64_t nrec,
                        uint64_t aside)
{
	if (m->progress)
		imp_progress(m, 1);
	sb_printf(&m->out,
	          "batch %" PRIu64 " committed: lines %" PRIu64 "-%" PRIu64
	          ", %" PRIu64 " record%s",
	          batch_id, m->first_line, m->last_line, nrec,
	          nrec == 1 ? "" : "s");
	if (aside)
		sb_printf(&m->out, ", %" PRIu64 " set aside", aside);
	sb_putc(&m->out, '\n');
}

void imp_report_batch(imp *m, int success, const char *error, uint64_t batch_id,
                      uint64_t nrec, uint64_t extra)
{
	sbuf *b = &m->out;
	if (m->niss > 1)
		qsort(m->iss, m->niss, sizeof *m->iss, imp_cmp_issue);
	if (cli_json) {
		sb_printf(b,
		          "{\"batch\":%" PRIu64
		          ",\"success\":%s,\"records\":%" PRIu64 ",\"error\":",
		          m->nbatch, success ? "true" : "false", nrec);
		jw_cstr_or_null(b, error);
		sb_puts(b, ",\"issues\":[");
		for (size_t i = 0; i < m->niss; i++) {
			const issue *is = &m->iss[i];
			if (i)
				sb_putc(b, ',');
			imp_issue_fmt(m, b, is, 0);
		}
		sb_printf(
		        b,
		        "],\"issues_total\":%" PRIu64 ",\"first_line\":%" PRIu64
		        ",\"last_line\":%" PRIu64 ",\"batch_id\":",
		        (uint64_t)m->niss + extra, m->first_line, m->last_line);
		jw_u64_or_null(b, batch_id);
		sb_puts(b, "}\n");
	} else if (!success) {
		if (m->progress)
			imp_progress(m, 1);
		sb_printf(b,
		          "batch %" PRIu64 " %s (lines %" PRIu64 "-%" PRIu64
		          ", %" PRIu64 " records): %" PRIu64 " issue%s\n",
		          m->nbatch, m->dry ? "would fail" : "FAILED",
		          m->first_line, m->last_line, nrec,
		          (uint64_t)m->niss + extra,
		          m->niss + extra == 1 ? "" : "s");
		(void)error;
		for (size_t i = 0; i < m->niss && i < HUMAN_ISSUES; i++) {
			imp_issue_fmt(m, b, &m->iss[i], 0);
			sb_putc(b, '\n');
		}
		if (m->niss > HUMAN_ISSUES)
			sb_printf(b, "  ... and %zu more (see --json)\n",
			          m->niss - HUMAN_ISSUES);
	} else if (batch_id) {
		imp_committed_line(m, batch_id, nrec, 0);
	}
	if (b->len) {
		sb_flush(b, stdout);
		fflush(stdout);
	}
}

/* ---- rejects ------------------------------------------------------------- */

/*
 * One line that was not committed, verbatim, with why:
 *   {"file": F, "line": N, "reasons": [REASON...], "record": LINE}
 * LINE is the line itself when it is JSON; otherwise "raw": true comes
 * before it and it is the line's text as a JSON string (null for a line
 * over the length limit, whose bytes were not kept).
 */
static void reject_line(imp *m, const line_rec *l, const issue *rs, size_t n,
                        const issue *batch_reason)
{
	sbuf *b = &m->rejbuf;
	sb_puts(b, "{\"file\":");
	jw_text(b, m->file);
	sb_printf(b, ",\"line\":%" PRIu64 ",\"reasons\":[", l->line);
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_putc(b, ',');
		imp_issue_fmt(m, b, &rs[i], 1);
	}
	if (!n && batch_reason)
		imp_issue_fmt(m, b, batch_reason, 1);
	sb_puts(b, "],");
	if (l->flags & L_TOOLONG)
		sb_puts(b, "\"raw\":true,\"record\":null");
	else if (l->flags & L_NOTJSON) {
		sb_puts(b, "\"raw\":true,\"record\":");
		jw_bytes(b, m->raw.p + l->off, l->len);
	} else {
		sb_puts(b, "\"record\":");
		sb_put(b, m->raw.p + l->off, l->len);
	}
	sb_puts(b, "}\n");
	if (b->len > (1u << 16))
		sb_flush(b, m->rej);
}

/* Every set-aside line of the batch, with its reasons (rs sorted by line,
 * for each line a run of entries); lines without one get batch_reason. */
void imp_write_rejects(imp *m, const issue *rs, size_t n,
                       const issue *batch_reason)
{
	size_t r = 0;
	if (!m->rej)
		return;
	for (size_t i = 0; i < m->nln; i++) {
		const line_rec *l = &m->ln[i];
		size_t r0;
		while (r < n && rs[r].line && rs[r].line < l->line)
			r++;
		r0 = r;
		while (r < n && rs[r].line == l->line)
			r++;
		if (l->flags & L_ASIDE)
			reject_line(m, l, rs + r0, r - r0, batch_reason);
	}
}

static void summary_json(imp *m, double el, int stopped, int interrupted)
{
	uint64_t recs = m->rec_ok + m->rec_failed;
	double rate = el > 0 ? (double)recs / el : 0;
	int rec_mode = m->on_error == ONERR_RECORD;
	sbuf *b = &m->out;
	sb_printf(b,
	          "{\"summary\":true,\"dry_run\":%s,\"batches\":%" PRIu64
	          ",\"batches_committed\":%" PRIu64
	          ",\"batches_failed\":%" PRIu64 ",\"records\":%" PRIu64
	          ",\"records_committed\":%" PRIu64
	          ",\"records_failed\":%" PRIu64 ",\"lines\":%" PRIu64
	          ",\"issues\":{",
	          m->dry ? "true" : "false", m->nbatch, m->ok, m->failed, recs,
	          m->rec_ok, m->rec_failed, m->lines + m->blank);
	int first = 1;
	for (size_t i = 0; i < NKINDS; i++)
		if (m->kinds[i]) {
			sb_printf(b, "%s\"%s\":%" PRIu64, first ? "" : ",",
			          kind_names[i], m->kinds[i]);
			first = 0;
		}
	sb_printf(b, "},\"issues_total\":%" PRIu64 ",\"elapsed_s\":",
	          m->issues_total);
	jw_double(b, (double)(int64_t)(el * 1000) / 1000);
	sb_puts(b, ",\"records_per_s\":");
	jw_u64(b, (uint64_t)rate);
	sb_printf(b,
	          ",\"stopped\":%s,\"on_error\":\"%s\","
	          "\"records_set_aside\":%" PRIu64 ",\"dependents\":%" PRIu64
	          ",\"batches_partial\":%" PRIu64 ",\"run\":",
	          stopped ? "true" : "false", rec_mode ? "record" : "batch",
	          m->rec_failed, m->dependents, m->partial);
	jw_u64_or_null(b, m->run.id);
	sb_puts(b, ",\"run_batches\":[");
	for (size_t i = 0; i < m->run.nbatches; i++)
		sb_printf(b, "%s%" PRIu64, i ? "," : "", m->run.batches[i]);
	sb_puts(b, "],\"runs_table_batch\":");
	jw_u64_or_null(b, m->run.table_batch);
	sb_puts(b, ",\"resumed_at\":");
	if (m->run.resumed)
		jw_u64(b, m->run.prior_first);
	else
		sb_puts(b, "null");
	sb_printf(b, ",\"interrupted\":%s,\"resume_line\":",
	          interrupted ? "true" : "false");
	if (interrupted || stopped)
		jw_u64(b, m->run.id ? m->run.cov_line : 1);
	else
		sb_puts(b, "null");
	sb_puts(b, "}\n");
	sb_flush(b, stdout);
}

/* The run's lines of the text imp_summary, and where to resume. */
static void summary_run(imp *m, sbuf *b, uint64_t recs, int stopped,
                        int interrupted)
{
	if (m->run.table_batch)
		sb_printf(b,
		          "created table %s (the import runs) in batch %" PRIu64
		          "\n",
		          RUNS_TABLE, m->run.table_batch);
	if (m->run.on && m->run.id) {
		sb_printf(b, "run %" PRIu64 ": %s", m->run.id, m->file);
		if (m->run.resumed)
			sb_printf(b, " resumed at line %" PRIu64,
			          m->run.prior_first);
		if (m->run.nbatches) {
			sb_printf(b, ", batch%s ",
			          m->run.nbatches == 1 ? "" : "es");
			runs_ids(b, m->run.batches, m->run.nbatches);
		} else {
			sb_puts(b, ", no batch");
		}
		sb_printf(b, "%s; %s\n",
		          m->run.resumed ? " by this import" : "",
		          m->run.final_written ? "done"
		          : interrupted        ? "interrupted"
		                               : "stopped");
		if (m->run.resumed)
			sb_printf(b,
			          "run %" PRIu64 " in all: %" PRIu64
			          " records, %" PRIu64 " committed, %" PRIu64
			          " set aside\n",
			          m->run.id, m->run.prior_lines + recs,
			          m->run.prior_committed + m->rec_ok,
			          m->run.prior_aside + m->rec_failed);
	} else if (m->run.on) {
		sb_puts(b, "run not recorded: nothing was committed\n");
	}
	if (interrupted || stopped) {
		if (m->run.id)
			sb_printf(b,
			          "%s after line %" PRIu64
			          "; to go on from line %" PRIu64
			          ": logbook import %s %s --resume\n",
			          interrupted ? "interrupted" : "stopped",
			          m->run.cov_line - 1, m->run.cov_line, m->dir,
			          m->file);
		else if (!m->dry)
			sb_printf(b,
			          "%s before anything was committed: "
			          "import the file again to start over\n",
			          interrupted ? "interrupted" : "stopped");
	}
}

void imp_summary(imp *m, double el, int stopped, int interrupted)
{
	uint64_t recs = m->rec_ok + m->rec_failed;
	double rate = el > 0 ? (double)recs / el : 0;
	int rec_mode = m->on_error == ONERR_RECORD;
	sbuf *b = &m->out;
	if (cli_json) {
		summary_json(m, el, stopped, interrupted);
		return;
	}
	sb_printf(b, "%s%" PRIu64 " batch%s: %" PRIu64 " %s, %" PRIu64 " %s",
	          m->dry ? "dry run: " : "", m->nbatch,
	          m->nbatch == 1 ? "" : "es", m->ok,
	          m->dry ? "would commit" : "committed", m->failed,
	          m->dry ? "would fail" : "failed");
	if (rec_mode)
		sb_printf(b, " (%" PRIu64 " committed with records set aside)",
		          m->partial);
	sb_putc(b, '\n');
	if (rec_mode)
		sb_printf(b,
		          "%" PRIu64 " records: %" PRIu64 " committed, %" PRIu64
		          " set aside (%" PRIu64 " with issues, %" PRIu64
		          " depending on them)\n",
		          recs, m->rec_ok, m->rec_failed,
		          m->rec_failed - m->dependents, m->dependents);
	else
		sb_printf(b,
		          "%" PRIu64 " records: %" PRIu64 " %s, %" PRIu64
		          " in failed batches\n",
		          recs, m->rec_ok, m->dry ? "valid" : "committed",
		          m->rec_failed);
	if (m->issues_total) {
		int first = 1;
		sb_printf(b, "%" PRIu64 " issue%s:", m->issues_total,
		          m->issues_total == 1 ? "" : "s");
		for (size_t i = 0; i < NKINDS; i++)
			if (m->kinds[i]) {
				sb_printf(b, "%s %s %" PRIu64, first ? "" : ",",
				          kind_names[i], m->kinds[i]);
				first = 0;
			}
		sb_putc(b, '\n');
	}
	sb_printf(b, "elapsed %.2f s, %.0f records/s\n", el, rate);
	if (m->dry)
		sb_puts(b, "nothing was committed (dry run)\n");
	summary_run(m, b, recs, stopped, interrupted);
	sb_flush(b, stdout);
}
