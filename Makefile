# lipgan build. `make` builds the library and CLI; `make test` runs the suite;
# `make check` (what .ci/run calls) installs Debian packages, builds, runs the
# suite plain and under ASan+UBSan. Build dirs are separate per flavour
# (BUILD=...), so several builds can coexist.
#
#   make [BUILD=build] [SAN=1] [DEBUG=1] [CUDA=0|1]

BUILD ?= build
CC    ?= cc
ARCH  := $(shell uname -m)-linux-gnu

OBLAS_DIR := /usr/lib/$(ARCH)/openblas-openmp
OBLAS_INC := /usr/include/$(ARCH)/openblas-openmp

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror=implicit-function-declaration -Wno-unused-parameter -fopenmp -Iinclude -Isrc -I$(OBLAS_INC) -I/usr/include/cjson
LDLIBS := -L$(OBLAS_DIR) -Wl,-rpath,$(OBLAS_DIR) -lopenblas -llapacke -lcjson -lyaml -lpng -lz -lm -fopenmp -lpthread

ifeq ($(SAN),1)
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDSAN := -fsanitize=address,undefined
else ifeq ($(DEBUG),1)
  OPT := -O0 -g
else
  OPT := -O3 -march=x86-64-v2 -g
endif

# ---- optional features, reported once ----
NVCC ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
ifeq ($(CUDA),0)
  NVCC :=
endif
ifneq ($(SAN),1)
ifneq ($(NVCC),)
  HAVE_CUDA := 1
  CUDA_HOME := $(patsubst %/bin/nvcc,%,$(NVCC))
endif
endif
MPICC := $(shell command -v mpicc 2>/dev/null)
ifeq ($(MPI),0)
  MPICC :=
endif
ifneq ($(MPICC),)
  CFLAGS_BASE += -DLG_HAVE_MPI=1 $(shell $(MPICC) --showme:compile)
  LDLIBS += $(shell $(MPICC) --showme:link)
endif

ifeq ($(HAVE_CUDA),1)
  CFLAGS_BASE += -DLG_HAVE_CUDA=1 -I$(CUDA_HOME)/include
  LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lcublas -lcusolver -lstdc++
  NVFLAGS := -O3 -std=c++17 -Iinclude -Isrc --compiler-options -fPIC,-Wall -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
endif

# -fno-trapping-math: lipgan never enables FP traps; without it GCC keeps a
# branch in selects such as g * (x > 0 ? 1 : 0) and the loop does not
# vectorize (ReLU's backward pass ran 5x slower). Values are unchanged: only
# trap side effects differ.
CFLAGS := $(CFLAGS_BASE) -fno-trapping-math $(OPT) $(EXTRA_CFLAGS)

LIB_SRC := $(filter-out src/cli/%,$(shell find src -name '*.c' | sort))
CU_SRC  := $(if $(HAVE_CUDA),$(shell find src -name '*.cu' | sort))
CLI_SRC := $(shell find src/cli -name '*.c' | sort)
TEST_SRC := $(shell find tests -maxdepth 1 -name 'test_*.c' | sort)
TEST_COMMON := $(filter-out $(TEST_SRC),$(shell find tests -maxdepth 1 -name '*.c' | sort))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(CU_SRC:%.cu=$(BUILD)/%.cu.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_COMMON_OBJ := $(TEST_COMMON:%.c=$(BUILD)/%.o)

LIB := $(BUILD)/liblipgan.a
CLI := $(BUILD)/lipgan

BENCH_SRC := $(shell find bench -name '*.c' | sort)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP $< $(LIB) $(LDLIBS) $(LDSAN) -o $@

EX_SRC := $(shell find examples -name '*.c' 2>/dev/null | sort)
EX_BIN := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)

.PHONY: all test check analyze memcheck features clean bench setup quickstart toy install shared
all: features $(LIB) $(CLI) $(EX_BIN)

