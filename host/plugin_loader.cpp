#include "plugin_loader.h"

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <filesystem>

#include <boost/dll/runtime_symbol_info.hpp>

namespace fs = std::filesystem;

namespace pb::host {

PluginRegistry::~PluginRegistry() {
  // Objects a plugin created must die before its library is unloaded.
  for (auto& p : plugins_) p.dialect.reset();
}

std::string host_abi_description() {
  return "ABI " + std::to_string(PB_PLUGIN_ABI_VERSION) + ", planetbridge " + core_version() + ", " + PB_TOOLCHAIN;
}

bool PluginRegistry::load(const std::string& file) {
  auto refuse = [&](const std::string& reason) {
    refused_.push_back({file, reason});
    return false;
  };
  std::error_code ec;
  if (!fs::exists(file, ec)) return refuse("file not found");
  LoadedPlugin p;
  p.file = fs::absolute(file).string();
  try {
    p.library.load(p.file, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return refuse(std::string("cannot load: ") + e.what() + " (a plugin built against another planetbridge core or C++ library "
                  "cannot resolve this host's symbols; rebuild it against this host's SDK: " + host_abi_description() + ")");
  }
  if (!p.library.has(PB_PLUGIN_ENTRY)) {
    if (p.library.has("planetbridge_abi_version"))  // the C++ entry points of ABI 1
      return refuse("plugin ABI version 1, this host needs " + std::to_string(PB_PLUGIN_ABI_VERSION) + " (" + host_abi_description() +
                    "); rebuild the plugin against this host's SDK");
    return refuse(std::string("not a planetbridge plugin (no ") + PB_PLUGIN_ENTRY + " export)");
  }
  const pb_plugin* desc = p.library.get<const pb_plugin*(uint32_t)>(PB_PLUGIN_ENTRY)(PB_PLUGIN_ABI_VERSION);
  if (!desc) return refuse("its entry point returned no description (the plugin failed to initialise)");
  // The fields up to the toolchain keep their place in every ABI version.
  const bool described = desc->struct_size >= offsetof(pb_plugin, source_types) && desc->sdk_version && desc->toolchain;
  const std::string built_with = described ? std::string(desc->sdk_version) + ", " + desc->toolchain : "an unknown SDK";
  if (desc->abi_version != PB_PLUGIN_ABI_VERSION)
    return refuse("plugin ABI version " + std::to_string(desc->abi_version) + " (planetbridge " + built_with + "), this host needs " +
                  std::to_string(PB_PLUGIN_ABI_VERSION) + " (" + host_abi_description() + "); rebuild the plugin against this host's SDK");
  if (desc->struct_size < sizeof(pb_plugin))
    return refuse("its description is " + std::to_string(desc->struct_size) + " bytes, ABI " + std::to_string(PB_PLUGIN_ABI_VERSION) +
                  " needs " + std::to_string(sizeof(pb_plugin)));
  if (!desc->planet || !*desc->planet || !desc->version || !desc->source_types || !desc->capture || !desc->decode)
    return refuse("its description lacks a planet name, a version or an entry point");
  p.sdk_version = desc->sdk_version;
  p.toolchain = desc->toolchain;
  const std::string planet = desc->planet;
  for (const LoadedPlugin& q : plugins_)
    if (q.dialect->planet() == planet) return refuse("planet \"" + planet + "\" is already provided by " + q.file);
  p.dialect = dialect_from_plugin(desc, p.file);
  plugins_.push_back(std::move(p));
  return true;
}

PluginRegistry PluginRegistry::discover(const std::vector<std::string>& dirs) {
  PluginRegistry r;
  for (const std::string& dir : dirs) {
    r.searched_.push_back(dir);
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("libplanet_", 0) == 0 && entry.path().extension() == ".so") files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
    for (const std::string& f : files) r.load(f);
  }
  return r;
}

const Dialect* PluginRegistry::find(const std::string& planet) const {
  for (const auto& p : plugins_)
    if (p.dialect && p.dialect->planet() == planet) return p.dialect.get();
  return nullptr;
}

std::vector<std::string> plugin_search_path(const std::string& cli_dir) {
  std::vector<std::string> dirs;
  if (!cli_dir.empty()) dirs.push_back(cli_dir);
  if (const char* env = std::getenv("PLANETBRIDGE_PLUGIN_PATH")) {
    std::string s = env;
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find(':', start);
      if (end == std::string::npos) end = s.size();
      if (end > start) dirs.push_back(s.substr(start, end - start));
      start = end + 1;
    }
  }
  dirs.push_back((boost::dll::program_location().parent_path().parent_path() / "lib" / "planetbridge" / "plugins").string());
  return dirs;
}

}  // namespace pb::host
