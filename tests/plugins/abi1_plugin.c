/* A plugin as ABI 1 built them (a C++ factory behind Boost.DLL aliases, before the C boundary):
 * it exports only planetbridge_abi_version. The host must refuse it naming both versions. */
#include <stdint.h>

__attribute__((visibility("default"))) uint32_t planetbridge_abi_version(void) { return 1; }
