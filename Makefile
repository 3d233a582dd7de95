# Cadenza: build, local stack, tests and benchmarks.
#
#   make            build every binary into bin/
#   make run        install what is missing, start the stack, run a sample job
#   make test       the same set-up, the code checks (fmt-check, check-sql, check-cycles),
#                   then unit tests (ASan+UBSan), a fuzz smoke and system tests
#   make bench      benchmarks, each beside its baseline
#   make model      retrain neural@1 from scratch (the committed weights need none)
#   make fuzz       libFuzzer over request parsing (FUZZ_SECONDS, default 300)
#   make up         start the local stack in the background
#   make stop       stop it, keeping its data; make down stops it and removes its state
#   make fmt        clang-format every C file
#   make lint       validate the deployment files (tools/lint.sh)

CC      ?= gcc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -I. -MMD -MP

# The libraries each part needs (pkg-config names). Each binary links its
# own list and nothing more: the API and the scheduler have no FluidSynth,
# aubio or FFTW, only the worker and the CLI carry the audio stack, and only
# the worker carries OpenBLAS (the neural model's matrix products).
PKG_BASE   := libpq rdkafka hiredis libcjson libmicrohttpd libcurl openssl
PKG_AUDIO  := sndfile libebur128 libchromaprint soxr aubio fftw3f fluidsynth
PKG_MODEL  := openblas
PKG_ALL    := $(PKG_BASE) $(PKG_AUDIO) $(PKG_MODEL)
pkg_cflags  = $(shell pkg-config --cflags $(1) 2>/dev/null)
pkg_libs    = $(shell pkg-config --libs $(1) 2>/dev/null) -lm -pthread
CFLAGS  += $(call pkg_cflags,$(PKG_ALL))
API_LIBS    := $(call pkg_libs,$(PKG_BASE))
SCHED_LIBS  := $(call pkg_libs,$(PKG_BASE))
WORKER_LIBS := $(call pkg_libs,$(PKG_ALL))
CLI_LIBS    := $(call pkg_libs,$(PKG_BASE) sndfile libebur128 libchromaprint aubio fftw3f)
ALL_LIBS    := $(call pkg_libs,$(PKG_ALL))

BUILD   := build

# CUDA, only where nvcc is found (on the PATH, or NVCC=/path/to/nvcc):
# neural@1 then gets its GPU forward pass (workers/models/neural/cuda.cu,
# chosen by CADENZA_NEURAL_DEVICE=cuda), transformer.c is compiled with
# CZ_HAVE_CUDA, the worker, benchmarks and unit tests link cuBLAS and the
# CUDA runtime, and `make unit` runs test_neural_cuda, which needs a GPU
# (CADENZA_NO_GPU=1 skips it). Without nvcc none of this exists and the
# build is what it was. The toolkit's folder is the one above nvcc's bin/;
# CUDA_LIBS and CUDA_ARCH may be given where the layout differs (a toolkit
# from NVIDIA's PyPI wheels: docs/models/neural-1.md).
comma := ,
NVCC ?= $(shell command -v nvcc 2>/dev/null)
ifneq ($(NVCC),)
CUDA_HOME   ?= $(patsubst %/bin/nvcc,%,$(realpath $(shell command -v $(NVCC) 2>/dev/null)))
CUDA_LIBDIR ?= $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib))
CUDA_LIBS   ?= $(if $(CUDA_LIBDIR),-L$(CUDA_LIBDIR) -Wl$(comma)-rpath$(comma)$(CUDA_LIBDIR)) \
               -lcublas -lcudart -lstdc++
# Turing (T4) to Hopper (H100) as machine code, and PTX that newer GPUs compile.
CUDA_ARCH   ?= -gencode arch=compute_75,code=sm_75 -gencode arch=compute_80,code=sm_80 \
               -gencode arch=compute_86,code=sm_86 -gencode arch=compute_89,code=sm_89 \
               -gencode arch=compute_90,code=[sm_90,compute_90]
# -fmad=false: the kernels round every multiply and add as transformer.c
# does (its -std=c17 keeps gcc from contracting them), see cuda.cu.
NVCC_FLAGS  ?= -O2 -g
NVCC_FLAGS  += -std=c++17 -fmad=false $(CUDA_ARCH) -ccbin $(CC) -I. \
               -Xcompiler -Wall,-Wextra,-Werror,-pthread -Werror all-warnings \
               -Wno-deprecated-gpu-targets
