// A thread-safe "stop now" for work in flight: copies, their retries and the storage calls under them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

#include "common/base/error.h"

namespace blobferry {

// One token is shared by the worker loop and every copy it runs. cancel() is
// final. Storage backends do not take it as an argument (the Storage interface
// stays as it is): the thread running a copy makes it current (Scope), and
// backends check current() between chunks (Disk) or from libcurl's progress
// callback (S3), so a transfer blocked on a slow server ends within about a
// second instead of being abandoned.
class CancellationToken {
 public:
  CancellationToken() = default;
  CancellationToken(const CancellationToken&) = delete;
  CancellationToken& operator=(const CancellationToken&) = delete;

  void cancel();
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // Sleeps up to duration; returns true (early) when cancelled.
  bool sleep_for(std::chrono::milliseconds duration) const;

  // Makes a token the calling thread's current one for the scope's lifetime
  // (nullptr: none); scopes nest.
  class Scope {
   public:
    explicit Scope(const CancellationToken* token);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    const CancellationToken* previous_;
  };

  // The calling thread's current token, or nullptr.
  static const CancellationToken* current();
  // True when the calling thread's current token is cancelled.
  static bool current_cancelled();
  // Throws cancelled_error(what) when the calling thread's token is cancelled.
  static void throw_if_current_cancelled(const std::string& what);

 private:
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
};

// kPermanent (no retry can help a copy that was told to stop) with reason
// "cancelled", which the worker loop never records as a failure.
Error cancelled_error(const std::string& what);
bool is_cancellation(const Error& error);

}  // namespace blobferry
