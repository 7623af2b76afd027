#pragma once
// The C++ face of a planet plugin, on both sides of the C boundary (plugin_abi.h): a plugin
// implements Dialect and exports it with PLANETBRIDGE_DIALECT (plugins/sdk); the host loads
// the C struct and gets a Dialect back (host/plugin_loader). The functions below are the two
// halves of that bridge, and the graph document that crosses it (docs/plugin-abi.md).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "planetbridge/ir.h"
#include "planetbridge/plugin_abi.h"
#include "planetbridge/stream.h"

namespace pb {

// How the host launches the planet's capture process (see docs/capture-protocol.md).
struct CaptureCommand {
  std::vector<std::string> argv;  // argv[0] is the program, an absolute path or found on PATH
  std::map<std::string, std::string> env;  // extra environment
};

class Dialect {
 public:
  virtual ~Dialect() = default;
  virtual std::string planet() const = 0;   // "pytorch"
  virtual std::string version() const = 0;  // the plugin's own version
  // Source module / layer / op types this plugin translates (for coverage reports).
  virtual std::vector<std::string> source_types() const = 0;
  // Stream -> IR. Throws pb::Error naming the JSON path of anything it cannot translate.
  virtual ir::Graph decode(const Stream& stream) const = 0;
  // The capture process that serves suite fixtures for this planet.
  virtual CaptureCommand capture() const = 0;
};

// ------------------------------------------------------------------ the graph document

// The graph as it crosses the boundary: a framed document; a weight that is one of the
// stream's tensors (the same bytes, possibly reshaped) is sent by name, everything else as data.
std::vector<uint8_t> encode_graph(const ir::Graph& graph, const Stream& stream);
// Reads it back; weights sent by name share the stream's tensors (no copy). Errors name
// `where` (the plugin file) and the field.
ir::Graph decode_graph(const uint8_t* bytes, size_t size, const Stream& stream, const std::string& where);

// ------------------------------------------------------------------ host side

// The stream as the plugin sees it. Holds the JSON text and views into `stream` (which must
// outlive it).
class StreamView {
 public:
  explicit StreamView(const Stream& stream);
  const pb_stream_view* get() const { return &view_; }

 private:
  std::string json_;
  std::vector<std::string> names_;
  std::vector<pb_tensor_view> tensors_;
  pb_stream_view view_{};
};

// A loaded plugin's C description as a Dialect. `file` names the library in errors; the
// library must stay loaded while the Dialect lives.
std::shared_ptr<Dialect> dialect_from_plugin(const pb_plugin* plugin, const std::string& file);

// ------------------------------------------------------------------ plugin side

// The C entry points' bodies for a plugin's Dialect: every exception becomes an error document.
int plugin_source_types(const Dialect& d, pb_sink* out);
int plugin_capture(const Dialect& d, pb_sink* out);
int plugin_decode(const Dialect& d, const pb_stream_view* view, pb_sink* out, pb_sink* error);
// The stream a plugin decodes: its tensors are views of the host's memory.
Stream stream_from_view(const pb_stream_view& view);

// "g++ 12.2.0, libstdc++ 20230512": the toolchain this translation unit is compiled with.
#define PB_STRINGIFY2(x) #x
#define PB_STRINGIFY(x) PB_STRINGIFY2(x)
#if defined(__clang__)
#define PB_COMPILER "clang++ " __clang_version__
#elif defined(__GNUC__)
#define PB_COMPILER "g++ " __VERSION__
#else
#define PB_COMPILER "unknown compiler"
#endif
#if defined(_LIBCPP_VERSION)
#define PB_CXX_LIBRARY "libc++ " PB_STRINGIFY(_LIBCPP_VERSION)
#elif defined(__GLIBCXX__)
#define PB_CXX_LIBRARY "libstdc++ " PB_STRINGIFY(__GLIBCXX__) " cxx11-abi " PB_STRINGIFY(_GLIBCXX_USE_CXX11_ABI)
#else
#define PB_CXX_LIBRARY "unknown C++ library"
#endif
#define PB_TOOLCHAIN PB_COMPILER ", " PB_CXX_LIBRARY

// The planetbridge version core was built as (the SDK a plugin builds against).
const char* core_version();

}  // namespace pb
