#pragma once
// .entity checkpoints (docs/entity-format.md): a fixed little-endian prefix, a cereal header
// with the graph and a tensor table, then 64-byte-aligned tensor data. Every byte is covered
// by a length, a checksum or a must-be-zero rule, so truncation and bit flips are detected.
#include <cstdint>
#include <string>
#include <vector>

#include "planetbridge/bytes.h"
#include "planetbridge/ir.h"

namespace pb::entity {

inline constexpr char kMagic[8] = {'P', 'B', 'E', 'N', 'T', 'I', 'T', 'Y'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr size_t kPrefixBytes = 40;

struct TensorEntry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  uint64_t offset = 0;  // from the start of the data section, a multiple of 64
  uint64_t length = 0;
  uint32_t crc32 = 0;
};

struct Loaded {
  Bytes file;  // what the graph's tensors alias
  ir::Graph graph;
  std::vector<TensorEntry> tensors;
  uint32_t version = 0;
  uint64_t file_bytes = 0;
};

// The bytes save() writes (for tests and tools; save() never holds them all).
std::vector<uint8_t> serialize(const ir::Graph& graph);
// Writes atomically: a temporary file beside `path`, the tensors streamed from their memory,
// flushed, then renamed over it.
void save(const ir::Graph& graph, const std::string& path);

// Checks and reads a checkpoint; its tensors alias `file` (no copy). `verify` checks every
// tensor's CRC (one pass at memory speed); without it only the prefix, header and table are
// checked and the data is not read. `where` names the source (a file name) in errors.
Loaded deserialize(const Bytes& file, const std::string& where, bool verify = true);
Loaded deserialize(const uint8_t* bytes, size_t size, const std::string& where);  // copies once
// The file mapped read-only: opening a checkpoint reads its header and table, not its data.
Loaded load(const std::string& path, bool verify = true);

uint32_t crc32(const void* data, size_t size);

}  // namespace pb::entity
