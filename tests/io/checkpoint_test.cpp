// Model folders, sharded indexes and the Hugging Face cache layout.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "attnscope/checkpoint.h"
#include "attnscope/error.h"
#include "test_util.h"

using namespace attnscope;
namespace fs = std::filesystem;

TEST(Checkpoint, ResolvesRepoIdInHuggingFaceCache) {
  const std::string cache = test::temp_dir("hf_cache");
  const fs::path repo = fs::path(cache) / "models--someorg--tiny-gpt2";
  const std::string hash = "0123456789abcdef0123456789abcdef01234567";
  fs::create_directories(repo / "refs");
  fs::create_directories(repo / "blobs");
  fs::create_directories(repo / "snapshots" / hash);
  test::write_file((repo / "refs" / "main").string(), hash + "\n");
  // Files in snapshots/ are symlinks into blobs/, as the hub client writes them.
  test::make_small_gpt2((repo / "blobs" / "src").string());
  for (const char* f : {"config.json", "model.safetensors", "vocab.json", "merges.txt"})
    fs::create_symlink(fs::path("..") / ".." / "blobs" / "src" / f, repo / "snapshots" / hash / f);
  setenv("HF_HUB_CACHE", cache.c_str(), 1);
  Checkpoint ck("someorg/tiny-gpt2");
  unsetenv("HF_HUB_CACHE");
  EXPECT_EQ(ck.dir(), (repo / "snapshots" / hash).string());
  EXPECT_EQ(ck.model_type(), "gpt2");
  EXPECT_TRUE(ck.has("transformer.wte.weight"));
}

TEST(Checkpoint, HfHomeHubIsSearchedToo) {
  const std::string home = test::temp_dir("hf_home");
  const fs::path repo = fs::path(home) / "hub" / "models--gpt2-small-test";
  fs::create_directories(repo / "refs");
  test::make_small_gpt2((repo / "snapshots" / "abc").string());
  test::write_file((repo / "refs" / "main").string(), "abc");
  setenv("HF_HOME", home.c_str(), 1);
  unsetenv("HF_HUB_CACHE");
  Checkpoint ck("gpt2-small-test");
  unsetenv("HF_HOME");
  EXPECT_EQ(ck.dir(), (repo / "snapshots" / "abc").string());
}

TEST(Checkpoint, UnknownModelSaysWhereItLooked) {
  const std::string cache = test::temp_dir("hf_empty");
  setenv("HF_HUB_CACHE", cache.c_str(), 1);
  try {
    Checkpoint ck("nobody/nothing");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("models--nobody--nothing"), std::string::npos) << e.what();
  }
  unsetenv("HF_HUB_CACHE");
}

TEST(Checkpoint, MissingConfigAndWeightsAreNamed) {
  const std::string d = test::temp_dir("no_config");
  EXPECT_THROW({ Checkpoint c(d); }, Error);
  test::write_file(d + "/config.json", R"({"model_type":"gpt2"})");
  try {
    Checkpoint c(d);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing weights"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, ShardIndexNamingMissingShardFails) {
  const std::string d = test::temp_dir("bad_index");
  test::write_file(d + "/config.json", R"({"model_type":"gpt2"})");
  test::write_file(d + "/model.safetensors.index.json",
                   R"({"weight_map":{"wte.weight":"model-00001-of-00002.safetensors"}})");
  try {
    Checkpoint c(d);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model-00001-of-00002.safetensors, which is missing"), std::string::npos)
        << e.what();
  }
}
