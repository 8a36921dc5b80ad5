// Runs the blobferry binary as a user would, against a TestStack's servers.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/support/child_process.h"

namespace blobferry::testing {

class TestStack;

// How a run ended and what it printed.
struct CliResult {
  int exit_code = -1;  // -1 when a signal ended it
  int signal = 0;      // that signal, else 0
  std::string out;
  std::string err;

  std::string all() const { return out + err; }
};

// Every run gets this process's environment with the stack's storage.yml,
// DATABASE_URL and REDIS_URL (global options by environment, as in
// production) and without AWS_CA_BUNDLE; set_env changes more.
class BlobferryCli {
 public:
  // Output files of every run are kept under scratch_dir.
  BlobferryCli(const TestStack& stack, std::string scratch_dir);
  // Movable (the run counter goes along), so a fixture can return one it set up.
  BlobferryCli(BlobferryCli&& other) noexcept
      : env_(std::move(other.env_)), scratch_dir_(std::move(other.scratch_dir_)), runs_(other.runs_.load()) {}

  void set_env(const std::string& name, const std::string& value) { env_[name] = value; }
  void unset_env(const std::string& name) { env_[name] = std::nullopt; }

  // Runs `blobferry args…` to its end (SIGKILL after timeout).
  CliResult run(const std::vector<std::string>& args,
                std::chrono::milliseconds timeout = std::chrono::minutes(3)) const;
  // Starts `blobferry args…` and returns at once; finish() collects it.
  ChildProcess start(const std::vector<std::string>& args) const;

 private:
  std::map<std::string, std::optional<std::string>> env_;
  std::string scratch_dir_;
  mutable std::atomic<int> runs_{0};
};

// Waits for child (SIGKILL after timeout) and returns its exit and output.
CliResult finish(ChildProcess& child, std::chrono::milliseconds timeout = std::chrono::minutes(3));
bool still_running(ChildProcess& child);

// Text lines without their line ends, empty lines left out.
std::vector<std::string> non_empty_lines(const std::string& text);

}  // namespace blobferry::testing
