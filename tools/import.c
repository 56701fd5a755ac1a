/* SPDX-License-Identifier: MIT */
/*
 * import.c: `logbook import`, JSON lines in validated batches.
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
 * (end_batch_record()). A put set aside leaves its key in a map for the
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
#include "cli.h"
#include "runs.h"
#include "wal/hset.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES ((size_t)64 << 20)
#define BATCH_SIZE_MAX 10000000u
#define READ_CHUNK ((size_t)256 << 10)
#define HUMAN_ISSUES 10 /* per failed batch, in human output */

enum { MODE_INSERT, MODE_UPSERT, MODE_UPDATE };

/* ---- line reader --------------------------------------------------------- */

typedef struct reader {
	int fd;
	char *buf;
	size_t start, end;
	int eof;
	uint64_t consumed; /* bytes handed out, newlines included */
	sbuf line;         /* a line that spans reads */
} reader;

/*
 * Next line without its '\n'. Returns 1 with (*p, *n), 0 at the end, -1 on
 * a read error (errno), -2 when a signal stopped the import during a read.
 * *too_long is set for a line over LINE_MAX_BYTES, whose bytes are skipped (it
 * is still one line).
 */
static int next_line(reader *r, const char **p, size_t *n, int *too_long)
{
	r->line.len = 0;
	*too_long = 0;
	for (;;) {
		char *s = r->buf + r->start;
		size_t avail = r->end - r->start;
		char *nl = avail ? memchr(s, '\n', avail) : NULL;
		if (nl) {
			size_t len = (size_t)(nl - s);
			r->start += len + 1;
			r->consumed += len + 1;
			if (!r->line.len && !*too_long) {
				*p = s;
				*n = len;
				return 1;
			}
			if (!*too_long && r->line.len + len <= LINE_MAX_BYTES)
				sb_put(&r->line, s, len);
			else
				*too_long = 1;
			*p = r->line.p;
			*n = *too_long ? 0 : r->line.len;
			return 1;
		}
		if (avail) {
			if (!*too_long &&
			    r->line.len + avail <= LINE_MAX_BYTES) {
				sb_put(&r->line, s, avail);
			} else {
				*too_long = 1;
				r->line.len = 0;
			}
			r->consumed += avail;
		}
		r->start = r->end = 0;
		if (r->eof) {
			if (!r->line.len && !*too_long)
				return 0;
			*p = r->line.p;
			*n = *too_long ? 0 : r->line.len;
			return 1;
		}
		for (;;) {
			ssize_t got = read(r->fd, r->buf, READ_CHUNK);
			if (got < 0 && errno == EINTR && runs_stop)
				return -2; /* Ctrl-C while waiting for input */
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return -1;
			if (got == 0)
				r->eof = 1;
			r->end = (size_t)got;
			break;
		}
	}
}

/*
 * Does the input end here (nothing after the line handed out last)? 1 when
 * it is known to: a file read to its size, or a pipe whose end is there
 * already (looked at without waiting: a pipe still open says 0). The
 * current line must no longer be needed (the buffer may be refilled).
 */
static int input_ends(reader *r, uint64_t in_size)
{
	struct pollfd pf;
	ssize_t got;
	if (r->start < r->end)
		return 0;
	if (r->eof)
		return 1;
	if (in_size)
		return r->consumed >= in_size;
	pf.fd = r->fd;
	pf.events = POLLIN;
	pf.revents = 0;
	if (poll(&pf, 1, 0) != 1)
		return 0;
	got = read(r->fd, r->buf, READ_CHUNK);
	if (got == 0) {
		r->eof = 1;
		return 1;
	}
	if (got > 0) {
		r->start = 0;
		r->end = (size_t)got;
	}
	return 0; /* a read error shows at the next line */
}

/* ---- per-batch state ----------------------------------------------------- */

typedef struct op_rec {
	uint64_t line;
	size_t li; /* its line in m->ln, when the batch's lines are kept */
	cli_table *t;
	size_t koff, klen; /* key in the key arena */
	int del;           /* a delete */
	int refused;       /* the library refused it (LB_EVALIDATION) */
	/* --on-error record: the library's word on a refused op, kept for
	 * when the commit's result (LB_ISSUES_MAX issues) does not hold it */
	const char *ekind;
	char *emsg;
	/* dry run: the value before the op, in the before arena */
	int applied, existed;
	size_t boff, blen;
} op_rec;

typedef struct ref_rec { /* a foreign key to check at batch end */
	uint64_t line;
	cli_table *t;      /* referring table */
	size_t koff, klen; /* referring key, key arena */
	const char *field;
	cli_table *ref;    /* referenced table */
	size_t roff, rlen; /* referenced key, key arena */
	int refused;       /* of an op the library refused (record mode) */
} ref_rec;

typedef struct issue {
	uint64_t line;
	const char *kind;
	char *table;
	char *key;
	size_t klen;
	char *field;
	char *msg;
	uint64_t dep; /* kind "dependency": the set-aside line it needs */
} issue;

/* A line of the current batch, kept (m->keep) to replay the batch without
 * the lines set aside, and to write rejects verbatim. */
enum {
	L_ASIDE = 1,   /* set aside (not committed) */
	L_NOTJSON = 2, /* not a JSON text: written to rejects as a string */
	L_TOOLONG = 4  /* over LINE_MAX_BYTES: its bytes were not kept */
};
typedef struct line_rec {
	uint64_t line;
	size_t off, len; /* in m->raw */
	unsigned flags;
	size_t op;       /* its op in m->ops + 1, 0 if none */
	size_t nreasons; /* reasons it was set aside for */
	size_t nown;     /* those that are not a dependency */
} line_rec;

/* A key set aside in this run (--on-error record): records that refer to
 * it, and find it missing, depend on the line that held it. */
typedef struct akey {
	cli_table *t;
	size_t koff, klen; /* in m->akeys */
	uint64_t line;
} akey;

enum { ONERR_BATCH, ONERR_RECORD };

