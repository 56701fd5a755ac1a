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
 * This header is the contract: each function's comment gives every
 * parameter, every code it can return and when, who owns what, and which
 * threads may call it. docs/API.md is the guide around it, with examples.
 *
 * Conventions of this API:
 * - A fallible call returns an int: 0 (#LB_OK) on success, a negative
 *   LB_E* code on failure (a few also pass on a callback's non-zero
 *   value). After a negative return, lb_errmsg() describes the failure on
 *   the calling thread.
 * - Output parameters come last. On failure every `**out` is set to NULL.
 * - Destructors return void and accept NULL.
 * - Keys are 1..#LB_KEY_MAX bytes; values 0..#LB_VALUE_MAX bytes; table
 *   names 1..#LB_TABLE_NAME_MAX bytes of [A-Za-z0-9_.-].
 * - Bad input never crashes the library: it gets a code and a detail. The
 *   library never prints, and never calls abort() or exit().
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
#define LB_FORMAT_VERSION 5
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
 *
 * Each function's @return lists every code it can return. The causes
 * particular to a function are given there; the entries that say "see
 * @ref errors" stand for causes shared by every call that reads or writes
 * the database:
 * - #LB_EBUSY: LMDB's reader table is full (510 live read transactions in
 *   the processes sharing the database: close snapshots); another process
 *   grew the map and transactions of this process kept the handle from
 *   following for 10 s; the tables kept changing under other processes
 *   while the call loaded them; a read met the commit of a writer that
 *   died before publishing it, and a batch of this process that would
 *   publish it did not for 50 ms (docs/API.md §4). Call again.
 * - #LB_ECORRUPT: the files are damaged (a page, an index, the catalog of
 *   tables, a batch header).
 * - #LB_EFULL: the disk or the process's file size limit is full; or LMDB
 *   has no handle left for a table another process created (about 1,000
 *   tables live at once).
 * - #LB_EIO: the operating system or LMDB failed. After a failed commit
 *   write the handle reopens the database at the next call, which a
 *   snapshot begun before the failure prevents: until it is closed, calls
 *   fail with #LB_EIO after waiting about a second.
 * - #LB_ENOMEM: memory, or address space for the map, ran out.
 * - #LB_EVERSION: another process wrote a batch header or a table's schema
 *   in a newer version than this library reads.
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
 * @param[in] rc any value; a value that is no code (positive ones
 * included) gives "unknown error".
 * @return a string owned by the library, valid forever; never NULL.
 * @par Threads: any thread, at any time.
 */
LB_API const char *lb_strerror(int rc);

/**
 * @brief Detail of the calling thread's last failure.
 *
 * Set in the same statement that returns a negative code, so it is defined
 * right after any call that failed; it names the object involved (table,
 * key, batch, path, option). A successful call does not clear it. At most
 * 511 characters; setting it never allocates.
 * @return a string owned by the library, valid until the next logbook call
 * on this thread: copy it to keep it. "" before any failure; never NULL.
 * @par Threads: per thread: other threads' failures never change it.
 */
LB_API const char *lb_errmsg(void);

/**
 * @brief Version of the library that is linked, as opposed to this header.
 * @param[out] major,minor,patch filled with the linked version; each may be
 * NULL.
 * @return a static version string such as "0.1.0", owned by the library.
 * @par Threads: any thread, at any time.
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
	                        (1); 0 = stored; 1..3 deflate with ISA-L's
	                        igzip, 4..9 with libdeflate */
	size_t segment_size; /**< raw bytes per segment: 0 = 128 KiB, else
	                        256..LB_SEGMENT_SIZE_MAX */
	uint64_t map_size;   /**< initial LMDB map size in bytes; 0 = default;
	                        grows on demand */
} lb_options;

/**
 * @brief Fill @p o with the defaults: flags 0, compression -1,
 * segment_size 0, map_size 0. Start from it, so that fields added later get
 * their defaults.
 * @param[out] o options to fill; NULL is ignored.
 * @par Threads: any thread.
 */
LB_API void lb_options_init(lb_options *o);

/**
 * @brief Open (or with #LB_CREATE create) the database in directory @p dir.
 *
 * One directory holds one database (one LMDB environment). Opening checks
 * the options, the files' structure and format version, loads the tables
 * and the last batch, and clears reader slots left by killed processes.
 * With #LB_CREATE the directory (and its parents) and the database are
 * created when missing; an existing database is simply opened.
 *
 * @param[in] dir path of the database directory.
 * @param[in] o options, or NULL for the defaults with #LB_CREATE.
 * @param[out] db the new handle; NULL on failure.
 * @return 0 on success, or:
 *  - #LB_ENOTFOUND: @p dir does not exist or holds no database, and
 *    #LB_CREATE is not set;
 *  - #LB_EINVAL: @p dir or @p db is NULL or @p dir empty; bad options
 *    (unknown flags, #LB_CREATE with #LB_RDONLY, compression or
 *    segment_size out of range); @p dir is not a directory; it holds an
 *    LMDB environment that is not a logbook database; its data.mdb is a
 *    symbolic or hard link;
 *  - #LB_EVERSION: the database was written in another format version
 *    (newer, or an earlier unreleased one: the message says how to carry
 *    its data over), or its last batch header by a newer logbook;
 *  - #LB_ECORRUPT: the files are damaged (data.mdb not an LMDB file,
 *    truncated, empty when opened read-only; the library's own records);
 *  - #LB_EBUSY: this process has the database open already (by any path:
 *    share that handle), or another process kept changing it while it was
 *    checked;
 *  - #LB_EIO: @p dir cannot be inspected or created (a path component is
 *    a file, permissions), or LMDB failed;
 *  - #LB_EFULL: the disk is full, or o->map_size is too small to create
 *    the database in;
 *  - #LB_ENOMEM: out of memory, or no address space for a map of
 *    o->map_size bytes.
 * @par Ownership: the caller owns *db and releases it with lb_close().
 * @par Threads: any thread; a process opens a directory once and shares
 * the handle between its threads (other processes may have it open at the
 * same time: docs/API.md §4). Reads see every commit whose call returned,
 * in any process, and the commits of writers that died after making them
 * durable: the first read after such a death publishes the commit (one
 * take of LMDB's writer lock, which waits only if another process began a
 * write in that instant), except through an #LB_RDONLY handle, which
 * reads the state before it until any read-write handle has read or
 * written. The handle starts a thread of its own the first time a batch
 * logs 16 KiB of changes or fills a segment (it compresses the batch's log
 * while the batch goes on), and another the first time a rollback undoes a
 * batch of two segments or more (it checks and inflates the next segment while
 * the rollback undoes one, then looks up that segment's keys in a read
 * transaction of its own, which takes one of LMDB's reader slots for a
 * moment); neither calls back into the application, and lb_close() ends
 * both.
 */
LB_API int lb_open(const char *dir, const lb_options *o, lb_db **db);

/**
 * @brief Close a database and free the handle. Every batch, snapshot and
 * cursor of it must have been committed, aborted or closed first.
 * Committed batches are on disk already (with #LB_NOSYNC, as far as the
 * operating system wrote them).
 * @param[in] db the handle, invalid afterwards; NULL does nothing.
 * @par Ownership: destructor of lb_db.
 * @par Threads: any thread, with no other call on @p db running or to
 * come.
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
 * @brief Create a table, in a logged batch of its own (op #LB_OP_TABLE,
 * label "create table NAME").
 *
 * Without a schema the table holds opaque bytes. With one, every value must
 * be a msgpack map that satisfies it (see lb_put()); a field's ref must name
 * an existing table, or the table itself.
 *
 * @param[in] db the database (not read-only).
 * @param[in] name table name, 1..#LB_TABLE_NAME_MAX bytes of [A-Za-z0-9_.-].
 * @param[in] s schema, or NULL for an opaque table.
 * @return 0 on success, or:
 *  - #LB_EEXIST: a table of that name exists (created by any process);
 *  - #LB_EINVAL: @p db or @p name is NULL; @p name is empty or has a
 *    character outside [A-Za-z0-9_.-]; the schema is bad (unknown type or
 *    flags; an empty, NULL, duplicate, over-long or non-UTF-8 field name;
 *    more than #LB_SCHEMA_FIELDS_MAX fields; fields NULL with nfields > 0;
 *    a ref that names no table; a rule on a type it does not apply to, a
 *    bad enum, pattern, format or bound, a key_field that names no
 *    suitable field); the database is read-only;
 *  - #LB_ETOOBIG: @p name is longer than #LB_TABLE_NAME_MAX bytes;
 *  - #LB_EFULL: the disk is full, or LMDB has no handle left for one more
 *    table (about 1,000 live tables);
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EIO, #LB_ENOMEM, #LB_EVERSION: beginning,
 *    writing or committing the batch (see @ref errors).
 * @par Ownership: the schema, its field array and its strings are copied;
 * the caller keeps them.
 * @par Threads: any thread but one holding an open batch of @p db: it
 * waits for the open batch, as lb_batch_begin() does.
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
 * @brief List the tables of the database, from one consistent read
 * transaction: @p fn is called once per table, in name order. A table
 * created after the call began is not listed.
 * @param[in] db the database.
 * @param[in] fn the callback; return 0 to go on, non-zero to stop (return
 * a positive value, which cannot be taken for a code).
 * @param[in] ctx passed to @p fn.
 * @return 0 on success; the callback's non-zero value if it stopped the
 * walk; or:
 *  - #LB_EINVAL: @p db or @p fn is NULL;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM,
 *    #LB_EVERSION: beginning the read (see @ref errors).
 * @par Ownership: the name and schema passed to @p fn are the library's,
 * valid only during the call.
 * @par Threads: any thread; never waits for a writer. @p fn runs inside the
 * read transaction: it may read (lb_get(), snapshots) but must not write.
 */
