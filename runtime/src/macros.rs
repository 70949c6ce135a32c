//! The instrumentation macros. With the `enabled` feature off (it is on by
//! default), each expands to its bare block, future or nothing: zero cost.

/// Times the rest of the enclosing block as a scope named by a string.
///
/// ```
/// fn parse(input: &str) -> usize {
///     pulse::scope!("parse");
///     input.split(',').count()
/// }
/// # assert_eq!(parse("a,b"), 2);
/// ```
///
/// `scope!("name", counters)` also reads the thread's hardware counters (or
/// their software fallback) at both ends of the scope.
///
/// In a signal handler, a scope that interrupted its thread inside pulse's
/// own code (recording an event, reading the counters) is not recorded, so
/// that it never waits on the code it interrupted; a scope's first use on a
/// thread allocates, which a handler must not do.
#[cfg(feature = "enabled")]
#[macro_export]
macro_rules! scope {
    ($name:expr) => {
        let _pulse_scope = {
            static SITE: $crate::ScopeSite = $crate::ScopeSite::new($name);
            $crate::ScopeGuard::enter(&SITE)
        };
    };
    ($name:expr, counters) => {
        let _pulse_scope = {
            static SITE: $crate::ScopeSite = $crate::ScopeSite::new($name);
            $crate::ScopeGuard::enter_counted(&SITE)
        };
    };
}

/// Times the rest of the enclosing block as a scope named by a string.
#[cfg(not(feature = "enabled"))]
#[macro_export]
macro_rules! scope {
    ($name:expr) => {};
    ($name:expr, counters) => {};
}

/// Times a block as a typed operation and returns the block's value; `?`,
/// `return`, `break` and panics inside still close the scope.
///
/// ```
/// # #[derive(pulse::Operation)] enum Op { Parse }
/// fn total(input: &str) -> Result<u64, std::num::ParseIntError> {
///     let n = pulse::profile!(Op::Parse, {
///         input.split(',').map(|x| x.parse::<u64>()).sum::<Result<u64, _>>()?
///     });
///     Ok(n)
/// }
/// # assert_eq!(total("1,2").unwrap(), 3);
/// # assert!(total("x").is_err());
/// ```
#[cfg(feature = "enabled")]
#[macro_export]
macro_rules! profile {
    ($op:expr, $body:block) => {{
        let _pulse_scope = $crate::ScopeGuard::enter($crate::Operation::site(&$op));
        $body
    }};
}

/// Times a block as a typed operation and returns the block's value.
#[cfg(not(feature = "enabled"))]
#[macro_export]
macro_rules! profile {
    ($op:expr, $body:block) => {
        $body
    };
}

/// Wraps a future as a typed operation: its polls are its busy time, first
/// poll to completion its wall time. `.await` the result.
///
/// ```
/// # #[derive(pulse::Operation)] enum Op { Fetch }
/// async fn fetch() -> u32 {
///     pulse::profile_async!(Op::Fetch, async { 42 }).await
/// }
/// ```
#[cfg(feature = "enabled")]
#[macro_export]
macro_rules! profile_async {
    ($op:expr, $fut:expr) => {
        $crate::Instrumented::new($crate::Operation::site(&$op), $fut)
    };
}

/// Wraps a future as a typed operation.
#[cfg(not(feature = "enabled"))]
#[macro_export]
macro_rules! profile_async {
    ($op:expr, $fut:expr) => {
        $fut
    };
}

/// Pauses recording on this thread (see [`pause`](fn@crate::pause)).
#[cfg(feature = "enabled")]
#[macro_export]
macro_rules! pause {
    () => {
        $crate::pause()
    };
}

/// Pauses recording on this thread.
#[cfg(not(feature = "enabled"))]
#[macro_export]
macro_rules! pause {
    () => {};
}

/// Resumes recording on this thread (see [`resume`](fn@crate::resume)).
#[cfg(feature = "enabled")]
#[macro_export]
macro_rules! unpause {
    () => {
        $crate::resume()
    };
}

/// Resumes recording on this thread.
#[cfg(not(feature = "enabled"))]
#[macro_export]
macro_rules! unpause {
    () => {};
}
