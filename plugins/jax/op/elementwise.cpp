// Activations, softmax, Dropout, and the jnp operators between module outputs (add, subtract,
// multiply, concatenate, reshape): layout-free ones compute in whichever layout their inputs have.
#include "../module.h"

namespace pb::jax {

JaxTranslator activation(const std::string& function, std::vector<std::string> attributes,
                         std::function<ir::Attrs(const JsonRef&)> params) {
  return {std::move(attributes), 1, [function, params](const Module& m) {
            ir::Attrs a = params ? params(m.json()) : ir::Attrs{};
            if (!a.has("function")) a.set("function", function);  // nn.gelu picks its own
            const Layout l = m.common_layout();
            m.emit(l, "Activation", {m.in(0, l)}, std::move(a));
          }};
}

JaxTranslator softmax(bool log) {
  return {{"axis"}, 1, [log](const Module& m) {
            // jax.nn.softmax(x, axis=-1); a tuple of axes has no IR equivalent (i64 fails on it).
            m.emit(Layout::ChannelsLast, "Softmax", {m.last()}, attrs_of({{"axis", m.json().i64("axis", -1)}, {"log", int64_t(log)}}));
          }};
}

// Dropout: the identity when deterministic (Flax's default is None: given at call time).
void translate_dropout(const Module& m) {
  const JsonRef& j = m.json();
  if (!j.boolean("deterministic", false) && j.f64("rate", 0.5) != 0.0)
    j.fail("Dropout that is not deterministic is random; capture with deterministic = true");
  const Layout l = m.common_layout();
  m.emit(l, "Identity", {m.in(0, l)});
}

JaxTranslator binary(const std::string& op) {
  return {{}, 2, [op](const Module& m) {
            const Layout l = m.common_layout();  // equal ranks: broadcasting is layout-free
            m.emit(l, op, {m.in(0, l), m.in(1, l)});
          }};
}

void translate_concatenate(const Module& m) {
  JsonRef aj = m.json()["axis"];
  const int64_t r = int64_t(m.shape().size());
  const int64_t flax_axis = aj.i64();
  if (flax_axis < -r || flax_axis >= r) aj.fail("axis " + std::to_string(flax_axis) + " is out of range for rank " + std::to_string(r));
  const int64_t axis = flax_axis < 0 ? flax_axis + r : flax_axis;
  std::vector<std::string> ins;
  const Layout l = m.common_layout();
  for (size_t i = 0; i < m.arity(); ++i) {
    if (m.shape(i).size() != size_t(r)) aj.fail("inputs of different ranks");
    ins.push_back(m.in(i, l));
  }
  // Channels-first moves the features (last) axis to 1 and the spatial axes one up.
  const int64_t ir_axis = l == Layout::ChannelsLast ? flax_axis : axis == 0 ? 0 : axis == r - 1 ? 1 : axis + 1;
  m.emit(l, "Concat", ins, attrs_of({{"axis", ir_axis}}));
}

// x.reshape(shape) over Flax's channels-last layout (flatten order H, W, C). Dim 0 is the batch:
// the captured batch size (x.shape[0]) or -1 becomes the IR's "keep dim 0" / "infer".
void translate_reshape(const Module& m) {
  JsonRef sj = m.json()["shape"];
  Ints shape = sj.ints();
  if (shape.empty()) sj.fail("expected a non-empty shape");
  const int64_t batch = m.shape().empty() ? 0 : m.shape()[0];
  if (shape[0] != batch && shape[0] != -1)
    sj[0].fail("the batch dim must stay first (x.reshape((x.shape[0], ...))): expected " + std::to_string(batch) + " or -1, got " +
               std::to_string(shape[0]));
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] == 0 || shape[i] < -1) sj[i].fail("expected a positive size or -1, got " + std::to_string(shape[i]));
  if (shape[0] == batch) shape[0] = 0;  // the IR runs any batch size
  m.emit(Layout::ChannelsLast, "Reshape", {m.last()}, attrs_of({{"shape", shape}}));
}

}  // namespace pb::jax
