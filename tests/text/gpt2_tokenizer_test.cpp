// GPT-2 byte-level BPE against golden files written at test time by the peer
// implementations (@huggingface/tokenizers, cross-checked with gpt-3-encoder).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "attnscope/error.h"
#include "attnscope/tokenizer.h"
#include "test_util.h"

using namespace attnscope;

namespace {
nlohmann::json golden() {
  return nlohmann::json::parse(test::read_file(test::data_dir() + "/golden/gpt2_golden.json"));
}

void check_against_golden(const Tokenizer& tok) {
  auto g = golden();
  ASSERT_GE(g["cases"].size(), 30u);
  for (const auto& c : g["cases"]) {
    const std::string text = c["text"];
    Encoding e = tok.encode(text);
    EXPECT_EQ(e.ids, c["ids"].get<std::vector<int64_t>>()) << "text: " << text;
    EXPECT_EQ(e.tokens, c["tokens"].get<std::vector<std::string>>()) << "text: " << text;
    if (!c["gpt3_encoder_ids"].is_null()) EXPECT_EQ(e.ids, c["gpt3_encoder_ids"].get<std::vector<int64_t>>()) << text;
    EXPECT_EQ(tok.decode(e.ids), c["decoded"].get<std::string>()) << text;
    // Offsets tile the text: every byte belongs to exactly one token, in order.
    size_t pos = 0;
    for (size_t i = 0; i < e.size(); ++i) {
      EXPECT_EQ(e.offsets[i].first, pos) << text << " token " << i;
      pos = e.offsets[i].second;
    }
    EXPECT_EQ(pos, text.size()) << text;
  }
}
}  // namespace

TEST(Gpt2Tokenizer, MatchesPeerFromVocabAndMerges) {
  auto tok = load_tokenizer(test::source_dir() + "/models/gpt2-moby");
  EXPECT_EQ(tok->vocab_size(), 50257);
  check_against_golden(*tok);
}

TEST(Gpt2Tokenizer, MatchesPeerFromTokenizerJson) {
  auto tok = load_tokenizer(test::data_dir() + "/golden/gpt2_tokenizer_json");
  check_against_golden(*tok);
}

TEST(Gpt2Tokenizer, DisplayStringsAndSpecialTokens) {
  auto tok = load_tokenizer(test::source_dir() + "/models/gpt2-moby");
  Encoding e = tok->encode("Hello world<|endoftext|>");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e.tokens[1], "\xc4\xa0world");  // "Ġworld"
  EXPECT_EQ(e.display[1], " world");
  EXPECT_EQ(e.ids[2], 50256);
  EXPECT_TRUE(e.special[2]);
  EXPECT_FALSE(e.special[1]);
  EXPECT_EQ(e.offsets[2], (std::pair<size_t, size_t>{11, 24}));
}

TEST(Gpt2Tokenizer, SplitCharactersDisplayAsByteEscapes) {
  auto tok = load_tokenizer(test::source_dir() + "/models/gpt2-moby");
  Encoding e = tok->encode(" \xe6\x97\xa5");  // " 日" is three byte tokens in GPT-2's vocabulary
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e.display[0], " \\xe6");
  EXPECT_EQ(e.display[1], "\\x97");
  EXPECT_EQ(e.display[2], "\\xa5");
  EXPECT_EQ(tok->decode(e.ids), " \xe6\x97\xa5");
}

TEST(Gpt2Tokenizer, InvalidUtf8IsAnErrorNamingTheByte) {
  auto tok = load_tokenizer(test::source_dir() + "/models/gpt2-moby");
  for (const std::string bad : {std::string("ab\xff"), std::string("ab\xc3"), std::string("\xed\xa0\x80"),  // surrogate
                                std::string("\xc0\xaf"), std::string("x\xf4\x90\x80\x80")}) {  // overlong, > U+10FFFF
    try {
      tok->encode(bad);
      FAIL() << "accepted invalid UTF-8";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("invalid byte sequence at byte"), std::string::npos) << e.what();
    }
  }
}

TEST(Gpt2Tokenizer, LongWordWithoutSpacesStaysFast) {
  auto tok = load_tokenizer(test::source_dir() + "/models/gpt2-moby");
  std::string s(200000, 'a');
  Encoding e = tok->encode(s);
  EXPECT_EQ(tok->decode(e.ids), s);
}

TEST(Gpt2Tokenizer, MissingFilesAreNamed) {
  const std::string d = test::temp_dir("no_tokenizer");
  try {
    load_tokenizer(d);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("expected tokenizer.json, vocab.json + merges.txt, vocab.txt or tokenizer.model"),
        std::string::npos);
  }
}
