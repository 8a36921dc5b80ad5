// One thread driving libcurl's multi interface: many HTTP transfers in flight at once, none holding a thread.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <unordered_set>
#include <vector>

#include <curl/curl.h>

#include "common/base/unique_fd.h"
#include "common/storage/s3/curl_handle_pool.h"
#include "common/storage/s3/curl_handles.h"

namespace blobferry {

struct TransferLoopOptions {
  // Connections the loop keeps open to one host at most; transfers beyond
  // wait for one of them (libcurl queues them) rather than open more. Far
  // away providers need many (a request waits tens of ms); on loopback fewer
  // cost less CPU, as libcurl looks through a host's connections for a free
  // one on every request (16 instead of 64: ~15 % less per object against
  // nginx here).
  long max_host_connections = 64;
  // Idle easy handles kept for reuse (each keeps its buffers, not a connection).
  std::size_t max_idle_handles = 512;
};

// Thread-safe. A blocking transfer (curl_easy_perform) parks a thread per
// request in poll(); here one thread waits for all of them in one epoll and
// hands libcurl only the sockets that are ready (curl_multi_socket_action),
// so the cost of a wake-up does not grow with the transfers in flight. That
// is what lets a worker keep hundreds of small copies going on a few
// threads. The multi handle pools the connections of its transfers, so they
// are reused per endpoint.
class TransferLoop {
 public:
  // Runs on the loop's thread when a transfer ends, with libcurl's result
  // (CURLE_OK even for an HTTP error: the caller reads the status). It must
  // not block: every other transfer waits while it runs. It may start more.
  using Done = std::function<void(CURLcode result)>;

  explicit TransferLoop(TransferLoopOptions options = {});
  // Transfers still in flight end with CURLE_ABORTED_BY_CALLBACK, their Done
  // called on the loop's thread before it is joined.
  ~TransferLoop();
  TransferLoop(const TransferLoop&) = delete;
  TransferLoop& operator=(const TransferLoop&) = delete;

  // A configured easy handle to run; it must stay alive until `done` ran.
  // Throws Error when the loop has stopped.
  void start(CURL* handle, Done done);

  // Easy handles for transfers of this loop: reused, reset on return.
  CurlEasyPtr take_handle() { return handles_.take(); }
  void give_back(CurlEasyPtr handle) { handles_.give_back(std::move(handle)); }

  // Transfers started and not yet done.
  std::size_t in_flight() const { return in_flight_.load(); }

 private:
  struct Transfer {
    CURL* handle;
    Done done;
  };

  void run();
  void add_started();
  void finish_done();
  void abort_all();
  void wake();
  void drain_wakeups();
  // libcurl's CURLMOPT_SOCKETFUNCTION and CURLMOPT_TIMERFUNCTION.
  static int on_socket(CURL* handle, curl_socket_t socket, int what, void* user, void* socket_user);
  static int on_timer(CURLM* multi, long timeout_ms, void* user);

  TransferLoopOptions options_;
  CurlMultiPtr multi_;
  UniqueFd epoll_;
  UniqueFd wakeup_;  // an eventfd: start() and the destructor interrupt epoll_wait with it
  CurlHandlePool handles_{options_.max_idle_handles};
  std::mutex mutex_;  // guards starting_ and stopping_
  std::vector<Transfer*> starting_;  // started by any thread, added to the multi handle by the loop
  bool stopping_ = false;
  std::atomic<bool> sleeping_{false};  // in epoll_wait, or about to be: start() must wake it
  std::atomic<std::size_t> in_flight_{0};
  // The loop's thread only:
  std::unordered_set<Transfer*> running_;  // in the multi handle
  std::unordered_set<curl_socket_t> watched_;  // sockets registered with epoll
  // When libcurl next wants CURL_SOCKET_TIMEOUT (on_timer); nullopt: never.
  std::optional<std::chrono::steady_clock::time_point> timer_due_;
  // Runs libcurl's timeout when it is due.
  void run_due_timer();
  long ms_until_timer() const;
  std::thread thread_;
};

}  // namespace blobferry
