// detail::SmallFunction / detail::Callback: move-only callables with a small
// inline buffer.
// Internal to eddy: include <eddy/loop.hpp> instead.
#pragma once

#include <cstddef>
#include <cstring>
#include <functional>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>

namespace eddy::detail {

template <class Signature>
class SmallFunction;

/// A type-erased, move-only `void(Args...)` callable. `Callback` (below) is
/// the loop's `void()` one.
///
/// Invariants:
/// - A callable of up to `inline_size` bytes (three pointers) whose move
///   constructor is noexcept is stored inline: constructing, moving and
///   destroying it never allocates. Larger ones live on the heap and the
///   buffer holds the pointer.
/// - `ops_ == nullptr` exactly when empty. A callable that is trivially
///   copyable is relocated with memcpy and has no destroy step
///   (`ops_->relocate == nullptr`, `ops_->destroy == nullptr`).
template <class... Args>
class SmallFunction<void(Args...)> {
 public:
  static constexpr std::size_t inline_size = 3 * sizeof(void*);

  SmallFunction() noexcept = default;

  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, SmallFunction> &&
           std::is_invocable_v<std::decay_t<F>&, Args...>)
      SmallFunction(F&& f) {  // NOLINT(google-explicit-constructor): callables convert implicitly
    using Fn = std::decay_t<F>;
    if constexpr (fits_inline<Fn>) {
      ::new (static_cast<void*>(storage_)) Fn(std::forward<F>(f));
    } else {
      Fn* heap = new Fn(std::forward<F>(f));
      std::memcpy(storage_, &heap, sizeof(heap));
    }
    ops_ = &ops_for<Fn>;
  }

  SmallFunction(SmallFunction&& other) noexcept { take(other); }
  SmallFunction& operator=(SmallFunction&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  SmallFunction(const SmallFunction&) = delete;
  SmallFunction& operator=(const SmallFunction&) = delete;
  ~SmallFunction() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  /// Calls the callable. Precondition: not empty.
  void operator()(Args... args) { ops_->invoke(storage_, std::forward<Args>(args)...); }

  /// Destroys the callable (and what it captured) now; leaves this empty.
  void reset() noexcept {
    if (ops_ != nullptr) {
      if (ops_->destroy != nullptr) ops_->destroy(storage_);
      ops_ = nullptr;
    }
  }

  /// True for callables that are stored without a heap allocation.
  template <class F>
  static constexpr bool stored_inline = sizeof(std::decay_t<F>) <= inline_size &&
                                        alignof(std::decay_t<F>) <= alignof(void*) &&
                                        std::is_nothrow_move_constructible_v<std::decay_t<F>>;

 private:
  struct Ops {
    void (*invoke)(void* storage, Args... args);
    void (*relocate)(void* to, void* from) noexcept;  // null: memcpy the buffer
    void (*destroy)(void* storage) noexcept;          // null: nothing to destroy
  };

  template <class Fn>
  static constexpr bool fits_inline = stored_inline<Fn>;

  template <class Fn>
  static constexpr bool trivial_inline = fits_inline<Fn>&& std::is_trivially_copyable_v<Fn>;

  template <class Fn>
  static Fn* target(void* storage) noexcept {
    if constexpr (fits_inline<Fn>) {
      return std::launder(static_cast<Fn*>(storage));
    } else {
      Fn* heap;
      std::memcpy(&heap, storage, sizeof(heap));
      return heap;
    }
  }

  template <class Fn>
  static void invoke_fn(void* storage, Args... args) {
    std::invoke(*target<Fn>(storage), std::forward<Args>(args)...);
  }
  template <class Fn>
  static void relocate_fn(void* to, void* from) noexcept {
    Fn* src = target<Fn>(from);
    ::new (to) Fn(std::move(*src));
    src->~Fn();
  }
  template <class Fn>
  static void destroy_fn(void* storage) noexcept {
    if constexpr (fits_inline<Fn>) {
      target<Fn>(storage)->~Fn();
    } else {
      delete target<Fn>(storage);
    }
  }

  template <class Fn>
  static constexpr Ops ops_for = {
      &invoke_fn<Fn>,
      (trivial_inline<Fn> || !fits_inline<Fn>) ? nullptr : &relocate_fn<Fn>,
      trivial_inline<Fn> ? nullptr : &destroy_fn<Fn>,
  };

  void take(SmallFunction& other) noexcept {
    ops_ = other.ops_;
    if (ops_ != nullptr) {
      if (ops_->relocate == nullptr) {
        std::memcpy(storage_, other.storage_, inline_size);
      } else {
        ops_->relocate(storage_, other.storage_);
      }
      other.ops_ = nullptr;
    }
  }

  alignas(void*) unsigned char storage_[inline_size];
  const Ops* ops_ = nullptr;
};

/// The loop's callback type: what call_soon and the timers store.
using Callback = SmallFunction<void()>;

/// Binds `f` to `args` (by value), as asyncio's call_soon(callback, *args) does.
template <class F, class... Args>
auto bind_callback(F&& f, Args&&... args) {
  if constexpr (sizeof...(Args) == 0) {
    return std::forward<F>(f);
  } else {
    return [f = std::forward<F>(f), tup = std::make_tuple(std::forward<Args>(args)...)]() mutable {
      std::apply(f, tup);
    };
  }
}

}  // namespace eddy::detail
