// Loop: the engine behind eddy/loop.hpp.
//
// How an eddy iteration maps onto a libuv iteration.
//
// When eddy runs the loop (run_forever, run_once), it drives libuv itself,
// one iteration at a time, in asyncio's _run_once order: poll, then run.
//
//   uv_run (one iteration):  [timers] [pending] [poll] [check] [closing]
//                             wake               drain
//   then eddy:                RUN
//
// uv_run polls with a zero timeout (UV_RUN_NOWAIT) when a pass is due, and
// blocks for the next event (UV_RUN_ONCE) otherwise. The idle handle rests
// meanwhile: idle_active_ alone says a pass is due.
//
// The peek. While libuv holds only eddy's own handles (an owned loop whose
// uv_loop() nobody asked for), a zero-timeout uv_run would only poll: the
// timer merely wakes eddy, whose pass reads its own heap, and the idle handle
// rests. So eddy polls libuv's epoll set itself (one epoll_wait, as uv_run
// makes) and calls uv_run only when something is ready; that skips libuv's
// two clock reads and its phases, about half of an iteration's cost. The set
// is level-triggered (libuv registers no EPOLLET), so the peek consumes
// nothing, and the constructor's first uv_run has registered every fd. A
// libuv handle that eddy itself starts later (a signal watcher, a socket)
// is registered only by the next uv_run, and a timer or idle handle is never
// seen by the peek: starting one must turn the peek off (peek_fd_ = -1).
//
// An attached loop driven by its host's uv_run runs its pass from the idle
// handle, which is active exactly while a pass is due:
//
//   libuv: [timers] [pending] [idle] [prepare] [poll] [check] [closing]
//   eddy:   wake     -        RUN     -         drain  -       -
//
// - RUN (pass; run_ready when timers, debug mode or a host are involved):
//   move due timers behind the callbacks already queued, then run exactly the
//   entries queued at that moment. Entries queued meanwhile wait for the next
//   pass.
// - wake (on_timer): the one libuv timer, armed for eddy's earliest deadline,
//   only marks a pass due; eddy's heap decides what is due.
// - drain (on_async): call_soon_threadsafe's inbox is swapped out in one
//   batch and appended to the ready queue.
#include "eddy/loop.hpp"

#include <uv.h>

#if defined(__linux__)
#include <sys/epoll.h>
#endif

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>

namespace eddy {

thread_local constinit Loop* detail::tls_running_loop = nullptr;

namespace {
using detail::tls_running_loop;

constexpr std::int64_t kNever = INT64_MAX;

void fail_uv(const char* what, int code) {
  throw RuntimeError(std::string("eddy::Loop: ") + what + " failed: " + uv_err_name(code) + " (" +
                     uv_strerror(code) + ")");
}

std::string describe_exception(const std::exception_ptr& e) {
  if (!e) return {};
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return detail::what_of(ex);
  } catch (const CancelledError& cancelled) {
    return cancelled.describe();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

bool debug_from_environment() {
  const char* v = std::getenv("EDDY_DEBUG");
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}
}  // namespace

// The libuv handles of one Loop. They live in their own allocation because
// libuv owns them until their close callbacks run, which (for an attached
// loop) may be after the Loop is gone: the block frees itself then.
struct detail::UvHandles {
  uv_idle_t idle;  // first: idle_close_cb finds the block from it
  uv_timer_t timer;
  uv_async_t async;
  Loop* loop;
  int open = 0;

  // The idle handle's data is the Loop itself (see Loop::on_idle); the others
  // point to this block.
  static UvHandles* of(uv_handle_t* h) { return static_cast<UvHandles*>(h->data); }
  static void timer_cb(uv_timer_t* h) { of(reinterpret_cast<uv_handle_t*>(h))->loop->on_timer(); }
  static void async_cb(uv_async_t* h) { of(reinterpret_cast<uv_handle_t*>(h))->loop->on_async(); }
  static void close_cb(uv_handle_t* h) { release(of(h)); }
  static void idle_close_cb(uv_handle_t* h) {
    release(reinterpret_cast<UvHandles*>(h));  // idle is the first member
  }
  static void release(UvHandles* self) {
    if (--self->open == 0) delete self;
  }
  bool owns(const uv_handle_t* h) const {
    return h == reinterpret_cast<const uv_handle_t*>(&idle) ||
           h == reinterpret_cast<const uv_handle_t*>(&timer) ||
           h == reinterpret_cast<const uv_handle_t*>(&async);
  }
  void close_all() {
    uv_close(reinterpret_cast<uv_handle_t*>(&idle), idle_close_cb);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), close_cb);
    uv_close(reinterpret_cast<uv_handle_t*>(&async), close_cb);
  }
};

