//! A training run in an output folder:
//!
//! ```text
//! OUT/config.toml                 the options the run trains with
//! OUT/train.jsonl                 losses every `log_every` iterations, validation results
//! OUT/loss.png                    loss curves and validation PSNR, redrawn as it goes
//! OUT/checkpoints/iter_NNNNNNNN/  net_g (EMA, official names: what inference loads),
//!                                 net_g_raw, net_d*, optimizers: everything --resume needs
//! OUT/val/iter_NNNNNNNN/          report.md, metrics.json, grid.png of a validation
//! OUT/net_g_best.safetensors      the EMA generator of the best validation PSNR so far
//! ```
//!
//! Checkpoints are written at `save_every`, at the end, at the time limit and on Ctrl-C; the
//! newest three are kept. A checkpoint folder is complete once `optimizers.safetensors` is
//! in it (written last), and only complete ones are resumed from.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device};

use super::config::TrainConfig;
use super::log::{Entry, Log, draw_curves};
use super::nets::save_tensors;
use super::trainer::{StepReport, Trainer};
use crate::error::{Error, Result};
use crate::eval::dataset::{images_in, load_pair};
use crate::eval::report::{Report, Setup};
use crate::eval::{Degraded, Evaluator, METHODS, Pair};
use crate::frame::Rgb;
use crate::restore::{Engine, NoiseMode, Restorer};

const CHECKPOINTS: &str = "checkpoints";
const KEEP_CHECKPOINTS: usize = 3;
/// Seed of the validation faces' degradations (fixed: every validation sees the same inputs).
const VAL_SEED: u64 = 10_000;
/// How far over its recent median the generator's loss must jump to count as diverged: the
/// demo's runs that blew up went from ~1 to 1e3-1e23 within ten iterations, while a healthy
/// run's iterations spread over a factor of ~3.
const BLOWN_UP: f64 = 1000.0;
/// How many recent iterations the median is taken over (none is judged before it is full).
const RECENT: usize = 50;

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    Finished,
    TimeLimit,
    Interrupted,
    /// At `iteration` a loss stopped being finite, or the generator's total jumped to
    /// [`BLOWN_UP`] times its recent median: the weights are lost, so nothing is saved after it
    /// (the checkpoints and `net_g_best` from before it stay).
    Diverged {
        iteration: u64,
        why: String,
    },
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub iteration: u64,
    pub ending: Ending,
    pub last: Option<StepReport>,
    /// The best validation: iteration and the network's and bicubic's mean PSNR.
    pub best: Option<(u64, f64, f64)>,
    pub skipped: u64,
    pub output: PathBuf,
}

/// What the caller sees while training runs.
pub trait Progress {
    fn start(&self, first: u64, total: u64);
    fn step(&self, report: &StepReport);
    fn message(&self, text: &str);
}

/// Validation on held-out faces: the EMA generator scored with the evaluation metrics.
struct Validation {
    evaluator: Evaluator,
    pairs: Vec<Pair>,
}

impl Validation {
    fn open(cfg: &TrainConfig, size: usize) -> Result<Option<Self>> {
        let Some(dir) = &cfg.data.val else { return Ok(None) };
        let (Some(niqe), Some(models)) = (&cfg.data.val_niqe, &cfg.data.val_face_models) else {
            return Err(Error::Input("data.val needs data.val_niqe and data.val_face_models".into()));
        };
        let evaluator = Evaluator::new(niqe, models)?;
        let faces_dir = dir.join(super::data::FACES_DIR);
        let files = images_in(if faces_dir.is_dir() { &faces_dir } else { dir })?;
        let degraded = Degraded::Seeded { seed: VAL_SEED, ranges: cfg.data.degradation.options() };
        let pairs = files
            .iter()
            .take(cfg.data.val_count)
            .enumerate()
            .map(|(i, f)| load_pair(f, i, &degraded, size))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Self { evaluator, pairs }))
    }

    fn run(&self, trainer: &Trainer, dir: &Path) -> Result<Report> {
        let restorer = Restorer::with_engine(&trainer.ema_checkpoint()?, &Device::Cpu, DType::F32, Engine::Auto)?;
        let (faces, restored) = self.evaluator.evaluate_batch(&restorer, &self.pairs, 8, NoiseMode::Stored)?;
        let rows: Vec<[Rgb; 3]> =
            self.pairs.iter().zip(restored).map(|(p, r)| [p.input.clone(), r, p.gt.clone()]).collect();
        let setup = Setup {
            weights: format!("EMA generator at iteration {}", trainer.iteration),
            ground_truth: "validation faces".into(),
            degraded: format!("this run's training degradation, seed {VAL_SEED} + i"),
            size: trainer.generator_config().out_size,
        };
        let report = Report::new(setup, faces);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        report.write(dir, &rows)?;
        Ok(report)
    }
}

