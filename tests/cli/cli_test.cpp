// The command line as a user runs it: outputs, and a one-line error + non-zero exit for
// every class of bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "attnscope/attribution.h"
#include "attnscope/checkpoint.h"
#include "attnscope/explain.h"
#include "attnscope/model.h"
#include "attnscope/projection.h"
#include "attnscope/qk.h"
#include "attnscope/safetensors.h"
#include "test_util.h"

using namespace attnscope;
namespace fs = std::filesystem;

namespace {

// Expects failure with exactly one line on stderr: "attnscope: error: ...<what>...".
void expect_error(const std::vector<std::string>& args, const std::string& what) {
  test::Run r = test::run_cli(args);
  std::string cmd;
  for (auto& a : args) cmd += a + " ";
  EXPECT_NE(r.code, 0) << cmd;
  EXPECT_LT(r.code, 128) << "crashed: " << cmd;
  EXPECT_EQ(r.err.rfind("attnscope: error: ", 0), 0u) << cmd << "\n" << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << cmd << "\n" << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << cmd << "\nexpected '" << what << "' in: " << r.err;
}

std::string small_model() {
  static std::string d = test::make_small_gpt2(test::temp_dir("cli_small"));
  return d;
}

// A copy of the small model with config.json edited by `edit`.
std::string with_config(const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
  const std::string d = test::temp_dir("cli_" + name);
  for (auto& e : fs::directory_iterator(small_model())) fs::copy(e.path(), d + "/" + e.path().filename().string());
  auto j = nlohmann::json::parse(test::read_file(d + "/config.json"));
  edit(j);
  test::write_file(d + "/config.json", j.dump());
  return d;
}

// A copy of the small model whose weights file lacks one tensor or has it reshaped.
std::string with_weights(const std::string& name, const std::string& drop, const std::string& reshape) {
  const std::string d = test::temp_dir("cli_" + name);
  for (auto& e : fs::directory_iterator(small_model()))
    if (e.path().filename() != "model.safetensors") fs::copy(e.path(), d + "/" + e.path().filename().string());
  SafetensorsFile src(small_model() + "/model.safetensors");
  std::vector<TensorWrite> out;
  for (const auto& [n, info] : src.tensors()) {
    if (n == drop) continue;
    auto v = src.to_f32(n);
    std::vector<int64_t> shape = info.shape;
    if (n == reshape) shape = {int64_t(v.size())};
    out.push_back(tensor_f32(n, shape, v.data()));
  }
  write_safetensors(d + "/model.safetensors", out);
  return d;
}

}  // namespace

