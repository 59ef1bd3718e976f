//! The canonical images the augment stage decoded, held for the encode stage of the same
//! process within a memory budget.

use std::collections::HashMap;
use std::sync::Mutex;

use clipshift_augment::RgbImage;

/// Canonical images by image id, at most `budget` bytes of pixels: an image that does not
/// fit is not held (the encode stage decodes its source again), so memory stays bounded
/// however many images a process handles.
pub(crate) struct HeldSources {
    budget: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    images: HashMap<u64, RgbImage>,
    bytes: usize,
    handed_over: usize,
}

impl HeldSources {
    pub(crate) fn new(budget: usize) -> Self {
        Self { budget, state: Mutex::default() }
    }

    /// Holds `image` for `image_id` when it fits in what is left of the budget.
    pub(crate) fn hold(&self, image_id: u64, image: RgbImage) {
        let mut state = self.state.lock().expect("held sources lock poisoned");
        let size = image.as_raw().len();
        if state.bytes + size <= self.budget && !state.images.contains_key(&image_id) {
            state.bytes += size;
            state.images.insert(image_id, image);
        }
    }

    /// The image held for `image_id`, given up (it is handed over once).
    pub(crate) fn take(&self, image_id: u64) -> Option<RgbImage> {
        let mut state = self.state.lock().expect("held sources lock poisoned");
        let image = state.images.remove(&image_id)?;
        state.bytes -= image.as_raw().len();
        state.handed_over += 1;
        Some(image)
    }

    /// How many images were taken.
    pub(crate) fn handed_over(&self) -> usize {
        self.state.lock().expect("held sources lock poisoned").handed_over
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(side: u32, value: u8) -> RgbImage {
        RgbImage::from_raw(side, side, vec![value; (side * side * 3) as usize]).unwrap()
    }

    #[test]
    fn holds_within_the_budget_and_hands_each_image_over_once() {
        let held = HeldSources::new(2 * 4 * 4 * 3); // two 4 x 4 images
        held.hold(1, image(4, 10));
        held.hold(2, image(4, 20));
        held.hold(3, image(4, 30)); // over the budget: not held
        assert_eq!(held.take(3), None);
        assert_eq!(held.take(1), Some(image(4, 10)));
        assert_eq!(held.take(1), None, "handed over once");
        held.hold(4, image(4, 40)); // room again after a take
        assert_eq!(held.take(4), Some(image(4, 40)));
        assert_eq!(held.take(2), Some(image(4, 20)));
        assert_eq!(held.handed_over(), 3);
    }
}
