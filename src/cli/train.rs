//! `gfpgan train --config FILE [--resume]`: trains GFPGANv1Clean as the config says, showing a
//! progress bar with the current losses; Ctrl-C saves a resumable checkpoint and stops.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gfpgan::train::config::TrainConfig;
use gfpgan::train::run::{Ending, Progress, train};
use gfpgan::train::trainer::StepReport;
use gfpgan::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub struct Args {
    /// The training options (TOML; see pipelines/train/*.toml).
    #[arg(long)]
    config: PathBuf,
    /// Continue from the newest checkpoint in the config's output folder.
    #[arg(long)]
    resume: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// The progress bar, its message the current losses.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, first: u64, total: u64) {
        self.0.set_length(total);
        self.0.set_position(first);
        self.0.reset_eta();
    }

    fn step(&self, report: &StepReport) {
        self.0.set_position(report.iteration);
        let shown = ["l1", "g_gan", "d_gan", "comp_style", "identity"];
        let msg: Vec<String> = report
            .losses
            .iter()
            .filter(|(k, _)| shown.contains(&k.as_str()))
            .map(|(k, v)| format!("{k} {v:.4}"))
            .collect();
        self.0.set_message(msg.join("  "));
    }

    fn message(&self, text: &str) {
        self.0.println(text);
    }
}

pub fn run(args: Args) -> Result<()> {
    let cfg = TrainConfig::load(&args.config)?;
    let device = gfpgan::device::open(&args.device)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // A second Ctrl-C while the checkpoint is written is ignored; kill -9 still works.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    let bar = ProgressBar::new(cfg.schedule.total_iter).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} it  {elapsed_precise} eta {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let summary = train(cfg, &device, args.resume, &stop, &Bar(bar.clone()))?;
    bar.finish_and_clear();
    let how = match &summary.ending {
        Ending::Finished => "finished".to_string(),
        Ending::TimeLimit => "stopped at the time limit".to_string(),
        Ending::Interrupted => "interrupted; continue with --resume".to_string(),
        Ending::Diverged { why, .. } => format!(
            "DIVERGED ({why}; nothing saved after it: lower optim.lr_g or the adversarial weights, then \
             --resume from the last checkpoint)"
        ),
    };
    println!("training {how} at iteration {} in {}", summary.iteration, summary.output.display());
    if let Some((it, net, bicubic)) = summary.best {
        println!("best validation: iteration {it}, PSNR {net:.2} dB (bicubic {bicubic:.2} dB)");
    }
    if summary.skipped > 0 {
        println!("{} faces skipped (unreadable or of the wrong size)", summary.skipped);
    }
    if let Ending::Diverged { iteration, why } = summary.ending {
        return Err(Error::Input(format!("training diverged at iteration {iteration}: {why}")));
    }
    Ok(())
}
