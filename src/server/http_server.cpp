#include "server/http_server.hpp"

#include <sys/socket.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <list>
#include <mutex>
#include <thread>

#include "kpt/error.hpp"
#include "server/protocol.hpp"

namespace kpt::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class Connection;

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  HttpOptions options;
  Handler handler;
  // One io_context per I/O thread, each connection on one of them: a connection's handlers
  // then never run concurrently (no strand needed), and no thread wakes another to hand over
  // ready sockets, as threads sharing one io_context do on every event.
  std::vector<std::unique_ptr<net::io_context>> contexts;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  size_t next_context = 0;  // round robin; touched only by the accepting thread
  std::unique_ptr<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::atomic<bool> draining{false};
  std::atomic<int> live_connections{0};
  std::mutex conn_mutex;
  std::list<std::weak_ptr<Connection>> connections;
  uint16_t bound_port = 0;

  void do_accept();
  void close_idle_connections();
  int open_connections();
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, std::shared_ptr<HttpServer::Impl> server)
      : stream_(std::move(socket)), server_(std::move(server)) {
    server_->live_connections.fetch_add(1);
  }
  ~Connection() { server_->live_connections.fetch_sub(1); }

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); });
  }

  // Runs on the connection's I/O thread: closes the connection unless a request is pending
  // (that one closes after its response).
  // A request whose first bytes have arrived counts as pending too: the client sent it
  // before the drain began, so it is served (and then the connection closes).
  void close_if_idle() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->busy_ || self->closed_) return;
      if (self->parser_ && self->parser_->got_some()) return;
      char byte;
      if (self->stream_.socket().is_open() &&
          ::recv(self->stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
        return;
      self->close();
    });
  }

  bool is_closed() const { return closed_; }

 private:
  void do_read() {
    if (server_->draining) return close();
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    stream_.expires_after(std::chrono::seconds(server_->options.idle_timeout_s));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Connection::on_header, shared_from_this()));
  }

  // Clients that send "Expect: 100-continue" (curl for large bodies) wait for an interim
  // 100 before sending the body; without it each such request stalls for a second.
  void on_header(beast::error_code ec, size_t) {
    if (ec) return on_read(ec, 0);
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      http::async_write(stream_, *cont,
                        [self = shared_from_this(), cont](beast::error_code wec, size_t) {
                          if (wec) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Connection::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec == http::error::body_limit) {
      return send_error(413,
                        "request body exceeds the limit of " +
                            std::to_string(server_->options.max_body_bytes) + " bytes",
                        true);
    }
    const auto& http_errors = beast::error_code(http::error::end_of_stream).category();
    if (ec && ec.category() == http_errors && ec != http::error::end_of_stream &&
        ec != http::error::partial_message) {
      return send_error(400, std::string("malformed HTTP request: ") + ec.message(), true);
    }
    if (ec) return close();  // end of stream, timeout, reset
    auto req = parser_->release();
    stream_.expires_never();
    busy_ = true;
    keep_alive_ = req.keep_alive();
    http_10_ = req.version() == 10;
    head_request_ = req.method() == http::verb::head;
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.authorization = std::string(req[http::field::authorization]);
    auto ihcl = req["Inference-Header-Content-Length"];
    if (!ihcl.empty()) {
      try {
        size_t pos = 0;
        std::string s(ihcl);
        r.inference_header_length = std::stoull(s, &pos);
        if (pos != s.size()) throw std::invalid_argument("trailing characters");
      } catch (const std::exception&) {
        r.inference_header_error = "Inference-Header-Content-Length '" +
                                   std::string(ihcl.substr(0, 40)) + "' is not a byte count";
      }
    }
    r.body = std::move(req.body());
    cancelled_ = std::make_shared<std::atomic<bool>>(false);
    r.cancelled = cancelled_;
    responded_ = false;
    auto self = shared_from_this();
    // dispatch: a handler that answers at once (inline inference, errors) writes right here on
    // the connection's thread; an answer from a worker thread is posted to it.
    server_->handler(std::move(r), [self](HttpResponse resp) {
      net::dispatch(self->stream_.get_executor(), [self, resp = std::move(resp)]() mutable {
        self->write(std::move(resp), false);
      });
    });
    // Only a request still pending needs its client watched (an epoll registration per request).
    if (!responded_) watch_for_disconnect();
  }

  // While a request is pending the client sends nothing more (no pipelining from the
  // clients we serve), so a zero-byte peek on a readable socket means it closed the
  // connection. Readiness can be stale (an edge from bytes the last read already took), so a
  // peek that would block re-arms the watch instead.
  void watch_for_disconnect() {
    watching_ = true;
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(),
                                                         flag = cancelled_](beast::error_code ec) {
      if (ec || !self->busy_ || flag != self->cancelled_) return;
      char byte;
      ssize_t n = ::recv(self->stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        flag->store(true);
      } else if (n < 0) {
        self->watch_for_disconnect();
      }
    });
  }

  void send_error(int status, const std::string& message, bool close_after) {
    busy_ = true;
    drain_before_close_ = close_after;
    HttpResponse resp;
    resp.status = status;
    resp.body = error_body(message);
    write(std::move(resp), close_after);
  }

  // The response head is written by hand into a buffer the connection keeps, and sent with
  // the body in one gather write: Beast's response object would allocate its header fields on
  // every request.
  void write(HttpResponse resp, bool close_after) {
    responded_ = true;
    close_after_ = close_after || !keep_alive_ || server_->draining;
    head_.clear();
    head_ += "HTTP/1.1 ";
    head_ += std::to_string(resp.status);
    head_ += ' ';
    auto reason = http::obsolete_reason(static_cast<http::status>(resp.status));
    head_.append(reason.data(), reason.size());
    head_ += "\r\nServer: kpt\r\nContent-Type: ";
    head_ += resp.content_type;
    head_ += "\r\n";
    for (const auto& [k, v] : resp.headers) {
      head_ += k;
      head_ += ": ";
      head_ += v;
      head_ += "\r\n";
    }
    head_ += "Content-Length: ";
    head_ += std::to_string(resp.body.size());
    // HTTP/1.1 keeps connections open unless told; an HTTP/1.0 client asked for keep-alive.
    if (close_after_) {
      head_ += "\r\nConnection: close";
    } else if (http_10_) {
      head_ += "\r\nConnection: keep-alive";
    }
    head_ += "\r\n\r\n";
    body_ = std::move(resp.body);
    stream_.expires_after(std::chrono::seconds(30));  // a client that never reads cannot hold us
    // A HEAD answer has the headers of the GET answer and no body.
    std::array<net::const_buffer, 2> buffers{
        net::buffer(head_), head_request_ ? net::const_buffer() : net::buffer(body_)};
    net::async_write(stream_, buffers,
                     beast::bind_front_handler(&Connection::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    busy_ = false;
    if (!ec && drain_before_close_) return drain_then_close();
    if (ec || close_after_) return close();
    if (watching_) {
      beast::error_code ignored;
      stream_.socket().cancel(ignored);  // ends the disconnect watch before the next read
      watching_ = false;
    }
    // Bodies can be large: keep the capacity of an ordinary one only.
    if (body_.capacity() > (64u << 10)) std::string().swap(body_);
    do_read();
  }

  // After an error answered before the request was read whole (a body over the limit, bad
  // HTTP), closing at once would reset the connection while the client is still sending, and
  // it would see a broken pipe instead of the answer. So the sending side closes first and
  // what the client still sends is read and dropped, for at most 2 s and 64 MiB.
  void drain_then_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(2));
    drain_left_ = 64u << 20;
    drain_some();
  }

  void drain_some() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(64u << 10),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec || n >= self->drain_left_) return self->close();
                              self->drain_left_ -= n;
                              self->drain_some();
                            });
  }

  void close() {
    closed_ = true;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string head_, body_;  // the response being written
  std::shared_ptr<HttpServer::Impl> server_;
  std::shared_ptr<std::atomic<bool>> cancelled_;
  bool busy_ = false, keep_alive_ = true, close_after_ = false, http_10_ = false,
       head_request_ = false;
  bool responded_ = false, watching_ = false, drain_before_close_ = false;
  size_t drain_left_ = 0;
  // Read by the draining thread: a closed connection has nothing left in flight even while a
  // cancelled handler still holds the object.
  std::atomic<bool> closed_{false};
};

