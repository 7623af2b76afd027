#include "planetbridge/entity.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iterator>
#include <sstream>

#include <cereal/archives/portable_binary.hpp>
#include <cereal/types/common.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/variant.hpp>
#include <cereal/types/vector.hpp>

#include "planetbridge/error.h"
#include "planetbridge/files.h"

namespace pb {
namespace ir {
template <class Archive> void serialize(Archive& ar, ValueInfo& v) { ar(v.name, v.dtype, v.shape); }
template <class Archive> void save(Archive& ar, const Attrs& a) { ar(a.all()); }
template <class Archive> void load(Archive& ar, Attrs& a) { ar(a.all()); }
template <class Archive> void serialize(Archive& ar, Node& n) { ar(n.name, n.op, n.inputs, n.outputs, n.attrs, n.origin); }
}  // namespace ir

namespace entity {
template <class Archive> void serialize(Archive& ar, TensorEntry& t) { ar(t.name, t.dtype, t.shape, t.offset, t.length, t.crc32); }

namespace {

struct Header {
  std::map<std::string, std::string> metadata;
  std::vector<ir::ValueInfo> inputs;
  std::vector<std::string> outputs;
  std::vector<ir::Node> nodes;
  std::vector<TensorEntry> tensors;
  template <class Archive> void serialize(Archive& ar) { ar(metadata, inputs, outputs, nodes, tensors); }
};

void put_u32(std::vector<uint8_t>& out, uint32_t v) { for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i))); }
void put_u64(std::vector<uint8_t>& out, uint64_t v) { for (int i = 0; i < 8; ++i) out.push_back(uint8_t(v >> (8 * i))); }
uint32_t get_u32(const uint8_t* p) { uint32_t v = 0; for (int i = 3; i >= 0; --i) v = (v << 8) | p[i]; return v; }
uint64_t get_u64(const uint8_t* p) { uint64_t v = 0; for (int i = 7; i >= 0; --i) v = (v << 8) | p[i]; return v; }

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// cereal's portable binary reads a container's size and allocates before it reads the elements,
// so a forged size (with a recomputed header CRC, which anyone can compute) could ask for
// gigabytes. This walk over the header's layout checks that every size fits in the bytes that
// remain, allocating nothing, before cereal reads it. The layout is cereal's: a byte for
// endianness, sizes as u64, strings and arithmetic vectors as a size and their bytes, maps as a
// size and key/value pairs, variants as an i32 index and the value, enums as their u8.
class HeaderWalk {
 public:
  HeaderWalk(const uint8_t* p, size_t n, std::string where) : p_(p), end_(p + n), where_(std::move(where)) {}

  void header() {
    // cereal's endianness byte: 1, little-endian, as written. With 0 cereal would byte-swap every
    // size it reads, so the sizes this walk checks would not be the ones it allocates.
    skip(1);
    if (p_[-1] != 1) fail("the header is not little-endian (cereal's endianness byte is " + std::to_string(p_[-1]) + ", expected 1)");
    for (uint64_t i = count(16); i-- > 0;) string(), string();                          // metadata
    for (uint64_t i = count(17); i-- > 0;) string(), skip(1), ints();                   // inputs
    for (uint64_t i = count(8); i-- > 0;) string();                                     // outputs
    for (uint64_t i = count(48); i-- > 0;) node();                                      // nodes
    for (uint64_t i = count(37); i-- > 0;) string(), skip(1), ints(), skip(8 + 8 + 4);  // tensors
  }
  size_t used(const uint8_t* start) const { return size_t(p_ - start); }

 private:
  void node() {
    string(), string();  // name, op
    for (int list = 0; list < 2; ++list)
      for (uint64_t i = count(8); i-- > 0;) string();  // inputs, outputs
    for (uint64_t i = count(20); i-- > 0;) {           // attributes
      string();
      skip(4);
      const uint32_t index = get_u32(p_ - 4);
      if (index <= 1) skip(8);
      else if (index == 2) string();
      else if (index <= 4) skip(count(8) * 8);
      else fail("attribute of unknown kind " + std::to_string(index));
    }
    string();  // origin
  }
  // A size of elements taking at least `min_bytes` each: no more than the bytes left hold.
  uint64_t count(uint64_t min_bytes) {
    const uint64_t n = u64();
    if (n > uint64_t(end_ - p_) / min_bytes) fail("a header list claims " + std::to_string(n) + " entries, the header holds at most " +
                                                 std::to_string(uint64_t(end_ - p_) / min_bytes));
    return n;
  }
  void string() { skip(count(1)); }
  void ints() { skip(count(8) * 8); }
  uint64_t u64() {
    skip(8);
    return get_u64(p_ - 8);
  }
  void skip(uint64_t n) {
    if (n > uint64_t(end_ - p_)) fail("header ends inside a field");
    p_ += n;
  }
  [[noreturn]] void fail(const std::string& msg) const { throw Error(where_, "header does not decode: " + msg); }

