# nasdet: one build for the library, the CLI, the tests and the benchmarks.
#
#   make            build bin/nasdet and build/libnasdet.a (installs missing Debian packages first)
#   make test       build and run every test (Criterion), plus the public-header check, plus
#                   (where Open MPI is installed) an MPI=1 build and tests/mpi/ under mpirun
#   make demo       the main job on the shipped default (see README.md)
#   make bench      all benchmarks (bench-nn, bench-eval, ...); figures are printed, never asserted
#   make fuzz       libFuzzer targets (clang) in build/fuzz/
#   make install    PREFIX=/usr/local DESTDIR=
#
# Switches: DEBUG=1 (-O0 -g), SAN=1 (address + undefined + float-cast-overflow sanitizers),
# CUDA=1 (GPU backend, nn/cuda), MPI=1 (distributed search and training, Open MPI).
# Each switch combination builds in its own folder, so a SAN=1 build never mixes objects with
# a release one. BUILD=dir overrides the folder (helpers working side by side use their own).
# CUDA=1 MPI=1 also looks for NCCL (NCCL=0 leaves it out; see dist/grad_sync_nccl.c).

VERSION := $(shell cat VERSION)
PREFIX  ?= /usr/local
DESTDIR ?=

CC  := gcc
CXX := g++

ifeq ($(SAN),1)
  BUILD ?= build/san
  BIN   ?= $(BUILD)/bin
else ifeq ($(DEBUG),1)
  BUILD ?= build/debug
  BIN   ?= $(BUILD)/bin
else ifeq ($(CUDA)$(MPI),11)
  BUILD ?= build/cuda-mpi
  BIN   ?= $(BUILD)/bin
else ifeq ($(CUDA),1)
  BUILD ?= build/cuda
  BIN   ?= $(BUILD)/bin
else ifeq ($(MPI),1)
  BUILD ?= build/mpi
  BIN   ?= $(BUILD)/bin
else
  BUILD ?= build
  BIN   ?= bin
endif

OPENBLAS_DIR := /usr/lib/x86_64-linux-gnu/openblas-openmp
OPENBLAS_INC := /usr/include/x86_64-linux-gnu/openblas-openmp
OPENCV_INC   := /usr/include/opencv4

# x86-64-v3 (AVX2 + FMA) is the baseline; AVX-512 kernels are chosen at run time by CPU features.
ARCHFLAGS := -march=x86-64-v3 -mtune=generic
WARN      := -Wall -Wextra
CPPFLAGS  := -I. -I$(OPENBLAS_INC) -I/usr/include/cjson -D_GNU_SOURCE \
             -DNASDET_VERSION='"$(VERSION)"' -DNASDET_DATADIR='"$(PREFIX)/share/nasdet"' -MMD -MP
OPT       := -O2
ifeq ($(DEBUG),1)
  OPT := -O0 -g
endif
SANFLAGS :=
ifeq ($(SAN),1)
  SANFLAGS := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow -fno-omit-frame-pointer -g
endif
CFLAGS   := -std=c11 $(WARN) $(OPT) $(ARCHFLAGS) -fopenmp $(SANFLAGS)
CXXFLAGS := -std=c++17 $(WARN) $(OPT) $(ARCHFLAGS) $(SANFLAGS) -I$(OPENCV_INC)
LDFLAGS  := -fopenmp $(SANFLAGS) -L$(OPENBLAS_DIR) -Wl,-rpath,$(OPENBLAS_DIR)
LDLIBS   := -lopenblas -lcjson -lopencv_imgcodecs -lopencv_imgproc -lopencv_core -lstdc++ -lpthread -lm

ifeq ($(CUDA),1)
  CUDA_HOME ?= /usr/local/cuda
  NVCC      := $(CUDA_HOME)/bin/nvcc
  CPPFLAGS  += -DNN_USE_CUDA -I$(CUDA_HOME)/include
  LDFLAGS   += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64
  LDLIBS    += -lcublas -lcudart
  # Machine code for Hopper (H100/H200) and Ampere, plus PTX that any GPU from Turing on compiles
  # at load time. NVCC_ARCH=... overrides (e.g. -arch=native on the build machine).
  NVCC_ARCH ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=sm_80 \
               -gencode arch=compute_75,code=compute_75
  NVCCFLAGS := -O2 -std=c++17 --extended-lambda -diag-suppress 550 $(NVCC_ARCH) -Xcompiler -Wall
  ifeq ($(wildcard $(NVCC)),)
    $(error CUDA=1: no nvcc at $(NVCC); set CUDA_HOME to the CUDA toolkit)
  endif
  ifneq ($(MAKECMDGOALS),clean)
    $(info CUDA: $(shell $(NVCC) --version | sed -n 's/.*release \([0-9.]*\).*/nvcc \1/p') in $(CUDA_HOME); cuBLAS: $(if $(wildcard $(CUDA_HOME)/lib64/libcublas.so),yes,NOT FOUND); cuDNN: $(if $(wildcard $(CUDA_HOME)/include/cudnn.h /usr/include/cudnn.h),found but not used (convolutions are im2col + cuBLAS and direct kernels),not installed (not needed)))
  endif
