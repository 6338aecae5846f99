#!/usr/bin/env python3
"""Makes the small model repository the server tests serve (ONNX graphs built with onnx.helper).

  add/1            Add of two f32[3,4,5] tensors (the issue's trivial model), no config
  batch/1, 2       y = x * 2 (version 1) or x * 3 (version 2) over f32[N,4], dynamic batching
  slow/1           a chain of float64 MatMuls over f32[N,512] (reference kernels) that takes tens of ms, a queue of 2
  ints/1           z = a + b over int64[N] (dtype checks)
  seqbatch/1       y = x * 3 over f32[N,L] with dynamic batching (requests of different L)

Usage: server_make_models.py DIR [--slow-layers N]
"""
import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def save(model_dir, version, graph, config=None):
    path = os.path.join(model_dir, str(version))
    os.makedirs(path, exist_ok=True)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(path, "model.onnx"))
    if config is not None:
        with open(os.path.join(model_dir, "config.json"), "w") as f:
            json.dump(config, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--slow-layers", type=int, default=48)
    args = ap.parse_args()
    d = args.dir
    f32 = TensorProto.FLOAT

    save(os.path.join(d, "add"), 1, helper.make_graph(
        [helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"])], "add",
        [helper.make_tensor_value_info("INPUT0", f32, [3, 4, 5]),
         helper.make_tensor_value_info("INPUT1", f32, [3, 4, 5])],
        [helper.make_tensor_value_info("OUTPUT0", f32, [3, 4, 5])]))

    for version, factor in ((1, 2.0), (2, 3.0)):
        save(os.path.join(d, "batch"), version, helper.make_graph(
            [helper.make_node("Mul", ["x", "k"], ["y"])], "batch",
            [helper.make_tensor_value_info("x", f32, ["N", 4])],
            [helper.make_tensor_value_info("y", f32, ["N", 4])],
            [numpy_helper.from_array(np.array([factor], dtype=np.float32), "k")]),
            {"max_batch_size": 16,
             "dynamic_batching": {"max_queue_delay_microseconds": 50000},
             "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [4]}]})

    rng = np.random.default_rng(0)
    # The chain runs in float64, which only the reference kernels take: the model stays slow
    # (tens of ms) however fast the float32 kernels get, so queueing tests keep their timing.
    w = (rng.standard_normal((512, 512)) / np.sqrt(512)).astype(np.float64)
    nodes, prev = [helper.make_node("Cast", ["x"], ["x64"], to=TensorProto.DOUBLE)], "x64"
    for i in range(args.slow_layers):
        nodes.append(helper.make_node("MatMul", [prev, "w"], [f"h{i}"]))
        prev = f"h{i}"
    nodes.append(helper.make_node("Cast", [prev], ["y"], to=TensorProto.FLOAT))
    save(os.path.join(d, "slow"), 1, helper.make_graph(
        nodes, "slow",
        [helper.make_tensor_value_info("x", f32, ["N", 512])],
        [helper.make_tensor_value_info("y", f32, ["N", 512])],
        [numpy_helper.from_array(w, "w")]),
        {"max_queue_size": 2, "instance_count": 1})

    save(os.path.join(d, "seqbatch"), 1, helper.make_graph(
        [helper.make_node("Mul", ["x", "k"], ["y"])], "seqbatch",
        [helper.make_tensor_value_info("x", f32, ["N", "L"])],
        [helper.make_tensor_value_info("y", f32, ["N", "L"])],
        [numpy_helper.from_array(np.array([3.0], dtype=np.float32), "k")]),
        {"max_batch_size": 16, "dynamic_batching": {"max_queue_delay_microseconds": 50000}})

    i64 = TensorProto.INT64
    save(os.path.join(d, "ints"), 1, helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["z"])], "ints",
        [helper.make_tensor_value_info("a", i64, ["N"]), helper.make_tensor_value_info("b", i64, ["N"])],
        [helper.make_tensor_value_info("z", i64, ["N"])]))


if __name__ == "__main__":
    main()
