/* SPDX-License-Identifier: MIT */
/*
 * schema.c: table schemas <-> bytes (FORMAT.md §6), and the rules of a
 * field that need more than a comparison: patterns and date formats.
 *
 * The encoding is the after-image of a TABLE record and the value of
 * `_meta` schema/<name>, so encode() is the one place that decides what a
 * valid schema is: it refuses anything decode() would refuse. Whether a ref
 * names an existing table is not a codec question; the engine checks it.
 *
 * Like change records (§4), a schema is read accepting every msgpack width;
 * it is rejected, never partly used, when anything is out of place.
 *
 * Patterns are compiled when a schema is decoded (when its table is
 * loaded), once, as ^(pattern)$ with REG_EXTENDED | REG_NOSUB, and in the
 * C locale whatever the process's locale, so that a value is judged the
 * same by every program. Before regcomp() sees a pattern, scan_pattern()
 * makes sure the wrapping cannot change its meaning (no unmatched
 * parenthesis), that it is portable POSIX (no escaped letters or digits:
 * back-references, \w...) and that the copies its {m,n} bounds make stay
 * small, so that no stored schema can make loading a table slow.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wal/wal.h"

/* ---- table names ----------------------------------------------------------
 */

/* [A-Za-z0-9_.-], as a table: names are checked in every record read
 * (wal/segment.c) and every schema that names a table. */
