# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: the gyre authors
# Makefile: the developer's and CI's entry points; a thin wrapper around CMake and CTest.
# Each target first checks its Debian packages with scripts/deps.sh, so `make test` works as
# the first command on a fresh Debian 12 machine. `make help` lists the targets.

BUILD        ?= build
BUILD_CLANG  ?= build-clang
BUILD_ASAN   ?= build-asan
BUILD_TSAN   ?= build-tsan
BUILD_MUTANTS ?= build-mutants
PREFIX       ?= /usr/local
GCC          ?= gcc
CLANG        ?= clang
CLANG_FORMAT ?= clang-format-14
CMAKE        ?= cmake
CTEST        ?= ctest
JOBS         ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_JOBS   ?= 2
# Default per-test timeout (s) for tests that do not set their own TIMEOUT.
CTEST_TIMEOUT ?= 300
DEPS         := bash scripts/deps.sh
, := ,

RELEASE_FLAGS := -O2 -g -DNDEBUG
# -O1 keeps sanitizer stack traces readable at a modest cost in speed.
SANITIZE_FLAGS := -O1 -g -DNDEBUG

# Sanitizer runs use the same tests on smaller counts; the runtimes stop at the first error.
SAN_SCALE ?= 0.25
SAN_ENV := GYRE_TEST_SCALE=$(SAN_SCALE) \
	ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:halt_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:die_after_fork=0

# LLVM 14's TSan cannot map its shadow under high-entropy ASLR (vm.mmap_rnd_bits > 28 on
# newer kernels). Running without ASLR avoids that; where personality() is not allowed
# (some container seccomp profiles) setarch fails, and the tests run as they are.
NO_ASLR := $(shell setarch "$$(uname -m)" -R true >/dev/null 2>&1 && echo setarch "$$(uname -m)" -R)

# A parent `make -jN` must not leak its jobserver into the make that CMake generates.
CMAKE_ENV := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL

# configure DIR COMPILER CFLAGS WERROR SANITIZE
configure = $(CMAKE_ENV) $(CMAKE) -S . -B $(1) -DCMAKE_BUILD_TYPE=Release \
	-DCMAKE_C_COMPILER=$(2) -DCMAKE_C_FLAGS_RELEASE="$(3)" \
	-DGYRE_WERROR=$(4) -DGYRE_SANITIZE="$(5)"
compile = $(CMAKE_ENV) $(CMAKE) --build $(1) -j $(JOBS)
ctest = $(CTEST) --test-dir $(1) --output-on-failure -j $(CTEST_JOBS) \
	--timeout $(CTEST_TIMEOUT) --no-tests=error

FORMAT_DIRS := $(wildcard include src test tools examples)
FORMAT_FILES = $(shell find $(FORMAT_DIRS) -path '*/build*' -prune -o \
	-type f \( -name '*.c' -o -name '*.h' \) -print | sort)

.PHONY: all build demo test clang sanitize tsan format format-check install bench clean \
	deps help fuzz valgrind soak test-mutants reuse-lint bench-instr

all: build

build:
	@$(DEPS) build
	$(call configure,$(BUILD),$(GCC),$(RELEASE_FLAGS),OFF,)
	$(call compile,$(BUILD))

# The peers' packages go in before CMake configures, so the peers get built.
demo:
	@$(DEPS) plot
	@$(MAKE) --no-print-directory build
	$(BUILD)/bin/gyre-bench --quick

bench:
	@$(DEPS) plot
	@$(MAKE) --no-print-directory build
	scripts/bench-report.sh $(BUILD)

# The cost guard: instructions per message under callgrind for gyre-echo, gyre's reactor, stream
# and deadline echoes and the raw epoll/liburing peers (tools/bench/instr.c), fitted per message
# and per wait; fails when a gyre figure is more than 5% over bench/instr-budget.txt. The peers
# need nothing beyond the build group's liburing-dev; valgrind is its own group.
bench-instr:
	@$(DEPS) build valgrind
	@$(MAKE) --no-print-directory build
	$(BUILD)/bin/gyre-instr --budget bench/instr-budget.txt

# Fault-injection seeds and a connection-churn soak; what and why in scripts/soak.sh.
soak:
	@$(DEPS) build
	@$(MAKE) --no-print-directory build
	scripts/soak.sh $(BUILD)

test:
	@$(DEPS) build test
	$(call configure,$(BUILD),$(GCC),$(RELEASE_FLAGS),ON,)
	$(call compile,$(BUILD))
	$(call ctest,$(BUILD))

