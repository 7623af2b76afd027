// Decoder-side layers of real image, audio and volume models from a live PyTorch (Debian's
// python3-torch under /usr/bin/python3): ConvTranspose1d-3d, nn.Upsample / F.interpolate,
// GroupNorm, InstanceNorm, PReLU, Hardtanh, Softsign and PixelShuffle / PixelUnshuffle in models
// written the usual way (the zoo's U-Nets among them), torch's own initialisation, captured with
// pb_torch.capture and passed through `planetbridge check`. Skipped (PB-SKIP) without torch.
#include "live_capture.h"
#include "test_util.h"

namespace {

// Captures each model into <dir>/<name>.pbstream with the library entry a user calls.
const char* kCaptureScript = R"PY(
import sys
sys.path.insert(0, sys.argv[1])
import torch
from torch import nn
import torch.nn.functional as F
import pb_torch
import zoo_models

torch.manual_seed(0)
out = sys.argv[2]

def calibrated(model, shape):
    """BatchNorm statistics from a few random batches (a cumulative average); a tracking
    InstanceNorm's move by its momentum."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(*shape))
    return model.eval()

class SuperResolution(nn.Module):
    """ESPCN-style: convolutions with PReLU, a sub-pixel PixelShuffle(3), clipped by Hardtanh."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.PReLU(16), nn.Conv2d(16, 8, 3, padding=1), nn.PReLU(),
                                  nn.Conv2d(8, 9, 3, padding=1))
        self.shuffle = nn.PixelShuffle(3)
        self.clip = nn.Hardtanh(0.0, 1.0)

    def forward(self, x):
        return self.clip(self.shuffle(self.body(x)))

class StyleTransfer(nn.Module):
    """A fast-style-transfer network's shape: stride-2 conv down with InstanceNorm2d, a residual
    block, a ConvTranspose2d (padding 1, output_padding 1) and a nearest nn.Upsample back up."""

    def __init__(self):
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.InstanceNorm2d(8, affine=True), nn.ReLU(),
                                  nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.InstanceNorm2d(16, affine=True), nn.ReLU())
        self.res = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.InstanceNorm2d(16, affine=True), nn.ReLU(),
                                 nn.Conv2d(16, 16, 3, padding=1), nn.InstanceNorm2d(16, affine=True))
        self.up1 = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
        self.norm = nn.InstanceNorm2d(8)
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")
        self.out = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        y = self.down(x)
        y = y + self.res(y)
        y = F.relu(self.norm(self.up1(y)))
        return torch.tanh(self.out(self.up2(y)))

class Audio1d(nn.Module):
    """A 1-D encoder/decoder: Conv1d + GroupNorm, a ConvTranspose1d, linear upsampling with
    align_corners, InstanceNorm1d with running statistics, Softsign and Tanhshrink."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv1d(2, 8, 5, stride=2, padding=2), nn.GroupNorm(4, 8), nn.SiLU())
        self.dec = nn.ConvTranspose1d(8, 4, 4, stride=2, padding=1)
        self.norm = nn.InstanceNorm1d(4, track_running_stats=True)
        self.act = nn.Softsign()

    def forward(self, x):
        y = self.dec(self.enc(x))
        y = F.interpolate(y, scale_factor=1.5, mode="linear", align_corners=True)
        return F.tanhshrink(self.act(self.norm(y)))

class Volume3d(nn.Module):
    """A 3-D segmentation head: Conv3d + GroupNorm + PReLU, ConvTranspose3d, trilinear F.interpolate to a size."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(1, 4, 3, padding=1)
        self.norm = nn.GroupNorm(2, 4)
        self.act = nn.PReLU(4)
        self.up = nn.ConvTranspose3d(4, 2, 2, stride=2)

    def forward(self, x):
        y = self.up(self.act(self.norm(self.conv(x))))
        return F.interpolate(y, size=(10, 12, 9), mode="trilinear", align_corners=False)

class Unshuffled(nn.Module):
    """PixelUnshuffle as a downsampler, F.group_norm and F.instance_norm, bilinear x2 back up."""

    def __init__(self):
        super().__init__()
        self.unshuffle = nn.PixelUnshuffle(2)
        self.conv = nn.Conv2d(12, 6, 3, padding=1)
        self.w = nn.Parameter(torch.rand(6) + 0.5)
        self.b = nn.Parameter(torch.randn(6) * 0.1)

    def forward(self, x):
        y = F.group_norm(self.conv(self.unshuffle(x)), 3, self.w, self.b)
        y = F.instance_norm(F.hardtanh(y, -0.5, 0.5))
        return F.interpolate(y, scale_factor=2, mode="bilinear")

models = {
    "unet_small": (zoo_models.MODELS["unet_small"](), (2, 3, 32, 32)),
    "unet_small_bilinear": (zoo_models.MODELS["unet_small_bilinear"](), (2, 3, 32, 32)),
    "super_resolution": (SuperResolution(), (2, 1, 12, 10)),
    "style_transfer": (StyleTransfer(), (2, 3, 16, 20)),
    "audio_1d": (Audio1d(), (3, 2, 40)),
    "volume_3d": (Volume3d(), (2, 1, 4, 6, 5)),
    "unshuffled": (Unshuffled(), (2, 3, 8, 12)),
}
for name, (model, shape) in models.items():
    model = calibrated(model, shape)
    pb_torch.capture(model, (torch.randn(*shape),), name).write(f"{out}/{name}.pbstream")
)PY";

}  // namespace

TEST_CASE("live pytorch: U-Nets, super-resolution, style transfer, 1-D and 3-D models with the decoder's layers pass planetbridge check", "[live]") {
  PB_REQUIRE_TORCH();
  pbtest::TempDir tmp;
  pytorch_test::run_capture_script(tmp, kCaptureScript);
  for (const std::string name : {"unet_small", "unet_small_bilinear", "super_resolution", "style_transfer", "audio_1d", "volume_3d", "unshuffled"}) {
    INFO(name);
    pytorch_test::check_passes(tmp, name);
  }
}
