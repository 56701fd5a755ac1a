/* SPDX-License-Identifier: MIT */
/*
 * fault.c: an LD_PRELOAD shim that makes the Nth write or sync call fail,
 * to prove that logbook turns a full disk or an I/O error into LB_EFULL or
 * LB_EIO and loses nothing.
 *
 * Built as BUILD/libfault.so. It wraps write, pwrite, pwrite64, writev,
 * pwritev, pwritev64, fsync, fdatasync and msync, and mmap of a file
 * (counted only when named in LB_FAULT_CALLS or lbfault_calls_only: an
 * ENOMEM there is an address space that ran out). Every wrapped call on a
 * file whose path starts with LB_FAULT_DIR (all files when it is unset;
 * msync, which has no descriptor, always counts) is numbered from 1; the
 * call numbered LB_FAULT_AT fails with LB_FAULT_ERRNO and writes nothing.
 *
 * Environment, read at load time:
 *   LB_FAULT_AT      the call to fail (0 or unset: none, only count)
 *   LB_FAULT_ERRNO   ENOSPC (default), EIO, EDQUOT, or a number
 *   LB_FAULT_STICKY  1: every counted call from LB_FAULT_AT on fails (a
 *                    disk that stays full) until disarmed
 *   LB_FAULT_DIR     only count calls on files under this path prefix
 *   LB_FAULT_CALLS   comma list of call names to count (default: all but
 *                    mmap)
 *   LB_FAULT_LOG     1: print each injected failure on stderr
 *
 * A program may also drive the shim at run time through these functions,
 * found with dlsym(RTLD_DEFAULT, ...) so that it runs without the shim too:
 *   void lbfault_arm(long at, int err, int sticky)   at counts from now
 *   void lbfault_disarm(void)
 *   long lbfault_calls(void)    counted calls so far
 *   long lbfault_fired(void)    calls failed so far
 *   void lbfault_dir(const char *prefix)   NULL: every file
 *   void lbfault_calls_only(const char *list)   the calls to count, as
 *                               LB_FAULT_CALLS (NULL: the default set)
 * The call counter restarts at every lbfault_arm().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

enum {
	C_WRITE,
	C_PWRITE,
	C_WRITEV,
	C_PWRITEV,
	C_FSYNC,
	C_FDATASYNC,
	C_MSYNC,
	C_MMAP, /* counted only when named (lbfault_calls_only, LB_FAULT_CALLS)
	         */
	C_N
};
static const char *const call_name[C_N] = {
        "write", "pwrite",    "writev", "pwritev",
        "fsync", "fdatasync", "msync",  "mmap",
};

static atomic_long n_calls, n_fired, fail_at;
static atomic_int fail_errno = ENOSPC, sticky, logging;
static atomic_uint call_mask = (1u << C_MMAP) - 1;
static pthread_mutex_t dir_lock = PTHREAD_MUTEX_INITIALIZER;
static char dir_prefix[PATH_MAX];
static size_t dir_len;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_msync)(void *, size_t, int);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);

static int parse_errno(const char *s)
{
	if (!s || !*s || !strcmp(s, "ENOSPC"))
		return ENOSPC;
	if (!strcmp(s, "EIO"))
		return EIO;
	if (!strcmp(s, "EDQUOT"))
		return EDQUOT;
	return atoi(s) > 0 ? atoi(s) : ENOSPC;
}

static void set_dir(const char *p)
{
	pthread_mutex_lock(&dir_lock);
	if (p && *p && strlen(p) < sizeof dir_prefix) {
		strcpy(dir_prefix, p);
		dir_len = strlen(p);
	} else {
		dir_prefix[0] = 0;
		dir_len = 0;
	}
	pthread_mutex_unlock(&dir_lock);
}

#define RESOLVE(name) real_##name = dlsym(RTLD_NEXT, #name)
static pthread_once_t resolved = PTHREAD_ONCE_INIT;

static void resolve_all(void)
{
	RESOLVE(write);
	RESOLVE(pwrite);
	RESOLVE(pwrite64);
	RESOLVE(writev);
	RESOLVE(pwritev);
	RESOLVE(pwritev64);
	RESOLVE(fsync);
	RESOLVE(fdatasync);
	RESOLVE(msync);
	RESOLVE(mmap);
}

/* The calls named in a comma list, as a mask. */
static unsigned parse_calls(const char *s)
{
	unsigned m = 0;
	for (int i = 0; i < C_N; i++) {
		const char *p = strstr(s, call_name[i]);
		size_t n = strlen(call_name[i]);
		/* a whole word of the list: "write" is not "pwrite" */
		while (p && ((p > s && p[-1] != ',') || (p[n] && p[n] != ',')))
			p = strstr(p + 1, call_name[i]);
		if (p)
			m |= 1u << i;
	}
	return m;
}

/* Another library's constructor may write before ours ran. */
#define REAL(name) (pthread_once(&resolved, resolve_all), real_##name)

