/* SPDX-License-Identifier: MIT */
/*
 * Damaged and hostile files: a data.mdb truncated at many lengths, files of
 * random bytes, a valid database with bytes changed in its meta pages, a
 * bit flipped in a value in use of any sub-database (tables, log, indexes,
 * _meta), bytes changed in page and node headers, LMDB environments made by
 * another program, a database of a newer format version, and lock files
 * left by killed processes (a reader, a writer in the middle of a batch) or
 * filled with garbage.
 *
 * The promise: lb_open() fails with a clear code (LB_ECORRUPT, LB_EINVAL,
 * LB_EVERSION, LB_ENOTFOUND), or it opens and lb_verify() reports the
 * damage (or finds none, when the bytes changed were not in use), or, for
 * a stale lock, everything works. Nothing crashes and nothing hangs: every
 * case runs in a forked child under an alarm, so a crash or a hang is a
 * test failure that names the case, not the death of the test runner.
 *
 * Outcomes per case are counted and printed, so that a run shows how many
 * damaged files were refused at open and how many were caught by verify.
 * LB_DAMAGE_SCALE=N runs N times as many random cases.
 */
#define _GNU_SOURCE
#include "_common.h"
#include "_model.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/internal.h" /* lb__key_text(), for messages */

#define CASE_SECONDS 20

/*
 * Gaps once known, each switch 1 to accept it again while it is reported
 * (see docs/RELIABILITY.md §5; all are closed, so all are 0):
 *  - LMDB trusts its page and node headers: a damaged one could make it
 *    read out of bounds or fail an assertion; lb_open and lb_verify now
 *    check the pages' structure first (engine/pagecheck.c).
 *  - A meta page whose last-page number is damaged to a huge value made
 *    LMDB answer MDB_MAP_RESIZED, which lb_open passed on as LB_EIO.
 *  - lb_verify did not check _meta's next_tid.
 */
#define TOLERATE_LMDB_PAGE_CRASH 0
#define TOLERATE_MAP_RESIZED_EIO 0
#define TOLERATE_NEXT_TID 0

/* Shared with the children (an anonymous shared mapping): where the child
 * was (1 open, 2 verify, 3 reads) and the code it ended with. */
static volatile struct {
	int stage, done, result;
} * shm;
static const char *const stage_name[] = {"before open", "lb_open", "lb_verify",
                                         "reading"};

/* Child exit codes: what happened to the damaged database. */
enum {
	R_REFUSED = 0,  /* lb_open failed with a clear code */
	R_CAUGHT = 1,   /* opened; lb_verify (or a read) reported damage */
	R_CLEAN = 2,    /* opened, verified, read everything */
	R_BADCODE = 10, /* lb_open failed with an unexpected code */
	R_BADVERIFY,    /* lb_verify returned something unexpected */
	R_BADREAD,      /* a read failed with an unexpected code */
	R_WORKS_NOT,    /* a stale-lock case could not write or read */
	R_MAP_RESIZED   /* lb_open: LB_EIO for MDB_MAP_RESIZED (known gap) */
};
static const char *const r_name[] = {"refused at open", "caught by verify",
                                     "clean"};

struct tally {
	unsigned long n[3];
};

/* ---- children --------------------------------------------------------- */

static int clear_open_code(int rc)
{
	return rc == LB_ECORRUPT || rc == LB_EINVAL || rc == LB_EVERSION ||
	       rc == LB_ENOTFOUND;
}

struct walk {
	int rc;
	unsigned long n;
};

static int walk_table(void *ctx, const char *name, const lb_schema *s,
                      uint64_t records)
{
	struct walk *w = ctx;
	(void)s;
	(void)records;
	if (w->n < 64) {
		/* names are checked to be readable, cursors walk below */
		w->n++;
		w->rc |= name[0] == 0;
	}
	return 0;
}

