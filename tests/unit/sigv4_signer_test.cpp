// SigV4 signing against the official AWS test suite (read from the shared
// folder at test time) and against vectors hard-coded from AWS's documentation.
#include "common/storage/s3/sigv4_signer.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/base/digest.h"
#include "common/base/encoding.h"

using blobferry::AwsCredentials;
using blobferry::HttpHeaderList;
using blobferry::QueryParameters;
using blobferry::RequestToSign;
using blobferry::SigV4Options;
using blobferry::SigV4Signer;

namespace {

namespace fs = std::filesystem;

const fs::path kSuiteDir = BLOBFERRY_SOURCE_DIR "/../shared/testdata/aws-sig-v4-test-suite";

std::chrono::system_clock::time_point utc_time(int year, unsigned month, unsigned day, int hour,
                                               int minute, int second) {
  const std::chrono::sys_days date{std::chrono::year{year} / month / day};
  return date + std::chrono::hours{hour} + std::chrono::minutes{minute} + std::chrono::seconds{second};
}

const auto kSuiteTime = utc_time(2015, 8, 30, 12, 36, 0);

AwsCredentials suite_credentials() { return {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""}; }

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Parses a suite .req file: "METHOD path?query HTTP/1.1", header lines (a line
// starting with whitespace continues the previous header as another value),
// a blank line, then the body.
RequestToSign parse_suite_request(const std::string& text) {
  RequestToSign request;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  const auto method_end = line.find(' ');
  const auto target_end = line.rfind(" HTTP/");
  request.method = line.substr(0, method_end);
  const std::string target = line.substr(method_end + 1, target_end - method_end - 1);
  const auto question = target.find('?');
  request.path = target.substr(0, question);
  if (question != std::string::npos) {
    std::istringstream query(target.substr(question + 1));
    std::string pair;
    while (std::getline(query, pair, '&')) {
      const auto equals = pair.find('=');
      if (equals == std::string::npos) {
        request.query.emplace_back(pair, "");
      } else {
        request.query.emplace_back(pair.substr(0, equals), pair.substr(equals + 1));
      }
    }
  }
  while (std::getline(in, line) && !line.empty()) {
    if (line.front() == ' ' || line.front() == '\t') {
      request.headers.emplace_back(request.headers.back().first, line);
      continue;
    }
    const auto colon = line.find(':');
    request.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  std::string body;
  std::getline(in, body, '\0');
  request.payload_hash = blobferry::hex_encode(blobferry::sha256_of(body));
  return request;
}

struct SuiteCase {
  std::string name;
  fs::path dir;
};

std::vector<SuiteCase> suite_cases() {
  std::vector<SuiteCase> cases;
  if (!fs::is_directory(kSuiteDir)) return cases;
  for (const auto& entry : fs::recursive_directory_iterator(kSuiteDir)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    if (fs::exists(entry.path() / (name + ".req"))) cases.push_back({name, entry.path()});
  }
  std::sort(cases.begin(), cases.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return cases;
}

}  // namespace

TEST(SigV4SignerSuite, EveryCaseOfTheAwsTestSuite) {
  const std::vector<SuiteCase> cases = suite_cases();
  if (cases.empty()) GTEST_SKIP() << "AWS SigV4 test suite not found at " << kSuiteDir;
  // The generic suite normalises paths; S3 never does (see the S3 tests below).
  const SigV4Signer signer(suite_credentials(), "us-east-1", "service", SigV4Options{.normalize_path = true});
  for (const SuiteCase& suite_case : cases) {
    SCOPED_TRACE(suite_case.name);
    const fs::path base = suite_case.dir / suite_case.name;
    const RequestToSign request = parse_suite_request(read_file(base.string() + ".req"));
    const auto signature = signer.sign(request, kSuiteTime);
    EXPECT_EQ(signature.canonical_request, read_file(base.string() + ".creq"));
    EXPECT_EQ(signature.string_to_sign, read_file(base.string() + ".sts"));
    EXPECT_EQ(signature.authorization, read_file(base.string() + ".authz"));
  }
  // The suite has 31 cases; fewer means the walk above missed some folders.
  EXPECT_GE(cases.size(), 31u);
}

TEST(SigV4Signer, GetVanillaWithoutTheSuiteFolder) {
  const SigV4Signer signer(suite_credentials(), "us-east-1", "service");
  RequestToSign request{.method = "GET",
                        .path = "/",
                        .query = {},
                        .headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}},
                        .payload_hash = std::string(SigV4Signer::kEmptyPayloadHash)};
  EXPECT_EQ(signer.sign(request, kSuiteTime).authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

// The worked example "GET Object" of the S3 documentation (sig-v4-header-based-auth).
TEST(SigV4Signer, S3DocumentationGetObjectExample) {
  const SigV4Signer signer({"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""},
                           "us-east-1", "s3");
  RequestToSign request{.method = "GET",
                        .path = "/test.txt",
                        .query = {},
                        .headers = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}},
                        .payload_hash = std::string(SigV4Signer::kEmptyPayloadHash)};
  const auto signature = signer.sign_s3_request(request, utc_time(2013, 5, 24, 0, 0, 0));
  EXPECT_EQ(signature.canonical_request,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(signature.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(signature.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  ASSERT_FALSE(request.headers.empty());
  EXPECT_EQ(request.headers.back().first, "Authorization");
  EXPECT_EQ(request.headers.back().second, signature.authorization);
}

TEST(SigV4Signer, S3KeysAreEncodedOnceAndNeverNormalised) {
  const SigV4Signer signer(suite_credentials(), "us-east-1", "s3");
  RequestToSign request{.method = "GET",
                        .path = "/bucket/a//b/./c/../d e+f%.txt",
                        .query = {},
                        .headers = {{"Host", "127.0.0.1:4568"}},
                        .payload_hash = std::string(SigV4Signer::kUnsignedPayload)};
  const auto signature = signer.sign(request, kSuiteTime);
  EXPECT_EQ(signature.canonical_request.substr(0, signature.canonical_request.find('\n', 4)),
            "GET\n/bucket/a//b/./c/../d%20e%2Bf%25.txt");
}

TEST(SigV4Signer, SessionTokenIsAddedAndSigned) {
  const SigV4Signer signer({"AKIDEXAMPLE", "secret", "the-token"}, "auto", "s3");
  RequestToSign request{.method = "HEAD",
                        .path = "/bucket/key",
                        .query = {},
                        .headers = {{"Host", "account.r2.cloudflarestorage.com"}},
                        .payload_hash = std::string(SigV4Signer::kEmptyPayloadHash)};
  const auto signature = signer.sign_s3_request(request, kSuiteTime);
  EXPECT_NE(signature.canonical_request.find("\nx-amz-security-token:the-token\n"), std::string::npos);
  EXPECT_EQ(signature.signed_headers, "host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
  EXPECT_NE(signature.authorization.find("/20150830/auto/s3/aws4_request"), std::string::npos);
}

TEST(SigV4Signer, SignatureDependsOnTheSecretAndTheTime) {
  RequestToSign request{.method = "GET",
                        .path = "/",
                        .query = {},
                        .headers = {{"Host", "example.amazonaws.com"}},
                        .payload_hash = std::string(SigV4Signer::kEmptyPayloadHash)};
  const SigV4Signer signer(suite_credentials(), "us-east-1", "s3");
  const SigV4Signer other_secret({"AKIDEXAMPLE", "another-secret", ""}, "us-east-1", "s3");
  const auto base = signer.sign(request, kSuiteTime).signature;
  EXPECT_NE(base, other_secret.sign(request, kSuiteTime).signature);
  EXPECT_NE(base, signer.sign(request, kSuiteTime + std::chrono::seconds{1}).signature);
  EXPECT_EQ(base, signer.sign(request, kSuiteTime).signature);
}

// The derived key is kept for the last date: a signer that signed on one day
// and then the next (and back) must sign exactly as a fresh signer would,
// never with the other day's key.
TEST(SigV4Signer, KeptSigningKeyFollowsTheDate) {
  RequestToSign request{.method = "GET",
                        .path = "/",
                        .query = {},
                        .headers = {{"Host", "example.amazonaws.com"}},
                        .payload_hash = std::string(SigV4Signer::kEmptyPayloadHash)};
  const auto next_day = kSuiteTime + std::chrono::hours{24};
  const auto fresh = [&](std::chrono::system_clock::time_point when) {
    return SigV4Signer(suite_credentials(), "us-east-1", "s3").sign(request, when).signature;
  };
  const SigV4Signer signer(suite_credentials(), "us-east-1", "s3");
  const SigV4Signer copy = signer;  // shares the kept key, same secret
  for (const auto when : {kSuiteTime, kSuiteTime, next_day, kSuiteTime, next_day, next_day}) {
    EXPECT_EQ(signer.sign(request, when).signature, fresh(when));
    EXPECT_EQ(copy.sign(request, when).signature, fresh(when));
  }
  EXPECT_NE(fresh(kSuiteTime), fresh(next_day));
}

TEST(SigV4Signer, CanonicalQueryStringEncodesAndSorts) {
  const QueryParameters query = {{"prefix", "a b/ሴ"}, {"list-type", "2"}, {"uploads", ""},
                                 {"continuation-token", "1/x+y=="}};
  EXPECT_EQ(SigV4Signer::canonical_query_string(query),
            "continuation-token=1%2Fx%2By%3D%3D&list-type=2&prefix=a%20b%2F%E1%88%B4&uploads=");
}

TEST(SigV4Signer, AmzDateIsUtcBasicFormat) {
  EXPECT_EQ(SigV4Signer::amz_date(kSuiteTime), "20150830T123600Z");
}
