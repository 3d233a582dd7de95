# Cadenza: build, local stack, tests and benchmarks.
#
#   make            build every binary into bin/
#   make run        install what is missing, start the stack, run a sample job
#   make test       the same set-up, then unit tests (ASan+UBSan) and system tests
#   make bench      benchmarks, each beside its baseline
#   make fuzz       libFuzzer over request parsing (FUZZ_SECONDS, default 300)
#   make up/down    start/stop the local stack in the background
#   make fmt        clang-format every C file
#   make lint       validate the deployment files (tools/lint.sh)

CC      ?= gcc
PKGS    := libpq rdkafka hiredis libcjson libmicrohttpd libcurl openssl sndfile libebur128 \
           fluidsynth libchromaprint soxr aubio fftw3f
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread
CFLAGS  += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread

BUILD   := build
COMMON  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard common/*.c))
API     := $(patsubst %.c,$(BUILD)/%.o,$(wildcard api/*.c)) $(BUILD)/gen/openapi_json.o \
           $(BUILD)/gen/review_assets.o
SCHED   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard scheduler/*.c))
WORKER  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard workers/*.c))
CLI     := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cli/*.c))
BINS    := bin/cadenza-api bin/cadenza-scheduler bin/cadenza-worker bin/cadenzactl

# Unit tests link the module they test (everything but main.c) and common/.
ASAN    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))
UNIT_LIB := $(filter-out %/main.c,$(wildcard common/*.c api/*.c scheduler/*.c workers/*.c)) \
            $(BUILD)/gen/openapi_json.c $(BUILD)/gen/review_assets.c

.PHONY: all deps up down run test unit system bench fmt fmt-check clean logs fuzz fuzz-smoke lint

# libFuzzer over request parsing and validation (clang only). `make fuzz`
# runs FUZZ_SECONDS (default 300); `make test` runs a short smoke of it.
# New inputs the fuzzer finds go to build/fuzz/corpus; the committed seeds
# in tests/fuzz/corpus/request are only read.
FUZZ_SECONDS ?= 300
FUZZ_FLAGS := -g -O1 -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -fno-omit-frame-pointer \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_LIB := api/request.c common/json.c common/prompt.c common/hash.c common/err.c common/ids.c \
            common/webhook.c
all: $(BINS) $(BUILD)/bench/fp_bench $(BUILD)/bench/wh_receiver $(BUILD)/bench/wh_events \
     $(BUILD)/bench/pl_eval

# Benchmark drivers written in C link common/ like the binaries do.
$(BUILD)/bench/%: tests/bench/%.c $(COMMON)
	@mkdir -p $(dir $@)
	@echo "  BENCH   $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The OpenAPI document is written in YAML and served as JSON: converted at
# build time, so the binary carries exactly what api/openapi.yaml says.
$(BUILD)/gen/openapi_json.c: api/openapi.yaml tools/openapi_to_c.py
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	@python3 tools/openapi_to_c.py $< $@

$(BUILD)/gen/openapi_json.o: $(BUILD)/gen/openapi_json.c api/openapi.h
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

# The curators' page (api/review/) is embedded the same way: the binary
# serves the committed files at /review/, with nothing to find on disk.
$(BUILD)/gen/review_assets.c: $(wildcard api/review/*) tools/embed_files.py
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	@python3 tools/embed_files.py api/review $@

$(BUILD)/gen/review_assets.o: $(BUILD)/gen/review_assets.c api/assets.h
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

bin/cadenza-api: $(API) $(COMMON)
bin/cadenza-scheduler: $(SCHED) $(COMMON)
bin/cadenza-worker: $(WORKER) $(COMMON)
bin/cadenzactl: $(CLI) $(COMMON)
$(BINS):
	@mkdir -p bin
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit/%: tests/unit/%.c $(UNIT_LIB) $(wildcard */*.h)
	@mkdir -p $(dir $@)
	@echo "  UNIT    $@"
	@$(CC) $(CFLAGS) -O1 $(ASAN) -o $@ $< $(UNIT_LIB) $(LDLIBS) -lcmocka

$(BUILD)/fuzz/fuzz_request: tests/fuzz/fuzz_request.c $(FUZZ_LIB) $(wildcard */*.h)
	@mkdir -p $(dir $@) $(BUILD)/fuzz/corpus
	@echo "  FUZZ    $@"
	@clang $(FUZZ_FLAGS) $(shell pkg-config --cflags libcjson openssl) -o $@ $< $(FUZZ_LIB) \
		$(shell pkg-config --libs libcjson openssl) -lm

fuzz: $(BUILD)/fuzz/fuzz_request
	$< -max_total_time=$(FUZZ_SECONDS) -max_len=70000 -timeout=10 -rss_limit_mb=2048 \
		-dict=tests/fuzz/json.dict -print_final_stats=1 \
		$(BUILD)/fuzz/corpus tests/fuzz/corpus/request

fuzz-smoke:
	$(MAKE) fuzz FUZZ_SECONDS=30

deps:
	deploy/local/install-deps.sh

# Targets that may run on a machine without the libraries yet install them
# first, then build in a sub-make: pkg-config's flags are read when make
# starts, which is before deps has installed anything.
up: deps
	$(MAKE) all
	deploy/local/stack.sh up

down:
	deploy/local/stack.sh down

logs:
	deploy/local/stack.sh logs

run: up
	tests/run-sample.sh

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

system: up
	python3 -m pytest -v tests/system

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) fuzz-smoke
	$(MAKE) system

bench: deps
	$(MAKE) all
	tests/bench/run.sh

lint:
	tools/lint.sh

fmt:
	clang-format -i $(wildcard */*.c */*.h tests/unit/*.c tests/bench/*.c tests/fuzz/*.c)

fmt-check:
	clang-format --dry-run --Werror $(wildcard */*.c */*.h tests/unit/*.c tests/bench/*.c tests/fuzz/*.c)

clean:
	rm -rf $(BUILD) bin
