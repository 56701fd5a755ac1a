/* SPDX-License-Identifier: MIT */
/*
 * Many processes, one database, for a while (docs/RELIABILITY.md, §4 "Many
 * processes").
 *
 * Six processes share one database, each with its own lb_open (the parent
 * closes its handle before it forks and opens the database again at the
 * end):
 *
 * - two writers commit batches of puts, inserts, updates and deletes on
 *   their own keys of table "s" (key "wW.KKK"), the shared key "last", and
 *   a generation in table "g" (NG keys "wW.gI" and "wW.gen", all of one
 *   batch's tag); one commits with LB_NOSYNC, the other synced; now and
 *   then a batch that validation must refuse (a duplicate insert, an
 *   update or delete of a missing key), which must write nothing;
 * - a table maker creates tables (opaque ones, ones whose schema refers to
 *   them and to the stable table "p", ones that refer to themselves),
 *   fills them with large values, then takes everything back with
 *   lb_rollback, newest first, down to the creations; sometimes redoes a
 *   removal and undoes that again; tries rollbacks that must be refused
 *   (a table that holds records or that another table references, a
 *   delete of referenced keys); names are reused;
 * - the CLI (`logbook`, $LB_BIN, default build/logbook) runs put, import
 *   of small JSON-lines files, get and verify in a loop, on table "c"
 *   (an import also records its run in logbook.runs, which it creates);
 * - two readers take snapshots (one process with two threads and a
 *   read-only handle, one with a read-write handle that also runs
 *   lb_verify(LB_VERIFY_REPLAY)): every snapshot must see whole batches
 *   (each writer's generation keys all of one tag; the writer's keys of
 *   "s" in the state right after that batch, as a digest the parent
 *   checks; "last" from the later of the two), cursors must walk sorted
 *   keys, a record's references must be there in the same snapshot; they
 *   also read the log, the key histories and the table list.
 *
 * The library handles (writers, table maker, read-write reader) open with a
 * 256 KiB map and reopen now and then, so the map grows and other
 * processes adopt the new size all the time.
 *
 * Every process that commits logs each batch it committed (id, content) to
 * a file; readers log what each snapshot saw. At the end the parent
 * checks: batch ids 1..last each reported by exactly one process; each
 * batch's label, undone batch and change records (before- and
 * after-images, from a model of every table that the logs rebuild in id
 * order); rolled_back_by as the standing model has it; the final tables
 * equal the model; every snapshot's observation matches the state right
 * after one batch; lb_verify(LB_VERIFY_REPLAY) passes. Any return code
 * that logbook.h does not give for the situation fails the test, in any
 * process (the known gaps below are counted and the call made again):
 * children print why on stderr and exit non-zero, and the parent then
 * kills the others. Every child stops by itself when the work time is
 * over; the parent reaps them all, and kills any still running long after.
 *
 * LB_STRESS_SECONDS sets the whole run (default 50 s, 25 s under
 * sanitizers; `make stress` runs 600 s), about a sixth of it for the
 * checks at the end. LB_TEST_SEED reruns a seed (the interleaving of the
 * processes still varies); LB_STRESS_KEEP=1 keeps the database.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STRESS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||     \
        __has_feature(memory_sanitizer)
#define STRESS_SANITIZED 1
#endif
#endif
#ifndef STRESS_SANITIZED
#define STRESS_SANITIZED 0
#endif

/* Gaps the stress test met, now closed (each 0: a hit fails the test):
 * - a read-only open answered LB_EIO, "page check: renewing a read:
 *   MDB_MAP_RESIZED" (tests/engine/procs2.c);
 * - a call that reloads the tables answered LB_EIO, "reading the catalog:
 *   MDB_MAP_RESIZED", when another process grew the map meanwhile.
 * And one answer that stays, documented in logbook.h: lb_put or
 * lb_batch_commit (any call that writes a batch) may answer LB_EBUSY,
 * "another process created or removed tables while this batch grew the
 * map": growing the map in the middle of a batch ends its LMDB
 * transaction, and LMDB's writer lock with it, so other processes commit
 * in between; the writers begin the batch again. */
#define TOLERATE_RDONLY_OPEN_MAP_RESIZED 0
#define TOLERATE_GROWTH_EBUSY 1
#define TOLERATE_CATALOG_EIO 0

#define NWRITERS 2
#define NK 200       /* keys of "s" per writer */
#define NG 8         /* generation keys of "g" per writer */
#define NCLI 48      /* keys of "c" per kind (put, import) */
#define NAME_POOL 40 /* the table maker reuses names modulo this */
#define SMALL_MAP (256u << 10)
#define WVAL_MIN 48
#define BIG_MAX (400u << 10)
#define SEC 1000000000LL

/* What every process knows: set by the parent before it forks. */
static struct {
	char *root, *dir, *bin;
	int64_t work_end; /* CLOCK_MONOTONIC: no new work after it */
	uint64_t seed;
} cfg;

/* ---- children: failure, time, allocation -------------------------------- */

static char role[32] = "parent";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)))
__attribute__((noreturn));
static void die(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr,
	        "stress: %s (pid %d): %s [seed %" PRIu64
	        ", rerun with LB_TEST_SEED=%" PRIu64 "]\n",
	        role, (int)getpid(), msg, cfg.seed, cfg.seed);
	fflush(stderr);
	_exit(1);
}

/* A failed call: lb_errmsg() is copied before lb_strerror() is called. */
static void die_rc(int rc, const char *what) __attribute__((noreturn));
static void die_rc(int rc, const char *what)
{
	char m[512];
	snprintf(m, sizeof m, "%s", lb_errmsg());
	die("%s: %s (%d): %s", what, lb_strerror(rc), rc, m);
}

