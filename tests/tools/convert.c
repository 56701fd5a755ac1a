/* SPDX-License-Identifier: MIT */
/*
 * tests/tools/convert.c: the CLI's value conversions (tools/json.c,
 * tools/fastjson.c).
 *
 * The import fast path must give exactly the bytes of the jansson path for
 * every input it accepts, and decline (-1) the rest; msgpack -> JSON ->
 * msgpack must give back the same bytes (what makes export | import exact).
 * Fixed cases pin the edges; randomized ones (seeded, seed printed on
 * failure) cover the rest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../helpers.h"
#include "tools/cli.h"

/* The jansson path: parse, require an object, pack. 0 or -1. */
static int slow(const char *p, size_t n, msgpack_sbuffer *out, json_t **root)
{
	char err[300];
	msgpack_packer pk;
	sbuf scratch;
	json_t *o = cli_json_parse(p, n, err, sizeof err);
	int rc;
	*root = NULL;
	if (!o)
		return -1;
	if (!json_is_object(o)) {
		json_decref(o);
		return -1;
	}
	sb_init(&scratch);
	msgpack_sbuffer_clear(out);
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	rc = cli_pack_json(&pk, o, &scratch, err, sizeof err);
	sb_free(&scratch);
	if (rc < 0) {
		json_decref(o);
		return -1;
	}
	*root = o;
	return 0;
}

/* Run both paths on one text. Returns what the fast path returned; fails
 * the test if the fast path accepted something the jansson path gives
 * differently. */
static int compare(const char *p, size_t n)
{
	msgpack_sbuffer fast, ref, one;
	cli_fj_member mem[CLI_FJ_MEMBERS_MAX];
	size_t nm = 0, i = 0;
	sbuf scratch;
	json_t *root, *v;
	const char *k;
	int frc, src, rc;

	msgpack_sbuffer_init(&fast);
	msgpack_sbuffer_init(&ref);
	msgpack_sbuffer_init(&one);
	sb_init(&scratch);
	frc = cli_fast_object(p, n, &fast, &scratch, mem, &nm);
	src = slow(p, n, &ref, &root);
	if (frc == 0) {
		if (src != 0)
			fprintf(stderr, "fast path accepted: %.*s\n", (int)n,
			        p);
		th_assert_seeded(src == 0);
		th_assert_seeded(fast.size == ref.size);
		th_assert_seeded(!memcmp(fast.data, ref.data, ref.size));
		/* Each member span is that member's own encoding. */
		th_assert_seeded(nm == json_object_size(root));
		json_object_foreach(root, k, v)
		{
			msgpack_packer pk;
			sbuf sc;
			char err[100];
			th_assert_seeded(mem[i].klen == strlen(k));
			th_assert_seeded(!memcmp(fast.data + mem[i].koff, k,
			                         mem[i].klen));
			msgpack_sbuffer_clear(&one);
			msgpack_packer_init(&pk, &one, msgpack_sbuffer_write);
			sb_init(&sc);
			/* (th_assert_seeded evaluates its argument twice) */
			rc = cli_pack_json(&pk, v, &sc, err, sizeof err);
			sb_free(&sc);
			th_assert_seeded(rc == 0);
			if (mem[i].vlen != one.size)
				fprintf(stderr, "member %zu of: %.*s\n", i,
				        (int)n, p);
			th_assert_seeded(mem[i].vlen == one.size);
			th_assert_seeded(!memcmp(fast.data + mem[i].voff,
			                         one.data, one.size));
			i++;
		}
	}
	json_decref(root);
	msgpack_sbuffer_destroy(&fast);
	msgpack_sbuffer_destroy(&ref);
	msgpack_sbuffer_destroy(&one);
	sb_free(&scratch);
	return frc;
}

static int compare_s(const char *s)
{
	return compare(s, strlen(s));
}

