#!/usr/bin/python3
"""PyTorch side of bench/bert_freeze_bench: the BERT fine-tuning step of
apps/bert_finetune in plain torch, frozen backbone and full fine-tuning.

No transformers package here, so the model is written out as Hugging Face's
modeling_bert.py computes it (BertForSequenceClassification, absolute
positions): embeddings word + position + token type, LayerNorm (eps from
config.json, 1e-12), dropout; post-LN encoder layers (self-attention with
the additive mask (1 - mask) * finfo.min, softmax, dropout on the weights,
dense + dropout + residual + LayerNorm; intermediate dense with exact erf
GELU; dense + dropout + residual + LayerNorm); pooler tanh(Dense) of the
first token; dropout; classifier Linear. The parameter names are the
checkpoint's, so model.safetensors (read here with json + numpy, no
safetensors package) loads with load_state_dict.

The step: softmax cross-entropy (mean), Adam, dropout active (train mode).
  frozen  requires_grad_(False) on the backbone, Adam over the classifier
          only: PyTorch's own way to freeze, autograd records nothing
          before the classifier
  full    Adam over every param
Modes (one JSON line each on stdout):
  --check   pooler output of the backbone in eval mode for the fixed input
            of check_input() (bert_freeze_bench computes the same with
            grove and compares): {"check": true, "shape": [B, H], "pooled": [...]}
  default   per variant, the step's median ms on PyTorch's best BLAS of the
            candidates (torchbench.AUTO, each in a worker process of its own
            as torchbench.py explains; the first variant picks the BLAS, the
            others run on it), and that worker's peak RSS:
            {"impl": "torch", "variant": "frozen", "batch": 32, "length": 64,
             "threads": 2, "blas": ..., "kernels": ..., "step_ms": ...,
             "steps_per_s": ..., "peak_rss_kib": ..., "steps": ...}
Run with /usr/bin/python3 (Debian's python3-torch and python3-numpy).
"""

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

import torchbench

DEFAULT_DIR = "/root/.cache/grove/all-MiniLM-L6-v2"


