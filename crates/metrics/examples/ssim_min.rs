use clipshift_metrics::OriginalFeatures;
use image::{Rgb, RgbImage};
use std::time::Instant;
fn image(seed: u64) -> RgbImage {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    RgbImage::from_fn(224, 224, |x, y| {
        let mut px = |_: u32| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let base = ((x + y) % 256) as f32;
            (0.7 * base + 0.3 * 255.0 * ((s >> 40) as f32 / (1u64 << 24) as f32)) as u8
        };
        Rgb([px(0), px(1), px(2)])
    })
}
fn main() {
    let orig = OriginalFeatures::new(&image(0));
    let vs: Vec<RgbImage> = (1..=9).map(image).collect();
    let mut best = f64::MAX;
    let mut sum = 0.0;
    for _ in 0..2000 {
        let t = Instant::now();
        for v in &vs {
            sum += orig.ssim(v).unwrap();
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    let mut bn = f64::MAX;
    for _ in 0..200 {
        let t = Instant::now();
        std::hint::black_box(OriginalFeatures::new(&vs[0]));
        bn = bn.min(t.elapsed().as_secs_f64());
    }
    println!("ssim 9 comparisons: best {:.1} us; OriginalFeatures::new best {:.1} us ({sum})", best * 1e6, bn * 1e6);
}
