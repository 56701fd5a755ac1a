/* SPDX-License-Identifier: MIT */
/*
 * util.c: error reporting, option parsing, buffers and small formatting
 * helpers shared by the commands.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *cli_cmd;
int cli_json;
void (*cli_help)(const char *cmd, FILE *f);

/* ---- errors -------------------------------------------------------------- */

static void verr(const char *fmt, va_list ap)
{
	fflush(stdout);
	fputs("logbook: ", stderr);
	if (cli_cmd)
		fprintf(stderr, "%s: ", cli_cmd);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int cli_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verr(fmt, ap);
	va_end(ap);
	return CLI_FAIL;
}

int cli_usage(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fflush(stdout);
	fprintf(stderr, "logbook: %s%s%s (see 'logbook %s%s--help')\n",
	        cli_cmd ? cli_cmd : "", cli_cmd ? ": " : "", msg,
	        cli_cmd ? cli_cmd : "", cli_cmd ? " " : "");
	return CLI_USAGE;
}

int cli_exit_code(int rc)
{
	if (rc == LB_EVALIDATION || rc == LB_ECONFLICT)
		return CLI_DATA;
	return rc == 0 ? CLI_OK : CLI_FAIL;
}

int cli_lberr(int rc, const char *what, ...)
{
	char msg[1024];
	const char *detail = lb_errmsg();
	va_list ap;
	va_start(ap, what);
	vsnprintf(msg, sizeof msg, what, ap);
	va_end(ap);
	if (detail && *detail)
		cli_err("%s: %s (%s)", msg, lb_strerror(rc), cli_words(detail));
	else
		cli_err("%s: %s", msg, lb_strerror(rc));
	return cli_exit_code(rc);
}

/* ---- the operator's words ------------------------------------------------ */

const char *cli_plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* Fixed phrases of the library's messages that name its C API, and what
 * the command line calls them. Checked in order, before the general rules
 * of cli_words(). */
static const struct {
	const char *from, *to;
} phrases[] = {
        /* said where a directory holds no database: a checkpoint, or
         * DIR (which cli_open() reports in its own words) */
        {" (use LB_CREATE to make one)", ""},
        {"NULL or empty", "empty"},
        {"is NULL", "is missing"},
        {"(see lb_checkpoint)", "(take one with 'logbook checkpoint')"},
        {"LB_CASCADE | LB_FORCE", "--cascade with --force"},
        {"LB_CASCADE", "--cascade"},
        {"LB_FORCE", "--force"},
        {"LB_DRYRUN", "--dry-run"},
        {"LB_NOSYNC", "--nosync"},
        {"LB_RDONLY", "read-only"},
        {"LB_CREATE", "create"},
        {"RLIMIT_FSIZE, ulimit -f", "ulimit -f"},
        {"RLIMIT_FSIZE", "ulimit -f"},
        {"rollback_to: ", "rollback-to: "},
};

static int ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_';
}

/* Names of the C API that begin a message ("lb_open: ...", LMDB's
 * "MDB_CORRUPTED: ..."): dropped with their ": ". Only these: a table may
 * be called lb_x, and its name begins issue messages. */