  const uint8_t* p_;
  const uint8_t* end_;
  std::string where_;
};

}  // namespace

uint32_t crc32(const void* data, size_t size) {
  uLong c = ::crc32(0L, Z_NULL, 0);
  const auto* p = static_cast<const Bytef*>(data);
  while (size > 0) {  // zlib takes uInt lengths
    uInt chunk = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    c = ::crc32(c, p, chunk);
    p += chunk;
    size -= chunk;
  }
  return static_cast<uint32_t>(c);
}

namespace {

// A checkpoint is written in order: the prefix and the header (which hold every tensor's CRC,
// so the tensors are read once for them first), then each tensor straight from its memory.
void write_checkpoint(const ir::Graph& graph, const std::function<void(const void*, size_t)>& write) {
  Header h{graph.metadata, graph.inputs, graph.outputs, graph.nodes, {}};
  uint64_t offset = 0;
  for (const auto& [name, t] : graph.weights) {
    h.tensors.push_back({name, t.dtype(), t.shape(), offset, t.nbytes(), crc32(t.raw(), t.nbytes())});
    offset = align_up(offset + t.nbytes());
  }
  std::ostringstream hs;
  {
    cereal::PortableBinaryOutputArchive ar(hs);
    ar(h);
  }
  const std::string header = hs.str();
  std::vector<uint8_t> prefix(kMagic, kMagic + 8);
  put_u32(prefix, kFormatVersion);
  put_u32(prefix, 0);  // flags
  put_u64(prefix, header.size());
  put_u64(prefix, offset);  // the data section's length
  put_u32(prefix, crc32(header.data(), header.size()));
  put_u32(prefix, 0);  // reserved
  static const uint8_t zeros[kAlignment] = {};
  write(prefix.data(), prefix.size());
  write(header.data(), header.size());
  write(zeros, align_up(kPrefixBytes + header.size()) - kPrefixBytes - header.size());
  for (const TensorEntry& e : h.tensors) {
    write(graph.weights.at(e.name).raw(), e.length);
    write(zeros, align_up(e.length) - e.length);
  }
}

}  // namespace

