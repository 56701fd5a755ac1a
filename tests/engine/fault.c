/* SPDX-License-Identifier: MIT */
/*
 * Full disks and I/O errors.
 *
 * every_write_fails_once_enospc, every_write_fails_once_eio,
 * disk_stays_full: the LD_PRELOAD shim tests/shim/fault.c
 * (BUILD/libfault.so; this program re-executes itself under it when it is
 * not loaded) numbers every write and sync call on the test's files. A workload
 * (create, table, commits, rollback, rollback_to, checkpoint, prune, more
 * commits, replay) is run once to count the calls, then once per call N with
 * call N failing (with ENOSPC or EIO; or, for the full disk, every call from N
 * on until the space comes back). The operation that meets the fault must
 * return LB_EFULL (ENOSPC) or LB_EIO (EIO) and change nothing that can be read:
 * the database's digest is the one before the operation and a checkpoint
 * or replay destination does not open as a database. Then the fault is
 * removed and the same process goes on: the operation is retried and the
 * rest of the workload runs; the end state must equal that of the run
 * without faults, verify with replay, and read the same from a fresh
 * process. (The workloads run on a private tmpfs when one can be mounted:
 * the faults are the shim's, and syncs cost nothing there.) A failed meta
 * page write leaves LMDB's environment failed (MDB_PANIC): the engine
 * reopens it by itself, so the same handle must read right after the
 * failure and go on; the runs where that happened are counted and printed.
 *
 * panic_same_handle_goes_on, panic_waits_for_old_snapshots,
 * panic_under_readers: the failed environment in detail. The meta page
 * write of a commit is made to fail; after it, reads, batches, rollbacks
 * and a table created since the open work on the same handle, also while
 * the disk stays full; a snapshot begun before the failure still reads,
 * and keeps the environment from being reopened (other calls fail with
 * LB_EIO after a bounded wait) until it is closed; threads reading all the
 * while see every read succeed.
 *
 * disk_full_tmpfs: the same promise on a real file system that fills up:
 * an 8 MiB tmpfs mounted in a private mount namespace (needs root or user
 * namespaces; without them the test fails, saying so).
 *
 * map_growth_tiny_map: batches far larger than a 64 KiB .. 1 MiB initial
 * map commit, roll back, replay and verify (the map grows mid-batch).
 */
#define _GNU_SOURCE
#include "_common.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/internal.h" /* db->env, to see LMDB's failed state */

/* cmocka catches crashes to fail the running test; a forked child must die
 * of them instead, or it would go on running the parent's tests. */
static void child_signals(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS,  SIGILL,
	                           SIGFPE,  SIGABRT, SIGSYS};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		signal(sigs[i], SIG_DFL);
}

/* ---- the shim's control functions ---------------------------------------
 */

static struct {
	void (*arm)(long at, int err, int sticky);
	void (*disarm)(void);
	long (*calls)(void);
	long (*fired)(void);
	void (*dir)(const char *prefix);
	void (*calls_only)(const char *list);
} shim;

static int shim_load(void)
{
	*(void **)&shim.arm = dlsym(RTLD_DEFAULT, "lbfault_arm");
	*(void **)&shim.disarm = dlsym(RTLD_DEFAULT, "lbfault_disarm");
	*(void **)&shim.calls = dlsym(RTLD_DEFAULT, "lbfault_calls");
	*(void **)&shim.fired = dlsym(RTLD_DEFAULT, "lbfault_fired");
	*(void **)&shim.dir = dlsym(RTLD_DEFAULT, "lbfault_dir");
	*(void **)&shim.calls_only = dlsym(RTLD_DEFAULT, "lbfault_calls_only");
	return shim.arm && shim.disarm && shim.calls && shim.fired &&
	       shim.dir && shim.calls_only;
}

/* Where the shim is: $LB_FAULT_SHIM, else $LB_BUILD/libfault.so, else
 * next to the build directory of this binary (BUILD/tests/..). */
static char *shim_path(void)
{
	char exe[PATH_MAX], *p = NULL;
	const char *e = getenv("LB_FAULT_SHIM");
	if (e && *e)
		return strdup(e);
	if ((e = getenv("LB_BUILD")) && *e &&
	    asprintf(&p, "%s/libfault.so", e) >= 0 && access(p, R_OK) == 0)
		return p;
	free(p);
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return NULL;
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = 0;
	if (asprintf(&p, "%s/../libfault.so", exe) < 0)
		return NULL;
	return p;
}

/* Run again with the shim preloaded; returns only if that is impossible. */
static void reexec_with_shim(char **argv)
{
	char *so = shim_path(), *pre = NULL, *asan = NULL;
	const char *old;
	if (!so || access(so, R_OK) != 0 || getenv("LB_FAULT_REEXEC")) {
		free(so);
		return;
	}
	old = getenv("LD_PRELOAD");
	if (asprintf(&pre, "%s%s%s", so, old && *old ? " " : "",
	             old ? old : "") < 0)
		return;
	/* ASan wants to be first in the library list; the shim passes
	 * every call through, so the order does not matter here. */
	old = getenv("ASAN_OPTIONS");
	if (asprintf(&asan, "%s%sverify_asan_link_order=0", old ? old : "",
	             old && *old ? ":" : "") < 0)
		return;
	setenv("LD_PRELOAD", pre, 1);
	setenv("ASAN_OPTIONS", asan, 1);
	setenv("LB_FAULT_REEXEC", "1", 1);
	/* the program's own path (under valgrind, /proc/self/exe itself
	 * would name valgrind's tool) */
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = 0;
		execv(exe, argv);
	}
	fprintf(stderr, "fault: cannot re-execute under %s: %s\n", so,
	        strerror(errno));
}

/* ---- a digest that reports failure instead of asserting ------------------
 * (usable in a forked child, where a cmocka failure must not unwind into
 * the parent's test runner) */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

struct tnames {
	char name[8][LB_TABLE_NAME_MAX + 1];
	int n;
};

