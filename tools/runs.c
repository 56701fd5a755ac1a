/* SPDX-License-Identifier: MIT */
/*
 * runs.c: import runs (runs.h): their records in logbook.runs, the import
 * lock, the content hash, and the commands `runs` and `rollback --run`.
 *
 * A run's records are read from one snapshot with a cursor on
 * logbook.runs: keys "RUN.SEQ" sort by run, then by sequence, so a run's
 * records come together, oldest first. Nothing else is read: no record of
 * the data tables, no batch of the log (rollback --run asks the library).
 *
 * The lock is an fcntl write lock on DIR/logbook-import.lock, held by an
 * import for its whole length (the process ends, the lock goes). Others
 * learn who holds it with F_GETLK, which takes nothing (an flock probe
 * would, for a moment, and make a concurrent import believe it waits).
 */
#include "runs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

/* ---- signals ------------------------------------------------------------- */

volatile sig_atomic_t runs_stop;

static void on_signal(int sig)
{
	runs_stop = 1;
	/* A second signal ends the process at once. */
	signal(sig, SIG_DFL);
}

void runs_signals(int on)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on ? on_signal : SIG_DFL;
	sa.sa_flags = 0; /* no SA_RESTART: a blocked read or lock wakes up */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (on)
		runs_stop = 0;
}

/* ---- records ------------------------------------------------------------- */

size_t run_key(char *buf, uint64_t run, uint64_t seq)
{
	return (size_t)snprintf(buf, 32, "%012" PRIu64 ".%010" PRIu64, run,
	                        seq);
}

void run_rec_free(run_rec *r)
{
	if (!r)
		return;
	free(r->file);
	free(r->mode);
	free(r->on_error);
	free(r->table);
	free(r->keyfield);
	json_decref(r->aside);
	memset(r, 0, sizeof *r);
}

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *jint(uint64_t v)
{
	return json_integer((json_int_t)v);
}

char *run_rec_text(const run_rec *r)
{
	json_t *o = json_object();
	char *s;
	json_object_set_new(o, "run", jint(r->run));
	json_object_set_new(o, "seq", jint(r->seq));
	json_object_set_new(o, "batch", jint(r->batch));
	json_object_set_new(o, "prev", jint(r->prev));
	json_object_set_new(o, "file", jstr(r->file));
	json_object_set_new(o, "sha256",
	                    r->sha256[0] ? json_string(r->sha256)
	                                 : json_null());
	json_object_set_new(o, "size", jint(r->size));
	json_object_set_new(o, "started_ns", json_integer(r->started_ns));
	json_object_set_new(o, "time_ns", json_integer(r->time_ns));
	json_object_set_new(o, "mode", jstr(r->mode));
	json_object_set_new(o, "on_error", jstr(r->on_error));
	json_object_set_new(o, "table", jstr(r->table));
	json_object_set_new(o, "key", jstr(r->keyfield));
	json_object_set_new(o, "from_rejects", json_boolean(r->from_rejects));
	json_object_set_new(o, "allow_repeats", json_boolean(r->allow_repeats));
	json_object_set_new(o, "batch_size", jint(r->batch_size));
	json_object_set_new(o, "first_line", jint(r->first_line));
	json_object_set_new(o, "last_line", jint(r->last_line));
	json_object_set_new(o, "next_line", jint(r->next_line));
	json_object_set_new(o, "next_offset", jint(r->next_offset));
	json_object_set_new(o, "lines", jint(r->lines));
	json_object_set_new(o, "committed", jint(r->committed));
	json_object_set_new(o, "set_aside", jint(r->set_aside));
	json_object_set_new(o, "final", json_boolean(r->final));
	if (r->aside)
		json_object_set(o, "aside", r->aside);
	if (r->aside_truncated)
		json_object_set_new(o, "aside_truncated", json_true());
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s) {
		fputs("logbook: out of memory\n", stderr);
		exit(CLI_FAIL);
	}
	return s;
}

static uint64_t get_u64(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);
	return json_is_integer(v) && json_integer_value(v) > 0
	               ? (uint64_t)json_integer_value(v)
	               : 0;
}

