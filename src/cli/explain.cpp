// attnscope explain: why the model predicts what it predicts. Methods that need only the captured
// attention and hidden states (rollout, flow, generation, activation).
#include "explain.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "attnscope/analysis.h"
#include "attnscope/checkpoint.h"
#include "attnscope/error.h"
#include "attnscope/explain.h"
#include "attnscope/image.h"
#include "attnscope/report.h"

namespace attnscope::cli {

namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kMethods{"rollout",        "flow",         "generation",           "activation",
                                        "saliency",       "grad-x-input", "integrated-gradients", "occlusion",
                                        "grad-attention", "relevance"};
const char* kMethodList =
    "rollout, flow, generation, activation, saliency, grad-x-input, integrated-gradients, occlusion, grad-attention or "
    "relevance";

std::string extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  if (ext != ".json" && ext != ".html" && ext != ".png" && ext != ".svg" && ext != ".pdf")
    throw Error("-o " + path + ": expected a file ending in .json, .html, .png, .svg or .pdf, found '" +
                (ext.empty() ? "no extension" : ext) + "'");
  return ext;
}

void write_text(const std::string& path, const std::string& s) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw Error("-o " + path + ": cannot write the file");
  f << s;
  if (!f.flush()) throw Error("-o " + path + ": writing failed");
}

// The position whose row is explained: --position N (negative from the end), cls, last, mask;
// default: the first [MASK] of a masked-LM input, the last token of a causal model, else 0.
int64_t explained_position(const std::string& arg, const Model& m, const Tokenizer* tok, const Encoding& enc) {
  const int64_t n = int64_t(enc.size());
  auto first_mask = [&]() -> int64_t {
    if (!tok) return -1;
    auto mask = mask_token_id(*tok);
    if (!mask) return -1;
    auto it = std::find(enc.ids.begin(), enc.ids.end(), *mask);
    return it == enc.ids.end() ? -1 : int64_t(it - enc.ids.begin());
  };
  if (arg.empty()) {
    if (m.info().head == "mlm" && first_mask() >= 0) return first_mask();
    return m.info().causal ? n - 1 : 0;
  }
  if (arg == "cls") return 0;
  if (arg == "last") return n - 1;
  if (arg == "mask") {
    const int64_t k = first_mask();
    if (k < 0) throw Error("--position mask: the input has no mask token");
    return k;
  }
  char* end = nullptr;
  const long long v = std::strtoll(arg.c_str(), &end, 10);
  if (arg.empty() || *end != '\0' || v < -n || v >= n)
    throw Error("--position " + arg + ": expected cls, last, mask or a token index in " + std::to_string(-n) + ".." +
                std::to_string(n - 1));
  return v < 0 ? n + v : v;
}

Matrix square_matrix(const Square& s, const std::vector<std::string>& rows, const std::vector<std::string>& cols) {
  Matrix m;
  m.rows = m.cols = s.n;
  m.values.assign(s.v.begin(), s.v.end());
  m.row_labels = rows;
  m.col_labels = cols;
  return m;
}

struct Output {
  std::string method, title;
  std::vector<std::string> notes;
  nlohmann::json json;
  // One row of scores over the tokens (token view / image overlay) ...
  std::vector<std::string> tokens;
  std::vector<double> row;
  int64_t position = -1;
  // ... and/or a matrix (heatmap / table).
  Matrix matrix;
  bool annotate = false, lower_triangle = false;
  std::string image;  // image models: the input image (row drawn over its patches)
  int64_t grid = 0;
  bool signed_scores = false;  // the row is signed evidence (red/green, robust scaling)
  bool signed_matrix = false;  // the matrix has negative values (diverging colours around 0)
};

