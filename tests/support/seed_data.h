// Reproducible test objects: made from a seed, written to a source, checked byte for byte on a target.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/storage/disk/disk_storage.h"
#include "common/storage/storage.h"

namespace blobferry::testing {

struct SeedObject {
  std::string key;
  std::uint64_t size = 0;
  std::uint64_t seed = 0;  // the bytes are seeded_bytes(size, seed)
  std::string md5;         // base64, filled when written
};

using SeedObjects = std::vector<SeedObject>;

// size pseudo-random bytes, the same for the same seed.
std::string seeded_bytes(std::size_t size, std::uint64_t seed);

// count objects with ActiveStorage-like keys (prefix + 28 base36 characters)
// and sizes in [min_size, max_size], then one object per entry of `large`
// spread through the list so they are in flight while the small ones are.
SeedObjects make_seed_objects(const std::string& prefix, std::size_t count, std::uint64_t min_size,
                              std::uint64_t max_size, const std::vector<std::uint64_t>& large, std::uint64_t seed);

// Runs body(0..count-1) on `threads` threads; rethrows the first exception.
void parallel_for(std::size_t count, int threads, const std::function<void(std::size_t)>& body);

// Uploads every object through storage (with Content-MD5) and fills its md5.
void put_seed_objects(SeedObjects& objects, Storage& storage, int threads = 6);
// Writes every object straight into the files `disk` would read (no backend
// write path, so tens of thousands take seconds) and fills its md5.
void write_seed_objects(SeedObjects& objects, const DiskStorage& disk, int threads = 4);

// A manifest as an app would export it: key,size,checksum; the checksum
// column is left empty for the objects of keys_without_checksum.
std::string manifest_csv(const SeedObjects& objects, const std::vector<std::string>& keys_without_checksum = {});

// Each object that is not on target with its seeded size and MD5, with what is wrong.
std::vector<std::string> not_intact_on(Storage& target, const SeedObjects& objects, int threads = 4);

void write_text_file(const std::string& path, const std::string& text);

// Polls condition every 50 ms until it holds (true) or timeout passes (false).
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);
// The last n lines of text, for failure messages.
std::string last_lines(const std::string& text, std::size_t n);
// Lines of text that contain needle.
std::vector<std::string> lines_containing(const std::string& text, const std::string& needle);

}  // namespace blobferry::testing
