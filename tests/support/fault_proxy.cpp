// An HTTP/1.1 reverse proxy for tests that injects S3's failures between client and upstream.
#include "tests/support/fault_proxy.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <optional>
#include <string_view>
#include <utility>

#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/base/error.h"

namespace blobferry::testing {

using Headers = std::vector<std::pair<std::string, std::string>>;

// The first line and the headers of a request or response. Outside the
// anonymous namespace: FaultProxy::Request and ::Response hold one.
struct Head {
  std::string start_line;
  Headers headers;
};

namespace {

constexpr std::size_t kMaxHead = 64 * 1024;
constexpr int kUpstreamTimeoutSeconds = 60;

// A blocking socket and the bytes read from it but not consumed yet.
struct Buffered {
  int fd = -1;
  std::string pending;
};

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

std::optional<std::string> header(const Headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (lowercase(key) == name) return value;
  }
  return std::nullopt;
}

// Whether a comma-separated header (Connection, Transfer-Encoding, Expect) lists token.
bool lists(const Headers& headers, std::string_view name, std::string_view token) {
  auto value = header(headers, name);
  if (!value) return false;
  std::string_view rest = *value;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    if (lowercase(trim(rest.substr(0, comma))) == token) return true;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return false;
}

// Headers about one hop, which a proxy must not pass on; framing is redone too.
bool hop_by_hop(const std::string& name) {
  static const std::set<std::string> kNames = {
      "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "expect",
      "transfer-encoding", "content-length"};
  return kNames.count(lowercase(name)) > 0;
}

bool fill(Buffered& in) {
  char buffer[64 * 1024];
  while (true) {
    ssize_t got = ::recv(in.fd, buffer, sizeof buffer, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    in.pending.append(buffer, static_cast<std::size_t>(got));
    return true;
  }
}

// The text before delimiter, consuming both; nullopt on EOF, error or limit.
std::optional<std::string> read_until(Buffered& in, std::string_view delimiter, std::size_t limit) {
  std::size_t searched = 0;
  while (true) {
    auto found = in.pending.find(delimiter, searched);
    if (found != std::string::npos) {
      std::string text = in.pending.substr(0, found);
      in.pending.erase(0, found + delimiter.size());
      return text;
    }
    if (in.pending.size() > limit) return std::nullopt;
    searched = in.pending.size() >= delimiter.size() ? in.pending.size() - delimiter.size() + 1 : 0;
    if (!fill(in)) return std::nullopt;
  }
}

bool read_exact(Buffered& in, std::size_t size, std::string& out) {
  while (in.pending.size() < size) {
    if (!fill(in)) return false;
  }
  out.append(in.pending, 0, size);
  in.pending.erase(0, size);
  return true;
}

void read_to_eof(Buffered& in, std::string& out) {
  while (fill(in)) {
  }
  out += in.pending;
  in.pending.clear();
}

bool read_chunked(Buffered& in, std::string& out) {
  while (true) {
    auto line = read_until(in, "\r\n", kMaxHead);
    if (!line) return false;
    std::string_view size_text = trim(std::string_view(*line).substr(0, line->find(';')));
    std::size_t size = 0;
    auto [end, ec] =
        std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
    if (ec != std::errc{} || end != size_text.data() + size_text.size()) return false;
    if (size == 0) {
      // Trailer fields, if any, end with an empty line; they are dropped.
      while (true) {
        auto trailer = read_until(in, "\r\n", kMaxHead);
        if (!trailer) return false;
        if (trailer->empty()) return true;
      }
    }
    if (!read_exact(in, size, out)) return false;
    auto after = read_until(in, "\r\n", 2);
    if (!after || !after->empty()) return false;
  }
}

std::optional<std::size_t> content_length(const Headers& headers) {
  auto value = header(headers, "content-length");
  if (!value) return std::nullopt;
  std::string_view text = trim(*value);
  std::size_t length = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), length);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return length;
}

