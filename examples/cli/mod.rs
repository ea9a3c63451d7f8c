//! The command-line habits every example shares, so that a mistyped flag
//! is never silently ignored: `-h`/`--help` prints the usage to stdout and
//! exits 0; an unknown or malformed argument prints what is wrong and the
//! usage to stderr and exits 2. (Not an example itself: included with
//! `#[path]` by the examples, like `patterns/mod.rs`.)

#![allow(dead_code)] // each example uses only some of this

use std::fmt::Display;
use std::process::exit;

/// The arguments after the program name, checked against a usage text.
pub(crate) struct Args {
    usage: String,
    rest: std::vec::IntoIter<String>,
}

impl Args {
    /// The process's arguments. `-h` or `--help` anywhere prints `usage`
    /// to stdout and exits 0.
    pub(crate) fn parse(usage: impl Into<String>) -> Self {
        let usage = usage.into();
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.iter().any(|a| a == "-h" || a == "--help") {
            println!("{}", usage.trim_end());
            exit(0);
        }
        Args {
            usage,
            rest: args.into_iter(),
        }
    }

    /// For examples that take no arguments: `--help` or nothing at all.
    pub(crate) fn none(usage: impl Into<String>) {
        Args::parse(usage).finish();
    }

    /// The next argument, if any.
    pub(crate) fn next(&mut self) -> Option<String> {
        self.rest.next()
    }

    /// The value following `flag`; a usage error if there is none.
    pub(crate) fn value(&mut self, flag: &str) -> String {
        match self.rest.next() {
            Some(v) if !v.starts_with("--") => v,
            _ => self.fail(format_args!("{flag} needs a value")),
        }
    }

    /// The value following `flag`, parsed by `parse`; a usage error naming
    /// the flag if it is missing or does not parse.
    pub(crate) fn parsed<T, E: Display>(
        &mut self,
        flag: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> T {
        let v = self.value(flag);
        parse(&v).unwrap_or_else(|e| self.fail(format_args!("{flag} {v:?}: {e}")))
    }

    /// A usage error for an argument this example does not know.
    pub(crate) fn unexpected(&self, arg: &str) -> ! {
        self.fail(format_args!("unexpected argument {arg:?}"))
    }

    /// Fails on any argument left over.
    pub(crate) fn finish(mut self) {
        if let Some(arg) = self.rest.next() {
            self.unexpected(&arg);
        }
    }

    /// Prints `what` and the usage to stderr, and exits 2.
    pub(crate) fn fail(&self, what: impl Display) -> ! {
        usage_error(&self.usage, what)
    }
}

/// Prints `what` and `usage` to stderr, and exits 2 (the usual exit code
/// for a command-line mistake).
pub(crate) fn usage_error(usage: &str, what: impl Display) -> ! {
    eprintln!("error: {what}\n\n{}", usage.trim_end());
    exit(2);
}