/* The run this import is (runs.h), when not a dry run. */
typedef struct runst {
	int on;       /* recorded */
	int table_ok; /* logbook.runs exists */
	uint64_t id;  /* 0 until the first commit */
	uint64_t seq, prev_batch;
	char sha256[65];
	uint64_t size;
	int64_t started_ns;
	uint64_t cov_line;          /* first line no record covers yet */
	uint64_t p_lines, p_aside;  /* ended batches no record covers */
	uint64_t end_line, end_off; /* the last ended batch's end */
	int final_written;
	uint64_t pending_batch; /* the id run_put() wrote for its batch */
	uint64_t table_batch;   /* the batch that created logbook.runs */
	uint64_t *batches;      /* committed by this import */
	size_t nbatches;
	int resumed;
	uint64_t prior_lines, prior_committed, prior_aside, prior_first;
	uint64_t *prior_batches;
	size_t nprior;
	int lockfd;
} runst;

typedef struct imp {
	/* options */
	const char *dir;
	const char *file;
	const char *label;
	int mode, dry, stop, progress;
	const char *keyfield;
	cli_table *deftable;
	uint64_t batch_size;
	/* database */
	lb_db *db;
	cli_catalog cat;
	lb_batch *b;      /* the open batch (or the dry run's outer batch) */
	int engine_issue; /* an op of the batch returned LB_EVALIDATION */
	/* batch contents */
	op_rec *ops;
	size_t nops, capops;
	ref_rec *refs;
	size_t nrefs, caprefs;
	sbuf keys, before;
	issue *iss;
	size_t niss, capiss;
	uint64_t first_line, last_line, brecs;
	uint64_t b_end_off; /* input offset after the batch's last line */
	/* the batch's lines (kept when m->keep) */
	int keep;
	line_rec *ln;
	size_t nln, capln, cur_li;
	sbuf raw;
	uint64_t b_aside; /* lines of the batch set aside */
	issue *rs;        /* why (--on-error record) */
	size_t nrs, caprs;
	/* --on-error record: keys set aside in this run */
	int on_error;
	akey *ak;
	size_t nak, capak, ak_recorded;
	lb_hset aidx; /* (table, key) -> its newest entry in m->ak + 1 */
	sbuf akeys;
	uint64_t dependents, partial;
	/* rejects, runs */
	const char *reject_path;
	FILE *rej;
	sbuf rejbuf;
	int from_rejects;
	sbuf fr; /* --from-rejects: the record of the current line */
	runst run;
	/* conversions */
	json_t *root;         /* the jansson path's tree of the current line */
	cli_table *last_t;    /* the table of the last fast-path line */
	cli_table ***refs_of; /* per table, per field: the referenced table */
	char tname[LB_TABLE_NAME_MAX + 1];
	msgpack_sbuffer mp;
	msgpack_packer pk;
	sbuf val, scratch, kbuf, out;
	sbuf tk;         /* a map key: table index, key (tk_set) */
	lb_hset repeats; /* upsert: (table, key) -> its first line in the
	                    batch, unless --allow-repeats */
	int allow_repeats;
	/* totals */
	uint64_t nbatch, ok, failed, rec_ok, rec_failed, lines, blank;
	uint64_t kinds[16];
	uint64_t issues_total;
	double t0, last_draw;
	uint64_t in_size;
	reader rd;
	int stopped;     /* --stop-on-error stopped the import */
	int interrupted; /* SIGINT or SIGTERM did */
} imp;

static const char *const KIND_PARSE = "parse";
static const char *const KIND_KEY = "key";
static const char *const KIND_TABLE = "table";
static const char *const KIND_VALUE = "value";

static const char *const KIND_DEP = "dependency";
static const char *const KIND_BATCH = "batch";

static const char *const kind_names[] = {
        "format", "duplicate", "missing", "foreign_key", "conflict",
        "parse",  "key",       "table",   "value",       "dependency"};
#define NKINDS (sizeof kind_names / sizeof kind_names[0])

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
static uint64_t kmap_get(imp *m, const lb_hset *h, const cli_table *t,
                         const void *k, size_t kl)
{
	const lb_hent *e;
	tk_set(m, t, k, kl);
	e = lb__hset_find(h, m->tk.p, m->tk.len);
	return e ? e->v[0] : 0;
}

/* Set (t, k) to v (non-zero) in map h; returns its value before (0 if
 * absent). Out of memory ends the tool, as cli_xmalloc() does. */
