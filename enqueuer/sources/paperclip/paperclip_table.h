// Read-only access to an application table's Paperclip columns
// (<attachment>_file_name, _content_type, _file_size, _updated_at, _fingerprint)
// in short keyset pages.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/db/pg_connection.h"
#include "enqueuer/sources/paperclip/paperclip_path.h"

namespace blobferry {

struct PaperclipRow {
  PaperclipRecord record;  // id, file name, updated_at, fingerprint
  std::string content_type;
  std::optional<std::uint64_t> file_size;
};

// What a record's Paperclip columns name now.
struct PaperclipFileState {
  bool record_exists = false;
  std::string file_name;  // empty when NULL or ''
  std::optional<std::int64_t> updated_at;  // epoch seconds; nullopt when NULL or no such column
};

struct PaperclipCount {
  long long records = 0;
  std::uint64_t bytes = 0;  // of the records that state their size
};

class PaperclipTable {
 public:
  // Reads the table's columns. Throws Error kConfig when the table, its id or
  // <attachment>_file_name is missing, or ActiveStorage's tables are.
  PaperclipTable(PgConnection& db, std::string table, std::string attachment, std::string record_type);

  bool has_fingerprint() const { return has_fingerprint_; }

  // Up to `limit` records with id > after_id (from the start when empty), by
  // id, that have a file and no ActiveStorage attachment of that name yet.
  // One short read-only statement.
  std::vector<PaperclipRow> page(const std::string& after_id, int limit);
  // What page() would walk through, for --dry-run.
  PaperclipCount count();
  // The current file columns of each record id (as text), in one short
  // read-only statement; ids of deleted records map to record_exists false.
  std::map<std::string, PaperclipFileState> files_of(const std::vector<std::string>& ids);

 private:
  std::string column(const std::string& suffix) const;
  std::string optional_column(bool present, const std::string& suffix, const std::string& expression) const;
  std::string select_list() const;
  std::string pending_condition() const;

  PgConnection& db_;
  std::string table_, attachment_, record_type_;
  std::string id_type_;
  bool integer_ids_ = true;
  bool has_content_type_ = false, has_file_size_ = false, has_updated_at_ = false, has_fingerprint_ = false;
  bool comparable_record_ids_ = true;  // attachments.record_id and the table's id compare without casts
};

}  // namespace blobferry