void write_output(const Output& o, const ExplainArgs& a) {
  const std::string ext = extension(a.out);
  if (ext == ".json") {
    write_text(a.out, o.json.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    return;
  }
  // Colours: the row scaled to its largest value away from the explained position itself (which
  // rollout's identity term dominates); the numbers themselves stay unscaled.
  std::vector<float> scaled;
  std::string legend;
  if (!o.row.empty() && o.signed_scores) {
    double t = 0;
    const auto s = robust_scale(o.row, 0.98, &t);
    scaled.assign(s.begin(), s.end());
    char buf[160];
    std::snprintf(
        buf, sizeof buf,
        "colour: value / %.4g (98%% of the total |value| lies below), clipped to [-1, 1]; green positive, red negative",
        t);
    legend = buf;
  } else if (!o.row.empty()) {
    double mx = 0;
    for (size_t i = 0; i < o.row.size(); ++i)
      if (int64_t(i) != o.position) mx = std::max(mx, std::fabs(o.row[i]));
    for (double v : o.row) scaled.push_back(float(mx > 0 ? std::clamp(v / mx, -1.0, 1.0) : 0.0));
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "colour: value / %.4g (the largest value at another position); outlined: the explained position", mx);
    legend = buf;
  }
  if (ext == ".html") {
    Report r;
    r.title = o.title;
    r.notes = o.notes;
    if (!o.row.empty()) {
      r.tokens = o.tokens;
      r.scores = scaled;
      r.raw = o.row;
      r.highlight = o.position;
      r.signed_scores = o.signed_scores;
      r.notes.push_back(legend);
    }
    r.table = o.matrix;
    r.lower_triangle = o.lower_triangle;
    write_text(a.out, report_html(r));
    return;
  }
  if (o.matrix.rows > 0 && (o.row.empty() || a.all_rows)) {
    HeatmapOptions ho;
    ho.title = o.title;
    ho.annotate = o.annotate;
    if (o.signed_matrix) {
      ho.cmap = "rdbu_r";
      ho.centered = true;
    }
    ho.x_label = o.method == "activation" ? "Tokens" : "Input Tokens";
    ho.y_label = o.method == "activation" ? "Layer" : "Output Tokens";
    render_heatmap(o.matrix, ho, a.out);
    return;
  }
  if (!o.image.empty()) {
    std::vector<float> map(o.row.begin() + 1, o.row.end());  // the patches, without [CLS]
    if (o.signed_scores)                                     // the overlay shows magnitude
      for (float& v : map) v = std::fabs(v);
    Image im = convert_channels(load_image(o.image), 3);
    OverlayOptions oo;
    oo.title = o.title;
    oo.cmap = "jet";
    render_image_attention(im.data.data(), im.width, im.height, o.grid, map, oo, a.out);
    return;
  }
  TokenScoresOptions to;
  to.title = o.title;
  to.legend = legend;
  to.highlight = o.position;
  to.signed_scores = o.signed_scores;
  render_token_scores(o.tokens, scaled, to, a.out);
}

