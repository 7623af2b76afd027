#include "plugin_loader.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include <boost/dll/runtime_symbol_info.hpp>

namespace fs = std::filesystem;

namespace pb::host {

PluginRegistry::~PluginRegistry() {
  // Objects a plugin created must die before its library is unloaded.
  for (auto& p : plugins_) p.dialect.reset();
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
    return refuse(std::string("cannot load: ") + e.what());
  }
  if (!p.library.has("planetbridge_abi_version") || !p.library.has("planetbridge_create"))
    return refuse("not a planetbridge plugin (no planetbridge_abi_version/planetbridge_create exports)");
  const uint32_t abi = p.library.get_alias<uint32_t()>("planetbridge_abi_version")();
  if (abi != kPluginAbiVersion)
    return refuse("plugin ABI version " + std::to_string(abi) + ", this host needs " + std::to_string(kPluginAbiVersion) +
                  "; rebuild the plugin against this host's SDK");
  try {
    p.dialect = p.library.get_alias<std::shared_ptr<Dialect>()>("planetbridge_create")();
  } catch (const std::exception& e) {
    return refuse(std::string("factory failed: ") + e.what());
  }
  if (!p.dialect) return refuse("factory returned no dialect");
  if (const Dialect* other = find(p.dialect->planet())) {
    auto it = std::find_if(plugins_.begin(), plugins_.end(), [&](const LoadedPlugin& q) { return q.dialect.get() == other; });
    std::string planet = p.dialect->planet();
    p.dialect.reset();
    return refuse("planet \"" + planet + "\" is already provided by " + it->file);
  }
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
