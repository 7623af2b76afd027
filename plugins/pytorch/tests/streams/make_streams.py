#!/usr/bin/python3
"""Records the small spatial/normalisation/layout, recurrent, attention and shape-idiom pytorch
test streams in this folder (read by tests/test_pytorch_spatial.cpp, test_pytorch_recurrent.cpp,
test_pytorch_attention.cpp and test_pytorch_shape.cpp; no torch needed there).

Each model is a real torch module captured with pb_torch.capture (taps on), so the graph,
the module table and every expected output and tap are torch 1.13's own. Parameters and
inputs are drawn from a fixed seed on a 1/32 grid (short, exact in f32) rather than left at
their initialisation (LayerNorm's ones and zeros would hide a swapped scale and shift);
BatchNorm running statistics are set by hand so that none is trivial. Tensors are written as
plain JSON "data" arrays (each float the shortest text that reads back as the same f32).
The hand-written streams here (linear_square.json, relu_forms.json, ...) are not touched.

    /usr/bin/python3 plugins/pytorch/tests/streams/make_streams.py
"""

import base64
import json
import math
import os
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "..", "capture"),
                os.path.join(HERE, "..", "..", "..", "..", "capture", "python")]
import fixtures  # noqa: E402  (the capture's composed RMSNorm)
import pb_torch  # noqa: E402

_CODES = {("f", 8): "f64", ("f", 4): "f32", ("i", 8): "i64", ("i", 4): "i32", ("b", 1): "bool", ("i", 1): "i8", ("u", 1): "u8"}
MAX_BYTES = 30_000


def grid(*shape, lo=-1.0, hi=1.0):
    """Values in [lo, hi] on a 1/32 grid (exact in f32, short in JSON)."""
    return torch.randint(int(lo * 32), int(hi * 32) + 1, shape).float() / 32


def randomise(module, scale=1.0):
    """Every parameter of `module` drawn afresh on the 1/32 grid in [-scale, scale], none exactly
    zero (so no norm scale or shift sits at its initial 1 or 0, and no bias vanishes)."""
    with torch.no_grad():
        for p in module.parameters():
            q = grid(*p.shape, lo=-scale, hi=scale)
            q[q == 0] = 1 / 32
            p.copy_(q)
    return module


# ---------------------------------------------------------------- models