void HttpServer::Impl::do_accept() {
  net::io_context& target = *contexts[next_context++ % contexts.size()];
  acceptor->async_accept(target, [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || draining) return;
      // Out of file descriptors and the like: retry after a pause rather than go deaf or
      // spin on an error that repeats until connections close.
      auto timer = std::make_shared<net::steady_timer>(*contexts[0], std::chrono::milliseconds(50));
      timer->async_wait([self = shared_from_this(), timer](beast::error_code) {
        if (!self->draining) self->do_accept();
      });
      return;
    }
    socket.set_option(tcp::no_delay(true), ec);  // no Nagle: small responses go out at once
    auto conn = std::make_shared<Connection>(std::move(socket), shared_from_this());
    {
      std::lock_guard lock(conn_mutex);
      // Forget connections that have ended, so the list stays as long as the live ones.
      for (auto it = connections.begin(); it != connections.end();)
        it = it->expired() ? connections.erase(it) : std::next(it);
      connections.push_back(conn);
    }
    conn->start();
    do_accept();
  });
}

void HttpServer::Impl::close_idle_connections() {
  std::lock_guard lock(conn_mutex);
  for (auto& w : connections)
    if (auto c = w.lock()) c->close_if_idle();
}

int HttpServer::Impl::open_connections() {
  std::lock_guard lock(conn_mutex);
  int n = 0;
  for (auto& w : connections)
    if (auto c = w.lock(); c && !c->is_closed()) ++n;
  return n;
}

