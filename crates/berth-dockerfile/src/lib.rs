//! Dockerfile parsing and `.dockerignore` matching: pure functions over text, shared by the CLI
//! (`berth build --print-ast`) and the builder.
//!
//! - [`parse`] reads a Dockerfile into a [`Dockerfile`] (directives, instructions, here-documents),
//!   following BuildKit's parser; [`ast_json`] prints it.
//! - [`expand`] / [`expand_words`] / [`Lexer`] do Docker's variable substitution for the builder.
//! - [`DockerIgnore`] decides which context paths `.dockerignore` leaves out.

mod ast;
mod error;
mod expand;
mod ignore;
mod parse;

pub use ast::{ast_json, Args, Command, Directives, Dockerfile, Heredoc, Instruction, KeyValue, Warning};
pub use error::{ExpandError, ExpandErrorKind, IgnoreError, ParseError, ParseErrorKind};
pub use expand::{expand, expand_heredoc, expand_words, Lexer};
pub use ignore::{clean_path, has_wildcards, match_pattern, DockerIgnore};
pub use parse::parse;

#[cfg(test)]
mod tests {
    //! Robustness: no input makes the parsers panic.

    use super::*;

    /// A small deterministic generator (xorshift) so the test needs no dependency.
    fn strings(seed: u64, count: usize) -> Vec<String> {
        const ALPHABET: &[&str] = &[
            "RUN ",
            "COPY ",
            "ENV ",
            "ARG ",
            "ONBUILD ",
            "HEALTHCHECK ",
            "FROM ",
            "CMD ",
            "LABEL ",
            "<<",
            "<<-",
            "EOF",
            "\"",
            "'",
            "\\",
            "`",
            "$",
            "{",
            "}",
            ":",
            "-",
            "+",
            "?",
            "#",
            "%",
            "/",
            "*",
            "[",
            "]",
            "^",
            "!",
            "=",
            " ",
            "\t",
            "\n",
            "\r\n",
            "--",
            "x",
            "é",
            "ß",
            "🦀",
            ",",
            "\u{feff}",
            "NONE",
            "CMD",
            "a=b",
            "**",
        ];
        let mut state = seed;
        (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let len = (state % 40) as usize;
                (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        ALPHABET[(state % ALPHABET.len() as u64) as usize]
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn no_panics_on_arbitrary_input() {
        let vars = |n: &str| (n == "x").then(|| "v a*l".to_string());
        for s in strings(0x9e37_79b9_7f4a_7c15, 5000) {
            if let Ok(df) = parse(&s) {
                let _ = ast_json(&df);
            }
            let _ = parse(&format!("FROM x\n{s}"));
            let _ = expand(&s, &vars, '\\');
            let _ = expand_words(&s, &vars, '`');
            let _ = expand_heredoc(&s, &vars, '\\');
            if let Ok(d) = DockerIgnore::parse(&s) {
                let _ = d.excluded(&s);
                let _ = d.excluded("a/b/c");
            }
        }
    }
}
