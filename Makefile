# dam — build, test and run.
#   make          build build/dam (-O2 -march=native)
#   make PORTABLE=1   build without -march=native (runs on any x86-64 / arm64)
#   make run      install missing packages, build, run the demo on the embedded model
#   make test     install missing packages, build, run the whole test suite, then again
#                 under AddressSanitizer + UBSan (TEST_ASAN=0 skips that second pass)
#   make bench    speed tables (see README)
#   make test-asan  the whole suite again under AddressSanitizer + UBSan (in $(BUILD)-asan)
#   make fuzz     libFuzzer targets of tests/fuzz/ (clang), FUZZ_SECONDS each
#   make install PREFIX=/usr/local   dam in PREFIX/bin; the embedded model, prompts/ and
#                 configs/ in PREFIX/share/dam (DESTDIR=dir stages it elsewhere)
# BUILD=dir puts objects and binaries elsewhere (default build/).

BUILD    ?= build
CC       ?= gcc
PKGS     := libcurl libcjson libpcre2-8 libcrypto
DEB_PKGS := build-essential pkg-config libcurl4-openssl-dev libcjson-dev check libpcre2-dev libssl-dev python3
OPT      ?= -O2
ifeq ($(PORTABLE),1)
  MARCH  :=
else
  MARCH  ?= -march=native
endif
WERROR   ?= -Werror
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)
CFLAGS   += -std=c11 -D_GNU_SOURCE $(OPT) $(MARCH) -g -fopenmp-simd -Wall -Wextra $(WERROR) \
            -Iinclude $(PKG_CFLAGS) -MMD -MP
LDLIBS   += $(PKG_LIBS) -lm -lpthread
# SANITIZE=1: AddressSanitizer + UndefinedBehaviorSanitizer (make test-asan sets it);
# float-cast-overflow too: gcc leaves it out of "undefined", and JSON numbers
# cast to int are where files from strangers reach it.
ifeq ($(SANITIZE),1)
  CFLAGS += -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer
endif

SRC      := $(shell find src -name '*.c' | sort)
LIB_SRC  := $(filter-out src/cli/main.c,$(SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(shell find tests -name 'test_*.c' | sort)
TEST_BIN := $(TEST_SRC:%.c=$(BUILD)/%)
HARNESS  := $(BUILD)/tests/harness.o

.PHONY: all deps run test bench clean test-asan fuzz fuzz-deps fuzz-build install
all: $(BUILD)/dam

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libdam.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/dam: $(BUILD)/src/cli/main.o $(BUILD)/libdam.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The data folder of an installed dam (src/common/datadir.c looks there
# after the build tree): compiled into the binary `make install` links, so a
# copy of it still finds its data. $(BUILD)/dam keeps the default
# (/usr/local/share/dam): installing never changes the build tree's objects.
PREFIX  ?= /usr/local
DATADIR  = $(PREFIX)/share/dam

$(BUILD)/tests/%: tests/%.c $(HARNESS) $(BUILD)/libdam.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(HARNESS) $(BUILD)/libdam.a $(LDLIBS) $(CHECK_LIBS)

# Installs the Debian packages that are missing (apt-get update once first).
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build-all: $(BUILD)/dam $(TEST_BIN)

run: deps
	@$(MAKE) --no-print-directory $(BUILD)/dam
	sh tests/demo.sh $(BUILD)/dam

# The normal suite, then the same suite under the sanitizers (make test-asan;
# TEST_ASAN=0 skips it while iterating).
TEST_ASAN ?= 1
test: deps
	@$(MAKE) --no-print-directory build-all
	sh tests/run_all.sh $(BUILD)
	@if [ "$(TEST_ASAN)" = 1 ]; then $(MAKE) --no-print-directory test-asan; fi

bench: deps
	@$(MAKE) --no-print-directory $(BUILD)/dam
	sh tests/bench.sh $(BUILD)/dam

# ---- sanitizers: the same suite, built with -fsanitize=address,undefined ----
# Leaks fail the run (detect_leaks), and so does the first UB report
# (halt_on_error). Huge allocations return NULL instead of aborting, so the
# out-of-memory paths are what gets tested. No -Werror: gcc warns differently
# (format-truncation) with -O1 and the sanitizers; the normal build keeps it.
ASAN_BUILD ?= $(BUILD)-asan
SAN_ENV  := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1:strict_string_checks=1:detect_stack_use_after_return=1 \
            UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 DAM_SANITIZED=1
test-asan: deps
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) OPT=-O1 SANITIZE=1 WERROR= build-all
	$(SAN_ENV) sh tests/run_all.sh $(ASAN_BUILD)

# ---- fuzzing: libFuzzer (clang + libclang-rt-14-dev), one binary per tests/fuzz/fuzz_*.c ----
# The library is rebuilt with clang and coverage instrumentation in $(BUILD)/fuzz;
# tests/fuzz/run.sh seeds each target from third_party/ and tests/fuzz/corpus/
# and runs it FUZZ_SECONDS (crashes land in $(BUILD)/fuzz/crashes/).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1
FUZZ_TARGETS ?=
FUZZ_DEB     := clang libclang-rt-14-dev
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -O1 -g $(MARCH) -fopenmp-simd -Wall -Wextra -Iinclude $(PKG_CFLAGS) \
                -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -MMD -MP
FUZZ_BIN     := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
# clang 14 cannot build the AVX kernels (no "f16c" in __builtin_cpu_supports):
# tests/fuzz/isa_stub.c replaces them and the portable kernels run.
FUZZ_NO_CLANG := src/kernels/isa_avx2.c src/kernels/isa_avx512.c
FUZZ_OBJ     := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(filter-out $(FUZZ_NO_CLANG),$(LIB_SRC)) tests/fuzz/isa_stub.c)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/libdam.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libdam.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/libdam.a $(PKG_LIBS) -lm -lpthread

# Installs clang and its sanitizer runtimes when missing (as make deps does).
fuzz-deps: deps
	@missing=""; for p in $(FUZZ_DEB); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-deps
	@$(MAKE) --no-print-directory fuzz-build
	sh tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_TARGETS)

# ---- install: the binary, relinked with PREFIX's data folder compiled in
# (the objects of $(BUILD) as they are), and the data it looks for, in the
# source tree's layout under PREFIX/share/dam ----
INSTALL_DIR   := $(BUILD)/install
TESTBED_FILES := $(filter-out %/golden.safetensors %/recipe,$(wildcard third_party/models/testbed/*))
install: $(BUILD)/src/cli/main.o $(BUILD)/libdam.a
	@mkdir -p $(INSTALL_DIR)
	$(CC) $(CFLAGS) -DDAM_DATADIR='"$(DATADIR)"' -c src/common/datadir.c -o $(INSTALL_DIR)/datadir.o
	$(CC) $(CFLAGS) -o $(INSTALL_DIR)/dam $(BUILD)/src/cli/main.o $(INSTALL_DIR)/datadir.o $(BUILD)/libdam.a $(LDLIBS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(DATADIR)/prompts $(DESTDIR)$(DATADIR)/configs \
	           $(DESTDIR)$(DATADIR)/third_party/models/testbed
	install -m 755 $(INSTALL_DIR)/dam $(DESTDIR)$(PREFIX)/bin/dam
	install -m 644 prompts/*.txt $(DESTDIR)$(DATADIR)/prompts/
	install -m 644 configs/dam.json $(DESTDIR)$(DATADIR)/configs/
	install -m 644 $(TESTBED_FILES) $(DESTDIR)$(DATADIR)/third_party/models/testbed/

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