static char *get_str(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);
	return json_is_string(v) ? cli_xstrdup(json_string_value(v)) : NULL;
}

/* Parse a record; 0, or -1 if it is not one. */
static int run_rec_parse(const void *p, size_t n, run_rec *r)
{
	json_t *o = json_loadb(p, n, 0, NULL), *v;
	memset(r, 0, sizeof *r);
	if (!json_is_object(o)) {
		json_decref(o);
		return -1;
	}
	r->run = get_u64(o, "run");
	r->seq = get_u64(o, "seq");
	r->batch = get_u64(o, "batch");
	r->prev = get_u64(o, "prev");
	r->file = get_str(o, "file");
	v = json_object_get(o, "sha256");
	if (json_is_string(v) && json_string_length(v) == 64)
		memcpy(r->sha256, json_string_value(v), 65);
	r->size = get_u64(o, "size");
	v = json_object_get(o, "started_ns");
	r->started_ns = json_is_integer(v) ? json_integer_value(v) : 0;
	v = json_object_get(o, "time_ns");
	r->time_ns = json_is_integer(v) ? json_integer_value(v) : 0;
	r->mode = get_str(o, "mode");
	r->on_error = get_str(o, "on_error");
	r->table = get_str(o, "table");
	r->keyfield = get_str(o, "key");
	r->from_rejects = json_is_true(json_object_get(o, "from_rejects"));
	r->allow_repeats = json_is_true(json_object_get(o, "allow_repeats"));
	r->batch_size = get_u64(o, "batch_size");
	r->first_line = get_u64(o, "first_line");
	r->last_line = get_u64(o, "last_line");
	r->next_line = get_u64(o, "next_line");
	r->next_offset = get_u64(o, "next_offset");
	r->lines = get_u64(o, "lines");
	r->committed = get_u64(o, "committed");
	r->set_aside = get_u64(o, "set_aside");
	r->final = json_is_true(json_object_get(o, "final"));
	v = json_object_get(o, "aside");
	if (json_is_array(v))
		r->aside = json_incref(v);
	r->aside_truncated =
	        json_is_true(json_object_get(o, "aside_truncated"));
	json_decref(o);
	return r->run ? 0 : -1;
}

/* ---- runs ---------------------------------------------------------------- */

static int exists_cb(void *ctx, const char *name, const lb_schema *s,
                     uint64_t records)
{
	(void)s;
	(void)records;
	if (!strcmp(name, RUNS_TABLE)) {
		*(int *)ctx = 1;
		return 1;
	}
	return 0;
}

int runs_table_exists(lb_db *db)
{
	int found = 0, rc = lb_tables(db, exists_cb, &found);
	return rc < 0 ? rc : found;
}

void runs_free(run_info *runs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		run_rec_free(&runs[i].first);
		free(runs[i].batches);
		json_decref(runs[i].aside);
	}
	free(runs);
}

int runs_load(lb_db *db, uint64_t want_aside, run_info **out, size_t *nout)
{
	lb_snapshot *s = NULL;
	lb_cursor *c = NULL;
	run_info *runs = NULL;
	size_t n = 0, cap = 0;
	const void *k, *v;
	size_t kl, vl;
	int rc;

	*out = NULL;
	*nout = 0;
	rc = lb_snapshot_open(db, &s);
	if (rc < 0)
		return rc;
	rc = lb_cursor_open(s, RUNS_TABLE, &c);
	if (rc == LB_ENOTFOUND) {
		lb_snapshot_close(s);
		return 0;
	}
	while (rc == 0 && (rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0) {
		run_rec r;
		run_info *ri;
		(void)k;
		(void)kl;
		if (run_rec_parse(v, vl, &r) < 0) {
			run_rec_free(&r);
			continue; /* not ours to judge: skip it */
		}
		ri = n ? &runs[n - 1] : NULL;
		if (!ri || ri->id != r.run) {
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				runs = cli_xrealloc(runs, cap * sizeof *runs);
			}
			ri = &runs[n++];
			memset(ri, 0, sizeof *ri);
			ri->id = r.run;
			if (want_aside == r.run)
				ri->aside = json_array();
		}
		ri->lines += r.lines;
		ri->committed += r.committed;
		ri->set_aside += r.set_aside;
		ri->batches = cli_xrealloc(
		        ri->batches, (ri->nbatches + 1) * sizeof *ri->batches);
		ri->batches[ri->nbatches++] = r.batch;
		ri->last_seq = r.seq;
		ri->last_batch = r.batch;
		ri->next_line = r.next_line;
		ri->next_offset = r.next_offset;
		ri->final = r.final;
		if (ri->aside && r.aside)
			json_array_extend(ri->aside, r.aside);
		if (ri->nbatches == 1) {
			ri->first = r; /* keeps the strings */
		} else {
			run_rec_free(&r);
		}
	}
	lb_cursor_close(c);
	lb_snapshot_close(s);
	if (rc < 0 && rc != LB_ENOTFOUND) {
		runs_free(runs, n);
		return rc;
	}
	*out = runs;
	*nout = n;
	return 0;
}

