// LoopThread (see eddy/loop_thread.hpp).
#include "eddy/loop_thread.hpp"

#if defined(__linux__)
#include <pthread.h>
#endif

#include <cstdio>
#include <exception>
#include <future>
#include <stdexcept>

namespace eddy {

namespace {
// The LoopThread whose thread this is (thread ids may be reused once a
// thread is joined; this cannot be).
thread_local const LoopThread* tls_loop_thread = nullptr;

LoopOptions check_options(LoopOptions options) {
  if (options.host_loop != nullptr) {
    throw std::invalid_argument(
        "eddy::LoopThread: an attached loop (LoopOptions::attach_to) is run by its host, not by "
        "a thread of its own");
  }
  return options;
}
}  // namespace

LoopThread::LoopThread(LoopOptions options, std::string thread_name)
    : loop_(check_options(std::move(options))) {
  // The first callback of the first iteration says the loop runs. (The loop
  // is not running yet: this thread may still prepare it.)
  // If the loop ended before running it, the callback is destroyed with the
  // promise inside, and the wait below ends with broken_promise.
  std::promise<void> running;
  std::future<void> started = running.get_future();
  loop_.call_soon([promise = std::move(running)]() mutable { promise.set_value(); });
  thread_ = std::thread([this, name = std::move(thread_name)] {
#if defined(__linux__)
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
#endif
    run();
  });
  thread_id_ = thread_.get_id();
  try {
    started.get();
  } catch (const std::future_error&) {
    thread_.join();
    throw RuntimeError("eddy::LoopThread: the loop ended before it started running");
  }
}

void LoopThread::run() noexcept {
  tls_loop_thread = this;
  while (!stopping_) {
    try {
      loop_.run_forever();
    } catch (const std::exception& e) {
      // run_forever throws only for misuse of the loop itself, which this
      // class rules out; do not spin on it.
      std::fprintf(stderr, "eddy: LoopThread: run_forever failed: %s\n", e.what());
      break;
    }
  }
  try {
    loop_.close();
  } catch (const std::exception& e) {
    // Foreign libuv handles left open: ~Loop releases eddy's part.
    std::fprintf(stderr, "eddy: LoopThread: %s\n", e.what());
  }
}

void LoopThread::shutdown() {
  if (tls_loop_thread == this) {
    throw RuntimeError(
        "eddy::LoopThread::shutdown: called on the loop's own thread, which cannot join itself");
  }
  std::lock_guard lock(shutdown_mutex_);
  if (joined_) return;
  try {
    loop_.call_soon_threadsafe([this] {
      stopping_ = true;
      loop_.stop();
    });
  } catch (const LoopClosedError&) {
    // The thread ended early (see run()): nothing to stop.
  }
  thread_.join();
  joined_ = true;
}

LoopThread::~LoopThread() {
  if (tls_loop_thread == this) {
    std::fputs(
        "eddy: a LoopThread was destroyed on its own loop's thread, which cannot join itself\n",
        stderr);
    std::terminate();
  }
  shutdown();
}

}  // namespace eddy
