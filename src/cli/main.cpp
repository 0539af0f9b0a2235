// attnscope command line: info, tokenize, dump, heatmap.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "attnscope/analysis.h"
#include "attnscope/checkpoint.h"
#include "attnscope/dump.h"
#include "attnscope/error.h"
#include "attnscope/image.h"
#include "attnscope/model.h"
#include "attnscope/render.h"
#include "attnscope/tokenizer.h"
#include "attnscope/atlas.h"
#include "attnscope/safetensors.h"
#include "attnscope/view.h"
#include "cli.h"
#include "explain.h"
#include "qk.h"

using namespace attnscope;

namespace attnscope::cli {

void add_model(CLI::App* c, Common& o) {
  c->add_option("--model,-m", o.model,
                "model folder or Hugging Face repo id in the local cache (default: the shipped model)");
}
void add_text(CLI::App* c, Common& o) {
  c->add_option("--text,-t", o.text, "input text");
  c->add_option("--text-file", o.text_file, "read the input text from a file ('-' for stdin)");
  c->add_option("--text-b", o.text_b, "second sentence of a pair ([CLS] A [SEP] B [SEP] for BERT)");
  c->add_option("--image", o.image, "input image for vision models (PNG or JPEG)");
  c->add_flag("--truncate", o.truncate, "keep the first max-positions tokens of a longer text");
}

std::string model_dir(const Common& o) { return o.model.empty() ? default_model_dir() : o.model; }

std::string read_text(const Common& o) {
  if (!o.text.empty() && !o.text_file.empty()) throw Error("--text and --text-file: give one, found both");
  std::string text = o.text;
  if (!o.text_file.empty()) {
    std::stringstream ss;
    if (o.text_file == "-") {
      ss << std::cin.rdbuf();
    } else {
      std::error_code ec;
      if (std::filesystem::is_directory(o.text_file, ec))
        throw Error("--text-file " + o.text_file + ": expected a text file, found a folder");
      std::ifstream f(o.text_file, std::ios::binary);
      if (!f) throw Error("--text-file " + o.text_file + ": cannot read the file");
      ss << f.rdbuf();
    }
    text = ss.str();
    if (text.empty()) throw Error("--text-file " + o.text_file + ": expected text, found an empty file");
  }
  if (text.empty()) throw Error("--text: expected non-empty text (or --text-file), found none");
  if (auto bad = find_invalid_utf8(text))
    throw Error(std::string(o.text_file.empty() ? "--text" : "--text-file " + o.text_file) +
                ": expected valid UTF-8, found an invalid byte sequence at byte " + std::to_string(*bad));
  return text;
}

// Tokenizes (a pair when --text-b is given) and applies --truncate against the model's context.
Encoding encode_for(const Tokenizer& tok, const Common& o, const std::string& text, int64_t max_positions) {
  if (!o.text_b.empty())
    if (auto bad = find_invalid_utf8(o.text_b))
      throw Error("--text-b: expected valid UTF-8, found an invalid byte sequence at byte " + std::to_string(*bad));
  Encoding enc = o.text_b.empty() ? tok.encode(text) : tok.encode_pair(text, o.text_b);
  if (enc.size() == 0) throw Error("--text: the text produced no tokens");
  if (int64_t(enc.size()) > max_positions) {
    if (!o.truncate || !o.text_b.empty())
      throw Error("--text: " + std::to_string(enc.size()) + " tokens exceed the model's limit of " +
                  std::to_string(max_positions) + " positions" +
                  (o.text_b.empty() ? " (pass --truncate to keep the first " + std::to_string(max_positions) + ")"
                                    : " (shorten --text or --text-b; --truncate cuts single texts only)"));
    std::cerr << "attnscope: note: truncated " << enc.size() << " tokens to " << max_positions << "\n";
    auto cut = [&](auto& v) { v.resize(size_t(max_positions)); };
    cut(enc.ids);
    cut(enc.tokens);
    cut(enc.display);
    cut(enc.offsets);
    cut(enc.special);
    cut(enc.type_ids);
    cut(enc.sequence);
  }
  return enc;
}

Prepared prepare_image(const Common& o, const Model& m, const std::string& dir) {
  const ModelInfo& i = m.info();
  if (o.has_text() || !o.text_b.empty())
    throw Error("--text: model_type '" + i.model_type + "' takes an image (--image), not text");
  Prepared p;
  p.source = o.image;
  ImageProcessor proc = ImageProcessor::load(dir, i.image_size, i.channels);
  p.in.pixels = preprocess(load_image(o.image), proc, i.channels);
  const int64_t g = i.grid();
  auto add = [&](const std::string& label, int64_t id) {
    p.enc.ids.push_back(id);
    p.enc.tokens.push_back(label);
    p.enc.display.push_back(label);
    p.enc.offsets.emplace_back(0, 0);
    p.enc.special.push_back(id == 0);
    p.enc.type_ids.push_back(0);
    p.enc.sequence.push_back(id == 0 ? -1 : 0);
  };
  add("[CLS]", 0);
  for (int64_t r = 0; r < g; ++r)
    for (int64_t c = 0; c < g; ++c) add("r" + std::to_string(r) + "c" + std::to_string(c), 1 + r * g + c);
  return p;
}

ModelInput input_for(const Model& m, const Encoding& enc) {
  ModelInput in;
  in.ids = enc.ids;
  if (m.info().type_vocab_size > 0) in.type_ids = enc.type_ids;
  return in;
}

// What the output head predicts for this input: the next token (lm), every [MASK] (mlm).
nlohmann::json predictions(const Model& m, const Tokenizer* tok, const Encoding& enc, const Trace& tr, int64_t k) {
  nlohmann::json out = nlohmann::json::array();
  if (tr.logits.empty()) return out;
  const int64_t V = tr.logits.shape.back();
  auto row = [&](int64_t pos, const char* what) {
    nlohmann::json top = nlohmann::json::array();
    for (const Prediction& p : top_k(tr.logits.ptr() + pos * V, V, k))
      top.push_back({{"id", p.id}, {"token", tok->display_of(p.id)}, {"prob", p.prob}});
    out.push_back({{"position", pos}, {"predicts", what}, {"top", top}});
  };
  if (m.info().head == "classifier") {
    nlohmann::json top = nlohmann::json::array();
    for (const Prediction& p : top_k(tr.logits.ptr(), V, k))
      top.push_back({{"id", p.id}, {"label", m.info().labels.at(size_t(p.id))}, {"prob", p.prob}});
    out.push_back({{"position", 0}, {"predicts", "class"}, {"top", top}});
    return out;
  }
  if (m.info().head == "lm") row(int64_t(enc.size()) - 1, "next token");
  if (m.info().head == "mlm")
    if (auto mask = mask_token_id(*tok))
      for (size_t i = 0; i < enc.size(); ++i)
        if (enc.ids[i] == *mask) row(int64_t(i), "masked token");
  return out;
}

bool wants_logits(const Model& m, const Tokenizer* tok, const Encoding& enc) {
  if (m.info().head == "lm" || m.info().head == "classifier") return true;
  if (!tok) return false;
  if (m.info().head != "mlm") return false;
  auto mask = mask_token_id(*tok);
  return mask && std::find(enc.ids.begin(), enc.ids.end(), *mask) != enc.ids.end();
}

// Loads the tokenizer (text models; once: a loaded tok is reused) and turns --text/--text-b or
// --image into the model input.
Prepared prepare(const Common& o, const Model& m, const std::string& dir, std::unique_ptr<Tokenizer>& tok) {
  if (m.info().image) return prepare_image(o, m, dir);
  if (!o.image.empty())
    throw Error("--image: model_type '" + m.info().model_type + "' takes text (--text), not an image");
  if (!tok) tok = load_tokenizer(dir);
  Prepared p;
  p.source = read_text(o);
  p.enc = encode_for(*tok, o, p.source, m.info().max_positions);
  p.in = input_for(m, p.enc);
  return p;
}

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
  return s;
}

}  // namespace attnscope::cli

