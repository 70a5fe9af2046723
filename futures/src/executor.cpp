// The engine behind eddy/executor.hpp: ThreadPoolExecutor's pool, and the
// executor state a Loop keeps (default executor, shutdown_default_executor,
// what happens to jobs in flight when the loop closes).
//
// The pool: submits push jobs onto a lock-free stack; workers, under the
// pool's mutex, move it into a FIFO (reversed: submission order) and take one
// job at a time, so a long job never holds others back. Idle workers sleep on
// one condition variable.
//
// Waking a sleeping thread costs a futex call and a context switch, far more
// than a short job. So a worker that finds nothing queued first spins for
// ~20 us, watching the stack without the lock and yielding its core to any
// thread that wants it (on a machine with few cores, that is often the loop
// that submits), before it sleeps; at most one worker spins at a time. A submit that sees a spinner
// only pushes (no lock, no wake-up); otherwise it wakes a sleeper not already being woken
// (sleepers_ > wakeups_), else starts a new thread while there are fewer than
// max_workers. A worker that takes a job and leaves more queued wakes another
// (when nobody spins), so a burst still spreads over the pool.
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
#include <chrono>
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
/// Invariants:
/// - Jobs wait in incoming_ (newest first, pushed without the lock) and then
///   in the FIFO head_/tail_ (under mutex_), into which a worker moves the
///   whole of incoming_, reversed, when the FIFO runs dry: jobs start in
///   submission order.
/// - After shutdown, incoming_ holds the closed marker (set under mutex_):
///   a push fails, and a worker ends when the FIFO is empty.
/// - wakeups_ <= sleepers_ (under mutex_): wake-ups sent, not yet taken.
/// - spinning_, sleepers_ and started_ change under mutex_; submits read
///   them without the lock (see enqueue for why that is enough).
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
    // Before the first thread runs, start it before queueing: if it cannot
    // start, the job is not left behind.
    if (started_.load(std::memory_order_acquire) == 0) {
      wake_or_start(job);
      return;
    }
    // Otherwise push without the lock; a worker exists to run the job. Then
    // decide whether someone must be woken. Both sides use seq_cst: we push,
    // then read spinning_ and sleepers_; a worker clears spinning_ or raises
    // sleepers_, then reads incoming_ (has_work). So if we see no spinner
    // gone and no sleeper come, they see our job.
    if (!push(job)) throw_shut_down();
    if (spinning_.load(std::memory_order_seq_cst)) return;  // the spinner takes it
    if (sleepers_.load(std::memory_order_seq_cst) <= wakeups_.load(std::memory_order_relaxed) &&
        started_.load(std::memory_order_relaxed) == max_workers_) {
      // Every worker is awake or being woken: one of them looks at the queue
      // before it sleeps.
      return;
    }
    wake_or_start(nullptr);
  }

  void shutdown(bool wait, bool cancel_futures) {
    Job* dropped = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (!shutdown_) {
        shutdown_ = true;
        // Close incoming_; what it held joins the FIFO (it still runs).
        append_reversed(incoming_.exchange(closed_marker(), std::memory_order_acq_rel));
      }
      if (cancel_futures) {
        dropped = head_.load(std::memory_order_relaxed);
        head_.store(nullptr, std::memory_order_relaxed);
        tail_ = nullptr;
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
    std::size_t queued = 0;
    // Under mutex_ nobody takes jobs out of incoming_: its nodes are stable.
    for (Job* j = head_.load(std::memory_order_relaxed); j != nullptr; j = j->next_job)
      ++queued;
    Job* in = incoming_.load(std::memory_order_acquire);
    for (Job* j = in == closed_marker() ? nullptr : in; j != nullptr; j = j->next_job)
      ++queued;
    return {running_, queued};
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
  static Job* closed_marker() noexcept {
    static Job marker;
    return &marker;
  }
  [[noreturn]] static void throw_shut_down() {
    throw ExecutorShutdownError(
        "eddy::ThreadPoolExecutor: cannot schedule new work after shutdown");
  }

  // Pushes onto incoming_; false once the pool is shut down.
  bool push(Job* job) noexcept {
    Job* head = incoming_.load(std::memory_order_relaxed);
    do {
      if (head == closed_marker()) return false;
      job->next_job = head;
    } while (!incoming_.compare_exchange_weak(head, job, std::memory_order_seq_cst,
                                              std::memory_order_relaxed));
    return true;
  }

  // The slow path of enqueue: wakes a sleeper or starts a thread, unless a
  // worker spins; pushes `job` (if any) under the lock, after starting a
  // thread that it may need, so that a failure to start leaves it unqueued.
  void wake_or_start(Job* job) {
    bool wake = false;
    {
      std::lock_guard lock(mutex_);
      if (job != nullptr && shutdown_) throw_shut_down();
      // A submit that pushed without the lock comes here with job null. A
      // worker may have taken its job meanwhile (it saw the push just as it
      // stopped spinning): then there is nothing to wake anyone for, and a
      // thread started now would only idle.
      const bool needed = job != nullptr || has_work();
      if (needed && !spinning_.load(std::memory_order_relaxed))
        wake = wake_sleeper_or_start_locked();
      if (job != nullptr) push(job);  // (cannot fail: shutdown_ is false under the lock)
    }
    if (wake) work_cv_.notify_one();  // outside the lock: the worker need not wait for it
  }

  // Under mutex_, for a queued job that no spinning worker will take:
  // claims a sleeper's wake-up (true: notify it once the lock is released),
  // or else starts a thread while the pool may grow. Throws only if the pool
  // has no thread yet and none could start (see start_thread_locked).
  bool wake_sleeper_or_start_locked() {
    if (sleepers_.load(std::memory_order_relaxed) > wakeups_.load(std::memory_order_relaxed)) {
      wakeups_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    if (threads_.size() < max_workers_ && !detached_ && !shutdown_) start_thread_locked();
    return false;
  }

  void start_thread_locked() {
    const std::size_t index = started_;
    try {
      threads_.emplace_back([self = shared_from_this(), index] {
        name_this_thread(self->prefix_ + "-" + std::to_string(index));
        self->work();
      });
      started_.store(index + 1, std::memory_order_release);
    } catch (...) {
      // Without any worker the job would never run: fail the submit. With
      // some, they will run it.
      if (threads_.empty()) throw;
    }
  }

  // Under mutex_: appends a list taken from incoming_ (newest first) to the FIFO.
  void append_reversed(Job* list) noexcept {
    if (list == nullptr || list == closed_marker()) return;
    Job* first = nullptr;
    Job* last = list;
    while (list != nullptr) {
      Job* next = list->next_job;
      list->next_job = first;
      first = list;
      list = next;
    }
    if (tail_ != nullptr) {
      tail_->next_job = first;
    } else {
      head_.store(first, std::memory_order_relaxed);
    }
    tail_ = last;
  }

  // Under mutex_: the oldest job, or null.
  Job* pop() noexcept {
    if (head_.load(std::memory_order_relaxed) == nullptr) {
      Job* in = incoming_.load(std::memory_order_relaxed);
      if (in == nullptr || in == closed_marker()) return nullptr;
      append_reversed(incoming_.exchange(nullptr, std::memory_order_acquire));
    }
    Job* job = head_.load(std::memory_order_relaxed);
    head_.store(job->next_job, std::memory_order_relaxed);
    if (job->next_job == nullptr) tail_ = nullptr;
    return job;
  }

  bool has_work() const noexcept {
    Job* in = incoming_.load(std::memory_order_seq_cst);
    return head_.load(std::memory_order_relaxed) != nullptr ||
           (in != nullptr && in != closed_marker());
  }

  void work() noexcept {
    current_worker_pool() = this;
    std::unique_lock lock(mutex_);
    for (;;) {
      Job* job = pop();
      if (job == nullptr) {
        if (shutdown_) return;
        if (kSpinFor.count() != 0 && !spinning_.load(std::memory_order_relaxed) && spin(lock))
          continue;
        // Announce the sleep, then look once more (see enqueue), all under
        // the lock, so a submit that takes the lock finds us waiting or gone.
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        if (has_work()) {
          sleepers_.fetch_sub(1, std::memory_order_relaxed);
          continue;
        }
        work_cv_.wait(
            lock, [this] { return wakeups_.load(std::memory_order_relaxed) != 0 || shutdown_; });
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
        if (wakeups_.load(std::memory_order_relaxed) != 0)
          wakeups_.fetch_sub(1, std::memory_order_relaxed);
        continue;
      }
      ++running_;
      // More queued and nobody to take it: pass the baton (see the file
      // comment) to a sleeper, or else start a thread while the pool may
      // grow. Submits that came while a worker spun left that to it; without
      // this, a job could wait behind busy workers below max_workers, as
      // concurrent.futures never lets one (each submit claims an idle thread
      // or starts one).
      // (It cannot throw here: this worker exists.)
      const bool wake = has_work() && !spinning_.load(std::memory_order_relaxed) &&
                        wake_sleeper_or_start_locked();
      lock.unlock();
      if (wake) work_cv_.notify_one();
      job->act(job, JobAction::run);
      lock.lock();
      --running_;
    }
  }

  // Called with the lock held and nothing queued: become the spinner, watch
  // the queue without the lock for a few microseconds, and return with the
  // lock held again; true if there is work (or the pool shut down).
  bool spin(std::unique_lock<std::mutex>& lock) {
    spinning_.store(true, std::memory_order_seq_cst);
    lock.unlock();
    const auto deadline = std::chrono::steady_clock::now() + kSpinFor;
    bool arrived = false;
    while (!arrived) {
      for (int i = 0; i < 8 && !arrived; ++i) {
        cpu_relax();
        arrived = incoming_.load(std::memory_order_relaxed) != nullptr ||
                  head_.load(std::memory_order_relaxed) != nullptr;
      }
      // Give the core away if anyone else wants it: the thread we wait for
      // (the submitting loop) may be waiting for a core itself.
      if (!arrived) std::this_thread::yield();
      if (std::chrono::steady_clock::now() >= deadline) break;
    }
    lock.lock();
    // See enqueue: cleared before looking, so a push we miss saw us stopped.
    spinning_.store(false, std::memory_order_seq_cst);
    return has_work() || shutdown_;
  }

  static void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  // Longer than the gap between two submits of a busy loop, far shorter than
  // a scheduler tick: an idle pool costs a few microseconds of CPU per burst.
  static constexpr std::chrono::microseconds kSpinFor{20};

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

  std::atomic<Job*> incoming_{nullptr};  // pushed to without the lock
  std::atomic<bool> spinning_{false};    // a worker watches incoming_ (written under mutex_)
  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::atomic<Job*> head_{nullptr};  // the FIFO: written under mutex_, peeked at by the spinner
  Job* tail_ = nullptr;
  std::size_t running_ = 0;
  std::atomic<std::size_t> sleepers_{0};  // written under mutex_, read by submits without it
  std::atomic<std::size_t> wakeups_{0};   // written under mutex_, read by submits without it
  std::atomic<std::size_t> started_{0};   // threads started (written under mutex_)
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
    unlink(*owner->loop_);
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
  Future<void> future =
      loop_->create_future<void>(SourceLocation::made_by("eddy::Loop::shutdown_default_executor"));
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
    node->unlink(*loop_);
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