CUDA_OBJ    := $(BUILD)/workers/models/neural/cuda.o
ALL_LIBS    += $(CUDA_LIBS)
WORKER_LIBS += $(CUDA_LIBS)
$(BUILD)/workers/models/neural/transformer.o \
$(BUILD)/asan/workers/models/neural/transformer.o: CFLAGS += -DCZ_HAVE_CUDA
else
CUDA_OBJ    :=
endif
# Objects do not record their flags, so transformer.c's also depend on
# $(BUILD)/cuda.stamp, which holds the nvcc of the last make and is
# rewritten only when that changes: nvcc appearing or going rebuilds them
# (a build that never had nvcc has no stamp).
CUDA_STAMP  := $(BUILD)/cuda.stamp
ifneq ($(NVCC)$(wildcard $(CUDA_STAMP)),)
$(shell mkdir -p $(BUILD) && echo '$(NVCC)' | cmp -s - $(CUDA_STAMP) || echo '$(NVCC)' >$(CUDA_STAMP))
$(BUILD)/workers/models/neural/transformer.o \
$(BUILD)/asan/workers/models/neural/transformer.o: $(CUDA_STAMP)
endif

JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
objs     = $(patsubst %.c,$(BUILD)/%.o,$(1))

# common/ is four static libraries, one per folder: a binary takes from
# each only the objects it references, so a folder it does not use adds
# neither code nor libraries to it.
LIB_DIRS  := common common/db common/music common/playlist
LIB_NAMES := $(subst /,_,$(LIB_DIRS))
LIBS_CZ   := $(BUILD)/lib/libcz_common_playlist.a $(BUILD)/lib/libcz_common_db.a \
             $(BUILD)/lib/libcz_common_music.a $(BUILD)/lib/libcz_common.a