const char *run_state(const run_info *r)
{
	if (r->final)
		return "done";
	return r->running ? "running" : "interrupted";
}

void runs_ids(sbuf *b, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && ids[j + 1] == ids[j] + 1)
			j++;
		sb_printf(b, "%s%" PRIu64, i ? ", " : "", ids[i]);
		if (j > i)
			sb_printf(b, "%s%" PRIu64, j == i + 1 ? ", " : "-",
			          ids[j]);
		i = j + 1;
	}
}

/* ---- the lock ------------------------------------------------------------ */

static char *lock_path(const char *dir)
{
	size_t n = strlen(dir) + sizeof RUNS_LOCK + 2;
	char *p = cli_xmalloc(n);
	snprintf(p, n, "%s/%s", dir, RUNS_LOCK);
	return p;
}

/* What the lock file says: "run N" and "file F" lines. */
static void lock_read(int fd, uint64_t *run, char *file, size_t flen)
{
	char buf[1024];
	ssize_t got = pread(fd, buf, sizeof buf - 1, 0);
	const char *p;
	*run = 0;
	if (file && flen)
		file[0] = '\0';
	if (got <= 0)
		return;
	buf[got] = '\0';
	if ((p = strstr(buf, "\nrun ")) != NULL)
		*run = strtoull(p + 5, NULL, 10);
	if (file && (p = strstr(buf, "\nfile ")) != NULL) {
		size_t l = strcspn(p + 6, "\n");
		if (l >= flen)
			l = flen - 1;
		memcpy(file, p + 6, l);
		file[l] = '\0';
	}
}

static void holder_text(sbuf *b, int fd, long pid)
{
	uint64_t run;
	char file[512];
	lock_read(fd, &run, file, sizeof file);
	sb_printf(b, "another import is running (process %ld", pid);
	if (file[0])
		sb_printf(b, ", %s", file);
	if (run)
		sb_printf(b, ", run %" PRIu64, run);
	sb_putc(b, ')');
}

int runs_lock(const char *dir, int nowait, int *out)
{
	char *path = lock_path(dir), *data;
	struct flock fl;
	struct stat st;
	int fd;
	*out = -1;
	/* no database there: nothing to lock (opening it says why) */
	data = cli_xmalloc(strlen(dir) + sizeof "/data.mdb");
	sprintf(data, "%s/data.mdb", dir);
	fd = stat(data, &st);
	free(data);
	if (fd != 0 || !S_ISREG(st.st_mode)) {
		free(path);
		return 0;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		int rc = cli_err("%s: %s", path, strerror(errno));
		free(path);
		return rc;
	}
	free(path);
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_SETLK, &fl) < 0) {
		struct flock q = fl;
		sbuf b;
		if (errno != EACCES && errno != EAGAIN) {
			int rc = cli_err("%s: cannot lock: %s", dir,
			                 strerror(errno));
			close(fd);
			return rc;
		}
		sb_init(&b);
		if (fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK)
			holder_text(&b, fd, (long)q.l_pid);
		else
			sb_puts(&b, "another import is running");
		if (nowait) {
			cli_err("%s: %s; not waiting (--no-wait)", dir,
			        sb_str(&b));
			sb_free(&b);
			close(fd);
			return CLI_FAIL;
		}
		cli_err("%s: %s; waiting for it to end (--no-wait fails "
		        "instead)",
		        dir, sb_str(&b));
		sb_free(&b);
		while (fcntl(fd, F_SETLKW, &fl) < 0) {
			if (errno == EINTR && !runs_stop)
				continue;
			close(fd);
			if (errno == EINTR) {
				cli_err("%s: interrupted while waiting for "
				        "the other import; nothing written",
				        dir);
				return 130;
			}
			return cli_err("%s: cannot lock: %s", dir,
			               strerror(errno));
		}
	}
	*out = fd;
	return 0;
}

