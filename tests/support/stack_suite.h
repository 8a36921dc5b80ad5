// A GoogleTest fixture whose suite shares one Redis + PostgreSQL + s3rver stack and one scratch folder.
#pragma once

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "common/storage/storage.h"
#include "tests/support/blobferry_cli.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_stack.h"

namespace blobferry::testing {

// Starting the servers takes seconds, so a suite starts them once; each test
// keeps apart from the others by its own database and migration names.
class StackSuite : public ::testing::Test {
 public:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

 protected:
  // The binary with the stack's environment; its output files go under the scratch folder.
  BlobferryCli cli() const;
  // The same, with DATABASE_URL set to `database_url`.
  BlobferryCli cli(const std::string& database_url) const;
  // A fresh database `name` on the stack's PostgreSQL; its URL.
  std::string database(const std::string& name) const;
  // A service of the stack's storage.yml, opened.
  std::unique_ptr<Storage> open_service(const std::string& name) const;

  static TestStack* stack_;
  static TempDir* scratch_;
};

}  // namespace blobferry::testing
