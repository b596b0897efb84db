#include "base/size.h"

#include <gtest/gtest.h>

namespace ldm {

TEST(Size, ParsesUnitsAndBareBytes) {
  EXPECT_EQ(parse_size("256M").value(), 256 * MiB);
  EXPECT_EQ(parse_size("1G").value(), GiB);
  EXPECT_EQ(parse_size("2048k").value(), 2 * MiB);
  EXPECT_EQ(parse_size("4096").value(), 4096u);
  EXPECT_EQ(parse_size("1GB").value(), GiB);
}

TEST(Size, RefusesGarbageWithAMessageThatShowsTheForm) {
  for (const char* bad : {"", "M", "12Q", "1.5G", "-1G", "99999999999999999999G", "1GiB"}) {
    auto r = parse_size(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().text().find("256M"), std::string::npos);
  }
}

TEST(Size, FormatsTheShortestExactForm) {
  EXPECT_EQ(format_size(256 * MiB), "256M");
  EXPECT_EQ(format_size(GiB), "1G");
  EXPECT_EQ(format_size(1536 * MiB), "1536M");
  EXPECT_EQ(format_size(4096), "4K");
  EXPECT_EQ(format_size(1000), "1000");
  EXPECT_EQ(format_address(0x8000000), "0x8000000");
  EXPECT_EQ(format_address(0), "0x0");
}

}  // namespace ldm
