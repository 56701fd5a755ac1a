/* SPDX-License-Identifier: MIT */
/*
 * import_record.c: --on-error record (keys and lines set aside) (import.h).
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

/* ---- keys set aside (--on-error record) ---------------------------------- */

static akey *aside_find(imp *m, const cli_table *t, const void *k, size_t kl)
{
	uint64_t i;
	if (!m->nak)
		return NULL;
	i = imp_kmap_get(m, &m->aidx, t, k, kl);
	return i ? &m->ak[i - 1] : NULL;
}

/*
 * Remember that key k of t was set aside at `line`. An entry not yet
 * written to a run record is updated in place; else a new one is added,
 * so that the next record lists it (a resumed run reads them back).
 */
void imp_aside_add(imp *m, cli_table *t, const void *k, size_t kl,
                   uint64_t line)
{
	akey *a = aside_find(m, t, k, kl);
	if (a && (size_t)(a - m->ak) >= m->ak_recorded) {
		a->line = line;
		return;
	}
	if (m->nak == m->capak) {
		m->capak = m->capak ? m->capak * 2 : 64;
		m->ak = cli_xrealloc(m->ak, m->capak * sizeof *m->ak);
	}
	a = &m->ak[m->nak++];
	a->t = t;
	a->koff = m->akeys.len;
	a->klen = kl;
	a->line = line;
	sb_put(&m->akeys, k, kl);
	/* the newest entry of a key wins */
	imp_kmap_put(m, &m->aidx, t, k, kl, m->nak);
}

/* A reason why kept line li is set aside. */
static void add_reason(imp *m, size_t li, const char *kind, const char *table,
                       const void *key, size_t klen, const char *field,
                       const char *msg, uint64_t dep)
{
	if (m->nrs == m->caprs) {
		m->caprs = m->caprs ? m->caprs * 2 : 16;
		m->rs = cli_xrealloc(m->rs, m->caprs * sizeof *m->rs);
	}
	imp_issue_set(&m->rs[m->nrs++], m->ln[li].line, kind, table, key, klen,
	              field, msg, dep);
	m->ln[li].nreasons++;
	m->ln[li].nown += !dep;
}

/* Set kept line li aside; 1 if it was not already. In record mode the key
 * its put would have written is remembered for the rest of the run. */
static int set_aside(imp *m, size_t li)
{
	line_rec *l = &m->ln[li];
	if (l->flags & L_ASIDE)
		return 0;
	l->flags |= L_ASIDE;
	m->b_aside++;
	if (m->on_error == ONERR_RECORD && l->op) {
		const op_rec *o = &m->ops[l->op - 1];
		if (!o->del)
			imp_aside_add(m, o->t, m->keys.p + o->koff, o->klen,
			              l->line);
	}
	return 1;
}

/* ---- --on-error record ----------------------------------------------------
 */

/*
 * An index of the batch's ops by (table, key): slot -> the newest op of a
 * key (index + 1), next[i] -> the op of the same key before op i. Only the
 * ops of lines not set aside are in it.
 */
typedef struct opidx {
	lb_hset slot;
	size_t *next;
} opidx;

static void opidx_build(imp *m, opidx *x)
{
	lb__hset_init(&x->slot);
	x->next = cli_xmalloc((m->nops + 1) * sizeof *x->next);
	for (size_t i = 0; i < m->nops; i++) {
		const op_rec *o = &m->ops[i];
		x->next[i] = 0;
		if (m->ln[o->li].flags & L_ASIDE)
			continue;
		x->next[i] = imp_kmap_put(m, &x->slot, o->t,
		                          m->keys.p + o->koff, o->klen, i + 1);
	}
}

/* The newest op of (t, key), index + 1, or 0. */
static size_t opidx_find(imp *m, opidx *x, const cli_table *t, const void *k,
                         size_t kl)
{
	return (size_t)imp_kmap_get(m, &x->slot, t, k, kl);
}

static void opidx_free(opidx *x)
{
	lb__hset_free(&x->slot);
	free(x->next);
}

/* A dangling reference of kept line li: a dependency when the key it
 * names was set aside in this run, else a foreign key of its own.
 * lib_msg: the library's message, if it found it. */
