#include "server/service.hpp"

#include <condition_variable>
#include <deque>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/protocol.hpp"

namespace kpt::server {

using nlohmann::json;

// One thread that runs repository loads and unloads in order.
struct Service::ControlThread {
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::function<void()>> tasks;
  bool stop = false;
  std::thread thread{[this] {
    std::unique_lock lock(mutex);
    for (;;) {
      cv.wait(lock, [&] { return stop || !tasks.empty(); });
      if (tasks.empty()) return;
      auto task = std::move(tasks.front());
      tasks.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }};
  void post(std::function<void()> f) {
    {
      std::lock_guard lock(mutex);
      tasks.push_back(std::move(f));
    }
    cv.notify_one();
  }
  ~ControlThread() {
    {
      std::lock_guard lock(mutex);
      stop = true;
    }
    cv.notify_one();
    thread.join();
  }
};

namespace {

HttpResponse json_response(int status, const json& j) {
  HttpResponse r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

HttpResponse error_response(int status, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.body = error_body(message);
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
  if (status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

std::vector<std::string> split_path(const std::string& target) {
  std::string path = target.substr(0, target.find('?'));
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    if (next > pos) parts.push_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  return parts;
}

// Triton's statistics extension layout for one model version; durations in nanoseconds.
json model_statistics(const LoadedModel& m) {
  const ModelMetrics& s = *m.metrics;
  auto duration = [](uint64_t count, uint64_t ns) { return json{{"count", count}, {"ns", ns}}; };
  auto [executions, inferences] = s.execution_and_inference_counts();
  json batches = json::array();
  for (const auto& [size, b] : s.batch_stats())
    batches.push_back({{"batch_size", size},
                       {"compute_input", duration(b.executions, b.compute_input_ns)},
                       {"compute_infer", duration(b.executions, b.compute_infer_ns)},
                       {"compute_output", duration(b.executions, b.compute_output_ns)}});
  uint64_t executed = s.executed_requests.load();
  return {{"name", m.name},
          {"version", m.version},
          {"last_inference", s.last_inference_ms.load()},
          {"inference_count", inferences},
          {"execution_count", executions},
          {"inference_stats",
           {{"success", duration(s.request_success.load(), s.success_duration_ns.load())},
            {"fail", duration(s.request_failure.load(), s.failure_duration_ns.load())},
            {"queue", duration(s.queue_latency_seconds.count(), s.queue_duration_ns.load())},
            {"compute_input", duration(executed, s.compute_input_ns.load())},
            {"compute_infer", duration(executed, s.compute_infer_ns.load())},
            {"compute_output", duration(executed, s.compute_output_ns.load())},
            {"cache_hit", duration(0, 0)},
            {"cache_miss", duration(0, 0)}}},
          {"batch_stats", batches}};
}

json tensor_metadata(const IoInfo& info) {
  json shape = json::array();
  if (info.has_shape)
    for (int64_t d : info.dims) shape.push_back(d);
  return {{"name", info.name}, {"datatype", datatype_name(info.dtype)}, {"shape", shape}};
}

// Checks a request's inputs against the model's declaration before queueing it, so that a bad
// request fails alone with a precise message instead of failing a whole batch. Runs on every
// request: messages are built only when a check fails.
int64_t validate_inputs(const LoadedModel& m, const InferRequest& req) {
  for (const auto& [name, t] : req.inputs) {
    bool known = false;
    for (const auto& info : m.inputs) known = known || info.name == name;
    if (!known) {
      std::string list;
      for (const auto& info : m.inputs) list += (list.empty() ? "" : ", ") + info.name;
      fail("unexpected input '" + name.substr(0, 100) + "' for model '" + m.name +
           "' (inputs: " + list + ")");
    }
  }
  int64_t batch = -1;
  for (const auto& info : m.inputs) {
    const Tensor* t = nullptr;
    for (const auto& [name, tensor] : req.inputs)
      if (name == info.name) t = &tensor;
    if (!t) fail("missing input '" + info.name + "' for model '" + m.name + "'");
    if (t->dtype() != info.dtype)
      fail("input '" + info.name + "': datatype " + datatype_name(t->dtype()) +
           ", the model expects " + datatype_name(info.dtype));
    if (info.has_shape) {
      bool ok = t->rank() == info.dims.size();
      for (size_t d = 0; ok && d < info.dims.size(); ++d)
        ok = info.dims[d] < 0 || info.dims[d] == t->dims()[d];
      if (!ok)
        fail("input '" + info.name + "': shape " + dims_to_string(t->dims()) +
             ", the model expects " + dims_to_string(info.dims) + " (-1: any size)");
    }
    if (m.config.max_batch_size > 0) {
      if (t->rank() == 0) fail("input '" + info.name + "': a batching model needs a batch dim");
      int64_t b = t->dims()[0];
      if (batch >= 0 && b != batch)
        fail("input '" + info.name + "': batch size " + std::to_string(b) +
             " differs from the other inputs' " + std::to_string(batch));
      batch = b;
      if (b < 1 || b > m.config.max_batch_size)
        fail("input '" + info.name + "': batch size " + std::to_string(b) + " is outside 1.." +
             std::to_string(m.config.max_batch_size) + " (the model's max_batch_size)");
    }
  }
  for (const auto& ro : req.outputs) {
    bool known = false;
    for (const auto& n : *m.output_names) known = known || n == ro.name;
    if (!known) {
      std::string list;
      for (const auto& n : *m.output_names) list += (list.empty() ? "" : ", ") + n;
      fail("unknown output '" + ro.name.substr(0, 100) + "' requested (outputs: " + list + ")");
    }
  }
  return m.config.max_batch_size > 0 ? batch : 0;
}

}  // namespace

Service::Service(ServiceOptions options, Repository& repository, Metrics& metrics)
    : options_(std::move(options)),
      repository_(repository),
      metrics_(metrics),
      control_(std::make_unique<ControlThread>()) {}

Service::~Service() = default;

bool Service::authorized(const HttpRequest& request) const {
  if (options_.auth_token.empty()) return true;
  std::string expected = "Bearer " + options_.auth_token;
  const std::string& got = request.authorization;
  // Constant time in the token's length, so that timing does not reveal a prefix.
  unsigned diff = got.size() != expected.size();
  for (size_t i = 0; i < expected.size(); ++i)
    diff |= static_cast<unsigned>(expected[i] ^ (i < got.size() ? got[i] : 0));
  return diff == 0;
}

void Service::handle(HttpRequest request, Responder respond) {
  metrics_.requests_in_flight.fetch_add(1);
  Metrics* metrics = &metrics_;
  // Counts every response once, whichever path answers.
  Responder counted = [metrics, respond = std::move(respond)](HttpResponse r) {
    metrics->count_http(r.status);
    metrics->requests_in_flight.fetch_sub(1);
    respond(std::move(r));
  };
  try {
    route(request, counted);
  } catch (const NotFound& e) {
    counted(error_response(404, e.what()));
  } catch (const std::exception& e) {
    counted(error_response(400, e.what()));
  }
}

void Service::route(HttpRequest& request, const Responder& respond) {
  auto parts = split_path(request.target);
  const std::string& method = request.method;
  auto want = [&](const char* m) {
    if (method == m) return true;
    HttpResponse r = error_response(405, "method " + method + " not allowed on " +
                                             request.target.substr(0, 200) + " (use " + m + ")");
    r.headers.emplace_back("Allow", m);
    respond(std::move(r));
    return false;
  };
  // Health probes stay open without a token, as orchestrators call them bare.
  if (parts.size() == 3 && parts[0] == "v2" && parts[1] == "health") {
    if (!want("GET")) return;
    if (parts[2] == "live") return respond(HttpResponse{200, "text/plain", "", {}});
    if (parts[2] == "ready") {
      if (draining_) return respond(error_response(503, "the server is shutting down"));
      return respond(HttpResponse{200, "text/plain", "", {}});
    }
  }
  if (!authorized(request))
    return respond(error_response(401, options_.auth_token.empty() || request.authorization.empty()
                                           ? "missing 'Authorization: Bearer TOKEN' header"
                                           : "wrong bearer token"));
  if (parts.size() == 1 && parts[0] == "metrics") {
    if (!want("GET")) return;
    return respond(HttpResponse{200, "text/plain; version=0.0.4", metrics_.render(), {}});
  }
  if (parts.size() == 1 && parts[0] == "v2") {
    if (!want("GET")) return;
    return respond(json_response(
        200, {{"name", "kpt"},
              {"version", KPT_VERSION_STRING},
              {"extensions",
               {"binary_tensor_data", "model_repository", "model_configuration", "statistics"}}}));
  }
  // Statistics of every loaded model (Triton's route: it shadows a model named "stats").
  if (parts.size() == 3 && parts[0] == "v2" && parts[1] == "models" && parts[2] == "stats") {
    if (!want("GET")) return;
    json stats = json::array();
    for (const auto& state : repository_.index()) {
      if (state.state != "READY") continue;
      try {
        stats.push_back(model_statistics(*repository_.find(state.name, state.version)));
      } catch (const NotFound&) {
        // unloaded since the index was taken
      }
    }
    return respond(json_response(200, {{"model_stats", stats}}));
  }
  if (parts.size() >= 3 && parts[0] == "v2" && parts[1] == "models") {
    const std::string& name = parts[2];
    std::string version;
    size_t rest = 3;
    if (parts.size() >= 5 && parts[3] == "versions") {
      version = parts[4];
      rest = 5;
    }
    std::string action = parts.size() > rest ? parts[rest] : "";
    if (parts.size() > rest + 1)
      return respond(error_response(404, "unknown endpoint " + request.target.substr(0, 200)));
    if (action == "infer") {
      if (!want("POST")) return;
      return infer(name, version, request, respond);
    }
    if (!want("GET")) return;
    auto m = repository_.find(name, version);
    if (action.empty()) {
      json inputs = json::array(), outputs = json::array();
      for (const auto& i : m->inputs) inputs.push_back(tensor_metadata(i));
      for (const auto& o : m->outputs) outputs.push_back(tensor_metadata(o));
      json versions =
          version.empty() ? json(repository_.versions(name)) : json::array({m->version});
      return respond(json_response(200, {{"name", m->name},
                                         {"versions", versions},
                                         {"platform", "onnx"},
                                         {"inputs", inputs},
                                         {"outputs", outputs}}));
    }
    if (action == "ready") return respond(HttpResponse{200, "text/plain", "", {}});
    if (action == "stats") {
      json stats = json::array();
      if (!version.empty()) {
        stats.push_back(model_statistics(*m));
      } else {
        for (const auto& v : repository_.versions(name)) {
          try {
            stats.push_back(model_statistics(*repository_.find(name, v)));
          } catch (const NotFound&) {
            // unloaded meanwhile
          }
        }
      }
      return respond(json_response(200, {{"model_stats", stats}}));
    }
    if (action == "config") {
      json c = model_config_to_json(m->config);
      c["name"] = m->name;
      c["platform"] = "onnx";
      json inputs = json::array(), outputs = json::array();
      for (const auto& i : m->inputs)
        inputs.push_back(
            {{"name", i.name}, {"data_type", "TYPE_" + datatype_name(i.dtype)}, {"dims", i.dims}});
      for (const auto& o : m->outputs)
        outputs.push_back(
            {{"name", o.name}, {"data_type", "TYPE_" + datatype_name(o.dtype)}, {"dims", o.dims}});
      c["input"] = inputs;
      c["output"] = outputs;
      return respond(json_response(200, c));
    }
    return respond(error_response(404, "unknown endpoint " + request.target.substr(0, 200)));
  }
  if (parts.size() == 3 && parts[0] == "v2" && parts[1] == "repository" && parts[2] == "index") {
    if (!want("POST")) return;
    // Optional body {"ready": true}: only the models that are ready, as Triton allows.
    bool ready_only = false;
    if (!request.body.empty()) {
      json q = json::parse(request.body, nullptr, false);
      check(!q.is_discarded() && q.is_object(),
            "repository index: the body must be a JSON object like {\"ready\": true}");
      if (q.contains("ready")) {
        check(q["ready"].is_boolean(), "repository index: 'ready' must be true or false");
        ready_only = q["ready"].get<bool>();
      }
    }
    json out = json::array();
    for (const auto& s : repository_.index()) {
      if (ready_only && s.state != "READY") continue;
      json e = {{"name", s.name}, {"state", s.state}};
      if (!s.version.empty()) e["version"] = s.version;
      if (!s.reason.empty()) e["reason"] = s.reason;
      out.push_back(e);
    }
    return respond(json_response(200, out));
  }
  if (parts.size() == 5 && parts[0] == "v2" && parts[1] == "repository" && parts[2] == "models" &&
      (parts[4] == "load" || parts[4] == "unload")) {
    if (!want("POST")) return;
    return repository_action(parts[3], parts[4], respond);
  }
  respond(error_response(404, "unknown endpoint " + request.target.substr(0, 200)));
}

void Service::repository_action(const std::string& name, const std::string& action,
                                const Responder& respond) {
  control_->post([this, name, action, respond] {
    try {
      if (action == "load") {
        repository_.load(name);
      } else {
        repository_.unload(name);
      }
      respond(HttpResponse{200, "application/json", "", {}});
    } catch (const NotFound& e) {
      respond(error_response(404, e.what()));
    } catch (const std::exception& e) {
      respond(error_response(
          400, std::string("cannot ") + action + " model '" + name + "': " + e.what()));
    }
  });
}

void Service::infer(const std::string& name, const std::string& version, HttpRequest& request,
                    const Responder& respond) {
  Clock::time_point arrived = Clock::now();
  auto m = repository_.find(name, version);
  auto metrics = m->metrics;
  auto fail_request = [&](int status, const std::string& message) {
    metrics->request_failure.fetch_add(1);
    metrics->failure_duration_ns.fetch_add(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - arrived).count()));
    respond(error_response(status, message));
  };
  if (!request.inference_header_error.empty())
    return fail_request(400, request.inference_header_error);
  auto req = std::make_shared<InferRequest>();
  int64_t batch = 0;
  try {
    *req = parse_infer_request(request.body, request.inference_header_length);
    batch = validate_inputs(*m, *req);
  } catch (const std::exception& e) {
    return fail_request(400, e.what());
  }
  request.body.clear();
  request.body.shrink_to_fit();
  auto job = std::make_unique<InferJob>();
  for (auto& [n, t] : req->inputs) job->inputs.emplace(n, std::move(t));
  req->inputs.clear();
  job->batch = batch;
  job->cancelled = request.cancelled;
  int64_t timeout_us = m->config.default_timeout_us;
  if (req->timeout_us && (*req->timeout_us < timeout_us || timeout_us == 0))
    timeout_us = *req->timeout_us;
  if (timeout_us > 0) job->deadline = arrived + std::chrono::microseconds(timeout_us);
  // The callback holds what the response needs, not the model: an unloaded model's last
  // reference must not be dropped on its own worker thread.
  job->done = [metrics, req, respond, arrived, model = m->name, ver = m->version,
               names = m->output_names](InferResult r) {
    HttpResponse resp;
    if (r.status == 200) {
      try {
        auto enc = encode_infer_response(model, ver, req->id, *names, r.outputs, *req);
        resp.body = std::move(enc.body);
        if (enc.header_length) {
          resp.content_type = "application/octet-stream";
          resp.headers.emplace_back("Inference-Header-Content-Length",
                                    std::to_string(*enc.header_length));
        }
      } catch (const std::exception& e) {
        r.status = 500;
        r.error = std::string("cannot encode the outputs: ") + e.what();
      }
    }
    Clock::duration took = Clock::now() - arrived;
    auto ns =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count());
    metrics->request_latency_seconds.observe(std::chrono::duration<double>(took).count());
    if (r.status == 200) {
      metrics->request_success.fetch_add(1);
      metrics->success_duration_ns.fetch_add(ns);
    } else {
      metrics->request_failure.fetch_add(1);
      metrics->failure_duration_ns.fetch_add(ns);
      resp = error_response(r.status, "model '" + model + "': " + r.error);
    }
    respond(std::move(resp));
  };
  switch (m->scheduler->submit(job)) {
    case Scheduler::Submit::Queued:
    case Scheduler::Submit::RanInline:
      return;
    case Scheduler::Submit::QueueFull:
      metrics->rejected_queue_full.fetch_add(1);
      return fail_request(503, "model '" + m->name + "' has " +
                                   std::to_string(m->config.max_queue_size) +
                                   " requests queued (its max_queue_size); retry later");
    case Scheduler::Submit::ShuttingDown:
      return fail_request(
          503, "model '" + m->name + "' is being unloaded or the server is shutting down");
  }
}

}  // namespace kpt::server
