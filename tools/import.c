/* SPDX-License-Identifier: MIT */
/*
 * import.c: `logbook import`, JSON lines in validated batches. Its parts
 * are listed in import.h; this file holds the batches and their end, the
 * options and the input loop.
 *
 * Invariant: every non-blank input line is exactly one record of exactly
 * one batch, whatever is wrong with it. A line the tool cannot turn into an
 * op (bad JSON, not an object, no key, unknown table, a value that cannot be
 * converted, a line over LINE_MAX_BYTES) becomes an issue of its batch, and
 * a batch with any issue writes nothing. So the records of committed batches
 * plus the records of failed batches always add up to the input lines, and
 * the committed data is the input minus the failed batches.
 *
 * Commit decides for batches whose ops all went through: lb_batch_commit()
 * validates foreign keys and writes nothing if any op or check found an
 * issue. When the tool itself found an issue it must not commit (the other
 * ops would go in), so it aborts. If the library had refused an op,
 * committing is safe (it writes nothing) and returns the library's issues,
 * so the tool does that to report them all. Since the library may skip its
 * foreign-key checks once an op was refused, the tool checks the references
 * of a failing batch itself first (lb_batch_get() on the open batch), so a
 * report lists every dangling reference either way.
 *
 * Dry run: nothing may be committed, but later batches must see earlier
 * ones (witnesses of a hearing imported two batches before are fine). So a
 * dry run holds one batch open for the whole input: each input batch's ops
 * go into it; op-time issues (schema, duplicate, missing) come from the
 * library, classified by looking the key up before the op; foreign keys are
 * checked by the tool at the end of each input batch with lb_batch_get(),
 * which sees the state after the batch's changes, as commit would. A failed
 * input batch is then undone inside the open batch from the before-images
 * saved before each op, and the open batch is aborted at the end. What a
 * dry run cannot see: deletes of keys that other records still reference
 * (the reverse index is not public).
 *
 * --on-error record: a batch commits its valid records and sets the others
 * aside. The batch's lines are kept (m->ln, m->raw); each round marks lines
 * to set aside (the tool's issues, the ops the library refused, references
 * that dangle in the batch's view, what the commit refuses), then the batch
 * is written again from the kept lines without them, until it commits
 * (imp_end_batch_record()). A put set aside leaves its key in a map for the
 * whole run (m->ak): a later reference that dangles and names such a key
 * is a dependency of that line, not an issue of its own; on a clean batch
 * the map costs one hash lookup per reference, and nothing while empty.
 *
 * Rejects (--reject-file) are the kept lines not committed, verbatim, with
 * their reasons. Runs (runs.h): every commit also puts the run's record
 * into the same batch, so the resume point is exact after any crash; an
 * ended batch that committed nothing is covered by the next record, and a
 * run whose last batches committed nothing ends with a batch holding only
 * its record (a batch ends as soon as its last line is read, so a batch
 * that ends a file says so itself). SIGINT/SIGTERM are seen between lines:
 * the part of a batch read so far is dropped (so a resumed import cuts its
 * batches where an uninterrupted one would), and the summary names the
 * line to go on from.
 *
 * Speed: lines are read with read(2) into a large buffer and parsed in place
 * (no copy unless a line spans two reads) by the fast path of fastjson.c,
 * straight into msgpack; jansson only sees the lines the fast path declines
 * (and every line of a dry run). The msgpack buffer, key arena and op arrays
 * are reused across batches: no allocation per line on the fast path.
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

const char *const KIND_PARSE = "parse";
const char *const KIND_KEY = "key";
const char *const KIND_TABLE = "table";
const char *const KIND_VALUE = "value";
const char *const KIND_DEP = "dependency";
const char *const KIND_BATCH = "batch";

const char *const kind_names[10] = {
        "format", "duplicate", "missing", "foreign_key", "conflict",
        "parse",  "key",       "table",   "value",       "dependency"};

/* ---- maps keyed by (table, key), on the shared hash set (wal/hset.h) ----- */

/* Set m->tk to the map key of key k of table t: the table's index in the
 * catalog, 2 bytes, then the key. */
static void tk_set(imp *m, const cli_table *t, const void *k, size_t kl)
{
	size_t ti = (size_t)(t - m->cat.t);
	m->tk.len = 0;
	sb_putc(&m->tk, (char)(ti >> 8));
	sb_putc(&m->tk, (char)ti);
	sb_put(&m->tk, k, kl);
}