void runs_lock_note(int fd, uint64_t run, const char *file)
{
	char buf[1024];
	int n;
	if (fd < 0)
		return;
	n = snprintf(buf, sizeof buf, "pid %ld\nrun %" PRIu64 "\nfile %s\n",
	             (long)getpid(), run, file);
	if (n < 0)
		return;
	if (n >= (int)sizeof buf)
		n = (int)sizeof buf - 1;
	if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) < 0)
		return; /* only a courtesy to whoever waits */
}

int runs_holder(const char *dir, long *pid, uint64_t *run)
{
	char *path = lock_path(dir);
	struct flock q;
	int fd = open(path, O_RDONLY | O_CLOEXEC), held = 0;
	free(path);
	*pid = 0;
	*run = 0;
	if (fd < 0)
		return 0;
	memset(&q, 0, sizeof q);
	q.l_type = F_WRLCK;
	q.l_whence = SEEK_SET;
	if (fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK) {
		held = 1;
		*pid = (long)q.l_pid;
		lock_read(fd, run, NULL, 0);
	}
	close(fd);
	return held;
}

/* ---- content hash -------------------------------------------------------- */

int runs_sha256(int fd, char hex[65], uint64_t *size)
{
	enum { CHUNK = 1 << 20 };
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *buf = cli_xmalloc(CHUNK), md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	uint64_t total = 0;
	off_t off = 0;
	int rc = 0;
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		free(buf);
		errno = ENOMEM;
		return -1;
	}
	for (;;) {
		ssize_t got = pread(fd, buf, CHUNK, off);
		if (runs_stop) {
			rc = 1;
			break;
		}
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = -1;
			break;
		}
		if (got == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)got);
		off += got;
		total += (uint64_t)got;
	}
	if (rc == 0) {
		EVP_DigestFinal_ex(ctx, md, &mdlen);
		for (unsigned i = 0; i < mdlen && i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", md[i]);
		hex[64] = '\0';
		*size = total;
	}
	EVP_MD_CTX_free(ctx);
	free(buf);
	return rc;
}

/* ---- logbook runs -------------------------------------------------------- */

static void run_json(sbuf *b, const run_info *r)
{
	const run_rec *f = &r->first;
	sb_printf(b, "{\"run\":%" PRIu64 ",\"file\":", r->id);
	jw_cstr(b, f->file ? f->file : "");
	sb_puts(b, ",\"sha256\":");
	if (f->sha256[0])
		jw_cstr(b, f->sha256);
	else
		sb_puts(b, "null");
	sb_printf(b, ",\"size\":%" PRIu64 ",\"started\":\"", f->size);
	cli_time(b, f->started_ns);
	sb_printf(b, "\",\"started_ns\":%" PRId64 ",\"mode\":", f->started_ns);
	jw_cstr(b, f->mode ? f->mode : "insert");
	sb_puts(b, ",\"on_error\":");
	jw_cstr(b, f->on_error ? f->on_error : "batch");
	sb_puts(b, ",\"table\":");
	jw_cstr_or_null(b, f->table);
	sb_printf(b,
	          ",\"from_rejects\":%s,\"allow_repeats\":%s,\"lines\":%" PRIu64
	          ",\"committed\":%" PRIu64 ",\"set_aside\":%" PRIu64
	          ",\"state\":\"%s\",\"next_line\":",
	          f->from_rejects ? "true" : "false",
	          f->allow_repeats ? "true" : "false", r->lines, r->committed,
	          r->set_aside, run_state(r));
	if (r->final)
		sb_puts(b, "null");
	else
		jw_u64(b, r->next_line);
	sb_puts(b, ",\"batches\":[");
	for (size_t i = 0; i < r->nbatches; i++)
		sb_printf(b, "%s%" PRIu64, i ? "," : "", r->batches[i]);
	sb_puts(b, "]}\n");
}

