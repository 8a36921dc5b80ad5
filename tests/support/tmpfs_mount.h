// A small tmpfs mounted on a test's folder (a full or read-only disk on demand), unmounted when the owner goes.
#pragma once

#include <cstdint>
#include <string>

namespace blobferry::testing {

// Needs CAP_SYS_ADMIN (root in a container that allows mount, as CI's does).
// The constructor throws std::runtime_error saying why when the kernel refuses,
// so a test fails with that reason instead of skipping quietly.
class TmpfsMount {
 public:
  // Mounts a tmpfs of size_bytes on dir (which must exist), mode 0755.
  TmpfsMount(std::string dir, std::uint64_t size_bytes);
  ~TmpfsMount();  // lazy unmount, so an open file cannot keep it mounted
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

  const std::string& dir() const { return dir_; }
  // Remounts read-only: every write below dir fails with EROFS, root's too
  // (unlike chmod, which root ignores).
  void make_read_only();

 private:
  std::string dir_;
  std::uint64_t size_bytes_;
};

}  // namespace blobferry::testing
