/* SPDX-License-Identifier: MIT */
/*
 * schema.c: the table catalog (a copy of what lb_tables() reports) and the
 * schema file format of `init --schema` and `table create --schema`.
 *
 * Schema file (docs/CLI.md):
 *   {"tables": [
 *     {"name": "hearings", "closed": true, "key_field": "id",
 *      "fields": [{"name": "id", "type": "str", "required": true,
 *                  "max_len": 32, "pattern": "[A-Z]+-[0-9]+"},
 *                 {"name": "chamber", "type": "str", "nullable": true,
 *                  "enum": ["House", "Senate", "Joint"]},
 *                 {"name": "date", "type": "str", "format": "date"},
 *                 {"name": "congress", "type": "int", "min": 80}, ...]},
 *     {"name": "witnesses",
 *      "fields": [{"name": "hearing_id", "type": "str", "required": true,
 *                  "ref": "hearings"}, ...]},
 *     {"name": "blobs"}]}
 * A table without "fields" holds opaque bytes. Unknown members are errors,
 * so that a misspelt "requried" does not silently weaken a schema. What
 * the file says is checked here as JSON (types of members); whether the
 * rules make sense (a pattern that compiles, an enum on a str or int
 * field...) is the library's check, at lb_table_create().
 *
 * cli_table_json() prints a table back in the same format, every rule
 * included, so that `tables --schema` gives a file `init --schema` takes.
 */
#include "cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_names[] = {"any", "nil", "bool",  "int", "float",
                                   "str", "bin", "array", "map"};

const char *cli_type_name(lb_type t)
{
	if ((unsigned)t < sizeof type_names / sizeof type_names[0])
		return type_names[t];
	return "?";
}

static int type_parse(const char *s, lb_type *t)
{
	for (unsigned i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
		if (!strcmp(s, type_names[i])) {
			*t = (lb_type)i;
			return 0;
		}
	return -1;
}

/* ---- catalog ------------------------------------------------------------- */

static void field_free(cli_field *f)
{
	free(f->name);
	free(f->ref);
	for (size_t j = 0; f->enum_values && j < f->nenum; j++)
		free(f->enum_values[j]);
	free(f->enum_values);
	free(f->pattern);
}

static void table_free(cli_table *t)
{
	for (size_t i = 0; i < t->nfields; i++)
		field_free(&t->fields[i]);
	free(t->fields);
	free(t->name);
	free(t->key_field);
}

void cli_catalog_free(cli_catalog *c)
{
	for (size_t i = 0; i < c->n; i++)
		table_free(&c->t[i]);
	free(c->t);
	c->t = NULL;
	c->n = 0;
}

static cli_table *catalog_add(cli_catalog *c)
{
	cli_table *t;
	c->t = cli_xrealloc(c->t, (c->n + 1) * sizeof *c->t);
	t = &c->t[c->n++];
	memset(t, 0, sizeof *t);
	return t;
}

static int table_cb(void *ctx, const char *name, const lb_schema *s,
                    uint64_t records)
{
	cli_table *t;
	/* Tables named "logbook.*" are the tool's own (logbook.runs, the
	 * import runs: runs.h), not data: not listed, exported or written. */
	if (cli_table_reserved(name))
		return 0;
	t = catalog_add(ctx);
	t->name = cli_xstrdup(name);
	t->records = records;
	if (s) {
		t->has_schema = 1;
		t->closed = s->closed != 0;
		t->nfields = s->nfields;
		t->fields = cli_xmalloc((s->nfields ? s->nfields : 1) *
		                        sizeof *t->fields);
		t->key_field = s->key_field ? cli_xstrdup(s->key_field) : NULL;
		for (size_t i = 0; i < s->nfields; i++) {
			const lb_field *f = &s->fields[i];
			cli_field *c = &t->fields[i];
			memset(c, 0, sizeof *c);
			c->name = cli_xstrdup(f->name);
			c->type = f->type;
			c->flags = f->flags;
			c->max_len = f->max_len;
			c->ref = f->ref ? cli_xstrdup(f->ref) : NULL;
			if (f->nenum) {
				c->nenum = f->nenum;
				c->enum_ints = f->type == LB_INT;
				c->enum_values = cli_xmalloc(
				        f->nenum * sizeof *c->enum_values);
				for (size_t j = 0; j < f->nenum; j++)
					c->enum_values[j] =
					        cli_xstrdup(f->enum_values[j]);
			}
			c->pattern =
			        f->pattern ? cli_xstrdup(f->pattern) : NULL;
			c->format = f->format;
			c->min = f->min;
			c->max = f->max;
			c->has_min_max = f->has_min_max;
		}
	}
	return 0;
}

int cli_table_reserved(const char *name)
{
	return !strncmp(name, "logbook.", 8);
}

int cli_catalog_load(lb_db *db, cli_catalog *c)
{
	int rc;
	c->t = NULL;
	c->n = 0;
	rc = lb_tables(db, table_cb, c);
	if (rc < 0)
		cli_catalog_free(c);
	return rc;
}

cli_table *cli_catalog_find(cli_catalog *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->t[i].name && !strcmp(c->t[i].name, name))
			return &c->t[i];
	return NULL;
}

