//! Bad input at every stage: each failure is a row of errors.parquet with the same kind
//! whichever stage meets it, and the rest of the work is kept.

use std::sync::Arc;

use clipshift_augment::Suite;
use clipshift_augment::stage::AugmentConfig;
use clipshift_metrics::stage::MetricsConfig;
use clipshift_tables::arrow::array::{Array, Float64Array, RecordBatch, StringArray, UInt64Array};
use clipshift_tables::{ErrorKind, ErrorRecord, RunDir, TableWriter, column, read_errors, schema};

use crate::support::{augment_config, copy_samples, encode_config, stage_binary, table, temp_dir};

fn kinds(errors: &[ErrorRecord], stage: &str) -> Vec<(ErrorKind, Option<u64>, Option<String>)> {
    let mut found: Vec<_> =
        errors.iter().filter(|e| e.stage == stage).map(|e| (e.kind, e.image_id, e.augmentation.clone())).collect();
    found.sort_by_key(|(kind, id, aug)| (kind.as_str(), *id, aug.clone()));
    found
}

/// Rewrites augmentations.parquet with `params` of (image, augmentation) replaced.
fn corrupt_params(run: &RunDir, image_id: u64, augmentation: &str, params: &str) {
    let path = run.augmentations();
    let batch = table(&path);
    let ids = column::<UInt64Array>(&batch, &path, schema::IMAGE_ID).unwrap();
    let augs = column::<StringArray>(&batch, &path, schema::AUGMENTATION).unwrap();
    let old = column::<StringArray>(&batch, &path, "params").unwrap();
    let new: StringArray = (0..batch.num_rows())
        .map(|i| Some(if ids.value(i) == image_id && augs.value(i) == augmentation { params } else { old.value(i) }))
        .collect();
    let mut columns = batch.columns().to_vec();
    columns[batch.schema().index_of("params").unwrap()] = Arc::new(new);
    // The table again, as the one part of an unsharded run.
    std::fs::remove_dir_all(&path).unwrap();
    std::fs::create_dir_all(&path).unwrap();
    let mut writer = TableWriter::create(&path.join("part-0000-of-0001-000000.parquet"), batch.schema()).unwrap();
    writer.write(&RecordBatch::try_new(batch.schema(), columns).unwrap()).unwrap();
    writer.finish().unwrap();
}

