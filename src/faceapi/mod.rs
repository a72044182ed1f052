//! The face-api.js networks (68-point landmarks, expressions, 128-D identity) in candle, loaded
//! from the TF.js manifests and weight files of `@vladmandic/face-api`.