/* The value of (t, k) in map h, 0 if absent. */
uint64_t imp_kmap_get(imp *m, const lb_hset *h, const cli_table *t,
                      const void *k, size_t kl)
{
	const lb_hent *e;
	tk_set(m, t, k, kl);
	e = lb__hset_find(h, m->tk.p, m->tk.len);
	return e ? e->v[0] : 0;
}

/* Set (t, k) to v (non-zero) in map h; returns its value before (0 if
 * absent). Out of memory ends the tool, as cli_xmalloc() does. */
uint64_t imp_kmap_put(imp *m, lb_hset *h, const cli_table *t, const void *k,
                      size_t kl, uint64_t v)
{
	lb_hent *e;
	int added;
	uint64_t old;
	tk_set(m, t, k, kl);
	if (lb__hset_get(h, m->tk.p, m->tk.len, &added, &e) < 0) {
		fputs("logbook: out of memory\n", stderr);
		exit(CLI_FAIL);
	}
	old = e->v[0];
	e->v[0] = v;
	return old;
}

void imp_count_kind(imp *m, const char *kind)
{
	for (size_t i = 0; i < NKINDS; i++)
		if (!strcmp(kind_names[i], kind)) {
			m->kinds[i]++;
			return;
		}
}

void imp_issue_set(issue *is, uint64_t line, const char *kind,
                   const char *table, const void *key, size_t klen,
                   const char *field, const char *msg, uint64_t dep)
{
	is->line = line;
	is->kind = kind;
	is->table = table ? cli_xstrdup(table) : NULL;
	is->key = NULL;
	is->klen = 0;
	if (key && klen) {
		is->key = cli_xmalloc(klen);
		memcpy(is->key, key, klen);
		is->klen = klen;
	}
	is->field = field ? cli_xstrdup(field) : NULL;
	is->msg = cli_xstrdup(msg);
	is->dep = dep;
}

void imp_add_issue(imp *m, uint64_t line, const char *kind, const char *table,
                   const void *key, size_t klen, const char *field,
                   const char *msg)
{
	if (m->niss == m->capiss) {
		m->capiss = m->capiss ? m->capiss * 2 : 16;
		m->iss = cli_xrealloc(m->iss, m->capiss * sizeof *m->iss);
	}
	imp_issue_set(&m->iss[m->niss++], line, kind, table, key, klen, field,
	              msg, 0);
}

static void issue_free(issue *is)
{
	free(is->table);
	free(is->key);
	free(is->field);
	free(is->msg);
}

void imp_clear_issues(imp *m)
{
	for (size_t i = 0; i < m->niss; i++)
		issue_free(&m->iss[i]);
	m->niss = 0;
}

int imp_cmp_issue(const void *a, const void *b)
{
	const issue *x = a, *y = b;
	/* Issues without a line (not traced to an op) go last. */
	uint64_t lx = x->line ? x->line : UINT64_MAX;
	uint64_t ly = y->line ? y->line : UINT64_MAX;
	return lx < ly ? -1 : lx > ly ? 1 : 0;
}

/* ---- end of a batch ------------------------------------------------------ */

/* Foreign keys of the applied puts, against the batch's view. */
static void check_refs(imp *m)
{
	char msg[1200];
	for (size_t i = 0; i < m->nrefs; i++) {
		const ref_rec *r = &m->refs[i];
		const void *v;
		size_t vl;
		sbuf k, rk;
		if (lb_batch_get(m->b, r->ref->name, m->keys.p + r->roff,
		                 r->rlen, &v, &vl) == 0)
			continue;
		sb_init(&k);
		sb_init(&rk);
		cli_key_human(&k, m->keys.p + r->koff, r->klen);
		cli_key_human(&rk, m->keys.p + r->roff, r->rlen);
		snprintf(msg, sizeof msg, "%s '%s': %s '%s' names no key of %s",
		         r->t->name, sb_str(&k), r->field, sb_str(&rk),
		         r->ref->name);
		sb_free(&k);
		sb_free(&rk);
		imp_add_issue(m, r->line, "foreign_key", r->t->name,
		              m->keys.p + r->koff, r->klen, r->field, msg);
	}
}

/* Dry run: take back the applied ops of a failed batch, newest first. */
static int undo(imp *m)
{
	for (size_t i = m->nops; i-- > 0;) {
		const op_rec *o = &m->ops[i];
		int rc;
		if (!o->applied)
			continue;
		if (o->existed)
			rc = lb_put(m->b, o->t->name, m->keys.p + o->koff,
			            o->klen, m->before.p + o->boff, o->blen);
		else
			rc = lb_delete(m->b, o->t->name, m->keys.p + o->koff,
			               o->klen);
		if (rc < 0)
			return cli_lberr(
			        rc, "dry run: cannot take back line %" PRIu64,
			        o->line);
	}
	return 0;
}

