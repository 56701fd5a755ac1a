# SPDX-License-Identifier: MIT
"""cffi build script (API mode) for the logbook package.

The C declarations below are the subset of include/logbook.h the package
uses; cffi checks them against the real header when it compiles the
extension, so a mismatch fails the build instead of corrupting memory.
liblogbook is found with ``pkg-config logbook``: an installed logbook
(``make install``), or the tree's own build when PKG_CONFIG_PATH names the
build directory, which holds ``logbook-uninstalled.pc`` (``make python``).
"""

import os
import shlex
import subprocess
import sys

from cffi import FFI

CDEF = r"""
typedef struct lb_db lb_db;
typedef struct lb_batch lb_batch;
typedef struct lb_snapshot lb_snapshot;
typedef struct lb_cursor lb_cursor;

#define LB_KEY_MAX ...
#define LB_LABEL_MAX ...
#define LB_ISSUES_MAX ...
#define LB_FORMAT_VERSION ...

enum {
    LB_OK, LB_ENOTFOUND, LB_EINVAL, LB_EVALIDATION, LB_ECONFLICT,
    LB_ECORRUPT, LB_EPRUNED, LB_EFULL, LB_EBUSY, LB_ENOMEM, LB_EIO,
    LB_EVERSION, LB_ETOOBIG, LB_EEXIST
};
enum { LB_CREATE, LB_RDONLY, LB_NOSYNC };
typedef enum { LB_ANY, LB_NIL, LB_BOOL, LB_INT, LB_FLOAT, LB_STR, LB_BIN,
               LB_ARRAY, LB_MAP } lb_type;
enum { LB_REQUIRED, LB_NULLABLE };
enum { LB_FMT_NONE, LB_FMT_DATE, LB_FMT_DATETIME };
enum { LB_HAS_MIN, LB_HAS_MAX };
enum { LB_CASCADE, LB_FORCE, LB_DRYRUN };
enum { LB_VERIFY_REPLAY };
enum { LB_OP_PUT, LB_OP_DELETE, LB_OP_TABLE };
typedef enum { LB_ISSUE_FORMAT, LB_ISSUE_DUPLICATE, LB_ISSUE_MISSING,
               LB_ISSUE_FOREIGN_KEY, LB_ISSUE_CONFLICT } lb_issue_kind;

const char *lb_strerror(int rc);
const char *lb_errmsg(void);
const char *lb_version(int *major, int *minor, int *patch);

typedef struct lb_options {
    unsigned flags;
    int compression;
    size_t segment_size;
    uint64_t map_size;
    ...;
} lb_options;
void lb_options_init(lb_options *o);
int lb_open(const char *dir, const lb_options *o, lb_db **db);
void lb_close(lb_db *db);

typedef struct lb_field {
    const char *name;
    lb_type type;
    unsigned flags;
    uint32_t max_len;
    const char *ref;
    const char *const *enum_values;
    size_t nenum;
    const char *pattern;
    int format;
    double min;
    double max;
    unsigned has_min_max;
    ...;
} lb_field;
typedef struct lb_schema {
    const lb_field *fields;
    size_t nfields;
    int closed;
    const char *key_field;
    ...;
} lb_schema;
int lb_table_create(lb_db *db, const char *name, const lb_schema *s);
typedef int (*lb_table_fn)(void *ctx, const char *name,
                           const lb_schema *schema, uint64_t records);
int lb_tables(lb_db *db, lb_table_fn fn, void *ctx);

int lb_get(lb_db *db, const char *table, const void *key, size_t klen,
           void **val, size_t *vlen);
int lb_snapshot_open(lb_db *db, lb_snapshot **s);
int lb_snapshot_get(lb_snapshot *s, const char *table, const void *key,
                    size_t klen, const void **val, size_t *vlen);
void lb_snapshot_close(lb_snapshot *s);
int lb_cursor_open(lb_snapshot *s, const char *table, lb_cursor **c);
int lb_cursor_seek(lb_cursor *c, const void *key, size_t klen);
int lb_cursor_next(lb_cursor *c, const void **k, size_t *kl,
                   const void **v, size_t *vl);
void lb_cursor_close(lb_cursor *c);

typedef struct lb_issue {
    lb_issue_kind kind;
    char *table;
    void *key;
    size_t klen;
    char *field;
    char *message;
    uint64_t batch;
    ...;
} lb_issue;
typedef struct lb_result {
    int rc;
    uint64_t batch_id;
    uint64_t records;
    lb_issue *issues;
    size_t nissues;
    size_t nissues_total;
    uint64_t *undone;
    size_t nundone;
    ...;
} lb_result;
void lb_result_free(lb_result *r);
int lb_table_alter(lb_db *db, const char *name, const lb_schema *s,
                   lb_result *res);

int lb_batch_begin(lb_db *db, const char *label, lb_batch **b);
int lb_put(lb_batch *b, const char *table, const void *key, size_t klen,
           const void *val, size_t vlen);
int lb_insert(lb_batch *b, const char *table, const void *key, size_t klen,
              const void *val, size_t vlen);
int lb_update(lb_batch *b, const char *table, const void *key, size_t klen,
              const void *val, size_t vlen);
int lb_delete(lb_batch *b, const char *table, const void *key, size_t klen);
int lb_batch_get(lb_batch *b, const char *table, const void *key,
                 size_t klen, const void **val, size_t *vlen);
int lb_batch_commit(lb_batch *b, lb_result *res);
void lb_batch_abort(lb_batch *b);

typedef struct lb_change {
    int op;
    const char *table;
    const void *key;
    size_t klen;
    const void *before;
    size_t blen;
    int has_before;
    const void *after;
    size_t alen;
    int has_after;
    ...;
} lb_change;
typedef struct lb_batch_info {
    uint64_t id;
    int64_t time_ns;
    char label[...];
    uint64_t records;
    uint32_t segments;
    uint64_t raw_bytes;
    uint64_t stored_bytes;
    uint64_t undoes;
    uint64_t rolled_back_by;
    int pruned;
    uint8_t hash[32];
    ...;
} lb_batch_info;
int lb_last_batch(lb_db *db, uint64_t *id);
int lb_batch_info_get(lb_db *db, uint64_t id, lb_batch_info *out);
typedef int (*lb_change_fn)(void *ctx, const lb_change *c);
int lb_changes(lb_db *db, uint64_t id, lb_change_fn fn, void *ctx);
typedef int (*lb_history_fn)(void *ctx, uint64_t batch, const lb_change *c);
int lb_history(lb_db *db, const char *table, const void *key, size_t klen,
               lb_history_fn fn, void *ctx);

int lb_rollback(lb_db *db, uint64_t id, unsigned flags, lb_result *res);
int lb_rollback_to(lb_db *db, uint64_t id, lb_result *res);
int lb_rollback_to_ex(lb_db *db, uint64_t id, unsigned flags,
                      lb_result *res);

int lb_checkpoint(lb_db *db, const char *dest_dir, uint64_t *at_batch);
int lb_replay(lb_db *src, const char *dest_dir, uint64_t to_batch,
              const char *from_checkpoint, lb_result *res);
typedef struct lb_verify_report {
    uint64_t batches, segments, records;
    uint64_t bad_batch;
    int chain_ok, replay_ok;
    char detail[...];
    ...;
} lb_verify_report;
int lb_verify(lb_db *db, unsigned flags, lb_verify_report *rep);
typedef int (*lb_checkpoint_fn)(void *ctx, uint64_t batch, const char *path,
                                int64_t time_ns);
int lb_checkpoints(lb_db *db, lb_checkpoint_fn fn, void *ctx);
int lb_prune(lb_db *db, uint64_t before_batch);

/* The log as a feed: following, as-of reads, diffs, consumers. */
int lb_wait(lb_db *db, uint64_t after, int timeout_ms, uint64_t *last);
int lb_get_asof(lb_db *db, uint64_t batch, const char *table,
                const void *key, size_t klen, void **val, size_t *vlen);
int lb_diff(lb_db *db, uint64_t from, uint64_t to, lb_change_fn fn,
            void *ctx);
typedef struct lb_consumer_info {
    char name[...];
    uint64_t acked;
    int64_t time_ns;
    int lost;
    ...;
} lb_consumer_info;
int lb_consumer_ack(lb_db *db, const char *name, uint64_t batch);
int lb_consumer_get(lb_db *db, const char *name, lb_consumer_info *out);
int lb_consumer_drop(lb_db *db, const char *name);
typedef int (*lb_consumer_fn)(void *ctx, const lb_consumer_info *c);
int lb_consumers(lb_db *db, lb_consumer_fn fn, void *ctx);
int lb_consumer_limits_set(lb_db *db, uint64_t max_lag, uint64_t max_age_s);
int lb_consumer_limits_get(lb_db *db, uint64_t *max_lag,
                           uint64_t *max_age_s);

/* Walks that collect into Python objects, through one trampoline each. */
extern "Python" int _lbpy_table_cb(void *, const char *, const lb_schema *,
                                   uint64_t);
extern "Python" int _lbpy_change_cb(void *, const lb_change *);
extern "Python" int _lbpy_history_cb(void *, uint64_t, const lb_change *);
extern "Python" int _lbpy_checkpoint_cb(void *, uint64_t, const char *,
                                        int64_t);
extern "Python" int _lbpy_consumer_cb(void *, const lb_consumer_info *);

void free(void *);
"""

