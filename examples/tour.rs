//! Runs the four seed patterns on every runtime this build enables, side by
//! side, and says whether every runtime printed the same lines.
//!
//! ```text
//! cargo run --example tour --all-features
//! ```

#[path = "patterns/mod.rs"]
mod patterns;

use patterns::{DropHandle, Out, Pattern, SharedFlag, ShutdownBroadcast, Timeout};

/// Runs every pattern on `runtime`; returns (pattern, lines) pairs.
fn run_all(runtime: &str) -> Vec<(&'static str, Vec<String>)> {
    fn one<P: Pattern>(runtime: &str) -> (&'static str, Vec<String>) {
        let out = Out::quiet();
        if let Err(e) = patterns::run_on::<P>(runtime, &out) {
            out.line(format!("ERROR: {e}"));
        }
        (P::NAME, out.lines())
    }
    vec![
        one::<DropHandle>(runtime),
        one::<SharedFlag>(runtime),
        one::<Timeout>(runtime),
        one::<ShutdownBroadcast>(runtime),
    ]
}

fn main() {
    let runtimes = patterns::runtimes();
    if runtimes.is_empty() {
        eprintln!("no runtime enabled: run `cargo run --example tour --all-features`");
        std::process::exit(2);
    }

    // One thread per runtime: the patterns take about two seconds each way.
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = runtimes
            .iter()
            .map(|rt| s.spawn(move || run_all(rt)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let width = results
        .iter()
        .flatten()
        .flat_map(|(_, lines)| lines.iter().map(String::len))
        .chain(runtimes.iter().map(|r| r.len()))
        .max()
        .unwrap_or(0)
        .min(60);

    let mut differences = Vec::new();
    for (p, (pattern, first_lines)) in results[0].iter().enumerate() {
        println!("== {pattern}");
        let header: Vec<String> = runtimes.iter().map(|r| format!("{r:<width$}")).collect();
        println!("{}", header.join(" | "));
        println!("{}", vec!["-".repeat(width); runtimes.len()].join("-+-"));
        let rows = results.iter().map(|r| r[p].1.len()).max().unwrap_or(0);
        for row in 0..rows {
            let cells: Vec<String> = results
                .iter()
                .map(|r| format!("{:<width$}", r[p].1.get(row).map_or("", String::as_str)))
                .collect();
            println!("{}", cells.join(" | "));
        }
        println!();
        for (r, result) in results.iter().enumerate().skip(1) {
            if &result[p].1 != first_lines {
                differences.push(format!(
                    "{pattern}: {} differs from {}",
                    runtimes[r], runtimes[0]
                ));
            }
        }
    }

    if differences.is_empty() {
        println!(
            "Identical on all {} runtimes: {}.",
            runtimes.len(),
            runtimes.join(", ")
        );
    } else {
        println!("NOT identical on all {} runtimes:", runtimes.len());
        for d in &differences {
            println!("  {d}");
        }
        std::process::exit(1);
    }
}
