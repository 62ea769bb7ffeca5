# Thin wrapper over CMake.  `make` builds, `make demo` installs what is
# missing and runs the tour, `make test` installs, builds and runs every
# test through ctest.  SANITIZE=1 builds with ASan+UBSan in build-san/.

SANITIZE ?= 0
ifeq ($(SANITIZE),1)
BUILD ?= build-san
CMAKE_FLAGS += -DTIDE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
else
BUILD ?= build
CMAKE_FLAGS += -DCMAKE_BUILD_TYPE=RelWithDebInfo
endif
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_FLAGS ?= --output-on-failure
# Tests labelled "valgrind" (the C tests under memcheck) run with
# `make valgrind`, not with `make test`.
CTEST_EXCLUDE ?= -LE valgrind

.PHONY: all build deps demo test valgrind bench clean install fuzz soak

all: build

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@scripts/install-deps.sh

demo: deps build
	$(BUILD)/tide scripts/examples/demo.lua

test: deps build
	cd $(BUILD) && ctest $(CTEST_FLAGS) $(CTEST_EXCLUDE)

valgrind: deps build
	cd $(BUILD) && ctest $(CTEST_FLAGS) -L valgrind

bench: build
	scripts/bench/run.sh

install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

# libFuzzer targets (clang, ASan+UBSan) in build-fuzz/, each run for
# FUZZ_TIME seconds on the committed seed corpus (tests/fuzz/run.sh).
FUZZ_TIME ?= 300
fuzz: deps
	cmake -S . -B build-fuzz -DTIDE_FUZZ=ON -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build-fuzz --target fuzz_all -j $(JOBS)
	tests/fuzz/run.sh build-fuzz $(FUZZ_TIME)

# The long soak: the HTTP server under wrk and a queue pipeline, with RSS
# sampled (tests/soak/run.sh); SOAK_TIME seconds per load.
SOAK_TIME ?= 60
soak: deps build
	tests/soak/run.sh $(BUILD) $(SOAK_TIME)

clean:
	rm -rf build build-san build-fuzz
