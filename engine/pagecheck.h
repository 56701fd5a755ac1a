/* SPDX-License-Identifier: MIT */
/*
 * pagecheck.h: a structural check of an LMDB data file that does not go
 * through LMDB's own page walking, for files LMDB would trust blindly.
 */
#ifndef LB_ENGINE_PAGECHECK_H
#define LB_ENGINE_PAGECHECK_H

#include <lmdb.h>

/* What lb__pagecheck() walks. */
enum {
	/* What lb_open() reads: both meta pages, the free list, the main
	 * database (every sub-database record in it), all of `_meta`, and
	 * the path to the last entry of `_batches`. Small whatever the size
	 * of the database. Page and entry counts are not compared. */
	LB__PAGECHECK_OPEN = 0,
	/* Every page reachable from the snapshot: every tree, every
	 * duplicate sub-tree and overflow run, the free list's page numbers
	 * against them, and every record's page and entry counts against
	 * its tree (for lb_verify()). */
	LB__PAGECHECK_FULL = 1
};

/*
 * Check the pages of the snapshot that txn reads, by reading data.mdb with
 * pread() (never through the map), bounded by the file's size and by the
 * meta page's last page number: page numbers, page types and depths, the
 * free-space bounds, every node inside its page, key sizes, sub-pages,
 * overflow runs, sub-database records (and with LB__PAGECHECK_FULL their
 * page and entry counts), and no page reached twice. After it returns 0, LMDB
 * can walk the trees it checked without reading outside the file or failing an
 * assertion.
 *
 * txn: a read-only transaction that has read nothing yet, or a write
 * transaction that has written nothing yet (the snapshot is then the last
 * committed one), or NULL to check the last committed snapshot under a
 * read-only transaction of its own: only while no transaction of env is
 * live, as in lb_open(), since a map grown by another process is then
 * adopted (mdb_env_set_mapsize(env, 0)) as lb_open() would adopt it. The
 * read transaction pins the snapshot's pages against reuse by writers
 * while they are read. When a read-only txn's snapshot is no longer
 * described by a meta page (two commits since it began), txn is renewed
 * onto the newest snapshot (mdb_txn_reset + mdb_txn_renew), which is why it
 * must not have been read from yet.
 *
 * Returns 0, LB_ECORRUPT (lb_errmsg() names the page, its tree and what is
 * wrong), LB_EIO (a read failed), LB_ENOMEM, LB_EBUSY (writers kept moving
 * the snapshot on while its meta page was read), or an LMDB failure
 * translated by lb__mdb_fail().
 */
LB__WUR int lb__pagecheck(MDB_env *env, MDB_txn *txn, int full);

/*
 * The meta pages of the data file named file, read with pread() and checked as
 * lb__pagecheck() checks them (meta flag, magic, version, page size, the
 * newer one's last page inside the file), without LMDB. For when
 * mdb_env_open() itself failed: a last page number damaged to a huge value
 * makes it try to map that much and fail with ENOMEM, which this tells
 * apart as damage. 0 when the file is missing or empty (a new environment),
 * else as lb__pagecheck().
 */
LB__WUR int lb__pagecheck_metas(const char *file);

#endif
