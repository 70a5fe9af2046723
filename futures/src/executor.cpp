// The engine behind eddy/executor.hpp: ThreadPoolExecutor's pool, and the
// executor state a Loop keeps (default executor, shutdown_default_executor,
// what happens to jobs in flight when the loop closes).
//
// The pool is one mutex-guarded intrusive FIFO of jobs and one condition
// variable the idle workers sleep on. Workers take one job at a time, so a
// long job never holds others back.
//
// Waking a sleeping thread costs a futex call and a context switch, far more
// than a short job. So a worker that finds the queue empty first spins for a
// few microseconds, watching the queue's length without the lock, before it
// sleeps; at most one worker spins at a time. A submit then wakes nobody if a
// worker spins (it takes the job), else wakes a sleeper not already being
// woken (sleepers_ > wakeups_), else starts a new thread while there are fewer
// than max_workers. A worker that takes a job and leaves more queued wakes
// another (when nobody spins), so a burst still spreads over the pool.
//
// Lock order: join_mutex_ before mutex_; mutex_ is a leaf, never held while a
// job runs or is cancelled, nor while a thread is joined. A job's completion
// crosses back to a loop through detail::CompletionPort (loop/).
#include "eddy/executor.hpp"

#if defined(__linux__)
#include <pthread.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace eddy {
namespace detail {

namespace {

void name_this_thread(const std::string& name) {
#if defined(__linux__)
  // Linux allows 15 characters and the terminator.
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
#else
  (void)name;
#endif
}

}  // namespace

/// The shared state of one ThreadPoolExecutor. Each worker holds a reference
/// to it, so that a pool whose threads were detached (let go by a closing
/// loop) outlives its executor until the last worker ends.
///
/// Invariants (under mutex_):
/// - head_/tail_ hold queued_ jobs, in submission order.
/// - wakeups_ <= sleepers_: wake-ups sent and not yet taken by a worker.
/// - spinning_ is 0 or 1, changed under mutex_ (read outside it only as a hint).
/// - After shutdown_, nothing is queued any more and no thread is started;
///   a worker ends when it finds the queue empty.
class ThreadPool : public std::enable_shared_from_this<ThreadPool> {
 public:
  ThreadPool(int max_workers, std::string prefix)
      : max_workers_(static_cast<std::size_t>(max_workers)), prefix_(std::move(prefix)) {
    threads_.reserve(std::min<std::size_t>(max_workers_, 64));
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() {
    // Only threads that nobody can join are left here: the pool's last
    // reference was a worker's (its executor was destroyed on a worker).
    for (std::thread& t : threads_) {
      if (t.joinable()) t.detach();
    }
  }

  void enqueue(Job* job) {
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      if (shutdown_) {
        throw ExecutorShutdownError(
            "eddy::ThreadPoolExecutor: cannot schedule new work after shutdown");
      }
      if (!spinning_) {
        if (sleepers_ > wakeups_) {
          ++wakeups_;
          wake = true;
        } else if (threads_.size() < max_workers_ && !detached_) {
          start_thread_locked();
        }
      }
      job->next_job = nullptr;
      if (tail_ != nullptr) {
        tail_->next_job = job;
      } else {
        head_ = job;
      }
      tail_ = job;
      queued_.store(queued_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }
    if (wake) work_cv_.notify_one();  // outside the lock: the worker need not wait for it
  }

  void shutdown(bool wait, bool cancel_futures) {
    Job* dropped = nullptr;
    {
      std::lock_guard lock(mutex_);
      shutdown_ = true;
      if (cancel_futures) {
        dropped = head_;
        head_ = tail_ = nullptr;
        queued_.store(0, std::memory_order_relaxed);
      }
    }
    work_cv_.notify_all();
    while (dropped != nullptr) {
      Job* next = dropped->next_job;
      dropped->act(dropped, JobAction::cancel);
      dropped = next;
    }
    if (wait && current_worker_pool() != this) join_all();
  }

  // The executor let go of the pool without waiting: its threads end on their own.
  void detach_threads() noexcept {
    std::lock_guard lock(mutex_);
    detached_ = true;
    for (std::thread& t : threads_)
      t.detach();
    threads_.clear();
  }

  std::pair<std::size_t, std::size_t> load() const {
    std::lock_guard lock(mutex_);
    return {running_, queued_.load(std::memory_order_relaxed)};
  }
  std::size_t threads() const {
    std::lock_guard lock(mutex_);
    return threads_.size();
  }
  std::size_t max_workers() const noexcept { return max_workers_; }

 private:
  static const ThreadPool*& current_worker_pool() noexcept {
    static thread_local const ThreadPool* pool = nullptr;
    return pool;
  }

  void start_thread_locked() {
    const std::size_t index = started_;
    try {
      threads_.emplace_back([self = shared_from_this(), index] {
        name_this_thread(self->prefix_ + "-" + std::to_string(index));
        self->work();
      });
      ++started_;
    } catch (...) {
      // Without any worker the job would never run: fail the submit. With
      // some, they will run it.
      if (threads_.empty()) throw;
    }
  }

  void work() noexcept {
    current_worker_pool() = this;
    std::unique_lock lock(mutex_);
    for (;;) {
      while (head_ == nullptr) {
        if (shutdown_) return;
        if (!spinning_ && spin(lock)) continue;
        ++sleepers_;
        work_cv_.wait(lock, [this] { return wakeups_ != 0 || shutdown_; });
        --sleepers_;
        if (wakeups_ != 0) --wakeups_;
      }
      Job* job = head_;
      head_ = job->next_job;
      if (head_ == nullptr) tail_ = nullptr;
      queued_.store(queued_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
      ++running_;
      // More queued and nobody to take it: pass the baton (see the file comment).
      const bool wake = head_ != nullptr && !spinning_ && sleepers_ > wakeups_;
      if (wake) ++wakeups_;
      lock.unlock();
      if (wake) work_cv_.notify_one();
      job->act(job, JobAction::run);
      lock.lock();
      --running_;
    }
  }

  // Called with the lock held and the queue empty: become the spinner, watch
  // the queue's length without the lock for a few microseconds, and return
  // with the lock held again; true if a job arrived.
  bool spin(std::unique_lock<std::mutex>& lock) {
    spinning_ = true;
    lock.unlock();
    bool arrived = false;
    for (int i = 0; i < kSpinIterations && !arrived; ++i) {
      cpu_relax();
      arrived = queued_.load(std::memory_order_acquire) != 0;
    }
    lock.lock();
    spinning_ = false;  // under the lock: a submit that saw us spinning queued its job first
    return head_ != nullptr;
  }

  static void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  // About 5-20 microseconds, depending on the CPU's pause: longer than the gap
  // between two submits of a busy loop, shorter than a scheduler tick.
  static constexpr int kSpinIterations = 1000;

  void join_all() {
    std::lock_guard join_lock(join_mutex_);  // a second caller waits for the first's joins
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) {
      if (t.joinable()) t.join();
    }
  }

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  Job* head_ = nullptr;
  Job* tail_ = nullptr;
  // Written under mutex_; read without it by the spinning worker.
  std::atomic<std::size_t> queued_{0};
  bool spinning_ = false;
  std::size_t running_ = 0;
  std::size_t sleepers_ = 0;
  std::size_t wakeups_ = 0;
  std::size_t started_ = 0;
  bool shutdown_ = false;
  bool detached_ = false;
  std::vector<std::thread> threads_;  // guarded by mutex_
  std::mutex join_mutex_;
  const std::size_t max_workers_;
  const std::string prefix_;
};

// ------------------------------------------------------------------ ExecutorAccess

void ExecutorAccess::enqueue(ThreadPoolExecutor& executor, Job* job) {
  executor.pool_->enqueue(job);
}

void ExecutorAccess::let_go(std::shared_ptr<ThreadPoolExecutor> executor, bool shut_down) noexcept {
  if (!executor) return;
  const bool last = executor.use_count() == 1;
  try {
    if (shut_down || last) executor->pool_->shutdown(false, false);
  } catch (...) {
  }
  if (last) executor->pool_->detach_threads();
  executor.reset();  // (its destructor has no thread left to join)
}

std::pair<std::size_t, std::size_t> ExecutorAccess::load(const ThreadPoolExecutor& executor) {
  return executor.pool_->load();
}

std::size_t ExecutorAccess::threads(const ThreadPoolExecutor& executor) {
  return executor.pool_->threads();
}

// ------------------------------------------------------------------ shutdown_default_executor

/// One shutdown_default_executor in progress: a helper thread joins the
/// executor's workers, then posts this back through the loop's port.
/// Owned by the loop side until posted; after the loop closed, by whoever the
/// port orphans it on.
struct ShutdownOperation final : Completion, InFlight {
  struct Waiter {
    Future<void> future;
    TimerHandle timeout;
  };

