// The web viewer's script (web/, built by Vite), embedded at build time by
// cmake/embed_viewer.cmake into viewer_asset.cpp in the build tree.
#pragma once
#include <cstddef>

namespace attnscope {
const char* viewer_script();
size_t viewer_script_size();
}  // namespace attnscope
