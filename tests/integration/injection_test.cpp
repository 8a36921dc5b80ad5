// Names and keys carrying SQL, shell, path and Redis metacharacters are data:
// service names, prefixes, migration names and manifest keys reach SQL only as
// parameters, never a shell, never a path outside a Disk root, and never a
// Redis key another migration's name could collide with or glob-match.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/queue/redis_client.h"
#include "common/storage/s3/s3_storage.h"
#include "tests/support/blob_fixture.h"
#include "tests/support/blobferry_cli.h"
#include "tests/support/redis_dump.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"
#include "tests/support/test_stack.h"

namespace bt = blobferry::testing;
namespace fs = std::filesystem;

namespace {

constexpr const char* kSqlName = "x'; DROP TABLE active_storage_blobs; --";

// Shell payloads that would each create a file in `pwned_dir` if anything ran them through a shell.
std::vector<std::string> shell_payloads(const std::string& pwned_dir) {
  return {"$(touch " + pwned_dir + "/dollar)", "`touch " + pwned_dir + "/backtick`",
          "a; touch " + pwned_dir + "/semicolon", "a | touch " + pwned_dir + "/pipe",
          "a && touch " + pwned_dir + "/and"};
}

// YAML double-quoted scalar of any text.
std::string yaml_quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string json_quoted(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// Every regular file under dir, relative to it.
std::set<std::string> files_under(const std::string& dir) {
  std::set<std::string> files;
  if (!fs::exists(dir)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files.insert(fs::relative(entry.path(), dir).string());
  }
  return files;
}

class Injection : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = std::make_unique<bt::TestStack>(bt::StackOptions{.redis = true, .postgres = true, .s3 = true});
  }
  static void TearDownTestSuite() { stack_.reset(); }

  void SetUp() override {
    scratch_ = std::make_unique<bt::TempDir>("bf-inject");
    fs::create_directories(pwned_dir());
    fs::create_directories(scratch_->file("cli"));
    cli_ = std::make_unique<bt::BlobferryCli>(*stack_, scratch_->file("cli"));
  }

  void TearDown() override {
    EXPECT_TRUE(files_under(pwned_dir()).empty()) << "a shell ran a payload: " << pwned_dir();
  }

  std::string pwned_dir() const { return scratch_->file("pwned"); }

  std::string write_config(const std::string& yaml) {
    const std::string path = scratch_->file("storage.yml");
    std::ofstream(path) << yaml;
    cli_->set_env("BLOBFERRY_STORAGE_CONFIG", path);
    return path;
  }

  static std::string s3_service(const std::string& name, const std::string& bucket, const std::string& endpoint) {
    return yaml_quoted(name) + ":\n  service: S3\n  access_key_id: S3RVER\n  secret_access_key: S3RVER\n" +
           "  bucket: " + bucket + "\n  endpoint: " + endpoint + "\n  force_path_style: true\n";
  }
  static std::string disk_service(const std::string& name, const std::string& root, const std::string& layout) {
    return yaml_quoted(name) + ":\n  service: Disk\n  root: " + yaml_quoted(root) + "\n  layout: " + layout + "\n";
  }

  // A one-line usage or configuration error.
  static void expect_refused(const bt::CliResult& r, const std::string& what) {
    EXPECT_EQ(r.exit_code, 2) << what << ": " << r.all();
    EXPECT_EQ(bt::non_empty_lines(r.err).size(), 1u) << what << ": not one line: " << r.err;
  }

  static std::unique_ptr<bt::TestStack> stack_;
  std::unique_ptr<bt::TempDir> scratch_;
  std::unique_ptr<bt::BlobferryCli> cli_;
};

std::unique_ptr<bt::TestStack> Injection::stack_;

}  // namespace