TEST(Cli, InfoPrintsModelFacts) {
  test::Run r = test::run_cli({"info", "--model", small_model(), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["family"], "gpt2");
  EXPECT_EQ(j["layers"], 2);
  EXPECT_EQ(j["heads"], 2);
  EXPECT_EQ(j["head_dim"], 4);
  EXPECT_EQ(j["vocab_size"], 50257);
  EXPECT_EQ(j["max_positions"], 16);
  EXPECT_EQ(j["dtype"], "F32");
  r = test::run_cli({"info", "--model", small_model()});
  EXPECT_NE(r.out.find("layers         2"), std::string::npos) << r.out;
}

TEST(Cli, TokenizePrintsIdsAndOffsets) {
  test::Run r = test::run_cli({"tokenize", "--model", small_model(), "--text", "Hello world", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ids"], (std::vector<int64_t>{15496, 995}));
  EXPECT_EQ(j["display"][1], " world");
  EXPECT_EQ(j["offsets"][1], (std::vector<int64_t>{5, 11}));
}

TEST(Cli, DumpWritesTheDesignFormat) {
  const std::string out = test::temp_dir("cli_dump") + "/d.safetensors";
  test::Run r =
      test::run_cli({"dump", "--model", small_model(), "--text", "Hello world again", "-o", out, "--qkv", "--hidden"});
  ASSERT_EQ(r.code, 0) << r.err;
  SafetensorsFile f(out);
  EXPECT_EQ(f.info("attention.0").shape, (std::vector<int64_t>{2, 3, 3}));
  EXPECT_EQ(f.info("attention.1").dtype, DType::F32);
  EXPECT_EQ(f.info("query.1").shape, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_TRUE(f.has("key.0") && f.has("value.0"));
  EXPECT_EQ(f.info("hidden.2").shape, (std::vector<int64_t>{3, 8}));
  EXPECT_FALSE(f.has("hidden.3"));
  EXPECT_EQ(f.info("input_ids").dtype, DType::I64);
  auto tokens = nlohmann::json::parse(f.metadata().at("tokens"));
  EXPECT_EQ(tokens, (std::vector<std::string>{"Hello", " world", " again"}));
  EXPECT_EQ(f.metadata().at("model_type"), "gpt2");
  EXPECT_EQ(f.metadata().at("n_layers"), "2");
  EXPECT_EQ(f.metadata().at("n_heads"), "2");
  EXPECT_EQ(f.metadata().at("text"), "Hello world again");
  EXPECT_TRUE(f.metadata().count("attnscope_version"));
  auto a = f.to_f32("attention.1");
  EXPECT_EQ(a[1], 0.0f);  // query 0 cannot see key 1
  const std::string out16 = test::temp_dir("cli_dump16") + "/d.safetensors";
  r = test::run_cli({"dump", "--model", small_model(), "--text", "Hello world again", "-o", out16, "--dtype", "f16"});
  ASSERT_EQ(r.code, 0) << r.err;
  SafetensorsFile g(out16);
  EXPECT_EQ(g.info("attention.0").dtype, DType::F16);
  auto b = g.to_f32("attention.1");
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-3);
}

TEST(Cli, HeatmapWritesEveryFormatAndOption) {
  const std::string d = test::temp_dir("cli_heat");
  for (const char* ext : {"png", "svg", "pdf"}) {
    test::Run r = test::run_cli(
        {"heatmap", "--model",       small_model(), "--text",     "A new sentence to visualize attention weights",
         "-o",      d + "/h." + ext, "--layer",     "0",          "--head",
         "1",       "--cmap",        "cividis",     "--annotate", "--size",
         "6x5",     "--dpi",         "80",          "--title",    "Layer 0 head 1"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(fs::file_size(d + "/h." + ext) > 1000);
  }
}

TEST(Cli, TextTooLongSaysTheLimitAndTruncateCuts) {
  std::string text;
  for (int i = 0; i < 40; ++i) text += " word";
  expect_error({"dump", "--model", small_model(), "--text", text, "-o", test::temp_dir("cli_long") + "/d.safetensors"},
               "40 tokens exceed the model's limit of 16 positions (pass --truncate");
  const std::string out = test::temp_dir("cli_trunc") + "/d.safetensors";
  test::Run r = test::run_cli({"dump", "--model", small_model(), "--text", text, "-o", out, "--truncate"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(SafetensorsFile(out).info("attention.0").shape, (std::vector<int64_t>{2, 16, 16}));
}

TEST(Cli, BadInputsGiveOneLineErrors) {
  const std::string m = small_model();
  const std::string tmp = test::temp_dir("cli_bad");
  expect_error({"dump", "--model", m, "--text", "", "-o", tmp + "/d.safetensors"}, "expected non-empty text");
  test::write_file(tmp + "/bad.txt", "abc\xff\xfe");
  expect_error({"dump", "--model", m, "--text-file", tmp + "/bad.txt", "-o", tmp + "/d.safetensors"},
               "expected valid UTF-8, found an invalid byte sequence at byte 3");
  expect_error({"dump", "--model", m, "--text-file", tmp + "/missing.txt", "-o", tmp + "/d.safetensors"},
               "cannot read");
  expect_error({"dump", "--model", m, "--text-file", tmp, "-o", tmp + "/d.safetensors"},
               "expected a text file, found a folder");
  expect_error({"heatmap", "--model", m, "--text", "hi there", "-o", tmp + "/h.png", "--dpi", "0"},
               "found 10x8 in at 0 dpi");
  expect_error({"heatmap", "--model", m, "--text", "hi there", "-o", tmp + "/h.png", "--layer", "2"},
               "--layer 2: expected a layer in 0..1 or -2..-1");
  expect_error({"heatmap", "--model", m, "--text", "hi there", "-o", tmp + "/h.png", "--layer", "-3"}, "--layer -3");
  expect_error({"heatmap", "--model", m, "--text", "hi there", "-o", tmp + "/h.png", "--head", "5"},
               "--head 5: expected a head in 0..1");
  expect_error({"heatmap", "--model", m, "--text", "hi there", "-o", tmp + "/h.png", "--head", "median"},
               "--head median");
  expect_error({"heatmap", "--model", m, "--text", "hi there", "-o", tmp + "/h.gif"},
               "expected a file ending in .png, .svg or .pdf");
  expect_error({"heatmap", "--model", m, "--text", "hi there", "-o", "/nonexistent-dir/h.png"}, "does not exist");
  expect_error({"heatmap", "--model", m, "--text", "hi there", "-o", tmp + "/h.png", "--cmap", "rainbow9"},
               "unknown colormap 'rainbow9'");
  expect_error({"heatmap", "--model", m, "--text", "hi there", "-o", tmp + "/h.png", "--size", "big"}, "--size big");
  expect_error({"dump", "--model", m, "--text", "hi", "-o", "/nonexistent-dir/d.safetensors"},
               "cannot open for writing");
  expect_error({"dump", "--model", m, "--text", "hi", "-o", tmp + "/d.safetensors", "--dtype", "f8"}, "--dtype f8");
  expect_error({"info", "--model", tmp + "/no-such-model"}, "expected a model folder or a repo id");
  expect_error({"info", "--bogus"}, "bogus");
}

TEST(Cli, BrokenCheckpointsGiveOneLineErrors) {
  expect_error({"info", "--model", with_config("no_n_embd", [](auto& j) { j.erase("n_embd"); })},
               "missing required key 'n_embd'");
  expect_error({"info", "--model", with_config("bad_type", [](auto& j) { j["model_type"] = "mamba"; })},
               "unknown model_type 'mamba' (supported: gpt2");
  expect_error({"info", "--model", with_config("bad_heads", [](auto& j) { j["n_head"] = 3; })}, "multiple of n_head");
  expect_error({"info", "--model", with_config("bad_act", [](auto& j) { j["activation_function"] = "quick_gelu2"; })},
               "activation_function 'quick_gelu2'");
  expect_error({"info", "--model", with_weights("missing_tensor", "transformer.h.1.mlp.c_fc.bias", "")},
               "missing tensor 'transformer.h.1.mlp.c_fc.bias'");
  expect_error({"info", "--model", with_weights("wrong_shape", "", "transformer.h.0.attn.c_attn.weight")},
               "tensor 'transformer.h.0.attn.c_attn.weight': expected shape [8, 24] (from config.json), found [192]");
  const std::string notok = with_config("no_tokenizer", [](auto&) {});
  fs::remove(notok + "/vocab.json");
  expect_error({"tokenize", "--model", notok, "--text", "x"}, "missing tokenizer files");
  const std::string corrupt = with_config("corrupt", [](auto&) {});
  test::write_file(corrupt + "/model.safetensors", std::string("\x10\0\0\0\0\0\0\0{\"a\":1}   ", 16));
  expect_error({"info", "--model", corrupt}, "invalid safetensors file");
}

namespace {
std::string bert_model() { return test::data_dir() + "/bert_reference/bert_mlm_pair"; }
nlohmann::json dump_meta(const std::string& path) {
  SafetensorsFile f(path);
  nlohmann::json m;
  for (const auto& [k, v] : f.metadata()) m[k] = v;
  return m;
}
}  // namespace

TEST(Cli, SentencePairsGoThroughTokenizeDumpAndHeatmap) {
  test::Run t = test::run_cli(
      {"tokenize", "--model", bert_model(), "--text", "Call me Ishmael.", "--text-b", "The whale!", "--json"});
  ASSERT_EQ(t.code, 0) << t.err;
  auto j = nlohmann::json::parse(t.out);
  EXPECT_EQ(j["tokens"],
            nlohmann::json::parse(R"(["[CLS]","call","me","ishmael",".","[SEP]","the","whale","!","[SEP]"])"));
  EXPECT_EQ(j["type_ids"], nlohmann::json::parse("[0,0,0,0,0,0,1,1,1,1]"));
  EXPECT_EQ(j["sentence_b_start"], 6);

  const std::string out = test::temp_dir("cli_pair") + "/pair.safetensors";
  test::Run d = test::run_cli(
      {"dump", "--model", bert_model(), "--text", "Call me Ishmael.", "--text-b", "The whale!", "-o", out});
  ASSERT_EQ(d.code, 0) << d.err;
  auto m = dump_meta(out);
  EXPECT_EQ(m["sentence_b_start"], "6");
  EXPECT_EQ(m["text_b"], "The whale!");
  EXPECT_EQ(m["causal"], "false");
  SafetensorsFile f(out);
  ASSERT_TRUE(f.has("token_type_ids"));
  EXPECT_EQ(f.info("attention.1").shape, (std::vector<int64_t>{3, 10, 10}));

  // The token types reach the model: the same tokens as one sentence attend differently.
  const std::string single = fs::path(out).parent_path().string() + "/single.safetensors";
  ASSERT_EQ(
      test::run_cli({"dump", "--model", bert_model(), "--text", "Call me Ishmael. [SEP] The whale!", "-o", single})
          .code,
      0);
  SafetensorsFile g(single);
  auto a = f.to_f32("attention.0"), b = g.to_f32("attention.0");
  ASSERT_EQ(a.size(), b.size());
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff += std::fabs(a[i] - b[i]);
  EXPECT_GT(diff, 1e-3);

  const std::string png = fs::path(out).parent_path().string() + "/pair.png";
  test::Run h = test::run_cli(
      {"heatmap", "--model", bert_model(), "--text", "Call me Ishmael.", "--text-b", "The whale!", "-o", png});
  EXPECT_EQ(h.code, 0) << h.err;
  EXPECT_TRUE(fs::exists(png));
}

TEST(Cli, MaskedAndNextTokenPredictions) {
  test::Run r = test::run_cli({"info", "--model", bert_model(), "--text", "Call me [MASK].", "--json", "--top", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["head"], "mlm");
  ASSERT_EQ(j["predictions"].size(), 1u);
  EXPECT_EQ(j["predictions"][0]["position"], 3);  // [CLS] call me [MASK]
  ASSERT_EQ(j["predictions"][0]["top"].size(), 3u);
  double p0 = j["predictions"][0]["top"][0]["prob"], p1 = j["predictions"][0]["top"][1]["prob"];
  EXPECT_GE(p0, p1);
  EXPECT_GT(p0, 0.0);

  test::Run none = test::run_cli({"info", "--model", bert_model(), "--text", "no mask here"});
  EXPECT_EQ(none.code, 0);
  EXPECT_NE(none.out.find("no [MASK] token in the text"), std::string::npos) << none.out;

  test::Run g = test::run_cli({"info", "--model", small_model(), "--text", "Hello", "--json"});
  ASSERT_EQ(g.code, 0) << g.err;
  auto gj = nlohmann::json::parse(g.out);
  EXPECT_EQ(gj["predictions"][0]["predicts"], "next token");
  EXPECT_EQ(gj["predictions"][0]["top"].size(), 5u);

  const std::string mpath = test::temp_dir("cli_mlm") + "/m.safetensors";
  test::Run dm = test::run_cli({"dump", "--model", bert_model(), "--text", "the [MASK] whale", "-o", mpath});
  ASSERT_EQ(dm.code, 0) << dm.err;
  auto meta = dump_meta(mpath);
  auto preds = nlohmann::json::parse(meta["predictions"].get<std::string>());
  EXPECT_EQ(preds[0]["position"], 2);
}

TEST(Cli, PairsTooLongAndBadTextBAreErrors) {
  std::string long_b;
  for (int i = 0; i < 60; ++i) long_b += "whale ";
  expect_error({"dump", "--model", bert_model(), "--text", "a", "--text-b", long_b, "--truncate", "-o",
                test::temp_dir("cli_pair_err") + "/x.safetensors"},
               "--truncate cuts single texts only");
  expect_error({"tokenize", "--model", bert_model(), "--text", "a", "--text-b", "b\xff"}, "invalid byte sequence");
}

TEST(Cli, GenerateWritesTextAndADumpOfEveryStep) {
  const std::string out = test::temp_dir("cli_gen") + "/g.safetensors";
  test::Run r =
      test::run_cli({"generate", "--model", small_model(), "--text", "Hello world", "-n", "6", "--json", "-o", out});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  const size_t P = j["prompt_tokens"], N = j["generated_tokens"];
  EXPECT_EQ(N, 6u);
  EXPECT_EQ(j["ids"].size(), P + N);
  EXPECT_NE(r.err.find("tokens/s, KV cache"), std::string::npos) << r.err;
  SafetensorsFile f(out);
  const int64_t T = int64_t(P + N);
  EXPECT_EQ(f.info("attention.0").shape[1], T);
  EXPECT_EQ(f.info("attention.0").shape[2], T);
  EXPECT_EQ(f.metadata().at("prompt_tokens"), std::to_string(P));
  auto tokens = nlohmann::json::parse(f.metadata().at("tokens"));
  EXPECT_EQ(tokens.size(), size_t(T));
  // Every row of every step is a distribution over the keys up to it.
  auto a = f.to_f32("attention.1");
  const int64_t H = f.info("attention.1").shape[0];
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < T; ++i) {
      double s = 0;
      for (int64_t k = 0; k < T; ++k) {
        float v = a[size_t((h * T + i) * T + k)];
        if (k > i) ASSERT_EQ(v, 0.0f);
        s += v;
      }
      ASSERT_NEAR(s, 1.0, 1e-4);
    }
  // The same tokens without the cache.
  test::Run nc =
      test::run_cli({"generate", "--model", small_model(), "--text", "Hello world", "-n", "6", "--json", "--no-cache"});
  ASSERT_EQ(nc.code, 0) << nc.err;
  EXPECT_EQ(nlohmann::json::parse(nc.out)["ids"], j["ids"]);
}

TEST(Cli, GenerateStopsAndRefusesEncoders) {
  // Greedy text from the prompt, then a stop string taken from it: generation ends there.
  test::Run full = test::run_cli({"generate", "--model", small_model(), "--text", "Hello", "-n", "8", "--json"});
  ASSERT_EQ(full.code, 0) << full.err;
  auto fj = nlohmann::json::parse(full.out);
  const std::string cont = fj["continuation"];
  ASSERT_GE(cont.size(), 2u);
  test::Run st = test::run_cli(
      {"generate", "--model", small_model(), "--text", "Hello", "-n", "8", "--json", "--stop", cont.substr(0, 1)});
  ASSERT_EQ(st.code, 0) << st.err;
  auto sj = nlohmann::json::parse(st.out);
  EXPECT_EQ(sj["stopped_by"], "stop string");
  EXPECT_LT(sj["generated_tokens"].get<size_t>(), 8u);
  expect_error({"generate", "--model", bert_model(), "--text", "the whale"}, "is an encoder");
  expect_error({"generate", "--model", small_model(), "--text", "Hello", "-n", "100000"}, "exceed the model's");
}

namespace {
std::string vit_model() { return test::data_dir() + "/vit_reference/vit_cls_bilinear_jpeg"; }
}  // namespace

TEST(Cli, ImagesGoThroughInfoDumpHeatmapAndOverlay) {
  const std::string img = vit_model() + "/input.jpg";
  test::Run r = test::run_cli({"info", "--model", vit_model(), "--image", img, "--json", "--top", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["family"], "vit");
  EXPECT_EQ(j["predictions"][0]["predicts"], "class");
  ASSERT_EQ(j["predictions"][0]["top"].size(), 2u);
  EXPECT_EQ(j["predictions"][0]["top"][0]["label"].get<std::string>().rfind("class ", 0), 0u);
  EXPECT_EQ(j["labels"].size(), 5u);

  const std::string dir = test::temp_dir("cli_vit");
  ASSERT_EQ(test::run_cli({"dump", "--model", vit_model(), "--image", img, "-o", dir + "/v.safetensors"}).code, 0);
  SafetensorsFile f(dir + "/v.safetensors");
  EXPECT_EQ(f.info("attention.0").shape, (std::vector<int64_t>{3, 17, 17}));
  EXPECT_EQ(f.metadata().at("patch_grid"), "4x4");
  EXPECT_EQ(f.metadata().at("image"), img);
  auto tokens = nlohmann::json::parse(f.metadata().at("tokens"));
  EXPECT_EQ(tokens[0], "[CLS]");
  EXPECT_EQ(tokens[1], "r0c0");
  EXPECT_EQ(tokens[16], "r3c3");
  EXPECT_FALSE(f.has("input_ids"));

  for (const char* out : {"/h.png", "/h.svg"})
    EXPECT_EQ(test::run_cli({"heatmap", "--model", vit_model(), "--image", img, "-o", dir + out}).code, 0) << out;
  for (const char* out : {"/o.png", "/o.pdf"}) {
    test::Run o =
        test::run_cli({"overlay", "--model", vit_model(), "--image", img, "--query", "r1c2", "-o", dir + out});
    EXPECT_EQ(o.code, 0) << o.err;
    EXPECT_GT(fs::file_size(dir + out), 1000u);
  }
}

TEST(Cli, ImageErrorsAreOneLine) {
  const std::string img = vit_model() + "/input.jpg";
  const std::string dir = test::temp_dir("cli_vit_err");
  test::write_file(dir + "/broken.jpg", "\xff\xd8\xff\xe0 not really");
  expect_error({"info", "--model", vit_model(), "--image", dir + "/broken.jpg"},
               "expected a JPEG image, found a corrupt file");
  expect_error({"info", "--model", vit_model(), "--image", dir + "/none.png"}, "cannot read the image file");
  expect_error({"info", "--model", vit_model(), "--text", "hello"}, "takes an image (--image), not text");
  expect_error({"dump", "--model", small_model(), "--image", img, "-o", dir + "/x.safetensors"},
               "takes text (--text), not an image");
  expect_error({"overlay", "--model", vit_model(), "--image", img, "--query", "r9c9", "-o", dir + "/o.png"},
               "--query r9c9: expected cls, a patch label like r0c0..r3c3");
  expect_error({"overlay", "--model", small_model(), "--image", img, "-o", dir + "/o.png"}, "is not an image model");
  expect_error({"tokenize", "--model", small_model(), "--text", "hi", "--image", img}, "--image: tokenize splits text");
}

// `attnscope view`: a self-contained file with every layer's attention at <= 2 bytes per weight;
// bad arguments and bad dumps give one-line errors. (The browser tests in web/test/ use the file.)
TEST(Cli, ViewWritesOneSelfContainedFile) {
  const std::string tmp = test::temp_dir("cli_view");
  const std::string text = "Call me Ishmael. Some years ago, never mind how long precisely, having little money.";
  test::Run r = test::run_cli({"view", "--text", text, "--view", "head,model", "-o", tmp + "/v.html"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream f(tmp + "/v.html", std::ios::binary);
  const std::string html((std::istreambuf_iterator<char>(f)), {});
  // No reference to anything outside the file (the SVG namespace of the export is a name, not a fetch).
  std::string scan = html;
  for (size_t p; (p = scan.find("http://www.w3.org/2000/svg")) != std::string::npos;) scan.erase(p, 26);
  for (const char* bad : {" src=\"", "<link", "<img", "<iframe", "http://", "https://", "@import", "url(", "fetch("})
    EXPECT_EQ(scan.find(bad), std::string::npos) << bad;
  EXPECT_NE(html.find("default-src 'none'"), std::string::npos);
  // 4 layers x 4 heads, causal: the lower triangle at 2 characters per weight.
  auto enc = nlohmann::json::parse(test::run_cli({"tokenize", "--text", text, "--json"}).out);
  const size_t n = enc["ids"].size();
  size_t data = 0;
  for (int l = 0; l < 4; ++l) {
    const std::string open = "<script type=\"text/plain\" id=\"attnscope-attn-" + std::to_string(l) + "\">";
    const size_t b = html.find(open);
    ASSERT_NE(b, std::string::npos);
    const size_t e = html.find("</script>", b);
    data += e - b - open.size();
  }
  EXPECT_EQ(data, 2 * 4 * 4 * n * (n + 1) / 2);
  EXPECT_EQ(html.find("attnscope-qk-0"), std::string::npos) << "no q/k without the neuron view";
}

TEST(Cli, ViewErrors) {
  const std::string tmp = test::temp_dir("cli_view_err");
  const std::string dump = tmp + "/d.safetensors";
  ASSERT_EQ(test::run_cli({"dump", "--text", "Call me Ishmael.", "-o", dump}).code, 0);
  expect_error({"view", "--from", dump, "--view", "neuron", "-o", tmp + "/v.html"}, "has no query/key vectors");
  expect_error({"view", "--from", dump, "--text", "x", "-o", tmp + "/v.html"}, "drop --model/--text/--image");
  expect_error({"view", "--text", "x", "--heads", "0,9", "-o", tmp + "/v.html"},
               "--heads 0,9: expected head indices 0..3");
  expect_error({"view", "--text", "x", "--view", "heads", "-o", tmp + "/v.html"}, "--view heads: expected head, model");
  expect_error({"view", "--text", "x", "--layer", "7", "-o", tmp + "/v.html"}, "--layer");
  expect_error({"view", "--from", tmp + "/none.safetensors", "-o", tmp + "/v.html"}, "none.safetensors");
  // A safetensors file that is not a dump, and one whose tokens do not match the attention.
  const float w[4] = {0.5f, 0.5f, 0.25f, 0.75f};
  write_safetensors(tmp + "/w.safetensors", {tensor_f32("weight", {2, 2}, w)});
  expect_error({"view", "--from", tmp + "/w.safetensors", "-o", tmp + "/v.html"}, "expected tensors attention.0");
  write_safetensors(tmp + "/t.safetensors", {tensor_f32("attention.0", {1, 2, 2}, w)}, {{"tokens", "[\"a\"]"}});
  expect_error({"view", "--from", tmp + "/t.safetensors", "-o", tmp + "/v.html"}, "expected 2 tokens");
  const float big[4] = {2, 0, 0, 1};
  write_safetensors(tmp + "/p.safetensors", {tensor_f32("attention.0", {1, 2, 2}, big)});
  expect_error({"view", "--from", tmp + "/p.safetensors", "-o", tmp + "/v.html"}, "expected probabilities");
  expect_error({"view", "--text", "x", "-o", tmp + "/no/such/dir/v.html"}, "cannot write");
}

TEST(Cli, ViewFromAPlainDumpInfersCausalityAndNamesTokensByIndex) {
  const std::string tmp = test::temp_dir("cli_view_plain");
  const float lower[9] = {1, 0, 0, 0.5f, 0.5f, 0, 0.2f, 0.3f, 0.5f};
  write_safetensors(tmp + "/a.safetensors", {tensor_f32("attention.0", {1, 3, 3}, lower)});
  ASSERT_EQ(test::run_cli({"view", "--from", tmp + "/a.safetensors", "-o", tmp + "/v.html"}).code, 0);
  std::ifstream f(tmp + "/v.html", std::ios::binary);
  const std::string html((std::istreambuf_iterator<char>(f)), {});
  const size_t b = html.find("id=\"attnscope-meta\">") + 20;
  auto meta = nlohmann::json::parse(html.substr(b, html.find("</script>", b) - b));
  EXPECT_EQ(meta["causal"], true);
  EXPECT_EQ(meta["attention"]["layout"], "lower");
  EXPECT_EQ(meta["tokens"], nlohmann::json::parse(R"(["0","1","2"])"));
  EXPECT_EQ(meta["views"], nlohmann::json::parse(R"(["head","model"])"));
}

TEST(Cli, ViewIncludeLayersAndHeadsWritesOnlyThoseUnderTheirOwnNumbers) {
  const std::string tmp = test::temp_dir("cli_view_include");
  ASSERT_EQ(test::run_cli({"view", "--model", test::source_dir() + "/models/llama-moby", "--text", "Call me Ishmael.",
                           "--include-layers", "3,1", "--include-heads", "2", "-o", tmp + "/v.html"})
                .code,
            0);
  std::ifstream f(tmp + "/v.html", std::ios::binary);
  const std::string html((std::istreambuf_iterator<char>(f)), {});
  const size_t b = html.find("id=\"attnscope-meta\">") + 20;
  auto meta = nlohmann::json::parse(html.substr(b, html.find("</script>", b) - b));
  EXPECT_EQ(meta["layer_ids"], nlohmann::json::parse("[1,3]"));
  EXPECT_EQ(meta["head_ids"], nlohmann::json::parse("[2]"));
  EXPECT_EQ(meta["n_layers"], 2);
  EXPECT_EQ(meta["n_heads"], 1);
  EXPECT_EQ(meta["n_heads_model"], 4);
  EXPECT_EQ(meta["initial"]["layer"], 1) << "the last included layer (model layer 3) is shown first";
  EXPECT_EQ(html.find("attnscope-attn-2"), std::string::npos);
  expect_error({"view", "--text", "x", "--include-layers", "1", "--layer", "2", "-o", tmp + "/w.html"},
               "--layer 2: expected one of the included layers");
  expect_error({"view", "--text", "x", "--include-heads", "0,7", "-o", tmp + "/w.html"},
               "--include-heads 0,7: expected head indices 0..3");
}

namespace {
nlohmann::json run_json(const std::vector<std::string>& args) {
  test::Run r = test::run_cli(args);
  EXPECT_EQ(r.code, 0) << r.err;
  std::ifstream f(args.back(), std::ios::binary);
  return nlohmann::json::parse(f);
}
std::vector<Array> dump_attention(const std::string& path) {
  SafetensorsFile f(path);
  std::vector<Array> out;
  for (int l = 0; f.has("attention." + std::to_string(l)); ++l) {
    Array a = Array::zeros(f.info("attention." + std::to_string(l)).shape);
    f.to_f32("attention." + std::to_string(l), a.mutable_ptr());
    out.push_back(a);
  }
  return out;
}
}  // namespace

// explain --method rollout/flow: the row of the explained position (by default the last token of
// a causal model, [CLS] of an encoder, the [MASK] of a masked-LM input) from the model's attention.
TEST(Cli, ExplainRolloutAndFlowUseTheModelsAttentionAtTheExplainedPosition) {
  const std::string tmp = test::temp_dir("cli_explain");
  const std::string text = "Call me Ishmael. Some years ago, never mind how long";
  ASSERT_EQ(test::run_cli({"dump", "--text", text, "-o", tmp + "/d.safetensors"}).code, 0);
  const auto att = dump_attention(tmp + "/d.safetensors");
  const int64_t n = att[0].dim(1);
  RolloutOptions o;
  o.fusion = "max";
  o.discard_ratio = 0.2;
  o.start_layer = 1;
  const Square r = attention_rollout(att, o);
  auto j = run_json({"explain", "--method", "rollout", "--text", text, "--fusion", "max", "--discard", "0.2",
                     "--start-layer", "1", "-o", tmp + "/r.json"});
  EXPECT_EQ(j["position"], n - 1);
  ASSERT_EQ(j["row"].size(), size_t(n));
  for (int64_t k = 0; k < n; ++k) EXPECT_NEAR(j["row"][k].get<double>(), r.at(n - 1, k), 1e-6);
  auto f = run_json({"explain", "--method", "flow", "--text", text, "--position", "3", "-o", tmp + "/f.json"});
  const Square fl = attention_flow(att, RolloutOptions{}, {3});
  EXPECT_EQ(f["position"], 3);
  for (int64_t k = 0; k < n; ++k) EXPECT_NEAR(f["row"][k].get<double>(), fl.at(3, k), 1e-6);
  auto all = run_json({"explain", "--method", "rollout", "--text", text, "--all-rows", "-o", tmp + "/a.json"});
  ASSERT_EQ(all["matrix"].size(), size_t(n));
  // Figures and the page.
  for (const char* out : {"/r.png", "/r.svg", "/r.html", "/a.png"}) {
    std::vector<std::string> args{"explain", "--method", "rollout", "--text", text, "-o", tmp + out};
    if (std::string(out) == "/a.png") args.push_back("--all-rows");
    test::Run rr = test::run_cli(args);
    EXPECT_EQ(rr.code, 0) << rr.err;
    EXPECT_TRUE(test::file_exists(tmp + out));
  }
  // The encoder's default is the [MASK] (BERT masked-LM input).
  auto b = run_json(
      {"explain", "--method", "rollout", "--model", bert_model(), "--text", "call me [MASK] .", "-o", tmp + "/b.json"});
  EXPECT_EQ(b["tokens"][b["position"].get<int>()], "[MASK]");
}

// explain --method generation: the attention project's table, re-computed here from the dump of
// the same greedy generation.
TEST(Cli, ExplainGenerationTableEqualsARecomputationFromTheGenerationDump) {
  const std::string tmp = test::temp_dir("cli_explain_gen");
  const std::string prompt = "Call me Ishmael. Some years ago";
  ASSERT_EQ(test::run_cli({"generate", "--text", prompt, "-n", "6", "-o", tmp + "/g.safetensors"}).code, 0);
  auto j =
      run_json({"explain", "--method", "generation", "--text", prompt, "-n", "6", "--sigmoid", "-o", tmp + "/g.json"});
  const auto att = dump_attention(tmp + "/g.safetensors");
  const int64_t T = att[0].dim(1), H = att[0].dim(0), P = j["prompt_length"];
  ASSERT_EQ(j["table"].size(), size_t(T));
  for (int64_t t = P; t < T; ++t) {
    std::vector<double> want(size_t(t), 0.0);
    for (const auto& a : att) {
      std::vector<double> row(size_t(t), 0.0);
      double s = 0;
      for (int64_t k = 1; k < t; ++k) {
        for (int64_t h = 0; h < H; ++h) row[size_t(k)] += a.ptr()[(h * T + t - 1) * T + k] / double(H);
        s += row[size_t(k)];
      }
      for (int64_t k = 1; k < t; ++k) want[size_t(k)] += row[size_t(k)] / s / double(att.size());
    }
    double sum = 0;
    for (int64_t k = 0; k < t; ++k) {
      EXPECT_NEAR(j["table"][t][k].get<double>(), want[size_t(k)], 1e-6) << t << "," << k;
      sum += j["table"][t][k].get<double>();
    }
    EXPECT_NEAR(sum, 1, 1e-9);
    EXPECT_EQ(j["table"][t][0], 0.0);
    EXPECT_EQ(j["table"][t][t], 0.0);
  }
  EXPECT_EQ(j["sigmoid"].size(), size_t(T));
  test::Run h =
      test::run_cli({"explain", "--method", "generation", "--text", prompt, "-n", "3", "-o", tmp + "/g.html"});
  EXPECT_EQ(h.code, 0) << h.err;
}

// explain with the gradient methods: the CLI's numbers are the library's for the same tokens and
// the predicted target; the ViT and the masked-LM paths write their figures.
TEST(Cli, ExplainRelevanceAndGradientsEqualTheLibraryForThePredictedToken) {
  const std::string tmp = test::temp_dir("cli_explain_grad");
  const std::string text = "Call me Ishmael. Some years ago, never mind how long";
  ASSERT_EQ(test::run_cli({"dump", "--text", text, "-o", tmp + "/d.safetensors"}).code, 0);
  SafetensorsFile d(tmp + "/d.safetensors");
  ModelInput in;
  in.ids = test::read_i64(d, "input_ids");
  auto m = load_model(Checkpoint(test::source_dir() + "/models/gpt2-moby"));
  for (const char* method : {"relevance", "grad-attention", "grad-x-input"}) {
    SCOPED_TRACE(method);
    auto j = run_json({"explain", "--method", method, "--text", text, "--start-layer", "1", "-o", tmp + "/r.json"});
    const int64_t T = int64_t(in.ids.size());
    EXPECT_EQ(j["position"], T - 1);
    const Target t{T - 1, j["target"]["index"].get<int64_t>(), "logit"};
    AttributionOptions o;
    o.method = method;
    o.start_layer = 1;
    const Attribution a = attribute(*m, in, t, Array::zeros(m->features(in).shape), o);
    EXPECT_NEAR(j["value"].get<double>(), a.value, 1e-4);
    const std::vector<double> want = a.attr.empty() ? a.per_unit : reduce_attribution(a.attr, "sum");
    ASSERT_EQ(j["scores"].size(), want.size());
    for (size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(j["scores"][k].get<double>(), want[k], 1e-6) << k;
  }
  // The predicted token is the argmax of the logits at the last position.
  TraceOptions to;
  to.logits = true;
  const Trace tr = m->forward(in, to);
  const int64_t V = tr.logits.dim(1), last = tr.logits.dim(0) - 1;
  const float* row = tr.logits.ptr() + last * V;
  auto j = run_json({"explain", "--method", "relevance", "--text", text, "-o", tmp + "/p.json"});
  EXPECT_EQ(j["target"]["index"].get<int64_t>(), std::max_element(row, row + V) - row);
  for (const auto& v : j["scores"]) EXPECT_GE(v.get<double>(), 0.0);  // (.)+ and a rollout: no negatives
  // Figures: a ViT overlay, a masked-LM target.
  const std::string digit = test::source_dir() + "/models/vit-mnist/samples/digit-0-0.png";
  for (const char* ext : {".png", ".html"}) {
    test::Run r = test::run_cli({"explain", "--method", "relevance", "--model",
                                 test::source_dir() + "/models/vit-mnist", "--image", digit, "-o", tmp + "/v" + ext});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(test::file_exists(tmp + "/v" + ext));
  }
  // A continuation: one row per greedily generated token (the same tokens `generate` prints), one
  // column per prompt token; given text is attributed token by token.
  auto c = run_json(
      {"explain", "--method", "grad-x-input", "--continuation", "-n", "4", "--text", text, "-o", tmp + "/c.json"});
  test::Run g = test::run_cli({"generate", "--text", text, "-n", "4", "-o", tmp + "/g.safetensors"});
  ASSERT_EQ(g.code, 0) << g.err;
  EXPECT_NE(g.out.find(c["continuation_text"].get<std::string>()), std::string::npos) << g.out;
  ASSERT_EQ(c["token_attr"].size(), 4u);
  EXPECT_EQ(c["token_attr"][0].size(), in.ids.size());
  EXPECT_EQ(c["target_kind"], "logprob");
  auto ct = run_json(
      {"explain", "--method", "saliency", "--continuation-text", " the whale", "--text", text, "-o", tmp + "/ct.json"});
  EXPECT_EQ(ct["continuation_tokens"].size(), 2u);
  EXPECT_EQ(ct["continuation_tokens"][1], " whale");
  for (const char* ext : {".png", ".html"}) {
    test::Run r = test::run_cli({"explain", "--method", "integrated-gradients", "--steps", "4", "--continuation", "-n",
                                 "3", "--text", text, "-o", tmp + "/c" + ext});
    EXPECT_EQ(r.code, 0) << r.err;
  }
  auto b = run_json({"explain", "--method", "relevance", "--model", test::source_dir() + "/models/bert-moby", "--text",
                     "Call me [MASK] . Some years ago", "-o", tmp + "/b.json"});
  EXPECT_EQ(b["tokens"][b["position"].get<int>()], "[MASK]");
}

TEST(Cli, ExplainErrors) {
  const std::string tmp = test::temp_dir("cli_explain_err");
  expect_error({"explain", "--method", "magic", "--text", "x", "-o", tmp + "/x.json"},
               "--method magic: expected rollout, flow, generation, activation, saliency");
  expect_error({"explain", "--method", "generation", "--model", bert_model(), "--text", "x", "-o", tmp + "/x.json"},
               "does not generate");
  expect_error({"explain", "--method", "rollout", "--text", "Call me", "--position", "mask", "-o", tmp + "/x.json"},
               "--position mask: the input has no mask token");
  expect_error({"explain", "--method", "rollout", "--text", "Call me", "--position", "9", "-o", tmp + "/x.json"},
               "--position 9: expected cls, last, mask or a token index");
  expect_error({"explain", "--method", "rollout", "--text", "x", "--fusion", "median", "-o", tmp + "/x.json"},
               "--fusion median");
  expect_error({"explain", "--method", "rollout", "--text", "x", "-o", tmp + "/x.txt"},
               "expected a file ending in .json");
  expect_error({"explain", "--method", "activation", "--text", "x", "--layer", "9", "-o", tmp + "/x.json"},
               "--layer 9: expected 0..4");
  expect_error({"explain", "--method", "saliency", "--model", bert_model(), "--text", "x", "--continuation", "-o",
                tmp + "/x.json"},
               "--continuation: model_type 'bert' does not generate");
  expect_error({"explain", "--method", "rollout", "--text", "x", "--continuation", "-o", tmp + "/x.json"},
               "--continuation: --method rollout reads attention");
  expect_error(
      {"explain", "--method", "saliency", "--text", "x", "--continuation", "--target", " the", "-o", tmp + "/x.json"},
      "the targets are the continuation's tokens");
  expect_error(
      {"explain", "--method", "relevance", "--text", "Call me", "--target-kind", "prob", "-o", tmp + "/x.json"},
      "--target-kind prob: relevance explains a logit");
  expect_error({"explain", "--method", "relevance", "--text", "Call me", "--start-layer", "7", "-o", tmp + "/x.json"},
               "--start-layer 7: outside 0..3");
  expect_error(
      {"explain", "--method", "saliency", "--text", "Call me", "--target", " Ishmael the whale", "-o", tmp + "/x.json"},
      "--target \" Ishmael the whale\"");
  expect_error(
      {"explain", "--method", "saliency", "--text", "Call me", "--target-id", "99999999", "-o", tmp + "/x.json"},
      "99999999");
}

namespace {
// The text of <script ... id="ID">TEXT</script> in an HTML file.
std::string atlas_element(const std::string& html, const std::string& id) {
  const size_t at = html.find("id=\"" + id + "\">");
  if (at == std::string::npos) return "";
  const size_t from = html.find('>', at) + 1;
  return html.substr(from, html.find("</script>", from) - from);
}
std::string unbase64(const std::string& s) {
  static const std::string abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    const size_t v = abc.find(c);
    if (v == std::string::npos) continue;
    acc = (acc << 6) | uint32_t(v), bits += 6;
    if (bits >= 8) bits -= 8, out.push_back(char((acc >> bits) & 255));
  }
  return out;
}
std::vector<int64_t> read_i32(const SafetensorsFile& f, const std::string& name) {
  const TensorInfo& t = f.info(name);
  EXPECT_EQ(t.dtype, DType::I32) << name;
  std::vector<int32_t> v(size_t(t.numel()));
  std::memcpy(v.data(), f.bytes(t), v.size() * sizeof(int32_t));
  return std::vector<int64_t>(v.begin(), v.end());
}
}  // namespace

// attnscope qk: the dataset's tokens, items and top keys are the model's (checked against dumps of
// the same sentences), and a head's PCA is the PCA of its aligned queries and keys.
TEST(Cli, QkWritesTheJointQueryKeyDatasetOfTheModel) {
  const std::string tmp = test::temp_dir("cli_qk");
  const std::vector<std::string> lines{"Call me Ishmael.", "Some years ago, never mind how long precisely.",
                                       "It is a way I have of driving off the spleen."};
  test::write_file(tmp + "/corpus.txt", lines[0] + "\n\n" + lines[1] + "\r\n" + lines[2] + "\n");
  test::Run r = test::run_cli({"qk", "--corpus", tmp + "/corpus.txt", "--projections", "pca,umap", "--dims", "2,3",
                               "--top-k", "3", "-o", tmp + "/c.qk"});
  ASSERT_EQ(r.code, 0) << r.err;
  SafetensorsFile f(tmp + "/c.qk");
  EXPECT_EQ(f.metadata().at("format"), "attnscope.qk");
  EXPECT_EQ(f.metadata().at("projections"), "pca2,pca3,umap2,umap3");
  const auto tokens = nlohmann::json::parse(f.metadata().at("tokens"));
  const auto items = nlohmann::json::parse(f.metadata().at("items"));
  ASSERT_EQ(items.size(), 3u);
  const auto item = read_i32(f, "item"), position = read_i32(f, "position");
  const int64_t N = int64_t(item.size()), L = 4, H = 4, hd = 28, K = 3;
  ASSERT_EQ(int64_t(tokens.size()), N);
  // Per sentence: the dump's attention gives the top keys; its q/k (all sentences) the PCA.
  std::vector<float> q, k;
  std::vector<int32_t> item32;
  int64_t offset = 0;
  for (size_t s = 0; s < lines.size(); ++s) {
    EXPECT_EQ(items[s], lines[s]);
    const std::string d = tmp + "/d" + std::to_string(s) + ".safetensors";
    ASSERT_EQ(test::run_cli({"dump", "--text", lines[s], "--qkv", "-o", d}).code, 0);
    SafetensorsFile df(d);
    const auto att = dump_attention(d);
    const int64_t T = att[0].dim(1);
    for (int64_t t = 0; t < T; ++t) {
      EXPECT_EQ(item[size_t(offset + t)], int64_t(s));
      EXPECT_EQ(position[size_t(offset + t)], t);
      item32.push_back(int32_t(s));
    }
    const auto ti = read_i32(f, "topk_index");
    const auto tw = f.to_f32("topk_weight");
    // Whole rows within the sentence (causal: keys 0..t) and each key's |v|.
    const auto ro = read_i32(f, "attention_offset");
    const auto rows = f.to_f32("attention");
    const auto vn = f.to_f32("value_norm");
    const int64_t M = f.info("attention").shape[2];
    for (int64_t l = 0; l < L; ++l) {
      const auto v = df.to_f32("value." + std::to_string(l));
      for (int64_t h = 0; h < H; ++h)
        for (int64_t t = 0; t < T; ++t) {
          ASSERT_EQ(ro[size_t(offset + t + 1)] - ro[size_t(offset + t)], t + 1);
          for (int64_t j = 0; j <= t; ++j)
            EXPECT_NEAR(rows[size_t((l * H + h) * M + ro[size_t(offset + t)] + j)],
                        att[size_t(l)].ptr()[(h * T + t) * T + j], 1e-3);
          double norm = 0;
          for (int64_t c = 0; c < hd; ++c)
            norm += double(v[size_t((h * T + t) * hd + c)]) * v[size_t((h * T + t) * hd + c)];
          EXPECT_NEAR(vn[size_t((l * H + h) * N + offset + t)], std::sqrt(norm), 2e-3 * std::sqrt(norm));
        }
    }
    for (int64_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t t = 0; t < T; ++t) {
          const float* row = att[size_t(l)].ptr() + (h * T + t) * T;
          const int64_t best = std::max_element(row, row + T) - row;
          const size_t at = size_t(((l * H + h) * N + offset + t) * K);
          EXPECT_EQ(ti[at], offset + best);
          EXPECT_NEAR(tw[at], row[best], 1e-3);
          if (t == 0) EXPECT_EQ(ti[at + 1], -1);  // a causal model's first query sees one key
        }
    const auto dq = df.to_f32("query.1"), dk = df.to_f32("key.1");  // layer 1, head 2
    q.insert(q.end(), dq.begin() + 2 * T * hd, dq.begin() + 3 * T * hd);
    k.insert(k.end(), dk.begin() + 2 * T * hd, dk.begin() + 3 * T * hd);
    offset += T;
  }
  ASSERT_EQ(offset, N);
  align_queries_keys(q.data(), k.data(), N, hd, true);
  std::vector<float> points(q);
  points.insert(points.end(), k.begin(), k.end());
  const auto want = pca(points.data(), 2 * N, hd, 2);
  const auto got = f.to_f32("projection.pca2");
  const size_t base = size_t((1 * H + 2) * 2 * N * 2);
  for (int64_t i = 0; i < 2 * N * 2; ++i)
    EXPECT_NEAR(got[base + size_t(i)], want[size_t(i)], 2e-3 * (1 + std::fabs(want[size_t(i)]))) << i;
  const float rho = f.to_f32("spearman")[size_t(1 * H + 2)];
  EXPECT_NEAR(rho, qk_distance_spearman(q.data(), k.data(), hd, item32, true, 20000), 1e-6);
  EXPECT_EQ(f.info("projection.umap3").shape, (std::vector<int64_t>{L, H, 2 * N, 3}));
  // The atlas carries the dataset's bytes: projections per layer, top keys as positions in the item.
  ASSERT_EQ(test::run_cli({"view", "--from", tmp + "/c.qk", "--projections", "umap2,pca3", "-o", tmp + "/a.html"}).code,
            0);
  const std::string html = test::read_file(tmp + "/a.html");
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  const nlohmann::json am = nlohmann::json::parse(atlas_element(html, "attnscope-atlas"));
  EXPECT_EQ(am["format"], "attnscope-atlas");
  EXPECT_EQ(am["n"], N);
  EXPECT_EQ(am["tokens"], tokens);
  EXPECT_EQ(am["projections"].size(), 2u);
  EXPECT_EQ(am["projections"][0]["name"], "umap2");
  EXPECT_EQ(html.find("attnscope-atlas-proj-pca2-"), std::string::npos);
  {
    const TensorInfo& t = f.info("projection.pca3");
    const size_t per = size_t(t.end - t.begin) / size_t(L);
    const std::string got = unbase64(atlas_element(html, "attnscope-atlas-proj-pca3-2"));
    ASSERT_EQ(got.size(), per);
    EXPECT_EQ(std::memcmp(got.data(), f.bytes(t) + 2 * per, per), 0);
    const std::string top = unbase64(atlas_element(html, "attnscope-atlas-topk-3"));
    ASSERT_EQ(top.size(), size_t(H * N * K * 2));
    const auto ti = read_i32(f, "topk_index");
    for (int64_t x = 0; x < H * N * K; ++x) {
      uint16_t u;
      std::memcpy(&u, top.data() + 2 * x, 2);
      const int64_t j = ti[size_t(3 * H * N * K + x)];
      EXPECT_EQ(u, j < 0 ? 0xFFFF : position[size_t(j)]) << x;
    }
  }
  // --max-tokens stops before the item that would pass it.
  ASSERT_EQ(test::run_cli({"qk", "--corpus", tmp + "/corpus.txt", "--projections", "pca", "--dims", "2", "--max-tokens",
                           std::to_string(N - 1), "-o", tmp + "/short.qk"})
                .code,
            0);
  EXPECT_EQ(nlohmann::json::parse(SafetensorsFile(tmp + "/short.qk").metadata().at("items")).size(), 2u);
  // Images: a folder of digits through the ViT, with the images in the file.
  const std::string digits = tmp + "/digits";
  std::filesystem::create_directories(digits);
  for (const char* d : {"digit-0-0.png", "digit-1-0.png", "digit-7-0.png"})
    std::filesystem::copy_file(test::source_dir() + "/models/vit-mnist/samples/" + d, digits + "/" + d);
  test::Run v = test::run_cli({"qk", "--model", test::source_dir() + "/models/vit-mnist", "--corpus", digits,
                               "--projections", "pca,tsne", "--dims", "2", "-o", tmp + "/v.qk"});
  ASSERT_EQ(v.code, 0) << v.err;
  SafetensorsFile vf(tmp + "/v.qk");
  EXPECT_EQ(vf.info("image").shape, (std::vector<int64_t>{3, 28, 28, 3}));
  EXPECT_EQ(vf.metadata().at("patch_size"), "7");
}

TEST(Cli, AtlasErrors) {
  const std::string tmp = test::temp_dir("cli_atlas_err");
  test::write_file(tmp + "/c.txt", "Call me Ishmael.\nIt is a way I have.\n");
  ASSERT_EQ(
      test::run_cli({"qk", "--corpus", tmp + "/c.txt", "--projections", "pca", "--dims", "2", "-o", tmp + "/c.qk"})
          .code,
      0);
  expect_error({"view", "--from", tmp + "/c.qk", "--projections", "tsne2", "-o", tmp + "/a.html"},
               "--projections tsne2: " + tmp + "/c.qk has pca2");
  expect_error({"view", "--from", tmp + "/c.qk", "--view", "head", "-o", tmp + "/a.html"},
               "--view head: an atlas (--from a .qk file) always has");
  expect_error({"view", "--from", tmp + "/c.qk", "--text", "x", "-o", tmp + "/a.html"}, "drop --model/--text/--image");
  expect_error({"view", "--from", tmp + "/c.qk", "--layer", "7", "-o", tmp + "/a.html"}, "--layer 7");
  ASSERT_EQ(test::run_cli({"dump", "--text", "Call me Ishmael.", "-o", tmp + "/d.safetensors"}).code, 0);
  expect_error({"view", "--from", tmp + "/d.safetensors", "--projections", "pca2", "-o", tmp + "/a.html"},
               "--projections: only for an atlas");
  // A damaged dataset: a tensor missing, or of the wrong shape.
  auto damaged = [&](const std::string& out, const std::string& drop, const std::string& flatten) {
    SafetensorsFile f(tmp + "/c.qk");
    std::vector<TensorWrite> ts;
    for (const auto& [name, t] : f.tensors()) {
      if (name == drop) continue;
      TensorWrite w{name, t.dtype, t.shape, {}};
      w.bytes.assign(f.bytes(t), f.bytes(t) + (t.end - t.begin));
      if (name == flatten) w.shape = {t.numel()};
      ts.push_back(w);
    }
    write_safetensors(out, ts, f.metadata());
  };
  damaged(tmp + "/bad.qk", "value_norm", "");
  damaged(tmp + "/flat.qk", "", "spearman");
  expect_error({"view", "--from", tmp + "/flat.qk", "-o", tmp + "/a.html"},
               tmp + "/flat.qk: spearman: expected shape [4, 4], found [16]");
  expect_error({"view", "--from", tmp + "/bad.qk", "-o", tmp + "/a.html"},
               tmp + "/bad.qk: expected a tensor 'value_norm' (written by attnscope qk), found none");
}

TEST(Cli, QkErrors) {
  const std::string tmp = test::temp_dir("cli_qk_err");
  test::write_file(tmp + "/c.txt", "Call me Ishmael.\n");
  test::write_file(tmp + "/empty.txt", "\n  \n");
  expect_error({"qk", "--corpus", tmp, "-o", tmp + "/x.qk"}, "a folder of images needs an image model");
  expect_error({"qk", "--corpus", tmp + "/empty.txt", "-o", tmp + "/x.qk"}, "found no text");
  expect_error({"qk", "--corpus", tmp + "/missing.txt", "-o", tmp + "/x.qk"}, "cannot read the file");
  expect_error({"qk", "--corpus", tmp + "/c.txt", "--projections", "pca,mds", "-o", tmp + "/x.qk"},
               "--projections pca,mds: expected a comma list of pca, tsne, umap");
  expect_error({"qk", "--corpus", tmp + "/c.txt", "--dims", "4", "-o", tmp + "/x.qk"}, "--dims 4");
  expect_error({"qk", "--corpus", tmp + "/c.txt", "--perplexity", "0", "-o", tmp + "/x.qk"}, "--perplexity 0");
  expect_error({"qk", "--corpus", tmp + "/c.txt", "--attention-max", "-1", "-o", tmp + "/x.qk"}, "--attention-max -1");
  // Items longer than --attention-max keep their top keys only: no whole rows.
  test::write_file(tmp + "/two.txt", "Call me.\nSome years ago, never mind how long precisely.\n");
  ASSERT_EQ(test::run_cli({"qk", "--corpus", tmp + "/two.txt", "--attention-max", "4", "--projections", "pca", "--dims",
                           "2", "-o", tmp + "/m.qk"})
                .code,
            0);
  {
    SafetensorsFile m(tmp + "/m.qk");
    const auto it = read_i32(m, "item"), off = read_i32(m, "attention_offset");
    for (size_t i = 0; i < it.size(); ++i)
      EXPECT_EQ(off[i + 1] - off[i], it[i] == 0 ? read_i32(m, "position")[i] + 1 : 0) << i;
    EXPECT_GT(std::count(it.begin(), it.end(), 1), 4);
    EXPECT_LE(std::count(it.begin(), it.end(), 0), 4);
  }
  // A line past the model's positions is named by its line number (or cut with --truncate).
  std::string long_line;
  for (int i = 0; i < 300; ++i) long_line += " whale";
  test::write_file(tmp + "/long.txt", "\n" + long_line + "\nCall me Ishmael.\n");
  expect_error({"qk", "--corpus", tmp + "/long.txt", "-o", tmp + "/x.qk"},
               "long.txt, line 2: 300 tokens exceed the model's limit of 256 positions (pass --truncate");
  EXPECT_EQ(test::run_cli({"qk", "--corpus", tmp + "/long.txt", "--truncate", "--projections", "pca", "--dims", "2",
                           "-o", tmp + "/t.qk"})
                .code,
            0);
  expect_error({"qk", "--corpus", tmp + "/c.txt", "-o", tmp + "/no/such/x.qk"}, "does not exist");
  expect_error(
      {"qk", "--model", test::source_dir() + "/models/vit-mnist", "--corpus", tmp + "/c.txt", "-o", tmp + "/x.qk"},
      "takes images");
}
