#pragma once
// Activation memory, planned while a network compiles. Every value buffer gets an offset in one
// arena; a buffer whose values have all been read for the last time is free for the values
// computed after that (first fit, in execution order). Kernels bind raw pointers when they are
// built, so the arena's address range is reserved up front (virtual memory, not committed) and
// trimmed to the high-water mark once the network is compiled.
#include <cstddef>
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
  struct Block {
    size_t offset, bytes, first, last;
  };
  struct Mapping;
  std::shared_ptr<Mapping> mapping_;  // null when nothing could be reserved
  char* base_ = nullptr;
  size_t reserved_ = 0;
  size_t high_water_ = 0;
  std::vector<Block> blocks_;  // every buffer ever placed, in allocation order
};

}  // namespace pb::layers