#define MUST(call)                                                             \
	do {                                                                   \
		int rc_ = (call);                                              \
		if (rc_ != 0)                                                  \
			die_rc(rc_, #call);                                    \
	} while (0)

static int working(void)
{
	return te_mono_ns() < cfg.work_end;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

static FILE *open_log(const char *name)
{
	char *p = th_path(cfg.root, name);
	FILE *f = fopen(p, "w");
	if (!f)
		die("%s: %s", p, strerror(errno));
	free(p);
	return f;
}

enum { GAP_OPEN_EIO, GAP_GROWTH_EBUSY, GAP_CATALOG_EIO, NGAPS };
static const struct {
	int on, rc;
	const char *text;
} gaps[NGAPS] = {
        {TOLERATE_RDONLY_OPEN_MAP_RESIZED, LB_EIO,
         "renewing a read: MDB_MAP_RESIZED"},
        {TOLERATE_GROWTH_EBUSY, LB_EBUSY, "while this batch grew the map"},
        {TOLERATE_CATALOG_EIO, LB_EIO, "reading the catalog: MDB_MAP_RESIZED"},
};
static atomic_ulong gaps_met[NGAPS]; /* in this process */

/* Is a failure with code rc and message msg a known gap that is
 * tolerated? Counts it. */
static int known_gap(int rc, const char *msg)
{
	for (int i = 0; i < NGAPS; i++)
		if (gaps[i].on && rc == gaps[i].rc &&
		    strstr(msg, gaps[i].text)) {
			atomic_fetch_add(&gaps_met[i], 1);
			return 1;
		}
	return 0;
}

/* rc = call, made again (at most 20 times) while it fails with a known
 * gap. */
#define RETRY(rc, call)                                                        \
	do {                                                                   \
		for (int try_ = 0;; try_++) {                                  \
			(rc) = (call);                                         \
			if ((rc) == 0 || try_ >= 20 ||                         \
			    !known_gap((rc), lb_errmsg()))                     \
				break;                                         \
		}                                                              \
	} while (0)

/* The same, with a statement that resets what the call's callback
 * gathers before each try. */
#define RETRY_RESET(rc, reset, call)                                           \
	do {                                                                   \
		for (int try_ = 0;; try_++) {                                  \
			reset;                                                 \
			(rc) = (call);                                         \
			if ((rc) == 0 || try_ >= 20 ||                         \
			    !known_gap((rc), lb_errmsg()))                     \
				break;                                         \
		}                                                              \
	} while (0)

/* The call succeeds, after known gaps, or the process fails. */
#define MUST_R(call)                                                           \
	do {                                                                   \
		int rcr_;                                                      \
		RETRY(rcr_, call);                                             \
		if (rcr_ != 0)                                                 \
			die_rc(rcr_, #call);                                   \
	} while (0)

static lb_db *open_db(unsigned flags, uint64_t map)
{
	lb_options o;
	lb_db *db = NULL;
	lb_options_init(&o);
	o.flags = flags;
	o.map_size = map;
	MUST_R(lb_open(cfg.dir, &o, &db));
	return db;
}

/* One op of a batch, as planned before the batch begins, so that a batch
 * a known gap refused can be done again exactly. */
typedef struct pop {
	char op; /* P put, I insert, U update, D delete */
	const char *table;
	char key[24];
	size_t kl;
	const void *v;
	size_t vl;
} pop;

static void plan_op(pop *o, char op, const char *table, const char *key,
                    const void *v, size_t vl)
{
	o->op = op;
	o->table = table;
	o->kl = (size_t)snprintf(o->key, sizeof o->key, "%s", key);
	o->v = v;
	o->vl = vl;
}

static int apply_op(lb_batch *b, const pop *o)
{
	switch (o->op) {
	case 'P':
		return lb_put(b, o->table, o->key, o->kl, o->v, o->vl);
	case 'I':
		return lb_insert(b, o->table, o->key, o->kl, o->v, o->vl);
	case 'U':
		return lb_update(b, o->table, o->key, o->kl, o->v, o->vl);
	default:
		return lb_delete(b, o->table, o->key, o->kl);
	}
}

/* Commit the n ops of p as one batch: its id, after as many tries as
 * known gaps take; anything else fails the process. The batch must hold
 * one record per op. */
static uint64_t commit_plan(lb_db *db, const char *label, const pop *p,
                            unsigned n)
{
	char msg[512];
	lb_result res;
	for (int tries = 0;; tries++) {
		lb_batch *b;
		unsigned i = 0;
		int rc = lb_batch_begin(db, label, &b), stage = 0;
		while (rc == 0 && i < n && (rc = apply_op(b, &p[i])) == 0)
			i++;
		memset(&res, 0, sizeof res);
		if (rc == 0) {
			stage = 2;
			rc = lb_batch_commit(b, &res);
		} else if (b) {
			stage = 1;
		}
		if (rc == 0)
			break;
		snprintf(msg, sizeof msg, "%s", lb_errmsg());
		if (stage == 1)
			lb_batch_abort(b);
		lb_result_free(&res);
		if (tries < 20 && known_gap(rc, msg))
			continue;
		die("batch '%s': %s%s%s%s: %s (%d): %s", label,
		    stage == 0   ? "lb_batch_begin"
		    : stage == 2 ? "lb_batch_commit"
		                 : "op ",
		    stage == 1 ? p[i].table : "", stage == 1 ? "/" : "",
		    stage == 1 ? p[i].key : "", lb_strerror(rc), rc, msg);
	}
	if (res.batch_id == 0 || res.records != n)
		die("batch '%s' committed as %" PRIu64 " with %" PRIu64
		    " records, not %u",
		    label, res.batch_id, res.records, n);
	uint64_t id = res.batch_id;
	lb_result_free(&res);
	return id;
}

/* Each process's known gaps, for the parent's summary. */
static void write_gaps(const char *name)
{
	char f[64];
	snprintf(f, sizeof f, "gaps-%s", name);
	FILE *g = open_log(f);
	fprintf(g, "G %lu %lu %lu\n", atomic_load(&gaps_met[0]),
	        atomic_load(&gaps_met[1]), atomic_load(&gaps_met[2]));
	if (fclose(g) != 0)
		die("%s: %s", f, strerror(errno));
}

/* ---- deterministic values ------------------------------------------------ */

static uint64_t mix(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	uint64_t s = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull);
	s = th_rand(&s) ^ c;
	s = th_rand(&s) ^ d;
	return th_rand(&s);
}

static uint64_t bhash(const void *p, size_t n, uint64_t h)
{
	const unsigned char *b = p;
	h ^= 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* The digest of one key and value; a state's digest is their sum. */
static uint64_t kvhash(const void *k, size_t kl, const void *v, size_t vl)
{
	return mix(bhash(k, kl, 0), bhash(v, vl, 1), kl, vl);
}

static size_t wkey_name(unsigned w, unsigned k, char *out)
{
	return (size_t)sprintf(out, "w%u.%03u", w, k);
}

/* The value op j of writer w's batch seq gives its key k: a header naming
 * all four, then len - header random bytes. */
static void wval(unsigned w, uint64_t seq, unsigned j, unsigned k, size_t len,
                 uint8_t *out)
{
	char h[64];
	int n = snprintf(h, sizeof h, "w%u.%03u|s%" PRIu64 "|j%u|", w, k, seq,
	                 j);
	memcpy(out, h, (size_t)n);
	uint64_t st = mix(w, seq, j, k);
	te_fill(&st, out + n, len - (size_t)n);
}

static int wval_parse(const void *v, size_t vl, unsigned *w, unsigned *k,
                      uint64_t *seq, unsigned *j)
{
	char h[64];
	size_t n = vl < sizeof h - 1 ? vl : sizeof h - 1;
	int used = 0;
	memcpy(h, v, n);
	h[n] = 0;
	if (sscanf(h, "w%u.%u|s%" SCNu64 "|j%u|%n", w, k, seq, j, &used) != 4 ||
	    used == 0 || vl < WVAL_MIN)
		return -1;
	return 0;
}

/* Generation key i of writer w's batch seq. out holds 192 bytes. */
static size_t gval(unsigned w, uint64_t seq, unsigned i, uint8_t *out)
{
	int n = snprintf((char *)out, 64, "w%u|s%" PRIu64 "|g%u|", w, seq, i);
	size_t len = (size_t)n + 8 + (size_t)((seq * 7 + i * 13) % 40);
	uint64_t st = mix(w, seq, 1000 + i, 7);
	te_fill(&st, out + n, len - (size_t)n);
	return len;
}

/* The tag of writer w's batch seq: the value of "wW.gen" and of "last". */
static size_t tagval(unsigned w, uint64_t seq, char *out)
{
	return (size_t)sprintf(out, "w%u|s%" PRIu64, w, seq);
}

static int tag_parse(const void *v, size_t vl, unsigned *w, uint64_t *seq)
{
	char h[48], again[48];
	if (vl == 0 || vl >= sizeof h)
		return -1;
	memcpy(h, v, vl);
	h[vl] = 0;
	if (sscanf(h, "w%u|s%" SCNu64, w, seq) != 2 || *w >= NWRITERS)
		return -1;
	tagval(*w, *seq, again);
	return strcmp(h, again) == 0 ? 0 : -1;
}

/* Key order of the library: bytes, shorter first on a common prefix. */
static int keycmp(const void *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

/* ---- msgpack, for the schema tables ------------------------------------- */

static size_t mp_str(uint8_t *o, const char *s)
{
	size_t l = strlen(s); /* < 32 */
	o[0] = (uint8_t)(0xa0 | l);
	memcpy(o + 1, s, l);
	return l + 1;
}

/* A map of n string pairs (n < 16, strings < 32 bytes). */
static size_t mp_map(uint8_t *o, int n, const char *const *kv)
{
	size_t p = 0;
	o[p++] = (uint8_t)(0x80 | n);
	for (int i = 0; i < 2 * n; i++)
		p += mp_str(o + p, kv[i]);
	return p;
}

/* The string value of field f in a map written by mp_map, or -1. */
static int mp_field(const void *v, size_t vl, const char *f, char *out,
                    size_t cap)
{
	const uint8_t *b = v;
	size_t p = 1, fl = strlen(f);
	if (vl < 1 || (b[0] & 0xf0) != 0x80)
		return -1;
	for (int i = 0; i < (b[0] & 0x0f); i++) {
		if (p >= vl || (b[p] & 0xe0) != 0xa0)
			return -1;
		size_t kl = b[p] & 0x1f, q = p + 1 + kl;
		if (q >= vl || (b[q] & 0xe0) != 0xa0)
			return -1;
		size_t n = b[q] & 0x1f;
		if (q + 1 + n > vl)
			return -1;
		if (kl == fl && memcmp(b + p + 1, f, fl) == 0) {
			if (n + 1 > cap)
				return -1;
			memcpy(out, b + q + 1, n);
			out[n] = 0;
			return 0;
		}
		p = q + 1 + n;
	}
	return -1;
}

/* ---- the writers ----------------------------------------------------------
 */

typedef struct wkey {
	uint64_t seq;
	uint32_t j, len;
	int present;
} wkey;

typedef struct wop {
	char op; /* P put, I insert, U update, D delete */
	unsigned k;
	uint32_t len;
} wop;

#define WOPS_MAX 12

/* A batch that validation must refuse as a whole: a few good ops, then
 * one on a key in the wrong state. Nothing may be written. */
static void refused_batch(lb_db *db, unsigned w, const wkey *keys,
                          uint64_t *rng, uint8_t *buf)
{
	pop p[4];
	wkey tmp[NK];
	char key[16];
	int want;
	unsigned n = (unsigned)th_below(rng, 3);
	memcpy(tmp, keys, sizeof tmp);
	for (unsigned j = 0; j < n; j++) {
		unsigned k = (unsigned)th_below(rng, NK);
		wkey_name(w, k, key);
		wval(w, 0, j, k, WVAL_MIN, buf + j * WVAL_MIN);
		plan_op(&p[j], 'P', "s", key, buf + j * WVAL_MIN, WVAL_MIN);
		tmp[k].present = 1;
	}
	unsigned k = (unsigned)th_below(rng, NK);
	wkey_name(w, k, key);
	wval(w, 0, 9, k, WVAL_MIN, buf + n * WVAL_MIN);
	if (tmp[k].present) {
		want = LB_ISSUE_DUPLICATE;
		plan_op(&p[n], 'I', "s", key, buf + n * WVAL_MIN, WVAL_MIN);
	} else {
		want = LB_ISSUE_MISSING;
		plan_op(&p[n], th_below(rng, 2) ? 'U' : 'D', "s", key,
		        buf + n * WVAL_MIN, WVAL_MIN);
	}
	for (int tries = 0;; tries++) {
		lb_batch *b;
		lb_result res;
		int rc;
		RETRY(rc, lb_batch_begin(db, "refused", &b));
		if (rc != 0)
			die_rc(rc, "lb_batch_begin (a batch to be refused)");
		unsigned j = 0;
		while (j < n && (rc = apply_op(b, &p[j])) == 0)
			j++;
		/* the last op must answer LB_EVALIDATION (1: it answered 0) */
		if (rc == 0 && (rc = apply_op(b, &p[n])) == LB_EVALIDATION)
			rc = 0;
		else if (rc == 0)
			rc = 1;
		if (rc != 0) {
			char m[512];
			snprintf(m, sizeof m, "%s", rc < 0 ? lb_errmsg() : "");
			lb_batch_abort(b);
			if (rc < 0 && tries < 20 && known_gap(rc, m))
				continue;
			die("refused batch: %c on %s answered %s, not as "
			    "planned: %s",
			    p[j].op, p[j].key, rc < 0 ? lb_strerror(rc) : "0",
			    m);
		}
		memset(&res, 0, sizeof res);
		rc = lb_batch_commit(b, &res);
		if (rc != LB_EVALIDATION && rc != 0 && tries < 20 &&
		    known_gap(rc, lb_errmsg())) {
			lb_result_free(&res);
			continue;
		}
		if (rc != LB_EVALIDATION || res.batch_id != 0 ||
		    res.nissues != 1 || (int)res.issues[0].kind != want)
			die("refused batch: commit answered %s, batch %" PRIu64
			    ", %zu issues (kind %d, want %d)",
			    lb_strerror(rc), res.batch_id, res.nissues,
			    res.nissues ? (int)res.issues[0].kind : 0, want);
		lb_result_free(&res);
		return;
	}
}

static void writer(unsigned w)
{
	unsigned flags = w == 0 ? LB_NOSYNC : 0;
	lb_db *db = open_db(flags, SMALL_MAP);
	char name[16], label[64], key[32], tag[48];
	snprintf(name, sizeof name, "w%u.log", w);
	FILE *log = open_log(name);
	wkey keys[NK], tmp[NK];
	wop ops[WOPS_MAX];
	pop plan[WOPS_MAX + NG + 2];
	/* the values of one batch: its ops', then its generation's */
	uint8_t *vals = xmalloc((size_t)WOPS_MAX * BIG_MAX), g[NG][192];
	uint64_t rng = mix(cfg.seed, 11, w, 0), seq = 0, last_id = 0;
	uint64_t nops = 0, refused = 0, reopens = 0, bytes = 0, big = 0;
	int64_t next_reopen =
	        te_mono_ns() + (2 + (int64_t)th_below(&rng, 4)) * SEC;
	memset(keys, 0, sizeof keys);
	while (working()) {
		if (te_mono_ns() > next_reopen) {
			lb_close(db);
			db = open_db(flags, SMALL_MAP);
			reopens++;
			next_reopen = te_mono_ns() +
			              (2 + (int64_t)th_below(&rng, 4)) * SEC;
		}
		if (th_below(&rng, 40) == 0) {
			refused_batch(db, w, keys, &rng, vals);
			refused++;
			continue;
		}
		seq++;
		memcpy(tmp, keys, sizeof tmp);
		unsigned n = 1 + (unsigned)th_below(&rng, WOPS_MAX), np = 0;
		for (unsigned j = 0; j < n; j++) {
			unsigned k = (unsigned)th_below(&rng, NK);
			uint8_t *v = vals + (size_t)j * BIG_MAX;
			wop *o = &ops[j];
			wkey_name(w, k, key);
			o->k = k;
			o->len = 0;
			if (tmp[k].present)
				o->op = "PUD"[th_below(&rng, 3)];
			else
				o->op = "PI"[th_below(&rng, 2)];
			if (o->op == 'D') {
				tmp[k].present = 0;
			} else {
				o->len = WVAL_MIN +
				         (uint32_t)th_below(&rng, 400);
				if (th_below(&rng, 500) == 0) {
					o->len = (64u << 10) +
					         (uint32_t)th_below(
					                 &rng,
					                 BIG_MAX - (64u << 10));
					big++;
				}
				wval(w, seq, j, k, o->len, v);
				tmp[k] = (wkey){seq, j, o->len, 1};
				bytes += o->len;
			}
			plan_op(&plan[np++], o->op, "s", key, v, o->len);
		}
		size_t tl = tagval(w, seq, tag);
		plan_op(&plan[np++], 'P', "s", "last", tag, tl);
		for (unsigned i = 0; i < NG; i++) {
			size_t gl = gval(w, seq, i, g[i]);
			sprintf(key, "w%u.g%u", w, i);
			plan_op(&plan[np++], 'P', "g", key, g[i], gl);
		}
		sprintf(key, "w%u.gen", w);
		plan_op(&plan[np++], 'P', "g", key, tag, tl);
		snprintf(label, sizeof label, "w%u batch %" PRIu64, w, seq);
		uint64_t id = commit_plan(db, label, plan, np);
		if (id <= last_id)
			die("batch %s committed as %" PRIu64
			    ", the previous as %" PRIu64,
			    label, id, last_id);
		last_id = id;
		fprintf(log, "B %" PRIu64 " %" PRIu64 " %u\n", last_id, seq, n);
		for (unsigned j = 0; j < n; j++)
			fprintf(log, "o %c %u %u\n", ops[j].op, ops[j].k,
			        ops[j].len);
		memcpy(keys, tmp, sizeof keys);
		nops += n;
	}
	fprintf(log,
	        "S %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
	        " %" PRIu64 "\n",
	        seq, nops, refused, reopens, bytes, big);
	if (fclose(log) != 0)
		die("closing the log: %s", strerror(errno));
	lb_close(db);
	free(vals);
}

/* ---- the table maker ------------------------------------------------------
 */

typedef struct maker {
	lb_db *db;
	FILE *log;
	uint64_t rng, pn; /* p keys p.00000 .. pn-1 exist */
	uint64_t created, removed, rollbacks, refused, reopens, bigbytes;
	uint8_t *vals; /* the values of one batch, BIG_MAX bytes each */
} maker;

#define MAKER_VALS 4

static void log_tb(maker *m, uint64_t id, uint64_t nrec, uint64_t undoes,
                   uint64_t p0, uint64_t pn, const char *label)
{
	fprintf(m->log,
	        "C %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
	        " %s\n",
	        id, nrec, undoes, p0, pn, label);
}

/* The batch that created table name: the newest so labelled (only this
 * process creates tables, and it looks right after creating). */
static uint64_t find_create(maker *m, const char *name)
{
	char want[96];
	uint64_t last;
	lb_batch_info bi;
	snprintf(want, sizeof want, "create table %s", name);
	MUST_R(lb_last_batch(m->db, &last));
	for (uint64_t id = last; id > 0 && last - id < 100000; id--) {
		MUST_R(lb_batch_info_get(m->db, id, &bi));
		if (strcmp(bi.label, want) == 0) {
			if (bi.records != 1)
				die("batch %" PRIu64 " (%s) holds %" PRIu64
				    " records",
				    id, want, bi.records);
			return id;
		}
	}
	die("no batch labelled '%s' up to %" PRIu64, want, last);
}

static uint64_t create(maker *m, const char *name, const lb_schema *s)
{
	MUST_R(lb_table_create(m->db, name, s));
	uint64_t id = find_create(m, name);
	char label[96];
	snprintf(label, sizeof label, "create table %s", name);
	log_tb(m, id, 1, 0, 0, 0, label);
	m->created++;
	return id;
}

/* lb_rollback(id) in strict mode, made again while it answers LB_EBUSY
 * (logbook.h lists it) or fails with a known gap; its code, and the result
 * in *res (to be freed). */
static int rollback(maker *m, uint64_t id, lb_result *res)
{
	for (int tries = 0;; tries++) {
		memset(res, 0, sizeof *res);
		int rc = lb_rollback(m->db, id, 0, res);
		if (rc == 0 || tries >= 20 ||
		    !(known_gap(rc, lb_errmsg()) || rc == LB_EBUSY))
			return rc;
		lb_result_free(res);
	}
}

/* Roll back batch id, strictly; it must succeed with nrec records. */
static uint64_t undo(maker *m, uint64_t id, uint64_t nrec)
{
	lb_result res;
	char label[64];
	int rc = rollback(m, id, &res);
	if (rc != 0) {
		char what[256];
		snprintf(what, sizeof what,
		         "lb_rollback(%" PRIu64 ") (%zu issues%s%s)", id,
		         res.nissues, res.nissues ? ": " : "",
		         res.nissues ? res.issues[0].message : "");
		die_rc(rc, what);
	}
	if (res.batch_id == 0 || res.records != nrec)
		die("lb_rollback(%" PRIu64 "): batch %" PRIu64 " of %" PRIu64
		    " records, want %" PRIu64,
		    id, res.batch_id, res.records, nrec);
	uint64_t nid = res.batch_id;
	snprintf(label, sizeof label, "rollback of batch %" PRIu64, id);
	log_tb(m, nid, nrec, id, 0, 0, label);
	lb_result_free(&res);
	m->rollbacks++;
	return nid;
}

/* A rollback that must be refused with code want (and, for
 * LB_EVALIDATION, a FOREIGN_KEY issue), writing nothing. */
static void refused_undo(maker *m, uint64_t id, int want, const char *why)
{
	lb_result res;
	int rc = rollback(m, id, &res);
	if (rc != want || res.batch_id != 0 ||
	    (want == LB_EVALIDATION &&
	     (res.nissues == 0 || res.issues[0].kind != LB_ISSUE_FOREIGN_KEY)))
		die("lb_rollback(%" PRIu64 ") of %s answered %s (batch %" PRIu64
		    ", %zu issues), want %s",
		    id, why, lb_strerror(rc), res.batch_id, res.nissues,
		    lb_strerror(want));
	lb_result_free(&res);
	m->refused++;
}

static void add_p(maker *m, unsigned n)
{
	pop p[8];
	char label[64], key[32], val[8][32];
	snprintf(label, sizeof label, "p from %" PRIu64, m->pn);
	for (unsigned i = 0; i < n; i++) {
		uint64_t x = m->pn + i;
		snprintf(key, sizeof key, "p.%05" PRIu64, x);
		size_t vl = (size_t)snprintf(val[i], sizeof val[i],
		                             "pv%" PRIu64, x);
		plan_op(&p[i], 'I', "p", key, val[i], vl);
	}
	uint64_t id = commit_plan(m->db, label, p, n);
	log_tb(m, id, n, 0, m->pn, n, label);
	m->pn += n;
}

/* A large value whose data pages grow the map but whose log record
 * compresses well: 256 random bytes, repeated. */
static uint8_t *big_value(maker *m, unsigned slot, size_t len)
{
	uint8_t *v = m->vals + (size_t)slot * BIG_MAX;
	te_fill(&m->rng, v, len < 256 ? len : 256);
	for (size_t i = 256; i < len; i += 256)
		memcpy(v + i, v, len - i < 256 ? len - i : 256);
	m->bigbytes += len;
	return v;
}

static void maker_cycle(maker *m, uint64_t cycle)
{
	unsigned slot = (unsigned)(cycle % NAME_POOL);
	char a[16], bn[16], sn[16], label[64], key[16], up[16], pp[32];
	uint8_t v[8][128];
	pop p[8];
	snprintf(a, sizeof a, "x%ua", slot);
	snprintf(bn, sizeof bn, "x%ub", slot);
	snprintf(sn, sizeof sn, "x%us", slot);
	int has_b = th_below(&m->rng, 10) < 7, has_s = th_below(&m->rng, 2);
	uint64_t id_a = create(m, a, NULL), id_b = 0, id_s = 0;
	if (has_b) {
		lb_field f[] = {{"id", LB_STR, LB_REQUIRED, 0, NULL},
		                {"up", LB_STR, 0, 0, a},
		                {"pp", LB_STR, 0, 0, "p"}};
		lb_schema s = {f, 3, 0};
		id_b = create(m, bn, &s);
	}
	if (has_s) {
		lb_field f[] = {{"id", LB_STR, LB_REQUIRED, 0, NULL},
		                {"parent", LB_STR, 0, 0, sn}};
		lb_schema s = {f, 2, 1};
		id_s = create(m, sn, &s);
	}
	/* large values into a: the map grows */
	unsigned na = 1 + (unsigned)th_below(&m->rng, MAKER_VALS);
	snprintf(label, sizeof label, "fill %s", a);
	for (unsigned i = 0; i < na; i++) {
		size_t len = 512 + th_below(&m->rng, 16u << 10);
		if (th_below(&m->rng, 16) == 0)
			len = (64u << 10) + th_below(&m->rng, 300u << 10);
		snprintf(key, sizeof key, "a%u", i);
		plan_op(&p[i], 'I', a, key, big_value(m, i, len), len);
	}
	uint64_t id_fill = commit_plan(m->db, label, p, na);
	log_tb(m, id_fill, na, 0, 0, 0, label);
	/* records that refer to a's keys, to p's, and to their own table */
	uint64_t id_refs = 0;
	unsigned nrefs = 0;
	if (has_b || has_s) {
		snprintf(label, sizeof label, "refs %s", a);
		if (has_b) {
			unsigned n = 1 + (unsigned)th_below(&m->rng, 3);
			for (unsigned i = 0; i < n; i++, nrefs++) {
				snprintf(key, sizeof key, "b%u", i);
				snprintf(up, sizeof up, "a%u",
				         (unsigned)th_below(&m->rng, na));
				snprintf(pp, sizeof pp, "p.%05" PRIu64,
				         th_below(&m->rng, m->pn));
				const char *kv[] = {"id", key,  "up",
				                    up,   "pp", pp};
				size_t vl = mp_map(v[nrefs], 3, kv);
				plan_op(&p[nrefs], 'I', bn, key, v[nrefs], vl);
			}
		}
		if (has_s) {
			/* children first: references hold at commit */
			unsigned n = 1 + (unsigned)th_below(&m->rng, 3);
			for (unsigned i = 0; i < n; i++, nrefs++) {
				snprintf(key, sizeof key, "c%u", i);
				const char *kv[] = {"id", key, "parent", "r"};
				size_t vl = mp_map(v[nrefs], 2, kv);
				plan_op(&p[nrefs], 'I', sn, key, v[nrefs], vl);
			}
			const char *kv[] = {"id", "r"};
			size_t vl = mp_map(v[nrefs], 1, kv);
			plan_op(&p[nrefs], 'I', sn, "r", v[nrefs], vl);
			nrefs++;
		}
		id_refs = commit_plan(m->db, label, p, nrefs);
		log_tb(m, id_refs, nrefs, 0, 0, 0, label);
	}
	uint64_t id_upd = 0;
	if (th_below(&m->rng, 3) == 0) {
		size_t len = 512 + th_below(&m->rng, 32u << 10);
		snprintf(label, sizeof label, "update %s", a);
		plan_op(&p[0], 'U', a, "a0", big_value(m, 0, len), len);
		id_upd = commit_plan(m->db, label, p, 1);
		log_tb(m, id_upd, 1, 0, 0, 0, label);
	}
	/* rollbacks the rules refuse */
	if (th_below(&m->rng, 3) == 0) {
		refused_undo(m, id_a, LB_EINVAL, "a table that holds records");
		if (has_b && !id_upd)
			refused_undo(m, id_fill, LB_EVALIDATION,
			             "inserts that records refer to");
	}
	/* everything back, newest first */
	if (id_upd)
		undo(m, id_upd, 1);
	if (id_refs)
		undo(m, id_refs, nrefs);
	undo(m, id_fill, na);
	if (has_b && th_below(&m->rng, 2))
		refused_undo(m, id_a, LB_EINVAL, "a table another references");
	if (id_s) {
		undo(m, id_s, 1);
		m->removed++;
	}
	if (id_b) {
		undo(m, id_b, 1);
		m->removed++;
	}
	uint64_t gone = undo(m, id_a, 1);
	m->removed++;
	if (th_below(&m->rng, 5) == 0) {
		/* the removal undone (a is back, empty), then that undone */
		uint64_t back = undo(m, gone, 1);
		m->created++;
		undo(m, back, 1);
		m->removed++;
	}
}

static void table_maker(unsigned arg)
{
	(void)arg;
	maker m;
	memset(&m, 0, sizeof m);
	m.db = open_db(0, SMALL_MAP);
	m.log = open_log("t.log");
	m.rng = mix(cfg.seed, 22, 0, 0);
	m.vals = xmalloc((size_t)MAKER_VALS * BIG_MAX);
	add_p(&m, 8);
	int64_t next_reopen = te_mono_ns() + 2 * SEC;
	uint64_t cycle = 0;
	while (working()) {
		if (te_mono_ns() > next_reopen) {
			/* synced or not: it commits the most batches */
			lb_close(m.db);
			m.db = open_db(th_below(&m.rng, 3) ? 0 : LB_NOSYNC,
			               SMALL_MAP);
			m.reopens++;
			next_reopen = te_mono_ns() +
			              (1 + (int64_t)th_below(&m.rng, 4)) * SEC;
		}
		maker_cycle(&m, cycle++);
		if (th_below(&m.rng, 5) == 0)
			add_p(&m, 1 + (unsigned)th_below(&m.rng, 4));
	}
	fprintf(m.log,
	        "S %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
	        " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
	        cycle, m.created, m.removed, m.rollbacks, m.refused, m.reopens,
	        m.pn, m.bigbytes);
	if (fclose(m.log) != 0)
		die("closing the log: %s", strerror(errno));
	lb_close(m.db);
	free(m.vals);
}

/* ---- the CLI ----------------------------------------------------------------
 */

typedef struct ckey {
	int present;
	char val[48];
} ckey;

typedef struct cline {
	char op; /* r: put, d: delete */
	char key[16];
	char val[48];
} cline;

/* Run the CLI with argv; stdout into *out (malloc'd, NUL-terminated);
 * returns the exit status, or dies. */
/* Did the CLI fail (exit 3, its stderr in path) with a known gap? */
static int gap_in(const char *path)
{
	char e[1024];
	size_t r = 0;
	FILE *g = fopen(path, "r");
	if (g) {
		r = fread(e, 1, sizeof e - 1, g);
		fclose(g);
	}
	e[r] = 0;
	for (int i = 0; i < NGAPS; i++)
		if (gaps[i].on && strstr(e, gaps[i].text)) {
			atomic_fetch_add(&gaps_met[i], 1);
			return 1;
		}
	return 0;
}

static int run_cli(char *const argv[], char **out)
{
	int tries = 0;
again:;
	char *op = th_path(cfg.root, "cli.out"),
	     *ep = th_path(cfg.root, "cli.err");
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int fo = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int fe = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
			_exit(126);
		execv(cfg.bin, argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	/* a command of one batch or none fails whole: run it again */
	if (WIFEXITED(st) && WEXITSTATUS(st) == 3 && tries++ < 20 &&
	    strcmp(argv[1], "import") != 0 && gap_in(ep)) {
		free(op);
		free(ep);
		goto again;
	}
	FILE *f = fopen(op, "r");
	size_t cap = 4096, n = 0;
	char *b = xmalloc(cap);
	if (f) {
		size_t r;
		while ((r = fread(b + n, 1, cap - n - 1, f)) > 0) {
			n += r;
			if (cap - n - 1 == 0)
				b = realloc(b, cap *= 2);
			if (!b)
				die("out of memory");
		}
		fclose(f);
	}
	b[n] = 0;
	*out = b;
	if (!WIFEXITED(st)) {
		char e[512] = "";
		FILE *g = fopen(ep, "r");
		if (g) {
			size_t r = fread(e, 1, sizeof e - 1, g);
			e[r] = 0;
			fclose(g);
		}
		die("%s %s: killed by signal %d; stderr: %s", argv[0], argv[1],
		    WIFSIGNALED(st) ? WTERMSIG(st) : -1, e);
	}
	free(op);
	free(ep);
	return WEXITSTATUS(st);
}

static void cli_fail(char *const argv[], int st, const char *out,
                     const char *why) __attribute__((noreturn));
static void cli_fail(char *const argv[], int st, const char *out,
                     const char *why)
{
	char cmd[512] = "", e[1024] = "";
	char *ep = th_path(cfg.root, "cli.err");
	FILE *g = fopen(ep, "r");
	if (g) {
		size_t r = fread(e, 1, sizeof e - 1, g);
		e[r] = 0;
		fclose(g);
	}
	for (int i = 0; argv[i]; i++) {
		strncat(cmd, argv[i], sizeof cmd - strlen(cmd) - 2);
		strncat(cmd, " ", sizeof cmd - strlen(cmd) - 1);
	}
	die("%s: %s (exit %d); stdout: %.600s; stderr: %s", cmd, why, st, out,
	    e);
}

static uint64_t json_u64(const char *s, const char *name, int *ok)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":", name);
	const char *p = strstr(s, pat);
	if (!p) {
		*ok = 0;
		return 0;
	}
	p += strlen(pat);
	if (*p < '0' || *p > '9') {
		*ok = 0;
		return 0;
	}
	return strtoull(p, NULL, 10);
}

static void cli_main(unsigned arg)
{
	(void)arg;
	FILE *log = open_log("cli.log");
	ckey keys[2 * NCLI]; /* put keys "cli.pNN", then import keys */
	ckey scratch[2 * NCLI];
	cline lines[16];
	uint64_t rng = mix(cfg.seed, 33, 0, 0), seq = 0;
	uint64_t commands = 0, puts = 0, imports = 0, ibatches = 0, gets = 0,
	         verifies = 0;
	char *out = NULL;
	memset(keys, 0, sizeof keys);
	while (working()) {
		uint64_t u = th_below(&rng, 100);
		seq++;
		commands++;
		if (u < 50) {
			unsigned k = (unsigned)th_below(&rng, NCLI);
			char key[16], val[48], json[64];
			snprintf(key, sizeof key, "cli.p%02u", k);
			snprintf(val, sizeof val, "cli-p-%" PRIu64 "-%08x", seq,
			         (unsigned)th_rand(&rng));
			snprintf(json, sizeof json, "\"%s\"", val);
			char *argv[] = {cfg.bin, "put", cfg.dir,  "c",
			                key,     json,  "--json", NULL};
			int st = run_cli(argv, &out);
			int ok = 1;
			uint64_t id = json_u64(out, "batch_id", &ok);
			if (st != 0 || !ok || id == 0 ||
			    !strstr(out, "\"success\":true"))
				cli_fail(argv, st, out, "put failed");
			fprintf(log, "P %" PRIu64 " %s %s\n", id, key, val);
			keys[k].present = 1;
			snprintf(keys[k].val, sizeof keys[k].val, "%s", val);
			puts++;
		} else if (u < 85) {
			char fname[32], bs[8];
			snprintf(fname, sizeof fname, "imp%" PRIu64 ".jsonl",
			         seq);
			char *path = th_path(cfg.root, fname);
			FILE *f = fopen(path, "w");
			if (!f)
				die("%s: %s", path, strerror(errno));
			unsigned n = 1 + (unsigned)th_below(&rng, 12);
			memcpy(scratch, keys, sizeof scratch);
			for (unsigned i = 0; i < n; i++) {
				cline *l = &lines[i];
				unsigned k = (unsigned)th_below(&rng, 2 * NCLI);
				if (scratch[k].present &&
				    th_below(&rng, 3) == 0) {
					l->op = 'd';
					l->val[0] = 0;
					scratch[k].present = 0;
				} else {
					l->op = 'r';
					if (k < NCLI)
						k += NCLI;
					snprintf(l->val, sizeof l->val,
					         "cli-i-%" PRIu64 "-%u-%08x",
					         seq, i,
					         (unsigned)th_rand(&rng));
					scratch[k].present = 1;
					snprintf(scratch[k].val,
					         sizeof scratch[k].val, "%s",
					         l->val);
				}
				snprintf(l->key, sizeof l->key, "cli.%c%02u",
				         k < NCLI ? 'p' : 'i', k % NCLI);
				if (l->op == 'd')
					fprintf(f,
					        "{\"table\":\"c\",\"key\":\"%"
					        "s\","
					        "\"delete\":true}\n",
					        l->key);
				else
					fprintf(f,
					        "{\"table\":\"c\",\"key\":\"%"
					        "s\","
					        "\"value\":\"%s\"}\n",
					        l->key, l->val);
			}
			if (fclose(f) != 0)
				die("%s: %s", path, strerror(errno));
			snprintf(bs, sizeof bs, "%u",
			         1 + (unsigned)th_below(&rng, 5));
			char *argv[] = {cfg.bin,
			                "import",
			                cfg.dir,
			                path,
			                "--json",
			                "--mode",
			                "upsert",
			                "--allow-repeats",
			                "--batch-size",
			                bs,
			                th_below(&rng, 2) ? "--nosync" : NULL,
			                NULL};
			int st = run_cli(argv, &out);
			if (st != 0 || !strstr(out, "\"batches_failed\":0"))
				cli_fail(argv, st, out, "import failed");
			/* one line per batch, in order */
			unsigned covered = 0, nids = 0;
			uint64_t ids[16];
			for (char *p = out; (p = strstr(p, "{\"batch\":"));
			     p++) {
				char *end = strchr(p, '\n');
				if (end)
					*end = 0;
				int ok = 1;
				uint64_t id = json_u64(p, "batch_id", &ok);
				uint64_t first = json_u64(p, "first_line", &ok);
				uint64_t lastl = json_u64(p, "last_line", &ok);
				uint64_t recs = json_u64(p, "records", &ok);
				if (!ok || !strstr(p, "\"success\":true") ||
				    first != covered + 1 || lastl < first ||
				    lastl > n || recs != lastl - first + 1)
					cli_fail(argv, st, p,
					         "unexpected batch line");
				fprintf(log,
				        "I %" PRIu64 " %" PRIu64 " %" PRIu64
				        " %s\n",
				        id, recs, first, fname);
				for (uint64_t i = first; i <= lastl; i++) {
					cline *l = &lines[i - 1];
					if (l->op == 'd')
						fprintf(log, "d %s\n", l->key);
					else
						fprintf(log, "r %s %s\n",
						        l->key, l->val);
				}
				covered = (unsigned)lastl;
				if (nids < 16)
					ids[nids++] = id;
				ibatches++;
				if (end)
					*end = '\n';
			}
			if (covered != n)
				cli_fail(argv, st, out,
				         "not every line committed");
			/* the run's batches: those above, and perhaps one
			 * that holds only the run's record */
			char *rb = strstr(out, "\"run_batches\":[");
			int ok = 1;
			uint64_t run = json_u64(out, "run", &ok);
			if (!rb || !ok)
				cli_fail(argv, st, out,
				         "no run in the summary");
			for (char *q = rb + 15; *q >= '0' && *q <= '9';) {
				uint64_t id = strtoull(q, &q, 10);
				unsigned f = 0;
				while (f < nids && ids[f] != id)
					f++;
				if (f == nids)
					fprintf(log,
					        "R %" PRIu64 " %" PRIu64
					        " %s\n",
					        id, run, fname);
				if (*q == ',')
					q++;
			}
			memcpy(keys, scratch, sizeof keys);
			unlink(path);
			free(path);
			imports++;
		} else if (u < 97) {
			unsigned k = (unsigned)th_below(&rng, 2 * NCLI);
			char key[16], want[80];
			snprintf(key, sizeof key, "cli.%c%02u",
			         k < NCLI ? 'p' : 'i', k % NCLI);
			char *argv[] = {cfg.bin, "get",    cfg.dir, "c",
			                key,     "--json", NULL};
			int st = run_cli(argv, &out);
			snprintf(want, sizeof want, "\"value\":\"%s\"",
			         keys[k].val);
			if (keys[k].present ? st != 0 || !strstr(out, want)
			                    : st != 1)
				cli_fail(argv, st, out,
				         keys[k].present
				                 ? "get: not the value put"
				                 : "get: a deleted key");
			gets++;
		} else {
			char *argv[] = {cfg.bin, "verify", cfg.dir, "--json",
			                NULL};
			int st = run_cli(argv, &out);
			if (st != 0 || !strstr(out, "\"ok\":true"))
				cli_fail(argv, st, out, "verify failed");
			verifies++;
		}
		free(out);
		out = NULL;
	}
	fprintf(log,
	        "S %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
	        " %" PRIu64 "\n",
	        commands, puts, imports, ibatches, gets, verifies);
	if (fclose(log) != 0)
		die("closing the log: %s", strerror(errno));
}

/* ---- the readers ----------------------------------------------------------
 */

typedef struct rdr {
	lb_db *db;
	FILE *log;
	pthread_mutex_t mu;
	int strict_refs; /* one thread: its tables are its snapshots' */
	int verifier;
	unsigned flags;
	atomic_ulong snapshots, cursors, verifies, verify_busy, gets, logreads,
	        histories, tablewalks, verify_ms;
	uint64_t verify_ns;
} rdr;

typedef struct rthread {
	rdr *r;
	uint64_t rng;
	uint8_t *buf;
} rthread;

/* A writer's value as read: its header names its key, and its bytes are
 * those the writer wrote; returns the batch (seq) it came from. */
static uint64_t check_wvalue(rthread *t, unsigned w, unsigned k, const void *v,
                             size_t vl, const char *where)
{
	unsigned vw, vk, j;
	uint64_t seq;
	if (wval_parse(v, vl, &vw, &vk, &seq, &j) != 0 || vw != w || vk != k ||
	    vl > BIG_MAX)
		die("%s: w%u.%03u holds a malformed value (%zu bytes: %.40s)",
		    where, w, k, vl, (const char *)v);
	wval(w, seq, j, k, vl, t->buf);
	if (memcmp(v, t->buf, vl) != 0)
		die("%s: w%u.%03u: the bytes differ from what batch %" PRIu64
		    " of writer %u wrote",
		    where, w, k, seq, w);
	return seq;
}

static void walk_sorted(lb_cursor *c, const char *table, rthread *t,
                        void (*each)(rthread *, const void *, size_t,
                                     const void *, size_t, void *),
                        void *ctx)
{
	const void *k, *v, *pk = NULL;
	size_t kl, vl, pkl = 0;
	int rc;
	while ((rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0) {
		if (pk && keycmp(pk, pkl, k, kl) >= 0)
			die("cursor on %s: key %.*s after %.*s", table, (int)kl,
			    (const char *)k, (int)pkl, (const char *)pk);
		if (each)
			each(t, k, kl, v, vl, ctx);
		pk = k;
		pkl = kl;
	}
	if (rc != LB_ENOTFOUND)
		die_rc(rc, "lb_cursor_next");
}

typedef struct sview {
	uint64_t gen[NWRITERS];
	uint64_t digest[NWRITERS];
	unsigned lastw;
	uint64_t lastseq;
	unsigned nkeys;
} sview;

static void each_s(rthread *t, const void *k, size_t kl, const void *v,
                   size_t vl, void *ctx)
{
	sview *sv = ctx;
	unsigned w, kk;
	char kb[32];
	sv->nkeys++;
	if (kl == 4 && memcmp(k, "last", 4) == 0) {
		if (tag_parse(v, vl, &sv->lastw, &sv->lastseq) != 0 ||
		    sv->lastseq > sv->gen[sv->lastw])
			die("snapshot: s/last is %.*s with gens %" PRIu64
			    "/%" PRIu64,
			    (int)vl, (const char *)v, sv->gen[0], sv->gen[1]);
		return;
	}
	if (kl >= sizeof kb)
		die("snapshot: a key of %zu bytes in s", kl);
	memcpy(kb, k, kl);
	kb[kl] = 0;
	int used = 0;
	if (sscanf(kb, "w%u.%u%n", &w, &kk, &used) != 2 || (size_t)used != kl ||
	    w >= NWRITERS || kk >= NK)
		die("snapshot: unknown key %s in s", kb);
	uint64_t seq = check_wvalue(t, w, kk, v, vl, "snapshot");
	if (seq > sv->gen[w])
		die("snapshot: w%u.%03u holds batch %" PRIu64
		    " of writer %u, whose generation here is %" PRIu64
		    " (a batch seen in part)",
		    w, kk, seq, w, sv->gen[w]);
	sv->digest[w] += kvhash(k, kl, v, vl);
}

static void each_g(rthread *t, const void *k, size_t kl, const void *v,
                   size_t vl, void *ctx)
{
	sview *sv = ctx;
	char kb[32];
	unsigned w, i;
	uint8_t g[192];
	(void)t;
	if (kl >= sizeof kb)
		die("snapshot: a key of %zu bytes in g", kl);
	memcpy(kb, k, kl);
	kb[kl] = 0;
	int used = 0;
	if (sscanf(kb, "w%u.g%u%n", &w, &i, &used) == 2 && (size_t)used == kl &&
	    w < NWRITERS && i < NG) {
		size_t gl = gval(w, sv->gen[w], i, g);
		if (sv->gen[w] == 0 || gl != vl || memcmp(g, v, vl) != 0)
			die("snapshot: g/%s is not of generation %" PRIu64
			    " (a batch seen in part)",
			    kb, sv->gen[w]);
	} else if (sscanf(kb, "w%u.gen%n", &w, &used) == 1 &&
	           (size_t)used == kl && w < NWRITERS) {
		;
	} else {
		die("snapshot: unknown key %s in g", kb);
	}
	sv->nkeys++;
}

static void each_c(rthread *t, const void *k, size_t kl, const void *v,
                   size_t vl, void *ctx)
{
	(void)t;
	(void)ctx;
	if (kl != 7 || memcmp(k, "cli.", 4) != 0 || vl < 6 ||
	    memcmp(v, "cli-", 4) != 0)
		die("snapshot: c/%.*s = %.*s is not the CLI's", (int)kl,
		    (const char *)k, (int)(vl < 40 ? vl : 40), (const char *)v);
}

static void one_snapshot(rthread *t)
{
	rdr *r = t->r;
	lb_snapshot *s;
	lb_cursor *c;
	const void *v;
	size_t vl;
	char key[32];
	uint8_t g[192];
	sview sv;
	memset(&sv, 0, sizeof sv);
	sv.lastw = 9;
	MUST_R(lb_snapshot_open(r->db, &s));
	/* each writer's generation, then its keys of g by point reads */
	for (unsigned w = 0; w < NWRITERS; w++) {
		size_t kl = (size_t)sprintf(key, "w%u.gen", w);
		int rc = lb_snapshot_get(s, "g", key, kl, &v, &vl);
		unsigned tw;
		if (rc == 0) {
			if (tag_parse(v, vl, &tw, &sv.gen[w]) != 0 || tw != w)
				die("snapshot: g/%s is %.*s", key, (int)vl,
				    (const char *)v);
		} else if (rc != LB_ENOTFOUND) {
			die_rc(rc, "lb_snapshot_get(g, gen)");
		}
		for (unsigned i = 0; i < NG; i++) {
			kl = (size_t)sprintf(key, "w%u.g%u", w, i);
			rc = lb_snapshot_get(s, "g", key, kl, &v, &vl);
			if (sv.gen[w] == 0 && rc == LB_ENOTFOUND)
				continue;
			if (rc != 0 && rc != LB_ENOTFOUND)
				die_rc(rc, "lb_snapshot_get(g)");
			size_t gl = gval(w, sv.gen[w], i, g);
			if (rc != 0 || gl != vl || memcmp(g, v, vl) != 0)
				die("snapshot: g/%s is not of generation "
				    "%" PRIu64 " (a batch seen in part)",
				    key, sv.gen[w]);
		}
	}
	/* the same through a cursor */
	MUST(lb_cursor_open(s, "g", &c));
	walk_sorted(c, "g", t, each_g, &sv);
	lb_cursor_close(c);
	unsigned want = 0;
	for (unsigned w = 0; w < NWRITERS; w++)
		want += sv.gen[w] ? NG + 1 : 0;
	if (sv.nkeys != want)
		die("snapshot: %u keys in g, want %u", sv.nkeys, want);
	/* the writers' keys of s: each from a batch at or before the
	 * generation, and their digest for the parent */
	sv.nkeys = 0;
	MUST(lb_cursor_open(s, "s", &c));
	walk_sorted(c, "s", t, each_s, &sv);
	lb_cursor_close(c);
	if ((sv.gen[0] || sv.gen[1]) != (sv.lastw != 9))
		die("snapshot: s/last %s, gens %" PRIu64 "/%" PRIu64,
		    sv.lastw != 9 ? "present" : "absent", sv.gen[0], sv.gen[1]);
	/* a cursor that seeks */
	{
		unsigned w = (unsigned)th_below(&t->rng, NWRITERS),
		         k = (unsigned)th_below(&t->rng, NK);
		size_t kl = wkey_name(w, k, key);
		const void *ck, *cv;
		size_t ckl, cvl;
		MUST(lb_cursor_open(s, "s", &c));
		MUST(lb_cursor_seek(c, key, kl));
		int rc = lb_cursor_next(c, &ck, &ckl, &cv, &cvl);
		if (rc == 0 && keycmp(ck, ckl, key, kl) < 0)
			die("cursor: seek to %s gave %.*s", key, (int)ckl,
			    (const char *)ck);
		if (rc != 0 && rc != LB_ENOTFOUND)
			die_rc(rc, "lb_cursor_next after seek");
		lb_cursor_close(c);
	}
	MUST(lb_cursor_open(s, "c", &c));
	walk_sorted(c, "c", t, each_c, NULL);
	lb_cursor_close(c);
	lb_snapshot_close(s);
	atomic_fetch_add(&r->snapshots, 1);
	atomic_fetch_add(&r->cursors, 4);
	pthread_mutex_lock(&r->mu);
	fprintf(r->log,
	        "O %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %" PRIu64
	        "\n",
	        sv.gen[0], sv.gen[1], sv.digest[0], sv.digest[1], sv.lastw,
	        sv.lastseq);
	pthread_mutex_unlock(&r->mu);
}

typedef struct tnames {
	char name[16][LB_TABLE_NAME_MAX + 1];
	unsigned n, stable, runs; /* runs: the CLI's logbook.runs */
	uint64_t runs_records;
} tnames;

static int table_cb(void *ctx, const char *name, const lb_schema *schema,
                    uint64_t records)
{
	tnames *tn = ctx;
	(void)schema;
	(void)records;
	if (name[0] == 'x') {
		if (tn->n < 16)
			snprintf(tn->name[tn->n++], sizeof tn->name[0], "%s",
			         name);
	} else if (strcmp(name, "c") == 0 || strcmp(name, "g") == 0 ||
	           strcmp(name, "p") == 0 || strcmp(name, "s") == 0) {
		tn->stable++;
	} else if (strcmp(name, "logbook.runs") == 0) {
		tn->runs++;
		tn->runs_records = records;
	} else {
		die("lb_tables: an unknown table %s", name);
	}
	return 0;
}

typedef struct refctx {
	lb_snapshot *s;
	const char *table, *up; /* up: the table "up" refers to */
	int strict;
} refctx;

static void each_ref(rthread *t, const void *k, size_t kl, const void *v,
                     size_t vl, void *ctx)
{
	refctx *x = ctx;
	char f[32];
	const void *rv;
	size_t rvl;
	(void)t;
	if (x->table[strlen(x->table) - 1] == 'a')
		return; /* opaque values */
	if (mp_field(v, vl, "id", f, sizeof f) != 0 || strlen(f) != kl ||
	    memcmp(f, k, kl) != 0)
		die("snapshot: %s/%.*s: a malformed record", x->table, (int)kl,
		    (const char *)k);
	if (!x->strict)
		return;
	/* references hold in every committed state, so in a snapshot */
	const char *fields[] = {"up", "pp", "parent"};
	for (int i = 0; i < 3; i++) {
		if (mp_field(v, vl, fields[i], f, sizeof f) != 0)
			continue;
		const char *to = i == 0 ? x->up : i == 1 ? "p" : x->table;
		int rc = lb_snapshot_get(x->s, to, f, strlen(f), &rv, &rvl);
		if (rc != 0) {
			char m[256];
			snprintf(m, sizeof m, "%s", lb_errmsg());
			die("snapshot: %s/%.*s refers to %s/%s: %s (%s)",
			    x->table, (int)kl, (const char *)k, to, f,
			    lb_strerror(rc), m);
		}
	}
}

/* The maker's tables, which come and go: listed, then walked in a
 * snapshot where they may be gone already. */
static void walk_tables(rthread *t)
{
	rdr *r = t->r;
	tnames tn;
	lb_snapshot *s;
	memset(&tn, 0, sizeof tn);
	int rc;
	RETRY_RESET(rc, memset(&tn, 0, sizeof tn),
	            lb_tables(r->db, table_cb, &tn));
	if (rc != 0)
		die_rc(rc, "lb_tables");
	if (tn.stable != 4)
		die("lb_tables: %u of the 4 stable tables", tn.stable);
	MUST_R(lb_snapshot_open(r->db, &s));
	for (unsigned i = 0; i < tn.n; i++) {
		lb_cursor *c;
		int rc = lb_cursor_open(s, tn.name[i], &c);
		if (rc == LB_ENOTFOUND)
			continue;
		if (rc != 0)
			die_rc(rc, "lb_cursor_open(a maker's table)");
		char up[LB_TABLE_NAME_MAX + 1];
		snprintf(up, sizeof up, "%s", tn.name[i]);
		up[strlen(up) - 1] = 'a';
		refctx x = {s, tn.name[i], up, r->strict_refs};
		walk_sorted(c, tn.name[i], t, each_ref, &x);
		lb_cursor_close(c);
		atomic_fetch_add(&r->cursors, 1);
	}
	lb_snapshot_close(s);
	atomic_fetch_add(&r->tablewalks, 1);
}

static int count_cb(void *ctx, const lb_change *c)
{
	(void)c;
	(*(uint64_t *)ctx)++;
	return 0;
}

static void read_log(rthread *t)
{
	rdr *r = t->r;
	uint64_t last, n = 0;
	lb_batch_info bi;
	MUST_R(lb_last_batch(r->db, &last));
	if (last == 0)
		die("lb_last_batch: 0 after the setup's batches");
	uint64_t id = 1 + th_below(&t->rng, last);
	MUST_R(lb_batch_info_get(r->db, id, &bi));
	int rc;
	RETRY_RESET(rc, n = 0, lb_changes(r->db, id, count_cb, &n));
	if (rc != 0)
		die_rc(rc, "lb_changes");
	if (bi.id != id || n != bi.records)
		die("batch %" PRIu64 ": info of %" PRIu64 ", %" PRIu64
		    " records walked of %" PRIu64,
		    id, bi.id, n, bi.records);
	atomic_fetch_add(&r->logreads, 1);
}

typedef struct hctx {
	uint64_t prev;
	const char *key;
	size_t kl;
	unsigned n;
	const char *bad;
} hctx;

static int hist_cb(void *ctx, uint64_t batch, const lb_change *c)
{
	hctx *h = ctx;
	if (!c)
		h->bad = "a pruned batch (nothing is pruned)";
	else if (batch > h->prev)
		h->bad = "batches not newest first";
	else if (c->klen != h->kl || memcmp(c->key, h->key, h->kl) != 0 ||
	         strcmp(c->table, "s") != 0)
		h->bad = "a change of another key";
	h->prev = batch;
	h->n++;
	return h->bad ? 1 : 0;
}

static void read_history(rthread *t)
{
	char key[16];
	unsigned w = (unsigned)th_below(&t->rng, NWRITERS),
	         k = (unsigned)th_below(&t->rng, NK);
	size_t kl = wkey_name(w, k, key);
	hctx h = {UINT64_MAX, key, kl, 0, NULL};
	int rc;
	RETRY_RESET(rc, (h = (hctx){UINT64_MAX, key, kl, 0, NULL}),
	            lb_history(t->r->db, "s", key, kl, hist_cb, &h));
	if (h.bad)
		die("lb_history(s, %s): %s", key, h.bad);
	if (rc != 0)
		die_rc(rc, "lb_history");
	atomic_fetch_add(&t->r->histories, 1);
}

static void read_get(rthread *t)
{
	char key[16];
	void *v = NULL;
	size_t vl;
	unsigned w = (unsigned)th_below(&t->rng, NWRITERS),
	         k = (unsigned)th_below(&t->rng, NK);
	size_t kl = wkey_name(w, k, key);
	int rc;
	RETRY(rc, lb_get(t->r->db, "s", key, kl, &v, &vl));
	if (rc == 0)
		check_wvalue(t, w, k, v, vl, "lb_get");
	else if (rc != LB_ENOTFOUND)
		die_rc(rc, "lb_get");
	free(v);
	atomic_fetch_add(&t->r->gets, 1);
}

static void run_verify(rthread *t)
{
	rdr *r = t->r;
	lb_verify_report rep;
	int64_t t0 = te_mono_ns();
	int rc;
	RETRY(rc, lb_verify(r->db, LB_VERIFY_REPLAY, &rep));
	r->verify_ns = (uint64_t)(te_mono_ns() - t0);
	atomic_fetch_add(&r->verify_ms, r->verify_ns / 1000000);
	if (rc == LB_EBUSY) {
		/* logbook.h: a table was created by another process during
		 * the check */
		atomic_fetch_add(&r->verify_busy, 1);
		return;
	}
	if (rc != 0)
		die("lb_verify: %s: batch %" PRIu64 ": %s (%s)",
		    lb_strerror(rc), rep.bad_batch, rep.detail, lb_errmsg());
	if (!rep.chain_ok || !rep.replay_ok)
		die("lb_verify: 0, but chain_ok %d, replay_ok %d", rep.chain_ok,
		    rep.replay_ok);
	atomic_fetch_add(&r->verifies, 1);
}

static void *reader_loop(void *arg)
{
	rthread *t = arg;
	rdr *r = t->r;
	int64_t next_verify = te_mono_ns() + 2 * SEC;
	int64_t next_reopen = te_mono_ns() + 3 * SEC;
	t->buf = xmalloc(BIG_MAX);
	while (working()) {
		uint64_t u = th_below(&t->rng, 100);
		int64_t now = te_mono_ns();
		if (r->verifier && now >= next_verify &&
		    now + 2 * (int64_t)r->verify_ns + SEC < cfg.work_end) {
			/* a verify's read holds pages from reuse: at most a
			 * quarter of the time */
			run_verify(t);
			next_verify = te_mono_ns() + 3 * (int64_t)r->verify_ns;
			if (next_verify < te_mono_ns() + 4 * SEC)
				next_verify = te_mono_ns() + 4 * SEC;
		} else if (r->verifier && now >= next_reopen) {
			/* the only thread of its process: no snapshot open */
			lb_close(r->db);
			r->db = open_db(r->flags, SMALL_MAP);
			next_reopen = te_mono_ns() + 3 * SEC;
		} else if (u < 55) {
			one_snapshot(t);
		} else if (u < 70) {
			walk_tables(t);
		} else if (u < 80) {
			read_get(t);
		} else if (u < 90) {
			read_log(t);
		} else {
			read_history(t);
		}
	}
	free(t->buf);
	return NULL;
}

/* arg 0: a read-only handle and two threads; 1: a read-write handle, one
 * thread, which verifies and reopens. */
static void reader(unsigned arg)
{
	rdr r;
	char name[16];
	memset(&r, 0, sizeof r);
	pthread_mutex_init(&r.mu, NULL);
	r.flags = arg == 0 ? LB_RDONLY : LB_NOSYNC;
	r.db = open_db(r.flags, arg == 0 ? 0 : SMALL_MAP);
	r.verifier = arg == 1;
	r.strict_refs = arg == 1;
	snprintf(name, sizeof name, "r%u.log", arg);
	r.log = open_log(name);
	unsigned nt = arg == 0 ? 2 : 1;
	rthread t[2];
	pthread_t th[2];
	for (unsigned i = 0; i < nt; i++) {
		t[i].r = &r;
		t[i].rng = mix(cfg.seed, 44, arg, i);
	}
	if (nt == 1) {
		reader_loop(&t[0]);
	} else {
		for (unsigned i = 0; i < nt; i++)
			if (pthread_create(&th[i], NULL, reader_loop, &t[i]))
				die("pthread_create failed");
		for (unsigned i = 0; i < nt; i++)
			pthread_join(th[i], NULL);
	}
	fprintf(r.log, "S %lu %lu %lu %lu %lu %lu %lu %lu %lu\n",
	        atomic_load(&r.snapshots), atomic_load(&r.cursors),
	        atomic_load(&r.verifies), atomic_load(&r.verify_busy),
	        atomic_load(&r.gets), atomic_load(&r.logreads),
	        atomic_load(&r.histories), atomic_load(&r.tablewalks),
	        atomic_load(&r.verify_ms));
	if (fclose(r.log) != 0)
		die("closing the log: %s", strerror(errno));
	lb_close(r.db);
	pthread_mutex_destroy(&r.mu);
}

/* ---- the parent: processes ---------------------------------------------- */

typedef struct proc {
	const char *name;
	void (*fn)(unsigned);
	unsigned arg;
	pid_t pid;
	int done, status;
} proc;

static void start(proc *p)
{
	fflush(NULL);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		setpgid(0, 0); /* so that killing it kills its CLI too */
		snprintf(role, sizeof role, "%s", p->name);
		p->fn(p->arg);
		write_gaps(p->name);
		_exit(0);
	}
	setpgid(p->pid, p->pid);
}

static void kill_all(proc *p, int n)
{
	for (int i = 0; i < n; i++)
		if (!p[i].done && p[i].pid > 0) {
			kill(-p[i].pid, SIGKILL);
			kill(p[i].pid, SIGKILL);
		}
	for (int i = 0; i < n; i++)
		if (!p[i].done && p[i].pid > 0) {
			while (waitpid(p[i].pid, &p[i].status, 0) < 0 &&
			       errno == EINTR)
				;
			p[i].done = 1;
		}
}

/* Reap every child; the first that fails (or a child still running at
 * hard) has the others killed, and the test fails naming it. */
static void wait_all(proc *p, int n, int64_t hard)
{
	char why[256] = "";
	for (;;) {
		int left = 0;
		for (int i = 0; i < n && !why[0]; i++) {
			if (p[i].done)
				continue;
			pid_t r = waitpid(p[i].pid, &p[i].status, WNOHANG);
			if (r == 0) {
				left++;
				continue;
			}
			assert_int_equal(r, p[i].pid);
			p[i].done = 1;
			int st = p[i].status;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
				continue;
			if (WIFEXITED(st))
				snprintf(why, sizeof why,
				         "process %s failed (exit %d; its "
				         "message is above)",
				         p[i].name, WEXITSTATUS(st));
			else
				snprintf(why, sizeof why,
				         "process %s was killed by signal %d",
				         p[i].name,
				         WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		}
		if (!why[0] && left == 0)
			return;
		if (!why[0] && te_mono_ns() > hard) {
			int k = 0;
			for (int i = 0; i < n; i++)
				if (!p[i].done)
					k += snprintf(why + k,
					              sizeof why - (size_t)k,
					              "%s%s", k ? ", " : "",
					              p[i].name);
			snprintf(why + k, sizeof why - (size_t)k,
			         ": still running %.0f s after the work "
			         "should have ended",
			         (double)(te_mono_ns() - cfg.work_end) / SEC);
		}
		if (why[0]) {
			kill_all(p, n);
			th_seed_report();
			fail_msg("stress: %s", why);
		}
		usleep(20000);
	}
}

/* ---- the parent: the model ----------------------------------------------- */

typedef struct ment {
	char *k; /* table, NUL, key */
	size_t kl;
	uint8_t *v;
	size_t vl;
	int present, used;
} ment;

typedef struct model {
	ment *e;
	size_t cap, n;
} model;

static ment *m_find(model *m, const char *table, const void *key, size_t kl,
                    int create)
{
	char ck[LB_TABLE_NAME_MAX + 2 + LB_KEY_MAX];
	size_t tl = strlen(table), cl = tl + 1 + kl;
	memcpy(ck, table, tl + 1);
	memcpy(ck + tl + 1, key, kl);
	if (m->cap == 0 || (create && 2 * (m->n + 1) > m->cap)) {
		model g = {calloc(m->cap ? 2 * m->cap : 1024, sizeof(ment)),
		           m->cap ? 2 * m->cap : 1024, 0};
		assert_non_null(g.e);
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->e[i].used)
				continue;
			size_t h =
			        bhash(m->e[i].k, m->e[i].kl, 0) & (g.cap - 1);
			while (g.e[h].used)
				h = (h + 1) & (g.cap - 1);
			g.e[h] = m->e[i];
			g.n++;
		}
		free(m->e);
		*m = g;
	}
	size_t h = bhash(ck, cl, 0) & (m->cap - 1);
	while (m->e[h].used) {
		if (m->e[h].kl == cl && memcmp(m->e[h].k, ck, cl) == 0)
			return &m->e[h];
		h = (h + 1) & (m->cap - 1);
	}
	if (!create)
		return NULL;
	ment *e = &m->e[h];
	e->used = 1;
	e->k = te_malloc(cl);
	memcpy(e->k, ck, cl);
	e->kl = cl;
	m->n++;
	return e;
}

static void m_set(ment *e, const void *v, size_t vl)
{
	free(e->v);
	e->v = te_malloc(vl);
	memcpy(e->v, v, vl);
	e->vl = vl;
	e->present = 1;
}

static void m_free(model *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->e[i].used) {
			free(m->e[i].k);
			free(m->e[i].v);
		}
	free(m->e);
}

/* Failures found by the final checks: all counted, the first few shown. */
static unsigned nbad;
static char first_bad[1024];

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (nbad < 20)
		fprintf(stderr, "stress: check: %s\n", msg);
	if (nbad++ == 0)
		snprintf(first_bad, sizeof first_bad, "%s", msg);
}

