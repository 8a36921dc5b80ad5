// The secret audit: a whole migration (distributed and embedded, every
// command, failing cases included) run with distinctive credentials, and
// nothing it printed, reported, served or left in Redis may contain any of
// them, raw or base64-, URL- or JSON-encoded.
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/base/encoding.h"
#include "common/queue/redis_client.h"
#include "common/storage/s3/s3_storage.h"
#include "tests/support/blob_fixture.h"
#include "tests/support/blobferry_cli.h"
#include "tests/support/loopback_port.h"
#include "tests/support/redis_dump.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"
#include "tests/support/test_stack.h"

namespace bt = blobferry::testing;
using namespace std::chrono_literals;

namespace {

// Distinctive, and with the characters that change under base64 and URL encoding.
const std::map<std::string, std::string> kSecrets = {
    {"S3 secret key", "AuditS3cret/Kq7+Zx9=Wv"},
    {"S3 session token", "AuditSessionTok3n/Pm4+Yd8=="},
    {"S3 secret in storage.yml", "AuditFileS3cret/Hn2+Lr5="},
    {"Redis password", "AuditRedisPassw0rd-Tj6"},
    {"PostgreSQL password", "AuditPgPassw0rd-Bs3"},
};

std::string percent_encoded(const std::string& text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string json_escaped(std::string text) {
  for (std::size_t at = 0; (at = text.find('/', at)) != std::string::npos; at += 2) text.replace(at, 1, "\\/");
  return text;
}

// Every form a secret could take on its way out.
std::vector<std::string> forms_of(const std::string& secret) {
  std::vector<std::string> forms = {secret, blobferry::base64_encode(secret), percent_encoded(secret),
                                    json_escaped(secret)};
  // The middle of the secret alone: a truncated or partly masked print.
  forms.push_back(secret.substr(4, secret.size() - 8));
  return forms;
}

// What the run produced, by where it came from.
class Evidence {
 public:
  void add(const std::string& where, const std::string& text) { items_.emplace_back(where, text); }
  void add(const std::string& where, const bt::CliResult& r) {
    add(where + " stdout", r.out);
    add(where + " stderr", r.err);
  }

  // Every leak: the secret, the form and where it was, with some context.
  std::vector<std::string> leaks() const {
    std::vector<std::string> found;
    for (const auto& [name, secret] : kSecrets) {
      for (const std::string& form : forms_of(secret)) {
        for (const auto& [where, text] : items_) {
          const auto at = text.find(form);
          if (at == std::string::npos) continue;
          found.push_back(name + " (as '" + form + "') leaked in " + where + ": ..." +
                          text.substr(at > 80 ? at - 80 : 0, 200) + "...");
        }
      }
    }
    return found;
  }

  void expect_no_secret() const {
    std::size_t bytes = 0;
    for (const auto& [where, text] : items_) bytes += text.size();
    std::printf("[ audit ] %zu outputs, %zu bytes searched for %zu secrets in %zu forms each\n", items_.size(),
                bytes, kSecrets.size(), forms_of("0123456789abc").size());
    for (const std::string& leak : leaks()) ADD_FAILURE() << leak;
  }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

std::string with_password(const std::string& url, const std::string& scheme, const std::string& user,
                          const std::string& password) {
  return scheme + user + ":" + percent_encoded(password) + "@" + url.substr(scheme.size());
}

std::string s3_entry(const std::string& name, const std::string& bucket, const std::string& endpoint,
                     const std::string& credentials) {
  return name + ":\n  service: S3\n  access_key_id: S3RVER\n" + credentials + "  region: us-east-1\n  bucket: " +
         bucket + "\n  endpoint: " + endpoint + "\n  force_path_style: true\n\n";
}

std::string http_get(const std::string& url, const std::string& scratch) {
  bt::ChildOptions options;
  options.stdout_path = scratch + "/metrics.txt";
  bt::run_child({"/usr/bin/env", "curl", "-sS", "-m", "10", url}, options);
  std::ifstream file(options.stdout_path);
  return std::string(std::istreambuf_iterator<char>(file), {});
}

class SecretAudit : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = std::make_unique<bt::TestStack>(bt::StackOptions{.redis = true, .postgres = true, .s3 = true});
    scratch_ = std::make_unique<bt::TempDir>("bf-audit");
    protect_redis();
    cli_ = std::make_unique<bt::BlobferryCli>(*stack_, scratch_->path());
    cli_->set_env("REDIS_URL", redis_url_);
    cli_->set_env("DATABASE_URL", database_url_);
    cli_->set_env("AUDIT_S3_SECRET", kSecrets.at("S3 secret key"));
    cli_->set_env("AUDIT_S3_TOKEN", kSecrets.at("S3 session token"));
    cli_->set_env("BLOBFERRY_STORAGE_CONFIG", write_config());
  }

  // requirepass on the stack's Redis: every client from now on must AUTH.
  void protect_redis() {
    blobferry::RedisClient admin(blobferry::RedisUrl::parse(stack_->redis_url()));
    admin.command({"CONFIG", "SET", "requirepass", kSecrets.at("Redis password")});
    redis_url_ = with_password(stack_->redis_url(), "redis://", "", kSecrets.at("Redis password"));
    // Trust auth accepts any password, so the URL carries one the way production's does.
    database_url_ = stack_->database_url();
    database_url_.replace(database_url_.find("postgres@"), 9,
                          "postgres:" + percent_encoded(kSecrets.at("PostgreSQL password")) + "@");
  }

  std::string write_config() {
    const std::string from_env =
        "  secret_access_key: <%= ENV.fetch(\"AUDIT_S3_SECRET\") %>\n  session_token: <%= ENV[\"AUDIT_S3_TOKEN\"] %>\n";
    const std::string in_file = "  secret_access_key: \"" + kSecrets.at("S3 secret in storage.yml") + "\"\n";
    const std::string yaml = s3_entry("source", "source", stack_->env("S3_SOURCE_ENDPOINT"), from_env) +
                             s3_entry("target", "target", stack_->env("S3_TARGET_ENDPOINT"), in_file) +
                             s3_entry("missing_bucket", "no-such-bucket", stack_->env("S3_TARGET_ENDPOINT"), from_env) +
                             s3_entry("bad_endpoint", "target", "http://127.0.0.1:1", in_file) +
                             "local:\n  service: Disk\n  root: " + scratch_->file("disk") + "\n";
    const std::string path = scratch_->file("storage.yml");
    std::ofstream(path) << yaml;
    return path;
  }

  bt::CliResult run(const std::string& where, const std::vector<std::string>& args) {
    bt::CliResult r = cli_->run(args);
    evidence_.add(where + " (exit " + std::to_string(r.exit_code) + ")", r);
    return r;
  }

  nlohmann::json status_json(const std::string& migration) {
    const bt::CliResult r = run("status --json", {"status", "--migration", migration, "--json"});
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  std::unique_ptr<bt::TestStack> stack_;
  std::unique_ptr<bt::TempDir> scratch_;
  std::unique_ptr<bt::BlobferryCli> cli_;
  std::string redis_url_;
  std::string database_url_;
  Evidence evidence_;
};

}  // namespace

TEST_F(SecretAudit, NoCredentialAppearsAnywhere) {
  blobferry::S3Storage source(bt::s3rver_service("source", stack_->env("S3_SOURCE_ENDPOINT")));
  bt::BlobFixture table(stack_->database_url(), bt::BlobSchema::kRails7);
  std::vector<bt::SeedRow> rows = table.add_objects(source, {0, 10, 5000, 70000, 123}, "2024-05-01 12:00:00");
  // A blob whose object is gone: its failure travels through Redis, report and logs.
  std::vector<bt::SeedRow> missing = {{.id = "", .key = "missing-object-key", .byte_size = 3,
                                       .checksum = bt::md5_base64("abc"), .created_at = "2024-05-01 12:00:00"}};
  table.insert(missing);
  const std::string json_debug[] = {"--log-format", "json", "--log-level", "debug"};
  auto with = [](std::vector<std::string> args, std::initializer_list<std::string> more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };

  run("services", {"services", "--log-level", "debug"});
  ASSERT_EQ(run("enqueue", with({"enqueue", "--migration", "audit", "--from", "source", "--to", "target"},
                                {json_debug[0], json_debug[1], json_debug[2], json_debug[3]}))
                .exit_code,
            0);

  // A JSON-logging worker serving metrics, scraped once the work is done.
  const int metrics_port = bt::free_loopback_port();
  bt::ChildProcess worker = cli_->start({"worker", "--migration", "audit", "--concurrency", "2", "--metrics-addr",
                                         "127.0.0.1:" + std::to_string(metrics_port), "--log-format", "json",
                                         "--log-level", "debug", "--retries", "1", "--max-attempts", "1"});
  // Settled: nothing queued, scheduled or in flight, and every object has an outcome.
  const int objects = static_cast<int>(rows.size() + missing.size());
  auto settled = [objects](const nlohmann::json& s) {
    return s.is_object() && s.value("queued", -1) == 0 && s.value("scheduled", -1) == 0 &&
           s.value("in_flight", -1) == 0 && s.value("copied", 0) + s.value("skipped", 0) + s.value("failed", 0) >= objects;
  };
  const auto deadline = std::chrono::steady_clock::now() + 3min;
  while (std::chrono::steady_clock::now() < deadline && !settled(status_json("audit"))) {
    std::this_thread::sleep_for(300ms);
  }
  const std::string metrics = http_get("http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics", scratch_->path());
  EXPECT_NE(metrics.find("# TYPE"), std::string::npos) << "no metrics page scraped: " << metrics;
  evidence_.add("metrics page", metrics);
  worker.send_signal(SIGTERM);
  evidence_.add("worker (json, debug)", bt::finish(worker));

  // The failure retried by a text-logging worker.
  run("requeue", {"requeue", "--migration", "audit", "--log-level", "debug"});
  run("worker (text, debug)", {"worker", "--migration", "audit", "--exit-when-empty", "--log-level", "debug",
                               "--retries", "0", "--max-attempts", "1"});
  const nlohmann::json status = status_json("audit");
  EXPECT_EQ(status.value("copied", 0) + status.value("skipped", 0), static_cast<int>(rows.size())) << status.dump();
  EXPECT_GE(status.value("failed", 0), 1) << "the missing object must fail: " << status.dump();
  run("status (text)", {"status", "--migration", "audit"});
  run("report csv", {"report", "--migration", "audit", "--format", "csv"});
  run("report jsonl failed", {"report", "--migration", "audit", "--format", "jsonl", "--failed"});
  run("validate", {"validate", "--migration", "audit", "--log-level", "debug"});
  run("switch", {"switch", "--migration", "audit", "--log-level", "debug", "--log-format", "json"});

  // Embedded mode, and the failing cases: a missing bucket, an endpoint nobody
  // answers on, a Redis and a PostgreSQL that are not there.
  EXPECT_EQ(run("migrate", with({"migrate", "--from", "source", "--to", "local", "--migration", "audit-embedded",
                                 "--no-progress"},
                                {json_debug[0], json_debug[1], json_debug[2], json_debug[3]}))
                .exit_code,
            1)
      << "the missing object makes migrate exit 1";
  EXPECT_NE(run("migrate to a missing bucket", {"migrate", "--from", "source", "--to", "missing_bucket", "--source",
                                               "listing", "--no-progress", "--log-level", "debug"})
                .exit_code,
            0);
  EXPECT_NE(run("migrate to a bad endpoint", {"migrate", "--from", "source", "--to", "bad_endpoint", "--source",
                                             "listing", "--no-progress", "--log-level", "debug", "--retries", "0"})
                .exit_code,
            0);
  run("services with failures", {"services", "--log-format", "json"});
  const int nobody = bt::free_loopback_port();
  const std::string dead_redis = "redis://:" + percent_encoded(kSecrets.at("Redis password")) +
                                 "@127.0.0.1:" + std::to_string(nobody) + "/0";
  EXPECT_EQ(run("status with Redis down", {"status", "--migration", "audit", "--redis-url", dead_redis}).exit_code, 2);
  EXPECT_EQ(run("status with a wrong Redis password",
                {"status", "--migration", "audit", "--redis-url",
                 with_password(stack_->redis_url(), "redis://", "", "not-the-password")})
                .exit_code,
            2);
  const std::string dead_pg = "postgresql://postgres:" + percent_encoded(kSecrets.at("PostgreSQL password")) +
                              "@127.0.0.1:" + std::to_string(nobody) + "/blobferry";
  EXPECT_EQ(run("validate with PostgreSQL down", {"validate", "--migration", "audit", "--database-url", dead_pg})
                .exit_code,
            2);
  EXPECT_NE(run("services with PostgreSQL down", {"services", "--database-url", dead_pg}).exit_code, 0);

  // Everything the runs left in Redis, keys and values.
  blobferry::RedisClient redis(blobferry::RedisUrl::parse(redis_url_));
  const auto dump = bt::dump_redis(redis);
  EXPECT_GT(dump.size(), 3u) << "the migration left its records in Redis";
  for (const auto& [key, value] : dump) evidence_.add("Redis key name", key), evidence_.add("Redis value of " + key, value);

  evidence_.expect_no_secret();
}

// The search itself: each encoded form planted in an output is reported, and
// only there.
TEST(SecretAuditSearch, FindsEveryEncodedForm) {
  for (const auto& [name, secret] : kSecrets) {
    for (const std::string& form : forms_of(secret)) {
      Evidence planted;
      planted.add("clean output", "nothing to see");
      planted.add("planted output", "a log line with " + form + " inside");
      const std::vector<std::string> leaks = planted.leaks();
      ASSERT_FALSE(leaks.empty()) << name << " as " << form;
      for (const std::string& leak : leaks) EXPECT_NE(leak.find("leaked in planted output"), std::string::npos) << leak;
    }
  }
}
