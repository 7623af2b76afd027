/* The boundary between the host and a planet plugin: plain C, so a plugin built by another
 * compiler or standard library either loads and works or is refused with both versions named.
 * (ggml's backend registry pattern: one versioned extern "C" entry point returning a struct of
 * function pointers.) Nothing C++ crosses it: no exception, no std:: type, no allocation freed
 * on the other side. docs/writing-a-plugin.md describes it; plugins/sdk/include/planetbridge/
 * plugin.h builds it from a C++ Dialect, host/plugin_loader wraps it back into one.
 *
 * Data in: the stream's JSON document (without its "tensors" member) and a view of every
 * tensor (host memory, valid during the call). Data out: bytes written through a sink the host
 * owns: the IR graph (docs/plugin-abi.md: a framed document whose weights are either a stream
 * tensor by name, used in place, or bytes of the frame), or an error {"where", "message"}. */
#ifndef PLANETBRIDGE_PLUGIN_ABI_H
#define PLANETBRIDGE_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a struct below or the graph document changes layout or meaning. */
#define PB_PLUGIN_ABI_VERSION 2u

/* The entry point every plugin exports. */
#define PB_PLUGIN_ENTRY "planetbridge_plugin"

/* Tensor element types, as in the stream format. */
enum pb_dtype { PB_F32 = 0, PB_F64 = 1, PB_I32 = 2, PB_I64 = 3 };

typedef struct pb_tensor_view {
  const char* name;
  uint32_t dtype; /* enum pb_dtype */
  uint32_t rank;
  const int64_t* shape;
  const void* data; /* row-major, 64-byte aligned */
  uint64_t nbytes;
} pb_tensor_view;

typedef struct pb_stream_view {
  const char* json; /* the stream document without "tensors", UTF-8 */
  uint64_t json_size;
  const pb_tensor_view* tensors;
  uint64_t tensor_count;
} pb_stream_view;

/* Where a plugin writes an answer: the host appends the bytes to a buffer of its own. */
typedef struct pb_sink {
  void* context;
  void (*write)(void* context, const void* data, uint64_t size);
} pb_sink;

/* The fields up to `toolchain` keep their place in every ABI version, so a host can always say
 * what a plugin it refuses was built with. */
typedef struct pb_plugin {
  uint32_t abi_version; /* PB_PLUGIN_ABI_VERSION the plugin was built with */
  uint32_t struct_size; /* sizeof(pb_plugin) as the plugin knows it */
  const char* planet;   /* "pytorch"; static strings, valid while the library is loaded */
  const char* version;  /* the plugin's own version */
  const char* sdk_version; /* the planetbridge SDK it was built against */
  const char* toolchain;   /* compiler and C++ library it was built with, for messages */
  /* JSON array of the source types it translates, written to `out`; 0 on success. */
  int (*source_types)(pb_sink* out);
  /* JSON {"argv": [...], "env": {...}}: the capture process serving suite fixtures; 0 on success. */
  int (*capture)(pb_sink* out);
  /* Stream -> IR graph document into `out` (returns 0), or an error document {"where",
   * "message"} into `error` (returns nonzero). Never throws. */
  int (*decode)(const pb_stream_view* stream, pb_sink* out, pb_sink* error);
} pb_plugin;

/* The entry point's type: returns the plugin's static description (never NULL). */
typedef const pb_plugin* (*pb_plugin_entry)(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* PLANETBRIDGE_PLUGIN_ABI_H */
