// TLS to S3 endpoints: s3rver serving HTTPS with a certificate from a test CA.
// Verification is on by default, an untrusted certificate is a one-line
// configuration error naming the endpoint and the fix, `ssl_ca_bundle:` makes
// it pass, plain http:// keeps working, and turning verification off is never silent.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/storage/s3/s3_storage.h"
#include "tests/support/blob_fixture.h"
#include "tests/support/blobferry_cli.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_services.h"
#include "tests/support/test_stack.h"
#include "tests/support/tls_s3rver.h"

namespace bt = blobferry::testing;

namespace {

constexpr const char* kBucket = "secure";

class Tls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = std::make_unique<bt::TestStack>(bt::StackOptions{.s3 = true});
    certs_dir_ = std::make_unique<bt::TempDir>("blobferry-tls");
    trusted_ = bt::make_test_certificates(certs_dir_->file("ca"), "blobferry test CA");
    // A second CA that did not sign the server's certificate.
    other_ = bt::make_test_certificates(certs_dir_->file("other"), "some other CA");
    server_ = std::make_unique<bt::TlsS3rver>(certs_dir_->file("server"), kBucket, trusted_);
    seed_source();
  }
  static void TearDownTestSuite() {
    server_.reset();
    certs_dir_.reset();
    stack_.reset();
  }

  // A few objects on the (plain http) source bucket to copy over TLS.
  static void seed_source() {
    blobferry::S3Storage source(bt::s3rver_service("source", stack_->env("S3_SOURCE_ENDPOINT")));
    std::mt19937_64 rng(7);
    for (int i = 0; i < 3; ++i) {
      const std::string key = "tls/" + bt::random_blob_key(rng);
      const std::string bytes = bt::random_bytes(1000 + i * 4096, rng);
      bt::put_object(source, key, bytes);
      seeded_[key] = bytes;
    }
  }

  void SetUp() override {
    scratch_ = std::make_unique<bt::TempDir>();
    cli_ = std::make_unique<bt::BlobferryCli>(*stack_, scratch_->path());
    cli_->set_env("BLOBFERRY_STORAGE_CONFIG", write_config());
  }

  static std::string s3_entry(const std::string& name, const std::string& bucket, const std::string& endpoint,
                              const std::string& extra = "") {
    return name + ":\n  service: S3\n  access_key_id: S3RVER\n  secret_access_key: S3RVER\n  region: us-east-1\n" +
           "  bucket: " + bucket + "\n  endpoint: " + endpoint + "\n  force_path_style: true\n" + extra + "\n";
  }

  std::string write_config() {
    const std::string https = server_->endpoint();
    const std::string yaml =
        s3_entry("source", "source", stack_->env("S3_SOURCE_ENDPOINT")) +
        s3_entry("target", "target", stack_->env("S3_TARGET_ENDPOINT")) +
        s3_entry("untrusted", kBucket, https) +
        s3_entry("wrong_ca", kBucket, https, "  ssl_ca_bundle: " + other_.ca_cert + "\n") +
        s3_entry("trusted", kBucket, https, "  ssl_ca_bundle: " + trusted_.ca_cert + "\n") +
        s3_entry("trusted_by_name", kBucket, "https://localhost:" + std::to_string(server_->port()),
                 "  ssl_ca_bundle: " + trusted_.ca_cert + "\n") +
        s3_entry("unverified", kBucket, https, "  ssl_verify_peer: false\n");
    const std::string path = scratch_->file("storage.yml");
    std::ofstream(path) << yaml;
    return path;
  }

  // The line of `services` output that describes service name.
  static std::string services_line(const std::string& out, const std::string& name) {
    for (const std::string& line : bt::non_empty_lines(out)) {
      if (line.rfind("  " + name + " ", 0) == 0) return line;
    }
    return "";
  }

  // An untrusted certificate: exit 2, and one line that names the endpoint and the fix.
  void expect_trust_error(const bt::CliResult& r) {
    EXPECT_EQ(r.exit_code, 2) << r.all();
    std::vector<std::string> lines;
    for (const std::string& line : bt::non_empty_lines(r.err)) {
      if (line.find("ssl_ca_bundle") != std::string::npos) lines.push_back(line);
    }
    ASSERT_EQ(lines.size(), 1u) << "want one error line naming ssl_ca_bundle: " << r.all();
    std::printf("[ tls ] %s\n", lines[0].c_str());
    EXPECT_NE(lines[0].find("127.0.0.1:" + std::to_string(server_->port())), std::string::npos) << lines[0];
    EXPECT_TRUE(nothing_stored()) << "bytes reached the server despite the failed verification";
  }

  static bool nothing_stored() {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(server_->data_dir())) {
      if (entry.is_regular_file() && entry.path().string().find("/tls/") != std::string::npos) return false;
    }
    return true;
  }

  bt::CliResult migrate_to(const std::string& target, const std::string& migration) {
    return cli_->run({"migrate", "--from", "source", "--to", target, "--source", "listing", "--prefix", "tls/",
                      "--migration", migration, "--no-progress"});
  }

  // Every seeded object is on the HTTPS server with its bytes (read back with the CA trusted).
  void expect_copied_over_tls() {
    auto service = bt::s3rver_service(kBucket, server_->endpoint());
    service.ca_bundle = trusted_.ca_cert;
    blobferry::S3Storage secure(service);
    for (const auto& [key, bytes] : seeded_) {
      auto head = secure.head(key);
      ASSERT_TRUE(head.has_value()) << key;
      EXPECT_EQ(head->size, bytes.size()) << key;
    }
  }

  static std::unique_ptr<bt::TestStack> stack_;
  static std::unique_ptr<bt::TempDir> certs_dir_;
  static bt::TestCertificates trusted_;
  static bt::TestCertificates other_;
  static std::unique_ptr<bt::TlsS3rver> server_;
  static std::map<std::string, std::string> seeded_;
  std::unique_ptr<bt::TempDir> scratch_;
  std::unique_ptr<bt::BlobferryCli> cli_;
};