/* Copy the library's issues, traced back to input lines by table and key
 * (the last op of that key: later writes win at commit). */
static void take_result(imp *m, const lb_result *res)
{
	lb_hset last; /* (table, key) -> its last op + 1 */
	lb__hset_init(&last);
	for (size_t i = 0; i < m->nops; i++) {
		const op_rec *o = &m->ops[i];
		imp_kmap_put(m, &last, o->t, m->keys.p + o->koff, o->klen,
		             i + 1);
	}
	for (size_t i = 0; i < res->nissues; i++) {
		const lb_issue *is = &res->issues[i];
		cli_table *t =
		        is->table ? cli_catalog_find(&m->cat, is->table) : NULL;
		uint64_t op =
		        t ? imp_kmap_get(m, &last, t, is->key, is->klen) : 0;
		uint64_t line = op ? m->ops[op - 1].line : 0;
		imp_add_issue(m, line, cli_issue_kind(is->kind), is->table,
		              is->key, is->klen, is->field,
		              is->message ? is->message : "");
	}
	lb__hset_free(&last);
}

static void reset_batch(imp *m)
{
	for (size_t i = 0; i < m->nops; i++)
		free(m->ops[i].emsg);
	m->nops = 0;
	m->nrefs = 0;
	m->keys.len = 0;
	m->before.len = 0;
	m->engine_issue = 0;
	lb__hset_clear(&m->repeats);
	imp_clear_issues(m);
}

/* ---- the batch's lines --------------------------------------------------- */

static void keep_line(imp *m, uint64_t line, const char *p, size_t n,
                      int too_long)
{
	line_rec *l;
	if (m->nln == m->capln) {
		m->capln = m->capln ? m->capln * 2 : 1024;
		m->ln = cli_xrealloc(m->ln, m->capln * sizeof *m->ln);
	}
	m->cur_li = m->nln++;
	l = &m->ln[m->cur_li];
	l->line = line;
	l->off = m->raw.len;
	l->len = too_long ? 0 : n;
	l->flags = too_long ? L_TOOLONG | L_NOTJSON : 0;
	l->op = 0;
	l->nreasons = l->nown = 0;
	if (!too_long)
		sb_put(&m->raw, p, n);
}

/* The kept line numbered `line`, or m->nln. */
size_t imp_li_of(const imp *m, uint64_t line)
{
	size_t lo = 0, hi = m->nln;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->ln[mid].line < line)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->nln && m->ln[lo].line == line ? lo : m->nln;
}

static void clear_reasons(imp *m)
{
	for (size_t i = 0; i < m->nrs; i++)
		issue_free(&m->rs[i]);
	m->nrs = 0;
}

/* Write the batch again into a new library batch, without the lines set
 * aside (their ops, refs and issues are gone with the old one). */
