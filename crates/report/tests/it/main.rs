//! Integration tests of clipshift-report: scipy/numpy reference fixtures, a
//! synthetic run directory pushed through the whole stage, and the page in a
//! headless browser.

mod browser;
mod page;
mod reference;
mod stage;