using namespace attnscope::cli;

namespace {

int run_info(const Common& o, bool as_json, int64_t top) {
  Checkpoint ck(model_dir(o));
  auto model = load_model(ck);
  const ModelInfo& i = model->info();
  std::unique_ptr<Tokenizer> tok;
  if (!i.image) tok = load_tokenizer(ck.dir());
  nlohmann::json preds = nlohmann::json::array();
  std::string note;
  if (o.has_input()) {
    Prepared p = prepare(o, *model, ck.dir(), tok);
    TraceOptions to;
    to.attention = false;
    to.logits = wants_logits(*model, tok.get(), p.enc);
    if (i.head.empty())
      note = "the checkpoint has no output head: nothing to predict";
    else if (!to.logits)
      note = "no " + std::string(tok && mask_token_id(*tok) ? tok->id_to_token(*mask_token_id(*tok)) : "[MASK]") +
             " token in the text: nothing to predict";
    preds = predictions(*model, tok.get(), p.enc, model->forward(p.in, to), top);
  }
  std::vector<std::string> files = ck.files_used();
  if (tok)
    for (auto& f : tok->files()) files.push_back(f);
  if (i.image)
    for (auto& f : ImageProcessor::load(ck.dir(), i.image_size, i.channels).files) files.push_back(f);
  if (as_json) {
    nlohmann::json j{{"model", ck.dir()},
                     {"family", i.family},
                     {"model_type", i.model_type},
                     {"layers", i.n_layers},
                     {"heads", i.n_heads},
                     {"kv_heads", i.n_kv_heads},
                     {"head_dim", i.head_dim},
                     {"d_model", i.d_model},
                     {"d_ff", i.d_ff},
                     {"vocab_size", i.vocab_size},
                     {"max_positions", i.max_positions},
                     {"dtype", i.weight_dtype},
                     {"parameters", i.n_params},
                     {"tied_head", i.tied_head},
                     {"activation", i.activation},
                     {"causal", i.causal},
                     {"head", i.head},
                     {"token_types", i.type_vocab_size},
                     {"tokenizer", tok ? tok->kind() : ""},
                     {"files", files}};
    if (i.image) {
      j["image_size"] = i.image_size;
      j["patch_size"] = i.patch_size;
      j["channels"] = i.channels;
      j["labels"] = i.labels;
    }
    if (o.has_input()) j["predictions"] = preds;
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("model          %s\n", ck.dir().c_str());
  std::printf("family         %s (model_type %s, %s)\n", i.family.c_str(), i.model_type.c_str(),
              i.causal ? "causal" : "bidirectional");
  std::printf("layers         %lld\n", (long long)i.n_layers);
  if (i.n_kv_heads && i.n_kv_heads != i.n_heads)
    std::printf("heads          %lld per layer (%lld key/value heads, grouped-query), head dim %lld\n",
                (long long)i.n_heads, (long long)i.n_kv_heads, (long long)i.head_dim);
  else
    std::printf("heads          %lld per layer, head dim %lld\n", (long long)i.n_heads, (long long)i.head_dim);
  std::printf("d_model        %lld (MLP %lld, %s)\n", (long long)i.d_model, (long long)i.d_ff, i.activation.c_str());
  if (i.image) {
    std::printf("image          %lldx%lld, %lld channel%s, %lldx%lld patches of %lld px (+ [CLS] = %lld tokens)\n",
                (long long)i.image_size, (long long)i.image_size, (long long)i.channels, i.channels == 1 ? "" : "s",
                (long long)i.grid(), (long long)i.grid(), (long long)i.patch_size, (long long)i.max_positions);
    if (!i.labels.empty()) std::printf("classes        %zu\n", i.labels.size());
  } else {
    std::printf("vocab          %lld\n", (long long)i.vocab_size);
    std::printf("max positions  %lld\n", (long long)i.max_positions);
  }
  std::printf("dtype          %s weights, computed in F32\n", i.weight_dtype.c_str());
  std::printf("parameters     %s (%s output head)\n", with_commas(i.n_params).c_str(),
              i.head.empty() ? "no"
              : i.tied_head  ? "tied"
                             : "separate");
  std::printf("head           %s\n", i.head == "lm"           ? "causal LM (next token)"
                                     : i.head == "mlm"        ? "masked LM"
                                     : i.head == "classifier" ? "classifier"
                                                              : "none (encoder only)");
  if (i.type_vocab_size > 1) std::printf("token types    %lld (sentence pairs)\n", (long long)i.type_vocab_size);
  if (tok) std::printf("tokenizer      %s\n", tok->kind().c_str());
  for (size_t k = 0; k < files.size(); ++k)
    std::printf("%s%s\n", k ? "               " : "files          ", files[k].c_str());
  if (!note.empty()) std::printf("predictions    %s\n", note.c_str());
  for (const auto& p : preds) {
    if (p["predicts"] == "class")
      std::printf("predictions    class:");
    else
      std::printf("predictions    %s at position %lld:", p["predicts"].get<std::string>().c_str(),
                  (long long)p["position"].get<int64_t>());
    for (const auto& t : p["top"])
      std::printf(
          "  \"%s\" %.4f",
          escape_controls(t.contains("label") ? t["label"].get<std::string>() : t["token"].get<std::string>()).c_str(),
          t["prob"].get<double>());
    std::printf("\n");
  }
  return 0;
}

int run_tokenize(const Common& o, bool as_json) {
  if (!o.image.empty())
    throw Error("--image: tokenize splits text; an image model's tokens are its patches (see dump)");
  const std::string dir = resolve_model_dir(model_dir(o));
  auto tok = load_tokenizer(dir);
  const std::string text = read_text(o);
  Encoding enc = o.text_b.empty() ? tok->encode(text) : tok->encode_pair(text, o.text_b);
  if (as_json) {
    nlohmann::json j{{"ids", enc.ids},         {"tokens", enc.tokens},     {"display", enc.display},
                     {"offsets", enc.offsets}, {"type_ids", enc.type_ids}, {"special", enc.special}};
    if (auto b = enc.sentence_b_start()) j["sentence_b_start"] = *b;
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  // Pads by code points, so that "Ġ" and CJK tokens keep the columns straight.
  auto padded = [](const std::string& s, size_t width) {
    size_t n = utf8_codepoints(s).size();
    return s + std::string(n < width ? width - n : 1, ' ');
  };
  const bool pair = enc.sentence_b_start().has_value();
  std::printf("%6s %8s  %-10s %-24s %s\n", "index", "id", pair ? "seg:bytes" : "bytes", "token", "display");
  for (size_t k = 0; k < enc.size(); ++k) {
    char span[32];
    if (pair)
      std::snprintf(span, sizeof span, "%s:%zu-%zu",
                    enc.sequence[k] < 0 ? "-"
                    : enc.sequence[k]   ? "B"
                                        : "A",
                    enc.offsets[k].first, enc.offsets[k].second);
    else
      std::snprintf(span, sizeof span, "%zu-%zu", enc.offsets[k].first, enc.offsets[k].second);
    const std::string shown = "\"" + escape_controls(enc.display[k]) + "\"";
    std::printf("%6zu %8lld  %-10s %s%s\n", k, (long long)enc.ids[k], span, padded(enc.tokens[k], 24).c_str(),
                shown.c_str());
  }
  std::printf("%zu tokens\n", enc.size());
  return 0;
}

int run_dump(const Common& o, const std::string& out, bool qkv, bool hidden, const std::string& dtype) {
  if (dtype != "f32" && dtype != "f16") throw Error("--dtype " + dtype + ": expected f32 or f16");
  if (out.empty()) throw Error("-o: expected an output .safetensors path");
  Checkpoint ck(model_dir(o));
  auto model = load_model(ck);
  std::unique_ptr<Tokenizer> tok;
  Prepared p = prepare(o, *model, ck.dir(), tok);
  TraceOptions to;
  to.qkv = qkv;
  to.hidden = hidden;
  to.logits = wants_logits(*model, tok.get(), p.enc);
  Trace tr = model->forward(p.in, to);
  DumpOptions d;
  d.f16 = dtype == "f16";
  if (auto b = p.enc.sentence_b_start()) {
    d.extra["text_b"] = o.text_b;
    d.extra["sentence_b_start"] = std::to_string(*b);
  }
  if (!tr.logits.empty())
    d.extra["predictions"] =
        predictions(*model, tok.get(), p.enc, tr, 5).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  write_dump(out, model->info(), p.enc, p.source, tr, d);
  std::cout << out << "\n";
  return 0;
}

struct OverlayArgs {
  std::string out, head = "mean", query = "cls", cmap = "inferno", title;
  int64_t layer = -1;
  double alpha = 0.6, dpi = 100;
};

// Attention from one query token ([CLS] by default) over the image patches, on the image.
int run_overlay(const Common& o, const OverlayArgs& a) {
  if (a.out.empty()) throw Error("-o: expected an output path ending in .png, .svg or .pdf");
  check_figure_path(a.out);
  colormap(a.cmap);
  Checkpoint ck(model_dir(o));
  auto model = load_model(ck);
  const ModelInfo& info = model->info();
  if (!info.image) throw Error("overlay: model_type '" + info.model_type + "' is not an image model (expected vit)");
  if (o.image.empty()) throw Error("--image: expected an image file (PNG or JPEG)");
  const int64_t layer = resolve_layer(a.layer, info.n_layers);
  const HeadSelection heads = HeadSelection::parse(a.head, info.n_heads);
  std::unique_ptr<Tokenizer> tok;
  Prepared p = prepare(o, *model, ck.dir(), tok);
  int64_t q = -1;
  if (a.query == "cls") q = 0;
  for (size_t i = 0; i < p.enc.size() && q < 0; ++i)
    if (p.enc.display[i] == a.query) q = int64_t(i);
  if (q < 0) {
    char* end = nullptr;
    long v = std::strtol(a.query.c_str(), &end, 10);
    if (end && *end == 0 && !a.query.empty() && v >= 0 && v < long(p.enc.size())) q = v;
  }
  if (q < 0)
    throw Error("--query " + a.query + ": expected cls, a patch label like r0c0..r" + std::to_string(info.grid() - 1) +
                "c" + std::to_string(info.grid() - 1) + ", or a token index 0.." + std::to_string(p.enc.size() - 1));
  TraceOptions to;
  to.layers = {layer};
  Trace tr = model->forward(p.in, to);
  const int64_t T = int64_t(p.enc.size()), g = info.grid();
  std::vector<float> full = reduce_heads(tr.attention[size_t(layer)], heads);
  std::vector<float> map(full.begin() + q * T + 1, full.begin() + q * T + T);  // keys r0c0..: the patches
  Image im = convert_channels(load_image(o.image), 3);
  OverlayOptions oo;
  oo.cmap = a.cmap;
  oo.alpha = a.alpha;
  oo.dpi = a.dpi;
  oo.title = !a.title.empty()
                 ? a.title
                 : "Layer " + std::to_string(layer) + ", " + heads.describe() + ": attention from " +
                       p.enc.display[size_t(q)] + " to the " + std::to_string(g) + "x" + std::to_string(g) + " patches";
  render_image_attention(im.data.data(), im.width, im.height, g, map, oo, a.out);
  std::cout << a.out << "\n";
  return 0;
}

struct GenerateArgs {
  std::string out;
  std::vector<std::string> stop;
  bool no_cache = false, json = false;
  GenerateOptions g;
};

int run_generate(const Common& o, GenerateArgs a) {
  Checkpoint ck(model_dir(o));
  auto model = load_model(ck);
  auto tok = load_tokenizer(ck.dir());
  const std::string prompt = read_text(o);
  Encoding enc = tok->encode(prompt);
  if (enc.size() == 0) throw Error("--text: the text produced no tokens");
  a.g.use_cache = !a.no_cache;
  a.g.attention = !a.out.empty();
  const size_t P = enc.size();
  auto stop = [&](const std::vector<int64_t>& ids) {
    if (a.stop.empty()) return false;
    const std::string gen = tok->decode(std::vector<int64_t>(ids.begin() + long(P), ids.end()));
    for (const auto& s : a.stop)
      if (!s.empty() && gen.find(s) != std::string::npos) return true;
    return false;
  };
  Generation g = model->generate(enc.ids, a.g, stop);
  const std::vector<int64_t> new_ids(g.ids.begin() + long(P), g.ids.end());
  const std::string continuation = tok->decode(new_ids);
  const size_t n_new = new_ids.size();
  const char* why = g.stopped_by_eos ? "end-of-sequence token" : g.stopped_by_caller ? "stop string" : "max-new-tokens";
  if (!a.out.empty()) {
    // Prompt tokens keep their offsets; generated ones index into prompt + continuation.
    size_t prev = prompt.size();
    for (size_t k = 0; k < n_new; ++k) {
      const int64_t id = new_ids[k];
      size_t end =
          prompt.size() + tok->decode(std::vector<int64_t>(new_ids.begin(), new_ids.begin() + long(k + 1))).size();
      end = std::max(end, prev);
      enc.ids.push_back(id);
      enc.tokens.push_back(tok->id_to_token(id));
      enc.display.push_back(tok->display_of(id));
      enc.offsets.emplace_back(prev, end);
      enc.special.push_back(false);
      enc.type_ids.push_back(0);
      enc.sequence.push_back(0);
      prev = end;
    }
    Trace tr;
    tr.attention = g.attention;
    DumpOptions d;
    d.extra["prompt_tokens"] = std::to_string(P);
    d.extra["generated_tokens"] = std::to_string(n_new);
    d.extra["stopped_by"] = why;
    d.extra["generation"] = nlohmann::json{
        {"max_new_tokens", a.g.max_new_tokens},
        {"temperature", a.g.temperature},
        {"top_k", a.g.top_k},
        {"seed", a.g.seed},
        {"kv_cache",
         a.g.use_cache}}.dump();
    write_dump(a.out, model->info(), enc, prompt + continuation, tr, d);
  }
  if (a.json) {
    nlohmann::json j{{"prompt", prompt},    {"continuation", continuation}, {"ids", g.ids},
                     {"prompt_tokens", P},  {"generated_tokens", n_new},    {"stopped_by", why},
                     {"seconds", g.seconds}};
    if (!a.out.empty()) j["dump"] = a.out;
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    std::cout << prompt << continuation << "\n";
    if (!a.out.empty()) std::cout << a.out << "\n";
  }
  std::fprintf(stderr, "attnscope: %zu new tokens in %.2f s (%.1f tokens/s, %s), stopped by %s\n", n_new, g.seconds,
               g.seconds > 0 ? double(n_new) / g.seconds : 0.0, a.g.use_cache ? "KV cache" : "no cache", why);
  return 0;
}

struct HeatmapArgs {
  std::string out, head = "mean", cmap = "viridis", title = "Attention Heatmap", size = "10x8";
  int64_t layer = -1;
  double dpi = 100;
  bool annotate = false;
};

int run_heatmap(const Common& o, const HeatmapArgs& a) {
  if (a.out.empty()) throw Error("-o: expected an output path ending in .png, .svg or .pdf");
  HeatmapOptions ho;
  {
    double w = 0, h = 0;
    char x = 0, extra = 0;
    if (std::sscanf(a.size.c_str(), "%lf%c%lf%c", &w, &x, &h, &extra) != 3 || (x != 'x' && x != 'X') || !(w > 0) ||
        !(h > 0))
      throw Error("--size " + a.size + ": expected WIDTHxHEIGHT in inches, e.g. 10x8");
    ho.width_in = w;
    ho.height_in = h;
  }
  ho.dpi = a.dpi;
  ho.cmap = a.cmap;
  ho.title = a.title;
  ho.annotate = a.annotate;
  colormap(ho.cmap);
  check_figure_path(a.out);
  Checkpoint ck(model_dir(o));
  auto model = load_model(ck);
  const ModelInfo& info = model->info();
  const int64_t layer = resolve_layer(a.layer, info.n_layers);
  const HeadSelection heads = HeadSelection::parse(a.head, info.n_heads);
  std::unique_ptr<Tokenizer> tok;
  Prepared p = prepare(o, *model, ck.dir(), tok);
  TraceOptions to;
  to.layers = {layer};  // the one layer drawn: the others are computed but not kept
  Trace tr = model->forward(p.in, to);
  Matrix m;
  m.rows = m.cols = int64_t(p.enc.size());
  m.values = reduce_heads(tr.attention[size_t(layer)], heads);
  m.row_labels = m.col_labels = p.enc.display;
  render_heatmap(m, ho, a.out);
  std::cout << a.out << "\n";
  return 0;
}

struct ViewArgs {
  std::string out, from, view = "all", heads, title, include_layers, include_heads, projections;
  int64_t layer = -1;
};

std::vector<std::string> parse_views(const std::string& v) {
  if (v == "all") return {"head", "model", "neuron"};
  std::vector<std::string> out;
  std::stringstream ss(v);
  for (std::string part; std::getline(ss, part, ',');) {
    if (part != "head" && part != "model" && part != "neuron")
      throw Error("--view " + v + ": expected head, model, neuron, a comma list of them, or all");
    out.push_back(part);
  }
  if (out.empty()) throw Error("--view: expected head, model, neuron or all, found nothing");
  return out;
}

// "0,3,5" -> {0, 3, 5}, each in 0..n-1; flag names the option in errors.
std::vector<int64_t> parse_indices(const std::string& flag, const std::string& s, int64_t n, const char* what) {
  std::vector<int64_t> out;
  if (s.empty()) return out;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, ',');) {
    char* end = nullptr;
    const long long h = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || h < 0 || h >= n)
      throw Error(flag + " " + s + ": expected " + what + " indices 0.." + std::to_string(n - 1) +
                  " separated by commas, found '" + part + "'");
    out.push_back(h);
  }
  return out;
}

