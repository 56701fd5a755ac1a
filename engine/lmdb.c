/* SPDX-License-Identifier: MIT */
/*
 * lmdb.c: the LMDB boundary. LMDB's and errno's codes become LB_E* codes
 * here and nowhere else (lb__mdb_fail), with lb__mapfull telling a full map
 * (which the engine grows) from a full disk; a failed write is told apart
 * from a full disk or file size limit (lb__full_or_io); lb__rewrap puts
 * context before a detail.
 *
 * Write transactions are marked while live (lb__wtxn_*): LMDB writes a
 * commit's meta page, then publishes its id in the lock file for readers.
 * A writer killed between the two leaves a commit that is durable but that
 * readers of other processes do not see, until the next writer takes
 * LMDB's lock (which publishes it). A reader that finds the newest meta
 * page ahead of its snapshot asks lb__wtxn_live whether that commit's
 * writer lives: if it does, the commit is simply not finished (the
 * snapshot is right); if not, the reader publishes it (db.c). The mark of
 * transaction N is db->wtxn for this process, and an open file description
 * lock (F_OFD_SETLK) on byte N of data.mdb for the others: the kernel
 * drops it when its process dies. Nothing else locks data.mdb, and the
 * descriptor is LMDB's own: no descriptor of the database's files is
 * opened or closed for it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "engine/internal.h"

_Thread_local int lb__mapfull;

int lb__mdb_fail(int mrc, const char *what)
{
	lb__mapfull = mrc == MDB_MAP_FULL;
	switch (mrc) {
	case MDB_NOTFOUND:
		return lb__fail(LB_ENOTFOUND, "%s: not found", what);
	case MDB_MAP_FULL:
		return lb__fail(LB_EFULL, "%s: database map is full", what);
	case ENOSPC:
#ifdef EDQUOT
	case EDQUOT:
#endif
		return lb__fail(LB_EFULL, "%s: no space left on device", what);
	case EFBIG:
		return lb__fail(LB_EFULL,
		                "%s: the file would pass the size limit of "
		                "this process (RLIMIT_FSIZE, ulimit -f)",
		                what);
	case ENOMEM:
		return lb__fail(LB_ENOMEM, "%s: out of memory", what);
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_BAD_TXN:
		return lb__fail(LB_ECORRUPT, "%s: %s", what, mdb_strerror(mrc));
	case MDB_VERSION_MISMATCH:
		return lb__fail(LB_EVERSION, "%s: %s", what, mdb_strerror(mrc));
	case MDB_READERS_FULL:
	case EAGAIN:
	case EBUSY:
		return lb__fail(LB_EBUSY, "%s: %s", what, mdb_strerror(mrc));
	case MDB_TXN_FULL:
		return lb__fail(LB_ETOOBIG,
		                "%s: batch too large for one transaction",
		                what);
	case MDB_KEYEXIST:
		return lb__fail(LB_EEXIST, "%s: key exists", what);
	case MDB_BAD_VALSIZE:
		return lb__fail(LB_ETOOBIG,
		                "%s: key or value size not supported", what);
	case MDB_DBS_FULL:
		return lb__fail(LB_EFULL, "%s: too many tables", what);
	case EINVAL:
		return lb__fail(LB_EINVAL, "%s: invalid argument", what);
	default:
		return lb__fail(LB_EIO, "%s: %s", what, mdb_strerror(mrc));
	}
}

int lb__rewrap(int rc, const char *fmt, ...)
{
	char old[512], pre[256];
	va_list ap;
	snprintf(old, sizeof old, "%s", lb_errmsg());
	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	return lb__fail(rc, "%s: %s", pre, old);
}

int lb__full_or_io(lb_db *db, int rc)
{
	struct statvfs vfs;
	/* Every failed commit comes here: LMDB may have marked the
	 * environment failed, which the next write checks. */
	atomic_store(&db->env_check, 1);
	/* LMDB turns a write that a full disk cut short into EIO; tell the
	 * caller what the disk says. */
	if (rc == LB_EIO && statvfs(db->path, &vfs) == 0 &&
	    (uint64_t)vfs.f_bavail * vfs.f_frsize < (1u << 20))
		return lb__rewrap(LB_EFULL, "the disk is full");
	/* ... or that the file size limit cut short */
	struct rlimit rl;
	struct stat st;
	char file[PATH_MAX];
	if (rc == LB_EIO && getrlimit(RLIMIT_FSIZE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY &&
	    snprintf(file, sizeof file, "%s/data.mdb", db->path) <
	            (int)sizeof file &&
	    stat(file, &st) == 0 &&
	    (uint64_t)st.st_size + (1u << 20) >= (uint64_t)rl.rlim_cur)
		return lb__rewrap(LB_EFULL,
		                  "the file reached the size limit of this "
		                  "process (RLIMIT_FSIZE, ulimit -f)");
	return rc;
}

/* ---- writer marks -------------------------------------------------------- */

static int wtxn_lock(lb_db *db, uint64_t txnid, short type, int cmd,
                     struct flock *fl)
{
	int fd;
	if (!db->env || txnid > (uint64_t)INT64_MAX ||
	    mdb_env_get_fd(db->env, &fd) != 0)
		return -1;
	*fl = (struct flock){.l_type = type,
	                     .l_whence = SEEK_SET,
	                     .l_start = (off_t)txnid,
	                     .l_len = 1};
	return fcntl(fd, cmd, fl);
}

int lb__wtxn_begin(lb_db *db, MDB_txn **txn)
{
	struct flock fl;
	int mrc = mdb_txn_begin(db->env, NULL, 0, txn);
	if (mrc)
		return mrc;
	uint64_t id = mdb_txn_id(*txn);
	atomic_store(&db->wtxn, id);
	/* when it cannot be taken, readers that meet this commit unpublished
	 * publish it themselves, waiting for LMDB's lock: slower, as right */
	(void)wtxn_lock(db, id, F_WRLCK, F_OFD_SETLK, &fl);
	return 0;
}

/* After the transaction ended: its mark is for an id that no later meta
 * page will carry unpublished while this process lives. */
static void wtxn_unmark(lb_db *db)
{
	struct flock fl;
	uint64_t id = atomic_exchange(&db->wtxn, 0);
	if (id)
		(void)wtxn_lock(db, id, F_UNLCK, F_OFD_SETLK, &fl);
}

int lb__wtxn_commit(lb_db *db, MDB_txn *txn)
{
	int mrc = mdb_txn_commit(txn);
	wtxn_unmark(db);
	return mrc;
}

void lb__wtxn_abort(lb_db *db, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	wtxn_unmark(db);
}

int lb__wtxn_live(lb_db *db, uint64_t txnid)
{
	struct flock fl;
	if (atomic_load(&db->wtxn) == txnid)
		return 1;
	/* a lock of this process's own description is not reported: that
	 * is db->wtxn, above */
	return wtxn_lock(db, txnid, F_WRLCK, F_OFD_GETLK, &fl) == 0 &&
	       fl.l_type != F_UNLCK;
}
