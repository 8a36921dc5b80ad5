// blobferry's bookkeeping of a Paperclip migration, in a table of its own
// beside the application's: the ActiveStorage key each record's file gets,
// what validate proved about it, and whether its rows were written.
#include "enqueuer/sources/paperclip/paperclip_store.h"

#include <cstdlib>
#include <map>
#include <tuple>

#include "common/base/error.h"
#include "common/db/pg_array.h"

namespace blobferry {
namespace {

std::optional<std::string> size_text(const std::optional<std::uint64_t>& size) {
  if (!size) return std::nullopt;
  return std::to_string(*size);
}

std::optional<std::string> text_or_null(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return text;
}

// A column type from the catalog, checked against the few an ActiveStorage
// schema uses before it is written into a cast.
std::string checked_type(const std::string& type, const std::vector<std::string>& allowed, const std::string& what) {
  for (const std::string& a : allowed) {
    if (a == type) return type;
  }
  throw config_error(what + " has type " + type + ", which blobferry cannot write Paperclip rows into");
}

std::string column_type(PgConnection& db, const char* table, const char* column) {
  PgResult r = db.exec(
      "SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 "
      "AND column_name = $2",
      {std::string(table), std::string(column)});
  return r.rows() ? r.value(0, 0) : "";
}

// The four columns every query of entries starts with: which attachment and
// the key it gets.
PaperclipEntry entry_of_row(const PgResult& r, int row) {
  PaperclipEntry e;
  e.record_type = r.value(row, 0);
  e.record_id = r.value(row, 1);
  e.name = r.value(row, 2);
  e.key = r.value(row, 3);
  return e;
}

}  // namespace

std::string PaperclipStore::create_statement() {
  return std::string("CREATE TABLE IF NOT EXISTS ") + kTable +
         " (migration text NOT NULL, record_type text NOT NULL, record_id text NOT NULL, name text NOT NULL,"
         " key text NOT NULL, source_key text NOT NULL, filename text NOT NULL, content_type text,"
         " expected_size bigint, expected_md5 text, source_service text NOT NULL, target_service text NOT NULL,"
         " byte_size bigint, checksum text, verified_at timestamptz, attached_at timestamptz, blob_id text,"
         " outcome text, created_at timestamptz NOT NULL DEFAULT now(), source_updated_at bigint,"
         " PRIMARY KEY (migration, record_type, record_id, name), UNIQUE (migration, key))";
}

PaperclipStore::PaperclipStore(PgConnection& db) : db_(db) {
  try {
    db_.exec(create_statement());
  } catch (const Error& e) {
    throw config_error(std::string("cannot create ") + kTable + " in " + db_.describe() + " (" + e.what() +
                       "): grant CREATE to this user, or have an administrator run: " + create_statement());
  }
  add_missing_columns();
}

void PaperclipStore::add_missing_columns() {
  // Tables created by an earlier version lack source_updated_at. Asking first
  // keeps a user who is not the table's owner working once it is added.
  if (!column_type(db_, kTable, "source_updated_at").empty()) return;
  const std::string alter = std::string("ALTER TABLE ") + kTable + " ADD COLUMN IF NOT EXISTS source_updated_at bigint";
  try {
    db_.exec(alter);
  } catch (const Error& e) {
    throw config_error(std::string("cannot add a column to ") + kTable + " in " + db_.describe() + " (" + e.what() +
                       "): have the table's owner run: " + alter);
  }
}

std::vector<PaperclipEntry> PaperclipStore::reserve(const std::string& migration, const std::string& source_service,
                                                    const std::string& target_service,
                                                    std::vector<PaperclipEntry> entries) {
  if (entries.empty()) return entries;
  std::vector<std::optional<std::string>> types, ids, names, keys, sources, filenames, content_types, sizes, md5s,
      updated;
  for (const PaperclipEntry& e : entries) {
    types.emplace_back(e.record_type);
    ids.emplace_back(e.record_id);
    names.emplace_back(e.name);
    keys.emplace_back(e.key);
    sources.emplace_back(e.source_key);
    filenames.emplace_back(e.filename);
    content_types.push_back(text_or_null(e.content_type));
    sizes.push_back(size_text(e.expected_size));
    md5s.push_back(text_or_null(e.expected_md5));
    updated.push_back(e.source_updated_at ? std::optional<std::string>(std::to_string(*e.source_updated_at))
                                          : std::nullopt);
  }
  // A record whose file changed since its key was assigned (Paperclip still
  // live, or the owner fixed the data) gets a new key: ActiveStorage objects
  // never change, and the old key may hold the old bytes on the target. An
  // entry dropped without rows (file gone or changed, record deleted) that
  // is found again with a file is planned again the same way. Written rows
  // stay as they are. A NULL source_updated_at was stored by an earlier
  // version, which did not record it: it matches anything.
  db_.exec(std::string("INSERT INTO ") + kTable +
               " AS p (migration, source_service, target_service, record_type, record_id, name, key, source_key,"
               " filename, content_type, expected_size, expected_md5, source_updated_at)"
               " SELECT $1, $2, $3, u.* FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[],"
               " $9::text[], $10::text[], $11::bigint[], $12::text[], $13::bigint[]) AS u"
               " ON CONFLICT (migration, record_type, record_id, name) DO UPDATE SET key = EXCLUDED.key,"
               " source_key = EXCLUDED.source_key, filename = EXCLUDED.filename, content_type = EXCLUDED.content_type,"
               " expected_size = EXCLUDED.expected_size, expected_md5 = EXCLUDED.expected_md5,"
               " source_updated_at = EXCLUDED.source_updated_at, verified_at = NULL, byte_size = NULL,"
               " checksum = NULL, attached_at = NULL, blob_id = NULL, outcome = NULL"
               " WHERE (p.attached_at IS NULL AND ((p.source_key, p.filename, p.content_type, p.expected_size,"
               " p.expected_md5) IS DISTINCT FROM (EXCLUDED.source_key, EXCLUDED.filename, EXCLUDED.content_type,"
               " EXCLUDED.expected_size, EXCLUDED.expected_md5) OR (p.source_updated_at IS NOT NULL AND"
               " p.source_updated_at IS DISTINCT FROM EXCLUDED.source_updated_at)))"
               " OR p.outcome IN ('record_gone', 'file_gone', 'file_changed')",
           {migration, source_service, target_service, pg_array_literal(types), pg_array_literal(ids), pg_array_literal(names),
            pg_array_literal(keys), pg_array_literal(sources), pg_array_literal(filenames), pg_array_literal(content_types),
            pg_array_literal(sizes), pg_array_literal(md5s), pg_array_literal(updated)});
  PgResult stored = db_.exec(std::string("SELECT p.record_type, p.record_id, p.name, p.key FROM ") + kTable +
                                 " p JOIN unnest($2::text[], $3::text[], $4::text[]) AS u(t, i, n)"
                                 " ON p.record_type = u.t AND p.record_id = u.i AND p.name = u.n WHERE p.migration = $1",
                             {migration, pg_array_literal(types), pg_array_literal(ids), pg_array_literal(names)});
  std::map<std::tuple<std::string, std::string, std::string>, std::string> key_of;
  for (int r = 0; r < stored.rows(); ++r) {
    key_of[{stored.value(r, 0), stored.value(r, 1), stored.value(r, 2)}] = stored.value(r, 3);
  }
  for (PaperclipEntry& e : entries) {
    auto it = key_of.find({e.record_type, e.record_id, e.name});
    if (it == key_of.end()) {
      throw Error(ErrorKind::kPermanent, FailureReason::kBookkeepingLost,
                  std::string(kTable) + " has no row for " + e.record_type + "#" + e.record_id + " after inserting it");
    }
    e.key = it->second;
  }
  return entries;
}

std::vector<PaperclipEntry> PaperclipStore::unverified(const std::string& migration, const std::string& prefix,
                                                       const std::string& after, int limit) {
  PgResult r = db_.exec(std::string("SELECT record_type, record_id, name, key, source_key, filename, content_type,"
                                    " expected_size, expected_md5 FROM ") +
                            kTable +
                            " WHERE migration = $1 AND verified_at IS NULL AND attached_at IS NULL"
                            " AND left(key, length($2)) = $2 AND key > $3 ORDER BY key LIMIT $4",
                        {migration, prefix, after, std::to_string(limit)});
  std::vector<PaperclipEntry> entries;
  for (int i = 0; i < r.rows(); ++i) {
    PaperclipEntry e = entry_of_row(r, i);
    e.source_key = r.value(i, 4);
    e.filename = r.value(i, 5);
    e.content_type = r.value(i, 6);
    if (!r.is_null(i, 7)) e.expected_size = std::strtoull(r.value(i, 7).c_str(), nullptr, 10);
    e.expected_md5 = r.value(i, 8);
    entries.push_back(std::move(e));
  }
  return entries;
}

void PaperclipStore::mark_verified(const std::string& migration, const std::vector<PaperclipProof>& proofs) {
  if (proofs.empty()) return;
  std::vector<std::optional<std::string>> keys, sizes, checksums;
  for (const PaperclipProof& p : proofs) {
    keys.emplace_back(p.key);
    sizes.emplace_back(std::to_string(p.byte_size));
    checksums.emplace_back(p.checksum);
  }
  db_.exec(std::string("UPDATE ") + kTable +
               " p SET byte_size = v.size, checksum = v.md5, verified_at = now()"
               " FROM unnest($2::text[], $3::bigint[], $4::text[]) AS v(key, size, md5)"
               " WHERE p.migration = $1 AND p.key = v.key AND p.attached_at IS NULL",
           {migration, pg_array_literal(keys), pg_array_literal(sizes), pg_array_literal(checksums)});
}

std::vector<PaperclipEntry> PaperclipStore::pending(const std::string& migration, const std::string& after, int limit) {
  PgResult r = db_.exec(std::string("SELECT record_type, record_id, name, key, filename, source_updated_at FROM ") +
                            kTable + " WHERE migration = $1 AND attached_at IS NULL AND key > $2 ORDER BY key LIMIT $3",
                        {migration, after, std::to_string(limit)});
  std::vector<PaperclipEntry> entries;
  for (int i = 0; i < r.rows(); ++i) {
    PaperclipEntry e = entry_of_row(r, i);
    e.filename = r.value(i, 4);
    if (!r.is_null(i, 5)) e.source_updated_at = std::atoll(r.value(i, 5).c_str());
    entries.push_back(std::move(e));
  }
  return entries;
}

void PaperclipStore::drop(const std::string& migration, const std::vector<std::string>& keys,
                          const std::string& outcome) {
  if (keys.empty()) return;
  std::vector<std::optional<std::string>> key_values(keys.begin(), keys.end());
  db_.exec(std::string("UPDATE ") + kTable +
               " SET attached_at = now(), outcome = $3, verified_at = NULL"
               " WHERE migration = $1 AND key = ANY($2::text[]) AND attached_at IS NULL",
           {migration, pg_array_literal(key_values), outcome});
}

long long PaperclipStore::forget_verifications(const std::string& migration) {
  return db_.exec(std::string("UPDATE ") + kTable +
                      " SET verified_at = NULL, byte_size = NULL, checksum = NULL"
                      " WHERE migration = $1 AND attached_at IS NULL AND verified_at IS NOT NULL",
                  {migration})
      .affected();
}

std::vector<std::string> PaperclipStore::ready_to_attach(const std::string& migration, const std::string& after,
                                                         int limit) {
  PgResult r = db_.exec(std::string("SELECT key FROM ") + kTable +
                            " WHERE migration = $1 AND verified_at IS NOT NULL AND attached_at IS NULL AND key > $2"
                            " ORDER BY key LIMIT $3",
                        {migration, after, std::to_string(limit)});
  std::vector<std::string> keys;
  for (int i = 0; i < r.rows(); ++i) keys.push_back(r.value(i, 0));
  return keys;
}

void PaperclipStore::read_schema() {
  if (!attachment_record_id_type_.empty()) return;
  const std::string record_id = column_type(db_, "active_storage_attachments", "record_id");
  const std::string blob_key = column_type(db_, "active_storage_blobs", "key");
  if (record_id.empty() || blob_key.empty()) {
    throw config_error("active_storage_blobs or active_storage_attachments is missing in " + db_.describe() +
                       ": run `bin/rails active_storage:install` and `bin/rails db:migrate` in the app first");
  }
  attachment_record_id_type_ = checked_type(record_id, {"bigint", "integer", "uuid", "character varying", "text"},
                                            "active_storage_attachments.record_id");
  blobs_have_service_name_ = !column_type(db_, "active_storage_blobs", "service_name").empty();
}

AttachOutcome PaperclipStore::attach(const std::string& migration, const std::vector<std::string>& keys,
                                     const std::string& record_table) {
  AttachOutcome outcome;
  if (keys.empty()) return outcome;
  read_schema();
  const std::string record_id_type = checked_type(column_type(db_, record_table.c_str(), "id"),
                                                  {"bigint", "integer", "smallint", "uuid", "character varying", "text"},
                                                  record_table + ".id");
  const std::string record_exists = "EXISTS (SELECT 1 FROM " + db_.quote_identifier(record_table) +
                                    " r WHERE r.id = todo.record_id::" + record_id_type + ")";
  const std::string metadata_type = checked_type(column_type(db_, "active_storage_blobs", "metadata"),
                                                 {"text", "character varying", "json", "jsonb"},
                                                 "active_storage_blobs.metadata");
  const std::string& id_type = attachment_record_id_type_;
  // Rails stores created_at as UTC in a column without a zone.
  const std::string now_utc = "(now() AT TIME ZONE 'UTC')";
  const std::string service_column = blobs_have_service_name_ ? ", service_name" : "";
  const std::string service_value = blobs_have_service_name_ ? ", fresh.target_service" : "";
  // One statement, so one transaction: a blob row never exists without its
  // attachment, and FOR UPDATE makes a concurrent switch wait, then find
  // these entries attached.
  const std::string sql =
      std::string("WITH todo AS (SELECT p.* FROM ") + kTable +
      " p WHERE p.migration = $1 AND p.key = ANY($2::text[]) AND p.verified_at IS NOT NULL AND p.attached_at IS NULL"
      " FOR UPDATE),"
      " fresh AS (SELECT todo.* FROM todo WHERE NOT EXISTS (SELECT 1 FROM active_storage_attachments a"
      " WHERE a.record_type = todo.record_type AND a.record_id = todo.record_id::" + id_type +
      " AND a.name = todo.name) AND " + record_exists + "),"
      " blobs AS (INSERT INTO active_storage_blobs (key, filename, content_type, metadata" + service_column +
      ", byte_size, checksum, created_at) SELECT fresh.key, fresh.filename, fresh.content_type, $3::" + metadata_type +
      service_value + ", fresh.byte_size, fresh.checksum, " + now_utc + " FROM fresh ORDER BY fresh.key RETURNING id, key),"
      " attached AS (INSERT INTO active_storage_attachments (name, record_type, record_id, blob_id, created_at)"
      " SELECT fresh.name, fresh.record_type, fresh.record_id::" + id_type + ", blobs.id, " + now_utc +
      " FROM fresh JOIN blobs ON blobs.key = fresh.key RETURNING blob_id)"
      " UPDATE " + kTable + " p SET attached_at = now(), blob_id = blobs.id::text,"
      " outcome = CASE WHEN blobs.id IS NOT NULL THEN 'attached' WHEN " + record_exists +
      " THEN 'already_attached' ELSE 'record_gone' END"
      " FROM todo LEFT JOIN blobs ON blobs.key = todo.key"
      " WHERE p.migration = $1 AND p.key = todo.key RETURNING p.outcome";
  std::vector<std::optional<std::string>> key_values(keys.begin(), keys.end());
  PgResult r = db_.exec(sql, {migration, pg_array_literal(key_values), std::string(R"({"identified":true})")});
  for (int i = 0; i < r.rows(); ++i) {
    const std::string what = r.value(i, 0);
    (what == "attached" ? outcome.attached : what == "record_gone" ? outcome.records_gone : outcome.already_attached) += 1;
  }
  return outcome;
}

long long PaperclipStore::count_unverified(const std::string& migration) {
  PgResult r = db_.exec(std::string("SELECT count(*) FROM ") + kTable +
                            " WHERE migration = $1 AND verified_at IS NULL AND attached_at IS NULL",
                        {migration});
  return std::atoll(r.value(0, 0).c_str());
}

long long PaperclipStore::count_ready(const std::string& migration) {
  PgResult r = db_.exec(std::string("SELECT count(*) FROM ") + kTable +
                            " WHERE migration = $1 AND verified_at IS NOT NULL AND attached_at IS NULL",
                        {migration});
  return std::atoll(r.value(0, 0).c_str());
}

}  // namespace blobferry
