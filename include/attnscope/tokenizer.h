// Tokenizers read from a Hugging Face model folder: tokenizer.json (the tokenizers library's
// pipeline), the older vocab.json + merges.txt (GPT-2, RoBERTa) or vocab.txt (BERT) files, or a
// SentencePiece tokenizer.model. Offsets are byte offsets into the UTF-8 input of their sequence.
#pragma once
#include <cstdint>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace attnscope {

struct Encoding {
  std::vector<int64_t> ids;
  std::vector<std::string> tokens;                 // vocabulary strings, e.g. "Ġworld"
  std::vector<std::string> display;                // each token's bytes as text, e.g. " world"; bytes of a
                                                   // split multi-byte character as \xNN, e.g. " \xe6\x97"
  std::vector<std::pair<size_t, size_t>> offsets;  // [begin, end) bytes of the input text
  std::vector<bool> special;                       // added/special tokens
  std::vector<int64_t> type_ids;                   // token type (segment) ids, 0 = sentence A
  std::vector<int> sequence;                       // 0 = text A, 1 = text B, -1 = added by the post-processor
  size_t size() const { return ids.size(); }
  // Index of the first token that belongs to text B (or a special token of B's part).
  std::optional<size_t> sentence_b_start() const;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Throws Error on invalid UTF-8 (naming the byte offset).
  // Special tokens are added as the model's post-processor says (e.g. [CLS] ... [SEP], <s>).
  virtual Encoding encode(const std::string& text) const = 0;
  virtual Encoding encode_pair(const std::string& a, const std::string& b) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::optional<int64_t> token_to_id(const std::string& token) const = 0;
  virtual std::string id_to_token(int64_t id) const = 0;
  // The label of one token as it reads in text: " world" for "Ġworld", " the" for "▁the",
  // "##ing" kept as is; bytes of a split character as \xNN.
  virtual std::string display_of(int64_t id) const = 0;
  virtual std::string kind() const = 0;                // e.g. "byte-level BPE"
  virtual std::vector<std::string> files() const = 0;  // files read
};

// The mask token ([MASK] or <mask>) when the vocabulary has one.
std::optional<int64_t> mask_token_id(const Tokenizer& tok);

// Loads the tokenizer of a model folder: tokenizer.json, else vocab.json + merges.txt, else
// vocab.txt, else tokenizer.model. Throws Error naming the folder and the files it expected.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir);

// UTF-8 helpers.
// Returns the byte offset of the first invalid sequence, or nullopt when valid.
std::optional<size_t> find_invalid_utf8(const std::string& s);
// Decodes bytes as UTF-8, replacing each invalid sequence by U+FFFD (like HF decode).
std::string utf8_lossy(const std::string& bytes);
// Keeps valid UTF-8 and writes every byte of an invalid sequence as \xNN (display strings of
// tokens that hold part of a multi-byte character).
std::string utf8_escape_invalid(const std::string& bytes);
void append_utf8(std::string& out, uint32_t cp);
// Control characters as visible escapes (\n, \t, \x07); after max_codepoints, "…".
std::string escape_controls(const std::string& s, size_t max_codepoints = SIZE_MAX);
// Splits into code points; each element is [begin, end) of the code point's bytes.
std::vector<uint32_t> utf8_codepoints(const std::string& s);

}  // namespace attnscope