LB_API int lb_tables(lb_db *db, lb_table_fn fn, void *ctx);
/** @} */

/** @defgroup reads Reads, snapshots and cursors
 * @{ */

/**
 * @brief Read the committed value of @p key in @p table (never the open
 * batch of another thread: lb_batch_get() reads through one's own).
 * @param[in] db the database.
 * @param[in] table the table.
 * @param[in] key,klen the key: 1..#LB_KEY_MAX bytes.
 * @param[out] val a copy of the value from malloc(): non-NULL even for an
 * empty value; NULL on failure.
 * @param[out] vlen its length; 0 on failure.
 * @return 0 on success, or:
 *  - #LB_ENOTFOUND: no such key, or no such table;
 *  - #LB_EINVAL: @p db, @p table, @p key, @p val or @p vlen is NULL,
 *    @p table is empty, or @p klen is 0;
 *  - #LB_ETOOBIG: @p klen is over #LB_KEY_MAX;
 *  - #LB_ENOMEM: no memory for the copy;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM,
 *    #LB_EVERSION: beginning the read (see @ref errors).
 * @par Ownership: the caller frees *val with free().
 * @par Threads: any thread; sees committed batches only. Never waits for a
 * writer's batch; it waits only briefly while another thread grows the map
 * (at most 50 ms) or reopens the database after a failed commit write
 * (about 1 s). Like every read, it publishes the commit of a writer that
 * died in the middle of it first (lb_open()).
 */
LB_API int lb_get(lb_db *db, const char *table, const void *key, size_t klen,
                  void **val, size_t *vlen);

/**
 * @brief Open a consistent read view of the last committed batch.
 *
 * Every read through it sees the same state, whatever commits meanwhile;
 * values read through it are not copied. Keep snapshots short: a live one
 * keeps old pages from being reused and holds back map growth.
 * @param[in] db the database.
 * @param[out] s the snapshot; NULL on failure.
 * @return 0 on success, or:
 *  - #LB_EINVAL: @p db or @p s is NULL;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM,
 *    #LB_EVERSION: beginning the read (see @ref errors).
 * @par Ownership: the caller closes *s with lb_snapshot_close(), after its
 * cursors.
 * @par Threads: any thread; opening waits like lb_get() while the map grows
 * or the database is reopened. A snapshot may be used by one thread at a
 * time, and handed from one thread to another. A thread that holds one
 * must not begin a batch that needs the map to grow (it would wait for
 * itself: docs/API.md §4).
 */
LB_API int lb_snapshot_open(lb_db *db, lb_snapshot **s);

/**
 * @brief Read a key in a snapshot without copying.
 * @param[in] s the snapshot.
 * @param[in] table the table.
 * @param[in] key,klen the key: 1..#LB_KEY_MAX bytes.
 * @param[out] val points into the database map; NULL on failure.
 * @param[out] vlen its length; 0 on failure.
 * @return 0 on success, or:
 *  - #LB_ENOTFOUND: no such key; no such table, or one created after the
 *    snapshot began;
 *  - #LB_EINVAL: @p s, @p table, @p key, @p val or @p vlen is NULL,
 *    @p table is empty, or @p klen is 0;
 *  - #LB_ETOOBIG: @p klen is over #LB_KEY_MAX;
 *  - #LB_ECORRUPT: the table's pages are damaged.
 * @par Ownership: *val is the library's, valid until the snapshot is
 * closed; never write through it.
 * @par Threads: the thread that uses the snapshot (one at a time).
 */
LB_API int lb_snapshot_get(lb_snapshot *s, const char *table, const void *key,
                           size_t klen, const void **val, size_t *vlen);

/**
 * @brief Close a snapshot; its cursors must be closed first. Every pointer
 * it or its cursors returned becomes invalid.
 * @param[in] s the snapshot; NULL does nothing.
 * @par Ownership: destructor of lb_snapshot.
 * @par Threads: the thread that uses the snapshot.
 */
LB_API void lb_snapshot_close(lb_snapshot *s);

/**
 * @brief Open an ordered walk of @p table in snapshot @p s, positioned
 * before the first key. Keys come in byte order, a shorter key first when
 * one is a prefix of the other.
 * @param[in] s the snapshot.
 * @param[in] table the table.
 * @param[out] c the cursor; NULL on failure.
 * @return 0 on success, or:
 *  - #LB_ENOTFOUND: no such table, or one created after the snapshot
 *    began;
 *  - #LB_EINVAL: @p s, @p table or @p c is NULL, or @p table is empty;
 *  - #LB_ECORRUPT: an earlier read in the snapshot met damaged pages;
 *  - #LB_ENOMEM: out of memory.
 * @par Ownership: the caller closes *c with lb_cursor_close(), before the
 * snapshot.
 * @par Threads: the thread that uses the snapshot.
 */
LB_API int lb_cursor_open(lb_snapshot *s, const char *table, lb_cursor **c);

/**
 * @brief Position the cursor so that the next lb_cursor_next() returns the
 * first key >= @p key (byte order, shorter first on a common prefix).
 * @param[in] c the cursor.
 * @param[in] key,klen the key to seek, copied; @p klen 0 goes back to
 * before the first key (@p key may then be NULL).
 * @return 0 on success, or:
 *  - #LB_EINVAL: @p c is NULL, or @p key is NULL with @p klen > 0;
 *  - #LB_ETOOBIG: @p klen is over #LB_KEY_MAX.
 * @par Threads: the thread that uses the snapshot.
 */
LB_API int lb_cursor_seek(lb_cursor *c, const void *key, size_t klen);

/**
 * @brief Return the next key and value in key order. At the end it returns
 * #LB_ENOTFOUND, and keeps returning it until the next seek.
 * @param[in] c the cursor.
 * @param[out] k,kl the key and its length; either may be NULL.
 * @param[out] v,vl the value and its length; either may be NULL.
 * @return 0 on success, or:
 *  - #LB_ENOTFOUND: no key is left;
 *  - #LB_EINVAL: @p c is NULL;
 *  - #LB_ECORRUPT: the table's pages are damaged.
 * @par Ownership: *k and *v point into the map: the library's, valid until
 * the snapshot is closed.
 * @par Threads: the thread that uses the snapshot.
 */
LB_API int lb_cursor_next(lb_cursor *c, const void **k, size_t *kl,
                          const void **v, size_t *vl);

/**
 * @brief Close a cursor.
 * @param[in] c the cursor; NULL does nothing.
 * @par Ownership: destructor of lb_cursor.
 * @par Threads: the thread that uses the snapshot.
 */
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
	size_t nissues;       /**< entries in issues: fewer than nissues_total
	                         past LB_ISSUES_MAX, or when an issue could not
	                         be copied (out of memory) */
	size_t nissues_total; /**< all issues found, kept or not */
	uint64_t *undone;     /**< rollbacks: the batches the new batch undoes
	                         (on dry run, would), newest first; NULL when
	                         none or for a commit */
	size_t nundone;       /**< entries in undone */
} lb_result;

/**
 * @brief Free what @p r holds (issues, undone list) and zero it, so that it
 * may be reused. Safe on a zeroed result and on one a call filled, whatever
 * that call returned.
 * @param[in,out] r the result; NULL does nothing.
 * @par Threads: any thread; not concurrently with another use of @p r.
 */
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
 * @param[in] s the new schema, or NULL for opaque bytes.
 * @param[out] res may be NULL; the new batch (0 if none), its record count
 * and the issues.
 * @return 0 on success, or:
 *  - #LB_ENOTFOUND: no such table;
 *  - #LB_EVALIDATION: records that do not fit the new schema, or name no
 *    key of a table it adds a reference to;
 *  - #LB_EINVAL: @p db or @p name is NULL; a bad name or schema (as for
 *    lb_table_create()); a ref to a missing table; the database is
 *    read-only;
 *  - #LB_ETOOBIG: @p name is longer than #LB_TABLE_NAME_MAX bytes, or the
 *    batch is larger than one LMDB transaction holds;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM, #LB_EVERSION:
 *    beginning, writing or committing the batch (see @ref errors).
 * @par Ownership: the schema is copied; @p res is zeroed first, and the
 * caller releases it with lb_result_free().
 * @par Threads: any thread but one holding an open batch of @p db: it
 * waits for the open batch, as lb_batch_begin() does.
 */
LB_API int lb_table_alter(lb_db *db, const char *name, const lb_schema *s,
                          lb_result *res);

