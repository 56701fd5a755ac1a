/* SPDX-License-Identifier: MIT */
/*
 * alloc.c: allocations that fail on demand, to prove that logbook answers
 * LB_ENOMEM to a failed allocation, leaks nothing and damages nothing.
 *
 * How the library's calls get here: the Makefile makes a copy of the
 * static library (BUILD/tests/liblogbook-alloc.a) in which every reference
 * to an allocating function is renamed from NAME to lbt_NAME with objcopy
 * --redefine-sym, and links tests/engine/alloc.c with that copy and this
 * file. So only the library's own calls come here; the test's, cmocka's
 * and those made inside LMDB, zlib, OpenSSL or libc do not. It works the
 * same in the normal build and under ASan (an LD_PRELOAD shim would not:
 * ASan interposes malloc itself), since these hooks only decide whether to
 * fail and then call the real function, whichever allocator that is.
 *
 * The functions hooked (ALLOC_HOOKS in the Makefile must list the same):
 *   malloc calloc realloc strdup strndup asprintf vasprintf
 *   realpath (with a NULL buffer: it allocates the result)
 *   opendir tmpfile                         (a DIR, a FILE)
 *   libdeflate_alloc_compressor libdeflate_alloc_decompressor
 *   EVP_MD_CTX_new                          (OpenSSL)
 *   pthread_create                          (a thread's stack: EAGAIN)
 * and, to track what is released, free closedir fclose
 * libdeflate_free_compressor libdeflate_free_decompressor EVP_MD_CTX_free.
 *
 * Counting is per thread: lbt_alloc_arm() makes the calling thread's calls
 * count, from 1, until lbt_alloc_disarm(); other threads (the library's
 * compression thread) are never counted, so the numbering of a workload
 * is the same in every run. Call `at` fails the way the real function
 * fails when memory is exhausted (NULL or -1 with errno ENOMEM; EAGAIN for
 * pthread_create), without calling it.
 *
 * Every object a hooked call returns is tracked (with the site that made
 * it) until the library releases it, on any thread: lbt_alloc_live() after
 * the test closed everything must be 0. Memory the library hands to the
 * caller (lb_get's value) must be freed with lbt_free().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shim/alloc.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <libdeflate.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- counting and failing ---------------------------------------------- */

static _Thread_local int armed;
static atomic_long at, calls, fired, fired_total;
static atomic_int sticky;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char fired_where[256];

/* The sites counted: return address, hooked function, calls, failures. */
#define NSITES 4096
static struct site {
	void *ra;
	const char *fn;
	long calls, fired;
} sites[NSITES];
static size_t nsites;

static size_t hash_ptr(const void *p, size_t cap)
{
	uint64_t x = (uint64_t)(uintptr_t)p;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return (size_t)(x & (cap - 1));
}

/* Where ra is, as FILE+0xOFFSET (of the call instruction, for addr2line).
 */
static void describe(void *ra, const char *fn, char *buf, size_t cap)
{
	Dl_info info;
	if (ra && dladdr(ra, &info) && info.dli_fname) {
		snprintf(buf, cap, "%s at %s+0x%lx", fn, info.dli_fname,
		         (unsigned long)((uintptr_t)ra - 1 -
		                         (uintptr_t)info.dli_fbase));
	} else {
		snprintf(buf, cap, "%s at %p", fn, ra);
	}
}

/* Count a call from ra (under lock); 1 if it must fail. */
static int fail_here(const char *fn, void *ra)
{
	if (!armed)
		return 0;
	long n = atomic_fetch_add(&calls, 1) + 1;
	long a = atomic_load(&at);
	int fail = a > 0 && (n == a || (atomic_load(&sticky) && n > a));
	pthread_mutex_lock(&lock);
	size_t i = hash_ptr(ra, NSITES);
	while (sites[i].ra && sites[i].ra != ra)
		i = (i + 1) & (NSITES - 1);
	if (!sites[i].ra && nsites < NSITES - 1) {
		sites[i].ra = ra;
		sites[i].fn = fn;
		nsites++;
	}
	if (sites[i].ra == ra) {
		sites[i].calls++;
		sites[i].fired += fail;
	}
	if (fail && atomic_load(&fired) == 0)
		describe(ra, fn, fired_where, sizeof fired_where);
	pthread_mutex_unlock(&lock);
	if (fail) {
		atomic_fetch_add(&fired, 1);
		atomic_fetch_add(&fired_total, 1);
	}
	return fail;
}

/* ---- tracking what the library holds ----------------------------------- */

#define TOMB ((void *)1)
static struct obj {
	void *p, *ra;
	const char *fn;
} * objs;
static size_t ocap, olive, oused; /* oused: live + tombstones */

