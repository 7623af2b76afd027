#pragma once
// Stream v1: one JSON document, optionally inside the binary framing. See docs/stream-format.md.
#include <cstdint>
#include <istream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "planetbridge/bytes.h"
#include "planetbridge/json.h"
#include "planetbridge/tensor.h"

namespace pb {

// "PBSTRM\0\1": magic plus framing version 1.
inline constexpr char kStreamMagic[8] = {'P', 'B', 'S', 'T', 'R', 'M', '\0', '\1'};
inline constexpr uint64_t kStreamHeaderBytes = 24;  // magic, u64 json length, u64 data length
inline constexpr uint64_t kMaxStreamJsonBytes = uint64_t(1) << 31;
inline constexpr uint64_t kMaxStreamDataBytes = uint64_t(1) << 40;  // 1 TiB: a sanity bound
inline constexpr size_t kMaxRank = 12;  // oneDNN's DNNL_MAX_NDIMS: no kernel takes more

// One decoded stream: the document plus every tensor it declares, validated.
struct Stream {
  nlohmann::json doc;
  Bytes raw;                     // the input as received (frame or JSON text); framed tensors alias it
  std::string planet;
  std::string planet_version;
  std::string engine;            // e.g. "torch", "tfjs"; defaults to the planet name
  std::string model_id;
  std::map<std::string, Tensor> tensors;
  std::vector<std::string> inputs;     // tensor names, in the model's input order
  std::vector<std::string> expected;   // tensor names of the native outputs
  std::map<std::string, std::string> taps;  // source node name -> tensor name
  // expected tensor -> the same output computed by the planet in float64 (f64, same shape),
  // where the planet can: the verdict then measures both sides against it (docs/suites.md).
  std::map<std::string, std::string> reference;
  // Layers the planet has no stock module for, built by the capture from the planet's own ops
  // (e.g. RMSNorm in torch 1.13). Empty: every native layer is stock.
  std::vector<std::string> composed;

  JsonRef model() const { return JsonRef(doc, "")["model"]; }
  JsonRef root() const { return JsonRef(doc, ""); }
  // The tensor by name; a missing one is an error naming `where`.
  const Tensor& tensor(const std::string& name, const std::string& where) const;
  const Tensor* find_tensor(const std::string& name) const;
  // "pytorch (torch 1.13.1)"
  std::string engine_label() const;
};

// Which kind of document a frame carries.
enum class FrameKind { stream, capture_event };

// A decoded frame before stream validation.
struct Frame {
  nlohmann::json doc;
  Bytes input;          // the whole input as received
  Bytes data;           // its binary section (empty for JSON-only input); tensors alias it
  bool framed = false;  // true when it came in the binary framing
};

// Reads one whole input: binary framing when it starts with the magic, else a JSON document.
// The frame shares `input` (no copy); the pointer form copies borrowed memory once.
Frame parse_frame(Bytes input);
Frame parse_frame(const uint8_t* bytes, size_t size);
// Reads one framed document from a pipe. Returns nullopt on a clean end of input
// (nothing read); a partial frame is an error.
std::optional<Frame> read_frame(std::istream& in);

// Validates the document and decodes every tensor (b64, data, or offset/nbytes into the
// binary section). Errors name the JSON path.
Stream decode_stream(Frame frame);
// Decodes every entry of a "tensors" object (as in a stream) against the frame's data.
std::map<std::string, Tensor> decode_tensors(const JsonRef& tensors, const Frame& frame);
// A stream from a document (whose "tensors" member, if any, is not read) and its tensors:
// checks the header fields and that inputs, expected and taps name tensors.
Stream make_stream(nlohmann::json doc, std::map<std::string, Tensor> tensors);
Stream read_stream(Bytes input);
Stream read_stream_bytes(const uint8_t* bytes, size_t size);  // copies borrowed memory once
Stream read_stream_file(const std::string& path);  // a file is mapped, not read; "-" reads stdin
// The input read_stream_file decodes, as received (errors name the file or "(stdin)").
Bytes read_stream_input(const std::string& path);

// Writing (used by tests, tools, the run store and the C++ side of captures). Each tensor's
// entry in doc["tensors"] becomes {dtype, shape, offset, nbytes} (keeping "allow_nonfinite").
std::vector<uint8_t> write_framed(const nlohmann::json& doc, const std::map<std::string, Tensor>& tensors);

std::vector<uint8_t> base64_decode(const std::string& text, const std::string& where);
std::string base64_encode(const void* data, size_t size);

}  // namespace pb
