//! Files the library reads and writes: image files found in folders; and writes that never leave
//! a partial file at the destination, never an old file lost to a failed write.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Writes a file so that `path` never holds a partial one and an old file there survives a
/// failure: `write` fills a new temporary file in the same folder (so the rename cannot cross
/// file systems), which is synced and then renamed over `path`; on any error it is removed.
pub fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // Short hidden names (a long output name plus a suffix could pass the 255-byte limit);
    // create_new so that nothing that exists is ever reused.
    let tmp = loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let candidate = dir.join(format!(".gfpgan-{}-{n}.tmp", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&candidate) {
            Ok(_) => break candidate,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(path, e)),
        }
    };
    let result = write(&tmp).and_then(|()| {
        let synced = std::fs::File::open(&tmp).and_then(|f| f.sync_all());
        synced.and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| Error::io(path, e))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_keep_the_old_file_on_failure_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        std::fs::write(&path, b"old").unwrap();
        let failed = write_atomically(&path, |tmp| {
            std::fs::write(tmp, b"half").unwrap();
            Err(Error::Input("encoder failed".into()))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        write_atomically(&path, |tmp| std::fs::write(tmp, b"new").map_err(|e| Error::io(tmp, e))).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        // A folder in the way: the rename fails, the folder stays.
        let folder = dir.path().join("folder.png");
        std::fs::create_dir(&folder).unwrap();
        assert!(crate::frame::Rgb::new(2, 2).save(&folder).is_err());
        assert!(folder.is_dir());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "temporary files left behind");
    }
}

/// The image file extensions read as photos and faces (compared without case).
pub const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];

/// Whether `path` names an image file by its extension.
pub fn is_image(path: &Path) -> bool {
    path.extension().map(|e| e.to_ascii_lowercase()).is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e == *x))
}

/// The image files of a folder, sorted by name.
pub fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    found.sort();
    Ok(found)
}