/* Read every table through a cursor and every batch's records. */
static int read_all(lb_db *db)
{
	struct walk w = {0, 0};
	lb_snapshot *s = NULL;
	uint64_t last = 0;
	int rc = lb_tables(db, walk_table, &w);
	if (rc < 0)
		return rc;
	if ((rc = lb_last_batch(db, &last)) < 0)
		return rc;
	for (uint64_t id = 1; id <= last; id++) {
		te_recs rs;
		memset(&rs, 0, sizeof rs);
		rc = lb_changes(db, id, te_collect, &rs);
		te_recs_free(&rs);
		if (rc < 0 && rc != LB_EPRUNED)
			return rc;
	}
	if ((rc = lb_snapshot_open(db, &s)) < 0)
		return rc;
	static const char *const names[] = {"a", "h", "w", "big"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		lb_cursor *c = NULL;
		const void *k, *v;
		size_t kl, vl;
		if ((rc = lb_cursor_open(s, names[i], &c)) < 0) {
			if (rc == LB_ENOTFOUND)
				continue;
			break;
		}
		while ((rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0)
			;
		lb_cursor_close(c);
		if (rc != LB_ENOTFOUND)
			break;
		rc = 0;
	}
	lb_snapshot_close(s);
	return rc;
}

/* Open a damaged database, verify, read: the child's verdict. */
static int child_damaged(const char *dir, unsigned flags)
{
	lb_options o;
	lb_db *db = NULL;
	lb_verify_report rep;
	lb_options_init(&o);
	o.flags = flags;
	shm->stage = 1;
	int rc = lb_open(dir, &o, &db);
	if (rc < 0) {
		if (rc == LB_EIO && strstr(lb_errmsg(), "MDB_MAP_RESIZED"))
			return R_MAP_RESIZED;
		if (!clear_open_code(rc) || !lb_errmsg()[0]) {
			fprintf(stderr, "lb_open: %s (%s)\n", lb_strerror(rc),
			        lb_errmsg());
			return R_BADCODE;
		}
		return R_REFUSED;
	}
	shm->stage = 2;
	rc = lb_verify(db, LB_VERIFY_REPLAY, &rep);
	if (rc == LB_ECORRUPT || rc == LB_EVERSION) {
		lb_close(db);
		return R_CAUGHT;
	}
	if (rc != 0) {
		fprintf(stderr, "lb_verify: %s (%s)\n", lb_strerror(rc),
		        lb_errmsg());
		lb_close(db);
		return R_BADVERIFY;
	}
	shm->stage = 3;
	rc = read_all(db);
	lb_close(db);
	if (rc == LB_ECORRUPT || rc == LB_EVERSION)
		return R_CAUGHT;
	if (rc != 0) {
		fprintf(stderr, "read: %s (%s)\n", lb_strerror(rc),
		        lb_errmsg());
		return R_BADREAD;
	}
	return R_CLEAN;
}

/* cmocka catches crashes to fail the running test; a forked child must die
 * of them instead, or it would go on running the parent's tests. */
static void child_signals(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS,  SIGILL,
	                           SIGFPE,  SIGABRT, SIGSYS};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		signal(sigs[i], SIG_DFL);
}

/* Run fn in a forked child under an alarm. Its result: the code fn
 * returned (>= 0), or -1 if it died of a signal (*sig). The child hands
 * its code over through shared memory and then kills itself, so that
 * nothing runs at its exit (under valgrind: no leak check of the parent's
 * memory in the child). */
static int fork_case(int (*fn)(const char *, unsigned), const char *dir,
                     unsigned flags, int *sig)
{
	int status;
	fflush(NULL);
	shm->stage = 0;
	shm->done = 0;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		child_signals();
		alarm(CASE_SECONDS);
		shm->result = fn(dir, flags);
		shm->done = 1;
		kill(getpid(), SIGKILL);
		_exit(100);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (shm->done)
		return shm->result;
	*sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	return -1;
}

/* Run fn in a child; its code, or a test failure naming the case when it
 * crashed or hung. */
static int run_case(const char *what, int (*fn)(const char *, unsigned),
                    const char *dir, unsigned flags)
{
	int sig = 0, r = fork_case(fn, dir, flags, &sig);
	if (r < 0) {
		th_seed_report();
		fail_msg("%s: the process %s in %s (signal %d, %s)", what,
		         sig == SIGALRM ? "hung" : "crashed",
		         stage_name[shm->stage & 3], sig, strsignal(sig));
	}
	return r;
}

/* run_case() that reports a crash (-1) or hang (-2), printed, instead of
 * failing. */
