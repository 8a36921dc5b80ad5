// A thread-safe "stop now" for work in flight: copies, their retries and the storage calls under them.
#include "common/base/cancellation.h"

namespace blobferry {
namespace {

thread_local const CancellationToken* current_token = nullptr;

}  // namespace

void CancellationToken::cancel() {
  {
    std::lock_guard lock(mutex_);
    cancelled_.store(true, std::memory_order_release);
  }
  changed_.notify_all();
}

bool CancellationToken::sleep_for(std::chrono::milliseconds duration) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, duration, [this] { return cancelled(); });
}

CancellationToken::Scope::Scope(const CancellationToken* token) : previous_(current_token) {
  current_token = token;
}

CancellationToken::Scope::~Scope() { current_token = previous_; }

const CancellationToken* CancellationToken::current() { return current_token; }

bool CancellationToken::current_cancelled() { return current_token && current_token->cancelled(); }

void CancellationToken::throw_if_current_cancelled(const std::string& what) {
  if (current_cancelled()) throw cancelled_error(what);
}

Error cancelled_error(const std::string& what) {
  return Error(ErrorKind::kPermanent, FailureReason::kCancelled, what + ": cancelled (the worker is stopping)");
}

bool is_cancellation(const Error& error) { return error.failure_reason() == FailureReason::kCancelled; }

}  // namespace blobferry
