// detail::ThreadsafeInbox: the engine behind call_soon_threadsafe's queue.
// See threadsafe_inbox.hpp for the invariants and the lock order.
#include "eddy/detail/threadsafe_inbox.hpp"

#include <uv.h>

#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "eddy/errors.hpp"

namespace eddy::detail {

void InboxLock::lock_contended() noexcept {
  // Spin a little: the holder keeps the lock for a few stores.
  for (int spin = 0; spin < 64; ++spin) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    int expected = 0;
    if (state_.load(std::memory_order_relaxed) == 0 &&
        state_.compare_exchange_weak(expected, 1, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return;
    }
  }
  // Then sleep. Marked 2 from here on, so that unlock() wakes a sleeper (a
  // thread that takes it this way keeps the mark: at worst one needless wake).
  while (state_.exchange(2, std::memory_order_acquire) != 0)
    state_.wait(2, std::memory_order_relaxed);
}

ThreadsafeInbox::~ThreadsafeInbox() {
  destroy_entries(entries_, bytes_);
}

void ThreadsafeInbox::destroy_entries(unsigned char* entries, std::size_t bytes) noexcept {
  for (std::size_t k = 0; k < bytes;) {
    unsigned char* entry = entries + k;
    const Header header = ReadyQueue::header_of(entry);
    k += ReadyQueue::size_of(header);
    if (ReadyQueue::is_marker(header)) continue;
    const Callback::Ops* ops = ReadyQueue::ops_of(header);
    if (ops->destroy != nullptr) ops->destroy(entry + ReadyQueue::kHeader);
  }
}

void ThreadsafeInbox::grow() {
  const std::size_t capacity = capacity_ == 0 ? 32 * 1024 : capacity_ * 2;
  // Not zero-filled: every entry is written before it is read.
  std::unique_ptr<std::uint64_t[]> bigger(new std::uint64_t[(capacity + kSlack) / 8]);
  auto* to = reinterpret_cast<unsigned char*>(bigger.get());
  if (!relocate_each_) {
    if (bytes_ != 0) std::memcpy(to, entries_, bytes_);
  } else {
    for (std::size_t k = 0; k < bytes_;)
      k += ReadyQueue::relocate_entry(to + k, entries_ + k);
  }
  storage_ = std::move(bigger);
  entries_ = to;
  capacity_ = capacity;
}

void ThreadsafeInbox::send_wake() noexcept {
  uv_async_send(wake_);
  senders_in_flight_.fetch_sub(1, std::memory_order_release);
}

template <class Write>
std::uint64_t ThreadsafeInbox::append(std::size_t bytes, Write&& write) {
  bool wake;
  std::uint64_t id;
  {
    std::lock_guard lock(mutex_);
    if (closed_) [[unlikely]]
      throw_loop_closed("call_soon_threadsafe");  // (unlocks on the way out)
    write(reserve(bytes));
    id = first_id_ + bytes_;
    wake = commit(bytes);
  }
  if (wake) send_wake();
  return id;
}

std::uint64_t ThreadsafeInbox::push_words(const Callback::Ops* ops, std::uint64_t w0,
                                          std::uint64_t w1, std::uint64_t w2,
                                          std::size_t entry_bytes) {
  return append(entry_bytes, [&](unsigned char* entry) {
    ReadyQueue::write_header(entry, ReadyQueue::header_for(ops, entry_bytes));
    // The whole payload, a fixed-size store: what lies past the entry's end
    // (in the next entry's place, or in the slack) is overwritten later.
    unsigned char* payload = entry + ReadyQueue::kHeader;
    std::memcpy(payload, &w0, sizeof w0);
    std::memcpy(payload + 8, &w1, sizeof w1);
    std::memcpy(payload + 16, &w2, sizeof w2);
  });
}

std::uint64_t ThreadsafeInbox::push(Callback& cb) {
  const Callback::Ops* ops = cb.ops();
  const std::size_t bytes = ops != nullptr ? ReadyQueue::entry_size(ops) : 16;
  return append(bytes, [&](unsigned char* entry) {
    if (ops != nullptr) {
      ReadyQueue::write_header(entry, ReadyQueue::header_for(ops, bytes));
      if (ops->relocate != nullptr) relocate_each_ = true;
      cb.release_into(entry + ReadyQueue::kHeader);  // a nothrow move, no user code
    } else {
      // An empty callable: queued as already cancelled.
      ReadyQueue::write_header(entry, ReadyQueue::marker_for(bytes));
      ++cancelled_;
    }
  });
}

std::size_t ThreadsafeInbox::drain_into(ReadyQueue& ready) noexcept {
  std::size_t bytes, markers;
  std::uint64_t first_id;
  bool relocate_each;
  {
    std::lock_guard lock(mutex_);
    bytes = bytes_;
    if (bytes == 0) return 0;
    first_id = first_id_;
    markers = cancelled_;
    relocate_each = relocate_each_;
    storage_.swap(spare_);
    std::swap(capacity_, spare_capacity_);
    entries_ = reinterpret_cast<unsigned char*>(storage_.get());
    first_id_ += bytes;
    bytes_ = 0;
    cancelled_ = 0;
    relocate_each_ = false;
  }
  // The entries now belong to this thread: copied out of the lock.
  const std::uint64_t first_offset = ready.append_block(
      reinterpret_cast<unsigned char*>(spare_.get()), bytes, markers, relocate_each);
  // Batches the ready queue has run past are forgotten (usually all of them).
  std::size_t passed = 0;
  while (passed < batches_.size() &&
         batches_[passed].first_offset + batches_[passed].bytes <= ready.head())
    ++passed;
  batches_.erase(batches_.begin(), batches_.begin() + static_cast<std::ptrdiff_t>(passed));
  batches_.push_back(Batch{first_id, first_offset, bytes});
  return bytes;
}

bool ThreadsafeInbox::cancel(std::uint64_t id, ReadyQueue& ready) noexcept {
  Callback victim;  // destroyed last, outside the lock
  {
    std::lock_guard lock(mutex_);
    if (queued(id)) {
      unsigned char* entry = slot(id);
      const Header header = ReadyQueue::header_of(entry);
      if (ReadyQueue::is_marker(header)) return false;
      victim.adopt(ReadyQueue::ops_of(header), entry + ReadyQueue::kHeader);
      ReadyQueue::write_header(entry, ReadyQueue::marker_for(ReadyQueue::size_of(header)));
      ++cancelled_;
      return true;
    }
  }
  if (const Batch* batch = batch_of(id))
    return ready.cancel(batch->first_offset + (id - batch->first_id));
  return false;
}

bool ThreadsafeInbox::is_cancelled(std::uint64_t id, const ReadyQueue& ready) const noexcept {
  {
    std::lock_guard lock(mutex_);
    if (queued(id)) return ReadyQueue::is_marker(ReadyQueue::header_of(slot(id)));
  }
  if (const Batch* batch = batch_of(id)) {
    return ready.is_cancelled(batch->first_offset + (id - batch->first_id));
  }
  return false;
}

bool ThreadsafeInbox::destroy_queued(bool close_if_empty) noexcept {
  std::unique_ptr<std::uint64_t[]> taken;
  std::size_t bytes;
  {
    std::lock_guard lock(mutex_);
    bytes = bytes_;
    if (bytes == 0) {
      if (close_if_empty) closed_ = true;
      return false;
    }
    taken = std::move(storage_);
    entries_ = nullptr;
    capacity_ = 0;
    first_id_ += bytes;
    bytes_ = 0;
    cancelled_ = 0;
    relocate_each_ = false;
  }
  // Outside the lock: a destructor may call call_soon_threadsafe.
  destroy_entries(reinterpret_cast<unsigned char*>(taken.get()), bytes);
  return true;
}

void ThreadsafeInbox::wait_for_senders() const noexcept {
  while (senders_in_flight_.load(std::memory_order_acquire) != 0)
    std::this_thread::yield();
}

}  // namespace eddy::detail
