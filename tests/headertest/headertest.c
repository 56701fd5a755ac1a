/* SPDX-License-Identifier: MIT */
/*
 * headertest.c: include/logbook.h must stand on its own. `make headertest`
 * compiles this file twice, as C99 with -pedantic and as C++11, warnings as
 * errors, with nothing but the header's own directory on the include path.
 * It includes no other header, so the header must bring what it uses.
 */
#include "logbook.h"
#include "logbook.h" /* the include guard must make a second include a no-op */

#ifdef __cplusplus
/*
 * Redeclaring a function with C linkage is an error when the header gave it
 * C++ linkage, so these fail to compile if the header's extern "C" block is
 * missing or does not cover them.
 */
extern "C" const char *lb_strerror(int rc);
extern "C" int lb_open(const char *dir, const lb_options *o, lb_db **db);
extern "C" int lb_batch_commit(lb_batch *b, lb_result *res);
extern "C" int lb_prune(lb_db *db, uint64_t before_batch);
#endif

/* Types and constants the header promises, used the way a program would. */
int headertest_use(void);

int headertest_use(void)
{
	lb_options o;
	lb_field f;
	lb_schema s;
	lb_result r;
	lb_batch_info info;
	lb_verify_report rep;
	lb_change c;
	static const char *const enum_values[] = {"A", "B"};
	int (*open_fn)(const char *, const lb_options *, lb_db **) = lb_open;
	const char *(*strerror_fn)(int) = lb_strerror;

	/* Members are set one by one, not by aggregate initializers, so that
	 * fields appended to these structs later do not break the test. */
	o.flags = LB_CREATE | LB_NOSYNC;
	o.compression = -1;
	o.segment_size = 0;
	o.map_size = (uint64_t)1 << 30;
	f.name = "title";
	f.type = LB_STR;
	f.flags = LB_REQUIRED;
	f.max_len = 200;
	f.ref = NULL;
	f.enum_values = enum_values;
	f.nenum = 2;
	f.pattern = "[A-Z].*";
	f.format = LB_FMT_NONE;
	f.min = 0;
	f.max = 1.5;
	f.has_min_max = LB_HAS_MIN | LB_HAS_MAX;
	f.flags |= LB_NULLABLE;
	s.fields = &f;
	s.nfields = 1;
	s.closed = 1;
	s.key_field = NULL;
	r.rc = LB_OK;
	r.issues = NULL;
	(void)open_fn;
	(void)strerror_fn;
	return (int)(sizeof(info.label) + sizeof(info.hash) +
	             sizeof(rep.detail) + sizeof(c) + sizeof(o) + s.nfields) +
	       r.rc + LB_VERSION_FULL + LB_KEY_MAX + LB_EEXIST + LB_OP_TABLE +
	       LB_CASCADE + LB_VERIFY_REPLAY + LB_FORMAT_VERSION + LB_FMT_DATE +
	       LB_FMT_DATETIME + LB_SCHEMA_ENUM_MAX + LB_SCHEMA_TEXT_MAX +
	       (int)LB_SCHEMA_BYTES_MAX;
}