static void obj_insert(struct obj *tab, size_t cap, struct obj o)
{
	size_t i = hash_ptr(o.p, cap);
	while (tab[i].p && tab[i].p != TOMB)
		i = (i + 1) & (cap - 1);
	tab[i] = o;
}

/* Under lock. On no memory for the table the object goes untracked. */
static void track_locked(void *p, void *ra, const char *fn)
{
	if ((oused + 1) * 2 > ocap) {
		size_t nc = ocap ? ocap : 1024;
		while ((olive + 1) * 4 > nc)
			nc *= 2;
		struct obj *nt = calloc(nc, sizeof *nt);
		if (!nt)
			return;
		for (size_t i = 0; i < ocap; i++)
			if (objs[i].p && objs[i].p != TOMB)
				obj_insert(nt, nc, objs[i]);
		free(objs);
		objs = nt;
		ocap = nc;
		oused = olive;
	}
	obj_insert(objs, ocap, (struct obj){p, ra, fn});
	olive++;
	oused++;
}

static void track(void *p, void *ra, const char *fn)
{
	if (!p)
		return;
	pthread_mutex_lock(&lock);
	track_locked(p, ra, fn);
	pthread_mutex_unlock(&lock);
}

static void untrack(void *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&lock);
	if (ocap) {
		size_t i = hash_ptr(p, ocap);
		while (objs[i].p && objs[i].p != p)
			i = (i + 1) & (ocap - 1);
		if (objs[i].p == p) {
			objs[i].p = TOMB;
			olive--;
		}
	}
	pthread_mutex_unlock(&lock);
}

#define RA __builtin_return_address(0)

/* ---- the hooks ---------------------------------------------------------- */

void *lbt_malloc(size_t n);
void *lbt_calloc(size_t n, size_t size);
void *lbt_realloc(void *p, size_t n);
void lbt_free(void *p);
char *lbt_strdup(const char *s);
char *lbt_strndup(const char *s, size_t n);
int lbt_vasprintf(char **out, const char *fmt, va_list ap);
int lbt_asprintf(char **out, const char *fmt, ...);
char *lbt_realpath(const char *path, char *resolved);
DIR *lbt_opendir(const char *path);
int lbt_closedir(DIR *d);
FILE *lbt_tmpfile(void);
int lbt_fclose(FILE *f);
struct libdeflate_compressor *lbt_libdeflate_alloc_compressor(int level);
void lbt_libdeflate_free_compressor(struct libdeflate_compressor *c);
struct libdeflate_decompressor *lbt_libdeflate_alloc_decompressor(void);
void lbt_libdeflate_free_decompressor(struct libdeflate_decompressor *d);
EVP_MD_CTX *lbt_EVP_MD_CTX_new(void);
void lbt_EVP_MD_CTX_free(EVP_MD_CTX *ctx);
int lbt_pthread_create(pthread_t *th, const pthread_attr_t *attr,
                       void *(*fn)(void *), void *arg);

