// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! Several beitseg elements with the same model share its sessions. Its own test binary: it
//! counts the sessions this process creates.

mod common;

use common::*;
use gst::prelude::*;

#[test]
fn two_elements_share_one_session() {
    init_gst();
    let model = tiny_beit();
    let before = gstbeitseg::model::sessions_created();
    let pipeline = launch_pipeline(&format!(
        "videotestsrc num-buffers=3 ! video/x-raw,format=RGB,width=64,height=48 ! beitseg model={m} workers=1 ! fakesink \
         videotestsrc num-buffers=3 ! video/x-raw,format=BGRx,width=80,height=60 ! beitseg model={m} workers=1 ! fakesink",
        m = model.display()
    ));
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    assert!(
        matches!(
            msg.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ),
        "{msg:?}"
    );
    assert_eq!(
        gstbeitseg::model::sessions_created() - before,
        1,
        "one session for both elements"
    );
    pipeline.set_state(gst::State::Null).unwrap();
    // Once nobody holds it, the next start loads it again: once, for all four workers.
    let again = launch_pipeline(&format!(
        "videotestsrc num-buffers=1 ! beitseg model={} workers=4 ! fakesink",
        model.display()
    ));
    again.set_state(gst::State::Paused).unwrap();
    again.state(gst::ClockTime::from_seconds(60)).0.unwrap();
    assert_eq!(gstbeitseg::model::sessions_created() - before, 2);
    again.set_state(gst::State::Null).unwrap();
}
