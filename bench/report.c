/* SPDX-License-Identifier: MIT */
/*
 * report.c: what logbook-bench prints. First the configuration and the
 * environment with loud warnings (unoptimised or sanitized build, scratch
 * directory on tmpfs), then one table of phase x system with medians and
 * the ratio to raw LMDB, then the goals of the bench's issue as PASS/MISS,
 * and on request the same as JSON (written by hand: no extra library).
 */
#define _GNU_SOURCE
#include "bench.h"

#include <lmdb.h>
#include <logbook.h>
#include <math.h>
#include <msgpack.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <zlib.h>

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

#if defined(__SANITIZE_ADDRESS__)
#define BK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BK_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define BK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BK_TSAN 1
#endif
#endif
#if defined(__has_feature)
#if __has_feature(undefined_behavior_sanitizer)
#define BK_UBSAN 1
#endif
#endif

#ifdef LB_BENCH_CFLAGS
static const char build_flags[] = LB_BENCH_CFLAGS;
#else
static const char build_flags[] = "(not passed by the build)";
#endif

/* ---- environment ------------------------------------------------------ */

static void cpu_model(char *out, size_t n)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	snprintf(out, n, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "model name", 10)) {
			char *p = strchr(line, ':');
			if (p) {
				p++;
				while (*p == ' ' || *p == '\t')
					p++;
				p[strcspn(p, "\n")] = 0;
				snprintf(out, n, "%s", p);
			}
			break;
		}
	}
	fclose(f);
}

static const char *sanitizers(void)
{
	static char s[64];
	s[0] = 0;
#ifdef BK_ASAN
	strcat(s, "address ");
#endif
#ifdef BK_TSAN
	strcat(s, "thread ");
#endif
#ifdef BK_UBSAN
	strcat(s, "undefined ");
#endif
	if (!s[0])
		return "none";
	s[strlen(s) - 1] = 0;
	return s;
}

static int optimized(void)
{
#ifdef __OPTIMIZE__
	return 1;
#else
	return 0;
#endif
}

