#pragma once
// Bytes that tensors alias instead of copying: a file mapped read-only, or memory of our own,
// page-aligned and reserved lazily (a length read from a header costs nothing until bytes
// arrive). Copies share the bytes; the last one releases them.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace pb {

class Bytes {
 public:
  Bytes() = default;
  // The whole file, mapped read-only (a regular file) or read (a pipe, a device); "-" reads
  // stdin. Errors name `path`: "cannot open <what>: ...".
  static Bytes read_file(const std::string& path, const std::string& what = "file");
  // `size` writable bytes, zero until written.
  static Bytes allocate(size_t size);
  // A copy of borrowed memory (one copy, into memory that tensors can then alias).
  static Bytes copy_of(const void* data, size_t size);

  const uint8_t* data() const { return data_; }
  uint8_t* writable() { return data_; }  // allocate()'s memory; a mapped file is read-only
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Keeps the bytes alive (a Tensor::view's owner).
  const std::shared_ptr<void>& owner() const { return owner_; }
  // `size` bytes from `offset`, sharing these (clamped to what there is).
  Bytes slice(size_t offset, size_t size) const;
  // For a mapped file: drops its pages from this process's resident set (the page cache keeps
  // them, and a later read faults them back in), once they have been consumed, e.g. packed
  // into a kernel's layout. Memory of our own is left alone: it has no other copy.
  void evict() const;

 private:
  std::shared_ptr<void> owner_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_file_ = false;
};

}  // namespace pb
