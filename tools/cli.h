/* SPDX-License-Identifier: MIT */
/*
 * cli.h: shared by the files of the `logbook` command-line tool.
 *
 * The tool uses the public API (logbook.h) only. JSON input is parsed with
 * jansson and converted to msgpack with msgpack-c; JSON output is written by
 * the small writer in json.c, which renders msgpack values directly so that
 * an export can be imported back byte for byte.
 *
 * Exit codes (docs/CLI.md): 0 success, 1 the data said no, 2 usage error,
 * 3 any other error. Every error prints one line on stderr, through
 * cli_err(), naming the command and the object concerned.
 */
#ifndef LB_TOOLS_CLI_H
#define LB_TOOLS_CLI_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "logbook.h"

enum {
	CLI_OK = 0,    /* success */
	CLI_DATA = 1,  /* the data said no */
	CLI_USAGE = 2, /* usage error */
	CLI_FAIL = 3,  /* any other error */
	CLI_HELP = -1  /* internal: --help was printed, exit 0 */
};

/* ---- global state (util.c) ----------------------------------------------- */

extern const char *cli_cmd; /* command name for messages, e.g. "import" */
extern int cli_json;        /* --json given */

/* Print "logbook: CMD: message" on stderr. Returns CLI_FAIL. */
int cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, returning CLI_USAGE and pointing at --help. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the library's failure: "logbook: CMD: WHAT: strerror (errmsg)".
 * Returns the exit code for rc (cli_exit_code). */
int cli_lberr(int rc, const char *what, ...)
        __attribute__((format(printf, 2, 3)));
/* Exit code for a library return code: 1 for EVALIDATION / ECONFLICT,
 * else 3. */
int cli_exit_code(int rc);

/* ---- argument parsing (util.c) ------------------------------------------- */

typedef struct cli_opt {
	const char *name; /* long name without "--" */
	int has_arg;      /* takes a value */
	const char *val;  /* out: the value, "" for a flag, NULL if absent */
} cli_opt;

/*
 * Parse argv[1..argc-1] (argv[0] is the command word). Options may come
 * before, between or after positionals; "--opt=V" and "--opt V" both work;
 * "--" ends options; "-" is a positional. --json and --help/-h are known to
 * every command. Between min_pos and max_pos positionals are stored in
 * pos[]. Returns 0, CLI_USAGE (message printed) or CLI_HELP (help
 * printed).
 */
int cli_parse(int argc, char **argv, cli_opt *opts, size_t nopts,
              const char **pos, size_t min_pos, size_t max_pos, size_t *npos);
/* Find a parsed option by name (NULL if not in the table). */
cli_opt *cli_opt_get(cli_opt *opts, size_t nopts, const char *name);
/* The value of parsed option name: "" for a flag given, NULL if absent.
 * name must be in the table (a name that is not is a bug: it aborts), so
 * that options are picked by name, never by their place in the table. */
const char *cli_optval(const cli_opt *opts, size_t nopts, const char *name);
#define NOPTS(a) (sizeof(a) / sizeof((a)[0]))
#define CLI_OPT(o, name) cli_optval((o), NOPTS(o), (name))
/* Parse an unsigned decimal option value within [min, max]. Prints a usage
 * error naming the option and returns CLI_USAGE on failure. */
int cli_u64(const char *what, const char *s, uint64_t min, uint64_t max,
            uint64_t *out);
/* Prints a command's help (set by main.c; NULL in unit tests). */
extern void (*cli_help)(const char *cmd, FILE *f);

/* ---- growable string buffer (util.c) ------------------------------------- */

typedef struct sbuf {
	char *p;
	size_t len, cap;
} sbuf;

void sb_init(sbuf *b);
void sb_free(sbuf *b);
/* Make room for n more bytes; exits the process on out-of-memory (the tool,
 * unlike the library, may do so: there is nothing to keep consistent). */