/* Compare record r with what the model says: op, table, key, the
 * before-image (the model's entry), the after-image. */
static void expect_rec(uint64_t id, size_t i, const te_rec *r, int op,
                       const char *table, const void *key, size_t kl,
                       const ment *before, const void *after, size_t alen,
                       int has_after)
{
	int has_before = before && before->present;
	if (r->op != op || strcmp(r->table, table) != 0 || r->klen != kl ||
	    memcmp(r->key, key, kl) != 0) {
		bad("batch %" PRIu64 " record %zu: op %d %s/%.*s, want op %d "
		    "%s/%.*s",
		    id, i, r->op, r->table, (int)r->klen, (const char *)r->key,
		    op, table, (int)kl, (const char *)key);
		return;
	}
	if (r->has_before != has_before ||
	    (has_before && (r->blen != before->vl ||
	                    memcmp(r->before, before->v, r->blen) != 0)))
		bad("batch %" PRIu64 " record %zu (%s/%.*s): the before-image "
		    "differs from the model's (%s, %zu bytes; model %s, %zu)",
		    id, i, table, (int)kl, (const char *)key,
		    r->has_before ? "present" : "absent", r->blen,
		    has_before ? "present" : "absent",
		    has_before ? before->vl : 0);
	if (r->has_after != has_after ||
	    (has_after &&
	     (r->alen != alen || memcmp(r->after, after, alen) != 0)))
		bad("batch %" PRIu64 " record %zu (%s/%.*s): the after-image "
		    "differs from what was written",
		    id, i, table, (int)kl, (const char *)key);
}

