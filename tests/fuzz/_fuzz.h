/* SPDX-License-Identifier: MIT */
/*
 * _fuzz.h: shared by the fuzz targets (the files of tests/fuzz/).
 *
 * Each target defines LLVMFuzzerTestOneInput() (and may define
 * LLVMFuzzerInitialize()). Built with clang -fsanitize=fuzzer it is a
 * libFuzzer binary (`make fuzz`); linked with _driver.c it replays the
 * inputs kept in tests/corpus/<target>/ (`make test`, `make fuzz-replay`).
 *
 * A target checks properties, not only the absence of crashes; a broken
 * property prints what broke and aborts, which both libFuzzer and the
 * driver report as a failure with the input that caused it.
 */
#ifndef LB_TESTS_FUZZ_H
#define LB_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: property failed: %s\n",        \
			        __FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

#endif
