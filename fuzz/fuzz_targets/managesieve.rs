//! Fuzz the ManageSieve response codec (bytes from the server): no panic,
//! never more consumed than given, and a response parsed from a prefix is
//! the same when more bytes follow.
#![no_main]

use backscatter::managesieve::{parse_response, parse_sasl_step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((r, used))) = parse_response(data) {
        assert!(used <= data.len());
        let mut longer = data.to_vec();
        longer.extend_from_slice(b"OK\r\n");
        let again = parse_response(&longer).unwrap().unwrap();
        assert_eq!(again, (r.clone(), used));
        let _ = r.text();
        let _ = r.ok();
    }
    if let Ok(Some((_, used))) = parse_sasl_step(data) {
        assert!(used <= data.len());
    }
});
