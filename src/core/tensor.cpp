#include "kpt/tensor.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "kpt/error.hpp"

namespace kpt {

int64_t element_count(const Dims& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0)
      fail("negative dimension " + std::to_string(d) + " in shape " + dims_to_string(dims));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) {
      fail("shape " + dims_to_string(dims) + " has more elements than can be addressed");
    }
    n *= d;
  }
  return n;
}

std::string dims_to_string(const Dims& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

namespace {
// Three quarters of physical memory: a request beyond it would only succeed through overcommit
// and then kill the process when touched, so it is refused with a clear error instead.
std::atomic<size_t> g_max_allocation{[] {
  long pages = sysconf(_SC_PHYS_PAGES);
  long page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return size_t{1} << 34;
  return static_cast<size_t>(pages) / 4 * 3 * static_cast<size_t>(page);
}()};

// Bytes of tensor storage alive now and the most alive at once since the last reset.
std::atomic<size_t> g_live_bytes{0};
std::atomic<size_t> g_peak_bytes{0};

void note_allocated(size_t bytes) {
  size_t live = g_live_bytes.fetch_add(bytes) + bytes;
  size_t peak = g_peak_bytes.load();
  while (live > peak && !g_peak_bytes.compare_exchange_weak(peak, live)) {
  }
}
}  // namespace

size_t live_tensor_bytes() {
  return g_live_bytes.load();
}
size_t peak_tensor_bytes() {
  return g_peak_bytes.load();
}
void reset_peak_tensor_bytes() {
  g_peak_bytes.store(g_live_bytes.load());
}

size_t max_allocation_bytes() {
  return g_max_allocation.load();
}
void set_max_allocation_bytes(size_t bytes) {
  g_max_allocation.store(bytes);
}

std::shared_ptr<Storage> Storage::allocate(size_t bytes, bool zero_fill) {
  if (bytes > max_allocation_bytes()) {
    fail("a tensor of " + std::to_string(bytes) + " bytes exceeds the allocation limit of " +
         std::to_string(max_allocation_bytes()) + " bytes");
  }
  auto s = std::make_shared<Storage>();
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) fail("out of memory allocating " + std::to_string(bytes) + " bytes");
  if (zero_fill) std::memset(p, 0, rounded);
  s->data = p;
  s->bytes = bytes;
  note_allocated(rounded);
  s->keeper = std::shared_ptr<void>(p, [rounded](void* q) {
    g_live_bytes.fetch_sub(rounded);
    std::free(q);
  });
  return s;
}

Tensor Tensor::uninitialized(DType dtype, Dims dims) {
  if (dtype == DType::String) return Tensor(dtype, std::move(dims));
  Tensor t;
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.numel_ = element_count(t.dims_);
  const size_t esize = dtype_size(dtype);
  if (esize == 0) fail("cannot allocate a tensor of type " + std::string(dtype_name(dtype)));
  if (static_cast<uint64_t>(t.numel_) > max_allocation_bytes() / esize) {
    fail("tensor " + t.describe() + " needs more than the allocation limit of " +
         std::to_string(max_allocation_bytes()) + " bytes");
  }
  t.storage_ = Storage::allocate(static_cast<size_t>(t.numel_) * esize, false);
  return t;
}

Tensor::Tensor(DType dtype, Dims dims) : dtype_(dtype), dims_(std::move(dims)) {
  numel_ = element_count(dims_);
  if (dtype_ == DType::String) {
    storage_ = std::make_shared<Storage>();
    storage_->strings.resize(static_cast<size_t>(numel_));
    storage_->data = storage_->strings.data();
    return;
  }
  size_t esize = dtype_size(dtype_);
  if (esize == 0) fail("cannot allocate a tensor of type " + std::string(dtype_name(dtype_)));
  if (static_cast<uint64_t>(numel_) > max_allocation_bytes() / esize) {
    fail("tensor " + describe() + " needs more than the allocation limit of " +
         std::to_string(max_allocation_bytes()) + " bytes");
  }
  storage_ = Storage::allocate(static_cast<size_t>(numel_) * esize);
}

Tensor Tensor::view(DType dtype, Dims dims, void* data, std::shared_ptr<void> keeper) {
  Tensor t;
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.numel_ = element_count(t.dims_);
  t.storage_ = std::make_shared<Storage>();
  t.storage_->data = data;
  t.storage_->bytes = t.nbytes();
  t.storage_->keeper = std::move(keeper);
  return t;
}

