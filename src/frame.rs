//! The frame: interleaved RGB in f32 on the 0..255 scale, as every step of the face pipeline
//! sees it, with its conversions to and from 8-bit and packed video pixels, image files, and
//! drawing. (To and from the network's tensors: `restore::batch`.)

use std::path::Path;

use crate::error::{Error, Result, first_line};
use crate::files::write_atomically;

/// Largest width or height [`Rgb::open`] decodes (strict: checked on the declared size).
pub const MAX_SIDE: u32 = 16384;
/// Most bytes a decoder may allocate in [`Rgb::open`] (the `image` crate's default, made
/// explicit: the frame then takes 4x that again as f32).
pub const MAX_DECODE_BYTES: u64 = 512 << 20;

/// An interleaved RGB image, `h x w x 3`, values on the 0..255 scale (not rounded).
#[derive(Debug, Clone, PartialEq)]
pub struct Rgb {
    pub w: usize,
    pub h: usize,
    pub data: Vec<f32>,
}

/// How 8-bit pixels are laid out in a plain buffer (the tests' way to build frames; video
/// frames come through [`PackedLayout`]).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelLayout {
    Rgb,
    Rgba,
    Gray,
}

#[cfg(test)]
impl PixelLayout {
    pub fn channels(self) -> usize {
        match self {
            PixelLayout::Rgb => 3,
            PixelLayout::Rgba => 4,
            PixelLayout::Gray => 1,
        }
    }
}

/// Rec. 601 luma of an RGB pixel.
pub fn luma(p: &[f32]) -> f32 {
    0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

/// Rounds to the nearest 8-bit value, clamping out-of-range values.
pub fn to_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

/// Where red, green and blue sit in a packed 8-bit frame (RGBx, BGRA, xRGB, ... all fit), with
/// rows `row_stride` bytes apart: the layout of a mapped video frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedLayout {
    pub pixel_stride: usize,
    /// Byte offsets of R, G and B inside a pixel.
    pub offsets: [usize; 3],
    pub row_stride: usize,
}

impl PackedLayout {
    /// Plain RGB rows of `w` pixels, nothing between them (an image file's or a tensor's).
    pub fn rgb(w: usize) -> Self {
        Self { pixel_stride: 3, offsets: [0, 1, 2], row_stride: 3 * w }
    }

    fn check(&self, len: usize, w: usize, h: usize) -> Result<()> {
        let row = w * self.pixel_stride;
        let fits = self.offsets.iter().all(|&o| o < self.pixel_stride) && self.row_stride >= row;
        if !fits || h == 0 || w == 0 || len < (h - 1) * self.row_stride + row {
            return Err(Error::Input(format!("a {w}x{h} frame does not fit {len} bytes laid out as {self:?}")));
        }
        Ok(())
    }
}

impl Rgb {
    pub fn new(w: usize, h: usize) -> Self {
        Self { w, h, data: vec![0.0; w * h * 3] }
    }

    #[cfg(test)]
    /// From 8-bit pixels (gray is replicated to three channels, alpha is ignored).
    pub fn from_u8(pixels: &[u8], w: usize, h: usize, layout: PixelLayout) -> Result<Self> {
        let ch = layout.channels();
        if pixels.len() != w * h * ch {
            return Err(Error::Input(format!("{w}x{h} {layout:?} needs {} bytes, got {}", w * h * ch, pixels.len())));
        }
        let data = pixels
            .chunks_exact(ch)
            .flat_map(|p| match layout {
                PixelLayout::Gray => [p[0]; 3],
                _ => [p[0], p[1], p[2]],
            })
            .map(f32::from)
            .collect();
        Ok(Self { w, h, data })
    }

    /// Mirrored left to right.
    pub fn flipped_horizontally(&self) -> Rgb {
        let mut data = Vec::with_capacity(self.data.len());
        for row in self.data.chunks_exact(self.w * 3) {
            data.extend(row.chunks_exact(3).rev().flatten());
        }
        Rgb { w: self.w, h: self.h, data }
    }

    /// Resized with a triangle (bilinear) filter, through 8 bits.
    pub fn resized(&self, w: usize, h: usize) -> Rgb {
        self.resized_with(w, h, image::imageops::FilterType::Triangle)
    }

