// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! NULL → PLAYING → NULL a thousand times with a model loaded: no thread and no memory is left
//! behind. Thread count and RSS are per process, so this test has a test binary of its own.

mod common;

use common::*;
use gst::prelude::*;

extern "C" {
    /// glibc: hands the free memory that malloc's arenas keep back to the system.
    fn malloc_trim(pad: usize) -> i32;
}

/// RSS in kB of memory in use: freed memory that glibc's arenas keep is returned first, so
/// what remains is what the process holds.
fn rss_in_use() -> u64 {
    // SAFETY: malloc_trim only releases free pages; it is safe to call at any time.
    unsafe { malloc_trim(0) };
    status_field("VmRSS:")
}

fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn a_thousand_state_cycles_leak_no_threads_and_no_memory() {
    init_gst();
    let model = selfie();
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=2 ! video/x-raw,format=RGBx,width=48,height=32 ! \
         beitseg model=\"{}\" workers=2 ! fakesink sync=false",
        model.display()
    ))
    .unwrap();
    let bus = pipeline.bus().unwrap();
    let cycle = || {
        pipeline.set_state(gst::State::Playing).unwrap();
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(30),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .expect("EOS within 30 s");
        assert_eq!(msg.type_(), gst::MessageType::Eos);
        pipeline.set_state(gst::State::Null).unwrap();
    };
    // Warm-up: ONNX Runtime's thread pools, GStreamer's caches. Every start loads the sessions
    // and runs worker threads anew, and glibc spreads threads over up to 8 arenas per core that
    // keep what they held: RSS (read after malloc_trim) rises by ~8 % over the first ~500
    // cycles, then stays within ±1 MB (CYCLE_TRACE=1 prints it every 100 cycles).
    for _ in 0..500 {
        cycle();
    }
    let (threads, rss) = (status_field("Threads:"), rss_in_use());
    for i in 0..1000 {
        cycle();
        if std::env::var("CYCLE_TRACE").is_ok() && i % 100 == 99 {
            eprintln!("{i}: {} kB", rss_in_use());
        }
    }
    let (threads_after, rss_after) = (status_field("Threads:"), rss_in_use());
    eprintln!("1000 cycles: threads {threads} → {threads_after}, RSS {rss} kB → {rss_after} kB");
    assert!(
        threads_after <= threads,
        "threads {threads} after the warm-up, {threads_after} 1000 cycles later"
    );
    assert!(
        (rss_after as f64) < rss as f64 * 1.05,
        "RSS {rss} kB after the warm-up, {rss_after} kB 1000 cycles later"
    );
}
