/* SPDX-License-Identifier: MIT */
/**
 * @file logbook.h
 * @brief logbook: an embeddable storage engine with a validated, reversible,
 * verifiable batch log.
 *
 * Data lives in LMDB. Every write happens inside a batch; a batch is
 * validated, then committed atomically together with its WAL segments
 * (change records holding each key's before- and after-image). From that
 * log any committed batch can be rolled back on its own, the database can be
 * replayed to any batch, and the history can be audited and verified.
 *
 * Conventions of this API:
 * - A fallible call returns an int: 0 (#LB_OK) on success, a negative
 *   LB_E* code on failure. After a negative return, lb_errmsg() describes
 *   the failure on the calling thread.
 * - Output parameters come last. On failure every `**out` is set to NULL.
 * - Destructors return void and accept NULL.
 * - Keys are 1..#LB_KEY_MAX bytes; values 0..#LB_VALUE_MAX bytes; table
 *   names 1..#LB_TABLE_NAME_MAX bytes of [A-Za-z0-9_.-].
 *
 * The header compiles as C99 and as C++ and includes only <stddef.h> and
 * <stdint.h>.
 */
#ifndef LOGBOOK_H
#define LOGBOOK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @defgroup version Version
 * @{ */
#define LB_VERSION_MAJOR 0
#define LB_VERSION_MINOR 1
#define LB_VERSION_PATCH 0
/** Combine a version into one comparable integer. */
#define LB_VERINT(a, b, c) (((a) << 24) | ((b) << 16) | (c))
/** This header's version as one integer. */
#define LB_VERSION_FULL                                                        \
	LB_VERINT(LB_VERSION_MAJOR, LB_VERSION_MINOR, LB_VERSION_PATCH)
/** The on-disk format version this library writes and reads
 * (docs/FORMAT.md); a database of an earlier version is refused at open
 * with LB_EVERSION (none was released: carry its data over with the
 * `logbook export` of the version that wrote it). */
#define LB_FORMAT_VERSION 3
/** @} */

#if defined(_WIN32)
#define LB_API __declspec(dllexport)
#elif defined(__GNUC__)
#define LB_API __attribute__((visibility("default")))
#else
#define LB_API
#endif

/** @defgroup limits Limits
 * @{ */
#define LB_KEY_MAX 511                  /**< longest key, bytes */
#define LB_VALUE_MAX (16u << 20)        /**< longest value, bytes (16 MiB) */
#define LB_TABLE_NAME_MAX 64            /**< longest table name, bytes */
#define LB_SCHEMA_FIELDS_MAX 256        /**< most fields in one schema */
#define LB_SCHEMA_ENUM_MAX 1024         /**< most values of an enum */
#define LB_SCHEMA_TEXT_MAX 1024         /**< longest enum str or pattern */
#define LB_SCHEMA_BYTES_MAX (1u << 20)  /**< largest encoded schema */
#define LB_ISSUES_MAX 1000              /**< issues kept in an lb_result */
#define LB_SEGMENT_SIZE_MAX (16u << 20) /**< largest segment_size option */
#define LB_LABEL_MAX 255                /**< longest batch label, bytes */
/** @} */

/** @defgroup flags Flag groups
 * Each group of flags (lb_options.flags, lb_field.flags, lb_rollback(),
 * lb_verify()) is read by its own calls only, and each of those rejects
 * bits of other groups as unknown (#LB_EINVAL), so the groups may share
 * values: #LB_CREATE, #LB_REQUIRED, #LB_CASCADE and #LB_VERIFY_REPLAY are
 * all 1. Their values are part of the contract and never change.
 * @{ */
/** @} */

/** @defgroup handles Opaque handles
 * @{ */
typedef struct lb_db lb_db;             /**< an open database */
typedef struct lb_batch lb_batch;       /**< an open write batch */
typedef struct lb_snapshot lb_snapshot; /**< a consistent read view */
typedef struct lb_cursor lb_cursor;     /**< an ordered walk of one table */
/** @} */

/** @defgroup errors Return codes
 * Codes are ABI: values are never renumbered or reused.
 * @{ */
enum {
	LB_OK = 0,           /**< success */
	LB_ENOTFOUND = -1,   /**< no such key, table, batch or database */
	LB_EINVAL = -2,      /**< invalid argument or state */
	LB_EVALIDATION = -3, /**< an op or batch broke a validation rule */
	LB_ECONFLICT = -4,   /**< a rollback met later changes */
	LB_ECORRUPT = -5,    /**< damaged or inconsistent data on disk */
	LB_EPRUNED = -6,     /**< the batch's log was pruned */
	LB_EFULL = -7,       /**< the disk (or file system) is full */
	LB_EBUSY = -8,       /**< a resource is in use (e.g. lock held) */
	LB_ENOMEM = -9,      /**< out of memory */
	LB_EIO = -10,        /**< an I/O error from the operating system */
	LB_EVERSION = -11,   /**< written by a newer, unknown format version */
	LB_ETOOBIG = -12,    /**< a key, value or name exceeds its limit */
	LB_EEXIST = -13      /**< the thing to create exists already */
};

/**
 * @brief A static, human-readable name for a return code.
 * @param[in] rc any value; unknown codes give "unknown error".
 * @return a string owned by the library, valid forever. Thread-safe.
 */
LB_API const char *lb_strerror(int rc);

/**
 * @brief Detail of the calling thread's last failure.
 *
 * Defined right after a call on this thread returned a negative code; it
 * names the object involved (table, key, batch, path, option). Other
 * threads' failures never change it.
 * @return a string owned by the library, valid until the next logbook call
 * on this thread; "" when there is nothing to tell. Never NULL.
 */
LB_API const char *lb_errmsg(void);

/**
 * @brief Version of the library that is linked, as opposed to this header.
 * @param[out] major,minor,patch may each be NULL.
 * @return a static version string such as "0.1.0".
 */
LB_API const char *lb_version(int *major, int *minor, int *patch);
/** @} */

/** @defgroup db Opening and closing
 * @{ */

/** Flags of lb_options.flags. */
enum {
	LB_CREATE = 1u, /**< create the directory and database if missing */
	LB_RDONLY = 2u, /**< open read-only: batches are refused */
	LB_NOSYNC = 4u  /**< do not fsync at commit: a crash may lose the last
	                     batches, never consistency */
};

/** Options of lb_open(). Fill with lb_options_init(), then change fields. */
typedef struct lb_options {
	unsigned flags;      /**< LB_CREATE | LB_RDONLY | LB_NOSYNC */
	int compression;     /**< zlib level 0..9 for new segments; -1 = default
	                        (1); 0 = stored */
	size_t segment_size; /**< raw bytes per segment: 0 = 256 KiB, else
	                        256..LB_SEGMENT_SIZE_MAX */
	uint64_t map_size;   /**< initial LMDB map size in bytes; 0 = default;
	                        grows on demand */
} lb_options;

/**
 * @brief Fill @p o with the defaults: flags 0, compression -1,
 * segment_size 0, map_size 0.
 * @param[out] o options to fill; NULL is ignored.
 */
LB_API void lb_options_init(lb_options *o);

/**
 * @brief Open (or with #LB_CREATE create) the database in directory @p dir.
 *
 * One directory holds one database (one LMDB environment). Opening checks the
 * format version and clears reader slots left by killed processes. A process
 * opens a directory once and shares the handle between its threads: a
 * second open of it in the same process (by any path) is refused. Other
 * processes may have it open at the same time; every handle then works from
 * the tables and the map size as committed (docs/API.md §4).
 *
 * @param[in] dir path of the database directory.
 * @param[in] o options, or NULL for defaults with #LB_CREATE.
 * @param[out] db the new handle, or NULL on failure. Release with lb_close().
 * @return 0, or:
 *  - #LB_ENOTFOUND: @p dir has no database and #LB_CREATE is not set;
 *  - #LB_EINVAL: bad options, @p dir is not a directory, it holds an LMDB
 *    environment that is not a logbook database, or its data.mdb is a
 *    symbolic or hard link;
 *  - #LB_EVERSION: the database was written by another format version
 *    (newer, or an earlier unreleased one: the message says how to carry
 *    its data over);
 *  - #LB_ECORRUPT: the files are damaged;
 *  - #LB_EBUSY: this process has the database open already (share that
 *    handle), or LMDB's locks are taken;
 *  - #LB_EIO, #LB_EFULL, #LB_ENOMEM.
 * @par Threads: safe to call from any thread. The handle starts one
 * thread of its own the first time a batch fills a segment (it compresses
 * full segments while the batch goes on; it never calls LMDB or back into
 * the application); lb_close() ends it.
 */
LB_API int lb_open(const char *dir, const lb_options *o, lb_db **db);

/**
 * @brief Close a database. Any batch, snapshot or cursor of it must have been
 * committed, aborted or closed first; the handle is invalid afterwards.
 * @param[in] db the handle; NULL does nothing.
 * @par DESTRUCTOR of lb_db. Not concurrent with any other use of @p db.
 */
LB_API void lb_close(lb_db *db);
/** @} */

/** @defgroup tables Tables and schemas
 * @{ */

/** Field types of a schema. */
typedef enum {
	LB_ANY,   /**< any msgpack value */
	LB_NIL,   /**< nil */
	LB_BOOL,  /**< true or false */
	LB_INT,   /**< a positive or negative integer */
	LB_FLOAT, /**< a float 32 or float 64 */
	LB_STR,   /**< a UTF-8 string; max_len counts characters */
	LB_BIN,   /**< a byte string; max_len counts bytes */
	LB_ARRAY, /**< an array; max_len counts elements */
	LB_MAP    /**< a map; max_len counts entries */
} lb_type;

/** Field flags. */
enum {
	LB_REQUIRED = 1u, /**< the field must be present */
	LB_NULLABLE = 2u  /**< nil is accepted in place of the field's type (a
	                     nil value is then held to no other rule) */
};

/** Formats a str field may be held to (lb_field.format). */
enum {
	LB_FMT_NONE = 0,    /**< no format */
	LB_FMT_DATE = 1,    /**< RFC 3339 full-date: `2024-03-14` */
	LB_FMT_DATETIME = 2 /**< RFC 3339 date-time, with its time zone:
	                       `2024-03-14T09:30:00Z`, `...T09:30:00.5+01:00` */
};

/** Which bounds of a field are set (lb_field.has_min_max). */
enum {
	LB_HAS_MIN = 1u, /**< lb_field.min is a bound */
	LB_HAS_MAX = 2u  /**< lb_field.max is a bound */
};

/**
 * One field of a schema.
 *
 * The first five members are the field's type and shape; the members after
 * `ref` are rules on its value (docs/VALIDATION.md), appended later: zero
 * means "no rule", so an initializer that stops after `ref` describes a
 * field without them. A value that breaks a rule is an #LB_ISSUE_FORMAT
 * issue naming the field. A nil value of an #LB_NULLABLE field is held to
 * none of these rules.
 *
 * lb_table_create() copies every pointer it is given: they need only live
 * during the call. lb_tables() hands out the library's stored copies, valid
 * during its callback.
 */
typedef struct lb_field {
	const char *name; /**< field name: 1..255 bytes */
	lb_type type;     /**< its type */
	unsigned flags;   /**< LB_REQUIRED, LB_NULLABLE */
	uint32_t max_len; /**< 0 = unlimited */
	const char *ref;  /**< NULL, or a table whose keys this field's str/bin
	                     value must be */
	/** NULL, or the values the field may take (nenum of them, 1 to
	 * #LB_SCHEMA_ENUM_MAX, no two alike): for an #LB_STR field the exact
	 * bytes of each value (UTF-8, at most #LB_SCHEMA_TEXT_MAX bytes); for
	 * an #LB_INT field each integer in decimal, canonical form ("-3",
	 * "0", "42": no sign on positives, no leading zeros, within int64).
	 * Other types take no enum. */
	const char *const *enum_values;
	size_t nenum; /**< entries in enum_values; 0 = no enum */
	/** NULL, or a POSIX extended regular expression (regcomp() with
	 * REG_EXTENDED) that an #LB_STR field's value must match as a whole
	 * (as if written `^(pattern)$`), byte by byte whatever the locale.
	 * 1..#LB_SCHEMA_TEXT_MAX bytes of UTF-8; back-references and other
	 * escapes of a letter or digit (`\1`, `\w`) are refused. */
	const char *pattern;
	/** LB_FMT_NONE, LB_FMT_DATE or LB_FMT_DATETIME: a date or date-time
	 * format an #LB_STR field's value must have. */
	int format;
	double min; /**< with LB_HAS_MIN: the least value of an #LB_INT or
	               #LB_FLOAT field (inclusive; not NaN or infinite) */
	double max; /**< with LB_HAS_MAX: the greatest value (inclusive; not
	               below min) */
	unsigned has_min_max; /**< LB_HAS_MIN | LB_HAS_MAX; 0 = no bounds (min
	                         and max are then ignored) */
} lb_field;

/**
 * A table schema: values must be msgpack maps with string keys.
 * Members after `closed` were appended later; zero means "none".
 */
typedef struct lb_schema {
	const lb_field *fields; /**< the fields */
	size_t nfields;         /**< how many */
	int closed;             /**< non-zero: fields not listed are refused */
	/** NULL, or the name of a field of type #LB_STR, #LB_BIN, #LB_INT or
	 * #LB_ANY whose value, when present and not nil, must be the record's
	 * key: the bytes of a str or bin, the decimal text of an int (the
	 * key "42" for 42). Copied like the fields. */
	const char *key_field;
} lb_schema;

/**
 * @brief Create a table, in a logged batch of its own (op #LB_OP_TABLE).
 *
 * Without a schema the table holds opaque bytes. With one, every value must
 * be a msgpack map that satisfies it (see lb_put()). A schema and the
 * strings it points to are copied; the caller keeps ownership.
 *
 * @param[in] db the database.
 * @param[in] name table name, 1..#LB_TABLE_NAME_MAX bytes of [A-Za-z0-9_.-].
 * @param[in] s schema, or NULL for an opaque table.
 * @return 0, or #LB_EEXIST (the table exists), #LB_EINVAL (bad name or bad
 * schema: unknown type, duplicate or empty field name, ref to a missing
 * table, too many fields, a rule on a type it does not apply to, a bad
 * enum, pattern, format or bound, a key_field that names no suitable
 * field; read-only database), #LB_ETOOBIG, #LB_EFULL,
 * #LB_EIO, #LB_ENOMEM.
 * @par Threads: waits for an open batch, as lb_batch_begin() does.
 */
LB_API int lb_table_create(lb_db *db, const char *name, const lb_schema *s);

/**
 * @brief Called once per table by lb_tables(), in name order.
 * @param[in] schema the table's schema, or NULL for an opaque table; valid
 * only during the call.
 * @param[in] records the number of keys in the table.
 * @return 0 to go on, non-zero to stop.
 */
typedef int (*lb_table_fn)(void *ctx, const char *name, const lb_schema *schema,
                           uint64_t records);

/**
 * @brief List the tables of the database, from a consistent snapshot.
 * @return 0, the callback's non-zero value if it stopped the walk,
 * #LB_EINVAL, #LB_ECORRUPT, #LB_ENOMEM.
 * @par Threads: any thread; never blocks on writers.
 */
LB_API int lb_tables(lb_db *db, lb_table_fn fn, void *ctx);
/** @} */

/** @defgroup reads Reads, snapshots and cursors
 * @{ */

/**
 * @brief Read the committed value of @p key in @p table.
 * @param[out] val a copy from malloc(): release it with free(). May be
 *             non-NULL for an empty value. NULL on failure.
 * @param[out] vlen its length.
 * @return 0, #LB_ENOTFOUND (no such key, or no such table), #LB_EINVAL,
 * #LB_ETOOBIG (key over #LB_KEY_MAX), #LB_EBUSY (too many readers),
 * #LB_ENOMEM, #LB_EIO (a failed commit write left the database to be
 * reopened, which snapshots opened before it still prevent).
 * @par Threads: any thread; sees committed batches only. Never waits for a
 * writer's batch; it waits only briefly while another thread grows the map
 * (at most 50 ms) or reopens the database after a failed commit write
 * (about 1 s).
 */
LB_API int lb_get(lb_db *db, const char *table, const void *key, size_t klen,
                  void **val, size_t *vlen);

/**
 * @brief Open a consistent read view of the last committed batch.
 *
 * A snapshot never sees later commits. Keep snapshots short: a long-lived
 * snapshot keeps old pages from being reused and delays map growth.
 * @param[out] s the snapshot; NULL on failure. Close with lb_snapshot_close().
 * @return 0, #LB_EBUSY (too many readers), #LB_ENOMEM, #LB_EIO.
 * @par CONSTRUCTOR. A snapshot may be used from any one thread at a time.
 * Opening one waits like lb_get() while the map grows or the database is
 * reopened.
 */
LB_API int lb_snapshot_open(lb_db *db, lb_snapshot **s);

/**
 * @brief Read a key in a snapshot without copying.
 * @param[out] val points into the database map: valid until the snapshot is
 * closed; never write through it. NULL on failure.
 * @return 0, #LB_ENOTFOUND, #LB_EINVAL.
 */
LB_API int lb_snapshot_get(lb_snapshot *s, const char *table, const void *key,
                           size_t klen, const void **val, size_t *vlen);

/**
 * @brief Close a snapshot; its cursors must be closed first. Pointers it
 * returned become invalid. NULL does nothing.
 * @par DESTRUCTOR.
 */
LB_API void lb_snapshot_close(lb_snapshot *s);

/**
 * @brief Open a cursor on @p table in snapshot @p s, before the first key.
 * @param[out] c the cursor; NULL on failure. Close with lb_cursor_close().
 * @return 0, #LB_ENOTFOUND (no such table), #LB_EINVAL, #LB_ENOMEM.
 */
LB_API int lb_cursor_open(lb_snapshot *s, const char *table, lb_cursor **c);

/**
 * @brief Position the cursor so that the next lb_cursor_next() returns the
 * first key >= @p key (byte order, shorter first on a common prefix).
 * @p klen 0 seeks to the first key.
 * @return 0, #LB_EINVAL.
 */
LB_API int lb_cursor_seek(lb_cursor *c, const void *key, size_t klen);

/**
 * @brief Return the next key and value in key order.
 * @param[out] k,kl,v,vl point into the map, valid until the snapshot closes.
 * @return 0, #LB_ENOTFOUND at the end, #LB_EINVAL.
 */
LB_API int lb_cursor_next(lb_cursor *c, const void **k, size_t *kl,
                          const void **v, size_t *vl);

/** @brief Close a cursor. NULL does nothing. @par DESTRUCTOR. */
LB_API void lb_cursor_close(lb_cursor *c);
/** @} */

/** @defgroup batches Batches and validation
 * @{ */

/** Kinds of validation issue. */
typedef enum {
	LB_ISSUE_FORMAT = 1,  /**< a value breaks its table's schema */
	LB_ISSUE_DUPLICATE,   /**< lb_insert() of a key that exists */
	LB_ISSUE_MISSING,     /**< lb_update()/lb_delete() of a missing key */
	LB_ISSUE_FOREIGN_KEY, /**< a reference to no key, or delete of a
	                         referenced key */
	LB_ISSUE_CONFLICT     /**< rollback: a later batch changed the key */
} lb_issue_kind;

/** One issue. All pointers are owned by the lb_result that holds it. */
typedef struct lb_issue {
	lb_issue_kind kind;
	char *table;    /**< table of the record */
	void *key;      /**< key of the record */
	size_t klen;    /**< its length */
	char *field;    /**< field concerned, or NULL */
	char *message;  /**< a sentence for humans */
	uint64_t batch; /**< CONFLICT: the later batch that last changed the
	                   key; FOREIGN_KEY on rollback: the batch of the
	                   referrer; else 0 */
} lb_issue;

/**
 * The outcome of a commit or rollback. Zero it (or let the call fill it),
 * then release with lb_result_free().
 */
typedef struct lb_result {
	int rc;               /**< the call's return code */
	uint64_t batch_id;    /**< the committed batch, 0 if none */
	uint64_t records;     /**< change records written (or, on dry run, that
	                         would be) */
	lb_issue *issues;     /**< the first LB_ISSUES_MAX issues */
	size_t nissues;       /**< entries in issues */
	size_t nissues_total; /**< all issues found, kept or not */
	uint64_t *undone;     /**< rollbacks: the batches the new batch undoes
	                         (on dry run, would), newest first; NULL when
	                         none or for a commit */
	size_t nundone;       /**< entries in undone */
} lb_result;

/** @brief Free what @p r holds and zero it. NULL does nothing. */
LB_API void lb_result_free(lb_result *r);

/**
 * @brief Change a table's schema, in a logged batch of its own: one
 * #LB_OP_TABLE record whose before-image is the old schema and whose
 * after-image is the new one, so that it replays, verifies and rolls back
 * like any batch (rolling it back changes the schema back).
 *
 * The table keeps its records. Every record is checked against the new
 * schema: loosening (a new optional field, a higher limit, an open schema
 * instead of a closed one, no schema at all) always passes; tightening
 * passes only when every record fits, and a new reference must name
 * existing keys. When a record does not fit, nothing is written and the
 * call returns #LB_EVALIDATION with the first #LB_ISSUES_MAX FORMAT (or
 * FOREIGN_KEY) issues in @p res. The same schema again writes nothing
 * (res->batch_id 0).
 *
 * @param[in] db the database (not read-only).
 * @param[in] name the table.
 * @param[in] s the new schema, or NULL for opaque bytes; copied.
 * @param[out] res may be NULL; the new batch and the issues; release with
 * lb_result_free().
 * @return 0, or #LB_ENOTFOUND (no such table), #LB_EVALIDATION (records
 * that do not fit), #LB_EINVAL (bad schema, a reference to a missing
 * table, read-only database), #LB_ETOOBIG, #LB_EBUSY, #LB_EFULL, #LB_EIO,
 * #LB_ENOMEM.
 * @par Threads: waits for an open batch, as lb_batch_begin() does.
 */
LB_API int lb_table_alter(lb_db *db, const char *name, const lb_schema *s,
                          lb_result *res);

/**
 * @brief Begin a write batch. Only one batch is open at a time per database:
 * this waits until the open one is committed or aborted.
 *
 * @param[in] label free text stored with the batch (NULL = ""), at most
 *            #LB_LABEL_MAX bytes.
 * @param[out] b the batch; NULL on failure. End it with lb_batch_commit()
 *             or lb_batch_abort(), on the thread that began it.
 * @return 0, #LB_EINVAL (read-only database), #LB_ETOOBIG (label over
 * #LB_LABEL_MAX bytes), #LB_EFULL,
 * #LB_EIO, #LB_ENOMEM.
 * @par CONSTRUCTOR. A batch is bound to the thread that began it.
 */
LB_API int lb_batch_begin(lb_db *db, const char *label, lb_batch **b);

/**
 * @brief Set @p key to @p val (insert or replace).
 *
 * Ops are applied in order and each is logged as one change record. An op
 * that breaks a rule is not applied: it records an issue and returns
 * #LB_EVALIDATION; the caller may go on to collect more issues, and commit
 * then writes nothing and returns them all. In a table with a schema, @p val
 * must be a msgpack map satisfying it (#LB_ISSUE_FORMAT). Foreign keys are
 * checked at commit, against the state after all of the batch's changes.
 *
 * @return 0, #LB_EVALIDATION (an issue was recorded), #LB_ENOTFOUND (no such
 * table), #LB_EINVAL (NULL arguments, empty key), #LB_ETOOBIG (key or value
 * over its limit), #LB_EFULL, #LB_EIO, #LB_ENOMEM. Errors other than
 * #LB_EVALIDATION do not poison the batch, except #LB_EFULL, #LB_EIO and
 * #LB_ENOMEM, after which the batch can only be aborted.
 */
LB_API int lb_put(lb_batch *b, const char *table, const void *key, size_t klen,
                  const void *val, size_t vlen);

/** @brief Like lb_put(), but a key that exists is a #LB_ISSUE_DUPLICATE. */
LB_API int lb_insert(lb_batch *b, const char *table, const void *key,
                     size_t klen, const void *val, size_t vlen);

/** @brief Like lb_put(), but a key that is missing is a #LB_ISSUE_MISSING. */
LB_API int lb_update(lb_batch *b, const char *table, const void *key,
                     size_t klen, const void *val, size_t vlen);

/**
 * @brief Delete @p key. A missing key is #LB_ISSUE_MISSING; a key that other
 * records still reference when the batch ends is #LB_ISSUE_FOREIGN_KEY at
 * commit. Same return codes as lb_put().
 */
LB_API int lb_delete(lb_batch *b, const char *table, const void *key,
                     size_t klen);

/**
 * @brief Read a key as the batch sees it, its own writes included.
 * @param[out] val points into the batch: valid until the next write op,
 * commit or abort of @p b.
 * @return 0, #LB_ENOTFOUND, #LB_EINVAL.
 */
LB_API int lb_batch_get(lb_batch *b, const char *table, const void *key,
                        size_t klen, const void **val, size_t *vlen);

/**
 * @brief Validate and commit the batch, atomically with its log, then free it.
 *
 * Foreign keys are checked first. If any op or check found an issue,
 * nothing at all is written (no data, no log, no batch id is consumed) and
 * #LB_EVALIDATION is returned with every issue in @p res. A batch with no
 * records commits nothing and returns 0 with res->batch_id 0.
 *
 * @param[in] b the batch; freed by this call whatever it returns, except
 * when called from a thread other than the one that began it: then it
 * returns #LB_EINVAL and the batch stays open for its owner.
 * @param[out] res may be NULL; otherwise filled (release with
 * lb_result_free()).
 * @return 0, #LB_EVALIDATION, #LB_EINVAL (wrong thread, NULL batch),
 * #LB_EFULL, #LB_EIO, #LB_ENOMEM, #LB_ETOOBIG (more than LMDB can hold in
 * one transaction), #LB_ECORRUPT (damaged data met while committing).
 * @par DESTRUCTOR. Without #LB_NOSYNC the batch is on disk when this returns.
 */
LB_API int lb_batch_commit(lb_batch *b, lb_result *res);

/** @brief Discard the batch: nothing of it is written. NULL does nothing. @par
 * DESTRUCTOR. */
LB_API void lb_batch_abort(lb_batch *b);
/** @} */

/** @defgroup log The batch log
 * @{ */

/** Change record ops, as logged (frozen on disk). */
enum { LB_OP_PUT = 1, LB_OP_DELETE = 2, LB_OP_TABLE = 3 };

/** One change record, as passed to an lb_change_fn. Pointers are valid
 * only during the callback. */
typedef struct lb_change {
	int op;            /**< LB_OP_PUT, LB_OP_DELETE or LB_OP_TABLE */
	const char *table; /**< NUL-terminated table name */
	const void *key;   /**< the key (for LB_OP_TABLE: the table name) */
	size_t klen;
	const void *before; /**< the value before the change, if has_before */
	size_t blen;
	int has_before;
	const void *after; /**< the value after (LB_OP_TABLE: encoded schema),
	                      if has_after */
	size_t alen;
	int has_after;
} lb_change;

/** What the log knows about one batch. */
typedef struct lb_batch_info {
	uint64_t id;     /**< batch id, from 1 */
	int64_t time_ns; /**< commit time, ns since the Unix epoch (UTC) */
	char label[LB_LABEL_MAX + 1]; /**< NUL-terminated label */
	uint64_t records;             /**< change records */
	uint32_t segments;            /**< WAL segments */
	uint64_t raw_bytes;           /**< records before compression */
	uint64_t stored_bytes; /**< segments as stored, headers included */
	uint64_t undoes; /**< for a rollback batch: the batch it undoes, else 0
	                  */
	uint64_t rolled_back_by; /**< the batch that undid this one, else 0 */
	int pruned;       /**< non-zero: segments dropped by lb_prune() */
	uint8_t hash[32]; /**< chain hash (docs/FORMAT.md) */
} lb_batch_info;

/**
 * @brief The id of the last committed batch, 0 when there is none.
 * @return 0, #LB_EINVAL, #LB_EIO.
 */
LB_API int lb_last_batch(lb_db *db, uint64_t *id);

/**
 * @brief Describe batch @p id.
 * @return 0, #LB_ENOTFOUND (no such batch), #LB_ECORRUPT, #LB_EINVAL.
 */
LB_API int lb_batch_info_get(lb_db *db, uint64_t id, lb_batch_info *out);

/** Called once per change record, in log order; non-zero stops the walk. */
typedef int (*lb_change_fn)(void *ctx, const lb_change *c);

/**
 * @brief Walk the change records of batch @p id in order, from a consistent
 * snapshot, decoding one segment at a time.
 * @return 0, the callback's non-zero value if it stopped the walk,
 * #LB_ENOTFOUND, #LB_EPRUNED (segments dropped), #LB_ECORRUPT, #LB_ENOMEM.
 */
LB_API int lb_changes(lb_db *db, uint64_t id, lb_change_fn fn, void *ctx);

/**
 * Called by lb_history() once per change record of the key, batches newest
 * first (records of one batch in log order). For a batch whose segments were
 * pruned, @p c is NULL. Pointers are valid only during the call; non-zero
 * stops the walk.
 */
typedef int (*lb_history_fn)(void *ctx, uint64_t batch, const lb_change *c);

/**
 * @brief Walk every committed change of one key, newest batch first, using
 * the per-key history index (no scan of the log).
 * @return 0 (also when the key never existed), the callback's non-zero
 * value, #LB_ENOTFOUND (no such table), #LB_EINVAL, #LB_ECORRUPT, #LB_ENOMEM.
 */
LB_API int lb_history(lb_db *db, const char *table, const void *key,
                      size_t klen, lb_history_fn fn, void *ctx);
/** @} */

/** @defgroup rollback Rollback
 * @{ */

/** Flags of lb_rollback(). */
enum {
	LB_CASCADE = 1u, /**< also undo the later standing batches built on
	                    what the rollback changes (no key conflicts) */
	LB_FORCE = 2u,   /**< restore before-images even over later changes */
	LB_DRYRUN = 4u   /**< report what would happen; write nothing */
};

/**
 * @brief Undo committed batch @p id in one new, logged batch.
 *
 * Restores @p id's before-images in reverse order. Its label names @p id,
 * lb_batch_info.undoes of the new batch is @p id, and @p id's
 * rolled_back_by becomes the new batch; when @p id is itself an undo
 * batch, the batches it undid stand again (a redo). A batch stands unless a
 * standing batch undoes it (docs/ROLLBACK.md, "Which batches stand"). By
 * default (strict) a key that a later batch changed (it no longer holds
 * @p id's after-image) is a CONFLICT issue naming that batch, and nothing
 * is written. #LB_CASCADE also undoes, in the same new batch, every later
 * standing ordinary batch built on what the rollback changes, without key
 * conflicts (every key @p id changed ends with its before-image);
 * #LB_FORCE restores regardless of later changes; #LB_DRYRUN reports what
 * would happen and writes nothing. Foreign keys hold afterwards in every
 * mode: a rollback that would leave a dangling reference is refused with
 * FOREIGN_KEY issues. docs/ROLLBACK.md gives the exact rules, with
 * examples. Waits for an open batch, as lb_batch_begin() does.
 * @param[in] db the database (not read-only).
 * @param[in] id the batch to undo; it must stand.
 * @param[in] flags 0, #LB_CASCADE or #LB_FORCE, either with #LB_DRYRUN.
 * @param[out] res may be NULL; holds the new batch id (0 on dry run or
 * when nothing was left to write), the record count, the batches undone
 * (res->undone, newest first) and any CONFLICT or FOREIGN_KEY issues.
 * Release it with lb_result_free().
 * @return 0, #LB_ECONFLICT, #LB_EVALIDATION (foreign keys), #LB_ENOTFOUND,
 * #LB_EINVAL (the batch does not stand; table not empty; bad flags;
 * read-only), #LB_EPRUNED, #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO,
 * #LB_ENOMEM.
 * @par Threads: takes the writer lock, as lb_batch_begin().
 */
LB_API int lb_rollback(lb_db *db, uint64_t id, unsigned flags, lb_result *res);

/**
 * @brief Restore the state right after batch @p id, in one new batch.
 *
 * Every table then holds, byte for byte, what it held right after batch
 * @p id (0: before the first batch); the new batch, whose undoes is @p id,
 * undoes every batch after @p id (each is rolled back by it), and the
 * batches up to @p id stand as they did right after it. When the state
 * already equals it, nothing is written and res->batch_id is 0.
 * @param[in] db the database (not read-only).
 * @param[in] id the batch to go back to.
 * @param[out] res may be NULL; the new batch, its record count, the batches
 * it undid (res->undone), and FOREIGN_KEY issues. Release it with
 * lb_result_free().
 * @return 0, #LB_ENOTFOUND (@p id beyond the last batch), #LB_EPRUNED (a
 * batch after @p id was pruned), #LB_EINVAL, #LB_EVALIDATION, #LB_EBUSY,
 * #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM.
 * @par Threads: takes the writer lock, as lb_batch_begin().
 */
LB_API int lb_rollback_to(lb_db *db, uint64_t id, lb_result *res);

/**
 * @brief lb_rollback_to() with flags: #LB_DRYRUN does everything in the
 * transaction, the foreign-key checks included, then throws it away, and
 * returns what the real call would (code, issues, res->records, and in
 * res->undone the batches it would undo); res->batch_id is 0.
 *
 * @param[in] db the database.
 * @param[in] id the batch to go back to (0: the empty database).
 * @param[in] flags 0 or #LB_DRYRUN.
 * @param[out] res may be NULL; as for lb_rollback_to().
 * @return as lb_rollback_to(); #LB_EINVAL for other flags.
 * @par Threads: as lb_rollback_to().
 */
LB_API int lb_rollback_to_ex(lb_db *db, uint64_t id, unsigned flags,
                             lb_result *res);
/** @} */

/** @defgroup replay Checkpoints, replay, verify, prune
 * @{ */

/**
 * @brief Write a compacted, consistent copy of the database to @p dest_dir
 * (which must not exist or be empty) and register it.
 * @param[out] at_batch the last batch in the copy; may be NULL.
 * A killed checkpoint leaves at most a hidden temporary sibling of
 * @p dest_dir, never a destination that opens. Not to be called by a
 * thread that holds an open batch (it waits for the writer lock briefly to
 * register the checkpoint).
 * @return 0, #LB_EEXIST, #LB_EINVAL (read-only database, bad path),
 * #LB_EFULL, #LB_EIO, #LB_ENOMEM, #LB_ECORRUPT.
 */
LB_API int lb_checkpoint(lb_db *db, const char *dest_dir, uint64_t *at_batch);

/**
 * @brief Build in @p dest_dir (missing or empty) the database as it was right
 * after batch @p to_batch (0 = the last), with the same log up to it.
 * @param[in] from_checkpoint NULL to start from empty, or a checkpoint
 * directory taken at or before @p to_batch.
 * @return 0, #LB_EEXIST, #LB_EINVAL, #LB_ENOTFOUND, #LB_EPRUNED, #LB_ECORRUPT,
 * #LB_EFULL, #LB_EIO, #LB_EVERSION (as for lb_history()).
 */
LB_API int lb_replay(lb_db *src, const char *dest_dir, uint64_t to_batch,
                     const char *from_checkpoint, lb_result *res);

/** Flags of lb_verify(). */
enum { LB_VERIFY_REPLAY = 1u /**< also check that replay equals the tables */ };

/** What lb_verify() found. */
typedef struct lb_verify_report {
	uint64_t batches, segments, records; /**< counted */
	uint64_t bad_batch;                  /**< first bad batch, 0 if none */
	int chain_ok, replay_ok; /**< non-zero when the check passed */
	char detail[256];        /**< what is wrong, or "" */
} lb_verify_report;

/**
 * @brief Check every segment's CRC, segment hashes and counts, the hash chain
 * and batch ids; with #LB_VERIFY_REPLAY also that a replay equals the tables.
 * The replay check builds a temporary replay under $TMPDIR (or /tmp) and
 * removes it.
 * @return 0, #LB_ECORRUPT (a check failed; see @p rep), #LB_EINVAL,
 * #LB_EBUSY (another process created a table since this handle opened),
 * #LB_EFULL, #LB_EIO, #LB_ENOMEM, #LB_EVERSION (as for lb_history()).
 */
LB_API int lb_verify(lb_db *db, unsigned flags, lb_verify_report *rep);

/** Called by lb_checkpoints() once per registered checkpoint, oldest first. */
typedef int (*lb_checkpoint_fn)(void *ctx, uint64_t batch, const char *path,
                                int64_t time_ns);

/**
 * @brief List the checkpoints registered by lb_checkpoint().
 * @return 0, the callback's non-zero value, #LB_EINVAL, #LB_ECORRUPT.
 */
LB_API int lb_checkpoints(lb_db *db, lb_checkpoint_fn fn, void *ctx);

/**
 * @brief Drop the segments of every batch older than @p before_batch. Needs a
 * registered checkpoint at a batch >= before_batch - 1 whose files still
 * exist. Headers stay, so the hash chain still verifies; pruned batches
 * answer #LB_EPRUNED to lb_changes() and lb_rollback(), and replay from
 * empty past them is refused (replay from the checkpoint works). Not a
 * logged batch: it consumes no batch id.
 * @return 0, #LB_EINVAL (no such checkpoint, read-only database),
 * #LB_EFULL, #LB_EIO, #LB_ECORRUPT, #LB_ENOMEM.
 */
LB_API int lb_prune(lb_db *db, uint64_t before_batch);
/** @} */

#ifdef __cplusplus
}
#endif
#endif /* LOGBOOK_H */
