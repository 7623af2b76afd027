// Attention models from a live PyTorch (Debian's python3-torch under /usr/bin/python3): stock
// nn.MultiheadAttention, nn.TransformerEncoderLayer and nn.TransformerEncoder as users have them
// (torch's own initialisation, time-major or batch_first, dropout in the module, torch's own
// -inf causal mask, a bool padding mask, torch's fast paths) passed directly as the root module
// and as children of a user module, captured with pb_torch.capture and passed through
// `planetbridge check`; and the bedrock suite's mha and transformer fixtures. Skipped (PB-SKIP)
// without torch.
#include "ladder.h"
#include "plugin_loader.h"
#include "runner.h"
#include "suite.h"
#include "live_capture.h"
#include "test_util.h"

namespace {

// Captures each model into <dir>/<name>.pbstream with the library entry a user calls.
const char* kCaptureScript = R"PY(
import sys
sys.path.insert(0, sys.argv[1])
import torch
from torch import nn
import pb_torch

torch.manual_seed(0)
out = sys.argv[2]

class SelfAttentionHead(nn.Module):
    """Self-attention, its output taken as attn(...)[0], then a classifier on the first position."""

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
        self.fc = nn.Linear(32, 3)

    def forward(self, x):
        y = self.attn(x, x, x, need_weights=False)[0]
        return self.fc(y[:, 0])

class CausalEncoder(nn.Module):
    """A time-major 2-layer encoder under torch's own causal mask (-inf above the diagonal)."""

    def __init__(self, seq):
        super().__init__()
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64), 2)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(seq))

    def forward(self, x):
        return self.encoder(x, mask=self.mask)

class PaddedEncoder(nn.Module):
    """Embedding, then a batch-first encoder with a key padding mask (torch's nested-tensor path)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, batch_first=True), 2, norm=nn.LayerNorm(32))

    def forward(self, ids, padding):
        return self.encoder(self.embed(ids), src_key_padding_mask=padding)

class Decoderish(nn.Module):
    """Cross-attention from queries to a memory of another width, weights returned."""

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(32, 4, kdim=20, vdim=20, batch_first=True)

    def forward(self, q, memory):
        return self.attn(q, memory, memory)

padding = torch.zeros(4, 12, dtype=torch.bool)
padding[1, 9:] = True
padding[3, 5:] = True
models = {
    "root_mha": (nn.MultiheadAttention(32, 4), (torch.randn(12, 4, 32),)),
    "root_encoder_layer": (nn.TransformerEncoderLayer(32, 4, 64), (torch.randn(12, 4, 32),)),
    "root_encoder_layer_fast": (nn.TransformerEncoderLayer(32, 4, 64, activation=nn.GELU(), batch_first=True, norm_first=True),
                                (torch.randn(4, 12, 32),)),
    "child_mha": (SelfAttentionHead(), (torch.randn(4, 12, 32),)),
    "child_cross_mha": (Decoderish(), (torch.randn(4, 6, 32), torch.randn(4, 12, 20))),
    "child_causal_encoder": (CausalEncoder(12), (torch.randn(12, 4, 32),)),
    "child_padded_encoder": (PaddedEncoder(), (torch.randint(0, 50, (4, 12)), padding)),
}
for name, (model, inputs) in models.items():
    pb_torch.capture(model, inputs, name).write(f"{out}/{name}.pbstream")
)PY";

}  // namespace

TEST_CASE("live pytorch: MultiheadAttention and transformer encoders as the root module and as children pass planetbridge check", "[live]") {
  PB_REQUIRE_TORCH();
  pbtest::TempDir tmp;
  pytorch_test::run_capture_script(tmp, kCaptureScript);
  for (const std::string name : {"root_mha", "root_encoder_layer", "root_encoder_layer_fast", "child_mha", "child_cross_mha",
                                 "child_causal_encoder", "child_padded_encoder"}) {
    INFO(name);
    pytorch_test::check_passes(tmp, name);
  }
}

TEST_CASE("live pytorch: the bedrock mha and transformer fixtures pass at 1e-5, reload identically, and every tap agrees", "[live]") {
  PB_REQUIRE_TORCH();
  pbtest::TempDir tmp;
  const pb::host::Suite suite = pb::host::load_suite(PB_SOURCE_DIR "/config/suites/bedrock.yaml");
  pb::host::PluginRegistry plugins;
  plugins.load(PB_PLANET_PLUGIN);
  pb::host::RunOptions opt;
  opt.planets = {"pytorch"};
  opt.layers = {"mha", "transformer"};
  opt.out_dir = tmp.file("out");
  opt.capture_timeout_s = 120;
  const std::vector<pb::host::CaseResult> results = pb::host::run_suite(suite, plugins, opt);
  CHECK(results.size() == 14);
  for (const auto& r : results) {
    INFO(r.name() << ": " << pb::host::verdict_name(r.verdict) << " " << r.message << " " << r.worst);
    CHECK((r.verdict == pb::host::Verdict::EXACT || r.verdict == pb::host::Verdict::PASS));
    CHECK(r.reload_identical);
    CHECK(r.tap_error.empty());
    CHECK(!r.taps.empty());  // "<node>/out"; an encoder's sub-layers "<prefix>attn/out", "norm1", "linear2", its layers "<node>/l<k>"
    for (const auto& t : r.taps) {
      INFO(t.value);
      CHECK(t.vs_native.within);
    }
  }
}
