#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kpt/dtype.hpp"

namespace kpt {

using Dims = std::vector<int64_t>;

int64_t element_count(const Dims& dims);  // checks each dim >= 0 and the product for overflow
std::string dims_to_string(const Dims& dims);

// Largest single tensor allocation allowed (default: 3/4 of physical memory). Larger requests
// fail with kpt::Error instead of being overcommitted and killing the process later.
size_t max_allocation_bytes();
void set_max_allocation_bytes(size_t bytes);

// Tensor storage this process holds now, and the most it held at once since the last reset
// (owned allocations only; mapped weights are not counted).
size_t live_tensor_bytes();
size_t peak_tensor_bytes();
void reset_peak_tensor_bytes();

// Memory behind a tensor: 64-byte aligned bytes that it owns, or bytes owned by someone else
// (a mapped file) kept alive by `keeper`. String tensors keep std::string elements in `strings`.
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  std::shared_ptr<void> keeper;
  std::vector<std::string> strings;

  static std::shared_ptr<Storage> allocate(size_t bytes, bool zero_fill = true);
};

// The one tensor type: dtype, dims and shared storage. Copies share storage; clone() copies data.
class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, Dims dims);  // zero-filled (empty strings for String)
  // Contents undefined (strings still empty): for kernels that write every element, so that
  // large outputs do not pay a memset.
  static Tensor uninitialized(DType dtype, Dims dims);
  // A tensor over memory owned by `keeper` (no copy). `data` must stay valid while keeper lives.
  static Tensor view(DType dtype, Dims dims, void* data, std::shared_ptr<void> keeper);
  template <typename T>
  static Tensor scalar(DType dtype, T value);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Dims& dims() const { return dims_; }
  size_t rank() const { return dims_.size(); }
  int64_t dim(int64_t axis) const;  // negative axes count from the end
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

  void* raw() { return storage_ ? storage_->data : nullptr; }
  const void* raw() const { return storage_ ? storage_->data : nullptr; }
  template <typename T>
  T* data() {
    return static_cast<T*>(raw());
  }
  template <typename T>
  const T* data() const {
    return static_cast<const T*>(raw());
  }
  std::vector<std::string>& strings();
  const std::vector<std::string>& strings() const;

  // Same storage, new dims with the same element count.
  Tensor reshaped(Dims dims) const;
  Tensor clone() const;
  // Element i converted to double / int64 (for shape inputs, indices, scalars of any dtype).
  double get_f64(int64_t i) const;
  int64_t get_i64(int64_t i) const;
  // All elements as int64 (for shape-like inputs); fails for float or string tensors.
  std::vector<int64_t> to_i64_vector() const;
  std::string describe() const;  // "f32[2,3]"

 private:
  DType dtype_ = DType::Undefined;
  Dims dims_;
  int64_t numel_ = 0;
  std::shared_ptr<Storage> storage_;
};

template <typename T>
Tensor Tensor::scalar(DType dtype, T value) {
  Tensor t(dtype, {});
  *t.data<T>() = value;
  return t;
}

}  // namespace kpt
