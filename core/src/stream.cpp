#include "planetbridge/stream.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "planetbridge/error.h"

namespace pb {

// ---------------------------------------------------------------- base64

std::string base64_encode(const void* data, size_t size) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const uint8_t*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < size; i += 3) {
    uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8) | p[i + 2];
    for (int s = 18; s >= 0; s -= 6) out.push_back(alphabet[(v >> s) & 63]);
  }
  if (size - i == 1) {
    uint32_t v = uint32_t(p[i]) << 16;
    out += {alphabet[(v >> 18) & 63], alphabet[(v >> 12) & 63], '=', '='};
  } else if (size - i == 2) {
    uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8);
    out += {alphabet[(v >> 18) & 63], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63], '='};
  }
  return out;
}

std::vector<uint8_t> base64_decode(const std::string& text, const std::string& where) {
  static const auto table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(alphabet[i])] = static_cast<int8_t>(i);
    return t;
  }();
  if (text.size() % 4 != 0)
    throw Error(where, "invalid base64: length " + std::to_string(text.size()) + " is not a multiple of 4");
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad = (text.size() >= 2 && text[text.size() - 2] == '=') ? 2 : 1;
  std::vector<uint8_t> out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      char c = text[i + k];
      int8_t d = table[static_cast<uint8_t>(c)];
      bool padding_slot = (c == '=') && (i + 4 == text.size()) && (k >= 4 - pad);
      if (d < 0 && !padding_slot) {
        char shown[8];
        std::snprintf(shown, sizeof shown, std::isprint(static_cast<unsigned char>(c)) ? "%c" : "\\x%02x",
                      static_cast<unsigned char>(c));
        throw Error(where, std::string("invalid base64 character '") + shown + "' at offset " + std::to_string(i + k));
      }
      v = (v << 6) | uint32_t(d < 0 ? 0 : d);
    }
    out.push_back(uint8_t(v >> 16));
    out.push_back(uint8_t(v >> 8));
    out.push_back(uint8_t(v));
  }
  out.resize(out.size() - pad);
  return out;
}

// ---------------------------------------------------------------- framing

