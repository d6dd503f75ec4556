// SPDX-License-Identifier: Apache-2.0
// The replay binary of the ordinary build (fuzz/fuzz.hpp): `stowage_fuzz_replay TARGET DIR...`
// runs every file of the folders through the target and says how many it ran. A crash is the
// test failing, as under the fuzzer.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "fuzz.hpp"

namespace stowage::fuzz {
namespace {
std::map<std::string, Entry>& targets() {
  static std::map<std::string, Entry> all;
  return all;
}
}  // namespace

bool register_target(const char* name, Entry entry) {
  targets()[name] = entry;
  return true;
}

}  // namespace stowage::fuzz

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  auto& all = stowage::fuzz::targets();
  if (argc < 3 || !all.contains(argv[1])) {
    std::cerr << "usage: " << argv[0] << " TARGET DIR...\ntargets:";
    for (const auto& [name, entry] : all) std::cerr << " " << name;
    std::cerr << "\n";
    return 2;
  }
  const auto entry = all.at(argv[1]);
  std::size_t runs = 0;
  for (int i = 2; i < argc; ++i) {
    if (!fs::is_directory(argv[i])) continue;  // a target may have no regressions yet
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(argv[i])) {
      if (e.is_regular_file()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      std::ifstream in(file, std::ios::binary);
      const std::string input((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      entry(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
      ++runs;
    }
  }
  if (runs == 0) {
    std::cerr << argv[1] << ": no inputs found\n";
    return 1;
  }
  std::cout << argv[1] << ": " << runs << " inputs replayed, no crash\n";
  return 0;
}
