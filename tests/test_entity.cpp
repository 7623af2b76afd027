// .entity checkpoints (layers/include/planetbridge/entity.h): exact round trips, deterministic
// bytes, atomic writes, and every truncation and bit flip rejected with the file's name.
#include <cstring>
#include <random>
#include <sstream>

#include "planetbridge/entity.h"
#include "planetbridge/network.h"
#include "planetbridge/ops.h"
#include "test_util.h"

using pb::DType;
using pb::Shape;
using pb::Tensor;
using pb::ir::Attrs;
using pb::ir::Graph;
using pb::ir::Node;
using pbtest::ErrorAt;
using pbtest::random_tensor;

namespace {

Node make_node(const std::string& name, const std::string& op, std::vector<std::string> inputs) {
  Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(inputs);
  n.outputs = {name};
  n.origin = "fx:" + name + " (Test)";
  return n;
}

// A runnable graph (Dense -> LeakyReLU -> Dense -> Softmax) that also carries attributes of
// every variant kind and weights of every dtype, including empty and scalar tensors.
Graph rich_graph() {
  std::mt19937 rng(2024);
  Graph g;
  g.inputs = {{"x", DType::f32, {-1, 4}}};
  g.weights["fc1.weight"] = random_tensor({3, 4}, rng);
  g.weights["fc1.bias"] = random_tensor({3}, rng);  // 12 bytes: padded to 64
  g.weights["fc2.weight"] = random_tensor({2, 3}, rng);
  Tensor table(DType::f64, {2, 2});
  for (int i = 0; i < 4; ++i) table.data<double>()[i] = 0.1 * i - 7.25;
  g.weights["table"] = table;
  Tensor ids(DType::i32, {5});
  for (int i = 0; i < 5; ++i) ids.data<int32_t>()[i] = -1000 * i + 3;
  g.weights["ids"] = ids;
  Tensor big(DType::i64, {2});
  big.data<int64_t>()[0] = int64_t(1) << 50;
  big.data<int64_t>()[1] = -5;
  g.weights["big"] = big;
  g.weights["empty"] = Tensor(DType::f32, {0, 4});
  g.weights["scalar"] = pbtest::f32({}, {3.5f});

  Node fc1 = make_node("fc1", "Dense", {"x", "fc1.weight", "fc1.bias"});
  Node act = make_node("act", "Activation", {"fc1"});
  act.attrs.set("function", std::string("leaky_relu"));
  act.attrs.set("alpha", 0.2);
  act.attrs.set("one_int", int64_t(1));
  act.attrs.set("one_float", 1.0);
  act.attrs.set("dims", std::vector<int64_t>{1, -2, int64_t(1) << 40});
  act.attrs.set("scales", std::vector<double>{0.5, -1e-300, 1e300});
  act.attrs.set("empty_ints", std::vector<int64_t>{});
  act.attrs.set("note", std::string("unicode \xc3\xa9 and \"quotes\""));
  Node fc2 = make_node("fc2", "Dense", {"act", "fc2.weight", ""});
  Node sm = make_node("sm", "Softmax", {"fc2"});
  sm.attrs.set("axis", int64_t(-1));
  sm.attrs.set("log", int64_t(0));
  g.nodes = {fc1, act, fc2, sm};
  g.outputs = {"sm"};
  g.metadata = {{"planet", "pytorch"}, {"planet_version", "1.13.0a0"}, {"model_id", "rich"}, {"empty", ""}};
  return g;
}

void require_same_graph(const Graph& a, const Graph& b) {
  REQUIRE(a.inputs.size() == b.inputs.size());
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    CHECK(a.inputs[i].name == b.inputs[i].name);
    CHECK(a.inputs[i].dtype == b.inputs[i].dtype);
    CHECK(a.inputs[i].shape == b.inputs[i].shape);
  }
  CHECK(a.outputs == b.outputs);
  REQUIRE(a.nodes.size() == b.nodes.size());
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    INFO("node " << a.nodes[i].name);
    CHECK(a.nodes[i].name == b.nodes[i].name);
    CHECK(a.nodes[i].op == b.nodes[i].op);
    CHECK(a.nodes[i].inputs == b.nodes[i].inputs);
    CHECK(a.nodes[i].outputs == b.nodes[i].outputs);
    CHECK(a.nodes[i].origin == b.nodes[i].origin);
    CHECK(a.nodes[i].attrs == b.nodes[i].attrs);  // variant kind and value
  }
  CHECK(a.metadata == b.metadata);
  REQUIRE(a.weights.size() == b.weights.size());
  for (const auto& [name, t] : a.weights) {
    INFO("weight " << name);
    REQUIRE(b.weights.count(name) == 1);
    CHECK(b.weights.at(name).bit_equal(t));
  }
}

