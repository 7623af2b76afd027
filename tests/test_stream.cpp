// The stream reader (core/include/planetbridge/stream.h, docs/stream-format.md):
// good documents in every encoding, and every malformed input rejected with its JSON path.
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>

#include <thread>

#include "planetbridge/stream.h"
#include "test_util.h"

using nlohmann::json;
using pbtest::ErrorAt;

namespace {

const std::string W = "tensors[\"0.weight\"]";  // the path of the tensor "0.weight"

json base_doc() {
  json d;
  d["format"] = "planetbridge.stream";
  d["version"] = 1;
  d["planet"] = "pytorch";
  d["planet_version"] = "1.13.0";
  d["model_id"] = "tiny";
  d["model"] = json::object();
  d["tensors"]["0.weight"] = {{"dtype", "f32"}, {"shape", json::array({2, 2})}, {"data", json::array({1.0, -2.0, 3.5, 4.0})}};
  d["tensors"]["x"] = {{"dtype", "f32"}, {"shape", json::array({1, 2})}, {"data", json::array({0.5, 1.0})}};
  d["tensors"]["y"] = {{"dtype", "f32"}, {"shape", json::array({1, 2})}, {"data", json::array({-1.5, 4.75})}};
  d["inputs"] = json::array({"x"});
  d["expected"] = json::array({"y"});
  return d;
}

pb::Stream from_text(const std::string& s) { return pb::read_stream_bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }
pb::Stream from_json(const json& doc) { return from_text(doc.dump()); }
pb::Stream from_bytes(const std::vector<uint8_t>& b) { return pb::read_stream_bytes(b.data(), b.size()); }

void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

// A hand-made binary frame, so that offsets and lengths can be anything.
std::vector<uint8_t> make_frame(const json& doc, const std::vector<uint8_t>& data) {
  const std::string text = doc.dump();
  std::vector<uint8_t> out(pb::kStreamMagic, pb::kStreamMagic + 8);
  put_u64(out, text.size());
  put_u64(out, data.size());
  out.insert(out.end(), text.begin(), text.end());
  out.resize(pb::align_up(out.size()), 0);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::string b64_floats(const std::vector<float>& v) { return pb::base64_encode(v.data(), v.size() * sizeof(float)); }

// A framed stream with a few tensors of every dtype.
std::map<std::string, pb::Tensor> sample_tensors() {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::map<std::string, pb::Tensor> ts;
  pb::Tensor w(pb::DType::f32, {3, 5});
  for (int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = u(rng);
  ts["0.weight"] = w;
  pb::Tensor ids(pb::DType::i64, {4});
  const int64_t idv[] = {1, -2, 3, int64_t(1) << 40};
  std::memcpy(ids.raw(), idv, sizeof idv);
  ts["ids"] = ids;
  pb::Tensor small(pb::DType::i32, {3});
  const int32_t sv[] = {7, -8, 9};
  std::memcpy(small.raw(), sv, sizeof sv);
  ts["small"] = small;
  pb::Tensor x(pb::DType::f64, {2, 3});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<double>()[i] = 0.25 * double(i) - 1;
  ts["x"] = x;
  ts["y"] = pbtest::f32({2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  ts["scalar"] = pbtest::f32({}, {42});
  ts["empty"] = pb::Tensor(pb::DType::f32, {0, 3});
  return ts;
}

json framed_doc() {
  json d = base_doc();
  d.erase("tensors");
  d["inputs"] = json::array({"x"});
  d["expected"] = json::array({"y"});
  return d;
}

}  // namespace

// ------------------------------------------------------------------ base64

TEST_CASE("stream: base64 round trip and RFC 4648 vectors", "[stream]") {
  CHECK(pb::base64_encode("foobar", 6) == "Zm9vYmFy");
  CHECK(pb::base64_encode("fooba", 5) == "Zm9vYmE=");
  CHECK(pb::base64_encode("foob", 4) == "Zm9vYg==");
  CHECK(pb::base64_encode("", 0).empty());
  const auto d = pb::base64_decode("Zm9vYg==", "w");
  CHECK(std::string(d.begin(), d.end()) == "foob");
  for (size_t n = 0; n < 10; ++n) {
    std::vector<uint8_t> bytes;
    for (size_t i = 0; i < n; ++i) bytes.push_back(uint8_t(250 - 37 * i));
    INFO("length " << n);
    CHECK(pb::base64_decode(pb::base64_encode(bytes.data(), n), "w") == bytes);
  }
}

TEST_CASE("stream: base64 errors name the path", "[stream]") {
  CHECK_THROWS_MATCHES(pb::base64_decode("AAA*", "p.b64"), pb::Error, ErrorAt("p.b64", "invalid base64 character '*' at offset 3"));
  CHECK_THROWS_MATCHES(pb::base64_decode("AAAAA", "p.b64"), pb::Error, ErrorAt("p.b64", "not a multiple of 4"));
  CHECK_THROWS_MATCHES(pb::base64_decode("A===", "p.b64"), pb::Error, ErrorAt("p.b64", "invalid base64 character '='"));
  CHECK_THROWS_MATCHES(pb::base64_decode("AB=A", "p.b64"), pb::Error, ErrorAt("p.b64", "invalid base64 character '='"));
  CHECK_THROWS_MATCHES(pb::base64_decode("AA==AAAA", "p.b64"), pb::Error, ErrorAt("p.b64", "invalid base64 character"));
}

// ------------------------------------------------------------------ good documents

TEST_CASE("stream: data arrays decode with their dtypes", "[stream]") {
  json d = base_doc();
  d["tensors"]["ids"] = {{"dtype", "i64"}, {"shape", json::array({3})}, {"data", json::array({1, -2, 9007199254740993LL})}};
  d["tensors"]["small"] = {{"dtype", "i32"}, {"shape", json::array({2})}, {"data", json::array({2147483647, -2147483648LL})}};
  d["tensors"]["dbl"] = {{"dtype", "f64"}, {"shape", json::array()}, {"data", json::array({0.1})}};
  d["tensors"]["none"] = {{"dtype", "f32"}, {"shape", json::array({0, 4})}, {"data", json::array()}};
  d["tensors"]["intish"] = {{"dtype", "i64"}, {"shape", json::array({1})}, {"data", json::array({3.0})}};
  pb::Stream s = from_json(d);
  CHECK(s.planet == "pytorch");
  CHECK(s.planet_version == "1.13.0");
  CHECK(s.engine == "pytorch");  // defaults to the planet
  CHECK(s.engine_label() == "pytorch (pytorch 1.13.0)");
  CHECK(s.model_id == "tiny");
  CHECK(s.inputs == std::vector<std::string>{"x"});
  CHECK(s.expected == std::vector<std::string>{"y"});
  CHECK(s.taps.empty());
  const pb::Tensor& w = s.tensors.at("0.weight");
  CHECK(w.dtype() == pb::DType::f32);
  CHECK(w.shape() == pb::Shape{2, 2});
  CHECK(std::vector<float>(w.data<float>(), w.data<float>() + 4) == std::vector<float>{1, -2, 3.5, 4});
  const pb::Tensor& ids = s.tensors.at("ids");
  CHECK(ids.data<int64_t>()[2] == 9007199254740993LL);  // exact beyond 2^53
  CHECK(s.tensors.at("small").data<int32_t>()[1] == INT32_MIN);
  CHECK(s.tensors.at("dbl").shape().empty());
  CHECK(s.tensors.at("dbl").data<double>()[0] == 0.1);
  CHECK(s.tensors.at("none").numel() == 0);
  CHECK(s.tensors.at("intish").data<int64_t>()[0] == 3);
  CHECK(s.model().path() == "model");
  CHECK(&s.tensor("x", "inputs[0]") == &s.tensors.at("x"));
  CHECK(s.find_tensor("nope") == nullptr);
  CHECK_THROWS_MATCHES(s.tensor("nope", "model.graph[0]"), pb::Error, ErrorAt("model.graph[0]", "names tensor \"nope\""));
}

TEST_CASE("stream: b64 tensors decode to the exact bytes", "[stream]") {
  json d = base_doc();
  const std::vector<float> v = {1.f, -2.f, 3.5f, 1e-30f};
  d["tensors"]["0.weight"] = {{"dtype", "f32"}, {"shape", json::array({2, 2})}, {"b64", b64_floats(v)}};
  const double dv[] = {0.1, -1e300};
  d["tensors"]["d"] = {{"dtype", "f64"}, {"shape", json::array({2})}, {"b64", pb::base64_encode(dv, sizeof dv)}};
  d["tensors"]["z"] = {{"dtype", "i32"}, {"shape", json::array({0})}, {"b64", ""}};
  d["engine"] = "torch";
  pb::Stream s = from_json(d);
  const pb::Tensor& w = s.tensors.at("0.weight");
  CHECK(std::memcmp(w.raw(), v.data(), 16) == 0);
  CHECK(std::memcmp(s.tensors.at("d").raw(), dv, sizeof dv) == 0);
  CHECK(s.tensors.at("z").numel() == 0);
  CHECK(s.engine_label() == "pytorch (torch 1.13.0)");
}

TEST_CASE("stream: binary framing round trip via write_framed", "[stream]") {
  const auto ts = sample_tensors();
  json doc = framed_doc();
  doc["tensors"]["tiny"] = {{"dtype", "i64"}, {"shape", json::array({3})}, {"data", json::array({1, 2, 3})}};
  const std::vector<uint8_t> bytes = pb::write_framed(doc, ts);

  REQUIRE(bytes.size() >= pb::kStreamHeaderBytes);
  CHECK(std::memcmp(bytes.data(), pb::kStreamMagic, 8) == 0);
  pb::Frame f = pb::parse_frame(bytes.data(), bytes.size());
  CHECK(f.framed);
  for (const auto& [name, t] : ts) {
    const uint64_t off = f.doc["tensors"][name]["offset"].get<uint64_t>();
    CHECK(off % 64 == 0);
    CHECK(f.doc["tensors"][name]["nbytes"].get<uint64_t>() == t.nbytes());
  }

  pb::Stream s = from_bytes(bytes);
  for (const auto& [name, t] : ts) {
    INFO(name);
    REQUIRE(s.tensors.count(name) == 1);
    CHECK(s.tensors.at(name).bit_equal(t));
    CHECK(reinterpret_cast<uintptr_t>(s.tensors.at(name).raw()) % pb::kAlignment == 0);
  }
  CHECK(s.tensors.at("tiny").data<int64_t>()[2] == 3);
  CHECK(s.inputs == std::vector<std::string>{"x"});
}

TEST_CASE("stream: taps map source nodes to tensors", "[stream]") {
  json d = base_doc();
  d["tensors"]["tap._1"] = {{"dtype", "f32"}, {"shape", json::array({1, 2})}, {"data", json::array({0, 1})}};
  d["taps"] = {{"_1", "tap._1"}, {"_2", "y"}};
  pb::Stream s = from_json(d);
  CHECK(s.taps == std::map<std::string, std::string>{{"_1", "tap._1"}, {"_2", "y"}});

  d["taps"]["_3"] = "tap._3";
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt("taps._3", "names tensor \"tap._3\", which is not in \"tensors\""));
}

TEST_CASE("stream: a float64 reference names an f64 tensor shaped like its expected output", "[stream]") {
  json d = base_doc();
  d["tensors"]["reference.y"] = {{"dtype", "f64"}, {"shape", json::array({1, 2})}, {"data", json::array({-1.5, 4.75})}};
  d["reference"] = {{"y", "reference.y"}};
  CHECK(from_json(d).reference == std::map<std::string, std::string>{{"y", "reference.y"}});

  json not_expected = d;
  not_expected["reference"] = {{"x", "reference.y"}};
  CHECK_THROWS_MATCHES(from_json(not_expected), pb::Error, ErrorAt("reference.x", "\"x\" is not one of the expected outputs"));
  json missing = d;
  missing["reference"] = {{"y", "reference.z"}};
  CHECK_THROWS_MATCHES(from_json(missing), pb::Error, ErrorAt("reference.y", "names tensor \"reference.z\", which is not in \"tensors\""));
  json f32 = d;
  f32["tensors"]["reference.y"]["dtype"] = "f32";
  CHECK_THROWS_MATCHES(from_json(f32), pb::Error, ErrorAt("reference.y", "a float64 reference must be f64, got f32"));
  json shaped = d;
  shaped["tensors"]["reference.y"]["shape"] = json::array({2, 1});
  CHECK_THROWS_MATCHES(from_json(shaped), pb::Error, ErrorAt("reference.y", "shape [2, 1] differs from expected \"y\" [1, 2]"));
}

// The narrow dtypes are widened exactly on reading: f16 and bf16 to f32; bool, i8 and u8 to i32.
TEST_CASE("stream: f16, bf16, bool, i8 and u8 tensors are widened exactly", "[stream]") {
  auto with = [](const std::string& dtype, json shape, json source) {
    json d = base_doc();
    d["tensors"]["m"] = {{"dtype", dtype}, {"shape", shape}};
    d["tensors"]["m"].update(source);
    d["taps"] = {{"m", "m"}};  // named by something, as every tensor is
    return d;
  };
  auto b64 = [](std::vector<uint8_t> bytes) { return json{{"b64", pb::base64_encode(bytes.data(), bytes.size())}}; };

  // f16: 1, -2, 65504 (the largest), 2^-24 (the smallest subnormal), 0.5; little-endian.
  const pb::Stream h = from_json(with("f16", {5}, b64({0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x00, 0x38})));
  const pb::Tensor& ht = h.tensors.at("m");
  REQUIRE(ht.dtype() == pb::DType::f32);
  CHECK(std::vector<float>(ht.data<float>(), ht.data<float>() + 5) == std::vector<float>{1.f, -2.f, 65504.f, std::ldexp(1.f, -24), 0.5f});
  const pb::Stream bf = from_json(with("bf16", {2}, b64({0x80, 0x3f, 0x00, 0xbf})));
  CHECK(std::vector<float>(bf.tensors.at("m").data<float>(), bf.tensors.at("m").data<float>() + 2) == std::vector<float>{1.f, -0.5f});

  const pb::Stream b = from_json(with("bool", {3}, {{"data", json::array({true, 0, 1})}}));
  REQUIRE(b.tensors.at("m").dtype() == pb::DType::i32);
  CHECK(std::vector<int32_t>(b.tensors.at("m").data<int32_t>(), b.tensors.at("m").data<int32_t>() + 3) == std::vector<int32_t>{1, 0, 1});
  CHECK(from_json(with("i8", {2}, b64({0xff, 0x80}))).tensors.at("m").data<int32_t>()[1] == -128);
  CHECK(from_json(with("u8", {2}, b64({0xff, 0x80}))).tensors.at("m").data<int32_t>()[0] == 255);

  CHECK_THROWS_MATCHES(from_json(with("bool", {2}, b64({1, 2}))), pb::Error, ErrorAt("tensors.m.b64", "element 1 is 2; a bool is 0 or 1"));
  CHECK_THROWS_MATCHES(from_json(with("bool", {1}, {{"data", json::array({2})}})), pb::Error,
                       ErrorAt("tensors.m.data[0]", "value 2 does not fit in bool"));
  CHECK_THROWS_MATCHES(from_json(with("i8", {1}, {{"data", json::array({200})}})), pb::Error,
                       ErrorAt("tensors.m.data[0]", "value 200 does not fit in i8"));
  CHECK_THROWS_MATCHES(from_json(with("f16", {1}, {{"data", json::array({1.0})}})), pb::Error,
                       ErrorAt("tensors.m.data", "a f16 tensor needs its bytes"));
  CHECK_THROWS_MATCHES(from_json(with("f16", {2}, b64({0, 0x3c}))), pb::Error, ErrorAt("tensors.m.b64", "decodes to 2 bytes, shape [2] of f16 needs 4"));
  // An f16 infinity is checked like any other once widened.
  CHECK_THROWS_MATCHES(from_json(with("f16", {1}, b64({0x00, 0x7c}))), pb::Error, ErrorAt("tensors.m", "element 0 is inf"));
  CHECK_THROWS_MATCHES(from_json(with("f8", {1}, b64({0}))), pb::Error,
                       ErrorAt("tensors.m.dtype", "unknown dtype \"f8\" (expected f32, f64, i32, i64, f16, bf16, bool, i8 or u8)"));
}

TEST_CASE("stream: non-finite values need allow_nonfinite", "[stream]") {
  json d = base_doc();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  d["tensors"]["0.weight"] = {{"dtype", "f32"}, {"shape", json::array({2, 2})}, {"b64", b64_floats({1, 2, nan, 4})}};
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt(W, "element 2 is nan; non-finite values need \"allow_nonfinite\": true"));

  d["tensors"]["0.weight"]["allow_nonfinite"] = true;
  pb::Stream s = from_json(d);
  CHECK(std::isnan(s.tensors.at("0.weight").data<float>()[2]));

  // A double that overflows f32 is infinite after conversion, and rejected as such.
  json d2 = base_doc();
  d2["tensors"]["0.weight"]["data"] = json::array({1.0, 1e300, 3.0, 4.0});
  CHECK_THROWS_MATCHES(from_json(d2), pb::Error, ErrorAt(W, "element 1 is inf"));

  // Framed f64 infinity.
  std::map<std::string, pb::Tensor> ts;
  pb::Tensor x(pb::DType::f64, {1, 2});
  x.data<double>()[1] = -std::numeric_limits<double>::infinity();
  ts["x"] = x;
  ts["y"] = pbtest::f32({1, 2}, {0, 0});
  json fd = framed_doc();
  CHECK_THROWS_MATCHES(from_bytes(pb::write_framed(fd, ts)), pb::Error, ErrorAt("tensors.x", "element 1 is -inf"));
}

// ------------------------------------------------------------------ document errors

TEST_CASE("stream: a missing required field is named", "[stream]") {
  for (const char* key : {"format", "version", "planet", "planet_version", "model_id", "model", "tensors", "inputs", "expected"}) {
    INFO("missing " << key);
    json d = base_doc();
    d.erase(key);
    CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt(key, "missing required field"));
    d = base_doc();
    d[key] = nullptr;  // null counts as absent
    CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt(key, "missing required field"));
  }
  for (const char* key : {"dtype", "shape"}) {
    INFO("tensor without " << key);
    json d = base_doc();
    d["tensors"]["0.weight"].erase(key);
    CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt(W + "." + key, "missing required field"));
  }
  json d = base_doc();
  d["tensors"]["x"].erase("data");
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt("tensors.x", "expected exactly one of \"b64\", \"data\" or \"offset\"/\"nbytes\", found 0"));
}

