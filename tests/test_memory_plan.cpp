// The activation memory plan: the arena's best-fit placement by liveness (a buffer is free once
// its last reader has run; views and in-place results keep it; outputs are never reused), the
// offline plan a second compile follows, and networks compiled with reuse computing bit for bit
// what they compute without it, run after run.
#include <random>

#include "../layers/src/arena.h"
#include "kernel_test_util.h"
#include "planetbridge/network.h"

using pb::Shape;
using pb::Tensor;
using pb::layers::ActivationArena;
using pbtest::attrs;
using pbtest::GraphBuilder;
using pbtest::random_tensor;

namespace {
bool disjoint(const void* a, size_t an, const void* b, size_t bn) {
  const char *x = static_cast<const char*>(a), *y = static_cast<const char*>(b);
  return x + an <= y || y + bn <= x;
}
}  // namespace

TEST_CASE("memory plan: a buffer is reused once its last reader has run", "[memory]") {
  ActivationArena a(1 << 20);
  void* x = a.allocate(1000, 0, 1);  // written at step 0, read until step 1
  void* y = a.allocate(1000, 1, 2);  // written while x is still read
  REQUIRE(x != nullptr);
  REQUIRE(y != nullptr);
  CHECK(disjoint(x, 1000, y, 1000));
  void* z = a.allocate(1000, 2, 3);  // x's last reader ran at step 1
  CHECK(z == x);
  CHECK(reinterpret_cast<uintptr_t>(y) % 64 == 0);
  const pb::MemoryStats s = a.stats();
  CHECK(s.buffers == 3);
  CHECK(s.unshared_bytes == 3 * 1024);  // rounded to 64 bytes each
  CHECK(s.arena_bytes == 2 * 1024);
  CHECK(s.live_peak_bytes == 2 * 1024);
}

TEST_CASE("memory plan: views, in-place results and outputs keep their buffers", "[memory]") {
  ActivationArena a(1 << 20);
  void* x = a.allocate(512, 0, 0);
  a.extend(x, 5);  // a view of x is read until step 5
  void* y = a.allocate(512, 3, 4);
  CHECK(disjoint(x, 512, y, 512));
  void* kept = a.allocate(256, 1, ActivationArena::kKept);
  for (size_t step = 6; step < 10; ++step) CHECK(disjoint(kept, 256, a.allocate(256, step, step), 256));
  int elsewhere = 0;
  a.extend(&elsewhere, 100);  // not in the arena: ignored
  // A gap between live buffers is filled before the arena grows.
  ActivationArena b(1 << 20);
  void* p = b.allocate(64, 0, 1);
  void* q = b.allocate(64, 0, 9);
  void* r = b.allocate(64, 2, 9);
  CHECK(r == p);
  CHECK(disjoint(q, 64, r, 64));
  CHECK(b.stats().arena_bytes == 128);
}

TEST_CASE("memory plan: a buffer beyond the reservation is the caller's", "[memory]") {
  ActivationArena small(4096);
  CHECK(small.allocate(8192, 0, 0) == nullptr);
  CHECK(small.allocate(4096, 0, 0) != nullptr);
  ActivationArena none(0);
  CHECK(none.allocate(1, 0, 0) == nullptr);
  CHECK(none.stats().arena_bytes == 0);
}

TEST_CASE("memory plan: a tensor viewing the arena outlives it, and trimming keeps what is placed", "[memory]") {
  Tensor t;
  {
    ActivationArena a(1 << 24);
    void* p = a.allocate(4 * 1000, 0, ActivationArena::kKept);
    t = Tensor::view(pb::DType::f32, {1000}, p, a.owner());
    a.trim();  // gives back all but the first 4 KiB page
    for (int i = 0; i < 1000; ++i) t.data<float>()[i] = static_cast<float>(i);
  }
  CHECK(t.data<float>()[999] == 999.f);
}

TEST_CASE("memory plan: networks with reuse compute what they compute without it, run after run", "[memory]") {
  // Conv, a Pad whose border must be rewritten each run, a Conv with a residual Add computed in
  // place, a Reshape viewing its input, and a Dense chain whose buffers ping-pong.
  std::mt19937 rng(91);
  GraphBuilder gb;
  gb.input("x", random_tensor({2, 4, 10, 10}, rng));
  gb.weight("w1", random_tensor({8, 4, 3, 3}, rng)).weight("w2", random_tensor({8, 8, 3, 3}, rng));
  gb.weight("d1", random_tensor({32, 800}, rng, -0.05f, 0.05f));
  gb.weight("d2", random_tensor({32, 32}, rng)).weight("d3", random_tensor({32, 32}, rng));
  const std::vector<int64_t> one = {1, 1};
  gb.node("c1", "Conv", {"x", "w1"}, attrs({{"pads_begin", one}, {"pads_end", one}}));
  gb.node("a1", "Activation", {"c1"}, attrs({{"function", std::string("relu")}}));
  gb.node("p", "Pad", {"a1"}, attrs({{"pads_begin", std::vector<int64_t>{0, 0, 1, 1}}, {"pads_end", std::vector<int64_t>{0, 0, 1, 1}}, {"value", 0.5}}));
  gb.node("c2", "Conv", {"p", "w2"});
  gb.node("sum", "Add", {"c2", "a1"});
  gb.node("a2", "Activation", {"sum"}, attrs({{"function", std::string("relu")}}));
  gb.node("flat", "Reshape", {"a2"}, attrs({{"shape", std::vector<int64_t>{0, -1}}}));
  gb.node("f1", "Dense", {"flat", "d1"});
  gb.node("t1", "Activation", {"f1"}, attrs({{"function", std::string("tanh")}}));
  gb.node("f2", "Dense", {"t1", "d2"});
  gb.node("t2", "Activation", {"f2"}, attrs({{"function", std::string("tanh")}}));
  gb.node("f3", "Dense", {"t2", "d3"});
  gb.g.outputs = {"f3", "c1"};  // an intermediate that is also an output stays intact

  const Tensor x2 = random_tensor({2, 4, 10, 10}, rng, -3.f, 3.f);
  for (const bool optimize : {true, false})
    for (const bool blocked : {true, false}) {
      INFO("optimize " << optimize << ", blocked layouts " << blocked);
      pb::Network reused(gb.g, {}, pb::CompileOptions{optimize, blocked, true});
      pb::Network own(gb.g, {}, pb::CompileOptions{optimize, blocked, false});
      for (const Tensor* x : std::vector<const Tensor*>{&gb.feeds[0], &x2, &gb.feeds[0]}) {
        reused.run({x});
        own.run({x});
        for (size_t i = 0; i < 2; ++i) CHECK(reused.output(i).bit_equal(own.output(i)));
      }
      const pb::MemoryStats s = reused.memory_stats(), o = own.memory_stats();
      CHECK(o.arena_bytes == 0);
      CHECK(o.private_bytes > s.private_bytes);
      CHECK(s.arena_bytes < s.unshared_bytes);
      CHECK(s.arena_bytes >= s.live_peak_bytes);
    }
}

