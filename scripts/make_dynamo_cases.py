"""Makes test cases from the dynamo exporter's models in ../shared/models: materializes their
weights (seeded), draws seeded random inputs, and records ONNX Runtime's outputs (through npm's
onnxruntime-node, tools/ort) as the expected results, laid out like the conformance cases:

    OUT/dynamo-models/<name>/model.onnx, test_data_set_0/{input_K,output_K}.pb

`kpt conformance OUT` then checks that kpt computes what ONNX Runtime computes on the models
users export today. Skips cases that exist."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "models")
ORT = os.path.join(HERE, "..", "tools", "ort", "run_ort.js")

CASES = {
    # name: (skeleton, {input: (dtype, shape, high)})
    "distilbert_base": ("distilbert_base.skeleton.onnx",
                        {"input_ids": (np.int64, (2, 16), 30000), "attention_mask": (np.int64, (2, 16), None)}),
    "vit_b16": ("vit_b16.skeleton.onnx", {"pixel_values": (np.float32, (1, 3, 224, 224), None)}),
}


def make(name, skeleton, inputs, root):
    folder = os.path.join(root, "dynamo-models", name)
    data = os.path.join(folder, "test_data_set_0")
    if os.path.exists(os.path.join(data, "output_0.pb")):
        return
    os.makedirs(data, exist_ok=True)
    model_path = os.path.join(folder, "model.onnx")
    subprocess.run([sys.executable, os.path.join(SHARED, "materialize.py"),
                    os.path.join(SHARED, skeleton), model_path], check=True)
    graph_inputs = [i.name for i in onnx.load(model_path, load_external_data=False).graph.input]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for k, input_name in enumerate(graph_inputs):
            dtype, shape, high = inputs[input_name]
            if input_name == "attention_mask":
                a = np.ones(shape, dtype=dtype)
                a[-1, shape[1] // 2:] = 0  # padding in the last row
            elif high is not None:
                a = rng.integers(0, high, size=shape, dtype=dtype)
            else:
                a = rng.standard_normal(shape).astype(dtype)
            np.save(os.path.join(tmp, f"{input_name}.npy"), a)
            with open(os.path.join(data, f"input_{k}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(a).SerializeToString())
        subprocess.run(["node", ORT, model_path, tmp, tmp], check=True)
        k = 0
        while os.path.exists(os.path.join(tmp, f"output_{k}.npy")):
            with open(os.path.join(data, f"output_{k}.pb"), "wb") as f:
                f.write(numpy_helper.from_array(np.load(os.path.join(tmp, f"output_{k}.npy"))).SerializeToString())
            k += 1
    print(f"made {name}")


def main(root):
    for name, (skeleton, inputs) in CASES.items():
        make(name, skeleton, inputs, root)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/test-models")