TEST_CASE("stream: header field values are checked", "[stream]") {
  json d = base_doc();
  d["format"] = "planetbridge.capture";
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt("format", "expected \"planetbridge.stream\", got \"planetbridge.capture\""));

  d = base_doc();
  d["version"] = 2;
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt("version", "unsupported stream version 2 (this build reads 1)"));
  d["version"] = "1";
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt("version", "expected an integer"));

  d = base_doc();
  d["planet"] = "";
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt("planet", "must not be empty"));

  d = base_doc();
  d["model"] = json::array();
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt("model", "expected an object"));

  d = base_doc();
  d["inputs"] = json::array();
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt("inputs", "must name at least one tensor"));

  d = base_doc();
  d["inputs"] = json::array({"x", "nope"});
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt("inputs[1]", "names tensor \"nope\", which is not in \"tensors\""));

  d = base_doc();
  d["expected"] = json::array({"gone"});
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt("expected[0]", "names tensor \"gone\""));

  d = base_doc();
  d["tensors"][""] = d["tensors"]["x"];
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt("tensors", "empty name"));
}

TEST_CASE("stream: tensor declarations are checked", "[stream]") {
  json d = base_doc();
  d["tensors"]["0.weight"]["dtype"] = "c64";
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt(W + ".dtype", "unknown dtype \"c64\""));

  d = base_doc();
  d["tensors"]["0.weight"]["shape"] = json::array({2, -2});
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt(W + ".shape[1]", "dimension must be >= 0"));

  d = base_doc();
  d["tensors"]["0.weight"]["shape"] = json::array({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt(W + ".shape", "rank 13 exceeds the limit of 12"));

  d = base_doc();
  d["tensors"]["0.weight"]["shape"] = json::array({2, 2.5});
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt(W + ".shape[1]", "expected an integer"));

  d = base_doc();
  d["tensors"]["0.weight"]["b64"] = b64_floats({1, 2, 3, 4});
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt(W, "expected exactly one of \"b64\", \"data\" or \"offset\"/\"nbytes\", found 2"));
}

