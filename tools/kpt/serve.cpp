// kpt serve: the KServe v2 / Triton-compatible HTTP inference server (see docs/SERVER.md).
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "kpt/error.hpp"
#include "server/http_server.hpp"
#include "server/metrics.hpp"
#include "server/repository.hpp"
#include "server/service.hpp"
#include "tools/kpt/commands.hpp"

namespace kpt::cli {

namespace {

int g_signal_pipe = -1;

void on_signal(int sig) {
  // Only async-signal-safe calls here; the serving thread does the rest.
  ssize_t ignored = write(g_signal_pipe, &sig, sizeof sig);
  (void)ignored;
}

struct Args {
  std::string model;
  std::string repository;
  std::string name;
  std::string host = "127.0.0.1";
  int port = 8000;
  int http_threads = 2;
  size_t max_body_mb = 64;
  std::string auth_token_file;
  server::ModelConfig defaults;
  int64_t request_timeout_ms = 0;
  int drain_timeout_s = 30;
};

void serve(const Args& a) {
  namespace fs = std::filesystem;
  check(a.model.empty() != a.repository.empty(),
        "give either MODEL or --model-repository DIR (exactly one)");
  server::RepositoryOptions ro;
  ro.defaults = a.defaults;
  ro.defaults.default_timeout_us = a.request_timeout_ms * 1000;
  if (a.defaults.max_batch_size > 0 &&
      (a.defaults.max_queue_delay_us > 0 || !a.defaults.preferred_batch_sizes.empty()))
    ro.defaults.dynamic_batching = true;
  if (!a.model.empty()) {
    check(fs::is_regular_file(a.model), "model file '" + a.model + "' does not exist");
    ro.model_path = a.model;
    std::string name = a.name;
    if (name.empty()) {
      // DIR/model.onnx is named after DIR, other files after their stem.
      fs::path p = fs::absolute(a.model);
      name = p.stem() == "model" ? p.parent_path().filename().string() : p.stem().string();
    }
    server::validate_model_name(name);
    ro.model_name = name;
  } else {
    check(fs::is_directory(a.repository),
          "model repository '" + a.repository + "' is not a directory");
    ro.repository_dir = a.repository;
  }
  server::ServiceOptions so;
  if (!a.auth_token_file.empty()) {
    std::ifstream f(a.auth_token_file);
    check(f.good(), "cannot read --auth-token-file '" + a.auth_token_file + "'");
    std::getline(f, so.auth_token);
    check(!so.auth_token.empty(),
          "--auth-token-file '" + a.auth_token_file + "' holds no token on its first line");
  } else if (const char* env = std::getenv("KPT_SERVER_TOKEN"); env && *env) {
    so.auth_token = env;
  }

  // SIGTERM and SIGINT only write to a pipe that this thread reads once serving: a handler
  // rather than sigwait, because threads started before this point (OpenMP, oneDNN) do not
  // have the signals blocked and sigwait would then lose them to the default action.
  int fds[2];
  check(pipe(fds) == 0, "cannot create the signal pipe");
  g_signal_pipe = fds[1];
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  // A client that disconnects mid-write must not kill the server.
  signal(SIGPIPE, SIG_IGN);

  server::Metrics metrics;
  server::Repository repository(ro, metrics);
  repository.load_all();
  server::Service service(so, repository, metrics);
  server::HttpOptions ho;
  ho.host = a.host;
  ho.port = static_cast<uint16_t>(a.port);
  ho.io_threads = a.http_threads;
  ho.max_body_bytes = a.max_body_mb << 20;
  server::HttpServer http(ho, [&service](server::HttpRequest r, server::Responder respond) {
    service.handle(std::move(r), std::move(respond));
  });
  http.start();
  std::cerr << "kpt serve: listening on http://" << a.host << ":" << http.port()
            << (so.auth_token.empty() ? "" : " (bearer token required)") << std::endl;
  int sig = 0;
  while (read(fds[0], &sig, sizeof sig) < 0 && errno == EINTR) {
  }
  std::cerr << "kpt serve: " << (sig == SIGTERM ? "SIGTERM" : "SIGINT")
            << ": finishing in-flight requests" << std::endl;
  service.set_draining();
  http.stop(a.drain_timeout_s);
  repository.shutdown_all();
  std::cerr << "kpt serve: stopped" << std::endl;
}

}  // namespace

void add_serve(CLI::App& app) {
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "serve", "serve models over HTTP (KServe v2 / Triton protocol, Prometheus /metrics)");
  cmd->add_option("model", a->model, "an ONNX model file to serve");
  cmd->add_option("--model-repository", a->repository,
                  "serve DIR/NAME/VERSION/model.onnx or model.kpt (config: DIR/NAME/config.pbtxt "
                  "and/or config.json)");
  cmd->add_option("--model-name", a->name,
                  "name of the MODEL (default: its folder for model.onnx, else its file stem)");
  cmd->add_option("--host", a->host, "address to listen on")->capture_default_str();
  cmd->add_option("--http-port", a->port, "port (0: any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--http-threads", a->http_threads, "I/O threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--max-body-mb", a->max_body_mb, "largest request body in MiB (larger: 413)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--auth-token-file", a->auth_token_file,
                  "require 'Authorization: Bearer TOKEN' with the token on this file's first line "
                  "(or set KPT_SERVER_TOKEN)");
  cmd->add_option("--max-batch-size", a->defaults.max_batch_size,
                  "largest batch (dim 0); 0: no batching")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--batch-delay-us", a->defaults.max_queue_delay_us,
                  "dynamic batching: longest wait for more requests")
      ->capture_default_str()
      ->check(CLI::Range(0, 10000000));
  cmd->add_option("--preferred-batch-size", a->defaults.preferred_batch_sizes,
                  "dynamic batching: sizes that run at once");
  cmd->add_flag("--dynamic-batching", a->defaults.dynamic_batching,
                "batch queued requests (needs --max-batch-size)");
  cmd->add_option("--instances", a->defaults.instance_count,
                  "model instances (worker threads, each its own session)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--threads-per-instance", a->defaults.threads_per_instance,
                  "compute threads per instance (0: cores / instances)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--max-queue", a->defaults.max_queue_size,
                  "queued requests per model beyond which requests get 503")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--request-timeout-ms", a->request_timeout_ms,
                  "answer 503 to requests queued longer (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(0, 3600000));
  cmd->add_option("--drain-timeout-s", a->drain_timeout_s,
                  "on SIGTERM, wait at most this long for in-flight requests")
      ->capture_default_str()
      ->check(CLI::Range(0, 3600));
  cmd->callback([a] {
    check(!a->defaults.dynamic_batching || a->defaults.max_batch_size > 0,
          "--dynamic-batching needs --max-batch-size N");
    serve(*a);
  });
}

}  // namespace kpt::cli