static int run_case_soft(const char *what, int (*fn)(const char *, unsigned),
                         const char *dir, unsigned flags)
{
	int sig = 0, r = fork_case(fn, dir, flags, &sig);
	if (r < 0) {
		printf("  %s: the process %s in %s (signal %d, %s)\n", what,
		       sig == SIGALRM ? "hung" : "crashed",
		       stage_name[shm->stage & 3], sig, strsignal(sig));
		return sig == SIGALRM ? -2 : -1;
	}
	return r;
}

static void expect_outcome(const char *what, int r, int allowed_mask,
                           struct tally *t)
{
	if (r > R_CLEAN || !(allowed_mask & (1 << r))) {
		th_seed_report();
		fail_msg("%s: outcome %d (%s)", what, r,
		         r <= R_CLEAN ? r_name[r] : "a wrong code, see above");
	}
	if (t)
		t->n[r]++;
}

static void tally_print(const char *what, const struct tally *t)
{
	printf("%s: %lu refused at open, %lu caught by verify, %lu clean "
	       "(damage in unused bytes)\n",
	       what, t->n[R_REFUSED], t->n[R_CAUGHT], t->n[R_CLEAN]);
}

/* Cases per test: n times LB_DAMAGE_SCALE (default 1). */
static long scaled(long n)
{
	return n * th_env_long("LB_DAMAGE_SCALE", 1);
}

/* ---- files -------------------------------------------------------------- */

static unsigned char *slurp(const char *path, size_t *n)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	unsigned char *p;
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	p = te_malloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, p, (size_t)st.st_size), st.st_size);
	close(fd);
	*n = (size_t)st.st_size;
	return p;
}

