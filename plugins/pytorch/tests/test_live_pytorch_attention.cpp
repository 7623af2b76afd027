// Attention models from a live PyTorch (Debian's python3-torch under /usr/bin/python3): stock
// nn.MultiheadAttention, nn.TransformerEncoderLayer and nn.TransformerEncoder as users have them
// (torch's own initialisation, time-major or batch_first, dropout in the module, torch's own
// -inf causal mask, a bool padding mask, torch's fast paths) passed directly as the root module
// and as children of a user module, captured with pb_torch.capture and passed through
// `planetbridge check`; nn.TransformerDecoderLayer, nn.TransformerDecoder and nn.Transformer
// likewise (masks of every kind, norm_first, gelu, batch_first either way); and the bedrock
// suite's mha, transformer and swiglu fixtures. Skipped (PB-SKIP) without torch.
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

namespace {

// Decoders as users have them, captured with pb_torch.capture.
const char* kDecoderScript = R"PY(
import sys
sys.path.insert(0, sys.argv[1])
import torch
from torch import nn
import pb_torch

torch.manual_seed(0)
out = sys.argv[2]

class CausalDecoder(nn.Module):
    """A batch-first gelu decoder layer under torch's own causal tgt_mask and a float memory_mask."""

    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerDecoderLayer(32, 4, 64, activation="gelu", batch_first=True)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(10))
        self.register_buffer("memory_mask", torch.randn(10, 12))

    def forward(self, tgt, memory):
        return self.layer(tgt, memory, tgt_mask=self.causal, memory_mask=self.memory_mask)

