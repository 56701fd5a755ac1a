/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the CLI's JSON import path for one input line
 * (tools/fastjson.c, tools/json.c).
 *
 * `logbook import` turns each line into msgpack by a fast path when it can,
 * else through jansson. Properties:
 *  - whatever the fast path accepts, the jansson path accepts too and
 *    packs to the very same bytes, and each member span the fast path
 *    reports is that member's own encoding;
 *  - a value the jansson path packs, rendered back as JSON by the export
 *    writer, packs again to the same bytes (export | import is exact);
 *  - the opaque-value and key conversions never crash.
 */
#include <string.h>

#include "_fuzz.h"
#include "tools/cli.h"

/* jansson path: parse, pack. 0, or -1 if refused. */
static int slow(const char *p, size_t n, msgpack_sbuffer *out, json_t **root)
{
	char err[300];
	msgpack_packer pk;
	sbuf scratch;
	json_t *o = cli_json_parse(p, n, err, sizeof err);
	int rc;
	*root = o;
	if (!o)
		return -1;
	sb_init(&scratch);
	msgpack_sbuffer_clear(out);
	msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
	rc = cli_pack_json(&pk, o, &scratch, err, sizeof err);
	sb_free(&scratch);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	msgpack_sbuffer fast, ref, again;
	cli_fj_member mem[CLI_FJ_MEMBERS_MAX];
	size_t nm = 0;
	sbuf scratch, text, tmp;
	json_t *root = NULL, *root2 = NULL;
	char err[300];
	int frc, src;

	msgpack_sbuffer_init(&fast);
	msgpack_sbuffer_init(&ref);
	msgpack_sbuffer_init(&again);
	sb_init(&scratch);
	sb_init(&text);
	sb_init(&tmp);

	frc = cli_fast_object(p, size, &fast, &scratch, mem, &nm);
	src = slow(p, size, &ref, &root);
	if (frc == 0) {
		FUZZ_CHECK(src == 0 && json_is_object(root));
		FUZZ_CHECK(fast.size == ref.size &&
		           !memcmp(fast.data, ref.data, ref.size));
		FUZZ_CHECK(nm == json_object_size(root));
		size_t i = 0;
		const char *k;
		json_t *v;
		json_object_foreach(root, k, v)
		{
			msgpack_sbuffer one;
			msgpack_packer pk;
			FUZZ_CHECK(i < nm);
			FUZZ_CHECK(mem[i].klen == strlen(k) &&
			           !memcmp(fast.data + mem[i].koff, k,
			                   mem[i].klen));
			msgpack_sbuffer_init(&one);
			msgpack_packer_init(&pk, &one, msgpack_sbuffer_write);
			tmp.len = 0;
			FUZZ_CHECK(cli_pack_json(&pk, v, &tmp, err,
			                         sizeof err) == 0);
			FUZZ_CHECK(mem[i].vlen == one.size &&
			           !memcmp(fast.data + mem[i].voff, one.data,
			                   one.size));
			msgpack_sbuffer_destroy(&one);
			i++;
		}
	}
	if (src == 0) {
		/* export, then import again */
		FUZZ_CHECK(jw_msgpack(&text, ref.data, ref.size) == 0);
		FUZZ_CHECK(slow(text.p, text.len, &again, &root2) == 0);
		FUZZ_CHECK(again.size == ref.size &&
		           !memcmp(again.data, ref.data, ref.size));
	}
	if (root) {
		tmp.len = 0;
		(void)cli_opaque_json(root, &tmp, err, sizeof err);
		tmp.len = 0;
		(void)cli_key_json(root, &tmp, err, sizeof err);
	}
	json_decref(root);
	json_decref(root2);
	msgpack_sbuffer_destroy(&fast);
	msgpack_sbuffer_destroy(&ref);
	msgpack_sbuffer_destroy(&again);
	sb_free(&scratch);
	sb_free(&text);
	sb_free(&tmp);
	return 0;
}
