// The operations files (systemd, Dockerfile, Kubernetes, Grafana, runbook) checked against the real binary and tools.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "common/queue/memory_queue.h"
#include "common/metrics/metrics.h"
#include "common/metrics/metrics_server.h"
#include "common/storage/storage_config.h"
#include "tests/support/child_process.h"
#include "tests/support/temp_dir.h"
#include "worker/copy/copy_engine.h"
#include "common/storage/service_registry.h"
#include "worker/loop/worker_loop.h"

namespace blobferry {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const std::string kSource = BLOBFERRY_SOURCE_DIR;
const std::string kBinary = BLOBFERRY_BINARY;
// Where `cmake --install` and the Dockerfile put the binary, and the units run it from.
const std::string kInstalledBinary = "/usr/local/bin/blobferry";
// Global options take a value and may come before or after the subcommand.
const std::set<std::string> kGlobalOptionsWithValue = {"--storage-config", "--database-url", "--redis-url",
                                                       "--log-format", "--log-level"};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

std::string trim_line_end(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

struct Captured {
  testing::ChildExit exit;
  std::string out;
  std::string err;
};

// Runs a tool to its end and keeps what it printed.
Captured capture(const std::vector<std::string>& argv) {
  TempDir scratch("ops-files-run");
  testing::ChildOptions options;
  options.stdout_path = scratch.file("out");
  options.stderr_path = scratch.file("err");
  Captured result;
  result.exit = testing::run_child(argv, options);
  result.out = read_text(options.stdout_path);
  result.err = read_text(options.stderr_path);
  return result;
}

// The absolute path of a tool on PATH ("" when there is none): posix_spawn does not search PATH.
std::string tool_path(const std::string& name) {
  Captured found = capture({"/bin/sh", "-c", "command -v " + name});
  return found.exit.success() ? trim_line_end(found.out) : "";
}

// Whitespace-separated words, with '…' and "…" quoting (enough for unit files and runbook lines).
std::vector<std::string> shell_words(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (char c : line) {
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        word += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(word);
  return words;
}

// ---------------------------------------------------------------- the CLI's options

// `blobferry [SUB] --help`, cached: what the binary really accepts.
const std::string& help_of(const std::string& subcommand) {
  static std::map<std::string, std::string> cache;
  auto found = cache.find(subcommand);
  if (found != cache.end()) return found->second;
  std::vector<std::string> argv = {kBinary};
  if (!subcommand.empty()) argv.push_back(subcommand);
  argv.push_back("--help");
  Captured run = capture(argv);
  return cache[subcommand] = run.exit.success() ? run.out + run.err : "";
}

// Whether text names `option` as a whole word (--shard, not --shards).
bool mentions_option(const std::string& text, const std::string& option) {
  for (auto at = text.find(option); at != std::string::npos; at = text.find(option, at + 1)) {
    const std::size_t end = at + option.size();
    const bool whole = end == text.size() || !(std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '-');
    const bool starts = at == 0 || !(std::isalnum(static_cast<unsigned char>(text[at - 1])) || text[at - 1] == '-');
    if (whole && starts) return true;
  }
  return false;
}

// The problems of one command line (the words after `blobferry`): an unknown
// subcommand, an option neither the subcommand nor the globals accept.
std::vector<std::string> command_problems(const std::vector<std::string>& args, const std::string& where) {
  std::vector<std::string> problems;
  std::string subcommand;
  std::vector<std::string> options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (starts_with(word, "--")) {
      const std::string option = word.substr(0, word.find('='));
      options.push_back(option);
      if (kGlobalOptionsWithValue.count(option) && word.find('=') == std::string::npos) ++i;
    } else if (starts_with(word, "-") && word.size() > 1) {
      options.push_back(word);
    } else if (subcommand.empty()) {
      subcommand = word;
    }
  }
  if (subcommand.empty()) {
    problems.push_back(where + ": no subcommand");
    return problems;
  }
  const std::string& sub_help = help_of(subcommand);
  if (sub_help.empty()) {
    problems.push_back(where + ": `blobferry " + subcommand + " --help` fails: no such subcommand");
    return problems;
  }
  const std::string& global_help = help_of("");
  for (const std::string& option : options) {
    if (!mentions_option(sub_help, option) && !mentions_option(global_help, option)) {
      problems.push_back(where + ": `blobferry " + subcommand + "` has no option " + option);
    }
  }
  return problems;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += item + "\n";
  return out;
}

// The value of `--name VALUE` (or `--name=VALUE`) in args, "" when absent.
std::string option_value(const std::vector<std::string>& args, const std::string& name) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == name && i + 1 < args.size()) return args[i + 1];
    if (starts_with(args[i], name + "=")) return args[i].substr(name.size() + 1);
  }
  return "";
}

// Access keys and secrets that look real: AWS key ids, 40-character secrets,
// long hex tokens. Placeholders (REPLACE_ME) and ${VARS} do not match.
bool looks_like_real_credential(const std::string& text) {
  static const std::regex aws_key_id("(AKIA|ASIA)[0-9A-Z]{16}");
  static const std::regex aws_secret("(^|[^A-Za-z0-9/+])[A-Za-z0-9/+]{40}([^A-Za-z0-9/+=]|$)");
  static const std::regex hex_token("[0-9a-f]{32,}");
  return std::regex_search(text, aws_key_id) || std::regex_search(text, aws_secret) ||
         std::regex_search(text, hex_token);
}

// Every variable storage.yml reads with ENV["X"], ENV['X'] or ENV.fetch("X"…).
std::set<std::string> env_names_in(const std::string& yaml_text) {
  static const std::regex env_read(R"(ENV(?:\.fetch\(|\[)\s*["']([A-Za-z_][A-Za-z0-9_]*)["'])");
  std::set<std::string> names;
  for (std::sregex_iterator it(yaml_text.begin(), yaml_text.end(), env_read), end; it != end; ++it) {
    names.insert((*it)[1]);
  }
  return names;
}

