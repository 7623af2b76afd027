// Keras's merge layers: Add, Multiply, Subtract (numpy broadcasting, as the IR's binary ops)
// and Concatenate.
#include "../layer.h"

namespace pb::tensorflow {

// Add / Multiply fold any number of inputs pairwise ("<value>/1", ... then the value), in the
// layout the inputs share (equal ranks: broadcasting is layout-free).
KerasTranslator merge(const std::string& op, bool exactly_two) {
  return {{}, exactly_two ? 2u : 0u, [op](const Layer& L) {
            if (L.arity() < 2) L.fail(L.class_name() + " needs at least two inputs, got " + std::to_string(L.arity()));
            const Layout layout = L.common_layout();
            const std::vector<std::string> xs = L.xs(layout);
            std::string acc = xs[0];
            for (size_t i = 1; i + 1 < xs.size(); ++i) acc = L.emit_step(std::to_string(i), op, {acc, xs[i]});
            L.emit(layout, op, {acc, xs.back()});
          }};
}

// Concatenate along a feature axis of Keras's layout (the batch axis counts, as in Keras).
KerasTranslator concatenate() {
  return {{"axis"}, 0, [](const Layer& L) {
            if (L.arity() < 2) L.fail("Concatenate needs at least two inputs, got " + std::to_string(L.arity()));
            const JsonRef c = L.config();
            const int64_t axis = c.i64("axis", -1), rank = int64_t(L.shape().size());
            const int64_t a = axis < 0 ? axis + rank : axis;
            if (a <= 0 || a >= rank) c["axis"].fail("axis " + std::to_string(axis) + " is not a feature axis of " + shape_str(L.shape()));
            L.emit(Layout::ChannelsLast, "Concat", L.xs(Layout::ChannelsLast), attrs_of({{"axis", axis}}));
          }};
}

}  // namespace pb::tensorflow
