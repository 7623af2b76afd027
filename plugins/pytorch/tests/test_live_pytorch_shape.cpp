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