class Conv2dSameEven(nn.Module):
    """An even kernel under padding="same" (torch: total // 2 before, the rest after), then an
    asymmetric stride and padding. I != O and the kernels are not square."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 3, (4, 2), padding="same")  # totals (3, 1): begin (1, 0), end (2, 1)
        self.b = nn.Conv2d(3, 2, (2, 3), stride=(2, 1), padding=(1, 0))

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class ConvGroups(nn.Module):
    """groups=2 with stride 2, then a depthwise conv (groups = channels) with dilation 2."""

    def __init__(self):
        super().__init__()
        self.grouped = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
        self.depthwise = nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=6, bias=False)

    def forward(self, x):
        return self.depthwise(self.grouped(x))


class Conv1dPools(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 2, 4, padding="same")  # total 3: begin 1, end 2
        self.maxpool = nn.MaxPool1d(3, stride=2, padding=1)
        self.avgpool = nn.AvgPool1d(2, padding=1, count_include_pad=False)

    def forward(self, x):
        return self.avgpool(self.maxpool(self.conv(x)))


class Conv3dPools(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(2, 3, (2, 3, 2), stride=(1, 2, 1), padding=(1, 1, 0))
        self.maxpool = nn.MaxPool3d(2, stride=1)
        self.avgpool = nn.AvgPool3d((2, 1, 1), padding=(1, 0, 0))  # count_include_pad=True
        self.gmax = nn.AdaptiveMaxPool3d(1)
        self.gavg = nn.AdaptiveAvgPool3d((1, 1, 1))

    def forward(self, x):
        y = self.avgpool(self.maxpool(self.conv(x)))
        return self.gmax(y), self.gavg(y)


class Pools2d(nn.Module):
    """One (all-negative) input, six pools: a zero-padded max pool would output 0 at the borders."""

    def __init__(self):
        super().__init__()
        self.max_pad = nn.MaxPool2d(3, stride=2, padding=1)
        self.max_dil = nn.MaxPool2d((2, 3), stride=(1, 2), dilation=(2, 1))
        self.avg_incl = nn.AvgPool2d(3, stride=2, padding=1)  # count_include_pad=True (torch's default)
        self.avg_excl = nn.AvgPool2d((2, 3), stride=1, padding=1, count_include_pad=False)
        self.gavg = nn.AdaptiveAvgPool2d(1)
        self.gmax = nn.AdaptiveMaxPool2d((1, 1))

    def forward(self, x):
        return (self.max_pad(x), self.max_dil(x), self.avg_incl(x), self.avg_excl(x), self.gavg(x),
                self.gmax(x))


class PoolsCeilAdaptive(nn.Module):
    """ceil_mode's partial last windows, adaptive pools to sizes that do and do not divide the
    input (5 x 6), the reductions, and the functional pools (as Inception v3 calls them)."""

    def __init__(self):
        super().__init__()
        self.max_ceil = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 6 wide: a third, partial window
        self.avg_ceil = nn.AvgPool2d(2, stride=2, ceil_mode=True)  # 5 high: the last window sees 1 row
        self.avg_ceil_pad = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        self.adapt = nn.AdaptiveAvgPool2d((3, 4))  # neither divides: bins overlap
        self.adapt_div = nn.AdaptiveMaxPool2d((5, 3))  # both divide: a plain pool

    def forward(self, x):
        return (self.max_ceil(x), self.avg_ceil(x), self.avg_ceil_pad(x), self.adapt(x), self.adapt_div(x),
                nn.functional.adaptive_avg_pool2d(x, (None, 4)), x.mean((2, 3)), torch.amax(x, dim=1, keepdim=True),
                x.sum(-1), nn.functional.max_pool2d(x, 2, ceil_mode=True), nn.functional.avg_pool2d(x, 3, stride=1, padding=1))


class ConvBnRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.relu = nn.ReLU()
        self.bn_plain = nn.BatchNorm2d(3, affine=False)  # no weight/bias: scale 1, shift 0

    def forward(self, x):
        return self.bn_plain(self.relu(self.bn(self.conv(x))))


class BatchNorms(nn.Module):
    """BatchNorm1d on [N, C] and (the same module again) on [N, C, L]; BatchNorm3d."""

    def __init__(self):
        super().__init__()
        self.bn1 = nn.BatchNorm1d(3)
        self.bn3 = nn.BatchNorm3d(2)

    def forward(self, a, b, c):
        return self.bn1(a), self.bn1(b), self.bn3(c)


class Norms(nn.Module):
    """LayerNorm over the last two dims, the composed RMSNorm (a leaf), LayerNorm without affine."""

    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm((3, 4))
        self.rms = fixtures.RMSNorm(4, eps=1e-5)
        self.ln_plain = nn.LayerNorm(4, eps=1e-3, elementwise_affine=False)

    def forward(self, x):
        return self.ln_plain(self.rms(self.ln(x)))


class EmbeddingConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(7, 3, padding_idx=0)
        self.conv = nn.Conv1d(3, 4, 2, padding="same")
        self.pool = nn.AdaptiveMaxPool1d(1)

    def forward(self, ids):
        h = self.emb(ids).transpose(1, 2)  # [N, T, D] -> [N, D, T]
        return self.pool(self.conv(h)).flatten(1)


class SharedInputDag(nn.Module):
    """x feeds two conv branches that are added; a torch.cat of two branches; arithmetic with
    Python numbers on either side, as operators, torch functions and methods."""

    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(2, 3, 3, padding=1)
        self.conv_b = nn.Conv2d(2, 3, 1)

    def forward(self, x):
        s = self.conv_a(x) + self.conv_b(x)  # _operator.add of two branches of x
        scaled = torch.sub(x * 0.5, 1.0)  # _operator.mul, torch.sub with a number
        cat = torch.cat([torch.relu(s), scaled], dim=1)  # [N, 5, H, W]
        u = 2.0 * cat - torch.mul(cat, cat) / 4.0  # number * tensor, torch.mul, truediv
        v = torch.add(u, 1.5).sub(0.25)  # torch.add, Tensor.sub
        w = 1.0 - v.div(2.0)  # number - tensor, Tensor.div
        y = x.mul(3.0).add(x)  # Tensor.mul, Tensor.add of two tensors
        return w, torch.cat((y, scaled), -1)  # [N, 2, H, 2W]


class Layout(nn.Module):
    """transpose(1, 2), a Linear on the moved features, permute, view, reshape, torch.transpose."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 5)

    def forward(self, x):  # [2, 3, 4]
        t = x.transpose(1, 2)  # [2, 4, 3]
        h = self.fc(t)  # [2, 4, 5]
        p = h.permute(0, 2, 1)  # [2, 5, 4]
        q = torch.permute(p, (1, 0, 2))  # [5, 2, 4]
        v = q.view(5, 8)
        r = torch.reshape(v, (-1, 4, 2))  # [5, 4, 2]
        return torch.transpose(r, 0, 2).reshape(2, 20), p


