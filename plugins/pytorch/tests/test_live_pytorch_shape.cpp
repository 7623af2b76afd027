// Shape introspection as real code writes it, from a live PyTorch (Debian's python3-torch under
// /usr/bin/python3): a nanoGPT-style decoder (B, T, C = x.size(), .split, heads by .view,
// 1 / math.sqrt(k.size(-1)), masked_fill of a sliced tril buffer with -inf, token and
// torch.arange position embeddings), ShuffleNet v2 blocks (channel shuffle with x.size() and //,
// chunk) and a ViT-style front (x.shape, torch._assert, the class token expanded to the batch,
// x[:, 0]). Each is captured at batch 2 and 3: the batch-2 stream passes `planetbridge check`,
// and its graph, in memory and reloaded from the checkpoint, computes the batch-3 outputs.
// Skipped (PB-SKIP) without torch.
#include "ladder.h"
#include "planetbridge/entity.h"
#include "planetbridge/network.h"
#include "plugin_loader.h"
#include "live_capture.h"
#include "test_util.h"

namespace {

// Captures each model at batch 2 and 3 into <dir>/<name>_b<N>.pbstream.
const char* kCaptureScript = R"PY(
import math
import sys
sys.path.insert(0, sys.argv[1])
import torch
from torch import nn
from torch.nn import functional as F
import pb_torch

out = sys.argv[2]

# nanoGPT's attention and block, as the zoo has them.
from zoo_models import Block


class GPT(nn.Module):
    def __init__(self, vocab=50, block_size=16, n_layer=2, n_head=4, n_embd=32):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList([Block(n_embd, n_head, block_size) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)

    def forward(self, idx):
        device = idx.device
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x)[:, [-1], :])

def channel_shuffle(x, groups):
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, -1, height, width)

class InvertedResidual(nn.Module):
    """torchvision's ShuffleNet v2 unit with stride 1: half the channels pass, the other half
    go through the branch, then the channels are shuffled."""

    def __init__(self, channels):
        super().__init__()
        c = channels // 2
        self.branch2 = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                                     nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False), nn.BatchNorm2d(c),
                                     nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat((x1, self.branch2(x2)), dim=1), 2)

class Shuffle(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.units = nn.Sequential(InvertedResidual(16), InvertedResidual(16))
        self.fc = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(self.units(self.stem(x)).flatten(1))

class VitFront(nn.Module):
    def __init__(self, image_size=16, patch_size=4, hidden_dim=32):
        super().__init__()
        self.image_size, self.patch_size, self.hidden_dim = image_size, patch_size, hidden_dim
        self.conv_proj = nn.Conv2d(3, hidden_dim, patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.randn(1, 1, hidden_dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, (image_size // patch_size) ** 2 + 1, hidden_dim) * 0.02)
        self.layer = nn.TransformerEncoderLayer(hidden_dim, 4, 64, batch_first=True)
        self.head = nn.Linear(hidden_dim, 10)

    def forward(self, x):
        n, c, h, w = x.shape
        p = self.patch_size
        torch._assert(h == self.image_size, f"Wrong image height! Expected {self.image_size} but got {h}!")
        torch._assert(w == self.image_size, f"Wrong image width! Expected {self.image_size} but got {w}!")
        x = self.conv_proj(x).reshape(n, self.hidden_dim, (h // p) * (w // p)).permute(0, 2, 1)
        batch_class_token = self.class_token.expand(x.shape[0], -1, -1)
        x = torch.cat([batch_class_token, x], dim=1)
        torch._assert(x.dim() == 3, f"Expected (batch_size, seq_length, hidden_dim) got {x.shape}")
        x = self.layer(x + self.pos_embedding)
        return self.head(x[:, 0])

def calibrated(m):
    """BatchNorm statistics moved off their initial 0 and 1 by a few batches in train mode."""
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.randn(4, 3, 8, 8))
    return m

torch.manual_seed(0)
models = {"gpt": (GPT(), lambda n: (torch.randint(0, 50, (n, 12)),)),
          "shuffle": (calibrated(Shuffle()), lambda n: (torch.randn(n, 3, 8, 8),)),
          "vit": (VitFront(), lambda n: (torch.randn(n, 3, 16, 16),))}
for name, (model, inputs) in models.items():
    for n in (2, 3):
        pb_torch.capture(model, inputs(n), name).write(f"{out}/{name}_b{n}.pbstream")
)PY";

}  // namespace

TEST_CASE("live pytorch: nanoGPT, ShuffleNet and ViT shape idioms pass planetbridge check and serve another batch", "[live]") {
  PB_REQUIRE_TORCH();
  pbtest::TempDir tmp;
  pytorch_test::run_capture_script(tmp, kCaptureScript);
  const pb::Dialect& pytorch = pbtest::planet();
  for (const std::string name : {"gpt", "shuffle", "vit"}) {
    INFO(name);
    const std::string stream = tmp.file(name + "_b2.pbstream"), entity = tmp.file(name + ".entity");
    pytorch_test::check_passes(tmp, stream, entity);

    // The batch-2 graph and its checkpoint on the batch-3 capture.
    const pb::Stream b3 = pb::read_stream_file(tmp.file(name + "_b3.pbstream"));
    const std::vector<pb::Tensor> bridged = pbtest::run(b3, pytorch.decode(pb::read_stream_file(stream)));
    const std::vector<pb::Tensor> reloaded = pbtest::run(b3, pb::entity::load(entity).graph);
    REQUIRE(bridged.size() == b3.expected.size());
    for (size_t i = 0; i < bridged.size(); ++i) {
      pbtest::check_close(bridged[i], b3.tensors.at(b3.expected[i]));
      CHECK(reloaded[i].bit_equal(bridged[i]));
    }
  }
}

namespace {

// LLaMA-style pieces written the usual ways, captured at batch 2 and 3.
const char* kLlamaScript = R"PY(
import math
import sys
sys.path.insert(0, sys.argv[1])
import torch
from torch import nn
from torch.nn import functional as F
import pb_torch

out = sys.argv[2]

class MetaRMSNorm(nn.Module):
    """Meta's llama: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps), in float32, .type_as(x)."""
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(dim) + 0.5)
    def forward(self, x):
        return (x.float() * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)).type_as(x) * self.weight

class OtherRMSNorm(nn.Module):
    """Other ports: x.to(torch.float32), x ** 2, .rsqrt() as a method, / torch.sqrt elsewhere."""
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(dim) + 0.5)
    def forward(self, x):
        h = x.to(torch.float32)
        return self.weight * (h * (h ** 2).mean(-1, keepdim=True).add(1e-5).rsqrt())

def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)