std::unique_ptr<bt::TestStack> Tls::stack_;
std::unique_ptr<bt::TempDir> Tls::certs_dir_;
bt::TestCertificates Tls::trusted_;
bt::TestCertificates Tls::other_;
std::unique_ptr<bt::TlsS3rver> Tls::server_;
std::map<std::string, std::string> Tls::seeded_;

}  // namespace

TEST_F(Tls, ServicesVerifiesCertificatesByDefault) {
  const bt::CliResult r = cli_->run({"services"});
  EXPECT_EQ(r.exit_code, 1) << "an unreachable service makes `services` exit 1: " << r.all();
  for (const char* name : {"untrusted", "wrong_ca"}) {
    const std::string line = services_line(r.out, name);
    EXPECT_NE(line.find("FAILED"), std::string::npos) << name << ": " << r.out;
    EXPECT_NE(line.find("ssl_ca_bundle"), std::string::npos) << name << ": " << line;
  }
  for (const char* name : {"trusted", "trusted_by_name", "source", "target"}) {
    EXPECT_NE(services_line(r.out, name).find(" ok"), std::string::npos) << name << ": " << r.out;
  }
}

TEST_F(Tls, CopyToAnUntrustedCertificateFailsWithTheFix) {
  expect_trust_error(migrate_to("untrusted", "tls-untrusted"));
}

TEST_F(Tls, CopyWithTheWrongCaFailsWithTheFix) {
  expect_trust_error(migrate_to("wrong_ca", "tls-wrong-ca"));
}

TEST_F(Tls, CopyFromAnUntrustedSourceFailsWithTheFix) {
  const bt::CliResult r = cli_->run({"migrate", "--from", "untrusted", "--to", "target", "--source", "listing",
                                     "--migration", "tls-from-untrusted", "--no-progress"});
  expect_trust_error(r);
}

TEST_F(Tls, SslCaBundleMakesTheCopyPass) {
  const bt::CliResult r = migrate_to("trusted", "tls-trusted");
  ASSERT_EQ(r.exit_code, 0) << r.all();
  expect_copied_over_tls();
  // And by host name: the certificate names localhost too.
  const bt::CliResult again = migrate_to("trusted_by_name", "tls-by-name");
  EXPECT_EQ(again.exit_code, 0) << again.all();
}

TEST_F(Tls, PlainHttpStillWorksForLocalServers) {
  const bt::CliResult r = migrate_to("target", "tls-plain-http");
  ASSERT_EQ(r.exit_code, 0) << r.all();
  blobferry::S3Storage target(bt::s3rver_service("target", stack_->env("S3_TARGET_ENDPOINT")));
  for (const auto& [key, bytes] : seeded_) EXPECT_TRUE(target.head(key).has_value()) << key;
}

TEST_F(Tls, TurningVerificationOffIsNeverSilent) {
  const bt::CliResult r = migrate_to("unverified", "tls-unverified");
  EXPECT_EQ(r.exit_code, 0) << r.all();
  EXPECT_NE(r.err.find("ssl_verify_peer: false"), std::string::npos)
      << "verification off must be said on every run: " << r.all();
  const bt::CliResult services = cli_->run({"services"});
  EXPECT_NE(services.all().find("ssl_verify_peer: false"), std::string::npos) << services.all();
}

TEST_F(Tls, NoEnvironmentVariableTurnsVerificationOff) {
  // Switches other tools honour must not turn blobferry's verification off.
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"NODE_TLS_REJECT_UNAUTHORIZED", "0"},
           {"CURL_SSL_NO_VERIFY", "1"},
           {"SSL_NO_VERIFY", "1"},
           {"GIT_SSL_NO_VERIFY", "1"},
           {"PYTHONHTTPSVERIFY", "0"}}) {
    cli_->set_env(name, value);
  }
  const bt::CliResult r = cli_->run({"services"});
  const std::string line = services_line(r.out, "untrusted");
  EXPECT_NE(line.find("FAILED"), std::string::npos) << r.out;
}
