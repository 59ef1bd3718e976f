//! Per-transform cost at 224x224 (the canonical size), single-threaded, plus the whole
//! paper suite and `resize_linear`. Compare with `reference/bench_albumentations.py`.

use std::hint::black_box;

use clipshift_augment::{Params, RgbImage, Rng, Suite, resize_linear};
use criterion::{Criterion, criterion_group, criterion_main};

fn image(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, ((x * 7 + y * 13) % 251) as u8])
    })
}

fn transforms(c: &mut Criterion) {
    let img = image(224, 224);
    let suite = Suite::paper();
    let params: Vec<(String, Params)> = suite
        .members()
        .iter()
        .map(|m| (m.name.clone(), m.transform.sample(&mut Rng::keyed(1, 1, &m.name), 224, 224)))
        .collect();
    let mut group = c.benchmark_group("apply_224");
    for (name, p) in &params {
        group.bench_function(name.as_str(), |b| b.iter(|| black_box(p.apply(black_box(&img)).unwrap())));
    }
    group.bench_function("paper_suite", |b| {
        b.iter(|| {
            for (_, p) in &params {
                black_box(p.apply(black_box(&img)).unwrap());
            }
        })
    });
    group.bench_function("sample_paper_suite", |b| {
        b.iter(|| {
            for m in suite.members() {
                black_box(m.transform.sample(&mut Rng::keyed(1, 2, &m.name), 224, 224));
            }
        })
    });
    group.finish();
    let big = image(640, 480);
    c.bench_function("resize_linear_640x480_to_224", |b| {
        b.iter(|| black_box(resize_linear(black_box(&big), 224, 224)))
    });
}

criterion_group!(benches, transforms);
criterion_main!(benches);
