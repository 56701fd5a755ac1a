/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the batch header decoder (wal/header.c, FORMAT.md §5).
 *
 * Properties: a refused header gets LB_ECORRUPT or LB_EVERSION with a
 * detail and leaves nothing to free; an accepted one is in msgpack's
 * shortest forms and within every §5 invariant, so the encoder writes it
 * back byte for byte, and its chain hash can be computed.
 */
#include <string.h>

#include "_fuzz.h"
#include "wal/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lb_wal_hdr h;
	lb_buf out;
	uint8_t hash[32];
	int rc = lb__hdr_decode(data, size, &h);
	if (rc != 0) {
		FUZZ_CHECK(rc == LB_ECORRUPT || rc == LB_EVERSION ||
		           rc == LB_ENOMEM);
		FUZZ_CHECK(lb_errmsg()[0] != 0);
		FUZZ_CHECK(h.seg_hashes == NULL);
		return 0;
	}
	FUZZ_CHECK(h.id >= 1);
	FUZZ_CHECK(h.segments >= 1 && h.segments <= LB__HDR_SEGMENTS_MAX);
	FUZZ_CHECK(strlen(h.label) <= LB_LABEL_MAX);
	lb__buf_init(&out);
	rc = lb__hdr_encode(&h, &out);
	if (rc != 0)
		fprintf(stderr, "decoded but not encodable: %s\n", lb_errmsg());
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(out.len == size && !memcmp(out.data, data, size));
	FUZZ_CHECK(lb__hdr_hash(&h, hash) == 0);
	lb__buf_free(&out);
	lb__hdr_free(&h);
	return 0;
}
