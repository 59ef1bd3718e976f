//! Params are complete and replayable: JSON round trips, and `apply` is pure.

use clipshift_augment::{Params, RgbImage, Rng, Suite};

use crate::fixtures::png;

#[test]
fn every_paper_member_round_trips_and_replays() {
    let img = png("src_c.png");
    let suite = Suite::paper();
    for m in suite.members() {
        for image_id in 0..3u64 {
            let mut rng = Rng::keyed(7, image_id, &m.name);
            let p = m.transform.sample(&mut rng, img.width(), img.height());
            let json = p.to_json();
            let back = Params::from_json(&m.name, &json).unwrap();
            // The workspace turns on serde_json's `float_roundtrip`, so every float comes
            // back to the bit.
            assert_eq!(back, p, "{json}");
            let a = p.apply(&img).unwrap();
            let b = back.apply(&img).unwrap();
            assert_eq!(a, b, "{} is not a pure function of its params", m.name);
            assert_eq!(a.dimensions(), img.dimensions());
            // The same key draws the same parameters.
            let mut rng2 = Rng::keyed(7, image_id, &m.name);
            assert_eq!(m.transform.sample(&mut rng2, img.width(), img.height()), p);
        }
    }
}

#[test]
fn sampled_params_of_every_transform_survive_json_equal() {
    // Every transform, with the hyperparameters that change what a draw records (random
    // dropout fills, one noise value per pixel, another border), over many draws.
    let suite = Suite::from_toml_str(
        "extra.toml",
        r#"
        [[member]]
        name = "dropout_random"
        transform = "coarse_dropout"
        fill = "random_uniform"
        num_holes_range = [1, 8]
        [[member]]
        name = "dropout_noise"
        transform = "coarse_dropout"
        fill = "random"
        [[member]]
        name = "dropout_rgb"
        transform = "coarse_dropout"
        fill = [1, 2, 3]
        [[member]]
        name = "grey_noise"
        transform = "gauss_noise"
        per_channel = false
        mean_range = [-0.1, 0.1]
        [[member]]
        name = "wrapped"
        transform = "shift_scale_rotate"
        border_mode = "wrap"
        fill = 9
        "#,
    )
    .unwrap();
    let paper = Suite::paper();
    for m in paper.members().iter().chain(suite.members()) {
        for image_id in 0..50u64 {
            let p = m.transform.sample(&mut Rng::keyed(3, image_id, &m.name), 57, 43);
            let back = Params::from_json(&m.name, &p.to_json()).unwrap();
            assert_eq!(back, p, "{}: {}", m.name, p.to_json());
        }
    }
}

#[test]
fn identity_and_bad_params() {
    let img = png("src_a.png");
    assert_eq!(Params::Identity.apply(&img).unwrap(), img);
    assert_eq!(Params::from_json("original", r#"{"transform":"identity"}"#).unwrap(), Params::Identity);
    let err = Params::from_json("blur", r#"{"transform":"gaussian_blur","ksize":3}"#).unwrap_err();
    assert!(err.to_string().contains("blur"), "{err}");
    assert!(Params::from_json("x", r#"{"transform":"nope"}"#).is_err());
    let even = Params::GaussianBlur { ksize: 4, sigma: 1.0 };
    assert!(even.apply(&img).is_err());
    let order = Params::ColorJitter { brightness: 1.0, contrast: 1.0, saturation: 1.0, hue: 0.0, order: [0, 0, 1, 2] };
    assert!(order.apply(&img).is_err());
}

#[test]
fn tiny_and_degenerate_images_do_not_panic() {
    let suite = Suite::paper();
    for (w, h) in [(1, 1), (2, 1), (1, 3), (5, 4), (17, 16)] {
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 40) as u8, (y * 60) as u8, 99]));
        for m in suite.members() {
            let mut rng = Rng::keyed(1, u64::from(w * 100 + h), &m.name);
            let p = m.transform.sample(&mut rng, w, h);
            let out = p.apply(&img).unwrap_or_else(|e| panic!("{} on {w}x{h}: {e}", m.name));
            assert_eq!(out.dimensions(), (w, h));
        }
    }
}
