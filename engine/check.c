/* SPDX-License-Identifier: MIT */
/*
 * check.c: lb_batch_check(), a value checked against its table's schema
 * without being written.
 *
 * The check is the one an op makes (validate.c's lb__validate_value), so
 * its issues are word for word those that lb_put() of the value would
 * record. The issues go to the caller's result, never to the batch: the
 * batch's own issue list is set aside during the check and put back after
 * it, so the batch's outcome does not change.
 */
#include <pthread.h>
#include <string.h>

#include "engine/internal.h"

int lb_batch_check(lb_batch *b, const char *table, const void *key, size_t klen,
                   const void *val, size_t vlen, lb_result *res)
{
	lb_table *t;
	lb_issue *own;
	size_t nown, capown, totown, total;
	int rc;

	if (res)
		memset(res, 0, sizeof *res);
	if (!b)
		return lb__fail(LB_EINVAL, "batch is NULL");
	if (!pthread_equal(b->owner, pthread_self()))
		return lb__fail(LB_EINVAL,
		                "batch %llu used from a thread that did not "
		                "begin it",
		                (unsigned long long)b->id);
	if (b->poisoned)
		return lb__fail(
		        b->poisoned, "batch %llu failed earlier (%s); abort it",
		        (unsigned long long)b->id, lb_strerror(b->poisoned));
	if ((rc = lb__key_args(table, key, klen)) < 0)
		return rc;
	if (!val && vlen)
		return lb__fail(LB_EINVAL, "table %s: value is NULL", table);
	if (vlen > LB_VALUE_MAX)
		return lb__fail(LB_ETOOBIG,
		                "table %s: value of %zu bytes (max %u)", table,
		                vlen, (unsigned)LB_VALUE_MAX);
	if (!(t = lb__table_find(b->db, table)))
		return lb__no_table(b->db, table);
	if (!t->schema.has_schema)
		return 0;
	own = b->issues;
	nown = b->nissues;
	capown = b->icap;
	totown = b->nissues_total;
	b->issues = NULL;
	b->nissues = b->icap = b->nissues_total = 0;
	rc = lb__validate_value(b, t, key, klen, val, vlen);
	total = b->nissues_total;
	lb__batch_issues_to(b, res);
	b->issues = own;
	b->nissues = nown;
	b->icap = capown;
	b->nissues_total = totown;
	if (res) {
		res->rc = rc;
		res->nissues_total = total;
	}
	return rc;
}
