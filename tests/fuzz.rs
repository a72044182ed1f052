//! Fuzzing the loaders (issue 13): a seeded mutational loop over valid seed files of every format
//! the library reads from disk: `.pth` (zip + pickle), `.safetensors`, `.npy`, TF.js manifests
//! with their shard, and PNG / JPEG images. Every mutated case must end in `Ok` or a clean `Err`;
//! a panic, or an error of more than one line (src/error.rs: one line per error), is a failure,
//! printed with the seed and case number that reproduce it.
//!
//! The loop runs in a child process (this test binary again, filtered to this test, marked by
//! `GFPGAN_FUZZ_CHILD`) under `ulimit -v`, so an abort, a stack overflow or a runaway allocation
//! fails the test instead of taking the test runner or the machine down.
//!
//! Knobs (environment): `FUZZ_CASES` (total cases, default 5000, shared round-robin by the five
//! formats), `FUZZ_SEED` (default 13), `FUZZ_FIRST` (first case number; with `FUZZ_CASES=1` it
//! reruns one case), `FUZZ_FORMATS` (comma list, e.g. `pth,npy`), `FUZZ_KEEP` (a folder: failing
//! inputs are copied there). `benches/fuzz.sh` runs it large, in release.

mod common;

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use gfpgan::Rgb;
use gfpgan::candle::{Device, Tensor};
use gfpgan::faceapi::{LandmarkNet, WeightMap};
use gfpgan::weights::{Checkpoint, read_tensors};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const CHILD_ENV: &str = "GFPGAN_FUZZ_CHILD";
/// Virtual memory cap of the child, KiB (`ulimit -v`).
const MEM_CAP_KIB: u64 = 4_000_000;
const DEFAULT_CASES: u64 = 5000;
const DEFAULT_SEED: u64 = 13;
const FORMATS: [&str; 6] = ["pth", "safetensors", "npy", "tfjs", "image", "npz"];

