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
#include "test_util.h"

namespace {

using pbtest::quote;
using pbtest::shell;

#define PB_REQUIRE_TORCH() PBTEST_SKIP_IF(pbtest::python_missing("torch"), "live PyTorch tests need it")

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


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.n_head, self.n_embd = n_head, n_embd
        self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float('-inf'))
        att = F.softmax(att, dim=-1)
        y = att @ v
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class Block(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, block_size)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


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
  pbtest::write_text(tmp.file("capture.py"), kCaptureScript);
  const std::string log = tmp.file("log");
  int rc = shell(std::string(PB_PYTHON) + " " + quote(tmp.file("capture.py")) + " " + quote(PB_SOURCE_DIR "/plugins/pytorch/capture") + " " +
                 quote(tmp.file("")) + " >" + quote(log) + " 2>&1");
  INFO(pbtest::read_text(log));
  REQUIRE(rc == 0);
  const pb::Dialect& pytorch = pbtest::planet();
  for (const std::string name : {"gpt", "shuffle", "vit"}) {
    INFO(name);
    const std::string stream = tmp.file(name + "_b2.pbstream"), entity = tmp.file(name + ".entity");
    rc = shell(quote(PB_CLI) + " check " + quote(stream) + " --entity " + quote(entity) + " --data " + quote(tmp.file("runs")) + " >" +
               quote(log) + " 2>&1");
    const std::string out = pbtest::read_text(log);
    INFO(out);
    CHECK(rc == 0);
    CHECK_THAT(out, Catch::Contains("verdict   PASS") || Catch::Contains("verdict   EXACT"));
    CHECK_THAT(out, Catch::Contains("reload bit-identical") && !Catch::Contains("DIFFERS"));

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