static const uint8_t name_chars[256] = {
        ['-'] = 1, ['.'] = 1, ['_'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1,
        ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,
        ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,
        ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,
        ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1,
        ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1,
        ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,
        ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
        ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1,
        ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
        ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

int lb__table_name_ok(const char *s, size_t len)
{
	size_t i;

	if (!s || len < 1 || len > LB_TABLE_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!name_chars[(uint8_t)s[i]])
			return 0;
	return 1;
}

/* Length of the C string s, or max + 1 if it is longer than max. */
static size_t bounded_len(const char *s, size_t max)
{
	size_t n = 0;

	while (n <= max && s[n])
		n++;
	return n;
}

/* Is [name, name + len) a valid field name? NULL if so, else why not. */
static const char *name_problem(const char *name, size_t len)
{
	if (len < 1)
		return "empty name";
	if (len > 255)
		return "name is over 255 bytes";
	if (memchr(name, 0, len))
		return "name holds a NUL byte";
	if (lb__utf8_count((const uint8_t *)name, len, NULL) != 0)
		return "name is not valid UTF-8";
	return NULL;
}

static int enum_type_ok(lb_type t)
{
	return t == LB_STR || t == LB_INT;
}

static int key_type_ok(lb_type t)
{
	return t == LB_ANY || t == LB_STR || t == LB_BIN || t == LB_INT;
}

/* ---- int enum values as text --------------------------------------------- */

/* Parse the canonical decimal text of an int64 ("-3", "0", "42": no '+',
 * no leading zeros, no "-0"). 0, or -1. */
static int canon_int(const char *s, size_t len, int64_t *out)
{
	size_t i = 0;
	int neg = 0;
	uint64_t v = 0, lim;

	if (len && s[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i == len || len - i > 19)
		return -1;
	if (s[i] == '0' && (len - i > 1 || neg))
		return -1;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (lim - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v)
	           : (int64_t)v;
	return 0;
}

/* ---- enum ordering ------------------------------------------------------- */

typedef struct ekey {
	const char *s; /* str values: bytes */
	uint32_t len;
	int64_t v; /* int values */
	uint32_t idx;
} ekey;

static int ekey_cmp(const void *a, const void *b)
{
	const ekey *x = a, *y = b;
	int c;

	if (x->v != y->v)
		return x->v < y->v ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	c = x->len ? memcmp(x->s, y->s, x->len) : 0;
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sort k[0..n) and store the order in order (may be NULL). Returns -1, or
 * the index (in the input) of the second of two equal values. */
static long ekey_sort(ekey *k, uint32_t n, uint32_t *order)
{
	uint32_t i;

	qsort(k, n, sizeof *k, ekey_cmp);
	for (i = 0; i < n; i++) {
		if (i && k[i].v == k[i - 1].v && k[i].len == k[i - 1].len &&
		    (!k[i].len || !memcmp(k[i].s, k[i - 1].s, k[i].len)))
			return (long)k[i].idx;
		if (order)
			order[i] = k[i].idx;
	}
	return -1;
}

/* ---- patterns ------------------------------------------------------------ */

/* The C locale, for regcomp() and regexec(): patterns mean the same in
 * every program, whatever locale it set. */
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_init(void)
{
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t enter_c_locale(void)
{
	pthread_once(&c_locale_once, c_locale_init);
	return c_locale ? uselocale(c_locale) : (locale_t)0;
}

static void leave_c_locale(locale_t old)
{
	if (old)
		uselocale(old);
}

/* End (index after ']') of the bracket expression opening at p[i] == '[',
 * or 0 if it does not close. POSIX: a ']' first (after an optional '^')
 * is a member; "[:", "[." and "[=" open a class, collating element or
 * equivalence class that ends at ":]", ".]" or "=]"; a backslash is an
 * ordinary member. */
static size_t bracket_end(const char *p, size_t len, size_t i)
{
	size_t j = i + 1, q;

	if (j < len && p[j] == '^')
		j++;
	if (j < len && p[j] == ']')
		j++;
	while (j < len) {
		if (p[j] == '[' && j + 1 < len &&
		    (p[j + 1] == ':' || p[j + 1] == '.' || p[j + 1] == '=')) {
			char k = p[j + 1];
			for (q = j + 2; q + 1 < len; q++)
				if (p[q] == k && p[q + 1] == ']')
					break;
			if (q + 1 >= len)
				return 0;
			j = q + 2;
			continue;
		}
		if (p[j] == ']')
			return j + 1;
		j++;
	}
	return 0;
}

/* A bound "{m}", "{m,}" or "{m,n}" (or "{,n}", a GNU form) at p[i] == '{':
 * 1 with the index after it, m and n (UINT64_MAX for "{m,}"), or 0 if it
 * is no bound (regcomp() then decides what the brace is). Counts are read
 * up to 100000 (anything larger is refused anyway). */
static int bound_at(const char *p, size_t len, size_t i, size_t *end,
                    uint64_t *m, uint64_t *n)
{
	int has_m = 0, has_n = 0, comma = 0;
	size_t j = i + 1;

	*m = *n = 0;
	for (; j < len && p[j] >= '0' && p[j] <= '9'; j++, has_m = 1)
		*m = *m < 100000 ? *m * 10 + (uint64_t)(p[j] - '0') : *m;
	if (j < len && p[j] == ',') {
		comma = 1;
		for (j++; j < len && p[j] >= '0' && p[j] <= '9'; j++, has_n = 1)
			*n = *n < 100000 ? *n * 10 + (uint64_t)(p[j] - '0')
			                 : *n;
	}
	if ((!has_m && !comma) || j >= len || p[j] != '}')
		return 0;
	*end = j + 1;
	if (!comma)
		*n = *m;
	else if (!has_n)
		*n = UINT64_MAX;
	return 1;
}

enum { PAT_NONE, PAT_ELEM, PAT_REPEAT };

/* One nesting level of scan_pattern(): the group being read. */
struct pat_frame {
	uint64_t total, last; /* expansion: all, the last element */
	int alt_empty;        /* the alternative so far matches "" */
	int group_empty;      /* an earlier alternative matches "" */
	int before_empty;     /* alt_empty before the last element */
	int last_empty;       /* the last element matches "" */
	int last_kind;        /* PAT_NONE, PAT_ELEM or PAT_REPEAT */
};

/* Clamp f's counts and refuse a pattern that expands too much. */
static const char *pat_check(struct pat_frame *f)
{
	const uint64_t cap = LB__PATTERN_EXPANSION_MAX + 1;

	if (f->total > cap)
		f->total = cap;
	if (f->last > cap)
		f->last = cap;
	if (f->total >= cap)
		return "pattern repeats too much (its repetitions "
		       "would expand to over 4096 items)";
	return NULL;
}

/* Count an element that expands to g items and matches "" if empty. */
static const char *pat_element(struct pat_frame *f, uint64_t g, int empty)
{
	f->before_empty = f->alt_empty;
	f->alt_empty = f->alt_empty && empty;
	f->last_empty = empty;
	f->last_kind = PAT_ELEM;
	f->total += g;
	f->last = g;
	return pat_check(f);
}

/* Apply a repetition {m,n} (n UINT64_MAX: no upper bound) to f's last
 * element. */
static const char *pat_repeat(struct pat_frame *f, uint64_t m, uint64_t n)
{
	uint64_t copies;

	if (f->last_kind == PAT_REPEAT)
		return "two repetition operators in a row (like ** "
		       "or +?): POSIX leaves them undefined";
	if (f->last_kind == PAT_NONE)
		return NULL; /* regcomp() refuses it, or reads a char */
	if (f->last_empty && m != n)
		return "a repetition that may skip or repeat "
		       "something that can match the empty string "
		       "(like (a*)* or (a?)+): make the inner part "
		       "non-empty";
	copies = n == UINT64_MAX ? (m > 1 ? m + 1 : 2) : n;
	if (copies < 2 && m != n)
		copies = 2;
	if (m == n && copies == 0)
		copies = 1;
	f->total += f->last * copies - f->last;
	f->last *= copies;
	f->last_empty = f->last_empty || m == 0;
	f->alt_empty = f->before_empty && f->last_empty;
	f->last_kind = PAT_REPEAT;
	return pat_check(f);
}

/*
 * Is [p, p + len) a pattern this library takes (beyond regcomp()'s own
 * checks)? NULL if so, else why not. Besides the syntax that matters to
 * the ^(...)$ wrapping (brackets, escapes, parentheses), it refuses what
 * makes glibc's regcomp() slow, found by fuzzing (seconds to minutes for
 * a 30-byte pattern), all of it undefined or pointless in POSIX:
 *  - two repetition operators in a row ("a**", "a+?", "a*{2}");
 *  - a repetition that may skip or repeat something that can match the
 *    empty string ("(a*)*", "(a?)+", "((a*)?){9}", "(a*){1,2}"); an exact
 *    count ("(a*){3}") is fine;
 *  - counts over 255, and an expansion over LB__PATTERN_EXPANSION_MAX
 *    items: one per atom, a group counts what it holds, alternatives add
 *    up and a repetition multiplies what it applies to by the copies
 *    regcomp() makes of it (n for {m,n}, m + 1 for {m,}, 2 for * + ?).
 */
static const char *scan_pattern(const char *p, size_t len)
{
	struct pat_frame st[LB_SCHEMA_TEXT_MAX / 2 + 2], *f;
	size_t i = 0, d = 0, end;
	uint64_t m, n, g;
	const char *err;
	int empty;

	if (len < 1)
		return "empty pattern";
	if (len > LB_SCHEMA_TEXT_MAX)
		return "pattern is over 1024 bytes";
	if (memchr(p, 0, len))
		return "pattern holds a NUL byte";
	if (lb__utf8_count((const uint8_t *)p, len, NULL) != 0)
		return "pattern is not valid UTF-8";
	f = &st[0];
	memset(f, 0, sizeof *f);
	f->alt_empty = 1;
	while (i < len) {
		char c = p[i];
		if (c == '\\') {
			if (i + 1 == len)
				return "pattern ends with a backslash";
			c = p[i + 1];
			if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			    (c >= 'A' && c <= 'Z'))
				return "a backslash before a letter or digit "
				       "(a back-reference, \\w...) is not "
				       "POSIX extended syntax";
			i += 2;
			err = pat_element(f, 1, 0);
		} else if (c == '[') {
			if (!(end = bracket_end(p, len, i)))
				return "a '[' without its ']'";
			i = end;
			err = pat_element(f, 1, 0);
		} else if (c == '(') {
			if (++d >= sizeof st / sizeof st[0])
				return "groups nested too deep";
			f = &st[d];
			memset(f, 0, sizeof *f);
			f->alt_empty = 1;
			i++;
			continue;
		} else if (c == ')') {
			if (d == 0)
				return "a ')' without its '(' (write \\) for "
				       "the character)";
			g = f->total ? f->total : 1;
			empty = f->group_empty || f->alt_empty;
			f = &st[--d];
			i++;
			err = pat_element(f, g, empty);
		} else if (c == '|') {
			f->group_empty |= f->alt_empty;
			f->alt_empty = 1;
			f->last = 0;
			f->last_kind = PAT_NONE;
			i++;
			continue;
		} else if (c == '*' || c == '+' || c == '?') {
			m = c == '+';
			n = c == '?' ? 1 : UINT64_MAX;
			i++;
			err = pat_repeat(f, m, n);
		} else if (c == '{' && bound_at(p, len, i, &end, &m, &n)) {
			if ((n != UINT64_MAX && n > LB__PATTERN_DUP_MAX) ||
			    m > LB__PATTERN_DUP_MAX)
				return "a repetition count over 255";
			i = end;
			err = pat_repeat(f, m, n);
		} else {
			i++;
			/* '^' and '$' match the empty string; any other
			 * character, '.' included, one character */
			err = pat_element(f, 1, c == '^' || c == '$');
		}
		if (err)
			return err;
	}
	if (d)
		return "a '(' without its ')'";
	return NULL;
}

/* Compile [p, p + len) (checked by scan_pattern()) as ^(p)$ into *out, or
 * only check that it compiles (out NULL). 0; else code rc with a message
 * in why, or LB_ENOMEM. */
static int compile_pattern(const char *p, size_t len, regex_t **out, int rc,
                           char *why, size_t cap)
{
	regex_t raw, *re;
	char *w;
	int e, ret = 0;
	locale_t old;

	if (out)
		*out = NULL;
	if (!(w = malloc(len + 5)) || !(re = malloc(sizeof *re))) {
		free(w);
		return lb__fail(LB_ENOMEM, "cannot allocate a pattern");
	}
	old = enter_c_locale();
	/* The pattern alone first: the wrapped one could hide its errors. */
	memcpy(w, p, len);
	w[len] = 0;
	e = regcomp(&raw, w, REG_EXTENDED | REG_NOSUB);
	if (e == 0) {
		regfree(&raw);
		memcpy(w, "^(", 2);
		memcpy(w + 2, p, len);
		memcpy(w + 2 + len, ")$", 3);
		e = regcomp(re, w, REG_EXTENDED | REG_NOSUB);
		if (e == 0 && !out)
			regfree(re);
		if (e) {
			char msg[128];
			regerror(e, re, msg, sizeof msg);
			snprintf(why, cap, "%s", msg);
		}
	} else {
		char msg[128];
		regerror(e, &raw, msg, sizeof msg);
		snprintf(why, cap, "%s", msg);
	}
	leave_c_locale(old);
	free(w);
	if (e == REG_ESPACE)
		ret = lb__fail(LB_ENOMEM, "out of memory compiling a pattern");
	else if (e)
		ret = rc;
	if (ret || !out)
		free(re);
	else
		*out = re;
	return ret;
}

int lb__pattern_match(const lb_sfield *f, const char *s, size_t len)
{
	char small[256], *z = small;
	regmatch_t m[1];
	locale_t old;
	int e;

	if (!f->re)
		return 1;
	/* regexec() takes a C string: the value, which is not one, is copied
	 * and terminated. (REG_STARTEND alone would do, but sanitizers read
	 * the string up to a NUL whatever the flags.) */
	if (len >= sizeof small && !(z = malloc(len + 1)))
		return lb__fail(LB_ENOMEM, "out of memory matching a pattern");
	memcpy(z, s, len);
	z[len] = 0;
	old = enter_c_locale();
#ifdef REG_STARTEND
	/* and REG_STARTEND, so that a NUL byte in the value is matched
	 * (as a byte that matches only itself), not taken as its end */
	m[0].rm_so = 0;
	m[0].rm_eo = (regoff_t)len;
	e = regexec(f->re, z, 1, m, REG_STARTEND);
#else
	/* without it, a value holding a NUL byte matches no pattern */
	e = memchr(z, 0, len) ? REG_NOMATCH : regexec(f->re, z, 0, m, 0);
#endif
	leave_c_locale(old);
	if (z != small)
		free(z);
	if (e == 0)
		return 1;
	if (e == REG_NOMATCH)
		return 0;
	return lb__fail(LB_ENOMEM, "out of memory matching a pattern");
}

/* ---- dates and times (RFC 3339 §5.6) --------------------------------------
 */

static int two(const char *s, int *v)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	*v = (s[0] - '0') * 10 + (s[1] - '0');
	return 0;
}

static int days_in(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
		return 29;
	return d[m - 1];
}

/* full-date = date-fullyear "-" date-month "-" date-mday, at s[0..10). */
static const char *date_problem(const char *s)
{
	int y1, y2, m, d;

	if (two(s, &y1) || two(s + 2, &y2) || s[4] != '-' || two(s + 5, &m) ||
	    s[7] != '-' || two(s + 8, &d))
		return "not YYYY-MM-DD";
	if (m < 1 || m > 12)
		return "the month is not 01..12";
	if (d < 1)
		return "the day is not 01..31";
	if (d > days_in(y1 * 100 + y2, m))
		return m == 2 && d == 29
		               ? "the day is past the end of the month "
		                 "(not a leap year)"
		               : "the day is past the end of the month";
	return NULL;
}

const char *lb__format_problem(int fmt, const char *s, size_t len)
{
	const char *why;
	int h, mi, sec, oh = 0, om = 0, sign = 0;
	size_t i;

	if (fmt == LB_FMT_DATE) {
		if (len != 10)
			return "not YYYY-MM-DD";
		return date_problem(s);
	}
	if (fmt != LB_FMT_DATETIME)
		return NULL;
	/* date-time = full-date "T" full-time; "T" and "Z" may be lower
	 * case (RFC 3339 §5.6, note). */
	if (len < 19 || (s[10] != 'T' && s[10] != 't'))
		return "not YYYY-MM-DDThh:mm:ss with a time zone (Z or "
		       "+hh:mm)";
	if ((why = date_problem(s)) != NULL)
		return why;
	if (two(s + 11, &h) || s[13] != ':' || two(s + 14, &mi) ||
	    s[16] != ':' || two(s + 17, &sec))
		return "not YYYY-MM-DDThh:mm:ss with a time zone (Z or "
		       "+hh:mm)";
	i = 19;
	if (i < len && s[i] == '.') {
		size_t f = ++i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == f)
			return "a '.' without digits after the seconds";
	}
	if (i == len)
		return "no time zone (end with Z or +hh:mm)";
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		sign = s[i] == '+' ? 1 : -1;
		if (len - i < 6 || two(s + i + 1, &oh) || s[i + 3] != ':' ||
		    two(s + i + 4, &om))
			return "the time zone is not Z or +hh:mm";
		i += 6;
	} else {
		return "the time zone is not Z or +hh:mm";
	}
	if (i != len)
		return "characters after the time zone";
	if (h > 23)
		return "the hour is not 00..23";
	if (mi > 59)
		return "the minute is not 00..59";
	if (sec > 60)
		return "the second is not 00..60";
	if (oh > 23 || om > 59)
		return "the time zone is not -23:59..+23:59";
	/* A leap second ends a UTC day: 23:59:60 in UTC. */
	if (sec == 60 &&
	    ((h * 60 + mi - sign * (oh * 60 + om)) % 1440 + 1440) % 1440 !=
	            23 * 60 + 59)
		return "second 60 is a leap second, only at 23:59 UTC";
	return NULL;
}

/* ---- encoding ------------------------------------------------------------ */

static int field_fail(size_t i, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int field_fail(size_t i, const char *name, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return lb__fail(LB_EINVAL, "field %zu '%.64s': %s", i, name, msg);
}

/* The enum of public field f (number i), which has f->nenum values. */
static int check_enum(const lb_field *f, size_t i)
{
	size_t j, len;
	ekey *k;
	long dup;
	int rc;

	if (!enum_type_ok(f->type))
		return field_fail(i, f->name,
		                  "an enum applies to str and int "
		                  "fields only");
	if (f->nenum > LB_SCHEMA_ENUM_MAX)
		return field_fail(i, f->name,
		                  "enum has %zu values, more than %d", f->nenum,
		                  LB_SCHEMA_ENUM_MAX);
	if (!(k = calloc(f->nenum, sizeof *k)))
		return lb__fail(LB_ENOMEM, "cannot check an enum");
	for (j = 0; j < f->nenum; j++) {
		const char *v = f->enum_values[j];
		rc = 0;
		len = 0;
		if (!v) {
			rc = field_fail(i, f->name, "enum value %zu is NULL",
			                j);
		} else if ((len = bounded_len(v, LB_SCHEMA_TEXT_MAX)) >
		           LB_SCHEMA_TEXT_MAX) {
			rc = field_fail(i, f->name,
			                "enum value %zu is over %d "
			                "bytes",
			                j, LB_SCHEMA_TEXT_MAX);
		} else if (f->type == LB_STR &&
		           lb__utf8_count((const uint8_t *)v, len, NULL) != 0) {
			rc = field_fail(i, f->name,
			                "enum value %zu is not valid "
			                "UTF-8",
			                j);
		} else if (f->type == LB_INT &&
		           canon_int(v, len, &k[j].v) < 0) {
			rc = field_fail(i, f->name,
			                "enum value '%.40s' is not an "
			                "integer written like -3, 0 or "
			                "42 (no '+', no leading zeros, "
			                "within 64 bits)",
			                v);
		}
		if (rc) {
			free(k);
			return rc;
		}
		if (f->type == LB_STR) {
			k[j].s = v;
			k[j].len = (uint32_t)len;
		}
		k[j].idx = (uint32_t)j;
	}
	dup = ekey_sort(k, (uint32_t)f->nenum, NULL);
	free(k);
	if (dup >= 0)
		return field_fail(i, f->name,
		                  "enum value %ld ('%.40s') is "
		                  "listed twice",
		                  dup, f->enum_values[dup]);
	return 0;
}

/* The rules of public field f (number i). */
static int check_rules(const lb_field *f, size_t i)
{
	const unsigned bounds = LB_HAS_MIN | LB_HAS_MAX;
	size_t len;
	char why[160];
	int rc;

	if (f->nenum && !f->enum_values)
		return field_fail(i, f->name,
		                  "nenum is %zu but enum_values is "
		                  "NULL",
		                  f->nenum);
	if (f->nenum && (rc = check_enum(f, i)) != 0)
		return rc;
	if (f->pattern) {
		const char *p;
		if (f->type != LB_STR)
			return field_fail(i, f->name,
			                  "a pattern applies to str fields "
			                  "only");
		len = bounded_len(f->pattern, LB_SCHEMA_TEXT_MAX);
		if ((p = scan_pattern(f->pattern, len)) != NULL)
			return field_fail(i, f->name, "pattern '%.64s': %s",
			                  f->pattern, p);
		rc = compile_pattern(f->pattern, len, NULL, LB_EINVAL, why,
		                     sizeof why);
		if (rc == LB_EINVAL)
			return field_fail(i, f->name, "pattern '%.64s': %s",
			                  f->pattern, why);
		if (rc)
			return rc;
	}
	if (f->format != LB_FMT_NONE) {
		if (f->format != LB_FMT_DATE && f->format != LB_FMT_DATETIME)
			return field_fail(i, f->name, "unknown format %d",
			                  f->format);
		if (f->type != LB_STR)
			return field_fail(i, f->name,
			                  "a format applies to str fields "
			                  "only");
	}
	if (f->has_min_max & ~bounds)
		return field_fail(i, f->name, "unknown has_min_max bits 0x%x",
		                  f->has_min_max & ~bounds);
	if (f->has_min_max) {
		if (f->type != LB_INT && f->type != LB_FLOAT)
			return field_fail(i, f->name,
			                  "min and max apply to int and float "
			                  "fields only");
		if ((f->has_min_max & LB_HAS_MIN) && !isfinite(f->min))
			return field_fail(i, f->name,
			                  "min is not a finite "
			                  "number");
		if ((f->has_min_max & LB_HAS_MAX) && !isfinite(f->max))
			return field_fail(i, f->name,
			                  "max is not a finite "
			                  "number");
		if (f->has_min_max == bounds && f->min > f->max)
			return field_fail(i, f->name,
			                  "min %.17g is greater than max %.17g",
			                  f->min, f->max);
	}
	return 0;
}

static int check_public(const lb_schema *s)
{
	const unsigned flags = LB_REQUIRED | LB_NULLABLE;
	size_t i, j, len, rlen;
	const char *why;
	int rc;

	if (s->nfields > LB_SCHEMA_FIELDS_MAX)
		return lb__fail(LB_EINVAL,
		                "schema has %zu fields, more than %d",
		                s->nfields, LB_SCHEMA_FIELDS_MAX);
	if (s->nfields && !s->fields)
		return lb__fail(LB_EINVAL,
		                "schema has %zu fields but no field array",
		                s->nfields);
	for (i = 0; i < s->nfields; i++) {
		const lb_field *f = &s->fields[i];

		if (!f->name)
			return lb__fail(LB_EINVAL, "field %zu: no name", i);
		len = bounded_len(f->name, 255);
		if ((why = name_problem(f->name, len)) != NULL)
			return lb__fail(LB_EINVAL, "field %zu '%.64s': %s", i,
			                f->name, why);
		if ((unsigned)f->type > (unsigned)LB_MAP)
			return lb__fail(LB_EINVAL,
			                "field %zu '%s': unknown type %d", i,
			                f->name, (int)f->type);
		if (f->flags & ~flags)
			return lb__fail(LB_EINVAL,
			                "field %zu '%s': unknown flags 0x%x", i,
			                f->name, f->flags & ~flags);
		if (f->ref) {
			rlen = bounded_len(f->ref, LB_TABLE_NAME_MAX);
			if (!lb__table_name_ok(f->ref, rlen))
				return lb__fail(
				        LB_EINVAL,
				        "field %zu '%s': ref '%.64s' is "
				        "not a table name (1..64 bytes of "
				        "[A-Za-z0-9_.-])",
				        i, f->name, f->ref);
			/* A key is a str or bin: a ref on another type could
			 * never hold a valid value. */
			if (f->type != LB_ANY && f->type != LB_STR &&
			    f->type != LB_BIN)
				return lb__fail(
				        LB_EINVAL,
				        "field %zu '%s': a ref field must "
				        "be of type any, str or bin",
				        i, f->name);
		}
		if ((rc = check_rules(f, i)) != 0)
			return rc;
		for (j = 0; j < i; j++)
			if (!strcmp(s->fields[j].name, f->name))
				return lb__fail(LB_EINVAL,
				                "field %zu '%s': same name as "
				                "field %zu",
				                i, f->name, j);
	}
	if (s->key_field) {
		for (i = 0; i < s->nfields; i++)
			if (!strcmp(s->fields[i].name, s->key_field))
				break;
		if (i == s->nfields)
			return lb__fail(LB_EINVAL,
			                "key_field '%.64s' is not a field of "
			                "the schema",
			                s->key_field);
		if (!key_type_ok(s->fields[i].type))
			return lb__fail(LB_EINVAL,
			                "key_field '%s': a key field must be "
			                "of type any, str, bin or int",
			                s->key_field);
	}
	return 0;
}

static int encode_bound(lb_buf *out, int set, double v)
{
	if (!set)
		return lb__mpw_nil(out);
	return lb__mpw_double(out, v == 0 ? 0.0 : v); /* no -0 */
}

static int encode_field(const lb_field *f, lb_buf *out)
{
	size_t j;
	int rc;

	if ((rc = lb__mpw_array(out, LB__SCHEMA_FIELD_ITEMS)) != 0 ||
	    (rc = lb__mpw_str(out, f->name, strlen(f->name))) != 0 ||
	    (rc = lb__mpw_uint(out, (uint64_t)f->type)) != 0 ||
	    (rc = lb__mpw_uint(out, f->flags)) != 0 ||
	    (rc = lb__mpw_uint(out, f->max_len)) != 0 ||
	    (rc = f->ref ? lb__mpw_str(out, f->ref, strlen(f->ref))
	                 : lb__mpw_nil(out)) != 0)
		return rc;
	if (!f->nenum) {
		rc = lb__mpw_nil(out);
	} else {
		rc = lb__mpw_array(out, (uint32_t)f->nenum);
		for (j = 0; !rc && j < f->nenum; j++) {
			const char *v = f->enum_values[j];
			int64_t x;
			if (f->type == LB_INT) {
				(void)canon_int(v, strlen(v), &x);
				rc = lb__mpw_int(out, x);
			} else {
				rc = lb__mpw_str(out, v, strlen(v));
			}
		}
	}
	if (rc ||
	    (rc = f->pattern ? lb__mpw_str(out, f->pattern, strlen(f->pattern))
	                     : lb__mpw_nil(out)) != 0 ||
	    (rc = lb__mpw_uint(out, (uint64_t)f->format)) != 0 ||
	    (rc = encode_bound(out, f->has_min_max & LB_HAS_MIN, f->min)) !=
	            0 ||
	    (rc = encode_bound(out, f->has_min_max & LB_HAS_MAX, f->max)) != 0)
		return rc;
	return 0;
}

int lb__schema_encode(const lb_schema *s, lb_buf *out)
{
	size_t i, len0 = out->len;
	int rc;

	if (s && (rc = check_public(s)) != 0)
		return rc;
	if ((rc = lb__mpw_array(out, LB__SCHEMA_ITEMS)) != 0 ||
	    (rc = lb__mpw_uint(out, LB__SCHEMA_VERSION)) != 0 ||
	    (rc = lb__mpw_uint(out, s ? 1 : 0)) != 0 ||
	    (rc = lb__mpw_bool(out, s && s->closed)) != 0 ||
	    (rc = lb__mpw_array(out, s ? (uint32_t)s->nfields : 0)) != 0)
		goto fail;
	for (i = 0; s && i < s->nfields; i++) {
		if ((rc = encode_field(&s->fields[i], out)) != 0)
			goto fail;
		if (out->len - len0 > LB_SCHEMA_BYTES_MAX)
			goto too_big;
	}
	if ((rc = s && s->key_field
	                  ? lb__mpw_str(out, s->key_field, strlen(s->key_field))
	                  : lb__mpw_nil(out)) != 0)
		goto fail;
	if (out->len - len0 > LB_SCHEMA_BYTES_MAX)
		goto too_big;
	return 0;
too_big:
	rc = lb__fail(LB_EINVAL, "schema encodes to over %u bytes",
	              LB_SCHEMA_BYTES_MAX);
fail:
	out->len = len0;
	return rc;
}

/* ---- decoding ------------------------------------------------------------ */

/* A cursor failure: prefix the cursor's detail with where it happened. */
static int mp_fail(int rc, long field, const char *what)
{
	if (field < 0)
		return lb__fail(rc, "schema: %s: %s", what, lb_errmsg());
	return lb__fail(rc, "schema: field %ld: %s: %s", field, what,
	                lb_errmsg());
}

static char *dup_str(const char *s, uint32_t len)
{
	char *p = malloc((size_t)len + 1);

	if (p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

/* A float 64 (the only float form of a schema). */
static int mp_f64(lb_mp *m, double *v)
{
	uint64_t u = 0;

	if (m->p >= m->end || m->p[0] != 0xcb)
		return lb__fail(LB_ECORRUPT, "not a float 64");
	if (m->end - m->p < 9)
		return lb__fail(LB_ECORRUPT, "float 64 cut short");
	for (int i = 1; i <= 8; i++)
		u = u << 8 | m->p[i];
	memcpy(v, &u, sizeof *v);
	m->p += 9;
	return 0;
}

static int decode_enum(lb_mp *m, lb_sfield *f, uint32_t i)
{
	uint32_t n, j, len = 0;
	const char *s = NULL;
	char num[24];
	ekey *k;
	long dup;
	int rc;

	if (lb__mp_peek(m) == LB_MP_NIL)
		return lb__mp_nil(m);
	if ((rc = lb__mp_array(m, &n)) != 0)
		return mp_fail(rc, i, "enum");
	if (n < 1 || n > LB_SCHEMA_ENUM_MAX)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': enum of %" PRIu32 " values, not 1..%d",
		                i, f->name, n, LB_SCHEMA_ENUM_MAX);
	if (!enum_type_ok(f->type))
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': an enum on a field of type %d",
		                i, f->name, (int)f->type);
	f->enum_values = calloc(n, sizeof *f->enum_values);
	f->enum_lens = calloc(n, sizeof *f->enum_lens);
	f->enum_order = calloc(n, sizeof *f->enum_order);
	if (f->type == LB_INT)
		f->enum_ints = calloc(n, sizeof *f->enum_ints);
	k = calloc(n, sizeof *k);
	if (!f->enum_values || !f->enum_lens || !f->enum_order || !k ||
	    (f->type == LB_INT && !f->enum_ints)) {
		free(k);
		return lb__fail(LB_ENOMEM, "cannot allocate an enum");
	}
	for (j = 0; j < n; j++) {
		f->nenum = j + 1; /* so free() sees what was allocated */
		if (f->type == LB_INT) {
			if ((rc = lb__mp_int(m, &k[j].v)) != 0) {
				free(k);
				return mp_fail(rc, i, "enum value");
			}
			f->enum_ints[j] = k[j].v;
			len = (uint32_t)snprintf(num, sizeof num, "%" PRId64,
			                         k[j].v);
			s = num;
		} else {
			if ((rc = lb__mp_str(m, &s, &len)) != 0) {
				free(k);
				return mp_fail(rc, i, "enum value");
			}
			if (len > LB_SCHEMA_TEXT_MAX || memchr(s, 0, len) ||
			    lb__utf8_count((const uint8_t *)s, len, NULL)) {
				free(k);
				return lb__fail(LB_ECORRUPT,
				                "schema: field %" PRIu32
				                " '%s': enum value %" PRIu32
				                " is over %d bytes, holds a "
				                "NUL byte or is not UTF-8",
				                i, f->name, j,
				                LB_SCHEMA_TEXT_MAX);
			}
		}
		if (!(f->enum_values[j] = dup_str(s, len))) {
			free(k);
			return lb__fail(LB_ENOMEM, "cannot allocate an enum");
		}
		f->enum_lens[j] = len;
		if (f->type == LB_STR) {
			k[j].s = f->enum_values[j];
			k[j].len = len;
		}
		k[j].idx = j;
	}
	dup = ekey_sort(k, n, f->enum_order);
	free(k);
	if (dup >= 0)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': enum value %ld is listed twice",
		                i, f->name, dup);
	return 0;
}

static int decode_pattern(lb_mp *m, lb_sfield *f, uint32_t i)
{
	const char *s, *why;
	uint32_t len;
	char msg[160];
	int rc;

	if (lb__mp_peek(m) == LB_MP_NIL)
		return lb__mp_nil(m);
	if ((rc = lb__mp_str(m, &s, &len)) != 0)
		return mp_fail(rc, i, "pattern");
	if (f->type != LB_STR)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': a pattern on a field of type %d",
		                i, f->name, (int)f->type);
	if ((why = scan_pattern(s, len)) != NULL)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32 " '%s': %s", i,
		                f->name, why);
	if (!(f->pattern = dup_str(s, len)))
		return lb__fail(LB_ENOMEM, "cannot allocate a pattern");
	rc = compile_pattern(s, len, &f->re, LB_ECORRUPT, msg, sizeof msg);
	if (rc == LB_ECORRUPT)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': pattern does not compile: %s",
		                i, f->name, msg);
	return rc;
}

