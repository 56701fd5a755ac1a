/* SPDX-License-Identifier: MIT */
/*
 * contract.c: include/logbook.h is the contract, and the library keeps it.
 *
 * The header is read at run time (LB_HEADER_PATH, which the Makefile sets
 * to the source tree's include/logbook.h). For every LB_API function its
 * doc comment must document each parameter (@param), the threads rule
 * (@par Threads:) and, for a function that returns an int, the codes it
 * returns: the #LB_E... names of its @return paragraph.
 *
 * Then a broad workload calls every int-returning public function through
 * C() or E(), which record each (function, code) pair: bad arguments of
 * every kind, missing tables and batches, a read-only handle, a batch used
 * from another thread, validation failures, conflicts, pruned batches, a
 * full reader table, damaged files (made with LMDB directly, in a child
 * process), and, under the fault shim (tests/shim/fault.c: this program
 * re-executes itself under it), a full disk, I/O errors, a failed meta page
 * write that leaves the environment to be reopened while a snapshot is
 * open, and an address space that runs out while the map grows. E() also
 * asserts the code the call must give.
 *
 * The last test fails for every recorded pair whose code the function's
 * @return paragraph does not list, and for every documented function the
 * workload never called; it prints which listed codes the run provoked.
 *
 * Listed codes this run does not provoke (each is listed because a code
 * path returns it; a test here would need another process, minutes, or
 * pages damaged inside a live snapshot):
 *  - LB_EFULL from reads and lb_batch_begin (LMDB has no handle left for
 *    the tables another process created), and from ops (the map cannot
 *    grow while other threads hold snapshots for 10 s; the journal file
 *    of a batch over 8 MiB fills the disk);
 *  - LB_EBUSY from writes (another process grew the map, or created or
 *    removed tables, while a batch began or grew);
 *  - LB_ETOOBIG for a batch larger than one LMDB transaction holds
 *    (commit, rollbacks);
 *  - LB_ECORRUPT from snapshot and cursor reads and from ops and commits
 *    (pages damaged under a live transaction);
 *  - LB_EIO from ops (the journal file fails), LB_ENOMEM from
 *    lb_cursor_open, lb_delete and lb_batch_commit;
 *  - lb_batch_get's codes of a batch that failed earlier (after such a
 *    failure the batch may only be aborted);
 *  - LB_EVALIDATION from lb_rollback_to (its net state held the foreign
 *    keys once; the check is there all the same).
 */
#define _GNU_SOURCE
#include "_common.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef LB_HEADER_PATH
#define LB_HEADER_PATH "include/logbook.h"
#endif

/* ---- what the header promises ---------------------------------------------
 */

enum { NCODES = 14 }; /* LB_OK (0) .. LB_EEXIST (-13) */
static const char *const code_name[NCODES] = {
        "LB_OK",        "LB_ENOTFOUND", "LB_EINVAL",  "LB_EVALIDATION",
        "LB_ECONFLICT", "LB_ECORRUPT",  "LB_EPRUNED", "LB_EFULL",
        "LB_EBUSY",     "LB_ENOMEM",    "LB_EIO",     "LB_EVERSION",
        "LB_ETOOBIG",   "LB_EEXIST"};

enum { K_VOID, K_INT, K_OTHER };

typedef struct fn_doc {
	char name[48];
	int kind;
	unsigned listed;     /* bit -rc: codes of the @return paragraph */
	unsigned seen;       /* bit -rc: codes the run provoked */
	unsigned long calls; /* recorded calls */
	char problems[512];  /* what the doc comment lacks */
} fn_doc;

#define MAX_FNS 96
static fn_doc fns[MAX_FNS];
static size_t nfns;
static int header_read;

static fn_doc *fn_find(const char *name)
{
	for (size_t i = 0; i < nfns; i++)
		if (strcmp(fns[i].name, name) == 0)
			return &fns[i];
	return NULL;
}

static void problem(fn_doc *f, const char *fmt, ...)
{
	size_t n = strlen(f->problems);
	va_list ap;
	if (n + 4 >= sizeof f->problems)
		return;
	if (n) {
		f->problems[n++] = ';';
		f->problems[n++] = ' ';
	}
	va_start(ap, fmt);
	vsnprintf(f->problems + n, sizeof f->problems - n, fmt, ap);
	va_end(ap);
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;
	if (!fp)
		return NULL;
	if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 ||
	    fseek(fp, 0, SEEK_SET) != 0 || !(buf = malloc((size_t)n + 1))) {
		fclose(fp);
		return NULL;
	}
	if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		fclose(fp);
		return NULL;
	}
	buf[n] = 0;
	fclose(fp);
	return buf;
}

static int is_ident(int c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* The code named at p (LB_E...), as a bit, or 0 with *unknown set when it
 * is no code of the header. */
static unsigned code_bit(const char *p, size_t len, int *unknown)
{
	for (int i = 1; i < NCODES; i++)
		if (strlen(code_name[i]) == len &&
		    strncmp(p, code_name[i], len) == 0)
			return 1u << i;
	*unknown = 1;
	return 0;
}

static int inline_cmd(const char *p, const char *eol)
{
	static const char *const inl[] = {"p", "ref", "c", "a", "b", "e"};
	size_t n = 0;
	while (p + n < eol && is_ident(p[n]))
		n++;
	for (size_t i = 0; i < sizeof inl / sizeof inl[0]; i++)
		if (strlen(inl[i]) == n && strncmp(p, inl[i], n) == 0)
			return 1;
	return 0;
}

/* One doc comment (between "/ **" and "* /"), for the function f whose
 * parameters are params[0..nparams). */
static void parse_doc(fn_doc *f, const char *doc, size_t len, char params[][48],
                      int nparams)
{
	char documented[16][48];
	int ndoc = 0, in_return = 0, has_return = 0, threads = 0;
	const char *p = doc, *end = doc + len;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		const char *s = p;
		while (s < eol &&
		       (*s == ' ' || *s == '\t' || *s == '*' || *s == '/'))
			s++;
		/* a block command starts a new paragraph; @p, @ref, @c are
		 * inline */
		if (s < eol && *s == '@' && !inline_cmd(s + 1, eol)) {
			in_return = strncmp(s, "@return", 7) == 0;
			has_return |= in_return;
			if (strncmp(s, "@par Threads:", 13) == 0)
				threads = 1;
			if (strncmp(s, "@param", 6) == 0) {
				const char *q = s + 6;
				if (*q == '[')
					while (q < eol && *q != ']')
						q++;
				if (q < eol && *q == ']')
					q++;
				while (q < eol && *q == ' ')
					q++;
				/* one name, or several joined by commas */
				for (;;) {
					const char *n0 = q;
					while (q < eol && is_ident(*q))
						q++;
					if (q > n0 && ndoc < 16) {
						size_t nl = (size_t)(q - n0);
						if (nl > 47)
							nl = 47;
						memcpy(documented[ndoc], n0,
						       nl);
						documented[ndoc++][nl] = 0;
					}
					if (q < eol && *q == ',') {
						q++;
						continue;
					}
					break;
				}
			}
		}
		if (in_return) {
			for (const char *q = s; q + 4 < eol; q++) {
				if (strncmp(q, "LB_E", 4) != 0 ||
				    (q > s && is_ident(q[-1])))
					continue;
				const char *e = q;
				int unknown = 0;
				while (e < eol && is_ident(*e))
					e++;
				f->listed |=
				        code_bit(q, (size_t)(e - q), &unknown);
				if (unknown)
					problem(f,
					        "@return names %.*s, no code",
					        (int)(e - q), q);
				q = e;
			}
		}
		p = eol + 1;
	}
	for (int i = 0; i < nparams; i++) {
		int found = 0;
		for (int j = 0; j < ndoc && !found; j++)
			found = strcmp(params[i], documented[j]) == 0;
		if (!found)
			problem(f, "no @param for %s", params[i]);
	}
	if (!threads)
		problem(f, "no \"@par Threads:\"");
	if (f->kind == K_INT && (!has_return || !f->listed))
		problem(f, "no @return paragraph naming its codes");
	if (f->kind != K_INT && f->listed)
		problem(f, "lists codes but returns no int");
}

