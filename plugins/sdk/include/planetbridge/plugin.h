#pragma once
// The plugin ABI. A plugin is a shared library libplanet_<name>.so that exports two aliases:
//   planetbridge_abi_version  -> uint32_t()            compared with kPluginAbiVersion
//   planetbridge_create       -> std::shared_ptr<Dialect>()
// Use PLANETBRIDGE_PLUGIN(factory) once in the plugin to define both, or
// PLANETBRIDGE_DIALECT(DialectClass) when the factory only has to make a DialectClass.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/dll/alias.hpp>

#include "planetbridge/ir.h"
#include "planetbridge/stream.h"

namespace pb {

// Bumped whenever Dialect, Stream, ir::Graph or Tensor change layout or meaning.
inline constexpr uint32_t kPluginAbiVersion = 1;

// How the host launches the planet's capture process (see docs/capture-protocol.md).
struct CaptureCommand {
  std::vector<std::string> argv;  // argv[0] is the program, an absolute path or found on PATH
  std::map<std::string, std::string> env;  // extra environment
};

class Dialect {
 public:
  virtual ~Dialect() = default;
  virtual std::string planet() const = 0;        // "pytorch"
  virtual std::string version() const = 0;       // the plugin's own version
  // Source module / layer / op types this plugin translates (for coverage reports).
  virtual std::vector<std::string> source_types() const = 0;
  // Stream -> IR. Throws pb::Error naming the JSON path of anything it cannot translate.
  virtual ir::Graph decode(const Stream& stream) const = 0;
  // The capture process that serves suite fixtures for this planet.
  virtual CaptureCommand capture() const = 0;
};

// A translator table: source type -> function. Plugins keep one per vocabulary.
template <typename Fn>
using TranslatorTable = std::map<std::string, Fn>;

template <typename Table>
std::vector<std::string> table_keys(const Table& t) {
  std::vector<std::string> out;
  for (const auto& kv : t) out.push_back(kv.first);
  return out;
}

}  // namespace pb

// Tests build a deliberately mismatched plugin by defining this first.
#ifndef PLANETBRIDGE_PLUGIN_ABI
#define PLANETBRIDGE_PLUGIN_ABI pb::kPluginAbiVersion
#endif

// The ABI function has internal linkage so it can never bind to the host's copy.
// BOOST_DLL_ALIAS needs a qualified name (an unqualified one aliases itself).
#define PLANETBRIDGE_PLUGIN(factory)                                                \
  namespace pb_plugin_exports {                                                     \
  namespace {                                                                       \
  uint32_t abi_version() { return PLANETBRIDGE_PLUGIN_ABI; }                        \
  }                                                                                 \
  }                                                                                 \
  BOOST_DLL_ALIAS(pb_plugin_exports::abi_version, planetbridge_abi_version)         \
  BOOST_DLL_ALIAS(factory, planetbridge_create)

// PLANETBRIDGE_PLUGIN with a factory returning a new DialectClass (default-constructed).
#define PLANETBRIDGE_DIALECT(DialectClass)                                                           \
  namespace pb_plugin_exports {                                                                      \
  namespace {                                                                                        \
  std::shared_ptr<pb::Dialect> create_dialect() { return std::make_shared<DialectClass>(); }         \
  }                                                                                                  \
  }                                                                                                  \
  PLANETBRIDGE_PLUGIN(pb_plugin_exports::create_dialect)