    /// Resized with `filter`, through 8 bits.
    pub fn resized_with(&self, w: usize, h: usize, filter: image::imageops::FilterType) -> Rgb {
        Rgb::from_rgb8(&image::imageops::resize(&self.to_rgb8(), w as u32, h as u32, filter))
    }

    /// From a packed 8-bit frame (padding and any alpha channel are ignored).
    pub fn from_packed(bytes: &[u8], w: usize, h: usize, layout: &PackedLayout) -> Result<Self> {
        layout.check(bytes.len(), w, h)?;
        let mut data = Vec::with_capacity(w * h * 3);
        for row in bytes.chunks(layout.row_stride).take(h) {
            for p in row[..w * layout.pixel_stride].chunks_exact(layout.pixel_stride) {
                data.extend(layout.offsets.map(|o| f32::from(p[o])));
            }
        }
        Ok(Self { w, h, data })
    }

    /// Writes rows `rows` of the colour back into a packed 8-bit frame, rounding and clamping;
    /// the other bytes (padding, alpha, other rows) are left as they are.
    pub fn write_packed(&self, bytes: &mut [u8], layout: &PackedLayout, rows: std::ops::Range<usize>) -> Result<()> {
        layout.check(bytes.len(), self.w, self.h)?;
        for y in rows.start..rows.end.min(self.h) {
            let row = &mut bytes[y * layout.row_stride..][..self.w * layout.pixel_stride];
            let src = &self.data[y * self.w * 3..][..self.w * 3];
            for (p, c) in row.chunks_exact_mut(layout.pixel_stride).zip(src.chunks_exact(3)) {
                layout.offsets.iter().zip(c).for_each(|(&o, &v)| p[o] = to_u8(v));
            }
        }
        Ok(())
    }

    #[cfg(test)]
    /// Writes the colour back into 8-bit pixels of the given layout, rounding and clamping;
    /// alpha is left as it is, gray gets the Rec. 601 luma.
    pub fn write_u8(&self, pixels: &mut [u8], layout: PixelLayout) -> Result<()> {
        let ch = layout.channels();
        if pixels.len() != self.w * self.h * ch {
            return Err(Error::Input(format!("buffer of {} bytes for a {}x{} image", pixels.len(), self.w, self.h)));
        }
        for (dst, src) in pixels.chunks_exact_mut(ch).zip(self.data.chunks_exact(3)) {
            match layout {
                PixelLayout::Gray => dst[0] = to_u8(luma(src)),
                _ => dst[..3].iter_mut().zip(src).for_each(|(d, s)| *d = to_u8(*s)),
            }
        }
        Ok(())
    }

    /// Decodes a PNG, JPEG or WebP file (the format by extension). The file is not trusted: its
    /// declared size is checked against [`MAX_SIDE`] and [`MAX_DECODE_BYTES`] before the decoder
    /// allocates, and an image without pixels is an error.
    pub fn open(path: &Path) -> Result<Self> {
        let reader = image::ImageReader::open(path).map_err(|e| Error::io(path, e))?;
        Self::decode_with(reader, path, MAX_SIDE)
    }

