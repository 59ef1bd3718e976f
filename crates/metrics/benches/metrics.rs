//! One source image's nine comparisons per metric family, at 224x224, and for scale
//! the replay of its augmentations that the metrics stage also does per image.

use std::hint::black_box;

use clipshift_augment::{Params, Rng, Suite};
use clipshift_metrics::{
    AttentionMap, OriginalFeatures, attention_similarity, cosine_similarity, detail_preservation, edge_preservation,
    l2_distance, patch_similarity, pdist_cosine, pdist_euclidean, ssim,
};
use criterion::{Criterion, criterion_group, criterion_main};
use image::{Rgb, RgbImage};

const SIDE: u32 = 224;
const VARIANTS: usize = 9;

/// Deterministic pseudo-random values (xorshift), so the bench needs no fixtures.
fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

fn image(seed: u64) -> RgbImage {
    let v = noise(seed, (SIDE * SIDE * 3) as usize);
    RgbImage::from_fn(SIDE, SIDE, |x, y| {
        let i = ((y * SIDE + x) * 3) as usize;
        let base = ((x + y) % 256) as f32;
        let px = |c: usize| (0.7 * base + 0.3 * 255.0 * v[i + c]) as u8;
        Rgb([px(0), px(1), px(2)])
    })
}

fn bench(c: &mut Criterion) {
    let original = image(0);
    let variants: Vec<RgbImage> = (1..=VARIANTS as u64).map(image).collect();
    let embeds: Vec<Vec<f32>> = (0..=VARIANTS as u64).map(|s| noise(100 + s, 512)).collect();
    let attn: Vec<Vec<f32>> = (0..=VARIANTS as u64).map(|s| noise(200 + s, 49)).collect();

    c.bench_function("embedding: cosine + l2, 9 variants (D=512)", |b| {
        b.iter(|| {
            for e in &embeds[1..] {
                black_box(cosine_similarity(&embeds[0], e));
                black_box(l2_distance(&embeds[0], e));
            }
        })
    });
    c.bench_function("pairwise: pdist cosine + euclidean, 10 variants (D=512)", |b| {
        let refs: Vec<&[f32]> = embeds.iter().map(Vec::as_slice).collect();
        b.iter(|| (black_box(pdist_cosine(&refs)), black_box(pdist_euclidean(&refs))))
    });
    c.bench_function("attention: 7x7 -> 224x224, 9 variants", |b| {
        b.iter(|| {
            for a in &attn[1..] {
                black_box(attention_similarity(&attn[0], a, SIDE, SIDE));
            }
        })
    });
    c.bench_function("attention: 7x7 -> 224x224, 9 variants, original's map built once", |b| {
        b.iter(|| {
            let original = AttentionMap::new(&attn[0], SIDE, SIDE).unwrap();
            for a in &attn[1..] {
                black_box(original.similarity(a));
            }
        })
    });
    let mut g = c.benchmark_group("pixel, 9 variants at 224x224");
    g.bench_function("patch_similarity", |b| {
        b.iter(|| variants.iter().map(|v| patch_similarity(&original, v).unwrap()).sum::<f64>())
    });
    g.bench_function("edge_preservation", |b| {
        b.iter(|| variants.iter().map(|v| edge_preservation(&original, v).unwrap()).sum::<f64>())
    });
    g.bench_function("detail_preservation", |b| {
        b.iter(|| variants.iter().map(|v| detail_preservation(&original, v).unwrap()).sum::<f64>())
    });
    g.bench_function("ssim", |b| b.iter(|| variants.iter().map(|v| ssim(&original, v).unwrap()).sum::<f64>()));
    g.bench_function("all four, free functions", |b| {
        b.iter(|| {
            for v in &variants {
                black_box(patch_similarity(&original, v).unwrap());
                black_box(edge_preservation(&original, v).unwrap());
                black_box(detail_preservation(&original, v).unwrap());
                black_box(ssim(&original, v).unwrap());
            }
        })
    });
    g.bench_function("OriginalFeatures::new (once per image)", |b| b.iter(|| OriginalFeatures::new(&original)));
    let orig = OriginalFeatures::new(&original);
    g.bench_function("patch_similarity, original precomputed", |b| {
        b.iter(|| variants.iter().map(|v| orig.patch_similarity(v).unwrap()).sum::<f64>())
    });
    g.bench_function("edge_preservation, original precomputed", |b| {
        b.iter(|| variants.iter().map(|v| orig.edge_preservation(v).unwrap()).sum::<f64>())
    });
    g.bench_function("detail_preservation, original precomputed", |b| {
        b.iter(|| variants.iter().map(|v| orig.detail_preservation(v).unwrap()).sum::<f64>())
    });
    g.bench_function("ssim, original precomputed", |b| {
        b.iter(|| variants.iter().map(|v| orig.ssim(v).unwrap()).sum::<f64>())
    });
    g.bench_function("all four, OriginalFeatures::compare", |b| {
        b.iter(|| {
            let orig = OriginalFeatures::new(&original);
            for v in &variants {
                black_box(orig.compare(v).unwrap());
            }
        })
    });
    g.finish();

    // The stage replays every variant's pixels from the canonical original (decoding
    // the source file comes on top).
    let params: Vec<Params> = Suite::paper()
        .members()
        .iter()
        .map(|m| m.transform.sample(&mut Rng::keyed(1, 1, &m.name), SIDE, SIDE))
        .collect();
    c.bench_function(&format!("stage: replay the paper suite ({} variants)", params.len()), |b| {
        b.iter(|| {
            for p in &params {
                black_box(p.apply(&original).unwrap());
            }
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
