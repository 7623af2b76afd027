#include "suite.h"

#include <cmath>
#include <fstream>
#include <iterator>
#include <set>

#include <yaml-cpp/yaml.h>

#include "planetbridge/error.h"

namespace pb::host {

namespace {

// What a suite's YAML may expand to (docs/security.md): aliases repeat what they point to, so a
// few hundred bytes can expand exponentially ("billion laughs") or refer to themselves.
constexpr int kMaxDepth = 64;
constexpr size_t kMaxValues = 100000;

class Ctx {
 public:
  Ctx(std::string file) : file_(std::move(file)) {}

  // A mapping's entries: keys are plain strings, each at most once.
  std::vector<std::pair<std::string, YAML::Node>> entries(const YAML::Node& n, const std::string& path) const {
    if (!n.IsMap()) fail(n, path, "expected a mapping");
    std::vector<std::pair<std::string, YAML::Node>> out;
    std::set<std::string> seen;
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) fail(kv.first, path, "a mapping key must be a plain string, not a " + kind(kv.first));
      const std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) fail(kv.first, path + "." + key, "duplicate key");
      out.emplace_back(key, kv.second);
    }
    return out;
  }

  [[noreturn]] void fail(const YAML::Node& n, const std::string& path, const std::string& msg) const {
    std::string where = file_;
    if (n.Mark().line >= 0) where += ":" + std::to_string(n.Mark().line + 1);
    throw Error(where + ": " + path, msg);
  }

  void only_keys(const YAML::Node& n, const std::string& path, const std::set<std::string>& allowed) const {
    for (const auto& [key, value] : entries(n, path)) {
      if (!allowed.count(key)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(value, path + "." + key, "unknown key (expected one of: " + list + ")");
      }
    }
  }

  std::string str(const YAML::Node& n, const std::string& path) const {
    if (!n.IsScalar()) fail(n, path, "expected a string");
    return n.as<std::string>();
  }

  double number(const YAML::Node& n, const std::string& path) const {
    try {
      if (n.IsScalar()) {
        const double v = n.as<double>();
        if (std::isfinite(v)) return v;
      }
    } catch (const YAML::Exception&) {
    }
    fail(n, path, "expected a finite number");
  }

  int64_t integer(const YAML::Node& n, const std::string& path) const {
    try {
      if (n.IsScalar()) return n.as<int64_t>();
    } catch (const YAML::Exception&) {
    }
    fail(n, path, "expected an integer");
  }

  Tolerance tolerance(const YAML::Node& n, const std::string& path, Tolerance base) const {
    only_keys(n, path, {"atol", "rtol"});
    if (n["atol"]) base.atol = number(n["atol"], path + ".atol");
    if (n["rtol"]) base.rtol = number(n["rtol"], path + ".rtol");
    if (!(base.atol >= 0) || !(base.rtol >= 0)) fail(n, path, "tolerances must be >= 0");
    return base;
  }

  // YAML -> JSON, typing plain scalars (quoted scalars stay strings), within kMaxDepth levels
  // and kMaxValues values for the whole file.
  nlohmann::json to_json(const YAML::Node& n, const std::string& path, int depth = 0) const {
    if (depth > kMaxDepth)
      fail(n, path, "nested deeper than " + std::to_string(kMaxDepth) + " levels (an alias that contains itself?)");
    if (++values_ > kMaxValues)
      fail(n, path, "expands to more than " + std::to_string(kMaxValues) + " values (aliases repeating aliases?)");
    switch (n.Type()) {
      case YAML::NodeType::Null: return nullptr;
      case YAML::NodeType::Sequence: {
        nlohmann::json a = nlohmann::json::array();
        for (size_t i = 0; i < n.size(); ++i) a.push_back(to_json(n[i], path + "[" + std::to_string(i) + "]", depth + 1));
        return a;
      }
      case YAML::NodeType::Map: {
        nlohmann::json o = nlohmann::json::object();
        for (const auto& [key, value] : entries(n, path)) o[key] = to_json(value, path + "." + key, depth + 1);
        return o;
      }
      case YAML::NodeType::Scalar: {
        const std::string s = n.Scalar();
        if (n.Tag() == "!") return s;  // quoted
        int64_t i;
        double d;
        bool b;
        if (YAML::convert<int64_t>::decode(n, i)) return i;
        if (YAML::convert<double>::decode(n, d)) return d;
        if (YAML::convert<bool>::decode(n, b)) return b;
        if (s == "~" || s == "null") return nullptr;
        return s;
      }
      default: fail(n, path, "unsupported YAML node");
    }
  }

 private:
  static std::string kind(const YAML::Node& n) {
    return n.IsMap() ? "mapping" : n.IsSequence() ? "list" : n.IsNull() ? "null" : "scalar";
  }

  std::string file_;
  mutable size_t values_ = 0;
};

}  // namespace