#[test]
fn fuzz_loaders() {
    if std::env::var_os(CHILD_ENV).is_some() {
        run_child();
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    // The child names each case here before running it: after an abort, the last one is the culprit.
    let progress = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {MEM_CAP_KIB}; exec \"$0\" \"$@\""))
        .arg(&exe)
        .args(["fuzz_loaders", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("FUZZ_PROGRESS", progress.path())
        .output()
        .expect("cannot start the fuzzing child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    if !out.status.success() || !stdout.contains("fuzz: done") {
        let tail: String = {
            let lines: Vec<&str> = stderr.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        // Died inside the loop (no summary printed): the last case started is the culprit.
        let last = if stdout.contains("fuzz: seed") {
            "(the loop finished; see the failures above)".to_string()
        } else {
            std::fs::read_to_string(progress.path()).unwrap_or_default()
        };
        panic!(
            "the fuzzing child failed ({}; memory cap {MEM_CAP_KIB} KiB); last case started: {last}\nstderr tail:\n{tail}",
            out.status
        );
    }
}

// ----------------------------------------------------------------------------------------------
// The child: the loop itself.

/// The message of the last panic on this thread, kept by the quiet panic hook.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
        .unwrap_or(default)
}

#[derive(Default)]
struct Tally {
    ok: u64,
    err: u64,
    panics: u64,
    /// Errors that break the one-line rule of src/error.rs.
    multiline: u64,
    messages: HashMap<String, u64>,
}

fn run_child() {
    let cases = env_u64("FUZZ_CASES", DEFAULT_CASES);
    let seed = env_u64("FUZZ_SEED", DEFAULT_SEED);
    let first = env_u64("FUZZ_FIRST", 0);
    let formats: Vec<&str> = match std::env::var("FUZZ_FORMATS") {
        Ok(list) => FORMATS.iter().copied().filter(|f| list.split(',').any(|l| l.trim() == *f)).collect(),
        Err(_) => FORMATS.to_vec(),
    };
    assert!(!formats.is_empty(), "FUZZ_FORMATS names none of {FORMATS:?}");
    let keep = std::env::var_os("FUZZ_KEEP").map(PathBuf::from);
    let progress = std::env::var_os("FUZZ_PROGRESS").map(PathBuf::from);
    // The format of a case follows from its number and the format list: both reproduce it.
    let formats_env = std::env::var("FUZZ_FORMATS").map(|f| format!(" FUZZ_FORMATS={f}")).unwrap_or_default();

    let tmp = tempfile::tempdir().unwrap();
    let seeds = Seeds::new(tmp.path());
    let work = tmp.path().join("case");
    std::fs::create_dir_all(&work).unwrap();
    seeds.check(&work);

    panic::set_hook(Box::new(|info| {
        let loc = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(non-string panic)".into());
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{msg}{loc}"));
    }));

    let mut tallies: HashMap<&str, Tally> = HashMap::new();
    let mut failures = Vec::new();
    let start = std::time::Instant::now();
    for case in first..first + cases {
        let format = formats[(case % formats.len() as u64) as usize];
        let mut rng = StdRng::seed_from_u64(seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // A fresh folder per case: a mutated manifest may name files next to it.
        let dir = work.join(format!("{case}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (path, what) = seeds.mutate(format, &mut rng, &dir);
        if let Some(progress) = &progress {
            std::fs::write(progress, format!("format={format} case={case} ({what})\n  reproduce: FUZZ_SEED={seed} FUZZ_FIRST={case} FUZZ_CASES=1{formats_env}")).ok();
        }
        let result = panic::catch_unwind(AssertUnwindSafe(|| load(format, &path)));
        let tally = tallies.entry(format).or_default();
        match result {
            Ok(Ok(())) => tally.ok += 1,
            Ok(Err(msg)) if msg.trim_end().contains('\n') || msg.ends_with('\n') => {
                // The library's errors are one line each (src/error.rs): a failure too.
                tally.multiline += 1;
                let short: String = msg.chars().take(300).collect();
                failures.push(format!(
                    "MULTI-LINE ERROR format={format} case={case} ({what}): {short:?}\n  reproduce: FUZZ_SEED={seed} FUZZ_FIRST={case} FUZZ_CASES=1{formats_env}"
                ));
            }
            Ok(Err(msg)) => {
                tally.err += 1;
                *tally.messages.entry(normalise(&msg, &dir)).or_default() += 1;
            }
            Err(_) => {
                tally.panics += 1;
                let msg = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
                if let Some(keep) = &keep {
                    let to = keep.join(format!("case{case}-{}", path.file_name().unwrap().to_string_lossy()));
                    std::fs::create_dir_all(keep).ok();
                    std::fs::copy(&path, &to).ok();
                }
                failures.push(format!(
                    "PANIC format={format} case={case} ({what}): {msg}\n  reproduce: FUZZ_SEED={seed} FUZZ_FIRST={case} FUZZ_CASES=1{formats_env}"
                ));
            }
        }
        std::fs::remove_dir_all(&dir).ok();
    }
    let secs = start.elapsed().as_secs_f64();

    println!("fuzz: seed {seed}, cases {first}..{}, formats {formats:?}, {secs:.1} s", first + cases);
    for format in &formats {
        let Some(t) = tallies.get(format) else { continue };
        println!(
            "fuzz: {format:<12} cases {:>6}  ok {:>6}  err {:>6}  panics {}  multi-line errors {}  distinct errors {}",
            t.ok + t.err + t.panics + t.multiline,
            t.ok,
            t.err,
            t.panics,
            t.multiline,
            t.messages.len()
        );
        let mut top: Vec<(&String, &u64)> = t.messages.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (msg, n) in top.into_iter().take(10) {
            let short: String = msg.chars().take(150).collect();
            println!("fuzz:     {n:>6}  {short}");
        }
    }
    for f in failures.iter().take(20) {
        println!("{f}");
    }
    let panics: u64 = tallies.values().map(|t| t.panics).sum();
    let multiline: u64 = tallies.values().map(|t| t.multiline).sum();
    let _ = panic::take_hook(); // the default hook again, for the verdict below
    assert_eq!(
        panics + multiline,
        0,
        "{panics} cases panicked, {multiline} gave multi-line errors (the first are listed above)"
    );
    println!("fuzz: done, {} cases, no panics", cases);
}

/// One loader run: `Ok`, or the error's one line.
fn load(format: &str, path: &Path) -> Result<(), String> {
    let s = |e: gfpgan::Error| e.to_string();
    match format {
        "pth" | "safetensors" => {
            read_tensors(path).map_err(s)?;
            Checkpoint::load(path).map(|_| ()).map_err(s)
        }
        "npy" => gfpgan::npy::read(path).map(|_| ()).map_err(s),
        "tfjs" => {
            let w = WeightMap::load(path).map_err(s)?;
            // The landmark net's own checks (names, shapes) on top, when it is the landmark model.
            if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("face_landmark_68_model")) {
                LandmarkNet::from_weights(&w).map_err(s)?;
            }
            Ok(())
        }
        "image" => Rgb::open(path).map(|_| ()).map_err(s),
        "npz" => gfpgan::eval::NiqeModel::load(path).map(|_| ()).map_err(s),
        _ => unreachable!(),
    }
}

/// Groups error lines: the case folder and digits replaced, so `offset 123` and `offset 456`
/// count as one message.
fn normalise(msg: &str, dir: &Path) -> String {
    let msg = msg.replace(&*dir.to_string_lossy(), "<dir>");
    let mut out = String::with_capacity(msg.len());
    let mut in_digits = false;
    for c in msg.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out
}

// ----------------------------------------------------------------------------------------------
// Seeds.

/// A zip archive read into memory, entry by entry (names and stored bytes).
type ZipEntries = Vec<(String, Vec<u8>)>;

struct Seeds {
    /// `.pth` files as bytes, and as entries to rebuild with mutated contents.
    pth: Vec<(Vec<u8>, ZipEntries)>,
    safetensors: Vec<Vec<u8>>,
    npy: Vec<Vec<u8>>,
    /// Manifests (file name, JSON text) with their shards (file name, bytes).
    tfjs: Vec<(String, String, Vec<(String, Vec<u8>)>)>,
    /// (extension, bytes).
    images: Vec<(&'static str, Vec<u8>)>,
    /// NIQE models (float64 arrays in a zip), as their entries.
    npz: Vec<ZipEntries>,
}

impl Seeds {
    fn new(tmp: &Path) -> Self {
        let read = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let pth = ["a64.pth"]
            .iter()
            .map(|n| {
                let bytes = read(common::fixture(n));
                let entries = unzip(&bytes);
                (bytes, entries)
            })
            .collect();
        let safetensors = ["a64_io.safetensors", "c256.safetensors"].iter().map(|n| read(common::fixture(n))).collect();

        let mut npy = Vec::new();
        for (i, shape) in [vec![2usize, 3, 4], vec![5], vec![1, 1, 2, 2]].into_iter().enumerate() {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n).map(|v| v as f32 * 0.5 - 1.0).collect();
            let t = Tensor::from_vec(values, shape, &Device::Cpu).unwrap();
            let p = tmp.join(format!("seed{i}.npy"));
            gfpgan::npy::write(&p, &t).unwrap();
            npy.push(read(p));
        }

        let mut tfjs = vec![synthetic_manifest()];
        // The real landmark model, when weights/fetch.sh has been run (git-ignored).
        let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("weights/face-api/model");
        let manifest = model.join("face_landmark_68_model-weights_manifest.json");
        if manifest.exists() {
            let text = std::fs::read_to_string(&manifest).unwrap();
            let shard = read(model.join("face_landmark_68_model.bin"));
            tfjs.push((
                "face_landmark_68_model-weights_manifest.json".into(),
                text,
                vec![("face_landmark_68_model.bin".into(), shard)],
            ));
        } else {
            eprintln!("fuzz: weights/face-api/model absent, TF.js cases use the synthetic manifest only");
        }

        let mut images = Vec::new();
        for (ext, w, h) in [("png", 24u32, 16u32), ("jpg", 24, 16), ("png", 7, 5), ("jpg", 9, 11)] {
            let img = image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([(x * 10) as u8, (y * 15) as u8, ((x + y) * 7) as u8])
            });
            let p = tmp.join(format!("seed{w}x{h}.{ext}"));
            Rgb::from_rgb8(&img).save(&p).unwrap();
            images.push((ext, read(p)));
        }
        // NIQE's model: a synthetic one, and BasicSR's when weights/fetch-niqe.sh has run.
        let mut npz = vec![vec![
            ("mu_pris_param.npy".to_string(), npy_f64(&[1, 36], &vec![0.5; 36])),
            (
                "cov_pris_param.npy".to_string(),
                npy_f64(&[36, 36], &(0..36 * 36).map(|i| f64::from(u8::from(i % 37 == 0))).collect::<Vec<_>>()),
            ),
            ("gaussian_window.npy".to_string(), npy_f64(&[7, 7], &vec![1.0 / 49.0; 49])),
        ]];
        let niqe = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("weights/niqe_pris_params.npz");
        if niqe.exists() {
            npz.push(unzip(&read(niqe)));
        }
        Seeds { pth, safetensors, npy, tfjs, images, npz }
    }

    /// The seeds unmutated must load (the `.pth` also rebuilt by [`zip`], as the pickle cases
    /// are): otherwise the mutated cases would stop at the first check and prove little.
    fn check(&self, work: &Path) {
        let dir = work.join("seeds");
        std::fs::create_dir_all(&dir).unwrap();
        let must_load = |format: &str, name: &str, bytes: &[u8]| {
            let p = dir.join(name);
            std::fs::write(&p, bytes).unwrap();
            if let Err(e) = load(format, &p) {
                panic!("seed {name} does not load: {e}");
            }
        };
        for (raw, entries) in &self.pth {
            must_load("pth", "seed.pth", raw);
            must_load("pth", "rebuilt.pth", &zip(entries));
        }
        // Only c256 is a whole checkpoint; a64_io holds input/output arrays.
        read_tensors(&{
            let p = dir.join("io.safetensors");
            std::fs::write(&p, &self.safetensors[0]).unwrap();
            p
        })
        .expect("a64_io.safetensors loads");
        must_load("safetensors", "seed.safetensors", &self.safetensors[1]);
        for (i, bytes) in self.npy.iter().enumerate() {
            must_load("npy", &format!("seed{i}.npy"), bytes);
        }
        for (name, text, shards) in &self.tfjs {
            for (shard, bytes) in shards {
                std::fs::write(dir.join(shard), bytes).unwrap();
            }
            must_load("tfjs", name, text.as_bytes());
        }
        for (i, (ext, bytes)) in self.images.iter().enumerate() {
            must_load("image", &format!("seed{i}.{ext}"), bytes);
        }
        for (i, entries) in self.npz.iter().enumerate() {
            must_load("npz", &format!("seed{i}.npz"), &zip(entries));
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Writes one mutated case into `dir`; returns the file to load and what was done.
    fn mutate(&self, format: &str, rng: &mut StdRng, dir: &Path) -> (PathBuf, String) {
        match format {
            "pth" => self.mutate_pth(rng, dir),
            "safetensors" => self.mutate_safetensors(rng, dir),
            "npy" => {
                let i = rng.random_range(0..self.npy.len());
                let mut bytes = self.npy[i].clone();
                let what = if rng.random_bool(0.3) {
                    npy_header_edit(rng, &mut bytes)
                } else {
                    let other = &self.npy[rng.random_range(0..self.npy.len())];
                    byte_mutations(rng, &mut bytes, 0..128, other)
                };
                let p = dir.join("case.npy");
                std::fs::write(&p, bytes).unwrap();
                (p, format!("npy seed {i}: {what}"))
            }
            "tfjs" => self.mutate_tfjs(rng, dir),
            "npz" => {
                let i = rng.random_range(0..self.npz.len());
                let mut entries = self.npz[i].clone();
                let k = rng.random_range(0..entries.len());
                let roll = rng.random_range(0..100);
                let (bytes, what) = if roll < 40 {
                    let what = npy_header_edit(rng, &mut entries[k].1);
                    (zip(&entries), format!("{}: {what}", entries[k].0))
                } else if roll < 70 {
                    let other = entries[rng.random_range(0..entries.len())].1.clone();
                    let what = byte_mutations(rng, &mut entries[k].1, 0..128, &other);
                    (zip(&entries), format!("{}: {what}", entries[k].0))
                } else {
                    let mut bytes = zip(&entries);
                    let what = byte_mutations(rng, &mut bytes, 0..64, &[]);
                    (bytes, format!("archive: {what}"))
                };
                let p = dir.join("case.npz");
                std::fs::write(&p, bytes).unwrap();
                (p, format!("npz seed {i}: {what}"))
            }
            "image" => {
                let i = rng.random_range(0..self.images.len());
                let (ext, seed) = &self.images[i];
                let mut bytes = seed.clone();
                let other = &self.images[rng.random_range(0..self.images.len())].1;
                let what = byte_mutations(rng, &mut bytes, 0..64, other);
                let p = dir.join(format!("case.{ext}"));
                std::fs::write(&p, bytes).unwrap();
                (p, format!("image seed {i} ({ext}): {what}"))
            }
            _ => unreachable!(),
        }
    }

    fn mutate_pth(&self, rng: &mut StdRng, dir: &Path) -> (PathBuf, String) {
        let (raw, entries) = &self.pth[rng.random_range(0..self.pth.len())];
        let p = dir.join("case.pth");
        let roll = rng.random_range(0..100);
        let (bytes, what) = if roll < 55 {
            // Inside data.pkl, then a valid zip around it: the pickle reader gets the bytes.
            let mut entries = entries.clone();
            let pkl = entries.iter_mut().find(|(n, _)| n.ends_with("data.pkl")).unwrap();
            let len = pkl.1.len();
            let what = if rng.random_bool(0.4) {
                pickle_int_edit(rng, &mut pkl.1)
            } else {
                byte_mutations(rng, &mut pkl.1, 0..len, &[])
            };
            (zip(&entries), format!("data.pkl: {what}"))
        } else if roll < 70 {
            // Other entries: storages (short, long, changed), byteorder, version; dropped or renamed.
            let mut entries = entries.clone();
            let i = rng.random_range(0..entries.len());
            let what = match rng.random_range(0..4) {
                0 => {
                    let name = entries.remove(i).0;
                    format!("entry {name} removed")
                }
                1 => {
                    let e = entries[i].clone();
                    entries[i].0 = format!("{}x", e.0);
                    format!("entry {} renamed", e.0)
                }
                2 => {
                    let (from, to) = (rng.random_range(0..entries.len()), i);
                    let data = entries[from].1.clone();
                    entries[to].1 = data;
                    format!("entry {} given the bytes of {}", entries[to].0, entries[from].0)
                }
                _ => {
                    let len = entries[i].1.len();
                    let what = byte_mutations(rng, &mut entries[i].1, 0..len, &[]);
                    format!("entry {}: {what}", entries[i].0)
                }
            };
            (zip(&entries), what)
        } else {
            // The zip bytes themselves: local headers at the front, the central directory at the end.
            let mut bytes = raw.clone();
            let hot = if rng.random_bool(0.5) { 0..256 } else { bytes.len().saturating_sub(16 << 10)..bytes.len() };
            let other = &self.safetensors[0];
            let what = byte_mutations(rng, &mut bytes, hot, other);
            (bytes, format!("zip bytes: {what}"))
        };
        std::fs::write(&p, bytes).unwrap();
        (p, what)
    }

    fn mutate_safetensors(&self, rng: &mut StdRng, dir: &Path) -> (PathBuf, String) {
        let i = rng.random_range(0..self.safetensors.len());
        let seed = &self.safetensors[i];
        let header_len = u64::from_le_bytes(seed[..8].try_into().unwrap()) as usize;
        let (bytes, what) = if rng.random_bool(0.4) {
            // The header as JSON: structure-aware edits, then length + header + the same data.
            let mut header: Value = serde_json::from_slice(&seed[8..8 + header_len]).unwrap();
            let what = json_mutations(rng, &mut header);
            let text = serde_json::to_vec(&header).unwrap();
            let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
            bytes.extend(&text);
            bytes.extend(&seed[8 + header_len..]);
            (bytes, format!("header json: {what}"))
        } else {
            let mut bytes = seed.clone();
            let other = &self.safetensors[rng.random_range(0..self.safetensors.len())];
            let what = byte_mutations(rng, &mut bytes, 0..8 + header_len, other);
            (bytes, format!("bytes: {what}"))
        };
        let p = dir.join("case.safetensors");
        std::fs::write(&p, bytes).unwrap();
        (p, format!("safetensors seed {i}: {what}"))
    }

    fn mutate_tfjs(&self, rng: &mut StdRng, dir: &Path) -> (PathBuf, String) {
        let i = rng.random_range(0..self.tfjs.len());
        let (name, text, shards) = &self.tfjs[i];
        let mut text = text.clone();
        let mut shards = shards.clone();
        let roll = rng.random_range(0..100);
        let what = if roll < 45 {
            let mut v: Value = serde_json::from_str(&text).unwrap();
            let what = if rng.random_bool(0.5) { manifest_edit(rng, &mut v) } else { json_mutations(rng, &mut v) };
            text = serde_json::to_string(&v).unwrap();
            format!("manifest json: {what}")
        } else if roll < 60 {
            format!("manifest text: {}", number_text_edit(rng, &mut text))
        } else if roll < 75 {
            let mut bytes = text.into_bytes();
            let len = bytes.len();
            let what = byte_mutations(rng, &mut bytes, 0..len, &[]);
            text = String::from_utf8_lossy(&bytes).into_owned();
            format!("manifest bytes: {what}")
        } else {
            let s = rng.random_range(0..shards.len());
            if rng.random_bool(0.15) {
                let gone = shards.remove(s).0;
                format!("shard {gone} missing")
            } else {
                let len = shards[s].1.len();
                format!("shard bytes: {}", byte_mutations(rng, &mut shards[s].1, 0..len, &[]))
            }
        };
        for (shard, bytes) in &shards {
            std::fs::write(dir.join(shard), bytes).unwrap();
        }
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        (p, format!("tfjs seed {i}: {what}"))
    }
}

/// A small manifest of its own: float32, uint8 and uint16 tensors in two groups, so TF.js cases
/// run without the downloaded face-api.js weights.
fn synthetic_manifest() -> (String, String, Vec<(String, Vec<u8>)>) {
    let mut a = Vec::new();
    for v in 0..6 {
        a.extend((v as f32 * 0.25).to_le_bytes());
    }
    a.extend((0u8..8).collect::<Vec<_>>()); // uint8, shape [2, 4]
    let mut b = Vec::new();
    for v in 0u16..3 {
        b.extend((v * 1000).to_le_bytes()); // uint16, shape [3]
    }
    let text = r#"[
  {"paths": ["a.bin"], "weights": [
    {"name": "x/w", "shape": [2, 3], "dtype": "float32"},
    {"name": "x/q", "shape": [2, 4], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.0039215686, "min": -0.5}}
  ]},
  {"paths": ["b.bin"], "weights": [
    {"name": "y/q16", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint16", "scale": 1.5e-5, "min": -1}}
  ]}
]"#;
    ("m-weights_manifest.json".into(), text.into(), vec![("a.bin".into(), a), ("b.bin".into(), b)])
}

fn unzip(bytes: &[u8]) -> ZipEntries {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut data).unwrap();
            (f.name().unwrap().to_string(), data)
        })
        .collect()
}

