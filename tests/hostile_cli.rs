//! The command line on hostile input (issue 13): files that lie about their size, degenerate
//! images, nonsense numbers, and outputs that would destroy data. Every case must end with
//! exit status 0 or a one-line error and status 1: never an abort, a panic or a hang.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{checkpoint, io};
use gfpgan::Rgb;

fn run_in(dir: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gfpgan"));
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    // `output` waits however long it takes: a hang shows as a test that never ends.
    cmd.args(args).output().unwrap()
}

fn gfpgan(args: &[&str]) -> Output {
    run_in(None, args)
}

/// Asserts exit status 1 and a single stderr line containing `needle`.
fn fails_with_one_line(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "`{needle}` not in: {stderr}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A `w x h` image with a little texture, saved at `path` (PNG or JPEG by extension).
fn image(path: &Path, w: usize, h: usize) {
    let mut img = Rgb::new(w, h);
    img.data.iter_mut().enumerate().for_each(|(i, v)| *v = ((i * 37) % 256) as f32);
    img.save(path).unwrap();
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

/// A PNG whose header declares `w x h` pixels, followed by an empty image stream: the bytes a
/// hostile file needs to make a careless decoder allocate `w * h * 3`.
fn lying_png(w: u32, h: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        let body = [kind, data].concat();
        c.extend(&body);
        c.extend(crc32(&body).to_be_bytes());
        c
    };
    let ihdr = [&w.to_be_bytes()[..], &h.to_be_bytes(), &[8, 2, 0, 0, 0]].concat();
    let empty_zlib = [0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01];
    [&b"\x89PNG\r\n\x1a\n"[..], &chunk(b"IHDR", &ihdr), &chunk(b"IDAT", &empty_zlib), &chunk(b"IEND", b"")].concat()
}

#[test]
fn npy_header_declaring_a_huge_shape_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    // 12 PB of float32 declared, 16 bytes present.
    let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000, 3), }";
    let dict = format!("{dict:<117}\n");
    let huge = dir.path().join("huge.npy");
    let bytes = [&b"\x93NUMPY\x01\x00"[..], &(dict.len() as u16).to_le_bytes(), dict.as_bytes(), &[0; 16]].concat();
    std::fs::write(&huge, bytes).unwrap();
    let (weights, out) = (checkpoint("a64"), dir.path().join("o.npy"));
    let forward = gfpgan(&["forward", "--weights", s(&weights), "--input", s(&huge), "--output", s(&out)]);
    fails_with_one_line(&forward, s(&huge));
    let bench = gfpgan(&["bench", "--weights", s(&weights), "--input", s(&huge), "--iters", "1"]);
    fails_with_one_line(&bench, "needs 12000000000000000 bytes");
    assert!(!out.exists());
}

#[test]
fn images_declaring_a_huge_or_empty_size_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (w, h) in [(100_000, 100_000), (20_000, 10), (0, 5)] {
        let png = dir.path().join(format!("lying{w}x{h}.png"));
        std::fs::write(&png, lying_png(w, h)).unwrap();
        fails_with_one_line(&gfpgan(&["degrade", s(&png), s(&dir.path().join("o.png"))]), s(&png));
    }
}

#[test]
fn degrade_returns_on_one_pixel_wide_images() {
    let dir = tempfile::tempdir().unwrap();
    for (w, h) in [(1, 7), (7, 1), (1, 1)] {
        let (src, dst) = (dir.path().join(format!("{w}x{h}.png")), dir.path().join(format!("{w}x{h}-d.png")));
        image(&src, w, h);
        let out = gfpgan(&["degrade", s(&src), s(&dst)]);
        assert!(out.status.success(), "{w}x{h}: {}", String::from_utf8_lossy(&out.stderr));
        let got = Rgb::open(&dst).unwrap();
        assert_eq!((got.w, got.h), (w, h));
    }
}

#[test]
fn degenerate_images_end_in_ok_or_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = [(1, 1), (1, 9), (9, 1)]
        .iter()
        .map(|&(w, h)| {
            let p = dir.path().join(format!("{w}x{h}.png"));
            image(&p, w, h);
            p
        })
        .collect();
    let files: Vec<&str> = files.iter().map(|p| s(p)).collect();
    let (weights, models, out) = (checkpoint("a64"), common::face_models(), dir.path().join("out"));
    let common = ["--face-models", s(&models)];
    let analyze = gfpgan(&[&["analyze"], &files[..], &common].concat());
    assert!(analyze.status.success(), "{}", String::from_utf8_lossy(&analyze.stderr));
    let restore = gfpgan(&[&["restore", "-o", s(&out), "--weights", s(&weights)], &files[..], &common].concat());
    assert!(restore.status.success(), "{}", String::from_utf8_lossy(&restore.stderr));
    // Aligned faces must be square: 1x1 is restored, the others are refused one by one.
    let aligned = gfpgan(&[&["restore", "--aligned", "-o", s(&out), "--weights", s(&weights)], &files[..]].concat());
    assert_eq!(aligned.status.code(), Some(1), "{}", String::from_utf8_lossy(&aligned.stderr));
    let clip = gfpgan(&[&["clip", "-o", s(&dir.path().join("clip")), "--frames", "2"], &files[..]].concat());
    fails_with_one_line(&clip, "no faces");
}

