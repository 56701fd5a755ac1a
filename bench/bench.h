/* SPDX-License-Identifier: MIT */
/*
 * bench.h: shared by the files of logbook-bench.
 *
 * The program generates one workload (W1, or W2 with --keys random), then
 * feeds exactly the same records to every system under test: logbook, raw
 * LMDB, LMDB plus a naive zlib log, and SQLite with its session extension.
 * Each system runs the phases it can (commit, rollbacks, replay, reads...)
 * R times on a fresh store; the report gives medians and ratios.
 *
 * Files: main.c (orchestration, medians), options.c (command line),
 * report.c (environment, tables, JSON, goals), util.c (time, files, memory),
 * workload.c (generator), sys_logbook.c, sys_lmdb.c (raw and naive peers),
 * sys_sqlite.c.
 */
#ifndef LB_BENCH_H
#define LB_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- configuration ---------------------------------------------------- */

enum { BK_KEY_LEN = 16 }; /* "h%015llu" */

/* Systems, in report order. */
enum bk_sysid {
	SYS_LOGBOOK,
	SYS_SCHEMA, /* logbook, table with the hearing schema (--schema) */
	SYS_NAIVE,
	SYS_SQLITE,
	SYS_LMDB,
	SYS__COUNT
};

/* Timed phases. Not every system has every phase. */
enum bk_phase {
	PH_COMMIT,
	PH_RB_LAST,     /* strict rollback of the last batch */
	PH_RB_MID,      /* strict rollback of the middle batch */
	PH_RB_FORCE,    /* forced rollback of the middle batch */
	PH_CASCADE,     /* cascade rollback of the middle batch */
	PH_RB_TO,       /* rollback-to the middle batch */
	PH_CHECKPOINT,  /* checkpoint of the whole database */
	PH_REPLAY,      /* replay from empty to the last batch */
	PH_REPLAY_CKPT, /* replay from the middle checkpoint to the last */
	PH_VERIFY,      /* verify: CRCs and hash chain */
	PH_VERIFY_RPL,  /* verify with replay */
	PH_GET,         /* point reads of random existing keys */
	PH_SCAN,        /* full cursor scan */
	PH_ASOF,        /* lb_get_asof of the point-read keys (bench/feed.c) */
	PH_ASOF_CHG,    /* lb_get_asof of keys changed after the as-of batch */
	PH_FEED,        /* lb_changes of every batch */
	PH_EXPORT_ASOF, /* the table as of a batch: scan merged with lb_diff */
	PH_WAIT,        /* lb_wait wake-up latency, another process commits */
	PH_IDLE,        /* CPU of an idle lb_wait (secs = CPU seconds) */
	PH_FOLLOW,      /* a follower applies every batch's frame (follow.c) */
	PH_RSS,         /* peak RSS of commit in a child (not timed) */
	PH__COUNT
};

typedef struct bk_cfg {
	uint64_t records;      /* --records */
	uint64_t batch_size;   /* --batch-size */
	uint32_t value_size;   /* --value-size: mean value bytes */
	unsigned update_pct;   /* --update-pct */
	uint64_t seed;         /* --seed */
	int sync;              /* --sync: fsync at every commit */
	int compression;       /* --compression: logbook and naive zlib level */
	size_t segment_size;   /* --segment-size: logbook, 0 = default */
	unsigned runs;         /* --runs */
	int keys_random;       /* --keys random (W2) */
	const char *dir;       /* --dir: parent of the scratch directory */
	int keep;              /* --keep: keep scratch dir and databases */
	int json;              /* --json */
	const char *json_file; /* --json=FILE, else NULL (stdout) */
	const char *svg_file;  /* --svg=FILE: bar chart, else NULL */
	int schema;            /* --schema */
	uint64_t reads;        /* --reads: point reads per run */
	unsigned systems;      /* bit set of enum bk_sysid */
	unsigned phases;       /* bit set of enum bk_phase */
	uint64_t rss_batches[2]; /* batch sizes of the RSS phase */
	int quiet;               /* --quiet: no progress on stderr */
} bk_cfg;

int bk_options_parse(int argc, char **argv, bk_cfg *cfg);
const char *bk_phase_name(int ph);
const char *bk_sys_name(int sys);

/* ---- workload ---------------------------------------------------------- */

enum { OP_INSERT = 1, OP_UPDATE = 2 };

/* One record: an insert of a new key or an update of an earlier one. */
typedef struct bk_rec {
	char key[BK_KEY_LEN];
	uint8_t op;
	uint32_t vlen;
	uint32_t blen; /* length of the value it replaces (0 for inserts) */
	uint64_t voff; /* value offset in the workload's arena */
	uint64_t kidx; /* key index: the kidx-th inserted key */
} bk_rec;

/* A batch: n records whose values live in arena. */
typedef struct bk_batch {
	const bk_rec *recs;
	size_t n;
	const uint8_t *arena;
} bk_batch;