Tolerance Fixture::tolerance_for(const std::string& planet) const {
  auto it = planet_tolerance.find(planet);
  return it == planet_tolerance.end() ? tolerance : it->second;
}

Suite parse_suite(const std::string& text, const std::string& file) {
  Ctx c(file);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw Error(file + ":" + std::to_string(e.mark.line + 1), "invalid YAML: " + e.msg);
  }
  if (!root || root.IsNull()) throw Error(file, "empty suite file");
  c.only_keys(root, "(suite)", {"suite", "defaults", "fixtures"});
  Suite s;
  s.file = file;
  if (!root["suite"]) c.fail(root, "suite", "missing required key (the suite's name)");
  s.name = c.str(root["suite"], "suite");

  Fixture base;
  if (YAML::Node d = root["defaults"]) {
    c.only_keys(d, "defaults", {"tolerance", "samples", "seed"});
    if (d["tolerance"]) base.tolerance = c.tolerance(d["tolerance"], "defaults.tolerance", base.tolerance);
    if (d["samples"]) base.samples = c.integer(d["samples"], "defaults.samples");
    if (d["seed"]) base.seed = c.integer(d["seed"], "defaults.seed");
  }

  YAML::Node fixtures = root["fixtures"];
  if (!fixtures) c.fail(root, "fixtures", "missing required key");
  if (!fixtures.IsSequence() || fixtures.size() == 0) c.fail(fixtures, "fixtures", "expected a non-empty list of fixtures");
  std::set<std::string> ids;
  for (size_t i = 0; i < fixtures.size(); ++i) {
    const YAML::Node f = fixtures[i];
    const std::string path = "fixtures[" + std::to_string(i) + "]";
    c.only_keys(f, path, {"id", "layer", "spec", "planets", "tolerance", "planet_tolerance", "not_applicable", "samples", "seed"});
    Fixture fx = base;
    for (const char* key : {"id", "layer", "planets"})
      if (!f[key]) c.fail(f, path + "." + key, "missing required key");
    fx.id = c.str(f["id"], path + ".id");
    if (!ids.insert(fx.id).second) c.fail(f["id"], path + ".id", "duplicate fixture id \"" + fx.id + "\"");
    fx.layer = c.str(f["layer"], path + ".layer");
    fx.spec = f["spec"] ? c.to_json(f["spec"], path + ".spec") : nlohmann::json::object();
    if (!fx.spec.is_object()) c.fail(f["spec"], path + ".spec", "expected a mapping");
    const YAML::Node planets = f["planets"];
    if (!planets.IsSequence() || planets.size() == 0) c.fail(planets, path + ".planets", "expected a non-empty list of planets");
    for (size_t k = 0; k < planets.size(); ++k) fx.planets.push_back(c.str(planets[k], path + ".planets[" + std::to_string(k) + "]"));
    if (f["tolerance"]) fx.tolerance = c.tolerance(f["tolerance"], path + ".tolerance", fx.tolerance);
    if (const YAML::Node pt = f["planet_tolerance"]) {
      if (!pt.IsMap()) c.fail(pt, path + ".planet_tolerance", "expected a mapping of planet -> {atol, rtol}");
      for (const auto& [planet, tol] : c.entries(pt, path + ".planet_tolerance"))
        fx.planet_tolerance[planet] = c.tolerance(tol, path + ".planet_tolerance." + planet, fx.tolerance);
    }
    if (const YAML::Node na = f["not_applicable"]) {
      if (!na.IsMap()) c.fail(na, path + ".not_applicable", "expected a mapping of planet -> reason");
      for (const auto& [planet, reason] : c.entries(na, path + ".not_applicable"))
        fx.not_applicable[planet] = c.str(reason, path + ".not_applicable." + planet);
    }
    if (f["samples"]) fx.samples = c.integer(f["samples"], path + ".samples");
    if (f["seed"]) fx.seed = c.integer(f["seed"], path + ".seed");
    if (fx.samples <= 0) c.fail(f, path + ".samples", "must be > 0");
    s.fixtures.push_back(std::move(fx));
  }
  return s;
}

Suite load_suite(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path, "cannot open suite file");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return parse_suite(text, path);
}

}  // namespace pb::host
