//! Step (video): where a detection pass looks for faces. The detector's window is 40 px, so a
//! 16 px face is only found in a copy of the picture upscaled 2.5x: 6x the pixels, 2-3 s for a
//! whole 720p frame on a 2-core CPU, far too slow for every pass. So a pass looks only where
//! faces can be, in windows, each with the face sizes looked for in it:
//! - around every tracked face (to confirm it and follow its size),
//! - where the picture changed (a background model, [`super::motion`]: people move into view),
//! - a share of a rolling scan of the whole frame (faces that stay still, a moving camera): the
//!   whole frame at a coarse scale for faces of 64 px and up, and overlapping tiles at the fine
//!   scale for the smaller ones, a few tiles per pass, so a still face is found within seconds;
//!
//! all inside the user's region of interest. The windows of a pass are detected in parallel
//! (`detect::detect_windows`).

use super::detect::{Detection, NATIVE_MIN_FACE};
use super::motion::BackgroundModel;
use crate::error::{Error, Result};
use crate::frame::Rgb;

/// A rectangle of whole pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

impl Rect {
    pub fn of_frame(frame: &Rgb) -> Self {
        Self { x: 0, y: 0, w: frame.w, h: frame.h }
    }

    pub fn area(&self) -> usize {
        self.w * self.h
    }

    pub fn intersect(&self, o: &Rect) -> Option<Rect> {
        let (x0, y0) = (self.x.max(o.x), self.y.max(o.y));
        let (x1, y1) = ((self.x + self.w).min(o.x + o.w), (self.y + self.h).min(o.y + o.h));
        (x1 > x0 && y1 > y0).then(|| Rect { x: x0, y: y0, w: x1 - x0, h: y1 - y0 })
    }

    /// The square of side `side` centred at `(cx, cy)`, inside `bounds`.
    fn square(cx: f32, cy: f32, side: f32, bounds: &Rect) -> Option<Rect> {
        let (x0, y0) = ((cx - side / 2.0).max(0.0) as usize, (cy - side / 2.0).max(0.0) as usize);
        let (x1, y1) = ((cx + side / 2.0).max(0.0).ceil() as usize, (cy + side / 2.0).max(0.0).ceil() as usize);
        Rect { x: x0, y: y0, w: x1.saturating_sub(x0), h: y1.saturating_sub(y0) }.intersect(bounds)
    }

    fn padded(&self, pad: usize, bounds: &Rect) -> Option<Rect> {
        let (x, y) = (self.x.saturating_sub(pad), self.y.saturating_sub(pad));
        Rect { x, y, w: self.x + self.w + pad - x, h: self.y + self.h + pad - y }.intersect(bounds)
    }

    pub fn contains(&self, [x, y]: [f32; 2]) -> bool {
        x >= self.x as f32 && y >= self.y as f32 && x < (self.x + self.w) as f32 && y < (self.y + self.h) as f32
    }

    /// `"x,y,width,height"` in pixels; an empty string is no rectangle.
    pub fn parse(text: &str) -> Result<Option<Rect>> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let bad = || {
            Error::Input(format!(
                "region {text:?} is not \"x,y,width,height\" in whole pixels, width and height above 0"
            ))
        };
        let v: Vec<usize> = text.split(',').map(|p| p.trim().parse().map_err(|_| bad())).collect::<Result<_>>()?;
        match v[..] {
            [x, y, w, h] if w > 0 && h > 0 && x.checked_add(w).is_some() && y.checked_add(h).is_some() => {
                Ok(Some(Rect { x, y, w, h }))
            }
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Rect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{},{}", self.x, self.y, self.w, self.h)
    }
}

/// Why a window is searched (for statistics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Track,
    Motion,
    Scan,
}

/// One detector run: a part of the frame and the face sizes looked for in it (the detector
/// works on the part resized so that `min_face` fills its 40 px window: up for small faces,
/// down for large ones).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub rect: Rect,
    pub min_face: f32,
    /// Larger faces are not looked for (`None`: up to the window's size).
    pub max_face: Option<f32>,
    pub kind: WindowKind,
}

