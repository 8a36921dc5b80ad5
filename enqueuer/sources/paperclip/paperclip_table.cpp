// Read-only access to an application table's Paperclip columns
// (<attachment>_file_name, _content_type, _file_size, _updated_at, _fingerprint)
// in short keyset pages.
#include "enqueuer/sources/paperclip/paperclip_table.h"

#include <cstdlib>
#include <map>

#include "common/base/error.h"
#include "common/db/pg_array.h"
#include "enqueuer/sources/paperclip/paperclip_store.h"

namespace blobferry {
namespace {

bool is_integer_type(const std::string& type) { return type == "bigint" || type == "integer" || type == "smallint"; }

std::map<std::string, std::string> column_types(PgConnection& db, const std::string& table) {
  PgResult r = db.exec(
      "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() "
      "AND table_name = $1",
      {table});
  std::map<std::string, std::string> types;
  for (int i = 0; i < r.rows(); ++i) types[r.value(i, 0)] = r.value(i, 1);
  return types;
}

}  // namespace

PaperclipTable::PaperclipTable(PgConnection& db, std::string table, std::string attachment, std::string record_type)
    : db_(db), table_(std::move(table)), attachment_(std::move(attachment)), record_type_(std::move(record_type)) {
  const auto types = column_types(db_, table_);
  if (types.empty()) {
    throw config_error("table " + table_ + " not found in " + db_.describe() + ": check --table (the model's table, e.g. users)");
  }
  if (!types.count(attachment_ + "_file_name")) {
    throw config_error("table " + table_ + " has no column " + attachment_ + "_file_name: check --attachment (the name given to has_attached_file)");
  }
  auto id = types.find("id");
  if (id == types.end()) throw config_error("table " + table_ + " has no id column: Paperclip records need one");
  static const char* kIdTypes[] = {"bigint", "integer", "smallint", "uuid", "character varying", "text"};
  for (const char* t : kIdTypes) {
    if (id->second == t) id_type_ = t;
  }
  if (id_type_.empty()) throw config_error("table " + table_ + " has an id of type " + id->second + ", which blobferry cannot page through");
  integer_ids_ = is_integer_type(id_type_);
  has_content_type_ = types.count(attachment_ + "_content_type") > 0;
  has_file_size_ = types.count(attachment_ + "_file_size") > 0;
  has_updated_at_ = types.count(attachment_ + "_updated_at") > 0;
  has_fingerprint_ = types.count(attachment_ + "_fingerprint") > 0;

  const auto attachments = column_types(db_, "active_storage_attachments");
  auto record_id = attachments.find("record_id");
  if (record_id == attachments.end() || column_types(db_, "active_storage_blobs").empty()) {
    throw config_error("active_storage_blobs or active_storage_attachments is missing in " + db_.describe() +
                       ": run `bin/rails active_storage:install` and `bin/rails db:migrate` in the app first");
  }
  comparable_record_ids_ = record_id->second == id_type_ || (is_integer_type(record_id->second) && integer_ids_);
}

std::string PaperclipTable::column(const std::string& suffix) const {
  return "t." + db_.quote_identifier(attachment_ + suffix);
}

std::string PaperclipTable::optional_column(bool present, const std::string& suffix, const std::string& expression) const {
  if (!present) return "NULL";
  std::string out = expression;
  const std::string name = column(suffix);
  for (std::size_t at = out.find('@'); at != std::string::npos; at = out.find('@', at + name.size())) {
    out.replace(at, 1, name);
  }
  return out;
}

std::string PaperclipTable::select_list() const {
  return "t.id::text, " + column("_file_name") + ", " + optional_column(has_content_type_, "_content_type", "@") + ", " +
         optional_column(has_file_size_, "_file_size", "@::bigint") + ", " +
         // Paperclip's updated_at is time.to_f.to_i: whole epoch seconds.
         optional_column(has_updated_at_, "_updated_at", "trunc(extract(epoch FROM @))::bigint") + ", " +
         optional_column(has_fingerprint_, "_fingerprint", "@");
}

std::string PaperclipTable::pending_condition() const {
  const std::string record_match = comparable_record_ids_ ? "a.record_id = t.id" : "a.record_id::text = t.id::text";
  return column("_file_name") + " IS NOT NULL AND " + column("_file_name") +
         " <> '' AND NOT EXISTS (SELECT 1 FROM active_storage_attachments a WHERE a.record_type = $1 AND " +
         record_match + " AND a.name = $2)";
}

std::vector<PaperclipRow> PaperclipTable::page(const std::string& after_id, int limit) {
  PgParams params{record_type_, attachment_, std::to_string(limit)};
  std::string sql = "SELECT " + select_list() + " FROM " + db_.quote_identifier(table_) + " t WHERE " +
                    pending_condition();
  if (!after_id.empty()) {
    sql += " AND t.id > $4::" + id_type_;
    params.push_back(after_id);
  }
  sql += " ORDER BY t.id LIMIT $3";
  PgResult r = db_.exec(sql, params);
  std::vector<PaperclipRow> rows;
  rows.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) {
    PaperclipRow row;
    row.record.id = r.value(i, 0);
    row.record.integer_id = integer_ids_;
    row.record.file_name = r.value(i, 1);
    row.content_type = r.value(i, 2);
    if (!r.is_null(i, 3)) row.file_size = std::strtoull(r.value(i, 3).c_str(), nullptr, 10);
    if (!r.is_null(i, 4)) row.record.updated_at = std::atoll(r.value(i, 4).c_str());
    row.record.fingerprint = r.value(i, 5);
    rows.push_back(std::move(row));
  }
  return rows;
}

PaperclipCount PaperclipTable::count() {
  const std::string bytes = has_file_size_ ? "coalesce(sum(" + column("_file_size") + "), 0)::text" : "'0'";
  PgResult r = db_.exec("SELECT count(*), " + bytes + " FROM " + db_.quote_identifier(table_) + " t WHERE " +
                            pending_condition(),
                        {record_type_, attachment_});
  return PaperclipCount{std::atoll(r.value(0, 0).c_str()), std::strtoull(r.value(0, 1).c_str(), nullptr, 10)};
}

std::map<std::string, PaperclipFileState> PaperclipTable::files_of(const std::vector<std::string>& ids) {
  std::map<std::string, PaperclipFileState> states;
  if (ids.empty()) return states;
  std::vector<std::optional<std::string>> values(ids.begin(), ids.end());
  PgResult r = db_.exec("SELECT u.id, t.id IS NOT NULL, coalesce(" + column("_file_name") + ", ''), " +
                            optional_column(has_updated_at_, "_updated_at", "trunc(extract(epoch FROM @))::bigint") +
                            " FROM unnest($1::text[]) AS u(id) LEFT JOIN " + db_.quote_identifier(table_) +
                            " t ON t.id = u.id::" + id_type_,
                        {pg_array_literal(values)});
  for (int i = 0; i < r.rows(); ++i) {
    PaperclipFileState state;
    state.record_exists = r.value(i, 1) == "t";
    state.file_name = r.value(i, 2);
    if (!r.is_null(i, 3)) state.updated_at = std::atoll(r.value(i, 3).c_str());
    states[r.value(i, 0)] = std::move(state);
  }
  return states;
}

}  // namespace blobferry
