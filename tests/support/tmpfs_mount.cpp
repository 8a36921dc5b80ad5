// A small tmpfs mounted on a test's folder (a full or read-only disk on demand), unmounted when the owner goes.
#include "tests/support/tmpfs_mount.h"

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace blobferry::testing {
namespace {

std::string options_for(std::uint64_t size_bytes) { return "size=" + std::to_string(size_bytes) + ",mode=0755"; }

[[noreturn]] void refuse(const std::string& what, const std::string& dir, int err) {
  throw std::runtime_error(what + " on " + dir + " failed: " + std::strerror(err) +
                           " (the disk tests need root with CAP_SYS_ADMIN, e.g. a container run with "
                           "--privileged or --cap-add SYS_ADMIN)");
}

}  // namespace

TmpfsMount::TmpfsMount(std::string dir, std::uint64_t size_bytes) : dir_(std::move(dir)), size_bytes_(size_bytes) {
  const std::string options = options_for(size_bytes_);
  if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    refuse("mount -t tmpfs -o " + options, dir_, errno);
  }
}

TmpfsMount::~TmpfsMount() { ::umount2(dir_.c_str(), MNT_DETACH); }

void TmpfsMount::make_read_only() {
  const std::string options = options_for(size_bytes_);
  if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    refuse("mount -o remount,ro", dir_, errno);
  }
}

}  // namespace blobferry::testing