static void test_tools_convert__fast_path_accepts_usual_lines(void **state)
{
	static const char *ok[] = {
	        "{}",
	        " { } ",
	        "{\"a\":1}",
	        "{\"table\":\"hearings\",\"key\":\"H1\",\"value\":{\"id\":"
	        "\"H1\",\"congress\":118,\"n\":-5,\"x\":1.5,\"t\":true,"
	        "\"f\":false,\"z\":null}}",
	        "{\"s\":\"quote \\\" slash \\\\ \\/ \\b\\f\\n\\r\\t\"}",
	        "{\"u\":\"\\u00e9\\u4e2d\\ud83d\\ude00\"}",
	        "{\"u\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}",
	        "{\"nul\":\"a\\u0000b\"}",
	        "{\"a\":[1,[2,[3]],{\"b\":[]}],\"e\":{}}",
	        "{\"big\":9223372036854775807,\"small\":-9223372036854775808}",
	        "{\"r\":1e10,\"q\":-0.0,\"w\":2.5E-3,\"zero\":-0}",
	        "{\"a\":1}\r",
	        "{\"k\":\"0123456789012345678901234567890123456789\"}",
	};
	static const size_t lens[] = {31, 32, 255, 256, 65535, 65536, 70000};
	sbuf b;
	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		if (compare_s(ok[i]) != 0)
			fprintf(stderr, "declined: %s\n", ok[i]);
		assert_int_equal(compare_s(ok[i]), 0);
	}
	/* Every str header size, in a key and in a value. */
	sb_init(&b);
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		b.len = 0;
		sb_puts(&b, "{\"");
		for (size_t j = 0; j < lens[i]; j++)
			sb_putc(&b, (char)('a' + j % 26));
		sb_puts(&b, "\":\"");
		for (size_t j = 0; j < lens[i]; j++)
			sb_puts(&b, j % 7 ? "x" : "\xc3\xa9");
		sb_puts(&b, "\"}");
		assert_int_equal(compare(b.p, b.len), 0);
	}
	sb_free(&b);
}

static void
test_tools_convert__fast_path_declines_what_it_cannot_copy(void **state)
{
	static const char *no[] = {
	        "",
	        "[1]",
	        "\"s\"",
	        "{\"a\":1,\"a\":2}",             /* duplicate member */
	        "{\"v\":{\"base64\":\"AA==\"}}", /* bin */
	        "{\"s\":\"\\ud800\"}",           /* lone surrogate */
	        "{\"s\":\"\\udc00x\"}",
	        "{\"k\\u0000\":1}", /* NUL in a key */
	        "{\"i\":9223372036854775808}",
	        "{\"r\":1e999}",
	        "{\"a\":01}",
	        "{\"a\":1.}",
	        "{\"a\":.5}",
	        "{\"a\":+1}",
	        "{\"a\":tru}",
	        "{\"a\":1} x",
	        "{\"a\":1,}",
	        "{\"s\":\"\x01\"}",
	        "{\"s\":\"\xc3\x28\"}",     /* invalid UTF-8 */
	        "{\"s\":\"\xed\xa0\x80\"}", /* a surrogate in UTF-8 */
	        "{\"s\":\"abc",
	        "{\"s\":\"\\x\"}",
	};
	(void)state;
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		if (compare_s(no[i]) != -1)
			fprintf(stderr, "accepted: %s\n", no[i]);
		assert_int_equal(compare_s(no[i]), -1);
	}
}

/* ---- random JSON ------------------------------------------------------------
 */

static void rnd_ws(uint64_t *s, sbuf *b)
{
	static const char ws[] = " \t\r\n";
	while (th_below(s, 4) == 0)
		sb_putc(b, ws[th_below(s, 4)]);
}

static void rnd_string(uint64_t *s, sbuf *b)
{
	static const char *pieces[] = {
	        "a", "Z", "hearing", " ", "\\\"", "\\\\", "\\/", "\\n", "\\t",
	        "\\u00e9", "\\u4E2D", "\\ud83d\\ude00", "\xc3\xa9",
	        "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\\u0000", "0", "-",
	        /* rarely: what jansson refuses */
	        "\x01", "\xc3", "\\ud800", "\\q"};
	size_t n = th_below(s, 8);
	sb_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		size_t np = sizeof pieces / sizeof pieces[0];
		size_t k = th_below(s, 100) < 97 ? th_below(s, np - 4)
		                                 : th_below(s, np);
		sb_puts(b, pieces[k]);
	}
	sb_putc(b, '"');
}

