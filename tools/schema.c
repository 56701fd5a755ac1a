/* SPDX-License-Identifier: MIT */
/*
 * schema.c: the table catalog (a copy of what lb_tables() reports) and the
 * schema file format of `init --schema` and `table create --schema`.
 *
 * Schema file (docs/CLI.md):
 *   {"tables": [
 *     {"name": "hearings", "closed": true,
 *      "fields": [{"name": "id", "type": "str", "required": true,
 *                  "max_len": 32}, ...]},
 *     {"name": "witnesses",
 *      "fields": [{"name": "hearing_id", "type": "str", "required": true,
 *                  "ref": "hearings"}, ...]},
 *     {"name": "blobs"}]}
 * A table without "fields" holds opaque bytes. Unknown members are errors,
 * so that a misspelt "requried" does not silently weaken a schema.
 */
#include "cli.h"

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

static void table_free(cli_table *t)
{
	for (size_t i = 0; i < t->nfields; i++) {
		free(t->fields[i].name);
		free(t->fields[i].ref);
	}
	free(t->fields);
	free(t->name);
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
		for (size_t i = 0; i < s->nfields; i++) {
			const lb_field *f = &s->fields[i];
			t->fields[i].name = cli_xstrdup(f->name);
			t->fields[i].type = f->type;
			t->fields[i].flags = f->flags;
			t->fields[i].max_len = f->max_len;
			t->fields[i].ref = f->ref ? cli_xstrdup(f->ref) : NULL;
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
		f[i].name = t->fields[i].name;
		f[i].type = t->fields[i].type;
		f[i].flags = t->fields[i].flags;
		f[i].max_len = t->fields[i].max_len;
		f[i].ref = t->fields[i].ref;
	}
	s->fields = f;
	s->nfields = t->nfields;
	s->closed = t->closed;
	return f;
}

/* ---- rendering ----------------------------------------------------------- */

void cli_table_json(sbuf *b, const cli_table *t)
{
	sb_putc(b, '{');
	jw_key(b, "name");
	jw_cstr(b, t->name ? t->name : "");
	if (t->has_schema) {
		sb_puts(b, ",\"closed\":");
		sb_puts(b, t->closed ? "true" : "false");
		sb_puts(b, ",\"fields\":[");
		for (size_t i = 0; i < t->nfields; i++) {
			const cli_field *f = &t->fields[i];
			if (i)
				sb_putc(b, ',');
			sb_putc(b, '{');
			jw_key(b, "name");
			jw_cstr(b, f->name);
			sb_puts(b, ",\"type\":");
			jw_cstr(b, cli_type_name(f->type));
			if (f->flags & LB_REQUIRED)
				sb_puts(b, ",\"required\":true");
			if (f->max_len) {
				sb_puts(b, ",\"max_len\":");
				jw_u64(b, f->max_len);
			}
			if (f->ref) {
				sb_puts(b, ",\"ref\":");
				jw_cstr(b, f->ref);
			}
			sb_putc(b, '}');
		}
		sb_putc(b, ']');
	}
	sb_putc(b, '}');
}

void cli_table_summary(sbuf *b, const cli_table *t)
{
	if (!t->has_schema) {
		sb_puts(b, "opaque");
		return;
	}
	sb_printf(b, "%s, %zu field%s", t->closed ? "closed" : "open",
	          t->nfields, t->nfields == 1 ? "" : "s");
	for (size_t i = 0; i < t->nfields; i++) {
		const cli_field *f = &t->fields[i];
		sb_puts(b, i ? ", " : ": ");
		sb_printf(b, "%s %s", f->name, cli_type_name(f->type));
		if (f->flags & LB_REQUIRED)
			sb_puts(b, " required");
		if (f->max_len)
			sb_printf(b, " max %u", (unsigned)f->max_len);
		if (f->ref)
			sb_printf(b, " -> %s", f->ref);
	}
}

/* ---- schema files -------------------------------------------------------- */

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
		} else {
			return cli_err("%s: table '%s': unknown member \"%s\"",
			               path, tname, k);
		}
	}
	if (!fields)
		return 0;
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
