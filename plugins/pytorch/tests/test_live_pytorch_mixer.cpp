// The bedrock suite's mixer fixtures from a live PyTorch (Debian's python3-torch under
// /usr/bin/python3): every layer type in one model, stock torch modules as users write them
// (fixtures.MixerV1: a plain 10-layer stack; fixtures.MixerV2: a 16-layer pre-norm transformer
// pattern with residuals, a causal nn.MultiheadAttention, GRU, RNN and LSTM), run through the
// suite runner. Skipped (PB-SKIP) without torch.
#include <cctype>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ladder.h"
#include "live_capture.h"
#include "plugin_loader.h"
#include "runner.h"
#include "suite.h"
#include "test_util.h"

TEST_CASE("live pytorch: the bedrock mixer fixtures pass at 1e-5, reload identically, every tap agrees, one tap per numbered layer", "[live]") {
  PB_REQUIRE_TORCH();
  pbtest::TempDir tmp;
  const pb::host::Suite suite = pb::host::load_suite(PB_SOURCE_DIR "/config/suites/bedrock.yaml");
  pb::host::PluginRegistry plugins;
  plugins.load(PB_PLANET_PLUGIN);
  pb::host::RunOptions opt;
  opt.planets = {"pytorch"};
  opt.layers = {"mixer"};
  opt.out_dir = tmp.file("out");
  opt.capture_timeout_s = 120;
  const std::vector<pb::host::CaseResult> results = pb::host::run_suite(suite, plugins, opt);
  // Each numbered layer's output as tapped: the module's fx node (l<NN>_<type>), an attention's
  // output projection "<node>/out", a recurrent layer's sequence "<node>/l0", the SwiGLU's
  // down_proj (traced through), and all_v2's 16th layer, F.softmax, by its function's name.
  const std::map<std::string, std::vector<std::string>> layer_taps = {
      {"mixer_all_v1",
       {"l01_dense", "l02_conv1d", "l03_layernorm", "l04_mha/out", "l05_rmsnorm", "l06_lstm/l0", "l07_tanh", "l08_swiglu_down_proj",
        "l09_layernorm", "l10_dense"}},
      {"mixer_all_v2",
       {"l01_embedding", "l02_layernorm", "l03_mha/out", "l04_rmsnorm", "l05_swiglu_down_proj", "l06_layernorm", "l07_conv1d", "l08_rmsnorm",
        "l09_gru/l0", "l10_layernorm", "l11_rnn/l0", "l12_rmsnorm", "l13_lstm/l0", "l14_layernorm", "l15_dense", "softmax"}},
  };
  REQUIRE(results.size() == 2);
  std::set<std::string> seen;
  for (const auto& r : results) {
    INFO(r.name() << ": " << pb::host::verdict_name(r.verdict) << " " << r.message << " " << r.worst);
    seen.insert(r.fixture);
    CHECK(r.verdict == pb::host::Verdict::PASS);  // float32 on both sides: close, not bit-equal
    CHECK(r.reload_identical);
    CHECK(r.tap_error.empty());
    CHECK(r.composed.size() == 2);  // RMSNorm and SwiGLU, labelled composed
    REQUIRE(r.outputs.size() == 1);
    CHECK(r.outputs[0].vs_native.has_reference);  // torch's float64 result travels too
    CHECK(!r.outputs[0].vs_native.degenerate);
    CHECK(r.outputs[0].vs_native.rescued == 0);   // within 1e-5 on its own, no float64 rescue
    std::set<std::string> tapped;
    for (const auto& t : r.taps) {
      INFO(t.value);
      CHECK(t.vs_native.within);
      tapped.insert(t.value);
    }
    const auto expected = layer_taps.find(r.fixture);
    REQUIRE(expected != layer_taps.end());
    for (size_t k = 0; k < expected->second.size(); ++k) {
      INFO("layer " << k + 1 << ": " << expected->second[k]);
      CHECK(tapped.count(expected->second[k]) == 1);
    }
    // No numbered module beyond the arch's layers.
    for (const auto& v : tapped) {
      if (v.size() > 3 && v[0] == 'l' && std::isdigit(static_cast<unsigned char>(v[1])) && std::isdigit(static_cast<unsigned char>(v[2])) && v[3] == '_') {
        INFO(v);
        CHECK(std::stoul(v.substr(1, 2)) <= expected->second.size());
      }
    }
  }
  CHECK(seen == std::set<std::string>{"mixer_all_v1", "mixer_all_v2"});
}

namespace {

// The mixer's pieces in other spellings users write: the sequence moved to channels by
// x.swapaxes(1, 2) / torch.swapdims and back by .mT, attention written out with
// F.softmax(..., dtype=torch.float32).to(q.dtype) (Hugging Face's attention), k.mT, and a head
// under torch.softmax(x, -1, torch.float32).
const char* kSpellingsScript = R"PY(
import math
import sys
sys.path.insert(0, sys.argv[1])
import torch
from torch import nn
import torch.nn.functional as F
import pb_torch

torch.manual_seed(0)
out = sys.argv[2]

class ConvAttentionBlock(nn.Module):
    def __init__(self, d=32, heads=4):
        super().__init__()
        self.heads = heads
        self.conv = nn.Conv1d(d, d, 3, padding="same")
        self.qkv = nn.Linear(d, 3 * d)
        self.o_proj = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x):
        x = x + self.conv(x.swapaxes(1, 2)).mT
        B, T, C = x.shape
        q, k, v = self.qkv(self.norm(x)).split(C, dim=2)
        q = torch.swapdims(q.view(B, T, self.heads, C // self.heads), 1, 2)
        k = k.view(B, T, self.heads, C // self.heads).swapaxes(1, 2)
        v = torch.swapaxes(v.view(B, T, self.heads, C // self.heads), 1, 2)
        att = (q @ k.mT) / math.sqrt(C // self.heads)
        att = F.softmax(att, dim=-1, dtype=torch.float32).to(q.dtype)
        y = (att @ v).swapaxes(1, 2).reshape(B, T, C)
        return x + self.o_proj(y)

class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = ConvAttentionBlock()
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return torch.softmax(self.fc(self.block(x)), -1, torch.float32)

model = Head()
with torch.no_grad():
    for p in model.parameters():
        p.add_(0.05 * torch.randn_like(p))  # LayerNorm off 1 / 0, biases non-zero
pb_torch.capture(model, (torch.randn(4, 8, 32),), "spellings", taps=True).write(f"{out}/spellings.pbstream")
)PY";

}  // namespace

TEST_CASE("live pytorch: swapaxes, swapdims, .mT and softmax with dtype float32 as user code writes them pass planetbridge check", "[live]") {
  PB_REQUIRE_TORCH();
  pbtest::TempDir tmp;
  pytorch_test::run_capture_script(tmp, kSpellingsScript);
  pytorch_test::check_passes(tmp, "spellings");
}
