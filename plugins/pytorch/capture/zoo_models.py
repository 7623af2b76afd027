"""Real models that torchvision does not ship, written the way their users write them; the zoo
suite's layer "zoo" (fixtures.zoo_model) looks a spec's model name up in MODELS before
torchvision.models. Each entry builds the model with torch's own initialisation. A model that
does not take images says what it takes with example_input(n)."""

import math

import torch
import torch.nn.functional as F
from torch import nn


class DoubleConv(nn.Module):
    """(3x3 Conv -> BatchNorm -> ReLU) twice: U-Net's block, as its common PyTorch ports write it."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.block(x)


class Down(nn.Module):
    """Halves the resolution (2x2 max pool), then a DoubleConv."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.pool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.pool_conv(x)


class Up(nn.Module):
    """Doubles the resolution (a 2x2 stride-2 ConvTranspose2d halving the channels, or a bilinear
    nn.Upsample followed by the DoubleConv alone), concatenates the encoder's skip, DoubleConv."""

    def __init__(self, in_channels, out_channels, bilinear):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            self.conv = DoubleConv(in_channels + in_channels // 2, out_channels)
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x, skip):
        x = self.up(x)
        return self.conv(torch.cat([x, skip], dim=1))


class UNet(nn.Module):
    """A small U-Net: three encoder levels, a bottleneck, three decoder levels with skip
    connections, and a 1x1 convolution to per-pixel class scores. The input's height and width
    must be divisible by 8."""

    def __init__(self, in_channels=3, classes=2, width=16, bilinear=False):
        super().__init__()
        w = width
        self.inc = DoubleConv(in_channels, w)
        self.down1 = Down(w, 2 * w)
        self.down2 = Down(2 * w, 4 * w)
        self.down3 = Down(4 * w, 8 * w)  # the bottleneck
        self.up1 = Up(8 * w, 4 * w, bilinear)
        self.up2 = Up(4 * w, 2 * w, bilinear)
        self.up3 = Up(2 * w, w, bilinear)
        self.outc = nn.Conv2d(w, classes, kernel_size=1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x = self.up1(x4, x3)
        x = self.up2(x, x2)
        x = self.up3(x, x1)
        return self.outc(x)


# ---------------------------------------------------------------- a GPT in plain torch

class CausalSelfAttention(nn.Module):
    """nanoGPT's attention: one packed projection split in three, heads by view/transpose, a
    causal tril mask buffer applied with masked_fill, softmax, and the heads merged back."""

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
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
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
    """A small GPT-2-style decoder as nanoGPT writes it: token and position embeddings
    (positions by torch.arange), pre-norm blocks, a final LayerNorm, logits for every position.
    Takes token ids [N, T], T up to block_size."""

    def __init__(self, vocab=256, block_size=32, n_layer=4, n_head=4, n_embd=128):
        super().__init__()
        self.vocab = vocab
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList([Block(n_embd, n_head, block_size) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab, bias=False)

    def forward(self, idx):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    def example_input(self, n):
        """Token ids [n, 24]: shorter than the block, so the mask buffer is sliced."""
        return torch.randint(0, self.vocab, (n, 24))


MODELS = {
    "unet_small": lambda **kwargs: UNet(**kwargs),
    "unet_small_bilinear": lambda **kwargs: UNet(bilinear=True, **kwargs),
    "gpt_mini": lambda **kwargs: GPT(**kwargs),
}