static void rnd_number(uint64_t *s, sbuf *b)
{
	switch (th_below(s, 9)) {
	case 0:
		sb_printf(b, "%d", (int)th_below(s, 200) - 100);
		break;
	case 1:
		sb_printf(b, "%lld", (long long)th_rand(s));
		break;
	case 2:
		sb_printf(b, "%llu", (unsigned long long)th_rand(s));
		break;
	case 3:
		sb_printf(b, "%.17g", (double)(int64_t)th_rand(s) / 1e9);
		break;
	case 4:
		sb_printf(b, "%de%d", (int)th_below(s, 1000),
		          (int)th_below(s, 700) - 350);
		break;
	case 5:
		sb_printf(b, "-0.%03d", (int)th_below(s, 1000));
		break;
	case 6:
		sb_puts(b, th_below(s, 2) ? "-0" : "0");
		break;
	case 7:
		sb_printf(b, "%d.5E+%d", (int)th_below(s, 10),
		          (int)th_below(s, 20));
		break;
	default:
		sb_puts(b, th_below(s, 2) ? "012" : "1.e5"); /* invalid */
	}
}

static void rnd_value(uint64_t *s, sbuf *b, int depth);

static void rnd_object(uint64_t *s, sbuf *b, int depth)
{
	static const char *keys[] = {"id",    "title", "k",     "base64",
	                             "table", "key",   "value", "x"};
	size_t n = th_below(s, depth > 3 ? 2 : 6);
	sb_putc(b, '{');
	rnd_ws(s, b);
	for (size_t i = 0; i < n; i++) {
		if (i) {
			sb_putc(b, ',');
			rnd_ws(s, b);
		}
		if (th_below(s, 3))
			sb_printf(b, "\"%s%s\"", keys[th_below(s, 8)],
			          th_below(s, 3) ? "" : "2");
		else
			rnd_string(s, b);
		rnd_ws(s, b);
		sb_putc(b, ':');
		rnd_ws(s, b);
		rnd_value(s, b, depth + 1);
		rnd_ws(s, b);
	}
	sb_putc(b, '}');
}

static void rnd_value(uint64_t *s, sbuf *b, int depth)
{
	switch (th_below(s, depth > 4 ? 6 : 8)) {
	case 0:
		rnd_string(s, b);
		break;
	case 1:
	case 2:
		rnd_number(s, b);
		break;
	case 3:
		sb_puts(b, "true");
		break;
	case 4:
		sb_puts(b, th_below(s, 2) ? "false" : "null");
		break;
	case 5:
		if (th_below(s, 4) == 0) {
			sb_puts(b, "{\"base64\":\"aGk=\"}");
			break;
		}
		rnd_string(s, b);
		break;
	case 6: {
		size_t n = th_below(s, 5);
		sb_putc(b, '[');
		for (size_t i = 0; i < n; i++) {
			if (i)
				sb_putc(b, ',');
			rnd_ws(s, b);
			rnd_value(s, b, depth + 1);
		}
		sb_putc(b, ']');
		break;
	}
	default:
		rnd_object(s, b, depth);
	}
}

static void
test_tools_convert__fast_path_matches_jansson_on_random_objects(void **state)
{
	uint64_t s = th_seed(20240501), accepted = 0;
	long iters = th_env_long("LB_TEST_STEPS", 20000);
	sbuf b;
	(void)state;
	sb_init(&b);
	for (long i = 0; i < iters; i++) {
		b.len = 0;
		rnd_ws(&s, &b);
		rnd_object(&s, &b, 0);
		rnd_ws(&s, &b);
		accepted += compare(b.p, b.len) == 0;
	}
	/* Most random objects are plain enough for the fast path. */
	th_assert_seeded(accepted > (uint64_t)iters / 4);
	sb_free(&b);
}

