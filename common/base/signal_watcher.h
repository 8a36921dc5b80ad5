// Turns SIGTERM and SIGINT into a callback on an ordinary thread.
#pragma once

#include <functional>
#include <thread>

namespace blobferry {

// Blocks the signals in every thread started afterwards and waits for them
// with sigwait on its own thread, so the callback may lock and log freely
// (nothing runs in a signal handler). Construct it before starting threads.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::function<void(int)> on_signal);
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  std::thread thread_;
};

}  // namespace blobferry
