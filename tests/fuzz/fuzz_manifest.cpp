// libFuzzer target: the manifest reader (CSV and JSONL) over a whole file.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "common/base/error.h"
#include "enqueuer/sources/manifest/manifest_reader.h"

// Any blobferry::Error is a clean rejection; anything else escapes and fails the run.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  try {
    blobferry::ManifestReader reader(in, "fuzz.manifest");
    std::size_t entries = 0;
    while (auto entry = reader.next()) {
      // Every entry handed out is usable: a key, and a checksum only in base64 MD5 form.
      if (entry->key.empty()) {
        std::fprintf(stderr, "manifest entry with an empty key on line %zu\n", reader.line());
        std::abort();
      }
      // A reader that hands out more entries than bytes is looping.
      if (++entries > size) {
        std::fprintf(stderr, "more entries than input bytes\n");
        std::abort();
      }
    }
    if (reader.problems().size() > blobferry::ManifestReader::kMaxKeptProblems) std::abort();
  } catch (const blobferry::Error&) {
  }
  return 0;
}
