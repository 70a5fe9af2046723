// The raw-libuv baseline of the WORKLOADS.md workloads, shared by the Google
// Benchmark binaries so that every eddy figure is also a ratio in one run.
//
// It implements each workload the way the peers' C program
// (peers/libuv/bench_uv.c) does, which is the design a libuv-backed
// asyncio-like loop would use (uvloop's):
// - call_soon: a FIFO ring of {fn, arg} (no allocation per item) drained by a
//   uv_idle_t that is active while the ring is non-empty; a pass runs only the
//   items present when it starts.
// - call_soon_threadsafe: a mutex-protected vector + uv_async_send (which
//   coalesces); the async callback swaps the vector out and runs the items.
// - timers: one uv_timer_t per timer (caller-owned, ms resolution).
// - futures (W5): a minimal hand-written future: heap-allocated, one callback
//   slot, set_result posts the callback through call_soon, freed after it ran.
// - executor (W7): uv_queue_work on libuv's own pool (4 threads: the binary
//   sets UV_THREADPOOL_SIZE=4 before libuv starts it), caller-owned requests.
#pragma once

#include <uv.h>

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "loop_workloads.hpp"

namespace eddy_bench {

inline void check_uv(int rc, const char* what) {
  if (rc < 0) {
    throw eddy_bench::ValidationError(std::string(what) + ": " + uv_strerror(rc));
  }
}

/// W1-W4c on a bare uv_loop_t. Invariant: the idle handle is active exactly
/// while the ring holds items; the async handle is referenced only while W3 runs.
class UvWorkloads {
 public:
  UvWorkloads() {
    check_uv(uv_loop_init(&loop_), "uv_loop_init");
    loop_.data = this;
    uv_idle_init(&loop_, &idle_);
    idle_.data = this;
    check_uv(uv_async_init(&loop_, &async_, &UvWorkloads::on_async), "uv_async_init");
    async_.data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
  }
  ~UvWorkloads() {
    uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop_) != 0) std::fputs("bench_loop: uv_loop_close failed\n", stderr);
  }
  UvWorkloads(const UvWorkloads&) = delete;
  UvWorkloads& operator=(const UvWorkloads&) = delete;

  double call_soon(std::int64_t n) {
    n_ = n;
    const std::uint64_t ran_before = ran_;
    call_soon(
        [](void* arg) {
          auto* self = static_cast<UvWorkloads*>(arg);
          self->t0_ = now_s();
          for (std::int64_t i = 0; i < self->n_; ++i)
            self->call_soon(&noop, nullptr);
          self->call_soon(&record_t1, self);
        },
        this);
    uv_run(&loop_, UV_RUN_DEFAULT);
    check(ran_ - ran_before == static_cast<std::uint64_t>(n) + 2, "libuv call_soon: wrong count");
    return seconds();
  }

  double chain(std::int64_t n) {
    left_ = n;
    call_soon(
        [](void* arg) {
          auto* self = static_cast<UvWorkloads*>(arg);
          self->t0_ = now_s();
          self->call_soon(&chain_step, self);
        },
        this);
    uv_run(&loop_, UV_RUN_DEFAULT);
    check(left_ == 0, "libuv chain: steps did not run");
    return seconds();
  }

  double threadsafe(std::int64_t n, int producers) {
    n_ = n;
    count_ = 0;
    std::vector<std::thread> threads;
    threads.reserve(static_cast<std::size_t>(producers));
    uv_ref(reinterpret_cast<uv_handle_t*>(&async_));  // ts_cb unrefs it after the n-th item
    t0_ = now_s();
    for (int p = 0; p < producers; ++p) {
      std::int64_t share = n / producers + (p < n % producers ? 1 : 0);
      threads.emplace_back([this, share] {
        for (std::int64_t i = 0; i < share; ++i)
          call_soon_threadsafe(&ts_cb, this);
      });
    }
    uv_run(&loop_, UV_RUN_DEFAULT);
    for (std::thread& t : threads)
      t.join();
    check(count_ == n, "libuv threadsafe: wrong count");
    return seconds();
  }

  double timers(std::int64_t n) {
    prepare_timers(n);
    call_soon(&create_timers, this);
    uv_run(&loop_, UV_RUN_DEFAULT);
    check(count_ == n, "libuv timers: wrong count");
    close_timers();
    return seconds();
  }

  double timers_cancel(std::int64_t n) {
    prepare_timers(n);
    call_soon(
        [](void* arg) {
          auto* self = static_cast<UvWorkloads*>(arg);
          create_timers(self);
          for (uv_timer_t& t : self->timers_)
            uv_timer_stop(&t);
          self->call_soon(&record_t1, self);
        },
        this);
    uv_run(&loop_, UV_RUN_DEFAULT);
    check(count_ == 0, "libuv timers_cancel: a cancelled timer fired");
    close_timers();
    return seconds();
  }

  /// W5: per future: allocate it, attach its one callback, set its result
  /// (which posts the callback through call_soon); the callback adds the
  /// result to a checksum and frees the future.
  double futures(std::int64_t n) {
    n_ = n;
    checksum_ = 0;
    call_soon(
        [](void* arg) {
          auto* self = static_cast<UvWorkloads*>(arg);
          self->t0_ = now_s();
          for (std::int64_t i = 0; i < self->n_; ++i) {
            auto* f = new MiniFuture{self, 0, nullptr};
            f->callback = &future_done;
            f->set_result(i);
          }
          self->call_soon(&record_t1, self);
        },
        this);
    uv_run(&loop_, UV_RUN_DEFAULT);
    check(checksum_ == n * (n - 1) / 2, "libuv futures: wrong checksum");
    return seconds();
  }

  /// W6: a task is a heap-allocated two-state machine whose step is
  /// scheduled with call_soon (the shape of asyncio's Task.__step): step 0
  /// yields once, step 1 stores i as its result and counts it.
  double tasks(std::int64_t n) {
    n_ = n;
    count_ = 0;
    results_.assign(static_cast<std::size_t>(n), -1);
    call_soon(
        [](void* arg) {
          auto* self = static_cast<UvWorkloads*>(arg);
          self->t0_ = now_s();
          for (std::int64_t i = 0; i < self->n_; ++i) {
            self->call_soon(&task_step, new MiniTask{self, 0, i});
          }
        },
        this);
    uv_run(&loop_, UV_RUN_DEFAULT);
    std::int64_t sum = 0;
    for (std::int64_t v : results_)
      sum += v;
    check(sum == n * (n - 1) / 2, "libuv tasks: wrong checksum");
    return seconds();
  }

  /// W7: from inside the loop, t0; uv_queue_work(trivial(i) = i + 1) for i in
  /// 0..n-1; each after-work callback adds the result to a checksum, the n-th
  /// takes t1. The requests are reserved and the pool started untimed.
  double executor(std::int64_t n) {
    if (!pool_warm_) {  // libuv starts all its threads on the first request
      Work warm{};
      warm.req.data = this;
      check_uv(uv_queue_work(&loop_, &warm.req, &work_cb, [](uv_work_t*, int) {}), "uv_queue_work");
      uv_run(&loop_, UV_RUN_DEFAULT);
      pool_warm_ = true;
    }
    n_ = n;
    count_ = 0;
    checksum_ = 0;
    works_.assign(static_cast<std::size_t>(n), Work{});
    call_soon(
        [](void* arg) {
          auto* self = static_cast<UvWorkloads*>(arg);
          self->t0_ = now_s();
          for (std::int64_t i = 0; i < self->n_; ++i) {
            Work& w = self->works_[static_cast<std::size_t>(i)];
            w.i = i;
            w.req.data = self;
            check_uv(uv_queue_work(&self->loop_, &w.req, &work_cb, &after_work_cb),
                     "uv_queue_work");
          }
        },
        this);
    uv_run(&loop_, UV_RUN_DEFAULT);
    check(count_ == n, "libuv executor: wrong count");
    check(checksum_ == n * (n + 1) / 2, "libuv executor: wrong checksum");
    return seconds();
  }

  /// Memory per pending timer: the caller-owned uv_timer_t.
  static constexpr std::size_t bytes_per_timer() noexcept { return sizeof(uv_timer_t); }

 private:
  using Fn = void (*)(void*);
  struct Item {
    Fn fn;
    void* arg;
  };

  // ---------------------------------------------------------------- ready ring
  void call_soon(Fn fn, void* arg) {
    if (ring_len_ == ring_.size()) grow_ring();
    ring_[(ring_head_ + ring_len_) & (ring_.size() - 1)] = Item{fn, arg};
    ++ring_len_;
    if (!idle_active_) {
      uv_idle_start(&idle_, &UvWorkloads::on_idle);
      idle_active_ = true;
    }
  }
  void grow_ring() {
    std::vector<Item> bigger(ring_.empty() ? 1024 : ring_.size() * 2);
    for (std::size_t i = 0; i < ring_len_; ++i) {
      bigger[i] = ring_[(ring_head_ + i) & (ring_.size() - 1)];
    }
    ring_ = std::move(bigger);
    ring_head_ = 0;
  }
  static void on_idle(uv_idle_t* h) {
    auto* self = static_cast<UvWorkloads*>(h->data);
    const std::size_t mask = self->ring_.size() - 1;
    std::size_t todo = self->ring_len_;  // items queued meanwhile wait for the next pass
    self->ran_ += todo;
    while (todo-- != 0) {
      Item it = self->ring_[self->ring_head_];
      self->ring_head_ = (self->ring_head_ + 1) & mask;
      --self->ring_len_;
      it.fn(it.arg);
    }
    if (self->ring_len_ == 0) {
      uv_idle_stop(&self->idle_);
      self->idle_active_ = false;
    }
  }

  // ---------------------------------------------------------------- threadsafe inbox
  void call_soon_threadsafe(Fn fn, void* arg) {
    {
      std::lock_guard lock(inbox_mutex_);
      inbox_.push_back(Item{fn, arg});
    }
    uv_async_send(&async_);
  }
  static void on_async(uv_async_t* h) {
    auto* self = static_cast<UvWorkloads*>(h->data);
    {
      std::lock_guard lock(self->inbox_mutex_);
      self->inbox_.swap(self->inbox_spare_);
    }
    for (const Item& it : self->inbox_spare_)
      it.fn(it.arg);
    self->inbox_spare_.clear();
  }

  // ---------------------------------------------------------------- W5's future
  struct MiniFuture {
    UvWorkloads* owner;
    std::int64_t value;
    void (*callback)(MiniFuture*);
    void set_result(std::int64_t v) {
      value = v;
      owner->call_soon(
          [](void* self) {
            auto* f = static_cast<MiniFuture*>(self);
            f->callback(f);
          },
          this);
    }
  };
  static void future_done(MiniFuture* f) {
    f->owner->checksum_ += f->value;
    delete f;
  }

  // ---------------------------------------------------------------- W6's task
  struct MiniTask {
    UvWorkloads* owner;
    int state;
    std::int64_t i;
  };
  static void task_step(void* arg) {
    auto* t = static_cast<MiniTask*>(arg);
    if (t->state == 0) {
      t->state = 1;
      t->owner->call_soon(&task_step, t);  // the sleep(0)-like yield
      return;
    }
    UvWorkloads* self = t->owner;
    self->results_[static_cast<std::size_t>(t->i)] = t->i;
    delete t;
    if (++self->count_ == self->n_) self->t1_ = now_s();
  }

  // ---------------------------------------------------------------- W7's work
  struct Work {
    uv_work_t req;
    std::int64_t i;
    std::int64_t result;
  };
  static void work_cb(uv_work_t* req) {
    Work* w = reinterpret_cast<Work*>(req);
    w->result = w->i + 1;
  }
  static void after_work_cb(uv_work_t* req, int status) {
    if (status != 0) return;  // (cancelled: the count check fails)
    Work* w = reinterpret_cast<Work*>(req);
    auto* self = static_cast<UvWorkloads*>(req->data);
    self->checksum_ += w->result;
    if (++self->count_ == self->n_) self->t1_ = now_s();
  }

  // ---------------------------------------------------------------- callbacks
  static void noop(void*) {}
  static void record_t1(void* arg) { static_cast<UvWorkloads*>(arg)->t1_ = now_s(); }
  static void chain_step(void* arg) {
    auto* self = static_cast<UvWorkloads*>(arg);
    if (--self->left_ != 0) {
      self->call_soon(&chain_step, self);
    } else {
      self->t1_ = now_s();
    }
  }
  static void ts_cb(void* arg) {
    auto* self = static_cast<UvWorkloads*>(arg);
    if (++self->count_ == self->n_) {
      self->t1_ = now_s();
      uv_unref(reinterpret_cast<uv_handle_t*>(&self->async_));
    }
  }
  static void timer_cb(uv_timer_t* h) {
    auto* self = static_cast<UvWorkloads*>(h->loop->data);
    if (++self->count_ == self->n_) self->t1_ = now_s();
  }

  // ---------------------------------------------------------------- timers
  // Untimed: the uv_timer_t storage and the table of delays (ms resolution).
  void prepare_timers(std::int64_t n) {
    n_ = n;
    count_ = 0;
    timers_.resize(static_cast<std::size_t>(n));
    if (static_cast<std::int64_t>(delay_ms_.size()) != n) {
      delay_ms_.resize(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i) {
        delay_ms_[static_cast<std::size_t>(i)] =
            static_cast<std::uint64_t>(eddy_bench::delay_of(i).count() / 1000);
      }
    }
  }
  static void create_timers(void* arg) {
    auto* self = static_cast<UvWorkloads*>(arg);
    self->t0_ = now_s();
    for (std::size_t i = 0; i < self->timers_.size(); ++i) {
      uv_timer_init(&self->loop_, &self->timers_[i]);
      uv_timer_start(&self->timers_[i], &timer_cb, self->delay_ms_[i], 0);
    }
  }
  void close_timers() {  // untimed
    for (uv_timer_t& t : timers_)
      uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
  }

  double seconds() const {
    check(t1_ > t0_, "libuv: the workload did not record t1 after t0");
    return t1_ - t0_;
  }

  uv_loop_t loop_{};
  uv_idle_t idle_{};
  uv_async_t async_{};
  bool idle_active_ = false;
  std::vector<Item> ring_;  // size is zero or a power of two
  std::size_t ring_head_ = 0, ring_len_ = 0;
  std::uint64_t ran_ = 0;

  std::mutex inbox_mutex_;
  std::vector<Item> inbox_;        // guarded by inbox_mutex_
  std::vector<Item> inbox_spare_;  // loop thread only

  std::int64_t n_ = 0, left_ = 0, count_ = 0, checksum_ = 0;
  double t0_ = 0, t1_ = 0;
  std::vector<uv_timer_t> timers_;
  std::vector<std::uint64_t> delay_ms_;
  std::vector<std::int64_t> results_;  // W6
  std::vector<Work> works_;            // W7: caller-owned requests, reserved untimed
  bool pool_warm_ = false;
};

}  // namespace eddy_bench
