//! The allocation workloads. Each takes a scale factor (1 = a quick run) and
//! returns something for `black_box`, so the work cannot be optimized away.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;

/// A workload function.
pub type Workload = fn(usize) -> u64;

/// Workload names, in the order the tables print them.
pub const NAMES: &[&str] = &["json", "churn", "growth", "maps", "threads", "leak"];

/// The workload called `name`.
pub fn get(name: &str) -> Option<Workload> {
    Some(match name {
        "json" => json,
        "churn" => churn,
        "growth" => growth,
        "maps" => maps,
        "threads" => threads,
        "leak" => leak,
        _ => return None,
    })
}

/// A realistic one: serialize a generated document of about 2 MB × scale
/// to JSON text and parse it back (serde_json, `Value` trees).
fn json(scale: usize) -> u64 {
    let records = 8_000 * scale;
    let doc: Vec<serde_json::Value> = (0..records)
        .map(|i| {
            serde_json::json!({
                "id": i,
                "name": format!("customer-{i}"),
                "email": format!("user{i}@example.com"),
                "tags": ["alpha", "beta", format!("t{}", i % 17)],
                "balance": (i as f64) * 1.25,
                "address": {"street": format!("{} Main St", i % 999), "city": "Springfield", "zip": format!("{:05}", i % 99_999)},
                "orders": (0..(i % 5)).map(|o| serde_json::json!({"sku": format!("SKU-{o}"), "qty": o + 1})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let text = serde_json::to_string(&doc).unwrap_or_default();
    let back: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    black_box(text.len() as u64 + back.as_array().map_or(0, |a| a.len() as u64))
}

/// Small short-lived allocations in a hot loop.
fn churn(scale: usize) -> u64 {
    let mut sum = 0u64;
    for i in 0..200_000 * scale {
        let b = vec![i as u8; 8 + (i * 7) % 120];
        sum += black_box(b)[0] as u64;
    }
    sum
}

/// Vectors and strings grown one element at a time.
fn growth(scale: usize) -> u64 {
    let mut total = 0u64;
    for _ in 0..20 * scale {
        let mut v: Vec<u64> = Vec::new();
        for i in 0..10_000u64 {
            v.push(i);
        }
        let mut s = String::new();
        for i in 0..5_000 {
            s.push_str(if i % 2 == 0 { "ab" } else { "cde" });
        }
        let nested: Vec<Vec<u32>> = (0..500u32).map(|i| (0..i % 37).collect()).collect();
        total += black_box((v.len(), s.len(), nested.len())).0 as u64;
    }
    total
}

/// Large hash and B-tree maps built and dropped.
fn maps(scale: usize) -> u64 {
    let mut h: HashMap<u64, String> = HashMap::new();
    for i in 0..50_000 * scale as u64 {
        h.insert(i, format!("value-{i}"));
    }
    let mut b: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for i in 0..50_000 * scale as u64 {
        b.insert(i.wrapping_mul(0x9e37_79b9), vec![0; (i % 50) as usize]);
    }
    black_box((h.len() + b.len()) as u64)
}

/// Producers hand owned buffers to a consumer that frees them.
fn threads(scale: usize) -> u64 {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(256);
    let consumer = std::thread::spawn(move || rx.into_iter().map(|b| b.len() as u64).sum::<u64>());
    let producers: Vec<_> = (0..2)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..50_000 * scale {
                    let _ = tx.send(vec![t as u8; 16 + i % 300]);
                }
            })
        })
        .collect();
    drop(tx);
    for p in producers {
        let _ = p.join();
    }
    consumer.join().unwrap_or(0)
}

/// Leaks on purpose: a few hundred blocks per run stay live for good.
fn leak(scale: usize) -> u64 {
    let mut n = 0;
    for i in 0..100_000 * scale {
        let v = vec![i as u8; 32];
        if i % 1000 == 0 {
            std::mem::forget(v);
            n += 1;
        } else {
            black_box(v);
        }
    }
    n
}
