// Keras Flatten and Reshape: both act on Keras's channels-last value (flatten order H, W, C),
// never on a channels-first form.
#include "../layer.h"

namespace pb::tensorflow {

KerasTranslator flatten() {
  return {{"data_format"}, 1, [](const Layer& L) {
            // channels_first makes Keras permute to channels-last before flattening.
            if (auto df = L.config().find("data_format"); df && df->str() == "channels_first")
              df->fail("Flatten with data_format \"channels_first\" is not supported");
            L.emit(Layout::ChannelsLast, "Flatten", {L.x(Layout::ChannelsLast)}, attrs_of({{"start", int64_t(1)}, {"end", int64_t(-1)}}));
          }};
}

// target_shape excludes the batch dim, which the IR's 0 copies. Whether the elements fit is the
// Reshape schema's to say; what Keras allows in target_shape is said here (0 would mean "copy"
// to the IR).
KerasTranslator reshape() {
  return {{"target_shape"}, 1, [](const Layer& L) {
            const JsonRef target = L.config()["target_shape"];
            Ints shape = {0};
            int64_t inferred = 0;
            for (int64_t d : target.ints()) {
              if (d == 0 || d < -1 || (d == -1 && inferred++))
                target.fail("expected positive sizes and at most one -1, got " + target.raw().dump());
              shape.push_back(d);
            }
            L.emit(Layout::ChannelsLast, "Reshape", {L.x(Layout::ChannelsLast)}, attrs_of({{"shape", shape}}));
          }};
}

// TimeDistributed(layer): the wrapped layer on [N·T, rest...] (a Reshape{-1, rest...},
// "<value>/merged"), translated by its own translator as value "<value>/inner" (its config's keys
// checked like any layer's; its weights are the wrapper's, as tfjs and Keras name them), then a
// Reshape{-1, T, out...} back. The batch stays dynamic: -1 in both reshapes, T and the other dims
// from the types.
KerasTranslator time_distributed() {
  return {{"layer"}, 1, [](const Layer& L) {
            const JsonRef inner_json = L.config()["layer"];
            const Shape& in = L.shape();
            if (in.size() < 3) L.fail("TimeDistributed \"" + L.name() + "\" needs an input [batch, time, ...], got " + shape_str(in));
            const std::string type = inner_json["class_name"].str();
            const KerasTranslator& tr = find_translator(layer_table(), type, inner_json["class_name"], "layer class");
            if (type == "TimeDistributed" || type == "Bidirectional" || type == "InputLayer")
              inner_json["class_name"].fail("TimeDistributed over " + type + " is not supported");
            if (tr.arity != 1) inner_json["class_name"].fail("TimeDistributed over " + type + " (several inputs) is not supported");
            const JsonRef inner_config = inner_json["config"];
            check_attributes(inner_config, tr.attributes, type, informational_keys());
            check_float32(inner_config);
            Decoder& d = L.decoder();
            Ints merged = {-1};
            merged.insert(merged.end(), in.begin() + 2, in.end());
            const std::string flat = L.out() + "/merged";
            d.define(flat, Layout::ChannelsLast, "Reshape", {L.x(Layout::ChannelsLast)}, attrs_of({{"shape", merged}}));
            const std::string inner_out = L.out() + "/inner";
            const Layer inner(d, L.model(), inner_json, L.name(), inner_out, {flat});
            tr.translate(inner);
            if (!d.has(inner_out)) inner.fail("internal: the " + type + " translator produced no output");
            if (d.has(inner.output(1))) inner.fail("TimeDistributed over a layer with several outputs is not supported");
            inner.check_all_weights_used();
            // The inner layer's weights are the wrapper's: mark them used here too.
            if (L.model().weights)
              if (auto table = L.model().weights->find(L.name()))
                for (const std::string& k : table->keys()) L.weight_ref(k);
            const Shape& y = d.type(inner_out).shape;
            Ints back = {-1, in[1]};
            back.insert(back.end(), y.begin() + 1, y.end());
            L.emit(Layout::ChannelsLast, "Reshape", {d.as(inner_out, Layout::ChannelsLast)}, attrs_of({{"shape", back}}));
          }};
}

}  // namespace pb::tensorflow