TEST_CASE("stream: byte counts must match the shape", "[stream]") {
  json d = base_doc();
  d["tensors"]["0.weight"] = {{"dtype", "f32"}, {"shape", json::array({2, 2})}, {"b64", b64_floats({1, 2, 3})}};
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt(W + ".b64", "decodes to 12 bytes, shape [2, 2] of f32 needs 16"));

  d["tensors"]["0.weight"]["b64"] = "AAA*AAAA";
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt(W + ".b64", "invalid base64 character '*' at offset 3"));
  d["tensors"]["0.weight"]["b64"] = "AAAAA";
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt(W + ".b64", "length 5 is not a multiple of 4"));

  d = base_doc();
  d["tensors"]["0.weight"]["data"] = json::array({1, 2, 3});
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt(W + ".data", "has 3 values, shape [2, 2] needs 4"));

  d = base_doc();
  d["tensors"]["0.weight"]["data"] = json::array({1, 2, "3", 4});
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt(W + ".data[2]", "expected a number"));

  d = base_doc();
  d["tensors"]["ids"] = {{"dtype", "i32"}, {"shape", json::array({2})}, {"data", json::array({1, 3000000000LL})}};
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt("tensors.ids.data[1]", "does not fit in i32"));
  d["tensors"]["ids"]["data"] = json::array({1, 1.5});
  CHECK_THROWS_MATCHES(from_json(d), pb::Error, ErrorAt("tensors.ids.data[1]", "expected an integer"));
}

