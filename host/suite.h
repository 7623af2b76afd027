#pragma once
// YAML suites (config/suites/*.yaml, docs/suites.md).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pb::host {

struct Tolerance {
  double atol = 1e-5;
  double rtol = 1e-5;
};

struct Fixture {
  std::string id;
  std::string layer;
  nlohmann::json spec;                 // passed to the capture untouched
  std::vector<std::string> planets;
  Tolerance tolerance;                 // suite defaults, then the fixture's override
  std::map<std::string, Tolerance> planet_tolerance;     // per-planet overrides
  std::map<std::string, std::string> not_applicable;     // planet -> reason (reported as SKIP)
  int64_t samples = 100;
  int64_t seed = 42;

  Tolerance tolerance_for(const std::string& planet) const;
};

struct Suite {
  std::string name;
  std::string file;
  std::vector<Fixture> fixtures;
};

// Parses and validates a suite; errors name the file, line and key path.
Suite load_suite(const std::string& path);
Suite parse_suite(const std::string& yaml_text, const std::string& file_name);

}  // namespace pb::host
