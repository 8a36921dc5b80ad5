// blobferry's bookkeeping of a Paperclip migration, in a table of its own
// beside the application's: the ActiveStorage key each record's file gets,
// what validate proved about it, and whether its rows were written.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/db/pg_connection.h"

namespace blobferry {

// One record's file, as enqueue planned it.
struct PaperclipEntry {
  std::string record_type;  // "User"
  std::string record_id;    // as text
  std::string name;         // attachment name, "avatar"
  std::string key;          // the ActiveStorage key on the target
  std::string source_key;   // where Paperclip stored it
  std::string filename;
  std::string content_type;
  std::optional<std::uint64_t> expected_size;  // <attachment>_file_size
  std::string expected_md5;                    // base64, from <attachment>_fingerprint; empty when unknown
  std::optional<std::int64_t> source_updated_at;  // <attachment>_updated_at (epoch seconds) when planned
};

// A planned file that validate proved on the target.
struct PaperclipProof {
  std::string key;
  std::uint64_t byte_size = 0;
  std::string checksum;  // base64 MD5 of the bytes on the target
};

struct AttachOutcome {
  long long attached = 0;          // blob + attachment rows written
  long long already_attached = 0;  // records that had an attachment of that name: left alone
  long long records_gone = 0;      // records deleted since enqueue: no rows for them
};

class PaperclipStore {
 public:
  static constexpr const char* kTable = "blobferry_paperclip_blobs";

  // Creates the table when missing. Throws Error kConfig when the database
  // user may not, naming the statement an administrator can run instead.
  explicit PaperclipStore(PgConnection& db);

  // Records a key for every entry that has none yet and returns each entry
  // with the key now stored, so a re-run after a crash reuses the keys of the
  // first run. An entry whose file changed since (or that was dropped) gets
  // the new file and key and is verified again. One statement each way.
  std::vector<PaperclipEntry> reserve(const std::string& migration, const std::string& source_service,
                                      const std::string& target_service, std::vector<PaperclipEntry> entries);

  // Up to `limit` entries not yet verified whose key starts with `prefix`,
  // with key > after, by key.
  std::vector<PaperclipEntry> unverified(const std::string& migration, const std::string& prefix,
                                         const std::string& after, int limit);
  void mark_verified(const std::string& migration, const std::vector<PaperclipProof>& proofs);
  long long forget_verifications(const std::string& migration);

  // Up to `limit` entries whose rows are not written yet (verified or not),
  // key > after, by key: what reconciling with the app's table looks at.
  std::vector<PaperclipEntry> pending(const std::string& migration, const std::string& after, int limit);
  // Settles entries without writing rows, with `outcome` saying why
  // ("record_gone", "file_gone", "file_changed"); a later enqueue that finds
  // the record with a file plans it again.
  void drop(const std::string& migration, const std::vector<std::string>& keys, const std::string& outcome);

  // Keys of verified entries whose rows are not written yet, key > after, by key.
  std::vector<std::string> ready_to_attach(const std::string& migration, const std::string& after, int limit);
  // Writes the active_storage_blobs and active_storage_attachments rows of
  // `keys` in one statement (its own short transaction), skipping records that
  // already have an attachment of that name or are gone from record_table
  // (deleted since enqueue), and marks the entries done.
  AttachOutcome attach(const std::string& migration, const std::vector<std::string>& keys,
                       const std::string& record_table);

  long long count_unverified(const std::string& migration);
  long long count_ready(const std::string& migration);

  static std::string create_statement();

 private:
  void read_schema();
  void add_missing_columns();

  PgConnection& db_;
  bool blobs_have_service_name_ = false;
  std::string attachment_record_id_type_;  // a type the record ids are cast to
};

}  // namespace blobferry