static void spit(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

/* A fresh case directory holding data.mdb = p[0..n). */
static char *case_dir(const char *root, const void *p, size_t n)
{
	char *dir = th_path(root, "case"), *data;
	th_rmrf(dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	data = th_path(dir, "data.mdb");
	spit(data, p, n);
	free(data);
	return dir;
}

/* A reference database with schemas, references, rollbacks, overflow
 * pages and a few levels of B-tree: built once per test. */
static char *build_reference(const char *root, uint64_t seed)
{
	char *dir = th_path(root, "ref");
	uint64_t rng = seed;
	lb_options o;
	lb_db *db;
	tm_model *m = tm_new(0);

	lb_options_init(&o);
	o.flags = LB_CREATE | LB_NOSYNC;
	o.segment_size = 1024;
	db = te_open_opts(dir, &o);
	tm_setup(m, db);
	for (int i = 0; i < 120; i++)
		tm_step(m, &db, dir, &rng,
		        TM_STEP_BATCH | TM_STEP_ROLLBACK | TM_STEP_ROLLBACK_TO);
	te_rc(0, lb_table_create(db, "big", NULL));
	{
		lb_batch *b;
		char k[32], *v = te_malloc(6000);
		te_rc(0, lb_batch_begin(db, "big", &b));
		for (int i = 0; i < 400; i++) {
			size_t vl = i % 20 == 0 ? 6000 : 40;
			snprintf(k, sizeof k, "big%04d", i);
			te_fill(&rng, v, vl);
			te_rc(0, lb_put(b, "big", k, strlen(k), v, vl));
		}
		te_rc(0, lb_batch_commit(b, NULL));
		free(v);
	}
	lb_close(db);
	tm_free(m);
	return dir;
}

/* ---- tests -------------------------------------------------------------- */

static void test_engine_damaged__truncated(void **state)
{
	char *root = th_tmpdir(), *ref = build_reference(root, 11), *p;
	size_t n;
	unsigned char *data;
	struct tally t = {{0}};
	uint64_t rng = th_seed(0x7c0a7ed);
	size_t cap = (size_t)scaled(120), nl = 0;
	size_t *lens = te_malloc((cap + 64) * sizeof *lens);
	(void)state;

	p = th_path(ref, "data.mdb");
	data = slurp(p, &n);
	free(p);
	static const size_t fixed[] = {0,    1,     2,     15,   16,   100,
	                               4095, 4096,  4097,  8191, 8192, 8193,
	                               8300, 12287, 12288, 16384};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		lens[nl++] = fixed[i];
	/* every 4th page boundary, and some random lengths */
	for (size_t off = 16384; off < n && nl < cap / 2; off += 8 * 4096)
		lens[nl++] = off;
	while (nl < cap - 1)
		lens[nl++] = (size_t)th_below(&rng, n);
	lens[nl++] = n - 1;
	for (size_t i = 0; i < nl; i++) {
		char what[96];
		char *dir = case_dir(root, data, lens[i] < n ? lens[i] : n);
		snprintf(what, sizeof what, "data.mdb cut to %zu of %zu bytes",
		         lens[i], n);
		int r = run_case(what, child_damaged, dir, 0);
		expect_outcome(what, r, 1 << R_REFUSED | 1 << R_CAUGHT, &t);
		r = run_case(what, child_damaged, dir, LB_RDONLY);
		expect_outcome(what, r, 1 << R_REFUSED | 1 << R_CAUGHT, NULL);
		th_rmrf(dir);
		free(dir);
	}
	tally_print("truncated data.mdb", &t);
	free(lens);
	free(data);
	free(ref);
	th_rmrf(root);
	free(root);
}

static void test_engine_damaged__random_bytes(void **state)
{
	char *root = th_tmpdir();
	uint64_t rng = th_seed(0x4a2d0b);
	struct tally t = {{0}};
	(void)state;
	for (long i = 0; i < scaled(40); i++) {
		size_t n =
		        (size_t)th_below(&rng, 5) == 0
		                ? (size_t)th_below(&rng, 64)
		                : 4096 * (1 + (size_t)th_below(&rng, 48)) +
		                          (size_t)th_below(&rng, 2) *
		                                  (size_t)th_below(&rng, 4096);
		unsigned char *p = te_malloc(n + 1);
		char what[64];
		te_fill(&rng, p, n);
		char *dir = case_dir(root, p, n);
		snprintf(what, sizeof what, "%zu random bytes (case %ld)", n,
		         i);
		int r = run_case(what, child_damaged, dir, 0);
		/* an empty file may be taken for a new database; nothing
		 * else may open */
		expect_outcome(what, r, 1 << R_REFUSED, &t);
		th_rmrf(dir);
		free(dir);
		free(p);
	}
	tally_print("random files", &t);
	th_rmrf(root);
	free(root);
}

/* Bytes changed in the two meta pages (the first 2 pages): LMDB's root
 * pointers, page counts, transaction ids. */
static void test_engine_damaged__meta_pages(void **state)
{
	char *root = th_tmpdir(), *ref = build_reference(root, 12), *p;
	size_t n;
	unsigned char *data;
	uint64_t rng = th_seed(0x3e7a);
	struct tally t = {{0}};
	unsigned long bad = 0, resized = 0;
	(void)state;
	p = th_path(ref, "data.mdb");
	data = slurp(p, &n);
	free(p);
	for (long i = 0; i < scaled(100); i++) {
		unsigned char *d = te_malloc(n);
		char what[96];
		memcpy(d, data, n);
		/* a byte of one meta page's header and meta fields (the
		 * first 200 bytes of page 0 or 1), set to a random value */
		size_t off = (size_t)th_below(&rng, 2) * 4096 +
		             (size_t)th_below(&rng, 200);
		unsigned char v = (unsigned char)th_rand(&rng);
		d[off] = v;
		char *dir = case_dir(root, d, n);
		snprintf(what, sizeof what, "meta byte %zu set to 0x%02x", off,
		         v);
		int r = run_case(what, child_damaged, dir, 0);
		if (r == R_MAP_RESIZED && TOLERATE_MAP_RESIZED_EIO) {
			printf("  LB_EIO, not LB_ECORRUPT (MDB_MAP_RESIZED): "
			       "%s\n",
			       what);
			resized++;
		} else if (r > R_CLEAN) {
			printf("  wrong outcome: %s\n", what);
			bad++;
		} else {
			t.n[r]++;
		}
		th_rmrf(dir);
		free(dir);
		free(d);
	}
	tally_print("meta page bytes changed", &t);
	if (resized)
		printf("  %lu refused with LB_EIO instead of LB_ECORRUPT (a "
		       "known gap)\n",
		       resized);
	assert_int_equal(bad, 0);
	free(data);
	free(ref);
	th_rmrf(root);
	free(root);
}

/* Where every live key and value of every sub-database lies in data.mdb,
 * found through LMDB itself: mv_data points into the map, which is the
 * file. */
struct span {
	size_t off, len;
	char db[LB_TABLE_NAME_MAX + 3];
	char what[48]; /* the key, printable */
	int key;
};

/* Where LMDB mapped dir/data.mdb in this process (MDB_envinfo gives the
 * address only for fixed maps). */
static char *map_base(const char *dir)
{
	char line[4096], *want = th_path(dir, "data.mdb"), *real;
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long lo = 0;
	real = realpath(want, NULL);
	assert_non_null(f);
	assert_non_null(real);
	while (fgets(line, sizeof line, f)) {
		char *path = strchr(line, '/');
		unsigned long a, b, off;
		if (!path)
			continue;
		path[strcspn(path, "\n")] = 0;
		if (strcmp(path, real) ||
		    sscanf(line, "%lx-%lx %*s %lx", &a, &b, &off) != 3 || off)
			continue;
		lo = a;
		break;
	}
	fclose(f);
	free(want);
	free(real);
	assert_true(lo != 0);
	return (char *)lo;
}

static size_t live_spans(const char *dir, struct span **out)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi main, dbi;
	MDB_cursor *c, *d;
	MDB_val k, v, dk, dv;
	struct span *sp = NULL;
	size_t n = 0, cap = 0;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 1024), 0);
	assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	char *base = map_base(dir);
	assert_int_equal(mdb_dbi_open(txn, NULL, 0, &main), 0);
	assert_int_equal(mdb_cursor_open(txn, main, &c), 0);
	while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
		char name[LB_TABLE_NAME_MAX + 3];
		unsigned flags;
		if (k.mv_size >= sizeof name)
			continue;
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = 0;
		assert_int_equal(mdb_dbi_open(txn, name, 0, &dbi), 0);
		assert_int_equal(mdb_dbi_flags(txn, dbi, &flags), 0);
		assert_int_equal(mdb_cursor_open(txn, dbi, &d), 0);
		while (mdb_cursor_get(d, &dk, &dv, MDB_NEXT) == 0) {
			for (int key = 0; key < 2; key++) {
				MDB_val *x = key ? &dk : &dv;
				if (x->mv_size == 0)
					continue;
				if (n == cap) {
					cap = cap ? cap * 2 : 1024;
					sp = realloc(sp, cap * sizeof *sp);
					assert_non_null(sp);
				}
				sp[n].off = (size_t)((char *)x->mv_data - base);
				sp[n].len = x->mv_size;
				sp[n].key = key;
				snprintf(sp[n].db, sizeof sp[n].db, "%s", name);
				lb__key_text(dk.mv_data, dk.mv_size, sp[n].what,
				             sizeof sp[n].what);
				n++;
			}
		}
		mdb_cursor_close(d);
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	*out = sp;
	return n;
}

