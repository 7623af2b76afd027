#include "planetbridge/files.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "planetbridge/error.h"

namespace pb {

std::string temporary_name(const std::string& path) { return path + ".tmp." + std::to_string(::getpid()); }

bool abandoned_temporary(const std::string& name) {
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos) return false;
  char* end = nullptr;
  const long pid = std::strtol(name.c_str() + at + 5, &end, 10);
  if (pid <= 0 || *end != '\0' || end == name.c_str() + at + 5) return false;
  return ::kill(pid_t(pid), 0) != 0 && errno == ESRCH;
}

void remove_abandoned_temporaries(const std::string& dir, const std::string& prefix) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir.empty() ? "." : dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && abandoned_temporary(name)) std::filesystem::remove_all(entry.path(), ec);
  }
}

void sync_directory(const std::string& dir) {
  const std::string path = dir.empty() ? "." : dir;
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error(path, std::string("cannot open the folder to flush it: ") + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL && err != EROFS) throw Error(path, std::string("cannot flush the folder: ") + std::strerror(err));
}

}  // namespace pb
