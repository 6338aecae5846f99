#!/usr/bin/env python3
"""Whole-model GPU benchmark: kpt (target cuda) against PyTorch eager and torch.compile on the
same weights and inputs, in one call on the GPU machine.

Builds BERT-base with random weights (seed 0): scripts/make_bench_models.py's (default) or
transformers.BertModel(BertConfig()) (--model hf-bert); exports
it to ONNX there (torch.onnx.export, dynamo=False, opset 17; eager attention so the graph holds
MatMul/Softmax that kpt's passes fuse), writes inputs and PyTorch's fp32 output as .npy, times
PyTorch fp16 (SDPA attention) eager and torch.compile(mode="reduce-overhead"), then runs
kpt_gpu_model_bench on the same files. Every timing: wall clock around one run followed by a
stream synchronize, inputs and outputs on the GPU, median of --iters runs after warm-up.

usage: gpu_model_bench.py --bench BIN/kpt_gpu_model_bench --work DIR --out DIR
       gpu_model_bench.py --model resnet50 ... [--batches 1,32] [--compile 32,32:cl,1]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch


def median_ms(fn, warmup, iters):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    t = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        t.append((time.perf_counter() - t0) * 1e3)
    t.sort()
    return t[len(t) // 2]


def with_attention(cfg, impl):
    """A copy of the config asking for one attention implementation (eager or sdpa)."""
    import copy
    c = copy.deepcopy(cfg)
    c._attn_implementation = impl
    return c


class LastHidden(torch.nn.Module):
    """BertModel called with keywords, returning last_hidden_state: what the exporter traces."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def hf_bert():
    """transformers.BertModel(BertConfig()): eager attention for the export, SDPA for timing."""
    from transformers import BertConfig, BertModel

    cfg = BertConfig()
    ref = BertModel(with_attention(cfg, "eager"), add_pooling_layer=False).eval()
    fast = BertModel(with_attention(cfg, "sdpa"), add_pooling_layer=False)
    fast.load_state_dict(ref.state_dict())
    return LastHidden(ref), LastHidden(fast), cfg.vocab_size


def kpt_bench_bert():
    """scripts/make_bench_models.py's BERT-base (HF layout and initialization, explicit
    attention with an additive padding mask) for the export; the same weights with
    F.scaled_dot_product_attention for PyTorch's timing (its fastest attention)."""
    import copy

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_bench_models as mbm

    ref = mbm.init_weights(mbm.Bert(use_mha=False)).eval()
    fast = copy.deepcopy(ref)

    def sdpa_forward(self, x, additive_mask=None):
        q, k, v = self.heads(self.query(x)), self.heads(self.key(x)), self.heads(self.value(x))
        mask = None if additive_mask is None else additive_mask.to(q.dtype)
        ctx = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        ctx = ctx.permute(0, 2, 1, 3).contiguous()
        return self.out(ctx.view(ctx.size(0), ctx.size(1), mbm.D_MODEL))

    for layer in fast.layers:
        layer.attn.forward = sdpa_forward.__get__(layer.attn)
    return ref, fast, mbm.BERT_VOCAB


def kpt_bench_gpt():
    """scripts/make_bench_models.py's GPT-2-small (pre-LayerNorm decoder, 12 layers, 768 wide,
    tanh GELU, tied-size LM head; explicit causal attention for the export); PyTorch times the
    same weights with F.scaled_dot_product_attention(is_causal=True)."""
    import copy

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_bench_models as mbm

    ref = mbm.init_weights(mbm.Gpt(use_mha=False)).eval()
    fast = copy.deepcopy(ref)

    def sdpa_forward(self, x, additive_mask=None):
        q, k, v = self.heads(self.query(x)), self.heads(self.key(x)), self.heads(self.value(x))
        ctx = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        ctx = ctx.permute(0, 2, 1, 3).contiguous()
        return self.out(ctx.view(ctx.size(0), ctx.size(1), mbm.D_MODEL))

    for block in fast.blocks:
        block.attn.forward = sdpa_forward.__get__(block.attn)
    return ref, fast, mbm.GPT_VOCAB


# Per model: builder, input names, output name (the token models take ids and maybe a mask).
TOKEN_MODELS = {
    "kpt-bert": (kpt_bench_bert, ["input_ids", "attention_mask"], "last_hidden_state"),
    "hf-bert": (hf_bert, ["input_ids", "attention_mask"], "last_hidden_state"),
    "kpt-gpt": (kpt_bench_gpt, ["input_ids"], "logits"),
}


