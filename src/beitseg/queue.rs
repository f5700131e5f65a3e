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

/// The queue behind its lock, with the condition both sides wait on.
#[derive(Default)]
pub(super) struct FrameQueue {
    inner: std::sync::Mutex<Queue>,
    changed: std::sync::Condvar,
}

impl FrameQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, q: std::sync::MutexGuard<'a, Queue>) -> std::sync::MutexGuard<'a, Queue> {
        self.changed.wait(q).unwrap_or_else(|e| e.into_inner())
    }

    /// Flushing drops every waiting item (their frames are cancelled); ending the flush clears
    /// the last downstream flow.
    pub(super) fn set_flushing(&self, flushing: bool) {
        let mut q = self.lock();
        q.flushing = flushing;
        if flushing {
            for item in q.items.drain(..) {
                item.discard();
            }
            q.frames = 0;
        } else {
            q.flow = Ok(gst::FlowSuccess::Ok);
        }
        self.changed.notify_all();
    }

    pub(super) fn is_flushing(&self) -> bool {
        self.lock().flushing
    }

    /// Queues a serialized event behind the frames before it; false when flushing.
    pub(super) fn push_event(&self, src: Option<gst::Event>, mask: Option<gst::Event>) -> bool {
        let mut q = self.lock();
        if q.flushing {
            return false;
        }
        q.items.push_back(Item::Event { src, mask });
        self.changed.notify_all();
        true
    }

    /// Back-pressure before a frame: waits while `max_in_flight` frames are queued or being
    /// pushed or, with `drop_oldest`, makes room by dropping the oldest frame still waiting.
    /// Returns how many frames were dropped, or the flow that stops the stream.
    pub(super) fn reserve(
        &self,
        max_in_flight: usize,
        drop_oldest: bool,
    ) -> Result<u64, gst::FlowError> {
        let mut dropped = 0;
        let mut q = self.lock();
        while !q.flushing && q.flow.is_ok() && q.frames >= max_in_flight {
            if drop_oldest {
                if let Some(i) = q
                    .items
                    .iter()
                    .position(|it| matches!(it, Item::Frame { .. }))
                {
                    let item = q.items.remove(i).expect("index from position");
                    item.discard();
                    q.frames -= 1;
                    dropped += 1;
                    continue;
                }
            }
            q = self.wait(q);
        }
        if q.flushing {
            return Err(gst::FlowError::Flushing);
        }
        q.flow?;
        Ok(dropped)
    }

    /// Queues a frame; returns the last downstream flow.
    pub(super) fn push_frame(
        &self,
        ticket: Ticket<Rendered>,
        anchor: Option<Ticket<Arc<ClassMap>>>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut q = self.lock();
        if q.flushing {
            return Err(gst::FlowError::Flushing);
        }
        q.items.push_back(Item::Frame { ticket, anchor });
        q.frames += 1;
        self.changed.notify_all();
        q.flow
    }

    /// The next item in order, waiting for one; `None` once flushing.
    pub(super) fn pop(&self) -> Option<Item> {
        let mut q = self.lock();
        loop {
            if q.flushing {
                return None;
            }
            if let Some(item) = q.items.pop_front() {
                return Some(item);
            }
            q = self.wait(q);
        }
    }

    /// The last downstream flow.
    pub(super) fn flow(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.lock().flow
    }

    /// Downstream refused something: frames stop, events still go.
    pub(super) fn fail(&self, err: gst::FlowError) {
        self.lock().flow = Err(err);
    }

    /// A frame left the queue (pushed with `flow`, or dropped with `None`): room for the next.
    pub(super) fn frame_done(&self, flow: Option<Result<gst::FlowSuccess, gst::FlowError>>) {
        let mut q = self.lock();
        if !q.flushing {
            q.frames = q.frames.saturating_sub(1);
            if let Some(flow) = flow {
                if q.flow.is_ok() {
                    q.flow = flow;
                }
            }
        }
        drop(q);
        self.changed.notify_all();
    }

    /// Frames queued or being pushed.
    pub(super) fn depth(&self) -> usize {
        self.lock().frames
    }
}