static void parse_header(void)
{
	char *text = slurp(LB_HEADER_PATH);
	if (!text)
		fail_msg("cannot read the header %s: %s", LB_HEADER_PATH,
		         strerror(errno));
	for (char *line = text; line && *line;) {
		char *next = strchr(line, '\n');
		if (strncmp(line, "LB_API ", 7) != 0) {
			line = next ? next + 1 : NULL;
			continue;
		}
		char *semi = strchr(line, ';'), *open = strchr(line, '(');
		assert_non_null(semi);
		assert_non_null(open);
		assert_true(nfns < MAX_FNS);
		fn_doc *f = &fns[nfns++];
		memset(f, 0, sizeof *f);
		/* the name: the identifier before '(' */
		char *ne = open;
		while (ne > line && ne[-1] == ' ')
			ne--;
		char *ns = ne;
		while (ns > line && is_ident(ns[-1]))
			ns--;
		snprintf(f->name, sizeof f->name, "%.*s", (int)(ne - ns), ns);
		f->kind = strncmp(line, "LB_API int ", 11) == 0    ? K_INT
		          : strncmp(line, "LB_API void ", 12) == 0 ? K_VOID
		                                                   : K_OTHER;
		/* the parameters: the last identifier of each */
		char params[16][48];
		int np = 0;
		for (char *q = open + 1; q < semi && *q != ')';) {
			char *pe = q;
			while (pe < semi && *pe != ',' && *pe != ')')
				pe++;
			char *ie = pe;
			while (ie > q && !is_ident(ie[-1]))
				ie--;
			char *is = ie;
			while (is > q && is_ident(is[-1]))
				is--;
			if (ie > is &&
			    !(ie - is == 4 && !strncmp(is, "void", 4)) &&
			    np < 16)
				snprintf(params[np++], sizeof params[0], "%.*s",
				         (int)(ie - is), is);
			q = *pe == ',' ? pe + 1 : pe;
		}
		/* its doc comment: the one that ends right before it */
		char *ce = line;
		while (ce > text && (ce[-1] == '\n' || ce[-1] == ' '))
			ce--;
		if (ce - text < 2 || strncmp(ce - 2, "*/", 2) != 0) {
			problem(f, "no doc comment right before it");
		} else {
			char *cs = ce - 2;
			while (cs > text && strncmp(cs, "/**", 3) != 0)
				cs--;
			parse_doc(f, cs + 3, (size_t)(ce - 2 - (cs + 3)),
			          params, np);
		}
		line = next ? next + 1 : NULL;
	}
	free(text);
	header_read = 1;
}

/* ---- what the library did -------------------------------------------------
 */

typedef struct violation {
	char fn[48];
	int rc, line;
	char msg[200];
} violation;

#define MAX_VIOL 256
static violation viol[MAX_VIOL];
static size_t nviol, nviol_total;
static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;

static void add_violation(const char *fn, int rc, int line, const char *msg)
{
	nviol_total++;
	for (size_t i = 0; i < nviol; i++)
		if (viol[i].rc == rc && strcmp(viol[i].fn, fn) == 0)
			return; /* once per pair is enough */
	if (nviol == MAX_VIOL)
		return;
	violation *v = &viol[nviol++];
	snprintf(v->fn, sizeof v->fn, "%s", fn);
	v->rc = rc;
	v->line = line;
	snprintf(v->msg, sizeof v->msg, "%s", msg);
}

/* Record that fn returned rc (a callback's positive value is not a code). */
static int rec(const char *fn, int rc, int line)
{
	char msg[200];
	snprintf(msg, sizeof msg, "%s", lb_errmsg());
	pthread_mutex_lock(&rec_lock);
	fn_doc *f = fn_find(fn);
	if (!f) {
		add_violation(fn, rc, line, "not declared with LB_API");
	} else {
		f->calls++;
		if (rc < 0 && -rc < NCODES) {
			f->seen |= 1u << -rc;
			if (!(f->listed & (1u << -rc)))
				add_violation(fn, rc, line, msg);
		} else if (rc < 0) {
			add_violation(fn, rc, line, "not a code of the header");
		}
		if (rc < 0 && !msg[0])
			add_violation(fn, rc, line,
			              "(lb_errmsg() is empty after a failure)");
	}
	pthread_mutex_unlock(&rec_lock);
	return rc;
}

/* C(fn, args...): call and record. E(want, fn, args...): the same, and the
 * call must return want. */
#define C(fn, ...) rec(#fn, fn(__VA_ARGS__), __LINE__)
#define E(want, fn, ...) te_rc((want), C(fn, __VA_ARGS__))

/* ---- the fault shim ---------------------------------------------------------
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

/* Run again with the shim preloaded ($LB_FAULT_SHIM, else
 * $LB_BUILD/libfault.so, else beside this binary's build directory);
 * returns only if that cannot be done. */
static void reexec_with_shim(char **argv)
{
	char exe[PATH_MAX], *so = NULL, *pre = NULL, *asan = NULL;
	const char *e = getenv("LB_FAULT_SHIM"), *old;
	ssize_t n;
	if (getenv("LB_FAULT_REEXEC"))
		return;
	if (e && *e)
		so = strdup(e);
	else if ((e = getenv("LB_BUILD")) && *e &&
	         asprintf(&so, "%s/libfault.so", e) < 0)
		so = NULL;
	if ((!so || access(so, R_OK) != 0) &&
	    (n = readlink("/proc/self/exe", exe, sizeof exe - 1)) > 0) {
		exe[n] = 0;
		char *slash = strrchr(exe, '/');
		free(so);
		so = NULL;
		if (slash) {
			*slash = 0;
			if (asprintf(&so, "%s/../libfault.so", exe) < 0)
				so = NULL;
		}
	}
	if (!so || access(so, R_OK) != 0) {
		free(so);
		return;
	}
	old = getenv("LD_PRELOAD");
	if (asprintf(&pre, "%s%s%s", so, old && *old ? " " : "",
	             old ? old : "") < 0)
		return;
	old = getenv("ASAN_OPTIONS");
	if (asprintf(&asan, "%s%sverify_asan_link_order=0", old ? old : "",
	             old && *old ? ":" : "") < 0)
		return;
	setenv("LD_PRELOAD", pre, 1);
	setenv("ASAN_OPTIONS", asan, 1);
	setenv("LB_FAULT_REEXEC", "1", 1);
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = 0;
		execv(exe, argv);
	}
}

/* ---- helpers ----------------------------------------------------------------
 */

static char *root; /* every database of this run lives under it */

static char *path_in(const char *name)
{
	return th_path(root, name);
}

static lb_db *open_db(const char *dir, unsigned flags, uint64_t map)
{
	lb_options o;
	lb_db *db = NULL;
	lb_options_init(&o);
	o.flags = flags;
	o.map_size = map;
	E(0, lb_open, dir, &o, &db);
	return db;
}

/* Commit n keys prefix0000.. of vlen bytes into table. */
static int put_keys(lb_db *db, const char *table, const char *prefix,
                    unsigned n, size_t vlen)
{
	lb_batch *b = NULL;
	char key[64];
	char *val = te_malloc(vlen);
	int rc = C(lb_batch_begin, db, prefix, &b);
	memset(val, 'v', vlen);
	for (unsigned i = 0; rc == 0 && i < n; i++) {
		int kl = snprintf(key, sizeof key, "%s%05u", prefix, i);
		rc = C(lb_put, b, table, key, (size_t)kl, val, vlen);
	}
	if (rc == 0)
		rc = C(lb_batch_commit, b, NULL);
	else
		lb_batch_abort(b);
	free(val);
	return rc;
}

static uint64_t last_of(lb_db *db)
{
	uint64_t id = 0;
	E(0, lb_last_batch, db, &id);
	return id;
}

static int stop_cb(void *ctx, const lb_change *c)
{
	(void)ctx;
	(void)c;
	return 7; /* a callback's own value, passed on */
}

static int consumer_cb(void *ctx, const lb_consumer_info *c)
{
	(void)c;
	(*(int *)ctx)++;
	return 0;
}

static int consumer_stop_cb(void *ctx, const lb_consumer_info *c)
{
	(void)ctx;
	(void)c;
	return 7;
}

static int count_cb(void *ctx, const lb_change *c)
{
	(void)c;
	++*(int *)ctx;
	return 0;
}

static int hist_cb(void *ctx, uint64_t batch, const lb_change *c)
{
	(void)batch;
	(void)c;
	++*(int *)ctx;
	return 0;
}

static int table_cb(void *ctx, const char *name, const lb_schema *s,
                    uint64_t records)
{
	(void)name;
	(void)s;
	(void)records;
	++*(int *)ctx;
	return 0;
}

static int ckpt_cb(void *ctx, uint64_t batch, const char *path, int64_t time_ns)
{
	(void)batch;
	(void)path;
	(void)time_ns;
	++*(int *)ctx;
	return 0;
}

/* Every reading function once, each with valid arguments, none of which
 * must succeed: what they return is recorded. */
static void read_everything(lb_db *db, const char *table, const char *key,
                            uint64_t id, const char *scratch)
{
	void *v = NULL;
	size_t vl;
	lb_snapshot *s = NULL;
	lb_verify_report rep;
	lb_result res;
	uint64_t last;
	int n = 0;
	char *dest = th_path(scratch, "replay");
	char *ck = th_path(scratch, "ck");
	if (C(lb_get, db, table, key, strlen(key), &v, &vl) == 0)
		free(v);
	if (C(lb_snapshot_open, db, &s) == 0)
		lb_snapshot_close(s);
	C(lb_tables, db, table_cb, &n);
	C(lb_last_batch, db, &last);
	lb_batch_info bi;
	C(lb_batch_info_get, db, id, &bi);
	C(lb_changes, db, id, count_cb, &n);
	C(lb_history, db, table, key, strlen(key), hist_cb, &n);
	if (C(lb_get_asof, db, id, table, key, strlen(key), &v, &vl) == 0)
		free(v);
	C(lb_diff, db, 0, id, count_cb, &n);
	C(lb_wait, db, id, 0, &last);
	{
		lb_consumer_info ci;
		uint64_t l1, l2;
		C(lb_consumer_get, db, "contract", &ci);
		C(lb_consumers, db, consumer_cb, &n);
		C(lb_consumer_limits_get, db, &l1, &l2);
	}
	C(lb_checkpoints, db, ckpt_cb, &n);
	C(lb_verify, db, LB_VERIFY_REPLAY, &rep);
	C(lb_replay, db, dest, 0, NULL, &res);
	lb_result_free(&res);
	C(lb_checkpoint, db, ck, NULL);
	th_rmrf(dest);
	th_rmrf(ck);
	free(dest);
	free(ck);
}

