"""Suite fixtures for the pytorch planet: a fixture (as in the capture request) -> Stream.

Layer "dense", spec {input: int, units: [int, ...], activation: str, bias: bool}:
nn.Sequential(Linear(input, units[0]), Act(), ..., Linear(units[-2], units[-1])), the last
layer linear. activation defaults to "relu" (unused with a single layer); bias defaults to true.
The model is trained for a few Adam steps on a fixed synthetic regression task, so that biases
are non-zero and weights are not just their initialisation.

The other layer keys (cnn1/2/3, pool, batchnorm, layernorm, rmsnorm, embedding, residual,
model, rnn, lstm, gru, mha, transformer, swiglu, mixer) and their specs are defined in docs/suites.md and
in the builders' docstrings here (swiglu_model, gqa_model, decoder_model, mixer_model); each model is built from
stock torch modules (RMSNorm, which torch 1.13 lacks, is composed from torch ops and labelled
so) and moved off its initialisation by a few Adam steps towards a fixed random target (the
recurrent archs, text_classifier and seq2seq, by a few steps on a synthetic task).
"""

import math
import zlib

import numpy as np
import torch
from torch import nn

import pb_torch
import pbstream  # on the path once pb_torch is imported

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "leaky_relu": nn.LeakyReLU,
    "relu6": nn.ReLU6,
    "mish": nn.Mish,
    "hardswish": nn.Hardswish,
    "softplus": nn.Softplus,
    "softmax": lambda: nn.Softmax(dim=-1),
    "log_softmax": lambda: nn.LogSoftmax(dim=-1),
}

TRAIN_ROWS = 256
TRAIN_STEPS = 20
LEARNING_RATE = 1e-2


def _int_field(fixture, key):
    v = fixture.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{key}: expected a positive integer, got {v!r}")
    return v


def _seed(fixture):
    # Mixing in the id gives every fixture its own weights even with the suite-wide seed.
    seed = fixture.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(np.random.SeedSequence([seed, zlib.crc32(fixture["id"].encode())]).generate_state(1, np.uint64)[0]) >> 1


def dense_model(spec):
    """The nn.Sequential for a "dense" spec; errors name the spec field."""
    width, units, activation, bias = pbstream.dense_spec(spec, ACTIVATIONS)
    layers = []
    for i, out in enumerate(units):
        if i:
            layers.append(ACTIVATIONS[activation]())
        layers.append(nn.Linear(width, out, bias=bias))
        width = out
    return nn.Sequential(*layers)


def _train(model, inputs, outputs):
    """A few full-batch Adam steps on target = tanh(X @ A) @ B."""
    hidden = max(outputs, 8)
    x = torch.randn(TRAIN_ROWS, inputs)
    a = torch.randn(inputs, hidden) / inputs ** 0.5  # scaled so tanh is not saturated
    b = torch.randn(hidden, outputs) / hidden ** 0.5
    y = torch.tanh(x @ a) @ b
    _fit(model, x, y)


def _fit(model, x, y, steps=TRAIN_STEPS):
    """Full-batch Adam steps towards y; in train mode, so BatchNorm running stats move too."""
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    model.eval()


def _fit_random_target(model, x):
    """Moves every parameter off its initialisation: regress onto a fixed random target."""
    with torch.no_grad():
        y = torch.randn_like(model.eval()(x))
    _fit(model, x, y, steps=5)


# ---------------------------------------------------------------- layers of issue #4

class RMSNorm(nn.Module):
    """RMSNorm built from torch ops (torch 1.13 has no nn.RMSNorm); the attributes and the
    parameter mirror torch >= 2.4's nn.RMSNorm, and the capture keeps it a leaf module."""

    def __init__(self, features, eps=1e-6):
        super().__init__()
        self.normalized_shape = (features,)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(features))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


COMPOSED_NOTES = {RMSNorm: "RMSNorm: x * rsqrt(mean(x^2) + eps) * weight from torch ops (torch 1.13 has no nn.RMSNorm)"}


class Residual(nn.Module):
    """x + f(x) with a real f: Linear -> ReLU -> Linear."""

    def __init__(self, features):
        super().__init__()
        self.fc1 = nn.Linear(features, features)
        self.fc2 = nn.Linear(features, features)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))


class ResidualConvBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class TextConv1d(nn.Module):
    """embedding -> conv1d -> global max pool -> dense."""

    def __init__(self, vocab, dim, filters, classes):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.conv = nn.Conv1d(dim, filters, 3, padding=1)
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.head = nn.Linear(filters, classes)

    def forward(self, ids):
        x = self.embed(ids).transpose(1, 2)  # [N, T, D] -> [N, D, T]: torch convs are channels-first
        return self.head(self.pool(torch.relu(self.conv(x))).flatten(1))


CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
BATCHNORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVGPOOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
GLOBAL_POOL = {("global_avg", 1): nn.AdaptiveAvgPool1d, ("global_avg", 2): nn.AdaptiveAvgPool2d,
               ("global_avg", 3): nn.AdaptiveAvgPool3d, ("global_max", 1): nn.AdaptiveMaxPool1d,
               ("global_max", 2): nn.AdaptiveMaxPool2d, ("global_max", 3): nn.AdaptiveMaxPool3d}


_CONV_KEYS = {"in_channels", "size", "filters", "kernel", "stride", "padding", "dilation", "activation", "bias"}


