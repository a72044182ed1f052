//! CPU-feature dispatch: the one place that asks whether the vectorised paths may run.
//!
//! Functions whose portable Rust vectorises well once the compiler may use AVX2 and FMA are
//! declared through [`avx2_fma!`], which compiles the body twice (as written, and inside a
//! `#[target_feature(enable = "avx2,fma")]` function) and picks one at run time.

/// Whether this CPU has AVX2 and FMA (the vectorised paths).
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *HAS.get_or_init(|| std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Declares a free function whose body is compiled twice: once as written, once for AVX2 and
/// FMA; each call runs the AVX2 copy where the CPU has the features.
///
/// ```ignore
/// cpu::avx2_fma! {
///     /// Docs and attributes go on the function.
///     fn name(a: &[f32], b: &mut [f32]) -> f32 { ... }
/// }
/// ```
///
/// The body becomes an `#[inline(always)]` function that both a plain copy and a
/// `#[target_feature]` copy call, so the compiler inlines it into the latter and vectorises it
/// with the wider instructions. (A generic helper taking the body as a closure does not do
/// this: the closure is not inlined into the `#[target_feature]` function and stays portable.)
/// Parameters must be plain names (no patterns), and the function cannot be a method: the body
/// lives in nested functions, which have no `self`.
macro_rules! avx2_fma {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) $(-> $ret)? {
                body($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            if $crate::nhwc::cpu::has_avx2_fma() {
                // SAFETY: the CPU has the features `avx2` was compiled for.
                return unsafe { avx2($($arg),*) };
            }
            body($($arg),*)
        }
    };
}

pub(super) use avx2_fma;

#[cfg(test)]
mod tests {
    avx2_fma! {
        /// A dot product, vectorised in the AVX2 copy.
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            a.iter().zip(b).map(|(x, y)| x * y).sum()
        }
    }

    avx2_fma! {
        fn scale(x: &mut [f32], k: f32) {
            x.iter_mut().for_each(|v| *v *= k);
        }
    }

    #[test]
    fn declared_functions_run_on_either_path() {
        let mut x: Vec<f32> = (0..37).map(|i| i as f32).collect();
        scale(&mut x, 0.5);
        let want: f32 = (0..37).map(|i| (i as f32) * (i as f32) * 0.5).sum();
        assert_eq!(dot(&x, &(0..37).map(|i| i as f32).collect::<Vec<_>>()), want);
    }
}
