// Small copies driven by the event loop: HEAD, GET and PUT in flight on a TransferLoop, no thread held while they wait.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <optional>

#include "worker/copy/copy_engine.h"

namespace blobferry {

class TransferLoop;

struct EventCopierOptions {
  // The largest object copied this way; each in flight holds its bytes once,
  // so memory is at most transfers x this.
  std::uint64_t max_bytes = 128 * 1024;
};

// Thread-safe. The common case of a small object between two S3 services,
// copied as CopyEngine's copy_small does (the target's HEAD unless a listing
// showed it absent, one GET checked against the expected size and MD5, one
// PUT with Content-MD5 whose ETag proves what landed), but as requests on one
// event loop instead of a thread blocked in each. Whatever is not the plain
// case (an error, a mismatch, a source that changed)
// goes to CopyEngine::copy, which starts the object over with its retries:
// the proof of every byte is the engine's, the speed is the loop's.
class EventCopier {
 public:
  struct Outcome {
    std::optional<CopyResult> result;  // copied or skipped
    // Without a result: why the object goes to CopyEngine::copy (null for a
    // mismatch the engine will meet again). A cancellation is final, not handed on.
    std::exception_ptr error;
    // A PUT went out: the bytes may be on the target although no answer said
    // so, and the engine's run that finds them there copied nothing itself.
    bool target_written = false;
  };
  using Done = std::function<void(Outcome)>;

  EventCopier(TransferLoop& loop, const CopyEngine& engine, EventCopierOptions options = {});

  // Whether `task` goes this way: both sides S3 (under any budget layers),
  // the size known and at most max_bytes, no server-side copy to make, and
  // nothing CopyEngine::check_task refuses.
  bool accepts(const CopyTask& task) const;

  // Starts an accepted task, first waiting here for the budget of all its
  // requests (GatedStorage::admit). `done` runs once, on the loop's thread
  // (or on this one when the first request cannot start); it must not
  // block. The task's storages and cancellation token must outlive it.
  void start(const CopyTask& task, Done done) const;

 private:
  struct Copy;

  void head_target(const std::shared_ptr<Copy>& copy) const;
  void get_source(const std::shared_ptr<Copy>& copy) const;
  void put_target(const std::shared_ptr<Copy>& copy) const;
  void hand_on(const std::shared_ptr<Copy>& copy, std::exception_ptr error) const;

  TransferLoop& loop_;
  const CopyEngine& engine_;
  EventCopierOptions options_;
};

}  // namespace blobferry
