#include "arena.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <map>

namespace pb::layers {

namespace {
constexpr size_t kAlign = 64;  // a cache line, and what oneDNN's AVX-512 kernels load best
size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }
}  // namespace

struct ActivationArena::Mapping {
  void* base = nullptr;
  size_t length = 0;
  ~Mapping() {
    if (length) munmap(base, length);
  }
};

ActivationArena::ActivationArena(size_t reserve_bytes) {
  const size_t length = round_up(reserve_bytes, static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  if (length == 0) return;
  // MAP_NORESERVE: only the pages the plan touches are ever committed.
  void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return;
  mapping_ = std::make_shared<Mapping>();
  mapping_->base = base;
  mapping_->length = length;
  base_ = static_cast<char*>(base);
  reserved_ = length;
}

void* ActivationArena::allocate(size_t bytes, size_t first, size_t last) {
  bytes = round_up(std::max<size_t>(bytes, 1), kAlign);
  std::vector<const Block*> live;  // blocks still read at step `first` or later
  for (const Block& b : blocks_)
    if (b.last >= first) live.push_back(&b);
  std::sort(live.begin(), live.end(), [](const Block* a, const Block* b) { return a->offset < b->offset; });
  // Best fit: the smallest gap between live blocks that holds `bytes` (large gaps stay whole
  // for large buffers), else the end of the live blocks.
  size_t offset = SIZE_MAX, best_gap = SIZE_MAX, end = 0;
  for (const Block* b : live) {
    if (b->offset >= end + bytes && b->offset - end < best_gap) {
      best_gap = b->offset - end;
      offset = end;
    }
    end = std::max(end, b->offset + b->bytes);
  }
  if (offset == SIZE_MAX) offset = end;
  if (offset + bytes > reserved_) return nullptr;
  blocks_.push_back({offset, bytes, first, last});
  high_water_ = std::max(high_water_, offset + bytes);
  return base_ + offset;
}

void ActivationArena::extend(const void* p, size_t last) {
  const char* c = static_cast<const char*>(p);
  if (!mapping_ || c < base_ || c >= base_ + reserved_) return;
  const size_t at = static_cast<size_t>(c - base_);
  // The newest block at that address: older ones there are dead by now.
  for (auto b = blocks_.rbegin(); b != blocks_.rend(); ++b)
    if (b->offset <= at && at < b->offset + b->bytes) {
      b->last = std::max(b->last, last);
      return;
    }
}

void ActivationArena::trim() {
  if (!mapping_) return;
  const size_t keep = round_up(high_water_, static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  if (keep >= reserved_) return;
  munmap(base_ + keep, reserved_ - keep);
  reserved_ = mapping_->length = keep;
}

std::shared_ptr<void> ActivationArena::owner() const { return std::shared_ptr<void>(mapping_, base_); }

MemoryStats ActivationArena::stats() const {
  MemoryStats s;
  s.arena_bytes = high_water_;
  s.buffers = blocks_.size();
  std::map<size_t, long long> delta;  // step -> bytes that become live (+) or free (-) there
  for (const Block& b : blocks_) {
    s.unshared_bytes += b.bytes;
    delta[b.first] += static_cast<long long>(b.bytes);
    if (b.last != kKept) delta[b.last + 1] -= static_cast<long long>(b.bytes);
  }
  long long live = 0;
  for (const auto& [step, d] : delta) {
    live += d;
    s.live_peak_bytes = std::max(s.live_peak_bytes, static_cast<size_t>(live));
  }
  return s;
}

}  // namespace pb::layers
