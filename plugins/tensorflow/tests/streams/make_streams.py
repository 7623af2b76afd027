#!/usr/bin/python3
"""Writes the hand-written Keras-config streams in this folder (tests/test_tensorflow_decoder.cpp).

The configs are typed out below in the exact shapes tfjs, Python Keras 2 and Keras 3 write;
numpy computes the expected outputs from the Keras layouts (Dense kernel [in, out]), so a
decoder that misses or doubles the kernel transpose fails on the square kernels.
tfjs_functional.json is recorded from real tfjs by record.js instead.

    /usr/bin/python3 plugins/tensorflow/tests/streams/make_streams.py
"""

import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

X3 = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 3.0]])
X4 = np.array([[1.0, -2.0, 0.5, 3.0], [-1.5, 0.25, 2.0, -0.5]])
# Square and not symmetric: x @ K and x @ K.T differ in every element.
K1 = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 10.0]]) / 8
K2 = np.array([[0.5, -1.0, 0.25], [2.0, 0.0, -0.5], [-1.0, 1.5, 1.0]])
B1 = np.array([0.5, -1.0, 2.0])
B2 = np.array([0.25, 0.0, -0.75])

relu = lambda v: np.maximum(v, 0)


def dense_config(name, units, activation, **extra):
    """A Dense config as tfjs writes it (Keras 2 writes the same keys)."""
    return {"units": units, "activation": activation, "use_bias": True,
            "kernel_initializer": {"class_name": "VarianceScaling",
                                   "config": {"scale": 1, "mode": "fan_avg", "distribution": "normal", "seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
            "kernel_constraint": None, "bias_constraint": None, "name": name, "trainable": True, **extra}


def tensor(a):
    a = np.asarray(a, dtype=np.float32)
    return {"dtype": "f32", "shape": list(a.shape), "data": [float(v) for v in a.ravel()]}


def stream(model_id, engine, version, topology, weights, tensors, inputs, expected, taps=None):
    doc = {"format": "planetbridge.stream", "version": 1, "planet": "tensorflow", "planet_version": version,
           "engine": engine, "model_id": model_id,
           "model": {"format": "keras", "topology": topology, "weights": weights},
           "tensors": {k: tensor(v) for k, v in tensors.items()}, "inputs": inputs, "expected": expected}
    if taps:
        doc["taps"] = taps
    return doc


def dumps(v, depth=0):
    """Indented JSON with every list of scalars on one line (readable, diffable tensors)."""
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(v, dict) and v:
        items = [f"{inner}{json.dumps(k)}: {dumps(x, depth + 1)}" for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v):
        return "[\n" + ",\n".join(inner + dumps(x, depth + 1) for x in v) + "\n" + pad + "]"
    return json.dumps(v)


def write(name, doc):
    path = os.path.join(HERE, name + ".json")
    with open(path, "w", encoding="utf-8") as f:
        f.write(dumps(doc) + "\n")
    print(f"{path}: {os.path.getsize(path)} bytes")


def sequential_square():
    """tfjs Sequential: no InputLayer, batch_input_shape on the first layer."""
    h = relu(X3 @ K1 + B1)
    y = h @ K2 + B2
    topology = {"class_name": "Sequential",
                "config": {"name": "sequential_1", "layers": [
                    {"class_name": "Dense", "config": dense_config("dense_Dense1", 3, "relu", batch_input_shape=[None, 3], dtype="float32")},
                    {"class_name": "Dense", "config": dense_config("dense_Dense2", 3, "linear")}]},
                "keras_version": "tfjs-layers 4.22.0", "backend": "tensor_flow.js"}
    weights = {"dense_Dense1": {"kernel": "dense_Dense1/kernel", "bias": "dense_Dense1/bias"},
               "dense_Dense2": {"kernel": "dense_Dense2/kernel", "bias": "dense_Dense2/bias"}}
    tensors = {"dense_Dense1/kernel": K1, "dense_Dense1/bias": B1, "dense_Dense2/kernel": K2, "dense_Dense2/bias": B2,
               "input.0": X3, "output.0": y, "tap.dense_Dense1": h}
    return stream("sequential_square", "tfjs", "4.22.0", topology, weights, tensors, ["input.0"], ["output.0"],
                  {"dense_Dense1": "tap.dense_Dense1", "dense_Dense2": "output.0"})


def functional_add():
    """tfjs functional model: one input shared by two Dense branches, Add, then Concatenate."""
    left = X3 @ K1 + B1
    right = np.tanh(X3 @ K2 + B2)
    s = left + right
    cat = np.concatenate([s, X3], axis=-1)

    def layer(name, cls, config, inbound):
        return {"name": name, "class_name": cls, "config": {**config, "name": name},
                "inbound_nodes": [[[n, 0, 0, {}] for n in inbound]] if inbound else []}

    topology = {"class_name": "Model", "config": {"name": "model1", "layers": [
        layer("input1", "InputLayer", {"batch_input_shape": [None, 3], "dtype": "float32", "sparse": False}, []),
        layer("left", "Dense", dense_config("left", 3, "linear"), ["input1"]),
        layer("right", "Dense", dense_config("right", 3, "tanh"), ["input1"]),
        layer("sum", "Add", {"trainable": True}, ["left", "right"]),
        layer("cat", "Concatenate", {"axis": -1, "trainable": True}, ["sum", "input1"])],
        "input_layers": [["input1", 0, 0]], "output_layers": [["cat", 0, 0]]},
        "keras_version": "tfjs-layers 4.22.0", "backend": "tensor_flow.js"}
    weights = {"left": {"kernel": "left/kernel", "bias": "left/bias"},
               "right": {"kernel": "right/kernel", "bias": "right/bias"}}
    tensors = {"left/kernel": K1, "left/bias": B1, "right/kernel": K2, "right/bias": B2,
               "input.0": X3, "output.0": cat, "tap.sum": s}
    return stream("functional_add", "tfjs", "4.22.0", topology, weights, tensors, ["input.0"], ["output.0"],
                  {"sum": "tap.sum", "cat": "output.0"})


KA = np.array([[0.5, -0.25, 1.0], [0.75, 0.5, -1.0], [-0.5, 1.0, 0.25], [0.25, -0.5, 0.5]])  # [4, 3]
KB = np.array([[-1.0, 0.5, 0.25], [0.5, 0.5, -0.5], [0.25, -0.75, 1.0], [1.0, 0.25, -0.25]])
KC = np.array([[1.0, -1.0], [0.5, 2.0], [-0.25, 0.75]])  # [3, 2]
BA = np.array([0.1, -0.2, 0.3])
BC = np.array([0.5, -0.5])


def softmax(v):
    e = np.exp(v - v.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def keras2_functional():
    """Python Keras 2 (tf.keras 2.15) model.to_json(): InputLayer, Subtract, Dropout, an
    Activation("hard_sigmoid") (Keras 2: clip(0.2x + 0.5)), softmax on the last Dense; a Dense
    without bias."""
    a = relu(X4 @ KA + BA)
    b = X4 @ KB
    d = np.clip(0.2 * (a - b) + 0.5, 0, 1)
    y = softmax(d @ KC + BC)

    def layer(name, cls, config, inbound):
        return {"class_name": cls, "config": {"name": name, "trainable": True, "dtype": "float32", **config},
                "name": name, "inbound_nodes": [[[n, 0, 0, {}] for n in inbound]] if inbound else []}

    def dense(name, units, activation, use_bias=True):
        c = dense_config(name, units, activation)
        c["use_bias"] = use_bias
        c["kernel_initializer"] = {"module": "keras.initializers", "class_name": "GlorotUniform",
                                   "config": {"seed": None}, "registered_name": None}
        return c

    topology = {"class_name": "Functional", "config": {"name": "model", "trainable": True, "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "dtype": "float32", "sparse": False,
                                                "ragged": False, "name": "input_1"}, "name": "input_1", "inbound_nodes": []},
        layer("dense", "Dense", dense("dense", 3, "relu"), ["input_1"]),
        layer("dense_1", "Dense", dense("dense_1", 3, "linear", use_bias=False), ["input_1"]),
        layer("subtract", "Subtract", {}, ["dense", "dense_1"]),
        layer("activation", "Activation", {"activation": "hard_sigmoid"}, ["subtract"]),
        layer("dropout", "Dropout", {"rate": 0.5, "noise_shape": None, "seed": None}, ["activation"]),
        layer("dense_2", "Dense", dense("dense_2", 2, "softmax"), ["dropout"])],
        "input_layers": [["input_1", 0, 0]], "output_layers": [["dense_2", 0, 0]]},
        "keras_version": "2.15.0", "backend": "tensorflow"}
    # What the Python snippet in docs/planets/tensorflow.md produces.
    weights = {"dense": {"kernel": "dense/kernel", "bias": "dense/bias"}, "dense_1": {"kernel": "dense_1/kernel"},
               "dense_2": {"kernel": "dense_2/kernel", "bias": "dense_2/bias"}}
    tensors = {"dense/kernel": KA, "dense/bias": BA, "dense_1/kernel": KB, "dense_2/kernel": KC, "dense_2/bias": BC,
               "input.0": X4, "output.0": y}
    return stream("keras2_functional", "keras", "2.15.0", topology, weights, tensors, ["input.0"], ["output.0"])


