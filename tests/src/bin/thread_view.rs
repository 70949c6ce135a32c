//! Two named threads with known work, for reading a session one thread at a
//! time: `maker` allocates 100 buffers of 1000 bytes, which `taker` frees,
//! and leaks 10 blocks of 64 bytes; `taker` allocates and frees 5 buffers
//! of 256 bytes of its own.

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

fn make() -> Vec<Vec<u8>> {
    pulse::scope!("make");
    let mut buffers = Vec::with_capacity(100); // the outer vector
    for i in 0..100u8 {
        buffers.push(vec![i; 1000]); // a buffer for taker
    }
    for _ in 0..10 {
        Box::leak(Box::new([7u8; 64])); // leaked
    }
    buffers
}

fn take(buffers: Vec<Vec<u8>>) -> usize {
    pulse::scope!("take");
    let mut sum = 0;
    for i in 0..5 {
        let own = vec![i as u8; 256]; // taker's own
        sum += own.iter().map(|b| *b as usize).sum::<usize>();
    }
    sum + buffers.iter().map(|b| b[0] as usize).sum::<usize>()
}

fn main() {
    let buffers = std::thread::Builder::new()
        .name("maker".into())
        .spawn(make)
        .expect("spawn maker")
        .join()
        .expect("maker");
    let sum = std::thread::Builder::new()
        .name("taker".into())
        .spawn(move || take(buffers))
        .expect("spawn taker")
        .join()
        .expect("taker");
    println!("{sum}");
}
