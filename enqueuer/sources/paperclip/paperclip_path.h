// Paperclip's path interpolation (":class/:attachment/:id_partition/:style/:filename")
// for one record: where Paperclip stored its file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace blobferry {

// The fields of one Paperclip record that a path can mention.
struct PaperclipRecord {
  std::string id;           // as text
  bool integer_id = true;   // false for string/uuid primary keys
  std::string file_name;    // <attachment>_file_name
  std::optional<std::int64_t> updated_at;  // <attachment>_updated_at, epoch seconds
  std::string fingerprint;  // <attachment>_fingerprint, when the column exists
};

struct PaperclipPathOptions {
  std::string path_template = ":class/:attachment/:id_partition/:style/:filename";
  std::string class_name;   // the model, "Admin::Document" (record_type)
  std::string attachment;   // "avatar"
  std::string style = "original";
  std::string hash_secret;  // :hash only
  std::string hash_data = ":class/:attachment/:id/:style/:updated_at";  // Paperclip's default
};

class PaperclipPath {
 public:
  static constexpr const char* kDefaultTemplate = ":class/:attachment/:id_partition/:style/:filename";

  // Throws Error kConfig naming an interpolation it does not know, or :hash
  // without a secret.
  explicit PaperclipPath(PaperclipPathOptions options);

  // The key Paperclip stored the file under, without a leading '/' (a bucket
  // key, or a path under a Disk root).
  std::string key_for(const PaperclipRecord& record) const;

  // "%09d" split in threes, "%012d" from 1,000,000,000; a string id's first nine characters.
  static std::string id_partition(const std::string& id, bool integer_id);

 private:
  std::string interpolate(const std::string& pattern, const PaperclipRecord& record) const;
  std::string value_of(const std::string& name, const PaperclipRecord& record) const;
  std::string hash_of(const PaperclipRecord& record) const;

  PaperclipPathOptions options_;
  std::string class_folder_;       // underscored and pluralised once
  std::string attachment_folder_;
};

}  // namespace blobferry