static uint64_t kmap_put(imp *m, lb_hset *h, const cli_table *t, const void *k,
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

static void count_kind(imp *m, const char *kind)
{
	for (size_t i = 0; i < NKINDS; i++)
		if (!strcmp(kind_names[i], kind)) {
			m->kinds[i]++;
			return;
		}
}

static void add_issue(imp *m, uint64_t line, const char *kind,
                      const char *table, const void *key, size_t klen,
                      const char *field, const char *msg)
{
	issue *is;
	if (m->niss == m->capiss) {
		m->capiss = m->capiss ? m->capiss * 2 : 16;
		m->iss = cli_xrealloc(m->iss, m->capiss * sizeof *m->iss);
	}
	is = &m->iss[m->niss++];
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
	is->dep = 0;
}

static void issue_free(issue *is)
{
	free(is->table);
	free(is->key);
	free(is->field);
	free(is->msg);
}

static void clear_issues(imp *m)
{
	for (size_t i = 0; i < m->niss; i++)
		issue_free(&m->iss[i]);
	m->niss = 0;
}

static int cmp_issue(const void *a, const void *b)
{
	const issue *x = a, *y = b;
	/* Issues without a line (not traced to an op) go last. */
	uint64_t lx = x->line ? x->line : UINT64_MAX;
	uint64_t ly = y->line ? y->line : UINT64_MAX;
	return lx < ly ? -1 : lx > ly ? 1 : 0;
}

/* ---- progress ------------------------------------------------------------ */

static void progress(imp *m, int final)
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
static void issue_fmt(const imp *m, sbuf *b, const issue *is, int reason)
{
	if (cli_json || reason) {
		sb_putc(b, '{');
		if (!reason) {
			sb_puts(b, "\"file\":");
			jw_text(b, m->file);
			sb_puts(b, ",\"line\":");
			if (is->line)
				jw_u64(b, is->line);
			else
				sb_puts(b, "null");
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
static void committed_line(imp *m, uint64_t batch_id, uint64_t nrec,
                           uint64_t aside)
{
	if (m->progress)
		progress(m, 1);
	sb_printf(&m->out,
	          "batch %" PRIu64 " committed: lines %" PRIu64 "-%" PRIu64
	          ", %" PRIu64 " record%s",
	          batch_id, m->first_line, m->last_line, nrec,
	          nrec == 1 ? "" : "s");
	if (aside)
		sb_printf(&m->out, ", %" PRIu64 " set aside", aside);
	sb_putc(&m->out, '\n');
}

static void report_batch(imp *m, int success, const char *error,
                         uint64_t batch_id, uint64_t nrec, uint64_t extra)
{
	sbuf *b = &m->out;
	if (m->niss > 1)
		qsort(m->iss, m->niss, sizeof *m->iss, cmp_issue);
	if (cli_json) {
		sb_printf(b,
		          "{\"batch\":%" PRIu64
		          ",\"success\":%s,\"records\":%" PRIu64 ",\"error\":",
		          m->nbatch, success ? "true" : "false", nrec);
		if (error)
			jw_cstr(b, error);
		else
			sb_puts(b, "null");
		sb_puts(b, ",\"issues\":[");
		for (size_t i = 0; i < m->niss; i++) {
			const issue *is = &m->iss[i];
			if (i)
				sb_putc(b, ',');
			issue_fmt(m, b, is, 0);
		}
		sb_printf(
		        b,
		        "],\"issues_total\":%" PRIu64 ",\"first_line\":%" PRIu64
		        ",\"last_line\":%" PRIu64 ",\"batch_id\":",
		        (uint64_t)m->niss + extra, m->first_line, m->last_line);
		if (batch_id)
			jw_u64(b, batch_id);
		else
			sb_puts(b, "null");
		sb_puts(b, "}\n");
	} else if (!success) {
		if (m->progress)
			progress(m, 1);
		sb_printf(b,
		          "batch %" PRIu64 " %s (lines %" PRIu64 "-%" PRIu64
		          ", %" PRIu64 " records): %" PRIu64 " issue%s\n",
		          m->nbatch, m->dry ? "would fail" : "FAILED",
		          m->first_line, m->last_line, nrec,
		          (uint64_t)m->niss + extra,
		          m->niss + extra == 1 ? "" : "s");
		(void)error;
		for (size_t i = 0; i < m->niss && i < HUMAN_ISSUES; i++) {
			issue_fmt(m, b, &m->iss[i], 0);
			sb_putc(b, '\n');
		}
		if (m->niss > HUMAN_ISSUES)
			sb_printf(b, "  ... and %zu more (see --json)\n",
			          m->niss - HUMAN_ISSUES);
	} else if (batch_id) {
		committed_line(m, batch_id, nrec, 0);
	}
	if (b->len) {
		sb_flush(b, stdout);
		fflush(stdout);
	}
}

/* ---- one line -> one op -------------------------------------------------- */

static void push_op(imp *m, uint64_t line, cli_table *t, const void *k,
                    size_t kl)
{
	op_rec *o;
	if (m->nops == m->capops) {
		m->capops = m->capops ? m->capops * 2 : 1024;
		m->ops = cli_xrealloc(m->ops, m->capops * sizeof *m->ops);
	}
	o = &m->ops[m->nops++];
	o->line = line;
	o->li = m->cur_li;
	o->t = t;
	o->koff = m->keys.len;
	o->klen = kl;
	o->del = o->refused = 0;
	o->ekind = NULL;
	o->emsg = NULL;
	o->applied = o->existed = 0;
	o->boff = o->blen = 0;
	sb_put(&m->keys, k, kl);
	if (m->keep)
		m->ln[m->cur_li].op = m->nops;
}

/* Remember the references of an applied put (v: its msgpack map) for the
 * end-of-batch check. */
static void push_refs(imp *m, uint64_t line, cli_table *t, const void *v,
                      size_t vl)
{
	const op_rec *o = &m->ops[m->nops - 1];
	for (size_t i = 0; i < t->nfields; i++) {
		const cli_field *f = &t->fields[i];
		const void *x;
		const char *rk;
		size_t xl, rkl;
		cli_table *rt;
		ref_rec *r;
		if (!f->ref)
			continue;
		rt = m->refs_of[t - m->cat.t][i];
		/* Absent, or of a wrong type (a format issue already). */
		if (!rt || cli_mp_map_get(v, vl, f->name, &x, &xl) < 0 ||
		    cli_mp_bytes(x, xl, &rk, &rkl) < 0)
			continue;
		if (m->nrefs == m->caprefs) {
			m->caprefs = m->caprefs ? m->caprefs * 2 : 256;
			m->refs = cli_xrealloc(m->refs,
			                       m->caprefs * sizeof *m->refs);
		}
		r = &m->refs[m->nrefs++];
		r->line = line;
		r->t = t;
		r->koff = o->koff;
		r->klen = o->klen;
		r->field = f->name;
		r->ref = rt;
		r->roff = m->keys.len;
		r->rlen = rkl;
		r->refused = o->refused;
		sb_put(&m->keys, rk, rkl);
	}
}

static int fatal_op(imp *m, int rc, uint64_t line)
{
	cli_lberr(rc, "%s: line %" PRIu64 ": cannot write", m->file, line);
	return CLI_FAIL;
}

/* A key as the library's messages show it: printable ASCII kept (but the
 * backslash), other bytes as \xHH, cut at 95 bytes of text. */
static const char *lib_key_text(const void *key, size_t klen)
{
	static char buf[96];
	const unsigned char *k = key;
	size_t o = 0;
	for (size_t i = 0; i < klen && o + 5 < sizeof buf; i++) {
		if (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '\\')
			buf[o++] = (char)k[i];
		else
			o += (size_t)snprintf(buf + o, sizeof buf - o,
			                      "\\x%02x", k[i]);
	}
	if (o >= sizeof buf)
		o = sizeof buf - 1;
	buf[o] = 0;
	return buf;
}

/*
 * Dry run: the issues of an op the library refused, as the real import
 * would report them. The dry run's one open batch keeps the detail of its
 * first LB_ISSUES_MAX issues only, so each refused op is explained on the
 * spot: DUPLICATE or MISSING from the before-image looked up just before
 * it (worded as the library words them), then every FORMAT issue of its
 * value from lb_batch_check(), which runs the op's own schema check.
 */
static void dry_issue(imp *m, uint64_t line, const cli_table *t, int del,
                      const void *v, size_t vl)
{
	const op_rec *r = &m->ops[m->nops - 1];
	const char *key = m->keys.p + r->koff;
	char msg[400];
	lb_result res;
	int rc;
	if (m->mode == MODE_INSERT && !del && r->existed) {
		snprintf(msg, sizeof msg, "%s: key '%s' exists already",
		         t->name, lib_key_text(key, r->klen));
		add_issue(m, line, "duplicate", t->name, key, r->klen, NULL,
		          msg);
	} else if ((del || m->mode == MODE_UPDATE) && !r->existed) {
		snprintf(msg, sizeof msg, "%s: no key '%s'", t->name,
		         lib_key_text(key, r->klen));
		add_issue(m, line, "missing", t->name, key, r->klen, NULL, msg);
	}
	if (del || !t->has_schema)
		return;
	rc = lb_batch_check(m->b, t->name, key, r->klen, v, vl, &res);
	for (size_t i = 0; i < res.nissues; i++)
		add_issue(m, line, "format", t->name, key, r->klen,
		          res.issues[i].field, res.issues[i].message);
	if (rc < 0 && rc != LB_EVALIDATION)
		add_issue(m, line, "format", t->name, key, r->klen, NULL,
		          lb_errmsg());
	lb_result_free(&res);
}

/* What a line asks for, once parsed. */
typedef struct req {
	cli_table *t;
	const char *tname; /* as written (t may be NULL: unknown) */
	int del;
	const void *v; /* the value to store (not for a delete) */
	size_t vl;
} req;

/* A key from its msgpack encoding (a str, or an integer as decimal text),
 * into m->kbuf. -1 for anything else or out of limits: the jansson path
 * then words the issue. */
static int fast_key(imp *m, const char *p, size_t n)
{
	const char *s;
	size_t len;
	int64_t v;
	m->kbuf.len = 0;
	if (cli_mp_str(p, n, &s, &len) == 0) {
		if (len == 0 || len > LB_KEY_MAX)
			return -1;
		sb_put(&m->kbuf, s, len);
		return 0;
	}
	if (cli_mp_int(p, n, &v) == 0) {
		sb_printf(&m->kbuf, "%" PRId64, v);
		return 0;
	}
	return -1;
}

static const cli_fj_member *member(const char *d, const cli_fj_member *mem,
                                   size_t n, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < n; i++)
		if (mem[i].klen == nl && !memcmp(d + mem[i].koff, name, nl))
			return &mem[i];
	return NULL;
}

/*
 * The fast path (fastjson.c): 1 with *q filled, 0 to take the jansson
 * path instead, which then finds the same request or words the problem.
 */
static int parse_fast(imp *m, const char *p, size_t n, req *q)
{
	cli_fj_member mem[CLI_FJ_MEMBERS_MAX];
	const cli_fj_member *tv, *kv, *vv, *dv;
	const char *d, *s;
	size_t nm, len;

	if (cli_fast_object(p, n, &m->mp, &m->scratch, mem, &nm) < 0)
		return 0;
	d = m->mp.data;
	tv = member(d, mem, nm, "table");
	kv = member(d, mem, nm, "key");
	vv = member(d, mem, nm, "value");
	dv = member(d, mem, nm, "delete");
	if (tv && kv && (vv || dv) && !(vv && dv) && nm == 3) {
		if (cli_mp_str(d + tv->voff, tv->vlen, &s, &len) < 0 ||
		    len > LB_TABLE_NAME_MAX || memchr(s, 0, len))
			return 0;
		if (!m->last_t || len != strlen(m->last_t->name) ||
		    memcmp(s, m->last_t->name, len)) {
			memcpy(m->tname, s, len);
			m->tname[len] = '\0';
			m->last_t = cli_catalog_find(&m->cat, m->tname);
			if (!m->last_t)
				return 0;
		}
		q->t = m->last_t;
		q->tname = q->t->name;
		if (!q->t || fast_key(m, d + kv->voff, kv->vlen) < 0)
			return 0;
		if (dv) {
			if (dv->vlen != 1 || (unsigned char)d[dv->voff] != 0xc3)
				return 0;
			q->del = 1;
			return 1;
		}
		if (q->t->has_schema) {
			q->v = d + vv->voff;
			q->vl = vv->vlen;
			return 1;
		}
		/* Opaque: a string is stored as its bytes. */
		if (cli_mp_str(d + vv->voff, vv->vlen, &s, &len) < 0)
			return 0;
		q->v = s;
		q->vl = len;
		return 1;
	}
	/* A record of --table (with a schema: opaque records are stored as
	 * their JSON text, which only jansson writes). */
	if (!m->deftable || !m->deftable->has_schema)
		return 0;
	kv = member(d, mem, nm, m->keyfield);
	if (!kv || fast_key(m, d + kv->voff, kv->vlen) < 0)
		return 0;
	q->t = m->deftable;
	q->tname = q->t->name;
	q->v = d;
	q->vl = m->mp.size;
	return 1;
}

/*
 * A line that is not UTF-8 (so no JSON text) is a parse issue naming the
 * first bad byte, and the table and key when they can be read: the line
 * is parsed again with every bad byte replaced by U+FFFD; a table name or
 * key holding U+FFFD may be a bad byte's, so it is not named.
 */
static void utf8_issue(imp *m, uint64_t line, const char *p, size_t n,
                       size_t bad)
{
	static const char rep[] = "\xef\xbf\xbd";
	char msg[160], err[64];
	const char *tname = NULL;
	json_t *o, *tv, *kv;
	sbuf fix;
	size_t i = 0;
	snprintf(msg, sizeof msg,
	         "not UTF-8: byte 0x%02X at column %zu; nothing of the line "
	         "was read",
	         (unsigned char)p[bad], bad + 1);
	sb_init(&fix);
	while (i < n) {
		size_t ok = lb__utf8_scan((const uint8_t *)p + i, n - i, NULL);
		sb_put(&fix, p + i, ok);
		i += ok;
		if (i < n) {
			sb_puts(&fix, rep);
			i++;
		}
	}
	m->kbuf.len = 0;
	o = cli_json_parse(fix.p, fix.len, err, sizeof err);
	if (o && json_is_object(o)) {
		tv = json_object_get(o, "table");
		kv = json_object_get(o, "key");
		if (!tv && m->deftable) {
			tname = m->deftable->name;
			kv = json_object_get(o, m->keyfield);
		} else if (json_is_string(tv) &&
		           !strstr(json_string_value(tv), rep)) {
			tname = json_string_value(tv);
		}
		if (kv && !json_is_object(kv) &&
		    (!json_is_string(kv) ||
		     !strstr(json_string_value(kv), rep)) &&
		    cli_key_json(kv, &m->kbuf, err, sizeof err) < 0)
			m->kbuf.len = 0;
	}
	add_issue(m, line, KIND_PARSE, tname, m->kbuf.len ? m->kbuf.p : NULL,
	          m->kbuf.len, NULL, msg);
	json_decref(o);
	sb_free(&fix);
}

/* The jansson path: 1 with *q filled, or 0 with the line's issue recorded.
 * The tree stays in m->root until do_line() is done with the line. */
static int parse_slow(imp *m, uint64_t line, const char *p, size_t n, req *q)
{
	char err[300];
	json_t *o, *tv, *kv, *vv, *dv;

	o = cli_json_parse(p, n, err, sizeof err);
	if (!o) {
		size_t bad = lb__utf8_scan((const uint8_t *)p, n, NULL);
		if (bad < n)
			utf8_issue(m, line, p, n, bad);
		else
			add_issue(m, line, KIND_PARSE, NULL, NULL, 0, NULL,
			          err);
		if (m->keep)
			m->ln[m->cur_li].flags |= L_NOTJSON;
		return 0;
	}
	m->root = o; /* released by do_line() */
	if (!json_is_object(o)) {
		add_issue(m, line, KIND_PARSE, NULL, NULL, 0, NULL,
		          "line is not a JSON object");
		return 0;
	}
	tv = json_object_get(o, "table");
	kv = json_object_get(o, "key");
	vv = json_object_get(o, "value");
	dv = json_object_get(o, "delete");
	if (tv && kv && (vv || dv) && !(vv && dv) && json_object_size(o) == 3) {
		/* {"table": T, "key": K, "value": V | "delete": true} */
		if (!json_is_string(tv)) {
			add_issue(m, line, KIND_PARSE, NULL, NULL, 0, NULL,
			          "\"table\" must be a string");
			return 0;
		}
		q->tname = json_string_value(tv);
		if (strlen(q->tname) != json_string_length(tv)) {
			/* "o\u0000x" would name table o */
			add_issue(m, line, KIND_TABLE, NULL, NULL, 0, NULL,
			          "the table name holds a NUL character");
			return 0;
		}
		if (dv) {
			if (!json_is_true(dv)) {
				add_issue(m, line, KIND_PARSE, q->tname, NULL,
				          0, NULL, "\"delete\" must be true");
				return 0;
			}
			q->del = 1;
		}
		if (cli_key_json(kv, &m->kbuf, err, sizeof err) < 0) {
			add_issue(m, line, KIND_KEY, q->tname, NULL, 0, "key",
			          err);
			return 0;
		}
		q->t = cli_catalog_find(&m->cat, q->tname);
	} else {
		/* A record of --table, keyed by --key. */
		q->t = m->deftable;
		if (!q->t) {
			add_issue(m, line, KIND_TABLE, NULL, NULL, 0, NULL,
			          "no table: give --table, or write the line "
			          "as {\"table\": ..., \"key\": ..., "
			          "\"value\": ...}");
			return 0;
		}
		q->tname = q->t->name;
		vv = o;
		kv = json_object_get(o, m->keyfield);
		if (!kv) {
			snprintf(err, sizeof err,
			         "record has no key field \"%s\"", m->keyfield);
			add_issue(m, line, KIND_KEY, q->tname, NULL, 0,
			          m->keyfield, err);
			return 0;
		}
		if (json_is_object(kv) ||
		    cli_key_json(kv, &m->kbuf, err, sizeof err) < 0) {
			snprintf(err, sizeof err,
			         "key field \"%s\" must be a non-empty string "
			         "(at most %d bytes) or an integer",
			         m->keyfield, LB_KEY_MAX);
			add_issue(m, line, KIND_KEY, q->tname, NULL, 0,
			          m->keyfield, err);
			return 0;
		}
	}
	if (!q->t) {
		snprintf(err, sizeof err, "no table '%s' in the database",
		         q->tname);
		add_issue(m, line, KIND_TABLE, q->tname, m->kbuf.p, m->kbuf.len,
		          NULL, err);
		return 0;
	}
	if (q->del)
		return 1;
	if (q->t->has_schema) {
		msgpack_sbuffer_clear(&m->mp);
		if (cli_pack_json(&m->pk, vv, &m->scratch, err, sizeof err) <
		    0) {
			add_issue(m, line, KIND_VALUE, q->tname, m->kbuf.p,
			          m->kbuf.len, NULL, err);
			return 0;
		}
		q->v = m->mp.data;
		q->vl = m->mp.size;
	} else {
		if (cli_opaque_json(vv, &m->val, err, sizeof err) < 0) {
			add_issue(m, line, KIND_VALUE, q->tname, m->kbuf.p,
			          m->kbuf.len, NULL, err);
			return 0;
		}
		q->v = m->val.p;
		q->vl = m->val.len;
	}
	return 1;
}

/* --on-error record: what the library said about the op it just refused,
 * for when the commit's result does not hold the issue (it keeps the
 * first LB_ISSUES_MAX). The op was not applied, so the batch shows the
 * key as it was before it. */
static void note_refusal(imp *m, const cli_table *t, int del)
{
	op_rec *o = &m->ops[m->nops - 1];
	const void *v;
	size_t vl;
	int exists;
	o->emsg = cli_xstrdup(lb_errmsg());
	exists = lb_batch_get(m->b, t->name, m->keys.p + o->koff, o->klen, &v,
	                      &vl) == 0;
	if (m->mode == MODE_INSERT && !del && exists)
		o->ekind = "duplicate";
	else if ((del || m->mode == MODE_UPDATE) && !exists)
		o->ekind = "missing";
	else
		o->ekind = "format";
}

/* Dry run: save the before-image of the op about to be applied. */
static void save_before(imp *m, const cli_table *t)
{
	const void *bv;
	size_t bl;
	op_rec *r = &m->ops[m->nops - 1];
	if (lb_batch_get(m->b, t->name, m->kbuf.p, m->kbuf.len, &bv, &bl) ==
	    0) {
		r->existed = 1;
		r->boff = m->before.len;
		r->blen = bl;
		sb_put(&m->before, bv, bl);
	}
}

/*
 * Upsert: a key met on an earlier line of the same batch is a DUPLICATE
 * issue of this line, unless --allow-repeats (then the last line wins, as
 * it does in the library). Returns 1 for a repeat.
 */
static int repeated(imp *m, uint64_t line, const req *q)
{
	char msg[600];
	sbuf kh;
	uint64_t first =
	        kmap_put(m, &m->repeats, q->t, m->kbuf.p, m->kbuf.len, line);
	if (!first)
		return 0;
	kmap_put(m, &m->repeats, q->t, m->kbuf.p, m->kbuf.len, first);
	sb_init(&kh);
	cli_key_human(&kh, m->kbuf.p, m->kbuf.len);
	snprintf(msg, sizeof msg,
	         "%s: key '%.400s' repeats line %" PRIu64
	         " of this batch (--allow-repeats lets the last line win)",
	         q->t->name, sb_str(&kh), first);
	sb_free(&kh);
	add_issue(m, line, "duplicate", q->tname, m->kbuf.p, m->kbuf.len, NULL,
	          msg);
	return 1;
}

/*
 * Turn one input line into one op of the open batch. Problems with the line
 * become issues; returns 0, or an exit code for an error that ends the
 * import (disk full, I/O error).
 */
static int do_line(imp *m, uint64_t line, const char *p, size_t n, int too_long)
{
	char err[300];
	req q;
	int rc = 0;

	memset(&q, 0, sizeof q);
	if (too_long) {
		snprintf(err, sizeof err,
		         "line is longer than %zu MiB; skipped",
		         LINE_MAX_BYTES >> 20);
		add_issue(m, line, KIND_PARSE, NULL, NULL, 0, NULL, err);
		if (m->keep)
			m->ln[m->cur_li].flags |= L_NOTJSON | L_TOOLONG;
		return 0;
	}
	if (!parse_fast(m, p, n, &q)) {
		memset(&q, 0, sizeof q);
		if (!parse_slow(m, line, p, n, &q))
			goto out;
	}
	if (!q.del && q.vl > LB_VALUE_MAX) {
		snprintf(err, sizeof err,
		         "value of %zu bytes is over the %u-byte limit", q.vl,
		         (unsigned)LB_VALUE_MAX);
		add_issue(m, line, KIND_VALUE, q.tname, m->kbuf.p, m->kbuf.len,
		          NULL, err);
		goto out;
	}
	if (m->mode == MODE_UPSERT && !m->allow_repeats &&
	    repeated(m, line, &q))
		goto out;
	push_op(m, line, q.t, m->kbuf.p, m->kbuf.len);
	m->ops[m->nops - 1].del = q.del;
	if (m->dry)
		save_before(m, q.t);
	if (q.del)
		rc = lb_delete(m->b, q.t->name, m->kbuf.p, m->kbuf.len);
	else if (m->mode == MODE_INSERT)
		rc = lb_insert(m->b, q.t->name, m->kbuf.p, m->kbuf.len, q.v,
		               q.vl);
	else if (m->mode == MODE_UPDATE)
		rc = lb_update(m->b, q.t->name, m->kbuf.p, m->kbuf.len, q.v,
		               q.vl);
	else
		rc = lb_put(m->b, q.t->name, m->kbuf.p, m->kbuf.len, q.v, q.vl);
	if (rc == 0) {
		m->ops[m->nops - 1].applied = 1;
		if (!q.del && q.t->has_schema)
			push_refs(m, line, q.t, q.v, q.vl);
	} else if (rc == LB_EVALIDATION) {
		m->engine_issue = 1;
		m->ops[m->nops - 1].refused = 1;
		if (m->dry)
			dry_issue(m, line, q.t, q.del, q.v, q.vl);
		else if (m->on_error == ONERR_RECORD) {
			note_refusal(m, q.t, q.del);
			/* what it refers to may explain more (a dependency) */
			if (!q.del && q.t->has_schema)
				push_refs(m, line, q.t, q.v, q.vl);
		}
	} else if (rc == LB_ENOTFOUND) {
		add_issue(m, line, KIND_TABLE, q.tname, m->kbuf.p, m->kbuf.len,
		          NULL, lb_errmsg());
	} else if (rc == LB_ETOOBIG || rc == LB_EINVAL) {
		add_issue(m, line, KIND_VALUE, q.tname, m->kbuf.p, m->kbuf.len,
		          NULL, lb_errmsg());
	} else {
		rc = fatal_op(m, rc, line);
		goto out;
	}
	rc = 0;
out:
	json_decref(m->root);
	m->root = NULL;
	return rc;
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
		add_issue(m, r->line, "foreign_key", r->t->name,
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
		kmap_put(m, &last, o->t, m->keys.p + o->koff, o->klen, i + 1);
	}
	for (size_t i = 0; i < res->nissues; i++) {
		const lb_issue *is = &res->issues[i];
		cli_table *t =
		        is->table ? cli_catalog_find(&m->cat, is->table) : NULL;
		uint64_t op = t ? kmap_get(m, &last, t, is->key, is->klen) : 0;
		uint64_t line = op ? m->ops[op - 1].line : 0;
		add_issue(m, line, cli_issue_kind(is->kind), is->table, is->key,
		          is->klen, is->field, is->message ? is->message : "");
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
	clear_issues(m);
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
static size_t li_of(const imp *m, uint64_t line)
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

static int begin(imp *m, uint64_t line);

/* Write the batch again into a new library batch, without the lines set
 * aside (their ops, refs and issues are gone with the old one). */
static int replay(imp *m)
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
		rc = do_line(m, l->line, m->raw.p + l->off, l->len,
		             (l->flags & L_TOOLONG) != 0);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- keys set aside (--on-error record) ---------------------------------- */

static akey *aside_find(imp *m, const cli_table *t, const void *k, size_t kl)
{
	uint64_t i;
	if (!m->nak)
		return NULL;
	i = kmap_get(m, &m->aidx, t, k, kl);
	return i ? &m->ak[i - 1] : NULL;
}

/*
 * Remember that key k of t was set aside at `line`. An entry not yet
 * written to a run record is updated in place; else a new one is added,
 * so that the next record lists it (a resumed run reads them back).
 */
static void aside_add(imp *m, cli_table *t, const void *k, size_t kl,
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
	kmap_put(m, &m->aidx, t, k, kl, m->nak);
}

/* A reason why kept line li is set aside. */
static void add_reason(imp *m, size_t li, const char *kind, const char *table,
                       const void *key, size_t klen, const char *field,
                       const char *msg, uint64_t dep)
{
	issue *is;
	if (m->nrs == m->caprs) {
		m->caprs = m->caprs ? m->caprs * 2 : 16;
		m->rs = cli_xrealloc(m->rs, m->caprs * sizeof *m->rs);
	}
	is = &m->rs[m->nrs++];
	is->line = m->ln[li].line;
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
			aside_add(m, o->t, m->keys.p + o->koff, o->klen,
			          l->line);
	}
	return 1;
}

/* ---- run records --------------------------------------------------------- */

static int64_t now_ns(void)
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
static int run_put(imp *m, int final, uint64_t lines, uint64_t committed,
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
	r.time_ns = now_ns();
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
static void run_committed(imp *m, uint64_t batch_id, int final,
                          uint64_t last_line)
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
static void run_pending(imp *m, uint64_t lines, uint64_t aside)
{
	m->run.p_lines += lines;
	m->run.p_aside += aside;
}

/* Create logbook.runs before the run's first commit: the open batch (no
 * issue in it) is put aside, the table created (a batch of its own), and
 * the batch written again from its kept lines. */
static int ensure_table(imp *m)
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
	if ((rc = begin(m, m->first_line)) != 0)
		return rc;
	return replay(m);
}

/*
 * After the last batch (end of input, --stop-on-error, or a signal): if
 * lines were read since the run's last record (batches that committed
 * nothing), or the end of the input was not recorded yet, commit a batch
 * that holds only the run record, so that the run's state is exact. A run
 * that never committed anything is not recorded at all.
 */
static int run_finish(imp *m, int eof)
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
	rc = run_put(m, eof, 0, 0, 0, m->run.end_line, m->run.end_off);
	if (rc)
		return rc;
	memset(&res, 0, sizeof res);
	rc = lb_batch_commit(m->b, &res);
	m->b = NULL;
	if (rc < 0) {
		lb_result_free(&res);
		return cli_lberr(rc, "cannot commit the run record");
	}
	run_committed(m, res.batch_id, eof, m->run.end_line);
	lb_result_free(&res);
	return 0;
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
		issue_fmt(m, b, &rs[i], 1);
	}
	if (!n && batch_reason)
		issue_fmt(m, b, batch_reason, 1);
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
static void write_rejects(imp *m, const issue *rs, size_t n,
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

/* ---- ending a batch ------------------------------------------------------ */

static int cmp_issue_stable(const void *a, const void *b)
{
	const issue *x = a, *y = b;
	int c = cmp_issue(a, b);
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
		count_kind(m, m->iss[i].kind);
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
		if ((rc = ensure_table(m)) != 0)
			return rc;
		if (m->niss || m->engine_issue)
			return cli_err("lines %" PRIu64 "-%" PRIu64
			               ": written again, the batch no longer "
			               "validates; nothing of it committed",
			               m->first_line, m->last_line);
		if (m->run.on &&
		    (rc = run_put(m, final, m->brecs, m->brecs, 0, m->last_line,
		                  m->b_end_off)) != 0)
			return rc;
		rc = lb_batch_commit(m->b, &res);
		m->b = NULL;
		if (rc == 0) {
			success = 1;
			batch_id = res.batch_id;
			if (m->run.on)
				run_committed(m, batch_id, final, m->last_line);
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
			run_pending(m, m->brecs, m->brecs);
	}
	tally(m, success, extra);
	report_batch(m, success, error, batch_id, m->brecs, extra);
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
		write_rejects(m, m->iss, m->niss, &br);
	}
	m->b_aside = success ? 0 : m->brecs;
	return 0;
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
		x->next[i] = kmap_put(m, &x->slot, o->t, m->keys.p + o->koff,
		                      o->klen, i + 1);
	}
}

/* The newest op of (t, key), index + 1, or 0. */
static size_t opidx_find(imp *m, opidx *x, const cli_table *t, const void *k,
                         size_t kl)
{
	return (size_t)kmap_get(m, &x->slot, t, k, kl);
}

static void opidx_free(opidx *x)
{
	lb__hset_free(&x->slot);
	free(x->next);
}

/* A dangling reference of kept line li: a dependency when the key it
 * names was set aside in this run, else a foreign key of its own.
 * lib_msg: the library's message, if it found it. */
static void dangling(imp *m, size_t li, const ref_rec *r, const char *lib_msg)
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
		size_t li = li_of(m, r->line);
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
				dangling(m, li, r, NULL);
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
		dangling(m, li, r, NULL);
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
			dangling(m, li, r, is->message);
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
			issue_fmt(m, b, &m->rs[i], 0);
		}
		sb_printf(b,
		          "],\"issues_total\":%zu,\"first_line\":%" PRIu64
		          ",\"last_line\":%" PRIu64 ",\"attempts\":%u"
		          ",\"batch_id\":",
		          m->nrs, m->first_line, m->last_line, attempts);
		if (batch_id)
			jw_u64(b, batch_id);
		else
			sb_puts(b, "null");
		sb_puts(b, "}\n");
	} else if (batch_id || m->b_aside) {
		if (m->progress)
			progress(m, 1);
		if (batch_id)
			committed_line(m, batch_id, committed, m->b_aside);
		else
			sb_printf(b,
			          "batch %" PRIu64 " (lines %" PRIu64
			          "-%" PRIu64 "): nothing committed, %" PRIu64
			          " set aside\n",
			          m->nbatch, m->first_line, m->last_line,
			          m->b_aside);
		for (size_t i = 0; i < m->nrs && i < HUMAN_ISSUES; i++) {
			issue_fmt(m, b, &m->rs[i], 0);
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
		size_t li = li_of(m, is->line);
		if (li == m->nln)
			continue;
		add_reason(m, li, is->kind, is->table, is->key, is->klen,
		           is->field, is->msg, 0);
		found += set_aside(m, li);
	}
	clear_issues(m);
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
	if ((rc = ensure_table(m)) != 0)
		return rc;
	if (m->run.on &&
	    (rc = run_put(m, final, m->brecs, m->brecs - m->b_aside, m->b_aside,
	                  m->last_line, m->b_end_off)) != 0)
		return rc;
	memset(&res, 0, sizeof res);
	rc = lb_batch_commit(m->b, &res);
	m->b = NULL;
	if (rc == 0) {
		*batch_id = res.batch_id;
		lb_result_free(&res);
		if (m->run.on)
			run_committed(m, *batch_id, final, m->last_line);
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
		qsort(m->rs, m->nrs, sizeof *m->rs, cmp_issue_stable);
	if (batch_id) {
		m->ok++;
		m->partial += m->b_aside != 0;
	} else {
		m->failed++;
	}
	m->rec_ok += m->brecs - m->b_aside;
	m->rec_failed += m->b_aside;
	for (size_t i = 0; i < m->nrs; i++)
		count_kind(m, m->rs[i].kind);
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
static int end_batch_record(imp *m, int final)
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
		if ((rc = begin(m, m->first_line)) != 0 ||
		    (rc = replay(m)) != 0)
			return rc;
	}
	tally_record(m, batch_id);
	if (!batch_id && m->run.on)
		run_pending(m, m->brecs, m->brecs);
	report_record(m, batch_id, attempts);
	write_rejects(m, m->rs, m->nrs, NULL);
	return 0;
}