impl Window {
    /// Pixels the detector's first pyramid level holds: the window's cost.
    pub fn cost(&self) -> f64 {
        let s = f64::from(NATIVE_MIN_FACE / self.min_face);
        self.rect.area() as f64 * s * s
    }
}

/// Faces at least this large are found by the rolling scan's coarse pass over the whole frame;
/// smaller ones by its tiles, which overlap by this much so that each such face lies whole in
/// one tile.
pub const COARSE_MIN_FACE: f32 = 64.0;
/// Side of a scan tile after the detector's resize, pixels.
const TILE_SIDE_SCALED: f32 = 800.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchOptions {
    /// Look only inside this rectangle (`None`: the whole frame).
    pub region: Option<Rect>,
    /// Pixels (at the detector's scale) the rolling scan spends per pass on average (a window
    /// larger than this waits a few passes for its turn).
    pub scan_budget: f64,
    /// Every pass detects the whole frame at the smallest face size (the simple way: slow for
    /// small faces, for comparison and for cameras whose whole picture moves all the time).
    pub full_frame: bool,
}

impl SearchOptions {
    pub const DEFAULT: SearchOptions = SearchOptions { region: None, scan_budget: 300_000.0, full_frame: false };
}

impl Default for SearchOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The state of the search between passes: the background and where the rolling scan is.
#[derive(Debug, Clone, Default)]
pub struct FaceSearch {
    motion: BackgroundModel,
    scan: Vec<Window>,
    /// The area (frame within the region) and face size `scan` was made for.
    scan_for: Option<(Rect, u32)>,
    next_scan: usize,
    /// Pixels the scan may still spend: each pass adds its budget, each scan window costs its
    /// pixels, so windows larger than a pass's budget are taken every few passes and the
    /// average stays at the budget.
    credit: f64,
    /// Passes since the start or the last reset.
    passes: u64,
}

/// The first pass of a stream scans this many budgets' worth: small frames are then searched
/// whole from the first frame on, large ones get a head start.
const FIRST_PASS_BUDGETS: f64 = 4.0;
/// After the first pass, a scan of the whole frame takes at least this many passes.
const MIN_SCAN_PASSES: f64 = 8.0;

impl FaceSearch {
    /// Starts over (a new stream or a seek).
    pub fn reset(&mut self) {
        self.motion.reset();
        self.next_scan = 0;
        self.credit = 0.0;
        self.passes = 0;
    }

    /// The windows of this pass over `frame`, given the boxes of the faces tracked so far.
    pub fn plan(&mut self, frame: &Rgb, tracks: &[Detection], min_face: f32, opts: &SearchOptions) -> Vec<Window> {
        let Some(area) = opts.region.map_or(Some(Rect::of_frame(frame)), |r| r.intersect(&Rect::of_frame(frame)))
        else {
            return Vec::new();
        };
        if opts.full_frame {
            return vec![Window { rect: area, min_face, max_face: None, kind: WindowKind::Scan }];
        }
        let mut windows: Vec<Window> = tracks
            .iter()
            .filter_map(|t| {
                let side = t.w.max(t.h);
                let [cx, cy] = t.center();
                let rect = Rect::square(cx, cy, 2.0 * side, &area)?;
                // The face may have come nearer or gone further since it was detected.
                Some(Window {
                    rect,
                    min_face: (0.6 * side).max(min_face),
                    max_face: Some(2.0 * side),
                    kind: WindowKind::Track,
                })
            })
            .collect();
        // Movement of a tracked face is already looked at in its track window.
        let tracked: Vec<Rect> = windows.iter().map(|w| w.rect).collect();
        for moved in self.motion.update(frame, &tracked) {
            let Some(rect) = moved.padded(min_face as usize, &area) else { continue };
            // A moving person's face is about a seventh of their height: in a large moving
            // area there is no need to look for the smallest faces.
            let min = min_face.max(rect.w.min(rect.h) as f32 / 6.0);
            windows.push(Window { rect, min_face: min, max_face: None, kind: WindowKind::Motion });
        }
        windows.extend(self.scan_share(area, min_face, opts.scan_budget));
        self.passes += 1;
        windows
    }

