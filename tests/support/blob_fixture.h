// An active_storage_blobs table for integration tests: created in a fresh
// database, seeded in multi-row INSERTs, optionally with real objects behind it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/db/pg_connection.h"
#include "common/storage/storage.h"

namespace blobferry::testing {

enum class BlobSchema {
  kRails7,           // bigserial ids, service_name (ops/sample-data.sh's table)
  kRails7Uuid,       // uuid ids
  kRails60,          // no service_name column (Rails 5.2 and 6.0)
  kNotActiveStorage  // a table of that name without byte_size and checksum
};

struct SeedRow {
  std::string id;  // filled by insert()
  std::string key;
  std::uint64_t byte_size = 0;
  std::string checksum;  // base64 MD5
  std::string created_at;  // "YYYY-MM-DD HH:MM:SS", UTC
  std::string service_name = "source";
};

class BlobFixture {
 public:
  // Creates database `name` on the server of admin_url and returns its URL.
  static std::string create_database(const std::string& admin_url, const std::string& name);

  // Creates active_storage_blobs (dropping an older one) in database_url.
  BlobFixture(const std::string& database_url, BlobSchema schema, std::uint64_t seed = 42);

  PgConnection& db() { return db_; }
  std::mt19937_64& rng() { return rng_; }

  // Inserts rows in multi-row INSERTs of 1,000 and fills their ids.
  void insert(std::vector<SeedRow>& rows);
  // n rows with random keys and sizes and no object behind them.
  std::vector<SeedRow> add_rows(std::size_t n, const std::string& created_at,
                                const std::string& service_name = "source");
  // One row per size, its random bytes uploaded to storage under a random key.
  std::vector<SeedRow> add_objects(Storage& storage, const std::vector<std::uint64_t>& sizes,
                                   const std::string& created_at);

  // id -> service_name ("" without the column), every row.
  std::map<std::string, std::string> service_names();
  long long row_count();
  // Logs every UPDATE of a blob row into a table switch_log (blob_id,
  // old_service, new_service), so a row switched twice shows as two lines.
  void log_switches();

 private:
  PgConnection db_;
  BlobSchema schema_;
  std::mt19937_64 rng_;
};

// 28 random lowercase base36 characters, like ActiveStorage's keys.
std::string random_blob_key(std::mt19937_64& rng);
std::string random_bytes(std::size_t size, std::mt19937_64& rng);
// "YYYY-MM-DD HH:MM:SS" in UTC, as ActiveStorage stores created_at.
std::string utc_text(std::chrono::system_clock::time_point time);
// Uploads bytes to storage under key with Content-MD5; returns the base64 MD5.
std::string put_object(Storage& storage, const std::string& key, const std::string& bytes);

}  // namespace blobferry::testing
