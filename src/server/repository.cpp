#include "server/repository.hpp"

#include <algorithm>
#include <filesystem>
#include <thread>

#include "server/protocol.hpp"

namespace kpt::server {

namespace fs = std::filesystem;

namespace {

// Applies the config's input/output descriptions to the model's declaration: names must exist,
// dtypes must agree, dims may only narrow dynamic dims.
void apply_descriptions(std::vector<IoInfo>& infos, const std::vector<TensorDesc>& descs,
                        int64_t max_batch_size, const std::string& where) {
  for (const auto& d : descs) {
    auto it =
        std::find_if(infos.begin(), infos.end(), [&](const IoInfo& i) { return i.name == d.name; });
    check(it != infos.end(),
          where + ": the config describes '" + d.name + "' but the model has no such tensor");
    if (d.dtype)
      check(*d.dtype == it->dtype, where + ": '" + d.name + "' is " + datatype_name(it->dtype) +
                                       " in the model, the config says " + datatype_name(*d.dtype));
    if (!d.dims) continue;
    Dims dims = *d.dims;
    if (max_batch_size > 0) dims.insert(dims.begin(), -1);
    if (it->has_shape) {
      check(dims.size() == it->dims.size(),
            where + ": '" + d.name + "' has rank " + std::to_string(it->dims.size()) +
                " in the model, the config gives " + dims_to_string(dims) +
                (max_batch_size > 0 ? " (batch dim included)" : ""));
      for (size_t k = 0; k < dims.size(); ++k)
        check(it->dims[k] < 0 || dims[k] == it->dims[k] ||
                  (dims[k] < 0 && k == 0 && max_batch_size > 0),
              where + ": '" + d.name + "' dim " + std::to_string(k) + " is " +
                  std::to_string(it->dims[k]) + " in the model, the config says " +
                  std::to_string(dims[k]));
      for (size_t k = 0; k < dims.size(); ++k)
        if (dims[k] >= 0 || it->dims[k] < 0) it->dims[k] = dims[k];
    } else {
      it->dims = dims;
      it->has_shape = true;
      it->symbols.assign(dims.size(), "");
    }
  }
}

}  // namespace

Repository::Repository(RepositoryOptions options, Metrics& metrics)
    : options_(std::move(options)), metrics_(metrics) {}

Repository::~Repository() {
  shutdown_all();
}

std::vector<std::string> Repository::names_on_disk() const {
  if (options_.repository_dir.empty()) return {options_.model_name};
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(options_.repository_dir)) {
    std::string n = e.path().filename().string();
    if (e.is_directory() && !n.empty() && n[0] != '.') names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::shared_ptr<LoadedModel> Repository::open_model(const std::string& name,
                                                    const std::string& version,
                                                    const std::string& path,
                                                    const ModelConfig& config) {
  auto m = std::make_shared<LoadedModel>();
  m->name = name;
  m->version = version;
  m->path = path;
  m->config = config;
  std::string where = "model '" + name + "' version " + version;
  int instances = std::max(1, config.instance_count);
  SessionOptions so;
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  so.threads = config.threads_per_instance > 0 ? config.threads_per_instance
                                               : std::max(1, cores / instances);
  // Each instance has its own Session so that instances never share per-run state.
  std::vector<std::shared_ptr<const Session>> sessions;
  for (int i = 0; i < instances; ++i) {
    try {
      sessions.push_back(std::make_shared<const Session>(Session::open(path, so)));
    } catch (const std::exception& e) {
      fail(where + ": " + e.what());
    }
  }
  m->inputs = sessions[0]->inputs();
  m->outputs = sessions[0]->outputs();
  apply_descriptions(m->inputs, config.inputs, config.max_batch_size, where + " config input");
  apply_descriptions(m->outputs, config.outputs, config.max_batch_size, where + " config output");
  auto names = std::make_shared<std::vector<std::string>>();
  for (const auto& o : m->outputs) names->push_back(o.name);
  m->output_names = std::move(names);
  if (config.max_batch_size > 0) {
    for (const auto& in : m->inputs)
      check(in.kind == "tensor" && (!in.has_shape || (!in.dims.empty() && in.dims[0] < 0)),
            where + ": max_batch_size needs dim 0 of every input to be dynamic, input '" + in.name +
                "' declares " + (in.has_shape ? dims_to_string(in.dims) : std::string("no shape")));
  }
  m->metrics = metrics_.model(name, version);
  m->scheduler = std::make_unique<Scheduler>(std::move(sessions), config, m->metrics);
  return m;
}

std::map<std::string, std::shared_ptr<LoadedModel>> Repository::open_versions(
    const std::string& name) {
  std::map<std::string, std::shared_ptr<LoadedModel>> out;
  if (options_.repository_dir.empty()) {
    if (name != options_.model_name)
      throw NotFound("unknown model '" + name + "'; this server serves '" + options_.model_name +
                     "'");
    out["1"] = open_model(name, "1", options_.model_path, options_.defaults);
    return out;
  }
  validate_model_name(name);
  fs::path dir = fs::path(options_.repository_dir) / name;
  if (!fs::is_directory(dir))
    throw NotFound("no model '" + name + "' in the repository " + options_.repository_dir);
  ModelConfig config = load_model_config(dir.string(), options_.defaults);
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string v = e.path().filename().string();
    if (!e.is_directory() || !is_version_string(v)) continue;
    fs::path file = e.path() / "model.onnx";
    if (!fs::exists(file)) file = e.path() / "model.kpt";
    check(fs::exists(file),
          (e.path()).string() + ": expected model.onnx or model.kpt in the version folder");
    out[v] = open_model(name, v, file.string(), config);
  }
  check(!out.empty(),
        dir.string() + ": no version folders (expected " + dir.string() + "/1/model.onnx)");
  return out;
}

void Repository::load(const std::string& name) {
  std::lock_guard load_lock(load_mutex_);
  std::map<std::string, std::shared_ptr<LoadedModel>> fresh;
  try {
    fresh = open_versions(name);
  } catch (const NotFound&) {
    throw;
  } catch (const std::exception& e) {
    std::lock_guard lock(mutex_);
    if (!models_.count(name)) unavailable_[name] = e.what();
    throw;
  }
  std::map<int64_t, std::shared_ptr<LoadedModel>> old;
  {
    std::lock_guard lock(mutex_);
    auto& slot = models_[name];
    old.swap(slot);
    for (auto& [v, m] : fresh) slot[std::stoll(v)] = m;
    unavailable_.erase(name);
  }
  // The replaced versions finish what they had queued.
  for (auto& [v, m] : old) m->scheduler->shutdown();
}

void Repository::unload(const std::string& name) {
  std::lock_guard load_lock(load_mutex_);
  std::map<int64_t, std::shared_ptr<LoadedModel>> old;
  {
    std::lock_guard lock(mutex_);
    auto it = models_.find(name);
    if (it == models_.end()) {
      if (!options_.repository_dir.empty()) validate_model_name(name);
      throw NotFound("model '" + name + "' is not loaded");
    }
    old.swap(it->second);
    models_.erase(it);
    unavailable_[name] = "unloaded";
  }
  for (auto& [v, m] : old) m->scheduler->shutdown();
}

void Repository::load_all() {
  for (const auto& name : names_on_disk()) load(name);
}

std::shared_ptr<LoadedModel> Repository::find(const std::string& name,
                                              const std::string& version) const {
  std::lock_guard lock(mutex_);
  auto it = models_.find(name);
  if (it == models_.end() || it->second.empty()) {
    auto u = unavailable_.find(name);
    if (u != unavailable_.end())
      throw NotFound("model '" + name + "' is not available: " + u->second);
    throw NotFound("unknown model '" + name.substr(0, 140) + "'");
  }
  if (version.empty()) return it->second.rbegin()->second;
  auto v = is_version_string(version) ? it->second.find(std::stoll(version)) : it->second.end();
  if (v == it->second.end()) {
    std::string have;
    for (const auto& [n, _] : it->second) have += (have.empty() ? "" : ", ") + std::to_string(n);
    throw NotFound("model '" + name + "' has no version '" + version.substr(0, 40) +
                   "' (loaded: " + have + ")");
  }
  return v->second;
}

std::vector<std::string> Repository::versions(const std::string& name) const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  auto it = models_.find(name);
  if (it != models_.end())
    for (const auto& [v, _] : it->second) out.push_back(std::to_string(v));
  return out;
}

std::vector<ModelState> Repository::index() const {
  std::vector<std::string> names = names_on_disk();
  std::lock_guard lock(mutex_);
  std::vector<ModelState> out;
  for (const auto& name : names) {
    auto it = models_.find(name);
    if (it != models_.end()) {
      for (const auto& [v, _] : it->second) out.push_back({name, std::to_string(v), "READY", ""});
    } else {
      auto u = unavailable_.find(name);
      out.push_back({name, "", "UNAVAILABLE", u != unavailable_.end() ? u->second : "not loaded"});
    }
  }
  return out;
}

void Repository::shutdown_all() {
  std::map<std::string, std::map<int64_t, std::shared_ptr<LoadedModel>>> all;
  {
    std::lock_guard lock(mutex_);
    all = models_;
  }
  for (auto& [n, vs] : all)
    for (auto& [v, m] : vs) m->scheduler->shutdown();
}

}  // namespace kpt::server
