//! Two caches in a product-page server: one that never evicts, one that does.
//!
//! Pages are rendered from a catalogue and kept in a cache keyed by product
//! and locale. Shoppers' interest moves through the catalogue (what is
//! trending today is not what was trending this morning), and the render
//! cache keeps every page it ever rendered: it grows for as long as the
//! server runs, a leak in all but name. Beside it, the price cache is a least-recently-used cache
//! with a fixed capacity: it fills early, then replaces its oldest entry,
//! so it lives to the end without growing. The report tells them apart.
//!
//!     cargo run --release --example leaky_cache [REQUESTS]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use pulse_examples::{print_report, session_path, Rng};

#[global_allocator]
static ALLOC: pulse::Alloc = pulse::Alloc::system();

/// The operations the server times.
#[derive(pulse::Operation)]
enum Op {
    #[category(name = "Pages", description = "Serving product pages")]
    Request,
    #[category(name = "Pages")]
    Render,
    #[category(name = "Prices", description = "Looking up and quoting prices")]
    Price,
}

/// Products trending at any one time.
const TRENDING: usize = 40;

const LOCALES: [&str; 3] = ["en-GB", "de-DE", "fr-FR"];

/// A product of the catalogue.
struct Product {
    name: String,
    description: String,
    cents: u64,
}

/// The catalogue, loaded at start.
struct Catalogue {
    products: Vec<Product>,
}

impl Catalogue {
    fn load(n: usize, rng: &mut Rng) -> Catalogue {
        let products = (0..n)
            .map(|id| {
                let words = 8 + rng.below(24) as usize;
                let mut description = String::new();
                for w in 0..words {
                    description.push_str(["sturdy", "light", "blue", "handmade", "compact"][w % 5]);
                    description.push(' ');
                }
                Product {
                    name: format!("Product {id}"),
                    description,
                    cents: 199 + rng.below(50_000),
                }
            })
            .collect();
        Catalogue { products }
    }
}

/// Rendered pages by (product, locale), kept for good: nothing ever evicts.
#[derive(Default)]
struct RenderCache {
    pages: HashMap<(usize, usize), Box<str>>,
    bytes: usize,
}

impl RenderCache {
    /// The page of `product` in `locale`, rendered into `scratch` on a miss.
    fn page(
        &mut self,
        cat: &Catalogue,
        product: usize,
        locale: usize,
        scratch: &mut String,
    ) -> usize {
        if let Some(page) = self.pages.get(&(product, locale)) {
            return page.len();
        }
        pulse::profile!(Op::Render, {
            render(&cat.products[product], LOCALES[locale], scratch);
            // planted: leak (every page rendered is kept: the cache never evicts)
            let page: Box<str> = Box::from(scratch.as_str());
            self.bytes += page.len();
            let len = page.len();
            self.pages.insert((product, locale), page);
            len
        })
    }
}

fn render(p: &Product, locale: &str, out: &mut String) {
    out.clear();
    let _ = write!(
        out,
        "<html lang=\"{locale}\"><head><title>{}</title></head><body><h1>{}</h1><p>{}</p>\
         <p class=\"price\">{}.{:02}</p></body></html>",
        p.name,
        p.name,
        p.description.trim_end(),
        p.cents / 100,
        p.cents % 100
    );
}

/// Quoted prices by (product, currency), least recently used evicted first.
struct PriceCache {
    capacity: usize,
    entries: HashMap<(usize, u8), (Box<str>, u64)>,
    by_use: BTreeMap<u64, (usize, u8)>,
    clock: u64,
    scratch: String,
}

impl PriceCache {
    fn new(capacity: usize) -> Self {
        PriceCache {
            capacity,
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
            clock: 0,
            scratch: String::with_capacity(32),
        }
    }

    fn quote(&mut self, cat: &Catalogue, product: usize, currency: u8) -> usize {
        pulse::profile!(Op::Price, {
            self.clock += 1;
            let now = self.clock;
            if let Some((text, used)) = self.entries.get_mut(&(product, currency)) {
                self.by_use.remove(used);
                *used = now;
                self.by_use.insert(now, (product, currency));
                return text.len();
            }
            if self.entries.len() == self.capacity {
                if let Some((_, oldest)) = self.by_use.pop_first() {
                    self.entries.remove(&oldest);
                }
            }
            let cents = cat.products[product].cents * [100, 117, 86][currency as usize] / 100;
            let symbol = ["£", "€", "$"][currency as usize];
            self.scratch.clear();
            let _ = write!(self.scratch, "{symbol}{}.{:02}", cents / 100, cents % 100);
            // planted: bounded cache (a quote per entry, the oldest evicted at capacity)
            let text: Box<str> = Box::from(self.scratch.as_str());
            let len = text.len();
            self.entries.insert((product, currency), (text, now));
            self.by_use.insert(now, (product, currency));
            len
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let requests: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(40_000);

    let path = session_path("leaky_cache");
    let session = pulse::Session::builder().output(&path).start()?;

    let mut rng = Rng::new(11);
    // Interest slides through the catalogue: a window of 40 trending
    // products, one step further every 10 requests.
    let catalogue = Catalogue::load(requests / 10 + TRENDING, &mut rng);
    let n = catalogue.products.len() as u64;
    let mut pages = RenderCache::default();
    let mut prices = PriceCache::new(256);
    let mut scratch = String::with_capacity(1024);
    let mut served = 0usize;
    for i in 0..requests {
        pulse::profile!(Op::Request, {
            let product = i / 10 + rng.below(TRENDING as u64) as usize;
            let locale = rng.below(LOCALES.len() as u64) as usize;
            served += pages.page(&catalogue, product, locale, &mut scratch);
            // Price checks come from the whole catalogue.
            served += prices.quote(&catalogue, rng.below(n) as usize, rng.below(3) as u8);
        });
    }
    println!(
        "served {requests} requests ({served} bytes) from a catalogue of {} products",
        catalogue.products.len()
    );
    println!(
        "render cache: {} pages ({} bytes), never evicted; price cache: {} quotes (capacity {})",
        pages.pages.len(),
        pages.bytes,
        prices.entries.len(),
        prices.capacity
    );

    let path = session.finish()?;
    drop((pages, prices, catalogue));
    println!();
    print_report(&path)
}