#[test]
fn every_stage_records_the_same_kind_for_the_same_failure_and_keeps_the_rest() {
    let root = temp_dir("bad-input");
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let files = copy_samples(&data, 2);
    std::fs::write(data.join("broken.jpg"), b"this is not a JPEG").unwrap();
    let run = RunDir::new(root.join("run"));
    let dir = run.root().to_path_buf();
    let suite = Suite::paper();
    let config = augment_config(&dir, &data, suite, 0);
    clipshift_augment::stage::run(&config).unwrap();
    let images = table(&run.images());
    let ids = column::<UInt64Array>(&images, &run.images(), schema::IMAGE_ID).unwrap();
    let paths = column::<StringArray>(&images, &run.images(), "path").unwrap();
    let (first, second) = (ids.value(0), ids.value(1));

    // A damaged parameter record: encode cannot replay that one variant.
    corrupt_params(&run, first, "blur", "{not json");
    let encoded = clipshift_encode::stage::run(&encode_config(&dir, 8)).unwrap();
    assert_eq!(encoded.rows, 2 * 10 - 1, "every other variant is encoded");

    // The second source changes into garbage after encoding: metrics cannot replay its pixels.
    let second_file = files.iter().find(|f| f.ends_with(paths.value(1))).unwrap();
    std::fs::write(second_file, b"garbage now").unwrap();
    clipshift_metrics::stage::run(&MetricsConfig {
        run_dir: dir.clone(),
        shard: clipshift_tables::Shard::WHOLE,
        fresh: false,
    })
    .unwrap();

    let errors = read_errors(&run.errors()).unwrap();
    assert_eq!(kinds(&errors, "augment"), vec![(ErrorKind::Decode, None, None)]);
    assert_eq!(kinds(&errors, "encode"), vec![(ErrorKind::Params, Some(first), Some("blur".into()))]);
    assert_eq!(
        kinds(&errors, "metrics"),
        vec![(ErrorKind::Decode, Some(second), None), (ErrorKind::MissingEmbedding, Some(first), Some("blur".into()))]
    );
    let decode = errors.iter().find(|e| e.stage == "metrics" && e.kind == ErrorKind::Decode).unwrap();
    assert!(decode.message.contains(paths.value(1)), "the message names the file: {}", decode.message);

    // The rest is kept: the unreadable image still has its embedding metrics, with null pixel metrics.
    let metrics = table(&run.metrics());
    let m_ids = column::<UInt64Array>(&metrics, &run.metrics(), schema::IMAGE_ID).unwrap();
    let cosine = column::<Float64Array>(&metrics, &run.metrics(), "cosine_similarity").unwrap();
    let ssim = column::<Float64Array>(&metrics, &run.metrics(), "ssim").unwrap();
    let rows: Vec<usize> = (0..metrics.num_rows()).filter(|&r| m_ids.value(r) == second).collect();
    assert_eq!(rows.len(), 9);
    assert!(rows.iter().all(|&r| cosine.is_valid(r) && !ssim.is_valid(r)));
    assert_eq!(metrics.num_rows(), 9 + 8, "the first image lost only its blur row");

    // The binary's exit status says that it finished but recorded errors.
    let out = stage_binary("metrics").args(["--run", dir.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&root).unwrap();
}

/// A PNG file of the given `IHDR` fields and further chunks (name and data), written
/// by hand so that the test controls every byte.
fn png_file(width: u32, height: u32, bit_depth_and_colour: [u8; 2], chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[bit_depth_and_colour[0], bit_depth_and_colour[1], 0, 0, 0]); // no interlace
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let all = std::iter::once((b"IHDR", ihdr)).chain(chunks.iter().cloned()).chain([(b"IEND", Vec::new())]);
    for (name, data) in all {
        let mut chunk = name.to_vec();
        chunk.extend_from_slice(&data);
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(&chunk);
        png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    }
    png
}

/// A small PNG file whose header declares `width` x `height` pixels (its one data chunk
/// is an empty zlib stream): a decompression bomb as far as the header goes.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    png_file(width, height, [8, 2], &[(b"IDAT", b"\x78\x9c\x03\x00\x00\x00\x00\x01".to_vec())])
}