TEST_CASE("stream: offset and nbytes are checked against the data section", "[stream]") {
  json d = base_doc();
  const std::vector<uint8_t> data(128, 0);

  d["tensors"]["0.weight"] = {{"dtype", "f32"}, {"shape", json::array({2, 2})}, {"offset", 0}, {"nbytes", 12}};
  CHECK_THROWS_MATCHES(from_bytes(make_frame(d, data)), pb::Error, ErrorAt(W + ".nbytes", "is 12, shape [2, 2] of f32 needs 16"));

  d["tensors"]["0.weight"]["nbytes"] = 16;
  CHECK_NOTHROW(from_bytes(make_frame(d, data)));
  d["tensors"]["0.weight"]["offset"] = 64;
  CHECK_NOTHROW(from_bytes(make_frame(d, data)));

  d["tensors"]["0.weight"]["offset"] = 128;
  CHECK_THROWS_MATCHES(from_bytes(make_frame(d, data)), pb::Error,
                       ErrorAt(W + ".offset", "bytes [128, 144) lie past the end of the 128-byte data section"));

  d["tensors"]["0.weight"]["offset"] = 4;
  CHECK_THROWS_MATCHES(from_bytes(make_frame(d, data)), pb::Error, ErrorAt(W + ".offset", "must be a non-negative multiple of 64, got 4"));
  d["tensors"]["0.weight"]["offset"] = -64;
  CHECK_THROWS_MATCHES(from_bytes(make_frame(d, data)), pb::Error, ErrorAt(W + ".offset", "got -64"));

  d["tensors"]["0.weight"].erase("nbytes");
  d["tensors"]["0.weight"]["offset"] = 0;
  CHECK_THROWS_MATCHES(from_bytes(make_frame(d, data)), pb::Error, ErrorAt(W + ".nbytes", "missing required field"));

  // Plain JSON has no data section.
  d["tensors"]["0.weight"]["nbytes"] = 16;
  CHECK_THROWS_MATCHES(from_json(d), pb::Error,
                       ErrorAt(W + ".offset", "\"offset\" needs the binary framing; this document came as plain JSON"));
}

