// Makes the face-api.js reference fixtures for the Rust face-net parity tests.
//
//   node tests/faceapi/make_reference.mjs      (or tests/faceapi/run.sh, which also installs)
//
// Inputs (from weights/fetch-face-models.sh): weights/face-api/{dist,model,demo}.
// Outputs: tests/faceapi/fixtures/reference.json and, per face, two lossless RGB PNG crops
// (112x112 for the landmark + expression nets, 150x150 for the recognition net).
//
// Everything runs through face-api's own bundle (dist/face-api.esm.js, tfjs 4.22.0 inside) on
// the tfjs CPU backend: no native addon, no canvas. Images are decoded/encoded with pure-JS
// jpeg-js / pngjs. The nets are fed the PNG pixels themselves (decoded back from the written
// file), so a reimplementation reproduces each net input bit-exactly from the PNG.
// See NOTES.md for what each net does with its input.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const FACE_API = path.join(ROOT, 'weights', 'face-api');
const MODEL_DIR = path.join(FACE_API, 'model');
const DEMO_DIR = path.join(FACE_API, 'demo');
// --out DIR writes the fixtures elsewhere (run.sh --verify uses it to compare two runs).
const outArg = process.argv.indexOf('--out');
const OUT_DIR = outArg > 0 ? path.resolve(process.argv[outArg + 1]) : path.join(HERE, 'fixtures');

const PHOTOS = ['sample1.jpg', 'sample2.jpg', 'sample3.jpg', 'sample4.jpg', 'sample5.jpg', 'sample6.jpg'];
// 2 faces x 6 photos keeps the fixtures at ~700 KiB (PNG crops of photos barely compress:
// ~19 KiB per 112 crop, ~30 KiB per 150 crop); 3 per photo would be ~1.1 MiB.
const MAX_FACES_PER_PHOTO = 2;
const SSD_OPTIONS = { minConfidence: 0.5, maxResults: 100 };
const LANDMARK_SIZE = 112; // input size of FaceFeatureExtractor (landmark + expression nets)
const RECOGNITION_SIZE = 150; // input size of FaceRecognitionNet
const EXPECTED_LABELS = ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgusted', 'surprised'];

if (!fs.existsSync(path.join(FACE_API, 'dist', 'face-api.esm.js'))) {
  console.error('weights/face-api is missing: run weights/fetch-face-models.sh first');
  process.exit(1);
}

// --- load face-api -------------------------------------------------------------------------
// The bundle's tfjs picks its "node" platform when it sees Node, and that platform needs
// require('util'), which the browser-oriented bundle has stubbed out (TypeError: TextEncoder
// is not a constructor). Making tfjs take its "browser" platform for the import fixes that:
// Node >= 18 has every global it uses (fetch, TextEncoder/Decoder, performance). face-api's
// own environment check still says Node (it needs window/document too). Numerics don't
// depend on the platform; the CPU backend does all the math.
process.removeAllListeners('warning'); // the bundle's typeless-package ESM warning is noise
process.on('warning', (w) => { if (w.code !== 'MODULE_TYPELESS_PACKAGE_JSON') console.warn(w); });
globalThis.WorkerGlobalScope = class {};
const faceapi = await import(pathToFileURL(path.join(FACE_API, 'dist', 'face-api.esm.js')).href);
delete globalThis.WorkerGlobalScope;
const { tf } = faceapi;
await tf.setBackend('cpu');
await tf.ready();
if (tf.getBackend() !== 'cpu') throw new Error(`expected the cpu backend, got ${tf.getBackend()}`);

