#include "server/batching.hpp"

#include <cstring>

#include "kpt/error.hpp"

namespace kpt::server {

bool batch_compatible(const std::map<std::string, Tensor>& a,
                      const std::map<std::string, Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    const Tensor& x = ia->second;
    const Tensor& y = ib->second;
    if (ia->first != ib->first || x.dtype() != y.dtype() || x.rank() != y.rank() || x.rank() == 0)
      return false;
    for (size_t d = 1; d < x.rank(); ++d)
      if (x.dims()[d] != y.dims()[d]) return false;
  }
  return true;
}

std::map<std::string, Tensor> concat_batch(
    const std::vector<const std::map<std::string, Tensor>*>& parts) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, first] : *parts.front()) {
    Dims dims = first.dims();
    dims[0] = 0;
    for (const auto* p : parts) dims[0] += p->at(name).dims()[0];
    Tensor t = first.dtype() == DType::String ? Tensor(first.dtype(), dims)
                                              : Tensor::uninitialized(first.dtype(), dims);
    size_t offset = 0;  // bytes, or elements for strings
    for (const auto* p : parts) {
      const Tensor& src = p->at(name);
      if (src.dtype() == DType::String) {
        std::copy(src.strings().begin(), src.strings().end(),
                  t.strings().begin() + static_cast<long>(offset));
        offset += src.strings().size();
      } else {
        if (src.nbytes())
          std::memcpy(static_cast<char*>(t.raw()) + offset, src.raw(), src.nbytes());
        offset += src.nbytes();
      }
    }
    out.emplace(name, std::move(t));
  }
  return out;
}

Tensor slice_rows(const Tensor& t, int64_t begin, int64_t count) {
  check(t.rank() > 0 && begin >= 0 && begin + count <= t.dims()[0],
        "batched output " + t.describe() + " has no rows [" + std::to_string(begin) + ", " +
            std::to_string(begin + count) + ")");
  Dims dims = t.dims();
  dims[0] = count;
  int64_t row = t.dims()[0] ? t.numel() / t.dims()[0] : 0;
  if (t.dtype() == DType::String) {
    Tensor out(t.dtype(), dims);
    auto first = t.strings().begin() + begin * row;
    std::copy(first, first + count * row, out.strings().begin());
    return out;
  }
  Tensor out = Tensor::uninitialized(t.dtype(), dims);
  size_t row_bytes = static_cast<size_t>(row) * dtype_size(t.dtype());
  if (out.nbytes())
    std::memcpy(out.raw(),
                static_cast<const char*>(t.raw()) + static_cast<size_t>(begin) * row_bytes,
                out.nbytes());
  return out;
}

}  // namespace kpt::server
