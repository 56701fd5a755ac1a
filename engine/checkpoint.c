/* SPDX-License-Identifier: MIT */
/*
 * checkpoint.c: checkpoints (lb_checkpoint, lb_checkpoints), pruning
 * (lb_prune), and the directory handling that checkpoints and replays share.
 *
 * A checkpoint is a compacted copy of the whole environment made by
 * mdb_env_copy2(MDB_CP_COMPACT), which reads through one LMDB read
 * transaction: other threads go on committing and reading while it runs,
 * and the copy is exactly the snapshot that transaction saw. The batch it
 * holds (`at`) is read back from the copy itself, so it is right however
 * many batches commit during the copy.
 *
 * Nothing that looks like a database ever appears at the destination
 * before it is complete: the copy is written into a hidden sibling
 * directory `.<name>.tmp-XXXXXX` next to the destination, finished there
 * (its own `_checkpoints` emptied, but for the one registration that a
 * replay of a pruned copy must start from: copy_checkpoints), synced, and
 * renamed onto the destination in one step. A killed checkpoint leaves at most
 * such a hidden directory, which may be removed. Replay (replay.c) builds
 * its output the same way.
 *
 * The checkpoint is then registered in the source's `_checkpoints` (key:
 * `at` u64 BE; value: msgpack [absolute path, time_ns]) by a short write
 * transaction under the writer lock. Registration is not a logged batch
 * and consumes no batch id. A second checkpoint at the same batch replaces
 * the entry.
 *
 * Pruning deletes the `_wal` segments of every batch before a given one and
 * sets `pruned` in their headers, in one write transaction. `pruned` is
 * state, outside the chain hash, so the chain still verifies. It is
 * allowed only while a registered checkpoint at or after the last pruned
 * batch exists on disk, since that checkpoint is then the only base a
 * replay can start from.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/internal.h"

/* ---- destination directories -------------------------------------------- */

static int errno_fail(int e, const char *what, const char *path)
{
	int rc = LB_EIO;
	if (e == ENOSPC
#ifdef EDQUOT
	    || e == EDQUOT
#endif
	)
		rc = LB_EFULL;
	else if (e == ENOMEM)
		rc = LB_ENOMEM;
	else if (e == ENOENT)
		rc = LB_ENOTFOUND;
	return lb__fail(rc, "%s %s: %s", what, path, strerror(e));
}

int lb__dest_check(const char *dir)
{
	struct stat st;
	if (!dir || !*dir)
		return lb__fail(LB_EINVAL, "destination directory is empty");
	if (stat(dir, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		return errno_fail(errno, "cannot inspect", dir);
	}
	if (!S_ISDIR(st.st_mode))
		return lb__fail(LB_EEXIST, "%s exists and is not a directory",
		                dir);
	DIR *d = opendir(dir);
	if (!d)
		return errno_fail(errno, "cannot read directory", dir);
	struct dirent *e;
	int found = 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			found = 1;
			break;
		}
	}
	closedir(d);
	if (found)
		return lb__fail(LB_EEXIST,
		                "%s is not empty: the destination must not "
		                "exist or be an empty directory",
		                dir);
	return 0;
}

static int mkdir_p(const char *dir)
{
	char *p = strdup(dir);
	if (!p)
		return lb__fail(LB_ENOMEM, "out of memory");
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			int rc =
			        errno_fail(errno, "cannot create directory", p);
			free(p);
			return rc;
		}
		*s = '/';
	}
	int rc = 0;
	if (mkdir(p, 0755) != 0 && errno != EEXIST)
		rc = errno_fail(errno, "cannot create directory", p);
	free(p);
	return rc;
}

