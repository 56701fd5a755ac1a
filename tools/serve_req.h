/* SPDX-License-Identifier: MIT */
/*
 * serve_req.h: the request decoding of `logbook serve` (serve_req.c).
 *
 * Pure code: no sockets, no database, no libmicrohttpd. The server hands
 * it the raw (still percent-encoded) path and query arguments of a request
 * and gets back either a fully validated request or the HTTP status and
 * the name of the parameter at fault. tests/fuzz/serve_req.c fuzzes it.
 */
#ifndef LB_TOOLS_SERVE_REQ_H
#define LB_TOOLS_SERVE_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "logbook.h"

/* What a request asks for. */
typedef enum srv_ep {
	SRV_PAGE = 1, /* the page: / or /index.html */
	SRV_LOG,      /* /api/log */
	SRV_BATCH,    /* /api/batch/N */
	SRV_HISTORY,  /* /api/history/TABLE/KEY */
	SRV_GET,      /* /api/get/TABLE/KEY */
	SRV_DIFF,     /* /api/diff */
	SRV_TABLES,   /* /api/tables */
	SRV_STAT,     /* /api/stat */
	SRV_VERIFY,   /* /api/verify */
	SRV_ROLLBACK, /* /api/rollback/N (a dry run) */
	SRV_CHANGES   /* /api/changes (server-sent events) */
} srv_ep;

/* Bounds of the paginated answers (docs/SERVE.md). */
enum {
	SRV_LOG_LIMIT = 100,      /* /api/log default */
	SRV_LOG_LIMIT_MAX = 1000, /* /api/log most */
	SRV_BATCH_LIMIT = 1000,   /* /api/batch records per page, default */
	SRV_BATCH_LIMIT_MAX = 10000,
	SRV_HISTORY_LIMIT = 100, /* /api/history changes, default */
	SRV_HISTORY_LIMIT_MAX = 1000,
	SRV_DIFF_LIMIT = 1000, /* /api/diff keys, default */
	SRV_DIFF_LIMIT_MAX = 10000,
	SRV_DIFF_SPAN_MAX = 1000, /* /api/diff: to - from, most batches */
	SRV_ARGS_MAX = 16,        /* query arguments per request */
	SRV_PATH_MAX = 2048       /* raw path bytes */
};

/* One query argument as it came: name and value still percent-encoded
 * (value NULL when the argument had no '='). */
typedef struct srv_arg {
	const char *name;
	const char *value;
} srv_arg;

typedef struct srv_req {
	srv_ep ep;
	char table[LB_TABLE_NAME_MAX + 1];
	unsigned char key[LB_KEY_MAX];
	size_t klen;
	uint64_t id; /* SRV_BATCH, SRV_ROLLBACK: the batch */
	uint64_t limit, offset;
	uint64_t since, before, as_of, from, to;
	int has_since, has_before, has_as_of, has_from, has_to;
	int cascade, force, replay;
	int has_token; /* the query had token= (only the page may) */
} srv_req;

/* Why a request was refused: HTTP status, the parameter at fault ("path"
 * for the path itself) and a message. */
typedef struct srv_err {
	int status;
	char param[32];
	char message[200];
} srv_err;

/*
 * Percent-decode s[0..n) into out (at most cap bytes): %XX (hex, either
 * case) is byte XX; with plus_space, '+' is a space. Returns the decoded
 * length, -1 for a malformed escape ('%' not followed by two hex digits),
 * -2 if the result would not fit in cap bytes.
 */
long srv_unescape(const char *s, size_t n, int plus_space, unsigned char *out,
                  size_t cap);

/*
 * Decode and validate a GET request: path as received (percent-encoded,
 * without the query), args its query arguments. Every parameter is checked
 * (numbers, ranges, table names, key lengths, escapes, unknown or repeated
 * arguments). Returns 0 with *r filled, or the HTTP status (400 or 404)
 * with *e filled.
 */
int srv_req_parse(const char *path, const srv_arg *args, size_t nargs,
                  srv_req *r, srv_err *e);

#endif
