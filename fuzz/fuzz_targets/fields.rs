//! Fuzz the report-field parsers, the Message-ID scanners, the
//! sent-message extractor, the mbox splitter and the skeleton builder on
//! arbitrary bytes.
#![no_main]

use backscatter::classify::fields;
use backscatter::{mbox, SentMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fields::delivery_status(data);
    let _ = fields::feedback_report(data);
    let text = String::from_utf8_lossy(data);
    let _ = fields::quoted_message_ids(data);
    let _ = fields::message_id_of_phrase(&text);
    let _ = fields::text_recipients(&text);
    let _ = fields::all_message_ids(&text);
    let _ = SentMessage::from_raw(data);
    for m in mbox::split(data) {
        assert!(m.len() <= data.len());
    }
    // A skeleton from arbitrary header bytes classifies without panicking.
    let root = backscatter::skeleton::Part::default();
    let m = backscatter::skeleton::build(data, &root, &Default::default());
    let _ = backscatter::classify::may_be_automated(&m);
});
