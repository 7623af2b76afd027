#pragma once
// Generic mechanics that every planet decoder needs beside the decoder context (decoder.h):
// building Attrs, the graph's metadata, the capture command, int-or-list attributes, window
// attributes and "SAME" padding arithmetic, and copying a tensor with permuted axes. None of
// it knows a planet: which layout a planet's weights and values have, and so which
// permutation or padding rule applies, stays in its plugin (docs/writing-a-plugin.md).
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "planetbridge/ir.h"
#include "planetbridge/json.h"
#include "planetbridge/dialect.h"
#include "planetbridge/stream.h"
#include "planetbridge/tensor.h"

namespace pb {

using AttrList = std::initializer_list<std::pair<const std::string, ir::AttrValue>>;

// Attrs from a list: attrs_of({{"axis", int64_t(-1)}, {"eps", 1e-5}}).
ir::Attrs attrs_of(AttrList kv);

// A new tensor of `shape` with every element `value` (BatchNorm's implied ones and zeros).
Tensor filled(const Shape& shape, double value, DType dtype = DType::f32);

// The stream's "model", whose "format" must be `format` (else an error naming model.format).
JsonRef model_of(const Stream& stream, const std::string& format);

// What every decoded graph records of its stream: planet, planet_version, model_id.
std::map<std::string, std::string> stream_metadata(const Stream& stream);

// {program, script, "--serve"}: the program from environment variable `env` when it is set,
// else `fallback` (PLANETBRIDGE_PYTHON or /usr/bin/python3, PLANETBRIDGE_NODE or node).
CaptureCommand serve_command(const char* env, const std::string& fallback, const std::string& script);

// An int (one value for every dim) or a list of exactly n ints, as torch and Keras write
// kernel_size 3 or [3, 3]; a list of another length is an error naming its path.
std::vector<int64_t> int_or_list(const JsonRef& v, size_t n);

// The attributes every windowed op (Conv, Pool) takes: strides, dilations, pads_begin, pads_end.
ir::Attrs window_attrs(const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations,
                       const std::vector<int64_t>& pads_begin, const std::vector<int64_t>& pads_end);

// TensorFlow's and XLA's "SAME": out = ceil(in / stride) and the total padding
// max((out - 1) * stride + (kernel - 1) * dilation + 1 - in, 0). How the total is split
// between the two sides is the planet's rule.
int64_t same_padding_total(int64_t in, int64_t kernel, int64_t stride, int64_t dilation);

// The Transpose perms between channels-last [N, spatial..., C] and channels-first [N, C, spatial...].
std::vector<int64_t> channels_first_perm(size_t rank);  // [N, s..., C] -> [N, C, s...]
std::vector<int64_t> channels_last_perm(size_t rank);   // [N, C, s...] -> [N, s..., C]
// The perm taking a kernel [k..., I, O] (spatial dims first) to the IR's [O, I, k...].
std::vector<int64_t> kernel_oi_first_perm(size_t rank);

// A new tensor holding t with its axes permuted: axis i of the result is axis perm[i] of t
// (permuted(w, {1, 0}) transposes a matrix). Any dtype, values copied bit for bit.
Tensor permuted(const Tensor& t, const std::vector<int64_t>& perm);

}  // namespace pb
