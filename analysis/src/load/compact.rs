//! A chunk's timed records decoded once, as the replay holds them until
//! they are due: a few 64-bit words a record, where a decoded [`Event`] is
//! 64 bytes and the chunk's own bytes must be decoded again.
//!
//! A chunk's records are decoded when it arrives (its definitions, counts
//! and latest timestamp are needed then); kept in this form, they need not
//! be decoded a second time when they go out. An allocation or a free
//! takes three words (four for the rare large one), a scope boundary two,
//! a reallocation eight. Records
//! that own data (a thread's name, counter readings) are kept beside the
//! words, in order.

use pulse_format::{Event, Record};

/// What a record's first word says: its kind in the low byte, an
/// allocation's alignment as a power of two in the next, a site or scope id
/// in the high half. An allocation of under [`SMALL`] bytes has its size in
/// the 16 bits between; a free of under 2^56 bytes in all but the low byte.
const ALLOC: u64 = 1;
/// An allocation of any alignment or weight: two more words.
const ALLOC_ANY: u64 = 2;
const FREE: u64 = 3;
const REALLOC: u64 = 4;
const SCOPE_ENTER: u64 = 5;
const SCOPE_EXIT: u64 = 6;
const PAUSE: u64 = 7;
const RESUME: u64 = 8;
const THREAD_END: u64 = 9;
const ALLOC_FAILED: u64 = 10;
const SPAN: u64 = 11;
/// A record with data: the next in `records`.
const RECORD: u64 = 12;
/// [`ALLOC`] of [`SMALL`] bytes or more: its size in a word of its own.
const ALLOC_LARGE: u64 = 13;
/// [`FREE`] of 2^56 bytes or more: its size in a word of its own.
const FREE_LARGE: u64 = 14;

/// The sizes an allocation's first word holds.
const SMALL: u64 = 1 << 16;

/// A record held by the replay: an event, or a timed record with data.
/// The rare record is boxed, so that a held event is no larger than the
/// event: the replay moves one into place for every event it emits.
#[derive(Debug)]
pub(crate) enum Held {
    Event(Event),
    Record(u64, Box<Record>),
}

/// One chunk's timed records, in order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Compact {
    words: Vec<u64>,
    records: Vec<Record>,
    /// The bytes `records` own (a thread's name, counter readings).
    owned: usize,
}

#[inline(always)]
fn head(kind: u64, id: u32) -> u64 {
    kind | u64::from(id) << 32
}

impl Compact {
    /// Appends `e`.
    #[inline(always)]
    pub(crate) fn event(&mut self, e: Event) {
        let w = &mut self.words;
        match e {
            Event::Alloc { ts, addr, size, align, site, weight }
                if weight == 1 && align.is_power_of_two() =>
            {
                let log = u64::from(align.trailing_zeros());
                if size < SMALL {
                    w.extend_from_slice(&[head(ALLOC, site) | log << 8 | size << 16, ts, addr]);
                } else {
                    w.extend_from_slice(&[head(ALLOC_LARGE, site) | log << 8, ts, addr, size]);
                }
            }
            Event::Alloc { ts, addr, size, align, site, weight } => {
                w.extend_from_slice(&[head(ALLOC_ANY, site), ts, addr, size, align, weight]);
            }
            Event::Free { ts, addr, size } if size < 1 << 56 => {
                w.extend_from_slice(&[FREE | size << 8, ts, addr]);
            }
            Event::Free { ts, addr, size } => w.extend_from_slice(&[FREE_LARGE, ts, addr, size]),
            Event::Realloc {
                ts,
                start_ts,
                old_addr,
                old_size,
                new_addr,
                new_size,
                align,
                site,
            } => {
                w.extend_from_slice(&[
                    head(REALLOC, site),
                    ts,
                    start_ts,
                    old_addr,
                    old_size,
                    new_addr,
                    new_size,
                    align,
                ]);
            }
            Event::ScopeEnter { ts, scope } => w.extend_from_slice(&[head(SCOPE_ENTER, scope), ts]),
            Event::ScopeExit { ts, scope } => w.extend_from_slice(&[head(SCOPE_EXIT, scope), ts]),
            Event::Pause { ts } => w.extend_from_slice(&[PAUSE, ts]),
            Event::Resume { ts } => w.extend_from_slice(&[RESUME, ts]),
            Event::ThreadEnd { ts } => w.extend_from_slice(&[THREAD_END, ts]),
            Event::AllocFailed { ts, size, align } => {
                w.extend_from_slice(&[ALLOC_FAILED, ts, size, align]);
            }
            Event::Span { ts, start_ts, scope } => {
                w.extend_from_slice(&[head(SPAN, scope), ts, start_ts]);
            }
        }
    }