def conv_model(dims, spec, n):
    """layer cnn1/cnn2/cnn3: conv layers (activation after each), channels-first input."""
    s = pbstream.Spec(spec, _CONV_KEYS)
    channels = s.int("in_channels")
    kernel, stride, dilation = s.int("kernel"), s.int("stride", 1), s.int("dilation", 1)
    padding = s.choice("padding", ("valid", "same"), "valid")
    if padding == "same" and stride != 1:
        padding_arg = _same_pads(kernel, dilation)  # torch allows "same" only with stride 1
    else:
        padding_arg = padding
    activation = s.choice("activation", ("linear",) + tuple(ACTIVATIONS), "linear")
    bias = s.bool("bias", True)
    layers = []
    for filters in s.ints("filters"):
        layers.append(CONV[dims](channels, filters, kernel, stride=stride, padding=padding_arg,
                                 dilation=dilation, bias=bias))
        if activation != "linear":
            layers.append(ACTIVATIONS[activation]())
        channels = filters
    model = nn.Sequential(*layers)
    return model, torch.randn(n, s.int("in_channels"), *([s.int("size")] * dims))


def _same_pads(kernel, dilation):
    total = dilation * (kernel - 1)
    if total % 2:
        raise ValueError("spec.padding: 'same' with stride > 1 and an even window is asymmetric; "
                         "torch convs take symmetric padding only")
    return total // 2


_POOL_KEYS = {"dims", "in_channels", "size", "filters", "pool", "kernel", "stride", "padding"}


def pool_model(spec, n):
    """layer pool: conv (3, same) -> relu -> pool."""
    s = pbstream.Spec(spec, _POOL_KEYS)
    dims = s.choice("dims", (1, 2, 3))
    cin, filters = s.int("in_channels"), s.int("filters")
    pool = s.choice("pool", ("max", "avg", "global_avg", "global_max"))
    layers = [CONV[dims](cin, filters, 3, padding=1), nn.ReLU()]
    if pool in ("max", "avg"):
        kernel = s.int("kernel")
        stride = s.int("stride", kernel)
        padding = s.int("padding", 0, minimum=0)
        cls = MAXPOOL[dims] if pool == "max" else AVGPOOL[dims]
        layers.append(cls(kernel, stride=stride, padding=padding))
    else:
        layers += [GLOBAL_POOL[(pool, dims)](1), nn.Flatten()]
    return nn.Sequential(*layers), torch.randn(n, cin, *([s.int("size")] * dims))


def batchnorm_model(spec, n):
    """layer batchnorm: conv -> BatchNorm -> relu (dims 1-3), or Linear -> BatchNorm1d (dims 0)."""
    s = pbstream.Spec(spec, {"dims", "in_channels", "size", "filters"})
    dims = s.choice("dims", (0, 1, 2, 3))
    cin, filters = s.int("in_channels"), s.int("filters")
    if dims == 0:
        return nn.Sequential(nn.Linear(cin, filters), nn.BatchNorm1d(filters), nn.ReLU()), torch.randn(n, cin)
    model = nn.Sequential(CONV[dims](cin, filters, 3, padding=1), BATCHNORM[dims](filters), nn.ReLU())
    return model, torch.randn(n, cin, *([s.int("size")] * dims))


def norm_model(norm):
    def build_model(spec, n):
        """layer layernorm / rmsnorm: Linear(f, f) -> norm(f)."""
        s = pbstream.Spec(spec, {"features", "eps"})
        f = s.int("features")
        eps = s.float("eps", 1e-5 if norm == "layernorm" else 1e-6)
        layer = nn.LayerNorm(f, eps=eps) if norm == "layernorm" else RMSNorm(f, eps=eps)
        return nn.Sequential(nn.Linear(f, f), layer), torch.randn(n, f)
    return build_model


def embedding_model(spec, n):
    """layer embedding: ids [N, seq] -> nn.Embedding(vocab, dim)."""
    s = pbstream.Spec(spec, {"vocab", "dim", "seq"})
    vocab = s.int("vocab")
    return nn.Sequential(nn.Embedding(vocab, s.int("dim"))), torch.randint(0, vocab, (n, s.int("seq")))


def residual_model(spec, n):
    s = pbstream.Spec(spec, {"features"})
    f = s.int("features")
    return Residual(f), torch.randn(n, f)


def realistic_model(spec, n):
    """layer model: small whole models (see docs/suites.md)."""
    s = pbstream.Spec(spec, {"arch"})
    arch = s.choice("arch", ("small_cnn", "dw_separable", "text_conv1d"))
    if arch == "small_cnn":
        model = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding="same"), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2), ResidualConvBlock(32), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
        return model, torch.randn(n, 3, 32, 32)
    if arch == "dw_separable":
        model = nn.Sequential(
            nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU(),   # depthwise
            nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16), nn.ReLU())                        # pointwise
        return model, torch.randn(n, 8, 16, 16)
    return TextConv1d(vocab=100, dim=16, filters=32, classes=4), torch.randint(0, 100, (n, 20))


# ---------------------------------------------------------------- rnn / lstm / gru (issue #11)

RECURRENT = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
_RECURRENT_KEYS = {"input", "hidden", "seq", "layers", "bidirectional", "merge", "initial_state", "output", "head"}


class Recurrent(nn.Module):
    """A stock recurrent layer and the suite's output modes (docs/suites.md): "sequence" (the
    last layer's outputs), "last" (their last step, then Linear(head) when the spec has a head)
    or "states" (the sequence, then h_n (and c_n)). The subclasses differ in the initial state
    they take: none (zeros), h0, or an LSTM's h0 and c0."""

    def __init__(self, rnn, output, head=None):
        super().__init__()
        self.rnn = rnn
        self.output = output
        self.head = head

    def result(self, y, state):
        if self.output == "last":
            y = y[:, -1]
            return y if self.head is None else self.head(y)
        if self.output == "states":
            if isinstance(self.rnn, nn.LSTM):
                h, c = state
                return y, h, c
            return y, state
        return y


