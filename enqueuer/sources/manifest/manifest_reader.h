// Reads a manifest of keys (CSV or JSONL), optionally with size and checksum.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <vector>

namespace blobferry {

struct ManifestEntry {
  std::string key;
  std::optional<std::uint64_t> size;
  std::string checksum;  // base64 MD5 (a hex MD5 in the file is converted); empty when absent
  std::string content_type;
};

struct ManifestProblem {
  std::size_t line = 0;
  std::string message;
};

// CSV: `key[,size[,checksum]]` per line, or a header row naming the columns
// (key, size or byte_size, checksum or md5, content_type) in any order;
// RFC 4180 quoting, so keys may hold commas, quotes and newlines. JSONL: one
// object per line with "key" and optionally "size"/"byte_size",
// "checksum"/"md5", "content_type". The format is told by the first
// character ('{' means JSONL). A line that does not parse is recorded with its
// line number and skipped, so one bad line never stops the rest.
class ManifestReader {
 public:
  ManifestReader(std::istream& in, std::string origin);

  // The next good entry; nullopt at the end of the file.
  std::optional<ManifestEntry> next();

  // The line the last entry started on (1-based), for resuming.
  std::size_t line() const { return entry_line_; }
  // Skips entries until line() would pass `line` (resuming after a restart).
  void skip_to_line(std::size_t line);

  const std::vector<ManifestProblem>& problems() const { return problems_; }
  std::size_t problem_count() const { return problem_count_; }
  const std::string& origin() const { return origin_; }

  static constexpr std::size_t kMaxKeptProblems = 1000;

 private:
  enum class Format { kUnknown, kCsv, kJsonl };
  bool read_record(std::vector<std::string>& fields, std::string& raw);
  std::optional<ManifestEntry> parse_csv(const std::vector<std::string>& fields);
  std::optional<ManifestEntry> parse_jsonl(const std::string& raw);
  void problem(const std::string& message);
  bool set_checksum(ManifestEntry& entry, const std::string& value);
  bool set_size(ManifestEntry& entry, const std::string& value);

  std::istream& in_;
  std::string origin_;
  Format format_ = Format::kUnknown;
  std::size_t line_ = 0;        // lines consumed so far
  std::size_t entry_line_ = 0;  // where the current record started
  bool header_checked_ = false;
  int key_col_ = 0, size_col_ = 1, checksum_col_ = 2, content_type_col_ = -1;
  std::vector<ManifestProblem> problems_;
  std::size_t problem_count_ = 0;
};

}  // namespace blobferry
