// wrap_future's side on the loop: the futures it made, held until their
// source completes (see detail::hold_wrapped in <eddy/concurrent_future.hpp>).
#include "eddy/concurrent_future.hpp"

#include <unordered_map>

namespace eddy::detail {
namespace {

/// The loop extension that holds one reference to each future wrap_future
/// made and whose source has not completed yet (only on the loop's thread).
/// While it holds any, it holds the loop too (LoopExtensions::add_hold): an
/// attached host's uv_run waits for the sources.
struct WrappedFutures : LoopExtension {
  explicit WrappedFutures(Loop& l) noexcept : loop(&l) {}
  ~WrappedFutures() override { let_go(); }
  /// The sources can no longer deliver (their posts find the loop closed):
  /// a future still pending ends cancelled, as the loop's tasks do.
  bool loop_closing() noexcept override { return let_go(); }

  bool let_go() noexcept {
    if (held.empty()) return false;
    // A future's last release may make more (its callbacks' captures go):
    // take the table out first.
    std::unordered_map<std::uint64_t, FutureCore*> gone;
    gone.swap(held);
    LoopExtensions::remove_hold(*loop);
    for (auto& [id, core] : gone) {
      if (core->state == FutureState::pending)
        end_orphaned(*core, "eddy::wrap_future: the loop closed before the source completed");
      release(core);
    }
    return true;
  }

  Loop* loop;
  std::unordered_map<std::uint64_t, FutureCore*> held;
  std::uint64_t next_id = 1;
};

WrappedFutures* find_wrapped(Loop& loop) noexcept {
  return static_cast<WrappedFutures*>(LoopExtensions::get(loop, ExtensionSlot::wrapped));
}

}  // namespace

std::uint64_t hold_wrapped(Loop& loop, FutureCore& future) {
  WrappedFutures* wrapped = find_wrapped(loop);
  if (wrapped == nullptr) {
    wrapped = &static_cast<WrappedFutures&>(LoopExtensions::set(
        loop, ExtensionSlot::wrapped, std::make_unique<WrappedFutures>(loop), "wrap_future"));
  }
  const std::uint64_t id = wrapped->next_id++;
  wrapped->held.emplace(id, &future);  // may throw: before the reference is taken
  add_ref(&future);
  if (wrapped->held.size() == 1) LoopExtensions::add_hold(loop);
  return id;
}

FutureCore* take_wrapped(Loop& loop, std::uint64_t id) noexcept {
  WrappedFutures* wrapped = find_wrapped(loop);
  if (wrapped == nullptr) return nullptr;
  auto it = wrapped->held.find(id);
  if (it == wrapped->held.end()) return nullptr;
  FutureCore* core = it->second;
  wrapped->held.erase(it);
  if (wrapped->held.empty()) LoopExtensions::remove_hold(loop);
  return core;
}

WrapTicket::~WrapTicket() {
  if (posted_ || id_ == 0) return;
  // The source went away uncompleted: the future can never follow it. The
  // loop ends it cancelled (asyncio's would stay pending forever) and lets
  // go of it.
  try {
    post([loop = loop_, id = id_] {
      if (FutureCore* core = take_wrapped(*loop, id)) {
        if (core->state == FutureState::pending) {
          end_orphaned(*core, "eddy::wrap_future: the source was destroyed before it completed");
        }
        release(core);
      }
    });
  } catch (...) {
    // Out of memory for the post: the loop lets go of it as it closes.
  }
}

}  // namespace eddy::detail
