// `blobferry report`: every failed or dead key of a migration, and the success totals, as CSV or JSONL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/cli/command.h"
#include "common/queue/job_queue.h"

namespace blobferry {

// One line of a report: a failed or dead key (objects = 1), or a success total
// (no key; objects and bytes are the counters), so summing `objects` by
// status always gives the migration's totals.
struct ReportRow {
  std::optional<std::string> key;
  std::optional<std::int64_t> blob_id;
  std::string status;  // "failed", "dead", "copied", "skipped"
  std::string reason;
  std::string message;
  std::optional<int> attempts;
  std::string time;
  std::uint64_t objects = 1;
  std::optional<std::uint64_t> bytes;
};

// Pure helpers (no I/O), public so tests can pin them.
// A failure record is "dead" when its job killed workers (poison), else "failed".
ReportRow row_of_failure(const FailureRecord& record);
// A malformed payload: it names no key, its error says what is wrong.
ReportRow row_of_dead(const DeadEntry& entry);
std::vector<ReportRow> summary_rows(const Counts& counts);
// RFC 4180: quoted when it holds a comma, a quote, CR or LF; quotes doubled.
std::string csv_field(std::string_view value);
const std::string& csv_header();  // with its CRLF
std::string csv_line(const ReportRow& row);  // with its CRLF
std::string jsonl_line(const ReportRow& row);  // with its LF

// The whole report, line by line as it is read from Redis (memory stays flat
// however many keys failed): what `report` writes and the operator page
// downloads. Returns how many rows it wrote (the CSV header not counted).
std::size_t stream_report(JobQueue& queue, bool csv, bool failed_only,
                          const std::function<void(std::string_view)>& write);

class ReportCommand : public Command {
 public:
  void define(CLI::App& sub) override;
  int run(const GlobalOptions& global) override;

 private:
  std::string migration_;
  std::string format_ = "csv";
  bool failed_only_ = false;
  std::string output_;
};

}  // namespace blobferry