void *lbt_malloc(size_t n)
{
	if (fail_here("malloc", RA)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = malloc(n);
	track(p, RA, "malloc");
	return p;
}

void *lbt_calloc(size_t n, size_t size)
{
	if (fail_here("calloc", RA)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = calloc(n, size);
	track(p, RA, "calloc");
	return p;
}

void *lbt_realloc(void *p, size_t n)
{
	if (fail_here("realloc", RA)) {
		errno = ENOMEM;
		return NULL; /* p is untouched, as when realloc fails */
	}
	/* p is released by a realloc that succeeds (or frees, n == 0) */
	untrack(p);
	void *q = realloc(p, n);
	if (q)
		track(q, RA, "realloc");
	else if (n != 0)
		track(p, RA, "realloc"); /* failed by itself: p is kept */
	return q;
}

void lbt_free(void *p)
{
	untrack(p);
	free(p);
}

char *lbt_strdup(const char *s)
{
	if (fail_here("strdup", RA)) {
		errno = ENOMEM;
		return NULL;
	}
	char *p = strdup(s);
	track(p, RA, "strdup");
	return p;
}

char *lbt_strndup(const char *s, size_t n)
{
	if (fail_here("strndup", RA)) {
		errno = ENOMEM;
		return NULL;
	}
	char *p = strndup(s, n);
	track(p, RA, "strndup");
	return p;
}

/* On failure *out is left alone, as the C library leaves it. */
int lbt_vasprintf(char **out, const char *fmt, va_list ap)
{
	if (fail_here("vasprintf", RA)) {
		errno = ENOMEM;
		return -1;
	}
	int rc = vasprintf(out, fmt, ap);
	if (rc >= 0)
		track(*out, RA, "vasprintf");
	return rc;
}

int lbt_asprintf(char **out, const char *fmt, ...)
{
	va_list ap;
	if (fail_here("asprintf", RA)) {
		errno = ENOMEM;
		return -1;
	}
	va_start(ap, fmt);
	int rc = vasprintf(out, fmt, ap);
	va_end(ap);
	if (rc >= 0)
		track(*out, RA, "asprintf");
	return rc;
}

char *lbt_realpath(const char *path, char *resolved)
{
	if (resolved)
		return realpath(path, resolved); /* allocates nothing */
	if (fail_here("realpath", RA)) {
		errno = ENOMEM;
		return NULL;
	}
	char *p = realpath(path, NULL);
	track(p, RA, "realpath");
	return p;
}

DIR *lbt_opendir(const char *path)
{
	if (fail_here("opendir", RA)) {
		errno = ENOMEM;
		return NULL;
	}
	DIR *d = opendir(path);
	track(d, RA, "opendir");
	return d;
}

int lbt_closedir(DIR *d)
{
	untrack(d);
	return closedir(d);
}

FILE *lbt_tmpfile(void)
{
	if (fail_here("tmpfile", RA)) {
		errno = ENOMEM;
		return NULL;
	}
	FILE *f = tmpfile();
	track(f, RA, "tmpfile");
	return f;
}

int lbt_fclose(FILE *f)
{
	untrack(f);
	return fclose(f);
}

struct libdeflate_compressor *lbt_libdeflate_alloc_compressor(int level)
{
	if (fail_here("libdeflate_alloc_compressor", RA))
		return NULL;
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
	track(c, RA, "libdeflate_alloc_compressor");
	return c;
}

void lbt_libdeflate_free_compressor(struct libdeflate_compressor *c)
{
	untrack(c);
	libdeflate_free_compressor(c);
}

struct libdeflate_decompressor *lbt_libdeflate_alloc_decompressor(void)
{
	if (fail_here("libdeflate_alloc_decompressor", RA))
		return NULL;
	struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
	track(d, RA, "libdeflate_alloc_decompressor");
	return d;
}

void lbt_libdeflate_free_decompressor(struct libdeflate_decompressor *d)
{
	untrack(d);
	libdeflate_free_decompressor(d);
}

EVP_MD_CTX *lbt_EVP_MD_CTX_new(void)
{
	if (fail_here("EVP_MD_CTX_new", RA))
		return NULL;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	track(ctx, RA, "EVP_MD_CTX_new");
	return ctx;
}

void lbt_EVP_MD_CTX_free(EVP_MD_CTX *ctx)
{
	untrack(ctx);
	EVP_MD_CTX_free(ctx);
}

int lbt_pthread_create(pthread_t *th, const pthread_attr_t *attr,
                       void *(*fn)(void *), void *arg)
{
	if (fail_here("pthread_create", RA))
		return EAGAIN;
	return pthread_create(th, attr, fn, arg);
}

/* ---- control ------------------------------------------------------------ */

void lbt_alloc_arm(long n, int stick)
{
	pthread_mutex_lock(&lock);
	atomic_store(&at, 0);
	atomic_store(&calls, 0);
	atomic_store(&fired, 0);
	atomic_store(&sticky, stick != 0);
	atomic_store(&at, n);
	fired_where[0] = 0;
	pthread_mutex_unlock(&lock);
	armed = 1;
}

void lbt_alloc_disarm(void)
{
	armed = 0;
	atomic_store(&at, 0);
	atomic_store(&sticky, 0);
}

long lbt_alloc_calls(void)
{
	return atomic_load(&calls);
}

long lbt_alloc_fired(void)
{
	return atomic_load(&fired);
}

long lbt_alloc_fired_total(void)
{
	return atomic_load(&fired_total);
}

const char *lbt_alloc_fired_where(void)
{
	return fired_where;
}

size_t lbt_alloc_live(void)
{
	pthread_mutex_lock(&lock);
	size_t n = olive;
	pthread_mutex_unlock(&lock);
	return n;
}

void lbt_alloc_live_print(FILE *f, size_t max)
{
	char where[256];
	pthread_mutex_lock(&lock);
	for (size_t i = 0, n = 0; i < ocap && n < max; i++) {
		if (!objs[i].p || objs[i].p == TOMB)
			continue;
		describe(objs[i].ra, objs[i].fn, where, sizeof where);
		fprintf(f, "  still held: %p from %s\n", objs[i].p, where);
		n++;
	}
	pthread_mutex_unlock(&lock);
}

size_t lbt_alloc_sites(void)
{
	pthread_mutex_lock(&lock);
	size_t n = nsites;
	pthread_mutex_unlock(&lock);
	return n;
}

void lbt_alloc_sites_print(FILE *f)
{
	char where[256];
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < NSITES; i++) {
		if (!sites[i].ra)
			continue;
		describe(sites[i].ra, sites[i].fn, where, sizeof where);
		fprintf(f, "  %s: %ld calls, %ld failed\n", where,
		        sites[i].calls, sites[i].fired);
	}
	pthread_mutex_unlock(&lock);
}
