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
 * Speed: lines are read with read(2) into a large buffer and parsed in place
 * (no copy unless a line spans two reads) by the fast path of fastjson.c,
 * straight into msgpack; jansson only sees the lines the fast path declines
 * (and every line of a dry run). The msgpack buffer, key arena and op arrays
 * are reused across batches: no allocation per line on the fast path.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOPTS(a) (sizeof(a) / sizeof((a)[0]))
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
 * a read error (errno). *too_long is set for a line over LINE_MAX_BYTES, whose
 * bytes are skipped (it is still one line).
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

/* ---- per-batch state ----------------------------------------------------- */

typedef struct op_rec {
	uint64_t line;
	cli_table *t;
	size_t koff, klen; /* key in the key arena */
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
} ref_rec;

typedef struct issue {
	uint64_t line;
	const char *kind;
	char *table;
	char *key;
	size_t klen;
	char *field;
	char *msg;
} issue;

typedef struct imp {
	/* options */
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
	/* conversions */
	json_t *root;         /* the jansson path's tree of the current line */
	cli_table *last_t;    /* the table of the last fast-path line */
	cli_table ***refs_of; /* per table, per field: the referenced table */
	char tname[LB_TABLE_NAME_MAX + 1];
	msgpack_sbuffer mp;
	msgpack_packer pk;
	sbuf val, scratch, kbuf, out;
	/* totals */
	uint64_t nbatch, ok, failed, rec_ok, rec_failed, lines, blank;
	uint64_t kinds[16];
	uint64_t issues_total;
	double t0, last_draw;
	uint64_t in_size;
	reader rd;
} imp;

static const char *const KIND_PARSE = "parse";
static const char *const KIND_KEY = "key";
static const char *const KIND_TABLE = "table";
static const char *const KIND_VALUE = "value";

static const char *const kind_names[] = {"format",      "duplicate", "missing",
                                         "foreign_key", "conflict",  "parse",
                                         "key",         "table",     "value"};
#define NKINDS (sizeof kind_names / sizeof kind_names[0])

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
}

static void clear_issues(imp *m)
{
	for (size_t i = 0; i < m->niss; i++) {
		free(m->iss[i].table);
		free(m->iss[i].key);
		free(m->iss[i].field);
		free(m->iss[i].msg);
	}
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
			cli_issue_fmt(b, is->line, is->kind, is->table, is->key,
			              is->klen, is->field, is->msg, 0);
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
			const issue *is = &m->iss[i];
			cli_issue_fmt(b, is->line, is->kind, is->table, is->key,
			              is->klen, is->field, is->msg, 0);
			sb_putc(b, '\n');
		}
		if (m->niss > HUMAN_ISSUES)
			sb_printf(b, "  ... and %zu more (see --json)\n",
			          m->niss - HUMAN_ISSUES);
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
	o->t = t;
	o->koff = m->keys.len;
	o->klen = kl;
	o->applied = o->existed = 0;
	o->boff = o->blen = 0;
	sb_put(&m->keys, k, kl);
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
		sb_put(&m->keys, rk, rkl);
	}
}

static int fatal_op(imp *m, int rc, uint64_t line)
{
	cli_lberr(rc, "%s: line %" PRIu64 ": cannot write", m->file, line);
	return CLI_FAIL;
}

/* Characters of a UTF-8 string (jansson only hands out valid UTF-8). */
static size_t utf8_chars(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xC0) != 0x80;
	return c;
}

/*
 * Dry run: why did the library refuse this value? The library keeps the
 * detail of its first LB_ISSUES_MAX issues only, and the dry run's one
 * open batch collects the issues of the whole input, so the tool explains
 * schema issues itself, checking the JSON value against the same schema.
 * Returns 0 with field and msg set, or -1 if it finds nothing wrong.
 */
static const char *json_type_name(json_t *x)
{
	switch (json_typeof(x)) {
	case JSON_OBJECT:
		return json_object_size(x) == 1 &&
		                       json_is_string(
		                               json_object_get(x, "base64"))
		               ? "bin"
		               : "map";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "str";
	case JSON_INTEGER:
		return "int";
	case JSON_REAL:
		return "float";
	case JSON_TRUE:
	case JSON_FALSE:
		return "bool";
	default:
		return "nil";
	}
}

