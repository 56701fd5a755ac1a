/* SPDX-License-Identifier: MIT */
/*
 * main.c: logbook-bench's driver.
 *
 * Order of work, and why:
 *  1. Configuration and environment are printed before anything runs, so a
 *     table is never read without its warnings.
 *  2. The rss phase runs first, while this process is still small: each
 *     measurement is a forked child that generates the workload batch by
 *     batch (same generator, same records for that batch size) and commits
 *     it into a fresh store, then reports getrusage's ru_maxrss. A child
 *     starts with its parent's resident pages, so forking before the
 *     workload exists keeps them out of the figure; the child's RSS when the
 *     commit starts is reported too, and the highest RssAnon (heap and
 *     LMDB's dirty pages, without the mapped data file) sampled after each
 *     batch commit.
 *  3. The workload is generated once; every system is fed those records.
 *  4. R runs; within a run every system runs in turn on its own fresh
 *     directory (systems interleaved, so slow drift of the machine touches
 *     them alike). Medians over the runs are reported. Before each turn
 *     and after each commit phase, what is dirty in the page cache is
 *     written back (bk_settle), outside every clock: otherwise the kernel's
 *     writeback of files written earlier runs during a later phase, of the
 *     same system or the next, and takes the second processor and the disk
 *     from it. The copies the rollback phases run on are not written back:
 *     the commits those phases are compared with write into the pages of a
 *     file being written, dirty in the page cache, and writing into pages
 *     written back costs more (each is dirtied again), so a rollback on a
 *     written-back copy would not be measured like its commit.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const bk_system *system_of(int id)
{
	switch (id) {
	case SYS_LOGBOOK:
	case SYS_SCHEMA:
		return &bk_sys_logbook;
	case SYS_NAIVE:
		return &bk_sys_naive;
	case SYS_SQLITE:
		return &bk_sys_sqlite;
	case SYS_LMDB:
		return &bk_sys_lmdb;
	}
	return NULL;
}

int bk_commit_all(const bk_system *s, void *h, const bk_workload *w,
                  bk_run *out, bk_after_fn after, void *ctx)
{
	double total = 0, cpu = 0;
	uint64_t mid = w->mid, half = w->nbatches / 2;
	double *late = malloc((w->nbatches - half) * sizeof *late);
	size_t nlate = 0;
	if (!late)
		bk_die("out of memory");
	for (uint64_t i = 0; i < w->nbatches; i++) {
		bk_batch b = bk_workload_batch(w, i);
		double c0 = bk_cpu_now(), t0 = bk_now();
		int rc = s->commit(h, &b);
		double dt = bk_now() - t0;
		cpu += bk_cpu_now() - c0;
		if (rc != 0) {
			free(late);
			return rc;
		}
		total += dt;
		if (i >= half)
			late[nlate++] = dt;
		if (i == mid)
			out->mid_batch_secs = dt;
		if (i + 1 == w->nbatches) {
			out->last_batch_secs = dt;
			out->last_batch_recs = b.n;
		}
		if (after && after(h, i, ctx) != 0) {
			free(late);
			return -1;
		}
	}
	out->late_batch_secs = bk_median(late, nlate);
	free(late);
	bk_meas_set(&out->ph[PH_COMMIT], total, w->n, w->user_bytes);
	out->ph[PH_COMMIT].cpu = cpu;
	bk_settle(); /* the phases after the commit do not pay for its pages */
	return 0;
}

typedef struct rss_msg {
	int rc;
	long maxrss, base, anon;
	double secs;
	char err[160];
} rss_msg;

