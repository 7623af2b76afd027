// The mixer stacks (config/suites/bedrock.yaml, layer mixer), live on each planet: beyond PASS,
// every layer must influence the output. The system we rebuild passed its mixer v2 while
// silently discarding the first six layers' output; a comparison cannot see that, because the
// planet and the bridge agree on a result that ignores them. So for each node of the decoded
// graph that has float weights, noise added to all of them must move the output.
#include <cmath>
#include <random>
#include <set>

#include "planetbridge/network.h"
#include "planetbridge/stream.h"
#include "run_store.h"
#include "runner.h"
#include "suite.h"
#include "test_util.h"

namespace {

using pb::Tensor;

std::vector<Tensor> outputs_of(const pb::ir::Graph& g, const std::map<std::string, pb::Shape>& shapes, const std::vector<const Tensor*>& in) {
  pb::Network net(g, shapes);
  net.run(in);
  std::vector<Tensor> out;
  for (size_t i = 0; i < net.output_count(); ++i) out.push_back(net.output(i).clone());
  return out;
}

double max_change(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    for (int64_t k = 0; k < a[i].numel(); ++k)
      worst = std::max(worst, std::fabs(double(a[i].data<float>()[k]) - double(b[i].data<float>()[k])));
  return worst;
}

// A learned weight, not a mask: f32 with every element finite and below 1e6 in magnitude (masks
// fill with -inf, float32's lowest (Flax) or -1e9 (Keras): noise cannot move what they mask).
bool learned(const Tensor& t) {
  if (t.dtype() != pb::DType::f32) return false;
  for (int64_t k = 0; k < t.numel(); ++k)
    if (!(std::fabs(t.data<float>()[k]) < 1e6f)) return false;
  return true;
}

// Noise on every learned weight of each node (10% of each element plus 0.01, random signs: a
// uniform shift could vanish in a softmax or a norm); the nodes whose noise leaves the output
// within 1e-4, as "node (op)".
std::vector<std::string> inert_nodes(const pb::ir::Graph& g, const std::map<std::string, pb::Shape>& shapes,
                                     const std::vector<const Tensor*>& in, size_t& weighted) {
  const std::vector<Tensor> base = outputs_of(g, shapes, in);
  std::mt19937 rng(7);
  // Only nodes the outputs depend on (a decoder may emit what nothing reads, e.g. attention
  // weights a model drops; compilation removes those).
  std::set<std::string> needed(g.outputs.begin(), g.outputs.end());
  std::set<const pb::ir::Node*> live;
  for (auto n = g.nodes.rbegin(); n != g.nodes.rend(); ++n)
    for (const std::string& out : n->outputs)
      if (needed.count(out)) {
        live.insert(&*n);
        needed.insert(n->inputs.begin(), n->inputs.end());
        break;
      }
  std::vector<std::string> inert;
  weighted = 0;
  for (const pb::ir::Node& n : g.nodes) {
    if (!live.count(&n)) continue;
    pb::ir::Graph perturbed = g;
    bool any = false;
    for (const std::string& w : n.inputs) {
      auto it = perturbed.weights.find(w);
      if (it == perturbed.weights.end() || !learned(it->second)) continue;
      Tensor noisy = it->second.clone();
      for (int64_t k = 0; k < noisy.numel(); ++k) {
        float& v = noisy.data<float>()[k];
        v += (rng() % 2 ? 1.f : -1.f) * (0.1f * std::fabs(v) + 0.01f);
      }
      it->second = noisy;
      any = true;
    }
    if (!any) continue;
    ++weighted;
    if (max_change(base, outputs_of(perturbed, shapes, in)) <= 1e-4) inert.push_back(n.name + " (" + n.op + ")");
  }
  return inert;
}

void check_mixers(const std::string& planet) {
  PBTEST_SKIP_IF(pbtest::planet_unavailable(planet), "live " + planet + " mixers");
  pbtest::TempDir tmp;
  const pb::host::Suite suite = pb::host::load_suite(PB_SOURCE_DIR "/config/suites/bedrock.yaml");
  pb::host::PluginRegistry plugins;
  REQUIRE(plugins.load(pbtest::plugin_path(planet)));
  pb::host::RunOptions opt;
  opt.planets = {planet};
  opt.layers = {"mixer"};
  opt.out_dir = tmp.file("data");
  opt.capture_timeout_s = 300;
  const std::vector<pb::host::CaseResult> results = pb::host::run_suite(suite, plugins, opt);
  REQUIRE(results.size() == 2);
  pb::host::RunStore store(opt.out_dir);
  for (const pb::host::CaseResult& r : results) {
    INFO(r.name() << ": " << pb::host::verdict_name(r.verdict) << " " << r.message << " " << r.worst);
    CHECK((r.verdict == pb::host::Verdict::EXACT || r.verdict == pb::host::Verdict::PASS));
    CHECK(r.reload_identical);
    CHECK(r.tap_error.empty());
    CHECK(r.taps.size() >= (r.fixture == "mixer_all_v1" ? 10u : 16u));  // one per layer at least
    for (const auto& t : r.taps) {
      INFO("tap " << t.value << " of " << t.node);
      CHECK((t.vs_native.exact || t.vs_native.within));
    }
    const pb::Stream s = pb::read_stream_file(store.stream_file(r.run_id));
    const pb::ir::Graph g = plugins.find(planet)->decode(s);
    std::map<std::string, pb::Shape> shapes;
    std::vector<const Tensor*> in;
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      in.push_back(&s.tensors.at(s.inputs.at(i)));
      shapes[g.inputs[i].name] = in.back()->shape();
    }
    size_t weighted = 0;
    const std::vector<std::string> inert = inert_nodes(g, shapes, in, weighted);
    std::string list;
    for (const std::string& n : inert) list += "\n  " + n;
    INFO("nodes whose weights do not move the output:" << list);
    CHECK(inert.empty());
    CHECK(weighted >= (r.fixture == "mixer_all_v1" ? 10u : 16u));
  }
}

}  // namespace

TEST_CASE("live mixer: every layer of mixer_all_v1 and v2 moves the output (pytorch)", "[live][mixer]") { check_mixers("pytorch"); }
TEST_CASE("live mixer: every layer of mixer_all_v1 and v2 moves the output (tensorflow)", "[live][mixer]") { check_mixers("tensorflow"); }
TEST_CASE("live mixer: every layer of mixer_all_v1 and v2 moves the output (jax)", "[live][mixer]") { check_mixers("jax"); }
