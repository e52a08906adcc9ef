# dam — build, test and run.
#   make          build build/dam (-O2 -march=native)
#   make PORTABLE=1   build without -march=native (runs on any x86-64 / arm64)
#   make run      install missing packages, build, run the demo on the embedded model
#   make test     install missing packages, build, run the whole test suite
#   make bench    speed tables (see README)
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
CFLAGS   += -std=c11 -D_GNU_SOURCE $(OPT) $(MARCH) -g -fopenmp -Wall -Wextra $(WERROR) \
            -Iinclude $(PKG_CFLAGS) -MMD -MP
LDLIBS   += $(PKG_LIBS) -fopenmp -lm -lpthread

SRC      := $(shell find src -name '*.c' | sort)
LIB_SRC  := $(filter-out src/cli/main.c,$(SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(shell find tests -name 'test_*.c' | sort)
TEST_BIN := $(TEST_SRC:%.c=$(BUILD)/%)
HARNESS  := $(BUILD)/tests/harness.o

.PHONY: all deps run test bench clean
all: $(BUILD)/dam

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libdam.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/dam: $(BUILD)/src/cli/main.o $(BUILD)/libdam.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

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

test: deps
	@$(MAKE) --no-print-directory build-all
	sh tests/run_all.sh $(BUILD)

bench: deps
	@$(MAKE) --no-print-directory $(BUILD)/dam
	sh tests/bench.sh $(BUILD)/dam

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