    /// The next windows of the rolling scan, `budget` pixels' worth on average, or an eighth of
    /// the scan when that is less (small frames are not searched over and over); the first pass
    /// gets [`FIRST_PASS_BUDGETS`] budgets.
    fn scan_share(&mut self, area: Rect, min_face: f32, budget: f64) -> Vec<Window> {
        let key = (area, min_face.to_bits());
        if self.scan_for != Some(key) {
            self.scan = scan_windows(area, min_face);
            self.scan_for = Some(key);
            self.next_scan = 0;
            self.credit = 0.0;
        }
        let whole: f64 = self.scan.iter().map(Window::cost).sum();
        self.credit += if self.passes == 0 { FIRST_PASS_BUDGETS * budget } else { budget.min(whole / MIN_SCAN_PASSES) };
        let mut share = Vec::new();
        while share.len() < self.scan.len() && self.scan[self.next_scan].cost() <= self.credit {
            let w = self.scan[self.next_scan];
            self.credit -= w.cost();
            share.push(w);
            self.next_scan = (self.next_scan + 1) % self.scan.len();
        }
        // Saved credit only ever waits for the next window: the first pass's rest is dropped,
        // and no more than the largest window is kept.
        let largest = self.scan.iter().map(Window::cost).fold(0.0, f64::max);
        self.credit = if self.passes == 0 { 0.0 } else { self.credit.min(largest) };
        share
    }
}

