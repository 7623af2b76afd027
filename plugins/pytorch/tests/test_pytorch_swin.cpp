// torchvision's Swin Transformer pieces, live: SwinTransformerBlock with shifted and unshifted
// windows, an input padded to window multiples, a window as large as the map (torchvision drops
// that shift), and PatchMerging on even and odd maps, captured from Debian's python3-torch /
// python3-torchvision with pb_torch.capture and passed through `planetbridge check`. Each calls
// a torch.fx-wrapped function (shifted_window_attention, _get_relative_position_bias,
// _patch_merging_pad) that op/swin.cpp translates; the shifted block's graph also serves batch 3. Skipped (PB-SKIP) without torch or torchvision.
#include "planetbridge/entity.h"
#include "plugin_loader.h"
#include "live_capture.h"
#include "test_util.h"

namespace {

const char* kCaptureScript = R"PY(
import sys
sys.path.insert(0, sys.argv[1])
import torch
from torch import nn
import pb_torch
from torchvision.models.swin_transformer import SwinTransformerBlock, PatchMerging

torch.manual_seed(0)
out = sys.argv[2]

class Block(nn.Module):
    """One SwinTransformerBlock (norm, window attention, MLP, residuals) on [B, H, W, C]."""

    def __init__(self, dim, heads, window, shift):
        super().__init__()
        self.block = SwinTransformerBlock(dim, heads, window_size=window, shift_size=shift)

    def forward(self, x):
        return self.block(x)

class Merge(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.merge = PatchMerging(dim)

    def forward(self, x):
        return self.merge(x)

cases = {
    "swin_block_shifted": (Block(32, 4, [7, 7], [3, 3]), (2, 14, 14, 32)),
    "swin_block_unshifted": (Block(32, 4, [7, 7], [0, 0]), (2, 14, 14, 32)),
    # 10x12 pads to 14x14 windows; the shift rolls the padded map and the crop undoes it.
    "swin_block_padded": (Block(32, 2, [7, 7], [3, 3]), (2, 10, 12, 32)),
    # a window as large as the map: torchvision drops the shift along that dim.
    "swin_block_wide_window": (Block(16, 2, [7, 4], [3, 2]), (2, 7, 8, 16)),
    "swin_patch_merging": (Merge(32), (2, 14, 14, 32)),
    "swin_patch_merging_odd": (Merge(16), (2, 7, 9, 16)),
}
for name, (model, shape) in cases.items():
    model.eval()
    # a trained-looking relative position table (torchvision initialises it near zero)
    for m in model.modules():
        if hasattr(m, "relative_position_bias_table"):
            with torch.no_grad():
                m.relative_position_bias_table.normal_(0, 1)
    pb_torch.capture(model, (torch.randn(*shape),), name).write(f"{out}/{name}.pbstream")
    if name == "swin_block_shifted":  # the same model on batch 3: the graph keeps the batch open
        pb_torch.capture(model, (torch.randn(3, *shape[1:]),), name).write(f"{out}/{name}_b3.pbstream")
)PY";

}  // namespace

TEST_CASE("live pytorch: torchvision Swin blocks (shifted, unshifted, padded, wide window) and PatchMerging pass planetbridge check", "[live]") {
  PB_REQUIRE_TORCH();
  PBTEST_SKIP_IF(pbtest::python_missing("torchvision"), "the Swin tests need torchvision (apt install python3-torchvision)");
  pbtest::TempDir tmp;
  pytorch_test::run_capture_script(tmp, kCaptureScript);
  for (const std::string name : {"swin_block_shifted", "swin_block_unshifted", "swin_block_padded", "swin_block_wide_window", "swin_patch_merging",
                                 "swin_patch_merging_odd"}) {
    INFO(name);
    pytorch_test::check_passes(tmp, name);
  }

  // The batch-2 shifted block's graph and its checkpoint on the batch-3 capture: windows are
  // partitioned with the batch left open (Reshape 0 / -1), never the captured 2.
  const pb::Dialect& pytorch = pbtest::planet();
  const pb::Stream b3 = pb::read_stream_file(tmp.file("swin_block_shifted_b3.pbstream"));
  const std::vector<pb::Tensor> bridged = pbtest::run(b3, pytorch.decode(pb::read_stream_file(tmp.file("swin_block_shifted.pbstream"))));
  const std::vector<pb::Tensor> reloaded = pbtest::run(b3, pb::entity::load(tmp.file("swin_block_shifted.entity")).graph);
  REQUIRE(bridged.size() == b3.expected.size());
  for (size_t i = 0; i < bridged.size(); ++i) {
    pbtest::check_close(bridged[i], b3.tensors.at(b3.expected[i]));
    CHECK(reloaded[i].bit_equal(bridged[i]));
  }
}
