//! A program that allocates in a steady loop until it is killed (or 30 s
//! pass): its sites are all defined in its first moments, and then only
//! used. `make_records` and `join_names` are the allocating functions the
//! tests look for by name.

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

#[inline(never)]
fn make_records(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("record-{i}")).collect()
}

#[inline(never)]
fn join_names(records: &[String]) -> String {
    records.join(",")
}

fn main() {
    let t = std::time::Instant::now();
    while t.elapsed() < std::time::Duration::from_secs(30) {
        let records = make_records(64);
        std::hint::black_box(join_names(&records));
    }
}