class PaddedDecoder(nn.Module):
    """Embedded target tokens through a 2-layer pre-norm decoder with a final norm: a causal mask,
    tgt and memory key padding masks as inputs."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        layer = nn.TransformerDecoderLayer(32, 4, 64, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, 2, norm=nn.LayerNorm(32))
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(10))

    def forward(self, ids, memory, tgt_padding, memory_padding):
        return self.decoder(self.embed(ids), memory, tgt_mask=self.causal, tgt_key_padding_mask=tgt_padding,
                            memory_key_padding_mask=memory_padding)

class PaddedTransformer(nn.Module):
    """nn.Transformer, post-norm and batch-first: the encoder takes torch's nested-tensor path
    under the source padding, which also masks the memory; a causal target."""

    def __init__(self):
        super().__init__()
        self.transformer = nn.Transformer(32, 4, 2, 2, 64, batch_first=True)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(10))

    def forward(self, src, tgt, src_padding):
        return self.transformer(src, tgt, tgt_mask=self.causal, src_key_padding_mask=src_padding, memory_key_padding_mask=src_padding)

class PrenormTransformer(nn.Module):
    """nn.Transformer, time-major, norm_first with gelu, a causal target, inside a model with a head."""

    def __init__(self):
        super().__init__()
        self.transformer = nn.Transformer(32, 4, 1, 2, 64, activation="gelu", norm_first=True)
        self.head = nn.Linear(32, 5)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(10))

    def forward(self, src, tgt):
        return self.head(self.transformer(src, tgt, tgt_mask=self.causal))

def padding(n, s, lengths):
    return torch.arange(s).unsqueeze(0) >= torch.tensor(lengths).unsqueeze(1)

models = {
    "root_decoder_layer": (nn.TransformerDecoderLayer(32, 4, 64), (torch.randn(10, 4, 32), torch.randn(12, 4, 32))),
    "root_decoder_layer_gelu_tanh": (nn.TransformerDecoderLayer(32, 4, 64, activation=nn.GELU(approximate="tanh"), batch_first=True, norm_first=True),
                                     (torch.randn(4, 10, 32), torch.randn(4, 12, 32))),
    "root_decoder": (nn.TransformerDecoder(nn.TransformerDecoderLayer(32, 4, 64, batch_first=True), 2, norm=nn.LayerNorm(32)),
                     (torch.randn(4, 10, 32), torch.randn(4, 12, 32))),
    "root_transformer": (nn.Transformer(32, 4, 2, 2, 64, batch_first=True), (torch.randn(4, 12, 32), torch.randn(4, 10, 32))),
    "child_causal_decoder": (CausalDecoder(), (torch.randn(4, 10, 32), torch.randn(4, 12, 32))),
    "child_padded_decoder": (PaddedDecoder(), (torch.randint(0, 50, (4, 10)), torch.randn(4, 12, 32), padding(4, 10, [10, 7, 3, 9]),
                                               padding(4, 12, [12, 5, 8, 1]))),
    "child_padded_transformer": (PaddedTransformer(), (torch.randn(4, 12, 32), torch.randn(4, 10, 32), padding(4, 12, [12, 5, 8, 2]))),
    "child_prenorm_transformer": (PrenormTransformer(), (torch.randn(12, 4, 32), torch.randn(10, 4, 32))),
}
for name, (model, inputs) in models.items():
    pb_torch.capture(model, inputs, name).write(f"{out}/{name}.pbstream")

# A custom activation callable the IR has no translation for: F.silu, and a lambda.
silu = nn.TransformerDecoderLayer(32, 4, 64, activation=nn.functional.silu, batch_first=True)
pb_torch.capture(silu, (torch.randn(2, 10, 32), torch.randn(2, 12, 32)), "refused_silu").write(f"{out}/refused_silu.pbstream")
lam = nn.Transformer(32, 4, 1, 1, 64, activation=lambda x: x * torch.sigmoid(x))
pb_torch.capture(lam, (torch.randn(12, 2, 32), torch.randn(10, 2, 32)), "refused_lambda").write(f"{out}/refused_lambda.pbstream")
)PY";

}  // namespace

TEST_CASE("live pytorch: TransformerDecoderLayer, TransformerDecoder and Transformer as the root module and as children pass planetbridge check",
          "[live]") {
  PB_REQUIRE_TORCH();
  pbtest::TempDir tmp;
  pytorch_test::run_capture_script(tmp, kDecoderScript);
  for (const std::string name : {"root_decoder_layer", "root_decoder_layer_gelu_tanh", "root_decoder", "root_transformer", "child_causal_decoder",
                                 "child_padded_decoder", "child_padded_transformer", "child_prenorm_transformer"}) {
    INFO(name);
    pytorch_test::check_passes(tmp, name);
  }
  // A custom activation: ERROR naming the layer's activation field and the function.
  for (const auto& [name, message] : std::vector<std::pair<std::string, std::string>>{
           {"refused_silu", "model.modules.layer.attrs.activation: unsupported decoder layer activation \"torch.nn.functional.silu\""},
           {"refused_lambda", "model.modules.transformer.children.encoder.children.layers.children[\"0\"].attrs.activation: unsupported encoder "
                              "layer activation \"__main__.<lambda>\""}}) {
    INFO(name);
    const std::string log = tmp.file(name + ".log");
    const int rc = pbtest::shell(pbtest::quote(PB_CLI) + " check " + pbtest::quote(tmp.file(name + ".pbstream")) + " --data " +
                                 pbtest::quote(tmp.file("runs")) + " >" + pbtest::quote(log) + " 2>&1");
    const std::string out = pbtest::read_text(log);
    INFO(out);
    CHECK(rc != 0);
    CHECK_THAT(out, Catch::Contains("verdict   ERROR") && Catch::Contains(message));
  }
}

TEST_CASE("live pytorch: the bedrock mha, transformer and swiglu fixtures pass at 1e-5, reload identically, and every tap agrees", "[live]") {
  PB_REQUIRE_TORCH();
  pbtest::TempDir tmp;
  const pb::host::Suite suite = pb::host::load_suite(PB_SOURCE_DIR "/config/suites/bedrock.yaml");
  pb::host::PluginRegistry plugins;
  plugins.load(PB_PLANET_PLUGIN);
  pb::host::RunOptions opt;
  opt.planets = {"pytorch"};
  opt.layers = {"mha", "transformer", "swiglu"};
  opt.out_dir = tmp.file("out");
  opt.capture_timeout_s = 120;
  const std::vector<pb::host::CaseResult> results = pb::host::run_suite(suite, plugins, opt);
  CHECK(results.size() == 26);
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