// ------------------------------------------------------------------ framing errors

TEST_CASE("stream: invalid JSON text is reported, not misread", "[stream]") {
  CHECK_THROWS_MATCHES(from_text("{\"format\": \"planetbridge.stream\", "), pb::Error, ErrorAt("(document)", "invalid JSON"));
  CHECK_THROWS_MATCHES(from_text("not json at all"), pb::Error, ErrorAt("(document)", "invalid JSON"));
  CHECK_THROWS_MATCHES(from_text("[1, 2]"), pb::Error, ErrorAt("(document)", "expected a JSON object"));
  // A number that overflows a double is invalid JSON too, reported as such (it once escaped).
  CHECK_THROWS_MATCHES(from_text("{\"format\": \"planetbridge.stream\", \"version\": 1e400}"), pb::Error,
                       ErrorAt("(document)", "invalid JSON"));

  // Invalid JSON inside a well-formed frame.
  std::vector<uint8_t> bytes(pb::kStreamMagic, pb::kStreamMagic + 8);
  const std::string text = "{oops}";
  put_u64(bytes, text.size());
  put_u64(bytes, 0);
  bytes.insert(bytes.end(), text.begin(), text.end());
  bytes.resize(64, 0);
  CHECK_THROWS_MATCHES(from_bytes(bytes), pb::Error, ErrorAt("(document)", "invalid JSON"));
}