TEST_CASE("memory plan: the offline plan places every buffer knowing all lifetimes, and a second arena follows it", "[memory]") {
  // In execution order: a (64 B) dies after step 1, so b's and c's 128 B cannot use its gap and
  // d (256 B) goes on top: 576 B. Knowing all four, the plan needs the live peak, 512 B.
  ActivationArena online(1 << 20);
  struct Request {
    size_t bytes, first, last;
  };
  const std::vector<Request> requests = {{64, 0, 1}, {128, 1, 3}, {128, 2, 3}, {256, 3, ActivationArena::kKept}};
  for (const Request& r : requests) REQUIRE(online.allocate(r.bytes, r.first, r.last) != nullptr);
  CHECK(online.stats().arena_bytes == 576);
  CHECK(online.stats().live_peak_bytes == 512);
  const ActivationArena::Plan plan = online.offline_plan();
  CHECK(plan.bytes == 512);

  SECTION("the same requests get the planned offsets, never overlapping while both live") {
    ActivationArena planned(1 << 20, plan);
    std::vector<char*> at;
    for (const Request& r : requests) at.push_back(static_cast<char*>(planned.allocate(r.bytes, r.first, r.last)));
    for (size_t i = 0; i < at.size(); ++i) {
      REQUIRE(at[i] != nullptr);
      CHECK(static_cast<size_t>(at[i] - at[0]) == plan.blocks[i].offset - plan.blocks[0].offset);
      for (size_t j = 0; j < i; ++j)
        if (requests[j].last >= requests[i].first) CHECK(disjoint(at[i], requests[i].bytes, at[j], requests[j].bytes));
    }
    CHECK(planned.followed_plan());
    CHECK(planned.stats().arena_bytes == 512);
    CHECK(planned.stats().offline_plan);
  }
  SECTION("a request the plan did not make is refused, and every one after it") {
    ActivationArena planned(1 << 20, plan);
    CHECK(planned.allocate(64, 0, 1) != nullptr);
    CHECK(planned.allocate(192, 1, 3) == nullptr);  // planned: 128 bytes
    CHECK(planned.allocate(128, 2, 3) == nullptr);
    CHECK_FALSE(planned.followed_plan());
  }
  SECTION("a buffer read longer than planned breaks the plan") {
    ActivationArena planned(1 << 20, plan);
    void* a = planned.allocate(64, 0, 1);
    planned.extend(a, 2);
    for (size_t i = 1; i < requests.size(); ++i) planned.allocate(requests[i].bytes, requests[i].first, requests[i].last);
    CHECK_FALSE(planned.followed_plan());
  }
}

TEST_CASE("memory plan: a network whose buffers fragment compiles again with the offline plan, computing the same", "[memory]") {
  // The arena test's pattern as a graph: a (relu of x) dies after b = concat(a, a) is written;
  // c = relu(b) and d = concat(b, c) cannot use a's bytes in execution order.
  std::mt19937 rng(5);
  GraphBuilder gb;
  gb.input("x", random_tensor({1, 16}, rng));
  gb.node("a", "Activation", {"x"}, attrs({{"function", std::string("relu")}}));
  gb.node("b", "Concat", {"a", "a"}, attrs({{"axis", int64_t(1)}}));
  gb.node("c", "Activation", {"b"}, attrs({{"function", std::string("tanh")}}));
  gb.node("d", "Concat", {"b", "c"}, attrs({{"axis", int64_t(1)}}));
  pb::Network planned(gb.g, {});
  pb::Network own(gb.g, {}, pb::CompileOptions{true, true, false});
  planned.run(gb.feed_ptrs());
  own.run(gb.feed_ptrs());
  CHECK(planned.output(0).bit_equal(own.output(0)));
  const pb::MemoryStats s = planned.memory_stats();
  INFO("arena " << s.arena_bytes << ", live peak " << s.live_peak_bytes);
  CHECK(s.offline_plan);
  CHECK(s.arena_bytes == s.live_peak_bytes);
  CHECK(s.arena_bytes == 512);
}

TEST_CASE("threads: set_threads sets the OpenMP threads the kernels use; below 1 is an error", "[memory]") {
  const int before = pb::threads();
  pb::set_threads(1);
  CHECK(pb::threads() == 1);
  CHECK_THROWS_WITH(pb::set_threads(0), Catch::Contains("expected a count >= 1, got 0"));
  pb::set_threads(before);
  CHECK(pb::threads() == before);
}
