# ohbackup — build, test, install.
#
#   make            build build/ohbackup (installs missing Debian packages first when run as root)
#   make run        open ohbackup on a built-in demo device (created on first use under build/demo)
#   make check      every test: Check unit suites, end-to-end scripts (tests/e2e), a valgrind round
#                   trip, then the unit and e2e suites again under AddressSanitizer + UBSan
#   make check-asan only the sanitizer pass;  make unit / make e2e / make valgrind: one part
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean

PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
CC       ?= cc

PKGS     := libarchive libcjson ncursesw check libcurl
# Debian packages behind PKGS, plus the tools the tests drive (tar, bsdtar, tmux, python3 for JSON
# checks and tampered sets, valgrind, rclone as the loopback WebDAV server of the cloud driver tests,
# GNU time and restic for the benchmarks and their smoke test).
DEB_PKGS := libarchive-dev libcjson-dev libncurses-dev check pkg-config libarchive-tools tar tmux python3 valgrind \
            libcurl4-openssl-dev rclone time restic

# Recursive (=) on purpose: pkg-config runs when a recipe needs the flags, i.e. after `deps`.
PKG_CFLAGS = $(shell pkg-config --cflags libarchive libcjson ncursesw libcurl)
# libcurl is not linked: cloud_webdav.c loads it with dlopen when a WebDAV cloud is used, so no other
# command pays for loading it (its headers are still needed to build).
PKG_LIBS   = $(shell pkg-config --libs libarchive libcjson)
TUI_LIBS   = $(shell pkg-config --libs ncursesw)
CHECK_CFLAGS = $(shell pkg-config --cflags check)
CHECK_LIBS   = $(shell pkg-config --libs check)

WARN     := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(EXTRA_CFLAGS) -Ibackend/include -Ibackend $(PKG_CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lpthread -ldl

BACKEND_SRC := $(sort $(wildcard backend/*.c))
TUI_SRC     := $(sort $(wildcard tui/*.c))
UNIT_SRC    := $(sort $(wildcard tests/unit/test_*.c))

BACKEND_OBJ := $(BACKEND_SRC:%.c=$(BUILD)/%.o)
TUI_OBJ     := $(TUI_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ    := $(UNIT_SRC:%.c=$(BUILD)/%.o) $(BUILD)/tests/unit/runner.o
# The console's pure logic (no curses), linked into the unit runner too.
TUI_LOGIC_OBJ := $(addprefix $(BUILD)/tui/,widget_fmt.o widget_list.o theme.o console_evq.o)

LIB  := $(BUILD)/libohbackup.a
BIN  := $(BUILD)/ohbackup
UNIT := $(BUILD)/unit_tests

.PHONY: all deps run demo check unit e2e check-asan valgrind bench bench-smoke install uninstall clean

all: deps $(BIN)

# Installs what is missing when we are root; otherwise says exactly what to install.
deps:
	@missing=""; \
	pkg-config --exists $(PKGS) 2>/dev/null || missing=yes; \
	for t in bsdtar tar tmux python3 valgrind rclone restic; do command -v $$t >/dev/null 2>&1 || missing=yes; done; \
	[ -x /usr/bin/time ] || missing=yes; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "ohbackup: installing build dependencies: $(DEB_PKGS)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS) >/dev/null; \
	  else \
	    echo "ohbackup: missing build dependencies; run as root: apt-get install $(DEB_PKGS)" >&2; exit 1; \
	  fi; \
	fi

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

# Suites are declared by the generated runner, not by a header: no prototype warning for them.
$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Wno-missing-prototypes -MMD -MP -c $< -o $@

$(LIB): $(BACKEND_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(TUI_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) $(LDFLAGS) -o $@ $(TUI_OBJ) $(LIB) $(LDLIBS_ALL) $(TUI_LIBS)

# The unit runner lists every `Suite *x_suite(void)` defined in tests/unit/test_*.c.
$(BUILD)/tests/unit/runner.c: $(UNIT_SRC) tests/unit/runner.c.in
	@mkdir -p $(dir $@)
	@suites=$$(sed -n 's/^Suite \*\([a-z0-9_]*_suite\)(void).*/\1/p' $(UNIT_SRC) 2>/dev/null); \
	{ echo '#include <check.h>'; \
	  for s in $$suites; do echo "Suite *$$s(void);"; done; \
	  echo 'static Suite *(*const all_suites[])(void) = {'; \
	  for s in $$suites; do echo "    $$s,"; done; \
	  echo '    0 };'; \
	  cat tests/unit/runner.c.in; } > $@

$(BUILD)/tests/unit/runner.o: $(BUILD)/tests/unit/runner.c
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c $< -o $@

$(UNIT): $(UNIT_OBJ) $(TUI_LOGIC_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) $(LDFLAGS) -o $@ $(UNIT_OBJ) $(TUI_LOGIC_OBJ) $(LIB) $(LDLIBS_ALL) $(CHECK_LIBS)

# The demo device comes with a directory cloud (build/demo/cloud, `ohbackup demo --cloud`) holding a
# few of the gallery bundle's photos and a note, so the console's Cloud screen (c) has something to
# sync, browse and download at once.
demo: all
	@test -f $(BUILD)/demo/root/device.json || ./$(BIN) --root $(BUILD)/demo/root demo --cloud $(BUILD)/demo/cloud
	@echo "demo device: $(BUILD)/demo/root   store: $(BUILD)/demo/store   cloud: $(BUILD)/demo/cloud"

run: demo
	./$(BIN) --root $(BUILD)/demo/root --store $(BUILD)/demo/store

unit: deps $(UNIT)
	$(UNIT)

e2e: deps $(BIN)
	OHBACKUP_BIN=$(abspath $(BIN)) sh tests/e2e/run-all.sh

# Everything: the unit suites and the end-to-end tests, a round trip under valgrind, the benchmarks
# at a tiny scale (that `make bench` works and reports truthfully), then both suites again built
# with AddressSanitizer + UBSan (with clang when present, -Werror, so a clang warning fails too).
# About six minutes on two cores.
check: deps $(BIN) $(UNIT)
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory e2e
	@$(MAKE) --no-print-directory valgrind
	@$(MAKE) --no-print-directory bench-smoke
	@$(MAKE) --no-print-directory check-asan

ASAN_CC = $(shell command -v clang >/dev/null 2>&1 && echo clang || echo gcc)
check-asan: deps
	$(MAKE) --no-print-directory BUILD=build-asan CC=$(ASAN_CC) EXTRA_CFLAGS=-Werror \
	  CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" unit e2e

valgrind: deps $(BIN)
	OHBACKUP_BIN=$(abspath $(BIN)) OHBACKUP_VALGRIND=1 sh tests/e2e/valgrind_roundtrip.sh

bench-smoke: deps $(BIN)
	OHBACKUP_BIN=$(abspath $(BIN)) sh tests/bench/smoke.sh

bench: deps $(BIN)
	OHBACKUP_BIN=$(abspath $(BIN)) sh tests/bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/ohbackup/themes $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/ohbackup
	for t in themes/*.theme; do [ -f "$$t" ] && install -m 644 "$$t" $(DESTDIR)$(PREFIX)/share/ohbackup/themes/; done; true
	[ -f docs/ohbackup.1 ] && install -m 644 docs/ohbackup.1 $(DESTDIR)$(PREFIX)/share/man/man1/ || true

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/ohbackup $(DESTDIR)$(PREFIX)/share/man/man1/ohbackup.1
	rm -rf $(DESTDIR)$(PREFIX)/share/ohbackup

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
