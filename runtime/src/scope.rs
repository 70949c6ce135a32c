//! Scope guards and the registry of scope names.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use pulse_alloc::EventKind;

/// A scope's definition as written into the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScopeDefinition {
    pub(crate) id: u32,
    pub(crate) name: &'static str,
    pub(crate) category: &'static str,
    pub(crate) description: &'static str,
    pub(crate) priority: i64,
}

/// Every scope registered in this process, in id order (id = index + 1).
static REGISTRY: Mutex<Vec<ScopeDefinition>> = Mutex::new(Vec::new());

/// The static half of a scope: its name and, once first entered, its id.
/// [`scope!`](crate::scope!) makes one per call site.
#[derive(Debug)]
pub struct ScopeSite {
    name: &'static str,
    category: &'static str,
    description: &'static str,
    id: AtomicU32,
}

impl ScopeSite {
    /// A scope named `name`, with no category.
    pub const fn new(name: &'static str) -> Self {
        ScopeSite { name, category: "", description: "", id: AtomicU32::new(0) }
    }

    /// A scope in a category.
    pub const fn with_category(
        name: &'static str,
        category: &'static str,
        description: &'static str,
    ) -> Self {
        ScopeSite { name, category, description, id: AtomicU32::new(0) }
    }

    /// The scope's session-wide id, registering it on first use.
    #[inline]
    pub fn id(&self) -> u32 {
        let id = self.id.load(Ordering::Relaxed);
        if id != 0 {
            return id;
        }
        self.register()
    }

    #[cold]
    fn register(&self) -> u32 {
        pulse_alloc::untracked(|| {
            let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
            // Another thread may have registered this site while we waited.
            let id = self.id.load(Ordering::Relaxed);
            if id != 0 {
                return id;
            }
            // The same name at two call sites is one scope.
            let found = reg
                .iter()
                .find(|d| d.name == self.name && d.category == self.category)
                .map(|d| d.id);
            let id = found.unwrap_or_else(|| {
                let id = reg.len() as u32 + 1;
                reg.push(ScopeDefinition {
                    id,
                    name: self.name,
                    category: self.category,
                    description: self.description,
                    priority: 0,
                });
                id
            });
            self.id.store(id, Ordering::Relaxed);
            id
        })
    }
}

/// Definitions registered since `from` (an index into the registry).
pub(crate) fn definitions_since(from: usize) -> Vec<ScopeDefinition> {
    let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.get(from..).map(<[_]>::to_vec).unwrap_or_default()
}

/// Times the enclosing block on this thread: the scope is entered when the
/// guard is made and left when it is dropped, also by `?`, `return` or a panic.
///
/// Cost: one clock read and one 48-byte append to the thread's ring at each
/// end while a session records; one relaxed atomic load at each end when
/// none does.
#[must_use = "the scope ends when this guard is dropped"]
#[derive(Debug)]
pub struct ScopeGuard {
    id: u32,
    _not_send: PhantomData<*const ()>,
}

impl ScopeGuard {
    /// Enters the scope `site`.
    #[inline]
    pub fn enter(site: &'static ScopeSite) -> Self {
        let id = site.id();
        pulse_alloc::record_marker(EventKind::ScopeEnter, id);
        ScopeGuard { id, _not_send: PhantomData }
    }
}

impl Drop for ScopeGuard {
    #[inline]
    fn drop(&mut self) {
        pulse_alloc::record_marker(EventKind::ScopeExit, self.id);
    }
}

/// Times the rest of the enclosing block as a scope named by a string literal.
///
/// ```
/// fn parse(input: &str) -> usize {
///     pulse::scope!("parse");
///     input.split(',').count()
/// }
/// # assert_eq!(parse("a,b"), 2);
/// ```
#[cfg(feature = "enabled")]
#[macro_export]
macro_rules! scope {
    ($name:expr) => {
        let _pulse_scope = {
            static SITE: $crate::ScopeSite = $crate::ScopeSite::new($name);
            $crate::ScopeGuard::enter(&SITE)
        };
    };
}

/// With the `enabled` feature off, `scope!` expands to nothing.
#[cfg(not(feature = "enabled"))]
#[macro_export]
macro_rules! scope {
    ($($t:tt)*) => {};
}