std::optional<Head> read_head(Buffered& in) {
  auto text = read_until(in, "\r\n\r\n", kMaxHead);
  if (!text) return std::nullopt;
  Head head;
  std::string_view rest = *text;
  auto line_end = rest.find("\r\n");
  head.start_line = std::string(rest.substr(0, line_end));
  rest = line_end == std::string_view::npos ? std::string_view() : rest.substr(line_end + 2);
  while (!rest.empty()) {
    line_end = rest.find("\r\n");
    std::string_view line = rest.substr(0, line_end);
    rest = line_end == std::string_view::npos ? std::string_view() : rest.substr(line_end + 2);
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    head.headers.emplace_back(std::string(line.substr(0, colon)),
                              std::string(trim(line.substr(colon + 1))));
  }
  return head;
}

// A message body framed by these headers: chunked, sized, or (responses) up to EOF.
bool read_body(Buffered& in, const Headers& headers, bool until_eof_allowed, std::string& out) {
  if (lists(headers, "transfer-encoding", "chunked")) return read_chunked(in, out);
  if (auto length = content_length(headers)) return read_exact(in, *length, out);
  if (until_eof_allowed) read_to_eof(in, out);
  return true;
}

bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

// An error the way S3 words it, so clients parse the Code as they would in production.
std::string s3_error(int status, const char* reason, const char* code, const char* message,
                     const std::string& target, const std::string& extra_headers, bool keep_alive) {
  std::string resource = target.substr(0, target.find('?'));
  std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" +
                     std::string(code) + "</Code><Message>" + message + "</Message><Resource>" +
                     markup_escape(resource) + "</Resource><RequestId>fault-proxy</RequestId></Error>";
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
  out += "Content-Type: application/xml\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += extra_headers;
  if (!keep_alive) out += "Connection: close\r\n";
  return out + "\r\n" + body;
}

// bodiless: HEAD, 204, 304, whose Content-Length describes a body that is not sent.
std::string response_head(const Head& head, bool bodiless, std::size_t body_size, bool keep_alive) {
  std::string out = head.start_line + "\r\n";
  for (const auto& [name, value] : head.headers) {
    if (!hop_by_hop(name)) out += name + ": " + value + "\r\n";
  }
  if (bodiless) {
    // A HEAD answer's Content-Length is the object's size: pass it on as it came.
    if (auto length = header(head.headers, "content-length")) {
      out += "Content-Length: " + *length + "\r\n";
    }
  } else {
    out += "Content-Length: " + std::to_string(body_size) + "\r\n";
  }
  if (!keep_alive) out += "Connection: close\r\n";
  return out + "\r\n";
}

int status_of(const std::string& status_line) {
  auto space = status_line.find(' ');
  if (space == std::string::npos || status_line.rfind("HTTP/", 0) != 0) return 0;
  int status = 0;
  std::from_chars(status_line.data() + space + 1, status_line.data() + status_line.size(), status);
  return status;
}

bool rule_applies(const FaultRule& rule, const std::string& method) {
  if (rule.probability <= 0.0) return false;
  return rule.methods.empty() ||
         std::find(rule.methods.begin(), rule.methods.end(), method) != rule.methods.end();
}

void close_with_reset(int fd) {
  linger abortive{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
}

}  // namespace

const char* to_string(Fault fault) {
  switch (fault) {
    case Fault::kNone: return "none";
    case Fault::kServerError: return "server_error";
    case Fault::kSlowDown: return "slow_down";
    case Fault::kReset: return "reset";
    case Fault::kTruncate: return "truncate";
    case Fault::kFlipResponseByte: return "flip_response_byte";
    case Fault::kFlipRequestByte: return "flip_request_byte";
    case Fault::kStall: return "stall";
    case Fault::kRateLimited: return "rate_limited";
  }
  return "unknown";
}