/* Every writing function once (a batch, a table, a schema change, the
 * rollbacks, a prune): what they return is recorded. */
static void write_everything(lb_db *db, const char *table, uint64_t id)
{
	lb_batch *b = NULL;
	lb_result res;
	static int seq;
	char name[32];
	if (C(lb_batch_begin, db, "w", &b) == 0) {
		C(lb_put, b, table, "wk", 2, "v", 1);
		C(lb_batch_commit, b, NULL);
	}
	snprintf(name, sizeof name, "new%d", seq++);
	C(lb_table_create, db, name, NULL);
	C(lb_table_alter, db, table, NULL, &res);
	lb_result_free(&res);
	C(lb_rollback, db, id, LB_FORCE, &res);
	lb_result_free(&res);
	C(lb_rollback_to, db, id, &res);
	lb_result_free(&res);
	C(lb_rollback_to_ex, db, id, LB_DRYRUN, &res);
	lb_result_free(&res);
	C(lb_rollback_set, db, (const uint64_t[]){id}, 1, LB_FORCE, &res);
	lb_result_free(&res);
	C(lb_prune, db, 2);
}

/* ---- changing a database with LMDB itself, in a child process ----------
 * (LMDB must not have one file open twice in one process.) */

enum { P_SET, P_XOR, P_DEL, P_PUT, P_BUMP };
typedef struct patch {
	int op;
	const char *dbname;
	const void *key;
	size_t klen;
	long off;        /* P_SET, P_XOR: from the start, or the end if < 0 */
	unsigned char b; /* P_SET, P_XOR */
	const void *val; /* P_PUT */
	size_t vlen;
} patch;

static int apply_patches(MDB_txn *txn, const patch *ps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const patch *p = &ps[i];
		MDB_dbi dbi;
		MDB_val k = {p->klen, (void *)p->key}, v;
		unsigned char buf[4096];
		int mrc = mdb_dbi_open(txn, p->dbname, 0, &dbi);
		if (mrc)
			return mrc;
		if (p->op == P_DEL) {
			if ((mrc = mdb_del(txn, dbi, &k, NULL)))
				return mrc;
			continue;
		}
		if (p->op == P_PUT) {
			v.mv_size = p->vlen;
			v.mv_data = (void *)p->val;
			if ((mrc = mdb_put(txn, dbi, &k, &v, 0)))
				return mrc;
			continue;
		}
		if ((mrc = mdb_get(txn, dbi, &k, &v)))
			return mrc;
		if (v.mv_size > sizeof buf || v.mv_size == 0)
			return EINVAL;
		memcpy(buf, v.mv_data, v.mv_size);
		if (p->op == P_BUMP) {
			for (size_t j = v.mv_size; j-- > 0;)
				if (++buf[j] != 0)
					break;
		} else {
			size_t at = p->off < 0 ? v.mv_size - (size_t)-p->off
			                       : (size_t)p->off;
			if (at >= v.mv_size)
				return EINVAL;
			buf[at] = p->op == P_SET ? p->b : buf[at] ^ p->b;
		}
		v.mv_data = buf;
		if ((mrc = mdb_put(txn, dbi, &k, &v, 0)))
			return mrc;
	}
	return 0;
}

static void lmdb_patch(const char *dir, const patch *ps, size_t n)
{
	int fds[2], status;
	unsigned char code = 100;
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		MDB_env *env;
		MDB_txn *txn;
		int mrc = mdb_env_create(&env);
		if (mrc == 0) {
			mdb_env_set_maxdbs(env, 64);
			mdb_env_set_mapsize(env, (size_t)1 << 30);
			mrc = mdb_env_open(env, dir, 0, 0644);
			if (mrc == 0 &&
			    (mrc = mdb_txn_begin(env, NULL, 0, &txn)) == 0) {
				mrc = apply_patches(txn, ps, n);
				if (mrc == 0)
					mrc = mdb_txn_commit(txn);
				else
					mdb_txn_abort(txn);
			}
			mdb_env_close(env);
		}
		if (mrc)
			fprintf(stderr, "patching %s: %s\n", dir,
			        mdb_strerror(mrc));
		code = mrc ? 1 : 0;
		(void)!write(fds[1], &code, 1);
		/* nothing of the parent's runs at exit (valgrind) */
		kill(getpid(), SIGKILL);
		_exit(1);
	}
	close(fds[1]);
	if (read(fds[0], &code, 1) != 1)
		code = 100;
	close(fds[0]);
	waitpid(pid, &status, 0);
	assert_int_equal(code, 0);
}

static void be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* ---- the header ------------------------------------------------------------
 */

static void test_engine_contract__header_documents_every_function(void **st)
{
	int bad = 0, with_codes = 0;
	(void)st;
	assert_true(header_read);
	assert_true(nfns >= 30);
	for (size_t i = 0; i < nfns; i++) {
		if (fns[i].kind == K_INT)
			with_codes++;
		if (fns[i].problems[0]) {
			printf("%s: %s\n", fns[i].name, fns[i].problems);
			bad++;
		}
	}
	printf("%s: %zu LB_API functions, %d returning codes\n", LB_HEADER_PATH,
	       nfns, with_codes);
	assert_int_equal(bad, 0);
}

/* ---- bad arguments ---------------------------------------------------------
 */

static const lb_field hfields[] = {
        {"id", LB_STR, LB_REQUIRED, 16, NULL},
};
static const lb_field rfields[] = {
        {"h", LB_STR, LB_REQUIRED, 0, "hs"},
};

/* A msgpack map {"id": id} or {"h": id}. */
static size_t mp_map1(uint8_t *out, const char *field, const char *val)
{
	size_t fl = strlen(field), vl = strlen(val), n = 0;
	out[n++] = 0x81;
	out[n++] = (uint8_t)(0xa0 | fl);
	memcpy(out + n, field, fl);
	n += fl;
	out[n++] = (uint8_t)(0xa0 | vl);
	memcpy(out + n, val, vl);
	return n + vl;
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	if (n)
		assert_int_equal(fwrite(p, 1, n, fp), n);
	fclose(fp);
}

struct other_thread {
	lb_batch *b;
	int put, get, check, commit;
};

static void *other_thread_main(void *arg)
{
	struct other_thread *o = arg;
	const void *v;
	size_t vl;
	o->put = C(lb_put, o->b, "t", "k", 1, "v", 1);
	o->get = C(lb_batch_get, o->b, "t", "k", 1, &v, &vl);
	o->check = C(lb_batch_check, o->b, "t", "k", 1, "v", 1, NULL);
	o->commit = C(lb_batch_commit, o->b, NULL);
	return NULL;
}

