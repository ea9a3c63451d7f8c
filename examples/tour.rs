//! Runs the four seed patterns, and a fifth with cancel scopes, on every runtime this build enables, side by
//! side, and says whether every runtime printed the same lines.
//!
//! ```text
//! cargo run --example tour --all-features
//! ```
//!
//! Every line fits in 100 columns: the runtimes are shown as many side by
//! side as fit (two, with all four enabled), the next ones below them, and
//! a line too long for its column is wrapped.

#[path = "patterns/mod.rs"]
mod patterns;

use patterns::{
    CommitOrRollback, DropHandle, Out, Pattern, SharedFlag, ShutdownBroadcast, Timeout,
};

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
        one::<CommitOrRollback>(runtime),
    ]
}

/// The widest line the tour prints.
const MAX_WIDTH: usize = 100;
/// Between two columns.
const SEPARATOR: &str = " | ";
/// Columns narrower than this (or than the longest line, if shorter) would
/// wrap most lines: show fewer runtimes side by side instead.
const MIN_COLUMN: usize = 40;

/// How many runtimes to show side by side, and the width of each column,
/// for `n` runtimes whose longest line is `longest` characters.
fn layout(n: usize, longest: usize) -> (usize, usize) {
    for per_row in (2..=n).rev() {
        let room = (MAX_WIDTH - SEPARATOR.len() * (per_row - 1)) / per_row;
        if room >= longest.min(MIN_COLUMN) {
            return (per_row, longest.min(room));
        }
    }
    (1, longest.min(MAX_WIDTH))
}

/// Before the second and later pieces of a wrapped line.
const CONTINUATION: &str = "  ";

/// `line` cut into pieces of at most `width` characters, at spaces where
/// possible; the pieces after the first are indented.
fn wrap(line: &str, width: usize) -> Vec<String> {
    let len = |s: &str| s.chars().count();
    let mut pieces = Vec::new();
    let mut current = String::new(); // the piece being filled
    let mut has_word = false; // whether `current` holds a word yet
    for mut word in line.split(' ') {
        loop {
            if len(&current) + usize::from(has_word) + len(word) <= width {
                if has_word {
                    current.push(' ');
                }
                current.push_str(word);
                has_word = true;
                break;
            }
            if !has_word {
                // Alone on its piece and still too long: cut the word.
                let room = width.saturating_sub(len(&current)).max(1);
                let cut = word.char_indices().nth(room).map_or(word.len(), |(i, _)| i);
                current.push_str(&word[..cut]);
                word = &word[cut..];
            }
            pieces.push(std::mem::replace(&mut current, CONTINUATION.into()));
            has_word = false;
        }
    }
    pieces.push(current);
    pieces
}

/// Prints `columns` (a title and its lines each) side by side, each
/// `width` wide.
fn print_side_by_side(columns: &[(&str, &[String])], width: usize) {
    let row = |cells: Vec<String>| {
        let cells: Vec<String> = cells.iter().map(|c| format!("{c:<width$}")).collect();
        println!("{}", cells.join(SEPARATOR).trim_end());
    };
    row(columns.iter().map(|(title, _)| title.to_string()).collect());
    println!("{}", vec!["-".repeat(width); columns.len()].join("-+-"));
    let wrapped: Vec<Vec<String>> = columns
        .iter()
        .map(|(_, lines)| lines.iter().flat_map(|l| wrap(l, width)).collect())
        .collect();
    let rows = wrapped.iter().map(Vec::len).max().unwrap_or(0);
    for r in 0..rows {
        row(wrapped
            .iter()
            .map(|lines| lines.get(r).cloned().unwrap_or_default())
            .collect());
    }
}

fn main() {
    patterns::cli::Args::none(
        "Usage: cargo run --example tour --all-features\n\
         \n\
         Runs the four patterns (examples/patterns/mod.rs) on every runtime this\n\
         build enables, shows their output side by side, and says whether every\n\
         runtime printed the same lines (exit 1 if not). Takes no arguments.",
    );
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

    let longest = results
        .iter()
        .flatten()
        .flat_map(|(_, lines)| lines.iter().map(|l| l.chars().count()))
        .chain(runtimes.iter().map(|r| r.len()))
        .max()
        .unwrap_or(0);
    let (per_row, width) = layout(runtimes.len(), longest);

    let mut differences = Vec::new();
    for (p, (pattern, first_lines)) in results[0].iter().enumerate() {
        println!("== {pattern}");
        let columns: Vec<(&str, &[String])> = runtimes
            .iter()
            .zip(&results)
            .map(|(rt, result)| (*rt, result[p].1.as_slice()))
            .collect();
        for band in columns.chunks(per_row) {
            print_side_by_side(band, width);
            println!();
        }
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