static int end_batch(imp *m, int final)
{
	int rc;
	m->nbatch++;
	if (m->on_error == ONERR_RECORD)
		rc = end_batch_record(m, final);
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

static int begin(imp *m, uint64_t line)
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

static int blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return 0;
	return 1;
}

/*
 * --from-rejects: the record a reject line holds, as the line to import,
 * into m->fr: the "record" member as compact JSON, or with "raw": true
 * the text it holds. 0, or -1 with err when the line is not a reject.
 */
static int from_reject(imp *m, const char *p, size_t n, char *err,
                       size_t errlen)
{
	char e[300];
	json_t *o = cli_json_parse(p, n, e, sizeof e), *rec;
	m->fr.len = 0;
	if (!o) {
		snprintf(err, errlen, "not a line of a reject file: %s", e);
		return -1;
	}
	rec = json_object_get(o, "record");
	if (!json_is_object(o) || !rec) {
		snprintf(err, errlen,
		         "not a line of a reject file (no \"record\" member)");
		json_decref(o);
		return -1;
	}
	if (json_is_true(json_object_get(o, "raw"))) {
		json_t *b64 = json_object_get(rec, "base64");
		if (json_is_string(rec)) {
			sb_put(&m->fr, json_string_value(rec),
			       json_string_length(rec));
		} else if (json_is_string(b64) &&
		           cli_b64_decode(json_string_value(b64),
		                          json_string_length(b64),
		                          &m->fr) == 0) {
			/* the bytes of a line that was not UTF-8 */
		} else {
			snprintf(err, errlen,
			         "the reject holds no record (a line over "
			         "%zu MiB is not kept)",
			         LINE_MAX_BYTES >> 20);
			json_decref(o);
			return -1;
		}
	} else {
		char *t = json_dumps(rec, JSON_COMPACT | JSON_ENCODE_ANY);
		if (t)
			sb_puts(&m->fr, t);
		free(t);
	}
	json_decref(o);
	sb_str(&m->fr);
	return 0;
}