static void
test_tools_convert__fast_path_never_accepts_a_damaged_line(void **state)
{
	uint64_t s = th_seed(77);
	long iters = th_env_long("LB_TEST_STEPS", 20000);
	sbuf b;
	(void)state;
	sb_init(&b);
	for (long i = 0; i < iters; i++) {
		size_t at;
		b.len = 0;
		rnd_object(&s, &b, 0);
		at = th_below(&s, b.len);
		switch (th_below(&s, 3)) {
		case 0: /* flip a byte */
			b.p[at] = (char)th_rand(&s);
			break;
		case 1: /* cut */
			b.len = at;
			break;
		default: /* drop one byte */
			memmove(b.p + at, b.p + at + 1, b.len - at - 1);
			b.len--;
		}
		compare(b.p, b.len); /* asserts internally */
	}
	sb_free(&b);
}

/* msgpack -> JSON text -> msgpack gives the same bytes, and the text is
 * stable: what export then import relies on. */
static void test_tools_convert__msgpack_json_round_trip(void **state)
{
	uint64_t s = th_seed(99);
	long iters = th_env_long("LB_TEST_STEPS", 20000);
	sbuf b, text, text2;
	(void)state;
	sb_init(&b);
	sb_init(&text);
	sb_init(&text2);
	for (long i = 0; i < iters; i++) {
		msgpack_sbuffer mp, mp2;
		json_t *root;
		b.len = 0;
		rnd_object(&s, &b, 0);
		msgpack_sbuffer_init(&mp);
		msgpack_sbuffer_init(&mp2);
		if (slow(b.p, b.len, &mp, &root) == 0) {
			int rc1, rc2, rc3;
			text.len = text2.len = 0;
			rc1 = jw_msgpack(&text, mp.data, mp.size);
			json_decref(root);
			rc2 = slow(text.p, text.len, &mp2, &root);
			th_assert_seeded(rc1 == 0 && rc2 == 0);
			th_assert_seeded(mp.size == mp2.size &&
			                 !memcmp(mp.data, mp2.data, mp.size));
			rc3 = jw_msgpack(&text2, mp2.data, mp2.size);
			th_assert_seeded(rc3 == 0);
			th_assert_seeded(text.len == text2.len &&
			                 !memcmp(text.p, text2.p, text.len));
		}
		json_decref(root);
		msgpack_sbuffer_destroy(&mp);
		msgpack_sbuffer_destroy(&mp2);
	}
	sb_free(&b);
	sb_free(&text);
	sb_free(&text2);
}

static void test_tools_convert__msgpack_to_json_edges(void **state)
{
	static const struct {
		const char *mp;
		size_t n;
		const char *json; /* NULL: not one well-formed value */
	} cases[] = {
	        {"\xc0", 1, "null"},
	        {"\xc3", 1, "true"},
	        {"\xcb\x3f\xb9\x99\x99\x99\x99\x99\x9a", 9, "0.1"},
	        {"\xcb\x40\x00\x00\x00\x00\x00\x00\x00", 9, "2.0"},
	        {"\xca\x3f\xc0\x00\x00", 5, "1.5"},
	        {"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9,
	         "18446744073709551615"},
	        {"\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9,
	         "-9223372036854775808"},
	        {"\xd0\xff", 2, "-1"},
	        {"\xc4\x02\xff\x00", 4, "{\"base64\":\"/wA=\"}"},
	        {"\xa2\xc3\x28", 3, "{\"base64\":\"wyg=\"}"},
	        {"\x81\x01\x02", 3, "{\"1\":2}"},
	        {"\x81\xa1\x0a\x90", 4, "{\"\\n\":[]}"},
	        {"\xd4\x01\x05", 3, "{\"ext\":1,\"base64\":\"BQ==\"}"},
	        {"\x92\x01", 2, NULL},
	        {"\x01\x02", 2, NULL},
	        {"\xc1", 1, NULL},
	        {"\xdd\xff\xff\xff\xff", 5, NULL},
	        {"", 0, NULL},
	};
	sbuf b;
	(void)state;
	sb_init(&b);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		b.len = 0;
		if (!cases[i].json) {
			assert_int_equal(
			        jw_msgpack(&b, cases[i].mp, cases[i].n), -1);
			assert_int_equal(b.len, 0);
			continue;
		}
		assert_int_equal(jw_msgpack(&b, cases[i].mp, cases[i].n), 0);
		assert_string_equal(sb_str(&b), cases[i].json);
	}
	sb_free(&b);
}