fn checkpoint_dir(out: &Path, iteration: u64) -> PathBuf {
    out.join(CHECKPOINTS).join(format!("iter_{iteration:08}"))
}

/// Complete checkpoints in `out`, oldest first.
fn checkpoints(out: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(out.join(CHECKPOINTS))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let it = name.strip_prefix("iter_")?.parse::<u64>().ok()?;
            e.path().join("optimizers.safetensors").is_file().then(|| (it, e.path()))
        })
        .collect();
    found.sort();
    found
}

fn save(trainer: &Trainer, out: &Path) -> Result<PathBuf> {
    let dir = checkpoint_dir(out, trainer.iteration);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    // optimizers last: its presence marks the folder complete.
    let mut files = trainer.state()?;
    files.sort_by_key(|(stem, _)| stem == "optimizers");
    for (stem, tensors) in files {
        save_tensors(&tensors, &dir.join(format!("{stem}.safetensors")))?;
    }
    let all = checkpoints(out);
    for (_, old) in all.iter().take(all.len().saturating_sub(KEEP_CHECKPOINTS)) {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(dir)
}

/// Trains as `cfg` says, in `cfg.output`. `resume`: continue from the newest checkpoint there
/// (an error when there is none); without it, an output folder that already holds a run is
/// refused rather than overwritten. `stop` is polled between iterations (Ctrl-C).
pub fn train(
    cfg: TrainConfig,
    device: &Device,
    resume: bool,
    stop: &AtomicBool,
    progress: &dyn Progress,
) -> Result<Summary> {
    let out = cfg.output.clone();
    let existing = checkpoints(&out);
    let from = match (resume, existing.last()) {
        (true, Some((_, dir))) => Some(dir.clone()),
        (true, None) => return Err(Error::Input(format!("{}: no checkpoint to resume from", out.display()))),
        (false, _) if out.join("train.jsonl").exists() || out.join(CHECKPOINTS).exists() => {
            return Err(Error::Input(format!(
                "{}: already holds a training run; resume it with --resume or choose another output",
                out.display()
            )));
        }
        (false, _) => None,
    };
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let mut trainer = Trainer::new(cfg, device)?;
    match &from {
        Some(dir) => {
            trainer.restore(dir)?;
            progress.message(&format!("resumed from {} (iteration {})", dir.display(), trainer.iteration));
        }
        None => {
            let path = out.join("config.toml");
            std::fs::write(&path, trainer.cfg.to_toml()).map_err(|e| Error::io(&path, e))?;
        }
    }
    let validation = Validation::open(&trainer.cfg, trainer.generator_config().out_size)?;
    let mut log = Log::open(&out, trainer.iteration)?;
    let mut best = best_so_far(&log);
    let mut skipped = log.entries.last().map_or(0, |e| e.skipped);
    let schedule = trainer.cfg.schedule.clone();
    let (clock, seconds_before) = (Instant::now(), log.seconds());
    let elapsed = || seconds_before + clock.elapsed().as_secs_f64();
    progress.start(trainer.iteration, schedule.total_iter);

    let mut last = None;
    let mut recent = RecentLoss::default();
    let mut saved_at = trainer.iteration;
    let ending = loop {
        if trainer.iteration >= schedule.total_iter {
            break Ending::Finished;
        }
        if stop.load(Ordering::Relaxed) {
            break Ending::Interrupted;
        }
        if schedule.max_seconds > 0 && clock.elapsed().as_secs() >= schedule.max_seconds {
            break Ending::TimeLimit;
        }
        let report = trainer.step()?;
        if let Some(why) = recent.diverged(&report) {
            break Ending::Diverged { iteration: report.iteration, why };
        }
        skipped += report.skipped.len() as u64;
        for problem in &report.skipped {
            progress.message(&format!("skipped a face: {problem}"));
        }
        progress.step(&report);
        let it = report.iteration;
        if it % schedule.log_every.max(1) == 0 || it == 1 {
            log.push(Entry {
                iteration: it,
                seconds: elapsed(),
                losses: report.losses.iter().cloned().collect(),
                lr_g: Some(trainer.learning_rate_g()),
                val: Default::default(),
                skipped,
            })?;
        }
        if let (Some(v), true) = (&validation, schedule.val_every > 0 && it % schedule.val_every == 0) {
            validate(v, &trainer, &out, &mut log, &mut best, elapsed(), skipped, progress)?;
        }
        if schedule.save_every > 0 && it % schedule.save_every == 0 {
            save(&trainer, &out)?;
            saved_at = it;
        }
        if it % schedule.log_every.max(1) == 0 {
            draw_curves(&log.entries, &out.join("loss.png"), NOTE)?;
        }
        last = Some(report);
    };
    let diverged = matches!(ending, Ending::Diverged { .. });
    if !diverged && (trainer.iteration > saved_at || from.is_none() && saved_at == 0) {
        let dir = save(&trainer, &out)?;
        progress.message(&format!("saved {}", dir.display()));
    }
    draw_curves(&log.entries, &out.join("loss.png"), NOTE)?;
    Ok(Summary { iteration: trainer.iteration, ending, last, best, skipped, output: out })
}

/// The generator's total loss over the last [`RECENT`] iterations.
#[derive(Default)]
struct RecentLoss(std::collections::VecDeque<f64>);

impl RecentLoss {
    /// The loss that shows `report` diverged, if one does.
    fn diverged(&mut self, report: &StepReport) -> Option<String> {
        if let Some((name, _)) = report.losses.iter().find(|(_, v)| !v.is_finite()) {
            return Some(format!("`{name}` is not finite"));
        }
        let total = report.losses.iter().find(|(n, _)| n == "g_total")?.1;
        if self.0.len() == RECENT {
            let mut sorted: Vec<f64> = self.0.iter().copied().collect();
            sorted.sort_by(f64::total_cmp);
            let median = sorted[RECENT / 2];
            if total > BLOWN_UP * median {
                return Some(format!("`g_total` {total:.3e} is over {BLOWN_UP} times its recent median {median:.3e}"));
            }
            self.0.pop_front();
        }
        self.0.push_back(total);
        None
    }
}

/// Said on every training picture: until a model is trained on real data at scale, what it
/// restores is not a real restoration.
const NOTE: &str = "(small data: not a usable model)";

#[allow(clippy::too_many_arguments)]
fn validate(
    v: &Validation,
    trainer: &Trainer,
    out: &Path,
    log: &mut Log,
    best: &mut Option<(u64, f64, f64)>,
    seconds: f64,
    skipped: u64,
    progress: &dyn Progress,
) -> Result<()> {
    let it = trainer.iteration;
    let report = v.run(trainer, &out.join("val").join(format!("iter_{it:08}")))?;
    let val = report
        .means
        .iter()
        .map(|(m, s)| {
            let metrics = crate::eval::METRICS.iter().zip(s.values()).filter(|(_, v)| v.is_finite());
            (m.clone(), metrics.map(|((k, _), v)| (k.to_string(), v)).collect())
        })
        .collect();
    let (net, bicubic) = (report.means[0].1.psnr, report.means[1].1.psnr);
    progress.message(&format!("validation at {it}: PSNR {net:.2} dB (bicubic {bicubic:.2})"));
    log.push(Entry { iteration: it, seconds, losses: Default::default(), lr_g: None, val, skipped })?;
    if best.is_none_or(|(_, b, _)| net > b) {
        *best = Some((it, net, bicubic));
        let path = out.join("net_g_best.safetensors");
        save_tensors(&trainer.ema_checkpoint()?.tensors, &path)?;
    }
    Ok(())
}

fn best_so_far(log: &Log) -> Option<(u64, f64, f64)> {
    let psnr = |e: &Entry, m: &str| e.val.get(m).and_then(|v| v.get("psnr")).copied();
    log.entries
        .iter()
        .filter_map(|e| Some((e.iteration, psnr(e, METHODS[0])?, psnr(e, METHODS[1])?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(iteration: u64, g_total: f64) -> StepReport {
        StepReport { iteration, losses: vec![("l1".into(), 0.1), ("g_total".into(), g_total)], skipped: vec![] }
    }

    #[test]
    fn a_blown_up_or_non_finite_loss_is_divergence_and_a_noisy_one_is_not() {
        let mut recent = RecentLoss::default();
        // Healthy noise, then a spike within the factor: not divergence.
        for i in 0..RECENT as u64 {
            assert_eq!(recent.diverged(&report(i, 0.5 + (i % 5) as f64 * 0.3)), None);
        }
        assert_eq!(recent.diverged(&report(100, 50.0)), None);
        let why = recent.diverged(&report(101, 4142.0)).expect("blown up");
        assert!(why.contains("g_total"), "{why}");
        let mut fresh = RecentLoss::default();
        assert!(fresh.diverged(&report(1, f64::NAN)).unwrap().contains("g_total"));
        // Before the window is full nothing is judged by size.
        assert_eq!(fresh.diverged(&report(2, 1e9)), None);
    }
}
