//! End-to-end tests of the clipshift pipeline live in `it/`; this library is empty.