int cmd_runs(int argc, char **argv)
{
	const char *pos[1];
	size_t np, n = 0;
	run_info *runs = NULL;
	uint64_t hrun = 0;
	long pid = 0;
	lb_db *db;
	sbuf b;
	int rc, held;

	rc = cli_parse(argc, argv, NULL, 0, pos, 1, 1, &np);
	if (rc)
		return rc;
	rc = cli_open(pos[0], 1, 0, &db);
	if (rc)
		return rc;
	rc = runs_load(db, 0, &runs, &n);
	lb_close(db);
	if (rc < 0)
		return cli_lberr(rc, "%s: cannot read the runs", pos[0]);
	held = runs_holder(pos[0], &pid, &hrun);
	for (size_t i = 0; i < n; i++)
		runs[i].running = held && hrun == runs[i].id;
	sb_init(&b);
	if (cli_json) {
		for (size_t i = 0; i < n; i++)
			run_json(&b, &runs[i]);
	} else if (!n) {
		sb_printf(&b, "no import runs recorded in %s\n", pos[0]);
	} else {
		sb_printf(&b,
		          "%6s  %-11s  %-24s  %10s  %10s  %9s  %9s  %-12s  "
		          "%s\n",
		          "RUN", "STATE", "STARTED", "LINES", "COMMITTED",
		          "SET ASIDE", "NEXT LINE", "SHA256", "FILE / BATCHES");
		for (size_t i = 0; i < n; i++) {
			const run_info *r = &runs[i];
			sb_printf(&b, "%6" PRIu64 "  %-11s  ", r->id,
			          run_state(r));
			cli_time(&b, r->first.started_ns);
			sb_printf(&b,
			          "  %10" PRIu64 "  %10" PRIu64 "  %9" PRIu64
			          "  ",
			          r->lines, r->committed, r->set_aside);
			if (r->final)
				sb_printf(&b, "%9s  ", "-");
			else
				sb_printf(&b, "%9" PRIu64 "  ", r->next_line);
			sb_printf(&b, "%-12.12s  %s  batches ",
			          r->first.sha256[0] ? r->first.sha256 : "-",
			          r->first.file ? r->first.file : "?");
			runs_ids(&b, r->batches, r->nbatches);
			sb_putc(&b, '\n');
		}
	}
	sb_flush(&b, stdout);
	sb_free(&b);
	runs_free(runs, n);
	return 0;
}

/* ---- logbook rollback --run ---------------------------------------------- */