// Service names are storage.yml keys and active_storage_blobs.service_name
// values: SQL and shell metacharacters in them go through enqueue, the copy,
// validate and switch as plain text.
TEST_F(Injection, ServiceNamesAreDataInSqlAndNeverReachAShell) {
  const std::string shell_name = shell_payloads(pwned_dir())[0];
  write_config(s3_service(kSqlName, "source", stack_->env("S3_SOURCE_ENDPOINT")) +
               s3_service(shell_name, "target", stack_->env("S3_TARGET_ENDPOINT")));
  blobferry::S3Storage source(bt::s3rver_service("source", stack_->env("S3_SOURCE_ENDPOINT")));
  bt::BlobFixture table(stack_->database_url(), bt::BlobSchema::kRails7);
  std::vector<bt::SeedRow> rows = table.add_objects(source, {10, 2000, 0}, "2024-05-01 12:00:00");
  table.db().exec("UPDATE active_storage_blobs SET service_name = $1", {kSqlName});
  std::vector<bt::SeedRow> bystander = table.add_rows(2, "2024-05-01 12:00:00", "untouched");

  const bt::CliResult services = cli_->run({"services"});
  EXPECT_NE(services.out.find(kSqlName), std::string::npos) << "blob counts per service_name: " << services.all();
  const bt::CliResult r = cli_->run({"migrate", "--from", kSqlName, "--to", shell_name, "--migration", "sql-names",
                                     "--switch", "--no-progress"});
  ASSERT_EQ(r.exit_code, 0) << r.all();

  EXPECT_EQ(table.row_count(), static_cast<long long>(rows.size() + bystander.size())) << "the table survived";
  std::map<std::string, int> per_service;
  for (const auto& [id, service] : table.service_names()) ++per_service[service];
  EXPECT_EQ(per_service[shell_name], static_cast<int>(rows.size())) << "switched to the name, byte for byte";
  EXPECT_EQ(per_service["untouched"], 2);
  EXPECT_EQ(per_service[kSqlName], 0);
}

// A prefix is a listing parameter and a Disk path below the root, never more.
TEST_F(Injection, PrefixesAreDataAndStayInsideTheDiskRoot) {
  const std::string root = scratch_->file("src");
  fs::create_directories(root + "/inside");
  std::ofstream(root + "/inside/a.txt") << "inside";
  fs::create_directories(scratch_->file("outside"));
  std::ofstream(scratch_->file("outside/secret.txt")) << "outside the root";
  write_config(disk_service("src", root, "plain") + disk_service("dst", scratch_->file("dst"), "plain"));

  std::vector<std::string> prefixes = {"../outside/", "../", "/etc/", "%2e%2e/outside/", "inside/../../outside/",
                                       std::string(kSqlName), "*", "inside/[a-z]*", "inside/?.txt"};
  for (const std::string& payload : shell_payloads(pwned_dir())) prefixes.push_back(payload);
  for (const std::string& prefix : prefixes) {
    const bt::CliResult r = cli_->run({"migrate", "--from", "src", "--to", "dst", "--source", "listing", "--prefix",
                                       prefix, "--migration", "prefix", "--no-progress"});
    EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 2) << prefix << ": " << r.all();
    if (r.exit_code == 2) {
      EXPECT_EQ(bt::non_empty_lines(r.err).size(), 1u) << prefix << ": " << r.err;
    }
    EXPECT_TRUE(files_under(scratch_->file("dst")).empty())
        << "prefix '" << prefix << "' matched something: " << r.all();
  }
  // The glob characters are literal: an existing prefix still lists exactly its keys.
  const bt::CliResult r = cli_->run({"migrate", "--from", "src", "--to", "dst", "--source", "listing", "--prefix",
                                     "inside/", "--migration", "prefix", "--no-progress"});
  EXPECT_EQ(r.exit_code, 0) << r.all();
  EXPECT_EQ(files_under(scratch_->file("dst")), std::set<std::string>{"inside/a.txt"});
}

// Migration names name Redis keys, so only a plain alphabet is accepted: glob
// and hash-tag characters, paths, SQL and shell are refused at the boundary.
TEST_F(Injection, BadMigrationNamesAreRefusedWithExit2) {
  write_config(s3_service("source", "source", stack_->env("S3_SOURCE_ENDPOINT")) +
               s3_service("target", "target", stack_->env("S3_TARGET_ENDPOINT")));
  std::vector<std::string> names = {"a*", "a?", "a[b]", "{a}", "a}b", "../x", "/abs", "a/b", kSqlName, "a b", "",
                                    std::string("a\nb"), "a\\b", std::string(65, 'a')};
  for (const std::string& payload : shell_payloads(pwned_dir())) names.push_back(payload);
  for (const std::string& name : names) {
    for (const std::vector<std::string>& command :
         std::vector<std::vector<std::string>>{{"enqueue", "--from", "source", "--to", "target", "--source", "listing"},
                                               {"migrate", "--from", "source", "--to", "target", "--source", "listing",
                                                "--dry-run"},
                                               {"status"},
                                               {"cancel", "--purge", "--yes"},
                                               {"report"}}) {
      // migrate treats an empty name as "not given" and uses its default FROM-to-TO.
      if (name.empty() && command[0] == "migrate") continue;
      std::vector<std::string> args = command;
      args.insert(args.begin() + 1, {"--migration", name});
      expect_refused(cli_->run(args), command[0] + " --migration '" + name + "'");
    }
  }
}

