"""Device-window driver (g-fp8): BERT-base export as scripts/gpu_model_bench.py does, then
kpt_gpu_model_bench at each precision on the same inputs (PyTorch's compile timing skipped:
the window is 120 s; the full script runs later)."""
import json, os, subprocess, sys, time
import numpy as np
import torch
sys.path.insert(0, "scripts")
import gpu_model_bench as gmb

precisions = sys.argv[1].split(",")
configs = sys.argv[2].split(",")
iters = sys.argv[3]
work = "/tmp/work-fp8"
os.makedirs(work, exist_ok=True)
torch.manual_seed(0)
ref, fast, vocab = gmb.kpt_bench_bert()
onnx_path = os.path.join(work, "kpt-bert.onnx")
t0 = time.time()
with torch.no_grad():
    ids = torch.randint(0, vocab, (2, 16))
    torch.onnx.export(
        ref, (ids, torch.ones_like(ids)), onnx_path, dynamo=False, opset_version=17,
        input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
        dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                      "attention_mask": {0: "batch", 1: "sequence"},
                      "last_hidden_state": {0: "batch", 1: "sequence"}})
print(f"exported in {time.time() - t0:.1f} s", flush=True)
ref = ref.cuda()
fast = fast.eval().half().cuda()
compiled = torch.compile(fast, mode="reduce-overhead")
for config in configs:
    b, s = (int(x) for x in config.split("x"))
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (b, s), generator=g)
    mask = torch.ones(b, s, dtype=torch.int64)
    d = os.path.join(work, f"inputs_{b}x{s}")
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "input_ids.npy"), ids.numpy())
    np.save(os.path.join(d, "attention_mask.npy"), mask.numpy())
    with torch.no_grad():
        want = ref(ids.cuda(), mask.cuda()).float().cpu()
        np.save(os.path.join(d, "reference.npy"), want.numpy())
        gi, gm = ids.cuda(), mask.cuda()
        eager = gmb.median_ms(lambda: fast(gi, gm), 5, 20)
        t0 = time.time()
        for _ in range(3):
            compiled(gi, gm)
        warm = time.time() - t0
        comp = gmb.median_ms(lambda: compiled(gi, gm), 5, int(iters))
    print(json.dumps({"batch": b, "seq": s, "torch_eager_fp16_ms": eager,
                      "torch_compile_fp16_ms": comp, "compile_warmup_s": warm}), flush=True)
    for p in precisions:
        t0 = time.time()
        r = subprocess.run([os.environ.get("KPT_BENCH", "bin/kpt_gpu_model_bench"), onnx_path, d,
                            "--precision", p, "--iters", iters,
                            "--reference", os.path.join(d, "reference.npy"),
                            "--label", f"b{b} s{s} {p}"], capture_output=True, text=True,
                           timeout=60)
        err = r.stderr
        sys.stdout.write("".join(l + "\n" for l in err.splitlines()
                                 if l.startswith(("gpu kernels", "fp8 gemms", "kpt_gpu"))
                                 or "writing for the next" in l or "in FP8" in l))
        if r.returncode != 0:
            print(f"FAILED {p} rc {r.returncode}: {err[-3000:]}", flush=True)
            continue
        j = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"b{b} s{s} {p}: graph {j['device_io_ms']['graph']:.3f} ms, eager "
              f"{j['device_io_ms']['eager']:.3f} ms, load {j['load_ms']:.0f} ms, cosine "
              f"{j['agreement']['cosine']:.7f}, max_abs {j['agreement']['max_abs']:.4f} "
              f"({time.time() - t0:.1f} s)", flush=True)
