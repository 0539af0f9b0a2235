// A SentencePiece tokenizer.model (Llama-2 style folders without tokenizer.json), run by
// libsentencepiece itself through the libattnscope_spm shim (see spm_shim.cpp for why it is
// opened with dlopen); BOS/EOS as tokenizer_config.json says (LlamaTokenizer defaults:
// add_bos_token true, add_eos_token false).
#include <dlfcn.h>

#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "attnscope/error.h"
#include "attnscope/tokenizer.h"

namespace attnscope {

namespace {

// The shim's functions, resolved once.
struct Spm {
  void* (*load)(const char*, char*, int);
  void (*free)(void*);
  int (*size)(void*);
  int (*bos)(void*);
  int (*eos)(void*);
  int (*flags)(void*, int);
  const char* (*piece)(void*, int);
  int (*piece_to_id)(void*, const char*, size_t);
  int (*encode)(void*, const char*, size_t, int**, unsigned**, unsigned**);
  char* (*decode)(void*, const int*, int);
  void (*release)(void*);
};

std::string shim_path() {
  if (const char* env = std::getenv("ATTNSCOPE_SPM_LIB")) return env;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto beside = exe.parent_path() / "libattnscope_spm.so";
    if (std::filesystem::exists(beside, ec)) return beside.string();
  }
  return ATTNSCOPE_SPM_LIB;  // where the build put it
}

const Spm& spm(const std::string& model_path) {
  static Spm api{};
  static std::string error;
  static bool loaded = [] {
    const std::string lib = shim_path();
    int flags = RTLD_NOW | RTLD_LOCAL;
#if !defined(__SANITIZE_ADDRESS__)
    flags |= RTLD_DEEPBIND;  // the library's own protobuf copy, not libtorch's
#endif
    void* h = dlopen(lib.c_str(), flags);
    if (!h) {
      error = std::string("cannot load ") + lib + " (" + dlerror() + ")";
      return false;
    }
    auto sym = [&](const char* name) {
      void* f = dlsym(h, name);
      if (!f) error = lib + " lacks " + name;
      return f;
    };
    api.load = reinterpret_cast<decltype(api.load)>(sym("aspm_load"));
    api.free = reinterpret_cast<decltype(api.free)>(sym("aspm_free"));
    api.size = reinterpret_cast<decltype(api.size)>(sym("aspm_size"));
    api.bos = reinterpret_cast<decltype(api.bos)>(sym("aspm_bos"));
    api.eos = reinterpret_cast<decltype(api.eos)>(sym("aspm_eos"));
    api.flags = reinterpret_cast<decltype(api.flags)>(sym("aspm_flags"));
    api.piece = reinterpret_cast<decltype(api.piece)>(sym("aspm_piece"));
    api.piece_to_id = reinterpret_cast<decltype(api.piece_to_id)>(sym("aspm_piece_to_id"));
    api.encode = reinterpret_cast<decltype(api.encode)>(sym("aspm_encode"));
    api.decode = reinterpret_cast<decltype(api.decode)>(sym("aspm_decode"));
    api.release = reinterpret_cast<decltype(api.release)>(sym("aspm_release"));
    return error.empty();
  }();
  if (!loaded) throw Error(model_path + ": SentencePiece support is unavailable: " + error);
  return api;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  SentencePieceTokenizer(const std::string& path, const std::string& dir) : api_(spm(path)) {
    char err[512] = {0};
    h_ = api_.load(path.c_str(), err, int(sizeof(err)));
    if (!h_) throw Error(path + ": expected a SentencePiece model, found an unreadable file (" + err + ")");
    files_.push_back(path);
    const std::filesystem::path cfg = std::filesystem::path(dir) / "tokenizer_config.json";
    std::error_code ec;
    if (std::filesystem::exists(cfg, ec)) {
      files_.push_back(cfg.string());
      try {
        std::ifstream f(cfg);
        auto c = nlohmann::json::parse(f);
        if (c.is_object()) {
          add_bos_ = c.value("add_bos_token", true);
          add_eos_ = c.value("add_eos_token", false);
        }
      } catch (const nlohmann::json::exception& e) {
        api_.free(h_);
        throw Error(cfg.string() + ": expected valid JSON, found a parse error (" + e.what() + ")");
      }
    }
  }
  ~SentencePieceTokenizer() override { api_.free(h_); }
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  Encoding encode(const std::string& text) const override {
    Encoding e;
    wrap(e, text, 0, "text");
    return e;
  }
  Encoding encode_pair(const std::string& a, const std::string& b) const override {
    Encoding e;
    wrap(e, a, 0, "text");
    wrap(e, b, 1, "text-b");
    return e;
  }
  std::string decode(const std::vector<int64_t>& ids) const override {
    std::vector<int> v;
    for (int64_t id : ids) {
      check(id);
      v.push_back(int(id));
    }
    char* s = api_.decode(h_, v.data(), int(v.size()));
    std::string out(s);
    api_.release(s);
    return out;
  }
  int64_t vocab_size() const override { return api_.size(h_); }
  std::optional<int64_t> token_to_id(const std::string& t) const override {
    int id = api_.piece_to_id(h_, t.data(), t.size());
    if ((api_.flags(h_, id) & 4) && api_.piece(h_, id) != t) return std::nullopt;
    return id;
  }
  std::string id_to_token(int64_t id) const override {
    check(id);
    return api_.piece(h_, int(id));
  }
  std::string display_of(int64_t id) const override {
    std::string p = id_to_token(id);
    int fl = api_.flags(h_, int(id));
    if (fl & 1) return p;
    if (fl & 2) {
      unsigned v = 0;
      std::sscanf(p.c_str(), "<0x%2X>", &v);
      return utf8_escape_invalid(std::string(1, char(v)));
    }
    std::string out;
    const std::string bar = "\xe2\x96\x81";  // ▁
    for (size_t i = 0; i < p.size();) {
      if (p.compare(i, bar.size(), bar) == 0) {
        out.push_back(' ');
        i += bar.size();
      } else {
        out.push_back(p[i++]);
      }
    }
    return out;
  }
  std::string kind() const override { return "SentencePiece"; }
  std::vector<std::string> files() const override { return files_; }

 private:
  void check(int64_t id) const {
    if (id < 0 || id >= api_.size(h_))
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary (size " +
                  std::to_string(api_.size(h_)) + ")");
  }
  void push(Encoding& e, int64_t id, size_t b, size_t end, bool special, int seq) const {
    e.ids.push_back(id);
    e.tokens.push_back(api_.piece(h_, int(id)));
    e.display.push_back(display_of(id));
    e.offsets.emplace_back(b, end);
    e.special.push_back(special);
    e.type_ids.push_back(seq);
    e.sequence.push_back(special ? -1 : seq);
  }
  void wrap(Encoding& e, const std::string& text, int seq, const char* what) const {
    if (auto bad = find_invalid_utf8(text))
      throw Error(std::string(what) + ": expected valid UTF-8, found an invalid byte sequence at byte " +
                  std::to_string(*bad));
    if (add_bos_ && api_.bos(h_) >= 0) push(e, api_.bos(h_), 0, 0, true, seq);
    int* ids = nullptr;
    unsigned *begins = nullptr, *ends = nullptr;
    int n = api_.encode(h_, text.data(), text.size(), &ids, &begins, &ends);
    for (int i = 0; i < n; ++i) push(e, ids[i], begins[i], ends[i], api_.flags(h_, ids[i]) & 1, seq);
    api_.release(ids);
    api_.release(begins);
    api_.release(ends);
    if (add_eos_ && api_.eos(h_) >= 0) push(e, api_.eos(h_), text.size(), text.size(), true, seq);
  }

  const Spm& api_;
  void* h_ = nullptr;
  std::vector<std::string> files_;
  bool add_bos_ = true, add_eos_ = false;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& path, const std::string& model_dir) {
  return std::make_unique<SentencePieceTokenizer>(path, model_dir);
}

}  // namespace attnscope
