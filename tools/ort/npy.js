// NumPy .npy files (format versions 1-3, little-endian, C order) as onnxruntime-node tensors:
// the exchange format between kpt and the ONNX Runtime peer scripts.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

// npy dtype code -> [ONNX Runtime tensor type, typed array holding the bytes]
const NPY_TYPES = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
  '<f2': ['float16', Uint16Array],
  '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array], '<i2': ['int16', Int16Array],
  '|i1': ['int8', Int8Array],
  '<u8': ['uint64', BigUint64Array], '<u4': ['uint32', Uint32Array], '<u2': ['uint16', Uint16Array],
  '|u1': ['uint8', Uint8Array], '|b1': ['bool', Uint8Array],
};
const NPY_CODES = Object.fromEntries(Object.entries(NPY_TYPES).map(([code, [type]]) => [type, code]));

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf[0] !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') {
    throw new Error(`${file}: not a .npy file (no \\x93NUMPY magic)`);
  }
  const major = buf[6];
  const headerStart = major === 1 ? 10 : 12;
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', headerStart, headerStart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape) throw new Error(`${file}: header without descr or shape: ${header}`);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order is not supported`);
  const t = NPY_TYPES[descr[1].replace('=', '<')];
  if (!t) throw new Error(`${file}: unsupported dtype ${descr[1]}; expected one of ${Object.keys(NPY_TYPES)}`);
  const dims = shape[1].split(',').map(s => s.trim()).filter(s => s.length).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const bytes = buf.subarray(headerStart + hlen);
  if (bytes.length !== count * t[1].BYTES_PER_ELEMENT) {
    throw new Error(`${file}: ${bytes.length} data bytes for shape (${dims}) of ${descr[1]}`);
  }
  const copy = new Uint8Array(bytes.length);  // aligned for the typed array
  copy.set(bytes);
  const data = new t[1](copy.buffer, 0, count);
  return new ort.Tensor(t[0], data, dims);
}

function writeNpy(file, tensor) {
  const code = NPY_CODES[tensor.type];
  if (!code) throw new Error(`cannot write a tensor of type ${tensor.type} as .npy`);
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${code}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = tensor.type === 'bool'
      ? Buffer.from(Uint8Array.from(tensor.data, v => (v ? 1 : 0)))
      : Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), data]));
}

module.exports = {readNpy, writeNpy};