class Block(nn.Module):
    """Pre-norm block: grouped-query attention with rotary embeddings (cos/sin buffers), kv heads
    repeated by None-indexing + expand + reshape (repeat_kv) or repeat_interleave, an additive
    causal mask, then a SwiGLU MLP."""
    def __init__(self, dim=32, heads=4, kv_heads=2, max_seq=16, interleave=False):
        super().__init__()
        self.heads, self.kv_heads, self.hd, self.interleave = heads, kv_heads, dim // heads, interleave
        self.norm1 = OtherRMSNorm(dim) if interleave else MetaRMSNorm(dim)
        self.norm2 = MetaRMSNorm(dim)
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, kv_heads * self.hd, bias=False)
        self.v_proj = nn.Linear(dim, kv_heads * self.hd, bias=False)
        self.o_proj = nn.Linear(dim, dim, bias=False)
        self.gate_proj = nn.Linear(dim, 48, bias=interleave)
        self.up_proj = nn.Linear(dim, 48, bias=interleave)
        self.down_proj = nn.Linear(48, dim, bias=interleave)
        inv_freq = 1.0 / (10000 ** (torch.arange(0, self.hd, 2).float() / self.hd))
        emb = torch.cat([torch.outer(torch.arange(max_seq).float(), inv_freq)] * 2, dim=-1)
        self.register_buffer("cos", emb.cos())
        self.register_buffer("sin", emb.sin())
        self.register_buffer("mask", torch.full((max_seq, max_seq), float("-inf")).triu(1))
    def repeat(self, x):
        n = self.heads // self.kv_heads
        if self.interleave:
            return torch.repeat_interleave(x, n, dim=1)
        b, h, t, d = x.shape
        return x[:, :, None, :, :].expand(b, h, n, t, d).reshape(b, h * n, t, d)
    def forward(self, x):
        B, T, C = x.shape
        h = self.norm1(x)
        q = self.q_proj(h).view(B, T, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.kv_heads, self.hd).transpose(1, 2)
        cos, sin = self.cos[:T], self.sin[:T]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        scores = torch.matmul(q, self.repeat(k).transpose(2, 3)) / math.sqrt(self.hd) + self.mask[:T, :T]
        y = torch.matmul(F.softmax(scores.float(), dim=-1).type_as(q), self.repeat(v))
        x = x + self.o_proj(y.transpose(1, 2).contiguous().view(B, T, -1))
        h = self.norm2(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))

class Powers(nn.Module):
    """torch.pow(x, 3), x.pow(2), torch.sqrt, x ** 2; x.pow(0.5), x.pow(-0.5), .sqrt(), .rsqrt() of positive values."""
    def forward(self, x):
        p = x * x + 0.5
        return torch.pow(x, 3) + torch.sqrt(x.pow(2) + 0.5) + x ** 2, p.pow(0.5) * p.pow(-0.5) + p.sqrt() - p.rsqrt()

torch.manual_seed(0)
models = {"llama_block": (Block(), lambda n: (torch.randn(n, 12, 32),)),
          "llama_block_interleave": (Block(interleave=True), lambda n: (torch.randn(n, 12, 32),)),
          "powers": (Powers(), lambda n: (torch.randn(n, 5, 6),))}
for name, (model, inputs) in models.items():
    for n in (2, 3):
        pb_torch.capture(model, inputs(n), name).write(f"{out}/{name}_b{n}.pbstream")
)PY";

}  // namespace

TEST_CASE("live pytorch: LLaMA's pieces in plain torch (RMSNorm, rotary, grouped-query attention, SwiGLU, powers) pass and serve another batch",
          "[live]") {
  PB_REQUIRE_TORCH();
  pbtest::TempDir tmp;
  pytorch_test::run_capture_script(tmp, kLlamaScript);
  const pb::Dialect& pytorch = pbtest::planet();
  for (const std::string name : {"llama_block", "llama_block_interleave", "powers"}) {
    INFO(name);
    const std::string stream = tmp.file(name + "_b2.pbstream"), entity = tmp.file(name + ".entity");
    pytorch_test::check_passes(tmp, stream, entity);
    const pb::Stream b3 = pb::read_stream_file(tmp.file(name + "_b3.pbstream"));
    const std::vector<pb::Tensor> bridged = pbtest::run(b3, pytorch.decode(pb::read_stream_file(stream)));
    REQUIRE(bridged.size() == b3.expected.size());
    for (size_t i = 0; i < bridged.size(); ++i) pbtest::check_close(bridged[i], b3.tensors.at(b3.expected[i]));
  }
}