std::vector<uint8_t> serialized() { return pb::entity::serialize(rich_graph()); }

uint64_t u64_at(const std::vector<uint8_t>& b, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | b[at + static_cast<size_t>(i)];
  return v;
}

}  // namespace

TEST_CASE("entity: save and load round trip the whole graph", "[entity]") {
  pbtest::TempDir tmp;
  const Graph g = rich_graph();
  const std::string path = tmp.file("rich.entity");
  pb::entity::save(g, path);
  const pb::entity::Loaded loaded = pb::entity::load(path);
  require_same_graph(g, loaded.graph);
  CHECK(loaded.version == pb::entity::kFormatVersion);
  CHECK(loaded.file_bytes == std::filesystem::file_size(path));

  const Attrs& a = loaded.graph.find_node("act")->attrs;
  CHECK(std::holds_alternative<int64_t>(a.all().at("one_int")));
  CHECK(std::holds_alternative<double>(a.all().at("one_float")));
  CHECK(a.ints("dims") == std::vector<int64_t>{1, -2, int64_t(1) << 40});
  CHECK(std::get<std::vector<double>>(a.all().at("scales")) == std::vector<double>{0.5, -1e-300, 1e300});
  CHECK(a.s("note") == "unicode \xc3\xa9 and \"quotes\"");

  // The tensor table: in name order, 64-byte aligned, with correct checksums.
  REQUIRE(loaded.tensors.size() == g.weights.size());
  for (const auto& e : loaded.tensors) {
    INFO(e.name);
    CHECK(e.offset % 64 == 0);
    const Tensor& t = g.weights.at(e.name);
    CHECK(e.length == t.nbytes());
    CHECK(e.crc32 == pb::entity::crc32(t.raw(), t.nbytes()));
    CHECK(e.shape == t.shape());
  }
}

TEST_CASE("entity: crc32 is the standard CRC-32", "[entity]") {
  CHECK(pb::entity::crc32("123456789", 9) == 0xCBF43926u);
  CHECK(pb::entity::crc32("", 0) == 0u);
}

TEST_CASE("entity: the same graph always gives the same bytes", "[entity]") {
  pbtest::TempDir tmp;
  const std::vector<uint8_t> a = serialized(), b = serialized();
  CHECK(a == b);
  CHECK(a.size() % 64 == 0);
  pb::entity::save(rich_graph(), tmp.file("one.entity"));
  pb::entity::save(rich_graph(), tmp.file("two.entity"));
  CHECK(pbtest::read_bytes(tmp.file("one.entity")) == a);
  CHECK(pbtest::read_bytes(tmp.file("two.entity")) == a);
  // Saving over an existing checkpoint replaces it.
  pb::entity::save(rich_graph(), tmp.file("one.entity"));
  CHECK(pbtest::read_bytes(tmp.file("one.entity")) == a);
}

TEST_CASE("entity: an atomic save leaves no temporary file behind", "[entity]") {
  pbtest::TempDir tmp;
  pb::entity::save(rich_graph(), tmp.file("a.entity"));
  pb::entity::save(rich_graph(), tmp.file("a.entity"));
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(tmp.path())) names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"a.entity"});

  const std::string nowhere = tmp.file("missing-dir/b.entity");
  CHECK_THROWS_MATCHES(pb::entity::save(rich_graph(), nowhere), pb::Error, ErrorAt(nowhere, "cannot write checkpoint"));
  CHECK_FALSE(std::filesystem::exists(tmp.path() / "missing-dir"));
}

TEST_CASE("entity: a missing file is an error naming it", "[entity]") {
  pbtest::TempDir tmp;
  const std::string path = tmp.file("nope.entity");
  CHECK_THROWS_MATCHES(pb::entity::load(path), pb::Error, ErrorAt(path, "cannot open checkpoint"));
}

