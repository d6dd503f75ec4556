// SPDX-License-Identifier: Apache-2.0
#include "server/range.hpp"

#include <gtest/gtest.h>

namespace stowage::server {
namespace {

using Kind = RangeRequest::Kind;

TEST(RangeTest, ClosedRange) {
  const auto r = parse_range("bytes=10-19", 100);
  EXPECT_EQ(r.kind, Kind::Partial);
  EXPECT_EQ(r.offset, 10u);
  EXPECT_EQ(r.length, 10u);
}

TEST(RangeTest, OpenEndedRange) {
  const auto r = parse_range("bytes=90-", 100);
  EXPECT_EQ(r.kind, Kind::Partial);
  EXPECT_EQ(r.offset, 90u);
  EXPECT_EQ(r.length, 10u);
}

TEST(RangeTest, SuffixRangeIsTheLastBytes) {
  const auto r = parse_range("bytes=-30", 100);
  EXPECT_EQ(r.kind, Kind::Partial);
  EXPECT_EQ(r.offset, 70u);
  EXPECT_EQ(r.length, 30u);
}

TEST(RangeTest, SuffixLongerThanObjectIsWholeObject) {
  const auto r = parse_range("bytes=-500", 100);
  EXPECT_EQ(r.kind, Kind::Partial);
  EXPECT_EQ(r.offset, 0u);
  EXPECT_EQ(r.length, 100u);
}

TEST(RangeTest, EndPastSizeIsClamped) {
  const auto r = parse_range("bytes=50-1000", 100);
  EXPECT_EQ(r.kind, Kind::Partial);
  EXPECT_EQ(r.length, 50u);
}

TEST(RangeTest, StartAtOrPastEndIsUnsatisfiable) {
  EXPECT_EQ(parse_range("bytes=100-", 100).kind, Kind::Unsatisfiable);
  EXPECT_EQ(parse_range("bytes=100-200", 100).kind, Kind::Unsatisfiable);
  EXPECT_EQ(parse_range("bytes=-0", 100).kind, Kind::Unsatisfiable);
  EXPECT_EQ(parse_range("bytes=0-", 0).kind, Kind::Unsatisfiable);
}

TEST(RangeTest, InvalidOrMultipleRangesAreIgnored) {
  for (const char* header : {"", "bytes", "bytes=", "bytes=a-b", "bytes=5-2", "items=1-2",
                             "bytes=1-2,4-5", "bytes=--1", "bytes=99999999999999999999-"}) {
    EXPECT_EQ(parse_range(header, 100).kind, Kind::Full) << header;
  }
}

TEST(RangeTest, UnitIsCaseInsensitiveAndSpacesAreAllowed) {
  const auto r = parse_range(" Bytes= 1 - 2 ", 100);
  EXPECT_EQ(r.kind, Kind::Partial);
  EXPECT_EQ(r.offset, 1u);
  EXPECT_EQ(r.length, 2u);
}

}  // namespace
}  // namespace stowage::server
