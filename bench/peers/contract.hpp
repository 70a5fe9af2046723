// The peers' program contract, for the C++ peers of bench/peers/:
//
//   <program> <workload> <N> [reps=5]
//
// runs the workload `reps` times on one loop object and prints exactly one line
//   <workload> <peer> <ops_per_sec> <ns_per_op> n=<N> samples_s=<s1,...>
// with ops_per_sec = N / median and ns_per_op = median / N * 1e9.
// Exit status: 0, 1 if a result does not check out, 2 for a usage error.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace peers {

/// Monotonic time in seconds.
inline double now_s() noexcept {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// W4's delay of timer i: 0 <= delay < 10 ms, each microsecond value used
/// N / 10000 times in a scrambled order.
inline std::chrono::microseconds delay_of(std::int64_t i) noexcept {
  return std::chrono::microseconds((i * 7919) % 10000);
}

/// A workload's result did not check out: the measurement means nothing.
class ValidationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline void check(bool ok, const std::string& what) {
  if (!ok) throw ValidationError(what);
}

/// Where a workload takes t0 and t1.
struct Span {
  double t0 = 0, t1 = 0;
  double seconds() const {
    check(t1 > t0, "the workload did not take t1 after t0");
    return t1 - t0;
  }
};

/// One row of a peer's table: a workload and the member function that runs one
/// repetition of it, returning the seconds between t0 and t1.
template <class Workloads>
struct Workload {
  std::string_view name;
  double (Workloads::*run)(std::int64_t n);
};

namespace detail {

inline bool parse_int(const char* text, std::int64_t min, std::int64_t max, std::int64_t& out) {
  char* end = nullptr;
  long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < min || v > max) return false;
  out = v;
  return true;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t m = v.size() / 2;
  return v.size() % 2 != 0 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

}  // namespace detail

/// main() of a peer program: parses the arguments, constructs one Workloads
/// object (one loop) and runs the chosen workload on it `reps` times.
template <class Workloads, std::size_t K>
int contract_main(int argc, char** argv, std::string_view peer,
                  const Workload<Workloads> (&table)[K]) {
  auto usage = [&] {
    std::fprintf(stderr, "usage: %s <workload> <N> [reps=5]\n  workloads:", argv[0]);
    for (const Workload<Workloads>& w : table)
      std::fprintf(stderr, " %.*s", static_cast<int>(w.name.size()), w.name.data());
    std::fputc('\n', stderr);
    return 2;
  };
  std::int64_t n = 0, reps = 5;
  if (argc < 3 || argc > 4 || !detail::parse_int(argv[2], 1, std::int64_t{1} << 40, n) ||
      (argc > 3 && !detail::parse_int(argv[3], 1, 1000, reps))) {
    return usage();
  }
  const std::string_view name = argv[1];
  const auto* found = std::find_if(std::begin(table), std::end(table),
                                   [&](const Workload<Workloads>& w) { return w.name == name; });
  if (found == std::end(table)) {
    std::fprintf(stderr, "%.*s: unknown workload '%s'\n", static_cast<int>(peer.size()),
                 peer.data(), argv[1]);
    return usage();
  }

  std::vector<double> samples;
  try {
    Workloads workloads;
    for (std::int64_t r = 0; r < reps; ++r)
      samples.push_back((workloads.*(found->run))(n));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%.*s: %s: %s\n", static_cast<int>(peer.size()), peer.data(), argv[1],
                 e.what());
    return 1;
  }

  const double med = detail::median(samples);
  std::printf("%s %.*s %.0f %.1f n=%lld samples_s=", argv[1], static_cast<int>(peer.size()),
              peer.data(), static_cast<double>(n) / med, med / static_cast<double>(n) * 1e9,
              static_cast<long long>(n));
  for (std::size_t i = 0; i < samples.size(); ++i)
    std::printf("%s%.6f", i != 0 ? "," : "", samples[i]);
  std::printf("\n");
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace peers