/* A bit flipped in a live value of each sub-database: lb_open refuses the
 * file or lb_verify (with replay) reports the damage. */
static void test_engine_damaged__live_values(void **state)
{
	char *root = th_tmpdir(), *ref = build_reference(root, 13), *p;
	size_t n, nsp;
	unsigned char *data;
	struct span *sp;
	uint64_t rng = th_seed(0x106a1);
	struct tally t = {{0}};
	unsigned long missed = 0;
	(void)state;
	p = th_path(ref, "data.mdb");
	data = slurp(p, &n);
	free(p);
	nsp = live_spans(ref, &sp);
	for (long i = 0; i < scaled(150); i++) {
		/* a sub-database at random, then one of its values */
		const struct span *s;
		const char *db = sp[th_below(&rng, nsp)].db;
		do {
			do
				s = &sp[th_below(&rng, nsp)];
			while (s->key);
		} while (th_below(&rng, 4) && strcmp(s->db, db));
		unsigned char *d = te_malloc(n);
		char what[300];
		size_t off = s->off + (size_t)th_below(&rng, s->len);
		unsigned bit = (unsigned)th_below(&rng, 8);
		if (off >= n)
			fail_msg("%s: %zu >= %zu", s->db, off, n);
		memcpy(d, data, n);
		d[off] ^= (unsigned char)(1u << bit);
		char *dir = case_dir(root, d, n);
		snprintf(what, sizeof what,
		         "%s: value of key '%s' (%zu bytes at %zu): bit %u "
		         "of byte %zu flipped",
		         s->db, s->what, s->len, s->off, bit, off);
		int r = run_case(what, child_damaged, dir, 0);
		expect_outcome(what, r,
		               1 << R_REFUSED | 1 << R_CAUGHT | 1 << R_CLEAN,
		               &t);
		if (r == R_CLEAN) {
			printf("  not detected: %s\n", what);
			if (!(TOLERATE_NEXT_TID && !strcmp(s->db, "_meta") &&
			      !strcmp(s->what, "next_tid")))
				missed++;
		}
		th_rmrf(dir);
		free(dir);
		free(d);
	}
	tally_print("live values with a bit flipped", &t);
	assert_int_equal(missed, 0);
	free(sp);
	free(data);
	free(ref);
	th_rmrf(root);
	free(root);
}

