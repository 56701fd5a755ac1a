/* SPDX-License-Identifier: MIT */
/*
 * _model.h: a plain in-memory model of a logbook database, and a seeded
 * random history generator that drives a live database and the model side by
 * side, asserting after every step that they agree.
 *
 * The key space is small on purpose, so that random batches keep touching
 * the same keys and rollbacks keep meeting later changes:
 *   table "a"  opaque, keys "a0".."a7"
 *   table "h"  opaque, keys "h0".."h7" (hearings; referenced by "w")
 *   table "w"  schema {h: str, required, ref "h"; n: int}, keys "w0".."w7"
 *              (witnesses; each names a hearing)
 * Values of "a" and "h" are short byte strings (the empty string included,
 * which is not the same as absent). The tables are batches 1, 2 and 3.
 *
 * The model keeps the list of batches and the current state, nothing else:
 * per batch its kind, the change records the engine must have logged (exact
 * before- and after-images), its header's `undoes` and, for an undo batch,
 * the set of batches it undoes. Everything else is derived from that list
 * by brute force, the way docs/ROLLBACK.md states it:
 *  - which batches stand (and each one's rolled_back_by) is recomputed from
 *    the newest batch to the oldest whenever a batch is added, or as of any
 *    earlier batch (tm_marks_at), from the undo sets alone;
 *  - a cascade's set is a fixpoint over every batch of the log;
 *  - the value of a key right after batch X is found by replaying the
 *    model's batches from empty.
 * The engine's indexes (the key histories, _refs, its undo entries) are
 * therefore checked against a second implementation that shares nothing with
 * them.
 */
#ifndef LB_TESTS_ENGINE_MODEL_H
#define LB_TESTS_ENGINE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "logbook.h"

#define TM_NT 3   /* tables */
#define TM_NK 8   /* keys per table */
#define TM_VMAX 9 /* longest value */
enum { TM_A = 0, TM_H = 1, TM_W = 2 };
#define TM_SETUP 3 /* batches 1..3 create the tables */

/* A value, or its absence. */
typedef struct tm_val {
	uint8_t present, len;
	uint8_t b[TM_VMAX];
} tm_val;

/* Every table's content; tables[i] exists when i < ntables. */
typedef struct tm_state {
	int ntables;
	tm_val v[TM_NT][TM_NK];
} tm_state;

/* A change record of a data table (op LB_OP_PUT or LB_OP_DELETE). */
typedef struct tm_rec {
	uint8_t op, t, k;
	tm_val before, after;
} tm_rec;

/* Ordinary batches (TM_B_TABLE, TM_B_USER) and undo batches. */
enum { TM_B_TABLE, TM_B_USER, TM_B_ROLLBACK, TM_B_ROLLBACK_TO };

typedef struct tm_batch {
	int kind;
	unsigned flags;  /* TM_B_ROLLBACK: the lb_rollback flags it was made
	                    with (LB_CASCADE, LB_FORCE) */
	int implied;     /* its history is implied (docs/FORMAT.md §2.5, kind
	                    1): a strict or cascading rollback that wrote a
	                    record for every record of the batches it undoes */
	uint64_t undoes; /* the header's: the batch asked for (rollback), X
	                    (rollback to X), else 0 */
	uint64_t *set;   /* undo batch: every batch it undoes, ascending */
	size_t nset;
	uint64_t rolled_back_by; /* derived: the greatest standing batch that
	                            undoes this one, else 0 (as of now) */
	uint64_t records;        /* the header's count (1 for a table batch) */
	tm_rec *recs;            /* data records; none for a table batch */
	size_t nrecs;
	uint32_t keys;   /* the keys its records change (bit t * TM_NK + k) */
	tm_state *state; /* after this batch, if states are kept */
} tm_batch;

typedef struct tm_model {
	tm_state cur;
	tm_batch *b; /* b[i] is batch i + 1 */
	size_t nb, cap;
	int keep_states;
	int trace;      /* print every step to stderr (a reproducer) */
	uint64_t steps; /* steps taken, for messages */
	/* options of the last open by tm_step (TM_STEP_REOPEN picks new
	 * compression and segment sizes each time) */
	lb_options opts;
	/* what happened, for the test's summary */
	struct {
		unsigned long batches, rejected, rollbacks, conflicts, cascades,
		        cascade_members, cascades_of_undo, undo_targets,
		        of_cascades, of_rollback_tos, forced, fk_refused,
		        dryruns, rollback_tos, reopens, noops, cascade_noops,
		        errors, einval, enotfound;
	} stats;
} tm_model;

/* Names. */
extern const char *const tm_table_name[TM_NT];
/* The key of index k in table t ("a3"), in a static buffer of 3 bytes. */
void tm_key(int t, int k, char out[3]);

