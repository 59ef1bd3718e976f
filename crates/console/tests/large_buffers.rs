//! `map_large_buffers` against glibc's own behaviour. It changes the process-wide
//! allocator, and glibc serves a thread's allocations from an arena of its own whose free
//! room hides the threshold, so this test is its own process and runs on the main thread
//! (`harness = false` in Cargo.toml: `main` is the test; it panics on failure).

fn main() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    buffers_of_the_threshold_are_mapped_even_after_a_larger_one_was_freed();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn buffers_of_the_threshold_are_mapped_even_after_a_larger_one_was_freed() {
    // The control needs glibc's own behaviour, so a threshold set from outside voids it.
    assert!(std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none(), "unset MALLOC_MMAP_THRESHOLD_ to run this test");
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let mapped_chunks = || unsafe { libc::mallinfo2() }.hblks;
    // Freeing a mapped 24 MiB buffer raises glibc's threshold above 6 MiB...
    let mapped_after = |bytes: usize| {
        drop(std::hint::black_box(vec![1u8; 24 << 20]));
        let before = mapped_chunks();
        let buffer = std::hint::black_box(vec![1u8; bytes]);
        let mapped = mapped_chunks() > before;
        drop(buffer);
        mapped
    };
    let size = clipshift_console::MAPPED_FROM_BYTES + (2 << 20);
    assert!(!mapped_after(size), "control: glibc should have served {size} bytes from its heap");
    // ... until the threshold is fixed. The control's free heap top is released first: a
    // heap with room serves any size, unlike that of a process whose main just started.
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe { libc::malloc_trim(0) };
    clipshift_console::map_large_buffers();
    assert!(mapped_after(size), "{size} bytes should have their own mapping");
    assert!(!mapped_after(64 << 10), "small buffers stay on the heap");
    println!("test buffers_of_the_threshold_are_mapped_even_after_a_larger_one_was_freed ... ok");
}
