// Which blobs `validate` proved are on the target: one of blobferry's own
// tables (with blobferry_paperclip_blobs), beside the application's, never
// inside them.
#pragma once

#include <string>
#include <vector>

#include "common/db/pg_connection.h"

namespace blobferry {

class VerificationStore {
 public:
  static constexpr const char* kTable = "blobferry_verified_blobs";

  // Creates the table when missing. Throws Error kConfig when the database
  // user may not, naming the statement an administrator can run instead.
  explicit VerificationStore(PgConnection& db);

  // Records blob ids as verified for the migration, in one short statement.
  void mark(const std::string& migration, const std::vector<std::string>& blob_ids);
  long long count(const std::string& migration);
  // Forgets every verification of the migration (validate --recheck).
  long long forget(const std::string& migration);

  static std::string create_statement();
  // count() for readers that must not create the table (status, the page):
  // 0 while no validate has created it.
  static long long count_if_created(PgConnection& db, const std::string& migration);

 private:
  static long long count_rows(PgConnection& db, const std::string& migration);

  PgConnection& db_;
};

}  // namespace blobferry
