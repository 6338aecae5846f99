// Test programs ask huge allocations on purpose (a model that broadcasts to terabytes must
// fail with kpt::Error, not take the process down). By default ASan aborts on an allocation
// above its maximum instead of returning null as glibc does; returning null keeps the
// sanitizer build testing the same behaviour as the release build.
extern "C" __attribute__((used, visibility("default"))) const char* __asan_default_options() {
  return "allocator_may_return_null=1";
}
