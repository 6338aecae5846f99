# The two commands of the README: `make demo` (the main job) and `make test` (every test).
# Both install the Debian packages they need (idempotent) and build first.
.PHONY: deps build demo test test-asan conformance format clean

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake --preset default >/dev/null
	@cmake --build --preset default

demo: build
	@bash scripts/demo.sh

test: build
	@/usr/bin/python3 scripts/make_test_models.py build/test-models
	@/usr/bin/python3 scripts/make_dynamo_cases.py build/test-models
	@ctest --preset default --timeout 900

# Unit tests and the importer fuzzer under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan --target kpt_unit_tests kpt_import_fuzz
	@ctest --preset asan -L "unit|fuzz" --timeout 900

conformance: build
	@./build/kpt conformance ../shared/onnx-conformance -j2

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf build build-asan
