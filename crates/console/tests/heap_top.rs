//! `map_large_buffers` keeps freed heap top for the next buffers instead of giving it
//! back, against glibc's own behaviour in a process whose thresholds nothing moved yet.
//! Its own process on the main thread (`harness = false`), as `large_buffers`: the
//! setting is process-wide and the counters read are the main arena's.

fn main() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    freed_heap_top_is_kept_for_the_next_buffers();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn freed_heap_top_is_kept_for_the_next_buffers() {
    for variable in ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"] {
        assert!(std::env::var_os(variable).is_none(), "unset {variable} to run this test");
    }
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let kept_on_top = || unsafe { libc::mallinfo2() }.keepcost;
    // 3 MiB of 48 KiB buffers (each under glibc's initial 128 KiB mapping threshold, so
    // on the heap), freed newest first: the heap's top grows by 3 MiB, then is free.
    let top_after_freeing = || {
        let buffers: Vec<Vec<u8>> = (0..64).map(|_| std::hint::black_box(vec![1u8; 48 << 10])).collect();
        buffers.into_iter().rev().for_each(drop);
        kept_on_top()
    };
    let control = top_after_freeing();
    assert!(control < 1 << 20, "control: glibc should have trimmed the free top, kept {control} bytes");
    clipshift_console::map_large_buffers();
    let kept = top_after_freeing();
    assert!(kept >= 3 << 20, "3 MiB of free top should be kept, kept {kept} bytes");
    assert!(kept < clipshift_console::KEPT_ON_TOP_BYTES + (1 << 20), "kept {kept} bytes, more than the setting");
    println!("test freed_heap_top_is_kept_for_the_next_buffers ... ok");
}
