# SPDX-License-Identifier: MIT
# logbook: the one build (GNU make).
#
#   make [all]            library, pkg-config file, CLI, bench, examples
#   make test (= check)   all + header test + every test, then a summary
#   make run              build, then run the main job (see `run` below)
#   make python           the Python package, in place (docs/PYTHON.md)
#   make asan             the whole test suite under ASan+UBSan, in build-asan/
#   make headertest       include/logbook.h alone, as C99 and as C++11
#   make format           clang-format -i every C source
#   make format-check     fail if a C source is not formatted
#   make install          PREFIX (or prefix)=/usr/local, DESTDIR=
#   make uninstall        the same variables as install
#   make deps             install missing Debian packages (scripts/deps.sh)
#   make clean            remove build/ and build-asan/
#
# Variables: CC, CXX (header test), CFLAGS, CPPFLAGS, LDFLAGS are the
# user's and come after ours. BUILD=dir (default build) is where everything
# goes. SANITIZE=address,undefined builds with sanitizers. WERROR= turns
# -Werror off. V=1 prints commands and every test's output. LB_NO_DEPS=1
# never runs scripts/deps.sh.
#
# Sources are found by wildcard, so any subset of the tree builds:
#   wal/*.c engine/*.c        -> BUILD/liblogbook.a, BUILD/liblogbook.so
#   tests/D/N.c (D in TEST_DIRS)
#                             -> BUILD/tests/test_D_N (cmocka), linked with
#                                tests/helpers.c, tests/D/_*.c and the
#                                static library (files named _*.c are
#                                support code, not tests)
#   tools/*.c                 -> BUILD/logbook (the CLI); tests/tools/*.c
#                                also link tools/*.c but main.c
#   bench/*.c                 -> BUILD/logbook-bench
#   examples/N.c              -> BUILD/examples/N (against the shared library)
#   tests/D/*.sh (executable) -> run by `make test`

.DEFAULT_GOAL := all
MAKEFLAGS += --no-builtin-rules
.SUFFIXES:
.DELETE_ON_ERROR:

BUILD ?= build
V ?= 0
ifeq ($(V),1)
Q :=
else
Q := @
endif

PKG_CONFIG ?= pkg-config
CLANG_FORMAT ?= clang-format
INSTALL ?= install
AR ?= ar

# ---------------------------------------------------------------------------
# Dependencies. Before anything is compiled, check that the compilers and
# the libraries are there; if not, run scripts/deps.sh (apt-get) once, now,
# while the Makefile is read, so that the pkg-config queries below see the
# installed packages. Sub-makes inherit LB_DEPS_CHECKED and skip the check.
# Goals that compile nothing do not trigger it.
LB_NODEPS_GOALS := clean help deps uninstall format format-check
LB_DEPS_PROBE := command -v $(firstword $(CC)) && command -v $(firstword $(CXX)) \
	&& command -v $(PKG_CONFIG) && command -v python3 \
	&& $(PKG_CONFIG) --exists lmdb zlib libcrypto cmocka jansson sqlite3 libdeflate \
		libisal libmicrohttpd libnats \
	&& command -v nats-server \
	&& { $(PKG_CONFIG) --exists msgpack || $(PKG_CONFIG) --exists msgpack-c; } \
	&& /usr/bin/python3 -c 'import cffi, msgpack, pytest, setuptools, sysconfig, os; \
		assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")'
