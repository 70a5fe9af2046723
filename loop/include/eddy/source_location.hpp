// SourceLocation: where something was created, for diagnostics.
#pragma once

#include <cstdint>

namespace eddy {

/// A file/line/function triple captured at a call site, like
/// std::source_location (which clang 14 with libstdc++ 12 cannot provide).
/// Default arguments `SourceLocation where = SourceLocation::current()` capture
/// the caller's position.
struct SourceLocation {
  const char* file = "";
  const char* function = "";
  std::uint_least32_t line = 0;

  static constexpr SourceLocation current(const char* file = __builtin_FILE(),
                                          const char* function = __builtin_FUNCTION(),
                                          std::uint_least32_t line = __builtin_LINE()) noexcept {
    return SourceLocation{file, function, line};
  }
  /// Where an eddy call that takes no location (its parameters are a pack,
  /// as run_in_executor's and gather's are) made the object: `api` names
  /// the call, and known() is false. Reports then say "created by: <api>"
  /// rather than point into eddy's own headers.
  static constexpr SourceLocation made_by(const char* api) noexcept {
    return SourceLocation{"", api, 0};
  }
  /// False for a default-constructed location (unknown site) and made_by().
  constexpr bool known() const noexcept { return line != 0; }
};

}  // namespace eddy