class SwapForms(nn.Module):
    """The other spellings of a transpose and a float32 softmax, as user code has them: a Conv1d
    over the sequence by x.swapaxes(1, 2) and back by .mT, torch.swapaxes (keywords),
    torch.swapdims and x.swapdims (negative dims), x.mH, the batch staying at dim 0;
    F.softmax(dtype=torch.float32) then .to(x.dtype) (Hugging Face's attention), torch.softmax
    with a positional float32 dtype, x.softmax(1, dtype=x.dtype)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 3, padding=1)

    def forward(self, x):  # [2, 3, 4]
        c = self.conv(x.swapaxes(1, 2)).mT  # [2, 4, 3] convolved, back to [2, 3, 4]
        a = torch.swapaxes(c, axis0=-1, axis1=1)  # [2, 4, 3]
        b = torch.swapdims(a, 1, 2).swapdims(-1, -2)  # [2, 3, 4], then [2, 4, 3]
        s = nn.functional.softmax(b.mH, dim=-1, dtype=torch.float32).to(x.dtype)  # [2, 3, 4]
        t = torch.softmax(c, -1, torch.float32) + c.softmax(1, dtype=x.dtype)
        return s, t


class BareParameter(nn.Module):
    """A parameter read directly (an fx get_attr node) and a .contiguous() call."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))
        self.fc = nn.Linear(4, 4)

    def forward(self, x):  # [3, 4]
        return self.fc(x.contiguous()) * self.scale


class LstmStates(nn.Module):
    """A 2-layer batch-first LSTM from a given (h0, c0), its outputs unpacked (nested), then
    indexed: the last step y[:, -1], the last layer's state h[-1], and h_n, c_n themselves."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True)

    def forward(self, x, h0, c0):  # x [2, 5, 3], h0 and c0 [2, 2, 4]
        y, (h, c) = self.lstm(x, (h0, c0))
        return y[:, -1], h, c, h[-1]


class GruBidirectional(nn.Module):
    """A 2-layer bidirectional time-major GRU from a given h0, its (y, h_n) returned as is."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4, num_layers=2, bidirectional=True)

    def forward(self, x, h0):  # x [5, 2, 3], h0 [4, 2, 4]
        y, h = self.gru(x, h0)
        return y, h


class RnnSelect(nn.Module):
    """A bidirectional tanh RNN whose output is taken as rnn(x)[0], then sliced with a step and
    indexed on the batch."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(3, 4, batch_first=True, bidirectional=True)

    def forward(self, x):  # [2, 5, 3]
        y = self.rnn(x)[0]
        return y[:, 1:4:2], y[0]


class GruLast(nn.Module):
    """The usual classifier head on a unidirectional GRU: out, _ = gru(x); fc(out[:, -1])."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 4, batch_first=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):  # [2, 5, 3]
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


class MhaSelfWeights(nn.Module):
    """Batch-first self-attention under a causal bool attn_mask buffer; out and the weights
    averaged over heads, unpacked."""

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.register_buffer("mask", torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1))

    def forward(self, x):  # [2, 4, 8]
        out, weights = self.attn(x, x, x, attn_mask=self.mask)
        return out, weights


class MhaCrossPadding(nn.Module):
    """Time-major attention from query [3, 2, 8] to key [5, 2, 6] and value [5, 2, 5] (kdim, vdim:
    separate q/k/v_proj_weight), a float attn_mask buffer [3, 5] and a bool key_padding_mask
    input; the weights per head."""

    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, kdim=6, vdim=5)
        self.register_buffer("bias", grid(3, 5, lo=-2.0, hi=0.0))

    def forward(self, q, k, v, padding):
        return self.attn(q, k, v, key_padding_mask=padding, attn_mask=self.bias, average_attn_weights=False)


class EncoderStackPadding(nn.Module):
    """A 2-layer post-norm nn.TransformerEncoder with a final LayerNorm and a key padding mask
    buffer: torch 1.13 runs it on a nested tensor, so the padded positions come back as zeros,
    and, as no row is unpadded, only as many positions as the longest row keeps (3 of 4)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 6, batch_first=True), 2, norm=nn.LayerNorm(8))
        self.register_buffer("padding", torch.tensor([[False, False, True, True], [False, False, False, True]]))

    def forward(self, x):  # [2, 4, 8]
        return self.encoder(x, src_key_padding_mask=self.padding)


class DecoderLayerMasks(nn.Module):
    """A post-norm batch-first nn.TransformerDecoderLayer under all four masks: torch's float
    causal tgt_mask and a bool memory_mask as buffers, bool tgt and memory key padding masks as
    inputs."""

    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerDecoderLayer(8, 2, 12, batch_first=True)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(4))
        self.register_buffer("memory_mask", torch.tensor([[False, False, False, False, True]] * 2 + [[True, False, False, False, False]] * 2))

    def forward(self, tgt, memory, tgt_padding, memory_padding):  # [2, 4, 8], [2, 5, 8], [2, 4], [2, 5]
        return self.layer(tgt, memory, tgt_mask=self.causal, memory_mask=self.memory_mask, tgt_key_padding_mask=tgt_padding,
                          memory_key_padding_mask=memory_padding)


class LlamaPieces(nn.Module):
    """LLaMA's building blocks in plain torch: RMSNorm with x.float(), x.pow(2), torch.rsqrt and
    .type_as; rotate_half with Ellipsis slices; repeat_kv by None-indexing, expand and reshape;
    repeat_interleave; x.to(torch.float32), torch.pow(x, 3), torch.sqrt and x ** 2; .sqrt(),
    .rsqrt() and torch.repeat_interleave."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4))

    def forward(self, x):  # [2, 2, 2, 4]: batch, kv heads, positions, head dim
        normed = (x.float() * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)).type_as(x) * self.weight
        rotated = torch.cat((-x[..., 2:], x[..., :2]), dim=-1)
        b, h, t, d = x.shape
        repeated = x[:, :, None, :, :].expand(b, h, 3, t, d).reshape(b, h * 3, t, d)
        interleaved = x.repeat_interleave(2, dim=1)
        powers = torch.pow(x.to(torch.float32), 3) + torch.sqrt(x * x + 1.0) + x ** 2
        methods = (x * x + 1.0).sqrt() + (x * x + 0.5).rsqrt() + torch.repeat_interleave(x, 2, dim=3)[..., ::2]
        return normed, rotated, repeated, interleaved, powers, methods


