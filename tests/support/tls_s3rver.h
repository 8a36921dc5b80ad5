// An s3rver that speaks HTTPS with a certificate from a throwaway test CA, for TLS tests.
#pragma once

#include <string>

#include "tests/support/child_process.h"

namespace blobferry::testing {

// PEM files a test CA issued: ca_cert signs server_cert (for 127.0.0.1 and localhost).
struct TestCertificates {
  std::string ca_cert;
  std::string server_cert;
  std::string server_key;
};

// Creates a CA named common_name and a server certificate it signs, as PEM
// files in dir (openssl CLI, P-256 keys, valid two days). Throws
// std::runtime_error naming the openssl step that failed.
TestCertificates make_test_certificates(const std::string& dir, const std::string& common_name);

class TlsS3rver {
 public:
  // Starts s3rver on a free loopback port with certificates' server pair,
  // serving `bucket` from dir/data, and waits until it accepts TLS connections.
  // Throws std::runtime_error with its log tail when it does not start.
  TlsS3rver(const std::string& dir, const std::string& bucket, const TestCertificates& certificates);
  // ChildProcess stops it (SIGKILL) when this goes.

  std::string endpoint() const { return "https://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  const std::string& data_dir() const { return data_dir_; }

 private:
  ChildProcess start(const std::string& bucket, const TestCertificates& certificates);

  std::string dir_;
  std::string data_dir_;
  int port_ = 0;
  ChildProcess process_;
};

}  // namespace blobferry::testing