static void topo_visit(const cli_catalog *c, size_t i, char *mark, size_t *idx,
                       size_t *n)
{
	if (mark[i])
		return;
	mark[i] = 1; /* also breaks cycles (a table referencing itself) */
	for (size_t f = 0; f < c->t[i].nfields; f++) {
		const char *ref = c->t[i].fields[f].ref;
		if (!ref)
			continue;
		for (size_t j = 0; j < c->n; j++)
			if (!strcmp(c->t[j].name, ref))
				topo_visit(c, j, mark, idx, n);
	}
	idx[(*n)++] = i;
}

void cli_catalog_topo(const cli_catalog *c, size_t *idx)
{
	char *mark = calloc(c->n ? c->n : 1, 1);
	size_t n = 0;
	if (!mark) {
		for (size_t i = 0; i < c->n; i++)
			idx[i] = i;
		return;
	}
	for (size_t i = 0; i < c->n; i++)
		topo_visit(c, i, mark, idx, &n);
	free(mark);
}

lb_field *cli_schema_view(const cli_table *t, lb_schema *s)
{
	lb_field *f = cli_xmalloc((t->nfields ? t->nfields : 1) * sizeof *f);
	for (size_t i = 0; i < t->nfields; i++) {
		const cli_field *c = &t->fields[i];
		memset(&f[i], 0, sizeof f[i]);
		f[i].name = c->name;
		f[i].type = c->type;
		f[i].flags = c->flags;
		f[i].max_len = c->max_len;
		f[i].ref = c->ref;
		f[i].enum_values = (const char *const *)c->enum_values;
		f[i].nenum = c->nenum;
		f[i].pattern = c->pattern;
		f[i].format = c->format;
		f[i].min = c->min;
		f[i].max = c->max;
		f[i].has_min_max = c->has_min_max;
	}
	memset(s, 0, sizeof *s);
	s->fields = f;
	s->nfields = t->nfields;
	s->closed = t->closed;
	s->key_field = t->key_field;
	return f;
}

/* ---- rendering ----------------------------------------------------------- */

static const char *format_name(int f)
{
	return f == LB_FMT_DATE       ? "date"
	       : f == LB_FMT_DATETIME ? "date-time"
	                              : NULL;
}

/* A bound as JSON that reads back as the same double: an integer when it
 * is one (within 2^53), else the shortest real. */
static void bound_json(sbuf *b, double v)
{
	if (v >= -9007199254740992.0 && v <= 9007199254740992.0 &&
	    v == (double)(int64_t)v)
		jw_i64(b, (int64_t)v);
	else
		jw_double(b, v);
}