    /// Decodes a PNG, JPEG or WebP image held in memory (the format from its first bytes), with
    /// the checks of `open` but sides of at most `max_side`; errors name the image `what`.
    pub fn decode(bytes: &[u8], what: &str, max_side: u32) -> Result<Self> {
        let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::format(what, format!("cannot read image: {e}")))?;
        Self::decode_with(reader, Path::new(what), max_side.min(MAX_SIDE))
    }

    fn decode_with<R: std::io::BufRead + std::io::Seek>(
        mut reader: image::ImageReader<R>,
        path: &Path,
        max_side: u32,
    ) -> Result<Self> {
        let decode_error = |e| match e {
            image::ImageError::IoError(io) => Error::io(path, io),
            other => Error::format(path, format!("cannot decode image: {}", first_line(&other))),
        };
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(max_side);
        limits.max_image_height = Some(max_side);
        limits.max_alloc = Some(MAX_DECODE_BYTES);
        reader.limits(limits);
        let img = reader.decode().map_err(decode_error)?;
        if img.width() == 0 || img.height() == 0 {
            return Err(Error::format(path, format!("image has no pixels ({}x{})", img.width(), img.height())));
        }
        Ok(Self::from_rgb8(&img.to_rgb8()))
    }

    /// The image as PNG bytes.
    pub fn encode_png(&self) -> Result<Vec<u8>> {
        let mut out = std::io::Cursor::new(Vec::new());
        self.to_rgb8()
            .write_to(&mut out, image::ImageFormat::Png)
            .map_err(|e| Error::Input(format!("cannot encode PNG: {e}")))?;
        Ok(out.into_inner())
    }

    /// Encodes as PNG or JPEG (by extension), atomically ([`write_atomically`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        let format =
            image::ImageFormat::from_path(path).map_err(|e| Error::format(path, format!("cannot write image: {e}")))?;
        let img = self.to_rgb8();
        write_atomically(path, |tmp| {
            img.save_with_format(tmp, format).map_err(|e| Error::format(path, format!("cannot write image: {e}")))
        })
    }

    pub fn from_rgb8(img: &image::RgbImage) -> Self {
        let data = img.as_raw().iter().map(|&v| f32::from(v)).collect();
        Self { w: img.width() as usize, h: img.height() as usize, data }
    }

    /// Rounded and clamped to 8 bits.
    pub fn to_rgb8(&self) -> image::RgbImage {
        let bytes = self.data.iter().map(|&v| to_u8(v)).collect();
        image::RgbImage::from_raw(self.w as u32, self.h as u32, bytes).expect("w * h * 3 values")
    }

    /// Draws an axis-aligned rectangle outline (clipped to the image).
    pub fn draw_box(&mut self, x: f32, y: f32, w: f32, h: f32, color: [f32; 3], thickness: usize) {
        let (x0, y0) = (x.round() as isize, y.round() as isize);
        let (x1, y1) = ((x + w).round() as isize, (y + h).round() as isize);
        for t in 0..thickness as isize {
            for xx in x0..=x1 {
                self.put(xx, y0 + t, color);
                self.put(xx, y1 - t, color);
            }
            for yy in y0..=y1 {
                self.put(x0 + t, yy, color);
                self.put(x1 - t, yy, color);
            }
        }
    }

    /// Draws a filled square dot of radius `r` around a point.
    pub fn draw_dot(&mut self, [x, y]: [f32; 2], r: isize, color: [f32; 3]) {
        let (cx, cy) = (x.round() as isize, y.round() as isize);
        for yy in cy - r..=cy + r {
            for xx in cx - r..=cx + r {
                self.put(xx, yy, color);
            }
        }
    }

    fn put(&mut self, x: isize, y: isize, color: [f32; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.data[i..i + 3].copy_from_slice(&color);
        }
    }

    pub fn pixel(&self, x: usize, y: usize) -> &[f32] {
        let i = (y * self.w + x) * 3;
        &self.data[i..i + 3]
    }

    /// Bilinear sample at a continuous position (pixel centres at integer coordinates); outside
    /// the image the nearest edge pixel is used.
    pub fn sample(&self, x: f32, y: f32) -> [f32; 3] {
        let x = x.clamp(0.0, (self.w - 1) as f32);
        let y = y.clamp(0.0, (self.h - 1) as f32);
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(self.w - 1), (y0 + 1).min(self.h - 1));
        let (fx, fy) = (x - x0 as f32, y - y0 as f32);
        let (a, b, c, d) = (self.pixel(x0, y0), self.pixel(x1, y0), self.pixel(x0, y1), self.pixel(x1, y1));
        std::array::from_fn(|k| {
            let top = a[k] + (b[k] - a[k]) * fx;
            let bottom = c[k] + (d[k] - c[k]) * fx;
            top + (bottom - top) * fy
        })
    }
}

impl Rgb {
    /// Bicubic (Catmull-Rom) sample at a continuous position, clamped to 0..255; outside the
    /// image the nearest edge pixel is used. Sharper than [`Rgb::sample`] where a few pixels
    /// are enlarged many times.
    pub fn sample_cubic(&self, x: f32, y: f32) -> [f32; 3] {
        let (fx, fy) = (x.floor(), y.floor());
        let (wx, wy) = (catmull_rom(x - fx), catmull_rom(y - fy));
        let clamp = |v: f32, n: usize| (v.max(0.0) as usize).min(n - 1);
        let mut acc = [0.0f32; 3];
        for (j, wy) in wy.iter().enumerate() {
            let sy = clamp(fy + j as f32 - 1.0, self.h);
            for (i, wx) in wx.iter().enumerate() {
                let p = self.pixel(clamp(fx + i as f32 - 1.0, self.w), sy);
                let w = wx * wy;
                acc.iter_mut().zip(p).for_each(|(a, v)| *a += w * v);
            }
        }
        acc.map(|v| v.clamp(0.0, 255.0))
    }
}

