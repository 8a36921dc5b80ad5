// An HTTP/1.1 reverse proxy for tests that injects S3's failures between client and upstream.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics/http_listener.h"

namespace blobferry::testing {

// Which failure a request meets; kNone passes it through untouched.
enum class Fault {
  kNone,
  kServerError,       // 500 InternalError with S3's XML, not forwarded
  kSlowDown,          // 503 SlowDown with Retry-After: 1, not forwarded
  kReset,             // connection reset (SO_LINGER 0) before any answer, not forwarded
  kTruncate,          // forwarded; the true Content-Length, half the body, then close
  kFlipResponseByte,  // forwarded; one byte of the response body inverted
  kFlipRequestByte,   // one byte of the request body inverted, then forwarded
  kStall,             // no bytes for stall_duration, then close, not forwarded
  kRateLimited,       // 503 SlowDown past max_requests_per_second, not forwarded
};
const char* to_string(Fault fault);

struct FaultRule {
  double probability = 0.0;
  std::vector<std::string> methods;  // e.g. {"PUT"}; empty means every method
};

// A request as a test's injection hook sees it (header names lowercase).
struct InjectionRequest {
  const std::string& method;
  const std::string& target;  // path and query as sent
  const std::vector<std::pair<std::string, std::string>>& headers;
  const std::string& body;
};

// What a test answers instead of upstream: a provider's quirk the s3rver
// behind the proxy does not have (a redirect, a skewed clock, a lost answer).
struct InjectedAnswer {
  int status = 500;
  std::string headers;  // extra header lines, each ending "\r\n"
  std::string body;     // sent as is (not for HEAD)
  bool forward_first = false;  // pass the request upstream first: it takes effect, its answer is replaced
  bool reset = false;          // then close with a reset instead of answering
};
using Injection = std::function<std::optional<InjectedAnswer>(const InjectionRequest&)>;

struct FaultProxyOptions {
  std::string upstream;  // "http://127.0.0.1:Q"
  FaultRule server_error;
  FaultRule slow_down;
  FaultRule reset;
  FaultRule truncate;
  FaultRule flip_response_byte;  // only on a non-empty response body
  FaultRule flip_request_byte;   // only on a non-empty request body
  FaultRule stall;
  std::uint64_t seed = 1;
  std::chrono::milliseconds stall_duration{3000};
  // s3rver 3.7.1 stores a body whatever its Content-MD5 says, so the proxy
  // checks it as S3 does and answers 400 BadDigest (or InvalidDigest) itself.
  bool check_content_md5 = true;
  int retry_after_seconds = 1;   // the Retry-After of a 503 SlowDown
  bool record_requests = false;  // keep a RequestRecord per request (requests())
  // Asked for every request before any fault; nullopt passes it on. Called
  // on the connection's thread, so it must be thread-safe.
  Injection inject;
  // A provider's request ceiling: a request arriving when this many were let
  // through in the last second (sliding) gets 503 SlowDown; 0: none. Checked
  // before the random faults.
  double max_requests_per_second = 0;
  int rate_limit_retry_after_seconds = 0;  // its Retry-After; 0 sends none
};

// One request as the proxy met it, for tests that look at timing per key.
struct RequestRecord {
  std::chrono::steady_clock::time_point time;  // when its head and body had arrived
  std::string method;
  std::string target;  // path and query as sent
  Fault fault = Fault::kNone;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercase, as received
};

// Seconds from one record's time (or any steady_clock point) to another's,
// for the rate windows the throttling tests measure.
double seconds_between(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to);

struct FaultProxyStats {
  std::uint64_t connections = 0;
  std::uint64_t requests = 0;
  std::uint64_t forwarded = 0;  // requests that reached upstream
  std::uint64_t server_errors = 0;
  std::uint64_t slow_downs = 0;
  std::uint64_t resets = 0;
  std::uint64_t truncations = 0;
  std::uint64_t flipped_response_bytes = 0;
  std::uint64_t flipped_request_bytes = 0;
  std::uint64_t stalls = 0;
  std::uint64_t bad_digests = 0;      // requests refused for a Content-MD5 mismatch
  std::uint64_t upstream_errors = 0;  // 502s: upstream unreachable or its answer unreadable
  std::uint64_t injected = 0;         // requests answered by options.inject
  std::uint64_t rate_limited = 0;     // 503s past max_requests_per_second
  std::uint64_t faults() const {
    return server_errors + slow_downs + resets + truncations + flipped_response_bytes +
           flipped_request_bytes + stalls + rate_limited;
  }
};

// Listens on 127.0.0.1 (a free port) and forwards every request to upstream on
// a fresh connection with Connection: close, buffering the whole request and
// response (test objects are small), so it copes with keep-alive clients,
// Expect: 100-continue (answered by the proxy), and chunked or sized bodies in
// either direction. The Host header is passed on unchanged, so SigV4
// signatures made for the proxy's address still verify upstream.
//
// Per request one uniform draw from a seeded RNG picks at most one fault: the
// rules whose methods match, in the order of Fault, each take a slice of
// [0, 1) as wide as their probability (keep the sum at most 1). A fault that
// needs a body it does not find passes the request through and is not counted.
// With one client connection the sequence of faults is a function of the seed.
class FaultProxy {
 public:
  // Starts listening at once; throws blobferry::Error for an unusable upstream URL.
  explicit FaultProxy(FaultProxyOptions options);
  ~FaultProxy();  // stop()
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  std::string endpoint() const;  // "http://127.0.0.1:P"
  int port() const { return listener_.port(); }
  FaultProxyStats stats() const;
  // Every request so far, in arrival order (empty unless record_requests).
  std::vector<RequestRecord> requests() const;
  // Replaces the slow_down rule from the next request on (a throttle that
  // starts or stops mid-run).
  void set_slow_down(FaultRule rule);

  // Closes the listener and every connection (stalls included) and joins all
  // threads. Idempotent.
  void stop();

  // One buffered exchange; defined and used only in fault_proxy.cpp.
  struct Request;
  struct Response;

 private:
  struct Client;
  struct Counters;

  void accept_loop();
  void reap_finished_clients();
  void serve_client(Client& client);
  // Answers one request, faults included; false when the connection must close.
  bool answer(int fd, Request& request);
  bool forward(const Request& request, Response& response);
  bool send_response(int fd, const Request& request, Response& response, Fault fault);
  Fault choose_fault(const std::string& method, bool has_body);
  std::size_t random_index(std::size_t size);
  void register_fd(int fd);
  void unregister_fd(int fd);
  bool wait_for_stop(std::chrono::milliseconds duration);

  FaultProxyOptions options_;
  std::string upstream_host_;
  std::string upstream_port_;
  HttpListener listener_;
  std::unique_ptr<Counters> counters_;

  mutable std::mutex rng_mutex_;  // guards rng_, options_.slow_down, records_ and admitted_
  std::mt19937_64 rng_;
  std::vector<RequestRecord> records_;
  std::deque<std::chrono::steady_clock::time_point> admitted_;  // let through in the last second

  std::mutex mutex_;  // guards open_fds_, clients_, stopping_ transitions
  std::condition_variable stop_signal_;
  bool stopping_ = false;
  std::set<int> open_fds_;  // client and upstream sockets, shut down by stop()
  std::list<std::unique_ptr<Client>> clients_;

  std::mutex stop_mutex_;
  std::thread accept_thread_;
};

}  // namespace blobferry::testing
