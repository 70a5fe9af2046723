// A plain libuv program that owns its uv_loop_t and calls uv_run itself.
// eddy attaches to that loop: its callbacks and timers run inside the host's
// uv_run, beside the host's own libuv timer.
#include <uv.h>

#include <chrono>
#include <cstdio>

#include <eddy/eddy.hpp>

using namespace std::chrono_literals;

int main() {
  uv_loop_t host;
  uv_loop_init(&host);

  // The host's own libuv timer.
  uv_timer_t host_timer;
  uv_timer_init(&host, &host_timer);
  uv_timer_start(
      &host_timer, [](uv_timer_t*) { std::printf("host: libuv timer fired (15 ms)\n"); }, 15, 0);

  {
    eddy::Loop loop(eddy::LoopOptions().attach_to(&host));  // eddy does not own `host`
    loop.call_soon([] { std::printf("eddy: call_soon ran inside the host's uv_run\n"); });
    loop.call_later(5ms, [] { std::printf("eddy: call_later(5 ms)\n"); });
    loop.call_later(25ms, [&] {
      std::printf("eddy: call_later(25 ms); running loop is ours: %s\n",
                  &eddy::get_running_loop() == &loop ? "yes" : "no");
    });

    // The host drives everything. uv_run returns when neither the host nor
    // eddy has anything left queued (work on other threads does not count:
    // see README, Embedding).
    uv_run(&host, UV_RUN_DEFAULT);
    std::printf("host: uv_run returned; eddy ran %llu callbacks\n",
                static_cast<unsigned long long>(loop.stats().callbacks_run));
    loop.close();  // closes eddy's libuv handles; the host loop stays usable
  }

  uv_close(reinterpret_cast<uv_handle_t*>(&host_timer), nullptr);
  uv_run(&host, UV_RUN_DEFAULT);  // lets the close callbacks (eddy's too) run
  int rc = uv_loop_close(&host);
  std::printf("host: uv_loop_close -> %s\n", rc == 0 ? "0 (clean)" : uv_err_name(rc));
  return rc == 0 ? 0 : 1;
}
