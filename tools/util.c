/* SPDX-License-Identifier: MIT */
/*
 * util.c: error reporting, option parsing, buffers and small formatting
 * helpers shared by the commands.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
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
		cli_err("%s: %s (%s)", msg, lb_strerror(rc), detail);
	else
		cli_err("%s: %s", msg, lb_strerror(rc));
	return cli_exit_code(rc);
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

int cli_parse(int argc, char **argv, cli_opt *opts, size_t nopts,
              const char **pos, size_t min_pos, size_t max_pos, size_t *npos)
{
	size_t n = 0;
	int only_pos = 0;

	for (size_t i = 0; i < nopts; i++)
		opts[i].val = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!only_pos && !strcmp(a, "--")) {
			only_pos = 1;
			continue;
		}
		if (!only_pos && a[0] == '-' && a[1] != '\0') {
			char name[64];
			const char *eq, *val = NULL;
			size_t len;
			cli_opt *o;
			if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
				if (cli_help)
					cli_help(cli_cmd, stdout);
				return CLI_HELP;
			}
			if (a[1] != '-')
				return cli_usage("unknown option '%s'", a);
			a += 2;
			eq = strchr(a, '=');
			len = eq ? (size_t)(eq - a) : strlen(a);
			if (len >= sizeof name)
				return cli_usage("unknown option '--%.40s...'",
				                 a);
			memcpy(name, a, len);
			name[len] = '\0';
			if (!strcmp(name, "json")) {
				if (eq)
					return cli_usage("option '--json' "
					                 "takes no value");
				cli_json = 1;
				continue;
			}
			o = cli_opt_get(opts, nopts, name);
			if (!o)
				return cli_usage("unknown option '--%s'", name);
			if (o->has_arg) {
				if (eq)
					val = eq + 1;
				else if (i + 1 < argc)
					val = argv[++i];
				else
					return cli_usage(
					        "option '--%s' needs a value",
					        name);
			} else {
				if (eq)
					return cli_usage(
					        "option '--%s' takes no value",
					        name);
				val = "";
			}
			o->val = val;
			continue;
		}
		if (n >= max_pos)
			return cli_usage("unexpected argument '%s'", a);
		pos[n++] = a;
	}
	if (n < min_pos)
		return cli_usage("missing arguments");
	*npos = n;
	return 0;
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

int cli_open(const char *dir, int rdonly, int nosync, lb_db **db)
{
	lb_options o;
	int rc;
	lb_options_init(&o);
	o.flags = (rdonly ? LB_RDONLY : 0) | (nosync ? LB_NOSYNC : 0);
	rc = lb_open(dir, &o, db);
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
		if (line)
			jw_u64(b, line);
		else
			sb_puts(b, "null");
		sb_puts(b, ",\"kind\":");
		jw_cstr(b, kind);
		sb_puts(b, ",\"table\":");
		if (table)
			jw_cstr(b, table);
		else
			sb_puts(b, "null");
		sb_puts(b, ",\"key\":");
		if (key && klen)
			jw_bytes(b, key, klen);
		else
			sb_puts(b, "null");
		sb_puts(b, ",\"field\":");
		if (field)
			jw_cstr(b, field);
		else
			sb_puts(b, "null");
		sb_puts(b, ",\"message\":");
		jw_cstr(b, msg ? msg : "");
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
		sb_printf(b, ": %s", msg);
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
		printf("  ... and %zu more issues\n",
		       r->nissues_total - r->nissues);
	sb_free(&b);
}
