//! The optimisation side of training: Adam as PyTorch computes it (its state saved and restored
//! for `--resume`), the multi-step learning-rate schedule, and the exponential moving average of
//! the generator.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};

use crate::error::{Error, Result};

/// Hyper-parameters of one Adam optimiser.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamParams {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

/// Adam without weight decay, step for step `torch.optim.Adam` (candle-nn's `AdamW` decays the
/// weights by default and keeps its moments private, so they could not be saved for a resume).
/// Each parameter keeps its own step count, as PyTorch's per-parameter state does: a parameter
/// without a gradient in some step is left alone and its count does not advance.
pub struct Adam {
    params: AdamParams,
    vars: Vec<(String, Var)>,
    state: Vec<Moments>,
}

#[derive(Clone)]
struct Moments {
    m: Option<Tensor>,
    v: Option<Tensor>,
    step: u64,
}

impl Adam {
    /// `vars`: the named parameters this optimiser updates (names only identify saved state).
    pub fn new(vars: Vec<(String, Var)>, params: AdamParams) -> Self {
        let state = vec![Moments { m: None, v: None, step: 0 }; vars.len()];
        Self { params, vars, state }
    }

    pub fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    pub fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
    }

    pub fn vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// One update from the gradients in `grads` (parameters absent from it are skipped).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        let AdamParams { lr, beta1, beta2, eps } = self.params;
        for ((_, var), state) in self.vars.iter().zip(&mut self.state) {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            let g = g.to_dtype(var.dtype())?;
            state.step += 1;
            let m = match &state.m {
                Some(m) => ((m * beta1)? + (&g * (1.0 - beta1))?)?,
                None => (&g * (1.0 - beta1))?,
            };
            let v = match &state.v {
                Some(v) => ((v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?,
                None => (g.sqr()? * (1.0 - beta2))?,
            };
            let t = state.step as i32;
            let bias1 = 1.0 - beta1.powi(t);
            let bias2 = 1.0 - beta2.powi(t);
            // PyTorch: denom = sqrt(v) / sqrt(bias2) + eps; p -= lr / bias1 * m / denom.
            let denom = ((v.sqrt()? / bias2.sqrt())? + eps)?;
            let update = ((&m / denom)? * (lr / bias1))?;
            var.set(&var.as_tensor().sub(&update)?.detach())?;
            state.m = Some(m.detach());
            state.v = Some(v.detach());
        }
        Ok(())
    }

    /// The optimiser's state as named tensors (`{prefix}.m.{name}`, `.v.`, `.step.`), for a
    /// training-state file.
    pub fn state_tensors(&self, prefix: &str) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for ((name, _), s) in self.vars.iter().zip(&self.state) {
            if let (Some(m), Some(v)) = (&s.m, &s.v) {
                out.insert(format!("{prefix}.m.{name}"), m.clone());
                out.insert(format!("{prefix}.v.{name}"), v.clone());
                out.insert(format!("{prefix}.step.{name}"), Tensor::new(&[s.step as f64], &Device::Cpu)?);
            }
        }
        Ok(out)
    }

    /// Restores what [`Adam::state_tensors`] saved; a parameter without saved state starts
    /// fresh, a saved moment of the wrong shape is an error.
    pub fn load_state(&mut self, prefix: &str, saved: &HashMap<String, Tensor>) -> Result<()> {
        for ((name, var), s) in self.vars.iter().zip(&mut self.state) {
            let (Some(m), Some(v), Some(step)) = (
                saved.get(&format!("{prefix}.m.{name}")),
                saved.get(&format!("{prefix}.v.{name}")),
                saved.get(&format!("{prefix}.step.{name}")),
            ) else {
                continue;
            };
            if m.dims() != var.dims() || v.dims() != var.dims() {
                return Err(Error::Input(format!(
                    "saved optimiser state of `{name}` has shape {:?}, the parameter {:?}",
                    m.dims(),
                    var.dims()
                )));
            }
            let to_var = |t: &Tensor| t.to_device(var.device())?.to_dtype(var.dtype());
            s.m = Some(to_var(m)?);
            s.v = Some(to_var(v)?);
            s.step = step.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?[0] as u64;
        }
        Ok(())
    }
}

/// `MultiStepLR`: the base rate times `gamma` for every milestone reached. Iterations count
/// from 1, and the rate of iteration `m` is already reduced when `m` is a milestone (BasicSR's
/// scheduler steps before each iteration).
pub fn multi_step_lr(base: f64, milestones: &[u64], gamma: f64, iteration: u64) -> f64 {
    base * gamma.powi(milestones.iter().filter(|&&m| m <= iteration).count() as i32)
}

/// `ema = decay * ema + (1 - decay) * param` for every pair (the generator's parameters and
/// their averaged copies, matched by name).
pub fn ema_update(ema: &[(String, Var)], params: &HashMap<String, Var>, decay: f64) -> Result<()> {
    for (name, e) in ema {
        let Some(p) = params.get(name) else { continue };
        let next = ((e.as_tensor() * decay)? + (p.as_tensor() * (1.0 - decay))?)?;
        e.set(&next.detach())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_reduces_at_each_milestone() {
        let lr = |it| multi_step_lr(1.0, &[10, 20], 0.5, it);
        assert_eq!((lr(1), lr(9), lr(10), lr(19), lr(20), lr(1000)), (1.0, 1.0, 0.5, 0.5, 0.25, 0.25));
    }

    /// Two steps on f(x) = sum(x^2) written out by hand from PyTorch's update rule.
    #[test]
    fn adam_follows_pytorch_rule() -> Result<()> {
        let x = Var::new(&[1.0f64, -2.0], &Device::Cpu)?;
        let p = AdamParams { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8 };
        let mut adam = Adam::new(vec![("x".into(), x.clone())], p);
        let (mut want, mut m, mut v) = ([1.0f64, -2.0], [0.0; 2], [0.0; 2]);
        for t in 1..=2 {
            let loss = x.as_tensor().sqr()?.sum_all()?;
            adam.step(&loss.backward()?)?;
            for i in 0..2 {
                let g = 2.0 * want[i];
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.99 * v[i] + 0.01 * g * g;
                let denom = v[i].sqrt() / (1.0 - 0.99f64.powi(t)).sqrt() + 1e-8;
                want[i] -= 0.1 / (1.0 - 0.9f64.powi(t)) * m[i] / denom;
            }
        }
        let got = x.as_tensor().to_vec1::<f64>()?;
        for i in 0..2 {
            assert!((got[i] - want[i]).abs() < 1e-12, "{got:?} vs {want:?}");
        }
        // The saved state restores into a fresh optimiser.
        let saved = adam.state_tensors("g")?;
        let mut again = Adam::new(vec![("x".into(), x.clone())], p);
        again.load_state("g", &saved)?;
        assert_eq!(again.state[0].step, 2);
        Ok(())
    }
}
