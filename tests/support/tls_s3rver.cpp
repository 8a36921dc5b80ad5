// An s3rver that speaks HTTPS with a certificate from a throwaway test CA, for TLS tests.
#include "tests/support/tls_s3rver.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/loopback_port.h"

namespace blobferry::testing {
namespace {

constexpr const char* kS3rver = BLOBFERRY_SOURCE_DIR "/.deps/node_modules/.bin/s3rver";
constexpr int kPortAttempts = 5;
constexpr auto kStartTimeout = std::chrono::seconds(60);

std::string read_text(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

void openssl(const std::string& dir, const std::string& step, std::vector<std::string> args) {
  args.insert(args.begin(), "openssl");
  args.insert(args.begin(), "/usr/bin/env");
  ChildOptions options;
  options.stderr_path = dir + "/openssl.log";
  const ChildExit exit = run_child(args, options);
  if (!exit.success()) {
    throw std::runtime_error("openssl " + step + " failed (" + exit.describe() + "): " + read_text(options.stderr_path));
  }
}

}  // namespace

TestCertificates make_test_certificates(const std::string& dir, const std::string& common_name) {
  std::filesystem::create_directories(dir);
  const std::string ca_key = dir + "/ca.key";
  const std::string csr = dir + "/server.csr";
  const std::string extensions = dir + "/server.ext";
  TestCertificates files{dir + "/ca.pem", dir + "/server.pem", dir + "/server.key"};
  const std::vector<std::string> p256 = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};

  std::vector<std::string> ca = {"req", "-x509", "-days", "2", "-subj", "/CN=" + common_name, "-keyout", ca_key,
                                 "-out", files.ca_cert, "-addext", "basicConstraints=critical,CA:TRUE",
                                 "-addext", "keyUsage=critical,keyCertSign,cRLSign"};
  ca.insert(ca.begin() + 2, p256.begin(), p256.end());
  openssl(dir, "req (CA)", ca);

  std::vector<std::string> request = {"req", "-subj", "/CN=127.0.0.1", "-keyout", files.server_key, "-out", csr};
  request.insert(request.begin() + 1, p256.begin(), p256.end());
  openssl(dir, "req (server)", request);

  std::ofstream(extensions) << "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                               "basicConstraints=CA:FALSE\n"
                               "keyUsage=critical,digitalSignature\n"
                               "extendedKeyUsage=serverAuth\n";
  openssl(dir, "x509 (sign)", {"x509", "-req", "-days", "2", "-in", csr, "-CA", files.ca_cert, "-CAkey", ca_key,
                               "-CAcreateserial", "-extfile", extensions, "-out", files.server_cert});
  return files;
}

TlsS3rver::TlsS3rver(const std::string& dir, const std::string& bucket, const TestCertificates& certificates)
    : dir_(dir), data_dir_(dir + "/data"), process_(start(bucket, certificates)) {}

ChildProcess TlsS3rver::start(const std::string& bucket, const TestCertificates& certificates) {
  std::filesystem::create_directories(data_dir_);
  const std::string log = dir_ + "/s3rver.log";
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    port_ = free_loopback_port();
    ChildOptions options;
    options.env["NODE_OPTIONS"] = "--openssl-legacy-provider";
    options.stdout_path = log;
    options.stderr_path = dir_ + "/s3rver.err";
    ChildProcess child({kS3rver, "--directory", data_dir_, "--port", std::to_string(port_), "--address",
                        "127.0.0.1", "--configure-bucket", bucket, "--key", certificates.server_key, "--cert",
                        certificates.server_cert, "--silent"},
                       options);
    const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (child.wait_for(std::chrono::milliseconds(0))) break;  // exited: port taken or bad files
      if (accepts_connections(port_)) return child;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!child.exit()) {
      throw std::runtime_error("s3rver with TLS did not listen on port " + std::to_string(port_) + ": " +
                               read_text(options.stderr_path));
    }
  }
  throw std::runtime_error("s3rver with TLS exited on " + std::to_string(kPortAttempts) +
                           " ports: " + read_text(dir_ + "/s3rver.err"));
}

}  // namespace blobferry::testing