features:
	@echo "lipgan build ($(BUILD)): OpenMP found; OpenBLAS (openmp) $(if $(wildcard $(OBLAS_DIR)/libopenblas.so),found,MISSING: run tools/setup.sh); CUDA $(if $(HAVE_CUDA),found ($(NVCC)),not built$(if $(filter 1,$(SAN)), (sanitizer build),)); MPI $(if $(MPICC),found (dist: mpi),not found)"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -MMD -MP -MF $@.d -c $< -o $@

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The shared library (`make shared`, and `make install` outside sanitizer
# builds): the C sources again as position-independent code in $(BUILD)/pic
# (the .cu objects are PIC already), linked with every dependency so that a
# program needs only -llipgan. -fno-semantic-interposition keeps calls
# inside the library inlinable, as in the static build.
SO_NAME := liblipgan.so.0
SHLIB := $(BUILD)/liblipgan.so
PIC_OBJ := $(LIB_SRC:%.c=$(BUILD)/pic/%.o) $(CU_SRC:%.cu=$(BUILD)/%.cu.o)
$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -fno-semantic-interposition -MMD -MP -c $< -o $@
# Only the functions the public headers declare are exported; the backends'
# and trainer's internals (lg_cpu_*, lg__*, ...) stay inside the library.
$(BUILD)/lipgan.map: $(wildcard include/lipgan/*.h)
	@mkdir -p $(dir $@)
	{ echo '{ global:'; grep -ho '\blg_[a-z0-9_]*[[:space:]]*(' include/lipgan/*.h | \
	  sed 's/[[:space:]]*($$/;/' | sort -u; echo 'local: *; };'; } > $@
$(SHLIB): $(PIC_OBJ) $(BUILD)/lipgan.map
	$(CC) -shared -Wl,-soname,$(SO_NAME) -Wl,--version-script,$(BUILD)/lipgan.map $(PIC_OBJ) \
		$(LDLIBS) -o $@
shared: $(SHLIB)

$(CLI): $(CLI_OBJ) $(LIB)
	$(CC) $(CFLAGS) $(CLI_OBJ) $(LIB) $(LDLIBS) $(LDSAN) -o $@

$(BUILD)/tests/%: tests/%.c $(TEST_COMMON_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -Itests $< $(TEST_COMMON_OBJ) $(LIB) $(LDLIBS) $(LDSAN) -o $@

$(BUILD)/examples/%: examples/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP $< $(LIB) $(LDLIBS) $(LDSAN) -o $@

# Runs every test binary (and the CLI tests) and prints "N passed, N failed".
# The GPU test programs (tests/gpu, run on a GPU machine by
# tests/gpu/device_run.sh) are built wherever CUDA is, so CI compiles them.
GPU_TEST_BIN := $(if $(HAVE_CUDA),$(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/gpu/test_*.c)))

test: all $(TEST_BIN) $(BENCH_BIN) $(GPU_TEST_BIN)
	@BUILD=$(BUILD) tests/run_all.sh $(TEST_BIN)

bench: all $(BENCH_BIN)
	bench/run.sh

# The one command of README's Quick start and .ci/run.
check:
	tools/setup.sh
	$(MAKE) test BUILD=build
	$(MAKE) test BUILD=build-san SAN=1
	$(MAKE) analyze
	$(MAKE) memcheck

# valgrind memcheck (tests/memcheck.sh says what and why) on a CUDA- and
# MPI-free build, so that no driver or MPI library runs under valgrind
MEMCHECK_BUILD := build-memcheck
memcheck:
	@command -v valgrind >/dev/null || { echo "make memcheck: valgrind not found; run tools/setup.sh"; exit 1; }
	$(MAKE) -s -j2 BUILD=$(MEMCHECK_BUILD) CUDA=0 MPI=0 all $(MEMCHECK_BUILD)/tests/test_safetensors \
		$(MEMCHECK_BUILD)/tests/test_data $(MEMCHECK_BUILD)/tests/test_config $(MEMCHECK_BUILD)/tests/test_image \
		$(MEMCHECK_BUILD)/tests/test_tfevents
	BUILD=$(MEMCHECK_BUILD) sh tests/memcheck.sh

# clang's static analyzer (scan-build) over everything the C compiler builds:
# library, CLI, examples, tests, benchmarks; fails on any report. It follows
# each path through a function (a leak on an early return, a NULL or
# uninitialized read) where the tests run only some. A fresh build dir each
# time, since it analyzes only what it compiles; CUDA=0 because it does not
# read .cu files. deadcode.DeadStores is off: it ignores OpenMP clauses and
# calls every `nt` read only by num_threads(nt) a dead store.
ANALYZE_BUILD := build-analyze
analyze:
	@command -v scan-build >/dev/null || { echo "make analyze: scan-build not found; run tools/setup.sh (Debian package clang-tools)"; exit 1; }
	rm -rf $(ANALYZE_BUILD)
	scan-build -o $(ANALYZE_BUILD)/reports --status-bugs -disable-checker deadcode.DeadStores \
		$(MAKE) -s -j2 BUILD=$(ANALYZE_BUILD) CUDA=0 all \
		$(TEST_SRC:tests/%.c=$(ANALYZE_BUILD)/tests/%) $(BENCH_SRC:bench/%.c=$(ANALYZE_BUILD)/bench/%)
	@! find $(ANALYZE_BUILD)/reports -path '*/failures/*.i' 2>/dev/null | grep . || \
		{ echo "make analyze: clang could not analyze the files above (their preprocessed copies); see the log"; exit 1; }

setup:
	tools/setup.sh

# README's main job: SN-GAN + hinge on Fashion-MNIST, a few minutes on 2 cores.
RUN_STAMP := $(shell date +%Y%m%d-%H%M%S)
quickstart:
	tools/setup.sh
	$(MAKE) all BUILD=build
	build/lipgan train configs/fmnist_sn_hinge.yaml --out runs/fmnist-$(RUN_STAMP)

# The 8-Gaussian ring in under a minute; writes a scatter plot of samples
# over the true modes (runs/ring8-*/samples.png).
toy:
	$(MAKE) all BUILD=build
	build/lipgan train configs/toy_ring8.yaml --out runs/ring8-$(RUN_STAMP)

# Installs what an embedding program needs: the headers, liblipgan.a and
# liblipgan.so (static only in sanitizer builds), a pkg-config file (`Libs`
# for the shared library, `Libs.private` with every library this build
# links: CUDA, MPI; `pkg-config --static`), the CLI, the shipped classifier
# and the example configs. The CLI looks for the classifier in ../share/lipgan/models next
# to itself. `cc prog.c $$(pkg-config --cflags --libs lipgan)` then builds a
# program (tests/test_install.c does so).
PREFIX ?= /usr/local
LG_VERSION := $(shell sed -n 's/^\#define LG_VERSION "\(.*\)"/\1/p' include/lipgan/version.h)
ifeq ($(SAN),1)
# sanitized code needs the sanitizer runtime linked into the program: static only
INSTALL_SHARED :=
PC_LIBS := -L$${libdir} -llipgan $(LDLIBS) $(LDSAN)
PC_PRIVATE :=
else
INSTALL_SHARED := $(SHLIB)
PC_LIBS := -L$${libdir} -Wl,-rpath,$${libdir} -llipgan
PC_PRIVATE := $(LDLIBS)
endif
install: all $(INSTALL_SHARED)
	install -d $(DESTDIR)$(PREFIX)/include/lipgan $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/lipgan/models \
		$(DESTDIR)$(PREFIX)/share/lipgan/configs
	install -m 644 include/lipgan/*.h $(DESTDIR)$(PREFIX)/include/lipgan/
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/
	$(if $(INSTALL_SHARED),install -m 755 $(SHLIB) $(DESTDIR)$(PREFIX)/lib/$(SO_NAME) && \
		ln -sf $(SO_NAME) $(DESTDIR)$(PREFIX)/lib/liblipgan.so)
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 models/fmnist_classifier.safetensors $(DESTDIR)$(PREFIX)/share/lipgan/models/
	install -m 644 configs/*.yaml $(DESTDIR)$(PREFIX)/share/lipgan/configs/
	{ echo 'prefix=$(PREFIX)'; echo 'includedir=$${prefix}/include'; \
	  echo 'libdir=$${prefix}/lib'; echo; echo 'Name: lipgan'; \
	  echo 'Description: Lipschitz-constrained GANs: library and trainer'; \
	  echo 'Version: $(LG_VERSION)'; echo 'Cflags: -I$${includedir} -fopenmp'; \
	  echo 'Libs: $(PC_LIBS)'; echo 'Libs.private: $(PC_PRIVATE)'; } \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/lipgan.pc

clean:
	rm -rf build build-*

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- fuzzing: `make fuzz BUILD=build-fuzz` (not part of all, test or check) ----
# The libFuzzer harnesses tools/fuzz/fuzz_*.c and the seed generator
# tools/fuzz/gen_seeds.c, linked against the library compiled again with
# clang, coverage instrumentation and ASan+UBSan into $(BUILD)/fuzz (no MPI,
# no CUDA). How to run them: tools/fuzz/README.md.
FUZZ_CC := clang
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -fopenmp -Iinclude -Isrc \
	-I$(OBLAS_INC) -I/usr/include/cjson -O1 -g -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_LDLIBS := -L$(OBLAS_DIR) -Wl,-rpath,$(OBLAS_DIR) -lopenblas -llapacke -lcjson -lyaml -lpng -lz -lm \
	-fopenmp -lpthread
FUZZ_LIB := $(FUZZ_DIR)/liblipgan.a
FUZZ_BIN := $(patsubst tools/fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard tools/fuzz/fuzz_*.c))
$(FUZZ_DIR)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(FUZZ_LIB): $(LIB_SRC:%.c=$(FUZZ_DIR)/%.o)
	@rm -f $@
	ar rcs $@ $^
$(FUZZ_DIR)/fuzz_%: tools/fuzz/fuzz_%.c $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP $< $(FUZZ_LIB) $(FUZZ_LDLIBS) -o $@
$(FUZZ_DIR)/gen_seeds: tools/fuzz/gen_seeds.c $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP $< $(FUZZ_LIB) $(FUZZ_LDLIBS) -o $@
.PHONY: fuzz
fuzz: $(FUZZ_BIN) $(FUZZ_DIR)/gen_seeds
