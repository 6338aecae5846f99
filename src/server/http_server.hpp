#pragma once
// The HTTP/1.1 layer: an event-driven server on Boost.Beast/Asio. A small fixed pool of I/O
// threads serves every connection (keep-alive, TCP_NODELAY, a body size limit); handlers
// answer asynchronously through a Responder, from any thread, so that inference never blocks
// an I/O thread. Beast stays inside http_server.cpp: the rest of the server sees these plain
// structs.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kpt::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query
  std::string body;
  std::string authorization;                      // the Authorization header
  std::optional<size_t> inference_header_length;  // Inference-Header-Content-Length
  std::string inference_header_error;             // set when that header is not a number
  // Set by the I/O layer when the client closes the connection while the request is pending.
  std::shared_ptr<std::atomic<bool>> cancelled;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Called exactly once per request, from any thread.
using Responder = std::function<void(HttpResponse)>;
using Handler = std::function<void(HttpRequest, Responder)>;

struct HttpOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;  // 0: any free port (see HttpServer::port)
  int io_threads = 2;
  size_t max_body_bytes = 64u << 20;
  int idle_timeout_s = 120;  // keep-alive connections idle this long are closed
};

class HttpServer {
 public:
  HttpServer(HttpOptions options, Handler handler);
  ~HttpServer();
  // Binds and starts the I/O threads; throws kpt::Error when the address cannot be bound.
  void start();
  uint16_t port() const;
  // Graceful stop: no new connections, idle connections closed, pending requests answered
  // (each connection closes after its response), then the I/O threads end. Waits at most
  // `timeout_s` for pending requests.
  void stop(int timeout_s = 30);

 private:
  friend class Connection;
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace kpt::server
