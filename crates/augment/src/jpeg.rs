//! JPEG decoding with libjpeg-turbo's algorithms, so the pixels equal PIL's.
//!
//! PIL decodes JPEG with libjpeg-turbo (integer IDCT, fancy upsampling: the library's
//! defaults). mozjpeg's bundled C is libjpeg-turbo; decoding with it gives PIL's bytes
//! exactly, where a different decoder differs by a few levels on some values. The C
//! error handler unwinds (with a `String` payload starting "libjpeg fatal error", and
//! without running the panic hook); that unwind is caught here and becomes an error
//! naming the file.
//!
//! A truncated file is an error, as in PIL (`image file is truncated`): libjpeg only
//! warns and pads the missing data, so the source records whether the decoder asked for
//! bytes past the end of the file. A file with corrupt data that is also truncated may
//! be refused here while PIL decodes it (PIL stops at the corrupt data before noticing).
//!
//! Four-component (CMYK or YCCK) files follow PIL: they are read as inverted CMYK (the
//! Adobe convention, PIL's "CMYK;I") and converted with Pillow's `cmyk2rgb`.

use std::cell::{Cell, RefCell};
use std::io::{BufRead, Read};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;

use image::RgbImage;
use mozjpeg::{ColorSpace, Compress, Decompress};

use crate::AugmentError;

/// PIL's message for a file that ends before its image data does.
const TRUNCATED: &str = "image file is truncated";

thread_local! {
    /// The pixel buffer of the last decoded image this thread finished with
    /// ([`reuse_pixels`]): a photograph's pixels are megabytes, and a fresh buffer costs a
    /// page fault for every 4 KiB written (the kernel's time was a tenth of the CPU side's).
    static SPARE_PIXELS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Hands the pixels of a decoded image the caller is done with to this thread's next
/// JPEG decode.
pub(crate) fn reuse_pixels(image: RgbImage) {
    SPARE_PIXELS.with(|spare| *spare.borrow_mut() = image.into_raw());
}

/// A buffer of `len` bytes, contents unspecified: this thread's spare one if any.
fn pixel_buffer(len: usize) -> Vec<u8> {
    let mut buffer = SPARE_PIXELS.with(|spare| std::mem::take(&mut *spare.borrow_mut()));
    if buffer.len() >= len {
        buffer.truncate(len);
    } else {
        buffer.resize(len, 0);
    }
    buffer
}

/// Decodes a JPEG to RGB8, refusing it from its header when it has more than
/// `max_pixels` pixels.
pub(crate) fn decode_jpeg(path: &Path, bytes: &[u8], max_pixels: u64) -> Result<RgbImage, AugmentError> {
    let past_end = Cell::new(false);
    let decoded = catch_unwind(AssertUnwindSafe(|| decode_unwinding(path, bytes, max_pixels, &past_end)));
    let error = |message: String| AugmentError::Jpeg { path: path.to_path_buf(), message };
    match decoded {
        Ok(Ok(Ok(rgb))) if past_end.get() => {
            drop(rgb);
            Err(error(TRUNCATED.to_string()))
        }
        Ok(Ok(Ok(rgb))) => Ok(rgb),
        Ok(Ok(Err(refused))) => Err(refused),
        Ok(Err(io)) => Err(error(io.to_string())),
        Err(payload) => match payload.downcast::<String>() {
            Ok(message) if message.starts_with("libjpeg") => Err(error(*message)),
            // Not the C library's error: a bug, which must stay a panic.
            Ok(message) => resume_unwind(message),
            Err(payload) => resume_unwind(payload),
        },
    }
}

/// The decoding itself; libjpeg's fatal errors unwind out of it. The outer result is the
/// library's I/O-style errors, the inner one the pixel limit.
fn decode_unwinding(
    path: &Path,
    bytes: &[u8],
    max_pixels: u64,
    past_end: &Cell<bool>,
) -> std::io::Result<Result<RgbImage, AugmentError>> {
    let header = Decompress::new_reader(Source { rest: bytes, past_end })?;
    let (width, height) = (dimension(header.width()), dimension(header.height()));
    if u64::from(width) * u64::from(height) > max_pixels {
        return Ok(Err(AugmentError::TooManyPixels { path: path.to_path_buf(), width, height, max_pixels }));
    }
    let four_components = matches!(header.color_space(), ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK);
    let rgb = if four_components {
        let mut started = header.to_colorspace(ColorSpace::JCS_CMYK)?;
        let cmyk: Vec<u8> = started.read_scanlines()?;
        started.finish()?;
        cmyk.chunks_exact(4).flat_map(|p| inverted_cmyk_to_rgb([p[0], p[1], p[2], p[3]])).collect()
    } else {
        // Grayscale is replicated to three channels by libjpeg, as PIL's convert("RGB").
        let mut started = header.rgb()?;
        let mut rgb = pixel_buffer(width as usize * height as usize * 3);
        started.read_scanlines_into(&mut rgb[..])?;
        started.finish()?;
        rgb
    };
    let image = RgbImage::from_raw(width, height, rgb)
        .ok_or_else(|| std::io::Error::other(format!("decoder returned fewer pixels than {width}x{height}")))?;
    Ok(Ok(image))
}

/// PIL's `image.save(buffer, "JPEG", quality=quality)` and `Image.open(buffer).convert("RGB")`:
/// libjpeg-turbo's defaults (the "fastest" profile of mozjpeg's C is libjpeg-turbo: no
/// trellis quantisation, the standard tables, baseline, 4:2:0 chroma), then the decoder
/// above. At every quality from 1 to 100 the scaled tables are the same with PIL's
/// `force_baseline`.
pub(crate) fn round_trip(image: &RgbImage, quality: u32) -> Result<RgbImage, String> {
    let encoded = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<Vec<u8>> {
        let mut compress = Compress::new(ColorSpace::JCS_RGB);
        compress.set_fastest_defaults();
        compress.set_size(image.width() as usize, image.height() as usize);
        compress.set_quality(quality as f32);
        let mut started = compress.start_compress(Vec::new())?;
        started.write_scanlines(image.as_raw())?;
        started.finish()
    }));
    let bytes = match encoded {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(io)) => return Err(format!("JPEG encoding failed: {io}")),
        Err(payload) => match payload.downcast::<String>() {
            Ok(message) if message.starts_with("libjpeg") => return Err(format!("JPEG encoding failed: {message}")),
            Ok(message) => resume_unwind(message),
            Err(payload) => resume_unwind(payload),
        },
    };
    decode_jpeg(Path::new("<JPEG re-encoded in memory>"), &bytes, u64::MAX).map_err(|e| e.to_string())
}

