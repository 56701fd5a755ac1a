/* SPDX-License-Identifier: MIT */
/*
 * runs.h: import runs (runs.c), shared by import.c and the `runs` and
 * `rollback --run` commands.
 *
 * Every import that commits something is a run. Its state lives in the
 * database itself, in the opaque table logbook.runs (names starting with
 * "logbook." are reserved for the tool): each batch the run commits also
 * inserts one record, under the key "RUN.SEQ" (both zero-padded decimal),
 * holding the run's identity (file, SHA-256 of its content, options) and
 * what the batch covers (input lines, counts, the line and byte offset to
 * go on from). A record is committed with its batch or not at all, so the
 * standing records tell exactly which lines a run committed, even after a
 * crash; rolling a batch back takes its record away with it. The run's id
 * is the id of its first batch.
 */
#ifndef LB_TOOLS_RUNS_H
#define LB_TOOLS_RUNS_H

#include <signal.h>

#include "cli.h"

#define RUNS_TABLE "logbook.runs"
#define RUNS_PREFIX "logbook." /* reserved table names */
#define RUNS_LOCK "logbook-import.lock"

/* Set by SIGINT/SIGTERM while an import runs (runs_signals()). */
extern volatile sig_atomic_t runs_stop;
/* Catch SIGINT and SIGTERM into runs_stop (on = 1), or restore the
 * defaults (on = 0). The first signal only sets the flag; a second one
 * ends the process as usual. */
void runs_signals(int on);

/* One record: one committed batch of a run. Strings are malloc'd (NULL
 * when absent); aside is a JSON array of [table, key, line] (the keys the
 * batch's coverage set aside, --on-error record) or NULL. */
typedef struct run_rec {
	uint64_t run, seq, batch, prev;
	char *file;
	char sha256[65]; /* "" for stdin */
	uint64_t size;
	int64_t started_ns, time_ns;
	char *mode, *on_error, *table, *keyfield;
	int from_rejects;
	int allow_repeats; /* --allow-repeats */
	uint64_t batch_size;
	uint64_t first_line, last_line, next_line, next_offset;
	uint64_t lines, committed, set_aside;
	int final;
	json_t *aside;
	int aside_truncated;
} run_rec;

void run_rec_free(run_rec *r);
/* The record as compact JSON text (malloc'd). */
char *run_rec_text(const run_rec *r);
/* "RUN.SEQ" into buf (at least 32 bytes); returns its length. */
size_t run_key(char *buf, uint64_t run, uint64_t seq);

/* A run: its standing records, summed. */
typedef struct run_info {
	run_rec first; /* the first standing record (identity) */
	uint64_t id;
	uint64_t lines, committed, set_aside;
	uint64_t *batches; /* standing batches, oldest first */
	size_t nbatches;
	uint64_t last_seq, next_line, next_offset, last_batch;
	int final;     /* its last batch was the end of the input */
	int running;   /* an import holds the lock for it (runs_holder) */
	json_t *aside; /* with want_aside: every record's aside, in order */
} run_info;

/* 1 if the table logbook.runs exists, 0 if not, or an lb error. */
int runs_table_exists(lb_db *db);
/* Every run of db, by id, from one snapshot (none without the table).
 * want_aside: the run whose aside lists to keep (0: none). Returns 0 or
 * an lb error code. */
int runs_load(lb_db *db, uint64_t want_aside, run_info **runs, size_t *n);
void runs_free(run_info *runs, size_t n);
/* "running", "interrupted" or "done". */
const char *run_state(const run_info *r);
/* Batch ids as compact text: "5-9, 12". */
void runs_ids(sbuf *b, const uint64_t *ids, size_t n);

/* ---- one import at a time ------------------------------------------------ */

/* Take the import lock of the database in dir (an fcntl lock on
 * dir/logbook-import.lock), before opening it: opening for writing would
 * wait, unsaid, for another import's open batch. If another process holds
 * it: with nowait fail at once (CLI_FAIL, message printed), else say so on
 * stderr and wait. Returns 0 with *fd (-1 when dir holds no database:
 * opening it then says so), CLI_FAIL, or 130 when interrupted waiting. */
int runs_lock(const char *dir, int nowait, int *fd);
/* Write who holds the lock into it: this process, run (0: not known yet)
 * and the input file. */
void runs_lock_note(int fd, uint64_t run, const char *file);
/* Is the lock of dir held by a process (not this one)? 1 with its pid and
 * the run it names, else 0. */
int runs_holder(const char *dir, long *pid, uint64_t *run);

/* SHA-256 of what fd holds from offset 0, as 64 hex digits; *size gets its
 * length. Returns 0, -1 (errno set) or 1 when runs_stop was raised. */
int runs_sha256(int fd, char hex[65], uint64_t *size);

#endif
