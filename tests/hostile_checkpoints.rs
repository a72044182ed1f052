//! Hostile weights files (issue 13): crafted to crash or exhaust a reader that trusts sizes or
//! structure. Each must give one clear line from the library and `error: ...` with exit code 1
//! from `gfpgan inspect`, never a panic, an abort or a huge allocation. The files are built
//! here byte by byte, so the tests need neither Python nor PyTorch.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use gfpgan::faceapi::WeightMap;
use gfpgan::weights::read_tensors;

/// Builds a protocol-2 pickle the way `torch.save` writes one.
struct Pickle(Vec<u8>);

impl Pickle {
    fn new() -> Self {
        Pickle(vec![0x80, 2])
    }
    fn op(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    fn str(self, s: &str) -> Self {
        self.op(b"X").op(&(s.len() as u32).to_le_bytes()).op(s.as_bytes())
    }
    /// BININT (a signed 32-bit int), or LONG1 for values above `i32::MAX`.
    fn int(self, v: u32) -> Self {
        match i32::try_from(v) {
            Ok(v) => self.op(b"J").op(&v.to_le_bytes()),
            Err(_) => self.op(&[0x8a, 5]).op(&v.to_le_bytes()).op(&[0]),
        }
    }
    fn global(self, module: &str, name: &str) -> Self {
        self.op(format!("c{module}\n{name}\n").as_bytes())
    }
    fn ints(self, values: &[u32]) -> Self {
        values.iter().fold(self.op(b"("), |p, &v| p.int(v)).op(b"t")
    }
    /// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())` on the float
    /// storage `key` of `numel` elements.
    fn tensor(self, key: &str, numel: u32, offset: u32, size: &[u32], stride: &[u32]) -> Self {
        self.global("torch._utils", "_rebuild_tensor_v2")
            .op(b"((")
            .str("storage")
            .global("torch", "FloatStorage")
            .str(key)
            .str("cpu")
            .int(numel)
            .op(b"tQ")
            .int(offset)
            .ints(size)
            .ints(stride)
            .op(b"\x89")
            .global("collections", "OrderedDict")
            .op(b")Rt")
            .op(b"R")
    }
    /// `{name: tensor, ...}` from `(name, pickle of the value)` pairs.
    fn state_dict(entries: Vec<(&str, Pickle)>) -> Vec<u8> {
        let mut p = Pickle::new().op(b"}(");
        for (name, value) in entries {
            p = p.str(name);
            p.0.extend_from_slice(&value.0[2..]);
        }
        p.op(b"u.").0
    }
}

/// Writes a PyTorch zip archive: `archive/data.pkl`, `archive/byteorder` and `archive/data/<key>`.
fn torch_zip(dir: &Path, name: &str, pickle: &[u8], storages: &[(&str, Vec<u8>)], deflate: bool) -> PathBuf {
    let path = dir.join(name);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let method = if deflate { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    let mut entries =
        vec![("archive/data.pkl".to_string(), pickle.to_vec()), ("archive/byteorder".into(), b"little".to_vec())];
    entries.extend(storages.iter().map(|(k, v)| (format!("archive/data/{k}"), v.clone())));
    for (entry, bytes) in entries {
        zip.start_file(entry.as_str(), opts).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();
    path
}

fn f32_bytes(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(f32::to_le_bytes).collect()
}

fn library_error(path: &Path) -> String {
    match read_tensors(path) {
        Ok(t) => panic!("{} loaded {} tensors", path.display(), t.len()),
        Err(e) => e.to_string(),
    }
}

/// `gfpgan inspect path` must exit with code 1 (not 101 for a panic, not a signal) and print
/// one line `error: ...` containing `needle`.
fn assert_cli_rejects(path: &Path, needle: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_gfpgan")).arg("inspect").arg(path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "inspect {}: {:?}, stderr: {stderr}", path.display(), out.status);
    assert_eq!(stderr.trim_end().lines().count(), 1, "multi-line error: {stderr}");
    assert!(stderr.starts_with("error: ") && stderr.contains(needle), "stderr: {stderr}");
}

/// Both the library (one line) and the CLI reject `path` with a message containing `needle`.
fn assert_rejected(path: &Path, needle: &str) {
    let msg = library_error(path);
    assert!(msg.contains(needle), "library said: {msg}");
    assert_eq!(msg.lines().count(), 1, "multi-line error: {msg}");
    assert_cli_rejects(path, needle);
}

#[test]
fn rebuild_tensor_with_too_few_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let short_call = Pickle::new().global("torch._utils", "_rebuild_tensor_v2").op(b"(").int(0).int(0).op(b"tR");
    let path = torch_zip(dir.path(), "short.pth", &Pickle::state_dict(vec![("w", short_call)]), &[], false);
    assert!(std::fs::metadata(&path).unwrap().len() < 1000);
    assert_rejected(&path, "_rebuild_tensor_v2 takes 6 or 7 arguments, got 2");
}

#[test]
fn tuple_nested_three_million_levels_deep() {
    let dir = tempfile::tempdir().unwrap();
    let mut pickle = vec![0x80, 2, b')'];
    pickle.extend(std::iter::repeat_n(0x85u8, 3_000_000)); // TUPLE1: wrap the top in a tuple
    pickle.push(b'.');
    let path = torch_zip(dir.path(), "deep.pth", &pickle, &[], true);
    assert!(std::fs::metadata(&path).unwrap().len() < 100_000, "deflate keeps the file small");
    // The subprocess first: an overflow there is a signal, not the end of this test binary.
    assert_cli_rejects(&path, "nesting deeper than 1000 levels");
    assert!(library_error(&path).contains("TUPLE1 at byte 1003: nesting deeper than 1000 levels"));
}

#[test]
fn globals_outside_pytorch_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let call = Pickle::new().global("os", "system").str("true").op(b"\x85R");
    let path = torch_zip(dir.path(), "os.pth", &Pickle::state_dict(vec![("w", call)]), &[], false);
    assert_rejected(&path, "refers to `os.system`, which is not part of a PyTorch checkpoint");
}

/// Sets the uncompressed size of `entry` in its local and central headers.
fn patch_declared_size(path: &Path, entry: &str, size: u32) {
    let mut bytes = std::fs::read(path).unwrap();
    let name = entry.as_bytes();
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]) as usize;
    let mut patched = 0;
    for i in 0..bytes.len() - 46 {
        // (signature, offset of the name length, offset of the name, offset of the size)
        let layout = match &bytes[i..i + 4] {
            b"PK\x03\x04" => (26, 30, 22),
            b"PK\x01\x02" => (28, 46, 24),
            _ => continue,
        };
        let n = u16_at(&bytes, i + layout.0);
        if bytes.get(i + layout.1..i + layout.1 + n) == Some(name) {
            bytes[i + layout.2..i + layout.2 + 4].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "local and central header of {entry}");
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn zip_entry_claiming_a_huge_size() {
    let dir = tempfile::tempdir().unwrap();
    let pickle = Pickle::state_dict(vec![("w", Pickle::new().tensor("0", 4, 0, &[4], &[1]))]);
    for entry in ["archive/data/0", "archive/data.pkl"] {
        let path = torch_zip(dir.path(), "huge.pth", &pickle, &[("0", f32_bytes([1., 2., 3., 4.]))], false);
        read_tensors(&path).unwrap();
        patch_declared_size(&path, entry, 0xffff_fff0);
        assert_rejected(&path, &format!("entry `{entry}` claims 4294967280 bytes"));
    }
}

#[test]
fn corrupted_storage_bytes_fail_the_crc_check() {
    let dir = tempfile::tempdir().unwrap();
    let data = f32_bytes([1., 2., 3., 4.]);
    let pickle = Pickle::state_dict(vec![("w", Pickle::new().tensor("0", 4, 0, &[4], &[1]))]);
    let path = torch_zip(dir.path(), "crc.pth", &pickle, &[("0", data.clone())], false);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.windows(16).position(|w| w == data.as_slice()).unwrap();
    bytes[at + 5] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    assert_rejected(&path, "invalid PyTorch checkpoint: tensor `w`: entry `archive/data/0`: Invalid checksum");
}

#[test]
fn views_sharing_one_storage_at_element_offsets() {
    let dir = tempfile::tempdir().unwrap();
    // torch.arange(12.)[2:6].view(2, 2) and torch.arange(12.)[5:].as_strided((3, 2), (1, 3), 5):
    // offsets and strides count elements, both views read the one storage.
    let pickle = Pickle::state_dict(vec![
        ("a", Pickle::new().tensor("0", 12, 2, &[2, 2], &[2, 1])),
        ("b", Pickle::new().tensor("0", 12, 5, &[3, 2], &[1, 3])),
        ("c", Pickle::new().tensor("0", 12, 11, &[], &[])),
    ]);
    let path = torch_zip(dir.path(), "views.pth", &pickle, &[("0", f32_bytes((0..12).map(|i| i as f32)))], false);
    let t = read_tensors(&path).unwrap();
    assert_eq!(t["a"].to_vec2::<f32>().unwrap(), [[2., 3.], [4., 5.]]);
    assert_eq!(t["b"].to_vec2::<f32>().unwrap(), [[5., 8.], [6., 9.], [7., 10.]]);
    assert_eq!(t["c"].to_scalar::<f32>().unwrap(), 11.);
}

/// What `torch.save({'params_ema': sd, 'params': sd, 'iter': 7, 'lr': 0.5})` writes for an
/// `OrderedDict` state dict `sd` with `_metadata` (REDUCE, SETITEMS, then BUILD), a plain tensor
/// and an `nn.Parameter`, both views of storage `0` (6 floats): generated by Python's pickle
/// with stand-ins for the torch classes, as the official GFPGAN files are laid out.
const TORCH_STATE_DICT: [&str; 9] = [
    "80027d710028580a000000706172616d735f656d61710163636f6c6c656374696f6e730a4f726465726564446963740a",
    "71022952710328580b000000636f6e762e776569676874710463746f7263682e5f7574696c730a5f72656275696c645f",
    "74656e736f725f76320a71052828580700000073746f72616765710663746f7263680a466c6f617453746f726167650a",
    "71075801000000307108580300000063707571094b0674710a514b004b024b0286710b4b014b0286710c896802295271",
    "0d74710e52710f5809000000636f6e762e62696173711063746f7263682e5f7574696c730a5f72656275696c645f7061",
    "72616d657465720a71116805282868066807680868094b06747112514b044b028571134b018571148968022952711574",
    "71165271178868022952711887711952711a757d711b58090000005f6d65746164617461711c68022952711d28580000",
    "0000711e7d711f580700000076657273696f6e71204b01735804000000636f6e7671217d712268204b01737573625806",
    "000000706172616d737123680358040000006974657271244b0758020000006c727125473fe0000000000000752e",
];

#[test]
fn ordered_dict_with_metadata_parameters_and_shared_memo_entries() {
    let dir = tempfile::tempdir().unwrap();
    let hex: String = TORCH_STATE_DICT.concat();
    let pickle: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let path = torch_zip(dir.path(), "sd.pth", &pickle, &[("0", f32_bytes((0..6).map(|i| i as f32)))], true);
    let t = read_tensors(&path).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t["conv.weight"].to_vec2::<f32>().unwrap(), [[0., 2.], [1., 3.]]);
    assert_eq!(t["conv.bias"].to_vec1::<f32>().unwrap(), [4., 5.]);
}