#[test]
fn nonsense_numbers_are_one_line_errors() {
    let w = checkpoint("a64");
    let w = s(&w);
    let restore = |extra: &[&'static str]| [&["restore", "x.png", "-o", "o", "--weights", w][..], extra].concat();
    let clip = |extra: &[&'static str]| [&["clip", "x.png", "-o", "o"][..], extra].concat();
    let degrade = |extra: &[&'static str]| [&["degrade", "x.png", "y.png"][..], extra].concat();
    let forward = ["forward", "--weights", w, "--input", "x.npy", "--output", "y.npy", "--batch-size", "0"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (restore(&["--weight", "nan"]), "--weight"),
        (restore(&["--weight", "-0.5"]), "--weight"),
        (restore(&["--min-face-size", "-5"]), "--min-face-size"),
        (restore(&["--min-face-size", "0.001"]), "--min-face-size"),
        (restore(&["--detection-scale", "0"]), "--detection-scale"),
        (restore(&["--detection-scale", "nan"]), "--detection-scale"),
        (restore(&["--score-threshold", "nan"]), "--score-threshold"),
        (restore(&["--batch-size", "0"]), "--batch-size"),
        (forward.to_vec(), "--batch-size"),
        (["bench", "--weights", w, "--batch", "0"].to_vec(), "--batch"),
        (degrade(&["--color-jitter-prob", "2"]), "--color-jitter-prob"),
        (degrade(&["--gray-prob", "nan"]), "--gray-prob"),
        (clip(&["--width", "0"]), "width"),
        (clip(&["--motion", "nan"]), "motion"),
        (clip(&["--frames", "0"]), "frames"),
        (clip(&["--jitter", "-1"]), "jitter"),
        (["init-random", "r.safetensors", "--narrow", "nan"].to_vec(), "--narrow"),
    ];
    for (args, needle) in cases {
        let out = gfpgan(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn inputs_with_the_same_name_get_distinct_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two, out) = (dir.path().join("one"), dir.path().join("two"), dir.path().join("out"));
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    image(&one.join("a.png"), 24, 16);
    image(&one.join("a.jpg"), 20, 20);
    image(&two.join("a.png"), 16, 24);
    let (weights, models) = (checkpoint("a64"), common::face_models());
    let o =
        gfpgan(&["restore", s(&one), s(&two), "-o", s(&out), "--weights", s(&weights), "--face-models", s(&models)]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout.matches("renamed").count(), 2, "{stdout}");
    let mut sizes: Vec<(usize, usize)> =
        std::fs::read_dir(&out).unwrap().map(|e| Rgb::open(&e.unwrap().path()).map(|i| (i.w, i.h)).unwrap()).collect();
    sizes.sort();
    assert_eq!(sizes, [(16, 24), (20, 20), (24, 16)]);
}

#[test]
fn outputs_that_would_replace_an_input_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.png");
    image(&x, 12, 10);
    let before = std::fs::read(&x).unwrap();
    let weights = checkpoint("a64");
    let models = common::face_models();
    let restore = ["restore", "x.png", "-o", ".", "--weights", s(&weights), "--face-models", s(&models)];
    let cases: [&[&str]; 4] =
        [&restore, &["degrade", "x.png", "x.png"], &["degrade", "x.png", "./x.png"], &["degrade", s(&x), "../x.png"]];
    // The last one from a subfolder: the same file reached through `..`.
    let sub = dir.path().join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    for (i, args) in cases.iter().enumerate() {
        let cwd = if i == 3 { &sub } else { dir.path() };
        fails_with_one_line(&run_in(Some(cwd), args), "would replace an input");
        assert!(std::fs::read(&x).unwrap() == before, "{args:?} changed the input");
    }
}

#[test]
fn convert_refuses_to_overwrite_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.pth");
    std::fs::copy(checkpoint("a64"), &w).unwrap();
    let before = std::fs::read(&w).unwrap();
    for output in ["w.pth", "./w.pth", "../w.pth"] {
        let cwd = if output.starts_with("..") { dir.path().join("sub") } else { dir.path().to_path_buf() };
        std::fs::create_dir_all(&cwd).unwrap();
        let input = if output.starts_with("..") { "../w.pth" } else { "w.pth" };
        fails_with_one_line(&run_in(Some(&cwd), &["convert", input, output]), "would replace an input");
        assert!(std::fs::read(&w).unwrap() == before, "the checkpoint was changed");
    }
}

/// A write that fails half-way (here: the file-size limit of `ulimit -f`, with SIGXFSZ ignored
/// so that the write returns an error) leaves the previous file at the output path as it was.
#[test]
fn a_failed_write_leaves_the_previous_output_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.npy"), dir.path().join("out.npy"));
    io("a64")["input"].write_npy(&input).unwrap();
    let previous = vec![42u8; 3000];
    std::fs::write(&output, &previous).unwrap();
    let weights = checkpoint("a64");
    let out = Command::new("sh")
        .args(["-c", "trap '' XFSZ; ulimit -f 4; exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_gfpgan")])
        .args(["forward", "--weights", s(&weights), "--input", s(&input), "--output", s(&output)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(&output).unwrap() == previous, "the previous output was changed");
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "temporary files left behind: {names:?}");
}
