/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the request decoding of `logbook serve` (tools/serve_req.c).
 *
 * The input is one request target, "PATH?QUERY", as a client may send it;
 * it is split the way the server's HTTP layer splits it (at the first '?',
 * then at '&' and at the first '=' of each argument, with no unescaping)
 * and handed to srv_req_parse(). Properties:
 *  - every request is either accepted or refused with a 4xx status, a
 *    parameter name and a message, all NUL-terminated within their
 *    buffers;
 *  - an accepted request is within its bounds: a table name of 1..64
 *    characters of [A-Za-z0-9_.-], a key of 1..LB_KEY_MAX bytes, a limit
 *    within its endpoint's range, a diff of at most SRV_DIFF_SPAN_MAX
 *    batches, never both cascade and force;
 *  - srv_unescape() of any bytes stays within its output buffer, never
 *    grows the text, and decodes what a plain percent-encoder wrote back
 *    to the same bytes.
 */
#include <string.h>

#include "_fuzz.h"
#include "tools/serve_req.h"

static void check_ok(const srv_req *r)
{
	size_t tl = strlen(r->table);
	FUZZ_CHECK(r->ep >= SRV_PAGE && r->ep <= SRV_CHANGES);
	if (r->ep == SRV_HISTORY || r->ep == SRV_GET) {
		FUZZ_CHECK(tl >= 1 && tl <= LB_TABLE_NAME_MAX);
		for (size_t i = 0; i < tl; i++)
			FUZZ_CHECK(strchr("abcdefghijklmnopqrstuvwxyz"
			                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			                  "_.-",
			                  r->table[i]) != NULL);
		FUZZ_CHECK(r->klen >= 1 && r->klen <= LB_KEY_MAX);
	} else {
		FUZZ_CHECK(tl == 0 && r->klen == 0);
	}
	if (r->ep == SRV_BATCH || r->ep == SRV_ROLLBACK)
		FUZZ_CHECK(r->id >= 1);
	if (r->ep == SRV_LOG)
		FUZZ_CHECK(r->limit >= 1 && r->limit <= SRV_LOG_LIMIT_MAX);
	if (r->ep == SRV_BATCH)
		FUZZ_CHECK(r->limit >= 1 && r->limit <= SRV_BATCH_LIMIT_MAX);
	if (r->ep == SRV_HISTORY)
		FUZZ_CHECK(r->limit >= 1 && r->limit <= SRV_HISTORY_LIMIT_MAX);
	if (r->ep == SRV_DIFF) {
		FUZZ_CHECK(r->limit >= 1 && r->limit <= SRV_DIFF_LIMIT_MAX);
		FUZZ_CHECK(r->has_from && r->has_to && r->to > r->from);
		FUZZ_CHECK(r->to - r->from <= SRV_DIFF_SPAN_MAX);
	}
	FUZZ_CHECK(!(r->cascade && r->force));
	FUZZ_CHECK(!r->has_token || r->ep == SRV_PAGE);
}

static void check_unescape(const char *p, size_t n)
{
	unsigned char out[256], back[256 * 3];
	char enc[256 * 3 + 1];
	size_t cap = n < sizeof out ? n : sizeof out;
	long got = srv_unescape(p, n, 1, out, cap);
	FUZZ_CHECK(got >= -2 && got <= (long)cap);
	if (got < 0)
		return;
	/* encode the decoded bytes, decode again: the same bytes */
	size_t e = 0;
	for (long i = 0; i < got; i++) {
		static const char hex[] = "0123456789ABCDEF";
		enc[e++] = '%';
		enc[e++] = hex[out[i] >> 4];
		enc[e++] = hex[out[i] & 15];
	}
	enc[e] = '\0';
	long again = srv_unescape(enc, e, 1, back, sizeof back);
	FUZZ_CHECK(again == got && !memcmp(back, out, (size_t)got));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *q, *path;
	srv_arg args[SRV_ARGS_MAX + 2];
	size_t nargs = 0;
	srv_req r;
	srv_err e;
	int rc;

	if (size > 8192)
		return 0;
	buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0'; /* the HTTP layer hands over C strings */
	check_unescape(buf, strlen(buf));
	path = buf;
	q = strchr(buf, '?');
	if (q) {
		char *a = q + 1;
		*q = '\0';
		while (a && nargs < SRV_ARGS_MAX + 2) {
			char *amp = strchr(a, '&'), *eq;
			if (amp)
				*amp = '\0';
			eq = strchr(a, '=');
			if (eq)
				*eq = '\0';
			args[nargs].name = a;
			args[nargs].value = eq ? eq + 1 : NULL;
			nargs++;
			a = amp ? amp + 1 : NULL;
		}
	}
	rc = srv_req_parse(path, args, nargs, &r, &e);
	if (rc == 0) {
		check_ok(&r);
	} else {
		FUZZ_CHECK(rc == e.status);
		FUZZ_CHECK(rc >= 400 && rc < 500);
		FUZZ_CHECK(memchr(e.param, '\0', sizeof e.param) != NULL);
		FUZZ_CHECK(e.param[0] != '\0');
		FUZZ_CHECK(memchr(e.message, '\0', sizeof e.message) != NULL);
		FUZZ_CHECK(e.message[0] != '\0');
	}
	free(buf);
	return 0;
}