TEST_CASE("stream: truncated or padded binary frames are rejected", "[stream]") {
  const std::vector<uint8_t> good = pb::write_framed(framed_doc(), sample_tensors());
  REQUIRE_NOTHROW(from_bytes(good));
  uint64_t json_len = 0;
  for (int i = 7; i >= 0; --i) json_len = (json_len << 8) | good[8 + i];
  const size_t data_start = pb::align_up(pb::kStreamHeaderBytes + json_len);
  REQUIRE(data_start < good.size());

  auto cut = [&](size_t n) { return std::vector<uint8_t>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n)); };
  CHECK_THROWS_MATCHES(from_bytes(cut(20)), pb::Error, ErrorAt("(framing)", "truncated header: 20 bytes"));
  CHECK_THROWS_MATCHES(from_bytes(cut(24 + json_len / 2)), pb::Error, ErrorAt("(framing)", "JSON length"));
  CHECK_THROWS_MATCHES(from_bytes(cut(data_start)), pb::Error, ErrorAt("(framing)", "data section"));
  CHECK_THROWS_MATCHES(from_bytes(cut(good.size() - 1)), pb::Error, ErrorAt("(framing)", "data section"));

  std::vector<uint8_t> trailing = good;
  trailing.push_back(0);
  CHECK_THROWS_MATCHES(from_bytes(trailing), pb::Error, ErrorAt("(framing)", "data section"));

  std::vector<uint8_t> v2 = good;
  v2[7] = 2;
  CHECK_THROWS_MATCHES(from_bytes(v2), pb::Error, ErrorAt("(framing)", "unsupported binary framing version 2"));

  // Every truncation point is an error, never a crash or a silent success.
  for (size_t n = 1; n < good.size(); ++n) {
    INFO("truncated to " << n << " of " << good.size() << " bytes");
    CHECK_THROWS_AS(from_bytes(cut(n)), pb::Error);
  }
}

