// A bounded, deterministic mutation fuzzer for the ONNX importer (g++ has no libFuzzer).
//
// Seed models are mutated at the byte level (bit flips, byte changes, inserts, deletes,
// truncation, splices from other seeds) and at the message level (dims, dtypes and names of a
// parsed model replaced with hostile values), then fed to Session::from_bytes. When a mutant
// loads and its inputs are small, it is run on random inputs. kpt::Error is the expected way
// to fail; any other exception is a finding, and crashes are left to the sanitizers.
//
//   kpt_import_fuzz [--seconds S] [--iterations N] [--seed K] [--start I] [--dump FILE] [--trace]
//   kpt_import_fuzz FILE...      (replays model files, e.g. a dumped finding)
//
// Iteration i mutates with an RNG seeded from (seed, i) alone, so "--start i --iterations 1
// --dump f.onnx" reproduces a finding.
#include <google/protobuf/stubs/logging.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "onnx/onnx.pb.h"
#include "runtime/random_inputs.hpp"
#include "tests/testing/model_builder.hpp"

namespace {

using kpt::DType;
using kpt::testing::DeclDims;
using kpt::testing::ModelBuilder;

std::vector<std::string> seed_models() {
  std::vector<std::string> seeds;
  seeds.push_back(kpt::testing::add_model_bytes());
  {  // Initializers in several encodings, a Constant node, broadcasting.
    ModelBuilder b;
    b.input("x", DType::F32, DeclDims{-1, 3});
    b.initializer("w", DType::F32, {3}, kpt::testing::bytes_of(std::vector<float>{1, 2, 3}));
    onnx::TensorProto i8;
    i8.set_name("q");
    i8.set_data_type(static_cast<int32_t>(DType::I8));
    i8.add_dims(3);
    for (int v : {-1, 0, 7}) i8.add_int32_data(v);
    b.initializer(i8);
    onnx::TensorProto i4 = kpt::testing::raw_tensor("nib", DType::I4, {3}, "\x9f\x07");
    b.initializer(i4);
    auto& c = b.node("Constant", {}, {"k"}, "const");
    onnx::TensorProto kt;
    kt.set_data_type(static_cast<int32_t>(DType::F32));
    kt.add_dims(1);
    kt.add_float_data(0.5f);
    kpt::testing::add_tensor_attr(c, "value", kt);
    b.node("Mul", {"x", "w"}, {"t"}, "mul");
    b.node("Add", {"t", "k"}, {"y"}, "add");
    b.output("y", DType::F32, DeclDims{-1, 3});
    seeds.push_back(b.bytes());
  }
  {  // A sparse initializer and a string initializer.
    ModelBuilder b;
    b.input("x", DType::F32, DeclDims{2, 2});
    auto* sp = b.graph().add_sparse_initializer();
    *sp->mutable_values() = kpt::testing::raw_tensor(
        "s", DType::F32, {2}, kpt::testing::bytes_of(std::vector<float>{5, 6}));
    *sp->mutable_indices() = kpt::testing::raw_tensor(
        "si", DType::I64, {2}, kpt::testing::bytes_of(std::vector<int64_t>{0, 3}));
    sp->add_dims(2);
    sp->add_dims(2);
    onnx::TensorProto str;
    str.set_name("names");
    str.set_data_type(static_cast<int32_t>(DType::String));
    str.add_dims(2);
    str.add_string_data("a");
    str.add_string_data("bc");
    b.initializer(str);
    b.node("Sub", {"x", "s"}, {"y"}, "sub");
    b.output("y", DType::F32, DeclDims{2, 2});
    seeds.push_back(b.bytes());
  }
  {  // A model-local function and an If with a subgraph that reads the outer scope.
    ModelBuilder b;
    b.opset("local", 1);
    auto* f = b.proto().add_functions();
    f->set_name("Twice");
    f->set_domain("local");
    f->add_input("a");
    f->add_output("b");
    auto* fn = f->add_node();
    fn->set_op_type("Add");
    fn->add_input("a");
    fn->add_input("a");
    fn->add_output("b");
    b.input("x", DType::F32, DeclDims{4});
    b.input("c", DType::Bool, DeclDims{});
    b.node("Twice", {"x"}, {"t"}, "call", "local");
    onnx::GraphProto then_g;
    then_g.set_name("then");
    auto* tn = then_g.add_node();
    tn->set_op_type("Div");
    tn->add_input("t");
    tn->add_input("x");
    tn->add_output("r");
    kpt::testing::set_value_info(then_g.add_output(), "r", DType::F32, DeclDims{4});
    auto& ifn = b.node("If", {"c"}, {"y"}, "branch");
    kpt::testing::add_graph_attr(ifn, "then_branch", then_g);
    kpt::testing::add_graph_attr(ifn, "else_branch", then_g);
    b.output("y", DType::F32, DeclDims{4});
    seeds.push_back(b.bytes());
  }
  return seeds;
}

using Rng = std::mt19937_64;

int64_t interesting_int(Rng& rng) {
  static const int64_t values[] = {0,
                                   1,
                                   -1,
                                   2,
                                   255,
                                   65536,
                                   int64_t{1} << 31,
                                   int64_t{1} << 32,
                                   int64_t{1} << 40,
                                   int64_t{1} << 61,
                                   int64_t{1} << 62,
                                   INT64_MAX,
                                   INT64_MIN,
                                   1000000000000000};
  return values[rng() % (sizeof(values) / sizeof(values[0]))];
}

// Message-level mutation: parse, change one field to a hostile value, serialize.
bool mutate_message(std::string& bytes, Rng& rng) {
  onnx::ModelProto m;
  if (!m.ParseFromString(bytes) || !m.has_graph()) return false;
  auto* g = m.mutable_graph();
  switch (rng() % 8) {
    case 0:
      if (g->initializer_size()) {
        auto* t = g->mutable_initializer(static_cast<int>(rng() % g->initializer_size()));
        if (t->dims_size())
          t->set_dims(static_cast<int>(rng() % t->dims_size()), interesting_int(rng));
        else
          t->add_dims(interesting_int(rng));
      }
      break;
    case 1:
      if (g->initializer_size()) {
        auto* t = g->mutable_initializer(static_cast<int>(rng() % g->initializer_size()));
        t->set_data_type(static_cast<int32_t>(rng() % 30));
      }
      break;
    case 2:
      if (g->input_size()) {
        auto* tt = g->mutable_input(static_cast<int>(rng() % g->input_size()))
                       ->mutable_type()
                       ->mutable_tensor_type();
        if (rng() % 2) {
          tt->set_elem_type(static_cast<int32_t>(rng() % 30));
        } else {
          tt->mutable_shape()->add_dim()->set_dim_value(interesting_int(rng));
        }
      }
      break;
    case 3:
      if (g->node_size()) {
        auto* n = g->mutable_node(static_cast<int>(rng() % g->node_size()));
        if (n->input_size()) {
          // Rewire an input to another value name of the graph: cycles, dangling names.
          std::string target = n->output_size() && rng() % 2 ? n->output(0) : "nowhere";
          n->set_input(static_cast<int>(rng() % n->input_size()), target);
        }
      }
      break;
    case 4:
      if (g->node_size()) {
        auto* n = g->mutable_node(static_cast<int>(rng() % g->node_size()));
        auto* a = n->add_attribute();
        a->set_name("value");
        // Any valid type code (0..14); the value fields rarely match it.
        a->set_type(static_cast<onnx::AttributeProto::AttributeType>(rng() % 15));
        a->set_i(interesting_int(rng));
      }
      break;
    case 5:
      if (g->sparse_initializer_size()) {
        auto* sp = g->mutable_sparse_initializer(0);
        if (sp->dims_size())
          sp->set_dims(static_cast<int>(rng() % sp->dims_size()), interesting_int(rng));
        if (rng() % 2) sp->mutable_indices()->set_raw_data(std::string(16, '\xff'));
      }
      break;
    case 6:
      if (g->node_size() > 1) {
        // Duplicate a node: a value gets two producers.
        *g->add_node() = g->node(static_cast<int>(rng() % g->node_size()));
      }
      break;
    default:
      m.set_ir_version(interesting_int(rng));
      if (m.opset_import_size()) m.mutable_opset_import(0)->set_version(interesting_int(rng));
      break;
  }
  std::string out;
  if (!m.SerializeToString(&out)) return false;
  bytes = std::move(out);
  return true;
}

void mutate_bytes(std::string& s, const std::vector<std::string>& seeds, Rng& rng) {
  if (s.empty()) s.push_back('\0');
  const size_t pos = rng() % s.size();
  switch (rng() % 7) {
    case 0:
      s[pos] = static_cast<char>(s[pos] ^ (1 << (rng() % 8)));
      break;
    case 1:
      s[pos] = static_cast<char>(rng());
      break;
    case 2:
      s.insert(pos, 1 + rng() % 4, static_cast<char>(rng()));
      break;
    case 3:
      s.erase(pos, 1 + rng() % 8);
      break;
    case 4:
      s.resize(pos);
      break;
    case 5: {  // Splice a range from another seed: fields reappear in foreign contexts.
      const std::string& o = seeds[rng() % seeds.size()];
      const size_t a = rng() % o.size(), len = 1 + rng() % std::min<size_t>(64, o.size() - a);
      s.insert(pos, o.substr(a, len));
      break;
    }
    default: {  // A varint at its largest: lengths and counts that claim too much.
      static const char big[] = "\xff\xff\xff\xff\xff\xff\xff\xff\x7f";
      s.replace(pos, std::min<size_t>(s.size() - pos, 1 + rng() % 9), big, 9);
      break;
    }
  }
}

// Runs a loaded model on random inputs when every input is a small tensor.
void try_run(const kpt::Session& s, uint64_t seed) {
  std::map<std::string, kpt::Value> inputs;
  for (const auto& info : s.inputs()) {
    if (info.kind != "tensor" || !kpt::is_valid_dtype(static_cast<int32_t>(info.dtype)) ||
        info.dtype == DType::Undefined)
      return;
    int64_t n = 1;
    for (int64_t d : info.dims) {
      if (d > 64) return;
      n *= d < 0 ? 1 : d;
    }
    if (n > 4096) return;
    inputs[info.name] = kpt::Value::of(kpt::runtime::random_input(info, {}, seed));
  }
  s.run(inputs);
}

enum class Outcome { Rejected, Loaded, Finding };

// Loads (and maybe runs) one input.
Outcome exercise(const std::string& bytes, uint64_t seed, const std::string& label) {
  try {
    kpt::Session s = kpt::Session::from_bytes(bytes);
    try_run(s, seed);
    return Outcome::Loaded;
  } catch (const kpt::Error&) {
    return Outcome::Rejected;
  } catch (const std::exception& e) {
    std::cerr << label << ": non-kpt exception: " << e.what() << "\n";
  } catch (...) {
    std::cerr << label << ": unknown exception\n";
  }
  return Outcome::Finding;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0;
  uint64_t iterations = 0, seed = 1, start = 0;
  std::string dump;
  bool trace = false;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seconds")
      seconds = std::stod(next());
    else if (a == "--iterations")
      iterations = std::stoull(next());
    else if (a == "--seed")
      seed = std::stoull(next());
    else if (a == "--start")
      start = std::stoull(next());
    else if (a == "--dump")
      dump = next();
    else if (a == "--trace")
      trace = true;
    else
      files.push_back(a);
  }
  // Debug builds of protobuf log every mutated name that is not UTF-8; that is noise here.
  google::protobuf::SetLogHandler(nullptr);
  if (!files.empty()) {
    bool ok = true;
    for (const auto& f : files) ok = exercise(read_file(f), seed, f) != Outcome::Finding && ok;
    return ok ? 0 : 1;
  }
  if (seconds <= 0 && iterations == 0) seconds = 10;