static void test_engine_contract__bad_arguments(void **st)
{
	char *dir = path_in("args"), *file = path_in("afile");
	char *sub = th_path(file, "sub");
	char big[LB_KEY_MAX + 2], label[LB_LABEL_MAX + 2];
	char longname[LB_TABLE_NAME_MAX + 2];
	lb_options o;
	lb_db *db, *db2 = NULL;
	lb_batch *b = NULL;
	lb_snapshot *s = NULL;
	lb_cursor *c = NULL;
	lb_result res;
	lb_batch_info bi;
	lb_verify_report rep;
	void *v = NULL;
	const void *cv, *ck;
	size_t vl, kl;
	uint64_t id;
	int n = 0;
	(void)st;
	memset(big, 'k', sizeof big);
	memset(label, 'l', sizeof label - 1);
	label[sizeof label - 1] = 0;
	memset(longname, 'n', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	write_file(file, NULL, 0);

	/* lb_open */
	lb_options_init(&o);
	E(LB_EINVAL, lb_open, dir, &o, NULL);
	E(LB_EINVAL, lb_open, NULL, &o, &db);
	E(LB_EINVAL, lb_open, "", &o, &db);
	E(LB_ENOTFOUND, lb_open, dir, &o, &db);
	E(LB_EINVAL, lb_open, file, &o, &db);
	E(LB_EIO, lb_open, sub, &o, &db); /* stat: not a directory */
	o.flags = 0x100;
	E(LB_EINVAL, lb_open, dir, &o, &db);
	o.flags = LB_CREATE | LB_RDONLY;
	E(LB_EINVAL, lb_open, dir, &o, &db);
	o.flags = LB_CREATE;
	o.compression = 10;
	E(LB_EINVAL, lb_open, dir, &o, &db);
	o.compression = -1;
	o.segment_size = 100;
	E(LB_EINVAL, lb_open, dir, &o, &db);
	db = open_db(dir, LB_CREATE | LB_NOSYNC, 0);
	E(LB_EBUSY, lb_open, dir, NULL, &db2); /* one handle per process */

	/* tables */
	lb_schema hs = {hfields, 1, 1}, rs = {rfields, 1, 1};
	lb_field badf[] = {{"x", (lb_type)99, 0, 0, NULL}};
	lb_schema bad = {badf, 1, 0};
	E(LB_EINVAL, lb_table_create, NULL, "t", NULL);
	E(LB_EINVAL, lb_table_create, db, NULL, NULL);
	E(LB_EINVAL, lb_table_create, db, "", NULL);
	E(LB_EINVAL, lb_table_create, db, "bad name", NULL);
	E(LB_ETOOBIG, lb_table_create, db, longname, NULL);
	E(LB_EINVAL, lb_table_create, db, "x", &bad);
	E(LB_EINVAL, lb_table_create, db, "r", &rs); /* hs is missing */
	E(0, lb_table_create, db, "t", NULL);
	E(LB_EEXIST, lb_table_create, db, "t", NULL);
	E(0, lb_table_create, db, "hs", &hs);
	E(0, lb_table_create, db, "r", &rs);
	E(LB_EINVAL, lb_tables, NULL, table_cb, &n);
	E(LB_EINVAL, lb_tables, db, NULL, &n);
	E(LB_EINVAL, lb_table_alter, NULL, "t", NULL, &res);
	E(LB_EINVAL, lb_table_alter, db, "", NULL, &res);
	E(LB_ETOOBIG, lb_table_alter, db, longname, NULL, &res);
	E(LB_ENOTFOUND, lb_table_alter, db, "nope", NULL, &res);
	E(LB_EINVAL, lb_table_alter, db, "t", &bad, &res);

	/* batches */
	E(LB_EINVAL, lb_batch_begin, NULL, "x", &b);
	E(LB_EINVAL, lb_batch_begin, db, "x", NULL);
	E(LB_ETOOBIG, lb_batch_begin, db, label, &b);
	E(0, lb_batch_begin, db, "ops", &b);
	E(LB_EINVAL, lb_put, NULL, "t", "k", 1, "v", 1);
	E(LB_EINVAL, lb_put, b, NULL, "k", 1, "v", 1);
	E(LB_EINVAL, lb_put, b, "", "k", 1, "v", 1);
	E(LB_EINVAL, lb_put, b, "t", NULL, 1, "v", 1);
	E(LB_EINVAL, lb_put, b, "t", "k", 0, "v", 1);
	E(LB_EINVAL, lb_put, b, "t", "k", 1, NULL, 1);
	E(LB_ETOOBIG, lb_put, b, "t", big, LB_KEY_MAX + 1, "v", 1);
	E(LB_ETOOBIG, lb_put, b, "t", "k", 1, "v", (size_t)LB_VALUE_MAX + 1);
	E(LB_ENOTFOUND, lb_put, b, "nope", "k", 1, "v", 1);
	E(LB_EINVAL, lb_insert, b, "t", "k", 0, "v", 1);
	E(LB_ETOOBIG, lb_insert, b, "t", big, LB_KEY_MAX + 1, "v", 1);
	E(LB_ENOTFOUND, lb_insert, b, "nope", "k", 1, "v", 1);
	E(LB_EINVAL, lb_update, NULL, "t", "k", 1, "v", 1);
	E(LB_ETOOBIG, lb_update, b, "t", big, LB_KEY_MAX + 1, "v", 1);
	E(LB_ENOTFOUND, lb_update, b, "nope", "k", 1, "v", 1);
	E(LB_EINVAL, lb_delete, b, "t", NULL, 0);
	E(LB_ETOOBIG, lb_delete, b, "t", big, LB_KEY_MAX + 1);
	E(LB_ENOTFOUND, lb_delete, b, "nope", "k", 1);
	E(LB_EINVAL, lb_batch_get, NULL, "t", "k", 1, &cv, &vl);
	E(LB_EINVAL, lb_batch_get, b, "t", "k", 1, NULL, &vl);
	E(LB_ETOOBIG, lb_batch_get, b, "t", big, LB_KEY_MAX + 1, &cv, &vl);
	E(LB_ENOTFOUND, lb_batch_get, b, "nope", "k", 1, &cv, &vl);
	E(LB_ENOTFOUND, lb_batch_get, b, "t", "k", 1, &cv, &vl);
	E(0, lb_put, b, "t", "k", 1, "v1", 2);
	E(0, lb_batch_get, b, "t", "k", 1, &cv, &vl);
	/* another thread may not use the batch */
	struct other_thread ot = {b, 0, 0, 0, 0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, other_thread_main, &ot), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	te_rc(LB_EINVAL, ot.put);
	te_rc(LB_EINVAL, ot.get);
	te_rc(LB_EINVAL, ot.check);
	te_rc(LB_EINVAL, ot.commit);
	E(0, lb_batch_commit, b, &res);
	lb_result_free(&res);
	E(LB_EINVAL, lb_batch_commit, NULL, &res);

	/* reads */
	E(LB_EINVAL, lb_get, NULL, "t", "k", 1, &v, &vl);
	E(LB_EINVAL, lb_get, db, "t", "k", 1, NULL, &vl);
	E(LB_EINVAL, lb_get, db, NULL, "k", 1, &v, &vl);
	E(LB_EINVAL, lb_get, db, "t", "k", 0, &v, &vl);
	E(LB_ETOOBIG, lb_get, db, "t", big, LB_KEY_MAX + 1, &v, &vl);
	E(LB_ENOTFOUND, lb_get, db, "nope", "k", 1, &v, &vl);
	E(LB_ENOTFOUND, lb_get, db, "t", "zz", 2, &v, &vl);
	E(LB_EINVAL, lb_snapshot_open, NULL, &s);
	E(LB_EINVAL, lb_snapshot_open, db, NULL);
	E(0, lb_snapshot_open, db, &s);
	E(LB_EINVAL, lb_snapshot_get, NULL, "t", "k", 1, &cv, &vl);
	E(LB_EINVAL, lb_snapshot_get, s, "t", "k", 1, NULL, &vl);
	E(LB_EINVAL, lb_snapshot_get, s, "", "k", 1, &cv, &vl);
	E(LB_ETOOBIG, lb_snapshot_get, s, "t", big, LB_KEY_MAX + 1, &cv, &vl);
	E(LB_ENOTFOUND, lb_snapshot_get, s, "nope", "k", 1, &cv, &vl);
	E(LB_ENOTFOUND, lb_snapshot_get, s, "t", "zz", 2, &cv, &vl);
	E(LB_EINVAL, lb_cursor_open, NULL, "t", &c);
	E(LB_EINVAL, lb_cursor_open, s, NULL, &c);
	E(LB_EINVAL, lb_cursor_open, s, "t", NULL);
	E(LB_ENOTFOUND, lb_cursor_open, s, "nope", &c);
	/* a table created after the snapshot began is not in it */
	E(0, lb_table_create, db, "later", NULL);
	E(LB_ENOTFOUND, lb_snapshot_get, s, "later", "k", 1, &cv, &vl);
	E(LB_ENOTFOUND, lb_cursor_open, s, "later", &c);
	E(0, lb_cursor_open, s, "t", &c);
	E(LB_EINVAL, lb_cursor_seek, NULL, "k", 1);
	E(LB_EINVAL, lb_cursor_seek, c, NULL, 1);
	E(LB_ETOOBIG, lb_cursor_seek, c, big, LB_KEY_MAX + 1);
	E(0, lb_cursor_seek, c, "k", 1);
	E(LB_EINVAL, lb_cursor_next, NULL, &ck, &kl, &cv, &vl);
	E(0, lb_cursor_next, c, &ck, &kl, &cv, &vl);
	E(LB_ENOTFOUND, lb_cursor_next, c, &ck, &kl, &cv, &vl);
	E(LB_ENOTFOUND, lb_cursor_next, c, NULL, NULL, NULL, NULL);
	lb_cursor_close(c);
	lb_snapshot_close(s);

	/* the log */
	E(LB_EINVAL, lb_last_batch, NULL, &id);
	E(LB_EINVAL, lb_last_batch, db, NULL);
	id = last_of(db);
	E(LB_EINVAL, lb_batch_info_get, NULL, 1, &bi);
	E(LB_EINVAL, lb_batch_info_get, db, 1, NULL);
	E(LB_ENOTFOUND, lb_batch_info_get, db, 0, &bi);
	E(LB_ENOTFOUND, lb_batch_info_get, db, id + 1, &bi);
	E(LB_EINVAL, lb_changes, NULL, 1, count_cb, &n);
	E(LB_EINVAL, lb_changes, db, 1, NULL, &n);
	E(LB_ENOTFOUND, lb_changes, db, 0, count_cb, &n);
	E(LB_ENOTFOUND, lb_changes, db, id + 1, count_cb, &n);
	E(7, lb_changes, db, 1, stop_cb, NULL);
	E(LB_EINVAL, lb_history, NULL, "t", "k", 1, hist_cb, &n);
	E(LB_EINVAL, lb_history, db, "t", "k", 1, NULL, &n);
	E(LB_EINVAL, lb_history, db, "", "k", 1, hist_cb, &n);
	E(LB_EINVAL, lb_history, db, "t", "k", 0, hist_cb, &n);
	E(LB_ETOOBIG, lb_history, db, "t", big, LB_KEY_MAX + 1, hist_cb, &n);
	E(LB_ENOTFOUND, lb_history, db, "nope", "k", 1, hist_cb, &n);
	E(0, lb_history, db, "t", "never", 5, hist_cb, &n);
	{
		void *av;
		size_t al;
		E(LB_EINVAL, lb_get_asof, NULL, 1, "t", "k", 1, &av, &al);
		E(LB_EINVAL, lb_get_asof, db, 1, "t", "k", 1, NULL, &al);
		E(LB_EINVAL, lb_get_asof, db, 1, "", "k", 1, &av, &al);
		E(LB_ETOOBIG, lb_get_asof, db, 1, "t", big, LB_KEY_MAX + 1, &av,
		  &al);
		E(LB_ENOTFOUND, lb_get_asof, db, id + 1, "t", "k", 1, &av, &al);
		E(LB_ENOTFOUND, lb_get_asof, db, id, "t", "never", 5, &av, &al);
		E(LB_EINVAL, lb_diff, NULL, 0, 1, count_cb, &n);
		E(LB_EINVAL, lb_diff, db, 0, 1, NULL, &n);
		E(LB_ENOTFOUND, lb_diff, db, 0, id + 1, count_cb, &n);
		E(7, lb_diff, db, 0, id, stop_cb, NULL);
		uint64_t wl;
		E(LB_EINVAL, lb_wait, NULL, 0, 0, &wl);
		E(LB_EINVAL, lb_wait, db, 0, 0, NULL);
		E(LB_EINVAL, lb_wait, db, 0, -2, &wl);
		E(0, lb_wait, db, 0, 0, &wl);
		E(LB_EBUSY, lb_wait, db, id, 1, &wl);
		lb_consumer_info ci;
		E(LB_EINVAL, lb_consumer_ack, NULL, "c", 0);
		E(LB_EINVAL, lb_consumer_ack, db, "c/d", 0);
		E(LB_EINVAL, lb_consumer_ack, db, "c", id + 1);
		E(LB_ENOTFOUND, lb_consumer_get, db, "c", &ci);
		E(LB_EINVAL, lb_consumer_get, db, "c", NULL);
		E(LB_ENOTFOUND, lb_consumer_drop, db, "c");
		E(LB_EINVAL, lb_consumer_drop, NULL, "c");
		E(0, lb_consumer_ack, db, "c", 1);
		E(LB_EINVAL, lb_consumer_ack, db, "c", 0);
		E(0, lb_consumer_get, db, "c", &ci);
		E(LB_EINVAL, lb_consumers, NULL, consumer_cb, &n);
		E(7, lb_consumers, db, consumer_stop_cb, NULL);
		E(0, lb_consumer_drop, db, "c");
		E(LB_EINVAL, lb_consumer_limits_set, NULL, 0, 0);
		E(0, lb_consumer_limits_set, db, 0, 0);
		E(LB_EINVAL, lb_consumer_limits_get, db, NULL, &wl);
		E(0, lb_consumer_limits_get, db, &wl, &wl);
	}

	/* rollback */
	E(LB_EINVAL, lb_rollback, NULL, 1, 0, &res);
	E(LB_EINVAL, lb_rollback, db, 1, 0x80, &res);
	E(LB_EINVAL, lb_rollback, db, 1, LB_CASCADE | LB_FORCE, &res);
	E(LB_ENOTFOUND, lb_rollback, db, 0, 0, &res);
	E(LB_ENOTFOUND, lb_rollback, db, id + 1, 0, &res);
	E(LB_EINVAL, lb_rollback_to, NULL, 0, &res);
	E(LB_ENOTFOUND, lb_rollback_to, db, id + 1, &res);
	E(LB_EINVAL, lb_rollback_to_ex, NULL, 0, 0, &res);
	E(LB_EINVAL, lb_rollback_to_ex, db, 0, 0x80, &res);
	E(LB_EINVAL, lb_rollback_to_ex, db, 0, LB_CASCADE, &res);
	E(LB_ENOTFOUND, lb_rollback_to_ex, db, id + 1, LB_DRYRUN, &res);
	E(LB_EINVAL, lb_rollback_set, NULL, (const uint64_t[]){1}, 1, 0, &res);
	E(LB_EINVAL, lb_rollback_set, db, NULL, 1, 0, &res);
	E(LB_EINVAL, lb_rollback_set, db, (const uint64_t[]){1}, 0, 0, &res);
	E(LB_EINVAL, lb_rollback_set, db, (const uint64_t[]){1}, 1, 0x80, &res);
	E(LB_EINVAL, lb_rollback_set, db, (const uint64_t[]){1}, 1,
	  LB_CASCADE | LB_FORCE, &res);
	E(LB_ENOTFOUND, lb_rollback_set, db, (const uint64_t[]){0}, 1, 0, &res);
	E(LB_ENOTFOUND, lb_rollback_set, db, (const uint64_t[]){id + 1}, 1, 0,
	  &res);
	lb_result_free(&res);

	/* checkpoints, replay, verify, prune */
	char *ck1 = path_in("args-ck"), *notempty = path_in("args-full");
	char *emptyd = path_in("args-empty"), *dot = th_path(emptyd, ".");
	char *dangling = path_in("args-dangling");
	char *under = th_path(dangling, "ck"), *rp = path_in("args-rp");
	assert_int_equal(mkdir(notempty, 0755), 0);
	assert_int_equal(mkdir(emptyd, 0755), 0);
	char *inside = th_path(notempty, "x");
	write_file(inside, "x", 1);
	free(inside);
	assert_int_equal(symlink("/nonexistent-logbook-dir", dangling), 0);
	E(LB_EINVAL, lb_checkpoint, NULL, ck1, &id);
	E(LB_EINVAL, lb_checkpoint, db, NULL, &id);
	E(LB_EINVAL, lb_checkpoint, db, "", &id);
	E(LB_EEXIST, lb_checkpoint, db, notempty, &id);
	E(LB_EEXIST, lb_checkpoint, db, file, &id);
	E(LB_EINVAL, lb_checkpoint, db, dot, &id);
	E(LB_ENOTFOUND, lb_checkpoint, db, under, &id);
	E(LB_EINVAL, lb_checkpoints, NULL, ckpt_cb, &n);
	E(LB_EINVAL, lb_checkpoints, db, NULL, &n);
	E(LB_EINVAL, lb_replay, NULL, rp, 0, NULL, &res);
	E(LB_EINVAL, lb_replay, db, NULL, 0, NULL, &res);
	E(LB_EINVAL, lb_replay, db, "", 0, NULL, &res);
	E(LB_EEXIST, lb_replay, db, notempty, 0, NULL, &res);
	E(LB_ENOTFOUND, lb_replay, db, rp, last_of(db) + 1, NULL, &res);
	E(LB_EINVAL, lb_replay, db, rp, 0, emptyd, &res); /* not a db */
	E(LB_EINVAL, lb_replay, db, rp, 0, file, &res);
	E(LB_ENOTFOUND, lb_replay, db, under, 0, NULL, &res);
	E(LB_EINVAL, lb_verify, NULL, 0, &rep);
	E(LB_EINVAL, lb_verify, db, 0, NULL);
	E(LB_EINVAL, lb_verify, db, 0x80, &rep);
	E(LB_EINVAL, lb_prune, NULL, 2);
	E(LB_EINVAL, lb_prune, db, 2); /* no checkpoint */
	E(LB_EINVAL, lb_prune, db, last_of(db) + 5);
	E(0, lb_prune, db, 1);
	lb_result_free(&res);

	/* a read-only handle writes nothing */
	lb_close(db);
	db = open_db(dir, LB_RDONLY, 0);
	E(LB_EINVAL, lb_batch_begin, db, "ro", &b);
	E(LB_EINVAL, lb_table_create, db, "u", NULL);
	E(LB_EINVAL, lb_table_alter, db, "t", NULL, &res);
	E(LB_EINVAL, lb_rollback, db, 1, 0, &res);
	E(LB_EINVAL, lb_rollback_to, db, 0, &res);
	E(LB_EINVAL, lb_rollback_to_ex, db, 0, LB_DRYRUN, &res);
	E(LB_EINVAL, lb_rollback_set, db, (const uint64_t[]){1}, 1, 0, &res);
	E(LB_EINVAL, lb_checkpoint, db, ck1, &id);
	E(LB_EINVAL, lb_prune, db, 2);
	lb_result_free(&res);
	lb_close(db);
	th_rmrf(dir);
	th_rmrf(notempty);
	free(dir);
	free(file);
	free(sub);
	free(ck1);
	free(notempty);
	free(emptyd);
	free(dot);
	free(dangling);
	free(under);
	free(rp);
}

/* ---- bad files at open
 * -------------------------------------------------------
 */

static void test_engine_contract__bad_files(void **st)
{
	char *dir = path_in("files"), *mdb = th_path(dir, "data.mdb");
	char *other = path_in("files-other"),
	     *omdb = th_path(other, "data.mdb");
	char *plain = path_in("files-plain");
	char *hard = path_in("files-hard");
	lb_options o;
	lb_db *db = NULL;
	char junk[8192];
	(void)st;
	lb_options_init(&o);

	/* a newer and an earlier format */
	db = open_db(dir, LB_CREATE | LB_NOSYNC, 0);
	lb_close(db);
	uint8_t v99[4] = {0, 0, 0, 99}, v2[4] = {0, 0, 0, 2};
	patch newer = {P_PUT, "_meta", "format", 6, 0, 0, v99, 4};
	lmdb_patch(dir, &newer, 1);
	E(LB_EVERSION, lb_open, dir, &o, &db);
	patch earlier = {P_PUT, "_meta", "format", 6, 0, 0, v2, 4};
	lmdb_patch(dir, &earlier, 1);
	E(LB_EVERSION, lb_open, dir, &o, &db);
	/* _meta without its format entry */
	patch noformat = {P_DEL, "_meta", "format", 6, 0, 0, NULL, 0};
	lmdb_patch(dir, &noformat, 1);
	E(LB_ECORRUPT, lb_open, dir, &o, &db);
	th_rmrf(dir);

	/* an LMDB environment that is not a logbook database */
	assert_int_equal(mkdir(plain, 0755), 0);
	{
		MDB_env *env;
		MDB_txn *txn;
		MDB_dbi dbi;
		MDB_val k = {1, "k"}, d = {1, "v"};
		assert_int_equal(mdb_env_create(&env), 0);
		assert_int_equal(mdb_env_open(env, plain, 0, 0644), 0);
		assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
		assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
		assert_int_equal(mdb_put(txn, dbi, &k, &d, 0), 0);
		assert_int_equal(mdb_txn_commit(txn), 0);
		mdb_env_close(env);
	}
	E(LB_EINVAL, lb_open, plain, &o, &db);

	/* data.mdb: garbage, empty (read-only), a symbolic and a hard link */
	assert_int_equal(mkdir(dir, 0755), 0);
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (char)(i * 37 + 11);
	write_file(mdb, junk, sizeof junk);
	E(LB_ECORRUPT, lb_open, dir, &o, &db);
	write_file(mdb, NULL, 0);
	o.flags = LB_RDONLY;
	E(LB_ECORRUPT, lb_open, dir, &o, &db);
	o.flags = 0;
	unlink(mdb);
	db = open_db(other, LB_CREATE | LB_NOSYNC, 0);
	lb_close(db);
	assert_int_equal(symlink(omdb, mdb), 0);
	E(LB_EINVAL, lb_open, dir, &o, &db);
	unlink(mdb);
	assert_int_equal(mkdir(hard, 0755), 0);
	char *hmdb = th_path(hard, "data.mdb");
	assert_int_equal(link(omdb, hmdb), 0);
	E(LB_EINVAL, lb_open, hard, &o, &db);

	/* an address space too small for the map asked for */
	th_rmrf(dir);
	o.flags = LB_CREATE;
	o.map_size = (uint64_t)1 << 62;
	if (C(lb_open, dir, &o, &db) == 0)
		lb_close(db);
	/* a map too small for a new database */
	th_rmrf(dir);
	o.map_size = 8192;
	if (C(lb_open, dir, &o, &db) == 0)
		lb_close(db);

	th_rmrf(dir);
	th_rmrf(other);
	th_rmrf(plain);
	th_rmrf(hard);
	free(hmdb);
	free(dir);
	free(mdb);
	free(other);
	free(omdb);
	free(plain);
	free(hard);
}

/* ---- states: validation, conflicts, pruned batches ------------------------
 */

static void test_engine_contract__states(void **st)
{
	char *dir = path_in("states"), *ck = path_in("states-ck");
	char *rp = path_in("states-rp");
	char *rp2 = path_in("states-rp2");
	lb_db *db = open_db(dir, LB_CREATE | LB_NOSYNC, 0);
	lb_batch *b = NULL;
	lb_result res;
	lb_verify_report rep;
	uint8_t val[64];
	size_t n;
	uint64_t id, before;
	int cnt = 0;
	(void)st;
	lb_schema hs = {hfields, 1, 1}, rs = {rfields, 1, 1};
	E(0, lb_table_create, db, "t", NULL);
	E(0, lb_table_create, db, "hs", &hs);
	E(0, lb_table_create, db, "r", &rs);

	/* validation at each op, and at commit */
	E(0, lb_batch_begin, db, "bad", &b);
	E(LB_EVALIDATION, lb_put, b, "hs", "x", 1, "not a map", 9);
	E(LB_EVALIDATION, lb_batch_check, b, "hs", "x", 1, "not a map", 9,
	  &res);
	lb_result_free(&res);
	E(0, lb_batch_check, b, "t", "x", 1, "any", 3, NULL);
	E(LB_EINVAL, lb_batch_check, NULL, "t", "x", 1, "v", 1, NULL);
	E(LB_EINVAL, lb_batch_check, b, "t", "x", 1, NULL, 1, NULL);
	E(LB_ETOOBIG, lb_batch_check, b, "t", "x", 1, "v", LB_VALUE_MAX + 1,
	  NULL);
	E(LB_ENOTFOUND, lb_batch_check, b, "nope", "x", 1, "v", 1, NULL);
	E(LB_EVALIDATION, lb_update, b, "t", "missing", 7, "v", 1);
	E(LB_EVALIDATION, lb_delete, b, "t", "missing", 7);
	n = mp_map1(val, "h", "H9");
	E(0, lb_put, b, "r", "r1", 2, val, n); /* names no key of hs */
	E(LB_EVALIDATION, lb_batch_commit, b, &res);
	lb_result_free(&res);
	E(0, lb_batch_begin, db, "good", &b);
	n = mp_map1(val, "id", "H1");
	E(0, lb_insert, b, "hs", "H1", 2, val, n);
	E(LB_EVALIDATION, lb_insert, b, "hs", "H1", 2, val, n);
	lb_batch_abort(b);
	E(0, lb_batch_begin, db, "good", &b);
	E(0, lb_insert, b, "hs", "H1", 2, val, n);
	E(0, lb_put, b, "t", "k", 1, "v1", 2);
	E(0, lb_batch_commit, b, &res);
	lb_result_free(&res);
	uint64_t hb = last_of(db);
	E(0, lb_batch_begin, db, "ref", &b);
	n = mp_map1(val, "h", "H1");
	E(0, lb_put, b, "r", "r1", 2, val, n);
	E(0, lb_update, b, "t", "k", 1, "v2", 2);
	E(0, lb_batch_commit, b, &res);
	lb_result_free(&res);
	uint64_t rb = last_of(db);
	/* a schema that the records do not fit */
	lb_field tight[] = {{"id", LB_STR, LB_REQUIRED, 1, NULL}};
	lb_schema ts = {tight, 1, 1};
	E(LB_EVALIDATION, lb_table_alter, db, "hs", &ts, &res);
	lb_result_free(&res);
	E(0, lb_table_alter, db, "hs", &hs, &res); /* the same: nothing */
	lb_result_free(&res);

	/* rollback: a conflict, a reference still held, twice, a table
	 * with records */
	E(LB_ECONFLICT, lb_rollback, db, hb, 0, &res);
	lb_result_free(&res);
	E(LB_ECONFLICT, lb_rollback, db, hb, LB_DRYRUN, &res);
	lb_result_free(&res);
	E(LB_ECONFLICT, lb_rollback_set, db, (const uint64_t[]){hb}, 1, 0,
	  &res);
	lb_result_free(&res);
	E(LB_EVALIDATION, lb_rollback_set, db, (const uint64_t[]){hb}, 1,
	  LB_FORCE | LB_DRYRUN, &res);
	lb_result_free(&res);
	E(LB_EVALIDATION, lb_rollback, db, hb, LB_FORCE, &res);
	lb_result_free(&res);
	E(0, lb_rollback, db, rb, 0, &res);
	lb_result_free(&res);
	E(LB_EINVAL, lb_rollback, db, rb, 0, &res); /* rolled back already */
	lb_result_free(&res);
	E(LB_EINVAL, lb_rollback_set, db, (const uint64_t[]){rb}, 1, 0, &res);
	lb_result_free(&res);
	E(LB_EINVAL, lb_rollback, db, 1, 0, &res); /* t holds a record */
	lb_result_free(&res);
	E(0, lb_rollback_to_ex, db, hb, LB_DRYRUN, &res);
	lb_result_free(&res);
	E(0, lb_rollback_to, db, last_of(db), &res); /* nothing to do */
	lb_result_free(&res);

	/* the log, pruned */
	te_rc(0, put_keys(db, "t", "a", 50, 100));
	E(0, lb_checkpoint, db, ck, &id);
	te_rc(0, put_keys(db, "t", "b", 50, 100));
	before = id;
	E(0, lb_prune, db, before);
	E(LB_EPRUNED, lb_changes, db, 1, count_cb, &cnt);
	E(0, lb_history, db, "t", "k", 1, hist_cb, &cnt);
	E(LB_EPRUNED, lb_diff, db, 0, last_of(db), count_cb, &cnt);
	{
		lb_consumer_info ci;
		uint64_t lb4 = last_of(db);
		E(0, lb_consumer_ack, db, "lag", 0);
		E(LB_EBUSY, lb_prune, db, before + 1);
		E(0, lb_consumer_limits_set, db, 1, 0);
		E(0, lb_prune, db, before);
		E(LB_EPRUNED, lb_consumer_get, db, "lag", &ci);
		E(LB_EPRUNED, lb_consumer_ack, db, "lag", lb4);
		E(0, lb_consumer_drop, db, "lag");
		E(0, lb_consumer_limits_set, db, 0, 0);
	}
	E(LB_EPRUNED, lb_rollback, db, hb, LB_FORCE, &res);
	lb_result_free(&res);
	E(LB_EPRUNED, lb_rollback_to, db, 1, &res);
	lb_result_free(&res);
	E(LB_EPRUNED, lb_rollback_to_ex, db, 1, LB_DRYRUN, &res);
	lb_result_free(&res);
	E(LB_EPRUNED, lb_rollback_set, db, (const uint64_t[]){hb}, 1, LB_FORCE,
	  &res);
	lb_result_free(&res);
	E(LB_EPRUNED, lb_replay, db, rp, 0, NULL, &res);
	lb_result_free(&res);
	E(0, lb_replay, db, rp, 0, ck, &res);
	lb_result_free(&res);
	E(LB_EINVAL, lb_replay, db, rp2, 1, ck, &res); /* after batch 1 */
	lb_result_free(&res);
	E(0, lb_verify, db, LB_VERIFY_REPLAY, &rep);
	E(0, lb_checkpoints, db, ckpt_cb, &cnt);
	E(0, lb_tables, db, table_cb, &cnt);

	/* frames and followers */
	{
		char *fd = path_in("states-f"), *gd = path_in("states-g");
		lb_db *f = open_db(fd, LB_CREATE | LB_NOSYNC, 0);
		lb_db *g = open_db(gd, LB_CREATE | LB_NOSYNC, 0);
		lb_identity ident;
		void *fr = NULL;
		size_t fl = 0;
		E(LB_EINVAL, lb_identity_get, NULL, &ident);
		E(0, lb_identity_get, f, &ident);
		E(LB_EINVAL, lb_batch_raw, NULL, 1, &fr, &fl);
		E(LB_ENOTFOUND, lb_batch_raw, db, last_of(db) + 1, &fr, &fl);
		E(LB_EPRUNED, lb_batch_raw, db, 1, &fr, &fl);
		E(0, lb_batch_raw, db, last_of(db), &fr, &fl);
		E(LB_ECONFLICT, lb_batch_apply_raw, f, fr, fl, &id); /* gap */
		E(LB_EINVAL, lb_batch_apply_raw, NULL, fr, fl, &id);
		((uint8_t *)fr)[fl - 1] ^= 1;
		E(LB_ECORRUPT, lb_batch_apply_raw, f, fr, fl, &id);
		free(fr);
		E(LB_EINVAL, lb_promote, NULL);
		E(LB_EINVAL, lb_promote, f); /* not a follower */
		E(0, lb_table_create, f, "x", NULL);
		E(0, lb_batch_raw, f, 1, &fr, &fl);
		E(0, lb_batch_apply_raw, g, fr, fl, &id);
		free(fr);
		E(LB_EINVAL, lb_table_create, g, "y", NULL); /* follows */
		E(0, lb_promote, g);
		E(0, lb_table_create, g, "y", NULL);
		lb_close(f);
		lb_close(g);
		th_rmrf(fd);
		th_rmrf(gd);
		free(fd);
		free(gd);
	}

	/* a checkpoint this process has open is not opened again */
	lb_db *cdb = open_db(ck, LB_RDONLY, 0);
	E(LB_EBUSY, lb_replay, db, rp2, 0, ck, &res);
	lb_result_free(&res);
	lb_close(cdb);
	lb_close(db);
	th_rmrf(dir);
	th_rmrf(ck);
	th_rmrf(rp);
	th_rmrf(rp2);
	free(dir);
	free(ck);
	free(rp);
	free(rp2);
}

/* ---- a full reader table ---------------------------------------------------
 */

static void test_engine_contract__full_reader_table(void **st)
{
	char *dir = path_in("readers"), *scratch = path_in("readers-x");
	lb_db *db = open_db(dir, LB_CREATE | LB_NOSYNC, 0);
	lb_snapshot *s[600];
	size_t n = 0;
	int rc = 0;
	(void)st;
	assert_int_equal(mkdir(scratch, 0755), 0);
	E(0, lb_table_create, db, "t", NULL);
	te_rc(0, put_keys(db, "t", "k", 10, 10));
	while (n < 600 && (rc = C(lb_snapshot_open, db, &s[n])) == 0)
		n++;
	te_rc(LB_EBUSY, rc);
	read_everything(db, "t", "k00001", 2, scratch);
	void *v = NULL;
	size_t vl;
	E(LB_EBUSY, lb_get, db, "t", "k00001", 6, &v, &vl);
	while (n > 0)
		lb_snapshot_close(s[--n]);
	E(0, lb_get, db, "t", "k00001", 6, &v, &vl);
	free(v);
	lb_close(db);
	th_rmrf(dir);
	th_rmrf(scratch);
	free(dir);
	free(scratch);
}

/* ---- damaged files ------------------------------------------------------
 */

/* A database with table t (batch 1), a schema table hs (2), keys k.. and
 * j.. in batches 3..5 (5 changes k00001 again), and a checkpoint at 5 in
 * ck (so that batches before 6 may be pruned). */
static lb_db *damage_db(const char *dir, const char *ck)
{
	lb_db *db = open_db(dir, LB_CREATE | LB_NOSYNC, 0);
	lb_schema hs = {hfields, 1, 0};
	E(0, lb_table_create, db, "t", NULL);
	E(0, lb_table_create, db, "hs", &hs);
	te_rc(0, put_keys(db, "t", "k", 20, 50));
	te_rc(0, put_keys(db, "t", "j", 20, 50));
	te_rc(0, put_keys(db, "t", "k", 2, 60));
	th_rmrf(ck);
	E(0, lb_checkpoint, db, ck, NULL);
	return db;
}

static void test_engine_contract__damaged_files(void **st)
{
	char *dir = path_in("dmg"), *scratch = path_in("dmg-x");
	char *ck = path_in("dmg-ck");
	uint8_t k3[8], k4[8], seg3[12];
	lb_db *db;
	(void)st;
	assert_int_equal(mkdir(scratch, 0755), 0);
	be64(k3, 3);
	be64(k4, 4);
	memcpy(seg3, k3, 8);
	memset(seg3 + 8, 0, 4);

	/* batch 3's header written by a newer version */
	db = damage_db(dir, ck);
	patch hv = {P_SET, "_batches", k3, 8, 1, 2, NULL, 0};
	lmdb_patch(dir, &hv, 1);
	E(LB_EVERSION, lb_prune, db, 5);
	read_everything(db, "t", "k00001", 3, scratch);
	E(LB_EVERSION, lb_rollback, db, 3, LB_FORCE, NULL);
	E(LB_EVERSION, lb_rollback_to, db, 2, NULL);
	E(LB_EVERSION, lb_rollback_to_ex, db, 2, LB_DRYRUN, NULL);
	E(LB_EVERSION, lb_rollback_set, db, (const uint64_t[]){3}, 1, LB_FORCE,
	  NULL);
	lb_close(db);
	th_rmrf(dir);

	/* batch 4's header does not decode; batch 3's segment is damaged */
	db = damage_db(dir, ck);
	patch hd[] = {{P_SET, "_batches", k4, 8, 0, 0xc1, NULL, 0},
	              {P_XOR, "_wal", seg3, 12, -1, 0x5a, NULL, 0}};
	lmdb_patch(dir, hd, 2);
	E(LB_ECORRUPT, lb_prune, db, 5);
	read_everything(db, "t", "k00001", 3, scratch);
	read_everything(db, "t", "j00001", 4, scratch);
	E(LB_ECORRUPT, lb_rollback, db, 3, LB_FORCE, NULL);
	E(LB_ECORRUPT, lb_rollback_to, db, 2, NULL);
	E(LB_ECORRUPT, lb_rollback_to_ex, db, 3, LB_DRYRUN, NULL);
	E(LB_ECORRUPT, lb_rollback_set, db, (const uint64_t[]){3}, 1, LB_FORCE,
	  NULL);
	lb_close(db);
	th_rmrf(dir);

	/* a table whose schema another process wrote in a newer version
	 * (the catalog generation moves, so every handle loads it) */
	db = damage_db(dir, ck);
	patch sv[] = {{P_SET, "_meta", "schema/hs", 9, 1, 2, NULL, 0},
	              {P_BUMP, "_meta", "catalog", 7, 0, 0, NULL, 0}};
	lmdb_patch(dir, sv, 2);
	read_everything(db, "t", "k00001", 3, scratch);
	write_everything(db, "t", 3);
	lb_close(db);
	th_rmrf(dir);

	/* _meta loses its catalog entry */
	db = damage_db(dir, ck);
	patch nc = {P_DEL, "_meta", "catalog", 7, 0, 0, NULL, 0};
	lmdb_patch(dir, &nc, 1);
	read_everything(db, "t", "k00001", 3, scratch);
	write_everything(db, "t", 3);
	lb_close(db);
	th_rmrf(dir);

	/* _meta loses its next table id */
	db = damage_db(dir, ck);
	patch nt = {P_DEL, "_meta", "next_tid", 8, 0, 0, NULL, 0};
	lmdb_patch(dir, &nt, 1);
	E(LB_ECORRUPT, lb_table_create, db, "u", NULL);
	lb_close(db);
	th_rmrf(dir);

	th_rmrf(scratch);
	th_rmrf(ck);
	free(dir);
	free(scratch);
	free(ck);
}

/* ---- faults: a full disk, I/O errors, no address space ------------------
 */

static void writes_fail(lb_db *db, const char *dir, int err, int want)
{
	char *ck = th_path(dir, "ck"), *rp = th_path(dir, "rp");
	char *nd = th_path(dir, "new");
	lb_batch *b = NULL;
	lb_result res;
	lb_verify_report rep;
	lb_db *ndb = NULL;
	lb_options o;
	uint64_t last = last_of(db);
	shim.arm(1, err, 1); /* every write and sync fails from now on */
	E(0, lb_batch_begin, db, "x", &b);
	E(0, lb_put, b, "t", "zz", 2, "v", 1);
	E(want, lb_batch_commit, b, &res);
	lb_result_free(&res);
	te_rc(want, put_keys(db, "t", "q", 5, 10));
	E(want, lb_table_create, db, "nt", NULL);
	E(want, lb_table_alter, db, "m", NULL, &res); /* loosens: writes */
	lb_result_free(&res);
	E(want, lb_rollback, db, last, LB_FORCE, &res);
	lb_result_free(&res);
	E(want, lb_rollback_to, db, last - 1, &res);
	lb_result_free(&res);
	E(want, lb_rollback_to_ex, db, last - 1, 0, &res);
	lb_result_free(&res);
	E(want, lb_prune, db, 2);
	E(want, lb_checkpoint, db, ck, NULL);
	E(want, lb_replay, db, rp, 0, NULL, &res);
	lb_result_free(&res);
	E(want, lb_verify, db, LB_VERIFY_REPLAY, &rep);
	lb_options_init(&o);
	o.flags = LB_CREATE;
	E(want, lb_open, nd, &o, &ndb);
	shim.disarm();
	/* all is well again */
	te_rc(0, put_keys(db, "t", "q", 5, 10));
	E(0, lb_verify, db, LB_VERIFY_REPLAY, &rep);
	th_rmrf(ck);
	th_rmrf(rp);
	th_rmrf(nd);
	free(ck);
	free(rp);
	free(nd);
}

/* Commit batches with call n failing, n = 1, 2, ..., until the meta page
 * write fails (LMDB then writes the old one back: one call more), which
 * leaves the environment to be reopened. */
static void fail_meta_write(lb_db *db)
{
	for (long n = 1; n < 1000; n++) {
		shim.arm(n, EIO, 0);
		int rc = put_keys(db, "t", "m", 20, 100);
		if (rc == 0)
			break;
		te_rc(LB_EIO, rc);
		if (shim.calls() > n) {
			shim.disarm();
			return;
		}
		shim.disarm();
	}
	shim.disarm();
	fail_msg("no failed write of a commit left LMDB's environment failed");
}

/* Put (p), insert (i) or update (u) 2 KiB values in one batch until the
 * map must grow, with every mapping of the data file failing from the
 * first op on: the op that grows answers LB_ENOMEM (the batch is aborted,
 * and the environment left closed, to be reopened by the next call). */
static int grow_fails(lb_db *db, int mode)
{
	lb_batch *b = NULL;
	char key[16], val[2048];
	int rc;
	memset(val, 'x', sizeof val);
	shim.disarm();
	if ((rc = C(lb_batch_begin, db, "big", &b)) < 0)
		return rc;
	shim.arm(1, ENOMEM, 1);
	for (unsigned i = 0; rc == 0 && i < 4096; i++) {
		int kl = snprintf(key, sizeof key, "%c%05u", mode,
		                  mode == 'u' ? i % 1000 : i);
		if (mode == 'p')
			rc = C(lb_put, b, "t", key, (size_t)kl, val,
			       sizeof val);
		else if (mode == 'i')
			rc = C(lb_insert, b, "t", key, (size_t)kl, val,
			       sizeof val);
		else
			rc = C(lb_update, b, "t", key, (size_t)kl, val,
			       sizeof val);
	}
	lb_batch_abort(b);
	return rc;
}

static void test_engine_contract__faults(void **st)
{
	char *dir = path_in("faults"), *scratch = path_in("faults-x");
	char *tiny = path_in("faults-tiny");
	const char *tmp = getenv("TMPDIR");
	lb_snapshot *s = NULL;
	lb_db *db;
	(void)st;
	if (!shim_load()) {
		printf("the fault shim is not loaded: full disks, I/O errors "
		       "and failed mappings are not provoked\n");
		return;
	}
	assert_int_equal(mkdir(scratch, 0755), 0);
	shim.dir(tmp && *tmp ? tmp : "/tmp");
	shim.disarm();
	db = open_db(dir, LB_CREATE | LB_NOSYNC, 0);
	lb_schema hs = {hfields, 1, 0};
	E(0, lb_table_create, db, "t", NULL);
	E(0, lb_table_create, db, "m", &hs);
	te_rc(0, put_keys(db, "t", "k", 20, 100));
	te_rc(0, put_keys(db, "t", "j", 20, 100));
	char *ck0 = th_path(scratch, "ck0");
	E(0, lb_checkpoint, db, ck0, NULL);
	writes_fail(db, scratch, ENOSPC, LB_EFULL);
	writes_fail(db, scratch, EIO, LB_EIO);

	/* a failed meta page write leaves the environment to be reopened,
	 * which a snapshot still open prevents: every call then fails with
	 * LB_EIO (after a wait of about a second each) */
	E(0, lb_snapshot_open, db, &s);
	fail_meta_write(db);
	read_everything(db, "t", "k00001", 2, scratch);
	write_everything(db, "t", 2);
	lb_snapshot_close(s);
	te_rc(0, put_keys(db, "t", "after", 5, 10));
	lb_close(db);

	/* the address space runs out while the map grows (mmap of the data
	 * file fails with ENOMEM) */
	shim.calls_only("mmap");
	db = open_db(tiny, LB_CREATE | LB_NOSYNC, 64u << 10);
	E(0, lb_table_create, db, "t", NULL);
	te_rc(LB_ENOMEM, grow_fails(db, 'p'));
	/* the environment was closed: reopening it needs a mapping too */
	read_everything(db, "t", "k00001", 1, scratch);
	write_everything(db, "t", 1);
	shim.disarm();
	te_rc(LB_ENOMEM, grow_fails(db, 'i'));
	shim.disarm();
	te_rc(0, put_keys(db, "t", "u", 1000, 10));
	te_rc(LB_ENOMEM, grow_fails(db, 'u'));
	shim.disarm();
	te_rc(0, put_keys(db, "t", "k", 50, 1000));
	/* the next batch grows the map first */
	lb_batch *b = NULL;
	shim.arm(1, ENOMEM, 1);
	int rc = C(lb_batch_begin, db, "grow", &b);
	if (rc == 0)
		lb_batch_abort(b);
	shim.disarm();
	shim.calls_only(NULL);
	shim.dir(NULL);
	lb_close(db);

	th_rmrf(dir);
	th_rmrf(tiny);
	th_rmrf(scratch);
	free(ck0);
	free(dir);
	free(tiny);
	free(scratch);
}

/* ---- the verdict ----------------------------------------------------------
 */

static void test_engine_contract__every_code_is_listed(void **st)
{
	int uncalled = 0;
	(void)st;
	printf("codes each function returned in this run (* = provoked; "
	       "the others are listed but not provoked here):\n");
	for (size_t i = 0; i < nfns; i++) {
		fn_doc *f = &fns[i];
		char line[400];
		size_t o = 0;
		if (f->kind != K_INT)
			continue;
		o += (size_t)snprintf(line + o, sizeof line - o, "  %-20s",
		                      f->name);
		for (int c = 1; c < NCODES; c++)
			if (f->listed & (1u << c))
				o += (size_t)snprintf(line + o, sizeof line - o,
				                      " %s%s", code_name[c] + 4,
				                      f->seen & (1u << c) ? "*"
				                                          : "");
		printf("%s\n", line);
		if (!f->calls) {
			printf("  %s: never called by this test\n", f->name);
			uncalled++;
		}
	}
	for (size_t i = 0; i < nviol; i++)
		printf("%s returned %s (line %d), which its @return in %s "
		       "does not list: %s\n",
		       viol[i].fn,
		       -viol[i].rc < NCODES && viol[i].rc < 0
		               ? code_name[-viol[i].rc]
		               : "a value that is no code",
		       viol[i].line, LB_HEADER_PATH, viol[i].msg);
	assert_int_equal(nviol_total, 0);
	assert_int_equal(uncalled, 0);
}

static int group_setup(void **state)
{
	(void)state;
	parse_header();
	root = th_tmpdir();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	th_rmrf(root);
	free(root);
	return 0;
}

int main(int argc, char **argv)
{
	(void)argc;
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(
	                test_engine_contract__header_documents_every_function),
	        cmocka_unit_test(test_engine_contract__bad_arguments),
	        cmocka_unit_test(test_engine_contract__bad_files),
	        cmocka_unit_test(test_engine_contract__states),
	        cmocka_unit_test(test_engine_contract__full_reader_table),
	        cmocka_unit_test(test_engine_contract__damaged_files),
	        cmocka_unit_test(test_engine_contract__faults),
	        cmocka_unit_test(test_engine_contract__every_code_is_listed),
	};
	if (!shim_load())
		reexec_with_shim(argv);
	return cmocka_run_group_tests_name("engine_contract", tests,
	                                   group_setup, group_teardown);
}
