#pragma once
// The models the server serves: either one model file, or a Triton-style repository
// DIR/NAME/VERSION/model.onnx (or model.kpt) with an optional DIR/NAME/config.json. Models can
// be loaded and unloaded while serving; a reload replaces a model only once the new one is
// ready, so requests never see a half-loaded model.
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kpt/error.hpp"
#include "kpt/session.hpp"
#include "server/metrics.hpp"
#include "server/model_config.hpp"
#include "server/scheduler.hpp"

namespace kpt::server {

// An unknown model or version (HTTP 404).
class NotFound : public Error {
 public:
  explicit NotFound(const std::string& m) : Error(m) {}
};

struct LoadedModel {
  std::string name, version, path;
  ModelConfig config;
  std::vector<IoInfo> inputs, outputs;  // as served: the model's declaration with config dims
  // Shared with in-flight requests' callbacks, which must not hold the model itself.
  std::shared_ptr<const std::vector<std::string>> output_names;
  std::shared_ptr<ModelMetrics> metrics;
  std::unique_ptr<Scheduler> scheduler;
};

struct RepositoryOptions {
  std::string repository_dir;  // either this ...
  std::string model_path;      // ... or one model file
  std::string model_name;      // name of the one model
  ModelConfig defaults;        // used where a model has no config.json
};

struct ModelState {
  std::string name, version, state, reason;
};

class Repository {
 public:
  Repository(RepositoryOptions options, Metrics& metrics);
  ~Repository();

  // Loads every model at startup; throws when one fails so a misconfigured server does not
  // start half-working.
  void load_all();
  // (Re)loads every version of NAME from disk / unloads it. Throw NotFound or Error.
  void load(const std::string& name);
  void unload(const std::string& name);
  // The given version, or the highest one when `version` is empty.
  std::shared_ptr<LoadedModel> find(const std::string& name, const std::string& version) const;
  std::vector<std::string> versions(const std::string& name) const;
  std::vector<ModelState> index() const;
  // Finishes the queued requests of every model and stops their workers.
  void shutdown_all();

 private:
  std::map<std::string, std::shared_ptr<LoadedModel>> open_versions(const std::string& name);
  std::shared_ptr<LoadedModel> open_model(const std::string& name, const std::string& version,
                                          const std::string& path, const ModelConfig& config);
  std::vector<std::string> names_on_disk() const;

  RepositoryOptions options_;
  Metrics& metrics_;
  mutable std::mutex mutex_;
  // name -> version -> model, versions ordered numerically.
  std::map<std::string, std::map<int64_t, std::shared_ptr<LoadedModel>>> models_;
  std::map<std::string, std::string> unavailable_;  // name -> why (failed load, unloaded)
  std::mutex load_mutex_;                           // one load/unload at a time
};

}  // namespace kpt::server
