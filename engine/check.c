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
	if ((rc = lb__op_args(b, table, key, klen, val, vlen, &t)) < 0)
		return rc;
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
