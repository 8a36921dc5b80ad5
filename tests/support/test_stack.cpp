// Real Redis, PostgreSQL and S3 servers for integration tests, started through ops/dev-stack.sh.
#include "tests/support/test_stack.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "tests/support/temp_dir.h"

namespace blobferry::testing {
namespace {

constexpr const char* kDevStack = BLOBFERRY_SOURCE_DIR "/ops/dev-stack.sh";

struct PipeCloser {
  void operator()(FILE* pipe) const { ::pclose(pipe); }
};

std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::string only_list(const StackOptions& options) {
  std::string list;
  auto add = [&list](const char* name) {
    if (!list.empty()) list += ',';
    list += name;
  };
  if (options.redis) add("redis");
  if (options.postgres) add("postgres");
  if (options.s3) add("s3");
  if (options.rgw) add("rgw");
  return list;
}

std::string dev_stack_command(const std::string& verb, const std::string& dir) {
  return "bash " + shell_quote(kDevStack) + " " + verb + " --dir " + shell_quote(dir);
}

std::string stderr_log(const std::string& dir) { return dir + "/dev-stack.stderr"; }

std::string tail_of(const std::string& path, std::size_t lines) {
  std::ifstream file(path);
  std::deque<std::string> last;
  for (std::string line; std::getline(file, line);) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string text;
  for (const auto& line : last) text += "\n  " + line;
  return text;
}

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

// popen reads until every writer has closed stdout; dev-stack.sh gives its
// servers log files instead, so this returns as soon as the script exits.
CommandResult run_capturing_stdout(const std::string& command) {
  std::unique_ptr<FILE, PipeCloser> pipe(::popen(command.c_str(), "r"));
  if (!pipe) throw std::runtime_error("popen failed: " + command);
  CommandResult result;
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe.get())) > 0) result.output.append(buffer, n);
  int status = ::pclose(pipe.release());
  result.exit_code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  return result;
}

bool is_env_key(const std::string& key) {
  if (key.empty() || std::isdigit(static_cast<unsigned char>(key[0]))) return false;
  for (char c : key) {
    if (!(std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return true;
}

std::map<std::string, std::string> parse_env_lines(const std::string& text) {
  std::map<std::string, std::string> env;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    auto equals = line.find('=');
    if (equals == std::string::npos) continue;
    std::string key = line.substr(0, equals);
    if (is_env_key(key)) env[key] = line.substr(equals + 1);
  }
  return env;
}

void stop_stack(const std::string& dir) {
  std::string command = dev_stack_command("down", dir) + " >/dev/null 2>>" + shell_quote(stderr_log(dir));
  [[maybe_unused]] int ignored = std::system(command.c_str());
}

// Runs a dev-stack.sh command on dir's stack; throws with its stderr's tail when it fails.
void run_on_stack(const std::string& dir, const std::string& verb_and_args) {
  std::string command = dev_stack_command(verb_and_args, dir) + " >/dev/null 2>>" + shell_quote(stderr_log(dir));
  const int status = std::system(command.c_str());
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("ops/dev-stack.sh " + verb_and_args + " failed" + tail_of(stderr_log(dir), 25));
  }
}

void remove_dir(const std::string& dir) {
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

}  // namespace

TestStack::TestStack(StackOptions options) : dir_(make_temp_dir("blobferry-test")) {
  // --owner-pid: should this process die without running the destructor
  // (a crash, ctest's timeout kill), the stack stops itself.
  std::string command = dev_stack_command("up", dir_) + " --only " + shell_quote(only_list(options)) +
                        (options.redis_aof ? " --redis-aof" : "") + " --owner-pid " + std::to_string(::getpid()) +
                        " 2>" + shell_quote(stderr_log(dir_));
  CommandResult result = run_capturing_stdout(command);
  if (result.exit_code != 0) {
    std::string message = "ops/dev-stack.sh up failed (exit " + std::to_string(result.exit_code) + ")" +
                          tail_of(stderr_log(dir_), 25);
    stop_stack(dir_);
    remove_dir(dir_);
    throw std::runtime_error(message);
  }
  env_ = parse_env_lines(result.output);
}

TestStack::~TestStack() {
  stop_stack(dir_);
  remove_dir(dir_);
}

void TestStack::stop_service(const std::string& name) { run_on_stack(dir_, "service-down " + shell_quote(name)); }

void TestStack::start_service(const std::string& name) { run_on_stack(dir_, "service-up " + shell_quote(name)); }

std::string TestStack::env(const std::string& name) const {
  auto found = env_.find(name);
  return found == env_.end() ? std::string() : found->second;
}

}  // namespace blobferry::testing