/**
 * @brief Begin a write batch. Only one batch is open at a time per database:
 * this waits until the open one is committed or aborted (in this process,
 * and through LMDB in others). Its id is the last batch's + 1; a batch that
 * commits nothing does not use it up. The map grows here first when it is
 * more than half used.
 *
 * @param[in] db the database (not read-only).
 * @param[in] label free text stored with the batch (NULL = ""), at most
 *            #LB_LABEL_MAX bytes.
 * @param[out] b the batch; NULL on failure.
 * @return 0 on success, or:
 *  - #LB_EINVAL: @p db or @p b is NULL, or the database is read-only;
 *  - #LB_ETOOBIG: @p label is longer than #LB_LABEL_MAX bytes;
 *  - #LB_EBUSY: another process grew the map and transactions of this
 *    process kept the handle from following, or the tables kept changing
 *    under other processes;
 *  - #LB_ECORRUPT: the last batch header or the catalog is damaged;
 *  - #LB_EFULL: LMDB has no handle left for a table another process
 *    created;
 *  - #LB_EIO: a failed commit write left the database to be reopened, and
 *    snapshots begun before it prevent that; or LMDB failed;
 *  - #LB_ENOMEM: out of memory, or of address space to grow the map;
 *  - #LB_EVERSION: another process wrote a batch header or a schema in a
 *    newer version.
 * @par Ownership: the caller owns *b until lb_batch_commit() or
 * lb_batch_abort() ends (and frees) it.
 * @par Threads: any thread; the batch is bound to it: its ops, commit and
 * abort must come from that thread. It must hold no snapshot when the map
 * needs to grow (it would wait for itself).
 */
LB_API int lb_batch_begin(lb_db *db, const char *label, lb_batch **b);

/**
 * @brief Set @p key to @p val (insert or replace).
 *
 * Ops are applied in order and each is logged as one change record. An op
 * that breaks a rule is not applied: it records an issue and returns
 * #LB_EVALIDATION (the message is in lb_errmsg()); the caller may go on to
 * collect more issues, and commit then writes nothing and returns them
 * all. In a table with a schema, @p val must be a msgpack map satisfying
 * it (#LB_ISSUE_FORMAT). Foreign keys are checked at commit, against the
 * state after all of the batch's changes.
 *
 * @param[in] b the batch.
 * @param[in] table the table.
 * @param[in] key,klen the key: 1..#LB_KEY_MAX bytes.
 * @param[in] val,vlen the value: 0..#LB_VALUE_MAX bytes (@p val may be
 * NULL when @p vlen is 0).
 * @return 0 on success, or:
 *  - #LB_EVALIDATION: the op broke a rule and recorded an issue
 *    (FORMAT);
 *  - #LB_ENOTFOUND: no such table;
 *  - #LB_EINVAL: @p b, @p table or @p key is NULL, @p table is empty,
 *    @p klen is 0, @p val is NULL with @p vlen > 0, or the call comes
 *    from a thread that did not begin the batch;
 *  - #LB_ETOOBIG: @p klen is over #LB_KEY_MAX or @p vlen over
 *    #LB_VALUE_MAX; or the batch is larger than one LMDB transaction
 *    holds;
 *  - #LB_EFULL: the disk is full, or the map cannot grow (snapshots held
 *    by other threads for 10 s);
 *  - #LB_EBUSY: the map grew, and meanwhile another process created or
 *    removed tables: nothing written, begin the batch again;
 *  - #LB_ECORRUPT: damaged pages met while writing;
 *  - #LB_EIO: the batch's journal file failed, or LMDB failed;
 *  - #LB_ENOMEM: out of memory, or of address space to grow the map.
 *
 * #LB_EVALIDATION, #LB_ENOTFOUND, #LB_EINVAL and a key or value over its
 * limit leave the batch as it was. After any other code the batch has
 * failed and nothing of it can be written: abort it.
 * @par Ownership: key and value are copied; the caller keeps them.
 * @par Threads: only the thread that began the batch.
 */
LB_API int lb_put(lb_batch *b, const char *table, const void *key, size_t klen,
                  const void *val, size_t vlen);

/**
 * @brief Like lb_put(), but a key that exists (as the batch sees it) is a
 * #LB_ISSUE_DUPLICATE, and nothing is written.
 * @param[in] b the batch.
 * @param[in] table the table.
 * @param[in] key,klen the key: 1..#LB_KEY_MAX bytes.
 * @param[in] val,vlen the value: 0..#LB_VALUE_MAX bytes.
 * @return 0 on success, or:
 *  - #LB_EVALIDATION: the op broke a rule and recorded an issue
 *    (DUPLICATE, FORMAT);
 *  - #LB_ENOTFOUND: no such table;
 *  - #LB_EINVAL: @p b, @p table or @p key is NULL, @p table is empty,
 *    @p klen is 0, @p val is NULL with @p vlen > 0, or the call comes
 *    from a thread that did not begin the batch;
 *  - #LB_ETOOBIG: @p klen is over #LB_KEY_MAX or @p vlen over
 *    #LB_VALUE_MAX; or the batch is larger than one LMDB transaction
 *    holds;
 *  - #LB_EFULL: the disk is full, or the map cannot grow (snapshots held
 *    by other threads for 10 s);
 *  - #LB_EBUSY: the map grew, and meanwhile another process created or
 *    removed tables: nothing written, begin the batch again;
 *  - #LB_ECORRUPT: damaged pages met while writing;
 *  - #LB_EIO: the batch's journal file failed, or LMDB failed;
 *  - #LB_ENOMEM: out of memory, or of address space to grow the map.
 *
 * #LB_EVALIDATION, #LB_ENOTFOUND, #LB_EINVAL and a key or value over its
 * limit leave the batch as it was. After any other code the batch has
 * failed and nothing of it can be written: abort it.
 * @par Ownership: key and value are copied; the caller keeps them.
 * @par Threads: only the thread that began the batch.
 */
LB_API int lb_insert(lb_batch *b, const char *table, const void *key,
                     size_t klen, const void *val, size_t vlen);

/**
 * @brief Like lb_put(), but a key that is missing (as the batch sees it) is
 * a #LB_ISSUE_MISSING, and nothing is written.
 * @param[in] b the batch.
 * @param[in] table the table.
 * @param[in] key,klen the key: 1..#LB_KEY_MAX bytes.
 * @param[in] val,vlen the value: 0..#LB_VALUE_MAX bytes.
 * @return 0 on success, or:
 *  - #LB_EVALIDATION: the op broke a rule and recorded an issue
 *    (MISSING, FORMAT);
 *  - #LB_ENOTFOUND: no such table;
 *  - #LB_EINVAL: @p b, @p table or @p key is NULL, @p table is empty,
 *    @p klen is 0, @p val is NULL with @p vlen > 0, or the call comes
 *    from a thread that did not begin the batch;
 *  - #LB_ETOOBIG: @p klen is over #LB_KEY_MAX or @p vlen over
 *    #LB_VALUE_MAX; or the batch is larger than one LMDB transaction
 *    holds;
 *  - #LB_EFULL: the disk is full, or the map cannot grow (snapshots held
 *    by other threads for 10 s);
 *  - #LB_EBUSY: the map grew, and meanwhile another process created or
 *    removed tables: nothing written, begin the batch again;
 *  - #LB_ECORRUPT: damaged pages met while writing;
 *  - #LB_EIO: the batch's journal file failed, or LMDB failed;
 *  - #LB_ENOMEM: out of memory, or of address space to grow the map.
 *
 * #LB_EVALIDATION, #LB_ENOTFOUND, #LB_EINVAL and a key or value over its
 * limit leave the batch as it was. After any other code the batch has
 * failed and nothing of it can be written: abort it.
 * @par Ownership: key and value are copied; the caller keeps them.
 * @par Threads: only the thread that began the batch.
 */
LB_API int lb_update(lb_batch *b, const char *table, const void *key,
                     size_t klen, const void *val, size_t vlen);

/**
 * @brief Delete @p key. A missing key is a #LB_ISSUE_MISSING; a key that
 * other records still reference when the batch ends is a
 * #LB_ISSUE_FOREIGN_KEY at commit (delete the referrers in the same batch,
 * in any order).
 * @param[in] b the batch.
 * @param[in] table the table.
 * @param[in] key,klen the key: 1..#LB_KEY_MAX bytes.
 * @return 0 on success, or:
 *  - #LB_EVALIDATION: the op broke a rule and recorded an issue
 *    (MISSING);
 *  - #LB_ENOTFOUND: no such table;
 *  - #LB_EINVAL: @p b, @p table or @p key is NULL, @p table is empty,
 *    @p klen is 0, or the call comes from a thread that did not begin the
 *    batch;
 *  - #LB_ETOOBIG: @p klen is over #LB_KEY_MAX; or the batch is larger
 *    than one LMDB transaction holds;
 *  - #LB_EFULL: the disk is full, or the map cannot grow (snapshots held
 *    by other threads for 10 s);
 *  - #LB_EBUSY: the map grew, and meanwhile another process created or
 *    removed tables: nothing written, begin the batch again;
 *  - #LB_ECORRUPT: damaged pages met while writing;
 *  - #LB_EIO: the batch's journal file failed, or LMDB failed;
 *  - #LB_ENOMEM: out of memory, or of address space to grow the map.
 *
 * #LB_EVALIDATION, #LB_ENOTFOUND, #LB_EINVAL and a key over its limit
 * leave the batch as it was. After any other code the batch has failed and
 * nothing of it can be written: abort it.
 * @par Ownership: the key is copied; the caller keeps it.
 * @par Threads: only the thread that began the batch.
 */
