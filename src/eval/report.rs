//! The report of an evaluation: `metrics.json` (every face, every method), `report.md` (one
//! row per method, and whether the network beats the baselines) and `grid.png` (degraded |
//! restored | ground truth for a sample of faces).

use std::path::Path;

use serde::Serialize;

use super::{FaceScores, METHODS, METRICS, Scores};
use crate::error::{Error, Result};
use crate::files::write_atomically;
use crate::frame::Rgb;

/// What was evaluated and how; written at the top of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    pub weights: String,
    pub ground_truth: String,
    pub degraded: String,
    pub size: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub setup: Setup,
    /// Per method (in [`METHODS`] order), the mean over faces.
    pub means: Vec<(String, Scores)>,
    pub gt_niqe: f64,
    /// The metrics on which the network is not better than the better baseline.
    pub not_beaten: Vec<String>,
    pub faces: Vec<FaceScores>,
}

impl Report {
    pub fn new(setup: Setup, faces: Vec<FaceScores>) -> Self {
        let means: Vec<(String, Scores)> = METHODS
            .iter()
            .enumerate()
            .map(|(m, name)| (name.to_string(), Scores::mean(&faces.iter().map(|f| f.methods[m]).collect::<Vec<_>>())))
            .collect();
        let niqe: Vec<Scores> = faces.iter().map(|f| Scores { niqe: f.gt_niqe, ..f.methods[0] }).collect();
        let gt_niqe = Scores::mean(&niqe).niqe;
        let not_beaten = METRICS
            .iter()
            .enumerate()
            .filter(|&(k, &(_, higher))| {
                let ours = means[0].1.values()[k];
                let better = |a: f64, b: f64| if higher { a > b } else { a < b };
                // A metric not computed (NaN throughout) is no verdict either way.
                let measured = |v: f64| !v.is_nan();
                measured(ours)
                    && means[1..].iter().any(|(_, base)| measured(base.values()[k]) && !better(ours, base.values()[k]))
            })
            .map(|(_, (name, _))| name.to_string())
            .collect();
        Self { setup, means, gt_niqe, not_beaten, faces }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serialises")
    }

    /// The means as a markdown table, one row per method and one for the ground truth (also
    /// what `gfpgan eval` prints at the end).
    pub fn table(&self) -> String {
        let mut md = "| method | PSNR (dB) ↑ | SSIM ↑ | NIQE ↓ | deg_faceapi (°) ↓ | lmd_faceapi (px) ↓ | LPIPS ↓ |\n"
            .to_string();
        md += "|---|---|---|---|---|---|---|\n";
        for (name, m) in &self.means {
            let v = m.values();
            md += &format!(
                "| {name} | {} | {} | {} | {} | {} | {} |\n",
                fmt(v[0], 3),
                fmt(v[1], 4),
                fmt(v[2], 3),
                fmt(v[3], 2),
                fmt(v[4], 2),
                fmt(v[5], 4)
            );
        }
        md += &format!("| ground truth | inf | 1 | {} | 0 | 0 | 0 |\n", fmt(self.gt_niqe, 3));
        md
    }

    pub fn to_markdown(&self) -> String {
        let s = &self.setup;
        let mut md = format!(
            "# Face restoration report\n\nWeights: `{}`  \nGround truth: `{}` ({} faces at {}x{})  \nDegraded: {}\n\n",
            s.weights,
            s.ground_truth,
            self.faces.len(),
            s.size,
            s.size,
            s.degraded
        );
        md += &self.table();
        md += "\n";
        md += "gfpgan: the network's output; bicubic: the degraded face upscaled bicubically from its own \
               resolution; input: the degraded face as the network takes it. PSNR and SSIM on RGB as BasicSR \
               computes them; NIQE as BasicSR computes it; deg_faceapi and lmd_faceapi use face-api.js's \
               recognition and landmark nets (not ArcFace: not comparable with the paper's Deg. and LMD); \
               LPIPS (AlexNet, v0.1) only when its backbone is given (`--lpips-alexnet`), n/a otherwise.\n\n";
        if self.not_beaten.is_empty() {
            md += "**The network beats both baselines on every metric.**\n\n";
        } else {
            md += &format!(
                "**The network does not beat the baselines on: {}.** (A checkpoint with random weights restores \
                 nothing; a trained one should beat them.)\n\n",
                self.not_beaten.join(", ")
            );
        }
        md += "![degraded | restored | ground truth](grid.png)\n\n`grid.png`: each row one face: degraded (the network's input) | restored | ground truth.\n";
        md
    }