/* A new model of an empty database. keep_states: remember the state after
 * every batch (tm_state_at). */
tm_model *tm_new(int keep_states);
void tm_free(tm_model *m);

/* Create the three tables in db (which must be empty) and in the model. */
void tm_setup(tm_model *m, lb_db *db);

/* Last batch id of the model. */
static inline uint64_t tm_last(const tm_model *m)
{
	return m->nb;
}

/* The model's batch id (1..tm_last). */
const tm_batch *tm_batch_at(const tm_model *m, uint64_t id);

/* State right after batch id (0 = the empty database); needs keep_states.
 */
const tm_state *tm_state_at(const tm_model *m, uint64_t id);
/* State right after batch id, by replaying the model's records from empty
 * (needs nothing kept). */
void tm_replay_state(const tm_model *m, uint64_t id, tm_state *out);

/* Which batches stood right after batch `upto`, from the undo sets of
 * batches 1..upto alone: rbb[i] (1 <= i <= upto) is the greatest batch
 * <= upto that stands and undoes i, else 0. rbb holds upto + 2 entries. */
void tm_marks_at(const tm_model *m, uint64_t upto, uint64_t *rbb);

/* Has any forced rollback committed so far? */
int tm_has_forced(const tm_model *m);

/* Steps tm_step() may take. */
enum {
	TM_STEP_BATCH = 1u,       /* a user batch (may be refused) */
	TM_STEP_ROLLBACK = 2u,    /* strict, cascade, force, dry run, errors */
	TM_STEP_ROLLBACK_TO = 4u, /* rollback_to a random earlier batch */
	TM_STEP_REOPEN = 8u,      /* close and open again */
	TM_STEP_ALL = 15u
};

/* Take one random step of the kinds in `what` on *db (reopened from dir
 * for TM_STEP_REOPEN) and on the model, asserting that both agree on the
 * outcome (return codes, issues, new batch, its records and the header
 * state of every batch whose standing changed). Does not compare whole
 * tables: call tm_assert_db() for that. */
void tm_step(tm_model *m, lb_db **db, const char *dir, uint64_t *rng,
             unsigned what);

/* A batch to roll back: recent ordinary batches, undo batches (standing or
 * not) often, now and then a batch that does not exist. Never a table
 * batch. */
uint64_t tm_pick_target(const tm_model *m, uint64_t *rng);
/* Flags for lb_rollback: strict, cascade, force, refused combinations,
 * sometimes LB_DRYRUN. */
unsigned tm_pick_flags(uint64_t *rng);

/* Individual steps, for directed tests. Each asserts as tm_step() does and
 * returns the engine's return code. */
int tm_user_batch(tm_model *m, lb_db *db, uint64_t *rng);
int tm_rollback(tm_model *m, lb_db *db, uint64_t id, unsigned flags);
int tm_rollback_to(tm_model *m, lb_db *db, uint64_t id);
/* lb_rollback_to_ex: flags 0 or LB_DRYRUN (others are refused). */
int tm_rollback_to_ex(tm_model *m, lb_db *db, uint64_t id, unsigned flags);

/* Assert that db holds exactly state s: the same tables (lb_tables) and, read
 * through cursors, the same keys and values. */
void tm_assert_state(const tm_state *s, lb_db *db);
/* Assert that db equals the model now: tm_assert_state() of the current
 * state, and the same last batch. */
void tm_assert_db(const tm_model *m, lb_db *db);
/* Assert the header state (undoes, rolled_back_by, records) of the last n
 * batches. */
void tm_assert_recent(const tm_model *m, lb_db *db, uint64_t n);
/* Assert the header state of the last n batches and of every batch
 * whose rolled_back_by in the model differs from (*seen)[id - 1], the
 * model's value at the previous call (a batch new since then counts as
 * changed); then record the model's values in *seen (grown as needed,
 * *nseen entries; free() it). Cheaper than tm_assert_recent() over the
 * whole log at every step. */
void tm_assert_changed(const tm_model *m, lb_db *db, uint64_t n,
                       uint64_t **seen, size_t *nseen);
/* Assert every batch's header state (undoes, rolled_back_by, records) and
 * change records against the model. */
void tm_assert_log(const tm_model *m, lb_db *db);
/* db is the database as of batch upto (a replay): assert its last batch,
 * and every header (undoes, records, and rolled_back_by as it stood right
 * after upto: tm_marks_at). With records, also every batch's change
 * records. */
void tm_assert_log_at(const tm_model *m, lb_db *db, uint64_t upto, int records);
/* Assert that the model agrees with itself: replaying its records from
 * empty meets every before-image and ends in the current state (and in
 * every kept state), and each batch's rolled_back_by is tm_marks_at's. */
void tm_self_check(const tm_model *m);

#endif