// storage.yml parsed as blobferry reads it, with every ENV variable set to a placeholder.
StorageConfig parse_storage_yml(const std::string& text, const std::string& origin) {
  EnvLookup env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "RAILS_ENV") return "production";
    return "placeholder-" + name;
  };
  return StorageConfig::parse(text, origin, env, "/srv/app");
}

// ---------------------------------------------------------------- systemd

struct UnitFile {
  std::string path;
  std::multimap<std::string, std::string> settings;  // Key -> value, every section

  std::string value(const std::string& key) const {
    auto found = settings.find(key);
    return found == settings.end() ? "" : found->second;
  }
  std::vector<std::string> values(const std::string& key) const {
    std::vector<std::string> out;
    auto [begin, end] = settings.equal_range(key);
    for (auto it = begin; it != end; ++it) out.push_back(it->second);
    return out;
  }
  bool has(const std::string& key) const { return settings.count(key) > 0; }
};

UnitFile load_unit(const std::string& path) {
  UnitFile unit{path, {}};
  for (const std::string& raw : lines_of(read_text(path))) {
    const std::string line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';' || line[0] == '[') continue;
    const auto equals = line.find('=');
    if (equals == std::string::npos) continue;
    unit.settings.emplace(trim(line.substr(0, equals)), trim(line.substr(equals + 1)));
  }
  return unit;
}