#[test]
fn views_outside_their_storage_and_short_storages() {
    let dir = tempfile::tempdir().unwrap();
    let data = f32_bytes((0..12).map(|i| i as f32));
    let past_end = Pickle::state_dict(vec![("b", Pickle::new().tensor("0", 12, 7, &[3, 2], &[1, 3]))]);
    let path = torch_zip(dir.path(), "past.pth", &past_end, &[("0", data.clone())], false);
    assert_rejected(&path, "tensor `b`: view (offset 7, size [3, 2], stride [1, 3]) reaches past its storage");

    let overflow = Pickle::state_dict(vec![("o", Pickle::new().tensor("0", 12, 0, &[2, 1 << 31], &[u32::MAX, 1]))]);
    let path = torch_zip(dir.path(), "overflow.pth", &overflow, &[("0", data.clone())], false);
    assert_rejected(&path, "tensor `o`: view (offset 0, size [2, 2147483648]");

    // The record claims 1e9 elements; the entry holds 12: refused, nothing of 4 GB allocated.
    let liar = Pickle::state_dict(vec![("l", Pickle::new().tensor("0", 1_000_000_000, 0, &[4], &[1]))]);
    let path = torch_zip(dir.path(), "liar.pth", &liar, &[("0", data.clone())], false);
    assert_rejected(&path, "storage `0` holds 48 bytes, its record says 1000000000 elements of F32");

    // Two records of one storage that disagree on its length: the second one is caught too.
    let two = Pickle::state_dict(vec![
        ("a", Pickle::new().tensor("0", 12, 0, &[12], &[1])),
        ("b", Pickle::new().tensor("0", 24, 20, &[4], &[1])),
    ]);
    let path = torch_zip(dir.path(), "two.pth", &two, &[("0", data)], false);
    assert_rejected(&path, "tensor `b`: storage `0` holds 48 bytes, its record says 24 elements of F32");
}