TEST_CASE("entity: wrong magic and wrong version are rejected", "[entity]") {
  std::vector<uint8_t> b = serialized();
  b[0] = 'X';
  CHECK_THROWS_MATCHES(pb::entity::deserialize(b.data(), b.size(), "m.entity"), pb::Error,
                       ErrorAt("m.entity", "not a .entity checkpoint (bad magic)"));
  b = serialized();
  b[8] = 2;
  CHECK_THROWS_MATCHES(pb::entity::deserialize(b.data(), b.size(), "m.entity"), pb::Error,
                       ErrorAt("m.entity", "format version 2 is not supported (this build reads 1)"));
  // A stream is not a checkpoint.
  static const char kText[] = "PBSTRM\0\1 and then some more bytes to pass forty";
  const std::string text(kText, sizeof kText - 1);
  CHECK_THROWS_MATCHES(pb::entity::deserialize(reinterpret_cast<const uint8_t*>(text.data()), text.size(), "s.pbstream"),
                       pb::Error, ErrorAt("s.pbstream", "bad magic"));
}

TEST_CASE("entity: every truncation is rejected with the file name", "[entity]") {
  pbtest::TempDir tmp;
  const std::vector<uint8_t> b = serialized();
  std::vector<std::string> problems;
  for (size_t n = 0; n < b.size(); ++n) {
    try {
      pb::entity::deserialize(b.data(), n, "cut.entity");
      problems.push_back(std::to_string(n) + ": accepted");
    } catch (const pb::Error& e) {
      if (e.where() != "cut.entity") problems.push_back(std::to_string(n) + ": where() is " + e.where());
    } catch (const std::exception& e) {
      problems.push_back(std::to_string(n) + ": not a pb::Error: " + e.what());
    }
  }
  INFO("first problems: " << (problems.empty() ? "" : problems.front()));
  CHECK(problems.empty());

  // The same through files on disk, at a few points: prefix, header, data, last byte.
  const uint64_t header_len = u64_at(b, 16);
  for (size_t n : {size_t(0), size_t(10), size_t(39), size_t(40), size_t(40 + header_len / 2), size_t(40 + header_len),
                   b.size() - 70, b.size() - 1}) {
    INFO("truncated to " << n << " of " << b.size());
    const std::string path = tmp.file("cut" + std::to_string(n) + ".entity");
    pbtest::write_bytes(path, b.data(), n);
    CHECK_THROWS_MATCHES(pb::entity::load(path), pb::Error, ErrorAt(path, ""));
  }
  CHECK_THROWS_MATCHES(pb::entity::deserialize(b.data(), 39, "cut.entity"), pb::Error,
                       ErrorAt("cut.entity", "truncated: 39 bytes, a checkpoint has at least 40"));

  std::vector<uint8_t> longer = b;
  longer.push_back(0);
  CHECK_THROWS_MATCHES(pb::entity::deserialize(longer.data(), longer.size(), "long.entity"), pb::Error,
                       ErrorAt("long.entity", "truncated or padded"));
}

TEST_CASE("entity: every single bit flip is rejected with the file name", "[entity]") {
  const std::vector<uint8_t> b = serialized();
  const uint64_t header_len = u64_at(b, 16), data_len = u64_at(b, 24);
  const size_t data_start = pb::align_up(40 + header_len);
  REQUIRE(data_start + data_len == b.size());
  REQUIRE(data_start > 40 + header_len);  // the layout has header padding to corrupt
  // Regions flipped: the fixed prefix, the header, its padding, tensor data and tensor padding.
  std::map<std::string, size_t> flips;
  std::vector<std::string> problems;
  std::vector<uint8_t> copy = b;
  for (size_t pos = 0; pos < b.size(); ++pos) {
    const char* region = pos < 40 ? "prefix" : pos < 40 + header_len ? "header" : pos < data_start ? "header padding" : "data";
    for (int bit = 0; bit < 8; ++bit) {
      copy[pos] = static_cast<uint8_t>(b[pos] ^ (1u << bit));
      ++flips[region];
      try {
        pb::entity::deserialize(copy.data(), copy.size(), "flip.entity");
        problems.push_back("byte " + std::to_string(pos) + " bit " + std::to_string(bit) + " (" + region + "): accepted");
      } catch (const pb::Error& e) {
        if (e.where() != "flip.entity") problems.push_back("byte " + std::to_string(pos) + ": where() is " + e.where());
      } catch (const std::exception& e) {
        problems.push_back("byte " + std::to_string(pos) + " (" + region + "): not a pb::Error: " + e.what());
      }
      copy[pos] = b[pos];
    }
  }
  std::string regions;
  for (const auto& [region, n] : flips) regions += region + ": " + std::to_string(n) + " flips; ";
  INFO(regions);
  INFO(problems.size() << " problems; first: " << (problems.empty() ? "" : problems.front()));
  CHECK(problems.empty());
  CHECK(flips.size() == 4);
}

