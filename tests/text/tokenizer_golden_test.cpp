// Every tokenizer family against golden encodings written at test time by the Hugging Face
// tokenizers library (Rust) itself: ids, tokens, type ids, sequence ids, offsets and decoded
// text, over the hard corpus and sentence pairs.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "attnscope/error.h"
#include "attnscope/tokenizer.h"
#include "test_util.h"

using namespace attnscope;
using json = nlohmann::json;

namespace {

const json& golden() {
  static const json g = json::parse(test::read_file(test::data_dir() + "/golden/tokenizer_golden.json"));
  return g;
}

// Byte offset -> code point index of the character holding it.
std::vector<size_t> cp_index(const std::string& s) {
  std::vector<size_t> idx(s.size() + 1, 0);
  size_t cp = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && i > 0) ++cp;
    idx[i] = cp;
  }
  idx[s.size()] = s.empty() ? 0 : cp + 1;
  return idx;
}

void check_folder(const std::string& folder, const std::string& golden_name) {
  SCOPED_TRACE(folder);
  auto tok = load_tokenizer(test::data_dir() + "/golden/" + folder);
  const json& cases = golden()["results"][golden_name];
  ASSERT_GE(cases.size(), 30u);
  size_t offsets_checked = 0;
  for (const auto& c : cases) {
    const std::string a = c["a"];
    const bool pair = !c["b"].is_null();
    const std::string b = pair ? c["b"].get<std::string>() : "";
    SCOPED_TRACE("a: " + a + (pair ? " | b: " + b : ""));
    Encoding e = pair ? tok->encode_pair(a, b) : tok->encode(a);
    ASSERT_EQ(e.ids, c["ids"].get<std::vector<int64_t>>());
    EXPECT_EQ(e.tokens, c["tokens"].get<std::vector<std::string>>());
    EXPECT_EQ(e.type_ids, c["type_ids"].get<std::vector<int64_t>>());
    EXPECT_EQ(tok->decode(e.ids), c["decoded"].get<std::string>());
    ASSERT_EQ(e.offsets.size(), e.size());
    ASSERT_EQ(e.display.size(), e.size());
    const auto ia = cp_index(a), ib = cp_index(b);
    for (size_t i = 0; i < e.size(); ++i) {
      const json& seq = c["sequence_ids"][i];
      EXPECT_EQ(e.sequence[i], seq.is_null() ? -1 : seq.get<int>()) << "token " << i;
      if (seq.is_null()) continue;
      const auto& idx = seq.get<int>() == 0 ? ia : ib;
      auto [ob, oe] = e.offsets[i];
      ASSERT_LE(oe, idx.size() - 1);
      size_t cb = idx[ob], ce = oe > ob ? idx[oe - 1] + 1 : idx[ob];
      EXPECT_EQ(cb, c["offsets"][i][0].get<size_t>()) << "token " << i << " '" << e.tokens[i] << "'";
      EXPECT_EQ(ce, c["offsets"][i][1].get<size_t>()) << "token " << i << " '" << e.tokens[i] << "'";
      ++offsets_checked;
    }
  }
  EXPECT_GT(offsets_checked, 500u);
}

}  // namespace

TEST(TokenizerGolden, BertUncasedTokenizerJson) { check_folder("bert_uncased_json", "bert_uncased_json"); }
TEST(TokenizerGolden, BertUncasedVocabTxt) { check_folder("bert_uncased_vocab_txt", "bert_uncased_json"); }
TEST(TokenizerGolden, BertCasedTokenizerJson) { check_folder("bert_cased_json", "bert_cased_json"); }
TEST(TokenizerGolden, BertProcessing) { check_folder("bert_processing_json", "bert_processing_json"); }
TEST(TokenizerGolden, RobertaTokenizerJson) { check_folder("roberta_json", "roberta_json"); }
TEST(TokenizerGolden, RobertaVocabMerges) { check_folder("roberta_vocab_merges", "roberta_json"); }
TEST(TokenizerGolden, Llama2ByteFallbackBpe) { check_folder("llama2", "llama2"); }
TEST(TokenizerGolden, Llama2MetaspacePreTokenizer) { check_folder("llama2_metaspace", "llama2_metaspace"); }
TEST(TokenizerGolden, Llama3SplitRegex) { check_folder("llama3", "llama3"); }
TEST(TokenizerGolden, Qwen3NfcSplitRegex) { check_folder("qwen3", "qwen3"); }