endif
ifeq ($(MPI),1)
  CC       := mpicc
  CPPFLAGS += -DNASDET_USE_MPI
endif
# NCCL: data-parallel gradients averaged on the GPUs (dist/grad_sync_nccl.c), in CUDA=1 MPI=1 builds
# where nccl.h and libnccl are found (NCCL=0 leaves it out). Without it, GPU gradients go through
# host memory and MPI_Allreduce.
ifeq ($(CUDA)$(MPI),11)
  NCCL_INC    := $(firstword $(foreach d,$(CUDA_HOME)/include /usr/include,$(if $(wildcard $(d)/nccl.h),$(d))))
  NCCL_LIBDIR := $(firstword $(foreach d,$(CUDA_HOME)/lib64 /usr/lib/x86_64-linux-gnu,$(if $(wildcard $(d)/libnccl.so),$(d))))
  NCCL_FOUND  := $(if $(and $(NCCL_INC),$(NCCL_LIBDIR)),1)
  ifeq ($(NCCL_FOUND)$(filter 0,$(NCCL)),1)
    CPPFLAGS += -DNASDET_USE_NCCL $(if $(filter $(CUDA_HOME)/include,$(NCCL_INC)),,-I$(NCCL_INC))
    LDFLAGS  += $(if $(filter $(CUDA_HOME)/lib64,$(NCCL_LIBDIR)),,-L$(NCCL_LIBDIR) -Wl,-rpath,$(NCCL_LIBDIR))
    LDLIBS   += -lnccl
  endif
  NCCL_VERSION := $(if $(NCCL_FOUND),$(shell sed -n 's/^.define NCCL_\(MAJOR\|MINOR\|PATCH\) *\([0-9]*\).*/\2/p' $(NCCL_INC)/nccl.h | paste -sd.))
  ifneq ($(MAKECMDGOALS),clean)
    ifeq ($(NCCL_FOUND),)
      $(info NCCL: NOT FOUND (nccl.h, libnccl.so in $(CUDA_HOME) or /usr): data-parallel GPU gradients go through host memory)
    else ifeq ($(NCCL),0)
      $(info NCCL: $(NCCL_VERSION) found, left out (NCCL=0): data-parallel GPU gradients go through host memory)
    else
      $(info NCCL: $(NCCL_VERSION) in $(NCCL_INC): data-parallel gradients averaged on the GPUs)
    endif
  endif
endif