// The target of a gradient method: position (text) and token id / class.
Target resolve_target(const Model& m, const Tokenizer* tok, const Prepared& p, const ExplainArgs& a, int64_t position,
                      std::string* described) {
  const ModelInfo& info = m.info();
  Target t;
  t.kind = a.target_kind.empty() ? "logit" : a.target_kind;
  t.position = position;
  if (info.head == "classifier") {
    t.position = 0;
    if (a.target.empty() && a.target_id < 0) {
      TraceOptions to;
      to.attention = false;
      to.logits = true;
      Trace tr = m.forward(p.in, to);
      t.index = top_k(tr.logits.ptr(), tr.logits.numel(), 1)[0].id;
    } else if (a.target_id >= 0) {
      t.index = a.target_id;
    } else {
      auto it = std::find(info.labels.begin(), info.labels.end(), a.target);
      if (it != info.labels.end()) {
        t.index = it - info.labels.begin();
      } else {
        char* end = nullptr;
        const long long v = std::strtoll(a.target.c_str(), &end, 10);
        if (*end != '\0' || v < 0 || v >= int64_t(info.labels.size()))
          throw Error("--target " + a.target + ": expected a class label or an index 0.." +
                      std::to_string(info.labels.size() - 1));
        t.index = v;
      }
    }
    if (t.index < 0 || t.index >= int64_t(info.labels.size()))
      throw Error("--target-id " + std::to_string(t.index) + ": outside the classes 0.." +
                  std::to_string(info.labels.size() - 1));
    *described = "class " + std::to_string(t.index) + " (" + info.labels[size_t(t.index)] + ")";
    return t;
  }
  if (info.head != "lm" && info.head != "mlm")
    throw Error("model_type '" + info.model_type +
                "' has no output head to explain (expected a language-model, "
                "masked-LM or classification head)");
  if (a.target_id >= 0) {
    if (a.target_id >= info.vocab_size)
      throw Error("--target-id " + std::to_string(a.target_id) + ": outside the vocabulary 0.." +
                  std::to_string(info.vocab_size - 1));
    t.index = a.target_id;
  } else if (!a.target.empty()) {
    Encoding e = tok->encode(a.target);
    std::vector<int64_t> ids;
    std::vector<std::string> shown;
    for (size_t i = 0; i < e.size(); ++i)
      if (!e.special[i]) ids.push_back(e.ids[i]), shown.push_back("\"" + e.display[i] + "\"");
    if (ids.size() != 1) {
      std::string how;
      for (const auto& s : shown) how += (how.empty() ? "" : " ") + s;
      throw Error("--target \"" + a.target + "\": expected one token, found " + std::to_string(ids.size()) +
                  (ids.empty() ? "" : ": " + how) + " (pass one of them, or --target-id)");
    }
    t.index = ids[0];
  } else {
    TraceOptions to;
    to.attention = false;
    to.logits = true;
    Trace tr = m.forward(p.in, to);
    t.index = top_k(tr.logits.ptr() + position * info.vocab_size, info.vocab_size, 1)[0].id;
  }
  *described = "token " + std::to_string(t.index) + " \"" + tok->display_of(t.index) + "\" at position " +
               std::to_string(position) +
               (info.causal ? " (the next token after \"" + p.enc.display[size_t(position)] + "\")" : "");
  return t;
}

// One attribution row per continuation token (Captum's LLM attribution): a token x token matrix.
void explain_continuation(const Model& m, const Tokenizer& tok, const Prepared& p, const ExplainArgs& a,
                          const AttributionOptions& ao, const Array& baseline, Output& out) {
  const ModelInfo& info = m.info();
  const char* flag = a.continuation_text.empty() ? "--continuation" : "--continuation-text";
  if (!info.causal || info.head != "lm")
    throw Error(std::string(flag) + ": model_type '" + info.model_type +
                "' does not generate (expected a causal language model: gpt2, llama, qwen2, mistral)");
  if (!a.target.empty() || a.target_id >= 0 || !a.position.empty())
    throw Error(std::string(flag) +
                ": the targets are the continuation's tokens; drop --target/--target-id/--position");
  std::vector<int64_t> cont;
  if (!a.continuation_text.empty()) {
    const Encoding e = tok.encode(a.continuation_text);
    for (size_t i = 0; i < e.size(); ++i)
      if (!e.special[i]) cont.push_back(e.ids[i]);
    if (cont.empty()) throw Error("--continuation-text: expected text that makes at least one token, found none");
  } else {
    if (a.max_new_tokens < 1)
      throw Error("--max-new-tokens " + std::to_string(a.max_new_tokens) + ": expected 1 or more");
    GenerateOptions g;
    g.max_new_tokens = a.max_new_tokens;
    g.attention = false;
    const Generation gen = m.generate(p.enc.ids, g, [](const std::vector<int64_t>&) { return false; });
    cont.assign(gen.ids.begin() + int64_t(gen.prompt_length), gen.ids.end());
    if (cont.empty()) throw Error("--continuation: the model generated no token (it ended the text at once)");
  }
  const std::string kind = a.target_kind.empty() ? "logprob" : a.target_kind;
  const std::string reduce = a.reduce.empty() ? (a.method == "saliency" ? "l2" : "sum") : a.reduce;
  const ContinuationAttribution r = attribute_continuation(m, p.enc.ids, cont, baseline, kind, ao, reduce);
  std::vector<std::string> rows, cols = p.enc.display;
  std::string text;
  for (int64_t id : cont) rows.push_back(tok.display_of(id)), text += tok.display_of(id);
  const int64_t P = int64_t(cols.size()), N = int64_t(rows.size());
  out.matrix.rows = N;
  out.matrix.cols = P;
  out.matrix.row_labels = rows;
  out.matrix.col_labels = cols;
  bool negative = false;
  for (const auto& row : r.rows)
    for (double v : row) {
      out.matrix.values.push_back(float(v));
      negative = negative || v < 0;
    }
  out.signed_matrix = negative;
  out.annotate = N * P <= 400;
  out.title = a.method + " per continuation token (" + kind + ")";
  out.notes = {"continuation (" + std::string(a.continuation_text.empty() ? "greedy" : "given") + ", " +
                   std::to_string(N) + " tokens): " + text,
               "row i: " + kind +
                   " of continuation token i given the prompt and tokens 0..i-1, attributed to the "
                   "prompt's tokens (per token: " +
                   reduce +
                   " over the embedding); the baseline replaces the prompt's "
                   "features only"};
  nlohmann::json& j = out.json;
  std::vector<double> seq(size_t(P), 0.0);
  for (const auto& row : r.rows)
    for (int64_t k = 0; k < P; ++k) seq[size_t(k)] += row[size_t(k)];
  j["prompt_tokens"] = cols;
  j["continuation_tokens"] = rows;
  j["continuation_ids"] = cont;
  j["continuation_text"] = text;
  j["target_kind"] = kind;
  j["reduce"] = reduce;
  j["token_attr"] = r.rows;
  j["seq_attr"] = seq;
  j["values"] = r.values;
  j["passes"] = r.passes;
  if (a.method == "integrated-gradients") j["convergence_deltas"] = r.deltas;
  std::cerr << "attnscope: continuation: " << text << "\n";
}