int imp_replay(imp *m)
{
	int rc;
	reset_batch(m);
	for (size_t i = 0; i < m->nln; i++)
		m->ln[i].op = 0;
	for (size_t i = 0; i < m->nln; i++) {
		const line_rec *l = &m->ln[i];
		if (l->flags & L_ASIDE)
			continue;
		m->cur_li = i;
		rc = imp_do_line(m, l->line, m->raw.p + l->off, l->len,
		                 (l->flags & L_TOOLONG) != 0);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- ending a batch ------------------------------------------------------ */

int imp_cmp_issue_stable(const void *a, const void *b)
{
	const issue *x = a, *y = b;
	int c = imp_cmp_issue(a, b);
	if (c)
		return c;
	/* the library's issues of a line before the dependencies found */
	return (x->dep != 0) - (y->dep != 0);
}

/* Drop the library's foreign-key issues that repeat one the tool found
 * (issues [0, ncli) are the tool's). */
static void drop_dup_fk(imp *m, size_t ncli)
{
	size_t w = ncli;
	for (size_t i = ncli; i < m->niss; i++) {
		issue *is = &m->iss[i];
		int dup = 0;
		if (!strcmp(is->kind, "foreign_key"))
			for (size_t j = 0; j < ncli && !dup; j++) {
				const issue *c = &m->iss[j];
				dup = !strcmp(c->kind, "foreign_key") &&
				      c->line == is->line && c->field &&
				      is->field && !strcmp(c->field, is->field);
			}
		if (dup) {
			free(is->table);
			free(is->key);
			free(is->field);
			free(is->msg);
		} else {
			m->iss[w++] = *is;
		}
	}
	m->niss = w;
}

static void tally(imp *m, int success, uint64_t extra_total)
{
	if (success) {
		m->ok++;
		m->rec_ok += m->brecs;
	} else {
		m->failed++;
		m->rec_failed += m->brecs;
	}
	for (size_t i = 0; i < m->niss; i++)
		imp_count_kind(m, m->iss[i].kind);
	m->issues_total += m->niss + extra_total;
}

/* Batch mode: finish the current batch, commit it or report why not.
 * Returns 0, or an exit code that ends the import. */
static int end_batch_whole(imp *m, int final)
{
	uint64_t batch_id = 0, extra = 0;
	const char *error = NULL;
	int success = 0, rc = 0;
	size_t nfk = 0;
	lb_result res;

	memset(&res, 0, sizeof res);
	if (m->dry) {
		check_refs(m);
		success = m->niss == 0;
		if (!success && (rc = undo(m)) != 0)
			return rc;
	} else if (m->niss == 0 && !m->engine_issue) {
		/* the first commit of a run creates logbook.runs first */
		if ((rc = imp_ensure_table(m)) != 0)
			return rc;
		if (m->niss || m->engine_issue)
			return cli_err("lines %" PRIu64 "-%" PRIu64
			               ": written again, the batch no longer "
			               "validates; nothing of it committed",
			               m->first_line, m->last_line);
		if (m->run.on &&
		    (rc = imp_run_put(m, final, m->brecs, m->brecs, 0,
		                      m->last_line, m->b_end_off)) != 0)
			return rc;
		rc = lb_batch_commit(m->b, &res);
		m->b = NULL;
		if (rc == 0) {
			success = 1;
			batch_id = res.batch_id;
			if (m->run.on)
				imp_run_committed(m, batch_id, final,
				                  m->last_line);
		} else if (rc == LB_EVALIDATION) {
			take_result(m, &res);
			extra = res.nissues_total - res.nissues;
		} else {
			lb_result_free(&res);
			cli_lberr(rc,
			          "%s: cannot commit lines %" PRIu64
			          "-%" PRIu64,
			          m->file, m->first_line, m->last_line);
			return CLI_FAIL;
		}
	} else if (m->engine_issue) {
		/* The library refused an op, so commit writes nothing and
		 * lists its issues. It may skip the foreign-key checks once
		 * an op was refused, so check them here first (the batch's
		 * view is still open) and keep one issue per reference. */
		check_refs(m);
		nfk = m->niss;
		rc = lb_batch_commit(m->b, &res);
		m->b = NULL;
		if (rc == 0) {
			lb_result_free(&res);
			return cli_err("lines %" PRIu64 "-%" PRIu64
			               ": the library committed batch %" PRIu64
			               " although an op was refused",
			               m->first_line, m->last_line,
			               res.batch_id);
		}
		if (rc != LB_EVALIDATION) {
			lb_result_free(&res);
			cli_lberr(rc, "%s: lines %" PRIu64 "-%" PRIu64, m->file,
			          m->first_line, m->last_line);
			return CLI_FAIL;
		}
		take_result(m, &res);
		extra = res.nissues_total - res.nissues;
		drop_dup_fk(m, nfk);
	} else {
		check_refs(m);
		lb_batch_abort(m->b);
		m->b = NULL;
	}
	lb_result_free(&res);
	if (!success) {
		error = "validation";
		if (m->run.on)
			imp_run_pending(m, m->brecs, m->brecs);
	}
	tally(m, success, extra);
	imp_report_batch(m, success, error, batch_id, m->brecs, extra);
	if (!success && m->rej) {
		issue br;
		char msg[200];
		memset(&br, 0, sizeof br);
		snprintf(msg, sizeof msg,
		         "not committed: its batch (lines %" PRIu64 "-%" PRIu64
		         ") %s validation",
		         m->first_line, m->last_line,
		         m->dry ? "would fail" : "failed");
		br.kind = KIND_BATCH;
		br.msg = msg;
		for (size_t i = 0; i < m->nln; i++)
			m->ln[i].flags |= L_ASIDE;
		imp_write_rejects(m, m->iss, m->niss, &br);
	}
	m->b_aside = success ? 0 : m->brecs;
	return 0;
}

static int end_batch(imp *m, int final)
{
	int rc;
	m->nbatch++;
	if (m->on_error == ONERR_RECORD)
		rc = imp_end_batch_record(m, final);
	else
		rc = end_batch_whole(m, final);
	if (rc)
		return rc;
	m->run.end_line = m->last_line;
	m->run.end_off = m->b_end_off;
	reset_batch(m);
	clear_reasons(m);
	m->nln = 0;
	m->raw.len = 0;
	m->brecs = 0;
	return 0;
}

int imp_begin(imp *m, uint64_t line)
{
	char label[LB_LABEL_MAX + 1];
	int rc;
	if (m->label) {
		snprintf(label, sizeof label, "%s", m->label);
	} else if (m->dry) {
		snprintf(label, sizeof label, "dry run");
	} else {
		const char *base = strrchr(m->file, '/');
		base = base ? base + 1 : m->file;
		snprintf(label, sizeof label,
		         "import %.200s from line %" PRIu64, base, line);
	}
	rc = lb_batch_begin(m->db, label, &m->b);
	if (rc < 0)
		return cli_lberr(rc, "cannot begin a batch");
	return 0;
}

/* The options of `logbook import`, named (o[O_TABLE].val, ...). */
enum {
	O_TABLE,
	O_KEY,
	O_BATCH_SIZE,
	O_MODE,
	O_LABEL,
	O_STOP_ON_ERROR,
	O_DRY_RUN,
	O_NOSYNC,
	O_ON_ERROR,
	O_REJECT_FILE,
	O_FROM_REJECTS,
	O_RESUME,
	O_AGAIN,
	O_NO_WAIT,
	O_ALLOW_REPEATS,
	O_COUNT
};

/* A word option's value: *out = the index of val in words (n of them),
 * else a usage error naming them. */
static int pick(const char *opt, const char *val, const char *const *words,
                size_t n, int *out)
{
	sbuf b;
	int rc;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(val, words[i])) {
			*out = (int)i;
			return 0;
		}
	sb_init(&b);
	for (size_t i = 0; i < n; i++)
		sb_printf(&b, "%s%s",
		          i == 0       ? ""
		          : i == n - 1 ? " or "
		                       : ", ",
		          words[i]);
	rc = cli_usage("--%s: '%s' is not %s", opt, val, sb_str(&b));
	sb_free(&b);
	return rc;
}

/* Cross-option rules, once every option is read. */
static int check_opts(const imp *m, const char *input, int resume, int again)
{
	if (m->dry && m->on_error == ONERR_RECORD)
		return cli_usage("--dry-run works with --on-error batch only");
	if (m->dry && resume)
		return cli_usage("--dry-run and --resume exclude each other");
	if (resume && again)
		return cli_usage("--resume and --again exclude each other");
	if (resume && !strcmp(input, "-"))
		return cli_usage("--resume needs a file, not stdin");
	if (m->allow_repeats && m->mode != MODE_UPSERT)
		return cli_usage("--allow-repeats works with --mode upsert "
		                 "only");
	return 0;
}

static int parse_opts(imp *m, int argc, char **argv, const char **pos,
                      int *nosync, given *g, int *resume, int *again,
                      int *nowait)
{
	static const char *const modes[] = {"insert", "upsert", "update"};
	static const char *const on_error[] = {"batch", "record"};
	cli_opt o[O_COUNT] = {
	        [O_TABLE] = {"table", 1, NULL},
	        [O_KEY] = {"key", 1, NULL},
	        [O_BATCH_SIZE] = {"batch-size", 1, NULL},
	        [O_MODE] = {"mode", 1, NULL},
	        [O_LABEL] = {"label", 1, NULL},
	        [O_STOP_ON_ERROR] = {"stop-on-error", 0, NULL},
	        [O_DRY_RUN] = {"dry-run", 0, NULL},
	        [O_NOSYNC] = {"nosync", 0, NULL},
	        [O_ON_ERROR] = {"on-error", 1, NULL},
	        [O_REJECT_FILE] = {"reject-file", 1, NULL},
	        [O_FROM_REJECTS] = {"from-rejects", 0, NULL},
	        [O_RESUME] = {"resume", 0, NULL},
	        [O_AGAIN] = {"again", 0, NULL},
	        [O_NO_WAIT] = {"no-wait", 0, NULL},
	        [O_ALLOW_REPEATS] = {"allow-repeats", 0, NULL},
	};
	size_t np;
	int rc = cli_parse(argc, argv, o, O_COUNT, pos, 2, 2, &np);
	if (rc)
		return rc;
	g->table = o[O_TABLE].val;
	g->key = o[O_KEY].val;
	m->keyfield = g->key ? g->key : "id";
	if (!*m->keyfield)
		return cli_usage("--key: the field name is empty");
	m->batch_size = 1000;
	if (o[O_BATCH_SIZE].val &&
	    (rc = cli_u64("--batch-size", o[O_BATCH_SIZE].val, 1,
	                  BATCH_SIZE_MAX, &m->batch_size)))
		return rc;
	g->mode = o[O_MODE].val;
	m->mode = MODE_INSERT;
	if (g->mode && (rc = pick("mode", g->mode, modes, 3, &m->mode)))
		return rc;
	m->label = o[O_LABEL].val;
	if (m->label && strlen(m->label) > LB_LABEL_MAX)
		return cli_usage("--label: longer than %d bytes", LB_LABEL_MAX);
	m->stop = o[O_STOP_ON_ERROR].val != NULL;
	m->dry = o[O_DRY_RUN].val != NULL;
	*nosync = o[O_NOSYNC].val != NULL;
	g->on_error = o[O_ON_ERROR].val;
	m->on_error = ONERR_BATCH;
	if (g->on_error &&
	    (rc = pick("on-error", g->on_error, on_error, 2, &m->on_error)))
		return rc;
	m->reject_path = o[O_REJECT_FILE].val;
	if (m->reject_path && !*m->reject_path)
		return cli_usage("--reject-file: the file name is empty");
	m->from_rejects = o[O_FROM_REJECTS].val != NULL;
	*resume = o[O_RESUME].val != NULL;
	*again = o[O_AGAIN].val != NULL;
	*nowait = o[O_NO_WAIT].val != NULL;
	m->allow_repeats = o[O_ALLOW_REPEATS].val != NULL;
	return check_opts(m, pos[1], *resume, *again);
}

static void imp_free(imp *m)
{
	if (m->b)
		lb_batch_abort(m->b);
	m->b = NULL;
	reset_batch(m);
	clear_reasons(m);
	free(m->iss);
	free(m->rs);
	free(m->ops);
	free(m->refs);
	free(m->ln);
	free(m->ak);
	lb__hset_free(&m->aidx);
	lb__hset_free(&m->repeats);
	free(m->run.batches);
	sb_free(&m->akeys);
	sb_free(&m->raw);
	sb_free(&m->fr);
	sb_free(&m->rejbuf);
	sb_free(&m->keys);
	sb_free(&m->before);
	sb_free(&m->val);
	sb_free(&m->scratch);
	sb_free(&m->kbuf);
	sb_free(&m->out);
	sb_free(&m->tk);
	sb_free(&m->rd.line);
	free(m->rd.buf);
	msgpack_sbuffer_destroy(&m->mp);
	for (size_t i = 0; m->refs_of && i < m->cat.n; i++)
		free(m->refs_of[i]);
	free(m->refs_of);
	cli_catalog_free(&m->cat);
	if (m->rej)
		fclose(m->rej);
	if (m->db)
		lb_close(m->db);
	if (m->rd.fd > 0)
		close(m->rd.fd);
	if (m->run.lockfd >= 0)
		close(m->run.lockfd);
}

/* Open the input (a file, or stdin for "-") and note its size. */
static int open_input(imp *m, const char *path, int resume, struct stat *st)
{
	if (!strcmp(path, "-")) {
		m->rd.fd = 0;
		m->file = "stdin";
	} else {
		m->rd.fd = open(path, O_RDONLY);
		if (m->rd.fd < 0) {
			m->rd.fd = 0;
			return cli_err("%s: %s", path, strerror(errno));
		}
	}
	if (fstat(m->rd.fd, st) == 0 && S_ISREG(st->st_mode))
		m->in_size = (uint64_t)st->st_size;
	else if (fstat(m->rd.fd, st) == 0 && S_ISDIR(st->st_mode))
		return cli_err("%s: is a directory", path);
	if (resume && !m->in_size && !S_ISREG(st->st_mode))
		return cli_usage("--resume needs a regular file");
	return 0;
}

/* The content's identity, what a run is recognised by: its SHA-256. */
static int hash_input(imp *m, const struct stat *st)
{
	int h;
	if (!m->run.on || !S_ISREG(st->st_mode))
		return 0;
	h = runs_sha256(m->rd.fd, m->run.sha256, &m->run.size);
	if (h == 1) {
		cli_err("%s: interrupted; nothing written", m->file);
		return 130;
	}
	if (h < 0)
		return cli_err("%s: %s", m->file, strerror(errno));
	return 0;
}

/* Open the database and its catalog: per field, the table a ref names;
 * --table's table. */
static int open_db(imp *m, int nosync, const given *g)
{
	int rc = cli_open(m->dir, 0, nosync, &m->db);
	if (rc)
		return rc;
	rc = cli_catalog_load(m->db, &m->cat);
	if (rc < 0)
		return cli_lberr(rc, "%s: cannot list tables", m->dir);
	m->refs_of = cli_xmalloc((m->cat.n + 1) * sizeof *m->refs_of);
	for (size_t i = 0; i < m->cat.n; i++) {
		cli_table *t = &m->cat.t[i];
		m->refs_of[i] =
		        cli_xmalloc((t->nfields + 1) * sizeof *m->refs_of[i]);
		for (size_t f = 0; f < t->nfields; f++)
			m->refs_of[i][f] =
			        t->fields[f].ref
			                ? cli_catalog_find(&m->cat,
			                                   t->fields[f].ref)
			                : NULL;
	}
	if (g->table) {
		m->deftable = cli_catalog_find(&m->cat, g->table);
		if (!m->deftable)
			return cli_err("%s: no table '%s' (--table)", m->dir,
			               g->table);
	}
	return 0;
}

/* --reject-file: never the input itself. */
static int open_rejects(imp *m, const struct stat *in)
{
	struct stat rs;
	if (!m->reject_path)
		return 0;
	if (stat(m->reject_path, &rs) == 0 && rs.st_dev == in->st_dev &&
	    rs.st_ino == in->st_ino)
		return cli_usage("--reject-file: %s is the input file",
		                 m->reject_path);
	m->rej = fopen(m->reject_path, "w");
	if (!m->rej)
		return cli_err("%s: %s", m->reject_path, strerror(errno));
	return 0;
}

/*
 * One non-blank input line, numbered `line`: into the current batch (begun
 * here if need be), which ends once it holds --batch-size lines. Sets
 * m->stopped for --stop-on-error. Returns 0 or an exit code.
 */
static int one_line(imp *m, uint64_t line, const char *p, size_t n,
                    int too_long)
{
	char err[400];
	int fr_bad = 0, rc;
	if (!m->b && (rc = imp_begin(m, line)) != 0)
		return rc;
	if (m->brecs == 0) {
		m->first_line = line;
		m->b_aside = 0;
		m->keep = m->on_error == ONERR_RECORD || m->rej ||
		          (m->run.on && !m->run.table_ok);
	}
	m->last_line = line;
	m->brecs++;
	m->lines++;
	if (m->from_rejects && !too_long) {
		if (imp_from_reject(m, p, n, err, sizeof err) == 0) {
			p = m->fr.p;
			n = m->fr.len;
		} else {
			fr_bad = 1;
		}
	}
	if (m->keep)
		keep_line(m, line, p, n, too_long);
	if (fr_bad) {
		imp_add_issue(m, line, KIND_PARSE, NULL, NULL, 0, NULL, err);
		json_t *o =
		        m->keep ? cli_json_parse(p, n, err, sizeof err) : NULL;
		if (m->keep && !o)
			m->ln[m->cur_li].flags |= L_NOTJSON;
		json_decref(o);
	} else if ((rc = imp_do_line(m, line, p, n, too_long)) != 0) {
		return rc;
	}
	m->b_end_off = m->rd.consumed;
	if (m->brecs == m->batch_size) {
		/* input read to its end: the run ends with this batch (else,
		 * should no line follow, a batch holding only the run's
		 * record says so) */
		int last = imp_input_ends(&m->rd, m->in_size);
		if ((rc = end_batch(m, last)) != 0)
			return rc;
		if (m->stop && m->b_aside)
			m->stopped = 1;
	}
	return 0;
}

/*
 * Read the input to its end (or to Ctrl-C, or --stop-on-error), line after
 * line from *line + 1. A batch cut short by Ctrl-C is dropped whole, so
 * that a resumed import cuts its batches where an uninterrupted one would.
 */
static int read_input(imp *m, uint64_t *line)
{
	const char *p;
	size_t n;
	int r, rc, too_long, at_start = m->rd.consumed == 0;
	while ((r = imp_next_line(&m->rd, &p, &n, &too_long)) > 0) {
		++*line;
		/* a UTF-8 byte-order mark starting the input is no data */
		if (at_start && !too_long && n >= 3 &&
		    !memcmp(p, "\xef\xbb\xbf", 3)) {
			p += 3;
			n -= 3;
		}
		at_start = 0;
		if (!too_long && imp_blank(p, n)) {
			m->blank++;
			continue;
		}
		if (runs_stop) {
			m->interrupted = 1;
			break;
		}
		if ((rc = one_line(m, *line, p, n, too_long)) != 0)
			return rc;
		if (m->stopped)
			break;
		if ((*line & 1023) == 0)
			imp_progress(m, 0);
	}
	if (r == -2)
		m->interrupted = 1;
	else if (r < 0)
		return cli_err("%s: read error after line %" PRIu64 ": %s",
		               m->file, *line, strerror(errno));
	if (m->interrupted && m->brecs) {
		if (!m->dry) {
			lb_batch_abort(m->b);
			m->b = NULL;
		}
		m->lines -= m->brecs;
		reset_batch(m);
		m->nln = 0;
		m->raw.len = 0;
		m->brecs = 0;
	} else if (!m->stopped && !m->interrupted && m->brecs) {
		return end_batch(m, 1);
	}
	return 0;
}

/* After the last line: close the run and the rejects, print the imp_summary;
 * the exit code, with the line that says why it is not 0. */
static int finish(imp *m)
{
	int rc;
	if (m->b) { /* the dry run's outer batch */
		lb_batch_abort(m->b);
		m->b = NULL;
	}
	if ((rc = imp_run_finish(m, !m->stopped && !m->interrupted)) != 0)
		return rc;
	if (m->rej) {
		sb_flush(&m->rejbuf, m->rej);
		rc = fclose(m->rej);
		m->rej = NULL;
		if (rc != 0)
			return cli_err("%s: cannot write: %s", m->reject_path,
			               strerror(errno));
	}
	imp_progress(m, 1);
	imp_summary(m, cli_now() - m->t0, m->stopped, m->interrupted);
	if (m->interrupted) {
		if (m->run.id)
			cli_err("%s: interrupted; lines up to %" PRIu64
			        " are done (run %" PRIu64
			        "); --resume goes on at line %" PRIu64,
			        m->file, m->run.cov_line - 1, m->run.id,
			        m->run.cov_line);
		else
			cli_err("%s: interrupted; nothing was committed",
			        m->file);
		return 130;
	}
	if (!m->failed && !m->rec_failed)
		return 0;
	if (m->stopped)
		cli_err("%s: batch %" PRIu64 " (lines %" PRIu64 "-%" PRIu64
		        ") %s; stopped there (--stop-on-error), later lines "
		        "not read",
		        m->file, m->nbatch, m->first_line, m->last_line,
		        m->dry                        ? "would fail"
		        : m->on_error == ONERR_RECORD ? "set records aside"
		                                      : "failed validation");
	else if (m->on_error == ONERR_RECORD)
		cli_err("%s: %" PRIu64 " of %" PRIu64 " records set aside",
		        m->file, m->rec_failed, m->rec_ok + m->rec_failed);
	else
		cli_err("%s: %" PRIu64 " of %" PRIu64 " batches %s", m->file,
		        m->failed, m->nbatch,
		        m->dry ? "would fail validation"
		               : "failed validation and were skipped");
	return CLI_DATA;
}

int cmd_import(int argc, char **argv)
{
	imp *m = calloc(1, sizeof *m);
	const char *pos[2];
	int nosync = 0, rc, resume = 0, again = 0, nowait = 0;
	uint64_t line = 0;
	struct stat st;
	given g;

	if (!m)
		return cli_err("out of memory");
	memset(&g, 0, sizeof g);
	memset(&st, 0, sizeof st);
	m->run.lockfd = -1;
	lb__hset_init(&m->aidx);
	lb__hset_init(&m->repeats);
	msgpack_sbuffer_init(&m->mp);
	msgpack_packer_init(&m->pk, &m->mp, msgpack_sbuffer_write);
	rc = parse_opts(m, argc, argv, pos, &nosync, &g, &resume, &again,
	                &nowait);
	if (rc)
		goto out;
	m->dir = pos[0];
	m->file = pos[1];
	if ((rc = open_input(m, pos[1], resume, &st)) != 0)
		goto out;
	runs_signals(1);
	m->run.on = !m->dry;
	if ((rc = hash_input(m, &st)) != 0)
		goto out;
	/* one import per database at a time */
	if ((rc = runs_lock(m->dir, nowait, &m->run.lockfd)) != 0)
		goto out;
	runs_lock_note(m->run.lockfd, 0, m->file);
	if ((rc = open_db(m, nosync, &g)) != 0)
		goto out;
	if (m->run.on) {
		m->run.started_ns = imp_now_ns();
		rc = imp_run_start(m, m->dir, &g, resume, again, &line);
		if (rc)
			goto out;
	}
	if ((rc = open_rejects(m, &st)) != 0)
		goto out;
	m->rd.buf = cli_xmalloc(READ_CHUNK);
	m->progress = isatty(2);
	m->t0 = m->last_draw = cli_now();
	if ((rc = read_input(m, &line)) == 0)
		rc = finish(m);
out:
	runs_signals(0);
	if (rc && rc != CLI_DATA && m->progress)
		imp_progress(m, 1);
	imp_free(m);
	free(m);
	return rc == CLI_HELP ? 0 : rc;
}