// Purging one migration never touches another whose name it is a prefix of.
TEST_F(Injection, PurgingOneMigrationLeavesOthersKeysAlone) {
  write_config(s3_service("source", "source", stack_->env("S3_SOURCE_ENDPOINT")) +
               s3_service("target", "target", stack_->env("S3_TARGET_ENDPOINT")));
  blobferry::S3Storage source(bt::s3rver_service("source", stack_->env("S3_SOURCE_ENDPOINT")));
  bt::put_object(source, "purge/one", "1");
  for (const char* name : {"a", "ab", "a.b", "a-b", "a_"}) {
    const bt::CliResult r = cli_->run({"enqueue", "--migration", name, "--from", "source", "--to", "target",
                                       "--source", "listing", "--prefix", "purge/"});
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.all();
  }
  blobferry::RedisClient redis(blobferry::RedisUrl::parse(stack_->redis_url()));
  auto keys_of = [&redis](const std::string& migration) {
    std::set<std::string> keys;
    for (const auto& [key, value] : bt::dump_redis(redis)) {
      if (key.rfind("bf:{" + migration + "}:", 0) == 0) keys.insert(key);
    }
    return keys;
  };
  const std::set<std::string> before_ab = keys_of("ab");
  ASSERT_FALSE(before_ab.empty());
  const std::set<std::string> before_dot = keys_of("a.b");

  expect_refused(cli_->run({"cancel", "--migration", "a*", "--purge", "--yes"}), "cancel a*");
  EXPECT_EQ(keys_of("ab"), before_ab);
  const bt::CliResult purge = cli_->run({"cancel", "--migration", "a", "--purge", "--yes"});
  ASSERT_EQ(purge.exit_code, 0) << purge.all();
  EXPECT_TRUE(keys_of("a").empty());
  EXPECT_EQ(keys_of("ab"), before_ab);
  EXPECT_EQ(keys_of("a.b"), before_dot);
  EXPECT_FALSE(keys_of("a-b").empty());
  EXPECT_FALSE(keys_of("a_").empty());
}

// Manifest keys are object keys: ones that would leave a Disk root fail with
// their reason, nothing appears outside the root, the good keys still copy.
TEST_F(Injection, ManifestKeysNeverEscapeADiskRoot) {
  const std::string src = scratch_->file("src");
  fs::create_directories(src + "/ok");
  // A key without '/' in its first four characters suits both layouts.
  std::ofstream(src + "/fine.txt") << "fine";
  fs::create_directories(scratch_->file("etc"));
  std::ofstream(scratch_->file("etc/passwd")) << "decoy";
  write_config(disk_service("src", src, "plain") + disk_service("plain", scratch_->file("plain"), "plain") +
               disk_service("rails", scratch_->file("rails"), "activestorage"));

  const std::vector<std::string> bad_keys = {"../etc/passwd", "../../etc/passwd", scratch_->file("etc/passwd"),
                                             "ok/../../etc/passwd", std::string("fine.txt\0x", 10), "..",
                                             "./../etc/passwd"};
  const std::vector<std::string> literal_keys = {"%2e%2e/%2e%2e/etc/passwd", kSqlName};
  const std::string manifest = scratch_->file("keys.jsonl");
  {
    std::ofstream out(manifest);
    for (const std::string& key : bad_keys) out << "{\"key\":" << json_quoted(key) << "}\n";
    for (const std::string& key : literal_keys) out << "{\"key\":" << json_quoted(key) << "}\n";
    for (const std::string& key : shell_payloads(pwned_dir())) out << "{\"key\":" << json_quoted(key) << "}\n";
    out << "{\"key\":\"fine.txt\"}\n";
  }
  // Everything but the two roots and the CLI's output files must stay as it is.
  auto outside_the_roots = [this] {
    std::set<std::string> files;
    for (const std::string& file : files_under(scratch_->path())) {
      if (file.rfind("plain/", 0) != 0 && file.rfind("rails/", 0) != 0 && file.rfind("cli/", 0) != 0) files.insert(file);
    }
    return files;
  };
  const std::set<std::string> outside_before = outside_the_roots();
  const fs::path above_scratch = fs::path(scratch_->path()).parent_path() / "etc" / "passwd";
  const bool above_existed = fs::exists(above_scratch);
  for (const char* target : {"plain", "rails"}) {
    const bt::CliResult r = cli_->run({"migrate", "--from", "src", "--to", target, "--source", "manifest",
                                       "--manifest", manifest, "--migration", std::string("manifest-") + target,
                                       "--no-progress", "--retries", "0"});
    EXPECT_EQ(r.exit_code, 1) << target << ": the escaping keys fail, the rest copies: " << r.all();
    const std::set<std::string> copied = files_under(scratch_->file(target));
    EXPECT_EQ(copied.size(), 1u) << target << ": only fine.txt exists on the source";
    EXPECT_EQ(outside_the_roots(), outside_before) << target;
    EXPECT_EQ(fs::exists(above_scratch), above_existed) << above_scratch;
    std::ifstream decoy(scratch_->file("etc/passwd"));
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(decoy), {}), "decoy");
  }
}