void explain_gradients(const Model& m, const Checkpoint& ck, const Common& o, const ExplainArgs& a, Output& out,
                       std::unique_ptr<Tokenizer>& tok) {
  const ModelInfo& info = m.info();
  Prepared p = prepare(o, m, ck.dir(), tok);
  nlohmann::json& j = out.json;
  const bool continuation = a.continuation || !a.continuation_text.empty();
  const int64_t pos = info.image ? 0 : explained_position(a.position, m, tok.get(), p.enc);
  std::string described;
  const Target t = continuation ? Target{} : resolve_target(m, tok.get(), p, a, pos, &described);
  // The baseline x': zero features, or the features of [CLS] + [PAD]... + [SEP].
  const Array x = m.features(p.in);
  Array baseline = Array::zeros(x.shape);
  if (a.baseline == "pad") {
    if (info.image) throw Error("--baseline pad: images take --baseline zero");
    auto pad = tok->token_to_id("[PAD]");
    if (!pad) pad = tok->token_to_id("<pad>");
    if (!pad) throw Error("--baseline pad: the tokenizer has no [PAD] or <pad> token (use --baseline zero)");
    ModelInput b = p.in;
    for (size_t i = 0; i < b.ids.size(); ++i)
      if (!p.enc.special[i]) b.ids[i] = *pad;
    baseline = m.features(b);
  } else if (a.baseline != "zero") {
    throw Error("--baseline " + a.baseline + ": expected zero or pad");
  }
  AttributionOptions ao = a.attribution;
  ao.method = a.method;
  ao.start_layer = a.rollout.start_layer;
  if (info.image && ao.method == "occlusion") ao.window = info.patch_size;
  if (continuation) {
    explain_continuation(m, *tok, p, a, ao, baseline, out);
    return;
  }
  const Attribution r = attribute(m, p.in, t, baseline, ao);
  std::string reduce = a.reduce.empty() ? (a.method == "saliency" ? "l2" : "sum") : a.reduce;
  std::vector<double> scores;
  bool signed_scores = true;
  if (!r.attr.empty()) {
    scores = reduce_attribution(r.attr, reduce, info.image ? info.patch_size : 0);
    signed_scores = reduce != "l2";
  } else {
    scores = r.per_unit;
    reduce = a.method == "occlusion" ? "F(x) - F(x with the unit occluded)" : "row of the relevance matrix";
    if ((a.method == "grad-attention" || a.method == "relevance") && !a.attribution.signed_evidence)
      signed_scores = false;
  }
  if (info.image) {
    // scores per patch (occlusion, reductions) or per token incl. [CLS] (grad-attention): the
    // token view below is over [CLS] + patches.
    if (int64_t(scores.size()) == info.grid() * info.grid()) scores.insert(scores.begin(), 0.0);
    out.image = o.image;
    out.grid = info.grid();
  }
  out.tokens = p.enc.display;
  out.row = scores;
  out.position = info.image ? -1 : pos;
  out.signed_scores = signed_scores;
  out.title = a.method + " for " + described;
  out.notes = {"F = " + t.kind + " of " + described + " = " + std::to_string(r.value),
               "per token: " + reduce +
                   (a.method == "integrated-gradients"
                        ? "; " + std::to_string(ao.steps) + " steps (" + ao.rule + "), baseline " + a.baseline +
                              ", convergence delta " + std::to_string(r.delta)
                        : "")};
  j["tokens"] = p.enc.display;
  j["position"] = pos;
  j["target"] = {{"index", t.index}, {"kind", t.kind}, {"described", described}};
  j["value"] = r.value;
  j["scores"] = scores;
  j["reduce"] = reduce;
  j["passes"] = r.passes;
  if (a.method == "integrated-gradients") {
    j["steps"] = ao.steps;
    j["rule"] = ao.rule;
    j["baseline"] = a.baseline;
    j["baseline_value"] = r.baseline_value;
    j["convergence_delta"] = r.delta;
    std::cerr << "attnscope: integrated gradients: F(x) = " << r.value << ", F(x') = " << r.baseline_value
              << ", convergence delta " << r.delta << "\n";
  }
}

}  // namespace