std::vector<uint8_t> serialize(const ir::Graph& graph) {
  std::vector<uint8_t> out;
  write_checkpoint(graph, [&](const void* p, size_t n) {
    out.insert(out.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
  });
  return out;
}

void save(const ir::Graph& graph, const std::string& path) {
  // A temporary a killed save left beside the checkpoint goes first (never a living one's).
  const std::filesystem::path target(path);
  remove_abandoned_temporaries(target.parent_path().string(), target.filename().string() + ".tmp.");
  const std::string tmp = temporary_name(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path, std::string("cannot write checkpoint: ") + std::strerror(errno));
  // Written through a buffer: the tensors go from their memory to the file, never a whole
  // checkpoint in memory.
  std::vector<uint8_t> buffer;
  buffer.reserve(size_t(1) << 20);
  auto flush = [&](const uint8_t* p, size_t n) {
    for (size_t done = 0; done < n;) {
      const ssize_t w = ::write(fd, p + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        const int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        throw Error(path, std::string("cannot write checkpoint: ") + std::strerror(err));
      }
      done += size_t(w);
    }
  };
  write_checkpoint(graph, [&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    if (n >= buffer.capacity()) {  // a large tensor: straight from its memory
      flush(buffer.data(), buffer.size());
      buffer.clear();
      flush(b, n);
    } else {
      if (buffer.size() + n > buffer.capacity()) {
        flush(buffer.data(), buffer.size());
        buffer.clear();
      }
      buffer.insert(buffer.end(), b, b + n);
    }
  });
  flush(buffer.data(), buffer.size());
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw Error(path, std::string("cannot flush checkpoint: ") + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error(path, std::string("cannot move checkpoint into place: ") + std::strerror(err));
  }
  sync_directory(std::filesystem::path(path).parent_path().string());  // the rename, durable
}

Loaded deserialize(const Bytes& file, const std::string& where, bool verify) {
  const uint8_t* bytes = file.data();
  const size_t size = file.size();
  auto fail = [&](const std::string& msg) -> Error { return Error(where, msg); };
  if (size < kPrefixBytes) throw fail("truncated: " + std::to_string(size) + " bytes, a checkpoint has at least 40");
  if (std::memcmp(bytes, kMagic, 8) != 0) throw fail("not a .entity checkpoint (bad magic)");
  Loaded out;
  out.file = file;
  out.version = get_u32(bytes + 8);
  if (out.version != kFormatVersion)
    throw fail("format version " + std::to_string(out.version) + " is not supported (this build reads " +
               std::to_string(kFormatVersion) + ")");
  if (uint32_t flags = get_u32(bytes + 12)) throw fail("unknown flags " + hex(flags));
  const uint64_t header_len = get_u64(bytes + 16), data_len = get_u64(bytes + 24);
  const uint32_t header_crc = get_u32(bytes + 32);
  if (get_u32(bytes + 36) != 0) throw fail("reserved field is not zero (corrupted)");
  if (header_len > size - kPrefixBytes)
    throw fail("truncated: header length " + std::to_string(header_len) + " exceeds the file");
  const uint64_t data_start = align_up(kPrefixBytes + header_len);
  if (data_start > size || size - data_start != data_len)
    throw fail("truncated or padded: the file has " + std::to_string(size) + " bytes, the prefix says " +
               std::to_string(data_start + data_len));
  if (crc32(bytes + kPrefixBytes, header_len) != header_crc) throw fail("header checksum mismatch (corrupted)");
  if (!all_zero(bytes + kPrefixBytes + header_len, data_start - kPrefixBytes - header_len))
    throw fail("header padding is not zero (corrupted)");

  HeaderWalk walk(bytes + kPrefixBytes, header_len, where);
  walk.header();
  if (walk.used(bytes + kPrefixBytes) != header_len) throw fail("header does not decode: trailing bytes after the tensor table");
  Header h;
  try {
    std::istringstream hs(std::string(reinterpret_cast<const char*>(bytes + kPrefixBytes), header_len));
    cereal::PortableBinaryInputArchive ar(hs);
    ar(h);
  } catch (const std::exception& e) {
    throw fail(std::string("header does not decode: ") + e.what());
  }

  const uint8_t* data = bytes + data_start;
  uint64_t expected_offset = 0;
  for (const TensorEntry& e : h.tensors) {
    const std::string tw = "tensor \"" + e.name + "\"";
    DType check;
    if (!parse_dtype(dtype_name(e.dtype), &check)) throw fail(tw + ": unknown dtype");
    uint64_t want = 0;
    try {
      want = static_cast<uint64_t>(element_count(e.shape)) * dtype_size(e.dtype);
    } catch (const Error& err) {
      throw fail(tw + ": " + err.message());
    }
    if (e.offset != expected_offset) throw fail(tw + ": offset " + std::to_string(e.offset) + ", expected " + std::to_string(expected_offset));
    if (e.length != want)
      throw fail(tw + ": length " + std::to_string(e.length) + " does not match shape " + shape_str(e.shape));
    if (e.offset + e.length > data_len) throw fail(tw + ": lies past the end of the data section");
    if (verify) {
      const uint32_t crc = crc32(data + e.offset, e.length);
      if (crc != e.crc32) throw fail(tw + ": checksum mismatch (stored " + hex(e.crc32) + ", computed " + hex(crc) + ")");
    }
    const uint64_t end = align_up(e.offset + e.length);
    if (!all_zero(data + e.offset + e.length, std::min(end, data_len) - e.offset - e.length))
      throw fail(tw + ": padding is not zero (corrupted)");
    // In place: the tensor aliases the checkpoint's bytes (a mapped file is not read until used).
    const Tensor t = Tensor::view(e.dtype, e.shape, data + e.offset, file.owner());
    if (!out.graph.weights.emplace(e.name, t).second) throw fail(tw + ": appears twice");
    expected_offset = end;
  }
  if (expected_offset != data_len) throw fail("data section has " + std::to_string(data_len - expected_offset) + " unclaimed bytes");

  out.graph.metadata = std::move(h.metadata);
  out.graph.inputs = std::move(h.inputs);
  out.graph.outputs = std::move(h.outputs);
  out.graph.nodes = std::move(h.nodes);
  out.tensors = std::move(h.tensors);
  out.file_bytes = size;
  try {
    out.graph.validate();
  } catch (const Error& e) {
    throw fail("graph is inconsistent: " + std::string(e.what()));
  }
  return out;
}

Loaded deserialize(const uint8_t* bytes, size_t size, const std::string& where) {
  return deserialize(Bytes::copy_of(bytes, size), where, true);
}

Loaded load(const std::string& path, bool verify) { return deserialize(Bytes::read_file(path, "checkpoint"), path, verify); }

}  // namespace entity
}  // namespace pb