// face-api reads weights through env.readFile: hand it Node's fs. Each returned Buffer owns an
// exactly-sized ArrayBuffer (face-api passes buf.buffer on to tfjs).
faceapi.env.monkeyPatch({
  readFile: async (p) => {
    const b = fs.readFileSync(p);
    return Buffer.from(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
  },
});
const { nets } = faceapi;
await nets.ssdMobilenetv1.loadFromDisk(MODEL_DIR);
await nets.faceLandmark68Net.loadFromDisk(MODEL_DIR);
await nets.faceExpressionNet.loadFromDisk(MODEL_DIR);
await nets.faceRecognitionNet.loadFromDisk(MODEL_DIR);

const labels = Array.from(faceapi.FACE_EXPRESSION_LABELS);
if (JSON.stringify(labels) !== JSON.stringify(EXPECTED_LABELS)) {
  throw new Error(`unexpected FACE_EXPRESSION_LABELS order: ${labels}`);
}

// --- helpers -------------------------------------------------------------------------------
// Shortest decimal that parses back to the same float32 (tfjs computes in float32).
function f32(v) {
  const x = Math.fround(v);
  if (!Number.isFinite(x)) throw new Error(`non-finite value ${v}`);
  if (Number.isInteger(x)) return x;
  for (let p = 1; p <= 9; p++) {
    const s = Number(x.toPrecision(p));
    if (Math.fround(s) === x) return s;
  }
  return x;
}
const f32s = (arr) => Array.from(arr, f32);
const r4 = (v) => Math.round(v * 1e4) / 1e4; // for geometry in photo pixels (informational)

function decodeJpeg(file) {
  const raw = jpeg.decode(fs.readFileSync(file), { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
  if (raw.data.length !== raw.width * raw.height * 3) throw new Error(`${file}: expected 3 channels`);
  return raw; // { width, height, data: Uint8Array RGB }
}

function writePng(file, size, rgb) {
  const png = new PNG({ width: size, height: size, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(rgb);
  fs.writeFileSync(file, PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false, deflateLevel: 9, filterType: -1 }));
}

function readPngRgb(file) {
  const png = PNG.sync.read(fs.readFileSync(file)); // always decodes to RGBA
  const rgb = new Uint8Array(png.width * png.height * 3);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgb[i] = png.data[j]; rgb[i + 1] = png.data[j + 1]; rgb[i + 2] = png.data[j + 2];
  }
  return { width: png.width, height: png.height, rgb };
}

// Square crop (side S, top-left x0,y0; pixels outside the photo are 0) resized to size x size
// with tfjs' resizeBilinear (alignCorners=false, halfPixelCenters=false: the call face-api
// itself uses in NetInput.toBatchTensor), rounded and clamped to uint8.
function squareCrop(img, x0, y0, S, size) {
  const crop = new Float32Array(S * S * 3);
  for (let y = 0; y < S; y++) {
    const sy = y0 + y;
    if (sy < 0 || sy >= img.height) continue;
    for (let x = 0; x < S; x++) {
      const sx = x0 + x;
      if (sx < 0 || sx >= img.width) continue;
      const si = (sy * img.width + sx) * 3;
      const di = (y * S + x) * 3;
      crop[di] = img.data[si]; crop[di + 1] = img.data[si + 1]; crop[di + 2] = img.data[si + 2];
    }
  }
  return tf.tidy(() => {
    const t = tf.tensor4d(crop, [1, S, S, 3], 'float32');
    const r = tf.image.resizeBilinear(t, [size, size], false, false);
    return Uint8Array.from(r.round().clipByValue(0, 255).dataSync());
  });
}

// The NetInput that face-api builds from our tensor must be the PNG's pixels, unchanged
// (square input of the net's own size: no padToSquare, no resize).
async function assertNetInputIsPng(tensor, size, rgb) {
  const netInput = await faceapi.toNetInput(tensor);
  const seen = tf.tidy(() => netInput.toBatchTensor(size, true).dataSync());
  if (seen.length !== rgb.length) throw new Error('net input size mismatch');
  for (let i = 0; i < rgb.length; i++) if (seen[i] !== rgb[i]) throw new Error(`net input differs from PNG at ${i}`);
}

// JSON with one key per line but every array of numbers (or of [x, y] pairs) on one line.
function compactJson(v, indent) {
  const flat = (a) => Array.isArray(a) && a.every((e) => typeof e === 'number' || typeof e === 'string' || (Array.isArray(e) && e.every((n) => typeof n === 'number')));
  if (flat(v)) return JSON.stringify(v);
  const inner = `${indent}  `;
  if (Array.isArray(v)) return `[\n${v.map((e) => inner + compactJson(e, inner)).join(',\n')}\n${indent}]`;
  if (v && typeof v === 'object') {
    return `{\n${Object.entries(v).map(([k, e]) => `${inner}${JSON.stringify(k)}: ${compactJson(e, inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(v);
}

async function run2d(fn) {
  const t = fn();
  const data = Array.from(await t.data());
  t.dispose();
  return data;
}

// --- main ----------------------------------------------------------------------------------
fs.mkdirSync(OUT_DIR, { recursive: true });
for (const f of fs.readdirSync(OUT_DIR)) if (/^sample\d+_face\d+_\d+\.png$/.test(f)) fs.unlinkSync(path.join(OUT_DIR, f));

const faces = [];
const photos = [];
for (const photo of PHOTOS) {
  const img = decodeJpeg(path.join(DEMO_DIR, photo));
  const imgTensor = tf.tensor3d(img.data, [img.height, img.width, 3], 'int32');
  const detections = await nets.ssdMobilenetv1.locateFaces(imgTensor, SSD_OPTIONS);
  imgTensor.dispose();
  const sorted = detections
    .map((d) => ({ score: d.score, box: d.box }))
    .sort((a, b) => (b.box.width * b.box.height - a.box.width * a.box.height) || (a.box.x - b.box.x));
  photos.push({ photo, width: img.width, height: img.height, faces_detected: sorted.length });
  const stem = path.basename(photo, '.jpg');

  for (let k = 0; k < Math.min(MAX_FACES_PER_PHOTO, sorted.length); k++) {
    const { score, box } = sorted[k];
    const side = Math.max(box.width, box.height);
    const S = Math.round(side);
    const x0 = Math.round(box.x + box.width / 2 - side / 2);
    const y0 = Math.round(box.y + box.height / 2 - side / 2);
    const face = {
      id: `${stem}_face${k}`,
      photo,
      detection: {
        score: f32(score),
        box: { x: r4(box.x), y: r4(box.y), width: r4(box.width), height: r4(box.height) },
      },
      crop_square: { x: x0, y: y0, size: S, zero_padded: x0 < 0 || y0 < 0 || x0 + S > img.width || y0 + S > img.height },
    };

    // 112x112: landmark + expression nets
    const png112 = `${face.id}_${LANDMARK_SIZE}.png`;
    writePng(path.join(OUT_DIR, png112), LANDMARK_SIZE, squareCrop(img, x0, y0, S, LANDMARK_SIZE));
    const in112 = readPngRgb(path.join(OUT_DIR, png112));
    const t112 = tf.tensor3d(in112.rgb, [LANDMARK_SIZE, LANDMARK_SIZE, 3], 'int32');
    await assertNetInputIsPng(t112, LANDMARK_SIZE, in112.rgb);

    const netInput112 = await faceapi.toNetInput(t112);
    const lmRaw = await run2d(() => nets.faceLandmark68Net.runNet(netInput112));
    const lmFeatures = await run2d(() => nets.faceLandmark68Net.faceFeatureExtractor.forwardInput(netInput112));
    const landmarks = await nets.faceLandmark68Net.detectLandmarks(t112);
    const exprLogits = await run2d(() => nets.faceExpressionNet.runNet(netInput112));
    const exprFeatures = await run2d(() => nets.faceExpressionNet.faceFeatureExtractor.forwardInput(netInput112));
    const expressions = await nets.faceExpressionNet.predictExpressions(t112);
    t112.dispose();

    // 150x150: recognition net
    const png150 = `${face.id}_${RECOGNITION_SIZE}.png`;
    writePng(path.join(OUT_DIR, png150), RECOGNITION_SIZE, squareCrop(img, x0, y0, S, RECOGNITION_SIZE));
    const in150 = readPngRgb(path.join(OUT_DIR, png150));
    const t150 = tf.tensor3d(in150.rgb, [RECOGNITION_SIZE, RECOGNITION_SIZE, 3], 'int32');
    await assertNetInputIsPng(t150, RECOGNITION_SIZE, in150.rgb);
    const descriptor = await nets.faceRecognitionNet.computeFaceDescriptor(t150);
    t150.dispose();

    if (lmRaw.length !== 136 || exprLogits.length !== 7 || descriptor.length !== 128
        || lmFeatures.length !== 256 || exprFeatures.length !== 256) {
      throw new Error(`${face.id}: unexpected output sizes`);
    }
    const cropPoints = landmarks.positions.map((p) => [f32(p.x), f32(p.y)]);
    // consistency of face-api's own mapping: crop pixels = raw * 112 (square input, no padding)
    cropPoints.forEach(([x, y], i) => {
      if (Math.abs(x - lmRaw[2 * i] * LANDMARK_SIZE) > 1e-3 || Math.abs(y - lmRaw[2 * i + 1] * LANDMARK_SIZE) > 1e-3) {
        throw new Error(`${face.id}: landmark ${i} mapping mismatch`);
      }
    });

    Object.assign(face, {
      crop_112: png112,
      crop_150: png150,
      landmarks68: {
        raw: f32s(lmRaw),
        crop_px: cropPoints,
        photo_px: cropPoints.map(([x, y]) => [r4(x0 + (x * S) / LANDMARK_SIZE), r4(y0 + (y * S) / LANDMARK_SIZE)]),
        features: f32s(lmFeatures),
      },
      expression: {
        probabilities: labels.map((l) => f32(expressions[l])),
        logits: f32s(exprLogits),
        top: expressions.asSortedArray()[0].expression,
        features: f32s(exprFeatures),
      },
      descriptor: f32s(descriptor),
    });
    faces.push(face);
  }
}

const reference = {
  about: 'face-api.js reference outputs for the parity tests; regenerate with tests/faceapi/run.sh, see tests/faceapi/NOTES.md',
  generator: {
    face_api: `@vladmandic/face-api@${faceapi.version}`,
    bundle: 'dist/face-api.esm.js',
    tfjs: tf.version_core,
    backend: tf.getBackend(),
    jpeg_decoder: 'jpeg-js@0.4.4',
    png_codec: 'pngjs@7.0.0',
  },
  detector: { net: 'ssd_mobilenetv1', options: SSD_OPTIONS, max_faces_per_photo: MAX_FACES_PER_PHOTO, order: 'box area, largest first' },
  crops: {
    square: 'side = round(max(box.width, box.height)), centred on the box centre: x = round(cx - side/2), y = round(cy - side/2); photo pixels outside the image are 0',
    resize: 'tf.image.resizeBilinear(alignCorners=false, halfPixelCenters=false), then round, clamp to 0..255, uint8',
    png: 'RGB, 8 bit, no alpha; the nets were fed exactly these pixels as float32 0..255 (HWC, RGB)',
  },
  fields: {
    'landmarks68.raw': 'fc output of FaceLandmark68Net: 136 values x0,y0,x1,y1,... relative to the 112x112 input (no activation)',
    'landmarks68.crop_px': 'face-api detectLandmarks(): raw * 112, in the 112x112 PNG pixel frame',
    'landmarks68.photo_px': 'crop_square.x + crop_px.x * size / 112 (same for y): the photo frame',
    'landmarks68.features': 'FaceFeatureExtractor output (after the 7x7 avg pool), 256 values, landmark net weights',
    'expression.probabilities': `softmax(logits), label order ${labels.join(', ')}`,
    'expression.logits': 'fc output of FaceExpressionNet before softmax',
    'expression.features': 'FaceFeatureExtractor output (256) with the expression net weights',
    descriptor: 'FaceRecognitionNet output, 128 values (not L2-normalised)',
  },
  expression_labels: labels,
  photos,
  faces,
};
fs.writeFileSync(path.join(OUT_DIR, 'reference.json'), `${compactJson(reference, '')}\n`);

// --- summary -------------------------------------------------------------------------------
let total = 0;
for (const f of fs.readdirSync(OUT_DIR)) total += fs.statSync(path.join(OUT_DIR, f)).size;
console.log(`face-api ${faceapi.version}, tfjs ${tf.version_core} (${tf.getBackend()} backend)`);
for (const p of photos) console.log(`${p.photo} ${p.width}x${p.height}: ${p.faces_detected} face(s) detected, kept ${faces.filter((f) => f.photo === p.photo).length}`);
for (const f of faces) {
  const b = f.detection.box;
  const norm = Math.hypot(...f.descriptor);
  console.log(`  ${f.id}: score ${f.detection.score.toFixed(3)} box ${b.x.toFixed(0)},${b.y.toFixed(0)} ${b.width.toFixed(0)}x${b.height.toFixed(0)}`
    + `  expression ${f.expression.top} (${Math.max(...f.expression.probabilities).toFixed(3)})  |descriptor| ${norm.toFixed(3)}`);
}
console.log(`${faces.length} faces; fixtures in ${path.relative(ROOT, OUT_DIR)}: ${(total / 1024).toFixed(0)} KiB`);
