"""Suite fixtures for the pytorch planet: a fixture (as in the capture request) -> Stream.

Layer "dense", spec {input: int, units: [int, ...], activation: str, bias: bool}:
nn.Sequential(Linear(input, units[0]), Act(), ..., Linear(units[-2], units[-1])), the last
layer linear. activation defaults to "relu" (unused with a single layer); bias defaults to true.
The model is trained for a few Adam steps on a fixed synthetic regression task, so that biases
are non-zero and weights are not just their initialisation.
"""

import zlib

import numpy as np
import torch
from torch import nn

import pb_torch

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

_DENSE_KEYS = {"input", "units", "activation", "bias"}
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
    if not isinstance(spec, dict):
        raise ValueError(f"spec: expected a mapping, got {spec!r}")
    unknown = sorted(set(spec) - _DENSE_KEYS)
    if unknown:
        raise ValueError(f"spec.{unknown[0]}: unknown field for layer 'dense' (known: {', '.join(sorted(_DENSE_KEYS))})")
    width = spec.get("input")
    if not isinstance(width, int) or isinstance(width, bool) or width <= 0:
        raise ValueError(f"spec.input: expected a positive integer, got {width!r}")
    units = spec.get("units")
    if (not isinstance(units, list) or not units
            or any(not isinstance(u, int) or isinstance(u, bool) or u <= 0 for u in units)):
        raise ValueError(f"spec.units: expected a non-empty list of positive integers, got {units!r}")
    activation = spec.get("activation", "relu")
    if activation not in ACTIVATIONS:
        raise ValueError(f"spec.activation: unknown activation {activation!r} (known: {', '.join(ACTIVATIONS)})")
    bias = spec.get("bias", True)
    if not isinstance(bias, bool):
        raise ValueError(f"spec.bias: expected true or false, got {bias!r}")

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
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    for _ in range(TRAIN_STEPS):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()


def build(fixture):
    """The Stream for one fixture {id, layer, samples, seed, spec}."""
    layer = fixture.get("layer")
    if layer != "dense":
        raise ValueError(f"layer {layer!r} is not supported by the pytorch capture yet")
    samples = _int_field(fixture, "samples")
    torch.manual_seed(_seed(fixture))  # model init and all draws come from this seed, in fixed order
    model = dense_model(fixture.get("spec"))
    spec = fixture["spec"]
    _train(model, spec["input"], spec["units"][-1])
    x = torch.randn(samples, spec["input"])
    return pb_torch.capture(model, (x,), fixture["id"], taps=True)
