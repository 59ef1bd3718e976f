//! clipshift against albumentations, the Rust half of `cargo xtask bench augment`.
//!
//! `reference/bench_albumentations.py` writes the two 224 x 224 benchmark images (a
//! photograph from data/samples resized with cv2 INTER_LINEAR, and uniform noise) and
//! its single-threaded timings into `target/bench-augment/`. This bench times clipshift on
//! the same images the same way (per call: sample parameters from a fresh keyed RNG,
//! then apply; images alternating; best of repeated means), prints one table with both
//! sides and the ratio, then the throughput of the whole suite over a batch of images
//! with rayon on 1 and 2 threads. Without the Python results it prints clipshift alone.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clipshift_augment::{RgbImage, Rng, Suite, SuiteMember, load_canonical};
use rayon::prelude::*;

const SIZE: u32 = 224;
const PHOTO: &str = "data/samples/cat_chelsea.png";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bench_dir() -> PathBuf {
    std::env::var_os("CLIPSHIFT_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target/bench-augment"))
}

/// The two images the Python side wrote (so both sides read the same bytes), or, when it
/// has not run, the photo resized with `resize_linear` (within one level of cv2) and noise.
fn images(dir: &Path) -> Vec<RgbImage> {
    let load = |name: &str| image::open(dir.join(name)).ok().map(|i| i.to_rgb8());
    if let (Some(photo), Some(noise)) = (load("photo.png"), load("noise.png")) {
        return vec![photo, noise];
    }
    let photo = load_canonical(&root().join(PHOTO), SIZE).expect("read the photo");
    let mut rng = Rng::from_seed(0);
    let noise = RgbImage::from_fn(SIZE, SIZE, |_, _| {
        let b = rng.next_u64().to_le_bytes();
        image::Rgb([b[0], b[1], b[2]])
    });
    vec![photo, noise]
}

/// Best of `repeats` means over `n` calls, in milliseconds (the same estimator as the
/// Python side: the minimum is least disturbed by other work on the machine).
fn best_ms(n: usize, repeats: usize, mut call: impl FnMut(usize)) -> f64 {
    for i in 0..(n / 10).max(2) {
        call(i);
    }
    let mut best = f64::INFINITY;
    let mut i = 0;
    for _ in 0..repeats {
        let t0 = Instant::now();
        for _ in 0..n {
            call(i);
            i += 1;
        }
        best = best.min(t0.elapsed().as_secs_f64() / n as f64);
    }
    best * 1e3
}

/// One call as the pipeline makes it: parameters from the keyed RNG, then apply.
fn augment(m: &SuiteMember, image: &RgbImage, image_id: u64) -> RgbImage {
    let params = m.transform.sample(&mut Rng::keyed(1, image_id, &m.name), SIZE, SIZE);
    params.apply(image).expect("valid parameters")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let quick = std::env::args().any(|a| a == "--quick") || std::env::var_os("CLIPSHIFT_BENCH_QUICK").is_some();
    let dir = bench_dir();
    let imgs = images(&dir);
    let reference: Option<serde_json::Value> = std::fs::read_to_string(dir.join("albumentations.json"))
        .ok()
        .map(|s| serde_json::from_str(&s).expect("albumentations.json is JSON"));
    let repeats = reference.as_ref().and_then(|r| r["repeats"].as_u64()).unwrap_or(5) as usize;
    let scale = if quick { 0.1 } else { 1.0 };
    let iters = |base: usize| ((base as f64 * scale) as usize).max(4);
    let suite = Suite::paper();
    let load_before = load_average();

    let mut rows = Vec::new();
    for m in suite.members() {
        let n = iters(if m.name == "elastic" { 40 } else { 200 });
        let ms = best_ms(n, repeats, |i| {
            black_box(augment(m, &imgs[i % imgs.len()], i as u64));
        });
        rows.push((m.name.clone(), reference.as_ref().and_then(|r| r["ms"][&m.name].as_f64()), ms));
    }
    let suite_ms = best_ms(iters(30), repeats, |i| {
        for m in suite.members() {
            black_box(augment(m, &imgs[i % imgs.len()], i as u64));
        }
    });
    rows.push(("paper_suite (9)".into(), reference.as_ref().and_then(|r| r["suite_ms"].as_f64()), suite_ms));

    println!();
    match &reference {
        Some(r) => println!(
            "224x224, one thread each; albumentations {} / OpenCV {} / numpy {} (Python {})",
            r["albumentations"].as_str().unwrap_or("?"),
            r["opencv"].as_str().unwrap_or("?"),
            r["numpy"].as_str().unwrap_or("?"),
            r["python"].as_str().unwrap_or("?"),
        ),
        None => println!(
            "224x224, one thread; no {} (run `cargo xtask bench augment`)",
            dir.join("albumentations.json").display()
        ),
    }
    println!("per call: sample parameters + apply, photo and noise image alternating, best of {repeats} repeats");
    println!();
    println!(
        "| {:<18} | {:>12} | {:>12} | {:>9} | {:>9} | {:>7} |",
        "transform", "albu ms", "clipshift ms", "albu im/s", "ours im/s", "speed-up"
    );
    println!("|{:-<20}|{:->14}|{:->14}|{:->11}|{:->11}|{:->9}|", ":", ":", ":", ":", ":", ":");
    for (name, theirs, ours) in &rows {
        let (t, ts, ratio) = match theirs {
            Some(t) => (format!("{t:.3}"), format!("{:.0}", 1e3 / t), format!("{:.2}x", t / ours)),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!("| {name:<18} | {t:>12} | {ours:>12.3} | {ts:>9} | {:>9.0} | {ratio:>7} |", 1e3 / ours);
    }

    // Throughput: the whole suite over a batch of images, rayon over images.
    let batch: Vec<RgbImage> = {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("data/samples"))
            .expect("data/samples")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| ["png", "jpg", "webp"].contains(&x.to_str().unwrap_or(""))))
            .collect();
        paths.sort();
        paths.iter().map(|p| load_canonical(p, SIZE).expect("decode sample")).collect()
    };
    println!();
    println!(
        "paper suite over {} sample images, rayon over images ({} cores available):",
        batch.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut single = 0.0;
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
        let ms = pool.install(|| {
            best_ms(iters(10).max(2), repeats, |round| {
                batch.par_iter().enumerate().for_each(|(k, img)| {
                    for m in suite.members() {
                        black_box(augment(m, img, (round * batch.len() + k) as u64));
                    }
                });
            })
        });
        let per_s = batch.len() as f64 / (ms / 1e3);
        if threads == 1 {
            single = per_s;
        }
        println!("  {threads} thread(s): {per_s:7.1} images/s (all nine transforms each), {:.2}x", per_s / single);
    }
    println!();
    println!("load average before: {load_before}, after: {}", load_average());
}