__attribute__((constructor)) static void fault_init(void)
{
	const char *s;
	pthread_once(&resolved, resolve_all);
	if ((s = getenv("LB_FAULT_AT")))
		atomic_store(&fail_at, atol(s));
	atomic_store(&fail_errno, parse_errno(getenv("LB_FAULT_ERRNO")));
	if ((s = getenv("LB_FAULT_STICKY")))
		atomic_store(&sticky, atoi(s) != 0);
	if ((s = getenv("LB_FAULT_LOG")))
		atomic_store(&logging, atoi(s) != 0);
	set_dir(getenv("LB_FAULT_DIR"));
	if ((s = getenv("LB_FAULT_CALLS")) && *s)
		atomic_store(&call_mask, parse_calls(s));
}

/* Is fd a file under the prefix? Without a prefix every fd counts. */
static int fd_counts(int fd)
{
	char link[64], path[PATH_MAX];
	int yes;
	pthread_mutex_lock(&dir_lock);
	if (dir_len == 0) {
		pthread_mutex_unlock(&dir_lock);
		return 1;
	}
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	yes = n >= (ssize_t)dir_len && !memcmp(path, dir_prefix, dir_len);
	pthread_mutex_unlock(&dir_lock);
	return yes;
}

/* Count this call; 1 if it must fail (errno is then set). */
static int fault(int call, int fd)
{
	long at, n;
	if (!(atomic_load(&call_mask) & (1u << call)))
		return 0;
	if (fd >= 0 && !fd_counts(fd))
		return 0;
	n = atomic_fetch_add(&n_calls, 1) + 1;
	at = atomic_load(&fail_at);
	if (at <= 0 || (n != at && !(atomic_load(&sticky) && n > at)))
		return 0;
	atomic_fetch_add(&n_fired, 1);
	if (atomic_load(&logging)) {
		char msg[128];
		int len =
		        snprintf(msg, sizeof msg,
		                 "libfault: call %ld (%s on fd %d) fails: %s\n",
		                 n, call_name[call], fd,
		                 strerror(atomic_load(&fail_errno)));
		if (len > 0)
			(void)!REAL(write)(2, msg, (size_t)len);
	}
	errno = atomic_load(&fail_errno);
	return 1;
}

EXPORT ssize_t write(int fd, const void *p, size_t n)
{
	if (fault(C_WRITE, fd))
		return -1;
	return REAL(write)(fd, p, n);
}

EXPORT ssize_t pwrite(int fd, const void *p, size_t n, off_t off)
{
	if (fault(C_PWRITE, fd))
		return -1;
	return REAL(pwrite)(fd, p, n, off);
}

EXPORT ssize_t pwrite64(int fd, const void *p, size_t n, off_t off)
{
	if (fault(C_PWRITE, fd))
		return -1;
	return REAL(pwrite64)(fd, p, n, off);
}

EXPORT ssize_t writev(int fd, const struct iovec *v, int n)
{
	if (fault(C_WRITEV, fd))
		return -1;
	return REAL(writev)(fd, v, n);
}

EXPORT ssize_t pwritev(int fd, const struct iovec *v, int n, off_t off)
{
	if (fault(C_PWRITEV, fd))
		return -1;
	return REAL(pwritev)(fd, v, n, off);
}

EXPORT ssize_t pwritev64(int fd, const struct iovec *v, int n, off_t off)
{
	if (fault(C_PWRITEV, fd))
		return -1;
	return REAL(pwritev64)(fd, v, n, off);
}

EXPORT int fsync(int fd)
{
	if (fault(C_FSYNC, fd))
		return -1;
	return REAL(fsync)(fd);
}

EXPORT int fdatasync(int fd)
{
	if (fault(C_FDATASYNC, fd))
		return -1;
	return REAL(fdatasync)(fd);
}

EXPORT int msync(void *addr, size_t n, int flags)
{
	if (fault(C_MSYNC, -1))
		return -1;
	return REAL(msync)(addr, n, flags);
}

/* Mappings of files only (LMDB maps its data file; anonymous mappings are
 * the allocator's). */
EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd,
                  off_t off)
{
	if (fd >= 0 && fault(C_MMAP, fd))
		return MAP_FAILED;
	return REAL(mmap)(addr, len, prot, flags, fd, off);
}

/* ---- run-time control ---------------------------------------------------- */

EXPORT void lbfault_arm(long at, int err, int stick)
{
	atomic_store(&fail_at, 0);
	atomic_store(&n_calls, 0);
	atomic_store(&fail_errno, err ? err : ENOSPC);
	atomic_store(&sticky, stick != 0);
	atomic_store(&fail_at, at);
}

EXPORT void lbfault_disarm(void)
{
	atomic_store(&fail_at, 0);
	atomic_store(&sticky, 0);
}

EXPORT long lbfault_calls(void)
{
	return atomic_load(&n_calls);
}

EXPORT long lbfault_fired(void)
{
	return atomic_load(&n_fired);
}

EXPORT void lbfault_dir(const char *prefix)
{
	set_dir(prefix);
}

EXPORT void lbfault_calls_only(const char *list)
{
	atomic_store(&call_mask, list ? parse_calls(list) : (1u << C_MMAP) - 1);
}
