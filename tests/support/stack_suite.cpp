// A GoogleTest fixture whose suite shares one Redis + PostgreSQL + s3rver stack and one scratch folder.
#include "tests/support/stack_suite.h"

#include "tests/support/blob_fixture.h"
#include "tests/support/test_services.h"

namespace blobferry::testing {

TestStack* StackSuite::stack_ = nullptr;
TempDir* StackSuite::scratch_ = nullptr;

void StackSuite::SetUpTestSuite() {
  stack_ = new TestStack({.redis = true, .postgres = true, .s3 = true});
  // Named after the suite, so a kept scratch folder says which test left it.
  const auto* suite = ::testing::UnitTest::GetInstance()->current_test_suite();
  scratch_ = new TempDir(std::string("bf-") + (suite ? suite->name() : "stack"));
}

void StackSuite::TearDownTestSuite() {
  delete scratch_;
  scratch_ = nullptr;
  delete stack_;
  stack_ = nullptr;
}

BlobferryCli StackSuite::cli() const { return BlobferryCli(*stack_, scratch_->path()); }

BlobferryCli StackSuite::cli(const std::string& database_url) const {
  BlobferryCli runner = cli();
  runner.set_env("DATABASE_URL", database_url);
  return runner;
}

std::string StackSuite::database(const std::string& name) const {
  return BlobFixture::create_database(stack_->database_url(), name);
}

std::unique_ptr<Storage> StackSuite::open_service(const std::string& name) const {
  return testing::open_service(*stack_, name);
}

}  // namespace blobferry::testing