// ------------------------------------------------------------------ life cycle

Loop::Loop() : Loop(LoopOptions{}) {}

Loop::Loop(LoopOptions options) : clock_(std::move(options.clock)) {
  virtual_clock_ = dynamic_cast<VirtualClock*>(clock_.get());
  virtual_time_ = virtual_clock_ != nullptr;
  debug_ = options.debug_mode.has_value() ? *options.debug_mode : debug_from_environment();

  // Allocated first: nothing is left to undo if this throws.
  auto handles = std::make_unique<detail::UvHandles>();
  if (options.host_loop != nullptr) {
    uv_ = options.host_loop;
    owner_thread_.store(detail::this_thread_token(), std::memory_order_relaxed);
  } else {
    auto owned = std::make_unique<uv_loop_t>();
    if (int rc = uv_loop_init(owned.get()); rc != 0) fail_uv("uv_loop_init", rc);
    uv_ = owned.release();
    owns_uv_ = true;
  }

  handles_ = handles.release();  // from here on, freed by the last close callback
  handles_->loop = this;
  uv_idle_init(uv_, &handles_->idle);
  uv_timer_init(uv_, &handles_->timer);
  int rc = uv_async_init(uv_, &handles_->async, &detail::UvHandles::async_cb);
  handles_->open = 3;
  handles_->idle.data = this;
  handles_->timer.data = handles_->async.data = handles_;
  inbox_.set_wake(&handles_->async);
  if (rc != 0) {
    // The async handle was never initialized: close only the other two.
    handles_->open = 2;
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->idle), &detail::UvHandles::idle_close_cb);
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->timer), &detail::UvHandles::close_cb);
    handles_ = nullptr;
    if (owns_uv_) {
      uv_run(uv_, UV_RUN_DEFAULT);
      uv_loop_close(uv_);
      delete uv_;
    }
    fail_uv("uv_async_init", rc);
  }
  // The async handle keeps a libuv loop alive only while eddy runs it
  // (run_forever) or while work on other threads is due back (add_hold): an
  // attached host's uv_run may end when eddy has no work.
  uv_unref(reinterpret_cast<uv_handle_t*>(&handles_->async));
  if (owns_uv_) {
    // One zero-timeout poll registers the async handle's fd with the backend,
    // so that backend_fd() wakes a foreign main loop for call_soon_threadsafe
    // even before the first run_once().
    uv_ref(reinterpret_cast<uv_handle_t*>(&handles_->async));
    uv_run(uv_, UV_RUN_NOWAIT);
    uv_unref(reinterpret_cast<uv_handle_t*>(&handles_->async));
#if defined(__linux__)
    // From now on, every fd of libuv's that matters is in the epoll set.
    peek_fd_.store(uv_backend_fd(uv_), std::memory_order_relaxed);
#endif
  }
}

Loop::~Loop() {
  if (running_) {
    std::fputs("eddy: a running Loop was destroyed\n", stderr);
    std::terminate();
  }
  if (lifeline_) {
    // Waits for a thread that is handing this loop a callback through it.
    std::lock_guard<std::mutex> guard(lifeline_->mutex);
    lifeline_->loop = nullptr;
  }
  if (closed_) return;
  try {
    close();
  } catch (const std::exception& e) {
    // An owned libuv loop that still has foreign handles cannot be closed;
    // eddy's own part is released and the uv_loop_t is left to those handles.
    std::fprintf(stderr, "eddy: ~Loop: %s; the uv_loop_t is leaked\n", e.what());
    owns_uv_ = false;
    closed_ = true;
    release_everything();
  }
}

std::shared_ptr<detail::LoopLifeline> detail::LoopExtensions::lifeline(Loop& loop) {
  if (!loop.lifeline_) {
    loop.lifeline_ = std::make_shared<LoopLifeline>();
    loop.lifeline_->loop = &loop;
  }
  return loop.lifeline_;
}

