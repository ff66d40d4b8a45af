//! Substitution tests, from the reference's "Environment replacement" section and shell rules.

use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "FOO" => Some("/bar".into()),
        "str" | "string" => Some("foobarbaz".into()),
        "EMPTY" => Some(String::new()),
        "SP" => Some("a  b".into()),
        "path" => Some("/usr/local/bin/app.tar.gz".into()),
        "x" => Some("a*b?c".into()),
        _ => None,
    }
}

fn ex(word: &str) -> String {
    match expand(word, &env, '\\') {
        Ok(s) => s,
        Err(e) => panic!("{word}: {e}"),
    }
}

fn ex_err(word: &str) -> ExpandErrorKind {
    match expand(word, &env, '\\') {
        Ok(s) => panic!("{word}: expected an error, got {s:?}"),
        Err(e) => e.kind,
    }
}

#[test]
fn substitution_table() {
    let cases: &[(&str, &str)] = &[
        ("$FOO", "/bar"),
        ("${FOO}", "/bar"),
        ("${FOO}_bar", "/bar_bar"),
        ("$FOO/x", "/bar/x"),
        ("$UNSET", ""),
        ("a${UNSET}b", "ab"),
        ("${UNSET:-def}", "def"),
        ("${EMPTY:-def}", "def"),
        ("${FOO:-def}", "/bar"),
        ("${UNSET-def}", "def"),
        ("${EMPTY-def}", ""),
        ("${FOO-def}", "/bar"),
        ("${FOO:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${UNSET:+alt}", ""),
        ("${FOO+alt}", "alt"),
        ("${EMPTY+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${UNSET:-$FOO/x}", "/bar/x"),
        ("${UNSET:-${EMPTY:-nested}}", "nested"),
        ("${FOO?}", "/bar"),
        ("${str#f*b}", "arbaz"),
        ("${str##f*b}", "az"),
        ("${string%b*}", "foobar"),
        ("${string%%b*}", "foo"),
        ("${string/ba/fo}", "fooforbaz"),
        ("${string//ba/fo}", "fooforfoz"),
        ("${string/b?r/X}", "fooXbaz"),
        ("${string/nomatch/X}", "foobarbaz"),
        ("${UNSET/a/b}", ""),
        ("${path##*/}", "app.tar.gz"),
        ("${path%.*}", "/usr/local/bin/app.tar"),
        ("${path%%.*}", "/usr/local/bin/app"),
        ("${path#*/}", "usr/local/bin/app.tar.gz"),
        ("${x#a\\*}", "b?c"),
        ("${x%\\?c}", "a*b"),
        ("${UNSET#x}", ""),
        ("${str//o/}", "fbarbaz"),
        ("\\$FOO", "$FOO"),
        ("\\${FOO}", "${FOO}"),
        ("'$FOO'", "$FOO"),
        ("\"$FOO\"", "/bar"),
        ("\"a \\\"q\\\" \\$FOO \\x\"", "a \"q\" $FOO \\x"),
        ("a\\ b", "a b"),
        ("$", "$"),
        ("a$", "a$"),
        ("$/", "$/"),
        ("${SP}", "a  b"),
        ("trail\\", "trail"),
    ];
    for (word, want) in cases {
        assert_eq!(ex(word), *want, "{word}");
    }
}

#[test]
fn backtick_escape() {
    assert_eq!(expand("`$FOO", &env, '`').unwrap(), "$FOO");
    assert_eq!(expand("c:\\dir\\$FOO", &env, '`').unwrap(), "c:\\dir\\/bar");
    assert_eq!(expand("\"a`\"b\"", &env, '`').unwrap(), "a\"b");
}

#[test]
fn substitution_errors() {
    assert_eq!(ex_err("${FOO"), ExpandErrorKind::MissingBrace);
    assert_eq!(ex_err("${FOO:-x"), ExpandErrorKind::MissingBrace);
    assert_eq!(ex_err("${"), ExpandErrorKind::MissingBrace);
    assert_eq!(ex_err("${}"), ExpandErrorKind::BadSubstitution);
    assert_eq!(ex_err("${:x}"), ExpandErrorKind::BadSubstitution);
    assert_eq!(ex_err("${FOO:#x}"), ExpandErrorKind::UnsupportedModifier(":#".into()));
    assert_eq!(ex_err("${FOO^x}"), ExpandErrorKind::UnsupportedModifier("^".into()));
    assert_eq!(ex_err("${FOO/x"), ExpandErrorKind::MissingSlash);
    assert_eq!(ex_err("${FOO/x/y"), ExpandErrorKind::MissingBrace);
    assert_eq!(ex_err("'open"), ExpandErrorKind::UnterminatedSingleQuote);
    assert_eq!(ex_err("\"open"), ExpandErrorKind::UnterminatedDoubleQuote);
    assert_eq!(
        ex_err("${UNSET?}"),
        ExpandErrorKind::Required {
            name: "UNSET".into(),
            message: "is not allowed to be unset".into()
        }
    );
    assert_eq!(
        ex_err("${EMPTY:?must be set}"),
        ExpandErrorKind::Required {
            name: "EMPTY".into(),
            message: "must be set".into()
        }
    );
    assert!(matches!(ex_err("${str#\\a}"), ExpandErrorKind::InvalidPattern { .. }));
    let e = expand("${", &env, '\\').unwrap_err();
    assert_eq!(e.to_string(), "failed to process \"${\": syntax error: missing '}'");
}

#[test]
fn words_split_as_docker() {
    let w = |s: &str| expand_words(s, &env, '\\').unwrap();
    assert_eq!(w("a b  c"), ["a", "b", "c"]);
    assert_eq!(w("\"a b\" c"), ["a b", "c"]);
    assert_eq!(w("x$SP"), ["xa", "b"]);
    assert_eq!(w("\"$SP\""), ["a  b"]);
    assert_eq!(w("a\\ b"), ["a b"]);
    assert_eq!(w("  "), Vec::<String>::new());
}

#[test]
fn heredoc_lexer_keeps_quotes_and_escapes() {
    assert_eq!(
        expand_heredoc("echo \"hello ${FOO}\" '$FOO' \\$FOO\n", &env, '\\').unwrap(),
        "echo \"hello /bar\" '$FOO' \\$FOO\n"
    );
}

#[test]
fn skip_unset_keeps_references() {
    let lex = Lexer {
        skip_unset: true,
        ..Lexer::new('\\')
    };
    assert_eq!(
        lex.process_word("$NOPE ${NOPE} ${NOPE:-d} $FOO", &env).unwrap(),
        "$NOPE ${NOPE} ${NOPE:-d} /bar"
    );
}

#[test]
fn glob_matcher() {
    let m = |p: &str, s: &str| glob_match(&compile_pattern(p).unwrap(), &s.chars().collect::<Vec<_>>());
    assert!(m("f*b", "foob"));
    assert!(m("*", ""));
    assert!(m("a?c", "abc"));
    assert!(!m("a?c", "ac"));
    assert!(m("*a*", "bab"));
    assert!(!m("a*", "ba"));
    assert!(m("a\\*", "a*"));
    assert!(!m("a\\*", "ab"));
}
