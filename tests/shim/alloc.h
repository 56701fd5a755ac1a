/* SPDX-License-Identifier: MIT */
/*
 * alloc.h: the allocation-failure hook of tests/shim/alloc.c.
 *
 * The test that uses it links a copy of the library whose calls to the
 * allocating functions of the C library and of its dependencies are renamed
 * to lbt_NAME (objcopy --redefine-sym, see the Makefile: BUILD/tests/
 * liblogbook-alloc.a), so these hooks see the library's own calls and no
 * other: not the test's, not cmocka's, not those made inside LMDB or libc.
 * The same works in every build, sanitizers included (ASan's allocator is
 * still the one that allocates: the hooks call the real functions).
 *
 * Calls are counted only on a thread that armed the hook: lbt_alloc_arm()
 * numbers the calling thread's allocating calls from 1; call `at` fails
 * (and, sticky, every later one). Every object the hooked calls return is
 * tracked until the library frees or closes it, on any thread, so a test
 * can tell that nothing is left after its handles are closed.
 */
#ifndef LB_TESTS_SHIM_ALLOC_H
#define LB_TESTS_SHIM_ALLOC_H

#include <stddef.h>
#include <stdio.h>

/* Count the calling thread's allocating calls from now on, from 1; call
 * `at` (0: none) fails, and with sticky every call after it too. */
void lbt_alloc_arm(long at, int sticky);
/* Stop counting and failing (on every thread). */
void lbt_alloc_disarm(void);
/* Calls counted since the last arm, and failures injected since then. */
long lbt_alloc_calls(void);
long lbt_alloc_fired(void);
/* The first failure injected since the last arm: the hooked function's
 * name and where it was called from, as "malloc at FILE+0xOFFSET" (FILE
 * the executable: addr2line -fe FILE 0xOFFSET names the line). "" if
 * none. */
const char *lbt_alloc_fired_where(void);
/* Objects the library holds (allocated through a hook, not yet freed). */
size_t lbt_alloc_live(void);
/* Print up to max of them, with the site that allocated each. */
void lbt_alloc_live_print(FILE *f, size_t max);
/* Distinct call sites (return addresses) counted so far, and failures
 * injected so far, since the start of the process. */
size_t lbt_alloc_sites(void);
long lbt_alloc_fired_total(void);
/* Print every site counted: function, address, calls, failures injected. */
void lbt_alloc_sites_print(FILE *f);
/* Free memory the library returned to the caller (lb_get's value): the
 * tracking must see it go. */
void lbt_free(void *p);

#endif
