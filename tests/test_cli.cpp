// The planetbridge command line: usage errors exit 2 and name the option.
#include "planetbridge/entity.h"
#include "test_util.h"

using pbtest::quote;
using pbtest::shell;

TEST_CASE("cli: check refuses a tolerance that is not a finite number >= 0", "[cli]") {
  pbtest::TempDir tmp;
  const std::string stream = PB_SOURCE_DIR "/plugins/pytorch/tests/streams/linear_square.json";
  for (const char* bad : {"nan", "-1", "inf", "abc", "1e-5x"}) {
    INFO(bad);
    const std::string out = tmp.file("out.txt");
    const int rc = shell(std::string(PB_CLI) + " check " + quote(stream) + " --atol " + bad + " --data " + quote(tmp.file("d")) + " >" +
                         quote(out) + " 2>&1");
    CHECK(rc == 2);
    CHECK_THAT(pbtest::read_text(out), Catch::Contains("--atol") && Catch::Contains("must be a finite number >= 0"));
  }
  CHECK(shell(std::string(PB_CLI) + " check " + quote(stream) + " --atol 0 --rtol 1e-6 --data " + quote(tmp.file("d")) + " >/dev/null 2>&1") ==
        0);
}

TEST_CASE("cli: a suite with no fixtures names the file, not --fixture", "[cli]") {
  pbtest::TempDir tmp;
  pbtest::write_text(tmp.file("empty.yaml"), "suite: x\nfixtures: []\n");
  const std::string out = tmp.file("out.txt");
  CHECK(shell(std::string(PB_CLI) + " run " + quote(tmp.file("empty.yaml")) + " >" + quote(out) + " 2>&1") == 2);
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("empty.yaml:2: fixtures: expected a non-empty list of fixtures"));
}

TEST_CASE("cli: inspect verifies every checksum unless --no-verify, which reads no data", "[cli]") {
  pbtest::TempDir tmp;
  pb::ir::Graph g;
  g.inputs.push_back({"x", pb::DType::f32, {-1, 2}});
  g.weights["w"] = pb::filled({3, 2}, 0.5);
  g.nodes.push_back(pbtest::make_node("y", "Dense", {"x", "w"}));
  g.outputs = {"y"};
  const std::string path = tmp.file("m.entity");
  pb::entity::save(g, path);
  std::vector<uint8_t> bytes = pbtest::read_bytes(path);
  bytes[bytes.size() - 64] ^= 0x40;  // the first byte of w (24 bytes, padded to 64: the last section)
  pbtest::write_bytes(path, bytes.data(), bytes.size());
  const std::string out = tmp.file("out.txt");
  CHECK(shell(std::string(PB_CLI) + " inspect " + quote(path) + " >" + quote(out) + " 2>&1") == 2);
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("tensor \"w\": checksum mismatch"));
  CHECK(shell(std::string(PB_CLI) + " inspect --no-verify " + quote(path) + " >" + quote(out) + " 2>&1") == 0);
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("checksums not verified (--no-verify)") && Catch::Contains("w "));
}

TEST_CASE("cli: inspect --passes compiles the checkpoint: passes, kernels, activation memory", "[cli]") {
  pbtest::TempDir tmp;
  pb::ir::Graph g;
  g.inputs.push_back({"x", pb::DType::f32, {-1, 2}});
  g.weights["w"] = pb::filled({3, 2}, 0.5);
  g.nodes.push_back(pbtest::make_node("fc", "Dense", {"x", "w"}));
  g.nodes.push_back(pbtest::make_node("t", "Transpose", {"fc"}, pbtest::attrs({{"perm", std::vector<int64_t>{1, 0}}})));
  g.nodes.push_back(pbtest::make_node("back", "Transpose", {"t"}, pbtest::attrs({{"perm", std::vector<int64_t>{1, 0}}})));
  g.nodes.push_back(pbtest::make_node("y", "Activation", {"back"}, pbtest::attrs({{"function", std::string("relu")}})));
  g.outputs = {"y"};
  const std::string path = tmp.file("m.entity");
  pb::entity::save(g, path);
  const std::string out = tmp.file("out.txt");
  CHECK(shell(std::string(PB_CLI) + " inspect --passes --batch 4 " + quote(path) + " >" + quote(out) + " 2>&1") == 0);
  const std::string text = pbtest::read_text(out);
  CHECK_THAT(text, Catch::Contains("compiled for x [4, 2] (open dims set to --batch 4)"));
  CHECK_THAT(text, Catch::Contains("cancel_layout_pairs   4 -> 2 nodes: -2 Transpose"));
  CHECK_THAT(text, Catch::Contains("fuse_activations      2 -> 1 nodes: -1 Activation"));
  CHECK_THAT(text, Catch::Contains("kernels (1 nodes)") && Catch::Contains("activation memory"));
  CHECK(shell(std::string(PB_CLI) + " inspect --passes --batch 0 " + quote(path) + " >" + quote(out) + " 2>&1") == 2);
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("--batch"));
}

TEST_CASE("cli: --threads sets the kernels' threads; a count below 1 is refused", "[cli]") {
  pbtest::TempDir tmp;
  const std::string stream = PB_SOURCE_DIR "/plugins/pytorch/tests/streams/linear_square.json";
  const std::string out = tmp.file("out.txt");
  CHECK(shell(std::string(PB_CLI) + " --threads 0 check " + quote(stream) + " >" + quote(out) + " 2>&1") == 2);
  CHECK_THAT(pbtest::read_text(out), Catch::Contains("--threads"));
  CHECK(shell(std::string(PB_CLI) + " check " + quote(stream) + " --threads 1 --data " + quote(tmp.file("d")) + " >" + quote(out) + " 2>&1") == 0);
}