class RecurrentZeroState(Recurrent):
    def forward(self, x):
        y, state = self.rnn(x)
        return self.result(y, state)


class RecurrentH0(Recurrent):
    def forward(self, x, h0):
        y, state = self.rnn(x, h0)
        return self.result(y, state)


class RecurrentH0C0(Recurrent):
    def forward(self, x, h0, c0):
        y, state = self.rnn(x, (h0, c0))
        return self.result(y, state)


class TextClassifier(nn.Module):
    """Embedding -> LSTM -> the last step -> Linear: a tuple output unpacked, then indexed."""

    def __init__(self, vocab, embed, hidden, classes):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, ids):
        out, _ = self.lstm(self.embed(ids))
        return self.head(out[:, -1])


class Seq2Seq(nn.Module):
    """GRU -> Linear on every step."""

    def __init__(self, inputs, hidden, targets):
        super().__init__()
        self.gru = nn.GRU(inputs, hidden, batch_first=True)
        self.head = nn.Linear(hidden, targets)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out)


def _fit_outputs(model, inputs, steps=5):
    """A few Adam steps of every output of `model` towards a fixed random target of its shape,
    so every weight and both biases of each layer move off torch's initialisation."""
    with torch.no_grad():
        targets = [torch.randn_like(y) for y in _flat(model.eval()(*inputs))]
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    for _ in range(steps):
        opt.zero_grad()
        loss = sum(nn.functional.mse_loss(y, t) for y, t in zip(_flat(model(*inputs)), targets))
        loss.backward()
        opt.step()
    model.eval()


def _flat(v):
    return [leaf for x in v for leaf in _flat(x)] if isinstance(v, (tuple, list)) else [v]