static const char *const callers[] = {"lb_open",
                                      "lb_close",
                                      "lb_table_create",
                                      "lb_tables",
                                      "lb_get",
                                      "lb_snapshot_open",
                                      "lb_snapshot_get",
                                      "lb_cursor_open",
                                      "lb_cursor_seek",
                                      "lb_cursor_next",
                                      "lb_batch_begin",
                                      "lb_put",
                                      "lb_insert",
                                      "lb_update",
                                      "lb_delete",
                                      "lb_batch_get",
                                      "lb_batch_commit",
                                      "lb_last_batch",
                                      "lb_batch_info_get",
                                      "lb_changes",
                                      "lb_history",
                                      "lb_rollback",
                                      "lb_rollback_to",
                                      "lb_checkpoint",
                                      "lb_replay",
                                      "lb_verify",
                                      "lb_checkpoints",
                                      "lb_prune",
                                      "MDB_KEYEXIST",
                                      "MDB_NOTFOUND",
                                      "MDB_PAGE_NOTFOUND",
                                      "MDB_CORRUPTED",
                                      "MDB_PANIC",
                                      "MDB_VERSION_MISMATCH",
                                      "MDB_INVALID",
                                      "MDB_MAP_FULL",
                                      "MDB_DBS_FULL",
                                      "MDB_READERS_FULL",
                                      "MDB_TLS_FULL",
                                      "MDB_TXN_FULL",
                                      "MDB_CURSOR_FULL",
                                      "MDB_PAGE_FULL",
                                      "MDB_MAP_RESIZED",
                                      "MDB_INCOMPATIBLE",
                                      "MDB_BAD_RSLOT",
                                      "MDB_BAD_TXN",
                                      "MDB_BAD_VALSIZE",
                                      "MDB_BAD_DBI"};

/* Return codes named in a message: their descriptions. */
static const struct {
	const char *name;
	int rc;
} codes[] = {{"LB_ENOTFOUND", LB_ENOTFOUND},
             {"LB_EINVAL", LB_EINVAL},
             {"LB_EVALIDATION", LB_EVALIDATION},
             {"LB_ECONFLICT", LB_ECONFLICT},
             {"LB_ECORRUPT", LB_ECORRUPT},
             {"LB_EPRUNED", LB_EPRUNED},
             {"LB_EFULL", LB_EFULL},
             {"LB_EBUSY", LB_EBUSY},
             {"LB_ENOMEM", LB_ENOMEM},
             {"LB_EIO", LB_EIO},
             {"LB_EVERSION", LB_EVERSION},
             {"LB_ETOOBIG", LB_ETOOBIG},
             {"LB_EEXIST", LB_EEXIST}};

/* The length of the identifier at s if it is exactly name, else 0. */
static size_t is_name(const char *s, const char *name)
{
	size_t l = strlen(name);
	return !strncmp(s, name, l) && !ident_char(s[l]) ? l : 0;
}

/* At s, a plural " WORDs" (after a "1"): the length of the plural, with
 * *keep the length of its singular " WORD", which is a prefix of it; or
 * 0. */
static size_t singular(const char *s, size_t *keep)
{
	static const struct {
		const char *many;
		size_t one;
	} words[] = {{" records", 7}, {" batches", 6},    {" issues", 6},
	             {" keys", 4},    {" conflicts", 9},  {" segments", 8},
	             {" tables", 6},  {" changes", 7},    {" fields", 6},
	             {" bytes", 5},   {" references", 10}};
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
		size_t l = is_name(s, words[i].many);
		if (l) {
			*keep = words[i].one;
			return l;
		}
	}
	return 0;
}

/* cli_words()'s buffer, one per thread */
static _Thread_local sbuf words_buf;

void cli_words_release(void)
{
	sb_free(&words_buf);
}

const char *cli_words(const char *msg)
{
	/* kept between calls (still reachable at exit) */
	sbuf *b = &words_buf;
	const char *s = msg ? msg : "";
	b->len = 0;
	while (*s) {
		size_t i, n = 0, keep;
		int word = s == msg || !ident_char(s[-1]);
		for (i = 0; i < sizeof phrases / sizeof phrases[0]; i++) {
			n = strlen(phrases[i].from);
			if (!strncmp(s, phrases[i].from, n))
				break;
		}
		if (i < sizeof phrases / sizeof phrases[0]) {
			sb_puts(b, phrases[i].to);
			s += n;
			continue;
		}
		for (i = 0, n = 0;
		     word && !n && i < sizeof callers / sizeof callers[0]; i++)
			n = is_name(s, callers[i]);
		if (n && s[n] == ':' && s[n + 1] == ' ') {
			/* the name of the call or of LMDB's code: the words
			 * that follow are what matters */
			s += n + 2;
			continue;
		}
		for (i = 0, n = 0;
		     word && !n && i < sizeof codes / sizeof codes[0]; i++)
			if ((n = is_name(s, codes[i].name)) != 0)
				sb_puts(b, lb_strerror(codes[i].rc));
		if (n) {
			s += n;
			continue;
		}
		if (*s == '1' &&
		    (s == msg || (!ident_char(s[-1]) && s[-1] != '.')) &&
		    (n = singular(s + 1, &keep)) != 0) {
			/* "1 records" -> "1 record" */
			sb_put(b, s, keep + 1);
			s += n + 1;
			continue;
		}
		sb_putc(b, *s++);
	}
	return sb_str(b);
}