static int decode_bound(lb_mp *m, lb_sfield *f, uint32_t i, unsigned bit,
                        double *v)
{
	const char *what = bit == LB_HAS_MIN ? "min" : "max";
	int rc;

	if (lb__mp_peek(m) == LB_MP_NIL)
		return lb__mp_nil(m);
	if ((rc = mp_f64(m, v)) != 0)
		return mp_fail(rc, i, what);
	if (!isfinite(*v))
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': %s is not a finite number",
		                i, f->name, what);
	if (f->type != LB_INT && f->type != LB_FLOAT)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': a %s on a field of type %d",
		                i, f->name, what, (int)f->type);
	if (*v == 0)
		*v = 0.0; /* no -0 */
	f->has_min_max |= bit;
	return 0;
}

static int decode_field(lb_mp *m, lb_wal_schema *out, uint32_t i)
{
	lb_sfield *f = &out->fields[i];
	const char *s, *why;
	uint64_t v;
	uint32_t n, len, j;
	int rc;

	if ((rc = lb__mp_array(m, &n)) != 0)
		return mp_fail(rc, i, "header");
	if (n != LB__SCHEMA_FIELD_ITEMS)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32 ": array of %" PRIu32
		                " items, not %u",
		                i, n, LB__SCHEMA_FIELD_ITEMS);
	if ((rc = lb__mp_str(m, &s, &len)) != 0)
		return mp_fail(rc, i, "name");
	if ((why = name_problem(s, len)) != NULL)
		return lb__fail(LB_ECORRUPT, "schema: field %" PRIu32 ": %s", i,
		                why);
	for (j = 0; j < i; j++)
		if (out->fields[j].nlen == len &&
		    !memcmp(out->fields[j].name, s, len))
			return lb__fail(LB_ECORRUPT,
			                "schema: field %" PRIu32
			                " '%.*s': same name as field %" PRIu32,
			                i, (int)len, s, j);
	if (!(f->name = dup_str(s, len)))
		return lb__fail(LB_ENOMEM, "cannot allocate a field name");
	f->nlen = len;
	if ((rc = lb__mp_uint(m, &v)) != 0)
		return mp_fail(rc, i, "type");
	if (v > LB_MAP)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': unknown type %llu",
		                i, f->name, (unsigned long long)v);
	f->type = (lb_type)v;
	if ((rc = lb__mp_uint(m, &v)) != 0)
		return mp_fail(rc, i, "flags");
	if (v & ~(uint64_t)(LB_REQUIRED | LB_NULLABLE))
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': unknown flags 0x%llx",
		                i, f->name, (unsigned long long)v);
	f->flags = (unsigned)v;
	if ((rc = lb__mp_uint(m, &v)) != 0)
		return mp_fail(rc, i, "max_len");
	if (v > UINT32_MAX)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': max_len %llu is over 2^32 - 1",
		                i, f->name, (unsigned long long)v);
	f->max_len = (uint32_t)v;
	if (lb__mp_peek(m) == LB_MP_NIL) {
		if ((rc = lb__mp_nil(m)) != 0)
			return rc;
	} else {
		if ((rc = lb__mp_str(m, &s, &len)) != 0)
			return mp_fail(rc, i, "ref");
		if (!lb__table_name_ok(s, len))
			return lb__fail(LB_ECORRUPT,
			                "schema: field %" PRIu32
			                " '%s': ref is not a table name",
			                i, f->name);
		/* As the encoder: only a field that can hold a key may be a
		 * ref. */
		if (f->type != LB_ANY && f->type != LB_STR && f->type != LB_BIN)
			return lb__fail(LB_ECORRUPT,
			                "schema: field %" PRIu32
			                " '%s': a ref on a field of type %d",
			                i, f->name, (int)f->type);
		if (!(f->ref = dup_str(s, len)))
			return lb__fail(LB_ENOMEM,
			                "cannot allocate a ref name");
	}
	if ((rc = decode_enum(m, f, i)) != 0 ||
	    (rc = decode_pattern(m, f, i)) != 0)
		return rc;
	if ((rc = lb__mp_uint(m, &v)) != 0)
		return mp_fail(rc, i, "format");
	if (v > LB_FMT_DATETIME)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': unknown format %llu",
		                i, f->name, (unsigned long long)v);
	if (v && f->type != LB_STR)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': a format on a field of type %d",
		                i, f->name, (int)f->type);
	f->format = (int)v;
	if ((rc = decode_bound(m, f, i, LB_HAS_MIN, &f->min)) != 0 ||
	    (rc = decode_bound(m, f, i, LB_HAS_MAX, &f->max)) != 0)
		return rc;
	if (f->has_min_max == (LB_HAS_MIN | LB_HAS_MAX) && f->min > f->max)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': min is greater than max",
		                i, f->name);
	return 0;
}