// Paperclip's table and attachment names become SQL identifiers: quoted, so a
// table whose name is an injection is just a table, and an unknown one is a
// one-line error that leaves the blob table alone.
TEST_F(Injection, PaperclipTableNamesAreQuotedIdentifiers) {
  write_config(s3_service("source", "source", stack_->env("S3_SOURCE_ENDPOINT")) +
               s3_service("target", "target", stack_->env("S3_TARGET_ENDPOINT")));
  bt::BlobFixture table(stack_->database_url(), bt::BlobSchema::kRails7);
  std::vector<bt::SeedRow> rows = table.add_rows(3, "2024-05-01 12:00:00");
  const std::string odd_table = "users\"; DROP TABLE active_storage_blobs; --";
  const std::string quoted = "\"users\"\"; DROP TABLE active_storage_blobs; --\"";
  table.db().exec("DROP TABLE IF EXISTS active_storage_attachments");
  table.db().exec("CREATE TABLE active_storage_attachments (id bigserial PRIMARY KEY, name varchar NOT NULL, "
                  "record_type varchar NOT NULL, record_id bigint NOT NULL, blob_id bigint NOT NULL, "
                  "created_at timestamp(6) NOT NULL)");
  table.db().exec("DROP TABLE IF EXISTS " + quoted);
  table.db().exec("CREATE TABLE " + quoted +
                  " (id bigserial primary key, avatar_file_name varchar, avatar_content_type varchar, "
                  "avatar_file_size bigint, avatar_updated_at timestamp)");
  table.db().exec("INSERT INTO " + quoted +
                  " (avatar_file_name, avatar_content_type, avatar_file_size, avatar_updated_at) VALUES "
                  "('a.png', 'image/png', 10, now()), ('b.png', 'image/png', 20, now())");

  const std::vector<std::string> paperclip = {"migrate", "--from", "source", "--to", "target", "--source",
                                              "paperclip", "--attachment", "avatar", "--record-type", "User",
                                              "--dry-run", "--migration", "paperclip-names", "--table"};
  std::vector<std::string> args = paperclip;
  args.push_back(odd_table);
  const bt::CliResult r = cli_->run(args);
  EXPECT_EQ(r.exit_code, 0) << "the odd table is read as a table: " << r.all();
  EXPECT_NE(r.all().find("2 User records"), std::string::npos) << r.all();

  for (const std::string& missing : {std::string("nosuch\"; DROP TABLE active_storage_blobs; --"),
                                     std::string("users; DROP TABLE active_storage_blobs"), shell_payloads(pwned_dir())[0]}) {
    args = paperclip;
    args.push_back(missing);
    expect_refused(cli_->run(args), "--table " + missing);
  }
  args = paperclip;
  args.push_back(odd_table);
  args[8] = "avatar_file_name; DROP TABLE active_storage_blobs; --";
  expect_refused(cli_->run(args), "--attachment with SQL");
  EXPECT_EQ(table.row_count(), static_cast<long long>(rows.size())) << "the blob table survived";
}
