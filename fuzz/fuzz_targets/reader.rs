//! Arbitrary bytes through the session reader: it may refuse them, but it
//! must not panic, hang, or allocate what a lying length claims.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pulse_format::{Frame, Reader};

fuzz_target!(|data: &[u8]| {
    let mut reader = match Reader::new(data) {
        Ok(r) => r,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = reader.metadata();
    // Every frame takes at least its 16-byte header, so a reader that
    // yields more frames than that is looping.
    let limit = data.len() / 16 + 1;
    for _ in 0..=limit {
        match reader.next_frame() {
            Ok(Some(Frame::Chunk(c))) => assert!(c.offset < data.len() as u64),
            Ok(Some(Frame::Trailer(_))) => {}
            Ok(None) => return,
            Err(e) => {
                let _ = e.to_string();
                let _ = e.is_truncation();
                return;
            }
        }
        assert!(reader.offset() <= data.len() as u64);
    }
    panic!("more frames than the input can hold");
});
