// Small copies driven by the event loop: HEAD, GET and PUT in flight on a TransferLoop, no thread held while they wait.
#include "worker/copy/event_copier.h"

#include <string>
#include <utility>

#include "common/base/cancellation.h"
#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/base/error.h"
#include "common/budget/gated_storage.h"
#include "common/storage/s3/s3_storage.h"
#include "worker/copy/object_proof.h"

namespace blobferry {
namespace {

S3Storage* s3_under(Storage& storage) { return dynamic_cast<S3Storage*>(&GatedStorage::unwrap(storage)); }

}  // namespace

// What one copy has learnt so far; shared by the requests of its steps.
struct EventCopier::Copy {
  explicit Copy(const CopyTask& copy_task) : task(copy_task) {}

  CopyTask task;
  S3Storage* source = nullptr;
  S3Storage* target = nullptr;
  std::uint64_t size = 0;
  std::optional<ObjectInfo> existing;  // the target's HEAD, when it found the key
  std::string bytes;
  ObjectInfo fetched;
  std::string md5;  // base64 of bytes
  bool with_md5_metadata = false;
  bool put_sent = false;
  Done done;
};

EventCopier::EventCopier(TransferLoop& loop, const CopyEngine& engine, EventCopierOptions options)
    : loop_(loop), engine_(engine), options_(options) {}

bool EventCopier::accepts(const CopyTask& task) const {
  if (!task.expected_size || *task.expected_size > options_.max_bytes) return false;
  S3Storage* source = s3_under(task.source);
  S3Storage* target = s3_under(task.target);
  if (source == nullptr || target == nullptr) return false;
  if (engine_.options().server_side_copy && target->can_copy_from(*source)) return false;
  try {
    CopyEngine::check_task(task);
  } catch (const Error&) {
    return false;  // the engine says why, as a failure of the job
  }
  return true;
}

void EventCopier::start(const CopyTask& task, Done done) const {
  auto copy = std::make_shared<Copy>(task);
  copy->source = s3_under(task.source);
  copy->target = s3_under(task.target);
  copy->size = task.expected_size.value_or(0);
  copy->done = std::move(done);
  // The budget of every request the copy makes, taken here, on the caller's
  // thread, which may wait for it (the loop's thread must not): the target's
  // HEAD and PUT, the source's GET, and the object's bytes both ways.
  try {
    GatedStorage::admit(task.target, task.target_absent ? 1 : 2, copy->size);
    GatedStorage::admit(task.source, 1, copy->size);
  } catch (const Error&) {
    return copy->done(Outcome{std::nullopt, std::current_exception()});
  }
  if (task.target_absent) {
    get_source(copy);
  } else {
    head_target(copy);
  }
}

// Without a result: to the engine, or cancelled. A throttling answer tells
// the budget as GatedStorage would have.
void EventCopier::hand_on(const std::shared_ptr<Copy>& copy, std::exception_ptr error) const {
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const Error& e) {
      GatedStorage::report(copy->task.source, e);
      GatedStorage::report(copy->task.target, e);
    } catch (...) {
    }
  }
  copy->done(Outcome{std::nullopt, std::move(error), copy->put_sent});
}

void EventCopier::head_target(const std::shared_ptr<Copy>& copy) const {
  copy->target->start_head(loop_, copy->task.target_key, copy->task.cancel, [this, copy](S3Storage::Answer answer) {
    if (answer.error) return hand_on(copy, answer.error);
    copy->existing = std::move(answer.info);
    const std::string& md5 = copy->task.expected_md5;
    if (copy->existing && copy->existing->size == copy->size && !md5.empty() && proves_md5(*copy->existing, md5)) {
      return copy->done(Outcome{CopyResult{CopyResult::Status::kSkipped, copy->size, md5, 1, false}, nullptr});
    }
    get_source(copy);
  });
}

void EventCopier::get_source(const std::shared_ptr<Copy>& copy) const {
  copy->bytes.reserve(copy->size);
  // Bounded by the expected size, so a source bigger than announced costs
  // no more memory than it should have.
  ByteSink sink = [copy](std::string_view chunk) {
    if (copy->bytes.size() + chunk.size() > copy->size) {
      throw Error(ErrorKind::kIntegrity, FailureReason::kIntegrity,
                  "GET '" + copy->task.source_key + "': more than the expected " + std::to_string(copy->size) + " bytes");
    }
    copy->bytes.append(chunk);
  };
  copy->source->start_get(loop_, copy->task.source_key, std::move(sink), copy->task.cancel,
                          [this, copy](S3Storage::Answer answer) {
    if (answer.error) return hand_on(copy, answer.error);
    // Missing, short, or not the expected MD5: the engine's retries decide
    // (not_found, or integrity after its attempts), with the same words.
    if (!answer.info || copy->bytes.size() != copy->size) return hand_on(copy, nullptr);
    copy->fetched = *std::move(answer.info);
    copy->md5 = base64_encode(md5_of(copy->bytes));
    const std::string expected =
        copy->task.expected_md5.empty() ? proven_etag_md5(copy->fetched) : copy->task.expected_md5;
    if (!expected.empty() && expected != copy->md5) return hand_on(copy, nullptr);
    if (copy->existing && copy->existing->size == copy->size && proves_md5(*copy->existing, copy->md5)) {
      return copy->done(Outcome{CopyResult{CopyResult::Status::kSkipped, copy->size, copy->md5, 1, false}, nullptr});
    }
    copy->with_md5_metadata = engine_.target_withholds_md5(copy->task.target);
    put_target(copy);
  });
}

// As CopyEngine::put_proven: a target whose answer does not prove the MD5
// is written again with it in blobferry's metadata, and remembered.
void EventCopier::put_target(const std::shared_ptr<Copy>& copy) const {
  const PutOptions options{copy->md5, target_metadata(copy->fetched.metadata, copy->task.content_type,
                                                      copy->with_md5_metadata ? copy->md5 : "")};
  copy->put_sent = true;
  copy->target->start_put(loop_, copy->task.target_key, copy->bytes, options, copy->task.cancel,
                          [this, copy](S3Storage::Answer answer) {
    if (answer.error) return hand_on(copy, answer.error);
    if (!copy->with_md5_metadata && etag_md5(answer.etag) != copy->md5) {
      engine_.note_target_withholds_md5(copy->task.target);
      copy->with_md5_metadata = true;
      return put_target(copy);
    }
    copy->done(Outcome{CopyResult{CopyResult::Status::kCopied, copy->size, copy->md5, 1, false}, nullptr});
  });
}

}  // namespace blobferry