static void field_json(sbuf *b, const cli_field *f)
{
	sb_putc(b, '{');
	jw_key(b, "name");
	jw_cstr(b, f->name);
	sb_puts(b, ",\"type\":");
	jw_cstr(b, cli_type_name(f->type));
	if (f->flags & LB_REQUIRED)
		sb_puts(b, ",\"required\":true");
	if (f->flags & LB_NULLABLE)
		sb_puts(b, ",\"nullable\":true");
	if (f->max_len) {
		sb_puts(b, ",\"max_len\":");
		jw_u64(b, f->max_len);
	}
	if (f->ref) {
		sb_puts(b, ",\"ref\":");
		jw_cstr(b, f->ref);
	}
	if (f->nenum) {
		sb_puts(b, ",\"enum\":[");
		for (size_t j = 0; j < f->nenum; j++) {
			if (j)
				sb_putc(b, ',');
			if (f->enum_ints) /* canonical decimal text */
				sb_puts(b, f->enum_values[j]);
			else
				jw_cstr(b, f->enum_values[j]);
		}
		sb_putc(b, ']');
	}
	if (f->pattern) {
		sb_puts(b, ",\"pattern\":");
		jw_cstr(b, f->pattern);
	}
	if (format_name(f->format)) {
		sb_puts(b, ",\"format\":");
		jw_cstr(b, format_name(f->format));
	}
	if (f->has_min_max & LB_HAS_MIN) {
		sb_puts(b, ",\"min\":");
		bound_json(b, f->min);
	}
	if (f->has_min_max & LB_HAS_MAX) {
		sb_puts(b, ",\"max\":");
		bound_json(b, f->max);
	}
	sb_putc(b, '}');
}

void cli_table_json(sbuf *b, const cli_table *t)
{
	sb_putc(b, '{');
	jw_key(b, "name");
	jw_cstr(b, t->name ? t->name : "");
	if (t->has_schema) {
		sb_puts(b, ",\"closed\":");
		sb_puts(b, t->closed ? "true" : "false");
		if (t->key_field) {
			sb_puts(b, ",\"key_field\":");
			jw_cstr(b, t->key_field);
		}
		sb_puts(b, ",\"fields\":[");
		for (size_t i = 0; i < t->nfields; i++) {
			if (i)
				sb_putc(b, ',');
			field_json(b, &t->fields[i]);
		}
		sb_putc(b, ']');
	}
	sb_putc(b, '}');
}

/* A bound for humans: the shortest text. */
static void bound_text(sbuf *b, double v)
{
	char t[40];
	if (v >= -9007199254740992.0 && v <= 9007199254740992.0 &&
	    v == (double)(int64_t)v) {
		sb_printf(b, "%" PRId64, (int64_t)v); /* 80, not 8e+01 */
		return;
	}
	for (int p = 1; p <= 17; p++) {
		snprintf(t, sizeof t, "%.*g", p, v);
		if (strtod(t, NULL) == v)
			break;
	}
	sb_puts(b, t);
}

void cli_table_summary(sbuf *b, const cli_table *t)
{
	if (!t->has_schema) {
		sb_puts(b, "opaque");
		return;
	}
	sb_printf(b, "%s, ", t->closed ? "closed" : "open");
	if (t->key_field)
		sb_printf(b, "key %s, ", t->key_field);
	sb_printf(b, "%zu field%s", t->nfields, t->nfields == 1 ? "" : "s");
	for (size_t i = 0; i < t->nfields; i++) {
		const cli_field *f = &t->fields[i];
		sb_puts(b, i ? ", " : ": ");
		sb_printf(b, "%s %s", f->name, cli_type_name(f->type));
		if (f->flags & LB_REQUIRED)
			sb_puts(b, " required");
		if (f->flags & LB_NULLABLE)
			sb_puts(b, " nullable");
		if (f->max_len)
			sb_printf(b, " max %u", (unsigned)f->max_len);
		if (f->ref)
			sb_printf(b, " -> %s", f->ref);
		if (f->nenum) {
			sb_puts(b, " in {");
			for (size_t j = 0; j < f->nenum && j < 5; j++)
				sb_printf(b, "%s%s", j ? "|" : "",
				          f->enum_values[j]);
			sb_puts(b, f->nenum > 5 ? "|...}" : "}");
		}
		if (f->pattern)
			sb_printf(b, " matching '%s'", f->pattern);
		if (format_name(f->format))
			sb_printf(b, " %s", format_name(f->format));
		if (f->has_min_max & LB_HAS_MIN) {
			sb_puts(b, " >= ");
			bound_text(b, f->min);
		}
		if (f->has_min_max & LB_HAS_MAX) {
			sb_puts(b, " <= ");
			bound_text(b, f->max);
		}
	}
}