class RopeInterleaved(nn.Module):
    """Interleaved rotary embeddings in plain torch (GPT-J, Meta's LLaMA without complex numbers):
    the pairs x[..., ::2], x[..., 1::2] (slices with a step) rotated by half-size cos/sin buffers,
    torch.stack(..., dim=-1).flatten(-2); GPT-J's rotate_every_two, torch.flatten(torch.stack((-x2,
    x1), dim=-1), -2), under cos/sin repeated per pair; torch.stack of x.chunk(2, -1)'s pieces (dim
    positional) and of a list of three tensors (dim 2)."""

    def __init__(self):
        super().__init__()
        freqs = torch.outer(torch.arange(3).float(), 1.0 / (10000 ** (torch.arange(0, 4, 2).float() / 4)))
        self.register_buffer("cos", freqs.cos())
        self.register_buffer("sin", freqs.sin())
        self.register_buffer("cos2", freqs.repeat_interleave(2, dim=-1).cos())
        self.register_buffer("sin2", freqs.repeat_interleave(2, dim=-1).sin())

    def forward(self, x):  # [2, 2, 3, 4]: batch, heads, positions, head dim
        x1 = x[..., ::2]
        x2 = x[..., 1::2]
        pairs = torch.stack((x1 * self.cos - x2 * self.sin, x1 * self.sin + x2 * self.cos), dim=-1).flatten(-2)
        every_two = x * self.cos2 + torch.flatten(torch.stack((-x2, x1), dim=-1), -2) * self.sin2
        a, b = x.chunk(2, dim=-1)
        halves = torch.stack((b, a), 1)
        three = torch.stack([x, -x, x * 2], dim=2)
        return pairs, every_two, halves, three


class MatmulForms(nn.Module):
    """Attention written in plain torch with fixed shapes: q @ k.transpose(-2, -1) / 2, softmax,
    .matmul(v); torch.matmul with a parameter broadcast over the batch dims; torch.bmm."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(4, 3))

    def forward(self, q, k, v):  # [2, 2, 3, 4], [2, 2, 5, 4], [2, 2, 5, 4]
        scores = q @ k.transpose(-2, -1) / 2.0
        context = torch.softmax(scores, dim=-1).matmul(v)
        return torch.matmul(context, self.w), torch.bmm(q[0], k[0].transpose(1, 2))


class ChannelShuffle(nn.Module):
    """ShuffleNet v2's channel shuffle as torchvision writes it (x.size(), //, views with
    computed sizes, torch.transpose, .contiguous()), then x.chunk(2, dim=1) and a torch.cat."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 1)
        self.branch = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):  # [2, 3, 3, 4]
        x = self.conv(x)
        batchsize, num_channels, height, width = x.size()
        channels_per_group = num_channels // 2
        x = x.view(batchsize, 2, channels_per_group, height, width)
        x = torch.transpose(x, 1, 2).contiguous()
        x = x.view(batchsize, -1, height, width)
        a, b = x.chunk(2, dim=1)
        return torch.cat((a, self.branch(b)), dim=1)


class GptAttention(nn.Module):
    """A nanoGPT block's attention as nanoGPT writes it: B, T, C = x.size(), q, k, v from one
    Linear by .split, heads by .view(B, T, nh, C // nh).transpose(1, 2), scores scaled by
    1 / math.sqrt(k.size(-1)), a causal tril buffer sliced [:, :, :T, :T] == 0 filled with -inf,
    heads merged by .transpose(1, 2).contiguous().view(B, T, C); token and position
    embeddings (torch.arange(0, t) of a traced size) in front, the last position x[:, [-1], :]
    out."""

    def __init__(self, vocab=7, block=5, embd=4, heads=2):
        super().__init__()
        self.wte = nn.Embedding(vocab, embd)
        self.wpe = nn.Embedding(block, embd)
        self.c_attn = nn.Linear(embd, 3 * embd)
        self.c_proj = nn.Linear(embd, embd)
        self.n_head, self.n_embd = heads, embd
        self.register_buffer("bias", torch.tril(torch.ones(block, block)).view(1, 1, block, block))

    def forward(self, idx):  # [2, 4] of ids
        device = idx.device
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=device)
        x = self.wte(idx) + self.wpe(pos)
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = torch.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)[:, [-1], :]


