//! `COPY --chmod=`: an octal mode (`755`) or chmod(1)'s symbolic notation (`+x`, `u=rwX,go=rX`,
//! `g=u`), applied to each copied entry's own mode.

use std::fmt;

/// A parsed `--chmod` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// Every entry gets this mode.
    Octal(u32),
    /// Clauses applied in order to each entry's mode.
    Symbolic(Vec<Clause>),
}

/// One `who op perms` clause of a symbolic mode (`go=rX`), its actions in order (`u+r-w`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// The bits `who` may change (`u`: 04700, `g`: 02070, `o`: 01007, none or `a`: all).
    who: u32,
    actions: Vec<(Op, Perms)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Set,
}

/// What an action gives or takes: permission letters, or another class's bits (`g=u`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Perms {
    /// `rwxst` as bits, and whether `X` was given.
    Letters { bits: u32, cap_x: bool },
    /// The `rwx` of class `u` (6), `g` (3) or `o` (0), copied to every class.
    CopyOf(u32),
}

/// Why a `--chmod` value is not a mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChmodError(String);

impl fmt::Display for ChmodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid mode {:?}: an octal mode (755) or chmod's symbolic form (u=rwX,go=rX) is needed",
            self.0
        )
    }
}

impl std::error::Error for ChmodError {}

const USER: u32 = 0o4700;
const GROUP: u32 = 0o2070;
const OTHER: u32 = 0o1007;

impl Chmod {
    /// Parses `755`, `0644`, `+x`, `u=rwX,go=rX`, `g=u`, `a-w`.
    pub fn parse(text: &str) -> Result<Chmod, ChmodError> {
        let err = || ChmodError(text.to_string());
        if !text.is_empty() && text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return u32::from_str_radix(text, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .map(Chmod::Octal)
                .ok_or_else(err);
        }
        let mut clauses = Vec::new();
        for part in text.split(',') {
            let mut chars = part.chars().peekable();
            let mut who = 0;
            while let Some(c) = chars.peek() {
                who |= match c {
                    'u' => USER,
                    'g' => GROUP,
                    'o' => OTHER,
                    'a' => USER | GROUP | OTHER,
                    _ => break,
                };
                chars.next();
            }
            if who == 0 {
                who = USER | GROUP | OTHER;
            }
            let mut actions = Vec::new();
            while let Some(c) = chars.next() {
                let op = match c {
                    '+' => Op::Add,
                    '-' => Op::Remove,
                    '=' => Op::Set,
                    _ => return Err(err()),
                };
                let perms = match chars.peek() {
                    Some('u') | Some('g') | Some('o') => {
                        let shift = match chars.next() {
                            Some('u') => 6,
                            Some('g') => 3,
                            _ => 0,
                        };
                        Perms::CopyOf(shift)
                    }
                    _ => {
                        let (mut bits, mut cap_x) = (0, false);
                        while let Some(c) = chars.peek() {
                            bits |= match c {
                                'r' => 0o444,
                                'w' => 0o222,
                                'x' => 0o111,
                                's' => 0o6000,
                                't' => 0o1000,
                                'X' => {
                                    cap_x = true;
                                    0
                                }
                                _ => break,
                            };
                            chars.next();
                        }
                        Perms::Letters { bits, cap_x }
                    }
                };
                actions.push((op, perms));
            }
            if actions.is_empty() {
                return Err(err());
            }
            clauses.push(Clause { who, actions });
        }
        Ok(Chmod::Symbolic(clauses))
    }

    /// The mode an entry whose mode is `mode` (permission bits) gets; `is_dir` for `X`.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let clauses = match self {
            Chmod::Octal(m) => return *m,
            Chmod::Symbolic(c) => c,
        };
        let mut mode = mode & 0o7777;
        for clause in clauses {
            for (op, perms) in &clause.actions {
                let bits = match *perms {
                    Perms::Letters { bits, cap_x } => {
                        let x = if cap_x && (is_dir || mode & 0o111 != 0) {
                            0o111
                        } else {
                            0
                        };
                        bits | x
                    }
                    Perms::CopyOf(shift) => {
                        let t = (mode >> shift) & 0o7;
                        (t << 6) | (t << 3) | t
                    }
                };
                let bits = bits & clause.who;
                mode = match op {
                    Op::Add => mode | bits,
                    Op::Remove => mode & !bits,
                    Op::Set => (mode & !clause.who) | bits,
                };
            }
        }
        mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(spec: &str, mode: u32, dir: bool) -> u32 {
        Chmod::parse(spec).unwrap().apply(mode, dir)
    }

    #[test]
    fn octal_modes_replace_the_mode() {
        assert_eq!(Chmod::parse("755"), Ok(Chmod::Octal(0o755)));
        assert_eq!(apply("0644", 0o755, true), 0o644);
        assert_eq!(apply("4755", 0o600, false), 0o4755);
        assert!(Chmod::parse("17777").is_err());
    }

    #[test]
    fn symbolic_modes_change_the_mode_as_chmod_does() {
        assert_eq!(apply("+x", 0o644, false), 0o755);
        assert_eq!(apply("u+x", 0o644, false), 0o744);
        assert_eq!(apply("a-w", 0o664, false), 0o444);
        assert_eq!(apply("go-rwx", 0o755, false), 0o700);
        // rwX: directories and files already executable get x.
        assert_eq!(apply("u=rwX,go=rX", 0o600, false), 0o644);
        assert_eq!(apply("u=rwX,go=rX", 0o700, false), 0o755);
        assert_eq!(apply("u=rwX,go=rX", 0o700, true), 0o755);
        assert_eq!(apply("u=rwX,go=rX", 0o600, true), 0o755);
        // Copying another class's bits.
        assert_eq!(apply("g=u", 0o640, false), 0o660);
        assert_eq!(apply("o=g", 0o750, false), 0o755);
        // Several actions in one clause; set-id and sticky bits.
        assert_eq!(apply("u+r-w", 0o200, false), 0o400);
        assert_eq!(apply("u+s", 0o755, false), 0o4755);
        assert_eq!(apply("+t", 0o777, true), 0o1777);
        assert_eq!(apply("u=", 0o4755, false), 0o055);
    }

    #[test]
    fn malformed_modes_are_refused() {
        for bad in ["", "u", "x", "u+q", "u=rw,", "9", "z+x", "+x,,g-w"] {
            let e = Chmod::parse(bad).unwrap_err();
            assert!(e.to_string().contains("symbolic"), "{bad}: {e}");
        }
    }
}