void imp_dangling(imp *m, size_t li, const ref_rec *r, const char *lib_msg)
{
	const akey *a = aside_find(m, r->ref, m->keys.p + r->roff, r->rlen);
	char msg[1400];
	sbuf k, rk;
	sb_init(&k);
	sb_init(&rk);
	cli_key_human(&k, m->keys.p + r->koff, r->klen);
	cli_key_human(&rk, m->keys.p + r->roff, r->rlen);
	if (a) {
		snprintf(msg, sizeof msg,
		         "%s '%s': %s '%s' names the record of line %" PRIu64
		         ", which was set aside",
		         r->t->name, sb_str(&k), r->field, sb_str(&rk),
		         a->line);
		add_reason(m, li, KIND_DEP, r->t->name, m->keys.p + r->koff,
		           r->klen, r->field, msg, a->line);
	} else {
		if (!lib_msg) {
			snprintf(msg, sizeof msg,
			         "%s '%s': %s '%s' names no key of %s",
			         r->t->name, sb_str(&k), r->field, sb_str(&rk),
			         r->ref->name);
			lib_msg = msg;
		}
		add_reason(m, li, "foreign_key", r->t->name,
		           m->keys.p + r->koff, r->klen, r->field, lib_msg, 0);
	}
	sb_free(&k);
	sb_free(&rk);
}

/* References of the batch's applied puts that name no key in the batch's
 * view: every one (all), or only those naming a key set aside in this run
 * (cheap: a hash lookup each; the library checks the rest at commit).
 * Returns the lines newly set aside. */
static size_t refs_record(imp *m, int all)
{
	size_t found = 0;
	for (size_t i = 0; i < m->nrefs; i++) {
		const ref_rec *r = &m->refs[i];
		size_t li = imp_li_of(m, r->line);
		const void *v;
		size_t vl;
		if (li == m->nln)
			continue;
		if (r->refused) {
			/* set aside already: does it also depend on a
			 * record set aside? */
			if (aside_find(m, r->ref, m->keys.p + r->roff,
			               r->rlen) &&
			    lb_batch_get(m->b, r->ref->name,
			                 m->keys.p + r->roff, r->rlen, &v,
			                 &vl) != 0)
				imp_dangling(m, li, r, NULL);
			continue;
		}
		if (m->ln[li].flags & L_ASIDE)
			continue;
		if (!all &&
		    !aside_find(m, r->ref, m->keys.p + r->roff, r->rlen))
			continue;
		if (lb_batch_get(m->b, r->ref->name, m->keys.p + r->roff,
		                 r->rlen, &v, &vl) == 0)
			continue;
		imp_dangling(m, li, r, NULL);
		found += set_aside(m, li);
	}
	return found;
}

/* The library's issues of a batch it refused at commit with no op
 * refused: each traced to the newest op of its key (foreign keys, a delete
 * of a referenced key). Returns the lines newly set aside. */
static size_t commit_issues(imp *m, const lb_result *res)
{
	size_t found = 0;
	opidx x;
	opidx_build(m, &x);
	for (size_t i = 0; i < res->nissues; i++) {
		const lb_issue *is = &res->issues[i];
		cli_table *t =
		        is->table ? cli_catalog_find(&m->cat, is->table) : NULL;
		size_t oi = t ? opidx_find(m, &x, t, is->key, is->klen) : 0;
		size_t li;
		const ref_rec *r = NULL;
		if (!oi)
			continue;
		li = m->ops[oi - 1].li;
		if (is->kind == LB_ISSUE_FOREIGN_KEY && is->field)
			for (size_t j = 0; j < m->nrefs && !r; j++)
				if (m->refs[j].line == m->ln[li].line &&
				    !strcmp(m->refs[j].field, is->field))
					r = &m->refs[j];
		if (r)
			imp_dangling(m, li, r, is->message);
		else
			add_reason(m, li, cli_issue_kind(is->kind), is->table,
			           is->key, is->klen, is->field,
			           is->message ? is->message : "", 0);
		found += set_aside(m, li);
	}
	opidx_free(&x);
	return found;
}

/* The library's issues of refused ops (from committing the poisoned
 * batch): to every refused op of the same key; refused ops left without
 * one get what the library said when it refused them. */
static void refusal_reasons(imp *m, const lb_result *res)
{
	for (size_t i = 0; res && i < res->nissues; i++) {
		const lb_issue *is = &res->issues[i];
		if (is->kind == LB_ISSUE_FOREIGN_KEY)
			continue; /* the tool's own check found those */
		for (size_t j = 0; j < m->nops; j++) {
			const op_rec *o = &m->ops[j];
			if (!o->refused || !is->table ||
			    strcmp(o->t->name, is->table) ||
			    o->klen != is->klen ||
			    memcmp(m->keys.p + o->koff, is->key, o->klen))
				continue;
			add_reason(m, o->li, cli_issue_kind(is->kind),
			           is->table, is->key, is->klen, is->field,
			           is->message ? is->message : "", 0);
		}
	}
	for (size_t j = 0; j < m->nops; j++) {
		const op_rec *o = &m->ops[j];
		if (o->refused && !m->ln[o->li].nown)
			add_reason(m, o->li, o->ekind ? o->ekind : "format",
			           o->t->name, m->keys.p + o->koff, o->klen,
			           NULL, o->emsg ? o->emsg : "refused", 0);
	}
}