/* Split dest (trailing slashes ignored) into its parent and last name. */
static int split_dest(const char *dest, char **parent, char **base)
{
	size_t n = strlen(dest);
	while (n > 1 && dest[n - 1] == '/')
		n--;
	size_t b = n;
	while (b > 0 && dest[b - 1] != '/')
		b--;
	if (b == n || (n - b == 1 && dest[b] == '.') ||
	    (n - b == 2 && dest[b] == '.' && dest[b + 1] == '.'))
		return lb__fail(LB_EINVAL,
		                "%s: the destination needs a name of its own",
		                dest);
	*base = strndup(dest + b, n - b);
	if (b == 0)
		*parent = strdup(".");
	else if (b == 1)
		*parent = strdup("/");
	else
		*parent = strndup(dest, b - 1);
	if (!*base || !*parent) {
		free(*base);
		free(*parent);
		return lb__fail(LB_ENOMEM, "out of memory");
	}
	return 0;
}

int lb__dest_tmp(const char *dest, char **tmp)
{
	char *parent, *base;
	*tmp = NULL;
	int rc = split_dest(dest, &parent, &base);
	if (rc < 0)
		return rc;
	if ((rc = mkdir_p(parent)) == 0) {
		/* a long name is cut: the temporary name must fit NAME_MAX */
		if (asprintf(tmp, "%s/.%.200s.tmp-XXXXXX", parent, base) < 0) {
			*tmp = NULL;
			rc = lb__fail(LB_ENOMEM, "out of memory");
		} else if (!mkdtemp(*tmp)) {
			rc = errno_fail(errno, "cannot create", *tmp);
			free(*tmp);
			*tmp = NULL;
		}
	}
	free(parent);
	free(base);
	return rc;
}

void lb__rmdir_files(const char *dir)
{
	DIR *d;
	if (!dir)
		return;
	if (!(d = opendir(dir))) {
		/* No memory for a DIR (this cleans up after failures, out
		 * of memory among them): the library builds LMDB
		 * environments, whose files it knows. */
		int fd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			unlinkat(fd, "data.mdb", 0);
			unlinkat(fd, "lock.mdb", 0);
			close(fd);
		}
		rmdir(dir);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	rmdir(dir);
}

/* Sync a directory so that a new entry in it survives a power loss. */
static int fsync_path(const char *path, int dir)
{
	int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno_fail(errno, "cannot open for syncing", path);
	int r = fsync(fd), e = errno;
	close(fd);
	/* Some file systems cannot sync a directory; that is not a failure
	 * of the data. */
	if (r != 0 && e != EINVAL && e != EROFS)
		return errno_fail(e, "cannot sync", path);
	return 0;
}

int lb__dest_publish(const char *tmp, const char *dest)
{
	/* The parent to sync, found first: nothing is renamed when that
	 * fails (out of memory). */
	char *parent, *base;
	int rc = split_dest(dest, &parent, &base);
	if (rc < 0)
		return rc;
	free(base);
	/* An empty directory at dest is replaced; anything else makes
	 * rename fail, and nothing is overwritten. */
	if (rename(tmp, dest) != 0) {
		int e = errno;
		free(parent);
		if (e == ENOTEMPTY || e == EEXIST || e == ENOTDIR ||
		    e == EISDIR)
			return lb__fail(LB_EEXIST,
			                "%s appeared while it was being built: "
			                "not replaced",
			                dest);
		return errno_fail(e, "cannot rename to", dest);
	}
	rc = fsync_path(parent, 1);
	free(parent);
	/* A destination whose entry may not survive a power loss is not
	 * handed out: the call fails and leaves nothing. */
	if (rc < 0)
		lb__rmdir_files(dest);
	return rc;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- checkpoint ---------------------------------------------------------- */

static int ckpt_encode(lb_buf *b, const char *path, int64_t t)
{
	int rc;
	if ((rc = lb__mpw_array(b, 2)) < 0 ||
	    (rc = lb__mpw_str(b, path, strlen(path))) < 0 ||
	    (rc = lb__mpw_int(b, t)) < 0)
		return rc;
	return 0;
}

/* Decode a _checkpoints value into a malloc'd path and its time. */
static int ckpt_decode(const MDB_val *v, char **path, int64_t *t)
{
	lb_mp m = {v->mv_data, (const uint8_t *)v->mv_data + v->mv_size};
	uint32_t n, len;
	const char *s;
	*path = NULL;
	if (lb__mp_array(&m, &n) < 0 || n != 2 ||
	    lb__mp_str(&m, &s, &len) < 0 || len == 0 || lb__mp_int(&m, t) < 0 ||
	    m.p != m.end || memchr(s, 0, len))
		return lb__fail(LB_ECORRUPT, "_checkpoints: malformed entry");
	if (!(*path = strndup(s, len)))
		return lb__fail(LB_ENOMEM, "out of memory");
	return 0;
}

/* Does the checkpoint directory still hold its data.mdb? 1, 0, or
 * LB_ENOMEM. */
static int ckpt_on_disk(const char *path)
{
	struct stat st;
	char *file;
	if (asprintf(&file, "%s/data.mdb", path) < 0)
		return lb__fail(LB_ENOMEM, "out of memory");
	int ok = stat(file, &st) == 0 && S_ISREG(st.st_mode);
	free(file);
	return ok;
}

/* The last pruned batch of db as txn sees it (pruned batches are a prefix
 * of the log), 0 if none. A header that cannot be read counts as not
 * pruned: the copy is then damaged, which verify reports. */
static int prune_horizon(lb_db *db, MDB_txn *txn, uint64_t last,
                         uint64_t *horizon)
{
	uint64_t lo = 0, hi = last;
	*horizon = 0;
	/* lo is pruned (or 0), every batch after hi is not */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo + 1) / 2;
		lb_wal_hdr h;
		int rc = lb__hdr_get(db, txn, mid, &h);
		if (rc == LB_ENOMEM || rc == LB_EIO)
			return rc;
		int pruned = rc == 0 && h.pruned;
		if (rc == 0)
			lb__hdr_free(&h);
		if (pruned)
			lo = mid;
		else
			hi = mid - 1;
	}
	*horizon = lo;
	return 0;
}

