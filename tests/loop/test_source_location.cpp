// Tests of eddy::SourceLocation (eddy/source_location.hpp): what a default
// argument captures, and the two kinds of location that are not a call site.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include <eddy/source_location.hpp>

namespace eddy {
namespace {

/// What an eddy call taking `where = SourceLocation::current()` receives.
SourceLocation where_called(SourceLocation where = SourceLocation::current()) {
  return where;
}

TEST(SourceLocation, DefaultArgumentCapturesTheCallersLineFileAndFunction) {
  const auto line = static_cast<std::uint_least32_t>(__LINE__ + 1);
  const SourceLocation at = where_called();
  EXPECT_EQ(at.line, line);
  EXPECT_NE(std::string(at.file).find("test_source_location.cpp"), std::string::npos) << at.file;
  // The test body, not where_called: the caller's function is recorded.
  EXPECT_EQ(std::string(at.function).find("where_called"), std::string::npos) << at.function;
  EXPECT_STRNE(at.function, "");
  EXPECT_TRUE(at.known());
}

TEST(SourceLocation, TwoCallsOnDifferentLinesDiffer) {
  const SourceLocation first = where_called();
  const SourceLocation second = where_called();
  EXPECT_EQ(second.line, first.line + 1);
  EXPECT_STREQ(first.file, second.file);
}

TEST(SourceLocation, DefaultConstructedIsUnknownAndEmpty) {
  const SourceLocation none;
  EXPECT_FALSE(none.known());
  EXPECT_STREQ(none.file, "");
  EXPECT_STREQ(none.function, "");
  EXPECT_EQ(none.line, 0u);
}

TEST(SourceLocation, MadeByNamesTheCallAndIsNotACallSite) {
  const SourceLocation by = SourceLocation::made_by("eddy::gather");
  EXPECT_FALSE(by.known());
  EXPECT_STREQ(by.function, "eddy::gather");
  EXPECT_STREQ(by.file, "");
  EXPECT_EQ(by.line, 0u);
}

TEST(SourceLocation, UsableInConstantExpressions) {
  constexpr SourceLocation by = SourceLocation::made_by("eddy::wait");
  static_assert(!by.known());
  constexpr SourceLocation here = SourceLocation::current();
  static_assert(here.known());
  EXPECT_GT(here.line, 0u);
}

}  // namespace
}  // namespace eddy