std::string human_bytes(double b) {
  char buf[32];
  if (b >= 1e6)
    std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.0f kB", b / 1e3);
  return buf;
}

// The AttentionViz atlas of a .qk dataset (view --from corpus.qk).
int run_atlas(const Common& o, const ViewArgs& a) {
  if (o.has_input() || !o.model.empty())
    throw Error("--from " + a.from +
                ": the dataset already holds the model's queries and keys; drop --model/--text/--image");
  if (a.view != "all")
    throw Error("--view " + a.view + ": an atlas (--from a .qk file) always has the matrix, single, sentence" +
                std::string(" and image views"));
  if (!a.include_layers.empty() || !a.include_heads.empty())
    throw Error("--include-layers/--include-heads: not for an atlas (attnscope qk projects every head)");
  AtlasOptions ao;
  ao.title = a.title;
  std::stringstream ss(a.projections);
  for (std::string p; std::getline(ss, p, ',');)
    if (!p.empty()) ao.projections.push_back(p);
  SafetensorsFile f(a.from);
  auto num = [&](const char* k) {
    auto it = f.metadata().find(k);
    return it == f.metadata().end() ? int64_t(0) : std::atoll(it->second.c_str());
  };
  const int64_t L = std::max<int64_t>(1, num("n_layers")), H = std::max<int64_t>(1, num("n_heads"));
  ao.layer = resolve_layer(a.layer == -1 ? 0 : a.layer, L);
  const std::vector<int64_t> hs = parse_indices("--heads", a.heads, H, "head");
  ao.head = hs.empty() ? 0 : hs.front();
  const std::string html = atlas_html(a.from, ao);
  std::ofstream out(a.out, std::ios::binary);
  if (!out) throw Error("-o " + a.out + ": cannot write the file");
  out.write(html.data(), std::streamsize(html.size()));
  out.close();
  if (!out) throw Error("-o " + a.out + ": writing failed");
  std::cout << a.out << "\n";
  std::cerr << "attnscope: atlas of " << a.from << ": " << human_bytes(double(html.size())) << "\n";
  return 0;
}