static int on_tmpfs(const char *dir)
{
	struct statfs sf;
	return statfs(dir, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

/* The 1-minute load average, or -1. */
static double loadavg(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

static const char *compiler(void)
{
#if defined(__clang__)
	return "clang " __clang_version__;
#elif defined(__GNUC__)
	return "gcc " __VERSION__;
#else
	return "unknown";
#endif
}

static const char *keys_name(const bk_cfg *cfg)
{
	return cfg->keys_random ? "random (W2)" : "seq (W1)";
}

void bk_report_config(FILE *f, const bk_cfg *cfg)
{
	char cpu[256];
	struct utsname u;
	cpu_model(cpu, sizeof cpu);
	if (uname(&u) != 0)
		memset(&u, 0, sizeof u);
	uint64_t nb = (cfg->records + cfg->batch_size - 1) / cfg->batch_size;

	fprintf(f, "logbook-bench (liblogbook %s, format %d)\n",
	        lb_version(NULL, NULL, NULL), LB_FORMAT_VERSION);
	if (!optimized())
		fputs("\n"
		      "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
		      "!!!!!!!!!!!!!!!!!!!!!!\n"
		      "!!! WARNING: built WITHOUT optimisation (__OPTIMIZE__ "
		      "undefined).          !!!\n"
		      "!!! These figures say nothing about logbook's speed. "
		      "Rebuild with -O2.      !!!\n"
		      "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
		      "!!!!!!!!!!!!!!!!!!!!!!\n\n",
		      f);
	if (strcmp(sanitizers(), "none"))
		fprintf(f,
		        "\n!!! WARNING: built with sanitizers (%s): figures "
		        "are NOT representative !!!\n\n",
		        sanitizers());
#ifndef NDEBUG
	fputs("note: assertions are enabled in logbook-bench (NDEBUG not "
	      "defined)\n",
	      f);
#endif
	if (on_tmpfs(cfg->dir))
		fputs("WARNING: the scratch directory is on tmpfs: nothing "
		      "reaches a disk, --sync is meaningless\n",
		      f);
	fprintf(f,
	        "workload  %llu records in %llu batches of %llu; keys %s; "
	        "values %u..%u B;\n"
	        "          %u%% updates of earlier keys per batch; "
	        "splitmix64 seed %llu\n",
	        (unsigned long long)cfg->records, (unsigned long long)nb,
	        (unsigned long long)cfg->batch_size, keys_name(cfg),
	        cfg->value_size - 25, cfg->value_size + 25, cfg->update_pct,
	        (unsigned long long)cfg->seed);
	fprintf(f,
	        "engine    %s; zlib level %d (logbook and naive log); "
	        "segment size %s%zu\n",
	        cfg->sync ? "sync (fsync per commit)" : "nosync",
	        cfg->compression, cfg->segment_size ? "" : "engine default ",
	        cfg->segment_size);
	fprintf(f, "run       %u run%s, medians; systems:", cfg->runs,
	        cfg->runs > 1 ? "s" : "");
	for (int s = 0; s < SYS__COUNT; s++)
		if (cfg->systems & 1u << s)
			fprintf(f, " %s", bk_sys_name(s));
	fprintf(f, "; point reads %llu\n", (unsigned long long)cfg->reads);
	fprintf(f, "dir       %s%s\n", cfg->dir,
	        cfg->keep ? " (kept)" : " (removed afterwards)");
	fprintf(f, "cpu       %s; %ld cores online\n", cpu,
	        sysconf(_SC_NPROCESSORS_ONLN));
	fprintf(f, "os        %s %s %s; load average %.2f\n", u.sysname,
	        u.release, u.machine, loadavg());
	if (loadavg() > 0.5)
		fputs("WARNING: the machine is busy (load average above 0.5): "
		      "expect noisy figures\n",
		      f);
	fprintf(f, "build     %s; optimised: %s; sanitizers: %s\n", compiler(),
	        optimized() ? "yes" : "NO", sanitizers());
	fprintf(f, "flags     %s\n", build_flags);
	fprintf(f,
	        "libraries lmdb %d.%d.%d, sqlite %s, zlib %s, msgpack-c "
	        "%s\n",
	        MDB_VERSION_MAJOR, MDB_VERSION_MINOR, MDB_VERSION_PATCH,
	        sqlite3_libversion(), zlibVersion(), msgpack_version());
	fputc('\n', f);
}

/* ---- table ------------------------------------------------------------ */

enum unit { U_RATE, U_MBS, U_MS, U_S, U_MB, U_MIB, U_RATIO };

typedef struct row {
	const char *label, *unit_name;
	int ph; /* phase, or -1 for derived rows */
	enum unit unit;
	int which; /* derived rows: which figure */
	/* or a figure of each run, whose median the row shows */
	double (*get)(const bk_run *);
} row;

enum {
	D_LOG_RATIO = 1,
	D_LOG_IMAGES,
	D_RSS0,
	D_RSS1,
	D_ANON0,
	D_ANON1,
};

static double median_of(const bk_results *r, int sys,
                        double (*get)(const bk_run *))
{
	double v[100];
	unsigned n = 0;
	if (!r->runs[sys])
		return NAN;
	for (unsigned i = 0; i < r->cfg->runs; i++) {
		double x = get(&r->runs[sys][i]);
		if (!isnan(x))
			v[n++] = x;
	}
	return bk_median(v, n);
}

static double g_last(const bk_run *r)
{
	return r->ph[PH_COMMIT].done ? r->last_batch_secs : NAN;
}
/* A time measured only by some runs and systems: 0 when it was not. */
static double measured(double secs)
{
	return secs > 0 ? secs : NAN;
}
static double g_last_fresh(const bk_run *r)
{
	return measured(r->last_batch_fresh_secs);
}
static double g_late(const bk_run *r)
{
	return r->ph[PH_COMMIT].done ? r->late_batch_secs : NAN;
}
static double g_rb_loop(const bk_run *r)
{
	return measured(r->rb_loop_secs);
}
static double g_rb_loop_commit(const bk_run *r)
{
	return measured(r->rb_loop_commit_secs);
}
static double g_rb_fresh(const bk_run *r)
{
	return measured(r->rb_fresh_secs);
}
static double g_rb_fresh_commit(const bk_run *r)
{
	return measured(r->rb_fresh_commit_secs);
}
static double g_cpu(const bk_run *r)
{
	const bk_meas *m = &r->ph[PH_COMMIT];
	return m->done && !m->failed && m->cpu > 0 ? (double)m->count / m->cpu
	                                           : NAN;
}
static double g_follow_cpu(const bk_run *r)
{
	const bk_meas *m = &r->ph[PH_FOLLOW];
	return m->done && !m->failed && m->cpu > 0 ? (double)m->count / m->cpu
	                                           : NAN;
}
static double g_disk(const bk_run *r)
{
	return r->ph[PH_COMMIT].done ? (double)r->disk_bytes : NAN;
}
static double g_raw(const bk_run *r)
{
	return r->has_log ? (double)r->log_raw : NAN;
}
static double g_stored(const bk_run *r)
{
	return r->has_log ? (double)r->log_stored : NAN;
}

static const row rows[] = {
        {"commit", "rec/s", PH_COMMIT, U_RATE, 0},
        {"commit", "MB/s", PH_COMMIT, U_MBS, 0},
        {"commit per CPU second", "rec/s", -1, U_RATE, 0, g_cpu},
        {"commit, last batch", "ms", -1, U_MS, 0, g_last},
        {"commit last, fresh open", "ms", -1, U_MS, 0, g_last_fresh},
        {"rollback last batch", "ms", PH_RB_LAST, U_MS, 0},
        {"rollback last batch", "rec/s", PH_RB_LAST, U_RATE, 0},
        {"commit, median of 2nd half", "ms", -1, U_MS, 0, g_late},
        {"rollback last, repeated", "ms", -1, U_MS, 0, g_rb_loop},
        {"commit last again, repeated", "ms", -1, U_MS, 0, g_rb_loop_commit},
        {"rollback last, reopened", "ms", -1, U_MS, 0, g_rb_fresh},
        {"commit last again, reopened", "ms", -1, U_MS, 0, g_rb_fresh_commit},
        {"rollback middle, strict", "ms", PH_RB_MID, U_MS, 0},
        {"rollback middle, force", "ms", PH_RB_FORCE, U_MS, 0},
        {"rollback middle, force", "rec/s", PH_RB_FORCE, U_RATE, 0},
        {"rollback middle, cascade", "ms", PH_CASCADE, U_MS, 0},
        {"rollback middle, cascade", "rec/s", PH_CASCADE, U_RATE, 0},
        {"rollback-to middle", "ms", PH_RB_TO, U_MS, 0},
        {"rollback-to middle", "rec/s", PH_RB_TO, U_RATE, 0},
        {"checkpoint", "ms", PH_CHECKPOINT, U_MS, 0},
        {"replay from empty", "rec/s", PH_REPLAY, U_RATE, 0},
        {"replay from empty", "s", PH_REPLAY, U_S, 0},
        {"replay from checkpoint", "rec/s", PH_REPLAY_CKPT, U_RATE, 0},
        {"verify", "rec/s", PH_VERIFY, U_RATE, 0},
        {"verify + replay", "rec/s", PH_VERIFY_RPL, U_RATE, 0},
        {"point reads", "get/s", PH_GET, U_RATE, 0},
        {"cursor scan", "rec/s", PH_SCAN, U_RATE, 0},
        {"get as of last 1%", "get/s", PH_ASOF, U_RATE, 0},
        {"get as of, key changed since", "get/s", PH_ASOF_CHG, U_RATE, 0},
        {"feed (lb_changes)", "rec/s", PH_FEED, U_RATE, 0},
        {"scan as of last 1%", "rec/s", PH_EXPORT_ASOF, U_RATE, 0},
        {"lb_wait wake-up, other process", "ms", PH_WAIT, U_MS, 0},
        {"lb_wait idle 2 s, CPU", "ms", PH_IDLE, U_MS, 0},
        {"follower apply (frames)", "rec/s", PH_FOLLOW, U_RATE, 0},
        {"follower apply per CPU s", "rec/s", -1, U_RATE, 0, g_follow_cpu},
        {"disk after commit", "MB", -1, U_MB, 0, g_disk},
        {"log raw", "MB", -1, U_MB, 0, g_raw},
        {"log stored", "MB", -1, U_MB, 0, g_stored},
        {"log stored / raw", "", -1, U_RATIO, D_LOG_RATIO},
        {"log stored / images", "", -1, U_RATIO, D_LOG_IMAGES},
        {"peak RSS, commit B0", "MiB", -1, U_MIB, D_RSS0},
        {"peak RSS, commit B1", "MiB", -1, U_MIB, D_RSS1},
        {"peak anon, commit B0", "MiB", -1, U_MIB, D_ANON0},
        {"peak anon, commit B1", "MiB", -1, U_MIB, D_ANON1},
};
#define NROWS (sizeof rows / sizeof rows[0])

/* The first successful run's measurement of a phase (counts are the same
 * in every run). */
static const bk_meas *first_meas(const bk_results *r, int sys, int ph)
{
	if (!r->runs[sys])
		return NULL;
	for (unsigned i = 0; i < r->cfg->runs; i++) {
		const bk_meas *m = &r->runs[sys][i].ph[ph];
		if (m->done && !m->failed)
			return m;
	}
	return NULL;
}

/* Median of a row for one system, NAN when it has none. */
static double value(const bk_results *r, int sys, const row *rw)
{
	if (!r->runs[sys])
		return NAN;
	if (rw->ph >= 0) {
		double s = bk_median_secs(r, sys, rw->ph);
		const bk_meas *m = first_meas(r, sys, rw->ph);
		if (isnan(s) || !m)
			return NAN;
		switch (rw->unit) {
		case U_RATE:
			return s > 0 ? (double)m->count / s : NAN;
		case U_MBS:
			return s > 0 ? (double)m->bytes / 1e6 / s : NAN;
		case U_MS:
			return s * 1e3;
		case U_S:
			return s;
		default:
			return NAN;
		}
	}
	if (rw->get) {
		double v = median_of(r, sys, rw->get);
		return rw->unit == U_MS   ? v * 1e3
		       : rw->unit == U_MB ? v / 1e6
		                          : v;
	}
	double raw, st;
	switch (rw->which) {
	case D_LOG_RATIO:
		raw = median_of(r, sys, g_raw);
		st = median_of(r, sys, g_stored);
		return raw > 0 ? st / raw : NAN;
	case D_LOG_IMAGES:
		st = median_of(r, sys, g_stored);
		return r->w->image_bytes ? st / (double)r->w->image_bytes : NAN;
	case D_RSS0:
	case D_RSS1: {
		int k = rw->which - D_RSS0;
		if (!(r->have_rss[sys] & 1 << k))
			return NAN;
		return (double)r->rss[sys].kib[k] / 1024.0;
	}
	case D_ANON0:
	case D_ANON1: {
		int k = rw->which - D_ANON0;
		if (!(r->have_rss[sys] & 1 << k))
			return NAN;
		return (double)r->rss[sys].anon_kib[k] / 1024.0;
	}
	}
	return NAN;
}

static void fmt_value(char *out, size_t n, double v, enum unit u)
{
	if (isnan(v)) {
		snprintf(out, n, "-");
		return;
	}
	switch (u) {
	case U_RATE:
		if (v >= 1e6)
			snprintf(out, n, "%.2fM", v / 1e6);
		else if (v >= 1e3)
			snprintf(out, n, "%.1fk", v / 1e3);
		else
			snprintf(out, n, "%.1f", v);
		break;
	case U_MS:
		snprintf(out, n,
		         v < 10     ? "%.3f"
		         : v < 1000 ? "%.1f"
		                    : "%.0f",
		         v);
		break;
	case U_RATIO:
		snprintf(out, n, "%.3f", v);
		break;
	default:
		snprintf(out, n, v < 100 ? "%.2f" : "%.1f", v);
	}
}

static void row_label(char *out, size_t n, const bk_cfg *cfg, const row *rw)
{
	if (rw->which == D_RSS0 || rw->which == D_RSS1)
		snprintf(out, n, "peak RSS, commit B=%llu",
		         (unsigned long long)
		                 cfg->rss_batches[rw->which - D_RSS0]);
	else if (rw->which == D_ANON0 || rw->which == D_ANON1)
		snprintf(out, n, "peak anon, commit B=%llu",
		         (unsigned long long)
		                 cfg->rss_batches[rw->which - D_ANON0]);
	else
		snprintf(out, n, "%s", rw->label);
}

static int row_present(const bk_results *r, const row *rw)
{
	for (int s = 0; s < SYS__COUNT; s++)
		if (r->runs[s] && !isnan(value(r, s, rw)))
			return 1;
	return 0;
}

void bk_report_table(FILE *f, const bk_results *r)
{
	const bk_workload *w = r->w;
	const int lm = SYS_LMDB;
	fprintf(f,
	        "workload: %llu records (%llu inserts, %llu updates) in %llu "
	        "batches, %.1f MB of keys+values,\n"
	        "          before+after images %.1f MB; generated in %.2f "
	        "s\n\n",
	        (unsigned long long)w->n, (unsigned long long)w->keys,
	        (unsigned long long)(w->n - w->keys),
	        (unsigned long long)w->nbatches, (double)w->user_bytes / 1e6,
	        (double)w->image_bytes / 1e6, r->gen_secs);
	fprintf(f, "medians of %u run%s; x = ratio to raw LMDB\n\n",
	        r->cfg->runs, r->cfg->runs > 1 ? "s" : "");
	fprintf(f, "%-28s %-6s", "phase", "unit");
	for (int s = 0; s < SYS__COUNT; s++)
		if (r->runs[s] || r->have_rss[s])
			fprintf(f, " %19s", bk_sys_name(s));
	fputc('\n', f);
	for (size_t i = 0; i < NROWS; i++) {
		const row *rw = &rows[i];
		char label[64];
		if (!row_present(r, rw))
			continue;
		row_label(label, sizeof label, r->cfg, rw);
		fprintf(f, "%-28s %-6s", label, rw->unit_name);
		double base = r->runs[lm] ? value(r, lm, rw) : NAN;
		for (int s = 0; s < SYS__COUNT; s++) {
			if (!r->runs[s] && !r->have_rss[s])
				continue;
			char v[32], cell[48];
			double x = value(r, s, rw);
			fmt_value(v, sizeof v, x, rw->unit);
			if (!isnan(x) && !isnan(base) && base > 0 && s != lm)
				snprintf(cell, sizeof cell, "%s %6.2fx", v,
				         x / base);
			else
				snprintf(cell, sizeof cell, "%s", v);
			fprintf(f, " %19s", cell);
		}
		fputc('\n', f);
	}
	/* Notes and failures, once per system and phase. */
	int header = 0;
	for (int s = 0; s < SYS__COUNT; s++) {
		if (!r->runs[s])
			continue;
		for (int ph = 0; ph < PH__COUNT; ph++) {
			const bk_meas *m = &r->runs[s][0].ph[ph];
			if (!m->note[0])
				continue;
			if (!header++)
				fputs("\nnotes (from the first run):\n", f);
			fprintf(f, "  %s %s: %s%s\n", bk_sys_name(s),
			        bk_phase_name(ph), m->failed ? "FAILED: " : "",
			        m->note);
		}
	}
	for (int s = 0; s < SYS__COUNT; s++) {
		if (r->rss_err[s][0]) {
			if (!header++)
				fputs("\nnotes:\n", f);
			fprintf(f, "  %s rss: FAILED: %s\n", bk_sys_name(s),
			        r->rss_err[s]);
		}
	}
	for (int s = 0; s < SYS__COUNT; s++)
		for (int k = 0; k < 2; k++)
			if (r->have_rss[s] & 1 << k) {
				if (!header++)
					fputs("\nnotes:\n", f);

				fprintf(f,
				        "  %s rss B=%llu: %.1f MiB at start of "
				        "commit, peak %.1f MiB (+%.1f), anon "
				        "after commits <= %.1f MiB, commit "
				        "%.2f s\n",
				        bk_sys_name(s),
				        (unsigned long long)
				                r->cfg->rss_batches[k],
				        r->rss[s].base_kib[k] / 1024.0,
				        r->rss[s].kib[k] / 1024.0,
				        (r->rss[s].kib[k] -
				         r->rss[s].base_kib[k]) /
				                1024.0,
				        r->rss[s].anon_kib[k] / 1024.0,
				        r->rss[s].secs[k]);
			}
	fprintf(f, "\npeak RSS of this process: %.1f MiB\n\n",
	        r->maxrss_kib / 1024.0);
}

/* ---- goals ------------------------------------------------------------- */

/* Where a goal applies: the issue states most for W1 without fsync, the
 * commit bar for W1 and W2, one bar for --sync; the log and memory goals
 * (kept from earlier) for any nosync run. */
enum scope { SC_W1, SC_NOSYNC, SC_SYNC };

typedef struct goal {
	char name[96];
	double measured, target; /* measured >= target passes */
	int higher_better;
	char shown[96];
	int na;
	const char *why_na; /* NULL: missing figures */
} goal;

static double rate(const bk_results *r, int sys, int ph)
{
	row rw = {"", "", ph, U_RATE, 0};
	return value(r, sys, &rw);
}

static int applies(const bk_cfg *cfg, enum scope sc)
{
	switch (sc) {
	case SC_W1:
		return !cfg->keys_random && !cfg->sync;
	case SC_NOSYNC:
		return !cfg->sync;
	case SC_SYNC:
		return cfg->sync;
	}
	return 0;
}

static const char *scope_note(enum scope sc)
{
	switch (sc) {
	case SC_W1:
		return "(a W1 nosync goal)";
	case SC_NOSYNC:
		return "(a nosync goal)";
	case SC_SYNC:
		return "(a --sync goal)";
	}
	return "";
}

static int make_goals(const bk_results *r, goal *g)
{
	int n = 0;
	const bk_cfg *cfg = r->cfg;
	double lb = rate(r, SYS_LOGBOOK, PH_COMMIT);
	double lmdb = rate(r, SYS_LMDB, PH_COMMIT);
	double sq = rate(r, SYS_SQLITE, PH_COMMIT);
	const row ratio_row = {"", "", -1, U_RATIO, D_LOG_IMAGES};

#define GOAL(sc, nm, m, t, hb, fmt, ...)                                       \
	do {                                                                   \
		goal *x = &g[n++];                                             \
		snprintf(x->name, sizeof x->name, "%s", nm);                   \
		x->measured = (m);                                             \
		x->target = (t);                                               \
		x->higher_better = (hb);                                       \
		x->why_na = applies(cfg, sc) ? NULL : scope_note(sc);          \
		x->na = x->why_na || isnan(x->measured) || isnan(x->target);   \
		snprintf(x->shown, sizeof x->shown, fmt, __VA_ARGS__);         \
	} while (0)

	GOAL(SC_NOSYNC, "commit >= 0.65x raw LMDB (W1 and W2)", lb / lmdb, 0.65,
	     1, "%.2fx", lb / lmdb);
	GOAL(SC_NOSYNC, "commit >= 0.8x raw LMDB (aim)", lb / lmdb, 0.8, 1,
	     "%.2fx", lb / lmdb);
	GOAL(SC_W1, "commit >= 2.5x SQLite+session", lb / sq, 2.5, 1, "%.2fx",
	     lb / sq);
	/* The two like-for-like comparisons the goal allows, each judged on
	 * its own, each measured in pairs: the medians of rollbacks of the
	 * last batch and of commits of it again, taking turns on one copy of
	 * the store, with the database opened afresh before each ("fresh
	 * open"), or in one warm process ("warm"). The ratio shown is the
	 * rollback's time over the commit's. */
	double rbf_ms = median_of(r, SYS_LOGBOOK, g_rb_fresh) * 1e3;
	double cf_ms = median_of(r, SYS_LOGBOOK, g_rb_fresh_commit) * 1e3;
	GOAL(SC_W1, "rollback of last batch <= its commit, fresh open", rbf_ms,
	     cf_ms, 0, "%.2fx (%.2f vs %.2f ms)", rbf_ms / cf_ms, rbf_ms,
	     cf_ms);
	double rbw_ms = median_of(r, SYS_LOGBOOK, g_rb_loop) * 1e3;
	double cw_ms = median_of(r, SYS_LOGBOOK, g_rb_loop_commit) * 1e3;
	GOAL(SC_W1, "rollback of last batch <= its commit, warm", rbw_ms, cw_ms,
	     0, "%.2fx (%.2f vs %.2f ms)", rbw_ms / cw_ms, rbw_ms, cw_ms);
	double rb = rate(r, SYS_LOGBOOK, PH_RB_LAST);
	double sqrb = rate(r, SYS_SQLITE, PH_RB_LAST);
	GOAL(SC_W1, "rollback of last batch >= 1.5x SQLite invert+apply",
	     rb / sqrb, 1.5, 1, "%.2fx", rb / sqrb);
	double rp = rate(r, SYS_LOGBOOK, PH_REPLAY);
	double sqrp = rate(r, SYS_SQLITE, PH_REPLAY);
	GOAL(SC_W1, "replay from empty >= 2.5x SQLite changeset replay",
	     rp / sqrp, 2.5, 1, "%.2fx", rp / sqrp);
	GOAL(SC_W1, "replay from empty >= logbook commit rate", rp / lb, 1.0, 1,
	     "%.2fx", rp / lb);
	double gl = rate(r, SYS_LOGBOOK, PH_GET);
	double gm = rate(r, SYS_LMDB, PH_GET);
	GOAL(SC_W1, "point reads >= 0.8x raw LMDB", gl / gm, 0.8, 1, "%.2fx",
	     gl / gm);
	GOAL(SC_SYNC, "--sync commit >= 0.9x raw LMDB (fsync per batch)",
	     lb / lmdb, 0.9, 1, "%.2fx", lb / lmdb);
	double fo = rate(r, SYS_LOGBOOK, PH_FOLLOW);
	GOAL(SC_NOSYNC, "follower applies >= 0.8x logbook commit rate", fo / lb,
	     0.8, 1, "%.2fx", fo / lb);
	/* the same per CPU second: what a loaded machine does not blur */
	double fc = median_of(r, SYS_LOGBOOK, g_follow_cpu);
	double cc = median_of(r, SYS_LOGBOOK, g_cpu);
	GOAL(SC_NOSYNC, "follower apply >= 0.8x commit, per CPU second",
	     fc / cc, 0.8, 1, "%.2fx", fc / cc);
	double ri = value(r, SYS_LOGBOOK, &ratio_row);
	GOAL(SC_NOSYNC, "log stored <= 50% of before+after images", ri, 0.5, 0,
	     "%.1f%%", ri * 100);
	for (int k = 0; k < 2; k++) {
		char nm[96];
		/* Anonymous memory (heap and LMDB's dirty pages), not
		 * ru_maxrss, which also counts the clean pages of the mapped
		 * data file that the process touched: those are the page
		 * cache's, and a larger file (logbook's indexes and log)
		 * would count against the goal as if it were memory held. */
		double mine = r->have_rss[SYS_LOGBOOK] & 1 << k
		                      ? r->rss[SYS_LOGBOOK].anon_kib[k] / 1024.0
		                      : NAN;
		double peer = r->have_rss[SYS_LMDB] & 1 << k
		                      ? r->rss[SYS_LMDB].anon_kib[k] / 1024.0
		                      : NAN;
		if (!cfg->rss_batches[k])
			continue;
		snprintf(nm, sizeof nm,
		         "peak anon, commit B=%llu <= 64 MiB + raw LMDB's",
		         (unsigned long long)cfg->rss_batches[k]);
		GOAL(SC_NOSYNC, nm, mine, 64 + peer, 0, "%.1f vs %.1f MiB",
		     mine, 64 + peer);
	}
#undef GOAL
	return n;
}

static const char *verdict(const goal *g)
{
	if (g->na)
		return "n/a";
	if (g->higher_better)
		return g->measured >= g->target ? "PASS" : "MISS";
	return g->measured <= g->target ? "PASS" : "MISS";
}

void bk_report_goals(FILE *f, const bk_results *r)
{
	goal g[24];
	int n = make_goals(r, g);
	fprintf(f,
	        "goals (stated for 1,000,000 records; judged on this run: "
	        "%s, %s, %llu records):\n",
	        r->cfg->keys_random ? "W2" : "W1",
	        r->cfg->sync ? "sync" : "nosync",
	        (unsigned long long)r->cfg->records);
	for (int i = 0; i < n; i++)
		fprintf(f, "  %-4s  %-52s %s\n", verdict(&g[i]), g[i].name,
		        g[i].why_na ? g[i].why_na
		        : g[i].na   ? "- (phase or peer not run)"
		                    : g[i].shown);
	fputs("  (memory goal: anonymous memory, heap and LMDB's dirty pages, "
	      "highest after a batch commit;\n   raw LMDB's at the same batch "
	      "size stands for LMDB's dirty pages; the peak RSS rows also\n"
	      "   count the pages of the mapped data file)\n\n",
	      f);
}

/* ---- SVG --------------------------------------------------------------- */

/* The chart's groups: a phase and the raw LMDB figure each system's rate
 * is divided by (raw LMDB's own rate in that phase, or its commit rate
 * for the phases raw LMDB does not have). */
typedef struct bar_group {
	const char *label;
	int ph;
	int ref_ph;
} bar_group;

static const bar_group groups[] = {
        {"commit", PH_COMMIT, PH_COMMIT},
        {"rollback last batch", PH_RB_LAST, PH_COMMIT},
        {"replay from empty", PH_REPLAY, PH_COMMIT},
        {"point reads", PH_GET, PH_GET},
        {"cursor scan", PH_SCAN, PH_SCAN},
};
#define NGROUPS (sizeof groups / sizeof groups[0])

static const char *const colors[SYS__COUNT] = {
        [SYS_LOGBOOK] = "#d95f02", [SYS_SCHEMA] = "#e6ab02",
        [SYS_NAIVE] = "#7570b3",   [SYS_SQLITE] = "#1b9e77",
        [SYS_LMDB] = "#666666",
};

static void xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else
			fputc(*s, f);
	}
}

void bk_report_svg(FILE *f, const bk_results *r)
{
	double ratio[NGROUPS][SYS__COUNT];
	int present[NGROUPS], nsys = 0, sys_list[SYS__COUNT];
	double top = 1.0;
	for (int s = 0; s < SYS__COUNT; s++)
		if (r->runs[s])
			sys_list[nsys++] = s;
	for (size_t gi = 0; gi < NGROUPS; gi++) {
		double ref = rate(r, SYS_LMDB, groups[gi].ref_ph);
		present[gi] = 0;
		for (int s = 0; s < SYS__COUNT; s++) {
			double v = r->runs[s] ? rate(r, s, groups[gi].ph) : NAN;
			ratio[gi][s] = ref > 0 ? v / ref : NAN;
			if (!isnan(ratio[gi][s])) {
				present[gi] = 1;
				if (ratio[gi][s] > top)
					top = ratio[gi][s];
			}
		}
	}
	int ngroups = 0;
	for (size_t gi = 0; gi < NGROUPS; gi++)
		ngroups += present[gi];
	/* The scale: a multiple of 0.5 at or above the highest bar. */
	double ymax = ceil(top * 1.08 * 2) / 2;
	const int bw = 22, gap = 34, left = 60, plot_h = 300, top_y = 70;
	int gw = nsys * bw + gap;
	int width = left + (ngroups ? ngroups : 1) * gw + 20;
	if (width < 560)
		width = 560;
	int height = top_y + plot_h + 110;
	double yscale = plot_h / ymax;

	fprintf(f,
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	        "height=\"%d\" viewBox=\"0 0 %d %d\" "
	        "font-family=\"sans-serif\" font-size=\"12\">\n"
	        "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
	        width, height, width, height);
	fprintf(f,
	        "<text x=\"%d\" y=\"22\" font-size=\"15\" "
	        "font-weight=\"bold\">logbook-bench: rate as a multiple of "
	        "raw LMDB's</text>\n",
	        left);
	fprintf(f,
	        "<text x=\"%d\" y=\"40\">%s, %llu records in batches of "
	        "%llu, %s; medians of %u run%s; load average %.2f</text>\n",
	        left, r->cfg->keys_random ? "W2 (scattered keys)" : "W1",
	        (unsigned long long)r->cfg->records,
	        (unsigned long long)r->cfg->batch_size,
	        r->cfg->sync ? "fsync per batch" : "nosync", r->cfg->runs,
	        r->cfg->runs > 1 ? "s" : "", loadavg());
	fprintf(f,
	        "<text x=\"%d\" y=\"56\" font-size=\"11\" fill=\"#555\">"
	        "rollback and replay are divided by raw LMDB's commit "
	        "rate (it has neither); higher is faster</text>\n",
	        left);
	/* Grid lines every 0.5, and the raw LMDB line at 1. */
	for (double y = 0; y <= ymax + 1e-9; y += 0.5) {
		double py = top_y + plot_h - y * yscale;
		fprintf(f,
		        "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
		        "stroke=\"%s\"%s/>\n"
		        "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1fx"
		        "</text>\n",
		        left, py, width - 10, py, y == 1.0 ? "#000" : "#ddd",
		        y == 1.0 ? " stroke-dasharray=\"6,3\"" : "", left - 6,
		        py + 4, y);
	}
	int gx = left + gap / 2;
	for (size_t gi = 0; gi < NGROUPS; gi++) {
		if (!present[gi])
			continue;
		for (int k = 0; k < nsys; k++) {
			int s = sys_list[k];
			double v = ratio[gi][s];
			int x = gx + k * bw;
			if (isnan(v))
				continue;
			double h = v * yscale;
			fprintf(f,
			        "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" "
			        "height=\"%.1f\" fill=\"%s\"><title>%s %s: "
			        "%.2fx</title></rect>\n",
			        x, top_y + plot_h - h, bw - 3, h, colors[s],
			        bk_sys_name(s), groups[gi].label, v);
			fprintf(f,
			        "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" "
			        "text-anchor=\"middle\">%.2f</text>\n",
			        x + (bw - 3) / 2.0, top_y + plot_h - h - 3, v);
		}
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
		        gx + (nsys * bw - 3) / 2.0, top_y + plot_h + 18);
		xml_text(f, groups[gi].label);
		fputs("</text>\n", f);
		gx += gw;
	}
	/* Legend. */
	int lx = left, ly = top_y + plot_h + 45;
	for (int k = 0; k < nsys; k++) {
		int s = sys_list[k];
		fprintf(f,
		        "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" "
		        "fill=\"%s\"/><text x=\"%d\" y=\"%d\">",
		        lx, ly, colors[s], lx + 16, ly + 11);
		xml_text(f, s == SYS_SQLITE  ? "SQLite + session"
		            : s == SYS_NAIVE ? "LMDB + naive zlib log"
		            : s == SYS_LMDB  ? "raw LMDB"
		                             : bk_sys_name(s));
		fputs("</text>\n", f);
		lx += 150;
	}
	fputs("</svg>\n", f);
}