def keras3_functional():
    """Keras 3 model.to_json(): "__keras_tensor__" call arguments, single input/output refs,
    Multiply over a list, hard_sigmoid as Keras 3 defines it (clip(x/6 + 0.5)), silu."""
    a = X4 @ KA + BA
    a = a / (1 + np.exp(-a))  # silu
    b = np.clip((X4 @ KB + BA) / 6 + 0.5, 0, 1)
    y = a * b

    def kt(layer, shape):
        return {"class_name": "__keras_tensor__",
                "config": {"shape": shape, "dtype": "float32", "keras_history": [layer, 0, 0]}}

    def layer(name, cls, config, args):
        return {"module": "keras.layers", "class_name": cls,
                "config": {"name": name, "trainable": True,
                           "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
                                     "registered_name": None}, **config},
                "registered_name": None, "name": name, "inbound_nodes": [{"args": args, "kwargs": {}}]}

    def dense(units, activation):
        return {"units": units, "activation": activation, "use_bias": True,
                "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform",
                                       "config": {"seed": None}, "registered_name": None},
                "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {},
                                     "registered_name": None},
                "kernel_regularizer": None, "bias_regularizer": None, "kernel_constraint": None,
                "bias_constraint": None}

    topology = {"module": "keras.src.models.functional", "class_name": "Functional",
                "config": {"name": "functional", "trainable": True, "layers": [
                    {"module": "keras.layers", "class_name": "InputLayer",
                     "config": {"batch_shape": [None, 4], "dtype": "float32", "sparse": False, "name": "input_layer"},
                     "registered_name": None, "name": "input_layer", "inbound_nodes": []},
                    layer("dense", "Dense", dense(3, "silu"), [kt("input_layer", [None, 4])]),
                    layer("dense_1", "Dense", dense(3, "hard_sigmoid"), [kt("input_layer", [None, 4])]),
                    layer("multiply", "Multiply", {}, [[kt("dense", [None, 3]), kt("dense_1", [None, 3])]])],
                    "input_layers": ["input_layer", 0, 0], "output_layers": ["multiply", 0, 0]},
                "registered_name": "Functional", "build_config": {"input_shape": None},
                "keras_version": "3.3.3", "backend": "tensorflow"}
    weights = {"dense": {"kernel": "dense/kernel", "bias": "dense/bias"},
               "dense_1": {"kernel": "dense_1/kernel", "bias": "dense_1/bias"}}
    tensors = {"dense/kernel": KA, "dense/bias": BA, "dense_1/kernel": KB, "dense_1/bias": BA,
               "input.0": X4, "output.0": y}
    return stream("keras3_functional", "keras", "3.3.3", topology, weights, tensors, ["input.0"], ["output.0"])


if __name__ == "__main__":
    for build in (sequential_square, functional_add, keras2_functional, keras3_functional):
        write(build.__name__, build())
