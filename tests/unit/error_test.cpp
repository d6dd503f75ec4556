// SPDX-License-Identifier: Apache-2.0
#include "stowage/base/error.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace stowage {
namespace {

TEST(ErrorTest, CodeNames) {
  EXPECT_EQ(to_string(ErrorCode::NotFound), "NotFound");
  EXPECT_EQ(to_string(ErrorCode::RangeNotSatisfiable), "RangeNotSatisfiable");
  EXPECT_EQ(to_string(ErrorCode::Internal), "Internal");
}

TEST(ErrorTest, MakeErrorAndToString) {
  Error e = make_error(ErrorCode::NotFound, "stat b/k: No such file or directory");
  EXPECT_EQ(e.code, ErrorCode::NotFound);
  EXPECT_EQ(e.http_status, 0);
  EXPECT_FALSE(e.retryable);
  EXPECT_EQ(e.to_string(), "NotFound: stat b/k: No such file or directory");
  e.provider_code = "NoSuchKey";
  e.request_id = "4F2A";
  EXPECT_EQ(e.to_string(),
            "NotFound: stat b/k: No such file or directory [NoSuchKey] (request 4F2A)");
}

TEST(ErrorTest, ValueThrowsErrorExceptionOnError) {
  Result<int> failed = make_error(ErrorCode::Timeout, "GetObject s3://b/k: timed out");
  ASSERT_FALSE(failed);
  try {
    (void)failed.value();
    FAIL() << "value() of an error must throw";
  } catch (const ErrorException& ex) {
    EXPECT_EQ(ex.error().code, ErrorCode::Timeout);
    EXPECT_STREQ(ex.what(), "Timeout: GetObject s3://b/k: timed out");
  }
  Result<int> ok = 42;
  EXPECT_EQ(ok.value(), 42);
  Status done;
  EXPECT_TRUE(done);
  EXPECT_NO_THROW(done.value());
}

Status fail_if(bool fail) {
  if (fail) return make_error(ErrorCode::InvalidArgument, "told to fail");
  return {};
}

Result<std::unique_ptr<int>> make_int(bool fail, int v) {
  if (fail) return make_error(ErrorCode::IoError, "no int");
  return std::make_unique<int>(v);  // move-only, as STOWAGE_ASSIGN_OR_RETURN must handle
}

Result<int> uses_try(bool fail, int* reached) {
  STOWAGE_TRY(fail_if(fail));
  *reached = 1;
  return 7;
}

Result<int> uses_assign(bool fail) {
  STOWAGE_ASSIGN_OR_RETURN(auto p, make_int(fail, 5));
  STOWAGE_ASSIGN_OR_RETURN(std::unique_ptr<int> q, make_int(false, 6));  // twice in one scope
  return *p + *q;
}

Status try_in_status(bool fail) {
  STOWAGE_TRY(make_int(fail, 1));  // STOWAGE_TRY accepts any Result, not only Status
  return {};
}

TEST(ErrorTest, TryMacroReturnsTheError) {
  int reached = 0;
  auto failed = uses_try(true, &reached);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(failed.error().message, "told to fail");
  EXPECT_EQ(reached, 0);
  EXPECT_EQ(uses_try(false, &reached).value(), 7);
  EXPECT_EQ(reached, 1);
  EXPECT_EQ(try_in_status(true).error().code, ErrorCode::IoError);
  EXPECT_TRUE(try_in_status(false));
}

TEST(ErrorTest, AssignOrReturnMacro) {
  auto failed = uses_assign(true);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, ErrorCode::IoError);
  EXPECT_EQ(failed.error().message, "no int");
  EXPECT_EQ(uses_assign(false).value(), 11);
}

}  // namespace
}  // namespace stowage
