// Golden-file comparison: LDM_UPDATE_GOLDEN=1 rewrites the files instead.
#pragma once

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace ldm::testing {

inline void expect_golden(const std::string& name, const std::string& actual) {
  std::string path = std::string(LDM_GOLDEN_DIR) + "/" + name;
  if (std::getenv("LDM_UPDATE_GOLDEN")) {
    std::ofstream(path) << actual;
    return;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing golden file " << path << " (run with LDM_UPDATE_GOLDEN=1 to create it)";
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(actual, expected.str()) << "output differs from " << path;
}

}  // namespace ldm::testing