int64_t Tensor::dim(int64_t axis) const {
  auto r = static_cast<int64_t>(dims_.size());
  if (axis < -r || axis >= r) {
    fail("axis " + std::to_string(axis) + " is out of range for a tensor of rank " +
         std::to_string(r));
  }
  return dims_[static_cast<size_t>(axis < 0 ? axis + r : axis)];
}

std::vector<std::string>& Tensor::strings() {
  check(dtype_ == DType::String && storage_, "tensor " + describe() + " is not a string tensor");
  return storage_->strings;
}
const std::vector<std::string>& Tensor::strings() const {
  check(dtype_ == DType::String && storage_, "tensor " + describe() + " is not a string tensor");
  return storage_->strings;
}

Tensor Tensor::reshaped(Dims dims) const {
  check(element_count(dims) == numel_,
        "cannot reshape " + describe() + " to " + dims_to_string(dims));
  Tensor t = *this;
  t.dims_ = std::move(dims);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t(dtype_, dims_);
  if (dtype_ == DType::String) {
    t.strings() = strings();
  } else if (nbytes()) {
    std::memcpy(t.raw(), raw(), nbytes());
  }
  return t;
}

double Tensor::get_f64(int64_t i) const {
  check(i >= 0 && i < numel_, "element index out of range in " + describe());
  const void* p = static_cast<const char*>(raw()) + static_cast<size_t>(i) * dtype_size(dtype_);
  switch (dtype_) {
    case DType::F32:
      return *static_cast<const float*>(p);
    case DType::F64:
      return *static_cast<const double*>(p);
    case DType::F16:
      return half_to_float(*static_cast<const uint16_t*>(p));
    case DType::BF16:
      return bfloat16_to_float(*static_cast<const uint16_t*>(p));
    case DType::F8E4M3FN:
    case DType::F8E4M3FNUZ:
    case DType::F8E5M2:
    case DType::F8E5M2FNUZ:
      return f8_to_float(dtype_, *static_cast<const uint8_t*>(p));
    case DType::F4E2M1:
      return f4e2m1_to_float(*static_cast<const uint8_t*>(p));
    case DType::F8E8M0:
      return f8e8m0_to_float(*static_cast<const uint8_t*>(p));
    case DType::I8:
    case DType::I4:
    case DType::I2:
      return *static_cast<const int8_t*>(p);
    case DType::U8:
    case DType::U4:
    case DType::U2:
    case DType::Bool:
      return *static_cast<const uint8_t*>(p);
    case DType::I16:
      return *static_cast<const int16_t*>(p);
    case DType::U16:
      return *static_cast<const uint16_t*>(p);
    case DType::I32:
      return *static_cast<const int32_t*>(p);
    case DType::U32:
      return *static_cast<const uint32_t*>(p);
    case DType::I64:
      return static_cast<double>(*static_cast<const int64_t*>(p));
    case DType::U64:
      return static_cast<double>(*static_cast<const uint64_t*>(p));
    default:
      fail("cannot read elements of a " + std::string(dtype_name(dtype_)) + " tensor as numbers");
  }
}

int64_t Tensor::get_i64(int64_t i) const {
  check(i >= 0 && i < numel_, "element index out of range in " + describe());
  const void* p = static_cast<const char*>(raw()) + static_cast<size_t>(i) * dtype_size(dtype_);
  switch (dtype_) {
    case DType::I64:
      return *static_cast<const int64_t*>(p);
    case DType::U64:
      return static_cast<int64_t>(*static_cast<const uint64_t*>(p));
    case DType::I32:
      return *static_cast<const int32_t*>(p);
    case DType::U32:
      return *static_cast<const uint32_t*>(p);
    default:
      return static_cast<int64_t>(get_f64(i));
  }
}

std::vector<int64_t> Tensor::to_i64_vector() const {
  check(is_integer(dtype_) || dtype_ == DType::Bool,
        "expected an integer tensor, got " + describe());
  std::vector<int64_t> v(static_cast<size_t>(numel_));
  for (int64_t i = 0; i < numel_; ++i) v[static_cast<size_t>(i)] = get_i64(i);
  return v;
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype_)) + dims_to_string(dims_);
}

}  // namespace kpt