/* The public view of a decoded schema (lb_tables()). */
static int make_view(lb_wal_schema *out)
{
	uint32_t i, n = out->nfields;

	if (!(out->pub = calloc(n ? n : 1, sizeof *out->pub)))
		return lb__fail(LB_ENOMEM, "cannot allocate a schema view");
	for (i = 0; i < n; i++) {
		const lb_sfield *f = &out->fields[i];
		lb_field *p = &out->pub[i];
		p->name = f->name;
		p->type = f->type;
		p->flags = f->flags;
		p->max_len = f->max_len;
		p->ref = f->ref;
		p->enum_values = (const char *const *)f->enum_values;
		p->nenum = f->nenum;
		p->pattern = f->pattern;
		p->format = f->format;
		p->min = f->min;
		p->max = f->max;
		p->has_min_max = f->has_min_max;
	}
	out->view.fields = out->pub;
	out->view.nfields = n;
	out->view.closed = out->closed;
	out->view.key_field = out->key_field;
	return 0;
}

static int decode(lb_mp *m, lb_wal_schema *out)
{
	uint64_t ver, kind;
	uint32_t n, i, len;
	const char *s;
	int rc;

	if ((rc = lb__mp_array(m, &n)) != 0)
		return mp_fail(rc, -1, "top level");
	/* The version first: a newer one may change the arity. */
	if ((rc = lb__mp_uint(m, &ver)) != 0)
		return mp_fail(rc, -1, "version");
	if (ver > LB__SCHEMA_VERSION)
		return lb__fail(LB_EVERSION,
		                "schema version %llu is newer than this "
		                "library's (%u)",
		                (unsigned long long)ver, LB__SCHEMA_VERSION);
	if (ver == 0)
		return lb__fail(LB_ECORRUPT, "schema version is 0");
	if (ver < LB__SCHEMA_VERSION)
		return lb__fail(LB_EVERSION,
		                "schema version %llu was never released and "
		                "is not read (this library reads version %u)",
		                (unsigned long long)ver, LB__SCHEMA_VERSION);
	if (n != LB__SCHEMA_ITEMS)
		return lb__fail(LB_ECORRUPT,
		                "schema: array of %" PRIu32 " items, not %u", n,
		                LB__SCHEMA_ITEMS);
	if ((rc = lb__mp_uint(m, &kind)) != 0)
		return mp_fail(rc, -1, "kind");
	if (kind > 1)
		return lb__fail(LB_ECORRUPT, "schema: unknown kind %llu",
		                (unsigned long long)kind);
	out->has_schema = (int)kind;
	if ((rc = lb__mp_bool(m, &out->closed)) != 0)
		return mp_fail(rc, -1, "closed");
	if ((rc = lb__mp_array(m, &n)) != 0)
		return mp_fail(rc, -1, "fields");
	if (n > LB_SCHEMA_FIELDS_MAX)
		return lb__fail(LB_ECORRUPT,
		                "schema: %" PRIu32 " fields, more than %d", n,
		                LB_SCHEMA_FIELDS_MAX);
	if (!kind && (n || out->closed))
		return lb__fail(
		        LB_ECORRUPT,
		        "schema: an opaque table has fields or is closed");
	if (n && !(out->fields = calloc(n, sizeof *out->fields)))
		return lb__fail(LB_ENOMEM, "cannot allocate %" PRIu32 " fields",
		                n);
	for (i = 0; i < n; i++) {
		out->nfields = i + 1; /* so free() sees what was allocated */
		if ((rc = decode_field(m, out, i)) != 0)
			return rc;
	}
	if (lb__mp_peek(m) == LB_MP_NIL) {
		if ((rc = lb__mp_nil(m)) != 0)
			return rc;
	} else {
		if ((rc = lb__mp_str(m, &s, &len)) != 0)
			return mp_fail(rc, -1, "key_field");
		for (i = 0; i < out->nfields; i++)
			if (out->fields[i].nlen == len &&
			    !memcmp(out->fields[i].name, s, len))
				break;
		if (i == out->nfields)
			return lb__fail(LB_ECORRUPT,
			                "schema: key_field names no field");
		if (!key_type_ok(out->fields[i].type))
			return lb__fail(LB_ECORRUPT,
			                "schema: key_field names a field of "
			                "type %d",
			                (int)out->fields[i].type);
		out->key_fi = (int)i;
		if (!(out->key_field = dup_str(s, len)))
			return lb__fail(LB_ENOMEM,
			                "cannot allocate a key_field");
	}
	if (m->p != m->end)
		return lb__fail(LB_ECORRUPT,
		                "schema: %zu bytes follow its last item",
		                (size_t)(m->end - m->p));
	return kind ? make_view(out) : 0;
}

