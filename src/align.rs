//! Alignment to the FFHQ template: a least-squares similarity transform from five facial points
//! (eye centres, nose tip, mouth corners) to the template, and the bilinear warp it drives.

use crate::frame::Rgb;

/// The five FFHQ points of GFP-GAN's 512x512 template: left eye, right eye, nose tip, left and
/// right mouth corners (image left/right).
pub const FFHQ_512: [[f32; 2]; 5] = [
    [192.98138, 239.94708],
    [318.90277, 240.1936],
    [256.63416, 314.01935],
    [201.26117, 371.41043],
    [313.08905, 371.15118],
];

/// The template scaled to a face of `size` pixels.
pub fn template(size: usize) -> [[f32; 2]; 5] {
    let s = size as f32 / 512.0;
    FFHQ_512.map(|[x, y]| [x * s, y * s])
}

/// `p' = [a -b; b a] p + t`: rotation, uniform scale and translation, no reflection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    #[cfg(test)]
    const IDENTITY: Similarity = Similarity { a: 1.0, b: 0.0, tx: 0.0, ty: 0.0 };

    pub fn apply(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        [self.a * x - self.b * y + self.tx, self.b * x + self.a * y + self.ty]
    }

    pub fn scale(&self) -> f32 {
        self.a.hypot(self.b)
    }

    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Similarity { a, b, tx: -(a * self.tx - b * self.ty), ty: -(b * self.tx + a * self.ty) }
    }

    /// The similarity that maps `src` onto `dst` with the least squared error (closed form;
    /// computed in f64). `None` when the source points all coincide.
    pub fn estimate(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Option<Similarity> {
        assert_eq!(src.len(), dst.len());
        let n = src.len() as f64;
        let mean = |p: &[[f32; 2]]| {
            let (sx, sy) = p.iter().fold((0.0, 0.0), |(sx, sy), q| (sx + q[0] as f64, sy + q[1] as f64));
            (sx / n, sy / n)
        };
        let ((mx, my), (nx, ny)) = (mean(src), mean(dst));
        let (mut sxx, mut num_a, mut num_b) = (0.0, 0.0, 0.0);
        for (p, q) in src.iter().zip(dst) {
            let (x, y) = (p[0] as f64 - mx, p[1] as f64 - my);
            let (u, v) = (q[0] as f64 - nx, q[1] as f64 - ny);
            sxx += x * x + y * y;
            num_a += x * u + y * v;
            num_b += x * v - y * u;
        }
        if sxx < 1e-12 {
            return None;
        }
        let (a, b) = (num_a / sxx, num_b / sxx);
        let (tx, ty) = (nx - (a * mx - b * my), ny - (b * mx + a * my));
        Some(Similarity { a: a as f32, b: b as f32, tx: tx as f32, ty: ty as f32 })
    }
}

/// Samples `src` at `to_src(p)` for every pixel `p` of a `size x size` output (bilinear; outside
/// the source the nearest edge pixel, so faces at the frame border are not framed in black).
pub fn warp(src: &Rgb, to_src: &Similarity, size: usize) -> Rgb {
    warp_with(src, to_src, size, Rgb::sample)
}

/// [`warp`] with bicubic sampling ([`Rgb::sample_cubic`]), for enlarging small faces.
pub fn warp_cubic(src: &Rgb, to_src: &Similarity, size: usize) -> Rgb {
    warp_with(src, to_src, size, Rgb::sample_cubic)
}

fn warp_with(src: &Rgb, to_src: &Similarity, size: usize, sample: fn(&Rgb, f32, f32) -> [f32; 3]) -> Rgb {
    let mut out = Rgb::new(size, size);
    for y in 0..size {
        for x in 0..size {
            let [sx, sy] = to_src.apply([x as f32, y as f32]);
            let i = (y * size + x) * 3;
            out.data[i..i + 3].copy_from_slice(&sample(src, sx, sy));
        }
    }
    out
}

/// A face cut out of a frame: the aligned crop and the transform from frame to crop.
#[derive(Debug, Clone)]
pub struct AlignedFace {
    pub crop: Rgb,
    /// Frame coordinates to crop coordinates.
    pub to_crop: Similarity,
}

/// Aligns the face whose five points are `points` (frame coordinates, template order) to a
/// `size x size` crop. `None` for degenerate points.
pub fn align(frame: &Rgb, points: &[[f32; 2]; 5], size: usize) -> Option<AlignedFace> {
    let to_crop = Similarity::estimate(points, &template(size))?;
    Some(AlignedFace { crop: warp(frame, &to_crop.inverse(), size), to_crop })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_recovers_an_exact_similarity() {
        let t = Similarity { a: 0.8 * 0.3f32.cos(), b: 0.8 * 0.3f32.sin(), tx: 31.0, ty: -12.5 };
        let src = FFHQ_512;
        let dst = src.map(|p| t.apply(p));
        let e = Similarity::estimate(&src, &dst).unwrap();
        for (p, q) in src.iter().zip(&dst) {
            let r = e.apply(*p);
            assert!((r[0] - q[0]).abs() < 1e-3 && (r[1] - q[1]).abs() < 1e-3);
        }
        let back = e.inverse().apply(e.apply([10.0, 20.0]));
        assert!((back[0] - 10.0).abs() < 1e-3 && (back[1] - 20.0).abs() < 1e-3);
    }

    #[test]
    fn degenerate_points_give_none() {
        assert!(Similarity::estimate(&[[1.0, 1.0]; 5], &FFHQ_512).is_none());
    }

    #[test]
    fn warping_with_the_identity_copies() {
        let mut img = Rgb::new(8, 8);
        img.data.iter_mut().enumerate().for_each(|(i, v)| *v = (i * 7 % 251) as f32);
        assert_eq!(warp(&img, &Similarity::IDENTITY, 8), img);
    }

    #[test]
    fn the_template_scales_with_the_output_size() {
        assert_eq!(template(256)[2], [256.63416 / 2.0, 314.01935 / 2.0]);
    }
}