/* ---- the parent: the logs ------------------------------------------------ */

typedef struct wbatch {
	uint64_t id, seq;
	unsigned n;
	wop ops[WOPS_MAX];
} wbatch;

typedef struct tbatch {
	uint64_t id, nrec, undoes, p0, pn;
	char label[96];
} tbatch;

typedef struct cbatch {
	uint64_t id, first;
	char kind; /* P put, I import batch, R import: the run's record only;
	              first is the run's id for R */
	char file[32];
	unsigned n;
	cline lines[16];
} cbatch;

typedef struct logs {
	wbatch *w[NWRITERS];
	size_t nw[NWRITERS];
	uint64_t wstat[NWRITERS][6];
	tbatch *t;
	size_t nt;
	uint64_t tstat[8];
	cbatch *c;
	size_t nc;
	uint64_t cstat[6];
	uint64_t gaps[NGAPS]; /* known gaps met, all processes */
	uint64_t rstat[2][9];
	size_t nobs;
} logs;

static FILE *open_read(const char *name)
{
	char *p = th_path(cfg.root, name);
	FILE *f = fopen(p, "r");
	if (!f)
		fail_msg("stress: %s: %s", p, strerror(errno));
	free(p);
	return f;
}

#define GROW(arr, n, cap)                                                      \
	do {                                                                   \
		if ((n) == (cap)) {                                            \
			(cap) = (cap) ? 2 * (cap) : 256;                       \
			(arr) = realloc((arr), (cap) * sizeof *(arr));         \
			assert_non_null(arr);                                  \
		}                                                              \
	} while (0)