/// The four Catmull-Rom weights for the pixels at -1, 0, 1, 2 from the one below `t`.
fn catmull_rom(t: f32) -> [f32; 4] {
    let (t2, t3) = (t * t, t * t * t);
    [0.5 * (-t3 + 2.0 * t2 - t), 0.5 * (3.0 * t3 - 5.0 * t2 + 2.0), 0.5 * (-3.0 * t3 + 4.0 * t2 + t), 0.5 * (t3 - t2)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubic_samples_hit_pixels_and_keep_ramps() {
        let mut img = Rgb::new(6, 5);
        for (i, p) in img.data.chunks_exact_mut(3).enumerate() {
            let (x, y) = ((i % 6) as f32, (i / 6) as f32);
            p.copy_from_slice(&[10.0 * x + y, 20.0 * y, 7.0]);
        }
        assert_eq!(img.sample_cubic(3.0, 2.0), [32.0, 40.0, 7.0], "on a pixel: the pixel");
        let s = img.sample_cubic(2.25, 1.5);
        let want = [24.0, 30.0, 7.0];
        assert!(s.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-4), "a ramp stays a ramp: {s:?}");
    }

    #[test]
    fn rgba_keeps_alpha_and_gray_replicates() {
        let rgba = [10u8, 20, 30, 77, 200, 100, 0, 255];
        let img = Rgb::from_u8(&rgba, 2, 1, PixelLayout::Rgba).unwrap();
        assert_eq!(img.data, vec![10.0, 20.0, 30.0, 200.0, 100.0, 0.0]);
        let mut out = rgba;
        let mut brighter = img.clone();
        brighter.data.iter_mut().for_each(|v| *v += 300.0);
        brighter.write_u8(&mut out, PixelLayout::Rgba).unwrap();
        assert_eq!(out, [255, 255, 255, 77, 255, 255, 255, 255]);
        let gray = Rgb::from_u8(&[0, 128], 2, 1, PixelLayout::Gray).unwrap();
        assert_eq!(gray.pixel(1, 0), &[128.0, 128.0, 128.0]);
        let mut g = [0u8; 2];
        gray.write_u8(&mut g, PixelLayout::Gray).unwrap();
        assert_eq!(g, [0, 128]);
    }

    #[test]
    fn wrong_buffer_sizes_are_errors() {
        assert!(Rgb::from_u8(&[0; 5], 2, 1, PixelLayout::Rgb).is_err());
        assert!(Rgb::new(2, 2).write_u8(&mut [0; 3], PixelLayout::Rgb).is_err());
    }

    #[test]
    fn packed_frames_with_padding_and_swapped_channels_round_trip() {
        // 2x2 xBGR with 4 bytes of row padding.
        let layout = PackedLayout { pixel_stride: 4, offsets: [3, 2, 1], row_stride: 12 };
        let bytes: Vec<u8> = (0..24u8).collect();
        let img = Rgb::from_packed(&bytes, 2, 2, &layout).unwrap();
        assert_eq!(img.pixel(0, 0), &[3.0, 2.0, 1.0]);
        assert_eq!(img.pixel(1, 1), &[19.0, 18.0, 17.0]);
        let mut out = vec![99u8; 24];
        img.write_packed(&mut out, &layout, 1..2).unwrap();
        assert!(out[..12].iter().all(|&b| b == 99), "rows outside the range are untouched");
        assert_eq!(&out[12..20], &[99, 13, 14, 15, 99, 17, 18, 19]);
        assert!(out[20..].iter().all(|&b| b == 99), "padding is untouched");
        assert!(Rgb::from_packed(&bytes[..19], 2, 2, &layout).is_err());
        let bad = PackedLayout { pixel_stride: 3, offsets: [0, 1, 3], row_stride: 6 };
        assert!(Rgb::from_packed(&bytes, 2, 2, &bad).is_err());
    }
}