static int tname_cb(void *ctx, const char *name, const lb_schema *s,
                    uint64_t records)
{
	struct tnames *t = ctx;
	(void)s;
	(void)records;
	if (t->n < 8)
		snprintf(t->name[t->n++], sizeof t->name[0], "%s", name);
	return 0;
}

/* Digest of every table, key and value and the last batch: 0 or an rc. */
static int digest(lb_db *db, uint64_t *out)
{
	struct tnames tn;
	lb_snapshot *s = NULL;
	uint64_t h = 0xcbf29ce484222325ull, last;
	int rc;
	tn.n = 0;
	if ((rc = lb_tables(db, tname_cb, &tn)) != 0 ||
	    (rc = lb_last_batch(db, &last)) != 0 ||
	    (rc = lb_snapshot_open(db, &s)) != 0)
		return rc;
	for (int i = 0; i < tn.n; i++) {
		lb_cursor *c = NULL;
		const void *k, *v;
		size_t kl, vl;
		h = fnv(h, tn.name[i], strlen(tn.name[i]) + 1);
		if ((rc = lb_cursor_open(s, tn.name[i], &c)) != 0)
			break;
		while ((rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0) {
			h = fnv(h, &kl, sizeof kl);
			h = fnv(h, k, kl);
			h = fnv(h, &vl, sizeof vl);
			h = fnv(h, v, vl);
		}
		lb_cursor_close(c);
		if (rc != LB_ENOTFOUND)
			break;
		rc = 0;
	}
	lb_snapshot_close(s);
	*out = fnv(h, &last, sizeof last);
	return rc;
}

/* In a fresh process: open dir, verify with replay, digest. 0 if all
 * is well and the digest is want; else a code naming the step. The child
 * hands its code over through a pipe, then kills itself, so that nothing
 * runs at its exit (under valgrind: no leak check of the parent's memory
 * in the child). */
static int fresh_check(const char *dir, uint64_t want)
{
	int fds[2], status;
	unsigned char code = 100;
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		lb_options o;
		lb_db *db = NULL;
		lb_verify_report rep;
		uint64_t d;
		child_signals();
		lb_options_init(&o);
		if (lb_open(dir, &o, &db) != 0) {
			fprintf(stderr, "fresh open: %s\n", lb_errmsg());
			code = 2;
		} else if (lb_verify(db, LB_VERIFY_REPLAY, &rep) != 0) {
			fprintf(stderr, "fresh verify: %s\n", lb_errmsg());
			code = 3;
		} else if (digest(db, &d) != 0) {
			code = 4;
		} else {
			code = d == want ? 0 : 5;
		}
		lb_close(db);
		(void)!write(fds[1], &code, 1);
		kill(getpid(), SIGKILL);
		_exit(100);
	}
	close(fds[1]);
	if (read(fds[0], &code, 1) != 1)
		code = 100; /* it died before telling */
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return code;
}

/* Does dir open as a database (without LB_CREATE)? */
static int opens(const char *dir)
{
	lb_options o;
	lb_db *d = NULL;
	lb_options_init(&o);
	o.flags = LB_RDONLY;
	int rc = lb_open(dir, &o, &d);
	lb_close(d);
	return rc == 0;
}

/* LMDB turns a write that the full disk cut short into EIO, and the
 * engine passes it on as LB_EIO. 0 makes that a failure. */
#define TOLERATE_SHORT_WRITE_EIO 0

/* Mount an 8 MiB tmpfs at mnt in a private mount namespace. 0 or errno.
 */
static int mount_small_tmpfs(const char *mnt, const char *size)
{
	char opts[64];
	snprintf(opts, sizeof opts, "size=%s,mode=0755", size);
	if (unshare(CLONE_NEWNS) != 0) {
		/* not root: a user namespace may still allow it */
		uid_t uid = getuid();
		gid_t gid = getgid();
		char map[64];
		int fd;
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
			return errno;
		if ((fd = open("/proc/self/setgroups", O_WRONLY)) >= 0) {
			(void)!write(fd, "deny", 4);
			close(fd);
		}
		snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
		if ((fd = open("/proc/self/uid_map", O_WRONLY)) < 0)
			return errno;
		(void)!write(fd, map, strlen(map));
		close(fd);
		snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
		if ((fd = open("/proc/self/gid_map", O_WRONLY)) < 0)
			return errno;
		(void)!write(fd, map, strlen(map));
		close(fd);
	}
	/* our mounts must not leak out of the namespace */
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0)
		return errno;
	if (mount("tmpfs", mnt, "tmpfs", 0, opts) != 0)
		return errno;
	return 0;
}

/* A fresh directory for a workload, on a private tmpfs when one can be
 * mounted (the shim fakes the errors, so the disk need not be real, and
 * fsync on tmpfs costs nothing), else under $TMPDIR. */
static char *work_mnt, *work_parent;

static char *work_dir(void)
{
	static char *mnt;
	static int tried;
	char *p;
	if (!tried) {
		char *t = th_tmpdir();
		tried = 1;
		mnt = th_path(t, "tmpfs");
		work_parent = t;
		work_mnt = mnt;
		if (mkdir(mnt, 0755) != 0 ||
		    mount_small_tmpfs(mnt, "512m") != 0) {
			mnt = NULL;
		} else {
			/* lb_verify's replay goes to $TMPDIR too */
			setenv("TMPDIR", mnt, 1);
		}
	}
	if (!mnt)
		return th_tmpdir();
	static unsigned seq;
	assert_true(asprintf(&p, "%s/w%u", mnt, seq++) > 0);
	assert_int_equal(mkdir(p, 0755), 0);
	return p;
}

/* ---- the workload -------------------------------------------------------
 */

struct wl {
	char *root; /* real path: the shim counts files under it */
	char *dir, *ck, *rp;
	lb_db *db;
	uint64_t a_id, at;
};

