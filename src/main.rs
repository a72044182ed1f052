//! `gfpgan`: command-line access to the GFP-GAN network.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use candle_core::{DType, Tensor};
use clap::{Parser, Subcommand, ValueEnum};

use gfpgan::{Checkpoint, Error, NoiseMode, Restorer, Result};

#[derive(Parser)]
#[command(name = "gfpgan", version, about = "GFP-GAN blind face restoration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Precision {
    F32,
    F16,
    Bf16,
}

impl From<Precision> for DType {
    fn from(p: Precision) -> DType {
        match p {
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
            Precision::Bf16 => DType::BF16,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the network on an (N, 3, S, S) float32 .npy array of aligned faces, RGB in [-1, 1].
    Forward {
        #[arg(long)]
        weights: PathBuf,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        /// cpu, cuda or cuda:N
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Compute precision (f16/bf16 are meant for CUDA; see BENCHMARKS.md for their error).
        #[arg(long, value_enum, default_value = "f32")]
        dtype: Precision,
        /// Use seeded random noise instead of the checkpoint's stored noise maps.
        #[arg(long)]
        noise_seed: Option<u64>,
        /// Faces per forward pass.
        #[arg(long, default_value_t = 4)]
        batch_size: usize,
    },
    /// Print the configuration inferred from a checkpoint and its parameter count.
    Inspect { weights: PathBuf },
    /// Convert a checkpoint (.pth or .safetensors) to .safetensors after checking it.
    Convert {
        input: PathBuf,
        output: PathBuf,
        #[arg(long, value_enum, default_value = "f32")]
        dtype: Precision,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = e.to_string();
            eprintln!("error: {}", msg.lines().next().unwrap_or_default());
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Forward { weights, input, output, device, dtype, noise_seed, batch_size } => {
            let device = gfpgan::device::open(&device)?;
            let restorer = Restorer::load(&weights, &device, dtype.into())?;
            let faces = read_npy(&input)?;
            restorer.check_input(faces.dims()).map_err(|e| Error::format(&input, e.to_string()))?;
            let noise = noise_seed.map_or(NoiseMode::Stored, |seed| NoiseMode::Random { seed });
            let n = faces.dim(0)?;
            let batch_size = batch_size.max(1);
            let mut restored = Vec::new();
            for start in (0..n).step_by(batch_size) {
                let batch = faces.narrow(0, start, batch_size.min(n - start))?;
                restored.push(restorer.restore(&batch, noise)?);
            }
            let restored = Tensor::cat(&restored, 0)?;
            restored.write_npy(&output).map_err(|e| Error::format(&output, format!("cannot write: {e}")))?;
            eprintln!("restored {n} face(s) -> {}", output.display());
            Ok(())
        }
        Command::Inspect { weights } => {
            let ckpt = Checkpoint::load(&weights)?;
            let c = &ckpt.config;
            println!("file: {}", weights.display());
            println!("architecture: GFPGANv1Clean");
            println!("out_size: {}", c.out_size);
            println!("num_style_feat: {}", c.num_style_feat);
            println!("channel_multiplier: {}", c.channel_multiplier);
            println!("narrow: {}", c.narrow);
            println!("sft_half: {}", c.sft_half);
            println!("different_w: {}", c.different_w);
            println!("num_mlp: {}", c.num_mlp);
            println!("tensors: {}", ckpt.tensors.len());
            println!("parameters: {}", c.num_parameters());
            let dtypes: std::collections::BTreeSet<String> =
                ckpt.tensors.values().map(|t| format!("{:?}", t.dtype())).collect();
            println!("stored dtype: {}", dtypes.into_iter().collect::<Vec<_>>().join(", "));
            Ok(())
        }
        Command::Convert { input, output, dtype } => {
            let ckpt = Checkpoint::load(&input)?;
            ckpt.save_safetensors(&output, dtype.into())?;
            eprintln!("wrote {} ({} tensors, {:?})", output.display(), ckpt.tensors.len(), DType::from(dtype));
            Ok(())
        }
    }
}

fn read_npy(path: &Path) -> Result<Tensor> {
    if !path.exists() {
        return Err(Error::io(path, std::io::Error::from(std::io::ErrorKind::NotFound)));
    }
    let t = Tensor::read_npy(path).map_err(|e| {
        Error::format(path, format!("not a readable .npy array: {}", e.to_string().lines().next().unwrap_or_default()))
    })?;
    if t.dtype() != DType::F32 {
        return Err(Error::format(path, format!("array has dtype {:?}, expected float32", t.dtype())));
    }
    Ok(t)
}