#[test]
fn many_full_views_of_one_storage() {
    // 40 views of a 4000-byte storage in a ~5 kB file would make 160 kB of tensors: refused
    // (a few hundred such records in a small pickle could otherwise make gigabytes).
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
    let views = names.iter().map(|n| (n.as_str(), Pickle::new().tensor("0", 1000, 0, &[1000], &[1]))).collect();
    let path = torch_zip(dir.path(), "views.pth", &Pickle::state_dict(views), &[("0", vec![0; 4000])], false);
    assert_rejected(&path, "the tensors add up to more than 8 times the storage bytes they view");
}

#[test]
fn safetensors_header_claiming_a_huge_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.safetensors");
    let mut bytes = (1u64 << 40).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}      ");
    std::fs::write(&path, bytes).unwrap();
    assert_rejected(&path, "invalid safetensors file: header claims 1099511627776 bytes, the file has 16");
}

/// A safetensors file with `header` (padded to 8 bytes) and `data`.
fn safetensors(dir: &Path, name: &str, header: &str, data: &[u8]) -> PathBuf {
    let mut header = header.to_string();
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn safetensors_bad_json_offsets_and_overlaps() {
    let dir = tempfile::tempdir().unwrap();
    let t = |name: &str, shape: &str, offsets: &str| {
        format!(r#""{name}":{{"dtype":"F32","shape":{shape},"data_offsets":{offsets}}}"#)
    };
    let good = format!("{{{},{}}}", t("a", "[2]", "[0,8]"), t("b", "[1]", "[8,12]"));
    safetensors(dir.path(), "good.safetensors", &good, &[0; 12]);
    assert_eq!(read_tensors(&dir.path().join("good.safetensors")).unwrap().len(), 2);
    let cases = [
        ("json", "{\"a\": [".to_string(), 0),
        ("range", format!("{{{}}}", t("a", "[2]", "[0,8]")), 4),
        ("overlap", format!("{{{},{}}}", t("a", "[2]", "[0,8]"), t("b", "[2]", "[4,12]")), 12),
        ("shape", format!("{{{}}}", t("a", "[4294967296,4294967296,4294967296]", "[0,8]")), 8),
    ];
    for (name, header, len) in cases {
        let path = safetensors(dir.path(), &format!("{name}.safetensors"), &header, &vec![0; len]);
        assert_rejected(&path, "invalid safetensors file: ");
    }
}

#[test]
fn tfjs_manifest_with_an_overflowing_or_oversized_shape() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.bin"), [0u8; 16]).unwrap();
    let manifest = |shape: &str| {
        let path = dir.path().join("m-weights_manifest.json");
        let text =
            format!(r#"[{{"paths": ["m.bin"], "weights": [{{"name": "w", "shape": {shape}, "dtype": "float32"}}]}}]"#);
        std::fs::write(&path, text).unwrap();
        WeightMap::load(&path).err().expect("loaded").to_string()
    };
    let msg = manifest("[4294967296, 4294967296, 4294967296]");
    assert!(msg.contains("tensor `w`: shape too large"), "{msg}");
    let msg = manifest("[1000000, 1000000]");
    assert!(msg.contains("m.bin truncated: 16 bytes, the manifest's 1 tensors need 4000000000000"), "{msg}");
    // A shard far larger than the manifest needs (sparse, so nothing is written): refused from
    // its size, before it is read.
    std::fs::File::create(dir.path().join("m.bin")).unwrap().set_len(1 << 40).unwrap();
    let msg = manifest("[4]");
    assert!(
        msg.contains("m.bin has unexpected trailing bytes: 1099511627776 bytes, the manifest's 1 tensors need 16"),
        "{msg}"
    );
    let msg = manifest("[-1]");
    assert!(msg.contains("bad dimension `-1`"), "{msg}");
}