def _recurrent_arch(layer, s, n):
    """arch text_classifier (lstm) and seq2seq (gru), each trained a few steps on a synthetic task."""
    archs = {"lstm": ("text_classifier",), "gru": ("seq2seq",)}
    if layer not in archs:
        raise ValueError(f"spec.arch: layer {layer} has no arch (lstm: text_classifier, gru: seq2seq)")
    arch = s.choice("arch", archs[layer])
    if arch == "text_classifier":
        s = pbstream.Spec(s.spec, {"arch", "vocab", "embed", "hidden", "seq", "classes"})
        vocab, seq, classes = s.int("vocab"), s.int("seq"), s.int("classes")
        model = TextClassifier(vocab, s.int("embed"), s.int("hidden"), classes)
        ids = torch.randint(0, vocab, (TRAIN_ROWS, seq))
        labels = (ids < vocab // 2).sum(1) * classes // (seq + 1)  # how many "low" ids, in `classes` bins
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        for _ in range(TRAIN_STEPS):
            opt.zero_grad()
            nn.functional.cross_entropy(model(ids), labels).backward()
            opt.step()
        return model.eval(), (torch.randint(0, vocab, (n, seq)),)
    s = pbstream.Spec(s.spec, {"arch", "input", "hidden", "seq", "targets"})
    inputs, seq, targets = s.int("input"), s.int("seq"), s.int("targets")
    model = Seq2Seq(inputs, s.int("hidden"), targets)
    x = torch.randn(TRAIN_ROWS, seq, inputs)
    y = torch.cumsum(x[..., :targets], 1) / torch.arange(1, seq + 1).view(1, seq, 1)  # the running mean
    _fit(model, x, y)
    return model, (torch.randn(n, seq, inputs),)


def recurrent_model(layer):
    def build_model(spec, n):
        """layer rnn / lstm / gru: nn.RNN/LSTM/GRU, batch-first; returns (model, inputs)."""
        if isinstance(spec, dict) and "arch" in spec:
            return _recurrent_arch(layer, pbstream.Spec(spec, set(spec)), n)
        extra = {"rnn": {"activation"}, "gru": {"reset_after"}}.get(layer, set())
        s = pbstream.Spec(spec, _RECURRENT_KEYS | extra)
        inputs, hidden, seq, layers = s.int("input"), s.int("hidden"), s.int("seq"), s.int("layers", 1)
        bidirectional = s.bool("bidirectional", False)
        merge = s.choice("merge", ("concat", "sum"), "concat")
        if "merge" in spec and not bidirectional:
            raise ValueError("spec.merge: only for a bidirectional layer")
        if merge == "sum":
            raise pbstream.NotApplicable("torch's bidirectional layers always concatenate the two directions")
        kw = {}
        if layer == "rnn":
            kw["nonlinearity"] = s.choice("activation", ("tanh", "relu"), "tanh")
        if layer == "gru" and not s.bool("reset_after", True):
            raise pbstream.NotApplicable("torch's GRU applies the reset gate after the recurrent product (reset_after) only")
        output = s.choice("output", ("sequence", "last", "states"), "sequence")
        if "head" in spec and output != "last":
            raise ValueError("spec.head: only with output: last")
        rnn = RECURRENT[layer](inputs, hidden, num_layers=layers, bidirectional=bidirectional, batch_first=True, **kw)
        directions = 2 if bidirectional else 1
        head = nn.Linear(directions * hidden, s.int("head")) if "head" in spec else None
        x = torch.randn(n, seq, inputs)
        if not s.bool("initial_state", False):
            model, states = RecurrentZeroState(rnn, output, head), ()
        else:
            states = tuple(torch.randn(layers * directions, n, hidden) for _ in range(2 if layer == "lstm" else 1))
            model = (RecurrentH0C0 if layer == "lstm" else RecurrentH0)(rnn, output, head)
        _fit_outputs(model, (x,) + states)
        return model, (torch.randn_like(x),) + tuple(torch.randn_like(h) for h in states)
    return build_model


# ---------------------------------------------------------------- mha / transformer (issue #12)

_MHA_KEYS = {"d_model", "heads", "seq", "batch_first", "need_weights", "average_weights", "kdim", "vdim", "kv_seq", "mask", "bias", "root"}
_GQA_KEYS = {"arch", "d_model", "heads", "kv_heads", "seq", "theta", "rope"}
_TRANSFORMER_KEYS = {"d_model", "heads", "ff", "seq", "batch_first", "norm_first", "activation", "layers", "final_norm", "mask", "root",
                     "kind", "memory_seq"}


def _causal_mask(seq, float_mask):
    """torch's causal mask: True (or -inf, Transformer.generate_square_subsequent_mask) above
    the diagonal, where a query would see a later key."""
    above = torch.triu(torch.ones(seq, seq, dtype=torch.bool), diagonal=1)
    return torch.zeros(seq, seq).masked_fill(above, float("-inf")) if float_mask else above


def _padding_mask(n, seq):
    """[n, seq] bool, True at the padded end of each row. Every row keeps at least one key, and
    the first none (torch's nested-tensor encoder path returns only as many positions as the
    longest row keeps)."""
    lengths = torch.randint(1, seq + 1, (n,))
    lengths[0] = seq
    return torch.arange(seq).unsqueeze(0) >= lengths.unsqueeze(1)


class Attention(nn.Module):
    """A stock nn.MultiheadAttention as a child: self-attention on x (Attention), or attention
    from query to key/value inputs (CrossAttention); a causal attn_mask buffer, or a
    key_padding_mask input (the *Padded forms)."""

    def __init__(self, attn, need_weights, average_weights, mask, seq):
        super().__init__()
        self.attn = attn
        self.need_weights, self.average_weights = need_weights, average_weights
        if mask in ("causal", "causal_float"):
            self.register_buffer("mask", _causal_mask(seq, mask == "causal_float"))
        else:
            self.mask = None

    def attend(self, q, k, v, padding=None):
        out, weights = self.attn(q, k, v, key_padding_mask=padding, need_weights=self.need_weights,
                                 attn_mask=self.mask, average_attn_weights=self.average_weights)
        return (out, weights) if self.need_weights else out

    def forward(self, x):
        return self.attend(x, x, x)


class AttentionPadded(Attention):
    def forward(self, x, padding):
        return self.attend(x, x, x, padding)


class CrossAttention(Attention):
    def forward(self, query, key, value):
        return self.attend(query, key, value)


class CrossAttentionPadded(Attention):
    def forward(self, query, key, value, padding):
        return self.attend(query, key, value, padding)


class Encoder(nn.Module):
    """A stock nn.TransformerEncoderLayer or nn.TransformerEncoder as a child, with a causal
    mask buffer (-inf above the diagonal, as Transformer.generate_square_subsequent_mask
    makes it) or a key padding mask input (EncoderPadded)."""

    def __init__(self, encoder, mask, seq):
        super().__init__()
        self.encoder = encoder
        if mask == "causal":
            self.register_buffer("mask", _causal_mask(seq, True))
        else:
            self.mask = None

    def forward(self, x):
        return self.encoder(x, self.mask)


class EncoderPadded(Encoder):
    def forward(self, x, padding):
        return self.encoder(x, src_key_padding_mask=padding)


class Decoder(nn.Module):
    """A stock nn.TransformerDecoderLayer or nn.TransformerDecoder as a child on (tgt, memory),
    with torch's own causal tgt_mask (Transformer.generate_square_subsequent_mask) as a buffer
    or none, and with key padding masks for tgt and memory as inputs (DecoderPadded)."""

    def __init__(self, decoder, mask, seq):
        super().__init__()
        self.decoder = decoder
        if mask.startswith("causal"):
            self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(seq))
        else:
            self.mask = None

    def forward(self, tgt, memory):
        return self.decoder(tgt, memory, tgt_mask=self.mask)


class DecoderPadded(Decoder):
    def forward(self, tgt, memory, tgt_padding, memory_padding):
        return self.decoder(tgt, memory, tgt_mask=self.mask, tgt_key_padding_mask=tgt_padding, memory_key_padding_mask=memory_padding)


class TransformerCausal(nn.Module):
    """A stock nn.Transformer as a child on (src, tgt) under its own causal tgt_mask."""

    def __init__(self, transformer, seq):
        super().__init__()
        self.transformer = transformer
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(seq))

    def forward(self, src, tgt):
        return self.transformer(src, tgt, tgt_mask=self.mask)


def _sequence_shape(batch_first, n, seq, features):
    return (n, seq, features) if batch_first else (seq, n, features)


