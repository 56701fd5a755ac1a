/* SPDX-License-Identifier: MIT */
/*
 * _driver.c: replay fuzz inputs without libFuzzer.
 *
 *   test_fuzz_TARGET [FILE|DIR]...
 *
 * Without arguments it replays tests/corpus/TARGET/ (relative to the
 * current directory, the repository root under `make test`), TARGET being
 * taken from the program's name. Each file is one input, passed to the
 * target's LLVMFuzzerTestOneInput() in name order. A target that finds a
 * broken property aborts, so the run fails naming the input last printed
 * (with LB_FUZZ_VERBOSE=1 every input is printed before it runs).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "_fuzz.h"

/* A target without an initializer gets this one. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static int verbose;
static unsigned long inputs;

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *nb = realloc(buf, cap);
			if (!nb) {
				fclose(f);
				free(buf);
				return -1;
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		if (got == 0)
			break;
		n += got;
	}
	fclose(f);
	if (verbose)
		fprintf(stderr, "input %s (%zu bytes)\n", path, n);
	/* a private copy of exactly n bytes, so that ASan sees overreads */
	uint8_t *in = malloc(n ? n : 1);
	if (!in) {
		free(buf);
		return -1;
	}
	memcpy(in, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(in, n);
	free(in);
	inputs++;
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path);
	DIR *d = opendir(path);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0;
	int rc = 0;
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		names = realloc(names, (n + 1) * sizeof *names);
		if (!names || asprintf(&names[n], "%s/%s", path, e->d_name) < 0)
			return -1;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0)
			rc = run_path(names[i]);
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	const char *e = getenv("LB_FUZZ_VERBOSE");
	verbose = e && *e == '1';
	LLVMFuzzerInitialize(&argc, &argv);
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (run_path(argv[i]) != 0)
				return 1;
		printf("replayed %lu inputs\n", inputs);
		return 0;
	}
	/* the target's corpus, named after the program */
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	const char *t = strstr(base, "fuzz_");
	char *dir;
	if (!t || asprintf(&dir, "tests/corpus/%s", t + 5) < 0) {
		fprintf(stderr, "usage: %s [FILE|DIR]...\n", argv[0]);
		return 2;
	}
	if (run_path(dir) != 0)
		return 1;
	if (inputs == 0) {
		fprintf(stderr, "%s: no inputs\n", dir);
		return 1;
	}
	printf("replayed %lu inputs from %s\n", inputs, dir);
	free(dir);
	return 0;
}