static int explain_format(const cli_table *t, json_t *v, const char **field,
                          char *msg, size_t len)
{
	static const char *units[] = {"",      "",         "",
	                              "",      "",         "characters",
	                              "bytes", "elements", "entries"};
	const char *k;
	json_t *x;
	*field = NULL;
	if (strcmp(json_type_name(v), "map")) {
		snprintf(msg, len, "%s: value is not a msgpack map", t->name);
		return 0;
	}
	for (size_t i = 0; i < t->nfields; i++) {
		const cli_field *f = &t->fields[i];
		size_t n = 0;
		x = json_object_get(v, f->name);
		*field = f->name;
		if (!x) {
			if (f->flags & LB_REQUIRED) {
				snprintf(msg, len,
				         "%s: missing required field '%s'",
				         t->name, f->name);
				return 0;
			}
			continue;
		}
		if (f->type != LB_ANY &&
		    strcmp(json_type_name(x), cli_type_name(f->type))) {
			snprintf(msg, len, "%s: field '%s' must be %s, not %s",
			         t->name, f->name, cli_type_name(f->type),
			         json_type_name(x));
			return 0;
		}
		if (json_is_string(x))
			n = utf8_chars(json_string_value(x),
			               json_string_length(x));
		else if (json_is_array(x))
			n = json_array_size(x);
		else if (!strcmp(json_type_name(x), "bin"))
			n = json_string_length(json_object_get(x, "base64")) /
			    4 * 3;
		else if (json_is_object(x))
			n = json_object_size(x);
		if (f->max_len && n > f->max_len) {
			snprintf(msg, len,
			         "%s: field '%s' is %zu %s long (max %u)",
			         t->name, f->name, n,
			         units[json_is_string(x)  ? LB_STR
			               : json_is_array(x) ? LB_ARRAY
			               : !strcmp(json_type_name(x), "bin")
			                       ? LB_BIN
			                       : LB_MAP],
			         (unsigned)f->max_len);
			return 0;
		}
	}
	*field = NULL;
	if (t->closed)
		json_object_foreach(v, k, x)
		{
			size_t i;
			for (i = 0; i < t->nfields; i++)
				if (!strcmp(t->fields[i].name, k))
					break;
			if (i == t->nfields) {
				*field = k;
				snprintf(
				        msg, len,
				        "%s: unknown field '%s' (the schema is "
				        "closed)",
				        t->name, k);
				return 0;
			}
		}
	return -1;
}

/* Dry run: record the issue of an op the library refused, classified by
 * the before-image looked up just before it. */
static void dry_issue(imp *m, uint64_t line, const cli_table *t, int del,
                      json_t *v)
{
	const op_rec *r = &m->ops[m->nops - 1];
	const char *key = m->keys.p + r->koff, *field = NULL;
	char msg[400];
	sbuf kh;
	sb_init(&kh);
	cli_key_human(&kh, key, r->klen);
	if (m->mode == MODE_INSERT && !del && r->existed) {
		snprintf(msg, sizeof msg, "%s: key '%s' exists already",
		         t->name, sb_str(&kh));
		add_issue(m, line, "duplicate", t->name, key, r->klen, NULL,
		          msg);
	} else if ((del || m->mode == MODE_UPDATE) && !r->existed) {
		snprintf(msg, sizeof msg, "%s: no key '%s'", t->name,
		         sb_str(&kh));
		add_issue(m, line, "missing", t->name, key, r->klen, NULL, msg);
	} else {
		if (del || !t->has_schema ||
		    explain_format(t, v, &field, msg, sizeof msg) < 0) {
			snprintf(msg, sizeof msg, "%s", lb_errmsg());
			field = NULL;
		}
		add_issue(m, line, "format", t->name, key, r->klen, field, msg);
	}
	sb_free(&kh);
}

