// Times a model with ONNX Runtime for `kpt bench --compare ort`: the same inputs kpt ran, CPU,
// all graph optimizations, the same thread count, runs one after another.
// Usage: node bench_ort.js MODEL.onnx DIR THREADS WARMUP ITERATIONS
// DIR/inputs.json maps each input name to a .npy file in DIR. Writes DIR/ort_output_K.npy for
// each output of the last timed run and DIR/ort_result.json:
//   {version, load_ms, latencies_ms: [...], total_ms, outputs: [name, ...]}
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const {readNpy, writeNpy} = require('./npy');

function msSince(start) {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length !== 5) throw new Error('usage: node bench_ort.js MODEL DIR THREADS WARMUP ITERATIONS');
  const [model, dir] = args;
  const [threads, warmup, iterations] = args.slice(2).map(Number);
  if (!(threads >= 1) || !(warmup >= 0) || !(iterations >= 1)) {
    throw new Error(`bad counts: threads ${args[2]}, warmup ${args[3]}, iterations ${args[4]}`);
  }
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const loadMs = msSince(t0);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'inputs.json'), 'utf8'));
  const feeds = {};
  // Inputs that kpt filled; ONNX Runtime itself names any required input that is missing (older
  // models list initializers as inputs too, and those may be left out).
  for (const name of session.inputNames) {
    if (name in manifest) feeds[name] = readNpy(path.join(dir, manifest[name]));
  }
  for (let i = 0; i < warmup; ++i) await session.run(feeds);
  const latencies = [];
  let results;
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; ++i) {
    const t = process.hrtime.bigint();
    results = await session.run(feeds);
    latencies.push(msSince(t));
  }
  const totalMs = msSince(start);
  session.outputNames.forEach((name, k) => writeNpy(path.join(dir, `ort_output_${k}.npy`), results[name]));
  const version = require('onnxruntime-node/package.json').version;
  fs.writeFileSync(path.join(dir, 'ort_result.json'), JSON.stringify({
    version, load_ms: loadMs, latencies_ms: latencies, total_ms: totalMs,
    outputs: session.outputNames}));
}

main().catch(e => { console.error(`bench_ort: ${e.message}`); process.exit(1); });