// tokenizer.model through libsentencepiece: ids and pieces as spm_encode gives them, after the
// BOS token LlamaTokenizer adds by default; tokenizer_config.json can turn BOS off.
TEST(TokenizerGolden, SentencePieceModelMatchesSpmEncode) {
  const std::string dir = test::data_dir() + "/golden/spm";
  auto tok = load_tokenizer(dir);
  EXPECT_EQ(tok->kind(), "SentencePiece");
  std::istringstream lines(test::read_file(dir + "/lines.txt")), ids(test::read_file(dir + "/ids.txt")),
      pieces(test::read_file(dir + "/pieces.txt"));
  std::string line, id_line, piece_line;
  size_t n = 0, byte_pieces = 0;
  while (std::getline(lines, line) && std::getline(ids, id_line) && std::getline(pieces, piece_line)) {
    SCOPED_TRACE(line);
    std::vector<int64_t> want{1};  // <s>
    std::vector<std::string> want_tokens{"<s>"};
    std::istringstream is(id_line), ps(piece_line);
    for (int64_t v; is >> v;) want.push_back(v);
    for (std::string p; ps >> p;) want_tokens.push_back(p);
    Encoding e = tok->encode(line);
    EXPECT_EQ(e.ids, want);
    EXPECT_EQ(e.tokens, want_tokens);
    EXPECT_TRUE(e.special[0]);
    for (size_t i = 1; i < e.size(); ++i) {
      EXPECT_LE(e.offsets[i].first, e.offsets[i].second);
      EXPECT_LE(e.offsets[i].second, line.size());
      if (e.tokens[i].rfind("<0x", 0) == 0) {
        ++byte_pieces;
        EXPECT_EQ(e.display[i].rfind("\\x", 0) == 0 || e.display[i].size() == 1, true) << e.display[i];
      }
    }
    ++n;
  }
  EXPECT_GE(n, 25u);
  EXPECT_GT(byte_pieces, 0u);  // the corpus exercises byte fallback
  Encoding hello = tok->encode("Hello world");
  ASSERT_GE(hello.size(), 3u);
  EXPECT_EQ(hello.display[1].substr(0, 1), " ");  // "▁Hello" reads " Hello"
  EXPECT_EQ(tok->decode(hello.ids), "Hello world");

  const std::string nobos = test::temp_dir("spm_nobos");
  test::write_file(nobos + "/tokenizer.model", test::read_file(dir + "/tokenizer.model"));
  test::write_file(nobos + "/tokenizer_config.json", R"({"add_bos_token": false, "add_eos_token": true})");
  auto t2 = load_tokenizer(nobos);
  Encoding e2 = t2->encode("Hello world");
  EXPECT_EQ(e2.ids.front(), hello.ids[1]);
  EXPECT_EQ(e2.ids.back(), 2);  // </s>
  Encoding p = t2->encode_pair("Hello", "world");
  EXPECT_EQ(p.sentence_b_start().value_or(0), 2u);  // ▁Hello </s> | ▁world </s>
}

TEST(TokenizerGolden, CorruptSentencePieceModelIsNamed) {
  const std::string d = test::temp_dir("spm_bad");
  test::write_file(d + "/tokenizer.model", "not a protobuf at all");
  try {
    load_tokenizer(d);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.model: expected a SentencePiece model"), std::string::npos)
        << e.what();
  }
}

// Broken or unsupported tokenizer.json files: one Error naming the file and the component.
TEST(TokenizerJson, BadDescriptionsAreNamedErrors) {
  const std::string base = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";
  auto with = [&](const std::string& name, const std::string& extra, const std::string& model = "") {
    const std::string d = test::temp_dir("tokjson_" + name);
    std::string doc = model.empty() ? base + extra + "}" : "{\"model\": " + model + extra + "}";
    test::write_file(d + "/tokenizer.json", doc);
    return d;
  };
  auto expect = [](const std::string& dir, const std::string& what) {
    try {
      load_tokenizer(dir);
      FAIL() << what;
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(what), std::string::npos) << m;
      EXPECT_NE(m.find("tokenizer.json"), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  };
  expect(with("unigram", "", R"({"type": "Unigram", "vocab": [["a", 0.0]]})"), "model type 'Unigram' is not supported");
  expect(with("pre", R"(, "pre_tokenizer": {"type": "Frobnicate"})"), "pre_tokenizer 'Frobnicate' is not supported");
  expect(with("norm", R"(, "normalizer": {"type": "Precompiled", "precompiled_charsmap": ""})"),
         "normalizer 'Precompiled' is not supported");
  expect(with("regex",
              R"(, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"})"),
         "cannot compile regex");
  expect(
      with("behavior", R"(, "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"})"),
      "unknown split behavior 'Sideways'");
  expect(with("merge", "", R"({"type": "BPE", "vocab": {"a": 0}, "merges": ["a z"]})"),
         "uses a token missing from the vocabulary");
  expect(with("merge_shape", "", R"({"type": "BPE", "vocab": {"a": 0}, "merges": [7]})"), "expected \"a b\"");
  expect(with("unk", "", R"({"type": "WordPiece", "vocab": {"a": 0}, "unk_token": "[UNK]"})"),
         "unk_token '[UNK]' is not in the vocabulary");
  expect(
      with(
          "template",
          R"(, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[X]", "type_id": 0}}], "special_tokens": {}})"),
      "special token '[X]' is not defined");
  expect(with("dropout", "", R"({"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1})"), "dropout");
  const std::string d = test::temp_dir("tokjson_notjson");
  test::write_file(d + "/tokenizer.json", "{\"model\": ");
  expect(d, "expected valid JSON");
}