/* ---- JSON -------------------------------------------------------------- */

static void jstr(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void jnum(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

/* A system's figures outside its phases, by their JSON names. */
static const struct {
	const char *name;
	double (*get)(const bk_run *);
} figures[] = {
        {"commit_per_cpu_s", g_cpu},
        {"last_batch_commit_s", g_last},
        {"last_batch_commit_fresh_s", g_last_fresh},
        {"late_batch_commit_s", g_late},
        {"rollback_last_repeated_s", g_rb_loop},
        {"commit_last_again_repeated_s", g_rb_loop_commit},
        {"rollback_last_reopened_s", g_rb_fresh},
        {"commit_last_again_reopened_s", g_rb_fresh_commit},
        {"disk_bytes", g_disk},
        {"log_raw_bytes", g_raw},
        {"log_stored_bytes", g_stored},
};

void bk_report_json(FILE *f, const bk_results *r)
{
	const bk_cfg *c = r->cfg;
	const bk_workload *w = r->w;
	char cpu[256];
	struct utsname u;
	cpu_model(cpu, sizeof cpu);
	if (uname(&u) != 0)
		memset(&u, 0, sizeof u);

	fputs("{\n  \"tool\": \"logbook-bench\",\n  \"library\": ", f);
	jstr(f, lb_version(NULL, NULL, NULL));
	fprintf(f,
	        ",\n  \"config\": {\"records\": %llu, \"batch_size\": %llu, "
	        "\"value_size\": %u, \"update_pct\": %u, \"seed\": %llu, "
	        "\"keys\": \"%s\", \"sync\": %s, \"compression\": %d, "
	        "\"segment_size\": %zu, \"runs\": %u, \"reads\": %llu, "
	        "\"rss_batches\": [%llu, %llu]},\n",
	        (unsigned long long)c->records,
	        (unsigned long long)c->batch_size, c->value_size, c->update_pct,
	        (unsigned long long)c->seed, c->keys_random ? "random" : "seq",
	        c->sync ? "true" : "false", c->compression, c->segment_size,
	        c->runs, (unsigned long long)c->reads,
	        (unsigned long long)c->rss_batches[0],
	        (unsigned long long)c->rss_batches[1]);
	fputs("  \"environment\": {\"cpu\": ", f);
	jstr(f, cpu);
	fprintf(f, ", \"cores\": %ld, \"load_average\": %.2f, \"os\": ",
	        sysconf(_SC_NPROCESSORS_ONLN), loadavg());
	jstr(f, u.release);
	fputs(", \"compiler\": ", f);
	jstr(f, compiler());
	fputs(", \"flags\": ", f);
	jstr(f, build_flags);
	fprintf(f, ", \"optimized\": %s, \"sanitizers\": ",
	        optimized() ? "true" : "false");
	jstr(f, sanitizers());
	fprintf(f, ", \"tmpfs\": %s, \"lmdb\": \"%d.%d.%d\", \"sqlite\": ",
	        on_tmpfs(c->dir) ? "true" : "false", MDB_VERSION_MAJOR,
	        MDB_VERSION_MINOR, MDB_VERSION_PATCH);
	jstr(f, sqlite3_libversion());
	fputs(", \"zlib\": ", f);
	jstr(f, zlibVersion());
	fputs(", \"msgpack\": ", f);
	jstr(f, msgpack_version());
	fprintf(f,
	        "},\n  \"workload\": {\"records\": %llu, \"batches\": %llu, "
	        "\"keys\": %llu, \"user_bytes\": %llu, \"image_bytes\": "
	        "%llu, \"generate_s\": ",
	        (unsigned long long)w->n, (unsigned long long)w->nbatches,
	        (unsigned long long)w->keys, (unsigned long long)w->user_bytes,
	        (unsigned long long)w->image_bytes);
	jnum(f, r->gen_secs);
	fputs("},\n  \"systems\": {", f);
	int firsts = 1;
	for (int s = 0; s < SYS__COUNT; s++) {
		if (!r->runs[s])
			continue;
		fprintf(f, "%s\n    ", firsts ? "" : ",");
		firsts = 0;
		jstr(f, bk_sys_name(s));
		fputs(": {\"phases\": {", f);
		int firstp = 1;
		for (int ph = 0; ph < PH__COUNT; ph++) {
			const bk_meas *m = first_meas(r, s, ph);
			const bk_meas *m0 = &r->runs[s][0].ph[ph];
			if (!m && !m0->failed)
				continue;
			fprintf(f, "%s\n      ", firstp ? "" : ",");
			firstp = 0;
			jstr(f, bk_phase_name(ph));
			double med = bk_median_secs(r, s, ph);
			fputs(": {\"median_s\": ", f);
			jnum(f, med);
			fprintf(f,
			        ", \"count\": %llu, \"bytes\": %llu, "
			        "\"per_s\": ",
			        m ? (unsigned long long)m->count : 0ull,
			        m ? (unsigned long long)m->bytes : 0ull);
			jnum(f, m && med > 0 ? (double)m->count / med : NAN);
			fputs(", \"runs_s\": [", f);
			for (unsigned i = 0; i < c->runs; i++) {
				const bk_meas *x = &r->runs[s][i].ph[ph];
				if (i)
					fputs(", ", f);
				jnum(f, x->done && !x->failed ? x->secs : NAN);
			}
			fprintf(f, "], \"failed\": %s, \"note\": ",
			        m0->failed ? "true" : "false");
			jstr(f, m0->note);
			fputc('}', f);
		}
		fputs("\n    }", f);
		for (size_t k = 0; k < sizeof figures / sizeof figures[0];
		     k++) {
			fprintf(f, ", \"%s\": ", figures[k].name);
			jnum(f, median_of(r, s, figures[k].get));
		}
		fputs(", \"rss\": [", f);
		for (int k = 0, first = 1; k < 2; k++) {
			if (!(r->have_rss[s] & 1 << k))
				continue;
			fprintf(f,
			        "%s{\"batch_size\": %llu, \"peak_kib\": %ld, "
			        "\"start_kib\": %ld, \"anon_kib\": %ld, "
			        "\"commit_s\": ",
			        first ? "" : ", ",
			        (unsigned long long)c->rss_batches[k],
			        r->rss[s].kib[k], r->rss[s].base_kib[k],
			        r->rss[s].anon_kib[k]);
			jnum(f, r->rss[s].secs[k]);
			fputc('}', f);
			first = 0;
		}
		fputs("]}", f);
	}
	fputs("\n  },\n  \"goals\": [", f);
	goal g[24];
	int n = make_goals(r, g);
	for (int i = 0; i < n; i++) {
		fprintf(f, "%s\n    {\"goal\": ", i ? "," : "");
		jstr(f, g[i].name);
		fputs(", \"measured\": ", f);
		jnum(f, g[i].measured);
		fputs(", \"target\": ", f);
		jnum(f, g[i].target);
		fputs(", \"status\": ", f);
		jstr(f, verdict(&g[i]));
		fputc('}', f);
	}
	fprintf(f, "\n  ],\n  \"peak_rss_kib\": %ld\n}\n", r->maxrss_kib);
}