/* ---- schema files -------------------------------------------------------- */

/* "enum": a non-empty array of strings, or of integers (kept as decimal
 * text). */
static int enum_parse(const char *path, const char *tname, size_t fi, json_t *v,
                      cli_field *f)
{
	size_t n = json_is_array(v) ? json_array_size(v) : 0;
	int strs = 0, ints = 0;

	if (!n)
		return cli_err("%s: table '%s': field %zu: \"enum\" must be a "
		               "non-empty array of strings or of integers",
		               path, tname, fi + 1);
	for (size_t j = 0; j < n; j++) {
		json_t *x = json_array_get(v, j);
		strs += json_is_string(x);
		ints += json_is_integer(x);
	}
	if (strs != (int)n && ints != (int)n)
		return cli_err("%s: table '%s': field %zu: \"enum\" must hold "
		               "only strings or only integers",
		               path, tname, fi + 1);
	for (size_t j = 0; j < f->nenum; j++)
		free(f->enum_values[j]);
	free(f->enum_values);
	f->enum_values = cli_xmalloc(n * sizeof *f->enum_values);
	f->nenum = n;
	f->enum_ints = ints == (int)n;
	for (size_t j = 0; j < n; j++) {
		json_t *x = json_array_get(v, j);
		char num[24];
		if (f->enum_ints) {
			snprintf(num, sizeof num, "%" PRId64,
			         (int64_t)json_integer_value(x));
			f->enum_values[j] = cli_xstrdup(num);
		} else {
			if (memchr(json_string_value(x), 0,
			           json_string_length(x)))
				return cli_err("%s: table '%s': field %zu: "
				               "enum value %zu holds a NUL "
				               "character",
				               path, tname, fi + 1, j + 1);
			f->enum_values[j] = cli_xstrdup(json_string_value(x));
		}
	}
	return 0;
}

/* "min" or "max": a number that a double holds exactly. */
static int bound_parse(const char *path, const char *tname, size_t fi,
                       const char *k, json_t *v, double *out)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		double d = (double)i;
		/* beyond 2^53 a double would round it: say so rather than
		 * check against another number */
		if (d >= 9223372036854775808.0 || (json_int_t)d != i)
			return cli_err("%s: table '%s': field %zu: \"%s\" "
			               "%lld is not exact as a double: use "
			               "a number within 2^53",
			               path, tname, fi + 1, k, (long long)i);
		*out = d;
		return 0;
	}
	if (json_is_real(v) && isfinite(json_real_value(v))) {
		*out = json_real_value(v);
		return 0;
	}
	return cli_err("%s: table '%s': field %zu: \"%s\" must be a number",
	               path, tname, fi + 1, k);
}