struct FaultProxy::Counters {
  std::atomic<std::uint64_t> connections{0}, requests{0}, forwarded{0}, server_errors{0},
      slow_downs{0}, resets{0}, truncations{0}, flipped_response_bytes{0}, flipped_request_bytes{0},
      stalls{0}, bad_digests{0}, upstream_errors{0}, injected{0}, rate_limited{0};
};

struct FaultProxy::Client {
  UniqueFd fd;
  std::thread thread;
  std::atomic<bool> done{false};
};

struct FaultProxy::Request {
  Head head;
  std::string method;
  std::string target;
  std::string body;
  bool has_framing = false;  // Content-Length or chunked, even for an empty body
  bool keep_alive = true;
};

struct FaultProxy::Response {
  Head head;
  std::string body;
  bool bodiless = false;
};

namespace {

// Reads the next request on a client connection, answering Expect:
// 100-continue itself. false at EOF or on a request it cannot frame.
bool read_request(Buffered& in, FaultProxy::Request& request) {
  auto head = read_head(in);
  if (!head) return false;
  std::string_view line = head->start_line;
  auto first = line.find(' ');
  auto last = line.rfind(' ');
  if (first == std::string_view::npos || first == last) {
    send_all(in.fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return false;
  }
  request.method = std::string(line.substr(0, first));
  request.target = std::string(line.substr(first + 1, last - first - 1));
  std::string_view version = line.substr(last + 1);
  const Headers& headers = head->headers;
  request.keep_alive = version == "HTTP/1.1" ? !lists(headers, "connection", "close")
                                             : lists(headers, "connection", "keep-alive");
  bool chunked = lists(headers, "transfer-encoding", "chunked");
  request.has_framing = chunked || content_length(headers).has_value();
  bool body_follows = chunked || content_length(headers).value_or(0) > 0;
  if (body_follows && lists(headers, "expect", "100-continue") &&
      !send_all(in.fd, "HTTP/1.1 100 Continue\r\n\r\n")) {
    return false;
  }
  request.head = std::move(*head);
  return read_body(in, request.head.headers, false, request.body);
}

// S3's answer to a body that does not match its Content-MD5, which s3rver never gives.
std::optional<std::string> digest_rejection(const FaultProxy::Request& request) {
  auto claimed = header(request.head.headers, "content-md5");
  if (!claimed) return std::nullopt;
  auto digest = base64_decode(trim(*claimed));
  if (!digest || digest->size() != 16) {
    return s3_error(400, "Bad Request", "InvalidDigest",
                    "The Content-MD5 you specified was invalid.", request.target, "",
                    request.keep_alive);
  }
  if (*digest == md5_of(request.body)) return std::nullopt;
  return s3_error(400, "Bad Request", "BadDigest",
                  "The Content-MD5 you specified did not match what we received.", request.target,
                  "", request.keep_alive);
}

// The request as upstream sees it: one hop, a sized body, a connection used once.
std::string upstream_bytes(const FaultProxy::Request& request) {
  std::string out = request.head.start_line + "\r\n";
  for (const auto& [name, value] : request.head.headers) {
    if (!hop_by_hop(name)) out += name + ": " + value + "\r\n";
  }
  if (request.has_framing || !request.body.empty()) {
    out += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
  }
  out += "Connection: close\r\n\r\n";
  return out + request.body;
}

bool read_response(Buffered& from, const std::string& method, FaultProxy::Response& response) {
  std::optional<Head> head;
  // Upstream's own 1xx answers are interim; the client already had its 100.
  do {
    head = read_head(from);
  } while (head && status_of(head->start_line) / 100 == 1);
  int status = head ? status_of(head->start_line) : 0;
  if (status == 0) return false;
  response.head = std::move(*head);
  response.bodiless = method == "HEAD" || status == 204 || status == 304;
  return response.bodiless || read_body(from, response.head.headers, true, response.body);
}

UniqueFd connect_to(const std::string& host, const std::string& port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) return UniqueFd();
  UniqueFd fd;
  for (addrinfo* candidate = found; candidate != nullptr; candidate = candidate->ai_next) {
    UniqueFd attempt(::socket(candidate->ai_family, candidate->ai_socktype | SOCK_CLOEXEC,
                             candidate->ai_protocol));
    if (attempt && ::connect(attempt.get(), candidate->ai_addr, candidate->ai_addrlen) == 0) {
      fd = std::move(attempt);
      break;
    }
  }
  freeaddrinfo(found);
  if (fd) {
    // An upstream that hangs must not hang the test forever.
    timeval timeout{kUpstreamTimeoutSeconds, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  }
  return fd;
}

constexpr std::string_view kBadGateway =
    "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

}  // namespace

FaultProxy::FaultProxy(FaultProxyOptions options)
    : options_(std::move(options)),
      listener_("127.0.0.1:0", "fault proxy address"),
      counters_(std::make_unique<Counters>()),
      rng_(options_.seed) {
  std::string_view rest = options_.upstream;
  constexpr std::string_view kScheme = "http://";
  std::optional<ListenAddress> address;
  if (rest.rfind(kScheme, 0) == 0) {
    rest.remove_prefix(kScheme.size());
    address = parse_listen_address(rest.substr(0, rest.find('/')));
  }
  if (!address || address->host.empty()) {
    throw config_error("fault proxy upstream '" + options_.upstream +
                       "' is not http://HOST:PORT (TLS is not supported)");
  }
  upstream_host_ = address->host;
  upstream_port_ = address->port;
  accept_thread_ = std::thread([this] { accept_loop(); });
}

FaultProxy::~FaultProxy() { stop(); }

std::string FaultProxy::endpoint() const { return "http://127.0.0.1:" + std::to_string(port()); }

FaultProxyStats FaultProxy::stats() const {
  const Counters& c = *counters_;
  FaultProxyStats stats;
  stats.connections = c.connections;
  stats.requests = c.requests;
  stats.forwarded = c.forwarded;
  stats.server_errors = c.server_errors;
  stats.slow_downs = c.slow_downs;
  stats.resets = c.resets;
  stats.truncations = c.truncations;
  stats.flipped_response_bytes = c.flipped_response_bytes;
  stats.flipped_request_bytes = c.flipped_request_bytes;
  stats.stalls = c.stalls;
  stats.bad_digests = c.bad_digests;
  stats.upstream_errors = c.upstream_errors;
  stats.injected = c.injected;
  stats.rate_limited = c.rate_limited;
  return stats;
}

void FaultProxy::stop() {
  std::lock_guard stop_lock(stop_mutex_);
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    // A thread blocked in recv() on one of these returns at once.
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  stop_signal_.notify_all();
  listener_.wake();
  if (accept_thread_.joinable()) accept_thread_.join();
  listener_.close();
  std::list<std::unique_ptr<Client>> clients;
  {
    std::lock_guard lock(mutex_);
    clients.swap(clients_);
  }
  for (auto& client : clients) {
    if (client->thread.joinable()) client->thread.join();
  }
}

void FaultProxy::accept_loop() {
  while (true) {
    pollfd polled[2] = {{listener_.wake_fd(), POLLIN, 0}, {listener_.fd(), POLLIN, 0}};
    // The timeout only paces the reaping of finished client threads.
    int ready = ::poll(polled, 2, 200);
    if (ready < 0 && errno != EINTR) return;
    if (polled[0].revents != 0) return;
    reap_finished_clients();
    if ((polled[1].revents & POLLIN) == 0) continue;
    UniqueFd fd = listener_.accept_client(false);
    if (!fd) continue;
    counters_->connections++;

    std::lock_guard lock(mutex_);
    if (stopping_) return;
    open_fds_.insert(fd.get());
    clients_.push_back(std::make_unique<Client>());
    Client& client = *clients_.back();
    client.fd = std::move(fd);
    client.thread = std::thread([this, &client] {
      serve_client(client);
      unregister_fd(client.fd.get());
      client.fd.reset();
      client.done = true;
    });
  }
}

void FaultProxy::reap_finished_clients() {
  std::list<std::unique_ptr<Client>> finished;
  {
    std::lock_guard lock(mutex_);
    for (auto it = clients_.begin(); it != clients_.end();) {
      auto next = std::next(it);
      if ((*it)->done) finished.splice(finished.end(), clients_, it);
      it = next;
    }
  }
  for (auto& client : finished) client->thread.join();
}

void FaultProxy::register_fd(int fd) {
  std::lock_guard lock(mutex_);
  if (stopping_) ::shutdown(fd, SHUT_RDWR);
  open_fds_.insert(fd);
}

void FaultProxy::unregister_fd(int fd) {
  std::lock_guard lock(mutex_);
  open_fds_.erase(fd);
}

bool FaultProxy::wait_for_stop(std::chrono::milliseconds duration) {
  std::unique_lock lock(mutex_);
  return stop_signal_.wait_for(lock, duration, [this] { return stopping_; });
}

Fault FaultProxy::choose_fault(const std::string& method, bool has_body) {
  std::uint64_t bits;
  FaultRule slow_down;
  {
    std::lock_guard lock(rng_mutex_);
    if (options_.max_requests_per_second > 0) {
      const auto now = std::chrono::steady_clock::now();
      while (!admitted_.empty() && now - admitted_.front() >= std::chrono::seconds(1)) admitted_.pop_front();
      if (static_cast<double>(admitted_.size()) >= options_.max_requests_per_second) return Fault::kRateLimited;
      admitted_.push_back(now);
    }
    bits = rng_();
    slow_down = options_.slow_down;
  }
  // 53 random bits as a double in [0, 1), the same on every platform for a seed.
  double draw = static_cast<double>(bits >> 11) * 0x1.0p-53;
  const std::pair<Fault, const FaultRule*> rules[] = {
      {Fault::kServerError, &options_.server_error},
      {Fault::kSlowDown, &slow_down},
      {Fault::kReset, &options_.reset},
      {Fault::kTruncate, &options_.truncate},
      {Fault::kFlipResponseByte, &options_.flip_response_byte},
      {Fault::kFlipRequestByte, &options_.flip_request_byte},
      {Fault::kStall, &options_.stall},
  };
  double edge = 0.0;
  for (const auto& [fault, rule] : rules) {
    if (!rule_applies(*rule, method)) continue;
    edge += rule->probability;
    if (draw < edge) return fault == Fault::kFlipRequestByte && !has_body ? Fault::kNone : fault;
  }
  return Fault::kNone;
}

std::size_t FaultProxy::random_index(std::size_t size) {
  std::lock_guard lock(rng_mutex_);
  return static_cast<std::size_t>(rng_() % size);
}

void FaultProxy::serve_client(Client& client) {
  Buffered in{client.fd.get(), {}};
  while (true) {
    Request request;
    if (!read_request(in, request)) return;
    counters_->requests++;
    if (!answer(in.fd, request)) return;
  }
}

std::vector<RequestRecord> FaultProxy::requests() const {
  std::lock_guard lock(rng_mutex_);
  return records_;
}

void FaultProxy::set_slow_down(FaultRule rule) {
  std::lock_guard lock(rng_mutex_);
  options_.slow_down = std::move(rule);
}

bool FaultProxy::answer(int fd, Request& request) {
  Headers lowercase_headers;
  for (const auto& [name, value] : request.head.headers) lowercase_headers.emplace_back(lowercase(name), value);
  std::optional<InjectedAnswer> injected;
  if (options_.inject) {
    injected = options_.inject(InjectionRequest{request.method, request.target, lowercase_headers, request.body});
  }
  Fault fault = injected ? Fault::kNone : choose_fault(request.method, !request.body.empty());
  if (options_.record_requests) {
    std::lock_guard lock(rng_mutex_);
    records_.push_back({std::chrono::steady_clock::now(), request.method, request.target, fault, lowercase_headers});
  }
  if (injected) {
    counters_->injected++;
    if (injected->forward_first) {
      Response ignored;
      if (!forward(request, ignored)) counters_->upstream_errors++;
    }
    if (injected->reset) {
      close_with_reset(fd);
      return false;
    }
    const bool head = request.method == "HEAD";
    std::string out = "HTTP/1.1 " + std::to_string(injected->status) + " Injected\r\n";
    out += "Content-Length: " + std::to_string(head ? 0 : injected->body.size()) + "\r\n";
    out += injected->headers;
    if (!request.keep_alive) out += "Connection: close\r\n";
    out += "\r\n";
    if (!head) out += injected->body;
    return send_all(fd, out) && request.keep_alive;
  }
  switch (fault) {
    case Fault::kServerError:
      counters_->server_errors++;
      return send_all(fd, s3_error(500, "Internal Server Error", "InternalError",
                                   "We encountered an internal error. Please try again.",
                                   request.target, "", request.keep_alive)) &&
             request.keep_alive;
    case Fault::kSlowDown:
      counters_->slow_downs++;
      return send_all(fd, s3_error(503, "Slow Down", "SlowDown", "Please reduce your request rate.",
                                   request.target,
                                   "Retry-After: " + std::to_string(options_.retry_after_seconds) + "\r\n",
                                   request.keep_alive)) &&
             request.keep_alive;
    case Fault::kRateLimited:
      counters_->rate_limited++;
      return send_all(fd, s3_error(503, "Slow Down", "SlowDown", "Please reduce your request rate.",
                                   request.target,
                                   options_.rate_limit_retry_after_seconds > 0
                                       ? "Retry-After: " + std::to_string(options_.rate_limit_retry_after_seconds) + "\r\n"
                                       : std::string(),
                                   request.keep_alive)) &&
             request.keep_alive;
    case Fault::kReset:
      counters_->resets++;
      close_with_reset(fd);
      return false;
    case Fault::kStall:
      counters_->stalls++;
      wait_for_stop(options_.stall_duration);
      return false;
    case Fault::kFlipRequestByte:
      counters_->flipped_request_bytes++;
      request.body[random_index(request.body.size())] ^= static_cast<char>(0xFF);
      break;
    default: break;
  }

  if (options_.check_content_md5) {
    if (auto rejection = digest_rejection(request)) {
      counters_->bad_digests++;
      return send_all(fd, *rejection) && request.keep_alive;
    }
  }
  Response response;
  if (!forward(request, response)) {
    counters_->upstream_errors++;
    send_all(fd, kBadGateway);
    return false;
  }
  return send_response(fd, request, response, fault);
}

bool FaultProxy::forward(const Request& request, Response& response) {
  UniqueFd upstream = connect_to(upstream_host_, upstream_port_);
  if (!upstream) return false;
  register_fd(upstream.get());
  counters_->forwarded++;
  Buffered from{upstream.get(), {}};
  bool ok = send_all(upstream.get(), upstream_bytes(request)) &&
            read_response(from, request.method, response);
  unregister_fd(upstream.get());
  return ok;
}

bool FaultProxy::send_response(int fd, const Request& request, Response& response, Fault fault) {
  std::string& body = response.body;
  if (fault == Fault::kTruncate && !body.empty()) {
    counters_->truncations++;
    // The true Content-Length, then half of it: the client must notice the short body.
    send_all(fd, response_head(response.head, false, body.size(), false));
    send_all(fd, std::string_view(body).substr(0, body.size() / 2));
    return false;
  }
  if (fault == Fault::kFlipResponseByte && !body.empty()) {
    counters_->flipped_response_bytes++;
    body[random_index(body.size())] ^= static_cast<char>(0xFF);
  }
  std::string bytes =
      response_head(response.head, response.bodiless, body.size(), request.keep_alive);
  if (!response.bodiless) bytes += body;
  return send_all(fd, bytes) && request.keep_alive;
}

double seconds_between(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace blobferry::testing