std::vector<std::string> unit_paths() {
  std::vector<std::string> paths;
  for (const auto& entry : fs::directory_iterator(kSource + "/ops/systemd")) {
    if (entry.path().extension() == ".service") paths.push_back(entry.path().string());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

// The words of ExecStart after the binary, with %i as a migration name.
std::vector<std::string> exec_start_args(const UnitFile& unit) {
  std::vector<std::string> words = shell_words(unit.value("ExecStart"));
  if (words.empty()) return words;
  words.erase(words.begin());
  for (auto& word : words) {
    if (word == "%i") word = "demo";
  }
  return words;
}

TEST(SystemdUnits, VerifyPassesWithTheBuiltBinary) {
  const std::string analyze = tool_path("systemd-analyze");
  ASSERT_FALSE(analyze.empty()) << "systemd-analyze is missing: install systemd (ops/install-deps.sh)";
  const auto paths = unit_paths();
  ASSERT_GE(paths.size(), 2u) << "expected blobferry-worker@.service and blobferry-enqueue@.service";
  // verify insists the ExecStart binary exists, so each unit is verified as a
  // copy that runs the binary just built instead of the installed path.
  TempDir dir("ops-systemd");
  for (const std::string& path : paths) {
    SCOPED_TRACE(path);
    std::string text = read_text(path);
    ASSERT_NE(text.find("ExecStart=" + kInstalledBinary + " "), std::string::npos)
        << "ExecStart must run " << kInstalledBinary << " (where cmake --install puts it)";
    for (auto at = text.find(kInstalledBinary); at != std::string::npos; at = text.find(kInstalledBinary, at)) {
      text.replace(at, kInstalledBinary.size(), kBinary);
      at += kBinary.size();
    }
    const std::string name = fs::path(path).filename().string();
    const std::string copy = dir.file(name);
    write_text(copy, text);

    Captured run = capture({analyze, "verify", "--man=no", copy});
    const std::string output = run.out + run.err;
    EXPECT_TRUE(run.exit.success()) << run.exit.describe() << ": " << output;
    // Unknown keys and bad values are only warnings to verify: any line about our file is a failure.
    for (const std::string& line : lines_of(output)) {
      EXPECT_EQ(line.find(name.substr(0, name.find('@'))), std::string::npos) << line;
    }
  }
}

TEST(SystemdUnits, VerifyCatchesABrokenUnit) {
  const std::string analyze = tool_path("systemd-analyze");
  ASSERT_FALSE(analyze.empty()) << "systemd-analyze is missing: install systemd (ops/install-deps.sh)";
  TempDir dir("ops-systemd-broken");
  const std::string copy = dir.file("broken@.service");
  write_text(copy, "[Service]\nExecStart=" + dir.file("no-such-binary") + " worker\n");
  Captured run = capture({analyze, "verify", "--man=no", copy});
  EXPECT_FALSE(run.exit.success()) << "verify must fail for a missing binary, or the test above proves nothing";
}

TEST(SystemdUnits, WorkerStopsGracefullyRestartsAndIsHardened) {
  const UnitFile unit = load_unit(kSource + "/ops/systemd/blobferry-worker@.service");
  const auto args = exec_start_args(unit);
  ASSERT_FALSE(args.empty()) << "no ExecStart";
  EXPECT_EQ(args.front(), "worker");
  EXPECT_EQ(option_value(args, "--migration"), "demo") << "the instance name is the migration";
  EXPECT_FALSE(option_value(args, "--metrics-addr").empty());
  EXPECT_EQ(joined(command_problems(args, "ExecStart")), "");

  const std::string drain = option_value(args, "--drain-seconds");
  ASSERT_FALSE(drain.empty()) << "ExecStart must fix --drain-seconds so TimeoutStopSec can be above it";
  ASSERT_TRUE(unit.has("TimeoutStopSec"));
  EXPECT_GT(std::stoi(unit.value("TimeoutStopSec")), std::stoi(drain));
  EXPECT_EQ(unit.value("KillSignal"), "SIGTERM");
  EXPECT_EQ(unit.value("Restart"), "on-failure");
  EXPECT_FALSE(unit.values("EnvironmentFile").empty());

  const std::map<std::string, std::string> hardening = {
      {"DynamicUser", "yes"},   {"NoNewPrivileges", "yes"}, {"ProtectSystem", "strict"},
      {"PrivateTmp", "yes"},    {"ProtectHome", "yes"},     {"CapabilityBoundingSet", ""},
      {"PrivateDevices", "yes"}, {"RestrictSUIDSGID", "yes"},
  };
  for (const auto& [key, expected] : hardening) {
    EXPECT_TRUE(unit.has(key)) << key;
    EXPECT_EQ(unit.value(key), expected) << key;
  }
}

TEST(SystemdUnits, AllMigrationsWorkerRunsAWorkerWithoutMigration) {
  const UnitFile unit = load_unit(kSource + "/ops/systemd/blobferry-worker.service");
  const auto args = exec_start_args(unit);
  ASSERT_FALSE(args.empty()) << "no ExecStart";
  EXPECT_EQ(args.front(), "worker");
  EXPECT_EQ(option_value(args, "--migration"), "") << "this unit serves every migration";
  EXPECT_EQ(unit.value("ExecStart").find("%i"), std::string::npos) << "not a template unit";
  EXPECT_EQ(joined(command_problems(args, "ExecStart")), "");
  const std::string drain = option_value(args, "--drain-seconds");
  ASSERT_FALSE(drain.empty());
  EXPECT_GT(std::stoi(unit.value("TimeoutStopSec")), std::stoi(drain));
  EXPECT_EQ(unit.value("DynamicUser"), "yes");
  EXPECT_EQ(unit.value("ProtectSystem"), "strict");
}

TEST(SystemdUnits, EnqueueUnitRunsAnEnqueueTheCliAccepts) {
  const UnitFile unit = load_unit(kSource + "/ops/systemd/blobferry-enqueue@.service");
  const auto args = exec_start_args(unit);
  ASSERT_FALSE(args.empty());
  EXPECT_EQ(args.front(), "enqueue");
  EXPECT_EQ(option_value(args, "--migration"), "demo");
  EXPECT_EQ(unit.value("Type"), "oneshot");
  EXPECT_EQ(unit.value("DynamicUser"), "yes");
  EXPECT_EQ(joined(command_problems(args, "ExecStart")), "");
}

TEST(SystemdUnits, EnvironmentExampleCoversTheUnitsAndHoldsNoCredential) {
  const std::string example = read_text(kSource + "/ops/systemd/blobferry-worker.env.example");
  EXPECT_FALSE(looks_like_real_credential(example));
  // Every ${VAR} a unit passes on its command line is documented in the example.
  static const std::regex variable(R"(\$\{([A-Z_][A-Z0-9_]*)\})");
  for (const std::string& path : unit_paths()) {
    const std::string exec = load_unit(path).value("ExecStart");
    for (std::sregex_iterator it(exec.begin(), exec.end(), variable), end; it != end; ++it) {
      EXPECT_NE(example.find((*it)[1].str() + "="), std::string::npos) << path << " uses " << (*it)[0];
    }
  }
  // And every variable storage.yml in the ConfigMap reads.
  const YAML::Node config_map = YAML::LoadFile(kSource + "/ops/k8s/configmap.yaml");
  for (const std::string& name : env_names_in(config_map["data"]["storage.yml"].as<std::string>())) {
    EXPECT_NE(example.find(name + "="), std::string::npos) << name;
  }
}

// ---------------------------------------------------------------- Dockerfile

struct DockerStage {
  std::string from;                   // the FROM line's arguments
  std::vector<std::string> instructions;  // continuation lines joined
  std::vector<std::string> apt_packages;  // every `apt-get install` of the stage
};

// The arguments of every `apt-get install` in a RUN instruction.
std::vector<std::string> apt_installs(const std::string& run) {
  std::vector<std::string> packages;
  std::string command;
  std::vector<std::string> commands;
  for (const std::string& word : shell_words(run)) {
    if (word == "&&" || word == ";") {
      commands.push_back(command);
      command.clear();
    } else {
      command += word + " ";
    }
  }
  commands.push_back(command);
  for (const std::string& one : commands) {
    const auto words = shell_words(one);
    auto install = std::find(words.begin(), words.end(), "install");
    if (install == words.end() || std::find(words.begin(), install, "apt-get") == install) continue;
    for (auto it = install + 1; it != words.end(); ++it) {
      if (!starts_with(*it, "-")) packages.push_back(*it);
    }
  }
  return packages;
}

std::vector<DockerStage> docker_stages(const std::string& dockerfile) {
  std::vector<DockerStage> stages;
  std::string pending;
  for (const std::string& raw : lines_of(dockerfile)) {
    std::string line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    const bool continues = line.back() == '\\';
    if (continues) line.pop_back();
    pending += line + " ";
    if (continues) continue;
    const std::string instruction = trim(pending);
    pending.clear();
    if (starts_with(instruction, "FROM ")) {
      stages.push_back({instruction.substr(5), {}, {}});
      continue;
    }
    if (stages.empty()) continue;
    stages.back().instructions.push_back(instruction);
    if (starts_with(instruction, "RUN ")) {
      for (auto& package : apt_installs(instruction.substr(4))) stages.back().apt_packages.push_back(package);
    }
  }
  return stages;
}

// APT_PACKAGES=( … ) of ops/install-deps.sh.
std::set<std::string> install_script_packages() {
  const std::string script = read_text(kSource + "/ops/install-deps.sh");
  const auto begin = script.find("APT_PACKAGES=(");
  const auto end = script.find(')', begin);
  std::set<std::string> packages;
  if (begin == std::string::npos || end == std::string::npos) return packages;
  for (const std::string& line : lines_of(script.substr(begin + 14, end - begin - 14))) {
    for (const std::string& word : shell_words(line.substr(0, line.find('#')))) packages.insert(word);
  }
  return packages;
}

// The Debian package that ships a file, trying the path as given, resolved,
// and across the /lib -> /usr/lib merge (dpkg knows only one spelling).
std::string debian_package_of(const std::string& path) {
  std::vector<std::string> candidates = {path};
  std::error_code error;
  const std::string resolved = fs::canonical(path, error).string();
  if (!error) candidates.push_back(resolved);
  for (const std::string& one : std::vector<std::string>(candidates)) {
    if (starts_with(one, "/usr/lib/")) candidates.push_back(one.substr(4));
    if (starts_with(one, "/lib/")) candidates.push_back("/usr" + one);
  }
  for (const std::string& candidate : candidates) {
    Captured run = capture({tool_path("dpkg"), "-S", candidate});
    if (!run.exit.success()) continue;
    std::string package = run.out.substr(0, run.out.find(':'));  // "libpq5:amd64: /usr/lib/…"
    return package.substr(0, package.find(','));
  }
  return "";
}

// The shared libraries the binary itself names (DT_NEEDED), each with the path
// the loader resolves it to.
std::map<std::string, std::string> linked_libraries(const std::string& binary) {
  std::map<std::string, std::string> needed;
  Captured elf = capture({tool_path("readelf"), "-d", binary});
  static const std::regex needed_line(R"(\(NEEDED\)\s+Shared library: \[([^\]]+)\])");
  for (std::sregex_iterator it(elf.out.begin(), elf.out.end(), needed_line), end; it != end; ++it) {
    needed[(*it)[1]] = "";
  }
  Captured ldd = capture({tool_path("ldd"), binary});
  static const std::regex resolved_line(R"(^\s*(\S+) => (/\S+))");
  for (const std::string& line : lines_of(ldd.out)) {
    std::smatch match;
    if (std::regex_search(line, match, resolved_line) && needed.count(match[1])) needed[match[1]] = match[2];
  }
  return needed;
}

TEST(Dockerfile, IsMultiStageBookwormSlimNonRootWithTheBinaryAsEntrypoint) {
  const auto stages = docker_stages(read_text(kSource + "/ops/docker/Dockerfile"));
  ASSERT_GE(stages.size(), 2u);
  EXPECT_TRUE(starts_with(stages.front().from, "debian:bookworm ")) << stages.front().from;
  const DockerStage& runtime = stages.back();
  EXPECT_EQ(runtime.from, "debian:bookworm-slim");

  std::string user, entrypoint;
  bool copies_binary = false;
  for (const std::string& instruction : runtime.instructions) {
    if (starts_with(instruction, "USER ")) user = trim(instruction.substr(5));
    if (starts_with(instruction, "ENTRYPOINT ")) entrypoint = trim(instruction.substr(11));
    if (starts_with(instruction, "COPY --from=") && instruction.find(" " + kInstalledBinary) != std::string::npos) {
      copies_binary = true;
    }
  }
  EXPECT_FALSE(user.empty()) << "the final stage must switch to a non-root USER";
  EXPECT_FALSE(starts_with(user, "root") || starts_with(user, "0:") || user == "0") << user;
  EXPECT_EQ(entrypoint, "[\"blobferry\"]");
  EXPECT_TRUE(copies_binary) << "the final stage must copy the built binary to " << kInstalledBinary;
}

TEST(Dockerfile, BuildStageInstallsOnlyPackagesOfTheInstallScript) {
  const auto stages = docker_stages(read_text(kSource + "/ops/docker/Dockerfile"));
  ASSERT_GE(stages.size(), 2u);
  const auto script = install_script_packages();
  ASSERT_FALSE(script.empty()) << "no APT_PACKAGES in ops/install-deps.sh";
  ASSERT_FALSE(stages.front().apt_packages.empty());
  for (const std::string& package : stages.front().apt_packages) {
    EXPECT_TRUE(script.count(package)) << package << " is not in ops/install-deps.sh";
  }
}

TEST(Dockerfile, RuntimePackagesAreExactlyTheLibrariesTheBinaryLinks) {
  for (const char* tool : {"readelf", "ldd", "dpkg"}) ASSERT_FALSE(tool_path(tool).empty()) << tool << " is missing";
  const auto stages = docker_stages(read_text(kSource + "/ops/docker/Dockerfile"));
  ASSERT_GE(stages.size(), 2u);
  const std::set<std::string> runtime(stages.back().apt_packages.begin(), stages.back().apt_packages.end());
  ASSERT_FALSE(runtime.empty());

  const auto libraries = linked_libraries(kBinary);
  ASSERT_GE(libraries.size(), 5u) << "readelf found too few libraries in " << kBinary;
  std::set<std::string> linked_packages;
  for (const auto& [soname, path] : libraries) {
    // Sanitizer runtimes only exist in instrumented test builds, never in the image.
    if (starts_with(soname, "libasan") || starts_with(soname, "libubsan")) continue;
    ASSERT_FALSE(path.empty()) << "ldd does not resolve " << soname;
    const std::string package = debian_package_of(path);
    ASSERT_FALSE(package.empty()) << "dpkg -S knows no package for " << path;
    linked_packages.insert(package);
    EXPECT_TRUE(runtime.count(package)) << soname << " comes from " << package
                                        << ", missing in the Dockerfile's final stage";
  }
  // The reverse: nothing stale, no headers, only TLS roots besides the libraries.
  for (const std::string& package : runtime) {
    EXPECT_FALSE(package.size() > 4 && package.substr(package.size() - 4) == "-dev") << package;
    EXPECT_TRUE(linked_packages.count(package) || package == "ca-certificates")
        << package << " is installed in the final stage but the binary does not link it";
  }
  EXPECT_TRUE(runtime.count("ca-certificates")) << "HTTPS endpoints need the CA roots";
}

TEST(Dockerfile, DockerignoreKeepsTheBuildContextToTheSources) {
  const std::string ignore = read_text(kSource + "/.dockerignore");
  const auto lines = lines_of(ignore);
  EXPECT_NE(std::find(lines.begin(), lines.end(), "*"), lines.end());
  for (const char* kept : {"!CMakeLists.txt", "!main.cpp", "!common", "!worker", "!enqueuer"}) {
    EXPECT_NE(std::find(lines.begin(), lines.end(), kept), lines.end()) << kept;
  }
}

// ---------------------------------------------------------------- Kubernetes

struct Manifests {
  std::map<std::string, YAML::Node> by_kind;  // one object per kind in this layout
  std::vector<std::string> problems;
};

Manifests load_kustomization() {
  Manifests manifests;
  const std::string dir = kSource + "/ops/k8s/";
  const YAML::Node kustomization = YAML::LoadFile(dir + "kustomization.yaml");
  if (kustomization["kind"].as<std::string>("") != "Kustomization") manifests.problems.push_back("kustomization kind");
  for (const YAML::Node& resource : kustomization["resources"]) {
    const std::string path = dir + resource.as<std::string>();
    for (const YAML::Node& document : YAML::LoadAllFromFile(path)) {
      if (!document.IsMap()) continue;
      const std::string kind = document["kind"].as<std::string>("");
      if (kind.empty() || !document["apiVersion"] || !document["metadata"]["name"]) {
        manifests.problems.push_back(path + ": an object without apiVersion, kind or metadata.name");
        continue;
      }
      manifests.by_kind[kind] = document;
    }
  }
  return manifests;
}

// node[keys[0]][keys[1]]…, or an undefined node when any step is missing
// (yaml-cpp throws when indexing into a missing key's result).
YAML::Node at_path(const YAML::Node& node, std::initializer_list<const char*> keys) {
  YAML::Node current = node;
  for (const char* key : keys) {
    const YAML::Node& step = current;
    if (!step.IsMap() || !step[key]) return YAML::Node();
    // reset(), not operator=: assigning a Node would overwrite the tree it refers to.
    current.reset(step[key]);
  }
  return current;
}

std::vector<std::string> string_list(const YAML::Node& node) {
  std::vector<std::string> out;
  for (const YAML::Node& item : node) out.push_back(item.as<std::string>());
  return out;
}

// "256Mi", "1Gi", "300M" in MiB.
double quantity_mib(const std::string& quantity) {
  static const std::map<std::string, double> units = {
      {"Ki", 1.0 / 1024}, {"Mi", 1}, {"Gi", 1024}, {"K", 1e3 / 1048576}, {"M", 1e6 / 1048576}, {"G", 1e9 / 1048576}};
  std::size_t used = 0;
  const double number = std::stod(quantity, &used);
  auto unit = units.find(quantity.substr(used));
  return unit == units.end() ? number / 1048576 : number * unit->second;
}

int probe_port(const YAML::Node& container, const YAML::Node& probe) {
  const YAML::Node port = probe["httpGet"]["port"];
  if (port.IsScalar() && std::all_of(port.Scalar().begin(), port.Scalar().end(), ::isdigit)) return port.as<int>();
  for (const YAML::Node& declared : container["ports"]) {
    if (declared["name"].as<std::string>("") == port.as<std::string>()) return declared["containerPort"].as<int>();
  }
  return -1;
}

// What the worker's metrics server answers on path (pure: no socket).
int status_of_path(const std::string& path) {
  Metrics metrics;
  const std::string response = MetricsServer::respond("GET " + path + " HTTP/1.1\r\n\r\n", metrics, true);
  return std::stoi(response.substr(9, 3));
}

TEST(Kubernetes, KustomizationListsParsingManifestsOfEveryNeededKind) {
  const Manifests manifests = load_kustomization();
  EXPECT_EQ(joined(manifests.problems), "");
  const std::map<std::string, std::string> api_of = {
      {"Namespace", "v1"}, {"ConfigMap", "v1"}, {"Deployment", "apps/v1"},
      {"Job", "batch/v1"}, {"ScaledObject", "keda.sh/v1alpha1"},
  };
  for (const auto& [kind, api] : api_of) {
    ASSERT_TRUE(manifests.by_kind.count(kind)) << kind << " missing from kustomization.yaml";
    EXPECT_EQ(manifests.by_kind.at(kind)["apiVersion"].as<std::string>(), api) << kind;
  }
  // Every YAML file of the folder parses, those left out of kustomization too.
  for (const auto& entry : fs::directory_iterator(kSource + "/ops/k8s")) {
    if (entry.path().extension() != ".yaml") continue;
    EXPECT_NO_THROW(YAML::LoadAllFromFile(entry.path().string())) << entry.path();
  }
}

TEST(Kubernetes, WorkerDeploymentDrainsProbesAndFitsItsMemory) {
  const Manifests manifests = load_kustomization();
  ASSERT_TRUE(manifests.by_kind.count("Deployment"));
  const YAML::Node pod = manifests.by_kind.at("Deployment")["spec"]["template"]["spec"];
  const YAML::Node container = pod["containers"][0];
  ASSERT_TRUE(container.IsMap());
  const auto args = string_list(container["args"]);
  ASSERT_FALSE(args.empty());
  EXPECT_EQ(args.front(), "worker");
  EXPECT_EQ(joined(command_problems(args, "worker Deployment")), "");

  const std::string drain = option_value(args, "--drain-seconds");
  ASSERT_FALSE(drain.empty()) << "args must fix --drain-seconds";
  EXPECT_GT(pod["terminationGracePeriodSeconds"].as<int>(0), std::stoi(drain));

  const std::string metrics_addr = option_value(args, "--metrics-addr");
  ASSERT_FALSE(metrics_addr.empty());
  const int metrics_port = std::stoi(metrics_addr.substr(metrics_addr.rfind(':') + 1));
  EXPECT_EQ(metrics_addr.substr(0, metrics_addr.rfind(':')), "0.0.0.0") << "probes come from the kubelet, not localhost";
  for (const char* probe_name : {"readinessProbe", "livenessProbe"}) {
    const YAML::Node probe = container[probe_name];
    ASSERT_TRUE(probe.IsMap()) << probe_name;
    EXPECT_EQ(probe_port(container, probe), metrics_port) << probe_name;
    EXPECT_EQ(status_of_path(probe["httpGet"]["path"].as<std::string>()), 200) << probe_name;
  }

  // Memory: a baseline plus one multipart part buffer per copy in flight.
  const YAML::Node resources = container["resources"];
  ASSERT_TRUE(resources["requests"]["memory"] && resources["limits"]["memory"]);
  const int concurrency = std::stoi(option_value(args, "--concurrency").empty() ? "16" : option_value(args, "--concurrency"));
  const std::string part = option_value(args, "--part-size-mib");
  const int part_mib = part.empty() ? 8 : std::stoi(part);
  EXPECT_GE(quantity_mib(resources["limits"]["memory"].as<std::string>()), 32.0 + concurrency * part_mib);
  EXPECT_GE(quantity_mib(resources["requests"]["memory"].as<std::string>()), 32.0);

  const YAML::Node security = container["securityContext"];
  EXPECT_TRUE(pod["securityContext"]["runAsNonRoot"].as<bool>(false) || security["runAsNonRoot"].as<bool>(false));
  EXPECT_TRUE(security["readOnlyRootFilesystem"].as<bool>(false));
  EXPECT_FALSE(security["allowPrivilegeEscalation"].as<bool>(true));
}

TEST(Kubernetes, DeploymentAndJobReadTheSecretAndTheConfigMapsStorageYml) {
  const Manifests manifests = load_kustomization();
  const YAML::Node config_map = manifests.by_kind.at("ConfigMap");
  const YAML::Node secret = YAML::LoadFile(kSource + "/ops/k8s/secret.example.yaml");
  const std::string config_map_name = config_map["metadata"]["name"].as<std::string>();
  const std::string secret_name = secret["metadata"]["name"].as<std::string>();
  for (const char* kind : {"Deployment", "Job"}) {
    SCOPED_TRACE(kind);
    const YAML::Node pod = manifests.by_kind.at(kind)["spec"]["template"]["spec"];
    const YAML::Node container = pod["containers"][0];
    bool reads_secret = false;
    for (const YAML::Node& source : container["envFrom"]) {
      reads_secret = reads_secret || at_path(source, {"secretRef", "name"}).as<std::string>("") == secret_name;
    }
    EXPECT_TRUE(reads_secret) << "envFrom must name the Secret " << secret_name;

    std::string storage_config;
    for (const YAML::Node& variable : container["env"]) {
      if (variable["name"].as<std::string>() == "BLOBFERRY_STORAGE_CONFIG") storage_config = variable["value"].as<std::string>();
    }
    std::string volume_name;
    for (const YAML::Node& volume : pod["volumes"]) {
      if (at_path(volume, {"configMap", "name"}).as<std::string>("") == config_map_name) {
        volume_name = volume["name"].as<std::string>();
      }
    }
    ASSERT_FALSE(volume_name.empty()) << "no volume of the ConfigMap " << config_map_name;
    std::string mount_path;
    for (const YAML::Node& mount : container["volumeMounts"]) {
      if (mount["name"].as<std::string>() == volume_name) mount_path = mount["mountPath"].as<std::string>();
    }
    EXPECT_EQ(storage_config, mount_path + "/storage.yml");
  }
}

TEST(Kubernetes, EnqueueJobAndScaledObjectNameTheWorkersMigration) {
  const Manifests manifests = load_kustomization();
  const auto worker_args = string_list(manifests.by_kind.at("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]);
  const std::string migration = option_value(worker_args, "--migration");
  ASSERT_FALSE(migration.empty());

  const YAML::Node job_pod = manifests.by_kind.at("Job")["spec"]["template"]["spec"];
  const auto job_args = string_list(job_pod["containers"][0]["args"]);
  ASSERT_FALSE(job_args.empty());
  EXPECT_EQ(job_args.front(), "enqueue");
  EXPECT_EQ(joined(command_problems(job_args, "enqueue Job")), "");
  EXPECT_EQ(option_value(job_args, "--migration"), migration);
  const std::string restart = job_pod["restartPolicy"].as<std::string>("");
  EXPECT_TRUE(restart == "Never" || restart == "OnFailure") << restart;

  // Its services exist in the ConfigMap's storage.yml, as blobferry parses it.
  const std::string storage_yml = manifests.by_kind.at("ConfigMap")["data"]["storage.yml"].as<std::string>();
  const StorageConfig config = parse_storage_yml(storage_yml, "configmap.yaml");
  for (const char* option : {"--from", "--to"}) {
    const std::string service = option_value(job_args, option);
    EXPECT_NO_THROW(config.service(service)) << option << " " << service;
  }

  const YAML::Node scaled = manifests.by_kind.at("ScaledObject")["spec"];
  EXPECT_EQ(scaled["scaleTargetRef"]["name"].as<std::string>(),
            manifests.by_kind.at("Deployment")["metadata"]["name"].as<std::string>());
  // The pending gauge is exported by the workers: with none running there is nothing to scale up from.
  EXPECT_GE(scaled["minReplicaCount"].as<int>(0), 1);
  EXPECT_GE(scaled["maxReplicaCount"].as<int>(0), scaled["minReplicaCount"].as<int>(0));
  bool prometheus_trigger = false;
  for (const YAML::Node& trigger : scaled["triggers"]) {
    if (trigger["type"].as<std::string>("") != "prometheus") continue;
    prometheus_trigger = true;
    const std::string query = trigger["metadata"]["query"].as<std::string>("");
    EXPECT_NE(query.find("blobferry_pending"), std::string::npos) << query;
    EXPECT_NE(query.find("migration=\"" + migration + "\""), std::string::npos) << query;
    // Every worker exports the same migration-wide value: a sum would grow with the replicas.
    EXPECT_TRUE(starts_with(query, "max(")) << query;
    EXPECT_GT(std::stod(trigger["metadata"]["threshold"].as<std::string>("0")), 0.0);
    EXPECT_FALSE(trigger["metadata"]["serverAddress"].as<std::string>("").empty());
  }
  EXPECT_TRUE(prometheus_trigger) << "the ScaledObject needs a prometheus trigger on blobferry_pending";
}

TEST(Kubernetes, SecretTemplateHoldsOnlyPlaceholdersForEveryVariableStorageYmlReads) {
  const std::string text = read_text(kSource + "/ops/k8s/secret.example.yaml");
  const YAML::Node secret = YAML::Load(text);
  EXPECT_EQ(secret["kind"].as<std::string>(), "Secret");
  EXPECT_EQ(secret["apiVersion"].as<std::string>(), "v1");
  EXPECT_FALSE(secret["data"]) << "base64 data hides what is in it: use stringData placeholders";
  ASSERT_TRUE(secret["stringData"].IsMap());
  std::set<std::string> keys;
  for (const auto& entry : secret["stringData"]) {
    const std::string key = entry.first.as<std::string>();
    keys.insert(key);
    EXPECT_NE(entry.second.as<std::string>().find("REPLACE_ME"), std::string::npos) << key << " is not a placeholder";
  }
  EXPECT_FALSE(looks_like_real_credential(text));
  EXPECT_TRUE(keys.count("REDIS_URL"));
  EXPECT_TRUE(keys.count("DATABASE_URL"));
  const std::string storage_yml =
      YAML::LoadFile(kSource + "/ops/k8s/configmap.yaml")["data"]["storage.yml"].as<std::string>();
  for (const std::string& name : env_names_in(storage_yml)) {
    EXPECT_TRUE(keys.count(name)) << "storage.yml reads ENV[\"" << name << "\"] but the Secret has no such key";
  }
  // Not applied by kustomize: placeholders must never overwrite real credentials.
  const YAML::Node kustomization = YAML::LoadFile(kSource + "/ops/k8s/kustomization.yaml");
  for (const std::string& resource : string_list(kustomization["resources"])) {
    EXPECT_NE(resource, "secret.example.yaml");
  }
}

// ---------------------------------------------------------------- Grafana

// Runs a real worker loop over two Disk folders (one object copied, one
// missing) so every series the worker exports, failures by reason included,
// is rendered: the names come from the code, not from a list in this test.
std::set<std::string> metric_names_the_worker_exports() {
  TempDir dir("ops-metrics");
  fs::create_directories(dir.file("source"));
  fs::create_directories(dir.file("target"));
  write_text(dir.file("source/present.txt"), "hello");
  const std::string yaml = "source:\n  service: Disk\n  root: " + dir.file("source") +
                           "\n  layout: plain\ntarget:\n  service: Disk\n  root: " + dir.file("target") +
                           "\n  layout: plain\n";
  ServiceRegistry services(parse_storage_yml(yaml, "test storage.yml"));

  MemoryQueue queue("ops");
  Job job;
  job.migration = "ops";
  job.source = "source";
  job.target = "target";
  for (const char* key : {"present.txt", "missing.txt"}) {
    JobObject object;
    object.key = key;
    job.objects.push_back(object);
  }
  queue.push({job});

  RetryOptions retry;
  retry.retries = 0;
  retry.max_job_attempts = 1;
  CopyEngineOptions engine_options;
  engine_options.retry_policy = RetryPolicy(retry);
  const CopyEngine engine(engine_options);

  Metrics metrics;
  WorkerOptions options;
  options.migration = "ops";
  options.worker_id = "ops-files-test";
  options.concurrency = 1;
  options.exit_when_empty = true;
  options.poll_wait = std::chrono::milliseconds(50);
  options.housekeeping = std::chrono::milliseconds(50);
  WorkerLoop loop(queue, services, engine, &metrics, options);
  const WorkerSummary summary = loop.run();
  EXPECT_EQ(summary.copied, 1u);
  EXPECT_EQ(summary.failed, 1u);

  std::set<std::string> names;
  for (const std::string& line : lines_of(metrics.render())) {
    if (line.empty() || line[0] == '#') continue;
    names.insert(line.substr(0, line.find_first_of("{ ")));
  }
  return names;
}

void collect_queries(const nlohmann::json& node, std::vector<std::string>& out) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if ((key == "expr" || key == "query" || key == "definition") && value.is_string()) {
        out.push_back(value.get<std::string>());
      } else {
        collect_queries(value, out);
      }
    }
  } else if (node.is_array()) {
    for (const auto& item : node) collect_queries(item, out);
  }
}

TEST(GrafanaDashboard, QueriesOnlyMetricsTheWorkerExports) {
  const auto dashboard = nlohmann::json::parse(read_text(kSource + "/ops/grafana/blobferry-dashboard.json"));
  std::vector<std::string> queries;
  collect_queries(dashboard, queries);
  ASSERT_FALSE(queries.empty());

  const std::set<std::string> exported = metric_names_the_worker_exports();
  ASSERT_TRUE(exported.count("blobferry_pending")) << "the worker no longer exports the pending gauge";
  static const std::regex metric_name("blobferry_[a-z0-9_]+");
  std::set<std::string> used;
  for (const std::string& query : queries) {
    for (std::sregex_iterator it(query.begin(), query.end(), metric_name), end; it != end; ++it) {
      used.insert(it->str());
      EXPECT_TRUE(exported.count(it->str())) << it->str() << " (in " << query << ") is not exported by the worker";
    }
  }
  EXPECT_GE(used.size(), 8u);
}

TEST(GrafanaDashboard, HasThePanelsAMigrationIsWatchedWith) {
  const auto dashboard = nlohmann::json::parse(read_text(kSource + "/ops/grafana/blobferry-dashboard.json"));
  ASSERT_TRUE(dashboard["panels"].is_array());
  std::set<int> ids;
  std::vector<std::string> exprs;
  for (const auto& panel : dashboard["panels"]) {
    EXPECT_TRUE(ids.insert(panel.value("id", -1)).second) << "duplicate panel id " << panel.value("id", -1);
    EXPECT_TRUE(panel.contains("gridPos")) << panel.value("title", "");
    ASSERT_TRUE(panel["targets"].is_array() && !panel["targets"].empty()) << panel.value("title", "");
    for (const auto& target : panel["targets"]) exprs.push_back(target.value("expr", ""));
  }
  auto some_expr = [&](const std::string& needle) {
    return std::any_of(exprs.begin(), exprs.end(), [&](const std::string& e) { return e.find(needle) != std::string::npos; });
  };
  EXPECT_TRUE(some_expr("rate(blobferry_objects_total")) << "objects/s";
  EXPECT_TRUE(some_expr("rate(blobferry_bytes_total")) << "bytes/s";
  EXPECT_TRUE(some_expr("by (reason) (rate(blobferry_failures_total")) << "failures by reason";
  EXPECT_TRUE(some_expr("rate(blobferry_retries_total")) << "retries";
  EXPECT_TRUE(some_expr("blobferry_queue_depth")) << "queue depth";
  EXPECT_TRUE(some_expr("sum by (migration) (blobferry_in_flight")) << "in flight, summed over workers";
  EXPECT_TRUE(some_expr("blobferry_workers_alive")) << "workers alive";
  EXPECT_TRUE(some_expr("histogram_quantile(0.99, sum by (le) (rate(blobferry_copy_duration_seconds_bucket")) << "p99";
  EXPECT_TRUE(some_expr("histogram_quantile(0.5, sum by (le) (rate(blobferry_copy_duration_seconds_bucket")) << "p50";
}

// ---------------------------------------------------------------- runbook

struct CodeBlock {
  std::string language;
  std::vector<std::string> lines;
};

std::vector<CodeBlock> code_blocks(const std::string& markdown) {
  std::vector<CodeBlock> blocks;
  bool inside = false;
  for (const std::string& line : lines_of(markdown)) {
    const std::string stripped = trim(line);
    if (starts_with(stripped, "```")) {
      if (!inside) blocks.push_back({trim(stripped.substr(3)), {}});
      inside = !inside;
    } else if (inside) {
      blocks.back().lines.push_back(line);
    }
  }
  return blocks;
}

// Lines of shell blocks that run blobferry, continuation lines joined.
std::vector<std::string> blobferry_command_lines(const std::vector<CodeBlock>& blocks) {
  std::vector<std::string> commands;
  for (const CodeBlock& block : blocks) {
    std::string pending;
    for (const std::string& raw : block.lines) {
      std::string line = trim(raw);
      if (starts_with(line, "$ ")) line = line.substr(2);
      if (pending.empty() && !starts_with(line, "blobferry ")) continue;
      const bool continues = !line.empty() && line.back() == '\\';
      if (continues) line.pop_back();
      pending += line + " ";
      if (continues) continue;
      commands.push_back(trim(pending.substr(0, pending.find(" #"))));
      pending.clear();
    }
  }
  return commands;
}

TEST(Runbook, IsLinkedFromTheReadme) {
  EXPECT_NE(read_text(kSource + "/README.md").find("ops/RUNBOOK.md"), std::string::npos);
}

TEST(Runbook, EveryBlobferryCommandIsOneTheCliAccepts) {
  const auto commands = blobferry_command_lines(code_blocks(read_text(kSource + "/ops/RUNBOOK.md")));
  ASSERT_GE(commands.size(), 15u);
  std::set<std::string> subcommands;
  for (const std::string& command : commands) {
    auto words = shell_words(command);
    words.erase(words.begin());
    for (const std::string& problem : command_problems(words, command)) ADD_FAILURE() << problem;
    for (const std::string& word : words) {
      if (!starts_with(word, "-")) {
        subcommands.insert(word);
        break;
      }
    }
  }
  for (const char* needed : {"services", "migrate", "enqueue", "worker", "status", "requeue", "report", "validate", "switch"}) {
    EXPECT_TRUE(subcommands.count(needed)) << "the runbook never shows `blobferry " << needed << "`";
  }
}

TEST(Runbook, StorageYmlExamplesParseAsBlobferryReadsThem) {
  const std::string runbook = read_text(kSource + "/ops/RUNBOOK.md");
  std::set<std::string> kinds;
  int examples = 0;
  for (const CodeBlock& block : code_blocks(runbook)) {
    if (block.language != "yaml") continue;
    std::string text;
    for (const std::string& line : block.lines) text += line + "\n";
    if (text.find("service:") == std::string::npos) continue;
    ++examples;
    SCOPED_TRACE(text);
    StorageConfig config = parse_storage_yml(text, "RUNBOOK.md");
    for (const std::string& name : config.names()) {
      try {
        kinds.insert(config.service(name).service_type);
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    }
  }
  EXPECT_GE(examples, 5);
  for (const char* kind : {"S3", "Disk", "Mirror"}) EXPECT_TRUE(kinds.count(kind)) << kind;
  for (const char* provider : {"r2.cloudflarestorage.com", "digitaloceanspaces.com", "region: auto", "force_path_style: true"}) {
    EXPECT_NE(runbook.find(provider), std::string::npos) << provider;
  }
}

}  // namespace
}  // namespace blobferry
