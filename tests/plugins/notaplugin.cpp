// A shared library named like a plugin (libplanet_notaplugin.so) that exports no plugin
// symbols: the loader must refuse it as "not a planetbridge plugin".
extern "C" __attribute__((visibility("default"))) int pb_not_a_plugin_marker() { return 42; }
