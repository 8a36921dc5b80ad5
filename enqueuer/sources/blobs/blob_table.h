// Read-only access to active_storage_blobs in short keyset pages, plus the
// batched service_name switch; never touches any other application table.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/db/pg_connection.h"

namespace blobferry {

struct BlobRow {
  std::string id;  // integer or uuid, as text
  std::string key;
  std::uint64_t byte_size = 0;
  std::string checksum;  // base64 MD5; empty when NULL (Rails 7.1 allows it)
  std::string content_type;
  std::string service_name;
};

struct ServiceCount {
  std::string service_name;  // empty for a table without the column
  long long blobs = 0;
  std::uint64_t bytes = 0;
};

// Which rows a migration covers; empty fields do not filter.
struct BlobFilter {
  std::string service_name;  // --from; ignored on Rails 5.2/6.0 tables (no column)
  std::string key_prefix;
  std::string created_before;  // timestamp text PostgreSQL parses
  std::string created_after;
  std::optional<std::pair<long long, long long>> id_range;  // inclusive, integer ids only
  int shard_index = 0;  // --shard i/n: rows whose id hashes to i modulo n
  int shard_count = 1;
  // Set by validate/switch, never by users:
  std::string unverified_in;     // only rows not yet verified for this migration
  bool key_not_base36_next = false;  // only keys whose character after key_prefix is not [0-9a-z]
};

class BlobTable {
 public:
  // Reads the table's columns. Throws Error kConfig when the table or one of
  // the ActiveStorage columns (id, key, byte_size, checksum) is missing.
  explicit BlobTable(PgConnection& db);

  bool has_service_name() const { return has_service_name_; }
  bool uuid_ids() const { return uuid_ids_; }

  std::vector<ServiceCount> count_by_service();
  // Rows and bytes the filter selects (for --dry-run).
  ServiceCount count(const BlobFilter& filter);

  // Up to `limit` rows with id > after_id (from the start when empty), by id.
  // One short read-only statement, no transaction held.
  std::vector<BlobRow> page(const BlobFilter& filter, const std::string& after_id, int limit);

  // Sets service_name = to for those of `ids` that are still on `from` and
  // that validate verified for `migration`, in one short transaction.
  // Returns the rows changed.
  long long switch_verified(const std::vector<std::string>& ids, const std::string& from, const std::string& to,
                            const std::string& migration);
  // How many of `ids` validate verified for `migration`.
  long long count_verified(const std::vector<std::string>& ids, const std::string& migration);

 private:
  std::string where_clause(const BlobFilter& filter, PgParams& params) const;
  std::string id_array_type() const { return uuid_ids_ ? "uuid[]" : "bigint[]"; }

  PgConnection& db_;
  bool has_service_name_ = false;
  bool uuid_ids_ = false;
  bool has_content_type_ = false;
  bool has_created_at_ = false;
};

// ActiveStorage keys are lowercase base36: the key space splits evenly on
// their first character.
inline constexpr char kActiveStorageKeyAlphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";

// A blob id as the job model carries it: integer ids only (uuids stay in the table).
std::optional<std::int64_t> integer_blob_id(const std::string& id);

}  // namespace blobferry
