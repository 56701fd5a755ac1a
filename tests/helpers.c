/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE
#include "helpers.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t seed_used;
static int seed_set;

char *th_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p;
	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&p, "%s/logbook-test-XXXXXX", base) < 0)
		abort();
	if (!mkdtemp(p)) {
		fprintf(stderr, "mkdtemp %s: %s\n", p, strerror(errno));
		abort();
	}
	return p;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		fprintf(stderr, "remove %s: %s\n", path, strerror(errno));
	return 0;
}

void th_rmrf(const char *path)
{
	if (path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *th_path(const char *dir, const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}

uint64_t th_seed(uint64_t dflt)
{
	const char *s = getenv("LB_TEST_SEED");
	seed_used = (s && *s) ? strtoull(s, NULL, 0) : dflt;
	seed_set = 1;
	return seed_used;
}

void th_seed_report(void)
{
	if (seed_set)
		fprintf(stderr,
		        "seed: %" PRIu64 " (rerun with LB_TEST_SEED=%" PRIu64
		        ")\n",
		        seed_used, seed_used);
}

long th_env_long(const char *name, long dflt)
{
	const char *s = getenv(name);
	return (s && *s) ? strtol(s, NULL, 0) : dflt;
}

const th_uint_width th_uint_widths[] = {
        {0, 1, 0x00},
        {1, 1, 0x01},
        {127, 1, 0x7f},
        {128, 2, 0xcc},
        {255, 2, 0xcc},
        {256, 3, 0xcd},
        {65535, 3, 0xcd},
        {65536, 5, 0xce},
        {UINT32_MAX, 5, 0xce},
        {(uint64_t)UINT32_MAX + 1, 9, 0xcf},
        {(uint64_t)INT64_MAX, 9, 0xcf},
        {UINT64_MAX, 9, 0xcf},
};
const size_t th_nuint_widths = sizeof th_uint_widths / sizeof *th_uint_widths;