/// An 8-bit palette PNG (colour type 3) of `indices` rows over `palette`: its pixel data
/// in one stored (uncompressed) deflate block.
fn palette_png(palette: &[[u8; 3]], indices: &[Vec<u8>]) -> Vec<u8> {
    let (width, height) = (indices[0].len() as u32, indices.len() as u32);
    let raw: Vec<u8> = indices.iter().flat_map(|row| std::iter::once(0u8).chain(row.iter().copied())).collect();
    let adler = {
        let (mut a, mut b) = (1u32, 0u32);
        for &x in &raw {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    };
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend_from_slice(&(raw.len() as u16).to_le_bytes());
    zlib.extend_from_slice(&(!(raw.len() as u16)).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&adler.to_be_bytes());
    let plte: Vec<u8> = palette.iter().flatten().copied().collect();
    png_file(width, height, [8, 3], &[(b"PLTE", plte), (b"IDAT", zlib)])
}

fn encoded(image: impl Into<image::DynamicImage>, format: image::ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    image.into().write_to(&mut std::io::Cursor::new(&mut bytes), format).unwrap();
    bytes
}

/// The bad-input corpus: every file is either an image row or exactly one error row of
/// the right kind that names it, and the scan neither hangs nor repeats work.
#[test]
fn every_file_of_a_bad_corpus_is_an_image_or_one_error_row() {
    use image::{ImageFormat, Rgb, RgbImage, Rgba};
    let root = temp_dir("bad-corpus");
    let data = root.join("data");
    std::fs::create_dir_all(data.join("a/b/c")).unwrap();
    let photo = &copy_samples(&root, 1)[0];
    let gradient = RgbImage::from_fn(40, 30, |x, y| Rgb([(x * 6) as u8, (y * 8) as u8, 77]));
    let write = |name: &str, bytes: &[u8]| std::fs::write(data.join(name), bytes).unwrap();

    // Processed.
    std::fs::copy(photo, data.join("UPPER.JPEG")).unwrap();
    write("a/b/c/nested.png", &encoded(gradient.clone(), ImageFormat::Png));
    write("one_pixel.png", &encoded(RgbImage::from_pixel(1, 1, Rgb([1, 2, 3])), ImageFormat::Png));
    let deep = image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_fn(8, 8, |x, y| {
        image::Rgb([x as u16 * 8000, y as u16 * 8000, 65535])
    });
    write("sixteen_bit.png", &encoded(image::DynamicImage::ImageRgb16(deep), ImageFormat::Png));
    write("gray.png", &encoded(image::GrayImage::from_fn(9, 7, |x, _| image::Luma([x as u8 * 20])), ImageFormat::Png));
    write(
        "rgba.png",
        &encoded(image::RgbaImage::from_fn(9, 7, |x, y| Rgba([x as u8, y as u8, 9, 0])), ImageFormat::Png),
    );
    let palette = [[255, 0, 0], [0, 128, 255], [7, 8, 9]];
    let indices = vec![vec![0, 1, 2, 1], vec![2, 2, 0, 1], vec![1, 0, 0, 2]];
    write("palette.png", &palette_png(&palette, &indices));
    write("still.gif", &encoded(gradient.clone(), ImageFormat::Gif));
    let mut animated = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut animated);
        let frame = |c: u8| image::Frame::new(image::RgbaImage::from_pixel(6, 4, Rgba([c, c, c, 255])));
        encoder.encode_frames([frame(10), frame(200)]).unwrap();
    }
    write("animated.gif", &animated);
    // Refused, one row each.
    write("zero_bytes.jpg", b"");
    write("notes.png", b"just some text, not an image\n");
    write("bomb.png", &png_declaring(60_000, 60_000));
    let mut bad_crc = encoded(gradient, ImageFormat::Png);
    let n = bad_crc.len();
    bad_crc[n - 20] ^= 0xff; // inside the last data chunk: its CRC no longer matches
    write("bad_crc.png", &bad_crc);
    let not_utf8 = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"bad\xffname.png");
    std::fs::write(data.join(not_utf8), encoded(RgbImage::new(3, 3), ImageFormat::Png)).unwrap();
    // A link back up the tree: no hang, no file read twice through it.
    std::os::unix::fs::symlink(&data, data.join("a/loop")).unwrap();

    let run = RunDir::new(root.join("run"));
    let summary = clipshift_augment::stage::run(&AugmentConfig {
        run_dir: run.root().to_path_buf(),
        data_dir: data.clone(),
        suite: Suite::paper(),
        seed: 0,
        image_size: 32,
        max_pixels: clipshift_augment::DEFAULT_MAX_PIXELS,
        save_images: false,
        limit: None,
        shard: clipshift_tables::Shard::WHOLE,
        fresh: false,
    })
    .unwrap();

    let images = table(&run.images());
    let paths: Vec<String> =
        column::<StringArray>(&images, &run.images(), "path").unwrap().iter().map(|p| p.unwrap().to_owned()).collect();
    let mut processed = paths.clone();
    processed.sort();
    assert_eq!(
        processed,
        [
            "UPPER.JPEG",
            "a/b/c/nested.png",
            "animated.gif",
            "gray.png",
            "one_pixel.png",
            "palette.png",
            "rgba.png",
            "sixteen_bit.png",
            "still.gif"
        ]
    );
    let errors = read_errors(&run.errors()).unwrap();
    let mut refused: Vec<(String, ErrorKind)> =
        errors.iter().map(|e| (e.path.clone().unwrap_or_default(), e.kind)).collect();
    refused.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        refused,
        [
            ("bad_crc.png".to_string(), ErrorKind::Decode),
            ("bad\u{fffd}name.png".into(), ErrorKind::Read),
            ("bomb.png".into(), ErrorKind::Decode),
            ("notes.png".into(), ErrorKind::Decode),
            ("zero_bytes.jpg".into(), ErrorKind::Decode),
        ]
    );
    assert_eq!(summary.errors, refused.len());
    let bomb = errors.iter().find(|e| e.path.as_deref() == Some("bomb.png")).unwrap();
    assert!(bomb.message.contains("60000x60000") && bomb.message.contains("--max-pixels"), "{}", bomb.message);
    // A palette image gives its palette's colours, as PIL's convert("RGB").
    let decoded =
        clipshift_augment::read_source(&data.join("palette.png"), clipshift_augment::DEFAULT_MAX_PIXELS).unwrap().rgb;
    for (y, row) in indices.iter().enumerate() {
        for (x, &i) in row.iter().enumerate() {
            assert_eq!(decoded.get_pixel(x as u32, y as u32).0, palette[i as usize], "palette.png at ({x}, {y})");
        }
    }
    // An animated GIF gives its first frame.
    let first =
        clipshift_augment::read_source(&data.join("animated.gif"), clipshift_augment::DEFAULT_MAX_PIXELS).unwrap().rgb;
    assert!(first.pixels().all(|p| p.0 == [10, 10, 10]), "{:?}", first.get_pixel(0, 0));
    std::fs::remove_dir_all(&root).unwrap();
}