/* The generator's state, usable on its own (streaming: the RSS child) or
 * through bk_workload (everything generated up front). */
typedef struct bk_gen {
	const bk_cfg *cfg;
	uint64_t rng;
	uint64_t done;      /* records generated */
	uint64_t inserted;  /* keys inserted so far */
	uint64_t committed; /* keys inserted before the current batch */
	uint32_t *cur_len;  /* current value length per key index */
	uint64_t cur_cap;
	bk_rec *recs; /* streaming buffers */
	uint8_t *arena;
	size_t arena_len, arena_cap;
	void *packer; /* msgpack state, opaque here */
} bk_gen;

int bk_gen_init(bk_gen *g, const bk_cfg *cfg, uint64_t batch_size);
/* Generate the next batch into the generator's own buffers; b->n == 0 at
 * the end. Valid until the next call. */
int bk_gen_next(bk_gen *g, uint64_t batch_size, bk_batch *b);
void bk_gen_free(bk_gen *g);
/* The key of key index kidx (W1: sequential; W2: scattered). */
void bk_key(const bk_cfg *cfg, uint64_t kidx, char out[BK_KEY_LEN]);

typedef struct bk_workload {
	const bk_cfg *cfg;
	bk_rec *recs;
	uint64_t n;
	uint8_t *arena;
	uint64_t arena_len;
	uint64_t nbatches;
	uint64_t mid; /* the "middle" batch: (nbatches - 1) / 2, so that a
	                 later batch exists whenever there are two */
	uint64_t batch_size;
	uint64_t keys;        /* distinct keys */
	uint64_t *last_rec;   /* per key index: last record writing it */
	uint64_t user_bytes;  /* sum of key + value bytes written */
	uint64_t image_bytes; /* sum of before + after value bytes */
	uint64_t *reads;      /* key indexes of the point-read phase */
	uint64_t nreads;
} bk_workload;

/* The key of key index kidx in workload w. */
void bk_key_w(const bk_workload *w, uint64_t kidx, char out[BK_KEY_LEN]);
int bk_workload_make(const bk_cfg *cfg, bk_workload *w);
void bk_workload_free(bk_workload *w);
bk_batch bk_workload_batch(const bk_workload *w, uint64_t i);
/* 0 if v is the final value of key index kidx after every batch. */
int bk_workload_check(const bk_workload *w, uint64_t kidx, const void *v,
                      size_t vlen);
/* Records of batches [from, to). */
uint64_t bk_workload_records(const bk_workload *w, uint64_t from, uint64_t to);

/* ---- measurements ------------------------------------------------------ */

typedef struct bk_meas {
	int done;       /* the phase ran */
	int failed;     /* it returned an unexpected error (see note) */
	double secs;    /* wall time */
	double cpu;     /* CPU time of the process (commit only, else 0) */
	uint64_t count; /* records (or reads) it processed */
	uint64_t bytes; /* user bytes it processed (commit, checkpoint) */
	char note[96];  /* e.g. "conflict on 312 keys" */
} bk_meas;

typedef struct bk_run {
	bk_meas ph[PH__COUNT];
	/* commit times of single batches, for the rollback goal */
	double last_batch_secs, mid_batch_secs;
	uint64_t last_batch_recs;
	/* the last batch committed again on a freshly opened copy of the
	 * store as it was before it: the like-for-like peer of a rollback,
	 * which also runs on a freshly opened copy (logbook only; NAN if not
	 * measured) */
	double last_batch_fresh_secs;
	/* median commit time of the batches of the workload's second half,
	 * in the process that committed them all (warm) */
	double late_batch_secs;
	/* logbook: median time of BK_RB_LOOP strict rollbacks of the last
	 * batch in one process on a fresh copy of the store, each followed by
	 * a commit of the workload's last batch again, which the next round
	 * undoes; 0 if not measured */
	double rb_loop_secs;
	/* the median time of those commits of the last batch again: the
	 * rollbacks' peer in the same process, file and rounds (each also
	 * finds the batch's keys in `_gone`, as the batch's first commit did
	 * not), which the warm rollback goal compares them with */
	double rb_loop_commit_secs;
	/* the same two medians with the database closed and opened again
	 * before each rollback and each commit: both on a fresh open, measured
	 * in pairs; 0 if not measured */
	double rb_fresh_secs, rb_fresh_commit_secs;
	uint64_t disk_bytes; /* files of the store after commit */
	uint64_t log_raw;    /* log before compression */
	uint64_t log_stored; /* log as stored */
	int has_log;
} bk_run;

/* Peak RSS of the commit child per RSS batch size, KiB. */
typedef struct bk_rss {
	long kib[2];      /* ru_maxrss */
	long base_kib[2]; /* RSS when the commit began */
	long anon_kib[2]; /* highest RssAnon seen after a batch commit */
	double secs[2];
} bk_rss;

