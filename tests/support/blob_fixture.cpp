// An active_storage_blobs table for integration tests: created in a fresh
// database, seeded in multi-row INSERTs, optionally with real objects behind it.
#include "tests/support/blob_fixture.h"

#include <cstdlib>
#include <ctime>
#include <stdexcept>

#include "common/storage/byte_source.h"
#include "common/base/digest.h"
#include "common/base/encoding.h"

namespace blobferry::testing {
namespace {

constexpr std::size_t kRowsPerInsert = 1000;

const char* create_table_sql(BlobSchema schema) {
  switch (schema) {
    case BlobSchema::kRails7:
      return "CREATE TABLE active_storage_blobs (id bigserial PRIMARY KEY, key varchar NOT NULL, "
             "filename varchar NOT NULL, content_type varchar, metadata text, service_name varchar NOT NULL, "
             "byte_size bigint NOT NULL, checksum varchar, created_at timestamp(6) NOT NULL)";
    case BlobSchema::kRails7Uuid:
      return "CREATE TABLE active_storage_blobs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
             "key varchar NOT NULL, filename varchar NOT NULL, content_type varchar, metadata text, "
             "service_name varchar NOT NULL, byte_size bigint NOT NULL, checksum varchar, "
             "created_at timestamp(6) NOT NULL)";
    case BlobSchema::kRails60:
      return "CREATE TABLE active_storage_blobs (id bigserial PRIMARY KEY, key varchar NOT NULL, "
             "filename varchar NOT NULL, content_type varchar, metadata text, byte_size bigint NOT NULL, "
             "checksum varchar NOT NULL, created_at timestamp NOT NULL)";
    case BlobSchema::kNotActiveStorage:
      return "CREATE TABLE active_storage_blobs (id bigserial PRIMARY KEY, key varchar NOT NULL, "
             "filename varchar NOT NULL, created_at timestamp NOT NULL)";
  }
  return "";
}

std::string database_url_for(const std::string& admin_url, const std::string& name) {
  const auto slash = admin_url.rfind('/');
  if (slash == std::string::npos || slash < admin_url.find("://") + 3) {
    throw std::runtime_error("no database name in " + admin_url);
  }
  return admin_url.substr(0, slash + 1) + name;
}

}  // namespace

std::string BlobFixture::create_database(const std::string& admin_url, const std::string& name) {
  PgConnection admin(admin_url);
  admin.exec("DROP DATABASE IF EXISTS " + admin.quote_identifier(name));
  admin.exec("CREATE DATABASE " + admin.quote_identifier(name));
  return database_url_for(admin_url, name);
}

BlobFixture::BlobFixture(const std::string& database_url, BlobSchema schema, std::uint64_t seed)
    : db_(database_url), schema_(schema), rng_(seed) {
  db_.exec("DROP TABLE IF EXISTS active_storage_blobs");
  db_.exec(create_table_sql(schema));
  db_.exec("CREATE UNIQUE INDEX ON active_storage_blobs (key)");
}

void BlobFixture::insert(std::vector<SeedRow>& rows) {
  const bool service_column = schema_ == BlobSchema::kRails7 || schema_ == BlobSchema::kRails7Uuid;
  const bool blob_columns = schema_ != BlobSchema::kNotActiveStorage;
  std::string columns = "key, filename, created_at";
  if (blob_columns) columns += ", content_type, byte_size, checksum";
  if (service_column) columns += ", service_name";
  for (std::size_t begin = 0; begin < rows.size(); begin += kRowsPerInsert) {
    const std::size_t end = std::min(rows.size(), begin + kRowsPerInsert);
    PgParams params;
    std::string values;
    auto param = [&params](std::string value) {
      params.emplace_back(std::move(value));
      return "$" + std::to_string(params.size());
    };
    for (std::size_t i = begin; i < end; ++i) {
      const SeedRow& row = rows[i];
      values += (i == begin ? "(" : ", (") + param(row.key) + ", " + param("file-" + std::to_string(i) + ".bin") +
                ", " + param(row.created_at) + "::timestamp";
      if (blob_columns) {
        values += ", 'application/octet-stream', " + param(std::to_string(row.byte_size)) + "::bigint, " +
                  param(row.checksum);
      }
      if (service_column) values += ", " + param(row.service_name);
      values += ")";
    }
    PgResult result = db_.exec("INSERT INTO active_storage_blobs (" + columns + ") VALUES " + values +
                                   " RETURNING id::text, key", params);
    std::map<std::string, std::string> ids;
    for (int r = 0; r < result.rows(); ++r) ids[result.value(r, 1)] = result.value(r, 0);
    for (std::size_t i = begin; i < end; ++i) rows[i].id = ids.at(rows[i].key);
  }
}

std::vector<SeedRow> BlobFixture::add_rows(std::size_t n, const std::string& created_at,
                                           const std::string& service_name) {
  std::vector<SeedRow> rows(n);
  std::uniform_int_distribution<std::uint64_t> size(0, 1 << 20);
  for (SeedRow& row : rows) {
    row.key = random_blob_key(rng_);
    row.byte_size = size(rng_);
    row.checksum = base64_encode(md5_of(row.key));  // nothing to match: these rows have no object
    row.created_at = created_at;
    row.service_name = service_name;
  }
  insert(rows);
  return rows;
}

std::vector<SeedRow> BlobFixture::add_objects(Storage& storage, const std::vector<std::uint64_t>& sizes,
                                              const std::string& created_at) {
  std::vector<SeedRow> rows(sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    rows[i].key = random_blob_key(rng_);
    rows[i].byte_size = sizes[i];
    rows[i].checksum = put_object(storage, rows[i].key, random_bytes(sizes[i], rng_));
    rows[i].created_at = created_at;
  }
  insert(rows);
  return rows;
}

std::map<std::string, std::string> BlobFixture::service_names() {
  const bool service_column = schema_ == BlobSchema::kRails7 || schema_ == BlobSchema::kRails7Uuid;
  PgResult result = db_.exec(std::string("SELECT id::text, ") + (service_column ? "service_name" : "''") +
                             " FROM active_storage_blobs");
  std::map<std::string, std::string> out;
  for (int r = 0; r < result.rows(); ++r) out[result.value(r, 0)] = result.value(r, 1);
  return out;
}

long long BlobFixture::row_count() {
  return std::atoll(db_.exec("SELECT count(*) FROM active_storage_blobs").value(0, 0).c_str());
}

void BlobFixture::log_switches() {
  db_.exec("CREATE TABLE switch_log (blob_id bigint, old_service text, new_service text)");
  db_.exec(
      "CREATE FUNCTION log_switch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "INSERT INTO switch_log VALUES (NEW.id, OLD.service_name, NEW.service_name); RETURN NEW; END $$");
  db_.exec(
      "CREATE TRIGGER log_switch AFTER UPDATE ON active_storage_blobs FOR EACH ROW EXECUTE FUNCTION log_switch()");
}

std::string random_blob_key(std::mt19937_64& rng) {
  static constexpr char kBase36[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::uniform_int_distribution<int> pick(0, 35);
  std::string key(28, '0');
  for (char& c : key) c = kBase36[pick(rng)];
  return key;
}

std::string random_bytes(std::size_t size, std::mt19937_64& rng) {
  std::string bytes(size, '\0');
  std::size_t i = 0;
  while (i < size) {
    std::uint64_t word = rng();
    for (int b = 0; b < 8 && i < size; ++b, word >>= 8) bytes[i++] = static_cast<char>(word & 0xff);
  }
  return bytes;
}

std::string utc_text(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string put_object(Storage& storage, const std::string& key, const std::string& bytes) {
  const std::string md5 = base64_encode(md5_of(bytes));
  MemoryByteSource body(bytes);
  PutOptions options;
  options.content_md5 = md5;
  storage.put(key, body, options);
  return md5;
}

}  // namespace blobferry::testing
