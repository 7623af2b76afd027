// A minimal, well-formed planet plugin for the loader tests. PB_FAKE_PLANET names the planet;
// compiling with -DPLANETBRIDGE_PLUGIN_ABI=999 makes a plugin the host must refuse. Its decode
// fails on purpose, with a pb::Error or (model.throw = "std") a std::exception, so tests see
// both cross the C boundary as error documents.
#include <stdexcept>

#include "planetbridge/plugin.h"

#ifndef PB_FAKE_PLANET
#define PB_FAKE_PLANET "fake"
#endif

namespace pb_fake_plugin {
namespace {

class FakeDialect : public pb::Dialect {
 public:
  std::string planet() const override { return PB_FAKE_PLANET; }
  std::string version() const override { return "0.0.1"; }
  std::vector<std::string> source_types() const override { return {"FakeLayer"}; }
  pb::ir::Graph decode(const pb::Stream& stream) const override {
    if (stream.model().str("throw", "") == "std") throw std::runtime_error("something inside the fake planet broke");
    stream.model().fail("the fake planet decodes nothing");
  }
  pb::CaptureCommand capture() const override { return {{"/bin/false"}, {{"FAKE", "1"}}}; }
};

}  // namespace
}  // namespace pb_fake_plugin

PLANETBRIDGE_DIALECT(pb_fake_plugin::FakeDialect)