void Loop::close() {
  if (running_) throw LoopRunningError("eddy::Loop::close: cannot close a running loop");
  // Also when a destructor run by this close() calls it again (asyncio marks
  // the loop closed before it clears its queues): the outer call finishes.
  if (closed_ || closing_) return;
  if (owns_uv_) {
    // Closing a libuv loop with live handles is an error, not a leak: refuse
    // before anything is destroyed, so the caller can close them and retry.
    struct Count {
      const detail::UvHandles* ours;
      int open = 0;
    } count{handles_};
    uv_walk(
        uv_,
        [](uv_handle_t* h, void* arg) {
          auto* c = static_cast<Count*>(arg);
          if (!c->ours->owns(h) && !uv_is_closing(h)) ++c->open;
        },
        &count);
    if (count.open != 0) {
      throw RuntimeError("eddy::Loop::close: " + std::to_string(count.open) +
                         " libuv handle(s) not created by eddy are still open on the loop's "
                         "uv_loop_t; close them first");
    }
  }
  release_everything();
}

namespace detail {
LoopExtension& LoopExtensions::set(Loop& loop, ExtensionSlot slot,
                                   std::unique_ptr<LoopExtension> ext, const char* method) {
  if (loop.closed_) throw_loop_closed(method);
  auto& place = loop.extensions_[static_cast<std::size_t>(slot)];
  if (place) throw RuntimeError("eddy::Loop: extension slot already in use");
  place = std::move(ext);
  return *place;
}

void LoopExtensions::add_hold(Loop& loop) noexcept {
  if (loop.holds_++ == 0 && loop.handles_ != nullptr && !loop.driving_)
    uv_ref(reinterpret_cast<uv_handle_t*>(&loop.handles_->async));
}

void LoopExtensions::remove_hold(Loop& loop) noexcept {
  if (--loop.holds_ == 0 && loop.handles_ != nullptr && !loop.driving_)
    uv_unref(reinterpret_cast<uv_handle_t*>(&loop.handles_->async));
}
}  // namespace detail

void Loop::release_everything() noexcept {
  closing_ = true;
  // Destroy everything queued. A destructor may schedule again (it is not an
  // error yet), so repeat until the ready queue, the timers and the inbox are
  // all empty; then close the inbox so that other threads get LoopClosedError.
  for (;;) {
    bool destroyed = false;
    for (auto& ext : extensions_) {
      if (ext && ext->loop_closing()) destroyed = true;
    }
    if (!ready_.empty()) {
      ready_.clear();
      destroyed = true;
    }
    if (timers_.slots_in_use() != 0) {
      timers_.clear();
      destroyed = true;
    }
    // Closes the inbox once a round destroyed nothing anywhere.
    if (!inbox_.destroy_queued(/*close_if_empty=*/!destroyed) && !destroyed) break;
  }
  // A producer that passed the closed check before us may still be inside
  // uv_async_send: wait for it before closing the handle.
  inbox_.wait_for_senders();
  closed_ = true;
  owner_thread_.store(0, std::memory_order_relaxed);  // scheduling calls take the slow path: closed
  if (idle_active_) uv_idle_stop(&handles_->idle);
  idle_active_ = false;
  ready_.set_fast_path(false);
  handles_->close_all();
  handles_ = nullptr;
  peek_fd_.store(-1, std::memory_order_relaxed);
  if (owns_uv_) {
    uv_run(uv_, UV_RUN_DEFAULT);  // runs the close callbacks
    if (uv_loop_close(uv_) == 0) {
      delete uv_;
    } else {
      std::fputs("eddy: the owned uv_loop_t still has handles; it is leaked\n", stderr);
    }
    owns_uv_ = false;
    uv_ = nullptr;
  }
}

// ------------------------------------------------------------------ time