int lb__schema_decode(const void *p, size_t len, lb_wal_schema *out)
{
	lb_mp m;
	int rc;

	memset(out, 0, sizeof *out);
	out->key_fi = -1;
	if (!p)
		return lb__fail(LB_ECORRUPT, "schema: no bytes");
	if (len > LB_SCHEMA_BYTES_MAX)
		return lb__fail(LB_ECORRUPT, "schema: %zu bytes, more than %u",
		                len, LB_SCHEMA_BYTES_MAX);
	m.p = p;
	m.end = m.p + len;
	if ((rc = decode(&m, out)) != 0)
		lb__schema_free(out);
	return rc;
}

void lb__schema_free(lb_wal_schema *s)
{
	uint32_t i, j;

	if (!s)
		return;
	for (i = 0; i < s->nfields; i++) {
		lb_sfield *f = &s->fields[i];
		free(f->name);
		free(f->ref);
		for (j = 0; f->enum_values && j < f->nenum; j++)
			free(f->enum_values[j]);
		free(f->enum_values);
		free(f->enum_lens);
		free(f->enum_ints);
		free(f->enum_order);
		free(f->pattern);
		if (f->re) {
			regfree(f->re);
			free(f->re);
		}
	}
	free(s->fields);
	free(s->key_field);
	free(s->pub);
	memset(s, 0, sizeof *s);
	s->key_fi = -1;
}
