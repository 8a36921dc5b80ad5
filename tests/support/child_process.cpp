// A child process for tests: spawned with its own arguments and environment, output kept in files.
#include "tests/support/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>
#include <utility>

extern char** environ;

namespace blobferry::testing {
namespace {

// This process's environment with options' changes applied, as NAME=value strings.
std::vector<std::string> child_environment(const std::map<std::string, std::optional<std::string>>& changes) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string variable(*entry);
    const std::string name = variable.substr(0, variable.find('='));
    if (changes.count(name) == 0) env.push_back(std::move(variable));
  }
  for (const auto& [name, value] : changes) {
    if (value) env.push_back(name + "=" + *value);
  }
  return env;
}

std::vector<char*> pointers_to(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (auto& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

std::string read_whole_file(const std::string& path) {
  if (path.empty()) return {};
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

ChildExit exit_of(int status) {
  ChildExit result;
  if (WIFEXITED(status)) {
    result.exited = true;
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  return result;
}

// Owns posix_spawn_file_actions_t so every return path destroys it.
class SpawnActions {
 public:
  SpawnActions() { posix_spawn_file_actions_init(&actions_); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;

  void redirect(int fd, const std::string& path) {
    const char* target = path.empty() ? "/dev/null" : path.c_str();
    posix_spawn_file_actions_addopen(&actions_, fd, target, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  const posix_spawn_file_actions_t* get() const { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

}  // namespace

std::string ChildExit::describe() const {
  if (exited) return "exit " + std::to_string(exit_code);
  return "signal " + std::to_string(term_signal) + " (" + ::strsignal(term_signal) + ")";
}

ChildProcess::ChildProcess(std::vector<std::string> argv, ChildOptions options) : options_(std::move(options)) {
  if (argv.empty()) throw std::runtime_error("ChildProcess: empty argv");
  std::vector<std::string> env = child_environment(options_.env);
  std::vector<char*> argv_pointers = pointers_to(argv);
  std::vector<char*> env_pointers = pointers_to(env);
  SpawnActions actions;
  actions.redirect(STDOUT_FILENO, options_.stdout_path);
  actions.redirect(STDERR_FILENO, options_.stderr_path);
  const int failed = ::posix_spawn(&pid_, argv[0].c_str(), actions.get(), nullptr, argv_pointers.data(),
                                   env_pointers.data());
  if (failed != 0) {
    pid_ = -1;
    throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(failed));
  }
}

ChildProcess::~ChildProcess() { kill_and_reap(); }

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), options_(std::move(other.options_)), exit_(std::move(other.exit_)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    pid_ = std::exchange(other.pid_, -1);
    options_ = std::move(other.options_);
    exit_ = std::move(other.exit_);
  }
  return *this;
}

void ChildProcess::send_signal(int signal) {
  // Once reaped, the pid may belong to someone else: never signal it then.
  if (pid_ > 0 && !exit_) ::kill(pid_, signal);
}

bool ChildProcess::try_reap(bool block) {
  if (pid_ <= 0 || exit_) return exit_.has_value();
  int status = 0;
  pid_t reaped;
  do {
    reaped = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (reaped < 0 && errno == EINTR);
  if (reaped == pid_) exit_ = exit_of(status);
  return exit_.has_value();
}

std::optional<ChildExit> ChildProcess::wait_for(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!try_reap(false)) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return exit_;
}

ChildExit ChildProcess::wait() {
  try_reap(true);
  return exit_.value_or(ChildExit{});
}

void ChildProcess::kill_and_reap() {
  if (pid_ <= 0 || exit_) return;
  ::kill(pid_, SIGKILL);
  try_reap(true);
}

std::string ChildProcess::stdout_text() const { return read_whole_file(options_.stdout_path); }
std::string ChildProcess::stderr_text() const { return read_whole_file(options_.stderr_path); }

ChildExit run_child(std::vector<std::string> argv, const ChildOptions& options) {
  ChildProcess child(std::move(argv), options);
  return child.wait();
}

}  // namespace blobferry::testing