MODULES  := common nn nn/ops backbone detector search coco eval dist
LIB_C    := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
LIB_CXX  := $(wildcard common/*.cpp)
LIB_CU   := $(if $(filter 1,$(CUDA)),$(wildcard nn/cuda/*.cu))
LIB_OBJ  := $(LIB_C:%.c=$(BUILD)/%.o) $(LIB_CXX:%.cpp=$(BUILD)/%.o) $(LIB_CU:%.cu=$(BUILD)/%.o)
CLI_C    := $(wildcard cli/*.c)
CLI_OBJ  := $(CLI_C:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libnasdet.a
NASDET   := $(BIN)/nasdet

TEST_C    := $(wildcard tests/test_*.c)
TEST_BIN  := $(TEST_C:tests/%.c=$(BUILD)/tests/bin/%)
TEST_UTIL := $(wildcard tests/util/*.c)
TEST_UTIL_OBJ := $(TEST_UTIL:%.c=$(BUILD)/%.o)

# Public headers: one per module, plus common's small headers. Each must compile as C11 -pedantic.
PUBLIC_HEADERS := $(wildcard common/*.h nn/nn.h backbone/nasnet.h backbone/nasnet_net.h detector/frcnn.h detector/frcnn_model.h \
                    search/search.h search/search_driver.h coco/coco.h eval/cocoeval.h dist/dist.h)

SETUP_STAMP := $(BUILD)/.setup-ok

# Quiet by default ("CC file"); V=1 shows the full command lines.
ifeq ($(V),1)
  Q :=
  say = @true
else
  Q := @
  say = @printf '  %-6s %s\n'
endif

.SECONDARY:
.PHONY: all setup test test-mpi gpu-check check-headers demo bench fuzz install clean distclean
all: $(NASDET) $(LIB)

# ---- set-up: install what is missing from Debian's archive (needs root) --------------------
$(SETUP_STAMP): mk/packages.txt mk/setup.sh
	@sh mk/setup.sh mk/packages.txt
	@mkdir -p $(@D) && touch $@
setup:
	@sh mk/setup.sh mk/packages.txt

# ---- compile ------------------------------------------------------------------------------
$(BUILD)/%.o: %.c | $(SETUP_STAMP)
	@mkdir -p $(@D)
	$(say) CC $<
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
$(BUILD)/%.o: %.cpp | $(SETUP_STAMP)
	@mkdir -p $(@D)
	$(say) CXX $<
	$(Q)$(CXX) $(filter-out -MMD -MP,$(CPPFLAGS)) -MMD -MP $(CXXFLAGS) -c $< -o $@
$(BUILD)/%.o: %.cu | $(SETUP_STAMP)
	@mkdir -p $(@D)
	$(say) NVCC $<
	$(Q)$(NVCC) $(NVCCFLAGS) -I. -DNN_USE_CUDA -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	$(say) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^

$(NASDET): $(CLI_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(say) LINK $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

# ---- tests --------------------------------------------------------------------------------
# One Criterion binary per tests/test_*.c, so one module's test never blocks another's build.
$(BUILD)/tests/bin/%: $(BUILD)/tests/%.o $(TEST_UTIL_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(say) LINK $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(TEST_UTIL_OBJ) $(LIB) -lcriterion $(LDLIBS)

check-headers: | $(SETUP_STAMP)
	@for h in $(PUBLIC_HEADERS); do \
	  printf '#include "%s"\nint main(void){return 0;}\n' $$h | \
	    $(CC) -std=c11 -pedantic -Werror -Wall -Wextra $(filter-out -MMD -MP,$(CPPFLAGS)) -x c - -fsyntax-only \
	    || { echo "public header $$h does not compile as C11 -pedantic"; exit 1; }; \
	done; echo "check-headers: $(words $(PUBLIC_HEADERS)) public headers compile as C11 -pedantic"

test: $(NASDET) $(TEST_BIN) check-headers
	@NASDET_BIN=$(abspath $(NASDET)) sh tests/run.sh $(TEST_BIN)
	@$(MAKE) --no-print-directory test-mpi

# ---- MPI tests: an MPI=1 build of nasdet in $(MPI_BUILD), then tests/mpi/*.sh, each under
# `mpirun --allow-run-as-root --oversubscribe -np 3` on this machine. Skipped (with a message)
# where Open MPI is not installed: the default build never needs it; .ci/run installs it.
MPI_BUILD ?= $(BUILD)/mpi
MPI_TOOLS := $(patsubst tests/mpi/%.c,$(MPI_BUILD)/tests/mpi/%,$(wildcard tests/mpi/*.c))
$(BUILD)/tests/mpi/%: tests/mpi/%.c $(LIB)
	@mkdir -p $(@D)
	$(say) LINK $@
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)
test-mpi:
	@if command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory MPI=1 BUILD=$(MPI_BUILD) BIN=$(MPI_BUILD)/bin $(MPI_BUILD)/bin/nasdet $(MPI_TOOLS) && \
	  NASDET_BIN=$(abspath $(MPI_BUILD)/bin/nasdet) MPI_TOOLS=$(abspath $(MPI_BUILD)/tests/mpi) \
	    sh tests/mpi/run.sh $(sort $(wildcard tests/mpi/test_*.sh)); \
	else echo "test-mpi: skipped: Open MPI not installed (apt-get install openmpi-bin libopenmpi-dev)"; fi

# ---- GPU checks (tests/gpu/run.sh): CUDA vs CPU, built in a CUDA=1 build ----------------------
$(BUILD)/tests/gpu/gpu_check: $(BUILD)/tests/gpu/gpu_check.o $(LIB)
	@mkdir -p $(@D)
	$(say) LINK $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)
gpu-check: $(BUILD)/tests/gpu/gpu_check

# ---- demo, bench, fuzz --------------------------------------------------------------------
demo: $(NASDET)
	@sh demos/demo.sh $(NASDET)

BENCH_C   := $(wildcard bench/bench_*.c)
BENCH_BIN := $(BENCH_C:bench/%.c=$(BUILD)/bench/bin/%)
$(BUILD)/bench/bin/%: $(BUILD)/bench/%.o $(LIB)
	@mkdir -p $(@D)
	$(say) LINK $@
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)
bench: $(NASDET) $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; $$b || exit 1; done
# bench-X builds bench_X and its companions bench_X_* (bench/det.sh also runs bench_det_roi and
# bench_det_model).
.SECONDEXPANSION:
PERCENT := %
bench-%: $(NASDET) $(BUILD)/bench/bin/bench_% $$(filter $(BUILD)/bench/bin/bench_$$*_$$(PERCENT),$(BENCH_BIN))
	@if [ -x bench/$*.sh ]; then NASDET_BIN=$(abspath $(NASDET)) BENCH_BIN=$(BUILD)/bench/bin/bench_$* sh bench/$*.sh; \
	 else $(BUILD)/bench/bin/bench_$*; fi

FUZZ_C   := $(wildcard tests/fuzz/fuzz_*.c)
fuzz: | $(SETUP_STAMP)
	@$(MAKE) --no-print-directory -f mk/fuzz.mk FUZZ_C="$(FUZZ_C)"

# ---- install ------------------------------------------------------------------------------
install: $(NASDET) $(LIB)
	sh mk/install.sh "$(DESTDIR)" "$(PREFIX)" "$(VERSION)" "$(NASDET)" "$(LIB)" "$(PUBLIC_HEADERS)"

clean:
	rm -rf build bin
distclean: clean

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_C:%.c=$(BUILD)/%.d) $(TEST_UTIL_OBJ:.o=.d) $(BENCH_C:%.c=$(BUILD)/%.d)
