#pragma once
// Activation memory, planned while a network compiles. Every value buffer gets an offset in one
// arena; a buffer whose values have all been read for the last time is free for the values
// computed after that (best fit, in execution order). Kernels bind raw pointers when they are
// built, so the arena's address range is reserved up front (virtual memory, not committed) and
// trimmed to the high-water mark once the network is compiled.
//
// Placing in execution order cannot know which buffers come later, and fragments (ViT: 51 MiB
// where 38 are live at most). Once a compile has recorded every buffer with its whole lifetime,
// offline_plan() places them again knowing all of them (largest first, TFLite's "greedy by
// size"); a second compile, making the same requests in the same order, follows that plan.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "planetbridge/network.h"

namespace pb::layers {

class ActivationArena {
 public:
  static constexpr size_t kKept = SIZE_MAX;  // `last` of a buffer read after the run (outputs)

  // Reserves `reserve_bytes` of address space; a reservation the system refuses leaves the
  // arena empty (every allocate() answers nullptr: the network runs without reuse).
  explicit ActivationArena(size_t reserve_bytes);

  struct Block {
    size_t offset, bytes, first, last;
    bool operator==(const Block& o) const { return offset == o.offset && bytes == o.bytes && first == o.first && last == o.last; }
  };
  // Offsets for the buffers placed so far, knowing every lifetime: largest first, each in the
  // smallest gap free throughout its lifetime. `bytes`: the plan's high-water mark.
  struct Plan {
    std::vector<Block> blocks;
    size_t bytes = 0;
  };
  Plan offline_plan() const;
  // An arena whose i-th allocate() answers plan.blocks[i]'s offset while the requests are the
  // planned ones (same bytes and first step); from the first that differs, nullptr.
  ActivationArena(size_t reserve_bytes, Plan plan);
  // Whether every buffer was placed as planned and lived as long as planned (extend() included):
  // only then is the planned arena safe to run.
  bool followed_plan() const { return plan_ && plan_->blocks == blocks_; }
  ActivationArena(const ActivationArena&) = delete;
  ActivationArena& operator=(const ActivationArena&) = delete;

  // A buffer written at step `first` and read until step `last` (inclusive). nullptr when it does
  // not fit the reservation: the caller allocates it itself.
  void* allocate(size_t bytes, size_t first, size_t last);
  // The buffer holding `p` is also read until `last` (another value now lives in its bytes: a
  // view, or a result computed in place). Pointers outside the arena are ignored.
  void extend(const void* p, size_t last);
  // Gives the reservation above the high-water mark back to the system.
  void trim();
  // Keeps the arena's memory mapped while a tensor viewing it lives (outputs outlive a network).
  std::shared_ptr<void> owner() const;
  // What the plan achieved; private_bytes is counted by the caller.
  MemoryStats stats() const;

 private:
  struct Mapping;
  std::shared_ptr<Mapping> mapping_;  // null when nothing could be reserved
  char* base_ = nullptr;
  size_t reserved_ = 0;
  size_t high_water_ = 0;
  std::vector<Block> blocks_;  // every buffer ever placed, in allocation order
  std::shared_ptr<const Plan> plan_;  // followed by allocate() when set
  bool diverged_ = false;             // a request differed from the plan: no more placements
};

}  // namespace pb::layers