TEST_CASE("stream: read_frame reads frames back to back from a pipe", "[stream]") {
  auto ts = sample_tensors();
  json a = framed_doc(), b = framed_doc();
  a["model_id"] = "first";
  b["model_id"] = "second";
  const auto fa = pb::write_framed(a, ts), fb = pb::write_framed(b, ts);
  std::string both(fa.begin(), fa.end());
  both.append(fb.begin(), fb.end());
  std::istringstream in(both);

  auto f1 = pb::read_frame(in);
  REQUIRE(f1.has_value());
  CHECK(f1->framed);
  auto f2 = pb::read_frame(in);
  REQUIRE(f2.has_value());
  CHECK_FALSE(pb::read_frame(in).has_value());

  pb::Stream s1 = pb::decode_stream(std::move(*f1)), s2 = pb::decode_stream(std::move(*f2));
  CHECK(s1.model_id == "first");
  CHECK(s2.model_id == "second");
  CHECK(s2.tensors.at("0.weight").bit_equal(ts.at("0.weight")));

  std::istringstream empty("");
  CHECK_FALSE(pb::read_frame(empty).has_value());
}

TEST_CASE("stream: read_frame rejects a partial frame", "[stream]") {
  const auto good = pb::write_framed(framed_doc(), sample_tensors());
  uint64_t json_len = 0;
  for (int i = 7; i >= 0; --i) json_len = (json_len << 8) | good[8 + i];
  auto partial = [&](size_t n) { return std::string(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n)); };

  std::istringstream header(partial(10));
  CHECK_THROWS_MATCHES(pb::read_frame(header), pb::Error, ErrorAt("(framing)", "input ended inside a frame header (10 of 24 bytes)"));
  std::istringstream json_part(partial(24 + json_len / 2));
  CHECK_THROWS_MATCHES(pb::read_frame(json_part), pb::Error, ErrorAt("(framing)", "input ended inside the JSON document"));
  std::istringstream data_part(partial(good.size() - 3));
  CHECK_THROWS_MATCHES(pb::read_frame(data_part), pb::Error, ErrorAt("(framing)", "input ended inside the data section"));

  std::string bad = partial(good.size());
  bad[0] = 'X';
  std::istringstream bad_magic(bad);
  CHECK_THROWS_MATCHES(pb::read_frame(bad_magic), pb::Error, ErrorAt("(framing)", "does not start with the PBSTRM magic"));
}