/* Rewrite the copy's _checkpoints (copied from the source, as of the
 * copy's snapshot) in txn. The source's checkpoints are not checkpoints of
 * the copy, so they go; but when the copy's log is pruned up to batch P,
 * the copy can only be replayed (and verified with replay) from a
 * checkpoint at a batch in P..at, and the source's registrations are the
 * only record of where one is. Such a checkpoint holds batches 1..at' of
 * the copy's own history (same headers, same hashes), so it is a base of
 * the copy as much as of the source: the newest one still on disk keeps
 * its registration, path and time unchanged. */
static int copy_checkpoints(lb_db *c, MDB_txn *txn, uint64_t at)
{
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t horizon, kat = 0;
	char *kpath = NULL;
	int64_t kt = 0;
	int rc, mrc;
	if ((rc = prune_horizon(c, txn, at, &horizon)) < 0)
		return rc;
	if (horizon) {
		if ((mrc = mdb_cursor_open(txn, c->ckpts, &cur)))
			return lb__mdb_fail(mrc, "_checkpoints");
		/* newest first; an entry that does not decode is skipped:
		 * it is not kept either way */
		for (mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST); mrc == 0;
		     mrc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
			if (k.mv_size != 8)
				continue;
			uint64_t e = lb__get_be64(k.mv_data);
			if (e < horizon)
				break;
			if (e > at)
				continue;
			if ((rc = ckpt_decode(&v, &kpath, &kt)) < 0) {
				if (rc == LB_ENOMEM)
					break;
				rc = 0;
				continue;
			}
			if ((rc = ckpt_on_disk(kpath)) < 0)
				break;
			if (rc) {
				rc = 0;
				kat = e;
				break;
			}
			free(kpath);
			kpath = NULL;
		}
		if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
			rc = lb__mdb_fail(mrc, "_checkpoints");
		mdb_cursor_close(cur);
	}
	if (rc == 0 && (mrc = mdb_drop(txn, c->ckpts, 0)))
		rc = lb__mdb_fail(mrc, "_checkpoints");
	if (rc == 0 && kpath) {
		lb_buf b;
		uint8_t kb[8];
		lb__buf_init(&b);
		lb__be64(kb, kat);
		if ((rc = ckpt_encode(&b, kpath, kt)) == 0) {
			MDB_val nk = {8, kb}, nv = {b.len, b.data};
			if ((mrc = mdb_put(txn, c->ckpts, &nk, &nv, 0)))
				rc = lb__mdb_fail(mrc, "_checkpoints");
		}
		lb__buf_free(&b);
	}
	free(kpath);
	return rc;
}

