//! PyTorch zip checkpoints (`torch.save` since 1.6): `<dir>/data.pkl` describes the objects,
//! `<dir>/data/<key>` holds each storage's raw little-endian bytes.
//!
//! Nothing in the archive is trusted: entry sizes are checked against the file before anything
//! is allocated (and allocated fallibly), the pickle is read by our bounded reader
//! ([`super::pickle`]), each tensor view is checked to lie inside its storage, and each storage
//! is read once however many tensors share it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use candle_core::Tensor;
use zip::ZipArchive;

use super::STATE_DICT_KEYS;
use super::pickle::{self, Obj, Pickle, TensorRef};
use super::view::View;
use crate::error::{Error, Result};

/// Deflate's best ratio is about 1032:1; no entry can inflate to more than this per byte stored.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Tensors may share a storage; the tensors made from the storages may be at most this many
/// times the bytes read (checkpoints tie a weight or two, never much more). Without a limit, a
/// small file could make thousands of full-size views of one large storage.
const MAX_VIEW_EXPANSION: u64 = 8;

pub(crate) type Archive = ZipArchive<BufReader<File>>;

pub fn read(path: &Path) -> Result<HashMap<String, Tensor>> {
    let bad = |msg: String| Error::format(path, format!("invalid PyTorch checkpoint: {msg}"));
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut zip = ZipArchive::new(BufReader::new(file)).map_err(|e| bad(format!("{e} (truncated download?)")))?;
    let pkl_name = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .find(|n| n.ends_with("/data.pkl") || n == "data.pkl")
        .ok_or_else(|| bad("no data.pkl inside the archive".into()))?;
    let dir = pkl_name.strip_suffix("data.pkl").unwrap_or_default().to_string();
    if let Some(order) = zip.index_for_name(&format!("{dir}byteorder")) {
        let order = read_entry(&mut zip, order, file_len).map_err(bad)?;
        if order != b"little" {
            // Escaped and cut short: the entry is any bytes, and an error is one line.
            let shown: String = String::from_utf8_lossy(&order).chars().take(16).collect();
            return Err(bad(format!("byte order {shown:?} (only little-endian is read)")));
        }
    }
    let index = zip.index_for_name(&pkl_name).expect("listed name");
    let bytes = read_entry(&mut zip, index, file_len).map_err(bad)?;
    let pickle = pickle::parse(&bytes).map_err(|e| bad(format!("unreadable pickle: {e}")))?;
    let records = tensor_records(&pickle).ok_or_else(|| bad("the pickle holds no dictionary of tensors".into()))?;
    let mut storages = StorageCache::default();
    let mut tensors = HashMap::new();
    for (name, t) in records {
        let tensor =
            load_view(&mut zip, &mut storages, &dir, t, file_len).map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        tensors.insert(name.to_string(), tensor);
    }
    Ok(tensors)
}

/// The state dict's tensors: under `params_ema` or `params` when the top level is a BasicSR
/// wrapper, else the top-level dict itself. Entries that are not tensors (e.g. a step counter)
/// are skipped, as are non-string keys.
fn tensor_records(p: &Pickle) -> Option<Vec<(&str, &TensorRef)>> {
    let top = p.dict(p.root)?;
    let key_of = |k| p.str(k);
    let state = STATE_DICT_KEYS
        .iter()
        .find_map(|want| top.iter().find(|&&(k, _)| key_of(k) == Some(want)).map(|&(_, v)| v))
        .map_or(Some(top), |v| p.dict(v))?;
    Some(
        state
            .iter()
            .filter_map(|&(k, v)| match (key_of(k), p.get(v)) {
                (Some(name), Obj::Tensor(t)) => Some((name, t)),
                _ => None,
            })
            .collect(),
    )
}

/// Storages read so far, by key: each is read from the archive once.
#[derive(Default)]
struct StorageCache {
    bytes: HashMap<String, Vec<u8>>,
    /// Bytes of all storages read, and of all tensors made from them.
    read: u64,
    made: u64,
}

fn load_view(
    zip: &mut Archive,
    storages: &mut StorageCache,
    dir: &str,
    t: &TensorRef,
    file_len: u64,
) -> std::result::Result<Tensor, String> {
    let s = &t.storage;
    let elem = s.dtype.size_in_bytes();
    let view = View { dtype: s.dtype, offset: t.offset, size: &t.size, stride: &t.stride };
    // The claims of the record first: the view must fit the storage it names.
    view.check(s.numel).map_err(|e| format!("{e} (storage `{}`)", s.key))?;
    let bytes = view.elem_count().and_then(|n| n.checked_mul(elem)).ok_or("its shape overflows")? as u64;
    if !storages.bytes.contains_key(&s.key) {
        let name = format!("{dir}data/{}", s.key);
        let index = zip.index_for_name(&name).ok_or_else(|| format!("storage entry `{name}` is missing"))?;
        let data = read_entry(zip, index, file_len)?;
        storages.read += data.len() as u64;
        storages.bytes.insert(s.key.clone(), data);
    }
    let data = &storages.bytes[&s.key];
    // Every record naming the storage must agree with its size (records sharing a storage
    // could otherwise claim different lengths).
    if Some(data.len()) != s.numel.checked_mul(elem) {
        return Err(format!(
            "storage `{}` holds {} bytes, its record says {} elements of {:?}",
            s.key,
            data.len(),
            s.numel,
            s.dtype
        ));
    }
    storages.made = storages.made.saturating_add(bytes);
    if storages.made > storages.read.saturating_add(file_len).saturating_mul(MAX_VIEW_EXPANSION) {
        return Err(format!("the tensors add up to more than {MAX_VIEW_EXPANSION} times the storage bytes they view"));
    }
    view.materialize(data)
}

/// Reads a whole entry. Its declared size is checked against what the archive can hold before
/// any allocation, the buffer is reserved fallibly, and the read goes to the end of the entry
/// so that the zip reader verifies its CRC (which catches corrupted downloads).
pub(crate) fn read_entry(zip: &mut Archive, index: usize, file_len: u64) -> std::result::Result<Vec<u8>, String> {
    let mut entry = zip.by_index(index).map_err(|e| e.to_string())?;
    let name = entry.name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    let (size, packed) = (entry.size(), entry.compressed_size());
    let limit = match entry.compression() {
        zip::CompressionMethod::Stored => packed,
        _ => packed.saturating_mul(MAX_DEFLATE_RATIO),
    };
    if packed > file_len || size > limit {
        return Err(format!(
            "entry `{name}` claims {size} bytes ({packed} stored) in a file of {file_len} bytes (corrupt archive)"
        ));
    }
    let size = usize::try_from(size).map_err(|_| format!("entry `{name}` is too large"))?;
    let mut data = Vec::new();
    data.try_reserve_exact(size).map_err(|_| format!("entry `{name}`: cannot allocate {size} bytes"))?;
    // One byte more than declared, to notice an entry longer than its header says.
    (&mut entry).take(size as u64 + 1).read_to_end(&mut data).map_err(|e| format!("entry `{name}`: {e}"))?;
    if data.len() != size {
        return Err(format!("entry `{name}` holds {} bytes, its header says {size}", data.len()));
    }
    // Drain to the end (nothing should remain) so the CRC check runs.
    std::io::copy(&mut entry, &mut std::io::sink()).map_err(|e| format!("entry `{name}`: {e}"))?;
    Ok(data)
}
