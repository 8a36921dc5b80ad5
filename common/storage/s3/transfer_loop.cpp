// One thread driving libcurl's multi interface: many HTTP transfers in flight at once, none holding a thread.
#include "common/storage/s3/transfer_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "common/base/error.h"

namespace blobferry {
namespace {

// The longest the loop sleeps: libcurl's own timers (connect and low-speed
// timeouts, the progress callbacks that see a cancellation) come sooner.
constexpr long kMaxWaitMs = 1000;
constexpr int kMaxEvents = 256;

template <typename T>
void multi_option(CURLM* multi, CURLMoption option, T value) {
  if (const CURLMcode code = curl_multi_setopt(multi, option, value); code != CURLM_OK) {
    throw Error(ErrorKind::kPermanent, FailureReason::kInternal,
                std::string("curl_multi_setopt failed: ") + curl_multi_strerror(code));
  }
}

Error system_error(const char* call) {
  return Error(ErrorKind::kPermanent, FailureReason::kInternal, std::string(call) + " failed: " + std::strerror(errno));
}

// A Done that throws would end the loop's thread, and with it the process:
// what it threw is logged and the loop goes on.
void call_done(const TransferLoop::Done& done, CURLcode result) {
  try {
    done(result);
  } catch (const std::exception& e) {
    spdlog::error("a transfer's completion failed: {}", e.what());
  }
}

int socket_action(CURLM* multi, curl_socket_t socket, int events) {
  int running = 0;
  if (const CURLMcode code = curl_multi_socket_action(multi, socket, events, &running); code != CURLM_OK) {
    spdlog::error("curl_multi_socket_action failed: {}", curl_multi_strerror(code));
  }
  return running;
}

}  // namespace

TransferLoop::TransferLoop(TransferLoopOptions options) : options_(options) {
  ensure_curl_initialized();
  epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) throw system_error("epoll_create1");
  wakeup_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wakeup_) throw system_error("eventfd");
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = wakeup_.get();
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wakeup_.get(), &event) != 0) throw system_error("epoll_ctl");

  multi_.reset(curl_multi_init());
  if (!multi_) throw Error(ErrorKind::kPermanent, FailureReason::kInternal, "curl_multi_init failed");
  multi_option(multi_.get(), CURLMOPT_MAX_HOST_CONNECTIONS, options_.max_host_connections);
  // Connections kept open once idle: enough for every host's share.
  multi_option(multi_.get(), CURLMOPT_MAXCONNECTS, options_.max_host_connections * 4);
  multi_option(multi_.get(), CURLMOPT_SOCKETFUNCTION, &TransferLoop::on_socket);
  multi_option(multi_.get(), CURLMOPT_SOCKETDATA, this);
  multi_option(multi_.get(), CURLMOPT_TIMERFUNCTION, &TransferLoop::on_timer);
  multi_option(multi_.get(), CURLMOPT_TIMERDATA, this);
  thread_ = std::thread([this] { run(); });
}

TransferLoop::~TransferLoop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake();
  thread_.join();
}

void TransferLoop::start(CURL* handle, Done done) {
  auto transfer = std::make_unique<Transfer>(Transfer{handle, std::move(done)});
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw Error(ErrorKind::kPermanent, FailureReason::kCancelled, "transfer loop stopped");
    starting_.push_back(transfer.release());
  }
  ++in_flight_;
  // Only a sleeping loop needs the write: one running picks the transfer up
  // before it sleeps again (it looks at starting_ after saying it sleeps).
  if (sleeping_.exchange(false)) wake();
}

void TransferLoop::wake() {
  const std::uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop wakes anyway.
  [[maybe_unused]] const ssize_t written = write(wakeup_.get(), &one, sizeof one);
}

void TransferLoop::drain_wakeups() {
  std::uint64_t count = 0;
  [[maybe_unused]] const ssize_t got = read(wakeup_.get(), &count, sizeof count);
}

