// pb_bench: times one stream's model on planetbridge's oneDNN Network.
//   pb_bench STREAM [--iters N] [--warmup W] [--threads T] [--no-reuse] [--no-winograd] [--plugin-dir DIR]
// Prints one JSON line: compile time, per-run wall times in ms (median, p10, p90, and every run's,
// sorted, as times_ms), and the activation memory plan (MiB: the shared arena, the same buffers
// without reuse, the live peak no plan can beat, and buffers allocated on their own such as the
// inputs).
// bench/compare.py drives it against ONNX Runtime and PyTorch on the same model and input.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "planetbridge/network.h"
#include "planetbridge/stream.h"
#include "plugin_loader.h"

int main(int argc, char** argv) {
  std::string path, plugin_dir;
  int iters = 200, warmup = 20, threads = 0;
  pb::CompileOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--iters" && i + 1 < argc) iters = std::atoi(argv[++i]);
    else if (a == "--warmup" && i + 1 < argc) warmup = std::atoi(argv[++i]);
    else if (a == "--plugin-dir" && i + 1 < argc) plugin_dir = argv[++i];
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--no-reuse") options.reuse_memory = false;
    else if (a == "--no-winograd") options.winograd = false;
    else path = a;
  }
  if (path.empty() || iters <= 0 || threads < 0) {
    std::cerr << "usage: pb_bench STREAM [--iters N] [--warmup W] [--threads T] [--no-reuse] [--no-winograd] [--plugin-dir DIR]\n";
    return 2;
  }
  try {
    if (threads > 0) pb::set_threads(threads);  // else OMP_NUM_THREADS
    using clock = std::chrono::steady_clock;
    auto ms = [](clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
    pb::Stream stream = pb::read_stream_file(path);
    auto plugins = pb::host::PluginRegistry::discover(pb::host::plugin_search_path(plugin_dir));
    const pb::Dialect* dialect = plugins.find(stream.planet);
    if (!dialect) throw pb::Error(path, "no plugin for planet \"" + stream.planet + "\"");
    pb::ir::Graph graph = dialect->decode(stream);
    std::map<std::string, pb::Shape> shapes;
    std::vector<const pb::Tensor*> inputs;
    for (size_t i = 0; i < graph.inputs.size(); ++i) {
      inputs.push_back(&stream.tensors.at(stream.inputs[i]));
      shapes[graph.inputs[i].name] = inputs.back()->shape();
    }
    auto t0 = clock::now();
    pb::Network net(graph, shapes, options);
    const double compile_ms = ms(clock::now() - t0);
    for (int i = 0; i < warmup; ++i) net.run(inputs);
    std::vector<double> times;
    for (int i = 0; i < iters; ++i) {
      auto t = clock::now();
      net.run(inputs);
      times.push_back(ms(clock::now() - t));
    }
    std::sort(times.begin(), times.end());
    auto pct = [&](double p) { return times[std::min(times.size() - 1, static_cast<size_t>(p * times.size()))]; };
    nlohmann::json out = {{"model_id", stream.model_id}, {"compile_ms", compile_ms}, {"iters", iters}, {"threads", pb::threads()},
                          {"median_ms", pct(0.5)}, {"p10_ms", pct(0.1)}, {"p90_ms", pct(0.9)},
                          {"kernels", net.describe()}, {"times_ms", times}};
    const pb::MemoryStats mem = net.memory_stats();
    const auto mib = [](size_t b) { return static_cast<double>(b) / (1 << 20); };
    out["memory"] = {{"arena_mib", mib(mem.arena_bytes)}, {"unshared_mib", mib(mem.unshared_bytes)},
                     {"live_peak_mib", mib(mem.live_peak_bytes)}, {"private_mib", mib(mem.private_bytes)},
                     {"offline_plan", mem.offline_plan}};
    std::cout << out.dump() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
