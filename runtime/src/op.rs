//! Typed operations: an enum whose variants are the operations a program
//! times, each with its category.

use crate::scope::ScopeSite;

/// A typed operation. Derive it on an enum — a misspelled operation is then
/// a compile error, and the session records each operation's name,
/// category, description and priority once:
///
/// ```
/// #[derive(pulse::Operation)]
/// enum Op {
///     #[category(name = "Feed", description = "Market data in")]
///     Parse,
///     #[category(name = "Feed")] // the description is reused
///     Validate(u32),
///     #[category(name = "Orders", description = "Order handling")]
///     #[priority(10)]
///     Submit { venue: &'static str },
/// }
///
/// let n = pulse::profile!(Op::Parse, { "1,2,3".split(',').count() });
/// assert_eq!(n, 3);
/// pulse::profile!(Op::Submit { venue: "XNYS" }, {});
/// ```
///
/// Or implement it by hand, with one static site per operation:
///
/// ```
/// use pulse::{Operation, ScopeSite};
///
/// enum Io { Read, Write }
///
/// impl Operation for Io {
///     fn site(&self) -> &'static ScopeSite {
///         static READ: ScopeSite = ScopeSite::operation("Read", "IO", "Disk access", 0);
///         static WRITE: ScopeSite = ScopeSite::operation("Write", "IO", "Disk access", 0);
///         match self {
///             Io::Read => &READ,
///             Io::Write => &WRITE,
///         }
///     }
/// }
/// ```
pub trait Operation {
    /// The operation's scope site: its name, category and id.
    fn site(&self) -> &'static ScopeSite;
}

impl Operation for &'static ScopeSite {
    fn site(&self) -> &'static ScopeSite {
        self
    }
}
