// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! What `beitseg` prints. Writing to stdout or stderr never ends, panics or stalls a run: a
//! closed pipe (`beitseg run … 2>&1 | head -1`), a full device (`2>/dev/full`) or a reader that
//! stopped reading only lose the lines, never a frame. Lines for stderr that is not a terminal
//! go through a bounded queue to a thread of their own, so a pipe nobody reads holds back that
//! thread and not the run; when the queue is full a line is dropped. On a terminal they are
//! written at once (the progress bars redraw around them).

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use crossbeam_channel::{bounded, Sender};

/// Lines waiting for a slow stderr before new ones are dropped.
const QUEUED_LINES: usize = 1024;

enum Message {
    Text(String),
    /// Answered once every line before it was written (or failed).
    Flushed(Sender<()>),
}

fn writer() -> Option<&'static Sender<Message>> {
    static WRITER: OnceLock<Option<Sender<Message>>> = OnceLock::new();
    WRITER
        .get_or_init(|| {
            if std::io::stderr().is_terminal() {
                return None;
            }
            let (tx, rx) = bounded::<Message>(QUEUED_LINES);
            std::thread::Builder::new()
                .name("stderr".into())
                .spawn(move || {
                    for message in rx {
                        match message {
                            Message::Text(text) => {
                                let _ = std::io::stderr().lock().write_all(text.as_bytes());
                            }
                            Message::Flushed(done) => {
                                let _ = done.send(());
                            }
                        }
                    }
                })
                .ok()?;
            Some(tx)
        })
        .as_ref()
}

/// Writes `text` (whole lines) to stderr, or queues it; never fails.
pub fn stderr(text: String) {
    match writer() {
        Some(tx) => {
            let _ = tx.try_send(Message::Text(text));
        }
        None => {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    }
}

/// Writes `text` to stdout; a closed or full stdout loses it, nothing else.
pub fn stdout(text: String) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Waits, at most `limit`, until the queued lines are written: before the process exits.
pub fn flush(limit: Duration) {
    let Some(tx) = writer() else {
        return;
    };
    let (done, wait) = bounded(1);
    if tx.send_timeout(Message::Flushed(done), limit).is_ok() {
        let _ = wait.recv_timeout(limit);
    }
}

/// `eprintln!` that never panics or stalls (see the module).
macro_rules! say {
    () => {
        $crate::console::stderr("\n".to_string())
    };
    ($($arg:tt)*) => {
        $crate::console::stderr(format!("{}\n", format_args!($($arg)*)))
    };
}

/// `println!` that never panics.
macro_rules! out {
    () => {
        $crate::console::stdout("\n".to_string())
    };
    ($($arg:tt)*) => {
        $crate::console::stdout(format!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, say};