/* Set every line still in the batch aside, for `why`. */
static void aside_rest(imp *m, const char *why)
{
	for (size_t i = 0; i < m->nln; i++)
		if (!(m->ln[i].flags & L_ASIDE)) {
			add_reason(m, i, KIND_BATCH, NULL, NULL, 0, NULL, why,
			           0);
			set_aside(m, i);
		}
}

#define RECORD_ATTEMPTS 8

static void report_record(imp *m, uint64_t batch_id, unsigned attempts)
{
	sbuf *b = &m->out;
	uint64_t committed = m->brecs - m->b_aside;
	if (cli_json) {
		sb_printf(b,
		          "{\"batch\":%" PRIu64
		          ",\"success\":%s,\"records\":%" PRIu64
		          ",\"committed\":%" PRIu64 ",\"set_aside\":%" PRIu64
		          ",\"error\":%s,\"issues\":[",
		          m->nbatch, batch_id ? "true" : "false", m->brecs,
		          committed, m->b_aside,
		          m->b_aside ? "\"validation\"" : "null");
		for (size_t i = 0; i < m->nrs; i++) {
			if (i)
				sb_putc(b, ',');
			imp_issue_fmt(m, b, &m->rs[i], 0);
		}
		sb_printf(b,
		          "],\"issues_total\":%zu,\"first_line\":%" PRIu64
		          ",\"last_line\":%" PRIu64 ",\"attempts\":%u"
		          ",\"batch_id\":",
		          m->nrs, m->first_line, m->last_line, attempts);
		jw_u64_or_null(b, batch_id);
		sb_puts(b, "}\n");
	} else if (batch_id || m->b_aside) {
		if (m->progress)
			imp_progress(m, 1);
		if (batch_id)
			imp_committed_line(m, batch_id, committed, m->b_aside);
		else
			sb_printf(b,
			          "batch %" PRIu64 " (lines %" PRIu64
			          "-%" PRIu64 "): nothing committed, %" PRIu64
			          " set aside\n",
			          m->nbatch, m->first_line, m->last_line,
			          m->b_aside);
		for (size_t i = 0; i < m->nrs && i < HUMAN_ISSUES; i++) {
			imp_issue_fmt(m, b, &m->rs[i], 0);
			sb_putc(b, '\n');
		}
		if (m->nrs > HUMAN_ISSUES)
			sb_printf(b, "  ... and %zu more (see --json)\n",
			          m->nrs - HUMAN_ISSUES);
	}
	if (b->len) {
		sb_flush(b, stdout);
		fflush(stdout);
	}
}

/* One round's lines to set aside: those with the tool's own issues, the
 * ops the library refused, references to keys that are not there.
 * Returns how many were newly set aside. */
static size_t mark_aside(imp *m, int problem)
{
	size_t found = 0;
	for (size_t i = 0; i < m->niss; i++) {
		issue *is = &m->iss[i];
		size_t li = imp_li_of(m, is->line);
		if (li == m->nln)
			continue;
		add_reason(m, li, is->kind, is->table, is->key, is->klen,
		           is->field, is->msg, 0);
		found += set_aside(m, li);
	}
	imp_clear_issues(m);
	for (size_t i = 0; i < m->nops; i++)
		if (m->ops[i].refused)
			found += set_aside(m, m->ops[i].li);
	if (problem || m->nak)
		found += refs_record(m, problem || found);
	return found;
}

/* Commit what is left of the batch. 0 with *batch_id set, or 0 with the
 * lines the library refused set aside (*batch_id 0), or an exit code. */