  ShutdownOperation(LoopExecutors& owner_, std::shared_ptr<ThreadPoolExecutor> executor_)
      : owner(&owner_), executor(std::move(executor_)) {
    complete = &ShutdownOperation::complete_on;
    abandon = &ShutdownOperation::abandon_on;
  }

  static void complete_on(Completion* base, bool delivered) noexcept {
    auto* self = static_cast<ShutdownOperation*>(base);
    if (delivered) self->deliver();
    delete self;  // the executor's threads are joined: releasing it never blocks
  }

  void deliver() noexcept {
    owner->unlink(this);
    owner->shutdown_ = nullptr;
    if (joiner.joinable()) joiner.join();  // it has posted us: it is returning
    for (Waiter& w : waiters) {
      w.timeout.cancel();
      if (!w.future.done()) w.future.set_result();
    }
  }

  static void abandon_on(InFlight* base) noexcept {
    auto* self = static_cast<ShutdownOperation*>(base);
    self->owner->shutdown_ = nullptr;
    if (self->joiner.joinable()) self->joiner.detach();  // it may wait for a straggler forever
    for (Waiter& w : self->waiters) {
      w.timeout.cancel();
      try {
        w.future.cancel(
            "eddy::Loop::close: the loop closed before the default executor joined its threads");
      } catch (...) {
      }
    }
    self->waiters.clear();
  }