def run_kpt(args, onnx_path, d, label):
    """kpt_gpu_model_bench on one input folder: its JSON line, or {"error": ...}."""
    r = subprocess.run([args.bench, onnx_path, d, "--precision", "fp16", "--iters",
                        str(args.iters), "--reference", os.path.join(d, "reference.npy"),
                        "--label", label] + args.kpt_args.split(),
                       capture_output=True, text=True, timeout=150)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        print(f"kpt_gpu_model_bench failed ({r.returncode})", flush=True)
        return {"error": r.stderr[-2000:]}
    print(r.stdout.strip(), flush=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def resnet50_main(args):
    """torchvision's ResNet-50 (weights=None, seed 0, eval), exported with input "input"
    [batch, 3, 224, 224] (dynamic batch); PyTorch fp16 eager (NCHW and channels_last) and
    torch.compile(mode="reduce-overhead") for the --compile runs, against kpt fp16. PyTorch's fp32
    output (TF32 off) is the reference. kpt and eager run first: compiling takes the longest."""
    import torchvision

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    ref = torchvision.models.resnet50(weights=None).eval()
    onnx_path = os.path.join(args.work, "resnet50.onnx")
    t0 = time.time()
    with torch.no_grad():
        torch.onnx.export(ref, (torch.randn(1, 3, 224, 224),), onnx_path, dynamo=False,
                          opset_version=17, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    print(f"exported {onnx_path} in {time.time() - t0:.1f} s", flush=True)
    ref = ref.cuda()
    fast = __import__("copy").deepcopy(ref).half()
    fast_cl = __import__("copy").deepcopy(fast).to(memory_format=torch.channels_last)
    rows = {}
    for b in (int(x) for x in args.batches.split(",")):
        x = torch.randn(b, 3, 224, 224, generator=torch.Generator().manual_seed(1))
        d = os.path.join(args.work, f"resnet_b{b}")
        os.makedirs(d, exist_ok=True)
        np.save(os.path.join(d, "input.npy"), x.numpy())
        with torch.no_grad():
            want = ref(x.cuda()).float().cpu()
            np.save(os.path.join(d, "reference.npy"), want.numpy())
            xh = x.cuda().half()
            xcl = xh.contiguous(memory_format=torch.channels_last)
            cos = torch.nn.functional.cosine_similarity(fast(xh).float().cpu().flatten(),
                                                        want.flatten(), dim=0)
            row = {"model": "resnet50", "batch": b, "torch": torch.__version__,
                   "torch_eager_ms": median_ms(lambda: fast(xh), 3, args.iters),
                   "torch_eager_channels_last_ms": median_ms(lambda: fast_cl(xcl), 3, args.iters),
                   "torch_fp16_cosine": float(cos)}
        print(json.dumps(row), flush=True)
        row["kpt_fp16"] = run_kpt(args, onnx_path, d, f"resnet50 b{b} fp16")
        rows[b] = (row, xh, xcl)
    for spec in (x for x in args.compile.split(",") if x):
        b, channels_last = int(spec.split(":")[0]), spec.endswith(":cl")
        row, xh, xcl = rows[b]
        name = "torch_compile_channels_last_ms" if channels_last else "torch_compile_ms"
        compiled = torch.compile(fast_cl if channels_last else fast, mode="reduce-overhead")
        inp = xcl if channels_last else xh
        t0 = time.time()
        with torch.no_grad():
            for _ in range(3):
                compiled(inp)
            row[name + "_warmup_s"] = time.time() - t0
            row[name] = median_ms(lambda: compiled(inp), 3, args.iters)
        print(json.dumps({"batch": b, name: row[name], "warmup_s": row[name + "_warmup_s"]}),
              flush=True)
    print("\nresnet50 fp16  batch  torch eager  eager CL  compile  compile CL  kpt graph  "
          "kpt eager  kpt host-io  img/s kpt  cosine kpt")
    for b, (row, _, _) in rows.items():
        k = row.get("kpt_fp16", {})
        ours = k.get("device_io_ms", {}).get("graph", float("nan"))
        print(f"{b:20d} {row['torch_eager_ms']:9.3f} {row['torch_eager_channels_last_ms']:9.3f} "
              f"{row.get('torch_compile_ms', float('nan')):8.3f} "
              f"{row.get('torch_compile_channels_last_ms', float('nan')):9.3f} {ours:10.3f} "
              f"{k.get('device_io_ms', {}).get('eager', float('nan')):9.3f} "
              f"{k.get('host_io_ms', {}).get('graph', float('nan')):9.3f} "
              f"{b * 1000 / ours:10.0f} "
              f"{k.get('agreement', {}).get('cosine', float('nan')):.6f}")
    with open(os.path.join(args.out, "resnet50_bench.json"), "w") as f:
        json.dump([r for r, _, _ in rows.values()], f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--configs", default="1x128,32x128")
    ap.add_argument("--precisions", default="fp16")
    ap.add_argument("--batches", default="1,32", help="resnet50: batch sizes")
    ap.add_argument("--compile", default="32,32:cl,1,1:cl",
                    help="resnet50: torch.compile runs, BATCH (NCHW) or BATCH:cl (channels_last)")
    ap.add_argument("--kpt-args", default="",
                    help="extra arguments for kpt_gpu_model_bench, e.g. --profile")
    ap.add_argument("--model", default="kpt-bert", choices=sorted(TOKEN_MODELS) + ["resnet50"],
                    help="hf-bert: transformers' BertModel (its exported mask is [batch, 1, "
                         "seq, seq], which kpt's GPU attention does not take yet)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    if args.model == "resnet50":
        return resnet50_main(args)
    torch.manual_seed(0)
    build, input_names, output_name = TOKEN_MODELS[args.model]
    ref, fast, vocab = build()
    with_mask = "attention_mask" in input_names
    onnx_path = os.path.join(args.work, f"{args.model}.onnx")
    t0 = time.time()
    with torch.no_grad():
        ids = torch.randint(0, vocab, (2, 16))
        axes = {0: "batch", 1: "sequence"}
        torch.onnx.export(
            ref, (ids, torch.ones_like(ids)) if with_mask else (ids,), onnx_path, dynamo=False,
            opset_version=17, input_names=input_names, output_names=[output_name],
            dynamic_axes={name: axes for name in input_names + [output_name]})
    print(f"exported {onnx_path} in {time.time() - t0:.1f} s", flush=True)
    fast = fast.eval().half().cuda()
    compiled = torch.compile(fast, mode="reduce-overhead")
    ref = ref.cuda()
    results = []
    for config in args.configs.split(","):
        b, s = (int(x) for x in config.split("x"))
        g = torch.Generator().manual_seed(1)
        ids = torch.randint(0, vocab, (b, s), generator=g)
        mask = torch.ones(b, s, dtype=torch.int64)
        d = os.path.join(args.work, f"inputs_{b}x{s}")
        os.makedirs(d, exist_ok=True)
        np.save(os.path.join(d, "input_ids.npy"), ids.numpy())
        feeds = (ids.cuda(), mask.cuda()) if with_mask else (ids.cuda(),)
        if with_mask:
            np.save(os.path.join(d, "attention_mask.npy"), mask.numpy())
        with torch.no_grad():
            want = ref(*feeds).float().cpu()
            np.save(os.path.join(d, "reference.npy"), want.numpy())
            half_out = fast(*feeds).float().cpu()
            cos = torch.nn.functional.cosine_similarity(half_out.flatten(), want.flatten(), dim=0)
            eager = median_ms(lambda: fast(*feeds), 5, args.iters)
            t0 = time.time()
            for _ in range(3):
                compiled(*feeds)
            compile_s = time.time() - t0
            comp = median_ms(lambda: compiled(*feeds), 5, args.iters)
        row = {"model": args.model, "batch": b, "seq": s, "torch": torch.__version__,
               "torch_eager_ms": eager, "torch_compile_ms": comp,
               "torch_compile_warmup_s": compile_s, "torch_fp16_cosine": float(cos)}
        print(json.dumps(row), flush=True)
        for p in args.precisions.split(","):
            r = subprocess.run([args.bench, onnx_path, d, "--precision", p, "--iters",
                                str(args.iters), "--reference", os.path.join(d, "reference.npy"),
                                "--label", f"{args.model} b{b} s{s} {p}"] + args.kpt_args.split(),
                               capture_output=True, text=True, timeout=150)
            sys.stderr.write(r.stderr)
            if r.returncode != 0:
                print(f"kpt_gpu_model_bench failed ({r.returncode})", flush=True)
                row[f"kpt_{p}"] = {"error": r.stderr[-2000:]}
                continue
            row[f"kpt_{p}"] = json.loads(r.stdout.strip().splitlines()[-1])
            print(r.stdout.strip(), flush=True)
        results.append(row)

    print("\nmodel      batch seq  torch eager  torch.compile  kpt graph  kpt eager  "
          "kpt host-io  seq/s kpt  vs compile")
    for row in results:
        for p in args.precisions.split(","):
            k = row.get(f"kpt_{p}", {})
            if "device_io_ms" not in k:
                continue
            ours = k["device_io_ms"]["graph"]
            print(f"{args.model:10s} {row['batch']:5d} {row['seq']:4d} {row['torch_eager_ms']:9.3f} ms "
                  f"{row['torch_compile_ms']:10.3f} ms {ours:8.3f} ms "
                  f"{k['device_io_ms']['eager']:8.3f} ms {k['host_io_ms']['graph']:8.3f} ms "
                  f"{row['batch'] * 1000 / ours:9.0f} {row['torch_compile_ms'] / ours:8.2f}x "
                  f"({p}, cosine {k.get('agreement', {}).get('cosine', float('nan')):.6f})")
    with open(os.path.join(args.out, "model_bench.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
