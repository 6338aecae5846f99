// Runs a model with ONNX Runtime (CPU, all graph optimizations) on .npy inputs and writes its
// outputs as .npy: the peer that kpt's outputs are checked against.
// Usage: node run_ort.js MODEL.onnx INPUT_DIR OUTPUT_DIR [THREADS]
// INPUT_DIR holds NAME.npy for every model input; outputs are written as output_K.npy.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const {readNpy, writeNpy} = require('./npy');

async function main() {
  const [model, inDir, outDir, threads] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: 'all', intraOpNumThreads: Number(threads || 2)});
  const feeds = {};
  for (const name of session.inputNames) feeds[name] = readNpy(path.join(inDir, `${name}.npy`));
  const results = await session.run(feeds);
  fs.mkdirSync(outDir, {recursive: true});
  session.outputNames.forEach((name, k) => writeNpy(path.join(outDir, `output_${k}.npy`), results[name]));
}

main().catch(e => { console.error(`run_ort: ${e.message}`); process.exit(1); });