void add_explain(CLI::App* c, Common& common, ExplainArgs& a) {
  add_model(c, common);
  add_text(c, common);
  c->add_option("--method", a.method, kMethodList)->required();
  c->add_option("-o,--output", a.out, "output: .json (every number), .html, .png, .svg or .pdf")->required();
  c->add_option("--position", a.position,
                "the output position explained: an index (negative from the end), cls, last or mask "
                "(default: the first [MASK], the last token of a causal model, else 0)");
  c->add_flag("--all-rows", a.all_rows, "rollout/flow: every output position (a token x token matrix)");
  c->add_option("--fusion", a.rollout.fusion, "rollout/flow: how heads are fused: mean (default), max, min");
  c->add_option("--discard", a.rollout.discard_ratio, "rollout/flow: share of the lowest weights dropped (default 0)");
  c->add_option("--start-layer", a.rollout.start_layer,
                "rollout/flow/relevance: first layer of the product (default 0)");
  c->add_option("--layer", a.layer, "activation: the layer drawn (0 = embeddings; default the last)");
  c->add_option("--p", a.p, "activation: the power p of ||h||_p^p (default 2)");
  c->add_option("--max-new-tokens,-n", a.max_new_tokens, "generation, --continuation: tokens to generate (default 20)");
  c->add_flag("--sigmoid", a.sigmoid, "generation: colour by the sigmoid-normalised display (the numbers stay exact)");
  c->add_option("--target", a.target,
                "gradient methods: the token (a string that is one token, e.g. \" Paris\") or class (label or index); "
                "default: the predicted one");
  c->add_option("--target-id", a.target_id, "gradient methods: the target as a token id");
  c->add_option("--target-kind", a.target_kind,
                "gradient methods: F is the logit (default; --continuation: logprob), prob or logprob");
  c->add_option("--baseline", a.baseline,
                "integrated-gradients/occlusion: zero (zero embedding / zero pixels, default) or pad "
                "([CLS] + [PAD]... + [SEP], text)");
  c->add_option("--reduce", a.reduce,
                "per-token reduction: l2 (saliency default), sum (grad-x-input/integrated-gradients default), signed");
  c->add_option("--steps", a.attribution.steps, "integrated-gradients: integration points (default 50)");
  c->add_option("--rule", a.attribution.rule,
                "integrated-gradients: gausslegendre (default), riemann_left, riemann_right, riemann_middle, "
                "riemann_trapezoid");
  c->add_option("--batch", a.attribution.batch, "inputs per forward/backward pass (default 16; bounds memory)");
  c->add_option("--window", a.attribution.window, "occlusion: tokens per occluded window (default 1; images: a patch)");
  c->add_option("--stride", a.attribution.stride, "occlusion: tokens between window starts (default 1)");
  c->add_flag("--continuation", a.continuation,
              "gradient methods: generate -n tokens greedily and attribute each to the prompt (one row per token, "
              "Captum's LLM attribution; F defaults to logprob)");
  c->add_option("--continuation-text", a.continuation_text,
                "gradient methods: attribute each token of this continuation of the prompt instead");
  c->add_flag("--signed", a.attribution.signed_evidence,
              "grad-attention/relevance: keep negative evidence (no (.)+ in the head mean)");
}