class ClassToken(nn.Module):
    """ViT's input handling as torchvision writes it: n, c, h, w = x.shape, torch._assert(h ==
    image_size), a patch Conv reshaped with (h // p) * (w // p), the class token expanded to the
    batch (x.shape[0]) and concatenated, torch._assert(x.dim() == 3), and x[:, 0] out."""

    def __init__(self):
        super().__init__()
        self.conv_proj = nn.Conv2d(2, 4, 2, stride=2)
        self.class_token = nn.Parameter(torch.zeros(1, 1, 4))
        self.pos = nn.Parameter(torch.zeros(1, 5, 4))

    def forward(self, x):  # [2, 2, 4, 4]
        n, c, h, w = x.shape
        torch._assert(h == 4, f"Wrong image height! Expected 4 but got {h}!")
        x = self.conv_proj(x).reshape(n, 4, (h // 2) * (w // 2)).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        torch._assert(x.dim() == 3, f"Expected (batch_size, seq_length, hidden_dim) got {x.shape}")
        return (x + self.pos)[:, 0]


class ShapeMethods(nn.Module):
    """Other shape idioms: torch.split into listed sizes, unsqueeze and expand (-1 and a number),
    expand_as, numel(), a size tuple sliced and extended (x.size()[:-1] + (2, 3), as Hugging
    Face writes heads), squeeze, a comparison with a number selecting by torch.where, -x."""

    def forward(self, x):  # [2, 6, 4]
        a, b = torch.split(x, [2, 4], dim=1)
        s = a.unsqueeze(1).expand(-1, 3, -1, -1)
        flat = s.reshape(x.shape[0], s.numel() // x.shape[0])
        heads = b.view(b.size()[:-1] + (2, 2))
        tiled = b[:, :1].expand_as(b).unsqueeze(2).squeeze(2)
        return flat, -heads, torch.where(b > 0.25, tiled, b * 0.5)


class ConvTransposes(nn.Module):
    """ConvTranspose1d (stride 2, padding 1, output_padding 1, dilation 2), ConvTranspose2d
    (groups 2, stride (2, 1), padding (1, 0), output_padding (1, 0)), ConvTranspose3d without
    bias, and F.conv_transpose2d with the module's own parameters and groups before dilation."""

    def __init__(self):
        super().__init__()
        self.t1 = nn.ConvTranspose1d(2, 3, 3, stride=2, padding=1, output_padding=1, dilation=2)
        self.t2 = nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2)
        self.t3 = nn.ConvTranspose3d(2, 2, 2, stride=2, bias=False)
        self.w = nn.Parameter(torch.ones(6, 1, 2, 2))
        self.bias = nn.Parameter(torch.ones(2))

    def forward(self, x1, x2, x3):  # [2, 2, 5], [2, 4, 3, 3], [1, 2, 2, 2, 3]
        y = self.t2(x2)
        return self.t1(x1), y, nn.functional.conv_transpose2d(y, self.w, self.bias, 2, 1, 1, 2), self.t3(x3)


class Upsamples(nn.Module):
    """Each way torch resamples: nearest x2 and x3 (oneDNN), nearest to a size and at 1.5
    (torch's floor(o / 1.5)), nearest-exact, bilinear to a size (half-pixel, oneDNN) and at
    (1.5, 2) (the factor itself maps coordinates), UpsamplingBilinear2d (align_corners=True),
    linear 1-D, trilinear with recompute_scale_factor, F.interpolate's positional size."""

    def __init__(self):
        super().__init__()
        self.near2 = nn.Upsample(scale_factor=2)
        self.near_size = nn.UpsamplingNearest2d(size=(5, 7))
        self.bilinear_size = nn.Upsample(size=(4, 9), mode="bilinear", align_corners=False)
        self.corners = nn.UpsamplingBilinear2d(scale_factor=2)

    def forward(self, x, s, v):  # [1, 2, 3, 4], [2, 2, 5], [1, 1, 2, 3, 2]
        return (self.near2(x), nn.functional.interpolate(x, scale_factor=3), self.near_size(x),
                nn.functional.interpolate(x, scale_factor=1.5), nn.functional.interpolate(x, scale_factor=1.5, mode="nearest-exact"),
                self.bilinear_size(x), nn.functional.interpolate(x, scale_factor=(1.5, 2), mode="bilinear"), self.corners(x),
                nn.functional.interpolate(s, 8, mode="linear", align_corners=True),
                nn.functional.interpolate(s, scale_factor=1.7, mode="linear"),
                nn.functional.interpolate(v, scale_factor=(1.5, 2, 2), mode="trilinear", recompute_scale_factor=True))


class GroupNorms(nn.Module):
    """GroupNorm (affine, and 4 groups of 1 without), InstanceNorm2d (affine), InstanceNorm1d,
    InstanceNorm2d with running statistics (BatchNorm in eval), F.group_norm and F.instance_norm."""

    def __init__(self):
        super().__init__()
        self.gn = nn.GroupNorm(2, 4)
        self.gn_plain = nn.GroupNorm(4, 4, eps=1e-3, affine=False)
        self.inorm = nn.InstanceNorm2d(4, affine=True)
        self.inorm1 = nn.InstanceNorm1d(3)
        self.tracked = nn.InstanceNorm2d(4, track_running_stats=True)
        self.w = nn.Parameter(torch.ones(4))

    def forward(self, x, s):  # [2, 4, 3, 3], [2, 3, 5]
        y = self.gn(x)
        return (self.gn_plain(y), self.inorm(x), self.inorm1(s), self.tracked(x),
                nn.functional.group_norm(x, 2, self.w, eps=1e-4), nn.functional.instance_norm(s))


class ActivationsShuffle(nn.Module):
    """PReLU with one slope and one per channel, F.prelu, Hardtanh and F.hardtanh, Softsign,
    Tanhshrink, PixelShuffle / PixelUnshuffle and torch.pixel_shuffle."""

    def __init__(self):
        super().__init__()
        self.prelu = nn.PReLU()
        self.prelu_c = nn.PReLU(8)
        self.slope = nn.Parameter(torch.ones(8))
        self.hardtanh = nn.Hardtanh(-0.5, 0.75)
        self.softsign = nn.Softsign()
        self.tanhshrink = nn.Tanhshrink()
        self.shuffle = nn.PixelShuffle(2)
        self.unshuffle = nn.PixelUnshuffle(2)

    def forward(self, x):  # [2, 8, 2, 3]
        a = self.prelu_c(self.prelu(x))
        b = nn.functional.hardtanh(self.hardtanh(nn.functional.prelu(x, self.slope)), -0.25, 0.5)
        c = self.tanhshrink(self.softsign(x * 2.0))
        shuffled = self.shuffle(x)  # [2, 2, 4, 6]
        return a, b, c, shuffled, self.unshuffle(shuffled), torch.pixel_shuffle(x, 2)


def conv_transposes():
    return randomise(ConvTransposes(), 0.5), (grid(2, 2, 5), grid(2, 4, 3, 3), grid(1, 2, 2, 2, 3)), {}


def upsamples():
    return Upsamples(), (grid(1, 2, 3, 4), grid(2, 2, 5), grid(1, 1, 2, 3, 2)), {}


def group_norms():
    m = randomise(GroupNorms())
    with torch.no_grad():
        m.tracked.running_mean.copy_(torch.tensor([0.5, -0.25, 1.0, 0.0]))
        m.tracked.running_var.copy_(torch.tensor([2.0, 0.5, 1.5, 1.0]))
    return m, (grid(2, 4, 3, 3, lo=-2.0, hi=2.0), grid(2, 3, 5, lo=-2.0, hi=2.0)), {}


def activations_shuffle():
    return randomise(ActivationsShuffle()), (grid(2, 8, 2, 3, lo=-2.0, hi=2.0),), {}


def channel_shuffle():
    return randomise(ChannelShuffle()), (grid(2, 3, 3, 4),), {}


def gpt_attention():
    return randomise(GptAttention(), 0.5), (torch.tensor([[1, 6, 3, 2], [0, 4, 4, 5]]),), {}


def class_token():
    return randomise(ClassToken(), 0.5), (grid(2, 2, 4, 4),), {}


def shape_methods():
    return ShapeMethods(), (grid(2, 6, 4),), {}


def matmul_forms():
    return randomise(MatmulForms()), (grid(2, 2, 3, 4), grid(2, 2, 5, 4), grid(2, 2, 5, 4)), {}


def mha_self_weights():
    return randomise(MhaSelfWeights(), 0.5), (grid(2, 4, 8),), {}


def mha_cross_padding():
    padding = torch.tensor([[False, False, False, True, True], [False, False, False, False, False]])
    return randomise(MhaCrossPadding(), 0.5), (grid(3, 2, 8), grid(5, 2, 6), grid(5, 2, 5), padding), {}


def encoder_layer_root():
    """nn.TransformerEncoderLayer (post-norm, relu, batch first) passed as the root module."""
    return randomise(nn.TransformerEncoderLayer(8, 2, 12, batch_first=True), 0.5), (grid(2, 4, 8),), {}


def encoder_layer_gelu_tanh():
    """norm_first with an nn.GELU(approximate="tanh") module: torch's fused kernel computes the
    exact gelu anyway."""
    layer = nn.TransformerEncoderLayer(8, 2, 12, activation=nn.GELU(approximate="tanh"), batch_first=True, norm_first=True)
    return randomise(layer, 0.5), (grid(2, 4, 8, lo=-2.0, hi=2.0),), {}


def encoder_stack_padding():
    return randomise(EncoderStackPadding(), 0.5), (grid(2, 4, 8),), {}


def decoder_layer_masks():
    tgt_padding = torch.tensor([[False, False, False, True], [False, False, False, False]])
    memory_padding = torch.tensor([[False, False, False, True, True], [False, False, False, False, False]])
    return randomise(DecoderLayerMasks(), 0.5), (grid(2, 4, 8), grid(2, 5, 8), tgt_padding, memory_padding), {}


def transformer_root():
    """nn.Transformer (post-norm, time-major, one encoder and one decoder layer) passed as the root."""
    return randomise(nn.Transformer(4, 2, 1, 1, 6), 0.5), (grid(5, 2, 4), grid(3, 2, 4)), {}


def rope_interleaved():
    return RopeInterleaved(), (grid(2, 2, 3, 4, lo=-2.0, hi=2.0),), {}


def llama_pieces():
    return randomise(LlamaPieces()), (grid(2, 2, 2, 4, lo=-2.0, hi=2.0),), {}


def lstm_states():
    return randomise(LstmStates(), 0.5), (grid(2, 5, 3), grid(2, 2, 4), grid(2, 2, 4)), {}


def gru_bidirectional():
    return randomise(GruBidirectional(), 0.5), (grid(5, 2, 3), grid(4, 2, 4)), {}


def rnn_relu_root():
    """nn.RNN(relu, bias=False) passed as the root module (the capture wraps it)."""
    return randomise(nn.RNN(3, 4, nonlinearity="relu", bias=False, batch_first=True), 0.5), (grid(2, 5, 3),), {}


def rnn_select():
    return randomise(RnnSelect(), 0.5), (grid(2, 5, 3),), {}


def gru_last():
    return randomise(GruLast(), 0.5), (grid(2, 5, 3),), {}


def conv2d_same_even():
    return randomise(Conv2dSameEven()), (grid(2, 2, 5, 6),), {}


def conv_groups():
    return randomise(ConvGroups()), (grid(1, 4, 7, 7),), {}


def conv1d_pools():
    return randomise(Conv1dPools()), (grid(2, 3, 8),), {}


def conv3d_pools():
    return randomise(Conv3dPools()), (grid(1, 2, 4, 5, 4),), {}


def pools2d():
    return Pools2d(), (grid(2, 2, 5, 6, lo=-2.0, hi=-0.25),), {}


def pools_ceil_adaptive():
    return PoolsCeilAdaptive(), (grid(2, 2, 5, 6),), {}


def conv_bn_relu():
    m = randomise(ConvBnRelu())
    with torch.no_grad():
        m.bn.running_mean.copy_(torch.tensor([0.5, -0.25, 1.0]))
        m.bn.running_var.copy_(torch.tensor([2.0, 0.5, 1.5]))
        m.bn.weight.copy_(torch.tensor([1.5, -0.5, 0.75]))
        m.bn.bias.copy_(torch.tensor([0.125, 0.25, -0.375]))
        m.bn_plain.running_mean.copy_(torch.tensor([0.25, 0.5, -0.5]))
        m.bn_plain.running_var.copy_(torch.tensor([0.5, 1.0, 4.0]))
    return m, (grid(2, 2, 4, 4),), {}


def batchnorms():
    m = BatchNorms()
    with torch.no_grad():
        m.bn1.running_mean.copy_(torch.tensor([0.5, -1.0, 0.25]))
        m.bn1.running_var.copy_(torch.tensor([0.25, 4.0, 1.0]))
        m.bn1.weight.copy_(torch.tensor([2.0, 0.5, -1.0]))
        m.bn1.bias.copy_(torch.tensor([0.0, 1.0, -0.5]))
        m.bn3.running_mean.copy_(torch.tensor([-0.5, 0.75]))
        m.bn3.running_var.copy_(torch.tensor([0.5, 2.0]))
        m.bn3.weight.copy_(torch.tensor([0.75, 1.25]))
        m.bn3.bias.copy_(torch.tensor([0.5, -0.25]))
    return m, (grid(2, 3), grid(2, 3, 4), grid(1, 2, 2, 2, 3)), {}


def norms():
    m = randomise(Norms())
    return m, (grid(2, 3, 4, lo=-2.0, hi=2.0),), {"leaf_modules": (fixtures.RMSNorm,),
                                                   "composed": [fixtures.COMPOSED_NOTES[fixtures.RMSNorm]]}


def embedding():
    m = randomise(EmbeddingConv())
    with torch.no_grad():
        m.emb.weight[0] = 0  # padding_idx's row (the forward is a plain lookup)
    ids = torch.tensor([[1, 0, 6, 3, 3], [5, 2, 4, 6, 1]], dtype=torch.int64)
    return m, (ids,), {}


def shared_input_dag():
    return randomise(SharedInputDag()), (grid(1, 2, 3, 4),), {}


def layout():
    return randomise(Layout()), (grid(2, 3, 4),), {}


def swap_forms():
    return randomise(SwapForms()), (grid(2, 3, 4),), {}


def bare_parameter():
    return randomise(BareParameter()), (grid(3, 4),), {}


MODELS = (conv2d_same_even, conv_groups, conv1d_pools, conv3d_pools, pools2d, pools_ceil_adaptive, conv_bn_relu, batchnorms, norms,
          embedding, shared_input_dag, layout, swap_forms, bare_parameter, lstm_states, gru_bidirectional, rnn_relu_root, rnn_select,
          gru_last, mha_self_weights, mha_cross_padding, encoder_layer_root, encoder_layer_gelu_tanh, encoder_stack_padding, matmul_forms,
          decoder_layer_masks, transformer_root, llama_pieces, rope_interleaved,
          channel_shuffle, gpt_attention, class_token, shape_methods, conv_transposes, upsamples, group_norms, activations_shuffle)


# ---------------------------------------------------------------- writing

def f32_text(v):
    """The shortest text that reads back (as a double, then rounded to f32) to the same f32."""
    f = np.float32(v)
    if not np.isfinite(f):
        raise ValueError(f"non-finite value {f}")
    text = np.format_float_positional(f, unique=True, trim="-") if abs(f) >= 1e-4 or f == 0 else \
        np.format_float_scientific(f, unique=True, trim="-")
    assert np.float32(float(text)) == f, (text, f)
    return text


def tensor_json(a, spec):
    """A tensor as "data" (a -inf, which JSON numbers cannot hold, as little-endian "b64");
    spec: the capture's entry in doc["tensors"] ({"allow_nonfinite": true})."""
    a = np.asarray(a)
    code = _CODES[(a.dtype.kind, a.dtype.itemsize)]
    extra = "".join(', %s: %s' % (json.dumps(k), json.dumps(v)) for k, v in spec.items())
    if code == "f32" and not np.isfinite(a).all():
        b64 = base64.b64encode(a.astype("<f4").tobytes()).decode()
        return '{"dtype": "f32", "shape": %s, "b64": "%s"%s}' % (json.dumps(list(a.shape)), b64, extra)
    if code == "f32":
        data = "[" + ", ".join(f32_text(v) for v in a.ravel()) + "]"
    else:
        data = json.dumps([float(v) if a.dtype.kind == "f" else bool(v) if a.dtype.kind == "b" else int(v) for v in a.ravel()])
    return '{"dtype": "%s", "shape": %s, "data": %s%s}' % (code, json.dumps(list(a.shape)), data, extra)


def dumps(v, depth=0):
    """Indented JSON; anything that fits in 150 characters (every list of scalars) on one line."""
    pad, inner = " " * depth, " " * (depth + 1)
    flat = json.dumps(v)
    if len(flat) + depth <= 150 or not isinstance(v, (dict, list)):
        return flat
    if isinstance(v, dict) and v:
        items = [f"{inner}{json.dumps(k)}: {dumps(x, depth + 1)}" for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v):
        return "[\n" + ",\n".join(inner + dumps(x, depth + 1) for x in v) + "\n" + pad + "]"
    return json.dumps(v)


def as_json(stream):
    doc = dict(stream.doc)
    doc["planet_version"] = "recorded " + doc["planet_version"]
    body = dumps({k: v for k, v in doc.items() if k != "tensors"})
    specs = doc.get("tensors", {})
    tensors = ",\n".join(f"  {json.dumps(name)}: {tensor_json(stream.tensors[name], specs.get(name, {}))}"
                         for name in sorted(stream.tensors))
    assert body.endswith("\n}")
    return body[:-2] + ',\n "tensors": {\n' + tensors + "\n }\n}\n"


def main(names=None):
    for make in MODELS:
        if names and make.__name__ not in names:
            continue
        name = make.__name__
        torch.manual_seed(sum(map(ord, name)))
        module, inputs, options = make()
        # No float64 reference: these small streams are judged by the fixed bound.
        stream = pb_torch.capture(module, inputs, name, taps=True, reference=False, **options)
        text = as_json(stream)
        json.loads(text)  # valid JSON
        if len(text) > MAX_BYTES:
            raise SystemExit(f"{name}: {len(text)} bytes (> {MAX_BYTES})")
        path = os.path.join(HERE, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"{path}: {len(text)} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])  # optionally only the named models