static int field_parse(const char *path, const char *tname, size_t fi,
                       json_t *jf, cli_field *f)
{
	const char *k;
	json_t *v;
	int have_name = 0, have_type = 0;
	memset(f, 0, sizeof *f);
	if (!json_is_object(jf))
		return cli_err("%s: table '%s': field %zu is not an object",
		               path, tname, fi + 1);
	json_object_foreach(jf, k, v)
	{
		if (!strcmp(k, "name")) {
			if (!json_is_string(v) || !json_string_length(v))
				return cli_err("%s: table '%s': field %zu: "
				               "\"name\" must be a non-empty "
				               "string",
				               path, tname, fi + 1);
			f->name = cli_xstrdup(json_string_value(v));
			have_name = 1;
		} else if (!strcmp(k, "type")) {
			if (!json_is_string(v) ||
			    type_parse(json_string_value(v), &f->type) < 0)
				return cli_err(
				        "%s: table '%s': field %zu: unknown "
				        "type (use any, nil, bool, int, float, "
				        "str, bin, array or map)",
				        path, tname, fi + 1);
			have_type = 1;
		} else if (!strcmp(k, "required")) {
			if (!json_is_boolean(v))
				return cli_err("%s: table '%s': field %zu: "
				               "\"required\" must be true or "
				               "false",
				               path, tname, fi + 1);
			if (json_is_true(v))
				f->flags |= LB_REQUIRED;
		} else if (!strcmp(k, "max_len")) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > (json_int_t)UINT32_MAX)
				return cli_err("%s: table '%s': field %zu: "
				               "\"max_len\" must be an integer "
				               "0..4294967295",
				               path, tname, fi + 1);
			f->max_len = (uint32_t)json_integer_value(v);
		} else if (!strcmp(k, "ref")) {
			if (json_is_null(v))
				continue;
			if (!json_is_string(v) || !json_string_length(v))
				return cli_err("%s: table '%s': field %zu: "
				               "\"ref\" must be a table name",
				               path, tname, fi + 1);
			f->ref = cli_xstrdup(json_string_value(v));
		} else if (!strcmp(k, "nullable")) {
			if (!json_is_boolean(v))
				return cli_err("%s: table '%s': field %zu: "
				               "\"nullable\" must be true or "
				               "false",
				               path, tname, fi + 1);
			if (json_is_true(v))
				f->flags |= LB_NULLABLE;
		} else if (!strcmp(k, "enum")) {
			if (enum_parse(path, tname, fi, v, f))
				return CLI_FAIL;
		} else if (!strcmp(k, "pattern")) {
			if (!json_is_string(v) || !json_string_length(v))
				return cli_err(
				        "%s: table '%s': field %zu: "
				        "\"pattern\" must be a non-empty "
				        "string (a POSIX extended regular "
				        "expression)",
				        path, tname, fi + 1);
			f->pattern = cli_xstrdup(json_string_value(v));
		} else if (!strcmp(k, "format")) {
			const char *fs =
			        json_is_string(v) ? json_string_value(v) : "";
			if (!strcmp(fs, "date"))
				f->format = LB_FMT_DATE;
			else if (!strcmp(fs, "date-time"))
				f->format = LB_FMT_DATETIME;
			else
				return cli_err("%s: table '%s': field %zu: "
				               "\"format\" must be \"date\" or "
				               "\"date-time\"",
				               path, tname, fi + 1);
		} else if (!strcmp(k, "min") || !strcmp(k, "max")) {
			int is_min = k[1] == 'i';
			if (bound_parse(path, tname, fi, k, v,
			                is_min ? &f->min : &f->max))
				return CLI_FAIL;
			f->has_min_max |= is_min ? LB_HAS_MIN : LB_HAS_MAX;
		} else {
			return cli_err("%s: table '%s': field %zu: unknown "
			               "member \"%s\"",
			               path, tname, fi + 1, k);
		}
	}
	if (!have_name)
		return cli_err("%s: table '%s': field %zu has no \"name\"",
		               path, tname, fi + 1);
	if (!have_type)
		f->type = LB_ANY;
	/* An enum's values are strings for a str field, integers for an
	 * int field (other types take none: the library says so). */
	if (f->nenum && f->type == LB_STR && f->enum_ints)
		return cli_err("%s: table '%s': field %zu '%s': the \"enum\" "
		               "of a str field must hold strings",
		               path, tname, fi + 1, f->name);
	if (f->nenum && f->type == LB_INT && !f->enum_ints)
		return cli_err("%s: table '%s': field %zu '%s': the \"enum\" "
		               "of an int field must hold integers",
		               path, tname, fi + 1, f->name);
	return 0;
}