def mha_model(spec, n):
    """layer mha: nn.MultiheadAttention (docs/suites.md); returns (model, inputs)."""
    if isinstance(spec, dict) and "arch" in spec:
        return gqa_model(spec, n)
    s = pbstream.Spec(spec, _MHA_KEYS)
    d, heads, seq = s.int("d_model"), s.int("heads"), s.int("seq")
    batch_first = s.bool("batch_first", True)
    kdim, vdim = s.int("kdim", d), s.int("vdim", d)
    cross = "kdim" in spec or "vdim" in spec or "kv_seq" in spec
    kv_seq = s.int("kv_seq", seq)
    mask = s.choice("mask", ("none", "causal", "causal_float", "padding"), "none")
    if mask.startswith("causal") and kv_seq != seq:
        raise ValueError("spec.mask: a causal mask needs kv_seq = seq")
    attn = nn.MultiheadAttention(d, heads, kdim=kdim, vdim=vdim, bias=s.bool("bias", True), batch_first=batch_first)
    need_weights, average = s.bool("need_weights", True), s.bool("average_weights", True)
    if s.bool("root", False):
        if cross or mask != "none" or not need_weights or not average:
            raise ValueError("spec.root: a root nn.MultiheadAttention is called as attn(x, x, x) only")
        model = attn  # the capture calls a root attention module as attn(x, x, x)
        _fit_outputs(Attention(attn, True, True, "none", seq), (torch.randn(*_sequence_shape(batch_first, n, seq, d)),))
        return model, (torch.randn(*_sequence_shape(batch_first, n, seq, d)),)
    else:
        cls = {(False, False): Attention, (False, True): AttentionPadded, (True, False): CrossAttention,
               (True, True): CrossAttentionPadded}[(cross, mask == "padding")]
        model = cls(attn, need_weights, average, mask, seq)
    inputs = (torch.randn(*_sequence_shape(batch_first, n, seq, d)),)
    if cross:
        inputs += (torch.randn(*_sequence_shape(batch_first, n, kv_seq, kdim)), torch.randn(*_sequence_shape(batch_first, n, kv_seq, vdim)))
    fresh = lambda: tuple(torch.randn_like(x) for x in inputs) + ((_padding_mask(n, kv_seq),) if mask == "padding" else ())
    _fit_outputs(model, fresh())
    return model, fresh()


def transformer_model(spec, n):
    """layer transformer: nn.TransformerEncoderLayer, or nn.TransformerEncoder of `layers` of
    them (docs/suites.md); with kind: decoder nn.TransformerDecoderLayer / nn.TransformerDecoder
    (decoder_model), with kind: transformer nn.Transformer; returns (model, inputs)."""
    s = pbstream.Spec(spec, _TRANSFORMER_KEYS)
    kind = s.choice("kind", ("encoder", "decoder", "transformer"), "encoder")
    if kind != "encoder":
        return decoder_model(s, kind, n)
    if "memory_seq" in spec:
        raise ValueError("spec.memory_seq: only for kind decoder or transformer")
    d, heads, ff, seq = s.int("d_model"), s.int("heads"), s.int("ff"), s.int("seq")
    batch_first = s.bool("batch_first", True)
    layer = nn.TransformerEncoderLayer(d, heads, ff, activation=s.choice("activation", ("relu", "gelu"), "relu"),
                                       batch_first=batch_first, norm_first=s.bool("norm_first", False))
    if "layers" in spec:
        encoder = nn.TransformerEncoder(layer, s.int("layers"), norm=nn.LayerNorm(d) if s.bool("final_norm", False) else None)
    elif "final_norm" in spec:
        raise ValueError("spec.final_norm: only for a stack (spec.layers)")
    else:
        encoder = layer
    mask = s.choice("mask", ("none", "causal", "padding"), "none")
    if s.bool("root", False):
        if mask != "none":
            raise ValueError("spec.root: a root encoder is called on its input only")
        model = encoder
    else:
        model = (EncoderPadded if mask == "padding" else Encoder)(encoder, mask, seq)
    shape = _sequence_shape(batch_first, n, seq, d)
    fresh = lambda: (torch.randn(*shape),) + ((_padding_mask(n, seq),) if mask == "padding" else ())
    _fit_outputs(model, fresh())
    return model, fresh()


def decoder_model(s, kind, n):
    """kind decoder: nn.TransformerDecoderLayer, or with `layers` an nn.TransformerDecoder
    (final_norm: a LayerNorm after it), on tgt [N, seq, d] and memory [N, memory_seq, d]; mask
    none | causal (torch's -inf causal tgt_mask buffer) | padding (bool key padding masks for tgt
    and memory as inputs, as for mha) | causal_padding (both). kind transformer: nn.Transformer
    with `layers` encoder and decoder layers (its own final norms) on (src [N, memory_seq, d],
    tgt [N, seq, d]); mask none | causal. Trained as mha; returns (model, inputs)."""
    d, heads, ff, seq = s.int("d_model"), s.int("heads"), s.int("ff"), s.int("seq")
    memory_seq = s.int("memory_seq", seq)
    batch_first = s.bool("batch_first", True)
    activation = s.choice("activation", ("relu", "gelu"), "relu")
    norm_first = s.bool("norm_first", False)
    root = s.bool("root", False)
    if kind == "transformer":
        if "final_norm" in s.spec:
            raise ValueError("spec.final_norm: nn.Transformer always has its final norms")
        mask = s.choice("mask", ("none", "causal"), "none")
        layers = s.int("layers", 1)
        model = nn.Transformer(d, heads, layers, layers, ff, activation=activation, batch_first=batch_first, norm_first=norm_first)
        if root == (mask == "causal"):
            raise ValueError("spec.root / spec.mask: nn.Transformer is captured as the root on (src, tgt), "
                             "or as a child with mask: causal")
        model = model if root else TransformerCausal(model, seq)
        fresh = lambda: (torch.randn(*_sequence_shape(batch_first, n, memory_seq, d)), torch.randn(*_sequence_shape(batch_first, n, seq, d)))
        _fit_outputs(model, fresh())
        return model, fresh()
    mask = s.choice("mask", ("none", "causal", "padding", "causal_padding"), "none")
    layer = nn.TransformerDecoderLayer(d, heads, ff, activation=activation, batch_first=batch_first, norm_first=norm_first)
    if "layers" in s.spec:
        decoder = nn.TransformerDecoder(layer, s.int("layers"), norm=nn.LayerNorm(d) if s.bool("final_norm", False) else None)
    elif "final_norm" in s.spec:
        raise ValueError("spec.final_norm: only for a stack (spec.layers)")
    else:
        decoder = layer
    padded = mask.endswith("padding")
    if root:
        if mask != "none":
            raise ValueError("spec.root: a root decoder is called on (tgt, memory) only")
        model = decoder
    else:
        model = (DecoderPadded if padded else Decoder)(decoder, mask, seq)
    if padded and not batch_first:
        raise ValueError("spec.mask: the padding fixtures are batch-first")
    fresh = lambda: ((torch.randn(*_sequence_shape(batch_first, n, seq, d)), torch.randn(*_sequence_shape(batch_first, n, memory_seq, d)))
                     + ((_padding_mask(n, seq), _padding_mask(n, memory_seq)) if padded else ()))
    _fit_outputs(model, fresh())
    return model, fresh()