fn dimension(n: usize) -> u32 {
    // JPEG dimensions are 16-bit fields.
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Pillow's `cmyk2rgb` on a pixel stored inverted ("CMYK;I"): each channel is un-inverted,
/// then `channel = k' - round(c * k' / 255)` with `k' = 255 - k` in Pillow's integer form.
fn inverted_cmyk_to_rgb(stored: [u8; 4]) -> [u8; 3] {
    let [c, m, y, k] = stored.map(|s| 255 - u32::from(s));
    let nk = 255 - k;
    let channel = |v: u32| {
        let t = v * nk + 128;
        // nk - muldiv255(v, nk) is within 0..=255, as Pillow's CLIP8 assumes.
        (nk - (((t >> 8) + t) >> 8)) as u8
    };
    [channel(c), channel(m), channel(y)]
}

/// The file's bytes for libjpeg, noting whether it asked for more after the last one.
struct Source<'a> {
    rest: &'a [u8],
    past_end: &'a Cell<bool>,
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.rest.read(buf)
    }
}

impl BufRead for Source<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.rest.is_empty() {
            self.past_end.set(true);
        }
        Ok(self.rest)
    }

    fn consume(&mut self, n: usize) {
        self.rest = &self.rest[n.min(self.rest.len())..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_follows_pillow() {
        // Stored inverted: 255 is no ink. No ink is white, full black ink is black.
        assert_eq!(inverted_cmyk_to_rgb([255, 255, 255, 255]), [255, 255, 255]);
        assert_eq!(inverted_cmyk_to_rgb([255, 255, 255, 0]), [0, 0, 0]);
        // Full cyan, no black: no red.
        assert_eq!(inverted_cmyk_to_rgb([0, 255, 255, 255]), [0, 255, 255]);
        // c = 100, k = 55: nk = 200, 200 - round(100 * 200 / 255) = 200 - 78.
        assert_eq!(inverted_cmyk_to_rgb([155, 255, 255, 200])[0], 122);
    }

    #[test]
    fn a_reused_buffer_decodes_the_same_pixels() {
        let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/samples");
        let decode = |name: &str| {
            let path = samples.join(name);
            decode_jpeg(&path, &std::fs::read(&path).unwrap(), u64::MAX).unwrap()
        };
        let (large, small) = ("colorful_cups.jpg", "dahlia_flower.jpg");
        let (fresh_large, fresh_small) = (decode(large), decode(small));
        assert!(fresh_large.len() > fresh_small.len(), "the test needs two sizes");
        // A larger spare, its bytes not the image's, then a smaller one.
        reuse_pixels(RgbImage::from_pixel(fresh_large.width(), fresh_large.height(), image::Rgb([171, 7, 99])));
        assert_eq!(decode(small), fresh_small);
        reuse_pixels(RgbImage::from_pixel(2, 2, image::Rgb([171, 7, 99])));
        assert_eq!(decode(large), fresh_large);
    }

    #[test]
    fn garbage_after_the_header_is_an_error_not_a_panic() {
        let err = decode_jpeg(Path::new("x/bad.jpg"), b"\xff\xd8\xff\xc0garbage", 1000).unwrap_err();
        assert!(err.to_string().contains("x/bad.jpg"), "{err}");
        assert!(err.to_string().contains("libjpeg"), "{err}");
    }
}