/* Read the copy's last batch, settle its own _checkpoints
 * (copy_checkpoints) and make it durable. The copy is opened as a logbook
 * database, which also checks that it is one. */
static int finish_copy(const char *dir, uint64_t *at)
{
	lb_options o;
	lb_db *c;
	MDB_txn *txn;
	lb_options_init(&o);
	int rc = lb_open(dir, &o, &c);
	if (rc < 0)
		return lb__rewrap(rc, "opening the copy");
	*at = c->last_id;
	int mrc = mdb_txn_begin(c->env, NULL, 0, &txn);
	if (mrc == 0) {
		if ((rc = copy_checkpoints(c, txn, *at)) < 0)
			mdb_txn_abort(txn);
		else
			mrc = mdb_txn_commit(txn);
	}
	if (rc == 0 && mrc == 0)
		mrc = mdb_env_sync(c->env, 1);
	if (rc == 0 && mrc)
		rc = lb__mdb_fail(mrc, "finishing the copy");
	lb_close(c);
	if (rc == 0) {
		/* lock.mdb is recreated by whoever opens the checkpoint
		 * (removed without allocating: nothing to fail here) */
		int fd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			unlinkat(fd, "lock.mdb", 0);
			close(fd);
		}
		rc = fsync_path(dir, 1);
	}
	return rc;
}

static int do_register(lb_db *db, uint64_t at, const char *path)
{
	lb_buf v;
	MDB_txn *txn;
	uint8_t kb[8];
	int rc;
	lb__buf_init(&v);
	if ((rc = ckpt_encode(&v, path, now_ns())) < 0) {
		lb__buf_free(&v);
		return rc;
	}
	lb__be64(kb, at);
	MDB_val k = {8, kb}, d = {v.len, v.data};
	pthread_mutex_lock(&db->wlock);
	if ((rc = lb__grow_map_if_needed(db)) == 0) {
		lb__read_begin(db);
		int mrc = lb__write_txn(db, &txn);
		if (mrc == 0) {
			mrc = mdb_put(txn, db->ckpts, &k, &d, 0);
			if (mrc == 0)
				mrc = lb__wtxn_commit(db, txn);
			else
				lb__wtxn_abort(db, txn);
		}
		if (mrc)
			rc = lb__full_or_io(
			        db, lb__mdb_fail(mrc,
			                         "registering the checkpoint"));
		lb__read_end(db);
	}
	pthread_mutex_unlock(&db->wlock);
	lb__buf_free(&v);
	return rc;
}

int lb_checkpoint(lb_db *db, const char *dest_dir, uint64_t *at_batch)
{
	char *tmp = NULL, *abs = NULL;
	uint64_t at = 0;
	int rc, mrc;
	if (at_batch)
		*at_batch = 0;
	if (!db || !dest_dir || !*dest_dir)
		return lb__fail(LB_EINVAL, "lb_checkpoint: NULL or empty "
		                           "argument");
	if (db->flags & LB_RDONLY)
		return lb__fail(LB_EINVAL,
		                "%s: database is open read-only: a checkpoint "
		                "must be registered in it",
		                db->path);
	if ((rc = lb__dest_check(dest_dir)) < 0)
		return rc;
	if ((rc = lb__dest_tmp(dest_dir, &tmp)) < 0)
		return rc;
	for (int tries = 0;; tries++) {
		if ((rc = lb__read_env(db)) < 0)
			goto fail;
		mrc = mdb_env_copy2(db->env, tmp, MDB_CP_COMPACT);
		lb__read_end(db);
		if (mrc != MDB_MAP_RESIZED || tries >= LB__CATALOG_TRIES)
			break;
		/* another process grew the map: adopt it, copy again */
		lb__rmdir_files(tmp);
		if (mkdir(tmp, 0700) != 0) {
			rc = lb__fail(LB_EIO, "%s: %s", tmp, strerror(errno));
			goto fail;
		}
		if ((rc = lb__map_adopt(db)) < 0)
			goto fail;
	}
	if (mrc) {
		rc = lb__mdb_fail(mrc, "copying the database");
		goto fail;
	}
	if ((rc = finish_copy(tmp, &at)) < 0)
		goto fail;
	if ((rc = lb__dest_publish(tmp, dest_dir)) < 0)
		goto fail;
	free(tmp);
	tmp = NULL;
	if (!(abs = realpath(dest_dir, NULL))) {
		rc = errno_fail(errno, "cannot resolve", dest_dir);
		lb__rmdir_files(dest_dir);
		return rc;
	}
	if ((rc = do_register(db, at, abs)) < 0) {
		/* an unregistered copy is not a checkpoint: leave nothing */
		lb__rmdir_files(abs);
		free(abs);
		return rc;
	}
	free(abs);
	if (at_batch)
		*at_batch = at;
	return 0;
fail:
	lb__rmdir_files(tmp);
	free(tmp);
	return rc;
}