/// A float64 `.npy` (version 1, C order) of `values` shaped `shape`, as numpy writes it.
fn npy_f64(shape: &[usize], values: &[f64]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut dict = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({}), }}", dims.join(", "));
    let unpadded = 10 + dict.len() + 1;
    dict.extend(std::iter::repeat_n(' ', unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((dict.len() as u16).to_le_bytes());
    bytes.extend(dict.as_bytes());
    values.iter().for_each(|v| bytes.extend(v.to_le_bytes()));
    bytes
}

/// A stored (uncompressed) zip of `entries`, as torch.save writes. Duplicate names are skipped
/// (the writer refuses them).
fn zip(entries: &ZipEntries) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        if w.start_file(name.as_str(), opts).is_ok() {
            w.write_all(data).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

// ----------------------------------------------------------------------------------------------
// Mutations.

const BYTES: [u8; 6] = [0, 0xff, 0x7f, 0x80, 1, 0xfe];
const U32S: [u32; 7] = [0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0xffff_fffe, 0x0001_0000];
const U64S: [u64; 8] = [0, 1, u64::MAX, i64::MAX as u64, 1 << 63, 1 << 32, 1 << 40, u64::MAX - 7];

/// A position, half the time inside `hot` (the header of the format), else anywhere.
fn pos(rng: &mut StdRng, len: usize, hot: &std::ops::Range<usize>) -> usize {
    if len == 0 {
        return 0;
    }
    let hot = hot.start.min(len - 1)..hot.end.min(len).max(hot.start.min(len - 1) + 1);
    if rng.random_bool(0.5) { rng.random_range(hot) } else { rng.random_range(0..len) }
}

/// One to four stacked byte-level mutations; `other` is a second seed for splicing (or empty).
fn byte_mutations(rng: &mut StdRng, bytes: &mut Vec<u8>, hot: std::ops::Range<usize>, other: &[u8]) -> String {
    let n = [1, 1, 1, 2, 2, 3, 4][rng.random_range(0..7)];
    (0..n).map(|_| byte_mutation(rng, bytes, &hot, other)).collect::<Vec<_>>().join(", ")
}

fn byte_mutation(rng: &mut StdRng, bytes: &mut Vec<u8>, hot: &std::ops::Range<usize>, other: &[u8]) -> String {
    let len = bytes.len();
    if len == 0 {
        bytes.push(rng.random());
        return "byte added to empty".into();
    }
    let at = pos(rng, len, hot);
    match rng.random_range(0..11) {
        0 => {
            let bit = rng.random_range(0..8);
            bytes[at] ^= 1 << bit;
            format!("bit {bit} flipped at {at}")
        }
        1 => {
            let v = BYTES[rng.random_range(0..BYTES.len())];
            bytes[at] = v;
            format!("byte {v:#x} at {at}")
        }
        2 => {
            let v = U32S[rng.random_range(0..U32S.len())];
            overwrite(bytes, at, &v.to_le_bytes());
            format!("u32 {v:#x} at {at}")
        }
        3 => {
            let v = U64S[rng.random_range(0..U64S.len())];
            overwrite(bytes, at, &v.to_le_bytes());
            format!("u64 {v:#x} at {at}")
        }
        4 => {
            let n = rng.random_range(1..=64);
            let fill: Vec<u8> = if rng.random_bool(0.5) {
                (0..n).map(|_| rng.random()).collect()
            } else {
                vec![BYTES[rng.random_range(0..6)]; n]
            };
            bytes.splice(at..at, fill);
            format!("{n} bytes inserted at {at}")
        }
        5 => {
            let end = (at + rng.random_range(1..=256)).min(len);
            bytes.drain(at..end);
            format!("bytes {at}..{end} deleted")
        }
        6 => {
            let end = (at + rng.random_range(1..=256)).min(len);
            let copy = bytes[at..end].to_vec();
            let to = rng.random_range(0..=len);
            bytes.splice(to..to, copy);
            format!("bytes {at}..{end} duplicated to {to}")
        }
        7 => {
            bytes.truncate(at);
            format!("truncated to {at}")
        }
        8 if !other.is_empty() => {
            let from = rng.random_range(0..other.len());
            bytes.truncate(at);
            bytes.extend_from_slice(&other[from..]);
            format!("spliced: ..{at} + other[{from}..]")
        }
        9 => {
            let v: u8 = rng.random();
            bytes[at] = v;
            format!("byte {v:#x} at {at}")
        }
        _ => {
            // Swap two ranges' bytes (moves a header field elsewhere).
            let b = pos(rng, len, hot);
            bytes.swap(at, b);
            format!("bytes {at} and {b} swapped")
        }
    }
}

fn overwrite(bytes: &mut [u8], at: usize, v: &[u8]) {
    for (i, b) in v.iter().enumerate() {
        if let Some(slot) = bytes.get_mut(at + i) {
            *slot = *b;
        }
    }
}

/// Pickle-aware: an integer operand (BININT `J`, BININT1 `K`, BININT2 `M`, LONG1 `0x8a`) set to
/// an extreme: sizes, strides, offsets and storage lengths of the tensor records.
fn pickle_int_edit(rng: &mut StdRng, pkl: &mut [u8]) -> String {
    let ops: Vec<usize> =
        pkl.iter().enumerate().filter(|(_, b)| matches!(b, b'J' | b'K' | b'M' | 0x8a)).map(|(i, _)| i).collect();
    if ops.is_empty() {
        return "no int opcode".into();
    }
    let at = ops[rng.random_range(0..ops.len())];
    match pkl[at] {
        b'J' => {
            let v = U32S[rng.random_range(0..U32S.len())];
            overwrite(pkl, at + 1, &v.to_le_bytes());
            format!("BININT at {at} = {v:#x}")
        }
        b'K' => {
            let v = BYTES[rng.random_range(0..BYTES.len())];
            overwrite(pkl, at + 1, &[v]);
            format!("BININT1 at {at} = {v:#x}")
        }
        b'M' => {
            let v = [0u16, 1, 0xffff, 0x8000][rng.random_range(0..4)];
            overwrite(pkl, at + 1, &v.to_le_bytes());
            format!("BININT2 at {at} = {v:#x}")
        }
        _ => {
            let n = [0u8, 1, 8, 9, 0xff][rng.random_range(0..5)];
            overwrite(pkl, at + 1, &[n]);
            format!("LONG1 length at {at} = {n}")
        }
    }
}

/// Text edits of the `.npy` header dict.
fn npy_header_edit(rng: &mut StdRng, bytes: &mut Vec<u8>) -> String {
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let mut dict = String::from_utf8_lossy(&bytes[10..10 + header_len]).into_owned();
    let open = dict.find("'shape': (").unwrap() + "'shape': (".len();
    let close = open + dict[open..].find(')').unwrap();
    let edits: [(&str, &str); 12] = [
        ("shape", "18446744073709551615, 18446744073709551615"),
        ("shape", "4294967296, 4294967296, 4294967296"),
        ("shape", "-1,"),
        ("shape", ""),
        ("shape", "0,"),
        ("shape", "1.5, 2"),
        ("shape", "9999999999999999999999,"),
        (
            "shape",
            "2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33",
        ),
        ("descr", "'descr': '>f4'"),
        ("descr", "'descr': '<f8'"),
        ("fortran", "'fortran_order': True"),
        ("quote", "\""),
    ];
    let (kind, new) = edits[rng.random_range(0..edits.len())];
    match kind {
        "shape" => dict.replace_range(open..close, new),
        "descr" => dict = dict.replace("'descr': '<f4'", new),
        "fortran" => dict = dict.replace("'fortran_order': False", new),
        _ => dict = dict.replace('\'', new),
    }
    // Keep the declared length right half of the time (the parser then sees the new dict).
    let mut out = bytes[..8].to_vec();
    let len = if rng.random_bool(0.5) { dict.len() as u16 } else { header_len as u16 };
    out.extend(len.to_le_bytes());
    out.extend(dict.as_bytes());
    out.extend(&bytes[10 + header_len..]);
    *bytes = out;
    format!("header {kind} -> {new:.40}")
}

/// Big, negative, fractional and non-numeric stand-ins for a number.
fn odd_number(rng: &mut StdRng) -> Value {
    let choices = [
        serde_json::json!(u64::MAX),
        serde_json::json!(4294967296u64),
        serde_json::json!(4294967295u64),
        serde_json::json!(1u64 << 62),
        serde_json::json!(-1),
        serde_json::json!(i64::MIN),
        serde_json::json!(0),
        serde_json::json!(0.5),
        serde_json::json!(-2.5),
        serde_json::json!(1e300),
        serde_json::json!(-1e300),
        serde_json::json!(f64::MIN_POSITIVE),
        serde_json::json!("7"),
        Value::Null,
        serde_json::json!([1, 2]),
    ];
    choices[rng.random_range(0..choices.len())].clone()
}

fn odd_string(rng: &mut StdRng) -> Value {
    let choices = [
        "../../../../etc/passwd".to_string(),
        "../m-weights_manifest.json".into(),
        "/dev/zero".into(),
        "/".into(),
        ".".into(),
        "".into(),
        "a.bin\0".into(),
        "x".repeat(5000),
        "float16".into(),
        "uint16".into(),
        "int32".into(),
        "uint8".into(),
        "F64".into(),
        "BF16".into(),
        "I64".into(),
        "U8".into(),
        "\u{1F600}".into(),
        "x/w\nsecond line".into(),
        "a.bin\r\n".into(),
    ];
    Value::String(choices[rng.random_range(0..choices.len())].clone())
}

/// One to three generic JSON edits at random nodes.
fn json_mutations(rng: &mut StdRng, v: &mut Value) -> String {
    let n = rng.random_range(1..=3);
    (0..n).map(|_| json_mutation(rng, v)).collect::<Vec<_>>().join(", ")
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

fn nth_node(v: &mut Value, n: &mut usize) -> Option<*mut Value> {
    if *n == 0 {
        return Some(v as *mut Value);
    }
    *n -= 1;
    match v {
        Value::Array(a) => a.iter_mut().find_map(|c| nth_node(c, n)),
        Value::Object(o) => o.values_mut().find_map(|c| nth_node(c, n)),
        _ => None,
    }
}

fn json_mutation(rng: &mut StdRng, root: &mut Value) -> String {
    let mut n = rng.random_range(0..count_nodes(root));
    let node = nth_node(root, &mut n).unwrap();
    // SAFETY: the pointer is to a node of `root`, which is borrowed mutably here and not
    // otherwise touched until the edit is done.
    let node = unsafe { &mut *node };
    match node {
        Value::Number(_) | Value::Bool(_) | Value::Null => {
            let new = odd_number(rng);
            let what = format!("{node} -> {new}");
            *node = new;
            what
        }
        Value::String(s) => {
            let old = s.clone();
            let new = if rng.random_bool(0.8) { odd_string(rng) } else { odd_number(rng) };
            let what = format!("{old:.30} -> {new:.30}");
            *node = new;
            what
        }
        Value::Array(a) => match rng.random_range(0..5) {
            0 => {
                a.clear();
                "array emptied".into()
            }
            1 if !a.is_empty() => {
                let i = rng.random_range(0..a.len());
                a.remove(i);
                format!("array item {i} removed")
            }
            2 if !a.is_empty() => {
                let i = rng.random_range(0..a.len());
                let item = a[i].clone();
                a.insert(i, item);
                format!("array item {i} duplicated")
            }
            3 => {
                let new = odd_number(rng);
                let what = format!("{new} pushed");
                a.push(new);
                what
            }
            _ => {
                let item = std::mem::take(node);
                *node = Value::Array(vec![item]);
                "array nested".into()
            }
        },
        Value::Object(o) => {
            let keys: Vec<String> = o.keys().cloned().collect();
            if keys.is_empty() || rng.random_bool(0.3) {
                o.insert("extra".into(), odd_number(rng));
                "key added".into()
            } else {
                let k = &keys[rng.random_range(0..keys.len())];
                if rng.random_bool(0.6) {
                    o.remove(k);
                    format!("key {k} removed")
                } else {
                    o.insert(k.clone(), Value::Object(Default::default()));
                    format!("key {k} -> {{}}")
                }
            }
        }
    }
}

/// TF.js-manifest-aware edits: shapes with huge / zero / negative / fractional dims, shard paths
/// escaping the folder or repeated, quantization dtypes and parameters, weights reordered.
fn manifest_edit(rng: &mut StdRng, v: &mut Value) -> String {
    let Some(groups) = v.as_array_mut() else { return "not an array".into() };
    if groups.is_empty() {
        return "no groups".into();
    }
    let g = rng.random_range(0..groups.len());
    let group = &mut groups[g];
    match rng.random_range(0..6) {
        0 => {
            let paths = [
                serde_json::json!(["../a.bin"]),
                serde_json::json!(["/etc/passwd"]),
                serde_json::json!([]),
                serde_json::json!(["."]),
                serde_json::json!(["a.bin", "a.bin", "a.bin"]),
                serde_json::json!(["sub/../a.bin"]),
                serde_json::json!(["nonexistent.bin"]),
            ];
            let p = paths[rng.random_range(0..paths.len())].clone();
            let what = format!("group {g} paths -> {p}");
            group["paths"] = p;
            what
        }
        k => {
            let Some(weights) = group["weights"].as_array_mut() else { return "no weights".into() };
            if weights.is_empty() {
                return "no weights".into();
            }
            let w = rng.random_range(0..weights.len());
            match k {
                1 | 2 => {
                    let shapes = [
                        serde_json::json!([65536, 65536, 65536]),
                        serde_json::json!([4294967296u64, 4294967296u64]),
                        serde_json::json!([u64::MAX, 2]),
                        serde_json::json!([0]),
                        serde_json::json!([-1, 3]),
                        serde_json::json!([1.5]),
                        serde_json::json!([]),
                        serde_json::json!([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
                        serde_json::json!([1e300]),
                    ];
                    let s = shapes[rng.random_range(0..shapes.len())].clone();
                    let what = format!("weight {w} shape -> {s}");
                    weights[w]["shape"] = s;
                    what
                }
                3 => {
                    let q = [
                        serde_json::json!({"dtype": "uint16", "scale": 1, "min": 0}),
                        serde_json::json!({"dtype": "float16"}),
                        serde_json::json!({"dtype": "uint8"}),
                        serde_json::json!({"dtype": "uint8", "scale": 1e308, "min": -1e308}),
                        serde_json::json!({"dtype": "int8", "scale": 1, "min": 0}),
                        serde_json::json!(null),
                    ];
                    let q = q[rng.random_range(0..q.len())].clone();
                    let what = format!("weight {w} quantization -> {q}");
                    weights[w]["quantization"] = q;
                    what
                }
                4 => {
                    let d = ["int32", "float16", "bool", "string", "uint8", ""][rng.random_range(0..6)];
                    weights[w]["dtype"] = Value::String(d.into());
                    format!("weight {w} dtype -> {d}")
                }
                _ => {
                    let other = rng.random_range(0..weights.len());
                    if rng.random_bool(0.5) {
                        weights.swap(w, other);
                        format!("weights {w} and {other} swapped")
                    } else {
                        let name = weights[other]["name"].clone();
                        weights[w]["name"] = name;
                        format!("weight {w} renamed as weight {other}")
                    }
                }
            }
        }
    }
}

/// Textual edits of one number in the manifest (the loader parses numbers from the text).
fn number_text_edit(rng: &mut StdRng, text: &mut String) -> String {
    let starts: Vec<usize> = text
        .char_indices()
        .filter(|&(i, c)| {
            (c.is_ascii_digit() || c == '-')
                && !text[..i].ends_with(|p: char| p.is_ascii_alphanumeric() || p == '.' || p == '_' || p == '/')
        })
        .map(|(i, _)| i)
        .collect();
    if starts.is_empty() {
        return "no numbers".into();
    }
    let at = starts[rng.random_range(0..starts.len())];
    let end = at
        + text[at..]
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')))
            .unwrap_or(text.len() - at);
    let new = [
        "1e999",
        "-1e999",
        "-0",
        "NaN",
        "Infinity",
        "0x10",
        "1.",
        ".5",
        "--1",
        "1e",
        "99999999999999999999999999",
        "-",
        "1e-400",
        "4294967297",
        "18446744073709551616",
    ][rng.random_range(0..15)];
    let what = format!("{} -> {new}", &text[at..end]);
    text.replace_range(at..end, new);
    what
}