static void read_writer_log(logs *L, unsigned w)
{
	char name[16], line[256];
	size_t cap = 0;
	int stat = 0;
	snprintf(name, sizeof name, "w%u.log", w);
	FILE *f = open_read(name);
	while (fgets(line, sizeof line, f)) {
		if (line[0] == 'B') {
			GROW(L->w[w], L->nw[w], cap);
			wbatch *b = &L->w[w][L->nw[w]++];
			assert_int_equal(sscanf(line,
			                        "B %" SCNu64 " %" SCNu64 " %u",
			                        &b->id, &b->seq, &b->n),
			                 3);
			assert_true(b->n >= 1 && b->n <= WOPS_MAX);
			for (unsigned j = 0; j < b->n; j++) {
				assert_non_null(fgets(line, sizeof line, f));
				assert_int_equal(sscanf(line, "o %c %u %u",
				                        &b->ops[j].op,
				                        &b->ops[j].k,
				                        &b->ops[j].len),
				                 3);
			}
		} else if (line[0] == 'S') {
			uint64_t *s = L->wstat[w];
			assert_int_equal(sscanf(line,
			                        "S %" SCNu64 " %" SCNu64
			                        " %" SCNu64 " %" SCNu64
			                        " %" SCNu64 " %" SCNu64,
			                        &s[0], &s[1], &s[2], &s[3],
			                        &s[4], &s[5]),
			                 6);
			stat = 1;
		}
	}
	fclose(f);
	if (!stat)
		fail_msg("stress: %s has no final line", name);
}

