//! Fuzz the report-field parsers, the sent-message extractor and the mbox
//! splitter on arbitrary bytes.
#![no_main]

use backscatter::classify::fields;
use backscatter::{mbox, SentMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fields::delivery_status(data);
    let _ = fields::feedback_report(data);
    let text = String::from_utf8_lossy(data);
    let _ = fields::quoted_message_ids(&text);
    let _ = fields::text_recipients(&text);
    let _ = fields::all_message_ids(&text);
    let _ = SentMessage::from_raw(data);
    for m in mbox::split(data) {
        assert!(m.len() <= data.len());
    }
});