LB_API int lb_delete(lb_batch *b, const char *table, const void *key,
                     size_t klen);

/**
 * @brief Read a key as the batch sees it, its own writes included.
 * @param[in] b the batch.
 * @param[in] table the table.
 * @param[in] key,klen the key: 1..#LB_KEY_MAX bytes.
 * @param[out] val points into the batch; NULL on failure.
 * @param[out] vlen its length.
 * @return 0 on success, or:
 *  - #LB_ENOTFOUND: no such key, or no such table;
 *  - #LB_EINVAL: @p b, @p table, @p key, @p val or @p vlen is NULL,
 *    @p table is empty, @p klen is 0, or the call comes from a thread that
 *    did not begin the batch;
 *  - #LB_ETOOBIG: @p klen is over #LB_KEY_MAX;
 *  - #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM, #LB_ETOOBIG: the batch
 *    failed earlier with this code (see lb_put()); #LB_ECORRUPT also for
 *    damaged pages.
 * @par Ownership: *val is the library's, valid until the next write op,
 * commit or abort of @p b: copy it before writing again.
 * @par Threads: only the thread that began the batch.
 */
LB_API int lb_batch_get(lb_batch *b, const char *table, const void *key,
                        size_t klen, const void **val, size_t *vlen);

/**
 * @brief Validate and commit the batch, atomically with its log, then free
 * it.
 *
 * Foreign keys are checked first (even when ops had issues, so that @p res
 * lists every issue of the batch). If any op or check found an issue,
 * nothing at all is written (no data, no log, no batch id is consumed) and
 * #LB_EVALIDATION is returned with every issue in @p res. A batch with no
 * records commits nothing and returns 0 with res->batch_id 0. Without
 * #LB_NOSYNC the batch is on disk when this returns.
 *
 * @param[in] b the batch; freed by this call whatever it returns, except
 * when called from a thread other than the one that began it: then it
 * returns #LB_EINVAL and the batch stays open for its owner.
 * @param[out] res may be NULL; otherwise zeroed, then filled: rc, the new
 * batch id and its record count, and the issues.
 * @return 0 on success, or:
 *  - #LB_EVALIDATION: an op or a foreign-key check found an issue;
 *  - #LB_EINVAL: @p b is NULL, or the call comes from another thread;
 *  - #LB_EFULL: the disk or the file size limit is full, or the map cannot
 *    grow (snapshots held by other threads for 10 s);
 *  - #LB_EIO: writing failed (the next call reopens the database by
 *    itself);
 *  - #LB_ETOOBIG: the batch is larger than one LMDB transaction holds;
 *  - #LB_EBUSY: the map grew, and meanwhile another process created or
 *    removed tables;
 *  - #LB_ECORRUPT: damaged pages met while committing;
 *  - #LB_ENOMEM: out of memory, or of address space to grow the map;
 *  - any of these when the batch failed earlier (see lb_put()).
 * @par Ownership: destructor of the batch. @p res is not freed first: free
 * a previous result before reusing the struct, and release this one with
 * lb_result_free().
 * @par Threads: only the thread that began the batch.
 */
LB_API int lb_batch_commit(lb_batch *b, lb_result *res);

/**
 * @brief Discard the batch: nothing of it is written, and it consumes no
 * id.
 * @param[in] b the batch, freed; NULL does nothing.
 * @par Ownership: destructor of lb_batch.
 * @par Threads: only the thread that began the batch.
 */
LB_API void lb_batch_abort(lb_batch *b);
/** @} */

/* ---- Checking a value without writing it --------------------------------
 */
/** @addtogroup batches
 * @{ */

/**
 * @brief Check a value against table @p table's schema as lb_put() would,
 * without writing it.
 *
 * The FORMAT issues that lb_put() of @p val under @p key would record
 * (every broken rule of every field, word for word the same messages) go
 * to @p res, and the batch is left exactly as it was: nothing is written,
 * and the check's issues are not the batch's. Key existence (DUPLICATE,
 * MISSING) and foreign keys are not checked. A table without a schema
 * takes any bytes: 0. Useful to explain a refused op in full, since the
 * batch keeps the detail of its first #LB_ISSUES_MAX issues only.
 * @param[in] b an open batch (on the thread that began it).
 * @param[in] table the table's name.
 * @param[in] key the key (1..#LB_KEY_MAX bytes; the key_field rule
 * compares with it).
 * @param[in] klen its length.
 * @param[in] val the value (a msgpack map where the table has a schema);
 * may be NULL only when @p vlen is 0.
 * @param[in] vlen its length (at most #LB_VALUE_MAX).
 * @param[out] res may be NULL; zeroed, then filled: rc, and the issues
 * (res->issues, res->nissues, res->nissues_total).
 * @return 0 when the value fits the schema, or:
 *  - #LB_EVALIDATION: it does not (the issues are in @p res);
 *  - #LB_EINVAL: @p b is NULL or used from another thread; @p table or
 *    @p key is NULL or empty, or @p table's name is not valid; @p val is
 *    NULL with @p vlen > 0;
 *  - #LB_ETOOBIG: @p key or @p val is over its limit;
 *  - #LB_ENOTFOUND: no table @p table;
 *  - #LB_ENOMEM: out of memory (a pattern rule's matcher);
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO: the batch failed
 *    earlier (it may only be aborted).
 * @par Ownership: the caller releases @p res with lb_result_free(); the
 * batch keeps ownership of nothing from this call.
 * @par Threads: only the thread that began @p b.
 */
LB_API int lb_batch_check(lb_batch *b, const char *table, const void *key,
                          size_t klen, const void *val, size_t vlen,
                          lb_result *res);
/** @} */
/* ---- end of: checking a value without writing it ------------------------ */

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
 * @brief The id of the last committed batch, read from the log on disk (so
 * it sees batches other processes committed).
 * @param[in] db the database.
 * @param[out] id the id, 0 when there is none (and on failure).
 * @return 0 on success, or:
 *  - #LB_EINVAL: @p db or @p id is NULL;
 *  - #LB_ECORRUPT: the log's index is damaged;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM,
 *    #LB_EVERSION: beginning the read (see @ref errors).
 * @par Threads: any thread; never waits for a writer.
 */
LB_API int lb_last_batch(lb_db *db, uint64_t *id);

/**
 * @brief Describe batch @p id, from its header.
 * @param[in] db the database.
 * @param[in] id the batch, from 1.
 * @param[out] out zeroed, then filled.
 * @return 0 on success, or:
 *  - #LB_ENOTFOUND: @p id is 0 or past the last batch;
 *  - #LB_EINVAL: @p db or @p out is NULL;
 *  - #LB_ECORRUPT: the header is damaged;
 *  - #LB_EVERSION: the header was written by a newer logbook;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM,
 *    #LB_EVERSION: beginning the read (see @ref errors).
 * @par Threads: any thread; never waits for a writer.
 */
LB_API int lb_batch_info_get(lb_db *db, uint64_t id, lb_batch_info *out);

/** Called once per change record, in log order; non-zero stops the walk. */
typedef int (*lb_change_fn)(void *ctx, const lb_change *c);

/**
 * @brief Walk the change records of batch @p id in log order, from one
 * consistent read transaction, decoding one segment at a time. Each
 * segment is verified (SHA-256 against the header, CRC-32, lengths, every
 * record) before its first record is handed out.
 * @param[in] db the database.
 * @param[in] id the batch, from 1.
 * @param[in] fn called once per record; non-zero stops the walk (return a
 * positive value, which cannot be taken for a code).
 * @param[in] ctx passed to @p fn.
 * @return 0 on success; the callback's non-zero value if it stopped the
 * walk; or:
 *  - #LB_ENOTFOUND: @p id is 0 or past the last batch;
 *  - #LB_EINVAL: @p db or @p fn is NULL;
 *  - #LB_EPRUNED: the batch's segments were dropped by lb_prune();
 *  - #LB_ECORRUPT: the header or a segment is missing or damaged, or the
 *    record count disagrees with the header (the records of the segments
 *    before it were handed out already);
 *  - #LB_EVERSION: the header or a segment was written by a newer logbook;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM,
 *    #LB_EVERSION: beginning the read (see @ref errors).
 * @par Ownership: the lb_change passed to @p fn and what it points to are
 * the library's, valid only during the call.
 * @par Threads: any thread; never waits for a writer. @p fn runs inside the
 * read transaction: it may read but must not write.
 */
LB_API int lb_changes(lb_db *db, uint64_t id, lb_change_fn fn, void *ctx);