# ---------------------------------------------------------------- swiglu, grouped-query attention with RoPE

class SwiGLU(nn.Module):
    """The LLaMA feed-forward block as users write it: down_proj(silu(gate_proj(x)) * up_proj(x))."""

    def __init__(self, d_model, hidden, bias):
        super().__init__()
        self.gate_proj = nn.Linear(d_model, hidden, bias=bias)
        self.up_proj = nn.Linear(d_model, hidden, bias=bias)
        self.down_proj = nn.Linear(hidden, d_model, bias=bias)

    def forward(self, x):
        return self.down_proj(nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


def swiglu_model(spec, n):
    """layer swiglu: SwiGLU(d_model, ff, bias (true)) on [N, seq, d_model] (or [N, d_model]
    without seq)."""
    s = pbstream.Spec(spec, {"d_model", "ff", "seq", "bias"})
    d = s.int("d_model")
    model = SwiGLU(d, s.int("ff"), s.bool("bias", True))
    return model, torch.randn(n, s.int("seq"), d) if "seq" in spec else torch.randn(n, d)


def rotate_half(x):
    """The second half of the features, negated, before the first (rotary embeddings)."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rotate_every_two(x):
    """Each pair (x[..., 2i], x[..., 2i + 1]) as (-x[..., 2i + 1], x[..., 2i]) (interleaved rotary
    embeddings, GPT-J): strided slices, torch.stack on a new last dim, flatten(-2)."""
    x1 = x[..., ::2]
    x2 = x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


class RotaryGQA(nn.Module):
    """Causal grouped-query self-attention with rotary position embeddings, in plain torch: q, k, v
    projections without bias, heads by view/transpose, cos/sin tables from
    θ^(-2i/head_dim) · position (buffers), rotate_half, the kv heads repeated to the query heads
    with repeat_interleave, a causal tril buffer applied with masked_fill (as nanoGPT), softmax,
    o_proj. rope "interleaved" rotates the pairs (x[..., 0::2], x[..., 1::2]) instead of the two
    halves (GPT-J, Meta's original LLaMA): the cos/sin tables repeated per pair
    (repeat_interleave), rotate_every_two."""

    def __init__(self, d_model, heads, kv_heads, seq, theta, rope="half"):
        super().__init__()
        if d_model % heads or heads % kv_heads or (d_model // heads) % 2:
            raise ValueError("spec: d_model must split into heads of even size, heads into kv_heads groups")
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, d_model // heads
        self.q_proj = nn.Linear(d_model, heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(d_model, kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(d_model, kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(heads * self.head_dim, d_model, bias=False)
        inv_freq = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2).float() / self.head_dim))
        freqs = torch.outer(torch.arange(seq).float(), inv_freq)
        self.rope = rope
        emb = freqs.repeat_interleave(2, dim=-1) if rope == "interleaved" else torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos_cached", emb.cos())
        self.register_buffer("sin_cached", emb.sin())
        self.register_buffer("causal", torch.tril(torch.ones(seq, seq)))

    def forward(self, x):
        B, T, C = x.shape
        q = self.q_proj(x).view(B, T, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = self.cos_cached[:T], self.sin_cached[:T]
        rotate = rotate_every_two if self.rope == "interleaved" else rotate_half
        q = (q * cos) + (rotate(q) * sin)
        k = (k * cos) + (rotate(k) * sin)
        k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
        v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        att = att.masked_fill(self.causal[:T, :T] == 0, float("-inf"))
        y = torch.softmax(att, dim=-1) @ v
        return self.o_proj(y.transpose(1, 2).contiguous().view(B, T, C))


def gqa_model(spec, n):
    """layer mha, arch gqa_rope: RotaryGQA(d_model, heads, kv_heads, seq, theta (10000), rope
    (half | interleaved; half)) on [N, seq, d_model], trained as mha."""
    s = pbstream.Spec(spec, _GQA_KEYS)
    s.choice("arch", ("gqa_rope",))
    d, seq = s.int("d_model"), s.int("seq")
    rope = s.choice("rope", ("half", "interleaved"), "half")
    model = RotaryGQA(d, s.int("heads"), s.int("kv_heads"), seq, s.float("theta", 10000.0), rope)
    _fit_outputs(model, (torch.randn(n, seq, d),))
    return model, (torch.randn(n, seq, d),)


# ---------------------------------------------------------------- mixer: every layer type in one model

class MixerV1(nn.Module):
    """arch all_v1, a plain stack of 10 layers (7 types) on x [N, 8, 16] as users write it:
    Linear, Conv1d over the sequence (transposed to [N, C, T] and back), LayerNorm,
    nn.MultiheadAttention (batch_first, self-attention, biases), RMSNorm (composed), LSTM (the
    sequence out), Linear + Tanh, SwiGLU (composed), LayerNorm, Linear: [N, 8, 8]."""

    def __init__(self):
        super().__init__()
        self.l01_dense = nn.Linear(16, 32)
        self.l02_conv1d = nn.Conv1d(32, 32, 3, padding="same")
        self.l03_layernorm = nn.LayerNorm(32)
        self.l04_mha = nn.MultiheadAttention(32, 4, batch_first=True)
        self.l05_rmsnorm = RMSNorm(32)
        self.l06_lstm = nn.LSTM(32, 32, batch_first=True)
        self.l07_dense = nn.Linear(32, 32)
        self.l07_tanh = nn.Tanh()
        self.l08_swiglu = SwiGLU(32, 64, bias=True)
        self.l09_layernorm = nn.LayerNorm(32)
        self.l10_dense = nn.Linear(32, 8)

    def forward(self, x):
        x = self.l01_dense(x)
        x = self.l02_conv1d(x.transpose(1, 2)).transpose(1, 2)
        x = self.l03_layernorm(x)
        x, _ = self.l04_mha(x, x, x)
        x = self.l05_rmsnorm(x)
        x, _ = self.l06_lstm(x)
        x = self.l07_tanh(self.l07_dense(x))
        x = self.l08_swiglu(x)
        x = self.l09_layernorm(x)
        return self.l10_dense(x)


class MixerV2(nn.Module):
    """arch all_v2, 16 layers (12 types) in a pre-norm transformer pattern on ids [N, 8] in
    [0, 50): Embedding(50, 32); then, each as x + f(norm(x)), causal nn.MultiheadAttention (a
    torch.triu bool attn_mask buffer, as the mha causal fixtures), SwiGLU(32, 64), Conv1d(32, 32,
    3, 'same'), GRU, RNN (tanh), LSTM (each `y, _ = self.rnn(x)`), under alternating LayerNorm /
    RMSNorm; a final LayerNorm, Linear(32, 10) and F.softmax over the last axis: [N, 8, 10]."""

    def __init__(self, vocab=50, d=32, ff=64, seq=8, classes=10):
        super().__init__()
        self.l01_embedding = nn.Embedding(vocab, d)
        self.l02_layernorm = nn.LayerNorm(d)
        self.l03_mha = nn.MultiheadAttention(d, 4, batch_first=True)
        self.register_buffer("causal_mask", _causal_mask(seq, False))
        self.l04_rmsnorm = RMSNorm(d)
        self.l05_swiglu = SwiGLU(d, ff, bias=True)
        self.l06_layernorm = nn.LayerNorm(d)
        self.l07_conv1d = nn.Conv1d(d, d, 3, padding="same")
        self.l08_rmsnorm = RMSNorm(d)
        self.l09_gru = nn.GRU(d, d, batch_first=True)
        self.l10_layernorm = nn.LayerNorm(d)
        self.l11_rnn = nn.RNN(d, d, nonlinearity="tanh", batch_first=True)
        self.l12_rmsnorm = RMSNorm(d)
        self.l13_lstm = nn.LSTM(d, d, batch_first=True)
        self.l14_layernorm = nn.LayerNorm(d)
        self.l15_dense = nn.Linear(d, classes)

    def forward(self, ids):
        x = self.l01_embedding(ids)
        h = self.l02_layernorm(x)
        h, _ = self.l03_mha(h, h, h, attn_mask=self.causal_mask)
        x = x + h
        x = x + self.l05_swiglu(self.l04_rmsnorm(x))
        x = x + self.l07_conv1d(self.l06_layernorm(x).transpose(1, 2)).transpose(1, 2)
        h, _ = self.l09_gru(self.l08_rmsnorm(x))
        x = x + h
        h, _ = self.l11_rnn(self.l10_layernorm(x))
        x = x + h
        h, _ = self.l13_lstm(self.l12_rmsnorm(x))
        x = x + h
        x = self.l14_layernorm(x)
        return nn.functional.softmax(self.l15_dense(x), dim=-1)


def mixer_model(spec, n):
    """layer mixer: arch all_v1 (MixerV1 on x [n, 8, 16]) or all_v2 (MixerV2 on ids [n, 8]),
    every dimension fixed by the arch; trained as mha (a few Adam steps towards a random target,
    so every bias and norm parameter moves off its initialisation); returns (model, inputs)."""
    s = pbstream.Spec(spec, {"arch"})
    arch = s.choice("arch", ("all_v1", "all_v2"))
    if arch == "all_v1":
        model, fresh = MixerV1(), lambda: (torch.randn(n, 8, 16),)
    else:
        model, fresh = MixerV2(), lambda: (torch.randint(0, 50, (n, 8)),)
    _fit_outputs(model, fresh())
    return model, fresh()


def _calibrate_batchnorm(model, shape, batches=3):
    """Running statistics of every BatchNorm set from a few random batches (a cumulative
    average), so that an untrained model's activations keep realistic magnitudes: with the
    statistics at their initialisation a deep model's outputs shrink towards 0 and any result
    would pass."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(batches if norms else 0):
            model(torch.randn(*shape))
    model.eval()


def zoo_model(spec, n):
    """Layer "zoo", spec {model: a zoo_models.MODELS name or a torchvision.models builder name,
    size: input height and width (default 64), kwargs: {...} for the builder}: the stock model
    (torchvision's with weights=None) and its BatchNorm statistics calibrated on random batches;
    input [n, 3, size, size], or the model's own example_input(n)."""
    import torchvision  # only this layer needs it
    import zoo_models
    if not isinstance(spec, dict):
        raise ValueError(f"spec: expected a mapping, got {spec!r}")
    name = spec.get("model")
    own = zoo_models.MODELS.get(name) if isinstance(name, str) else None
    builder = own or (getattr(torchvision.models, name, None) if isinstance(name, str) else None)
    if builder is None or not callable(builder):
        raise ValueError(f"spec.model: {name!r} is neither in zoo_models.MODELS nor a torchvision.models builder")
    size = spec.get("size", 64)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"spec.size: expected a positive integer, got {size!r}")
    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise ValueError(f"spec.kwargs: expected a mapping, got {kwargs!r}")
    model = builder(**kwargs) if own else builder(weights=None, **kwargs)
    # Parameters a builder starts at zero (ViT's class token and head, biases) would make some
    # outputs identically 0, a case that tests nothing: small random values instead.
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(0.0, 0.02)
    _calibrate_batchnorm(model, (max(n, 4), 3, size, size))
    example = getattr(model, "example_input", None)
    return model, example(n) if example else torch.randn(n, 3, size, size)


# Layers torch 1.13 has no module for, written here from its own modules and functions and
# traced through (not leaves): labelled composed too.
COMPOSED_TRACED_NOTES = {
    SwiGLU: "SwiGLU: down_proj(silu(gate_proj(x)) * up_proj(x)) from nn.Linear and F.silu (torch has no SwiGLU module)",
    RotaryGQA: "grouped-query attention with rotary embeddings from torch ops (torch 1.13 has no such module)",
}

BUILDERS = {
    "cnn1": lambda spec, n: conv_model(1, spec, n),
    "cnn2": lambda spec, n: conv_model(2, spec, n),
    "cnn3": lambda spec, n: conv_model(3, spec, n),
    "pool": pool_model,
    "batchnorm": batchnorm_model,
    "layernorm": norm_model("layernorm"),
    "rmsnorm": norm_model("rmsnorm"),
    "embedding": embedding_model,
    "residual": residual_model,
    "model": realistic_model,
    "rnn": recurrent_model("rnn"),
    "lstm": recurrent_model("lstm"),
    "gru": recurrent_model("gru"),
    "mha": mha_model,
    "transformer": transformer_model,
    "swiglu": swiglu_model,
    "mixer": mixer_model,
    "zoo": zoo_model,
}
# Layers whose builders train the model themselves and return a tuple of inputs.
TUPLE_INPUT_LAYERS = frozenset(RECURRENT) | {"mha", "transformer", "mixer"}
# Layers whose models are used as built: real models, not trained here.
AS_BUILT_LAYERS = frozenset({"zoo"})
# Layers captured without taps: a real model's every activation would make the stream huge.
UNTAPPED_LAYERS = frozenset({"zoo"})


def model_and_input(fixture):
    """The trained torch model and its evaluation input for one fixture (also used by bench/);
    for the recurrent layers a tuple of inputs (x, then h0 (and c0) with initial_state), for mha and
    transformer (x, then key and value, then a key padding mask, as the spec asks)."""
    layer = fixture.get("layer")
    samples = _int_field(fixture, "samples")
    torch.manual_seed(_seed(fixture))  # model init and all draws come from this seed, in fixed order
    if layer == "dense":
        model = dense_model(fixture.get("spec"))
        spec = fixture["spec"]
        _train(model, spec["input"], spec["units"][-1])
        return model.eval(), torch.randn(samples, spec["input"])
    if layer in TUPLE_INPUT_LAYERS:
        model, inputs = BUILDERS[layer](fixture.get("spec"), samples)
        return model.eval(), inputs
    if layer in AS_BUILT_LAYERS:
        model, x = BUILDERS[layer](fixture.get("spec"), samples)
        return model.eval(), x
    if layer in BUILDERS:
        model, x = BUILDERS[layer](fixture.get("spec"), samples)
        _fit_random_target(model, x)
        if x.is_floating_point():
            x = torch.randn_like(x)  # evaluate on inputs the training never saw
        return model.eval(), x
    raise ValueError(f"layer {layer!r} is not supported by the pytorch capture (known: dense, {', '.join(BUILDERS)})")


def build(fixture, taps=True):
    """The Stream for one fixture {id, layer, samples, seed, spec}."""
    model, x = model_and_input(fixture)
    inputs = x if isinstance(x, tuple) else (x,)
    leaves = tuple(COMPOSED_NOTES)
    notes = {**COMPOSED_NOTES, **COMPOSED_TRACED_NOTES}
    composed = sorted({note for cls, note in notes.items() if any(isinstance(m, cls) for m in model.modules())})
    taps = taps and fixture.get("layer") not in UNTAPPED_LAYERS
    return pb_torch.capture(model, inputs, fixture["id"], taps=taps, leaf_modules=leaves, composed=composed)