# Seeded bugs (test/mutants/), each in a scratch copy under $(BUILD_MUTANTS): the suite must
# fail for every one (scripts/mutants.sh, docs/testing.md).
test-mutants:
	@$(DEPS) build
	$(CMAKE_ENV) CC=$(GCC) JOBS=$(JOBS) CTEST_JOBS=$(CTEST_JOBS) scripts/mutants.sh $(BUILD_MUTANTS)

clang:
	@$(DEPS) build sanitize
	$(call configure,$(BUILD_CLANG),$(CLANG),$(RELEASE_FLAGS),ON,)
	$(call compile,$(BUILD_CLANG))

sanitize:
	@$(DEPS) build test sanitize
	$(call configure,$(BUILD_ASAN),$(CLANG),$(SANITIZE_FLAGS),OFF,address$(,)undefined)
	$(call compile,$(BUILD_ASAN))
	$(SAN_ENV) $(call ctest,$(BUILD_ASAN))

# Not the posixaio engine: glibc's AIO helper threads start threads from inside libc,
# which TSan never sees, and its allocator then crashes in them (LLVM 14, glibc 2.36).
tsan:
	@$(DEPS) build sanitize
	$(call configure,$(BUILD_TSAN),$(CLANG),$(SANITIZE_FLAGS),OFF,thread)
	$(call compile,$(BUILD_TSAN))
	$(SAN_ENV) $(NO_ASLR) $(call ctest,$(BUILD_TSAN)) -L threads -LE posixaio

# libFuzzer targets (fuzz/Makefile): each runs FUZZ_SECONDS and fails on any finding.
FUZZ_SECONDS ?= 60
fuzz:
	@$(DEPS) build sanitize
	@$(CMAKE_ENV) $(MAKE) --no-print-directory -f fuzz/Makefile run -j $(JOBS) CLANG=$(CLANG) \
		FUZZ_SECONDS=$(FUZZ_SECONDS)

# Stream and network tests on epoll, then the file tests on the linuxaio engine, under
# valgrind memcheck with scripts/gyre.supp (scripts/valgrind.sh).
valgrind:
	@$(DEPS) build valgrind
	@$(MAKE) --no-print-directory build
	scripts/valgrind.sh $(BUILD)

format:
	@$(DEPS) format
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check:
	@$(DEPS) format
	$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_FILES)

# REUSE compliance (LICENSE, LICENSES/, .reuse/dep5, an SPDX header in every other file);
# then the SPDX lines must be at the top and name the gyre authors, as scripts/spdx.sh puts
# them (run it to add missing ones).
reuse-lint:
	@$(DEPS) reuse
	reuse lint
	scripts/spdx.sh --check

install: build
	$(CMAKE) --install $(BUILD) --prefix "$(PREFIX)"

deps:
	$(DEPS) all

clean:
	rm -rf $(BUILD) $(BUILD_CLANG) $(BUILD_ASAN) $(BUILD_TSAN)

help:
	@echo 'make              build libgyre, tests and tools (gcc, Release -O2 -g) into $(BUILD)/'
	@echo 'make demo         build, then run $(BUILD)/bin/gyre-bench --quick'
	@echo 'make bench        build, then run the full gyre-bench'
	@echo 'make test         gcc -Werror build + the whole CTest matrix'
	@echo 'make bench-instr  build, then instructions per message under callgrind vs bench/instr-budget.txt'
	@echo 'make soak         build, then 1,000 fault seeds and 1,000,000 connections (~12 min)'
	@echo 'make test-mutants apply each seeded bug of test/mutants/ and show the tests catch it'
	@echo 'make clang        clang -Werror build into $(BUILD_CLANG)/ (warning check)'
	@echo 'make sanitize     clang ASan+UBSan build into $(BUILD_ASAN)/ + the whole matrix'
	@echo 'make tsan         clang TSan build into $(BUILD_TSAN)/ + the tests labelled threads'
	@echo 'make valgrind     stream/net tests on epoll, file tests on linuxaio, under memcheck'
	@echo 'make format       clang-format -i over include src test tools examples'
	@echo 'make format-check the same, failing on any difference'
	@echo 'make reuse-lint   reuse lint (licenses) and scripts/spdx.sh --check (SPDX headers)'
	@echo 'make install PREFIX=/usr/local   headers, libraries, gyre.pc, CMake package'
	@echo 'make deps         install every Debian package the targets above use'
	@echo 'make clean        remove the build directories'