/* Bytes changed anywhere in the pages after the meta pages: page headers,
 * node headers, keys, free space. */
static void test_engine_damaged__any_page(void **state)
{
	char *root = th_tmpdir(), *ref = build_reference(root, 14), *p;
	size_t n;
	unsigned char *data;
	uint64_t rng = th_seed(0xa11a9e);
	struct tally t = {{0}};
	long cases = scaled(100);
	unsigned long crashed = 0, bad = 0;
	(void)state;
	p = th_path(ref, "data.mdb");
	data = slurp(p, &n);
	free(p);
	for (long i = 0; i < cases; i++) {
		unsigned char *d = te_malloc(n);
		char what[128];
		size_t off = 8192 + (size_t)th_below(&rng, n - 8192);
		/* mostly page and node headers: the first 32 bytes of a
		 * page, or a node header near the page's end */
		if (th_below(&rng, 2))
			off = off / 4096 * 4096 + (size_t)th_below(&rng, 32);
		unsigned char v = (unsigned char)th_rand(&rng);
		memcpy(d, data, n);
		d[off] = v;
		char *dir = case_dir(root, d, n);
		snprintf(what, sizeof what,
		         "byte %zu (page %zu + %zu) = 0x%02x", off, off / 4096,
		         off % 4096, v);
		int r = run_case_soft(what, child_damaged, dir, 0);
		if (r == -1) {
			crashed++;
		} else if (r < 0 || r > R_CLEAN) {
			printf("  wrong outcome: %s\n", what);
			bad++;
		} else {
			t.n[r]++;
		}
		th_rmrf(dir);
		free(dir);
		free(d);
	}
	tally_print("page bytes changed", &t);
	printf("  %lu crashed inside LMDB (a known gap), %lu hung or "
	       "answered a wrong code\n",
	       crashed, bad);
	free(data);
	free(ref);
	th_rmrf(root);
	free(root);
	assert_int_equal(bad, 0);
	assert_true(TOLERATE_LMDB_PAGE_CRASH || crashed == 0);
}

/* ---- environments made by other programs, and versions --------------- */

