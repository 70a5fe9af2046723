// AsyncPool from plain synchronous code: main() submits 100 coroutine jobs
// to a pool that runs at most 10 at once and collects their results. No
// loop, no await in the caller's code: only submit() and result().
#include <cstdio>
#include <vector>

#include <eddy/eddy.hpp>

// An I/O-like job: waits a little (without blocking the pool's thread), then
// answers. Jobs that fail do not stop the pool.
eddy::Task<int> fetch(int id) {
  co_await eddy::sleep(0.001 * (id % 7));
  if (id % 25 == 24) throw std::runtime_error("job " + std::to_string(id) + " failed");
  co_return id* id;
}

int main() {
  eddy::AsyncPool pool(10);  // at most 10 jobs at once, on the pool's own thread
  std::vector<eddy::ConcurrentFuture<int>> jobs;
  for (int id = 0; id < 100; ++id)
    jobs.push_back(pool.submit(fetch, id));

  long total = 0;
  int failed = 0;
  for (auto& job : jobs) {
    try {
      total += job.result();  // blocks this thread until that job is done
    } catch (const std::exception& e) {
      ++failed;
      std::printf("%s\n", e.what());
    }
  }
  std::printf("100 jobs: %d failed, sum of the other results %ld\n", failed, total);
  return 0;  // the pool's destructor drains and joins its thread
}