static int commit_round(imp *m, int final, uint64_t *batch_id)
{
	lb_result res;
	size_t found;
	int rc;
	if ((rc = imp_ensure_table(m)) != 0)
		return rc;
	if (m->run.on &&
	    (rc = imp_run_put(m, final, m->brecs, m->brecs - m->b_aside,
	                      m->b_aside, m->last_line, m->b_end_off)) != 0)
		return rc;
	memset(&res, 0, sizeof res);
	rc = lb_batch_commit(m->b, &res);
	m->b = NULL;
	if (rc == 0) {
		*batch_id = res.batch_id;
		lb_result_free(&res);
		if (m->run.on)
			imp_run_committed(m, *batch_id, final, m->last_line);
		return 0;
	}
	if (rc != LB_EVALIDATION) {
		lb_result_free(&res);
		cli_lberr(rc, "%s: cannot commit lines %" PRIu64 "-%" PRIu64,
		          m->file, m->first_line, m->last_line);
		return CLI_FAIL;
	}
	found = commit_issues(m, &res);
	if (!found) {
		char why[600];
		snprintf(why, sizeof why,
		         "the batch was refused and the tool could not tell "
		         "which records: %s",
		         res.nissues && res.issues[0].message
		                 ? res.issues[0].message
		                 : "validation failed");
		aside_rest(m, why);
	}
	lb_result_free(&res);
	return 0;
}

/* An op was refused: committing writes nothing and lists the issues,
 * whose lines are set aside. 0 or an exit code. */
static int refused_round(imp *m)
{
	lb_result res;
	int rc;
	memset(&res, 0, sizeof res);
	rc = lb_batch_commit(m->b, &res);
	m->b = NULL;
	if (rc == 0) {
		lb_result_free(&res);
		return cli_err("lines %" PRIu64 "-%" PRIu64
		               ": the library committed a batch although an "
		               "op was refused",
		               m->first_line, m->last_line);
	}
	if (rc != LB_EVALIDATION) {
		lb_result_free(&res);
		cli_lberr(rc, "%s: lines %" PRIu64 "-%" PRIu64, m->file,
		          m->first_line, m->last_line);
		return CLI_FAIL;
	}
	refusal_reasons(m, &res);
	lb_result_free(&res);
	return 0;
}

/* Record mode: count the batch (committed or not), its set-aside lines by
 * kind, and those set aside only for what they depend on. */
static void tally_record(imp *m, uint64_t batch_id)
{
	if (m->nrs > 1)
		qsort(m->rs, m->nrs, sizeof *m->rs, imp_cmp_issue_stable);
	if (batch_id) {
		m->ok++;
		m->partial += m->b_aside != 0;
	} else {
		m->failed++;
	}
	m->rec_ok += m->brecs - m->b_aside;
	m->rec_failed += m->b_aside;
	for (size_t i = 0; i < m->nrs; i++)
		imp_count_kind(m, m->rs[i].kind);
	m->issues_total += m->nrs;
	for (size_t j = 0; j < m->nrs;) {
		size_t k = j;
		int own = 0;
		while (k < m->nrs && m->rs[k].line == m->rs[j].line)
			own |= !m->rs[k++].dep;
		m->dependents += !own;
		j = k;
	}
}

/*
 * --on-error record: commit the batch's valid records, set the others
 * aside. Each round finds lines to set aside: the tool's own issues, the
 * ops the library refused, references that dangle (a dependency when the
 * key they name was set aside in this run, in this batch or an earlier
 * one), and what the library refuses at commit; the batch is then written
 * again without them, until it commits or nothing is left (bounded: after
 * RECORD_ATTEMPTS rounds what is left is set aside as a whole).
 */
int imp_end_batch_record(imp *m, int final)
{
	uint64_t batch_id = 0;
	unsigned attempts = 0;
	int rc;

	for (;;) {
		int problem = m->niss || m->engine_issue || attempts > 0;
		size_t found;
		attempts++;
		found = mark_aside(m, problem);
		if (!found && !m->engine_issue) {
			if ((rc = commit_round(m, final, &batch_id)) != 0)
				return rc;
			if (batch_id)
				break;
		} else if (m->engine_issue) {
			if ((rc = refused_round(m)) != 0)
				return rc;
		} else {
			lb_batch_abort(m->b);
			m->b = NULL;
		}
		if (m->b_aside == m->brecs)
			break;
		if (attempts == RECORD_ATTEMPTS) {
			aside_rest(m, "set aside with the rest of its batch: "
			              "the batch still failed after several "
			              "rounds");
			break;
		}
		if ((rc = imp_begin(m, m->first_line)) != 0 ||
		    (rc = imp_replay(m)) != 0)
			return rc;
	}
	tally_record(m, batch_id);
	if (!batch_id && m->run.on)
		imp_run_pending(m, m->brecs, m->brecs);
	report_record(m, batch_id, attempts);
	imp_write_rejects(m, m->rs, m->nrs, NULL);
	return 0;
}