/**
 * Called by lb_history() once per change record of the key, batches newest
 * first (records of one batch in log order). For the newest batch whose
 * segments were pruned, @p c is NULL, once, and the walk ends there (older
 * batches cannot be found). Pointers are valid only during the call;
 * non-zero stops the walk.
 */
typedef int (*lb_history_fn)(void *ctx, uint64_t batch, const lb_change *c);

/**
 * @brief Walk every committed change of one key, newest batch first (the
 * records of one batch in log order), rollback batches included, by the
 * key's history (the batch that last wrote it, then from each record the
 * batch that changed the key before; docs/FORMAT.md §2.4): only the
 * batches that changed the key are read. When a batch's segments were
 * pruned, nothing older can be found: @p fn gets a NULL change for that
 * batch, once, and the walk ends (returning 0, or @p fn's non-zero value).
 * A key that never existed gives no call.
 * @param[in] db the database.
 * @param[in] table the table.
 * @param[in] key,klen the key: 1..#LB_KEY_MAX bytes.
 * @param[in] fn called once per change; non-zero stops the walk (return a
 * positive value, which cannot be taken for a code).
 * @param[in] ctx passed to @p fn.
 * @return 0 on success (also when the key never existed); the callback's
 * non-zero value if it stopped the walk; or:
 *  - #LB_ENOTFOUND: no such table (or the history names a batch that is
 *    gone);
 *  - #LB_EINVAL: @p db, @p fn, @p table or @p key is NULL, @p table is
 *    empty, or @p klen is 0;
 *  - #LB_ETOOBIG: @p klen is over #LB_KEY_MAX;
 *  - #LB_ECORRUPT: the history (a batch named that has no record of the
 *    key, or a record naming a later batch as the key's previous change),
 *    a header or a segment is damaged;
 *  - #LB_EVERSION: a header or a segment was written by a newer logbook;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM,
 *    #LB_EVERSION: beginning the read (see @ref errors).
 * @par Ownership: the lb_change passed to @p fn and what it points to are
 * the library's, valid only during the call.
 * @par Threads: any thread; never waits for a writer. @p fn runs inside the
 * read transaction: it may read but must not write.
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
 * examples.
 * @param[in] db the database (not read-only).
 * @param[in] id the batch to undo; it must stand.
 * @param[in] flags 0, #LB_CASCADE or #LB_FORCE, either with #LB_DRYRUN.
 * @param[out] res may be NULL; zeroed, then filled: rc, the new batch id
 * (0 on dry run or when nothing was left to write), the record count (on
 * dry run: that would be written), the batches undone (res->undone,
 * newest first) and any CONFLICT or FOREIGN_KEY issues.
 * @return 0 on success, or:
 *  - #LB_ECONFLICT: strict mode: a later batch changed a key of @p id;
 *    any mode: a table of @p id was created or removed since;
 *  - #LB_EVALIDATION: the restored state would break a foreign key, or
 *    records written since do not fit a schema @p id changed;
 *  - #LB_ENOTFOUND: @p id is 0 or past the last batch;
 *  - #LB_EINVAL: @p db is NULL; unknown flags, or #LB_CASCADE with
 *    #LB_FORCE; the database is read-only; @p id does not stand (it was
 *    rolled back); it created a table that holds records or that another
 *    table references, or changed a table whose creation was rolled back
 *    since;
 *  - #LB_EPRUNED: the log of @p id (or of a batch the cascade needs) was
 *    pruned;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM, #LB_EVERSION:
 *    beginning, writing or committing the new batch (see @ref errors);
 *  - #LB_ETOOBIG: the new batch is larger than one LMDB transaction
 *    holds.
 * @par Ownership: the caller releases @p res with lb_result_free().
 * @par Threads: any thread but one holding an open batch of @p db: it
 * takes the writer lock, as lb_batch_begin() does.
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
 * @param[in] id the batch to go back to (0: the empty database).
 * @param[out] res may be NULL; zeroed, then filled: rc, the new batch, its
 * record count, the batches it undid (res->undone) and FOREIGN_KEY issues.
 * @return 0 on success, or:
 *  - #LB_ENOTFOUND: @p id is past the last batch;
 *  - #LB_EPRUNED: a batch after @p id was pruned;
 *  - #LB_EINVAL: @p db is NULL; the database is read-only; tables to
 *    remove or to create again reference each other;
 *  - #LB_EVALIDATION: the restored state would break a foreign key;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM, #LB_EVERSION:
 *    beginning, writing or committing the new batch (see @ref errors);
 *  - #LB_ETOOBIG: the new batch is larger than one LMDB transaction
 *    holds.
 * @par Ownership: the caller releases @p res with lb_result_free().
 * @par Threads: any thread but one holding an open batch of @p db: it
 * takes the writer lock, as lb_batch_begin() does.
 */
LB_API int lb_rollback_to(lb_db *db, uint64_t id, lb_result *res);

/**
 * @brief lb_rollback_to() with flags: #LB_DRYRUN does everything in the
 * transaction, the foreign-key checks included, then throws it away, and
 * returns what the real call would (code, issues, res->records, and in
 * res->undone the batches it would undo); res->batch_id is 0.
 *
 * @param[in] db the database (not read-only).
 * @param[in] id the batch to go back to (0: the empty database).
 * @param[in] flags 0 or #LB_DRYRUN.
 * @param[out] res may be NULL; as for lb_rollback_to().
 * @return 0 on success, or:
 *  - #LB_ENOTFOUND: @p id is past the last batch;
 *  - #LB_EPRUNED: a batch after @p id was pruned;
 *  - #LB_EINVAL: @p db is NULL; unknown flags; the database is read-only;
 *    tables to remove or to create again reference each other;
 *  - #LB_EVALIDATION: the restored state would break a foreign key;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM, #LB_EVERSION:
 *    beginning, writing or committing the new batch (see @ref errors);
 *  - #LB_ETOOBIG: the new batch is larger than one LMDB transaction
 *    holds.
 * @par Ownership: the caller releases @p res with lb_result_free().
 * @par Threads: as lb_rollback_to().
 */
LB_API int lb_rollback_to_ex(lb_db *db, uint64_t id, unsigned flags,
                             lb_result *res);

/* ---- Rolling back a set of batches at once -------------------------------
 */

/**
 * @brief Undo several committed batches together, in one new, logged
 * batch.
 *
 * As if lb_rollback() undid each batch of @p ids, newest first, but all in
 * one new batch that commits or writes nothing: a key that a newer batch
 * of the set changed is not a conflict for an older one (the newer one is
 * undone first, in the same batch). The rules of lb_rollback() apply
 * otherwise (docs/ROLLBACK.md): strict by default (a key changed by a
 * batch outside the set is a CONFLICT naming it, and nothing is written);
 * #LB_CASCADE also undoes every later standing ordinary batch built on
 * what the set changes, all newest first; #LB_FORCE restores regardless
 * of later changes; #LB_DRYRUN reports what would happen and writes
 * nothing. Foreign keys hold afterwards in every mode. The new batch's
 * lb_batch_info.undoes is the newest batch of the set; every batch it
 * undoes is rolled back by it. Its label lists the batches.
 * @param[in] db the database (not read-only).
 * @param[in] ids the batches to undo, in any order; a repeated id counts
 * once. Read only during the call; the caller keeps ownership.
 * @param[in] n how many ids (at least 1).
 * @param[in] flags 0, #LB_CASCADE or #LB_FORCE, either with #LB_DRYRUN.
 * @param[out] res may be NULL; zeroed, then filled as by lb_rollback():
 * rc, the new batch id (0 on dry run), the record count, the batches
 * undone (res->undone, newest first) and any CONFLICT or FOREIGN_KEY
 * issues.
 * @return 0 on success, or:
 *  - #LB_ECONFLICT: strict mode: a batch outside the set changed a key of
 *    a batch of the set; any mode: a table of the set was created or
 *    removed since;
 *  - #LB_EVALIDATION: the restored state would break a foreign key, or
 *    records written since do not fit a schema the set changed;
 *  - #LB_ENOTFOUND: an id is 0 or past the last batch;
 *  - #LB_EINVAL: @p db is NULL; @p ids is NULL or @p n is 0; unknown
 *    flags, or #LB_CASCADE with #LB_FORCE; the database is read-only; a
 *    batch of the set does not stand; it created a table that holds
 *    records or that another table references, or changed a table whose
 *    creation was rolled back since;
 *  - #LB_EPRUNED: the log of a batch of the set (or of a batch the
 *    cascade needs) was pruned;
 *  - #LB_ENOMEM: out of memory (copying @p ids, or as below);
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_EVERSION:
 *    beginning, writing or committing the new batch (see @ref errors);
 *  - #LB_ETOOBIG: the new batch is larger than one LMDB transaction
 *    holds.
 * @par Ownership: the caller releases @p res with lb_result_free().
 * @par Threads: any thread but one holding an open batch of @p db: it
 * takes the writer lock, as lb_batch_begin() does.
 */
LB_API int lb_rollback_set(lb_db *db, const uint64_t *ids, size_t n,
                           unsigned flags, lb_result *res);