void sb_grow(sbuf *b, size_t n);
static inline void sb_putc(sbuf *b, char c)
{
	if (b->len + 1 >= b->cap)
		sb_grow(b, 1);
	b->p[b->len++] = c;
}
static inline void sb_put(sbuf *b, const void *s, size_t n)
{
	if (n == 0) /* s may be NULL then */
		return;
	if (b->len + n >= b->cap)
		sb_grow(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}
void sb_puts(sbuf *b, const char *s);
void sb_printf(sbuf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* NUL-terminate (not counted in len) and return the text. */
const char *sb_str(sbuf *b);
/* Write and clear. */
void sb_flush(sbuf *b, FILE *f);

void *cli_xmalloc(size_t n);
void *cli_xrealloc(void *p, size_t n);
char *cli_xstrdup(const char *s);

/* ---- JSON text and values (json.c) --------------------------------------- */

int cli_utf8_valid(const void *p, size_t n);
/* The value of hex digit c (either case), or -1 (serve_req.c, which
 * links alone into its fuzz target). */
int cli_hexval(int c);
/* Base64 (RFC 4648, padded). Decode returns -1 on bad input. */
void cli_b64_encode(sbuf *out, const void *p, size_t n);
int cli_b64_decode(const char *s, size_t n, sbuf *out);

/* A JSON string with escapes; p must be valid UTF-8. */
void jw_str(sbuf *b, const void *p, size_t n);
static inline void jw_cstr(sbuf *b, const char *s)
{
	jw_str(b, s, strlen(s));
}
/* "name": (with the quotes and the colon) */
void jw_key(sbuf *b, const char *name);
void jw_u64(sbuf *b, uint64_t v);
/* v, or null when v is 0 (no batch, no line). */
static inline void jw_u64_or_null(sbuf *b, uint64_t v)
{
	if (v)
		jw_u64(b, v);
	else
		sb_puts(b, "null");
}
/* s, or null when s is NULL. */
static inline void jw_cstr_or_null(sbuf *b, const char *s)
{
	if (s)
		jw_cstr(b, s);
	else
		sb_puts(b, "null");
}
void jw_i64(sbuf *b, int64_t v);
/* Shortest text that reads back as the same double; null for NaN/Inf. */
void jw_double(sbuf *b, double v);
/* Bytes: a JSON string if valid UTF-8, else {"base64":"..."}. */
void jw_bytes(sbuf *b, const void *p, size_t n);
/* One msgpack value as JSON. Returns 0, or -1 if the bytes are not exactly
 * one well-formed msgpack value (b is then restored). */
int jw_msgpack(sbuf *b, const void *p, size_t n);
/* A stored value: msgpack->JSON for a schema table (falling back to bytes
 * if it does not decode), bytes otherwise. */
void jw_value(sbuf *b, int schema_table, const void *p, size_t n);
/* Human rendering of a key: the text itself if it is printable UTF-8
 * without spaces or quotes, else its JSON form. */
void cli_key_human(sbuf *b, const void *p, size_t n);
/* One record as an export line, {"table":..,"key":..,"value":..} and a
 * newline; SCHEMA: the table has a schema (see jw_value). */
void cli_record_line(sbuf *b, const char *table, int schema, const void *k,
                     size_t kl, const void *v, size_t vl);

/*
 * JSON -> msgpack for a schema table: object -> map, array, string, integer,
 * real -> float 64, true/false, null; an object {"base64": "..."} with that
 * one member -> bin. Returns 0, or -1 with a message in err.
 */
int cli_pack_json(msgpack_packer *pk, json_t *v, sbuf *scratch, char *err,
                  size_t errlen);
/* JSON -> stored bytes for an opaque table: a string is its UTF-8 bytes,
 * {"base64": ...} the decoded bytes, anything else its compact JSON text.
 * The bytes are left in out (cleared first). Returns 0 or -1 (err). */
int cli_opaque_json(json_t *v, sbuf *out, char *err, size_t errlen);
/* A key from JSON: a string (its bytes), an integer (decimal text), or
 * {"base64": ...}. Returns 0 or -1 (err). */
int cli_key_json(json_t *v, sbuf *out, char *err, size_t errlen);
/* Parse a JSON text (one value, any type). NULL with err on failure. */
json_t *cli_json_parse(const char *s, size_t n, char *err, size_t errlen);

/*
 * The import fast path (fastjson.c): one JSON object -> msgpack, exactly as
 * cli_json_parse() + cli_pack_json() would produce it, or -1 when it cannot
 * be sure to (any error or unusual input: take the jansson path then).
 * mem[] gets the top-level members: key bytes and value encoding, as
 * offsets into out->data.
 */
#define CLI_FJ_MEMBERS_MAX 64
typedef struct cli_fj_member {
	size_t koff, klen;
	size_t voff, vlen;
} cli_fj_member;
int cli_fast_object(const char *p, size_t n, msgpack_sbuffer *out,
                    sbuf *scratch, cli_fj_member *mem, size_t *nmem);

/* msgpack helpers (json.c): a str's payload, an integer's value. Return 0,
 * or -1 if p..p+n is not exactly that. */
int cli_mp_str(const void *p, size_t n, const char **s, size_t *len);
/* A str's or a bin's payload. */
int cli_mp_bytes(const void *p, size_t n, const char **s, size_t *len);
int cli_mp_int(const void *p, size_t n, int64_t *v);
/* The value of field name in the msgpack map p..p+n: 0 with its encoding,
 * or -1 (not a map, or no such field). */
int cli_mp_map_get(const void *p, size_t n, const char *name, const void **v,
                   size_t *vlen);

/* ---- tables and schemas (schema.c) --------------------------------------- */

/* A field and its rules (as lb_field; enum values of an int field are
 * decimal text, as the library takes them). */
typedef struct cli_field {
	char *name;
	lb_type type;
	unsigned flags; /* LB_REQUIRED, LB_NULLABLE */
	uint32_t max_len;
	char *ref;
	char **enum_values;
	size_t nenum;
	int enum_ints; /* the file gave the enum as integers */
	char *pattern;
	int format; /* LB_FMT_* */
	double min, max;
	unsigned has_min_max; /* LB_HAS_MIN | LB_HAS_MAX */
} cli_field;

typedef struct cli_table {
	char *name;
	int has_schema;
	int closed;
	char *key_field;
	cli_field *fields;
	size_t nfields;
	uint64_t records;
} cli_table;

typedef struct cli_catalog {
	cli_table *t;
	size_t n;
} cli_catalog;

/* Names starting with "logbook." are reserved for the tool's own tables
 * (logbook.runs): 1 for such a name. */
int cli_table_reserved(const char *name);
/* Load every table of db (name order), the reserved ones left out.
 * Returns 0 or an lb error code. */
int cli_catalog_load(lb_db *db, cli_catalog *c);
void cli_catalog_free(cli_catalog *c);
cli_table *cli_catalog_find(cli_catalog *c, const char *name);
/* Order the tables so that each comes after the tables it references
 * (name order otherwise). Fills idx[0..c->n-1]. */
void cli_catalog_topo(const cli_catalog *c, size_t *idx);

/* Parse a schema file: either {"tables": [{name, closed, key_field,
 * fields}, ...]} or a single table object {name?, closed, key_field,
 * fields} (its name may then be NULL). Errors are printed, naming the file.
 * Returns 0 or CLI_FAIL. */
int cli_schema_file(const char *path, cli_catalog *out);
/* An lb_schema view of a cli_table (fields array malloc'd; free it; the
 * rest points into t). */
lb_field *cli_schema_view(const cli_table *t, lb_schema *s);
/* The table in the schema file format, rules included, as cli_schema_file
 * reads it back: {"name":..,"closed":..,"key_field":..,"fields":[...]} */
void cli_table_json(sbuf *b, const cli_table *t);
/* One-line human summary of the schema. */
void cli_table_summary(sbuf *b, const cli_table *t);
const char *cli_type_name(lb_type t);

/* ---- shared helpers (util.c) --------------------------------------------- */

/* A message of the library (lb_errmsg(), an issue's message) in the
 * operator's words: the names of its C API (lb_..., LB_..., MDB_...) are
 * replaced by the command line's words or dropped. The text is valid until
 * the next call on this thread. */
const char *cli_words(const char *msg);
/* Free this thread's cli_words() text (a thread that ends calls it). */
void cli_words_release(void);
/* one for n == 1, else many: "1 record", "2 records". */
const char *cli_plural(uint64_t n, const char *one, const char *many);
/* Free text (a label) on one line: control characters, backslashes and
 * bytes that are not UTF-8 written as \n, \t, \r, \\ or \xHH. */
void cli_text_human(sbuf *b, const char *s, size_t n);

/* Open DIR, which must hold a database. rdonly selects LB_RDONLY. Prints
 * the error; returns 0 or an exit code. */
int cli_open(const char *dir, int rdonly, int nosync, lb_db **db);
/* lb_open() with those flags, after waiting while `logbook compact` has
 * DIR to itself. Returns the library's code; prints nothing. */
int cli_lb_open(const char *dir, unsigned flags, lb_db **db);
/* "2024-05-01T12:00:00.123Z" */
void cli_time(sbuf *b, int64_t ns);
/* "1.2 MiB" */
void cli_size(sbuf *b, uint64_t n);
double cli_now(void); /* monotonic seconds */
const char *cli_issue_kind(int kind);
/* An lb_change's op as the CLI and the server name it: put, delete, table
 * (or "?"). */
const char *cli_op_name(int op);
/* The start of a change record as JSON, {"op":..,"table":..,"key":..
 * (the caller adds the images and the closing brace). */
void cli_change_head(sbuf *b, const lb_change *c);
/* The distinct batches named by r's issues of kind (an lb_issue_kind),
 * in issue order, into out (room for r->nissues); their count. */
size_t cli_issue_batches(const lb_result *r, int kind, uint64_t *out);
/* A key given on the command line: its bytes, or with b64 set the bytes
 * it decodes to as base64. Returns 0 or CLI_USAGE (printed). */
int cli_key_arg(const char *arg, int b64, sbuf *out);

/* One validation issue, as JSON (an object) or as a human line (indented,
 * no newline). line 0 = not tied to an input line; batch 0 = none. */
void cli_issue_fmt(sbuf *b, uint64_t line, const char *kind, const char *table,
                   const void *key, size_t klen, const char *field,
                   const char *msg, uint64_t batch);
/* Print the issues of r (to stdout), as JSON lines or human lines. */
void cli_print_result_issues(const lb_result *r);

/* ---- the batch log (logcmd.c) -------------------------------------------- */

/* A batch written by lb_rollback_to() ("rollback to batch X"): 1, else 0. */
int cli_is_rollback_to(const lb_batch_info *bi);
/* A batch header as the JSON object of `logbook log --json`. */
void cli_batch_info_json(sbuf *b, const lb_batch_info *bi);

/* ---- commands ------------------------------------------------------------ */

int cmd_init(int argc, char **argv);
int cmd_table(int argc, char **argv);
int cmd_tables(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_put(int argc, char **argv);
int cmd_del(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_rollback_to(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_prune(int argc, char **argv);
/* replica.c: followers over NATS JetStream */
int cmd_ship(int argc, char **argv);
int cmd_follow(int argc, char **argv);
int cmd_replica(int argc, char **argv);
int cmd_promote(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_runs(int argc, char **argv);      /* runs.c */
int cmd_changes(int argc, char **argv);   /* feed.c */
int cmd_diff(int argc, char **argv);      /* feed.c */
int cmd_consumers(int argc, char **argv); /* feed.c */
/* Following the log (feed.c): SIGINT and SIGTERM end a follow; wait for
 * a batch after `after`: 0 (and *last), 1 when a signal came, or an lb
 * error code. */
void cli_follow_signals(void);
int cli_follow_stopped(void);
int cli_follow_wait(lb_db *db, uint64_t after, uint64_t *last);
/* Print table t as it was right after batch n, as export does: the
 * current records corrected by lb_diff. Returns an exit code. */
int cli_export_asof(lb_db *db, const cli_table *t, uint64_t n);
int cmd_rollback_run(int argc, char **argv); /* rollback --run, runs.c */
int cmd_serve(int argc, char **argv);        /* serve.c */

#endif
