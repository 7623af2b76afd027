#include "planetbridge/bytes.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "planetbridge/error.h"

namespace pb {

namespace {

// Owns one mapping (never copied: a copy would unmap twice).
struct Mapping {
  Mapping(void* a, size_t n) : addr(a), length(n) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (addr != MAP_FAILED && addr && length) ::munmap(addr, length);
  }
  void* addr;
  size_t length;
};

[[noreturn]] void fail_errno(const std::string& where, const std::string& what) { throw Error(where, what + ": " + std::strerror(errno)); }

// Reads an unseekable input (stdin, a pipe) to its end, growing a reservation as bytes come.
Bytes read_all(int fd, const std::string& where) {
  size_t capacity = size_t(1) << 20, size = 0;
  Bytes b = Bytes::allocate(capacity);
  for (;;) {
    if (size == capacity) {
      Bytes bigger = Bytes::allocate(capacity * 2);
      std::memcpy(bigger.writable(), b.data(), size);
      b = bigger;
      capacity *= 2;
    }
    const ssize_t n = ::read(fd, b.writable() + size, capacity - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_errno(where, "cannot read");
    if (n == 0) return b.slice(0, size);
    size += size_t(n);
  }
}

}  // namespace

Bytes Bytes::allocate(size_t size) {
  Bytes b;
  // Anonymous and unreserved: pages appear as they are written, so a huge length claimed by a
  // header costs address space only.
  void* p = size ? ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) : nullptr;
  if (p == MAP_FAILED) throw Error("", "cannot reserve " + std::to_string(size) + " bytes: " + std::strerror(errno));
  b.owner_ = std::make_shared<Mapping>(p, size);
  b.data_ = static_cast<uint8_t*>(p);
  b.size_ = size;
  return b;
}

Bytes Bytes::copy_of(const void* data, size_t size) {
  Bytes b = allocate(size);
  if (size) std::memcpy(b.writable(), data, size);
  return b;
}

Bytes Bytes::slice(size_t offset, size_t size) const {
  Bytes b = *this;
  offset = std::min(offset, size_);
  b.data_ = data_ ? data_ + offset : nullptr;
  b.size_ = std::min(size, size_ - offset);
  return b;
}

void Bytes::evict() const {
  if (!mapped_file_ || size_ == 0) return;
  // Whole pages inside [data_, data_ + size_): a slice's edges may share pages with bytes
  // still in use elsewhere, which only costs a fault.
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (uintptr_t(data_) + page - 1) & ~(page - 1);
  const uintptr_t end = (uintptr_t(data_) + size_) & ~(page - 1);
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

Bytes Bytes::read_file(const std::string& path, const std::string& what) {
  if (path == "-") return read_all(STDIN_FILENO, "(stdin)");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_errno(path, "cannot open " + what);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail_errno(path, "cannot stat");
  }
  if (!S_ISREG(st.st_mode)) {  // a fifo or a device: read it through
    Bytes b;
    try {
      b = read_all(fd, path);
    } catch (...) {
      ::close(fd);
      throw;
    }
    ::close(fd);
    return b;
  }
  Bytes b;
  b.size_ = size_t(st.st_size);
  void* p = b.size_ ? ::mmap(nullptr, b.size_, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
  const int err = errno;
  ::close(fd);  // the mapping keeps the file
  if (b.size_ && p == MAP_FAILED) throw Error(path, std::string("cannot map: ") + std::strerror(err));
  b.owner_ = std::make_shared<Mapping>(p, b.size_);
  b.data_ = b.size_ ? static_cast<uint8_t*>(p) : nullptr;
  b.mapped_file_ = true;
  return b;
}

}  // namespace pb
