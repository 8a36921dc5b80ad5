// Read-only access to active_storage_blobs in short keyset pages, plus the
// batched service_name switch; never touches any other application table.
#include "enqueuer/sources/blobs/blob_table.h"

#include <cstdlib>
#include <set>

#include "common/base/error.h"
#include "common/db/pg_array.h"
#include "enqueuer/verification/verification_store.h"

namespace blobferry {
namespace {

std::string next_param(PgParams& params, std::string value) {
  params.emplace_back(std::move(value));
  return "$" + std::to_string(params.size());
}

}  // namespace

std::optional<std::int64_t> integer_blob_id(const std::string& id) {
  if (id.empty() || id.size() > 18 || id.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoll(id);
}

BlobTable::BlobTable(PgConnection& db) : db_(db) {
  PgResult columns = db_.exec(
      "SELECT column_name, data_type FROM information_schema.columns "
      "WHERE table_name = 'active_storage_blobs' AND table_schema = ANY(current_schemas(false))");
  if (columns.rows() == 0) {
    throw config_error("no table active_storage_blobs in " + db_.describe() +
                       ": point --database-url at the Rails app's database (run its ActiveStorage migrations first)");
  }
  std::set<std::string> names;
  for (int r = 0; r < columns.rows(); ++r) {
    const std::string name = columns.value(r, 0);
    names.insert(name);
    if (name == "id") uuid_ids_ = columns.value(r, 1) == "uuid";
  }
  for (const char* required : {"id", "key", "byte_size", "checksum"}) {
    if (!names.count(required)) {
      throw config_error(std::string("active_storage_blobs in ") + db_.describe() + " has no column " + required +
                         ": it is not an ActiveStorage blob table");
    }
  }
  has_service_name_ = names.count("service_name") > 0;
  has_content_type_ = names.count("content_type") > 0;
  has_created_at_ = names.count("created_at") > 0;
}

std::vector<ServiceCount> BlobTable::count_by_service() {
  const std::string group = has_service_name_ ? "service_name" : "''";
  PgResult result = db_.exec("SELECT " + group + ", count(*), coalesce(sum(byte_size), 0) FROM active_storage_blobs GROUP BY 1 ORDER BY 1");
  std::vector<ServiceCount> out;
  for (int r = 0; r < result.rows(); ++r) {
    out.push_back({result.value(r, 0), std::atoll(result.value(r, 1).c_str()),
                   std::strtoull(result.value(r, 2).c_str(), nullptr, 10)});
  }
  return out;
}

std::string BlobTable::where_clause(const BlobFilter& filter, PgParams& params) const {
  std::string where = "TRUE";
  if (has_service_name_ && !filter.service_name.empty()) {
    where += " AND service_name = " + next_param(params, filter.service_name);
  }
  if (!filter.key_prefix.empty()) {
    where += " AND starts_with(key, " + next_param(params, filter.key_prefix) + ")";
  }
  if (!filter.created_before.empty() || !filter.created_after.empty()) {
    if (!has_created_at_) throw config_error("active_storage_blobs has no created_at: drop --created-before/--created-after");
    if (!filter.created_before.empty()) where += " AND created_at < " + next_param(params, filter.created_before) + "::timestamp";
    if (!filter.created_after.empty()) where += " AND created_at >= " + next_param(params, filter.created_after) + "::timestamp";
  }
  if (filter.id_range) {
    if (uuid_ids_) throw config_error("--id-range needs integer ids; this table's ids are uuids: use --shard instead");
    where += " AND id BETWEEN " + next_param(params, std::to_string(filter.id_range->first)) + "::bigint AND " +
             next_param(params, std::to_string(filter.id_range->second)) + "::bigint";
  }
  if (filter.key_not_base36_next) {
    where += " AND substr(key, " + next_param(params, std::to_string(filter.key_prefix.size() + 1)) +
             "::int, 1) !~ '^[0-9a-z]$'";
  }
  if (!filter.unverified_in.empty()) {
    where += std::string(" AND NOT EXISTS (SELECT 1 FROM ") + VerificationStore::kTable +
             " v WHERE v.migration = " + next_param(params, filter.unverified_in) +
             " AND v.blob_id = active_storage_blobs.id::text)";
  }
  if (filter.shard_count > 1) {
    // Integer ids shard by value; uuids by a stable hash of their text.
    const std::string hashed = uuid_ids_ ? "abs(hashtext(id::text)::bigint)" : "id";
    where += " AND mod(" + hashed + ", " + next_param(params, std::to_string(filter.shard_count)) + "::bigint) = " +
             next_param(params, std::to_string(filter.shard_index)) + "::bigint";
  }
  return where;
}

ServiceCount BlobTable::count(const BlobFilter& filter) {
  PgParams params;
  const std::string where = where_clause(filter, params);
  PgResult result = db_.exec("SELECT count(*), coalesce(sum(byte_size), 0) FROM active_storage_blobs WHERE " + where, params);
  return {filter.service_name, std::atoll(result.value(0, 0).c_str()),
          std::strtoull(result.value(0, 1).c_str(), nullptr, 10)};
}

std::vector<BlobRow> BlobTable::page(const BlobFilter& filter, const std::string& after_id, int limit) {
  PgParams params;
  std::string where = where_clause(filter, params);
  if (!after_id.empty()) where += " AND id > " + next_param(params, after_id) + (uuid_ids_ ? "::uuid" : "::bigint");
  const std::string sql = "SELECT id::text, key, byte_size, coalesce(checksum, ''), " +
                          std::string(has_content_type_ ? "coalesce(content_type, '')" : "''") + ", " +
                          (has_service_name_ ? "service_name" : "''") +
                          " FROM active_storage_blobs WHERE " + where + " ORDER BY active_storage_blobs.id LIMIT " +
                          next_param(params, std::to_string(limit)) + "::bigint";
  // ORDER BY names the table's column: a bare "id" would mean the text
  // output column and order 10 before 9.
  PgResult result = db_.exec(sql, params);
  std::vector<BlobRow> rows;
  rows.reserve(result.rows());
  for (int r = 0; r < result.rows(); ++r) {
    rows.push_back({result.value(r, 0), result.value(r, 1), std::strtoull(result.value(r, 2).c_str(), nullptr, 10),
                    result.value(r, 3), result.value(r, 4), result.value(r, 5)});
  }
  return rows;
}

long long BlobTable::switch_verified(const std::vector<std::string>& ids, const std::string& from,
                                    const std::string& to, const std::string& migration) {
  if (!has_service_name_) {
    throw config_error("active_storage_blobs has no service_name column (Rails 5.2/6.0): there is nothing to switch; "
                       "point the service's entry in config/storage.yml at the new bucket instead");
  }
  if (ids.empty()) return 0;
  long long changed = 0;
  db_.transaction([&](PgConnection& db) {
    changed = db.exec("UPDATE active_storage_blobs SET service_name = $1 WHERE id = ANY($2::" + id_array_type() +
                      ") AND service_name = $3 AND id::text IN (SELECT blob_id FROM " +
                      VerificationStore::kTable + " WHERE migration = $4 AND blob_id = ANY($5::text[]))",
                      {to, pg_array_literal(ids), from, migration, pg_array_literal(ids)})
                  .affected();
  });
  return changed;
}

long long BlobTable::count_verified(const std::vector<std::string>& ids, const std::string& migration) {
  if (ids.empty()) return 0;
  PgResult r = db_.exec(std::string("SELECT count(*) FROM ") + VerificationStore::kTable +
                            " WHERE migration = $1 AND blob_id = ANY($2::text[])",
                        {migration, pg_array_literal(ids)});
  return std::atoll(r.value(0, 0).c_str());
}

}  // namespace blobferry