namespace {

uint64_t read_u64le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void put_u64le(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

nlohmann::json parse_json(const char* begin, size_t size) {
  try {
    return nlohmann::json::parse(begin, begin + size);
  } catch (const nlohmann::json::exception& e) {  // syntax, and numbers that overflow a double
    throw Error("(document)", std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace

Frame parse_frame(Bytes input) {
  const uint8_t* bytes = input.data();
  const size_t size = input.size();
  Frame f;
  f.input = input;
  if (size >= 8 && std::memcmp(bytes, kStreamMagic, 6) == 0) {
    if (bytes[6] != 0) throw Error("(framing)", "bad magic: expected \"PBSTRM\\0\\1\"");
    if (bytes[7] != kStreamMagic[7])
      throw Error("(framing)", "unsupported binary framing version " + std::to_string(bytes[7]) + " (expected 1)");
    if (size < kStreamHeaderBytes)
      throw Error("(framing)", "truncated header: " + std::to_string(size) + " bytes, expected at least 24");
    uint64_t json_len = read_u64le(bytes + 8), data_len = read_u64le(bytes + 16);
    if (json_len == 0 || json_len > kMaxStreamJsonBytes || json_len > size - kStreamHeaderBytes)
      throw Error("(framing)", "JSON length " + std::to_string(json_len) + " does not fit in the " +
                                   std::to_string(size) + "-byte input");
    uint64_t data_start = align_up(kStreamHeaderBytes + json_len);
    if (data_start > size || data_len != size - data_start)
      throw Error("(framing)", "data section: header says " + std::to_string(data_len) + " bytes at offset " +
                                   std::to_string(data_start) + ", the input has " + std::to_string(size) +
                                   " bytes in all");
    f.doc = parse_json(reinterpret_cast<const char*>(bytes) + kStreamHeaderBytes, json_len);
    f.data = input.slice(data_start, data_len);
    f.framed = true;
    return f;
  }
  f.doc = parse_json(reinterpret_cast<const char*>(bytes), size);
  return f;
}

Frame parse_frame(const uint8_t* bytes, size_t size) { return parse_frame(Bytes::copy_of(bytes, size)); }

std::optional<Frame> read_frame(std::istream& in) {
  uint8_t header[kStreamHeaderBytes];
  in.read(reinterpret_cast<char*>(header), sizeof header);
  size_t got = static_cast<size_t>(in.gcount());
  if (got == 0) return std::nullopt;
  if (got < sizeof header)
    throw Error("(framing)", "input ended inside a frame header (" + std::to_string(got) + " of 24 bytes)");
  if (std::memcmp(header, kStreamMagic, 8) != 0) throw Error("(framing)", "frame does not start with the PBSTRM magic");
  uint64_t json_len = read_u64le(header + 8), data_len = read_u64le(header + 16);
  if (json_len == 0 || json_len > kMaxStreamJsonBytes)
    throw Error("(framing)", "implausible JSON length " + std::to_string(json_len));
  if (data_len > kMaxStreamDataBytes)
    throw Error("(framing)", "data section of " + std::to_string(data_len) + " bytes is above the limit of " +
                                 std::to_string(kMaxStreamDataBytes));
  // The whole frame in one reservation, kept as received; pages appear only as bytes arrive,
  // so a lying header cannot make us hold what never comes.
  const uint64_t data_start = align_up(kStreamHeaderBytes + json_len);
  Bytes frame = Bytes::allocate(data_start + data_len);
  std::memcpy(frame.writable(), header, sizeof header);
  constexpr uint64_t kChunk = uint64_t(64) << 20;
  for (uint64_t done = kStreamHeaderBytes; done < frame.size();) {
    const uint64_t n = std::min(kChunk, frame.size() - done);
    in.read(reinterpret_cast<char*>(frame.writable() + done), static_cast<std::streamsize>(n));
    done += static_cast<uint64_t>(in.gcount());
    if (static_cast<uint64_t>(in.gcount()) != n) {
      if (done < data_start)
        throw Error("(framing)", "input ended inside the JSON document (" + std::to_string(done - kStreamHeaderBytes) + " of " +
                                     std::to_string(data_start - kStreamHeaderBytes) + " bytes)");
      throw Error("(framing)", "input ended inside the data section (" + std::to_string(done - data_start) + " of " +
                                   std::to_string(data_len) + " bytes)");
    }
  }
  Frame f;
  f.doc = parse_json(reinterpret_cast<const char*>(frame.data()) + kStreamHeaderBytes, json_len);
  f.data = frame.slice(data_start, data_len);
  f.input = frame;
  f.framed = true;
  return f;
}

std::vector<uint8_t> write_framed(const nlohmann::json& doc_in, const std::map<std::string, Tensor>& tensors) {
  nlohmann::json doc = doc_in;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    nlohmann::json& spec = doc["tensors"][name];
    // Re-encoding a decoded stream must keep its permission for non-finite values.
    const bool nonfinite = spec.is_object() && spec.value("allow_nonfinite", nlohmann::json(false)) == true;
    spec = {{"dtype", dtype_name(t.dtype())}, {"shape", t.shape()}, {"offset", offset}, {"nbytes", t.nbytes()}};
    if (nonfinite) spec["allow_nonfinite"] = true;
    offset = align_up(offset + t.nbytes());
  }
  std::string json = doc.dump();
  std::vector<uint8_t> out(kStreamMagic, kStreamMagic + 8);
  put_u64le(out, json.size());
  put_u64le(out, offset);
  out.insert(out.end(), json.begin(), json.end());
  out.resize(align_up(out.size()), 0);
  size_t data_start = out.size();
  out.resize(data_start + offset, 0);
  offset = 0;
  for (const auto& kv : tensors) {
    const Tensor& t = kv.second;
    if (t.nbytes()) std::memcpy(out.data() + data_start + offset, t.raw(), t.nbytes());
    offset = align_up(offset + t.nbytes());
  }
  return out;
}

// ---------------------------------------------------------------- validation

namespace {

// The dtypes a stream may carry. Those the IR computes in (f32, f64, i32, i64) are read as they
// are (a framed tensor aliases the frame); the narrower ones are widened once, exactly: f16 and
// bf16 to f32, bool, i8 and u8 to i32.
enum class Wire { f32, f64, i32, i64, f16, bf16, boolean, i8, u8 };
struct WireType {
  const char* name;
  Wire wire;
  size_t bytes;
  DType dtype;          // what it is read into
  int64_t lo, hi;       // the values an integer type holds (its "data" range)
};
constexpr WireType kWireTypes[] = {
    {"f32", Wire::f32, 4, DType::f32, 0, 0},         {"f64", Wire::f64, 8, DType::f64, 0, 0},
    {"i32", Wire::i32, 4, DType::i32, INT32_MIN, INT32_MAX}, {"i64", Wire::i64, 8, DType::i64, INT64_MIN, INT64_MAX},
    {"f16", Wire::f16, 2, DType::f32, 0, 0},         {"bf16", Wire::bf16, 2, DType::f32, 0, 0},
    {"bool", Wire::boolean, 1, DType::i32, 0, 1},    {"i8", Wire::i8, 1, DType::i32, -128, 127},
    {"u8", Wire::u8, 1, DType::i32, 0, 255}};

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000 | (mant << 13);  // inf, nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    int e = -1;
    uint32_t m = mant;
    do {
      ++e;
      m <<= 1;
    } while (!(m & 0x400));
    bits = sign | uint32_t(112 - e) << 23 | ((m & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Each element of `out` from its little-endian bytes.
template <typename T, typename F>
void widen_each(Tensor& t, const uint8_t* bytes, size_t width, F&& convert) {
  T* out = t.data<T>();
  for (int64_t i = 0, n = t.numel(); i < n; ++i) out[i] = convert(bytes + i * int64_t(width), i);
}

// The widened tensor of a narrow wire type's little-endian bytes.
Tensor widen(const WireType& w, const Shape& shape, const uint8_t* bytes, const std::string& where) {
  Tensor t(w.dtype, shape);
  auto u16 = [](const uint8_t* b) { return uint16_t(b[0] | b[1] << 8); };
  switch (w.wire) {
    case Wire::f16: widen_each<float>(t, bytes, 2, [&](const uint8_t* b, int64_t) { return half_to_float(u16(b)); }); break;
    case Wire::bf16: widen_each<float>(t, bytes, 2, [&](const uint8_t* b, int64_t) { return bf16_to_float(u16(b)); }); break;
    case Wire::boolean:
      widen_each<int32_t>(t, bytes, 1, [&](const uint8_t* b, int64_t i) {
        if (b[0] > 1) throw Error(where, "element " + std::to_string(i) + " is " + std::to_string(b[0]) + "; a bool is 0 or 1");
        return int32_t(b[0]);
      });
      break;
    case Wire::i8: widen_each<int32_t>(t, bytes, 1, [](const uint8_t* b, int64_t) { return int32_t(int8_t(b[0])); }); break;
    case Wire::u8: widen_each<int32_t>(t, bytes, 1, [](const uint8_t* b, int64_t) { return int32_t(b[0]); }); break;
    default: throw Error(where, std::string("internal: ") + w.name + " is not a narrow dtype");
  }
  return t;
}

Tensor decode_data_array(const JsonRef& data, const WireType& wire, const Shape& shape) {
  size_t n = data.size();
  if (static_cast<int64_t>(n) != element_count(shape))
    data.fail("has " + std::to_string(n) + " values, shape " + shape_str(shape) + " needs " +
              std::to_string(element_count(shape)));
  Tensor t(wire.dtype, shape);
  for (size_t i = 0; i < n; ++i) {
    JsonRef v = data[i];
    switch (wire.dtype) {
      case DType::f32: t.data<float>()[i] = static_cast<float>(v.f64()); break;
      case DType::f64: t.data<double>()[i] = v.f64(); break;
      case DType::i32: {
        const int64_t x = wire.wire == Wire::boolean && v.raw().is_boolean() ? int64_t(v.boolean()) : v.i64();
        if (x < wire.lo || x > wire.hi) v.fail("value " + std::to_string(x) + " does not fit in " + wire.name);
        t.data<int32_t>()[i] = static_cast<int32_t>(x);
        break;
      }
      case DType::i64: t.data<int64_t>()[i] = v.i64(); break;
    }
  }
  return t;
}

template <typename T>
void check_finite(const Tensor& t, const std::string& where) {
  const T* p = t.data<T>();
  for (int64_t i = 0, n = t.numel(); i < n; ++i)
    if (!std::isfinite(p[i]))
      throw Error(where, "element " + std::to_string(i) + " is " + std::to_string(p[i]) +
                             "; non-finite values need \"allow_nonfinite\": true");
}

Tensor decode_tensor(const JsonRef& spec, const Frame& frame) {
  JsonRef dt = spec["dtype"];
  const WireType* wire = nullptr;
  for (const WireType& w : kWireTypes)
    if (dt.str() == w.name) wire = &w;
  if (!wire) dt.fail("unknown dtype \"" + dt.str() + "\" (expected f32, f64, i32, i64, f16, bf16, bool, i8 or u8)");
  const DType dtype = wire->dtype;
  const bool narrow = wire->bytes != dtype_size(dtype);  // read by widening
  JsonRef shape_ref = spec["shape"];
  Shape shape = shape_ref.ints();
  if (shape.size() > kMaxRank) shape_ref.fail("rank " + std::to_string(shape.size()) + " exceeds the limit of " + std::to_string(kMaxRank));
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] < 0) shape_ref[i].fail("dimension must be >= 0");
  int64_t count = 0;
  try {
    count = element_count(shape);
  } catch (const Error& e) {
    shape_ref.fail(e.message());
  }
  const size_t want = static_cast<size_t>(count) * wire->bytes;

  int sources = spec.has("b64") + spec.has("data") + spec.has("offset");
  if (sources != 1) spec.fail("expected exactly one of \"b64\", \"data\" or \"offset\"/\"nbytes\", found " + std::to_string(sources));

  Tensor t;
  if (auto b64 = spec.find("b64")) {
    std::vector<uint8_t> bytes = base64_decode(b64->str(), b64->path());
    if (bytes.size() != want)
      b64->fail("decodes to " + std::to_string(bytes.size()) + " bytes, shape " + shape_str(shape) + " of " +
                wire->name + " needs " + std::to_string(want));
    if (narrow) {
      t = widen(*wire, shape, bytes.data(), b64->path());
    } else {
      t = Tensor(dtype, shape);
      if (want) std::memcpy(t.raw(), bytes.data(), want);
    }
  } else if (auto data = spec.find("data")) {
    if (wire->wire == Wire::f16 || wire->wire == Wire::bf16)
      data->fail(std::string("a ") + wire->name + " tensor needs its bytes (\"b64\" or \"offset\"), not a \"data\" array");
    t = decode_data_array(*data, *wire, shape);
  } else {
    JsonRef off = spec["offset"], nb = spec["nbytes"];
    if (!frame.framed) off.fail("\"offset\" needs the binary framing; this document came as plain JSON");
    int64_t o = off.i64(), n = nb.i64();
    if (o < 0 || o % static_cast<int64_t>(kAlignment) != 0) off.fail("must be a non-negative multiple of 64, got " + std::to_string(o));
    if (n < 0 || static_cast<size_t>(n) != want)
      nb.fail("is " + std::to_string(n) + ", shape " + shape_str(shape) + " of " + wire->name + " needs " +
              std::to_string(want));
    if (static_cast<uint64_t>(o) + static_cast<uint64_t>(n) > frame.data.size())
      off.fail("bytes [" + std::to_string(o) + ", " + std::to_string(o + n) + ") lie past the end of the " +
               std::to_string(frame.data.size()) + "-byte data section");
    t = narrow ? widen(*wire, shape, frame.data.data() + o, off.path())
               : Tensor::view(dtype, shape, frame.data.data() + o, frame.data.owner());  // no copy: the frame's bytes
  }
  if (!spec.boolean("allow_nonfinite", false)) {
    if (dtype == DType::f32) check_finite<float>(t, spec.path());
    if (dtype == DType::f64) check_finite<double>(t, spec.path());
  }
  return t;
}

std::vector<std::string> tensor_names(const JsonRef& list, const Stream& s, bool required_nonempty) {
  std::vector<std::string> out;
  if (required_nonempty && list.size() == 0) list.fail("must name at least one tensor");
  for (const JsonRef& e : list.items()) {
    std::string name = e.str();
    if (!s.tensors.count(name)) e.fail("names tensor \"" + name + "\", which is not in \"tensors\"");
    out.push_back(name);
  }
  return out;
}

}  // namespace

namespace {

// Everything before the tensors: format, version, planet, engine, model.
void read_header(Stream& s, const JsonRef& root) {
  if (!root.is_object()) root.fail("expected a JSON object");
  JsonRef format = root["format"];
  if (format.str() != "planetbridge.stream")
    format.fail("expected \"planetbridge.stream\", got \"" + format.str() + "\"");
  JsonRef version = root["version"];
  if (version.i64() != 1) version.fail("unsupported stream version " + version.raw().dump() + " (this build reads 1)");
  s.planet = root["planet"].str();
  if (s.planet.empty()) root["planet"].fail("must not be empty");
  s.planet_version = root["planet_version"].str();
  s.engine = root.str("engine", s.planet);
  s.model_id = root["model_id"].str();
  JsonRef model = root["model"];
  if (!model.is_object()) model.fail("expected an object (the planet's model description)");
}

// What names tensors: inputs, expected, taps, float64 references (and the composed notes).
void read_refs(Stream& s, const JsonRef& root) {
  s.inputs = tensor_names(root["inputs"], s, true);
  s.expected = tensor_names(root["expected"], s, true);
  if (auto taps = root.find("taps")) {
    for (const std::string& node : taps->keys()) {
      JsonRef t = (*taps)[node];
      if (!s.tensors.count(t.str())) t.fail("names tensor \"" + t.str() + "\", which is not in \"tensors\"");
      s.taps[node] = t.str();
    }
  }
  if (auto reference = root.find("reference")) {
    for (const std::string& out : reference->keys()) {
      JsonRef r = (*reference)[out];
      if (std::find(s.expected.begin(), s.expected.end(), out) == s.expected.end())
        r.fail("\"" + out + "\" is not one of the expected outputs");
      const Tensor* t = s.find_tensor(r.str());
      if (!t) r.fail("names tensor \"" + r.str() + "\", which is not in \"tensors\"");
      if (t->dtype() != DType::f64) r.fail("a float64 reference must be f64, got " + std::string(dtype_name(t->dtype())));
      if (t->shape() != s.tensors.at(out).shape())
        r.fail("shape " + shape_str(t->shape()) + " differs from expected \"" + out + "\" " + shape_str(s.tensors.at(out).shape()));
      s.reference[out] = r.str();
    }
  }
  if (auto composed = root.find("composed"))
    for (const JsonRef& note : composed->items()) s.composed.push_back(note.str());
}

}  // namespace

std::map<std::string, Tensor> decode_tensors(const JsonRef& tensors, const Frame& frame) {
  std::map<std::string, Tensor> out;
  for (const std::string& name : tensors.keys()) {
    if (name.empty()) tensors.fail("a tensor has an empty name");
    out.emplace(name, decode_tensor(tensors[name], frame));
  }
  return out;
}

Stream make_stream(nlohmann::json doc, std::map<std::string, Tensor> tensors) {
  Stream s;
  s.doc = std::move(doc);
  s.tensors = std::move(tensors);
  const JsonRef root(s.doc, "");
  read_header(s, root);
  read_refs(s, root);
  return s;
}

Stream decode_stream(Frame frame) {
  Stream s;
  const JsonRef root(frame.doc, "");
  read_header(s, root);
  s.tensors = decode_tensors(root["tensors"], frame);
  read_refs(s, root);
  s.raw = frame.input;
  s.doc = std::move(frame.doc);
  return s;
}

Stream read_stream(Bytes input) {
  if (input.empty()) throw Error("(input)", "empty input, expected a stream");
  return decode_stream(parse_frame(std::move(input)));
}

Stream read_stream_bytes(const uint8_t* bytes, size_t size) { return read_stream(Bytes::copy_of(bytes, size)); }

Bytes read_stream_input(const std::string& path) {
  Bytes input = Bytes::read_file(path, "stream file");
  if (input.empty()) throw Error(path == "-" ? "(stdin)" : path, "empty input, expected a stream");
  return input;
}

Stream read_stream_file(const std::string& path) { return read_stream(read_stream_input(path)); }

const Tensor& Stream::tensor(const std::string& name, const std::string& where) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) throw Error(where, "names tensor \"" + name + "\", which is not in \"tensors\"");
  return it->second;
}

const Tensor* Stream::find_tensor(const std::string& name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

std::string Stream::engine_label() const { return planet + " (" + engine + " " + planet_version + ")"; }

}  // namespace pb