SOURCE = r"""
#include <stdlib.h>
#include <logbook.h>
"""


def _pkg_config(*args):
    pc = os.environ.get("PKG_CONFIG", "pkg-config")
    try:
        out = subprocess.run([pc, *args, "logbook"], check=True,
                             capture_output=True, text=True).stdout
    except FileNotFoundError:
        sys.exit("logbook: pkg-config not found (apt-get install pkg-config)")
    except subprocess.CalledProcessError as e:
        sys.exit("logbook: `pkg-config %s logbook` failed: %s\n"
                 "Install liblogbook first (make install), or build in the "
                 "source tree with `make python`." %
                 (" ".join(args), e.stderr.strip()))
    return shlex.split(out)


def _build_flags():
    include_dirs, library_dirs, libraries, extra_link = [], [], [], []
    for f in _pkg_config("--cflags"):
        if f.startswith("-I"):
            include_dirs.append(f[2:])
    for f in _pkg_config("--libs"):
        if f.startswith("-L"):
            library_dirs.append(f[2:])
        elif f.startswith("-l"):
            libraries.append(f[2:])
        else:
            extra_link.append(f)  # -Wl,-rpath,... of logbook-uninstalled.pc
    # A library installed under a prefix the dynamic linker does not search
    # by default (/usr/local/lib before ldconfig ran, a private prefix) is
    # still found: the extension remembers where it was linked from.
    system = {"/usr/lib", "/lib", "/usr/lib64", "/lib64",
              "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"}
    rpath = [d for d in library_dirs if os.path.abspath(d) not in system
             and not any(x.startswith("-Wl,-rpath") for x in extra_link)]
    return dict(include_dirs=include_dirs, library_dirs=library_dirs,
                libraries=libraries, runtime_library_dirs=rpath,
                extra_link_args=extra_link)


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
_flags = _build_flags()
# The flags go into the generated source, so that a build against another
# liblogbook (another prefix, the tree's build) regenerates it and relinks
# the extension instead of reusing one linked against the previous one.
ffibuilder.set_source("logbook._logbook",
                      "/* built with %r */\n" % sorted(_flags.items()) +
                      SOURCE, **_flags)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