static int commit_keys(lb_db *db, const char *label, unsigned from, unsigned n,
                       size_t vlen, unsigned salt, int del)
{
	lb_batch *b = NULL;
	char k[32];
	char *v = malloc(vlen + 1);
	int rc;
	if (!v)
		return LB_ENOMEM;
	if ((rc = lb_batch_begin(db, label, &b)) != 0) {
		free(v);
		return rc;
	}
	for (unsigned i = from; i < from + n; i++) {
		int kl = snprintf(k, sizeof k, "key%05u", i);
		for (size_t j = 0; j < vlen; j++)
			v[j] = (char)('a' + (i * 7 + j * 13 + salt) % 26);
		rc = del ? lb_delete(b, "t", k, (size_t)kl)
		         : lb_put(b, "t", k, (size_t)kl, v, vlen);
		if (rc != 0) {
			lb_batch_abort(b);
			free(v);
			return rc;
		}
	}
	free(v);
	return lb_batch_commit(b, NULL);
}

enum {
	S_OPEN,
	S_TABLE,
	S_COMMIT_A,
	S_COMMIT_B,
	S_ROLLBACK_B,
	S_COMMIT_C,
	S_DELETE_C,
	S_ROLLBACK_TO_A,
	S_COMMIT_D,
	S_CHECKPOINT,
	S_PRUNE,
	S_COMMIT_E,
	S_REPLAY,
	S_N
};
static const char *const step_name[S_N] = {
        "create",     "table create", "commit A", "commit B (large)",
        "rollback B", "commit C",     "delete C", "rollback_to A",
        "commit D",   "checkpoint",   "prune",    "commit E",
        "replay",
};

static int step(struct wl *w, int s)
{
	lb_options o;
	lb_result res;
	int rc;
	switch (s) {
	case S_OPEN:
		lb_options_init(&o);
		o.flags = LB_CREATE;
		o.segment_size = 4096; /* several segments per batch */
		return lb_open(w->dir, &o, &w->db);
	case S_TABLE:
		return lb_table_create(w->db, "t", NULL);
	case S_COMMIT_A:
		rc = commit_keys(w->db, "A", 0, 20, 100, 1, 0);
		if (rc == 0)
			rc = lb_last_batch(w->db, &w->a_id);
		return rc;
	case S_COMMIT_B:
		return commit_keys(w->db, "B", 10, 200, 1500, 2, 0);
	case S_ROLLBACK_B:
		rc = lb_rollback(w->db, w->a_id + 1, 0, &res);
		lb_result_free(&res);
		return rc;
	case S_COMMIT_C:
		return commit_keys(w->db, "C", 5, 10, 300, 3, 0);
	case S_DELETE_C:
		return commit_keys(w->db, "C2", 0, 5, 0, 0, 1);
	case S_ROLLBACK_TO_A:
		rc = lb_rollback_to(w->db, w->a_id, &res);
		lb_result_free(&res);
		return rc;
	case S_COMMIT_D:
		return commit_keys(w->db, "D", 100, 50, 200, 4, 0);
	case S_CHECKPOINT:
		return lb_checkpoint(w->db, w->ck, &w->at);
	case S_PRUNE:
		return lb_prune(w->db, w->at);
	case S_COMMIT_E:
		return commit_keys(w->db, "E", 300, 30, 700, 5, 0);
	case S_REPLAY:
		rc = lb_replay(w->db, w->rp, 0, w->ck, &res);
		lb_result_free(&res);
		return rc;
	}
	return LB_EINVAL;
}

static int wl_reopen(struct wl *w)
{
	lb_options o;
	lb_options_init(&o);
	o.segment_size = 4096;
	return lb_open(w->dir, &o, &w->db);
}

static void wl_init(struct wl *w)
{
	char *tmp = work_dir();
	memset(w, 0, sizeof *w);
	w->root = realpath(tmp, NULL);
	assert_non_null(w->root);
	th_rmrf(tmp);
	free(tmp);
	w->dir = th_path(w->root, "db");
	w->ck = th_path(w->root, "ck");
	w->rp = th_path(w->root, "rp");
}

static void wl_reset(struct wl *w)
{
	if (w->db)
		lb_close(w->db);
	w->db = NULL;
	th_rmrf(w->root);
	assert_int_equal(mkdir(w->root, 0755), 0);
}

static void wl_free(struct wl *w)
{
	wl_reset(w);
	th_rmrf(w->root);
	free(w->root);
	free(w->dir);
	free(w->ck);
	free(w->rp);
}

/* The reference: digests after each step, without faults. */
struct ref {
	uint64_t d[S_N];
	long calls;
};

static void reference(struct wl *w, struct ref *ref)
{
	wl_reset(w);
	shim.dir(w->root);
	shim.arm(0, 0, 0); /* count only */
	for (int s = 0; s < S_N; s++) {
		te_rc(0, step(w, s));
		te_rc(0, digest(w->db, &ref->d[s]));
	}
	ref->calls = shim.calls();
	wl_reset(w);
}

/* See the comment where it is used. 0 makes a handle that cannot read
 * after a failure a test failure. */
#define TOLERATE_PANIC 0

/* Is db's LMDB environment in its failed state (MDB_PANIC), which the
 * engine must get out of by itself? Only between calls of one thread. */
static int env_failed(lb_db *db)
{
	MDB_txn *txn;
	if (!db->env)
		return 1;
	int mrc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn);
	if (mrc == 0)
		mdb_txn_abort(txn);
	return mrc == MDB_PANIC;
}

struct stats {
	unsigned long runs, failed_ops, by_step[S_N], swallowed;
	unsigned long panics, panic_runs, reopened;
	char swallowed_at[512];
};

