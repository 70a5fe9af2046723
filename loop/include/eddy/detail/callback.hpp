// detail::SmallFunction / detail::Callback: move-only callables with a small
// inline buffer.
// Internal to eddy: include <eddy/loop.hpp> instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>

#include "eddy/errors.hpp"

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
    construct(std::forward<F>(f));
  }

  /// Stores `f` in this (empty) object, without a temporary. Precondition: empty.
  template <class F>
  void assign(F&& f) {
    if constexpr (std::is_same_v<std::remove_cvref_t<F>, SmallFunction>) {
      take(f);
    } else {
      construct(std::forward<F>(f));
    }
  }

  /// Builds an `F` (one stored inline) from `args` in this (empty) object,
  /// in place: not even a temporary to move from. Precondition: empty.
  template <class F, class... A>
  void emplace(A&&... args) {
    static_assert(fits_inline<F>, "emplace is for callables stored inline");
    ::new (static_cast<void*>(storage_)) F(std::forward<A>(args)...);
    ops_ = &ops_for<F>;
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

  /// True if destroying this runs no code (empty, or a trivially copyable callable).
  bool trivially_destructible() const noexcept {
    return ops_ == nullptr || ops_->destroy == nullptr;
  }

  /// Calls the callable. Precondition: not empty.
  void operator()(Args... args) { ops_->invoke(storage_, std::forward<Args>(args)...); }

  /// Calls the callable, then destroys it and leaves this empty, also when
  /// the call throws: operator() and reset() in one indirect call.
  /// Precondition: not empty.
  void call_once(Args... args) {
    struct Clear {
      const Ops*& ops;
      ~Clear() { ops = nullptr; }
    } clear{ops_};
    ops_->invoke_once(storage_, std::forward<Args>(args)...);
  }

  /// Destroys the callable (and what it captured) now; leaves this empty.
  void reset() noexcept {
    if (ops_ != nullptr) {
      if (ops_->destroy != nullptr) ops_->destroy(storage_);
      ops_ = nullptr;
    }
  }

  /// How to call, move and destroy one erased callable; one static table per
  /// callable type. `payload_size` is the bytes its storage needs (its size
  /// rounded up to 8 when inline, one pointer when on the heap), so that
  /// containers may store it in less than the full inline buffer.
  struct Ops {
    void (*invoke)(void* storage, Args... args);
    // Calls, then destroys the callable, in one indirect call: for a queue
    // that runs each callable once and keeps a pointer-sized header (this
    // table's address) right before the storage; `header` is its address
    // (one addition less per call). If the call throws, the callable is left
    // alive (destroy it after handling the exception).
    void (*run)(void* header, Args... args);
    void (*invoke_once)(void* storage, Args... args);  // call_once: calls, then destroys
    void (*relocate)(void* to, void* from) noexcept;   // null: memcpy payload_size bytes
    void (*destroy)(void* storage) noexcept;           // null: nothing to destroy
    std::uint32_t payload_size;
  };

  /// Builds a callable from `f` in `payload` (at least payload_size_of<F>()
  /// bytes, 8-aligned) and returns its table.
  template <class F>
  static const Ops* construct_into(void* payload, F&& f) {
    using Fn = std::decay_t<F>;
    if constexpr (fits_inline<Fn>) {
      ::new (payload) Fn(std::forward<F>(f));
    } else {
      Fn* heap = new Fn(std::forward<F>(f));
      std::memcpy(payload, &heap, sizeof(heap));
    }
    return &ops_for<Fn>;
  }
  template <class F>
  static constexpr std::uint32_t payload_size_of() noexcept {
    return ops_for<std::decay_t<F>>.payload_size;
  }
  /// Moves a callable described by `ops` from one payload to another.
  static void relocate_payload(const Ops* ops, void* to, void* from) noexcept {
    if (ops->relocate == nullptr) {
      std::memcpy(to, from, ops->payload_size);
    } else {
      ops->relocate(to, from);
    }
  }
  /// The table of this callable (null when empty).
  const Ops* ops() const noexcept { return ops_; }
  /// The table of every callable of type F: ops() == table_of<F>() says
  /// that this one is an F, stored inline if fits_inline<F>.
  template <class F>
  static constexpr const Ops* table_of() noexcept {
    return &ops_for<std::decay_t<F>>;
  }
  /// The callable, if it is an F stored inline (else null).
  template <class F>
  F* target_if() noexcept {
    if constexpr (fits_inline<F>) {
      if (ops_ == table_of<F>()) return std::launder(reinterpret_cast<F*>(storage_));
    }
    return nullptr;
  }
  /// Moves the callable into `payload` (payload_size bytes) and leaves this empty.
  void release_into(void* payload) noexcept {
    relocate_payload(ops_, payload, storage_);
    ops_ = nullptr;
  }

  /// The reverse of release_into: takes the callable described by `ops`
  /// out of `payload`. Precondition: this is empty.
  void adopt(const Ops* ops, void* payload) noexcept {
    relocate_payload(ops, storage_, payload);
    ops_ = ops;
  }

  /// True for callables that are stored without a heap allocation.
  template <class F>
  static constexpr bool fits_inline = sizeof(std::decay_t<F>) <= inline_size &&
                                      alignof(std::decay_t<F>) <= alignof(void*) &&
                                      std::is_nothrow_move_constructible_v<std::decay_t<F>>;

 private:
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
  static void run_fn(void* header, Args... args) {
    void* storage = static_cast<unsigned char*>(header) + sizeof(const Ops*);
    std::invoke(*target<Fn>(storage), std::forward<Args>(args)...);
    if constexpr (!trivial_inline<Fn>) destroy_fn<Fn>(storage);  // not reached if the call throws
  }
  template <class Fn>
  static void invoke_once_fn(void* storage, Args... args) {
    if constexpr (trivial_inline<Fn>) {
      std::invoke(*target<Fn>(storage), std::forward<Args>(args)...);
    } else {
      struct Destroy {
        void* storage;
        ~Destroy() { destroy_fn<Fn>(storage); }
      } destroy{storage};
      std::invoke(*target<Fn>(storage), std::forward<Args>(args)...);
    }
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
  static constexpr std::uint32_t payload_bytes() noexcept {
    if constexpr (fits_inline<Fn>) {
      return static_cast<std::uint32_t>((sizeof(Fn) + 7) / 8 * 8);
    } else {
      return sizeof(void*);
    }
  }

  template <class Fn>
  static constexpr Ops ops_for = {
      &invoke_fn<Fn>,
      &run_fn<Fn>,
      &invoke_once_fn<Fn>,
      (trivial_inline<Fn> || !fits_inline<Fn>) ? nullptr : &relocate_fn<Fn>,
      trivial_inline<Fn> ? nullptr : &destroy_fn<Fn>,
      payload_bytes<Fn>(),
  };

  template <class F>
  void construct(F&& f) {
    ops_ = construct_into(storage_, std::forward<F>(f));
  }

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

template <class T>
inline constexpr bool is_std_function = false;
template <class Signature>
inline constexpr bool is_std_function<std::function<Signature>> = true;

/// Throws std::invalid_argument (naming `qualified_method`) if `f` is a
/// callable that can be empty and is: a null function or member pointer, an
/// empty std::function. Such a callable would otherwise be accepted and fail
/// only when called, far from the mistake (a null pointer: a crash). asyncio
/// checks the same in debug mode ("a callable object was expected"). For
/// other callables (lambdas...) this is nothing at all.
template <class F>
void check_callable(const F& f, const char* qualified_method) {
  using D = std::remove_cvref_t<F>;
  if constexpr (std::is_pointer_v<D> || std::is_member_pointer_v<D> || is_std_function<D>) {
    if (f == nullptr) throw_empty_callable(qualified_method);
  }
}

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
