// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! NULL → PLAYING → NULL a thousand times with a model loaded: no thread, no file descriptor and
//! no memory is left behind. These are per-process counts, so the tests have a binary of their
//! own.
//!
//! Memory is what the process holds, not what it maps: glibc's `mallinfo2()` in-use bytes
//! (allocated chunks in every arena plus mmapped blocks). RSS is not used: glibc keeps freed
//! memory in up to 8 arenas a core, so RSS swings by ±7 MB from cycle to cycle on some machines
//! with no trend. A leak is a trend: the least-squares slope of many readings, in bytes per
//! cycle. The second test injects a 10 kB-per-cycle leak and checks that the same measurement
//! catches it.

mod common;

use common::*;
use gst::prelude::*;

/// Bytes the process has allocated and not freed.
fn in_use() -> u64 {
    // SAFETY: mallinfo2 only reads malloc's statistics.
    let m = unsafe { libc::mallinfo2() };
    (m.uordblks + m.hblkhd) as u64
}

fn threads() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Least-squares slope of `(cycle, bytes)` readings, in bytes per cycle.
fn slope(readings: &[(f64, f64)]) -> f64 {
    let n = readings.len() as f64;
    let (mx, my) = readings
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (sxy, sxx) = readings.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    sxy / sxx
}

/// What `cycles` state cycles did, after `warm_up` more, with `leak` bytes leaked on purpose in
/// each.
struct Run {
    slope: f64,
    threads: (u64, u64),
    fds: (usize, usize),
}

/// The tests measure the same process: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cycles(warm_up: usize, cycles: usize, leak: usize) -> Run {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    init_gst();
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers=2 ! video/x-raw,format=RGBx,width=48,height=32 ! \
         beitseg model=\"{}\" workers=2 ! fakesink sync=false",
        selfie().display()
    ));
    let bus = pipeline.bus().unwrap();
    let cycle = || {
        pipeline.set_state(gst::State::Playing).unwrap();
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(30),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .expect("EOS within 30 s");
        assert_eq!(msg.type_(), gst::MessageType::Eos, "{msg:?}");
        pipeline.set_state(gst::State::Null).unwrap();
        if leak > 0 {
            // black_box: an allocation nobody reads may be optimised away.
            std::mem::forget(std::hint::black_box(vec![1u8; leak]));
        }
    };
    // Warm-up: ONNX Runtime's and GStreamer's one-time allocations (thread pools, registries,
    // caps caches) are made and kept.
    for _ in 0..warm_up {
        cycle();
    }
    let before = (threads(), open_fds());
    let mut readings = Vec::new();
    for i in 0..cycles {
        cycle();
        if i % 10 == 9 {
            readings.push((i as f64, in_use() as f64));
        }
    }
    let run = Run {
        slope: slope(&readings),
        threads: (before.0, threads()),
        fds: (before.1, open_fds()),
    };
    eprintln!(
        "{cycles} cycles (leak {leak} B each): in use {:.1} → {:.1} MB, slope {:.0} B/cycle, \
         threads {:?}, fds {:?}",
        readings[0].1 / 1e6,
        readings[readings.len() - 1].1 / 1e6,
        run.slope,
        run.threads,
        run.fds
    );
    run
}

/// A leak of at least this much per cycle fails the test (10 kB a cycle is 10 MB per 1000).
const LEAK_BYTES_PER_CYCLE: f64 = 2048.0;

#[test]
fn a_thousand_state_cycles_leak_no_threads_no_descriptors_and_no_memory() {
    let n: usize = std::env::var("CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let run = cycles(100, n, 0);
    assert!(run.threads.1 <= run.threads.0, "threads {:?}", run.threads);
    assert!(
        run.fds.1 <= run.fds.0,
        "open file descriptors {:?}",
        run.fds
    );
    assert!(
        run.slope < LEAK_BYTES_PER_CYCLE,
        "memory in use grows by {:.0} bytes a cycle",
        run.slope
    );
}

#[test]
fn an_injected_leak_of_ten_kilobytes_a_cycle_is_caught() {
    let run = cycles(50, 200, 10 * 1024);
    assert!(
        run.slope >= LEAK_BYTES_PER_CYCLE,
        "a 10 kB/cycle leak measured as {:.0} bytes a cycle",
        run.slope
    );
}
