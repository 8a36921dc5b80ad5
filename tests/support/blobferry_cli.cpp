// Runs the blobferry binary as a user would, against a TestStack's servers.
#include "tests/support/blobferry_cli.h"

#include <signal.h>

#include <sstream>

#include "tests/support/test_stack.h"

namespace blobferry::testing {

BlobferryCli::BlobferryCli(const TestStack& stack, std::string scratch_dir) : scratch_dir_(std::move(scratch_dir)) {
  env_["AWS_CA_BUNDLE"] = std::nullopt;  // a bundle for real endpoints breaks plain-HTTP s3rver runs
  for (const char* name : {"BLOBFERRY_STORAGE_CONFIG", "DATABASE_URL", "REDIS_URL"}) {
    const std::string value = stack.env(name);
    env_[name] = value.empty() ? std::nullopt : std::optional<std::string>(value);
  }
}

ChildProcess BlobferryCli::start(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{BLOBFERRY_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string base = scratch_dir_ + "/run-" + std::to_string(runs_.fetch_add(1) + 1);
  ChildOptions options;
  options.env = env_;
  options.stdout_path = base + ".out";
  options.stderr_path = base + ".err";
  return ChildProcess(std::move(argv), std::move(options));
}

CliResult BlobferryCli::run(const std::vector<std::string>& args, std::chrono::milliseconds timeout) const {
  ChildProcess child = start(args);
  return finish(child, timeout);
}

CliResult finish(ChildProcess& child, std::chrono::milliseconds timeout) {
  if (!child.wait_for(timeout)) child.send_signal(SIGKILL);
  const ChildExit exit = child.wait();
  CliResult result;
  result.exit_code = exit.exited ? exit.exit_code : -1;
  result.signal = exit.exited ? 0 : exit.term_signal;
  result.out = child.stdout_text();
  result.err = child.stderr_text();
  return result;
}

bool still_running(ChildProcess& child) { return !child.wait_for(std::chrono::milliseconds(0)).has_value(); }

std::vector<std::string> non_empty_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

}  // namespace blobferry::testing