ifeq ($(LB_DEPS_CHECKED)$(LB_NO_DEPS),)
ifneq ($(filter-out $(LB_NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
LB_DEPS_FAILED := $(shell { $(LB_DEPS_PROBE); } >/dev/null 2>&1 || \
	bash scripts/deps.sh >&2 || echo failed)
ifneq ($(LB_DEPS_FAILED),)
$(error scripts/deps.sh could not install the build dependencies; install them by hand or set LB_NO_DEPS=1)
endif
endif
export LB_DEPS_CHECKED := 1
endif

pc_exists = $(shell $(PKG_CONFIG) --exists $(1) 2>/dev/null && echo y)
# pkg-config flags of $(1), or the fallback $(2) when it has no .pc file.
pc_cflags = $(if $(call pc_exists,$(1)),$(shell $(PKG_CONFIG) --cflags $(1)))
pc_libs = $(if $(call pc_exists,$(1)),$(shell $(PKG_CONFIG) --libs $(1)),$(2))

# msgpack-c's .pc is "msgpack" here (lib -lmsgpackc), "msgpack-c" elsewhere.
MSGPACK_PC := $(firstword $(foreach p,msgpack msgpack-c,$(if $(call pc_exists,$(p)),$(p))))

# The library's dependencies, then each program's.
DEP_CFLAGS := $(call pc_cflags,lmdb) $(call pc_cflags,libdeflate) \
	$(call pc_cflags,libisal) \
	$(call pc_cflags,zlib) $(call pc_cflags,$(MSGPACK_PC)) \
	$(call pc_cflags,libcrypto)
DEP_LIBS := $(call pc_libs,lmdb,-llmdb) $(call pc_libs,libdeflate,-ldeflate) \
	$(call pc_libs,libisal,-lisal) \
	$(call pc_libs,zlib,-lz) \
	$(if $(MSGPACK_PC),$(call pc_libs,$(MSGPACK_PC)),-lmsgpackc) \
	$(call pc_libs,libcrypto,-lcrypto)
CMOCKA_CFLAGS := $(call pc_cflags,cmocka)
CMOCKA_LIBS := $(call pc_libs,cmocka,-lcmocka)
JANSSON_CFLAGS := $(call pc_cflags,jansson)
JANSSON_LIBS := $(call pc_libs,jansson,-ljansson)
MHD_CFLAGS := $(call pc_cflags,libmicrohttpd)
MHD_LIBS := $(call pc_libs,libmicrohttpd,-lmicrohttpd)
# The CLI's transport for followers (tools/replica.c); never liblogbook's.
NATS_CFLAGS := $(call pc_cflags,libnats)
NATS_LIBS := $(call pc_libs,libnats,-lnats)
BENCH_CFLAGS := $(call pc_cflags,sqlite3) $(call pc_cflags,libdeflate)
BENCH_LIBS := $(call pc_libs,sqlite3,-lsqlite3) $(call pc_libs,libdeflate,-ldeflate)

# ---------------------------------------------------------------------------
# Flags. Ours first; the user's CPPFLAGS/CFLAGS/LDFLAGS follow and win.
# _GNU_SOURCE is defined empty, exactly as `#define _GNU_SOURCE` does, so a
# source that defines it too is not a redefinition (-D_GNU_SOURCE would
# mean 1, and clash with those under -Werror).
WERROR ?= -Werror
SANITIZE ?=
ifneq ($(SANITIZE),)
SAN_FLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
LB_CPPFLAGS := -Iinclude -I. -D_GNU_SOURCE=
# -Wno-missing-field-initializers: include/logbook.h appends members to
# lb_field and lb_schema (zero means "no rule"), so positional initializers
# that stop early are valid by design, in our code as in callers'.
LB_CFLAGS := -std=c11 -O2 -g -Wall -Wextra -Wno-missing-field-initializers \
	$(WERROR) -pthread -MMD -MP $(SAN_FLAGS)
LB_LDFLAGS := -pthread $(SAN_FLAGS)
# The shared library must resolve every symbol itself (sanitizer runtimes
# are the exception: clang leaves them to the executable).
SO_LDFLAGS := $(if $(SAN_FLAGS),,-Wl,--no-undefined)

# Version from the header, which is its one home.
hdr_version = $(shell sed -n 's/^.define LB_VERSION_$(1)[ \t]*\([0-9][0-9]*\).*/\1/p' include/logbook.h)
VERSION_MAJOR := $(call hdr_version,MAJOR)
VERSION := $(VERSION_MAJOR).$(call hdr_version,MINOR).$(call hdr_version,PATCH)

# ---------------------------------------------------------------------------
# Sources and outputs.
LIB_SRCS := $(sort $(wildcard wal/*.c engine/*.c))
TOOL_SRCS := $(sort $(wildcard tools/*.c))
BENCH_SRCS := $(sort $(wildcard bench/*.c))
EXAMPLE_SRCS := $(sort $(wildcard examples/*.c))
TEST_DIRS := wal engine tools
TEST_HELPER_SRCS := $(wildcard tests/helpers.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB_OBJS := $(call obj,$(LIB_SRCS))
TOOL_OBJS := $(call obj,$(TOOL_SRCS))
BENCH_OBJS := $(call obj,$(BENCH_SRCS))
EXAMPLE_OBJS := $(call obj,$(EXAMPLE_SRCS))
TEST_HELPER_OBJS := $(call obj,$(TEST_HELPER_SRCS))

SONAME := liblogbook.so.$(VERSION_MAJOR)
SO_REAL := liblogbook.so.$(VERSION)
ifneq ($(LIB_SRCS),)
LIB_A := $(BUILD)/liblogbook.a
LIB_SO := $(BUILD)/liblogbook.so
LIB_OUTPUTS := $(LIB_A) $(BUILD)/$(SO_REAL) $(BUILD)/$(SONAME) $(LIB_SO) \
	$(BUILD)/logbook.pc
endif
CLI := $(if $(TOOL_SRCS),$(BUILD)/logbook)
BENCH := $(if $(BENCH_SRCS),$(BUILD)/logbook-bench)
EXAMPLES := $(patsubst examples/%.c,$(BUILD)/examples/%,$(EXAMPLE_SRCS))

# The CLI's code minus its main(), as an archive, so tests/tools/*.c can
# test CLI internals (members are pulled in only when referenced).
TOOL_LIB := $(if $(filter-out tools/main.c,$(TOOL_SRCS)),$(BUILD)/obj/libtools.a)

# One cmocka binary per test source: tests/D/N.c -> BUILD/tests/test_D_N,
# linked with TEST_ARCHIVES_D and TEST_LIBS_D besides the usual.
# (tests/fuzz/ needs its own rules: LLVMFuzzerTestOneInput and a driver.)
TEST_ARCHIVES_tools := $(TOOL_LIB)
TEST_LIBS_tools := $(JANSSON_LIBS) $(NATS_LIBS)
define test_dir
TEST_SUPPORT_OBJS_$(1) := $$(call obj,$$(sort $$(wildcard tests/$(1)/_*.c)))
TEST_SRCS_$(1) := $$(filter-out tests/$(1)/_%.c,$$(sort $$(wildcard tests/$(1)/*.c)))
TEST_BINS += $$(patsubst tests/$(1)/%.c,$$(BUILD)/tests/test_$(1)_%,$$(TEST_SRCS_$(1)))
TEST_OBJS += $$(call obj,$$(TEST_SRCS_$(1))) $$(TEST_SUPPORT_OBJS_$(1))
$$(BUILD)/tests/test_$(1)_%: $$(BUILD)/obj/tests/$(1)/%.o $$(TEST_SUPPORT_OBJS_$(1)) \
		$$(TEST_HELPER_OBJS) $$(TEST_ARCHIVES_$(1)) $$(LIB_A) $$(OBJS_STAMP)
	@mkdir -p $$(@D)
	@echo "  LD      $$@"
	$$(Q)$$(CC) $$(LB_LDFLAGS) $$(LDFLAGS) -o $$@ $$(filter %.o %.a,$$^) \
		$$(TEST_LIBS_$(1)) $$(CMOCKA_LIBS) $$(DEP_LIBS) -lm
endef
TEST_BINS :=
TEST_OBJS :=
$(foreach d,$(TEST_DIRS),$(eval $(call test_dir,$(d))))

# Executable scripts among these are run by `make test` after the binaries.
TEST_SCRIPTS := $(sort $(wildcard tests/*/*.sh))

ALL_OBJS := $(LIB_OBJS) $(TOOL_OBJS) $(BENCH_OBJS) $(EXAMPLE_OBJS) \
	$(TEST_HELPER_OBJS) $(TEST_OBJS)

# Per-object flags.
$(LIB_OBJS): OBJ_CFLAGS = -fPIC -fvisibility=hidden $(DEP_CFLAGS)
$(TOOL_OBJS): OBJ_CFLAGS = $(JANSSON_CFLAGS) $(MHD_CFLAGS) $(NATS_CFLAGS) $(DEP_CFLAGS)
$(BENCH_OBJS): OBJ_CFLAGS = $(BENCH_CFLAGS) $(DEP_CFLAGS) \
	-DLB_BENCH_CFLAGS='"$(call sq,$(strip $(LB_CFLAGS) $(CFLAGS)))"'
$(EXAMPLE_OBJS): OBJ_CFLAGS = $(DEP_CFLAGS)
$(TEST_HELPER_OBJS) $(TEST_OBJS): OBJ_CFLAGS = -Itests $(CMOCKA_CFLAGS) \
	$(JANSSON_CFLAGS) $(DEP_CFLAGS)
# The contract test reads the header from the source tree at run time.
$(call obj,tests/engine/contract.c): OBJ_CFLAGS += \
	-DLB_HEADER_PATH='"$(call sq,$(abspath include/logbook.h))"'
$(call obj,tests/engine/contract.c): include/logbook.h
# The page of `logbook serve` is assembled into serve_page.o (.incbin).
$(call obj,tools/serve_page.c): tools/serve_page.html

# ---------------------------------------------------------------------------
# Rules.
.PHONY: all test check test-bins run asan headertest format format-check \
	install uninstall clean deps help bench bench-full python FORCE

all: $(LIB_OUTPUTS) $(CLI) $(BENCH) $(EXAMPLES)
ifeq ($(LIB_SRCS),)
	@echo "note: no library sources (wal/*.c, engine/*.c) yet; nothing to link against" >&2
endif

# Every object depends on this file, which changes only when the compiler
# or the flags do: switching CC, CFLAGS or SANITIZE rebuilds everything.
FLAGS_STAMP := $(BUILD)/.flags
sq = $(subst ','\'',$(1))
FLAGS_TEXT = $(CC) | $(CXX) | $(LB_CPPFLAGS) $(CPPFLAGS) | $(LB_CFLAGS) $(CFLAGS) | \
	$(LB_LDFLAGS) $(LDFLAGS) | $(DEP_CFLAGS) $(DEP_LIBS)
# Every linked output depends on this one, which changes when the set of
# objects does: removing a source relinks (the archive loses its member).
OBJS_STAMP := $(BUILD)/.objs
OBJS_TEXT = $(ALL_OBJS)

# $(call write_stamp,TEXT): rewrite $@ only if TEXT differs from it.
write_stamp = @mkdir -p $(@D); echo '$(call sq,$(1))' > $@.tmp; \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi
$(FLAGS_STAMP): FORCE
	$(call write_stamp,$(FLAGS_TEXT))
$(OBJS_STAMP): FORCE
	$(call write_stamp,$(OBJS_TEXT))

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(LB_CPPFLAGS) $(CPPFLAGS) $(OBJ_CFLAGS) $(LB_CFLAGS) $(CFLAGS) \
		-c -o $@ $<

$(LIB_A): $(LIB_OBJS) $(OBJS_STAMP)
	@echo "  AR      $@"
	$(Q)rm -f $@ && $(AR) rcs $@ $(LIB_OBJS)

$(BUILD)/$(SO_REAL): $(LIB_OBJS) $(OBJS_STAMP)
	@echo "  LD      $@"
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) $(SO_LDFLAGS) $(LB_LDFLAGS) \
		$(LDFLAGS) -o $@ $(LIB_OBJS) $(DEP_LIBS)

$(BUILD)/$(SONAME): $(BUILD)/$(SO_REAL)
	$(Q)ln -sf $(SO_REAL) $@

$(LIB_SO): $(BUILD)/$(SONAME)
	$(Q)ln -sf $(SONAME) $@

$(TOOL_LIB): $(TOOL_OBJS) $(OBJS_STAMP)
	@echo "  AR      $@"
	$(Q)rm -f $@ && $(AR) rcs $@ $(filter-out %/tools/main.o,$(TOOL_OBJS))

$(CLI): $(TOOL_OBJS) $(LIB_A) $(OBJS_STAMP)
	@echo "  LD      $@"
	$(Q)$(CC) $(LB_LDFLAGS) $(LDFLAGS) -o $@ $(TOOL_OBJS) $(LIB_A) $(JANSSON_LIBS) $(MHD_LIBS) $(NATS_LIBS) $(DEP_LIBS) -lm

$(BENCH): $(BENCH_OBJS) $(LIB_A) $(OBJS_STAMP)
	@echo "  LD      $@"
	$(Q)$(CC) $(LB_LDFLAGS) $(LDFLAGS) -o $@ $(BENCH_OBJS) $(LIB_A) $(BENCH_LIBS) $(DEP_LIBS) -lm

# Examples link against the shared library, as a program using an installed
# logbook would, so they also check what it exports. The rpath lets them
# run from the build directory.
ifneq ($(LIB_SRCS),)
EXAMPLE_LIBS := -L$(BUILD) -llogbook -Wl,-rpath,'$$ORIGIN/..'
endif
$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(LIB_SO)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(LB_LDFLAGS) $(LDFLAGS) -o $@ $< $(EXAMPLE_LIBS) -lm

# logbook.pc: msgpack goes in Requires.private under whichever name has a
# .pc file, else into Libs.private as -lmsgpackc. LMDB ships no .pc
# upstream, so it is always in Libs.private. Regenerated when the install
# paths change (through PC_STAMP).
PC_REQUIRES := libdeflate libisal $(MSGPACK_PC) libcrypto
PC_LIBS_PRIVATE := $(strip -llmdb $(if $(MSGPACK_PC),,-lmsgpackc) -lpthread)
PC_STAMP := $(BUILD)/.pcvars
PC_TEXT = $(prefix) | $(exec_prefix) | $(libdir) | $(includedir) | \
	$(VERSION) | $(PC_REQUIRES) | $(PC_LIBS_PRIVATE)
$(PC_STAMP): FORCE
	$(call write_stamp,$(PC_TEXT))

# Paths under $(prefix) or $(exec_prefix) are written relative to them, so
# `pkg-config --define-prefix` can relocate the installed file.
pc_rel = $(if $(filter $(2),$(1)),$${$(3)},$(patsubst $(2)/%,$${$(3)}/%,$(1)))
$(BUILD)/logbook.pc: logbook.pc.in $(PC_STAMP) Makefile
	@echo "  GEN     $@"
	$(Q)sed -e 's|@prefix@|$(call sq,$(prefix))|g' \
		-e 's|@exec_prefix@|$(call sq,$(call pc_rel,$(exec_prefix),$(prefix),prefix))|g' \
		-e 's|@libdir@|$(call sq,$(call pc_rel,$(libdir),$(exec_prefix),exec_prefix))|g' \
		-e 's|@includedir@|$(call sq,$(call pc_rel,$(includedir),$(prefix),prefix))|g' \
		-e 's|@version@|$(VERSION)|g' \
		-e 's|@requires_private@|$(PC_REQUIRES)|g' \
		-e 's|@libs_private@|$(PC_LIBS_PRIVATE)|g' \
		$< > $@

# The header test: include/logbook.h alone, pedantic C99 and C++11.
HEADERTEST_SRC := tests/headertest/headertest.c
HEADERTEST_OUT := $(BUILD)/headertest/c99.o $(BUILD)/headertest/cxx11.o
headertest: $(HEADERTEST_OUT)

$(BUILD)/headertest/c99.o: $(HEADERTEST_SRC) include/logbook.h $(FLAGS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      $< (C99)"
	$(Q)$(CC) -std=c99 -pedantic -Wall -Wextra -Werror -Wstrict-prototypes \
		-Wundef -Iinclude -c -o $@ $<

$(BUILD)/headertest/cxx11.o: $(HEADERTEST_SRC) include/logbook.h $(FLAGS_STAMP)
	@mkdir -p $(@D)
	@command -v $(firstword $(CXX)) >/dev/null || \
		{ echo "headertest: no C++ compiler '$(CXX)' (run scripts/deps.sh)" >&2; exit 1; }
	@echo "  CXX     $< (C++11)"
	$(Q)$(CXX) -x c++ -std=c++11 -pedantic -Wall -Wextra -Werror -Wundef \
		-Iinclude -c -o $@ $<

test-bins: $(TEST_BINS)

# ---------------------------------------------------------------------------
# The Python package (python/, docs/PYTHON.md), built in place against this
# tree's build with Debian's /usr/bin/python3: liblogbook is found through
# BUILD/logbook-uninstalled.pc, which pkg-config prefers to an installed
# logbook.pc when PKG_CONFIG_PATH names BUILD. Then
# PYTHONPATH=python /usr/bin/python3 -c 'import logbook'. Always rebuilt
# (--force, one small C file): the extension in place is the last BUILD's.
# tests/python/pytest.sh runs python/tests/ (make test); under sanitizers
# it does not, as the interpreter is not instrumented.
PYTHON ?= /usr/bin/python3
PY_PC := $(BUILD)/logbook-uninstalled.pc
$(PY_PC): $(PC_STAMP) Makefile
	@mkdir -p $(@D)
	@echo "  GEN     $@"
	$(Q)printf '%s\n' 'libdir=$(call sq,$(abspath $(BUILD)))' \
		'includedir=$(call sq,$(abspath include))' '' \
		'Name: logbook' \
		'Description: logbook, uninstalled (the build of its source tree)' \
		'Version: $(VERSION)' 'Requires.private: $(PC_REQUIRES)' \
		'Cflags: -I$${includedir}' \
		'Libs: -L$${libdir} -Wl,-rpath,$${libdir} -llogbook' \
		'Libs.private: $(PC_LIBS_PRIVATE)' > $@

python: $(LIB_SO) $(PY_PC)
	@echo "  PYTHON  python/logbook (in place)"
	$(Q)cd python && PKG_CONFIG_PATH='$(call sq,$(abspath $(BUILD)))'$${PKG_CONFIG_PATH:+:$$PKG_CONFIG_PATH} \
		$(PYTHON) setup.py $(if $(filter 1,$(V)),,-q) build_ext --inplace --force \
		--build-temp '$(call sq,$(abspath $(BUILD)))/python' \
		$(if $(filter 1,$(V)),,>/dev/null)

# Binaries first, then executable scripts, then the examples; each under a
# timeout with a fresh TMPDIR (see scripts/run-tests.sh).
test: all headertest test-bins $(if $(SANITIZE),,python)
	$(Q)LB_TEST_VERBOSE=$(V) LB_PYTHON=$(if $(SANITIZE),,$(PYTHON)) bash scripts/run-tests.sh $(abspath $(BUILD)) \
		$(abspath $(TEST_BINS)) $(TEST_SCRIPTS) $(abspath $(EXAMPLES))

check: test

# The main job: the daily update of examples/daily-update.sh, through the
# CLI (three days of a feed with broken records: imports, rejects fixed and
# imported again, a cascade previewed and done, an import interrupted and
# resumed, a whole run rolled back, replay, verify, prune and compact), with
# LB_BUILD and LB_BIN set as for the test scripts; it saves the final
# database as BUILD/run-db and ends by printing the command that serves it
# to a browser (docs/SERVE.md); the quickstart example
# where the script or the CLI is missing. ARGS are passed to either, e.g.
# make run ARGS='--records 100000 --keep'. Then the same pipeline in
# Python, through the package (examples/daily_updater.py: two days).
RUN_DB := $(BUILD)/run-db
run: all python
	$(Q)if [ -f examples/daily-update.sh ] && [ -x $(BUILD)/logbook ]; then \
		LB_BUILD=$(abspath $(BUILD)) LB_BIN=$(abspath $(BUILD))/logbook \
			bash examples/daily-update.sh --save $(abspath $(RUN_DB)) \
			$(ARGS); \
	elif [ -x $(BUILD)/examples/quickstart ]; then \
		$(BUILD)/examples/quickstart $(ARGS); \
	else \
		echo "make run: nothing to run (no examples/quickstart.c)" >&2; exit 1; \
	fi
	@echo "==== the daily update in Python (examples/daily_updater.py)"
	$(Q)d=$$(mktemp -d "$${TMPDIR:-/tmp}/logbook-py.XXXXXX") && \
		PYTHONPATH='$(call sq,$(abspath python))' $(PYTHON) \
		examples/daily_updater.py --db "$$d/db" --days 2 --hearings 200; \
		rc=$$?; rm -rf "$$d"; exit $$rc
	$(Q)if [ -f $(RUN_DB)/data.mdb ]; then \
		echo; echo "Browse the daily update's log, a batch's changes and" \
			"a rollback preview in a web page (docs/SERVE.md):"; \
		echo "  $(BUILD)/logbook serve $(RUN_DB) &" \
			"xdg-open http://127.0.0.1:8080/"; \
	fi

# Benchmarks (bench/README.md). BENCH_ARGS are appended, so they can
# override: make bench BENCH_ARGS='--runs 1'.
bench: $(BENCH)
	$(BENCH) --records 200000 $(BENCH_ARGS)

bench-full: $(BENCH)
	$(BENCH) --records 1000000 $(BENCH_ARGS)
	$(BENCH) --records 1000000 --keys random $(BENCH_ARGS)
	$(BENCH) --records 20000 --batch-size 100 --sync $(BENCH_ARGS)

# The same rules, built into build-asan/ with ASan and UBSan, and run.
ASAN_BUILD := build-asan
asan:
	$(Q)ASAN_OPTIONS=detect_leaks=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) \
		SANITIZE=address,undefined CFLAGS='$(call sq,$(CFLAGS)) -O1 -g' test

# Formatting (.clang-format): every C source and header of the tree.
FORMAT_SRCS = $(sort $(wildcard include/*.h wal/*.[ch] engine/*.[ch] \
	tools/*.[ch] bench/*.[ch] examples/*.[ch] tests/*.[ch] tests/*/*.[ch]))
CLANG_FORMAT_CHECK = command -v $(CLANG_FORMAT) >/dev/null || bash scripts/deps.sh

format:
	$(Q)$(CLANG_FORMAT_CHECK)
	$(Q)$(CLANG_FORMAT) -i $(FORMAT_SRCS)

format-check:
	$(Q)$(CLANG_FORMAT_CHECK)
	$(Q)$(CLANG_FORMAT) --dry-run -Werror $(FORMAT_SRCS)
	@echo "format-check: $(words $(FORMAT_SRCS)) files formatted"

# ---------------------------------------------------------------------------
# Install. PREFIX or the GNU-style prefix, with DESTDIR before every path.
PREFIX ?= /usr/local
prefix ?= $(PREFIX)
exec_prefix ?= $(prefix)
bindir ?= $(exec_prefix)/bin
libdir ?= $(exec_prefix)/lib
includedir ?= $(prefix)/include
datarootdir ?= $(prefix)/share
mandir ?= $(datarootdir)/man
man1dir ?= $(mandir)/man1
pkgconfigdir ?= $(libdir)/pkgconfig
docdir ?= $(datarootdir)/doc/logbook
INSTALL_DATA = $(INSTALL) -m 644
INSTALL_PROGRAM = $(INSTALL) -m 755
MAN1 := $(wildcard man/*.1)
BIN_NAMES := logbook logbook-bench
# What the manual pages refer to: the documents (docs/CLI.md and the ones
# it links to) and the examples they name, installed under docdir in the
# tree's own layout so that their relative links hold. The pages name
# docdir as MAN_DOCDIR; the installed pages name the real one.
DOC_TOP := $(wildcard README.md CHANGELOG.md)
DOC_DOCS := $(wildcard docs/*.md docs/*.png)
DOC_EXAMPLES := $(wildcard examples/*.c)
DOC_SCRIPTS := $(wildcard examples/*.sh)
MAN_DOCDIR := /usr/local/share/doc/logbook

install: all
	$(INSTALL) -d '$(DESTDIR)$(includedir)'
	$(INSTALL_DATA) include/logbook.h '$(DESTDIR)$(includedir)/logbook.h'
ifneq ($(LIB_SRCS),)
	$(INSTALL) -d '$(DESTDIR)$(libdir)' '$(DESTDIR)$(pkgconfigdir)'
	$(INSTALL_DATA) $(LIB_A) '$(DESTDIR)$(libdir)/liblogbook.a'
	$(INSTALL_PROGRAM) $(BUILD)/$(SO_REAL) '$(DESTDIR)$(libdir)/$(SO_REAL)'
	ln -sf $(SO_REAL) '$(DESTDIR)$(libdir)/$(SONAME)'
	ln -sf $(SONAME) '$(DESTDIR)$(libdir)/liblogbook.so'
	$(INSTALL_DATA) $(BUILD)/logbook.pc '$(DESTDIR)$(pkgconfigdir)/logbook.pc'
endif
ifneq ($(CLI)$(BENCH),)
	$(INSTALL) -d '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) $(CLI) $(BENCH) '$(DESTDIR)$(bindir)/'
endif
ifneq ($(MAN1),)
	$(INSTALL) -d '$(DESTDIR)$(man1dir)'
	for m in $(MAN1); do \
		sed 's|$(MAN_DOCDIR)|$(call sq,$(docdir))|g' "$$m" \
			> '$(DESTDIR)$(man1dir)/'"$${m##*/}" && \
		chmod 644 '$(DESTDIR)$(man1dir)/'"$${m##*/}" || exit 1; \
	done
endif
	$(INSTALL) -d '$(DESTDIR)$(docdir)' '$(DESTDIR)$(docdir)/docs' \
		'$(DESTDIR)$(docdir)/examples'
	$(if $(DOC_TOP),$(INSTALL_DATA) $(DOC_TOP) '$(DESTDIR)$(docdir)/')
	$(if $(DOC_DOCS),$(INSTALL_DATA) $(DOC_DOCS) '$(DESTDIR)$(docdir)/docs/')
	$(if $(DOC_EXAMPLES),$(INSTALL_DATA) $(DOC_EXAMPLES) '$(DESTDIR)$(docdir)/examples/')
	$(if $(DOC_SCRIPTS),$(INSTALL_PROGRAM) $(DOC_SCRIPTS) '$(DESTDIR)$(docdir)/examples/')

uninstall:
	rm -f '$(DESTDIR)$(includedir)/logbook.h' \
		'$(DESTDIR)$(libdir)/liblogbook.a' \
		'$(DESTDIR)$(libdir)/$(SO_REAL)' \
		'$(DESTDIR)$(libdir)/$(SONAME)' \
		'$(DESTDIR)$(libdir)/liblogbook.so' \
		'$(DESTDIR)$(pkgconfigdir)/logbook.pc' \
		$(foreach b,$(BIN_NAMES),'$(DESTDIR)$(bindir)/$(b)') \
		$(foreach m,$(MAN1),'$(DESTDIR)$(man1dir)/$(notdir $(m))') \
		$(foreach f,$(DOC_TOP),'$(DESTDIR)$(docdir)/$(notdir $(f))') \
		$(foreach f,$(DOC_DOCS),'$(DESTDIR)$(docdir)/docs/$(notdir $(f))') \
		$(foreach f,$(DOC_EXAMPLES) $(DOC_SCRIPTS),'$(DESTDIR)$(docdir)/examples/$(notdir $(f))')
	-rmdir '$(DESTDIR)$(docdir)/docs' '$(DESTDIR)$(docdir)/examples' \
		'$(DESTDIR)$(docdir)' 2>/dev/null

# ---------------------------------------------------------------------------
deps:
	bash scripts/deps.sh

clean:
	rm -rf $(sort build $(ASAN_BUILD) $(BUILD))

help:
	@sed -n '2,/^$$/s/^# \{0,1\}//p' Makefile

FORCE:

-include $(ALL_OBJS:.o=.d)

# ===========================================================================
# Reliability (docs/RELIABILITY.md): the fault shim, the fuzz targets and
# their corpus replay, long crash runs, ThreadSanitizer and valgrind.
#
#   make crash [ROUNDS=N]     the crash matrix (and the commit crash test)
#                             with N rounds of each operation (default 500)
#   make stress [STRESS_SECONDS=N]  the multi-process stress test for N
#                             seconds (default 600; make test runs it for 50)
#   make fuzz [FUZZ_SECONDS=N]  every tests/fuzz/ target under libFuzzer
#                             (clang, ASan + UBSan) for N seconds (default
#                             60), in build-fuzz/; crashes are written there
#   make fuzz-replay          replay tests/corpus/TARGET/ through each
#                             target without libFuzzer (make test does too)
#   make tsan                 the concurrency tests under ThreadSanitizer,
#                             in build-tsan/
#   make valgrind             every test binary under valgrind memcheck
# ---------------------------------------------------------------------------
.PHONY: crash stress fuzz fuzz-bins fuzz-replay tsan valgrind

# The LD_PRELOAD fault shim; tests/engine/fault.c runs itself under it.
FAULT_SHIM := $(BUILD)/libfault.so
$(FAULT_SHIM): tests/shim/fault.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) -shared -fPIC -std=c11 -O2 -g -Wall -Wextra $(WERROR) \
		-o $@ $< -ldl -pthread

# The allocation-failure hooks (tests/shim/alloc.c). tests/engine/alloc.c
# links a copy of the static library in which every call to an allocating
# function (ALLOC_HOOKS, and the functions that release what they return)
# is renamed to lbt_NAME, the hooks' names: only the library's own calls
# are counted and failed, in every build (an LD_PRELOAD malloc would not
# work under ASan). A call in the library to an allocating function that
# is not hooked (ALLOC_UNHOOKED) fails the build of the copy.
OBJCOPY ?= objcopy
NM ?= nm
ALLOC_HOOKS := malloc calloc realloc free strdup strndup asprintf vasprintf \
	realpath opendir closedir tmpfile fclose libdeflate_alloc_compressor \
	libdeflate_free_compressor libdeflate_alloc_decompressor \
	libdeflate_free_decompressor EVP_MD_CTX_new EVP_MD_CTX_free \
	pthread_create
ALLOC_UNHOOKED := aligned_alloc posix_memalign memalign valloc pvalloc \
	reallocarray wcsdup fopen fdopen freopen open_memstream fmemopen \
	getline getdelim scandir glob getcwd get_current_dir_name \
	canonicalize_file_name tempnam popen backtrace_symbols \
	libdeflate_alloc_compressor_ex libdeflate_alloc_decompressor_ex \
	EVP_MD_CTX_create BIO_new mdb_env_get_path
ALLOC_LIB := $(BUILD)/tests/liblogbook-alloc.a
ALLOC_SHIM := $(call obj,tests/shim/alloc.c)
$(ALLOC_SHIM): OBJ_CFLAGS = -Itests $(DEP_CFLAGS)
ALL_OBJS += $(ALLOC_SHIM)
$(ALLOC_LIB): $(LIB_A) Makefile
	@mkdir -p $(@D)
	@echo "  OBJCOPY $@"
	$(Q)undef=$$($(NM) -u $< | awk '{print $$NF}'); unhooked=; \
	for s in $(ALLOC_UNHOOKED); do \
		if printf '%s\n' $$undef | grep -qx "$$s"; then \
			unhooked="$$unhooked $$s"; fi; \
	done; \
	if [ -n "$$unhooked" ]; then \
		echo "$<: calls allocating functions that tests/shim/alloc.c" \
			"does not hook:$$unhooked (hook them, and add them to" \
			"ALLOC_HOOKS)" >&2; exit 1; fi
	$(Q)$(OBJCOPY) $(foreach s,$(ALLOC_HOOKS),--redefine-sym $(s)=lbt_$(s)) \
		$< $@
$(BUILD)/tests/test_engine_alloc: $(call obj,tests/engine/alloc.c) \
		$(TEST_SUPPORT_OBJS_engine) $(TEST_HELPER_OBJS) $(ALLOC_SHIM) \
		$(ALLOC_LIB) $(OBJS_STAMP)
	@mkdir -p $(@D)
	@echo "  LD      $@"
	$(Q)$(CC) $(LB_LDFLAGS) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) \
		$(CMOCKA_LIBS) $(DEP_LIBS) -ldl -lm

# Fuzz targets: tests/fuzz/T.c -> BUILD/tests/test_fuzz_T (with the replay
# driver, run by make test) and, in the fuzz build, BUILD/fuzz/fuzz_T
# (libFuzzer). FUZZ_DEPS_T / FUZZ_LIBS_T: what a target links besides the
# library.
FUZZ_SRCS := $(filter-out tests/fuzz/_%.c,$(sort $(wildcard tests/fuzz/*.c)))
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRCS))
FUZZ_OBJS := $(call obj,$(FUZZ_SRCS) $(wildcard tests/fuzz/_driver.c))
FUZZ_DRIVER := $(call obj,tests/fuzz/_driver.c)
FUZZ_DEPS_json := $(TOOL_LIB)
FUZZ_LIBS_json := $(JANSSON_LIBS)
FUZZ_DEPS_serve_req := $(TOOL_LIB)
FUZZ_DEPS_api := $(call obj,tests/engine/_common.c tests/engine/_model.c) \
	$(TEST_HELPER_OBJS)
FUZZ_LIBS_api := $(CMOCKA_LIBS)
FUZZ_REPLAY_BINS := $(patsubst %,$(BUILD)/tests/test_fuzz_%,$(FUZZ_TARGETS))
FUZZ_BINS := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_TARGETS))
$(FUZZ_OBJS): OBJ_CFLAGS = -Itests $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS) \
	$(DEP_CFLAGS)
ALL_OBJS += $(FUZZ_OBJS)

define fuzz_target
$$(BUILD)/tests/test_fuzz_$(1): $$(call obj,tests/fuzz/$(1).c) \
		$$(FUZZ_DRIVER) $$(FUZZ_DEPS_$(1)) $$(LIB_A) $$(OBJS_STAMP)
	@mkdir -p $$(@D)
	@echo "  LD      $$@"
	$$(Q)$$(CC) $$(LB_LDFLAGS) $$(LDFLAGS) -o $$@ $$(filter %.o %.a,$$^) \
		$$(FUZZ_LIBS_$(1)) $$(DEP_LIBS) -lm
$$(BUILD)/fuzz/fuzz_$(1): $$(call obj,tests/fuzz/$(1).c) \
		$$(FUZZ_DEPS_$(1)) $$(LIB_A) $$(OBJS_STAMP)
	@mkdir -p $$(@D)
	@echo "  LD      $$@"
	$$(Q)$$(CC) $$(LB_LDFLAGS) $$(LDFLAGS) -fsanitize=fuzzer -o $$@ \
		$$(filter %.o %.a,$$^) $$(FUZZ_LIBS_$(1)) $$(DEP_LIBS) -lm
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_target,$(t))))

# make test builds and runs the corpus replays and builds the shim.
TEST_BINS += $(FUZZ_REPLAY_BINS)
test-bins: $(FUZZ_REPLAY_BINS) $(FAULT_SHIM)

fuzz-replay: $(FUZZ_REPLAY_BINS)
	$(Q)bash scripts/run-tests.sh $(abspath $(BUILD)) \
		$(abspath $(FUZZ_REPLAY_BINS))

# libFuzzer: the library, the CLI archive and the targets instrumented for
# coverage (fuzzer-no-link) with ASan and UBSan; each target then runs for
# FUZZ_SECONDS from its working corpus build-fuzz/corpus/T, seeded from
# tests/corpus/T. A crash stops make and leaves build-fuzz/crash-T-*: fix
# the bug, then keep the input in tests/corpus/T/ as a regression.
FUZZ_BUILD := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_FLAGS ?= -rss_limit_mb=2560 -timeout=25 -print_final_stats=1
fuzz-bins: $(FUZZ_BINS)

fuzz:
	$(Q)$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) \
		SANITIZE=address,undefined \
		CFLAGS='$(call sq,$(CFLAGS)) -O1 -g -fsanitize=fuzzer-no-link' \
		fuzz-bins
	$(Q)for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/tmp || exit 1; \
		echo "==== fuzz $$t: $(FUZZ_SECONDS) s"; \
		if TMPDIR=$(abspath $(FUZZ_BUILD))/tmp \
			ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
			UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
			$(FUZZ_BUILD)/fuzz/fuzz_$$t $(FUZZ_FLAGS) \
				-max_total_time=$(FUZZ_SECONDS) \
				-artifact_prefix=$(FUZZ_BUILD)/crash-$$t- \
				$(FUZZ_BUILD)/corpus/$$t tests/corpus/$$t \
				> $(FUZZ_BUILD)/log-$$t.txt 2>&1; then \
			grep -E '^(stat::|Done)' $(FUZZ_BUILD)/log-$$t.txt; \
		else \
			tail -n 100 $(FUZZ_BUILD)/log-$$t.txt; \
			echo "fuzz $$t FAILED: input in $(FUZZ_BUILD)/crash-$$t-*"; \
			exit 1; \
		fi; \
	done

# The crash matrix and the commit crash test, ROUNDS rounds of each, with
# no time limit per test binary.
ROUNDS ?= 500
CRASH_BINS := $(BUILD)/tests/test_engine_crashmatrix \
	$(BUILD)/tests/test_engine_crash
crash: $(CRASH_BINS)
	$(Q)LB_CRASH_ROUNDS=$(ROUNDS) LB_TEST_TIMEOUT=0 LB_TEST_VERBOSE=1 \
		bash scripts/run-tests.sh $(abspath $(BUILD)) \
		$(abspath $(CRASH_BINS))

# The multi-process stress test (tests/engine/stress.c) for STRESS_SECONDS,
# with no time limit per test binary; it runs the CLI, so that is built too.
STRESS_SECONDS ?= 600
STRESS_BINS := $(BUILD)/tests/test_engine_stress
stress: $(STRESS_BINS) $(CLI)
	$(Q)LB_STRESS_SECONDS=$(STRESS_SECONDS) LB_TEST_TIMEOUT=0 \
		LB_TEST_VERBOSE=1 bash scripts/run-tests.sh $(abspath $(BUILD)) \
		$(abspath $(STRESS_BINS))

# ThreadSanitizer: the tests where threads share a database.
TSAN_BUILD := build-tsan
TSAN_BINS := $(TSAN_BUILD)/tests/test_engine_concurrency \
	$(TSAN_BUILD)/tests/test_engine_threads \
	$(TSAN_BUILD)/tests/test_engine_write \
	$(TSAN_BUILD)/tests/test_engine_feed \
	$(TSAN_BUILD)/tests/test_engine_readahead \
	$(TSAN_BUILD)/tests/test_engine_zwork
tsan:
	$(Q)$(MAKE) --no-print-directory BUILD=$(TSAN_BUILD) SANITIZE=thread \
		CFLAGS='$(call sq,$(CFLAGS)) -O1 -g' $(TSAN_BINS)
	$(Q)TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		LB_TEST_VERBOSE=1 bash scripts/run-tests.sh \
		$(abspath $(TSAN_BUILD)) $(abspath $(TSAN_BINS))

# valgrind: each test binary through a wrapper script that runs it under
# memcheck (any error or leak fails it), children and re-executions
# included.
VALGRIND ?= valgrind
# --fair-sched=yes: valgrind runs one thread at a time, and without it
# the threads tests' readers can keep their writer from running at all.
VALGRIND_FLAGS ?= --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite,indirect \
	--show-leak-kinds=definite,indirect --trace-children=yes \
	--child-silent-after-fork=yes --fair-sched=yes --quiet
VALGRIND_DIR := $(BUILD)/valgrind
valgrind: all test-bins
	$(Q)command -v $(VALGRIND) >/dev/null || bash scripts/deps.sh
	$(Q)rm -rf $(VALGRIND_DIR) && mkdir -p $(VALGRIND_DIR) && \
	for t in $(abspath $(TEST_BINS)); do \
		printf '#!/bin/sh\nexec %s %s %s "$$@"\n' '$(VALGRIND)' \
			'$(VALGRIND_FLAGS)' "$$t" > $(VALGRIND_DIR)/$${t##*/} && \
		chmod +x $(VALGRIND_DIR)/$${t##*/} || exit 1; \
	done
	$(Q)LB_TEST_TIMEOUT=$${LB_TEST_TIMEOUT:-3600} bash scripts/run-tests.sh \
		$(abspath $(BUILD)) \
		$(addprefix $(abspath $(VALGRIND_DIR))/,$(notdir $(TEST_BINS)))

# make clean also removes the fuzz and TSan builds.
clean: clean-reliability
clean-reliability:
	rm -rf $(FUZZ_BUILD) $(TSAN_BUILD)
.PHONY: clean-reliability

-include $(FUZZ_OBJS:.o=.d)
