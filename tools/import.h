/* SPDX-License-Identifier: MIT */
/*
 * import.h: the state `logbook import` shares between its files (see
 * import.c for how an import works):
 *   import.c         batches and their end, options, the input loop
 *   import_line.c    reading input lines, one line -> one op
 *   import_record.c  --on-error record: keys and lines set aside
 *   import_report.c  progress, batch reports, rejects, the summary
 *   import_run.c     run records (runs.h), starting and resuming a run
 */
#ifndef LB_TOOLS_IMPORT_H
#define LB_TOOLS_IMPORT_H

#include "cli.h"
#include "runs.h"
#include "wal/hset.h"

#include <stdint.h>

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
	uint64_t pending_batch; /* the id imp_run_put() wrote for its batch */
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

/* The kinds of issue (import.c), as reports and rejects name them. */
extern const char *const KIND_PARSE;
extern const char *const KIND_KEY;
extern const char *const KIND_TABLE;
extern const char *const KIND_VALUE;

extern const char *const KIND_DEP;
extern const char *const KIND_BATCH;

extern const char *const kind_names[10];
#define NKINDS (sizeof kind_names / sizeof kind_names[0])

/* What a line asks for, once parsed. */
typedef struct req {
	cli_table *t;
	const char *tname; /* as written (t may be NULL: unknown) */
	int del;
	const void *v; /* the value to store (not for a delete) */
	size_t vl;
} req;

typedef struct given { /* options as given (NULL: not given) */
	const char *mode, *on_error, *table, *key;
} given;

/* ---- import.c, each documented at its definition ------------------------- */

/* Fill *is (copies of table, key, field and msg; dep: the line it waits
 * on, 0 if none). */
void imp_issue_set(issue *is, uint64_t line, const char *kind,
                   const char *table, const void *key, size_t klen,
                   const char *field, const char *msg, uint64_t dep);
void imp_add_issue(imp *m, uint64_t line, const char *kind, const char *table,
                   const void *key, size_t klen, const char *field,
                   const char *msg);
int imp_begin(imp *m, uint64_t line);
void imp_clear_issues(imp *m);
int imp_cmp_issue(const void *a, const void *b);
int imp_cmp_issue_stable(const void *a, const void *b);
void imp_count_kind(imp *m, const char *kind);
uint64_t imp_kmap_get(imp *m, const lb_hset *h, const cli_table *t,
                      const void *k, size_t kl);
uint64_t imp_kmap_put(imp *m, lb_hset *h, const cli_table *t, const void *k,
                      size_t kl, uint64_t v);
size_t imp_li_of(const imp *m, uint64_t line);
int imp_replay(imp *m);

/* ---- import_line.c, each documented at its definition -------------------- */

int imp_blank(const char *p, size_t n);
int imp_do_line(imp *m, uint64_t line, const char *p, size_t n, int too_long);
int imp_from_reject(imp *m, const char *p, size_t n, char *err, size_t errlen);
int imp_input_ends(reader *r, uint64_t in_size);
int imp_next_line(reader *r, const char **p, size_t *n, int *too_long);

/* ---- import_record.c, each documented at its definition ------------------ */

void imp_aside_add(imp *m, cli_table *t, const void *k, size_t kl,
                   uint64_t line);
void imp_dangling(imp *m, size_t li, const ref_rec *r, const char *lib_msg);
int imp_end_batch_record(imp *m, int final);

/* ---- import_report.c, each documented at its definition ------------------ */

void imp_committed_line(imp *m, uint64_t batch_id, uint64_t nrec,
                        uint64_t aside);
void imp_issue_fmt(const imp *m, sbuf *b, const issue *is, int reason);
void imp_progress(imp *m, int final);
void imp_report_batch(imp *m, int success, const char *error, uint64_t batch_id,
                      uint64_t nrec, uint64_t extra);
void imp_summary(imp *m, double el, int stopped, int interrupted);
void imp_write_rejects(imp *m, const issue *rs, size_t n,
                       const issue *batch_reason);

/* ---- import_run.c, each documented at its definition --------------------- */

int imp_ensure_table(imp *m);
int64_t imp_now_ns(void);
void imp_run_committed(imp *m, uint64_t batch_id, int final,
                       uint64_t last_line);
int imp_run_finish(imp *m, int eof);
void imp_run_pending(imp *m, uint64_t lines, uint64_t aside);
int imp_run_put(imp *m, int final, uint64_t lines, uint64_t committed,
                uint64_t aside, uint64_t last_line, uint64_t end_off);
int imp_run_start(imp *m, const char *dir, const given *g, int resume,
                  int again, uint64_t *line);

#endif