static void lmdb_env(const char *dir, const char *const *dbs, size_t ndbs,
                     const char *key, const void *val, size_t vlen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	for (size_t i = 0; i < ndbs; i++) {
		assert_int_equal(mdb_dbi_open(txn, dbs[i], MDB_CREATE, &dbi),
		                 0);
		if (key) {
			MDB_val k = {strlen(key), (void *)key};
			MDB_val v = {vlen, (void *)val};
			assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
		}
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void test_engine_damaged__foreign_environments(void **state)
{
	char *root = th_tmpdir();
	static const char *const other[] = {"accounts", "orders"};
	static const char *const meta[] = {"_meta"};
	static const unsigned char v2[4] = {0, 0, 0, LB_FORMAT_VERSION + 1},
	                           v0[4] = {0};
	struct {
		const char *what;
		const char *const *dbs;
		size_t ndbs;
		const char *key;
		const void *val;
		size_t vlen;
		int want;
	} cases[] = {
	        {"another program's named databases", other, 2, "k", "v", 1,
	         LB_EINVAL},
	        {"another program's main database", NULL, 0, "k", "v", 1,
	         LB_EINVAL},
	        {"a _meta without a format entry", meta, 1, "other", "x", 1,
	         LB_ECORRUPT},
	        {"a format entry of 3 bytes", meta, 1, "format", "abc", 3,
	         LB_ECORRUPT},
	        {"a newer format version", meta, 1, "format", v2, 4,
	         LB_EVERSION},
	        {"format version 0", meta, 1, "format", v0, 4, LB_ECORRUPT},
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *dir = th_path(root, "env");
		th_rmrf(dir);
		assert_int_equal(mkdir(dir, 0755), 0);
		if (cases[i].ndbs) {
			lmdb_env(dir, cases[i].dbs, cases[i].ndbs, cases[i].key,
			         cases[i].val, cases[i].vlen);
		} else {
			/* the unnamed database only */
			MDB_env *env;
			MDB_txn *txn;
			MDB_dbi dbi;
			MDB_val k = {1, "k"}, v = {1, "v"};
			assert_int_equal(mdb_env_create(&env), 0);
			assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
			assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
			assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
			assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
			assert_int_equal(mdb_txn_commit(txn), 0);
			mdb_env_close(env);
		}
		for (unsigned f = 0; f < 3; f++) {
			static const unsigned fl[] = {0, LB_CREATE, LB_RDONLY};
			lb_options o;
			lb_db *db = (lb_db *)1;
			lb_options_init(&o);
			o.flags = fl[f];
			int rc = lb_open(dir, &o, &db);
			if (rc != cases[i].want)
				fail_msg("%s, flags %u: %s (%s), want %s",
				         cases[i].what, fl[f], lb_strerror(rc),
				         lb_errmsg(),
				         lb_strerror(cases[i].want));
			assert_null(db);
		}
		th_rmrf(dir);
		free(dir);
	}
	th_rmrf(root);
	free(root);
}

/* A batch header (or a segment) written by a newer format. */
static void test_engine_damaged__newer_log_version(void **state)
{
	char *root = th_tmpdir(), *dir = th_path(root, "db");
	lb_db *db = te_open(dir, LB_CREATE | LB_NOSYNC);
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;
	uint8_t key[12] = {0};
	(void)state;
	te_rc(0, lb_table_create(db, "t", NULL));
	te_put1(db, "t", "k", "v");
	te_put1(db, "t", "k", "w");
	lb_close(db);

	/* batch 2's header: [hver, ...] with hver = 2 (its second byte
	 * is the positive fixint 1) */
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 1024), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "_batches", 0, &dbi), 0);
	key[7] = 2;
	k.mv_size = 8;
	k.mv_data = key;
	assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
	{
		uint8_t *copy = te_malloc(v.mv_size);
		memcpy(copy, v.mv_data, v.mv_size);
		assert_int_equal(copy[1], 1);
		copy[1] = 2;
		v.mv_data = copy;
		assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
		free(copy);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	int r = run_case("batch header version 2", child_damaged, dir, 0);
	expect_outcome("batch header version 2", r,
	               1 << R_REFUSED | 1 << R_CAUGHT, NULL);
	{
		lb_db *d = NULL;
		lb_options o;
		lb_options_init(&o);
		int rc = lb_open(dir, &o, &d);
		if (rc == 0) {
			lb_verify_report rep;
			rc = lb_verify(d, 0, &rep);
			lb_close(d);
		}
		assert_true(rc == LB_EVERSION || rc == LB_ECORRUPT);
	}
	th_rmrf(root);
	free(dir);
	free(root);
}

/* ---- stale locks ---------------------------------------------------------
 */

/* In a child: open dir, do what `how` says, tell the parent, wait to be
 * killed. */
static void killed_child(const char *dir, int how, int fd)
{
	lb_options o;
	lb_db *db = NULL;
	lb_snapshot *s = NULL;
	lb_batch *b = NULL;
	lb_options_init(&o);
	o.flags = how == 2 ? LB_RDONLY : 0;
	if (lb_open(dir, &o, &db) != 0)
		_exit(2);
	if (how == 0 || how == 2) {
		/* a reader holding a snapshot: a reader slot */
		if (lb_snapshot_open(db, &s) != 0)
			_exit(3);
	} else {
		/* a writer in the middle of a batch: LMDB's writer lock */
		if (lb_batch_begin(db, "killed", &b) != 0)
			_exit(3);
		for (int i = 0; i < 1000; i++) {
			char k[32];
			snprintf(k, sizeof k, "dead%d", i);
			if (lb_put(b, "t", k, strlen(k), "x", 1) != 0)
				_exit(4);
		}
	}
	(void)!write(fd, "r", 1);
	for (;;)
		pause();
}

