//! What a training run leaves for people to look at: `train.jsonl` (one JSON object per logged
//! iteration or validation) and `loss.png` (the loss curves and validation PSNR against the
//! bicubic baseline, redrawn as training goes).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::Rgb;

/// One line of `train.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub iteration: u64,
    /// Seconds of training so far (across resumes).
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub losses: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_g: Option<f64>,
    /// Validation means per method (`gfpgan`, `bicubic`, `input`) and metric.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub val: BTreeMap<String, BTreeMap<String, f64>>,
    /// Faces skipped so far (unreadable or of the wrong size).
    #[serde(default)]
    pub skipped: u64,
}

/// The run's history: kept in memory for the curve, appended to `train.jsonl`.
pub struct Log {
    path: PathBuf,
    pub entries: Vec<Entry>,
}

impl Log {
    /// Opens `dir/train.jsonl`, keeping the entries up to `up_to` (a resumed run drops what
    /// was logged after its checkpoint, since it trains those iterations again).
    pub fn open(dir: &Path, up_to: u64) -> Result<Self> {
        let path = dir.join("train.jsonl");
        let mut entries = Vec::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            entries = text.lines().filter_map(|l| serde_json::from_str::<Entry>(l).ok()).collect();
            entries.retain(|e| e.iteration <= up_to);
        }
        let log = Self { path, entries };
        log.rewrite()?;
        Ok(log)
    }

    fn rewrite(&self) -> Result<()> {
        let text: String = self.entries.iter().map(|e| serde_json::to_string(e).unwrap_or_default() + "\n").collect();
        std::fs::write(&self.path, text).map_err(|e| Error::io(&self.path, e))
    }

    pub fn push(&mut self, entry: Entry) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        writeln!(f, "{}", serde_json::to_string(&entry).unwrap_or_default()).map_err(|e| Error::io(&self.path, e))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Seconds trained by the last entry (where a resumed run's clock continues).
    pub fn seconds(&self) -> f64 {
        self.entries.last().map_or(0.0, |e| e.seconds)
    }
}

/// The loss terms drawn, in this order (those the run has).
const CURVES: [&str; 9] = ["l1", "pyramid", "g_gan", "comp_gan", "comp_style", "identity", "d_gan", "d_r1", "g_total"];
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 480;

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // ab_glyph draws text only with fonts registered by the program: DejaVu Sans, embedded, so
    // the picture has labels on any machine.
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Draws `loss.png`: losses (log scale) on the left, validation PSNR on the right.
pub fn draw_curves(entries: &[Entry], path: &Path, note: &str) -> Result<()> {
    register_font();
    let mut buf = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    draw(entries, &mut buf, note).map_err(|e| Error::format(path, format!("cannot draw the loss curve: {e}")))?;
    let data = buf.iter().map(|&v| v as f32).collect();
    let img = Rgb { w: WIDTH as usize, h: HEIGHT as usize, data };
    img.save(path)
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw(entries: &[Entry], buf: &mut [u8], note: &str) -> DrawResult {
    let root = BitMapBackend::with_buffer(buf, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(WIDTH * 3 / 5);
    let last = entries.iter().map(|e| e.iteration).max().unwrap_or(1).max(1);

    let series: Vec<(&str, Vec<(u64, f64)>)> = CURVES
        .iter()
        .map(|&name| {
            let pts = entries
                .iter()
                .filter_map(|e| e.losses.get(name).filter(|v| v.is_finite() && **v > 0.0).map(|v| (e.iteration, *v)))
                .collect::<Vec<_>>();
            (name, pts)
        })
        .filter(|(_, pts)| !pts.is_empty())
        .collect();
    let values = series.iter().flat_map(|(_, p)| p.iter().map(|(_, v)| *v));
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo <= hi { (lo / 1.5, hi * 1.5) } else { (1e-3, 1.0) };
    let mut chart = ChartBuilder::on(&left)
        .caption(format!("training losses {note}"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0u64..last, (lo..hi).log_scale())?;
    chart.configure_mesh().x_desc("iteration").y_desc("loss (weighted)").draw()?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;

    let val: Vec<(u64, f64, f64)> = entries
        .iter()
        .filter_map(|e| {
            let psnr = |m: &str| e.val.get(m).and_then(|v| v.get("psnr")).copied();
            Some((e.iteration, psnr("gfpgan")?, psnr("bicubic")?))
        })
        .collect();
    let (vlo, vhi) = val.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &(_, a, b)| (lo.min(a.min(b)), hi.max(a.max(b))));
    let (vlo, vhi) = if vlo <= vhi { (vlo - 1.0, vhi + 1.0) } else { (0.0, 40.0) };
    let mut chart = ChartBuilder::on(&right)
        .caption("validation PSNR (dB)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(50)
        .build_cartesian_2d(0u64..last, vlo..vhi)?;
    chart.configure_mesh().x_desc("iteration").draw()?;
    let net = RGBColor(200, 30, 30);
    chart
        .draw_series(LineSeries::new(val.iter().map(|&(i, a, _)| (i, a)), net.stroke_width(2)).point_size(3))?
        .label("network (EMA)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], net.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(val.iter().map(|&(i, _, b)| (i, b)), BLUE.stroke_width(2)).point_size(3))?
        .label("bicubic baseline")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.stroke_width(2)));
    chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}