void cli_text_human(sbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t len = 1;
		if (c >= 0x80) {
			/* a whole UTF-8 sequence, if it is one */
			len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
			if (len && i + len <= n && cli_utf8_valid(s + i, len)) {
				sb_put(b, s + i, len);
				i += len;
				continue;
			}
			len = 1;
		} else if (c >= 0x20 && c != 0x7f && c != '\\') {
			sb_putc(b, (char)c);
			i++;
			continue;
		}
		sb_putc(b, '\\');
		switch (c) {
		case '\n':
			sb_putc(b, 'n');
			break;
		case '\t':
			sb_putc(b, 't');
			break;
		case '\r':
			sb_putc(b, 'r');
			break;
		case '\\':
			sb_putc(b, '\\');
			break;
		default:
			sb_putc(b, 'x');
			sb_putc(b, hex[c >> 4]);
			sb_putc(b, hex[c & 15]);
		}
		i += len;
	}
}

/* ---- memory -------------------------------------------------------------- */

static void oom(void)
{
	fputs("logbook: out of memory\n", stderr);
	exit(CLI_FAIL);
}

void *cli_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *cli_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *cli_xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		oom();
	return p;
}

void sb_init(sbuf *b)
{
	b->p = NULL;
	b->len = b->cap = 0;
}

void sb_free(sbuf *b)
{
	free(b->p);
	sb_init(b);
}

void sb_grow(sbuf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 256;
	/* +1 keeps room for the NUL of sb_str(). */
	while (cap < b->len + n + 1) {
		if (cap > SIZE_MAX / 2)
			oom();
		cap *= 2;
	}
	if (cap != b->cap) {
		b->p = cli_xrealloc(b->p, cap);
		b->cap = cap;
	}
}

