//! A real session file cut at every byte reads as far as its last whole
//! chunk, never panics, and yields a prefix of the full read.

use std::process::Command;

use pulse_format::{Frame, Reader};
use pulse_tests::temp_session;

fn frames(bytes: &[u8]) -> (Vec<Frame>, Option<pulse_format::Error>) {
    let mut r = match Reader::new(bytes) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut out = Vec::new();
    loop {
        match r.next_frame() {
            Ok(Some(f)) => out.push(f),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

#[test]
fn a_real_session_cut_at_every_byte() {
    let path = temp_session("truncation");
    let status = Command::new(env!("CARGO_BIN_EXE_env_only"))
        .env("PULSE_OUT", &path)
        .status()
        .expect("run env_only");
    assert!(status.success());
    let full = std::fs::read(&path).unwrap();
    let (all, err) = frames(&full);
    assert!(err.is_none(), "{err:?}");
    assert!(all.len() >= 2, "expected chunks and a trailer");
    let whole = pulse_analysis::Profile::read(&full[..]).unwrap();

    for cut in 0..full.len() {
        let part = &full[..cut];
        let (got, err) = frames(part);
        let err = err.unwrap_or_else(|| panic!("cut at {cut}: no error"));
        assert!(
            err.is_truncation() || matches!(err, pulse_format::Error::Empty),
            "cut at {cut}: {err}"
        );
        assert!(got.len() < all.len(), "cut at {cut}");
        assert_eq!(got[..], all[..got.len()], "cut at {cut}: not a prefix");
        // The analyzer reports what was read, and never more than the whole.
        if let Ok(p) = pulse_analysis::Profile::read(part) {
            assert!(p.truncated.is_some(), "cut at {cut}");
            assert!(p.memory.allocs <= whole.memory.allocs, "cut at {cut}");
            assert!(p.chunks <= whole.chunks, "cut at {cut}");
        }
    }
}
