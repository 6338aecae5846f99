// Runs a model with ONNX Runtime (CPU, all graph optimizations) on .npy inputs and writes its
// outputs as .npy: the peer that kpt's outputs are checked against.
// Usage: node run_ort.js MODEL.onnx INPUT_DIR OUTPUT_DIR [THREADS] [--op-counts]
// INPUT_DIR holds NAME.npy for every model input; outputs are written as output_K.npy.
// --op-counts: also OUTPUT_DIR/op_counts.json, {op type: kernels run}, from ONNX Runtime's
// profile, which says what it executed after its own graph rewrites.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');
const {readNpy, writeNpy} = require('./npy');

function writeOpCounts(outDir) {
  const counts = {};
  for (const file of fs.readdirSync(outDir).filter(f => f.startsWith('ort_profile'))) {
    const profile = path.join(outDir, file);
    for (const e of JSON.parse(fs.readFileSync(profile, 'utf8'))) {
      if (e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.args && e.args.op_name)
        counts[e.args.op_name] = (counts[e.args.op_name] || 0) + 1;
    }
    fs.unlinkSync(profile);
  }
  fs.writeFileSync(path.join(outDir, 'op_counts.json'), JSON.stringify(counts));
}

async function main() {
  const args = process.argv.slice(2);
  const opCounts = args.includes('--op-counts');
  const [model, inDir, outDir, threads] = args.filter(a => a !== '--op-counts');
  fs.mkdirSync(outDir, {recursive: true});
  const options = {graphOptimizationLevel: 'all', intraOpNumThreads: Number(threads || 2)};
  if (opCounts) Object.assign(options, {enableProfiling: true, profileFilePrefix: path.join(outDir, 'ort_profile')});
  const session = await ort.InferenceSession.create(model, options);
  const feeds = {};
  for (const name of session.inputNames) feeds[name] = readNpy(path.join(inDir, `${name}.npy`));
  const results = await session.run(feeds);
  session.outputNames.forEach((name, k) => writeNpy(path.join(outDir, `output_${k}.npy`), results[name]));
  if (opCounts) {
    await session.endProfiling();
    writeOpCounts(outDir);
  }
}

main().catch(e => { console.error(`run_ort: ${e.message}`); process.exit(1); });
