/* SPDX-License-Identifier: MIT */
/*
 * util.c: clocks, scratch directories, memory figures and error exits for
 * logbook-bench. Nothing here is timed itself.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

volatile uint64_t bk_sink;

double bk_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bk_cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void bk_die(const char *fmt, ...)
{
	va_list ap;
	fputs("logbook-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

void bk_progress(const bk_cfg *cfg, const char *fmt, ...)
{
	va_list ap;
	if (cfg->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fflush(stderr);
}

void bk_note(bk_meas *m, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m->note, sizeof m->note, fmt, ap);
	va_end(ap);
}

void bk_meas_set(bk_meas *m, double secs, uint64_t count, uint64_t bytes)
{
	m->done = 1;
	m->secs = secs;
	m->count = count;
	m->bytes = bytes;
}

void *bk_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		bk_die("out of memory (%zu bytes)", n);
	return p;
}

void *bk_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		bk_die("out of memory (%zu bytes)", n);
	return p;
}

uint64_t bk_splitmix(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* "h" and 15 decimal digits, no terminating NUL: the W1 key. */
void bk_fmt_key(uint64_t id, char out[BK_KEY_LEN])
{
	out[0] = 'h';
	for (int i = BK_KEY_LEN - 1; i >= 1; i--) {
		out[i] = (char)('0' + id % 10);
		id /= 10;
	}
}

int bk_mkdir(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

char *bk_path(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = bk_xmalloc(a + b + 2);
	memcpy(p, dir, a);
	p[a] = '/';
	memcpy(p + a + 1, name, b + 1);
	return p;
}

int bk_rmrf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *p = bk_path(path, e->d_name);
		if (bk_rmrf(p) != 0)
			rc = -1;
		free(p);
	}
	closedir(d);
	if (rmdir(path) != 0)
		rc = -1;
	return rc;
}

static int copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY);
	if (in < 0)
		return -1;
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (out < 0) {
		close(in);
		return -1;
	}
	int rc = 0;
	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == 0)
			break;
		if (n < 0) {
			/* Fall back to read/write (e.g. across devices). */
			static char buf[1 << 16];
			ssize_t r;
			while ((r = read(in, buf, sizeof buf)) > 0)
				if (write(out, buf, (size_t)r) != r) {
					rc = -1;
					break;
				}
			if (r < 0)
				rc = -1;
			break;
		}
	}
	close(in);
	if (close(out) != 0)
		rc = -1;
	return rc;
}

void bk_settle(void)
{
	sync();
}

int bk_copy_dir(const char *from, const char *to)
{
	if (bk_mkdir(to) != 0)
		return -1;
	DIR *d = opendir(from);
	if (!d)
		return -1;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d)) != NULL && rc == 0) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *a = bk_path(from, e->d_name), *b = bk_path(to, e->d_name);
		struct stat st;
		if (stat(a, &st) == 0 && S_ISREG(st.st_mode))
			rc = copy_file(a, b);
		free(a);
		free(b);
	}
	closedir(d);
	return rc;
}

uint64_t bk_du(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return 0;
	uint64_t sum = (uint64_t)st.st_blocks * 512u;
	if (!S_ISDIR(st.st_mode))
		return sum;
	DIR *d = opendir(path);
	if (!d)
		return sum;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *p = bk_path(path, e->d_name);
		sum += bk_du(p);
		free(p);
	}
	closedir(d);
	return sum;
}

long bk_rss_now_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;
	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = -1;
	fclose(f);
	return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

long bk_rss_anon_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "RssAnon: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

long bk_maxrss_kib(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return ru.ru_maxrss; /* KiB on Linux */
}