/* ---- end of: rolling back a set of batches at once ---------------------- */
/** @} */

/** @defgroup replay Checkpoints, replay, verify, prune
 * @{ */

/**
 * @brief Write a compacted, consistent copy of the database to @p dest_dir
 * (which must not exist, or be an empty directory; missing parents are
 * created) and register it in the database under the batch it holds.
 *
 * The copy is made from one read transaction while batches go on, in a
 * hidden sibling directory renamed into place when complete: a killed
 * checkpoint leaves at most that hidden directory, never a destination
 * that opens. A second checkpoint at the same batch replaces the
 * registration. Registration is not a logged batch.
 * @param[in] db the database (not read-only: the checkpoint is registered
 * in it).
 * @param[in] dest_dir the destination directory.
 * @param[out] at_batch the last batch in the copy; may be NULL.
 * @return 0 on success, or:
 *  - #LB_EEXIST: @p dest_dir is not empty, is a file, or was filled
 *    meanwhile;
 *  - #LB_EINVAL: @p db or @p dest_dir is NULL or empty; @p dest_dir has no
 *    name of its own (. or ..); the database is read-only;
 *  - #LB_ENOTFOUND: a component of @p dest_dir's path vanished or is a
 *    dangling link;
 *  - #LB_EBUSY: LMDB's reader table is full;
 *  - #LB_ECORRUPT: the copy does not open as a database (the source is
 *    damaged);
 *  - #LB_EFULL: the disk is full;
 *  - #LB_EIO: the destination cannot be created, written or synced, or
 *    the database must be reopened after a failed write and a snapshot
 *    prevents it;
 *  - #LB_ENOMEM: out of memory;
 *  - #LB_EVERSION: the copy's last batch header was written by a newer
 *    logbook.
 * @par Threads: any thread but one holding an open batch of @p db: the
 * copy runs alongside writers, then registering takes the writer lock
 * briefly.
 */
LB_API int lb_checkpoint(lb_db *db, const char *dest_dir, uint64_t *at_batch);

/**
 * @brief Build in @p dest_dir (missing or empty) the database as it was right
 * after batch @p to_batch (0 = the last), with the same log up to it: same
 * ids, segments, headers and hashes, so the new database verifies. Like a
 * checkpoint, it appears at @p dest_dir only when complete.
 * @param[in] src the database to replay.
 * @param[in] dest_dir the destination directory.
 * @param[in] to_batch the last batch to replay; 0 = the last one.
 * @param[in] from_checkpoint NULL or "" to start from empty, or a
 * checkpoint directory of this database taken at or before @p to_batch.
 * @param[out] res may be NULL; zeroed, then on success batch_id is the
 * batch replayed to and records the change records applied.
 * @return 0 on success, or:
 *  - #LB_EEXIST: @p dest_dir is not empty, is a file, or was filled
 *    meanwhile;
 *  - #LB_EINVAL: @p src or @p dest_dir is NULL or empty; @p dest_dir has
 *    no name of its own; the checkpoint is no database, not of this one,
 *    or after @p to_batch;
 *  - #LB_ENOTFOUND: @p to_batch is past the last batch, or a component of
 *    @p dest_dir's path vanished or is a dangling link;
 *  - #LB_EPRUNED: a batch to replay was pruned (replay from a checkpoint
 *    at or after it; the message says which);
 *  - #LB_EBUSY: this process has the checkpoint open already, or beginning
 *    the read (see @ref errors);
 *  - #LB_ECORRUPT: the log is damaged (the message names the batch), or
 *    the checkpoint is;
 *  - #LB_EVERSION: the log or the checkpoint was written by a newer
 *    logbook;
 *  - #LB_EFULL, #LB_EIO: writing the new database failed, or beginning the
 *    read (see @ref errors);
 *  - #LB_ENOMEM: out of memory.
 * @par Threads: any thread; it reads the source through one read
 * transaction and takes no lock on it: writers go on. While it applies the
 * records of one segment, a thread of its own checks and inflates the
 * next (it never calls LMDB or back into the application); the thread
 * ends before lb_replay() returns.
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
 * @brief Check the log from one read transaction: batch ids 1..last without
 * gaps; every header, its hash and the chain; every segment's SHA-256,
 * CRC-32 and records, and the counts; who stands; _meta's next table id;
 * every value's writer and every `_gone` entry against the batch they name
 * (docs/FORMAT.md §2.4). With #LB_VERIFY_REPLAY also that a replay of the log
 * (into a temporary directory under $TMPDIR, or /tmp, removed afterwards)
 * equals the tables and indexes.
 * @param[in] db the database.
 * @param[in] flags 0 or #LB_VERIFY_REPLAY.
 * @param[out] rep zeroed, then filled: counts, chain_ok, replay_ok, and on
 * failure bad_batch and detail.
 * @return 0 on success, or:
 *  - #LB_ECORRUPT: a check failed (see @p rep; lb_errmsg() repeats it),
 *    including a pruned log with no checkpoint to replay from;
 *  - #LB_EINVAL: @p db or @p rep is NULL, or unknown flags;
 *  - #LB_EBUSY: other processes kept growing the database while its pages
 *    were checked, or (with #LB_VERIFY_REPLAY) kept creating tables during
 *    the check: each time, the check starts again on a new snapshot, 16
 *    times at most; or beginning the read;
 *  - #LB_EFULL, #LB_EIO: the replay's temporary directory could not be
 *    written; or beginning the read;
 *  - #LB_ENOMEM: out of memory;
 *  - #LB_EVERSION: the replay met a schema or a checkpoint written by a
 *    newer logbook; or beginning the read (see @ref errors).
 * @par Threads: any thread; a reader: writers go on.
 */
LB_API int lb_verify(lb_db *db, unsigned flags, lb_verify_report *rep);

/** Called by lb_checkpoints() once per registered checkpoint, oldest first. */
typedef int (*lb_checkpoint_fn)(void *ctx, uint64_t batch, const char *path,
                                int64_t time_ns);

/**
 * @brief List the checkpoints registered by lb_checkpoint(), oldest (lowest
 * batch) first. The list is read first; @p fn then runs with no
 * transaction or lock held. A registered directory may since have been
 * moved or deleted.
 * @param[in] db the database.
 * @param[in] fn called once per checkpoint with its batch, path and time;
 * non-zero stops the walk (return a positive value).
 * @param[in] ctx passed to @p fn.
 * @return 0 on success; the callback's non-zero value if it stopped the
 * walk; or:
 *  - #LB_EINVAL: @p db or @p fn is NULL;
 *  - #LB_ECORRUPT: a registration is damaged;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM,
 *    #LB_EVERSION: beginning the read (see @ref errors).
 * @par Ownership: the path passed to @p fn is the library's, valid only
 * during the call.
 * @par Threads: any thread; @p fn may call anything, writes included.
 */
LB_API int lb_checkpoints(lb_db *db, lb_checkpoint_fn fn, void *ctx);

/**
 * @brief Drop the segments of every batch older than @p before_batch, in
 * one write transaction. Needs a registered checkpoint at a batch >=
 * before_batch - 1 whose files still exist. Headers stay, so the hash
 * chain still verifies; pruned batches answer #LB_EPRUNED to lb_changes()
 * and lb_rollback(), and replay from empty past them is refused (replay
 * from the checkpoint works). Not a logged batch: it consumes no batch id.
 * @p before_batch 0 or 1 does nothing. A registered consumer
 * (lb_consumer_ack()) that has not acknowledged batch @p before_batch - 1
 * holds the prune back (#LB_EBUSY), unless it is past the consumer limits
 * (lb_consumer_limits_set()): then it is marked lost, in the same
 * transaction, and answers #LB_EPRUNED.
 * @param[in] db the database (not read-only).
 * @param[in] before_batch the first batch to keep whole.
 * @return 0 on success, or:
 *  - #LB_EINVAL: @p db is NULL; the database is read-only;
 *    @p before_batch - 1 is past the last batch; no registered checkpoint
 *    at or after @p before_batch - 1 exists on disk;
 *  - #LB_EBUSY: a consumer within the limits has not acknowledged batch
 *    @p before_batch - 1 (the message names it);
 *  - #LB_ECORRUPT: a header or a registration is damaged;
 *  - #LB_EVERSION: a header was written by a newer logbook;
 *  - #LB_EFULL: the disk or the map is full;
 *  - #LB_EIO: writing failed, or the database must be reopened after a
 *    failed write and a snapshot prevents it;
 *  - #LB_ENOMEM: out of memory.
 * @par Threads: any thread but one holding an open batch of @p db: it
 * takes the writer lock, as lb_batch_begin() does.
 */
LB_API int lb_prune(lb_db *db, uint64_t before_batch);
/** @} */

/* ======================================================================
 * Followers: batch frames, database identity, promotion
 * (docs/REPLICATION.md; the frame is docs/FORMAT.md §16)
 * ====================================================================== */
/** @defgroup follow Followers
 * A follower is a database that holds exactly a primary's log, applied
 * batch by batch from frames (lb_batch_raw() on the primary,
 * lb_batch_apply_raw() on the follower) carried by any transport. A
 * follower refuses batches of its own until lb_promote().
 * @{ */

