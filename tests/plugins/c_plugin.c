/* A planet written in plain C against planetbridge/plugin_abi.h alone (no SDK, no C++): the
 * boundary is C, so a plugin from another compiler or language loads. Planet "cplanet": the
 * model is the identity of the stream's tensor "x" (any float32 shape, batch first). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "planetbridge/plugin_abi.h"

static void put(pb_sink* s, const char* text) { s->write(s->context, text, strlen(text)); }

static void put_u64(pb_sink* s, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; ++i) b[i] = (unsigned char)(v >> (8 * i));
  s->write(s->context, b, 8);
}

static int source_types(pb_sink* out) {
  put(out, "[\"identity\"]");
  return 0;
}

static int capture(pb_sink* out) {
  put(out, "{\"argv\": [\"/bin/false\"], \"env\": {}}");
  return 0;
}

static int decode(const pb_stream_view* stream, pb_sink* out, pb_sink* error) {
  const pb_tensor_view* x = NULL;
  for (uint64_t i = 0; i < stream->tensor_count; ++i)
    if (strcmp(stream->tensors[i].name, "x") == 0) x = &stream->tensors[i];
  if (!x || x->dtype != PB_F32 || x->rank < 1) {
    put(error, "{\"where\": \"tensors.x\", \"message\": \"cplanet needs an f32 tensor x of rank >= 1\"}");
    return 1;
  }
  char shape[256] = "[-1";
  for (uint32_t d = 1; d < x->rank && strlen(shape) < 200; ++d)
    snprintf(shape + strlen(shape), sizeof shape - strlen(shape), ", %" PRId64, x->shape[d]);
  strcat(shape, "]");
  char json[1024];
  snprintf(json, sizeof json,
           "{\"format\": \"planetbridge.ir\", \"version\": 1, \"metadata\": {\"planet\": \"cplanet\"},"
           " \"inputs\": [{\"name\": \"x\", \"dtype\": \"f32\", \"shape\": %s}], \"outputs\": [\"y\"],"
           " \"nodes\": [{\"name\": \"y\", \"op\": \"Identity\", \"inputs\": [\"x\"], \"outputs\": [\"y\"],"
           " \"attrs\": {}, \"origin\": \"c:identity\"}], \"stream_weights\": {}, \"tensors\": {}}",
           shape);
  /* The framing: magic, JSON length, data length (none), the JSON, zeros to 64 bytes. */
  static const char magic[8] = {'P', 'B', 'S', 'T', 'R', 'M', 0, 1};
  static const char zeros[64] = {0};
  const uint64_t n = strlen(json);
  out->write(out->context, magic, 8);
  put_u64(out, n);
  put_u64(out, 0);
  out->write(out->context, json, n);
  out->write(out->context, zeros, (64 - (24 + n) % 64) % 64);
  return 0;
}

__attribute__((visibility("default"))) const pb_plugin* planetbridge_plugin(uint32_t host_abi_version) {
  (void)host_abi_version;
  static const pb_plugin p = {PB_PLUGIN_ABI_VERSION, sizeof(pb_plugin), "cplanet", "0.0.1", "none (plain C)",
                              "cc", source_types, capture, decode};
  return &p;
}