// The head, model and neuron views as one self-contained HTML file.
int run_view(const Common& o, const ViewArgs& a) {
  if (a.out.empty()) throw Error("-o: expected an output .html path");
  ViewOptions vo;
  vo.views = parse_views(a.view);
  const bool neuron = std::find(vo.views.begin(), vo.views.end(), "neuron") != vo.views.end();
  ViewData d;
  if (!a.from.empty() && is_qk_file(a.from)) return run_atlas(o, a);
  if (!a.projections.empty()) throw Error("--projections: only for an atlas (--from a .qk file from attnscope qk)");
  if (!a.from.empty()) {
    if (o.has_input() || !o.model.empty())
      throw Error("--from: the dump already holds the attention; drop --model/--text/--image");
    d = view_data_from_dump(a.from);
    if (neuron && d.query.empty()) {
      if (a.view != "all")
        throw Error("--view neuron: " + a.from + " has no query/key vectors (write it with attnscope dump --qkv)");
      vo.views.pop_back();
      std::cerr << "attnscope: note: " << a.from
                << " has no query/key vectors: no neuron view (dump --qkv adds them)\n";
    }
  } else {
    Checkpoint ck(model_dir(o));
    auto model = load_model(ck);
    const ModelInfo& info = model->info();
    std::unique_ptr<Tokenizer> tok;
    Prepared p = prepare(o, *model, ck.dir(), tok);
    TraceOptions to;
    to.qkv = neuron;
    Trace tr = model->forward(p.in, to);
    d.model_type = info.model_type;
    d.source = p.source;
    d.n_layers = info.n_layers;
    d.n_heads = info.n_heads;
    d.n_kv_heads = info.n_kv_heads;
    d.head_dim = info.head_dim;
    d.causal = info.causal;
    d.tokens = p.enc.display;
    d.attention = tr.attention;
    d.query = tr.query;
    d.key = tr.key;
    if (auto b = p.enc.sentence_b_start()) {
      d.sentence_b_start = int64_t(*b);
      d.segments = p.enc.type_ids;
    }
    if (info.image) {
      d.grid = info.grid();
      d.patch_size = info.patch_size;
      d.image_size = info.image_size;
    }
    d.title = std::filesystem::path(ck.dir()).filename().string() + ": " + shorten_utf8(d.source, 60);
  }
  if (!a.title.empty()) d.title = a.title;
  vo.layer = resolve_layer(a.layer, d.n_layers);
  vo.heads = parse_indices("--heads", a.heads, d.n_heads, "head");
  vo.include_layers = parse_indices("--include-layers", a.include_layers, d.n_layers, "layer");
  vo.include_heads = parse_indices("--include-heads", a.include_heads, d.n_heads, "head");
  if (a.layer == -1 && !vo.include_layers.empty())
    vo.layer = *std::max_element(vo.include_layers.begin(), vo.include_layers.end());
  vo.initial_view = vo.views.front();
  const std::string html = view_html(d, vo);
  std::ofstream f(a.out, std::ios::binary);
  if (!f) throw Error("-o " + a.out + ": cannot write the file");
  f.write(html.data(), std::streamsize(html.size()));
  f.close();
  if (!f) throw Error("-o " + a.out + ": writing failed");
  const double n = double(d.tokens.size());
  const double L = double(vo.include_layers.empty() ? d.n_layers : int64_t(vo.include_layers.size()));
  const double H = double(vo.include_heads.empty() ? d.n_heads : int64_t(vo.include_heads.size()));
  const double stored = L * H * (d.causal ? n * (n + 1) / 2 : n * n);
  const bool has_qk = std::find(vo.views.begin(), vo.views.end(), "neuron") != vo.views.end();
  std::cout << a.out << "\n";
  std::cerr << "attnscope: " << d.tokens.size() << " tokens, " << L << " layers x " << H
            << " heads: " << human_bytes(double(html.size())) << " (attention " << human_bytes(2 * stored)
            << ", 2 bytes per weight" << (d.causal ? " of the lower triangle" : "")
            << (has_qk ? "; q/k " + human_bytes(4 * L * H * n * double(d.head_dim)) : std::string()) << ")\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"attnscope: see what a transformer attends to"};
  app.set_version_flag("--version", std::string("attnscope ") + ATTNSCOPE_VERSION);
  app.require_subcommand(1);
  Common common;
  bool json_out = false, qkv = false, hidden = false;
  std::string out, dtype = "f32";
  HeatmapArgs hm;

  int64_t top = 5;
  auto* info = app.add_subcommand(
      "info",
      "model facts: family, layers, heads, sizes, dtype, parameters, files; with --text, what the head predicts");
  add_model(info, common);
  add_text(info, common);
  info->add_option("--top", top, "predictions to list per position (default 5)");
  info->add_flag("--json", json_out, "print JSON");

  auto* tokc = app.add_subcommand("tokenize", "token ids, strings and byte offsets");
  add_model(tokc, common);
  add_text(tokc, common);
  tokc->add_flag("--json", json_out, "print JSON");

  auto* dump = app.add_subcommand("dump", "run the model and write every attention map (safetensors)");
  add_model(dump, common);
  add_text(dump, common);
  dump->add_option("-o,--output", out, "output .safetensors file")->required();
  dump->add_flag("--qkv", qkv, "also write query/key/value per layer");
  dump->add_flag("--hidden", hidden, "also write hidden states");
  dump->add_option("--dtype", dtype, "f32 or f16");

  auto* heat = app.add_subcommand("heatmap", "attention heatmap of one layer (PNG, SVG or PDF)");
  add_model(heat, common);
  add_text(heat, common);
  heat->add_option("-o,--output", hm.out, "output file: .png, .svg or .pdf")->required();
  heat->add_option("--layer", hm.layer, "layer (negative counts from the end; default -1)");
  heat->add_option("--head", hm.head, "head index, mean, max or min (default mean)");
  heat->add_option("--cmap", hm.cmap, "viridis, magma, inferno, plasma, cividis, gray, coolwarm, rdbu_r, jet");
  heat->add_flag("--annotate", hm.annotate, "print values in the cells (4 decimals)");
  heat->add_option("--title", hm.title, "figure title (default \"Attention Heatmap\")");
  heat->add_option("--size", hm.size, "figure size in inches, WIDTHxHEIGHT (default 10x8)");
  heat->add_option("--dpi", hm.dpi, "dots per inch (default 100)");

  OverlayArgs ov;
  auto* ovc = app.add_subcommand("overlay", "vision models: attention from [CLS] (or a patch) drawn on the image");
  add_model(ovc, common);
  ovc->add_option("--image", common.image, "input image (PNG or JPEG)")->required();
  ovc->add_option("-o,--output", ov.out, "output file: .png, .svg or .pdf")->required();
  ovc->add_option("--layer", ov.layer, "layer (negative counts from the end; default -1)");
  ovc->add_option("--head", ov.head, "head index, mean, max or min (default mean)");
  ovc->add_option("--query", ov.query, "cls (default), a patch label like r3c7, or a token index");
  ovc->add_option("--cmap", ov.cmap, "colormap (default inferno)");
  ovc->add_option("--alpha", ov.alpha, "opacity of the attention layer, 0..1 (default 0.6)");
  ovc->add_option("--title", ov.title, "figure title");
  ovc->add_option("--dpi", ov.dpi, "dots per inch (default 100)");

  GenerateArgs ga;
  auto* gen = app.add_subcommand("generate",
                                 "continue a text with a decoder model (KV cache); optionally dump every "
                                 "step's attention");
  add_model(gen, common);
  gen->add_option("--text,-t", common.text, "prompt");
  gen->add_option("--text-file", common.text_file, "read the prompt from a file ('-' for stdin)");
  gen->add_option("--max-new-tokens,-n", ga.g.max_new_tokens, "tokens to generate (default 20)");
  gen->add_option("--temperature", ga.g.temperature, "0 = greedy (default); > 0 samples");
  gen->add_option("--top-k", ga.g.top_k, "sample from the k most probable tokens (0 = all)");
  gen->add_option("--seed", ga.g.seed, "random seed for sampling (default 0)");
  gen->add_option("--stop", ga.stop, "stop when the generated text contains this string (repeatable)");
  gen->add_flag("--no-cache", ga.no_cache, "recompute the whole sequence every step (for comparison)");
  gen->add_option("-o,--output", ga.out, "write a dump (.safetensors) of prompt + generated tokens");
  gen->add_flag("--json", ga.json, "print JSON");

  ViewArgs va;
  auto* viewc =
      app.add_subcommand("view", "interactive head, model and neuron views as one self-contained, offline HTML file");
  add_model(viewc, common);
  add_text(viewc, common);
  viewc->add_option("--from", va.from,
                    "a dump (.safetensors) instead of running a model, or a .qk dataset from attnscope qk (the atlas)");
  viewc->add_option("--projections", va.projections,
                    "atlas: a comma list of the dataset's projections to include, e.g. umap2,pca3 (default all)");
  viewc->add_option("--view", va.view, "head, model, neuron, a comma list, or all (default)");
  viewc->add_option("-o,--output", va.out, "output .html file")->required();
  viewc->add_option("--layer", va.layer, "layer shown first (negative counts from the end; default -1)");
  viewc->add_option("--heads", va.heads, "heads active at first, e.g. 0,3 (default all)");
  viewc->add_option("--title", va.title, "title of the page");
  viewc->add_option("--include-layers", va.include_layers, "write only these layers, e.g. 0,6,11 (default all)");
  viewc->add_option("--include-heads", va.include_heads, "write only these heads, e.g. 0,1 (default all)");

  ExplainArgs ea;
  auto* explc =
      app.add_subcommand("explain", "why the model predicts what it predicts: rollout, flow, generation, activation");
  add_explain(explc, common, ea);

  QkArgs qa;
  auto* qkc = app.add_subcommand(
      "qk", "AttentionViz data: every head's queries and keys over a corpus, jointly projected (PCA, t-SNE, UMAP)");
  add_qk(qkc, common, qa);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    std::cerr << "attnscope: error: " << msg << " (see attnscope --help)\n";
    return 2;
  }
  try {
    if (*info) return run_info(common, json_out, top);
    if (*tokc) return run_tokenize(common, json_out);
    if (*dump) return run_dump(common, out, qkv, hidden, dtype);
    if (*heat) return run_heatmap(common, hm);
    if (*gen) return run_generate(common, ga);
    if (*ovc) return run_overlay(common, ov);
    if (*viewc) return run_view(common, va);
    if (*explc) return run_explain(common, ea);
    if (*qkc) return run_qk(common, qa);
  } catch (const Error& e) {
    std::cerr << "attnscope: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "attnscope: error: internal: " << e.what() << "\n";
    return 3;
  }
  return 0;
}