/* After a killed holder: open, write, read; all must work. */
static int child_after_stale(const char *dir, unsigned flags)
{
	lb_options o;
	lb_db *db = NULL;
	lb_batch *b = NULL;
	lb_verify_report rep;
	void *v = NULL;
	size_t vl;
	(void)flags;
	lb_options_init(&o);
	if (lb_open(dir, &o, &db) != 0) {
		fprintf(stderr, "open: %s\n", lb_errmsg());
		return R_WORKS_NOT;
	}
	if (lb_batch_begin(db, "after", &b) != 0 ||
	    lb_put(b, "t", "after", 5, "yes", 3) != 0 ||
	    lb_batch_commit(b, NULL) != 0) {
		fprintf(stderr, "commit: %s\n", lb_errmsg());
		return R_WORKS_NOT;
	}
	if (lb_get(db, "t", "after", 5, &v, &vl) != 0 || vl != 3)
		return R_WORKS_NOT;
	free(v);
	/* the killed batch left nothing */
	if (lb_get(db, "t", "dead0", 5, &v, &vl) != LB_ENOTFOUND)
		return R_WORKS_NOT;
	if (lb_verify(db, LB_VERIFY_REPLAY, &rep) != 0)
		return R_WORKS_NOT;
	lb_close(db);
	return R_CLEAN;
}

static void test_engine_damaged__stale_locks(void **state)
{
	char *root = th_tmpdir(), *dir = th_path(root, "db");
	static const char *const how_name[] = {
	        "a reader killed holding a snapshot",
	        "a writer killed in the middle of a batch",
	        "a read-only reader killed holding a snapshot"};
	lb_db *db = te_open(dir, LB_CREATE);
	(void)state;
	te_rc(0, lb_table_create(db, "t", NULL));
	te_put1(db, "t", "k", "v");
	lb_close(db);
	for (int round = 0; round < 2; round++) {
		for (int how = 0; how < 3; how++) {
			int fds[2], status;
			char c;
			assert_int_equal(pipe(fds), 0);
			pid_t pid = fork();
			assert_true(pid >= 0);
			if (pid == 0) {
				close(fds[0]);
				killed_child(dir, how, fds[1]);
			}
			close(fds[1]);
			assert_int_equal(read(fds[0], &c, 1), 1);
			close(fds[0]);
			kill(pid, SIGKILL);
			assert_int_equal(waitpid(pid, &status, 0), pid);
			int r = run_case(how_name[how], child_after_stale, dir,
			                 0);
			if (r != R_CLEAN)
				fail_msg("after %s: the database does not work "
				         "(code %d)",
				         how_name[how], r);
		}
	}
	/* a lock file of garbage, and an empty one */
	{
		char *lock = th_path(dir, "lock.mdb");
		unsigned char junk[8192];
		uint64_t rng = 5;
		te_fill(&rng, junk, sizeof junk);
		spit(lock, junk, sizeof junk);
		int r = run_case("a lock file of random bytes",
		                 child_after_stale, dir, 0);
		if (r != R_CLEAN)
			fail_msg("lock file of random bytes: code %d", r);
		spit(lock, junk, 0);
		r = run_case("an empty lock file", child_after_stale, dir, 0);
		if (r != R_CLEAN)
			fail_msg("empty lock file: code %d", r);
		free(lock);
	}
	th_rmrf(root);
	free(dir);
	free(root);
}

int main(void)
{
	shm = mmap(NULL, sizeof *shm, PROT_READ | PROT_WRITE,
	           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		return 1;
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_engine_damaged__truncated),
	        cmocka_unit_test(test_engine_damaged__random_bytes),
	        cmocka_unit_test(test_engine_damaged__meta_pages),
	        cmocka_unit_test(test_engine_damaged__live_values),
	        cmocka_unit_test(test_engine_damaged__any_page),
	        cmocka_unit_test(test_engine_damaged__foreign_environments),
	        cmocka_unit_test(test_engine_damaged__newer_log_version),
	        cmocka_unit_test(test_engine_damaged__stale_locks),
	};
	return cmocka_run_group_tests_name("engine_damaged", tests, NULL, NULL);
}
