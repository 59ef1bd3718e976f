//! `--dump-pixels DIR`: every model input is written as a NumPy `.npy` file holding
//! exactly the tensor the model was given.

use std::path::{Path, PathBuf};

use clipshift_augment::stage::AugmentConfig;
use clipshift_augment::{Params, Suite, load_canonical};
use clipshift_encode::stage::EncodeConfig;
use clipshift_encode::{Encoder, ModelSpec, Preprocessor, SessionConfig};
use clipshift_tables::arrow::array::{Array, FixedSizeListArray, Float32Array, StringArray, UInt64Array};
use clipshift_tables::{RunDir, column, read_table, schema};

use crate::{SERIAL, root};

/// Parses a little-endian float32 C-order `.npy` file (format 1.0), as `numpy.load` reads it.
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "{}", path.display());
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let data_start = 10 + header_len;
    assert_eq!(data_start % 64, 0, "numpy aligns the data to 64 bytes");
    let header = std::str::from_utf8(&bytes[10..data_start]).unwrap();
    assert!(header.ends_with('\n'), "{header:?}");
    assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"), "{header}");
    let shape = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<usize> =
        shape.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse().unwrap()).collect();
    let data: Vec<f32> =
        bytes[data_start..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(data.len(), shape.iter().product::<usize>());
    (shape, data)
}

fn strings(path: &Path, name: &str) -> Vec<String> {
    let table = read_table(path).unwrap();
    column::<StringArray>(&table, path, name).unwrap().iter().map(|s| s.unwrap().to_string()).collect()
}

fn ids(path: &Path) -> Vec<u64> {
    let table = read_table(path).unwrap();
    column::<UInt64Array>(&table, path, schema::IMAGE_ID).unwrap().values().to_vec()
}

#[test]
fn dump_pixels_writes_the_exact_model_inputs() {
    let _guard = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir: PathBuf = std::env::temp_dir().join(format!("clipshift-dump-pixels-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(root().join("data/samples/cat_chelsea.png"), data.join("cat.png")).unwrap();
    let run = RunDir::new(dir.join("run"));
    let suite = Suite::paper();
    clipshift_augment::stage::run(&AugmentConfig {
        run_dir: run.root().to_path_buf(),
        data_dir: data.clone(),
        suite,
        seed: 11,
        image_size: 224,
        max_pixels: clipshift_augment::DEFAULT_MAX_PIXELS,
        save_images: false,
        limit: None,
        shard: clipshift_tables::Shard::WHOLE,
        fresh: false,
    })
    .unwrap();
    let dump = dir.join("pixels");
    let model = root().join("models/tiny-clip");
    clipshift_encode::stage::run(&EncodeConfig {
        run_dir: run.root().to_path_buf(),
        model_dir: model.clone(),
        policy: None,
        session: SessionConfig::default(),
        batch: 4,
        dump_pixels: Some(dump.clone()),
        shard: clipshift_tables::Shard::WHOLE,
        fresh: false,
    })
    .unwrap();

    let spec = ModelSpec::load(&model).unwrap();
    let pre = Preprocessor::new(&spec, spec.resize_policy);
    let mut encoder = Encoder::new(spec.clone(), &SessionConfig::default()).unwrap();
    let base = load_canonical(&data.join("cat.png"), 224).unwrap();
    let (aug_ids, names, params) = (
        ids(&run.augmentations()),
        strings(&run.augmentations(), schema::AUGMENTATION),
        strings(&run.augmentations(), "params"),
    );
    assert_eq!(names.len(), 10);
    let embeddings = read_table(&run.embeddings()).unwrap();
    let emb_names = strings(&run.embeddings(), schema::AUGMENTATION);
    let vectors = column::<FixedSizeListArray>(&embeddings, &run.embeddings(), "embedding").unwrap();
    for ((id, name), params) in aug_ids.iter().zip(&names).zip(&params) {
        let (shape, dumped) = read_npy(&dump.join(id.to_string()).join(format!("{name}.npy")));
        assert_eq!(shape, [3, 224, 224]);
        // The replayed variant, preprocessed again, is the dumped tensor bit for bit.
        let variant = Params::from_json(name, params).unwrap().apply(&base).unwrap();
        let mut expected = vec![0.0f32; pre.tensor_len()];
        pre.write_tensor(&variant, &mut expected);
        assert!(dumped == expected, "{name}: dumped tensor differs from the preprocessed variant");
        // And it is what the model saw: encoding it gives the stored embedding.
        let row = emb_names.iter().position(|n| n == name).unwrap();
        let stored = vectors.value(row);
        let stored = stored.as_any().downcast_ref::<Float32Array>().unwrap().values();
        let ours = encoder.encode(&dumped, 1).unwrap().embeddings;
        let diff = ours.iter().zip(stored.iter()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "{name}: embedding of the dumped tensor differs by {diff}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
