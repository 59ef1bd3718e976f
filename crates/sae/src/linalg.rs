//! The few dense products the stage needs, on candle's CPU GEMM.

use candle_core::{DType, Device, Tensor};

use crate::SaeError;

fn candle(e: candle_core::Error) -> SaeError {
    SaeError::Tensor(e.to_string())
}

/// a [n, k] · b [k, m] in f32, row-major.
pub(crate) fn matmul_f32(a: &[f32], n: usize, k: usize, b: &[f32], m: usize) -> Result<Vec<f32>, SaeError> {
    let a = Tensor::from_slice(a, (n, k), &Device::Cpu).map_err(candle)?;
    let b = Tensor::from_slice(b, (k, m), &Device::Cpu).map_err(candle)?;
    a.matmul(&b).and_then(|c| c.flatten_all()).and_then(|c| c.to_vec1()).map_err(candle)
}

/// a [n, k] · b [k, m] in f64, row-major.
pub(crate) fn matmul_f64(a: &[f64], n: usize, k: usize, b: &[f64], m: usize) -> Result<Vec<f64>, SaeError> {
    let a = Tensor::from_slice(a, (n, k), &Device::Cpu).map_err(candle)?;
    let b = Tensor::from_slice(b, (k, m), &Device::Cpu).map_err(candle)?;
    debug_assert_eq!(a.dtype(), DType::F64);
    a.matmul(&b).and_then(|c| c.flatten_all()).and_then(|c| c.to_vec1()).map_err(candle)
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}
