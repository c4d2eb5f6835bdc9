# mediaml: the two set-up commands are `make demo` and `make test` (Debian 12, as root or with sudo).
BUILD ?= build
JOBS ?= $(shell nproc)
DATA ?= $(if $(MEDIAML_DATA),$(MEDIAML_DATA),../shared/data)

.PHONY: all deps build demo test test-asan valgrind bench fixtures clean

all: build

deps:
	@bash scripts/setup-debian.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# Trains the Keras MNIST CNN example (10 epochs, batch 32) and prints the test evaluation.
demo: build
	./$(BUILD)/mnist_cnn $(DATA)/mnist 10

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEDIAML_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 MEDIAML_FAST_TESTS=1 ctest --output-on-failure -j$(JOBS)

# Train, save, load, predict under valgrind's leak checker. Its own build: valgrind does not
# decode AVX-512, which -march=native would use on CPUs that have it; AVX2 (x86-64-v3) it does.
VG_ARCH := $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo -march=x86-64-v3)
valgrind: deps
	@cmake -S . -B build-valgrind -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEDIAML_NATIVE=OFF \
		-DCMAKE_C_FLAGS="$(VG_ARCH)" >/dev/null
	@cmake --build build-valgrind -j$(JOBS) --target mediaml_cli
	bash scripts/valgrind-check.sh build-valgrind/mediaml

bench: build
	@bash scripts/setup-debian.sh bench
	bash bench/run.sh $(BUILD)

# Regenerates the PyTorch parity fixtures (needs python3-torch).
fixtures:
	@bash scripts/setup-debian.sh bench
	/usr/bin/python3 scripts/gen_parity_fixtures.py

clean:
	rm -rf $(BUILD) build-asan build-valgrind