/* The child's side of one rss measurement. Never returns. */
static void rss_child(const bk_cfg *cfg, int sys, const char *dir,
                      uint64_t bsize, int fd)
{
	rss_msg m;
	memset(&m, 0, sizeof m);
	const bk_system *s = system_of(sys);
	bk_gen g;
	void *h = NULL;
	bk_gen_init(&g, cfg, bsize);
	m.base = bk_rss_now_kib();
	m.rc = s->open(cfg, dir, sys == SYS_SCHEMA, &h);
	if (m.rc != 0)
		snprintf(m.err, sizeof m.err, "open failed (%d)", m.rc);
	while (m.rc == 0) {
		bk_batch b;
		bk_gen_next(&g, bsize, &b);
		if (b.n == 0)
			break;
		double t0 = bk_now();
		m.rc = s->commit(h, &b);
		m.secs += bk_now() - t0;
		long anon = bk_rss_anon_kib();
		if (anon > m.anon)
			m.anon = anon;
		if (m.rc != 0)
			snprintf(m.err, sizeof m.err, "commit failed (%d)",
			         m.rc);
	}
	if (h)
		s->close(h);
	m.maxrss = bk_maxrss_kib();
	if (write(fd, &m, sizeof m) != (ssize_t)sizeof m)
		_exit(3);
	_exit(0);
}

