// libFuzzer target: the job JSON decoder, and that every job it accepts survives encode -> decode.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "common/base/error.h"
#include "common/queue/job.h"

// Any blobferry::Error is a clean rejection; anything else escapes and fails the run.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  blobferry::Job job;
  try {
    job = blobferry::decode_job(payload);
  } catch (const blobferry::Error&) {
    return 0;
  }
  // An accepted job must re-encode to something the decoder reads back the
  // same, or a requeued job would change on its way through Redis.
  const std::string encoded = blobferry::encode_job(job);
  if (!(blobferry::decode_job(encoded) == job)) {
    std::fprintf(stderr, "job changed across encode/decode: %s\n", encoded.c_str());
    std::abort();
  }
  for (std::size_t i = 0; i < job.objects.size(); ++i) {
    const std::string key = blobferry::failure_key(job, i);
    // Duplicate keys in a batch find the first of them: any object of that key will do.
    const auto found = blobferry::find_object_index(job, key);
    if (!found || blobferry::failure_key(job, *found) != key) {
      std::fprintf(stderr, "failure_key %s does not find object %zu back\n", key.c_str(), i);
      std::abort();
    }
    (void)blobferry::retry_job_for(job, i);
  }
  return 0;
}
