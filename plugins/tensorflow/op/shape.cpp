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

}  // namespace pb::tensorflow