    /// Writes `metrics.json`, `report.md` and `grid.png` (from `rows`: degraded, restored,
    /// ground truth) into `dir`, each atomically.
    pub fn write(&self, dir: &Path, rows: &[[Rgb; 3]]) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let text = |name: &str, body: String| {
            let path = dir.join(name);
            write_atomically(&path, |tmp| std::fs::write(tmp, &body).map_err(|e| Error::io(&path, e)))
        };
        text("metrics.json", self.to_json())?;
        text("report.md", self.to_markdown())?;
        if !rows.is_empty() {
            grid(rows, GRID_CELL).save(&dir.join("grid.png"))?;
        }
        Ok(())
    }
}

fn fmt(v: f64, digits: usize) -> String {
    if v.is_nan() { "n/a".into() } else { format!("{v:.digits$}") }
}

/// Side of a face in the grid: large enough to judge detail, small enough for a screen.
pub const GRID_CELL: usize = 256;
const GAP: usize = 4;

/// The rows side by side, each face resized to `cell`, on a white background.
pub fn grid(rows: &[[Rgb; 3]], cell: usize) -> Rgb {
    let (w, h) = (3 * cell + 4 * GAP, rows.len() * (cell + GAP) + GAP);
    let mut out = Rgb { w, h, data: vec![255.0; w * h * 3] };
    for (r, row) in rows.iter().enumerate() {
        for (c, face) in row.iter().enumerate() {
            let img = if face.w == cell && face.h == cell { face.clone() } else { face.resized(cell, cell) };
            let (x0, y0) = (GAP + c * (cell + GAP), GAP + r * (cell + GAP));
            for y in 0..cell {
                let dst = ((y0 + y) * w + x0) * 3;
                out.data[dst..dst + cell * 3].copy_from_slice(&img.data[y * cell * 3..(y + 1) * cell * 3]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(psnr: f64, niqe: f64) -> Scores {
        Scores { psnr, ssim: 0.5, niqe, deg_faceapi: 10.0, lmd_faceapi: 2.0, lpips: f64::NAN }
    }

    #[test]
    fn a_network_worse_than_a_baseline_is_said_to_be() {
        let face = |ours: Scores| FaceScores {
            name: "a".into(),
            methods: [ours, scores(25.0, 6.0), scores(24.0, 7.0)],
            gt_niqe: 4.0,
        };
        let setup = Setup { weights: "w".into(), ground_truth: "gt".into(), degraded: "seed 1".into(), size: 64 };
        let good = Report::new(
            setup.clone(),
            vec![face(Scores { ssim: 0.9, deg_faceapi: 5.0, lmd_faceapi: 1.0, ..scores(30.0, 5.0) })],
        );
        assert!(good.not_beaten.is_empty(), "{:?}", good.not_beaten);
        assert!(good.to_markdown().contains("beats both baselines"));
        let bad = Report::new(
            setup,
            vec![face(Scores { ssim: 0.9, deg_faceapi: 5.0, lmd_faceapi: 1.0, ..scores(20.0, 6.5) })],
        );
        assert_eq!(bad.not_beaten, ["psnr", "niqe"]);
        assert!(bad.to_markdown().contains("does not beat the baselines on: psnr, niqe"));
    }

    #[test]
    fn the_grid_puts_each_face_in_its_cell() {
        let face = |v: f32| Rgb { w: 8, h: 8, data: vec![v; 8 * 8 * 3] };
        let g = grid(&[[face(10.0), face(20.0), face(30.0)]], 8);
        assert_eq!((g.w, g.h), (3 * 8 + 4 * GAP, 8 + 2 * GAP));
        let at = |x: usize, y: usize| g.data[(y * g.w + x) * 3];
        assert_eq!(
            [at(GAP, GAP), at(2 * GAP + 8, GAP), at(3 * GAP + 16, GAP + 7), at(0, 0)],
            [10.0, 20.0, 30.0, 255.0]
        );
    }
}
