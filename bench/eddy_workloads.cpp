// eddy-workloads: eddy as one more peer of /work/shared/peers (WORKLOADS.md).
//
//   eddy-workloads <workload> <N> [reps=5]
//
// Runs the workload `reps` times on one eddy::Loop and prints exactly one line,
// the peers' contract:
//   <workload> eddy <ops_per_sec> <ns_per_op> n=<N> samples_s=<s1,...>
// with ops_per_sec = N / median and ns_per_op = median / N * 1e9.
// Exit status: 0 on success, 1 if a result does not check out, 2 for a usage
// error or a workload eddy does not implement yet.
//
//   PEER_CMD_eddy=build/bench/eddy-workloads PEERS="libuv eddy" peers/run.sh
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "loop_workloads.hpp"

namespace {

using eddy_bench::EddyWorkloads;

struct Workload {
  std::string_view name;
  double (*run)(EddyWorkloads&, std::int64_t n);  // null: not supported yet
};

// Every workload of WORKLOADS.md, in its order.
constexpr Workload kWorkloads[] = {
    {"call_soon", [](EddyWorkloads& w, std::int64_t n) { return w.call_soon(n); }},
    {"chain", [](EddyWorkloads& w, std::int64_t n) { return w.chain(n); }},
    {"threadsafe", [](EddyWorkloads& w, std::int64_t n) { return w.threadsafe(n, 1); }},
    {"threadsafe2", [](EddyWorkloads& w, std::int64_t n) { return w.threadsafe(n, 2); }},
    {"timers", [](EddyWorkloads& w, std::int64_t n) { return w.timers(n); }},
    {"timers_cancel", [](EddyWorkloads& w, std::int64_t n) { return w.timers_cancel(n); }},
    {"futures", [](EddyWorkloads& w, std::int64_t n) { return w.futures(n); }},
    {"tasks", [](EddyWorkloads& w, std::int64_t n) { return w.tasks(n); }},
    {"executor", [](EddyWorkloads& w, std::int64_t n) { return w.executor(n); }},
    {"tcp_pingpong", nullptr},
    {"tcp_pipelined", nullptr},
};

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s <workload> <N> [reps=5]\n  workloads:", argv0);
  for (const Workload& w : kWorkloads) {
    std::fprintf(stderr, " %.*s%s", static_cast<int>(w.name.size()), w.name.data(),
                 w.run != nullptr ? "" : " (not supported yet)");
  }
  std::fputc('\n', stderr);
  return 2;
}

/// Parses a whole decimal integer in [min, max]; false otherwise.
bool parse_int(const char* text, std::int64_t min, std::int64_t max, std::int64_t& out) {
  char* end = nullptr;
  long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < min || v > max) return false;
  out = v;
  return true;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t m = v.size() / 2;
  return v.size() % 2 != 0 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) return usage(argv[0]);
  const std::string_view name = argv[1];
  std::int64_t n = 0, reps = 5;
  if (!parse_int(argv[2], 1, INT64_C(1) << 40, n)) {
    std::fprintf(stderr, "eddy-workloads: N must be a positive integer, got '%s'\n", argv[2]);
    return 2;
  }
  if (argc > 3 && !parse_int(argv[3], 1, 1000, reps)) {
    std::fprintf(stderr, "eddy-workloads: reps must be an integer in 1..1000, got '%s'\n", argv[3]);
    return 2;
  }
  const auto* found = std::find_if(std::begin(kWorkloads), std::end(kWorkloads),
                                   [&](const Workload& w) { return w.name == name; });
  if (found == std::end(kWorkloads)) {
    std::fprintf(stderr, "eddy-workloads: unknown workload '%s'\n", argv[1]);
    return usage(argv[0]);
  }
  if (found->run == nullptr) {
    std::fprintf(stderr, "eddy-workloads: workload '%s' is not supported yet\n", argv[1]);
    return 2;
  }

  std::vector<double> samples;
  try {
    EddyWorkloads workloads;  // one loop for every repetition
    for (std::int64_t r = 0; r < reps; ++r)
      samples.push_back(found->run(workloads, n));
  } catch (const eddy_bench::ValidationError& e) {
    std::fprintf(stderr, "eddy-workloads: %s: validation failed: %s\n", argv[1], e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eddy-workloads: %s: %s\n", argv[1], e.what());
    return 1;
  }

  const double med = median(samples);
  std::string line = std::string(name) + " eddy ";
  char num[64];
  std::snprintf(num, sizeof num, "%.0f %.1f n=%lld samples_s=", static_cast<double>(n) / med,
                med / static_cast<double>(n) * 1e9, static_cast<long long>(n));
  line += num;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    std::snprintf(num, sizeof num, "%s%.6f", i != 0 ? "," : "", samples[i]);
    line += num;
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}