/** Bytes of a database id. */
#define LB_ID_SIZE 16

/** What a database knows of itself (lb_identity_get()). */
typedef struct lb_identity {
	/** this database's id: random, made when it was created (or when a
	 * copy of another database first applied a frame of it) */
	uint8_t id[LB_ID_SIZE];
	/** 1 when the database follows another: it refuses batches of its
	 * own (#LB_EINVAL) until lb_promote(); else 0 */
	int follows;
	/** with follows: the id of the database whose frame it applied last;
	 * else zeros */
	uint8_t primary[LB_ID_SIZE];
} lb_identity;

/**
 * @brief The identity of a database: its own id and, when it follows,
 * its primary's.
 * @param[in] db the database.
 * @param[out] out zeroed, then filled.
 * @return 0 on success, or:
 *  - #LB_EINVAL: @p db or @p out is NULL;
 *  - #LB_ECORRUPT: the stored id is missing or damaged;
 *  - #LB_EBUSY, #LB_EFULL, #LB_EIO, #LB_ENOMEM, #LB_EVERSION: beginning
 *    the read (see @ref errors).
 * @par Threads: any thread; a reader.
 */
LB_API int lb_identity_get(lb_db *db, lb_identity *out);

/**
 * @brief One self-describing frame holding batch @p id exactly as stored:
 * its header, what it undoes, and its segments, with the id of this
 * database and a CRC-32 (docs/FORMAT.md §16). The header's hash and each
 * segment's SHA-256 are checked first, so a damaged batch is never
 * framed.
 * @param[in] db the database.
 * @param[in] id the batch, 1..last.
 * @param[out] buf the frame, from malloc(); NULL on failure.
 * @param[out] len its length in bytes; 0 on failure.
 * @return 0 on success, or:
 *  - #LB_EINVAL: a NULL argument;
 *  - #LB_ENOTFOUND: no batch @p id;
 *  - #LB_EPRUNED: the batch's log was pruned;
 *  - #LB_ECORRUPT: the database's id is missing, or the batch's header
 *    or a segment is damaged (the
 *    message names the batch and segment);
 *  - #LB_EVERSION: the header was written by a newer logbook;
 *  - #LB_ENOMEM: out of memory;
 *  - #LB_EBUSY, #LB_EFULL, #LB_EIO: beginning the read (see @ref errors).
 * @par Ownership: the caller frees *buf with free().
 * @par Threads: any thread; a reader: writers go on.
 */
LB_API int lb_batch_raw(lb_db *db, uint64_t id, void **buf, size_t *len);

/**
 * @brief Check a frame made by lb_batch_raw() and apply its batch in one
 * transaction, so that this database's log, hashes and tables equal the
 * primary's up to that batch.
 *
 * The frame's CRC, the header's hash and each segment's SHA-256 are
 * checked, then that the batch is the next one (id == last + 1) and
 * chains to this database's head (its previous hash is the head's hash).
 * A batch that is here already with the same hash is a no-op. A database
 * with no batch, or a copy of the frame's database (same id: a checkpoint
 * copy), becomes a follower (the copy gets an id of its own); the
 * primary recorded is the frame's database.
 * @param[in] db the database (not read-only; a follower, empty, or a copy
 * of the frame's database).
 * @param[in] buf the frame.
 * @param[in] len its length.
 * @param[out] id may be NULL; the frame's batch id when the frame was
 * valid (applied or already there), else 0.
 * @return 0 when the batch was applied or was already here, or:
 *  - #LB_EINVAL: @p db or @p buf is NULL; the database is read-only; it
 *    has batches of its own and is neither a follower nor a copy of the
 *    frame's database ("is a primary");
 *  - #LB_ECORRUPT: the frame is damaged or forged: bad magic, version,
 *    length, CRC, header, hash, segment or record (the message names the
 *    batch); nothing is applied;
 *  - #LB_ECONFLICT: a gap (the batch is not the next one: the message
 *    names the batch expected) or a fork (a batch of that id with another
 *    hash is here, or its previous hash is not this database's head);
 *  - #LB_EVERSION: a frame, header or segment of a newer version;
 *  - #LB_EFULL: the disk or the map is full;
 *  - #LB_EIO: writing failed;
 *  - #LB_ENOMEM: out of memory;
 *  - #LB_EBUSY: see @ref errors.
 * @par Threads: any thread but one holding an open batch of @p db: it
 * takes the writer lock, as lb_batch_begin() does.
 */
LB_API int lb_batch_apply_raw(lb_db *db, const void *buf, size_t len,
                              uint64_t *id);

/**
 * @brief Make a follower a primary: it accepts batches of its own again
 * and frames of no other database. Applying what its primary committed
 * first is the caller's business (logbook promote does it).
 * @param[in] db the database (not read-only).
 * @return 0 on success, or:
 *  - #LB_EINVAL: @p db is NULL or read-only, or it is not a follower;
 *  - #LB_EFULL, #LB_EIO, #LB_ENOMEM, #LB_EBUSY: writing (see @ref errors).
 * @par Threads: any thread but one holding an open batch of @p db.
 */
LB_API int lb_promote(lb_db *db);
/** @} */
/* ==== end of the followers section ==== */

/* ==== The log as a feed: following, as-of reads, diffs, consumers ==== */
/** @defgroup feed The log as a feed
 * Following the log as it grows, reading any past state in place, and
 * named consumers whose acknowledged position holds back lb_prune()
 * (docs/API.md, "The log as a feed"; docs/DESIGN.md, "How as-of reads and
 * the feed find their records").
 * @{ */

/**
 * @brief Wait until the last committed batch is past @p after.
 *
 * Returns as soon as a batch above @p after is committed, by this process
 * or another one. Across processes the wait uses inotify on the data file
 * (every commit writes it), with a bounded poll of the last batch
 * (at most every 200 ms) as a safety net, or a backoff poll (1 ms growing
 * to 50 ms) where inotify is not available; an idle wait sleeps in the
 * kernel. A signal does not end the wait; use a finite timeout to check
 * for one.
 * @param[in] db the database.
 * @param[in] after the batch the caller has seen (0: none).
 * @param[in] timeout_ms how long to wait: -1 forever, 0 only look.
 * @param[out] last the last committed batch when the call returns (also
 * on #LB_EBUSY; 0 on other failures).
 * @return 0 when the last batch is past @p after, or:
 *  - #LB_EBUSY: @p timeout_ms passed first;
 *  - #LB_EINVAL: @p db or @p last is NULL, or @p timeout_ms is below -1;
 *  - #LB_ECORRUPT: the log's index is damaged;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM,
 *    #LB_EVERSION: beginning a read (see @ref errors).
 * @par Threads: any thread, any number at once; it holds no lock and no
 * read transaction while it sleeps (a batch may commit meanwhile on
 * another thread).
 */
LB_API int lb_wait(lb_db *db, uint64_t after, int timeout_ms, uint64_t *last);

/**
 * @brief Read the value @p key of @p table held right after batch
 * @p batch committed, in place (no replay).
 *
 * The answer is the before-image of the key's first change after
 * @p batch, found by walking the key's history (docs/FORMAT.md §2.4) down
 * from its last change, or the current value when no later batch changed
 * the key: its cost grows with the key's changes after @p batch, not with
 * the log. When no value is
 * found that way and a rollback after @p batch removed a table of that
 * name, the log from @p batch up to that removal is read
 * (docs/DESIGN.md).
 * @param[in] db the database.
 * @param[in] batch the batch: 0 (before the first batch: every key is
 * absent) up to the last batch (the current value).
 * @param[in] table the table (as it was named at @p batch).
 * @param[in] key,klen the key: 1..#LB_KEY_MAX bytes.
 * @param[out] val the value, from malloc(): free() it; NULL on failure.
 * @param[out] vlen its length; 0 on failure.
 * @return 0 on success, or:
 *  - #LB_ENOTFOUND: the key (or the table) did not exist right after
 *    @p batch, or @p batch is past the last batch;
 *  - #LB_EPRUNED: the answer is in the log of a batch that lb_prune()
 *    dropped (never a wrong answer instead);
 *  - #LB_EINVAL: @p db, @p val, @p vlen, @p table or @p key is NULL,
 *    @p table is empty, or @p klen is 0;
 *  - #LB_ETOOBIG: @p klen is over #LB_KEY_MAX;
 *  - #LB_ECORRUPT: the index, a header or a segment is damaged;
 *  - #LB_EVERSION: a header or a segment was written by a newer logbook;
 *  - #LB_ENOMEM: out of memory;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM,
 *    #LB_EVERSION: beginning the read (see @ref errors).
 * @par Ownership: the caller owns *@p val.
 * @par Threads: any thread; never waits for a writer.
 */
LB_API int lb_get_asof(lb_db *db, uint64_t batch, const char *table,
                       const void *key, size_t klen, void **val, size_t *vlen);

