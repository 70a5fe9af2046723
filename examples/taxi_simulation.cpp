// A discrete-event simulation of a taxi fleet (the classic one from Fluent
// Python, written anew for eddy). Each taxi is an async generator that
// yields events (leave garage, pick up passenger, drop off passenger, going
// home) and is sent the simulated time at which its next event happens. The
// simulator keeps pending events in an eddy::PriorityQueue ordered by time
// and always advances the taxi whose event comes first.
//
//   taxi_simulation [--taxis=N] [--end-time=MINUTES] [--seed=S]
//
// Durations are exponentially distributed, drawn from a fixed-seed
// std::mt19937, so a given seed always prints the same simulation. Time here
// is simulated minutes: nothing sleeps.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include <eddy/eddy.hpp>

namespace {

constexpr int kDefaultTaxis = 3;
constexpr int kDefaultEndTime = 180;  // minutes
constexpr int kDepartureInterval = 5;
constexpr double kSearchDuration = 5;  // mean minutes to find a passenger
constexpr double kTripDuration = 20;   // mean minutes of a trip

struct Event {
  // A constructor, not an aggregate: g++ 12 destroys an aggregate temporary
  // written inside a co_yield or co_await expression twice.
  Event(int time_, int taxi_, std::string action_)
      : time(time_), taxi(taxi_), action(std::move(action_)) {}
  int time;
  int taxi;
  std::string action;
};

/// Earlier events first; at equal times, the lower taxi number first.
struct EarlierFirst {
  bool operator()(const Event& a, const Event& b) const {
    return a.time != b.time ? a.time < b.time : a.taxi < b.taxi;
  }
};

/// A taxi: leaves the garage at `start_time`, makes `trips` trips, goes home.
/// Each co_yield hands an event to the simulator and gets back the time of
/// the taxi's next event.
eddy::AsyncGenerator<Event, int> taxi_process(int ident, int trips, int start_time) {
  std::optional<int> time = co_yield Event{start_time, ident, "leave garage"};
  for (int i = 0; i < trips; ++i) {
    time = co_yield Event{*time, ident, "pick up passenger"};
    time = co_yield Event{*time, ident, "drop off passenger"};
  }
  co_yield Event{*time, ident, "going home"};
}

/// Minutes until the next event of a taxi whose last action was `action`:
/// exponentially distributed (computed here from the raw 32-bit draws, so
/// the numbers do not depend on the standard library's distributions).
int compute_duration(const std::string& action, std::mt19937& rng) {
  double mean = 1;
  if (action == "leave garage" || action == "drop off passenger") {
    mean = kSearchDuration;
  } else if (action == "pick up passenger") {
    mean = kTripDuration;
  }
  const double uniform = (static_cast<double>(rng()) + 0.5) / 4294967296.0;  // in (0, 1)
  return static_cast<int>(-std::log(uniform) * mean) + 1;
}

class Simulator {
 public:
  explicit Simulator(std::map<int, eddy::AsyncGenerator<Event, int>> taxis)
      : taxis_(std::move(taxis)) {}

  eddy::Task<> run(int end_time, std::mt19937& rng) {
    for (auto& [ident, taxi] : taxis_) {
      std::optional<Event> first = co_await taxi.next();  // primes each taxi
      events_.put_nowait(std::move(*first));
    }
    int sim_time = 0;
    while (sim_time < end_time) {
      if (events_.empty()) {
        std::printf("*** end of events ***\n");
        co_return;
      }
      Event current = co_await events_.get();
      sim_time = current.time;
      std::printf("taxi: %d %*sEvent(time=%d, taxi=%d, action='%s')\n", current.taxi,
                  3 * current.taxi, "", current.time, current.taxi, current.action.c_str());
      auto& taxi = taxis_.at(current.taxi);
      const int next_time = sim_time + compute_duration(current.action, rng);
      std::optional<Event> next = co_await taxi.send(next_time);
      if (next) {
        co_await events_.put(std::move(*next));
      } else {
        taxis_.erase(current.taxi);  // it went home: closing it destroys its frame
      }
    }
    std::printf("*** end of simulation time: %zu events pending ***\n", events_.qsize());
  }

 private:
  eddy::PriorityQueue<Event, EarlierFirst> events_;
  std::map<int, eddy::AsyncGenerator<Event, int>> taxis_;
};

int int_flag(const char* arg, const char* name, int fallback) {
  const std::size_t length = std::strlen(name);
  if (std::strncmp(arg, name, length) != 0) return fallback;
  return std::atoi(arg + length);
}

}  // namespace

int main(int argc, char** argv) {
  int taxis = kDefaultTaxis;
  int end_time = kDefaultEndTime;
  int seed = 3;
  for (int i = 1; i < argc; ++i) {
    taxis = int_flag(argv[i], "--taxis=", taxis);
    end_time = int_flag(argv[i], "--end-time=", end_time);
    seed = int_flag(argv[i], "--seed=", seed);
  }
  std::printf("%d taxis, %d minutes, seed %d\n", taxis, end_time, seed);

  std::mt19937 rng(static_cast<std::uint32_t>(seed));
  std::map<int, eddy::AsyncGenerator<Event, int>> fleet;
  for (int i = 0; i < taxis; ++i) {
    fleet.emplace(i, taxi_process(i, (i + 1) * 2, i * kDepartureInterval));
  }
  Simulator simulator(std::move(fleet));
  eddy::run(simulator.run(end_time, rng));
}
