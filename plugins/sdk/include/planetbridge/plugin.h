#pragma once
// Exports a planet's Dialect through the C boundary (planetbridge/plugin_abi.h): put
// PLANETBRIDGE_DIALECT(MyDialect) once in the plugin. It defines the entry point
// `planetbridge_plugin`, whose struct of function pointers calls the Dialect and turns every
// exception into an error document, so nothing C++ crosses into the host.
#include "planetbridge/dialect.h"
#include "planetbridge/plugin_abi.h"
#include "planetbridge/version.h"

// Tests build a deliberately mismatched plugin by defining this first.
#ifndef PLANETBRIDGE_PLUGIN_ABI
#define PLANETBRIDGE_PLUGIN_ABI PB_PLUGIN_ABI_VERSION
#endif

#define PLANETBRIDGE_DIALECT(DialectClass)                                                                     \
  namespace pb_plugin_exports {                                                                                \
  namespace {                                                                                                  \
  const pb::Dialect& dialect() {                                                                               \
    static const DialectClass d;                                                                               \
    return d;                                                                                                  \
  }                                                                                                            \
  int source_types(pb_sink* out) { return pb::plugin_source_types(dialect(), out); }                          \
  int capture(pb_sink* out) { return pb::plugin_capture(dialect(), out); }                                    \
  int decode(const pb_stream_view* s, pb_sink* out, pb_sink* error) { return pb::plugin_decode(dialect(), s, out, error); } \
  }                                                                                                            \
  }                                                                                                            \
  extern "C" __attribute__((visibility("default"))) const pb_plugin* planetbridge_plugin(uint32_t) {        \
    try {                                                                                                      \
      static const std::string planet = pb_plugin_exports::dialect().planet();                                \
      static const std::string version = pb_plugin_exports::dialect().version();                              \
      static const pb_plugin p = {PLANETBRIDGE_PLUGIN_ABI, sizeof(pb_plugin), planet.c_str(), version.c_str(), \
                                  PLANETBRIDGE_VERSION, PB_TOOLCHAIN, pb_plugin_exports::source_types,         \
                                  pb_plugin_exports::capture, pb_plugin_exports::decode};                      \
      return &p;                                                                                               \
    } catch (...) {                                                                                            \
      return nullptr;                                                                                          \
    }                                                                                                          \
  }
