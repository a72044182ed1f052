//! The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012): a low-pass filter whose cutoff
//! rises with speed, so still landmarks stop jittering while moving ones do not lag.

use std::f32::consts::PI;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneEuro {
    /// Cutoff frequency at rest, Hz: lower removes more jitter.
    pub min_cutoff: f32,
    /// How fast the cutoff rises with speed (per unit of scaled speed).
    pub beta: f32,
    /// Cutoff of the speed estimate itself, Hz.
    pub d_cutoff: f32,
    state: Option<(f32, f32)>,
}

fn alpha(cutoff: f32, dt: f32) -> f32 {
    let tau = 1.0 / (2.0 * PI * cutoff);
    1.0 / (1.0 + tau / dt)
}

impl OneEuro {
    pub fn new(min_cutoff: f32, beta: f32) -> Self {
        Self { min_cutoff, beta, d_cutoff: 1.0, state: None }
    }

    /// Filters the next sample, `dt` seconds after the previous one. `speed_scale` divides the
    /// speed before `beta` applies (a face's size, so that the filter behaves alike for near
    /// and far faces).
    pub fn filter(&mut self, x: f32, dt: f32, speed_scale: f32) -> f32 {
        let Some((prev, prev_speed)) = self.state else {
            self.state = Some((x, 0.0));
            return x;
        };
        let dt = dt.max(1e-4);
        let speed = (x - prev) / dt;
        let speed = prev_speed + alpha(self.d_cutoff, dt) * (speed - prev_speed);
        let cutoff = self.min_cutoff + self.beta * speed.abs() / speed_scale.max(1e-6);
        let y = prev + alpha(cutoff, dt) * (x - prev);
        self.state = Some((y, speed));
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_shrinks_and_a_step_is_followed() {
        let mut f = OneEuro::new(1.0, 0.5);
        let noisy: Vec<f32> = (0..200).map(|i| 100.0 + if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let out: Vec<f32> = noisy.iter().map(|&x| f.filter(x, 1.0 / 30.0, 100.0)).collect();
        let late_jitter = out[150..].windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max);
        assert!(late_jitter < 0.5, "jitter of 2 px reduced to {late_jitter}");
        let mut f = OneEuro::new(1.0, 0.5);
        f.filter(0.0, 1.0 / 30.0, 100.0);
        let mut y = 0.0;
        for _ in 0..30 {
            y = f.filter(50.0, 1.0 / 30.0, 100.0);
        }
        assert!((y - 50.0).abs() < 1.0, "after a second the filter reaches the new position: {y}");
    }
}
