#include "server/model_config.hpp"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "kpt/error.hpp"
#include "server/protocol.hpp"
#include "server/text_proto.hpp"

namespace kpt::server {

namespace {

int64_t get_int(const nlohmann::json& j, const std::string& key, const std::string& where,
                int64_t min) {
  const auto& v = j.at(key);
  check(v.is_number_integer(), where + ": '" + key + "' must be an integer");
  int64_t x = v.get<int64_t>();
  check(x >= min, where + ": '" + key + "' must be at least " + std::to_string(min) + ", got " +
                      std::to_string(x));
  return x;
}

void check_keys(const nlohmann::json& j, const std::set<std::string>& allowed,
                const std::string& where) {
  check(j.is_object(), where + ": expected a JSON object");
  for (const auto& [key, _] : j.items()) {
    if (allowed.count(key)) continue;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail(where + ": unknown field '" + key + "' (known: " + list + ")");
  }
}

std::vector<TensorDesc> parse_tensors(const nlohmann::json& j, const std::string& where) {
  check(j.is_array(), where + ": expected an array of {name, data_type, dims}");
  std::vector<TensorDesc> out;
  for (size_t i = 0; i < j.size(); ++i) {
    std::string w = where + "[" + std::to_string(i) + "]";
    check_keys(j[i], {"name", "data_type", "dims", "description"}, w);
    check(j[i].contains("name") && j[i]["name"].is_string(), w + ": 'name' (a string) is required");
    TensorDesc d;
    d.name = j[i]["name"].get<std::string>();
    if (j[i].contains("data_type")) {
      check(j[i]["data_type"].is_string(), w + ": 'data_type' must be a string like \"FP32\"");
      std::string t = j[i]["data_type"].get<std::string>();
      // Triton's config spells types TYPE_FP32; the protocol spells them FP32.
      if (t.rfind("TYPE_", 0) == 0) t = t.substr(5);
      d.dtype = dtype_from_datatype(t);
    }
    if (j[i].contains("dims")) {
      check(j[i]["dims"].is_array(), w + ": 'dims' must be an array of integers");
      Dims dims;
      for (const auto& x : j[i]["dims"]) {
        check(x.is_number_integer() && x.get<int64_t>() >= -1,
              w + ": 'dims' entries must be integers >= -1 (-1: any size)");
        dims.push_back(x.get<int64_t>());
      }
      d.dims = dims;
    }
    if (j[i].contains("description")) {
      check(j[i]["description"].is_string(), w + ": 'description' must be a string");
      d.description = j[i]["description"].get<std::string>();
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

ModelConfig parse_model_config(const nlohmann::json& j, const ModelConfig& defaults,
                               const std::string& where) {
  check_keys(j,
             {"name", "max_batch_size", "dynamic_batching", "instance_group", "instance_count",
              "threads_per_instance", "input", "output", "max_queue_size", "default_timeout_us",
              "platform", "backend"},
             where);
  ModelConfig c = defaults;
  if (j.contains("max_batch_size")) c.max_batch_size = get_int(j, "max_batch_size", where, 0);
  if (j.contains("dynamic_batching")) {
    const auto& b = j["dynamic_batching"];
    std::string w = where + ": dynamic_batching";
    check_keys(b, {"max_queue_delay_microseconds", "preferred_batch_size", "max_queue_size"}, w);
    c.dynamic_batching = true;
    if (b.contains("max_queue_delay_microseconds"))
      c.max_queue_delay_us = get_int(b, "max_queue_delay_microseconds", w, 0);
    if (b.contains("max_queue_size")) c.max_queue_size = get_int(b, "max_queue_size", w, 1);
    if (b.contains("preferred_batch_size")) {
      check(b["preferred_batch_size"].is_array(), w + ": 'preferred_batch_size' must be an array");
      c.preferred_batch_sizes.clear();
      for (const auto& x : b["preferred_batch_size"]) {
        check(x.is_number_integer() && x.get<int64_t>() > 0,
              w + ": 'preferred_batch_size' entries must be positive integers");
        c.preferred_batch_sizes.push_back(x.get<int64_t>());
      }
    }
  }
  if (j.contains("max_queue_size")) c.max_queue_size = get_int(j, "max_queue_size", where, 1);
  if (j.contains("default_timeout_us"))
    c.default_timeout_us = get_int(j, "default_timeout_us", where, 0);
  if (j.contains("instance_count"))
    c.instance_count = static_cast<int>(get_int(j, "instance_count", where, 1));
  if (j.contains("instance_group")) {
    // Triton's form: [{"count": N, "kind": "KIND_CPU"}]; instances of all groups add up.
    const auto& g = j["instance_group"];
    check(g.is_array() && !g.empty(), where + ": 'instance_group' must be a non-empty array");
    int total = 0;
    for (const auto& e : g) {
      check_keys(e, {"count", "kind", "name"}, where + ": instance_group entry");
      total += e.contains("count") ? static_cast<int>(get_int(e, "count", where, 1)) : 1;
      if (e.contains("kind")) {
        // Instances are CPU sessions; a config asking for GPUs must not silently get CPUs.
        bool cpu = e["kind"] == "KIND_CPU" || e["kind"] == "KIND_AUTO";
        check(cpu, where + ": instance_group kind " + e["kind"].dump() +
                       " is not served (expected KIND_CPU or KIND_AUTO)");
      }
    }
    c.instance_count = total;
  }
  check(c.instance_count <= 64, where + ": at most 64 instances per model");
  if (j.contains("threads_per_instance"))
    c.threads_per_instance = static_cast<int>(get_int(j, "threads_per_instance", where, 0));
  if (j.contains("input")) c.inputs = parse_tensors(j["input"], where + ": input");
  if (j.contains("output")) c.outputs = parse_tensors(j["output"], where + ": output");
  check(!c.dynamic_batching || c.max_batch_size > 0,
        where + ": dynamic_batching needs max_batch_size > 0");
  for (int64_t p : c.preferred_batch_sizes)
    check(p <= c.max_batch_size, where + ": preferred batch size " + std::to_string(p) +
                                     " exceeds max_batch_size " + std::to_string(c.max_batch_size));
  return c;
}

nlohmann::json model_config_to_json(const ModelConfig& c) {
  nlohmann::json j;
  j["max_batch_size"] = c.max_batch_size;
  if (c.dynamic_batching) {
    j["dynamic_batching"] = {{"max_queue_delay_microseconds", c.max_queue_delay_us},
                             {"preferred_batch_size", c.preferred_batch_sizes}};
  }
  j["max_queue_size"] = c.max_queue_size;
  j["default_timeout_us"] = c.default_timeout_us;
  j["instance_group"] =
      nlohmann::json::array({{{"count", c.instance_count}, {"kind", "KIND_CPU"}}});
  return j;
}

namespace {

// The part of Triton's ModelConfig message that maps to ModelConfig, as a schema for the text
// format: anything else is an error naming the field and its line.
struct TextFieldSpec {
  const char* name;
  enum Kind { Int, String, Enum, Message } kind;
  bool repeated;
  const std::vector<TextFieldSpec>* message;
};

const std::vector<TextFieldSpec> kTensorSpec = {{"name", TextFieldSpec::String, false, nullptr},
                                                {"data_type", TextFieldSpec::Enum, false, nullptr},
                                                {"dims", TextFieldSpec::Int, true, nullptr}};
const std::vector<TextFieldSpec> kQueuePolicySpec = {
    {"max_queue_size", TextFieldSpec::Int, false, nullptr},
    {"default_timeout_microseconds", TextFieldSpec::Int, false, nullptr}};
const std::vector<TextFieldSpec> kDynamicBatchingSpec = {
    {"max_queue_delay_microseconds", TextFieldSpec::Int, false, nullptr},
    {"preferred_batch_size", TextFieldSpec::Int, true, nullptr},
    {"default_queue_policy", TextFieldSpec::Message, false, &kQueuePolicySpec}};
const std::vector<TextFieldSpec> kInstanceGroupSpec = {
    {"name", TextFieldSpec::String, false, nullptr},
    {"count", TextFieldSpec::Int, false, nullptr},
    {"kind", TextFieldSpec::Enum, false, nullptr}};
const std::vector<TextFieldSpec> kModelConfigSpec = {
    {"name", TextFieldSpec::String, false, nullptr},
    {"platform", TextFieldSpec::String, false, nullptr},
    {"backend", TextFieldSpec::String, false, nullptr},
    {"max_batch_size", TextFieldSpec::Int, false, nullptr},
    {"input", TextFieldSpec::Message, true, &kTensorSpec},
    {"output", TextFieldSpec::Message, true, &kTensorSpec},
    {"dynamic_batching", TextFieldSpec::Message, false, &kDynamicBatchingSpec},
    {"instance_group", TextFieldSpec::Message, true, &kInstanceGroupSpec}};

nlohmann::json text_to_json(const TextMessage& m, const std::vector<TextFieldSpec>& spec,
                            const std::string& where, const std::string& context) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& f : m.fields) {
    std::string at = where + ":" + std::to_string(f.line) + ": ";
    const TextFieldSpec* s = nullptr;
    for (const auto& candidate : spec)
      if (f.name == candidate.name) s = &candidate;
    if (!s) {
      std::string known;
      for (const auto& candidate : spec)
        known += (known.empty() ? "" : ", ") + std::string(candidate.name);
      fail(at + "unknown field '" + f.name + "' in " + context + " (known: " + known + ")");
    }
    nlohmann::json v;
    switch (s->kind) {
      case TextFieldSpec::Int: {
        int64_t x = 0;
        const char* end = f.text.data() + f.text.size();
        auto [ptr, ec] = std::from_chars(f.text.data(), end, x);
        check(f.type == TextField::Type::Number && ec == std::errc() && ptr == end,
              at + "'" + f.name + "' must be an integer, got '" + f.text + "'");
        v = x;
        break;
      }
      case TextFieldSpec::String:
        check(f.type == TextField::Type::String,
              at + "'" + f.name + "' must be a quoted string, got '" + f.text + "'");
        v = f.text;
        break;
      case TextFieldSpec::Enum:
        check(f.type == TextField::Type::Identifier,
              at + "'" + f.name + "' must be an enum name like TYPE_FP32 or KIND_CPU, got '" +
                  f.text + "'");
        v = f.text;
        break;
      case TextFieldSpec::Message:
        check(f.type == TextField::Type::Message,
              at + "'" + f.name + "' must be a message { ... }");
        v = text_to_json(*f.message, *s->message, where, f.name);
        break;
    }
    if (s->repeated) {
      out[f.name].push_back(std::move(v));
    } else {
      check(!out.contains(f.name), at + "field '" + f.name + "' given twice in " + context);
      out[f.name] = std::move(v);
    }
  }
  return out;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  check(f.good(), path.string() + ": cannot read the file");
  std::ostringstream text;
  text << f.rdbuf();
  return text.str();
}

}  // namespace

nlohmann::json triton_text_config_to_json(std::string_view text, const std::string& where) {
  nlohmann::json j =
      text_to_json(parse_text_proto(text, where), kModelConfigSpec, where, "the model config");
  // Triton keeps queue limits in a queue policy; ModelConfig keeps them flat.
  if (j.contains("dynamic_batching") && j["dynamic_batching"].contains("default_queue_policy")) {
    nlohmann::json policy = j["dynamic_batching"]["default_queue_policy"];
    j["dynamic_batching"].erase("default_queue_policy");
    if (policy.contains("max_queue_size"))
      j["dynamic_batching"]["max_queue_size"] = policy["max_queue_size"];
    if (policy.contains("default_timeout_microseconds"))
      j["default_timeout_us"] = policy["default_timeout_microseconds"];
  }
  return j;
}

ModelConfig load_model_config(const std::string& model_dir, const ModelConfig& defaults) {
  namespace fs = std::filesystem;
  fs::path text_path = fs::path(model_dir) / "config.pbtxt";
  fs::path json_path = fs::path(model_dir) / "config.json";
  bool has_text = fs::exists(text_path), has_json = fs::exists(json_path);
  if (!has_text && !has_json) return defaults;
  nlohmann::json j = nlohmann::json::object();
  if (has_text) j = triton_text_config_to_json(read_file(text_path), text_path.string());
  if (has_json) {
    nlohmann::json overrides = nlohmann::json::parse(read_file(json_path), nullptr, false);
    check(!overrides.is_discarded(), json_path.string() + ": malformed JSON");
    check(overrides.is_object(), json_path.string() + ": expected a JSON object");
    // Beside Triton's config.pbtxt, config.json adds kpt's own fields or overrides some.
    j.merge_patch(overrides);
  }
  std::string where = has_text && has_json ? text_path.string() + " with config.json"
                                           : (has_text ? text_path : json_path).string();
  return parse_model_config(j, defaults, where);
}

void validate_model_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 128 && name[0] != '.';
  for (char ch : name) {
    bool allowed = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
    ok = ok && allowed;
  }
  check(ok, "invalid model name '" + name.substr(0, 140) +
                "': expected 1-128 letters, digits, '_', '-' or '.', not starting with '.'");
}

bool is_version_string(const std::string& s) {
  if (s.empty() || s.size() > 18 || s[0] == '0') return false;
  for (char ch : s)
    if (ch < '0' || ch > '9') return false;
  return true;
}

}  // namespace kpt::server
