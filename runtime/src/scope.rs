//! Scope guards, the registry of scope names, and pausing.

use std::cell::Cell;
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

/// The static half of a scope: its name, category and, once first entered,
/// its session-wide id. [`scope!`](crate::scope!) makes one per call site;
/// `#[derive(Operation)]` one per variant.
#[derive(Debug)]
pub struct ScopeSite {
    name: &'static str,
    category: &'static str,
    description: &'static str,
    priority: i64,
    id: AtomicU32,
}

impl ScopeSite {
    /// A scope named `name`, with no category.
    pub const fn new(name: &'static str) -> Self {
        ScopeSite::operation(name, "", "", 0)
    }

    /// A typed operation: a name in a category (empty for none) with the
    /// category's description and a priority (higher sorts first).
    pub const fn operation(
        name: &'static str,
        category: &'static str,
        description: &'static str,
        priority: i64,
    ) -> Self {
        ScopeSite { name, category, description, priority, id: AtomicU32::new(0) }
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its category, or empty.
    pub fn category(&self) -> &'static str {
        self.category
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
            // The collector reads the registry: a signal waits for its release.
            let _held = pulse_alloc::Holding::new();
            let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
            // Another thread may have registered this site while we waited.
            let id = self.id.load(Ordering::Relaxed);
            if id != 0 {
                return id;
            }
            // The same name in the same category at two call sites is one scope.
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
                    priority: self.priority,
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

thread_local! {
    /// Whether this thread is paused: `const`, no destructor.
    static PAUSED: Cell<bool> = const { Cell::new(false) };
}

/// Pauses recording on this thread: until [`resume`], the time is excluded
/// from every open scope's time, and scopes entered are not recorded.
/// Allocations are still recorded (memory is not time). Pausing twice is
/// the same as once.
pub fn pause() {
    if !PAUSED.with(|p| p.replace(true)) {
        pulse_alloc::record_marker(EventKind::Pause, 0);
    }
}

/// Resumes recording on this thread after [`pause`].
pub fn resume() {
    if PAUSED.with(|p| p.replace(false)) {
        pulse_alloc::record_marker(EventKind::Resume, 0);
    }
}

/// Whether this thread is paused.
#[inline]
pub fn is_paused() -> bool {
    PAUSED.with(Cell::get)
}

/// Times the enclosing block on this thread: the scope is entered when the
/// guard is made and left when it is dropped, also by `?`, `return` or a panic.
///
/// Cost: one clock read and one 16-byte append to the thread's ring at each
/// end while a session records (see `docs/PERFORMANCE.md`); one relaxed
/// atomic load at each end when none does; nothing at all with the
/// `enabled` feature off (the macros expand to the bare block).
#[must_use = "the scope ends when this guard is dropped"]
#[derive(Debug)]
pub struct ScopeGuard {
    /// 0 when the scope was entered while paused: nothing to close.
    id: u32,
    /// Read the thread's counters at both ends.
    counted: bool,
    _not_send: PhantomData<*const ()>,
}

impl ScopeGuard {
    /// Enters the scope `site`.
    #[inline]
    pub fn enter(site: &'static ScopeSite) -> Self {
        Self::open(site, false)
    }

    /// Enters the scope `site` and reads the thread's counters at both ends
    /// (a `read` system call each: a few hundred nanoseconds). The session
    /// records which counters exist; where none can be opened, this is
    /// [`ScopeGuard::enter`].
    #[inline]
    pub fn enter_counted(site: &'static ScopeSite) -> Self {
        Self::open(site, true)
    }

    /// Inlined whole into the caller, as is the guard's drop: a scope costs
    /// no call besides its clock reads (the ring's rare slow paths apart).
    #[inline(always)]
    fn open(site: &'static ScopeSite, counted: bool) -> Self {
        if !pulse_alloc::is_recording() || is_paused() {
            return ScopeGuard { id: 0, counted: false, _not_send: PhantomData };
        }
        let id = site.id();
        if counted {
            crate::counters::prepare();
        }
        pulse_alloc::record_boundary(EventKind::ScopeEnter, id);
        if counted {
            read_counters(id);
        }
        ScopeGuard { id, counted, _not_send: PhantomData }
    }
}

#[cold]
fn read_counters(scope: u32) {
    if let Some((values, n)) = crate::counters::read_current() {
        pulse_alloc::record_counters(scope, &values, n);
    }
}

impl Drop for ScopeGuard {
    #[inline(always)]
    fn drop(&mut self) {
        if self.id != 0 {
            if self.counted {
                read_counters(self.id);
            }
            pulse_alloc::record_marker(EventKind::ScopeExit, self.id);
        }
    }
}
