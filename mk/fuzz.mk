# libFuzzer targets (clang): make fuzz builds build/fuzz/<target>; run one with
#   build/fuzz/fuzz_x -max_total_time=300 tests/fuzz/corpus_x/
# Every library source is rebuilt with clang and -fsanitize=fuzzer-no-link,address,undefined.
FUZZ_BUILD := build/fuzz
CLANG := clang
CLANGXX := clang++
FFLAGS := -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fopenmp \
          -I. -I/usr/include/x86_64-linux-gnu/openblas-openmp -I/usr/include/cjson -D_GNU_SOURCE
MODULES := common nn nn/ops backbone detector search coco eval
LIB_C := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
LIB_CXX := $(wildcard common/*.cpp)
OBJ := $(LIB_C:%.c=$(FUZZ_BUILD)/%.o) $(LIB_CXX:%.cpp=$(FUZZ_BUILD)/%.o)
TARGETS := $(FUZZ_C:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
LIBS := -L/usr/lib/x86_64-linux-gnu/openblas-openmp -lopenblas -lcjson -lopencv_imgcodecs -lopencv_imgproc -lopencv_core -lstdc++ -lm

all: $(TARGETS)
$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CLANG) -std=c11 $(FFLAGS) -c $< -o $@
$(FUZZ_BUILD)/%.o: %.cpp
	@mkdir -p $(@D)
	$(CLANGXX) -std=c++17 $(FFLAGS) -I/usr/include/opencv4 -c $< -o $@
# Objects are kept between runs (not intermediate files to delete). The targets link with
# clang++: the C++ shim's undefined-behaviour checks (vptr) need the C++ sanitizer runtime.
.SECONDARY:
$(FUZZ_BUILD)/fuzz_%.o: tests/fuzz/fuzz_%.c
	@mkdir -p $(@D)
	$(CLANG) -std=c11 $(FFLAGS) -c $< -o $@
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/fuzz_%.o $(OBJ)
	@mkdir -p $(@D)
	$(CLANGXX) $(FFLAGS) -fsanitize=fuzzer $< $(OBJ) -o $@ $(LIBS) -lpthread
