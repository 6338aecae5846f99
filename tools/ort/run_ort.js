// Runs a model with ONNX Runtime (CPU, all graph optimizations) on .npy inputs and writes its
// outputs as .npy: the peer that kpt's outputs are checked against.
// Usage: node run_ort.js MODEL.onnx INPUT_DIR OUTPUT_DIR [THREADS]
// INPUT_DIR holds NAME.npy for every model input; outputs are written as output_K.npy.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const npyTypes = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
  '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array],
  '|u1': ['uint8', Uint8Array], '|b1': ['bool', Uint8Array], '|i1': ['int8', Int8Array],
};

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + hlen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map(s => s.trim())
      .filter(s => s.length).map(Number);
  const t = npyTypes[descr];
  if (!t) throw new Error(`${file}: unsupported dtype ${descr}`);
  const bytes = buf.subarray(start);
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const data = new t[1](copy.buffer, 0, bytes.length / t[1].BYTES_PER_ELEMENT);
  return new ort.Tensor(t[0], t[0] === 'bool' ? Uint8Array.from(data) : data, shape);
}

function writeNpy(file, tensor) {
  const codes = {float32: '<f4', float64: '<f8', int64: '<i8', int32: '<i4', uint8: '|u1',
                 bool: '|b1', int8: '|i1'};
  const code = codes[tensor.type];
  if (!code) throw new Error(`cannot write output of type ${tensor.type}`);
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${code}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = tensor.type === 'bool' ? Buffer.from(Uint8Array.from(tensor.data, v => v ? 1 : 0))
                                      : Buffer.from(tensor.data.buffer, tensor.data.byteOffset,
                                                    tensor.data.byteLength);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), data]));
}

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