/* The summary as one JSON object (docs/CLI.md). */
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
	if (m->run.id)
		jw_u64(b, m->run.id);
	else
		sb_puts(b, "null");
	sb_puts(b, ",\"run_batches\":[");
	for (size_t i = 0; i < m->run.nbatches; i++)
		sb_printf(b, "%s%" PRIu64, i ? "," : "", m->run.batches[i]);
	sb_puts(b, "],\"runs_table_batch\":");
	if (m->run.table_batch)
		jw_u64(b, m->run.table_batch);
	else
		sb_puts(b, "null");
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

/* The run's lines of the text summary, and where to resume. */
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

static void summary(imp *m, double el, int stopped, int interrupted)
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

typedef struct given { /* options as given (NULL: not given) */
	const char *mode, *on_error, *table, *key;
} given;

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
				aside_add(m, t, k.p, k.len,
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
static int run_start(imp *m, const char *dir, const given *g, int resume,
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
	if (!m->b && (rc = begin(m, line)) != 0)
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
		if (from_reject(m, p, n, err, sizeof err) == 0) {
			p = m->fr.p;
			n = m->fr.len;
		} else {
			fr_bad = 1;
		}
	}
	if (m->keep)
		keep_line(m, line, p, n, too_long);
	if (fr_bad) {
		add_issue(m, line, KIND_PARSE, NULL, NULL, 0, NULL, err);
		json_t *o =
		        m->keep ? cli_json_parse(p, n, err, sizeof err) : NULL;
		if (m->keep && !o)
			m->ln[m->cur_li].flags |= L_NOTJSON;
		json_decref(o);
	} else if ((rc = do_line(m, line, p, n, too_long)) != 0) {
		return rc;
	}
	m->b_end_off = m->rd.consumed;
	if (m->brecs == m->batch_size) {
		/* input read to its end: the run ends with this batch (else,
		 * should no line follow, a batch holding only the run's
		 * record says so) */
		int last = input_ends(&m->rd, m->in_size);
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
	while ((r = next_line(&m->rd, &p, &n, &too_long)) > 0) {
		++*line;
		/* a UTF-8 byte-order mark starting the input is no data */
		if (at_start && !too_long && n >= 3 &&
		    !memcmp(p, "\xef\xbb\xbf", 3)) {
			p += 3;
			n -= 3;
		}
		at_start = 0;
		if (!too_long && blank(p, n)) {
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
			progress(m, 0);
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

/* After the last line: close the run and the rejects, print the summary;
 * the exit code, with the line that says why it is not 0. */
static int finish(imp *m)
{
	int rc;
	if (m->b) { /* the dry run's outer batch */
		lb_batch_abort(m->b);
		m->b = NULL;
	}
	if ((rc = run_finish(m, !m->stopped && !m->interrupted)) != 0)
		return rc;
	if (m->rej) {
		sb_flush(&m->rejbuf, m->rej);
		rc = fclose(m->rej);
		m->rej = NULL;
		if (rc != 0)
			return cli_err("%s: cannot write: %s", m->reject_path,
			               strerror(errno));
	}
	progress(m, 1);
	summary(m, cli_now() - m->t0, m->stopped, m->interrupted);
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
		m->run.started_ns = now_ns();
		rc = run_start(m, m->dir, &g, resume, again, &line);
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
		progress(m, 1);
	imp_free(m);
	free(m);
	return rc == CLI_HELP ? 0 : rc;
}
