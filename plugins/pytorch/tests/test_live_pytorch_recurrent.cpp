// Recurrent models from a live PyTorch (Debian's python3-torch under /usr/bin/python3): stock
// nn.LSTM / nn.GRU / nn.RNN as users have them (torch's own initialisation, time-major or
// batch_first, dropout between layers, an initial state) passed directly as the root module and
// as children of a user module that unpacks the tuple output, captured with pb_torch.capture and
// passed through `planetbridge check`; and the bedrock suite's rnn, lstm and gru fixtures.
// Skipped (PB-SKIP) without torch.
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

class Classifier(nn.Module):
    """The usual head on a recurrent layer: the tuple output unpacked, the last step classified."""

    def __init__(self, rnn, features, classes=5):
        super().__init__()
        self.rnn = rnn
        self.fc = nn.Linear(features, classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])

class LastState(nn.Module):
    """y, (h, c) = lstm(x): the last layer's final hidden state, h[-1], classified."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(16, 32, num_layers=2, batch_first=True)
        self.fc = nn.Linear(32, 3)

    def forward(self, x):
        y, (h, c) = self.lstm(x)
        return self.fc(h[-1])

models = {
    "root_lstm": (nn.LSTM(16, 32, num_layers=2, dropout=0.2), (torch.randn(20, 4, 16),)),
    "root_lstm_states": (nn.LSTM(16, 32, batch_first=True), (torch.randn(4, 20, 16), (torch.randn(1, 4, 32), torch.randn(1, 4, 32)))),
    "root_gru": (nn.GRU(16, 32, batch_first=True, bidirectional=True), (torch.randn(4, 20, 16), torch.randn(2, 4, 32))),
    "root_rnn": (nn.RNN(16, 32, nonlinearity="relu"), (torch.randn(20, 4, 16),)),
    "child_lstm": (Classifier(nn.LSTM(16, 32, num_layers=2, batch_first=True, dropout=0.3), 32), (torch.randn(4, 20, 16),)),
    "child_gru": (Classifier(nn.GRU(16, 32, batch_first=True, bidirectional=True), 64), (torch.randn(4, 20, 16),)),
    "child_rnn": (Classifier(nn.RNN(16, 32, batch_first=True), 32), (torch.randn(4, 20, 16),)),
    "child_lstm_last_state": (LastState(), (torch.randn(4, 20, 16),)),
}
for name, (model, inputs) in models.items():
    pb_torch.capture(model, inputs, name).write(f"{out}/{name}.pbstream")
)PY";

}  // namespace

TEST_CASE("live pytorch: nn.LSTM / GRU / RNN as the root module and as children pass planetbridge check", "[live]") {
  PB_REQUIRE_TORCH();
  pbtest::TempDir tmp;
  pytorch_test::run_capture_script(tmp, kCaptureScript);
  for (const std::string name : {"root_lstm", "root_lstm_states", "root_gru", "root_rnn", "child_lstm", "child_gru", "child_rnn",
                                 "child_lstm_last_state"}) {
    INFO(name);
    pytorch_test::check_passes(tmp, name);
    CHECK(std::filesystem::exists(tmp.file(name + ".entity")));
  }
}

TEST_CASE("live pytorch: the bedrock rnn, lstm and gru fixtures are exact or pass, and reload identically", "[live]") {
  PB_REQUIRE_TORCH();
  pbtest::TempDir tmp;
  const pb::host::Suite suite = pb::host::load_suite(PB_SOURCE_DIR "/config/suites/bedrock.yaml");
  pb::host::PluginRegistry plugins;
  plugins.load(PB_PLANET_PLUGIN);
  pb::host::RunOptions opt;
  opt.planets = {"pytorch"};
  opt.layers = {"rnn", "lstm", "gru"};
  opt.out_dir = tmp.file("out");
  opt.capture_timeout_s = 120;
  const std::vector<pb::host::CaseResult> results = pb::host::run_suite(suite, plugins, opt);
  CHECK(results.size() == 17);
  size_t skipped = 0;
  for (const auto& r : results) {
    INFO(r.name() << ": " << pb::host::verdict_name(r.verdict) << " " << r.message << " " << r.worst);
    if (r.verdict == pb::host::Verdict::SKIP) {  // only where the suite marks torch not applicable
      CHECK((r.fixture == "lstm_8_16_12_bi_sum" || r.fixture == "gru_8_16_12_reset_before"));
      ++skipped;
      continue;
    }
    CHECK((r.verdict == pb::host::Verdict::EXACT || r.verdict == pb::host::Verdict::PASS));
    CHECK(r.reload_identical);
    CHECK(r.tap_error.empty());
    CHECK(!r.taps.empty());  // per layer: "<node>/l<k>", "<node>/l<k>:h_n" (":c_n")
    for (const auto& t : r.taps) {
      INFO(t.value);
      CHECK(t.vs_native.within);
    }
  }
  CHECK(skipped == 2);
}