/**
 * @brief Call @p fn once per key whose value differs between "right after
 * batch @p from" and "right after batch @p to".
 *
 * Each call is an lb_change: op #LB_OP_PUT when the key holds a value
 * after @p to, #LB_OP_DELETE when it does not; before = the value after
 * @p from (has_before 0: absent), after = the value after @p to. A table
 * created, removed or whose schema changed in between is one #LB_OP_TABLE
 * change (key NULL, klen 0; the schemas' encodings as images), handed out
 * before the keys of that table. Calls come in table name order, then key
 * order (bytes, as lb_cursor_next()). Reads the records of the batches
 * between the two (in one read transaction), so its cost is proportional
 * to the changes between them, not to the size of the tables.
 * @p from may be above @p to (the images swap roles); equal: no call.
 * @param[in] db the database.
 * @param[in] from the first state: a batch, 0 for the empty database.
 * @param[in] to the second state: a batch, 0 for the empty database.
 * @param[in] fn called once per differing key or table; non-zero stops
 * (return a positive value, which cannot be taken for a code).
 * @param[in] ctx passed to @p fn.
 * @return 0 on success; the callback's non-zero value if it stopped; or:
 *  - #LB_ENOTFOUND: @p from or @p to is past the last batch;
 *  - #LB_EINVAL: @p db or @p fn is NULL;
 *  - #LB_EPRUNED: a batch in between was pruned by lb_prune();
 *  - #LB_ECORRUPT: a header or a segment is damaged;
 *  - #LB_EVERSION: a header or a segment was written by a newer logbook;
 *  - #LB_ENOMEM: out of memory (it holds the changes in between);
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM,
 *    #LB_EVERSION: beginning the read (see @ref errors).
 * @par Ownership: the lb_change passed to @p fn and what it points to are
 * the library's, valid only during the call.
 * @par Threads: any thread; never waits for a writer. @p fn runs after
 * the read transaction ended: it may call anything, writes included.
 */
LB_API int lb_diff(lb_db *db, uint64_t from, uint64_t to, lb_change_fn fn,
                   void *ctx);

/** The longest consumer name, in bytes. */
enum { LB_CONSUMER_NAME_MAX = 64 };

/** A named consumer of the log (lb_consumer_ack()). */
typedef struct lb_consumer_info {
	char name[LB_CONSUMER_NAME_MAX + 1]; /**< NUL-terminated */
	uint64_t acked;  /**< the last batch it acknowledged (0: none) */
	int64_t time_ns; /**< when it last acknowledged (ns since the epoch) */
	int lost;        /**< non-zero: lb_prune() dropped batches it had not
	                      acknowledged (it was past the consumer limits) */
} lb_consumer_info;

/**
 * @brief Record that consumer @p name has processed every batch up to
 * @p batch, registering it if it is new.
 *
 * A registered consumer holds back lb_prune(): no batch after the one it
 * acknowledged is pruned, unless it falls past the limits of
 * lb_consumer_limits_set() (then it is marked lost). One small write
 * transaction; not a logged batch (consumes no batch id, not replayed).
 * @param[in] db the database (not read-only).
 * @param[in] name 1..#LB_CONSUMER_NAME_MAX letters, digits, '.', '_' or
 * '-'.
 * @param[in] batch the last batch processed: 0 (none: registers and holds
 * back every batch) up to the last batch; never below what @p name
 * acknowledged before.
 * @return 0 on success, or:
 *  - #LB_EINVAL: @p db or @p name is NULL, @p name is not a valid name,
 *    the database is read-only, @p batch is past the last batch or below
 *    the batch @p name acknowledged already;
 *  - #LB_EPRUNED: @p name is lost (lb_consumer_drop() it to start again);
 *  - #LB_ECORRUPT: its entry is damaged;
 *  - #LB_EFULL: the disk or the map is full;
 *  - #LB_EIO: writing failed, or the database must be reopened after a
 *    failed write and a snapshot prevents it;
 *  - #LB_EBUSY, #LB_EVERSION: beginning the write (see @ref errors);
 *  - #LB_ENOMEM: out of memory.
 * @par Threads: any thread but one holding an open batch of @p db: it
 * takes the writer lock, as lb_batch_begin() does.
 */
LB_API int lb_consumer_ack(lb_db *db, const char *name, uint64_t batch);

/**
 * @brief Describe consumer @p name.
 * @param[in] db the database.
 * @param[in] name the consumer.
 * @param[out] out zeroed, then filled (also when it is lost).
 * @return 0 on success, or:
 *  - #LB_ENOTFOUND: no consumer of that name;
 *  - #LB_EPRUNED: the consumer is lost: batches it had not acknowledged
 *    were pruned (@p out is filled);
 *  - #LB_EINVAL: @p db, @p name or @p out is NULL, or @p name is not a
 *    valid name;
 *  - #LB_ECORRUPT: its entry is damaged;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM,
 *    #LB_EVERSION: beginning the read (see @ref errors).
 * @par Threads: any thread; never waits for a writer.
 */
LB_API int lb_consumer_get(lb_db *db, const char *name, lb_consumer_info *out);

/**
 * @brief Forget consumer @p name: it no longer holds back lb_prune(). A
 * lost consumer is dropped the same way, and may then acknowledge again.
 * @param[in] db the database (not read-only).
 * @param[in] name the consumer.
 * @return 0 on success, or:
 *  - #LB_ENOTFOUND: no consumer of that name;
 *  - #LB_EINVAL: @p db or @p name is NULL, @p name is not a valid name,
 *    or the database is read-only;
 *  - #LB_ECORRUPT: its entry is damaged;
 *  - #LB_EFULL: the disk or the map is full;
 *  - #LB_EIO: writing failed, or the database must be reopened after a
 *    failed write and a snapshot prevents it;
 *  - #LB_EBUSY, #LB_EVERSION: beginning the write (see @ref errors);
 *  - #LB_ENOMEM: out of memory.
 * @par Threads: any thread but one holding an open batch of @p db: it
 * takes the writer lock, as lb_batch_begin() does.
 */
LB_API int lb_consumer_drop(lb_db *db, const char *name);

/** Called by lb_consumers() once per consumer; non-zero stops. */
typedef int (*lb_consumer_fn)(void *ctx, const lb_consumer_info *c);

/**
 * @brief Walk every registered consumer, in name order (lost ones too).
 * @param[in] db the database.
 * @param[in] fn called once per consumer; non-zero stops (return a
 * positive value, which cannot be taken for a code).
 * @param[in] ctx passed to @p fn.
 * @return 0 on success; the callback's non-zero value if it stopped; or:
 *  - #LB_EINVAL: @p db or @p fn is NULL;
 *  - #LB_ECORRUPT: an entry is damaged;
 *  - #LB_ENOMEM: out of memory;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM,
 *    #LB_EVERSION: beginning the read (see @ref errors).
 * @par Ownership: the info passed to @p fn is valid only during the call.
 * @par Threads: any thread; @p fn runs after the read ended: it may call
 * anything, writes included.
 */
LB_API int lb_consumers(lb_db *db, lb_consumer_fn fn, void *ctx);

/**
 * @brief Set how far behind a consumer may fall before lb_prune() may drop
 * batches it has not acknowledged (and mark it lost). Stored in the
 * database. A consumer is past the limits when the last batch is more than
 * @p max_lag batches after the one it acknowledged, or when it last
 * acknowledged more than @p max_age_s seconds ago. 0 is no limit; both 0
 * (the default): consumers always hold back lb_prune().
 * @param[in] db the database (not read-only).
 * @param[in] max_lag the most batches a consumer may lag (0: no limit).
 * @param[in] max_age_s the oldest acknowledgement, in seconds (0: no
 * limit).
 * @return 0 on success, or:
 *  - #LB_EINVAL: @p db is NULL, or the database is read-only;
 *  - #LB_EFULL: the disk or the map is full;
 *  - #LB_EIO: writing failed, or the database must be reopened after a
 *    failed write and a snapshot prevents it;
 *  - #LB_EBUSY, #LB_EVERSION: beginning the write (see @ref errors);
 *  - #LB_ENOMEM: out of memory.
 * @par Threads: any thread but one holding an open batch of @p db.
 */
LB_API int lb_consumer_limits_set(lb_db *db, uint64_t max_lag,
                                  uint64_t max_age_s);

/**
 * @brief Read the consumer limits (lb_consumer_limits_set()).
 * @param[in] db the database.
 * @param[out] max_lag the most batches a consumer may lag (0: no limit).
 * @param[out] max_age_s the oldest acknowledgement in seconds (0: none).
 * @return 0 on success, or:
 *  - #LB_EINVAL: @p db, @p max_lag or @p max_age_s is NULL;
 *  - #LB_ECORRUPT: the stored limits are damaged;
 *  - #LB_EBUSY, #LB_ECORRUPT, #LB_EFULL, #LB_EIO, #LB_ENOMEM,
 *    #LB_EVERSION: beginning the read (see @ref errors).
 * @par Threads: any thread; never waits for a writer.
 */
LB_API int lb_consumer_limits_get(lb_db *db, uint64_t *max_lag,
                                  uint64_t *max_age_s);
/** @} */
/* ==== end of the feed section ==== */

#ifdef __cplusplus
}
#endif
#endif /* LOGBOOK_H */
