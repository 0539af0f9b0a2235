#include <algorithm>
#include <cmath>
#include <map>

#include "attnscope/error.h"
#include "attnscope/render.h"

namespace attnscope {

namespace {
struct Table {
  const char* name;
  std::array<Rgb, 256> lut;
};
const Table kTables[] = {
#include "colormap_data.inc"
};
}  // namespace

Rgb Colormap::at(double t) const {
  if (!std::isfinite(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0);
  return lut[size_t(std::min(255.0, std::floor(t * 256.0)))];
}

const Colormap& colormap(const std::string& name) {
  static const std::map<std::string, Colormap> maps = [] {
    std::map<std::string, Colormap> m;
    for (const auto& t : kTables) m[t.name] = Colormap{t.name, t.lut};
    return m;
  }();
  std::string key = name;
  std::transform(key.begin(), key.end(), key.begin(), ::tolower);
  auto it = maps.find(key);
  if (it == maps.end()) {
    std::string names;
    for (auto& n : colormap_names()) names += (names.empty() ? "" : ", ") + n;
    throw Error("--cmap: unknown colormap '" + name + "' (expected one of " + names + ")");
  }
  return it->second;
}

std::vector<std::string> colormap_names() {
  std::vector<std::string> out;
  for (const auto& t : kTables) out.push_back(t.name);
  return out;
}

}  // namespace attnscope
