//! The synthetic input shared by the equivalence tests, the Python fixture script
//! (`models/reference_outputs.py`) and the encode benchmark.

/// The fixture's input: sin(0.013 x + 0.029 y + 0.7 c + 1.3 n) in f64, cast to f32.
pub(crate) fn formula_input(batch: usize, size: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(batch * 3 * size * size);
    for n in 0..batch {
        for c in 0..3 {
            for y in 0..size {
                for x in 0..size {
                    out.push((0.013 * x as f64 + 0.029 * y as f64 + 0.7 * c as f64 + 1.3 * n as f64).sin() as f32);
                }
            }
        }
    }
    out
}