/* What a line asks for, once parsed. */
typedef struct req {
	cli_table *t;
	const char *tname; /* as written (t may be NULL: unknown) */
	int del;
	const void *v; /* the value to store (not for a delete) */
	size_t vl;
	json_t *json; /* the jansson path's value, for dry-run messages */
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

/* The jansson path: 1 with *q filled, or 0 with the line's issue recorded.
 * The tree stays in m->root until do_line() is done with the line. */
static int parse_slow(imp *m, uint64_t line, const char *p, size_t n, req *q)
{
	char err[300];
	json_t *o, *tv, *kv, *vv, *dv;

	o = cli_json_parse(p, n, err, sizeof err);
	if (!o) {
		add_issue(m, line, KIND_PARSE, NULL, NULL, 0, NULL, err);
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
	q->json = vv;
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
		return 0;
	}
	/* The dry run wants the JSON tree to explain refusals. */
	if (m->dry || !parse_fast(m, p, n, &q)) {
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
	push_op(m, line, q.t, m->kbuf.p, m->kbuf.len);
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
		if (m->dry)
			dry_issue(m, line, q.t, q.del, q.json);
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

static uint64_t hash_key(const cli_table *t, const void *k, size_t n)
{
	const unsigned char *s = k;
	uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)t;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 1099511628211ull;
	return h ^ (h >> 29);
}

/* Copy the library's issues, traced back to input lines by table and key
 * (the last op of that key: later writes win at commit). */
static void take_result(imp *m, const lb_result *res)
{
	size_t cap = 16, *slot;
	while (cap < m->nops * 2)
		cap *= 2;
	slot = calloc(cap, sizeof *slot);
	if (slot)
		for (size_t i = 0; i < m->nops; i++) {
			const op_rec *o = &m->ops[i];
			size_t h =
			        hash_key(o->t, m->keys.p + o->koff, o->klen) &
			        (cap - 1);
			while (slot[h]) {
				const op_rec *x = &m->ops[slot[h] - 1];
				if (x->t == o->t && x->klen == o->klen &&
				    !memcmp(m->keys.p + x->koff,
				            m->keys.p + o->koff, o->klen))
					break;
				h = (h + 1) & (cap - 1);
			}
			slot[h] = i + 1;
		}
	for (size_t i = 0; i < res->nissues; i++) {
		const lb_issue *is = &res->issues[i];
		cli_table *t =
		        is->table ? cli_catalog_find(&m->cat, is->table) : NULL;
		uint64_t line = 0;
		if (slot && t) {
			size_t h = hash_key(t, is->key, is->klen) & (cap - 1);
			while (slot[h]) {
				const op_rec *x = &m->ops[slot[h] - 1];
				if (x->t == t && x->klen == is->klen &&
				    !memcmp(m->keys.p + x->koff, is->key,
				            is->klen)) {
					line = x->line;
					break;
				}
				h = (h + 1) & (cap - 1);
			}
		}
		add_issue(m, line, cli_issue_kind(is->kind), is->table, is->key,
		          is->klen, is->field, is->message ? is->message : "");
	}
	free(slot);
}

static void reset_batch(imp *m)
{
	m->nops = 0;
	m->nrefs = 0;
	m->keys.len = 0;
	m->before.len = 0;
	m->engine_issue = 0;
	clear_issues(m);
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

/* Finish the current batch: commit it, or report why not. Returns 0, or an
 * exit code that ends the import. */
static int end_batch(imp *m)
{
	uint64_t batch_id = 0, extra = 0;
	const char *error = NULL;
	int success = 0, rc = 0;
	size_t nfk = 0;
	lb_result res;

	memset(&res, 0, sizeof res);
	m->nbatch++;
	if (m->dry) {
		check_refs(m);
		success = m->niss == 0;
		if (!success && (rc = undo(m)) != 0)
			return rc;
	} else if (m->niss == 0 && !m->engine_issue) {
		rc = lb_batch_commit(m->b, &res);
		m->b = NULL;
		if (rc == 0) {
			success = 1;
			batch_id = res.batch_id;
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
	if (!success)
		error = "validation";
	tally(m, success, extra);
	report_batch(m, success, error, batch_id, m->brecs, extra);
	reset_batch(m);
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

static void summary(imp *m, double el, int stopped)
{
	uint64_t recs = m->rec_ok + m->rec_failed;
	double rate = el > 0 ? (double)recs / el : 0;
	sbuf *b = &m->out;
	if (cli_json) {
		sb_printf(
		        b,
		        "{\"summary\":true,\"dry_run\":%s,\"batches\":%" PRIu64
		        ",\"batches_committed\":%" PRIu64
		        ",\"batches_failed\":%" PRIu64 ",\"records\":%" PRIu64
		        ",\"records_committed\":%" PRIu64
		        ",\"records_failed\":%" PRIu64 ",\"lines\":%" PRIu64
		        ",\"issues\":{",
		        m->dry ? "true" : "false", m->nbatch, m->ok, m->failed,
		        recs, m->rec_ok, m->rec_failed, m->lines + m->blank);
		int first = 1;
		for (size_t i = 0; i < NKINDS; i++)
			if (m->kinds[i]) {
				sb_printf(b, "%s\"%s\":%" PRIu64,
				          first ? "" : ",", kind_names[i],
				          m->kinds[i]);
				first = 0;
			}
		sb_printf(b, "},\"issues_total\":%" PRIu64 ",\"elapsed_s\":",
		          m->issues_total);
		jw_double(b, (double)(int64_t)(el * 1000) / 1000);
		sb_puts(b, ",\"records_per_s\":");
		jw_u64(b, (uint64_t)rate);
		sb_printf(b, ",\"stopped\":%s}\n", stopped ? "true" : "false");
	} else {
		sb_printf(b,
		          "%s%" PRIu64 " batch%s: %" PRIu64 " %s, %" PRIu64
		          " %s\n",
		          m->dry ? "dry run: " : "", m->nbatch,
		          m->nbatch == 1 ? "" : "es", m->ok,
		          m->dry ? "would commit" : "committed", m->failed,
		          m->dry ? "would fail" : "failed");
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
					sb_printf(b, "%s %s %" PRIu64,
					          first ? "" : ",",
					          kind_names[i], m->kinds[i]);
					first = 0;
				}
			sb_putc(b, '\n');
		}
		sb_printf(b, "elapsed %.2f s, %.0f records/s\n", el, rate);
		if (m->dry)
			sb_puts(b, "nothing was committed (dry run)\n");
	}
	sb_flush(b, stdout);
}

static int parse_opts(imp *m, int argc, char **argv, const char **pos,
                      int *nosync, const char **table)
{
	cli_opt o[] = {{"table", 1, NULL},      {"key", 1, NULL},
	               {"batch-size", 1, NULL}, {"mode", 1, NULL},
	               {"label", 1, NULL},      {"stop-on-error", 0, NULL},
	               {"dry-run", 0, NULL},    {"nosync", 0, NULL}};
	size_t np;
	int rc = cli_parse(argc, argv, o, NOPTS(o), pos, 2, 2, &np);
	if (rc)
		return rc;
	*table = o[0].val;
	m->keyfield = o[1].val ? o[1].val : "id";
	if (!*m->keyfield)
		return cli_usage("--key: the field name is empty");
	m->batch_size = 1000;
	if (o[2].val && (rc = cli_u64("--batch-size", o[2].val, 1,
	                              BATCH_SIZE_MAX, &m->batch_size)))
		return rc;
	m->mode = MODE_INSERT;
	if (o[3].val) {
		if (!strcmp(o[3].val, "insert"))
			m->mode = MODE_INSERT;
		else if (!strcmp(o[3].val, "upsert"))
			m->mode = MODE_UPSERT;
		else if (!strcmp(o[3].val, "update"))
			m->mode = MODE_UPDATE;
		else
			return cli_usage("--mode: '%s' is not insert, upsert "
			                 "or update",
			                 o[3].val);
	}
	m->label = o[4].val;
	if (m->label && strlen(m->label) > LB_LABEL_MAX)
		return cli_usage("--label: longer than %d bytes", LB_LABEL_MAX);
	m->stop = o[5].val != NULL;
	m->dry = o[6].val != NULL;
	*nosync = o[7].val != NULL;
	return 0;
}

static void imp_free(imp *m)
{
	if (m->b)
		lb_batch_abort(m->b);
	m->b = NULL;
	clear_issues(m);
	free(m->iss);
	free(m->ops);
	free(m->refs);
	sb_free(&m->keys);
	sb_free(&m->before);
	sb_free(&m->val);
	sb_free(&m->scratch);
	sb_free(&m->kbuf);
	sb_free(&m->out);
	sb_free(&m->rd.line);
	free(m->rd.buf);
	msgpack_sbuffer_destroy(&m->mp);
	for (size_t i = 0; m->refs_of && i < m->cat.n; i++)
		free(m->refs_of[i]);
	free(m->refs_of);
	cli_catalog_free(&m->cat);
	if (m->db)
		lb_close(m->db);
	if (m->rd.fd > 0)
		close(m->rd.fd);
}

int cmd_import(int argc, char **argv)
{
	imp *m = calloc(1, sizeof *m);
	const char *pos[2], *table = NULL, *p;
	int nosync = 0, rc, too_long, stopped = 0, r;
	uint64_t line = 0;
	size_t n;
	struct stat st;

	if (!m)
		return cli_err("out of memory");
	msgpack_sbuffer_init(&m->mp);
	msgpack_packer_init(&m->pk, &m->mp, msgpack_sbuffer_write);
	rc = parse_opts(m, argc, argv, pos, &nosync, &table);
	if (rc)
		goto out;
	m->file = pos[1];
	if (!strcmp(pos[1], "-")) {
		m->rd.fd = 0;
		m->file = "stdin";
	} else {
		m->rd.fd = open(pos[1], O_RDONLY);
		if (m->rd.fd < 0) {
			m->rd.fd = 0;
			rc = cli_err("%s: %s", pos[1], strerror(errno));
			goto out;
		}
	}
	if (fstat(m->rd.fd, &st) == 0 && S_ISREG(st.st_mode))
		m->in_size = (uint64_t)st.st_size;
	else if (fstat(m->rd.fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		rc = cli_err("%s: is a directory", pos[1]);
		goto out;
	}
	rc = cli_open(pos[0], 0, nosync, &m->db);
	if (rc)
		goto out;
	rc = cli_catalog_load(m->db, &m->cat);
	if (rc < 0) {
		rc = cli_lberr(rc, "%s: cannot list tables", pos[0]);
		goto out;
	}
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
	if (table) {
		m->deftable = cli_catalog_find(&m->cat, table);
		if (!m->deftable) {
			rc = cli_err("%s: no table '%s' (--table)", pos[0],
			             table);
			goto out;
		}
	}
	m->rd.buf = cli_xmalloc(READ_CHUNK);
	m->progress = isatty(2);
	m->t0 = m->last_draw = cli_now();

	while ((r = next_line(&m->rd, &p, &n, &too_long)) > 0) {
		line++;
		if (!too_long && blank(p, n)) {
			m->blank++;
			continue;
		}
		if (!m->b && (rc = begin(m, line)) != 0)
			goto out;
		if (m->brecs == 0)
			m->first_line = line;
		m->last_line = line;
		m->brecs++;
		m->lines++;
		if ((rc = do_line(m, line, p, n, too_long)) != 0)
			goto out;
		if (m->brecs == m->batch_size) {
			if ((rc = end_batch(m)) != 0)
				goto out;
			if (m->stop && m->failed) {
				stopped = 1;
				break;
			}
		}
		if ((line & 1023) == 0)
			progress(m, 0);
	}
	if (r < 0) {
		rc = cli_err("%s: read error after line %" PRIu64 ": %s",
		             m->file, line, strerror(errno));
		goto out;
	}
	if (m->brecs && (rc = end_batch(m)) != 0)
		goto out;
	if (m->b) { /* the dry run's outer batch */
		lb_batch_abort(m->b);
		m->b = NULL;
	}
	progress(m, 1);
	summary(m, cli_now() - m->t0, stopped);
	if (m->failed) {
		rc = CLI_DATA;
		if (stopped)
			cli_err("%s: batch %" PRIu64 " (lines %" PRIu64
			        "-%" PRIu64 ") %s; stopped there "
			        "(--stop-on-error), later lines not read",
			        m->file, m->nbatch, m->first_line, m->last_line,
			        m->dry ? "would fail" : "failed validation");
		else
			cli_err("%s: %" PRIu64 " of %" PRIu64 " batches %s",
			        m->file, m->failed, m->nbatch,
			        m->dry ? "would fail validation"
			               : "failed validation and were skipped");
	}
out:
	if (rc && rc != CLI_DATA && m->progress)
		progress(m, 1);
	imp_free(m);
	free(m);
	return rc == CLI_HELP ? 0 : rc;
}
