// baseline-workloads: the workloads of WORKLOADS.md on a plain-C++ loop with no
// I/O polling, the "physical limit" the other peers are read against.
//
//   baseline-workloads <workload> <N> [reps=5]     (the contract: contract.hpp)
//
// - ready queue: std::vector<std::function<void()>>, swapped with a second
//   vector and drained: what a pass schedules runs in the next pass.
// - call_soon_threadsafe: a mutex-guarded vector; the condition variable is
//   notified only when the loop thread is waiting on it.
// - timers: a binary heap (std::push_heap/pop_heap) of {deadline, sequence,
//   slot} over a slab of {std::function, cancelled}; cancelled entries are
//   dropped when popped, or all at once when they are most of the heap.
// - futures: heap-allocated, one callback slot, posted through call_soon.
// - tasks: a minimal C++20 coroutine task whose final_suspend reports to a
//   counting gather.
// - executor: 4 std::threads on a mutex/condvar deque; results come back
//   through call_soon_threadsafe.
// - tcp: no loop at all: blocking send/recv in a straight line on both
//   sockets, the syscall floor.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "contract.hpp"

namespace {

using peers::check;
using peers::now_s;
using peers::Span;

// ------------------------------------------------------------------ the loop

/// asyncio's loop without I/O. Invariants: every heap entry names a live slot
/// and every live slot has one heap entry (so an empty heap means no live
/// slot); slots at or above fresh_slot_ and those in free_slots_ are free;
/// cancelled_ counts the heap entries whose slot is cancelled; inbox_pending_
/// is true whenever inbox_ is non-empty.
class Loop {
 public:
  using Callback = std::function<void()>;
  using Clock = std::chrono::steady_clock;

  /// Names a scheduled timer; stale once the timer ran or was dropped.
  struct TimerHandle {
    std::uint32_t slot;
    std::uint64_t sequence;
  };

  void call_soon(Callback cb) { ready_.push_back(std::move(cb)); }

  void call_soon_threadsafe(Callback cb) {
    std::unique_lock lock(inbox_mutex_);
    inbox_.push_back(std::move(cb));
    inbox_pending_.store(true, std::memory_order_release);
    if (waiting_) {
      waiting_ = false;
      lock.unlock();
      wake_.notify_one();
    }
  }

  /// The deadline is counted from the loop's time, read once per iteration
  /// (libuv's uv_now), not from a fresh clock read as asyncio's call_later:
  /// the baseline is the floor, and a clock read costs tens of ns on a VM.
  TimerHandle call_later(std::chrono::nanoseconds delay, Callback cb) {
    const std::int64_t deadline = time() + delay.count();
    std::uint32_t slot;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      slot = fresh_slot_++;
      if (slot == slots_.size()) slots_.emplace_back();
    }
    const std::uint64_t sequence = ++last_sequence_;
    slots_[slot] = TimerSlot{std::move(cb), sequence, false};
    heap_.push_back(HeapEntry{deadline, sequence, slot});
    std::push_heap(heap_.begin(), heap_.end(), fires_later);
    return TimerHandle{slot, sequence};
  }

  /// Destroys the callback at once; true if that prevented its run.
  bool cancel(TimerHandle h) {
    TimerSlot& s = slots_[h.slot];
    if (s.sequence != h.sequence || s.cancelled || !s.callback) return false;
    s.cancelled = true;
    s.callback = nullptr;
    ++cancelled_;
    return true;
  }

  void stop() { stopping_ = true; }

  void run_forever() {
    stopping_ = false;
    while (!stopping_)
      run_once();
  }

  /// The loop's time in steady_clock ticks (ns): read at most once per
  /// iteration, when a timer needs it.
  std::int64_t time() {
    if (!time_cached_) {
      cached_time_ = Clock::now().time_since_epoch().count();
      time_cached_ = true;
    }
    return cached_time_;
  }

  std::uint64_t iterations() const { return iterations_; }
  std::uint64_t callbacks_run() const { return callbacks_run_; }
  std::size_t timers() const { return heap_.size(); }

 private:
  struct TimerSlot {
    Callback callback;
    std::uint64_t sequence = 0;
    bool cancelled = false;
  };
  struct HeapEntry {
    std::int64_t deadline;  // steady_clock ticks (ns)
    std::uint64_t sequence;
    std::uint32_t slot;
  };
  // The heap's comparator: the top is the earliest; equal deadlines in order.
  static bool fires_later(const HeapEntry& a, const HeapEntry& b) {
    return a.deadline != b.deadline ? a.deadline > b.deadline : a.sequence > b.sequence;
  }

