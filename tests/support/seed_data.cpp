// Reproducible test objects: made from a seed, written to a source, checked byte for byte on a target.
#include "tests/support/seed_data.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/storage/byte_source.h"
#include "common/base/digest.h"
#include "common/base/encoding.h"

namespace blobferry::testing {
namespace {

std::string base36_key(std::mt19937_64& engine) {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string key(28, '0');
  for (char& c : key) c = kDigits[engine() % 36];
  return key;
}

std::string csv_field(const std::string& value) {
  if (value.find_first_of(",\"\r\n") == std::string::npos) return value;
  std::string quoted = "\"";
  for (char c : value) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

}  // namespace

std::string seeded_bytes(std::size_t size, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; i += 8) {
    const std::uint64_t word = engine();
    for (std::size_t j = 0; j < 8 && i + j < size; ++j) bytes[i + j] = static_cast<char>(word >> (8 * j));
  }
  return bytes;
}

SeedObjects make_seed_objects(const std::string& prefix, std::size_t count, std::uint64_t min_size,
                              std::uint64_t max_size, const std::vector<std::uint64_t>& large, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  SeedObjects objects;
  objects.reserve(count + large.size());
  for (std::size_t i = 0; i < count; ++i) {
    SeedObject object;
    object.key = prefix + base36_key(engine);
    object.size = min_size + engine() % (max_size - min_size + 1);
    object.seed = engine();
    objects.push_back(std::move(object));
  }
  for (std::size_t i = 0; i < large.size(); ++i) {
    SeedObject object{prefix + base36_key(engine), large[i], engine(), {}};
    const std::size_t at = std::min(objects.size(), (i + 1) * count / (large.size() + 1));
    objects.insert(objects.begin() + static_cast<std::ptrdiff_t>(at), std::move(object));
  }
  return objects;
}

void parallel_for(std::size_t count, int threads, const std::function<void(std::size_t)>& body) {
  std::atomic<std::size_t> next{0};
  std::mutex mutex;
  std::exception_ptr first_error;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (std::size_t i = next++; i < count; i = next++) {
        try {
          body(i);
        } catch (...) {
          std::lock_guard lock(mutex);
          if (!first_error) first_error = std::current_exception();
        }
      }
    });
  }
  for (auto& thread : pool) thread.join();
  if (first_error) std::rethrow_exception(first_error);
}

void put_seed_objects(SeedObjects& objects, Storage& storage, int threads) {
  parallel_for(objects.size(), threads, [&](std::size_t i) {
    SeedObject& object = objects[i];
    const std::string bytes = seeded_bytes(object.size, object.seed);
    object.md5 = base64_encode(md5_of(bytes));
    MemoryByteSource body(bytes);
    storage.put(object.key, body, PutOptions{object.md5, {}});
  });
}

void write_seed_objects(SeedObjects& objects, const DiskStorage& disk, int threads) {
  parallel_for(objects.size(), threads, [&](std::size_t i) {
    SeedObject& object = objects[i];
    const std::string bytes = seeded_bytes(object.size, object.seed);
    object.md5 = base64_encode(md5_of(bytes));
    const std::filesystem::path path = disk.path_for(object.key);
    std::filesystem::create_directories(path.parent_path());
    write_text_file(path.string(), bytes);
  });
}

std::string manifest_csv(const SeedObjects& objects, const std::vector<std::string>& keys_without_checksum) {
  std::string csv = "key,size,checksum\n";
  for (const SeedObject& object : objects) {
    const bool bare =
        std::find(keys_without_checksum.begin(), keys_without_checksum.end(), object.key) != keys_without_checksum.end();
    csv += csv_field(object.key) + "," + std::to_string(object.size) + "," + (bare ? "" : csv_field(object.md5)) + "\n";
  }
  return csv;
}

std::vector<std::string> not_intact_on(Storage& target, const SeedObjects& objects, int threads) {
  std::mutex mutex;
  std::vector<std::string> problems;
  parallel_for(objects.size(), threads, [&](std::size_t i) {
    const SeedObject& object = objects[i];
    Digest md5 = Digest::md5();
    std::uint64_t size = 0;
    auto info = target.get(object.key, [&](std::string_view chunk) {
      md5.update(chunk);
      size += chunk.size();
    });
    std::string problem;
    if (!info) {
      problem = object.key + ": missing";
    } else if (size != object.size || base64_encode(md5.finish()) != object.md5) {
      problem = object.key + ": " + std::to_string(size) + " bytes, not the source's " + std::to_string(object.size) +
                " bytes with MD5 " + object.md5;
    }
    if (problem.empty()) return;
    std::lock_guard lock(mutex);
    problems.push_back(problem);
  });
  return problems;
}

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << text;
  if (!file.flush()) throw std::runtime_error("cannot write " + path);
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

std::string last_lines(const std::string& text, std::size_t n) {
  std::size_t start = text.size();
  for (std::size_t lines = 0; start > 0 && lines <= n;) {
    if (text[--start] == '\n') ++lines;
  }
  return text.substr(start);
}

std::vector<std::string> lines_containing(const std::string& text, const std::string& needle) {
  std::vector<std::string> found;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(needle) != std::string::npos) found.push_back(line);
  }
  return found;
}

}  // namespace blobferry::testing