#define WCK(cond, ...)                                                         \
	do {                                                                   \
		if (!(cond)) {                                                 \
			print_error("call %ld (%s%s) in step '%s': ", n,       \
			            err == ENOSPC ? "ENOSPC" : "EIO",          \
			            sticky ? ", sticky" : "", step_name[s]);   \
			print_error(__VA_ARGS__);                              \
			print_error("\n");                                     \
			fail_msg("%s", #cond);                                 \
		}                                                              \
	} while (0)

/* One run with call n failing. Returns 0 if the fault never fired (n is
 * past the workload's last call). */
static int fault_run(struct wl *w, const struct ref *ref, long n, int err,
                     int sticky, struct stats *st)
{
	int want = err == ENOSPC ? LB_EFULL : LB_EIO, hit = 0, panicked = 0;
	wl_reset(w);
	shim.dir(w->root);
	shim.arm(n, err, sticky);
	for (int s = 0; s < S_N; s++) {
		long before = shim.fired();
		int rc = step(w, s);
		int fired = shim.fired() != before;
		uint64_t d;
		if (rc == 0) {
			if (fired && !hit) {
				/* a failed call the operation did not report */
				st->swallowed++;
				if (strlen(st->swallowed_at) < 400)
					snprintf(
					        st->swallowed_at +
					                strlen(st->swallowed_at),
					        sizeof st->swallowed_at -
					                strlen(st->swallowed_at),
					        " %s#%ld", step_name[s], n);
				hit = 1;
				shim.disarm();
				/* then at least the operation is whole */
				rc = digest(w->db, &d);
				WCK(rc == 0 && d == ref->d[s],
				    "succeeded over a failed call, but the "
				    "state is not the expected one");
			}
			continue;
		}
		WCK(fired && !hit, "%s failed without a fault: %s",
		    lb_strerror(rc), lb_errmsg());
		WCK(rc == want, "returned %s, not %s: %s", lb_strerror(rc),
		    lb_strerror(want), lb_errmsg());
		WCK(lb_errmsg()[0] != 0, "no lb_errmsg() detail");
		hit = 1;
		st->failed_ops++;
		st->by_step[s]++;
		/* nothing visible */
		if (s == S_OPEN) {
			WCK(w->db == NULL, "failed open returned a handle");
		} else {
			/* LMDB marks its environment failed (MDB_PANIC)
			 * when a meta page write fails; the engine reopens
			 * it by itself, so the same handle reads on */
			if (env_failed(w->db)) {
				st->panics++;
				panicked = 1;
			}
			if (digest(w->db, &d) != 0) {
				WCK(TOLERATE_PANIC,
				    "reading after the failure: %s",
				    lb_errmsg());
				st->reopened++;
				lb_close(w->db);
				w->db = NULL;
				rc = wl_reopen(w);
				WCK(rc == 0, "reopening after the failure: %s",
				    lb_errmsg());
			}
			WCK(!env_failed(w->db),
			    "LMDB's environment is still failed after a "
			    "read");
		}
		if (s != S_OPEN) {
			rc = digest(w->db, &d);
			WCK(rc == 0, "reading after the failure: %s: %s",
			    lb_strerror(rc), lb_errmsg());
			WCK(d == ref->d[s - 1],
			    "the failed operation changed the database");
		}
		if (sticky && s != S_OPEN) {
			/* the disk is still full: the same again fails the
			 * same way */
			rc = step(w, s);
			WCK(rc == want, "retry while full: %s: %s",
			    lb_strerror(rc), lb_errmsg());
			if (env_failed(w->db)) {
				st->panics++;
				panicked = 1;
			}
			/* the reopening writes nothing: it works on the
			 * full disk */
			if (digest(w->db, &d) != 0) {
				WCK(TOLERATE_PANIC, "reading: %s", lb_errmsg());
				st->reopened++;
				lb_close(w->db);
				w->db = NULL;
				rc = wl_reopen(w);
				WCK(rc == 0, "reopening: %s", lb_errmsg());
			}
			rc = digest(w->db, &d);
			WCK(rc == 0 && d == ref->d[s - 1],
			    "the failed retry changed the database");
		}
		shim.disarm();
		if (s == S_CHECKPOINT)
			WCK(!opens(w->ck), "failed checkpoint left a database");
		if (s == S_REPLAY)
			WCK(!opens(w->rp), "failed replay left a database");
		/* the fault is gone: the same process goes on */
		rc = step(w, s);
		WCK(rc == 0, "retry after the fault: %s: %s", lb_strerror(rc),
		    lb_errmsg());
		rc = digest(w->db, &d);
		WCK(rc == 0 && d == ref->d[s], "state after the retry");
	}
	if (!hit) {
		shim.disarm();
		wl_reset(w);
		return 0;
	}
	st->runs++;
	st->panic_runs += panicked;
	{
		int s = S_N - 1;
		uint64_t d;
		lb_verify_report rep;
		int rc = lb_verify(w->db, LB_VERIFY_REPLAY, &rep);
		WCK(rc == 0, "verify at the end: %s (%s)", lb_errmsg(),
		    rep.detail);
		WCK(digest(w->db, &d) == 0 && d == ref->d[S_N - 1],
		    "end state differs from the run without faults");
		lb_close(w->db);
		w->db = NULL;
		rc = fresh_check(w->dir, ref->d[S_N - 1]);
		WCK(rc == 0, "a fresh process disagrees (code %d)", rc);
		WCK(opens(w->rp), "the replay is not there");
	}
	return 1;
}

static void fault_matrix(int err, int sticky, const char *what)
{
	struct wl w;
	struct ref ref;
	struct stats st;
	long n;
	if (!shim_load())
		fail_msg("the fault shim is not loaded (build/libfault.so)");
	memset(&st, 0, sizeof st);
	wl_init(&w);
	reference(&w, &ref);
	for (n = 1; n < 100000; n++)
		if (!fault_run(&w, &ref, n, err, sticky, &st))
			break;
	printf("fault injection, %s: %ld calls in the workload, %ld fault "
	       "points tried, %lu operations failed cleanly",
	       what, ref.calls, n - 1, st.failed_ops);
	for (int s = 0; s < S_N; s++)
		if (st.by_step[s])
			printf("%s %s: %lu", s ? "," : " (", step_name[s],
			       st.by_step[s]);
	printf(")\n");
	if (st.panics)
		printf("  at %lu fault points the failure left LMDB's "
		       "environment failed (MDB_PANIC, %lu times in all); the "
		       "engine reopened it and the same handle went on%s\n",
		       st.panic_runs, st.panics,
		       st.reopened ? "" : " every time");
	if (st.reopened)
		printf("  %lu times the handle could not read after the "
		       "failure and was closed and reopened\n",
		       st.reopened);
	if (st.swallowed)
		printf("  %lu failed calls were not reported by the "
		       "operation (it succeeded):%s\n",
		       st.swallowed, st.swallowed_at);
	assert_true(n - 1 >= ref.calls);
	wl_free(&w);
}

static void test_engine_fault__every_write_fails_once_enospc(void **state)
{
	(void)state;
	fault_matrix(ENOSPC, 0, "ENOSPC once");
}

static void test_engine_fault__every_write_fails_once_eio(void **state)
{
	(void)state;
	fault_matrix(EIO, 0, "EIO once");
}

static void test_engine_fault__disk_stays_full(void **state)
{
	(void)state;
	fault_matrix(ENOSPC, 1, "ENOSPC from call N until freed");
}

/* ---- LMDB's failed environment, in detail -------------------------------
 */

/* A database in a fresh work directory with table t holding 20 keys; the
 * shim counts the calls on its files only. */
static lb_db *panic_db(struct wl *w)
{
	lb_options o;
	if (!shim_load())
		fail_msg("the fault shim is not loaded (build/libfault.so)");
	wl_init(w);
	wl_reset(w);
	shim.dir(w->root);
	shim.disarm();
	lb_options_init(&o);
	o.flags = LB_CREATE;
	te_rc(0, lb_open(w->dir, &o, &w->db));
	te_rc(0, lb_table_create(w->db, "t", NULL));
	te_rc(0, commit_keys(w->db, "A", 0, 20, 100, 1, 0));
	return w->db;
}

/* Commit one batch with its call n failing, n = 1, 2, ..., until the meta
 * page write fails, which leaves LMDB's environment failed. Each failed
 * commit must return the code of err. The shim stays armed (a
 * sticky fault goes on failing); returns n. */
static long fail_meta_write(lb_db *db, int err, int sticky, unsigned salt)
{
	int want = err == ENOSPC ? LB_EFULL : LB_EIO;
	for (long n = 1; n < 1000; n++) {
		shim.arm(n, err, sticky);
		int rc = commit_keys(db, "X", 1000, 20, 100, salt, 0);
		if (rc == 0)
			break; /* n is past the commit's calls */
		if (rc != want)
			fail_msg(
			        "commit with call %ld failing: %s (%s), not %s",
			        n, lb_strerror(rc), lb_errmsg(),
			        lb_strerror(want));
		/* After a failed meta page write, and only then, LMDB
		 * writes the old one back: one call more. (Tests with
		 * threads cannot look at db->env, which a reader may be
		 * reopening.) */
		if (shim.calls() > n)
			return n;
		shim.disarm();
	}
	shim.disarm();
	fail_msg("no failed call of a commit left LMDB's environment failed");
	return 0;
}

static void put_one(lb_db *db, const char *table, const char *key,
                    const char *val)
{
	lb_batch *b;
	te_rc(0, lb_batch_begin(db, "one", &b));
	te_rc(0, lb_put(b, table, key, strlen(key), val, strlen(val)));
	te_rc(0, lb_batch_commit(b, NULL));
}

static void assert_value(lb_db *db, const char *table, const char *key,
                         const char *val)
{
	void *v = NULL;
	size_t vl = 0;
	te_rc(0, lb_get(db, table, key, strlen(key), &v, &vl));
	assert_int_equal(vl, strlen(val));
	assert_memory_equal(v, val, vl);
	free(v);
}

static void test_engine_fault__panic_same_handle_goes_on(void **state)
{
	struct wl w;
	lb_result res;
	lb_verify_report rep;
	uint64_t last, d0, d1;
	void *v = NULL;
	size_t vl;
	(void)state;
	lb_db *db = panic_db(&w);
	/* a table created after the open: the reopened environment must
	 * find it too */
	te_rc(0, lb_table_create(db, "u", NULL));
	put_one(db, "u", "k", "v1");
	last = te_last(db);
	te_rc(0, digest(db, &d0));

	/* a read right after the failure: nothing of the batch is visible */
	fail_meta_write(db, EIO, 0, 2);
	assert_true(env_failed(db));
	shim.disarm();
	assert_value(db, "u", "k", "v1");
	assert_false(env_failed(db));
	assert_int_equal(te_last(db), last);
	te_rc(LB_ENOTFOUND, lb_get(db, "t", "key01000", 8, &v, &vl));
	te_rc(0, digest(db, &d1));
	assert_true(d1 == d0);

	/* a batch right after the failure, with no read between: it
	 * follows the last committed batch */
	fail_meta_write(db, EIO, 0, 3);
	assert_true(env_failed(db));
	shim.disarm();
	te_rc(0, commit_keys(db, "after", 1000, 20, 100, 3, 0));
	assert_int_equal(te_last(db), last + 1);
	put_one(db, "u", "k", "v2");
	assert_value(db, "u", "k", "v2");

	/* a rollback right after the failure */
	fail_meta_write(db, EIO, 0, 4);
	assert_true(env_failed(db));
	shim.disarm();
	te_rc(0, lb_rollback(db, last + 1, 0, &res));
	lb_result_free(&res);
	assert_int_equal(te_last(db), last + 3);
	te_rc(LB_ENOTFOUND, lb_get(db, "t", "key01000", 8, &v, &vl));

	/* the disk stays full: the environment is reopened all the same
	 * (that writes nothing), reads go on, writes fail as before, and go
	 * on once the space is back */
	last = te_last(db);
	fail_meta_write(db, ENOSPC, 1, 5);
	assert_true(env_failed(db));
	te_rc(0, digest(db, &d0));
	assert_false(env_failed(db));
	assert_int_equal(te_last(db), last);
	te_rc(LB_EFULL, commit_keys(db, "full", 2000, 20, 100, 6, 0));
	te_rc(LB_EFULL, lb_table_create(db, "w", NULL));
	te_rc(0, digest(db, &d1));
	assert_true(d1 == d0);
	shim.disarm();
	te_rc(0, commit_keys(db, "freed", 2000, 20, 100, 6, 0));
	te_rc(0, lb_table_create(db, "w", NULL));
	put_one(db, "w", "k", "w1");
	assert_int_equal(te_last(db), last + 3);

	/* the log is whole: verify with replay, a fresh process agrees */
	te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
	assert_int_equal(rep.batches, last + 3);
	te_rc(0, digest(db, &d0));
	lb_close(db);
	w.db = NULL;
	assert_int_equal(fresh_check(w.dir, d0), 0);
	wl_free(&w);
}

/* A thread holding a snapshot begun before the failure: it reads in the
 * snapshot when told to, then closes it when told to, 50 ms later. (The
 * thread that writes holds no snapshot: a batch begun under one's own
 * snapshot waits for itself, see docs/API.md.) */
struct holder {
	lb_db *db;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stage;    /* 1 open, 2 read, 3 read done, 4 close */
	int rc;       /* of the snapshot's open, then of its reads */
	unsigned len; /* of key00003's value in the snapshot */
	unsigned n;   /* keys of t in the snapshot */
};

static void holder_wait(struct holder *h, int stage)
{
	pthread_mutex_lock(&h->mu);
	while (h->stage < stage)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

static void holder_set(struct holder *h, int stage)
{
	pthread_mutex_lock(&h->mu);
	h->stage = stage;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

static void *holder_main(void *arg)
{
	struct holder *h = arg;
	lb_snapshot *s = NULL;
	lb_cursor *c = NULL;
	const void *k, *v;
	size_t kl, vl;
	const struct timespec pause = {0, 50 * 1000000L};
	int rc = lb_snapshot_open(h->db, &s);
	h->rc = rc;
	holder_set(h, 1);
	if (rc != 0)
		return NULL;
	holder_wait(h, 2);
	/* the failed environment still serves what this snapshot saw */
	if ((rc = lb_snapshot_get(s, "t", "key00003", 8, &v, &vl)) == 0)
		h->len = (unsigned)vl;
	if (rc == 0 && (rc = lb_cursor_open(s, "t", &c)) == 0) {
		while ((rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0)
			h->n++;
		if (rc == LB_ENOTFOUND)
			rc = 0;
		lb_cursor_close(c);
	}
	h->rc = rc;
	holder_set(h, 3);
	holder_wait(h, 4);
	nanosleep(&pause, NULL);
	lb_snapshot_close(s);
	return NULL;
}

static void test_engine_fault__panic_waits_for_old_snapshots(void **state)
{
	struct wl w;
	struct holder h;
	pthread_t th;
	uint64_t last, id;
	void *v = NULL;
	size_t vl;
	(void)state;
	lb_db *db = panic_db(&w);
	last = te_last(db);

	memset(&h, 0, sizeof h);
	h.db = db;
	pthread_mutex_init(&h.mu, NULL);
	pthread_cond_init(&h.cv, NULL);
	assert_int_equal(pthread_create(&th, NULL, holder_main, &h), 0);
	holder_wait(&h, 1);
	te_rc(0, h.rc);
	fail_meta_write(db, EIO, 0, 2);
	shim.disarm();
	assert_true(env_failed(db)); /* the holder only holds its snapshot */
	/* while the snapshot is open the environment cannot be reopened:
	 * reads and writes fail (after a bounded wait), saying why */
	te_rc(LB_EIO, lb_last_batch(db, &id));
	assert_non_null(strstr(lb_errmsg(), "snapshot"));
	te_rc(LB_EIO, lb_get(db, "t", "key00003", 8, &v, &vl));
	te_rc(LB_EIO, commit_keys(db, "blocked", 3000, 5, 10, 0, 0));
	assert_true(env_failed(db));
	/* the snapshot itself still reads */
	holder_set(&h, 2);
	holder_wait(&h, 3);
	te_rc(0, h.rc);
	assert_int_equal(h.len, 100);
	assert_int_equal(h.n, 20);
	/* it closes 50 ms from now, well within the wait of this batch,
	 * which then goes on on the same handle */
	holder_set(&h, 4);
	te_rc(0, commit_keys(db, "B", 3000, 5, 10, 0, 0));
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_false(env_failed(db));
	assert_int_equal(te_last(db), last + 1);
	pthread_mutex_destroy(&h.mu);
	pthread_cond_destroy(&h.cv);
	{
		lb_verify_report rep;
		te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
		assert_int_equal(rep.batches, last + 1);
	}
	wl_free(&w);
}

/* Readers that go on through failures: every read either succeeds or
 * fails with LB_EIO (while the environment is failed and being reopened),
 * and reads the value it must. */
struct reader {
	lb_db *db;
	atomic_int *stop;
	atomic_ulong ok; /* read by the main thread while it runs */
	unsigned long eio, bad;
	int badrc;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	while (!atomic_load(r->stop)) {
		void *v = NULL;
		const void *sv;
		size_t vl = 0;
		lb_snapshot *s = NULL;
		int rc = lb_get(r->db, "t", "key00003", 8, &v, &vl);
		if (rc == 0 && vl != 100)
			rc = LB_ECORRUPT;
		free(v);
		if (rc == 0 && (rc = lb_snapshot_open(r->db, &s)) == 0) {
			rc = lb_snapshot_get(s, "t", "key00007", 8, &sv, &vl);
			if (rc == 0 && vl != 100)
				rc = LB_ECORRUPT;
			lb_snapshot_close(s);
		}
		if (rc == 0) {
			r->ok++;
		} else if (rc == LB_EIO) {
			r->eio++;
		} else {
			r->bad++;
			r->badrc = rc;
		}
	}
	return NULL;
}

static void test_engine_fault__panic_under_readers(void **state)
{
	enum { NREADERS = 3, ROUNDS = 5 };
	struct wl w;
	struct reader r[NREADERS];
	pthread_t th[NREADERS];
	atomic_int stop = 0;
	unsigned long ok = 0, eio = 0;
	uint64_t last;
	(void)state;
	lb_db *db = panic_db(&w);
	last = te_last(db);
	memset(r, 0, sizeof r);
	for (int i = 0; i < NREADERS; i++) {
		r[i].db = db;
		r[i].stop = &stop;
		assert_int_equal(
		        pthread_create(&th[i], NULL, reader_main, &r[i]), 0);
	}
	for (int round = 0; round < ROUNDS; round++) {
		fail_meta_write(db, EIO, 0, 10 + (unsigned)round);
		shim.disarm();
		/* the readers' short reads leave room for the reopening */
		te_rc(0,
		      commit_keys(db, "ok", 5000, 5, 10, (unsigned)round, 0));
	}
	/* on a loaded machine the readers may not have run yet: let them
	 * go on (a bounded while) until one read succeeded after the last
	 * reopening */
	for (int waited = 0; waited < 500; waited++) {
		unsigned long n = 0;
		for (int i = 0; i < NREADERS; i++)
			n += atomic_load(&r[i].ok);
		if (n > 0)
			break;
		struct timespec ms10 = {0, 10000000};
		nanosleep(&ms10, NULL);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < NREADERS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		if (r[i].bad)
			fail_msg(
			        "reader %d: %lu reads failed, the last with %s",
			        i, r[i].bad, lb_strerror(r[i].badrc));
		ok += r[i].ok;
		eio += r[i].eio;
	}
	assert_true(ok > 0);
	assert_int_equal(te_last(db), last + ROUNDS);
	{
		lb_verify_report rep;
		te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
	}
	printf("%d failed environments reopened under %d readers: %lu reads "
	       "succeeded, %lu met the failure (LB_EIO)\n",
	       ROUNDS, NREADERS, ok, eio);
	wl_free(&w);
}

/* ---- a real file system that fills up ------------------------------------
 */

static void test_engine_fault__disk_full_tmpfs(void **state)
{
	char *tmp = th_tmpdir();
	char *mnt = th_path(tmp, "small");
	char *dir = th_path(mnt, "db"), *ck = th_path(mnt, "ck");
	lb_db *db;
	lb_options o;
	uint64_t good, d;
	unsigned i, full = 0, ok = 0, eio = 0;
	int rb_rc = 0, ck_rc = 0;
	int rc, e;
	(void)state;

	assert_int_equal(mkdir(mnt, 0755), 0);
	if ((e = mount_small_tmpfs(mnt, "8m")) != 0) {
		th_rmrf(tmp);
		fail_msg("cannot mount a tmpfs here (%s): this test needs root "
		         "or user namespaces to fill a real file system",
		         strerror(e));
	}
	lb_options_init(&o);
	o.flags = LB_CREATE;
	te_rc(0, lb_open(dir, &o, &db));
	te_rc(0, lb_table_create(db, "t", NULL));
	te_rc(0, digest(db, &good));
	/* 400 KB batches of incompressible data until the disk is full,
	 * then a few more attempts */
	for (i = 0; i < 200 && full < 3; i++) {
		char label[32];
		snprintf(label, sizeof label, "fill %u", i);
		rc = commit_keys(db, label, i * 100, 100, 4000, i, 0);
		if (rc == 0) {
			ok++;
			te_rc(0, digest(db, &good));
			continue;
		}
		/* LMDB reports a write cut short by the full disk as EIO;
		 * counted and reported, see docs/RELIABILITY.md */
		if (rc == LB_EIO && TOLERATE_SHORT_WRITE_EIO)
			eio++;
		else if (rc != LB_EFULL)
			fail_msg("commit %u on a full disk: %s (%s), not "
			         "LB_EFULL",
			         i, lb_strerror(rc), lb_errmsg());
		full++;
		te_rc(0, digest(db, &d));
		assert_true(d == good);
	}
	assert_true(full == 3 && ok >= 3);
	/* a rollback needs space too; a checkpoint on the full disk fails
	 * and leaves no database behind */
	{
		lb_result res;
		uint64_t last;
		te_rc(0, lb_last_batch(db, &last));
		rc = rb_rc = lb_rollback(db, last, 0, &res);
		lb_result_free(&res);
		assert_true(rc == 0 || rc == LB_EFULL ||
		            (rc == LB_EIO && TOLERATE_SHORT_WRITE_EIO));
		if (rc == 0)
			te_rc(0, digest(db, &good));
		rc = ck_rc = lb_checkpoint(db, ck, NULL);
		assert_true(rc == 0 || rc == LB_EFULL ||
		            (rc == LB_EIO && TOLERATE_SHORT_WRITE_EIO));
		if (rc < 0)
			assert_false(opens(ck));
		te_rc(0, digest(db, &d));
		assert_true(d == good);
		th_rmrf(ck);
	}
	/* space comes back: the same process goes on */
	assert_int_equal(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT, "size=256m"),
	                 0);
	for (i = 0; i < 5; i++) {
		char label[32];
		snprintf(label, sizeof label, "after %u", i);
		te_rc(0,
		      commit_keys(db, label, 50000 + i * 100, 100, 4000, i, 0));
	}
	te_rc(0, lb_checkpoint(db, ck, NULL));
	{
		lb_verify_report rep;
		te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
	}
	te_rc(0, digest(db, &good));
	lb_close(db);
	assert_int_equal(fresh_check(dir, good), 0);
	umount2(mnt, MNT_DETACH);
	printf("tmpfs of 8 MiB: %u batches committed, then %u commits "
	       "refused (%u of them with LB_EIO, a short write, instead of "
	       "LB_EFULL); on the full disk a rollback gave %s and a "
	       "checkpoint %s; all recovered after the space came back\n",
	       ok, full, eio, rb_rc ? lb_strerror(rb_rc) : "success",
	       ck_rc ? lb_strerror(ck_rc) : "success");
	th_rmrf(tmp);
	free(tmp);
	free(mnt);
	free(dir);
	free(ck);
}

/* ---- map growth ----------------------------------------------------------
 */

static void test_engine_fault__map_growth_tiny_map(void **state)
{
	static const uint64_t maps[] = {64u << 10, 256u << 10, 1u << 20};
	(void)state;
	for (size_t m = 0; m < sizeof maps / sizeof maps[0]; m++) {
		char *root = th_tmpdir();
		char *dir = th_path(root, "db"), *rp = th_path(root, "rp");
		lb_options o;
		lb_db *db;
		lb_result res;
		lb_verify_report rep;
		uint64_t d0, d1, id;

		lb_options_init(&o);
		o.flags = LB_CREATE | LB_NOSYNC;
		o.map_size = maps[m];
		o.compression = 0; /* keep the log as large as the data */
		db = te_open_opts(dir, &o);
		te_rc(0, lb_table_create(db, "t", NULL));
		te_rc(0, commit_keys(db, "small", 0, 10, 10, 0, 0));
		te_rc(0, digest(db, &d0));
		/* 8 MiB in one batch: 128 times the smallest map */
		te_rc(0, commit_keys(db, "huge", 1000, 1024, 8192, 9, 0));
		id = te_last(db);
		te_rc(0, digest(db, &d1));
		te_rc(0, lb_rollback(db, id, 0, &res));
		lb_result_free(&res);
		te_rc(0, digest(db, &d1));
		/* undo the undo: the huge batch is back */
		te_rc(0, lb_rollback(db, id + 1, 0, &res));
		lb_result_free(&res);
		te_rc(0, lb_replay(db, rp, 0, NULL, &res));
		lb_result_free(&res);
		te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
		assert_int_equal(rep.batches, id + 2);
		te_rc(0, digest(db, &d1));
		lb_close(db);
		/* reopen with the same small map option */
		o.flags = LB_NOSYNC;
		db = te_open_opts(dir, &o);
		te_rc(0, digest(db, &d0));
		assert_true(d0 == d1);
		lb_close(db);
		assert_int_equal(fresh_check(rp, d1), 0);
		th_rmrf(root);
		free(root);
		free(dir);
		free(rp);
	}
}

/* The address space runs out while the map grows (mmap of the data file
 * fails with ENOMEM, as under a low RLIMIT_AS): the call that grew answers
 * LB_ENOMEM, nothing committed is lost, and every later call works again
 * (the environment is reopened at the size it had) instead of crashing. */
static void test_engine_fault__map_growth_out_of_address_space(void **state)
{
	(void)state;
	char *dir = th_tmpdir();
	lb_options o;
	lb_db *db;
	uint64_t d0, d1;
	int failed = 0;
	lb_options_init(&o);
	o.flags = LB_CREATE | LB_NOSYNC;
	o.map_size = 256u << 10;
	o.compression = 0;
	db = te_open_opts(dir, &o);
	te_rc(0, lb_table_create(db, "t", NULL));
	te_rc(0, commit_keys(db, "small", 0, 10, 10, 0, 0));
	te_rc(0, digest(db, &d0));
	shim.dir(dir);
	shim.calls_only("mmap");
	for (int round = 0; round < 3; round++) {
		/* every remap of the data file fails from now on */
		shim.arm(1, ENOMEM, 1);
		int rc = commit_keys(db, "big", 1000 + 100 * round, 100, 4096,
		                     1, 0);
		assert_true(rc == LB_ENOMEM || rc == LB_EFULL);
		failed += shim.fired() > 0;
		shim.disarm();
		/* the handle goes on: reads and the next batch work */
		te_rc(0, digest(db, &d1));
		assert_true(d0 == d1);
		te_rc(0, commit_keys(db, "after", 10 + round, 1, 10, 2, 0));
		te_rc(0, digest(db, &d0));
	}
	shim.calls_only(NULL);
	shim.dir(NULL);
	assert_true(failed > 0);
	lb_verify_report rep;
	te_rc(0, lb_verify(db, LB_VERIFY_REPLAY, &rep));
	lb_close(db);
	th_rmrf(dir);
	free(dir);
}

int main(int argc, char **argv)
{
	(void)argc;
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(
	                test_engine_fault__every_write_fails_once_enospc),
	        cmocka_unit_test(test_engine_fault__every_write_fails_once_eio),
	        cmocka_unit_test(test_engine_fault__disk_stays_full),
	        cmocka_unit_test(test_engine_fault__panic_same_handle_goes_on),
	        cmocka_unit_test(
	                test_engine_fault__panic_waits_for_old_snapshots),
	        cmocka_unit_test(test_engine_fault__panic_under_readers),
	        cmocka_unit_test(test_engine_fault__disk_full_tmpfs),
	        cmocka_unit_test(test_engine_fault__map_growth_tiny_map),
	        cmocka_unit_test(
	                test_engine_fault__map_growth_out_of_address_space),
	};
	if (!shim_load()) {
		reexec_with_shim(argv);
		printf("the fault shim libfault.so is not loaded: the fault "
		       "injection tests fail (build it with make, or set "
		       "LB_FAULT_SHIM)\n");
	}
	int rc = cmocka_run_group_tests_name("engine_fault", tests, NULL, NULL);
	if (work_parent) {
		umount2(work_mnt, MNT_DETACH);
		th_rmrf(work_parent);
		free(work_parent);
		free(work_mnt);
	}
	return rc;
}