    /// Appends a record with data, timed at `ts`.
    pub(crate) fn record(&mut self, ts: u64, r: Record) {
        self.owned += match &r {
            Record::Counters { values, .. } => values.capacity() * 8,
            Record::ThreadStart { name, .. } => name.capacity(),
            _ => 0,
        };
        self.words.extend_from_slice(&[RECORD, ts]);
        self.records.push(r);
    }

    /// The bytes it holds: its buffers at their size, spare capacity
    /// included, and what its records own. What the replay's bound on
    /// records held decoded counts: a buffer that grew for a large chunk
    /// counts at its size when a small chunk reuses it. Unchanged while it
    /// is read ([`At::next`] grows nothing).
    pub(crate) fn bytes(&self) -> usize {
        self.capacity() + self.owned
    }

    /// The bytes of its buffers, spare capacity included.
    pub(crate) fn capacity(&self) -> usize {
        self.words.capacity() * 8 + self.records.capacity() * std::mem::size_of::<Record>()
    }

    /// Empties it, keeping its words' buffer.
    pub(crate) fn clear(&mut self) {
        self.words.clear();
        self.records = Vec::new();
        self.owned = 0;
    }
}

/// Where the next record of a [`Compact`] is.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct At {
    word: usize,
    record: usize,
}

/// The next record of a run, as the merge looks at it: an event, read
/// where it is held, or the time of a record with data.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Front {
    Event(Event),
    Record(u64),
}

impl At {
    /// The record at this place of `c` and the words it takes; `None` at
    /// the end. Nothing moves: [`At::pass`] or [`At::take`] does.
    #[inline(always)]
    pub(crate) fn front(&self, c: &Compact) -> Option<(Front, usize)> {
        let w = c.words.get(self.word..)?;
        let first = *w.first()?;
        let id = (first >> 32) as u32;
        let word = |i: usize| w.get(i).copied().unwrap_or_default();
        let ts = word(1);
        let event = |e| Some(Front::Event(e));
        let (front, len) = match first & 0xff {
            ALLOC => {
                let align = 1u64 << ((first >> 8) & 0x3f);
                let (addr, size) = (word(2), (first >> 16) & (SMALL - 1));
                (event(Event::Alloc { ts, addr, size, align, site: id, weight: 1 }), 3)
            }
            ALLOC_LARGE => {
                let align = 1u64 << ((first >> 8) & 0x3f);
                let (addr, size) = (word(2), word(3));
                (event(Event::Alloc { ts, addr, size, align, site: id, weight: 1 }), 4)
            }
            ALLOC_ANY => {
                let (addr, size, align, weight) = (word(2), word(3), word(4), word(5));
                (event(Event::Alloc { ts, addr, size, align, site: id, weight }), 6)
            }
            FREE => (event(Event::Free { ts, addr: word(2), size: first >> 8 }), 3),
            FREE_LARGE => (event(Event::Free { ts, addr: word(2), size: word(3) }), 4),
            REALLOC => {
                let e = Event::Realloc {
                    ts,
                    start_ts: word(2),
                    old_addr: word(3),
                    old_size: word(4),
                    new_addr: word(5),
                    new_size: word(6),
                    align: word(7),
                    site: id,
                };
                (event(e), 8)
            }
            SCOPE_ENTER => (event(Event::ScopeEnter { ts, scope: id }), 2),
            SCOPE_EXIT => (event(Event::ScopeExit { ts, scope: id }), 2),
            PAUSE => (event(Event::Pause { ts }), 2),
            RESUME => (event(Event::Resume { ts }), 2),
            THREAD_END => (event(Event::ThreadEnd { ts }), 2),
            ALLOC_FAILED => (event(Event::AllocFailed { ts, size: word(2), align: word(3) }), 4),
            SPAN => (event(Event::Span { ts, start_ts: word(2), scope: id }), 3),
            _ => (c.records.get(self.record).map(|_| Front::Record(ts)), 2),
        };
        Some((front?, len))
    }

