#include "core/npy.hpp"

#include <cstring>
#include <fstream>
#include <sstream>

#include "core/cast.hpp"
#include "kpt/error.hpp"

namespace kpt {

namespace {

struct Descr {
  const char* code;
  DType dtype;
};
constexpr Descr kDescrs[] = {
    {"<f4", DType::F32}, {"<f8", DType::F64}, {"<f2", DType::F16}, {"|i1", DType::I8},
    {"|u1", DType::U8},  {"<i2", DType::I16}, {"<u2", DType::U16}, {"<i4", DType::I32},
    {"<u4", DType::U32}, {"<i8", DType::I64}, {"<u8", DType::U64}, {"|b1", DType::Bool},
};

std::string header_value(const std::string& h, const std::string& key) {
  auto k = h.find("'" + key + "'");
  check(k != std::string::npos, "npy header has no '" + key + "'");
  auto colon = h.find(':', k);
  check(colon != std::string::npos, "malformed npy header");
  auto start = h.find_first_not_of(' ', colon + 1);
  if (h[start] == '(') return h.substr(start, h.find(')', start) - start + 1);
  auto end = h.find_first_of(",}", start);
  return h.substr(start, end - start);
}

}  // namespace

Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open '" + path + "'");
  char magic[8];
  in.read(magic, 8);
  check(in.good() && std::memcmp(magic, "\x93NUMPY", 6) == 0, "'" + path + "' is not a .npy file");
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    uint16_t l;
    in.read(reinterpret_cast<char*>(&l), 2);
    hlen = l;
  } else {
    in.read(reinterpret_cast<char*>(&hlen), 4);
  }
  check(in.good() && hlen < (1u << 20), "'" + path + "': bad npy header length");
  std::string h(hlen, '\0');
  in.read(h.data(), hlen);
  check(in.good(), "'" + path + "': truncated npy header");
  std::string descr = header_value(h, "descr");
  descr = descr.substr(1, descr.size() - 2);
  if (descr == "<b1") descr = "|b1";
  if (descr == "<i1") descr = "|i1";
  if (descr == "<u1") descr = "|u1";
  DType dt = DType::Undefined;
  for (const auto& d : kDescrs) {
    if (descr == d.code) dt = d.dtype;
  }
  check(dt != DType::Undefined, "'" + path + "': unsupported npy dtype '" + descr + "'");
  check(header_value(h, "fortran_order") == "False",
        "'" + path + "': Fortran-order arrays are not supported");
  std::string shape = header_value(h, "shape");
  Dims dims;
  std::stringstream ss(shape.substr(1, shape.size() - 2));
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.find_first_not_of(' ') == std::string::npos) continue;
    dims.push_back(std::stoll(item));
  }
  int64_t n = element_count(dims);
  in.seekg(0, std::ios::end);
  auto end = static_cast<int64_t>(in.tellg());
  int64_t data_start = (magic[6] == 1 ? 10 : 12) + hlen;
  check(end - data_start == n * static_cast<int64_t>(dtype_size(dt)),
        "'" + path + "': data size does not match shape " + dims_to_string(dims));
  Tensor t(dt, dims);
  in.seekg(data_start);
  in.read(static_cast<char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
  return t;
}

void write_npy(const std::string& path, const Tensor& src) {
  Tensor t = src;
  const char* code = nullptr;
  for (const auto& d : kDescrs) {
    if (d.dtype == t.dtype()) code = d.code;
  }
  if (!code) {
    check(is_float(t.dtype()),
          "cannot write a " + std::string(dtype_name(t.dtype())) + " tensor as .npy");
    t = cast_tensor(t, DType::F32);
    code = "<f4";
  }
  std::string shape = "(";
  for (size_t i = 0; i < t.dims().size(); ++i) shape += std::to_string(t.dims()[i]) + ",";
  if (t.dims().size() > 1) shape.pop_back();
  shape += ")";
  std::string h =
      "{'descr': '" + std::string(code) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + h.size() + 1;
  h += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::ofstream out(path, std::ios::binary);
  check(out.good(), "cannot write '" + path + "'");
  out.write("\x93NUMPY\x01\x00", 8);
  auto hl = static_cast<uint16_t>(h.size());
  out.write(reinterpret_cast<const char*>(&hl), 2);
  out << h;
  out.write(static_cast<const char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
  check(out.good(), "failed writing '" + path + "'");
}

}  // namespace kpt