$(foreach d,$(LIB_DIRS),$(eval \
    $(BUILD)/lib/libcz_$(subst /,_,$(d)).a: $(call objs,$(wildcard $(d)/*.c))))

API_SRC    := $(wildcard api/*.c)
SCHED_SRC  := $(wildcard scheduler/*.c)
WORKER_SRC := $(wildcard workers/*.c workers/*/*.c workers/*/*/*.c)
CLI_SRC    := $(wildcard cli/*.c)
API     := $(call objs,$(API_SRC)) $(BUILD)/gen/openapi_json.o $(BUILD)/gen/review_assets.o
SCHED   := $(call objs,$(SCHED_SRC))
WORKER  := $(call objs,$(WORKER_SRC)) $(CUDA_OBJ)
CLI     := $(call objs,$(CLI_SRC))
BINS    := bin/cadenza-api bin/cadenza-scheduler bin/cadenza-worker bin/cadenzactl

# Unit tests link one sanitized library: every source but the mains,
# compiled once with ASan and UBSan into build/asan/, then archived.
ASAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
UNIT_SRC := $(filter-out $(if $(CUDA_OBJ),,tests/unit/test_neural_cuda.c),\
              $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))
ASAN_SRC := $(filter-out %/main.c,$(LIB_SRC) $(API_SRC) $(SCHED_SRC) $(WORKER_SRC) $(CLI_SRC))
# cuda.cu's object is the same one (nvcc's host code is not sanitized).
ASAN_OBJ := $(patsubst %.c,$(BUILD)/asan/%.o,$(ASAN_SRC)) \
            $(BUILD)/asan/gen/openapi_json.o $(BUILD)/asan/gen/review_assets.o $(CUDA_OBJ)

# Objects made on the way to a program are kept, so a second make has nothing to do.
.SECONDARY:

.PHONY: all deps up down stop run test unit system bench model fmt fmt-check clean logs fuzz fuzz-smoke \
        lint check-sql check-cycles

# libFuzzer over request parsing and validation (clang only). `make fuzz`
# runs FUZZ_SECONDS (default 300); `make test` runs a short smoke of it.
# New inputs the fuzzer finds go to build/fuzz/corpus; the committed seeds
# in tests/fuzz/corpus/request are only read.
FUZZ_SECONDS ?= 300
FUZZ_FLAGS := -g -O1 -std=c17 -D_GNU_SOURCE -I. -Wall -Wextra -Werror -fno-omit-frame-pointer \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_LIB := api/request.c common/json.c common/music/prompt.c common/hash.c common/err.c \
            common/mem.c common/buf.c \
            common/ids.c common/webhook.c
all: $(BINS) $(BUILD)/bench/fp_bench $(BUILD)/bench/wh_receiver $(BUILD)/bench/wh_events \
     $(BUILD)/bench/pl_eval $(BUILD)/bench/neural_speed $(BUILD)/bench/memorisation

# Benchmark drivers written in C link common/ like the binaries do.
$(BUILD)/bench/pl_eval: $(BUILD)/cli/synth_catalog.o
$(BUILD)/bench/neural_speed $(BUILD)/bench/memorisation: $(call objs,$(wildcard workers/models/neural/*.c)) \
    $(CUDA_OBJ)
$(BUILD)/bench/%: $(BUILD)/tests/bench/%.o $(LIBS_CZ)
	@mkdir -p $(dir $@)
	@echo "  BENCH   $@"
	@$(CC) $(CFLAGS) -o $@ $(filter %.o,$^) $(LIBS_CZ) $(ALL_LIBS)

# The OpenAPI document is written in YAML and served as JSON: converted at
# build time, so the binary carries exactly what api/openapi.yaml says.
$(BUILD)/gen/openapi_json.c: api/openapi.yaml tools/openapi_to_c.py
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	@python3 tools/openapi_to_c.py $< $@

# The curators' page (api/review/) is embedded the same way: the binary
# serves the committed files at /review/, with nothing to find on disk.
$(BUILD)/gen/review_assets.c: $(wildcard api/review/*) tools/embed_files.py
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	@python3 tools/embed_files.py api/review $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/asan/gen/%.o: $(BUILD)/gen/%.c
	@mkdir -p $(dir $@)
	@echo "  CC/SAN  $<"
	@$(CC) $(CFLAGS) -O1 $(ASAN) -c -o $@ $<

# Header dependencies come from the compiler (-MMD -MP): the .d files
# beside the objects.
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC/SAN  $<"
	@$(CC) $(CFLAGS) -O1 $(ASAN) -c -o $@ $<

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	@echo "  NVCC    $<"
	@$(NVCC) $(NVCC_FLAGS) -MMD -MP -MF $(@:.o=.d) -c -o $@ $<

$(BUILD)/lib/%.a:
	@mkdir -p $(dir $@)
	@echo "  AR      $@"
	@rm -f $@ && ar rcs $@ $^

$(BUILD)/asan/libcz.a: $(ASAN_OBJ)
	@echo "  AR      $@"
	@rm -f $@ && ar rcs $@ $^

bin/cadenza-api: $(API) $(LIBS_CZ)
	@mkdir -p bin
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) -o $@ $(API) $(LIBS_CZ) $(API_LIBS)
bin/cadenza-scheduler: $(SCHED) $(LIBS_CZ)
	@mkdir -p bin
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) -o $@ $(SCHED) $(LIBS_CZ) $(SCHED_LIBS)
bin/cadenza-worker: $(WORKER) $(LIBS_CZ)
	@mkdir -p bin
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) -o $@ $(WORKER) $(LIBS_CZ) $(WORKER_LIBS)
bin/cadenzactl: $(CLI) $(LIBS_CZ)
	@mkdir -p bin
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) -o $@ $(CLI) $(LIBS_CZ) $(CLI_LIBS)

$(BUILD)/unit/%: $(BUILD)/asan/tests/unit/%.o $(BUILD)/asan/libcz.a
	@mkdir -p $(dir $@)
	@echo "  UNIT    $@"
	@$(CC) $(CFLAGS) -O1 $(ASAN) -o $@ $< $(BUILD)/asan/libcz.a $(ALL_LIBS) -lcmocka

$(BUILD)/fuzz/fuzz_request: tests/fuzz/fuzz_request.c $(FUZZ_LIB)
	@mkdir -p $(dir $@) $(BUILD)/fuzz/corpus
	@echo "  FUZZ    $@"
	@clang $(FUZZ_FLAGS) $(shell pkg-config --cflags libcjson openssl) -o $@ $< $(FUZZ_LIB) \
		$(shell pkg-config --libs libcjson openssl) -lm

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

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

stop:
	deploy/local/stack.sh stop

logs:
	deploy/local/stack.sh logs

run: up
	tests/run-sample.sh

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

system: up
	python3 -m pytest -v tests/system

test: deps
	$(MAKE) fmt-check
	$(MAKE) check-sql
	$(MAKE) -j$(JOBS) all
	$(MAKE) check-cycles
	$(MAKE) -j$(JOBS) unit
	$(MAKE) fuzz-smoke
	$(MAKE) system

bench: deps
	$(MAKE) all
	tests/bench/run.sh

# Retrains neural@1 from scratch and writes its weights, loss curve and
# held-out figures (tools/model/make_model.sh; at most 90 minutes on 2 cores).
model:
	tools/model/make_model.sh

lint:
	tools/lint.sh

# All SQL lives in common/db/ (common/db/db.h): fails on a statement elsewhere.
check-sql:
	tools/check_sql.sh

# No file calls into a file that (through others) calls back into it; read
# from the objects' symbols, so it needs the build.
check-cycles: all
	python3 tools/check_cycles.py $(BUILD)

C_FILES = $(shell git ls-files '*.c' '*.h' '*.cu' 2>/dev/null || find . \( -name '*.[ch]' -o -name '*.cu' \) -not -path './build/*')

fmt:
	@clang-format -i $(C_FILES)

fmt-check:
	@echo "  FORMAT  clang-format --dry-run on $(words $(C_FILES)) files"
	@clang-format --dry-run --Werror $(C_FILES)

clean:
	rm -rf $(BUILD) bin