  // One iteration, asyncio's _run_once: housekeeping, the inbox (waiting for it
  // or the next deadline when nothing is ready), due timers, then exactly the
  // callbacks ready now.
  void run_once() {
    if (cancelled_ > 50 && cancelled_ * 2 > heap_.size()) drop_cancelled();
    take_inbox();
    time_cached_ = false;  // a new iteration, maybe after a wait
    if (!heap_.empty()) {
      const std::int64_t now = time();
      while (!heap_.empty() && heap_.front().deadline <= now) {
        std::pop_heap(heap_.begin(), heap_.end(), fires_later);
        const std::uint32_t slot = heap_.back().slot;
        heap_.pop_back();
        TimerSlot& s = slots_[slot];
        if (s.cancelled) {
          --cancelled_;
        } else {
          ready_.push_back(std::move(s.callback));
        }
        s.callback = nullptr;
        s.cancelled = false;
        free_slots_.push_back(slot);
      }
      if (heap_.empty()) reuse_slots_in_order();
    }
    running_.swap(ready_);
    for (Callback& cb : running_)
      cb();
    callbacks_run_ += running_.size();
    running_.clear();
    ++iterations_;
  }

  void take_inbox() {
    if (!ready_.empty() && !inbox_pending_.load(std::memory_order_acquire)) return;
    std::unique_lock lock(inbox_mutex_);
    if (ready_.empty() && inbox_.empty() && !stopping_) {
      waiting_ = true;
      auto arrived = [this] { return !inbox_.empty(); };
      if (heap_.empty()) {
        wake_.wait(lock, arrived);
      } else {
        wake_.wait_until(lock, Clock::time_point(Clock::duration(heap_.front().deadline)), arrived);
      }
      waiting_ = false;
    }
    inbox_spare_.swap(inbox_);
    inbox_pending_.store(false, std::memory_order_relaxed);
    lock.unlock();
    for (Callback& cb : inbox_spare_)
      ready_.push_back(std::move(cb));
    inbox_spare_.clear();
  }

  void drop_cancelled() {
    std::erase_if(heap_, [this](const HeapEntry& e) {
      if (!slots_[e.slot].cancelled) return false;
      slots_[e.slot].cancelled = false;
      free_slots_.push_back(e.slot);
      return true;
    });
    std::make_heap(heap_.begin(), heap_.end(), fires_later);
    cancelled_ = 0;
    if (heap_.empty()) reuse_slots_in_order();
  }

  // No timer is live: hand slots out from the first again rather than in the
  // order they were freed (heap order), which would be random over the slab.
  void reuse_slots_in_order() {
    free_slots_.clear();
    fresh_slot_ = 0;
  }

  std::vector<Callback> ready_, running_;
  bool stopping_ = false;
  bool time_cached_ = false;
  std::int64_t cached_time_ = 0;
  std::uint64_t iterations_ = 0, callbacks_run_ = 0;

  std::vector<HeapEntry> heap_;
  std::vector<TimerSlot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::uint32_t fresh_slot_ = 0;
  std::uint64_t last_sequence_ = 0;
  std::size_t cancelled_ = 0;

  std::mutex inbox_mutex_;  // guards inbox_ and waiting_
  std::condition_variable wake_;
  std::vector<Callback> inbox_, inbox_spare_;
  std::atomic<bool> inbox_pending_{false};
  bool waiting_ = false;
};

// ------------------------------------------------------------------ future, task, pool

/// A minimal future: heap-allocated, one done callback added before set_result,
/// which posts it through call_soon; freed after the callback ran.
struct MiniFuture {
  std::int64_t result = 0;
  void (*done_callback)(MiniFuture& f, void* arg) = nullptr;
  void* arg = nullptr;

  void add_done_callback(void (*fn)(MiniFuture&, void*), void* a) {
    done_callback = fn;
    arg = a;
  }
  void set_result(Loop& loop, std::int64_t value) {
    result = value;
    loop.call_soon([this] {
      done_callback(*this, arg);
      delete this;
    });
  }
};

/// Counts the tasks that finished and adds up their results.
struct Gather {
  Loop* loop;
  std::int64_t expected;
  std::int64_t finished;
  std::int64_t sum;
  Span span;

  void report(std::int64_t result) {
    sum += result;
    if (++finished == expected) {
      span.t1 = now_s();
      loop->stop();
    }
  }
};

/// A minimal lazily started coroutine task returning an int64; its frame
/// reports the result to a Gather and frees itself at final_suspend.
class Task {
 public:
  struct promise_type {
    std::int64_t result = 0;
    Gather* gather = nullptr;