std::int64_t Loop::now_ns() const noexcept {
  if (clock_) return clock_->now().time_since_epoch().count();
  // uv_hrtime()'s clock (CLOCK_MONOTONIC), read without its wrapper.
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t Loop::seconds_to_ns(const char* method, double seconds) {
  if (!std::isfinite(seconds)) detail::throw_invalid_delay(method, seconds);
  if (seconds >= kMaxSeconds) return kNever;
  if (seconds <= -kMaxSeconds) return -kNever;
  return static_cast<std::int64_t>(std::llround(seconds * 1e9));
}

// ------------------------------------------------------------------ scheduling

// The ready queue's fast path is open exactly while a pass is due
// (idle_active_): a push that finds it closed takes the slow path, where
// call_soon makes one due (and starts the idle handle, unless eddy drives
// libuv).
void Loop::start_idle() noexcept {
  if (!driving_) {
    uv_idle_start(&handles_->idle, &Loop::on_idle);
  } else if (in_uv_run_) {
    // A pass fell due inside libuv's iteration (a timer woke, a libuv
    // callback called call_soon): its poll must not block. uv_stop makes it
    // poll with a zero timeout, and uv_run returns (and clears the flag).
    uv_stop(uv_);
  }
  idle_active_ = true;
  ready_.set_fast_path(true);
}

void Loop::set_idle(bool active) noexcept {
  if (active) {
    start_idle();
  } else {
    if (!driving_) uv_idle_stop(&handles_->idle);
    idle_active_ = false;
    ready_.set_fast_path(false);
  }
}

void Loop::arm_timer(std::int64_t deadline) noexcept {
  // Compared before subtracting: deadline - now overflows int64 for a deadline
  // over 292 years away either way (call_at(time_point::min()), a delay of
  // -1e300), and a deadline in the past, however far, is due now (0 ms). A
  // future one's distance always fits in uint64.
  const std::int64_t now = now_ns();
  std::uint64_t ms = 0;
  if (deadline > now) {
    const std::uint64_t remaining =
        static_cast<std::uint64_t>(deadline) - static_cast<std::uint64_t>(now);
    ms = remaining / 1'000'000 + (remaining % 1'000'000 != 0 ? 1 : 0);
  }
  uv_update_time(uv_);  // libuv counts from its cached time; refresh it first
  uv_timer_start(&handles_->timer, &detail::UvHandles::timer_cb, ms, 0);
  armed_deadline_ = deadline;
  general_pass_ = true;
}

void Loop::wake_for_timer(std::int64_t when) noexcept {
  if (virtual_time_) {
    if (!idle_active_) start_idle();
  } else if (when < armed_deadline_) {
    arm_timer(when);
  }
}

void Loop::on_async() noexcept {
  // The whole inbox joins the ready queue as one block. Then a pass is due
  // (which opens the ready queue's fast path), if it was not already.
  if (inbox_.drain_into(ready_) != 0 && !idle_active_) start_idle();
}

void Loop::on_timer() noexcept {
  armed_deadline_ = kNever;
  if (!idle_active_) start_idle();
}

// ------------------------------------------------------------------ handles

bool Handle::cancel() {
  if (loop_ == nullptr || cancelled_) return false;
  loop_->check_thread("Handle::cancel");
  cancelled_ = true;
  return loop_->cancel_handle(*this);
}

bool Handle::cancelled() const noexcept {
  return cancelled_ || (loop_ != nullptr && loop_->handle_cancelled(*this));
}

bool Loop::cancel_handle(const Handle& h) noexcept {
  if (closed_) return false;
  switch (h.kind_) {
    case Handle::Kind::ready:
      return ready_.cancel(h.id_);
    case Handle::Kind::threadsafe:
      return inbox_.cancel(h.id_, ready_);
    case Handle::Kind::timer: {
      bool cancelled = timers_.cancel(
          {static_cast<std::uint32_t>(h.id_), static_cast<std::uint32_t>(h.id_ >> 32)});
      if (cancelled && timers_.compaction_due()) {
        // Inside a pass, the next pass compacts first (as asyncio's _run_once
        // cleans its heap): a burst of cancels costs one compaction. Outside
        // one, no pass may come soon: compact now.
        if (ready_.running()) {
          general_pass_ = true;
        } else {
          timers_.compact();
        }
      }
      if (cancelled && !ready_.running() && timers_.empty() && armed_deadline_ != kNever) {
        // The last timer is gone: an armed libuv timer would keep uv_run (a
        // host's, for an attached loop) alive until the cancelled deadline.
        // Inside a pass, end_pass re-arms (or stops) the timer.
        uv_timer_stop(&handles_->timer);
        armed_deadline_ = kNever;
        update_general_pass();
      }
      return cancelled;
    }
    case Handle::Kind::none:
      break;
  }
  return false;
}

bool Loop::handle_cancelled(const Handle& h) const noexcept {
  if (closed_) return false;
  switch (h.kind_) {
    case Handle::Kind::ready:
      return ready_.is_cancelled(h.id_);
    case Handle::Kind::threadsafe:
      // A cancelled entry stays in place as a marker, in the inbox as in ready_.
      return inbox_.is_cancelled(h.id_, ready_);
    case Handle::Kind::timer:
      return timers_.is_cancelled(
          {static_cast<std::uint32_t>(h.id_), static_cast<std::uint32_t>(h.id_ >> 32)});
    default:
      return false;
  }
}

// ------------------------------------------------------------------ running

void Loop::check_thread_in(const char* qualified_method) const {
  if (owner_thread_.load(std::memory_order_relaxed) != 0) {
    detail::throw_wrong_thread_in(qualified_method);
  }
}

void Loop::check_usable_slow(const char* method) const {
  if (closed_) detail::throw_loop_closed(method);
  if (owner_thread_.load(std::memory_order_relaxed) != 0) detail::throw_wrong_thread(method);
}

void Loop::check_can_run(const char* method) const {
  if (closed_ || closing_) detail::throw_loop_closed(method);
  if (running_) {
    throw LoopRunningError(std::string("eddy::Loop::") + method + ": this loop is already running");
  }
  if (tls_running_loop != nullptr) {
    throw LoopRunningError(std::string("eddy::Loop::") + method +
                           ": another loop is already running on this thread");
  }
}

void Loop::begin_run(const char* method) {
  check_usable(method);
  check_can_run(method);
  running_ = true;
  tls_running_loop = this;
  if (owns_uv_) owner_thread_.store(detail::this_thread_token(), std::memory_order_relaxed);
  update_general_pass();
}

void Loop::end_run() noexcept {
  running_ = false;
  tls_running_loop = nullptr;
  if (owns_uv_) owner_thread_.store(0, std::memory_order_relaxed);
  general_pass_ = true;
}

// One pass, inlined where eddy drives libuv (run_forever, run_once). The
// common case (no timers, no debug mode) runs here; anything else takes
// run_ready's general path.
[[gnu::always_inline]] inline void Loop::pass() {
  if (general_pass_) [[unlikely]] {
    run_ready();
    return;
  }
  ++stats_.iterations;
  // Run exactly the entries queued now, in place; what they schedule waits for
  // the next pass.
  ready_.run_until(ready_.end_offset(), [this](detail::ReadyQueue::Entry entry) {
    try {
      entry.run();
    } catch (...) {
      callback_failed();
    }
  });
  // While callbacks are left a pass stays due, and a timer scheduled
  // meanwhile (general_pass_ set) is seen to by the next pass, a general one:
  // the loop cannot block before it. Otherwise the pass decides now.
  if (ready_.empty()) [[unlikely]] {
    if (general_pass_) {
      end_pass();
    } else {
      set_idle(false);
    }
  }
}

[[gnu::always_inline]] inline void Loop::poll(int mode) noexcept {
#if defined(__linux__)
  if (mode == UV_RUN_NOWAIT) {
    // A zero-timeout poll of a loop where libuv holds only eddy's handles:
    // libuv's iteration would do nothing but poll (eddy's heap decides which
    // timers are due, and the idle handle rests while eddy drives), so eddy
    // polls libuv's epoll set itself. The set is level-triggered: peeking
    // leaves a ready event for uv_run, which then runs as usual.
    const int fd = peek_fd_.load(std::memory_order_relaxed);
    if (fd >= 0) {
      epoll_event ready;
      if (epoll_wait(fd, &ready, 1, 0) == 0) return;
    }
  }
#endif
  in_uv_run_ = true;
  uv_run(uv_, static_cast<uv_run_mode>(mode));
  in_uv_run_ = false;
}

// While eddy drives libuv (run_forever, run_once), the idle handle rests and
// idle_active_ alone says a pass is due; when it stops, the handle follows
// the flag again, for a host's uv_run or a foreign main loop's backend_timeout.
class Loop::Driving {
 public:
  // After begin_run. `forever`: run_forever, whose end clears stop().
  Driving(Loop& loop, bool forever) noexcept : loop_(loop), forever_(forever) {
    async_ = reinterpret_cast<uv_handle_t*>(&loop_.handles_->async);
    // Referenced, the async handle keeps libuv from skipping the poll when
    // nothing else is active: call_soon_threadsafe callbacks must be drained.
    uv_ref(async_);
    loop_.driving_ = true;
    loop_.running_forever_ = forever;
    if (loop_.idle_active_) uv_idle_stop(&loop_.handles_->idle);
  }
  Driving(const Driving&) = delete;
  Driving& operator=(const Driving&) = delete;
  ~Driving() {
    loop_.driving_ = false;
    loop_.running_forever_ = false;
    if (loop_.idle_active_) uv_idle_start(&loop_.handles_->idle, &Loop::on_idle);
    if (loop_.holds_ == 0) uv_unref(async_);
    if (forever_) loop_.stopping_ = false;
    loop_.end_run();
  }

 private:
  Loop& loop_;
  bool forever_;
  uv_handle_t* async_;
};

void Loop::run_forever() {
  begin_run("run_forever");
  Driving driving(*this, /*forever=*/true);
  if (stopping_) {
    // stop() came first: exactly one iteration, which waits for nothing.
    poll(UV_RUN_NOWAIT);
    prepare_step();
    if (idle_active_) pass();
    return;
  }
  do {
    poll(idle_active_ ? UV_RUN_NOWAIT : UV_RUN_ONCE);
    if (idle_active_) pass();
  } while (!stopping_);
}

void Loop::run_once() {
  begin_run("run_once");
  Driving driving(*this, /*forever=*/false);
  poll(UV_RUN_NOWAIT);
  prepare_step();
  if (idle_active_) pass();
}

void Loop::prepare_step() noexcept {
  // A single non-blocking iteration (run_once, or run_forever after stop())
  // runs eddy's pass only if one is due: make it so when timers are due (or,
  // on a virtual clock, pending, for run_once: the pass jumps to the next
  // deadline), since libuv's coarse timer may not have fired yet. A stopped
  // loop's iteration waits for nothing, as asyncio's (timeout 0 while
  // _stopping): only timers already due.
  if (idle_active_ || timers_.empty()) return;
  if (may_jump_time() || timers_.next_deadline() <= now_ns()) start_idle();
}

void Loop::stop() {
  check_thread("stop");
  stopping_ = true;
}

// The idle handle is active only while a host's uv_run drives the loop
// (eddy's own runs rest it, see Driving): not running_, so general_pass_ is
// set, and the pass is run_ready's.
void Loop::on_idle(uv_idle_t* idle) {
  static_cast<Loop*>(idle->data)->run_ready();
}

void Loop::callback_failed() noexcept {
  report_callback_error(ready_.current_offset());
  ready_.current().destroy();  // after the report
}

void Loop::run_ready() {
  // An attached loop is driven by its host's uv_run: the pass itself counts as
  // running, for get_running_loop() and for the thread rules.
  const bool host_driven = !running_;
  Loop* previous_running = nullptr;
  if (host_driven) {
    previous_running = tls_running_loop;
    running_ = true;
    tls_running_loop = this;
  }
  ++stats_.iterations;

  timers_.compact_if_due();  // cancels of the last pass
  if (!timers_.empty()) {
    std::int64_t now = now_ns();
    if (ready_.empty() && may_jump_time()) {
      std::int64_t next = timers_.next_deadline();
      if (next > now && next != kNever) {
        virtual_clock_->advance_to(Clock::time_point{Clock::duration{next}});
        now = next;
      }
    }
    try {
      timers_.pop_due(now, [this](std::uint32_t slot) {
        ready_.emplace([loop = this, slot] { loop->fire_timer(slot); });
      });
    } catch (...) {
      // Out of memory growing the ready queue: the timers not handed out
      // are still scheduled, and the next pass (due at once) tries again.
      report_timers_not_queued();
    }
  }

  // Run exactly the entries queued now, in place; what they schedule waits for
  // the next pass.
  const std::uint64_t end = ready_.end_offset();
  if (debug_) {
    run_batch_timed(end);
  } else {
    ready_.run_until(end, [this](detail::ReadyQueue::Entry entry) {
      try {
        entry.run();
      } catch (...) {
        callback_failed();
      }
    });
  }

  if (host_driven) {
    running_ = false;
    tls_running_loop = previous_running;
  }
  end_pass();
}

// After a general pass, or a short one during which a timer was scheduled:
// whether a pass is due, and the libuv timer, follow what is left.
void Loop::end_pass() noexcept {
  if (timers_.empty() && armed_deadline_ == kNever) {
    // No timers: only whether a pass is due can change.
    bool want_idle = !ready_.empty();
    if (want_idle != idle_active_) set_idle(want_idle);
  } else {
    update_idle_and_timer();
  }
  update_general_pass();
}

struct Loop::Subject {
  detail::LoopExtension* extension = nullptr;
  void* token = nullptr;  // null: no extension knows the callback

  Subject() = default;
  Subject(const Subject&) = delete;
  Subject& operator=(const Subject&) = delete;
  ~Subject() {
    if (token != nullptr) extension->release_subject(token);
  }
};

void Loop::run_batch_timed(std::uint64_t end) {
  // Debug mode: the same pass, timing each callback.
  ready_.run_until(end, [this](detail::ReadyQueue::Entry entry) {
    if (entry.cancelled()) return;
    const std::uint64_t at = ready_.current_offset();
    // Decided per callback, before it runs, as asyncio's _run_once: after
    // set_debug(false) the rest of the pass runs untimed.
    const bool timed = debug_;
    // Released as this entry's turn ends, after entry.destroy() below.
    Subject subject;
    if (timed) {
      for (auto& ext : extensions_) {
        if (!ext) continue;
        subject.token = ext->subject_of(entry.table(), entry.captures());
        if (subject.token != nullptr) {
          subject.extension = ext.get();
          break;
        }
      }
    }
    std::int64_t start = now_ns();
    timer_ran_ = false;
    try {
      entry.invoke();
    } catch (...) {
      report_callback_error(at);
    }
    std::int64_t took = now_ns() - start;
    if (timed && took >= slow_ns_) {
      firing_timer_ = timer_ran_;
      report_slow_callback(at, took, subject);
      firing_timer_ = false;
    }
    entry.destroy();  // after the reports, as without debug mode
  });
}

void Loop::report_callback_error(std::uint64_t seq) noexcept {
  ++stats_.callback_errors;
  struct ResetTimerFlag {
    bool& flag;
    ~ResetTimerFlag() { flag = false; }
  } reset{firing_timer_};  // fire_timer leaves it set when the timer's callback throws
  try {
    ExceptionContext context;
    context.handle = describe_callback(seq);
    // asyncio's wording for every kind of handle ("Exception in callback
    // #12", "... #12 (a timer)"); context.handle says which too.
    context.message =
        "Exception in callback #" + std::to_string(seq) + (firing_timer_ ? " (a timer)" : "");
    context.exception = std::current_exception();
    call_exception_handler(context);
  } catch (...) {
    std::fputs("eddy: a callback threw and the error could not be described (out of memory)\n",
               stderr);
  }
  failed_timer_callback_ = {};  // a timer's callback that threw: after the report (see fire_timer)
}

void Loop::report_timers_not_queued() noexcept {
  try {
    ExceptionContext context;
    context.message = "Due timers could not be queued (out of memory); they run on a later pass";
    context.exception = std::current_exception();
    call_exception_handler(context);
  } catch (...) {
    std::fputs("eddy: due timers could not be queued (out of memory)\n", stderr);
  }
}

void Loop::fire_timer(std::uint32_t slot) {
  detail::Callback cb = timers_.take_ready(slot);
  if (!cb) {
    // Cancelled after it fell due: nothing ran. stats_.callbacks_run holds such
    // corrections to ready_.runs() (unsigned: the sum wraps back).
    --stats_.callbacks_run;
    return;
  }
  firing_timer_ = true;
  timer_ran_ = true;  // for run_batch_timed's report
  try {
    cb();
  } catch (...) {
    // Kept until the exception handler has run, as a ready callback stays in
    // its entry (and asyncio's context["handle"] holds the timer's callback).
    failed_timer_callback_ = std::move(cb);
    throw;
  }
  firing_timer_ = false;
}

std::string Loop::describe_callback(std::uint64_t seq) const {
  return std::string(firing_timer_ ? "timer callback" : "callback") + " #" + std::to_string(seq);
}

void Loop::report_slow_callback(std::uint64_t seq, std::int64_t took_ns,
                                const Subject& subject) noexcept {
  try {
    char text[96];
    std::snprintf(text, sizeof text, " took %.3f seconds (slow_callback_duration is %.3f)",
                  static_cast<double>(took_ns) * 1e-9, slow_callback_duration());
    ExceptionContext context;
    context.handle = describe_callback(seq);
    if (subject.token != nullptr) subject.extension->describe_subject(subject.token, context);
    // asyncio names the Task whose step the handle ran, else the handle.
    context.message =
        "Executing " + (context.future.empty() ? context.handle : context.future) + text;
    call_exception_handler(context);
  } catch (...) {
    // Out of memory while describing a slow callback: nothing useful to do.
  }
}

void Loop::update_idle_and_timer() noexcept {
  // stopping_ needs no pass: run_forever checks it after each pass; outside
  // it (a host driving an attached loop), stop() concerns only the next
  // run_forever.
  bool want_idle = !ready_.empty();
  if (!timers_.empty()) {
    std::int64_t next = timers_.next_deadline();
    if (virtual_time_) {
      want_idle = want_idle || next != kNever;
    } else if (next == kNever) {
      // Only timers that never fire: nothing to wake up for (an attached
      // host's uv_run may return).
      if (armed_deadline_ != kNever) {
        uv_timer_stop(&handles_->timer);
        armed_deadline_ = kNever;
      }
    } else if (next <= now_ns()) {
      want_idle = true;  // already due: the next pass takes it, no need to sleep
    } else if (next != armed_deadline_) {
      arm_timer(next);
    }
  } else if (armed_deadline_ != kNever) {
    uv_timer_stop(&handles_->timer);
    armed_deadline_ = kNever;
  }
  if (want_idle != idle_active_) set_idle(want_idle);
}

// ------------------------------------------------------------------ embedding

int Loop::backend_fd() const noexcept {
  return closed_ ? -1 : uv_backend_fd(uv_);
}

int Loop::backend_timeout() const noexcept {
  if (closed_) return -1;
  if (!ready_.empty()) return 0;  // (stop() concerns run_forever only)
  // libuv answers 0 for a loop with no active handle ("uv_run would return");
  // for a foreign main loop that means "wait for the fd" (a threadsafe call).
  // Only for an owned loop, whose async fd the constructor registered.
  if (owns_uv_ && uv_loop_alive(uv_) == 0) return -1;
  // libuv counts from its cached time, which only uv_run refreshes, and
  // run_once's peek skips uv_run when nothing is ready: without this, the
  // host would sleep for the whole delay again, however long it worked since.
  uv_update_time(uv_);
  return uv_backend_timeout(uv_);
}

// ------------------------------------------------------------------ errors

void Loop::set_exception_handler(ExceptionHandler handler) {
  check_thread("set_exception_handler");
  exception_handler_ = handler ? std::make_shared<ExceptionHandler>(std::move(handler)) : nullptr;
}

Loop::ExceptionHandler Loop::get_exception_handler() const {
  check_thread("get_exception_handler");
  return exception_handler_ ? *exception_handler_ : ExceptionHandler();
}

void Loop::call_exception_handler(const ExceptionContext& context) noexcept {
  // Held for the call: a handler that replaces itself (set_exception_handler
  // from inside it) must not be destroyed while it runs.
  const std::shared_ptr<const ExceptionHandler> handler = exception_handler_;
  if (!handler) {
    default_exception_handler(context);
    return;
  }
  try {
    (*handler)(*this, context);
  } catch (...) {
    try {
      ExceptionContext failure;
      failure.message = "Unhandled error in exception handler";
      failure.exception = std::current_exception();
      failure.handle = context.handle;
      failure.future = context.future;
      failure.source = context.source;
      default_exception_handler(failure);
    } catch (...) {
    }
    default_exception_handler(context);
  }
}

void Loop::default_exception_handler(const ExceptionContext& context) noexcept {
  try {
    // asyncio's fallback for a context without a message.
    std::string text =
        "eddy: " +
        (context.message.empty() ? "Unhandled exception in event loop" : context.message) + "\n";
    if (context.exception) text += "  exception: " + describe_exception(context.exception) + "\n";
    if (!context.handle.empty()) text += "  handle: " + context.handle + "\n";
    if (!context.future.empty()) text += "  future: " + context.future + "\n";
    if (context.source.known()) {
      text += std::string("  created at: ") + context.source.file + ":" +
              std::to_string(context.source.line) + " (" + context.source.function + ")\n";
    } else if (*context.source.function != '\0') {
      text += std::string("  created by: ") + context.source.function + "\n";
    }
    std::fwrite(text.data(), 1, text.size(), stderr);  // one write: lines stay together
  } catch (...) {
    std::fputs("eddy: an error occurred and could not be described (out of memory)\n", stderr);
  }
}

// ------------------------------------------------------------------ debug, stats

void Loop::set_slow_callback_duration(double seconds) {
  check_thread("set_slow_callback_duration");
  if (!(seconds >= 0) || !std::isfinite(seconds)) {
    throw std::invalid_argument(
        "eddy::Loop::set_slow_callback_duration: the duration must be finite and >= 0");
  }
  // Saturated: 1e10 seconds does not fit in int64 nanoseconds, and its
  // conversion (undefined) came out negative, which reported every callback.
  // Beyond 292 years nothing is ever reported slow, as in asyncio.
  slow_ns_ = seconds >= kMaxSeconds ? kNever : static_cast<std::int64_t>(seconds * 1e9);
  slow_seconds_ = seconds;
}

LoopStats Loop::stats() const noexcept {
  LoopStats s = stats_;
  s.callbacks_run += ready_.runs();
  s.ready = ready_.size();
  s.timers = timers_.size();
  s.bytes_per_timer = detail::TimerQueue::bytes_per_timer();
  return s;
}

// ------------------------------------------------------------------ running loop

Loop& get_running_loop() {
  if (tls_running_loop == nullptr)
    throw NoRunningLoopError("eddy::get_running_loop: no running event loop");
  return *tls_running_loop;
}

}  // namespace eddy
