# Thin wrapper over CMake/CTest. See README.md.
#   make run            build, then start parley on MODEL=path-or-name
#   make test           build and run the whole suite (SANITIZE=1: ASan+UBSan tree)
#   make fuzz           build the libFuzzer targets with clang, run each FUZZ_SECONDS
#   make build          just build (NATIVE=1 adds -march=native)

SANITIZE ?= 0
NATIVE   ?= 0
FUZZ_SECONDS ?= 60
JOBS     ?= $(shell nproc 2>/dev/null || echo 2)

ifeq ($(SANITIZE),1)
BUILD ?= build-san
CMAKE_ARGS += -DPL_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
else
BUILD ?= build
CMAKE_ARGS += -DCMAKE_BUILD_TYPE=Release
endif
ifeq ($(NATIVE),1)
CMAKE_ARGS += -DPL_NATIVE=ON
endif
# Only pass a compiler when the user chose one (make's built-in CC is "cc").
ifneq ($(filter environment command line,$(origin CC)),)
CMAKE_ARGS += -DCMAKE_C_COMPILER=$(CC)
endif

FUZZ_BUILD := build-fuzz
# make test runs each fuzzer briefly when clang's libFuzzer is installed.
TEST_FUZZ_SECONDS ?= 20

.PHONY: all deps build test run fuzz fuzz-build clean help

all: build

help:
	@sed -n '1,6p' Makefile

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@if scripts/have-libfuzzer.sh; then \
	  $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS); \
	else echo "make test: clang libFuzzer not available, fuzz smoke run skipped"; fi

run: build
	@BUILD=$(BUILD) scripts/run.sh

fuzz-build: deps
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DPL_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)

fuzz: fuzz-build
	@scripts/run-fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf build build-san $(FUZZ_BUILD)