/* ---- systems ----------------------------------------------------------- */

/* Undo-and-redo rounds of the repeated rollback (bk_run.rb_loop_secs). */
#define BK_RB_LOOP 21

/* Context handed to a system's phase runner. */
typedef struct bk_ctx {
	const bk_cfg *cfg;
	const bk_workload *w;
	const char *dir; /* scratch directory of this system and run, empty */
	int schema;      /* logbook: use the hearing schema */
	unsigned phases; /* which phases to run */
} bk_ctx;

/* A system: a streaming commit interface (for the RSS child) and a runner
 * that performs every selected phase of one run. */
typedef struct bk_system {
	int id;
	unsigned phases; /* phases it supports */
	int (*open)(const bk_cfg *cfg, const char *dir, int schema, void **h);
	int (*commit)(void *h, const bk_batch *b);
	void (*close)(void *h);
	int (*run)(const bk_ctx *c, bk_run *out);
} bk_system;

/* Commit every batch of w through s (one transaction per batch), timing
 * each; fills out->ph[PH_COMMIT] and the single-batch times. after, if not
 * NULL, runs after batch i (0-based) outside the clock; non-zero stops. */
typedef int (*bk_after_fn)(void *h, uint64_t i, void *ctx);
int bk_commit_all(const bk_system *s, void *h, const bk_workload *w,
                  bk_run *out, bk_after_fn after, void *ctx);

/* logbook's feed phases (feed.c) on the committed database db, whose
 * workload batch 0 is batch `base`. */
struct lb_db;
void bk_feed_phases(const bk_ctx *c, struct lb_db *db, uint64_t base,
                    bk_run *out);

/* logbook's follow phase (follow.c): every batch of db framed
 * (lb_batch_raw) and applied to a new follower (lb_batch_apply_raw). */
void bk_follow_phase(const bk_ctx *c, struct lb_db *db, bk_meas *m);

extern const bk_system bk_sys_logbook, bk_sys_lmdb, bk_sys_naive, bk_sys_sqlite;

/* Shared by the two LMDB peers (sys_lmdb.c). */
struct MDB_env;
int bk_lmdb_env(const bk_cfg *cfg, const char *dir, struct MDB_env **env);

/* ---- utilities (util.c) ------------------------------------------------ */

/* Reads add a byte of each value here, so no compiler drops them. */
extern volatile uint64_t bk_sink;
double bk_now(void);
double bk_cpu_now(void); /* CPU time of this process, seconds */
int bk_mkdir(const char *path);
char *bk_path(const char *dir, const char *name); /* malloc'd */
int bk_rmrf(const char *path);
int bk_copy_dir(const char *from, const char *to); /* flat directory */
/* Write back every dirty page of the page cache (sync()), outside the
 * clocks: so that the kernel's writeback of files written in an earlier
 * phase or turn does not run during the next timed phase, taking the
 * second processor and the disk from whichever system happens to run
 * then (main.c says where it is called, and where not). */
void bk_settle(void);
uint64_t bk_du(const char *path); /* allocated bytes of a tree */
long bk_rss_now_kib(void);
long bk_maxrss_kib(void);
long bk_rss_anon_kib(void); /* RssAnon: heap and LMDB's dirty pages */
void *bk_xmalloc(size_t n);
void *bk_xrealloc(void *p, size_t n);
void bk_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bk_progress(const bk_cfg *cfg, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
void bk_note(bk_meas *m, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* Fill m from a time span. */
void bk_meas_set(bk_meas *m, double secs, uint64_t count, uint64_t bytes);
uint64_t bk_splitmix(uint64_t *state);
void bk_fmt_key(uint64_t id, char out[BK_KEY_LEN]);

/* ---- report (report.c) ------------------------------------------------- */

typedef struct bk_results {
	const bk_cfg *cfg;
	const bk_workload *w;
	bk_run *runs[SYS__COUNT]; /* [sys][run] */
	bk_rss rss[SYS__COUNT];
	int have_rss[SYS__COUNT];
	char rss_err[SYS__COUNT][192]; /* why an rss child failed */
	double gen_secs;
	long maxrss_kib;
} bk_results;

void bk_report_config(FILE *f, const bk_cfg *cfg);
void bk_report_table(FILE *f, const bk_results *r);
void bk_report_goals(FILE *f, const bk_results *r);
void bk_report_json(FILE *f, const bk_results *r);
/* One bar chart, plain SVG: each system's rate per phase as a multiple of
 * raw LMDB's. */
void bk_report_svg(FILE *f, const bk_results *r);
/* Median of a phase's seconds over the runs; NAN when it never ran. */
double bk_median_secs(const bk_results *r, int sys, int ph);
/* The median of v[0..n) (sorted in place); NAN when n is 0. */
double bk_median(double *v, size_t n);

#endif