static void read_maker_log(logs *L)
{
	char line[256];
	size_t cap = 0;
	int stat = 0;
	FILE *f = open_read("t.log");
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (line[0] == 'C') {
			GROW(L->t, L->nt, cap);
			tbatch *b = &L->t[L->nt++];
			int used = 0;
			assert_int_equal(sscanf(line,
			                        "C %" SCNu64 " %" SCNu64
			                        " %" SCNu64 " %" SCNu64
			                        " %" SCNu64 " %n",
			                        &b->id, &b->nrec, &b->undoes,
			                        &b->p0, &b->pn, &used),
			                 5);
			snprintf(b->label, sizeof b->label, "%s", line + used);
		} else if (line[0] == 'S') {
			uint64_t *s = L->tstat;
			assert_int_equal(sscanf(line,
			                        "S %" SCNu64 " %" SCNu64
			                        " %" SCNu64 " %" SCNu64
			                        " %" SCNu64 " %" SCNu64
			                        " %" SCNu64 " %" SCNu64,
			                        &s[0], &s[1], &s[2], &s[3],
			                        &s[4], &s[5], &s[6], &s[7]),
			                 8);
			stat = 1;
		}
	}
	fclose(f);
	if (!stat)
		fail_msg("stress: t.log has no final line");
}

static void read_cli_log(logs *L)
{
	char line[256];
	size_t cap = 0;
	int stat = 0;
	FILE *f = open_read("cli.log");
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (line[0] == 'P') {
			GROW(L->c, L->nc, cap);
			cbatch *b = &L->c[L->nc++];
			memset(b, 0, sizeof *b);
			b->kind = 'P';
			b->n = 1;
			b->lines[0].op = 'r';
			assert_int_equal(sscanf(line, "P %" SCNu64 " %15s %47s",
			                        &b->id, b->lines[0].key,
			                        b->lines[0].val),
			                 3);
		} else if (line[0] == 'R') {
			GROW(L->c, L->nc, cap);
			cbatch *b = &L->c[L->nc++];
			memset(b, 0, sizeof *b);
			b->kind = 'R';
			assert_int_equal(
			        sscanf(line, "R %" SCNu64 " %" SCNu64 " %31s",
			               &b->id, &b->first, b->file),
			        3);
		} else if (line[0] == 'I') {
			GROW(L->c, L->nc, cap);
			cbatch *b = &L->c[L->nc++];
			uint64_t n;
			memset(b, 0, sizeof *b);
			b->kind = 'I';
			assert_int_equal(sscanf(line,
			                        "I %" SCNu64 " %" SCNu64
			                        " %" SCNu64 " %31s",
			                        &b->id, &n, &b->first, b->file),
			                 4);
			assert_true(n >= 1 && n <= 16);
			b->n = (unsigned)n;
			for (unsigned i = 0; i < b->n; i++) {
				cline *l = &b->lines[i];
				assert_non_null(fgets(line, sizeof line, f));
				line[strcspn(line, "\n")] = 0;
				l->op = line[0];
				if (l->op == 'd')
					assert_int_equal(
					        sscanf(line, "d %15s", l->key),
					        1);
				else
					assert_int_equal(sscanf(line,
					                        "r %15s %47s",
					                        l->key, l->val),
					                 2);
			}
		} else if (line[0] == 'S') {
			uint64_t *s = L->cstat;
			assert_int_equal(sscanf(line,
			                        "S %" SCNu64 " %" SCNu64
			                        " %" SCNu64 " %" SCNu64
			                        " %" SCNu64 " %" SCNu64,
			                        &s[0], &s[1], &s[2], &s[3],
			                        &s[4], &s[5]),
			                 6);
			stat = 1;
		}
	}
	fclose(f);
	if (!stat)
		fail_msg("stress: cli.log has no final line");
}

/* ---- the parent: checking every batch ------------------------------------ */

enum { OWN_NONE, OWN_SETUP, OWN_W0, OWN_MAKER = OWN_W0 + NWRITERS, OWN_CLI };

typedef struct claim {
	uint8_t owner;
	size_t idx;
} claim;

typedef struct checker {
	lb_db *db;
	model m;
	uint64_t digest[NWRITERS];
	uint64_t *dig_after[NWRITERS]; /* [seq]: digest right after batch seq */
	uint64_t *id_of[NWRITERS];     /* [seq]: its batch id (0 for seq 0) */
	uint64_t nseq[NWRITERS];
	uint8_t *buf;
} checker;

static void check_info(checker *ck, uint64_t id, const char *label,
                       uint64_t records, uint64_t undoes, lb_batch_info *bi)
{
	int rc = lb_batch_info_get(ck->db, id, bi);
	if (rc != 0) {
		bad("batch %" PRIu64 ": lb_batch_info_get: %s", id,
		    lb_strerror(rc));
		return;
	}
	if (strcmp(bi->label, label) != 0)
		bad("batch %" PRIu64 ": label '%s', want '%s'", id, bi->label,
		    label);
	if (bi->records != records)
		bad("batch %" PRIu64 " (%s): %" PRIu64
		    " records, want %" PRIu64,
		    id, label, bi->records, records);
	if (bi->undoes != undoes)
		bad("batch %" PRIu64 " (%s): undoes %" PRIu64 ", want %" PRIu64,
		    id, label, bi->undoes, undoes);
}