def load_safetensors(path):
    """{name: float32 numpy array} of a .safetensors file: an 8-byte little-endian
    header length, a JSON header {name: {dtype, shape, data_offsets}}, the data."""
    import numpy as np
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    base = 8 + n
    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
              "I32": np.int32, "BF16": np.uint16}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        dt = np.dtype(dtypes[info["dtype"]])
        a = np.frombuffer(data, dtype=dt, count=(e - b) // dt.itemsize, offset=base + b)
        a = a.reshape(info["shape"])
        if info["dtype"] == "BF16":  # the high half of a float32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a
    return out


def build_model(model_dir, num_labels=2):
    import torch
    import torch.nn.functional as F
    from torch import nn

    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    assert cfg.get("hidden_act", "gelu") == "gelu", "this model uses exact GELU only"
    H, NH, I = cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"]
    eps, p_hidden = cfg.get("layer_norm_eps", 1e-12), cfg.get("hidden_dropout_prob", 0.1)
    p_attn = cfg.get("attention_probs_dropout_prob", 0.1)

    class Embeddings(nn.Module):
        def __init__(self):
            super().__init__()
            self.word_embeddings = nn.Embedding(cfg["vocab_size"], H)
            self.position_embeddings = nn.Embedding(cfg.get("max_position_embeddings", 512), H)
            self.token_type_embeddings = nn.Embedding(cfg.get("type_vocab_size", 2), H)
            self.LayerNorm = nn.LayerNorm(H, eps=eps)
            self.dropout = nn.Dropout(p_hidden)

        def forward(self, ids, types):
            pos = torch.arange(ids.shape[1])
            e = self.word_embeddings(ids) + self.position_embeddings(pos)[None] + \
                self.token_type_embeddings(types)
            return self.dropout(self.LayerNorm(e))

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.query, self.key, self.value = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)
            self.dropout = nn.Dropout(p_attn)

        def forward(self, x, ext_mask):
            B, L, _ = x.shape
            heads = lambda t: t.view(B, L, NH, H // NH).permute(0, 2, 1, 3)
            q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
            scores = q @ k.transpose(-1, -2) / math.sqrt(H // NH) + ext_mask
            probs = self.dropout(torch.softmax(scores, dim=-1))
            return (probs @ v).permute(0, 2, 1, 3).reshape(B, L, H)

    class DenseOutput(nn.Module):  # BertSelfOutput and BertOutput: post-LN residual
        def __init__(self, n_in):
            super().__init__()
            self.dense = nn.Linear(n_in, H)
            self.LayerNorm = nn.LayerNorm(H, eps=eps)
            self.dropout = nn.Dropout(p_hidden)

        def forward(self, h, residual):
            return self.LayerNorm(self.dropout(self.dense(h)) + residual)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.self = SelfAttention()
            self.output = DenseOutput(H)

        def forward(self, x, ext_mask):
            return self.output(self.self(x, ext_mask), x)

    class Intermediate(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Linear(H, I)

        def forward(self, x):
            return F.gelu(self.dense(x))  # exact (erf) form, PyTorch's default

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention, self.intermediate, self.output = Attention(), Intermediate(), DenseOutput(I)

        def forward(self, x, ext_mask):
            a = self.attention(x, ext_mask)
            return self.output(self.intermediate(a), a)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.ModuleList([Layer() for _ in range(cfg["num_hidden_layers"])])

        def forward(self, x, ext_mask):
            for layer in self.layer:
                x = layer(x, ext_mask)
            return x

    class Pooler(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Linear(H, H)

        def forward(self, h):
            return torch.tanh(self.dense(h[:, 0]))

    class BertModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.embeddings, self.encoder, self.pooler = Embeddings(), Encoder(), Pooler()

        def forward(self, ids, mask, types):
            ext = (1.0 - mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
            return self.pooler(self.encoder(self.embeddings(ids, types), ext))

    class BertForSequenceClassification(nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = BertModel()
            p = cfg.get("classifier_dropout")
            self.dropout = nn.Dropout(p_hidden if p is None else p)
            self.classifier = nn.Linear(H, num_labels)

        def forward(self, ids, mask, types):
            return self.classifier(self.dropout(self.bert(ids, mask, types)))

    model = BertForSequenceClassification()
    state = {k[len("bert."):] if k.startswith("bert.") else k: torch.from_numpy(v.astype("float32"))
             for k, v in load_safetensors(os.path.join(model_dir, "model.safetensors")).items()}
    own = model.bert.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise SystemExit(f"torch_bert_step: {model_dir}: checkpoint lacks {missing[:5]}")
    model.bert.load_state_dict({k: state[k] for k in own})
    return model, cfg


def check_input(batch, length):
    """The fixed input bert_freeze_bench.c builds too: row b has length - 4b
    tokens ([CLS] ... [SEP], the rest padding), token type 1 on the second
    half of the tokens."""
    import torch
    ids = torch.zeros(batch, length, dtype=torch.long)
    mask = torch.zeros(batch, length, dtype=torch.long)
    types = torch.zeros(batch, length, dtype=torch.long)
    for b in range(batch):
        n = max(2, length - 4 * b)
        for t in range(n):
            ids[b, t] = 101 if t == 0 else 102 if t == n - 1 else 1000 + (b * 131 + t * 7919) % 29000
            mask[b, t] = 1
            types[b, t] = 1 if t >= n // 2 else 0
    return ids, mask, types


def run_check(args):
    import torch
    torch.set_num_threads(args.threads)
    model, _ = build_model(args.model_dir)
    model.eval()
    with torch.no_grad():
        pooled = model.bert(*check_input(args.check_batch, args.check_length))
    print(json.dumps({"check": True, "shape": list(pooled.shape),
                      "pooled": [float(v) for v in pooled.flatten()]}), flush=True)


def build_step(model, variant, batch, length, lr):
    import torch
    import torch.nn.functional as F
    model.train()
    if variant == "frozen":
        model.bert.requires_grad_(False)
        params = list(model.classifier.parameters())
    else:
        params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    # synthetic tokens as the grove side makes them: [CLS] random ids [SEP], all attended
    ids = torch.randint(1000, 30000, (batch, length))
    ids[:, 0], ids[:, -1] = 101, 102
    mask = torch.ones(batch, length, dtype=torch.long)
    types = torch.zeros(batch, length, dtype=torch.long)
    labels = torch.randint(0, 2, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(ids, mask, types), labels)
        loss.backward()
        opt.step()
        return loss

    return step


def run_worker(args):
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    _, kernels = torchbench.loaded_blas()
    model, _ = build_model(args.model_dir)
    step = build_step(model, args.variants, args.batch, args.length, args.lr)
    for _ in range(args.warmup_steps):
        step()
    ms = []
    t_end = time.perf_counter() + args.seconds
    while len(ms) < args.steps or (args.seconds > 0 and time.perf_counter() < t_end):
        t0 = time.perf_counter()
        step()
        ms.append(1e3 * (time.perf_counter() - t0))
        if args.seconds > 0 and len(ms) >= 3 and time.perf_counter() >= t_end:
            break
    med = statistics.median(ms)
    print(json.dumps({"impl": "torch", "variant": args.variants, "batch": args.batch,
                      "length": args.length, "threads": args.threads, "blas": args.blas,
                      "kernels": kernels, "step_ms": round(med, 3), "min_ms": round(min(ms), 3),
                      "steps_per_s": round(1e3 / med, 3), "steps": len(ms),
                      "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "torch": torch.__version__}), flush=True)


def spawn(args, blas, variant):
    """One worker: this BLAS chosen before the process starts (torchbench.BLAS), its
    threads held as torchbench.run_worker holds them, glibc malloc tuned alike."""
    path, kind = torchbench.BLAS[blas]
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = path + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    blas_threads = args.threads if kind == "openmp" else 1
    env["OMP_NUM_THREADS"] = str(args.threads)
    env["OPENBLAS_NUM_THREADS"] = env["BLIS_NUM_THREADS"] = str(blas_threads)
    env.update(torchbench.MALLOC_TUNED)
    cmd = [sys.executable, os.path.abspath(sys.argv[0]), "--worker", "--blas", blas,
           "--variants", variant, "--model-dir", args.model_dir, "--batch", str(args.batch),
           "--length", str(args.length), "--threads", str(args.threads), "--steps", str(args.steps),
           "--seconds", str(args.seconds), "--warmup-steps", str(args.warmup_steps),
           "--lr", str(args.lr), "--seed", str(args.seed)]
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    if out.returncode:
        print(f"torch_bert_step: worker {blas} {variant} failed ({out.returncode})", file=sys.stderr)
        return []
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", default=os.environ.get("GROVE_BERT_DIR", DEFAULT_DIR))
    p.add_argument("--check", action="store_true", help="print the pooler output for check_input()")
    p.add_argument("--check-batch", type=int, default=2)
    p.add_argument("--check-length", type=int, default=16)
    p.add_argument("--variants", default="frozen,full", help="frozen,full (default) or either")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10, help="timed steps (at least)")
    p.add_argument("--seconds", type=float, default=0, help="time steps for this long instead (min 3)")
    p.add_argument("--warmup-steps", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--blas", default="auto",
                   help="auto (the best of %s), or one of: %s" % (",".join(torchbench.AUTO),
                                                                   ",".join(torchbench.BLAS)))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="accepted: the output is always JSON lines")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.check:
        run_check(args)
        return 0
    if args.worker:
        run_worker(args)
        return 0
    if args.blas != "auto" and args.blas not in torchbench.BLAS:
        p.error(f"unknown --blas {args.blas}")
    found = 0
    candidates = torchbench.AUTO if args.blas == "auto" else [args.blas]
    for variant in args.variants.split(","):
        best = None
        for blas in candidates:
            for r in spawn(args, blas, variant):
                print(json.dumps(r), file=sys.stderr, flush=True)
                if best is None or r["step_ms"] < best["step_ms"]:
                    best = r
        if best:
            print(json.dumps(best), flush=True)
            found += 1
            # a full step costs several frozen ones: the BLAS that won the first
            # variant runs the others (the same GEMM shapes, forward and backward)
            candidates = [best["blas"]]
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())