    Task get_return_object() {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept {
      struct ReportAndFree {
        bool await_ready() noexcept { return false; }
        void await_suspend(std::coroutine_handle<promise_type> h) noexcept {
          h.promise().gather->report(h.promise().result);
          h.destroy();
        }
        void await_resume() noexcept {}
      };
      return ReportAndFree{};
    }
    void return_value(std::int64_t v) { result = v; }
    void unhandled_exception() { std::terminate(); }
  };

  /// create_task: the first step goes through the loop.
  void start(Loop& loop, Gather& gather) {
    handle_.promise().gather = &gather;
    loop.call_soon([h = handle_] { h.resume(); });
  }

 private:
  explicit Task(std::coroutine_handle<promise_type> h) : handle_(h) {}
  std::coroutine_handle<promise_type> handle_;
};

/// asyncio.sleep(0): resume from the loop on a later iteration.
struct Sleep0 {
  Loop& loop;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    loop.call_soon([h] { h.resume(); });
  }
  void await_resume() const noexcept {}
};

Task sleep0_then_return(Loop& loop, std::int64_t i) {
  co_await Sleep0{loop};
  co_return i;
}

/// Worker threads on a mutex/condvar deque; workers are woken only when some
/// wait. Invariant: idle_ counts the workers blocked on work_.
class ThreadPool {
 public:
  explicit ThreadPool(int threads) {
    for (int i = 0; i < threads; ++i)
      workers_.emplace_back([this] { work(); });
  }
  ~ThreadPool() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    work_.notify_all();
    for (std::thread& t : workers_)
      t.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void submit(std::function<void()> job) {
    std::unique_lock lock(mutex_);
    jobs_.push_back(std::move(job));
    const bool wake = idle_ > 0;
    lock.unlock();
    if (wake) work_.notify_one();
  }

 private:
  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      while (jobs_.empty() && !stopping_) {
        ++idle_;
        work_.wait(lock);
        --idle_;
      }
      if (jobs_.empty()) return;
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  std::mutex mutex_;  // guards jobs_, idle_, stopping_
  std::condition_variable work_;
  std::deque<std::function<void()>> jobs_;
  int idle_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

// ------------------------------------------------------------------ sockets (W8)

/// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

[[noreturn]] void throw_errno(const char* what) {
  throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}

void set_nodelay(int fd) {
  int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) throw_errno("setsockopt");
}

