#!/usr/bin/python3
"""attnscope explain, every method, at 128 and 512 tokens on the GPT-2-small-sized random checkpoint
(12 layers x 12 heads): whole-process wall time and peak memory (/usr/bin/time), and the time the
method itself took (the JSON's "seconds", after loading). Then integrated gradients side by side
with a Captum-style PyTorch loop on the same checkpoint, tokens and steps (bench/captum_style_ig.py):
the same scores (max difference printed) and the time ratio. Prints Markdown.

Usage: explain_bench.py ATTNSCOPE CHECKPOINT OUT_DIR TEXT_FILE
"""
import json
import os
import subprocess
import sys

exe, ck, out, text_file = sys.argv[1:5]
os.makedirs(out, exist_ok=True)
source = open(text_file, encoding="utf-8").read()


def text_of(n):
    """The longest prefix of the text that is exactly n tokens."""
    tok = json.loads(subprocess.run([exe, "tokenize", "--model", ck, "--json", "--text", source], check=True,
                                    capture_output=True, text=True).stdout)
    raw = source.encode("utf-8")
    cut = raw[:tok["offsets"][n - 1][1]].decode("utf-8", errors="ignore")
    got = len(json.loads(subprocess.run([exe, "tokenize", "--model", ck, "--json", "--text", cut], check=True,
                                        capture_output=True, text=True).stdout)["ids"])
    assert got == n, f"prefix of {n} tokens tokenizes to {got}"
    return cut


def timed(args, tag):
    """Whole-process wall seconds and peak RSS MiB of one run."""
    stat = os.path.join(out, tag + ".time")
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", stat] + args, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {r.stderr}")
    wall, rss = open(stat).read().split()[-2:]
    return float(wall), float(rss) / 1024, r.stdout


STEPS, BATCH = 16, 8  # integrated gradients: Gauss-Legendre points, inputs per forward/backward pass


def methods(n):
    return [("rollout", []), ("flow", []), ("grad-attention", []), ("relevance", []), ("saliency", []),
            ("grad-x-input", []), ("integrated-gradients", ["--steps", str(STEPS), "--batch", str(BATCH)]),
            ("occlusion", ["--window", str(n // 32), "--stride", str(n // 32), "--batch", str(BATCH)])]  # 32 windows

rows = []
texts = {}
for n in (128, 512):
    texts[n] = text_of(n)
    for method, extra in methods(n):
        js = os.path.join(out, f"explain_{method}_{n}.json")
        wall, rss, _ = timed([exe, "explain", "--model", ck, "--text", texts[n], "--method", method, "-o", js] + extra,
                             f"explain_{method}_{n}")
        j = json.load(open(js))
        rows.append((method, n, j["seconds"], wall, rss, j.get("passes", "-")))
        print(f"{method} {n}: {wall:.2f} s", file=sys.stderr)

print(f"| method | tokens | method s | whole process s | peak MiB | forward/backward passes |")
print("|---|---|---|---|---|---|")
for method, n, sec, wall, rss, passes in rows:
    print(f"| {method} | {n} | {sec:.2f} | {wall:.2f} | {rss:.0f} | {passes} |")
print()

# Integrated gradients vs the Captum-style PyTorch loop (same checkpoint, tokens, Gauss-Legendre
# steps and chunk size; attnscope also runs F(x) and F(x') for the convergence delta).
print(f"| integrated gradients, {STEPS} steps, batch {BATCH} | tokens | attribution s | whole process s | peak MiB |")
print("|---|---|---|---|---|")
for n in (128, 512):
    dump = os.path.join(out, f"ig_{n}.safetensors")
    subprocess.run([exe, "dump", "--model", ck, "--text", texts[n], "-o", dump], check=True, capture_output=True)
    wall, rss, stdout = timed(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "captum_style_ig.py"), ck,
                               dump, str(STEPS), str(BATCH)], f"captum_ig_{n}")
    py = json.loads(stdout)
    ours = json.load(open(os.path.join(out, f"explain_integrated-gradients_{n}.json")))
    ours_row = next(r for r in rows if r[0] == "integrated-gradients" and r[1] == n)
    assert ours["target"]["index"] == py["target"], (ours["target"], py["target"])
    diff = max(abs(a - b) for a, b in zip(ours["scores"], py["scores"]))
    print(f"| attnscope | {n} | {ours_row[2]:.2f} | {ours_row[3]:.2f} | {ours_row[4]:.0f} |")
    print(f"| Captum-style PyTorch loop | {n} | {py['seconds']:.2f} | {wall:.2f} | {rss:.0f} |")
    print(f"| ratio (PyTorch / attnscope) | {n} | {py['seconds'] / ours_row[2]:.2f}x | {wall / ours_row[3]:.2f}x | "
          f"max score difference {diff:.1e} |")