/// The whole rolling scan of `area`: the coarse window for faces of [`COARSE_MIN_FACE`] and up
/// (the whole area, or only it when `min_face` is that large), then overlapping tiles for the
/// smaller faces, row by row.
pub fn scan_windows(area: Rect, min_face: f32) -> Vec<Window> {
    let coarse = Window { rect: area, min_face: min_face.max(COARSE_MIN_FACE), max_face: None, kind: WindowKind::Scan };
    if min_face >= COARSE_MIN_FACE {
        return vec![coarse];
    }
    let overlap = COARSE_MIN_FACE as usize;
    let scale = NATIVE_MIN_FACE / min_face;
    let tile = ((TILE_SIDE_SCALED / scale) as usize).max(2 * overlap);
    // Along each axis the fewest tiles of at most `tile` pixels overlapping by `overlap`,
    // shrunk to fit the length exactly.
    let spans = |from: usize, len: usize| -> Vec<(usize, usize)> {
        if len <= tile {
            return vec![(from, len)];
        }
        let n = (len - overlap).div_ceil(tile - overlap);
        let side = (len + (n - 1) * overlap).div_ceil(n);
        (0..n).map(|i| (from + (i * (side - overlap)).min(len - side), side)).collect()
    };
    let mut windows = vec![coarse];
    for (y, h) in spans(area.y, area.h) {
        for (x, w) in spans(area.x, area.w) {
            windows.push(Window {
                rect: Rect { x, y, w, h },
                min_face,
                max_face: Some(COARSE_MIN_FACE),
                kind: WindowKind::Scan,
            });
        }
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_parse_or_say_why_not() {
        assert_eq!(Rect::parse("").unwrap(), None);
        assert_eq!(Rect::parse(" 10, 20,300,200 ").unwrap(), Some(Rect { x: 10, y: 20, w: 300, h: 200 }));
        for bad in ["10,20,300", "a,b,c,d", "0,0,0,10", "-1,0,10,10", "0,0,10,10,5"] {
            let e = Rect::parse(bad).unwrap_err().to_string();
            assert!(e.contains("x,y,width,height"), "{bad}: {e}");
        }
    }

    /// Every face between `min_face` and the coarse size lies whole inside one tile, and the
    /// tiles stay inside the area.
    #[test]
    fn the_scan_tiles_cover_the_area_with_enough_overlap() {
        for (area, min_face) in [
            (Rect { x: 0, y: 0, w: 1280, h: 720 }, 16.0),
            (Rect { x: 0, y: 0, w: 1920, h: 1080 }, 20.0),
            (Rect { x: 100, y: 50, w: 333, h: 97 }, 16.0),
        ] {
            let windows = scan_windows(area, min_face);
            assert_eq!(windows[0].rect, area, "the coarse window is the whole area");
            let tiles = &windows[1..];
            assert!(tiles.iter().all(|t| t.rect.intersect(&area) == Some(t.rect)), "{tiles:?}");
            let face = COARSE_MIN_FACE as usize;
            for y in (area.y..area.y + area.h.saturating_sub(face)).step_by(7) {
                for x in (area.x..area.x + area.w.saturating_sub(face)).step_by(7) {
                    let f = Rect { x, y, w: face.min(area.w), h: face.min(area.h) };
                    assert!(tiles.iter().any(|t| t.rect.intersect(&f) == Some(f)), "{f:?} in no tile of {area:?}");
                }
            }
        }
        assert_eq!(scan_windows(Rect { x: 0, y: 0, w: 640, h: 480 }, 80.0).len(), 1, "large faces: coarse only");
    }

    #[test]
    fn a_pass_looks_around_tracks_and_the_scan_spends_its_budget_on_average() {
        let frame = Rgb::new(1280, 720);
        let mut search = FaceSearch::default();
        let track = Detection { x: 600.0, y: 300.0, w: 20.0, h: 20.0, score: 5.0 };
        let opts = SearchOptions::DEFAULT;
        let all = scan_windows(Rect::of_frame(&frame), 16.0);
        let whole: f64 = all.iter().map(Window::cost).sum();
        let (mut scanned, mut spent) = (0, 0.0);
        for pass in 0..1000 {
            let windows = search.plan(&frame, &[track], 16.0, &opts);
            let tracks: Vec<_> = windows.iter().filter(|w| w.kind == WindowKind::Track).collect();
            assert_eq!(tracks.len(), 1);
            assert!(tracks[0].rect.contains([610.0, 310.0]) && tracks[0].rect.w == 40, "{:?}", tracks[0]);
            let scan: Vec<_> = windows.iter().filter(|w| w.kind == WindowKind::Scan).collect();
            assert!(pass > 0 || !scan.is_empty(), "the first pass scans");
            spent += scan.iter().map(|w| w.cost()).sum::<f64>();
            let allowed = (FIRST_PASS_BUDGETS + pass as f64) * opts.scan_budget;
            assert!(spent <= allowed + 1.0, "pass {pass}: spent {spent} of {allowed}");
            scanned += scan.len();
            if scanned >= all.len() {
                assert!(pass > 3, "a 720p frame at 16 px is not scanned in a few passes");
                assert!(spent >= whole - 1.0);
                return;
            }
        }
        panic!("the scan never came round");
    }

    #[test]
    fn a_small_frame_is_searched_whole_on_the_first_pass() {
        let frame = Rgb::new(480, 270);
        let mut search = FaceSearch::default();
        let first = search.plan(&frame, &[], 16.0, &SearchOptions::DEFAULT);
        assert_eq!(first, scan_windows(Rect::of_frame(&frame), 16.0));
        let second = search.plan(&frame, &[], 16.0, &SearchOptions::DEFAULT);
        assert!(second.len() < first.len(), "then a share per pass: {second:?}");
    }

    #[test]
    fn a_region_bounds_every_window() {
        let frame = Rgb::new(640, 360);
        let region = Rect { x: 320, y: 0, w: 320, h: 180 };
        let opts = SearchOptions { region: Some(region), ..SearchOptions::DEFAULT };
        let mut search = FaceSearch::default();
        let track = Detection { x: 310.0, y: 100.0, w: 30.0, h: 30.0, score: 5.0 };
        for _ in 0..5 {
            for w in search.plan(&frame, &[track], 16.0, &opts) {
                assert_eq!(w.rect.intersect(&region), Some(w.rect), "{w:?}");
            }
        }
        let outside = SearchOptions { region: Some(Rect { x: 700, y: 0, w: 10, h: 10 }), ..opts };
        assert!(search.plan(&frame, &[], 16.0, &outside).is_empty());
    }
}