void send_all(int fd, const char* data, std::size_t length) {
  while (length > 0) {
    ssize_t n = ::send(fd, data, length, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("send");
    data += n;
    length -= static_cast<std::size_t>(n);
  }
}

std::size_t receive_some(int fd, char* buffer, std::size_t capacity) {
  for (;;) {
    ssize_t n = ::recv(fd, buffer, capacity, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("recv");
    if (n == 0) throw std::runtime_error("recv: the peer closed the connection");
    return static_cast<std::size_t>(n);
  }
}

// ------------------------------------------------------------------ the workloads

class BaselineWorkloads {
 public:
  double call_soon(std::int64_t n) {
    Span span;
    const std::uint64_t ran_before = loop_.callbacks_run();
    loop_.call_soon([this, n, &span] {
      span.t0 = now_s();
      for (std::int64_t i = 0; i < n; ++i)
        loop_.call_soon([] {});
      loop_.call_soon([this, &span] {
        span.t1 = now_s();
        loop_.stop();
      });
    });
    loop_.run_forever();
    check(loop_.callbacks_run() - ran_before == static_cast<std::uint64_t>(n) + 2,
          "call_soon: wrong number of callbacks ran");
    return span.seconds();
  }

  double chain(std::int64_t n) {
    struct Chain {
      Loop* loop;
      std::int64_t left;
      Span span;
      void step() {
        if (--left != 0) {
          loop->call_soon([this] { step(); });
        } else {
          span.t1 = now_s();
          loop->stop();
        }
      }
    } c{&loop_, n, {}};
    const std::uint64_t iterations_before = loop_.iterations();
    loop_.call_soon([&c] {
      c.span.t0 = now_s();
      c.loop->call_soon([&c] { c.step(); });
    });
    loop_.run_forever();
    check(c.left == 0, "chain: steps did not run");
    check(loop_.iterations() - iterations_before >= static_cast<std::uint64_t>(n),
          "chain: steps shared an iteration");
    return c.span.seconds();
  }

  double threadsafe(std::int64_t n) { return threadsafe_from(n, 1); }
  double threadsafe2(std::int64_t n) { return threadsafe_from(n, 2); }

  double timers(std::int64_t n) {
    prepare_delays(n);
    Counter fired{&loop_, n, 0, {}};
    loop_.call_soon([this, &fired] {
      fired.span.t0 = now_s();
      for (std::chrono::microseconds d : delays_)
        loop_.call_later(d, [&fired] { fired.add(); });
    });
    loop_.run_forever();
    check(fired.count == n, "timers: " + std::to_string(fired.count) + " timers fired");
    check(loop_.timers() == 0, "timers: timers left in the heap");
    return fired.span.seconds();
  }

  double timers_cancel(std::int64_t n) {
    prepare_delays(n);
    handles_.clear();
    handles_.reserve(static_cast<std::size_t>(n));
    Span span;
    std::int64_t fired = 0, cancelled = 0;
    loop_.call_soon([&] {
      span.t0 = now_s();
      for (std::chrono::microseconds d : delays_)
        handles_.push_back(loop_.call_later(d, [&fired] { ++fired; }));
      for (Loop::TimerHandle h : handles_)
        cancelled += loop_.cancel(h) ? 1 : 0;
      loop_.call_soon([&] {
        span.t1 = now_s();
        loop_.stop();
      });
    });
    loop_.run_forever();
    check(cancelled == n, "timers_cancel: cancel() did not cancel every timer");
    check(fired == 0, "timers_cancel: cancelled timers fired");
    return span.seconds();
  }

  double futures(std::int64_t n) {
    Span span;
    std::int64_t checksum = 0;
    loop_.call_soon([&] {
      span.t0 = now_s();
      for (std::int64_t i = 0; i < n; ++i) {
        auto* f = new MiniFuture;
        f->add_done_callback(
            [](MiniFuture& done, void* sum) { *static_cast<std::int64_t*>(sum) += done.result; },
            &checksum);
        f->set_result(loop_, i);
      }
      loop_.call_soon([&] {
        span.t1 = now_s();
        loop_.stop();
      });
    });
    loop_.run_forever();
    check(checksum == n * (n - 1) / 2, "futures: wrong checksum " + std::to_string(checksum));
    return span.seconds();
  }

  double tasks(std::int64_t n) {
    Gather gather{&loop_, n, 0, 0, {}};
    loop_.call_soon([&] {
      gather.span.t0 = now_s();
      for (std::int64_t i = 0; i < n; ++i)
        sleep0_then_return(loop_, i).start(loop_, gather);
    });
    loop_.run_forever();
    check(gather.finished == n && gather.sum == n * (n - 1) / 2, "tasks: wrong results");
    return gather.span.seconds();
  }

  double executor(std::int64_t n) {
    if (!pool_) {  // created and warmed untimed: 4 jobs that wait for one another
      pool_.emplace(4);
      auto all_started = std::make_shared<std::latch>(5);  // outlives the last waiter
      for (int i = 0; i < 4; ++i)
        pool_->submit([all_started] { all_started->arrive_and_wait(); });
      all_started->arrive_and_wait();
    }
    // Jobs and results capture one pointer and one integer, so that
    // std::function keeps them inline (16 bytes in libstdc++), no allocation.
    struct Round {
      Loop* loop;
      Counter results;
      std::int64_t checksum;
    } round{&loop_, Counter{&loop_, n, 0, {}}, 0};
    loop_.call_soon([this, &round, n] {
      round.results.span.t0 = now_s();
      for (std::int64_t i = 0; i < n; ++i) {
        pool_->submit([r = &round, i] {
          const std::int64_t result = i + 1;  // trivial(i)
          r->loop->call_soon_threadsafe([r, result] {
            r->checksum += result;
            r->results.add();
          });
        });
      }
    });
    loop_.run_forever();
    check(round.results.count == n && round.checksum == n * (n + 1) / 2, "executor: wrong results");
    return round.results.span.seconds();
  }

  double tcp_pingpong(std::int64_t n) { return tcp_echo(n, 1); }
  double tcp_pipelined(std::int64_t n) { return tcp_echo(n, 100); }

 private:
  /// Counts up to `expected`, then takes t1 and stops the loop.
  struct Counter {
    Loop* loop;
    std::int64_t expected;
    std::int64_t count;
    Span span;
    void add() {
      if (++count == expected) {
        span.t1 = now_s();
        loop->stop();
      }
    }
  };

  double threadsafe_from(std::int64_t n, int producers) {
    Counter received{&loop_, n, 0, {}};
    std::vector<std::thread> threads;
    loop_.call_soon([&] {
      received.span.t0 = now_s();
      for (int p = 0; p < producers; ++p) {
        const std::int64_t share = n / producers + (p < n % producers ? 1 : 0);
        threads.emplace_back([this, share, &received] {
          for (std::int64_t i = 0; i < share; ++i)
            loop_.call_soon_threadsafe([&received] { received.add(); });
        });
      }
    });
    loop_.run_forever();
    for (std::thread& t : threads)
      t.join();
    check(received.count == n, "threadsafe: wrong number of callbacks ran");
    return received.span.seconds();
  }

  void prepare_delays(std::int64_t n) {
    if (static_cast<std::int64_t>(delays_.size()) == n) return;
    delays_.clear();
    for (std::int64_t i = 0; i < n; ++i)
      delays_.push_back(peers::delay_of(i));
  }

  // W8 without a loop: the client sends, the server echoes what it read, the
  // client reads; recv is called only when bytes are on their way.
  double tcp_echo(std::int64_t n, std::int64_t window) {
    constexpr std::int64_t kMessage = 64;
    if (listener_.get() < 0) listen_once();
    Fd client(::socket(AF_INET, SOCK_STREAM, 0));
    if (client.get() < 0) throw_errno("socket");
    if (::connect(client.get(), reinterpret_cast<const sockaddr*>(&address_), sizeof address_) != 0)
      throw_errno("connect");
    Fd served(::accept(listener_.get(), nullptr, nullptr));
    if (served.get() < 0) throw_errno("accept");
    set_nodelay(client.get());
    set_nodelay(served.get());
    std::vector<char> outgoing(static_cast<std::size_t>(window * kMessage), 'x');
    std::vector<char> buffer(64 * 1024);

    const double t0 = now_s();
    std::int64_t sent = std::min(window, n);
    std::int64_t to_server = sent * kMessage, to_client = 0, received = 0, received_msgs = 0;
    send_all(client.get(), outgoing.data(), static_cast<std::size_t>(to_server));
    while (received < n * kMessage) {
      if (to_server > 0) {  // the server echoes what it reads
        std::size_t got =
            receive_some(served.get(), buffer.data(),
                         std::min(buffer.size(), static_cast<std::size_t>(to_server)));
        send_all(served.get(), buffer.data(), got);
        to_server -= static_cast<std::int64_t>(got);
        to_client += static_cast<std::int64_t>(got);
      }
      std::size_t got = receive_some(client.get(), buffer.data(),
                                     std::min(buffer.size(), static_cast<std::size_t>(to_client)));
      to_client -= static_cast<std::int64_t>(got);
      received += static_cast<std::int64_t>(got);
      const std::int64_t complete = received / kMessage;
      const std::int64_t more = std::min(complete - received_msgs, n - sent);
      received_msgs = complete;
      if (more > 0) {
        send_all(client.get(), outgoing.data(), static_cast<std::size_t>(more * kMessage));
        sent += more;
        to_server += more * kMessage;
      }
    }
    const double t1 = now_s();
    check(received == n * kMessage && sent == n, "tcp: wrong byte count");
    return t1 - t0;
  }

  void listen_once() {
    listener_ = Fd(::socket(AF_INET, SOCK_STREAM, 0));
    if (listener_.get() < 0) throw_errno("socket");
    address_ = {};
    address_.sin_family = AF_INET;
    address_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address_.sin_port = 0;
    socklen_t length = sizeof address_;
    if (::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&address_), sizeof address_) !=
            0 ||
        ::listen(listener_.get(), 16) != 0 ||
        ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&address_), &length) != 0) {
      throw_errno("listen on 127.0.0.1");
    }
  }

  Loop loop_;
  std::vector<std::chrono::microseconds> delays_;  // W4, W4c: untimed table
  std::vector<Loop::TimerHandle> handles_;         // W4c: reserved untimed
  std::optional<ThreadPool> pool_;                 // W7: created once, untimed
  Fd listener_;                                    // W8: created once, untimed
  sockaddr_in address_{};
};

constexpr peers::Workload<BaselineWorkloads> kWorkloads[] = {
    {"call_soon", &BaselineWorkloads::call_soon},
    {"chain", &BaselineWorkloads::chain},
    {"threadsafe", &BaselineWorkloads::threadsafe},
    {"threadsafe2", &BaselineWorkloads::threadsafe2},
    {"timers", &BaselineWorkloads::timers},
    {"timers_cancel", &BaselineWorkloads::timers_cancel},
    {"futures", &BaselineWorkloads::futures},
    {"tasks", &BaselineWorkloads::tasks},
    {"executor", &BaselineWorkloads::executor},
    {"tcp_pingpong", &BaselineWorkloads::tcp_pingpong},
    {"tcp_pipelined", &BaselineWorkloads::tcp_pipelined},
};

}  // namespace

int main(int argc, char** argv) {
  return peers::contract_main(argc, argv, "baseline", kWorkloads);
}