int run_explain(const Common& o, const ExplainArgs& a) {
  if (std::find(kMethods.begin(), kMethods.end(), a.method) == kMethods.end())
    throw Error("--method " + a.method + ": expected " + kMethodList);
  const bool attention_only =
      a.method == "rollout" || a.method == "flow" || a.method == "activation" || a.method == "generation";
  if (attention_only && (a.continuation || !a.continuation_text.empty()))
    throw Error(std::string(a.continuation ? "--continuation" : "--continuation-text") + ": --method " + a.method +
                " reads attention, it has no target per token; use saliency, grad-x-input, integrated-gradients, "
                "occlusion, grad-attention or relevance");
  const std::string ext = extension(a.out);
  if (ext == ".png" || ext == ".svg" || ext == ".pdf") check_figure_path(a.out);
  Checkpoint ck(model_dir(o));
  auto model = load_model(ck);
  const ModelInfo& info = model->info();
  std::unique_ptr<Tokenizer> tok;
  Output out;
  out.method = a.method;
  nlohmann::json& j = out.json;
  j["method"] = a.method;
  j["model"] = ck.dir();
  j["model_type"] = info.model_type;
  const auto t0 = std::chrono::steady_clock::now();

  if (a.method == "generation") {
    if (!info.causal || info.head != "lm")
      throw Error("--method generation: model_type '" + info.model_type +
                  "' does not generate (expected a causal language model: gpt2, llama, qwen2, mistral)");
    if (!o.image.empty()) throw Error("--method generation: takes a text prompt, not an image");
    Prepared p = prepare(o, *model, ck.dir(), tok);
    GenerateOptions g;
    g.max_new_tokens = a.max_new_tokens;
    Generation gen = model->generate(p.enc.ids, g, [](const std::vector<int64_t>&) { return false; });
    const Square table = generation_attention(gen.attention, int64_t(gen.prompt_length));
    std::vector<std::string> labels;
    for (int64_t id : gen.ids) labels.push_back(tok->display_of(id));
    const Square shown = a.sigmoid ? sigmoid_display(table, int64_t(gen.prompt_length)) : table;
    out.matrix = square_matrix(shown, labels, labels);
    for (int64_t r = 0; r < shown.n; ++r)  // blank above the diagonal: a lower-triangular table
      for (int64_t c = r + 1; c < shown.n; ++c) out.matrix.values[size_t(r * shown.n + c)] = NAN;
    out.annotate = true;
    out.lower_triangle = true;
    out.title = std::string("Attention while generating") + (a.sigmoid ? " (sigmoid display)" : "");
    std::string text;
    for (size_t i = gen.prompt_length; i < gen.ids.size(); ++i) text += tok->display_of(gen.ids[i]);
    out.notes = {"greedy generation of " + std::to_string(gen.ids.size() - gen.prompt_length) + " tokens after a " +
                     std::to_string(gen.prompt_length) + "-token prompt: " + text,
                 "row t: per layer the head-mean attention of the query at t-1, first column set to 0, renormalised, "
                 "averaged over layers; prompt rows are the identity"};
    j["tokens"] = labels;
    j["prompt_length"] = gen.prompt_length;
    j["generated_text"] = text;
    j["table"] = nlohmann::json::array();
    for (int64_t t = 0; t < table.n; ++t)
      j["table"].push_back(std::vector<double>(table.v.begin() + t * table.n, table.v.begin() + t * table.n + t + 1));
    if (a.sigmoid) {
      j["sigmoid"] = nlohmann::json::array();
      for (int64_t t = 0; t < shown.n; ++t)
        j["sigmoid"].push_back(
            std::vector<double>(shown.v.begin() + t * shown.n, shown.v.begin() + t * shown.n + t + 1));
    }
    std::cerr << "attnscope: generated: " << text << "\n";
  } else if (a.method != "rollout" && a.method != "flow" && a.method != "activation") {
    explain_gradients(*model, ck, o, a, out, tok);
  } else {
    Prepared p = prepare(o, *model, ck.dir(), tok);
    TraceOptions to;
    to.hidden = a.method == "activation";
    to.attention = a.method != "activation";
    Trace tr = model->forward(p.in, to);
    const int64_t n = int64_t(p.enc.size());
    out.tokens = p.enc.display;
    j["tokens"] = p.enc.display;
    if (info.image) {
      out.image = o.image;
      out.grid = info.grid();
      j["patch_grid"] = std::to_string(info.grid()) + "x" + std::to_string(info.grid());
    }
    if (a.method == "activation") {
      const auto e = activation_energy(tr.hidden, a.p);
      const int64_t layer = a.layer < 0 ? int64_t(e.size()) + a.layer : a.layer;
      if (layer < 0 || layer >= int64_t(e.size()))
        throw Error("--layer " + std::to_string(a.layer) + ": expected 0.." + std::to_string(e.size() - 1) +
                    " (0 = embeddings) or negative from the end");
      out.row = e[size_t(layer)];
      Matrix m;
      m.rows = int64_t(e.size());
      m.cols = n;
      for (size_t l = 0; l < e.size(); ++l) {
        m.row_labels.push_back(l == 0 ? "embeddings" : "layer " + std::to_string(l - 1));
        m.values.insert(m.values.end(), e[l].begin(), e[l].end());
      }
      m.col_labels = p.enc.display;
      out.matrix = m;
      out.title = "Activation energy ||h||_" + std::to_string(int(a.p)) + "^" + std::to_string(int(a.p)) + ", " +
                  (layer == 0 ? std::string("embeddings") : "after layer " + std::to_string(layer - 1));
      out.notes = {
          "per token: the sum over the hidden dimension of |h|^p, L2-normalised over the tokens of each layer "
          "(Zagoruyko & Komodakis, attention transfer)"};
      j["p"] = a.p;
      j["layer"] = layer;
      j["layers"] = e;
      j["row"] = out.row;
    } else {
      const int64_t pos = explained_position(a.position, *model, tok.get(), p.enc);
      out.position = pos;
      const bool flow = a.method == "flow";
      std::vector<int64_t> rows;
      if (!a.all_rows) rows = {pos};
      const Square r =
          flow ? attention_flow(tr.attention, a.rollout, rows) : attention_rollout(tr.attention, a.rollout);
      out.row.assign(r.v.begin() + pos * n, r.v.begin() + (pos + 1) * n);
      if (a.all_rows) out.matrix = square_matrix(r, p.enc.display, p.enc.display);
      out.title = std::string(flow ? "Attention flow" : "Attention rollout") + " from " + p.enc.display[size_t(pos)] +
                  " (position " + std::to_string(pos) + ")";
      out.notes = {
          std::string(flow ? "maximum flow through " : "product of ") +
              "(W + I) / rowsum per layer, W = " + a.rollout.fusion + " over heads" +
              (a.rollout.discard_ratio > 0 ? ", lowest " + std::to_string(a.rollout.discard_ratio) + " dropped" : "") +
              ", layers " + std::to_string(a.rollout.start_layer) + ".." + std::to_string(info.n_layers - 1),
          "Abnar & Zuidema, Quantifying Attention Flow in Transformers (ACL 2020)"};
      j["position"] = pos;
      j["options"] = {{"fusion", a.rollout.fusion},
                      {"discard_ratio", a.rollout.discard_ratio},
                      {"start_layer", a.rollout.start_layer}};
      j["row"] = out.row;
      if (a.all_rows) {
        j["matrix"] = nlohmann::json::array();
        for (int64_t i = 0; i < n; ++i)
          j["matrix"].push_back(std::vector<double>(r.v.begin() + i * n, r.v.begin() + (i + 1) * n));
      }
    }
  }
  j["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_output(out, a);
  std::cout << a.out << "\n";
  return 0;
}

}  // namespace attnscope::cli
