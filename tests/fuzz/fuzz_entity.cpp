// Fuzz target fuzz_entity (docs/fuzzing.md): the .entity checkpoint reader (docs/entity-format.md)
// on bytes, then what `inspect` prints and the compile of a Network from the loaded graph.
//
// The first input byte is a mode switch, the rest is the file:
//   bit 0 clear  the file as given: the header and tensor CRCs must match or it is refused
//                (what a corrupted or hand-made file meets);
//   bit 0 set    CRC mode: the header CRC, then every tensor's CRC in the tensor table, then the
//                header CRC again are recomputed before loading, so that mutations get past the
//                checksums to the lengths, the cereal header and the graph behind them (what a
//                forged file meets: anyone can compute a CRC).
// PB_FUZZ_ENTITY_DUMP=FILE writes the file as it is loaded (checksums fixed in CRC mode), to
// look at an input with `planetbridge inspect FILE`.
// In CRC mode the target also checks the loader: a file that loads without verification must,
// with its checksums fixed, load with verification too.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "planetbridge/entity.h"
#include "planetbridge/error.h"
#include "planetbridge/network.h"

namespace {

constexpr size_t kPrefix = pb::entity::kPrefixBytes;  // 40

uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint32_t get_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}

pb::entity::Loaded load(const std::vector<uint8_t>& file, bool verify) {
  return pb::entity::deserialize(pb::Bytes::copy_of(file.data(), file.size()), "fuzz.entity", verify);
}

// The header length if the prefix holds one that fits, else 0.
uint64_t header_length(const std::vector<uint8_t>& f) {
  if (f.size() < kPrefix) return 0;
  const uint64_t h = get_u64(f.data() + 16);
  return h <= f.size() - kPrefix ? h : 0;
}

void fix_header_crc(std::vector<uint8_t>& f) {
  const uint64_t h = header_length(f);
  if (f.size() >= kPrefix) put_u32(f.data() + 32, pb::entity::crc32(f.data() + kPrefix, h));
}

// Recomputes every checksum. The tensor table closes the header; each entry is cereal's
// name (u64 length + bytes), dtype (u8), shape (u64 count + i64 each), offset (u64),
// length (u64), crc32 (u32): found from the end, entry by entry, with the table the unverified
// load read. Returns true when the file loaded without verification.
bool fix_checksums(std::vector<uint8_t>& f) {
  fix_header_crc(f);
  pb::entity::Loaded unverified;
  try {
    unverified = load(f, false);
  } catch (const pb::Error&) {
    return false;
  }
  const uint64_t h = header_length(f);
  const uint64_t data_start = pb::align_up(kPrefix + h);
  uint64_t end = kPrefix + h;
  for (auto it = unverified.tensors.rbegin(); it != unverified.tensors.rend(); ++it) {
    const uint64_t entry = 8 + it->name.size() + 1 + 8 + 8 * it->shape.size() + 8 + 8 + 4;
    if (end < kPrefix + entry || get_u32(f.data() + end - 4) != it->crc32)
      pbfuzz::fail("CRC mode: the tensor table does not end the header as docs/entity-format.md lays it out");
    put_u32(f.data() + end - 4, pb::entity::crc32(f.data() + data_start + it->offset, it->length));
    end -= entry;
  }
  fix_header_crc(f);
  return true;
}

// What `inspect` reads, then a compile with concrete input shapes (a dynamic dimension taken
// as 1), within the budget of fuzz_util.h.
void use(const pb::entity::Loaded& e) {
  std::string text = e.graph.summary();
  for (const auto& [k, v] : e.graph.metadata) text += k + v;
  for (const auto& t : e.tensors) text += t.name + pb::dtype_name(t.dtype) + pb::shape_str(t.shape);
  std::map<std::string, pb::Shape> shapes;
  for (const auto& in : e.graph.inputs) {
    pb::Shape s = in.shape;
    for (auto& d : s)
      if (d < 0) d = 1;
    shapes[in.name] = s;
  }
  if (!pbfuzz::within_budget(e.graph, shapes)) return;
  try {
    pb::Network net(e.graph, shapes);
    (void)net.output_count();
  } catch (const pb::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool crc_mode = data[0] & 1;
  std::vector<uint8_t> file(data + 1, data + size);
  const bool loads_unverified = crc_mode && fix_checksums(file);
  if (const char* dump = std::getenv("PB_FUZZ_ENTITY_DUMP")) {  // the file as loaded, for `planetbridge inspect`
    if (FILE* f = std::fopen(dump, "wb")) {
      std::fwrite(file.data(), 1, file.size(), f);
      std::fclose(f);
    }
  }
  try {
    use(load(file, true));
  } catch (const pb::Error& e) {
    if (loads_unverified) pbfuzz::fail(std::string("CRC mode: checksums recomputed, yet the verified load refuses: ") + e.what());
  }
  return 0;
}
