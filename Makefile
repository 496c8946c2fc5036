# calgate: one binary, ./calgate.
#   make          build ./calgate
#   make run      install missing packages, build, serve config.example
#   make check    install missing packages, build, run every test
#                 (unit tests plain and under ASan+UBSan, then integration)
#   make bench    benchmarks side by side with peers
#   SANITIZE=1    build everything with ASan+UBSan (build-san/)

PKGS    = libmicrohttpd libetpan libical libxml-2.0 sqlite3 inih libunbound \
          libpsl gnutls libcrypt
CC     ?= cc
OPT    ?= -O2
WARN    = -Wall -Wextra -Werror
CFLAGS += -std=gnu11 $(OPT) -g $(WARN) -D_GNU_SOURCE -I. \
          $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libetpan's .pc drags in Debian's no-PIE link specs; they clash with ASan.
LDLIBS  = $(filter-out -specs=%,$(shell pkg-config --libs $(PKGS) 2>/dev/null)) \
          -lpthread -lm

ifeq ($(SANITIZE),1)
B       = build-san
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
          -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else
B       = build
endif

SRCS    = $(wildcard server/*.c webdav/*.c imap-poller/*.c policy/*.c)
OBJS    = $(SRCS:%.c=$(B)/%.o)
LIBOBJS = $(filter-out $(B)/server/main.o,$(OBJS))
UNITS   = $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/test_*.c))
# Helper programs for the integration tests and benchmarks (not tests).
TOOLS   = $(patsubst tests/tools/%.c,$(B)/tools/%,$(wildcard tests/tools/*.c))
BIN     = $(if $(filter 1,$(SANITIZE)),$(B)/calgate,calgate)

.PHONY: all deps deps-test run check unit integration bench clean
all: $(BIN)

deps:
	@./.ci/install-deps build
deps-test:
	@./.ci/install-deps test

$(BIN): $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/libcalgate.a: $(LIBOBJS)
	@rm -f $@
	ar rcs $@ $^

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(B)/tests/%: tests/unit/%.c $(B)/libcalgate.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libcalgate.a $(LDLIBS)

$(B)/tools/%: tests/tools/%.c $(B)/libcalgate.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libcalgate.a $(LDLIBS)

-include $(OBJS:.o=.d)

run: deps
	@$(MAKE) --no-print-directory all
	./calgate serve -c config.example

unit: $(BIN) $(UNITS)
	@./tests/run unit $(UNITS)

integration: $(BIN) $(TOOLS)
	@./tests/run integration tests/integration/test_*

# `make check` = the whole suite; `make check SANITIZE=1` = unit tests under
# ASan+UBSan only (the plain run calls it too).
ifeq ($(SANITIZE),1)
check: deps-test
	@$(MAKE) --no-print-directory SANITIZE= calgate
	@$(MAKE) --no-print-directory SANITIZE=1 $(UNITS)
	@./tests/run unit-sanitized $(UNITS)
else
check: deps-test
	@$(MAKE) --no-print-directory all $(UNITS) $(TOOLS)
	@$(MAKE) --no-print-directory SANITIZE=1 \
		$(patsubst build/%,build-san/%,$(UNITS) $(TOOLS))
	@./tests/run all $(UNITS) $(patsubst build/%,build-san/%,$(UNITS)) \
		tests/integration/test_*
endif

bench: deps-test all $(TOOLS) $(B)/tools/opendkim_bench
	@./tests/bench/run

# OpenDKIM's verifier in one process, for the gate benchmark only: its
# header comes with libopendkim-dev, its library with opendkim-tools.
$(B)/tools/opendkim_bench: tests/bench/opendkim_bench.c $(B)/server/file.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -l:libopendkim.so.11

clean:
	rm -rf build build-san calgate