static void measure_rss(const bk_cfg *cfg, const char *scratch, bk_results *res)
{
	for (int sys = 0; sys < SYS__COUNT; sys++) {
		if (!(cfg->systems & 1u << sys) ||
		    !(system_of(sys)->phases & 1u << PH_RSS))
			continue;
		for (int k = 0; k < 2; k++) {
			uint64_t bsize = cfg->rss_batches[k];
			if (!bsize)
				continue;
			char name[64];
			snprintf(name, sizeof name, "rss-%s-%llu",
			         bk_sys_name(sys), (unsigned long long)bsize);
			char *dir = bk_path(scratch, name);
			bk_progress(cfg, "rss: %s, batches of %llu...\n",
			            bk_sys_name(sys),
			            (unsigned long long)bsize);
			int p[2];
			if (pipe(p) != 0)
				bk_die("pipe: %s", strerror(errno));
			fflush(NULL);
			pid_t pid = fork();
			if (pid < 0)
				bk_die("fork: %s", strerror(errno));
			if (pid == 0) {
				close(p[0]);
				rss_child(cfg, sys, dir, bsize, p[1]);
			}
			close(p[1]);
			rss_msg m;
			ssize_t n = read(p[0], &m, sizeof m);
			close(p[0]);
			int st;
			waitpid(pid, &st, 0);
			if (n == (ssize_t)sizeof m && m.rc == 0) {
				res->rss[sys].kib[k] = m.maxrss;
				res->rss[sys].base_kib[k] = m.base;
				res->rss[sys].anon_kib[k] = m.anon;
				res->rss[sys].secs[k] = m.secs;
				res->have_rss[sys] |= 1 << k;
			} else {
				snprintf(res->rss_err[sys],
				         sizeof res->rss_err[sys],
				         "batches of %llu: %.150s",
				         (unsigned long long)bsize,
				         n == (ssize_t)sizeof m ? m.err
				                                : "no report");
			}
			bk_rmrf(dir);
			free(dir);
		}
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double bk_median(double *v, size_t n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof v[0], cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bk_median_secs(const bk_results *r, int sys, int ph)
{
	double v[100];
	unsigned n = 0;
	if (!r->runs[sys])
		return NAN;
	for (unsigned i = 0; i < r->cfg->runs; i++) {
		const bk_meas *m = &r->runs[sys][i].ph[ph];
		if (m->done && !m->failed)
			v[n++] = m->secs;
	}
	return bk_median(v, n);
}

static char *make_scratch(const bk_cfg *cfg)
{
	const char *parent = cfg->dir;
	if (!parent)
		parent = getenv("TMPDIR");
	if (!parent || !*parent)
		parent = "/tmp";
	if (bk_mkdir(parent) != 0)
		bk_die("cannot create %s: %s", parent, strerror(errno));
	char *t = bk_path(parent, "logbook-bench-XXXXXX");
	if (!mkdtemp(t))
		bk_die("mkdtemp %s: %s", t, strerror(errno));
	return t;
}

int main(int argc, char **argv)
{
	bk_cfg cfg;
	bk_results res;
	bk_workload w;
	bk_options_parse(argc, argv, &cfg);
	memset(&res, 0, sizeof res);
	res.cfg = &cfg;
	res.w = &w;

	/* With --json and no file, stdout carries only the JSON. */
	FILE *text = cfg.json && !cfg.json_file ? stderr : stdout;
	char *scratch = make_scratch(&cfg);
	cfg.dir = scratch;
	bk_report_config(text, &cfg);
	fflush(text);

	if (cfg.phases & 1u << PH_RSS)
		measure_rss(&cfg, scratch, &res);

	bk_progress(&cfg, "generating %llu records...\n",
	            (unsigned long long)cfg.records);
	double t0 = bk_now();
	bk_workload_make(&cfg, &w);
	res.gen_secs = bk_now() - t0;

	for (int sys = 0; sys < SYS__COUNT; sys++)
		if (cfg.systems & 1u << sys)
			res.runs[sys] = calloc(cfg.runs, sizeof(bk_run));
	for (unsigned r = 0; r < cfg.runs; r++) {
		for (int sys = 0; sys < SYS__COUNT; sys++) {
			if (!(cfg.systems & 1u << sys))
				continue;
			const bk_system *s = system_of(sys);
			char name[64];
			snprintf(name, sizeof name, "%s-%u", bk_sys_name(sys),
			         r + 1);
			char *dir = bk_path(scratch, name);
			if (bk_mkdir(dir) != 0)
				bk_die("mkdir %s: %s", dir, strerror(errno));
			bk_ctx c = {&cfg, &w, dir, sys == SYS_SCHEMA,
			            cfg.phases & s->phases};
			bk_progress(&cfg, "run %u/%u: %s...\n", r + 1, cfg.runs,
			            bk_sys_name(sys));
			bk_settle();
			s->run(&c, &res.runs[sys][r]);
			const bk_meas *cm = &res.runs[sys][r].ph[PH_COMMIT];
			if (cm->done)
				bk_progress(&cfg, "  commit %.0f rec/s\n",
				            (double)cm->count / cm->secs);
			if (!cfg.keep)
				bk_rmrf(dir);
			free(dir);
		}
	}
	res.maxrss_kib = bk_maxrss_kib();

	bk_report_table(text, &res);
	bk_report_goals(text, &res);
	fflush(text);
	if (cfg.json) {
		FILE *f = stdout;
		if (cfg.json_file && !(f = fopen(cfg.json_file, "w")))
			bk_die("%s: %s", cfg.json_file, strerror(errno));
		bk_report_json(f, &res);
		if (f != stdout && fclose(f) != 0)
			bk_die("%s: write failed", cfg.json_file);
	}
	if (cfg.svg_file) {
		FILE *f = fopen(cfg.svg_file, "w");
		if (!f)
			bk_die("%s: %s", cfg.svg_file, strerror(errno));
		bk_report_svg(f, &res);
		if (fclose(f) != 0)
			bk_die("%s: write failed", cfg.svg_file);
	}
	if (!cfg.keep)
		bk_rmrf(scratch);
	else
		fprintf(text, "kept %s\n", scratch);
	free(scratch);
	/* Exit 1 when a phase failed or a store returned wrong values, so
	 * that a smoke run in CI catches it. */
	int bad = 0;
	for (int sys = 0; sys < SYS__COUNT; sys++) {
		for (unsigned r = 0; res.runs[sys] && r < cfg.runs; r++)
			for (int ph = 0; ph < PH__COUNT; ph++) {
				const bk_meas *m = &res.runs[sys][r].ph[ph];
				bad |= m->failed || strstr(m->note, "WRONG") ||
				       strstr(m->note, "scan saw");
			}
		bad |= res.rss_err[sys][0] != 0;
		free(res.runs[sys]);
	}
	bk_workload_free(&w);
	return bad ? 1 : 0;
}