typedef struct ckpt_ent {
	uint64_t at;
	int64_t t;
	char *path;
} ckpt_ent;

static void ents_free(ckpt_ent *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].path);
	free(e);
}

/* Read every registered checkpoint (oldest first) from txn. */
static int ckpts_read(lb_db *db, MDB_txn *txn, ckpt_ent **out, size_t *nout)
{
	MDB_cursor *c;
	MDB_val k, v;
	ckpt_ent *e = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	*out = NULL;
	*nout = 0;
	int mrc = mdb_cursor_open(txn, db->ckpts, &c);
	if (mrc)
		return lb__mdb_fail(mrc, "_checkpoints");
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8) {
			rc = lb__fail(LB_ECORRUPT, "_checkpoints: bad key");
			break;
		}
		if ((rc = lb__grow(&e, &cap, n + 1, sizeof *e, 8)) < 0)
			break;
		e[n].at = lb__get_be64(k.mv_data);
		if ((rc = ckpt_decode(&v, &e[n].path, &e[n].t)) < 0)
			break;
		n++;
	}
	if (rc == 0 && mrc != MDB_NOTFOUND)
		rc = lb__mdb_fail(mrc, "_checkpoints");
	mdb_cursor_close(c);
	if (rc < 0) {
		ents_free(e, n);
		return rc;
	}
	*out = e;
	*nout = n;
	return 0;
}

int lb_checkpoints(lb_db *db, lb_checkpoint_fn fn, void *ctx)
{
	MDB_txn *txn;
	ckpt_ent *e;
	size_t n;
	if (!db || !fn)
		return lb__fail(LB_EINVAL, "lb_checkpoints: NULL argument");
	int rc = lb__read_txn(db, &txn);
	if (rc < 0)
		return rc;
	rc = ckpts_read(db, txn, &e, &n);
	lb__read_done(db, txn);
	if (rc < 0)
		return rc;
	/* The callback runs with no transaction or lock held: it may call
	 * back into the library. */
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = fn(ctx, e[i].at, e[i].path, e[i].t);
	ents_free(e, n);
	return rc;
}

int lb__checkpoint_find(lb_db *db, MDB_txn *txn, uint64_t lo, uint64_t hi,
                        uint64_t *at, char **path)
{
	ckpt_ent *e;
	size_t n;
	*at = 0;
	*path = NULL;
	int rc = ckpts_read(db, txn, &e, &n);
	if (rc < 0)
		return rc;
	rc = LB_ENOTFOUND;
	for (size_t i = 0; i < n; i++) {
		if (e[i].at < lo || e[i].at > hi)
			continue;
		int ok = ckpt_on_disk(e[i].path);
		if (ok < 0) {
			rc = ok;
			break;
		}
		if (ok) {
			*at = e[i].at;
			*path = e[i].path;
			e[i].path = NULL;
			rc = 0;
			break;
		}
	}
	ents_free(e, n);
	if (rc == LB_ENOTFOUND)
		return lb__fail(LB_ENOTFOUND,
		                "no registered checkpoint at a batch in "
		                "%llu..%llu exists on disk",
		                (unsigned long long)lo, (unsigned long long)hi);
	return rc;
}