  const std::vector<std::string> seeds = seed_models();
  for (size_t k = 0; k < seeds.size(); ++k) {
    if (exercise(seeds[k], seed, "seed " + std::to_string(k)) == Outcome::Finding) return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t done = 0, loaded = 0;
  for (uint64_t it = start;; ++it) {
    if (iterations && done >= iterations) break;
    if (seconds > 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() >= seconds)
      break;
    Rng rng(seed * 0x9E3779B97F4A7C15ull + it);
    std::string bytes = seeds[rng() % seeds.size()];
    const int rounds = 1 + static_cast<int>(rng() % 4);
    for (int r = 0; r < rounds; ++r) {
      if (rng() % 3 == 0 && mutate_message(bytes, rng)) continue;
      mutate_bytes(bytes, seeds, rng);
    }
    if (!dump.empty()) std::ofstream(dump, std::ios::binary) << bytes;
    const std::string label = "seed " + std::to_string(seed) + " iteration " + std::to_string(it);
    // With --trace a crash (which no handler here can report) leaves its iteration behind.
    if (trace) std::cerr << label << "\n";
    const Outcome outcome = exercise(bytes, it, label);
    if (outcome == Outcome::Finding) {
      std::cerr << "reproduce: kpt_import_fuzz --seed " << seed << " --start " << it
                << " --iterations 1 --dump finding.onnx\n";
      return 1;
    }
    ++done;
    if (outcome == Outcome::Loaded) ++loaded;
  }
  std::printf(
      "import fuzz: %llu iterations (seed %llu, from %llu), %llu loaded and ran, no findings\n",
      static_cast<unsigned long long>(done), static_cast<unsigned long long>(seed),
      static_cast<unsigned long long>(start), static_cast<unsigned long long>(loaded));
  return 0;
}
