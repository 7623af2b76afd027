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

ActivationArena::ActivationArena(size_t reserve_bytes, Plan plan) : ActivationArena(reserve_bytes) {
  plan_ = std::make_shared<const Plan>(std::move(plan));
}

namespace {
// Best fit: the smallest gap between `taken` blocks (sorted by offset in place) that holds
// `bytes` (large gaps stay whole for large buffers), else the end of the taken blocks.
size_t best_fit(std::vector<const ActivationArena::Block*>& taken, size_t bytes) {
  std::sort(taken.begin(), taken.end(), [](const auto* a, const auto* b) { return a->offset < b->offset; });
  size_t offset = SIZE_MAX, best_gap = SIZE_MAX, end = 0;
  for (const auto* b : taken) {
    if (b->offset >= end + bytes && b->offset - end < best_gap) {
      best_gap = b->offset - end;
      offset = end;
    }
    end = std::max(end, b->offset + b->bytes);
  }
  return offset == SIZE_MAX ? end : offset;
}
}  // namespace

ActivationArena::Plan ActivationArena::offline_plan() const {
  Plan plan{blocks_, 0};
  std::vector<size_t> order(blocks_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return blocks_[a].bytes > blocks_[b].bytes; });
  std::vector<const Block*> placed, overlapping;
  for (size_t i : order) {
    Block& b = plan.blocks[i];
    overlapping.clear();
    for (const Block* o : placed)
      if (o->first <= b.last && b.first <= o->last) overlapping.push_back(o);
    b.offset = best_fit(overlapping, b.bytes);
    plan.bytes = std::max(plan.bytes, b.offset + b.bytes);
    placed.push_back(&b);
  }
  return plan;
}

void* ActivationArena::allocate(size_t bytes, size_t first, size_t last) {
  bytes = round_up(std::max<size_t>(bytes, 1), kAlign);
  size_t offset;
  if (plan_) {
    const size_t i = blocks_.size();
    diverged_ = diverged_ || i >= plan_->blocks.size() || plan_->blocks[i].bytes != bytes || plan_->blocks[i].first != first;
    if (diverged_) return nullptr;
    offset = plan_->blocks[i].offset;
  } else {
    std::vector<const Block*> live;  // blocks still read at step `first` or later
    for (const Block& b : blocks_)
      if (b.last >= first) live.push_back(&b);
    offset = best_fit(live, bytes);
  }
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
  s.offline_plan = plan_ != nullptr;
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
