// Fuzz target fuzz_stream (docs/fuzzing.md): what `planetbridge check` does with the bytes of a
// stream before it runs anything — the stream reader (binary framing or a JSON document, every
// tensor decoded and validated), the planet's decoder through its plugin (the C boundary, both
// ways), the host's input shapes and the compile of the Network (shape inference, oneDNN
// primitives, buffers) and its output count against the stream's, within the budget of
// fuzz_util.h. Running, comparing and saving are left out. Every refusal must be a pb::Error.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "fuzz_util.h"
#include "planetbridge/error.h"
#include "planetbridge/network.h"
#include "planetbridge/stream.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  pbfuzz::plugins();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  pb::Stream stream;
  try {
    stream = pb::read_stream_bytes(data, size);
  } catch (const pb::Error&) {
    return 0;
  }
  const pb::Dialect* dialect = pbfuzz::plugins().find(stream.planet);
  if (!dialect) return 0;  // `check` refuses it: no plugin for the planet

  pb::ir::Graph graph;
  try {
    graph = dialect->decode(stream);
  } catch (const pb::Error&) {
    return 0;
  }

  // The ladder's input shapes: the graph's inputs in order, from the stream's input tensors.
  std::map<std::string, pb::Shape> shapes;
  for (size_t i = 0; i < graph.inputs.size() && i < stream.inputs.size(); ++i)
    shapes[graph.inputs[i].name] = stream.tensors.at(stream.inputs[i]).shape();
  if (!pbfuzz::within_budget(graph, shapes)) return 0;
  try {
    auto net = std::make_unique<pb::Network>(graph, shapes);
    if (net->output_count() != stream.expected.size()) return 0;  // the ladder's "expected" error
  } catch (const pb::Error&) {
    return 0;
  }
  return 0;
}