  LoopExecutors* owner;
  std::shared_ptr<ThreadPoolExecutor> executor;
  std::thread joiner;
  std::vector<Waiter> waiters;
};

// ------------------------------------------------------------------ LoopExecutors

LoopExecutors::LoopExecutors(Loop& loop) : loop_(&loop), port_(CompletionPort::create(loop)) {
  anchor_.prev = anchor_.next = &anchor_;
}

LoopExecutors::~LoopExecutors() {
  loop_closing();
}

LoopExecutors& LoopExecutors::install(Loop& loop, const char* method) {
  return static_cast<LoopExecutors&>(LoopExtensions::set(
      loop, ExtensionSlot::executor, std::make_unique<LoopExecutors>(loop), method));
}

std::shared_ptr<ThreadPoolExecutor> LoopExecutors::peek_default_executor(const Loop& loop) {
  LoopExtension* ext = LoopExtensions::get(loop, ExtensionSlot::executor);
  return ext != nullptr ? static_cast<LoopExecutors*>(ext)->default_executor_ : nullptr;
}

ThreadPoolExecutor& LoopExecutors::make_default_executor(const char* method) {
  if (shutdown_called_) {
    throw ExecutorShutdownError(std::string("eddy::Loop::") + method +
                                ": the default executor is shut down "
                                "(shutdown_default_executor was called)");
  }
  default_executor_ = std::make_shared<ThreadPoolExecutor>(
      ThreadPoolExecutor::default_max_workers(), "eddy-default");
  return *default_executor_;
}

void LoopExecutors::set_default_executor(std::shared_ptr<ThreadPoolExecutor> executor) {
  if (!executor) {
    throw std::invalid_argument("eddy::Loop::set_default_executor: the executor is null");
  }
  std::shared_ptr<ThreadPoolExecutor> previous =
      std::exchange(default_executor_, std::move(executor));
  ExecutorAccess::let_go(std::move(previous), /*shut_down=*/false);
}

Future<void> LoopExecutors::shutdown_default_executor(double timeout_seconds) {
  if (std::isnan(timeout_seconds)) {
    throw std::invalid_argument("eddy::Loop::shutdown_default_executor: the timeout is NaN");
  }
  Future<void> future = loop_->create_future<void>();
  shutdown_called_ = true;
  if (shutdown_ == nullptr) {
    if (!default_executor_) {
      future.set_result();
      return future;
    }
    auto* op = new ShutdownOperation(*this, std::move(default_executor_));
    try {
      op->joiner = std::thread([op, port = port_] {
        name_this_thread("eddy-shutdown");
        try {
          op->executor->shutdown(/*wait=*/true);
        } catch (...) {
          // A join that fails leaves the threads to the executor's destructor.
        }
        port->post(op);  // after this the operation is not ours to touch
      });
    } catch (...) {
      default_executor_ = std::move(op->executor);
      delete op;
      throw;
    }
    link(op);
    shutdown_ = op;
  }
  ShutdownOperation& op = *shutdown_;
  op.waiters.push_back({future, TimerHandle()});
  if (timeout_seconds != std::numeric_limits<double>::infinity()) {
    const std::size_t index = op.waiters.size() - 1;
    op.waiters.back().timeout =
        loop_->call_later(std::max(timeout_seconds, 0.0), [this, &op, index, timeout_seconds] {
          ShutdownOperation::Waiter& w = op.waiters[index];
          if (w.future.done()) return;  // cancelled by its owner
          report_stragglers(op, timeout_seconds);
          w.future.set_result();
        });
  }
  return future;
}

void LoopExecutors::report_stragglers(ShutdownOperation& op, double timeout_seconds) noexcept {
  try {
    auto [running, queued] = ExecutorAccess::load(*op.executor);
    char text[256];
    std::snprintf(text, sizeof text,
                  "eddy::Loop::shutdown_default_executor: the default executor did not finish "
                  "joining its threads within %g seconds (%zu job(s) still running, %zu queued); "
                  "it goes on shutting down in the background",
                  timeout_seconds, running, queued);
    ExceptionContext context;
    context.message = text;
    context.exception = std::make_exception_ptr(
        TimeoutError("eddy::Loop::shutdown_default_executor: the default executor did not join "
                     "its threads in time"));
    loop_->call_exception_handler(context);
  } catch (...) {
    // Out of memory while describing: nothing more useful to do.
  }
}

bool LoopExecutors::loop_closing() noexcept {
  if (closed_) return false;
  closed_ = true;
  // Every job in flight: cancelled (a job not started never runs, one that
  // takes a stop_token is asked to stop), its future cancelled, its loop side
  // let go. Their completions, posted now or later, are orphaned by the port.
  std::size_t outstanding = 0;
  while (anchor_.next != &anchor_) {
    InFlight* node = anchor_.next;
    unlink(node);
    node->abandon(node);
    ++outstanding;
  }
  port_->close(outstanding);
  port_ = nullptr;
  // asyncio: executor.shutdown(wait=False). Its threads end on their own.
  ExecutorAccess::let_go(std::move(default_executor_), /*shut_down=*/true);
  return true;
}

}  // namespace detail

// ------------------------------------------------------------------ ThreadPoolExecutor

int ThreadPoolExecutor::default_max_workers() noexcept {
  const unsigned hardware = std::max(1u, std::thread::hardware_concurrency());
  return static_cast<int>(std::min(32u, hardware + 4));
}

ThreadPoolExecutor::ThreadPoolExecutor(int max_workers, std::string thread_name_prefix) {
  if (max_workers <= 0) {
    throw std::invalid_argument(
        "eddy::ThreadPoolExecutor: max_workers must be greater than 0, got " +
        std::to_string(max_workers));
  }
  pool_ = std::make_shared<detail::ThreadPool>(max_workers, std::move(thread_name_prefix));
}

ThreadPoolExecutor::~ThreadPoolExecutor() {
  try {
    pool_->shutdown(/*wait=*/true, /*cancel_futures=*/false);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "eddy: ~ThreadPoolExecutor: %s\n", e.what());
  }
}

void ThreadPoolExecutor::shutdown(bool wait, bool cancel_futures) {
  pool_->shutdown(wait, cancel_futures);
}

int ThreadPoolExecutor::max_workers() const noexcept {
  return static_cast<int>(pool_->max_workers());
}

// ------------------------------------------------------------------ Loop members

void Loop::set_default_executor(std::shared_ptr<ThreadPoolExecutor> executor) {
  check_usable("set_default_executor");
  detail::LoopExecutors::of(*this, "set_default_executor")
      .set_default_executor(std::move(executor));
}

Future<void> Loop::shutdown_default_executor(double timeout_seconds) {
  check_usable("shutdown_default_executor");
  return detail::LoopExecutors::of(*this, "shutdown_default_executor")
      .shutdown_default_executor(timeout_seconds);
}

}  // namespace eddy