HttpServer::HttpServer(HttpOptions options, Handler handler) : impl_(std::make_shared<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
}

HttpServer::~HttpServer() {
  stop(0);
}

void HttpServer::start() {
  beast::error_code ec;
  auto address = net::ip::make_address(impl_->options.host, ec);
  check(!ec, "--host '" + impl_->options.host + "' is not an IP address (" + ec.message() + ")");
  tcp::endpoint endpoint{address, impl_->options.port};
  int n = std::max(1, impl_->options.io_threads);
  for (int i = 0; i < n; ++i) {
    impl_->contexts.push_back(std::make_unique<net::io_context>(1));
    impl_->keep_running.push_back(net::make_work_guard(*impl_->contexts.back()));
  }
  impl_->acceptor = std::make_unique<tcp::acceptor>(*impl_->contexts[0]);
  auto& acceptor = *impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  check(!ec, "cannot listen on " + impl_->options.host + ":" + std::to_string(impl_->options.port) +
                 ": " + ec.message());
  impl_->bound_port = acceptor.local_endpoint().port();
  impl_->do_accept();
  for (int i = 0; i < n; ++i)
    impl_->threads.emplace_back(
        [impl = impl_, i] { impl->contexts[static_cast<size_t>(i)]->run(); });
}

uint16_t HttpServer::port() const {
  return impl_->bound_port;
}

void HttpServer::stop(int timeout_s) {
  if (impl_->threads.empty()) return;
  impl_->draining = true;
  net::post(*impl_->contexts[0], [impl = impl_] {
    beast::error_code ignored;
    impl->acceptor->close(ignored);
  });
  impl_->close_idle_connections();
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (impl_->open_connections() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    // A connection that was mid-read when the drain began goes idle later.
    impl_->close_idle_connections();
  }
  if (int left = impl_->open_connections(); left > 0)
    std::fprintf(stderr, "kpt serve: %d connection(s) still open after %d s, closing them\n", left,
                 timeout_s);
  for (auto& c : impl_->contexts) c->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

}  // namespace kpt::server