int TransferLoop::on_socket(CURL*, curl_socket_t socket, int what, void* user, void*) {
  auto* loop = static_cast<TransferLoop*>(user);
  if (what == CURL_POLL_REMOVE) {
    // The socket may already be closed (then it left the epoll set itself).
    epoll_ctl(loop->epoll_.get(), EPOLL_CTL_DEL, socket, nullptr);
    loop->watched_.erase(socket);
    return 0;
  }
  epoll_event event{};
  event.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
  event.data.fd = socket;
  const bool known = loop->watched_.contains(socket);
  if (epoll_ctl(loop->epoll_.get(), known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, socket, &event) != 0) {
    spdlog::error("epoll_ctl of a transfer's socket failed: {}", std::strerror(errno));
    return -1;
  }
  loop->watched_.insert(socket);
  return 0;
}

int TransferLoop::on_timer(CURLM*, long timeout_ms, void* user) {
  auto* loop = static_cast<TransferLoop*>(user);
  if (timeout_ms < 0) {
    loop->timer_due_.reset();
  } else {
    loop->timer_due_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  }
  return 0;
}

void TransferLoop::run_due_timer() {
  if (timer_due_ && std::chrono::steady_clock::now() >= *timer_due_) {
    timer_due_.reset();  // the action below sets the next one
    socket_action(multi_.get(), CURL_SOCKET_TIMEOUT, 0);
  }
}

long TransferLoop::ms_until_timer() const {
  if (!timer_due_) return kMaxWaitMs;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(*timer_due_ - std::chrono::steady_clock::now());
  return std::clamp<long>(static_cast<long>(left.count()), 0, kMaxWaitMs);
}

void TransferLoop::add_started() {
  std::vector<Transfer*> started;
  {
    std::lock_guard lock(mutex_);
    started.swap(starting_);
  }
  for (Transfer* transfer : started) {
    curl_easy_setopt(transfer->handle, CURLOPT_PRIVATE, transfer);
    if (const CURLMcode code = curl_multi_add_handle(multi_.get(), transfer->handle); code != CURLM_OK) {
      spdlog::error("curl_multi_add_handle failed: {}", curl_multi_strerror(code));
      std::unique_ptr<Transfer> failed(transfer);
      --in_flight_;
      call_done(failed->done, CURLE_FAILED_INIT);
      continue;
    }
    running_.insert(transfer);
  }
}

void TransferLoop::finish_done() {
  int left = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_.get(), &left)) {
    if (message->msg != CURLMSG_DONE) continue;
    CURL* handle = message->easy_handle;
    const CURLcode result = message->data.result;
    char* owner = nullptr;
    curl_easy_getinfo(handle, CURLINFO_PRIVATE, &owner);
    curl_multi_remove_handle(multi_.get(), handle);
    std::unique_ptr<Transfer> transfer(reinterpret_cast<Transfer*>(owner));
    running_.erase(transfer.get());
    --in_flight_;
    call_done(transfer->done, result);  // may start more: they wait in starting_ for the next turn
  }
}

void TransferLoop::run() {
  std::array<epoll_event, kMaxEvents> events{};
  for (;;) {
    add_started();  // adding a handle sets a timer of 0: due now
    run_due_timer();
    finish_done();
    sleeping_.store(true);
    bool more = false;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
      more = !starting_.empty();
    }
    if (more) {
      sleeping_.store(false);
      continue;
    }
    const int ready = epoll_wait(epoll_.get(), events.data(), kMaxEvents, static_cast<int>(ms_until_timer()));
    sleeping_.store(false);
    if (ready < 0 && errno != EINTR) spdlog::error("epoll_wait failed: {}", std::strerror(errno));
    for (int i = 0; i < ready; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wakeup_.get()) {
        drain_wakeups();
        continue;
      }
      const std::uint32_t what = events[i].events;
      const int mask = (what & EPOLLIN ? CURL_CSELECT_IN : 0) | (what & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                       (what & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
      socket_action(multi_.get(), fd, mask);
    }
  }
  sleeping_.store(false);
  abort_all();
}

void TransferLoop::abort_all() {
  // A Done may try to start more: start() refuses now, so this ends.
  add_started();
  std::unordered_set<Transfer*> running;
  running.swap(running_);
  for (Transfer* owned : running) {
    std::unique_ptr<Transfer> transfer(owned);
    curl_multi_remove_handle(multi_.get(), transfer->handle);
    --in_flight_;
    call_done(transfer->done, CURLE_ABORTED_BY_CALLBACK);
  }
}

}  // namespace blobferry