static int has_id(const uint64_t *ids, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

static void issues_out(sbuf *b, const lb_result *res, const uint64_t *ids,
                       size_t n, int all)
{
	for (size_t i = 0; i < res->nissues; i++) {
		const lb_issue *is = &res->issues[i];
		if (!all && is->batch && has_id(ids, n, is->batch))
			continue;
		if (cli_json) {
			if (b->len && b->p[b->len - 1] != '[')
				sb_putc(b, ',');
			cli_issue_fmt(b, 0, cli_issue_kind(is->kind), is->table,
			              is->key, is->klen, is->field, is->message,
			              is->batch);
			continue;
		}
		sb_puts(b, is->kind == LB_ISSUE_CONFLICT ? "conflict: "
		                                         : "issue: ");
		sb_printf(b, "%s ", is->table ? is->table : "?");
		cli_key_human(b, is->key, is->klen);
		if (is->kind == LB_ISSUE_CONFLICT && is->batch)
			sb_printf(b, " was changed by batch %" PRIu64,
			          is->batch);
		else if (is->message)
			sb_printf(b, ": %s", is->message);
		sb_putc(b, '\n');
	}
}

typedef struct rbrun {
	const run_info *r;
	int dry, cascade;
	const char *method;
	uint64_t *newb; /* new batches written */
	size_t nnew;
	uint64_t *undone; /* batches undone, newest first */
	size_t nundone;
	uint64_t records;
	int rc;         /* the library's answer that stopped it, or 0 */
	lb_result fail; /* its result */
} rbrun;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* "undid batches 5-9, 12" (any order in, ranges out). */
static void undone_line(sbuf *b, const char *what, const uint64_t *ids,
                        size_t n)
{
	uint64_t *s;
	if (!n)
		return;
	s = cli_xmalloc(n * sizeof *s);
	memcpy(s, ids, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_u64);
	sb_printf(b, "%s batch%s ", what, n == 1 ? "" : "es");
	runs_ids(b, s, n);
	sb_putc(b, '\n');
	free(s);
}

static void add_ids(uint64_t **ids, size_t *n, const uint64_t *add, size_t k)
{
	if (!k)
		return;
	*ids = cli_xrealloc(*ids, (*n + k) * sizeof **ids);
	memcpy(*ids + *n, add, k * sizeof **ids);
	*n += k;
}

static int rb_report(rbrun *x, const char *dir)
{
	const run_info *r = x->r;
	const char *file = r->first.file ? r->first.file : "?";
	sbuf b;
	sb_init(&b);
	if (cli_json) {
		sb_printf(&b, "{\"success\":%s,\"run\":%" PRIu64 ",\"file\":",
		          x->rc == 0 ? "true" : "false", r->id);
		jw_cstr(&b, file);
		sb_printf(&b, ",\"dry_run\":%s,\"method\":\"%s\",\"batches\":[",
		          x->dry ? "true" : "false", x->method);
		for (size_t i = 0; i < r->nbatches; i++)
			sb_printf(&b, "%s%" PRIu64, i ? "," : "",
			          r->batches[i]);
		sb_puts(&b, "],\"new_batches\":[");
		for (size_t i = 0; i < x->nnew; i++)
			sb_printf(&b, "%s%" PRIu64, i ? "," : "", x->newb[i]);
		sb_puts(&b, "],\"undone\":[");
		for (size_t i = 0; i < x->nundone; i++)
			sb_printf(&b, "%s%" PRIu64, i ? "," : "", x->undone[i]);
		sb_puts(&b, "],\"records\":");
		jw_u64(&b, x->records);
		sb_puts(&b, ",\"error\":");
		if (x->rc == 0)
			sb_puts(&b, "null");
		else
			jw_cstr(&b, x->rc == LB_ECONFLICT     ? "conflict"
			            : x->rc == LB_EVALIDATION ? "validation"
			                                      : "error");
		sb_puts(&b, ",\"issues\":[");
		issues_out(&b, &x->fail, r->batches, r->nbatches, 0);
		sb_puts(&b, "]}\n");
		sb_flush(&b, stdout);
		sb_free(&b);
	} else {
		if (x->rc == 0 && x->dry) {
			sb_printf(&b,
			          "rollback of run %" PRIu64 " (%s, batches ",
			          r->id, file);
			runs_ids(&b, r->batches, r->nbatches);
			sb_printf(&b,
			          ") would write %" PRIu64
			          " record%s in one batch; no conflicts (dry "
			          "run)\n",
			          x->records, x->records == 1 ? "" : "s");
			undone_line(&b, "would undo", x->undone, x->nundone);
		} else if (x->nnew) {
			sb_printf(&b,
			          "rolled back run %" PRIu64
			          " (%s) in batch %" PRIu64 " (%" PRIu64
			          " record%s)\n",
			          r->id, file, x->newb[0], x->records,
			          x->records == 1 ? "" : "s");
			undone_line(&b, "undid", x->undone, x->nundone);
		}
		issues_out(&b, &x->fail, r->batches, r->nbatches, 0);
		sb_flush(&b, stdout);
		sb_free(&b);
	}
	if (x->rc == 0)
		return 0;
	sb_init(&b);
	sb_printf(&b, "run %" PRIu64 " %s; nothing %swritten", r->id,
	          x->rc == LB_ECONFLICT
	                  ? "has keys changed by later batches outside the "
	                    "run"
	          : x->rc == LB_EVALIDATION ? "cannot be undone: foreign keys"
	                                    : lb_strerror(x->rc),
	          x->dry ? "would be " : "");
	if (x->rc == LB_ECONFLICT && !x->cascade)
		sb_puts(&b, ". Use --cascade to also roll back the batches "
		            "depending on the run");
	(void)dir;
	cli_err("%s", sb_str(&b));
	sb_free(&b);
	return x->rc == LB_ECONFLICT || x->rc == LB_EVALIDATION ? CLI_DATA
	                                                        : CLI_FAIL;
}

/* The whole run in one lb_rollback_set(): one new batch or nothing. */
static int rollback_all(lb_db *db, rbrun *x)
{
	const run_info *r = x->r;
	unsigned flags =
	        (x->cascade ? LB_CASCADE : 0) | (x->dry ? LB_DRYRUN : 0);
	lb_result res;
	int rc;
	x->method = "one batch";
	memset(&res, 0, sizeof res);
	rc = lb_rollback_set(db, r->batches, r->nbatches, flags, &res);
	if (rc == LB_EVALIDATION || rc == LB_ECONFLICT) {
		x->rc = rc;
		x->fail = res;
		return 0;
	}
	if (rc < 0) {
		lb_result_free(&res);
		return rc;
	}
	x->records = res.records;
	if (res.batch_id)
		add_ids(&x->newb, &x->nnew, &res.batch_id, 1);
	add_ids(&x->undone, &x->nundone, res.undone, res.nundone);
	lb_result_free(&res);
	return 0;
}

int cmd_rollback_run(int argc, char **argv)
{
	cli_opt o[] = {{"run", 1, NULL},
	               {"cascade", 0, NULL},
	               {"dry-run", 0, NULL},
	               {"no-wait", 0, NULL}};
	const char *pos[1];
	size_t np, n = 0;
	uint64_t id;
	run_info *runs = NULL, *r = NULL;
	rbrun x;
	lb_db *db = NULL;
	int rc, fd = -1;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	if (rc)
		return rc;
	if ((rc = cli_u64("--run", CLI_OPT(o, "run"), 1, UINT64_MAX, &id)))
		return rc;
	memset(&x, 0, sizeof x);
	x.dry = CLI_OPT(o, "dry-run") != NULL;
	x.cascade = CLI_OPT(o, "cascade") != NULL;
	/* no import may go on meanwhile (it would add batches); taken
	 * before opening, which would wait for its open batch unsaid */
	rc = runs_lock(pos[0], CLI_OPT(o, "no-wait") != NULL, &fd);
	if (rc)
		return rc;
	rc = cli_open(pos[0], 0, 0, &db);
	if (rc) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	rc = runs_load(db, 0, &runs, &n);
	if (rc < 0) {
		rc = cli_lberr(rc, "%s: cannot read the runs", pos[0]);
		goto out;
	}
	for (size_t i = 0; i < n && !r; i++)
		if (runs[i].id == id)
			r = &runs[i];
	if (!r) {
		rc = cli_err("%s: no run %" PRIu64
		             " with a standing batch (see 'logbook runs')",
		             pos[0], id);
		goto out;
	}
	x.r = r;
	rc = rollback_all(db, &x);
	if (rc < 0) {
		rc = cli_lberr(rc, "cannot roll back run %" PRIu64, id);
		goto out;
	}
	rc = rb_report(&x, pos[0]);
out:
	lb_result_free(&x.fail);
	free(x.newb);
	free(x.undone);
	runs_free(runs, n);
	if (fd >= 0)
		close(fd);
	lb_close(db);
	return rc;
}
