#pragma once
// The KServe v2 / Triton HTTP endpoints: routes requests to the repository, the schedulers and
// the metrics, checks auth, and turns every error into the protocol's {"error": ...} body with
// the matching HTTP status.
#include <atomic>
#include <memory>
#include <string>

#include "server/http_server.hpp"
#include "server/metrics.hpp"
#include "server/repository.hpp"

namespace kpt::server {

struct ServiceOptions {
  std::string auth_token;  // when set, every endpoint but /v2/health/* needs "Bearer TOKEN"
};

class Service {
 public:
  Service(ServiceOptions options, Repository& repository, Metrics& metrics);
  ~Service();
  void handle(HttpRequest request, Responder respond);
  // Readiness turns false when the server starts to drain.
  void set_draining() { draining_ = true; }

 private:
  void route(HttpRequest& request, const Responder& respond);
  void infer(const std::string& name, const std::string& version, HttpRequest& request,
             const Responder& respond);
  void repository_action(const std::string& name, const std::string& action,
                         const Responder& respond);
  bool authorized(const HttpRequest& request) const;

  ServiceOptions options_;
  Repository& repository_;
  Metrics& metrics_;
  std::atomic<bool> draining_{false};
  // Loading a model can take seconds: it runs here, off the I/O threads.
  struct ControlThread;
  std::unique_ptr<ControlThread> control_;
};

}  // namespace kpt::server
