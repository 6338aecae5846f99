"""Round trip of `kpt export`: for each test case (a folder with model.onnx and
test_data_set_0/{input_K,output_K}.pb, as `make test` and the conformance suite lay them out)
export the optimized model in both modes, run the exported file with ONNX Runtime (npm's
onnxruntime-node, tools/ort/run_ort.js) and with kpt itself, and compare both with the case's
expected outputs at the given tolerance (|got - want| <= atol + rtol * |want|).

    python3 scripts/export_roundtrip.py build/kpt CASE_DIR... [--rtol 1e-3] [--atol 1e-4]
        [--via-engine] [--require-ort-ops OP,...]

--via-engine: onnx -> kpt optimize -o model.kpt -> kpt export of the engine file (the issue's
kpt -> onnx path), instead of exporting the ONNX file directly.

For each exported file the com.microsoft nodes it holds are printed beside the kernels of those
ops ONNX Runtime ran (from its profile). --require-ort-ops: a case fails when an exported file
holds one of these ops and ONNX Runtime did not run one kernel per node.

Exit status 1 when any case fails; a table of max abs errors is printed either way."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ORT = os.path.join(HERE, "..", "tools", "ort", "run_ort.js")
MODES = {"contrib": [], "standard": ["--standard-ops-only"]}


def read_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def case_data(case):
    model = onnx.load(os.path.join(case, "model.onnx"), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    data = os.path.join(case, "test_data_set_0")
    inputs = {n: read_pb(os.path.join(data, f"input_{k}.pb")) for k, n in enumerate(names)}
    outputs, k = [], 0
    while os.path.exists(os.path.join(data, f"output_{k}.pb")):
        outputs.append(read_pb(os.path.join(data, f"output_{k}.pb")))
        k += 1
    return inputs, outputs, [o.name for o in model.graph.output]


def max_error(got, want, rtol, atol):
    """(max abs error, within tolerance)"""
    if got.shape != want.shape:
        return float("inf"), False
    g, w = got.astype(np.float64), want.astype(np.float64)
    err = np.abs(g - w)
    ok = bool(np.all((err <= atol + rtol * np.abs(w)) | (np.isnan(g) & np.isnan(w))))
    return float(np.nanmax(err)) if err.size else 0.0, ok


def safe(name):
    """The file name `kpt run --output-dir` gives an output."""
    return name.replace("/", "_").replace("\\", "_").replace(":", "_")


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def contrib_nodes(path):
    """{op type: count} of the com.microsoft nodes of a model (main graph)."""
    counts = {}
    for n in onnx.load(path, load_external_data=False).graph.node:
        if n.domain == "com.microsoft":
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


def check_case(kpt, case, rtol, atol, tmp, via_engine=False, required=()):
    inputs, want, out_names = case_data(case)
    source = os.path.join(case, "model.onnx")
    if via_engine:
        engine = os.path.join(tmp, "model.kpt")
        run([kpt, "optimize", source, "-o", engine])
        source = engine
    in_dir = os.path.join(tmp, "inputs")
    os.makedirs(in_dir, exist_ok=True)
    for n, a in inputs.items():
        np.save(os.path.join(in_dir, f"{n}.npy"), a)
    results = []
    for mode, flags in MODES.items():
        exported = os.path.join(tmp, f"{mode}.onnx")
        summary = run([kpt, "export", source, "-o", exported] + flags)
        lowered = [line.strip() for line in summary.splitlines()[2:]]
        ort_dir = os.path.join(tmp, f"ort_{mode}")
        run(["node", ORT, exported, in_dir, ort_dir, "--op-counts"])
        with open(os.path.join(ort_dir, "op_counts.json")) as f:
            ran = json.load(f)
        written = contrib_nodes(exported)
        contrib = [f"{op} {ran.get(op, 0)}/{k}" for op, k in sorted(written.items())]
        missing = [op for op in required if op in written and ran.get(op, 0) != written[op]]
        kpt_dir = os.path.join(tmp, f"kpt_{mode}")
        run([kpt, "run", exported, "--output-dir", kpt_dir] +
            [a for n in inputs for a in ("--input", f"{n}={os.path.join(in_dir, n + '.npy')}")])
        for engine, path in (("ort", lambda k: os.path.join(ort_dir, f"output_{k}.npy")),
                             ("kpt", lambda k: os.path.join(kpt_dir, f"{safe(out_names[k])}.npy"))):
            errs = [max_error(np.load(path(k)), w, rtol, atol) for k, w in enumerate(want)]
            ok = all(ok for _, ok in errs) and not (engine == "ort" and missing)
            results.append((mode, engine, max(e for e, _ in errs), ok, lowered, contrib, missing))
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kpt")
    p.add_argument("cases", nargs="+")
    p.add_argument("--rtol", type=float, default=1e-3)
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("-v", "--verbose", action="store_true", help="print what each export lowered")
    p.add_argument("--via-engine", action="store_true",
                   help="export from an engine file made from the model, not the model itself")
    p.add_argument("--require-ort-ops", default="",
                   help="com.microsoft ops ONNX Runtime must run once per exported node (comma list)")
    a = p.parse_args()
    failed = 0
    for case in a.cases:
        name = os.path.relpath(case)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                required = [op for op in a.require_ort_ops.split(",") if op]
                results = check_case(a.kpt, case, a.rtol, a.atol, tmp, a.via_engine, required)
            except RuntimeError as e:
                print(f"FAIL {name}: {e}")
                failed += 1
                continue
        for mode, engine, err, ok, lowered, contrib, missing in results:
            print(f"{'ok  ' if ok else 'FAIL'} {name} {mode:8s} {engine}: max abs error {err:.3g}")
            failed += not ok
            if engine == "ort" and contrib:
                print(f"       com.microsoft nodes (ONNX Runtime ran/written): {', '.join(contrib)}")
            if engine == "ort" and missing:
                print(f"       ONNX Runtime did not run every {', '.join(missing)} node")
            if a.verbose and engine == "ort":
                for line in lowered:
                    print(f"       {line}")
    print(f"{failed} failed" if failed else "all passed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