TEST_CASE("stream: read_stream_file names the file", "[stream]") {
  pbtest::TempDir tmp;
  const std::string missing = tmp.file("missing.pbstream");
  CHECK_THROWS_MATCHES(pb::read_stream_file(missing), pb::Error, ErrorAt(missing, "cannot open stream file"));

  const std::string empty = tmp.file("empty.pbstream");
  pbtest::write_text(empty, "");
  CHECK_THROWS_MATCHES(pb::read_stream_file(empty), pb::Error, ErrorAt(empty, "empty input"));

  const std::string good = tmp.file("good.pbstream");
  const auto bytes = pb::write_framed(framed_doc(), sample_tensors());
  pbtest::write_bytes(good, bytes.data(), bytes.size());
  CHECK(pb::read_stream_file(good).tensors.size() == sample_tensors().size());

  const std::string plain = tmp.file("plain.json");
  pbtest::write_text(plain, base_doc().dump(2));
  CHECK(pb::read_stream_file(plain).model_id == "tiny");
}

TEST_CASE("stream: tensors of a framed stream alias its bytes - a file is mapped, not copied", "[stream]") {
  pbtest::TempDir tmp;
  const std::string good = tmp.file("good.pbstream");
  const auto bytes = pb::write_framed(framed_doc(), sample_tensors());
  pbtest::write_bytes(good, bytes.data(), bytes.size());
  const pb::Stream s = pb::read_stream_file(good);
  REQUIRE(s.raw.size() == bytes.size());
  CHECK(std::memcmp(s.raw.data(), bytes.data(), bytes.size()) == 0);  // kept as received
  CHECK(reinterpret_cast<uintptr_t>(s.raw.data()) % 4096 == 0);        // the file's mapping
  for (const auto& [name, t] : s.tensors) {
    INFO(name);
    const auto* p = static_cast<const uint8_t*>(t.raw());
    CHECK((p >= s.raw.data() && p + t.nbytes() <= s.raw.data() + s.raw.size()));
    CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
    CHECK(t.bit_equal(sample_tensors().at(name)));
  }
  // The mapping lives as long as a tensor does, after the stream is gone.
  pb::Tensor kept;
  {
    const pb::Stream s2 = pb::read_stream_file(good);
    kept = s2.tensors.begin()->second;
  }
  CHECK(kept.bit_equal(sample_tensors().begin()->second));

  // Evicting a consumed mapping only drops pages from the resident set: they read back the
  // same. Memory of our own (a pipe's bytes) has no other copy and is left as it is.
  s.raw.evict();
  for (const auto& [name, t] : s.tensors) CHECK(t.bit_equal(sample_tensors().at(name)));
  const pb::Bytes own = pb::Bytes::copy_of(bytes.data(), bytes.size());
  own.evict();
  CHECK(std::memcmp(own.data(), bytes.data(), bytes.size()) == 0);
}

TEST_CASE("stream: a fifo is read through, stdin too", "[stream]") {
  pbtest::TempDir tmp;
  const std::string fifo = tmp.file("in.fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const auto bytes = pb::write_framed(framed_doc(), sample_tensors());
  std::thread writer([&] { pbtest::write_bytes(fifo, bytes.data(), bytes.size()); });
  const pb::Stream s = pb::read_stream_file(fifo);
  writer.join();
  CHECK(s.raw.size() == bytes.size());
  CHECK(s.tensors.size() == sample_tensors().size());
}

// A corrupt header on a pipe must not make the reader allocate what it claims.
TEST_CASE("stream: read_frame rejects an implausible data length", "[stream]") {
  std::vector<uint8_t> header(pb::kStreamMagic, pb::kStreamMagic + 8);
  put_u64(header, 2);
  put_u64(header, ~uint64_t(0));
  header.resize(64, ' ');
  header[24] = '{';
  header[25] = '}';
  std::istringstream in(std::string(header.begin(), header.end()));
  CHECK_THROWS_MATCHES(pb::read_frame(in), pb::Error, ErrorAt("(framing)", ""));
}

TEST_CASE("stream: a shape whose element count overflows is rejected at its path", "[stream]") {
  nlohmann::json doc = nlohmann::json::parse(R"({"format": "planetbridge.stream", "version": 1, "planet": "p",
    "planet_version": "1", "model_id": "m", "model": {},
    "tensors": {"x": {"dtype": "f32", "shape": [4294967296, 4294967296], "b64": ""}},
    "inputs": ["x"], "expected": ["x"]})");
  const std::string text = doc.dump();
  CHECK_THROWS_WITH(pb::read_stream_bytes(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                    Catch::Contains("tensors.x.shape") && Catch::Contains("too many elements"));
}
