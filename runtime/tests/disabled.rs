//! With the `enabled` feature off (`cargo test -p pulse --no-default-features`),
//! every instrumentation macro expands to its bare block: no guard, no
//! clock read, nothing recorded.
#![cfg(not(feature = "enabled"))]

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

// Never constructed: with the feature off, `profile!` drops its operation
// expression entirely, which is the point.
#[allow(dead_code)]
#[derive(pulse::Operation)]
enum Op {
    Work,
}

#[pulse::profile_fn]
fn annotated() -> u32 {
    pulse::scope!("inside");
    41 + 1
}

#[test]
fn macros_expand_to_their_bare_blocks() {
    let dir = std::env::temp_dir().join(format!("pulse-disabled-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("off.pulse");
    let session = pulse::Session::builder().output(&path).start().unwrap();
    // `scope!` expands to nothing: the block's value is its last expression.
    let unit: () = {
        pulse::scope!("nothing");
    };
    let v = pulse::profile!(Op::Work, { 1 + 1 });
    let f = futures_ready(pulse::profile_async!(Op::Work, async { 3 }));
    pulse::pause!();
    pulse::unpause!();
    assert_eq!((unit, v, f, annotated()), ((), 2, 3, 42));
    // The expansion of `profile_async!` is the future itself, not a wrapper.
    let fut: std::future::Ready<u8> = pulse::profile_async!(Op::Work, std::future::ready(1u8));
    drop(fut);
    session.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut r = pulse_format::Reader::new(&bytes[..]).unwrap();
    while let Some(frame) = r.next_frame().unwrap() {
        if let pulse_format::Frame::Chunk(c) = frame {
            assert!(
                c.records.iter().all(|r| !matches!(
                    r,
                    pulse_format::Record::ScopeEnter { .. }
                        | pulse_format::Record::ScopeDef { .. }
                        | pulse_format::Record::Pause { .. }
                        | pulse_format::Record::Span { .. }
                )),
                "{:?}",
                c.records
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

fn futures_ready<F: std::future::Future>(f: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("not ready"),
    }
}
