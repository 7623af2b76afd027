// Fuzz target fuzz_suite (docs/fuzzing.md): the suite loader (host/suite.cpp) on YAML text —
// parsing, aliases and their expansion limits, every key's validation — then planning the cases
// of `run` for the whole suite, as `run` does before it starts a capture. Every refusal must be a
// pb::Error naming the file, line and key.
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "planetbridge/error.h"
#include "runner.h"
#include "suite.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  pb::host::Suite suite;
  try {
    suite = pb::host::parse_suite(text, "fuzz.yaml");
  } catch (const pb::Error&) {
    return 0;
  }
  if (suite.fixtures.empty()) pbfuzz::fail("a suite without fixtures was accepted");
  try {
    const auto plan = pb::host::plan_cases(suite, pb::host::RunOptions{});
    for (const auto& c : plan) (void)c.fixture->tolerance_for(c.planet);
  } catch (const pb::Error&) {
  }
  return 0;
}