static void test_tools_convert__opaque_values_and_keys(void **state)
{
	char err[200];
	sbuf out;
	json_t *v;
	(void)state;
	sb_init(&out);
	/* A string is its bytes; {"base64"} the decoded bytes; else JSON. */
	v = json_string("caf\xc3\xa9");
	assert_int_equal(cli_opaque_json(v, &out, err, sizeof err), 0);
	assert_int_equal(out.len, 5);
	assert_memory_equal(out.p, "caf\xc3\xa9", 5);
	json_decref(v);
	v = json_pack("{s:s}", "base64", "AP8=");
	assert_int_equal(cli_opaque_json(v, &out, err, sizeof err), 0);
	assert_int_equal(out.len, 2);
	assert_memory_equal(out.p, "\x00\xff", 2);
	json_decref(v);
	v = json_pack("{s:i,s:[b]}", "a", 1, "b", 1);
	assert_int_equal(cli_opaque_json(v, &out, err, sizeof err), 0);
	assert_string_equal(sb_str(&out), "{\"a\":1,\"b\":[true]}");
	json_decref(v);
	v = json_pack("{s:s}", "base64", "A");
	assert_int_equal(cli_opaque_json(v, &out, err, sizeof err), -1);
	json_decref(v);
	/* Keys: string, integer as decimal text, base64; nothing else. */
	v = json_integer(-42);
	assert_int_equal(cli_key_json(v, &out, err, sizeof err), 0);
	assert_string_equal(sb_str(&out), "-42");
	json_decref(v);
	v = json_string("");
	assert_int_equal(cli_key_json(v, &out, err, sizeof err), -1);
	json_decref(v);
	v = json_real(1.5);
	assert_int_equal(cli_key_json(v, &out, err, sizeof err), -1);
	json_decref(v);
	sb_free(&out);
}

static void test_tools_convert__base64_and_utf8(void **state)
{
	uint64_t s = th_seed(5);
	sbuf enc, dec;
	unsigned char raw[64];
	(void)state;
	sb_init(&enc);
	sb_init(&dec);
	for (int i = 0; i < 2000; i++) {
		size_t n = th_below(&s, sizeof raw);
		for (size_t j = 0; j < n; j++)
			raw[j] = (unsigned char)th_rand(&s);
		int rc;
		enc.len = dec.len = 0;
		cli_b64_encode(&enc, raw, n);
		th_assert_seeded(enc.len == (n + 2) / 3 * 4);
		rc = cli_b64_decode(enc.p, enc.len, &dec);
		th_assert_seeded(rc == 0);
		th_assert_seeded(dec.len == n && !memcmp(dec.p, raw, n));
	}
	assert_int_equal(cli_b64_decode("A===", 4, &dec), -1);
	assert_int_equal(cli_b64_decode("AB=C", 4, &dec), -1);
	assert_int_equal(cli_b64_decode("AB", 2, &dec), -1);
	assert_int_equal(cli_b64_decode("A*==", 4, &dec), -1);
	assert_true(cli_utf8_valid("", 0));
	assert_true(cli_utf8_valid("\xf4\x8f\xbf\xbf", 4));
	assert_false(cli_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(cli_utf8_valid("\xc0\xaf", 2));         /* overlong */
	assert_false(cli_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
	assert_false(cli_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(cli_utf8_valid("\xe4\xb8", 2));         /* truncated */
	sb_free(&enc);
	sb_free(&dec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(
	                test_tools_convert__fast_path_accepts_usual_lines),
	        cmocka_unit_test(
	                test_tools_convert__fast_path_declines_what_it_cannot_copy),
	        cmocka_unit_test(
	                test_tools_convert__fast_path_matches_jansson_on_random_objects),
	        cmocka_unit_test(
	                test_tools_convert__fast_path_never_accepts_a_damaged_line),
	        cmocka_unit_test(test_tools_convert__msgpack_json_round_trip),
	        cmocka_unit_test(test_tools_convert__msgpack_to_json_edges),
	        cmocka_unit_test(test_tools_convert__opaque_values_and_keys),
	        cmocka_unit_test(test_tools_convert__base64_and_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