static int table_parse(const char *path, size_t ti, json_t *jt, cli_table *t)
{
	const char *k;
	json_t *v, *fields = NULL;
	char tname[80];
	json_t *jn = json_object_get(jt, "name");
	snprintf(tname, sizeof tname, "%s",
	         json_is_string(jn) ? json_string_value(jn) : "?");
	json_object_foreach(jt, k, v)
	{
		if (!strcmp(k, "name")) {
			if (!json_is_string(v) || !json_string_length(v))
				return cli_err("%s: table %zu: \"name\" must "
				               "be a non-empty string",
				               path, ti + 1);
			t->name = cli_xstrdup(json_string_value(v));
		} else if (!strcmp(k, "closed")) {
			if (!json_is_boolean(v))
				return cli_err("%s: table '%s': \"closed\" "
				               "must be true or false",
				               path, tname);
			t->closed = json_is_true(v);
		} else if (!strcmp(k, "fields")) {
			if (!json_is_array(v))
				return cli_err("%s: table '%s': \"fields\" "
				               "must be an array",
				               path, tname);
			fields = v;
		} else if (!strcmp(k, "key_field")) {
			if (json_is_null(v))
				continue;
			if (!json_is_string(v) || !json_string_length(v))
				return cli_err("%s: table '%s': \"key_field\" "
				               "must be the name of a field",
				               path, tname);
			free(t->key_field);
			t->key_field = cli_xstrdup(json_string_value(v));
		} else {
			return cli_err("%s: table '%s': unknown member \"%s\"",
			               path, tname, k);
		}
	}
	if (!fields) {
		if (t->key_field)
			return cli_err("%s: table '%s': \"key_field\" needs "
			               "\"fields\" (an opaque table has none)",
			               path, tname);
		return 0;
	}
	t->has_schema = 1;
	t->nfields = 0;
	t->fields =
	        cli_xmalloc((json_array_size(fields) + 1) * sizeof *t->fields);
	for (size_t i = 0; i < json_array_size(fields); i++) {
		int rc = field_parse(path, tname, i, json_array_get(fields, i),
		                     &t->fields[i]);
		t->nfields = i + 1;
		if (rc)
			return rc;
	}
	return 0;
}

int cli_schema_file(const char *path, cli_catalog *out)
{
	json_error_t je;
	json_t *root, *tables;
	int rc = 0;
	out->t = NULL;
	out->n = 0;
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		if (je.line <= 0)
			return cli_err("%s: %s", path, je.text);
		return cli_err("%s: line %d: %s", path, je.line, je.text);
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return cli_err("%s: the schema file must hold a JSON object",
		               path);
	}
	tables = json_object_get(root, "tables");
	if (!tables) {
		/* One table: {"name"?, "closed"?, "fields": [...]} */
		rc = table_parse(path, 0, root, catalog_add(out));
		goto done;
	}
	if (json_object_size(root) != 1 || !json_is_array(tables)) {
		rc = cli_err("%s: expected {\"tables\": [...]}", path);
		goto done;
	}
	for (size_t i = 0; i < json_array_size(tables) && !rc; i++) {
		json_t *jt = json_array_get(tables, i);
		cli_table *t;
		if (!json_is_object(jt)) {
			rc = cli_err("%s: table %zu is not an object", path,
			             i + 1);
			break;
		}
		t = catalog_add(out);
		rc = table_parse(path, i, jt, t);
		if (!rc && !t->name)
			rc = cli_err("%s: table %zu has no \"name\"", path,
			             i + 1);
		for (size_t j = 0; !rc && j + 1 < out->n; j++)
			if (!strcmp(out->t[j].name, t->name))
				rc = cli_err("%s: table '%s' is declared twice",
				             path, t->name);
	}
done:
	json_decref(root);
	if (rc)
		cli_catalog_free(out);
	return rc;
}
