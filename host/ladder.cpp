#include "ladder.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "planetbridge/entity.h"
#include "planetbridge/network.h"

namespace pb::host {

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::EXACT: return "EXACT";
    case Verdict::PASS: return "PASS";
    case Verdict::FAIL: return "FAIL";
    case Verdict::ERROR: return "ERROR";
    case Verdict::SKIP: return "SKIP";
  }
  return "?";
}

double CaseResult::total_ms() const {
  double t = 0;
  for (const auto& s : stage_ms) t += s.second;
  return t;
}

namespace {

class Stopwatch {
 public:
  explicit Stopwatch(CaseResult& r) : r_(r) {}
  template <typename F>
  auto time(const char* stage, F&& f) {
    auto t0 = std::chrono::steady_clock::now();
    auto record = [&] {
      r_.stage_ms.emplace_back(stage, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    };
    if constexpr (std::is_void_v<decltype(f())>) {
      f();
      record();
    } else {
      auto v = f();
      record();
      return v;
    }
  }

 private:
  CaseResult& r_;
};

std::map<std::string, Shape> input_shapes(const ir::Graph& g, const Stream& s) {
  std::map<std::string, Shape> shapes;
  for (size_t i = 0; i < g.inputs.size() && i < s.inputs.size(); ++i)
    shapes[g.inputs[i].name] = s.tensors.at(s.inputs[i]).shape();
  return shapes;
}

std::vector<const Tensor*> input_tensors(const Stream& s) {
  std::vector<const Tensor*> v;
  for (const std::string& name : s.inputs) v.push_back(&s.tensors.at(name));
  return v;
}

std::string fmt_value(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// Recompiles without fusion so every tapped node's own output exists, runs once, and compares
// each tapped value with the planet's (one extra compile, for every stream with taps).
std::vector<TapCheck> check_taps(const ir::Graph& graph, const Stream& s, const Tolerance& tol) {
  std::vector<TapCheck> taps;
  Network net(graph, input_shapes(graph, s), CompileOptions::inspectable());
  net.run(input_tensors(s));
  for (const ir::Node& n : net.executed_graph().nodes) {
    for (const std::string& out : n.outputs) {
      auto tap = s.taps.find(out);
      const Tensor* mine = net.value(out);
      if (tap == s.taps.end() || !mine) continue;
      taps.push_back({n.name, n.origin, out, compare(*mine, s.tensors.at(tap->second), tol)});
    }
  }
  return taps;
}

// Names the first tapped node (in execution order) whose output leaves the tolerance.
std::string first_divergence(const CaseResult& r) {
  if (!r.tap_error.empty()) return "the taps could not be compared: " + r.tap_error;
  for (const TapCheck& t : r.taps) {
    const Comparison& c = t.vs_native;
    if (!c.mismatch.empty() || !c.within)
      return "node \"" + t.node + "\" (" + t.origin + "): " +
             (c.mismatch.empty() ? "max|diff| " + fmt_value(c.max_abs) + " at " + c.worst_index : c.mismatch);
  }
  return "no tapped node diverges before the outputs";
}

// The steady-state time: a single first run pays page faults and oneDNN's lazy set-up, and one
// sample on a shared machine is noise, so a slowdown is judged on the median of several.
void time_repeats(Network& net, const std::vector<const Tensor*>& inputs, const LadderOptions& opt, CaseResult& r) {
  if (opt.repeats <= 0) return;
  struct Quiet {
    const std::function<void(bool)>& f;
    explicit Quiet(const std::function<void(bool)>& quiet) : f(quiet) {
      if (f) f(true);
    }
    ~Quiet() {
      if (f) f(false);
    }
  } quiet(opt.quiet);
  std::vector<double> ms;
  double spent = 0;
  while (static_cast<int>(ms.size()) < opt.repeats && (ms.size() < 2 || spent < opt.repeat_budget_ms)) {
    const auto t0 = std::chrono::steady_clock::now();
    net.run(inputs);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    spent += ms.back();
  }
  if (ms.empty()) return;
  std::sort(ms.begin(), ms.end());
  r.run_repeats = static_cast<int>(ms.size());
  r.run_min_ms = ms.front();
  r.run_median_ms = ms.size() % 2 ? ms[ms.size() / 2] : (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]) / 2;
}

}  // namespace

CaseResult run_ladder(const Stream& stream, const Dialect& dialect, const LadderOptions& opt) {
  CaseResult r;
  r.planet = stream.planet;
  r.fixture = stream.model_id;
  r.engine = stream.engine + " " + stream.planet_version;
  r.composed = stream.composed;
  r.tolerance = opt.tolerance;
  Stopwatch sw(r);
  try {
    ir::Graph graph = sw.time("decode", [&] { return dialect.decode(stream); });
    auto shapes = input_shapes(graph, stream);
    auto net = sw.time("compile", [&] { return std::make_unique<Network>(graph, shapes); });
    const auto inputs = input_tensors(stream);
    sw.time("run", [&] { net->run(inputs); });
    if (net->output_count() != stream.expected.size())
      throw Error("expected", "the model has " + std::to_string(net->output_count()) + " outputs, the stream " +
                                  std::to_string(stream.expected.size()));

    bool all_exact = true, all_within = true;
    double worst_ratio = -1;
    for (size_t i = 0; i < stream.expected.size(); ++i) {
      OutputCheck oc;
      oc.name = stream.expected[i];
      const auto ref = stream.reference.find(oc.name);
      oc.vs_native = compare(net->output(i), stream.tensors.at(oc.name), opt.tolerance,
                             ref == stream.reference.end() ? nullptr : &stream.tensors.at(ref->second));
      const Comparison& c = oc.vs_native;
      if (!c.mismatch.empty()) throw Error("expected[" + std::to_string(i) + "]", "output \"" + oc.name + "\": " + c.mismatch);
      all_exact &= c.exact;
      all_within &= c.within;
      r.max_abs = std::max(r.max_abs, c.max_abs);
      r.max_rel = std::max(r.max_rel, c.max_rel);
      const double bound = opt.tolerance.atol + opt.tolerance.rtol * std::fabs(c.worst_native);
      const double ratio = std::fabs(c.worst_bridged - c.worst_native) / (bound > 0 ? bound : 1);
      if (c.worst >= 0 && ratio > worst_ratio) {
        worst_ratio = ratio;
        r.worst = oc.name + c.worst_index + ": bridged " + fmt_value(c.worst_bridged) + " vs native " + fmt_value(c.worst_native);
      }
      r.outputs.push_back(oc);
    }
    time_repeats(*net, inputs, opt, r);
    // Per-node divergence for every case with taps (the dashboard charts it); a failure here
    // is reported beside the verdict, never instead of it.
    if (!stream.taps.empty()) {
      sw.time("taps", [&] {
        try {
          r.taps = check_taps(graph, stream, opt.tolerance);
        } catch (const std::exception& e) {
          r.tap_error = e.what();
        }
      });
    }

    // The checkpoint: save, reload, recompile, rerun, and demand identical bits.
    r.entity_path = opt.entity_path;
    if (r.entity_path.empty()) throw Error("entity", "no checkpoint path given");
    std::filesystem::path dir = std::filesystem::path(r.entity_path).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir);
    sw.time("save", [&] { entity::save(graph, r.entity_path); });
    // The bridged outputs are all the reload is compared with: the first network (its packed
    // weights) is released, and the stream's mapped pages with it, before the second is built,
    // so a large model is held about twice (its bytes and its packed weights), never more.
    std::vector<Tensor> bridged;
    for (size_t i = 0; i < net->output_count(); ++i) bridged.push_back(net->output(i).clone());
    net.reset();
    stream.raw.evict();
    auto reloaded = sw.time("reload", [&] {
      entity::Loaded loaded = entity::load(r.entity_path);
      r.entity_bytes = loaded.file_bytes;
      auto n = std::make_unique<Network>(loaded.graph, input_shapes(loaded.graph, stream));
      loaded.file.evict();  // packed now: the checkpoint's pages are no longer needed resident
      n->run(inputs);
      return n;
    });
    r.reload_identical = true;
    for (size_t i = 0; i < r.outputs.size(); ++i) {
      r.outputs[i].reload_identical = reloaded->output(i).bit_equal(bridged[i]);
      r.reload_identical &= r.outputs[i].reload_identical;
    }

    if (!all_within) {
      r.verdict = Verdict::FAIL;
      int64_t bad = 0;
      for (const auto& o : r.outputs) bad += o.vs_native.violations;
      r.message = std::to_string(bad) + " elements outside tolerance";
      if (!stream.taps.empty()) r.first_divergence = first_divergence(r);
    } else if (!r.reload_identical) {
      r.verdict = Verdict::FAIL;
      r.message = "the model reloaded from .entity does not reproduce the bridged outputs bit for bit";
    } else {
      r.verdict = all_exact ? Verdict::EXACT : Verdict::PASS;
    }
  } catch (const std::exception& e) {
    r.verdict = Verdict::ERROR;
    r.message = e.what();
  }
  return r;
}

}  // namespace pb::host