static void check_writer_batch(checker *ck, unsigned w, const wbatch *b)
{
	lb_batch_info bi;
	char label[64], key[32], tag[48];
	uint8_t g[192];
	te_recs rs;
	size_t want = b->n + NG + 2;
	snprintf(label, sizeof label, "w%u batch %" PRIu64, w, b->seq);
	check_info(ck, b->id, label, want, 0, &bi);
	if (bi.rolled_back_by != 0)
		bad("batch %" PRIu64 " (%s): rolled back by %" PRIu64, b->id,
		    label, bi.rolled_back_by);
	if (b->seq != ck->nseq[w] + 1)
		bad("writer %u: batch seq %" PRIu64 " after %" PRIu64, w,
		    b->seq, ck->nseq[w]);
	memset(&rs, 0, sizeof rs);
	te_changes(ck->db, b->id, &rs);
	if (rs.n != want) {
		bad("batch %" PRIu64 " (%s): %zu change records, want %zu",
		    b->id, label, rs.n, want);
		te_recs_free(&rs);
		return;
	}
	for (unsigned j = 0; j < b->n; j++) {
		const wop *o = &b->ops[j];
		size_t kl = wkey_name(w, o->k, key);
		ment *e = m_find(&ck->m, "s", key, kl, 1);
		if (e->present)
			ck->digest[w] -= kvhash(key, kl, e->v, e->vl);
		if (o->op == 'D') {
			if (!e->present)
				bad("batch %" PRIu64 ": delete of the missing "
				    "s/%s",
				    b->id, key);
			expect_rec(b->id, j, &rs.v[j], LB_OP_DELETE, "s", key,
			           kl, e, NULL, 0, 0);
			e->present = 0;
			continue;
		}
		if ((o->op == 'I' && e->present) ||
		    (o->op == 'U' && !e->present))
			bad("batch %" PRIu64 ": %c of s/%s, %s in the model",
			    b->id, o->op, key,
			    e->present ? "present" : "absent");
		wval(w, b->seq, j, o->k, o->len, ck->buf);
		expect_rec(b->id, j, &rs.v[j], LB_OP_PUT, "s", key, kl, e,
		           ck->buf, o->len, 1);
		m_set(e, ck->buf, o->len);
		ck->digest[w] += kvhash(key, kl, e->v, e->vl);
	}
	size_t i = b->n, tl = tagval(w, b->seq, tag);
	ment *e = m_find(&ck->m, "s", "last", 4, 1);
	expect_rec(b->id, i++, &rs.v[b->n], LB_OP_PUT, "s", "last", 4, e, tag,
	           tl, 1);
	m_set(e, tag, tl);
	for (unsigned gi = 0; gi < NG; gi++, i++) {
		size_t kl = (size_t)sprintf(key, "w%u.g%u", w, gi);
		size_t gl = gval(w, b->seq, gi, g);
		e = m_find(&ck->m, "g", key, kl, 1);
		expect_rec(b->id, i, &rs.v[i], LB_OP_PUT, "g", key, kl, e, g,
		           gl, 1);
		m_set(e, g, gl);
	}
	size_t kl = (size_t)sprintf(key, "w%u.gen", w);
	e = m_find(&ck->m, "g", key, kl, 1);
	expect_rec(b->id, i, &rs.v[i], LB_OP_PUT, "g", key, kl, e, tag, tl, 1);
	m_set(e, tag, tl);
	te_recs_free(&rs);
	ck->nseq[w] = b->seq;
	ck->dig_after[w][b->seq] = ck->digest[w];
	ck->id_of[w][b->seq] = b->id;
}

static void check_maker_batch(checker *ck, const tbatch *b)
{
	lb_batch_info bi;
	te_recs rs;
	check_info(ck, b->id, b->label, b->nrec, b->undoes, &bi);
	memset(&rs, 0, sizeof rs);
	te_changes(ck->db, b->id, &rs);
	if (rs.n != b->nrec) {
		bad("batch %" PRIu64 " (%s): %zu change records, want %" PRIu64,
		    b->id, b->label, rs.n, b->nrec);
		te_recs_free(&rs);
		return;
	}
	if (strncmp(b->label, "create table ", 13) == 0) {
		const char *name = b->label + 13;
		if (rs.v[0].op != LB_OP_TABLE || strcmp(rs.v[0].table, name) ||
		    rs.v[0].has_before || !rs.v[0].has_after)
			bad("batch %" PRIu64 " (%s): not the creation of %s",
			    b->id, b->label, name);
	}
	for (uint64_t i = 0; i < b->pn; i++) {
		char key[32], val[32];
		size_t kl = (size_t)sprintf(key, "p.%05" PRIu64, b->p0 + i);
		size_t vl = (size_t)sprintf(val, "pv%" PRIu64, b->p0 + i);
		ment *e = m_find(&ck->m, "p", key, kl, 1);
		expect_rec(b->id, i, &rs.v[i], LB_OP_PUT, "p", key, kl, e, val,
		           vl, 1);
		m_set(e, val, vl);
	}
	if (b->undoes) {
		/* the records undo those of the batch undone, last first */
		te_recs us;
		memset(&us, 0, sizeof us);
		te_changes(ck->db, b->undoes, &us);
		if (us.n != rs.n)
			bad("batch %" PRIu64 " undid %" PRIu64 " (%zu records) "
			    "in %zu records",
			    b->id, b->undoes, us.n, rs.n);
		for (size_t i = 0; i < us.n && us.n == rs.n; i++) {
			const te_rec *u = &us.v[us.n - 1 - i], *r = &rs.v[i];
			if (strcmp(u->table, r->table) != 0 ||
			    u->klen != r->klen ||
			    memcmp(u->key, r->key, r->klen) != 0 ||
			    u->has_before != r->has_after ||
			    u->has_after != r->has_before ||
			    (u->has_after &&
			     (u->alen != r->blen ||
			      memcmp(u->after, r->before, u->alen) != 0)) ||
			    (u->has_before &&
			     (u->blen != r->alen ||
			      memcmp(u->before, r->after, u->blen) != 0))) {
				bad("batch %" PRIu64
				    " record %zu does not undo "
				    "record %zu of batch %" PRIu64,
				    b->id, i, us.n - 1 - i, b->undoes);
				break;
			}
		}
		te_recs_free(&us);
	}
	te_recs_free(&rs);
}

static void check_cli_batch(checker *ck, const cbatch *b)
{
	lb_batch_info bi;
	te_recs rs;
	memset(&bi, 0, sizeof bi);
	char label[96];
	/* an import's batches each end with one record of its run, in
	 * logbook.runs (a new key) */
	unsigned runrec = b->kind != 'P';
	if (b->kind == 'P')
		snprintf(label, sizeof label, "put c %s", b->lines[0].key);
	else if (b->kind == 'I')
		snprintf(label, sizeof label, "import %s from line %" PRIu64,
		         b->file, b->first);
	if (b->kind == 'R') {
		char want[96];
		snprintf(want, sizeof want, "import %s: run %" PRIu64 " ",
		         b->file, b->first);
		if (lb_batch_info_get(ck->db, b->id, &bi) != 0 ||
		    strncmp(bi.label, want, strlen(want)) != 0 ||
		    bi.records != 1)
			bad("batch %" PRIu64 ": '%s' of %" PRIu64
			    " records, not the record of run %" PRIu64,
			    b->id, bi.label, bi.records, b->first);
	} else {
		check_info(ck, b->id, label, b->n + runrec, 0, &bi);
	}
	memset(&rs, 0, sizeof rs);
	te_changes(ck->db, b->id, &rs);
	if (rs.n != b->n + runrec) {
		bad("batch %" PRIu64 " (%s): %zu change records, want %u",
		    b->id, bi.label, rs.n, b->n + runrec);
		te_recs_free(&rs);
		return;
	}
	if (runrec) {
		const te_rec *r = &rs.v[b->n];
		if (r->op != LB_OP_PUT || strcmp(r->table, "logbook.runs") ||
		    r->has_before || !r->has_after)
			bad("batch %" PRIu64 " (%s): the last record is not a "
			    "new record of the run",
			    b->id, bi.label);
	}
	for (unsigned i = 0; i < b->n; i++) {
		const cline *l = &b->lines[i];
		size_t kl = strlen(l->key);
		ment *e = m_find(&ck->m, "c", l->key, kl, 1);
		if (l->op == 'd') {
			if (!e->present)
				bad("batch %" PRIu64 ": delete of the missing "
				    "c/%s",
				    b->id, l->key);
			expect_rec(b->id, i, &rs.v[i], LB_OP_DELETE, "c",
			           l->key, kl, e, NULL, 0, 0);
			e->present = 0;
		} else {
			expect_rec(b->id, i, &rs.v[i], LB_OP_PUT, "c", l->key,
			           kl, e, l->val, strlen(l->val), 1);
			m_set(e, l->val, strlen(l->val));
		}
	}
	te_recs_free(&rs);
}

/* rolled_back_by of every batch the table maker made: the greatest
 * standing batch that undoes it (docs/ROLLBACK.md), where a batch stands
 * unless a standing batch undoes it; undoers come later, so one pass from
 * the last batch down decides. */
static void check_standing(checker *ck, const logs *L, const claim *cl,
                           uint64_t last)
{
	uint64_t *by = calloc(last + 1, sizeof *by); /* standing undoer */
	assert_non_null(by);
	for (uint64_t id = last; id > 0; id--) {
		if (cl[id].owner != OWN_MAKER)
			continue;
		const tbatch *b = &L->t[cl[id].idx];
		lb_batch_info bi;
		if (lb_batch_info_get(ck->db, id, &bi) != 0) {
			bad("batch %" PRIu64 ": no info", id);
			continue;
		}
		if (bi.rolled_back_by != by[id])
			bad("batch %" PRIu64 " (%s): rolled_back_by %" PRIu64
			    ", want %" PRIu64,
			    id, b->label, bi.rolled_back_by, by[id]);
		if (by[id] == 0 && b->undoes && b->undoes <= last &&
		    by[b->undoes] < id)
			by[b->undoes] = id; /* it stands: what it undid does
			                       not */
	}
	free(by);
}

/* The tables as committed equal the model, key for key; logbook.runs
 * holds one record per batch of the CLI's imports. */
