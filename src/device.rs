//! Choosing the compute device from a user string: `cpu`, `cuda` or `cuda:N`.

use candle_core::Device;

use crate::error::{Error, Result};

/// Parses and opens a device. CUDA needs a build with the `cuda` feature and a visible GPU.
pub fn open(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    if spec == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match spec.as_str() {
        "cuda" | "gpu" => 0,
        s => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => return Err(Error::Device(format!("unknown device `{spec}`: use cpu, cuda or cuda:N"))),
        },
    };
    open_cuda(ordinal)
}

#[cfg(feature = "cuda")]
fn open_cuda(ordinal: usize) -> Result<Device> {
    Device::new_cuda(ordinal).map_err(|e| {
        let first = crate::error::first_line(&e);
        Error::Device(format!("cannot open CUDA device {ordinal} (no GPU, wrong index or driver too old?): {first}"))
    })
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(ordinal: usize) -> Result<Device> {
    Err(Error::Device(format!(
        "cuda:{ordinal} requested but this build has no CUDA support; rebuild with `cargo build --release --features cuda`"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_rejects_nonsense() {
        assert!(open("cpu").unwrap().is_cpu());
        assert!(open("CPU").unwrap().is_cpu());
        let msg = open("tpu").unwrap_err().to_string();
        assert!(msg.contains("unknown device `tpu`"), "{msg}");
        assert!(open("cuda:x").is_err());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_get_it() {
        let msg = open("cuda:1").unwrap_err().to_string();
        assert!(msg.contains("--features cuda"), "{msg}");
    }
}
