#pragma once
// Per-model serving configuration: what a model repository's optional NAME/config.json or
// Triton's NAME/config.pbtxt says (field names follow Triton's model configuration so its
// users recognise them), or what `kpt serve` flags give for a single model.
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kpt/dtype.hpp"
#include "kpt/tensor.hpp"

namespace kpt::server {

// An input or output as the configuration describes it. Dims follow Triton: when the model
// batches (max_batch_size > 0) they leave out the batch dim.
struct TensorDesc {
  std::string name;
  std::optional<DType> dtype;
  std::optional<Dims> dims;
  std::string description;
};

struct ModelConfig {
  // Largest batch (dim 0) one request or one formed batch may have; 0 means the model does
  // not batch and requests run as they come.
  int64_t max_batch_size = 0;
  // Dynamic batching: queued requests are concatenated along dim 0 and run once.
  bool dynamic_batching = false;
  int64_t max_queue_delay_us = 0;
  std::vector<int64_t> preferred_batch_sizes;
  // Requests waiting beyond this many are refused with 503 instead of queueing without bound.
  int64_t max_queue_size = 256;
  // A request still queued after this long is answered 503 (0: no limit). A request may ask
  // for a shorter limit with the "timeout" parameter (microseconds, as Triton).
  int64_t default_timeout_us = 0;
  int instance_count = 1;
  int threads_per_instance = 0;  // 0: the machine's cores divided among the instances
  std::vector<TensorDesc> inputs;
  std::vector<TensorDesc> outputs;
};

// Parses config.json; `where` names the file in error messages. Unknown fields are errors so
// that a misspelt option does not silently do nothing.
ModelConfig parse_model_config(const nlohmann::json& j, const ModelConfig& defaults,
                               const std::string& where);
nlohmann::json model_config_to_json(const ModelConfig& c);

// Triton's config.pbtxt (protobuf text format), the fields ModelConfig maps, as the JSON that
// parse_model_config reads: dynamic_batching.default_queue_policy's max_queue_size and
// default_timeout_microseconds become max_queue_size and default_timeout_us. Unknown fields
// and wrong value types are errors naming the field and its line.
nlohmann::json triton_text_config_to_json(std::string_view text, const std::string& where);

// The configuration of a repository model folder: config.pbtxt, config.json, or both (the JSON
// then overrides the text format field by field and may add kpt's own fields); `defaults`
// where neither exists.
ModelConfig load_model_config(const std::string& model_dir, const ModelConfig& defaults);

// Model names become folder names: letters, digits, '_', '-', '.', not starting with '.', at
// most 128 characters, so that no name can reach outside the repository.
void validate_model_name(const std::string& name);
// Versions are positive decimal integers (Triton's folder layout).
bool is_version_string(const std::string& s);

}  // namespace kpt::server