void sb_puts(sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

void sb_printf(sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0,
	              fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (!b->p || (size_t)n >= b->cap - b->len) {
		sb_grow(b, (size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

const char *sb_str(sbuf *b)
{
	sb_grow(b, 1);
	b->p[b->len] = '\0';
	return b->p;
}

void sb_flush(sbuf *b, FILE *f)
{
	if (b->len)
		fwrite(b->p, 1, b->len, f);
	b->len = 0;
}

/* ---- options ------------------------------------------------------------- */

cli_opt *cli_opt_get(cli_opt *opts, size_t nopts, const char *name)
{
	for (size_t i = 0; i < nopts; i++)
		if (!strcmp(opts[i].name, name))
			return &opts[i];
	return NULL;
}

/* getopt_long's values: --help is 'h' (also -h), --json GETOPT_JSON, the
 * table's options GETOPT_BASE + their index. */
enum { GETOPT_JSON = 0x100, GETOPT_BASE = 0x101 };

/* The name written in option argument a ("--name" or "--name=value"),
 * copied into name (cap bytes); 0 if it does not fit. */
static int written_name(const char *a, char *name, size_t cap)
{
	size_t len = strcspn(a + 2, "=");
	if (len >= cap)
		return 0;
	memcpy(name, a + 2, len);
	name[len] = '\0';
	return 1;
}

/* What getopt_long could not take in argv[at]: an unknown option, a
 * missing value (c == ':') or a value given to a flag. */
static int parse_error(int c, const char *a, const struct option *lo)
{
	char name[64];
	if (a[1] != '-')
		return cli_usage("unknown option '%s'", a);
	if (!written_name(a, name, sizeof name))
		return cli_usage("unknown option '--%.40s...'", a + 2);
	if (c == ':')
		return cli_usage("option '--%s' needs a value", name);
	for (; optopt && lo->name; lo++)
		if (lo->val == optopt && !strcmp(lo->name, name))
			return cli_usage("option '--%s' takes no value", name);
	return cli_usage("unknown option '--%s'", name);
}

/*
 * getopt_long in its in-order mode ("-" first: a positional comes back as
 * 1, in place, so options and positionals may mix; "--" stops it, leaving
 * the rest to the caller). Its errors are reported here, in the CLI's
 * words (":" after "-": a missing value is ':'). An abbreviated long name,
 * which getopt_long accepts, is refused as unknown: a script must name the
 * option, so that a later one cannot make its abbreviation ambiguous.
 */
static int parse_opts(int argc, char **argv, cli_opt *opts,
                      const struct option *lo, const char **pos, size_t max_pos,
                      size_t *npos)
{
	char name[64];
	size_t n = 0;
	int c, idx, at;

	optind = 0; /* glibc: start afresh (a process may parse twice) */
	opterr = 0;
	for (;;) {
		at = optind ? optind : 1;
		idx = -1;
		c = getopt_long(argc, argv, "-:h", lo, &idx);
		if (c == -1)
			break;
		if (c == '?' || c == ':')
			return parse_error(c, argv[at], lo);
		if (idx >= 0 && (!written_name(argv[at], name, sizeof name) ||
		                 strcmp(name, lo[idx].name) != 0))
			return parse_error('?', argv[at], lo);
		if (c == 1) {
			if (n >= max_pos)
				return cli_usage("unexpected argument '%s'",
				                 optarg);
			pos[n++] = optarg;
		} else if (c == 'h') {
			if (strcmp(argv[at], "-h") && idx < 0)
				return cli_usage("unknown option '%s'",
				                 argv[at]);
			if (cli_help)
				cli_help(cli_cmd, stdout);
			return CLI_HELP;
		} else if (c == GETOPT_JSON) {
			cli_json = 1;
		} else {
			cli_opt *o = &opts[c - GETOPT_BASE];
			o->val = o->has_arg ? optarg : "";
		}
	}
	for (; optind < argc; optind++) { /* after "--" */
		if (n >= max_pos)
			return cli_usage("unexpected argument '%s'",
			                 argv[optind]);
		pos[n++] = argv[optind];
	}
	*npos = n;
	return 0;
}

int cli_parse(int argc, char **argv, cli_opt *opts, size_t nopts,
              const char **pos, size_t min_pos, size_t max_pos, size_t *npos)
{
	struct option *lo = cli_xmalloc((nopts + 3) * sizeof *lo);
	size_t n = 0;
	int rc;

	lo[0] = (struct option){"help", no_argument, NULL, 'h'};
	lo[1] = (struct option){"json", no_argument, NULL, GETOPT_JSON};
	for (size_t i = 0; i < nopts; i++) {
		opts[i].val = NULL;
		lo[i + 2] = (struct option){opts[i].name,
		                            opts[i].has_arg ? required_argument
		                                            : no_argument,
		                            NULL, GETOPT_BASE + (int)i};
	}
	lo[nopts + 2] = (struct option){NULL, 0, NULL, 0};
	rc = parse_opts(argc, argv, opts, lo, pos, max_pos, &n);
	free(lo);
	if (rc != 0)
		return rc;
	if (n < min_pos)
		return cli_usage("missing arguments");
	*npos = n;
	return 0;
}

const char *cli_optval(const cli_opt *opts, size_t nopts, const char *name)
{
	for (size_t i = 0; i < nopts; i++)
		if (!strcmp(opts[i].name, name))
			return opts[i].val;
	fprintf(stderr, "logbook: internal error: no option '--%s'\n", name);
	abort();
}

int cli_u64(const char *what, const char *s, uint64_t min, uint64_t max,
            uint64_t *out)
{
	char *end;
	unsigned long long v;
	if (!s || !*s || *s < '0' || *s > '9')
		return cli_usage("%s: '%s' is not a number", what, s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return cli_usage("%s: '%s' is not a number", what, s);
	if (v < min || v > max)
		return cli_usage("%s: %s is out of range (%" PRIu64 "..%" PRIu64
		                 ")",
		                 what, s, min, max);
	*out = v;
	return 0;
}

/* ---- shared helpers ------------------------------------------------------ */

/*
 * Wait while `logbook compact` has DIR to itself, then lb_open().
 *
 * Every process with an LMDB environment open holds a shared fcntl() lock
 * on the first byte of its lock.mdb; compact holds it exclusively, and a
 * process opening the database waits in LMDB for it. But LMDB opens a
 * read-only environment's data file before it takes that lock, so a
 * reader starting while compact runs would get the file compact is about
 * to replace. So the tool takes the shared lock itself first, and waits
 * there. The descriptor stays open: closing it would drop every lock the
 * process holds on lock.mdb, LMDB's included; lb_close() drops them all.
 */
int cli_lb_open(const char *dir, unsigned flags, lb_db **db)
{
	lb_options o;
	char *path;
	if (asprintf(&path, "%s/lock.mdb", dir) > 0) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			struct flock fl;
			memset(&fl, 0, sizeof fl);
			fl.l_type = F_RDLCK;
			fl.l_whence = SEEK_SET;
			fl.l_start = 0;
			fl.l_len = 1;
			while (fcntl(fd, F_SETLKW, &fl) != 0 && errno == EINTR)
				;
		}
		free(path);
	}
	lb_options_init(&o);
	o.flags = flags;
	return lb_open(dir, &o, db);
}

int cli_open(const char *dir, int rdonly, int nosync, lb_db **db)
{
	int rc;
	rc = cli_lb_open(
	        dir, (rdonly ? LB_RDONLY : 0) | (nosync ? LB_NOSYNC : 0), db);
	if (rc == LB_ENOTFOUND)
		return cli_err("%s: no logbook database there", dir);
	if (rc < 0) {
		cli_lberr(rc, "cannot open %s", dir);
		return CLI_FAIL;
	}
	return 0;
}

void cli_time(sbuf *b, int64_t ns)
{
	time_t s = (time_t)(ns / 1000000000);
	long ms = (long)((ns % 1000000000) / 1000000);
	struct tm tm;
	char t[64];
	if (ns < 0) {
		s = (time_t)((ns - 999999999) / 1000000000);
		ms = (long)(((ns % 1000000000) + 1000000000) % 1000000000 /
		            1000000);
	}
	if (!gmtime_r(&s, &tm)) {
		sb_printf(b, "%" PRId64 "ns", ns);
		return;
	}
	strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
	sb_printf(b, "%s.%03ldZ", t, ms);
}

void cli_size(sbuf *b, uint64_t n)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = 0;
	if (n < 1024) {
		sb_printf(b, "%" PRIu64 " B", n);
		return;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	sb_printf(b, "%.1f %s", v, unit[u]);
}

double cli_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

size_t cli_issue_batches(const lb_result *r, int kind, uint64_t *out)
{
	size_t n = 0;
	for (size_t i = 0; i < r->nissues; i++) {
		uint64_t id = r->issues[i].batch;
		size_t j;
		if ((int)r->issues[i].kind != kind || !id)
			continue;
		for (j = 0; j < n && out[j] != id; j++)
			;
		if (j == n)
			out[n++] = id;
	}
	return n;
}

const char *cli_op_name(int op)
{
	return op == LB_OP_PUT      ? "put"
	       : op == LB_OP_DELETE ? "delete"
	       : op == LB_OP_TABLE  ? "table"
	                            : "?";
}

void cli_change_head(sbuf *b, const lb_change *c)
{
	sb_puts(b, "{\"op\":");
	jw_cstr(b, cli_op_name(c->op));
	sb_puts(b, ",\"table\":");
	jw_cstr(b, c->table);
	sb_puts(b, ",\"key\":");
	jw_bytes(b, c->key, c->klen);
}

const char *cli_issue_kind(int kind)
{
	switch (kind) {
	case LB_ISSUE_FORMAT:
		return "format";
	case LB_ISSUE_DUPLICATE:
		return "duplicate";
	case LB_ISSUE_MISSING:
		return "missing";
	case LB_ISSUE_FOREIGN_KEY:
		return "foreign_key";
	case LB_ISSUE_CONFLICT:
		return "conflict";
	default:
		return "unknown";
	}
}

int cli_key_arg(const char *arg, int b64, sbuf *out)
{
	out->len = 0;
	if (b64) {
		if (cli_b64_decode(arg, strlen(arg), out) < 0)
			return cli_usage("key '%s' is not valid base64", arg);
	} else {
		sb_puts(out, arg);
	}
	if (out->len == 0)
		return cli_usage("the key is empty");
	if (out->len > LB_KEY_MAX)
		return cli_usage("the key is longer than %d bytes", LB_KEY_MAX);
	return 0;
}

void cli_issue_fmt(sbuf *b, uint64_t line, const char *kind, const char *table,
                   const void *key, size_t klen, const char *field,
                   const char *msg, uint64_t batch)
{
	if (cli_json) {
		sb_puts(b, "{\"line\":");
		jw_u64_or_null(b, line);
		sb_puts(b, ",\"kind\":");
		jw_cstr(b, kind);
		sb_puts(b, ",\"table\":");
		jw_cstr_or_null(b, table);
		sb_puts(b, ",\"key\":");
		if (key && klen)
			jw_bytes(b, key, klen);
		else
			sb_puts(b, "null");
		sb_puts(b, ",\"field\":");
		jw_cstr_or_null(b, field);
		sb_puts(b, ",\"message\":");
		jw_cstr(b, cli_words(msg));
		if (batch) {
			sb_puts(b, ",\"batch\":");
			jw_u64(b, batch);
		}
		sb_putc(b, '}');
		return;
	}
	sb_puts(b, "  ");
	if (line)
		sb_printf(b, "line %" PRIu64 ": ", line);
	sb_puts(b, kind);
	if (table)
		sb_printf(b, " %s", table);
	if (key && klen) {
		sb_putc(b, ' ');
		cli_key_human(b, key, klen);
	}
	if (field)
		sb_printf(b, " field %s", field);
	if (msg && *msg)
		sb_printf(b, ": %s", cli_words(msg));
	if (batch)
		sb_printf(b, " (batch %" PRIu64 ")", batch);
}

void cli_print_result_issues(const lb_result *r)
{
	sbuf b;
	sb_init(&b);
	for (size_t i = 0; i < r->nissues; i++) {
		const lb_issue *is = &r->issues[i];
		cli_issue_fmt(&b, 0, cli_issue_kind(is->kind), is->table,
		              is->key, is->klen, is->field, is->message,
		              is->batch);
		sb_putc(&b, '\n');
		sb_flush(&b, stdout);
	}
	if (r->nissues_total > r->nissues && !cli_json)
		printf("  ... and %zu more %s\n", r->nissues_total - r->nissues,
		       cli_plural(r->nissues_total - r->nissues, "issue",
		                  "issues"));
	sb_free(&b);
}