static void check_final_tables(checker *ck, const logs *L)
{
	static const char *const tables[] = {"c", "g", "p", "s"};
	lb_snapshot *s;
	te_rc(0, lb_snapshot_open(ck->db, &s));
	for (int t = 0; t < 4; t++) {
		lb_cursor *c;
		const void *k, *v;
		size_t kl, vl, n = 0, want = 0;
		int rc;
		te_rc(0, lb_cursor_open(s, tables[t], &c));
		while ((rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0) {
			ment *e = m_find(&ck->m, tables[t], k, kl, 0);
			n++;
			if (!e || !e->present)
				bad("%s/%.*s is in the database, not in the "
				    "model",
				    tables[t], (int)kl, (const char *)k);
			else if (e->vl != vl || memcmp(e->v, v, vl) != 0)
				bad("%s/%.*s: %zu bytes, the model's %zu "
				    "differ",
				    tables[t], (int)kl, (const char *)k, vl,
				    e->vl);
		}
		te_rc(LB_ENOTFOUND, rc);
		lb_cursor_close(c);
		size_t tl = strlen(tables[t]);
		for (size_t i = 0; i < ck->m.cap; i++) {
			ment *e = &ck->m.e[i];
			if (e->used && e->present && e->kl > tl &&
			    memcmp(e->k, tables[t], tl + 1) == 0)
				want++;
		}
		if (n != want)
			bad("table %s holds %zu keys, the model %zu", tables[t],
			    n, want);
	}
	lb_snapshot_close(s);
	tnames tn;
	memset(&tn, 0, sizeof tn);
	te_rc(0, lb_tables(ck->db, table_cb, &tn));
	if (tn.stable != 4 || tn.n != 0)
		bad("%u tables of the maker left (the first: %s); %u stable",
		    tn.n, tn.n ? tn.name[0] : "", tn.stable);
	uint64_t runrecs = 0;
	for (size_t i = 0; i < L->nc; i++)
		runrecs += L->c[i].kind != 'P';
	if (tn.runs != (runrecs > 0) || tn.runs_records != runrecs)
		bad("logbook.runs: %s, %" PRIu64 " records; the CLI's imports "
		    "committed %" PRIu64 " batches",
		    tn.runs ? "present" : "absent", tn.runs_records, runrecs);
}

/* A reader's observation: generations g0, g1 and the digests of each
 * writer's keys, and s/last, must be the state after some batch B: the
 * state of each writer right after its batch gW (the digest the model
 * gives), with gW's id <= B < the id of gW + 1, and s/last from the later
 * of the two. */
static void check_observations(checker *ck, const char *name, size_t *count)
{
	FILE *f = open_read(name);
	char line[256];
	while (fgets(line, sizeof line, f)) {
		uint64_t g[2], d[2], ls;
		unsigned lw;
		if (line[0] != 'O')
			continue;
		assert_int_equal(sscanf(line,
		                        "O %" SCNu64 " %" SCNu64 " %" SCNu64
		                        " %" SCNu64 " %u %" SCNu64,
		                        &g[0], &g[1], &d[0], &d[1], &lw, &ls),
		                 6);
		(*count)++;
		uint64_t lo = 0, hi = UINT64_MAX;
		unsigned low = 9;
		for (unsigned w = 0; w < NWRITERS; w++) {
			if (g[w] > ck->nseq[w]) {
				bad("%s: generation %" PRIu64 " of writer %u, "
				    "which committed %" PRIu64,
				    name, g[w], w, ck->nseq[w]);
				goto next;
			}
			if (d[w] != ck->dig_after[w][g[w]])
				bad("%s: writer %u's keys in a snapshot at its "
				    "batch %" PRIu64
				    " are not the state right after it",
				    name, w, g[w]);
			uint64_t id = ck->id_of[w][g[w]];
			if (id > lo) {
				lo = id;
				low = w;
			}
			if (g[w] < ck->nseq[w] && ck->id_of[w][g[w] + 1] < hi)
				hi = ck->id_of[w][g[w] + 1];
		}
		if (lo >= hi)
			bad("%s: generations %" PRIu64 "/%" PRIu64
			    " are of no single state (batches %" PRIu64
			    " and up to %" PRIu64 ")",
			    name, g[0], g[1], lo, hi);
		if (lw != low || (low != 9 && ls != g[low]))
			bad("%s: s/last is w%u|s%" PRIu64 " beside generations "
			    "%" PRIu64 "/%" PRIu64,
			    name, lw, ls, g[0], g[1]);
	next:;
	}
	fclose(f);
}

static void read_reader_stats(logs *L, unsigned r)
{
	char name[16], line[256];
	int stat = 0;
	snprintf(name, sizeof name, "r%u.log", r);
	FILE *f = open_read(name);
	while (fgets(line, sizeof line, f))
		if (line[0] == 'S') {
			uint64_t *s = L->rstat[r];
			assert_int_equal(
			        sscanf(line,
			               "S %" SCNu64 " %" SCNu64 " %" SCNu64
			               " %" SCNu64 " %" SCNu64 " %" SCNu64
			               " %" SCNu64 " %" SCNu64 " %" SCNu64,
			               &s[0], &s[1], &s[2], &s[3], &s[4], &s[5],
			               &s[6], &s[7], &s[8]),
			        9);
			stat = 1;
		}
	fclose(f);
	if (!stat)
		fail_msg("stress: %s has no final line", name);
}

static void read_gaps(logs *L, const char *name)
{
	char f[64], line[128];
	uint64_t g[NGAPS];
	snprintf(f, sizeof f, "gaps-%s", name);
	FILE *in = open_read(f);
	if (!fgets(line, sizeof line, in) ||
	    sscanf(line, "G %" SCNu64 " %" SCNu64 " %" SCNu64, &g[0], &g[1],
	           &g[2]) != NGAPS)
		fail_msg("stress: %s is malformed", f);
	fclose(in);
	for (int i = 0; i < NGAPS; i++)
		L->gaps[i] += g[i];
}

static const char *const setup_tables[] = {"s", "g", "c", "p"};

static char *cli_path(void)
{
	const char *b = getenv("LB_BIN");
	char *p;
	if (!b || !*b)
		b = "build/logbook";
	if (b[0] == '/') {
		p = strdup(b);
	} else {
		char cwd[4096];
		assert_non_null(getcwd(cwd, sizeof cwd));
		p = th_path(cwd, b);
	}
	assert_non_null(p);
	if (access(p, X_OK) != 0)
		fail_msg("stress: the CLI %s is not an executable (build it "
		         "with make, or set LB_BIN)",
		         p);
	return p;
}

static double mib(uint64_t n)
{
	return (double)n / (1024.0 * 1024.0);
}

static void test_engine_stress__many_processes(void **state)
{
	(void)state;
	long secs =
	        th_env_long("LB_STRESS_SECONDS", STRESS_SANITIZED ? 25 : 50);
	if (secs < 5)
		secs = 5;
	cfg.seed = th_seed(0x57e55);
	cfg.bin = cli_path();
	cfg.root = th_tmpdir();
	cfg.dir = th_path(cfg.root, "db");

	/* the stable tables, batches 1..4 */
	lb_options o;
	lb_options_init(&o);
	o.flags = LB_CREATE | LB_NOSYNC;
	o.map_size = SMALL_MAP;
	lb_db *db = te_open_opts(cfg.dir, &o);
	for (int i = 0; i < 4; i++)
		te_rc(0, lb_table_create(db, setup_tables[i], NULL));
	lb_close(db);

	/* the checks at the end take about a sixth of the time */
	int64_t t0 = te_mono_ns();
	int64_t reserve = secs * SEC / 6;
	if (reserve > 90 * SEC)
		reserve = 90 * SEC;
	cfg.work_end = t0 + secs * SEC - reserve;
	proc procs[] = {
	        {"writer0", writer, 0, 0, 0, 0},
	        {"writer1", writer, 1, 0, 0, 0},
	        {"table-maker", table_maker, 0, 0, 0, 0},
	        {"cli", cli_main, 0, 0, 0, 0},
	        {"reader0", reader, 0, 0, 0, 0},
	        {"reader1", reader, 1, 0, 0, 0},
	};
	int np = (int)(sizeof procs / sizeof procs[0]);
	for (int i = 0; i < np; i++)
		start(&procs[i]);
	wait_all(procs, np, cfg.work_end + 60 * SEC + secs * SEC / 4);
	int64_t t1 = te_mono_ns();

	/* the logs */
	logs L;
	memset(&L, 0, sizeof L);
	for (unsigned w = 0; w < NWRITERS; w++)
		read_writer_log(&L, w);
	read_maker_log(&L);
	read_cli_log(&L);
	for (unsigned r = 0; r < 2; r++)
		read_reader_stats(&L, r);
	for (int i = 0; i < np; i++)
		read_gaps(&L, procs[i].name);

	checker ck;
	memset(&ck, 0, sizeof ck);
	ck.db = te_open(cfg.dir, LB_NOSYNC);
	ck.buf = te_malloc(BIG_MAX);
	uint64_t last = te_last(ck.db);

	/* every id 1..last reported by exactly one process */
	claim *cl = calloc(last + 1, sizeof *cl);
	assert_non_null(cl);
	uint64_t unknown = 0;
#define CLAIM(id_, own_, idx_)                                                 \
	do {                                                                   \
		uint64_t id__ = (id_);                                         \
		if (id__ == 0 || id__ > last) {                                \
			bad("batch %" PRIu64 " was reported, the last is "     \
			    "%" PRIu64,                                        \
			    id__, last);                                       \
			unknown++;                                             \
		} else if (cl[id__].owner) {                                   \
			bad("batch %" PRIu64 " was reported twice", id__);     \
		} else {                                                       \
			cl[id__] = (claim){(uint8_t)(own_), (idx_)};           \
		}                                                              \
	} while (0)
	for (size_t i = 1; i <= 4; i++)
		CLAIM(i, OWN_SETUP, i - 1);
	for (unsigned w = 0; w < NWRITERS; w++)
		for (size_t i = 0; i < L.nw[w]; i++)
			CLAIM(L.w[w][i].id, OWN_W0 + w, i);
	for (size_t i = 0; i < L.nt; i++)
		CLAIM(L.t[i].id, OWN_MAKER, i);
	for (size_t i = 0; i < L.nc; i++)
		CLAIM(L.c[i].id, OWN_CLI, i);
#undef CLAIM
	/* the CLI's first import creates logbook.runs, in a batch it does
	 * not report */
	uint64_t unclaimed = 0, runs_created = 0;
	for (uint64_t id = 1; id <= last; id++) {
		lb_batch_info bi;
		if (cl[id].owner)
			continue;
		if (lb_batch_info_get(ck.db, id, &bi) == 0 &&
		    strcmp(bi.label, "create table logbook.runs") == 0 &&
		    runs_created++ == 0) {
			cl[id] = (claim){OWN_CLI, SIZE_MAX};
			continue;
		}
		if (unclaimed++ < 5)
			bad("batch %" PRIu64 " was committed but reported by "
			    "no process",
			    id);
	}

	/* every batch, in id order, against the model */
	for (unsigned w = 0; w < NWRITERS; w++) {
		ck.dig_after[w] = calloc(L.nw[w] + 2, sizeof(uint64_t));
		ck.id_of[w] = calloc(L.nw[w] + 2, sizeof(uint64_t));
		assert_non_null(ck.dig_after[w]);
		assert_non_null(ck.id_of[w]);
	}
	for (uint64_t id = 1; id <= last; id++) {
		lb_batch_info bi;
		char label[64];
		const claim *c = &cl[id];
		switch (c->owner) {
		case OWN_SETUP:
			snprintf(label, sizeof label, "create table %s",
			         setup_tables[c->idx]);
			check_info(&ck, id, label, 1, 0, &bi);
			break;
		case OWN_MAKER:
			check_maker_batch(&ck, &L.t[c->idx]);
			break;
		case OWN_CLI:
			if (c->idx == SIZE_MAX)
				check_info(&ck, id, "create table logbook.runs",
				           1, 0, &bi);
			else
				check_cli_batch(&ck, &L.c[c->idx]);
			break;
		case OWN_NONE:
			break;
		default:
			check_writer_batch(&ck, c->owner - OWN_W0,
			                   &L.w[c->owner - OWN_W0][c->idx]);
		}
	}
	check_standing(&ck, &L, cl, last);
	check_final_tables(&ck, &L);
	size_t nobs = 0;
	check_observations(&ck, "r0.log", &nobs);
	check_observations(&ck, "r1.log", &nobs);

	lb_verify_report rep;
	int vrc = lb_verify(ck.db, LB_VERIFY_REPLAY, &rep);
	if (vrc != 0 || !rep.chain_ok || !rep.replay_ok || rep.batches != last)
		bad("lb_verify(LB_VERIFY_REPLAY): %s, %" PRIu64 " batches of "
		    "%" PRIu64 ", chain_ok %d, replay_ok %d: %s",
		    lb_strerror(vrc), rep.batches, last, rep.chain_ok,
		    rep.replay_ok, rep.detail);
	lb_close(ck.db);
	int64_t t2 = te_mono_ns();

	/* the map as LMDB's meta page has it, and the file */
	MDB_env *env;
	MDB_envinfo info;
	struct stat st;
	char *file = th_path(cfg.dir, "data.mdb");
	assert_int_equal(stat(file, &st), 0);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_open(env, cfg.dir, MDB_RDONLY, 0644), 0);
	assert_int_equal(mdb_env_info(env, &info), 0);
	mdb_env_close(env);

	uint64_t cli_batches = L.nc, wb = L.nw[0] + L.nw[1];
	uint64_t snaps = L.rstat[0][0] + L.rstat[1][0],
	         cursors = L.rstat[0][1] + L.rstat[1][1],
	         verifies = L.rstat[0][2] + L.rstat[1][2],
	         vbusy = L.rstat[0][3] + L.rstat[1][3];
	printf("stress: seed %" PRIu64 ", %d processes and %" PRIu64
	       " CLI commands, %.1f s of work + %.1f s of checks; batches: "
	       "writers %zu + %zu (%" PRIu64 " + %" PRIu64
	       " refused by validation, %" PRIu64 " + %" PRIu64
	       " values over 64 KiB), table maker %zu (%" PRIu64
	       " cycles, tables created %" PRIu64 ", removed %" PRIu64
	       ", %" PRIu64 " rollbacks, %" PRIu64
	       " refused as they must be), CLI %" PRIu64 " (%" PRIu64
	       " puts, %" PRIu64 " imports, %" PRIu64 " gets, %" PRIu64
	       " verifies), setup 4: ids 1..%" PRIu64
	       " dense; map %.1f MiB, data.mdb %.1f MiB; readers: %" PRIu64
	       " snapshots (%zu observations checked), %" PRIu64
	       " cursors walked, %" PRIu64 " + %" PRIu64
	       " table-list walks, %" PRIu64 " log reads, %" PRIu64
	       " histories, %" PRIu64 " verifies with replay (%" PRIu64
	       " busy, %.1f s in all) + 1 at the end; reopens %" PRIu64
	       "; known gaps met and tolerated: open LB_EIO %" PRIu64
	       ", LB_EBUSY after growth %" PRIu64 ", catalog LB_EIO %" PRIu64
	       "; failures: %u\n",
	       cfg.seed, np, L.cstat[0], (double)(t1 - t0) / SEC,
	       (double)(t2 - t1) / SEC, L.nw[0], L.nw[1], L.wstat[0][2],
	       L.wstat[1][2], L.wstat[0][5], L.wstat[1][5], L.nt, L.tstat[0],
	       L.tstat[1], L.tstat[2], L.tstat[3], L.tstat[4], cli_batches,
	       L.cstat[1], L.cstat[2], L.cstat[4], L.cstat[5], last,
	       mib(info.me_mapsize), mib((uint64_t)st.st_size), snaps, nobs,
	       cursors, L.rstat[0][7], L.rstat[1][7],
	       L.rstat[0][5] + L.rstat[1][5], L.rstat[0][6] + L.rstat[1][6],
	       verifies, vbusy, (double)(L.rstat[0][8] + L.rstat[1][8]) / 1000,
	       L.wstat[0][3] + L.wstat[1][3] + L.tstat[5], L.gaps[GAP_OPEN_EIO],
	       L.gaps[GAP_GROWTH_EBUSY], L.gaps[GAP_CATALOG_EIO], nbad);
	fflush(stdout);
	(void)wb;
	(void)unknown;
	if (nbad) {
		th_seed_report();
		fail_msg("stress: %u failures; the first: %s (the database is "
		         "kept in %s)",
		         nbad, first_bad, cfg.root);
	}
	if (wb == 0 || L.nt == 0 || cli_batches == 0 || snaps == 0)
		fail_msg("stress: a process did no work (writers %" PRIu64
		         ", maker %zu, CLI %" PRIu64 ", snapshots %" PRIu64 ")",
		         wb, L.nt, cli_batches, snaps);

	for (unsigned w = 0; w < NWRITERS; w++) {
		free(L.w[w]);
		free(ck.dig_after[w]);
		free(ck.id_of[w]);
	}
	free(L.t);
	free(L.c);
	free(cl);
	free(ck.buf);
	m_free(&ck.m);
	free(file);
	if (th_env_long("LB_STRESS_KEEP", 0))
		printf("stress: the database is kept in %s\n", cfg.dir);
	else
		th_rmrf(cfg.root);
	free(cfg.root);
	free(cfg.dir);
	free(cfg.bin);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_engine_stress__many_processes),
	};
	return cmocka_run_group_tests_name("engine_stress", tests, NULL, NULL);
}
