// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Faults and delays the tests inject into the element's workers. Compiled only with the
//! `test-hooks` feature (scripts/test.sh turns it on), never into the shipped plugin. Read when
//! an element starts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// What goes wrong at the chosen frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The frame's inference fails with an error.
    Error,
    /// The worker panics.
    Panic,
}

static JITTER_MS: AtomicU64 = AtomicU64::new(0);
static FAULT: Mutex<Option<(Fault, u64)>> = Mutex::new(None);

/// A random delay of 0..`ms` ms before each batch makes workers finish out of order.
pub fn set_worker_jitter_ms(ms: u64) {
    JITTER_MS.store(ms, Ordering::SeqCst);
}

/// The worker that takes frame `at` (counted from 1 across the workers of a start) fails it;
/// `None` turns the fault off.
pub fn set_worker_fault(fault: Option<(Fault, u64)>) {
    *FAULT.lock().unwrap_or_else(|e| e.into_inner()) = fault;
}

pub(crate) fn worker_jitter_ms() -> u64 {
    JITTER_MS.load(Ordering::SeqCst)
}

pub(crate) fn worker_fault() -> Option<(Fault, u64)> {
    *FAULT.lock().unwrap_or_else(|e| e.into_inner())
}