/* ---- prune --------------------------------------------------------------- */

static int prune_txn(lb_db *db, MDB_txn *txn, uint64_t before)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t last = 0, at;
	char *path;
	lb_buf enc;
	int rc, mrc;

	if ((mrc = mdb_cursor_open(txn, db->batches, &c)))
		return lb__mdb_fail(mrc, "_batches");
	mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	mdb_cursor_close(c);
	if (mrc == 0 && k.mv_size == 8)
		last = lb__get_be64(k.mv_data);
	else if (mrc == 0)
		return lb__fail(LB_ECORRUPT, "_batches: bad key");
	else if (mrc != MDB_NOTFOUND)
		return lb__mdb_fail(mrc, "_batches");
	if (before - 1 > last)
		return lb__fail(
		        LB_EINVAL,
		        "cannot prune before batch %llu: the last batch "
		        "is %llu",
		        (unsigned long long)before, (unsigned long long)last);
	rc = lb__checkpoint_find(db, txn, before - 1, UINT64_MAX, &at, &path);
	if (rc == LB_ENOTFOUND)
		return lb__fail(LB_EINVAL,
		                "pruning before batch %llu needs a checkpoint "
		                "at batch %llu or later (see lb_checkpoint); "
		                "none is registered and on disk",
		                (unsigned long long)before,
		                (unsigned long long)(before - 1));
	if (rc < 0)
		return rc;
	free(path);
	/* registered consumers hold back what they have not read */
	if ((rc = lb__consumers_hold(db, txn, before, last)) < 0)
		return rc;

	lb__buf_init(&enc);
	for (uint64_t id = 1; id < before; id++) {
		lb_wal_hdr h;
		if ((rc = lb__hdr_get(db, txn, id, &h)) < 0) {
			if (rc == LB_ENOTFOUND)
				rc = lb__fail(LB_ECORRUPT,
				              "batch %llu is missing from the "
				              "log",
				              (unsigned long long)id);
			break;
		}
		if (!h.pruned) {
			h.pruned = 1;
			enc.len = 0;
			rc = lb__hdr_encode(&h, &enc);
			uint8_t kb[8];
			lb__be64(kb, id);
			MDB_val hk = {8, kb}, hv = {enc.len, enc.data};
			if (rc == 0 &&
			    (mrc = mdb_put(txn, db->batches, &hk, &hv, 0)))
				rc = lb__mdb_fail(mrc, "_batches");
		}
		lb__hdr_free(&h);
		if (rc < 0)
			break;
	}
	lb__buf_free(&enc);
	if (rc < 0)
		return rc;

	/* Every segment keyed below (before, 0): _wal is ordered by batch
	 * id, so they are the first entries. */
	if ((mrc = mdb_cursor_open(txn, db->wal, &c)))
		return lb__mdb_fail(mrc, "_wal");
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size >= 8 && lb__get_be64(k.mv_data) >= before)
			break;
		if ((mrc = mdb_cursor_del(c, 0)))
			break;
	}
	mdb_cursor_close(c);
	if (mrc && mrc != MDB_NOTFOUND)
		return lb__mdb_fail(mrc, "pruning _wal");
	return 0;
}

static int prune_run(lb_db *db, MDB_txn *txn, void *before)
{
	return prune_txn(db, txn, *(const uint64_t *)before);
}

int lb_prune(lb_db *db, uint64_t before_batch)
{
	if (!db)
		return lb__fail(LB_EINVAL, "lb_prune: db is NULL");
	if (db->flags & LB_RDONLY)
		return lb__fail(LB_EINVAL, "%s: database is open read-only",
		                db->path);
	if (before_batch <= 1)
		return 0; /* no batch is older than batch 1 */
	return lb__write_run(db, prune_run, &before_batch,
	                     "beginning the prune", "committing the prune");
}