    /// Past the event [`At::front`] read, which took `len` words.
    #[inline(always)]
    pub(crate) fn pass(&mut self, len: usize) {
        self.word += len;
    }

    /// The record with data at this place, moved out, and this place moved
    /// to the next.
    pub(crate) fn take(&mut self, c: &mut Compact) -> Option<Record> {
        let r = c.records.get_mut(self.record)?;
        self.record += 1;
        self.word += 2;
        Some(std::mem::replace(r, Record::Pause { ts: 0 }))
    }

    /// The record at this place of `c`, moved out, and this place moved to
    /// the next; `None` at the end.
    #[cfg(test)]
    pub(crate) fn next(&mut self, c: &mut Compact) -> Option<Held> {
        match self.front(c)? {
            (Front::Event(e), len) => {
                self.pass(len);
                Some(Held::Event(e))
            }
            (Front::Record(ts), _) => Some(Held::Record(ts, Box::new(self.take(c)?))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_comes_back_as_it_went_in() {
        let events = [
            Event::Alloc { ts: 1, addr: 2, size: 3, align: 16, site: u32::MAX, weight: 1 },
            Event::Alloc { ts: 1, addr: 2, size: SMALL - 1, align: 1 << 63, site: 0, weight: 1 },
            Event::Alloc { ts: 1, addr: 2, size: SMALL, align: 1, site: u32::MAX, weight: 1 },
            Event::Alloc { ts: 1, addr: 2, size: u64::MAX, align: 8, site: 7, weight: 1 },
            Event::Free { ts: 3, addr: 4, size: 0 },
            Event::Free { ts: 3, addr: 4, size: (1 << 56) - 1 },
            Event::Free { ts: 3, addr: 4, size: 1 << 56 },
            Event::Alloc { ts: 1, addr: 2, size: 3, align: 1 << 63, site: 7, weight: 1 },
            Event::Alloc { ts: 1, addr: 2, size: 3, align: 24, site: 7, weight: 1 },
            Event::Alloc { ts: 1, addr: 2, size: 3, align: 0, site: 7, weight: 1 },
            Event::Alloc { ts: 1, addr: 2, size: 3, align: 8, site: 7, weight: 9 },
            Event::Free { ts: u64::MAX, addr: u64::MAX, size: u64::MAX },
            Event::Realloc {
                ts: 9,
                start_ts: 8,
                old_addr: 7,
                old_size: 6,
                new_addr: 5,
                new_size: 4,
                align: 3,
                site: 2,
            },
            Event::ScopeEnter { ts: 4, scope: u32::MAX },
            Event::ScopeExit { ts: 5, scope: 0 },
            Event::Pause { ts: 6 },
            Event::Resume { ts: 7 },
            Event::ThreadEnd { ts: 8 },
            Event::AllocFailed { ts: 9, size: 10, align: 11 },
            Event::Span { ts: 12, start_ts: 13, scope: 14 },
        ];
        let mut c = Compact::default();
        for (i, e) in events.iter().enumerate() {
            c.event(*e);
            c.record(i as u64, Record::ThreadStart { ts: i as u64, name: format!("t{i}") });
        }
        let mut at = At::default();
        for (i, e) in events.iter().enumerate() {
            match at.next(&mut c) {
                Some(Held::Event(got)) => assert_eq!(got, *e),
                other => panic!("{other:?} for {e:?}"),
            }
            match at.next(&mut c) {
                Some(Held::Record(ts, r)) if matches!(*r, Record::ThreadStart { .. }) => {
                    let Record::ThreadStart { name, .. } = *r else { unreachable!() };
                    assert_eq!((ts, name), (i as u64, format!("t{i}")));
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(at.next(&mut c).is_none());
    }
}
