// ONNX Runtime side of `make bench-backbone`: NASNet-A Mobile inference latency (batch 1 and
// 8, 2 intra-op threads, all graph optimisations), medians after two warm-up runs.
//
//   node bench/backbone_ort.js NODE_MODULES_DIR MODEL_B1.onnx MODEL_B8.onnx [RUNS]
'use strict';
const path = require('path');
const [modules, m1, m8, runsArg] = process.argv.slice(2);
const ort = require(path.join(path.resolve(modules), 'onnxruntime-node'));
const runs = parseInt(runsArg || '5', 10);

function median(a) {
  const s = [...a].sort((x, y) => x - y);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

async function infer(file, batch, n) {
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all',
  });
  const data = new Float32Array(batch * 3 * 224 * 224);
  for (let i = 0; i < data.length; i++) data[i] = ((i * 7919) % 255) / 127.5 - 1;
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [batch, 3, 224, 224]) };
  const times = [];
  for (let r = -2; r < n; r++) { // two untimed passes, as the other two get
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    if (r >= 0) times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  console.log(`infer  nasnet-a-mobile 224 batch ${batch}: ${median(times).toFixed(1).padStart(8)} ms (median of ${n})`);
}

(async () => {
  console.log(`onnxruntime ${ort.env.versions ? ort.env.versions.common : ''} bench-backbone: 2 threads`);
  await infer(m1, 1, runs);
  await infer(m8, 8, Math.max(1, runs >> 1));
})().catch((e) => { console.error(`onnxruntime: ${e.message}`); process.exit(1); });
