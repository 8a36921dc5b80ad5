// A child process for tests: spawned with its own arguments and environment, output kept in files.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace blobferry::testing {

// How a child ended: an exit code or the signal that killed it.
struct ChildExit {
  bool exited = false;  // true: exit_code is set; false: killed by term_signal
  int exit_code = -1;
  int term_signal = 0;

  bool success() const { return exited && exit_code == 0; }
  std::string describe() const;  // "exit 0", "signal 9 (Killed)"
};

struct ChildOptions {
  // Variables to set (value) or remove (nullopt) on top of this process's environment.
  std::map<std::string, std::optional<std::string>> env;
  // stdout and stderr go to these files (created or truncated); empty means /dev/null.
  std::string stdout_path;
  std::string stderr_path;
};

// Spawned at construction (posix_spawn, safe in a threaded test), killed with
// SIGKILL and reaped at destruction if still running, so a failing test never
// leaves one behind. Move-only.
class ChildProcess {
 public:
  // argv[0] is the executable's path. Throws std::runtime_error when the spawn fails.
  ChildProcess(std::vector<std::string> argv, ChildOptions options = {});
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  // Sends signal to the child unless it has already been reaped.
  void send_signal(int signal);

  // The exit if the child ended within timeout, else nullopt (it keeps running).
  std::optional<ChildExit> wait_for(std::chrono::milliseconds timeout);
  // Waits as long as it takes.
  ChildExit wait();
  // Set once the child has been reaped.
  const std::optional<ChildExit>& exit() const { return exit_; }

  // What the child wrote so far ("" without a file).
  std::string stdout_text() const;
  std::string stderr_text() const;
  const ChildOptions& options() const { return options_; }

 private:
  bool try_reap(bool block);
  void kill_and_reap();

  pid_t pid_ = -1;
  ChildOptions options_;
  std::optional<ChildExit> exit_;
};

// Runs argv to the end and returns its exit; output as options say.
ChildExit run_child(std::vector<std::string> argv, const ChildOptions& options = {});

}  // namespace blobferry::testing
