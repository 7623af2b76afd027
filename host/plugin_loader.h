#pragma once
// Finds and loads planet plugins (libplanet_<name>.so) at run time with Boost.DLL, through the
// C entry point of planetbridge/plugin_abi.h.
#include <memory>
#include <string>
#include <vector>

#include <boost/dll/shared_library.hpp>

#include "planetbridge/dialect.h"

namespace pb::host {

struct LoadedPlugin {
  std::string file;
  boost::dll::shared_library library;  // declared first: destroyed after the dialect
  std::shared_ptr<Dialect> dialect;
  std::string sdk_version;  // what the plugin says it was built with
  std::string toolchain;
};

struct RefusedPlugin {
  std::string file;
  std::string reason;
};

class PluginRegistry {
 public:
  PluginRegistry() = default;
  PluginRegistry(PluginRegistry&&) = default;
  PluginRegistry& operator=(PluginRegistry&&) = default;
  ~PluginRegistry();

  // Loads every libplanet_*.so in the directories, in order; the first plugin of a planet wins.
  static PluginRegistry discover(const std::vector<std::string>& dirs);

  // Loads one file; on failure records why and returns false.
  bool load(const std::string& file);

  const Dialect* find(const std::string& planet) const;
  const std::vector<LoadedPlugin>& plugins() const { return plugins_; }
  const std::vector<RefusedPlugin>& refused() const { return refused_; }
  const std::vector<std::string>& searched() const { return searched_; }

 private:
  std::vector<LoadedPlugin> plugins_;
  std::vector<RefusedPlugin> refused_;
  std::vector<std::string> searched_;
};

// --plugin-dir (if given), then $PLANETBRIDGE_PLUGIN_PATH (':'-separated), then
// <executable dir>/../lib/planetbridge/plugins.
std::vector<std::string> plugin_search_path(const std::string& cli_dir);

// This host's side of the boundary, for messages: "ABI 2, planetbridge 0.1.0, g++ ..., libstdc++ ...".
std::string host_abi_description();

}  // namespace pb::host