TEST_CASE("entity: a forged list size with a valid header CRC is refused before anything is allocated", "[entity]") {
  // Anyone can recompute the header's CRC: a size claiming 10^12 entries once made `inspect`
  // allocate gigabytes. Every size in the header must fit in the bytes that remain.
  const std::vector<uint8_t> good = serialized();
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | good[16 + i];
  auto forged = [&](size_t at, uint64_t value) {
    std::vector<uint8_t> b = good;
    for (int i = 0; i < 8; ++i) b[40 + at + i] = uint8_t(value >> (8 * i));
    const uint32_t crc = pb::entity::crc32(b.data() + 40, header_len);
    for (int i = 0; i < 4; ++i) b[32 + i] = uint8_t(crc >> (8 * i));
    return b;
  };
  for (uint64_t claim : {uint64_t(1) << 40, uint64_t(1) << 62, ~uint64_t(0), header_len}) {
    INFO(claim);
    const std::vector<uint8_t> b = forged(1, claim);  // the metadata's entry count, after the endianness byte
    CHECK_THROWS_MATCHES(pb::entity::deserialize(b.data(), b.size(), "forged.entity"), pb::Error,
                         ErrorAt("forged.entity", "header does not decode: a header list claims"));
  }
  // The first metadata key's length, the same way.
  const std::vector<uint8_t> b = forged(9, uint64_t(1) << 50);
  CHECK_THROWS_MATCHES(pb::entity::deserialize(b.data(), b.size(), "forged.entity"), pb::Error,
                       ErrorAt("forged.entity", "header does not decode"));
}

TEST_CASE("entity: a header that says big-endian is refused before cereal reads a size", "[entity]") {
  // Found by fuzz_entity (tests/fuzz/regressions/entity/): with cereal's endianness byte at 0,
  // cereal byte-swaps every size it reads, so the sizes the header walk had checked were not
  // the ones it allocated (a 1 became 2^56: a multi-petabyte string).
  std::vector<uint8_t> b = serialized();
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | b[16 + i];
  REQUIRE(b[40] == 1);
  b[40] = 0;
  const uint32_t crc = pb::entity::crc32(b.data() + 40, header_len);
  for (int i = 0; i < 4; ++i) b[32 + i] = uint8_t(crc >> (8 * i));
  CHECK_THROWS_MATCHES(pb::entity::deserialize(b.data(), b.size(), "forged.entity"), pb::Error,
                       ErrorAt("forged.entity", "header does not decode: the header is not little-endian"));
}

TEST_CASE("entity: a reloaded checkpoint runs bit-identically", "[entity]") {
  pbtest::TempDir tmp;
  // Only the attributes the op schemas know: the others are there for the format's round trip.
  Graph g = rich_graph();
  for (Node& n : g.nodes) {
    const pb::ir::OpSchema& schema = pb::ir::schema_of(n);
    for (auto it = n.attrs.all().begin(); it != n.attrs.all().end();)
      it = std::any_of(schema.attrs.begin(), schema.attrs.end(), [&](const auto& a) { return a.name == it->first; })
               ? std::next(it)
               : n.attrs.all().erase(it);
  }
  pb::entity::save(g, tmp.file("run.entity"));
  const pb::entity::Loaded loaded = pb::entity::load(tmp.file("run.entity"));
  std::mt19937 rng(77);
  const Tensor x = random_tensor({16, 4}, rng);
  for (bool fuse : {true, false}) {
    INFO("fuse " << fuse);
    pb::Network original(g, {{"x", {16, 4}}}, pb::CompileOptions{fuse});
    pb::Network reloaded(loaded.graph, {{"x", {16, 4}}}, pb::CompileOptions{fuse});
    original.run({&x});
    reloaded.run({&x});
    REQUIRE(original.output_count() == 1);
    CHECK(original.output(0).shape() == Shape{16, 2});
    CHECK(original.output(0).bit_equal(reloaded.output(0)));
  }
}