/// A file the stage may not read is one `read` error row naming it, and the rest of the
/// folder is processed (exit status 3). As root, which reads any file, the stage runs as
/// the unprivileged user `nobody` (uid 65534) through util-linux's `setpriv`.
#[test]
fn an_unreadable_file_is_one_read_error_row() {
    use std::os::unix::fs::PermissionsExt;
    let root = temp_dir("unreadable");
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    copy_samples(&data, 1);
    let locked = data.join("locked.png");
    std::fs::write(&locked, encoded(image::RgbImage::new(4, 4), image::ImageFormat::Png)).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Others may enter the folders and write the run.
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = root.join("run");

    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    let is_root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    let augment = stage_binary("augment");
    let mut cmd = if is_root {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(augment.get_program());
        cmd
    } else {
        augment
    };
    let out = cmd.arg("--run").arg(&run).arg("--data").arg(&data).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("locked.png"), "a warning line names the file: {stderr}");
    let errors = read_errors(&RunDir::new(&run).errors()).unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].path.as_deref(), errors[0].kind), (Some("locked.png"), ErrorKind::Read));
    assert!(errors[0].message.to_lowercase().contains("permission denied"), "{}", errors[0].message);
    assert_eq!(table(&RunDir::new(&run).images()).num_rows(), 1, "the readable image is processed");
    std::fs::remove_dir_all(&root).unwrap();
}

/// Tables from different runs of a stage never mix silently: after augment re-runs with
/// other images or another seed, metrics refuses the old embeddings, says what changed
/// and which stage to re-run, and writes nothing; the report refuses stale metrics.
#[test]
fn stale_tables_are_refused_naming_what_changed() {
    let root = temp_dir("mixed-runs");
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    copy_samples(&data, 2);
    let run = RunDir::new(root.join("run"));
    let dir = run.root().to_path_buf();
    let augment = |limit| AugmentConfig { limit, ..augment_config(&dir, &data, Suite::paper(), 0) };
    clipshift_augment::stage::run(&augment(None)).unwrap();
    clipshift_encode::stage::run(&encode_config(&dir, 32)).unwrap();
    let metrics = || {
        clipshift_metrics::stage::run(&MetricsConfig {
            run_dir: dir.clone(),
            shard: clipshift_tables::Shard::WHOLE,
            fresh: false,
        })
    };
    metrics().unwrap();
    let report = || clipshift_report::run(&clipshift_report::ReportConfig::new(&dir));
    report().unwrap();
    std::fs::remove_dir_all(run.metrics()).unwrap();

    clipshift_augment::stage::run(&augment(Some(1))).unwrap();
    let err = metrics().unwrap_err().to_string();
    assert!(err.contains("embeddings.parquet") && err.contains("images: ") && err.contains("`encode`"), "{err}");
    assert!(!run.metrics().exists(), "no metrics table from mixed inputs");
    let err = report().unwrap_err().to_string();
    assert!(err.contains("embeddings.parquet") && err.contains("`encode`"), "{err}");

    let mut reseeded = augment(None);
    reseeded.seed = 5;
    clipshift_augment::stage::run(&reseeded).unwrap();
    let err = metrics().unwrap_err().to_string();
    assert!(err.contains("seed: 0 -> 5") && !err.contains("images: "), "only the seed changed: {err}");
    std::fs::remove_dir_all(&root).unwrap();
}
