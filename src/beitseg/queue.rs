// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The ordered queue between the streaming thread (sink pad) and the pusher (src pad task):
//! frames and serialized events in input order.

use std::collections::VecDeque;
use std::sync::Arc;

use anyhow::anyhow;

use super::worker::Rendered;
use crate::frame::ClassMap;
use crate::pool::Ticket;

/// What the pusher sends downstream, in input order.
pub(super) enum Item {
    Frame {
        ticket: Ticket<Rendered>,
        anchor: Option<Ticket<Arc<ClassMap>>>,
    },
    /// A serialized event, as it goes to the `src` pad and to the `mask` pad.
    Event {
        src: Option<gst::Event>,
        mask: Option<gst::Event>,
    },
}

impl Item {
    /// Gives up on a frame: the pool skips it if not started, and frames waiting for its class
    /// map compute their own.
    pub(super) fn discard(&self) {
        if let Item::Frame { ticket, anchor } = self {
            ticket.cancel();
            if let Some(a) = anchor {
                a.fill(Err(anyhow!("discarded")));
            }
        }
    }
}

/// The ordered queue between the streaming thread (sink pad) and the pusher (src pad task).
pub(super) struct Queue {
    pub(super) items: VecDeque<Item>,
    /// Frames queued or being pushed, bounded by `max-in-flight`.
    pub(super) frames: usize,
    pub(super) flushing: bool,
    /// The last downstream flow, returned upstream by the next chain call.
    pub(super) flow: Result<gst::FlowSuccess, gst::FlowError>,
}

impl Default for Queue {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
            frames: 0,
            flushing: true,
            flow: Ok(gst::FlowSuccess::Ok),
        }
    }
}
